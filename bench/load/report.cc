#include "bench/load/report.h"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

namespace warden::bench {

namespace {

constexpr double kQuantiles[] = {0.5, 0.9, 0.99, 0.999};
constexpr const char* kQuantileNames[] = {"p50", "p90", "p99", "p99.9"};

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string HistJson(const Histogram& h) {
  std::ostringstream out;
  out << "{\"count\": " << h.count() << ", \"mean\": " << Num(h.mean() / 1e6)
      << ", \"min\": " << Num(Ms(h.min()));
  for (size_t i = 0; i < std::size(kQuantiles); ++i)
    out << ", \"" << kQuantileNames[i] << "\": " << Num(Ms(h.ValueAtQuantile(kQuantiles[i])));
  out << ", \"max\": " << Num(Ms(h.max())) << "}";
  return out.str();
}

}  // namespace

uint64_t Result::ErrorsTotal() const {
  uint64_t n = 0;
  for (uint64_t e : stats.errors) n += e;
  return n;
}

std::vector<std::string> HistogramNames(Workload w) {
  switch (w) {
    case Workload::kPut: return {"put"};
    case Workload::kRange: return {"range"};
    case Workload::kRangeSerializable: return {"range-serializable"};
    case Workload::kTxn: return {"txn"};
    case Workload::kLeaseKeepAlive: return {"keepalive"};
    case Workload::kWatch: return {"notify", "put"};
    case Workload::kLockV3:
    case Workload::kLockRecipe:
    case Workload::kLockNative: return {"acquire", "release"};
    case Workload::kSessionChurn: return {"cycle", "grant", "put", "revoke"};
    case Workload::kLocksHold: return {"acquire", "keepalive"};
    case Workload::kSessions: return {"keepalive"};
    case Workload::kFailover: return {"failover"};
  }
  return {"op"};
}

void PrintTable(const Options& o, const Result& r) {
  std::printf("warden-bench %s%s%s  endpoints=%zu clients=%d conns=%d threads=%d",
              WorkloadName(o.workload), o.label.empty() ? "" : "  label=", o.label.c_str(),
              o.endpoints.size(), o.clients, o.conns, o.threads);
  if (o.workload == Workload::kWatch)
    std::printf(" watchers=%d streams=%d", o.watchers, o.EffectiveWatchStreams());
  if (o.workload == Workload::kLockV3 || o.workload == Workload::kLockRecipe ||
      o.workload == Workload::kLockNative)
    std::printf(" locks=%d", o.EffectiveLocks());
  if (o.workload == Workload::kLocksHold || o.workload == Workload::kSessions)
    std::printf(" sessions=%d", o.EffectiveSessions());
  if (o.workload == Workload::kLocksHold) std::printf(" locks/session=%d", o.locks_per_session);
  if (o.rate > 0) std::printf(" rate=%g/s", o.rate);
  std::printf("\n");
  if (r.prefill_keys > 0)
    std::printf("  prefill: %llu keys in %.2f s\n", static_cast<unsigned long long>(r.prefill_keys),
                r.prefill_s);
  if (r.connect_s >= 0.5 || r.conns_ready < o.conns) {
    std::printf("  connect: %d of %d connections ready in %.2f s\n", r.conns_ready, o.conns,
                r.connect_s);
  }
  if (r.setup_s >= 0.5 || r.setup_timed_out) {
    std::printf("  setup: %lld of %lld clients ready in %.2f s\n",
                static_cast<long long>(r.clients_ready), static_cast<long long>(r.clients_total),
                r.setup_s);
  }
  if (r.unsupported) {
    std::printf("  UNSUPPORTED by the server: %s\n", r.unsupported_what.c_str());
  }
  if (o.workload == Workload::kFailover) {
    if (r.failover_ms) {
      std::printf("  failover: first acknowledged write %.1f ms after kill -9 (at %s)\n",
                  *r.failover_ms, r.failover_endpoint.c_str());
    } else {
      std::printf("  failover: no write succeeded within %.1f s\n", o.duration_s);
    }
  } else {
    const double ops_s = r.window_s > 0 ? static_cast<double>(r.stats.ops) / r.window_s : 0;
    std::printf("  window %.2f s   ops %llu   ops/s %.1f   errors %llu\n", r.window_s,
                static_cast<unsigned long long>(r.stats.ops), ops_s,
                static_cast<unsigned long long>(r.ErrorsTotal()));
    std::printf("  %-20s %10s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "mean", "p50",
                "p90", "p99", "p99.9", "max");
    const std::vector<std::string> names = HistogramNames(o.workload);
    for (size_t i = 0; i < names.size() && i < kHistCount; ++i) {
      const Histogram& h = r.stats.hist[i];
      std::printf("  %-20s %10llu %9.3f", names[i].c_str(),
                  static_cast<unsigned long long>(h.count()), h.mean() / 1e6);
      for (double q : kQuantiles) std::printf(" %9.3f", Ms(h.ValueAtQuantile(q)));
      std::printf(" %9.3f\n", Ms(h.max()));
    }
  }
  for (const auto& [name, n] : r.stats.counters) {
    std::printf("  %-32s %12llu", name.c_str(), static_cast<unsigned long long>(n));
    const bool rate = name != "mutual_exclusion_violations" && name != "token_order_violations" &&
                      name != "sessions" && name != "locks_held" && name != "sessions_revoked";
    if (r.window_s > 0 && rate) std::printf("   %.1f/s", static_cast<double>(n) / r.window_s);
    std::printf("\n");
  }
  for (size_t code = 0; code < r.stats.errors.size(); ++code) {
    if (r.stats.errors[code] == 0) continue;
    auto it = r.stats.error_samples.find(static_cast<int>(code));
    std::printf("  error %-20s %8llu   e.g. \"%s\"\n", StatusCodeName(static_cast<int>(code)),
                static_cast<unsigned long long>(r.stats.errors[code]),
                it == r.stats.error_samples.end() ? "" : it->second.c_str());
  }
  if (r.window_s > 0 && o.workload != Workload::kFailover) {
    double servers = 0;
    for (const auto& [pid, sec] : r.cpu_pids_s) servers += sec > 0 ? sec : 0;
    std::printf("  cpu in window: warden-bench %.2f s", r.cpu_self_s);
    if (!r.cpu_pids_s.empty()) std::printf(", --cpu-pids %.2f s", servers);
    if (r.stats.ops > 0)
      std::printf("  (%.1f us per op in all)",
                  (servers + r.cpu_self_s) * 1e6 / static_cast<double>(r.stats.ops));
    std::printf("\n");
  }
  for (const std::string& n : r.notes) std::printf("  note: %s\n", n.c_str());
  std::fflush(stdout);
}

bool WriteJson(const Options& o, const Result& r, const std::string& path) {
  std::ostringstream j;
  j << "{\n  \"tool\": \"warden-bench\",\n  \"label\": " << JsonString(o.label)
    << ",\n  \"workload\": " << JsonString(WorkloadName(o.workload)) << ",\n  \"endpoints\": [";
  for (size_t i = 0; i < o.endpoints.size(); ++i)
    j << (i ? ", " : "") << JsonString(o.endpoints[i]);
  j << "],\n  \"clients\": " << o.clients << ", \"conns\": " << o.conns
    << ", \"threads\": " << o.threads << ", \"key_size\": " << o.key_size
    << ", \"value_size\": " << o.value_size << ", \"keys\": " << o.keys
    << ", \"locks\": " << o.EffectiveLocks() << ", \"watchers\": " << o.watchers
    << ", \"watch_streams\": " << o.EffectiveWatchStreams()
    << ", \"sessions\": " << o.EffectiveSessions()
    << ", \"locks_per_session\": " << o.locks_per_session << ", \"rate\": " << Num(o.rate)
    << ",\n  \"warmup_s\": " << Num(o.warmup_s) << ", \"duration_s\": " << Num(o.duration_s)
    << ", \"window_s\": " << Num(r.window_s) << ",\n  \"clients_total\": " << r.clients_total
    << ", \"clients_ready\": " << r.clients_ready << ", \"conns_ready\": " << r.conns_ready
    << ", \"connect_s\": " << Num(r.connect_s) << ", \"setup_s\": " << Num(r.setup_s)
    << ", \"setup_timed_out\": " << (r.setup_timed_out ? "true" : "false")
    << ",\n  \"unsupported\": " << (r.unsupported ? "true" : "false")
    << ", \"unsupported_reason\": " << JsonString(r.unsupported_what)
    << ",\n  \"ops\": " << r.stats.ops << ", \"ops_per_s\": "
    << Num(r.window_s > 0 ? static_cast<double>(r.stats.ops) / r.window_s : 0)
    << ",\n  \"prefill_keys\": " << r.prefill_keys << ", \"prefill_s\": " << Num(r.prefill_s);
  if (o.workload == Workload::kFailover) {
    j << ",\n  \"failover_ms\": " << (r.failover_ms ? Num(*r.failover_ms) : "null")
      << ", \"failover_endpoint\": " << JsonString(r.failover_endpoint);
  }
  j << ",\n  \"errors_total\": " << r.ErrorsTotal() << ",\n  \"errors\": {";
  bool first = true;
  for (size_t code = 0; code < r.stats.errors.size(); ++code) {
    if (r.stats.errors[code] == 0) continue;
    j << (first ? "" : ", ") << JsonString(StatusCodeName(static_cast<int>(code))) << ": "
      << r.stats.errors[code];
    first = false;
  }
  j << "},\n  \"error_samples\": {";
  first = true;
  for (const auto& [code, msg] : r.stats.error_samples) {
    j << (first ? "" : ", ") << JsonString(StatusCodeName(code)) << ": " << JsonString(msg);
    first = false;
  }
  j << "},\n  \"latency_ms\": {";
  const std::vector<std::string> names = HistogramNames(o.workload);
  for (size_t i = 0; i < names.size() && i < kHistCount; ++i)
    j << (i ? ",\n    " : "\n    ") << JsonString(names[i]) << ": " << HistJson(r.stats.hist[i]);
  j << "},\n  \"counters\": {";
  first = true;
  for (const auto& [name, n] : r.stats.counters) {
    j << (first ? "" : ", ") << JsonString(name) << ": " << n;
    first = false;
  }
  j << "},\n  \"counters_per_s\": {";
  first = true;
  for (const auto& [name, n] : r.stats.counters) {
    j << (first ? "" : ", ") << JsonString(name) << ": "
      << Num(r.window_s > 0 ? static_cast<double>(n) / r.window_s : 0);
    first = false;
  }
  j << "},\n  \"cpu_s\": {\"self\": " << Num(r.cpu_self_s) << ", \"pids\": {";
  double servers = 0;
  for (size_t i = 0; i < r.cpu_pids_s.size(); ++i) {
    j << (i ? ", " : "") << "\"" << r.cpu_pids_s[i].first << "\": " << Num(r.cpu_pids_s[i].second);
    servers += r.cpu_pids_s[i].second > 0 ? r.cpu_pids_s[i].second : 0;
  }
  j << "}, \"pids_total\": " << Num(servers) << ", \"us_per_op\": "
    << Num(r.stats.ops > 0 ? (servers + r.cpu_self_s) * 1e6 / static_cast<double>(r.stats.ops) : 0);
  j << "},\n  \"notes\": [";
  for (size_t i = 0; i < r.notes.size(); ++i) j << (i ? ", " : "") << JsonString(r.notes[i]);
  j << "]\n}\n";
  std::ofstream f(path, std::ios::trunc);
  f << j.str();
  f.close();
  if (!f) {
    std::fprintf(stderr, "warden-bench: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace warden::bench

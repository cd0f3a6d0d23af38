#include "bench/load/options.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <sstream>

namespace warden::bench {

namespace {

struct WorkloadSpelling {
  Workload workload;
  const char* name;
};

constexpr WorkloadSpelling kWorkloads[] = {
    {Workload::kPut, "put"},
    {Workload::kRange, "range"},
    {Workload::kRangeSerializable, "range-serializable"},
    {Workload::kTxn, "txn"},
    {Workload::kLeaseKeepAlive, "lease-keepalive"},
    {Workload::kWatch, "watch"},
    {Workload::kLockV3, "lock-v3"},
    {Workload::kLockRecipe, "lock-recipe"},
    {Workload::kLockNative, "lock-native"},
    {Workload::kSessionChurn, "session-churn"},
    {Workload::kLocksHold, "locks-hold"},
    {Workload::kSessions, "sessions"},
    {Workload::kFailover, "failover"},
};

std::string StripScheme(std::string s) {
  for (const char* scheme : {"http://", "https://"}) {
    const std::string p = scheme;
    if (s.rfind(p, 0) == 0) s = s.substr(p.size());
  }
  return s;
}

int Decimals(uint64_t n) {
  int d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

// Cross-flag checks, after parsing. An empty string means the options are fine.
std::string Validate(const Options& o) {
  if (o.endpoints.empty()) return "--endpoints: give at least one host:port";
  if (o.clients < 1) return "--clients must be at least 1";
  if (o.conns < 1) return "--conns must be at least 1";
  if (o.threads < 1 || o.threads > 8) return "--threads must be 1..8";
  if (!(o.duration_s > 0)) return "--duration must be positive";
  if (o.warmup_s < 0) return "--warmup must not be negative";
  if (o.keys < 1) return "--keys must be at least 1";
  if (o.value_size < 0 || o.value_size > (1 << 20)) return "--value-size must be 0..1048576";
  // Keys are a 4-byte workload prefix and a zero-padded decimal index.
  if (o.key_size < 4 + Decimals(o.keys - 1) || o.key_size > 4096) {
    return "--key-size " + std::to_string(o.key_size) + " is too small for --keys " +
           std::to_string(o.keys) + " (need at least " + std::to_string(4 + Decimals(o.keys - 1)) +
           ")";
  }
  if (o.workload == Workload::kWatch && o.value_size < 8)
    return "--value-size must be at least 8 for watch (the send time is embedded)";
  if (o.rate < 0) return "--rate must not be negative";
  if (o.locks < 0) return "--locks must not be negative";
  if (o.hold_ms < 0) return "--hold-ms must not be negative";
  if (o.sessions < 0) return "--sessions must not be negative";
  if (o.locks_per_session < 1) return "--locks-per-session must be at least 1";
  if (o.keepalive_ms < 0) return "--keepalive-ms must not be negative";
  if (o.linger_s < 0 || o.linger_s > 600) return "--linger must be 0..600 seconds";
  if (o.idle_s < 0 || o.idle_s > 600) return "--idle must be 0..600 seconds";
  if ((o.workload == Workload::kLocksHold || o.workload == Workload::kSessions) &&
      o.EffectiveSessions() < o.clients)
    return "--sessions must be at least --clients (each client keeps its share alive)";
  if (o.watchers < 1) return "--watchers must be at least 1";
  if (o.watch_streams < 0) return "--watch-streams must not be negative";
  if (o.watch_prefix && o.watch_spread)
    return "--watch-prefix and --watch-spread exclude each other";
  if (o.EffectiveWatchStreams() > o.watchers) return "--watch-streams must not exceed --watchers";
  if (!(o.rpc_timeout_s > 0) || !(o.setup_timeout_s > 0) || !(o.drain_timeout_s > 0))
    return "timeouts must be positive";
  if (o.workload == Workload::kFailover && o.kill_pid <= 1)
    return "--workload failover needs --kill-pid PID (a process you started)";
  return "";
}

}  // namespace

const char* WorkloadName(Workload w) {
  for (const WorkloadSpelling& s : kWorkloads) {
    if (s.workload == w) return s.name;
  }
  return "?";
}

std::optional<Workload> ParseWorkload(const std::string& s) {
  for (const WorkloadSpelling& w : kWorkloads) {
    if (s == w.name) return w.workload;
  }
  return std::nullopt;
}

std::optional<int> ParseOptions(int argc, char** argv, Options* out) {
  Options o;
  std::string endpoints = "127.0.0.1:2379";
  std::string workload = "put";
  std::string key_order = "random";
  bool no_prefill = false;
  std::string names;
  for (const WorkloadSpelling& w : kWorkloads)
    names += (names.empty() ? "" : ", ") + std::string(w.name);

  CLI::App app{
      "warden-bench: an etcd v3 load generator for Warden and etcd (one process, few threads, "
      "many outstanding requests)"};
  app.add_option("--endpoints", endpoints, "comma-separated host:port list")->capture_default_str();
  app.add_option("--workload", workload, "one of: " + names)->capture_default_str();
  app.add_option("--clients", o.clients, "concurrent request loops (watch: writers)")
      ->capture_default_str();
  app.add_option("--conns", o.conns, "gRPC connections, round-robin over the endpoints")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "completion-queue threads (1-2 advised)")
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds measured (a cap when --total is given)")
      ->capture_default_str();
  app.add_option("--total", o.total, "stop after this many measured operations (0: by time)")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "seconds run before measuring")->capture_default_str();
  app.add_option("--key-size", o.key_size, "bytes per key")->capture_default_str();
  app.add_option("--value-size", o.value_size, "bytes per value")->capture_default_str();
  app.add_option("--keys", o.keys, "key space size")->capture_default_str();
  app.add_option("--key-order", key_order, "random or seq")->capture_default_str();
  app.add_flag("--no-prefill", no_prefill, "do not write the key space before range and txn runs");
  app.add_option("--rate", o.rate, "total operations per second (0: as fast as replies come)")
      ->capture_default_str();
  app.add_option("--locks", o.locks, "lock workloads: number of locks (0: one per client)")
      ->capture_default_str();
  app.add_option("--hold-ms", o.hold_ms, "lock workloads: hold time before release")
      ->capture_default_str();
  app.add_option("--sessions", o.sessions,
                 "locks-hold, sessions: leases in all, spread over the clients (0: one per client)")
      ->capture_default_str();
  app.add_option("--locks-per-session", o.locks_per_session,
                 "locks-hold: distinct locks each session acquires and holds")
      ->capture_default_str();
  app.add_option("--keepalive-ms", o.keepalive_ms,
                 "locks-hold, sessions: keep-alive interval per lease (0: TTL/3)")
      ->capture_default_str();
  app.add_option("--linger", o.linger_s,
                 "seconds to keep running (locks held, leases alive) after the window")
      ->capture_default_str();
  app.add_option("--idle", o.idle_s,
                 "seconds to wait after setup before the load starts (what was set up, e.g. "
                 "watches, stays idle meanwhile)")
      ->capture_default_str();
  app.add_option("--ready-file", o.ready_file,
                 "create this file once setup is done (a caller samples memory after it)");
  app.add_option("--watchers", o.watchers, "watch: number of watches")->capture_default_str();
  app.add_option("--watch-streams", o.watch_streams,
                 "watch: Watch streams carrying them (0: min(W,64))")
      ->capture_default_str();
  app.add_flag("--watch-prefix", o.watch_prefix, "watch: watch the key space prefix, not one key");
  app.add_flag("--watch-spread", o.watch_spread,
               "watch: watch j watches key j % --keys (the writers put random keys), not all one "
               "key");
  app.add_option("--lease-ttl", o.lease_ttl_s, "seconds (0: long enough for the run)")
      ->capture_default_str();
  app.add_option("--rpc-timeout", o.rpc_timeout_s, "deadline of each RPC, seconds")
      ->capture_default_str();
  app.add_option("--setup-timeout", o.setup_timeout_s,
                 "seconds allowed for leases and watches to open")
      ->capture_default_str();
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "seconds allowed for in-flight work after the end")
      ->capture_default_str();
  app.add_option("--kill-pid", o.kill_pid, "failover: PID to kill -9 (one the caller started)");
  std::string cpu_pids;
  app.add_option(
      "--cpu-pids", cpu_pids,
      "comma-separated PIDs (e.g. the servers) whose CPU time in the measured window is reported");
  app.add_option("--json", o.json_path, "also write the results as JSON to this file");
  app.add_option("--label", o.label, "a name for this run, copied into the JSON");
  app.add_flag("--quiet", o.quiet, "no table on stdout");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "warden-bench: " << e.what() << "\n";
    return 2;
  }

  o.endpoints.clear();
  std::stringstream in(endpoints);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) o.endpoints.push_back(StripScheme(item));
  }
  std::optional<Workload> w = ParseWorkload(workload);
  if (!w) {
    std::cerr << "warden-bench: unknown --workload \"" << workload << "\"; want one of " << names
              << "\n";
    return 2;
  }
  o.workload = *w;
  if (key_order == "random") {
    o.key_order = KeyOrder::kRandom;
  } else if (key_order == "seq") {
    o.key_order = KeyOrder::kSequential;
  } else {
    std::cerr << "warden-bench: --key-order must be random or seq\n";
    return 2;
  }
  o.prefill = !no_prefill;
  std::stringstream pids(cpu_pids);
  for (std::string item; std::getline(pids, item, ',');) {
    if (item.empty()) continue;
    try {
      o.cpu_pids.push_back(std::stoi(item));
    } catch (...) {
      std::cerr << "warden-bench: --cpu-pids: \"" << item << "\" is not a PID\n";
      return 2;
    }
  }
  // A count-bounded run is still bounded in time: 10 minutes unless given.
  if (o.total > 0 && app.count("--duration") == 0) o.duration_s = 600;
  if (std::string err = Validate(o); !err.empty()) {
    std::cerr << "warden-bench: " << err << "\n";
    return 2;
  }
  *out = o;
  return std::nullopt;
}

}  // namespace warden::bench

// failover: kill -9 a member (by a PID the caller started and passes in) and
// time how long until a write is acknowledged again. One process, one clock:
// the time is taken just before kill(2) and when the first Put returns OK.
//
// A write must succeed first, so that a cluster that was already broken is
// not measured. Then one probe loop per endpoint sends Puts with a 200 ms
// deadline and etcd's "hasleader" metadata (etcd then refuses at once when
// the member has no leader instead of holding the request); the first OK from
// any endpoint ends the measurement. Failed attempts are counted by code, as
// counters: they are expected while there is no leader.
#include "bench/load/failover.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace warden::bench {

namespace {

constexpr auto kProbeDeadline = std::chrono::milliseconds(200);

grpc::Status ProbePut(Conn* c, const std::string& value, std::chrono::milliseconds deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  ctx.AddMetadata("hasleader", "true");
  etcdserverpb::PutRequest req;
  req.set_key("wbf/failover");
  req.set_value(value);
  etcdserverpb::PutResponse resp;
  return c->kv->Put(&ctx, req, &resp);
}

}  // namespace

int RunFailover(const Options& o, Result* r) {
  std::vector<std::unique_ptr<Conn>> conns;
  for (size_t i = 0; i < o.endpoints.size(); ++i)
    conns.push_back(MakeConn(o.endpoints[i], static_cast<int>(i)));

  // 1. The cluster takes writes before the kill.
  bool healthy = false;
  const int64_t probe_end = NowNs() + 10'000'000'000;
  for (int attempt = 0; attempt < 200 && !healthy && NowNs() < probe_end; ++attempt) {
    for (auto& c : conns) {
      if (ProbePut(c.get(), "before", std::chrono::milliseconds(1000)).ok()) {
        healthy = true;
        break;
      }
    }
    if (!healthy) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!healthy) {
    r->notes.push_back(
        "no write succeeded before the kill: the cluster was not healthy; nothing killed");
    return 1;
  }

  // 2. kill -9.
  const int64_t t_kill = NowNs();
  if (::kill(o.kill_pid, SIGKILL) != 0) {
    r->notes.push_back("kill(" + std::to_string(o.kill_pid) + ", SIGKILL) failed");
    return 1;
  }

  // 3. Probe every endpoint until one write is acknowledged.
  const int64_t deadline = t_kill + static_cast<int64_t>(o.duration_s * 1e9);
  std::atomic<int64_t> first_ok{std::numeric_limits<int64_t>::max()};
  std::mutex mu;
  std::vector<std::thread> probes;
  for (auto& conn : conns) {
    probes.emplace_back([&, c = conn.get()] {
      for (int attempt = 0;
           attempt < 100000 && first_ok.load() == std::numeric_limits<int64_t>::max(); ++attempt) {
        const int64_t start = NowNs();
        if (start >= deadline) return;
        grpc::Status s = ProbePut(c, "after", kProbeDeadline);
        const int64_t end = NowNs();
        {
          std::lock_guard<std::mutex> lock(mu);
          if (s.ok()) {
            if (end < first_ok.load()) {
              first_ok.store(end);
              r->failover_endpoint = c->endpoint;
            }
            return;
          }
          r->stats.counters[std::string("attempts_failed_") + StatusCodeName(s.error_code())]++;
          r->stats.error_samples.emplace(s.error_code(), s.error_message());
        }
        // A refusal that came at once (no leader, connection refused): pace.
        if (end - start < 5'000'000) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  for (std::thread& t : probes) t.join();
  if (first_ok.load() == std::numeric_limits<int64_t>::max()) return 1;
  r->failover_ms = static_cast<double>(first_ok.load() - t_kill) / 1e6;
  return 0;
}

}  // namespace warden::bench

// warden-bench: a load generator for the etcd v3 API, run against Warden and
// Debian's etcd 3.4 alike (bench/README.md). One process drives many
// outstanding requests from 1-2 completion-queue threads (shard.h).
//
// Exit status: 0 the run finished (errors, if any, are in the report); 1 it
// could not run (setup failed or timed out, no operation done, failover not
// measured); 2 bad flags; 3 the server does not serve the workload's RPC
// (UNIMPLEMENTED), reported as "unsupported".
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "bench/load/clients.h"
#include "bench/load/failover.h"
#include "bench/load/options.h"
#include "bench/load/report.h"
#include "bench/load/shard.h"

namespace warden::bench {
namespace {

// Lets one process hold many connections (the 10,000-connection scale run).
void RaiseFileLimit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Opens every connection before the run and waits (bounded) until each is
// READY, so that a run over thousands of connections measures requests, not
// the connection storm. The waiting goes through a completion queue that this
// thread polls: that is what drives the handshakes forward. Returns how many
// connections are ready.
int ConnectAll(const std::vector<std::unique_ptr<Conn>>& conns, double timeout_s) {
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1e3));
  grpc::CompletionQueue cq;
  int ready = 0;
  int64_t pending = 0;
  auto watch = [&](size_t i) {
    const grpc_connectivity_state st = conns[i]->channel->GetState(/*try_to_connect=*/true);
    if (st == GRPC_CHANNEL_READY) {
      ++ready;
      return;
    }
    conns[i]->channel->NotifyOnStateChange(st, deadline, &cq, reinterpret_cast<void*>(i));
    ++pending;
  };
  for (size_t i = 0; i < conns.size(); ++i) watch(i);
  void* tag = nullptr;
  bool ok = false;
  while (pending > 0 && cq.Next(&tag, &ok)) {
    --pending;
    if (ok) watch(reinterpret_cast<size_t>(tag));  // state changed: ready yet?
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return ready;
}

// CPU seconds (user + system) a process has used so far, from
// /proc/PID/stat; -1 if it cannot be read. pid 0: this process.
double CpuSeconds(int pid) {
  const std::string path = pid == 0 ? "/proc/self/stat" : "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return -1;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
  if (p == nullptr) return -1;
  unsigned long long utime = 0, stime = 0;
  // After ")": state, then fields 4..13, then utime (14) and stime (15).
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2)
    return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU use of this process and of --cpu-pids over the measured window.
class CpuWindow {
 public:
  explicit CpuWindow(const std::vector<int>& pids) : pids_(pids) {}
  void Begin() {
    begun_ = true;
    self_ = CpuSeconds(0);
    for (int pid : pids_) start_.push_back(CpuSeconds(pid));
  }
  void End(Result* r) {
    if (!begun_) return;
    r->cpu_self_s = CpuSeconds(0) - self_;
    for (size_t i = 0; i < pids_.size(); ++i) {
      const double now = CpuSeconds(pids_[i]);
      r->cpu_pids_s.emplace_back(pids_[i], now < 0 || start_[i] < 0 ? -1 : now - start_[i]);
    }
  }

 private:
  std::vector<int> pids_;
  bool begun_ = false;
  double self_ = 0;
  std::vector<double> start_;
};

bool NeedsPrefill(Workload w) {
  return w == Workload::kRange || w == Workload::kRangeSerializable || w == Workload::kTxn;
}

// Runs one phase of workload `w` (setup, warm-up, measured window, drain)
// over `conns` and fills *r.
void RunPhase(const Options& o, Workload w, const std::vector<std::unique_ptr<Conn>>& conns,
              Result* r) {
  RunState run;
  run.total_limit = o.total;
  Workbench wb(o, w);
  std::vector<std::unique_ptr<Shard>> shards;
  for (int i = 0; i < o.threads; ++i) shards.push_back(std::make_unique<Shard>(i, o, &run));
  auto conn_for = [&](int i) { return conns[static_cast<size_t>(i) % conns.size()].get(); };

  int64_t total = 0;
  if (w == Workload::kWatch) {
    // Watch streams first, spread over the connections and threads; then
    // the writers, which start once every watch is created.
    const int streams = o.EffectiveWatchStreams();
    for (int s = 0; s < streams; ++s) {
      const int watches = o.watchers / streams + (s < o.watchers % streams ? 1 : 0);
      shards[s % o.threads]->AddClient(
          NewWatchStreamClient(shards[s % o.threads].get(), s, conn_for(s), &wb, watches));
    }
    for (int i = 0; i < o.clients; ++i) {
      Shard* shard = shards[(streams + i) % o.threads].get();
      shard->AddClient(NewClient(w, shard, i, conn_for(streams + i), &wb));
    }
    total = streams + o.clients;
  } else {
    for (int i = 0; i < o.clients; ++i) {
      Shard* shard = shards[i % o.threads].get();
      shard->AddClient(NewClient(w, shard, i, conn_for(i), &wb));
    }
    total = o.clients;
  }
  r->clients_total = total;
  const int64_t setup_start = NowNs();
  for (auto& s : shards) s->Start();

  // Setup: wait (bounded) until every client is ready.
  const int64_t setup_deadline = NowNs() + static_cast<int64_t>(o.setup_timeout_s * 1e9);
  while (run.clients_ready.load() < total && NowNs() < setup_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r->clients_ready = run.clients_ready.load();
  r->setup_s = static_cast<double>(NowNs() - setup_start) / 1e9;
  if (r->clients_ready < total) r->setup_timed_out = true;
  if (!o.ready_file.empty()) std::ofstream(o.ready_file) << r->clients_ready << "\n";
  // --idle: everything set up, nothing sent (the caller samples idle memory).
  const int64_t idle_end = NowNs() + static_cast<int64_t>(o.idle_s * 1e9);
  while (!r->setup_timed_out && NowNs() < idle_end && run.clients_finished.load() < total) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  if (!r->setup_timed_out && run.clients_finished.load() < total) {
    const int64_t t0 = NowNs();
    const int64_t measure_start = t0 + static_cast<int64_t>(o.warmup_s * 1e9);
    run.measure_start_ns.store(measure_start);
    run.stop_ns.store(measure_start + static_cast<int64_t>(o.duration_s * 1e9));
    run.phase.store(kRun);
    bool cpu_started = false;
    const int64_t hard_end = run.stop_ns.load() + 1'000'000'000;
    CpuWindow cpu(o.cpu_pids);
    while (true) {
      const int64_t now = NowNs();
      if (now >= measure_start && !cpu_started) {
        cpu.Begin();
        cpu_started = true;
      }
      if (now >= run.stop_ns.load() || now >= hard_end) break;
      if (run.clients_finished.load() >= total) {
        // Everyone gave up (e.g. unsupported): the window ends now.
        int64_t cur = run.stop_ns.load();
        while (now < cur && !run.stop_ns.compare_exchange_weak(cur, now)) {
        }
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    cpu.End(r);
    r->window_s =
        std::max<double>(0, static_cast<double>(run.stop_ns.load() - measure_start) / 1e9);
    // --linger: the clients go on (holding their locks, keeping their leases
    // alive) outside the window, e.g. while the caller samples memory.
    const int64_t linger_end = NowNs() + static_cast<int64_t>(o.linger_s * 1e9);
    while (NowNs() < linger_end && run.clients_finished.load() < total) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  run.phase.store(kStop);
  for (auto& s : shards) s->Join();
  for (auto& s : shards) r->stats.Merge(s->stats());
  r->unsupported = run.unsupported.load();
  if (r->unsupported) {
    std::lock_guard<std::mutex> lock(run.mu);
    r->unsupported_what = run.unsupported_what;
  }
  if (r->setup_timed_out) {
    r->notes.push_back("setup timed out: " + std::to_string(r->clients_ready) + " of " +
                       std::to_string(total) + " clients ready after " +
                       std::to_string(o.setup_timeout_s) + " s");
  }
}

int Main(int argc, char** argv) {
  Options o;
  if (std::optional<int> rc = ParseOptions(argc, argv, &o)) return *rc;
  RaiseFileLimit();
  // Debian builds Abseil without NDEBUG, so every absl::Mutex (gRPC's locks)
  // would track lock order in a cycle-detection graph: several percent of
  // the CPU of a gRPC process. Nothing here needs it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Result r;
  if (o.workload == Workload::kFailover) {
    const int rc = RunFailover(o, &r);
    if (!o.quiet) PrintTable(o, r);
    if (!o.json_path.empty() && !WriteJson(o, r, o.json_path)) return 1;
    return rc;
  }

  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < o.conns; ++i)
    conns.push_back(MakeConn(o.endpoints[static_cast<size_t>(i) % o.endpoints.size()], i));

  const int64_t connect_start = NowNs();
  r.conns_ready = ConnectAll(conns, o.setup_timeout_s);
  r.connect_s = static_cast<double>(NowNs() - connect_start) / 1e9;
  if (r.conns_ready < o.conns) {
    r.notes.push_back(std::to_string(o.conns - r.conns_ready) + " of " + std::to_string(o.conns) +
                      " connections not ready after " + std::to_string(o.setup_timeout_s) + " s");
  }

  if (NeedsPrefill(o.workload) && o.prefill) {
    Options p = o;
    p.workload = Workload::kPut;
    p.key_order = KeyOrder::kSequential;
    p.total = o.keys;
    p.warmup_s = 0;
    p.duration_s = 600;
    p.rate = 0;
    Result pr;
    RunPhase(p, Workload::kPut, conns, &pr);
    r.prefill_keys = pr.stats.ops;
    r.prefill_s = pr.window_s;
    if (pr.ErrorsTotal() > 0 || pr.stats.ops < o.keys) {
      r.notes.push_back("prefill: " + std::to_string(pr.stats.ops) + " of " +
                        std::to_string(o.keys) + " keys written, " +
                        std::to_string(pr.ErrorsTotal()) + " errors");
      r.stats.errors = pr.stats.errors;
      r.stats.error_samples = pr.stats.error_samples;
    }
  }
  RunPhase(o, o.workload, conns, &r);

  if (!o.quiet) PrintTable(o, r);
  if (!o.json_path.empty() && !WriteJson(o, r, o.json_path)) return 1;
  if (r.unsupported) return 3;
  if (r.setup_timed_out || r.stats.ops == 0) return 1;
  return 0;
}

}  // namespace
}  // namespace warden::bench

int main(int argc, char** argv) { return warden::bench::Main(argc, argv); }

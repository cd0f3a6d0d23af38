// warden-bench's command line: which workload, against which endpoints, with
// how much concurrency and for how long. Parsed with CLI11 (libcli11-dev).
#ifndef WARDEN_BENCH_LOAD_OPTIONS_H_
#define WARDEN_BENCH_LOAD_OPTIONS_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace warden::bench {

enum class Workload {
  kPut,                // Put of a key from the key space
  kRange,              // linearizable Range of one key
  kRangeSerializable,  // serializable Range of one key
  kTxn,                // compare-and-set on a key's version
  kLeaseKeepAlive,     // one keep-alive round trip per client stream
  kWatch,              // notification latency seen by W watchers
  kLockV3,             // v3lockpb.Lock/Unlock with a lease
  kLockRecipe,         // etcd's concurrency.Mutex recipe over lease + txn + watch
  kLockNative,         // warden.v1.Locks Acquire/Release with a session (lease)
  kSessionChurn,       // LeaseGrant, Put with the lease, LeaseRevoke
  kLocksHold,          // S sessions each acquire M distinct locks (warden.v1) and hold them
  kSessions,           // S sessions (leases) kept alive
  kFailover,           // kill -9 a given pid, time to the first successful write
};

// The flag spelling of each workload, and the reverse.
const char* WorkloadName(Workload w);
std::optional<Workload> ParseWorkload(const std::string& s);

enum class KeyOrder { kRandom, kSequential };

struct Options {
  std::vector<std::string> endpoints{"127.0.0.1:2379"};  // host:port (http:// stripped)
  Workload workload = Workload::kPut;
  int clients = 16;        // concurrent request loops (for watch: the writers)
  int conns = 4;           // gRPC channels (TCP connections), round-robin over endpoints
  int threads = 1;         // completion-queue threads; clients are split among them
  double duration_s = 10;  // measured window (an upper bound when --total is set)
  uint64_t total = 0;      // stop after this many measured operations (0: by time only)
  double warmup_s = 1;     // run this long before measuring
  int key_size = 16;
  int value_size = 256;
  uint64_t keys = 1000;  // key space
  KeyOrder key_order = KeyOrder::kRandom;
  bool prefill = true;         // write every key once before range/txn workloads
  double rate = 0;             // total operations per second over all clients; 0: closed loop
  int locks = 0;               // lock workloads: K locks shared by the clients; 0: one per client
  double hold_ms = 0;          // lock workloads: hold each lock this long before releasing
  int sessions = 0;            // locks-hold, sessions: leases in all (0: one per client)
  int locks_per_session = 10;  // locks-hold: distinct locks each session acquires
  double keepalive_ms = 0;     // locks-hold, sessions: per-lease interval (0: TTL / 3)
  double linger_s = 0;         // after the window, keep running (holding) this long
  double idle_s = 0;           // after setup, wait this long before any load (watches idle)
  std::string ready_file;      // created once setup is done (for a caller sampling memory)
  int watchers = 100;
  int watch_streams = 0;  // 0: min(watchers, 64)
  bool watch_prefix = false;
  bool watch_spread = false;  // watch j watches key j % keys
  int64_t lease_ttl_s = 0;    // 0: long enough for the whole run
  double rpc_timeout_s = 10;
  double setup_timeout_s = 60;
  double drain_timeout_s = 10;
  int kill_pid = 0;           // failover: the process to kill (started by the caller)
  std::vector<int> cpu_pids;  // processes whose CPU time in the window is reported
  std::string json_path;
  std::string label;  // copied into the JSON, e.g. "etcd" or "warden"
  bool quiet = false;

  // Derived.
  int EffectiveLocks() const { return locks > 0 ? locks : clients; }
  int EffectiveSessions() const { return sessions > 0 ? sessions : clients; }
  int EffectiveWatchStreams() const {
    return watch_streams > 0 ? watch_streams : std::min(watchers, 64);
  }
};

// Parses argv into *out. Returns an exit status to stop with (0 for --help,
// 2 for a bad flag, message printed), or nullopt to go on.
std::optional<int> ParseOptions(int argc, char** argv, Options* out);

}  // namespace warden::bench

#endif  // WARDEN_BENCH_LOAD_OPTIONS_H_

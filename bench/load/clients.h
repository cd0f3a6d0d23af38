// The workloads' clients, and what they share within one run.
#ifndef WARDEN_BENCH_LOAD_CLIENTS_H_
#define WARDEN_BENCH_LOAD_CLIENTS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/load/options.h"
#include "bench/load/shard.h"

namespace warden::bench {

// State shared by every client of a run, across shards (atomics only, once
// the run has started).
class Workbench {
 public:
  Workbench(const Options& o, Workload w);

  const Options& options() const { return o_; }
  Workload workload() const { return workload_; }
  const std::string& value() const { return value_; }
  // Key `i` of the key space: a 4-byte prefix and a zero-padded decimal,
  // exactly --key-size bytes.
  std::string Key(uint64_t i) const;
  std::string KeyPrefix() const { return prefix_; }
  // The next key for a client: uniform over the key space, or the next in
  // sequence (shared by all clients) with --key-order seq.
  uint64_t NextKeyIndex(std::mt19937_64& rng);
  int64_t lease_ttl_s() const { return lease_ttl_s_; }

  // txn: the version each key was last seen at (a hint; a failed compare
  // refreshes it).
  std::atomic<int64_t>& version(uint64_t i) { return versions_[i]; }

  // Lock workloads: an in-process check of mutual exclusion (one holder per
  // lock at a time, as the server granted it) and hand-over counting.
  void OnAcquired(Shard* shard, int lock, int client, int64_t start_ns, int64_t end_ns);
  void OnReleasing(int lock, int client);
  // lock-native: fencing tokens of one lock strictly increase in grant order;
  // a token not above the lock's previous one counts as
  // token_order_violations.
  void CheckToken(Shard* shard, int lock, uint64_t token);

 private:
  const Options& o_;
  Workload workload_;
  std::string prefix_;
  std::string value_;
  int64_t lease_ttl_s_;
  std::atomic<uint64_t> seq_{0};
  std::unique_ptr<std::atomic<int64_t>[]> versions_;
  std::unique_ptr<std::atomic<int64_t>[]> holders_;
  std::unique_ptr<std::atomic<int64_t>[]> last_holders_;
  std::unique_ptr<std::atomic<uint64_t>[]> last_tokens_;
};

// The smallest key greater than every key with this prefix (etcd's range_end
// for a prefix).
std::string PrefixEnd(const std::string& prefix);

// A client of a request-loop workload (everything but watch's watchers).
std::unique_ptr<Client> NewClient(Workload w, Shard* shard, int id, Conn* conn, Workbench* wb);
// One Watch stream carrying `watches` watches of the watch workload.
std::unique_ptr<Client> NewWatchStreamClient(Shard* shard, int id, Conn* conn, Workbench* wb,
                                             int watches);

// Lock clients (lock_clients.cc).
std::unique_ptr<Client> NewLockV3Client(Shard* shard, int id, Conn* conn, Workbench* wb);
std::unique_ptr<Client> NewLockRecipeClient(Shard* shard, int id, Conn* conn, Workbench* wb);
std::unique_ptr<Client> NewLockNativeClient(Shard* shard, int id, Conn* conn, Workbench* wb);

// Session clients (session_clients.cc): session-churn, and the pools of
// sessions of locks-hold and sessions.
std::unique_ptr<Client> NewSessionChurnClient(Shard* shard, int id, Conn* conn, Workbench* wb);
std::unique_ptr<Client> NewSessionPoolClient(Shard* shard, int id, Conn* conn, Workbench* wb);

}  // namespace warden::bench

#endif  // WARDEN_BENCH_LOAD_CLIENTS_H_

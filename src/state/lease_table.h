// LeaseTable: the replicated part of etcd leases.
//
// What is replicated: each lease's granted TTL, the remaining TTL recorded by
// the last checkpoint (0 = none since the last grant or renewal), and the keys
// attached to it. What is not: the deadline. Only the leader counts time, on
// its own monotonic clock (node layer); when a lease runs out it proposes a
// revoke, which deletes the attached keys through the log. So every replica
// expires a lease at the same point of the log, and no replica reads a clock.
//
// Checkpoints make a new leader resume from the remaining time instead of the
// full TTL, so elections cannot keep a dead lease alive; a renewal after a
// checkpoint resets it (checkpoint of 0) before it is acknowledged, so a new
// leader never expires a lease early either (docs/state.md).
//
// Thread safety: none; owned by the state machine.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"
#include "src/state/mvcc.h"

namespace warden::state {

struct Lease {
  int64_t id = 0;
  int64_t ttl_seconds = 0;
  // From the last checkpoint; 0 means "the full TTL from the last renewal".
  int64_t remaining_ms = 0;
  std::set<std::string> keys;
};

class LeaseTable {
 public:
  // etcd's limits: TTLs are clamped up to a minimum and refused above a max.
  static constexpr int64_t kMaxTtlSeconds = 9000000000LL;

  // REQUIRES: id != 0 (the leader picks ids before proposing).
  Status Grant(int64_t id, int64_t ttl_seconds);
  // Returns the attached keys (the caller deletes them in the same entry).
  Result<std::vector<std::string>> Revoke(int64_t id);
  // Records the remaining time of a lease (0 resets to the full TTL). Unknown
  // ids are ignored: the lease may have been revoked since.
  void Checkpoint(int64_t id, int64_t remaining_ms);

  // Keeps key attachments in step with a write transaction's events.
  void OnEvents(const std::vector<Event>& events);

  bool Exists(int64_t id) const { return leases_.count(id) > 0; }
  const Lease* Find(int64_t id) const;
  const std::map<int64_t, Lease>& all() const { return leases_; }

  std::string Serialize() const;
  static Result<LeaseTable> Deserialize(std::string_view data);

 private:
  std::map<int64_t, Lease> leases_;
};

}  // namespace warden::state

// LeaseChecker: the lease-safety check. Lease-attached keys live outside the
// linearizability check (their deletions by expiry happen at a time no client
// chose), so leases get their own cheap invariant, checked whenever a replica
// applies a revoke:
//
//   1. Gone means gone: after a revoke (by a client or by expiry) the lease
//      is not in the replica's lease table and no key is attached to it.
//   2. Never early: a revoke by expiry (proposed by a leader, proposal id 0)
//      is applied no earlier than the grant's invocation plus its TTL, scaled
//      by the fastest clock the run allows (1 - drift_max): leaders count the
//      TTL on their own clocks and a new leader resumes from the last
//      checkpoint, so the lease can only run longer, never shorter.
//
// Renewals are not part of rule 2: a keep-alive answered by a deposed leader
// extends nothing on the real one (as in etcd), so only the grant bounds the
// expiry from below.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <map>

#include "sim/invariants.h"
#include "sim/world.h"
#include "src/raft/types.h"
#include "src/state/state_machine.h"

namespace warden::sim {

class LeaseChecker {
 public:
  LeaseChecker(Invariants* invariants, double drift_max)
      : invariants_(invariants), drift_max_(drift_max) {}

  // A client invoked a grant of lease `id` with `ttl_seconds` at `at_us`.
  void OnGrantInvoked(int64_t id, int64_t ttl_seconds, TimeUs at_us);
  // `node` applied `e` and its state machine is now `sm`.
  void OnApplied(NodeId node, const raft::Entry& e, const state::StateMachine& sm, TimeUs now_us);

  uint64_t expiries_seen() const { return expiries_seen_; }

 private:
  struct Grant {
    int64_t ttl_seconds = 0;
    TimeUs invoked_us = 0;
  };

  Invariants* invariants_;
  double drift_max_;
  std::map<int64_t, Grant> grants_;
  uint64_t expiries_seen_ = 0;
};

}  // namespace warden::sim

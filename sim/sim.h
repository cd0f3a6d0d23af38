// One simulated run of a Warden cluster, from a seed (TigerBeetle's VOPR shape).
//
// The seed picks the cluster size (unless given), the fault plan and every
// random choice after that. A run has two phases:
//   1. Safety: clients run reads, puts, deletes, compare-and-sets and lease
//      operations, and lock clients run lock cycles (sim/lock_client.h),
//      against the real node driver and state machine while the nemesis
//      injects the plan's faults; the invariants (with the lease and lock
//      checks) are checked after every event and the run stops at the first
//      violation.
//   2. Liveness: every fault heals (partitions, loss, pauses; crashed nodes
//      restart); within a bounded simulated time a leader must exist, every
//      client must complete an operation it invoked after the heal, and every
//      lock client a lock cycle it began after it.
// Finally the clients' history must be linearizable; the checker's timeout
// gives "unknown", which is reported but never counted as a pass or a failure.
//
// Thread safety: RunSeed is reentrant (a run shares nothing).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/faults.h"
#include "sim/invariants.h"
#include "src/raft/raw_node.h"
#include "src/state/lock_table.h"

namespace warden::sim {

struct BugSet {
  raft::InjectedBugs raft;
  bool skip_persist_vote = false;
  state::LockBugs locks;
};

// Adds the planted bug `name` (vote-ignores-log, commit-old-term,
// skip-persist-vote, read-without-quorum, lock-skip-queue, lock-reuse-token,
// lock-guard-any-holder, lock-keep-ended-waits) to `bugs`; false if unknown.
bool AddBug(const std::string& name, BugSet* bugs);
const char* BugNames();

struct SimOptions {
  uint64_t seed = 0;
  int nodes = 0;  // 3, 5 or 7; 0: the seed picks
  uint32_t faults = kFaultAll;
  TimeUs safety_us = 20 * kUsPerS;
  // The bound on the liveness phase: ten election timeouts plus some seconds.
  TimeUs liveness_us = 8 * kUsPerS;
  BugSet bugs;
  bool trace = false;
  std::chrono::milliseconds check_timeout{5000};
};

struct SimResult {
  uint64_t seed = 0;
  int nodes = 0;
  std::optional<Violation> violation;
  bool linearizability_unknown = false;
  std::string unknown_detail;
  TimeUs simulated_us = 0;
  uint64_t events = 0;
  uint64_t ops = 0;            // operations in the history
  uint64_t lock_grants = 0;    // new holds, as the lock check saw them
  uint64_t fenced_writes = 0;  // guarded writes refused for a stale token
  std::string trace;           // when SimOptions::trace
};

SimResult RunSeed(const SimOptions& options);

}  // namespace warden::sim

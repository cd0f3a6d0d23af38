// The fault plan of one run: which faults are on and how hard they hit.
//
// `--faults` names the faults a run may use (all, none, or a comma list); the
// seed then picks, for each allowed fault, whether this run uses it (most runs
// use most of them, so each seed explores a different mix, as in TigerBeetle's
// VOPR) and its rate. Rates are per simulated second unless said otherwise.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <string>

#include "sim/world.h"
#include "src/base/random.h"
#include "src/base/status.h"

namespace warden::sim {

enum Fault : uint32_t {
  kFaultLoss = 1u << 0,
  kFaultDuplicate = 1u << 1,
  kFaultReorder = 1u << 2,     // reordering through random extra delay
  kFaultPartition = 1u << 3,   // symmetric and partial partitions
  kFaultOneWay = 1u << 4,      // one-way partitions
  kFaultCrash = 1u << 5,       // crash and restart
  kFaultTorn = 1u << 6,        // crashes keep a random prefix of unsynced writes, one torn
  kFaultClock = 1u << 7,       // tick drift, skew and process pauses
  kFaultMembership = 1u << 8,  // membership changes
  kFaultTransfer = 1u << 9,    // leadership transfers
  kFaultSnapshot = 1u << 10,   // frequent snapshots and compaction
  kFaultAll = (1u << 11) - 1,
};

// Parses "all", "none" or a comma list of names (loss, dup, reorder, partition,
// oneway, crash, torn, clock, membership, transfer, snapshot).
Result<uint32_t> ParseFaults(const std::string& text);
std::string FaultNames(uint32_t faults);

struct FaultPlan {
  uint32_t faults = 0;  // the faults this run uses
  double loss = 0;
  double duplicate = 0;
  double reorder = 0;
  TimeUs reorder_max_us = 0;
  TimeUs partition_every_us = 0;  // mean gap between partitions (0: none)
  TimeUs partition_max_us = 0;    // longest a partition lasts
  TimeUs crash_every_us = 0;
  TimeUs down_max_us = 0;       // longest a crashed node stays down
  double crash_after_vote = 0;  // chance a node crashes right after granting a vote
  double crash_new_leader = 0;  // chance a new leader crashes soon after winning
  double drift_max = 0;         // tick interval = base * (1 + drift), |drift| <= max
  TimeUs pause_every_us = 0;
  TimeUs pause_max_us = 0;
  TimeUs membership_every_us = 0;
  TimeUs transfer_every_us = 0;
  uint64_t snapshot_every = 0;  // applied entries between snapshots

  bool Has(Fault f) const { return (faults & f) != 0; }
  std::string Describe() const;
};

// Draws the plan for a run from `rng`, using only faults in `allowed`.
FaultPlan PickFaultPlan(Rng& rng, uint32_t allowed);

}  // namespace warden::sim

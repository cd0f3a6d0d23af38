#include "sim/faults.h"

#include <utility>
#include <vector>

namespace warden::sim {
namespace {

const std::vector<std::pair<const char*, Fault>>& Names() {
  static const std::vector<std::pair<const char*, Fault>> kNames = {
      {"loss", kFaultLoss},
      {"dup", kFaultDuplicate},
      {"reorder", kFaultReorder},
      {"partition", kFaultPartition},
      {"oneway", kFaultOneWay},
      {"crash", kFaultCrash},
      {"torn", kFaultTorn},
      {"clock", kFaultClock},
      {"membership", kFaultMembership},
      {"transfer", kFaultTransfer},
      {"snapshot", kFaultSnapshot},
  };
  return kNames;
}

}  // namespace

Result<uint32_t> ParseFaults(const std::string& text) {
  if (text == "all") return static_cast<uint32_t>(kFaultAll);
  if (text == "none") return 0u;
  uint32_t out = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string name = text.substr(pos, comma - pos);
    bool found = false;
    for (const auto& [n, f] : Names()) {
      if (name == n) {
        out |= f;
        found = true;
      }
    }
    if (!found) {
      return Status::InvalidArgument(
          "unknown fault '" + name +
          "' (want all, none, or a comma list of: " + FaultNames(kFaultAll) + ")");
    }
    pos = comma + 1;
  }
  return out;
}

std::string FaultNames(uint32_t faults) {
  std::string out;
  for (const auto& [n, f] : Names()) {
    if ((faults & f) == 0) continue;
    if (!out.empty()) out.push_back(',');
    out += n;
  }
  return out.empty() ? "none" : out;
}

FaultPlan PickFaultPlan(Rng& rng, uint32_t allowed) {
  FaultPlan p;
  // Each allowed fault is on in 80% of runs: most runs mix many faults, and
  // some runs leave one out, which finds bugs that one fault hides.
  for (const auto& [n, f] : Names()) {
    if ((allowed & f) && rng.Chance(0.8)) p.faults |= f;
  }
  // Torn writes only matter with crashes.
  if (!p.Has(kFaultCrash)) p.faults &= ~static_cast<uint32_t>(kFaultTorn);
  if (p.Has(kFaultLoss)) p.loss = 0.01 + 0.1 * rng.UnitDouble();
  if (p.Has(kFaultDuplicate)) p.duplicate = 0.01 + 0.05 * rng.UnitDouble();
  if (p.Has(kFaultReorder)) {
    p.reorder = 0.05 + 0.3 * rng.UnitDouble();
    p.reorder_max_us = rng.Range(5, 60) * kUsPerMs;
  }
  if (p.Has(kFaultPartition) || p.Has(kFaultOneWay)) {
    p.partition_every_us = rng.Range(500, 4000) * kUsPerMs;
    p.partition_max_us = rng.Range(300, 5000) * kUsPerMs;
  }
  if (p.Has(kFaultCrash)) {
    p.crash_every_us = rng.Range(300, 4000) * kUsPerMs;
    p.down_max_us = rng.Range(100, 3000) * kUsPerMs;
    p.crash_after_vote = 0.1 + 0.3 * rng.UnitDouble();
    p.crash_new_leader = 0.1 + 0.3 * rng.UnitDouble();
  }
  if (p.Has(kFaultClock)) {
    p.drift_max = 0.02 + 0.2 * rng.UnitDouble();
    p.pause_every_us = rng.Range(500, 5000) * kUsPerMs;
    p.pause_max_us = rng.Range(50, 2000) * kUsPerMs;
  }
  if (p.Has(kFaultMembership)) p.membership_every_us = rng.Range(500, 4000) * kUsPerMs;
  if (p.Has(kFaultTransfer)) p.transfer_every_us = rng.Range(300, 3000) * kUsPerMs;
  p.snapshot_every = p.Has(kFaultSnapshot) ? rng.Range(3, 40) : 10000;
  return p;
}

std::string FaultPlan::Describe() const {
  return Format(
      "faults=%s loss=%.3f dup=%.3f reorder=%.2f/%lldms partition=%lld/%lldms "
      "crash=%lld/%lldms vote-crash=%.2f leader-crash=%.2f drift=%.3f pause=%lld/%lldms "
      "membership=%lldms "
      "transfer=%lldms snapshot_every=%llu",
      FaultNames(faults).c_str(), loss, duplicate, reorder,
      static_cast<long long>(reorder_max_us / kUsPerMs),
      static_cast<long long>(partition_every_us / kUsPerMs),
      static_cast<long long>(partition_max_us / kUsPerMs),
      static_cast<long long>(crash_every_us / kUsPerMs),
      static_cast<long long>(down_max_us / kUsPerMs), crash_after_vote, crash_new_leader, drift_max,
      static_cast<long long>(pause_every_us / kUsPerMs),
      static_cast<long long>(pause_max_us / kUsPerMs),
      static_cast<long long>(membership_every_us / kUsPerMs),
      static_cast<long long>(transfer_every_us / kUsPerMs),
      static_cast<unsigned long long>(snapshot_every));
}

}  // namespace warden::sim

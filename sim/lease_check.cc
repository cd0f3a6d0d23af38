#include "sim/lease_check.h"

#include "src/state/command.h"

namespace warden::sim {

void LeaseChecker::OnGrantInvoked(int64_t id, int64_t ttl_seconds, TimeUs at_us) {
  grants_.emplace(id, Grant{ttl_seconds, at_us});
}

void LeaseChecker::OnApplied(NodeId node, const raft::Entry& e, const state::StateMachine& sm,
                             TimeUs now_us) {
  // command := version:u8 | type:u8 | ...: only revokes are decoded.
  if (e.type != raft::EntryType::kNormal || e.data.size() < 2 ||
      static_cast<uint8_t>(e.data[1]) != static_cast<uint8_t>(state::CommandType::kLeaseRevoke)) {
    return;
  }
  const Result<state::Command> c = state::DecodeCommand(e.data);
  if (!c.ok()) return;  // the state machine refused it too
  const int64_t id = c->lease_id;
  if (sm.leases().Exists(id)) {
    return invariants_->Report(
        "lease-safety", Format("n%llu still has lease %lld after applying its revoke at %llu",
                               U(node), static_cast<long long>(id), U(e.index)));
  }
  state::RangeOptions all;
  all.range.key = std::string(1, '\0');
  all.range.range_end = std::string(1, '\0');
  const Result<state::RangeResult> kvs = sm.kv().Range(all);
  if (kvs.ok()) {
    for (const state::KeyValue& kv : kvs->kvs) {
      if (kv.lease == id) {
        return invariants_->Report(
            "lease-safety",
            Format("n%llu key %s survives the revoke of its lease %lld at %llu", U(node),
                   kv.key.c_str(), static_cast<long long>(id), U(e.index)));
      }
    }
  }
  if (c->proposal_id != 0) return;  // a client's revoke
  auto g = grants_.find(id);
  if (g == grants_.end()) return;
  ++expiries_seen_;
  const TimeUs earliest_us =
      g->second.invoked_us +
      static_cast<TimeUs>(static_cast<double>(g->second.ttl_seconds * kUsPerS) * (1 - drift_max_)) -
      2 * kUsPerMs;  // the node clocks count whole milliseconds
  if (now_us < earliest_us) {
    invariants_->Report(
        "lease-safety",
        Format("n%llu applied the expiry of lease %lld (ttl %llds, granted at %lldms) at %lldms, "
               "before %lldms",
               U(node), static_cast<long long>(id), static_cast<long long>(g->second.ttl_seconds),
               static_cast<long long>(g->second.invoked_us / kUsPerMs),
               static_cast<long long>(now_us / kUsPerMs),
               static_cast<long long>(earliest_us / kUsPerMs)));
  }
}

}  // namespace warden::sim

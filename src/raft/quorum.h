// Quorum arithmetic for a majority configuration and for a joint one (Raft
// thesis 4.3: during a joint configuration every decision needs a majority of
// the incoming voters AND a majority of the outgoing voters).
//
// Both functions are pure: they read an "acknowledged value per node" map and
// a set of voters.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "src/base/ids.h"

namespace warden::raft {

enum class VoteResult { kPending, kWon, kLost };

using NodeSet = std::set<NodeId>;

// Invariant: a JointConfig with an empty `outgoing` behaves as a plain
// majority of `incoming`.
struct JointConfig {
  NodeSet incoming;
  NodeSet outgoing;

  bool IsJoint() const { return !outgoing.empty(); }
  bool Contains(NodeId id) const { return incoming.count(id) || outgoing.count(id); }
  NodeSet All() const;
};

// The largest value v such that a majority of `voters` acknowledged >= v.
// Nodes missing from `acked` count as 0. An empty voter set yields UINT64_MAX
// (it never constrains a joint decision).
uint64_t MajorityValue(const NodeSet& voters, const std::map<NodeId, uint64_t>& acked);
uint64_t JointValue(const JointConfig& c, const std::map<NodeId, uint64_t>& acked);

VoteResult MajorityVote(const NodeSet& voters, const std::map<NodeId, bool>& votes);
VoteResult JointVote(const JointConfig& c, const std::map<NodeId, bool>& votes);

}  // namespace warden::raft

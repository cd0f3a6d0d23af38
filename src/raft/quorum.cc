#include "src/raft/quorum.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace warden::raft {

NodeSet JointConfig::All() const {
  NodeSet all = incoming;
  all.insert(outgoing.begin(), outgoing.end());
  return all;
}

uint64_t MajorityValue(const NodeSet& voters, const std::map<NodeId, uint64_t>& acked) {
  if (voters.empty()) return std::numeric_limits<uint64_t>::max();
  std::vector<uint64_t> values;
  values.reserve(voters.size());
  for (NodeId id : voters) {
    auto it = acked.find(id);
    values.push_back(it == acked.end() ? 0 : it->second);
  }
  // Sorted descending, the value at position n/2 is held by n/2+1 voters.
  std::sort(values.begin(), values.end(), std::greater<>());
  return values[values.size() / 2];
}

uint64_t JointValue(const JointConfig& c, const std::map<NodeId, uint64_t>& acked) {
  return std::min(MajorityValue(c.incoming, acked), MajorityValue(c.outgoing, acked));
}

VoteResult MajorityVote(const NodeSet& voters, const std::map<NodeId, bool>& votes) {
  if (voters.empty()) return VoteResult::kWon;
  size_t yes = 0, missing = 0;
  for (NodeId id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++yes;
    }
  }
  const size_t quorum = voters.size() / 2 + 1;
  if (yes >= quorum) return VoteResult::kWon;
  if (yes + missing >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

VoteResult JointVote(const JointConfig& c, const std::map<NodeId, bool>& votes) {
  const VoteResult in = MajorityVote(c.incoming, votes);
  const VoteResult out = MajorityVote(c.outgoing, votes);
  if (in == out) return in;
  if (in == VoteResult::kLost || out == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace warden::raft

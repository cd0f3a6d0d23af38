// Membership changes by joint consensus (thesis 4.3). A change is proposed as
// a kConfChange entry and takes effect when it is applied (as in etcd), so a
// leader allows one pending change at a time. A change that alters the voter
// set enters the joint configuration (new voters, old voters); once that is
// applied the leader proposes the empty change that leaves it. A change that
// touches only learners takes effect directly. A leader that is not a voter
// of the final configuration steps down once it applies it.
#include <algorithm>
#include <string>

#include "src/base/check.h"
#include "src/raft/raft.h"

namespace warden::raft {

namespace {
std::vector<NodeId> Sorted(const NodeSet& s) { return {s.begin(), s.end()}; }
}  // namespace

void Raft::SetConfiguration(const ConfState& cs) {
  config_.incoming = NodeSet(cs.voters.begin(), cs.voters.end());
  config_.outgoing = NodeSet(cs.voters_outgoing.begin(), cs.voters_outgoing.end());
  learners_ = NodeSet(cs.learners.begin(), cs.learners.end());
  conf_state_.voters = Sorted(config_.incoming);
  conf_state_.voters_outgoing = Sorted(config_.outgoing);
  conf_state_.learners = Sorted(learners_);

  NodeSet members = config_.All();
  members.insert(learners_.begin(), learners_.end());
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = members.count(it->first) ? std::next(it) : progress_.erase(it);
  }
  for (NodeId id : members) {
    auto [it, inserted] = progress_.try_emplace(id, log_.LastIndex() + 1, cfg_.max_inflight_msgs);
    if (inserted && id == id_) it->second.MaybeUpdate(log_.StableLastIndex());
    it->second.set_learner(learners_.count(id) > 0);
  }
  if (lead_transferee_ != kNoNode && !IsVoter(lead_transferee_)) AbortLeaderTransfer();
}

void Raft::ApplyConfChange(const ConfChange& cc) {
  ConfState next;
  if (cc.IsLeaveJoint()) {
    if (!config_.IsJoint()) return;  // nothing to leave (a duplicate)
    next = conf_state_;
    next.voters_outgoing.clear();
  } else {
    // Refused at proposal time; an entry from an older leader that slipped
    // through is ignored identically on every replica.
    if (config_.IsJoint()) return;
    NodeSet voters = config_.incoming;
    NodeSet learners = learners_;
    for (const ConfChangeSingle& c : cc.changes) {
      switch (c.type) {
        case ConfChangeType::kAddVoter:
          voters.insert(c.node);
          learners.erase(c.node);
          break;
        case ConfChangeType::kAddLearner:
          if (!voters.count(c.node)) learners.insert(c.node);
          break;
        case ConfChangeType::kRemoveNode:
          voters.erase(c.node);
          learners.erase(c.node);
          break;
      }
    }
    if (voters.empty()) return;
    next.voters = Sorted(voters);
    next.learners = Sorted(learners);
    if (voters != config_.incoming) next.voters_outgoing = Sorted(config_.incoming);
  }
  SetConfiguration(next);

  if (role_ != Role::kLeader) return;
  if (!config_.Contains(id_)) {
    // Thesis 4.2.2: the removed leader steps down once the configuration
    // without it is committed (here: applied).
    BecomeFollower(term_, kNoNode);
    return;
  }
  // The quorum changed: the commit index may move, new members need the log.
  MaybeCommit();
  BroadcastAppend();
}

void Raft::MaybeAutoLeaveJoint() {
  if (role_ != Role::kLeader || !config_.IsJoint()) return;
  if (pending_conf_index_ > log_.applied()) return;
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = ConfChange{}.Encode();
  // May be dropped during a leadership transfer; retried after the next apply.
  (void)Propose({std::move(e)});
}

Status Raft::ProposeConfChange(const ConfChange& cc) {
  if (role_ != Role::kLeader) return Status::NotLeader("not the leader");
  if (cc.IsLeaveJoint()) {
    if (!config_.IsJoint()) return Status::FailedPrecondition("not in a joint configuration");
  } else {
    if (config_.IsJoint()) {
      return Status::FailedPrecondition("a joint configuration is still settling");
    }
    NodeSet voters = config_.incoming;
    for (const ConfChangeSingle& c : cc.changes) {
      if (c.node == kNoNode) return Status::InvalidArgument("node id 0 is reserved");
      if (c.type == ConfChangeType::kAddLearner && voters.count(c.node)) {
        return Status::InvalidArgument("node " + std::to_string(c.node.value()) +
                                       " is a voter; remove it before adding it as a learner");
      }
      if (c.type == ConfChangeType::kAddVoter) voters.insert(c.node);
      if (c.type == ConfChangeType::kRemoveNode) voters.erase(c.node);
    }
    if (voters.empty()) return Status::InvalidArgument("the change would leave no voters");
  }
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = cc.Encode();
  return Propose({std::move(e)});
}

bool Raft::Promotable() const {
  return config_.Contains(id_) && !learners_.count(id_) && !log_.unstable_snapshot();
}

bool Raft::HasUnappliedConfChanges() const {
  if (log_.committed() <= log_.applied()) return false;
  const Index lo = std::max(log_.applied() + 1, log_.FirstIndex());
  if (lo > log_.committed()) return false;
  Result<std::vector<Entry>> ents = log_.Slice(lo, log_.committed() + 1, UINT64_MAX);
  if (!ents.ok()) return true;  // be conservative
  return std::any_of(ents->begin(), ents->end(),
                     [](const Entry& e) { return e.type == EntryType::kConfChange; });
}

bool Raft::QuorumActive() const {
  std::map<NodeId, bool> active;
  for (const auto& [id, pr] : progress_) {
    if (config_.Contains(id)) active[id] = id == id_ || pr.recent_active();
  }
  return JointVote(config_, active) == VoteResult::kWon;
}

}  // namespace warden::raft

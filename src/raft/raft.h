// Raft: the consensus state machine behind RawNode. Internal to src/raft/;
// drivers use RawNode.
//
// Structure follows the thesis: roles (follower, pre-candidate, candidate,
// leader) with one Step function each, the leader's per-follower Progress,
// the ReadIndex protocol (thesis 6.4), leadership transfer (3.10), membership
// by joint consensus (4.3) applied when the entry is applied, as etcd does.
//
// Invariants (checked where cheap):
//   1. At most one vote per term: vote_ changes only together with a term
//      change or from kNoNode.
//   2. A leader never overwrites or deletes entries in its own log.
//   3. commit only moves forward and only to an entry of the current term
//      counted on a quorum (section 5.4.2), or as told by the leader.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/raft/progress.h"
#include "src/raft/quorum.h"
#include "src/raft/raft_log.h"
#include "src/raft/raw_node.h"

namespace warden::raft {

class Raft {
 public:
  Raft(const Config& config, const Storage* storage);

  void Tick();
  Status Step(const Message& m);
  Status Propose(std::vector<Entry> entries);
  Status ProposeConfChange(const ConfChange& cc);
  void ReadIndex(std::string context);
  void TransferLeader(NodeId target);
  void Campaign(bool transfer);
  // The transport lost `peer`. A leader probes it again; a follower whose
  // leader it is stops honouring the leader's lease (no lease reads only).
  void ReportUnreachable(NodeId peer);
  void ReportSnapshot(NodeId peer, bool ok);

  // Applies a committed membership change entry (called as entries are
  // acknowledged applied).
  void ApplyConfChange(const ConfChange& cc);
  // After applying: the leader leaves a joint configuration automatically.
  void MaybeAutoLeaveJoint();
  // The driver made the log durable up to `last`: the leader's own copy
  // counts towards the quorum only from here (so that its messages may go
  // out before its own write finishes, thesis 10.2.1).
  void OnStable(Index last);

  RaftLog& log() { return log_; }
  const RaftLog& log() const { return log_; }
  std::vector<Message>& messages() { return msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }
  SoftState soft_state() const { return {lead_, role_}; }
  HardState hard_state() const { return {term_, vote_, log_.committed()}; }
  const ConfState& conf_state() const { return conf_state_; }
  NodeId id() const { return id_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return lead_; }
  Role role() const { return role_; }
  NodeId lead_transferee() const { return lead_transferee_; }
  const std::map<NodeId, Progress>& progress() const { return progress_; }

 private:
  // Role transitions.
  void BecomeFollower(Term term, NodeId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Reset(Term term);
  void ResetRandomizedElectionTimeout();

  // Per-role message handling.
  Status StepLeader(const Message& m);
  Status StepCandidate(const Message& m);
  Status StepFollower(const Message& m);
  void RunElection(bool pre, bool transfer);
  void HandleVoteRequest(const Message& m);
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  void HandleAppendResponse(const Message& m);
  void HandleHeartbeatResponse(const Message& m);
  void HandleReadIndexRequest(NodeId from, std::string context);

  // Ticks.
  void TickElection();
  void TickHeartbeat();

  // Leader replication.
  // How an append with no entries to send is sent.
  enum class Empty : uint8_t {
    kSkip,        // not at all
    kSend,        // acknowledged (probes, retries after a heartbeat)
    kCommitOnly,  // after a commit: commit-only to a replicating follower
  };
  bool SendAppend(NodeId to, Empty empty);
  void SendHeartbeat(NodeId to, const std::string& context);
  void BroadcastAppend(Empty empty = Empty::kSend);
  void BroadcastHeartbeat();
  bool MaybeCommit();
  void AppendEntries(std::vector<Entry> entries);
  void SendTimeoutNow(NodeId to);
  void AbortLeaderTransfer() { lead_transferee_ = kNoNode; }

  // ReadIndex bookkeeping.
  void ReleaseReadsAfterFirstCommit();
  void ReleaseConfirmedReads();
  void AnswerRead(NodeId from, Index index, std::string context);

  // Membership.
  void SetConfiguration(const ConfState& cs);
  bool Promotable() const;
  bool HasUnappliedConfChanges() const;
  VoteResult Poll(NodeId from, bool granted);
  bool QuorumActive() const;
  bool IsVoter(NodeId id) const { return config_.Contains(id); }

  void Send(Message m);

  const Config cfg_;
  const NodeId id_;
  Rng rng_;
  RaftLog log_;

  Term term_;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;

  // Membership: voters (possibly joint), learners, and the leader's
  // progress for every member.
  JointConfig config_;
  NodeSet learners_;
  ConfState conf_state_;
  std::map<NodeId, Progress> progress_;
  std::map<NodeId, bool> votes_;
  // The index of the last membership change proposed by this leader; a new
  // one is refused until it is applied.
  Index pending_conf_index_;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  NodeId lead_transferee_ = kNoNode;

  // ReadIndex (thesis 6.4). Requests wait in `reads_before_commit_` until
  // the leader has committed an entry of its term; then each gets the commit
  // index and a sequence number, and is answered once a quorum has answered
  // a heartbeat carrying a sequence >= its own.
  struct PendingRead {
    uint64_t seq = 0;
    Index index;
    NodeId from;
    std::string context;
  };
  std::vector<std::pair<NodeId, std::string>> reads_before_commit_;
  std::deque<PendingRead> pending_reads_;
  uint64_t read_seq_ = 0;
  std::map<NodeId, uint64_t> read_acks_;

  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
};

}  // namespace warden::raft

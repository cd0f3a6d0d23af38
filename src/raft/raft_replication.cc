// Log replication (section 5.3), commitment (5.4.2), InstallSnapshot
// (section 7), ReadIndex (thesis 6.4) and leadership transfer (thesis 3.10):
// the leader's side and the follower's answers.
#include <algorithm>
#include <string>
#include <utility>

#include "src/base/check.h"
#include "src/raft/raft.h"

namespace warden::raft {

namespace {
std::string EncodeSeq(uint64_t seq) { return std::to_string(seq); }
uint64_t DecodeSeq(const std::string& s) {
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}
}  // namespace

void Raft::Send(Message m) {
  m.from = id_;
  const bool sets_own_term = m.type == MessageType::kVote || m.type == MessageType::kPreVote ||
                             m.type == MessageType::kVoteResponse ||
                             m.type == MessageType::kPreVoteResponse;
  const bool forwarded =
      m.type == MessageType::kReadIndex || m.type == MessageType::kTransferLeader;
  if (forwarded) {
    m.term = Term(0);
  } else if (!sets_own_term) {
    m.term = term_;
  }
  msgs_.push_back(std::move(m));
}

// ---------------------------------------------------------------------------
// Leader

Status Raft::StepLeader(const Message& m) {
  auto it = progress_.find(m.from);
  switch (m.type) {
    case MessageType::kAppendResponse:
      if (it != progress_.end()) HandleAppendResponse(m);
      break;
    case MessageType::kHeartbeatResponse:
      if (it != progress_.end()) HandleHeartbeatResponse(m);
      break;
    case MessageType::kReadIndex: HandleReadIndexRequest(m.from, m.context); break;
    case MessageType::kTransferLeader:
      // A follower relays an operator's request; `index` names the target.
      TransferLeader(NodeId(m.index.value()));
      break;
    default: break;
  }
  return Status::Ok();
}

void Raft::AppendEntries(std::vector<Entry> entries) {
  Index next = log_.LastIndex() + 1;
  for (Entry& e : entries) {
    e.term = term_;
    e.index = next;
    ++next;
  }
  log_.Append(entries);
  // The leader's own copy counts towards the quorum once it is durable
  // (OnStable), not here.
}

void Raft::OnStable(Index last) {
  if (role_ != Role::kLeader) return;
  auto self = progress_.find(id_);
  if (self == progress_.end() || !self->second.MaybeUpdate(last)) return;
  if (MaybeCommit()) BroadcastAppend(Empty::kCommitOnly);
}

Status Raft::Propose(std::vector<Entry> entries) {
  if (role_ != Role::kLeader) {
    return Status::NotLeader(lead_ == kNoNode ? "no leader"
                                              : "leader is " + std::to_string(lead_.value()));
  }
  if (progress_.find(id_) == progress_.end()) {
    return Status::ProposalDropped("this leader was removed from the configuration");
  }
  if (lead_transferee_ != kNoNode) {
    return Status::ProposalDropped("leadership transfer to " +
                                   std::to_string(lead_transferee_.value()) + " in progress");
  }
  for (const Entry& e : entries) {
    if (e.type == EntryType::kConfChange) {
      if (pending_conf_index_ > log_.applied()) {
        return Status::FailedPrecondition("a membership change is still pending");
      }
      pending_conf_index_ = log_.LastIndex() + 1;
    }
  }
  AppendEntries(std::move(entries));
  BroadcastAppend();
  return Status::Ok();
}

bool Raft::MaybeCommit() {
  std::map<NodeId, uint64_t> acked;
  for (const auto& [id, pr] : progress_) acked[id] = pr.match().value();
  const Index quorum_index(JointValue(config_, acked));
  const bool committed = log_.MaybeCommit(quorum_index, term_, cfg_.bugs.commit_old_term);
  if (committed) ReleaseReadsAfterFirstCommit();
  return committed;
}

bool Raft::SendAppend(NodeId to, Empty empty) {
  auto it = progress_.find(to);
  if (it == progress_.end() || to == id_) return false;
  Progress& pr = it->second;
  if (pr.IsPaused()) return false;

  Message m;
  m.to = to;
  Result<Term> prev_term = log_.TermAt(pr.next() - 1);
  Result<std::vector<Entry>> ents = log_.EntriesFrom(pr.next(), cfg_.max_size_per_msg);
  if (ents.ok() && ents->empty() && empty == Empty::kSkip) return false;

  if (!prev_term.ok() || !ents.ok()) {
    // The follower needs entries we compacted: send the snapshot, but only
    // to a follower we recently heard from (a snapshot is expensive).
    if (!pr.recent_active()) return false;
    Result<Snapshot> snap = log_.GetSnapshot();
    if (!snap.ok() || snap->IsEmpty()) return false;
    m.type = MessageType::kSnapshot;
    pr.BecomeSnapshot(snap->metadata.index);
    m.snapshot = std::make_shared<const Snapshot>(std::move(snap).value());
    Send(std::move(m));
    return true;
  }

  m.type = MessageType::kAppend;
  m.index = pr.next() - 1;
  m.log_term = *prev_term;
  m.entries = std::move(ents).value();
  m.commit = log_.committed();
  // Replicating, the follower acknowledges every entry up to `index` (or
  // they were lost, and the next heartbeat's append, not commit-only, finds
  // out): an ack of this append would tell nothing new.
  m.commit_only =
      m.entries.empty() && empty == Empty::kCommitOnly && pr.state() == ProgressState::kReplicate;
  if (!m.entries.empty()) {
    const Index last = m.entries.back().index;
    switch (pr.state()) {
      case ProgressState::kReplicate:
        pr.OptimisticUpdate(last);
        pr.inflights().Add(last);
        break;
      case ProgressState::kProbe: pr.SetProbeSent(true); break;
      case ProgressState::kSnapshot: WARDEN_CHECK_MSG(false, "append in snapshot state");
    }
  }
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(NodeId to, const std::string& context) {
  const Progress& pr = progress_.at(to);
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  // Never tell a follower to commit beyond what it is known to hold.
  m.commit = std::min(pr.match(), log_.committed());
  m.context = context;
  Send(std::move(m));
}

void Raft::BroadcastAppend(Empty empty) {
  for (const auto& [id, pr] : progress_) {
    if (id != id_) SendAppend(id, empty);
  }
}

void Raft::BroadcastHeartbeat() {
  const std::string context = pending_reads_.empty() ? "" : EncodeSeq(pending_reads_.back().seq);
  for (auto& [id, pr] : progress_) {
    if (id == id_) continue;
    SendHeartbeat(id, context);
    // A probing follower gets one more append per heartbeat interval.
    if (pr.state() == ProgressState::kProbe) pr.SetProbeSent(false);
  }
}

void Raft::HandleAppendResponse(const Message& m) {
  Progress& pr = progress_.at(m.from);
  pr.set_recent_active(true);
  if (m.reject) {
    // Fast back-off: skip the follower's whole conflicting term at once.
    Index hint = m.reject_hint;
    if (m.reject_hint_term > Term(0)) {
      hint = log_.FindConflictByTerm(m.reject_hint, m.reject_hint_term).first;
    }
    if (pr.MaybeDecrTo(m.index, hint)) {
      if (pr.state() == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from, Empty::kSend);
    }
    return;
  }
  const bool was_paused = pr.IsPaused();
  if (!pr.MaybeUpdate(m.index)) return;
  switch (pr.state()) {
    case ProgressState::kProbe: pr.BecomeReplicate(); break;
    case ProgressState::kSnapshot:
      if (pr.match() >= pr.pending_snapshot()) pr.BecomeProbe();
      break;
    case ProgressState::kReplicate: pr.inflights().FreeLE(m.index); break;
  }
  if (MaybeCommit()) {
    BroadcastAppend(Empty::kCommitOnly);
  } else if (was_paused) {
    SendAppend(m.from, Empty::kSend);
  }
  // Keep the pipeline full while there is something to send.
  while (SendAppend(m.from, Empty::kSkip)) {
  }
  if (m.from == lead_transferee_ && pr.match() == log_.LastIndex()) SendTimeoutNow(m.from);
}

void Raft::HandleHeartbeatResponse(const Message& m) {
  Progress& pr = progress_.at(m.from);
  pr.set_recent_active(true);
  // The follower is alive but the window is full: the acks were probably
  // lost. Free one slot so replication can make progress (as etcd does).
  if (pr.state() == ProgressState::kReplicate && pr.inflights().Full()) {
    pr.inflights().FreeFirstOne();
  }
  if (pr.match() < log_.LastIndex()) SendAppend(m.from, Empty::kSend);
  if (m.context.empty()) return;
  uint64_t& acked = read_acks_[m.from];
  acked = std::max(acked, DecodeSeq(m.context));
  ReleaseConfirmedReads();
}

// ---------------------------------------------------------------------------
// Follower

void Raft::HandleAppend(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index matches the leader (it is
    // committed); acknowledge it so the leader moves on.
    resp.index = log_.committed();
    Send(std::move(resp));
    return;
  }
  if (std::optional<Index> last_new = log_.MaybeAppend(m.index, m.log_term, m.commit, m.entries)) {
    if (m.commit_only) return;  // the leader knows; see Message::commit_only
    resp.index = *last_new;
    Send(std::move(resp));
    return;
  }
  // Reject, with a hint so the leader can skip a whole conflicting term.
  const Index probe = std::min(m.index, log_.LastIndex());
  auto [hint_index, hint_term] = log_.FindConflictByTerm(probe, m.log_term);
  resp.reject = true;
  resp.index = m.index;
  resp.reject_hint = hint_index;
  resp.reject_hint_term = hint_term;
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  log_.CommitTo(std::min(m.commit, log_.LastIndex()));
  Message resp;
  resp.type = MessageType::kHeartbeatResponse;
  resp.to = m.from;
  resp.context = m.context;
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  const Snapshot& s = *m.snapshot;
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  const SnapshotMetadata& meta = s.metadata;
  if (meta.index <= log_.committed()) {
    resp.index = log_.committed();
  } else if (log_.MatchTerm(meta.index, meta.term)) {
    // We already hold the entry the snapshot ends at: just commit to it.
    log_.CommitTo(meta.index);
    resp.index = log_.committed();
  } else {
    log_.Restore(s);
    SetConfiguration(meta.conf_state);
    resp.index = log_.LastIndex();
  }
  Send(std::move(resp));
}

// ---------------------------------------------------------------------------
// ReadIndex (thesis 6.4)

void Raft::ReadIndex(std::string context) {
  if (role_ == Role::kLeader) {
    HandleReadIndexRequest(id_, std::move(context));
    return;
  }
  if (lead_ == kNoNode) return;  // dropped: the caller retries
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = lead_;
  m.context = std::move(context);
  Send(std::move(m));
}

void Raft::HandleReadIndexRequest(NodeId from, std::string context) {
  // Only a leader that has committed an entry of its term knows the commit
  // index of the cluster (thesis 6.4 step 1).
  if (log_.ZeroTermOnErr(log_.committed()) != term_) {
    reads_before_commit_.emplace_back(from, std::move(context));
    return;
  }
  const bool single_voter = config_.All().size() == 1 && config_.Contains(id_);
  if (single_voter || cfg_.lease_reads || cfg_.bugs.read_without_quorum) {
    AnswerRead(from, log_.committed(), std::move(context));
    return;
  }
  PendingRead r;
  r.seq = ++read_seq_;
  r.index = log_.committed();
  r.from = from;
  r.context = std::move(context);
  pending_reads_.push_back(std::move(r));
  read_acks_[id_] = read_seq_;
  BroadcastHeartbeat();
}

void Raft::ReleaseReadsAfterFirstCommit() {
  if (reads_before_commit_.empty() || log_.ZeroTermOnErr(log_.committed()) != term_) return;
  auto waiting = std::move(reads_before_commit_);
  reads_before_commit_.clear();
  for (auto& [from, context] : waiting) HandleReadIndexRequest(from, std::move(context));
}

void Raft::ReleaseConfirmedReads() {
  // The largest sequence a quorum has confirmed; every read up to it was
  // issued while we were still the leader.
  const uint64_t confirmed = JointValue(config_, read_acks_);
  while (!pending_reads_.empty() && pending_reads_.front().seq <= confirmed) {
    PendingRead r = std::move(pending_reads_.front());
    pending_reads_.pop_front();
    AnswerRead(r.from, r.index, std::move(r.context));
  }
}

void Raft::AnswerRead(NodeId from, Index index, std::string context) {
  if (from == id_) {
    read_states_.push_back({index, std::move(context)});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = from;
  m.index = index;
  m.context = std::move(context);
  Send(std::move(m));
}

// ---------------------------------------------------------------------------
// Leadership transfer (thesis 3.10)

void Raft::TransferLeader(NodeId target) {
  if (role_ != Role::kLeader) {
    if (lead_ == kNoNode) return;
    Message m;
    m.type = MessageType::kTransferLeader;
    m.to = lead_;
    m.index = Index(target.value());
    Send(std::move(m));
    return;
  }
  auto it = progress_.find(target);
  if (it == progress_.end() || it->second.is_learner() || !IsVoter(target)) return;
  if (target == id_ || target == lead_transferee_) return;
  lead_transferee_ = target;
  // The transfer must finish within one election timeout.
  election_elapsed_ = 0;
  if (it->second.match() == log_.LastIndex()) {
    SendTimeoutNow(target);
  } else {
    SendAppend(target, Empty::kSend);
  }
}

void Raft::SendTimeoutNow(NodeId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
}

void Raft::ReportUnreachable(NodeId peer) {
  if (role_ == Role::kFollower && peer == lead_ && lead_ != kNoNode && !cfg_.lease_reads) {
    // The connection to our leader broke (a killed process closes its
    // sockets): stop honouring its lease, so that we and the voters that
    // saw the same campaign after the rest of the randomized timeout, not a
    // whole election timeout later. Pre-vote still asks first, and a voter
    // that hears the leader still refuses, so a leader that is alive loses
    // nothing. Not with lease reads, which rely on the full lease.
    election_elapsed_ = std::max(election_elapsed_, cfg_.election_ticks);
    return;
  }
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(peer);
  if (it == progress_.end()) return;
  if (it->second.state() == ProgressState::kReplicate) it->second.BecomeProbe();
}

void Raft::ReportSnapshot(NodeId peer, bool ok) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(peer);
  if (it == progress_.end() || it->second.state() != ProgressState::kSnapshot) return;
  Progress& pr = it->second;
  if (!ok) {
    pr.BecomeProbe();
    pr.SetProbeSent(true);  // wait for the next heartbeat before retrying
    return;
  }
  // Wait for the follower's append response to confirm the new match.
  pr.BecomeProbe();
  pr.SetProbeSent(true);
}

}  // namespace warden::raft

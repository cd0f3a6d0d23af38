#include "src/raft/raft.h"

#include <algorithm>
#include <string>
#include <utility>

#include "src/base/check.h"

namespace warden::raft {

namespace {
// The context of a vote request sent because of TimeoutNow: the voter skips
// its leader-lease check (thesis 3.10), since the leader asked for it.
constexpr char kCampaignTransfer[] = "transfer";

}  // namespace

Raft::Raft(const Config& config, const Storage* storage)
    : cfg_(config),
      id_(config.id),
      rng_(config.seed ^ (config.id.value() * 0x9e3779b97f4a7c15ULL)),
      log_(storage, config.max_size_per_msg) {
  WARDEN_CHECK_MSG(config.id != kNoNode, "node id 0 is reserved");
  WARDEN_CHECK_MSG(config.heartbeat_ticks > 0 && config.heartbeat_ticks < config.election_ticks,
                   "heartbeat_ticks must be in (0, election_ticks)");
  WARDEN_CHECK_MSG(!config.lease_reads || config.check_quorum, "lease_reads requires check_quorum");
  auto [hs, cs] = storage->InitialState();
  SetConfiguration(cs);
  if (!hs.IsEmpty()) {
    WARDEN_CHECK_MSG(hs.commit >= log_.committed() && hs.commit <= log_.LastIndex(),
                     "hard state commit is outside the log");
    log_.CommitTo(hs.commit);
    term_ = hs.term;
    vote_ = hs.vote;
  }
  // Figure 2: a node's term is never below the term of its last entry. A
  // member bootstrapped from a snapshot of term 1 starts in term 1 (the first
  // Ready persists it), so its first leader's term is above every entry it
  // inherited and ReadIndex waits for that leader's own no-op.
  if (term_ < log_.LastTerm()) term_ = log_.LastTerm();
  if (config.applied > Index(0)) log_.AppliedTo(std::min(config.applied, log_.committed()));
  BecomeFollower(term_, kNoNode);
}

// ---------------------------------------------------------------------------
// Role transitions

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  votes_.clear();
  for (auto& [id, pr] : progress_) {
    const bool learner = pr.is_learner();
    pr = Progress(log_.LastIndex() + 1, cfg_.max_inflight_msgs);
    pr.set_learner(learner);
    if (id == id_) pr.MaybeUpdate(log_.StableLastIndex());
  }
  pending_conf_index_ = Index(0);
  reads_before_commit_.clear();
  pending_reads_.clear();
  read_acks_.clear();
}

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      cfg_.election_ticks + static_cast<int>(rng_.Uniform(cfg_.election_ticks));
}

void Raft::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
}

void Raft::BecomePreCandidate() {
  WARDEN_CHECK_MSG(role_ != Role::kLeader, "leader cannot become pre-candidate");
  // A pre-candidate keeps its term and vote: pre-voting changes nothing
  // durable (thesis 9.6).
  votes_.clear();
  lead_ = kNoNode;
  role_ = Role::kPreCandidate;
}

void Raft::BecomeCandidate() {
  WARDEN_CHECK_MSG(role_ != Role::kLeader, "leader cannot become candidate");
  Reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::BecomeLeader() {
  WARDEN_CHECK_MSG(role_ == Role::kCandidate, "only a candidate becomes leader");
  Reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  // The follower view is unknown: probe everyone from our last index.
  auto self = progress_.find(id_);
  if (self != progress_.end()) self->second.BecomeReplicate();
  // Conservatively assume a membership change may be pending in the
  // uncommitted tail (it is only known once applied).
  pending_conf_index_ = log_.LastIndex();
  // A no-op of the new term (section 8): committing it commits everything
  // before it, and ReadIndex waits for it.
  AppendEntries({Entry{}});
}

// ---------------------------------------------------------------------------
// Ticks

void Raft::Tick() {
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Campaign(false);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_ticks) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      if (!QuorumActive()) {
        // Thesis 6.2: a leader that cannot hear a quorum steps down, so
        // that clients find the real leader.
        BecomeFollower(term_, kNoNode);
        return;
      }
      for (auto& [id, pr] : progress_) {
        if (id != id_) pr.set_recent_active(false);
      }
    }
    // A snapshot still unacknowledged after an election timeout was probably
    // lost (or its answer was): probe again, which resends it if needed.
    for (auto& [id, pr] : progress_) {
      if (pr.state() == ProgressState::kSnapshot) pr.BecomeProbe();
    }
    // A transfer that did not finish within an election timeout is abandoned.
    if (lead_transferee_ != kNoNode) AbortLeaderTransfer();
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat();
  }
}

// ---------------------------------------------------------------------------
// Elections

void Raft::Campaign(bool transfer) {
  if (!Promotable()) return;
  if (HasUnappliedConfChanges()) return;  // membership may be about to change
  RunElection(cfg_.pre_vote && !transfer, transfer);
}

void Raft::RunElection(bool pre, bool transfer) {
  MessageType type;
  Term term;
  if (pre) {
    BecomePreCandidate();
    type = MessageType::kPreVote;
    term = term_ + 1;  // pre-votes ask about the next term without taking it
  } else {
    BecomeCandidate();
    type = MessageType::kVote;
    term = term_;
  }
  if (Poll(id_, true) == VoteResult::kWon) {
    // A single-voter cluster wins at once.
    if (pre) {
      RunElection(false, transfer);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (NodeId peer : config_.All()) {
    if (peer == id_) continue;
    Message m;
    m.type = type;
    m.to = peer;
    m.term = term;
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    if (transfer) m.context = kCampaignTransfer;
    Send(std::move(m));
  }
}

VoteResult Raft::Poll(NodeId from, bool granted) {
  votes_.emplace(from, granted);
  return JointVote(config_, votes_);
}

void Raft::HandleVoteRequest(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  // We can vote for m.from if we already did in this term, if we have voted
  // for nobody and know no leader, or (pre-vote) the request is for a later
  // term.
  const bool can_vote =
      vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) || (pre && m.term > term_);
  const bool up_to_date = log_.IsUpToDate(m.index, m.log_term) || cfg_.bugs.vote_ignores_log;
  Message resp;
  resp.type = pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  resp.to = m.from;
  if (can_vote && up_to_date) {
    // A granted pre-vote answers with the asked term so the pre-candidate
    // can count it; a granted vote is for our (equal) term.
    resp.term = m.term;
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
  }
  Send(std::move(resp));
}

// ---------------------------------------------------------------------------
// Step

Status Raft::Step(const Message& m) {
  if (m.from == kNoNode || m.to != id_) {
    return Status::InvalidArgument("message is not addressed to this node");
  }
  if (m.type == MessageType::kSnapshot && !m.snapshot) {
    return Status::InvalidArgument("snapshot message without a snapshot");
  }
  if (m.term == Term(0)) {
    // Requests forwarded by a follower to its leader carry no term.
    if (m.type != MessageType::kReadIndex && m.type != MessageType::kTransferLeader) {
      return Status::InvalidArgument("message without a term");
    }
  } else if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      const bool force = m.context == kCampaignTransfer;
      const bool in_lease =
          cfg_.check_quorum && lead_ != kNoNode && election_elapsed_ < cfg_.election_ticks;
      // Thesis 4.2.3: while we hear from a leader, ignore candidates, so a
      // removed or partitioned server cannot disrupt the cluster.
      if (!force && in_lease) return Status::Ok();
    }
    if (m.type == MessageType::kPreVote) {
      // Answering a pre-vote never changes our term.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // The granted pre-vote carries the future term; handled by the role.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type == MessageType::kHeartbeat || m.type == MessageType::kAppend)) {
      // A stale leader that we ignore would never learn of the new term if
      // we stayed silent (it might be cut off by check-quorum otherwise):
      // tell it.
      Message resp;
      resp.type = MessageType::kAppendResponse;
      resp.to = m.from;
      resp.term = term_;
      resp.index = Index(0);
      resp.reject = false;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResponse;
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      Send(std::move(resp));
    }
    return Status::Ok();
  }

  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    HandleVoteRequest(m);
    return Status::Ok();
  }
  switch (role_) {
    case Role::kLeader: return StepLeader(m);
    case Role::kCandidate:
    case Role::kPreCandidate: return StepCandidate(m);
    case Role::kFollower: return StepFollower(m);
  }
  return Status::Ok();
}

Status Raft::StepCandidate(const Message& m) {
  const MessageType my_response =
      role_ == Role::kPreCandidate ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  switch (m.type) {
    case MessageType::kAppend:
      BecomeFollower(m.term, m.from);
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      break;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse: {
      if (m.type != my_response) break;
      // Our own pre-vote term is term_+1; a rejection carries the voter's
      // term, which is handled above when larger.
      switch (Poll(m.from, !m.reject)) {
        case VoteResult::kWon:
          if (role_ == Role::kPreCandidate) {
            RunElection(false, false);
          } else {
            BecomeLeader();
            BroadcastAppend();
          }
          break;
        case VoteResult::kLost: BecomeFollower(term_, kNoNode); break;
        case VoteResult::kPending: break;
      }
      break;
    }
    case MessageType::kTimeoutNow: break;  // only followers act on it
    default: break;
  }
  return Status::Ok();
}

Status Raft::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleSnapshot(m);
      break;
    case MessageType::kTimeoutNow:
      // Thesis 3.10: start an election at once, skipping pre-vote and the
      // lease check of the voters.
      Campaign(true);
      break;
    case MessageType::kReadIndexResponse: read_states_.push_back({m.index, m.context}); break;
    case MessageType::kTransferLeader:
      if (lead_ != kNoNode) {
        Message fwd = m;
        fwd.to = lead_;
        fwd.term = Term(0);
        Send(std::move(fwd));
      }
      break;
    default: break;
  }
  return Status::Ok();
}

}  // namespace warden::raft

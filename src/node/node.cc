#include "src/node/node.h"

#include <algorithm>
#include <string>

#include "src/base/check.h"

namespace warden::node {

namespace {
Status Timeout() { return Status(ErrorCode::kTimeout, "etcdserver: request timed out"); }
Status NotLeader() { return Status::NotLeader("etcdserver: not leader"); }
state::ApplyResult ErrorResult(const Status& s) {
  state::ApplyResult r;
  r.status = s;
  return r;
}
uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}
}  // namespace

Node::Node(const NodeConfig& config, DurableLog* log, Transport* transport, Clock* clock)
    : config_(config),
      log_(log),
      transport_(transport),
      clock_(clock),
      state_(config.kv_limits, config.lock_bugs) {}

Node::~Node() = default;

Status Node::Start() {
  Result<raft::Snapshot> snap = log_->GetSnapshot();
  if (!snap.ok()) return snap.status();
  if (Status s = state_.Restore(snap->metadata.index, snap->data); !s.ok()) {
    return Status::Corruption("cannot load the snapshot at index " +
                              std::to_string(snap->metadata.index.value()) + ": " + s.message());
  }
  last_snapshot_index_ = snap->metadata.index;
  raft::Config rc = config_.raft;
  rc.applied = snap->metadata.index;
  Result<std::unique_ptr<raft::RawNode>> raw = raft::RawNode::Create(rc, log_);
  if (!raw.ok()) return raw.status();
  raw_ = std::move(raw).value();
  // Proposal ids must not repeat across restarts (an old entry could still be
  // applied after one): start from a value unique to this incarnation.
  next_proposal_seq_ = Mix(config_.raft.seed ^ static_cast<uint64_t>(clock_->NowMs()) ^
                           (log_->LastIndex().value() << 20) ^ config_.raft.id.value()) &
                       ~((1ULL << 32) - 1);
  Process();
  return Status::Ok();
}

void Node::Tick() {
  raw_->Tick();
  ExpireWaiters();
  RetryReads();
  if (IsLeader()) {
    LeaseTick();
    LockTick();
  }
  Process();
}

void Node::LockTick() {
  // The state machine decides lock deadlines and aging by the leader's time
  // stamped on entries; this only makes sure an entry comes when one is due.
  const int64_t now = clock_->NowMs();
  if (lock_tick_sent_ms_ >= 0 && now - lock_tick_sent_ms_ < kLockTickRetryMs) return;
  bool due = false;
  if (std::optional<int64_t> d = state_.locks().NextDeadline(); d && *d <= now) due = true;
  if (!due && now >= next_aging_check_ms_) {
    next_aging_check_ms_ = now + state::LockTable::kAgingIntervalMs;
    due = state_.locks().AgingMatters();
  }
  if (!due) return;
  state::Command c;
  c.type = state::CommandType::kLockTick;
  ProposeInternal(std::move(c));
  lock_tick_sent_ms_ = now;
}

void Node::Step(const raft::Message& m) {
  if (m.type == raft::MessageType::kPropose) {
    ProposeForwarded(m);
  } else {
    // A malformed message from a peer is dropped; Raft tolerates loss.
    (void)raw_->Step(m);
  }
  Process();
}

void Node::Propose(state::Command command, ProposeDone done) {
  if (!disk_failure_.ok()) return done(ErrorResult(disk_failure_));
  const bool forward = !IsLeader();
  if (forward && (!config_.forward_proposals || raw_->leader() == kNoNode ||
                  raw_->leader() == config_.raft.id)) {
    return done(ErrorResult(NotLeader()));
  }
  const uint64_t id = next_proposal_seq_++;
  command.proposal_id = id;
  command.leader_time_ms = clock_->NowMs();  // the leader stamps its own on a forward
  std::string data = state::EncodeCommand(command);
  const uint64_t fingerprint = state::CommandFingerprint(data);
  if (forward) {
    forwards_.push_back(raft::Entry{Term(0), Index(0), raft::EntryType::kNormal, std::move(data)});
  } else if (Status s = raw_->Propose(std::move(data)); !s.ok()) {
    return done(ErrorResult(s));
  }
  proposals_.emplace(
      id,
      PendingProposal{std::move(done), clock_->NowMs() + config_.request_timeout_ms, fingerprint});
  Process();
}

void Node::FlushForwards() {
  if (forwards_.empty()) return;
  const NodeId leader = raw_->leader();
  if (IsLeader() || leader == kNoNode) {
    // The leader went away within the batch: these wait for their timeout
    // (they were never sent, so they cannot be applied).
    forwards_.clear();
    return;
  }
  raft::Message m;
  m.type = raft::MessageType::kPropose;
  m.from = config_.raft.id;
  m.to = leader;
  m.term = raw_->term();  // the leader takes only its own term's
  m.entries = std::move(forwards_);
  forwards_.clear();
  std::vector<raft::Message> out;
  out.push_back(std::move(m));
  transport_->Send(std::move(out));
}

void Node::ProposeForwarded(const raft::Message& m) {
  // Only the leader of the term the follower saw appends; anyone else drops
  // them (the proposer times out, the outcome unknown to its client).
  if (!IsLeader() || !disk_failure_.ok() || m.to != config_.raft.id || m.term != raw_->term()) {
    return;
  }
  if (forwarded_term_ != raw_->term()) {
    forwarded_term_ = raw_->term();
    forwarded_high_.clear();
  }
  const int64_t now = clock_->NowMs();
  for (const raft::Entry& e : m.entries) {
    // A proposal must be appended at most once, even if the network
    // duplicates or reorders the message: a member's proposal ids increase
    // within one run (upper 32 bits fixed per run), so within this term take
    // only ids above the highest taken from that run.
    std::optional<uint64_t> id = state::PeekProposalId(e.data);
    if (e.type != raft::EntryType::kNormal || !id) continue;
    uint64_t& high = forwarded_high_[{m.from, *id >> 32}];
    if (*id <= high) continue;
    std::string data = e.data;
    if (!state::RestampLeaderTime(&data, now)) continue;
    if (raw_->Propose(std::move(data)).ok()) high = *id;
  }
}

void Node::ProposeInternal(state::Command command) {
  if (!IsLeader() || !disk_failure_.ok()) return;
  command.proposal_id = 0;
  command.leader_time_ms = clock_->NowMs();
  (void)raw_->Propose(state::EncodeCommand(command));
}

void Node::ReadBarrier(ReadDone done) {
  if (!disk_failure_.ok()) return done(disk_failure_);
  // Reads that arrive in one batch share one ReadIndex request (one
  // heartbeat round), asked when the batch ends: its index is at least the
  // commit index when each of them arrived.
  if (!open_read_.empty()) {
    reads_.at(open_read_).dones.push_back(std::move(done));
    return;
  }
  std::string ctx = "read-" + std::to_string(next_read_seq_++);
  const int64_t now = clock_->NowMs();
  PendingRead read{{}, now + config_.request_timeout_ms, {}, now};
  read.dones.push_back(std::move(done));
  reads_.emplace(ctx, std::move(read));
  if (batch_depth_ > 0) {
    open_read_ = std::move(ctx);
    return;
  }
  raw_->ReadIndex(std::move(ctx));
  Process();
}

void Node::FlushReads() {
  if (open_read_.empty()) return;
  std::string ctx = std::move(open_read_);
  open_read_.clear();
  if (reads_.count(ctx)) raw_->ReadIndex(std::move(ctx));
}

void Node::RetryReads() {
  if (raw_->leader() == kNoNode) return;
  const int64_t now = clock_->NowMs();
  for (auto& [ctx, read] : reads_) {
    if (read.index || now - read.sent_ms < kReadRetryMs) continue;
    read.sent_ms = now;
    raw_->ReadIndex(ctx);
  }
}

void Node::KeepAlive(int64_t lease_id, KeepAliveDone done) {
  if (!IsLeader()) return done(NotLeader());
  const state::Lease* lease = state_.leases().Find(lease_id);
  auto clock = lease_clocks_.find(lease_id);
  if (lease == nullptr || clock == lease_clocks_.end()) {
    return done(Status::NotFound("etcdserver: requested lease not found"));
  }
  // Ran out on this leader's clock (its revoke may be in flight): gone, as
  // etcd answers for an expired lease. Renewing it here would acknowledge a
  // TTL that the revoke is about to end.
  const int64_t now = clock_->NowMs();
  if (clock->second.deadline_ms <= now || clock->second.revoke_sent_ms >= 0) {
    return done(Status::NotFound("etcdserver: requested lease not found"));
  }
  clock->second.deadline_ms = now + lease->ttl_seconds * 1000;
  if (lease->remaining_ms == 0) {
    // Answer once a quorum confirms that this member still leads (a
    // ReadIndex round). A deposed leader that has not heard of its successor
    // yet would otherwise promise a TTL from now, while the successor counts
    // the lease from its own election and may revoke it sooner (found by the
    // chaos harness: zombie x sessions, seed 23).
    return ReadBarrier([this, lease_id, done = std::move(done)](const Status& s) {
      if (!s.ok()) return done(s);
      const state::Lease* l = state_.leases().Find(lease_id);
      if (l == nullptr) return done(Status::NotFound("etcdserver: requested lease not found"));
      done(l->ttl_seconds);
    });
  }
  // The lease was checkpointed: a new leader would resume from that remaining
  // time. Reset it through the log before promising the full TTL.
  lease_resets_[lease_id].push_back(std::move(done));
  Process();
}

Result<int64_t> Node::LeaseRemainingMs(int64_t lease_id) const {
  if (!IsLeader()) return NotLeader();
  auto it = lease_clocks_.find(lease_id);
  if (it == lease_clocks_.end()) return Status::NotFound("etcdserver: requested lease not found");
  return std::max<int64_t>(0, it->second.deadline_ms - clock_->NowMs());
}

// ---------------------------------------------------------------------------
// The Ready loop

void Node::Process() {
  if (in_process_ || batch_depth_ > 0) return;
  in_process_ = true;
  FlushReads();
  FlushForwards();
  FlushLeaseResets();
  while (!persisting_ && disk_failure_.ok() && raw_->HasReady()) {
    ready_ = raw_->GetReady();
    if (ready_.soft_state && ready_.soft_state->role != role_) {
      const raft::Role old = role_;
      role_ = ready_.soft_state->role;
      OnRoleChange(old, role_);
    }
    persisting_ = true;
    if (role_ == raft::Role::kLeader) SendBeforePersist();
    ApplyDurableCommitted();
    log_->Persist(ready_.snapshot, ready_.entries, ready_.hard_state, ready_.must_sync,
                  [this](const Status& s) { OnPersisted(s); });
  }
  in_process_ = false;
}

void Node::SendBeforePersist() {
  // Thesis 10.2.1: the leader replicates in parallel with its own write; its
  // copy counts towards commitment only once durable (raft::Raft::OnStable).
  // Everything else a Ready says (votes, and any answer that promises what
  // this Ready persists) waits for the write.
  std::vector<raft::Message> early;
  std::vector<raft::Message> later;
  for (raft::Message& m : ready_.messages) {
    const bool replication =
        m.type == raft::MessageType::kAppend || m.type == raft::MessageType::kHeartbeat;
    (replication ? early : later).push_back(std::move(m));
  }
  ready_.messages = std::move(later);
  if (!early.empty()) transport_->Send(std::move(early));
}

void Node::ApplyDurableCommitted() {
  // Committed entries this member already holds on disk need not wait for
  // this Ready's write: apply them (and answer their clients) now. Only the
  // ones that arrive with this Ready wait. A snapshot to load comes first,
  // and a membership change waits too: Raft takes it at Advance, and the
  // state machine and Raft should change configuration together.
  if (ready_.snapshot) return;
  const Index durable = log_->LastIndex();
  size_t n = 0;
  while (n < ready_.committed_entries.size() && ready_.committed_entries[n].index <= durable &&
         ready_.committed_entries[n].type != raft::EntryType::kConfChange) {
    ApplyEntry(ready_.committed_entries[n]);
    ++n;
  }
  ready_.committed_entries.erase(ready_.committed_entries.begin(),
                                 ready_.committed_entries.begin() + static_cast<ptrdiff_t>(n));
}

void Node::OnPersisted(const Status& s) {
  WARDEN_CHECK_MSG(persisting_, "persistence completed twice");
  persisting_ = false;
  if (!s.ok()) {
    // Never continue as if the write succeeded: stop taking part in Raft
    // (no acks, no votes) and refuse writes; reads of applied state go on.
    disk_failure_ = s;
    FailAll(s);
    return;
  }
  FinishReady();
  Process();
}

void Node::FinishReady() {
  if (!ready_.messages.empty()) transport_->Send(std::move(ready_.messages));
  if (ready_.snapshot) {
    const raft::Snapshot& snap = *ready_.snapshot;
    Status s = state_.Restore(snap.metadata.index, snap.data);
    WARDEN_CHECK_MSG(s.ok(), "a snapshot from the leader does not load");
    last_snapshot_index_ = snap.metadata.index;
    if (snapshot_observer_) snapshot_observer_(snap.metadata);
  }
  for (const raft::Entry& e : ready_.committed_entries) ApplyEntry(e);
  for (const raft::ReadState& rs : ready_.read_states) {
    auto it = reads_.find(rs.context);
    if (it != reads_.end()) it->second.index = rs.index;
  }
  ready_ = raft::Ready{};
  raw_->Advance();
  ServeReads();
  MaybeSnapshot();
}

void Node::ApplyEntry(const raft::Entry& e) {
  if (e.index <= state_.applied_index()) return;  // covered by a snapshot
  if (e.type == raft::EntryType::kConfChange) {
    raft::ConfChange cc;
    for (auto it = conf_changes_.begin(); it != conf_changes_.end(); ++it) {
      if (it->data != e.data) continue;
      ReadDone done = std::move(it->done);
      conf_changes_.erase(it);
      done(Status::Ok());
      break;
    }
    if (raft::ConfChange::Decode(e.data, &cc)) {
      state_.ApplyConfChange(e.index, cc);
      for (const raft::ConfChangeSingle& c : cc.changes) {
        if (c.type == raft::ConfChangeType::kRemoveNode && c.node == config_.raft.id) {
          removed_ = true;
        } else if (c.node == config_.raft.id) {
          removed_ = false;  // added again
        }
      }
    } else {
      state_.Skip(e.index);
    }
    if (apply_observer_) apply_observer_(e, nullptr);
    return;
  }
  if (e.type != raft::EntryType::kNormal || e.data.empty()) {
    state_.Skip(e.index);
    if (apply_observer_) apply_observer_(e, nullptr);
    return;
  }
  state::ApplyResult r = state_.Apply(e.index, e.data);
  if (r.type == state::CommandType::kLockTick) lock_tick_sent_ms_ = -1;
  if (apply_observer_) apply_observer_(e, &r);
  if ((!r.lock_answers.empty() || !r.lock_events.empty() ||
       r.type == state::CommandType::kLeaseRevoke) &&
      lock_sink_) {
    lock_sink_(r);
  }
  if (!r.events.empty() && event_sink_) event_sink_(r.events, r.revision);
  if (r.status.ok() && r.type == state::CommandType::kLeaseGrant && IsLeader()) {
    // A lease granted in this term counts from now.
    const state::Lease* lease = state_.leases().Find(r.lease_id);
    auto [clock, inserted] = lease_clocks_.try_emplace(r.lease_id);
    if (inserted && lease != nullptr)
      clock->second.deadline_ms = clock_->NowMs() + lease->ttl_seconds * 1000;
  }
  if (r.status.ok() && r.type == state::CommandType::kLeaseRevoke) lease_clocks_.erase(r.lease_id);
  auto it = proposals_.find(r.proposal_id);
  // The id alone is not proof: another member may have drawn the same one
  // (found by the chaos harness, net x register seed 1013: two members
  // started in the same millisecond shared their id prefix, and a follower
  // answered its client with the leader's entry). The command must match too.
  if (r.proposal_id != 0 && it != proposals_.end() &&
      it->second.fingerprint == state::CommandFingerprint(e.data)) {
    ProposeDone done = std::move(it->second.done);
    proposals_.erase(it);
    done(r);
  }
}

void Node::ServeReads() {
  const Index applied = state_.applied_index();
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index && *it->second.index <= applied) {
      std::vector<ReadDone> dones = std::move(it->second.dones);
      it = reads_.erase(it);
      for (ReadDone& done : dones) done(Status::Ok());
    } else {
      ++it;
    }
  }
}

void Node::MaybeSnapshot() {
  const Index applied = state_.applied_index();
  if (Distance(last_snapshot_index_, applied) < config_.snapshot_count) return;
  Status s = log_->CreateSnapshot(applied, raw_->conf_state(), state_.Serialize());
  if (s.ok()) {
    last_snapshot_index_ = applied;
  } else if (s.code() == ErrorCode::kIoError || s.code() == ErrorCode::kNoSpace) {
    disk_failure_ = s;
    FailAll(s);
  }
}

void Node::ExpireWaiters() {
  const int64_t now = clock_->NowMs();
  for (auto it = proposals_.begin(); it != proposals_.end();) {
    if (it->second.deadline_ms <= now) {
      ProposeDone done = std::move(it->second.done);
      it = proposals_.erase(it);
      done(ErrorResult(Timeout()));
    } else {
      ++it;
    }
  }
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.deadline_ms <= now) {
      std::vector<ReadDone> dones = std::move(it->second.dones);
      if (it->first == open_read_) open_read_.clear();
      it = reads_.erase(it);
      for (ReadDone& done : dones) done(Timeout());
    } else {
      ++it;
    }
  }
  for (auto it = conf_changes_.begin(); it != conf_changes_.end();) {
    if (it->deadline_ms <= now) {
      ReadDone done = std::move(it->done);
      it = conf_changes_.erase(it);
      done(Timeout());
    } else {
      ++it;
    }
  }
}

void Node::ProposeConfChange(const raft::ConfChange& cc, ReadDone done) {
  if (!disk_failure_.ok()) return done(disk_failure_);
  if (Status s = raw_->ProposeConfChange(cc); !s.ok()) return done(s);
  conf_changes_.push_back(
      {cc.Encode(), std::move(done), clock_->NowMs() + config_.request_timeout_ms});
  Process();
}

void Node::FailAll(const Status& s) {
  auto changes = std::move(conf_changes_);
  conf_changes_.clear();
  for (PendingConfChange& c : changes) c.done(s);
  auto proposals = std::move(proposals_);
  proposals_.clear();
  for (auto& [id, p] : proposals) p.done(ErrorResult(s));
  auto reads = std::move(reads_);
  reads_.clear();
  open_read_.clear();
  for (auto& [ctx, r] : reads) {
    for (ReadDone& done : r.dones) done(s);
  }
  auto resets = std::move(lease_resets_);
  lease_resets_.clear();
  for (auto& [id, waiters] : resets) {
    for (KeepAliveDone& d : waiters) d(s);
  }
}

void Node::OnRoleChange(raft::Role old_role, raft::Role new_role) {
  if (new_role == raft::Role::kLeader) {
    // Resume every lease from its checkpointed remaining time (or the full
    // TTL): never earlier than the previous leader would have expired it.
    const int64_t now = clock_->NowMs();
    lease_clocks_.clear();
    for (const auto& [id, lease] : state_.leases().all()) {
      const int64_t left = lease.remaining_ms > 0 ? lease.remaining_ms : lease.ttl_seconds * 1000;
      lease_clocks_[id].deadline_ms = now + left;
    }
    next_checkpoint_ms_ = now;
  } else if (old_role == raft::Role::kLeader) {
    lease_clocks_.clear();
    auto resets = std::move(lease_resets_);
    lease_resets_.clear();
    for (auto& [id, waiters] : resets) {
      for (KeepAliveDone& d : waiters) d(NotLeader());
    }
  }
}

// ---------------------------------------------------------------------------
// Leases (leader only)

void Node::LeaseTick() {
  const int64_t now = clock_->NowMs();
  for (auto& [id, clock] : lease_clocks_) {
    if (clock.deadline_ms > now) continue;
    // Expired: revoke through the log; retry if the revoke got lost.
    if (clock.revoke_sent_ms >= 0 && now - clock.revoke_sent_ms < config_.request_timeout_ms)
      continue;
    state::Command c;
    c.type = state::CommandType::kLeaseRevoke;
    c.lease_id = id;
    ProposeInternal(std::move(c));
    clock.revoke_sent_ms = now;
  }
  if (now < next_checkpoint_ms_) return;
  next_checkpoint_ms_ = now + config_.lease_checkpoint_interval_ms;
  // Only leases not renewed during the last interval: the ones that could be
  // kept alive by elections. Renewed leases need no record.
  state::Command c;
  c.type = state::CommandType::kLeaseCheckpoint;
  for (const auto& [id, clock] : lease_clocks_) {
    const state::Lease* lease = state_.leases().Find(id);
    if (lease == nullptr || clock.deadline_ms <= now) continue;
    const int64_t left = clock.deadline_ms - now;
    if (left <= lease->ttl_seconds * 1000 - config_.lease_checkpoint_interval_ms) {
      c.checkpoints.emplace_back(id, left);
    }
  }
  if (!c.checkpoints.empty()) ProposeInternal(std::move(c));
}

void Node::FlushLeaseResets() {
  if (lease_resets_.empty() || !IsLeader()) return;
  state::Command c;
  c.type = state::CommandType::kLeaseCheckpoint;
  for (const auto& [id, waiters] : lease_resets_) c.checkpoints.emplace_back(id, 0);
  auto waiting = std::move(lease_resets_);
  lease_resets_.clear();
  // Answer the renewals once the reset is applied.
  Propose(std::move(c), [this, waiting = std::move(waiting)](const state::ApplyResult& r) mutable {
    for (auto& [id, waiters] : waiting) {
      const state::Lease* lease = state_.leases().Find(id);
      for (KeepAliveDone& d : waiters) {
        if (!r.status.ok()) {
          d(r.status);
        } else if (lease == nullptr) {
          d(Status::NotFound("etcdserver: requested lease not found"));
        } else {
          d(lease->ttl_seconds);
        }
      }
    }
  });
}

}  // namespace warden::node

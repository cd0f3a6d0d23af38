#include "sim/node.h"

#include <algorithm>

namespace warden::sim {

SimNode::SimNode(World* world, Rng rng, const NodeOptions& options, SimNetwork* network,
                 Invariants* invariants, LeaseChecker* leases, LockChecker* locks, ReplyFn reply)
    : world_(world),
      rng_(rng),
      options_(options),
      network_(network),
      invariants_(invariants),
      leases_(leases),
      locks_(locks),
      reply_(std::move(reply)),
      transport_([this](std::vector<raft::Message> m) { SendMessages(std::move(m)); }),
      clock_([this] { return ClockMs(); }) {}

void SimNode::Bootstrap(const std::vector<NodeId>& voters) {
  disk_.WriteSnapshot(raft::BootstrapSnapshot(voters));
  disk_.Sync();
}

int64_t SimNode::ClockMs() const {
  // Ticks come every tick_us * (1 + drift): the clock runs at that rate.
  const double us = static_cast<double>(world_->now_us()) / (1 + options_.drift);
  return options_.clock_offset_ms + static_cast<int64_t>(us) / kUsPerMs;
}

void SimNode::Start() {
  WARDEN_CHECK(!up());
  ++incarnation_;
  auto storage = std::make_unique<raft::MemoryStorage>();
  std::string error;
  if (!disk_.Recover(storage.get(), &error)) {
    invariants_->Report("internal", Who() + " cannot recover its disk: " + error);
    return;
  }
  SimDurableLog::Hooks hooks;
  hooks.on_entries = [this](const std::vector<raft::Entry>& entries) {
    invariants_->OnPersistEntries(id(), entries, log_->storage());
  };
  hooks.sync = [this](std::function<void()> done) { Sync(std::move(done)); };
  hooks.internal_error = [this](const std::string& what) {
    invariants_->Report("internal", Who() + " " + what);
  };
  hooks.world = world_;
  hooks.who = Who();
  log_ = std::make_unique<SimDurableLog>(&disk_, std::move(storage), &rng_,
                                         options_.skip_persist_vote, std::move(hooks));
  node::NodeConfig config;
  config.raft.id = id();
  config.raft.election_ticks = options_.election_ticks;
  config.raft.heartbeat_ticks = options_.heartbeat_ticks;
  config.raft.seed = rng_.Next();
  config.raft.bugs = options_.bugs;
  config.raft.max_size_per_msg = options_.max_size_per_msg;
  config.raft.max_inflight_msgs = options_.max_inflight_msgs;
  config.snapshot_count = options_.snapshot_every;
  config.request_timeout_ms = options_.request_timeout_ms;
  config.lease_checkpoint_interval_ms = options_.lease_checkpoint_interval_ms;
  config.lock_bugs = options_.lock_bugs;
  paused_until_us_ = 0;
  lock_waiters_.clear();
  synced_while_paused_ = nullptr;
  last_conf_change_ = Index(0);
  leader_term_ = Term(0);
  if (world_->tracing()) {
    const raft::MemoryStorage& s = log_->storage();
    const raft::HardState& hs = s.hard_state();
    const Result<raft::Snapshot> snap = s.GetSnapshot();
    world_->Trace(Who(), Format("start term=%llu vote=%llu commit=%llu snap=%llu last=%llu",
                                U(hs.term), U(hs.vote), U(hs.commit),
                                U(snap.ok() ? snap->metadata.index : Index(0)), U(s.LastIndex())));
  }
  node_ = std::make_unique<node::Node>(config, log_.get(), &transport_, &clock_);
  node_->set_apply_observer(
      [this](const raft::Entry& e, const state::ApplyResult* r) { OnApplied(e, r); });
  node_->set_lock_sink([this](const state::ApplyResult& r) { OnLockAnswers(r); });
  node_->set_snapshot_observer([this](const raft::SnapshotMetadata& m) { OnSnapshotLoaded(m); });
  last_role_ = raft::Role::kFollower;
  last_term_ = Term(0);
  if (Status s = node_->Start(); !s.ok()) {
    invariants_->Report("internal", Who() + " cannot restart: " + s.ToString());
    node_.reset();
    log_.reset();
    return;
  }
  if (world_->tracing()) world_->Trace(Who(), DescribeConf(node_->conf_state()));
  last_role_ = node_->role();
  last_term_ = node_->term();
  invariants_->OnRole(id(), last_role_, last_term_, log_->storage());
  AfterStep();
  // The first tick lands at a random phase: the clocks of the nodes are skewed.
  ScheduleTick(rng_.Range(1, options_.tick_us));
}

void SimNode::Crash(bool partial_flush) {
  if (!up()) return;
  ++incarnation_;
  // Pending requests die with the process: no callback runs.
  node_.reset();
  log_.reset();
  inbox_.clear();
  synced_while_paused_ = nullptr;
  paused_until_us_ = 0;
  lock_waiters_.clear();
  const SimDisk::CrashOutcome out = disk_.Crash(rng_, partial_flush);
  if (world_->tracing()) {
    world_->Trace(Who(), Format("CRASH unsynced=%zu kept=%zu%s", out.unsynced, out.kept,
                                out.torn ? " torn-record-discarded" : ""));
  }
}

void SimNode::Pause(TimeUs duration_us) {
  if (!up()) return;
  const TimeUs until = std::max(paused_until_us_, world_->now_us() + duration_us);
  paused_until_us_ = until;
  world_->Trace(Who(), Format("pause for %lldms", static_cast<long long>(duration_us / kUsPerMs)));
  const uint64_t inc = incarnation_;
  world_->At(until, [this, inc] {
    if (inc != incarnation_ || paused()) return;
    world_->Trace(Who(), "resume");
    Drain();
  });
}

void SimNode::Unpause() {
  if (!up() || !paused()) return;
  paused_until_us_ = world_->now_us();
  world_->Trace(Who(), "resume");
  Drain();
}

void SimNode::ScheduleTick(TimeUs delay_us) {
  const uint64_t inc = incarnation_;
  world_->After(delay_us, [this, inc] {
    if (inc != incarnation_) return;
    // A paused process misses its ticks; it does not catch up later.
    if (!paused()) Input([this] { node_->Tick(); });
    ScheduleTick(static_cast<TimeUs>(static_cast<double>(options_.tick_us) * (1 + options_.drift)));
  });
}

void SimNode::Input(std::function<void()> fn) {
  if (!up()) return;
  if (paused()) {
    inbox_.push_back(std::move(fn));
    return;
  }
  fn();
  AfterStep();
}

void SimNode::Sync(std::function<void()> done) {
  const uint64_t inc = incarnation_;
  world_->After(rng_.Range(options_.sync_min_us, options_.sync_max_us),
                [this, inc, done = std::move(done)]() mutable {
                  if (inc != incarnation_) return;
                  // The kernel finishes the sync even if the process is frozen;
                  // the process learns of it only when it runs again.
                  disk_.Sync();
                  if (paused()) {
                    synced_while_paused_ = std::move(done);
                    return;
                  }
                  done();
                  AfterStep();
                });
}

void SimNode::Drain() {
  if (!up() || paused()) return;
  if (synced_while_paused_) {
    std::function<void()> done = std::move(synced_while_paused_);
    synced_while_paused_ = nullptr;
    done();
    AfterStep();
  }
  while (up() && !paused() && !inbox_.empty()) {
    std::function<void()> fn = std::move(inbox_.front());
    inbox_.pop_front();
    fn();
    AfterStep();
  }
}

void SimNode::SendMessages(std::vector<raft::Message> messages) {
  bool voted = false;
  for (const raft::Message& m : messages) {
    network_->Send(m);
    voted |= m.type == raft::MessageType::kVoteResponse && !m.reject;
  }
  if (voted && on_vote_granted_) on_vote_granted_(id());
}

void SimNode::CheckCommitRule() {
  // Raft 5.4.2, checked before/after every step: a leader moves its commit
  // index only onto an entry of its own term (older entries are committed
  // indirectly). Catches a leader that commits by counting old replicas
  // even when no Figure 8 history follows to overwrite the entry.
  const raft::NodeStatus s = node_->RaftStatus();
  if (s.role != raft::Role::kLeader) {
    leader_term_ = Term(0);
    return;
  }
  if (s.term != leader_term_) {
    leader_term_ = s.term;
    leader_commit_ = s.commit;
    return;
  }
  if (s.commit <= leader_commit_) return;
  const Result<Term> t = node_->LogTermAt(s.commit);
  if (t.ok() && *t != s.term) {
    invariants_->Report("leader-commit-rule",
                        Format("%s leader of term %llu advanced its commit index to %llu, an "
                               "entry of term %llu",
                               Who().c_str(), U(s.term), U(s.commit), U(*t)));
  }
  leader_commit_ = s.commit;
}

void SimNode::ObserveRole() {
  CheckCommitRule();
  const raft::Role role = node_->role();
  const Term term = node_->term();
  if (role == last_role_ && term == last_term_) return;
  if (world_->tracing() && role != last_role_) {
    world_->Trace(Who(), Format("%s term=%llu", raft::RoleName(role), U(term)));
  }
  last_role_ = role;
  last_term_ = term;
  invariants_->OnRole(id(), role, term, log_->storage());
  if (role == raft::Role::kLeader && on_became_leader_) on_became_leader_(id());
}

void SimNode::AfterStep() {
  if (!up()) return;
  if (last_conf_change_ != Index(0)) {
    // Only the last change applied is known to give exactly this state.
    invariants_->OnConfState(last_conf_change_, node_->conf_state());
    if (world_->tracing()) {
      world_->Trace(Who(), Format("config at %llu: %s", U(last_conf_change_),
                                  DescribeConf(node_->conf_state()).c_str()));
    }
    last_conf_change_ = Index(0);
  }
  invariants_->OnCommit(id(), log_->storage(), log_->snapshot_metadata());
  ObserveRole();  // the role may change during Advance (e.g. a removed leader)
}

void SimNode::OnApplied(const raft::Entry& e, const state::ApplyResult* r) {
  const state::StateMachine& sm = node_->state();
  invariants_->OnApply(id(), e, sm.Digest());
  if (e.type == raft::EntryType::kConfChange) last_conf_change_ = e.index;
  leases_->OnApplied(id(), e, sm, world_->now_us());
  locks_->OnApplied(id(), e, r);
}

void SimNode::OnLockAnswers(const state::ApplyResult& r) {
  for (const state::LockAnswer& a : r.lock_answers) {
    auto it = lock_waiters_.find({a.owner.session, a.owner.id, a.request_id});
    if (it == lock_waiters_.end()) continue;
    ClientResponse resp;
    resp.client = it->second.client;
    resp.seq = it->second.seq;
    resp.leader_hint = node_->leader();
    resp.lock = a;
    lock_waiters_.erase(it);
    reply_(resp);
  }
}

void SimNode::OnSnapshotLoaded(const raft::SnapshotMetadata& meta) {
  invariants_->OnSnapshotInstalled(id(), meta, node_->state().Digest());
  world_->Trace(Who(), Format("install snapshot %llu/%llu", U(meta.index), U(meta.term)));
}

void SimNode::OnMessage(const raft::Message& m) {
  Input([this, m] { node_->Step(m); });
}

void SimNode::OnTransportReport(const raft::Message& m, bool delivered) {
  Input([this, m, delivered] {
    if (!delivered) node_->ReportUnreachable(m.to);
    if (m.type == raft::MessageType::kSnapshot) node_->ReportSnapshot(m.to, delivered);
  });
}

void SimNode::ProposeConfChange(const raft::ConfChange& cc) {
  Input([this, cc] {
    Status s = node_->ProposeConfChange(cc);
    std::string what;
    for (const raft::ConfChangeSingle& c : cc.changes) {
      what += Format(" %s n%llu",
                     c.type == raft::ConfChangeType::kAddVoter     ? "add-voter"
                     : c.type == raft::ConfChangeType::kAddLearner ? "add-learner"
                                                                   : "remove",
                     U(c.node));
    }
    if (what.empty()) what = " leave-joint";
    world_->Trace(Who(),
                  "propose conf change" + what + (s.ok() ? "" : " refused: " + s.ToString()));
  });
}

void SimNode::TransferLeader(NodeId target) {
  Input([this, target] {
    world_->Trace(Who(), Format("transfer leadership to n%llu", U(target)));
    node_->TransferLeader(target);
  });
}

void SimNode::OnClientRequest(const ClientRequest& r) {
  Input([this, r] { HandleClient(r); });
}

void SimNode::Reply(const ClientRequest& r, ClientResponse::Code code) {
  ClientResponse resp;
  resp.code = code;
  resp.client = r.client;
  resp.seq = r.seq;
  resp.leader_hint = node_->leader();
  reply_(resp);
}

namespace {

state::RequestOp Put(const std::string& key, const std::string& value, int64_t lease) {
  state::PutRequest p;
  p.key = key;
  p.value = value;
  p.lease = lease;
  return state::RequestOp{std::move(p)};
}

}  // namespace

void SimNode::HandleClient(const ClientRequest& r) {
  state::Command c;
  switch (r.kind) {
    case ClientRequest::kRead: {
      if (node_->leader() == kNoNode) return Refuse(r);
      // A linearizable read: a read barrier, then a range read of the state.
      const uint64_t inc = incarnation_;
      node_->ReadBarrier([this, inc, r](const Status& s) {
        if (inc != incarnation_ || !s.ok()) return;  // the client times out
        state::RangeOptions range;
        range.range.key = r.key;
        const Result<state::RangeResult> got = node_->state().kv().Range(range);
        if (!got.ok()) return;
        ClientResponse resp;
        resp.client = r.client;
        resp.seq = r.seq;
        if (!got->kvs.empty()) resp.value = got->kvs.front().value;
        reply_(resp);
      });
      return;
    }
    case ClientRequest::kLeaseKeepAlive: {
      const uint64_t inc = incarnation_;
      auto in_call = std::make_shared<bool>(true);
      node_->KeepAlive(r.lease, [this, inc, r, in_call](const Result<int64_t>& ttl) {
        if (inc != incarnation_) return;
        if (ttl.ok()) return Reply(r, ClientResponse::kOk);
        if (*in_call && ttl.status().code() == ErrorCode::kNotLeader) return Refuse(r);
        if (ttl.status().code() == ErrorCode::kNotFound) return Reply(r, ClientResponse::kFailed);
      });
      *in_call = false;
      return;
    }
    case ClientRequest::kPut:
    case ClientRequest::kLeasePut: c.txn.success.push_back(Put(r.key, r.value, r.lease)); break;
    case ClientRequest::kCas: {
      state::Compare cmp;
      cmp.range.key = r.key;
      if (r.expected) {
        cmp.target = state::Compare::Target::kValue;
        cmp.value = *r.expected;
      } else {
        cmp.target = state::Compare::Target::kVersion;  // version 0: absent
        cmp.number = 0;
      }
      c.txn.compares.push_back(std::move(cmp));
      c.txn.success.push_back(Put(r.key, r.value, 0));
      break;
    }
    case ClientRequest::kDelete: {
      state::DeleteRangeRequest d;
      d.range.key = r.key;
      c.txn.success.push_back(state::RequestOp{std::move(d)});
      break;
    }
    case ClientRequest::kLeaseGrant:
      c.type = state::CommandType::kLeaseGrant;
      c.lease_id = r.lease;
      c.ttl_seconds = r.ttl_seconds;
      break;
    case ClientRequest::kLeaseRevoke:
      c.type = state::CommandType::kLeaseRevoke;
      c.lease_id = r.lease;
      break;
    case ClientRequest::kLockAcquire:
    case ClientRequest::kLockRelease:
    case ClientRequest::kLockCancel:
      c.type = r.kind == ClientRequest::kLockAcquire   ? state::CommandType::kLockAcquire
               : r.kind == ClientRequest::kLockRelease ? state::CommandType::kLockRelease
                                                       : state::CommandType::kLockCancel;
      c.lock = r.lock;
      return ProposeLock(r, std::move(c));
    case ClientRequest::kGuardedPut:
      c.type = state::CommandType::kGuardedTxn;
      c.lock = r.lock;
      c.txn.success.push_back(Put(r.key, r.value, 0));
      return ProposeLock(r, std::move(c));
  }
  Propose(r, std::move(c));
}

void SimNode::ProposeLock(const ClientRequest& r, state::Command c) {
  // As Propose, except that an entry applied with an error (a guarded put
  // whose token does not hold the lock) is a definite answer, and that a
  // queued acquire is remembered for its final answer.
  const uint64_t inc = incarnation_;
  auto in_call = std::make_shared<bool>(true);
  node_->Propose(std::move(c), [this, inc, r, in_call](const state::ApplyResult& res) {
    if (inc != incarnation_) return;
    if (*in_call && !res.status.ok()) return Refuse(r);
    // Only an applied entry carries its proposal id; kTimeout and the like
    // leave the outcome unknown, and the client times out.
    if (res.proposal_id == 0) return;
    ClientResponse resp;
    resp.code = res.status.ok() ? ClientResponse::kOk : ClientResponse::kFailed;
    resp.client = r.client;
    resp.seq = r.seq;
    resp.leader_hint = node_->leader();
    resp.lock = res.lock;
    if (r.kind == ClientRequest::kLockAcquire && res.lock.outcome == state::LockOutcome::kQueued) {
      lock_waiters_[{r.lock.session, r.lock.owner_id, r.lock.request_id}] = r;
    }
    reply_(resp);
  });
  *in_call = false;
}

void SimNode::Propose(const ClientRequest& r, state::Command c) {
  // An error while Propose runs means the command was never appended (not
  // leader, a transfer in progress): a definite failure. Later errors
  // (kTimeout) leave the outcome unknown: the client times out.
  const uint64_t inc = incarnation_;
  auto in_call = std::make_shared<bool>(true);
  node_->Propose(std::move(c), [this, inc, r, in_call](const state::ApplyResult& res) {
    if (inc != incarnation_) return;
    if (*in_call && !res.status.ok()) return Refuse(r);
    if (!res.status.ok()) {
      if (res.status.code() == ErrorCode::kNotFound) Reply(r, ClientResponse::kFailed);
      return;
    }
    ClientResponse resp;
    resp.client = r.client;
    resp.seq = r.seq;
    if (r.kind == ClientRequest::kCas) resp.cas_ok = res.txn.succeeded;
    reply_(resp);
  });
  *in_call = false;
}

}  // namespace warden::sim

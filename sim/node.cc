#include "sim/node.h"

#include <algorithm>

namespace warden::sim {
namespace {}  // namespace

SimNode::SimNode(World* world, Rng rng, const NodeOptions& options, SimNetwork* network,
                 Invariants* invariants, ReplyFn reply)
    : world_(world),
      rng_(rng),
      options_(options),
      network_(network),
      invariants_(invariants),
      reply_(std::move(reply)) {}

void SimNode::Bootstrap(const std::vector<NodeId>& voters) {
  disk_.WriteSnapshot(raft::BootstrapSnapshot(voters));
  disk_.Sync();
}

void SimNode::Start() {
  WARDEN_CHECK(!up());
  ++incarnation_;
  storage_ = std::make_unique<raft::MemoryStorage>();
  std::string error;
  if (!disk_.Recover(storage_.get(), &error)) {
    invariants_->Report("internal", Who() + " cannot recover its disk: " + error);
    return;
  }
  const Result<raft::Snapshot> snap = storage_->GetSnapshot();
  WARDEN_CHECK(snap.ok());
  if (!kv_.Restore(snap->data)) {
    invariants_->Report("internal", Who() + " cannot restore its snapshot image");
    return;
  }
  applied_ = snap->metadata.index;
  raft::Config config;
  config.id = id();
  config.election_ticks = options_.election_ticks;
  config.heartbeat_ticks = options_.heartbeat_ticks;
  config.applied = applied_;
  config.seed = rng_.Next();
  config.bugs = options_.bugs;
  config.max_size_per_msg = options_.max_size_per_msg;
  config.max_inflight_msgs = options_.max_inflight_msgs;
  Result<std::unique_ptr<raft::RawNode>> raw = raft::RawNode::Create(config, storage_.get());
  if (!raw.ok()) {
    invariants_->Report("internal", Who() + " cannot restart: " + raw.status().ToString());
    return;
  }
  raw_ = std::move(*raw);
  busy_ = false;
  paused_until_us_ = 0;
  unwritten_hard_state_.reset();
  last_role_ = raw_->role();
  last_term_ = raw_->term();
  if (world_->tracing()) {
    const raft::HardState& hs = storage_->hard_state();
    world_->Trace(Who(),
                  Format("start term=%llu vote=%llu commit=%llu snap=%llu last=%llu %s", U(hs.term),
                         U(hs.vote), U(hs.commit), U(applied_), U(storage_->LastIndex()),
                         DescribeConf(raw_->conf_state()).c_str()));
  }
  invariants_->OnRole(id(), last_role_, last_term_, *storage_);
  // The first tick lands at a random phase: the clocks of the nodes are skewed.
  ScheduleTick(rng_.Range(1, options_.tick_us));
  HandleReady();
}

void SimNode::Crash(bool partial_flush) {
  if (!up()) return;
  ++incarnation_;
  raw_.reset();
  storage_.reset();
  inbox_.clear();
  pending_reads_.clear();
  ready_reads_.clear();
  pending_writes_.clear();
  busy_ = false;
  synced_while_paused_ = false;
  paused_until_us_ = 0;
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
    if (!paused()) Input([this] { raw_->Tick(); });
    ScheduleTick(static_cast<TimeUs>(static_cast<double>(options_.tick_us) * (1 + options_.drift)));
  });
}

void SimNode::Input(std::function<void()> fn) {
  if (!up()) return;
  if (busy_ || paused()) {
    inbox_.push_back(std::move(fn));
    return;
  }
  fn();
  AfterInput();
}

void SimNode::CheckCommitRule() {
  // Raft 5.4.2, checked before/after every step: a leader moves its commit
  // index only onto an entry of its own term (older entries are committed
  // indirectly). Catches a leader that commits by counting old replicas
  // even when no Figure 8 history follows to overwrite the entry.
  const raft::NodeStatus s = raw_->GetStatus();
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
  const Result<Term> t = raw_->LogTermAt(s.commit);
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
  const raft::Role role = raw_->role();
  const Term term = raw_->term();
  if (role == last_role_ && term == last_term_) return;
  if (world_->tracing() && role != last_role_) {
    world_->Trace(Who(), Format("%s term=%llu", raft::RoleName(role), U(term)));
  }
  last_role_ = role;
  last_term_ = term;
  invariants_->OnRole(id(), role, term, *storage_);
  if (role == raft::Role::kLeader && on_became_leader_) on_became_leader_(id());
}

void SimNode::AfterInput() {
  ObserveRole();
  HandleReady();
}

void SimNode::Drain() {
  if (!up() || paused()) return;
  if (synced_while_paused_) {
    synced_while_paused_ = false;
    FinishReady();
  }
  if (busy_) return;
  HandleReady();
  while (up() && !busy_ && !paused() && !inbox_.empty()) {
    std::function<void()> fn = std::move(inbox_.front());
    inbox_.pop_front();
    fn();
    AfterInput();
  }
}

void SimNode::HandleReady() {
  while (up() && !busy_ && !paused() && raw_->HasReady()) {
    if (!PersistReady()) return;  // the sync is running; OnSynced goes on
    FinishReady();
  }
}

bool SimNode::PersistReady() {
  ready_ = raw_->GetReady();
  const raft::Ready& rd = ready_;
  // 1. Soft state: informational (role changes are traced in AfterInput).
  // 2. Persist: snapshot, entries, hard state; then sync before anything else.
  if (rd.snapshot) {
    disk_.WriteSnapshot(*rd.snapshot);
    Status s = storage_->ApplySnapshot(*rd.snapshot);
    if (!s.ok())
      invariants_->Report("internal", Who() + " storage refused a snapshot: " + s.ToString());
    world_->Trace(Who(), Format("persist snapshot %llu/%llu", U(rd.snapshot->metadata.index),
                                U(rd.snapshot->metadata.term)));
  }
  if (!rd.entries.empty()) {
    disk_.WriteEntries(rd.entries);
    storage_->Append(rd.entries);
    invariants_->OnPersistEntries(id(), rd.entries, *storage_);
    if (world_->tracing()) {
      world_->Trace(Who(),
                    Format("persist entries %llu..%llu term=%llu", U(rd.entries.front().index),
                           U(rd.entries.back().index), U(rd.entries.back().term)));
    }
  }
  bool sync = rd.must_sync;
  if (rd.hard_state) {
    storage_->SetHardState(*rd.hard_state);
    unwritten_hard_state_ = *rd.hard_state;
  }
  const bool only_hard_state = rd.entries.empty() && !rd.snapshot;
  if (options_.skip_persist_vote && only_hard_state) {
    // The planted bug: keep the hard state in memory and answer at once.
    sync = false;
  } else if (unwritten_hard_state_) {
    disk_.WriteHardState(*unwritten_hard_state_);
    unwritten_hard_state_.reset();
  }
  if (!sync) return true;
  busy_ = true;
  const uint64_t inc = incarnation_;
  world_->After(rng_.Range(options_.sync_min_us, options_.sync_max_us), [this, inc] {
    if (inc != incarnation_) return;
    OnSynced();
  });
  return false;
}

void SimNode::OnSynced() {
  // The kernel finishes the sync even if the process is frozen; the process
  // goes on with the Ready only when it runs again.
  disk_.Sync();
  if (paused()) {
    synced_while_paused_ = true;
    return;
  }
  FinishReady();
  Drain();
}

void SimNode::FinishReady() {
  raft::Ready& rd = ready_;
  // 3. Send.
  bool voted = false;
  for (const raft::Message& m : rd.messages) {
    network_->Send(m);
    voted |= m.type == raft::MessageType::kVoteResponse && !m.reject;
  }
  if (voted && on_vote_granted_) on_vote_granted_(id());
  // 4. Install the snapshot into the state machine.
  if (rd.snapshot) {
    if (!kv_.Restore(rd.snapshot->data)) {
      invariants_->Report("internal", Who() + " received a snapshot it cannot decode");
    }
    applied_ = rd.snapshot->metadata.index;
    invariants_->OnSnapshotInstalled(id(), rd.snapshot->metadata, kv_.Digest());
    world_->Trace(Who(), Format("install snapshot %llu/%llu", U(rd.snapshot->metadata.index),
                                U(rd.snapshot->metadata.term)));
  }
  // 5. Apply.
  Index last_conf_change;
  for (const raft::Entry& e : rd.committed_entries) {
    Apply(e);
    if (e.type == raft::EntryType::kConfChange) last_conf_change = e.index;
  }
  // 6. Reads.
  for (const raft::ReadState& rs : rd.read_states) ready_reads_.emplace_back(rs.index, rs.context);
  ServeReads();
  // 7. Advance.
  raw_->Advance();
  busy_ = false;
  if (last_conf_change != Index(0)) {
    // Only the last change of the batch is known to give exactly this state.
    invariants_->OnConfState(last_conf_change, raw_->conf_state());
    if (world_->tracing()) {
      world_->Trace(Who(), Format("config at %llu: %s", U(last_conf_change),
                                  DescribeConf(raw_->conf_state()).c_str()));
    }
  }
  invariants_->OnCommit(id(), *storage_);
  MaybeSnapshot();
  ready_ = raft::Ready{};
  ObserveRole();  // the role may change during Advance (e.g. a removed leader)
}

void SimNode::Apply(const raft::Entry& e) {
  if (e.index != applied_ + 1) {
    invariants_->Report(
        "internal", Format("%s applied %llu after %llu", Who().c_str(), U(e.index), U(applied_)));
  }
  applied_ = e.index;
  if (e.type == raft::EntryType::kNormal && !e.data.empty()) {
    KvCommand cmd;
    if (!KvCommand::Decode(e.data, &cmd)) {
      invariants_->Report("internal",
                          Format("%s cannot decode entry %llu", Who().c_str(), U(e.index)));
      return;
    }
    const KvResult r = kv_.Apply(cmd);
    auto it = pending_writes_.find({cmd.client, cmd.seq});
    if (it != pending_writes_.end()) {
      pending_writes_.erase(it);
      ClientResponse resp;
      resp.client = cmd.client;
      resp.seq = cmd.seq;
      resp.cas_ok = r.ok;
      reply_(resp);
    }
  }
  invariants_->OnApply(id(), e, kv_.Digest());
}

void SimNode::ServeReads() {
  auto it = ready_reads_.begin();
  while (it != ready_reads_.end()) {
    if (it->first > applied_) {
      ++it;
      continue;
    }
    auto p = pending_reads_.find(it->second);
    if (p != pending_reads_.end()) {
      ClientResponse resp;
      resp.client = p->second.client;
      resp.seq = p->second.seq;
      resp.value = kv_.Get(p->second.key);
      reply_(resp);
      pending_reads_.erase(p);
    }
    it = ready_reads_.erase(it);
  }
}

void SimNode::MaybeSnapshot() {
  const Result<raft::Snapshot> cur = storage_->GetSnapshot();
  const Index snap_index = cur.ok() ? cur->metadata.index : Index(0);
  if (applied_ <= snap_index || Distance(snap_index, applied_) < options_.snapshot_every) return;
  Status s = storage_->CreateSnapshot(applied_, raw_->conf_state(), kv_.Serialize());
  if (!s.ok()) {
    invariants_->Report("internal", Who() + " cannot create a snapshot: " + s.ToString());
    return;
  }
  // Keep a few entries behind the snapshot so that slightly lagging followers
  // still catch up from the log; the rest need InstallSnapshot.
  const uint64_t keep = rng_.Range(0, 4);
  if (Distance(snap_index, applied_) > keep) {
    Status c = storage_->Compact(applied_ - keep);
    if (!c.ok()) invariants_->Report("internal", Who() + " cannot compact: " + c.ToString());
  }
  disk_.Checkpoint(*storage_);
  world_->Trace(Who(),
                Format("snapshot at %llu, log from %llu", U(applied_), U(storage_->FirstIndex())));
}

void SimNode::OnMessage(const raft::Message& m) {
  Input([this, m] {
    Status s = raw_->Step(m);
    if (!s.ok()) world_->Trace(Who(), "step refused: " + s.ToString());
  });
}

void SimNode::OnTransportReport(const raft::Message& m, bool delivered) {
  Input([this, m, delivered] {
    if (!delivered) raw_->ReportUnreachable(m.to);
    if (m.type == raft::MessageType::kSnapshot) raw_->ReportSnapshot(m.to, delivered);
  });
}

void SimNode::ProposeConfChange(const raft::ConfChange& cc) {
  Input([this, cc] {
    Status s = raw_->ProposeConfChange(cc);
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
    raw_->TransferLeader(target);
  });
}

void SimNode::OnClientRequest(const ClientRequest& r) {
  Input([this, r] { HandleClient(r); });
}

void SimNode::Refuse(const ClientRequest& r) {
  ClientResponse resp;
  resp.code = ClientResponse::kRefused;
  resp.client = r.client;
  resp.seq = r.seq;
  resp.leader_hint = raw_->leader();
  reply_(resp);
}

void SimNode::HandleClient(const ClientRequest& r) {
  if (r.kind == ClientRequest::kRead) {
    if (raw_->leader() == kNoNode) return Refuse(r);
    const std::string ctx = Format("%llu/%llu", U(r.client), U(r.seq));
    pending_reads_[ctx] = PendingRead{r.client, r.seq, r.key};
    raw_->ReadIndex(ctx);
    return;
  }
  if (raw_->role() != raft::Role::kLeader) return Refuse(r);
  KvCommand cmd;
  cmd.op = r.kind == ClientRequest::kCas ? KvCommand::kCas : KvCommand::kPut;
  cmd.client = r.client;
  cmd.seq = r.seq;
  cmd.key = r.key;
  cmd.value = r.value;
  cmd.expected = r.expected;
  // A refused proposal was never appended: the failure is definite.
  if (!raw_->Propose(cmd.Encode()).ok()) return Refuse(r);
  pending_writes_[{r.client, r.seq}] = true;
}

}  // namespace warden::sim

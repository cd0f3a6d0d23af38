#include "src/raft/raw_node.h"

#include <algorithm>

#include "src/base/check.h"
#include "src/raft/raft.h"

namespace warden::raft {

// What the outstanding Ready handed out, so that Advance acknowledges exactly
// that even if Step was called in between.
struct RawNode::Outstanding {
  bool active = false;
  Index last_entry_index;
  Term last_entry_term;
  Index snapshot_index;
  Index last_committed_index;
  std::vector<ConfChange> conf_changes;
};

Result<std::unique_ptr<RawNode>> RawNode::Create(const Config& config, const Storage* storage) {
  if (config.id == kNoNode) return Status::InvalidArgument("node id 0 is reserved");
  if (config.election_ticks <= config.heartbeat_ticks || config.heartbeat_ticks <= 0) {
    return Status::InvalidArgument("need 0 < heartbeat_ticks < election_ticks");
  }
  if (config.lease_reads && !config.check_quorum) {
    return Status::InvalidArgument("lease_reads requires check_quorum");
  }
  if (config.max_inflight_msgs <= 0)
    return Status::InvalidArgument("max_inflight_msgs must be > 0");
  return std::unique_ptr<RawNode>(
      new RawNode(std::make_unique<Raft>(config, storage), storage->InitialState().first));
}

RawNode::RawNode(std::unique_ptr<Raft> raft, const HardState& durable)
    : raft_(std::move(raft)), outstanding_(std::make_unique<Outstanding>()) {
  prev_soft_ = raft_->soft_state();
  // What is on disk, so that a hard state the core adjusted at start (see
  // Raft::Raft) is persisted by the first Ready.
  prev_hard_ = durable;
}

RawNode::~RawNode() = default;

void RawNode::Tick() { raft_->Tick(); }
Status RawNode::Step(const Message& m) { return raft_->Step(m); }

Status RawNode::Propose(std::string data) {
  Entry e;
  e.data = std::move(data);
  return raft_->Propose({std::move(e)});
}

Status RawNode::ProposeConfChange(const ConfChange& cc) { return raft_->ProposeConfChange(cc); }
void RawNode::ReadIndex(std::string context) { raft_->ReadIndex(std::move(context)); }
void RawNode::TransferLeader(NodeId target) { raft_->TransferLeader(target); }
void RawNode::Campaign() { raft_->Campaign(false); }
void RawNode::ReportUnreachable(NodeId peer) { raft_->ReportUnreachable(peer); }
void RawNode::ReportSnapshot(NodeId peer, bool ok) { raft_->ReportSnapshot(peer, ok); }

bool RawNode::HasReady() const {
  if (outstanding_->active) return false;
  const RaftLog& log = raft_->log();
  if (raft_->soft_state() != prev_soft_) return true;
  const HardState hs = raft_->hard_state();
  if (!hs.IsEmpty() && hs != prev_hard_) return true;
  return !log.unstable_entries().empty() || log.unstable_snapshot().has_value() ||
         log.HasNextCommittedEntries() || !raft_->messages().empty() ||
         !raft_->read_states().empty();
}

Ready RawNode::GetReady() {
  WARDEN_CHECK_MSG(!outstanding_->active, "GetReady called before Advance");
  Ready rd;
  RaftLog& log = raft_->log();
  const SoftState ss = raft_->soft_state();
  if (ss != prev_soft_) {
    rd.soft_state = ss;
    prev_soft_ = ss;
  }
  const HardState hs = raft_->hard_state();
  if (!hs.IsEmpty() && hs != prev_hard_) {
    rd.hard_state = hs;
    rd.must_sync = hs.term != prev_hard_.term || hs.vote != prev_hard_.vote;
    prev_hard_ = hs;
  }
  rd.entries = log.unstable_entries();
  rd.snapshot = log.unstable_snapshot();
  rd.committed_entries = log.NextCommittedEntries();
  rd.messages = std::move(raft_->messages());
  raft_->messages().clear();
  rd.read_states = std::move(raft_->read_states());
  raft_->read_states().clear();
  if (!rd.entries.empty() || rd.snapshot) rd.must_sync = true;

  Outstanding& o = *outstanding_;
  o = Outstanding{};
  o.active = true;
  if (!rd.entries.empty()) {
    o.last_entry_index = rd.entries.back().index;
    o.last_entry_term = rd.entries.back().term;
  }
  if (rd.snapshot) o.snapshot_index = rd.snapshot->metadata.index;
  if (!rd.committed_entries.empty()) {
    o.last_committed_index = rd.committed_entries.back().index;
    for (const Entry& e : rd.committed_entries) {
      if (e.type != EntryType::kConfChange) continue;
      ConfChange cc;
      WARDEN_CHECK_MSG(ConfChange::Decode(e.data, &cc), "undecodable membership change entry");
      o.conf_changes.push_back(std::move(cc));
    }
  }
  return rd;
}

void RawNode::Advance() {
  WARDEN_CHECK_MSG(outstanding_->active, "Advance without an outstanding Ready");
  Outstanding o = std::move(*outstanding_);
  *outstanding_ = Outstanding{};
  RaftLog& log = raft_->log();
  if (o.snapshot_index > Index(0)) {
    log.StableSnapshotTo(o.snapshot_index);
    log.AppliedTo(o.snapshot_index);
  }
  if (o.last_entry_index > Index(0)) {
    log.StableTo(o.last_entry_index, o.last_entry_term);
    raft_->OnStable(log.StableLastIndex());
  }
  if (o.last_committed_index > Index(0)) {
    // A snapshot restored since GetReady carries a newer membership that
    // already includes these changes; applying them again would regress it.
    if (!log.unstable_snapshot()) {
      for (const ConfChange& cc : o.conf_changes) raft_->ApplyConfChange(cc);
    }
    log.AppliedTo(o.last_committed_index);
    raft_->MaybeAutoLeaveJoint();
  }
}

NodeStatus RawNode::GetStatus() const {
  NodeStatus s;
  s.id = raft_->id();
  s.role = raft_->role();
  s.leader = raft_->leader();
  s.term = raft_->term();
  s.vote = raft_->vote();
  s.commit = raft_->log().committed();
  s.applied = raft_->log().applied();
  s.last_index = raft_->log().LastIndex();
  s.conf_state = raft_->conf_state();
  s.lead_transferee = raft_->lead_transferee();
  if (raft_->role() == Role::kLeader) {
    for (const auto& [id, pr] : raft_->progress()) s.match[id] = pr.match();
  }
  return s;
}

Result<Term> RawNode::LogTermAt(Index i) const { return raft_->log().TermAt(i); }

const ConfState& RawNode::conf_state() const { return raft_->conf_state(); }
Role RawNode::role() const { return raft_->role(); }
NodeId RawNode::leader() const { return raft_->leader(); }
Term RawNode::term() const { return raft_->term(); }
NodeId RawNode::id() const { return raft_->id(); }

Snapshot BootstrapSnapshot(const std::vector<NodeId>& voters) {
  Snapshot s;
  s.metadata.index = Index(1);
  s.metadata.term = Term(1);
  s.metadata.conf_state.voters = voters;
  std::sort(s.metadata.conf_state.voters.begin(), s.metadata.conf_state.voters.end());
  return s;
}

}  // namespace warden::raft

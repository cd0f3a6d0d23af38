#include "sim/node_env.h"

namespace warden::sim {

SimDurableLog::SimDurableLog(SimDisk* disk, std::unique_ptr<raft::MemoryStorage> storage, Rng* rng,
                             bool skip_persist_vote, Hooks hooks)
    : ViewedDurableLog(storage.get()),
      disk_(disk),
      storage_(std::move(storage)),
      rng_(rng),
      skip_persist_vote_(skip_persist_vote),
      hooks_(std::move(hooks)) {
  if (Result<raft::Snapshot> snap = storage_->GetSnapshot(); snap.ok()) {
    snapshot_metadata_ = snap->metadata;
  }
}

void SimDurableLog::Persist(const std::optional<raft::Snapshot>& snapshot,
                            const std::vector<raft::Entry>& entries,
                            const std::optional<raft::HardState>& hard_state, bool sync,
                            std::function<void(const Status&)> done) {
  if (snapshot) {
    disk_->WriteSnapshot(*snapshot);
    if (Status s = storage_->ApplySnapshot(*snapshot); !s.ok()) {
      hooks_.internal_error("storage refused a snapshot: " + s.ToString());
    } else {
      snapshot_metadata_ = snapshot->metadata;
    }
    Trace(Format("persist snapshot %llu/%llu", U(snapshot->metadata.index),
                 U(snapshot->metadata.term)));
  }
  if (!entries.empty()) {
    disk_->WriteEntries(entries);
    storage_->Append(entries);
    hooks_.on_entries(entries);
    if (hooks_.world->tracing()) {
      Trace(Format("persist entries %llu..%llu term=%llu", U(entries.front().index),
                   U(entries.back().index), U(entries.back().term)));
    }
  }
  if (hard_state) {
    storage_->SetHardState(*hard_state);
    unwritten_hard_state_ = *hard_state;
  }
  if (skip_persist_vote_ && entries.empty() && !snapshot) {
    // The planted bug: keep the hard state in memory and answer at once.
    sync = false;
  } else if (unwritten_hard_state_) {
    disk_->WriteHardState(*unwritten_hard_state_);
    unwritten_hard_state_.reset();
  }
  if (!sync) return done(Status::Ok());
  hooks_.sync([done = std::move(done)] { done(Status::Ok()); });
}

Status SimDurableLog::CreateSnapshot(Index applied, const raft::ConfState& conf_state,
                                     std::string data) {
  const Index snap_index = snapshot_metadata_.index;
  if (applied <= snap_index) return Status::Ok();
  const Result<Term> term = storage_->TermAt(applied);
  if (Status s = storage_->CreateSnapshot(applied, conf_state, std::move(data)); !s.ok()) {
    hooks_.internal_error("cannot create a snapshot: " + s.ToString());
    return s;
  }
  snapshot_metadata_.index = applied;
  snapshot_metadata_.term = term.ok() ? *term : Term(0);
  snapshot_metadata_.conf_state = conf_state;
  // Keep a few entries behind the snapshot so that slightly lagging followers
  // still catch up from the log; the rest need InstallSnapshot.
  const uint64_t keep = rng_->Range(0, 4);
  if (Distance(snap_index, applied) > keep) {
    if (Status c = storage_->Compact(applied - keep); !c.ok()) {
      hooks_.internal_error("cannot compact: " + c.ToString());
    }
  }
  disk_->Checkpoint(*storage_);
  Trace(Format("snapshot at %llu, log from %llu", U(applied), U(storage_->FirstIndex())));
  return Status::Ok();
}

}  // namespace warden::sim

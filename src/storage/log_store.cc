#include "src/storage/log_store.h"

#include <algorithm>

namespace warden::storage {

namespace {
constexpr char kWhatToDo[] =
    " Restore the data directory from a backup snapshot, or remove this member from the "
    "cluster, wipe its data directory and add it again.";
}

Result<std::unique_ptr<LogStore>> LogStore::Open(Env* env, const std::string& data_dir,
                                                 const LogStoreOptions& options) {
  if (Status s = env->CreateDirIfMissing(data_dir); !s.ok()) return s;
  SnapshotStore snaps(env, JoinPath(data_dir, "snap"));
  if (Status s = snaps.Init(); !s.ok()) return s;
  // Temporary files of snapshots that never finished.
  if (Result<std::vector<std::string>> names = env->ListDir(snaps.dir()); names.ok()) {
    for (const std::string& n : *names) {
      if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp") {
        (void)env->RemoveFile(JoinPath(snaps.dir(), n));
      }
    }
  }
  RecoveredWal rw;
  Result<std::unique_ptr<Wal>> wal = Wal::Open(env, JoinPath(data_dir, "wal"), options.wal, &rw);
  if (!wal.ok()) return wal.status();

  std::unique_ptr<LogStore> store(new LogStore(std::move(wal).value(), std::move(snaps), options));
  if (!rw.torn_tail.empty())
    store->notes_.push_back("cut a torn write at the WAL tail: " + rw.torn_tail);

  // The newest valid snapshot that the log reaches back to.
  Result<std::vector<std::string>> names = store->snaps_.List();
  if (!names.ok()) return names.status();
  std::optional<raft::Snapshot> chosen;
  std::vector<std::string> unusable;
  for (const std::string& name : *names) {
    Result<raft::Snapshot> s = store->snaps_.Load(name);
    if (!s.ok()) {
      store->notes_.push_back("skipped damaged snapshot: " + s.status().message());
      unusable.push_back(name + " (damaged)");
      continue;
    }
    // rw.base counts even with no entries after it: an installed snapshot
    // restarted the log there, and nothing bridges an older snapshot to it.
    if (rw.base > s->metadata.index) {
      unusable.push_back(name + " (the log starts after it, at " +
                         std::to_string(rw.base.value() + 1) + ")");
      continue;
    }
    chosen = std::move(s).value();
    break;
  }
  if (!chosen && !names->empty()) {
    std::string list;
    for (const std::string& u : unusable) list += (list.empty() ? "" : ", ") + u;
    return Status::Corruption("no usable snapshot in " + store->snaps_.dir() + ": " + list + "." +
                              kWhatToDo);
  }
  if (!chosen && rw.base > Index(0)) {
    return Status::Corruption("the WAL in " + JoinPath(data_dir, "wal") + " starts at entry " +
                              std::to_string(rw.base.value() + 1) +
                              " but there is no snapshot before it." + kWhatToDo);
  }

  raft::MemoryStorage& mem = store->mem_;
  Index base = Index(0);
  if (chosen) {
    base = chosen->metadata.index;
    const Term snap_term = chosen->metadata.term;
    WARDEN_CHECK(mem.ApplySnapshot(*chosen).ok());
    // The WAL continues the snapshot only if it holds the snapshot's own
    // entry (or restarts right after it). Otherwise the entries after it are
    // from a history the snapshot replaced: drop them, durably.
    const Index last = rw.base + rw.entries.size();
    const bool continues =
        rw.base == base || (rw.base < base && base <= last &&
                            rw.entries[Distance(rw.base, base) - 1].term == snap_term);
    if (continues) {
      std::vector<raft::Entry> after;
      for (raft::Entry& e : rw.entries) {
        if (e.index > base) after.push_back(std::move(e));
      }
      mem.Append(after);
    } else if (!rw.entries.empty() || rw.base != base) {
      if (Status s = store->wal_->AppendSnapshot({base, snap_term, true}); !s.ok()) return s;
      if (Status s = store->wal_->Sync(); !s.ok()) return s;
    }
  } else {
    mem.Append(rw.entries);
  }
  raft::HardState hs = rw.hard_state;
  hs.commit = std::min(std::max(hs.commit, base), mem.LastIndex());
  mem.SetHardState(hs);
  return store;
}

Status LogStore::Save(const std::optional<raft::Snapshot>& snapshot,
                      const std::vector<raft::Entry>& entries,
                      const std::optional<raft::HardState>& hard_state, bool sync) {
  if (!wal_->failure().ok()) return wal_->failure();
  if (snapshot) {
    // Refuse before writing anything: an installed marker for an older
    // snapshot would discard newer entries at the next recovery.
    if (snapshot->metadata.index < mem_.snapshot_metadata().index) {
      return Status::FailedPrecondition("snapshot is older than the current one");
    }
    if (Status s = snaps_.Save(*snapshot); !s.ok()) return s;
    if (Status s = wal_->AppendSnapshot({snapshot->metadata.index, snapshot->metadata.term, true});
        !s.ok()) {
      return s;
    }
    if (Status s = mem_.ApplySnapshot(*snapshot); !s.ok()) return s;
    mem_.DropSnapshotData();
  }
  if (!entries.empty()) {
    if (Status s = wal_->AppendEntries(entries); !s.ok()) return s;
    mem_.Append(entries);
  }
  if (hard_state) {
    if (Status s = wal_->AppendHardState(*hard_state); !s.ok()) return s;
    mem_.SetHardState(*hard_state);
  }
  if (sync) return wal_->Sync();
  return Status::Ok();
}

Result<raft::Snapshot> LogStore::GetSnapshot() const {
  Result<raft::Snapshot> snap = mem_.GetSnapshot();
  if (!snap.ok() || snap->IsEmpty() || !snap->data.empty()) return snap;
  // The image is on disk only (an empty state machine's image is never empty:
  // it carries at least its format header, so this is not a real empty one).
  Result<raft::Snapshot> loaded =
      snaps_.Load(SnapshotFileName(snap->metadata.term, snap->metadata.index));
  if (!loaded.ok()) {
    return Status(ErrorCode::kSnapshotTemporarilyUnavailable,
                  "cannot read the snapshot back: " + loaded.status().ToString());
  }
  return loaded;
}

Status LogStore::CreateSnapshot(Index applied, const raft::ConfState& conf_state,
                                std::string data) {
  if (!wal_->failure().ok()) return wal_->failure();
  if (Status s = mem_.CreateSnapshot(applied, conf_state, std::move(data)); !s.ok()) return s;
  Result<raft::Snapshot> snap = mem_.GetSnapshot();
  if (Status s = snaps_.Save(*snap); !s.ok()) return s;
  mem_.DropSnapshotData();
  if (Status s = wal_->AppendSnapshot({applied, snap->metadata.term, false}); !s.ok()) return s;
  if (Status s = wal_->Sync(); !s.ok()) return s;
  if (applied > Index(options_.keep_entries_after_snapshot)) {
    const Index compact_to = applied - options_.keep_entries_after_snapshot;
    if (compact_to >= mem_.FirstIndex()) {
      if (Status s = mem_.Compact(compact_to); !s.ok()) return s;
    }
  }
  if (Status s = snaps_.Prune(options_.keep_snapshots + 1); !s.ok()) return s;
  // Release the segments that even the oldest retained snapshot does not need.
  Result<std::vector<std::string>> names = snaps_.List();
  if (!names.ok() || names->empty()) return names.status();
  Term t;
  Index oldest;
  if (!ParseSnapshotFileName(names->back(), &t, &oldest)) return Status::Ok();
  return wal_->ReleaseTo(oldest);
}

}  // namespace warden::storage

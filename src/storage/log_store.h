// LogStore: the durable Raft log of one member, under <data-dir>/{wal,snap}.
// It implements raft::Storage for the core and keeps every entry since the
// last compaction in memory (as etcd's raft storage does), so replication
// never reads the disk; the disk is read once, at Open. The newest snapshot's
// image is not kept in memory once it is on disk (it is as large as the
// state): GetSnapshot reads it back for the rare follower that needs it.
//
// Open loads the newest valid snapshot that the WAL still covers. A damaged
// snapshot is reported in recovery_notes() and an older one used if the log
// reaches back to it; otherwise Open fails with a message that names the
// files and what to do.
//
// Thread safety: none; the node loop owns it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/raft/storage.h"
#include "src/storage/env.h"
#include "src/storage/snapshot_file.h"
#include "src/storage/wal.h"

namespace warden::storage {

struct LogStoreOptions {
  WalOptions wal;
  // Snapshots (and the WAL segments they need) kept besides the newest.
  size_t keep_snapshots = 2;
  // Entries kept in memory below a new snapshot, for slow followers.
  uint64_t keep_entries_after_snapshot = 5000;
};

class LogStore final : public raft::Storage {
 public:
  static Result<std::unique_ptr<LogStore>> Open(Env* env, const std::string& data_dir,
                                                const LogStoreOptions& options);

  // raft::Storage
  std::pair<raft::HardState, raft::ConfState> InitialState() const override {
    return mem_.InitialState();
  }
  Result<std::vector<raft::Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const override {
    return mem_.Entries(lo, hi, max_bytes);
  }
  Result<Term> TermAt(Index i) const override { return mem_.TermAt(i); }
  Index FirstIndex() const override { return mem_.FirstIndex(); }
  Index LastIndex() const override { return mem_.LastIndex(); }
  Result<raft::Snapshot> GetSnapshot() const override;

  // Persists the durable part of one Ready, in the order RawNode requires:
  // an installed snapshot, then entries, then hard state; then, if `sync`,
  // one fdatasync covers them all. After an error the store refuses all
  // further writes (see Wal::failure()).
  Status Save(const std::optional<raft::Snapshot>& snapshot,
              const std::vector<raft::Entry>& entries,
              const std::optional<raft::HardState>& hard_state, bool sync);
  // Records the state machine's image at `applied` (local compaction), prunes
  // old snapshots and releases the WAL segments no retained snapshot needs.
  Status CreateSnapshot(Index applied, const raft::ConfState& conf_state, std::string data);

  // Frees the image of the snapshot Open loaded, once the state machine has
  // restored it (until then GetSnapshot returns it without reading the disk).
  void ReleaseSnapshotData() { mem_.DropSnapshotData(); }

  const raft::HardState& hard_state() const { return mem_.hard_state(); }
  const std::vector<std::string>& recovery_notes() const { return notes_; }
  Wal* wal() { return wal_.get(); }
  const SnapshotStore& snapshots() const { return snaps_; }

 private:
  LogStore(std::unique_ptr<Wal> wal, SnapshotStore snaps, const LogStoreOptions& options)
      : wal_(std::move(wal)), snaps_(std::move(snaps)), options_(options) {}

  std::unique_ptr<Wal> wal_;
  SnapshotStore snaps_;
  LogStoreOptions options_;
  raft::MemoryStorage mem_;
  std::vector<std::string> notes_;
};

}  // namespace warden::storage

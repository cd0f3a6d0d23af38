// The Raft core's read-only view of durable storage (etcd's Storage: six
// methods). The driver writes to the real store after each Ready; the core only
// reads through this interface. MemoryStorage is the in-memory implementation
// used by tests and the simulator's nodes (over a simulated disk).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "src/base/status.h"
#include "src/raft/types.h"

namespace warden::raft {

class Storage {
 public:
  virtual ~Storage() = default;

  // The hard state and membership saved before a restart.
  virtual std::pair<HardState, ConfState> InitialState() const = 0;
  // Entries in [lo, hi), at least one if any, and otherwise stopping before
  // max_bytes of data. Compacted -> kCompacted; beyond LastIndex -> kUnavailable.
  virtual Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const = 0;
  // The term of entry i, for i in [FirstIndex()-1, LastIndex()].
  virtual Result<Term> TermAt(Index i) const = 0;
  // The first index still held as an entry (the snapshot index + 1).
  virtual Index FirstIndex() const = 0;
  virtual Index LastIndex() const = 0;
  // The most recent snapshot; may be kSnapshotTemporarilyUnavailable.
  virtual Result<Snapshot> GetSnapshot() const = 0;
};

// Thread safety: none; owned by one node.
class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  std::pair<HardState, ConfState> InitialState() const override;
  Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const override;
  Result<Term> TermAt(Index i) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  Result<Snapshot> GetSnapshot() const override;

  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  const HardState& hard_state() const { return hard_state_; }
  // Appends entries, dropping any existing suffix they conflict with.
  // REQUIRES: entries are contiguous and entries[0].index <= LastIndex()+1.
  void Append(const std::vector<Entry>& entries);
  // Replaces everything with the snapshot. Older snapshots are refused
  // (kFailedPrecondition) and change nothing.
  Status ApplySnapshot(Snapshot snapshot);
  // Records a snapshot of the state machine at applied index i (<= LastIndex)
  // without dropping entries; Compact drops them.
  Status CreateSnapshot(Index i, const ConfState& cs, std::string data);
  // Drops entries up to and including i. REQUIRES: i <= LastIndex().
  Status Compact(Index i);
  // Frees the snapshot's image (its metadata stays): for a store that keeps
  // the image on disk and reads it back when asked (storage::LogStore).
  void DropSnapshotData() { std::string().swap(snapshot_.data); }
  const SnapshotMetadata& snapshot_metadata() const { return snapshot_.metadata; }

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  // entries_[0] is a dummy holding the snapshot's index and term.
  std::vector<Entry> entries_;
};

// Returns the prefix of entries whose total data size stays within max_bytes,
// always keeping at least one entry.
void LimitSize(std::vector<Entry>& entries, uint64_t max_bytes);
uint64_t EntrySize(const Entry& e);

}  // namespace warden::raft

// SimDisk: one node's simulated durable storage, a write-ahead log of records.
//
// A record is a hard state, one log entry, or a snapshot (the snapshot file of
// a real store). Write() appends to a volatile tail (the page cache); Sync()
// makes the whole tail durable (fdatasync). Crash() keeps the durable records
// and, when torn writes are enabled, a random prefix of the tail (the kernel
// may have flushed some pages on its own), followed by at most one torn record,
// which a real WAL detects by its checksum and discards; so what a crash keeps
// is always a prefix of the write order. Entries are one record each, as a
// real WAL frames them, so a torn batch keeps a prefix of its entries.
//
// Recover() rebuilds a raft::MemoryStorage by replaying the durable records in
// order: a snapshot replaces everything, entries append (truncating a
// conflicting suffix), a hard state overwrites the previous one. A snapshot's
// index counts as committed even if the hard state after it was lost.
//
// Checkpoint() replaces the whole content at once with a compacted image
// (snapshot, remaining entries, hard state): the write-new-file, fsync, rename
// sequence of a real store, which is atomic.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "src/base/random.h"
#include "src/raft/storage.h"
#include "src/raft/types.h"

namespace warden::sim {

class SimDisk {
 public:
  SimDisk() = default;

  void WriteHardState(const raft::HardState& hs);
  void WriteEntries(const std::vector<raft::Entry>& entries);
  void WriteSnapshot(const raft::Snapshot& snapshot);
  void Sync();
  // Replaces everything with `image`'s snapshot, entries and hard state, durably.
  void Checkpoint(const raft::MemoryStorage& image);

  struct CrashOutcome {
    size_t unsynced = 0;  // records in the volatile tail at the crash
    size_t kept = 0;      // of those, how many a partial flush kept
    bool torn = false;    // one more was half-written and discarded
  };
  // Loses the volatile tail; with `partial_flush`, keeps a random prefix of it.
  CrashOutcome Crash(Rng& rng, bool partial_flush);

  // REQUIRES: replay succeeds (the records were written by a correct driver);
  // returns false and fills `error` otherwise.
  bool Recover(raft::MemoryStorage* out, std::string* error) const;

  size_t unsynced() const { return records_.size() - durable_; }
  bool empty() const { return records_.empty(); }

 private:
  struct Record {
    enum Kind : uint8_t { kHardState, kEntry, kSnapshot } kind;
    raft::HardState hard_state;
    raft::Entry entry;
    std::shared_ptr<const raft::Snapshot> snapshot;
  };

  std::vector<Record> records_;
  size_t durable_ = 0;  // records_[0, durable_) survive a crash
};

}  // namespace warden::sim

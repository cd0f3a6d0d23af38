// RaftLog: the log as the core sees it: the durable part (through Storage)
// followed by the unstable part (entries and possibly a snapshot received but
// not yet handed to the driver for persisting), plus the commit and applied
// indexes.
//
// Invariants:
//   1. applied <= committed <= LastIndex().
//   2. Unstable entries start at unstable_offset_, and unstable_offset_ is
//      either Storage::LastIndex()+1, the index right after the unstable
//      snapshot, or lower when a conflict truncated the durable suffix (the
//      driver then overwrites it on persist).
//   3. Term(i) is defined for i in [FirstIndex()-1, LastIndex()].
#pragma once

#include <optional>
#include <vector>

#include "src/base/status.h"
#include "src/raft/storage.h"
#include "src/raft/types.h"

namespace warden::raft {

class RaftLog {
 public:
  RaftLog(const Storage* storage, uint64_t max_next_ents_size);

  Index FirstIndex() const;
  Index LastIndex() const;
  Term LastTerm() const;
  Result<Term> TermAt(Index i) const;
  // The term at i, or 0 when i is outside the log (compacted or beyond).
  Term ZeroTermOnErr(Index i) const;
  bool MatchTerm(Index i, Term t) const;
  // Section 5.4.1: is a log ending at (index, term) at least as up to date?
  bool IsUpToDate(Index last_index, Term term) const;

  // Appends entries received from a leader after the entry (prev, prev_term),
  // truncating a conflicting suffix, and advances commit to
  // min(leader_commit, last new index). Returns the last new index, or
  // nullopt when the log does not contain (prev, prev_term).
  std::optional<Index> MaybeAppend(Index prev, Term prev_term, Index leader_commit,
                                   const std::vector<Entry>& entries);
  // Appends at the end (the leader's own proposals). Returns the last index.
  Index Append(const std::vector<Entry>& entries);
  // Fast back-off (thesis 3.5): the largest index <= index whose term is
  // <= term, and that term.
  std::pair<Index, Term> FindConflictByTerm(Index index, Term term) const;

  // Entries from lo up to the end, limited to max_bytes (at least one).
  Result<std::vector<Entry>> EntriesFrom(Index lo, uint64_t max_bytes) const;
  Result<std::vector<Entry>> Slice(Index lo, Index hi, uint64_t max_bytes) const;

  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  void CommitTo(Index i);
  // Commits i if its term is `term` (only current-term entries are committed
  // by counting, section 5.4.2), or unconditionally when `any_term`.
  bool MaybeCommit(Index i, Term term, bool any_term = false);
  void AppliedTo(Index i);

  // What the driver must persist and apply.
  const std::vector<Entry>& unstable_entries() const { return unstable_; }
  const std::optional<Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries() const;
  // The entries up to (i, t) are now durable.
  void StableTo(Index i, Term t);
  // The last index the driver has made durable.
  Index StableLastIndex() const {
    return unstable_snapshot_ ? storage_->LastIndex() : unstable_offset_ - 1;
  }
  void StableSnapshotTo(Index i);

  // Replaces the log with a snapshot (InstallSnapshot). REQUIRES: the
  // snapshot is beyond committed.
  void Restore(const Snapshot& s);
  // The snapshot to send to a follower behind the first index.
  Result<Snapshot> GetSnapshot() const;

 private:
  // Term lookups inside the unstable part; nullopt if i is not there.
  std::optional<Term> UnstableTerm(Index i) const;
  Index FindConflict(const std::vector<Entry>& entries) const;
  void TruncateAndAppend(const std::vector<Entry>& entries);

  const Storage* storage_;
  uint64_t max_next_ents_size_;
  std::optional<Snapshot> unstable_snapshot_;
  std::vector<Entry> unstable_;
  Index unstable_offset_;
  Index committed_;
  Index applied_;
};

}  // namespace warden::raft

#include "src/raft/raft_log.h"

#include <algorithm>
#include <string>

#include "src/base/check.h"

namespace warden::raft {

RaftLog::RaftLog(const Storage* storage, uint64_t max_next_ents_size)
    : storage_(storage), max_next_ents_size_(max_next_ents_size) {
  unstable_offset_ = storage_->LastIndex() + 1;
  committed_ = storage_->FirstIndex() - 1;
  applied_ = committed_;
}

Index RaftLog::FirstIndex() const {
  if (unstable_snapshot_) return unstable_snapshot_->metadata.index + 1;
  return storage_->FirstIndex();
}

Index RaftLog::LastIndex() const {
  if (!unstable_.empty()) return unstable_offset_ + (unstable_.size() - 1);
  if (unstable_snapshot_) return unstable_snapshot_->metadata.index;
  return storage_->LastIndex();
}

Term RaftLog::LastTerm() const {
  Result<Term> t = TermAt(LastIndex());
  WARDEN_CHECK_MSG(t.ok(), "the last entry has no term");
  return *t;
}

std::optional<Term> RaftLog::UnstableTerm(Index i) const {
  if (i >= unstable_offset_ && Distance(unstable_offset_, i) < unstable_.size()) {
    return unstable_[Distance(unstable_offset_, i)].term;
  }
  if (unstable_snapshot_ && unstable_snapshot_->metadata.index == i) {
    return unstable_snapshot_->metadata.term;
  }
  return std::nullopt;
}

Result<Term> RaftLog::TermAt(Index i) const {
  const Index dummy = FirstIndex() - 1;
  if (i < dummy) return Status::Compacted("index " + std::to_string(i.value()) + " is compacted");
  if (i > LastIndex()) {
    return Status::Unavailable("index " + std::to_string(i.value()) + " is beyond the log");
  }
  if (std::optional<Term> t = UnstableTerm(i)) return *t;
  return storage_->TermAt(i);
}

Term RaftLog::ZeroTermOnErr(Index i) const {
  Result<Term> t = TermAt(i);
  return t.ok() ? *t : Term(0);
}

bool RaftLog::MatchTerm(Index i, Term t) const {
  Result<Term> mine = TermAt(i);
  return mine.ok() && *mine == t;
}

bool RaftLog::IsUpToDate(Index last_index, Term term) const {
  const Term my_term = LastTerm();
  return term > my_term || (term == my_term && last_index >= LastIndex());
}

Index RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return Index(0);
}

std::optional<Index> RaftLog::MaybeAppend(Index prev, Term prev_term, Index leader_commit,
                                          const std::vector<Entry>& entries) {
  if (!MatchTerm(prev, prev_term)) return std::nullopt;
  const Index last_new = prev + entries.size();
  const Index conflict = FindConflict(entries);
  if (conflict != Index(0)) {
    // Section 5.3: a committed entry never conflicts (Log Matching plus
    // Leader Completeness); if it does, the log is corrupt.
    WARDEN_CHECK_MSG(conflict > committed_, "conflict with a committed entry");
    const uint64_t skip = Distance(prev + 1, conflict);
    TruncateAndAppend(std::vector<Entry>(entries.begin() + skip, entries.end()));
  }
  CommitTo(std::min(leader_commit, last_new));
  return last_new;
}

Index RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  WARDEN_CHECK_MSG(entries[0].index > committed_, "appending over committed entries");
  TruncateAndAppend(entries);
  return LastIndex();
}

void RaftLog::TruncateAndAppend(const std::vector<Entry>& entries) {
  const Index after = entries[0].index;
  WARDEN_CHECK_MSG(after <= LastIndex() + 1, "append leaves a gap in the log");
  if (after == unstable_offset_ + unstable_.size()) {
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  } else if (after <= unstable_offset_) {
    // Replaces durable entries too; the driver overwrites them on persist.
    unstable_offset_ = after;
    unstable_ = entries;
  } else {
    unstable_.resize(Distance(unstable_offset_, after));
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  }
}

std::pair<Index, Term> RaftLog::FindConflictByTerm(Index index, Term term) const {
  while (index > Index(0)) {
    Result<Term> t = TermAt(index);
    if (!t.ok()) return {index, Term(0)};
    if (*t <= term) return {index, *t};
    index = index - 1;
  }
  return {Index(0), Term(0)};
}

Result<std::vector<Entry>> RaftLog::EntriesFrom(Index lo, uint64_t max_bytes) const {
  if (lo > LastIndex()) return std::vector<Entry>{};
  return Slice(lo, LastIndex() + 1, max_bytes);
}

Result<std::vector<Entry>> RaftLog::Slice(Index lo, Index hi, uint64_t max_bytes) const {
  if (lo < FirstIndex()) return Status::Compacted("slice starts in the compacted log");
  WARDEN_CHECK_MSG(lo <= hi && hi <= LastIndex() + 1, "slice out of bounds");
  std::vector<Entry> out;
  if (lo == hi) return out;
  if (lo < unstable_offset_) {
    Result<std::vector<Entry>> stored =
        storage_->Entries(lo, std::min(hi, unstable_offset_), max_bytes);
    if (!stored.ok()) return stored.status();
    out = std::move(stored).value();
    // Storage stopped early because of the size limit: return what we have.
    if (out.size() < Distance(lo, std::min(hi, unstable_offset_))) return out;
  }
  if (hi > unstable_offset_) {
    const Index from = std::max(lo, unstable_offset_);
    out.insert(out.end(), unstable_.begin() + Distance(unstable_offset_, from),
               unstable_.begin() + Distance(unstable_offset_, hi));
  }
  LimitSize(out, max_bytes);
  return out;
}

void RaftLog::CommitTo(Index i) {
  if (i <= committed_) return;
  WARDEN_CHECK_MSG(i <= LastIndex(), "commit index beyond the last entry");
  committed_ = i;
}

bool RaftLog::MaybeCommit(Index i, Term term, bool any_term) {
  if (i > committed_ && (any_term || ZeroTermOnErr(i) == term)) {
    CommitTo(i);
    return true;
  }
  return false;
}

void RaftLog::AppliedTo(Index i) {
  if (i == Index(0) || i <= applied_) return;
  WARDEN_CHECK_MSG(i <= committed_, "applied beyond committed");
  applied_ = i;
}

bool RaftLog::HasNextCommittedEntries() const {
  const Index off = std::max(applied_ + 1, FirstIndex());
  return committed_ + 1 > off;
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  const Index off = std::max(applied_ + 1, FirstIndex());
  if (committed_ + 1 <= off) return {};
  Result<std::vector<Entry>> ents = Slice(off, committed_ + 1, max_next_ents_size_);
  WARDEN_CHECK_MSG(ents.ok(), "committed entries are unavailable");
  return std::move(ents).value();
}

void RaftLog::StableTo(Index i, Term t) {
  std::optional<Term> ut = UnstableTerm(i);
  // Only if the entry is still the one handed out (a conflict may have
  // replaced it since).
  if (!ut || *ut != t || i < unstable_offset_) return;
  unstable_.erase(unstable_.begin(), unstable_.begin() + Distance(unstable_offset_, i) + 1);
  unstable_offset_ = i + 1;
}

void RaftLog::StableSnapshotTo(Index i) {
  if (unstable_snapshot_ && unstable_snapshot_->metadata.index == i) unstable_snapshot_.reset();
}

void RaftLog::Restore(const Snapshot& s) {
  WARDEN_CHECK(s.metadata.index > committed_);
  committed_ = s.metadata.index;
  unstable_offset_ = s.metadata.index + 1;
  unstable_.clear();
  unstable_snapshot_ = s;
}

Result<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_snapshot_) return *unstable_snapshot_;
  return storage_->GetSnapshot();
}

}  // namespace warden::raft

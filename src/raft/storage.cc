#include "src/raft/storage.h"

#include <string>

namespace warden::raft {

uint64_t EntrySize(const Entry& e) { return e.data.size() + 24; }

void LimitSize(std::vector<Entry>& entries, uint64_t max_bytes) {
  if (entries.empty()) return;
  uint64_t size = EntrySize(entries[0]);
  size_t keep = 1;
  while (keep < entries.size()) {
    size += EntrySize(entries[keep]);
    if (size > max_bytes) break;
    ++keep;
  }
  entries.resize(keep);
}

MemoryStorage::MemoryStorage() { entries_.push_back(Entry{}); }

std::pair<HardState, ConfState> MemoryStorage::InitialState() const {
  return {hard_state_, snapshot_.metadata.conf_state};
}

Index MemoryStorage::FirstIndex() const { return entries_[0].index + 1; }

Index MemoryStorage::LastIndex() const { return entries_[0].index + (entries_.size() - 1); }

Result<std::vector<Entry>> MemoryStorage::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  const Index offset = entries_[0].index;
  if (lo <= offset)
    return Status::Compacted("entries before " + std::to_string(offset.value() + 1) +
                             " are compacted");
  if (hi > LastIndex() + 1) {
    return Status::Unavailable("entries up to " + std::to_string(hi.value()) +
                               " are not available");
  }
  std::vector<Entry> out(entries_.begin() + Distance(offset, lo),
                         entries_.begin() + Distance(offset, hi));
  LimitSize(out, max_bytes);
  return out;
}

Result<Term> MemoryStorage::TermAt(Index i) const {
  const Index offset = entries_[0].index;
  if (i < offset) return Status::Compacted("index " + std::to_string(i.value()) + " is compacted");
  if (i > LastIndex())
    return Status::Unavailable("index " + std::to_string(i.value()) + " is not available");
  return entries_[Distance(offset, i)].term;
}

Result<Snapshot> MemoryStorage::GetSnapshot() const { return snapshot_; }

void MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const Index first = FirstIndex();
  const Index last = entries.back().index;
  if (last < first) return;  // all compacted already
  size_t skip = 0;
  if (entries[0].index < first) skip = Distance(entries[0].index, first);
  const Index start = entries[skip].index;
  WARDEN_CHECK_MSG(start <= LastIndex() + 1, "MemoryStorage::Append leaves a gap");
  const uint64_t keep = Distance(entries_[0].index, start);
  entries_.resize(keep);
  entries_.insert(entries_.end(), entries.begin() + skip, entries.end());
}

Status MemoryStorage::ApplySnapshot(Snapshot snapshot) {
  if (snapshot.metadata.index < snapshot_.metadata.index) {
    return Status::FailedPrecondition("snapshot is older than the current one");
  }
  entries_.clear();
  entries_.push_back(
      Entry{snapshot.metadata.term, snapshot.metadata.index, EntryType::kNormal, {}});
  snapshot_ = std::move(snapshot);
  return Status::Ok();
}

Status MemoryStorage::CreateSnapshot(Index i, const ConfState& cs, std::string data) {
  if (i <= snapshot_.metadata.index) {
    return Status::FailedPrecondition("snapshot is not newer than the current one");
  }
  WARDEN_CHECK_MSG(i <= LastIndex(), "snapshot index beyond the last entry");
  snapshot_.metadata.index = i;
  snapshot_.metadata.term = entries_[Distance(entries_[0].index, i)].term;
  snapshot_.metadata.conf_state = cs;
  snapshot_.data = std::move(data);
  return Status::Ok();
}

Status MemoryStorage::Compact(Index i) {
  const Index offset = entries_[0].index;
  if (i <= offset) return Status::Compacted("already compacted");
  WARDEN_CHECK_MSG(i <= LastIndex(), "compacting beyond the last entry");
  const uint64_t n = Distance(offset, i);
  Entry dummy{entries_[n].term, entries_[n].index, EntryType::kNormal, {}};
  entries_.erase(entries_.begin(), entries_.begin() + n + 1);
  entries_.insert(entries_.begin(), std::move(dummy));
  return Status::Ok();
}

}  // namespace warden::raft

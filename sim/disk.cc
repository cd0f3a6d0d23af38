#include "sim/disk.h"

#include <string>

namespace warden::sim {

using raft::Entry;
using raft::HardState;
using raft::MemoryStorage;
using raft::Snapshot;

void SimDisk::WriteHardState(const HardState& hs) {
  records_.push_back(Record{Record::kHardState, hs, {}, nullptr});
}

void SimDisk::WriteEntries(const std::vector<Entry>& entries) {
  for (const Entry& e : entries) records_.push_back(Record{Record::kEntry, {}, e, nullptr});
}

void SimDisk::WriteSnapshot(const Snapshot& snapshot) {
  records_.push_back(Record{Record::kSnapshot, {}, {}, std::make_shared<const Snapshot>(snapshot)});
}

void SimDisk::Sync() { durable_ = records_.size(); }

void SimDisk::Checkpoint(const MemoryStorage& image) {
  records_.clear();
  Result<Snapshot> snap = image.GetSnapshot();
  WARDEN_CHECK(snap.ok());
  WriteSnapshot(*snap);
  if (image.LastIndex() >= image.FirstIndex()) {
    Result<std::vector<Entry>> entries =
        image.Entries(image.FirstIndex(), image.LastIndex() + 1, UINT64_MAX);
    WARDEN_CHECK(entries.ok());
    WriteEntries(*entries);
  }
  WriteHardState(image.hard_state());
  Sync();
}

SimDisk::CrashOutcome SimDisk::Crash(Rng& rng, bool partial_flush) {
  CrashOutcome out;
  out.unsynced = records_.size() - durable_;
  if (partial_flush && out.unsynced > 0) {
    out.kept = rng.Uniform(out.unsynced + 1);
    // A record after the kept prefix may have reached the disk half-written;
    // the checksum catches it on replay, so it is dropped like the rest.
    out.torn = out.kept < out.unsynced && rng.Chance(0.5);
  }
  records_.resize(durable_ + out.kept);
  durable_ = records_.size();
  return out;
}

bool SimDisk::Recover(MemoryStorage* out, std::string* error) const {
  for (size_t i = 0; i < durable_; ++i) {
    const Record& r = records_[i];
    switch (r.kind) {
      case Record::kHardState: out->SetHardState(r.hard_state); break;
      case Record::kEntry:
        if (r.entry.index > out->LastIndex() + 1) {
          *error = "entry " + std::to_string(r.entry.index.value()) + " leaves a gap after " +
                   std::to_string(out->LastIndex().value());
          return false;
        }
        out->Append({r.entry});
        break;
      case Record::kSnapshot: {
        Status s = out->ApplySnapshot(*r.snapshot);
        if (!s.ok()) {
          *error = "snapshot record refused: " + s.ToString();
          return false;
        }
        break;
      }
    }
  }
  // A snapshot holds only committed entries, so its index is committed even
  // when the hard state written after it was lost in a crash (a partial
  // flush can keep the snapshot record and not the hard state that follows).
  const Result<Snapshot> snap = out->GetSnapshot();
  raft::HardState hs = out->hard_state();
  if (snap.ok() && hs.commit < snap->metadata.index) {
    hs.commit = snap->metadata.index;
    if (hs.term < snap->metadata.term) hs.term = snap->metadata.term;
    out->SetHardState(hs);
  }
  return true;
}

}  // namespace warden::sim

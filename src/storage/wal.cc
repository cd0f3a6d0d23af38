#include "src/storage/wal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace warden::storage {

std::string SegmentName(uint64_t seq, Index first_index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 ".wal", seq, first_index.value());
  return buf;
}

bool ParseSegmentName(const std::string& name, uint64_t* seq, Index* first_index) {
  if (name.size() != 37 || name.substr(33) != ".wal" || name[16] != '-') return false;
  uint64_t a = 0, b = 0;
  for (size_t i = 0; i < 33; ++i) {
    if (i == 16) continue;
    const char c = name[i];
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    uint64_t& v = i < 16 ? a : b;
    v = (v << 4) | d;
  }
  *seq = a;
  *first_index = Index(b);
  return true;
}

namespace {

constexpr char kCorruptionAdvice[] =
    ". The write-ahead log is damaged before its tail, so this member cannot trust its "
    "data: restore the data directory from a snapshot, or remove this member from the "
    "cluster, wipe its data directory and add it again.";

// Rebuilds the log from records in write order.
class Rebuilder {
 public:
  explicit Rebuilder(RecoveredWal* out) : out_(out) {}

  // Returns a description of the inconsistency, or "" when the record fits.
  std::string Replay(const RecordView& r, Index* max_index) {
    switch (r.type) {
      case RecordType::kEntry: {
        raft::Entry e;
        if (!DecodeEntry(r.payload, &e)) return "malformed entry record";
        *max_index = std::max(*max_index, e.index);
        return AddEntry(std::move(e));
      }
      case RecordType::kHardState:
        if (!DecodeHardState(r.payload, &out_->hard_state)) return "malformed hard state record";
        return "";
      case RecordType::kSnapshot: {
        SnapshotMarker m;
        if (!DecodeSnapshotMarker(r.payload, &m)) return "malformed snapshot record";
        if (m.installed) {
          // The leader's snapshot replaced the whole log; it restarts after it.
          out_->entries.clear();
          out_->base = m.index;
          after_install_ = true;
        }
        out_->snapshots.push_back(m);
        return "";
      }
    }
    return "unknown record";
  }

 private:
  std::string AddEntry(raft::Entry e) {
    std::vector<raft::Entry>& ents = out_->entries;
    if (ents.empty()) {
      if (after_install_ && e.index != out_->base + 1) {
        return "entry " + std::to_string(e.index.value()) + " does not follow the snapshot at " +
               std::to_string(out_->base.value());
      }
      // Without an installed snapshot the log starts at the oldest retained
      // entry (older segments were released).
      out_->base = e.index - 1;
    } else {
      const Index last = out_->base + ents.size();
      if (e.index <= out_->base) {
        return "entry " + std::to_string(e.index.value()) + " lies below the log's start " +
               std::to_string(out_->base.value() + 1);
      }
      if (e.index > last + 1)
        return "gap in the log before entry " + std::to_string(e.index.value());
      // A Raft conflict: the new entry replaces this index and all after it.
      ents.resize(Distance(out_->base, e.index) - 1);
    }
    after_install_ = false;
    ents.push_back(std::move(e));
    return "";
  }

  RecoveredWal* out_;
  bool after_install_ = false;
};

// True if the damaged record at `offset` has a checksum that matches its
// type and a payload shorter than its length field claims, ending at or
// before `limit`: a whole record behind a damaged length, not a torn one.
// REQUIRES: a full header at `offset`.
bool ChecksumFitsShorterLength(std::string_view buf, size_t offset, size_t limit) {
  const uint32_t crc = DecodeFixed32(buf.data() + offset);
  const uint32_t len = DecodeFixed32(buf.data() + offset + 4);
  const size_t start = offset + kRecordHeaderSize;
  limit = std::min(limit, buf.size());
  uint32_t c = crc32c::Value(buf.data() + offset + 8, 1);  // the type byte
  for (size_t n = 0; n < len; ++n) {  // here c is the CRC of the type and n payload bytes
    if (c == crc) return true;
    if (start + n >= limit) return false;
    c = crc32c::Extend(c, buf.data() + start + n, 1);
  }
  return false;
}

Status WriteZeros(Env* env, const std::string& path, uint64_t offset, size_t n) {
  Result<std::unique_ptr<WritableFile>> f = env->OpenForAppend(path, offset, 0);
  if (!f.ok()) return f.status();
  if (Status s = (*f)->Append(std::string(n, '\0')); !s.ok()) return s;
  return (*f)->Sync();
}

}  // namespace

Wal::Wal(Env* env, std::string dir, const WalOptions& options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

Wal::~Wal() = default;

Result<std::unique_ptr<Wal>> Wal::Open(Env* env, const std::string& dir, const WalOptions& options,
                                       RecoveredWal* out) {
  *out = RecoveredWal{};
  if (Status s = env->CreateDirIfMissing(dir); !s.ok()) return s;
  Result<std::vector<std::string>> names = env->ListDir(dir);
  if (!names.ok()) return names.status();

  std::unique_ptr<Wal> wal(new Wal(env, dir, options));
  for (const std::string& name : *names) {
    uint64_t seq;
    Index first;
    if (!ParseSegmentName(name, &seq, &first)) continue;  // e.g. a stray temp file
    if (!wal->segments_.empty() && seq != wal->segments_.back().seq + 1) {
      return Status::Corruption("WAL segment " + JoinPath(dir, name) + " does not follow segment " +
                                wal->segments_.back().name + kCorruptionAdvice);
    }
    wal->segments_.push_back(Segment{seq, name, Index(0)});
  }

  uint64_t write_offset = 0;
  Rebuilder rebuilder(out);
  for (size_t i = 0; i < wal->segments_.size(); ++i) {
    Segment& seg = wal->segments_[i];
    const std::string path = JoinPath(dir, seg.name);
    Result<std::string> data = env->ReadFile(path);
    if (!data.ok()) return data.status();
    const std::string_view buf = *data;
    const bool last_segment = i + 1 == wal->segments_.size();
    // One past the last non-zero byte: the rest of a preallocated segment is zeros.
    const auto data_end = static_cast<size_t>(
        std::find_if(buf.rbegin(), buf.rend(), [](char c) { return c != 0; }).base() - buf.begin());
    size_t offset = 0;
    for (;;) {
      RecordView r;
      std::string why;
      const ScanOutcome o = ScanRecord(buf, offset, &r, &why);
      if (o == ScanOutcome::kEndOfData && offset >= data_end) break;
      if (o == ScanOutcome::kRecord) {
        std::string bad = rebuilder.Replay(r, &seg.max_index);
        if (!bad.empty()) {
          return Status::Corruption("WAL segment " + path + " at offset " + std::to_string(offset) +
                                    ": " + bad + kCorruptionAdvice);
        }
        offset += r.size;
        continue;
      }
      if (o == ScanOutcome::kEndOfData) {
        // Zeros where a record should start, yet data after them: records
        // were lost from the middle (e.g. unsynced pages written back out of
        // order). Stopping here would later put new records in front of
        // stale ones, so this is never taken for the end of the log.
        return Status::Corruption("WAL segment " + path + " at offset " + std::to_string(offset) +
                                  ": zeros where a record should start, but data follows up to "
                                  "offset " +
                                  std::to_string(data_end) + kCorruptionAdvice);
      }
      // A damaged record. Torn tail: the last segment, with only zeros after
      // the space the record claims (a write that never finished), and a
      // checksum that fits no shorter length (else the length field itself
      // is damaged, and the records after it were hidden inside the claim).
      size_t claimed_end = offset + kRecordHeaderSize;
      if (buf.size() - offset >= kRecordHeaderSize) {
        const uint64_t len = DecodeFixed32(buf.data() + offset + 4);
        if (len <= kMaxRecordPayload) claimed_end = offset + kRecordHeaderSize + len;
      }
      claimed_end = std::min(claimed_end, buf.size());
      const bool zeros_after = data_end <= claimed_end;
      const bool bad_length = zeros_after && buf.size() - offset >= kRecordHeaderSize &&
                              ChecksumFitsShorterLength(buf, offset, data_end);
      if (bad_length) why = "damaged length field (the checksum fits a shorter record)";
      if (!last_segment || !zeros_after || bad_length) {
        return Status::Corruption("WAL segment " + path + " at offset " + std::to_string(offset) +
                                  ": " + why + kCorruptionAdvice);
      }
      // Zero the torn bytes so later appends are not followed by garbage:
      // the payload first, then the header, each made durable, so a crash
      // during the cut leaves either a torn record (cut again next time) or
      // zeros, never zeros followed by leftovers.
      const size_t header_end = std::min(data_end, offset + kRecordHeaderSize);
      if (data_end > header_end) {
        if (Status s = WriteZeros(env, path, header_end, data_end - header_end); !s.ok()) return s;
      }
      if (Status s = WriteZeros(env, path, offset, header_end - offset); !s.ok()) return s;
      out->torn_tail = path + " at offset " + std::to_string(offset) + " (" + why + ")";
      break;
    }
    if (last_segment) write_offset = offset;
  }

  wal->hard_state_ = out->hard_state;
  wal->last_index_ = out->base + out->entries.size();
  if (!out->snapshots.empty()) wal->last_snapshot_ = out->snapshots.back();
  if (wal->segments_.empty()) {
    if (Status s = wal->OpenNewSegment(Index(1)); !s.ok()) return s;
  } else {
    const Segment& seg = wal->segments_.back();
    Result<std::unique_ptr<WritableFile>> f =
        env->OpenForAppend(JoinPath(dir, seg.name), write_offset, options.segment_bytes);
    if (!f.ok()) return f.status();
    wal->file_ = std::move(f).value();
    // A crash right after a rotation can leave the new segment without its
    // header; write it, or releasing the older segments would lose the hard
    // state (the vote) that only they still hold.
    if (write_offset == 0) {
      if (Status s = wal->AppendSegmentHeader(); !s.ok()) return s;
    }
  }
  return wal;
}

Status Wal::Fail(Status s) {
  if (failure_.ok()) failure_ = s;
  return s;
}

Status Wal::OpenNewSegment(Index first_index) {
  const uint64_t seq = segments_.empty() ? 0 : segments_.back().seq + 1;
  const std::string name = SegmentName(seq, first_index);
  Result<std::unique_ptr<WritableFile>> f =
      env_->OpenForAppend(JoinPath(dir_, name), 0, options_.segment_bytes);
  if (!f.ok()) return Fail(f.status());
  if (Status s = env_->SyncDir(dir_); !s.ok()) return Fail(s);
  file_ = std::move(f).value();
  segments_.push_back(Segment{seq, name, Index(0)});
  return AppendSegmentHeader();
}

Status Wal::AppendSegmentHeader() {
  // Each segment carries the state needed to read it without its elders.
  std::string header;
  AppendHardStateRecord(&header, hard_state_);
  // As a local marker: the log continues through it (an installed marker
  // here would discard the entries that follow it in older segments).
  if (last_snapshot_.index > Index(0)) {
    AppendSnapshotRecord(&header, SnapshotMarker{last_snapshot_.index, last_snapshot_.term, false});
  }
  if (Status s = file_->Append(header); !s.ok()) return Fail(s);
  return Status::Ok();
}

Status Wal::Write(const std::string& records, Index first_index, Index max_index) {
  if (!failure_.ok()) return failure_;
  if (file_->offset() + records.size() > options_.segment_bytes &&
      segments_.back().max_index > Index(0)) {
    // The old segment must be durable before the new one is used, so a torn
    // write can only ever be in the last segment.
    if (Status s = file_->Sync(); !s.ok()) return Fail(s);
    if (Status s = OpenNewSegment(first_index); !s.ok()) return s;
  }
  if (Status s = file_->Append(records); !s.ok()) return Fail(s);
  Segment& seg = segments_.back();
  seg.max_index = std::max(seg.max_index, max_index);
  return Status::Ok();
}

Status Wal::AppendEntries(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return Status::Ok();
  std::string records;
  Index max_index;
  for (const raft::Entry& e : entries) {
    AppendEntryRecord(&records, e);
    max_index = std::max(max_index, e.index);
  }
  Status s = Write(records, entries.front().index, max_index);
  if (s.ok()) last_index_ = entries.back().index;
  return s;
}

Status Wal::AppendHardState(const raft::HardState& hs) {
  std::string record;
  AppendHardStateRecord(&record, hs);
  Status s = Write(record, last_index_ + 1, Index(0));
  if (s.ok()) hard_state_ = hs;
  return s;
}

Status Wal::AppendSnapshot(const SnapshotMarker& marker) {
  std::string record;
  AppendSnapshotRecord(&record, marker);
  Status s = Write(record, marker.index + 1, Index(0));
  if (s.ok()) {
    last_snapshot_ = marker;
    if (marker.installed) last_index_ = marker.index;
  }
  return s;
}

Status Wal::Sync() {
  if (!failure_.ok()) return failure_;
  if (Status s = file_->Sync(); !s.ok()) return Fail(s);
  return Status::Ok();
}

Status Wal::ReleaseTo(Index index) {
  if (!failure_.ok()) return failure_;
  size_t n = 0;
  while (n + 1 < segments_.size() && segments_[n].max_index <= index) ++n;
  if (n == 0) return Status::Ok();
  for (size_t i = 0; i < n; ++i) {
    if (Status s = env_->RemoveFile(JoinPath(dir_, segments_[i].name)); !s.ok()) return Fail(s);
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(n));
  if (Status s = env_->SyncDir(dir_); !s.ok()) return Fail(s);
  return Status::Ok();
}

}  // namespace warden::storage

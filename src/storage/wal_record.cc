#include "src/storage/wal_record.h"

#include <algorithm>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace warden::storage {

namespace {
void Frame(std::string* dst, RecordType type, const std::string& payload) {
  std::string typed;
  typed.reserve(payload.size() + 1);
  typed.push_back(static_cast<char>(type));
  typed += payload;
  PutFixed32(dst, crc32c::Value(typed));
  PutFixed32(dst, static_cast<uint32_t>(payload.size()));
  dst->append(typed);
}
}  // namespace

void AppendEntryRecord(std::string* dst, const raft::Entry& e) {
  std::string p;
  p.reserve(17 + e.data.size());
  PutFixed64(&p, e.term.value());
  PutFixed64(&p, e.index.value());
  PutFixed8(&p, static_cast<uint8_t>(e.type));
  p += e.data;
  Frame(dst, RecordType::kEntry, p);
}

void AppendHardStateRecord(std::string* dst, const raft::HardState& hs) {
  std::string p;
  PutFixed64(&p, hs.term.value());
  PutFixed64(&p, hs.vote.value());
  PutFixed64(&p, hs.commit.value());
  Frame(dst, RecordType::kHardState, p);
}

void AppendSnapshotRecord(std::string* dst, const SnapshotMarker& m) {
  std::string p;
  PutFixed64(&p, m.index.value());
  PutFixed64(&p, m.term.value());
  PutFixed8(&p, m.installed ? 1 : 0);
  Frame(dst, RecordType::kSnapshot, p);
}

ScanOutcome ScanRecord(std::string_view buf, size_t offset, RecordView* out, std::string* why) {
  if (offset >= buf.size()) return ScanOutcome::kEndOfData;
  const size_t left = buf.size() - offset;
  const char* p = buf.data() + offset;
  if (left < kRecordHeaderSize) {
    if (std::all_of(p, p + left, [](char c) { return c == 0; })) return ScanOutcome::kEndOfData;
    *why = "partial record header";
    return ScanOutcome::kBad;
  }
  if (std::all_of(p, p + kRecordHeaderSize, [](char c) { return c == 0; })) {
    return ScanOutcome::kEndOfData;
  }
  const uint32_t crc = DecodeFixed32(p);
  const uint32_t len = DecodeFixed32(p + 4);
  const auto type = static_cast<uint8_t>(p[8]);
  if (len > kMaxRecordPayload) {
    *why = "impossible record length " + std::to_string(len);
    return ScanOutcome::kBad;
  }
  if (len > left - kRecordHeaderSize) {
    *why = "record of " + std::to_string(len) + " bytes runs past the end of the file";
    return ScanOutcome::kBad;
  }
  if (crc32c::Value(p + 8, 1 + static_cast<size_t>(len)) != crc) {
    *why = "checksum mismatch";
    return ScanOutcome::kBad;
  }
  if (type < 1 || type > 3) {
    *why = "unknown record type " + std::to_string(type);
    return ScanOutcome::kBad;
  }
  out->type = static_cast<RecordType>(type);
  out->payload = std::string_view(p + kRecordHeaderSize, len);
  out->size = kRecordHeaderSize + len;
  return ScanOutcome::kRecord;
}

bool DecodeEntry(std::string_view payload, raft::Entry* out) {
  Decoder d(payload);
  uint64_t term = 0, index = 0;
  uint8_t type = 0;
  std::string_view data;
  if (!d.GetFixed64(&term) || !d.GetFixed64(&index) || !d.GetFixed8(&type)) return false;
  if (type > static_cast<uint8_t>(raft::EntryType::kConfChange) || index == 0) return false;
  d.GetRest(&data);
  out->term = Term(term);
  out->index = Index(index);
  out->type = static_cast<raft::EntryType>(type);
  out->data = std::string(data);
  return true;
}

bool DecodeHardState(std::string_view payload, raft::HardState* out) {
  Decoder d(payload);
  uint64_t term = 0, vote = 0, commit = 0;
  if (!d.GetFixed64(&term) || !d.GetFixed64(&vote) || !d.GetFixed64(&commit) || !d.empty()) {
    return false;
  }
  *out = raft::HardState{Term(term), NodeId(vote), Index(commit)};
  return true;
}

bool DecodeSnapshotMarker(std::string_view payload, SnapshotMarker* out) {
  Decoder d(payload);
  uint64_t index = 0, term = 0;
  uint8_t installed = 0;
  if (!d.GetFixed64(&index) || !d.GetFixed64(&term) || !d.GetFixed8(&installed) || !d.empty() ||
      installed > 1) {
    return false;
  }
  *out = SnapshotMarker{Index(index), Term(term), installed == 1};
  return true;
}

}  // namespace warden::storage

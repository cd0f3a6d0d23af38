// The WAL's record framing and payloads. On-disk format, version 1 — DO NOT
// CHANGE without a new segment format version (docs/storage.md keeps the
// history).
//
//   record  := crc32c:u32 | length:u32 | type:u8 | payload[length]
//              (little-endian; the CRC covers type and payload)
//   type 1 (entry):      term:u64 | index:u64 | entry_type:u8 | data[...]
//   type 2 (hard state): term:u64 | vote:u64 | commit:u64
//   type 3 (snapshot):   index:u64 | term:u64 | installed:u8
//
// A segment is preallocated with zeros, so a zero where a record's type would
// be (a 9-byte header of zeros) marks the end of the data written to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/base/status.h"
#include "src/raft/types.h"

namespace warden::storage {

inline constexpr size_t kRecordHeaderSize = 9;
// No record is larger; a longer length field is damage, not data.
inline constexpr uint32_t kMaxRecordPayload = 256u << 20;

enum class RecordType : uint8_t { kEntry = 1, kHardState = 2, kSnapshot = 3 };

struct SnapshotMarker {
  Index index;
  Term term;
  // True for a snapshot received from the leader (the log restarts after it);
  // false for a local compaction point (the log continues through it).
  bool installed = false;
};

void AppendEntryRecord(std::string* dst, const raft::Entry& e);
void AppendHardStateRecord(std::string* dst, const raft::HardState& hs);
void AppendSnapshotRecord(std::string* dst, const SnapshotMarker& m);

struct RecordView {
  RecordType type = RecordType::kEntry;
  std::string_view payload;
  size_t size = 0;  // header + payload: where the next record starts
};

enum class ScanOutcome {
  kRecord,     // *out holds a valid record
  kEndOfData,  // the end of the buffer, or zeros where a header would be
  kBad,        // damaged or partial: *why says what
};

// Reads the record at buf[offset]. Never reads outside buf.
ScanOutcome ScanRecord(std::string_view buf, size_t offset, RecordView* out, std::string* why);

// Payload decoders; false if the payload is malformed.
bool DecodeEntry(std::string_view payload, raft::Entry* out);
bool DecodeHardState(std::string_view payload, raft::HardState* out);
bool DecodeSnapshotMarker(std::string_view payload, SnapshotMarker* out);

}  // namespace warden::storage

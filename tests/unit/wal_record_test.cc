// WAL record framing and payloads (wal_record.h). Every way a record can be
// damaged has its own named test, as db/log_test.cc does for leveldb: a
// reader of this file should see at a glance which cases are covered.
#include "src/storage/wal_record.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace warden::storage {
namespace {

raft::Entry Ent(uint64_t term, uint64_t index, std::string data,
                raft::EntryType type = raft::EntryType::kNormal) {
  return raft::Entry{Term(term), Index(index), type, std::move(data)};
}

// A record with every header field chosen by the test.
std::string Raw(uint32_t crc, uint32_t len, uint8_t type, const std::string& payload) {
  std::string r;
  PutFixed32(&r, crc);
  PutFixed32(&r, len);
  PutFixed8(&r, type);
  r += payload;
  return r;
}

// A well-framed record (right length, right checksum) of any type byte and
// payload: for payloads the decoders must refuse although the frame is fine.
std::string Framed(uint8_t type, const std::string& payload) {
  std::string typed(1, static_cast<char>(type));
  typed += payload;
  return Raw(crc32c::Value(typed), static_cast<uint32_t>(payload.size()), type, payload);
}

struct Scan {
  ScanOutcome outcome;
  RecordView view;
  std::string why;
};
Scan ScanAt(const std::string& buf, size_t offset = 0) {
  Scan s;
  s.outcome = ScanRecord(buf, offset, &s.view, &s.why);
  return s;
}

std::string EntryPayload(uint64_t term, uint64_t index, uint8_t type, const std::string& data) {
  std::string p;
  PutFixed64(&p, term);
  PutFixed64(&p, index);
  PutFixed8(&p, type);
  return p + data;
}

// ---------------------------------------------------------------------------
// Round trips and the exact layout.

TEST(WalRecordTest, EntryRoundTrip) {
  std::string buf;
  const raft::Entry e = Ent(7, 42, "hello");
  AppendEntryRecord(&buf, e);
  Scan s = ScanAt(buf);
  ASSERT_EQ(s.outcome, ScanOutcome::kRecord) << s.why;
  EXPECT_EQ(s.view.type, RecordType::kEntry);
  EXPECT_EQ(s.view.size, buf.size());
  raft::Entry got;
  ASSERT_TRUE(DecodeEntry(s.view.payload, &got));
  EXPECT_EQ(got, e);
}

TEST(WalRecordTest, EmptyEntryRoundTrip) {
  // A new leader's no-op has no data.
  std::string buf;
  AppendEntryRecord(&buf, Ent(3, 1, ""));
  Scan s = ScanAt(buf);
  ASSERT_EQ(s.outcome, ScanOutcome::kRecord);
  raft::Entry got;
  ASSERT_TRUE(DecodeEntry(s.view.payload, &got));
  EXPECT_EQ(got, Ent(3, 1, ""));
}

TEST(WalRecordTest, ConfChangeEntryRoundTrip) {
  std::string buf;
  const raft::Entry e = Ent(2, 9, std::string("\x00\x01\x02", 3), raft::EntryType::kConfChange);
  AppendEntryRecord(&buf, e);
  raft::Entry got;
  ASSERT_TRUE(DecodeEntry(ScanAt(buf).view.payload, &got));
  EXPECT_EQ(got, e);
}

TEST(WalRecordTest, BinaryDataWithZerosRoundTrips) {
  std::string data(1000, '\0');
  data[999] = 'x';
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, data));
  raft::Entry got;
  ASSERT_TRUE(DecodeEntry(ScanAt(buf).view.payload, &got));
  EXPECT_EQ(got.data, data);
}

TEST(WalRecordTest, HardStateRoundTrip) {
  std::string buf;
  const raft::HardState hs{Term(9), NodeId(3), Index(1234)};
  AppendHardStateRecord(&buf, hs);
  Scan s = ScanAt(buf);
  ASSERT_EQ(s.outcome, ScanOutcome::kRecord);
  EXPECT_EQ(s.view.type, RecordType::kHardState);
  raft::HardState got;
  ASSERT_TRUE(DecodeHardState(s.view.payload, &got));
  EXPECT_EQ(got, hs);
}

TEST(WalRecordTest, SnapshotMarkerRoundTripBothKinds) {
  for (bool installed : {false, true}) {
    std::string buf;
    AppendSnapshotRecord(&buf, SnapshotMarker{Index(500), Term(4), installed});
    Scan s = ScanAt(buf);
    ASSERT_EQ(s.outcome, ScanOutcome::kRecord);
    EXPECT_EQ(s.view.type, RecordType::kSnapshot);
    SnapshotMarker got;
    ASSERT_TRUE(DecodeSnapshotMarker(s.view.payload, &got));
    EXPECT_EQ(got.index, Index(500));
    EXPECT_EQ(got.term, Term(4));
    EXPECT_EQ(got.installed, installed);
  }
}

// The format is "DO NOT CHANGE": pin it byte for byte.
TEST(WalRecordTest, LayoutIsLittleEndianAndCrcCoversTypeAndPayload) {
  std::string buf;
  AppendHardStateRecord(&buf, raft::HardState{Term(0x0102), NodeId(3), Index(4)});
  ASSERT_EQ(buf.size(), kRecordHeaderSize + 24);
  EXPECT_EQ(DecodeFixed32(buf.data() + 4), 24u);  // length counts the payload only
  EXPECT_EQ(buf[8], 2);                           // type 2 = hard state
  EXPECT_EQ(static_cast<uint8_t>(buf[9]), 0x02);  // term, little-endian
  EXPECT_EQ(static_cast<uint8_t>(buf[10]), 0x01);
  EXPECT_EQ(DecodeFixed32(buf.data()), crc32c::Value(buf.data() + 8, 1 + 24));
}

TEST(WalRecordTest, ScansConsecutiveRecords) {
  std::string buf;
  AppendHardStateRecord(&buf, raft::HardState{Term(1), NodeId(1), Index(0)});
  for (uint64_t i = 1; i <= 5; ++i) AppendEntryRecord(&buf, Ent(1, i, std::string(i * 10, 'a')));
  AppendSnapshotRecord(&buf, SnapshotMarker{Index(3), Term(1), false});
  buf += std::string(100, '\0');  // preallocated space after the data
  size_t offset = 0;
  int records = 0;
  for (;;) {
    Scan s = ScanAt(buf, offset);
    if (s.outcome == ScanOutcome::kEndOfData) break;
    ASSERT_EQ(s.outcome, ScanOutcome::kRecord) << s.why;
    offset += s.view.size;
    ++records;
  }
  EXPECT_EQ(records, 7);
}

// ---------------------------------------------------------------------------
// End of data.

TEST(WalRecordTest, EmptyBufferIsEndOfData) {
  EXPECT_EQ(ScanAt("").outcome, ScanOutcome::kEndOfData);
}

TEST(WalRecordTest, OffsetAtOrPastEndIsEndOfData) {
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, "x"));
  EXPECT_EQ(ScanAt(buf, buf.size()).outcome, ScanOutcome::kEndOfData);
  EXPECT_EQ(ScanAt(buf, buf.size() + 100).outcome, ScanOutcome::kEndOfData);
}

TEST(WalRecordTest, ZeroHeaderIsEndOfData) {
  EXPECT_EQ(ScanAt(std::string(kRecordHeaderSize, '\0')).outcome, ScanOutcome::kEndOfData);
  EXPECT_EQ(ScanAt(std::string(4096, '\0')).outcome, ScanOutcome::kEndOfData);
}

TEST(WalRecordTest, ShortRunOfZerosAtTheEndIsEndOfData) {
  for (size_t n = 1; n < kRecordHeaderSize; ++n) {
    EXPECT_EQ(ScanAt(std::string(n, '\0')).outcome, ScanOutcome::kEndOfData) << n;
  }
}

TEST(WalRecordTest, ZeroHeaderAfterRecordIsEndOfData) {
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, "abc"));
  const size_t first = buf.size();
  buf += std::string(64, '\0');
  EXPECT_EQ(ScanAt(buf, first).outcome, ScanOutcome::kEndOfData);
}

// ---------------------------------------------------------------------------
// Damaged records, one test per way of being damaged.

TEST(WalRecordTest, PartialHeader) {
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, "abc"));
  for (size_t n = 1; n < kRecordHeaderSize; ++n) {
    Scan s = ScanAt(buf.substr(0, n));
    // A non-zero prefix of a header: a torn header, not end of data.
    ASSERT_EQ(s.outcome, ScanOutcome::kBad) << n;
    EXPECT_EQ(s.why, "partial record header");
  }
}

TEST(WalRecordTest, PartialHeaderWithOnlyTheLastByteSet) {
  std::string buf(kRecordHeaderSize - 1, '\0');
  buf.back() = 1;
  EXPECT_EQ(ScanAt(buf).outcome, ScanOutcome::kBad);
}

TEST(WalRecordTest, BadChecksumInPayload) {
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, "payload"));
  buf[buf.size() - 1] ^= 0x01;
  Scan s = ScanAt(buf);
  EXPECT_EQ(s.outcome, ScanOutcome::kBad);
  EXPECT_EQ(s.why, "checksum mismatch");
}

TEST(WalRecordTest, BadChecksumInCrcField) {
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, "payload"));
  buf[0] ^= 0x80;
  EXPECT_EQ(ScanAt(buf).why, "checksum mismatch");
}

TEST(WalRecordTest, ChangedTypeByteFailsTheChecksum) {
  // The CRC covers the type: an entry cannot turn into a hard state.
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, std::string(8, 'x')));
  buf[8] = static_cast<char>(RecordType::kHardState);
  Scan s = ScanAt(buf);
  EXPECT_EQ(s.outcome, ScanOutcome::kBad);
  EXPECT_EQ(s.why, "checksum mismatch");
}

TEST(WalRecordTest, ShorterLengthFailsTheChecksum) {
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, "payload"));
  const uint32_t len = DecodeFixed32(buf.data() + 4);
  std::string shorter = Raw(DecodeFixed32(buf.data()), len - 1, buf[8], buf.substr(9));
  EXPECT_EQ(ScanAt(shorter).why, "checksum mismatch");
}

TEST(WalRecordTest, ImpossibleLength) {
  Scan s = ScanAt(Raw(0x12345678, kMaxRecordPayload + 1, 1, std::string(64, 'x')));
  EXPECT_EQ(s.outcome, ScanOutcome::kBad);
  EXPECT_EQ(s.why, "impossible record length " + std::to_string(kMaxRecordPayload + 1));
  EXPECT_EQ(ScanAt(Raw(1, 0xFFFFFFFFu, 1, "")).outcome, ScanOutcome::kBad);
}

TEST(WalRecordTest, LargestLengthIsNotImpossibleButRunsPastTheEnd) {
  Scan s = ScanAt(Raw(1, kMaxRecordPayload, 1, "abc"));
  EXPECT_EQ(s.outcome, ScanOutcome::kBad);
  EXPECT_TRUE(s.why.find("runs past the end of the file") != std::string::npos) << s.why;
}

TEST(WalRecordTest, LengthPastEndOfFile) {
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, "0123456789"));
  // Every truncation inside the payload (a torn write) is "past the end".
  for (size_t cut = kRecordHeaderSize; cut < buf.size(); ++cut) {
    Scan s = ScanAt(buf.substr(0, cut));
    ASSERT_EQ(s.outcome, ScanOutcome::kBad) << cut;
    EXPECT_EQ(s.why, "record of 27 bytes runs past the end of the file");
  }
}

TEST(WalRecordTest, PayloadZeroedByATornWrite) {
  // The header made it to disk but the payload's page did not.
  std::string buf;
  AppendEntryRecord(&buf, Ent(1, 1, std::string(50, 'q')));
  std::fill(buf.begin() + kRecordHeaderSize, buf.end(), '\0');
  EXPECT_EQ(ScanAt(buf).why, "checksum mismatch");
}

TEST(WalRecordTest, UnknownTypeWithValidChecksum) {
  for (uint8_t type : {uint8_t{0}, uint8_t{4}, uint8_t{0x7f}, uint8_t{0xff}}) {
    Scan s = ScanAt(Framed(type, "abc"));
    EXPECT_EQ(s.outcome, ScanOutcome::kBad) << int{type};
    EXPECT_EQ(s.why, "unknown record type " + std::to_string(type));
  }
}

TEST(WalRecordTest, ZeroTypeAndLengthWithNonZeroCrcIsDamageNotEndOfData) {
  // Only a header that is entirely zero marks the end; a torn header whose
  // checksum bytes landed is damage.
  EXPECT_EQ(ScanAt(Raw(0xdeadbeef, 0, 0, "") + std::string(32, '\0')).outcome, ScanOutcome::kBad);
}

TEST(WalRecordTest, NeverReadsPastTheBuffer) {
  // Every prefix of a run of records: either whole records, end of data, or
  // damage; never a record that extends past the prefix.
  std::string buf;
  for (uint64_t i = 1; i <= 4; ++i) AppendEntryRecord(&buf, Ent(1, i, std::string(i * 7, 'z')));
  for (size_t n = 0; n <= buf.size(); ++n) {
    const std::string prefix = buf.substr(0, n);
    size_t offset = 0;
    for (;;) {
      Scan s = ScanAt(prefix, offset);
      if (s.outcome != ScanOutcome::kRecord) break;
      ASSERT_LE(offset + s.view.size, n);
      offset += s.view.size;
    }
  }
}

// ---------------------------------------------------------------------------
// Well-framed records with malformed payloads: the decoders refuse them.

TEST(WalRecordTest, EntryPayloadTooShort) {
  const std::string full = EntryPayload(1, 1, 0, "");
  raft::Entry e;
  for (size_t n = 0; n < full.size(); ++n) EXPECT_FALSE(DecodeEntry(full.substr(0, n), &e)) << n;
  EXPECT_TRUE(DecodeEntry(full, &e));
}

TEST(WalRecordTest, EntryWithUnknownEntryType) {
  raft::Entry e;
  EXPECT_FALSE(DecodeEntry(EntryPayload(1, 1, 2, "x"), &e));
  EXPECT_FALSE(DecodeEntry(EntryPayload(1, 1, 0xff, "x"), &e));
}

TEST(WalRecordTest, EntryWithIndexZero) {
  raft::Entry e;
  EXPECT_FALSE(DecodeEntry(EntryPayload(1, 0, 0, "x"), &e));
}

TEST(WalRecordTest, HardStatePayloadTooShort) {
  std::string p;
  PutFixed64(&p, 1);
  PutFixed64(&p, 2);
  PutFixed64(&p, 3);
  raft::HardState hs;
  for (size_t n = 0; n < p.size(); ++n) EXPECT_FALSE(DecodeHardState(p.substr(0, n), &hs)) << n;
}

TEST(WalRecordTest, HardStatePayloadWithTrailingBytes) {
  std::string p;
  PutFixed64(&p, 1);
  PutFixed64(&p, 2);
  PutFixed64(&p, 3);
  p.push_back('\0');
  raft::HardState hs;
  EXPECT_FALSE(DecodeHardState(p, &hs));
}

TEST(WalRecordTest, SnapshotMarkerPayloadTooShort) {
  std::string p;
  PutFixed64(&p, 10);
  PutFixed64(&p, 2);
  PutFixed8(&p, 1);
  SnapshotMarker m;
  for (size_t n = 0; n < p.size(); ++n) EXPECT_FALSE(DecodeSnapshotMarker(p.substr(0, n), &m));
  EXPECT_TRUE(DecodeSnapshotMarker(p, &m));
}

TEST(WalRecordTest, SnapshotMarkerPayloadWithTrailingBytes) {
  std::string p;
  PutFixed64(&p, 10);
  PutFixed64(&p, 2);
  PutFixed8(&p, 0);
  p.push_back('x');
  SnapshotMarker m;
  EXPECT_FALSE(DecodeSnapshotMarker(p, &m));
}

TEST(WalRecordTest, SnapshotMarkerWithInstalledFlagOtherThanZeroOrOne) {
  std::string p;
  PutFixed64(&p, 10);
  PutFixed64(&p, 2);
  PutFixed8(&p, 2);
  SnapshotMarker m;
  EXPECT_FALSE(DecodeSnapshotMarker(p, &m));
}

TEST(WalRecordTest, MalformedPayloadsScanAsRecordsForTheReplayToRefuse) {
  // The frame is fine, so ScanRecord returns them; it is the payload decoder
  // (called by the WAL's replay) that refuses, and the WAL reports it.
  const std::string short_entry = Framed(1, "short");
  const std::string long_hard_state = Framed(2, std::string(25, '\1'));
  const std::string bad_marker = Framed(3, std::string(17, '\7'));
  for (const std::string* buf : {&short_entry, &long_hard_state, &bad_marker}) {
    ASSERT_EQ(ScanAt(*buf).outcome, ScanOutcome::kRecord);
  }
  raft::Entry e;
  raft::HardState hs;
  SnapshotMarker m;
  EXPECT_FALSE(DecodeEntry(ScanAt(short_entry).view.payload, &e));
  EXPECT_FALSE(DecodeHardState(ScanAt(long_hard_state).view.payload, &hs));
  EXPECT_FALSE(DecodeSnapshotMarker(ScanAt(bad_marker).view.payload, &m));
}

}  // namespace
}  // namespace warden::storage

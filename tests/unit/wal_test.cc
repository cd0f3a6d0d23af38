// The segmented WAL (wal.h): round trips, replay rules (conflicts, installed
// snapshots), segment rotation and release, torn tails cut at every byte
// offset, bit flips before the tail always reported, sticky write failures and
// simulated crashes that drop unsynced data (FaultInjectionEnv).
#include "src/storage/wal.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "src/base/crc32c.h"
#include "src/base/random.h"
#include "tests/unit/fault_injection_env.h"
#include "tests/unit/storage_test_util.h"

namespace warden::storage {
namespace {

using testing::Contains;
using testing::CopyDir;
using testing::EntryData;
using testing::FaultInjectionEnv;
using testing::LayoutOf;
using testing::MakeEntries;
using testing::MakeEntry;
using testing::ReadFileOrDie;
using testing::SegmentPaths;
using testing::TempDir;

constexpr char kAdvice[] = "wipe its data directory";

class WalTest : public ::testing::Test {
 protected:
  std::string dir() const { return tmp_.Sub("wal"); }

  std::unique_ptr<Wal> OpenOk(RecoveredWal* rw, uint64_t segment_bytes = 64 << 10,
                              const std::string& d = "") {
    Result<std::unique_ptr<Wal>> w =
        Wal::Open(env_, d.empty() ? dir() : d, WalOptions{segment_bytes}, rw);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    if (!w.ok()) return nullptr;
    return std::move(w).value();
  }
  Status OpenStatus(const std::string& d = "", uint64_t segment_bytes = 64 << 10) {
    RecoveredWal rw;
    Result<std::unique_ptr<Wal>> w =
        Wal::Open(env_, d.empty() ? dir() : d, WalOptions{segment_bytes}, &rw);
    return w.status();
  }

  TempDir tmp_;
  Env* env_ = Env::Default();
};

// The entries of `rw` as one vector (base is checked separately).
void ExpectEntriesEqual(const RecoveredWal& rw, const std::vector<raft::Entry>& want) {
  ASSERT_EQ(rw.entries.size(), want.size());
  if (!want.empty()) {
    EXPECT_EQ(rw.base, want.front().index - 1);
  }
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(rw.entries[i], want[i]) << "entry " << i;
}

// ---------------------------------------------------------------------------
// Round trips and replay.

TEST_F(WalTest, EmptyDirectoryOpensEmptyWithOneSegment) {
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ASSERT_NE(wal, nullptr);
  EXPECT_TRUE(rw.entries.empty());
  EXPECT_EQ(rw.base, Index(0));
  EXPECT_TRUE(rw.hard_state.IsEmpty());
  EXPECT_TRUE(rw.snapshots.empty());
  EXPECT_EQ(wal->segment_count(), 1u);
  EXPECT_TRUE(std::filesystem::exists(tmp_.Sub("wal/" + SegmentName(0, Index(1)))));
}

TEST_F(WalTest, RoundTripOfEntriesHardStateAndMarkers) {
  const raft::HardState hs{Term(3), NodeId(2), Index(15)};
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 10)).ok());
    ASSERT_TRUE(wal->AppendSnapshot({Index(5), Term(1), false}).ok());
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(3, 11, 20)).ok());
    ASSERT_TRUE(wal->AppendHardState(hs).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  EXPECT_EQ(rw.hard_state, hs);
  std::vector<raft::Entry> want = MakeEntries(1, 1, 10);
  for (auto& e : MakeEntries(3, 11, 20)) want.push_back(e);
  ExpectEntriesEqual(rw, want);
  ASSERT_EQ(rw.snapshots.size(), 1u);
  EXPECT_EQ(rw.snapshots[0].index, Index(5));
  EXPECT_FALSE(rw.snapshots[0].installed);
  EXPECT_TRUE(rw.torn_tail.empty());
}

TEST_F(WalTest, ReopenContinuesAppendingInTheSameSegment) {
  for (uint64_t round = 0; round < 3; ++round) {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ExpectEntriesEqual(rw, round == 0 ? std::vector<raft::Entry>{} : MakeEntries(1, 1, round * 10));
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, round * 10 + 1, round * 10 + 10)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    EXPECT_EQ(wal->segment_count(), 1u);
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ExpectEntriesEqual(rw, MakeEntries(1, 1, 30));
}

TEST_F(WalTest, ConflictingEntryReplacesItsIndexAndEverythingAfter) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 10)).ok());
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(2, 6, 8, /*salt=*/9)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  std::vector<raft::Entry> want = MakeEntries(1, 1, 5);
  for (auto& e : MakeEntries(2, 6, 8, 9)) want.push_back(e);
  ExpectEntriesEqual(rw, want);
}

TEST_F(WalTest, ConflictAtTheFirstEntryReplacesTheWholeLog) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 5)).ok());
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(2, 1, 2, 7)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ExpectEntriesEqual(rw, MakeEntries(2, 1, 2, 7));
}

TEST_F(WalTest, ConflictsAcrossReopensReplayInWriteOrder) {
  std::vector<raft::Entry> want;
  for (uint64_t round = 1; round <= 4; ++round) {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ExpectEntriesEqual(rw, want);
    // Each round overwrites the last three entries and adds five.
    const uint64_t from = want.size() > 3 ? want.size() - 2 : 1;
    auto ents = MakeEntries(round, from, from + 7, round);
    ASSERT_TRUE(wal->AppendEntries(ents).ok());
    ASSERT_TRUE(wal->Sync().ok());
    want.resize(from - 1);
    for (auto& e : ents) want.push_back(e);
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ExpectEntriesEqual(rw, want);
}

TEST_F(WalTest, InstalledSnapshotMarkerRestartsTheLog) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 10)).ok());
    ASSERT_TRUE(wal->AppendSnapshot({Index(50), Term(4), true}).ok());
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(4, 51, 55)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  EXPECT_EQ(rw.base, Index(50));
  ExpectEntriesEqual(rw, MakeEntries(4, 51, 55));
  ASSERT_EQ(rw.snapshots.size(), 1u);
  EXPECT_TRUE(rw.snapshots[0].installed);
}

TEST_F(WalTest, InstalledSnapshotBelowTheLastEntryDropsTheWholeLog) {
  // A leader's snapshot at 5 replaces a log of 1..10 from another history.
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 10)).ok());
    ASSERT_TRUE(wal->AppendSnapshot({Index(5), Term(3), true}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  EXPECT_EQ(rw.base, Index(5));
  EXPECT_TRUE(rw.entries.empty());
  // And the log continues right after it.
  ASSERT_TRUE(wal->AppendEntries(MakeEntries(3, 6, 7)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  RecoveredWal again;
  wal = OpenOk(&again);
  ExpectEntriesEqual(again, MakeEntries(3, 6, 7));
}

TEST_F(WalTest, LocalSnapshotMarkerKeepsTheLog) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 10)).ok());
    ASSERT_TRUE(wal->AppendSnapshot({Index(8), Term(1), false}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ExpectEntriesEqual(rw, MakeEntries(1, 1, 10));
  ASSERT_EQ(rw.snapshots.size(), 1u);
  EXPECT_FALSE(rw.snapshots[0].installed);
}

TEST_F(WalTest, GapBetweenEntriesIsCorruptionNamingFileAndOffset) {
  size_t gap_offset = 0;
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 3)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    gap_offset = LayoutOf(SegmentPaths(dir())[0]).end;
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 5, 5)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption);
  EXPECT_TRUE(Contains(s.message(), SegmentPaths(dir())[0])) << s.message();
  EXPECT_TRUE(Contains(s.message(), "at offset " + std::to_string(gap_offset))) << s.message();
  EXPECT_TRUE(Contains(s.message(), "gap in the log before entry 5")) << s.message();
  EXPECT_TRUE(Contains(s.message(), kAdvice)) << s.message();
}

TEST_F(WalTest, EntryThatDoesNotFollowAnInstalledSnapshotIsCorruption) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendSnapshot({Index(50), Term(4), true}).ok());
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(4, 60, 61)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption);
  EXPECT_TRUE(Contains(s.message(), "entry 60 does not follow the snapshot at 50")) << s.message();
}

// A record whose frame is intact but whose payload no decoder accepts: not a
// torn write (the checksum matches), so corruption even at the very tail.
TEST_F(WalTest, MalformedPayloadWithValidChecksumIsCorruptionEvenAtTheTail) {
  for (uint8_t type : {uint8_t{1}, uint8_t{2}, uint8_t{3}}) {
    TempDir t;
    const std::string d = t.Sub("wal");
    {
      RecoveredWal rw;
      auto wal = OpenOk(&rw, 64 << 10, d);
      ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 2)).ok());
      ASSERT_TRUE(wal->Sync().ok());
    }
    const std::string seg = SegmentPaths(d)[0];
    const size_t end = LayoutOf(seg).end;
    const std::string payload(5, '\x01');  // too short for every payload type
    std::string rec;
    std::string typed(1, static_cast<char>(type));
    typed += payload;
    PutFixed32(&rec, crc32c::Value(typed));
    PutFixed32(&rec, static_cast<uint32_t>(payload.size()));
    rec += typed;
    testing::WriteAt(seg, end, rec);
    Status s = OpenStatus(d);
    EXPECT_EQ(s.code(), ErrorCode::kCorruption) << int{type};
    EXPECT_TRUE(Contains(s.message(), "malformed")) << s.message();
    EXPECT_TRUE(Contains(s.message(), "at offset " + std::to_string(end))) << s.message();
  }
}

// ---------------------------------------------------------------------------
// Segments: names, rotation, release.

TEST(WalSegmentNameTest, RoundTripsAndSortsBySequence) {
  uint64_t seq;
  Index first;
  const std::string a = SegmentName(0x1f, Index(0xabc));
  EXPECT_EQ(a, "000000000000001f-0000000000000abc.wal");
  ASSERT_TRUE(ParseSegmentName(a, &seq, &first));
  EXPECT_EQ(seq, 0x1fu);
  EXPECT_EQ(first, Index(0xabc));
  EXPECT_LT(SegmentName(9, Index(1000)), SegmentName(10, Index(1)));
}

TEST(WalSegmentNameTest, RejectsOtherNames) {
  uint64_t seq;
  Index first;
  for (const char* name :
       {"", "x.wal", "000000000000001f-0000000000000abc.wa",
        "000000000000001F-0000000000000abc.wal", "000000000000001f_0000000000000abc.wal",
        "000000000000001f-0000000000000abc.wal.tmp", "00000000000001f-00000000000000abc.wal"}) {
    EXPECT_FALSE(ParseSegmentName(name, &seq, &first)) << name;
  }
}

TEST_F(WalTest, StrayFilesInTheDirectoryAreIgnored) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 3)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  testing::WriteFileOrDie(tmp_.Sub("wal/README"), "not a segment");
  testing::WriteFileOrDie(tmp_.Sub("wal/0000000000000001-0000000000000001.wal.tmp"), "junk");
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ExpectEntriesEqual(rw, MakeEntries(1, 1, 3));
}

// Appends `n` entries one batch at a time (~120 B each) and syncs.
void AppendRange(Wal* wal, uint64_t term, uint64_t lo, uint64_t hi, uint64_t batch = 4) {
  for (uint64_t i = lo; i <= hi; i += batch) {
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(term, i, std::min(hi, i + batch - 1))).ok());
  }
  ASSERT_TRUE(wal->Sync().ok());
}

TEST_F(WalTest, RotatesSegmentsAndRecoversAcrossThem) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    AppendRange(wal.get(), 1, 1, 300);
    EXPECT_GE(wal->segment_count(), 5u);
  }
  const std::vector<std::string> segs = SegmentPaths(dir());
  // Sequence numbers are consecutive and first indexes increase.
  Index prev_first;
  for (size_t i = 0; i < segs.size(); ++i) {
    uint64_t seq;
    Index first;
    ASSERT_TRUE(ParseSegmentName(std::filesystem::path(segs[i]).filename(), &seq, &first));
    EXPECT_EQ(seq, i);
    if (i > 0) {
      EXPECT_GT(first, prev_first);
    }
    prev_first = first;
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw, 4096);
  ExpectEntriesEqual(rw, MakeEntries(1, 1, 300));
}

TEST_F(WalTest, SegmentNameCarriesItsFirstEntryIndex) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    AppendRange(wal.get(), 1, 1, 200);
  }
  for (const std::string& seg : SegmentPaths(dir())) {
    uint64_t seq;
    Index first;
    ASSERT_TRUE(ParseSegmentName(std::filesystem::path(seg).filename(), &seq, &first));
    if (seq == 0) continue;
    RecoveredWal rw;
    TempDir one;
    std::filesystem::create_directories(one.Sub("wal"));
    std::filesystem::copy_file(seg,
                               one.Sub("wal/") + std::filesystem::path(seg).filename().string());
    auto wal = OpenOk(&rw, 4096, one.Sub("wal"));
    ASSERT_FALSE(rw.entries.empty());
    EXPECT_EQ(rw.entries.front().index, first) << seg;
  }
}

TEST_F(WalTest, MissingMiddleSegmentIsCorruption) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    AppendRange(wal.get(), 1, 1, 200);
  }
  std::vector<std::string> segs = SegmentPaths(dir());
  ASSERT_GE(segs.size(), 3u);
  std::filesystem::remove(segs[1]);
  Status s = OpenStatus("", 4096);
  EXPECT_EQ(s.code(), ErrorCode::kCorruption);
  EXPECT_TRUE(Contains(s.message(), segs[2])) << s.message();
  EXPECT_TRUE(Contains(s.message(), "does not follow")) << s.message();
}

TEST_F(WalTest, ReleaseToRemovesOnlyWholeSegmentsAtOrBelowTheIndex) {
  RecoveredWal rw;
  auto wal = OpenOk(&rw, 4096);
  AppendRange(wal.get(), 1, 1, 300);
  const size_t before = wal->segment_count();
  const std::vector<std::string> segs = SegmentPaths(dir());
  uint64_t seq;
  Index second_first;
  ASSERT_TRUE(ParseSegmentName(std::filesystem::path(segs[1]).filename(), &seq, &second_first));
  // Segment 0 holds entries up to second_first-1: release one below keeps it.
  ASSERT_TRUE(wal->ReleaseTo(second_first - 2).ok());
  EXPECT_EQ(wal->segment_count(), before);
  ASSERT_TRUE(wal->ReleaseTo(second_first - 1).ok());
  EXPECT_EQ(wal->segment_count(), before - 1);
  EXPECT_FALSE(std::filesystem::exists(segs[0]));
  wal.reset();
  RecoveredWal again;
  wal = OpenOk(&again, 4096);
  ExpectEntriesEqual(again, MakeEntries(1, second_first.value(), 300));
}

TEST_F(WalTest, ReleaseToNeverRemovesTheCurrentSegment) {
  RecoveredWal rw;
  auto wal = OpenOk(&rw, 4096);
  AppendRange(wal.get(), 1, 1, 300);
  ASSERT_TRUE(wal->ReleaseTo(Index(1000000)).ok());
  EXPECT_EQ(wal->segment_count(), 1u);
  EXPECT_EQ(SegmentPaths(dir()).size(), 1u);
  // It is still written to, and its entries are still there.
  AppendRange(wal.get(), 1, 301, 310);
  wal.reset();
  RecoveredWal again;
  wal = OpenOk(&again, 4096);
  ASSERT_FALSE(again.entries.empty());
  EXPECT_EQ(again.entries.back().index, Index(310));
  EXPECT_EQ(again.base + again.entries.size(), Index(310));
}

TEST_F(WalTest, HardStateSurvivesReleaseBecauseEverySegmentStartsWithIt) {
  const raft::HardState hs{Term(7), NodeId(3), Index(2)};
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    ASSERT_TRUE(wal->AppendHardState(hs).ok());
    AppendRange(wal.get(), 7, 1, 300);  // no further hard state
    ASSERT_TRUE(wal->ReleaseTo(Index(1000000)).ok());
    ASSERT_EQ(wal->segment_count(), 1u);
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw, 4096);
  EXPECT_EQ(rw.hard_state, hs);
}

TEST_F(WalTest, SnapshotMarkerSurvivesReleaseAsALocalMarker) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 5)).ok());
    ASSERT_TRUE(wal->AppendSnapshot({Index(100), Term(2), true}).ok());
    AppendRange(wal.get(), 2, 101, 400);
    ASSERT_TRUE(wal->ReleaseTo(Index(1000000)).ok());
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw, 4096);
  ASSERT_FALSE(rw.snapshots.empty());
  EXPECT_EQ(rw.snapshots.back().index, Index(100));
  EXPECT_EQ(rw.snapshots.back().term, Term(2));
  ASSERT_FALSE(rw.entries.empty());
  EXPECT_EQ(rw.entries.back().index, Index(400));
}

TEST_F(WalTest, EntryBelowTheLogStartIsCorruption) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    AppendRange(wal.get(), 1, 1, 300);
    ASSERT_TRUE(wal->ReleaseTo(Index(200)).ok());
    // Raft never rewrites entries below a snapshot; a log that does is damaged.
    ASSERT_TRUE(wal->AppendEntries({MakeEntry(1, 1, "x")}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  Status s = OpenStatus("", 4096);
  EXPECT_EQ(s.code(), ErrorCode::kCorruption);
  EXPECT_TRUE(Contains(s.message(), "lies below the log's start")) << s.message();
}

// ---------------------------------------------------------------------------
// Torn tails: the last record cut at every byte offset.

// Builds a WAL of ten entries whose last record is `last_size` bytes of data;
// returns where that record starts and ends in the (single) segment.
std::pair<size_t, size_t> BuildTenEntries(const std::string& d, size_t last_size) {
  RecoveredWal rw;
  auto wal = Wal::Open(Env::Default(), d, WalOptions{64 << 10}, &rw);
  WARDEN_CHECK(wal.ok());
  WARDEN_CHECK((*wal)->AppendHardState({Term(1), NodeId(1), Index(0)}).ok());
  WARDEN_CHECK((*wal)->AppendEntries(MakeEntries(1, 1, 9)).ok());
  WARDEN_CHECK((*wal)->AppendEntries({MakeEntry(1, 10, EntryData(10, 0, last_size))}).ok());
  WARDEN_CHECK((*wal)->Sync().ok());
  const auto layout = LayoutOf(SegmentPaths(d)[0]);
  return {layout.starts.back(), layout.end};
}

// The cut, reopen, append, reopen cycle shared by the two torn-tail tests.
void CheckTornAt(const std::string& base_dir, const std::string& work_dir, size_t start, size_t end,
                 size_t cut, bool truncate_file) {
  SCOPED_TRACE("cut " + std::to_string(cut) + (truncate_file ? " (truncated)" : " (zeroed)"));
  CopyDir(base_dir, work_dir);
  const std::string seg = SegmentPaths(work_dir)[0];
  if (truncate_file) {
    std::filesystem::resize_file(seg, start + cut);
  } else {
    testing::ZeroRange(seg, start + cut, end - start - cut);
  }
  const std::vector<raft::Entry> nine = MakeEntries(1, 1, 9);
  {
    RecoveredWal rw;
    auto wal = Wal::Open(Env::Default(), work_dir, WalOptions{64 << 10}, &rw);
    ASSERT_TRUE(wal.ok()) << wal.status().ToString();
    ExpectEntriesEqual(rw, nine);
    EXPECT_EQ(rw.hard_state, (raft::HardState{Term(1), NodeId(1), Index(0)}));
    if (cut == 0) {
      EXPECT_TRUE(rw.torn_tail.empty()) << rw.torn_tail;  // nothing of it was written
    } else {
      EXPECT_TRUE(Contains(rw.torn_tail, seg)) << rw.torn_tail;
      EXPECT_TRUE(Contains(rw.torn_tail, "at offset " + std::to_string(start))) << rw.torn_tail;
    }
    // The log continues from the cut: a different entry 10, and an 11.
    ASSERT_TRUE((*wal)->AppendEntries(MakeEntries(2, 10, 11, /*salt=*/5)).ok());
    ASSERT_TRUE((*wal)->Sync().ok());
  }
  // No garbage after the new records: the next open is clean.
  RecoveredWal rw;
  auto wal = Wal::Open(Env::Default(), work_dir, WalOptions{64 << 10}, &rw);
  ASSERT_TRUE(wal.ok()) << wal.status().ToString();
  EXPECT_TRUE(rw.torn_tail.empty()) << rw.torn_tail;
  std::vector<raft::Entry> want = nine;
  for (auto& e : MakeEntries(2, 10, 11, 5)) want.push_back(e);
  ExpectEntriesEqual(rw, want);
  const std::string bytes = ReadFileOrDie(seg);
  const size_t data_end = LayoutOf(seg).end;
  EXPECT_EQ(bytes.find_first_not_of('\0', data_end), std::string::npos)
      << "non-zero bytes after the last record at " << data_end;
  std::filesystem::remove_all(work_dir);
}

TEST_F(WalTest, TornTailCutAtEveryByteOffsetOfTheLastRecord) {
  const std::string base = tmp_.Sub("base");
  const auto [start, end] = BuildTenEntries(base, 60);
  ASSERT_EQ(end - start, kRecordHeaderSize + 17 + 60);
  for (size_t cut = 0; cut < end - start; ++cut) {
    ASSERT_NO_FATAL_FAILURE(CheckTornAt(base, tmp_.Sub("work"), start, end, cut, false));
  }
}

TEST_F(WalTest, TruncatedFileCutAtEveryByteOffsetOfTheLastRecord) {
  // The same, for a file that ends inside the record (length past EOF).
  const std::string base = tmp_.Sub("base");
  const auto [start, end] = BuildTenEntries(base, 60);
  for (size_t cut = 0; cut < end - start; ++cut) {
    ASSERT_NO_FATAL_FAILURE(CheckTornAt(base, tmp_.Sub("work"), start, end, cut, true));
  }
}

TEST_F(WalTest, TornBatchKeepsEveryWholeRecordBeforeTheCut) {
  // One write of three records cut at every offset: the records wholly
  // before the cut survive, the rest are gone.
  auto Small = [](uint64_t lo, uint64_t hi) {
    std::vector<raft::Entry> out;
    for (uint64_t i = lo; i <= hi; ++i) out.push_back(MakeEntry(1, i, EntryData(i, 0, 8)));
    return out;
  };
  const std::string base = tmp_.Sub("base");
  size_t batch_start = 0;
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 64 << 10, base);
    ASSERT_TRUE(wal->AppendEntries(Small(1, 3)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    batch_start = LayoutOf(SegmentPaths(base)[0]).end;
    ASSERT_TRUE(wal->AppendEntries(Small(4, 6)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  const auto layout = LayoutOf(SegmentPaths(base)[0]);
  for (size_t cut = batch_start; cut < layout.end; ++cut) {
    const std::string work = tmp_.Sub("work");
    CopyDir(base, work);
    const std::string seg = SegmentPaths(work)[0];
    testing::ZeroRange(seg, cut, layout.end - cut);
    size_t whole = 0;
    for (size_t s : layout.starts) whole += s < cut ? 1 : 0;
    // Records that start before the cut but end after it are torn.
    const bool boundary =
        std::find(layout.starts.begin(), layout.starts.end(), cut) != layout.starts.end();
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 64 << 10, work);
    ASSERT_NE(wal, nullptr) << "cut " << cut;
    // layout.starts[0] is the segment's hard state record.
    const size_t entries = boundary ? whole - 1 : whole - 2;
    ExpectEntriesEqual(rw, Small(1, entries));
    wal.reset();
    std::filesystem::remove_all(work);
  }
}

TEST_F(WalTest, TornHardStateRecordFallsBackToThePreviousOne) {
  const std::string base = tmp_.Sub("base");
  const raft::HardState first{Term(2), NodeId(1), Index(1)};
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 64 << 10, base);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(2, 1, 2)).ok());
    ASSERT_TRUE(wal->AppendHardState(first).ok());
    // Non-zero to its last byte, so that every cut changes the record.
    ASSERT_TRUE(wal->AppendHardState({Term(3), NodeId(2), Index(0x0102030405060708)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  const auto layout = LayoutOf(SegmentPaths(base)[0]);
  for (size_t cut = layout.starts.back(); cut < layout.end; ++cut) {
    const std::string work = tmp_.Sub("work");
    CopyDir(base, work);
    testing::ZeroRange(SegmentPaths(work)[0], cut, layout.end - cut);
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 64 << 10, work);
    ASSERT_NE(wal, nullptr);
    EXPECT_EQ(rw.hard_state, first) << "cut " << cut;
    wal.reset();
    std::filesystem::remove_all(work);
  }
}

TEST_F(WalTest, DamagedTailFollowedByDataIsCorruptionNotATornWrite) {
  const auto [start, end] = BuildTenEntries(dir(), 60);
  const std::string seg = SegmentPaths(dir())[0];
  testing::FlipBit(seg, start + 20, 3);
  testing::WriteAt(seg, end + 1000, "stray");
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption);
  EXPECT_TRUE(Contains(s.message(), "at offset " + std::to_string(start))) << s.message();
}

// ---------------------------------------------------------------------------
// Damage before the tail: always reported, never cut.

TEST_F(WalTest, BitFlipsBeforeTheTailAreAlwaysCorruption) {
  const std::string base = tmp_.Sub("base");
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096, base);
    ASSERT_TRUE(wal->AppendHardState({Term(1), NodeId(2), Index(0)}).ok());
    AppendRange(wal.get(), 1, 1, 60);
  }
  const std::vector<std::string> segs = SegmentPaths(base);
  ASSERT_GE(segs.size(), 2u);
  // Every byte of every record of every segment except the last record of
  // the last segment (whose damage is indistinguishable from a torn write).
  struct Target {
    size_t seg;
    size_t offset;
    size_t record_start;
  };
  std::vector<Target> targets;
  for (size_t i = 0; i < segs.size(); ++i) {
    const auto layout = LayoutOf(segs[i]);
    const bool last = i + 1 == segs.size();
    const size_t limit = last ? layout.starts.back() : layout.end;
    for (size_t r = 0; r < layout.starts.size(); ++r) {
      const size_t rs = layout.starts[r];
      const size_t re = r + 1 < layout.starts.size() ? layout.starts[r + 1] : layout.end;
      for (size_t o = rs; o < re && o < limit; ++o) targets.push_back({i, o, rs});
    }
  }
  Rng rng(20240611);
  for (int iter = 0; iter < 300; ++iter) {
    const Target t = targets[rng.Uniform(targets.size())];
    const int bit = static_cast<int>(rng.Uniform(8));
    SCOPED_TRACE("segment " + std::to_string(t.seg) + " offset " + std::to_string(t.offset) +
                 " bit " + std::to_string(bit));
    const std::string work = tmp_.Sub("work");
    CopyDir(base, work);
    const std::string seg = SegmentPaths(work)[t.seg];
    testing::FlipBit(seg, t.offset, bit);
    Status s = OpenStatus(work, 4096);
    ASSERT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
    EXPECT_TRUE(Contains(s.message(), seg)) << s.message();
    EXPECT_TRUE(Contains(s.message(), "at offset " + std::to_string(t.record_start)))
        << s.message();
    EXPECT_TRUE(Contains(s.message(), kAdvice)) << s.message();
    std::filesystem::remove_all(work);
  }
}

TEST_F(WalTest, InflatedLengthOfARecordBeforeTheTailIsCorruption) {
  // A flipped high bit in a length field makes the record claim the rest of
  // the written data: the records after it are valid, so this is damage, not
  // a torn write, although only zeros follow the claimed space.
  const auto [start, end] = BuildTenEntries(dir(), 60);
  const std::string seg = SegmentPaths(dir())[0];
  const auto layout = LayoutOf(seg);
  const size_t victim = layout.starts[3];
  testing::FlipBit(seg, victim + 4 + 1, 4);  // length += 4096
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "at offset " + std::to_string(victim))) << s.message();
  (void)start;
  (void)end;
}

TEST_F(WalTest, DamageInANonLastSegmentIsCorruption) {
  const std::string base = tmp_.Sub("base");
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096, base);
    AppendRange(wal.get(), 1, 1, 100);
  }
  ASSERT_GE(SegmentPaths(base).size(), 3u);
  // The last record of segment 0 is its tail, but not the log's: a torn-looking
  // record there is still corruption, because the segment was synced whole.
  for (bool zero_part : {false, true}) {
    const std::string work = tmp_.Sub("work");
    CopyDir(base, work);
    const std::string seg0 = SegmentPaths(work)[0];
    const auto layout = LayoutOf(seg0);
    if (zero_part) {
      testing::ZeroRange(seg0, layout.starts.back() + 12, layout.end - layout.starts.back() - 12);
    } else {
      testing::FlipBit(seg0, layout.end - 1, 0);
    }
    Status s = OpenStatus(work, 4096);
    EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
    EXPECT_TRUE(Contains(s.message(), seg0)) << s.message();
    EXPECT_TRUE(Contains(s.message(), "at offset " + std::to_string(layout.starts.back())))
        << s.message();
    std::filesystem::remove_all(work);
  }
}

TEST_F(WalTest, LostTailRecordOfANonLastSegmentIsCorruption) {
  // The whole last record of segment 0 reads back as zeros: the gap shows in
  // the next segment.
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    AppendRange(wal.get(), 1, 1, 100, 1);
  }
  const std::string seg0 = SegmentPaths(dir())[0];
  const auto layout = LayoutOf(seg0);
  testing::ZeroRange(seg0, layout.starts.back(), layout.end - layout.starts.back());
  Status s = OpenStatus("", 4096);
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "gap in the log")) << s.message();
}

TEST_F(WalTest, ZerosFollowedByValidRecordsInTheLastSegmentIsCorruption) {
  // Unsynced pages written back out of order: a hole of zeros where record 8
  // was, with records 9 and 10 intact after it. Recovery must not stop at the
  // hole and later replay 9 and 10 behind new records as if they were current.
  const auto [start, end] = BuildTenEntries(dir(), 60);
  const std::string seg = SegmentPaths(dir())[0];
  const auto layout = LayoutOf(seg);
  const size_t hole = layout.starts[layout.starts.size() - 3];
  testing::ZeroRange(seg, hole, layout.starts[layout.starts.size() - 2] - hole);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "at offset " + std::to_string(hole))) << s.message();
  (void)start;
  (void)end;
}

TEST_F(WalTest, ZerosFollowedByLeftoverBytesInTheLastSegmentIsCorruption) {
  // A zero header with non-zero bytes after it is never taken for the end of
  // the log, even when those bytes are not records.
  const auto [start, end] = BuildTenEntries(dir(), 60);
  const std::string seg = SegmentPaths(dir())[0];
  testing::ZeroRange(seg, start, kRecordHeaderSize);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "at offset " + std::to_string(start))) << s.message();
  EXPECT_TRUE(Contains(s.message(), "up to offset " + std::to_string(end))) << s.message();
}

TEST_F(WalTest, InterruptedTornTailCutIsCutAgain) {
  // Recovery zeroes a torn record payload first, header last. If it dies
  // part-way, the next open finds the header, part of the payload zeroed and
  // the rest of the torn bytes: still a torn record, cut again.
  const auto [start, end] = BuildTenEntries(dir(), 60);
  const std::string seg = SegmentPaths(dir())[0];
  testing::ZeroRange(seg, start + 40, end - start - 40);   // torn
  testing::ZeroRange(seg, start + kRecordHeaderSize, 11);  // the cut, interrupted
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ASSERT_NE(wal, nullptr);
  ExpectEntriesEqual(rw, MakeEntries(1, 1, 9));
  EXPECT_FALSE(rw.torn_tail.empty());
  ASSERT_TRUE(wal->AppendEntries({MakeEntry(2, 10, "short")}).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  RecoveredWal again;
  wal = OpenOk(&again);
  ASSERT_NE(wal, nullptr);
  EXPECT_TRUE(again.torn_tail.empty());
  EXPECT_EQ(again.entries.back(), MakeEntry(2, 10, "short"));
}

// ---------------------------------------------------------------------------
// Write failures (FaultInjectionEnv).

class WalFaultTest : public WalTest {
 protected:
  WalFaultTest() { env_ = &fenv_; }
  FaultInjectionEnv fenv_;
};

// Every call after the failure returns the failure; none reports success.
void ExpectStickyFailure(Wal* wal, ErrorCode code) {
  EXPECT_EQ(wal->failure().code(), code);
  EXPECT_EQ(wal->AppendEntries(MakeEntries(9, 1000, 1000)).code(), code);
  EXPECT_EQ(wal->AppendHardState({Term(9), NodeId(1), Index(0)}).code(), code);
  EXPECT_EQ(wal->AppendSnapshot({Index(5), Term(9), false}).code(), code);
  EXPECT_EQ(wal->Sync().code(), code);
  EXPECT_EQ(wal->ReleaseTo(Index(1000)).code(), code);
  EXPECT_EQ(wal->Sync().code(), code);
}

TEST_F(WalFaultTest, SyncFailureIsStickyAndNeverReportsSuccess) {
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 5)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  fenv_.FailSyncs(testing::IoErrorStatus());
  ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 6, 10)).ok());  // buffered: fine so far
  Status s = wal->Sync();
  EXPECT_EQ(s.code(), ErrorCode::kIoError);
  EXPECT_TRUE(Contains(s.message(), "Input/output error")) << s.message();
  // The disk recovers, but the Wal does not pretend it did: after a failed
  // fdatasync the state of the page cache is unknown.
  fenv_.ClearFaults();
  ExpectStickyFailure(wal.get(), ErrorCode::kIoError);
}

TEST_F(WalFaultTest, NoSpaceOnAppendIsStickyAndTheShortWriteIsCutAtReopen) {
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw);
    ASSERT_TRUE(wal->AppendEntries(MakeEntries(1, 1, 5)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    fenv_.FailAppends(testing::NoSpaceError(), 0, /*partial=*/true);
    Status s = wal->AppendEntries(MakeEntries(1, 6, 10));
    EXPECT_EQ(s.code(), ErrorCode::kNoSpace);
    fenv_.ClearFaults();
    ExpectStickyFailure(wal.get(), ErrorCode::kNoSpace);
  }
  // Half a batch reached the file: the whole records in it were never
  // acknowledged but are intact; the torn one is cut.
  RecoveredWal rw;
  auto wal = OpenOk(&rw);
  ASSERT_NE(wal, nullptr);
  ASSERT_GE(rw.entries.size(), 5u);
  ExpectEntriesEqual(rw, MakeEntries(1, 1, rw.entries.size()));
  EXPECT_FALSE(rw.torn_tail.empty());
}

TEST_F(WalFaultTest, FailureWhileRotatingIsSticky) {
  RecoveredWal rw;
  auto wal = OpenOk(&rw, 4096);
  fenv_.FailSyncs(Status(ErrorCode::kNoSpace, "injected"), /*ok_before=*/0);
  // Rotation syncs the old segment first; that sync fails.
  Status s;
  for (uint64_t i = 1; i <= 200 && s.ok(); ++i) s = wal->AppendEntries(MakeEntries(1, i, i));
  EXPECT_EQ(s.code(), ErrorCode::kNoSpace);
  EXPECT_EQ(wal->segment_count(), 1u);
  fenv_.ClearFaults();
  ExpectStickyFailure(wal.get(), ErrorCode::kNoSpace);
}

// A simulated power cut after random appends and syncs: every synced record
// is recovered, and what is recovered is the state after some prefix of the
// operations (never a mix, never garbage).
TEST_F(WalFaultTest, CrashKeepsEverySyncedRecord) {
  struct State {
    std::vector<raft::Entry> entries;
    raft::HardState hs;
  };
  Rng rng(424242);
  State cur;
  uint64_t term = 1;
  std::vector<State> candidates{cur};  // states a crash may leave, oldest first
  for (int round = 0; round < 12; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    {
      RecoveredWal rw;
      auto wal = OpenOk(&rw, 8192);
      ASSERT_NE(wal, nullptr);
      // The recovered state is one of the candidates, at or after the last sync.
      bool matched = false;
      for (const State& st : candidates) {
        if (rw.hard_state == st.hs && rw.entries == st.entries &&
            (st.entries.empty() || rw.base == st.entries.front().index - 1)) {
          matched = true;
          cur = st;
        }
      }
      ASSERT_TRUE(matched) << "recovered " << rw.entries.size() << " entries, base " << rw.base;
      candidates = {cur};
      const int ops = static_cast<int>(rng.Range(5, 40));
      for (int op = 0; op < ops; ++op) {
        const uint64_t last = cur.entries.size();
        const uint64_t kind = rng.Uniform(10);
        if (kind < 6) {
          // Append (sometimes overwriting a suffix, as a new leader would).
          uint64_t from = last + 1;
          if (last > 0 && rng.Chance(0.2)) {
            from = rng.Range(last > 5 ? last - 5 : 1, last);
            ++term;
          }
          auto ents = MakeEntries(term, from, from + rng.Range(0, 15), rng.Next());
          ASSERT_TRUE(wal->AppendEntries(ents).ok());
          cur.entries.resize(from - 1);
          for (auto& e : ents) cur.entries.push_back(e);
        } else if (kind < 8) {
          cur.hs = raft::HardState{Term(term), NodeId(rng.Range(1, 3)), Index(last / 2)};
          ASSERT_TRUE(wal->AppendHardState(cur.hs).ok());
        } else {
          ASSERT_TRUE(wal->Sync().ok());
          candidates.clear();
        }
        candidates.push_back(cur);
      }
    }
    ASSERT_TRUE(fenv_.DropUnsyncedData().ok());
  }
}

TEST_F(WalFaultTest, CrashRightAfterRotationKeepsTheHardStateThroughRelease) {
  // The new segment's file is durable (directory synced) but its first
  // records, the hard state header among them, are not.
  const raft::HardState hs{Term(5), NodeId(2), Index(0)};
  Index last_synced;
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    ASSERT_TRUE(wal->AppendHardState(hs).ok());
    for (uint64_t i = 1; wal->segment_count() == 1; ++i) {
      ASSERT_LT(i, 1000u);
      ASSERT_TRUE(wal->Sync().ok());
      last_synced = Index(i - 1);
      ASSERT_TRUE(wal->AppendEntries(MakeEntries(5, i, i)).ok());
    }
  }
  ASSERT_TRUE(fenv_.DropUnsyncedData().ok());
  {
    RecoveredWal rw;
    auto wal = OpenOk(&rw, 4096);
    ASSERT_NE(wal, nullptr);
    EXPECT_EQ(rw.hard_state, hs);
    ASSERT_EQ(rw.base + rw.entries.size(), last_synced);
    ASSERT_EQ(wal->segment_count(), 2u);
    // Continue in the (empty) new segment, then release the old one.
    ASSERT_TRUE(
        wal->AppendEntries(MakeEntries(5, last_synced.value() + 1, last_synced.value() + 3)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    ASSERT_TRUE(wal->ReleaseTo(last_synced).ok());
    ASSERT_EQ(wal->segment_count(), 1u);
  }
  RecoveredWal rw;
  auto wal = OpenOk(&rw, 4096);
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(rw.hard_state, hs) << "the vote was lost with the released segment";
  EXPECT_EQ(rw.base + rw.entries.size(), last_synced + 3);
}

}  // namespace
}  // namespace warden::storage

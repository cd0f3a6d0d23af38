// LogStore (log_store.h): the durable raft::Storage of one member. Reopen
// keeps everything; compaction releases WAL segments; damaged snapshots fall
// back to older ones only when the log still covers the gap; a snapshot
// replaces a conflicting log; write errors are sticky while reads keep working.
#include "src/storage/log_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/unit/fault_injection_env.h"
#include "tests/unit/storage_test_util.h"

namespace warden::storage {
namespace {

using testing::Contains;
using testing::MakeEntries;
using testing::SegmentPaths;
using testing::TempDir;

const raft::ConfState kConf{{NodeId(1), NodeId(2), NodeId(3)}, {}, {NodeId(4)}};

raft::Snapshot MakeSnapshot(uint64_t index, uint64_t term, std::string data) {
  raft::Snapshot s;
  s.metadata.index = Index(index);
  s.metadata.term = Term(term);
  s.metadata.conf_state = kConf;
  s.data = std::move(data);
  return s;
}

// Small preallocated segments keep each open fast (recovery reads whole files).
LogStoreOptions Small() {
  LogStoreOptions o;
  o.wal.segment_bytes = 256 << 10;
  return o;
}

class LogStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<LogStore> OpenOk(const LogStoreOptions& options = Small()) {
    Result<std::unique_ptr<LogStore>> s = LogStore::Open(env_, tmp_.path(), options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    return std::move(s).value();
  }
  Status OpenStatus(const LogStoreOptions& options = Small()) {
    return LogStore::Open(env_, tmp_.path(), options).status();
  }
  std::string SnapPath(uint64_t term, uint64_t index) const {
    return tmp_.Sub("snap/" + SnapshotFileName(Term(term), Index(index)));
  }

  // Appends entries lo..hi at `term` in batches, each synced.
  static void Fill(LogStore* store, uint64_t term, uint64_t lo, uint64_t hi, uint64_t batch = 10) {
    for (uint64_t i = lo; i <= hi; i += batch) {
      ASSERT_TRUE(store
                      ->Save(std::nullopt, MakeEntries(term, i, std::min(hi, i + batch - 1)),
                             std::nullopt, true)
                      .ok());
    }
  }
  // The store holds exactly entries lo..hi as MakeEntries(term, lo, hi) made them.
  static void ExpectEntries(const LogStore& store, uint64_t term, uint64_t lo, uint64_t hi) {
    EXPECT_EQ(store.FirstIndex(), Index(lo));
    EXPECT_EQ(store.LastIndex(), Index(hi));
    if (hi < lo) return;
    Result<std::vector<raft::Entry>> got = store.Entries(Index(lo), Index(hi + 1), UINT64_MAX);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, MakeEntries(term, lo, hi));
  }

  TempDir tmp_;
  Env* env_ = Env::Default();
};

TEST_F(LogStoreTest, FreshStoreIsEmpty) {
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->FirstIndex(), Index(1));
  EXPECT_EQ(store->LastIndex(), Index(0));
  EXPECT_TRUE(store->hard_state().IsEmpty());
  EXPECT_TRUE(store->GetSnapshot()->IsEmpty());
  EXPECT_TRUE(store->recovery_notes().empty());
  EXPECT_TRUE(std::filesystem::is_directory(tmp_.Sub("wal")));
  EXPECT_TRUE(std::filesystem::is_directory(tmp_.Sub("snap")));
}

TEST_F(LogStoreTest, ReopenKeepsHardStateEntriesAndSnapshot) {
  const raft::HardState hs{Term(2), NodeId(3), Index(40)};
  {
    auto store = OpenOk();
    Fill(store.get(), 2, 1, 50);
    ASSERT_TRUE(store->Save(std::nullopt, {}, hs, true).ok());
    ASSERT_TRUE(store->CreateSnapshot(Index(30), kConf, "image at 30").ok());
  }
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->hard_state(), hs);
  EXPECT_EQ(store->InitialState().first, hs);
  EXPECT_EQ(store->InitialState().second, kConf);
  Result<raft::Snapshot> snap = store->GetSnapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata.index, Index(30));
  EXPECT_EQ(snap->metadata.term, Term(2));
  EXPECT_EQ(snap->data, "image at 30");
  ExpectEntries(*store, 2, 31, 50);
  EXPECT_EQ(*store->TermAt(Index(30)), Term(2));
  EXPECT_TRUE(store->recovery_notes().empty());
}

// The image is as large as the state: once on disk it is read back from
// there, not kept in memory (a created, an installed and a reopened one).
TEST_F(LogStoreTest, SnapshotImagesAreReadBackFromDiskNotKeptInMemory) {
  auto store = OpenOk();
  Fill(store.get(), 2, 1, 50);
  ASSERT_TRUE(store->CreateSnapshot(Index(30), kConf, "image at 30").ok());
  Result<raft::Snapshot> snap = store->GetSnapshot();
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(snap->metadata.index, Index(30));
  EXPECT_EQ(snap->data, "image at 30");
  std::filesystem::remove(SnapPath(2, 30));
  snap = store->GetSnapshot();
  ASSERT_FALSE(snap.ok());
  EXPECT_EQ(snap.status().code(), ErrorCode::kSnapshotTemporarilyUnavailable);

  ASSERT_TRUE(store->Save(MakeSnapshot(80, 3, "installed at 80"), {}, std::nullopt, true).ok());
  EXPECT_EQ(store->GetSnapshot()->data, "installed at 80");
  store.reset();

  // Reopened: the loaded image is served from memory until released.
  store = OpenOk();
  ASSERT_NE(store, nullptr);
  std::filesystem::rename(SnapPath(3, 80), SnapPath(3, 80) + ".moved");
  EXPECT_EQ(store->GetSnapshot()->data, "installed at 80");
  store->ReleaseSnapshotData();
  EXPECT_FALSE(store->GetSnapshot().ok());
  std::filesystem::rename(SnapPath(3, 80) + ".moved", SnapPath(3, 80));
  EXPECT_EQ(store->GetSnapshot()->data, "installed at 80");
}

TEST_F(LogStoreTest, UnsyncedSaveIsStillReadAfterAnOrderlyReopen) {
  {
    auto store = OpenOk();
    ASSERT_TRUE(store->Save(std::nullopt, MakeEntries(1, 1, 5), std::nullopt, false).ok());
  }
  auto store = OpenOk();
  ExpectEntries(*store, 1, 1, 5);
}

TEST_F(LogStoreTest, CreateSnapshotCompactsAndReleasesSegments) {
  LogStoreOptions options;
  options.wal.segment_bytes = 4096;
  options.keep_snapshots = 1;
  options.keep_entries_after_snapshot = 10;
  auto store = OpenOk(options);
  Fill(store.get(), 1, 1, 400);
  const size_t segments_before = store->wal()->segment_count();
  ASSERT_GE(segments_before, 8u);

  ASSERT_TRUE(store->CreateSnapshot(Index(100), kConf, "100").ok());
  EXPECT_EQ(store->FirstIndex(), Index(91));  // keeps 10 entries for slow followers
  ASSERT_TRUE(store->CreateSnapshot(Index(200), kConf, "200").ok());
  ASSERT_TRUE(store->CreateSnapshot(Index(300), kConf, "300").ok());
  EXPECT_EQ(store->FirstIndex(), Index(291));
  // The newest and keep_snapshots older ones remain.
  Result<std::vector<std::string>> names = store->snapshots().List();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{SnapshotFileName(Term(1), Index(300)),
                                              SnapshotFileName(Term(1), Index(200))}));
  // Segments wholly at or below the oldest kept snapshot (200) are gone.
  EXPECT_LT(store->wal()->segment_count(), segments_before);
  const std::vector<std::string> segs = SegmentPaths(tmp_.Sub("wal"));
  uint64_t seq;
  Index first;
  ASSERT_TRUE(ParseSegmentName(std::filesystem::path(segs[0]).filename(), &seq, &first));
  EXPECT_GT(first, Index(100));
  EXPECT_LE(first, Index(201));

  store.reset();
  store = OpenOk(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetSnapshot()->metadata.index, Index(300));
  ExpectEntries(*store, 1, 301, 400);
}

TEST_F(LogStoreTest, DamagedNewestSnapshotFallsBackToAnOlderOneTheLogCovers) {
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 300);
    ASSERT_TRUE(store->CreateSnapshot(Index(100), kConf, "100").ok());
    ASSERT_TRUE(store->CreateSnapshot(Index(200), kConf, "200").ok());
  }
  testing::FlipBit(SnapPath(1, 200), 40, 1);
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetSnapshot()->metadata.index, Index(100));
  EXPECT_EQ(store->GetSnapshot()->data, "100");
  ExpectEntries(*store, 1, 101, 300);
  ASSERT_EQ(store->recovery_notes().size(), 1u);
  EXPECT_TRUE(Contains(store->recovery_notes()[0], "damaged")) << store->recovery_notes()[0];
  EXPECT_TRUE(Contains(store->recovery_notes()[0], SnapPath(1, 200))) << store->recovery_notes()[0];
}

TEST_F(LogStoreTest, DamagedNewestSnapshotAndTheLogStartsAfterTheOlderOneFails) {
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 150);
    ASSERT_TRUE(store->CreateSnapshot(Index(100), kConf, "100").ok());
    // The leader sends a snapshot at 500: the log restarts after it.
    ASSERT_TRUE(
        store->Save(MakeSnapshot(500, 3, "500"), MakeEntries(3, 501, 510), std::nullopt, true)
            .ok());
  }
  testing::FlipBit(SnapPath(3, 500), 40, 1);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), SnapshotFileName(Term(3), Index(500)) + " (damaged)"))
      << s.message();
  EXPECT_TRUE(Contains(
      s.message(), SnapshotFileName(Term(1), Index(100)) + " (the log starts after it, at 501)"))
      << s.message();
  EXPECT_TRUE(Contains(s.message(), "wipe its data directory")) << s.message();
}

TEST_F(LogStoreTest, DamagedInstalledSnapshotWithNothingAfterItDoesNotFallBack) {
  // As above, but the crash came before any entry after the snapshot: the log
  // is empty, yet it still starts at 501 and cannot bridge 101..500.
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 150);
    ASSERT_TRUE(store->CreateSnapshot(Index(100), kConf, "100").ok());
    ASSERT_TRUE(store
                    ->Save(MakeSnapshot(500, 3, "500"), {},
                           raft::HardState{Term(3), NodeId(1), Index(500)}, true)
                    .ok());
  }
  testing::FlipBit(SnapPath(3, 500), 40, 1);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), SnapshotFileName(Term(3), Index(500)) + " (damaged)"))
      << s.message();
  EXPECT_TRUE(Contains(s.message(), SnapshotFileName(Term(1), Index(100)))) << s.message();
}

TEST_F(LogStoreTest, OnlySnapshotDamagedFailsNamingIt) {
  LogStoreOptions options;
  options.wal.segment_bytes = 4096;
  options.keep_snapshots = 0;
  options.keep_entries_after_snapshot = 0;
  {
    auto store = OpenOk(options);
    Fill(store.get(), 1, 1, 200);
    ASSERT_TRUE(store->CreateSnapshot(Index(150), kConf, "150").ok());
  }
  testing::FlipBit(SnapPath(1, 150), 20, 0);
  Status s = OpenStatus(options);
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), tmp_.Sub("snap"))) << s.message();
  EXPECT_TRUE(Contains(s.message(), SnapshotFileName(Term(1), Index(150)))) << s.message();
}

TEST_F(LogStoreTest, InstalledSnapshotThenReopen) {
  const raft::HardState hs{Term(2), NodeId(1), Index(55)};
  {
    auto store = OpenOk();
    ASSERT_TRUE(
        store->Save(MakeSnapshot(50, 2, "leader's image"), MakeEntries(2, 51, 60), hs, true).ok());
    ExpectEntries(*store, 2, 51, 60);
  }
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  Result<raft::Snapshot> snap = store->GetSnapshot();
  EXPECT_EQ(snap->metadata.index, Index(50));
  EXPECT_EQ(snap->metadata.conf_state, kConf);
  EXPECT_EQ(snap->data, "leader's image");
  EXPECT_EQ(store->hard_state(), hs);
  ExpectEntries(*store, 2, 51, 60);
}

TEST_F(LogStoreTest, InstalledSnapshotReplacesAConflictingLog) {
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 20);
    ASSERT_TRUE(store->Save(MakeSnapshot(15, 3, "x"), {}, std::nullopt, true).ok());
    EXPECT_EQ(store->LastIndex(), Index(15));
  }
  auto store = OpenOk();
  EXPECT_EQ(store->FirstIndex(), Index(16));
  EXPECT_EQ(store->LastIndex(), Index(15));
  EXPECT_EQ(*store->TermAt(Index(15)), Term(3));
}

TEST_F(LogStoreTest, OlderSnapshotIsRefusedWithoutTouchingTheDisk) {
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 20);
    ASSERT_TRUE(store->CreateSnapshot(Index(15), kConf, "15").ok());
    Status s = store->Save(MakeSnapshot(10, 1, "older"), {}, std::nullopt, true);
    EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition) << s.ToString();
    // The refusal changed nothing: the log goes on as before.
    Fill(store.get(), 1, 21, 22);
  }
  EXPECT_FALSE(std::filesystem::exists(SnapPath(1, 10)));
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetSnapshot()->metadata.index, Index(15));
  ExpectEntries(*store, 1, 16, 22);
}

TEST_F(LogStoreTest, WalEntriesConflictingWithANewerSnapshotAreDropped) {
  // A crash after the snapshot file became durable but before the WAL's
  // marker did: the WAL still holds 16..20 of an older history.
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 20);
  }
  SnapshotStore snaps(Env::Default(), tmp_.Sub("snap"));
  ASSERT_TRUE(snaps.Save(MakeSnapshot(15, 2, "newer history")).ok());
  for (int reopen = 0; reopen < 2; ++reopen) {
    // Twice: the first open writes an installed marker, so the second agrees.
    auto store = OpenOk();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->GetSnapshot()->metadata.index, Index(15));
    EXPECT_EQ(store->FirstIndex(), Index(16));
    EXPECT_EQ(store->LastIndex(), Index(15)) << "reopen " << reopen;
  }
  {
    // The log continues from the snapshot.
    auto store = OpenOk();
    ASSERT_TRUE(store->Save(std::nullopt, MakeEntries(2, 16, 17), std::nullopt, true).ok());
  }
  auto store = OpenOk();
  ExpectEntries(*store, 2, 16, 17);
}

TEST_F(LogStoreTest, WalThatContinuesASnapshotKeepsItsEntries) {
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 20);
  }
  SnapshotStore snaps(Env::Default(), tmp_.Sub("snap"));
  ASSERT_TRUE(snaps.Save(MakeSnapshot(15, 1, "same history")).ok());
  auto store = OpenOk();
  ExpectEntries(*store, 1, 16, 20);
}

TEST_F(LogStoreTest, SnapshotAheadOfTheLogIsUsed) {
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 10);
  }
  SnapshotStore snaps(Env::Default(), tmp_.Sub("snap"));
  ASSERT_TRUE(snaps.Save(MakeSnapshot(30, 2, "ahead")).ok());
  auto store = OpenOk();
  EXPECT_EQ(store->LastIndex(), Index(30));
  EXPECT_EQ(store->FirstIndex(), Index(31));
}

TEST_F(LogStoreTest, LogStartingLaterWithoutAnySnapshotFails) {
  {
    RecoveredWal rw;
    auto wal = Wal::Open(Env::Default(), tmp_.Sub("wal"), WalOptions{4096}, &rw);
    ASSERT_TRUE(wal.ok());
    for (uint64_t i = 1; i <= 200; i += 10) {
      ASSERT_TRUE((*wal)->AppendEntries(MakeEntries(1, i, i + 9)).ok());
    }
    ASSERT_TRUE((*wal)->Sync().ok());
    ASSERT_TRUE((*wal)->ReleaseTo(Index(100)).ok());
  }
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "no snapshot before it")) << s.message();
  EXPECT_TRUE(Contains(s.message(), tmp_.Sub("wal"))) << s.message();
}

TEST_F(LogStoreTest, TornTailIsCutAndNoted) {
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 20);
  }
  const std::string seg = SegmentPaths(tmp_.Sub("wal"))[0];
  const auto layout = testing::LayoutOf(seg);
  testing::ZeroRange(seg, layout.starts.back() + 5, layout.end - layout.starts.back() - 5);
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  ExpectEntries(*store, 1, 1, 19);
  ASSERT_EQ(store->recovery_notes().size(), 1u);
  EXPECT_TRUE(Contains(store->recovery_notes()[0], "torn write")) << store->recovery_notes()[0];
  EXPECT_TRUE(Contains(store->recovery_notes()[0], seg)) << store->recovery_notes()[0];
}

TEST_F(LogStoreTest, LeftoverTemporarySnapshotFilesAreRemovedAtOpen) {
  { auto store = OpenOk(); }
  testing::WriteFileOrDie(tmp_.Sub("snap/incoming-3.snap.tmp"), "half a snapshot");
  auto store = OpenOk();
  EXPECT_FALSE(std::filesystem::exists(tmp_.Sub("snap/incoming-3.snap.tmp")));
}

// ---------------------------------------------------------------------------
// Write errors.

class LogStoreFaultTest : public LogStoreTest {
 protected:
  LogStoreFaultTest() { env_ = &fenv_; }
  testing::FaultInjectionEnv fenv_;
};

TEST_F(LogStoreFaultTest, WriteErrorsAreStickyAndReadsKeepWorking) {
  auto store = OpenOk();
  Fill(store.get(), 1, 1, 10);
  const raft::HardState hs{Term(1), NodeId(1), Index(10)};
  ASSERT_TRUE(store->Save(std::nullopt, {}, hs, true).ok());

  fenv_.FailSyncs(testing::IoErrorStatus());
  Status s = store->Save(std::nullopt, MakeEntries(1, 11, 12), std::nullopt, true);
  EXPECT_EQ(s.code(), ErrorCode::kIoError);
  fenv_.ClearFaults();
  // Every later write is refused with the same error, even with the disk back.
  EXPECT_EQ(store->Save(std::nullopt, MakeEntries(1, 13, 13), std::nullopt, true).code(),
            ErrorCode::kIoError);
  EXPECT_EQ(
      store->Save(std::nullopt, {}, raft::HardState{Term(2), NodeId(2), Index(10)}, false).code(),
      ErrorCode::kIoError);
  EXPECT_EQ(store->Save(MakeSnapshot(40, 2, "x"), {}, std::nullopt, true).code(),
            ErrorCode::kIoError);
  EXPECT_EQ(store->CreateSnapshot(Index(5), kConf, "x").code(), ErrorCode::kIoError);
  EXPECT_EQ(store->wal()->failure().code(), ErrorCode::kIoError);
  // Reads of the log still work.
  Result<std::vector<raft::Entry>> got = store->Entries(Index(1), Index(11), UINT64_MAX);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, MakeEntries(1, 1, 10));
  EXPECT_EQ(*store->TermAt(Index(10)), Term(1));
  EXPECT_EQ(store->hard_state(), hs);
  EXPECT_EQ(store->FirstIndex(), Index(1));
  EXPECT_TRUE(store->GetSnapshot().ok());
}

TEST_F(LogStoreFaultTest, NoSpaceIsReportedAsNoSpaceAndNothingIsClaimed) {
  auto store = OpenOk();
  Fill(store.get(), 1, 1, 10);
  fenv_.FailAppends(testing::NoSpaceError(), 0, /*partial=*/true);
  Status s = store->Save(std::nullopt, MakeEntries(1, 11, 20), std::nullopt, true);
  EXPECT_EQ(s.code(), ErrorCode::kNoSpace) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "No space")) << s.message();
  // The failed batch never reached the in-memory log either.
  EXPECT_EQ(store->LastIndex(), Index(10));
  fenv_.ClearFaults();
  EXPECT_EQ(store->Save(std::nullopt, MakeEntries(1, 11, 11), std::nullopt, true).code(),
            ErrorCode::kNoSpace);
  store.reset();
  // After a restart the synced entries are there; the short write is cut.
  auto again = OpenOk();
  ASSERT_NE(again, nullptr);
  ASSERT_GE(again->LastIndex(), Index(10));
  ExpectEntries(*again, 1, 1, again->LastIndex().value());
}

TEST_F(LogStoreFaultTest, FailedSnapshotWriteIsReported) {
  auto store = OpenOk();
  Fill(store.get(), 1, 1, 10);
  fenv_.FailSyncs(testing::IoErrorStatus(), 0, "/snap/");
  EXPECT_EQ(store->CreateSnapshot(Index(8), kConf, "x").code(), ErrorCode::kIoError);
  EXPECT_EQ(store->Save(MakeSnapshot(40, 2, "y"), {}, std::nullopt, true).code(),
            ErrorCode::kIoError);
  fenv_.ClearFaults();
  store.reset();
  // Nothing half-written is picked up at the next open.
  auto again = OpenOk();
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(again->GetSnapshot()->IsEmpty());
  ExpectEntries(*again, 1, 1, 10);
}

TEST_F(LogStoreFaultTest, CrashLosesOnlyUnsyncedWrites) {
  {
    auto store = OpenOk();
    Fill(store.get(), 1, 1, 30);
    ASSERT_TRUE(
        store->Save(std::nullopt, {}, raft::HardState{Term(1), NodeId(2), Index(30)}, true).ok());
    ASSERT_TRUE(store->CreateSnapshot(Index(20), kConf, "20").ok());
    ASSERT_TRUE(store->Save(std::nullopt, MakeEntries(1, 31, 40), std::nullopt, false).ok());
  }
  ASSERT_TRUE(fenv_.DropUnsyncedData().ok());
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetSnapshot()->metadata.index, Index(20));
  ExpectEntries(*store, 1, 21, 30);
  EXPECT_EQ(store->hard_state(), (raft::HardState{Term(1), NodeId(2), Index(30)}));
}

}  // namespace
}  // namespace warden::storage

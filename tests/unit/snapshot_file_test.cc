// Snapshot files (snapshot_file.h): the encoding, every way a file can be
// damaged (each truncation, a sweep of bit flips, and each field named),
// streaming writes in random chunks, and the snapshot directory.
#include "src/storage/snapshot_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "src/base/random.h"
#include "tests/unit/fault_injection_env.h"
#include "tests/unit/storage_test_util.h"

namespace warden::storage {
namespace {

using testing::Contains;
using testing::ReadFileOrDie;
using testing::TempDir;

raft::Snapshot MakeSnapshot(uint64_t index, uint64_t term, std::string data) {
  raft::Snapshot s;
  s.metadata.index = Index(index);
  s.metadata.term = Term(term);
  s.metadata.conf_state.voters = {NodeId(1), NodeId(2), NodeId(3)};
  s.metadata.conf_state.voters_outgoing = {NodeId(1), NodeId(4)};
  s.metadata.conf_state.learners = {NodeId(9)};
  s.data = std::move(data);
  return s;
}

void ExpectSameSnapshot(const raft::Snapshot& a, const raft::Snapshot& b) {
  EXPECT_EQ(a.metadata, b.metadata);
  EXPECT_EQ(a.data, b.data);
}

// Builds a file from its fields with a correct checksum, so that a test can
// damage one field and still get past the checksum.
std::string BuildFile(uint32_t version, const std::string& meta, uint32_t meta_len,
                      const std::string& data, uint64_t data_len) {
  std::string out("WRDNSNAP");
  PutFixed32(&out, version);
  PutFixed32(&out, meta_len);
  out += meta;
  out += data;
  PutFixed64(&out, data_len);
  PutFixed32(&out, crc32c::Value(out.data() + 8, out.size() - 8));
  return out;
}

std::string Meta(uint64_t index, uint64_t term, const std::vector<uint64_t>& voters,
                 uint32_t voters_count_field) {
  std::string m;
  PutFixed64(&m, index);
  PutFixed64(&m, term);
  PutFixed32(&m, voters_count_field);
  for (uint64_t v : voters) PutFixed64(&m, v);
  PutFixed32(&m, 0);  // outgoing
  PutFixed32(&m, 0);  // learners
  return m;
}

std::string RandomBytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.Next());
  return s;
}

// ---------------------------------------------------------------------------
// Encoding.

TEST(SnapshotFileTest, RoundTrip) {
  const raft::Snapshot s = MakeSnapshot(1234, 7, "state machine image");
  Result<raft::Snapshot> got = DecodeSnapshotFile(EncodeSnapshotFile(s));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameSnapshot(*got, s);
}

TEST(SnapshotFileTest, RoundTripOfEmptyMembershipAndData) {
  raft::Snapshot s;
  s.metadata.index = Index(1);
  s.metadata.term = Term(1);
  Result<raft::Snapshot> got = DecodeSnapshotFile(EncodeSnapshotFile(s));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameSnapshot(*got, s);
}

TEST(SnapshotFileTest, RoundTripOfLargeBinaryData) {
  Rng rng(1);
  const raft::Snapshot s = MakeSnapshot(99, 3, RandomBytes(rng, 3 << 20));
  Result<raft::Snapshot> got = DecodeSnapshotFile(EncodeSnapshotFile(s));
  ASSERT_TRUE(got.ok());
  ExpectSameSnapshot(*got, s);
}

TEST(SnapshotFileTest, LayoutStartsWithMagicAndVersionOne) {
  const std::string f = EncodeSnapshotFile(MakeSnapshot(5, 2, "abc"));
  EXPECT_EQ(f.substr(0, 8), "WRDNSNAP");
  EXPECT_EQ(DecodeFixed32(f.data() + 8), 1u);
  EXPECT_EQ(DecodeFixed64(f.data() + f.size() - 12), 3u);  // data_len in the trailer
  EXPECT_EQ(DecodeFixed32(f.data() + f.size() - 4), crc32c::Value(f.data() + 8, f.size() - 12));
}

// ---------------------------------------------------------------------------
// Damage: truncation and bit flips are always detected.

TEST(SnapshotFileTest, EveryTruncationIsDetected) {
  const std::string f = EncodeSnapshotFile(MakeSnapshot(77, 4, "0123456789abcdef"));
  for (size_t n = 0; n < f.size(); ++n) {
    Result<raft::Snapshot> got = DecodeSnapshotFile(f.substr(0, n));
    ASSERT_FALSE(got.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(got.status().code(), ErrorCode::kCorruption);
  }
}

TEST(SnapshotFileTest, TrailingBytesAreDetected) {
  const std::string f = EncodeSnapshotFile(MakeSnapshot(77, 4, "data"));
  for (const std::string& extra : {std::string(1, '\0'), std::string("garbage")}) {
    EXPECT_FALSE(DecodeSnapshotFile(f + extra).ok());
  }
}

TEST(SnapshotFileTest, EverySingleBitFlipIsDetected) {
  const std::string f = EncodeSnapshotFile(MakeSnapshot(77, 4, "small image"));
  for (size_t i = 0; i < f.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      std::string d = f;
      d[i] = static_cast<char>(d[i] ^ (1 << b));
      Result<raft::Snapshot> got = DecodeSnapshotFile(d);
      ASSERT_FALSE(got.ok()) << "byte " << i << " bit " << b;
      EXPECT_EQ(got.status().code(), ErrorCode::kCorruption);
    }
  }
}

TEST(SnapshotFileTest, RandomMultiByteDamageIsDetected) {
  Rng rng(31337);
  const std::string f = EncodeSnapshotFile(MakeSnapshot(500, 9, RandomBytes(rng, 64 << 10)));
  for (int iter = 0; iter < 200; ++iter) {
    std::string d = f;
    const int flips = static_cast<int>(rng.Range(1, 8));
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng.Uniform(d.size());
      d[at] = static_cast<char>(d[at] ^ static_cast<char>(rng.Range(1, 255)));
    }
    if (d == f) continue;
    ASSERT_FALSE(DecodeSnapshotFile(d).ok()) << "iteration " << iter;
  }
}

// Each structural check, reached with a valid checksum.

TEST(SnapshotFileTest, BadMagic) {
  std::string f = EncodeSnapshotFile(MakeSnapshot(1, 1, "x"));
  f[0] = 'X';
  Result<raft::Snapshot> got = DecodeSnapshotFile(f);
  EXPECT_TRUE(Contains(got.status().message(), "bad magic")) << got.status().ToString();
}

TEST(SnapshotFileTest, UnsupportedVersion) {
  Result<raft::Snapshot> got = DecodeSnapshotFile(BuildFile(2, Meta(1, 1, {1}, 1), 36, "d", 1));
  EXPECT_EQ(got.status().code(), ErrorCode::kCorruption);
  EXPECT_TRUE(Contains(got.status().message(), "unsupported snapshot version 2"));
}

TEST(SnapshotFileTest, MetadataLengthPastTheFile) {
  Result<raft::Snapshot> got = DecodeSnapshotFile(BuildFile(1, Meta(1, 1, {1}, 1), 1000, "d", 1));
  EXPECT_TRUE(Contains(got.status().message(), "metadata runs past the file"))
      << got.status().ToString();
}

TEST(SnapshotFileTest, DataLengthMismatch) {
  Result<raft::Snapshot> got = DecodeSnapshotFile(BuildFile(1, Meta(1, 1, {1}, 1), 36, "d", 2));
  EXPECT_TRUE(Contains(got.status().message(), "data length mismatch")) << got.status().ToString();
}

TEST(SnapshotFileTest, MemberCountPastTheMetadata) {
  Result<raft::Snapshot> got = DecodeSnapshotFile(BuildFile(1, Meta(1, 1, {1}, 2), 36, "d", 1));
  EXPECT_TRUE(Contains(got.status().message(), "malformed snapshot metadata"))
      << got.status().ToString();
}

TEST(SnapshotFileTest, ImpossibleMemberCount) {
  Result<raft::Snapshot> got =
      DecodeSnapshotFile(BuildFile(1, Meta(1, 1, {}, 0xFFFFFFFFu), 28, "", 0));
  EXPECT_TRUE(Contains(got.status().message(), "malformed snapshot metadata"))
      << got.status().ToString();
}

TEST(SnapshotFileTest, TrailingBytesInTheMetadata) {
  std::string meta = Meta(1, 1, {1}, 1) + "zz";
  Result<raft::Snapshot> got = DecodeSnapshotFile(BuildFile(1, meta, 38, "d", 1));
  EXPECT_TRUE(Contains(got.status().message(), "malformed snapshot metadata"))
      << got.status().ToString();
}

TEST(SnapshotFileTest, HandBuiltFileDecodes) {
  // The checks above reject only the damaged field: the same builder with
  // consistent fields gives a valid file.
  Result<raft::Snapshot> got = DecodeSnapshotFile(BuildFile(1, Meta(8, 2, {1}, 1), 36, "d", 1));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->metadata.index, Index(8));
  EXPECT_EQ(got->metadata.conf_state.voters, std::vector<NodeId>{NodeId(1)});
}

// ---------------------------------------------------------------------------
// File names.

TEST(SnapshotFileTest, NameRoundTripsAndRejectsOthers) {
  const std::string n = SnapshotFileName(Term(0x2a), Index(0x1000));
  EXPECT_EQ(n, "000000000000002a-0000000000001000.snap");
  Term t;
  Index i;
  ASSERT_TRUE(ParseSnapshotFileName(n, &t, &i));
  EXPECT_EQ(t, Term(0x2a));
  EXPECT_EQ(i, Index(0x1000));
  for (const char* bad : {"", "x.snap", "000000000000002a-0000000000001000.snap.tmp",
                          "000000000000002a-0000000000001000.wal", "incoming-1.snap.tmp",
                          "000000000000002a_0000000000001000.snap"}) {
    EXPECT_FALSE(ParseSnapshotFileName(bad, &t, &i)) << bad;
  }
}

// ---------------------------------------------------------------------------
// Streaming writer and reader.

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SnapshotFileWriterTest, RandomChunksProduceTheSameFile) {
  Rng rng(2024);
  for (int iter = 0; iter < 20; ++iter) {
    TempDir tmp;
    const raft::Snapshot s = MakeSnapshot(100 + iter, 3, RandomBytes(rng, rng.Uniform(100000)));
    const std::string encoded = EncodeSnapshotFile(s);
    auto w = SnapshotFileWriter::Create(Env::Default(), tmp.path());
    ASSERT_TRUE(w.ok());
    for (size_t at = 0; at < encoded.size();) {
      const size_t n = std::min<size_t>(encoded.size() - at, rng.Range(1, 9000));
      ASSERT_TRUE((*w)->Append(std::string_view(encoded).substr(at, n)).ok());
      at += n;
    }
    Result<raft::Snapshot> done = (*w)->Finish();
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    ExpectSameSnapshot(*done, s);
    const std::string name = SnapshotFileName(s.metadata.term, s.metadata.index);
    EXPECT_EQ(Names(tmp.path()), std::vector<std::string>{name});
    EXPECT_EQ(ReadFileOrDie(tmp.Sub(name)), encoded);
    w->reset();
    EXPECT_EQ(Names(tmp.path()), std::vector<std::string>{name});  // destruction keeps it
  }
}

TEST(SnapshotFileWriterTest, DamagedStreamIsRefusedAndLeavesNoFile) {
  Rng rng(7);
  const std::string encoded = EncodeSnapshotFile(MakeSnapshot(10, 2, RandomBytes(rng, 5000)));
  for (int iter = 0; iter < 20; ++iter) {
    TempDir tmp;
    std::string damaged = encoded;
    if (iter % 2 == 0) {
      damaged[rng.Uniform(damaged.size())] ^= 0x10;
    } else {
      damaged.resize(rng.Uniform(damaged.size()));  // the sender stopped early
    }
    {
      auto w = SnapshotFileWriter::Create(Env::Default(), tmp.path());
      ASSERT_TRUE(w.ok());
      ASSERT_TRUE((*w)->Append(damaged.substr(0, damaged.size() / 2)).ok());
      ASSERT_TRUE((*w)->Append(damaged.substr(damaged.size() / 2)).ok());
      Result<raft::Snapshot> done = (*w)->Finish();
      EXPECT_EQ(done.status().code(), ErrorCode::kCorruption);
      // Nothing under a final name, at any point.
      for (const std::string& n : Names(tmp.path())) {
        Term t;
        Index i;
        EXPECT_FALSE(ParseSnapshotFileName(n, &t, &i)) << n;
      }
    }
    EXPECT_TRUE(Names(tmp.path()).empty());  // the temporary file went with the writer
  }
}

TEST(SnapshotFileWriterTest, AbandonedWriterRemovesItsTemporaryFile) {
  TempDir tmp;
  {
    auto w = SnapshotFileWriter::Create(Env::Default(), tmp.path());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("WRDNSNAP partial").ok());
    EXPECT_EQ(Names(tmp.path()).size(), 1u);
  }
  EXPECT_TRUE(Names(tmp.path()).empty());
}

TEST(SnapshotFileWriterTest, FailedWriteIsNeverFinished) {
  // A chunk that did not reach the disk (ENOSPC after a short write) must not
  // be renamed into place even though the bytes received are a valid file.
  TempDir tmp;
  testing::FaultInjectionEnv env;
  const std::string encoded = EncodeSnapshotFile(MakeSnapshot(10, 2, std::string(4000, 'q')));
  auto w = SnapshotFileWriter::Create(&env, tmp.path());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(encoded.substr(0, 1000)).ok());
  env.FailAppends(testing::NoSpaceError(), 0, /*partial=*/true);
  EXPECT_EQ((*w)->Append(encoded.substr(1000)).code(), ErrorCode::kNoSpace);
  env.ClearFaults();
  Result<raft::Snapshot> done = (*w)->Finish();
  EXPECT_FALSE(done.ok());
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub(SnapshotFileName(Term(2), Index(10)))));
  w->reset();
  EXPECT_TRUE(Names(tmp.path()).empty());
}

TEST(SnapshotFileWriterTest, FailedSyncIsReportedAndLeavesNoFile) {
  TempDir tmp;
  testing::FaultInjectionEnv env;
  auto w = SnapshotFileWriter::Create(&env, tmp.path());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(EncodeSnapshotFile(MakeSnapshot(3, 1, "abc"))).ok());
  env.FailSyncs(testing::IoErrorStatus());
  EXPECT_EQ((*w)->Finish().status().code(), ErrorCode::kIoError);
  w->reset();
  EXPECT_TRUE(Names(tmp.path()).empty());
}

TEST(SnapshotFileReaderTest, StreamsTheFileBackInChunks) {
  TempDir tmp;
  Rng rng(3);
  const raft::Snapshot s = MakeSnapshot(42, 5, RandomBytes(rng, 50000));
  SnapshotStore store(Env::Default(), tmp.path());
  ASSERT_TRUE(store.Save(s).ok());
  auto r = SnapshotFileReader::Open(Env::Default(), tmp.Sub(SnapshotFileName(Term(5), Index(42))));
  ASSERT_TRUE(r.ok());
  std::string all, chunk;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*r)->Next(4096, &chunk).ok());
    if (chunk.empty()) break;
    EXPECT_LE(chunk.size(), 4096u);
    all += chunk;
  }
  EXPECT_EQ(all, EncodeSnapshotFile(s));
}

// ---------------------------------------------------------------------------
// The snapshot directory.

TEST(SnapshotStoreTest, SaveListLoadPrune) {
  TempDir tmp;
  SnapshotStore store(Env::Default(), tmp.Sub("snap"));
  ASSERT_TRUE(store.Init().ok());
  ASSERT_TRUE(store.Init().ok());  // idempotent
  for (uint64_t i : {30, 10, 20, 40}) {
    ASSERT_TRUE(store.Save(MakeSnapshot(i, i / 10, "image " + std::to_string(i))).ok());
  }
  Result<std::vector<std::string>> names = store.List();
  ASSERT_TRUE(names.ok());
  ASSERT_EQ(names->size(), 4u);
  // Newest (highest index) first.
  EXPECT_EQ((*names)[0], SnapshotFileName(Term(4), Index(40)));
  EXPECT_EQ((*names)[3], SnapshotFileName(Term(1), Index(10)));
  Result<raft::Snapshot> s = store.Load((*names)[1]);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->metadata.index, Index(30));
  EXPECT_EQ(s->data, "image 30");

  ASSERT_TRUE(store.Prune(2).ok());
  names = store.List();
  ASSERT_EQ(names->size(), 2u);
  EXPECT_EQ((*names)[0], SnapshotFileName(Term(4), Index(40)));
  EXPECT_EQ((*names)[1], SnapshotFileName(Term(3), Index(30)));
  ASSERT_TRUE(store.Prune(5).ok());  // fewer than keep: nothing to do
  EXPECT_EQ(store.List()->size(), 2u);
}

TEST(SnapshotStoreTest, ListIgnoresTemporaryAndStrayFiles) {
  TempDir tmp;
  SnapshotStore store(Env::Default(), tmp.path());
  ASSERT_TRUE(store.Save(MakeSnapshot(5, 1, "x")).ok());
  testing::WriteFileOrDie(tmp.Sub("incoming-9.snap.tmp"), "partial");
  testing::WriteFileOrDie(tmp.Sub("notes.txt"), "hello");
  Result<std::vector<std::string>> names = store.List();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{SnapshotFileName(Term(1), Index(5))});
}

TEST(SnapshotStoreTest, LoadReportsDamageWithThePath) {
  TempDir tmp;
  SnapshotStore store(Env::Default(), tmp.path());
  ASSERT_TRUE(store.Save(MakeSnapshot(5, 1, "some data")).ok());
  const std::string name = SnapshotFileName(Term(1), Index(5));
  testing::FlipBit(tmp.Sub(name), 30, 2);
  Result<raft::Snapshot> s = store.Load(name);
  EXPECT_EQ(s.status().code(), ErrorCode::kCorruption);
  EXPECT_TRUE(Contains(s.status().message(), tmp.Sub(name))) << s.status().message();
}

TEST(SnapshotStoreTest, LoadRefusesAFileWhoseNameDisagreesWithItsContents) {
  TempDir tmp;
  SnapshotStore store(Env::Default(), tmp.path());
  ASSERT_TRUE(store.Save(MakeSnapshot(5, 1, "x")).ok());
  const std::string wrong = SnapshotFileName(Term(1), Index(6));
  std::filesystem::rename(tmp.Sub(SnapshotFileName(Term(1), Index(5))), tmp.Sub(wrong));
  Result<raft::Snapshot> s = store.Load(wrong);
  EXPECT_EQ(s.status().code(), ErrorCode::kCorruption);
  EXPECT_TRUE(Contains(s.status().message(), "name does not match")) << s.status().message();
}

TEST(SnapshotStoreTest, SaveFailsCleanlyWhenTheDiskIsFull) {
  TempDir tmp;
  testing::FaultInjectionEnv env;
  SnapshotStore store(&env, tmp.path());
  env.FailAppends(testing::NoSpaceError());
  EXPECT_EQ(store.Save(MakeSnapshot(5, 1, "x")).code(), ErrorCode::kNoSpace);
  EXPECT_TRUE(Names(tmp.path()).empty());
  EXPECT_TRUE(store.List()->empty());
}

}  // namespace
}  // namespace warden::storage

// The crash test. A forked child opens a LogStore, appends entries whose
// bytes are a function of their index, syncs, and after every sync writes the
// durable index to a pipe. The parent reads the pipe (its only way of knowing
// what is durable), SIGKILLs the child at a seeded random point, reaps it,
// and reopens the store:
//   - every index the child reported is there, with the right bytes (or is
//     covered by a snapshot whose contents are right for its index);
//   - entries after the last report are either absent or exactly right;
//   - after the last record the segment holds only zeros (no garbage);
//   - the hard state saved with the last report is there.
// The next round's child continues from whatever the parent recovered.
// Small segments and frequent snapshots make the kills land during rotations,
// compactions and segment releases too. Everything is bounded by a round count
// and a wall-time budget; the pipe is the only synchronization.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/base/random.h"
#include "src/storage/log_store.h"
#include "tests/unit/storage_test_util.h"

namespace warden::storage {
namespace {

using testing::EntryData;
using testing::TempDir;

constexpr int kRounds = 20;
constexpr auto kTimeBudget = std::chrono::seconds(30);
constexpr int kPollTimeoutMs = 20000;  // a child that says nothing for this long is hung
constexpr uint64_t kSnapshotEvery = 150;
constexpr int kChildMaxBatches = 20000;
const raft::ConfState kConf{{NodeId(1), NodeId(2), NodeId(3)}, {}, {}};

LogStoreOptions CrashOptions() {
  LogStoreOptions o;
  o.wal.segment_bytes = 64 << 10;
  o.keep_snapshots = 1;
  o.keep_entries_after_snapshot = 40;
  return o;
}

// The bytes of entry `index`: mostly small, now and then large enough that
// one write spans several pages (a kill can cut it short).
std::string Data(uint64_t index) { return EntryData(index, 17, index % 61 == 0 ? 20000 : 0); }

raft::Entry Expected(uint64_t index) {
  return raft::Entry{Term(1), Index(index), raft::EntryType::kNormal, Data(index)};
}

// A snapshot's image: a digest of every entry it covers, cheap to recompute.
std::string SnapshotData(uint64_t index) {
  uint64_t sum = 0;
  for (uint64_t i = 1; i <= index; ++i) sum += (i * 0x9e3779b97f4a7c15ULL) ^ (i >> 3);
  return "through " + std::to_string(index) + " digest " + std::to_string(sum);
}

// Runs in the forked child; never returns. Exit codes other than death by
// SIGKILL tell the parent what went wrong.
[[noreturn]] void ChildMain(const std::string& dir, int report_fd, uint64_t seed) {
  Result<std::unique_ptr<LogStore>> opened = LogStore::Open(Env::Default(), dir, CrashOptions());
  if (!opened.ok()) {
    std::fprintf(stderr, "child: open failed: %s\n", opened.status().ToString().c_str());
    _exit(2);
  }
  LogStore& store = **opened;
  Rng rng(seed);
  uint64_t last = store.LastIndex().value();
  for (int batch = 0; batch < kChildMaxBatches; ++batch) {
    std::vector<raft::Entry> entries;
    const uint64_t n = rng.Range(1, 24);
    for (uint64_t i = 0; i < n; ++i) entries.push_back(Expected(last + 1 + i));
    last += n;
    Status s = store.Save(std::nullopt, entries, raft::HardState{Term(1), NodeId(1), Index(last)},
                          /*sync=*/true);
    if (!s.ok()) {
      std::fprintf(stderr, "child: save failed: %s\n", s.ToString().c_str());
      _exit(3);
    }
    const uint64_t snap = store.GetSnapshot()->metadata.index.value();
    if (last - snap >= kSnapshotEvery) {
      const uint64_t at = last - rng.Range(0, 10);
      s = store.CreateSnapshot(Index(at), kConf, SnapshotData(at));
      if (!s.ok()) {
        std::fprintf(stderr, "child: snapshot failed: %s\n", s.ToString().c_str());
        _exit(4);
      }
    }
    // Durable: tell the parent.
    if (::write(report_fd, &last, sizeof last) != static_cast<ssize_t>(sizeof last)) _exit(0);
  }
  _exit(0);
}

struct RoundResult {
  uint64_t last_reported = 0;
  int reports = 0;
};

// Forks the child, reads `kill_after` reports, kills it, drains the pipe and
// reaps it. Reports that arrive after the kill were durable too.
RoundResult RunChild(const std::string& dir, uint64_t seed, int kill_after) {
  RoundResult out;
  int fds[2];
  WARDEN_CHECK(::pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  WARDEN_CHECK(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ChildMain(dir, fds[1], seed);
  }
  ::close(fds[1]);
  bool killed = false;
  for (;;) {
    if (!killed && out.reports >= kill_after) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, kPollTimeoutMs);
    if (ready == 0) {
      ADD_FAILURE() << "child silent for " << kPollTimeoutMs << " ms; killing it";
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    uint64_t index = 0;
    const ssize_t got = ::read(fds[0], &index, sizeof index);
    if (got == 0) break;  // EOF: the child is gone
    if (got < 0 && errno == EINTR) continue;
    // Eight-byte writes to a pipe are atomic, so reads come whole.
    if (got != static_cast<ssize_t>(sizeof index)) {
      ADD_FAILURE() << "short read from the pipe: " << got;
      break;
    }
    EXPECT_GT(index, out.last_reported) << "reports must increase";
    out.last_reported = index;
    ++out.reports;
  }
  ::close(fds[0]);
  int status = 0;
  WARDEN_CHECK(::waitpid(pid, &status, 0) == pid);
  const bool by_kill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  const bool clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  EXPECT_TRUE(by_kill || clean_exit) << "child status " << status << " (exit "
                                     << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ")";
  return out;
}

// Reopens the store and checks everything the header comment promises.
// Returns the number of torn tails recovery reported.
void Verify(const std::string& dir, uint64_t durable, int* torn) {
  Result<std::unique_ptr<LogStore>> opened = LogStore::Open(Env::Default(), dir, CrashOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const LogStore& store = **opened;
  for (const std::string& note : store.recovery_notes()) {
    if (testing::Contains(note, "torn")) ++*torn;
  }
  const uint64_t first = store.FirstIndex().value();
  const uint64_t last = store.LastIndex().value();
  ASSERT_GE(last, durable) << "a reported index is missing";
  Result<raft::Snapshot> snap = store.GetSnapshot();
  ASSERT_TRUE(snap.ok());
  const uint64_t snap_index = snap->metadata.index.value();
  if (snap_index > 0) {
    EXPECT_EQ(snap->data, SnapshotData(snap_index)) << "snapshot at " << snap_index;
    EXPECT_EQ(snap->metadata.conf_state, kConf);
  }
  ASSERT_LE(first, snap_index + 1) << "entries between the snapshot and the log are missing";
  if (last >= first) {
    Result<std::vector<raft::Entry>> got = store.Entries(Index(first), Index(last + 1), UINT64_MAX);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->size(), last - first + 1);
    for (uint64_t i = first; i <= last; ++i) {
      // Reported or not, an entry that is there has exactly its bytes.
      ASSERT_EQ((*got)[i - first], Expected(i))
          << "entry " << i << " (last reported " << durable << ")";
    }
  }
  EXPECT_GE(store.hard_state().commit.value(), durable);
  EXPECT_LE(store.hard_state().commit.value(), last);
  // No garbage after the last record of the segment being written.
  const std::vector<std::string> segs = testing::SegmentPaths(dir + "/wal");
  ASSERT_FALSE(segs.empty());
  const std::string bytes = testing::ReadFileOrDie(segs.back());
  const size_t end = testing::LayoutOf(segs.back()).end;
  EXPECT_EQ(bytes.find_first_not_of('\0', end), std::string::npos)
      << "garbage after the last record of " << segs.back() << " at " << end;
}

TEST(StorageCrashTest, SigkillAtRandomPointsLosesNothingReported) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  Rng rng(0x5EED0C4A5);
  const auto start = std::chrono::steady_clock::now();
  uint64_t durable = 0;
  int torn = 0, rounds = 0;
  for (; rounds < kRounds; ++rounds) {
    if (std::chrono::steady_clock::now() - start > kTimeBudget) break;
    SCOPED_TRACE("round " + std::to_string(rounds));
    // Sometimes right away, sometimes after many syncs.
    const int kill_after = static_cast<int>(rng.Chance(0.2) ? rng.Range(0, 2) : rng.Range(3, 80));
    RoundResult r = RunChild(dir, rng.Next(), kill_after);
    ASSERT_FALSE(::testing::Test::HasFailure());
    durable = std::max(durable, r.last_reported);
    ASSERT_NO_FATAL_FAILURE(Verify(dir, durable, &torn));
  }
  std::printf("crash test: %d rounds, last durable index %llu, %d torn tails cut\n", rounds,
              static_cast<unsigned long long>(durable), torn);
  EXPECT_GE(rounds, 5) << "the time budget allowed too few rounds to mean much";
}

}  // namespace
}  // namespace warden::storage

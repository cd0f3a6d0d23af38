// Benchmarks of the WAL's durable append path, printed beside the disk's raw
// fdatasync latency, which is the physical limit of any synced append:
//
//   BM_RawFdatasync/100          pwrite 100 B + fdatasync on a preallocated file
//   BM_WalAppendSync/size/batch  `batch` entries of `size` bytes, then one Sync
//   BM_WalAppendNoSync/size/batch  the same without the sync (CPU cost of framing)
//   BM_GroupCommit/threads:N     N threads, each appending one 100 B entry and
//                                waiting until it is durable
//
// Items are entries: items_per_second is entries/s. Targets (issue "Tests and
// measurements"): BM_WalAppendSync/100/1 within 1.5x of BM_RawFdatasync/100;
// at least 200,000 100-byte entries/s at the best batch size.
//
// Files go to $WARDEN_BENCH_DIR, else /var/tmp: it must be the real disk, not
// tmpfs (a warning is printed if it is). Run with --benchmark_repetitions=3
// to see the noise; bench/RESULTS.md records the figures.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "src/storage/group_commit.h"
#include "src/storage/wal.h"

namespace warden::storage {
namespace {

constexpr uint64_t kSegmentBytes = 64ull << 20;

std::string BaseDir() {
  const char* d = std::getenv("WARDEN_BENCH_DIR");
  return d != nullptr ? d : "/var/tmp";
}

// A fresh directory under BaseDir(), removed with its contents on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = BaseDir() + "/warden-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror(("mkdtemp " + tmpl).c_str());
      std::abort();
    }
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Payload(size_t size) {
  std::string s(size, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (char& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

void BM_RawFdatasync(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  ScratchDir dir;
  const std::string path = dir.path() + "/raw";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ::posix_fallocate(fd, 0, static_cast<off_t>(kSegmentBytes)) != 0) {
    state.SkipWithError("cannot create the preallocated file");
    return;
  }
  const std::string buf = Payload(size);
  uint64_t offset = 0;
  for (auto _ : state) {
    if (::pwrite(fd, buf.data(), size, static_cast<off_t>(offset)) != static_cast<ssize_t>(size) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write or fdatasync failed");
      break;
    }
    offset += size;
    if (offset + size > kSegmentBytes) offset = 0;
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
}
BENCHMARK(BM_RawFdatasync)->Arg(100)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Shared by the append benchmarks: a Wal in a scratch directory and a batch
// of entries whose data is built once (only the indexes change).
struct AppendFixture {
  explicit AppendFixture(benchmark::State& state)
      : size(static_cast<size_t>(state.range(0))), batch(static_cast<size_t>(state.range(1))) {
    RecoveredWal rw;
    Result<std::unique_ptr<Wal>> w =
        Wal::Open(Env::Default(), dir.path(), WalOptions{kSegmentBytes}, &rw);
    if (!w.ok()) {
      state.SkipWithError(w.status().ToString().c_str());
      return;
    }
    wal = std::move(w).value();
    const std::string data = Payload(size);
    entries.assign(batch, raft::Entry{Term(1), Index(0), raft::EntryType::kNormal, data});
  }
  // Appends the next batch; returns false (after reporting) on an error.
  bool Append(benchmark::State& state) {
    for (raft::Entry& e : entries) e.index = Index(++last);
    Status s = wal->AppendEntries(entries);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return false;
    }
    return true;
  }
  // Keeps the disk footprint to two segments, outside the timed region.
  void ReleaseOld(benchmark::State& state) {
    if (wal->segment_count() <= 2) return;
    state.PauseTiming();
    Status s = wal->ReleaseTo(Index(last));
    state.ResumeTiming();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  void Report(benchmark::State& state) const {
    const auto n = static_cast<int64_t>(state.iterations() * batch);
    state.SetItemsProcessed(n);
    state.SetBytesProcessed(n * static_cast<int64_t>(size));
  }

  ScratchDir dir;
  size_t size;
  size_t batch;
  std::unique_ptr<Wal> wal;
  std::vector<raft::Entry> entries;
  uint64_t last = 0;
};

void BM_WalAppendSync(benchmark::State& state) {
  AppendFixture f(state);
  if (!f.wal) return;
  for (auto _ : state) {
    if (!f.Append(state)) break;
    if (Status s = f.wal->Sync(); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    f.ReleaseOld(state);
  }
  f.Report(state);
}
BENCHMARK(BM_WalAppendSync)
    ->ArgNames({"size", "batch"})
    ->ArgsProduct({{100, 1024, 65536}, {1, 8, 64, 256, 1024}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_WalAppendNoSync(benchmark::State& state) {
  AppendFixture f(state);
  if (!f.wal) return;
  for (auto _ : state) {
    if (!f.Append(state)) break;
    f.ReleaseOld(state);
  }
  f.Report(state);
}
BENCHMARK(BM_WalAppendNoSync)
    ->ArgNames({"size", "batch"})
    ->Args({100, 1})
    ->Args({100, 1024})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// One committer shared by the benchmark's threads, set up and torn down by
// thread 0 (Google Benchmark starts and stops the threads' loops together).
struct GroupCommitShared {
  ScratchDir dir;
  std::unique_ptr<Wal> wal;
  std::unique_ptr<GroupCommitter> gc;
  std::mutex mu;  // orders index assignment with submission
  uint64_t last = 0;
};
GroupCommitShared* g_shared = nullptr;

void BM_GroupCommit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_shared = new GroupCommitShared;
    RecoveredWal rw;
    Result<std::unique_ptr<Wal>> w =
        Wal::Open(Env::Default(), g_shared->dir.path(), WalOptions{kSegmentBytes}, &rw);
    if (!w.ok()) std::abort();
    g_shared->wal = std::move(w).value();
    g_shared->gc = std::make_unique<GroupCommitter>(g_shared->wal.get());
  }
  const std::string data = Payload(100);
  for (auto _ : state) {
    std::promise<Status> done;
    std::future<Status> result = done.get_future();
    {
      std::lock_guard<std::mutex> lock(g_shared->mu);
      const Index index(++g_shared->last);
      g_shared->gc->Submit({raft::Entry{Term(1), index, raft::EntryType::kNormal, data}},
                           std::nullopt, [&done](const Status& s) { done.set_value(s); });
    }
    if (Status s = result.get(); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    const double syncs = static_cast<double>(g_shared->gc->syncs());
    const double appends = static_cast<double>(g_shared->gc->appends());
    state.counters["entries_per_sync"] = syncs > 0 ? appends / syncs : 0;
    g_shared->gc.reset();
    g_shared->wal.reset();
    delete g_shared;
    g_shared = nullptr;
  }
}
BENCHMARK(BM_GroupCommit)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

std::string FileSystemOf(const std::string& dir) {
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) != 0) return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case EXT4_SUPER_MAGIC: return "ext2/3/4";
    case TMPFS_MAGIC: return "tmpfs";
    case 0x58465342: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(st.f_type));
      return buf;
    }
  }
}

}  // namespace
}  // namespace warden::storage

int main(int argc, char** argv) {
  using warden::storage::BaseDir;
  using warden::storage::FileSystemOf;
  const std::string fs = FileSystemOf(BaseDir());
  benchmark::AddCustomContext("data_dir", BaseDir());
  benchmark::AddCustomContext("filesystem", fs);
  if (fs == "tmpfs") {
    std::fprintf(stderr,
                 "WARNING: %s is tmpfs; fdatasync is free there. Set WARDEN_BENCH_DIR to a "
                 "directory on the disk.\n",
                 BaseDir().c_str());
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// GroupCommitter (group_commit.h): many submitters, one fdatasync per round.
// The tests that need a sync to be "in flight" hold it there with the
// FaultInjectionEnv's sync hook and release it when the submissions they want
// batched are queued; nothing waits on the clock.
#include "src/storage/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tests/unit/fault_injection_env.h"
#include "tests/unit/storage_test_util.h"

namespace warden::storage {
namespace {

using testing::EntryData;
using testing::MakeEntry;
using testing::TempDir;

// A safety net only: every wait below ends when its condition is observed.
constexpr auto kWaitBound = std::chrono::seconds(60);

// Counts callbacks and remembers their statuses, in the order they ran.
class Callbacks {
 public:
  GroupCommitter::Done Make(int id) {
    return [this, id](const Status& s) {
      std::lock_guard<std::mutex> lock(mu_);
      order_.push_back(id);
      statuses_.push_back(s);
      cv_.notify_all();
    };
  }
  // Returns false if the bound passed first (a hang, reported by the caller).
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWaitBound, [&] { return statuses_.size() >= n; });
  }
  std::vector<Status> statuses() const {
    std::lock_guard<std::mutex> lock(mu_);
    return statuses_;
  }
  std::vector<int> order() const {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> order_;
  std::vector<Status> statuses_;
};

// Holds the first file sync until Release(); later syncs pass straight through.
class SyncGate {
 public:
  void Install(testing::FaultInjectionEnv* env) {
    env->SetSyncHook([this] {
      std::unique_lock<std::mutex> lock(mu_);
      if (used_) return;
      used_ = true;
      in_sync_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return released_; });
    });
  }
  bool WaitUntilInSync() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWaitBound, [this] { return in_sync_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool used_ = false;
  bool in_sync_ = false;
  bool released_ = false;
};

// Hands out log indexes and submits under one lock, so that the WAL sees
// entries in index order however the submitting threads interleave.
class Submitter {
 public:
  explicit Submitter(GroupCommitter* gc) : gc_(gc) {}
  uint64_t Submit(Callbacks* cbs, int id, bool with_hard_state = false) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t index = ++last_;
    std::optional<raft::HardState> hs;
    if (with_hard_state) hs = raft::HardState{Term(1), NodeId(1), Index(index)};
    gc_->Submit({MakeEntry(1, index, EntryData(index))}, hs, cbs->Make(id));
    return index;
  }

 private:
  GroupCommitter* gc_;
  std::mutex mu_;
  uint64_t last_ = 0;
};

class GroupCommitTest : public ::testing::Test {
 protected:
  std::unique_ptr<Wal> OpenWal(RecoveredWal* rw) {
    Result<std::unique_ptr<Wal>> w = Wal::Open(&env_, tmp_.path(), WalOptions{1 << 20}, rw);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(w).value() : nullptr;
  }
  void ExpectDurable(uint64_t n) {
    RecoveredWal rw;
    auto wal = OpenWal(&rw);
    ASSERT_EQ(rw.entries.size(), n);
    for (uint64_t i = 1; i <= n; ++i) {
      ASSERT_EQ(rw.entries[i - 1], MakeEntry(1, i, EntryData(i))) << "entry " << i;
    }
  }

  TempDir tmp_;
  testing::FaultInjectionEnv env_;
};

TEST_F(GroupCommitTest, ManyThreadsAllCallbacksSucceedAndEveryEntryIsDurable) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  RecoveredWal rw;
  auto wal = OpenWal(&rw);
  Callbacks cbs;
  uint64_t syncs = 0, appends = 0;
  {
    GroupCommitter gc(wal.get());
    Submitter sub(&gc);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) sub.Submit(&cbs, t * kPerThread + i, i % 7 == 0);
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_TRUE(cbs.WaitFor(kThreads * kPerThread)) << "callbacks did not all run";
    syncs = gc.syncs();
    appends = gc.appends();
  }
  for (const Status& s : cbs.statuses()) ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(appends, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LE(syncs, appends);
  EXPECT_GE(syncs, 1u);
  std::printf("%llu submissions covered by %llu syncs\n", static_cast<unsigned long long>(appends),
              static_cast<unsigned long long>(syncs));
  wal.reset();
  ExpectDurable(kThreads * kPerThread);
}

TEST_F(GroupCommitTest, SubmissionsDuringASyncShareTheNextSync) {
  SyncGate gate;
  gate.Install(&env_);
  RecoveredWal rw;
  auto wal = OpenWal(&rw);
  Callbacks cbs;
  {
    GroupCommitter gc(wal.get());
    Submitter sub(&gc);
    sub.Submit(&cbs, 0);
    ASSERT_TRUE(gate.WaitUntilInSync());
    // While the first sync is in flight, four threads queue 5 appends each.
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 5; ++i) sub.Submit(&cbs, 1 + t * 5 + i);
      });
    }
    for (auto& th : threads) th.join();
    gate.Release();
    ASSERT_TRUE(cbs.WaitFor(21));
    // One sync for the first append, one for the twenty queued behind it.
    EXPECT_EQ(gc.syncs(), 2u);
    EXPECT_EQ(gc.appends(), 21u);
    EXPECT_LT(gc.syncs(), gc.appends());
  }
  for (const Status& s : cbs.statuses()) EXPECT_TRUE(s.ok()) << s.ToString();
  wal.reset();
  ExpectDurable(21);
}

TEST_F(GroupCommitTest, SyncFailureReachesEveryCallbackOfThatBatchAndStays) {
  SyncGate gate;
  gate.Install(&env_);
  RecoveredWal rw;
  auto wal = OpenWal(&rw);
  Callbacks cbs;
  {
    GroupCommitter gc(wal.get());
    Submitter sub(&gc);
    sub.Submit(&cbs, 0);
    ASSERT_TRUE(gate.WaitUntilInSync());
    // The sync in flight succeeds; the next one (the batch below) fails.
    env_.FailSyncs(testing::IoErrorStatus(), /*ok_before=*/1);
    for (int i = 1; i <= 5; ++i) sub.Submit(&cbs, i);
    gate.Release();
    ASSERT_TRUE(cbs.WaitFor(6));
    env_.ClearFaults();
    // The Wal stays failed: a later submission is refused too.
    sub.Submit(&cbs, 6);
    ASSERT_TRUE(cbs.WaitFor(7));
  }
  const std::vector<Status> st = cbs.statuses();
  const std::vector<int> order = cbs.order();
  ASSERT_EQ(st.size(), 7u);
  for (size_t i = 0; i < st.size(); ++i) {
    if (order[i] == 0) {
      EXPECT_TRUE(st[i].ok()) << st[i].ToString();
    } else {
      EXPECT_EQ(st[i].code(), ErrorCode::kIoError) << "callback " << order[i];
    }
  }
  EXPECT_EQ(wal->Sync().code(), ErrorCode::kIoError) << "success reported after a failed sync";
}

TEST_F(GroupCommitTest, AppendFailureIsReportedToTheBatch) {
  RecoveredWal rw;
  auto wal = OpenWal(&rw);
  Callbacks cbs;
  env_.FailAppends(testing::NoSpaceError());
  {
    GroupCommitter gc(wal.get());
    Submitter sub(&gc);
    for (int i = 0; i < 10; ++i) sub.Submit(&cbs, i);
    ASSERT_TRUE(cbs.WaitFor(10));
  }
  for (const Status& s : cbs.statuses()) EXPECT_EQ(s.code(), ErrorCode::kNoSpace);
}

TEST_F(GroupCommitTest, CallbacksRunInSubmissionOrder) {
  RecoveredWal rw;
  auto wal = OpenWal(&rw);
  Callbacks cbs;
  {
    GroupCommitter gc(wal.get());
    Submitter sub(&gc);
    for (int i = 0; i < 200; ++i) sub.Submit(&cbs, i);
    ASSERT_TRUE(cbs.WaitFor(200));
  }
  const std::vector<int> order = cbs.order();
  for (int i = 0; i < 200; ++i) ASSERT_EQ(order[i], i);
}

TEST_F(GroupCommitTest, DestructorFinishesEverySubmission) {
  RecoveredWal rw;
  auto wal = OpenWal(&rw);
  Callbacks cbs;
  {
    GroupCommitter gc(wal.get());
    Submitter sub(&gc);
    for (int i = 0; i < 100; ++i) sub.Submit(&cbs, i);
    // No wait: the destructor must drain the queue before it returns.
  }
  EXPECT_EQ(cbs.statuses().size(), 100u);
  for (const Status& s : cbs.statuses()) EXPECT_TRUE(s.ok());
  wal.reset();
  ExpectDurable(100);
}

}  // namespace
}  // namespace warden::storage

#include "src/server/node_host.h"

#include <malloc.h>

#include <chrono>

namespace warden::server {

void LogStoreDurableLog::Persist(const std::optional<raft::Snapshot>& snapshot,
                                 const std::vector<raft::Entry>& entries,
                                 const std::optional<raft::HardState>& hard_state, bool sync,
                                 std::function<void(const Status&)> done) {
  const auto start = std::chrono::steady_clock::now();
  bool real_sync = sync;
  if (skip_sync_ && sync) {
    real_sync = start - last_sync_ >= std::chrono::milliseconds(kLazySyncIntervalMs);
    if (real_sync) last_sync_ = start;
  }
  Status s = store_->Save(snapshot, entries, hard_state, real_sync);
  if (observer_ && sync) {
    observer_(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  done(s);
}

Status LogStoreDurableLog::CreateSnapshot(Index applied, const raft::ConfState& cs,
                                          std::string data) {
  Status s = store_->CreateSnapshot(applied, cs, std::move(data));
  malloc_trim(0);
  return s;
}

int64_t SteadyClock::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

NodeHost::NodeHost(const node::NodeConfig& config, std::unique_ptr<storage::LogStore> store,
                   node::Transport* transport, int64_t tick_ms)
    : store_(std::move(store)),
      log_(store_.get()),
      node_(config, &log_, transport, &clock_),
      tick_ms_(tick_ms) {}

NodeHost::~NodeHost() { Stop(); }

Status NodeHost::Start() {
  if (Status s = node_.Start(); !s.ok()) return s;
  store_->ReleaseSnapshotData();  // restored: the copy on disk serves from now on
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void NodeHost::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  // A peer thread may still be running a batch: wait for it.
  std::lock_guard<std::mutex> run(run_mu_);
}

void NodeHost::Post(std::function<void(node::Node&)> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void NodeHost::RunOrPost(std::function<void(node::Node&)> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  std::unique_lock<std::mutex> run(run_mu_, std::try_to_lock);
  if (!run.owns_lock()) {
    // A batch is running (on the loop or another peer thread); the loop
    // picks this task up when it is done.
    cv_.notify_one();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    if (!started_) {
      cv_.notify_one();
      return;
    }
  }
  RunBatch();
}

void NodeHost::RunBatch() {
  std::deque<std::function<void(node::Node&)>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(tasks_);
  }
  if (batch.empty()) return;
  // Every task that queued up while the last batch ran (its fsync
  // included) steps the node; their Ready is handled once, at the end, so
  // proposals that arrived together share one fsync.
  node_.BeginBatch();
  for (auto& task : batch) task(node_);
  node_.EndBatch();
  if (after_batch_) after_batch_(node_);
}

void NodeHost::PostAfter(int64_t delay_ms, std::function<void(node::Node&)> task) {
  std::lock_guard<std::mutex> lock(mu_);
  timers_.emplace(clock_.NowMs() + delay_ms, std::move(task));
}

void NodeHost::Loop() {
  using Clock = std::chrono::steady_clock;
  auto next_tick = Clock::now() + std::chrono::milliseconds(tick_ms_);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next_tick, [this] { return stop_ || !tasks_.empty(); });
      if (stop_) return;
    }
    std::lock_guard<std::mutex> run(run_mu_);
    RunBatch();
    if (Clock::now() >= next_tick) {
      std::vector<std::function<void(node::Node&)>> due;
      {
        std::lock_guard<std::mutex> lock(mu_);
        const int64_t now = clock_.NowMs();
        while (!timers_.empty() && timers_.begin()->first <= now) {
          due.push_back(std::move(timers_.begin()->second));
          timers_.erase(timers_.begin());
        }
      }
      for (auto& task : due) task(node_);
      node_.Tick();
      next_tick += std::chrono::milliseconds(tick_ms_);
      if (next_tick < Clock::now()) next_tick = Clock::now() + std::chrono::milliseconds(tick_ms_);
      if (after_batch_) after_batch_(node_);
    }
  }
}

}  // namespace warden::server

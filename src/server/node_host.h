// NodeHost: runs a node::Node on its own thread, the node loop. Everything
// that touches the node — gRPC handlers, peer messages, the tick timer, disk
// completions — is posted to the loop as a task, so the node needs no lock.
// Tasks run in the order posted; ticks come every heartbeat interval.
//
// One exception saves a thread wake-up per hop on the commit path: the gRPC
// thread that received a peer's batch runs it itself when the loop is idle
// (RunOrPost).
// Tasks still run one batch at a time (run_mu_), so the node sees one thread
// at a time; only which thread that is varies.
//
// Thread safety: Post and RunOrPost may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "src/node/node.h"
#include "src/storage/log_store.h"

namespace warden::server {

// node::DurableLog over the LogStore: persists synchronously on the node
// loop (one fdatasync per Ready covers every proposal batched into it).
class LogStoreDurableLog final : public node::ViewedDurableLog {
 public:
  explicit LogStoreDurableLog(storage::LogStore* store) : ViewedDurableLog(store), store_(store) {}
  void Persist(const std::optional<raft::Snapshot>& snapshot,
               const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state, bool sync,
               std::function<void(const Status&)> done) override;
  // After the snapshot the log below it is compacted: the memory of those
  // entries (and of the image) goes back to the system, which glibc's heap
  // would otherwise keep, fragmented among the live state.
  Status CreateSnapshot(Index applied, const raft::ConfState& cs, std::string data) override;
  // Planted bug for the chaos harness: acknowledge before fsync. A real
  // fdatasync then happens only at the first persist at least
  // kLazySyncIntervalMs after the previous one (a lazy write-back), so the
  // last acknowledged writes are not durable for up to that long.
  void set_skip_sync(bool v) { skip_sync_ = v; }
  static constexpr int64_t kLazySyncIntervalMs = 2000;
  // Called with the seconds each persist took (fdatasync included).
  void set_persist_observer(std::function<void(double)> fn) { observer_ = std::move(fn); }

 private:
  storage::LogStore* store_;
  bool skip_sync_ = false;
  std::chrono::steady_clock::time_point last_sync_{};
  std::function<void(double)> observer_;
};

class SteadyClock final : public node::Clock {
 public:
  int64_t NowMs() override;
};

class NodeHost {
 public:
  NodeHost(const node::NodeConfig& config, std::unique_ptr<storage::LogStore> store,
           node::Transport* transport, int64_t tick_ms);
  ~NodeHost();

  Status Start();
  void Stop();
  void Post(std::function<void(node::Node&)> task);
  // Posts `task` and, if the node has started and no batch is running, runs
  // the queued tasks on the calling thread at once (their Ready and fsync
  // included) instead of waking the loop. Before Start (peers may call as
  // soon as the peer port listens) the task waits for the loop like any
  // other. REQUIRES: the caller holds no lock a task may take (the gRPC
  // thread that read a peer's batch).
  void RunOrPost(std::function<void(node::Node&)> task);
  // Runs `task` on the node loop after `delay_ms` (at the next tick at the
  // earliest): for waiting on a condition without blocking the loop.
  void PostAfter(int64_t delay_ms, std::function<void(node::Node&)> task);
  LogStoreDurableLog* durable_log() { return &log_; }
  // Runs on the node loop after every batch of tasks and every tick (for
  // observers that follow the node's state). Set before Start.
  void set_after_batch(std::function<void(node::Node&)> fn) { after_batch_ = std::move(fn); }

 private:
  void Loop();
  // Runs the queued tasks as one batch. REQUIRES: run_mu_ held.
  void RunBatch();

  std::unique_ptr<storage::LogStore> store_;
  LogStoreDurableLog log_;
  SteadyClock clock_;
  node::Node node_;
  int64_t tick_ms_;
  std::function<void(node::Node&)> after_batch_;

  std::mutex run_mu_;  // held while a batch or a tick runs; taken before mu_
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(node::Node&)>> tasks_;               // guarded by mu_
  std::multimap<int64_t, std::function<void(node::Node&)>> timers_;  // guarded by mu_
  bool stop_ = false;                                                // guarded by mu_
  bool started_ = false;                                             // guarded by mu_
  std::thread thread_;
};

}  // namespace warden::server

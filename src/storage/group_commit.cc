#include "src/storage/group_commit.h"

namespace warden::storage {

GroupCommitter::GroupCommitter(Wal* wal) : wal_(wal), thread_([this] { Run(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void GroupCommitter::Submit(std::vector<raft::Entry> entries,
                            std::optional<raft::HardState> hard_state, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Pending{std::move(entries), std::move(hard_state), std::move(done)});
  }
  cv_.notify_one();
}

uint64_t GroupCommitter::syncs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}

uint64_t GroupCommitter::appends() const {
  std::lock_guard<std::mutex> lock(mu_);
  return appends_;
}

void GroupCommitter::Run() {
  std::vector<Pending> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained
      batch.swap(queue_);
    }
    // Everything that queued up during the previous sync goes out together.
    Status status;
    for (const Pending& p : batch) {
      if (status.ok() && !p.entries.empty()) status = wal_->AppendEntries(p.entries);
      if (status.ok() && p.hard_state) status = wal_->AppendHardState(*p.hard_state);
    }
    if (status.ok()) status = wal_->Sync();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++syncs_;
      appends_ += batch.size();
    }
    for (Pending& p : batch) p.done(status);
    batch.clear();
  }
}

}  // namespace warden::storage

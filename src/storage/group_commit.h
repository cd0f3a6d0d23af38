// GroupCommitter: covers many appends with one fdatasync. Appends submitted
// while a sync is in flight are written and synced together in the next round,
// so the sync rate is bounded by the disk, not by the number of writers. Each
// submitter's callback runs on the syncer thread once its records are durable
// (or with the error that stopped them).
//
// Thread safety: Submit may be called from any thread. Callbacks run on the
// syncer thread, in submission order; they must not call Submit re-entrantly
// if they block.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "src/raft/types.h"
#include "src/storage/wal.h"

namespace warden::storage {

class GroupCommitter {
 public:
  using Done = std::function<void(const Status&)>;

  // REQUIRES: wal outlives this object and is used by nobody else meanwhile.
  explicit GroupCommitter(Wal* wal);
  // Finishes every submitted append, then stops the thread.
  ~GroupCommitter();

  void Submit(std::vector<raft::Entry> entries, std::optional<raft::HardState> hard_state,
              Done done);

  uint64_t syncs() const;
  uint64_t appends() const;

 private:
  struct Pending {
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hard_state;
    Done done;
  };
  void Run();

  Wal* wal_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> queue_;  // guarded by mu_
  bool stop_ = false;           // guarded by mu_
  uint64_t syncs_ = 0;          // guarded by mu_
  uint64_t appends_ = 0;        // guarded by mu_
  std::thread thread_;
};

}  // namespace warden::storage

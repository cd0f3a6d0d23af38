// The node driver's environment in the simulator (TigerBeetle's "simulated
// twin" of each production dependency): node::DurableLog over a SimDisk and an
// in-memory raft::MemoryStorage view, node::Transport over a function (the
// SimNetwork), and node::Clock from the simulated time with a per-node rate
// and offset.
//
// SimDurableLog::Persist writes the snapshot, entries and hard state as disk
// records and into the read view at once (the page cache), then, when asked
// to sync, hands `done` to the owner's sync function, which syncs the disk
// after a simulated delay and runs `done` then. A crash before that loses the
// unsynced records (SimDisk::Crash). CreateSnapshot records the image in the
// read view, compacts the log (keeping a few entries so that slightly lagging
// followers still catch up from the log) and rewrites the disk atomically.
//
// The planted driver bug skip-persist-vote lives here: a Persist that carries
// only a hard state (a vote, a new term) completes at once without writing or
// syncing it; the hard state reaches the disk with the next entries.
//
// Thread safety: none (one simulated process).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/disk.h"
#include "sim/world.h"
#include "src/base/random.h"
#include "src/node/interfaces.h"
#include "src/raft/storage.h"

namespace warden::sim {

class SimDurableLog final : public node::ViewedDurableLog {
 public:
  struct Hooks {
    // Entries were appended to the read view (for the log-matching check).
    std::function<void(const std::vector<raft::Entry>&)> on_entries;
    // Syncs the disk later and then runs the callback.
    std::function<void(std::function<void()>)> sync;
    // An impossible storage outcome.
    std::function<void(const std::string&)> internal_error;
    // The trace, under the node's name.
    World* world = nullptr;
    std::string who;
  };

  // `storage` is the view recovered from `disk`.
  SimDurableLog(SimDisk* disk, std::unique_ptr<raft::MemoryStorage> storage, Rng* rng,
                bool skip_persist_vote, Hooks hooks);

  void Persist(const std::optional<raft::Snapshot>& snapshot,
               const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state, bool sync,
               std::function<void(const Status&)> done) override;
  Status CreateSnapshot(Index applied, const raft::ConfState& conf_state,
                        std::string data) override;

  const raft::MemoryStorage& storage() const { return *storage_; }
  // The read view's snapshot, without copying its data (GetSnapshot does).
  const raft::SnapshotMetadata& snapshot_metadata() const { return snapshot_metadata_; }

 private:
  void Trace(const std::string& what) { hooks_.world->Trace(hooks_.who, what); }

  SimDisk* disk_;
  std::unique_ptr<raft::MemoryStorage> storage_;
  Rng* rng_;
  bool skip_persist_vote_;
  Hooks hooks_;
  std::optional<raft::HardState> unwritten_hard_state_;  // skip_persist_vote only
  raft::SnapshotMetadata snapshot_metadata_;
};

class FnTransport final : public node::Transport {
 public:
  explicit FnTransport(std::function<void(std::vector<raft::Message>)> fn) : fn_(std::move(fn)) {}
  void Send(std::vector<raft::Message> messages) override { fn_(std::move(messages)); }

 private:
  std::function<void(std::vector<raft::Message>)> fn_;
};

class FnClock final : public node::Clock {
 public:
  explicit FnClock(std::function<int64_t()> fn) : fn_(std::move(fn)) {}
  int64_t NowMs() override { return fn_(); }

 private:
  std::function<int64_t()> fn_;
};

}  // namespace warden::sim

// The narrow interfaces the node driver is written against. The server
// implements them with gRPC streams, the WAL and steady_clock; the simulator
// with its seeded network, disk and clocks. Nothing else reaches the driver.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/raft/raw_node.h"
#include "src/raft/storage.h"

namespace warden::node {

// Delivers Raft messages to peers, best effort (Raft tolerates loss).
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Send(std::vector<raft::Message> messages) = 0;
};

// A monotonic clock in milliseconds. Never goes backwards.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() = 0;
};

// Durable Raft storage: the read view the core uses plus asynchronous
// persistence of each Ready's snapshot, entries and hard state.
class DurableLog : public raft::Storage {
 public:
  // Persists, in order, `snapshot`, `entries` and `hard_state` and, if
  // `sync`, makes them durable; then calls `done` (possibly before returning)
  // with the outcome. The read view reflects the writes once `done` runs.
  // An error is sticky: every later call fails with it.
  virtual void Persist(const std::optional<raft::Snapshot>& snapshot,
                       const std::vector<raft::Entry>& entries,
                       const std::optional<raft::HardState>& hard_state, bool sync,
                       std::function<void(const Status&)> done) = 0;
  // Records a state machine image at `applied` and compacts the log.
  virtual Status CreateSnapshot(Index applied, const raft::ConfState& conf_state,
                                std::string data) = 0;
};

}  // namespace warden::node

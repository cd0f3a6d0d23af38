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

// A DurableLog whose reads are answered by an in-memory view it keeps in
// step with what it persists (the LogStore, a MemoryStorage over a simulated
// disk): subclasses implement only the writes.
// REQUIRES: `view` outlives this object.
class ViewedDurableLog : public DurableLog {
 public:
  explicit ViewedDurableLog(const raft::Storage* view) : view_(view) {}

  std::pair<raft::HardState, raft::ConfState> InitialState() const override {
    return view_->InitialState();
  }
  Result<std::vector<raft::Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const override {
    return view_->Entries(lo, hi, max_bytes);
  }
  Result<Term> TermAt(Index i) const override { return view_->TermAt(i); }
  Index FirstIndex() const override { return view_->FirstIndex(); }
  Index LastIndex() const override { return view_->LastIndex(); }
  Result<raft::Snapshot> GetSnapshot() const override { return view_->GetSnapshot(); }

 private:
  const raft::Storage* view_;
};

}  // namespace warden::node

// The leader's view of one follower's log (etcd's tracker.Progress), and the
// flow control that bounds how much the leader sends ahead of acknowledgements.
//
// States (thesis 3.5 and etcd's design):
//   kProbe      the leader does not know where the follower's log matches; it
//               sends one append per heartbeat interval and backs off on reject.
//   kReplicate  the logs match up to `match`; appends are pipelined
//               optimistically (next advances on send) within the inflight
//               window.
//   kSnapshot   the follower needs entries the leader compacted; an
//               InstallSnapshot is in flight and nothing else is sent.
// Invariant: match < next.
#pragma once

#include <cstdint>
#include <deque>

#include "src/base/ids.h"

namespace warden::raft {

// The last indexes of appends sent and not yet acknowledged, oldest first.
class Inflights {
 public:
  explicit Inflights(int capacity) : capacity_(capacity) {}
  bool Full() const { return static_cast<int>(indexes_.size()) >= capacity_; }
  int Count() const { return static_cast<int>(indexes_.size()); }
  // REQUIRES: !Full() and last >= the previous added index.
  void Add(Index last);
  // Frees every append whose last index is <= to.
  void FreeLE(Index to);
  void FreeFirstOne();
  void Reset() { indexes_.clear(); }

 private:
  int capacity_;
  std::deque<Index> indexes_;
};

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* ProgressStateName(ProgressState s);

class Progress {
 public:
  Progress(Index next, int max_inflight) : next_(next), inflights_(max_inflight) {}

  Index match() const { return match_; }
  Index next() const { return next_; }
  ProgressState state() const { return state_; }
  Index pending_snapshot() const { return pending_snapshot_; }
  bool recent_active() const { return recent_active_; }
  void set_recent_active(bool v) { recent_active_ = v; }
  bool is_learner() const { return is_learner_; }
  void set_learner(bool v) { is_learner_ = v; }
  Inflights& inflights() { return inflights_; }

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(Index snapshot_index);

  // An acknowledgement that the follower's log matches up to n. Returns true
  // if it moved `match` forward.
  bool MaybeUpdate(Index n);
  // Pipelining: the leader sent entries up to n and assumes they will land.
  void OptimisticUpdate(Index n) { next_ = n + 1; }
  // A rejection of the append whose previous index was `rejected`; the
  // follower suggests retrying from `hint` + 1. Returns false for a stale
  // rejection that changes nothing.
  bool MaybeDecrTo(Index rejected, Index hint);
  // Whether the leader should hold further appends to this follower.
  bool IsPaused() const;
  // Probe state sends one message per heartbeat; this marks it sent.
  void SetProbeSent(bool sent) { probe_sent_ = sent; }

 private:
  Index match_;
  Index next_;
  ProgressState state_ = ProgressState::kProbe;
  Index pending_snapshot_;
  bool recent_active_ = false;
  bool probe_sent_ = false;
  bool is_learner_ = false;
  Inflights inflights_;
};

}  // namespace warden::raft

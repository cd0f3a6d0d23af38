#include "src/raft/progress.h"

#include <algorithm>

#include "src/base/check.h"

namespace warden::raft {

void Inflights::Add(Index last) {
  WARDEN_CHECK(!Full());
  WARDEN_CHECK(indexes_.empty() || indexes_.back() <= last);
  indexes_.push_back(last);
}

void Inflights::FreeLE(Index to) {
  while (!indexes_.empty() && indexes_.front() <= to) indexes_.pop_front();
}

void Inflights::FreeFirstOne() {
  if (!indexes_.empty()) indexes_.pop_front();
}

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe: return "probe";
    case ProgressState::kReplicate: return "replicate";
    case ProgressState::kSnapshot: return "snapshot";
  }
  return "unknown";
}

void Progress::BecomeProbe() {
  // Coming back from a snapshot, the follower has at least the snapshot.
  if (state_ == ProgressState::kSnapshot) {
    next_ = std::max(match_ + 1, pending_snapshot_ + 1);
  } else {
    next_ = match_ + 1;
  }
  state_ = ProgressState::kProbe;
  pending_snapshot_ = Index(0);
  probe_sent_ = false;
  inflights_.Reset();
}

void Progress::BecomeReplicate() {
  state_ = ProgressState::kReplicate;
  next_ = match_ + 1;
  pending_snapshot_ = Index(0);
  probe_sent_ = false;
  inflights_.Reset();
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  state_ = ProgressState::kSnapshot;
  pending_snapshot_ = snapshot_index;
  probe_sent_ = false;
  inflights_.Reset();
}

bool Progress::MaybeUpdate(Index n) {
  bool updated = false;
  if (match_ < n) {
    match_ = n;
    updated = true;
    probe_sent_ = false;
  }
  next_ = std::max(next_, n + 1);
  return updated;
}

bool Progress::MaybeDecrTo(Index rejected, Index hint) {
  if (state_ == ProgressState::kReplicate) {
    // A rejection at or below match is stale: the follower already has it.
    if (rejected <= match_) return false;
    next_ = match_ + 1;
    return true;
  }
  // In probe state only the rejection of the latest probe counts.
  if (next_ - 1 != rejected) return false;
  next_ = std::max(std::min(rejected, hint + 1), match_ + 1);
  probe_sent_ = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state_) {
    case ProgressState::kProbe: return probe_sent_;
    case ProgressState::kReplicate: return inflights_.Full();
    case ProgressState::kSnapshot: return true;
  }
  return true;
}

}  // namespace warden::raft

// LockChecker: the lock-safety check. It keeps its own model of the lock
// table (holders and waiters per path, the last fencing token, the answer to
// every request id, the sessions that ended), built only from what applied
// entries report in their ApplyResult: the request's own answer (`lock`),
// the final answers of queued requests (`lock_answers`) and the lock events
// (`lock_events`, in the order they happened). After each entry it checks:
//
//   a. Mutual exclusion: a new hold (an ACQUIRED event) never joins a holder
//      it conflicts with (exclusive conflicts with everything, shared only
//      with exclusive), at any point of the log order.
//   b. Fencing tokens: every new grant's token is greater than every earlier
//      grant's, across all locks; a re-acquire keeps the hold's token; a
//      retried request gets the same answer as the first time.
//   c. Fencing: every guarded write that succeeded carried the token of a
//      current holder of its lock, and was sent by that holder; a guarded
//      write refused by the guard did not carry a current token.
//   d. A session that ended (its lease revoked) holds and waits for nothing
//      afterwards and is never granted anything again (etcd issue 11456: a
//      waiter whose session expired was still handed the lock).
//
// And that the answers and the events agree: every GRANTED answer that is a
// new hold has its ACQUIRED event with the same token and vice versa, a
// release to count 0 has its RELEASED event, a final refusal its CANCELLED
// event, and holds and waits end only for holds and waits that exist.
//
// Where: the model follows the log, not one replica. The first replica to
// apply index i feeds entry i to the model (every index is applied by some
// replica before any replica applies a later one: a snapshot comes from a
// member that applied its entries). Every other replica that applies i must
// report the same lock outcome (a fingerprint of the answers, events and
// guard result); so the checks hold on every replica, including one that
// starts from a snapshot, without a model per replica.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sim/invariants.h"
#include "src/raft/types.h"
#include "src/state/state_machine.h"

namespace warden::sim {

class LockChecker {
 public:
  explicit LockChecker(Invariants* invariants) : invariants_(invariants) {}

  // `node` applied `e` with result `r` (null: an entry without a command).
  void OnApplied(NodeId node, const raft::Entry& e, const state::ApplyResult* r);

  uint64_t grants() const { return grants_; }
  uint64_t guarded_writes() const { return guarded_ok_; }
  uint64_t fenced_writes() const { return guarded_refused_; }
  uint64_t sessions_ended_holding() const { return sessions_ended_holding_; }

 private:
  struct Hold {
    state::LockMode mode = state::LockMode::kExclusive;
    uint64_t token = 0;
  };
  struct Lock {
    std::map<state::LockOwner, Hold> holders;
    std::set<state::LockOwner> waiters;
  };
  // The answers to request ids, per session, as the lock table remembers
  // them (the newest kMaxRememberedRequests, until the session ends).
  struct Remembered {
    state::LockAnswer answer;
    bool pending = false;
  };
  struct SessionMemory {
    std::map<uint64_t, Remembered> by_id;
    std::deque<uint64_t> order;
  };
  // Events of the entry being checked that an answer must match.
  using Key = std::tuple<std::string, state::LockOwner, uint64_t>;  // path, owner, token

  void Check(Index index, const raft::Entry& e, const state::ApplyResult& r);
  void OnEvent(Index index, const state::LockEvent& ev);
  void OnFinalAnswer(Index index, const state::LockAnswer& a);
  void OnOwnAnswer(Index index, const state::ApplyResult& r);
  void OnGuardedWrite(Index index, const raft::Entry& e, const state::ApplyResult& r);
  void OnSessionEnd(Index index, int64_t session);
  void Remember(const state::LockAnswer& a, bool pending);
  const Hold* FindHold(const std::string& path, const state::LockOwner& owner) const;
  void Fail(Index index, const std::string& detail);

  Invariants* invariants_;
  // The model has applied every entry up to here; a new cluster starts
  // from its bootstrap snapshot at index 1 (raft::BootstrapSnapshot).
  Index checked_{1};
  // Index -> lock fingerprint of the first replica to apply it (0: none).
  std::map<Index, uint64_t> fingerprints_;
  std::map<std::string, Lock> locks_;
  uint64_t last_token_ = 0;
  std::set<int64_t> ended_sessions_;
  std::map<int64_t, SessionMemory> memory_;
  // Per entry: new holds, holds ended, waits begun and waits ended.
  std::set<Key> acquired_, released_;
  std::set<std::pair<std::string, state::LockOwner>> queued_, dismissed_;

  uint64_t grants_ = 0;
  uint64_t guarded_ok_ = 0;
  uint64_t guarded_refused_ = 0;
  uint64_t sessions_ended_holding_ = 0;
};

}  // namespace warden::sim

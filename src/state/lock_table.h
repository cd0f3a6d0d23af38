// LockTable: Warden's native locks, the replicated part (docs/locks.md).
//
// A lock is a path. Requests come from an owner = (session, owner id); the
// session is a lease of the LeaseTable, and the state machine checks that it
// exists before calling in. Everything here is decided by the arguments:
// `now_ms` is the leader-stamped time of the entry being applied, never a
// clock, so every replica makes the same decisions in the same order.
//
// Rules:
//  - modes: exclusive and shared. Requests at the head of the queue that are
//    compatible with the holders (and with each other) are granted together.
//    A shared request does not pass a queued exclusive one, so a writer is
//    not starved by a stream of readers.
//  - reentrancy: an owner that holds the lock gets it again at once, with the
//    same fencing token and hold_count + 1 (a shared request of an exclusive
//    holder counts as a re-acquire too). An exclusive request of a shared
//    holder is refused (kInvalid): upgrading deadlocks as soon as two holders
//    try it.
//  - queue order: highest effective priority first, FIFO among equals, where
//    effective priority = priority + floor(waited_ms / kAgingIntervalMs); so
//    with all priorities at 0 the queue is plain FIFO and every waiter is
//    eventually granted.
//  - try-lock (wait_deadline_ms == 0): kWouldBlock at once if not grantable.
//    Blocking with a deadline: answered kTimeout by Expire at the deadline
//    (or by a grant pass that reaches the waiter after it, so that no one is
//    granted a lock it stopped waiting for; a request that arrives after its
//    own deadline and is not grantable is answered kTimeout at once).
//    A new request is granted at once only when nobody is queued (or it is
//    a re-acquire); otherwise it queues and the grant pass decides.
//  - hold TTL (hold_ttl_ms > 0): the hold ends by Expire when it runs out
//    unless renewed; until Expire runs it still counts as held, which can
//    only delay the next grant, never make two holders. A re-acquire leaves
//    the TTL as it is (Renew changes it). Release checks owner and token.
//  - conditions: etcd compares checked when the lock would be granted (on
//    request or later, when it reaches the head); if they fail the request is
//    answered kConditionFailed and leaves the queue.
//  - deadlock: a request that would wait while one of its blockers (an
//    incompatible holder, or an incompatible waiter ahead of it) waits,
//    directly or through others, for the requesting owner is refused at once
//    with kDeadlock and the cycle. The graph is checked with the request in
//    the queue, because a request queued ahead of others makes them wait for
//    it too.
//  - fencing tokens: every grant takes the next value of one counter shared
//    by all locks and replicated with them, so tokens strictly increase in
//    grant order across all locks and leader changes. A re-acquire keeps the
//    token.
//  - sessions: EndSession releases every hold and drops every wait of the
//    session (a waiter whose session ended is never granted).
//  - idempotency: an Acquire, Release, Renew or Cancel with a request id
//    (non-zero) that this session already sent is not applied again; it gets
//    the first answer (for an Acquire still queued: kQueued, and the final
//    answer once known). Remembered per session, the newest
//    kMaxRememberedRequests ids, until the session ends. Request ids are
//    unique per session across the four operations.
//
// Thread safety: none; owned by the state machine.
#pragma once

#include <compare>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"
#include "src/state/kv_request.h"

namespace warden::state {

struct LockOwner {
  int64_t session = 0;
  std::string id;
  friend auto operator<=>(const LockOwner&, const LockOwner&) = default;
  friend bool operator==(const LockOwner&, const LockOwner&) = default;
};

enum class LockMode : uint8_t { kExclusive = 0, kShared = 1 };

enum class LockOutcome : uint8_t {
  kGranted = 0,
  kQueued = 1,           // waiting; the final answer comes in a later LockEffects
  kWouldBlock = 2,       // try-lock, not grantable now
  kDeadlock = 3,         // detail names the cycle
  kConditionFailed = 4,  // the conditions did not hold at grant time
  kTimeout = 5,          // the wait deadline passed
  kCancelled = 6,        // Cancel
  kSessionEnded = 7,     // the session expired or was revoked while waiting
  kNotHeld = 8,          // Release/Renew of a lock the owner does not hold
  kBadToken = 9,         // Release/Renew with a token that is not the hold's
  kNotWaiting = 10,      // Cancel of a request that is not queued
  kInvalid = 11,         // a malformed request; detail says why
};
const char* LockOutcomeName(LockOutcome o);

struct AcquireRequest {
  std::string path;
  LockOwner owner;
  LockMode mode = LockMode::kExclusive;
  int32_t priority = 0;
  // 0: try-lock; -1: wait without a deadline; > 0: absolute deadline (the
  // leader's ms, the same time base as now_ms).
  int64_t wait_deadline_ms = -1;
  int64_t hold_ttl_ms = 0;  // 0: held until released or the session ends
  std::vector<Compare> conditions;
  std::string value;  // an opaque payload kept with the hold (election value)
  uint64_t request_id = 0;
};

// The answer to one request (the one being applied, or an earlier one that
// this entry resolved: a waiter granted by a release, timed out, ...).
struct LockAnswer {
  std::string path;
  LockOwner owner;
  uint64_t request_id = 0;
  LockOutcome outcome = LockOutcome::kGranted;
  uint64_t token = 0;       // kGranted (and Release/Renew: the hold's token)
  uint32_t hold_count = 0;  // kGranted: the owner's count after the grant
  std::string detail;       // kDeadlock: the cycle; kInvalid: the reason
  friend bool operator==(const LockAnswer&, const LockAnswer&) = default;
};

struct LockEvent {
  enum class Type : uint8_t { kQueued, kAcquired, kReleased, kExpired, kCancelled };
  Type type = Type::kAcquired;
  std::string path;
  LockOwner owner;
  LockMode mode = LockMode::kExclusive;
  uint64_t token = 0;  // kAcquired, kReleased, kExpired
  friend bool operator==(const LockEvent&, const LockEvent&) = default;
};

// What one operation changed, in order.
struct LockEffects {
  std::vector<LockAnswer> answers;  // final answers to queued requests
  std::vector<LockEvent> events;
};

struct LockHolder {
  LockOwner owner;
  LockMode mode = LockMode::kExclusive;
  uint64_t token = 0;
  uint32_t hold_count = 0;
  int64_t granted_ms = 0;
  int64_t expires_ms = 0;  // 0: no hold TTL
  std::string value;
};

struct LockWaiter {
  AcquireRequest request;
  uint64_t seq = 0;  // arrival order, for FIFO among equal priorities
  int64_t enqueued_ms = 0;
};

struct LockInfo {
  std::string path;
  std::vector<LockHolder> holders;  // in grant order
  std::vector<LockWaiter> waiters;  // in the order they would be granted at now_ms
};

// Evaluates etcd compares against the key space (the state machine passes
// one backed by its MvccStore). Called only for requests that carry
// conditions, and then it must be set.
using ConditionCheck = std::function<bool(const std::vector<Compare>&)>;

// Planted bugs, for the simulator's lock-safety check to catch (warden-sim
// --inject-bug; sim/sim.h). Deterministic, so every replica makes the same
// wrong decision; all off by default, and the server never sets them.
struct LockBugs {
  // A new request is granted at once whenever it would be compatible with
  // the holders if it were shared, passing the queue: an exclusive request
  // joins shared holders.
  bool skip_queue = false;
  // A grant by a grant pass (a queued waiter's turn) takes the previous
  // token again instead of the next one.
  bool reuse_token = false;
  // IsHolderToken accepts any token while the lock has a holder: the guard
  // checks that the lock is held, not by whom.
  bool guard_any_holder = false;
  // EndSession leaves the session's waits queued, so a waiter whose session
  // ended can still be granted the lock (etcd issue 11456).
  bool keep_ended_waits = false;
};

// A lock's waiters: a deque (the head, the usual grant, leaves without
// moving a long queue) allocated only while someone waits, since an empty
// std::deque already holds about 500 bytes and most locks have no waiter.
class LockWaiterQueue {
 public:
  using Deque = std::deque<LockWaiter>;
  using const_iterator = Deque::const_iterator;
  bool empty() const { return q_ == nullptr || q_->empty(); }
  size_t size() const { return q_ == nullptr ? 0 : q_->size(); }
  const LockWaiter& operator[](size_t i) const { return (*q_)[i]; }
  LockWaiter& operator[](size_t i) { return (*q_)[i]; }
  const LockWaiter& front() const { return q_->front(); }
  const LockWaiter& back() const { return q_->back(); }
  const_iterator begin() const { return q_ == nullptr ? Empty().begin() : q_->cbegin(); }
  const_iterator end() const { return q_ == nullptr ? Empty().end() : q_->cend(); }
  void push_back(LockWaiter w) {
    if (q_ == nullptr) q_ = std::make_unique<Deque>();
    q_->push_back(std::move(w));
  }
  // Removes the i-th waiter and returns it.
  LockWaiter Take(size_t i) {
    LockWaiter w = std::move((*q_)[i]);
    q_->erase(q_->begin() + static_cast<std::ptrdiff_t>(i));
    if (q_->empty()) q_.reset();
    return w;
  }

 private:
  static const Deque& Empty() {
    static const Deque empty;
    return empty;
  }
  std::unique_ptr<Deque> q_;
};

class LockTable {
 public:
  static constexpr int64_t kAgingIntervalMs = 1000;
  static constexpr size_t kMaxRememberedRequests = 1024;

  explicit LockTable(const LockBugs& bugs = {}) : bugs_(bugs) {}

  // The answer is kGranted, kQueued or a refusal; effects carries the events
  // (and, for a retried request, nothing new).
  LockAnswer Acquire(const AcquireRequest& req, int64_t now_ms, const ConditionCheck& check,
                     LockEffects* effects);
  // Ends one hold (hold_count - 1; at 0 the lock passes to the next waiters).
  // Answers kGranted with the hold's token and the count left (0: released).
  LockAnswer Release(const std::string& path, const LockOwner& owner, uint64_t token,
                     uint64_t request_id, int64_t now_ms, const ConditionCheck& check,
                     LockEffects* effects);
  // Sets a hold's TTL to ttl_ms from now_ms (0 removes the TTL). Answers
  // kGranted with the hold's token and count.
  LockAnswer Renew(const std::string& path, const LockOwner& owner, uint64_t token, int64_t ttl_ms,
                   uint64_t request_id, int64_t now_ms);
  // Withdraws the owner's queued request on path; the waiter's own answer
  // (kCancelled) is in effects->answers; this request's answer is kCancelled
  // too, or kNotWaiting.
  LockAnswer Cancel(const std::string& path, const LockOwner& owner, uint64_t request_id,
                    int64_t now_ms, const ConditionCheck& check, LockEffects* effects);
  // Graceful hand-over (an election leader naming its successor): ends the
  // owner's hold whatever its count and grants it to `to`, a waiter on the
  // same path, ahead of the queue order. kNotWaiting when `to` does not wait
  // there; kInvalid when `to` could not hold it with the remaining holders.
  // `to`'s own final answer is in effects->answers. Not remembered: a retry
  // finds the hold gone (kNotHeld).
  LockAnswer Transfer(const std::string& path, const LockOwner& owner, uint64_t token,
                      const LockOwner& to, int64_t now_ms, const ConditionCheck& check,
                      LockEffects* effects);
  // Replaces the value of a hold (an election leader's Proclaim).
  LockAnswer SetValue(const std::string& path, const LockOwner& owner, uint64_t token,
                      std::string value);
  // Releases every hold and drops every wait of the session.
  void EndSession(int64_t session, int64_t now_ms, const ConditionCheck& check,
                  LockEffects* effects);
  // Answers waiters whose deadline is <= now_ms (kTimeout) and ends holds
  // whose TTL ran out (kExpired), then grants what that freed.
  void Expire(int64_t now_ms, const ConditionCheck& check, LockEffects* effects);
  // The earliest wait deadline or hold expiry, if any: when the leader should
  // propose a tick.
  std::optional<int64_t> NextDeadline() const;
  // Aging can make a waiter pass another without any request: the leader
  // also ticks while a lock has waiters of different priorities. Grants
  // whatever became grantable at now_ms.
  void Regrant(int64_t now_ms, const ConditionCheck& check, LockEffects* effects);

  // True when some lock has waiters of different priorities, whose order
  // aging can change (the leader then ticks once per aging interval).
  // O(locks); the leader asks once per interval.
  bool AgingMatters() const;

  // True when `token` is the token of a current hold of `path`.
  bool IsHolderToken(const std::string& path, uint64_t token) const;
  std::optional<LockInfo> Inspect(const std::string& path, int64_t now_ms) const;
  // Paths with holders or waiters, in order, starting at `from`.
  std::vector<std::string> Paths(const std::string& from, size_t limit) const;
  // A request's final answer if it is known, else nullopt (still queued or
  // never seen).
  std::optional<LockAnswer> FindAnswer(int64_t session, uint64_t request_id) const;
  uint64_t last_token() const { return last_token_; }

  // A canonical image (equal states give equal bytes: replicas compare
  // digests of it); the format is in lock_table.cc and docs/locks.md.
  std::string Serialize() const;
  // Refuses malformed or inconsistent images with kCorruption. `bugs` are
  // not part of the image: the loading replica's own.
  static Result<LockTable> Deserialize(std::string_view data, const LockBugs& bugs = {});

 private:
  struct Lock {
    std::vector<LockHolder> holders;  // in grant order
    LockWaiterQueue waiters;          // in arrival order (ascending seq)
    // Derived, not in the image: every waiter has the same priority and
    // arrived no earlier (by the leader's clock) than the one before it, so
    // the grant order is the arrival order at any time (aging keeps it). The
    // usual queue; it lets a grant or a new waiter skip ordering the queue.
    bool arrival_order = true;
  };
  // A time at which Expire has work: a waiter's wait deadline or a hold's
  // expiry. Kept in one ordered set so NextDeadline and Expire need no scan.
  struct Due {
    int64_t at_ms = 0;
    bool is_hold = false;
    std::string path;
    LockOwner owner;
    friend auto operator<=>(const Due&, const Due&) = default;
    friend bool operator==(const Due&, const Due&) = default;
  };
  struct Remembered {
    LockAnswer answer;
    bool pending = false;  // an Acquire still queued; answer is its kQueued
  };
  struct SessionMemory {
    std::map<uint64_t, Remembered> by_id;
    std::deque<uint64_t> order;  // request ids, oldest first
  };

  LockAnswer AcquireOnce(const AcquireRequest& req, int64_t now_ms, const ConditionCheck& check,
                         LockEffects* effects);
  LockAnswer ReleaseOnce(const std::string& path, const LockOwner& owner, uint64_t token,
                         uint64_t request_id, int64_t now_ms, const ConditionCheck& check,
                         LockEffects* effects);
  LockAnswer RenewOnce(const std::string& path, const LockOwner& owner, uint64_t token,
                       int64_t ttl_ms, uint64_t request_id, int64_t now_ms);
  LockAnswer CancelOnce(const std::string& path, const LockOwner& owner, uint64_t request_id,
                        int64_t now_ms, const ConditionCheck& check, LockEffects* effects);

  // Grants what the queue order allows (see the rules above), then erases
  // the lock if it is empty. The last use of a Lock& the caller holds.
  void Settle(const std::string& path, int64_t now_ms, const ConditionCheck& check,
              LockEffects* effects);
  // `queued`: the request waited and a grant pass grants it now.
  LockAnswer AddHold(const std::string& path, Lock* lock, const AcquireRequest& req, int64_t now_ms,
                     bool queued, LockEffects* effects);
  // The only ways holders and waiters enter and leave a Lock: they keep the
  // owner indexes and due_ in step.
  void AddHolder(const std::string& path, Lock* lock, LockHolder holder);
  LockHolder RemoveHolder(const std::string& path, Lock* lock, size_t i);
  void SetHoldExpiry(const std::string& path, LockHolder* holder, int64_t expires_ms);
  void AddWaiter(const std::string& path, Lock* lock, LockWaiter waiter);
  LockWaiter RemoveWaiter(const std::string& path, Lock* lock, size_t i);
  // Answers a waiter that leaves the queue without a grant.
  void Dismiss(const std::string& path, const LockWaiter& waiter, LockOutcome outcome,
               LockEffects* effects);
  // Reports a queued request's final answer and records it for retries.
  void Finish(const LockAnswer& answer, LockEffects* effects);

  // The wait-for graph: the cycle through `owner`, described, if one exists.
  bool BlocksAnyone(const LockOwner& owner, int64_t now_ms) const;
  // Whether `owner` is queued on / holds `path` (without scanning the lock).
  bool IsWaiting(const LockOwner& owner, const std::string& path) const;
  bool IsHolding(const LockOwner& owner, const std::string& path) const;
  std::optional<std::string> FindCycle(const LockOwner& owner, int64_t now_ms) const;

  const LockAnswer* Recall(int64_t session, uint64_t request_id) const;
  void Remember(int64_t session, uint64_t request_id, const LockAnswer& answer, bool pending);

  // Invariants, kept by every operation and checked by Deserialize:
  //   1. No lock is empty, and a lock with waiters has holders (a grant pass
  //      over a lock without holders grants or drops its first waiter).
  //   2. An owner appears at most once per lock, as a holder or a waiter.
  //   3. Holder tokens are <= last_token_; waiter seqs ascend, <= last_seq_.
  std::map<std::string, Lock> locks_;
  // Derived from locks_ (rebuilt by Deserialize, not serialized): the paths
  // each owner holds and waits on, ordered by owner so that one session's
  // owners are adjacent; and every pending deadline.
  std::map<LockOwner, std::set<std::string>> holds_by_owner_;
  std::map<LockOwner, std::set<std::string>> waits_by_owner_;
  std::set<Due> due_;
  std::map<int64_t, SessionMemory> memory_;  // by session
  uint64_t last_token_ = 0;
  uint64_t last_seq_ = 0;  // the seq of the latest waiter to arrive
  LockBugs bugs_;
};

}  // namespace warden::state

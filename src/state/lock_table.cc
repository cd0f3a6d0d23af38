#include "src/state/lock_table.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <utility>

#include "src/base/check.h"
#include "src/base/coding.h"
#include "src/state/command.h"

namespace warden::state {

namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();

// Two requests conflict unless both are shared.
bool Conflict(LockMode a, LockMode b) {
  return a == LockMode::kExclusive || b == LockMode::kExclusive;
}

bool Compatible(LockMode mode, const std::vector<LockHolder>& holders) {
  for (const LockHolder& h : holders) {
    if (Conflict(mode, h.mode)) return false;
  }
  return true;
}

size_t HolderIndex(const std::vector<LockHolder>& holders, const LockOwner& owner) {
  for (size_t i = 0; i < holders.size(); ++i) {
    if (holders[i].owner == owner) return i;
  }
  return kNone;
}

using Waiters = LockWaiterQueue;

size_t WaiterIndex(const Waiters& waiters, const LockOwner& owner) {
  for (size_t i = 0; i < waiters.size(); ++i) {
    if (waiters[i].request.owner == owner) return i;
  }
  return kNone;
}

int64_t EffectivePriority(const LockWaiter& w, int64_t now_ms) {
  // Each leader stamps entries with its own clock, so time can step back
  // across a leader change; a negative wait counts as none. The subtraction
  // is done unsigned so that no pair of times can overflow.
  int64_t aging = 0;
  if (now_ms > w.enqueued_ms) {
    const uint64_t waited_ms = static_cast<uint64_t>(now_ms) - static_cast<uint64_t>(w.enqueued_ms);
    aging = static_cast<int64_t>(waited_ms / static_cast<uint64_t>(LockTable::kAgingIntervalMs));
  }
  return int64_t{w.request.priority} + aging;
}

// Whether waiter a is granted before waiter b at now_ms (a total order:
// the higher effective priority first, then the earlier arrival).
bool GrantedBefore(int64_t effective_a, uint64_t seq_a, int64_t effective_b, uint64_t seq_b) {
  if (effective_a != effective_b) return effective_a > effective_b;
  return seq_a < seq_b;
}

// Indexes into `waiters` in the order they would be granted at now_ms.
std::vector<size_t> GrantOrder(const Waiters& waiters, int64_t now_ms) {
  std::vector<int64_t> effective(waiters.size());
  std::vector<size_t> order(waiters.size());
  for (size_t i = 0; i < waiters.size(); ++i) {
    effective[i] = EffectivePriority(waiters[i], now_ms);
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return GrantedBefore(effective[a], waiters[a].seq, effective[b], waiters[b].seq);
  });
  return order;
}

// GrantOrder one at a time, for a pass that usually stops after the first
// few: O(n) to start and O(log n) per Next, where sorting a queue of
// thousands at every release cost more than the rest of the release. The
// order is fixed when it starts; it names waiters by seq, since indexes
// shift (and references go stale) as waiters leave.
class GrantSequence {
 public:
  GrantSequence(const Waiters& waiters, int64_t now_ms) {
    heap_.reserve(waiters.size());
    for (const LockWaiter& w : waiters) heap_.emplace_back(EffectivePriority(w, now_ms), w.seq);
    std::make_heap(heap_.begin(), heap_.end(), Later);
  }
  bool empty() const { return heap_.empty(); }
  uint64_t Next() {
    std::pop_heap(heap_.begin(), heap_.end(), Later);
    const uint64_t seq = heap_.back().second;
    heap_.pop_back();
    return seq;
  }

 private:
  using Item = std::pair<int64_t, uint64_t>;  // effective priority, seq
  // The heap's "less": the first to be granted is the greatest.
  static bool Later(const Item& a, const Item& b) {
    return GrantedBefore(b.first, b.second, a.first, a.second);
  }
  std::vector<Item> heap_;
};

// Whether waiters[self] is the last in GrantOrder (nobody waits behind it),
// in one pass.
bool LastInGrantOrder(const Waiters& waiters, size_t self, int64_t now_ms) {
  const int64_t mine = EffectivePriority(waiters[self], now_ms);
  for (size_t i = 0; i < waiters.size(); ++i) {
    if (i == self) continue;
    if (!GrantedBefore(EffectivePriority(waiters[i], now_ms), waiters[i].seq, mine,
                       waiters[self].seq)) {
      return false;
    }
  }
  return true;
}

// now_ms + ttl_ms for a hold expiry: saturating, and never 0, which means
// "no TTL".
int64_t ExpiryAfter(int64_t now_ms, int64_t ttl_ms) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t at = now_ms > max - ttl_ms ? max : now_ms + ttl_ms;
  return std::max<int64_t>(at, 1);
}

bool ConditionsHold(const std::vector<Compare>& conditions, const ConditionCheck& check) {
  if (conditions.empty()) return true;
  WARDEN_CHECK_MSG(static_cast<bool>(check), "a conditional acquire needs a ConditionCheck");
  return check(conditions);
}

std::string Describe(const LockOwner& o) {
  std::string s = "session " + std::to_string(o.session);
  if (!o.id.empty()) s += " owner " + o.id;
  return s;
}

}  // namespace

const char* LockOutcomeName(LockOutcome o) {
  switch (o) {
    case LockOutcome::kGranted: return "GRANTED";
    case LockOutcome::kQueued: return "QUEUED";
    case LockOutcome::kWouldBlock: return "WOULD_BLOCK";
    case LockOutcome::kDeadlock: return "DEADLOCK";
    case LockOutcome::kConditionFailed: return "CONDITION_FAILED";
    case LockOutcome::kTimeout: return "TIMEOUT";
    case LockOutcome::kCancelled: return "CANCELLED";
    case LockOutcome::kSessionEnded: return "SESSION_ENDED";
    case LockOutcome::kNotHeld: return "NOT_HELD";
    case LockOutcome::kBadToken: return "BAD_TOKEN";
    case LockOutcome::kNotWaiting: return "NOT_WAITING";
    case LockOutcome::kInvalid: return "INVALID";
  }
  return "UNKNOWN";
}

// ---- Requests ---------------------------------------------------------------

LockAnswer LockTable::Acquire(const AcquireRequest& req, int64_t now_ms,
                              const ConditionCheck& check, LockEffects* effects) {
  WARDEN_CHECK(effects != nullptr);
  if (const LockAnswer* first = Recall(req.owner.session, req.request_id)) return *first;
  LockAnswer a = AcquireOnce(req, now_ms, check, effects);
  Remember(req.owner.session, req.request_id, a, a.outcome == LockOutcome::kQueued);
  return a;
}

LockAnswer LockTable::AcquireOnce(const AcquireRequest& req, int64_t now_ms,
                                  const ConditionCheck& check, LockEffects* effects) {
  LockAnswer a;
  a.path = req.path;
  a.owner = req.owner;
  a.request_id = req.request_id;
  auto refuse = [&a](LockOutcome outcome, std::string detail) {
    a.outcome = outcome;
    a.detail = std::move(detail);
    return a;
  };
  if (req.path.empty()) return refuse(LockOutcome::kInvalid, "the lock path is empty");
  if (req.owner.session <= 0) return refuse(LockOutcome::kInvalid, "the session must be positive");
  if (req.mode != LockMode::kExclusive && req.mode != LockMode::kShared) {
    return refuse(LockOutcome::kInvalid, "unknown lock mode");
  }
  if (req.wait_deadline_ms < -1) {
    return refuse(LockOutcome::kInvalid,
                  "wait_deadline_ms must be -1 (no deadline), 0 (try-lock) or a time");
  }
  if (req.hold_ttl_ms < 0) return refuse(LockOutcome::kInvalid, "hold_ttl_ms is negative");

  auto it = locks_.find(req.path);
  if (it != locks_.end()) {
    Lock& lock = it->second;
    if (size_t h = HolderIndex(lock.holders, req.owner); h != kNone) {
      LockHolder& holder = lock.holders[h];
      if (req.mode == LockMode::kExclusive && holder.mode == LockMode::kShared) {
        return refuse(LockOutcome::kInvalid,
                      Describe(req.owner) + " holds " + req.path +
                          " shared: upgrading to exclusive is refused, since two holders "
                          "upgrading at once deadlock; release it and acquire exclusive");
      }
      if (holder.hold_count == std::numeric_limits<uint32_t>::max()) {
        return refuse(LockOutcome::kInvalid, "hold count limit reached");
      }
      if (!ConditionsHold(req.conditions, check)) return refuse(LockOutcome::kConditionFailed, "");
      // A re-acquire is granted even with others queued: the owner already
      // excludes them, and making it wait behind them would deadlock it.
      ++holder.hold_count;
      a.outcome = LockOutcome::kGranted;
      a.token = holder.token;
      a.hold_count = holder.hold_count;
      return a;
    }
    if (size_t w = IsWaiting(req.owner, req.path) ? WaiterIndex(lock.waiters, req.owner) : kNone;
        w != kNone) {
      // The same request again (its remembered answer was dropped): still
      // queued. Any other request of the owner on this path is a mistake.
      if (req.request_id != 0 && lock.waiters[w].request.request_id == req.request_id) {
        a.outcome = LockOutcome::kQueued;
        return a;
      }
      return refuse(LockOutcome::kInvalid,
                    Describe(req.owner) + " is already waiting for " + req.path);
    }
  }

  // Granted at once only when nobody is queued: a queued waiter has been
  // there at least as long, so it comes first or the grant pass decides.
  bool grant_now = it == locks_.end() ||
                   (it->second.waiters.empty() && Compatible(req.mode, it->second.holders));
  if (bugs_.skip_queue && it != locks_.end()) {
    grant_now = Compatible(LockMode::kShared, it->second.holders);  // planted bug
  }
  if (grant_now) {
    if (!ConditionsHold(req.conditions, check)) return refuse(LockOutcome::kConditionFailed, "");
    Lock& lock = it == locks_.end() ? locks_[req.path] : it->second;
    return AddHold(req.path, &lock, req, now_ms, /*queued=*/false, effects);
  }
  if (req.wait_deadline_ms == 0) return refuse(LockOutcome::kWouldBlock, "");
  if (req.wait_deadline_ms > 0 && req.wait_deadline_ms <= now_ms) {
    return refuse(LockOutcome::kTimeout, "");
  }

  // Queue it tentatively: the cycle check must see the edges it adds, both
  // its own and those of waiters it is placed ahead of.
  Lock& lock = it->second;
  LockWaiter waiter;
  waiter.request = req;
  waiter.seq = last_seq_ + 1;
  waiter.enqueued_ms = now_ms;
  AddWaiter(req.path, &lock, std::move(waiter));
  std::optional<std::string> cycle;
  if (BlocksAnyone(req.owner, now_ms)) cycle = FindCycle(req.owner, now_ms);
  if (cycle) {
    RemoveWaiter(req.path, &lock, lock.waiters.size() - 1);
    return refuse(LockOutcome::kDeadlock, std::move(*cycle));
  }
  ++last_seq_;
  effects->events.push_back(
      LockEvent{LockEvent::Type::kQueued, req.path, req.owner, req.mode, /*token=*/0});
  a.outcome = LockOutcome::kQueued;
  return a;
}

LockAnswer LockTable::Release(const std::string& path, const LockOwner& owner, uint64_t token,
                              uint64_t request_id, int64_t now_ms, const ConditionCheck& check,
                              LockEffects* effects) {
  WARDEN_CHECK(effects != nullptr);
  if (const LockAnswer* first = Recall(owner.session, request_id)) return *first;
  LockAnswer a = ReleaseOnce(path, owner, token, request_id, now_ms, check, effects);
  Remember(owner.session, request_id, a, false);
  return a;
}

LockAnswer LockTable::ReleaseOnce(const std::string& path, const LockOwner& owner, uint64_t token,
                                  uint64_t request_id, int64_t now_ms, const ConditionCheck& check,
                                  LockEffects* effects) {
  LockAnswer a;
  a.path = path;
  a.owner = owner;
  a.request_id = request_id;
  auto it = locks_.find(path);
  const size_t h = it == locks_.end() ? kNone : HolderIndex(it->second.holders, owner);
  if (h == kNone) {
    a.outcome = LockOutcome::kNotHeld;
    return a;
  }
  Lock& lock = it->second;
  LockHolder& holder = lock.holders[h];
  if (holder.token != token) {
    a.outcome = LockOutcome::kBadToken;
    return a;
  }
  a.outcome = LockOutcome::kGranted;
  a.token = holder.token;
  a.hold_count = --holder.hold_count;
  if (holder.hold_count == 0) {
    const LockHolder gone = RemoveHolder(path, &lock, h);
    effects->events.push_back(
        LockEvent{LockEvent::Type::kReleased, path, gone.owner, gone.mode, gone.token});
    Settle(path, now_ms, check, effects);
  }
  return a;
}

LockAnswer LockTable::Transfer(const std::string& path, const LockOwner& owner, uint64_t token,
                               const LockOwner& to, int64_t now_ms, const ConditionCheck& check,
                               LockEffects* effects) {
  WARDEN_CHECK(effects != nullptr);
  LockAnswer a;
  a.path = path;
  a.owner = owner;
  auto it = locks_.find(path);
  const size_t h = it == locks_.end() ? kNone : HolderIndex(it->second.holders, owner);
  if (h == kNone) {
    a.outcome = LockOutcome::kNotHeld;
    return a;
  }
  Lock& lock = it->second;
  if (lock.holders[h].token != token) {
    a.outcome = LockOutcome::kBadToken;
    return a;
  }
  const size_t w = WaiterIndex(lock.waiters, to);
  if (w == kNone) {
    a.outcome = LockOutcome::kNotWaiting;
    a.detail =
        "session " + std::to_string(to.session) + " owner " + to.id + " does not wait on " + path;
    return a;
  }
  std::vector<LockHolder> rest;
  for (size_t i = 0; i < lock.holders.size(); ++i) {
    if (i != h) rest.push_back(lock.holders[i]);
  }
  if (!Compatible(lock.waiters[w].request.mode, rest)) {
    a.outcome = LockOutcome::kInvalid;
    a.detail = "the successor's mode conflicts with the other holders";
    return a;
  }
  a.outcome = LockOutcome::kGranted;
  a.token = token;
  a.hold_count = 0;
  const LockHolder gone = RemoveHolder(path, &lock, h);
  effects->events.push_back(
      LockEvent{LockEvent::Type::kReleased, path, gone.owner, gone.mode, gone.token});
  const LockWaiter next = RemoveWaiter(path, &lock, WaiterIndex(lock.waiters, to));
  if (ConditionsHold(next.request.conditions, check)) {
    Finish(AddHold(path, &lock, next.request, now_ms, /*queued=*/true, effects), effects);
  } else {
    Dismiss(path, next, LockOutcome::kConditionFailed, effects);
  }
  Settle(path, now_ms, check, effects);
  return a;
}

LockAnswer LockTable::Renew(const std::string& path, const LockOwner& owner, uint64_t token,
                            int64_t ttl_ms, uint64_t request_id, int64_t now_ms) {
  if (const LockAnswer* first = Recall(owner.session, request_id)) return *first;
  LockAnswer a = RenewOnce(path, owner, token, ttl_ms, request_id, now_ms);
  Remember(owner.session, request_id, a, false);
  return a;
}

LockAnswer LockTable::RenewOnce(const std::string& path, const LockOwner& owner, uint64_t token,
                                int64_t ttl_ms, uint64_t request_id, int64_t now_ms) {
  LockAnswer a;
  a.path = path;
  a.owner = owner;
  a.request_id = request_id;
  if (ttl_ms < 0) {
    a.outcome = LockOutcome::kInvalid;
    a.detail = "ttl_ms is negative";
    return a;
  }
  auto it = locks_.find(path);
  const size_t h = it == locks_.end() ? kNone : HolderIndex(it->second.holders, owner);
  if (h == kNone) {
    a.outcome = LockOutcome::kNotHeld;
    return a;
  }
  LockHolder& holder = it->second.holders[h];
  if (holder.token != token) {
    a.outcome = LockOutcome::kBadToken;
    return a;
  }
  SetHoldExpiry(path, &holder, ttl_ms > 0 ? ExpiryAfter(now_ms, ttl_ms) : 0);
  a.outcome = LockOutcome::kGranted;
  a.token = holder.token;
  a.hold_count = holder.hold_count;
  return a;
}

LockAnswer LockTable::Cancel(const std::string& path, const LockOwner& owner, uint64_t request_id,
                             int64_t now_ms, const ConditionCheck& check, LockEffects* effects) {
  WARDEN_CHECK(effects != nullptr);
  if (const LockAnswer* first = Recall(owner.session, request_id)) return *first;
  LockAnswer a = CancelOnce(path, owner, request_id, now_ms, check, effects);
  Remember(owner.session, request_id, a, false);
  return a;
}

LockAnswer LockTable::CancelOnce(const std::string& path, const LockOwner& owner,
                                 uint64_t request_id, int64_t now_ms, const ConditionCheck& check,
                                 LockEffects* effects) {
  LockAnswer a;
  a.path = path;
  a.owner = owner;
  a.request_id = request_id;
  auto it = locks_.find(path);
  const size_t w = it == locks_.end() ? kNone : WaiterIndex(it->second.waiters, owner);
  if (w == kNone) {
    a.outcome = LockOutcome::kNotWaiting;
    return a;
  }
  const LockWaiter gone = RemoveWaiter(path, &it->second, w);
  Dismiss(path, gone, LockOutcome::kCancelled, effects);
  // An exclusive waiter that leaves may have been all that kept shared
  // waiters behind it from joining the holders.
  Settle(path, now_ms, check, effects);
  a.outcome = LockOutcome::kCancelled;
  return a;
}

LockAnswer LockTable::SetValue(const std::string& path, const LockOwner& owner, uint64_t token,
                               std::string value) {
  LockAnswer a;
  a.path = path;
  a.owner = owner;
  auto it = locks_.find(path);
  const size_t h = it == locks_.end() ? kNone : HolderIndex(it->second.holders, owner);
  if (h == kNone) {
    a.outcome = LockOutcome::kNotHeld;
    return a;
  }
  LockHolder& holder = it->second.holders[h];
  if (holder.token != token) {
    a.outcome = LockOutcome::kBadToken;
    return a;
  }
  holder.value = std::move(value);
  a.outcome = LockOutcome::kGranted;
  a.token = holder.token;
  a.hold_count = holder.hold_count;
  return a;
}

void LockTable::EndSession(int64_t session, int64_t now_ms, const ConditionCheck& check,
                           LockEffects* effects) {
  WARDEN_CHECK(effects != nullptr);
  // LockOwner orders by session first and the empty id is the least, so the
  // session's owners start at lower_bound({session, ""}).
  const LockOwner first{session, ""};
  std::vector<std::pair<LockOwner, std::string>> waits, holds;
  for (auto it = waits_by_owner_.lower_bound(first);
       it != waits_by_owner_.end() && it->first.session == session; ++it) {
    for (const std::string& path : it->second) waits.emplace_back(it->first, path);
  }
  for (auto it = holds_by_owner_.lower_bound(first);
       it != holds_by_owner_.end() && it->first.session == session; ++it) {
    for (const std::string& path : it->second) holds.emplace_back(it->first, path);
  }
  std::set<std::string> touched;
  // Waits go first, so that the grant passes below cannot hand a lock to
  // this session (etcd issue 11456: a waiter whose session expired while
  // queued was granted the lock).
  for (const auto& [owner, path] : waits) {
    if (bugs_.keep_ended_waits) break;  // planted bug
    Lock& lock = locks_.at(path);
    const LockWaiter gone = RemoveWaiter(path, &lock, WaiterIndex(lock.waiters, owner));
    Dismiss(path, gone, LockOutcome::kSessionEnded, effects);
    touched.insert(path);
  }
  for (const auto& [owner, path] : holds) {
    Lock& lock = locks_.at(path);
    const LockHolder gone = RemoveHolder(path, &lock, HolderIndex(lock.holders, owner));
    effects->events.push_back(
        LockEvent{LockEvent::Type::kReleased, path, gone.owner, gone.mode, gone.token});
    touched.insert(path);
  }
  memory_.erase(session);
  for (const std::string& path : touched) Settle(path, now_ms, check, effects);
}

void LockTable::Expire(int64_t now_ms, const ConditionCheck& check, LockEffects* effects) {
  WARDEN_CHECK(effects != nullptr);
  std::set<std::string> touched;
  while (!due_.empty() && due_.begin()->at_ms <= now_ms) {
    const Due due = *due_.begin();  // a copy: removing the entry erases it
    Lock& lock = locks_.at(due.path);
    if (due.is_hold) {
      const LockHolder gone = RemoveHolder(due.path, &lock, HolderIndex(lock.holders, due.owner));
      effects->events.push_back(
          LockEvent{LockEvent::Type::kExpired, due.path, gone.owner, gone.mode, gone.token});
    } else {
      const LockWaiter gone = RemoveWaiter(due.path, &lock, WaiterIndex(lock.waiters, due.owner));
      Dismiss(due.path, gone, LockOutcome::kTimeout, effects);
    }
    WARDEN_CHECK(due_.empty() || *due_.begin() != due);
    touched.insert(due.path);
  }
  for (const std::string& path : touched) Settle(path, now_ms, check, effects);
}

std::optional<int64_t> LockTable::NextDeadline() const {
  if (due_.empty()) return std::nullopt;
  return due_.begin()->at_ms;
}

void LockTable::Regrant(int64_t now_ms, const ConditionCheck& check, LockEffects* effects) {
  WARDEN_CHECK(effects != nullptr);
  std::vector<std::string> paths;
  for (const auto& [path, lock] : locks_) {
    if (!lock.waiters.empty()) paths.push_back(path);
  }
  for (const std::string& path : paths) Settle(path, now_ms, check, effects);
}

// ---- Reads ------------------------------------------------------------------

bool LockTable::IsHolderToken(const std::string& path, uint64_t token) const {
  auto it = locks_.find(path);
  if (it == locks_.end()) return false;
  if (bugs_.guard_any_holder) return !it->second.holders.empty();  // planted bug
  for (const LockHolder& h : it->second.holders) {
    if (h.token == token) return true;
  }
  return false;
}

std::optional<LockInfo> LockTable::Inspect(const std::string& path, int64_t now_ms) const {
  auto it = locks_.find(path);
  if (it == locks_.end()) return std::nullopt;
  LockInfo info;
  info.path = path;
  info.holders = it->second.holders;
  for (size_t i : GrantOrder(it->second.waiters, now_ms)) {
    info.waiters.push_back(it->second.waiters[i]);
  }
  return info;
}

std::vector<std::string> LockTable::Paths(const std::string& from, size_t limit) const {
  std::vector<std::string> out;
  for (auto it = locks_.lower_bound(from); it != locks_.end() && out.size() < limit; ++it) {
    out.push_back(it->first);
  }
  return out;
}

std::optional<LockAnswer> LockTable::FindAnswer(int64_t session, uint64_t request_id) const {
  auto s = memory_.find(session);
  if (s == memory_.end()) return std::nullopt;
  auto r = s->second.by_id.find(request_id);
  if (r == s->second.by_id.end() || r->second.pending) return std::nullopt;
  return r->second.answer;
}

// ---- Granting ---------------------------------------------------------------

void LockTable::Settle(const std::string& path, int64_t now_ms, const ConditionCheck& check,
                       LockEffects* effects) {
  auto it = locks_.find(path);
  if (it == locks_.end()) return;
  Lock& lock = it->second;
  // The order is fixed for the whole pass: removing a waiter does not change
  // how the others compare. In arrival order every step removes the waiter
  // it looks at or ends the pass, so the next one is always the head.
  std::optional<GrantSequence> order;
  if (!lock.arrival_order) order.emplace(lock.waiters, now_ms);
  while (order ? !order->empty() : !lock.waiters.empty()) {
    const uint64_t seq = order ? order->Next() : lock.waiters.front().seq;
    auto w = std::lower_bound(lock.waiters.begin(), lock.waiters.end(), seq,
                              [](const LockWaiter& x, uint64_t s) { return x.seq < s; });
    WARDEN_CHECK(w != lock.waiters.end() && w->seq == seq);
    const size_t i = static_cast<size_t>(w - lock.waiters.begin());
    const AcquireRequest& req = w->request;
    if (req.wait_deadline_ms > 0 && req.wait_deadline_ms <= now_ms) {
      // Its deadline passed before a tick reached Expire: it stopped waiting.
      const LockWaiter gone = RemoveWaiter(path, &lock, i);
      Dismiss(path, gone, LockOutcome::kTimeout, effects);
      continue;
    }
    // The first waiter that cannot join the holders ends the pass: nobody
    // behind it may pass it, which is what keeps writers from starving.
    if (!Compatible(req.mode, lock.holders)) break;
    if (!ConditionsHold(req.conditions, check)) {
      const LockWaiter gone = RemoveWaiter(path, &lock, i);
      Dismiss(path, gone, LockOutcome::kConditionFailed, effects);
      continue;
    }
    const LockWaiter granted = RemoveWaiter(path, &lock, i);
    Finish(AddHold(path, &lock, granted.request, now_ms, /*queued=*/true, effects), effects);
  }
  if (lock.holders.empty() && lock.waiters.empty()) locks_.erase(it);
}

LockAnswer LockTable::AddHold(const std::string& path, Lock* lock, const AcquireRequest& req,
                              int64_t now_ms, bool queued, LockEffects* effects) {
  LockHolder h;
  h.owner = req.owner;
  h.mode = req.mode;
  const bool reuse = bugs_.reuse_token && queued && last_token_ > 0;  // planted bug
  h.token = reuse ? last_token_ : ++last_token_;
  h.hold_count = 1;
  h.granted_ms = now_ms;
  h.expires_ms = req.hold_ttl_ms > 0 ? ExpiryAfter(now_ms, req.hold_ttl_ms) : 0;
  h.value = req.value;
  const uint64_t token = h.token;
  AddHolder(path, lock, std::move(h));
  effects->events.push_back(
      LockEvent{LockEvent::Type::kAcquired, path, req.owner, req.mode, token});
  LockAnswer a;
  a.path = path;
  a.owner = req.owner;
  a.request_id = req.request_id;
  a.outcome = LockOutcome::kGranted;
  a.token = token;
  a.hold_count = 1;
  return a;
}

void LockTable::AddHolder(const std::string& path, Lock* lock, LockHolder holder) {
  WARDEN_CHECK(HolderIndex(lock->holders, holder.owner) == kNone);
  holds_by_owner_[holder.owner].insert(path);
  if (holder.expires_ms != 0) due_.insert(Due{holder.expires_ms, true, path, holder.owner});
  lock->holders.push_back(std::move(holder));
}

LockHolder LockTable::RemoveHolder(const std::string& path, Lock* lock, size_t i) {
  WARDEN_CHECK(i < lock->holders.size());
  LockHolder h = std::move(lock->holders[i]);
  lock->holders.erase(lock->holders.begin() + static_cast<std::ptrdiff_t>(i));
  auto it = holds_by_owner_.find(h.owner);
  WARDEN_CHECK(it != holds_by_owner_.end());
  it->second.erase(path);
  if (it->second.empty()) holds_by_owner_.erase(it);
  if (h.expires_ms != 0) due_.erase(Due{h.expires_ms, true, path, h.owner});
  return h;
}

void LockTable::SetHoldExpiry(const std::string& path, LockHolder* holder, int64_t expires_ms) {
  if (holder->expires_ms != 0) due_.erase(Due{holder->expires_ms, true, path, holder->owner});
  holder->expires_ms = expires_ms;
  if (expires_ms != 0) due_.insert(Due{expires_ms, true, path, holder->owner});
}

void LockTable::AddWaiter(const std::string& path, Lock* lock, LockWaiter waiter) {
  WARDEN_CHECK(lock->waiters.empty() || lock->waiters.back().seq < waiter.seq);
  const AcquireRequest& req = waiter.request;
  waits_by_owner_[req.owner].insert(path);
  if (req.wait_deadline_ms > 0) due_.insert(Due{req.wait_deadline_ms, false, path, req.owner});
  if (lock->waiters.empty()) {
    lock->arrival_order = true;
  } else {
    const LockWaiter& last = lock->waiters.back();
    lock->arrival_order = lock->arrival_order && last.request.priority == req.priority &&
                          last.enqueued_ms <= waiter.enqueued_ms;
  }
  lock->waiters.push_back(std::move(waiter));
}

LockWaiter LockTable::RemoveWaiter(const std::string& path, Lock* lock, size_t i) {
  WARDEN_CHECK(i < lock->waiters.size());
  LockWaiter w = lock->waiters.Take(i);
  const AcquireRequest& req = w.request;
  auto it = waits_by_owner_.find(req.owner);
  WARDEN_CHECK(it != waits_by_owner_.end());
  it->second.erase(path);
  if (it->second.empty()) waits_by_owner_.erase(it);
  if (req.wait_deadline_ms > 0) due_.erase(Due{req.wait_deadline_ms, false, path, req.owner});
  return w;
}

void LockTable::Dismiss(const std::string& path, const LockWaiter& waiter, LockOutcome outcome,
                        LockEffects* effects) {
  LockAnswer a;
  a.path = path;
  a.owner = waiter.request.owner;
  a.request_id = waiter.request.request_id;
  a.outcome = outcome;
  Finish(a, effects);
  effects->events.push_back(LockEvent{LockEvent::Type::kCancelled, path, waiter.request.owner,
                                      waiter.request.mode, /*token=*/0});
}

void LockTable::Finish(const LockAnswer& answer, LockEffects* effects) {
  effects->answers.push_back(answer);
  if (answer.request_id == 0) return;
  auto s = memory_.find(answer.owner.session);
  if (s == memory_.end()) return;
  auto r = s->second.by_id.find(answer.request_id);
  // Only the pending entry of this very request is updated; if it was
  // dropped to make room, a retry is treated as new (and finds the hold).
  if (r == s->second.by_id.end() || !r->second.pending) return;
  r->second.answer = answer;
  r->second.pending = false;
}

// ---- Deadlock detection -----------------------------------------------------

// A cycle through `owner` needs someone waiting for it: a waiter on a lock
// it holds, or one queued behind it. Most new waiters hold nothing and join
// the end of one queue; for them this saves the search, whose cost grows
// with the square of a long queue (every waiter ahead is visited and each
// visit orders its queue).
bool LockTable::IsWaiting(const LockOwner& owner, const std::string& path) const {
  auto it = waits_by_owner_.find(owner);
  return it != waits_by_owner_.end() && it->second.count(path) != 0;
}

bool LockTable::IsHolding(const LockOwner& owner, const std::string& path) const {
  auto it = holds_by_owner_.find(owner);
  return it != holds_by_owner_.end() && it->second.count(path) != 0;
}

bool LockTable::BlocksAnyone(const LockOwner& owner, int64_t now_ms) const {
  if (auto holds = holds_by_owner_.find(owner); holds != holds_by_owner_.end()) {
    for (const std::string& path : holds->second) {
      if (!locks_.at(path).waiters.empty()) return true;
    }
  }
  if (auto waits = waits_by_owner_.find(owner); waits != waits_by_owner_.end()) {
    for (const std::string& path : waits->second) {
      const Lock& lock = locks_.at(path);
      if (lock.arrival_order) {
        if (lock.waiters.empty() || !(lock.waiters.back().request.owner == owner)) return true;
        continue;
      }
      const size_t self = WaiterIndex(lock.waiters, owner);
      if (self == kNone || !LastInGrantOrder(lock.waiters, self, now_ms)) return true;
    }
  }
  return false;
}

// Breadth-first over owners from `start`, so the cycle reported is a
// shortest one; owners, paths and edges are visited in a fixed order, so
// every replica reports the same cycle.
std::optional<std::string> LockTable::FindCycle(const LockOwner& start, int64_t now_ms) const {
  struct Edge {
    LockOwner from;
    std::string path;
    bool held = false;  // held by the target, or the target is queued ahead
  };
  auto text = [](const LockOwner& from, const std::string& path, bool held, const LockOwner& to) {
    return Describe(from) + " waits for " + path + (held ? " held by " : " queued behind ") +
           Describe(to);
  };
  // Each lock's grant order, computed once per search. A waiter is blocked
  // by the conflicting waiters ahead of it; the prefix of the order already
  // scanned for an exclusive (all ahead) or a shared visitor (the exclusive
  // ones ahead) holds nobody new, and not `start` (the search would have
  // ended), so each lock's queue is scanned once per search, not once per
  // waiter visited.
  struct Queue {
    std::vector<size_t> order;     // indexes into waiters, in grant order
    std::vector<size_t> position;  // of each waiter index in `order`
    size_t scanned_all = 0;        // order[0, scanned_all) scanned for any mode
    size_t scanned_exclusive = 0;  // order[0, scanned_exclusive) for exclusive ones
  };
  std::map<std::string_view, Queue> queues;
  std::map<LockOwner, Edge> reached_by;
  std::set<LockOwner> seen{start};
  std::deque<LockOwner> frontier{start};
  while (!frontier.empty()) {
    const LockOwner from = frontier.front();
    frontier.pop_front();
    auto waits = waits_by_owner_.find(from);
    if (waits == waits_by_owner_.end()) continue;
    for (const std::string& path : waits->second) {
      const Lock& lock = locks_.at(path);
      const size_t self = WaiterIndex(lock.waiters, from);
      WARDEN_CHECK(self != kNone);
      const LockMode mode = lock.waiters[self].request.mode;
      std::vector<std::pair<const LockOwner*, bool>> blockers;
      for (const LockHolder& h : lock.holders) {
        if (Conflict(mode, h.mode)) blockers.emplace_back(&h.owner, true);
      }
      Queue& q = queues[path];
      if (q.order.empty()) {
        q.order = GrantOrder(lock.waiters, now_ms);
        q.position.resize(q.order.size());
        for (size_t k = 0; k < q.order.size(); ++k) q.position[q.order[k]] = k;
      }
      const size_t ahead = q.position[self];
      size_t& scanned = mode == LockMode::kExclusive ? q.scanned_all : q.scanned_exclusive;
      for (size_t k = scanned; k < ahead; ++k) {
        const LockWaiter& w = lock.waiters[q.order[k]];
        if (Conflict(mode, w.request.mode)) blockers.emplace_back(&w.request.owner, false);
      }
      scanned = std::max(scanned, ahead);
      if (mode == LockMode::kExclusive) q.scanned_exclusive = std::max(q.scanned_exclusive, ahead);
      for (const auto& [to, held] : blockers) {
        if (*to == start) {
          std::vector<std::string> steps{text(from, path, held, start)};
          for (LockOwner at = from; at != start;) {
            const Edge& e = reached_by.at(at);
            steps.push_back(text(e.from, e.path, e.held, at));
            at = e.from;
          }
          std::string out;
          for (auto s = steps.rbegin(); s != steps.rend(); ++s) {
            if (!out.empty()) out += "; ";
            out += *s;
          }
          return out;
        }
        if (seen.insert(*to).second) {
          reached_by.emplace(*to, Edge{from, path, held});
          frontier.push_back(*to);
        }
      }
    }
  }
  return std::nullopt;
}

// ---- Idempotency ------------------------------------------------------------

const LockAnswer* LockTable::Recall(int64_t session, uint64_t request_id) const {
  if (request_id == 0) return nullptr;
  auto s = memory_.find(session);
  if (s == memory_.end()) return nullptr;
  auto r = s->second.by_id.find(request_id);
  return r == s->second.by_id.end() ? nullptr : &r->second.answer;
}

void LockTable::Remember(int64_t session, uint64_t request_id, const LockAnswer& answer,
                         bool pending) {
  // Session ids are positive lease ids; nothing would ever forget others.
  if (request_id == 0 || session <= 0) return;
  SessionMemory& m = memory_[session];
  auto [it, inserted] = m.by_id.try_emplace(request_id);
  it->second = Remembered{answer, pending};
  if (!inserted) return;
  m.order.push_back(request_id);
  if (m.order.size() > kMaxRememberedRequests) {
    m.by_id.erase(m.order.front());
    m.order.pop_front();
  }
}

bool LockTable::AgingMatters() const {
  for (const auto& [path, lock] : locks_) {
    for (size_t i = 1; i < lock.waiters.size(); ++i) {
      if (lock.waiters[i].request.priority != lock.waiters[0].request.priority) return true;
    }
  }
  return false;
}

}  // namespace warden::state

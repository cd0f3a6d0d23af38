#include "sim/lock_check.h"

#include "sim/world.h"
#include "src/state/command.h"

namespace warden::sim {
namespace {

using state::CommandType;
using state::LockAnswer;
using state::LockEvent;
using state::LockMode;
using state::LockOutcome;
using state::LockOwner;

bool Conflict(LockMode a, LockMode b) {
  return a == LockMode::kExclusive || b == LockMode::kExclusive;
}

const char* ModeName(LockMode m) { return m == LockMode::kShared ? "shared" : "exclusive"; }

std::string Who(const LockOwner& o) {
  return Format("session %llx owner %s", U(static_cast<uint64_t>(o.session)), o.id.c_str());
}

// FNV-1a over the parts of a result that concern locks.
class Fnv {
 public:
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>(v >> (8 * i)));
  }
  void Add(const std::string& s) {
    Add(s.size());
    for (char c : s) Byte(static_cast<uint8_t>(c));
  }
  void Add(const LockOwner& o) {
    Add(static_cast<uint64_t>(o.session));
    Add(o.id);
  }
  void Add(const LockAnswer& a) {
    Add(a.path);
    Add(a.owner);
    Add(a.request_id);
    Add(static_cast<uint64_t>(a.outcome));
    Add(a.token);
    Add(a.hold_count);
  }
  uint64_t value() const { return h_ == 0 ? 1 : h_; }

 private:
  void Byte(uint8_t b) {
    h_ ^= b;
    h_ *= 1099511628211ULL;
  }
  uint64_t h_ = 1469598103934665603ULL;
};

// 0 when the entry has nothing to do with locks.
uint64_t Fingerprint(const state::ApplyResult& r) {
  const bool lock_command = state::IsLockCommand(r.type);
  if (!lock_command && r.lock_answers.empty() && r.lock_events.empty()) return 0;
  Fnv h;
  h.Add(static_cast<uint64_t>(r.type));
  h.Add(static_cast<uint64_t>(r.status.code()));
  if (lock_command) h.Add(r.lock);
  for (const LockAnswer& a : r.lock_answers) h.Add(a);
  for (const LockEvent& e : r.lock_events) {
    h.Add(static_cast<uint64_t>(e.type));
    h.Add(e.path);
    h.Add(e.owner);
    h.Add(static_cast<uint64_t>(e.mode));
    h.Add(e.token);
  }
  return h.value();
}

}  // namespace

void LockChecker::Fail(Index index, const std::string& detail) {
  invariants_->Report("lock-safety", Format("at %llu: ", U(index)) + detail);
}

void LockChecker::OnApplied(NodeId node, const raft::Entry& e, const state::ApplyResult* r) {
  const uint64_t fingerprint = r == nullptr ? 0 : Fingerprint(*r);
  if (e.index <= checked_) {
    auto it = fingerprints_.find(e.index);
    const uint64_t first = it == fingerprints_.end() ? 0 : it->second;
    if (fingerprint != first) {
      Fail(e.index, Format("n%llu reports other lock answers or events than the first replica "
                           "to apply this entry",
                           U(node)));
    }
    return;
  }
  if (e.index != Index(checked_.value() + 1)) {
    Fail(e.index, Format("n%llu applied it first, but nobody applied %llu before it", U(node),
                         U(checked_.value() + 1)));
  }
  checked_ = e.index;
  if (fingerprint != 0) fingerprints_[e.index] = fingerprint;
  if (r != nullptr) Check(e.index, e, *r);
}

void LockChecker::Check(Index index, const raft::Entry& e, const state::ApplyResult& r) {
  acquired_.clear();
  released_.clear();
  queued_.clear();
  dismissed_.clear();
  // Events first, in order: the lock deadlines that passed before the
  // command, then the command's own; they order every change of holders.
  for (const LockEvent& ev : r.lock_events) OnEvent(index, ev);
  for (const LockAnswer& a : r.lock_answers) OnFinalAnswer(index, a);
  switch (r.type) {
    case CommandType::kLockAcquire:
    case CommandType::kLockRelease:
    case CommandType::kLockRenew:
    case CommandType::kLockCancel: OnOwnAnswer(index, r); break;
    case CommandType::kV3Lock:
    case CommandType::kV3Campaign:
      // Not sent by the simulator's clients; a grant still has its event.
      if (r.lock.outcome == LockOutcome::kGranted) {
        acquired_.erase(Key{r.lock.path, r.lock.owner, r.lock.token});
      }
      break;
    case CommandType::kGuardedTxn: OnGuardedWrite(index, e, r); break;
    case CommandType::kLeaseRevoke:
      if (r.status.ok()) OnSessionEnd(index, r.lease_id);
      break;
    case CommandType::kLeaseGrant:
      // A lease id granted again is a new session (the clients never reuse one).
      if (r.status.ok()) ended_sessions_.erase(r.lease_id);
      break;
    default: break;
  }
  for (const auto& [path, owner, token] : acquired_) {
    Fail(index, Format("%s was granted %s with token %llu, but no answer says GRANTED",
                       Who(owner).c_str(), path.c_str(), U(token)));
  }
}

void LockChecker::OnEvent(Index index, const LockEvent& ev) {
  Lock& lock = locks_[ev.path];
  const std::string who = Who(ev.owner);
  switch (ev.type) {
    case LockEvent::Type::kQueued:
      if (lock.holders.count(ev.owner) != 0 || !lock.waiters.insert(ev.owner).second) {
        Fail(index, who + " queued for " + ev.path + ", which it already holds or waits for");
      }
      queued_.emplace(ev.path, ev.owner);
      break;
    case LockEvent::Type::kAcquired: {
      ++grants_;
      if (ended_sessions_.count(ev.owner.session) != 0) {
        Fail(index, who + " was granted " + ev.path + " after its session ended");
      }
      if (ev.token <= last_token_) {
        Fail(index, Format("%s was granted %s with token %llu, not above the last grant's %llu",
                           who.c_str(), ev.path.c_str(), U(ev.token), U(last_token_)));
      }
      if (lock.holders.count(ev.owner) != 0) {
        Fail(index, who + " was granted " + ev.path + " again as a new hold while holding it");
      }
      for (const auto& [owner, hold] : lock.holders) {
        if (owner == ev.owner || !Conflict(ev.mode, hold.mode)) continue;
        Fail(index, Format("%s was granted %s %s (token %llu) while %s holds it %s (token %llu)",
                           who.c_str(), ev.path.c_str(), ModeName(ev.mode), U(ev.token),
                           Who(owner).c_str(), ModeName(hold.mode), U(hold.token)));
        break;
      }
      lock.waiters.erase(ev.owner);
      lock.holders[ev.owner] = Hold{ev.mode, ev.token};
      if (ev.token > last_token_) last_token_ = ev.token;
      acquired_.emplace(ev.path, ev.owner, ev.token);
      break;
    }
    case LockEvent::Type::kReleased:
    case LockEvent::Type::kExpired: {
      auto h = lock.holders.find(ev.owner);
      if (h == lock.holders.end() || h->second.token != ev.token) {
        Fail(index, Format("%s's hold of %s with token %llu ended, but it held no such hold",
                           who.c_str(), ev.path.c_str(), U(ev.token)));
      } else {
        lock.holders.erase(h);
      }
      released_.emplace(ev.path, ev.owner, ev.token);
      break;
    }
    case LockEvent::Type::kCancelled:
      if (lock.waiters.erase(ev.owner) == 0) {
        Fail(index, who + " stopped waiting for " + ev.path + ", but it was not waiting");
      }
      dismissed_.emplace(ev.path, ev.owner);
      break;
  }
  if (lock.holders.empty() && lock.waiters.empty()) locks_.erase(ev.path);
}

void LockChecker::OnFinalAnswer(Index index, const LockAnswer& a) {
  const std::string who = Who(a.owner);
  switch (a.outcome) {
    case LockOutcome::kGranted:
      if (acquired_.erase(Key{a.path, a.owner, a.token}) == 0) {
        Fail(index, Format("%s's queued request %llu was answered GRANTED %s with token %llu, "
                           "but no such hold began",
                           who.c_str(), U(a.request_id), a.path.c_str(), U(a.token)));
      }
      break;
    case LockOutcome::kTimeout:
    case LockOutcome::kCancelled:
    case LockOutcome::kSessionEnded:
    case LockOutcome::kConditionFailed:
      if (dismissed_.erase({a.path, a.owner}) == 0) {
        Fail(index, Format("%s's queued request %llu was answered %s for %s, but it did not "
                           "leave the queue",
                           who.c_str(), U(a.request_id), state::LockOutcomeName(a.outcome),
                           a.path.c_str()));
      }
      break;
    default:
      Fail(index, Format("%s's queued request %llu got the final answer %s", who.c_str(),
                         U(a.request_id), state::LockOutcomeName(a.outcome)));
      break;
  }
  if (a.request_id == 0) return;
  auto s = memory_.find(a.owner.session);
  if (s == memory_.end()) return;
  auto r = s->second.by_id.find(a.request_id);
  if (r != s->second.by_id.end() && r->second.pending) r->second = Remembered{a, false};
}

void LockChecker::OnOwnAnswer(Index index, const state::ApplyResult& r) {
  const LockAnswer& a = r.lock;
  const std::string who = Who(a.owner);
  // A request of a session that does not exist: no effect, not remembered.
  if (a.outcome == LockOutcome::kSessionEnded) return;
  if (a.request_id != 0) {
    auto s = memory_.find(a.owner.session);
    if (s != memory_.end()) {
      if (auto first = s->second.by_id.find(a.request_id); first != s->second.by_id.end()) {
        const LockAnswer& want = first->second.answer;
        if (a.outcome != want.outcome || a.token != want.token || a.path != want.path) {
          Fail(index, Format("%s's retry of request %llu was answered %s (token %llu), the "
                             "first time %s (token %llu)",
                             who.c_str(), U(a.request_id), state::LockOutcomeName(a.outcome),
                             U(a.token), state::LockOutcomeName(want.outcome), U(want.token)));
        }
        return;
      }
    }
  }
  const Hold* hold = FindHold(a.path, a.owner);
  if (r.type == CommandType::kLockAcquire && a.outcome == LockOutcome::kGranted) {
    if (a.hold_count == 1) {
      if (acquired_.erase(Key{a.path, a.owner, a.token}) == 0) {
        Fail(index, Format("%s was answered GRANTED %s with token %llu, but no such hold began",
                           who.c_str(), a.path.c_str(), U(a.token)));
      }
    } else if (hold == nullptr || hold->token != a.token) {
      Fail(index,
           Format("%s re-acquired %s with token %llu, but %s", who.c_str(), a.path.c_str(),
                  U(a.token),
                  hold == nullptr ? "holds nothing there"
                                  : Format("its hold has token %llu", U(hold->token)).c_str()));
    }
  } else if (r.type == CommandType::kLockAcquire && a.outcome == LockOutcome::kQueued) {
    const auto it = locks_.find(a.path);
    if (queued_.count({a.path, a.owner}) == 0 &&
        (it == locks_.end() || it->second.waiters.count(a.owner) == 0)) {
      Fail(index, who + " was answered QUEUED for " + a.path + ", but it does not wait there");
    }
  } else if (r.type == CommandType::kLockRelease && a.outcome == LockOutcome::kGranted) {
    if (a.hold_count == 0 ? released_.count(Key{a.path, a.owner, a.token}) == 0
                          : hold == nullptr || hold->token != a.token) {
      Fail(index, Format("%s released %s with token %llu (count now %u), but no such hold %s",
                         who.c_str(), a.path.c_str(), U(a.token), a.hold_count,
                         a.hold_count == 0 ? "ended" : "remains"));
    }
  } else if (r.type == CommandType::kLockRelease && a.outcome == LockOutcome::kNotHeld &&
             hold != nullptr) {
    Fail(index, Format("%s's release of %s was answered NOT_HELD, but it holds it (token %llu)",
                       who.c_str(), a.path.c_str(), U(hold->token)));
  } else if (r.type == CommandType::kLockCancel && a.outcome == LockOutcome::kNotWaiting) {
    const auto it = locks_.find(a.path);
    if (it != locks_.end() && it->second.waiters.count(a.owner) != 0) {
      Fail(index, who + "'s cancel was answered NOT_WAITING, but it waits for " + a.path);
    }
  }
  Remember(a, a.outcome == LockOutcome::kQueued);
}

void LockChecker::OnGuardedWrite(Index index, const raft::Entry& e, const state::ApplyResult& r) {
  const Result<state::Command> c = state::DecodeCommand(e.data);
  if (!c.ok()) return;
  const state::LockCommand& l = c->lock;
  const LockOwner writer{l.session, l.owner_id};
  const LockOwner* holder = nullptr;
  if (auto it = locks_.find(l.path); it != locks_.end()) {
    for (const auto& [owner, hold] : it->second.holders) {
      if (hold.token == l.token) holder = &owner;
    }
  }
  if (r.status.ok()) {
    ++guarded_ok_;
    if (holder == nullptr) {
      Fail(index, Format("a guarded write by %s with token %llu succeeded, but no current "
                         "holder of %s has that token",
                         Who(writer).c_str(), U(l.token), l.path.c_str()));
    } else if (l.session != 0 && *holder != writer) {
      Fail(index, Format("a guarded write by %s with token %llu succeeded, but that token is "
                         "%s's hold of %s",
                         Who(writer).c_str(), U(l.token), Who(*holder).c_str(), l.path.c_str()));
    }
  } else if (r.status.code() == ErrorCode::kFailedPrecondition) {
    ++guarded_refused_;
    if (holder != nullptr) {
      Fail(index, Format("a guarded write with token %llu was refused, but %s holds %s with it",
                         U(l.token), Who(*holder).c_str(), l.path.c_str()));
    }
  }
}

void LockChecker::OnSessionEnd(Index index, int64_t session) {
  for (const auto& [path, lock] : locks_) {
    for (const auto& [owner, hold] : lock.holders) {
      if (owner.session == session) {
        Fail(index, Who(owner) + " still holds " + path + " after its session ended");
      }
    }
    for (const LockOwner& owner : lock.waiters) {
      if (owner.session == session) {
        Fail(index, Who(owner) + " still waits for " + path + " after its session ended");
      }
    }
  }
  for (const auto& [path, owner, token] : released_) {
    if (owner.session == session) {
      ++sessions_ended_holding_;
      break;
    }
  }
  ended_sessions_.insert(session);
  memory_.erase(session);
}

void LockChecker::Remember(const LockAnswer& a, bool pending) {
  if (a.request_id == 0 || a.owner.session <= 0) return;
  SessionMemory& m = memory_[a.owner.session];
  auto [it, inserted] = m.by_id.try_emplace(a.request_id);
  it->second = Remembered{a, pending};
  if (!inserted) return;
  m.order.push_back(a.request_id);
  if (m.order.size() > state::LockTable::kMaxRememberedRequests) {
    m.by_id.erase(m.order.front());
    m.order.pop_front();
  }
}

const LockChecker::Hold* LockChecker::FindHold(const std::string& path,
                                               const LockOwner& owner) const {
  auto it = locks_.find(path);
  if (it == locks_.end()) return nullptr;
  auto h = it->second.holders.find(owner);
  return h == it->second.holders.end() ? nullptr : &h->second;
}

}  // namespace warden::sim

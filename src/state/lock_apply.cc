// The lock commands of the state machine: the native API (warden.v1) and
// the etcd v3lock / v3election services, both served by the lock table.
//
// etcd's lock and election keys (NAME/<lease id in hex>, attached to the
// lease) still appear in the key space with etcd's revisions, but who holds
// the lock is decided by the lock table's queue: a release (Unlock, Resign,
// or the lease's expiry) and the grant to the next waiter are one entry.
#include <cinttypes>
#include <cstdio>

#include "src/state/kv_apply.h"
#include "src/state/state_machine.h"

namespace warden::state {

namespace {

// The owner id of etcd-compatible requests within their lease's session.
constexpr char kV3Owner[] = "etcd-v3";

std::string HexLease(int64_t lease) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIx64, static_cast<uint64_t>(lease));
  return buf;
}

// NAME/<hex lease> -> (NAME, lease); false for keys of another shape.
bool ParseV3Key(const std::string& key, std::string* name, int64_t* lease) {
  const size_t slash = key.rfind('/');
  if (slash == std::string::npos || slash + 1 >= key.size() || key.size() - slash - 1 > 16) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = slash + 1; i < key.size(); ++i) {
    const char ch = key[i];
    int d = 0;
    if (ch >= '0' && ch <= '9') {
      d = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      d = ch - 'a' + 10;
    } else {
      return false;
    }
    v = v * 16 + static_cast<uint64_t>(d);
  }
  *name = key.substr(0, slash);
  *lease = static_cast<int64_t>(v);
  return *lease > 0;
}

}  // namespace

void StateMachine::ApplyLockCommand(const Command& c, ApplyResult* r, LockEffects* effects) {
  const LockCommand& l = c.lock;
  const int64_t now = c.leader_time_ms;
  if (c.type == CommandType::kLockTick) {
    locks_.Expire(now, Conditions(), effects);
    locks_.Regrant(now, Conditions(), effects);
    return;
  }
  const LockOwner owner{l.session, l.owner_id};
  r->lock.path = l.path;
  r->lock.owner = owner;
  r->lock.request_id = l.request_id;
  if (!leases_.Exists(l.session)) {
    // Includes a retry that arrives after its session ended: the session's
    // answers went with it, and nothing it asked for can take effect now.
    r->lock.outcome = LockOutcome::kSessionEnded;
    r->lock.detail = "session " + std::to_string(l.session) + " does not exist";
    return;
  }
  switch (c.type) {
    case CommandType::kLockAcquire: {
      AcquireRequest req;
      req.path = l.path;
      req.owner = owner;
      req.mode = l.mode == 1 ? LockMode::kShared : LockMode::kExclusive;
      req.priority = l.priority;
      req.wait_deadline_ms = l.wait_ms < 0 ? -1 : l.wait_ms == 0 ? 0 : now + l.wait_ms;
      req.hold_ttl_ms = l.ttl_ms;
      req.conditions = l.conditions;
      req.value = l.value;
      req.request_id = l.request_id;
      r->lock = locks_.Acquire(req, now, Conditions(), effects);
      break;
    }
    case CommandType::kLockRelease:
      r->lock = locks_.Release(l.path, owner, l.token, l.request_id, now, Conditions(), effects);
      break;
    case CommandType::kLockRenew:
      r->lock = locks_.Renew(l.path, owner, l.token, l.ttl_ms, l.request_id, now);
      break;
    case CommandType::kLockCancel:
      r->lock = locks_.Cancel(l.path, owner, l.request_id, now, Conditions(), effects);
      break;
    case CommandType::kLockTransfer:
      r->lock = locks_.Transfer(l.path, owner, l.token, LockOwner{l.to_session, l.to_owner}, now,
                                Conditions(), effects);
      break;
    default: r->status = Status::InvalidArgument("not a lock command"); break;
  }
}

void StateMachine::ApplyV3Command(const Command& c, ApplyResult* r, LockEffects* effects) {
  const LockCommand& l = c.lock;
  const int64_t now = c.leader_time_ms;
  if (c.type == CommandType::kV3Unlock || c.type == CommandType::kV3Resign) {
    std::string name;
    int64_t lease = 0;
    if (!ParseV3Key(l.key, &name, &lease)) {
      // Not a key the lock service made: etcd deletes it all the same.
      DeleteAndRelease(l.key, "", LockOwner{}, now, r, effects);
      return;
    }
    DeleteAndRelease(l.key, name, LockOwner{lease, kV3Owner}, now, r, effects);
    return;
  }
  if (c.type == CommandType::kV3Proclaim) {
    std::string name;
    int64_t lease = 0;
    std::optional<LockInfo> info;
    if (ParseV3Key(l.key, &name, &lease)) info = locks_.Inspect(name, now);
    const LockOwner owner{lease, kV3Owner};
    const LockHolder* holder = nullptr;
    if (info) {
      for (const LockHolder& h : info->holders) {
        if (h.owner == owner) holder = &h;
      }
    }
    if (holder == nullptr || !kv_.Get(l.key)) {
      r->status = Status::FailedPrecondition("etcdserver: election: not leader");
      return;
    }
    kv_.BeginWrite();
    kv_.Put(l.key, l.value, lease);
    r->events = kv_.EndWrite();
    leases_.OnEvents(r->events);
    locks_.SetValue(name, owner, holder->token, l.value);
    r->lock.token = holder->token;
    r->lock.outcome = LockOutcome::kGranted;
    return;
  }
  // kV3Lock, kV3Campaign: the key first (its create revision orders it as
  // etcd's recipe would), then the queue.
  if (!leases_.Exists(l.session)) {
    r->status = Status::NotFound("etcdserver: requested lease not found");
    return;
  }
  const std::string key = l.path + "/" + HexLease(l.session);
  const std::optional<KeyValue> existing = kv_.Get(key);
  const bool campaign = c.type == CommandType::kV3Campaign;
  if (!existing || (campaign && existing->value != l.value)) {
    kv_.BeginWrite();
    kv_.Put(key, campaign ? l.value : std::string(), l.session);
    r->events = kv_.EndWrite();
    leases_.OnEvents(r->events);
  }
  AcquireRequest req;
  req.path = l.path;
  req.owner = LockOwner{l.session, kV3Owner};
  if (std::optional<LockInfo> info = locks_.Inspect(l.path, now)) {
    for (const LockWaiter& w : info->waiters) {
      if (w.request.owner != req.owner) continue;
      // A client retrying a Lock or Campaign that still waits (after a
      // timeout or a fail-over) keeps waiting, as with etcd.
      r->lock.path = l.path;
      r->lock.owner = req.owner;
      r->lock.outcome = LockOutcome::kQueued;
      r->lock.detail = key;
      return;
    }
  }
  req.mode = LockMode::kExclusive;
  req.wait_deadline_ms = -1;
  req.value = campaign ? l.value : std::string();
  r->lock = locks_.Acquire(req, now, Conditions(), effects);
  r->lock.detail = key;
}

void StateMachine::DeleteAndRelease(const std::string& key, const std::string& path,
                                    const LockOwner& owner, int64_t now_ms, ApplyResult* r,
                                    LockEffects* effects) {
  kv_.BeginWrite();
  kv_.DeleteRange(KeyRange{key, ""});
  r->events = kv_.EndWrite();
  leases_.OnEvents(r->events);
  if (path.empty()) return;
  std::optional<LockInfo> info = locks_.Inspect(path, now_ms);
  if (!info) return;
  for (const LockHolder& h : info->holders) {
    if (h.owner != owner) continue;
    // Unlock ends the hold whatever its count (the key is gone).
    for (uint32_t i = 0; i < h.hold_count; ++i) {
      r->lock = locks_.Release(path, owner, h.token, 0, now_ms, Conditions(), effects);
    }
  }
  for (const LockWaiter& w : info->waiters) {
    if (w.request.owner == owner) locks_.Cancel(path, owner, 0, now_ms, Conditions(), effects);
  }
}

}  // namespace warden::state

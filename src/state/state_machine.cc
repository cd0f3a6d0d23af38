#include "src/state/state_machine.h"

#include "src/base/check.h"
#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "src/state/kv_apply.h"

namespace warden::state {

void StateMachine::Skip(Index index) {
  WARDEN_CHECK_MSG(index > applied_, "entries applied out of order");
  applied_ = index;
}

void StateMachine::ApplyConfChange(Index index, const raft::ConfChange& cc) {
  Skip(index);
  members_.ApplyConfChange(cc);
}

ApplyResult StateMachine::Apply(Index index, std::string_view data) {
  WARDEN_CHECK_MSG(index > applied_, "entries applied out of order");
  applied_ = index;
  Result<Command> decoded = DecodeCommand(data);
  ApplyResult r;
  if (!decoded.ok()) {
    // Every replica decodes the same bytes the same way, so refusing the
    // entry keeps them identical; the proposer's client gets the error.
    r.status = decoded.status();
    r.revision = kv_.current_revision();
    return r;
  }
  const Command& c = *decoded;
  LockEffects effects;
  if (IsLockCommand(c.type) || c.type == CommandType::kLeaseRevoke) locks_image_stale_ = true;
  // Lock deadlines that the leader's clock has passed take effect before the
  // command, whatever it is: a hold past its TTL is gone before a guarded
  // write checks its token.
  if (std::optional<int64_t> due = locks_.NextDeadline(); due && *due <= c.leader_time_ms) {
    locks_image_stale_ = true;
    locks_.Expire(c.leader_time_ms, Conditions(), &effects);
  }
  switch (c.type) {
    case CommandType::kTxn: r = ApplyTxnCommand(c); break;
    case CommandType::kCompact: r.status = kv_.Compact(c.revision); break;
    case CommandType::kLeaseGrant: r.status = leases_.Grant(c.lease_id, c.ttl_seconds); break;
    case CommandType::kLeaseRevoke: r = ApplyLeaseRevoke(c, &effects); break;
    case CommandType::kLeaseCheckpoint:
      for (const auto& [id, remaining] : c.checkpoints) leases_.Checkpoint(id, remaining);
      break;
    case CommandType::kMemberUpdate:
      r.status = members_.UpdatePeerUrls(c.member_id, c.peer_urls);
      break;
    case CommandType::kGuardedTxn:
      if (!locks_.IsHolderToken(c.lock.path, c.lock.token)) {
        r.status = Status::FailedPrecondition("lock guard: token " + std::to_string(c.lock.token) +
                                              " does not hold " + c.lock.path);
      } else {
        r = ApplyTxnCommand(c);
      }
      break;
    case CommandType::kV3Lock:
    case CommandType::kV3Unlock:
    case CommandType::kV3Campaign:
    case CommandType::kV3Proclaim:
    case CommandType::kV3Resign: ApplyV3Command(c, &r, &effects); break;
    default: ApplyLockCommand(c, &r, &effects); break;
  }
  r.type = c.type;
  r.proposal_id = c.proposal_id;
  if (c.type == CommandType::kLeaseGrant || c.type == CommandType::kLeaseRevoke) {
    r.lease_id = c.lease_id;
  }
  if (r.revision == 0) r.revision = kv_.current_revision();
  r.lock_answers = std::move(effects.answers);
  r.lock_events = std::move(effects.events);
  return r;
}

ConditionCheck StateMachine::Conditions() const {
  return [this](const std::vector<Compare>& cs) { return EvaluateCompares(kv_, cs); };
}

ApplyResult StateMachine::ApplyTxnCommand(const Command& c) {
  ApplyResult r;
  Result<AppliedTxn> applied =
      ApplyTxn(&kv_, c.txn, limits_, [this](int64_t id) { return leases_.Exists(id); });
  if (!applied.ok()) {
    r.status = applied.status();
    r.revision = kv_.current_revision();
    return r;
  }
  leases_.OnEvents(applied->events);
  r.revision = applied->revision;
  r.txn = std::move(applied->result);
  r.events = std::move(applied->events);
  return r;
}

ApplyResult StateMachine::ApplyLeaseRevoke(const Command& c, LockEffects* effects) {
  ApplyResult r;
  Result<std::vector<std::string>> keys = leases_.Revoke(c.lease_id);
  if (!keys.ok()) {
    r.status = keys.status();
    r.revision = kv_.current_revision();
    return r;
  }
  // A lease is also a session: its holds end and its waits are dropped in
  // the same entry that deletes its keys.
  locks_.EndSession(c.lease_id, c.leader_time_ms, Conditions(), effects);
  // The attached keys go in one revision, as etcd does.
  kv_.BeginWrite();
  for (const std::string& k : *keys) kv_.DeleteRange(KeyRange{k, ""});
  r.events = kv_.EndWrite();
  r.revision = kv_.current_revision();
  return r;
}

// Image, version 3: version:u8=3 | applied:u64 | kv:bytes | leases:bytes | members:bytes |
// locks:bytes (version 1 had neither members nor locks, version 2 no locks;
// both are still read).
std::string StateMachine::Serialize() const {
  std::string out;
  PutFixed8(&out, 3);
  PutFixed64(&out, applied_.value());
  // The key space, length-prefixed as PutBytes does, built in place.
  const size_t length_at = out.size();
  PutFixed32(&out, 0);
  kv_.SerializeTo(&out);
  const uint32_t kv_size = static_cast<uint32_t>(out.size() - length_at - 4);
  for (int i = 0; i < 4; ++i) out[length_at + i] = static_cast<char>(kv_size >> (8 * i));
  PutBytes(&out, leases_.Serialize());
  PutBytes(&out, members_.Serialize());
  PutBytes(&out, locks_.Serialize());
  return out;
}

std::string StateMachine::BootstrapImage(Index index, const std::vector<MemberRecord>& members) {
  StateMachine s;
  s.applied_ = index;
  for (const MemberRecord& m : members) s.members_.Upsert(m);
  return s.Serialize();
}

Status StateMachine::Restore(Index applied, std::string_view image) {
  if (image.empty()) {
    // The bootstrap snapshot of a new cluster: an empty state.
    kv_ = MvccStore();
    leases_ = LeaseTable();
    members_ = MemberTable();
    locks_ = LockTable(lock_bugs_);
    locks_image_stale_ = true;
    applied_ = applied;
    return Status::Ok();
  }
  Decoder d(image);
  uint8_t version = 0;
  uint64_t idx = 0;
  std::string_view kv, leases, members, locks;
  if (!d.GetFixed8(&version) || version < 1 || version > 3 || !d.GetFixed64(&idx) ||
      !d.GetBytes(&kv) || !d.GetBytes(&leases) || (version >= 2 && !d.GetBytes(&members)) ||
      (version >= 3 && !d.GetBytes(&locks)) || !d.empty()) {
    return Status::Corruption("malformed state machine snapshot");
  }
  if (Index(idx) != applied) {
    return Status::Corruption("state machine snapshot is of index " + std::to_string(idx) +
                              ", expected " + std::to_string(applied.value()));
  }
  Result<MvccStore> k = MvccStore::Deserialize(kv);
  if (!k.ok()) return k.status();
  Result<LeaseTable> l = LeaseTable::Deserialize(leases);
  if (!l.ok()) return l.status();
  MemberTable m;
  if (version >= 2) {
    Result<MemberTable> decoded = MemberTable::Deserialize(members);
    if (!decoded.ok()) return decoded.status();
    m = std::move(decoded).value();
  }
  LockTable lk(lock_bugs_);
  if (version >= 3) {
    Result<LockTable> decoded = LockTable::Deserialize(locks, lock_bugs_);
    if (!decoded.ok()) return decoded.status();
    lk = std::move(decoded).value();
  }
  kv_ = std::move(k).value();
  leases_ = std::move(l).value();
  members_ = std::move(m);
  locks_ = std::move(lk);
  locks_image_stale_ = true;
  applied_ = applied;
  return Status::Ok();
}

uint32_t StateMachine::Digest() const {
  const std::string leases = leases_.Serialize();
  uint32_t h = kv_.HashAt(0);
  h = crc32c::Extend(h, leases.data(), leases.size());
  const std::string members = members_.Serialize();
  h = crc32c::Extend(h, members.data(), members.size());
  if (locks_image_stale_) {
    locks_image_ = locks_.Serialize();
    locks_image_stale_ = false;
  }
  h = crc32c::Extend(h, locks_image_.data(), locks_image_.size());
  return h;
}

}  // namespace warden::state

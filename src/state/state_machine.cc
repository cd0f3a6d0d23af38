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
  r.type = c.type;
  r.proposal_id = c.proposal_id;
  r.lease_id = c.lease_id;
  switch (c.type) {
    case CommandType::kTxn: {
      ApplyResult t = ApplyTxnCommand(c);
      t.type = r.type;
      t.proposal_id = r.proposal_id;
      return t;
    }
    case CommandType::kCompact: r.status = kv_.Compact(c.revision); break;
    case CommandType::kLeaseGrant: r.status = leases_.Grant(c.lease_id, c.ttl_seconds); break;
    case CommandType::kLeaseRevoke: {
      ApplyResult t = ApplyLeaseRevoke(c);
      t.type = r.type;
      t.proposal_id = r.proposal_id;
      t.lease_id = r.lease_id;
      return t;
    }
    case CommandType::kLeaseCheckpoint:
      for (const auto& [id, remaining] : c.checkpoints) leases_.Checkpoint(id, remaining);
      break;
    case CommandType::kMemberUpdate:
      r.status = members_.UpdatePeerUrls(c.member_id, c.peer_urls);
      break;
  }
  r.revision = kv_.current_revision();
  return r;
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

ApplyResult StateMachine::ApplyLeaseRevoke(const Command& c) {
  ApplyResult r;
  Result<std::vector<std::string>> keys = leases_.Revoke(c.lease_id);
  if (!keys.ok()) {
    r.status = keys.status();
    r.revision = kv_.current_revision();
    return r;
  }
  // The attached keys go in one revision, as etcd does.
  kv_.BeginWrite();
  for (const std::string& k : *keys) kv_.DeleteRange(KeyRange{k, ""});
  r.events = kv_.EndWrite();
  r.revision = kv_.current_revision();
  return r;
}

// Image, version 2: version:u8=2 | applied:u64 | kv:bytes | leases:bytes | members:bytes
// (version 1 had no member table; it is still read).
std::string StateMachine::Serialize() const {
  std::string out;
  PutFixed8(&out, 2);
  PutFixed64(&out, applied_.value());
  PutBytes(&out, kv_.Serialize());
  PutBytes(&out, leases_.Serialize());
  PutBytes(&out, members_.Serialize());
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
    applied_ = applied;
    return Status::Ok();
  }
  Decoder d(image);
  uint8_t version = 0;
  uint64_t idx = 0;
  std::string_view kv, leases, members;
  if (!d.GetFixed8(&version) || (version != 1 && version != 2) || !d.GetFixed64(&idx) ||
      !d.GetBytes(&kv) || !d.GetBytes(&leases) || (version >= 2 && !d.GetBytes(&members)) ||
      !d.empty()) {
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
  kv_ = std::move(k).value();
  leases_ = std::move(l).value();
  members_ = std::move(m);
  applied_ = applied;
  return Status::Ok();
}

uint32_t StateMachine::Digest() const {
  const std::string leases = leases_.Serialize();
  uint32_t h = kv_.HashAt(0);
  h = crc32c::Extend(h, leases.data(), leases.size());
  const std::string members = members_.Serialize();
  h = crc32c::Extend(h, members.data(), members.size());
  return h;
}

}  // namespace warden::state

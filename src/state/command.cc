#include "src/state/command.h"

#include <functional>

#include "src/base/coding.h"

namespace warden::state {

namespace {

constexpr uint8_t kVersion = 1;
constexpr int kMaxNesting = 64;

void PutI64(std::string* out, int64_t v) { PutFixed64(out, static_cast<uint64_t>(v)); }

void EncodeRange(std::string* out, const RangeOptions& r) {
  PutBytes(out, r.range.key);
  PutBytes(out, r.range.range_end);
  PutI64(out, r.limit);
  PutI64(out, r.revision);
  PutFixed8(out, static_cast<uint8_t>(r.sort_order));
  PutFixed8(out, static_cast<uint8_t>(r.sort_target));
  PutFixed8(out, static_cast<uint8_t>((r.keys_only ? 1 : 0) | (r.count_only ? 2 : 0)));
  PutI64(out, r.min_mod_revision);
  PutI64(out, r.max_mod_revision);
  PutI64(out, r.min_create_revision);
  PutI64(out, r.max_create_revision);
}

void EncodeTxn(std::string* out, const TxnRequest& t);

void EncodeOps(std::string* out, const std::vector<RequestOp>& ops) {
  PutFixed32(out, static_cast<uint32_t>(ops.size()));
  for (const RequestOp& op : ops) {
    if (const auto* r = std::get_if<RangeOptions>(&op.op)) {
      PutFixed8(out, 0);
      EncodeRange(out, *r);
    } else if (const auto* p = std::get_if<PutRequest>(&op.op)) {
      PutFixed8(out, 1);
      PutBytes(out, p->key);
      PutBytes(out, p->value);
      PutI64(out, p->lease);
      PutFixed8(out, static_cast<uint8_t>((p->prev_kv ? 1 : 0) | (p->ignore_value ? 2 : 0) |
                                          (p->ignore_lease ? 4 : 0)));
    } else if (const auto* d = std::get_if<DeleteRangeRequest>(&op.op)) {
      PutFixed8(out, 2);
      PutBytes(out, d->range.key);
      PutBytes(out, d->range.range_end);
      PutFixed8(out, d->prev_kv ? 1 : 0);
    } else {
      PutFixed8(out, 3);
      EncodeTxn(out, *std::get<std::shared_ptr<TxnRequest>>(op.op));
    }
  }
}

void EncodeTxn(std::string* out, const TxnRequest& t) {
  PutFixed32(out, static_cast<uint32_t>(t.compares.size()));
  for (const Compare& c : t.compares) EncodeCompare(out, c);
  EncodeOps(out, t.success);
  EncodeOps(out, t.failure);
}

class CommandDecoder {
 public:
  explicit CommandDecoder(std::string_view in) : d_(in) {}

  bool I64(int64_t* v) {
    uint64_t u = 0;
    if (!d_.GetFixed64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool U8(uint8_t* v) { return d_.GetFixed8(v); }
  bool U32(uint32_t* v) { return d_.GetFixed32(v); }
  bool Str(std::string* s) {
    std::string_view v;
    if (!d_.GetBytes(&v)) return false;
    s->assign(v);
    return true;
  }
  bool done() const { return d_.empty(); }

  bool Lock(LockCommand* l) {
    uint32_t priority = 0, n = 0;
    int64_t token = 0, request_id = 0;
    if (!Str(&l->path) || !I64(&l->session) || !Str(&l->owner_id) || !U8(&l->mode) || l->mode > 1 ||
        !U32(&priority) || !I64(&l->wait_ms) || !I64(&l->ttl_ms) || !U32(&n) ||
        n > d_.remaining()) {
      return false;
    }
    l->priority = static_cast<int32_t>(priority);
    for (uint32_t i = 0; i < n; ++i) {
      Compare c;
      if (!DecodeCompare(&d_, &c)) return false;
      l->conditions.push_back(std::move(c));
    }
    if (!Str(&l->value) || !I64(&token) || !I64(&request_id) || !Str(&l->key)) return false;
    l->token = static_cast<uint64_t>(token);
    l->request_id = static_cast<uint64_t>(request_id);
    return true;
  }

  bool Range(RangeOptions* r) {
    uint8_t order, target, flags;
    if (!Str(&r->range.key) || !Str(&r->range.range_end) || !I64(&r->limit) || !I64(&r->revision) ||
        !U8(&order) || !U8(&target) || !U8(&flags) || !I64(&r->min_mod_revision) ||
        !I64(&r->max_mod_revision) || !I64(&r->min_create_revision) ||
        !I64(&r->max_create_revision)) {
      return false;
    }
    if (order > static_cast<uint8_t>(SortOrder::kDescend) ||
        target > static_cast<uint8_t>(SortTarget::kValue) || flags > 3) {
      return false;
    }
    r->sort_order = static_cast<SortOrder>(order);
    r->sort_target = static_cast<SortTarget>(target);
    r->keys_only = flags & 1;
    r->count_only = flags & 2;
    return true;
  }

  bool Ops(std::vector<RequestOp>* ops, int depth) {
    uint32_t n = 0;
    // Each op takes at least 2 bytes; refuse counts the input cannot hold.
    if (!U32(&n) || n > d_.remaining()) return false;
    for (uint32_t i = 0; i < n; ++i) {
      uint8_t kind = 0;
      if (!U8(&kind)) return false;
      switch (kind) {
        case 0: {
          RangeOptions r;
          if (!Range(&r)) return false;
          ops->push_back(RequestOp{std::move(r)});
          break;
        }
        case 1: {
          PutRequest p;
          uint8_t flags = 0;
          if (!Str(&p.key) || !Str(&p.value) || !I64(&p.lease) || !U8(&flags) || flags > 7) {
            return false;
          }
          p.prev_kv = flags & 1;
          p.ignore_value = flags & 2;
          p.ignore_lease = flags & 4;
          ops->push_back(RequestOp{std::move(p)});
          break;
        }
        case 2: {
          DeleteRangeRequest d;
          uint8_t prev = 0;
          if (!Str(&d.range.key) || !Str(&d.range.range_end) || !U8(&prev) || prev > 1) {
            return false;
          }
          d.prev_kv = prev == 1;
          ops->push_back(RequestOp{std::move(d)});
          break;
        }
        case 3: {
          auto t = std::make_shared<TxnRequest>();
          if (!Txn(t.get(), depth + 1)) return false;
          ops->push_back(RequestOp{std::move(t)});
          break;
        }
        default: return false;
      }
    }
    return true;
  }

  bool Txn(TxnRequest* t, int depth) {
    if (depth > kMaxNesting) return false;
    uint32_t n = 0;
    if (!U32(&n) || n > d_.remaining()) return false;
    for (uint32_t i = 0; i < n; ++i) {
      Compare c;
      if (!DecodeCompare(&d_, &c)) return false;
      t->compares.push_back(std::move(c));
    }
    return Ops(&t->success, depth) && Ops(&t->failure, depth);
  }

 private:
  Decoder d_;
};

}  // namespace

bool IsLockCommand(CommandType t) {
  const auto v = static_cast<uint8_t>(t);
  return v >= static_cast<uint8_t>(CommandType::kLockAcquire) &&
         v <= static_cast<uint8_t>(CommandType::kLockTransfer);
}

namespace {

void EncodeLock(std::string* out, const LockCommand& l) {
  PutBytes(out, l.path);
  PutI64(out, l.session);
  PutBytes(out, l.owner_id);
  PutFixed8(out, l.mode);
  PutFixed32(out, static_cast<uint32_t>(l.priority));
  PutI64(out, l.wait_ms);
  PutI64(out, l.ttl_ms);
  PutFixed32(out, static_cast<uint32_t>(l.conditions.size()));
  for (const Compare& c : l.conditions) EncodeCompare(out, c);
  PutBytes(out, l.value);
  PutFixed64(out, l.token);
  PutFixed64(out, l.request_id);
  PutBytes(out, l.key);
}

}  // namespace

void EncodeCompare(std::string* out, const Compare& c) {
  PutFixed8(out, static_cast<uint8_t>(c.target));
  PutFixed8(out, static_cast<uint8_t>(c.result));
  PutBytes(out, c.range.key);
  PutBytes(out, c.range.range_end);
  PutI64(out, c.number);
  PutBytes(out, c.value);
}

bool DecodeCompare(Decoder* d, Compare* c) {
  uint8_t target = 0, result = 0;
  uint64_t number = 0;
  std::string_view key, range_end, value;
  if (!d->GetFixed8(&target) || !d->GetFixed8(&result) || !d->GetBytes(&key) ||
      !d->GetBytes(&range_end) || !d->GetFixed64(&number) || !d->GetBytes(&value)) {
    return false;
  }
  if (target > static_cast<uint8_t>(Compare::Target::kLease) ||
      result > static_cast<uint8_t>(Compare::Result::kNotEqual)) {
    return false;
  }
  c->target = static_cast<Compare::Target>(target);
  c->result = static_cast<Compare::Result>(result);
  c->range.key.assign(key);
  c->range.range_end.assign(range_end);
  c->number = static_cast<int64_t>(number);
  c->value.assign(value);
  return true;
}

std::string EncodeCommand(const Command& c) {
  std::string out;
  PutFixed8(&out, kVersion);
  PutFixed8(&out, static_cast<uint8_t>(c.type));
  PutFixed64(&out, c.proposal_id);
  PutI64(&out, c.leader_time_ms);
  switch (c.type) {
    case CommandType::kTxn: EncodeTxn(&out, c.txn); break;
    case CommandType::kCompact: PutI64(&out, c.revision); break;
    case CommandType::kLeaseGrant:
      PutI64(&out, c.lease_id);
      PutI64(&out, c.ttl_seconds);
      break;
    case CommandType::kLeaseRevoke: PutI64(&out, c.lease_id); break;
    case CommandType::kLeaseCheckpoint:
      PutFixed32(&out, static_cast<uint32_t>(c.checkpoints.size()));
      for (const auto& [id, remaining] : c.checkpoints) {
        PutI64(&out, id);
        PutI64(&out, remaining);
      }
      break;
    case CommandType::kMemberUpdate:
      PutFixed64(&out, c.member_id);
      PutFixed32(&out, static_cast<uint32_t>(c.peer_urls.size()));
      for (const std::string& u : c.peer_urls) PutBytes(&out, u);
      break;
    case CommandType::kGuardedTxn:
      EncodeLock(&out, c.lock);
      EncodeTxn(&out, c.txn);
      break;
    case CommandType::kLockTransfer:
      EncodeLock(&out, c.lock);
      PutI64(&out, c.lock.to_session);
      PutBytes(&out, c.lock.to_owner);
      break;
    default:
      if (IsLockCommand(c.type)) EncodeLock(&out, c.lock);
      break;
  }
  return out;
}

namespace {
constexpr size_t kProposalIdOffset = 1 + 1;            // version, type
constexpr size_t kTimeOffset = kProposalIdOffset + 8;  // proposal_id
constexpr size_t kHeaderSize = kTimeOffset + 8;        // leader_time_ms
bool HasHeader(std::string_view encoded) {
  return encoded.size() >= kHeaderSize && static_cast<uint8_t>(encoded[0]) == kVersion;
}
}  // namespace

std::optional<uint64_t> PeekProposalId(std::string_view encoded) {
  if (!HasHeader(encoded)) return std::nullopt;
  return DecodeFixed64(encoded.data() + kProposalIdOffset);
}

uint64_t CommandFingerprint(std::string_view encoded) {
  if (!HasHeader(encoded)) return std::hash<std::string_view>{}(encoded);
  const uint64_t head = std::hash<std::string_view>{}(encoded.substr(0, kTimeOffset));
  const uint64_t body = std::hash<std::string_view>{}(encoded.substr(kHeaderSize));
  return head ^ (body * 0x9e3779b97f4a7c15ULL + 0x7f4a7c15ULL);
}

bool RestampLeaderTime(std::string* encoded, int64_t leader_time_ms) {
  if (!HasHeader(*encoded)) return false;
  std::string stamp;
  PutI64(&stamp, leader_time_ms);
  encoded->replace(kTimeOffset, 8, stamp);
  return true;
}

Result<Command> DecodeCommand(std::string_view data) {
  CommandDecoder d(data);
  Command c;
  uint8_t version = 0, type = 0;
  if (!d.U8(&version) || version != kVersion) {
    return Status::Corruption("unsupported command version " + std::to_string(version));
  }
  int64_t proposal = 0;
  if (!d.U8(&type) || !d.I64(&proposal) || !d.I64(&c.leader_time_ms)) {
    return Status::Corruption("truncated command header");
  }
  c.proposal_id = static_cast<uint64_t>(proposal);
  bool ok = false;
  switch (type) {
    case static_cast<uint8_t>(CommandType::kTxn): ok = d.Txn(&c.txn, 0); break;
    case static_cast<uint8_t>(CommandType::kCompact): ok = d.I64(&c.revision); break;
    case static_cast<uint8_t>(CommandType::kLeaseGrant):
      ok = d.I64(&c.lease_id) && d.I64(&c.ttl_seconds);
      break;
    case static_cast<uint8_t>(CommandType::kLeaseRevoke): ok = d.I64(&c.lease_id); break;
    case static_cast<uint8_t>(CommandType::kLeaseCheckpoint): {
      uint32_t n = 0;
      ok = d.U32(&n);
      for (uint32_t i = 0; ok && i < n; ++i) {
        int64_t id = 0, remaining = 0;
        ok = d.I64(&id) && d.I64(&remaining);
        if (ok) c.checkpoints.emplace_back(id, remaining);
      }
      break;
    }
    case static_cast<uint8_t>(CommandType::kMemberUpdate): {
      int64_t id = 0;
      uint32_t n = 0;
      ok = d.I64(&id) && d.U32(&n) && n <= 64;
      c.member_id = static_cast<uint64_t>(id);
      for (uint32_t i = 0; ok && i < n; ++i) {
        std::string u;
        ok = d.Str(&u);
        if (ok) c.peer_urls.push_back(std::move(u));
      }
      break;
    }
    case static_cast<uint8_t>(CommandType::kGuardedTxn):
      ok = d.Lock(&c.lock) && d.Txn(&c.txn, 0);
      break;
    case static_cast<uint8_t>(CommandType::kLockTransfer):
      ok = d.Lock(&c.lock) && d.I64(&c.lock.to_session) && d.Str(&c.lock.to_owner);
      break;
    default:
      if (!IsLockCommand(static_cast<CommandType>(type))) {
        return Status::Corruption("unknown command type " + std::to_string(type));
      }
      ok = d.Lock(&c.lock);
      break;
  }
  if (!ok || !d.done()) return Status::Corruption("malformed command body");
  c.type = static_cast<CommandType>(type);
  return c;
}

}  // namespace warden::state

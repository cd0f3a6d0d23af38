// The lock table's image (LockTable::Serialize and Deserialize): its own file,
// since the format is a contract of its own (snapshots of every member).
#include <string>
#include <string_view>
#include <utility>

#include "src/base/coding.h"
#include "src/state/command.h"
#include "src/state/lock_table.h"

namespace warden::state {

// ---- Image ------------------------------------------------------------------
//
// Version 1 (DO NOT CHANGE; a new layout gets a new version). Integers are
// little-endian; signed ones are stored as their two's complement u64/u32.
//
//   image    := version:u8=1 | last_token:u64 | last_seq:u64 |
//               nlocks:u32 lock[nlocks] | nsessions:u32 memory[nsessions]
//   lock     := path:bytes | nholders:u32 holder[] | nwaiters:u32 waiter[]
//   holder   := session:u64 | owner:bytes | mode:u8 | token:u64 | hold_count:u32 |
//               granted_ms:u64 | expires_ms:u64 | value:bytes
//   waiter   := seq:u64 | enqueued_ms:u64 | session:u64 | owner:bytes | mode:u8 |
//               priority:u32 | wait_deadline_ms:u64 | hold_ttl_ms:u64 | request_id:u64 |
//               value:bytes | ncompares:u32 compare[] (command.h's compare)
//   memory   := session:u64 | n:u32 remembered[n] (oldest first)
//   remembered := request_id:u64 | pending:u8 | path:bytes | owner:bytes | outcome:u8 |
//               token:u64 | hold_count:u32 | detail:bytes
//
// Locks are in path order, sessions ascending, holders in grant order and
// waiters in arrival order: each is the order of the state itself, so equal
// states give equal bytes. The owner indexes and deadlines are derived and
// rebuilt on load.

namespace {

void PutI64(std::string* out, int64_t v) { PutFixed64(out, static_cast<uint64_t>(v)); }

// The decoder side: Get* of coding.h with the signed and string forms.
class ImageReader {
 public:
  explicit ImageReader(std::string_view in) : d_(in) {}
  bool U8(uint8_t* v) { return d_.GetFixed8(v); }
  bool U32(uint32_t* v) { return d_.GetFixed32(v); }
  bool U64(uint64_t* v) { return d_.GetFixed64(v); }
  bool I64(int64_t* v) {
    uint64_t u = 0;
    if (!d_.GetFixed64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool Str(std::string* s) {
    std::string_view v;
    if (!d_.GetBytes(&v)) return false;
    s->assign(v);
    return true;
  }
  bool Mode(LockMode* m) {
    uint8_t v = 0;
    if (!U8(&v) || v > static_cast<uint8_t>(LockMode::kShared)) return false;
    *m = static_cast<LockMode>(v);
    return true;
  }
  Decoder* decoder() { return &d_; }
  bool done() const { return d_.empty(); }

 private:
  Decoder d_;
};

}  // namespace

std::string LockTable::Serialize() const {
  std::string out;
  PutFixed8(&out, 1);
  PutFixed64(&out, last_token_);
  PutFixed64(&out, last_seq_);
  PutFixed32(&out, static_cast<uint32_t>(locks_.size()));
  for (const auto& [path, lock] : locks_) {
    PutBytes(&out, path);
    PutFixed32(&out, static_cast<uint32_t>(lock.holders.size()));
    for (const LockHolder& h : lock.holders) {
      PutI64(&out, h.owner.session);
      PutBytes(&out, h.owner.id);
      PutFixed8(&out, static_cast<uint8_t>(h.mode));
      PutFixed64(&out, h.token);
      PutFixed32(&out, h.hold_count);
      PutI64(&out, h.granted_ms);
      PutI64(&out, h.expires_ms);
      PutBytes(&out, h.value);
    }
    PutFixed32(&out, static_cast<uint32_t>(lock.waiters.size()));
    for (const LockWaiter& w : lock.waiters) {
      const AcquireRequest& r = w.request;
      PutFixed64(&out, w.seq);
      PutI64(&out, w.enqueued_ms);
      PutI64(&out, r.owner.session);
      PutBytes(&out, r.owner.id);
      PutFixed8(&out, static_cast<uint8_t>(r.mode));
      PutFixed32(&out, static_cast<uint32_t>(r.priority));
      PutI64(&out, r.wait_deadline_ms);
      PutI64(&out, r.hold_ttl_ms);
      PutFixed64(&out, r.request_id);
      PutBytes(&out, r.value);
      PutFixed32(&out, static_cast<uint32_t>(r.conditions.size()));
      for (const Compare& c : r.conditions) EncodeCompare(&out, c);
    }
  }
  PutFixed32(&out, static_cast<uint32_t>(memory_.size()));
  for (const auto& [session, m] : memory_) {
    PutI64(&out, session);
    PutFixed32(&out, static_cast<uint32_t>(m.order.size()));
    for (uint64_t id : m.order) {
      const Remembered& r = m.by_id.at(id);
      PutFixed64(&out, id);
      PutFixed8(&out, r.pending ? 1 : 0);
      PutBytes(&out, r.answer.path);
      PutBytes(&out, r.answer.owner.id);
      PutFixed8(&out, static_cast<uint8_t>(r.answer.outcome));
      PutFixed64(&out, r.answer.token);
      PutFixed32(&out, r.answer.hold_count);
      PutBytes(&out, r.answer.detail);
    }
  }
  return out;
}

Result<LockTable> LockTable::Deserialize(std::string_view data, const LockBugs& bugs) {
  ImageReader in(data);
  LockTable t(bugs);
  uint8_t version = 0;
  uint32_t nlocks = 0;
  if (!in.U8(&version) || version != 1) return Status::Corruption("unknown lock table version");
  if (!in.U64(&t.last_token_) || !in.U64(&t.last_seq_) || !in.U32(&nlocks)) {
    return Status::Corruption("truncated lock table header");
  }
  for (uint32_t l = 0; l < nlocks; ++l) {
    std::string path;
    uint32_t nholders = 0;
    if (!in.Str(&path) || !in.U32(&nholders)) return Status::Corruption("truncated lock");
    if (path.empty() || (!t.locks_.empty() && t.locks_.rbegin()->first >= path)) {
      return Status::Corruption("lock paths empty or out of order in lock table image");
    }
    Lock& lock = t.locks_[path];
    for (uint32_t i = 0; i < nholders; ++i) {
      LockHolder h;
      if (!in.I64(&h.owner.session) || !in.Str(&h.owner.id) || !in.Mode(&h.mode) ||
          !in.U64(&h.token) || !in.U32(&h.hold_count) || !in.I64(&h.granted_ms) ||
          !in.I64(&h.expires_ms) || !in.Str(&h.value)) {
        return Status::Corruption("malformed holder of " + path);
      }
      if (h.owner.session <= 0 || h.hold_count == 0 || h.token == 0 || h.token > t.last_token_ ||
          h.expires_ms < 0 || t.IsHolding(h.owner, path)) {
        return Status::Corruption("inconsistent holder of " + path);
      }
      t.AddHolder(path, &lock, std::move(h));
    }
    uint32_t nwaiters = 0;
    if (!in.U32(&nwaiters)) return Status::Corruption("truncated lock " + path);
    for (uint32_t i = 0; i < nwaiters; ++i) {
      LockWaiter w;
      AcquireRequest& r = w.request;
      r.path = path;
      uint32_t priority = 0, ncompares = 0;
      if (!in.U64(&w.seq) || !in.I64(&w.enqueued_ms) || !in.I64(&r.owner.session) ||
          !in.Str(&r.owner.id) || !in.Mode(&r.mode) || !in.U32(&priority) ||
          !in.I64(&r.wait_deadline_ms) || !in.I64(&r.hold_ttl_ms) || !in.U64(&r.request_id) ||
          !in.Str(&r.value) || !in.U32(&ncompares)) {
        return Status::Corruption("malformed waiter of " + path);
      }
      r.priority = static_cast<int32_t>(priority);
      for (uint32_t c = 0; c < ncompares; ++c) {
        Compare cmp;
        if (!DecodeCompare(in.decoder(), &cmp)) {
          return Status::Corruption("malformed condition of a waiter of " + path);
        }
        r.conditions.push_back(std::move(cmp));
      }
      if (w.seq == 0 || w.seq > t.last_seq_ ||
          (!lock.waiters.empty() && lock.waiters.back().seq >= w.seq) || r.owner.session <= 0 ||
          (r.wait_deadline_ms != -1 && r.wait_deadline_ms <= 0) || r.hold_ttl_ms < 0 ||
          t.IsHolding(r.owner, path) || t.IsWaiting(r.owner, path)) {
        return Status::Corruption("inconsistent waiter of " + path);
      }
      t.AddWaiter(path, &lock, std::move(w));
    }
    if (lock.holders.empty()) {
      return Status::Corruption("lock " + path + " without holders in lock table image");
    }
  }
  uint32_t nsessions = 0;
  if (!in.U32(&nsessions)) return Status::Corruption("truncated lock table request memory");
  for (uint32_t s = 0; s < nsessions; ++s) {
    int64_t session = 0;
    uint32_t n = 0;
    if (!in.I64(&session) || !in.U32(&n)) return Status::Corruption("truncated request memory");
    if (session <= 0 || (!t.memory_.empty() && t.memory_.rbegin()->first >= session) || n == 0 ||
        n > kMaxRememberedRequests) {
      return Status::Corruption("inconsistent request memory in lock table image");
    }
    SessionMemory& m = t.memory_[session];
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t id = 0;
      uint8_t pending = 0, outcome = 0;
      Remembered r;
      r.answer.owner.session = session;
      if (!in.U64(&id) || !in.U8(&pending) || !in.Str(&r.answer.path) ||
          !in.Str(&r.answer.owner.id) || !in.U8(&outcome) || !in.U64(&r.answer.token) ||
          !in.U32(&r.answer.hold_count) || !in.Str(&r.answer.detail)) {
        return Status::Corruption("malformed remembered answer");
      }
      if (id == 0 || pending > 1 || outcome > static_cast<uint8_t>(LockOutcome::kInvalid) ||
          (pending == 1 && outcome != static_cast<uint8_t>(LockOutcome::kQueued)) ||
          m.by_id.count(id) != 0) {
        return Status::Corruption("inconsistent remembered answer");
      }
      r.answer.request_id = id;
      r.answer.outcome = static_cast<LockOutcome>(outcome);
      r.pending = pending == 1;
      m.by_id.emplace(id, std::move(r));
      m.order.push_back(id);
    }
  }
  if (!in.done()) return Status::Corruption("trailing bytes in lock table image");
  return t;
}

}  // namespace warden::state

#include "src/state/lease_table.h"

#include "src/base/coding.h"

namespace warden::state {

Status LeaseTable::Grant(int64_t id, int64_t ttl_seconds) {
  if (id <= 0) return Status::InvalidArgument("etcdserver: lease id must be positive");
  if (ttl_seconds > kMaxTtlSeconds)
    return Status::InvalidArgument("etcdserver: too large lease TTL");
  if (leases_.count(id))
    return Status(ErrorCode::kFailedPrecondition, "etcdserver: lease already exists");
  Lease l;
  l.id = id;
  l.ttl_seconds = ttl_seconds;
  leases_.emplace(id, std::move(l));
  return Status::Ok();
}

Result<std::vector<std::string>> LeaseTable::Revoke(int64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return Status::NotFound("etcdserver: requested lease not found");
  std::vector<std::string> keys(it->second.keys.begin(), it->second.keys.end());
  leases_.erase(it);
  return keys;
}

void LeaseTable::Checkpoint(int64_t id, int64_t remaining_ms) {
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.remaining_ms = remaining_ms < 0 ? 0 : remaining_ms;
}

void LeaseTable::OnEvents(const std::vector<Event>& events) {
  for (const Event& e : events) {
    const int64_t before = e.prev_kv ? e.prev_kv->lease : 0;
    const int64_t after = e.type == EventType::kPut ? e.kv.lease : 0;
    if (before == after) continue;
    if (before != 0) {
      auto it = leases_.find(before);
      if (it != leases_.end()) it->second.keys.erase(e.kv.key);
    }
    if (after != 0) {
      auto it = leases_.find(after);
      if (it != leases_.end()) it->second.keys.insert(e.kv.key);
    }
  }
}

const Lease* LeaseTable::Find(int64_t id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

// Image, version 1: version:u8=1 | n:u32 | per lease: id:u64 | ttl:u64 |
// remaining_ms:u64 | nkeys:u32 | keys:bytes[nkeys]
std::string LeaseTable::Serialize() const {
  std::string out;
  PutFixed8(&out, 1);
  PutFixed32(&out, static_cast<uint32_t>(leases_.size()));
  for (const auto& [id, l] : leases_) {
    PutFixed64(&out, static_cast<uint64_t>(id));
    PutFixed64(&out, static_cast<uint64_t>(l.ttl_seconds));
    PutFixed64(&out, static_cast<uint64_t>(l.remaining_ms));
    PutFixed32(&out, static_cast<uint32_t>(l.keys.size()));
    for (const std::string& k : l.keys) PutBytes(&out, k);
  }
  return out;
}

Result<LeaseTable> LeaseTable::Deserialize(std::string_view data) {
  Decoder d(data);
  uint8_t version = 0;
  uint32_t n = 0;
  if (!d.GetFixed8(&version) || version != 1 || !d.GetFixed32(&n)) {
    return Status::Corruption("malformed lease table image");
  }
  LeaseTable t;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t id, ttl, remaining;
    uint32_t nkeys;
    if (!d.GetFixed64(&id) || !d.GetFixed64(&ttl) || !d.GetFixed64(&remaining) ||
        !d.GetFixed32(&nkeys)) {
      return Status::Corruption("malformed lease in lease table image");
    }
    Lease l;
    l.id = static_cast<int64_t>(id);
    l.ttl_seconds = static_cast<int64_t>(ttl);
    l.remaining_ms = static_cast<int64_t>(remaining);
    for (uint32_t k = 0; k < nkeys; ++k) {
      std::string_view key;
      if (!d.GetBytes(&key)) return Status::Corruption("malformed lease key in lease table image");
      l.keys.emplace(key);
    }
    t.leases_.emplace(l.id, std::move(l));
  }
  if (!d.empty()) return Status::Corruption("trailing bytes in lease table image");
  return t;
}

}  // namespace warden::state

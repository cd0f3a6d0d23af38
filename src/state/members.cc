#include "src/state/members.h"

#include "src/base/coding.h"

namespace warden::state {

namespace {

constexpr size_t kMaxUrls = 64;

void PutRecord(std::string* out, const MemberRecord& m) {
  PutFixed64(out, m.id);
  PutBytes(out, m.name);
  PutFixed32(out, static_cast<uint32_t>(m.peer_urls.size()));
  for (const std::string& u : m.peer_urls) PutBytes(out, u);
}

bool GetRecord(Decoder* d, MemberRecord* m) {
  std::string_view name;
  uint32_t n = 0;
  if (!d->GetFixed64(&m->id) || m->id == 0 || !d->GetBytes(&name) || !d->GetFixed32(&n) ||
      n > kMaxUrls) {
    return false;
  }
  m->name = std::string(name);
  m->peer_urls.clear();
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view u;
    if (!d->GetBytes(&u)) return false;
    m->peer_urls.emplace_back(u);
  }
  return true;
}

}  // namespace

// Member record, version 1: version:u8=1 | id:u64 | name:bytes | n:u32 | url:bytes[n]
std::string EncodeMemberRecord(const MemberRecord& m) {
  std::string out;
  PutFixed8(&out, 1);
  PutRecord(&out, m);
  return out;
}

Result<MemberRecord> DecodeMemberRecord(std::string_view data) {
  Decoder d(data);
  uint8_t version = 0;
  MemberRecord m;
  if (!d.GetFixed8(&version) || version != 1 || !GetRecord(&d, &m) || !d.empty()) {
    return Status::Corruption("malformed member record");
  }
  return m;
}

void MemberTable::ApplyConfChange(const raft::ConfChange& cc) {
  for (const raft::ConfChangeSingle& c : cc.changes) {
    if (c.type == raft::ConfChangeType::kRemoveNode && members_.erase(c.node.value())) ++version_;
  }
  if (cc.context.empty()) return;
  Result<MemberRecord> m = DecodeMemberRecord(cc.context);
  // The proposer encoded it; a damaged context is ignored the same way on
  // every replica (the member is still added to Raft's configuration).
  if (m.ok()) Upsert(std::move(m).value());
}

void MemberTable::Upsert(MemberRecord m) {
  const uint64_t id = m.id;
  members_[id] = std::move(m);
  ++version_;
}

Status MemberTable::UpdatePeerUrls(uint64_t id, std::vector<std::string> peer_urls) {
  auto it = members_.find(id);
  if (it == members_.end()) return Status::NotFound("member not found");
  it->second.peer_urls = std::move(peer_urls);
  ++version_;
  return Status::Ok();
}

const MemberRecord* MemberTable::Find(uint64_t id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

// Table, version 1: version:u8=1 | n:u32 | record[n]
std::string MemberTable::Serialize() const {
  std::string out;
  PutFixed8(&out, 1);
  PutFixed32(&out, static_cast<uint32_t>(members_.size()));
  for (const auto& [id, m] : members_) PutRecord(&out, m);
  return out;
}

Result<MemberTable> MemberTable::Deserialize(std::string_view data) {
  Decoder d(data);
  uint8_t version = 0;
  uint32_t n = 0;
  if (!d.GetFixed8(&version) || version != 1 || !d.GetFixed32(&n)) {
    return Status::Corruption("malformed member table");
  }
  MemberTable t;
  for (uint32_t i = 0; i < n; ++i) {
    MemberRecord m;
    if (!GetRecord(&d, &m)) return Status::Corruption("malformed member table");
    t.members_[m.id] = std::move(m);
  }
  if (!d.empty()) return Status::Corruption("malformed member table");
  return t;
}

}  // namespace warden::state

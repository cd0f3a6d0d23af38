// MemberTable: what the cluster knows about each member (name, peer URLs),
// replicated through the log so that every member, and every member added
// later, sees the same list.
//
// Raft's ConfState says who votes; this table says where they are. A member
// added by MemberAdd comes in a membership-change entry whose context is the
// encoded MemberRecord; MemberUpdate changes peer URLs through a command. The
// initial members are written into the bootstrap snapshot from
// --initial-cluster, identically on every initial member.
//
// Thread safety: none; owned by the state machine.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"
#include "src/raft/types.h"

namespace warden::state {

struct MemberRecord {
  uint64_t id = 0;
  std::string name;  // empty until the member has started (etcd shows the same)
  std::vector<std::string> peer_urls;
  friend bool operator==(const MemberRecord&, const MemberRecord&) = default;
};

// The context of a ConfChange that adds a member.
std::string EncodeMemberRecord(const MemberRecord& m);
Result<MemberRecord> DecodeMemberRecord(std::string_view data);

class MemberTable {
 public:
  // Records added members (from the change's context) and forgets removed
  // ones. A change without a context (a promotion, the simulator's changes)
  // keeps what is known.
  void ApplyConfChange(const raft::ConfChange& cc);
  void Upsert(MemberRecord m);
  // MemberUpdate; kNotFound for an unknown id.
  Status UpdatePeerUrls(uint64_t id, std::vector<std::string> peer_urls);

  const MemberRecord* Find(uint64_t id) const;
  const std::map<uint64_t, MemberRecord>& all() const { return members_; }
  // Changes whenever the table does (not replicated; for observers).
  uint64_t version() const { return version_; }

  std::string Serialize() const;
  static Result<MemberTable> Deserialize(std::string_view data);

 private:
  std::map<uint64_t, MemberRecord> members_;
  uint64_t version_ = 0;
};

}  // namespace warden::state

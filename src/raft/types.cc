#include "src/raft/types.h"

#include <cstring>

namespace warden::raft {

// ConfChange encoding (replicated format; DO NOT CHANGE an existing version):
//   version 1: [1][count u32 LE] then per change [type u8][node u64 LE]
//   version 2: version 1's body with [2] first, then [context_len u32 LE][context]
// A change without a context is written as version 1, so the entries written
// before contexts existed keep their bytes.
std::string ConfChange::Encode() const {
  std::string out;
  out.push_back(context.empty() ? 1 : 2);
  const uint32_t n = static_cast<uint32_t>(changes.size());
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  for (const ConfChangeSingle& c : changes) {
    out.push_back(static_cast<char>(c.type));
    const uint64_t id = c.node.value();
    out.append(reinterpret_cast<const char*>(&id), sizeof id);
  }
  if (!context.empty()) {
    const uint32_t len = static_cast<uint32_t>(context.size());
    out.append(reinterpret_cast<const char*>(&len), sizeof len);
    out.append(context);
  }
  return out;
}

bool ConfChange::Decode(const std::string& data, ConfChange* out) {
  if (data.size() < 5 || (data[0] != 1 && data[0] != 2)) return false;
  const bool has_context = data[0] == 2;
  uint32_t n = 0;
  std::memcpy(&n, data.data() + 1, sizeof n);
  const uint64_t body = 5 + static_cast<uint64_t>(n) * 9;
  if (has_context ? data.size() < body + 4 : data.size() != body) return false;
  out->context.clear();
  if (has_context) {
    uint32_t len = 0;
    std::memcpy(&len, data.data() + body, sizeof len);
    if (data.size() != body + 4 + len || len == 0) return false;
    out->context = data.substr(body + 4);
  }
  out->changes.clear();
  size_t pos = 5;
  for (uint32_t i = 0; i < n; ++i) {
    const auto type = static_cast<uint8_t>(data[pos]);
    if (type > static_cast<uint8_t>(ConfChangeType::kRemoveNode)) return false;
    uint64_t id = 0;
    std::memcpy(&id, data.data() + pos + 1, sizeof id);
    if (id == 0) return false;
    out->changes.push_back({static_cast<ConfChangeType>(type), NodeId(id)});
    pos += 9;
  }
  return true;
}

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kAppend: return "Append";
    case MessageType::kAppendResponse: return "AppendResponse";
    case MessageType::kVote: return "Vote";
    case MessageType::kVoteResponse: return "VoteResponse";
    case MessageType::kPreVote: return "PreVote";
    case MessageType::kPreVoteResponse: return "PreVoteResponse";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kHeartbeatResponse: return "HeartbeatResponse";
    case MessageType::kSnapshot: return "Snapshot";
    case MessageType::kTimeoutNow: return "TimeoutNow";
    case MessageType::kReadIndex: return "ReadIndex";
    case MessageType::kReadIndexResponse: return "ReadIndexResponse";
    case MessageType::kTransferLeader: return "TransferLeader";
    case MessageType::kPropose: return "Propose";
  }
  return "Unknown";
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "unknown";
}

}  // namespace warden::raft

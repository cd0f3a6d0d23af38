// The data that crosses the Raft core's boundary: log entries, hard state,
// membership (ConfState / ConfChange), snapshots and messages. These are plain
// value types; the core never does I/O with them. The server encodes them for
// the wire and the disk; the simulator passes them as they are.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/base/ids.h"

namespace warden::raft {

enum class EntryType : uint8_t {
  kNormal = 0,      // application data (may be empty: a new leader's no-op)
  kConfChange = 1,  // data is an encoded ConfChange
};

struct Entry {
  Term term;
  Index index;
  EntryType type = EntryType::kNormal;
  std::string data;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// What must be durable before a node answers a vote or an append.
struct HardState {
  Term term;
  NodeId vote = kNoNode;
  Index commit;

  bool IsEmpty() const { return term == Term(0) && vote == kNoNode && commit == Index(0); }
  friend bool operator==(const HardState&, const HardState&) = default;
};

// The membership configuration. When voters_outgoing is non-empty the cluster
// is in a joint configuration (Raft thesis 4.3): decisions need a majority of
// `voters` AND a majority of `voters_outgoing`.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> voters_outgoing;
  std::vector<NodeId> learners;

  bool IsJoint() const { return !voters_outgoing.empty(); }
  friend bool operator==(const ConfState&, const ConfState&) = default;
};

enum class ConfChangeType : uint8_t {
  kAddVoter = 0,    // add a voter, or promote a learner
  kAddLearner = 1,  // add a non-voting member (not allowed for a current voter)
  kRemoveNode = 2,
};

struct ConfChangeSingle {
  ConfChangeType type = ConfChangeType::kAddVoter;
  NodeId node;
  friend bool operator==(const ConfChangeSingle&, const ConfChangeSingle&) = default;
};

// A membership change. A non-empty list enters a joint configuration
// (old voters, new voters); the leader then proposes the empty change, which
// leaves the joint configuration. Every change goes through joint consensus,
// so there is one code path to get right.
struct ConfChange {
  std::vector<ConfChangeSingle> changes;
  // Opaque to Raft: the server's description of an added member (its peer
  // URLs), applied to the member table with the change.
  std::string context;

  bool IsLeaveJoint() const { return changes.empty(); }
  std::string Encode() const;
  static bool Decode(const std::string& data, ConfChange* out);
  friend bool operator==(const ConfChange&, const ConfChange&) = default;
};

struct SnapshotMetadata {
  Index index;  // the last entry the snapshot covers
  Term term;    // that entry's term
  ConfState conf_state;
  friend bool operator==(const SnapshotMetadata&, const SnapshotMetadata&) = default;
};

struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;  // the state machine's image; opaque to Raft

  bool IsEmpty() const { return metadata.index == Index(0); }
};

enum class MessageType : uint8_t {
  kAppend,  // AppendEntries (also carries the leader's commit)
  kAppendResponse,
  kVote,  // RequestVote
  kVoteResponse,
  kPreVote,  // thesis 9.6: would you vote for me at term+1?
  kPreVoteResponse,
  kHeartbeat,  // also confirms leadership for ReadIndex (context)
  kHeartbeatResponse,
  kSnapshot,    // InstallSnapshot
  kTimeoutNow,  // leadership transfer: campaign now, ignore the lease
  kReadIndex,   // a follower asks the leader for a read index
  kReadIndexResponse,
  kTransferLeader,  // a follower asks the leader to transfer to `from`'s pick
  // A follower forwards client proposals to its leader (entries carry only
  // data). Handled by node::Node, not by the core, which refuses it.
  kPropose,
};

const char* MessageTypeName(MessageType t);

struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from;
  NodeId to;
  Term term;

  // kAppend: the entry before `entries`. kVote/kPreVote: the candidate's
  // last entry. kAppendResponse: the index acknowledged or rejected.
  Term log_term;
  Index index;
  std::vector<Entry> entries;
  Index commit;
  // kAppend with no entries that only tells a replicating follower a new
  // commit index: the follower acknowledges every entry up to `index` anyway
  // (if those acks are lost, the append the next heartbeat response provokes
  // is not commit-only), so a follower that accepts it sends no answer.
  // Heartbeats keep reporting the follower alive.
  bool commit_only = false;

  bool reject = false;
  // On a rejected append: the follower's hint (its last index, or the first
  // index of the conflicting term) and the term there, for fast back-off.
  Index reject_hint;
  Term reject_hint_term;

  // kSnapshot only.
  std::shared_ptr<const Snapshot> snapshot;

  // ReadIndex context; for kVote/kPreVote "transfer" marks a campaign started
  // by TimeoutNow, which may ignore the leader lease (thesis 3.10).
  std::string context;
};

// A linearizable read point: once the local applied index reaches `index`,
// a read tagged `context` may be served.
struct ReadState {
  Index index;
  std::string context;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

// Volatile state worth reporting; changes appear in Ready::soft_state.
struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

}  // namespace warden::raft

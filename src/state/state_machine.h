// StateMachine: the replicated state of a Warden member (the etcd key space and
// leases; locks and sessions join it later), changed only by applying
// committed log entries in order. Deterministic: the result of applying an
// entry depends only on the state and the entry (its leader-stamped time
// included), never on a clock or the local member.
//
// Errors found while applying (a lease that does not exist, a compacted
// revision) are results, not failures: every replica reaches the same error
// and the state stays the same on all of them.
//
// Thread safety: none; the node loop owns it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/ids.h"
#include "src/base/status.h"
#include "src/state/command.h"
#include "src/state/kv_request.h"
#include "src/state/lease_table.h"
#include "src/state/lock_table.h"
#include "src/state/members.h"
#include "src/state/mvcc.h"

namespace warden::state {

struct ApplyResult {
  Status status;
  CommandType type = CommandType::kTxn;
  uint64_t proposal_id = 0;
  int64_t revision = 0;  // the key space revision after this entry
  int64_t lease_id = 0;  // kLeaseGrant, kLeaseRevoke: the lease it concerned
  TxnResult txn;
  std::vector<Event> events;  // to notify watchers, in order
  // Lock commands: the answer to this request (kQueued: it waits, and its
  // final answer comes in the lock_answers of a later entry).
  LockAnswer lock;
  // Queued lock requests this entry resolved (granted, timed out, ...), and
  // the lock events, in order.
  std::vector<LockAnswer> lock_answers;
  std::vector<LockEvent> lock_events;
};

class StateMachine {
 public:
  // `lock_bugs`: planted lock table bugs for the simulator (LockBugs); the
  // server leaves them off.
  explicit StateMachine(KvLimits limits = {}, const LockBugs& lock_bugs = {})
      : limits_(limits), lock_bugs_(lock_bugs), locks_(lock_bugs) {}

  // Applies the command in a committed entry. REQUIRES: index = applied+1,
  // or any index after a Restore.
  ApplyResult Apply(Index index, std::string_view data);
  // An entry without a command (a leader's no-op) still advances the
  // applied index.
  void Skip(Index index);
  // A membership-change entry: records added members' addresses and forgets
  // removed ones (Raft applies the change to its configuration itself).
  void ApplyConfChange(Index index, const raft::ConfChange& cc);

  Index applied_index() const { return applied_; }
  const MvccStore& kv() const { return kv_; }
  const LeaseTable& leases() const { return leases_; }
  const MemberTable& members() const { return members_; }
  const LockTable& locks() const { return locks_; }
  const KvLimits& limits() const { return limits_; }

  // The image written into Raft snapshots, and its restore.
  std::string Serialize() const;
  Status Restore(Index applied, std::string_view image);
  // The image of a new cluster's bootstrap snapshot: the initial members
  // (from --initial-cluster, identical on each of them) and nothing else.
  static std::string BootstrapImage(Index index, const std::vector<MemberRecord>& members);
  // A digest of everything replicated; equal on replicas at the same index.
  uint32_t Digest() const;

 private:
  ApplyResult ApplyTxnCommand(const Command& c);
  ApplyResult ApplyLeaseRevoke(const Command& c, LockEffects* effects);
  // Lock commands (src/state/lock_apply.cc).
  void ApplyLockCommand(const Command& c, ApplyResult* r, LockEffects* effects);
  void ApplyV3Command(const Command& c, ApplyResult* r, LockEffects* effects);
  // Deletes `key` (one revision) and ends every hold and wait of `owner` on
  // `path`: etcd's Unlock and Resign.
  void DeleteAndRelease(const std::string& key, const std::string& path, const LockOwner& owner,
                        int64_t now_ms, ApplyResult* r, LockEffects* effects);
  ConditionCheck Conditions() const;

  KvLimits limits_;
  LockBugs lock_bugs_;  // kept across Restore
  MvccStore kv_;
  LeaseTable leases_;
  MemberTable members_;
  LockTable locks_;
  Index applied_;
  // The lock table's image for Digest(), kept while entries leave the locks
  // alone: it holds every session's remembered request ids, so rebuilding it
  // for each digest costs more than applying most entries.
  mutable std::string locks_image_;
  mutable bool locks_image_stale_ = true;
};

}  // namespace warden::state

// Commands: what a log entry carries to the state machine.
//
// Replicated format, version 1 (docs/state.md keeps the history; DO NOT
// CHANGE an existing encoding — add a new command type or version):
//
//   command := version:u8=1 | type:u8 | proposal_id:u64 | leader_time_ms:u64 | body
//   kTxn:             txn
//   kCompact:         revision:u64
//   kLeaseGrant:      id:u64 | ttl_seconds:u64
//   kLeaseRevoke:     id:u64
//   kLeaseCheckpoint: n:u32 | (id:u64 | remaining_ms:u64)[n]
//   kMemberUpdate:    member_id:u64 | n:u32 | peer_url:bytes[n]
//   kLockAcquire, kLockRelease, kLockRenew, kLockCancel, kLockTick,
//   kV3Lock, kV3Unlock, kV3Campaign, kV3Proclaim, kV3Resign: lock
//   kGuardedTxn:      lock | txn
//   kLockTransfer:    lock | to_session:u64 | to_owner:bytes
//   lock     := path:bytes | session:u64 | owner_id:bytes | mode:u8 | priority:u32 |
//               wait_ms:u64 | ttl_ms:u64 | n:u32 compare[n] | value:bytes | token:u64 |
//               request_id:u64 | key:bytes
//   (a wait of wait_ms > 0 ends at leader_time_ms + wait_ms)
//   txn      := n:u32 compare[n] | n:u32 op[n] (success) | n:u32 op[n] (failure)
//   compare  := target:u8 | result:u8 | key:bytes | range_end:bytes | number:u64 | value:bytes
//   op       := 0 range | 1 put | 2 delete | 3 txn
//   range    := key:bytes | range_end:bytes | limit:u64 | revision:u64 | sort_order:u8 |
//               sort_target:u8 | flags:u8 (1 keys_only, 2 count_only) |
//               min_mod:u64 | max_mod:u64 | min_create:u64 | max_create:u64
//   put      := key:bytes | value:bytes | lease:u64 | flags:u8 (1 prev_kv, 2 ignore_value, 4
//   ignore_lease) delete   := key:bytes | range_end:bytes | prev_kv:u8
//
// proposal_id lets the proposing member route the result back to the waiting
// client; it has no effect on the state. leader_time_ms is the leader's clock
// when it proposed; the state machine's only notion of "now".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/base/status.h"
#include "src/state/kv_request.h"

namespace warden {
class Decoder;
}  // namespace warden

namespace warden::state {

enum class CommandType : uint8_t {
  kTxn = 1,
  kCompact = 2,
  kLeaseGrant = 3,
  kLeaseRevoke = 4,
  kLeaseCheckpoint = 5,
  kMemberUpdate = 6,
  kLockAcquire = 7,
  kLockRelease = 8,
  kLockRenew = 9,
  kLockCancel = 10,
  kLockTick = 11,  // the leader's clock reached a lock deadline or an aging step
  kGuardedTxn = 12,
  // The etcd v3lock and v3election services, served from the lock table.
  kV3Lock = 13,
  kV3Unlock = 14,
  kV3Campaign = 15,
  kV3Proclaim = 16,
  kV3Resign = 17,
  kLockTransfer = 18,
};

// The body of every lock command; each uses the fields it needs.
struct LockCommand {
  std::string path;  // the lock; for v3 commands the election or lock name
  int64_t session = 0;
  std::string owner_id;
  uint8_t mode = 0;  // LockMode
  int32_t priority = 0;
  int64_t wait_ms = -1;  // 0 try-lock, < 0 no deadline, > 0 from leader_time_ms
  int64_t ttl_ms = 0;
  std::vector<Compare> conditions;
  std::string value;
  uint64_t token = 0;
  uint64_t request_id = 0;
  std::string key;         // v3 commands: the key etcd clients see (name/<lease hex>)
  int64_t to_session = 0;  // kLockTransfer: the successor
  std::string to_owner;
};

struct Command {
  CommandType type = CommandType::kTxn;
  uint64_t proposal_id = 0;
  int64_t leader_time_ms = 0;
  TxnRequest txn;
  int64_t revision = 0;  // kCompact
  int64_t lease_id = 0;  // kLeaseGrant, kLeaseRevoke
  int64_t ttl_seconds = 0;
  std::vector<std::pair<int64_t, int64_t>> checkpoints;  // (lease id, remaining ms)
  uint64_t member_id = 0;                                // kMemberUpdate
  std::vector<std::string> peer_urls;
  LockCommand lock;  // lock commands, kGuardedTxn (with txn)
};

bool IsLockCommand(CommandType t);

std::string EncodeCommand(const Command& c);
// Refuses malformed input (and nesting deeper than 64 transactions).
Result<Command> DecodeCommand(std::string_view data);
// Writes `leader_time_ms` into an encoded command (the leader stamps its own
// clock on commands a follower forwarded). False, and `encoded` unchanged, if
// it does not start with a command header.
bool RestampLeaderTime(std::string* encoded, int64_t leader_time_ms);
// The proposal id of an encoded command, without decoding the body; nullopt if
// `encoded` does not start with a command header.
std::optional<uint64_t> PeekProposalId(std::string_view encoded);
// A hash of an encoded command without its leader time (which the leader
// rewrites on a forward): the proposer recognizes its own entry by id and
// fingerprint.
uint64_t CommandFingerprint(std::string_view encoded);

// One `compare` as above. Exposed so that other replicated formats that carry
// etcd compares (the lock table's conditional acquires) share this encoding
// instead of keeping a copy that could drift.
void EncodeCompare(std::string* out, const Compare& c);
// Returns false on truncated input or an unknown target or result.
bool DecodeCompare(Decoder* d, Compare* c);

}  // namespace warden::state

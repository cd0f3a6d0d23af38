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
};

std::string EncodeCommand(const Command& c);
// Refuses malformed input (and nesting deeper than 64 transactions).
Result<Command> DecodeCommand(std::string_view data);

// One `compare` as above. Exposed so that other replicated formats that carry
// etcd compares (the lock table's conditional acquires) share this encoding
// instead of keeping a copy that could drift.
void EncodeCompare(std::string* out, const Compare& c);
// Returns false on truncated input or an unknown target or result.
bool DecodeCompare(Decoder* d, Compare* c);

}  // namespace warden::state

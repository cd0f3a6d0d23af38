// Applying etcd KV requests to the MVCC store, with etcd's validation rules.
//
// ValidateTxn runs before a request is proposed (and again when it is
// applied, so a replica never trusts the proposer): too many operations, a key
// put twice or put and deleted in one branch, malformed ranges.
//
// ApplyTxn evaluates the compares against the state before the transaction,
// then runs the chosen branch in order; reads inside a branch see the writes
// before them. All writes share one revision. Errors that etcd reports at
// apply time (a lease that does not exist, ignore_value on a missing key) abort
// the whole transaction without writing anything.
#pragma once

#include <functional>
#include <vector>

#include "src/base/status.h"
#include "src/state/kv_request.h"
#include "src/state/mvcc.h"

namespace warden::state {

// Whether a lease id is currently granted.
using LeaseExists = std::function<bool(int64_t lease)>;

Status ValidateTxn(const TxnRequest& txn, const KvLimits& limits);

struct AppliedTxn {
  TxnResult result;
  std::vector<Event> events;
  int64_t revision = 0;  // the store's revision after the transaction
};

Result<AppliedTxn> ApplyTxn(MvccStore* store, const TxnRequest& txn, const KvLimits& limits,
                            const LeaseExists& lease_exists);

// True when every compare holds against the store's current state.
bool EvaluateCompares(const MvccStore& store, const std::vector<Compare>& compares);

}  // namespace warden::state

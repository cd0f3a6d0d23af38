#include "src/state/kv_apply.h"

#include <set>
#include <string>

namespace warden::state {

namespace {

// etcd's wording: clients match on these strings.
constexpr char kTooManyOps[] = "etcdserver: too many operations in txn request";
constexpr char kDuplicateKey[] = "etcdserver: duplicate key given in txn request";
constexpr char kLeaseNotFound[] = "etcdserver: requested lease not found";
constexpr char kKeyNotFound[] = "etcdserver: key not found";
constexpr char kValueProvided[] = "etcdserver: value is provided";
constexpr char kLeaseProvided[] = "etcdserver: lease is provided";
constexpr char kEmptyKey[] = "etcdserver: key is not provided";

Status CheckRange(const KeyRange& r) {
  if (r.key.empty()) return Status::InvalidArgument(kEmptyKey);
  return Status::Ok();
}

// Collects the keys put and ranges deleted by a branch (and its nested
// transactions' branches) to refuse overlapping writes.
Status CheckBranch(const std::vector<RequestOp>& ops, const KvLimits& limits,
                   std::set<std::string>* puts, std::vector<KeyRange>* deletes) {
  if (ops.size() > limits.max_txn_ops) return Status::InvalidArgument(kTooManyOps);
  for (const RequestOp& op : ops) {
    if (const auto* r = std::get_if<RangeOptions>(&op.op)) {
      if (Status s = CheckRange(r->range); !s.ok()) return s;
    } else if (const auto* p = std::get_if<PutRequest>(&op.op)) {
      if (p->key.empty()) return Status::InvalidArgument(kEmptyKey);
      if (p->ignore_value && !p->value.empty()) return Status::InvalidArgument(kValueProvided);
      if (p->ignore_lease && p->lease != 0) return Status::InvalidArgument(kLeaseProvided);
      if (!puts->insert(p->key).second) return Status::InvalidArgument(kDuplicateKey);
    } else if (const auto* d = std::get_if<DeleteRangeRequest>(&op.op)) {
      if (Status s = CheckRange(d->range); !s.ok()) return s;
      deletes->push_back(d->range);
    } else {
      const TxnRequest& nested = *std::get<std::shared_ptr<TxnRequest>>(op.op);
      // Either nested branch may run in place of this op: each must agree
      // with what precedes it here, and what follows must agree with both.
      std::set<std::string> all_puts = *puts;
      std::vector<KeyRange> all_deletes = *deletes;
      for (const auto* branch : {&nested.success, &nested.failure}) {
        std::set<std::string> p2 = *puts;
        std::vector<KeyRange> d2 = *deletes;
        if (Status s = CheckBranch(*branch, limits, &p2, &d2); !s.ok()) return s;
        all_puts.insert(p2.begin(), p2.end());
        all_deletes.insert(all_deletes.end(), d2.begin() + static_cast<ptrdiff_t>(deletes->size()),
                           d2.end());
      }
      *puts = std::move(all_puts);
      *deletes = std::move(all_deletes);
    }
  }
  for (const std::string& k : *puts) {
    for (const KeyRange& d : *deletes) {
      if (d.Contains(k)) return Status::InvalidArgument(kDuplicateKey);
    }
  }
  return Status::Ok();
}

template <typename T>
bool CompareNumber(Compare::Result r, T actual, T wanted) {
  switch (r) {
    case Compare::Result::kEqual: return actual == wanted;
    case Compare::Result::kGreater: return actual > wanted;
    case Compare::Result::kLess: return actual < wanted;
    case Compare::Result::kNotEqual: return actual != wanted;
  }
  return false;
}

bool CompareOne(const Compare& c, const KeyValue* kv) {
  // A missing key has version, create and mod revision 0 and lease 0; a value
  // compare on a missing key is false (as in etcd).
  switch (c.target) {
    case Compare::Target::kVersion:
      return CompareNumber<int64_t>(c.result, kv ? kv->version : 0, c.number);
    case Compare::Target::kCreate:
      return CompareNumber<int64_t>(c.result, kv ? kv->create_revision : 0, c.number);
    case Compare::Target::kMod:
      return CompareNumber<int64_t>(c.result, kv ? kv->mod_revision : 0, c.number);
    case Compare::Target::kLease:
      return CompareNumber<int64_t>(c.result, kv ? kv->lease : 0, c.number);
    case Compare::Target::kValue:
      if (kv == nullptr) return false;
      return CompareNumber<std::string_view>(c.result, kv->value, c.value);
  }
  return false;
}

Status CheckLeases(const MvccStore& store, const std::vector<RequestOp>& ops,
                   const LeaseExists& lease_exists) {
  for (const RequestOp& op : ops) {
    if (const auto* p = std::get_if<PutRequest>(&op.op)) {
      if (p->lease != 0 && !lease_exists(p->lease)) return Status::NotFound(kLeaseNotFound);
      if ((p->ignore_value || p->ignore_lease) && !store.Get(p->key)) {
        return Status::NotFound(kKeyNotFound);
      }
    } else if (const auto* t = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
      const TxnRequest& nested = **t;
      const auto& branch =
          EvaluateCompares(store, nested.compares) ? nested.success : nested.failure;
      if (Status s = CheckLeases(store, branch, lease_exists); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

ResponseOp RunOp(MvccStore* store, const RequestOp& op);

TxnResult RunTxn(MvccStore* store, const TxnRequest& txn) {
  TxnResult result;
  result.succeeded = EvaluateCompares(*store, txn.compares);
  for (const RequestOp& op : result.succeeded ? txn.success : txn.failure) {
    result.responses.push_back(RunOp(store, op));
  }
  return result;
}

ResponseOp RunOp(MvccStore* store, const RequestOp& op) {
  ResponseOp out;
  if (const auto* r = std::get_if<RangeOptions>(&op.op)) {
    // Reads inside a transaction see its own writes: the pending revision.
    RangeOptions o = *r;
    o.revision = 0;
    Result<RangeResult> res = store->Range(o);
    out.op = res.ok() ? std::move(res).value() : RangeResult{};
  } else if (const auto* p = std::get_if<PutRequest>(&op.op)) {
    std::optional<KeyValue> cur = store->Get(p->key);
    const std::string& value = p->ignore_value && cur ? cur->value : p->value;
    const int64_t lease = p->ignore_lease && cur ? cur->lease : p->lease;
    std::optional<KeyValue> prev = store->Put(p->key, value, lease);
    PutResult pr;
    if (p->prev_kv) pr.prev_kv = std::move(prev);
    out.op = std::move(pr);
  } else if (const auto* d = std::get_if<DeleteRangeRequest>(&op.op)) {
    std::vector<KeyValue> deleted = store->DeleteRange(d->range);
    DeleteRangeResult dr;
    dr.deleted = static_cast<int64_t>(deleted.size());
    if (d->prev_kv) dr.prev_kvs = std::move(deleted);
    out.op = std::move(dr);
  } else {
    out.op =
        std::make_shared<TxnResult>(RunTxn(store, *std::get<std::shared_ptr<TxnRequest>>(op.op)));
  }
  return out;
}

}  // namespace

Status ValidateTxn(const TxnRequest& txn, const KvLimits& limits) {
  if (txn.compares.size() > limits.max_txn_ops) return Status::InvalidArgument(kTooManyOps);
  for (const Compare& c : txn.compares) {
    if (Status s = CheckRange(c.range); !s.ok()) return s;
  }
  for (const auto* branch : {&txn.success, &txn.failure}) {
    std::set<std::string> puts;
    std::vector<KeyRange> deletes;
    if (Status s = CheckBranch(*branch, limits, &puts, &deletes); !s.ok()) return s;
  }
  return Status::Ok();
}

bool EvaluateCompares(const MvccStore& store, const std::vector<Compare>& compares) {
  for (const Compare& c : compares) {
    if (c.range.IsSingleKey()) {
      std::optional<KeyValue> kv = store.Get(c.range.key);
      if (!CompareOne(c, kv ? &*kv : nullptr)) return false;
      continue;
    }
    // A range compare holds when it holds for every key in the range.
    RangeOptions o;
    o.range = c.range;
    Result<RangeResult> r = store.Range(o);
    if (!r.ok()) return false;
    for (const KeyValue& kv : r->kvs) {
      if (!CompareOne(c, &kv)) return false;
    }
  }
  return true;
}

Result<AppliedTxn> ApplyTxn(MvccStore* store, const TxnRequest& txn, const KvLimits& limits,
                            const LeaseExists& lease_exists) {
  if (Status s = ValidateTxn(txn, limits); !s.ok()) return s;
  const auto& branch = EvaluateCompares(*store, txn.compares) ? txn.success : txn.failure;
  if (Status s = CheckLeases(*store, branch, lease_exists); !s.ok()) return s;
  AppliedTxn applied;
  store->BeginWrite();
  applied.result = RunTxn(store, txn);
  applied.events = store->EndWrite();
  applied.revision = store->current_revision();
  return applied;
}

}  // namespace warden::state

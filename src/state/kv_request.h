// The etcd v3 KV requests as the state machine sees them: plain C++ values,
// converted from the wire at the service boundary. A Txn is the general form;
// Put, DeleteRange and Range are applied as single-operation transactions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "src/state/mvcc.h"

namespace warden::state {

struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  KeyRange range;
  int64_t number = 0;  // version / create / mod revision / lease id
  std::string value;   // kValue
};

struct PutRequest {
  std::string key;
  std::string value;
  int64_t lease = 0;
  bool prev_kv = false;
  bool ignore_value = false;  // keep the current value
  bool ignore_lease = false;  // keep the current lease
};

struct DeleteRangeRequest {
  KeyRange range;
  bool prev_kv = false;
};

struct TxnRequest;

struct RequestOp {
  std::variant<RangeOptions, PutRequest, DeleteRangeRequest, std::shared_ptr<TxnRequest>> op;
};

struct TxnRequest {
  std::vector<Compare> compares;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};

struct PutResult {
  std::optional<KeyValue> prev_kv;
};

struct DeleteRangeResult {
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

struct TxnResult;

struct ResponseOp {
  std::variant<RangeResult, PutResult, DeleteRangeResult, std::shared_ptr<TxnResult>> op;
};

struct TxnResult {
  bool succeeded = false;
  std::vector<ResponseOp> responses;
};

// Limits that etcd enforces on requests.
struct KvLimits {
  size_t max_txn_ops = 128;
  size_t max_request_bytes = 1536 * 1024;
};

}  // namespace warden::state

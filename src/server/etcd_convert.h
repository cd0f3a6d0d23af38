// Conversions between the etcd v3 wire types (etcdserverpb, mvccpb) and the
// state machine's plain types, and from Warden's Status to the gRPC status
// that etcd clients parse (docs/etcd-errors.md). Validation of request fields
// happens here: a malformed request is refused before it reaches the log.
#pragma once

#include <grpcpp/grpcpp.h>

#include "etcd/etcdserverpb/rpc.pb.h"
#include "src/base/status.h"
#include "src/state/kv_request.h"
#include "src/state/mvcc.h"

namespace warden::server {

grpc::Status ToGrpc(const Status& s);

Result<state::RangeOptions> FromProto(const etcdserverpb::RangeRequest& r);
Result<state::PutRequest> FromProto(const etcdserverpb::PutRequest& r);
Result<state::DeleteRangeRequest> FromProto(const etcdserverpb::DeleteRangeRequest& r);
Result<state::TxnRequest> FromProto(const etcdserverpb::TxnRequest& r);

void ToProto(const state::KeyValue& kv, mvccpb::KeyValue* out);
void ToProto(const state::Event& e, bool prev_kv, mvccpb::Event* out);
void ToProto(const state::RangeResult& r, etcdserverpb::RangeResponse* out);
void ToProto(const state::TxnResult& r, etcdserverpb::TxnResponse* out);
// etcd gives every response inside a transaction the transaction's revision.
void SetSubHeaders(const etcdserverpb::ResponseHeader& h, etcdserverpb::TxnResponse* out);

}  // namespace warden::server

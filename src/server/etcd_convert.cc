#include "src/server/etcd_convert.h"

namespace warden::server {

grpc::Status ToGrpc(const Status& s) {
  using grpc::StatusCode;
  const std::string& m = s.message();
  switch (s.code()) {
    case ErrorCode::kOk: return grpc::Status::OK;
    case ErrorCode::kInvalidArgument: return {StatusCode::INVALID_ARGUMENT, m};
    case ErrorCode::kNotFound: return {StatusCode::NOT_FOUND, m};
    case ErrorCode::kNotLeader:
    case ErrorCode::kProposalDropped: return {StatusCode::UNAVAILABLE, "etcdserver: no leader"};
    case ErrorCode::kCompacted:
      return {StatusCode::OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"};
    case ErrorCode::kFutureRevision:
      return {StatusCode::OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"};
    case ErrorCode::kTimeout: return {StatusCode::UNAVAILABLE, "etcdserver: request timed out"};
    case ErrorCode::kNoSpace:
      return {StatusCode::RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"};
    case ErrorCode::kFailedPrecondition: return {StatusCode::FAILED_PRECONDITION, m};
    case ErrorCode::kCorruption:
      return {StatusCode::DATA_LOSS, "etcdserver: corrupt cluster: " + m};
    default: return {StatusCode::UNAVAILABLE, m};
  }
}

namespace {

Result<state::KeyRange> Range(const std::string& key, const std::string& end) {
  if (key.empty()) return Status::InvalidArgument("etcdserver: key is not provided");
  return state::KeyRange{key, end};
}

Result<state::RequestOp> OpFromProto(const etcdserverpb::RequestOp& op);

}  // namespace

Result<state::RangeOptions> FromProto(const etcdserverpb::RangeRequest& r) {
  Result<state::KeyRange> kr = Range(r.key(), r.range_end());
  if (!kr.ok()) return kr.status();
  if (r.limit() < 0) return Status::InvalidArgument("etcdserver: limit must be >= 0");
  if (r.revision() < 0) return Status::InvalidArgument("etcdserver: revision must be >= 0");
  state::RangeOptions o;
  o.range = *kr;
  o.limit = r.limit();
  o.revision = r.revision();
  switch (r.sort_order()) {
    case etcdserverpb::RangeRequest::NONE: o.sort_order = state::SortOrder::kNone; break;
    case etcdserverpb::RangeRequest::ASCEND: o.sort_order = state::SortOrder::kAscend; break;
    case etcdserverpb::RangeRequest::DESCEND: o.sort_order = state::SortOrder::kDescend; break;
    default: return Status::InvalidArgument("etcdserver: invalid sort option");
  }
  switch (r.sort_target()) {
    case etcdserverpb::RangeRequest::KEY: o.sort_target = state::SortTarget::kKey; break;
    case etcdserverpb::RangeRequest::VERSION: o.sort_target = state::SortTarget::kVersion; break;
    case etcdserverpb::RangeRequest::CREATE: o.sort_target = state::SortTarget::kCreate; break;
    case etcdserverpb::RangeRequest::MOD: o.sort_target = state::SortTarget::kMod; break;
    case etcdserverpb::RangeRequest::VALUE: o.sort_target = state::SortTarget::kValue; break;
    default: return Status::InvalidArgument("etcdserver: invalid sort option");
  }
  // etcd sorts by key ascending when only a target is given.
  if (o.sort_order == state::SortOrder::kNone && o.sort_target != state::SortTarget::kKey) {
    o.sort_order = state::SortOrder::kAscend;
  }
  o.keys_only = r.keys_only();
  o.count_only = r.count_only();
  o.min_mod_revision = r.min_mod_revision();
  o.max_mod_revision = r.max_mod_revision();
  o.min_create_revision = r.min_create_revision();
  o.max_create_revision = r.max_create_revision();
  return o;
}

Result<state::PutRequest> FromProto(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return Status::InvalidArgument("etcdserver: key is not provided");
  if (r.ignore_value() && !r.value().empty()) {
    return Status::InvalidArgument("etcdserver: value is provided");
  }
  if (r.ignore_lease() && r.lease() != 0) {
    return Status::InvalidArgument("etcdserver: lease is provided");
  }
  state::PutRequest p;
  p.key = r.key();
  p.value = r.value();
  p.lease = r.lease();
  p.prev_kv = r.prev_kv();
  p.ignore_value = r.ignore_value();
  p.ignore_lease = r.ignore_lease();
  return p;
}

Result<state::DeleteRangeRequest> FromProto(const etcdserverpb::DeleteRangeRequest& r) {
  Result<state::KeyRange> kr = Range(r.key(), r.range_end());
  if (!kr.ok()) return kr.status();
  return state::DeleteRangeRequest{*kr, r.prev_kv()};
}

Result<state::TxnRequest> FromProto(const etcdserverpb::TxnRequest& r) {
  state::TxnRequest t;
  for (const etcdserverpb::Compare& c : r.compare()) {
    state::Compare sc;
    Result<state::KeyRange> kr = Range(c.key(), c.range_end());
    if (!kr.ok()) return kr.status();
    sc.range = *kr;
    switch (c.result()) {
      case etcdserverpb::Compare::EQUAL: sc.result = state::Compare::Result::kEqual; break;
      case etcdserverpb::Compare::GREATER: sc.result = state::Compare::Result::kGreater; break;
      case etcdserverpb::Compare::LESS: sc.result = state::Compare::Result::kLess; break;
      case etcdserverpb::Compare::NOT_EQUAL: sc.result = state::Compare::Result::kNotEqual; break;
      default: return Status::InvalidArgument("etcdserver: invalid compare result");
    }
    switch (c.target()) {
      case etcdserverpb::Compare::VERSION:
        sc.target = state::Compare::Target::kVersion;
        sc.number = c.version();
        break;
      case etcdserverpb::Compare::CREATE:
        sc.target = state::Compare::Target::kCreate;
        sc.number = c.create_revision();
        break;
      case etcdserverpb::Compare::MOD:
        sc.target = state::Compare::Target::kMod;
        sc.number = c.mod_revision();
        break;
      case etcdserverpb::Compare::VALUE:
        sc.target = state::Compare::Target::kValue;
        sc.value = c.value();
        break;
      case etcdserverpb::Compare::LEASE:
        sc.target = state::Compare::Target::kLease;
        sc.number = c.lease();
        break;
      default: return Status::InvalidArgument("etcdserver: invalid compare target");
    }
    t.compares.push_back(std::move(sc));
  }
  for (const auto& op : r.success()) {
    Result<state::RequestOp> o = OpFromProto(op);
    if (!o.ok()) return o.status();
    t.success.push_back(std::move(o).value());
  }
  for (const auto& op : r.failure()) {
    Result<state::RequestOp> o = OpFromProto(op);
    if (!o.ok()) return o.status();
    t.failure.push_back(std::move(o).value());
  }
  return t;
}

namespace {
Result<state::RequestOp> OpFromProto(const etcdserverpb::RequestOp& op) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange: {
      Result<state::RangeOptions> r = FromProto(op.request_range());
      if (!r.ok()) return r.status();
      return state::RequestOp{std::move(r).value()};
    }
    case etcdserverpb::RequestOp::kRequestPut: {
      Result<state::PutRequest> r = FromProto(op.request_put());
      if (!r.ok()) return r.status();
      return state::RequestOp{std::move(r).value()};
    }
    case etcdserverpb::RequestOp::kRequestDeleteRange: {
      Result<state::DeleteRangeRequest> r = FromProto(op.request_delete_range());
      if (!r.ok()) return r.status();
      return state::RequestOp{std::move(r).value()};
    }
    case etcdserverpb::RequestOp::kRequestTxn: {
      Result<state::TxnRequest> r = FromProto(op.request_txn());
      if (!r.ok()) return r.status();
      return state::RequestOp{std::make_shared<state::TxnRequest>(std::move(r).value())};
    }
    default: return Status::InvalidArgument("etcdserver: empty request in txn");
  }
}
}  // namespace

void ToProto(const state::KeyValue& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_value(kv.value);
  out->set_lease(kv.lease);
}

void ToProto(const state::Event& e, bool prev_kv, mvccpb::Event* out) {
  out->set_type(e.type == state::EventType::kPut ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
  ToProto(e.kv, out->mutable_kv());
  if (prev_kv && e.prev_kv) ToProto(*e.prev_kv, out->mutable_prev_kv());
}

void ToProto(const state::RangeResult& r, etcdserverpb::RangeResponse* out) {
  for (const state::KeyValue& kv : r.kvs) ToProto(kv, out->add_kvs());
  out->set_more(r.more);
  out->set_count(r.count);
}

void SetSubHeaders(const etcdserverpb::ResponseHeader& h, etcdserverpb::TxnResponse* out) {
  // etcd's responses inside a transaction carry only the revision.
  etcdserverpb::ResponseHeader sub;
  sub.set_revision(h.revision());
  for (etcdserverpb::ResponseOp& op : *out->mutable_responses()) {
    switch (op.response_case()) {
      case etcdserverpb::ResponseOp::kResponseRange:
        *op.mutable_response_range()->mutable_header() = sub;
        break;
      case etcdserverpb::ResponseOp::kResponsePut:
        *op.mutable_response_put()->mutable_header() = sub;
        break;
      case etcdserverpb::ResponseOp::kResponseDeleteRange:
        *op.mutable_response_delete_range()->mutable_header() = sub;
        break;
      case etcdserverpb::ResponseOp::kResponseTxn:
        *op.mutable_response_txn()->mutable_header() = sub;
        SetSubHeaders(h, op.mutable_response_txn());
        break;
      default: break;
    }
  }
}

void ToProto(const state::TxnResult& r, etcdserverpb::TxnResponse* out) {
  out->set_succeeded(r.succeeded);
  for (const state::ResponseOp& op : r.responses) {
    etcdserverpb::ResponseOp* po = out->add_responses();
    if (const auto* rr = std::get_if<state::RangeResult>(&op.op)) {
      ToProto(*rr, po->mutable_response_range());
    } else if (const auto* pr = std::get_if<state::PutResult>(&op.op)) {
      auto* put = po->mutable_response_put();
      if (pr->prev_kv) ToProto(*pr->prev_kv, put->mutable_prev_kv());
    } else if (const auto* dr = std::get_if<state::DeleteRangeResult>(&op.op)) {
      auto* del = po->mutable_response_delete_range();
      del->set_deleted(dr->deleted);
      for (const state::KeyValue& kv : dr->prev_kvs) ToProto(kv, del->add_prev_kvs());
    } else {
      ToProto(*std::get<std::shared_ptr<state::TxnResult>>(op.op), po->mutable_response_txn());
    }
  }
}

}  // namespace warden::server

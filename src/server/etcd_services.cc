#include "src/server/etcd_services.h"

#include <chrono>

#include "src/server/etcd_convert.h"
#include "src/server/on_leader.h"
#include "src/state/kv_apply.h"

namespace warden::server {

namespace {

state::Command TxnCommand(state::TxnRequest txn) {
  state::Command cmd;
  cmd.type = state::CommandType::kTxn;
  cmd.txn = std::move(txn);
  return cmd;
}

}  // namespace

void ServerContext::FillHeader(const node::Node& n, int64_t revision,
                               etcdserverpb::ResponseHeader* h) const {
  h->set_cluster_id(config_->cluster_id);
  h->set_member_id(config_->self_id.value());
  h->set_revision(revision > 0 ? revision : n.state().kv().current_revision());
  h->set_raft_term(n.term().value());  // not RaftStatus(): it copies the membership
}

void ServerContext::ObserveProposal(std::chrono::steady_clock::time_point start) const {
  if (metrics_ == nullptr) return;
  metrics_->ObserveProposalSeconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

std::optional<std::string> ServerContext::ClientAddressOf(NodeId id) const {
  std::vector<std::string> urls;
  if (id == config_->self_id) {
    urls = config_->advertise_client_urls;
  } else if (std::optional<PeerInfo> p = peers_->Find(id)) {
    urls = p->client_urls;
  }
  if (urls.empty()) return std::nullopt;
  Result<std::string> a = UrlToAddress(urls.front());
  if (!a.ok()) return std::nullopt;
  return *a;
}

std::shared_ptr<grpc::Channel> ServerContext::ChannelTo(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& ch = channels_[address];
  if (!ch) ch = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  return ch;
}

// ---------------------------------------------------------------------------
// KV

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* c,
                                           const etcdserverpb::RangeRequest* req,
                                           etcdserverpb::RangeResponse* resp) {
  auto* reactor = c->DefaultReactor();
  Result<state::RangeOptions> o = FromProto(*req);
  if (!o.ok()) {
    reactor->Finish(ToGrpc(o.status()));
    return reactor;
  }
  ServerContext* ctx = ctx_;
  auto read = [ctx, reactor, resp, opts = *o](node::Node& n) {
    Result<state::RangeResult> r = n.state().kv().Range(opts);
    if (!r.ok()) return reactor->Finish(ToGrpc(r.status()));
    ToProto(*r, resp);
    ctx->FillHeader(n, 0, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  };
  const bool serializable = req->serializable();
  ctx_->host()->Post([reactor, read, serializable](node::Node& n) {
    if (serializable) return read(n);
    // Linearizable: wait until this member has applied everything committed
    // before the request arrived (ReadIndex), then read locally.
    n.ReadBarrier([&n, reactor, read](const Status& s) {
      if (!s.ok()) return reactor->Finish(ToGrpc(s));
      read(n);
    });
  });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* c,
                                         const etcdserverpb::PutRequest* req,
                                         etcdserverpb::PutResponse* resp) {
  auto* reactor = c->DefaultReactor();
  Result<state::PutRequest> p = FromProto(*req);
  if (!p.ok()) {
    reactor->Finish(ToGrpc(p.status()));
    return reactor;
  }
  if (req->ByteSizeLong() > ctx_->config().max_request_bytes) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large"});
    return reactor;
  }
  state::TxnRequest txn;
  txn.success.push_back(state::RequestOp{*p});
  ProposeHere(ctx_, reactor, resp, TxnCommand(std::move(txn)), [resp](const state::ApplyResult& r) {
    const auto& put = std::get<state::PutResult>(r.txn.responses.at(0).op);
    if (put.prev_kv) ToProto(*put.prev_kv, resp->mutable_prev_kv());
  });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* c,
                                                 const etcdserverpb::DeleteRangeRequest* req,
                                                 etcdserverpb::DeleteRangeResponse* resp) {
  auto* reactor = c->DefaultReactor();
  Result<state::DeleteRangeRequest> d = FromProto(*req);
  if (!d.ok()) {
    reactor->Finish(ToGrpc(d.status()));
    return reactor;
  }
  state::TxnRequest txn;
  txn.success.push_back(state::RequestOp{*d});
  ProposeHere(ctx_, reactor, resp, TxnCommand(std::move(txn)), [resp](const state::ApplyResult& r) {
    const auto& del = std::get<state::DeleteRangeResult>(r.txn.responses.at(0).op);
    resp->set_deleted(del.deleted);
    for (const state::KeyValue& kv : del.prev_kvs) ToProto(kv, resp->add_prev_kvs());
  });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* c,
                                         const etcdserverpb::TxnRequest* req,
                                         etcdserverpb::TxnResponse* resp) {
  auto* reactor = c->DefaultReactor();
  Result<state::TxnRequest> t = FromProto(*req);
  state::KvLimits limits;
  limits.max_txn_ops = ctx_->config().max_txn_ops;
  Status valid = t.ok() ? state::ValidateTxn(*t, limits) : t.status();
  if (!valid.ok()) {
    reactor->Finish(ToGrpc(valid));
    return reactor;
  }
  if (req->ByteSizeLong() > ctx_->config().max_request_bytes) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large"});
    return reactor;
  }
  ProposeHere(ctx_, reactor, resp, TxnCommand(std::move(t).value()),
              [resp](const state::ApplyResult& r) {
                ToProto(r.txn, resp);
                SetSubHeaders(resp->header(), resp);
              });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* c,
                                             const etcdserverpb::CompactionRequest* req,
                                             etcdserverpb::CompactionResponse* resp) {
  auto* reactor = c->DefaultReactor();
  state::Command cmd;
  cmd.type = state::CommandType::kCompact;
  cmd.revision = req->revision();
  ProposeHere(ctx_, reactor, resp, cmd, [](const state::ApplyResult&) {});
  return reactor;
}

// ---------------------------------------------------------------------------
// Maintenance

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* c,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  ctx_->host()->Post([ctx, reactor, resp](node::Node& n) {
    const raft::NodeStatus s = n.RaftStatus();
    ctx->FillHeader(n, 0, resp->mutable_header());
    resp->set_version("3.4.0");
    resp->set_leader(s.leader.value());
    resp->set_raftindex(s.commit.value());
    resp->set_raftterm(s.term.value());
    resp->set_raftappliedindex(n.state().applied_index().value());
    const auto size = static_cast<int64_t>(n.state().kv().retained_bytes());
    resp->set_dbsize(size);
    resp->set_dbsizeinuse(size);
    const auto& learners = s.conf_state.learners;
    resp->set_islearner(std::find(learners.begin(), learners.end(), s.id) != learners.end());
    if (!n.disk_failure().ok()) resp->add_errors(n.disk_failure().ToString());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* c,
                                                     const etcdserverpb::HashKVRequest* req,
                                                     etcdserverpb::HashKVResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const int64_t rev = req->revision();
  ctx_->host()->Post([ctx, reactor, resp, rev](node::Node& n) {
    const state::MvccStore& kv = n.state().kv();
    if (rev > kv.current_revision())
      return reactor->Finish(ToGrpc(warden::Status(ErrorCode::kFutureRevision, "")));
    if (rev > 0 && rev <= kv.compact_revision())
      return reactor->Finish(ToGrpc(warden::Status(ErrorCode::kCompacted, "")));
    resp->set_hash(kv.HashAt(rev));
    resp->set_compact_revision(kv.compact_revision());
    ctx->FillHeader(n, 0, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Defragment(grpc::CallbackServerContext* c,
                                                         const etcdserverpb::DefragmentRequest*,
                                                         etcdserverpb::DefragmentResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  // Nothing to do: the key space lives in memory and the WAL is compacted by
  // snapshots. Answered so that operators' scripts keep working.
  ctx_->host()->Post([ctx, reactor, resp](node::Node& n) {
    ctx->FillHeader(n, 0, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::AlarmRequest*,
                                                    etcdserverpb::AlarmResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  ctx_->host()->Post([ctx, reactor, resp](node::Node& n) {
    if (!n.disk_failure().ok()) {
      auto* a = resp->add_alarms();
      a->set_memberid(ctx->config().self_id.value());
      a->set_alarm(etcdserverpb::NOSPACE);
    }
    ctx->FillHeader(n, 0, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace warden::server

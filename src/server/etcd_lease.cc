// The etcd Lease service. Lease time is counted only by the leader (node
// layer): grants and revokes go through the log; keep-alives and time-to-live
// questions are answered by the leader, relayed there by a follower.
#include <atomic>
#include <deque>
#include <random>

#include "src/server/etcd_convert.h"
#include "src/server/etcd_services.h"
#include "src/server/on_leader.h"

namespace warden::server {

namespace {

// etcd's smallest TTL: one and a half election timeouts, rounded up to a
// second, so a lease survives a leader election.
int64_t MinTtlSeconds(const ServerConfig& c) {
  return (3 * c.election_timeout_ms / 2 + 999) / 1000;
}

int64_t NewLeaseId(const node::Node& n) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = std::random_device{}();
  for (;;) {
    uint64_t x = seed + 0x9e3779b97f4a7c15ULL * ++counter;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    const auto id = static_cast<int64_t>(x & 0x7fffffffffffffffULL);
    if (id != 0 && !n.state().leases().Exists(id)) return id;
  }
}

}  // namespace

std::optional<std::string> ServerContext::PeerAddressOf(NodeId id) const {
  const std::map<NodeId, std::vector<std::string>> members = peers_->Members();
  auto it = members.find(id);
  if (it == members.end() || it->second.empty()) return std::nullopt;
  Result<std::string> a = UrlToAddress(it->second.front());
  if (!a.ok()) return std::nullopt;
  return *a;
}

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* c,
                                                   const etcdserverpb::LeaseGrantRequest* req,
                                                   etcdserverpb::LeaseGrantResponse* resp) {
  auto* reactor = c->DefaultReactor();
  if (req->ttl() > state::LeaseTable::kMaxTtlSeconds) {
    reactor->Finish({grpc::StatusCode::OUT_OF_RANGE, "etcdserver: too large lease TTL"});
    return reactor;
  }
  if (req->id() < 0) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: lease id must be positive"});
    return reactor;
  }
  ServerContext* ctx = ctx_;
  const int64_t ttl = std::max<int64_t>(req->ttl(), MinTtlSeconds(ctx_->config()));
  const int64_t wanted = req->id();
  OnLeader<etcdserverpb::Lease>(
      ctx_, c, reactor, resp,
      [ctx, reactor, resp, ttl, wanted](node::Node& n) {
        state::Command cmd;
        cmd.type = state::CommandType::kLeaseGrant;
        cmd.lease_id = wanted != 0 ? wanted : NewLeaseId(n);
        cmd.ttl_seconds = ttl;
        const int64_t id = cmd.lease_id;
        ProposeAndReply(ctx, n, reactor, resp, std::move(cmd),
                        [resp, id, ttl](const state::ApplyResult&) {
                          resp->set_id(id);
                          resp->set_ttl(ttl);
                        });
      },
      [req, resp](etcdserverpb::Lease::Stub* stub, grpc::ClientContext* cc, auto done) {
        stub->async()->LeaseGrant(cc, req, resp, std::move(done));
      });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::LeaseRevokeRequest* req,
                                                    etcdserverpb::LeaseRevokeResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const int64_t id = req->id();
  OnLeader<etcdserverpb::Lease>(
      ctx_, c, reactor, resp,
      [ctx, reactor, resp, id](node::Node& n) {
        state::Command cmd;
        cmd.type = state::CommandType::kLeaseRevoke;
        cmd.lease_id = id;
        ProposeAndReply(ctx, n, reactor, resp, std::move(cmd), [](const state::ApplyResult&) {});
      },
      [req, resp](etcdserverpb::Lease::Stub* stub, grpc::ClientContext* cc, auto done) {
        stub->async()->LeaseRevoke(cc, req, resp, std::move(done));
      });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* c, const etcdserverpb::LeaseTimeToLiveRequest* req,
    etcdserverpb::LeaseTimeToLiveResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const int64_t id = req->id();
  const bool keys = req->keys();
  OnLeader<etcdserverpb::Lease>(
      ctx_, c, reactor, resp,
      [ctx, reactor, resp, id, keys](node::Node& n) {
        // Answer after a read barrier so a lease granted just before is seen.
        n.ReadBarrier([ctx, &n, reactor, resp, id, keys](const Status& s) {
          if (!s.ok()) return reactor->Finish(ToGrpc(s));
          resp->set_id(id);
          const state::Lease* lease = n.state().leases().Find(id);
          Result<int64_t> left = n.LeaseRemainingMs(id);
          if (lease == nullptr || !left.ok()) {
            resp->set_ttl(-1);  // etcd's answer for a lease that does not exist
          } else {
            resp->set_ttl((*left + 999) / 1000);
            resp->set_grantedttl(lease->ttl_seconds);
            if (keys) {
              for (const std::string& k : lease->keys) resp->add_keys(k);
            }
          }
          ctx->FillHeader(n, 0, resp->mutable_header());
          reactor->Finish(grpc::Status::OK);
        });
      },
      [req, resp](etcdserverpb::Lease::Stub* stub, grpc::ClientContext* cc, auto done) {
        stub->async()->LeaseTimeToLive(cc, req, resp, std::move(done));
      });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::LeaseLeasesRequest*,
                                                    etcdserverpb::LeaseLeasesResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  ctx_->host()->Post([ctx, reactor, resp](node::Node& n) {
    n.ReadBarrier([ctx, &n, reactor, resp](const Status& s) {
      if (!s.ok()) return reactor->Finish(ToGrpc(s));
      for (const auto& [id, lease] : n.state().leases().all()) resp->add_leases()->set_id(id);
      ctx->FillHeader(n, 0, resp->mutable_header());
      reactor->Finish(grpc::Status::OK);
    });
  });
  return reactor;
}

// ---------------------------------------------------------------------------
// Keep-alive: one stream, many renewals. Each renewal goes to the node loop
// (or, on a follower, to the leader's peer endpoint); answers are written in
// the order they complete, one write in flight at a time. The reactor
// finishes only when the client stopped sending and nothing is pending, so no
// callback outlives it.

namespace {

class KeepAliveReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  explicit KeepAliveReactor(ServerContext* ctx) : ctx_(ctx) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    const int64_t id = request_.id();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++pending_;
    }
    ServerContext* ctx = ctx_;
    ctx_->host()->Post([this, ctx, id](node::Node& n) {
      if (n.IsLeader()) {
        n.KeepAlive(id, [this, ctx, &n, id](const Result<int64_t>& r) {
          // Only "not found" says the lease is gone (TTL 0). Any other error
          // (this member stopped leading, the read barrier timed out) is no
          // answer, as when a relay fails: the client asks again.
          if (!r.ok() && r.status().code() != ErrorCode::kNotFound) return Respond(std::nullopt);
          etcdserverpb::LeaseKeepAliveResponse resp;
          resp.set_id(id);
          resp.set_ttl(r.ok() ? *r : 0);
          ctx->FillHeader(n, 0, resp.mutable_header());
          Respond(std::move(resp));
        });
        return;
      }
      std::optional<std::string> peer;
      if (n.leader() != kNoNode) peer = ctx->PeerAddressOf(n.leader());
      if (!peer) return Respond(std::nullopt);
      Relay(*peer, id);
    });
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writes_.pop_front();
    if (!ok) broken_ = true;
    if (!writes_.empty() && !broken_) {
      StartWrite(&writes_.front());
    } else {
      writing_ = false;
      MaybeFinishLocked();
    }
  }

  void OnDone() override { delete this; }

 private:
  void Relay(const std::string& peer, int64_t id) {
    auto stub = raftpb::Peer::NewStub(ctx_->ChannelTo(peer));
    struct Call {
      grpc::ClientContext context;
      raftpb::LeaseRenew req;
      raftpb::LeaseRenewed resp;
    };
    auto* call = new Call;
    call->req.set_id(id);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    stub->async()->RenewLease(
        &call->context, &call->req, &call->resp, [this, call, id](grpc::Status s) {
          std::optional<etcdserverpb::LeaseKeepAliveResponse> resp;
          if (s.ok() && call->resp.error().empty()) {
            resp.emplace();
            resp->set_id(id);
            resp->set_ttl(call->resp.ttl());
            resp->mutable_header()->set_cluster_id(ctx_->config().cluster_id);
            resp->mutable_header()->set_member_id(ctx_->config().self_id.value());
          }
          delete call;
          Respond(std::move(resp));
        });
  }

  // nullopt: the renewal could not be made (no leader); the client retries.
  void Respond(std::optional<etcdserverpb::LeaseKeepAliveResponse> resp) {
    std::lock_guard<std::mutex> lock(mu_);
    --pending_;
    if (resp && !broken_) {
      writes_.push_back(std::move(*resp));
      if (!writing_) {
        writing_ = true;
        StartWrite(&writes_.front());
      }
    }
    MaybeFinishLocked();
  }

  void MaybeFinishLocked() {
    if (reads_done_ && pending_ == 0 && !writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  ServerContext* ctx_;
  etcdserverpb::LeaseKeepAliveRequest request_;
  std::mutex mu_;
  std::deque<etcdserverpb::LeaseKeepAliveResponse> writes_;  // guarded by mu_
  int pending_ = 0;                                          // guarded by mu_
  bool writing_ = false;                                     // guarded by mu_
  bool reads_done_ = false;                                  // guarded by mu_
  bool broken_ = false;                                      // guarded by mu_
  bool finished_ = false;                                    // guarded by mu_
};

}  // namespace

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext*) {
  return new KeepAliveReactor(ctx_);
}

}  // namespace warden::server

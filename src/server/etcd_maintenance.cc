// Maintenance RPCs that act over time: MoveLeader (waits for the transfer)
// and Snapshot (streams the state machine's image in chunks).
#include <openssl/evp.h>

#include <deque>

#include "src/server/etcd_convert.h"
#include "src/server/etcd_services.h"
#include "src/storage/snapshot_file.h"

namespace warden::server {

namespace {

// Polls the node every tick until the transfer completes or the deadline
// passes; never blocks the node loop.
void AwaitLeader(ServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                 etcdserverpb::MoveLeaderResponse* resp, NodeId target, int64_t deadline_ms,
                 int64_t now_ms) {
  ctx->host()->PostAfter(50, [=](node::Node& n) {
    if (n.leader() == target) {
      ctx->FillHeader(n, 0, resp->mutable_header());
      return reactor->Finish(grpc::Status::OK);
    }
    if (now_ms + 50 >= deadline_ms) {
      return reactor->Finish({grpc::StatusCode::UNAVAILABLE,
                              "etcdserver: request timed out, leader transfer took too long"});
    }
    AwaitLeader(ctx, reactor, resp, target, deadline_ms, now_ms + 50);
  });
}

}  // namespace

grpc::ServerUnaryReactor* MaintenanceService::Hash(grpc::CallbackServerContext* c,
                                                   const etcdserverpb::HashRequest*,
                                                   etcdserverpb::HashResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  // etcd hashes its whole backend; ours is the digest of everything
  // replicated (key space with history position, leases), equal on members
  // that applied the same log.
  ctx_->host()->Post([ctx, reactor, resp](node::Node& n) {
    resp->set_hash(n.state().Digest());
    ctx->FillHeader(n, 0, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(grpc::CallbackServerContext* c,
                                                         const etcdserverpb::MoveLeaderRequest* req,
                                                         etcdserverpb::MoveLeaderResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const NodeId target(req->targetid());
  ctx_->host()->Post([ctx, reactor, resp, target](node::Node& n) {
    if (!n.IsLeader()) {
      return reactor->Finish({grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: not leader"});
    }
    const raft::ConfState cs = n.RaftStatus().conf_state;
    if (std::find(cs.voters.begin(), cs.voters.end(), target) == cs.voters.end()) {
      return reactor->Finish({grpc::StatusCode::NOT_FOUND, "etcdserver: bad leader transferee"});
    }
    if (target == ctx->config().self_id) {
      ctx->FillHeader(n, 0, resp->mutable_header());
      return reactor->Finish(grpc::Status::OK);
    }
    n.TransferLeader(target);
    AwaitLeader(ctx, reactor, resp, target, /*deadline_ms=*/5000, /*now_ms=*/0);
  });
  return reactor;
}

namespace {

// Streams one encoded snapshot file in chunks, one write in flight.
class SnapshotWriter final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  static constexpr size_t kChunkBytes = 64 << 10;

  explicit SnapshotWriter(ServerContext* ctx) {
    ctx->host()->Post([this, ctx](node::Node& n) {
      raft::Snapshot snap;
      snap.metadata.index = n.state().applied_index();
      snap.metadata.term = n.RaftStatus().term;
      snap.metadata.conf_state = n.RaftStatus().conf_state;
      snap.data = n.state().Serialize();
      file_ = storage::EncodeSnapshotFile(snap);
      // etcd clients expect a whole number of 512-byte pages followed by the
      // SHA-256 of those pages: pad the snapshot file with zeros (a restore
      // strips everything after the file's trailer) and append the digest.
      file_.resize((file_.size() + 511) / 512 * 512, '\0');
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_Digest(file_.data(), file_.size(), digest, &len, EVP_sha256(), nullptr);
      file_.append(reinterpret_cast<const char*>(digest), len);
      ctx->FillHeader(n, 0, &header_);
      Next();
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish({grpc::StatusCode::UNAVAILABLE, "snapshot stream broken"});
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (offset_ >= file_.size() && offset_ > 0) return Finish(grpc::Status::OK);
    resp_.Clear();
    *resp_.mutable_header() = header_;
    resp_.set_blob(file_.substr(offset_, kChunkBytes));
    offset_ += kChunkBytes;
    resp_.set_remaining_bytes(offset_ >= file_.size() ? 0 : file_.size() - offset_);
    StartWrite(&resp_);
  }

  std::string file_;
  size_t offset_ = 0;
  etcdserverpb::ResponseHeader header_;
  etcdserverpb::SnapshotResponse resp_;
};

}  // namespace

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* MaintenanceService::Snapshot(
    grpc::CallbackServerContext*, const etcdserverpb::SnapshotRequest*) {
  return new SnapshotWriter(ctx_);
}

}  // namespace warden::server

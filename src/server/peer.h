// Member-to-member transport over gRPC (proto/warden/raftpb/raft.proto).
//
// PeerTransport (node::Transport) gives each peer one sender thread that keeps
// a long-lived Stream open, sends queued messages in batches (everything
// queued while the previous batch was in flight goes in the next one),
// reconnects with exponential backoff, and streams snapshots in chunks. Each
// batch also carries this member's client URLs, so members learn where to
// forward client requests.
//
// PeerService receives batches and snapshots and hands each batch's messages
// to the node at once (main runs them on the gRPC thread that received them
// when the node loop is idle: NodeHost::RunOrPost).
//
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/node/interfaces.h"
#include "warden/raftpb/raft.grpc.pb.h"

namespace warden::server {

void ToProto(const raft::Message& m, raftpb::Message* out);
// Refuses messages whose fields are out of range (a damaged or hostile peer).
Result<raft::Message> FromProto(const raftpb::Message& m);

// What members learn about each other.
struct PeerInfo {
  std::string name;
  std::vector<std::string> client_urls;
};

// The current members and their peer URLs (a copy of the replicated member
// table, kept by the node loop) and what each member told about itself.
class PeerDirectory {
 public:
  void Learn(NodeId id, PeerInfo info);
  std::optional<PeerInfo> Find(NodeId id) const;
  std::map<NodeId, PeerInfo> All() const;

  void SetMembers(std::map<NodeId, std::vector<std::string>> peer_urls);
  std::map<NodeId, std::vector<std::string>> Members() const;

 private:
  mutable std::mutex mu_;
  std::map<NodeId, PeerInfo> peers_;                        // guarded by mu_
  std::map<NodeId, std::vector<std::string>> member_urls_;  // guarded by mu_
};

class PeerTransport final : public node::Transport {
 public:
  using Report = std::function<void(NodeId peer, bool snapshot, bool ok)>;

  PeerTransport(NodeId self, std::string self_name, uint64_t cluster_id,
                std::vector<std::string> client_urls, const PeerDirectory* directory,
                Report report);
  ~PeerTransport() override;

  // Adds (or replaces) a peer's address ("host:port").
  void AddPeer(NodeId id, const std::string& address);
  // Makes the peers exactly `addresses` (id -> "host:port"): new ones are
  // added, moved ones reconnect, the rest are dropped.
  void SetPeers(const std::map<NodeId, std::string>& addresses);
  void Send(std::vector<raft::Message> messages) override;
  void Stop();

 private:
  class Sender;
  NodeId self_;
  std::string self_name_;
  uint64_t cluster_id_;
  std::vector<std::string> client_urls_;
  const PeerDirectory* directory_;
  Report report_;
  std::mutex mu_;
  std::map<NodeId, std::unique_ptr<Sender>> senders_;  // guarded by mu_
  std::map<NodeId, std::string> addresses_;            // guarded by mu_
};

// Stream and RenewLease use the callback API: a batch is read on the gRPC
// thread that polled it (no hand-off to a thread of a synchronous pool), and
// no thread waits while the node renews. SendSnapshot and Join, rare, keep
// the synchronous one.
class PeerService final : public raftpb::Peer::WithCallbackMethod_Stream<
                              raftpb::Peer::WithCallbackMethod_RenewLease<raftpb::Peer::Service>> {
 public:
  // The messages of one received batch, in order.
  using Deliver = std::function<void(std::vector<raft::Message>)>;
  // Renews a lease on this member (the leader) and calls back with its TTL.
  using Renew = std::function<void(int64_t id, std::function<void(const Result<int64_t>&)>)>;
  // Called when a peer's stream to us ends (its process died, or it
  // reconnects).
  using Lost = std::function<void(NodeId peer)>;
  PeerService(uint64_t cluster_id, PeerDirectory* directory, Deliver deliver, Renew renew,
              Lost lost)
      : cluster_id_(cluster_id),
        directory_(directory),
        deliver_(std::move(deliver)),
        renew_(std::move(renew)),
        lost_(std::move(lost)) {}

  grpc::ServerBidiReactor<raftpb::MessageBatch, raftpb::StreamAck>* Stream(
      grpc::CallbackServerContext* ctx) override;
  grpc::Status SendSnapshot(grpc::ServerContext* ctx,
                            grpc::ServerReader<raftpb::SnapshotChunk>* reader,
                            raftpb::SnapshotAck* ack) override;
  grpc::ServerUnaryReactor* RenewLease(grpc::CallbackServerContext* ctx,
                                       const raftpb::LeaseRenew* req,
                                       raftpb::LeaseRenewed* resp) override;
  grpc::Status Join(grpc::ServerContext* ctx, const raftpb::JoinRequest* req,
                    raftpb::JoinResponse* resp) override;

 private:
  class StreamReader;
  // Hands one received batch to the directory and the node; an error if
  // the batch is from another cluster.
  grpc::Status Receive(const raftpb::MessageBatch& batch);

  uint64_t cluster_id_;
  PeerDirectory* directory_;
  Deliver deliver_;
  Renew renew_;
  Lost lost_;
};

}  // namespace warden::server

// The etcd v3 services Warden serves to clients (gRPC callback API: no thread
// is held while a request waits for the log).
//
// Every handler validates its request, then posts to the node loop. Writes
// are proposed on the leader; a follower forwards them to the leader's client
// endpoint (learned from the peer streams) and relays the answer. Reads are
// linearizable by default (a ReadIndex barrier on whichever member received
// them) and served locally when the request asks for serializable.
//
// Thread safety: handlers run on gRPC threads; all node access is posted.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "src/server/config.h"
#include "src/server/metrics.h"
#include "src/server/node_host.h"
#include "src/server/peer.h"

namespace warden::server {

// What every service needs: the node, the configuration, the peers, and
// stubs to forward to the leader.
class ServerContext {
 public:
  ServerContext(NodeHost* host, const ServerConfig* config, PeerDirectory* peers,
                Metrics* metrics = nullptr)
      : host_(host), config_(config), peers_(peers), metrics_(metrics) {}

  NodeHost* host() const { return host_; }
  const ServerConfig& config() const { return *config_; }
  PeerDirectory* peers() const { return peers_; }
  // Records how long a write took from arrival to its apply result.
  void ObserveProposal(std::chrono::steady_clock::time_point start) const;
  void FillHeader(const node::Node& n, int64_t revision, etcdserverpb::ResponseHeader* h) const;
  // The client endpoint of member `id` (host:port), if known.
  std::optional<std::string> ClientAddressOf(NodeId id) const;
  // The peer endpoint of member `id` (host:port), from the configuration.
  std::optional<std::string> PeerAddressOf(NodeId id) const;
  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address);

 private:
  NodeHost* host_;
  const ServerConfig* config_;
  PeerDirectory* peers_;
  Metrics* metrics_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // guarded by mu_
};

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  explicit KvService(ServerContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* c,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* c, const etcdserverpb::PutRequest* req,
                                etcdserverpb::PutResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* c,
                                        const etcdserverpb::DeleteRangeRequest* req,
                                        etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* c, const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* c,
                                    const etcdserverpb::CompactionRequest* req,
                                    etcdserverpb::CompactionResponse* resp) override;

 private:
  ServerContext* ctx_;
};

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  explicit LeaseService(ServerContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* c,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* c,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* c) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* c,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* c,
                                        const etcdserverpb::LeaseLeasesRequest* req,
                                        etcdserverpb::LeaseLeasesResponse* resp) override;

 private:
  ServerContext* ctx_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(ServerContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* c,
                                   const etcdserverpb::StatusRequest* req,
                                   etcdserverpb::StatusResponse* resp) override;
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* c,
                                   const etcdserverpb::HashKVRequest* req,
                                   etcdserverpb::HashKVResponse* resp) override;
  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* c,
                                       const etcdserverpb::DefragmentRequest* req,
                                       etcdserverpb::DefragmentResponse* resp) override;
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* c,
                                  const etcdserverpb::AlarmRequest* req,
                                  etcdserverpb::AlarmResponse* resp) override;
  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* c,
                                 const etcdserverpb::HashRequest* req,
                                 etcdserverpb::HashResponse* resp) override;
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* c,
                                       const etcdserverpb::MoveLeaderRequest* req,
                                       etcdserverpb::MoveLeaderResponse* resp) override;
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* c, const etcdserverpb::SnapshotRequest* req) override;

 private:
  ServerContext* ctx_;
};

// A member as the cluster sees it: Raft's configuration, with addresses from
// the replicated member table (or the initial configuration).
struct MemberView {
  NodeId id;
  std::string name;
  std::vector<std::string> peer_urls;
  bool learner = false;
};
// REQUIRES: on the node loop.
std::vector<MemberView> CurrentMembers(const ServerConfig& config, const node::Node& n);

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(ServerContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* c,
                                       const etcdserverpb::MemberListRequest* req,
                                       etcdserverpb::MemberListResponse* resp) override;
  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* c,
                                      const etcdserverpb::MemberAddRequest* req,
                                      etcdserverpb::MemberAddResponse* resp) override;
  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* c,
                                         const etcdserverpb::MemberRemoveRequest* req,
                                         etcdserverpb::MemberRemoveResponse* resp) override;
  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* c,
                                         const etcdserverpb::MemberUpdateRequest* req,
                                         etcdserverpb::MemberUpdateResponse* resp) override;
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* c,
                                          const etcdserverpb::MemberPromoteRequest* req,
                                          etcdserverpb::MemberPromoteResponse* resp) override;

 private:
  ServerContext* ctx_;
};

}  // namespace warden::server

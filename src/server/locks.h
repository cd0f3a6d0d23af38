// The lock services: Warden's native API (warden.v1 Locks; sessions are etcd leases) and
// etcd's v3lock and v3election, all served from the replicated lock table
// (docs/locks.md).
//
// A request is proposed on the member the client called (a follower's node
// forwards it to the leader over Raft, node::Node::Propose) and answered when
// that member applies it. When the answer is QUEUED, the member waits in its
// LockHub for the final answer, which arrives as it applies the entry that
// resolves the request (a release, an expiry, ...). The wait therefore
// survives a change of leader: every member applies the same log. Every
// request carries a request id (the server picks one when the client did
// not), so a request answered before the wait began is found in the lock
// table's remembered answers.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "etcd/v3electionpb/v3election.grpc.pb.h"
#include "etcd/v3lockpb/v3lock.grpc.pb.h"
#include "src/server/etcd_services.h"
#include "warden/v1/warden.grpc.pb.h"

namespace warden::server {

// On the node loop: waiters for queued lock requests, lock-event watchers
// and election observers.
class LockHub {
 public:
  using Done = std::function<void(const state::LockAnswer&, int64_t revision)>;
  using Observer = std::function<void(node::Node&)>;
  using EventSink =
      std::function<void(node::Node&, const std::vector<state::LockEvent>&, int64_t revision)>;

  // Calls `done` once with the final answer of (owner, request_id) on
  // `path`: now if the lock table already knows it, else when it is applied.
  void Wait(node::Node& n, const state::LockOwner& owner, const std::string& path,
            uint64_t request_id, Done done);
  void OnApply(node::Node& n, const state::ApplyResult& r);
  // Key-space events (for election observers, whose leader key may change
  // value without a lock event).
  void OnKvEvents(node::Node& n, const std::vector<state::Event>& events);

  uint64_t AddObserver(const std::string& key_prefix, Observer fn);
  uint64_t AddEventSink(EventSink fn);
  void Remove(uint64_t id);

 private:
  struct Key {
    state::LockOwner owner;
    std::string path;
    uint64_t request_id;
    friend auto operator<=>(const Key&, const Key&) = default;
  };
  std::multimap<Key, Done> waiting_;
  std::map<uint64_t, std::pair<std::string, Observer>> observers_;
  std::map<uint64_t, EventSink> sinks_;
  uint64_t next_id_ = 1;
};

class LocksService final : public warden::v1::Locks::CallbackService {
 public:
  LocksService(ServerContext* ctx, LockHub* hub) : ctx_(ctx), hub_(hub) {}
  grpc::ServerUnaryReactor* Acquire(grpc::CallbackServerContext* c,
                                    const warden::v1::AcquireRequest* req,
                                    warden::v1::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* c,
                                    const warden::v1::ReleaseRequest* req,
                                    warden::v1::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Renew(grpc::CallbackServerContext* c,
                                  const warden::v1::RenewRequest* req,
                                  warden::v1::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* c,
                                   const warden::v1::CancelRequest* req,
                                   warden::v1::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Transfer(grpc::CallbackServerContext* c,
                                     const warden::v1::TransferRequest* req,
                                     warden::v1::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Inspect(grpc::CallbackServerContext* c,
                                    const warden::v1::InspectRequest* req,
                                    warden::v1::InspectResponse* resp) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* c,
                                 const warden::v1::ListLocksRequest* req,
                                 warden::v1::ListLocksResponse* resp) override;
  grpc::ServerWriteReactor<warden::v1::WatchLocksResponse>* Watch(
      grpc::CallbackServerContext* c, const warden::v1::WatchLocksRequest* req) override;
  grpc::ServerUnaryReactor* GuardedTxn(grpc::CallbackServerContext* c,
                                       const warden::v1::GuardedTxnRequest* req,
                                       etcdserverpb::TxnResponse* resp) override;

 private:
  ServerContext* ctx_;
  LockHub* hub_;
};

class V3LockService final : public v3lockpb::Lock::CallbackService {
 public:
  V3LockService(ServerContext* ctx, LockHub* hub) : ctx_(ctx), hub_(hub) {}
  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* c, const v3lockpb::LockRequest* req,
                                 v3lockpb::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* c,
                                   const v3lockpb::UnlockRequest* req,
                                   v3lockpb::UnlockResponse* resp) override;

 private:
  ServerContext* ctx_;
  LockHub* hub_;
};

class V3ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  V3ElectionService(ServerContext* ctx, LockHub* hub) : ctx_(ctx), hub_(hub) {}
  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* c,
                                     const v3electionpb::CampaignRequest* req,
                                     v3electionpb::CampaignResponse* resp) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* c,
                                     const v3electionpb::ProclaimRequest* req,
                                     v3electionpb::ProclaimResponse* resp) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* c,
                                   const v3electionpb::LeaderRequest* req,
                                   v3electionpb::LeaderResponse* resp) override;
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      grpc::CallbackServerContext* c, const v3electionpb::LeaderRequest* req) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* c,
                                   const v3electionpb::ResignRequest* req,
                                   v3electionpb::ResignResponse* resp) override;

 private:
  ServerContext* ctx_;
  LockHub* hub_;
};

}  // namespace warden::server

#include "src/server/locks.h"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>

#include "src/server/etcd_convert.h"
#include "src/server/on_leader.h"
#include "src/state/kv_apply.h"

namespace warden::server {

namespace {

constexpr char kV3Owner[] = "etcd-v3";  // the owner id lock_apply.cc gives etcd clients

uint64_t NewRequestId() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  uint64_t id = 0;
  while (id == 0) id = rng();
  return id;
}

warden::v1::Outcome OutcomeToProto(state::LockOutcome o) {
  return static_cast<warden::v1::Outcome>(static_cast<int>(o));
}

void FillLock(const state::LockAnswer& a, warden::v1::LockResponse* resp) {
  resp->set_outcome(OutcomeToProto(a.outcome));
  resp->set_token(a.token);
  resp->set_hold_count(a.hold_count);
  resp->set_detail(a.detail);
}

grpc::Status CheckOwner(const std::string& path, const warden::v1::Owner& owner) {
  if (path.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "warden: the lock path is empty"};
  if (owner.session() <= 0) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "warden: owner.session must be a session (lease) id > 0"};
  }
  return grpc::Status::OK;
}

state::Command LockCmd(state::CommandType type, const std::string& path,
                       const warden::v1::Owner& owner, uint64_t request_id) {
  state::Command c;
  c.type = type;
  c.lock.path = path;
  c.lock.session = owner.session();
  c.lock.owner_id = owner.id();
  c.lock.request_id = request_id;
  return c;
}

// Proposes a lock command on this member (a follower's node forwards it to
// the leader, node::Node::Propose) and answers with the final LockAnswer: a
// QUEUED answer is waited for in this member's hub, which by then has applied
// the entry that queued it (and the session's grant before it).
// `finish(answer, revision, node)` runs on the node loop; a failed proposal
// is answered with its gRPC error.
template <typename Finish>
void ProposeLock(ServerContext* ctx, LockHub* hub, grpc::ServerUnaryReactor* reactor,
                 state::Command cmd, Finish finish) {
  ctx->host()->Post([ctx, hub, reactor, cmd = std::move(cmd), finish](node::Node& n) mutable {
    const state::LockOwner owner{cmd.lock.session, cmd.lock.owner_id};
    const std::string path = cmd.lock.path;
    const uint64_t request_id = cmd.lock.request_id;
    const auto start = std::chrono::steady_clock::now();
    n.Propose(std::move(cmd), [ctx, hub, reactor, finish, owner, path, request_id, start,
                               &n](const state::ApplyResult& r) {
      ctx->ObserveProposal(start);
      if (!r.status.ok()) return reactor->Finish(ToGrpc(r.status));
      if (r.lock.outcome != state::LockOutcome::kQueued) return finish(r.lock, r.revision, n);
      hub->Wait(
          n, owner, path, request_id,
          [finish, &n](const state::LockAnswer& a, int64_t revision) { finish(a, revision, n); });
    });
  });
}

}  // namespace

// ---------------------------------------------------------------------------
// LockHub

void LockHub::Wait(node::Node& n, const state::LockOwner& owner, const std::string& path,
                   uint64_t request_id, Done done) {
  if (std::optional<state::LockAnswer> a = n.state().locks().FindAnswer(owner.session, request_id);
      a && a->outcome != state::LockOutcome::kQueued) {
    return done(*a, n.state().kv().current_revision());
  }
  if (request_id == 0) {
    // A v3 Lock or Campaign (no request id, nothing remembered): this member
    // may have applied the grant before the leader's reply to the forward
    // arrived, so look at the holders.
    if (std::optional<state::LockInfo> info = n.state().locks().Inspect(path, 0)) {
      for (const state::LockHolder& h : info->holders) {
        if (h.owner != owner) continue;
        state::LockAnswer a;
        a.path = path;
        a.owner = owner;
        a.outcome = state::LockOutcome::kGranted;
        a.token = h.token;
        a.hold_count = h.hold_count;
        return done(a, n.state().kv().current_revision());
      }
    }
  }
  if (!n.state().leases().Exists(owner.session)) {
    state::LockAnswer a;
    a.path = path;
    a.owner = owner;
    a.request_id = request_id;
    a.outcome = state::LockOutcome::kSessionEnded;
    return done(a, n.state().kv().current_revision());
  }
  waiting_.emplace(Key{owner, path, request_id}, std::move(done));
}

void LockHub::OnApply(node::Node& n, const state::ApplyResult& r) {
  for (const state::LockAnswer& a : r.lock_answers) {
    auto range = waiting_.equal_range(Key{a.owner, a.path, a.request_id});
    std::vector<Done> ready;
    for (auto it = range.first; it != range.second;) {
      ready.push_back(std::move(it->second));
      it = waiting_.erase(it);
    }
    for (Done& d : ready) d(a, r.revision);
  }
  // The lock table answers the waits a session's end dismisses; a wait
  // registered here that the table never saw (or forgot) ends with it too.
  if (r.type == state::CommandType::kLeaseRevoke && r.status.ok()) {
    auto it = waiting_.lower_bound(Key{state::LockOwner{r.lease_id, ""}, "", 0});
    while (it != waiting_.end() && it->first.owner.session == r.lease_id) {
      state::LockAnswer a;
      a.path = it->first.path;
      a.owner = it->first.owner;
      a.request_id = it->first.request_id;
      a.outcome = state::LockOutcome::kSessionEnded;
      Done d = std::move(it->second);
      it = waiting_.erase(it);
      d(a, r.revision);
    }
  }
  if (!r.lock_events.empty()) {
    for (auto& [id, sink] : sinks_) sink(n, r.lock_events, r.revision);
  }
  if (!r.lock_events.empty() || !r.events.empty()) {
    for (auto& [id, entry] : observers_) entry.second(n);
  }
}

void LockHub::OnKvEvents(node::Node& n, const std::vector<state::Event>& events) {
  for (auto& [id, entry] : observers_) {
    for (const state::Event& e : events) {
      if (e.kv.key.rfind(entry.first, 0) == 0) {
        entry.second(n);
        break;
      }
    }
  }
}

uint64_t LockHub::AddObserver(const std::string& key_prefix, Observer fn) {
  const uint64_t id = next_id_++;
  observers_[id] = {key_prefix, std::move(fn)};
  return id;
}

uint64_t LockHub::AddEventSink(EventSink fn) {
  const uint64_t id = next_id_++;
  sinks_[id] = std::move(fn);
  return id;
}

void LockHub::Remove(uint64_t id) {
  observers_.erase(id);
  sinks_.erase(id);
}

// ---------------------------------------------------------------------------
// warden.v1 Locks

namespace {

auto LockFinish(ServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                warden::v1::LockResponse* resp) {
  return [ctx, reactor, resp](const state::LockAnswer& a, int64_t revision, node::Node& n) {
    ctx->FillHeader(n, revision, resp->mutable_header());
    FillLock(a, resp);
    if (a.outcome == state::LockOutcome::kInvalid) {
      return reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "warden: " + a.detail});
    }
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace

namespace {

// The shape every warden.v1 lock request shares: validate the owner, give
// the request an id (so that a retry is deduplicated), fill the command,
// propose, answer.
template <typename Request, typename Fill>
grpc::ServerUnaryReactor* NativeLockRequest(ServerContext* ctx, LockHub* hub,
                                            grpc::CallbackServerContext* c, const Request& req,
                                            warden::v1::LockResponse* resp, state::CommandType type,
                                            Fill fill) {
  auto* reactor = c->DefaultReactor();
  if (grpc::Status s = CheckOwner(req.path(), req.owner()); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  state::Command cmd = LockCmd(type, req.path(), req.owner(),
                               req.request_id() != 0 ? req.request_id() : NewRequestId());
  if (grpc::Status s = fill(&cmd); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  ProposeLock(ctx, hub, reactor, std::move(cmd), LockFinish(ctx, reactor, resp));
  return reactor;
}

grpc::Status CheckTtl(int64_t ttl_ms) {
  if (ttl_ms < 0) return {grpc::StatusCode::INVALID_ARGUMENT, "warden: ttl_ms must be >= 0"};
  return grpc::Status::OK;
}

}  // namespace

grpc::ServerUnaryReactor* LocksService::Acquire(grpc::CallbackServerContext* c,
                                                const warden::v1::AcquireRequest* req,
                                                warden::v1::LockResponse* resp) {
  return NativeLockRequest(ctx_, hub_, c, *req, resp, state::CommandType::kLockAcquire,
                           [req](state::Command* cmd) -> grpc::Status {
                             if (grpc::Status s = CheckTtl(req->ttl_ms()); !s.ok()) return s;
                             cmd->lock.mode = req->mode() == warden::v1::SHARED ? 1 : 0;
                             cmd->lock.priority = req->priority();
                             cmd->lock.wait_ms = req->wait_ms() < 0 ? -1 : req->wait_ms();
                             cmd->lock.ttl_ms = req->ttl_ms();
                             cmd->lock.value = req->value();
                             if (req->conditions_size() > 0) {
                               etcdserverpb::TxnRequest t;
                               *t.mutable_compare() = req->conditions();
                               Result<state::TxnRequest> txn = FromProto(t);
                               if (!txn.ok()) return ToGrpc(txn.status());
                               cmd->lock.conditions = std::move(txn->compares);
                             }
                             return grpc::Status::OK;
                           });
}

grpc::ServerUnaryReactor* LocksService::Release(grpc::CallbackServerContext* c,
                                                const warden::v1::ReleaseRequest* req,
                                                warden::v1::LockResponse* resp) {
  return NativeLockRequest(ctx_, hub_, c, *req, resp, state::CommandType::kLockRelease,
                           [req](state::Command* cmd) {
                             cmd->lock.token = req->token();
                             return grpc::Status::OK;
                           });
}

grpc::ServerUnaryReactor* LocksService::Renew(grpc::CallbackServerContext* c,
                                              const warden::v1::RenewRequest* req,
                                              warden::v1::LockResponse* resp) {
  return NativeLockRequest(ctx_, hub_, c, *req, resp, state::CommandType::kLockRenew,
                           [req](state::Command* cmd) -> grpc::Status {
                             if (grpc::Status s = CheckTtl(req->ttl_ms()); !s.ok()) return s;
                             cmd->lock.token = req->token();
                             cmd->lock.ttl_ms = req->ttl_ms();
                             return grpc::Status::OK;
                           });
}

grpc::ServerUnaryReactor* LocksService::Cancel(grpc::CallbackServerContext* c,
                                               const warden::v1::CancelRequest* req,
                                               warden::v1::LockResponse* resp) {
  return NativeLockRequest(ctx_, hub_, c, *req, resp, state::CommandType::kLockCancel,
                           [](state::Command*) { return grpc::Status::OK; });
}

grpc::ServerUnaryReactor* LocksService::Transfer(grpc::CallbackServerContext* c,
                                                 const warden::v1::TransferRequest* req,
                                                 warden::v1::LockResponse* resp) {
  auto* reactor = c->DefaultReactor();
  if (grpc::Status s = CheckOwner(req->path(), req->owner()); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  if (req->to().session() <= 0) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "warden: transfer needs a successor"});
    return reactor;
  }
  state::Command cmd = LockCmd(state::CommandType::kLockTransfer, req->path(), req->owner(), 0);
  cmd.lock.token = req->token();
  cmd.lock.to_session = req->to().session();
  cmd.lock.to_owner = req->to().id();
  ProposeLock(ctx_, hub_, reactor, std::move(cmd), LockFinish(ctx_, reactor, resp));
  return reactor;
}

grpc::ServerUnaryReactor* LocksService::Inspect(grpc::CallbackServerContext* c,
                                                const warden::v1::InspectRequest* req,
                                                warden::v1::InspectResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const std::string path = req->path();
  ctx_->host()->Post([ctx, reactor, resp, path](node::Node& n) {
    n.ReadBarrier([ctx, &n, reactor, resp, path](const Status& s) {
      if (!s.ok()) return reactor->Finish(ToGrpc(s));
      ctx->FillHeader(n, 0, resp->mutable_header());
      resp->set_path(path);
      // Wait times and TTLs by the member's clock: informational.
      const int64_t now = SteadyClock().NowMs();
      if (std::optional<state::LockInfo> info = n.state().locks().Inspect(path, now)) {
        for (const state::LockHolder& h : info->holders) {
          auto* ph = resp->add_holders();
          ph->mutable_owner()->set_session(h.owner.session);
          ph->mutable_owner()->set_id(h.owner.id);
          ph->set_mode(h.mode == state::LockMode::kShared ? warden::v1::SHARED
                                                          : warden::v1::EXCLUSIVE);
          ph->set_token(h.token);
          ph->set_hold_count(h.hold_count);
          ph->set_expires_in_ms(h.expires_ms == 0 ? 0 : std::max<int64_t>(1, h.expires_ms - now));
          ph->set_value(h.value);
        }
        uint32_t position = 0;
        for (const state::LockWaiter& w : info->waiters) {
          auto* pw = resp->add_waiters();
          pw->mutable_owner()->set_session(w.request.owner.session);
          pw->mutable_owner()->set_id(w.request.owner.id);
          pw->set_mode(w.request.mode == state::LockMode::kShared ? warden::v1::SHARED
                                                                  : warden::v1::EXCLUSIVE);
          pw->set_priority(w.request.priority);
          pw->set_waited_ms(std::max<int64_t>(0, now - w.enqueued_ms));
          pw->set_position(++position);
        }
      }
      reactor->Finish(grpc::Status::OK);
    });
  });
  return reactor;
}

grpc::ServerUnaryReactor* LocksService::List(grpc::CallbackServerContext* c,
                                             const warden::v1::ListLocksRequest* req,
                                             warden::v1::ListLocksResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const std::string prefix = req->prefix();
  const size_t limit = req->limit() == 0 ? 1000 : std::min<uint32_t>(req->limit(), 100000);
  ctx_->host()->Post([ctx, reactor, resp, prefix, limit](node::Node& n) {
    n.ReadBarrier([ctx, &n, reactor, resp, prefix, limit](const Status& s) {
      if (!s.ok()) return reactor->Finish(ToGrpc(s));
      ctx->FillHeader(n, 0, resp->mutable_header());
      for (const std::string& p : n.state().locks().Paths(prefix, limit)) {
        if (p.rfind(prefix, 0) != 0) break;
        resp->add_paths(p);
      }
      reactor->Finish(grpc::Status::OK);
    });
  });
  return reactor;
}

namespace {

// Streams lock events of one path or prefix, as they are applied on this
// member. Writes are queued; one is in flight at a time.
// A server stream fed from the lock hub on the node loop: responses are
// queued (up to `max_queued`, beyond which they are dropped) and written one
// at a time; on cancel the hub registration `hub_id_` is removed on the
// loop before the stream finishes. OnDone deletes.
template <typename Response>
class HubStreamReactor : public grpc::ServerWriteReactor<Response> {
 public:
  HubStreamReactor(ServerContext* ctx, LockHub* hub, size_t max_queued)
      : ctx_(ctx), hub_(hub), max_queued_(max_queued) {}

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) broken_ = true;
    queue_.pop_front();
    if (!broken_ && !queue_.empty()) {
      writing_ = true;
      this->StartWrite(&queue_.front());
    }
  }

  void OnCancel() override {
    ctx_->host()->Post([this](node::Node&) {
      hub_->Remove(hub_id_);
      this->Finish(grpc::Status::OK);
    });
  }

  void OnDone() override { delete this; }

 protected:
  void Send(Response resp) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_ || queue_.size() > max_queued_) return;
    queue_.push_back(std::move(resp));
    if (!writing_) {
      writing_ = true;
      this->StartWrite(&queue_.front());
    }
  }

  ServerContext* ctx_;
  LockHub* hub_;
  uint64_t hub_id_ = 0;  // node loop only

 private:
  size_t max_queued_;
  std::mutex mu_;
  std::deque<Response> queue_;  // guarded by mu_
  bool writing_ = false;        // guarded by mu_
  bool broken_ = false;         // guarded by mu_
};

class LockWatchReactor final : public HubStreamReactor<warden::v1::WatchLocksResponse> {
 public:
  LockWatchReactor(ServerContext* ctx, LockHub* hub, std::string path, bool prefix)
      : HubStreamReactor(ctx, hub, 10000), path_(std::move(path)), prefix_(prefix) {
    ctx_->host()->Post([this](node::Node&) {
      hub_id_ = hub_->AddEventSink(
          [this](node::Node& n, const std::vector<state::LockEvent>& events, int64_t revision) {
            warden::v1::WatchLocksResponse resp;
            for (const state::LockEvent& e : events) {
              const bool match = prefix_ ? e.path.rfind(path_, 0) == 0 : e.path == path_;
              if (!match) continue;
              auto* pe = resp.add_events();
              pe->set_type(static_cast<warden::v1::LockEvent::Type>(static_cast<int>(e.type)));
              pe->set_path(e.path);
              pe->mutable_owner()->set_session(e.owner.session);
              pe->mutable_owner()->set_id(e.owner.id);
              pe->set_mode(e.mode == state::LockMode::kShared ? warden::v1::SHARED
                                                              : warden::v1::EXCLUSIVE);
              pe->set_token(e.token);
              pe->set_revision(revision);
            }
            if (resp.events_size() == 0) return;
            ctx_->FillHeader(n, revision, resp.mutable_header());
            Send(std::move(resp));
          });
      // An empty first response says the watch is in place.
      warden::v1::WatchLocksResponse hello;
      Send(std::move(hello));
    });
  }

 private:
  std::string path_;
  bool prefix_;
};

}  // namespace

grpc::ServerWriteReactor<warden::v1::WatchLocksResponse>* LocksService::Watch(
    grpc::CallbackServerContext*, const warden::v1::WatchLocksRequest* req) {
  return new LockWatchReactor(ctx_, hub_, req->path(), req->prefix());
}

grpc::ServerUnaryReactor* LocksService::GuardedTxn(grpc::CallbackServerContext* c,
                                                   const warden::v1::GuardedTxnRequest* req,
                                                   etcdserverpb::TxnResponse* resp) {
  auto* reactor = c->DefaultReactor();
  Result<state::TxnRequest> txn = FromProto(req->txn());
  if (!txn.ok()) {
    reactor->Finish(ToGrpc(txn.status()));
    return reactor;
  }
  state::KvLimits limits;
  limits.max_txn_ops = ctx_->config().max_txn_ops;
  if (Status s = state::ValidateTxn(*txn, limits); !s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  if (req->ByteSizeLong() > ctx_->config().max_request_bytes) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large"});
    return reactor;
  }
  state::Command cmd;
  cmd.type = state::CommandType::kGuardedTxn;
  cmd.lock.path = req->path();
  cmd.lock.token = req->token();
  cmd.txn = std::move(txn).value();
  ProposeHere(ctx_, reactor, resp, std::move(cmd), [resp](const state::ApplyResult& r) {
    ToProto(r.txn, resp);
    SetSubHeaders(resp->header(), resp);
  });
  return reactor;
}

// ---------------------------------------------------------------------------
// etcd v3lock

namespace {

std::string HexLease(int64_t lease) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIx64, static_cast<uint64_t>(lease));
  return buf;
}

// The final answer of a v3 Lock or Campaign, as etcd reports it.
grpc::Status V3Outcome(const state::LockAnswer& a) {
  switch (a.outcome) {
    case state::LockOutcome::kGranted: return grpc::Status::OK;
    case state::LockOutcome::kSessionEnded:
      return {grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found"};
    default:
      return {grpc::StatusCode::FAILED_PRECONDITION,
              std::string("etcdserver: lock ") + state::LockOutcomeName(a.outcome)};
  }
}

}  // namespace

grpc::ServerUnaryReactor* V3LockService::Lock(grpc::CallbackServerContext* c,
                                              const v3lockpb::LockRequest* req,
                                              v3lockpb::LockResponse* resp) {
  auto* reactor = c->DefaultReactor();
  if (req->name().empty()) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: lock name is empty"});
    return reactor;
  }
  if (req->lease() <= 0) {
    reactor->Finish({grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found"});
    return reactor;
  }
  state::Command cmd;
  cmd.type = state::CommandType::kV3Lock;
  cmd.lock.path = req->name();
  cmd.lock.session = req->lease();
  cmd.lock.owner_id = kV3Owner;
  const std::string key = req->name() + "/" + HexLease(req->lease());
  ServerContext* ctx = ctx_;
  ProposeLock(
      ctx_, hub_, reactor, std::move(cmd),
      [ctx, reactor, resp, key](const state::LockAnswer& a, int64_t revision, node::Node& n) {
        if (grpc::Status s = V3Outcome(a); !s.ok()) return reactor->Finish(s);
        ctx->FillHeader(n, revision, resp->mutable_header());
        resp->set_key(key);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerUnaryReactor* V3LockService::Unlock(grpc::CallbackServerContext* c,
                                                const v3lockpb::UnlockRequest* req,
                                                v3lockpb::UnlockResponse* resp) {
  auto* reactor = c->DefaultReactor();
  state::Command cmd;
  cmd.type = state::CommandType::kV3Unlock;
  cmd.lock.key = req->key();
  ProposeHere(ctx_, reactor, resp, std::move(cmd), [](const state::ApplyResult&) {});
  return reactor;
}

// ---------------------------------------------------------------------------
// etcd v3election

namespace {

// The current leader's key-value of election `name`, if any.
std::optional<state::KeyValue> ElectionLeader(node::Node& n, const std::string& name) {
  std::optional<state::LockInfo> info = n.state().locks().Inspect(name, 0);
  if (!info) return std::nullopt;
  for (const state::LockHolder& h : info->holders) {
    if (h.owner.id != kV3Owner) continue;
    return n.state().kv().Get(name + "/" + HexLease(h.owner.session));
  }
  return std::nullopt;
}

}  // namespace

grpc::ServerUnaryReactor* V3ElectionService::Campaign(grpc::CallbackServerContext* c,
                                                      const v3electionpb::CampaignRequest* req,
                                                      v3electionpb::CampaignResponse* resp) {
  auto* reactor = c->DefaultReactor();
  if (req->name().empty()) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: election name is empty"});
    return reactor;
  }
  if (req->lease() <= 0) {
    reactor->Finish({grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found"});
    return reactor;
  }
  state::Command cmd;
  cmd.type = state::CommandType::kV3Campaign;
  cmd.lock.path = req->name();
  cmd.lock.session = req->lease();
  cmd.lock.owner_id = kV3Owner;
  cmd.lock.value = req->value();
  const std::string name = req->name();
  const std::string key = name + "/" + HexLease(req->lease());
  const int64_t lease = req->lease();
  ServerContext* ctx = ctx_;
  ProposeLock(ctx_, hub_, reactor, std::move(cmd),
              [ctx, reactor, resp, name, key, lease](const state::LockAnswer& a, int64_t revision,
                                                     node::Node& n) {
                if (grpc::Status s = V3Outcome(a); !s.ok()) return reactor->Finish(s);
                ctx->FillHeader(n, revision, resp->mutable_header());
                auto* leader = resp->mutable_leader();
                leader->set_name(name);
                leader->set_key(key);
                leader->set_lease(lease);
                if (std::optional<state::KeyValue> kv = n.state().kv().Get(key)) {
                  leader->set_rev(kv->create_revision);
                }
                reactor->Finish(grpc::Status::OK);
              });
  return reactor;
}

grpc::ServerUnaryReactor* V3ElectionService::Proclaim(grpc::CallbackServerContext* c,
                                                      const v3electionpb::ProclaimRequest* req,
                                                      v3electionpb::ProclaimResponse* resp) {
  auto* reactor = c->DefaultReactor();
  state::Command cmd;
  cmd.type = state::CommandType::kV3Proclaim;
  cmd.lock.key = req->leader().key();
  cmd.lock.value = req->value();
  ProposeHere(ctx_, reactor, resp, std::move(cmd), [](const state::ApplyResult&) {});
  return reactor;
}

grpc::ServerUnaryReactor* V3ElectionService::Leader(grpc::CallbackServerContext* c,
                                                    const v3electionpb::LeaderRequest* req,
                                                    v3electionpb::LeaderResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const std::string name = req->name();
  ctx_->host()->Post([ctx, reactor, resp, name](node::Node& n) {
    n.ReadBarrier([ctx, &n, reactor, resp, name](const Status& s) {
      if (!s.ok()) return reactor->Finish(ToGrpc(s));
      std::optional<state::KeyValue> kv = ElectionLeader(n, name);
      if (!kv) {
        return reactor->Finish({grpc::StatusCode::NOT_FOUND, "etcdserver: election: no leader"});
      }
      ctx->FillHeader(n, 0, resp->mutable_header());
      ToProto(*kv, resp->mutable_kv());
      reactor->Finish(grpc::Status::OK);
    });
  });
  return reactor;
}

namespace {

// Sends the election's leader now and whenever it (or its value) changes.
class ObserveReactor final : public HubStreamReactor<v3electionpb::LeaderResponse> {
 public:
  ObserveReactor(ServerContext* ctx, LockHub* hub, std::string name)
      : HubStreamReactor(ctx, hub, 1000), name_(std::move(name)) {
    ctx_->host()->Post([this](node::Node& n) {
      hub_id_ = hub_->AddObserver(name_ + "/", [this](node::Node& n2) { Check(n2); });
      Check(n);
    });
  }

 private:
  void Check(node::Node& n) {
    std::optional<state::KeyValue> kv = ElectionLeader(n, name_);
    if (!kv) return;
    if (kv->key == last_key_ && kv->mod_revision == last_mod_) return;
    last_key_ = kv->key;
    last_mod_ = kv->mod_revision;
    v3electionpb::LeaderResponse resp;
    ctx_->FillHeader(n, 0, resp.mutable_header());
    ToProto(*kv, resp.mutable_kv());
    Send(std::move(resp));
  }

  std::string name_;
  std::string last_key_;  // node loop only
  int64_t last_mod_ = 0;  // node loop only
};

}  // namespace

grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* V3ElectionService::Observe(
    grpc::CallbackServerContext*, const v3electionpb::LeaderRequest* req) {
  return new ObserveReactor(ctx_, hub_, req->name());
}

grpc::ServerUnaryReactor* V3ElectionService::Resign(grpc::CallbackServerContext* c,
                                                    const v3electionpb::ResignRequest* req,
                                                    v3electionpb::ResignResponse* resp) {
  auto* reactor = c->DefaultReactor();
  state::Command cmd;
  cmd.type = state::CommandType::kV3Resign;
  cmd.lock.key = req->leader().key();
  ProposeHere(ctx_, reactor, resp, std::move(cmd), [](const state::ApplyResult&) {});
  return reactor;
}

}  // namespace warden::server

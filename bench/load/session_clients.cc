// The session workloads (a session is an etcd lease, in Warden and etcd).
//
//   session-churn  each client in a loop: LeaseGrant (TTL 10 s unless
//                  --lease-ttl), Put one key with the lease, LeaseRevoke. One
//                  operation is the whole cycle; each step has its histogram.
//   sessions       a pool of --sessions leases spread over the clients, each
//                  client keeping its share alive over one LeaseKeepAlive
//                  stream, one keep-alive per lease every --keepalive-ms
//                  (TTL/3 by default, as etcd's clientv3 does). One operation
//                  is one keep-alive answered.
//   locks-hold     the same pool; then each session acquires
//                  --locks-per-session distinct locks through warden.v1.Locks
//                  and holds them (keep-alives go on) until the run ends. One
//                  operation is one grant (--total sessions*M ends the window
//                  when all are held; --linger keeps them held after it).
//
// Leases are granted during setup, one request in flight per client; the
// keep-alives start as soon as the client's stream is open (so a long setup
// does not let the first leases expire). At the end each client revokes its
// leases, one at a time, for at most most of the drain timeout; whatever is
// left expires by its TTL.
#include <algorithm>
#include <unordered_map>

#include "bench/load/clients.h"
#include "bench/load/stream.h"

namespace warden::bench {

namespace {

using etcdserverpb::KV;
using etcdserverpb::Lease;

grpc::Status LeaseError(const UnaryCall<etcdserverpb::LeaseGrantResponse>& c) {
  return c.status.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, c.resp.error()) : c.status;
}

// session-churn: grant, put with the lease, revoke; repeat.
class SessionChurnClient final : public Client {
 public:
  SessionChurnClient(Shard* s, int id, Conn* c, Workbench* wb)
      : Client(s, id, c), wb_(wb), key_(wb->KeyPrefix() + std::to_string(id)) {}

  void Run() override { Issue(); }

 private:
  void Issue() {
    Pace([this] {
      if (running()) Grant();
    });
  }
  void Grant() {
    cycle_start_ns_ = NowNs();
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(wb_->lease_ttl_s());
    shard_->Call(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseGrant, req,
                 [this](UnaryCall<etcdserverpb::LeaseGrantResponse>& c) {
                   const int64_t end = NowNs();
                   if (!c.status.ok() || !c.resp.error().empty()) {
                     RetryAfterError(LeaseError(c), [this] { Issue(); });
                     return;
                   }
                   shard_->RecordLatency(kAux1, c.start_ns, end);
                   const int64_t lease = c.resp.id();
                   if (!running()) {
                     Revoke(lease, false);  // finish the cycle, do not count it
                     return;
                   }
                   Put(lease);
                 });
  }
  void Put(int64_t lease) {
    etcdserverpb::PutRequest req;
    req.set_key(key_);
    req.set_value(wb_->value());
    req.set_lease(lease);
    shard_->Call(conn_->kv.get(), &KV::Stub::PrepareAsyncPut, req,
                 [this, lease](UnaryCall<etcdserverpb::PutResponse>& c) {
                   const int64_t end = NowNs();
                   bool ok = c.status.ok();
                   if (!ok) {
                     shard_->CountError(c.status);
                   } else {
                     shard_->RecordLatency(kAux2, c.start_ns, end);
                   }
                   Revoke(lease, ok);  // always: the lease must not leak
                 });
  }
  void Revoke(int64_t lease, bool count) {
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(lease);
    shard_->Call(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseRevoke, req,
                 [this, count](UnaryCall<etcdserverpb::LeaseRevokeResponse>& c) {
                   const int64_t end = NowNs();
                   if (!c.status.ok()) {
                     RetryAfterError(c.status, [this] { Issue(); });  // it expires by TTL
                     return;
                   }
                   shard_->RecordLatency(kAux3, c.start_ns, end);
                   if (count) shard_->RecordOp(cycle_start_ns_, end);
                   if (running()) Issue();
                 });
  }

  Workbench* wb_;
  const std::string key_;
  int64_t cycle_start_ns_ = 0;
};

// sessions / locks-hold: a pool of leases kept alive over one stream.
class SessionPoolClient final : public Client {
 public:
  using KaStream =
      Stream<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>;

  SessionPoolClient(Shard* s, int id, Conn* c, Workbench* wb)
      : Client(s, id, c), wb_(wb), hold_(wb->workload() == Workload::kLocksHold) {
    const Options& o = wb->options();
    const int total = o.EffectiveSessions();
    want_ = total / o.clients + (id < total % o.clients ? 1 : 0);
    first_session_ =
        static_cast<int64_t>(id) * (total / o.clients) + std::min(id, total % o.clients);
    interval_ns_ = o.keepalive_ms > 0 ? static_cast<int64_t>(o.keepalive_ms * 1e6)
                                      : wb->lease_ttl_s() * 1'000'000'000 / 3;
    leases_.reserve(static_cast<size_t>(want_));
  }

  void Setup() override { OpenStream(); }

  void Run() override {
    if (finished_ || !hold_) return;
    AcquireNext();
  }

  void Stop() override {
    if (stream_) stream_->Cancel();
    if (pending_ != nullptr) pending_->ctx.TryCancel();
    revoke_deadline_ns_ =
        NowNs() + static_cast<int64_t>(shard_->options().drain_timeout_s * 0.8 * 1e9);
    if (!revoking_) RevokeNext();
  }

 private:
  void OpenStream() {
    stream_ = std::make_unique<KaStream>(
        shard_,
        KaStream::Callbacks{[this](bool ok) {
                              if (!ok) return;  // on_close reports it
                              last_tick_ns_ = NowNs();
                              Tick();
                              GrantNext();
                            },
                            [this](etcdserverpb::LeaseKeepAliveResponse& r) { OnKeepAlive(r); },
                            [this](const grpc::Status& s) { OnClose(s); }});
    stream_->Open(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseKeepAlive);
  }

  // Setup: grant this client's leases one after the other.
  void GrantNext() {
    if (static_cast<int>(leases_.size()) >= want_ || shard_->run()->phase.load() == kStop) {
      SetupDone();
      return;
    }
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(wb_->lease_ttl_s());
    shard_->Call(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseGrant, req,
                 [this](UnaryCall<etcdserverpb::LeaseGrantResponse>& c) {
                   if (!c.status.ok() || !c.resp.error().empty()) {
                     shard_->CountError(LeaseError(c));
                     if (++grant_failures_ > 20 || shard_->run()->phase.load() == kStop) {
                       Finished();
                       SetupDone();
                       return;
                     }
                     shard_->After(50'000'000, [this] { GrantNext(); });
                     return;
                   }
                   index_.emplace(c.resp.id(), leases_.size());
                   leases_.push_back(c.resp.id());
                   sent_ns_.push_back(0);
                   shard_->CountAlways("sessions");
                   GrantNext();
                 });
  }
  void SetupDone() {
    if (ready_) return;
    ready_ = true;
    Ready();
  }

  // Keep-alives: every 20 ms, n / interval per elapsed second (n = the
  // leases granted so far), round-robin over the leases.
  void Tick() {
    if (shard_->run()->phase.load() == kStop || !stream_ || !stream_->open()) return;
    const int64_t now = NowNs();
    const auto n = static_cast<int64_t>(leases_.size());
    credit_ += static_cast<double>(now - last_tick_ns_) * static_cast<double>(n) /
               static_cast<double>(std::max<int64_t>(1, interval_ns_));
    last_tick_ns_ = now;
    for (int i = 0; n > 0 && credit_ >= 1 && i < 100000; ++i, credit_ -= 1) {
      const size_t k = static_cast<size_t>(next_ka_++ % n);
      etcdserverpb::LeaseKeepAliveRequest req;
      req.set_id(leases_[k]);
      if (sent_ns_[k] == 0) sent_ns_[k] = now;  // one outstanding measurement per lease
      stream_->Send(req);
    }
    shard_->After(20'000'000, [this] { Tick(); });
  }
  void OnKeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r) {
    const int64_t end = NowNs();
    auto it = index_.find(r.id());
    if (it == index_.end()) return;
    int64_t& sent = sent_ns_[it->second];
    if (r.ttl() <= 0) {
      shard_->CountError(
          grpc::Status(grpc::StatusCode::NOT_FOUND, "keep-alive answered ttl <= 0 (lease gone)"));
    } else if (sent != 0) {
      if (hold_) {
        shard_->RecordLatency(kAux1, sent, end);
        shard_->Count("keepalives", sent, end);
      } else {
        shard_->RecordOp(sent, end);
      }
    }
    sent = 0;
  }
  void OnClose(const grpc::Status& s) {
    if (!ready_) {
      shard_->CountError(s);
      Finished();
      SetupDone();
      return;
    }
    if (shard_->run()->phase.load() == kStop) return;
    // The leases would expire without their stream: this client is done.
    shard_->CountError(s.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "keep-alive stream ended")
                              : s);
    Finished();
  }

  // locks-hold: acquire lock j of session k, for every k and j, one at a
  // time; then hold them all.
  void AcquireNext() {
    if (!running()) return;
    const int m = wb_->options().locks_per_session;
    const auto n = static_cast<int64_t>(leases_.size());
    if (next_lock_ >= n * m) return;  // all held
    const int64_t k = next_lock_ / m;
    const int64_t j = next_lock_ % m;
    warden::v1::AcquireRequest req;
    req.set_path(wb_->KeyPrefix() + std::to_string(first_session_ + k) + "/" + std::to_string(j));
    req.mutable_owner()->set_session(leases_[static_cast<size_t>(k)]);
    req.set_wait_ms(-1);                               // distinct locks: never waits
    req.set_request_id(static_cast<uint64_t>(j) + 1);  // unique per session
    pending_ = shard_->Call(
        conn_->native.get(), &warden::v1::Locks::Stub::PrepareAsyncAcquire, req,
        [this](UnaryCall<warden::v1::LockResponse>& c) {
          pending_ = nullptr;
          const int64_t end = NowNs();
          if (!c.status.ok()) {
            if (c.status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
              shard_->run()->MarkUnsupported(
                  "warden.v1.Locks/Acquire answered UNIMPLEMENTED" +
                  (c.status.error_message().empty() ? "" : ": " + c.status.error_message()));
              Finished();
              return;
            }
            RetryAfterError(c.status, [this] { AcquireNext(); });  // same request id
            return;
          }
          if (c.resp.outcome() != warden::v1::GRANTED) {
            shard_->CountError(
                grpc::Status(grpc::StatusCode::ABORTED,
                             "Acquire answered " + warden::v1::Outcome_Name(c.resp.outcome())));
          } else {
            shard_->RecordOp(c.start_ns, end);
            shard_->CountAlways("locks_held");
          }
          ++next_lock_;
          AcquireNext();
        });
  }

  // The end: revoke the leases, one in flight, until the deadline.
  void RevokeNext() {
    if (leases_.empty() || NowNs() > revoke_deadline_ns_) {
      revoking_ = false;
      return;
    }
    revoking_ = true;
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(leases_.back());
    leases_.pop_back();
    shard_->Call(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseRevoke, req,
                 [this](UnaryCall<etcdserverpb::LeaseRevokeResponse>& c) {
                   if (c.status.ok()) shard_->CountAlways("sessions_revoked");
                   RevokeNext();
                 });
  }

  Workbench* wb_;
  const bool hold_;
  int want_ = 0;
  int64_t first_session_ = 0;  // this client's first session index (lock paths)
  int64_t interval_ns_ = 0;
  std::vector<int64_t> leases_;
  std::vector<int64_t> sent_ns_;  // per lease: the unanswered keep-alive's send time
  std::unordered_map<int64_t, size_t> index_;
  std::unique_ptr<KaStream> stream_;
  bool ready_ = false;
  int grant_failures_ = 0;
  int64_t last_tick_ns_ = 0;
  double credit_ = 0;
  int64_t next_ka_ = 0;
  int64_t next_lock_ = 0;
  UnaryCall<warden::v1::LockResponse>* pending_ = nullptr;
  bool revoking_ = false;
  int64_t revoke_deadline_ns_ = 0;
};

}  // namespace

std::unique_ptr<Client> NewSessionChurnClient(Shard* shard, int id, Conn* conn, Workbench* wb) {
  return std::make_unique<SessionChurnClient>(shard, id, conn, wb);
}

std::unique_ptr<Client> NewSessionPoolClient(Shard* shard, int id, Conn* conn, Workbench* wb) {
  return std::make_unique<SessionPoolClient>(shard, id, conn, wb);
}

}  // namespace warden::bench

// The lock workloads: acquire, (hold,) release, repeat, on lock `id % K`.
//
//   lock-v3      etcd's v3lockpb.Lock service: Lock(name, lease) blocks until
//                granted and returns the owner key; Unlock(key) releases.
//   lock-recipe  etcd's client-side concurrency.Mutex, over plain KV, lease
//                and watch: a txn creates prefix/<lease-hex> if absent and
//                reads the prefix's first creator; if that is not us, wait
//                for the delete of the key created just before ours (a Range
//                with max_create_revision, then a watch from the range's
//                revision), and repeat until none is older. Release deletes
//                the key.
//   lock-native  Warden's warden.v1.Locks: Acquire(path, owner = (lease,
//                per-client id), wait without deadline, a request id)
//                answers when granted with a fencing token; Release(token).
//
// Each client holds one lease for the whole run (no keep-alive: its TTL
// outlasts the run) and revokes it at the end, which also deletes any key it
// still owns. The Workbench checks that no two clients of this process hold
// the same lock at once and counts hand-overs (a grant to a different client
// than the last holder); lock-native also checks that each lock's fencing
// tokens strictly increase. A server without the service (UNIMPLEMENTED)
// makes the run report "unsupported".
#include <cstdio>

#include "bench/load/clients.h"
#include "bench/load/stream.h"

namespace warden::bench {

namespace {

using etcdserverpb::KV;
using etcdserverpb::Lease;

// Shared by both lock clients: the lease, the release/cleanup discipline.
class LockClientBase : public Client {
 public:
  LockClientBase(Shard* s, int id, Conn* c, Workbench* wb)
      : Client(s, id, c), wb_(wb), lock_(id % wb->options().EffectiveLocks()) {}

  void Setup() override {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(wb_->lease_ttl_s());
    shard_->Call(
        conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseGrant, req,
        [this](UnaryCall<etcdserverpb::LeaseGrantResponse>& c) {
          if (!c.status.ok() || !c.resp.error().empty()) {
            shard_->CountError(
                c.status.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, c.resp.error()) : c.status);
            Finished();
            Ready();
            return;
          }
          lease_ = c.resp.id();
          AfterLease();
        });
  }
  void Run() override {
    if (!finished_) Acquire();
  }

 protected:
  // Called once the lease exists; must call Ready().
  virtual void AfterLease() { Ready(); }
  virtual void Acquire() = 0;
  virtual void SendRelease() = 0;

  // The lock is ours (since start_ns).
  void Acquired() {
    holding_ = true;
    wb_->OnAcquired(shard_, lock_, id_, start_ns_, NowNs());
    const double hold_ms = wb_->options().hold_ms;
    if (hold_ms > 0 && running()) {
      shard_->After(static_cast<int64_t>(hold_ms * 1e6), [this] { Release(); });
    } else {
      Release();
    }
  }
  void Release() {
    wb_->OnReleasing(lock_, id_);
    release_start_ns_ = NowNs();
    SendRelease();
  }
  // The release answered.
  void Released(const grpc::Status& s) {
    holding_ = false;
    const int64_t end = NowNs();
    if (!s.ok()) {
      shard_->CountError(s);  // the key stays until the lease is revoked
    } else {
      shard_->RecordLatency(kAux1, release_start_ns_, end);
    }
    Next(s.ok() ? 0 : 20'000'000);
  }
  // Acquires again if the run goes on, else cleans up.
  void Next(int64_t delay_ns) {
    if (!running()) {
      Cleanup();
      return;
    }
    auto go = [this] {
      if (running()) {
        Pace([this] {
          if (running()) {
            Acquire();
          } else {
            Cleanup();
          }
        });
      } else {
        Cleanup();
      }
    };
    if (delay_ns > 0) {
      shard_->After(delay_ns, go);
    } else {
      go();
    }
  }
  // An acquire attempt failed.
  void AcquireFailed(const grpc::Status& s, const char* rpc) {
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      shard_->run()->MarkUnsupported(std::string(rpc) + " answered UNIMPLEMENTED" +
                                     (s.error_message().empty() ? "" : ": " + s.error_message()));
      Finished();
      Cleanup();
      return;
    }
    shard_->CountError(s);
    Next(20'000'000);
  }
  // Revokes the lease once: the server deletes whatever key it still has.
  void Cleanup() {
    if (cleaned_ || lease_ == 0) return;
    cleaned_ = true;
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(lease_);
    shard_->Call(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseRevoke, req,
                 [this](UnaryCall<etcdserverpb::LeaseRevokeResponse>& c) {
                   if (!c.status.ok() && c.status.error_code() != grpc::StatusCode::NOT_FOUND)
                     shard_->CountError(c.status);
                 });
  }

  Workbench* wb_;
  const int lock_;
  int64_t lease_ = 0;
  bool holding_ = false;
  bool cleaned_ = false;
  int64_t start_ns_ = 0;
  int64_t release_start_ns_ = 0;
};

class LockV3Client final : public LockClientBase {
 public:
  LockV3Client(Shard* s, int id, Conn* c, Workbench* wb)
      : LockClientBase(s, id, c, wb), name_("wbl/v3-" + std::to_string(lock_)) {}

  void Stop() override {
    if (pending_ != nullptr) {
      pending_->ctx.TryCancel();  // a Lock still waiting
    } else if (!holding_) {
      Cleanup();
    }
  }

 private:
  void Acquire() override {
    v3lockpb::LockRequest req;
    req.set_name(name_);
    req.set_lease(lease_);
    start_ns_ = NowNs();
    pending_ = shard_->Call(conn_->lock.get(), &v3lockpb::Lock::Stub::PrepareAsyncLock, req,
                            [this](UnaryCall<v3lockpb::LockResponse>& c) {
                              pending_ = nullptr;
                              if (!c.status.ok()) {
                                AcquireFailed(c.status, "v3lockpb.Lock/Lock");
                                return;
                              }
                              key_ = c.resp.key();
                              Acquired();
                            });
  }
  void SendRelease() override {
    v3lockpb::UnlockRequest req;
    req.set_key(key_);
    shard_->Call(conn_->lock.get(), &v3lockpb::Lock::Stub::PrepareAsyncUnlock, req,
                 [this](UnaryCall<v3lockpb::UnlockResponse>& c) { Released(c.status); });
  }

  const std::string name_;
  std::string key_;
  UnaryCall<v3lockpb::LockResponse>* pending_ = nullptr;
};

class LockRecipeClient final : public LockClientBase {
 public:
  using WStream = Stream<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

  LockRecipeClient(Shard* s, int id, Conn* c, Workbench* wb)
      : LockClientBase(s, id, c, wb), prefix_("wbl/rc-" + std::to_string(lock_) + "/") {}

  void Stop() override {
    if (stream_) stream_->Cancel();
    if (waiting_) {
      waiting_ = false;
      Cleanup();  // revoking the lease removes our place in the queue
    } else if (!busy_ && !holding_) {
      Cleanup();
    }
  }

 private:
  void AfterLease() override {
    char hex[24];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease_));
    my_key_ = prefix_ + hex;
    stream_ = std::make_unique<WStream>(
        shard_, WStream::Callbacks{[this](bool ok) {
                                     if (!ready_) {
                                       ready_ = true;
                                       open_failed_ = !ok;
                                       if (!ok) Finished();
                                       Ready();
                                     }
                                   },
                                   [this](etcdserverpb::WatchResponse& r) { OnWatch(r); },
                                   [this](const grpc::Status& s) { OnClose(s); }});
    stream_->Open(conn_->watch.get(), &etcdserverpb::Watch::Stub::PrepareAsyncWatch);
  }

  void Acquire() override {
    start_ns_ = NowNs();
    etcdserverpb::TxnRequest req;
    etcdserverpb::Compare* cmp = req.add_compare();
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_target(etcdserverpb::Compare::CREATE);
    cmp->set_key(my_key_);
    cmp->set_create_revision(0);
    etcdserverpb::PutRequest* put = req.add_success()->mutable_request_put();
    put->set_key(my_key_);
    put->set_lease(lease_);
    *req.add_success()->mutable_request_range() = OwnerRange();
    req.add_failure()->mutable_request_range()->set_key(my_key_);
    *req.add_failure()->mutable_request_range() = OwnerRange();
    busy_ = true;
    shard_->Call(conn_->kv.get(), &KV::Stub::PrepareAsyncTxn, req,
                 [this](UnaryCall<etcdserverpb::TxnResponse>& c) {
                   busy_ = false;
                   if (!c.status.ok()) {
                     AcquireFailed(c.status, "KV/Txn");
                     return;
                   }
                   const auto& r = c.resp;
                   if (r.responses_size() != 2) {
                     AcquireFailed(
                         grpc::Status(grpc::StatusCode::INTERNAL, "txn: want 2 responses"),
                         "KV/Txn");
                     return;
                   }
                   if (r.succeeded()) {
                     my_rev_ = r.header().revision();
                   } else if (r.responses(0).response_range().kvs_size() > 0) {
                     my_rev_ = r.responses(0).response_range().kvs(0).create_revision();
                   }
                   const auto& owner = r.responses(1).response_range().kvs();
                   if (!running()) {
                     Cleanup();  // the key goes with the lease
                     return;
                   }
                   if (owner.size() > 0 && owner[0].create_revision() == my_rev_) {
                     Acquired();
                   } else {
                     WaitDeletes();
                   }
                 });
  }

  // The first creator under the prefix.
  etcdserverpb::RangeRequest OwnerRange() const {
    etcdserverpb::RangeRequest r;
    r.set_key(prefix_);
    r.set_range_end(PrefixEnd(prefix_));
    r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    r.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
    r.set_limit(1);
    return r;
  }

  // Finds the last key created before ours; none left means the lock is ours.
  void WaitDeletes() {
    etcdserverpb::RangeRequest req;
    req.set_key(prefix_);
    req.set_range_end(PrefixEnd(prefix_));
    req.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    req.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
    req.set_limit(1);
    req.set_max_create_revision(my_rev_ - 1);
    busy_ = true;
    shard_->Call(conn_->kv.get(), &KV::Stub::PrepareAsyncRange, req,
                 [this](UnaryCall<etcdserverpb::RangeResponse>& c) {
                   busy_ = false;
                   if (!c.status.ok()) {
                     shard_->CountError(c.status);
                     if (!running()) {
                       Cleanup();
                       return;
                     }
                     shard_->After(20'000'000, [this] {
                       if (running()) {
                         WaitDeletes();
                       } else {
                         Cleanup();
                       }
                     });
                     return;
                   }
                   if (!running()) {
                     Cleanup();
                     return;
                   }
                   if (c.resp.kvs_size() == 0) {
                     Acquired();
                     return;
                   }
                   // Wait for that key's delete, from the revision we saw it at.
                   waiting_ = true;
                   watch_id_ = -1;
                   awaiting_created_ = true;
                   etcdserverpb::WatchRequest w;
                   w.mutable_create_request()->set_key(c.resp.kvs(0).key());
                   w.mutable_create_request()->set_start_revision(c.resp.header().revision());
                   stream_->Send(w);
                 });
  }

  void OnWatch(const etcdserverpb::WatchResponse& r) {
    if (r.created() && awaiting_created_) {
      awaiting_created_ = false;
      if (r.canceled()) {
        shard_->CountError(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                        "watch create refused: " + r.cancel_reason()));
        waiting_ = false;
        Finished();
        Cleanup();
        return;
      }
      watch_id_ = r.watch_id();
    }
    if (!waiting_ || r.watch_id() != watch_id_) return;  // a cancelled watch's tail
    for (const auto& ev : r.events()) {
      if (ev.type() != mvccpb::Event::DELETE) continue;
      waiting_ = false;
      etcdserverpb::WatchRequest cancel;
      cancel.mutable_cancel_request()->set_watch_id(watch_id_);
      stream_->Send(cancel);
      watch_id_ = -1;
      if (running()) {
        WaitDeletes();
      } else {
        Cleanup();
      }
      return;
    }
  }

  void OnClose(const grpc::Status& s) {
    if (open_failed_) {
      shard_->CountError(s);
      return;
    }
    if (running()) {
      shard_->CountError(s.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "watch stream ended")
                                : s);
      Finished();
    }
    if (waiting_) {
      waiting_ = false;
      Cleanup();
    }
  }

  void SendRelease() override {
    etcdserverpb::DeleteRangeRequest req;
    req.set_key(my_key_);
    busy_ = true;
    shard_->Call(conn_->kv.get(), &KV::Stub::PrepareAsyncDeleteRange, req,
                 [this](UnaryCall<etcdserverpb::DeleteRangeResponse>& c) {
                   busy_ = false;
                   Released(c.status);
                 });
  }

  const std::string prefix_;
  std::string my_key_;
  int64_t my_rev_ = 0;
  std::unique_ptr<WStream> stream_;
  bool ready_ = false;
  bool open_failed_ = false;
  bool busy_ = false;     // a KV call in flight
  bool waiting_ = false;  // waiting for a predecessor's delete
  bool awaiting_created_ = false;
  int64_t watch_id_ = -1;
};

class LockNativeClient final : public LockClientBase {
 public:
  LockNativeClient(Shard* s, int id, Conn* c, Workbench* wb)
      : LockClientBase(s, id, c, wb),
        path_("wbl/native-" + std::to_string(lock_)),
        owner_id_("wb-" + std::to_string(id)) {}

  void Stop() override {
    if (pending_ != nullptr) {
      pending_->ctx.TryCancel();  // an Acquire still waiting; the revoke drops the wait
    } else if (!holding_) {
      Cleanup();
    }
  }

 private:
  void SetOwner(warden::v1::Owner* o) const {
    o->set_session(lease_);
    o->set_id(owner_id_);
  }

  void Acquire() override {
    start_ns_ = NowNs();
    acquire_id_ = ++next_request_id_;  // unique per session across operations
    SendAcquire();
  }
  // Also a retry after a transport error: the same request id gets the
  // first answer (or keeps waiting) instead of queuing a second request.
  void SendAcquire() {
    warden::v1::AcquireRequest req;
    req.set_path(path_);
    SetOwner(req.mutable_owner());
    req.set_wait_ms(-1);
    req.set_request_id(acquire_id_);
    // A wait in the queue has no deadline; Stop() cancels it.
    const Options& o = wb_->options();
    const double wait_s =
        o.idle_s + o.warmup_s + o.duration_s + o.linger_s + o.drain_timeout_s + o.rpc_timeout_s;
    pending_ = shard_->Call(
        conn_->native.get(), &warden::v1::Locks::Stub::PrepareAsyncAcquire, req,
        [this](UnaryCall<warden::v1::LockResponse>& c) {
          pending_ = nullptr;
          if (!c.status.ok()) {
            if (c.status.error_code() == grpc::StatusCode::UNIMPLEMENTED || !running()) {
              AcquireFailed(c.status, "warden.v1.Locks/Acquire");
              return;
            }
            shard_->CountError(c.status);
            shard_->After(20'000'000, [this] {
              if (running()) {
                SendAcquire();
              } else {
                Cleanup();
              }
            });
            return;
          }
          const auto& r = c.resp;
          if (r.outcome() != warden::v1::GRANTED) {
            const grpc::Status refused(grpc::StatusCode::ABORTED,
                                       "Acquire answered " + warden::v1::Outcome_Name(r.outcome()) +
                                           (r.detail().empty() ? "" : ": " + r.detail()));
            if (r.outcome() == warden::v1::SESSION_ENDED) {
              shard_->CountError(refused);
              Finished();
              Cleanup();
              return;
            }
            AcquireFailed(refused, "warden.v1.Locks/Acquire");
            return;
          }
          if (r.hold_count() != 1) shard_->CountAlways("reentrant_grants");  // never expected
          token_ = r.token();
          wb_->CheckToken(shard_, lock_, token_);
          Acquired();
        },
        wait_s);
  }

  void SendRelease() override {
    release_id_ = ++next_request_id_;
    SendReleaseRequest();
  }
  void SendReleaseRequest() {
    warden::v1::ReleaseRequest req;
    req.set_path(path_);
    SetOwner(req.mutable_owner());
    req.set_token(token_);
    req.set_request_id(release_id_);
    shard_->Call(conn_->native.get(), &warden::v1::Locks::Stub::PrepareAsyncRelease, req,
                 [this](UnaryCall<warden::v1::LockResponse>& c) {
                   if (!c.status.ok() && running()) {
                     // Still held: retry the same request rather than
                     // re-acquire (which would nest).
                     shard_->CountError(c.status);
                     shard_->After(20'000'000, [this] {
                       if (running()) {
                         SendReleaseRequest();
                       } else {
                         Released(grpc::Status::OK);  // the revoke releases it
                       }
                     });
                     return;
                   }
                   if (c.status.ok() && c.resp.outcome() != warden::v1::GRANTED) {
                     Released(grpc::Status(
                         grpc::StatusCode::ABORTED,
                         "Release answered " + warden::v1::Outcome_Name(c.resp.outcome())));
                     return;
                   }
                   Released(c.status);
                 });
  }

  const std::string path_;
  const std::string owner_id_;
  uint64_t next_request_id_ = 0;
  uint64_t acquire_id_ = 0;
  uint64_t release_id_ = 0;
  uint64_t token_ = 0;
  UnaryCall<warden::v1::LockResponse>* pending_ = nullptr;
};

}  // namespace

std::unique_ptr<Client> NewLockV3Client(Shard* shard, int id, Conn* conn, Workbench* wb) {
  return std::make_unique<LockV3Client>(shard, id, conn, wb);
}

std::unique_ptr<Client> NewLockRecipeClient(Shard* shard, int id, Conn* conn, Workbench* wb) {
  return std::make_unique<LockRecipeClient>(shard, id, conn, wb);
}

std::unique_ptr<Client> NewLockNativeClient(Shard* shard, int id, Conn* conn, Workbench* wb) {
  return std::make_unique<LockNativeClient>(shard, id, conn, wb);
}

}  // namespace warden::bench

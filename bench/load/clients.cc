// The KV, lease and watch workloads' clients, and the Workbench.
#include "bench/load/clients.h"

#include <cstring>
#include <unordered_map>

#include "bench/load/stream.h"

namespace warden::bench {

namespace {

using etcdserverpb::KV;
using etcdserverpb::Lease;
using etcdserverpb::Watch;

std::string WorkloadPrefix(Workload w) {
  switch (w) {
    case Workload::kWatch: return "wbw/";
    case Workload::kLockV3:
    case Workload::kLockRecipe:
    case Workload::kLockNative: return "wbl/";
    case Workload::kSessionChurn: return "wbs/";
    case Workload::kLocksHold: return "wbh/";
    default: return "wbk/";  // put, range and txn share keys (range reads what prefill wrote)
  }
}

}  // namespace

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Workbench::Workbench(const Options& o, Workload w)
    : o_(o),
      workload_(w),
      prefix_(WorkloadPrefix(w)),
      versions_(new std::atomic<int64_t>[w == Workload::kTxn ? o.keys : 1]),
      holders_(new std::atomic<int64_t>[o.EffectiveLocks()]),
      last_holders_(new std::atomic<int64_t>[o.EffectiveLocks()]),
      last_tokens_(new std::atomic<uint64_t>[o.EffectiveLocks()]) {
  std::mt19937_64 rng(42);
  value_.resize(static_cast<size_t>(o.value_size));
  for (char& c : value_) c = static_cast<char>('a' + rng() % 26);
  const double run_s = o.idle_s + o.warmup_s + o.duration_s + o.linger_s + o.drain_timeout_s + 30;
  if (o.lease_ttl_s > 0) {
    lease_ttl_s_ = o.lease_ttl_s;
  } else if (w == Workload::kSessionChurn) {
    lease_ttl_s_ = 10;  // revoked within the cycle; the TTL only bounds a leak
  } else {
    lease_ttl_s_ = std::max<int64_t>(60, static_cast<int64_t>(run_s));
  }
  for (uint64_t i = 0; i < (w == Workload::kTxn ? o.keys : 1); ++i) versions_[i].store(0);
  for (int i = 0; i < o.EffectiveLocks(); ++i) {
    holders_[i].store(-1);
    last_holders_[i].store(-1);
    last_tokens_[i].store(0);
  }
}

std::string Workbench::Key(uint64_t i) const {
  std::string digits = std::to_string(i);
  std::string key = prefix_;
  key.append(static_cast<size_t>(o_.key_size) - prefix_.size() - digits.size(), '0');
  key += digits;
  return key;
}

uint64_t Workbench::NextKeyIndex(std::mt19937_64& rng) {
  if (o_.key_order == KeyOrder::kSequential)
    return seq_.fetch_add(1, std::memory_order_relaxed) % o_.keys;
  return rng() % o_.keys;
}

void Workbench::OnAcquired(Shard* shard, int lock, int client, int64_t start_ns, int64_t end_ns) {
  int64_t expected = -1;
  if (!holders_[lock].compare_exchange_strong(expected, client)) {
    // Two clients of this process hold the same lock: the server broke
    // mutual exclusion. Counted whenever it happens, window or not.
    shard->CountAlways("mutual_exclusion_violations");
    holders_[lock].store(client);
  }
  const int64_t last = last_holders_[lock].exchange(client);
  if (last >= 0 && last != client) shard->Count("handovers", start_ns, end_ns);
  shard->RecordOp(start_ns, end_ns);
}

void Workbench::CheckToken(Shard* shard, int lock, uint64_t token) {
  // Grants of one lock are causally ordered (the next holder is granted only
  // after this one released, which it does after this runs), so the previous
  // token is the previous grant's.
  const uint64_t prev = last_tokens_[lock].exchange(token);
  if (token <= prev) shard->CountAlways("token_order_violations");
}

void Workbench::OnReleasing(int lock, int client) {
  int64_t expected = client;
  holders_[lock].compare_exchange_strong(expected, -1);
}

namespace {

// put: Put a key of the key space. Also the watch workload's writer, which
// stamps its send time into the first 8 bytes of the value.
class PutClient final : public Client {
 public:
  PutClient(Shard* s, int id, Conn* c, Workbench* wb, bool stamp)
      : Client(s, id, c), wb_(wb), stamp_(stamp), rng_(id * 7919 + 1) {}

  void Run() override { Issue(); }

 private:
  void Issue() {
    Pace([this] { Send(); });
  }
  void Send() {
    if (!running()) return;
    etcdserverpb::PutRequest req;
    if (stamp_ && !wb_->options().watch_prefix && !wb_->options().watch_spread) {
      req.set_key(wb_->Key(0));
    } else {
      req.set_key(wb_->Key(wb_->NextKeyIndex(rng_)));
    }
    std::string value = wb_->value();
    if (stamp_) {
      const int64_t now = NowNs();
      std::memcpy(value.data(), &now, sizeof now);
    }
    req.set_value(std::move(value));
    shard_->Call(conn_->kv.get(), &KV::Stub::PrepareAsyncPut, req,
                 [this](UnaryCall<etcdserverpb::PutResponse>& c) {
                   const int64_t end = NowNs();
                   if (!c.status.ok()) {
                     RetryAfterError(c.status, [this] { Send(); });
                     return;
                   }
                   if (stamp_) {
                     shard_->RecordLatency(kAux1, c.start_ns, end);
                     shard_->Count("puts", c.start_ns, end);
                   } else {
                     shard_->RecordOp(c.start_ns, end);
                   }
                   if (running()) Issue();
                 });
  }

  Workbench* wb_;
  const bool stamp_;
  std::mt19937_64 rng_;
};

// range / range-serializable: Range one key of the key space.
class RangeClient final : public Client {
 public:
  RangeClient(Shard* s, int id, Conn* c, Workbench* wb, bool serializable)
      : Client(s, id, c), wb_(wb), serializable_(serializable), rng_(id * 7919 + 2) {}

  void Run() override { Issue(); }

 private:
  void Issue() {
    Pace([this] { Send(); });
  }
  void Send() {
    if (!running()) return;
    etcdserverpb::RangeRequest req;
    req.set_key(wb_->Key(wb_->NextKeyIndex(rng_)));
    req.set_serializable(serializable_);
    shard_->Call(conn_->kv.get(), &KV::Stub::PrepareAsyncRange, req,
                 [this](UnaryCall<etcdserverpb::RangeResponse>& c) {
                   const int64_t end = NowNs();
                   if (!c.status.ok()) {
                     RetryAfterError(c.status, [this] { Send(); });
                     return;
                   }
                   shard_->RecordOp(c.start_ns, end);
                   if (c.resp.kvs_size() == 0) shard_->Count("range_missing_key", c.start_ns, end);
                   if (running()) Issue();
                 });
  }

  Workbench* wb_;
  const bool serializable_;
  std::mt19937_64 rng_;
};

// txn: compare-and-set on a key's version. Success puts the value; failure
// reads the key, whose version becomes the next attempt's expectation.
class TxnClient final : public Client {
 public:
  TxnClient(Shard* s, int id, Conn* c, Workbench* wb)
      : Client(s, id, c), wb_(wb), rng_(id * 7919 + 3) {}

  void Run() override { Issue(); }

 private:
  void Issue() {
    Pace([this] { Send(); });
  }
  void Send() {
    if (!running()) return;
    const uint64_t i = wb_->NextKeyIndex(rng_);
    const std::string key = wb_->Key(i);
    const int64_t expected = wb_->version(i).load(std::memory_order_relaxed);
    etcdserverpb::TxnRequest req;
    etcdserverpb::Compare* cmp = req.add_compare();
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_target(etcdserverpb::Compare::VERSION);
    cmp->set_key(key);
    cmp->set_version(expected);
    etcdserverpb::PutRequest* put = req.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(wb_->value());
    req.add_failure()->mutable_request_range()->set_key(key);
    shard_->Call(
        conn_->kv.get(), &KV::Stub::PrepareAsyncTxn, req,
        [this, i, expected](UnaryCall<etcdserverpb::TxnResponse>& c) {
          const int64_t end = NowNs();
          if (!c.status.ok()) {
            RetryAfterError(c.status, [this] { Send(); });
            return;
          }
          if (c.resp.succeeded()) {
            wb_->version(i).store(expected + 1, std::memory_order_relaxed);
            shard_->Count("txn_succeeded", c.start_ns, end);
          } else {
            int64_t seen = 0;
            if (c.resp.responses_size() > 0 && c.resp.responses(0).response_range().kvs_size() > 0)
              seen = c.resp.responses(0).response_range().kvs(0).version();
            wb_->version(i).store(seen, std::memory_order_relaxed);
            shard_->Count("txn_failed", c.start_ns, end);
          }
          shard_->RecordOp(c.start_ns, end);
          if (running()) Issue();
        });
  }

  Workbench* wb_;
  std::mt19937_64 rng_;
};

// lease-keepalive: grant a lease, then ping-pong keep-alives on one
// LeaseKeepAlive stream per client. One operation = one round trip.
class KeepAliveClient final : public Client {
 public:
  using KaStream =
      Stream<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>;

  KeepAliveClient(Shard* s, int id, Conn* c, Workbench* wb) : Client(s, id, c), wb_(wb) {}

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
          OpenStream();
        });
  }
  void Run() override {
    if (!finished_) Issue();
  }
  void Stop() override {
    if (stream_) stream_->Cancel();
    if (lease_ != 0) {
      etcdserverpb::LeaseRevokeRequest req;
      req.set_id(lease_);
      shard_->Call(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseRevoke, req,
                   [](UnaryCall<etcdserverpb::LeaseRevokeResponse>&) {});
    }
  }

 private:
  void OpenStream() {
    if (stream_) shard_->Bury(std::move(stream_));
    awaiting_ = false;
    stream_ = std::make_unique<KaStream>(
        shard_,
        KaStream::Callbacks{[this](bool ok) {
                              if (ok && !ready_) {
                                ready_ = true;
                                Ready();
                              } else if (ok && running()) {
                                Issue();  // reopened after an error
                              }
                            },
                            [this](etcdserverpb::LeaseKeepAliveResponse& r) { OnResponse(r); },
                            [this](const grpc::Status& s) { OnClose(s); }});
    stream_->Open(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseKeepAlive);
  }
  void Issue() {
    Pace([this] {
      if (!running() || !stream_->open()) return;
      etcdserverpb::LeaseKeepAliveRequest req;
      req.set_id(lease_);
      sent_ns_ = NowNs();
      awaiting_ = true;
      stream_->Send(req);
    });
  }
  void OnResponse(const etcdserverpb::LeaseKeepAliveResponse& r) {
    if (!awaiting_) return;
    awaiting_ = false;
    const int64_t end = NowNs();
    if (r.ttl() <= 0) {
      shard_->CountError(
          grpc::Status(grpc::StatusCode::NOT_FOUND, "keep-alive answered ttl <= 0 (lease gone)"));
    } else {
      shard_->RecordOp(sent_ns_, end);
    }
    if (running()) Issue();
  }
  void OnClose(const grpc::Status& s) {
    if (!ready_) {
      shard_->CountError(s);
      Finished();
      ready_ = true;
      Ready();
      return;
    }
    if (!running()) return;
    shard_->CountError(s.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "keep-alive stream ended")
                              : s);
    shard_->After(20'000'000, [this] {
      if (running()) OpenStream();
    });
  }

  Workbench* wb_;
  int64_t lease_ = 0;
  std::unique_ptr<KaStream> stream_;
  bool ready_ = false;
  bool awaiting_ = false;
  int64_t sent_ns_ = 0;
};

// watch: one Watch stream carrying `watches` watches of the same key (or the
// key space prefix). Every event's value starts with the writer's send time;
// one operation = one notification delivered to one watcher.
class WatchStreamClient final : public Client {
 public:
  using WStream = Stream<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

  WatchStreamClient(Shard* s, int id, Conn* c, Workbench* wb, int watches)
      : Client(s, id, c), wb_(wb), watches_(watches) {}

  void Setup() override {
    stream_ = std::make_unique<WStream>(
        shard_, WStream::Callbacks{[this](bool ok) {
                                     if (ok) SendCreates();
                                   },
                                   [this](etcdserverpb::WatchResponse& r) { OnResponse(r); },
                                   [this](const grpc::Status& s) { OnClose(s); }});
    stream_->Open(conn_->watch.get(), &Watch::Stub::PrepareAsyncWatch);
  }
  void Run() override {}
  void Stop() override { stream_->Cancel(); }

 private:
  // --watch-spread: this stream's watch i is watch id_ + i * streams of the
  // run, on key (that) % keys.
  std::string SpreadKey(int i) const {
    const Options& o = wb_->options();
    const uint64_t j = static_cast<uint64_t>(id_) +
                       static_cast<uint64_t>(i) * static_cast<uint64_t>(o.EffectiveWatchStreams());
    return wb_->Key(j % o.keys);
  }
  void SendCreates() {
    const Options& o = wb_->options();
    for (int i = 0; i < watches_; ++i) {
      etcdserverpb::WatchRequest req;
      etcdserverpb::WatchCreateRequest* c = req.mutable_create_request();
      if (o.watch_prefix) {
        c->set_key(wb_->KeyPrefix());
        c->set_range_end(PrefixEnd(wb_->KeyPrefix()));
      } else if (o.watch_spread) {
        c->set_key(SpreadKey(i));
      } else {
        c->set_key(wb_->Key(0));
      }
      stream_->Send(req);
    }
  }
  void OnResponse(const etcdserverpb::WatchResponse& r) {
    const int64_t now = NowNs();
    if (r.created()) {
      if (r.canceled()) {
        shard_->CountError(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                        "watch create refused: " + r.cancel_reason()));
      } else {
        last_rev_.emplace(r.watch_id(), 0);
        // A stream answers its creates in order: this is watch answered_.
        if (wb_->options().watch_spread) spread_keys_.emplace(r.watch_id(), SpreadKey(answered_));
      }
      if (++answered_ == watches_ && !ready_) {
        ready_ = true;
        Ready();
      }
    }
    for (const auto& ev : r.events()) {
      const std::string& v = ev.kv().value();
      if (v.size() < sizeof(int64_t)) continue;
      int64_t sent = 0;
      std::memcpy(&sent, v.data(), sizeof sent);
      shard_->RecordOp(sent, now);
      if (!spread_keys_.empty() && ev.kv().key() != spread_keys_[r.watch_id()]) {
        shard_->CountAlways("watch_wrong_key");
      }
      int64_t& last = last_rev_[r.watch_id()];
      if (last == 0) shard_->CountAlways("watches_notified");
      if (ev.kv().mod_revision() <= last) shard_->CountAlways("watch_events_out_of_order");
      last = ev.kv().mod_revision();
    }
  }
  void OnClose(const grpc::Status& s) {
    if (!ready_) {
      shard_->CountError(s);
      Finished();
      ready_ = true;
      Ready();
      return;
    }
    if (running()) {
      shard_->CountError(s.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "watch stream ended")
                                : s);
      Finished();
    }
  }

  Workbench* wb_;
  const int watches_;
  std::unique_ptr<WStream> stream_;
  std::unordered_map<int64_t, int64_t> last_rev_;         // watch id -> last mod_revision seen
  std::unordered_map<int64_t, std::string> spread_keys_;  // --watch-spread: watch id -> its key
  int answered_ = 0;
  bool ready_ = false;
};

}  // namespace

std::unique_ptr<Client> NewClient(Workload w, Shard* shard, int id, Conn* conn, Workbench* wb) {
  switch (w) {
    case Workload::kPut: return std::make_unique<PutClient>(shard, id, conn, wb, false);
    case Workload::kWatch: return std::make_unique<PutClient>(shard, id, conn, wb, true);
    case Workload::kRange: return std::make_unique<RangeClient>(shard, id, conn, wb, false);
    case Workload::kRangeSerializable:
      return std::make_unique<RangeClient>(shard, id, conn, wb, true);
    case Workload::kTxn: return std::make_unique<TxnClient>(shard, id, conn, wb);
    case Workload::kLeaseKeepAlive: return std::make_unique<KeepAliveClient>(shard, id, conn, wb);
    case Workload::kLockV3: return NewLockV3Client(shard, id, conn, wb);
    case Workload::kLockRecipe: return NewLockRecipeClient(shard, id, conn, wb);
    case Workload::kLockNative: return NewLockNativeClient(shard, id, conn, wb);
    case Workload::kSessionChurn: return NewSessionChurnClient(shard, id, conn, wb);
    case Workload::kLocksHold:
    case Workload::kSessions: return NewSessionPoolClient(shard, id, conn, wb);
    case Workload::kFailover: break;
  }
  return nullptr;
}

std::unique_ptr<Client> NewWatchStreamClient(Shard* shard, int id, Conn* conn, Workbench* wb,
                                             int watches) {
  return std::make_unique<WatchStreamClient>(shard, id, conn, wb, watches);
}

}  // namespace warden::bench

#include "bench/load/shard.h"

#include <algorithm>

namespace warden::bench {

void Stats::Merge(const Stats& o) {
  for (int i = 0; i < kHistCount; ++i) hist[i].Merge(o.hist[i]);
  ops += o.ops;
  for (const auto& [k, v] : o.counters) counters[k] += v;
  for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
  for (const auto& [k, v] : o.error_samples) error_samples.emplace(k, v);
}

const char* StatusCodeName(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  return code >= 0 && code < 17 ? kNames[code] : "?";
}

std::unique_ptr<Conn> MakeConn(const std::string& endpoint, int index) {
  grpc::ChannelArguments args;
  // One TCP connection per channel: without a local subchannel pool, channels
  // with equal arguments share one connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("warden.bench.conn", index);
  args.SetMaxReceiveMessageSize(-1);
  // Count every failure as the server gave it; no transparent retries.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Reconnect quickly to a member that comes back (failover runs). Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: it is also the connect timeout, and
  // thousands of connections opened at once need the default 20 s.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto c = std::make_unique<Conn>();
  c->endpoint = endpoint;
  c->channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
  c->kv = etcdserverpb::KV::NewStub(c->channel);
  c->lease = etcdserverpb::Lease::NewStub(c->channel);
  c->watch = etcdserverpb::Watch::NewStub(c->channel);
  c->lock = v3lockpb::Lock::NewStub(c->channel);
  c->native = warden::v1::Locks::NewStub(c->channel);
  return c;
}

// ---------------------------------------------------------------------------
// Client

void Client::Ready() { shard_->run()->clients_ready.fetch_add(1); }

void Client::Finished() {
  if (finished_) return;
  finished_ = true;
  shard_->run()->clients_finished.fetch_add(1);
}

bool Client::running() const {
  return !finished_ && shard_->run()->phase.load(std::memory_order_relaxed) == kRun;
}

void Client::Pace(std::function<void()> issue) {
  const Options& o = shard_->options();
  if (o.rate <= 0) {
    issue();
    return;
  }
  const auto interval_ns = static_cast<int64_t>(1e9 * o.clients / o.rate);
  const int64_t now = NowNs();
  if (next_slot_ns_ == 0) {
    next_slot_ns_ = now + interval_ns * id_ / std::max(1, o.clients);  // spread the clients
  } else if (next_slot_ns_ < now - interval_ns) {
    next_slot_ns_ = now;  // fell behind: do not burst to catch up
  }
  const int64_t slot = next_slot_ns_;
  next_slot_ns_ += interval_ns;
  if (slot > now) {
    shard_->After(slot - now, std::move(issue));
  } else {
    issue();
  }
}

void Client::RetryAfterError(const grpc::Status& s, std::function<void()> retry) {
  shard_->CountError(s);
  if (!running()) return;
  shard_->After(20'000'000, [this, retry = std::move(retry)] {
    if (running()) retry();
  });
}

// ---------------------------------------------------------------------------
// Shard

class Shard::TickTag final : public Tag {
 public:
  explicit TickTag(Shard* s) : s_(s) {}
  void Complete(bool) override { s_->OnTick(); }

 private:
  Shard* s_;
};

class Shard::TimerTag final : public Tag {
 public:
  TimerTag(Shard* s, std::function<void()> fn) : s_(s), fn_(std::move(fn)) {}
  grpc::Alarm alarm;
  void Complete(bool) override {
    s_->timers_.erase(this);
    s_->RemoveOutstanding(nullptr);
    std::function<void()> fn = std::move(fn_);
    delete this;
    fn();
  }

 private:
  Shard* s_;
  std::function<void()> fn_;
};

Shard::Shard(int index, const Options& options, RunState* run)
    : index_(index), options_(options), run_(run) {}

Shard::~Shard() { Join(); }

void Shard::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Shard::Join() {
  if (thread_.joinable()) thread_.join();
}

void Shard::Loop() {
  for (auto& c : clients_) c->Setup();
  ArmTick();
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) static_cast<Tag*>(tag)->Complete(ok);
  // Every tag has come back; the clients can go (streams reference the queue).
  clients_.clear();
  graveyard_.clear();
}

void Shard::ArmTick() {
  if (!tick_tag_) tick_tag_ = std::make_unique<TickTag>(this);
  tick_alarm_ = std::make_unique<grpc::Alarm>();
  tick_alarm_->Set(&cq_, std::chrono::system_clock::now() + std::chrono::milliseconds(10),
                   tick_tag_.get());
}

void Shard::OnTick() {
  const int phase = run_->phase.load();
  if (phase == kRun && !ran_) {
    ran_ = true;
    for (auto& c : clients_) c->Run();
  }
  const int64_t now = NowNs();
  if (phase == kStop && !stopped_) {
    stopped_ = true;
    stop_seen_ns_ = now;
    for (TimerTag* t : timers_) t->alarm.Cancel();  // they fire now
    for (auto& c : clients_) c->Stop();
  }
  if (stopped_) {
    if (outstanding_ == 0) {
      shut_down_ = true;
      cq_.Shutdown();
      return;
    }
    if (!cancelled_ && now - stop_seen_ns_ > static_cast<int64_t>(options_.drain_timeout_s * 1e9)) {
      cancelled_ = true;
      CountAlways("calls_cancelled_at_drain_timeout", live_contexts_.size());
      for (grpc::ClientContext* ctx : live_contexts_) ctx->TryCancel();
      for (TimerTag* t : timers_) t->alarm.Cancel();
    }
  }
  ArmTick();
}

void Shard::After(int64_t delay_ns, std::function<void()> fn) {
  auto* t = new TimerTag(this, std::move(fn));
  timers_.insert(t);
  AddOutstanding(nullptr);
  const auto when = stopped_
                        ? std::chrono::system_clock::now()
                        : std::chrono::system_clock::now() + std::chrono::nanoseconds(delay_ns);
  t->alarm.Set(&cq_, when, t);
}

void Shard::RecordOp(int64_t start_ns, int64_t end_ns) {
  if (!InWindow(start_ns, end_ns)) return;
  ++stats_.ops;
  stats_.hist[kMain].Record(static_cast<uint64_t>(end_ns - start_ns));
  if (run_->total_limit == 0) return;
  if (run_->measured_ops.fetch_add(1, std::memory_order_relaxed) + 1 == run_->total_limit) {
    // The count is reached: the window ends here, for every shard.
    int64_t cur = run_->stop_ns.load();
    while (end_ns < cur && !run_->stop_ns.compare_exchange_weak(cur, end_ns)) {
    }
  }
}

void Shard::CountError(const grpc::Status& s) {
  const int code = static_cast<int>(s.error_code());
  if (code == grpc::StatusCode::CANCELLED && run_->phase.load() == kStop) return;  // ours
  if (code < 0 || code >= static_cast<int>(stats_.errors.size())) return;
  ++stats_.errors[code];
  stats_.error_samples.emplace(code, s.error_message());
}

}  // namespace warden::bench

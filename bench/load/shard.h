// The load generator's engine: a Shard is one thread driving one gRPC
// CompletionQueue and the clients assigned to it. Clients are small state
// machines; every RPC, stream event and timer comes back through the queue as
// a Tag and runs on the shard's thread, so a client's state needs no lock.
// Shards share only the RunState (atomics) and the connections (gRPC channels
// and stubs are thread-safe).
//
// Lifecycle of a run (driven by the main thread through RunState::phase):
//   kSetup  each client's Setup() opens what it needs (leases, watches) and
//           calls Ready() once; the main thread waits for every client.
//   kRun    Run() starts the request loops; operations completing inside the
//           measured window [measure_start_ns, stop_ns] are counted.
//   kStop   Stop() cancels streams and cleans up; the shard drains its
//           outstanding tags (cancelling every call after the drain timeout)
//           and its thread ends.
// A shard notices phase changes on a 10 ms tick (an Alarm on its queue).
#ifndef WARDEN_BENCH_LOAD_SHARD_H_
#define WARDEN_BENCH_LOAD_SHARD_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "bench/load/histogram.h"
#include "bench/load/options.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "etcd/v3lockpb/v3lock.grpc.pb.h"
#include "warden/v1/warden.grpc.pb.h"

namespace warden::bench {

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Something a CompletionQueue hands back.
class Tag {
 public:
  virtual void Complete(bool ok) = 0;

 protected:
  ~Tag() = default;
};

enum Phase : int { kSetup = 0, kRun = 1, kStop = 2 };

// Shared by every shard and the main thread.
struct RunState {
  std::atomic<int> phase{kSetup};
  std::atomic<int64_t> measure_start_ns{std::numeric_limits<int64_t>::max()};
  std::atomic<int64_t> stop_ns{std::numeric_limits<int64_t>::max()};
  std::atomic<int64_t> clients_ready{0};     // Setup() done (or failed)
  std::atomic<int64_t> clients_finished{0};  // gave up for good before the end
  std::atomic<uint64_t> measured_ops{0};
  uint64_t total_limit = 0;  // 0: none

  // Set once when the server answers UNIMPLEMENTED for the workload's RPC.
  std::atomic<bool> unsupported{false};
  std::mutex mu;
  std::string unsupported_what;  // guarded by mu

  void MarkUnsupported(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    if (!unsupported.exchange(true)) unsupported_what = what;
  }
};

// The histograms a workload fills: kMain is the operation the run counts.
enum HistId : int { kMain = 0, kAux1 = 1, kAux2 = 2, kAux3 = 3, kHistCount = 4 };

struct Stats {
  std::array<Histogram, kHistCount> hist;
  uint64_t ops = 0;
  std::map<std::string, uint64_t> counters;
  std::array<uint64_t, 17> errors{};         // by grpc::StatusCode
  std::map<int, std::string> error_samples;  // the first message per code

  void Merge(const Stats& o);
};

const char* StatusCodeName(int code);

// One gRPC channel (TCP connection) and the stubs over it.
struct Conn {
  std::string endpoint;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  std::unique_ptr<v3lockpb::Lock::Stub> lock;
  std::unique_ptr<warden::v1::Locks::Stub> native;  // Warden's own lock API
};
std::unique_ptr<Conn> MakeConn(const std::string& endpoint, int index);

class Shard;

// A unary call in flight. `done` runs on the shard thread; then it is deleted.
template <class Resp>
class UnaryCall final : public Tag {
 public:
  grpc::ClientContext ctx;
  Resp resp;
  grpc::Status status;
  int64_t start_ns = 0;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader;
  std::function<void(UnaryCall&)> done;
  Shard* shard = nullptr;

  void Complete(bool ok) override;
};

template <class Stub, class Req, class Resp>
using PrepareUnaryFn = std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> (Stub::*)(
    grpc::ClientContext*, const Req&, grpc::CompletionQueue*);
template <class Stub, class Req, class Resp>
using PrepareStreamFn = std::unique_ptr<grpc::ClientAsyncReaderWriter<Req, Resp>> (Stub::*)(
    grpc::ClientContext*, grpc::CompletionQueue*);

// What Shard::Bury keeps alive until the queue is drained (see stream.h).
class StreamBase {
 public:
  virtual ~StreamBase() = default;
};

// A client that shards drive. Every method runs on the shard's thread.
class Client {
 public:
  Client(Shard* shard, int id, Conn* conn) : shard_(shard), id_(id), conn_(conn) {}
  virtual ~Client() = default;
  // Opens what the client needs, then calls Ready() exactly once (also when
  // it failed; it then calls Finished() and does nothing in Run()).
  virtual void Setup() { Ready(); }
  virtual void Run() = 0;
  virtual void Stop() {}

 protected:
  void Ready();
  void Finished();  // gives up for good (e.g. the server lacks the RPC)
  bool running() const;
  // Calls `issue` now or, with --rate, when this client's next slot comes.
  void Pace(std::function<void()> issue);
  // Counts an error and calls `retry` after a short back-off, if still running.
  void RetryAfterError(const grpc::Status& s, std::function<void()> retry);

  Shard* shard_;
  const int id_;
  Conn* conn_;
  bool finished_ = false;
  int64_t next_slot_ns_ = 0;
};

class Shard {
 public:
  Shard(int index, const Options& options, RunState* run);
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard();

  void AddClient(std::unique_ptr<Client> c) { clients_.push_back(std::move(c)); }
  size_t client_count() const { return clients_.size(); }
  void Start();
  void Join();

  const Options& options() const { return options_; }
  RunState* run() { return run_; }
  grpc::CompletionQueue* cq() { return &cq_; }
  Stats& stats() { return stats_; }
  int index() const { return index_; }

  // Starts a unary RPC; `done` runs on this thread when it ends. The returned
  // call stays valid until `done` returns (e.g. to TryCancel it). Its
  // deadline is --rpc-timeout, or `timeout_s` when positive (a wait in a
  // lock queue may outlast any per-request timeout).
  template <class Stub, class Req, class Resp>
  UnaryCall<Resp>* Call(Stub* stub, PrepareUnaryFn<Stub, Req, Resp> prepare, const Req& req,
                        std::type_identity_t<std::function<void(UnaryCall<Resp>&)>> done,
                        double timeout_s = 0);

  // Runs fn on this thread after delay_ns (or at once when the run stops).
  void After(int64_t delay_ns, std::function<void()> fn);

  // Measurement. An operation counts when it started at or after the
  // measure start and ended no later than the stop time.
  bool InWindow(int64_t start_ns, int64_t end_ns) const {
    return start_ns >= run_->measure_start_ns.load(std::memory_order_relaxed) &&
           end_ns <= run_->stop_ns.load(std::memory_order_relaxed);
  }
  // Counts one operation of kMain (and its latency) if inside the window.
  void RecordOp(int64_t start_ns, int64_t end_ns);
  // Records a latency without counting an operation.
  void RecordLatency(HistId h, int64_t start_ns, int64_t end_ns) {
    if (InWindow(start_ns, end_ns)) stats_.hist[h].Record(static_cast<uint64_t>(end_ns - start_ns));
  }
  void Count(const std::string& counter, int64_t start_ns, int64_t end_ns, uint64_t n = 1) {
    if (InWindow(start_ns, end_ns)) stats_.counters[counter] += n;
  }
  void CountAlways(const std::string& counter, uint64_t n = 1) { stats_.counters[counter] += n; }
  // Counts an error, unless it is the cancellation the end of the run causes.
  void CountError(const grpc::Status& s);

  // Bookkeeping for tags this shard waits for.
  void AddOutstanding(grpc::ClientContext* ctx) {
    ++outstanding_;
    if (ctx != nullptr) live_contexts_.insert(ctx);
  }
  void RemoveOutstanding(grpc::ClientContext* ctx) {
    --outstanding_;
    if (ctx != nullptr) live_contexts_.erase(ctx);
  }
  void Bury(std::unique_ptr<StreamBase> s) { graveyard_.push_back(std::move(s)); }

 private:
  class TickTag;
  class TimerTag;
  void Loop();
  void OnTick();
  void ArmTick();

  const int index_;
  const Options& options_;
  RunState* run_;
  grpc::CompletionQueue cq_;
  std::thread thread_;
  std::vector<std::unique_ptr<Client>> clients_;
  Stats stats_;

  // Owned by the shard thread.
  int64_t outstanding_ = 0;
  std::unordered_set<grpc::ClientContext*> live_contexts_;
  std::unordered_set<TimerTag*> timers_;
  std::vector<std::unique_ptr<StreamBase>> graveyard_;
  std::unique_ptr<grpc::Alarm> tick_alarm_;
  std::unique_ptr<TickTag> tick_tag_;
  bool ran_ = false;
  bool stopped_ = false;
  bool cancelled_ = false;
  bool shut_down_ = false;
  int64_t stop_seen_ns_ = 0;
};

template <class Resp>
void UnaryCall<Resp>::Complete(bool /*ok: always true for Finish*/) {
  shard->RemoveOutstanding(&ctx);
  done(*this);
  delete this;
}

template <class Stub, class Req, class Resp>
UnaryCall<Resp>* Shard::Call(Stub* stub, PrepareUnaryFn<Stub, Req, Resp> prepare, const Req& req,
                             std::type_identity_t<std::function<void(UnaryCall<Resp>&)>> done,
                             double timeout_s) {
  auto* call = new UnaryCall<Resp>;
  call->shard = this;
  call->done = std::move(done);
  const double t = timeout_s > 0 ? timeout_s : options_.rpc_timeout_s;
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::microseconds(static_cast<int64_t>(t * 1e6)));
  call->start_ns = NowNs();
  call->reader = (stub->*prepare)(&call->ctx, req, &cq_);
  call->reader->StartCall();
  call->reader->Finish(&call->resp, &call->status, call);
  AddOutstanding(&call->ctx);
  return call;
}

}  // namespace warden::bench

#endif  // WARDEN_BENCH_LOAD_SHARD_H_

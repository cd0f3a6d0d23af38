// Client: the connection to a Warden (or etcd) cluster through a list of
// endpoints, with fail-over and per-call deadlines.
//
// Every call goes to the current endpoint. On a transport failure
// (UNAVAILABLE, a connection that cannot be made within the dial timeout, or
// an attempt that ran out of its own time) the call moves to the next
// endpoint and is tried again until its deadline. Only idempotent requests
// are retried: reads, lease requests, and lock requests, each of which
// carries a request id chosen once per logical request so that the server
// applies it once however often it arrives.
//
// Thread safety: a Client is safe to use from many threads at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "src/client/status.h"
#include "warden/v1/warden.grpc.pb.h"

namespace warden::client {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

struct ClientOptions {
  std::vector<std::string> endpoints{"127.0.0.1:2379"};  // host:port (http:// is stripped)
  Millis dial_timeout{2000};                             // to connect to one endpoint
  Millis command_timeout{5000};  // default deadline of one call, retries included
};

// Cancels in-flight calls from another thread (a signal handler's helper
// thread, a session that was lost). Calls register their context while they
// run; Cancel() cancels those and every later one.
class CancelToken {
 public:
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }
  // Returns false (and does not register) if already cancelled.
  bool Register(grpc::ClientContext* ctx);
  void Unregister(grpc::ClientContext* ctx);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::set<grpc::ClientContext*> contexts_;  // guarded by mu_
};

// A process-wide random non-zero id for lock requests.
uint64_t NewRequestId();

// gRPC takes deadlines on the system clock; the client counts on the steady
// one. Far deadlines are capped at a year.
std::chrono::system_clock::time_point ToSystem(Clock::time_point t);
// A time that stands for "no deadline".
inline Clock::time_point Forever() { return Clock::now() + std::chrono::hours(24 * 365); }

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }
  // "a,b,c": the endpoints as given, for WARDEN_ENDPOINTS.
  std::string EndpointList() const;

  // One attempt of a call: fills the response through captures and returns
  // the gRPC status. `ctx` has its deadline set.
  using Attempt = std::function<grpc::Status(const std::shared_ptr<grpc::Channel>& channel,
                                             grpc::ClientContext* ctx)>;
  struct CallOptions {
    Clock::time_point deadline;  // of the whole call, retries included
    // The longest a single attempt may take before the next one is made
    // (with the same request id, so nothing is applied twice). 0: until the
    // deadline.
    Millis attempt_timeout{0};
    CancelToken* cancel = nullptr;   // optional
    CancelToken* cancel2 = nullptr;  // optional (e.g. the session's)
  };
  // Runs `attempt` on the current endpoint and fails over on transient
  // errors until it succeeds, fails for good, or the deadline passes. An
  // attempt that ran out of attempt_timeout before the deadline is repeated
  // on the same endpoint if it is still connected.
  grpc::Status Call(const CallOptions& options, const Attempt& attempt);
  // A call with the command timeout as its deadline.
  grpc::Status Call(const Attempt& attempt);
  CallOptions DefaultCall() const;

  // The channel of the current endpoint, after waiting up to the dial
  // timeout for a connection; null if none could be made before `deadline`.
  std::shared_ptr<grpc::Channel> Connected(Clock::time_point deadline, size_t* index);
  // Moves on from endpoint `index` (no-op if someone else already did).
  void FailOver(size_t index);

  // --- KV (minimal) ---
  Status Put(const std::string& key, const std::string& value, int64_t lease = 0);
  // nullopt: no such key.
  Result<std::optional<std::string>> Get(const std::string& key);

  // --- Leases (sessions) ---
  struct LeaseInfo {
    int64_t id = 0;
    int64_t ttl_s = 0;          // remaining (TimeToLive) or granted (Grant, KeepAliveOnce)
    int64_t granted_ttl_s = 0;  // TimeToLive only
    std::vector<std::string> keys;
  };
  Result<LeaseInfo> LeaseGrant(int64_t ttl_s, int64_t id = 0);
  Status LeaseRevoke(int64_t id);
  // kNotFound if the lease does not exist.
  Result<LeaseInfo> LeaseTimeToLive(int64_t id, bool keys = false);
  Result<LeaseInfo> LeaseKeepAliveOnce(int64_t id);

  // --- Locks that need no session ---
  Result<warden::v1::InspectResponse> Inspect(const std::string& path);
  Result<std::vector<std::string>> ListLocks(const std::string& prefix, uint32_t limit = 0);
  // A transaction applied only while `token` holds `path`. kFailedPrecondition
  // (with the server's "lock guard" message) when it does not.
  Result<etcdserverpb::TxnResponse> GuardedTxn(const std::string& path, uint64_t token,
                                               const etcdserverpb::TxnRequest& txn);
  // A put applied only while `token` holds `path`.
  Status GuardedPut(const std::string& path, uint64_t token, const std::string& key,
                    const std::string& value);

 private:
  ClientOptions options_;
  std::mutex mu_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;  // guarded by mu_; lazily made
  std::atomic<size_t> current_{0};
};

}  // namespace warden::client

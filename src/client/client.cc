#include "src/client/client.h"

#include <algorithm>
#include <random>
#include <thread>

namespace warden::client {

namespace {

std::string StripUrl(std::string e) {
  for (const char* scheme : {"http://", "https://"}) {
    if (e.rfind(scheme, 0) == 0) e = e.substr(std::string(scheme).size());
  }
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  // A proxy from the environment would route loopback traffic away.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  // Reconnect to a restarted member within a second, not gRPC's default two
  // minutes of backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

// ---------------------------------------------------------------------------
// Status

const char* CodeName(Code c) {
  switch (c) {
    case Code::kOk: return "OK";
    case Code::kWouldBlock: return "WOULD_BLOCK";
    case Code::kDeadlock: return "DEADLOCK";
    case Code::kTimeout: return "TIMEOUT";
    case Code::kConditionFailed: return "CONDITION_FAILED";
    case Code::kSessionEnded: return "SESSION_ENDED";
    case Code::kCancelled: return "CANCELLED";
    case Code::kNotHeld: return "NOT_HELD";
    case Code::kBadToken: return "BAD_TOKEN";
    case Code::kInvalid: return "INVALID";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Code::kError: return "ERROR";
  }
  return "ERROR";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return message_ + " (" + CodeName(code_) + ")";
}

Status FromGrpc(const grpc::Status& s) {
  const std::string& m = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::UNAVAILABLE: return {Code::kUnavailable, m};
    case grpc::StatusCode::DEADLINE_EXCEEDED: return {Code::kTimeout, m};
    case grpc::StatusCode::CANCELLED: return {Code::kCancelled, m};
    case grpc::StatusCode::NOT_FOUND: return {Code::kNotFound, m};
    case grpc::StatusCode::INVALID_ARGUMENT: return {Code::kInvalid, m};
    case grpc::StatusCode::FAILED_PRECONDITION: return {Code::kFailedPrecondition, m};
    default: return {Code::kError, m};
  }
}

// ---------------------------------------------------------------------------
// CancelToken

void CancelToken::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : contexts_) ctx->TryCancel();
}

bool CancelToken::Register(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return false;
  contexts_.insert(ctx);
  return true;
}

void CancelToken::Unregister(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  contexts_.erase(ctx);
}

std::chrono::system_clock::time_point ToSystem(Clock::time_point t) {
  const Clock::time_point now = Clock::now();
  const auto left = std::min<Clock::duration>(std::max<Clock::duration>(t - now, {}),
                                              std::chrono::hours(24 * 365));
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(left);
}

uint64_t NewRequestId() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}() ^
                             static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  std::lock_guard<std::mutex> lock(mu);
  uint64_t id = 0;
  while (id == 0) id = rng();
  return id;
}

// ---------------------------------------------------------------------------
// Client

Client::Client(ClientOptions options) : options_(std::move(options)) {
  for (std::string& e : options_.endpoints) e = StripUrl(e);
  options_.endpoints.erase(
      std::remove(options_.endpoints.begin(), options_.endpoints.end(), std::string()),
      options_.endpoints.end());
  if (options_.endpoints.empty()) options_.endpoints.push_back("127.0.0.1:2379");
  channels_.resize(options_.endpoints.size());
}

Client::~Client() = default;

std::string Client::EndpointList() const {
  std::string s;
  for (const std::string& e : options_.endpoints) s += (s.empty() ? "" : ",") + e;
  return s;
}

std::shared_ptr<grpc::Channel> Client::Connected(Clock::time_point deadline, size_t* index) {
  const size_t i = current_.load() % channels_.size();
  *index = i;
  std::shared_ptr<grpc::Channel> ch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!channels_[i]) channels_[i] = MakeChannel(options_.endpoints[i]);
    ch = channels_[i];
  }
  if (ch->GetState(true) == GRPC_CHANNEL_READY) return ch;
  const Clock::time_point dial = std::min(deadline, Clock::now() + options_.dial_timeout);
  if (ch->WaitForConnected(ToSystem(dial))) return ch;
  return nullptr;
}

void Client::FailOver(size_t index) {
  size_t expected = index;
  current_.compare_exchange_strong(expected, (index + 1) % channels_.size());
}

Client::CallOptions Client::DefaultCall() const {
  CallOptions o;
  o.deadline = Clock::now() + options_.command_timeout;
  return o;
}

grpc::Status Client::Call(const Attempt& attempt) { return Call(DefaultCall(), attempt); }

grpc::Status Client::Call(const CallOptions& o, const Attempt& attempt) {
  const size_t n = channels_.size();
  grpc::Status last(grpc::StatusCode::DEADLINE_EXCEEDED, "the call's deadline passed");
  Millis backoff{50};
  size_t failures = 0;
  auto cancelled = [&] {
    return (o.cancel != nullptr && o.cancel->cancelled()) ||
           (o.cancel2 != nullptr && o.cancel2->cancelled());
  };
  // Bounded: every pass either returns or waits (dial, attempt or backoff).
  for (int pass = 0; pass < 1000000; ++pass) {
    if (cancelled()) return {grpc::StatusCode::CANCELLED, "cancelled"};
    const Clock::time_point now = Clock::now();
    if (now >= o.deadline) return last;
    size_t index = 0;
    std::shared_ptr<grpc::Channel> channel = Connected(o.deadline, &index);
    if (!channel) {
      last = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "cannot connect to " + options_.endpoints[index]);
      FailOver(index);
    } else {
      grpc::ClientContext ctx;
      Clock::time_point attempt_deadline = o.deadline;
      if (o.attempt_timeout.count() > 0) {
        attempt_deadline = std::min(o.deadline, Clock::now() + o.attempt_timeout);
      }
      ctx.set_deadline(ToSystem(attempt_deadline));
      bool registered1 = false, registered2 = false;
      if (o.cancel != nullptr && !(registered1 = o.cancel->Register(&ctx))) {
        return {grpc::StatusCode::CANCELLED, "cancelled"};
      }
      if (o.cancel2 != nullptr && !(registered2 = o.cancel2->Register(&ctx))) {
        if (registered1) o.cancel->Unregister(&ctx);
        return {grpc::StatusCode::CANCELLED, "cancelled"};
      }
      grpc::Status s = attempt(channel, &ctx);
      if (registered1) o.cancel->Unregister(&ctx);
      if (registered2) o.cancel2->Unregister(&ctx);
      if (s.ok()) return s;
      if (cancelled()) return {grpc::StatusCode::CANCELLED, "cancelled"};
      if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        if (Clock::now() >= o.deadline) return s;
        // Only this attempt's window ran out: ask again (the request id makes
        // it the same request), on the next endpoint in case this one hangs.
        last = s;
        FailOver(index);
        continue;
      }
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return s;
      last = s;
      FailOver(index);
    }
    // After a failure on every endpoint, back off before the next round.
    if (++failures % n == 0) {
      const Clock::time_point wake = std::min(o.deadline, Clock::now() + backoff);
      std::this_thread::sleep_until(wake);
      backoff = std::min(backoff * 2, Millis(1000));
    }
  }
  return last;
}

// ---------------------------------------------------------------------------
// KV

Status Client::Put(const std::string& key, const std::string& value, int64_t lease) {
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  etcdserverpb::PutResponse resp;
  return FromGrpc(Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::KV::NewStub(ch)->Put(ctx, req, &resp);
  }));
}

Result<std::optional<std::string>> Client::Get(const std::string& key) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  etcdserverpb::RangeResponse resp;
  Status s = FromGrpc(Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::KV::NewStub(ch)->Range(ctx, req, &resp);
  }));
  if (!s.ok()) return s;
  if (resp.kvs_size() == 0) return std::optional<std::string>();
  return std::optional<std::string>(resp.kvs(0).value());
}

// ---------------------------------------------------------------------------
// Leases

Result<Client::LeaseInfo> Client::LeaseGrant(int64_t ttl_s, int64_t id) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl_s);
  req.set_id(id);
  etcdserverpb::LeaseGrantResponse resp;
  // A retry of a grant without an id may grant a second lease; the first one
  // then expires unused after its TTL.
  Status s = FromGrpc(Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::Lease::NewStub(ch)->LeaseGrant(ctx, req, &resp);
  }));
  if (!s.ok()) return s;
  if (!resp.error().empty()) return Status(Code::kError, resp.error());
  LeaseInfo info;
  info.id = resp.id();
  info.ttl_s = resp.ttl();
  info.granted_ttl_s = resp.ttl();
  return info;
}

Status Client::LeaseRevoke(int64_t id) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(id);
  etcdserverpb::LeaseRevokeResponse resp;
  return FromGrpc(Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::Lease::NewStub(ch)->LeaseRevoke(ctx, req, &resp);
  }));
}

Result<Client::LeaseInfo> Client::LeaseTimeToLive(int64_t id, bool keys) {
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(keys);
  etcdserverpb::LeaseTimeToLiveResponse resp;
  Status s = FromGrpc(Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return etcdserverpb::Lease::NewStub(ch)->LeaseTimeToLive(ctx, req, &resp);
  }));
  if (!s.ok()) return s;
  if (resp.ttl() < 0) return Status(Code::kNotFound, "lease " + std::to_string(id) + " not found");
  LeaseInfo info;
  info.id = id;
  info.ttl_s = resp.ttl();
  info.granted_ttl_s = resp.grantedttl();
  info.keys.assign(resp.keys().begin(), resp.keys().end());
  return info;
}

Result<Client::LeaseInfo> Client::LeaseKeepAliveOnce(int64_t id) {
  etcdserverpb::LeaseKeepAliveResponse resp;
  bool answered = false;
  Status s = FromGrpc(Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    auto stream = etcdserverpb::Lease::NewStub(ch)->LeaseKeepAlive(ctx);
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(id);
    stream->Write(req);
    stream->WritesDone();
    answered = stream->Read(&resp);
    grpc::Status st = stream->Finish();
    if (st.ok() && !answered) {
      // No answer (the member knows no leader): try again elsewhere.
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no keep-alive answer");
    }
    return st;
  }));
  if (!s.ok()) return s;
  if (resp.ttl() <= 0) {
    return Status(Code::kNotFound, "lease " + std::to_string(id) + " not found");
  }
  LeaseInfo info;
  info.id = id;
  info.ttl_s = resp.ttl();
  return info;
}

// ---------------------------------------------------------------------------
// Locks without a session

Result<warden::v1::InspectResponse> Client::Inspect(const std::string& path) {
  warden::v1::InspectRequest req;
  req.set_path(path);
  warden::v1::InspectResponse resp;
  Status s = FromGrpc(Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return warden::v1::Locks::NewStub(ch)->Inspect(ctx, req, &resp);
  }));
  if (!s.ok()) return s;
  return resp;
}

Result<std::vector<std::string>> Client::ListLocks(const std::string& prefix, uint32_t limit) {
  warden::v1::ListLocksRequest req;
  req.set_prefix(prefix);
  req.set_limit(limit);
  warden::v1::ListLocksResponse resp;
  Status s = FromGrpc(Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return warden::v1::Locks::NewStub(ch)->List(ctx, req, &resp);
  }));
  if (!s.ok()) return s;
  return std::vector<std::string>(resp.paths().begin(), resp.paths().end());
}

Result<etcdserverpb::TxnResponse> Client::GuardedTxn(const std::string& path, uint64_t token,
                                                     const etcdserverpb::TxnRequest& txn) {
  warden::v1::GuardedTxnRequest req;
  req.set_path(path);
  req.set_token(token);
  *req.mutable_txn() = txn;
  etcdserverpb::TxnResponse resp;
  // Retried on UNAVAILABLE like every call: a member may say "leader changed"
  // after the transaction applied, so keep guarded transactions idempotent
  // (puts of values, not increments).
  grpc::Status g = Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return warden::v1::Locks::NewStub(ch)->GuardedTxn(ctx, req, &resp);
  });
  if (!g.ok()) return FromGrpc(g);
  return resp;
}

Status Client::GuardedPut(const std::string& path, uint64_t token, const std::string& key,
                          const std::string& value) {
  etcdserverpb::TxnRequest txn;
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  Result<etcdserverpb::TxnResponse> r = GuardedTxn(path, token, txn);
  return r.status();
}

}  // namespace warden::client

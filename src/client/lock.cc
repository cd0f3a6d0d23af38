#include "src/client/lock.h"

namespace warden::client {

namespace {

// A blocking acquire is asked again (same request id: the server attaches
// the new call to the queued request) after this long, so a member that
// stopped answering is noticed and left.
constexpr Millis kAttachWindow{10000};

using Stub = warden::v1::Locks::Stub;

grpc::Status Acquire(Client* client, const Client::CallOptions& co,
                     const warden::v1::AcquireRequest& req, warden::v1::LockResponse* resp) {
  return client->Call(co, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return warden::v1::Locks::NewStub(ch)->Acquire(ctx, req, resp);
  });
}

}  // namespace

Status OutcomeStatus(warden::v1::Outcome outcome, const std::string& path,
                     const std::string& detail) {
  const std::string lock = "lock " + path;
  const std::string more = detail.empty() ? "" : ": " + detail;
  switch (outcome) {
    case warden::v1::GRANTED: return Status::Ok();
    case warden::v1::WOULD_BLOCK: return {Code::kWouldBlock, lock + " is held"};
    case warden::v1::DEADLOCK: return {Code::kDeadlock, lock + ": deadlock" + more};
    case warden::v1::TIMEOUT: return {Code::kTimeout, lock + ": timed out waiting"};
    case warden::v1::CONDITION_FAILED:
      return {Code::kConditionFailed, lock + ": its conditions do not hold" + more};
    case warden::v1::SESSION_ENDED: return {Code::kSessionEnded, lock + ": the session ended"};
    case warden::v1::CANCELLED: return {Code::kCancelled, lock + ": the wait was cancelled"};
    case warden::v1::NOT_HELD: return {Code::kNotHeld, lock + " is not held by this owner"};
    case warden::v1::BAD_TOKEN: return {Code::kBadToken, lock + ": the token is not the hold's"};
    case warden::v1::NOT_WAITING: return {Code::kNotHeld, lock + ": not waiting"};
    case warden::v1::INVALID: return {Code::kInvalid, lock + ": invalid request" + more};
    default: return {Code::kError, lock + ": unexpected answer" + more};
  }
}

// ---------------------------------------------------------------------------
// Acquire

Result<LockHandle> Session::TryLock(const std::string& path, const LockOptions& options) {
  LockOptions o = options;
  o.wait = Millis(0);
  return Lock(path, o);
}

Result<LockHandle> Session::Lock(const std::string& path, const LockOptions& o) {
  SessionState& st = *state_;
  Client* client = st.client;
  if (!alive()) return Status(Code::kSessionEnded, "lock " + path + ": the session is not alive");
  warden::v1::AcquireRequest req;
  req.set_path(path);
  req.mutable_owner()->set_session(st.lease_id);
  req.mutable_owner()->set_id(o.owner_id ? *o.owner_id : st.owner_id);
  req.set_mode(o.shared ? warden::v1::SHARED : warden::v1::EXCLUSIVE);
  req.set_priority(o.priority);
  const int64_t wait_ms = o.wait ? std::max<int64_t>(0, o.wait->count()) : -1;
  req.set_wait_ms(wait_ms);
  req.set_ttl_ms(o.ttl.count());
  for (const auto& c : o.conditions) *req.add_conditions() = c;
  req.set_value(o.value);
  req.set_request_id(NewRequestId());

  const Clock::time_point first_send = Clock::now();
  Client::CallOptions co;
  const Millis slack = client->options().command_timeout;
  co.deadline = wait_ms < 0 ? Forever() : first_send + Millis(wait_ms) + slack;
  co.attempt_timeout = wait_ms == 0 ? Millis(0) : kAttachWindow;
  co.cancel = o.cancel;
  co.cancel2 = &st.lost_token;
  warden::v1::LockResponse resp;
  grpc::Status g = Acquire(client, co, req, &resp);

  if (!g.ok()) {
    Status why = FromGrpc(g);
    if (g.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return Status(Code::kInvalid, "lock " + path + ": " + g.error_message());
    }
    const bool stopped_waiting = g.error_code() == grpc::StatusCode::CANCELLED ||
                                 g.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (!stopped_waiting && g.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return Status(why.code(), "lock " + path + ": " + why.message());
    }
    // We stop waiting while the server may still have the request queued:
    // cancel it, and release it if it was granted meanwhile. (When no member
    // could be reached at all, the session's end cleans up instead.)
    if (stopped_waiting) {
      warden::v1::CancelRequest cancel;
      cancel.set_path(path);
      *cancel.mutable_owner() = req.owner();
      cancel.set_request_id(NewRequestId());
      warden::v1::LockResponse cresp;
      grpc::Status cg =
          client->Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
            return warden::v1::Locks::NewStub(ch)->Cancel(ctx, cancel, &cresp);
          });
      if (cg.ok() && cresp.outcome() == warden::v1::NOT_WAITING) {
        // Resolved meanwhile: the same request id gets its final answer.
        Client::CallOptions again;
        again.deadline = Clock::now() + client->options().command_timeout;
        warden::v1::LockResponse aresp;
        if (Acquire(client, again, req, &aresp).ok() && aresp.outcome() == warden::v1::GRANTED) {
          warden::v1::ReleaseRequest rel;
          rel.set_path(path);
          *rel.mutable_owner() = req.owner();
          rel.set_token(aresp.token());
          rel.set_request_id(NewRequestId());
          warden::v1::LockResponse rresp;
          (void)client->Call(
              [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
                return warden::v1::Locks::NewStub(ch)->Release(ctx, rel, &rresp);
              });
        }
      }
    }
    if (!alive()) {
      return Status(Code::kSessionEnded, "lock " + path + ": the session was lost while waiting");
    }
    if (g.error_code() == grpc::StatusCode::CANCELLED) {
      return Status(Code::kCancelled, "lock " + path + ": the wait was cancelled");
    }
    if (g.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && wait_ms > 0) {
      return Status(Code::kTimeout, "lock " + path + ": timed out waiting");
    }
    return Status(why.code(), "lock " + path + ": no cluster member could answer: " +
                                  why.message() + " (endpoints " + client->EndpointList() + ")");
  }
  if (resp.outcome() != warden::v1::GRANTED) {
    return OutcomeStatus(resp.outcome(), path, resp.detail());
  }
  LockHandle h;
  h.state_ = state_;
  h.path_ = path;
  h.owner_ = req.owner();
  h.token_ = resp.token();
  h.hold_count_ = resp.hold_count();
  h.revision_ = resp.header().revision();
  if (o.ttl.count() > 0) {
    // The hold's TTL runs from its grant, which was after our first send.
    // After a long wait that bound says little, so renew for a fresh one.
    h.hold_deadline_ = first_send + o.ttl;
    if (Clock::now() - first_send > o.ttl / 2 && resp.hold_count() == 1) {
      if (Status s = h.Renew(o.ttl); !s.ok()) return s;
    }
  }
  return h;
}

// ---------------------------------------------------------------------------
// LockHandle

bool LockHandle::valid() const {
  if (!state_ || released_) return false;
  if (!state_->Alive()) return false;
  return !hold_deadline_ || Clock::now() < *hold_deadline_;
}

Status LockHandle::Release() {
  if (!state_) return Status(Code::kNotHeld, "release of an empty lock handle");
  if (released_) return Status(Code::kNotHeld, "lock " + path_ + " was already released");
  warden::v1::ReleaseRequest req;
  req.set_path(path_);
  *req.mutable_owner() = owner_;
  req.set_token(token_);
  req.set_request_id(NewRequestId());
  warden::v1::LockResponse resp;
  Client* client = state_->client;
  grpc::Status g =
      client->Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
        return warden::v1::Locks::NewStub(ch)->Release(ctx, req, &resp);
      });
  if (!g.ok()) {
    Status s = FromGrpc(g);
    return Status(s.code(), "release of lock " + path_ + ": " + s.message());
  }
  // Whatever the answer, this handle holds nothing any more.
  released_ = true;
  if (resp.outcome() == warden::v1::GRANTED) {
    hold_count_ = resp.hold_count();
    return Status::Ok();
  }
  return OutcomeStatus(resp.outcome(), path_, resp.detail());
}

Status LockHandle::Renew(Millis ttl) {
  if (!state_ || released_) return Status(Code::kNotHeld, "renew of a released lock handle");
  warden::v1::RenewRequest req;
  req.set_path(path_);
  *req.mutable_owner() = owner_;
  req.set_token(token_);
  req.set_ttl_ms(ttl.count());
  req.set_request_id(NewRequestId());
  warden::v1::LockResponse resp;
  const Clock::time_point sent = Clock::now();
  grpc::Status g =
      state_->client->Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
        return warden::v1::Locks::NewStub(ch)->Renew(ctx, req, &resp);
      });
  if (!g.ok()) {
    Status s = FromGrpc(g);
    return Status(s.code(), "renew of lock " + path_ + ": " + s.message());
  }
  if (resp.outcome() != warden::v1::GRANTED) {
    return OutcomeStatus(resp.outcome(), path_, resp.detail());
  }
  if (ttl.count() > 0) {
    hold_deadline_ = sent + ttl;
  } else {
    hold_deadline_.reset();
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// LockWatcher

namespace {

warden::v1::WatchLocksRequest MakeWatchRequest(std::string path, bool prefix) {
  warden::v1::WatchLocksRequest r;
  r.set_path(std::move(path));
  r.set_prefix(prefix);
  return r;
}

}  // namespace

LockWatcher::LockWatcher(Client* client, std::string path, bool prefix, Callback fn)
    : req_(MakeWatchRequest(std::move(path), prefix)),
      fn_(std::move(fn)),
      follower_(client, [this](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx,
                               const std::function<bool()>& alive) { Read(ch, ctx, alive); }) {}

LockWatcher::~LockWatcher() { Stop(); }

void LockWatcher::Stop() {
  follower_.Stop();
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

bool LockWatcher::WaitReady(Millis timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return ready_ || stopped_; }) && ready_;
}

void LockWatcher::Read(const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx,
                       const std::function<bool()>& alive) {
  auto reader = warden::v1::Locks::NewStub(ch)->Watch(ctx, req_);
  warden::v1::WatchLocksResponse resp;
  while (reader->Read(&resp)) {
    if (!alive()) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ready_) {
        ready_ = true;
        cv_.notify_all();
      }
    }
    for (const warden::v1::LockEvent& e : resp.events()) fn_(e);
  }
  (void)reader->Finish();
}

}  // namespace warden::client

// Locks of the warden.v1 Locks service (docs/locks.md), held by a Session.
//
//   client::Session& s = ...;
//   client::LockOptions o;
//   o.wait = client::Millis(5000);
//   client::Result<client::LockHandle> h = s.Lock("/jobs/nightly", o);
//   if (!h.ok()) { ... h.status().code() == client::Code::kTimeout ... }
//   ... h->token() fences writes (Client::GuardedPut) ...
//   (void)h->Release();
//
// A request gets one request id for its whole life, so the client retries it
// on another endpoint after a failure and the server applies it once. If the
// client stops waiting (its own deadline, a CancelToken, the session lost)
// while the server may still hold the request queued, it sends Cancel for the
// same owner and path; if the lock was granted in the meantime it releases
// it, so no grant is left dangling.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/client/client.h"
#include "src/client/session.h"
#include "src/client/stream_follower.h"

namespace warden::client {

struct LockOptions {
  bool shared = false;
  int32_t priority = 0;
  // How long to wait: nullopt = no deadline, 0 = try-lock.
  std::optional<Millis> wait;
  Millis ttl{0};  // hold TTL; 0 = until released or the session ends
  std::vector<etcdserverpb::Compare> conditions;
  std::string value;
  std::optional<std::string> owner_id;  // default: the session's owner id
  CancelToken* cancel = nullptr;        // optional: stops the wait from another thread
};

// One granted acquire. A re-acquire by the same owner gets its own handle
// with the same token and the new hold count; each handle releases once.
// A handle does not release on destruction (ScopedLock does): the hold then
// ends with its TTL or its session.
//
// Thread safety: a handle is used by one thread at a time.
class LockHandle {
 public:
  LockHandle() = default;
  LockHandle(LockHandle&&) = default;
  LockHandle& operator=(LockHandle&&) = default;

  const std::string& path() const { return path_; }
  const warden::v1::Owner& owner() const { return owner_; }
  uint64_t token() const { return token_; }
  uint32_t hold_count() const { return hold_count_; }
  int64_t revision() const { return revision_; }
  // When the hold's TTL may have run out, on the local clock (none without a TTL).
  std::optional<Clock::time_point> hold_deadline() const { return hold_deadline_; }

  // Held: granted, not released, the session alive and the hold TTL (if
  // any) not run out on the local clock. False means the cluster may have
  // released the lock; stop acting on it.
  bool valid() const;
  // Not released by us, but no longer known to be held.
  bool possibly_lost() const { return !released_ && state_ && !valid(); }

  // Ends this acquire (the lock is released when the hold count reaches 0).
  Status Release();
  // Sets the hold TTL again from now (0 removes it).
  Status Renew(Millis ttl);

 private:
  friend class Session;
  std::shared_ptr<SessionState> state_;
  std::string path_;
  warden::v1::Owner owner_;
  uint64_t token_ = 0;
  uint32_t hold_count_ = 0;
  int64_t revision_ = 0;
  bool released_ = false;
  std::optional<Clock::time_point> hold_deadline_;  // local, counted from a send time
};

// Releases on destruction.
class ScopedLock {
 public:
  explicit ScopedLock(LockHandle h) : h_(std::move(h)) {}
  ~ScopedLock() {
    if (h_.valid()) (void)h_.Release();
  }
  ScopedLock(const ScopedLock&) = delete;
  ScopedLock& operator=(const ScopedLock&) = delete;
  LockHandle& handle() { return h_; }
  uint64_t token() const { return h_.token(); }
  bool valid() const { return h_.valid(); }

 private:
  LockHandle h_;
};

// The Status of a lock answer that is not a grant: the outcome as the code,
// with a message naming the lock ("lock /x is held").
Status OutcomeStatus(warden::v1::Outcome outcome, const std::string& path,
                     const std::string& detail);

// Streams lock events of `path` (or every path under it, with prefix) to
// `fn`, from a thread of its own, reconnecting to another endpoint when the
// stream breaks (events in the gap are missed). Stop() or the destructor
// ends it; `fn` is never called after Stop() returns.
class LockWatcher {
 public:
  using Callback = std::function<void(const warden::v1::LockEvent&)>;
  LockWatcher(Client* client, std::string path, bool prefix, Callback fn);
  ~LockWatcher();
  void Stop();
  // True once the first stream is in place (the server's empty first answer).
  bool WaitReady(Millis timeout);

 private:
  void Read(const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx,
            const std::function<bool()>& alive);
  warden::v1::WatchLocksRequest req_;
  Callback fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;     // guarded by mu_
  bool ready_ = false;       // guarded by mu_
  StreamFollower follower_;  // last: its thread uses the members above
};

}  // namespace warden::client

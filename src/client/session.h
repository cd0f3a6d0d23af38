// Session: an etcd lease kept alive by a background thread, and the owner
// identity under which locks and elections are held.
//
// The keep-alive thread sends a LeaseKeepAlive on one stream every
// heartbeat (TTL/3, at most `max_heartbeat`), answered or not, and moves to
// the next endpoint, with the same lease id, when the stream breaks or the
// oldest unanswered keep-alive is two heartbeats old (at most half the TTL). It counts the lease
// down on its own monotonic clock from the time each keep-alive was SENT (LeaseClock). When it
// cannot confirm the lease before that local deadline, or the cluster says the lease is gone, it
// marks the session lost: alive() turns false, every in-flight lock wait is
// cancelled, every LockHandle from the session reports possibly_lost(), and
// the loss callbacks run (once, on the keep-alive thread).
//
// An attached session (Attach) uses a lease that another process keeps alive
// (a nested wardenctl): it never sends keep-alives and never revokes.
//
// Thread safety: all methods are safe to call from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/client/client.h"
#include "src/client/lease_clock.h"

namespace warden::client {

class LockHandle;
struct LockOptions;

struct SessionOptions {
  int64_t ttl_s = 10;             // the lease TTL asked for (the server may raise it)
  Millis max_heartbeat{1000};     // keep-alive period cap
  std::string owner_id;           // the default owner id of its locks ("" allowed)
  std::function<void()> on_lost;  // optional; runs once on the keep-alive thread
  bool revoke_on_close = true;    // Close() revokes the lease
};

// What a session shares with its lock handles (which may outlive it).
struct SessionState {
  Client* client = nullptr;
  int64_t lease_id = 0;
  std::string owner_id;
  bool owned = true;  // kept alive by this process
  bool revoke_on_close = true;
  CancelToken lost_token;  // cancelled when the session is lost or closed

  std::mutex mu;
  std::condition_variable cv;
  LeaseClock clock{0, 0};                      // guarded by mu (owned sessions only)
  bool closed = false;                         // guarded by mu
  bool lost = false;                           // guarded by mu
  std::string lost_reason;                     // guarded by mu
  std::vector<std::function<void()>> on_lost;  // guarded by mu

  // Alive: not closed, and (owned) not lost and before the local deadline.
  bool Alive();
  // Marks the session lost (once), cancels waits and runs the callbacks.
  void Lose(const std::string& reason);
};

class Session {
 public:
  // Grants a lease (LeaseGrant) and starts keeping it alive.
  static Result<std::unique_ptr<Session>> Create(Client* client, SessionOptions options);
  // Keeps an existing lease alive (its TTL learnt from a first keep-alive).
  static Result<std::unique_ptr<Session>> Resume(Client* client, int64_t lease_id,
                                                 SessionOptions options);
  // A session over a lease that someone else keeps alive.
  static std::unique_ptr<Session> Attach(Client* client, int64_t lease_id, std::string owner_id);

  // Close() if not closed yet.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int64_t id() const { return state_->lease_id; }
  const std::string& owner_id() const { return state_->owner_id; }
  Client* client() const { return state_->client; }
  bool owned() const { return state_->owned; }
  bool alive() const { return state_->Alive(); }
  // Why the session was lost ("" while it is not).
  std::string lost_reason() const;
  // The local count-down: milliseconds until the lease may have expired
  // (owned sessions; -1 for an attached one).
  int64_t remaining_ms() const;
  // Adds a loss callback; runs at once (on this thread) if already lost.
  void OnLost(std::function<void()> fn);

  // Stops the keep-alive thread and revokes the lease (owned sessions), so
  // its locks are released and its waits dropped at once.
  Status Close();

  // Locks (lock.cc). Lock waits as long as options.wait allows; TryLock never
  // waits (wait = 0).
  Result<LockHandle> Lock(const std::string& path, const LockOptions& options);
  Result<LockHandle> TryLock(const std::string& path, const LockOptions& options);

  const std::shared_ptr<SessionState>& state() const { return state_; }

 private:
  Session(std::shared_ptr<SessionState> state, Millis heartbeat);
  static std::unique_ptr<Session> Start(Client* client, int64_t lease_id, int64_t sent_ms,
                                        int64_t ttl_s, SessionOptions options);
  void KeepAliveLoop();

  std::shared_ptr<SessionState> state_;
  Millis heartbeat_;
  std::thread thread_;
  bool stop_ = false;  // guarded by state_->mu
};

}  // namespace warden::client

// StreamFollower: keeps one server stream open against the cluster from a
// thread of its own, moving to the next endpoint with backoff (100 ms up to
// 1 s) whenever the stream breaks, until stopped. LockWatcher and
// ElectionObserver read their streams through it.
//
// Thread safety: Stop() from any thread; the session runs on the
// follower's thread and is never running after Stop() returns.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "src/client/client.h"

namespace warden::client {

class StreamFollower {
 public:
  // Opens the stream on `channel` with `context` and reads it until it
  // ends, calling `alive()` on each message (which resets the backoff) and
  // leaving when it returns false (stopped).
  using Session =
      std::function<void(const std::shared_ptr<grpc::Channel>& channel,
                         grpc::ClientContext* context, const std::function<bool()>& alive)>;

  StreamFollower(Client* client, Session session);
  ~StreamFollower() { Stop(); }
  void Stop();

 private:
  void Run();

  Client* client_;
  Session session_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                       // guarded by mu_
  grpc::ClientContext* current_ = nullptr;  // guarded by mu_
  Millis backoff_{100};                     // the thread only
  std::thread thread_;
};

}  // namespace warden::client

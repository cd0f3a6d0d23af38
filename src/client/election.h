// Leader election over etcd's v3election API (Campaign, Leader, Observe,
// Resign, Proclaim), which Warden serves from its lock queue. Leadership is
// bound to the session's lease: when the session ends, so does the
// leadership, and is_leader() turns false as soon as the session is lost on
// the client's clock.
//
// Thread safety: one thread uses an Election at a time; Observer runs its
// callback on a thread of its own.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "etcd/v3electionpb/v3election.grpc.pb.h"
#include "src/client/session.h"

namespace warden::client {

class ElectionObserver;

class Election {
 public:
  Election(Session* session, std::string name);

  // Blocks until this session leads the election (or `cancel`, or the
  // session is lost). Survives fail-over: a campaign asked again after a
  // failure waits for its own key to lead.
  Status Campaign(const std::string& value, CancelToken* cancel = nullptr);
  // The leader only: changes the announced value.
  Status Proclaim(const std::string& value);
  // Gives up leadership (or the candidacy).
  Status Resign();
  // Leading: campaigned, not resigned, and the session alive.
  bool is_leader() const;
  const v3electionpb::LeaderKey& key() const { return key_; }

  // The current leader's key-value of election `name`; kNotFound if none.
  static Result<mvccpb::KeyValue> Leader(Client* client, const std::string& name);
  // Calls fn with the leader now and whenever it (or its value) changes.
  static std::unique_ptr<ElectionObserver> Observe(Client* client, const std::string& name,
                                                   std::function<void(const mvccpb::KeyValue&)> fn);

 private:
  Session* session_;
  std::string name_;
  v3electionpb::LeaderKey key_;
  bool leading_ = false;
};

// Streams an election's leader changes to a callback until stopped,
// reconnecting to another endpoint when the stream breaks.
class ElectionObserver {
 public:
  ElectionObserver(Client* client, std::string name,
                   std::function<void(const mvccpb::KeyValue&)> fn);
  ~ElectionObserver();
  void Stop();

 private:
  void Run();
  Client* client_;
  std::string name_;
  std::function<void(const mvccpb::KeyValue&)> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                       // guarded by mu_
  grpc::ClientContext* current_ = nullptr;  // guarded by mu_
  std::string last_key_;                    // Run() only
  int64_t last_mod_ = 0;                    // Run() only
  std::thread thread_;
};

}  // namespace warden::client

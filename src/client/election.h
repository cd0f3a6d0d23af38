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
#include "src/client/stream_follower.h"

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
  void Stop() { follower_.Stop(); }

 private:
  void Read(const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx,
            const std::function<bool()>& alive);
  std::string name_;
  std::function<void(const mvccpb::KeyValue&)> fn_;
  std::string last_key_;     // the follower's thread only
  int64_t last_mod_ = 0;     // the follower's thread only
  StreamFollower follower_;  // last: its thread uses the members above
};

}  // namespace warden::client

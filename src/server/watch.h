// The etcd Watch service.
//
// WatchHub lives on the node loop: every watcher is registered there, its
// history (start_revision) is read there, and applied events are fanned out
// there, so no event can fall between a watcher's catch-up and its live
// stream. Events of one revision always travel in one response.
//
// WatchStream is one client stream (a gRPC bidi reactor): it may carry many
// watchers, queues responses and keeps one write in flight. A stream whose
// queue grows past a bound is too slow: its watchers stop receiving live
// events and catch up from history when the queue drains; if the history they
// need was compacted meanwhile they are cancelled with the compacted revision,
// never silently skipped ahead.
//
// Thread safety: WatchHub only on the node loop; WatchStream's queue is
// locked, and its gRPC callbacks may run on any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "src/server/etcd_services.h"
#include "src/state/mvcc.h"

namespace warden::server {

class WatchStream;

class WatchHub {
 public:
  struct Watcher {
    int64_t id = 0;
    WatchStream* stream = nullptr;
    state::KeyRange range;
    bool prev_kv = false;
    bool no_put = false;
    bool no_delete = false;
    // The next revision this watcher needs; live events below it are old.
    int64_t next_revision = 0;
    bool lagging = false;  // its stream is too slow: catch up from history
    bool progress_notify = false;
    // Split a revision whose response exceeds the request size limit into
    // several responses, all but the last marked `fragment` (etcd's rule).
    bool fragment = false;
  };

  explicit WatchHub(ServerContext* ctx) : ctx_(ctx) {}

  // All on the node loop.
  void Create(node::Node& n, WatchStream* stream, const etcdserverpb::WatchCreateRequest& req,
              int64_t id);
  void Cancel(node::Node& n, WatchStream* stream, int64_t id);
  void RemoveStream(WatchStream* stream);
  // Ends every watch stream with `status` (a member that stopped applying:
  // its clients must fail over instead of waiting for events that never
  // come). Streams with no watcher yet are not reached.
  void FailAll(const grpc::Status& status);
  void OnEvents(node::Node& n, const std::vector<state::Event>& events, int64_t revision);
  // A slow stream drained its queue: catch its lagging watchers up.
  void CatchUp(node::Node& n, WatchStream* stream);
  // Every `interval_ms`, tells each caught-up watcher that asked for
  // progress_notify the current revision (an empty response), so an idle
  // client knows how far it has seen. Runs on the node loop.
  void StartProgressNotify(NodeHost* host, int64_t interval_ms);
  size_t watcher_count() const { return watchers_.size(); }

 private:
  // Sends `events` (ascending revisions) to w, one response per revision;
  // false if the stream lagged behind meanwhile.
  void SendEvents(node::Node& n, Watcher& w, const std::vector<state::Event>& events);
  // Sends one revision's events as fragments of at most `limit` bytes (one
  // event may exceed it alone); false when the stream is over its limit.
  bool SendFragments(etcdserverpb::WatchResponse whole, Watcher& w, size_t limit);
  // Reads w's history from next_revision and sends it; cancels it if that
  // history was compacted.
  void SendHistory(node::Node& n, Watcher& w);
  // Send, or Queue while OnEvents fans out (the streams are flushed at its
  // end).
  bool Deliver(WatchStream* stream, etcdserverpb::WatchResponse resp);

  using WatcherKey = std::pair<WatchStream*, int64_t>;
  using Watchers = std::map<WatcherKey, Watcher>;
  // Adds the stored watcher to the index OnEvents looks events up in; Erase
  // takes it out of both.
  void Index(Watcher& w);
  Watchers::iterator Erase(Watchers::iterator it);
  // The revision a caught-up watcher has been offered everything before:
  // OnEvents visits only the watchers its events concern, so a watcher's own
  // next_revision is only exact while it lags.
  int64_t NextRevision(const Watcher& w) const {
    return w.lagging ? w.next_revision : std::max(w.next_revision, fanned_out_ + 1);
  }

  std::vector<WatchStream*>* fanning_out_ = nullptr;  // during OnEvents
  ServerContext* ctx_;
  Watchers watchers_;
  // The index: single-key watchers by key, and the others (ranges and
  // prefixes), which are checked against every event. An event costs its
  // key's watchers and the ranged ones, not every watcher.
  std::unordered_map<std::string, std::map<WatcherKey, Watcher*>> by_key_;
  std::map<WatcherKey, Watcher*> ranged_;
  int64_t fanned_out_ = 0;  // the last revision OnEvents fanned out
};

class WatchStream final
    : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  static constexpr size_t kMaxQueued = 1024;

  WatchStream(ServerContext* ctx, WatchHub* hub);

  // Thread-safe. Returns false when the queue is over its bound (the caller
  // then treats the watcher as lagging).
  bool Send(etcdserverpb::WatchResponse resp);
  // As Send, but the write starts only at the next Send or Flush: responses
  // queued together go out together (all but the last written with gRPC's
  // buffer hint, so one notification to many watchers of a stream costs one
  // socket write rather than one per watcher).
  bool Queue(etcdserverpb::WatchResponse resp);
  void Flush();
  // Node loop only, from WatchHub::FailAll: ends the stream with `status`
  // once queued responses are written.
  void Abort(const grpc::Status& status);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override { delete this; }

 private:
  void Close();
  void MaybeFinishLocked();
  void StartNextWriteLocked();

  ServerContext* ctx_;
  WatchHub* hub_;
  etcdserverpb::WatchRequest request_;
  int64_t next_auto_id_ = 0;  // reads are sequential: no lock needed
  std::mutex mu_;
  std::deque<etcdserverpb::WatchResponse> queue_;  // guarded by mu_
  bool writing_ = false;                           // guarded by mu_
  bool closing_ = false;                           // guarded by mu_
  bool close_posted_ = false;                      // guarded by mu_
  bool removed_ = false;                           // guarded by mu_
  bool finished_ = false;                          // guarded by mu_
  bool was_full_ = false;                          // guarded by mu_
  grpc::Status finish_status_;                     // guarded by mu_
};

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  WatchService(ServerContext* ctx, WatchHub* hub) : ctx_(ctx), hub_(hub) {}
  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext*) override {
    return new WatchStream(ctx_, hub_);
  }

 private:
  ServerContext* ctx_;
  WatchHub* hub_;
};

}  // namespace warden::server

#include "src/server/watch.h"

#include <algorithm>
#include <set>

#include "src/server/etcd_convert.h"

namespace warden::server {

namespace {
constexpr size_t kHistoryBatch = 1000;
}  // namespace

// ---------------------------------------------------------------------------
// WatchHub (node loop)

void WatchHub::Create(node::Node& n, WatchStream* stream,
                      const etcdserverpb::WatchCreateRequest& req, int64_t id) {
  const state::MvccStore& kv = n.state().kv();
  etcdserverpb::WatchResponse created;
  ctx_->FillHeader(n, 0, created.mutable_header());
  created.set_watch_id(id);
  created.set_created(true);
  if (req.key().empty() || watchers_.count({stream, id})) {
    created.set_canceled(true);
    created.set_cancel_reason(req.key().empty() ? "etcdserver: key is not provided"
                                                : "etcdserver: duplicate watch id");
    stream->Send(std::move(created));
    return;
  }
  Watcher w;
  w.id = id;
  w.stream = stream;
  w.range = state::KeyRange{req.key(), req.range_end()};
  w.prev_kv = req.prev_kv();
  w.progress_notify = req.progress_notify();
  w.fragment = req.fragment();
  for (int f : req.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) w.no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) w.no_delete = true;
  }
  const int64_t start = req.start_revision();
  if (start > 0 && start < kv.compact_revision()) {
    // etcd's answer for a start revision that was compacted away: created,
    // then a separate cancel carrying the compacted revision (clients turn
    // that into their "required revision has been compacted" error).
    stream->Send(std::move(created));
    etcdserverpb::WatchResponse canceled;
    ctx_->FillHeader(n, 0, canceled.mutable_header());
    canceled.set_watch_id(id);
    canceled.set_canceled(true);
    canceled.set_compact_revision(kv.compact_revision());
    stream->Send(std::move(canceled));
    return;
  }
  stream->Send(std::move(created));
  w.next_revision = start > 0 ? start : kv.current_revision() + 1;
  Watcher& stored = watchers_.emplace(std::make_pair(stream, id), std::move(w)).first->second;
  Index(stored);
  if (stored.next_revision <= kv.current_revision()) SendHistory(n, stored);
}

void WatchHub::Index(Watcher& w) {
  const WatcherKey key{w.stream, w.id};
  if (w.range.IsSingleKey()) {
    by_key_[w.range.key][key] = &w;
  } else {
    ranged_[key] = &w;
  }
}

WatchHub::Watchers::iterator WatchHub::Erase(Watchers::iterator it) {
  const Watcher& w = it->second;
  if (w.range.IsSingleKey()) {
    auto k = by_key_.find(w.range.key);
    if (k != by_key_.end()) {
      k->second.erase(it->first);
      if (k->second.empty()) by_key_.erase(k);
    }
  } else {
    ranged_.erase(it->first);
  }
  return watchers_.erase(it);
}

void WatchHub::Cancel(node::Node& n, WatchStream* stream, int64_t id) {
  auto it = watchers_.find({stream, id});
  if (it == watchers_.end()) return;
  Erase(it);
  etcdserverpb::WatchResponse resp;
  ctx_->FillHeader(n, 0, resp.mutable_header());
  resp.set_watch_id(id);
  resp.set_canceled(true);
  stream->Send(std::move(resp));
}

void WatchHub::FailAll(const grpc::Status& status) {
  std::set<WatchStream*> streams;
  for (const auto& [key, w] : watchers_) streams.insert(key.first);
  watchers_.clear();
  by_key_.clear();
  ranged_.clear();
  for (WatchStream* s : streams) s->Abort(status);
}

void WatchHub::RemoveStream(WatchStream* stream) {
  auto it = watchers_.lower_bound({stream, INT64_MIN});
  while (it != watchers_.end() && it->first.first == stream) it = Erase(it);
}

void WatchHub::SendEvents(node::Node& n, Watcher& w, const std::vector<state::Event>& events) {
  size_t i = 0;
  while (i < events.size()) {
    const int64_t rev = events[i].kv.mod_revision;
    etcdserverpb::WatchResponse resp;
    ctx_->FillHeader(n, 0, resp.mutable_header());
    resp.set_watch_id(w.id);
    for (; i < events.size() && events[i].kv.mod_revision == rev; ++i) {
      const state::Event& e = events[i];
      if (!w.range.Contains(e.kv.key)) continue;
      if (e.type == state::EventType::kPut && w.no_put) continue;
      if (e.type == state::EventType::kDelete && w.no_delete) continue;
      ToProto(e, w.prev_kv, resp.add_events());
    }
    w.next_revision = rev + 1;
    if (resp.events_size() == 0) continue;
    // A stream over its limit still takes the response; it is marked lagging
    // and catches up from history afterwards.
    const size_t limit = ctx_->config().max_request_bytes;
    bool queued = true;
    if (w.fragment && resp.ByteSizeLong() > limit) {
      queued = SendFragments(std::move(resp), w, limit);
    } else {
      queued = Deliver(w.stream, std::move(resp));
    }
    if (!queued) {
      w.lagging = true;
      return;
    }
  }
}

bool WatchHub::SendFragments(etcdserverpb::WatchResponse whole, Watcher& w, size_t limit) {
  bool queued = true;
  etcdserverpb::WatchResponse part;
  auto start_part = [&] {
    part.Clear();
    *part.mutable_header() = whole.header();
    part.set_watch_id(whole.watch_id());
  };
  start_part();
  for (int i = 0; i < whole.events_size(); ++i) {
    const size_t event_bytes = whole.events(i).ByteSizeLong() + 8;
    if (part.events_size() > 0 && part.ByteSizeLong() + event_bytes > limit) {
      part.set_fragment(true);
      queued = Deliver(w.stream, std::move(part)) && queued;
      start_part();
    }
    *part.add_events() = std::move(*whole.mutable_events(i));
  }
  return Deliver(w.stream, std::move(part)) && queued;
}

bool WatchHub::Deliver(WatchStream* stream, etcdserverpb::WatchResponse resp) {
  if (fanning_out_ == nullptr) return stream->Send(std::move(resp));
  if (fanning_out_->empty() || fanning_out_->back() != stream) fanning_out_->push_back(stream);
  return stream->Queue(std::move(resp));
}

void WatchHub::SendHistory(node::Node& n, Watcher& w) {
  const state::MvccStore& kv = n.state().kv();
  while (!w.lagging && w.next_revision <= kv.current_revision()) {
    Result<std::vector<state::Event>> events =
        kv.EventsSince(w.next_revision, w.range, kHistoryBatch);
    if (!events.ok()) {
      // The events this watcher needs are gone: cancel it with the compacted
      // revision so the client knows, instead of skipping ahead.
      etcdserverpb::WatchResponse resp;
      ctx_->FillHeader(n, 0, resp.mutable_header());
      resp.set_watch_id(w.id);
      resp.set_canceled(true);
      resp.set_compact_revision(kv.compact_revision());
      WatchStream* stream = w.stream;
      Erase(watchers_.find({w.stream, w.id}));
      stream->Send(std::move(resp));
      return;
    }
    SendEvents(n, w, *events);
    if (events->size() < kHistoryBatch) {
      if (!w.lagging) w.next_revision = kv.current_revision() + 1;
      return;
    }
  }
}

void WatchHub::OnEvents(node::Node& n, const std::vector<state::Event>& events, int64_t revision) {
  // The watchers these events concern: those of their keys, and the ranged
  // ones that contain one. The rest have nothing to hear (NextRevision).
  std::vector<Watcher*> hit;
  for (const state::Event& e : events) {
    auto it = by_key_.find(e.kv.key);
    if (it == by_key_.end()) continue;
    for (const auto& [key, w] : it->second) hit.push_back(w);
  }
  for (const auto& [key, w] : ranged_) {
    for (const state::Event& e : events) {
      if (w->range.Contains(e.kv.key)) {
        hit.push_back(w);
        break;
      }
    }
  }
  if (events.size() > 1) {
    // A watcher of several of the keys: once (SendEvents takes them all).
    std::sort(hit.begin(), hit.end());
    hit.erase(std::unique(hit.begin(), hit.end()), hit.end());
  }
  std::vector<WatchStream*> touched;
  fanning_out_ = &touched;
  for (Watcher* w : hit) {
    if (w->lagging || w->next_revision > revision) continue;
    SendEvents(n, *w, events);
  }
  fanning_out_ = nullptr;
  fanned_out_ = std::max(fanned_out_, revision);
  // Each stream is flushed once, after all its responses are queued.
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (WatchStream* s : touched) s->Flush();
}

void WatchHub::StartProgressNotify(NodeHost* host, int64_t interval_ms) {
  if (interval_ms <= 0) return;
  host->PostAfter(interval_ms, [this, host, interval_ms](node::Node& n) {
    const int64_t current = n.state().kv().current_revision();
    for (auto& [key, w] : watchers_) {
      if (!w.progress_notify || w.lagging || NextRevision(w) <= current) continue;
      etcdserverpb::WatchResponse resp;
      ctx_->FillHeader(n, 0, resp.mutable_header());
      resp.set_watch_id(w.id);
      w.stream->Send(std::move(resp));
    }
    StartProgressNotify(host, interval_ms);
  });
}

void WatchHub::CatchUp(node::Node& n, WatchStream* stream) {
  std::vector<int64_t> ids;
  for (auto it = watchers_.lower_bound({stream, INT64_MIN});
       it != watchers_.end() && it->first.first == stream; ++it) {
    if (it->second.lagging) ids.push_back(it->first.second);
  }
  for (int64_t id : ids) {
    auto it = watchers_.find({stream, id});
    if (it == watchers_.end()) continue;
    it->second.lagging = false;
    SendHistory(n, it->second);
  }
}

// ---------------------------------------------------------------------------
// WatchStream (gRPC threads)

WatchStream::WatchStream(ServerContext* ctx, WatchHub* hub) : ctx_(ctx), hub_(hub) {
  StartRead(&request_);
}

bool WatchStream::Send(etcdserverpb::WatchResponse resp) {
  const bool queued = Queue(std::move(resp));
  Flush();
  return queued;
}

bool WatchStream::Queue(etcdserverpb::WatchResponse resp) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closing_) return true;
  queue_.push_back(std::move(resp));
  if (queue_.size() > kMaxQueued) {
    was_full_ = true;
    return false;
  }
  return true;
}

void WatchStream::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (writing_ || closing_ || queue_.empty()) return;
  writing_ = true;
  StartNextWriteLocked();
}

void WatchStream::StartNextWriteLocked() {
  grpc::WriteOptions options;
  if (queue_.size() > 1) options.set_buffer_hint();  // more follow at once
  StartWrite(&queue_.front(), options);
}

void WatchStream::OnReadDone(bool ok) {
  if (!ok) return Close();
  WatchHub* hub = hub_;
  if (request_.has_create_request()) {
    const etcdserverpb::WatchCreateRequest req = request_.create_request();
    const int64_t id = req.watch_id() != 0 ? req.watch_id() : next_auto_id_++;
    ctx_->host()->Post([this, hub, req, id](node::Node& n) { hub->Create(n, this, req, id); });
  } else if (request_.has_cancel_request()) {
    const int64_t id = request_.cancel_request().watch_id();
    ctx_->host()->Post([this, hub, id](node::Node& n) { hub->Cancel(n, this, id); });
  } else if (request_.has_progress_request()) {
    ServerContext* ctx = ctx_;
    ctx_->host()->Post([this, ctx](node::Node& n) {
      etcdserverpb::WatchResponse resp;
      ctx->FillHeader(n, 0, resp.mutable_header());
      resp.set_watch_id(-1);
      Send(std::move(resp));
    });
  }
  StartRead(&request_);
}

void WatchStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.pop_front();
  if (!ok) closing_ = true;
  if (!queue_.empty() && !closing_) {
    StartNextWriteLocked();
  } else {
    writing_ = false;
  }
  if (was_full_ && !closing_ && queue_.size() < kMaxQueued / 2) {
    was_full_ = false;
    WatchHub* hub = hub_;
    ctx_->host()->Post([this, hub](node::Node& n) { hub->CatchUp(n, this); });
  }
  MaybeFinishLocked();
}

void WatchStream::OnCancel() { Close(); }

void WatchStream::Close() {
  {
    // Both OnReadDone(false) and OnCancel may call this; remove once, since
    // the stream may be deleted as soon as the removal finishes.
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    if (close_posted_) return;
    close_posted_ = true;
  }
  WatchHub* hub = hub_;
  ctx_->host()->Post([this, hub](node::Node&) {
    hub->RemoveStream(this);
    std::lock_guard<std::mutex> lock(mu_);
    removed_ = true;
    MaybeFinishLocked();
  });
}

void WatchStream::MaybeFinishLocked() {
  if (removed_ && !writing_ && !finished_) {
    finished_ = true;
    Finish(finish_status_);
  }
}

void WatchStream::Abort(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  // The caller removed this stream from the hub; a later Close must not
  // post another removal (the stream may be gone by then).
  if (close_posted_) return;
  close_posted_ = true;
  closing_ = true;
  removed_ = true;
  finish_status_ = status;
  MaybeFinishLocked();
}

}  // namespace warden::server

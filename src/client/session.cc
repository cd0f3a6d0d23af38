#include "src/client/session.h"

#include <deque>

namespace warden::client {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<Millis>(Clock::now().time_since_epoch()).count();
}

Clock::time_point FromMs(int64_t ms) { return Clock::time_point(Millis(ms)); }

}  // namespace

// ---------------------------------------------------------------------------
// SessionState

bool SessionState::Alive() {
  std::lock_guard<std::mutex> lock(mu);
  if (closed || lost) return false;
  if (!owned) return true;
  return !clock.Expired(NowMs());
}

void SessionState::Lose(const std::string& reason) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (lost || closed) return;
    lost = true;
    lost_reason = reason;
    clock.MarkLost();
    callbacks.swap(on_lost);
  }
  cv.notify_all();
  lost_token.Cancel();
  for (auto& fn : callbacks) fn();
}

// ---------------------------------------------------------------------------
// Session

Session::Session(std::shared_ptr<SessionState> state, Millis heartbeat)
    : state_(std::move(state)), heartbeat_(heartbeat) {}

Result<std::unique_ptr<Session>> Session::Create(Client* client, SessionOptions options) {
  const int64_t sent = NowMs();
  Result<Client::LeaseInfo> lease = client->LeaseGrant(options.ttl_s);
  if (!lease.ok()) return lease.status();
  return Start(client, lease->id, sent, lease->ttl_s, std::move(options));
}

Result<std::unique_ptr<Session>> Session::Resume(Client* client, int64_t lease_id,
                                                 SessionOptions options) {
  const int64_t sent = NowMs();
  Result<Client::LeaseInfo> lease = client->LeaseKeepAliveOnce(lease_id);
  if (!lease.ok()) return lease.status();
  return Start(client, lease_id, sent, lease->ttl_s, std::move(options));
}

std::unique_ptr<Session> Session::Start(Client* client, int64_t lease_id, int64_t sent_ms,
                                        int64_t ttl_s, SessionOptions options) {
  auto state = std::make_shared<SessionState>();
  state->client = client;
  state->lease_id = lease_id;
  state->owner_id = options.owner_id;
  state->owned = true;
  state->revoke_on_close = options.revoke_on_close;
  state->clock = LeaseClock(sent_ms, ttl_s * 1000);
  if (options.on_lost) state->on_lost.push_back(std::move(options.on_lost));
  const Millis heartbeat(LeaseClock::HeartbeatMs(ttl_s * 1000, options.max_heartbeat.count()));
  std::unique_ptr<Session> s(new Session(std::move(state), heartbeat));
  s->thread_ = std::thread([p = s.get()] { p->KeepAliveLoop(); });
  return s;
}

std::unique_ptr<Session> Session::Attach(Client* client, int64_t lease_id, std::string owner_id) {
  auto state = std::make_shared<SessionState>();
  state->client = client;
  state->lease_id = lease_id;
  state->owner_id = std::move(owner_id);
  state->owned = false;
  return std::unique_ptr<Session>(new Session(std::move(state), Millis(0)));
}

Session::~Session() { (void)Close(); }

std::string Session::lost_reason() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->lost_reason;
}

int64_t Session::remaining_ms() const {
  if (!state_->owned) return -1;
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->clock.remaining_ms(NowMs());
}

void Session::OnLost(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->lost) {
      state_->on_lost.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

Status Session::Close() {
  bool was_alive = false;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->closed) return Status::Ok();
    stop_ = true;
    was_alive = !state_->lost;
  }
  state_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
  Status s;
  if (state_->owned && state_->revoke_on_close && was_alive)
    s = state_->client->LeaseRevoke(state_->lease_id);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->closed = true;
  }
  state_->lost_token.Cancel();
  return s;
}

// One keep-alive stream to one endpoint. A reader thread collects answers;
// the keep-alive loop writes and waits on the session's condition variable.
namespace {

struct KeepAliveStream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                           etcdserverpb::LeaseKeepAliveResponse>>
      rw;
  std::thread reader;
  // Guarded by the session's mutex:
  std::deque<int64_t> answers;  // TTLs in seconds
  bool broken = false;
};

}  // namespace

void Session::KeepAliveLoop() {
  SessionState& st = *state_;
  Client* client = st.client;
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(st.lease_id);
  // An endpoint whose oldest unanswered keep-alive is this old is left for
  // the next one: two heartbeats, but at most half the TTL so that a move
  // still has time to confirm the lease.
  const Millis answer_timeout =
      std::max(Millis(200), std::min(2 * heartbeat_, Millis(st.clock.ttl_ms() / 2)));
  std::unique_lock<std::mutex> lock(st.mu);
  // Bounded: each pass waits for a connection, an answer or a heartbeat.
  for (int pass = 0; pass < 100000000 && !stop_; ++pass) {
    if (st.clock.Expired(NowMs())) {
      lock.unlock();
      st.Lose("the lease could not be renewed before its TTL ran out");
      return;
    }
    const Clock::time_point deadline = FromMs(st.clock.deadline_ms());
    lock.unlock();
    size_t index = 0;
    std::shared_ptr<grpc::Channel> channel = client->Connected(deadline, &index);
    if (!channel) {
      client->FailOver(index);
      lock.lock();
      st.cv.wait_for(lock, Millis(50), [&] { return stop_; });
      continue;
    }
    auto stream = std::make_unique<KeepAliveStream>();
    stream->rw = etcdserverpb::Lease::NewStub(channel)->LeaseKeepAlive(&stream->ctx);
    KeepAliveStream* sp = stream.get();
    stream->reader = std::thread([sp, &st] {
      etcdserverpb::LeaseKeepAliveResponse resp;
      while (sp->rw->Read(&resp)) {
        std::lock_guard<std::mutex> l(st.mu);
        sp->answers.push_back(resp.ttl());
        st.cv.notify_all();
      }
      std::lock_guard<std::mutex> l(st.mu);
      sp->broken = true;
      st.cv.notify_all();
    });
    lock.lock();
    // Keep-alives go out every heartbeat whether or not the previous one was
    // answered (the clock credits each answer to the oldest send). The
    // stream is left when it breaks or an answer is overdue.
    bool healthy = true;
    bool gone = false;
    int64_t next_send = NowMs();
    for (int beat = 0; beat < 100000000 && !stop_ && !st.lost; ++beat) {
      int64_t now = NowMs();
      if (st.clock.Expired(now)) break;  // the outer loop reports the loss
      if (now >= next_send) {
        st.clock.OnSent(now);
        lock.unlock();
        const bool wrote = sp->rw->Write(req);
        lock.lock();
        if (!wrote) {
          healthy = false;
          break;
        }
        next_send = now + heartbeat_.count();
      }
      int64_t wake = std::min(next_send, st.clock.deadline_ms());
      if (const int64_t oldest = st.clock.oldest_outstanding_ms(); oldest >= 0) {
        wake = std::min(wake, oldest + answer_timeout.count());
      }
      st.cv.wait_until(lock, FromMs(wake),
                       [&] { return stop_ || sp->broken || !sp->answers.empty(); });
      while (!sp->answers.empty()) {
        const int64_t ttl_s = sp->answers.front();
        sp->answers.pop_front();
        st.clock.OnAnswer(ttl_s * 1000);
        if (ttl_s <= 0) gone = true;
      }
      if (gone) break;
      if (sp->broken) {
        healthy = false;
        break;
      }
      now = NowMs();
      if (const int64_t oldest = st.clock.oldest_outstanding_ms();
          oldest >= 0 && now - oldest >= answer_timeout.count()) {
        healthy = false;  // no answer in time (no leader there?)
        break;
      }
    }
    lock.unlock();
    sp->ctx.TryCancel();
    sp->reader.join();
    (void)sp->rw->Finish();
    stream.reset();
    if (gone) {
      st.Lose("the cluster reports the lease as expired or revoked");
      return;
    }
    if (!healthy) client->FailOver(index);
    lock.lock();
    st.clock.OnStreamReset();
    if (!healthy) st.cv.wait_for(lock, Millis(20), [&] { return stop_; });
  }
}

}  // namespace warden::client

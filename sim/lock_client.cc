#include "sim/lock_client.h"

namespace warden::sim {
namespace {

using state::LockAnswer;
using state::LockOutcome;

const char* KindName(ClientRequest::Kind k) {
  switch (k) {
    case ClientRequest::kLeaseGrant: return "session-grant";
    case ClientRequest::kLockAcquire: return "acquire";
    case ClientRequest::kLockRelease: return "release";
    case ClientRequest::kLockCancel: return "cancel";
    case ClientRequest::kGuardedPut: return "guarded-put";
    default: return "?";
  }
}

std::string Describe(const ClientRequest& r) {
  const state::LockCommand& l = r.lock;
  switch (r.kind) {
    case ClientRequest::kLeaseGrant:
      return Format("session-grant lease=%llx ttl=%llds", U(static_cast<uint64_t>(r.lease)),
                    static_cast<long long>(r.ttl_seconds));
    case ClientRequest::kLockAcquire:
      return Format("acquire %s %s prio=%d wait=%lldms ttl=%lldms rid=%llu", l.path.c_str(),
                    l.mode == 1 ? "shared" : "exclusive", l.priority,
                    static_cast<long long>(l.wait_ms), static_cast<long long>(l.ttl_ms),
                    U(l.request_id));
    case ClientRequest::kGuardedPut:
      return Format("guarded-put %s token=%llu", l.path.c_str(), U(l.token));
    default:
      return Format("%s %s token=%llu rid=%llu", KindName(r.kind), l.path.c_str(), U(l.token),
                    U(l.request_id));
  }
}

std::string Describe(const LockAnswer& a) {
  std::string out = Format("rid=%llu %s", U(a.request_id), state::LockOutcomeName(a.outcome));
  if (a.outcome == LockOutcome::kGranted) {
    out += Format(" token=%llu count=%u", U(a.token), a.hold_count);
  }
  return out;
}

}  // namespace

SimLockClient::SimLockClient(World* world, Rng rng, uint64_t id, std::vector<NodeId> nodes,
                             const LockClientOptions& options, SendFn send, GrantFn grant)
    : world_(world),
      rng_(rng),
      id_(id),
      nodes_(std::move(nodes)),
      options_(options),
      send_(std::move(send)),
      grant_(std::move(grant)),
      owner_(Format("o%llu", U(id))) {
  target_ = AnyMember();
}

NodeId SimLockClient::AnyMember() {
  std::vector<NodeId> members = members_ ? members_() : std::vector<NodeId>{};
  if (members.empty()) return nodes_[rng_.Uniform(nodes_.size())];
  return members[rng_.Uniform(members.size())];
}

void SimLockClient::PickTarget(NodeId hint) { target_ = hint != kNoNode ? hint : AnyMember(); }

void SimLockClient::SetPhase(Phase p) {
  phase_ = p;
  ++turn_;
  open_ = false;  // a new step: whatever was in flight is no longer awaited
}

void SimLockClient::Start() { Think(); }

// ---- Sending ----------------------------------------------------------------

ClientRequest SimLockClient::NewRequest(ClientRequest::Kind kind) const {
  ClientRequest req;
  req.kind = kind;
  req.lock.session = session_;
  req.lock.owner_id = owner_;
  return req;
}

void SimLockClient::Send(ClientRequest req) {
  req.client = id_;
  req.seq = next_seq_++;
  req_ = req;
  open_ = true;
  sent_to_ = target_;
  if (world_->tracing()) world_->Trace(Who(), Describe(req) + Format(" -> n%llu", U(sent_to_)));
  const uint64_t seq = req.seq;
  world_->After(options_.timeout_us, [this, seq] { OnTimeout(seq); });
  send_(sent_to_, req);
}

void SimLockClient::OnTimeout(uint64_t seq) {
  if (stopped_ || !open_ || req_.seq != seq) return;
  open_ = false;
  if (world_->tracing()) world_->Trace(Who(), Format("timeout #%llu", U(seq)));
  PickTarget(kNoNode);
  Retry(rng_.Range(0, options_.timeout_us));
}

void SimLockClient::Retry(TimeUs delay_us) {
  const uint64_t turn = turn_;
  world_->After(delay_us, [this, turn] {
    if (stopped_ || turn != turn_ || open_) return;
    // A session grant that may or may not have happened is not sent again:
    // a new lease id keeps every grant distinct (the old one expires).
    if (req_.kind == ClientRequest::kLeaseGrant) return GrantSession();
    Send(req_);
  });
}

// ---- The cycle --------------------------------------------------------------

void SimLockClient::Think() {
  if (stopped_) return;
  SetPhase(Phase::kIdle);
  const uint64_t turn = turn_;
  world_->After(rng_.Range(0, options_.think_max_us), [this, turn] {
    if (!stopped_ && turn == turn_) BeginCycle();
  });
}

void SimLockClient::BeginCycle() {
  cycle_us_ = world_->now_us();
  if (session_ == 0) return GrantSession();
  if (!zombie_ && !calm_ && rng_.Chance(options_.zombie_ratio)) {
    zombie_ = true;
    world_->Trace(Who(), "stops keeping its session alive (zombie)");
  }
  acquire_ = NewRequest(ClientRequest::kLockAcquire).lock;
  acquire_.path = Format("/lock/%llu", U(rng_.Uniform(static_cast<uint64_t>(options_.locks))));
  acquire_.mode = rng_.Chance(options_.shared_ratio) ? 1 : 0;
  acquire_.priority =
      rng_.Chance(options_.priority_ratio) ? static_cast<int32_t>(rng_.Range(1, 5)) : 0;
  double dice = rng_.UnitDouble();
  if ((dice -= options_.try_ratio) < 0) {
    acquire_.wait_ms = 0;
  } else if ((dice -= options_.deadline_ratio) < 0) {
    acquire_.wait_ms = static_cast<int64_t>(rng_.Range(50, 1500));
  } else {
    acquire_.wait_ms = -1;
  }
  acquire_.ttl_ms =
      rng_.Chance(options_.hold_ttl_ratio) ? static_cast<int64_t>(rng_.Range(100, 1500)) : 0;
  acquire_.request_id = next_request_id_++;
  acquire_final_.reset();
  token_ = 0;
  SendAcquire();
}

void SimLockClient::GrantSession() {
  SetPhase(Phase::kSession);
  ClientRequest req = NewRequest(ClientRequest::kLeaseGrant);
  req.lease = static_cast<int64_t>((id_ << 32) | next_lease_++);
  req.ttl_seconds = static_cast<int64_t>(rng_.Range(1, 3));
  grant_(req.lease, req.ttl_seconds, world_->now_us());
  Send(req);
}

void SimLockClient::SendAcquire() {
  SetPhase(Phase::kAcquire);
  ClientRequest req = NewRequest(ClientRequest::kLockAcquire);
  req.lock = acquire_;  // the same request id on every attempt
  Send(req);
}

void SimLockClient::OnAcquireAnswer(const LockAnswer& a) {
  if (world_->tracing()) world_->Trace(Who(), Describe(a));
  if (a.outcome == LockOutcome::kQueued) {
    if (phase_ != Phase::kAcquire) return;  // a late copy; already waiting
    SetPhase(Phase::kWaiting);
    if (!calm_ && rng_.Chance(options_.crash_ratio)) return Crash();
    // Past a deadline (and a margin for the tick and the commit), or after a
    // while without one, ask again: the answer may have been lost with the
    // member that proposed the request.
    const TimeUs patience_us = acquire_.wait_ms > 0 ? acquire_.wait_ms * kUsPerMs + kUsPerS
                                                    : rng_.Range(300 * kUsPerMs, 3 * kUsPerS);
    const uint64_t turn = turn_;
    world_->After(patience_us, [this, turn] {
      if (!stopped_ && turn == turn_) OnWaitTimeout();
    });
    return;
  }
  if (acquire_final_) return;  // a copy of the final answer
  acquire_final_ = a;
  if (phase_ == Phase::kCancel) return;  // acted on when the cancel is answered
  ActOnFinal();
}

void SimLockClient::ActOnFinal() {
  const LockAnswer& a = *acquire_final_;
  switch (a.outcome) {
    case LockOutcome::kGranted: token_ = a.token; return Hold();
    case LockOutcome::kSessionEnded: return LoseSession("the acquire found the session ended");
    default: return EndCycle(true);  // WOULD_BLOCK, TIMEOUT, CANCELLED, ...
  }
}

void SimLockClient::OnWaitTimeout() {
  if (acquire_.wait_ms < 0 && rng_.Chance(options_.cancel_ratio)) {
    SetPhase(Phase::kCancel);
    ClientRequest req = NewRequest(ClientRequest::kLockCancel);
    req.lock.path = acquire_.path;
    req.lock.request_id = next_request_id_++;
    return Send(req);
  }
  SendAcquire();  // the same request id: QUEUED while it waits, else the final answer
}

void SimLockClient::OnCancelAnswer(const LockAnswer& a) {
  if (world_->tracing()) world_->Trace(Who(), Describe(a));
  switch (a.outcome) {
    case LockOutcome::kCancelled:
      // Withdrawn while waiting, so never granted (a GRANTED heard meanwhile
      // would contradict it; release it all the same).
      if (acquire_final_ && acquire_final_->outcome == LockOutcome::kGranted) {
        SetPhase(Phase::kAcquire);
        return ActOnFinal();
      }
      return EndCycle(true);
    case LockOutcome::kNotWaiting:
      // Resolved before the cancel: learn how (the same request id).
      if (acquire_final_) {
        SetPhase(Phase::kAcquire);
        return ActOnFinal();
      }
      return SendAcquire();
    case LockOutcome::kSessionEnded: return LoseSession("the cancel found the session ended");
    default: return EndCycle(true);
  }
}

void SimLockClient::Hold() {
  SetPhase(Phase::kHolding);
  if (!calm_ && rng_.Chance(options_.crash_ratio)) return Crash();
  TimeUs hold_us = rng_.Range(0, options_.hold_max_us);
  // A zombie often outlives its session before it writes: a process pause.
  if (zombie_ && rng_.Chance(0.5)) hold_us = ttl_seconds_ * kUsPerS + rng_.Range(0, kUsPerS);
  const uint64_t turn = turn_;
  world_->After(hold_us, [this, turn] {
    if (stopped_ || turn != turn_) return;
    if (rng_.Chance(options_.reacquire_ratio)) {
      SetPhase(Phase::kReacquire);
      ClientRequest req = NewRequest(ClientRequest::kLockAcquire);
      req.lock = acquire_;
      req.lock.wait_ms = 0;
      req.lock.request_id = next_request_id_++;
      return Send(req);
    }
    Write();
  });
}

void SimLockClient::OnReacquireAnswer(const LockAnswer& a) {
  if (world_->tracing()) world_->Trace(Who(), "re-" + Describe(a));
  if (a.outcome == LockOutcome::kSessionEnded) {
    return LoseSession("the re-acquire found the session ended");
  }
  if (a.outcome == LockOutcome::kGranted) {
    // The same token and one more count; or, if the hold expired meanwhile,
    // a new hold.
    token_ = a.token;
  }
  Write();
}

void SimLockClient::Write() {
  SetPhase(Phase::kWrite);
  ClientRequest req = NewRequest(ClientRequest::kGuardedPut);
  req.lock.path = acquire_.path;
  req.lock.token = token_;
  req.key = "lockreg" + acquire_.path;
  req.value = Format("%llu", U(token_));
  Send(req);
}

void SimLockClient::Release() {
  SetPhase(Phase::kRelease);
  ClientRequest req = NewRequest(ClientRequest::kLockRelease);
  req.lock.path = acquire_.path;
  req.lock.token = token_;
  req.lock.request_id = next_request_id_++;
  Send(req);
}

void SimLockClient::OnReleaseAnswer(const LockAnswer& a) {
  if (world_->tracing()) world_->Trace(Who(), Describe(a));
  if (a.outcome == LockOutcome::kGranted && a.hold_count > 0) return Release();
  if (a.outcome == LockOutcome::kSessionEnded) {
    return LoseSession("the release found the session ended");
  }
  EndCycle(true);  // released, or NOT_HELD: the hold expired or the session ended
}

void SimLockClient::EndCycle(bool counted) {
  if (counted && cycle_us_ >= epoch_us_) ++ok_since_epoch_;
  acquire_ = state::LockCommand{};
  acquire_final_.reset();
  token_ = 0;
  Think();
}

void SimLockClient::LoseSession(const char* why) {
  world_->Trace(Who(), Format("session %llx is gone: %s", U(static_cast<uint64_t>(session_)), why));
  session_ = 0;
  zombie_ = false;
  keepalive_seq_ = 0;
  EndCycle(false);
}

void SimLockClient::Crash() {
  world_->Trace(Who(), Format("crash (forgets session %llx%s)", U(static_cast<uint64_t>(session_)),
                              phase_ == Phase::kHolding ? " and its hold" : " and its wait"));
  SetPhase(Phase::kDown);
  session_ = 0;
  zombie_ = false;
  keepalive_seq_ = 0;
  acquire_ = state::LockCommand{};
  acquire_final_.reset();
  token_ = 0;
  const uint64_t turn = turn_;
  world_->After(rng_.Range(100 * kUsPerMs, kUsPerS), [this, turn] {
    if (stopped_ || turn != turn_) return;
    world_->Trace(Who(), "restart");
    Think();
  });
}

// ---- Keep-alive ---------------------------------------------------------------

void SimLockClient::KeepAlive(int64_t session) {
  world_->After(ttl_seconds_ * kUsPerS / 3, [this, session] {
    if (stopped_ || session_ != session || zombie_) return;
    keepalive_redirected_ = false;
    SendKeepAlive();
    KeepAlive(session);
  });
}

void SimLockClient::SendKeepAlive() {
  ClientRequest req;
  req.kind = ClientRequest::kLeaseKeepAlive;
  req.client = id_;
  req.seq = next_seq_++;
  req.lease = session_;
  keepalive_seq_ = req.seq;
  send_(target_, req);
}

void SimLockClient::OnKeepAliveAnswer(const ClientResponse& r) {
  keepalive_seq_ = 0;
  if (r.code == ClientResponse::kRefused) {
    // Try the hinted leader at once (once per period: hints can go round in
    // circles during an election); the next period tries again anyway.
    if (r.leader_hint != kNoNode && r.leader_hint != target_) {
      target_ = r.leader_hint;
      if (session_ != 0 && !zombie_ && !keepalive_redirected_) {
        keepalive_redirected_ = true;
        SendKeepAlive();
      }
    }
    return;
  }
  if (r.code == ClientResponse::kFailed && session_ != 0 && phase_ != Phase::kDown) {
    LoseSession("a keep-alive found no such lease");
  }
}

// ---- Answers ----------------------------------------------------------------

void SimLockClient::OnResponse(const ClientResponse& r) {
  if (stopped_) return;
  if (keepalive_seq_ != 0 && r.seq == keepalive_seq_) return OnKeepAliveAnswer(r);
  // The acquire's answers, from whichever attempt (or the member that
  // remembered it as queued) they come.
  if (r.code == ClientResponse::kOk && acquire_.request_id != 0 &&
      r.lock.request_id == acquire_.request_id && r.lock.owner.session == session_ &&
      r.lock.owner.id == owner_ &&
      (phase_ == Phase::kAcquire || phase_ == Phase::kWaiting || phase_ == Phase::kCancel)) {
    if (open_ && r.seq == req_.seq) open_ = false;
    return OnAcquireAnswer(r.lock);
  }
  if (!open_ || r.seq != req_.seq) return;  // an abandoned attempt
  open_ = false;
  if (r.code == ClientResponse::kRefused) {
    if (world_->tracing()) {
      world_->Trace(Who(), Format("refused #%llu (hint n%llu)", U(r.seq), U(r.leader_hint)));
    }
    PickTarget(r.leader_hint != sent_to_ ? r.leader_hint : kNoNode);
    return Retry(rng_.Range(0, options_.think_max_us));
  }
  switch (req_.kind) {
    case ClientRequest::kLeaseGrant:
      if (r.code != ClientResponse::kOk) return Retry(rng_.Range(0, options_.think_max_us));
      session_ = req_.lease;
      ttl_seconds_ = req_.ttl_seconds;
      zombie_ = false;
      if (world_->tracing()) {
        world_->Trace(Who(), Format("session %llx", U(static_cast<uint64_t>(session_))));
      }
      KeepAlive(session_);
      return BeginCycle();
    case ClientRequest::kLockAcquire: return OnReacquireAnswer(r.lock);
    case ClientRequest::kLockCancel: return OnCancelAnswer(r.lock);
    case ClientRequest::kLockRelease: return OnReleaseAnswer(r.lock);
    case ClientRequest::kGuardedPut:
      if (world_->tracing()) {
        world_->Trace(Who(), r.code == ClientResponse::kOk ? "guarded-put ok"
                                                           : "guarded-put refused (fenced)");
      }
      return Release();
    default: return;
  }
}

}  // namespace warden::sim

#include "sim/client.h"

namespace warden::sim {

SimClient::SimClient(World* world, Rng rng, uint64_t id, std::vector<NodeId> nodes,
                     const ClientOptions& options, HistoryRecorder* history, SendFn send,
                     GrantFn grant)
    : world_(world),
      rng_(rng),
      id_(id),
      nodes_(std::move(nodes)),
      options_(options),
      history_(history),
      send_(std::move(send)),
      grant_(std::move(grant)),
      last_seen_(options.keys) {
  target_ = AnyMember();
}

NodeId SimClient::AnyMember() {
  std::vector<NodeId> members = members_ ? members_() : std::vector<NodeId>{};
  if (members.empty()) return nodes_[rng_.Uniform(nodes_.size())];
  return members[rng_.Uniform(members.size())];
}

void SimClient::Start() { Next(); }

void SimClient::Stop() {
  stopped_ = true;
  if (open_) {
    if (req_.kind == ClientRequest::kRead) {
      history_->Discard(handle_);
    } else if (Recorded(req_.kind)) {
      history_->Indeterminate(handle_);
    }
    open_ = false;
  }
}

void SimClient::Next() {
  if (stopped_) return;
  world_->After(rng_.Range(0, options_.think_max_us), [this] { Issue(); });
}

void SimClient::PickTarget(NodeId hint) {
  if (hint != kNoNode) {
    target_ = hint;
    return;
  }
  target_ = AnyMember();
}

void SimClient::PickLeaseOp(ClientRequest* req) {
  const double dice = rng_.UnitDouble();
  if (lease_ != 0 && dice < 0.15) lease_ = 0;  // forget it: it expires on its own
  if (lease_ == 0) {
    req->kind = ClientRequest::kLeaseGrant;
    req->lease = static_cast<int64_t>((id_ << 32) | req->seq);
    req->ttl_seconds = static_cast<int64_t>(rng_.Range(1, 3));
    grant_(req->lease, req->ttl_seconds, world_->now_us());
    return;
  }
  req->lease = lease_;
  if (dice < 0.6) {
    req->kind = ClientRequest::kLeasePut;
    req->key = Format("l%llu-%llu", U(id_), U(rng_.Uniform(2)));
    req->value = Format("%llu.%llu", U(id_), U(req->seq));
  } else if (dice < 0.85) {
    req->kind = ClientRequest::kLeaseKeepAlive;
  } else {
    req->kind = ClientRequest::kLeaseRevoke;
    lease_ = 0;
  }
}

void SimClient::Issue() {
  if (stopped_ || open_) return;
  const int key_index = static_cast<int>(rng_.Uniform(options_.keys));
  ClientRequest req;
  req.client = id_;
  req.seq = next_seq_++;
  req.key = Format("k%d", key_index);
  double dice = rng_.UnitDouble();
  OpInput input;
  // Values are unique per operation, which keeps the checker's search small.
  const std::string value = Format("%llu.%llu", U(id_), U(req.seq));
  if ((dice -= options_.read_ratio) < 0) {
    req.kind = ClientRequest::kRead;
    input = OpInput::Read();
  } else if ((dice -= options_.cas_ratio) < 0) {
    req.kind = ClientRequest::kCas;
    req.value = value;
    req.expected = rng_.Chance(0.2) ? std::nullopt : last_seen_[key_index];
    input = OpInput::Cas(req.expected, req.value);
  } else if ((dice -= options_.delete_ratio) < 0) {
    req.kind = ClientRequest::kDelete;
    input = OpInput::Delete();
  } else if ((dice -= options_.lease_ratio) < 0) {
    PickLeaseOp(&req);
  } else {
    req.kind = ClientRequest::kPut;
    req.value = value;
    input = OpInput::Write(req.value);
  }
  req_ = req;
  key_index_ = key_index;
  sent_to_ = target_;
  if (req.kind == ClientRequest::kRead && rng_.Chance(options_.read_anywhere)) {
    sent_to_ = AnyMember();
  }
  open_ = true;
  invoked_us_ = world_->now_us();
  if (Recorded(req.kind)) handle_ = history_->Invoke(id_, req.key, input, invoked_us_);
  if (world_->tracing()) {
    static constexpr const char* kKinds[] = {
        "read",        "put", "cas", "delete", "lease-grant", "lease-put", "lease-keepalive",
        "lease-revoke"};
    std::string what = Format("invoke #%llu %s", U(req.seq), kKinds[req.kind]);
    if (req.kind <= ClientRequest::kDelete || req.kind == ClientRequest::kLeasePut) {
      what += " " + req.key + " " + (req.expected ? *req.expected : "") +
              (req.kind == ClientRequest::kCas ? "=>" : "") + req.value;
    }
    if (req.lease != 0) what += Format(" lease=%llx", U(static_cast<uint64_t>(req.lease)));
    if (req.kind == ClientRequest::kLeaseGrant)
      what += Format(" ttl=%llds", static_cast<long long>(req.ttl_seconds));
    world_->Trace(Who(), what + Format(" -> n%llu", U(sent_to_)));
  }
  const uint64_t seq = req.seq;
  world_->After(options_.timeout_us, [this, seq] { OnTimeout(seq); });
  send_(sent_to_, req);
}

void SimClient::OnTimeout(uint64_t seq) {
  if (!open_ || req_.seq != seq) return;
  // The outcome is unknown: the op may have taken effect, or may yet. Give up
  // on it (it stays pending in the history) and move on with a new one. A
  // read without an answer constrains nothing, so it leaves the history.
  if (req_.kind == ClientRequest::kRead) {
    history_->Discard(handle_);
  } else if (Recorded(req_.kind)) {
    history_->Indeterminate(handle_);
    abandoned_[seq] = Abandoned{handle_, req_.kind};
  }
  open_ = false;
  if (world_->tracing()) {
    world_->Trace(Who(),
                  Format("timeout #%llu (indeterminate)", static_cast<unsigned long long>(seq)));
  }
  PickTarget(kNoNode);
  // Back off: a client that hammers an unavailable cluster only piles up
  // indeterminate operations.
  world_->After(rng_.Range(0, options_.timeout_us), [this] { Next(); });
}

void SimClient::OnResponse(const ClientResponse& r) {
  if (auto it = abandoned_.find(r.seq); it != abandoned_.end()) {
    // A late answer to an abandoned write: it completes now.
    const Abandoned a = it->second;
    abandoned_.erase(it);
    if (r.code != ClientResponse::kOk) {
      history_->Discard(a.handle);
    } else {
      const bool swapped = a.kind != ClientRequest::kCas || r.cas_ok;
      history_->Complete(a.handle, swapped ? OpOutput::Ok() : OpOutput::CasFailed(),
                         world_->now_us());
    }
    if (world_->tracing()) {
      world_->Trace(Who(), Format("late answer #%llu%s", static_cast<unsigned long long>(r.seq),
                                  r.code == ClientResponse::kRefused ? " refused"
                                  : r.cas_ok                         ? ""
                                                                     : " no-swap"));
    }
    return;
  }
  if (!open_ || r.seq != req_.seq) return;
  open_ = false;
  const int key_index = key_index_;
  if (r.code == ClientResponse::kRefused) {
    if (Recorded(req_.kind)) history_->Discard(handle_);
    if (world_->tracing()) {
      world_->Trace(Who(),
                    Format("refused #%llu (hint n%llu)", static_cast<unsigned long long>(r.seq),
                           static_cast<unsigned long long>(r.leader_hint.value())));
    }
    // Avoid hammering a node that just said no with no better idea.
    PickTarget(r.leader_hint != sent_to_ ? r.leader_hint : kNoNode);
    Next();
    return;
  }
  OpOutput out;
  bool record = Recorded(req_.kind);
  switch (req_.kind) {
    case ClientRequest::kRead:
      out = OpOutput::Value(r.value);
      last_seen_[key_index] = r.value;
      break;
    case ClientRequest::kPut:
      out = OpOutput::Ok();
      last_seen_[key_index] = req_.value;
      break;
    case ClientRequest::kCas:
      out = r.cas_ok ? OpOutput::Ok() : OpOutput::CasFailed();
      if (r.cas_ok) last_seen_[key_index] = req_.value;
      break;
    case ClientRequest::kDelete:
      out = OpOutput::Ok();
      last_seen_[key_index] = std::nullopt;
      break;
    case ClientRequest::kLeaseGrant:
      if (r.code == ClientResponse::kOk) lease_ = req_.lease;
      break;
    case ClientRequest::kLeasePut:
    case ClientRequest::kLeaseKeepAlive:
      // The lease is gone (expired or revoked): get a new one next time.
      if (r.code == ClientResponse::kFailed && lease_ == req_.lease) lease_ = 0;
      break;
    case ClientRequest::kLeaseRevoke: break;
    case ClientRequest::kLockAcquire:
    case ClientRequest::kLockRelease:
    case ClientRequest::kLockCancel:
    case ClientRequest::kGuardedPut: break;  // SimLockClient's
  }
  if (record && r.code != ClientResponse::kOk) {
    history_->Discard(handle_);  // a definite failure (not expected for these)
    record = false;
  }
  if (record) history_->Complete(handle_, out, world_->now_us());
  ++completed_ok_;
  if (invoked_us_ >= epoch_us_) ++ok_since_epoch_;
  if (world_->tracing()) {
    std::string what = Format("ok #%llu", static_cast<unsigned long long>(r.seq));
    if (req_.kind == ClientRequest::kRead) what += " = " + r.value.value_or("<absent>");
    if (req_.kind == ClientRequest::kCas) what += r.cas_ok ? " swapped" : " no-swap";
    if (r.code == ClientResponse::kFailed) what += " failed";
    world_->Trace(Who(), what);
  }
  Next();
}

}  // namespace warden::sim

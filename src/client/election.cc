#include "src/client/election.h"

#include <cinttypes>
#include <cstdio>

namespace warden::client {

namespace {

std::string HexLease(int64_t lease) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIx64, static_cast<uint64_t>(lease));
  return buf;
}

using ElectionStub = v3electionpb::Election;

}  // namespace

Election::Election(Session* session, std::string name)
    : session_(session), name_(std::move(name)) {}

bool Election::is_leader() const { return leading_ && session_->alive(); }

Status Election::Campaign(const std::string& value, CancelToken* cancel) {
  Client* client = session_->client();
  v3electionpb::CampaignRequest req;
  req.set_name(name_);
  req.set_lease(session_->id());
  req.set_value(value);
  v3electionpb::CampaignResponse resp;
  Client::CallOptions co;
  co.deadline = Forever();
  // Asked again after this long: a member that stopped answering is left,
  // and the repeated request (refused as "already waiting") moves the wait
  // to the loop below.
  co.attempt_timeout = Millis(10000);
  co.cancel = cancel;
  co.cancel2 = &session_->state()->lost_token;
  grpc::Status g =
      client->Call(co, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
        return ElectionStub::NewStub(ch)->Campaign(ctx, req, &resp);
      });
  const std::string our_key = name_ + "/" + HexLease(session_->id());
  if (!g.ok() && g.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
      (g.error_message().find("INVALID") != std::string::npos ||
       g.error_message().find("QUEUED") != std::string::npos)) {
    // A campaign asked again after a failure finds the first still queued
    // (the server refuses a second request of the same lease as INVALID),
    // and a member before the fix of forwarded campaigns answered a queued
    // one with "lock QUEUED": the candidacy is in place, so wait for our key
    // to lead.
    for (int i = 0; i < 100000000; ++i) {
      if ((cancel != nullptr && cancel->cancelled()) || !session_->alive()) break;
      Result<mvccpb::KeyValue> kv = Leader(client, name_);
      if (kv.ok() && kv->key() == our_key) {
        key_.set_name(name_);
        key_.set_key(our_key);
        key_.set_lease(session_->id());
        key_.set_rev(kv->create_revision());
        leading_ = true;
        return Status::Ok();
      }
      std::this_thread::sleep_for(Millis(200));
    }
    g = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
  if (!g.ok()) {
    if (!session_->alive()) {
      return Status(Code::kSessionEnded, "election " + name_ + ": the session was lost");
    }
    Status s = FromGrpc(g);
    return Status(s.code(), "election " + name_ + ": " + s.message());
  }
  key_ = resp.leader();
  leading_ = true;
  return Status::Ok();
}

Status Election::Proclaim(const std::string& value) {
  if (!leading_) return Status(Code::kFailedPrecondition, "election " + name_ + ": not leader");
  v3electionpb::ProclaimRequest req;
  *req.mutable_leader() = key_;
  req.set_value(value);
  v3electionpb::ProclaimResponse resp;
  Status s = FromGrpc(session_->client()->Call(
      [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
        return ElectionStub::NewStub(ch)->Proclaim(ctx, req, &resp);
      }));
  if (!s.ok()) return Status(s.code(), "election " + name_ + ": " + s.message());
  return s;
}

Status Election::Resign() {
  if (key_.key().empty()) return Status::Ok();
  v3electionpb::ResignRequest req;
  *req.mutable_leader() = key_;
  v3electionpb::ResignResponse resp;
  Status s = FromGrpc(session_->client()->Call(
      [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
        return ElectionStub::NewStub(ch)->Resign(ctx, req, &resp);
      }));
  leading_ = false;
  if (!s.ok()) return Status(s.code(), "election " + name_ + ": " + s.message());
  key_.Clear();
  return s;
}

Result<mvccpb::KeyValue> Election::Leader(Client* client, const std::string& name) {
  v3electionpb::LeaderRequest req;
  req.set_name(name);
  v3electionpb::LeaderResponse resp;
  Status s = FromGrpc(
      client->Call([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
        return ElectionStub::NewStub(ch)->Leader(ctx, req, &resp);
      }));
  if (s.code() == Code::kNotFound)
    return Status(Code::kNotFound, "election " + name + ": no leader");
  if (!s.ok()) return Status(s.code(), "election " + name + ": " + s.message());
  return resp.kv();
}

std::unique_ptr<ElectionObserver> Election::Observe(
    Client* client, const std::string& name, std::function<void(const mvccpb::KeyValue&)> fn) {
  return std::make_unique<ElectionObserver>(client, name, std::move(fn));
}

// ---------------------------------------------------------------------------
// ElectionObserver

ElectionObserver::ElectionObserver(Client* client, std::string name,
                                   std::function<void(const mvccpb::KeyValue&)> fn)
    : name_(std::move(name)),
      fn_(std::move(fn)),
      follower_(client, [this](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx,
                               const std::function<bool()>& alive) { Read(ch, ctx, alive); }) {}

void ElectionObserver::Read(const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx,
                            const std::function<bool()>& alive) {
  v3electionpb::LeaderRequest req;
  req.set_name(name_);
  auto reader = ElectionStub::NewStub(ch)->Observe(ctx, req);
  v3electionpb::LeaderResponse resp;
  while (reader->Read(&resp)) {
    if (!alive()) break;
    // A reconnect repeats the current leader: report changes only.
    if (resp.kv().key() == last_key_ && resp.kv().mod_revision() == last_mod_) continue;
    last_key_ = resp.kv().key();
    last_mod_ = resp.kv().mod_revision();
    fn_(resp.kv());
  }
  (void)reader->Finish();
}

}  // namespace warden::client

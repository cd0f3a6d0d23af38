// The two shapes every write RPC shares: run on the leader (or forward there
// from a follower), then propose a command and answer with its result.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <optional>
#include <string>

#include "src/server/etcd_convert.h"
#include "src/server/etcd_services.h"

namespace warden::server {

// Metadata that marks a request a follower forwarded, so that it is never
// forwarded twice (the leader may have changed meanwhile).
inline constexpr char kForwardedKey[] = "warden-forwarded";

// Runs `propose(node)` on the node loop if this member leads; otherwise
// forwards the request to the leader's client endpoint with
// `forward(stub, client_context, done)` and relays the answer, which then
// names this member in its header (as etcd does) and carries an etcd error
// if the leader could not be reached.
template <typename Service, typename Response, typename Propose, typename Forward>
void OnLeader(ServerContext* ctx, grpc::CallbackServerContext* c, grpc::ServerUnaryReactor* reactor,
              Response* resp, Propose propose, Forward forward) {
  const bool forwarded = c->client_metadata().count(kForwardedKey) > 0;
  ctx->host()->Post([ctx, reactor, resp, forwarded, propose, forward](node::Node& n) mutable {
    if (n.IsLeader()) return propose(n);
    std::optional<std::string> address;
    if (n.leader() != kNoNode && !forwarded) address = ctx->ClientAddressOf(n.leader());
    if (!address) return reactor->Finish({grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"});
    auto stub = Service::NewStub(ctx->ChannelTo(*address));
    // Owns the client context until the answer arrives.
    struct Call {
      grpc::ClientContext context;
    };
    auto* call = new Call;
    call->context.AddMetadata(kForwardedKey, "1");
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    forward(stub.get(), &call->context, [ctx, reactor, resp, call](grpc::Status s) {
      if (s.ok()) {
        resp->mutable_header()->set_member_id(ctx->config().self_id.value());
      } else if (s.error_message().rfind("etcdserver:", 0) != 0) {
        // The leader went away under us: say it as etcd clients expect.
        s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: leader changed");
      }
      reactor->Finish(s);
      delete call;
    });
  });
}

// Proposes `command` and answers: an apply error as etcd's gRPC error, else
// the header is set and `fill(result)` fills the response body.
// REQUIRES: on the node loop, as the leader.
template <typename Response, typename Fill>
void ProposeAndReply(ServerContext* ctx, node::Node& n, grpc::ServerUnaryReactor* reactor,
                     Response* resp, state::Command command, Fill fill) {
  const auto start = std::chrono::steady_clock::now();
  n.Propose(std::move(command), [ctx, &n, reactor, resp, start, fill](const state::ApplyResult& r) {
    ctx->ObserveProposal(start);
    if (!r.status.ok()) return reactor->Finish(ToGrpc(r.status));
    ctx->FillHeader(n, r.revision, resp->mutable_header());
    fill(r);  // after the header: a fill may copy it (transaction sub-responses)
    reactor->Finish(grpc::Status::OK);
  });
}

// Proposes `command` on this member, leader or not (a follower's node
// forwards it to the leader through Raft, batched with the other proposals of
// its loop iteration, and answers when this member applies it), then answers
// as ProposeAndReply. For writes that need no state only the leader keeps.
template <typename Response, typename Fill>
void ProposeHere(ServerContext* ctx, grpc::ServerUnaryReactor* reactor, Response* resp,
                 state::Command command, Fill fill) {
  ctx->host()->Post(
      [ctx, reactor, resp, command = std::move(command), fill](node::Node& n) mutable {
        ProposeAndReply(ctx, n, reactor, resp, std::move(command), fill);
      });
}

}  // namespace warden::server

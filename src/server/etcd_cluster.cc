// The etcd Cluster service: MemberList, MemberAdd, MemberRemove,
// MemberUpdate, MemberPromote. Membership changes go through Raft as joint
// consensus entries (src/raft/raft_membership.cc) carrying the new member's
// record, so the member table is replicated state (src/state/members.h).
#include <algorithm>
#include <set>

#include "src/server/etcd_convert.h"
#include "src/server/etcd_services.h"
#include "src/server/on_leader.h"

namespace warden::server {

std::vector<MemberView> CurrentMembers(const ServerConfig& config, const node::Node& n) {
  const raft::ConfState& cs = n.conf_state();
  std::set<NodeId> ids(cs.voters.begin(), cs.voters.end());
  ids.insert(cs.voters_outgoing.begin(), cs.voters_outgoing.end());
  ids.insert(cs.learners.begin(), cs.learners.end());
  if (ids.empty()) {
    // Not part of a configuration yet (a joining member): the members it
    // was told about.
    for (const ServerConfig::Member& m : config.members) ids.insert(m.id);
  }
  std::vector<MemberView> out;
  for (NodeId id : ids) {
    MemberView v;
    v.id = id;
    v.learner = std::find(cs.learners.begin(), cs.learners.end(), id) != cs.learners.end();
    if (const state::MemberRecord* r = n.state().members().Find(id.value())) {
      v.name = r->name;
      v.peer_urls = r->peer_urls;
    } else {
      for (const ServerConfig::Member& m : config.members) {
        if (m.id != id) continue;
        v.name = m.name;
        v.peer_urls = m.peer_urls;
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

namespace {

void FillMembers(ServerContext* ctx, const node::Node& n,
                 google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) {
  for (const MemberView& v : CurrentMembers(ctx->config(), n)) {
    etcdserverpb::Member* pm = out->Add();
    pm->set_id(v.id.value());
    std::vector<std::string> client_urls;
    std::string name = v.name;
    if (v.id == ctx->config().self_id) {
      client_urls = ctx->config().advertise_client_urls;
      name = ctx->config().name;
    } else if (std::optional<PeerInfo> p = ctx->peers()->Find(v.id)) {
      // A member names itself once it has started (etcd publishes the same).
      client_urls = p->client_urls;
      if (!p->name.empty()) name = p->name;
    }
    pm->set_name(name);
    for (const std::string& u : v.peer_urls) pm->add_peerurls(u);
    for (const std::string& u : client_urls) pm->add_clienturls(u);
    pm->set_islearner(v.learner);
  }
}

// The peer URLs of a request: present, each a URL we can dial.
grpc::Status CheckPeerUrls(const google::protobuf::RepeatedPtrField<std::string>& urls) {
  if (urls.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: no peer URLs given"};
  for (const std::string& u : urls) {
    if (!UrlToAddress(u).ok()) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: invalid peer URL \"" + u + "\""};
    }
  }
  return grpc::Status::OK;
}

// etcd refuses a URL that another member already uses.
bool UrlInUse(ServerContext* ctx, const node::Node& n, const std::string& url, NodeId except) {
  for (const MemberView& v : CurrentMembers(ctx->config(), n)) {
    if (v.id == except) continue;
    if (std::find(v.peer_urls.begin(), v.peer_urls.end(), url) != v.peer_urls.end()) return true;
  }
  return false;
}

bool IsMember(const node::Node& n, NodeId id) {
  const raft::ConfState& cs = n.conf_state();
  for (const auto* list : {&cs.voters, &cs.voters_outgoing, &cs.learners}) {
    if (std::find(list->begin(), list->end(), id) != list->end()) return true;
  }
  return false;
}

grpc::Status ConfChangeError(const Status& s) {
  if (s.code() == ErrorCode::kTimeout || s.code() == ErrorCode::kNotLeader) return ToGrpc(s);
  // A change while another one settles, or a change that would leave no
  // voters: etcd answers such cases with FailedPrecondition.
  return {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: " + s.message()};
}

}  // namespace

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* c,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  ctx_->host()->Post([ctx, reactor, resp](node::Node& n) {
    FillMembers(ctx, n, resp->mutable_members());
    ctx->FillHeader(n, 0, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::MemberAddRequest* req,
                                                    etcdserverpb::MemberAddResponse* resp) {
  auto* reactor = c->DefaultReactor();
  if (grpc::Status s = CheckPeerUrls(req->peerurls()); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  ServerContext* ctx = ctx_;
  std::vector<std::string> urls(req->peerurls().begin(), req->peerurls().end());
  const bool learner = req->islearner();
  OnLeader<etcdserverpb::Cluster>(
      ctx_, c, reactor, resp,
      [ctx, reactor, resp, urls, learner](node::Node& n) {
        for (const std::string& u : urls) {
          if (UrlInUse(ctx, n, u, kNoNode)) {
            return reactor->Finish(
                {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"});
          }
        }
        // The id depends only on the URLs and the cluster token, so the new
        // member finds the same one; Join tells it for certain.
        const NodeId id = MemberIdFor(urls, ctx->config().initial_cluster_token);
        if (IsMember(n, id)) {
          return reactor->Finish(
              {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: member ID already exist"});
        }
        raft::ConfChange cc;
        cc.changes.push_back(
            {learner ? raft::ConfChangeType::kAddLearner : raft::ConfChangeType::kAddVoter, id});
        cc.context = state::EncodeMemberRecord({id.value(), "", urls});
        n.ProposeConfChange(cc, [ctx, &n, reactor, resp, id, urls, learner](const Status& s) {
          if (!s.ok()) return reactor->Finish(ConfChangeError(s));
          etcdserverpb::Member* m = resp->mutable_member();
          m->set_id(id.value());
          for (const std::string& u : urls) m->add_peerurls(u);
          m->set_islearner(learner);
          FillMembers(ctx, n, resp->mutable_members());
          // Raft applies the configuration after this entry: list the new
          // member now if it is not there yet.
          bool listed = false;
          for (const auto& pm : resp->members()) listed = listed || pm.id() == id.value();
          if (!listed) *resp->add_members() = *m;
          ctx->FillHeader(n, 0, resp->mutable_header());
          reactor->Finish(grpc::Status::OK);
        });
      },
      [req, resp](etcdserverpb::Cluster::Stub* stub, grpc::ClientContext* cc, auto done) {
        stub->async()->MemberAdd(cc, req, resp, std::move(done));
      });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(grpc::CallbackServerContext* c,
                                                       const etcdserverpb::MemberRemoveRequest* req,
                                                       etcdserverpb::MemberRemoveResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const NodeId id(req->id());
  OnLeader<etcdserverpb::Cluster>(
      ctx_, c, reactor, resp,
      [ctx, reactor, resp, id](node::Node& n) {
        if (id == kNoNode || !IsMember(n, id)) {
          return reactor->Finish({grpc::StatusCode::NOT_FOUND, "etcdserver: member not found"});
        }
        raft::ConfChange cc;
        cc.changes.push_back({raft::ConfChangeType::kRemoveNode, id});
        n.ProposeConfChange(cc, [ctx, &n, reactor, resp, id](const Status& s) {
          if (!s.ok()) return reactor->Finish(ConfChangeError(s));
          FillMembers(ctx, n, resp->mutable_members());
          auto* members = resp->mutable_members();
          for (int i = 0; i < members->size(); ++i) {
            if (members->Get(i).id() == id.value()) {
              members->DeleteSubrange(i, 1);
              break;
            }
          }
          ctx->FillHeader(n, 0, resp->mutable_header());
          reactor->Finish(grpc::Status::OK);
        });
      },
      [req, resp](etcdserverpb::Cluster::Stub* stub, grpc::ClientContext* cc, auto done) {
        stub->async()->MemberRemove(cc, req, resp, std::move(done));
      });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(grpc::CallbackServerContext* c,
                                                       const etcdserverpb::MemberUpdateRequest* req,
                                                       etcdserverpb::MemberUpdateResponse* resp) {
  auto* reactor = c->DefaultReactor();
  if (grpc::Status s = CheckPeerUrls(req->peerurls()); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  ServerContext* ctx = ctx_;
  const NodeId id(req->id());
  std::vector<std::string> urls(req->peerurls().begin(), req->peerurls().end());
  OnLeader<etcdserverpb::Cluster>(
      ctx_, c, reactor, resp,
      [ctx, reactor, resp, id, urls](node::Node& n) {
        if (id == kNoNode || !IsMember(n, id)) {
          return reactor->Finish({grpc::StatusCode::NOT_FOUND, "etcdserver: member not found"});
        }
        for (const std::string& u : urls) {
          if (UrlInUse(ctx, n, u, id)) {
            return reactor->Finish(
                {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"});
          }
        }
        state::Command cmd;
        cmd.type = state::CommandType::kMemberUpdate;
        cmd.member_id = id.value();
        cmd.peer_urls = urls;
        if (n.state().members().Find(id.value()) == nullptr) {
          // A member known only from the initial configuration (a cluster
          // bootstrapped before the member table existed) cannot be updated.
          return reactor->Finish({grpc::StatusCode::NOT_FOUND, "etcdserver: member not found"});
        }
        ProposeAndReply(ctx, n, reactor, resp, cmd, [ctx, &n, resp](const state::ApplyResult&) {
          FillMembers(ctx, n, resp->mutable_members());
        });
      },
      [req, resp](etcdserverpb::Cluster::Stub* stub, grpc::ClientContext* cc, auto done) {
        stub->async()->MemberUpdate(cc, req, resp, std::move(done));
      });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* c, const etcdserverpb::MemberPromoteRequest* req,
    etcdserverpb::MemberPromoteResponse* resp) {
  auto* reactor = c->DefaultReactor();
  ServerContext* ctx = ctx_;
  const NodeId id(req->id());
  OnLeader<etcdserverpb::Cluster>(
      ctx_, c, reactor, resp,
      [ctx, reactor, resp, id](node::Node& n) {
        if (id == kNoNode || !IsMember(n, id)) {
          return reactor->Finish({grpc::StatusCode::NOT_FOUND, "etcdserver: member not found"});
        }
        const raft::NodeStatus st = n.RaftStatus();
        const auto& learners = st.conf_state.learners;
        if (std::find(learners.begin(), learners.end(), id) == learners.end()) {
          return reactor->Finish({grpc::StatusCode::FAILED_PRECONDITION,
                                  "etcdserver: can only promote a learner member"});
        }
        // As etcd: a learner far behind would make the new quorum wait for it.
        auto match = st.match.find(id);
        const uint64_t have = match == st.match.end() ? 0 : match->second.value();
        if (have * 10 < st.last_index.value() * 9) {
          return reactor->Finish(
              {grpc::StatusCode::FAILED_PRECONDITION,
               "etcdserver: can only promote a learner member which is in sync with leader"});
        }
        raft::ConfChange cc;
        cc.changes.push_back({raft::ConfChangeType::kAddVoter, id});
        n.ProposeConfChange(cc, [ctx, &n, reactor, resp](const Status& s) {
          if (!s.ok()) return reactor->Finish(ConfChangeError(s));
          FillMembers(ctx, n, resp->mutable_members());
          ctx->FillHeader(n, 0, resp->mutable_header());
          reactor->Finish(grpc::Status::OK);
        });
      },
      [req, resp](etcdserverpb::Cluster::Stub* stub, grpc::ClientContext* cc, auto done) {
        stub->async()->MemberPromote(cc, req, resp, std::move(done));
      });
  return reactor;
}

}  // namespace warden::server

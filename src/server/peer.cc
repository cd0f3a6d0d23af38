#include "src/server/peer.h"

#include <algorithm>
#include <chrono>
#include <future>

#include "src/storage/snapshot_file.h"

namespace warden::server {

namespace {
constexpr size_t kSnapshotChunkBytes = 1 << 20;
constexpr size_t kMaxBatchMessages = 4096;
}  // namespace

void ToProto(const raft::Message& m, raftpb::Message* out) {
  out->set_type(static_cast<uint32_t>(m.type));
  out->set_from(m.from.value());
  out->set_to(m.to.value());
  out->set_term(m.term.value());
  out->set_log_term(m.log_term.value());
  out->set_index(m.index.value());
  out->set_commit(m.commit.value());
  out->set_commit_only(m.commit_only);
  out->set_reject(m.reject);
  out->set_reject_hint(m.reject_hint.value());
  out->set_reject_hint_term(m.reject_hint_term.value());
  out->set_context(m.context);
  for (const raft::Entry& e : m.entries) {
    raftpb::Entry* pe = out->add_entries();
    pe->set_term(e.term.value());
    pe->set_index(e.index.value());
    pe->set_type(static_cast<uint32_t>(e.type));
    pe->set_data(e.data);
  }
  if (m.snapshot) {
    const raft::SnapshotMetadata& md = m.snapshot->metadata;
    raftpb::SnapshotMetadata* pm = out->mutable_snapshot();
    pm->set_index(md.index.value());
    pm->set_term(md.term.value());
    for (NodeId id : md.conf_state.voters) pm->mutable_conf_state()->add_voters(id.value());
    for (NodeId id : md.conf_state.voters_outgoing) {
      pm->mutable_conf_state()->add_voters_outgoing(id.value());
    }
    for (NodeId id : md.conf_state.learners) pm->mutable_conf_state()->add_learners(id.value());
  }
}

Result<raft::Message> FromProto(const raftpb::Message& p) {
  if (p.type() > static_cast<uint32_t>(raft::MessageType::kPropose)) {
    return Status::InvalidArgument("unknown raft message type " + std::to_string(p.type()));
  }
  raft::Message m;
  m.type = static_cast<raft::MessageType>(p.type());
  m.from = NodeId(p.from());
  m.to = NodeId(p.to());
  m.term = Term(p.term());
  m.log_term = Term(p.log_term());
  m.index = Index(p.index());
  m.commit = Index(p.commit());
  m.commit_only = p.commit_only();
  m.reject = p.reject();
  m.reject_hint = Index(p.reject_hint());
  m.reject_hint_term = Term(p.reject_hint_term());
  m.context = p.context();
  m.entries.reserve(p.entries_size());
  for (const raftpb::Entry& pe : p.entries()) {
    if (pe.type() > static_cast<uint32_t>(raft::EntryType::kConfChange)) {
      return Status::InvalidArgument("unknown entry type " + std::to_string(pe.type()));
    }
    m.entries.push_back(raft::Entry{Term(pe.term()), Index(pe.index()),
                                    static_cast<raft::EntryType>(pe.type()), pe.data()});
  }
  return m;
}

// ---------------------------------------------------------------------------

void PeerDirectory::Learn(NodeId id, PeerInfo info) {
  std::lock_guard<std::mutex> lock(mu_);
  peers_[id] = std::move(info);
}

std::map<NodeId, PeerInfo> PeerDirectory::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peers_;
}

void PeerDirectory::SetMembers(std::map<NodeId, std::vector<std::string>> peer_urls) {
  std::lock_guard<std::mutex> lock(mu_);
  member_urls_ = std::move(peer_urls);
}

std::map<NodeId, std::vector<std::string>> PeerDirectory::Members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return member_urls_;
}

std::optional<PeerInfo> PeerDirectory::Find(NodeId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------------------

class PeerTransport::Sender {
 public:
  Sender(PeerTransport* owner, NodeId peer, std::string address)
      : owner_(owner), peer_(peer), address_(std::move(address)), thread_([this] { Run(); }) {}
  ~Sender() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      if (ctx_) ctx_->TryCancel();
    }
    cv_.notify_one();
    thread_.join();
  }

  void Enqueue(raft::Message m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A peer that is down must not make us hold unbounded memory: Raft
      // resends what matters.
      if (queue_.size() >= 16 * kMaxBatchMessages) queue_.pop_front();
      queue_.push_back(std::move(m));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    auto backoff = std::chrono::milliseconds(50);
    while (!Stopped()) {
      auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
      auto stub = raftpb::Peer::NewStub(channel);
      bool ok = Session(stub.get());
      if (Stopped()) return;
      if (!ok) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, backoff, [this] { return stop_; });
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      } else {
        backoff = std::chrono::milliseconds(50);
      }
    }
  }

  bool Stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  // One connection: returns false when it broke.
  bool Session(raftpb::Peer::Stub* stub) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return true;
      ctx_ = ctx.get();
    }
    auto stream = stub->Stream(ctx.get());
    // Introduce ourselves at once (name and client URLs), so that every
    // member learns every other's client endpoints even if Raft never has
    // a message for that peer.
    raftpb::MessageBatch hello;
    hello.set_from(owner_->self_.value());
    hello.set_cluster_id(owner_->cluster_id_);
    hello.set_name(owner_->self_name_);
    for (const std::string& u : owner_->client_urls_) hello.add_client_urls(u);
    for (const auto& [id, info] : owner_->directory_->All()) {
      if (id == peer_) continue;
      raftpb::MemberInfo* m = hello.add_known();
      m->set_id(id.value());
      m->set_name(info.name);
      for (const std::string& u : info.client_urls) m->add_client_urls(u);
    }
    bool healthy = stream->Write(hello);
    while (healthy) {
      std::vector<raft::Message> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        // An idle stream says hello every second: that notices a peer that
        // restarted (the write fails, we reconnect) and tells it our client
        // URLs again.
        cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_ || !queue_.empty(); });
        if (stop_) break;
        while (!queue_.empty() && batch.size() < kMaxBatchMessages) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      raftpb::MessageBatch out;
      out.set_from(owner_->self_.value());
      out.set_cluster_id(owner_->cluster_id_);
      out.set_name(owner_->self_name_);
      for (const std::string& u : owner_->client_urls_) out.add_client_urls(u);
      for (raft::Message& m : batch) {
        if (m.type == raft::MessageType::kSnapshot) {
          // Snapshots go on their own call; the stream keeps the rest moving
          // only after it (the follower needs it first anyway).
          owner_->report_(peer_, true, SendSnapshot(stub, m));
          continue;
        }
        ToProto(m, out.add_messages());
      }
      if ((out.messages_size() > 0 || batch.empty()) && !stream->Write(out)) {
        healthy = false;
        owner_->report_(peer_, false, false);
      }
    }
    stream->WritesDone();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ctx_ = nullptr;
    }
    ctx->TryCancel();
    stream->Finish();
    return healthy;
  }

  bool SendSnapshot(raftpb::Peer::Stub* stub, const raft::Message& m) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    raftpb::SnapshotAck ack;
    auto writer = stub->SendSnapshot(&ctx, &ack);
    const std::string file = storage::EncodeSnapshotFile(*m.snapshot);
    raftpb::SnapshotChunk first;
    ToProto(m, first.mutable_message());
    first.set_cluster_id(owner_->cluster_id_);
    bool ok = true;
    for (size_t off = 0; ok && (off < file.size() || off == 0); off += kSnapshotChunkBytes) {
      raftpb::SnapshotChunk chunk = off == 0 ? first : raftpb::SnapshotChunk{};
      chunk.set_data(file.substr(off, kSnapshotChunkBytes));
      ok = writer->Write(chunk);
      if (file.empty()) break;
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    return ok && s.ok() && ack.ok();
  }

  PeerTransport* owner_;
  NodeId peer_;
  std::string address_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<raft::Message> queue_;     // guarded by mu_
  bool stop_ = false;                   // guarded by mu_
  grpc::ClientContext* ctx_ = nullptr;  // guarded by mu_
  std::thread thread_;
};

PeerTransport::PeerTransport(NodeId self, std::string self_name, uint64_t cluster_id,
                             std::vector<std::string> client_urls, const PeerDirectory* directory,
                             Report report)
    : self_(self),
      self_name_(std::move(self_name)),
      cluster_id_(cluster_id),
      client_urls_(std::move(client_urls)),
      directory_(directory),
      report_(std::move(report)) {}

PeerTransport::~PeerTransport() { Stop(); }

void PeerTransport::Stop() {
  std::map<NodeId, std::unique_ptr<Sender>> senders;
  {
    std::lock_guard<std::mutex> lock(mu_);
    senders.swap(senders_);
  }
  senders.clear();
}

void PeerTransport::AddPeer(NodeId id, const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  senders_[id] = std::make_unique<Sender>(this, id, address);
  addresses_[id] = address;
}

void PeerTransport::SetPeers(const std::map<NodeId, std::string>& addresses) {
  std::vector<std::unique_ptr<Sender>> dropped;  // joined outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = senders_.begin(); it != senders_.end();) {
    auto want = addresses.find(it->first);
    if (want == addresses.end() || want->second != addresses_[it->first]) {
      dropped.push_back(std::move(it->second));
      addresses_.erase(it->first);
      it = senders_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [id, address] : addresses) {
    if (id == self_ || senders_.count(id)) continue;
    senders_[id] = std::make_unique<Sender>(this, id, address);
    addresses_[id] = address;
  }
}

void PeerTransport::Send(std::vector<raft::Message> messages) {
  std::lock_guard<std::mutex> lock(mu_);
  for (raft::Message& m : messages) {
    auto it = senders_.find(m.to);
    if (it != senders_.end()) it->second->Enqueue(std::move(m));
  }
}

// ---------------------------------------------------------------------------

// One peer's stream to us: reads batch after batch, each on the gRPC thread
// that received it, until the peer ends the stream or its process dies.
class PeerService::StreamReader final
    : public grpc::ServerBidiReactor<raftpb::MessageBatch, raftpb::StreamAck> {
 public:
  explicit StreamReader(PeerService* service) : service_(service) { StartRead(&batch_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (grpc::Status s = service_->Receive(batch_); !s.ok()) {
      Finish(s);
      return;
    }
    from_ = NodeId(batch_.from());
    StartRead(&batch_);
  }

  void OnDone() override {
    if (from_ != kNoNode && service_->lost_) service_->lost_(from_);
    delete this;
  }

 private:
  PeerService* service_;
  raftpb::MessageBatch batch_;
  NodeId from_ = kNoNode;
};

grpc::ServerBidiReactor<raftpb::MessageBatch, raftpb::StreamAck>* PeerService::Stream(
    grpc::CallbackServerContext*) {
  return new StreamReader(this);
}

grpc::Status PeerService::Receive(const raftpb::MessageBatch& batch) {
  if (batch.cluster_id() != cluster_id_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "peer belongs to cluster " + std::to_string(batch.cluster_id()) +
                            ", this member to " + std::to_string(cluster_id_));
  }
  directory_->Learn(
      NodeId(batch.from()),
      PeerInfo{batch.name(), {batch.client_urls().begin(), batch.client_urls().end()}});
  for (const raftpb::MemberInfo& m : batch.known()) {
    // What the sender heard from that member; the member's own word, when
    // it arrives, replaces it.
    if (m.id() == 0 || m.id() == batch.from() || directory_->Find(NodeId(m.id()))) continue;
    directory_->Learn(NodeId(m.id()),
                      PeerInfo{m.name(), {m.client_urls().begin(), m.client_urls().end()}});
  }
  std::vector<raft::Message> messages;
  messages.reserve(batch.messages_size());
  for (const raftpb::Message& pm : batch.messages()) {
    Result<raft::Message> m = FromProto(pm);
    if (m.ok()) messages.push_back(std::move(m).value());
  }
  if (!messages.empty()) deliver_(std::move(messages));
  return grpc::Status::OK;
}

grpc::Status PeerService::SendSnapshot(grpc::ServerContext*,
                                       grpc::ServerReader<raftpb::SnapshotChunk>* reader,
                                       raftpb::SnapshotAck* ack) {
  raftpb::SnapshotChunk chunk;
  std::string file;
  raftpb::Message header;
  bool first = true;
  while (reader->Read(&chunk)) {
    if (first) {
      if (chunk.cluster_id() != cluster_id_) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "snapshot from another cluster");
      }
      header = chunk.message();
      first = false;
    }
    file += chunk.data();
  }
  Result<raft::Snapshot> snap = storage::DecodeSnapshotFile(file);
  Result<raft::Message> m = FromProto(header);
  if (!snap.ok() || !m.ok()) {
    ack->set_ok(false);
    ack->set_error(!snap.ok() ? snap.status().ToString() : m.status().ToString());
    return grpc::Status::OK;
  }
  m->snapshot = std::make_shared<const raft::Snapshot>(std::move(snap).value());
  std::vector<raft::Message> messages;
  messages.push_back(std::move(m).value());
  deliver_(std::move(messages));
  ack->set_ok(true);
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* PeerService::RenewLease(grpc::CallbackServerContext* c,
                                                  const raftpb::LeaseRenew* req,
                                                  raftpb::LeaseRenewed* resp) {
  // The node always answers (with a timeout at worst, node::Node::ReadBarrier).
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  renew_(req->id(), [reactor, resp](const Result<int64_t>& r) {
    if (r.ok()) {
      resp->set_ttl(*r);
    } else if (r.status().code() == ErrorCode::kNotFound) {
      resp->set_ttl(0);
    } else {
      resp->set_error(r.status().message());
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::Status PeerService::Join(grpc::ServerContext*, const raftpb::JoinRequest* req,
                               raftpb::JoinResponse* resp) {
  const std::map<NodeId, std::vector<std::string>> members = directory_->Members();
  NodeId found = kNoNode;
  for (const auto& [id, urls] : members) {
    for (const std::string& u : req->peer_urls()) {
      if (std::find(urls.begin(), urls.end(), u) != urls.end()) found = id;
    }
    auto* m = resp->add_members();
    m->set_id(id.value());
    for (const std::string& u : urls) m->add_peer_urls(u);
  }
  if (found == kNoNode) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "no member of this cluster has these peer URLs; add the member first "
            "(etcdctl member add NAME --peer-urls=URL)"};
  }
  resp->set_cluster_id(cluster_id_);
  resp->set_member_id(found.value());
  return grpc::Status::OK;
}

}  // namespace warden::server

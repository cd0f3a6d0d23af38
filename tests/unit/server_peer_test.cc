// The member-to-member transport: PeerTransport's streams into PeerService,
// over real gRPC on loopback.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "src/server/peer.h"

namespace warden::server {
namespace {

constexpr uint64_t kCluster = 77;

// A PeerService on a free loopback port that records what it is given.
class Receiver {
 public:
  Receiver()
      : service_(
            kCluster, &directory_,
            [this](std::vector<raft::Message> batch) {
              std::lock_guard<std::mutex> lock(mu_);
              for (raft::Message& m : batch) delivered_.push_back(std::move(m));
              cv_.notify_all();
            },
            [](int64_t, std::function<void(const Result<int64_t>&)> done) { done(int64_t{5}); },
            [this](NodeId peer) {
              std::lock_guard<std::mutex> lock(mu_);
              lost_.push_back(peer);
              cv_.notify_all();
            }) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~Receiver() { server_->Shutdown(std::chrono::system_clock::now()); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  PeerDirectory& directory() { return directory_; }

  std::vector<raft::Message> delivered() {
    std::lock_guard<std::mutex> lock(mu_);
    return delivered_;
  }

  // Waits (up to 10 s) until `done` holds over what was received.
  bool WaitFor(const std::function<bool(const std::vector<raft::Message>&,
                                        const std::vector<NodeId>&)>& done) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return done(delivered_, lost_); });
  }

 private:
  PeerDirectory directory_;
  PeerService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<raft::Message> delivered_;  // guarded by mu_
  std::vector<NodeId> lost_;              // guarded by mu_
};

raft::Message Append(NodeId from, NodeId to, uint64_t index) {
  raft::Message m;
  m.type = raft::MessageType::kAppend;
  m.from = from;
  m.to = to;
  m.term = Term(3);
  m.log_term = Term(3);
  m.index = Index(index);
  m.commit = Index(index);
  m.commit_only = index % 2 == 0;
  m.entries.push_back(raft::Entry{Term(3), Index(index + 1), raft::EntryType::kNormal,
                                  "e" + std::to_string(index)});
  return m;
}

// Opens a stream to `address` as a peer would, writes `batch` on it and
// ends it.
struct Sent {
  bool written = false;
  grpc::Status status;
};
Sent SendOneBatch(const std::string& address, const raftpb::MessageBatch& batch) {
  auto stub =
      raftpb::Peer::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->Stream(&ctx);
  Sent sent;
  sent.written = stream->Write(batch);
  stream->WritesDone();
  sent.status = stream->Finish();
  return sent;
}

TEST(PeerTest, MessagesArriveInOrderWithTheirFieldsAndTheSenderIntroducesItself) {
  Receiver receiver;
  ASSERT_NE(receiver.address(), "127.0.0.1:0");
  PeerDirectory own;
  PeerTransport transport(NodeId(2), "m2", kCluster, {"http://127.0.0.1:12"}, &own,
                          [](NodeId, bool, bool) {});
  transport.AddPeer(NodeId(1), receiver.address());
  constexpr int kMessages = 200;
  for (int i = 0; i < kMessages; ++i) {
    transport.Send({Append(NodeId(2), NodeId(1), 10 + i)});
  }
  ASSERT_TRUE(receiver.WaitFor(
      [](const std::vector<raft::Message>& got, const auto&) { return got.size() >= kMessages; }));
  const std::vector<raft::Message> got = receiver.delivered();
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    const raft::Message& m = got[i];
    EXPECT_EQ(m.type, raft::MessageType::kAppend);
    EXPECT_EQ(m.from, NodeId(2));
    EXPECT_EQ(m.to, NodeId(1));
    EXPECT_EQ(m.term, Term(3));
    EXPECT_EQ(m.index, Index(10 + i));
    EXPECT_EQ(m.commit_only, (10 + i) % 2 == 0);
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0].index, Index(11 + i));
    EXPECT_EQ(m.entries[0].data, "e" + std::to_string(10 + i));
  }
  std::optional<PeerInfo> info = receiver.directory().Find(NodeId(2));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->name, "m2");
  EXPECT_EQ(info->client_urls, std::vector<std::string>{"http://127.0.0.1:12"});

  // The sender going away ends its stream: the receiver hears the peer is
  // lost (a follower campaigns at once when its leader's process died).
  transport.Stop();
  EXPECT_TRUE(receiver.WaitFor([](const auto&, const std::vector<NodeId>& lost) {
    return std::find(lost.begin(), lost.end(), NodeId(2)) != lost.end();
  }));
}

TEST(PeerTest, AStreamFromAnotherClusterIsRefusedAndDeliversNothing) {
  Receiver receiver;
  raftpb::MessageBatch batch;
  batch.set_from(9);
  batch.set_cluster_id(kCluster + 1);
  batch.set_name("stranger");
  ToProto(Append(NodeId(9), NodeId(1), 1), batch.add_messages());
  const grpc::Status s = SendOneBatch(receiver.address(), batch).status;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("cluster " + std::to_string(kCluster + 1)), std::string::npos)
      << s.error_message();
  EXPECT_FALSE(receiver.directory().Find(NodeId(9)).has_value());
  // The refusal is sent after the batch was looked at: nothing of it came
  // through.
  EXPECT_TRUE(receiver.delivered().empty());
}

TEST(PeerTest, AMessageOfAnUnknownTypeIsDroppedAndTheRestOfItsBatchDelivered) {
  Receiver receiver;
  raftpb::MessageBatch batch;
  batch.set_from(3);
  batch.set_cluster_id(kCluster);
  ToProto(Append(NodeId(3), NodeId(1), 1), batch.add_messages());
  batch.add_messages()->set_type(250);
  ToProto(Append(NodeId(3), NodeId(1), 2), batch.add_messages());
  const Sent sent = SendOneBatch(receiver.address(), batch);
  ASSERT_TRUE(sent.written);
  EXPECT_TRUE(sent.status.ok()) << sent.status.error_message();
  EXPECT_TRUE(receiver.WaitFor([](const std::vector<raft::Message>& got, const auto& lost) {
    return got.size() == 2 && got[0].index == Index(1) && got[1].index == Index(2) &&
           lost.size() == 1;
  }));
}

}  // namespace
}  // namespace warden::server

// NodeHost: the node loop and the peers' shortcut onto it (RunOrPost).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "src/raft/types.h"
#include "src/server/node_host.h"
#include "src/state/state_machine.h"
#include "tests/unit/storage_test_util.h"

namespace warden::server {
namespace {

class NullTransport final : public node::Transport {
 public:
  void Send(std::vector<raft::Message>) override {}
};

// A bootstrapped one-member store, as `warden` makes for a new cluster.
std::unique_ptr<storage::LogStore> OneMemberStore(const std::string& dir) {
  Result<std::unique_ptr<storage::LogStore>> store =
      storage::LogStore::Open(storage::Env::Default(), dir, {});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  raft::Snapshot boot = raft::BootstrapSnapshot({NodeId(1)});
  boot.data =
      state::StateMachine::BootstrapImage(boot.metadata.index, {{1, "m1", {"http://127.0.0.1:1"}}});
  EXPECT_TRUE((*store)->Save(boot, {}, std::nullopt, true).ok());
  return std::move(store).value();
}

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Peers connect as soon as the peer port listens, before the node has
// started: their messages must wait for the loop, not step a node that has
// not loaded its state (a restarted member crashed so in a benchmark).
TEST(NodeHostTest, PeerBatchesBeforeStartWaitForTheNodeToStart) {
  storage::testing::TempDir dir;
  NullTransport transport;
  node::NodeConfig config;
  config.raft.id = NodeId(1);
  config.raft.seed = 1;
  NodeHost host(config, OneMemberStore(dir.path()), &transport, 10);
  std::atomic<int> ran{0};
  std::atomic<bool> started_when_run{false};
  host.RunOrPost([&](node::Node& n) {
    started_when_run = n.conf_state().voters.size() == 1;
    ++ran;
  });
  EXPECT_EQ(ran.load(), 0);
  ASSERT_TRUE(host.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return ran.load() == 1; }));
  EXPECT_TRUE(started_when_run.load());

  // Started: a batch runs, on this thread or the loop, and in order with
  // what was posted before it.
  std::vector<int> order;
  std::mutex mu;
  host.Post([&](node::Node&) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(1);
  });
  host.RunOrPost([&](node::Node&) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(2);
  });
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return order.size() == 2;
  }));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  host.Stop();
}

}  // namespace
}  // namespace warden::server

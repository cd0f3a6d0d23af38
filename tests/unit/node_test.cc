// Tests of the node driver over an in-memory cluster: proposals reach their
// results, read barriers, lease expiry through the log, renewals, and lease
// time carried across a leader change.
#include "src/node/node.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>

namespace warden::node {
namespace {

class FakeClock : public Clock {
 public:
  int64_t NowMs() override { return now_ms; }
  int64_t now_ms = 1000;
};

// Persists synchronously into a MemoryStorage.
class MemoryLog : public ViewedDurableLog {
 public:
  MemoryLog() : ViewedDurableLog(&mem) {}
  void Persist(const std::optional<raft::Snapshot>& snap, const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hs, bool,
               std::function<void(const Status&)> done) override {
    if (fail) return done(Status(ErrorCode::kNoSpace, "no space left on device"));
    if (snap) (void)mem.ApplySnapshot(*snap);
    mem.Append(entries);
    if (hs) mem.SetHardState(*hs);
    done(Status::Ok());
  }
  Status CreateSnapshot(Index applied, const raft::ConfState& cs, std::string data) override {
    ++snapshots;
    Status s = mem.CreateSnapshot(applied, cs, std::move(data));
    if (!s.ok()) return s;
    return mem.Compact(applied);
  }
  raft::MemoryStorage mem;
  bool fail = false;
  int snapshots = 0;
};

class Cluster;

class QueueTransport : public Transport {
 public:
  explicit QueueTransport(std::deque<raft::Message>* q) : q_(q) {}
  void Send(std::vector<raft::Message> ms) override {
    for (auto& m : ms) q_->push_back(std::move(m));
  }

 private:
  std::deque<raft::Message>* q_;
};

class Cluster {
 public:
  explicit Cluster(int n, uint64_t snapshot_count = 10000, bool forward_proposals = true,
                   bool same_id_prefix = false)
      : transport_(&queue_) {
    std::vector<NodeId> voters;
    for (int i = 1; i <= n; ++i) voters.push_back(NodeId(i));
    for (int i = 1; i <= n; ++i) {
      auto log = std::make_unique<MemoryLog>();
      EXPECT_TRUE(log->mem.ApplySnapshot(raft::BootstrapSnapshot(voters)).ok());
      NodeConfig c;
      c.raft.id = NodeId(i);
      // same_id_prefix: the seed cancels the member id out of the proposal
      // id prefix, as the server's seed once did.
      c.raft.seed = same_id_prefix ? 7 ^ static_cast<uint64_t>(i) : 7;
      c.snapshot_count = snapshot_count;
      c.lease_checkpoint_interval_ms = 1000;
      c.forward_proposals = forward_proposals;
      auto node = std::make_unique<Node>(c, log.get(), &transport_, &clock);
      logs_.push_back(std::move(log));
      nodes_.push_back(std::move(node));
    }
    for (auto& node : nodes_) EXPECT_TRUE(node->Start().ok());
  }

  void Deliver() {
    for (int guard = 0; guard < 100000 && !queue_.empty(); ++guard) {
      raft::Message m = std::move(queue_.front());
      queue_.pop_front();
      if (down_.count(m.to.value()) || down_.count(m.from.value())) continue;
      if (duplicate_forwards && m.type == raft::MessageType::kPropose) {
        nodes_[m.to.value() - 1]->Step(m);  // delivered twice
      }
      nodes_[m.to.value() - 1]->Step(m);
    }
  }
  // Advances time by one 100 ms tick on every live node.
  void Tick() {
    clock.now_ms += 100;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!down_.count(i + 1)) nodes_[i]->Tick();
    }
    Deliver();
  }
  Node* Leader() {
    for (int i = 0; i < 200; ++i) {
      for (size_t k = 0; k < nodes_.size(); ++k) {
        if (!down_.count(k + 1) && nodes_[k]->IsLeader()) return nodes_[k].get();
      }
      Tick();
    }
    return nullptr;
  }
  Node* node(int id) { return nodes_[id - 1].get(); }
  MemoryLog* log(int id) { return logs_[id - 1].get(); }
  void Isolate(int id) { down_.insert(id); }

  FakeClock clock;
  bool duplicate_forwards = false;

 private:
  std::deque<raft::Message> queue_;
  QueueTransport transport_;
  std::vector<std::unique_ptr<MemoryLog>> logs_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::set<uint64_t> down_;
};

state::Command Put(const std::string& k, const std::string& v, int64_t lease = 0) {
  state::Command c;
  c.type = state::CommandType::kTxn;
  state::PutRequest p;
  p.key = k;
  p.value = v;
  p.lease = lease;
  c.txn.success.push_back(state::RequestOp{p});
  return c;
}

state::Command Grant(int64_t id, int64_t ttl) {
  state::Command c;
  c.type = state::CommandType::kLeaseGrant;
  c.lease_id = id;
  c.ttl_seconds = ttl;
  return c;
}

// Proposes and runs the cluster until the result arrives.
state::ApplyResult MustPropose(Cluster& c, Node* n, state::Command cmd) {
  std::optional<state::ApplyResult> got;
  n->Propose(std::move(cmd), [&](const state::ApplyResult& r) { got = r; });
  for (int i = 0; i < 100 && !got; ++i) c.Tick();
  EXPECT_TRUE(got.has_value());
  return got.value_or(state::ApplyResult{});
}

TEST(NodeTest, ProposalReturnsItsApplyResultAndReplicates) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  state::ApplyResult r = MustPropose(c, leader, Put("k", "v"));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.revision, 2);
  for (int t = 0; t < 5; ++t) c.Tick();
  for (int id = 1; id <= 3; ++id) {
    ASSERT_TRUE(c.node(id)->state().kv().Get("k").has_value()) << "node " << id;
    EXPECT_EQ(c.node(id)->state().Digest(), leader->state().Digest());
  }
}

TEST(NodeTest, FollowerForwardsProposalsAndAnswersOnceItApplied) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  Node* follower = leader == c.node(1) ? c.node(2) : c.node(1);
  std::optional<state::ApplyResult> got;
  follower->Propose(Put("k", "v"), [&](const state::ApplyResult& r) {
    got = r;
    // Answered from this member's own apply: it already holds the write.
    EXPECT_TRUE(follower->state().kv().Get("k").has_value());
  });
  EXPECT_FALSE(got.has_value());  // not refused: on its way to the leader
  for (int i = 0; i < 20 && !got; ++i) c.Tick();
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->status.ok()) << got->status.ToString();
  EXPECT_EQ(got->revision, 2);
  EXPECT_TRUE(leader->state().kv().Get("k").has_value());
}

// Regression (warden-sim seeds 28 and 39, network duplication): a forwarded
// proposal delivered twice was appended twice, so a put landed again after
// later writes and a read saw a value already overwritten.
TEST(NodeTest, DuplicatedForwardIsAppendedOnce) {
  Cluster c(3);
  c.duplicate_forwards = true;
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  Node* follower = leader == c.node(1) ? c.node(2) : c.node(1);
  state::ApplyResult r = MustPropose(c, follower, Put("k", "v"));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.revision, 2);
  r = MustPropose(c, follower, Put("k", "w"));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  for (int t = 0; t < 5; ++t) c.Tick();
  // Two writes, two revisions: neither was applied a second time.
  EXPECT_EQ(leader->state().kv().current_revision(), 3);
  EXPECT_EQ(leader->state().kv().Get("k")->value, "w");
}

// Regression (chaos harness, net x register seed 1013 and partition x
// sessions seed 1018): two members drew the same proposal ids, and a
// follower answered its client with the result of the leader's entry of the
// same id: a compare-and-set reported a success that never happened, and a
// put was answered with a lease grant's result (the member aborted).
TEST(NodeTest, AnotherMembersEntryWithTheSameProposalIdIsNotOurAnswer) {
  Cluster c(3, 10000, true, /*same_id_prefix=*/true);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  Node* follower = leader == c.node(1) ? c.node(2) : c.node(1);
  std::optional<state::ApplyResult> mine, theirs;
  leader->Propose(Put("k", "leader"), [&](const state::ApplyResult& r) { theirs = r; });
  follower->Propose(Put("k", "follower"), [&](const state::ApplyResult& r) { mine = r; });
  for (int i = 0; i < 30 && !(mine && theirs); ++i) c.Tick();
  ASSERT_TRUE(mine.has_value() && theirs.has_value());
  ASSERT_TRUE(mine->status.ok()) << mine->status.ToString();
  ASSERT_TRUE(theirs->status.ok()) << theirs->status.ToString();
  ASSERT_EQ(mine->proposal_id, theirs->proposal_id) << "the test needs colliding ids";
  // Each got the revision of its own write.
  EXPECT_NE(mine->revision, theirs->revision);
  state::RangeOptions o;
  o.range.key = "k";
  o.revision = mine->revision;
  Result<state::RangeResult> at = follower->state().kv().Range(o);
  ASSERT_TRUE(at.ok());
  ASSERT_EQ(at->kvs.size(), 1u);
  EXPECT_EQ(at->kvs[0].value, "follower");
}

TEST(NodeTest, FollowerRefusesProposalsWithNotLeaderWhenNotForwarding) {
  Cluster c(3, 10000, /*forward_proposals=*/false);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  Node* follower = leader == c.node(1) ? c.node(2) : c.node(1);
  std::optional<Status> s;
  follower->Propose(Put("k", "v"), [&](const state::ApplyResult& r) { s = r.status; });
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->code(), ErrorCode::kNotLeader);
}

TEST(NodeTest, ReadBarrierOnFollowerWaitsForTheLeadersCommit) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  MustPropose(c, leader, Put("k", "v"));
  Node* follower = leader == c.node(1) ? c.node(2) : c.node(1);
  std::optional<Status> s;
  follower->ReadBarrier([&](const Status& st) {
    s = st;
    // At the barrier the follower has applied the write.
    EXPECT_TRUE(follower->state().kv().Get("k").has_value());
  });
  for (int i = 0; i < 20 && !s; ++i) c.Tick();
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->ok()) << s->ToString();
}

// Regression (found by the learner membership integration test): a read
// asked before the member knew a leader was dropped by Raft and waited for
// the whole request timeout (5 s).
TEST(NodeTest, ReadBarrierAskedBeforeALeaderIsKnownCompletesOnceOneIs) {
  Cluster c(3);
  Node* n1 = c.node(1);
  ASSERT_EQ(n1->leader(), kNoNode);
  std::optional<Status> s;
  n1->ReadBarrier([&](const Status& st) { s = st; });
  ASSERT_NE(c.Leader(), nullptr);
  const int64_t elected_ms = c.clock.now_ms;
  for (int i = 0; i < 50 && !s; ++i) c.Tick();
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->ok()) << s->ToString();
  EXPECT_LE(c.clock.now_ms - elected_ms, 1000) << "the read waited for its timeout";
}

TEST(NodeTest, ProposalTimesOutWithoutQuorum) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  for (int id = 1; id <= 3; ++id) {
    if (c.node(id) != leader) c.Isolate(id);
  }
  std::optional<Status> s;
  leader->Propose(Put("k", "v"), [&](const state::ApplyResult& r) { s = r.status; });
  for (int i = 0; i < 100 && !s; ++i) c.Tick();
  ASSERT_TRUE(s.has_value());
  // Check-quorum makes the leader step down; the proposal fails either way.
  EXPECT_EQ(s->code(), ErrorCode::kTimeout) << s->ToString();
}

TEST(NodeTest, LeaseExpiresThroughTheLogAndDeletesItsKeys) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(MustPropose(c, leader, Grant(5, 3)).status.ok());
  ASSERT_TRUE(MustPropose(c, leader, Put("eph", "x", 5)).status.ok());
  const int64_t granted_at = c.clock.now_ms;
  while (c.clock.now_ms - granted_at < 2500) {
    c.Tick();
    ASSERT_TRUE(leader->state().kv().Get("eph").has_value()) << "expired early";
  }
  for (int i = 0; i < 15; ++i) c.Tick();
  EXPECT_FALSE(leader->state().kv().Get("eph").has_value());
  EXPECT_FALSE(leader->state().leases().Exists(5));
  for (int id = 1; id <= 3; ++id) EXPECT_FALSE(c.node(id)->state().leases().Exists(5));
}

TEST(NodeTest, KeepAliveKeepsALeaseAlive) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(MustPropose(c, leader, Grant(6, 2)).status.ok());
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 10; ++i) c.Tick();  // one second
    std::optional<Result<int64_t>> ttl;
    leader->KeepAlive(6, [&](const Result<int64_t>& r) { ttl = r; });
    for (int i = 0; i < 10 && !ttl; ++i) c.Tick();
    ASSERT_TRUE(ttl.has_value());
    ASSERT_TRUE(ttl->ok()) << ttl->status().ToString();
    EXPECT_EQ(**ttl, 2);
  }
  EXPECT_TRUE(leader->state().leases().Exists(6));
}

// Regression (chaos harness, zombie x sessions seed 23): a leader cut off
// from the others acknowledged keep-alives from its own clock while a new
// leader, counting the lease from its election, revoked it sooner.
TEST(NodeTest, AnIsolatedLeaderDoesNotAcknowledgeKeepAlives) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(MustPropose(c, leader, Grant(9, 2)).status.ok());
  for (int id = 1; id <= 3; ++id) {
    if (c.node(id) == leader) c.Isolate(id);
  }
  std::optional<Result<int64_t>> ttl;
  leader->KeepAlive(9, [&](const Result<int64_t>& r) { ttl = r; });
  for (int i = 0; i < 100 && !ttl; ++i) c.Tick();
  if (ttl.has_value()) {
    EXPECT_FALSE(ttl->ok()) << "an isolated leader acknowledged a keep-alive with TTL " << **ttl;
  }
}

TEST(NodeTest, AnExpiredLeaseIsNotRenewed) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(MustPropose(c, leader, Grant(10, 1)).status.ok());
  // Cut the leader off just before the lease runs out on its clock, so that
  // its revoke cannot commit; a keep-alive after the deadline (the leader
  // still leads: check-quorum takes an election timeout) must not bring the
  // lease back.
  int old_id = 0;
  for (int id = 1; id <= 3; ++id) {
    if (c.node(id) == leader) old_id = id;
  }
  const int64_t granted_at = c.clock.now_ms;
  while (c.clock.now_ms - granted_at < 800) c.Tick();
  c.Isolate(old_id);
  while (c.clock.now_ms - granted_at < 1200) c.Tick();
  ASSERT_TRUE(leader->IsLeader());
  ASSERT_TRUE(leader->state().leases().Exists(10));
  std::optional<Result<int64_t>> ttl;
  leader->KeepAlive(10, [&](const Result<int64_t>& r) { ttl = r; });
  for (int i = 0; i < 100 && !ttl; ++i) c.Tick();
  ASSERT_TRUE(ttl.has_value());
  EXPECT_EQ(ttl->status().code(), ErrorCode::kNotFound) << ttl->status().ToString();
}

TEST(NodeTest, NewLeaderResumesFromTheCheckpointNotTheFullTtl) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(MustPropose(c, leader, Grant(7, 20)).status.ok());
  // Let checkpoints record the remaining time for a while.
  for (int i = 0; i < 80; ++i) c.Tick();  // 8 s
  int old_id = 0;
  for (int id = 1; id <= 3; ++id) {
    if (c.node(id) == leader) old_id = id;
  }
  c.Isolate(old_id);
  Node* next = c.Leader();
  ASSERT_NE(next, nullptr);
  ASSERT_NE(next, leader);
  Result<int64_t> left = next->LeaseRemainingMs(7);
  ASSERT_TRUE(left.ok());
  // About 20 - 8 - (election time) seconds left, certainly not the full 20 s,
  // and not less than what the old leader had left when it last checkpointed.
  EXPECT_LT(*left, 14000);
  EXPECT_GT(*left, 8000);
}

TEST(NodeTest, SnapshotsAreTakenEverySnapshotCountEntries) {
  Cluster c(3, /*snapshot_count=*/5);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  for (int i = 0; i < 12; ++i) MustPropose(c, leader, Put("k" + std::to_string(i), "v"));
  for (int id = 1; id <= 3; ++id) EXPECT_GE(c.log(id)->snapshots, 2) << "node " << id;
}

TEST(NodeTest, DiskFailureRefusesWritesButKeepsTheState) {
  Cluster c(3);
  Node* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  MustPropose(c, leader, Put("k", "v"));
  for (int id = 1; id <= 3; ++id) c.log(id)->fail = true;
  std::optional<Status> s;
  leader->Propose(Put("k2", "v"), [&](const state::ApplyResult& r) { s = r.status; });
  for (int i = 0; i < 5 && !s; ++i) c.Tick();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->code(), ErrorCode::kNoSpace);
  EXPECT_EQ(leader->disk_failure().code(), ErrorCode::kNoSpace);
  EXPECT_TRUE(leader->state().kv().Get("k").has_value());  // reads still served
  leader->Propose(Put("k3", "v"), [&](const state::ApplyResult& r) { s = r.status; });
  EXPECT_EQ(s->code(), ErrorCode::kNoSpace);
}

}  // namespace
}  // namespace warden::node

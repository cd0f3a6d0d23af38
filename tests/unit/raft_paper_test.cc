// One test per claim of the Raft paper ("In Search of an Understandable
// Consensus Algorithm", extended version) and of the Raft thesis (Ongaro,
// 2014), in the manner of etcd-io/raft's raft_paper_test.go. Each test names
// the section it checks. Unless a test says otherwise, nodes run the paper's
// algorithm: no pre-vote and no check-quorum.
//
// Terms are written relative to the term a node starts with, so that the tests
// do not depend on whether a bootstrapped node starts in term 0 or 1. Index 1
// is always the bootstrap snapshot (term 1).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "src/base/random.h"
#include "tests/unit/raft_test_network.h"

namespace warden::raft {
namespace {

using test::Ids;
using test::Join;
using test::MakeAppend;
using test::MakeAppendResponse;
using test::MakeEntry;
using test::MakeVote;
using test::MakeVoteResponse;
using test::OfType;
using test::RaftTestNetwork;

constexpr NodeId kNode1{1};
constexpr NodeId kNode2{2};
constexpr NodeId kNode3{3};
constexpr NodeId kNode4{4};
constexpr NodeId kNode5{5};
constexpr int kElectionTicks = 10;

// The algorithm as the paper states it.
void PaperConfig(Config& c) {
  c.pre_vote = false;
  c.check_quorum = false;
  c.election_ticks = kElectionTicks;
  c.heartbeat_ticks = 1;
}

// Messages in `msgs` of type `t` addressed to `to`.
std::vector<Message> To(const std::vector<Message>& msgs, MessageType t, NodeId to) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (m.type == t && m.to == to) out.push_back(m);
  }
  return out;
}

// Builds a log from the terms of indexes 1..n (Figure 7 notation); index 1 is
// the bootstrap snapshot, so terms[0] must be 1 and is not stored as an entry.
std::vector<Entry> LogFromTerms(const std::vector<uint64_t>& terms) {
  std::vector<Entry> out;
  for (size_t i = 1; i < terms.size(); ++i) {
    const uint64_t index = i + 1;
    out.push_back(
        MakeEntry(index, terms[i], "i" + std::to_string(index) + "t" + std::to_string(terms[i])));
  }
  return out;
}

// Makes node 1 leader by feeding it grants from `voters` (hand-driven).
void MakeLeaderByHand(RaftTestNetwork& net, const std::vector<NodeId>& voters) {
  net.raw(kNode1).Campaign();
  net.ProcessReady(kNode1);
  net.TakeMessages();
  const Term t = net.raw(kNode1).term();
  for (NodeId v : voters) {
    ASSERT_TRUE(net.Step(MakeVoteResponse(v.value(), 1, t, false)).ok());
  }
  ASSERT_EQ(net.raw(kNode1).role(), Role::kLeader);
  net.ProcessReady(kNode1);
  net.TakeMessages();
}

// --- Section 5.1: terms ----------------------------------------------------

TEST(RaftPaperTest, FollowerUpdatesTermOnHigherTermMessage) {
  // Raft paper section 5.1: "If one server's current term is smaller than
  // the other's, then it updates its current term to the larger value."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term();
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t + 2, 1, 1, {}, 1)).ok());
  EXPECT_EQ(net.raw(kNode1).term(), t + 2);
  EXPECT_EQ(net.raw(kNode1).role(), Role::kFollower);
  EXPECT_EQ(net.raw(kNode1).leader(), kNode2);
  // Figure 2: currentTerm is persistent state.
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.storage(kNode1).hard_state().term, t + 2);
}

TEST(RaftPaperTest, CandidateRevertsToFollowerOnHigherTerm) {
  // Raft paper section 5.1: "If a candidate or leader discovers that its term
  // is out of date, it immediately reverts to follower state."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  net.raw(kNode1).Campaign();
  ASSERT_EQ(net.raw(kNode1).role(), Role::kCandidate);
  const Term t = net.raw(kNode1).term();
  // A vote request from a higher term (no leader known yet).
  ASSERT_TRUE(net.Step(MakeVote(3, 1, t + 1, 1, 1)).ok());
  EXPECT_EQ(net.raw(kNode1).role(), Role::kFollower);
  EXPECT_EQ(net.raw(kNode1).term(), t + 1);
}

TEST(RaftPaperTest, LeaderRevertsToFollowerOnHigherTerm) {
  // Raft paper section 5.1: a leader that sees a higher term steps down.
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  ASSERT_TRUE(net.ElectLeader(kNode1));
  const Term t = net.raw(kNode1).term();
  const Index last = net.status(kNode1).last_index;
  // Node 2 has become leader of term t+1 and sends an append.
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t + 1, last.value(), t.value(), {}, last.value())).ok());
  EXPECT_EQ(net.raw(kNode1).role(), Role::kFollower);
  EXPECT_EQ(net.raw(kNode1).term(), t + 1);
  EXPECT_EQ(net.raw(kNode1).leader(), kNode2);
}

TEST(RaftPaperTest, StaleTermAppendIsRejected) {
  // Raft paper section 5.1: "If a server receives a request with a stale
  // term number, it rejects the request."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term();
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t + 2, 1, 1, {}, 1)).ok());
  net.ProcessReady(kNode1);
  net.TakeMessages();
  // A deposed leader of term t+1 tries to append an entry.
  ASSERT_TRUE(
      net.Step(MakeAppend(3, 1, t + 1, 1, 1, {MakeEntry(2, (t + 1).value(), "stale")}, 2)).ok());
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.raw(kNode1).term(), t + 2);
  EXPECT_EQ(net.raw(kNode1).leader(), kNode2);
  EXPECT_EQ(net.storage(kNode1).LastIndex(), Index(1));
  EXPECT_TRUE(net.applied(kNode1).empty());
  for (const Message& m : net.TakeMessages()) {
    EXPECT_EQ(m.term, t + 2) << "a reply must carry the current term so the sender steps down";
    if (m.type == MessageType::kAppendResponse) {
      EXPECT_FALSE(!m.reject && m.index >= Index(2)) << "the stale entry was acknowledged";
    }
  }
}

TEST(RaftPaperTest, CurrentTermIsNeverBelowLastLogTerm) {
  // Raft paper section 5.1 / Figure 2: entries carry the term of the leader
  // that created them and terms only grow, so a server's currentTerm is at
  // least the term of its last entry (LogCabin checks the same invariant in
  // RaftConsensusInvariants). A bootstrapped member holds the snapshot at
  // index 1, term 1; its first leader must therefore lead a term above 1,
  // so that its no-op is distinguishable from the bootstrap state.
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  for (NodeId id : net.ids()) {
    EXPECT_GE(net.raw(id).term(), Term(1)) << "node " << id;
  }
  ASSERT_TRUE(net.ElectLeader(kNode1));
  EXPECT_GT(net.raw(kNode1).term(), Term(1));
}

TEST(RaftPaperTest, StaleTermVoteIsRejected) {
  // Raft paper section 5.1 (Figure 2, RequestVote receiver rule 1): "Reply
  // false if term < currentTerm."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term();
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t + 2, 1, 1, {}, 1)).ok());
  net.ProcessReady(kNode1);
  net.TakeMessages();
  ASSERT_TRUE(net.Step(MakeVote(3, 1, t + 1, 5, (t + 1).value())).ok());
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.raw(kNode1).term(), t + 2);
  EXPECT_EQ(net.status(kNode1).vote, kNoNode);
  for (const Message& m : To(net.TakeMessages(), MessageType::kVoteResponse, kNode3)) {
    EXPECT_TRUE(m.reject);
  }
}

// --- Section 5.2: leader election -----------------------------------------

TEST(RaftPaperTest, ServersStartAsFollowers) {
  // Raft paper section 5.2: "When servers start up, they begin as followers."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  for (NodeId id : net.ids()) {
    EXPECT_EQ(net.raw(id).role(), Role::kFollower) << "node " << id;
    EXPECT_EQ(net.raw(id).leader(), kNoNode) << "node " << id;
  }
  // A restarted leader also comes back as a follower.
  ASSERT_TRUE(net.ElectLeader(kNode1));
  net.Restart(kNode1);
  EXPECT_EQ(net.raw(kNode1).role(), Role::kFollower);
}

TEST(RaftPaperTest, LeaderSendsHeartbeatsEveryHeartbeatInterval) {
  // Raft paper section 5.2: "Leaders send periodic heartbeats (AppendEntries
  // RPCs that carry no log entries) to all followers in order to maintain
  // their authority."
  RaftTestNetwork net(Ids({1, 2, 3}), [](Config& c) {
    PaperConfig(c);
    c.heartbeat_ticks = 2;
  });
  ASSERT_TRUE(net.ElectLeader(kNode1));
  const Term t = net.raw(kNode1).term();
  auto beats_to = [&](const std::vector<Message>& msgs, NodeId to) {
    int n = 0;
    for (const Message& m : msgs) {
      const bool beat = m.type == MessageType::kHeartbeat ||
                        (m.type == MessageType::kAppend && m.entries.empty());
      if (beat && m.to == to && m.term == t) ++n;
    }
    return n;
  };
  net.Tick(kNode1);
  net.ProcessReady(kNode1);
  const std::vector<Message> after_one = net.TakeMessages();
  EXPECT_EQ(beats_to(after_one, kNode2), 0) << "heartbeat before the interval elapsed";
  net.Tick(kNode1);
  net.ProcessReady(kNode1);
  const std::vector<Message> after_two = net.TakeMessages();
  EXPECT_EQ(beats_to(after_two, kNode2), 1);
  EXPECT_EQ(beats_to(after_two, kNode3), 1);
}

TEST(RaftPaperTest, FollowerStartsElectionAfterElectionTimeout) {
  // Raft paper section 5.2: a follower that hears nothing for an election
  // timeout "increments its current term and transitions to candidate state.
  // It then votes for itself and issues RequestVote RPCs in parallel to each
  // of the other servers."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term();
  int ticks = 0;
  while (net.raw(kNode1).role() == Role::kFollower && ticks < 2 * kElectionTicks) {
    net.Tick(kNode1);
    ++ticks;
  }
  ASSERT_EQ(net.raw(kNode1).role(), Role::kCandidate);
  EXPECT_EQ(net.raw(kNode1).term(), t + 1);
  EXPECT_EQ(net.status(kNode1).vote, kNode1);
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.storage(kNode1).hard_state().vote, kNode1);
  const std::vector<Message> msgs = net.TakeMessages();
  for (NodeId peer : {kNode2, kNode3}) {
    const std::vector<Message> votes = To(msgs, MessageType::kVote, peer);
    ASSERT_EQ(votes.size(), 1u) << "to node " << peer;
    EXPECT_EQ(votes[0].term, t + 1);
    EXPECT_EQ(votes[0].index, Index(1)) << "the candidate's last log index";
    EXPECT_EQ(votes[0].log_term, Term(1)) << "the candidate's last log term";
  }
}

TEST(RaftPaperTest, CandidateStartsNewElectionWhenNoOneWins) {
  // Raft paper section 5.2: "each candidate will time out and start a new
  // election by incrementing its term and initiating another round of
  // RequestVote RPCs."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  net.raw(kNode1).Campaign();
  const Term t = net.raw(kNode1).term();
  net.ProcessReady(kNode1);
  net.TakeMessages();  // the votes are lost
  int ticks = 0;
  while (net.raw(kNode1).term() == t && ticks < 2 * kElectionTicks) {
    net.Tick(kNode1);
    ++ticks;
  }
  EXPECT_GT(net.raw(kNode1).term(), t);
  EXPECT_EQ(net.raw(kNode1).role(), Role::kCandidate);
  net.ProcessReady(kNode1);
  const std::vector<Message> votes = OfType(net.TakeMessages(), MessageType::kVote);
  ASSERT_EQ(votes.size(), 2u);
  for (const Message& m : votes) EXPECT_EQ(m.term, net.raw(kNode1).term());
}

TEST(RaftPaperTest, ElectionTimeoutIsRandomizedBetweenTimeoutAndTwiceIt) {
  // Raft paper section 5.2: "Raft uses randomized election timeouts ...
  // election timeouts are chosen randomly from a fixed interval"; here
  // [election_ticks, 2*election_ticks) (raw_node.h).
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    RaftTestNetwork net(Ids({1, 2, 3}), [seed](Config& c) {
      PaperConfig(c);
      c.seed = seed;
    });
    int ticks = 0;
    while (net.raw(kNode1).role() == Role::kFollower && ticks < 3 * kElectionTicks) {
      net.Tick(kNode1);
      ++ticks;
    }
    EXPECT_GE(ticks, kElectionTicks) << "seed " << seed;
    EXPECT_LT(ticks, 2 * kElectionTicks) << "seed " << seed;
    seen.insert(ticks);
  }
  EXPECT_GE(seen.size(), 5u) << "timeouts are not spread over the interval";
}

TEST(RaftPaperTest, ElectionTimeoutDependsOnlyOnTheSeed) {
  // Determinism (STYLE habit 2): the same seed yields the same timeout.
  auto timeout_for = [](uint64_t seed) {
    RaftTestNetwork net(Ids({1, 2, 3}), [seed](Config& c) {
      PaperConfig(c);
      c.seed = seed;
    });
    int ticks = 0;
    while (net.raw(kNode1).role() == Role::kFollower && ticks < 3 * kElectionTicks) {
      net.Tick(kNode1);
      ++ticks;
    }
    return ticks;
  };
  for (uint64_t seed : {3u, 17u, 4242u}) EXPECT_EQ(timeout_for(seed), timeout_for(seed));
}

TEST(RaftPaperTest, VoteGrantedAtMostOncePerTerm) {
  // Raft paper section 5.2: "Each server will vote for at most one candidate
  // in a given term, on a first-come-first-served basis."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term();
  ASSERT_TRUE(net.Step(MakeVote(2, 1, t + 1, 1, 1)).ok());
  ASSERT_TRUE(net.Step(MakeVote(3, 1, t + 1, 1, 1)).ok());
  net.ProcessReady(kNode1);
  const std::vector<Message> msgs = net.TakeMessages();
  const std::vector<Message> to2 = To(msgs, MessageType::kVoteResponse, kNode2);
  const std::vector<Message> to3 = To(msgs, MessageType::kVoteResponse, kNode3);
  ASSERT_EQ(to2.size(), 1u);
  EXPECT_FALSE(to2[0].reject) << "the first candidate gets the vote";
  ASSERT_EQ(to3.size(), 1u);
  EXPECT_TRUE(to3[0].reject) << "a second candidate in the same term must not";
  EXPECT_EQ(net.status(kNode1).vote, kNode2);
  EXPECT_EQ(net.storage(kNode1).hard_state().vote, kNode2);
}

TEST(RaftPaperTest, VoteIsDurableBeforeTheReplyIsSent) {
  // Raft paper Figure 2: votedFor is persistent state, "updated on stable
  // storage before responding to RPCs" (raw_node.h: persist before sending).
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term();
  ASSERT_TRUE(net.Step(MakeVote(2, 1, t + 1, 1, 1)).ok());
  ASSERT_TRUE(net.raw(kNode1).HasReady());
  Ready rd = net.raw(kNode1).GetReady();
  bool granted = false;
  for (const Message& m : rd.messages) {
    if (m.type == MessageType::kVoteResponse && !m.reject) granted = true;
  }
  EXPECT_TRUE(granted);
  ASSERT_TRUE(rd.hard_state.has_value()) << "a granted vote must come with the hard state";
  EXPECT_EQ(rd.hard_state->vote, kNode2);
  EXPECT_EQ(rd.hard_state->term, t + 1);
  EXPECT_TRUE(rd.must_sync);
  net.raw(kNode1).Advance();
}

TEST(RaftPaperTest, CandidateWinsWithVotesFromMajority) {
  // Raft paper section 5.2: "A candidate wins an election if it receives
  // votes from a majority of the servers in the full cluster for the same
  // term."
  struct Case {
    std::vector<NodeId> cluster;
    std::vector<NodeId> grants;
    bool leader;
  };
  const std::vector<Case> cases = {
      {Ids({1}), {}, true},
      {Ids({1, 2, 3}), Ids({2}), true},
      {Ids({1, 2, 3}), {}, false},
      {Ids({1, 2, 3, 4, 5}), Ids({2, 3}), true},
      {Ids({1, 2, 3, 4, 5}), Ids({2}), false},
      {Ids({1, 2, 3, 4}), Ids({2}), false},
      {Ids({1, 2, 3, 4}), Ids({2, 3}), true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const Case& c = cases[i];
    RaftTestNetwork net(c.cluster, PaperConfig);
    net.raw(kNode1).Campaign();
    const Term t = net.raw(kNode1).term();
    for (NodeId g : c.grants) ASSERT_TRUE(net.Step(MakeVoteResponse(g.value(), 1, t, false)).ok());
    EXPECT_EQ(net.raw(kNode1).role() == Role::kLeader, c.leader);
    EXPECT_EQ(net.raw(kNode1).term(), t);
  }
}

TEST(RaftPaperTest, CandidateDoesNotWinWhenMajorityRejects) {
  // Raft paper section 5.2: without a majority of votes the candidate does
  // not become leader, however the remaining votes arrive.
  RaftTestNetwork net(Ids({1, 2, 3, 4, 5}), PaperConfig);
  net.raw(kNode1).Campaign();
  const Term t = net.raw(kNode1).term();
  for (uint64_t r : {2u, 3u, 4u}) ASSERT_TRUE(net.Step(MakeVoteResponse(r, 1, t, true)).ok());
  EXPECT_NE(net.raw(kNode1).role(), Role::kLeader);
  ASSERT_TRUE(net.Step(MakeVoteResponse(5, 1, t, false)).ok());
  EXPECT_NE(net.raw(kNode1).role(), Role::kLeader) << "2 of 5 votes is not a majority";
  EXPECT_EQ(net.raw(kNode1).term(), t);
}

TEST(RaftPaperTest, CandidateStepsDownOnAppendFromLeaderOfItsTerm) {
  // Raft paper section 5.2: "If the leader's term ... is at least as large as
  // the candidate's current term, then the candidate recognizes the leader as
  // legitimate and returns to follower state. If the term in the RPC is
  // smaller ..., then the candidate rejects the RPC and continues in
  // candidate state."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  net.raw(kNode1).Campaign();
  net.raw(kNode1).Campaign();  // two rounds so that term-1 is a real term
  const Term t = net.raw(kNode1).term();
  ASSERT_EQ(net.raw(kNode1).role(), Role::kCandidate);
  ASSERT_TRUE(net.Step(MakeAppend(3, 1, t - 1, 1, 1, {}, 1)).ok());
  EXPECT_EQ(net.raw(kNode1).role(), Role::kCandidate) << "a stale leader is not legitimate";
  EXPECT_EQ(net.raw(kNode1).term(), t);
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t, 1, 1, {}, 1)).ok());
  EXPECT_EQ(net.raw(kNode1).role(), Role::kFollower);
  EXPECT_EQ(net.raw(kNode1).term(), t);
  EXPECT_EQ(net.raw(kNode1).leader(), kNode2);
}

TEST(RaftPaperTest, SplitVoteIsResolvedByLaterElections) {
  // Raft paper section 5.2: with a split vote "neither candidate wins"; the
  // randomized timeouts then make a single winner likely.
  RaftTestNetwork net(Ids({1, 2, 3, 4}), PaperConfig);
  net.raw(kNode1).Campaign();
  net.raw(kNode2).Campaign();
  const Term t = net.raw(kNode1).term();
  ASSERT_EQ(net.raw(kNode2).term(), t);
  // Node 3 hears node 1 first and node 4 hears node 2 first.
  net.AddDropFilter([](const Message& m) {
    return m.type == MessageType::kVote &&
           ((m.from == kNode1 && m.to == kNode4) || (m.from == kNode2 && m.to == kNode3));
  });
  net.Stabilize();
  EXPECT_TRUE(net.Leaders().empty()) << "2 of 4 votes each: nobody may win";
  net.ClearDropFilters();
  ASSERT_NE(net.TickAllUntil([&] { return !net.Leaders().empty(); }, 20 * kElectionTicks), -1);
  ASSERT_EQ(net.Leaders().size(), 1u);
  EXPECT_GT(net.raw(net.Leader()).term(), t);
  EXPECT_TRUE(net.violations().empty()) << Join(net.violations());
}

TEST(RaftPaperTest, ElectionSafetyAtMostOneLeaderPerTerm) {
  // Raft paper section 5.2 (Figure 3, Election Safety): "at most one leader
  // can be elected in a given term." Checked after every round of a run with
  // random partitions, crashes and proposals.
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RaftTestNetwork net(Ids({1, 2, 3, 4, 5}), [seed](Config& c) {
      PaperConfig(c);
      c.seed = seed * 1000 + c.id.value();
    });
    Rng rng(seed);
    std::map<Term, NodeId> leader_of;
    for (int round = 0; round < 400; ++round) {
      if (rng.Chance(0.05)) {
        net.Heal();
        for (NodeId id : net.ids()) {
          if (rng.Chance(0.2)) net.Isolate(id);
        }
      }
      if (rng.Chance(0.02)) {
        const NodeId victim(1 + rng.Uniform(5));
        if (net.IsUp(victim)) net.Restart(victim);
      }
      const NodeId l = net.Leader();
      if (l != kNoNode && rng.Chance(0.3)) {
        (void)net.Propose(l, "s" + std::to_string(seed) + "r" + std::to_string(round));
      }
      net.TickAll(1);
      for (NodeId id : net.Leaders()) {
        auto [it, fresh] = leader_of.emplace(net.raw(id).term(), id);
        EXPECT_EQ(it->second, id) << "two leaders in term " << it->first;
      }
    }
    EXPECT_GE(leader_of.size(), 2u) << "the run never changed leader; it proves little";
    EXPECT_TRUE(net.violations().empty()) << Join(net.violations());
  }
}

// --- Section 5.3: log replication -------------------------------------------

TEST(RaftPaperTest, NewLeaderCommitsABlankEntryOfItsTerm) {
  // Raft paper section 8 (and 5.4.2): "having each leader commit a blank
  // no-op entry into the log at the start of its term."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  ASSERT_TRUE(net.ElectLeader(kNode1));
  const Term t = net.raw(kNode1).term();
  for (NodeId id : net.ids()) {
    SCOPED_TRACE("node " + std::to_string(id.value()));
    const std::vector<Entry> log = net.StoredEntries(id);
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].index, Index(2));
    EXPECT_EQ(log[0].term, t);
    EXPECT_EQ(log[0].type, EntryType::kNormal);
    EXPECT_TRUE(log[0].data.empty());
    ASSERT_EQ(net.applied(id).size(), 1u);
    EXPECT_EQ(net.applied(id)[0], log[0]);
  }
  EXPECT_EQ(net.status(kNode1).commit, Index(2));
}

TEST(RaftPaperTest, LeaderAppendsProposalAndSendsItToEveryFollower) {
  // Raft paper section 5.3: "The leader appends the command to its log as a
  // new entry, then issues AppendEntries RPCs in parallel to each of the
  // other servers to replicate the entry."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  ASSERT_TRUE(net.ElectLeader(kNode1));
  const Term t = net.raw(kNode1).term();
  ASSERT_TRUE(net.Propose(kNode1, "x").ok());
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.storage(kNode1).LastIndex(), Index(3));
  EXPECT_EQ(net.status(kNode1).commit, Index(2)) << "not committed before replication";
  const std::vector<Message> msgs = net.TakeMessages();
  for (NodeId peer : {kNode2, kNode3}) {
    const std::vector<Message> apps = To(msgs, MessageType::kAppend, peer);
    ASSERT_EQ(apps.size(), 1u) << "to node " << peer;
    EXPECT_EQ(apps[0].index, Index(2));
    EXPECT_EQ(apps[0].log_term, t);
    ASSERT_EQ(apps[0].entries.size(), 1u);
    EXPECT_EQ(apps[0].entries[0], (Entry{t, Index(3), EntryType::kNormal, "x"}));
  }
}

TEST(RaftPaperTest, LeaderCommitsOnceAMajorityHasTheEntry) {
  // Raft paper section 5.3: "A log entry is committed once the leader that
  // created the entry has replicated it on a majority of the servers."
  RaftTestNetwork net(Ids({1, 2, 3, 4, 5}), PaperConfig);
  MakeLeaderByHand(net, Ids({2, 3}));
  const Term t = net.raw(kNode1).term();
  const Index noop = net.status(kNode1).last_index;
  ASSERT_EQ(noop, Index(2));
  EXPECT_EQ(net.status(kNode1).commit, Index(1));
  ASSERT_TRUE(net.Step(MakeAppendResponse(2, 1, t, noop.value())).ok());
  EXPECT_EQ(net.status(kNode1).commit, Index(1)) << "2 of 5 is not a majority";
  ASSERT_TRUE(net.Step(MakeAppendResponse(3, 1, t, noop.value())).ok());
  EXPECT_EQ(net.status(kNode1).commit, noop) << "3 of 5 is";
  net.ProcessReady(kNode1);
  ASSERT_EQ(net.applied(kNode1).size(), 1u);
  EXPECT_EQ(net.applied(kNode1)[0].index, noop);
}

TEST(RaftPaperTest, FollowerAppendsEntriesAfterMatchingPrevious) {
  // Raft paper section 5.3 (Figure 2, AppendEntries receiver rule 4):
  // "Append any new entries not already in the log."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term() + 1;
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t, 1, 1,
                                  {MakeEntry(2, t.value(), "a"), MakeEntry(3, t.value(), "b")}, 1))
                  .ok());
  net.ProcessReady(kNode1);
  const std::vector<Entry> log = net.StoredEntries(kNode1);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1], MakeEntry(3, t.value(), "b"));
  const std::vector<Message> acks = To(net.TakeMessages(), MessageType::kAppendResponse, kNode2);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(acks[0].reject);
  EXPECT_EQ(acks[0].index, Index(3));
}

TEST(RaftPaperTest, FollowerRejectsAppendWhenPreviousEntryDoesNotMatch) {
  // Raft paper section 5.3: "If the follower does not find an entry in its
  // log with the same index and term, then it refuses the new entries."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  net.ResetStorage(kNode1, {MakeEntry(2, 2, "a")}, HardState{Term(2), kNoNode, Index(1)});
  struct Case {
    uint64_t prev_index, prev_term;
  };
  for (const Case c : {Case{2, 3}, Case{5, 2}}) {
    SCOPED_TRACE("prev " + std::to_string(c.prev_index) + "@" + std::to_string(c.prev_term));
    ASSERT_TRUE(net.Step(MakeAppend(2, 1, Term(3), c.prev_index, c.prev_term,
                                    {MakeEntry(c.prev_index + 1, 3, "new")}, 1))
                    .ok());
    net.ProcessReady(kNode1);
    const std::vector<Message> acks = To(net.TakeMessages(), MessageType::kAppendResponse, kNode2);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_TRUE(acks[0].reject);
    EXPECT_EQ(net.storage(kNode1).LastIndex(), Index(2));
    EXPECT_EQ(net.StoredTerm(kNode1, Index(2)), Term(2));
  }
}

TEST(RaftPaperTest, FollowerDeletesConflictingSuffixOnly) {
  // Raft paper section 5.3 (Figure 2, AppendEntries receiver rule 3): "If an
  // existing entry conflicts with a new one (same index but different terms),
  // delete the existing entry and all that follow it." Entries that agree are
  // kept.
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  net.ResetStorage(kNode1, {MakeEntry(2, 2, "a"), MakeEntry(3, 2, "b"), MakeEntry(4, 2, "c")},
                   HardState{Term(2), kNoNode, Index(1)});
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, Term(3), 2, 2, {MakeEntry(3, 3, "x")}, 1)).ok());
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.StoredEntries(kNode1),
            (std::vector<Entry>{MakeEntry(2, 2, "a"), MakeEntry(3, 3, "x")}));
  // A retransmitted, agreeing prefix must not truncate what follows it.
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, Term(3), 1, 1, {MakeEntry(2, 2, "a")}, 1)).ok());
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.StoredEntries(kNode1),
            (std::vector<Entry>{MakeEntry(2, 2, "a"), MakeEntry(3, 3, "x")}));
}

TEST(RaftPaperTest, LeaderBacksUpAndMakesFollowerLogsMatch) {
  // Raft paper section 5.3, Figure 7: whatever the follower's log (missing
  // entries, extra uncommitted entries, or both), the leader finds the
  // latest point of agreement and overwrites the rest.
  const std::vector<uint64_t> leader = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<uint64_t>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},           // (a)
      {1, 1, 1, 4},                          // (b)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},     // (c)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},  // (d)
      {1, 1, 1, 4, 4, 4, 4},                 // (e)
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},     // (f)
  };
  for (size_t i = 0; i < followers.size(); ++i) {
    SCOPED_TRACE(std::string("follower (") + static_cast<char>('a' + i) + ")");
    RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
    const HardState hs{Term(7), kNoNode, Index(1)};
    net.ResetStorage(kNode1, LogFromTerms(leader), hs);
    net.ResetStorage(kNode3, LogFromTerms(leader), hs);
    net.ResetStorage(kNode2, LogFromTerms(followers[i]), hs);
    ASSERT_TRUE(net.ElectLeader(kNode1));
    EXPECT_EQ(net.raw(kNode1).term(), Term(8));
    EXPECT_EQ(net.StoredEntries(kNode2), net.StoredEntries(kNode1));
    EXPECT_EQ(net.status(kNode2).commit, Index(11));
    EXPECT_TRUE(net.violations().empty()) << Join(net.violations());
  }
}

TEST(RaftPaperTest, LogMatchingPropertyHolds) {
  // Raft paper section 5.3 (Figure 3, Log Matching): "if two logs contain an
  // entry with the same index and term, then the logs are identical in all
  // entries up through the given index." Checked after every round of a run
  // with random partitions.
  RaftTestNetwork net(Ids({1, 2, 3, 4, 5}), [](Config& c) {
    PaperConfig(c);
    c.seed = 77 + c.id.value();
    c.max_size_per_msg = 64;
  });
  Rng rng(99);
  int checked = 0;
  for (int round = 0; round < 400; ++round) {
    if (rng.Chance(0.06)) {
      net.Heal();
      const NodeId a(1 + rng.Uniform(5));
      const NodeId b(1 + rng.Uniform(5));
      net.Partition({a, b}, Ids({1, 2, 3, 4, 5}));
    }
    for (NodeId l : net.Leaders()) {
      if (rng.Chance(0.5)) (void)net.Propose(l, "r" + std::to_string(round));
    }
    net.TickAll(1);
    const std::vector<std::string> bad = net.CheckLogMatching();
    ASSERT_TRUE(bad.empty()) << "round " << round << ": " << Join(bad);
    ++checked;
  }
  EXPECT_EQ(checked, 400);
  EXPECT_TRUE(net.violations().empty()) << Join(net.violations());
}

TEST(RaftPaperTest, FollowerCommitIsMinOfLeaderCommitAndLastNewEntry) {
  // Raft paper Figure 2, AppendEntries receiver rule 5: "If leaderCommit >
  // commitIndex, set commitIndex = min(leaderCommit, index of last new
  // entry)."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term() + 1;
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t, 1, 1, {MakeEntry(2, t.value(), "a")}, 5)).ok());
  EXPECT_EQ(net.status(kNode1).commit, Index(2));
}

TEST(RaftPaperTest, FollowerAppliesEntriesOnceItLearnsTheyAreCommitted) {
  // Raft paper section 5.3: "Once a follower learns that a log entry is
  // committed, it applies the entry to its local state machine (in log
  // order)."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  const Term t = net.raw(kNode1).term() + 1;
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t, 1, 1,
                                  {MakeEntry(2, t.value(), "a"), MakeEntry(3, t.value(), "b")}, 2))
                  .ok());
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.AppliedData(kNode1), (std::vector<std::string>{"a"}));
  ASSERT_TRUE(net.Step(MakeAppend(2, 1, t, 3, t.value(), {}, 3)).ok());
  net.ProcessReady(kNode1);
  EXPECT_EQ(net.AppliedData(kNode1), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftPaperTest, FollowersApplyCommittedEntriesInLogOrder) {
  // Raft paper section 5.3: every node applies the same commands in the same
  // order, including a node that was cut off and caught up later.
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  ASSERT_TRUE(net.ElectLeader(kNode1));
  std::vector<std::string> want;
  for (int i = 0; i < 20; ++i) {
    if (i == 5) net.Isolate(kNode3);
    if (i == 15) net.Heal();
    want.push_back("e" + std::to_string(i));
    ASSERT_TRUE(net.Propose(kNode1, want.back()).ok());
    if (i % 3 == 0) net.Stabilize();
  }
  net.TickAll(3);
  for (NodeId id : net.ids()) {
    EXPECT_EQ(net.AppliedData(id), want) << "node " << id;
    const std::vector<Entry>& applied = net.applied(id);
    for (size_t k = 1; k < applied.size(); ++k) {
      EXPECT_EQ(applied[k].index, applied[k - 1].index + 1) << "node " << id;
    }
  }
  EXPECT_TRUE(net.violations().empty()) << Join(net.violations());
}

TEST(RaftPaperTest, ProposalToFollowerIsRefusedWithLeaderHint) {
  // Raft paper section 8: "If the client's first choice is not the leader,
  // that server will reject the client's request and supply information about
  // the most recent leader it has heard from."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  ASSERT_TRUE(net.ElectLeader(kNode1));
  const Status s = net.Propose(kNode2, "x");
  EXPECT_EQ(s.code(), ErrorCode::kNotLeader);
  EXPECT_EQ(net.raw(kNode2).leader(), kNode1);
  net.Stabilize();
  EXPECT_TRUE(net.AppliedData(kNode1).empty());
}

// --- Section 5.4: safety ----------------------------------------------------

TEST(RaftPaperTest, VoterGrantsOnlyToCandidatesAtLeastAsUpToDate) {
  // Raft paper section 5.4.1: "If the logs have last entries with different
  // terms, then the log with the later term is more up-to-date. If the logs
  // end with the same term, then whichever log is longer is more up-to-date."
  struct Case {
    uint64_t last_index, last_term;
    bool grant;
  };
  // The voter's log ends with index 3, term 2.
  const std::vector<Case> cases = {
      {3, 2, true},    // identical
      {4, 2, true},    // same term, longer
      {2, 2, false},   // same term, shorter
      {2, 3, true},    // later term, shorter
      {10, 1, false},  // earlier term, longer
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("candidate last " + std::to_string(c.last_index) + "@" +
                 std::to_string(c.last_term));
    RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
    net.ResetStorage(kNode1, {MakeEntry(2, 2), MakeEntry(3, 2)},
                     HardState{Term(2), kNoNode, Index(1)});
    ASSERT_TRUE(net.Step(MakeVote(2, 1, Term(3), c.last_index, c.last_term)).ok());
    net.ProcessReady(kNode1);
    const std::vector<Message> r = To(net.TakeMessages(), MessageType::kVoteResponse, kNode2);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(!r[0].reject, c.grant);
    EXPECT_EQ(r[0].term, Term(3));
  }
}

// Node 1 holds term-2 entries at indexes 2 and 3 and becomes leader of term 3
// with its no-op at index 4.
void LeaderWithOldTermEntries(RaftTestNetwork& net) {
  net.ResetStorage(kNode1, {MakeEntry(2, 2, "a"), MakeEntry(3, 2, "b")},
                   HardState{Term(2), kNoNode, Index(1)});
  MakeLeaderByHand(net, Ids({2}));
  ASSERT_EQ(net.raw(kNode1).term(), Term(3));
  ASSERT_EQ(net.status(kNode1).last_index, Index(4));
}

TEST(RaftPaperTest, LeaderDoesNotCommitOldTermEntryByCountingReplicas) {
  // Raft paper section 5.4.2: "Raft never commits log entries from previous
  // terms by counting replicas. Only log entries from the leader's current
  // term are committed by counting replicas."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  LeaderWithOldTermEntries(net);
  ASSERT_TRUE(net.Step(MakeAppendResponse(2, 1, Term(3), 3)).ok());
  EXPECT_EQ(net.status(kNode1).commit, Index(1))
      << "index 3 (term 2) is on 2 of 3 nodes but must not be committed";
  net.ProcessReady(kNode1);
  EXPECT_TRUE(net.applied(kNode1).empty());
}

TEST(RaftPaperTest, OldTermEntriesCommitIndirectlyWithCurrentTermEntry) {
  // Raft paper section 5.4.2: "once an entry from the current term has been
  // committed in this way, then all prior entries are committed indirectly
  // because of the Log Matching Property."
  RaftTestNetwork net(Ids({1, 2, 3}), PaperConfig);
  LeaderWithOldTermEntries(net);
  ASSERT_TRUE(net.Step(MakeAppendResponse(2, 1, Term(3), 4)).ok());
  EXPECT_EQ(net.status(kNode1).commit, Index(4));
  net.ProcessReady(kNode1);
  const std::vector<Entry>& applied = net.applied(kNode1);
  ASSERT_EQ(applied.size(), 3u);
  EXPECT_EQ(applied[0], MakeEntry(2, 2, "a"));
  EXPECT_EQ(applied[1], MakeEntry(3, 2, "b"));
  EXPECT_EQ(applied[2].index, Index(4));
  EXPECT_EQ(applied[2].term, Term(3));
}

// Figure 8 of the paper, step by step, on five nodes S1..S5. Entries are
// limited to one per append so that old-term entries travel alone. Returns
// S1's commit index at the end of step (c). With `bug`, every node runs
// with InjectedBugs.commit_old_term, and step (d) withholds S5's appends (a
// leader that overwrites committed entries would trip the core's own checks).
Index RunFigure8(RaftTestNetwork& net, bool bug) {
  auto from_s1_or_s5_append = [](NodeId from) {
    return [from](const Message& m) { return m.type == MessageType::kAppend && m.from == from; };
  };
  // (a) S1 leads term ta; its first entry (index 2) reaches only S2; its
  // second ("x", index 3) reaches nobody.
  net.AddDropFilter([](const Message& m) {
    return m.type == MessageType::kAppend && m.from == kNode1 && m.to != kNode2;
  });
  EXPECT_TRUE(net.ElectLeader(kNode1));
  const Term ta = net.raw(kNode1).term();
  EXPECT_EQ(net.StoredTerm(kNode2, Index(2)), ta);
  net.ClearDropFilters();
  net.AddDropFilter(from_s1_or_s5_append(kNode1));
  EXPECT_TRUE(net.Propose(kNode1, "x").ok());
  net.Stabilize();
  EXPECT_EQ(net.status(kNode1).commit, Index(1));

  // (b) S1 crashes; S5 is elected in term tb by S3, S4 and itself and
  // accepts an entry at index 2 that reaches nobody.
  net.Crash(kNode1);
  net.ClearDropFilters();
  net.AddDropFilter(from_s1_or_s5_append(kNode5));
  EXPECT_TRUE(net.ElectLeader(kNode5));
  const Term tb = net.raw(kNode5).term();
  EXPECT_GT(tb, ta);
  EXPECT_EQ(net.StoredTerm(kNode5, Index(2)), tb);

  // (c) S5 crashes; S1 restarts and is elected (term tc) by S1, S2, S3 while
  // S4 is unreachable. S1 brings S2 and S3 up to date with its term-ta
  // entries, but every append that would land its term-tc entry is lost. Now
  // index 3 (term ta) is on a majority; it must still not be committed.
  net.Crash(kNode5);
  net.ClearDropFilters();
  net.Isolate(kNode4);
  net.Restart(kNode1);
  net.AddDropFilter([&net, ta](const Message& m) {
    if (m.type != MessageType::kAppend || m.from != kNode1) return false;
    bool carries_new_term = false;
    for (const Entry& e : m.entries) carries_new_term |= e.term > ta;
    if (!carries_new_term) return false;
    // Drop it only if the follower would accept it.
    return net.StoredTerm(m.to, m.index) == m.log_term;
  });
  for (int i = 0; i < 3 && net.raw(kNode1).role() != Role::kLeader; ++i) {
    net.raw(kNode1).Campaign();
    net.Stabilize();
  }
  EXPECT_EQ(net.raw(kNode1).role(), Role::kLeader);
  const Term tc = net.raw(kNode1).term();
  EXPECT_GT(tc, tb);
  for (NodeId id : {kNode1, kNode2, kNode3}) {
    EXPECT_EQ(net.StoredTerm(id, Index(3)), ta) << "node " << id;
  }
  EXPECT_EQ(net.StoredTerm(kNode1, Index(4)), tc);
  const Index s1_commit = net.status(kNode1).commit;

  // (d) S1 crashes; S5 restarts and can be elected by S2, S3 and S4, since
  // its last term tb is later than theirs (ta).
  net.Crash(kNode1);
  net.Heal();
  net.Restart(kNode5);
  if (bug) net.AddDropFilter(from_s1_or_s5_append(kNode5));
  for (int i = 0; i < 3 && net.raw(kNode5).role() != Role::kLeader; ++i) {
    net.raw(kNode5).Campaign();
    net.Stabilize();
  }
  EXPECT_EQ(net.raw(kNode5).role(), Role::kLeader);
  return s1_commit;
}

void Figure8Config(Config& c) {
  PaperConfig(c);
  c.max_size_per_msg = 1;
}

TEST(RaftPaperTest, Figure8OldTermEntryOnMajorityIsNotCommitted) {
  // Raft paper section 5.4.2, Figure 8: "a log entry is stored on a majority
  // of servers, yet can still be overwritten by a future leader." The leader
  // of (c) must not commit it, and so nothing is lost when (d) overwrites it.
  RaftTestNetwork net(Ids({1, 2, 3, 4, 5}), Figure8Config);
  const Index s1_commit = RunFigure8(net, /*bug=*/false);
  EXPECT_EQ(s1_commit, Index(1)) << "S1 committed an old-term entry by counting replicas";
  const Term tb = net.StoredTerm(kNode5, Index(2));
  for (NodeId id : {kNode2, kNode3, kNode4, kNode5}) {
    EXPECT_EQ(net.StoredTerm(id, Index(2)), tb) << "node " << id << " was not overwritten";
  }
  EXPECT_GE(net.status(kNode5).commit, Index(3));
  // S1 comes back and converges too; nobody ever applied "x".
  net.Restart(kNode1);
  net.TickAll(3);
  EXPECT_TRUE(net.LogsMatch(kNode5, Ids({1, 2, 3, 4})));
  for (NodeId id : net.ids()) {
    for (const std::string& d : net.AppliedData(id)) EXPECT_NE(d, "x") << "node " << id;
  }
  EXPECT_TRUE(net.violations().empty()) << Join(net.violations());
}

TEST(RaftPaperTest, Figure8CommitOldTermBugIsDetected) {
  // Raft paper section 5.4.2, Figure 8, with InjectedBugs.commit_old_term:
  // the same scenario must expose the planted bug, proving the test above can
  // fail. S1 commits and applies index 3 (term ta) in (c); S5, elected in (d),
  // lacks it: Leader Completeness (5.4.3) is broken.
  RaftTestNetwork net(Ids({1, 2, 3, 4, 5}), [](Config& c) {
    Figure8Config(c);
    c.bugs.commit_old_term = true;
  });
  const Index s1_commit = RunFigure8(net, /*bug=*/true);
  EXPECT_GE(s1_commit, Index(3));
  bool saw_x = false;
  for (const std::string& d : net.AppliedData(kNode1)) saw_x |= d == "x";
  EXPECT_TRUE(saw_x) << "S1 should have applied the old-term entry";
  bool completeness_broken = false;
  for (const std::string& v : net.violations()) {
    completeness_broken |= v.find("without the applied entry") != std::string::npos;
  }
  EXPECT_TRUE(completeness_broken) << Join(net.violations());
}

TEST(RaftPaperTest, NewLeaderHoldsEveryCommittedEntry) {
  // Raft paper section 5.4.3 (Figure 3, Leader Completeness): "If a log entry
  // is committed in a given term, then that entry will be present in the logs
  // of the leaders for all higher-numbered terms." A lagging node cannot win.
  RaftTestNetwork net(Ids({1, 2, 3, 4, 5}), PaperConfig);
  ASSERT_TRUE(net.ElectLeader(kNode1));
  net.Isolate(kNode5);
  for (const char* d : {"a", "b", "c"}) ASSERT_TRUE(net.Propose(kNode1, d).ok());
  net.Stabilize();
  const Index committed = net.status(kNode1).commit;
  ASSERT_EQ(committed, Index(5));
  const std::vector<Entry> committed_log = net.StoredEntries(kNode1);
  net.Crash(kNode1);
  net.Heal();
  net.raw(kNode5).Campaign();
  net.Stabilize();
  EXPECT_NE(net.raw(kNode5).role(), Role::kLeader) << "a node missing committed entries won";
  ASSERT_NE(net.TickAllUntil([&] { return net.Leader() != kNoNode; }, 20 * kElectionTicks), -1);
  const NodeId l = net.Leader();
  EXPECT_NE(l, kNode5);
  for (const Entry& e : committed_log) {
    EXPECT_EQ(net.StoredTerm(l, e.index), e.term) << "the new leader lacks index " << e.index;
  }
  EXPECT_TRUE(net.violations().empty()) << Join(net.violations());
}

// --- Thesis section 6.4: read-only queries ----------------------------------

TEST(RaftPaperTest, ReadIndexNeedsAHeartbeatQuorumAndReturnsCommitIndex) {
  // Raft thesis section 6.4: the leader records its commit index as the read
  // index, "sends a new round of heartbeats" and may serve the read only once
  // a majority has acknowledged them.
  RaftTestNetwork net(Ids({1, 2, 3}));
  ASSERT_TRUE(net.ElectLeader(kNode1));
  ASSERT_TRUE(net.Propose(kNode1, "a").ok());
  net.Stabilize();
  const Index commit = net.status(kNode1).commit;
  ASSERT_EQ(commit, Index(3));
  net.raw(kNode1).ReadIndex("r1");
  net.ProcessAllReady();
  EXPECT_TRUE(net.read_states(kNode1).empty()) << "answered before confirming leadership";
  int beats = 0;
  for (const Message& m : net.queue()) beats += m.type == MessageType::kHeartbeat;
  EXPECT_GE(beats, 1) << "no heartbeat round was started";
  net.DeliverAll();       // heartbeats reach the followers
  net.ProcessAllReady();  // followers answer
  EXPECT_TRUE(net.read_states(kNode1).empty());
  net.DeliverAll();  // answers reach the leader
  net.ProcessAllReady();
  ASSERT_EQ(net.read_states(kNode1).size(), 1u);
  EXPECT_EQ(net.read_states(kNode1)[0].context, "r1");
  EXPECT_EQ(net.read_states(kNode1)[0].index, commit);
}

TEST(RaftPaperTest, ReadIndexOnIsolatedLeaderIsNeverAnswered) {
  // Raft thesis section 6.4: a leader cut off from the majority may have been
  // deposed; without lease_reads it must not answer.
  RaftTestNetwork net(Ids({1, 2, 3}));
  ASSERT_TRUE(net.ElectLeader(kNode1));
  net.Isolate(kNode1);
  net.raw(kNode1).ReadIndex("r");
  net.Stabilize();
  net.TickAll(kElectionTicks / 2);
  EXPECT_TRUE(net.read_states(kNode1).empty());
}

TEST(RaftPaperTest, ReadIndexWaitsForLeaderToCommitInItsTerm) {
  // Raft thesis section 6.4 step 1: "If the leader has not yet marked an
  // entry from its current term committed, it waits until it has done so."
  // Node 2 takes over from node 1; its no-op cannot reach anyone at first.
  RaftTestNetwork net(Ids({1, 2, 3}), [](Config& c) { c.check_quorum = false; });
  ASSERT_TRUE(net.ElectLeader(kNode1));
  ASSERT_TRUE(net.Propose(kNode1, "a").ok());
  net.Stabilize();
  net.AddDropFilter(
      [](const Message& m) { return m.type == MessageType::kAppend && m.from == kNode2; });
  ASSERT_TRUE(net.ElectLeader(kNode2));
  const Index noop = net.status(kNode2).last_index;
  ASSERT_LT(net.status(kNode2).commit, noop);
  net.raw(kNode2).ReadIndex("early");
  net.TickAll(3);
  EXPECT_TRUE(net.read_states(kNode2).empty()) << "answered before its no-op committed";
  net.ClearDropFilters();
  net.TickAll(3);
  ASSERT_EQ(net.status(kNode2).commit, noop);
  ASSERT_EQ(net.read_states(kNode2).size(), 1u);
  EXPECT_EQ(net.read_states(kNode2)[0].context, "early");
  EXPECT_EQ(net.read_states(kNode2)[0].index, noop);
}

TEST(RaftPaperTest, FirstLeaderReadIndexWaitsForItsNoOp) {
  // Raft thesis section 6.4 step 1, for the very first leader of a cluster:
  // the bootstrap snapshot is not an entry this leader committed, so a read
  // must wait for the leader's no-op like in any other term.
  RaftTestNetwork net(Ids({1, 2, 3}));
  net.AddDropFilter([](const Message& m) { return m.type == MessageType::kAppend; });
  ASSERT_TRUE(net.ElectLeader(kNode1));
  ASSERT_EQ(net.status(kNode1).commit, Index(1));
  net.raw(kNode1).ReadIndex("early");
  net.TickAll(3);
  EXPECT_TRUE(net.read_states(kNode1).empty()) << "answered before its no-op committed";
  net.ClearDropFilters();
  net.TickAll(3);
  ASSERT_EQ(net.status(kNode1).commit, Index(2));
  ASSERT_EQ(net.read_states(kNode1).size(), 1u);
  EXPECT_EQ(net.read_states(kNode1)[0].index, Index(2));
}

TEST(RaftPaperTest, ReadIndexOnFollowerIsAnsweredByLeader) {
  // Raft thesis section 6.4: "followers could also help offload the
  // processing of read-only queries": the follower asks the leader for the
  // read index.
  RaftTestNetwork net(Ids({1, 2, 3}));
  ASSERT_TRUE(net.ElectLeader(kNode1));
  ASSERT_TRUE(net.Propose(kNode1, "a").ok());
  net.Stabilize();
  net.raw(kNode2).ReadIndex("f");
  net.Stabilize();
  ASSERT_EQ(net.read_states(kNode2).size(), 1u);
  EXPECT_EQ(net.read_states(kNode2)[0].context, "f");
  EXPECT_EQ(net.read_states(kNode2)[0].index, net.status(kNode1).commit);
  EXPECT_EQ(net.CountSent(MessageType::kReadIndex, kNode2, kNode1), 1);
}

TEST(RaftPaperTest, LeaseReadIsServedWithoutAHeartbeatRound) {
  // Raft thesis section 6.4.1: with bounded clock drift the leader may rely
  // on its lease and answer at once; only when lease_reads is set.
  RaftTestNetwork net(Ids({1, 2, 3}), [](Config& c) { c.lease_reads = true; });
  ASSERT_TRUE(net.ElectLeader(kNode1));
  const Index commit = net.status(kNode1).commit;
  net.Isolate(kNode1);  // no heartbeat answer can come back
  net.raw(kNode1).ReadIndex("lease");
  net.ProcessReady(kNode1);
  ASSERT_EQ(net.read_states(kNode1).size(), 1u);
  EXPECT_EQ(net.read_states(kNode1)[0].context, "lease");
  EXPECT_EQ(net.read_states(kNode1)[0].index, commit);
}

TEST(RaftPaperTest, ReadWithoutQuorumBugServesAStaleRead) {
  // Raft thesis section 6.4, with InjectedBugs.read_without_quorum: a deposed
  // leader that skips the heartbeat round answers with an index older than a
  // write that completed before the read began. Without the bug it never
  // answers; the contrast shows the check can fail.
  auto stale_read = [](bool bug) {
    RaftTestNetwork net(Ids({1, 2, 3}), [bug](Config& c) {
      c.check_quorum = false;
      c.bugs.read_without_quorum = bug;
    });
    EXPECT_TRUE(net.ElectLeader(kNode1));
    net.Isolate(kNode1);
    EXPECT_TRUE(net.ElectLeader(kNode2));
    EXPECT_TRUE(net.Propose(kNode2, "w").ok());
    net.Stabilize();
    const Index write_index = net.status(kNode2).commit;
    EXPECT_EQ(net.raw(kNode1).role(), Role::kLeader) << "the old leader does not know yet";
    net.raw(kNode1).ReadIndex("stale?");
    net.Stabilize();
    const auto& rs = net.read_states(kNode1);
    return !rs.empty() && rs[0].index < write_index;
  };
  EXPECT_FALSE(stale_read(false));
  EXPECT_TRUE(stale_read(true));
}

}  // namespace
}  // namespace warden::raft

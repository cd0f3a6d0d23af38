// Tests of the deterministic simulator: a clean core passes, each planted bug
// is caught by the default seed range, and a seed's trace is byte-identical
// from run to run.
#include "sim/sim.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

namespace warden::sim {
namespace {

// The seed range CI runs (tests/CMakeLists.txt: sim_seeds).
constexpr uint64_t kDefaultSeeds = 500;

SimOptions Options(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.faults = kFaultAll;
  return o;
}

// Runs the default seed range with `bug` planted until a seed reports one of
// `expected`; returns that seed's report, or "" if none did.
std::string FirstCatch(const std::string& bug, const std::set<std::string>& expected) {
  for (uint64_t seed = 0; seed < kDefaultSeeds; ++seed) {
    SimOptions o = Options(seed);
    EXPECT_TRUE(AddBug(bug, &o.bugs));
    const SimResult r = RunSeed(o);
    if (r.violation && expected.count(r.violation->check)) {
      return "seed=" + std::to_string(seed) + " " + r.violation->check + ": " + r.violation->detail;
    }
  }
  return "";
}

TEST(SimTest, CleanCoreHasNoViolations) {
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const SimResult r = RunSeed(Options(seed));
    EXPECT_FALSE(r.violation.has_value())
        << "seed=" << seed << " " << r.violation->check << ": " << r.violation->detail;
    EXPECT_GT(r.ops, 0u);
  }
}

TEST(SimTest, NoFaultsMeansNoViolations) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    SimOptions o = Options(seed);
    o.faults = 0;
    const SimResult r = RunSeed(o);
    EXPECT_FALSE(r.violation.has_value()) << "seed=" << seed << " " << r.violation->check;
  }
}

TEST(SimTest, TraceIsByteIdenticalForTheSameSeed) {
  for (uint64_t seed : {3u, 17u}) {
    SimOptions o = Options(seed);
    o.trace = true;
    const SimResult a = RunSeed(o);
    const SimResult b = RunSeed(o);
    ASSERT_FALSE(a.trace.empty());
    EXPECT_EQ(a.trace, b.trace) << "seed=" << seed;
    EXPECT_EQ(a.events, b.events);
  }
}

TEST(SimTest, TracingDoesNotChangeTheRun) {
  SimOptions o = Options(5);
  const SimResult quiet = RunSeed(o);
  o.trace = true;
  const SimResult traced = RunSeed(o);
  EXPECT_EQ(quiet.events, traced.events);
  EXPECT_EQ(quiet.ops, traced.ops);
}

TEST(SimTest, CatchesVoteIgnoresLog) {
  const std::string caught = FirstCatch(
      "vote-ignores-log", {"leader-completeness", "state-machine-safety", "commit-agreement",
                           "log-matching", "durability", "election-safety", "linearizability"});
  EXPECT_NE(caught, "");
  RecordProperty("caught", caught);
}

// Not caught yet: the planted rule break only matters when a new leader's
// old-term entries reach a majority before its own no-op does, and then a
// node holding a conflicting later-term entry wins; the fault mix does not
// produce that schedule within the default range yet. Enable once it does.
TEST(SimTest, CatchesCommitOldTerm) {
  const std::string caught = FirstCatch(
      "commit-old-term", {"leader-commit-rule", "leader-completeness", "state-machine-safety",
                          "commit-agreement", "durability", "linearizability"});
  EXPECT_NE(caught, "");
  RecordProperty("caught", caught);
}

TEST(SimTest, CatchesSkipPersistVote) {
  const std::string caught = FirstCatch(
      "skip-persist-vote", {"election-safety", "leader-completeness", "state-machine-safety",
                            "commit-agreement", "durability", "linearizability"});
  EXPECT_NE(caught, "");
  RecordProperty("caught", caught);
}

TEST(SimTest, CatchesReadWithoutQuorum) {
  const std::string caught = FirstCatch("read-without-quorum", {"linearizability"});
  EXPECT_NE(caught, "");
  RecordProperty("caught", caught);
}

// Runs seeds [0, seeds) with `bug` planted; returns how many reported
// lock-safety, and the first such report.
std::pair<int, std::string> LockCatches(const std::string& bug, uint64_t seeds) {
  int caught = 0;
  std::string first;
  for (uint64_t seed = 0; seed < seeds; ++seed) {
    SimOptions o = Options(seed);
    EXPECT_TRUE(AddBug(bug, &o.bugs));
    const SimResult r = RunSeed(o);
    if (!r.violation || r.violation->check != "lock-safety") continue;
    if (caught++ == 0) first = "seed=" + std::to_string(seed) + " " + r.violation->detail;
  }
  return {caught, first};
}

// The lock bugs break no Raft property: the lock-safety check catches each,
// by the rule it breaks, in many seeds (docs/simulator.md has the counts in
// 0:500; these floors sit well below the counts in 0:20).
TEST(SimTest, CatchesLockSkipQueue) {
  const auto [caught, first] = LockCatches("lock-skip-queue", 20);
  EXPECT_GE(caught, 12) << first;
  EXPECT_NE(first.find("while"), std::string::npos) << first;  // two incompatible holders
  RecordProperty("caught", first);
}

TEST(SimTest, CatchesLockReuseToken) {
  const auto [caught, first] = LockCatches("lock-reuse-token", 20);
  EXPECT_GE(caught, 15) << first;
  EXPECT_NE(first.find("not above the last grant"), std::string::npos) << first;
  RecordProperty("caught", first);
}

TEST(SimTest, CatchesLockGuardAnyHolder) {
  const auto [caught, first] = LockCatches("lock-guard-any-holder", 20);
  EXPECT_GE(caught, 8) << first;
  EXPECT_NE(first.find("guarded write"), std::string::npos) << first;  // a zombie's write
  RecordProperty("caught", first);
}

TEST(SimTest, CatchesLockKeepEndedWaits) {
  const auto [caught, first] = LockCatches("lock-keep-ended-waits", 20);
  EXPECT_GE(caught, 3) << first;
  EXPECT_NE(first.find("after its session ended"), std::string::npos) << first;
  RecordProperty("caught", first);
}

// The lock clients reach what the lock check is about: queued requests
// answered later, hand-offs, guarded writes refused for a stale token, and
// sessions that end while holding.
TEST(SimTest, LockWorkloadReachesQueuesFencingAndSessionEnds) {
  SimOptions o = Options(3);
  o.trace = true;
  const SimResult r = RunSeed(o);
  ASSERT_FALSE(r.violation.has_value()) << r.violation->check << ": " << r.violation->detail;
  EXPECT_NE(r.trace.find(" QUEUED\n"), std::string::npos);
  EXPECT_NE(r.trace.find(" guarded-put ok\n"), std::string::npos);
  EXPECT_NE(r.trace.find(" WOULD_BLOCK\n"), std::string::npos);
  EXPECT_GT(r.lock_grants, 20u);
  uint64_t fenced = r.fenced_writes, ended_holding = 0;
  // Over a few seeds: fenced writes and sessions that end while holding.
  for (uint64_t seed = 0; seed < 5; ++seed) {
    SimOptions t = Options(seed);
    t.trace = true;
    const SimResult x = RunSeed(t);
    ASSERT_FALSE(x.violation.has_value()) << "seed=" << seed << " " << x.violation->check;
    fenced += x.fenced_writes;
    if (x.trace.find("sessions_ended_holding=0\n") == std::string::npos) ++ended_holding;
  }
  EXPECT_GT(fenced, 0u);
  EXPECT_GT(ended_holding, 0u);
}

// The workload reaches the real state machine's deletes and leases: keys are
// deleted, and leases expire on the leader's clock and are revoked through
// the log (the lease-safety check then runs on every replica).
TEST(SimTest, WorkloadReachesDeletesAndLeaseExpiry) {
  SimOptions o = Options(3);
  o.trace = true;
  const SimResult r = RunSeed(o);
  ASSERT_FALSE(r.violation.has_value()) << r.violation->check << ": " << r.violation->detail;
  EXPECT_NE(r.trace.find(" delete k"), std::string::npos);
  EXPECT_NE(r.trace.find(" lease-put l"), std::string::npos);
  EXPECT_EQ(r.trace.find("lease_expiries=0\n"), std::string::npos);
  EXPECT_NE(r.trace.find("lease_expiries="), std::string::npos);
}

TEST(SimTest, UnknownBugNameIsRefused) {
  BugSet bugs;
  EXPECT_FALSE(AddBug("no-such-bug", &bugs));
}

TEST(SimTest, ParsesFaultLists) {
  EXPECT_EQ(*ParseFaults("all"), static_cast<uint32_t>(kFaultAll));
  EXPECT_EQ(*ParseFaults("none"), 0u);
  EXPECT_EQ(*ParseFaults("loss,crash"), static_cast<uint32_t>(kFaultLoss | kFaultCrash));
  EXPECT_FALSE(ParseFaults("loss,bogus").ok());
}

}  // namespace
}  // namespace warden::sim

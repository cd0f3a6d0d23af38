// Tests of the native lock table: one test (or a few) per rule in the header
// comment of src/state/lock_table.h. Time is a plain argument, so every case
// is deterministic and none sleeps.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <random>

#include "src/state/lock_table.h"

namespace warden::state {
namespace {

using Type = LockEvent::Type;

constexpr int64_t kAging = LockTable::kAgingIntervalMs;

LockOwner Owner(int64_t session, std::string id) { return LockOwner{session, std::move(id)}; }

AcquireRequest Req(std::string path, LockOwner owner, LockMode mode = LockMode::kExclusive) {
  AcquireRequest r;
  r.path = std::move(path);
  r.owner = std::move(owner);
  r.mode = mode;
  return r;
}

AcquireRequest Shared(std::string path, LockOwner owner) {
  return Req(std::move(path), std::move(owner), LockMode::kShared);
}

AcquireRequest WithPriority(AcquireRequest r, int32_t priority) {
  r.priority = priority;
  return r;
}

AcquireRequest WithId(AcquireRequest r, uint64_t id) {
  r.request_id = id;
  return r;
}

Compare ValueIs(std::string key, std::string value) {
  Compare c;
  c.target = Compare::Target::kValue;
  c.result = Compare::Result::kEqual;
  c.range.key = std::move(key);
  c.value = std::move(value);
  return c;
}

std::vector<Type> Types(const LockEffects& fx) {
  std::vector<Type> out;
  for (const LockEvent& e : fx.events) out.push_back(e.type);
  return out;
}

// The table, a fake key space for conditions, and the effects of the last
// operation.
class LockTableTest : public ::testing::Test {
 protected:
  LockTableTest() {
    check_ = [this](const std::vector<Compare>& compares) {
      ++checks_;
      for (const Compare& c : compares) {
        EXPECT_EQ(c.target, Compare::Target::kValue);
        auto it = keys_.find(c.range.key);
        if (it == keys_.end() || it->second != c.value) return false;
      }
      return true;
    };
  }

  LockAnswer Acquire(const AcquireRequest& r, int64_t now_ms) {
    fx_ = {};
    return t_.Acquire(r, now_ms, check_, &fx_);
  }
  LockAnswer Release(const std::string& path, const LockOwner& o, uint64_t token, int64_t now_ms,
                     uint64_t id = 0) {
    fx_ = {};
    return t_.Release(path, o, token, id, now_ms, check_, &fx_);
  }
  LockAnswer Cancel(const std::string& path, const LockOwner& o, int64_t now_ms, uint64_t id = 0) {
    fx_ = {};
    return t_.Cancel(path, o, id, now_ms, check_, &fx_);
  }
  void Expire(int64_t now_ms) {
    fx_ = {};
    t_.Expire(now_ms, check_, &fx_);
  }
  void Regrant(int64_t now_ms) {
    fx_ = {};
    t_.Regrant(now_ms, check_, &fx_);
  }
  void EndSession(int64_t session, int64_t now_ms) {
    fx_ = {};
    t_.EndSession(session, now_ms, check_, &fx_);
  }

  std::vector<LockOwner> Holders(const std::string& path) const {
    std::vector<LockOwner> out;
    if (auto info = t_.Inspect(path, 0)) {
      for (const LockHolder& h : info->holders) out.push_back(h.owner);
    }
    return out;
  }
  std::vector<LockOwner> Waiters(const std::string& path, int64_t now_ms) const {
    std::vector<LockOwner> out;
    if (auto info = t_.Inspect(path, now_ms)) {
      for (const LockWaiter& w : info->waiters) out.push_back(w.request.owner);
    }
    return out;
  }
  uint32_t HoldCount(const std::string& path, const LockOwner& o) const {
    if (auto info = t_.Inspect(path, 0)) {
      for (const LockHolder& h : info->holders) {
        if (h.owner == o) return h.hold_count;
      }
    }
    return 0;
  }

  LockTable t_;
  std::map<std::string, std::string> keys_;
  int checks_ = 0;
  ConditionCheck check_;
  LockEffects fx_;
};

const LockOwner kA = Owner(1, "a");
const LockOwner kB = Owner(2, "b");
const LockOwner kC = Owner(3, "c");
const LockOwner kD = Owner(4, "d");
const LockOwner kE = Owner(5, "e");

// ---- Modes ------------------------------------------------------------------

TEST_F(LockTableTest, ExclusiveIsGrantedWhenFreeAndOthersQueue) {
  LockAnswer a = Acquire(Req("/x", kA), 0);
  EXPECT_EQ(a.outcome, LockOutcome::kGranted);
  EXPECT_EQ(a.token, 1u);
  EXPECT_EQ(a.hold_count, 1u);
  ASSERT_EQ(fx_.events.size(), 1u);
  EXPECT_EQ(fx_.events[0], (LockEvent{Type::kAcquired, "/x", kA, LockMode::kExclusive, 1}));

  EXPECT_EQ(Acquire(Req("/x", kB), 1).outcome, LockOutcome::kQueued);
  EXPECT_EQ(fx_.events,
            (std::vector<LockEvent>{{Type::kQueued, "/x", kB, LockMode::kExclusive, 0}}));
  EXPECT_EQ(Acquire(Shared("/x", kC), 2).outcome, LockOutcome::kQueued);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kA});
  EXPECT_EQ(Waiters("/x", 2), (std::vector<LockOwner>{kB, kC}));

  LockAnswer r = Release("/x", kA, 1, 3);
  EXPECT_EQ(r.outcome, LockOutcome::kGranted);
  EXPECT_EQ(r.hold_count, 0u);
  EXPECT_EQ(Types(fx_), (std::vector<Type>{Type::kReleased, Type::kAcquired}));
  ASSERT_EQ(fx_.answers.size(), 1u);
  EXPECT_EQ(fx_.answers[0].owner, kB);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kGranted);
  EXPECT_EQ(fx_.answers[0].token, 2u);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kB});  // C, shared, waits for B
}

TEST_F(LockTableTest, SharedRequestJoinsSharedHoldersWhenNobodyWaits) {
  EXPECT_EQ(Acquire(Shared("/x", kA), 0).outcome, LockOutcome::kGranted);
  EXPECT_EQ(Acquire(Shared("/x", kB), 0).outcome, LockOutcome::kGranted);
  EXPECT_EQ(Holders("/x"), (std::vector<LockOwner>{kA, kB}));
  EXPECT_EQ(Acquire(Req("/x", kC), 0).outcome, LockOutcome::kQueued);
}

TEST_F(LockTableTest, CompatibleWaitersAtTheHeadAreGrantedTogether) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);  // token 1
  ASSERT_EQ(Acquire(Shared("/x", kB), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Shared("/x", kC), 2).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Req("/x", kD), 3).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Shared("/x", kE), 4).outcome, LockOutcome::kQueued);

  Release("/x", kA, 1, 5);
  // B and C together, each with its own token; D stops the pass, and E,
  // though compatible with the holders, does not pass D.
  ASSERT_EQ(fx_.answers.size(), 2u);
  EXPECT_EQ(fx_.answers[0].owner, kB);
  EXPECT_EQ(fx_.answers[0].token, 2u);
  EXPECT_EQ(fx_.answers[1].owner, kC);
  EXPECT_EQ(fx_.answers[1].token, 3u);
  EXPECT_EQ(Holders("/x"), (std::vector<LockOwner>{kB, kC}));
  EXPECT_EQ(Waiters("/x", 5), (std::vector<LockOwner>{kD, kE}));
}

TEST_F(LockTableTest, AStreamOfReadersDoesNotStarveAWriter) {
  ASSERT_EQ(Acquire(Shared("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/x", kB), 1).outcome, LockOutcome::kQueued);  // the writer
  // Readers keep coming; each would be compatible with the reader holding,
  // but none passes the queued writer.
  for (int i = 0; i < 5; ++i) {
    LockAnswer r = Acquire(Shared("/x", Owner(10 + i, "r")), 2 + i);
    EXPECT_EQ(r.outcome, LockOutcome::kQueued) << i;
  }
  Release("/x", kA, 1, 10);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kB});
  Release("/x", kB, 2, 11);
  EXPECT_EQ(Holders("/x").size(), 5u);  // then all the readers at once
  EXPECT_TRUE(Waiters("/x", 11).empty());
}

// ---- Reentrancy -------------------------------------------------------------

TEST_F(LockTableTest, ReacquireCountsHoldsWithTheSameTokenAndReleasesAsManyTimes) {
  const LockAnswer first = Acquire(Req("/x", kA), 0);
  ASSERT_EQ(first.outcome, LockOutcome::kGranted);
  for (uint32_t n = 2; n <= 3; ++n) {
    LockAnswer again = Acquire(Req("/x", kA), n);
    EXPECT_EQ(again.outcome, LockOutcome::kGranted);
    EXPECT_EQ(again.token, first.token);
    EXPECT_EQ(again.hold_count, n);
    EXPECT_TRUE(fx_.events.empty()) << "a re-acquire is not a new hold";
  }
  ASSERT_EQ(Acquire(Req("/x", kB), 4).outcome, LockOutcome::kQueued);

  EXPECT_EQ(Release("/x", kA, first.token, 5).hold_count, 2u);
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_EQ(Release("/x", kA, first.token, 6).hold_count, 1u);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kA});
  LockAnswer last = Release("/x", kA, first.token, 7);
  EXPECT_EQ(last.outcome, LockOutcome::kGranted);
  EXPECT_EQ(last.hold_count, 0u);
  EXPECT_EQ(Types(fx_), (std::vector<Type>{Type::kReleased, Type::kAcquired}));
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kB});
  EXPECT_EQ(Release("/x", kA, first.token, 8).outcome, LockOutcome::kNotHeld);
}

TEST_F(LockTableTest, ReacquireIsGrantedEvenWithOthersQueued) {
  ASSERT_EQ(Acquire(Shared("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/x", kB), 1).outcome, LockOutcome::kQueued);
  LockAnswer again = Acquire(Shared("/x", kA), 2);
  EXPECT_EQ(again.outcome, LockOutcome::kGranted);
  EXPECT_EQ(again.hold_count, 2u);
}

TEST_F(LockTableTest, SharedRequestOfTheExclusiveHolderIsAReacquire) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  LockAnswer again = Acquire(Shared("/x", kA), 1);
  EXPECT_EQ(again.outcome, LockOutcome::kGranted);
  EXPECT_EQ(again.token, 1u);
  EXPECT_EQ(again.hold_count, 2u);
  EXPECT_EQ(t_.Inspect("/x", 1)->holders[0].mode, LockMode::kExclusive);
}

TEST_F(LockTableTest, UpgradeFromSharedToExclusiveIsRefused) {
  ASSERT_EQ(Acquire(Shared("/x", kA), 0).outcome, LockOutcome::kGranted);
  LockAnswer up = Acquire(Req("/x", kA), 1);
  EXPECT_EQ(up.outcome, LockOutcome::kInvalid);
  EXPECT_NE(up.detail.find("upgrad"), std::string::npos) << up.detail;
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_EQ(HoldCount("/x", kA), 1u);
}

TEST_F(LockTableTest, ASecondRequestOfAWaitingOwnerIsRefused) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(WithId(Req("/x", kB), 1), 1).outcome, LockOutcome::kQueued);
  LockAnswer dup = Acquire(WithId(Req("/x", kB), 2), 2);
  EXPECT_EQ(dup.outcome, LockOutcome::kInvalid);
  EXPECT_NE(dup.detail.find("already waiting"), std::string::npos) << dup.detail;
  EXPECT_EQ(Waiters("/x", 2), std::vector<LockOwner>{kB});
}

TEST_F(LockTableTest, MalformedRequestsAreInvalid) {
  AcquireRequest r = Req("", kA);
  EXPECT_EQ(Acquire(r, 0).outcome, LockOutcome::kInvalid);
  r = Req("/x", Owner(0, "a"));
  EXPECT_EQ(Acquire(r, 0).outcome, LockOutcome::kInvalid);
  r = Req("/x", kA);
  r.wait_deadline_ms = -2;
  EXPECT_EQ(Acquire(r, 0).outcome, LockOutcome::kInvalid);
  r = Req("/x", kA);
  r.hold_ttl_ms = -1;
  EXPECT_EQ(Acquire(r, 0).outcome, LockOutcome::kInvalid);
  r = Req("/x", kA);
  r.mode = static_cast<LockMode>(7);
  EXPECT_EQ(Acquire(r, 0).outcome, LockOutcome::kInvalid);
  EXPECT_TRUE(t_.Paths("", 10).empty());
  EXPECT_EQ(t_.last_token(), 0u);
}

// ---- Queue order and aging --------------------------------------------------

TEST_F(LockTableTest, HigherPriorityFirstAndFifoAmongEquals) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  const LockOwner p0a = Owner(10, "p0a"), p5a = Owner(11, "p5a"), p0b = Owner(12, "p0b"),
                  p5b = Owner(13, "p5b");
  Acquire(WithPriority(Req("/x", p0a), 0), 1);
  Acquire(WithPriority(Req("/x", p5a), 5), 1);
  Acquire(WithPriority(Req("/x", p0b), 0), 1);
  Acquire(WithPriority(Req("/x", p5b), 5), 1);
  EXPECT_EQ(Waiters("/x", 1), (std::vector<LockOwner>{p5a, p5b, p0a, p0b}));

  std::vector<LockOwner> granted;
  LockOwner holder = kA;
  uint64_t token = 1;
  for (int i = 0; i < 4; ++i) {
    Release("/x", holder, token, 2);
    ASSERT_EQ(fx_.answers.size(), 1u);
    holder = fx_.answers[0].owner;
    token = fx_.answers[0].token;
    granted.push_back(holder);
  }
  EXPECT_EQ(granted, (std::vector<LockOwner>{p5a, p5b, p0a, p0b}));
}

// A long queue with mixed modes, waiters cancelled from the middle and aging
// under way: every release grants exactly the waiters that head the order
// Inspect reports (a full sort), in that order, as long as they are
// compatible with each other and the holders. Run with mixed priorities, with
// one priority (the queue is in arrival order: the pass takes its head), and
// with one priority but a leader clock that steps back now and then.
class LongQueueTest : public LockTableTest, public ::testing::WithParamInterface<int> {};

TEST_P(LongQueueTest, AGrantPassFollowsTheReportedOrder) {
  const int priorities = GetParam() == 0 ? 3 : 1;
  const bool clock_steps_back = GetParam() == 2;
  std::mt19937_64 rng(7 + static_cast<uint64_t>(GetParam()));
  const LockOwner first = Owner(1, "first");
  ASSERT_EQ(Acquire(Req("/q", first), 0).outcome, LockOutcome::kGranted);
  std::vector<LockOwner> waiting;
  int64_t now = 0;
  for (int64_t s = 2; s < 1202; ++s) {
    const LockOwner o = Owner(s, "w");
    AcquireRequest r = rng() % 4 == 0 ? Shared("/q", o) : Req("/q", o);
    r = WithPriority(std::move(r), static_cast<int32_t>(rng() % static_cast<uint64_t>(priorities)));
    now += static_cast<int64_t>(rng() % 40);
    if (clock_steps_back && rng() % 50 == 0) now -= 1500;
    ASSERT_EQ(Acquire(r, now).outcome, LockOutcome::kQueued);
    waiting.push_back(o);
  }
  for (int i = 0; i < 100; ++i) {  // cancel some from anywhere in the queue
    const size_t k = rng() % waiting.size();
    ASSERT_EQ(Cancel("/q", waiting[k], now).outcome, LockOutcome::kCancelled);
    waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(k));
  }
  std::vector<LockHolder> holders = t_.Inspect("/q", now)->holders;
  size_t rounds = 0;
  while (!holders.empty()) {
    now += static_cast<int64_t>(rng() % 300);
    const LockInfo before = *t_.Inspect("/q", now);
    // What a grant pass must do, from the reported order.
    std::vector<LockOwner> expect;
    bool shared_run = true;
    for (const LockWaiter& w : before.waiters) {
      const bool exclusive = w.request.mode == LockMode::kExclusive;
      if (!expect.empty() && (exclusive || !shared_run)) break;
      expect.push_back(w.request.owner);
      shared_run = !exclusive;
    }
    // Release every holder; the pass runs after the last.
    std::vector<LockOwner> granted;
    for (const LockHolder& h : holders) {
      ASSERT_EQ(Release("/q", h.owner, h.token, now).outcome, LockOutcome::kGranted);
      for (const LockAnswer& a : fx_.answers) granted.push_back(a.owner);
    }
    ASSERT_EQ(granted, expect) << "round " << rounds;
    holders = t_.Inspect("/q", now) ? t_.Inspect("/q", now)->holders : std::vector<LockHolder>{};
    ++rounds;
  }
  EXPECT_GT(rounds, 600u);
  EXPECT_FALSE(t_.Inspect("/q", now).has_value());
}

INSTANTIATE_TEST_SUITE_P(Priorities, LongQueueTest, ::testing::Values(0, 1, 2));

TEST_F(LockTableTest, AgingLetsAnOldWaiterPassALaterHigherPriorityOne) {
  // The old waiter has waited 5 intervals when the priority-5 one arrives:
  // equal effective priorities, and FIFO among equals.
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  Acquire(WithPriority(Req("/x", kB), 0), 0);
  Acquire(WithPriority(Req("/x", kC), 5), 5 * kAging);
  EXPECT_EQ(Waiters("/x", 5 * kAging), (std::vector<LockOwner>{kB, kC}));
  Release("/x", kA, 1, 5 * kAging);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kB});
}

TEST_F(LockTableTest, AgingCountsWholeIntervalsOnly) {
  // One millisecond short of 5 intervals, the priority-5 waiter still leads.
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  Acquire(WithPriority(Req("/x", kB), 0), 0);
  Acquire(WithPriority(Req("/x", kC), 5), 5 * kAging - 1);
  Release("/x", kA, 1, 5 * kAging - 1);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kC});
}

TEST_F(LockTableTest, LowPriorityWaiterIsNotStarvedByHigherPriorityArrivals) {
  constexpr int32_t kHigh = 10;
  constexpr int64_t kStepMs = 100;
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  const LockOwner low = Owner(2, "low");
  ASSERT_EQ(Acquire(Req("/x", low), 0).outcome, LockOutcome::kQueued);
  // Every step the holder releases and a new priority-10 waiter arrives, so
  // there is always a fresh high-priority waiter in the queue.
  int next = 0;
  ASSERT_EQ(Acquire(WithPriority(Req("/x", Owner(100 + next++, "h")), kHigh), kStepMs).outcome,
            LockOutcome::kQueued);
  LockOwner holder = kA;
  uint64_t token = 1;
  int64_t low_granted_ms = -1;
  int high_grants = 0;
  for (int64_t now = 2 * kStepMs; now <= 30 * kAging; now += kStepMs) {
    Release("/x", holder, token, now);
    ASSERT_EQ(fx_.answers.size(), 1u) << now;
    holder = fx_.answers[0].owner;
    token = fx_.answers[0].token;
    if (holder == low) {
      low_granted_ms = now;
      break;
    }
    ++high_grants;
    Acquire(WithPriority(Req("/x", Owner(100 + next++, "h")), kHigh), now);
  }
  // The bound: with a priority gap of 10, the low waiter leads once it has
  // waited 10 aging intervals longer than the waiter ahead of it (here
  // always one step old), and ties go to the earlier arrival.
  EXPECT_EQ(low_granted_ms, kHigh * kAging);
  EXPECT_LE(low_granted_ms, (kHigh + 1) * kAging);
  EXPECT_EQ(high_grants, 98);  // one per step from 200 ms to 9900 ms
}

TEST_F(LockTableTest, RegrantGrantsWhatAgingMadeGrantable) {
  ASSERT_EQ(Acquire(Shared("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(WithPriority(Req("/x", kB), 9), 0).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Shared("/x", kC), 0).outcome, LockOutcome::kQueued);  // behind B
  ASSERT_EQ(Acquire(WithPriority(Req("/x", kD), 1), 500).outcome, LockOutcome::kQueued);
  Cancel("/x", kB, 600);
  // D (priority 1) now leads C (priority 0): nothing is grantable.
  ASSERT_EQ(fx_.answers.size(), 1u);
  EXPECT_EQ(fx_.answers[0].owner, kB);
  Regrant(999);
  EXPECT_TRUE(fx_.answers.empty());
  EXPECT_TRUE(fx_.events.empty());
  // At 1000 C has aged to D's priority and arrived first: it joins A.
  Regrant(1000);
  ASSERT_EQ(fx_.answers.size(), 1u);
  EXPECT_EQ(fx_.answers[0].owner, kC);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kGranted);
  EXPECT_EQ(Holders("/x"), (std::vector<LockOwner>{kA, kC}));
  EXPECT_EQ(Waiters("/x", 1000), std::vector<LockOwner>{kD});
}

TEST_F(LockTableTest, TimeSteppingBackCountsAsNoWait) {
  // A new leader's clock may be behind the old one's.
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  Acquire(WithPriority(Req("/x", kB), 3), 5000);
  Acquire(WithPriority(Req("/x", kC), 0), 0);
  // At 1000, C has aged by 1 and B by nothing (not by -4): B leads.
  EXPECT_EQ(Waiters("/x", 1000), (std::vector<LockOwner>{kB, kC}));
  EXPECT_EQ(Waiters("/x", 4000), (std::vector<LockOwner>{kC, kB}));  // C: 4 > 3
}

// ---- Try-lock, deadlines, cancel --------------------------------------------

TEST_F(LockTableTest, TryLockAnswersWouldBlockAtOnce) {
  AcquireRequest try_b = Req("/x", kB);
  try_b.wait_deadline_ms = 0;
  EXPECT_EQ(Acquire(try_b, 0).outcome, LockOutcome::kGranted);  // free: granted
  AcquireRequest try_a = Req("/x", kA);
  try_a.wait_deadline_ms = 0;
  EXPECT_EQ(Acquire(try_a, 1).outcome, LockOutcome::kWouldBlock);
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_TRUE(Waiters("/x", 1).empty());
}

TEST_F(LockTableTest, WaitDeadlineAnswersTimeout) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  AcquireRequest r = WithId(Req("/x", kB), 4);
  r.wait_deadline_ms = 500;
  ASSERT_EQ(Acquire(r, 100).outcome, LockOutcome::kQueued);
  EXPECT_EQ(t_.NextDeadline(), std::optional<int64_t>(500));
  Expire(499);
  EXPECT_TRUE(fx_.answers.empty());
  Expire(500);
  ASSERT_EQ(fx_.answers.size(), 1u);
  EXPECT_EQ(fx_.answers[0].owner, kB);
  EXPECT_EQ(fx_.answers[0].request_id, 4u);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kTimeout);
  EXPECT_EQ(fx_.events,
            (std::vector<LockEvent>{{Type::kCancelled, "/x", kB, LockMode::kExclusive, 0}}));
  EXPECT_TRUE(Waiters("/x", 500).empty());
  EXPECT_EQ(t_.NextDeadline(), std::nullopt);
  EXPECT_EQ(t_.FindAnswer(2, 4)->outcome, LockOutcome::kTimeout);
}

TEST_F(LockTableTest, AWaiterPastItsDeadlineIsNotGrantedByALaterRelease) {
  // Release applied after the deadline but before the tick reached Expire.
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  AcquireRequest r = Req("/x", kB);
  r.wait_deadline_ms = 500;
  ASSERT_EQ(Acquire(r, 100).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Req("/x", kC), 200).outcome, LockOutcome::kQueued);
  Release("/x", kA, 1, 600);
  ASSERT_EQ(fx_.answers.size(), 2u);
  EXPECT_EQ(fx_.answers[0].owner, kB);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kTimeout);
  EXPECT_EQ(fx_.answers[1].owner, kC);
  EXPECT_EQ(fx_.answers[1].outcome, LockOutcome::kGranted);
}

TEST_F(LockTableTest, ARequestArrivingAfterItsOwnDeadlineTimesOutAtOnce) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  AcquireRequest r = Req("/x", kB);
  r.wait_deadline_ms = 100;
  EXPECT_EQ(Acquire(r, 100).outcome, LockOutcome::kTimeout);
  EXPECT_TRUE(Waiters("/x", 100).empty());
}

TEST_F(LockTableTest, CancelWithdrawsAWaiter) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(WithId(Req("/x", kB), 7), 1).outcome, LockOutcome::kQueued);
  LockAnswer c = Cancel("/x", kB, 2, /*id=*/8);
  EXPECT_EQ(c.outcome, LockOutcome::kCancelled);
  EXPECT_EQ(c.request_id, 8u);
  ASSERT_EQ(fx_.answers.size(), 1u);  // the waiter's own answer
  EXPECT_EQ(fx_.answers[0].request_id, 7u);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kCancelled);
  EXPECT_EQ(Types(fx_), std::vector<Type>{Type::kCancelled});
  EXPECT_TRUE(Waiters("/x", 2).empty());
  EXPECT_EQ(Cancel("/x", kB, 3).outcome, LockOutcome::kNotWaiting);
  EXPECT_EQ(Cancel("/nope", kB, 3).outcome, LockOutcome::kNotWaiting);
  EXPECT_EQ(Cancel("/x", kA, 3).outcome, LockOutcome::kNotWaiting);  // holds, not waiting
}

TEST_F(LockTableTest, CancellingTheExclusiveWaiterLetsSharedOnesJoin) {
  ASSERT_EQ(Acquire(Shared("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/x", kB), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Shared("/x", kC), 2).outcome, LockOutcome::kQueued);
  Cancel("/x", kB, 3);
  EXPECT_EQ(Holders("/x"), (std::vector<LockOwner>{kA, kC}));
}

// ---- Hold TTL ---------------------------------------------------------------

TEST_F(LockTableTest, HoldTtlExpiresAndTheNextWaiterIsGranted) {
  AcquireRequest r = Req("/x", kA);
  r.hold_ttl_ms = 500;
  ASSERT_EQ(Acquire(r, 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/x", kB), 10).outcome, LockOutcome::kQueued);
  EXPECT_EQ(t_.NextDeadline(), std::optional<int64_t>(500));
  Expire(499);
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_TRUE(t_.IsHolderToken("/x", 1));
  Expire(500);
  EXPECT_EQ(fx_.events,
            (std::vector<LockEvent>{{Type::kExpired, "/x", kA, LockMode::kExclusive, 1},
                                    {Type::kAcquired, "/x", kB, LockMode::kExclusive, 2}}));
  EXPECT_FALSE(t_.IsHolderToken("/x", 1));
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kB});
  EXPECT_EQ(t_.NextDeadline(), std::nullopt);
}

TEST_F(LockTableTest, ARenewedHoldDoesNotExpireAtTheOldDeadline) {
  AcquireRequest r = Req("/x", kA);
  r.hold_ttl_ms = 500;
  ASSERT_EQ(Acquire(r, 0).outcome, LockOutcome::kGranted);
  LockAnswer renewed = t_.Renew("/x", kA, 1, 500, 0, 400);
  EXPECT_EQ(renewed.outcome, LockOutcome::kGranted);
  EXPECT_EQ(renewed.token, 1u);
  EXPECT_EQ(t_.NextDeadline(), std::optional<int64_t>(900));
  Expire(500);
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kA});
  Expire(900);
  EXPECT_EQ(Types(fx_), std::vector<Type>{Type::kExpired});
  EXPECT_TRUE(t_.Paths("", 10).empty());
}

TEST_F(LockTableTest, RenewWithZeroRemovesTheTtl) {
  AcquireRequest r = Req("/x", kA);
  r.hold_ttl_ms = 500;
  ASSERT_EQ(Acquire(r, 0).outcome, LockOutcome::kGranted);
  EXPECT_EQ(t_.Renew("/x", kA, 1, 0, 0, 100).outcome, LockOutcome::kGranted);
  EXPECT_EQ(t_.NextDeadline(), std::nullopt);
  Expire(1000000);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kA});
  EXPECT_EQ(t_.Renew("/x", kA, 1, -1, 0, 100).outcome, LockOutcome::kInvalid);
}

TEST_F(LockTableTest, ReleaseRenewAndSetValueCheckOwnerAndToken) {
  AcquireRequest r = Req("/x", kA);
  r.value = "v1";
  ASSERT_EQ(Acquire(r, 0).outcome, LockOutcome::kGranted);
  EXPECT_EQ(Release("/x", kB, 1, 1).outcome, LockOutcome::kNotHeld);
  EXPECT_EQ(Release("/x", kA, 2, 1).outcome, LockOutcome::kBadToken);
  EXPECT_EQ(Release("/y", kA, 1, 1).outcome, LockOutcome::kNotHeld);
  EXPECT_EQ(t_.Renew("/x", kB, 1, 10, 0, 1).outcome, LockOutcome::kNotHeld);
  EXPECT_EQ(t_.Renew("/x", kA, 9, 10, 0, 1).outcome, LockOutcome::kBadToken);
  EXPECT_EQ(t_.SetValue("/x", kB, 1, "v2").outcome, LockOutcome::kNotHeld);
  EXPECT_EQ(t_.SetValue("/x", kA, 9, "v2").outcome, LockOutcome::kBadToken);
  EXPECT_EQ(t_.Inspect("/x", 1)->holders[0].value, "v1");
  EXPECT_EQ(t_.SetValue("/x", kA, 1, "v2").outcome, LockOutcome::kGranted);
  EXPECT_EQ(t_.Inspect("/x", 1)->holders[0].value, "v2");
  EXPECT_EQ(HoldCount("/x", kA), 1u);
  EXPECT_TRUE(fx_.events.empty());
}

// ---- Conditions -------------------------------------------------------------

TEST_F(LockTableTest, ConditionsAreCheckedOnAnImmediateGrant) {
  keys_["/cfg"] = "on";
  AcquireRequest ok = Req("/x", kA);
  ok.conditions = {ValueIs("/cfg", "on")};
  EXPECT_EQ(Acquire(ok, 0).outcome, LockOutcome::kGranted);
  AcquireRequest bad = Req("/y", kA);
  bad.conditions = {ValueIs("/cfg", "off")};
  EXPECT_EQ(Acquire(bad, 0).outcome, LockOutcome::kConditionFailed);
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_EQ(t_.Paths("", 10), std::vector<std::string>{"/x"});
  EXPECT_EQ(checks_, 2);
}

TEST_F(LockTableTest, ConditionsFailingWhenAWaiterReachesTheHeadDropIt) {
  keys_["/cfg"] = "off";
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  AcquireRequest cond = WithId(Req("/x", kB), 3);
  cond.conditions = {ValueIs("/cfg", "on")};
  ASSERT_EQ(Acquire(cond, 1).outcome, LockOutcome::kQueued);
  EXPECT_EQ(checks_, 0) << "conditions are checked at grant time, not when queueing";
  ASSERT_EQ(Acquire(Req("/x", kC), 2).outcome, LockOutcome::kQueued);

  Release("/x", kA, 1, 3);
  ASSERT_EQ(fx_.answers.size(), 2u);
  EXPECT_EQ(fx_.answers[0].owner, kB);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kConditionFailed);
  EXPECT_EQ(fx_.answers[1].owner, kC);  // the pass went on
  EXPECT_EQ(fx_.answers[1].outcome, LockOutcome::kGranted);
  EXPECT_EQ(Types(fx_), (std::vector<Type>{Type::kReleased, Type::kCancelled, Type::kAcquired}));
  EXPECT_EQ(t_.FindAnswer(2, 3)->outcome, LockOutcome::kConditionFailed);
}

TEST_F(LockTableTest, ConditionsHoldingWhenAWaiterReachesTheHeadGrantIt) {
  keys_["/cfg"] = "off";
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  AcquireRequest cond = Req("/x", kB);
  cond.conditions = {ValueIs("/cfg", "on")};
  ASSERT_EQ(Acquire(cond, 1).outcome, LockOutcome::kQueued);
  keys_["/cfg"] = "on";  // true by the time the lock is free
  Release("/x", kA, 1, 3);
  ASSERT_EQ(fx_.answers.size(), 1u);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kGranted);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kB});
  EXPECT_EQ(checks_, 1);
}

// ---- Deadlock ---------------------------------------------------------------

TEST_F(LockTableTest, DeadlockOfTwoIsRefusedWithTheCycle) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kB), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kA), 1).outcome, LockOutcome::kQueued);
  LockAnswer d = Acquire(Req("/x", kB), 2);
  EXPECT_EQ(d.outcome, LockOutcome::kDeadlock);
  EXPECT_EQ(d.detail,
            "session 2 owner b waits for /x held by session 1 owner a; "
            "session 1 owner a waits for /y held by session 2 owner b");
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_TRUE(Waiters("/x", 2).empty());
}

TEST_F(LockTableTest, DeadlockOfThreeIsRefusedWithTheCycle) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kB), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/z", kC), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kA), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Req("/z", kB), 1).outcome, LockOutcome::kQueued);
  LockAnswer d = Acquire(Req("/x", kC), 2);
  EXPECT_EQ(d.outcome, LockOutcome::kDeadlock);
  EXPECT_EQ(d.detail,
            "session 3 owner c waits for /x held by session 1 owner a; "
            "session 1 owner a waits for /y held by session 2 owner b; "
            "session 2 owner b waits for /z held by session 3 owner c");
}

TEST_F(LockTableTest, DeadlockOfSixIsRefusedWithTheCycle) {
  constexpr int kN = 6;
  auto owner = [](int i) { return Owner(i + 1, "o" + std::to_string(i)); };
  auto path = [](int i) { return "/l" + std::to_string(i % kN); };
  for (int i = 0; i < kN; ++i)
    ASSERT_EQ(Acquire(Req(path(i), owner(i)), 0).outcome, LockOutcome::kGranted);
  for (int i = 0; i + 1 < kN; ++i) {
    ASSERT_EQ(Acquire(Req(path(i + 1), owner(i)), 1).outcome, LockOutcome::kQueued) << i;
  }
  LockAnswer d = Acquire(Req(path(0), owner(kN - 1)), 2);
  EXPECT_EQ(d.outcome, LockOutcome::kDeadlock);
  std::string want;
  for (int k = 0; k < kN; ++k) {
    const int from = (kN - 1 + k) % kN, to = (from + 1) % kN;
    if (!want.empty()) want += "; ";
    want += "session " + std::to_string(from + 1) + " owner o" + std::to_string(from) +
            " waits for " + path(to) + " held by session " + std::to_string(to + 1) + " owner o" +
            std::to_string(to);
  }
  EXPECT_EQ(d.detail, want);
  // The refused request left no trace, and the chain still works.
  Release(path(0), owner(0), 1, 3);
  EXPECT_TRUE(fx_.answers.empty());
}

TEST_F(LockTableTest, AChainThatIsNotACycleWaits) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kB), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/z", kC), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kA), 1).outcome, LockOutcome::kQueued);  // A -> B
  ASSERT_EQ(Acquire(Req("/z", kB), 1).outcome, LockOutcome::kQueued);  // B -> C
  // D waits for A at the start of the chain: D -> A -> B -> C, no cycle.
  EXPECT_EQ(Acquire(Req("/x", kD), 2).outcome, LockOutcome::kQueued);
  // An owner may wait on several locks: A also waits for E, outside the
  // chain.
  ASSERT_EQ(Acquire(Req("/w", kE), 2).outcome, LockOutcome::kGranted);
  EXPECT_EQ(Acquire(Req("/w", kA), 3).outcome, LockOutcome::kQueued);
}

TEST_F(LockTableTest, SharedWithSharedIsNotAWaitForEdge) {
  // A holds /x shared and waits for B's /y. B asking /x shared does not
  // conflict with A: granted at once, no deadlock.
  ASSERT_EQ(Acquire(Shared("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kB), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kA), 1).outcome, LockOutcome::kQueued);
  EXPECT_EQ(Acquire(Shared("/x", kB), 2).outcome, LockOutcome::kGranted);
}

TEST_F(LockTableTest, ASharedWaiterAheadIsNotABlockerOfASharedRequest) {
  // E holds /x exclusive. A waits for /x shared, and for B's /z. B asks /x
  // shared: it waits for E only (A, ahead of it, is compatible), so there
  // is no cycle B -> A -> B: when E leaves, A and B share /x.
  ASSERT_EQ(Acquire(Req("/x", kE), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/z", kB), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Shared("/x", kA), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Req("/z", kA), 1).outcome, LockOutcome::kQueued);
  EXPECT_EQ(Acquire(Shared("/x", kB), 2).outcome, LockOutcome::kQueued);
  Release("/x", kE, 1, 3);
  EXPECT_EQ(Holders("/x"), (std::vector<LockOwner>{kA, kB}));
}

TEST_F(LockTableTest, ARequestQueuedAheadOfOthersCanCloseACycleThroughThem) {
  // E holds /L; V waits for /L shared at priority 10; B holds /M and waits
  // for /L shared at priority 0; V also waits for /M. An exclusive request
  // of A at priority 5 lands between V and B: A waits for V, and B now
  // waits for A, which closes A -> V -> B -> A.
  const LockOwner v = Owner(6, "v");
  ASSERT_EQ(Acquire(Req("/L", kE), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/M", kB), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(WithPriority(Shared("/L", v), 10), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Shared("/L", kB), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Req("/M", v), 1).outcome, LockOutcome::kQueued);

  LockAnswer d = Acquire(WithPriority(Req("/L", kA), 5), 2);
  EXPECT_EQ(d.outcome, LockOutcome::kDeadlock);
  EXPECT_EQ(d.detail,
            "session 1 owner a waits for /L queued behind session 6 owner v; "
            "session 6 owner v waits for /M held by session 2 owner b; "
            "session 2 owner b waits for /L queued behind session 1 owner a");
  EXPECT_EQ(Waiters("/L", 2), (std::vector<LockOwner>{v, kB}));
  // Behind B it closes nothing.
  EXPECT_EQ(Acquire(WithPriority(Req("/L", kA), 0), 2).outcome, LockOutcome::kQueued);
  EXPECT_EQ(Waiters("/L", 2), (std::vector<LockOwner>{v, kB, kA}));
}

TEST_F(LockTableTest, ARefusedRequestChangesNothing) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kB), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/y", kA), 1).outcome, LockOutcome::kQueued);
  const std::string before = t_.Serialize();
  ASSERT_EQ(Acquire(Req("/x", kB), 2).outcome, LockOutcome::kDeadlock);
  AcquireRequest try_c = Req("/x", kC);
  try_c.wait_deadline_ms = 0;
  ASSERT_EQ(Acquire(try_c, 2).outcome, LockOutcome::kWouldBlock);
  EXPECT_EQ(t_.Serialize(), before);
}

// ---- Tokens -----------------------------------------------------------------

TEST_F(LockTableTest, TokensStrictlyIncreaseAcrossLocks) {
  std::vector<uint64_t> tokens;
  auto note = [&](const LockAnswer& a) {
    if (a.outcome == LockOutcome::kGranted) tokens.push_back(a.token);
  };
  note(Acquire(Req("/a", kA), 0));
  note(Acquire(Req("/b", kB), 0));
  note(Acquire(Req("/c", kC), 0));
  ASSERT_EQ(Acquire(Shared("/c", kD), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Shared("/c", kE), 1).outcome, LockOutcome::kQueued);
  Release("/a", kA, 1, 2);
  note(Acquire(Req("/a", kB), 3));
  Release("/c", kC, 3, 4);
  for (const LockAnswer& a : fx_.answers) note(a);
  ASSERT_EQ(tokens.size(), 6u);
  for (size_t i = 1; i < tokens.size(); ++i) EXPECT_LT(tokens[i - 1], tokens[i]);
  EXPECT_EQ(tokens.back(), t_.last_token());
  EXPECT_EQ(tokens, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
}

// ---- Sessions ---------------------------------------------------------------

TEST_F(LockTableTest, EndSessionReleasesHoldsDropsWaitsAndGrantsTheNext) {
  const LockOwner a2 = Owner(1, "a2");  // the same session, another owner
  ASSERT_EQ(Acquire(Req("/a", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Shared("/b", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/c", kC), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(WithId(Req("/c", a2), 5), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Req("/a", kB), 1).outcome, LockOutcome::kQueued);

  EndSession(1, 2);
  EXPECT_EQ(fx_.events,
            (std::vector<LockEvent>{{Type::kCancelled, "/c", a2, LockMode::kExclusive, 0},
                                    {Type::kReleased, "/a", kA, LockMode::kExclusive, 1},
                                    {Type::kReleased, "/b", kA, LockMode::kShared, 2},
                                    {Type::kAcquired, "/a", kB, LockMode::kExclusive, 4}}));
  ASSERT_EQ(fx_.answers.size(), 2u);
  EXPECT_EQ(fx_.answers[0].owner, a2);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kSessionEnded);
  EXPECT_EQ(fx_.answers[1].owner, kB);
  EXPECT_EQ(fx_.answers[1].outcome, LockOutcome::kGranted);
  EXPECT_EQ(t_.Paths("", 10), (std::vector<std::string>{"/a", "/c"}));
  EXPECT_TRUE(Waiters("/c", 2).empty());
}

TEST_F(LockTableTest, AWaiterWhoseSessionEndedIsNeverGranted) {
  // etcd issue 11456: the next waiter's session expired while it was queued,
  // and it was handed the lock anyway.
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/x", kB), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Req("/x", kC), 2).outcome, LockOutcome::kQueued);
  EndSession(kB.session, 3);
  ASSERT_EQ(fx_.answers.size(), 1u);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kSessionEnded);
  Release("/x", kA, 1, 4);
  ASSERT_EQ(fx_.answers.size(), 1u);
  EXPECT_EQ(fx_.answers[0].owner, kC);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kC});
}

TEST_F(LockTableTest, EndingTheHoldersSessionDoesNotGrantItsOwnWaiter) {
  const LockOwner a2 = Owner(1, "a2");
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/x", a2), 1).outcome, LockOutcome::kQueued);
  ASSERT_EQ(Acquire(Req("/x", kB), 2).outcome, LockOutcome::kQueued);
  EndSession(1, 3);
  EXPECT_EQ(Holders("/x"), std::vector<LockOwner>{kB});
  ASSERT_EQ(fx_.answers.size(), 2u);
  EXPECT_EQ(fx_.answers[0].owner, a2);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kSessionEnded);
  EXPECT_EQ(fx_.answers[1].owner, kB);
  EXPECT_EQ(fx_.answers[1].outcome, LockOutcome::kGranted);
}

// ---- Idempotency ------------------------------------------------------------

TEST_F(LockTableTest, RetriedGrantedAcquireReturnsTheFirstAnswer) {
  const LockAnswer first = Acquire(WithId(Req("/x", kA), 7), 0);
  ASSERT_EQ(first.outcome, LockOutcome::kGranted);
  const LockAnswer retry = Acquire(WithId(Req("/x", kA), 7), 1);
  EXPECT_EQ(retry, first);
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_TRUE(fx_.answers.empty());
  EXPECT_EQ(HoldCount("/x", kA), 1u) << "not applied twice";
  EXPECT_EQ(t_.FindAnswer(1, 7), first);
}

TEST_F(LockTableTest, RetriedQueuedAcquireIsQueuedThenGetsTheFinalAnswer) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(WithId(Req("/x", kB), 3), 1).outcome, LockOutcome::kQueued);
  EXPECT_EQ(t_.FindAnswer(2, 3), std::nullopt);
  EXPECT_EQ(Acquire(WithId(Req("/x", kB), 3), 2).outcome, LockOutcome::kQueued);
  EXPECT_TRUE(fx_.events.empty());
  EXPECT_EQ(Waiters("/x", 2), std::vector<LockOwner>{kB});

  Release("/x", kA, 1, 3);
  ASSERT_EQ(fx_.answers.size(), 1u);
  const LockAnswer granted = fx_.answers[0];
  EXPECT_EQ(granted.outcome, LockOutcome::kGranted);
  EXPECT_EQ(granted.request_id, 3u);
  EXPECT_EQ(t_.FindAnswer(2, 3), granted);
  EXPECT_EQ(Acquire(WithId(Req("/x", kB), 3), 4), granted);
  EXPECT_EQ(HoldCount("/x", kB), 1u);
}

TEST_F(LockTableTest, RetriedReleaseIsAppliedOnce) {
  ASSERT_EQ(Acquire(WithId(Req("/x", kA), 1), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(WithId(Req("/x", kA), 2), 0).hold_count, 2u);
  const LockAnswer first = Release("/x", kA, 1, 1, /*id=*/10);
  EXPECT_EQ(first.hold_count, 1u);
  EXPECT_EQ(Release("/x", kA, 1, 2, /*id=*/10), first);
  EXPECT_EQ(HoldCount("/x", kA), 1u);
  EXPECT_EQ(Release("/x", kA, 1, 3, /*id=*/11).hold_count, 0u);
}

TEST_F(LockTableTest, RetriedRefusalsRenewsAndCancelsReturnTheFirstAnswer) {
  ASSERT_EQ(Acquire(Req("/x", kA), 0).outcome, LockOutcome::kGranted);
  AcquireRequest try_b = WithId(Req("/x", kB), 5);
  try_b.wait_deadline_ms = 0;
  ASSERT_EQ(Acquire(try_b, 1).outcome, LockOutcome::kWouldBlock);
  Release("/x", kA, 1, 2);
  EXPECT_EQ(Acquire(try_b, 3).outcome, LockOutcome::kWouldBlock);  // not applied again
  EXPECT_TRUE(t_.Paths("", 10).empty());

  ASSERT_EQ(Acquire(Req("/y", kA), 4).outcome, LockOutcome::kGranted);  // token 2
  const LockAnswer renew = t_.Renew("/y", kA, 2, 100, /*id=*/20, 4);
  ASSERT_EQ(renew.outcome, LockOutcome::kGranted);
  EXPECT_EQ(t_.Renew("/y", kA, 2, 5000, /*id=*/20, 50), renew);
  EXPECT_EQ(t_.NextDeadline(), std::optional<int64_t>(104));

  ASSERT_EQ(Acquire(WithId(Req("/y", kB), 6), 5).outcome, LockOutcome::kQueued);
  const LockAnswer cancel = Cancel("/y", kB, 6, /*id=*/7);
  ASSERT_EQ(cancel.outcome, LockOutcome::kCancelled);
  EXPECT_EQ(Cancel("/y", kB, 7, /*id=*/7), cancel);
  EXPECT_TRUE(fx_.answers.empty());
  EXPECT_EQ(t_.FindAnswer(2, 6)->outcome, LockOutcome::kCancelled);
}

TEST_F(LockTableTest, RememberedAnswersAreBoundedAndDroppedWithTheSession) {
  const uint64_t n = LockTable::kMaxRememberedRequests + 1;
  for (uint64_t id = 1; id <= n; ++id) {
    ASSERT_EQ(Release("/x", kA, 1, 0, id).outcome, LockOutcome::kNotHeld);
  }
  EXPECT_EQ(t_.FindAnswer(1, 1), std::nullopt);  // the oldest went
  EXPECT_EQ(t_.FindAnswer(1, 2)->outcome, LockOutcome::kNotHeld);
  EXPECT_EQ(t_.FindAnswer(1, n)->outcome, LockOutcome::kNotHeld);
  // Forgotten, id 1 is applied as new.
  ASSERT_EQ(Acquire(Req("/x", kA), 1).outcome, LockOutcome::kGranted);
  EXPECT_EQ(Release("/x", kA, 1, 2, 1).outcome, LockOutcome::kGranted);
  EndSession(1, 3);
  EXPECT_EQ(t_.FindAnswer(1, n), std::nullopt);
  EXPECT_EQ(t_.FindAnswer(1, 1), std::nullopt);
}

// ---- Reads ------------------------------------------------------------------

TEST_F(LockTableTest, EmptyLocksAreErasedAndPathsListTheRest) {
  ASSERT_EQ(Acquire(Req("/a", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/b", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/c", kA), 0).outcome, LockOutcome::kGranted);
  EXPECT_EQ(t_.Paths("/b", 10), (std::vector<std::string>{"/b", "/c"}));
  EXPECT_EQ(t_.Paths("", 2), (std::vector<std::string>{"/a", "/b"}));
  Release("/b", kA, 2, 1);
  EXPECT_EQ(t_.Paths("", 10), (std::vector<std::string>{"/a", "/c"}));
  EXPECT_EQ(t_.Inspect("/b", 1), std::nullopt);
  EXPECT_TRUE(t_.IsHolderToken("/c", 3));
  EXPECT_FALSE(t_.IsHolderToken("/c", 1));
  EXPECT_FALSE(t_.IsHolderToken("/b", 2));
}

// ---- Image ------------------------------------------------------------------

// A table with something of everything: shared and exclusive holders,
// re-acquires, TTLs, values, waiters with priorities, deadlines, conditions
// and request ids, remembered answers of several sessions.
void Populate(LockTable* t, const ConditionCheck& check) {
  LockEffects fx;
  auto acquire = [&](AcquireRequest r, int64_t now) { t->Acquire(r, now, check, &fx); };
  AcquireRequest r = WithId(Req("/a", kA), 1);
  r.hold_ttl_ms = 5000;
  r.value = "leader-a";
  acquire(r, 0);
  acquire(WithId(Req("/a", kA), 2), 10);
  r = WithId(WithPriority(Req("/a", kB), 3), 1);
  r.wait_deadline_ms = 4000;
  r.conditions = {ValueIs("/cfg", "on"), ValueIs(std::string("/k\0x", 4), std::string("v\0", 2))};
  acquire(r, 20);
  r = WithId(WithPriority(Shared("/a", kC), -2), 9);
  r.hold_ttl_ms = 700;
  acquire(r, 30);
  acquire(Shared("/b", kB), 40);
  acquire(Shared("/b", kD), 40);
  acquire(WithId(Req("/b", kE), 4), 50);
  acquire(Shared("/b", kC), 60);
  t->Release("/z", kD, 1, /*request_id=*/12, 70, check, &fx);
}

TEST_F(LockTableTest, SerializeDeserializeSerializeIsByteIdentical) {
  keys_["/cfg"] = "on";
  Populate(&t_, check_);
  const std::string image = t_.Serialize();
  Result<LockTable> restored = LockTable::Deserialize(image);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->Serialize(), image);
  EXPECT_EQ(restored->last_token(), t_.last_token());
  EXPECT_EQ(restored->NextDeadline(), t_.NextDeadline());
  EXPECT_EQ(restored->Paths("", 10), t_.Paths("", 10));
  auto info = restored->Inspect("/a", 100);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->waiters.size(), 2u);
  EXPECT_EQ(info->waiters[0].request.conditions.size(), 2u);
  EXPECT_EQ(info->waiters[0].request.conditions[1].range.key, std::string("/k\0x", 4));
  EXPECT_EQ(info->holders[0].value, "leader-a");
}

TEST_F(LockTableTest, ARestoredTableBehavesTheSame) {
  keys_["/cfg"] = "on";
  Populate(&t_, check_);
  Result<LockTable> restored = LockTable::Deserialize(t_.Serialize());
  ASSERT_TRUE(restored.ok());
  LockTable& u = *restored;

  // The same operations on both, answers and effects compared.
  auto both = [&](auto op) {
    LockEffects fa, fb;
    const LockAnswer a = op(t_, &fa);
    const LockAnswer b = op(u, &fb);
    EXPECT_EQ(a, b);
    EXPECT_EQ(fa.answers, fb.answers);
    EXPECT_EQ(fa.events, fb.events);
    EXPECT_EQ(t_.Serialize(), u.Serialize());
    return fa;
  };
  // Retries of remembered requests: a grant and a pending wait.
  both([&](LockTable& t, LockEffects* fx) {
    return t.Acquire(WithId(Req("/a", kA), 2), 100, check_, fx);
  });
  both([&](LockTable& t, LockEffects* fx) {
    return t.Acquire(WithId(Req("/a", kB), 1), 100, check_, fx);
  });
  // B's wait deadline (4000) passes; then A releases twice and C, shared,
  // is granted /a with its hold TTL.
  LockEffects timed_out = both([&](LockTable& t, LockEffects* fx) {
    t.Expire(4000, check_, fx);
    return LockAnswer{};
  });
  ASSERT_EQ(timed_out.answers.size(), 1u);
  EXPECT_EQ(timed_out.answers[0].outcome, LockOutcome::kTimeout);
  both([&](LockTable& t, LockEffects* fx) { return t.Release("/a", kA, 1, 30, 4100, check_, fx); });
  LockEffects released = both(
      [&](LockTable& t, LockEffects* fx) { return t.Release("/a", kA, 1, 31, 4100, check_, fx); });
  EXPECT_EQ(Types(released), (std::vector<Type>{Type::kReleased, Type::kAcquired}));
  both([&](LockTable& t, LockEffects* fx) {
    t.Regrant(4200, check_, fx);
    return LockAnswer{};
  });
  both([&](LockTable& t, LockEffects* fx) {
    t.EndSession(kB.session, 4300, check_, fx);
    return LockAnswer{};
  });
  both([&](LockTable& t, LockEffects* fx) {
    return t.Release("/b", kD, 3, 0, 4400, check_, fx);  // E's turn
  });
  LockEffects expired = both([&](LockTable& t, LockEffects* fx) {
    t.Expire(10000, check_, fx);
    return LockAnswer{};
  });
  EXPECT_EQ(Types(expired), std::vector<Type>{Type::kExpired});
  EXPECT_EQ(t_.FindAnswer(kB.session, 1), u.FindAnswer(kB.session, 1));
  EXPECT_EQ(t_.FindAnswer(kE.session, 4), u.FindAnswer(kE.session, 4));
  ASSERT_TRUE(u.FindAnswer(kE.session, 4).has_value());
  EXPECT_EQ(u.FindAnswer(kE.session, 4)->outcome, LockOutcome::kGranted);
}

TEST_F(LockTableTest, EmptyTableRoundTrips) {
  const std::string image = t_.Serialize();
  Result<LockTable> restored = LockTable::Deserialize(image);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->Serialize(), image);
}

TEST_F(LockTableTest, DeserializeRefusesEveryTruncation) {
  keys_["/cfg"] = "on";
  Populate(&t_, check_);
  const std::string image = t_.Serialize();
  for (size_t n = 0; n < image.size(); ++n) {
    Result<LockTable> r = LockTable::Deserialize(std::string_view(image).substr(0, n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " of " << image.size() << " bytes accepted";
    EXPECT_EQ(r.status().code(), ErrorCode::kCorruption);
  }
  EXPECT_FALSE(LockTable::Deserialize(image + "x").ok()) << "trailing bytes";
  std::string bad_version = image;
  bad_version[0] = 2;
  EXPECT_FALSE(LockTable::Deserialize(bad_version).ok());
}

TEST_F(LockTableTest, DeserializeOfGarbledBytesFailsOrYieldsAUsableCanonicalTable) {
  keys_["/cfg"] = "on";
  Populate(&t_, check_);
  const std::string image = t_.Serialize();
  int refused = 0, accepted = 0;
  for (size_t i = 0; i < image.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string garbled = image;
      garbled[i] = static_cast<char>(garbled[i] ^ mask);
      Result<LockTable> r = LockTable::Deserialize(garbled);
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), ErrorCode::kCorruption);
        ++refused;
        continue;
      }
      // Accepted (a changed value, time or id): then it is canonical, and
      // the table works.
      ++accepted;
      EXPECT_EQ(r->Serialize(), garbled) << "byte " << i;
      LockEffects fx;
      r->Regrant(1 << 20, check_, &fx);
      r->Expire(std::numeric_limits<int64_t>::max(), check_, &fx);
      // End the sessions of whatever is left until nothing is.
      for (int round = 0; round < 100 && !r->Paths("", 1).empty(); ++round) {
        std::optional<LockInfo> info = r->Inspect(r->Paths("", 1)[0], 1 << 21);
        ASSERT_TRUE(info.has_value());
        const int64_t session = !info->holders.empty() ? info->holders[0].owner.session
                                                       : info->waiters[0].request.owner.session;
        r->EndSession(session, 1 << 21, check_, &fx);
      }
      EXPECT_TRUE(r->Paths("", 100).empty()) << "byte " << i;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);
  // Lengths and counts that promise more than there is.
  std::string huge = image;
  huge[17] = static_cast<char>(0xff);  // the low byte of nlocks
  huge[20] = static_cast<char>(0x7f);
  EXPECT_FALSE(LockTable::Deserialize(huge).ok());
}

// ---- Planted bugs (the simulator's --inject-bug) ------------------------------

// Off by default: the table above is the correct one. With skip_queue, an
// exclusive request joins shared holders, passing a queued writer.
TEST_F(LockTableTest, PlantedSkipQueueGrantsExclusiveNextToShared) {
  LockBugs bugs;
  bugs.skip_queue = true;
  t_ = LockTable(bugs);
  ASSERT_EQ(Acquire(Shared("/x", kA), 0).outcome, LockOutcome::kGranted);
  ASSERT_EQ(Acquire(Req("/x", kB), 0).outcome, LockOutcome::kGranted);  // the bug
  EXPECT_EQ(Holders("/x"), (std::vector<LockOwner>{kA, kB}));
  // Against an exclusive holder it still queues.
  EXPECT_EQ(Acquire(Req("/x", kC), 0).outcome, LockOutcome::kQueued);
  // And the flag survives a restore (the state machine passes it back in).
  Result<LockTable> restored = LockTable::Deserialize(t_.Serialize(), bugs);
  ASSERT_TRUE(restored.ok());
  LockEffects fx;
  EXPECT_EQ(restored->Acquire(Shared("/y", kD), 0, check_, &fx).outcome, LockOutcome::kGranted);
  EXPECT_EQ(restored->Acquire(Req("/y", kE), 0, check_, &fx).outcome, LockOutcome::kGranted);
}

// With reuse_token, a waiter granted by a grant pass gets the previous token.
TEST_F(LockTableTest, PlantedReuseTokenRepeatsATokenOnHandOff) {
  LockBugs bugs;
  bugs.reuse_token = true;
  t_ = LockTable(bugs);
  const LockAnswer a = Acquire(Req("/x", kA), 0);
  ASSERT_EQ(Acquire(Req("/x", kB), 0).outcome, LockOutcome::kQueued);
  Release("/x", kA, a.token, 1);
  ASSERT_EQ(fx_.answers.size(), 1u);
  EXPECT_EQ(fx_.answers[0].outcome, LockOutcome::kGranted);
  EXPECT_EQ(fx_.answers[0].token, a.token);  // the bug: not a.token + 1
  EXPECT_TRUE(t_.IsHolderToken("/x", a.token));
}

// With guard_any_holder, any token passes the guard while the lock is held.
TEST_F(LockTableTest, PlantedGuardAnyHolderAcceptsAStaleToken) {
  LockBugs bugs;
  bugs.guard_any_holder = true;
  t_ = LockTable(bugs);
  const LockAnswer a = Acquire(Req("/x", kA), 0);
  Release("/x", kA, a.token, 1);
  const LockAnswer b = Acquire(Req("/x", kB), 2);
  ASSERT_NE(a.token, b.token);
  EXPECT_TRUE(t_.IsHolderToken("/x", a.token));  // the bug
  EXPECT_FALSE(t_.IsHolderToken("/y", a.token));
}

// With keep_ended_waits, a waiter outlives its session and is granted later.
TEST_F(LockTableTest, PlantedKeepEndedWaitsGrantsAnEndedSession) {
  LockBugs bugs;
  bugs.keep_ended_waits = true;
  t_ = LockTable(bugs);
  const LockAnswer a = Acquire(Req("/x", kA), 0);
  ASSERT_EQ(Acquire(Req("/x", kB), 0).outcome, LockOutcome::kQueued);
  EndSession(kB.session, 1);
  EXPECT_EQ(Waiters("/x", 1), (std::vector<LockOwner>{kB}));  // the bug
  Release("/x", kA, a.token, 2);
  EXPECT_EQ(Holders("/x"), (std::vector<LockOwner>{kB}));
}

}  // namespace
}  // namespace warden::state

// The C++ client library's API against a running cluster: guarded writes
// with fencing tokens, renewals, hold TTLs on the local clock, wait
// deadlines that leave no waiter behind, session loss, reentrancy, watches
// and elections. Needs WARDEN_ENDPOINTS; tests/integration/test_locks.py
// starts a 3-member cluster and runs it (it is not a unit test).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "src/client/election.h"
#include "src/client/lock.h"
#include "src/client/session.h"

namespace warden::client {
namespace {

ClientOptions Options() {
  ClientOptions o;
  const char* e = std::getenv("WARDEN_ENDPOINTS");
  o.endpoints.clear();
  std::string s = e != nullptr ? e : "127.0.0.1:2379";
  size_t start = 0;
  for (size_t comma; (comma = s.find(',', start)) != std::string::npos; start = comma + 1) {
    o.endpoints.push_back(s.substr(start, comma - start));
  }
  o.endpoints.push_back(s.substr(start));
  o.command_timeout = Millis(5000);
  return o;
}

class ClientApiTest : public ::testing::Test {
 protected:
  std::unique_ptr<Session> NewSession(const std::string& owner, int64_t ttl_s = 10) {
    SessionOptions so;
    so.ttl_s = ttl_s;
    so.owner_id = owner;
    Result<std::unique_ptr<Session>> s = Session::Create(&client_, so);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  Client client_{Options()};
};

TEST_F(ClientApiTest, GuardedPutIsRefusedOnceTheTokenNoLongerHolds) {
  auto s = NewSession("guard");
  Result<LockHandle> h = s->Lock("/api/guard", {});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(client_.GuardedPut("/api/guard", h->token(), "/api/data", "one").ok());
  const uint64_t old_token = h->token();
  ASSERT_TRUE(h->Release().ok());
  EXPECT_FALSE(h->valid());
  // A zombie with the old token: refused.
  Status z = client_.GuardedPut("/api/guard", old_token, "/api/data", "zombie");
  EXPECT_EQ(z.code(), Code::kFailedPrecondition) << z.ToString();
  Result<std::optional<std::string>> v = client_.Get("/api/data");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->value_or(""), "one");
  // The next holder gets a larger token.
  Result<LockHandle> h2 = s->Lock("/api/guard", {});
  ASSERT_TRUE(h2.ok());
  EXPECT_GT(h2->token(), old_token);
  ASSERT_TRUE(h2->Release().ok());
}

TEST_F(ClientApiTest, ReacquireKeepsTheTokenAndCountsHolds) {
  auto s = NewSession("re");
  Result<LockHandle> a = s->Lock("/api/re", {});
  Result<LockHandle> b = s->Lock("/api/re", {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->token(), b->token());
  EXPECT_EQ(b->hold_count(), 2u);
  ASSERT_TRUE(b->Release().ok());
  EXPECT_TRUE(a->valid());
  ASSERT_TRUE(a->Release().ok());
  Result<warden::v1::InspectResponse> info = client_.Inspect("/api/re");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->holders_size(), 0);
}

TEST_F(ClientApiTest, TryLockAndDeadlineOutcomes) {
  auto s1 = NewSession("one");
  auto s2 = NewSession("two");
  Result<LockHandle> first = s1->Lock("/api/wait", {});
  ASSERT_TRUE(first.ok());
  ScopedLock held(std::move(*first));
  Result<LockHandle> t = s2->TryLock("/api/wait", {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kWouldBlock);
  EXPECT_EQ(t.status().message(), "lock /api/wait is held");
  LockOptions o;
  o.wait = Millis(300);
  const auto t0 = Clock::now();
  Result<LockHandle> w = s2->Lock("/api/wait", o);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kTimeout);
  EXPECT_GE(Clock::now() - t0, Millis(250));
  Result<warden::v1::InspectResponse> info = client_.Inspect("/api/wait");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->waiters_size(), 0);
}

TEST_F(ClientApiTest, CancelTokenStopsAWaitAndLeavesNoWaiter) {
  auto s1 = NewSession("one");
  auto s2 = NewSession("two");
  Result<LockHandle> first = s1->Lock("/api/cancel", {});
  ASSERT_TRUE(first.ok());
  ScopedLock held(std::move(*first));
  CancelToken cancel;
  LockOptions o;
  o.cancel = &cancel;
  std::thread t([&] {
    // Cancel once the request is queued.
    for (int i = 0; i < 200; ++i) {
      Result<warden::v1::InspectResponse> info = client_.Inspect("/api/cancel");
      if (info.ok() && info->waiters_size() == 1) break;
      std::this_thread::sleep_for(Millis(20));
    }
    cancel.Cancel();
  });
  Result<LockHandle> w = s2->Lock("/api/cancel", o);
  t.join();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kCancelled);
  Result<warden::v1::InspectResponse> info = client_.Inspect("/api/cancel");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->waiters_size(), 0);
}

TEST_F(ClientApiTest, HoldTtlRunsOutOnTheLocalClockAndRenewExtendsIt) {
  auto s = NewSession("ttl");
  LockOptions o;
  o.ttl = Millis(600);
  Result<LockHandle> h = s->Lock("/api/ttl", o);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->valid());
  ASSERT_TRUE(h->Renew(Millis(3000)).ok());
  std::this_thread::sleep_for(Millis(800));
  EXPECT_TRUE(h->valid());  // renewed past the first TTL
  ASSERT_TRUE(h->Renew(Millis(300)).ok());
  std::this_thread::sleep_for(Millis(400));
  EXPECT_FALSE(h->valid());
  EXPECT_TRUE(h->possibly_lost());
}

TEST_F(ClientApiTest, SessionLossInvalidatesItsLocksAndRunsTheCallback) {
  auto s = NewSession("loss");
  std::atomic<int> calls{0};
  s->OnLost([&] { ++calls; });
  Result<LockHandle> h = s->Lock("/api/loss", {});
  ASSERT_TRUE(h.ok());
  EXPECT_GT(s->remaining_ms(), 0);
  // Someone else revokes the session: the keep-alive learns TTL 0.
  ASSERT_TRUE(client_.LeaseRevoke(s->id()).ok());
  for (int i = 0; i < 100 && s->alive(); ++i) std::this_thread::sleep_for(Millis(50));
  EXPECT_FALSE(s->alive());
  EXPECT_FALSE(h->valid());
  EXPECT_TRUE(h->possibly_lost());
  EXPECT_EQ(calls.load(), 1);
  Result<LockHandle> again = s->Lock("/api/loss", {});
  EXPECT_EQ(again.status().code(), Code::kSessionEnded);
}

TEST_F(ClientApiTest, WatchSeesAcquireAndRelease) {
  std::mutex mu;
  std::vector<warden::v1::LockEvent> events;
  LockWatcher w(&client_, "/api/watch", false, [&](const warden::v1::LockEvent& e) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(e);
  });
  ASSERT_TRUE(w.WaitReady(Millis(5000)));
  auto s = NewSession("watch");
  Result<LockHandle> h = s->Lock("/api/watch", {});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h->Release().ok());
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (events.size() >= 2) break;
    }
    std::this_thread::sleep_for(Millis(20));
  }
  w.Stop();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type(), warden::v1::LockEvent::ACQUIRED);
  EXPECT_EQ(events[0].token(), h->token());
  EXPECT_EQ(events[1].type(), warden::v1::LockEvent::RELEASED);
}

TEST_F(ClientApiTest, ElectionCampaignProclaimResign) {
  auto s1 = NewSession("e1");
  auto s2 = NewSession("e2");
  Election e1(s1.get(), "/api/elect");
  ASSERT_TRUE(e1.Campaign("alpha").ok());
  EXPECT_TRUE(e1.is_leader());
  Result<mvccpb::KeyValue> leader = Election::Leader(&client_, "/api/elect");
  ASSERT_TRUE(leader.ok());
  EXPECT_EQ(leader->value(), "alpha");
  ASSERT_TRUE(e1.Proclaim("beta").ok());
  EXPECT_EQ(Election::Leader(&client_, "/api/elect")->value(), "beta");

  std::mutex mu;
  std::vector<std::string> seen;
  auto obs = Election::Observe(&client_, "/api/elect", [&](const mvccpb::KeyValue& kv) {
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(kv.value());
  });
  Election e2(s2.get(), "/api/elect");
  std::atomic<bool> elected{false};
  std::thread t([&] { elected = e2.Campaign("gamma").ok(); });
  std::this_thread::sleep_for(Millis(300));
  EXPECT_FALSE(elected.load());
  ASSERT_TRUE(e1.Resign().ok());
  t.join();
  EXPECT_TRUE(elected.load());
  EXPECT_TRUE(e2.is_leader());
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (!seen.empty() && seen.back() == "gamma") break;
    }
    std::this_thread::sleep_for(Millis(20));
  }
  obs->Stop();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), "gamma");
  ASSERT_TRUE(e2.Resign().ok());
  EXPECT_EQ(Election::Leader(&client_, "/api/elect").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace warden::client

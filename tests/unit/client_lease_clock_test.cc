// The client's lease count-down (src/client/lease_clock.h) with a fake clock:
// the deadline runs from the SEND time of each confirmed keep-alive, answers
// are credited to the oldest outstanding send, and a lost lease stays lost.
#include <gtest/gtest.h>

#include "src/client/lease_clock.h"

namespace warden::client {
namespace {

TEST(ClientLeaseClockTest, GrantStartsTheCountdownAtItsSendTime) {
  LeaseClock c(/*sent_ms=*/1000, /*ttl_ms=*/5000);
  EXPECT_EQ(c.deadline_ms(), 6000);
  EXPECT_FALSE(c.Expired(5999));
  EXPECT_EQ(c.remaining_ms(5999), 1);
  EXPECT_TRUE(c.Expired(6000));
  EXPECT_TRUE(c.lost());
}

TEST(ClientLeaseClockTest, AnswerExtendsFromTheSendTimeNotTheArrival) {
  LeaseClock c(0, 3000);
  c.OnSent(1000);
  // The answer arrives 900 ms later; the deadline still counts from 1000.
  c.OnAnswer(3000);
  EXPECT_EQ(c.deadline_ms(), 4000);
  EXPECT_FALSE(c.Expired(3999));
  EXPECT_TRUE(c.Expired(4000));
}

TEST(ClientLeaseClockTest, AnswerIsCreditedToTheOldestOutstandingSend) {
  LeaseClock c(0, 3000);
  c.OnSent(1000);  // this one may have been lost
  c.OnSent(2000);
  c.OnAnswer(3000);  // could answer either: credit the older send
  EXPECT_EQ(c.deadline_ms(), 4000);
  EXPECT_EQ(c.outstanding(), 1u);
  c.OnAnswer(3000);
  EXPECT_EQ(c.deadline_ms(), 5000);
  EXPECT_EQ(c.outstanding(), 0u);
}

TEST(ClientLeaseClockTest, OldestOutstandingSend) {
  LeaseClock c(0, 3000);
  EXPECT_EQ(c.oldest_outstanding_ms(), -1);
  c.OnSent(100);
  c.OnSent(200);
  EXPECT_EQ(c.oldest_outstanding_ms(), 100);
  c.OnAnswer(3000);
  EXPECT_EQ(c.oldest_outstanding_ms(), 200);
  c.OnStreamReset();
  EXPECT_EQ(c.oldest_outstanding_ms(), -1);
}

TEST(ClientLeaseClockTest, UnsolicitedAnswerIsIgnored) {
  LeaseClock c(0, 3000);
  c.OnAnswer(3000);
  EXPECT_EQ(c.deadline_ms(), 3000);
}

TEST(ClientLeaseClockTest, StreamResetForgetsOutstandingSends) {
  LeaseClock c(0, 3000);
  c.OnSent(500);
  c.OnStreamReset();
  c.OnSent(2500);
  c.OnAnswer(3000);  // on the new stream: for the send at 2500
  EXPECT_EQ(c.deadline_ms(), 5500);
}

TEST(ClientLeaseClockTest, DeadlineNeverMovesBack) {
  LeaseClock c(0, 10000);
  c.OnSent(1000);
  c.OnAnswer(2000);  // a shorter TTL than before
  EXPECT_EQ(c.deadline_ms(), 10000);
}

TEST(ClientLeaseClockTest, ZeroTtlAnswerMeansTheLeaseIsGone) {
  LeaseClock c(0, 3000);
  c.OnSent(100);
  c.OnAnswer(0);
  EXPECT_TRUE(c.lost());
  EXPECT_TRUE(c.Expired(101));
  EXPECT_EQ(c.remaining_ms(101), 0);
}

TEST(ClientLeaseClockTest, LateAnswerDoesNotReviveALostLease) {
  LeaseClock c(0, 3000);
  c.OnSent(1000);
  EXPECT_TRUE(c.Expired(3000));  // no answer before the deadline
  c.OnAnswer(3000);              // arrives after we gave up
  EXPECT_TRUE(c.lost());
  EXPECT_TRUE(c.Expired(3001));
}

TEST(ClientLeaseClockTest, HeartbeatIsAThirdOfTheTtlCapped) {
  EXPECT_EQ(LeaseClock::HeartbeatMs(9000, 1000), 1000);
  EXPECT_EQ(LeaseClock::HeartbeatMs(2100, 1000), 700);
  EXPECT_EQ(LeaseClock::HeartbeatMs(9000, 5000), 3000);
  EXPECT_EQ(LeaseClock::HeartbeatMs(1, 1000), 10);
}

// A simulated keep-alive loop: heartbeat every 1 s, answers taking 200 ms,
// the cluster silent from t = 10 s. The client must give up no later than
// the last confirmed send + TTL, i.e. before the cluster can expire the lease.
TEST(ClientLeaseClockTest, SilentClusterIsNoticedBeforeTheServerExpiry) {
  const int64_t ttl = 3000;
  LeaseClock c(0, ttl);
  int64_t last_confirmed_send = 0;
  int64_t lost_at = -1;
  for (int64_t now = 0; now <= 20000; now += 100) {
    if (now % 1000 == 0) c.OnSent(now);
    if (now % 1000 == 200 && now < 10000) {
      c.OnAnswer(ttl);
      last_confirmed_send = now - 200;
    }
    if (c.Expired(now)) {
      lost_at = now;
      break;
    }
  }
  ASSERT_GE(lost_at, 0);
  // The server restarted the TTL when it saw that keep-alive, at or after
  // its send: expiry at >= last_confirmed_send + ttl.
  EXPECT_LE(lost_at, last_confirmed_send + ttl);
  EXPECT_EQ(lost_at, 9000 + ttl);
}

}  // namespace
}  // namespace warden::client

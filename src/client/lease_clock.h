// The client's own count-down of its session lease, on its monotonic clock.
//
// Why count from the SEND time: the leader restarts the lease's TTL when it
// handles a keep-alive, which is after the client sent it. So
// `sent + ttl` is never later than the cluster's expiry (clock rates aside),
// and a holder that trusts its locks only until then never believes it holds
// a lock the cluster may already have released. Counting from the time the
// answer ARRIVED would be late by the answer's whole round trip.
//
// Answers carry no request id. When several keep-alives are outstanding on a
// stream (one timed out, another was sent), an answer is credited to the
// OLDEST outstanding send: if the oldest request was in fact lost, the answer
// belongs to a later one, so crediting the older one errs on the safe side.
//
// Pure: no clock, no threads. Times are milliseconds of any monotonic clock
// (tests pass a fake one). Not thread-safe; the Session guards it.
//
// Invariants:
//   1. deadline_ms() never decreases.
//   2. Once lost() is true it stays true.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace warden::client {

class LeaseClock {
 public:
  // The lease was granted with `ttl_ms` by a request sent at `sent_ms`.
  LeaseClock(int64_t sent_ms, int64_t ttl_ms);

  // A keep-alive was sent at now_ms.
  void OnSent(int64_t now_ms);
  // An answer arrived: ttl_ms > 0 extends the deadline to the oldest
  // outstanding send plus ttl_ms; ttl_ms <= 0 (the lease is gone) marks the
  // lease lost. An answer with nothing outstanding is ignored.
  void OnAnswer(int64_t ttl_ms);
  // The stream was dropped: its outstanding requests will never be answered.
  void OnStreamReset() { outstanding_.clear(); }

  // True once now_ms reached the deadline (and from then on), or after
  // MarkLost() or a ttl <= 0 answer.
  bool Expired(int64_t now_ms);
  void MarkLost() { lost_ = true; }
  bool lost() const { return lost_; }

  int64_t deadline_ms() const { return deadline_ms_; }
  int64_t remaining_ms(int64_t now_ms) const {
    return lost_ || now_ms >= deadline_ms_ ? 0 : deadline_ms_ - now_ms;
  }
  size_t outstanding() const { return outstanding_.size(); }
  // The send time of the oldest unanswered keep-alive; -1 if none.
  int64_t oldest_outstanding_ms() const { return outstanding_.empty() ? -1 : outstanding_.front(); }
  int64_t ttl_ms() const { return ttl_ms_; }

  // The keep-alive period for a TTL: a third of it, at most `max_ms`, at
  // least 10 ms.
  static int64_t HeartbeatMs(int64_t ttl_ms, int64_t max_ms);

 private:
  int64_t ttl_ms_;
  int64_t deadline_ms_;
  bool lost_ = false;
  std::deque<int64_t> outstanding_;  // send times, oldest first
};

}  // namespace warden::client

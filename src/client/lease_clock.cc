#include "src/client/lease_clock.h"

#include <algorithm>

namespace warden::client {

LeaseClock::LeaseClock(int64_t sent_ms, int64_t ttl_ms)
    : ttl_ms_(ttl_ms), deadline_ms_(sent_ms + ttl_ms) {
  if (ttl_ms <= 0) lost_ = true;
}

void LeaseClock::OnSent(int64_t now_ms) { outstanding_.push_back(now_ms); }

void LeaseClock::OnAnswer(int64_t ttl_ms) {
  if (outstanding_.empty()) return;
  const int64_t sent = outstanding_.front();
  outstanding_.pop_front();
  if (ttl_ms <= 0) {
    lost_ = true;
    return;
  }
  if (lost_) return;  // a late answer cannot revive a lease we gave up on
  ttl_ms_ = ttl_ms;
  deadline_ms_ = std::max(deadline_ms_, sent + ttl_ms);
}

bool LeaseClock::Expired(int64_t now_ms) {
  if (now_ms >= deadline_ms_) lost_ = true;
  return lost_;
}

int64_t LeaseClock::HeartbeatMs(int64_t ttl_ms, int64_t max_ms) {
  return std::max<int64_t>(10, std::min(ttl_ms / 3, max_ms));
}

}  // namespace warden::client

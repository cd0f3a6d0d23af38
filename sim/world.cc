#include "sim/world.h"

#include <cstdarg>
#include <cstdio>

namespace warden::sim {

World::World(uint64_t seed, std::string* trace) : rng_(seed), trace_(trace) {}

void World::At(TimeUs at_us, std::function<void()> fn) {
  if (at_us < now_us_) at_us = now_us_;
  queue_.push(Event{at_us, next_seq_++, std::move(fn)});
}

bool World::RunUntil(TimeUs until_us, const std::function<bool()>& stop) {
  while (!queue_.empty() && queue_.top().at_us <= until_us) {
    // priority_queue::top is const; move the closure out through a copy of the
    // event so the queue can pop before the closure schedules more events.
    Event ev = std::move(const_cast<Event&>(queue_.top()));
    queue_.pop();
    now_us_ = ev.at_us;
    ev.fn();
    ++events_run_;
    if (after_event_) after_event_();
    if (stop && stop()) return true;
  }
  if (now_us_ < until_us) now_us_ = until_us;
  return false;
}

void World::Trace(const std::string& who, const std::string& what) {
  if (trace_ == nullptr) return;
  char head[48];
  std::snprintf(head, sizeof head, "%6lld.%06lld %-7s ", static_cast<long long>(now_us_ / kUsPerS),
                static_cast<long long>(now_us_ % kUsPerS), who.c_str());
  trace_->append(head);
  trace_->append(what);
  trace_->push_back('\n');
}

std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  if (n < 0) return {};
  if (static_cast<size_t>(n) < sizeof buf) return std::string(buf, n);
  std::string out(static_cast<size_t>(n) + 1, '\0');
  va_start(args, fmt);
  std::vsnprintf(out.data(), out.size(), fmt, args);
  va_end(args);
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace warden::sim

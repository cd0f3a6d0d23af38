// World: the simulator's discrete-event loop and its only notion of time.
//
// Everything that happens in a simulated run is an event: a closure scheduled
// at a simulated time. Events run in (time_us, seq) order, where seq is the
// order in which they were scheduled, so two events at the same time run in a
// fixed order and a run is a pure function of its seed. There is no wall clock
// and no thread anywhere below this class.
//
// The world also owns the run's root random generator (components fork their
// own from it, in a fixed order) and the trace: a readable event log that is
// byte-identical for the same seed and build.
//
// Thread safety: none; a world belongs to one run on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <string>
#include <vector>

#include "src/base/ids.h"
#include "src/base/random.h"

namespace warden::sim {

// Simulated time, in microseconds since the start of the run.
using TimeUs = int64_t;

inline constexpr TimeUs kUsPerMs = 1000;
inline constexpr TimeUs kUsPerS = 1000 * 1000;

class World {
 public:
  // `trace` may be null: then Trace() calls cost one branch.
  World(uint64_t seed, std::string* trace);

  TimeUs now_us() const { return now_us_; }

  // Schedules `fn` to run at time `at_us` (clamped to now: no going back).
  void At(TimeUs at_us, std::function<void()> fn);
  void After(TimeUs delay_us, std::function<void()> fn) { At(now_us_ + delay_us, std::move(fn)); }

  // Runs events in order until the queue is empty, the next event is later than
  // `until_us`, or `stop` (checked after every event) returns true. Time then
  // stands at min(until_us, the last event run). Returns true if stopped by `stop`.
  bool RunUntil(TimeUs until_us, const std::function<bool()>& stop);

  // Called after every event (the invariant checker hangs here).
  void set_after_event(std::function<void()> fn) { after_event_ = std::move(fn); }

  // A generator for a component, independent of every other component's.
  Rng ForkRng() { return rng_.Fork(); }

  bool tracing() const { return trace_ != nullptr; }
  // Appends "<time> <who> <what>\n" to the trace. `who` names the component
  // ("n3", "net", "c2", "nemesis").
  void Trace(const std::string& who, const std::string& what);

  uint64_t events_run() const { return events_run_; }

 private:
  struct Event {
    TimeUs at_us;
    uint64_t seq;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.at_us != b.at_us ? a.at_us > b.at_us : a.seq > b.seq;
    }
  };

  TimeUs now_us_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t events_run_ = 0;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::function<void()> after_event_;
  Rng rng_;
  std::string* trace_;
};

// Ids and counts as printf arguments (%llu), for traces and reports.
inline unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }
template <typename Tag>
unsigned long long U(StrongId<Tag> v) {
  return static_cast<unsigned long long>(v.value());
}

// Formats like printf into a std::string (trace lines and violation details).
std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace warden::sim

// warden-sim: runs seeded, deterministic simulations of a Warden cluster.
//
//   warden-sim --seeds A:B [--nodes N] [--faults all|none|LIST]
//       runs seeds A..B-1; prints "seed=S violation=CHECK: DETAIL" per failing
//       seed, then "seeds=S violations=V"; exits 1 if V > 0.
//   warden-sim --seed X --trace
//       replays one seed and prints its event log (byte-identical per build).
//   --inject-bug NAME (repeatable) plants a known bug; --soak-seconds N stops
//   a seed range after N wall seconds and reports the simulated speed.
//
// This file is the only place that reads the wall clock (for --soak-seconds and
// the speed report); nothing inside a run does.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sim/sim.h"

namespace {

using warden::sim::SimOptions;
using warden::sim::SimResult;

int Usage(const char* error) {
  std::fprintf(stderr,
               "warden-sim: %s\n"
               "usage: warden-sim (--seeds A:B | --seed X) [--nodes 3|5|7] "
               "[--faults all|none|LIST] [--trace]\n"
               "                  [--inject-bug NAME]... [--duration-s S] [--soak-seconds N]\n"
               "  faults: %s\n  bugs: %s\n",
               error, warden::sim::FaultNames(warden::sim::kFaultAll).c_str(),
               warden::sim::BugNames());
  return 2;
}

bool ParseU64(const char* s, uint64_t* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '-') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  SimOptions base;
  uint64_t first = 0, last = 0;  // seeds [first, last)
  bool have_seeds = false;
  uint64_t soak_seconds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    auto need = [&]() -> bool {
      if (value == nullptr) return false;
      ++i;
      return true;
    };
    if (flag == "--seeds") {
      if (!need()) return Usage("--seeds needs A:B");
      const std::string v = value;
      const size_t colon = v.find(':');
      if (colon == std::string::npos || !ParseU64(v.substr(0, colon).c_str(), &first) ||
          !ParseU64(v.substr(colon + 1).c_str(), &last) || last <= first) {
        return Usage("--seeds wants A:B with A < B");
      }
      have_seeds = true;
    } else if (flag == "--seed") {
      if (!need() || !ParseU64(value, &first)) return Usage("--seed wants a number");
      last = first + 1;
      have_seeds = true;
    } else if (flag == "--nodes") {
      uint64_t n = 0;
      if (!need() || !ParseU64(value, &n) || (n != 3 && n != 5 && n != 7)) {
        return Usage("--nodes wants 3, 5 or 7");
      }
      base.nodes = static_cast<int>(n);
    } else if (flag == "--faults") {
      if (!need()) return Usage("--faults needs a value");
      warden::Result<uint32_t> f = warden::sim::ParseFaults(value);
      if (!f.ok()) return Usage(f.status().message().c_str());
      base.faults = *f;
    } else if (flag == "--inject-bug") {
      if (!need() || !warden::sim::AddBug(value, &base.bugs)) {
        return Usage("--inject-bug wants one of the bug names below");
      }
    } else if (flag == "--trace") {
      base.trace = true;
    } else if (flag == "--duration-s") {
      uint64_t s = 0;
      if (!need() || !ParseU64(value, &s) || s == 0) return Usage("--duration-s wants seconds > 0");
      base.safety_us = static_cast<warden::sim::TimeUs>(s) * warden::sim::kUsPerS;
    } else if (flag == "--soak-seconds") {
      if (!need() || !ParseU64(value, &soak_seconds) || soak_seconds == 0) {
        return Usage("--soak-seconds wants seconds > 0");
      }
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }
  if (!have_seeds) return Usage("give --seeds A:B or --seed X");
  if (base.trace && last - first != 1) return Usage("--trace replays one seed: use --seed X");

  const auto start = std::chrono::steady_clock::now();
  uint64_t ran = 0, violations = 0, unknown = 0;
  double simulated_s = 0;
  for (uint64_t seed = first; seed < last; ++seed) {
    if (soak_seconds > 0 &&
        std::chrono::steady_clock::now() - start >= std::chrono::seconds(soak_seconds)) {
      break;
    }
    SimOptions o = base;
    o.seed = seed;
    const SimResult r = warden::sim::RunSeed(o);
    ++ran;
    simulated_s += static_cast<double>(r.simulated_us) / 1e6;
    if (base.trace) std::fputs(r.trace.c_str(), stdout);
    if (r.violation) {
      ++violations;
      std::printf("seed=%llu violation=%s: %s\n", static_cast<unsigned long long>(seed),
                  r.violation->check.c_str(), r.violation->detail.c_str());
      std::fflush(stdout);
    } else if (r.linearizability_unknown) {
      ++unknown;
      std::fprintf(stderr, "seed=%llu linearizability=unknown: %s\n",
                   static_cast<unsigned long long>(seed), r.unknown_detail.c_str());
    }
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (soak_seconds > 0 || !base.trace) {
    std::fprintf(stderr,
                 "ran %llu seeds, %.0f simulated s in %.1f wall s (%.1f simulated s per wall s), "
                 "%llu unknown\n",
                 static_cast<unsigned long long>(ran), simulated_s, wall_s,
                 wall_s > 0 ? simulated_s / wall_s : 0.0, static_cast<unsigned long long>(unknown));
  }
  std::printf("seeds=%llu violations=%llu\n", static_cast<unsigned long long>(ran),
              static_cast<unsigned long long>(violations));
  return violations > 0 ? 1 : 0;
}

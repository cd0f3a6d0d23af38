// The failover workload (see failover.cc).
#ifndef WARDEN_BENCH_LOAD_FAILOVER_H_
#define WARDEN_BENCH_LOAD_FAILOVER_H_

#include "bench/load/options.h"
#include "bench/load/report.h"

namespace warden::bench {

// Kills o.kill_pid with SIGKILL and measures the time to the first
// acknowledged Put on any of o.endpoints. Returns the exit status.
int RunFailover(const Options& o, Result* r);

}  // namespace warden::bench

#endif  // WARDEN_BENCH_LOAD_FAILOVER_H_

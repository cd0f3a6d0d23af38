// What a run measured, as a human table and as JSON.
#ifndef WARDEN_BENCH_LOAD_REPORT_H_
#define WARDEN_BENCH_LOAD_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "bench/load/options.h"
#include "bench/load/shard.h"

namespace warden::bench {

struct Result {
  Stats stats;
  double window_s = 0;  // the measured window
  int64_t clients_total = 0;
  int64_t clients_ready = 0;
  bool setup_timed_out = false;
  double setup_s = 0;    // from start until every client was ready
  int conns_ready = 0;   // connections READY before the run
  double connect_s = 0;  // how long opening them took
  bool unsupported = false;
  std::string unsupported_what;
  uint64_t prefill_keys = 0;
  double prefill_s = 0;
  std::optional<double> failover_ms;  // failover: kill to first acknowledged write
  std::string failover_endpoint;      // where that write succeeded
  std::vector<std::string> notes;
  // CPU seconds used inside the measured window: by warden-bench itself and
  // by each --cpu-pids process (-1 if it could not be read).
  double cpu_self_s = 0;
  std::vector<std::pair<int, double>> cpu_pids_s;

  uint64_t ErrorsTotal() const;
};

// The names of the histograms a workload fills (kMain first), e.g.
// {"acquire", "release"} for the lock workloads.
std::vector<std::string> HistogramNames(Workload w);

void PrintTable(const Options& o, const Result& r);
// Returns false (and prints why) if the file cannot be written.
bool WriteJson(const Options& o, const Result& r, const std::string& path);

}  // namespace warden::bench

#endif  // WARDEN_BENCH_LOAD_REPORT_H_

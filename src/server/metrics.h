// Metrics (Prometheus text format at /metrics) and health (/health, etcd's
// {"health":"true"} shape) on --listen-metrics-urls.
//
// Values that live on the node loop (term, indexes, leader, counts) are read
// by a task posted to the loop when /metrics is scraped; latencies are
// observed where they happen (histograms are thread-safe).
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "src/base/status.h"

class CivetServer;

namespace warden::server {

class NodeHost;
class WatchHub;

class Metrics {
 public:
  Metrics();
  ~Metrics();

  // Starts the HTTP endpoints. REQUIRES: host and hub outlive this object.
  Status Serve(const std::vector<std::string>& addresses, NodeHost* host, WatchHub* hub);
  void Stop();

  void ObserveProposalSeconds(double s) { proposal_->Observe(s); }
  void ObserveFsyncSeconds(double s) { fsync_->Observe(s); }

  // For tests: the text /metrics would serve, and /health's status and body.
  std::string Scrape();
  std::pair<int, std::string> Health();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* term_;
  prometheus::Gauge* commit_;
  prometheus::Gauge* applied_;
  prometheus::Gauge* is_leader_;
  prometheus::Counter* leader_changes_;
  prometheus::Gauge* watchers_;
  prometheus::Gauge* leases_;
  prometheus::Gauge* keys_;
  prometheus::Gauge* revision_;
  prometheus::Histogram* proposal_;
  prometheus::Histogram* fsync_;
  uint64_t last_leader_ = 0;
  NodeHost* host_ = nullptr;
  WatchHub* hub_ = nullptr;
  std::unique_ptr<CivetServer> http_;
  std::vector<std::unique_ptr<class MetricsHandler>> handlers_;
};

}  // namespace warden::server

// Periodic auto-compaction (etcd's --auto-compaction-retention, periodic
// mode): the leader samples the key space revision every `retention / 10`
// and proposes a compaction to the newest sample at least `retention` old, so
// history older than the retention goes away. Followers only sample, so a new
// leader continues where the old one was.
//
// Thread safety: Start may be called from any thread; the work runs on the
// node loop.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "src/base/status.h"
#include "src/server/node_host.h"

namespace warden::server {

// A duration flag: "1" (hours, as etcd's retention) or with a unit: "30m",
// "90s", "2h". 0 = off.
Result<int64_t> ParseDurationMs(const std::string& text);

class AutoCompactor {
 public:
  AutoCompactor(NodeHost* host, int64_t retention_ms) : host_(host), retention_ms_(retention_ms) {}
  void Start();

 private:
  void Run(node::Node& n);

  NodeHost* host_;
  int64_t retention_ms_;
  int64_t elapsed_ms_ = 0;                           // on the node loop
  std::deque<std::pair<int64_t, int64_t>> samples_;  // (elapsed ms, revision)
};

}  // namespace warden::server

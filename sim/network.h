// SimNetwork: the simulated peer network between Raft nodes.
//
// Each message gets its own fate, drawn from the network's generator: lost
// (probability `loss`), delivered once, or delivered twice (`duplicate`), each
// copy after its own delay. Delays are uniform in [delay_min_us, delay_max_us];
// with probability `reorder` a copy gets an extra delay of up to
// reorder_max_us, which is what reorders messages (there is no FIFO channel).
//
// Partitions are a directed matrix: reach(a, b) says whether a message from a
// can arrive at b. Cutting one direction only gives a one-way partition;
// cutting some pairs and not others gives a partial one. A message is dropped
// if its link is cut when it is sent or when it would arrive (a partition that
// forms while it is in flight catches it).
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/world.h"
#include "src/raft/types.h"

namespace warden::sim {

struct NetworkOptions {
  double loss = 0;
  double duplicate = 0;
  double reorder = 0;
  TimeUs delay_min_us = 100;
  TimeUs delay_max_us = 1000;
  TimeUs reorder_max_us = 0;
};

class SimNetwork {
 public:
  using Deliver = std::function<void(const raft::Message&)>;
  // What a real transport tells the sender: a send on a cut link fails at once
  // (the connection is down), and a snapshot stream ends in success or failure.
  using Report = std::function<void(const raft::Message&, bool delivered)>;

  // Node ids are 1..max_node.
  SimNetwork(World* world, Rng rng, int max_node, Deliver deliver, Report report);

  void set_options(const NetworkOptions& options) { options_ = options; }
  const NetworkOptions& options() const { return options_; }

  void Send(const raft::Message& m);

  bool CanReach(NodeId from, NodeId to) const;
  void SetReach(NodeId from, NodeId to, bool ok);
  // Cuts (or restores) both directions between every node of `a` and of `b`.
  void SetReachBetween(const std::vector<NodeId>& a, const std::vector<NodeId>& b, bool ok);
  void HealAll();
  bool FullyConnected() const;
  // "1->2 1->3 3->1": the cut links, for the trace.
  std::string DescribeCuts() const;

  uint64_t sent() const { return sent_; }
  uint64_t dropped() const { return dropped_; }

 private:
  size_t Slot(NodeId from, NodeId to) const;
  void Schedule(const raft::Message& m, bool duplicate);

  World* world_;
  Rng rng_;
  int max_node_;
  Deliver deliver_;
  Report report_;
  NetworkOptions options_;
  std::vector<bool> reach_;  // (from-1) * max_node + (to-1)
  uint64_t sent_ = 0;
  uint64_t dropped_ = 0;
};

// "Append 1->2 t=3 li=5 lt=3 n=2 c=4": one message, for the trace.
std::string DescribeMessage(const raft::Message& m);
// Heartbeats are too frequent to trace one by one.
bool IsChatter(const raft::Message& m);

}  // namespace warden::sim

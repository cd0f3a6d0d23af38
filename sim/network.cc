#include "sim/network.h"

namespace warden::sim {

using raft::Message;
using raft::MessageType;

SimNetwork::SimNetwork(World* world, Rng rng, int max_node, Deliver deliver, Report report)
    : world_(world),
      rng_(rng),
      max_node_(max_node),
      deliver_(std::move(deliver)),
      report_(std::move(report)),
      reach_(static_cast<size_t>(max_node) * max_node, true) {}

size_t SimNetwork::Slot(NodeId from, NodeId to) const {
  WARDEN_CHECK(from.value() >= 1 && from.value() <= static_cast<uint64_t>(max_node_));
  WARDEN_CHECK(to.value() >= 1 && to.value() <= static_cast<uint64_t>(max_node_));
  return (from.value() - 1) * max_node_ + (to.value() - 1);
}

bool SimNetwork::CanReach(NodeId from, NodeId to) const { return reach_[Slot(from, to)]; }

void SimNetwork::SetReach(NodeId from, NodeId to, bool ok) { reach_[Slot(from, to)] = ok; }

void SimNetwork::SetReachBetween(const std::vector<NodeId>& a, const std::vector<NodeId>& b,
                                 bool ok) {
  for (NodeId x : a) {
    for (NodeId y : b) {
      if (x == y) continue;
      SetReach(x, y, ok);
      SetReach(y, x, ok);
    }
  }
}

void SimNetwork::HealAll() { reach_.assign(reach_.size(), true); }

bool SimNetwork::FullyConnected() const {
  for (bool ok : reach_) {
    if (!ok) return false;
  }
  return true;
}

std::string SimNetwork::DescribeCuts() const {
  std::string out;
  for (int from = 1; from <= max_node_; ++from) {
    for (int to = 1; to <= max_node_; ++to) {
      if (from == to || CanReach(NodeId(from), NodeId(to))) continue;
      if (!out.empty()) out.push_back(' ');
      out += Format("%d->%d", from, to);
    }
  }
  return out.empty() ? "none" : out;
}

void SimNetwork::Send(const Message& m) {
  ++sent_;
  if (!CanReach(m.from, m.to)) {
    ++dropped_;
    if (world_->tracing() && !IsChatter(m)) world_->Trace("net", "cut  " + DescribeMessage(m));
    report_(m, false);
    return;
  }
  if (rng_.Chance(options_.loss)) {
    ++dropped_;
    if (world_->tracing() && !IsChatter(m)) world_->Trace("net", "lost " + DescribeMessage(m));
    if (m.type == MessageType::kSnapshot) report_(m, false);
    return;
  }
  Schedule(m, false);
  if (rng_.Chance(options_.duplicate)) Schedule(m, true);
}

void SimNetwork::Schedule(const Message& m, bool duplicate) {
  TimeUs delay = rng_.Range(options_.delay_min_us, options_.delay_max_us);
  if (options_.reorder_max_us > 0 && rng_.Chance(options_.reorder)) {
    delay += rng_.Range(0, options_.reorder_max_us);
  }
  world_->After(delay, [this, m, duplicate] {
    if (!CanReach(m.from, m.to)) {
      ++dropped_;
      if (world_->tracing() && !IsChatter(m)) {
        world_->Trace("net", "cut  " + DescribeMessage(m) + " (in flight)");
      }
      if (m.type == MessageType::kSnapshot && !duplicate) report_(m, false);
      return;
    }
    if (world_->tracing() && !IsChatter(m)) {
      world_->Trace("net", std::string(duplicate ? "dup  " : "recv ") + DescribeMessage(m));
    }
    deliver_(m);
    if (m.type == MessageType::kSnapshot && !duplicate) report_(m, true);
  });
}

bool IsChatter(const Message& m) {
  return m.type == MessageType::kHeartbeat || m.type == MessageType::kHeartbeatResponse;
}

std::string DescribeMessage(const Message& m) {
  std::string out = Format("%s %llu->%llu t=%llu", raft::MessageTypeName(m.type),
                           static_cast<unsigned long long>(m.from.value()),
                           static_cast<unsigned long long>(m.to.value()),
                           static_cast<unsigned long long>(m.term.value()));
  switch (m.type) {
    case MessageType::kAppend:
      out +=
          Format(" prev=%llu/%llu n=%zu c=%llu%s", static_cast<unsigned long long>(m.index.value()),
                 static_cast<unsigned long long>(m.log_term.value()), m.entries.size(),
                 static_cast<unsigned long long>(m.commit.value()), m.commit_only ? " quiet" : "");
      break;
    case MessageType::kVote:
    case MessageType::kPreVote:
      out += Format(" last=%llu/%llu%s", static_cast<unsigned long long>(m.index.value()),
                    static_cast<unsigned long long>(m.log_term.value()),
                    m.context.empty() ? "" : " transfer");
      break;
    case MessageType::kSnapshot:
      if (m.snapshot) {
        out += Format(" snap=%llu/%llu",
                      static_cast<unsigned long long>(m.snapshot->metadata.index.value()),
                      static_cast<unsigned long long>(m.snapshot->metadata.term.value()));
      }
      break;
    default: out += Format(" i=%llu", static_cast<unsigned long long>(m.index.value())); break;
  }
  if (m.reject) out += " reject";
  return out;
}

}  // namespace warden::sim

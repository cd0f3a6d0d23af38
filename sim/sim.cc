#include "sim/sim.h"

#include <algorithm>
#include <memory>

#include "sim/client.h"
#include "sim/lease_check.h"
#include "sim/linearizability.h"
#include "sim/lock_check.h"
#include "sim/lock_client.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/world.h"

namespace warden::sim {
namespace {

unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }

constexpr TimeUs kTickUs = 10 * kUsPerMs;
constexpr int kElectionTicks = 10;
constexpr int kHeartbeatTicks = 2;

// The whole simulated world of one run. The nemesis (fault injection) lives
// here too because it acts on every component.
class Simulation {
 public:
  explicit Simulation(const SimOptions& options);
  SimResult Run();

 private:
  SimNode& Node(NodeId id) { return *nodes_[id.value() - 1]; }
  std::vector<NodeId> AllIds() const;
  // The up, unpaused leader with the highest term, if any.
  SimNode* Leader();
  bool LeaderExists();
  // The members (voters and learners) in the current leader's configuration,
  // as MemberList would show them; empty when no leader is known.
  std::vector<NodeId> Members();
  TimeUs Gap(TimeUs mean_us) { return static_cast<TimeUs>(rng_.Range(1, 2 * mean_us)); }
  bool Faulty() const { return !healed_ && !inv_.violated(); }
  // Hands a node's answer to the client it is for.
  void Deliver(const ClientResponse& r);

  void SchedulePartition();
  void FormPartition();
  void ScheduleCrash();
  void CrashOne();
  void CrashNode(NodeId id, TimeUs down_us);
  void MaybeCrashAfterVote(NodeId voter);
  void MaybeCrashNewLeader(NodeId leader);
  void SchedulePause();
  void CutInbound(NodeId victim, TimeUs duration_us);
  void ScheduleMembership();
  void ChangeMembership();
  void ScheduleTransfer();
  void Heal();
  void Trace(const std::string& what) { world_.Trace("nemesis", what); }

  SimOptions options_;
  std::string trace_;
  World world_;
  Rng rng_;     // the nemesis's choices
  Rng io_rng_;  // client <-> node transport delays
  FaultPlan plan_;
  int voters_ = 0;
  int max_node_ = 0;
  Invariants inv_;
  std::unique_ptr<LeaseChecker> leases_;
  std::unique_ptr<LockChecker> locks_;
  HistoryRecorder history_;
  std::unique_ptr<SimNetwork> net_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<std::unique_ptr<SimClient>> clients_;
  // Numbered after clients_ (client ids clients_.size() + 1, ...).
  std::vector<std::unique_ptr<SimLockClient>> lock_clients_;
  bool healed_ = false;
};

Simulation::Simulation(const SimOptions& options)
    : options_(options),
      world_(options.seed, options.trace ? &trace_ : nullptr),
      rng_(world_.ForkRng()),
      io_rng_(world_.ForkRng()) {
  Rng plan_rng = world_.ForkRng();
  static constexpr int kSizes[] = {3, 5, 7};
  voters_ = options.nodes != 0 ? options.nodes : kSizes[plan_rng.Uniform(3)];
  plan_ = PickFaultPlan(plan_rng, options.faults);
  // A spare node, outside the initial configuration, that membership changes
  // can add.
  max_node_ = voters_ + (plan_.Has(kFaultMembership) ? 1 : 0);
  leases_ = std::make_unique<LeaseChecker>(&inv_, plan_.drift_max);
  locks_ = std::make_unique<LockChecker>(&inv_);

  net_ = std::make_unique<SimNetwork>(
      &world_, world_.ForkRng(), max_node_,
      [this](const raft::Message& m) { Node(m.to).OnMessage(m); },
      [this](const raft::Message& m, bool delivered) {
        Node(m.from).OnTransportReport(m, delivered);
      });
  NetworkOptions net;
  net.loss = plan_.loss;
  net.duplicate = plan_.duplicate;
  net.reorder = plan_.reorder;
  net.reorder_max_us = plan_.reorder_max_us;
  net.delay_min_us = 100;
  net.delay_max_us = 2 * kUsPerMs;
  net_->set_options(net);

  // Some runs use tiny appends, so that a catching-up follower acknowledges
  // a long log piece by piece (the rule of 5.4.2 matters only then).
  const bool flow_small = plan_rng.Chance(0.5);
  std::vector<NodeId> voters;
  for (int i = 1; i <= voters_; ++i) voters.push_back(NodeId(i));
  for (int i = 1; i <= max_node_; ++i) {
    NodeOptions no;
    no.id = NodeId(i);
    no.election_ticks = kElectionTicks;
    no.heartbeat_ticks = kHeartbeatTicks;
    no.tick_us = kTickUs;
    Rng node_rng = world_.ForkRng();
    if (plan_.drift_max > 0) no.drift = (2 * node_rng.UnitDouble() - 1) * plan_.drift_max;
    no.clock_offset_ms = static_cast<int64_t>(node_rng.Range(0, 100000));
    no.sync_max_us = plan_.Has(kFaultCrash) ? 5 * kUsPerMs : 2 * kUsPerMs;
    no.snapshot_every = plan_.snapshot_every;
    no.bugs = options.bugs.raft;
    no.max_size_per_msg = flow_small ? 200 : 1 << 20;
    no.max_inflight_msgs = flow_small ? 2 : 256;
    no.skip_persist_vote = options.bugs.skip_persist_vote;
    no.lock_bugs = options.bugs.locks;
    nodes_.push_back(std::make_unique<SimNode>(&world_, node_rng, no, net_.get(), &inv_,
                                               leases_.get(), locks_.get(),
                                               [this](const ClientResponse& r) {
                                                 const TimeUs delay = io_rng_.Range(100, 1500);
                                                 world_.After(delay, [this, r] { Deliver(r); });
                                               }));
    if (i <= voters_) nodes_.back()->Bootstrap(voters);
    nodes_.back()->set_on_vote_granted([this](NodeId voter) { MaybeCrashAfterVote(voter); });
    nodes_.back()->set_on_became_leader([this](NodeId leader) { MaybeCrashNewLeader(leader); });
  }
  raft::ConfState initial;
  initial.voters = voters;
  inv_.OnConfState(Index(1), initial);

  const int clients = static_cast<int>(rng_.Range(3, 5));
  ClientOptions co;
  co.keys = static_cast<int>(rng_.Range(3, 5));
  co.timeout_us = rng_.Range(100, 800) * kUsPerMs;
  co.read_ratio = 0.4;
  co.cas_ratio = 0.15;
  co.delete_ratio = 0.08;
  co.lease_ratio = 0.12;
  for (int c = 1; c <= clients; ++c) {
    clients_.push_back(std::make_unique<SimClient>(
        &world_, world_.ForkRng(), c, AllIds(), co, &history_,
        [this](NodeId to, const ClientRequest& req) {
          const TimeUs delay = io_rng_.Range(100, 1500);
          world_.After(delay, [this, to, req] { Node(to).OnClientRequest(req); });
        },
        [this](int64_t lease, int64_t ttl_seconds, TimeUs at_us) {
          leases_->OnGrantInvoked(lease, ttl_seconds, at_us);
        }));
    clients_.back()->set_members([this] { return Members(); });
  }

  // Lock clients, forked after everything above, so that the fault plan and
  // the key-value clients draw the same numbers as without them.
  Rng lock_rng = world_.ForkRng();
  const int lock_clients = 2;
  LockClientOptions lo;
  lo.locks = static_cast<int>(lock_rng.Range(1, 2));
  lo.timeout_us = lock_rng.Range(100, 800) * kUsPerMs;
  for (int c = 1; c <= lock_clients; ++c) {
    lock_clients_.push_back(std::make_unique<SimLockClient>(
        &world_, world_.ForkRng(), clients_.size() + c, AllIds(), lo,
        [this](NodeId to, const ClientRequest& req) {
          const TimeUs delay = io_rng_.Range(100, 1500);
          world_.After(delay, [this, to, req] { Node(to).OnClientRequest(req); });
        },
        [this](int64_t lease, int64_t ttl_seconds, TimeUs at_us) {
          leases_->OnGrantInvoked(lease, ttl_seconds, at_us);
        }));
    lock_clients_.back()->set_members([this] { return Members(); });
  }
}

void Simulation::Deliver(const ClientResponse& r) {
  if (r.client <= clients_.size()) return clients_[r.client - 1]->OnResponse(r);
  lock_clients_[r.client - clients_.size() - 1]->OnResponse(r);
}

std::vector<NodeId> Simulation::AllIds() const {
  std::vector<NodeId> ids;
  for (int i = 1; i <= max_node_; ++i) ids.push_back(NodeId(i));
  return ids;
}

std::vector<NodeId> Simulation::Members() {
  SimNode* leader = Leader();
  if (leader == nullptr) return {};
  const raft::ConfState& cs = leader->conf_state();
  std::vector<NodeId> members = cs.voters;
  members.insert(members.end(), cs.voters_outgoing.begin(), cs.voters_outgoing.end());
  members.insert(members.end(), cs.learners.begin(), cs.learners.end());
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  return members;
}

SimNode* Simulation::Leader() {
  SimNode* best = nullptr;
  for (auto& n : nodes_) {
    if (!n->up() || n->paused() || n->role() != raft::Role::kLeader) continue;
    if (best == nullptr || n->term() > best->term()) best = n.get();
  }
  return best;
}

bool Simulation::LeaderExists() {
  SimNode* l = Leader();
  if (l == nullptr) return false;
  for (auto& n : nodes_) {
    if (n->up() && n->term() > l->term()) return false;
  }
  return true;
}

void Simulation::SchedulePartition() {
  if (plan_.partition_every_us == 0) return;
  world_.After(Gap(plan_.partition_every_us), [this] {
    if (Faulty()) FormPartition();
  });
}

void Simulation::FormPartition() {
  std::vector<NodeId> ids = AllIds();
  SimNode* leader = Leader();
  std::vector<int> kinds;
  if (plan_.Has(kFaultPartition)) kinds.insert(kinds.end(), {0, 0, 1});
  if (plan_.Has(kFaultOneWay)) kinds.insert(kinds.end(), {2, 2});
  const int kind = kinds[rng_.Uniform(kinds.size())];
  if (kind == 0) {
    // Symmetric: a minority split off, often with the leader in it.
    for (size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[rng_.Uniform(i + 1)]);
    if (leader != nullptr && rng_.Chance(0.5)) {
      std::iter_swap(ids.begin(), std::find(ids.begin(), ids.end(), leader->id()));
    }
    const size_t k = rng_.Range(1, ids.size() / 2);
    net_->SetReachBetween({ids.begin(), ids.begin() + k}, {ids.begin() + k, ids.end()}, false);
  } else if (kind == 1) {
    // Partial: random links cut both ways, so reachability is not transitive.
    for (NodeId a : ids) {
      for (NodeId b : ids) {
        if (a < b && rng_.Chance(0.35)) net_->SetReachBetween({a}, {b}, false);
      }
    }
  } else {
    // One-way: often the leader can talk but not hear (or the reverse).
    if (leader != nullptr && rng_.Chance(0.6)) {
      const bool inbound = rng_.Chance(0.5);
      for (NodeId x : ids) {
        if (x == leader->id()) continue;
        if (inbound)
          net_->SetReach(x, leader->id(), false);
        else
          net_->SetReach(leader->id(), x, false);
      }
    } else {
      const uint64_t cuts = rng_.Range(1, ids.size());
      for (uint64_t c = 0; c < cuts; ++c) {
        const NodeId a = ids[rng_.Uniform(ids.size())];
        const NodeId b = ids[rng_.Uniform(ids.size())];
        if (a != b) net_->SetReach(a, b, false);
      }
    }
  }
  Trace("partition: cut " + net_->DescribeCuts());
  world_.After(rng_.Range(50 * kUsPerMs, plan_.partition_max_us), [this] {
    if (healed_) return;
    net_->HealAll();
    Trace("partition healed");
    SchedulePartition();
  });
}

void Simulation::ScheduleCrash() {
  if (plan_.crash_every_us == 0) return;
  world_.After(Gap(plan_.crash_every_us), [this] {
    if (!Faulty()) return;
    CrashOne();
    ScheduleCrash();
  });
}

void Simulation::CrashOne() {
  std::vector<SimNode*> up;
  for (auto& n : nodes_) {
    if (n->up()) up.push_back(n.get());
  }
  // Keep a majority up (as VOPR keeps a core): a cluster that is mostly down
  // tests little and leaves a history of pending writes no checker can sort.
  // Crashes right after a vote or a win may still take more down for a moment.
  if (up.size() <= nodes_.size() / 2 + 1) return;
  SimNode* victim = up[rng_.Uniform(up.size())];
  if (SimNode* l = Leader(); l != nullptr && rng_.Chance(0.3)) victim = l;
  Trace(Format("crash n%llu", U(victim->id().value())));
  CrashNode(victim->id(), rng_.Range(10 * kUsPerMs, plan_.down_max_us));
}

void Simulation::CrashNode(NodeId id, TimeUs down_us) {
  Node(id).Crash(plan_.Has(kFaultTorn));
  std::map<NodeId, const SimDisk*> disks;
  for (auto& n : nodes_) disks[n->id()] = &n->disk();
  inv_.CheckDurability(disks);
  world_.After(down_us, [this, id] {
    if (healed_ || Node(id).up()) return;
    Trace(Format("restart n%llu", U(id.value())));
    Node(id).Start();
  });
}

void Simulation::MaybeCrashAfterVote(NodeId voter) {
  if (plan_.crash_after_vote == 0 || !Faulty() || !rng_.Chance(plan_.crash_after_vote)) return;
  world_.After(rng_.Range(0, 2 * kUsPerMs), [this, voter] {
    if (!Faulty() || !Node(voter).up()) return;
    Trace(Format("crash n%llu right after its vote", U(voter.value())));
    CrashNode(voter, rng_.Range(5 * kUsPerMs, 200 * kUsPerMs));
  });
}

void Simulation::MaybeCrashNewLeader(NodeId leader) {
  if (plan_.crash_new_leader == 0 || !Faulty() || !rng_.Chance(plan_.crash_new_leader)) return;
  world_.After(rng_.Range(0, 60 * kUsPerMs), [this, leader] {
    if (!Faulty() || !Node(leader).up()) return;
    Trace(Format("crash n%llu soon after it became leader", U(leader.value())));
    CrashNode(leader, rng_.Range(5 * kUsPerMs, plan_.down_max_us));
  });
}

void Simulation::SchedulePause() {
  if (plan_.pause_every_us == 0) return;
  world_.After(Gap(plan_.pause_every_us), [this] {
    if (!Faulty()) return;
    // Pausing the leader is the classic case (a GC pause outlives its lease).
    SimNode* n = nodes_[rng_.Uniform(nodes_.size())].get();
    SimNode* leader = Leader();
    if (leader != nullptr && rng_.Chance(0.5)) n = leader;
    if (n->up()) {
      const TimeUs pause_us = rng_.Range(10 * kUsPerMs, plan_.pause_max_us);
      n->Pause(pause_us);
      // A zombie leader: paused, and deaf to its peers for a while after it
      // resumes (an asymmetric network), so it still believes it leads while
      // clients reach it. Only ReadIndex's quorum round keeps its reads honest.
      if (n == leader && rng_.Chance(0.5)) CutInbound(n->id(), pause_us + Gap(plan_.pause_max_us));
    }
    SchedulePause();
  });
}

void Simulation::CutInbound(NodeId victim, TimeUs duration_us) {
  std::vector<NodeId> cut;
  for (const auto& peer : nodes_) {
    if (peer->id() != victim && net_->CanReach(peer->id(), victim)) {
      net_->SetReach(peer->id(), victim, false);
      cut.push_back(peer->id());
    }
  }
  if (cut.empty()) return;
  Trace(Format("cut inbound links to n%llu for %lldms",
               static_cast<unsigned long long>(victim.value()),
               static_cast<long long>(duration_us / kUsPerMs)));
  world_.After(duration_us, [this, victim, cut] {
    // Restore only what this fault cut (a partition may since have healed
    // them, or cut them again; both are fine).
    for (NodeId peer : cut) net_->SetReach(peer, victim, true);
  });
}

void Simulation::ScheduleMembership() {
  if (plan_.membership_every_us == 0) return;
  world_.After(Gap(plan_.membership_every_us), [this] {
    if (!Faulty()) return;
    ChangeMembership();
    ScheduleMembership();
  });
}

void Simulation::ChangeMembership() {
  SimNode* leader = Leader();
  if (leader == nullptr) return;
  const raft::ConfState& cs = leader->conf_state();
  if (cs.IsJoint()) return;  // the leader leaves it on its own
  auto contains = [](const std::vector<NodeId>& v, NodeId id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  std::vector<raft::ConfChangeSingle> options;
  for (NodeId id : AllIds()) {
    if (contains(cs.learners, id)) {
      options.push_back({raft::ConfChangeType::kAddVoter, id});
    } else if (!contains(cs.voters, id)) {
      options.push_back({raft::ConfChangeType::kAddLearner, id});
    } else if (cs.voters.size() >= 3 && (id != leader->id() || rng_.Chance(0.2))) {
      options.push_back({raft::ConfChangeType::kRemoveNode, id});
    }
  }
  if (options.empty()) return;
  raft::ConfChange cc;
  cc.changes.push_back(options[rng_.Uniform(options.size())]);
  leader->ProposeConfChange(cc);
}

void Simulation::ScheduleTransfer() {
  if (plan_.transfer_every_us == 0) return;
  world_.After(Gap(plan_.transfer_every_us), [this] {
    if (!Faulty()) return;
    if (SimNode* leader = Leader(); leader != nullptr) {
      const std::vector<NodeId>& voters = leader->conf_state().voters;
      const NodeId target = voters[rng_.Uniform(voters.size())];
      if (target != leader->id()) leader->TransferLeader(target);
    }
    ScheduleTransfer();
  });
}

void Simulation::Heal() {
  healed_ = true;
  Trace("heal: network repaired, crashed nodes restart, pauses end");
  net_->HealAll();
  NetworkOptions net = net_->options();
  net.loss = net.duplicate = net.reorder = 0;
  net_->set_options(net);
  for (auto& n : nodes_) {
    if (!n->up()) {
      n->Start();
    } else {
      n->Unpause();
    }
  }
  for (auto& c : clients_) c->set_liveness_epoch(world_.now_us());
  for (auto& c : lock_clients_) c->set_liveness_epoch(world_.now_us());
}

SimResult Simulation::Run() {
  SimResult result;
  result.seed = options_.seed;
  result.nodes = voters_;
  world_.Trace("sim", Format("seed=%llu nodes=%d spares=%d clients=%zu", U(options_.seed), voters_,
                             max_node_ - voters_, clients_.size()));
  world_.Trace("sim", plan_.Describe());

  for (auto& n : nodes_) n->Start();
  for (auto& c : clients_) c->Start();
  for (auto& c : lock_clients_) c->Start();
  SchedulePartition();
  ScheduleCrash();
  SchedulePause();
  ScheduleMembership();
  ScheduleTransfer();

  auto violated = [this] { return inv_.violated(); };
  world_.RunUntil(options_.safety_us, violated);
  if (!inv_.violated()) {
    Heal();
    const TimeUs deadline = world_.now_us() + options_.liveness_us;
    auto live = [this] {
      if (inv_.violated()) return true;
      for (auto& c : clients_) {
        if (c->ok_since_epoch() == 0) return false;
      }
      for (auto& c : lock_clients_) {
        if (c->ok_since_epoch() == 0) return false;
      }
      return LeaderExists();
    };
    if (!world_.RunUntil(deadline, live)) {
      std::string stuck;
      for (auto& c : clients_) {
        if (c->ok_since_epoch() == 0) stuck += Format(" c%llu", U(c->id()));
      }
      for (auto& c : lock_clients_) {
        if (c->ok_since_epoch() == 0) stuck += Format(" c%llu", U(c->id()));
      }
      inv_.Report("liveness", Format("%lldms after healing: %s; clients without a completed op:%s",
                                     static_cast<long long>(options_.liveness_us / kUsPerMs),
                                     LeaderExists() ? "a leader exists" : "no leader",
                                     stuck.empty() ? " none" : stuck.c_str()));
    }
  }
  for (auto& c : clients_) c->Stop();
  for (auto& c : lock_clients_) c->Stop();
  result.ops = history_.ops().size();
  if (!inv_.violated()) {
    const CheckResult check = CheckHistory(history_.ops(), options_.check_timeout);
    if (check.outcome == CheckOutcome::kIllegal) {
      inv_.Report("linearizability", check.detail);
    } else if (check.outcome == CheckOutcome::kUnknown) {
      result.linearizability_unknown = true;
      result.unknown_detail = check.detail;
    }
  }
  result.violation = inv_.violation();
  if (result.violation) {
    world_.Trace("sim", "VIOLATION " + result.violation->check + ": " + result.violation->detail);
  }
  world_.Trace("sim",
               Format("end: ops=%llu leaders=%llu max_commit=%llu messages=%llu "
                      "dropped=%llu lease_expiries=%llu lock_grants=%llu guarded_writes=%llu "
                      "fenced_writes=%llu sessions_ended_holding=%llu",
                      U(result.ops), U(inv_.leaders_elected()), U(inv_.max_committed().value()),
                      U(net_->sent()), U(net_->dropped()), U(leases_->expiries_seen()),
                      U(locks_->grants()), U(locks_->guarded_writes()), U(locks_->fenced_writes()),
                      U(locks_->sessions_ended_holding())));
  result.lock_grants = locks_->grants();
  result.fenced_writes = locks_->fenced_writes();
  result.simulated_us = world_.now_us();
  result.events = world_.events_run();
  result.trace = std::move(trace_);
  return result;
}

}  // namespace

bool AddBug(const std::string& name, BugSet* bugs) {
  if (name == "vote-ignores-log") {
    bugs->raft.vote_ignores_log = true;
  } else if (name == "commit-old-term") {
    bugs->raft.commit_old_term = true;
  } else if (name == "read-without-quorum") {
    bugs->raft.read_without_quorum = true;
  } else if (name == "skip-persist-vote") {
    bugs->skip_persist_vote = true;
  } else if (name == "lock-skip-queue") {
    bugs->locks.skip_queue = true;
  } else if (name == "lock-reuse-token") {
    bugs->locks.reuse_token = true;
  } else if (name == "lock-guard-any-holder") {
    bugs->locks.guard_any_holder = true;
  } else if (name == "lock-keep-ended-waits") {
    bugs->locks.keep_ended_waits = true;
  } else {
    return false;
  }
  return true;
}

const char* BugNames() {
  return "vote-ignores-log, commit-old-term, skip-persist-vote, read-without-quorum, "
         "lock-skip-queue, lock-reuse-token, lock-guard-any-holder, lock-keep-ended-waits";
}

SimResult RunSeed(const SimOptions& options) { return Simulation(options).Run(); }

}  // namespace warden::sim

// SimNode: one Warden member in the simulator: the real node driver
// (node::Node, the same class the server runs) with the real Raft core and the
// real state machine, over a simulated disk, network and clock (node_env.h).
//
// The node loop is single-threaded like the server's: an input (tick, peer
// message, client request, operator command) goes to the Node, which handles
// each Ready in the order raw_node.h requires. Persistence is asynchronous:
// SimDurableLog writes the records at once and completes after a simulated
// sync delay, so a crash can land between the write and the sync and lose
// what was not synced; meanwhile the Node keeps taking inputs, as the
// server's does. A paused process (a GC or VM pause) queues its inputs and
// its sync completions and misses its ticks.
//
// Ticks come from the node's own clock: the interval is the base tick times
// (1 + drift), with a random phase (skew); the Node's Clock runs at the same
// rate from a random offset, so leases see the drift too.
//
// After a crash the node rebuilds its MemoryStorage view from the durable
// records and a new Node restores its state machine from the snapshot there
// and replays the committed entries.
//
// Every invariant hook stays: persisted entries (log-matching), role changes
// (election-safety, leader-completeness), the commit index (commit-agreement),
// each applied entry with the state digest (state-machine-safety, through the
// Node's apply observer), installed snapshots, configurations, a before/after
// check of the leader's commit rule, and the lease and lock checks (each
// applied entry with its ApplyResult).
//
// Lock requests are proposed like writes. An acquire that queues is answered
// kQueued at once and remembered by (session, owner, request id); the final
// answer reaches the client when an applied entry resolves it (the Node's
// lock sink), on this member whether it still leads or not. The memory dies
// with the process: a client that hears nothing retries with the same
// request id, and the lock table answers from its own memory.
//
// Every event scheduled for a node carries its incarnation; an event meant for
// an incarnation that crashed is ignored.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "sim/client.h"
#include "sim/disk.h"
#include "sim/invariants.h"
#include "sim/lease_check.h"
#include "sim/lock_check.h"
#include "sim/network.h"
#include "sim/node_env.h"
#include "sim/world.h"
#include "src/node/node.h"

namespace warden::sim {

struct NodeOptions {
  NodeId id;
  int election_ticks = 10;
  int heartbeat_ticks = 2;
  TimeUs tick_us = 10 * kUsPerMs;
  double drift = 0;  // tick interval = tick_us * (1 + drift)
  TimeUs sync_min_us = 50;
  TimeUs sync_max_us = 2000;
  uint64_t snapshot_every = 10000;  // applied entries between snapshots
  // Flow control: small values split catch-up into many appends.
  uint64_t max_size_per_msg = 1 << 20;
  int max_inflight_msgs = 256;
  raft::InjectedBugs bugs;
  // Driver bug: a Ready that changes only the hard state (a vote, a new term)
  // is answered at once, and the hard state is written only with the next
  // entries; a crash before then forgets the vote.
  bool skip_persist_vote = false;
  state::LockBugs lock_bugs;    // planted lock table bugs
  int64_t clock_offset_ms = 0;  // the node clock's reading at time 0
  int64_t request_timeout_ms = 2000;
  int64_t lease_checkpoint_interval_ms = 500;
};

class SimNode {
 public:
  using ReplyFn = std::function<void(const ClientResponse&)>;

  SimNode(World* world, Rng rng, const NodeOptions& options, SimNetwork* network,
          Invariants* invariants, LeaseChecker* leases, LockChecker* locks, ReplyFn reply);

  NodeId id() const { return options_.id; }
  // Writes the bootstrap snapshot of a founding member, durably.
  void Bootstrap(const std::vector<NodeId>& voters);
  // Starts (or restarts) the node from its durable disk.
  void Start();
  // Stops the process; with `partial_flush`, some unsynced writes survive.
  void Crash(bool partial_flush);
  // Freezes the process for `duration_us`.
  void Pause(TimeUs duration_us);
  // Ends any pause at once (used when the faults heal).
  void Unpause();

  void OnMessage(const raft::Message& m);
  void OnClientRequest(const ClientRequest& r);
  void OnTransportReport(const raft::Message& m, bool delivered);
  // Called when the node has just sent a granted vote (a fault point: the
  // nemesis may crash it right there, FoundationDB-BUGGIFY style).
  void set_on_vote_granted(std::function<void(NodeId voter)> fn) {
    on_vote_granted_ = std::move(fn);
  }
  // Called when the node has just become leader (another fault point).
  void set_on_became_leader(std::function<void(NodeId)> fn) { on_became_leader_ = std::move(fn); }
  void ProposeConfChange(const raft::ConfChange& cc);
  void TransferLeader(NodeId target);

  bool up() const { return node_ != nullptr; }
  bool paused() const { return world_->now_us() < paused_until_us_; }
  // REQUIRES: up().
  raft::Role role() const { return node_->role(); }
  Term term() const { return node_->term(); }
  NodeId leader() const { return node_->leader(); }
  const raft::ConfState& conf_state() const { return node_->conf_state(); }
  const SimDisk& disk() const { return disk_; }
  Index applied() const { return node_->state().applied_index(); }

 private:
  std::string Who() const { return Format("n%llu", static_cast<unsigned long long>(id().value())); }
  // Runs `fn` against the node now, or queues it while paused.
  void Input(std::function<void()> fn);
  // The checks after every input and completion.
  void AfterStep();
  void ObserveRole();
  void CheckCommitRule();
  void Drain();
  void ScheduleTick(TimeUs delay_us);
  // SimDurableLog's sync: the disk syncs after a delay, then `done` runs.
  void Sync(std::function<void()> done);
  void SendMessages(std::vector<raft::Message> messages);
  int64_t ClockMs() const;
  void OnApplied(const raft::Entry& e, const state::ApplyResult* r);
  // Final answers to queued acquires that this member proposed.
  void OnLockAnswers(const state::ApplyResult& r);
  void OnSnapshotLoaded(const raft::SnapshotMetadata& meta);
  void HandleClient(const ClientRequest& r);
  void Propose(const ClientRequest& r, state::Command c);
  void ProposeLock(const ClientRequest& r, state::Command c);
  void Reply(const ClientRequest& r, ClientResponse::Code code);
  void Refuse(const ClientRequest& r) { Reply(r, ClientResponse::kRefused); }

  World* world_;
  Rng rng_;
  NodeOptions options_;
  SimNetwork* network_;
  Invariants* invariants_;
  LeaseChecker* leases_;
  LockChecker* locks_;
  ReplyFn reply_;
  std::function<void(NodeId)> on_vote_granted_;
  std::function<void(NodeId)> on_became_leader_;
  SimDisk disk_;
  FnTransport transport_;
  FnClock clock_;

  // Volatile state of the current incarnation.
  uint64_t incarnation_ = 0;
  std::unique_ptr<SimDurableLog> log_;
  std::unique_ptr<node::Node> node_;
  TimeUs paused_until_us_ = 0;
  std::deque<std::function<void()>> inbox_;
  std::function<void()> synced_while_paused_;
  // Queued acquires proposed here, by (session, owner id, request id): the
  // latest attempt, to answer when the final answer applies.
  std::map<std::tuple<int64_t, std::string, uint64_t>, ClientRequest> lock_waiters_;
  raft::Role last_role_ = raft::Role::kFollower;
  Term last_term_;
  Index last_conf_change_;  // applied since the last AfterStep
  // CheckCommitRule: the leader term being watched and its commit index.
  Term leader_term_;
  Index leader_commit_;
};

}  // namespace warden::sim

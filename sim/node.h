// SimNode: one Warden node in the simulator: the real Raft core (RawNode)
// driven exactly as the server drives it, over a simulated disk, network and
// clock, with the KV state machine on top.
//
// The node loop is single-threaded like the server's: an input (tick, peer
// message, client request, operator command) is fed to the core, then the
// Ready is handled per the ordered obligations in raw_node.h: persist (write
// to the disk and the MemoryStorage the core reads), sync, send, install a
// snapshot, apply, serve reads, Advance. The sync takes simulated time; while
// it runs the node is busy and queues its inputs, so a crash can land between
// the write and the sync and lose what was not synced. A paused process
// (a GC or VM pause) also queues its inputs and misses its ticks.
//
// Ticks come from the node's own clock: the interval is the base tick times
// (1 + drift), with a random phase (skew).
//
// After a crash the node rebuilds its MemoryStorage from the durable records,
// its state machine from the snapshot there, and restarts the core with
// applied = the snapshot's index, so the core replays the committed entries.
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
#include <vector>

#include "sim/client.h"
#include "sim/disk.h"
#include "sim/invariants.h"
#include "sim/kv.h"
#include "sim/network.h"
#include "sim/world.h"
#include "src/raft/raw_node.h"

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
};

class SimNode {
 public:
  using ReplyFn = std::function<void(const ClientResponse&)>;

  SimNode(World* world, Rng rng, const NodeOptions& options, SimNetwork* network,
          Invariants* invariants, ReplyFn reply);

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

  bool up() const { return raw_ != nullptr; }
  bool paused() const { return world_->now_us() < paused_until_us_; }
  // REQUIRES: up().
  raft::Role role() const { return raw_->role(); }
  Term term() const { return raw_->term(); }
  NodeId leader() const { return raw_->leader(); }
  const raft::ConfState& conf_state() const { return raw_->conf_state(); }
  const SimDisk& disk() const { return disk_; }
  Index applied() const { return applied_; }

 private:
  std::string Who() const { return Format("n%llu", static_cast<unsigned long long>(id().value())); }
  // Runs `fn` against the core now, or queues it while busy or paused.
  void Input(std::function<void()> fn);
  void ObserveRole();
  void CheckCommitRule();
  void AfterInput();
  void Drain();
  void ScheduleTick(TimeUs delay_us);
  // Handles Readies until there is none or one waits for its sync.
  void HandleReady();
  // Obligations 1-2 of a Ready. Returns false when a sync is now running.
  bool PersistReady();
  void OnSynced();
  // Obligations 3-7.
  void FinishReady();
  void Apply(const raft::Entry& e);
  void ServeReads();
  void MaybeSnapshot();
  void HandleClient(const ClientRequest& r);
  void Refuse(const ClientRequest& r);

  World* world_;
  Rng rng_;
  NodeOptions options_;
  SimNetwork* network_;
  Invariants* invariants_;
  ReplyFn reply_;
  std::function<void(NodeId)> on_vote_granted_;
  std::function<void(NodeId)> on_became_leader_;
  SimDisk disk_;

  // Volatile state of the current incarnation.
  uint64_t incarnation_ = 0;
  std::unique_ptr<raft::MemoryStorage> storage_;
  std::unique_ptr<raft::RawNode> raw_;
  KvStore kv_;
  Index applied_;
  bool busy_ = false;  // a Ready is outstanding (its sync is running)
  bool synced_while_paused_ = false;
  TimeUs paused_until_us_ = 0;
  std::deque<std::function<void()>> inbox_;
  raft::Ready ready_;
  std::optional<raft::HardState> unwritten_hard_state_;  // skip_persist_vote only
  raft::Role last_role_ = raft::Role::kFollower;
  Term last_term_;
  // CheckCommitRule: the leader term being watched and its commit index.
  Term leader_term_;
  Index leader_commit_;
  struct PendingRead {
    uint64_t client;
    uint64_t seq;
    std::string key;
  };
  std::map<std::string, PendingRead> pending_reads_;              // by context
  std::vector<std::pair<Index, std::string>> ready_reads_;        // (index, context)
  std::map<std::pair<uint64_t, uint64_t>, bool> pending_writes_;  // (client, seq)
};

}  // namespace warden::sim

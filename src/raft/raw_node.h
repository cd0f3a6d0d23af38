// RawNode: the Raft consensus algorithm as a pure, deterministic state machine.
//
// Inputs are Tick(), Step(message), Propose(data), ProposeConfChange(cc),
// ReadIndex(ctx) and TransferLeader(id). The only output is a Ready, fetched
// with GetReady() and acknowledged with Advance(). RawNode reads no clock,
// touches no file or socket, starts no thread and has no global state; its
// randomness comes from the seed in Config. The same code runs in the server
// and in the simulator.
//
// The driver's obligations for each Ready, in this order:
//   1. If soft_state is set, note the new leader/role (informational).
//   2. Persist, durably (fsync), before anything else below:
//        snapshot (if set), then entries (appending; an entry at an index that
//        already exists replaces it and every entry after it), then hard_state
//        (if set). One sync may cover all three (group commit).
//   3. Send `messages`. They may depend on step 2 (votes, append acks), so
//      never send before the sync has completed.
//   4. If snapshot is set, load it into the state machine.
//   5. Apply committed_entries to the state machine, in order. Entries of type
//      kConfChange are applied to membership by the core itself during
//      Advance(); the driver applies only their side effects (e.g. opening a
//      connection to a new peer).
//   6. Serve each read in read_states once the applied index reaches it.
//   7. Call Advance().
// Only one Ready may be outstanding: GetReady() again before Advance() is a
// programmer error.
//
// Thread safety: none. One thread (the node loop) owns a RawNode.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/base/random.h"
#include "src/base/status.h"
#include "src/raft/storage.h"
#include "src/raft/types.h"

namespace warden::raft {

// Planted bugs, used only to prove that the simulator's checks can fail.
// Never set in production. Each violates one rule of the Raft paper.
struct InjectedBugs {
  bool vote_ignores_log = false;     // grant votes without the up-to-date check (5.4.1)
  bool commit_old_term = false;      // commit an older term's entry by counting (5.4.2)
  bool read_without_quorum = false;  // serve ReadIndex without confirming leadership (6.4)
};

struct Config {
  NodeId id;
  // Ticks a follower waits without hearing from a leader before it campaigns;
  // the actual timeout is randomized in [election_ticks, 2*election_ticks).
  int election_ticks = 10;
  // Ticks between the leader's heartbeats. REQUIRES: < election_ticks.
  int heartbeat_ticks = 1;
  // The applied index to restart from (0: replay all committed entries).
  Index applied;
  // Flow control: the largest total data size of one append message, and the
  // number of appends in flight to one follower before waiting for acks.
  uint64_t max_size_per_msg = 1 << 20;
  int max_inflight_msgs = 256;
  // Ask a majority before starting a real election (thesis 9.6), so that a
  // partitioned node rejoining does not depose a working leader.
  bool pre_vote = true;
  // A leader that has not heard from a quorum within an election timeout
  // steps down (thesis 6.2); followers that recently heard from a leader
  // ignore votes (the leader lease that makes pre-vote and lease reads safe).
  bool check_quorum = true;
  // Serve ReadIndex from the leader lease without a heartbeat round. Only safe
  // when clocks advance at the same rate within a bound; the server enables it
  // only with a flag that says so. REQUIRES: check_quorum.
  bool lease_reads = false;
  // The seed of this node's generator (election timeout jitter).
  uint64_t seed = 1;
  InjectedBugs bugs;
};

struct Ready {
  std::optional<SoftState> soft_state;
  std::optional<HardState> hard_state;
  std::vector<ReadState> read_states;
  std::vector<Entry> entries;            // to persist
  std::optional<Snapshot> snapshot;      // to persist and load
  std::vector<Entry> committed_entries;  // to apply
  // To send after persisting; a leader's kAppend and kHeartbeat may go
  // before (its own copy counts only after Advance, Raft::OnStable).
  std::vector<Message> messages;
  // True when the persisted part must be synced before messages go out.
  bool must_sync = false;

  bool Empty() const {
    return !soft_state && !hard_state && read_states.empty() && entries.empty() && !snapshot &&
           committed_entries.empty() && messages.empty();
  }
};

// A read-only summary of a node, for tests, status and metrics.
struct NodeStatus {
  NodeId id;
  Role role = Role::kFollower;
  NodeId leader;
  Term term;
  NodeId vote;
  Index commit;
  Index applied;
  Index last_index;
  ConfState conf_state;
  NodeId lead_transferee;
  // Leader only: how far each member's log is known to match the leader's.
  std::map<NodeId, Index> match;
};

class Raft;  // the implementation, in raft.h

class RawNode {
 public:
  // Restores from storage (hard state, membership, entries). A brand-new
  // cluster member is bootstrapped by giving it a storage whose snapshot at
  // index 1 holds the initial membership (see Bootstrap below). A node whose
  // storage is empty knows no membership; it waits to be contacted.
  static Result<std::unique_ptr<RawNode>> Create(const Config& config, const Storage* storage);
  ~RawNode();

  // Advances logical time by one tick.
  void Tick();
  // Feeds a message from a peer. Stale or unknown messages are dropped
  // silently; a malformed one is refused with kInvalidArgument.
  Status Step(const Message& m);
  // Proposes data to be appended to the log. kNotLeader on a non-leader;
  // kProposalDropped during a leadership transfer.
  Status Propose(std::string data);
  // Proposes a membership change. Refused while another change is pending
  // (proposed but not applied) or while the configuration is joint.
  Status ProposeConfChange(const ConfChange& cc);
  // Requests a linearizable read point; the answer arrives in a later
  // Ready::read_states with the same context. On a follower the request is
  // forwarded to the leader. Dropped (no answer) when no leader is known.
  void ReadIndex(std::string context);
  // Asks the leader to hand leadership to `target` (catch up, then TimeoutNow).
  void TransferLeader(NodeId target);
  // Starts an election at once (tests and forced campaigns).
  void Campaign();
  // The peer could not be reached; the leader slows replication to it.
  void ReportUnreachable(NodeId peer);
  // The snapshot sent to `peer` was installed (ok) or failed.
  void ReportSnapshot(NodeId peer, bool ok);

  bool HasReady() const;
  // REQUIRES: no Ready outstanding.
  Ready GetReady();
  // Acknowledges the outstanding Ready: its entries and hard state are durable,
  // its messages sent, its committed entries applied.
  void Advance();

  NodeStatus GetStatus() const;
  // The term of entry i in this node's log (unstable entries included), for
  // invariant checks and diagnostics.
  Result<Term> LogTermAt(Index i) const;
  const ConfState& conf_state() const;
  Role role() const;
  NodeId leader() const;
  Term term() const;
  NodeId id() const;

 private:
  struct Outstanding;
  RawNode(std::unique_ptr<Raft> raft, const HardState& durable);
  std::unique_ptr<Raft> raft_;
  std::unique_ptr<Outstanding> outstanding_;
  SoftState prev_soft_;
  HardState prev_hard_;
};

// The snapshot every initial member of a new cluster starts from: index 1,
// term 1, membership = the initial voters, empty state machine image.
Snapshot BootstrapSnapshot(const std::vector<NodeId>& voters);

}  // namespace warden::raft

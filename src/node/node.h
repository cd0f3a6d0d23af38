// Node: the driver of one Warden member. It feeds ticks, peer messages and
// client requests to the Raft core and carries out each Ready in the order
// raw_node.h requires: persist (asynchronously, through DurableLog) -> send
// -> load snapshot -> apply -> serve reads -> Advance. A leader sends its
// appends and heartbeats before persisting (thesis 10.2.1), and committed
// entries already on disk are applied before the Ready's write. It tracks client
// proposals to their results, turns ReadIndex into read barriers, times out
// what waits too long, takes snapshots every `snapshot_count` entries, and,
// while leader, keeps the lease deadlines (the only place that reads a clock
// for leases) and proposes revokes and checkpoints.
//
// The same class runs in the server (gRPC transport, WAL, steady_clock) and
// in the simulator (seeded network, disk and clock).
//
// Thread safety: none. Every method, and every DurableLog completion, must
// run on the node's one thread (the server posts completions to it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/node/interfaces.h"
#include "src/raft/raw_node.h"
#include "src/state/state_machine.h"

namespace warden::node {

struct NodeConfig {
  raft::Config raft;
  // Entries applied between two state machine snapshots.
  uint64_t snapshot_count = 10000;
  // How long a proposal or read may wait before it fails with kTimeout.
  int64_t request_timeout_ms = 5000;
  // How often the leader records the remaining time of idle leases.
  int64_t lease_checkpoint_interval_ms = 2000;
  state::KvLimits kv_limits;
  // Planted lock table bugs (the simulator's --inject-bug); off in the server.
  state::LockBugs lock_bugs;
  // A follower forwards proposals to its leader (raft::MessageType::kPropose)
  // instead of refusing them with kNotLeader.
  bool forward_proposals = true;
};

class Node {
 public:
  using ProposeDone = std::function<void(const state::ApplyResult&)>;
  using ReadDone = std::function<void(const Status&)>;
  using KeepAliveDone = std::function<void(const Result<int64_t>&)>;  // TTL in seconds
  // Called for every applied write with its events and revision.
  using EventSink = std::function<void(const std::vector<state::Event>&, int64_t revision)>;
  // Observers for checkers (the simulator's invariants): called after each
  // committed entry is applied to the state machine, with its result (null
  // for an entry skipped: no-ops and membership changes), and after a
  // snapshot from the leader is loaded.
  using ApplyObserver = std::function<void(const raft::Entry&, const state::ApplyResult*)>;
  // Called for every applied entry that resolved queued lock requests,
  // produced lock events (result.lock_answers, result.lock_events) or
  // revoked a lease (a session's end).
  using LockSink = std::function<void(const state::ApplyResult&)>;
  using SnapshotObserver = std::function<void(const raft::SnapshotMetadata&)>;

  Node(const NodeConfig& config, DurableLog* log, Transport* transport, Clock* clock);
  ~Node();

  // Loads the newest snapshot into the state machine and starts the core.
  Status Start();

  void Tick();
  void Step(const raft::Message& m);

  // Proposes a command (the node fills in proposal id and leader time).
  // `done` runs once, with the apply result or an error: kNotLeader,
  // kTimeout, kNoSpace/kIoError after a disk failure. On a follower (with
  // forward_proposals) the command goes to the leader, batched with the
  // others of this batch, the leader stamps its clock on it, and `done` runs
  // when this member applies it; if the leader drops it (it lost its role),
  // `done` gets kTimeout, as in etcd. Without a known leader: kNotLeader.
  void Propose(state::Command command, ProposeDone done);
  // Completes once this member has applied everything committed before the
  // call (a linearizable read point), or fails.
  void ReadBarrier(ReadDone done);
  // Leader only: renews a lease; the answer is its TTL.
  void KeepAlive(int64_t lease_id, KeepAliveDone done);
  // Leader only: the remaining time of a lease by the leader's clock.
  Result<int64_t> LeaseRemainingMs(int64_t lease_id) const;

  Status ProposeConfChange(const raft::ConfChange& cc) { return raw_->ProposeConfChange(cc); }
  // Proposes a membership change; `done` runs once, when this member applies
  // it (the new configuration is then in joint consensus, which the leader
  // leaves by itself), or with an error: refused, kTimeout.
  void ProposeConfChange(const raft::ConfChange& cc, ReadDone done);
  void TransferLeader(NodeId target) { raw_->TransferLeader(target); }
  void ReportUnreachable(NodeId peer) { raw_->ReportUnreachable(peer); }
  void ReportSnapshot(NodeId peer, bool ok) { raw_->ReportSnapshot(peer, ok); }

  void set_event_sink(EventSink sink) { event_sink_ = std::move(sink); }
  void set_apply_observer(ApplyObserver fn) { apply_observer_ = std::move(fn); }
  void set_lock_sink(LockSink fn) { lock_sink_ = std::move(fn); }
  void set_snapshot_observer(SnapshotObserver fn) { snapshot_observer_ = std::move(fn); }

  // Defers Ready handling until EndBatch, so that every request of a batch
  // goes into one Ready and one fsync (group commit). Nests.
  void BeginBatch() { ++batch_depth_; }
  void EndBatch() {
    if (--batch_depth_ == 0) Process();
  }

  const state::StateMachine& state() const { return state_; }
  raft::NodeStatus RaftStatus() const { return raw_->GetStatus(); }
  bool IsLeader() const { return raw_->role() == raft::Role::kLeader; }
  NodeId leader() const { return raw_->leader(); }
  raft::Role role() const { return raw_->role(); }
  Term term() const { return raw_->term(); }
  const raft::ConfState& conf_state() const { return raw_->conf_state(); }
  // The term of entry `i` in the core's log (stable or not), for checkers.
  Result<Term> LogTermAt(Index i) const { return raw_->LogTermAt(i); }
  // Set after a persistence failure: the member stops taking part in Raft
  // and refuses writes; serializable reads keep working.
  const Status& disk_failure() const { return disk_failure_; }
  // Set once a committed membership change removed this member.
  bool removed() const { return removed_; }

 private:
  struct PendingProposal {
    ProposeDone done;
    int64_t deadline_ms;
    uint64_t fingerprint = 0;  // state::CommandFingerprint of the command
  };
  // The reads that share one ReadIndex request (those of one batch).
  struct PendingRead {
    std::vector<ReadDone> dones;
    int64_t deadline_ms;
    std::optional<Index> index;  // known once the read state arrives
    int64_t sent_ms = 0;         // when the ReadIndex request last went out
  };
  // A ReadIndex request is lost when there is no leader to send it to (or
  // the message is dropped): unanswered ones are asked again this often.
  static constexpr int64_t kReadRetryMs = 300;
  void RetryReads();
  void FlushReads();
  struct PendingConfChange {
    std::string data;  // the entry's bytes, to recognize it when applied
    ReadDone done;
    int64_t deadline_ms;
  };
  struct LeaseClock {
    int64_t deadline_ms = 0;
    int64_t revoke_sent_ms = -1;  // a revoke is in flight since then
  };

  // Drives Readies until none is ready or one waits for persistence.
  void Process();
  void OnPersisted(const Status& s);
  void SendBeforePersist();
  void ApplyDurableCommitted();
  void FinishReady();
  void ApplyEntry(const raft::Entry& e);
  void ServeReads();
  void MaybeSnapshot();
  void ExpireWaiters();
  void OnRoleChange(raft::Role old_role, raft::Role new_role);
  void FailAll(const Status& s);

  // The leader's lease bookkeeping.
  void LeaseTick();
  // Leader: proposes a lock tick when a lock deadline or aging step is due.
  void LockTick();
  static constexpr int64_t kLockTickRetryMs = 500;
  void FlushLeaseResets();
  void ProposeInternal(state::Command command);
  // Sends the proposals forwarded during this batch to the leader.
  void FlushForwards();
  // The leader's side of kPropose.
  void ProposeForwarded(const raft::Message& m);

  NodeConfig config_;
  bool removed_ = false;
  std::vector<PendingConfChange> conf_changes_;
  DurableLog* log_;
  Transport* transport_;
  Clock* clock_;
  std::unique_ptr<raft::RawNode> raw_;
  state::StateMachine state_;
  EventSink event_sink_;
  ApplyObserver apply_observer_;
  SnapshotObserver snapshot_observer_;

  bool persisting_ = false;
  bool in_process_ = false;
  int batch_depth_ = 0;
  raft::Ready ready_;
  raft::Role role_ = raft::Role::kFollower;
  Status disk_failure_;
  Index last_snapshot_index_;

  uint64_t next_proposal_seq_ = 1;
  std::map<uint64_t, PendingProposal> proposals_;
  std::vector<raft::Entry> forwards_;  // to the leader at the end of the batch
  // The leader's record of forwarded proposals taken in forwarded_term_:
  // (member, run) -> highest proposal id.
  Term forwarded_term_;
  std::map<std::pair<NodeId, uint64_t>, uint64_t> forwarded_high_;
  uint64_t next_read_seq_ = 1;
  std::map<std::string, PendingRead> reads_;
  // The request that reads of the current batch join; asked at its end.
  std::string open_read_;

  std::map<int64_t, LeaseClock> lease_clocks_;
  std::map<int64_t, std::vector<KeepAliveDone>> lease_resets_;  // waiting to propose
  int64_t next_checkpoint_ms_ = 0;
  int64_t lock_tick_sent_ms_ = -1;  // a lock tick is in flight since then
  int64_t next_aging_check_ms_ = 0;
  LockSink lock_sink_;
};

}  // namespace warden::node

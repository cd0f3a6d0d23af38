// Invariants: the Raft safety properties, checked as the run goes, after every
// step that could break one (LogCabin's RaftConsensusInvariants, applied to a
// whole simulated cluster). Each check keeps a global record that any node's
// later behaviour is compared against:
//
//   election-safety        term -> the one node that led in it (Raft 5.2).
//   log-matching           (index, term) -> (data hash, term of index-1), for
//                          every entry any node persisted: equal (index, term)
//                          must mean equal entry and equal predecessor, which
//                          by induction is the Log Matching property (5.3).
//   commit-agreement       index -> (term, hash) of every entry some node's
//                          durable commit index covered; no two may differ.
//   leader-completeness    a node becoming leader of term T holds every entry
//                          known committed in a term before T, or a snapshot
//                          past it (5.4). (A node can legitimately win a stale
//                          term after a pause, lacking entries committed in
//                          later terms; it then steps down on contact.)
//   state-machine-safety   index -> (term, hash, state digest after applying)
//                          for every applied entry; a node applying a
//                          different entry, or reaching a different state, at
//                          an index is a violation (5.4.3; ClickHouse Keeper's
//                          digest check). Installed snapshots are compared too.
//   durability             after every crash, the highest committed entry is
//                          on the synced disk (log or snapshot) of a majority.
//
// Which majority (durability): an entry is committed by the configuration the
// leader had applied at the time, which is the one set by some configuration
// change at an index <= the entry's. We accept a majority of either of the two
// most recent configurations set at or before the entry (a joint one needs
// both halves). This may accept a loss that a stricter model would reject, but
// never rejects a correct run.
//
// The first violation wins; the run stops there and reports it.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/raft/storage.h"
#include "src/raft/types.h"

namespace warden::sim {

class SimDisk;

struct Violation {
  std::string check;
  std::string detail;
};

class Invariants {
 public:
  Invariants() = default;

  // A node persisted `entries` into `storage` (already appended).
  void OnPersistEntries(NodeId node, const std::vector<raft::Entry>& entries,
                        const raft::MemoryStorage& storage);
  // A node's role or term may have changed; `storage` is its persisted log.
  void OnRole(NodeId node, raft::Role role, Term term, const raft::MemoryStorage& storage);
  // A node's persisted commit index may have advanced; `snapshot` is the
  // metadata of the snapshot in `storage`.
  void OnCommit(NodeId node, const raft::MemoryStorage& storage,
                const raft::SnapshotMetadata& snapshot);
  // A node applied `e` and its state machine now has digest `digest`.
  void OnApply(NodeId node, const raft::Entry& e, uint64_t digest);
  // A node installed a snapshot whose state has digest `digest`.
  void OnSnapshotInstalled(NodeId node, const raft::SnapshotMetadata& meta, uint64_t digest);
  // A configuration change entry at `index` was applied, giving `cs`.
  void OnConfState(Index index, const raft::ConfState& cs);
  // Checks durability against the nodes' disks (node id -> disk).
  void CheckDurability(const std::map<NodeId, const SimDisk*>& disks);
  // Anything else the driver found impossible (e.g. storage refusing a snapshot).
  void Report(const std::string& check, const std::string& detail);

  bool violated() const { return violation_.has_value(); }
  const std::optional<Violation>& violation() const { return violation_; }
  Index max_committed() const { return committed_.empty() ? Index(0) : committed_.rbegin()->first; }
  uint64_t leaders_elected() const { return leader_of_term_.size(); }

 private:
  struct EntryId {
    uint64_t term = 0;
    uint64_t hash = 0;
    bool has_hash = true;  // false when only the term is known (a snapshot)
    // The lowest term of a node seen holding the entry as committed: an upper
    // bound of the term in which it was committed (the committing leader sees
    // it in that very term; everyone else learns it later).
    uint64_t commit_term = 0;
  };
  struct Applied {
    uint64_t term = 0;
    uint64_t hash = 0;
    uint64_t digest = 0;
  };

  struct SnapshotPoint {
    Index index;
    uint64_t term = 0;
  };

  void RecordCommitted(NodeId node, Index i, EntryId id);
  static SnapshotPoint SnapshotOf(const raft::MemoryStorage& s);
  // Whether `s` (whose snapshot is `snap`) holds entry (i, term).
  bool HasEntry(const raft::MemoryStorage& s, const SnapshotPoint& snap, Index i,
                uint64_t term) const;

  std::optional<Violation> violation_;
  std::map<uint64_t, NodeId> leader_of_term_;
  // (index, term) -> (hash, previous term or 0 when unknown).
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint64_t>> entries_;
  std::map<Index, EntryId> committed_;
  std::map<NodeId, Index> commit_seen_;
  std::map<NodeId, raft::Role> role_seen_;
  std::map<Index, Applied> applied_;
  std::map<Index, raft::ConfState> configs_;
};

uint64_t HashEntry(const raft::Entry& e);
std::string DescribeConf(const raft::ConfState& cs);

}  // namespace warden::sim

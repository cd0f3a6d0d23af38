// RaftTestNetwork: a deterministic, in-memory cluster of RawNodes for unit
// tests of the Raft core. Each node owns a MemoryStorage (its "disk"); the
// network is one FIFO queue of messages that the test delivers explicitly, so
// every interleaving is chosen by the test and a run never depends on a clock
// or a thread.
//
// The harness plays the driver and honours the Ready obligations listed in
// raw_node.h in order: persist snapshot, entries, hard state; send messages;
// load the snapshot; apply committed entries; record read states; Advance().
//
// After every processed Ready it checks cheap invariants (habit 5) and records
// each violation as a sentence in violations():
//   1. Election safety (paper 5.2): at most one leader per term.
//   2. State machine safety (5.4.3): no two nodes apply different entries at
//      the same index.
//   3. In-order apply (5.3): each node applies index applied+1 next.
//   4. Leader completeness (5.4.3): a leader's log holds every entry that any
//      node applied before the leader's term began (above its snapshot).
//
// Thread safety: none; one test thread owns a network.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "src/raft/raw_node.h"
#include "src/raft/storage.h"
#include "src/raft/types.h"

namespace warden::raft::test {

// Returns true for a message the network must drop.
using DropFilter = std::function<bool(const Message&)>;
// Adjusts the Config of a node before it is created (or re-created).
using ConfigFn = std::function<void(Config&)>;

inline Entry MakeEntry(uint64_t index, uint64_t term, std::string data = "") {
  return Entry{Term(term), Index(index), EntryType::kNormal, std::move(data)};
}

// The ids, sorted, so that membership can be compared whatever order the core
// keeps them in.
inline std::vector<NodeId> Sorted(std::vector<NodeId> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

inline std::vector<NodeId> Ids(std::initializer_list<uint64_t> ids) {
  std::vector<NodeId> out;
  for (uint64_t id : ids) out.push_back(NodeId(id));
  return out;
}

inline bool IsConfChangeEntry(const Entry& e, ConfChange* out = nullptr) {
  if (e.type != EntryType::kConfChange) return false;
  ConfChange cc;
  if (!ConfChange::Decode(e.data, &cc)) return false;
  if (out != nullptr) *out = cc;
  return true;
}

inline bool IsLeaveJointEntry(const Entry& e) {
  ConfChange cc;
  return IsConfChangeEntry(e, &cc) && cc.IsLeaveJoint();
}

class RaftTestNetwork {
 public:
  struct Node {
    NodeId id;
    Config config;
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> raw;  // null while crashed
    // The state machine: entries applied since the last (re)start, in order.
    std::vector<Entry> applied;
    Index applied_index;
    std::vector<Snapshot> snapshots_loaded;
    std::vector<ReadState> read_states;
    std::vector<SoftState> soft_states;
    // Every distinct membership this node has gone through, in order.
    std::vector<ConfState> conf_history;
    int restarts = 0;
  };

  // Creates one node per id in `voters`, each bootstrapped with
  // BootstrapSnapshot(voters). `config_fn` may adjust every node's Config.
  explicit RaftTestNetwork(std::vector<NodeId> voters, ConfigFn config_fn = {})
      : voters_(std::move(voters)), config_fn_(std::move(config_fn)) {
    for (NodeId id : voters_) {
      auto storage = std::make_unique<MemoryStorage>();
      Status s = storage->ApplySnapshot(BootstrapSnapshot(voters_));
      EXPECT_TRUE(s.ok()) << s.ToString();
      AddNodeWithStorage(id, std::move(storage));
    }
  }

  // A node with empty storage: it knows no membership and waits to be
  // contacted by a leader that added it.
  void AddEmptyNode(NodeId id) { AddNodeWithStorage(id, std::make_unique<MemoryStorage>()); }

  // Replaces a node's durable state with the bootstrap snapshot followed by
  // `entries` and `hs`, then restarts it from there (etcd's paper tests build
  // logs this way).
  void ResetStorage(NodeId id, const std::vector<Entry>& entries, const HardState& hs) {
    Node& n = node(id);
    n.raw.reset();
    n.storage = std::make_unique<MemoryStorage>();
    Status s = n.storage->ApplySnapshot(BootstrapSnapshot(voters_));
    EXPECT_TRUE(s.ok()) << s.ToString();
    n.storage->Append(entries);
    n.storage->SetHardState(hs);
    Start(n);
  }

  // --- Accessors -----------------------------------------------------------

  Node& node(NodeId id) {
    auto it = nodes_.find(id);
    if (it == nodes_.end()) {
      ADD_FAILURE() << "no node " << id;
      std::abort();
    }
    return it->second;
  }
  RawNode& raw(NodeId id) {
    Node& n = node(id);
    if (!n.raw) {
      ADD_FAILURE() << "node " << id << " is crashed";
      std::abort();
    }
    return *n.raw;
  }
  bool IsUp(NodeId id) { return node(id).raw != nullptr; }
  NodeStatus status(NodeId id) { return raw(id).GetStatus(); }
  MemoryStorage& storage(NodeId id) { return *node(id).storage; }
  const std::vector<Entry>& applied(NodeId id) { return node(id).applied; }
  const std::vector<ReadState>& read_states(NodeId id) { return node(id).read_states; }
  std::vector<NodeId> ids() const {
    std::vector<NodeId> out;
    for (const auto& [id, n] : nodes_) out.push_back(id);
    return out;
  }

  // The data of applied normal entries, skipping empty no-ops.
  std::vector<std::string> AppliedData(NodeId id) {
    std::vector<std::string> out;
    for (const Entry& e : node(id).applied) {
      if (e.type == EntryType::kNormal && !e.data.empty()) out.push_back(e.data);
    }
    return out;
  }

  // The persisted log of a node, from its first held index to its last.
  std::vector<Entry> StoredEntries(NodeId id) {
    const MemoryStorage& st = storage(id);
    if (st.LastIndex() < st.FirstIndex()) return {};
    auto r = st.Entries(st.FirstIndex(), st.LastIndex() + 1, UINT64_MAX);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : std::vector<Entry>{};
  }
  // The term of a persisted entry, or 0 when it is not held.
  Term StoredTerm(NodeId id, Index i) {
    auto r = storage(id).TermAt(i);
    return r.ok() ? r.value() : Term(0);
  }

  // The ids of live nodes that believe they lead.
  std::vector<NodeId> Leaders() {
    std::vector<NodeId> out;
    for (auto& [id, n] : nodes_) {
      if (n.raw && n.raw->role() == Role::kLeader) out.push_back(id);
    }
    return out;
  }
  // The live leader with the highest term, or kNoNode.
  NodeId Leader() {
    NodeId best = kNoNode;
    Term best_term;
    for (NodeId id : Leaders()) {
      if (best == kNoNode || raw(id).term() > best_term) {
        best = id;
        best_term = raw(id).term();
      }
    }
    return best;
  }

  // Every message any node has handed to the network, in order.
  const std::vector<Message>& sent() const { return sent_; }
  int CountSent(MessageType t, NodeId from = kNoNode, NodeId to = kNoNode) const {
    int n = 0;
    for (const Message& m : sent_) {
      if (m.type == t && (from == kNoNode || m.from == from) && (to == kNoNode || m.to == to)) ++n;
    }
    return n;
  }
  void ClearSent() { sent_.clear(); }

  const std::vector<std::string>& violations() const { return violations_; }

  // --- Inputs --------------------------------------------------------------

  void Tick(NodeId id, int n = 1) {
    for (int i = 0; i < n; ++i) raw(id).Tick();
  }
  // `rounds` times: tick every live node once, then Stabilize().
  void TickAll(int rounds = 1) {
    for (int r = 0; r < rounds; ++r) {
      for (auto& [id, n] : nodes_) {
        if (n.raw) n.raw->Tick();
      }
      Stabilize();
    }
  }
  // Ticks all and stabilizes until `done` holds; returns the rounds used, or
  // -1 if `done` still fails after max_rounds.
  int TickAllUntil(const std::function<bool()>& done, int max_rounds) {
    if (done()) return 0;
    for (int r = 1; r <= max_rounds; ++r) {
      TickAll(1);
      if (done()) return r;
    }
    return -1;
  }

  Status Propose(NodeId id, std::string data) { return raw(id).Propose(std::move(data)); }
  Status ProposeConfChange(NodeId id, const ConfChange& cc) {
    return raw(id).ProposeConfChange(cc);
  }
  // Feeds a hand-made message straight into a node.
  Status Step(const Message& m) { return raw(m.to).Step(m); }

  // Campaigns on `id` and stabilizes; true if `id` ends up leading.
  bool ElectLeader(NodeId id) {
    raw(id).Campaign();
    Stabilize();
    return IsUp(id) && raw(id).role() == Role::kLeader;
  }

  // --- Failures ------------------------------------------------------------

  // Drops the in-memory RawNode and its state machine; storage survives.
  void Crash(NodeId id) { node(id).raw.reset(); }
  // Rebuilds the RawNode from the same storage with Config.applied = 0, so
  // that it replays every committed entry into a fresh state machine.
  void Restart(NodeId id) {
    Node& n = node(id);
    n.raw.reset();
    ++n.restarts;
    Start(n);
  }

  // Drops every message between `id` and any other node.
  void Isolate(NodeId id) { isolated_.insert(id); }
  // Drops every message between a node of `a` and a node of `b`.
  void Partition(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
    for (NodeId x : a) {
      for (NodeId y : b) {
        Cut(x, y);
        Cut(y, x);
      }
    }
  }
  // Drops messages from `from` to `to` (one direction).
  void Cut(NodeId from, NodeId to) { cut_.insert({from, to}); }
  void AddDropFilter(DropFilter f) { filters_.push_back(std::move(f)); }
  void ClearDropFilters() { filters_.clear(); }
  // Removes every partition, isolation and filter.
  void Heal() {
    isolated_.clear();
    cut_.clear();
    filters_.clear();
  }

  // --- Driving -------------------------------------------------------------

  // Handles one Ready of `id` as the driver would. Returns false if the node
  // is crashed or had nothing ready.
  bool ProcessReady(NodeId id) {
    Node& n = node(id);
    if (!n.raw || !n.raw->HasReady()) return false;
    Ready rd = n.raw->GetReady();
    if (rd.soft_state) n.soft_states.push_back(*rd.soft_state);
    // Persist: snapshot, entries, hard state.
    if (rd.snapshot) {
      Status s = n.storage->ApplySnapshot(*rd.snapshot);
      if (!s.ok()) Violation(n, "could not persist its snapshot: " + s.ToString());
    }
    if (!rd.entries.empty()) n.storage->Append(rd.entries);
    if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
    // Send.
    for (Message& m : rd.messages) {
      sent_.push_back(m);
      queue_.push_back(std::move(m));
    }
    // Load the snapshot, apply committed entries, note reads.
    if (rd.snapshot) {
      n.snapshots_loaded.push_back(*rd.snapshot);
      n.applied_index = rd.snapshot->metadata.index;
    }
    for (const Entry& e : rd.committed_entries) Apply(n, e);
    for (const ReadState& rs : rd.read_states) n.read_states.push_back(rs);
    n.raw->Advance();
    const ConfState& cs = n.raw->conf_state();
    if (n.conf_history.empty() || !(n.conf_history.back() == cs)) n.conf_history.push_back(cs);
    CheckAfterReady(n);
    return true;
  }

  // Processes every node's Ready, once each, in id order.
  bool ProcessAllReady() {
    bool any = false;
    for (NodeId id : ids()) {
      while (ProcessReady(id)) any = true;
    }
    return any;
  }

  // Removes and returns every queued message, undelivered.
  std::vector<Message> TakeMessages() {
    std::vector<Message> out(queue_.begin(), queue_.end());
    queue_.clear();
    return out;
  }
  std::vector<Message> TakeMessages(MessageType t) {
    std::vector<Message> out, keep;
    for (Message& m : queue_) (m.type == t ? out : keep).push_back(std::move(m));
    queue_.assign(keep.begin(), keep.end());
    return out;
  }
  const std::deque<Message>& queue() const { return queue_; }

  // Delivers the messages queued now (not those they provoke), honouring
  // partitions and filters. A snapshot's sender is told the outcome through
  // ReportSnapshot, as a real transport does after streaming it.
  void DeliverAll() {
    std::deque<Message> batch;
    batch.swap(queue_);
    for (Message& m : batch) Deliver(m);
  }

  // Alternates "process every Ready" and "deliver every message" until no
  // node has a Ready and no message is queued. Returns false (and fails the
  // test) if that does not happen within a bounded number of rounds.
  bool Stabilize(int max_rounds = 1000) {
    for (int round = 0; round < max_rounds; ++round) {
      const bool processed = ProcessAllReady();
      if (!processed && queue_.empty()) return true;
      DeliverAll();
    }
    ADD_FAILURE() << "network did not stabilize within " << max_rounds << " rounds";
    return false;
  }

  // True when each of `others` has persisted exactly the log `id` has.
  bool LogsMatch(NodeId id, const std::vector<NodeId>& others) {
    const std::vector<Entry> want = StoredEntries(id);
    for (NodeId o : others) {
      if (StoredEntries(o) != want) return false;
    }
    return true;
  }

  // Log Matching (paper 5.3): if two persisted logs hold an entry with the
  // same index and term, they are identical up to that index (over the range
  // both still hold). Returns the violations found.
  std::vector<std::string> CheckLogMatching() {
    std::vector<std::string> out;
    const std::vector<NodeId> all = ids();
    for (size_t a = 0; a < all.size(); ++a) {
      for (size_t b = a + 1; b < all.size(); ++b) {
        MemoryStorage& sa = storage(all[a]);
        MemoryStorage& sb = storage(all[b]);
        const Index lo = std::max(sa.FirstIndex(), sb.FirstIndex());
        const Index hi = std::min(sa.LastIndex(), sb.LastIndex());
        Index top;  // highest index with equal terms
        for (Index i = hi; i >= lo && i > Index(0); i = i - 1) {
          if (StoredTerm(all[a], i) == StoredTerm(all[b], i)) {
            top = i;
            break;
          }
        }
        if (top == Index(0)) continue;
        auto ea = sa.Entries(lo, top + 1, UINT64_MAX);
        auto eb = sb.Entries(lo, top + 1, UINT64_MAX);
        if (!ea.ok() || !eb.ok() || ea.value() != eb.value()) {
          out.push_back("logs of " + Str(all[a]) + " and " + Str(all[b]) +
                        " agree on the term at " + Str(top) + " but differ before it");
        }
      }
    }
    return out;
  }

 private:
  void AddNodeWithStorage(NodeId id, std::unique_ptr<MemoryStorage> storage) {
    Node& n = nodes_[id];
    n.id = id;
    n.storage = std::move(storage);
    Start(n);
  }

  void Start(Node& n) {
    Config cfg;
    cfg.id = n.id;
    cfg.seed = n.id.value() * 7919 + 17;
    if (config_fn_) config_fn_(cfg);
    cfg.id = n.id;
    cfg.applied = Index(0);
    n.config = cfg;
    n.applied.clear();
    n.read_states.clear();
    n.applied_index = n.storage->FirstIndex() - 1;
    auto r = RawNode::Create(cfg, n.storage.get());
    if (!r.ok()) {
      ADD_FAILURE() << "RawNode::Create(" << n.id << "): " << r.status().ToString();
      std::abort();
    }
    n.raw = std::move(r).value();
    n.conf_history.push_back(n.raw->conf_state());
  }

  void Deliver(const Message& m) {
    auto from_it = nodes_.find(m.from);
    RawNode* sender = from_it != nodes_.end() ? from_it->second.raw.get() : nullptr;
    auto to_it = nodes_.find(m.to);
    const bool dropped = to_it == nodes_.end() || !to_it->second.raw || IsDropped(m);
    if (!dropped) {
      Status s = to_it->second.raw->Step(m);
      EXPECT_TRUE(s.ok()) << "Step(" << MessageTypeName(m.type) << " " << m.from << "->" << m.to
                          << "): " << s.ToString();
    }
    if (m.type == MessageType::kSnapshot && sender != nullptr) {
      sender->ReportSnapshot(m.to, !dropped);
    }
  }

  bool IsDropped(const Message& m) const {
    if (isolated_.count(m.from) || isolated_.count(m.to)) return true;
    if (cut_.count({m.from, m.to})) return true;
    for (const DropFilter& f : filters_) {
      if (f(m)) return true;
    }
    return false;
  }

  void Apply(Node& n, const Entry& e) {
    if (e.index != n.applied_index + 1) {
      Violation(n, "applied index " + Str(e.index) + " after " + Str(n.applied_index));
    }
    n.applied_index = e.index;
    n.applied.push_back(e);
    auto [it, inserted] = applied_at_.emplace(e.index, AppliedEntry{e, MaxTerm()});
    if (!inserted && !(it->second.entry == e)) {
      Violation(n, "applied " + Describe(e) + " but another node applied " +
                       Describe(it->second.entry) + " at the same index");
    }
  }

  // The highest term any node (live or crashed) has reached.
  Term MaxTerm() const {
    Term t;
    for (const auto& [id, n] : nodes_) {
      t = std::max(t, n.raw ? n.raw->term() : n.storage->hard_state().term);
    }
    return t;
  }

  void CheckAfterReady(Node& n) {
    if (!n.raw || n.raw->role() != Role::kLeader) return;
    const Term term = n.raw->term();
    auto [it, inserted] = leader_of_term_.emplace(term, n.id);
    if (!inserted && it->second != n.id) {
      Violation(n, "leads term " + Str(term) + " already led by " + Str(it->second));
    }
    // An entry first applied while no node had passed term M was committed
    // in a term <= M, so every leader of a term above M must hold it. (A
    // stale leader of an older term may legitimately lack it.)
    const MemoryStorage& st = *n.storage;
    for (const auto& [index, applied] : applied_at_) {
      const Entry& e = applied.entry;
      if (index < st.FirstIndex() || applied.max_term_when_applied >= term) continue;
      auto t = st.TermAt(index);
      if (!t.ok() || t.value() != e.term) {
        Violation(n, "leads term " + Str(term) + " without the applied entry " + Describe(e));
        break;
      }
    }
  }

  void Violation(const Node& n, const std::string& what) {
    violations_.push_back("node " + Str(n.id) + " " + what);
  }

  template <typename T>
  static std::string Str(const T& v) {
    std::ostringstream os;
    os << v;
    return os.str();
  }
  static std::string Describe(const Entry& e) {
    return Str(e.index) + "@" + Str(e.term) + "(" + e.data.substr(0, 16) + ")";
  }

  std::vector<NodeId> voters_;
  ConfigFn config_fn_;
  std::map<NodeId, Node> nodes_;
  std::deque<Message> queue_;
  std::vector<Message> sent_;
  std::set<NodeId> isolated_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::vector<DropFilter> filters_;
  struct AppliedEntry {
    Entry entry;
    Term max_term_when_applied;
  };
  std::map<Index, AppliedEntry> applied_at_;
  std::map<Term, NodeId> leader_of_term_;
  std::vector<std::string> violations_;
};

inline std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// Message builders for unit tests that feed one node by hand.
inline Message MakeMessage(MessageType type, uint64_t from, uint64_t to, Term term) {
  Message m;
  m.type = type;
  m.from = NodeId(from);
  m.to = NodeId(to);
  m.term = term;
  return m;
}
inline Message MakeAppend(uint64_t from, uint64_t to, Term term, uint64_t prev_index,
                          uint64_t prev_term, std::vector<Entry> entries, uint64_t commit) {
  Message m = MakeMessage(MessageType::kAppend, from, to, term);
  m.index = Index(prev_index);
  m.log_term = Term(prev_term);
  m.entries = std::move(entries);
  m.commit = Index(commit);
  return m;
}
inline Message MakeAppendResponse(uint64_t from, uint64_t to, Term term, uint64_t index) {
  Message m = MakeMessage(MessageType::kAppendResponse, from, to, term);
  m.index = Index(index);
  return m;
}
inline Message MakeVote(uint64_t from, uint64_t to, Term term, uint64_t last_index,
                        uint64_t last_term, MessageType type = MessageType::kVote) {
  Message m = MakeMessage(type, from, to, term);
  m.index = Index(last_index);
  m.log_term = Term(last_term);
  return m;
}
inline Message MakeVoteResponse(uint64_t from, uint64_t to, Term term, bool reject) {
  Message m = MakeMessage(MessageType::kVoteResponse, from, to, term);
  m.reject = reject;
  return m;
}

// The messages of one type in `msgs`.
inline std::vector<Message> OfType(const std::vector<Message>& msgs, MessageType t) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (m.type == t) out.push_back(m);
  }
  return out;
}

}  // namespace warden::raft::test

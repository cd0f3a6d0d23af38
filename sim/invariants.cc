#include "sim/invariants.h"

#include <algorithm>

#include "sim/disk.h"
#include "sim/world.h"

namespace warden::sim {
namespace {

std::string Ids(const std::vector<NodeId>& ids) {
  std::string out;
  for (NodeId id : ids) {
    if (!out.empty()) out.push_back(',');
    out += std::to_string(id.value());
  }
  return out;
}

// FNV-1a.
uint64_t HashBytes(const std::string& s, uint64_t seed) {
  uint64_t h = seed;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

uint64_t HashEntry(const raft::Entry& e) {
  return HashBytes(e.data, 1469598103934665603ULL ^ static_cast<uint64_t>(e.type));
}

std::string DescribeConf(const raft::ConfState& cs) {
  std::string out = "voters={" + Ids(cs.voters) + "}";
  if (cs.IsJoint()) out += " outgoing={" + Ids(cs.voters_outgoing) + "}";
  if (!cs.learners.empty()) out += " learners={" + Ids(cs.learners) + "}";
  return out;
}

void Invariants::Report(const std::string& check, const std::string& detail) {
  if (!violation_) violation_ = Violation{check, detail};
}

void Invariants::OnPersistEntries(NodeId node, const std::vector<raft::Entry>& entries,
                                  const raft::MemoryStorage& storage) {
  for (size_t k = 0; k < entries.size(); ++k) {
    const raft::Entry& e = entries[k];
    uint64_t prev = 0;
    if (k > 0) {
      prev = entries[k - 1].term.value();
    } else if (Result<Term> t = storage.TermAt(e.index - 1); t.ok()) {
      prev = t->value();
    }
    const uint64_t hash = HashEntry(e);
    auto [it, inserted] = entries_.try_emplace({e.index.value(), e.term.value()}, hash, prev);
    if (inserted) continue;
    if (it->second.first != hash) {
      return Report("log-matching",
                    Format("n%llu persisted a different entry at index %llu term %llu", U(node),
                           U(e.index), U(e.term)));
    }
    if (prev != 0 && it->second.second != 0 && it->second.second != prev) {
      return Report("log-matching",
                    Format("n%llu has entry %llu/%llu after term %llu, another node after %llu",
                           U(node), U(e.index), U(e.term), U(prev), U(it->second.second)));
    }
    if (it->second.second == 0) it->second.second = prev;
  }
}

bool Invariants::HasEntry(const raft::MemoryStorage& s, const SnapshotPoint& snap, Index i,
                          uint64_t term) const {
  if (i < snap.index) return true;  // under the snapshot: applied, so committed there
  if (i == snap.index) return snap.term == term;
  Result<Term> t = s.TermAt(i);
  return t.ok() && t->value() == term;
}

Invariants::SnapshotPoint Invariants::SnapshotOf(const raft::MemoryStorage& s) {
  // One copy of the snapshot (its data too) per call: callers look it up
  // once, not once per entry.
  const Result<raft::Snapshot> snap = s.GetSnapshot();
  if (!snap.ok()) return {};
  return {snap->metadata.index, snap->metadata.term.value()};
}

void Invariants::OnRole(NodeId node, raft::Role role, Term term,
                        const raft::MemoryStorage& storage) {
  raft::Role& seen = role_seen_[node];
  const bool became_leader = role == raft::Role::kLeader && seen != raft::Role::kLeader;
  seen = role;
  if (role != raft::Role::kLeader) return;
  auto [it, inserted] = leader_of_term_.try_emplace(term.value(), node);
  if (!inserted && it->second != node) {
    return Report("election-safety",
                  Format("n%llu and n%llu both led term %llu", U(it->second), U(node), U(term)));
  }
  if (!became_leader) return;
  const SnapshotPoint snap = SnapshotOf(storage);
  for (const auto& [index, id] : committed_) {
    if (id.commit_term < term.value() && !HasEntry(storage, snap, index, id.term)) {
      return Report("leader-completeness",
                    Format("n%llu became leader of term %llu without committed entry %llu/%llu "
                           "(its last index %llu)",
                           U(node), U(term), U(index), U(id.term), U(storage.LastIndex())));
    }
  }
}

void Invariants::RecordCommitted(NodeId node, Index i, EntryId id) {
  auto [it, inserted] = committed_.try_emplace(i, id);
  if (inserted) return;
  if (it->second.term != id.term ||
      (it->second.has_hash && id.has_hash && it->second.hash != id.hash)) {
    return Report("commit-agreement",
                  Format("n%llu committed %llu/%llu, another node committed %llu/%llu", U(node),
                         U(i), U(id.term), U(i), U(it->second.term)));
  }
  it->second.commit_term = std::min(it->second.commit_term, id.commit_term);
  if (!it->second.has_hash && id.has_hash) {
    it->second.hash = id.hash;
    it->second.has_hash = true;
  }
}

void Invariants::OnCommit(NodeId node, const raft::MemoryStorage& storage,
                          const raft::SnapshotMetadata& snapshot) {
  const Index commit = storage.hard_state().commit;
  const uint64_t term = storage.hard_state().term.value();
  Index& seen = commit_seen_[node];
  if (commit <= seen) return;
  Index from = seen + 1;
  if (snapshot.index >= from && snapshot.index <= commit) {
    RecordCommitted(node, snapshot.index, EntryId{snapshot.term.value(), 0, false, term});
    from = snapshot.index + 1;
  }
  if (from < storage.FirstIndex()) from = storage.FirstIndex();
  if (commit > storage.LastIndex()) {
    return Report("commit-agreement",
                  Format("n%llu durable commit %llu is beyond its durable log (last %llu)", U(node),
                         U(commit), U(storage.LastIndex())));
  }
  if (from <= commit) {
    Result<std::vector<raft::Entry>> es = storage.Entries(from, commit + 1, UINT64_MAX);
    if (es.ok()) {
      for (const raft::Entry& e : *es) {
        RecordCommitted(node, e.index, EntryId{e.term.value(), HashEntry(e), true, term});
        if (violation_) return;
      }
    }
  }
  seen = commit;
}

void Invariants::OnApply(NodeId node, const raft::Entry& e, uint64_t digest) {
  const Applied mine{e.term.value(), HashEntry(e), digest};
  auto [it, inserted] = applied_.try_emplace(e.index, mine);
  if (inserted) return;
  if (it->second.term != mine.term || it->second.hash != mine.hash) {
    return Report("state-machine-safety",
                  Format("n%llu applied %llu/%llu, another node applied %llu/%llu", U(node),
                         U(e.index), U(e.term), U(e.index), U(it->second.term)));
  }
  if (it->second.digest != digest) {
    return Report("state-machine-safety",
                  Format("n%llu state digest after index %llu differs from another node's", U(node),
                         U(e.index)));
  }
}

void Invariants::OnSnapshotInstalled(NodeId node, const raft::SnapshotMetadata& meta,
                                     uint64_t digest) {
  auto it = applied_.find(meta.index);
  if (it == applied_.end()) return;
  if (it->second.term != meta.term.value() || it->second.digest != digest) {
    Report("state-machine-safety",
           Format("n%llu installed a snapshot at %llu/%llu unlike the state applied there", U(node),
                  U(meta.index), U(meta.term)));
  }
}

void Invariants::OnConfState(Index index, const raft::ConfState& cs) { configs_[index] = cs; }

void Invariants::CheckDurability(const std::map<NodeId, const SimDisk*>& disks) {
  if (committed_.empty() || configs_.empty()) return;
  const auto& [index, id] = *committed_.rbegin();
  std::map<NodeId, bool> holds;
  for (const auto& [node, disk] : disks) {
    raft::MemoryStorage s;
    std::string error;
    holds[node] = disk->Recover(&s, &error) && HasEntry(s, SnapshotOf(s), index, id.term);
  }
  auto majority = [&](const std::vector<NodeId>& voters) {
    size_t n = 0;
    for (NodeId v : voters) n += holds.count(v) && holds[v];
    return voters.empty() || n > voters.size() / 2;
  };
  auto it = configs_.upper_bound(index);
  std::string tried;
  for (int k = 0; k < 2 && it != configs_.begin(); ++k) {
    --it;
    const raft::ConfState& cs = it->second;
    if (majority(cs.voters) && majority(cs.voters_outgoing)) return;
    tried += (tried.empty() ? "" : " or ") + DescribeConf(cs);
  }
  if (tried.empty()) return;
  std::string have;
  for (const auto& [node, ok] : holds) {
    if (ok) have += (have.empty() ? "n" : ",n") + std::to_string(node.value());
  }
  Report("durability", Format("committed entry %llu/%llu is durable only on {%s}, not a majority "
                              "of %s",
                              U(index), U(id.term), have.c_str(), tried.c_str()));
}

}  // namespace warden::sim

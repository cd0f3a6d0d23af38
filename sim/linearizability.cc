// The linearizability checker: see linearizability.h for the algorithm.
#include "sim/linearizability.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "src/base/check.h"

namespace warden::sim {

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kRead: return "read";
    case OpKind::kGet: return "get";
    case OpKind::kWrite: return "write";
    case OpKind::kCas: return "cas";
    case OpKind::kAppend: return "append";
    case OpKind::kDelete: return "delete";
  }
  return "?";
}

const char* CheckOutcomeName(CheckOutcome outcome) {
  switch (outcome) {
    case CheckOutcome::kOk: return "ok";
    case CheckOutcome::kIllegal: return "illegal";
    case CheckOutcome::kUnknown: return "unknown";
  }
  return "?";
}

namespace {

std::string Quote(const std::optional<std::string>& v) {
  return v ? "\"" + *v + "\"" : std::string("nil");
}

std::string TimeString(int64_t t) { return t == kPending ? "pending" : std::to_string(t); }

}  // namespace

std::string DescribeOperation(const Operation& op) {
  std::string s = "client " + std::to_string(op.client_id) + " ";
  if (!op.key.empty()) s += "key \"" + op.key + "\" ";
  s += OpKindName(op.input.kind);
  switch (op.input.kind) {
    case OpKind::kRead:
    case OpKind::kGet:
      s += "()";
      if (!op.pending()) s += " -> " + Quote(op.output.value);
      break;
    case OpKind::kWrite:
    case OpKind::kAppend: s += "(\"" + op.input.value + "\")"; break;
    case OpKind::kDelete: s += "()"; break;
    case OpKind::kCas:
      s += "(" + Quote(op.input.expected) + " -> \"" + op.input.value + "\")";
      if (!op.pending()) s += op.output.ok ? " -> ok" : " -> failed";
      break;
  }
  s += " [" + TimeString(op.invoke_time) + ", " + TimeString(op.complete_time) + "]";
  return s;
}

// ---------------------------------------------------------------------------
// The searches.

namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

// splitmix64's finalizer: a cheap, well-mixed 64-bit hash.
uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Memory shared by the memo caches of one check.
struct CacheBudget {
  size_t max_bytes;
  size_t used_bytes = 0;
};

// A set of keys (word strings: a linearized set and a model state) already
// explored. Keys live in chunks that grow geometrically and never move; the
// table is open addressing with linear probing and keeps each key's full hash,
// so most mismatches cost no key comparison.
class MemoCache {
 public:
  enum class InsertResult { kNew, kSeen, kFull };

  explicit MemoCache(CacheBudget& budget) : budget_(budget) { Resize(1 << 10); }
  ~MemoCache() { budget_.used_bytes -= bytes_; }
  MemoCache(const MemoCache&) = delete;
  MemoCache& operator=(const MemoCache&) = delete;

  bool Contains(uint64_t hash, std::span<const uint64_t> key) const {
    return slots_[Find(hash, key)].where != kEmpty;
  }

  InsertResult Insert(uint64_t hash, std::span<const uint64_t> key) {
    const size_t i = Find(hash, key);
    if (slots_[i].where != kEmpty) return InsertResult::kSeen;
    if (budget_.used_bytes > budget_.max_bytes) return InsertResult::kFull;
    const size_t words = key.size() + 1;  // a length word, then the key
    if (chunks_.empty() || chunk_used_ + words > chunk_size_) {
      chunk_size_ = std::max({chunk_size_ * 2, words, size_t{1} << 12});
      // Not zeroed: untouched pages of a fresh chunk cost nothing.
      chunks_.push_back(std::make_unique_for_overwrite<uint64_t[]>(chunk_size_));
      chunk_used_ = 0;
      Charge(chunk_size_ * sizeof(uint64_t));
    }
    uint64_t* dst = &chunks_.back()[chunk_used_];
    dst[0] = key.size();
    std::copy(key.begin(), key.end(), dst + 1);
    slots_[i] = {hash, (uint64_t{chunks_.size() - 1} << 40) | chunk_used_};
    chunk_used_ += words;
    if (++used_ * 2 > slots_.size()) Resize(slots_.size() * 2);
    return InsertResult::kNew;
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  struct Slot {
    uint64_t hash = 0;
    uint64_t where = kEmpty;  // chunk << 40 | word offset in the chunk
  };

  // The slot holding `key`, or the empty slot where it would go.
  size_t Find(uint64_t hash, std::span<const uint64_t> key) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.where == kEmpty) return i;
      if (slot.hash != hash) continue;
      const uint64_t* stored = &chunks_[slot.where >> 40][slot.where & ((uint64_t{1} << 40) - 1)];
      if (stored[0] == key.size() && std::equal(key.begin(), key.end(), stored + 1)) return i;
    }
  }

  void Resize(size_t size) {
    std::vector<Slot> old(size);
    old.swap(slots_);
    Charge((slots_.size() - old.size()) * sizeof(Slot));
    for (const Slot& s : old) {
      if (s.where == kEmpty) continue;
      size_t i = s.hash & (slots_.size() - 1);
      while (slots_[i].where != kEmpty) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = s;
    }
  }

  void Charge(size_t bytes) {
    bytes_ += bytes;
    budget_.used_bytes += bytes;
  }

  CacheBudget& budget_;
  std::vector<std::unique_ptr<uint64_t[]>> chunks_;
  size_t chunk_size_ = 0;    // words in chunks_.back()
  size_t chunk_used_ = 0;    // of which used
  std::vector<Slot> slots_;  // size is a power of two, at most half full
  size_t used_ = 0;
  size_t bytes_ = 0;
};

// The event list: a doubly linked list of call and return events in time order,
// threaded through a vector so that removed nodes keep their links and can be
// put back in LIFO order (dancing links).
class EventList {
 public:
  struct Node {
    uint32_t prev = kNone;
    uint32_t next = kNone;
    uint32_t op = kNone;  // kNone for the head and tail sentinels
    bool is_call = false;
  };

  explicit EventList(const std::vector<OpInterval>& ops)
      : call_(ops.size(), kNone), return_(ops.size(), kNone) {
    struct Event {
      int64_t time;
      bool is_return;  // calls sort first at equal times: ties are concurrent
      uint32_t op;
    };
    std::vector<Event> events;
    for (uint32_t i = 0; i < ops.size(); ++i) {
      events.push_back({ops[i].invoke_time, false, i});
      if (ops[i].complete_time != kPending) events.push_back({ops[i].complete_time, true, i});
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      if (a.time != b.time) return a.time < b.time;
      if (a.is_return != b.is_return) return !a.is_return;
      return a.op < b.op;
    });
    nodes_.resize(events.size() + 2);
    for (size_t i = 0; i < events.size(); ++i) {
      Node& n = nodes_[i + 1];
      n.op = events[i].op;
      n.is_call = !events[i].is_return;
      (n.is_call ? call_ : return_)[n.op] = static_cast<uint32_t>(i + 1);
    }
    for (uint32_t i = 0; i < nodes_.size(); ++i) {
      if (i > 0) nodes_[i].prev = i - 1;
      if (i + 1 < nodes_.size()) nodes_[i].next = i + 1;
    }
  }

  uint32_t First() const { return nodes_[0].next; }
  const Node& node(uint32_t i) const { return nodes_[i]; }
  uint32_t CallOf(uint32_t op) const { return call_[op]; }

  // Removes op's events. REQUIRES: they are in the list.
  void Lift(uint32_t op) {
    Unlink(call_[op]);
    if (return_[op] != kNone) Unlink(return_[op]);
  }
  // Puts back op's events. REQUIRES: op is the most recently lifted op still out.
  void Unlift(uint32_t op) {
    if (return_[op] != kNone) Relink(return_[op]);
    Relink(call_[op]);
  }

 private:
  void Unlink(uint32_t i) {
    nodes_[nodes_[i].prev].next = nodes_[i].next;
    nodes_[nodes_[i].next].prev = nodes_[i].prev;
  }
  void Relink(uint32_t i) {
    nodes_[nodes_[i].prev].next = i;
    nodes_[nodes_[i].next].prev = i;
  }

  std::vector<Node> nodes_;  // [0] is the head, back() the tail
  std::vector<uint32_t> call_;
  std::vector<uint32_t> return_;
};

void CheckIntervals(const std::vector<OpInterval>& ops) {
  WARDEN_CHECK(ops.size() < kNone / 4);
  for (const OpInterval& op : ops) {
    WARDEN_CHECK_MSG(op.invoke_time <= op.complete_time, "operation completes before invoke");
  }
}

std::string Illegal(const SequentialModel& model, uint32_t op, size_t depth, size_t total) {
  return "no linearization: cannot place " + model.Describe(op) +
         " (longest legal prefix: " + std::to_string(depth) + " of " + std::to_string(total) +
         " operations)";
}

// The Wing & Gong / Lowe search of one history, resumable: Run() may stop after
// a number of steps and be called again, so that partitions can take turns.
class WglSearch {
 public:
  WglSearch(const std::vector<OpInterval>& ops, SequentialModel& model, CacheBudget& budget)
      : ops_(ops),
        model_(model),
        list_(ops),
        cache_(budget),
        linearized_((ops.size() + 63) / 64, 0) {
    CheckIntervals(ops);
    for (const OpInterval& op : ops) unplaced_ += op.complete_time != kPending;
    cur_ = list_.First();
  }

  // Searches for at most `max_steps` steps. Returns the answer, or nullopt if
  // there is none yet; kUnknown once the deadline has passed.
  std::optional<CheckResult> Run(uint64_t max_steps,
                                 std::chrono::steady_clock::time_point deadline) {
    for (uint64_t budget = max_steps; unplaced_ > 0; --budget) {
      if (budget == 0) return std::nullopt;
      if ((++steps_ & 1023) == 0 && std::chrono::steady_clock::now() > deadline) {
        return Finish(CheckOutcome::kUnknown,
                      "timed out after " + std::to_string(steps_) + " steps");
      }
      // A return event of an unplaced op always lies ahead of `cur_`.
      WARDEN_CHECK(cur_ != kNone && list_.node(cur_).op != kNone);
      const EventList::Node& node = list_.node(cur_);
      const uint32_t op = node.op;
      if (node.is_call) {
        if (model_.TryApply(op)) {
          Flip(op);
          key_.assign(linearized_.begin(), linearized_.end());
          model_.EncodeState(&key_);
          uint64_t hash = linearized_hash_;
          for (size_t i = linearized_.size(); i < key_.size(); ++i) hash = Mix64(hash ^ key_[i]);
          switch (cache_.Insert(hash, key_)) {
            case MemoCache::InsertResult::kNew:
              stack_.push_back(op);
              list_.Lift(op);
              unplaced_ -= ops_[op].complete_time != kPending;
              cur_ = list_.First();
              continue;
            case MemoCache::InsertResult::kSeen: break;
            case MemoCache::InsertResult::kFull:
              Flip(op);
              model_.Undo();
              return Finish(CheckOutcome::kUnknown, "memo cache memory bound reached");
          }
          Flip(op);
          model_.Undo();
        }
        cur_ = node.next;
        continue;
      }
      // `op` has returned, and no extension of the current prefix placed it.
      if (stack_.size() > best_depth_ || blocked_op_ == kNone) {
        best_depth_ = stack_.size();
        blocked_op_ = op;
      }
      if (stack_.empty()) {
        return Finish(CheckOutcome::kIllegal,
                      Illegal(model_, blocked_op_, best_depth_, ops_.size()));
      }
      const uint32_t last = stack_.back();
      stack_.pop_back();
      model_.Undo();
      Flip(last);
      list_.Unlift(last);
      unplaced_ += ops_[last].complete_time != kPending;
      cur_ = list_.node(list_.CallOf(last)).next;
    }
    return Finish(CheckOutcome::kOk, "");
  }

  uint64_t steps() const { return steps_; }

 private:
  void Flip(uint32_t op) {
    linearized_[op / 64] ^= uint64_t{1} << (op % 64);
    linearized_hash_ ^= Mix64(op);  // Zobrist hashing: XOR in, XOR out
  }

  // Restores the model, as promised, and reports.
  CheckResult Finish(CheckOutcome outcome, std::string detail) {
    for (size_t i = 0; i < stack_.size(); ++i) model_.Undo();
    stack_.clear();
    unplaced_ = 0;
    return {outcome, std::move(detail), steps_};
  }

  const std::vector<OpInterval>& ops_;
  SequentialModel& model_;
  EventList list_;
  MemoCache cache_;
  std::vector<uint64_t> linearized_;  // bitset over ops
  uint64_t linearized_hash_ = 0;
  size_t unplaced_ = 0;          // operations with a return event not yet linearized
  std::vector<uint32_t> stack_;  // the linearization so far
  uint32_t cur_ = kNone;         // the event being looked at
  std::vector<uint64_t> key_;    // scratch
  uint64_t steps_ = 0;
  size_t best_depth_ = 0;
  uint32_t blocked_op_ = kNone;  // first op to block the deepest prefix
};

}  // namespace

CheckResult SearchLinearization(const std::vector<OpInterval>& ops, SequentialModel& model,
                                std::chrono::steady_clock::time_point deadline,
                                size_t max_cache_bytes) {
  CacheBudget budget{max_cache_bytes};
  WglSearch search(ops, model, budget);
  return *search.Run(std::numeric_limits<uint64_t>::max(), deadline);
}

// Just-in-time linearization with conflict-directed backjumping.
//
// State: `pos` indexes the definite operations in return order; all before it
// have taken effect. At a node the search must place R = returns[pos] (if R has
// not taken effect already): it tries R itself, then each pending operation of
// R's component invoked no later than R returned; a choice is a frame. Why this
// is complete: in any linearization, the operations of a component before R can
// be taken, in order, just before R, and other components' operations commute
// with them. Invariant: a component's future depends only on its (linearized
// set, state), its "configuration"; so when a node runs out of choices, its
// configuration is dead for good (memoized), and the search jumps back to the
// component's latest frame, undoing later frames of other components unexplored:
// they could not have changed this component's configuration.
CheckResult SearchLinearizationJit(const std::vector<OpInterval>& ops, SequentialModel& model,
                                   std::chrono::steady_clock::time_point deadline,
                                   size_t max_cache_bytes) {
  CheckIntervals(ops);
  const uint32_t n = static_cast<uint32_t>(ops.size());
  // Dense component ids, and each operation's index within its component.
  std::vector<uint32_t> comp(n), local(n), comp_size, model_comp;
  std::unordered_map<uint32_t, uint32_t> dense;
  for (uint32_t i = 0; i < n; ++i) {
    comp[i] = dense.emplace(model.Component(i), dense.size()).first->second;
    if (comp[i] == comp_size.size()) {
      comp_size.push_back(0);
      model_comp.push_back(model.Component(i));
    }
    local[i] = comp_size[comp[i]]++;
  }
  const uint32_t num_comp = static_cast<uint32_t>(comp_size.size());

  std::vector<uint32_t> returns;  // definite operations in return order
  std::vector<uint32_t> by_invoke(n);
  for (uint32_t i = 0; i < n; ++i) {
    by_invoke[i] = i;
    if (ops[i].complete_time != kPending) returns.push_back(i);
  }
  std::sort(returns.begin(), returns.end(), [&](uint32_t a, uint32_t b) {
    return std::pair(ops[a].complete_time, a) < std::pair(ops[b].complete_time, b);
  });
  std::sort(by_invoke.begin(), by_invoke.end(), [&](uint32_t a, uint32_t b) {
    return std::pair(ops[a].invoke_time, a) < std::pair(ops[b].invoke_time, b);
  });
  // Per component, a circular list of its pending operations in invoke order;
  // node n + c is component c's head. Dancing links again.
  std::vector<uint32_t> next(n + num_comp), prev(n + num_comp);
  for (uint32_t c = 0; c < num_comp; ++c) next[n + c] = prev[n + c] = n + c;
  for (uint32_t op : by_invoke) {
    const uint32_t head = n + comp[op];
    prev[op] = prev[head];
    next[op] = head;
    next[prev[head]] = op;
    prev[head] = op;
  }

  std::vector<std::vector<uint64_t>> bits(num_comp);  // per component, over local index
  for (uint32_t c = 0; c < num_comp; ++c) bits[c].assign((comp_size[c] + 63) / 64, 0);
  std::vector<uint64_t> bits_hash(num_comp, 0);
  std::vector<bool> done(n, false);
  struct Frame {
    uint32_t op;
    uint32_t prev_same;  // the previous frame of the same component
    uint32_t pos;        // `pos` when the frame was made
    bool from_list;      // chosen from the pending list (else it was R itself)
  };
  std::vector<Frame> frames;
  std::vector<uint32_t> last_frame(num_comp, kNone);
  CacheBudget budget{max_cache_bytes};
  MemoCache dead(budget);  // dead configurations
  std::vector<uint64_t> key;
  CheckResult result{CheckOutcome::kOk, "", 0};
  size_t best_depth = 0;        // frames, when a node first ran out of choices
  uint32_t blocked_op = kNone;  // the return that node could not place

  auto flip = [&](uint32_t op) {
    bits[comp[op]][local[op] / 64] ^= uint64_t{1} << (local[op] % 64);
    bits_hash[comp[op]] ^= Mix64(op);
  };
  auto configuration = [&](uint32_t c) {  // fills `key`, returns its hash
    key.assign(1, c);
    key.insert(key.end(), bits[c].begin(), bits[c].end());
    model.EncodeComponentState(model_comp[c], &key);
    uint64_t hash = Mix64(bits_hash[c] ^ c);
    for (size_t i = 1 + bits[c].size(); i < key.size(); ++i) hash = Mix64(hash ^ key[i]);
    return hash;
  };
  auto pop = [&]() {
    const Frame f = frames.back();
    frames.pop_back();
    model.Undo();
    flip(f.op);
    done[f.op] = false;
    next[prev[f.op]] = f.op;
    prev[next[f.op]] = f.op;
    last_frame[comp[f.op]] = f.prev_same;
    return f;
  };
  auto finish = [&](CheckOutcome outcome, std::string detail) {
    while (!frames.empty()) pop();
    result.outcome = outcome;
    result.detail = std::move(detail);
    return result;
  };

  size_t pos = 0;
  uint32_t cursor = kNone;  // next list candidate; kNone: try R itself first
  while (true) {
    while (pos < returns.size() && done[returns[pos]]) ++pos;
    if (pos == returns.size()) return finish(CheckOutcome::kOk, "");
    if ((++result.search_steps & 1023) == 0 && std::chrono::steady_clock::now() > deadline) {
      return finish(CheckOutcome::kUnknown,
                    "timed out after " + std::to_string(result.search_steps) + " steps");
    }
    const uint32_t r = returns[pos];
    const uint32_t c = comp[r];
    const uint32_t head = n + c;
    uint32_t x = kNone;
    bool from_list = true;
    if (cursor == kNone) {
      x = r;
      from_list = false;
      cursor = next[head];
    } else {
      if (cursor == r) cursor = next[cursor];  // tried first already
      if (cursor != head && ops[cursor].invoke_time <= ops[r].complete_time) {
        x = cursor;
        cursor = next[cursor];
      }
    }
    if (x != kNone) {
      if (!model.TryApply(x)) continue;
      flip(x);
      if (dead.Contains(configuration(c), key)) {
        flip(x);
        model.Undo();
        continue;
      }
      done[x] = true;
      next[prev[x]] = next[x];
      prev[next[x]] = prev[x];
      frames.push_back({x, last_frame[c], static_cast<uint32_t>(pos), from_list});
      last_frame[c] = static_cast<uint32_t>(frames.size() - 1);
      cursor = kNone;
      continue;
    }
    // Out of choices: this configuration of `c` cannot be completed.
    if (dead.Insert(configuration(c), key) == MemoCache::InsertResult::kFull) {
      return finish(CheckOutcome::kUnknown, "memo cache memory bound reached");
    }
    if (frames.size() > best_depth || blocked_op == kNone) {
      best_depth = frames.size();
      blocked_op = r;
    }
    if (last_frame[c] == kNone) {
      return finish(CheckOutcome::kIllegal, Illegal(model, blocked_op, best_depth, n));
    }
    while (frames.size() > last_frame[c] + 1) pop();
    const Frame f = pop();
    pos = f.pos;
    cursor = f.from_list ? next[f.op] : next[head];
  }
}

// ---------------------------------------------------------------------------
// The key-value model.

namespace {

// Interns every value the model can hold, so that a state is a few integers.
// Appends create values no operation mentions; they are interned on demand.
class ValueTable {
 public:
  static constexpr uint32_t kAbsent = 0;
  static constexpr uint32_t kEmpty = 1;

  ValueTable() {
    values_.emplace_back();  // kAbsent's slot; never looked up by content
    WARDEN_CHECK(Intern("") == kEmpty);
  }

  uint32_t Intern(std::string_view v) {
    auto it = ids_.find(v);
    if (it != ids_.end()) return it->second;
    uint32_t id = static_cast<uint32_t>(values_.size());
    values_.emplace_back(v);
    ids_.emplace(values_.back(), id);  // deque: the string never moves
    return id;
  }
  uint32_t InternOptional(const std::optional<std::string>& v) { return v ? Intern(*v) : kAbsent; }

  // The value `base` followed by `suffix`; absent counts as "".
  uint32_t Concat(uint32_t base, uint32_t suffix) {
    if (base == kAbsent) return suffix;
    uint64_t pair = (uint64_t{base} << 32) | suffix;
    auto it = concat_.find(pair);
    if (it != concat_.end()) return it->second;
    uint32_t id = Intern(values_[base] + values_[suffix]);
    concat_.emplace(pair, id);
    return id;
  }

 private:
  std::deque<std::string> values_;
  std::unordered_map<std::string_view, uint32_t> ids_;
  std::unordered_map<uint64_t, uint32_t> concat_;
};

class KvModel final : public SequentialModel {
 public:
  // `ops` are the history's operations to check, in any order; they and the
  // history must outlive the model.
  KvModel(const std::vector<Operation>& history, const std::vector<size_t>& ops)
      : history_(history), ops_(ops) {
    std::map<std::string_view, uint32_t> slots;
    for (size_t i : ops) slots.emplace(history[i].key, 0);
    uint32_t next_slot = 0;
    for (auto& [key, slot] : slots) slot = next_slot++;
    state_.assign(slots.size(), ValueTable::kAbsent);
    for (size_t i : ops) {
      const Operation& op = history[i];
      Prepared p;
      p.slot = slots[op.key];
      p.kind = op.input.kind;
      p.pending = op.pending();
      p.ok = op.output.ok;
      p.arg = values_.Intern(op.input.value);
      p.expected = values_.InternOptional(op.input.expected);
      p.observed = values_.InternOptional(op.output.value);
      // A get cannot tell absent from "": compare both sides as "".
      if (p.kind == OpKind::kGet && p.observed == ValueTable::kAbsent) {
        p.observed = ValueTable::kEmpty;
      }
      prepared_.push_back(p);
    }
  }

  bool TryApply(size_t op) override {
    const Prepared& p = prepared_[op];
    const uint32_t cur = state_[p.slot];
    uint32_t next = cur;
    switch (p.kind) {
      case OpKind::kRead:
        if (!p.pending && cur != p.observed) return false;
        break;
      case OpKind::kGet:
        if (!p.pending && (cur == ValueTable::kAbsent ? ValueTable::kEmpty : cur) != p.observed) {
          return false;
        }
        break;
      case OpKind::kWrite: next = p.arg; break;
      case OpKind::kCas: {
        const bool match = cur == p.expected;
        // An indeterminate CAS swaps exactly when the compare holds.
        if (!p.pending && match != p.ok) return false;
        if (match) next = p.arg;
        break;
      }
      case OpKind::kAppend: next = values_.Concat(cur, p.arg); break;
      case OpKind::kDelete: next = ValueTable::kAbsent; break;
    }
    undo_.push_back({p.slot, cur});
    state_[p.slot] = next;
    return true;
  }

  void Undo() override {
    WARDEN_CHECK(!undo_.empty());
    state_[undo_.back().slot] = undo_.back().value;
    undo_.pop_back();
  }

  void EncodeState(std::vector<uint64_t>* out) const override {
    for (size_t i = 0; i < state_.size(); i += 2) {
      uint64_t hi = i + 1 < state_.size() ? state_[i + 1] : 0;
      out->push_back((hi << 32) | state_[i]);
    }
  }

  std::string Describe(size_t op) const override { return DescribeOperation(history_[ops_[op]]); }

  // Keys are independent: one component per key.
  uint32_t Component(size_t op) const override { return prepared_[op].slot; }
  void EncodeComponentState(uint32_t component, std::vector<uint64_t>* out) const override {
    out->push_back(state_[component]);
  }

 private:
  struct Prepared {
    uint32_t slot = 0;
    OpKind kind = OpKind::kRead;
    bool pending = false;
    bool ok = true;
    uint32_t arg = 0;       // write / append argument, CAS new value
    uint32_t expected = 0;  // CAS
    uint32_t observed = 0;  // read / get
  };
  struct UndoRecord {
    uint32_t slot;
    uint32_t value;
  };

  const std::vector<Operation>& history_;
  const std::vector<size_t>& ops_;
  ValueTable values_;
  std::vector<Prepared> prepared_;
  std::vector<uint32_t> state_;  // value id per key slot
  std::vector<UndoRecord> undo_;
};

// One key's share of a partitioned check.
struct Part {
  std::string_view key;
  std::vector<size_t> ops;  // indexes into the history
  std::vector<OpInterval> intervals;
  std::unique_ptr<KvModel> model;
  std::unique_ptr<WglSearch> search;
};

std::vector<OpInterval> Intervals(const std::vector<Operation>& history,
                                  const std::vector<size_t>& ops) {
  std::vector<OpInterval> intervals;
  intervals.reserve(ops.size());
  for (size_t i : ops) intervals.push_back({history[i].invoke_time, history[i].complete_time});
  return intervals;
}

}  // namespace

CheckResult CheckHistory(const std::vector<Operation>& history, const CheckOptions& options) {
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  // A pending read constrains nothing (it has no output), so it is left out.
  std::map<std::string_view, std::vector<size_t>> by_key;
  for (size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    const bool is_read = op.input.kind == OpKind::kRead || op.input.kind == OpKind::kGet;
    if (is_read && op.pending()) continue;
    by_key[options.partition_by_key ? std::string_view(op.key) : std::string_view()].push_back(i);
  }

  if (!options.partition_by_key) {
    std::vector<size_t> ops = std::move(by_key[std::string_view()]);
    KvModel model(history, ops);
    CheckResult result =
        SearchLinearizationJit(Intervals(history, ops), model, deadline, options.max_cache_bytes);
    if (result.outcome != CheckOutcome::kOk) result.detail = "all keys: " + result.detail;
    return result;
  }

  // Smallest parts first: for a violation, a small part is the likelier and the
  // quicker place to find it. Parts are built in place and never move again:
  // models and searches point into them (and searches into `budget`, which
  // must outlive them).
  CacheBudget budget{options.max_cache_bytes};
  std::vector<Part> parts(by_key.size());
  size_t next = 0;
  for (auto& [key, ops] : by_key) {
    parts[next].key = key;
    parts[next++].ops = std::move(ops);
  }
  std::stable_sort(parts.begin(), parts.end(),
                   [](const Part& a, const Part& b) { return a.ops.size() < b.ops.size(); });
  for (Part& part : parts) {
    part.intervals = Intervals(history, part.ops);
    part.model = std::make_unique<KvModel>(history, part.ops);
    part.search = std::make_unique<WglSearch>(part.intervals, *part.model, budget);
  }

  // Round-robin with a doubling slice of steps, so that a key whose search
  // explodes cannot starve a key that is quick to prove illegal.
  CheckResult result{CheckOutcome::kOk, "", 0};
  auto total_steps = [&parts] {
    uint64_t steps = 0;
    for (const Part& part : parts) steps += part.search->steps();
    return steps;
  };
  std::vector<Part*> running;
  for (Part& part : parts) running.push_back(&part);
  for (uint64_t slice = 1 << 12; !running.empty(); slice = std::min(slice * 2, uint64_t{1} << 24)) {
    std::vector<Part*> still_running;
    for (Part* part : running) {
      std::optional<CheckResult> outcome = part->search->Run(slice, deadline);
      if (!outcome) {
        still_running.push_back(part);
        continue;
      }
      const std::string where = "key \"" + std::string(part->key) + "\": ";
      if (outcome->outcome == CheckOutcome::kIllegal) {
        return {CheckOutcome::kIllegal, where + outcome->detail, total_steps()};
      }
      // Keep going: another part may still be found illegal, a definite answer.
      if (outcome->outcome == CheckOutcome::kUnknown && result.outcome == CheckOutcome::kOk) {
        result.outcome = CheckOutcome::kUnknown;
        result.detail = where + outcome->detail;
      }
    }
    running.swap(still_running);
  }
  result.search_steps = total_steps();
  return result;
}

CheckResult CheckHistory(const std::vector<Operation>& history, std::chrono::milliseconds timeout,
                         bool partition_by_key) {
  CheckOptions options;
  options.timeout = timeout;
  options.partition_by_key = partition_by_key;
  return CheckHistory(history, options);
}

// ---------------------------------------------------------------------------
// HistoryRecorder.

HistoryRecorder::Handle HistoryRecorder::Invoke(uint64_t client_id, std::string key, OpInput input,
                                                int64_t now) {
  WARDEN_CHECK(now != kPending);
  Operation op;
  op.client_id = client_id;
  op.invoke_time = now;
  op.complete_time = kPending;
  op.key = std::move(key);
  op.input = std::move(input);
  const Handle handle = slot_of_handle_.size();
  slot_of_handle_.push_back(ops_.size());
  handle_of_slot_.push_back(handle);
  ops_.push_back(std::move(op));
  return handle;
}

size_t HistoryRecorder::SlotOf(Handle handle) const {
  WARDEN_CHECK(handle < slot_of_handle_.size());
  const size_t slot = slot_of_handle_[handle];
  WARDEN_CHECK_MSG(slot != kGone, "operation was discarded");
  return slot;
}

void HistoryRecorder::Complete(Handle handle, OpOutput output, int64_t now) {
  Operation& op = ops_[SlotOf(handle)];
  WARDEN_CHECK_MSG(op.pending(), "operation completed twice");
  WARDEN_CHECK(now != kPending && now >= op.invoke_time);
  op.output = std::move(output);
  op.complete_time = now;
}

void HistoryRecorder::Indeterminate(Handle handle) {
  WARDEN_CHECK_MSG(ops_[SlotOf(handle)].pending(), "operation already completed");
}

void HistoryRecorder::Discard(Handle handle) {
  const size_t slot = SlotOf(handle);
  WARDEN_CHECK_MSG(ops_[slot].pending(), "a completed operation cannot be discarded");
  // Swap with the last operation so removal is O(1); order does not matter.
  const size_t last = ops_.size() - 1;
  if (slot != last) {
    ops_[slot] = std::move(ops_[last]);
    handle_of_slot_[slot] = handle_of_slot_[last];
    slot_of_handle_[handle_of_slot_[slot]] = slot;
  }
  ops_.pop_back();
  handle_of_slot_.pop_back();
  slot_of_handle_[handle] = kGone;
}

}  // namespace warden::sim

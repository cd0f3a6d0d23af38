// A linearizability checker for client histories of a key-value store.
//
// The question: given what clients saw (when each operation was invoked, when it
// completed, what it returned), is there a total order of the operations that
// (1) respects real time: if A completed before B was invoked, A comes first, and
// (2) is a legal sequential run of the model (a map of registers)? If so the
// history is linearizable.
//
// Algorithm (Wing & Gong 1993, with Lowe's 2017 memoization, as popularized by
// Porcupine): the history becomes a time-ordered list of call and return events.
// A depth-first search walks the list. At a call event it tries to linearize that
// operation now: apply it to the model, and if its recorded output is possible
// and the pair (set of linearized operations, model state) has not been seen
// before, lift the operation's events out of the list and restart from the head.
// At a return event of an operation not yet linearized, the current prefix cannot
// be extended, so it backtracks: it undoes the most recent linearization, puts
// its events back (dancing links) and tries the next call after it. The cache of
// (bitset, state) pairs is what makes this practical: two interleavings that
// reach the same state with the same operations done are explored once.
//
// Indeterminate operations (a client timed out, or jepsen's `:info`) have no
// return event: they may be linearized at any point after their invoke, or never.
// The search succeeds as soon as every operation with a return event is
// linearized; leftover indeterminate ones are the ones that never took effect.
//
// Keys are independent registers, so by default the history is split by key and
// each part is checked alone (linearizability is compositional, Herlihy & Wing
// 1990). The parts are searched round-robin, a slice of steps each, so that one
// hard key cannot hide an easy violation on another.
//
// Without the split (partition_by_key = false) the whole history is searched at
// once, over one map-valued state. The search above cannot do that beyond a few
// clients: a wrong early choice on one key is only undone after every
// combination of choices on the other keys has been tried. So the whole-history
// mode uses a second algorithm, just-in-time linearization (Lowe 2017) with
// conflict-directed backjumping: return events are taken in time order; when an
// operation R returns without having taken effect, the search picks a sequence
// of pending operations on R's key ending with R. When no sequence works, the
// failure depends only on that key's earlier choices, so the search jumps back
// to the latest of them (skipping choices made on other keys) and remembers the
// dead (key, operations done on it, its value). Different algorithm, same
// verdicts: running both modes cross-checks them.
//
// Guarantees: kOk and kIllegal are exact answers. The search is exponential in the
// worst case, so it stops at a deadline (or a cache memory bound) and then says
// kUnknown: a timeout is never reported as kOk.
//
// Equal timestamps: an operation completing at t and another invoked at t are
// treated as concurrent (the permissive choice: never a false kIllegal from a
// clock tie).
//
// Thread safety: the functions are reentrant; a HistoryRecorder is not
// thread-safe (the simulator is single-threaded).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/base/status.h"

namespace warden::sim {

// complete_time of an operation that never completed (indeterminate).
inline constexpr int64_t kPending = std::numeric_limits<int64_t>::max();

enum class OpKind : uint8_t {
  kRead,    // returns the value; a missing key (nullopt) differs from ""
  kGet,     // like kRead, but a missing key reads as "" (Porcupine's kv model)
  kWrite,   // put: sets the value
  kCas,     // compare-and-set: if value == expected, set it to `value`
  kAppend,  // appends `value` to the current value (a missing key counts as "")
  kDelete,  // removes the key: reads then see it missing
};

const char* OpKindName(OpKind kind);

struct OpInput {
  OpKind kind = OpKind::kRead;
  // kCas: the value the key must hold for the swap; nullopt: the key must be absent.
  std::optional<std::string> expected;
  // kWrite / kAppend: the argument; kCas: the new value. Unused by reads.
  std::string value;

  static OpInput Read() { return {OpKind::kRead, std::nullopt, {}}; }
  static OpInput Get() { return {OpKind::kGet, std::nullopt, {}}; }
  static OpInput Write(std::string v) { return {OpKind::kWrite, std::nullopt, std::move(v)}; }
  static OpInput Append(std::string v) { return {OpKind::kAppend, std::nullopt, std::move(v)}; }
  static OpInput Delete() { return {OpKind::kDelete, std::nullopt, {}}; }
  static OpInput Cas(std::optional<std::string> expected, std::string desired) {
    return {OpKind::kCas, std::move(expected), std::move(desired)};
  }
};

// What the operation returned. Ignored for an indeterminate operation.
struct OpOutput {
  // kRead / kGet: the value observed; nullopt: the key was absent.
  std::optional<std::string> value;
  // kCas: true if the swap happened, false if the value was not `expected`.
  // Writes and appends always report true.
  bool ok = true;

  static OpOutput Value(std::optional<std::string> v) { return {std::move(v), true}; }
  static OpOutput Absent() { return {std::nullopt, true}; }
  static OpOutput Ok() { return {std::nullopt, true}; }
  static OpOutput CasFailed() { return {std::nullopt, false}; }
};

struct Operation {
  uint64_t client_id = 0;
  int64_t invoke_time = 0;
  // kPending: the operation may take effect any time after invoke, or never.
  int64_t complete_time = kPending;
  std::string key;
  OpInput input;
  OpOutput output;

  bool pending() const { return complete_time == kPending; }
};

std::string DescribeOperation(const Operation& op);

enum class CheckOutcome { kOk, kIllegal, kUnknown };
const char* CheckOutcomeName(CheckOutcome outcome);

struct CheckResult {
  CheckOutcome outcome = CheckOutcome::kUnknown;
  // kIllegal: the key (partition) that failed and the operation that could not
  // be placed; kUnknown: why the search gave up.
  std::string detail;
  // Number of linearization attempts, summed over partitions (for profiling).
  uint64_t search_steps = 0;
};

struct CheckOptions {
  std::chrono::milliseconds timeout{10'000};  // for the whole history
  // true: search each key alone (Wing & Gong / Lowe); false: search the whole
  // history at once (just-in-time with backjumping). Same verdicts.
  bool partition_by_key = true;
  // The memo caches together may not outgrow this; past it the answer is kUnknown.
  size_t max_cache_bytes = size_t{1} << 30;
};

// Checks `history` against a map of independent registers, each initially absent.
// Operations of one client may not overlap; the checker does not rely on it.
// REQUIRES: invoke_time <= complete_time for every operation.
CheckResult CheckHistory(const std::vector<Operation>& history, const CheckOptions& options);
CheckResult CheckHistory(const std::vector<Operation>& history, std::chrono::milliseconds timeout,
                         bool partition_by_key = true);

// ---------------------------------------------------------------------------
// The generic search, for models other than the key-value map.

// A sequential specification, seen through the operations of one history.
// Operations are named by their index in the history being checked.
class SequentialModel {
 public:
  virtual ~SequentialModel() = default;
  // Applies operation `op` to the current state if its recorded output is
  // possible there (for an indeterminate operation, any output is) and returns
  // true; otherwise returns false and leaves the state unchanged.
  virtual bool TryApply(size_t op) = 0;
  // Reverts the most recent TryApply that returned true and is not yet undone.
  virtual void Undo() = 0;
  // Appends words that identify the current state exactly: equal states must
  // give equal words and different states different words.
  virtual void EncodeState(std::vector<uint64_t>* out) const = 0;
  // A human-readable description of operation `op`, for reports.
  virtual std::string Describe(size_t op) const = 0;

  // Only SearchLinearizationJit uses the two methods below. Operations of
  // different components must be independent: they commute, and whether one's
  // output is possible never depends on the other (the keys of a map).
  virtual uint32_t Component(size_t op) const {
    (void)op;
    return 0;
  }
  // Like EncodeState, for the part of the state that `component` owns.
  virtual void EncodeComponentState(uint32_t component, std::vector<uint64_t>* out) const {
    (void)component;
    EncodeState(out);
  }
};

struct OpInterval {
  int64_t invoke_time = 0;
  int64_t complete_time = kPending;  // kPending: indeterminate
};

// Searches for a linearization of the operations `ops` (op i is model op i),
// starting from the model's current state, with the Wing & Gong / Lowe search.
// The model is left as it was found.
CheckResult SearchLinearization(const std::vector<OpInterval>& ops, SequentialModel& model,
                                std::chrono::steady_clock::time_point deadline,
                                size_t max_cache_bytes);
// The same question, answered by just-in-time linearization with backjumping
// across the model's components (see the file comment). Same contract.
CheckResult SearchLinearizationJit(const std::vector<OpInterval>& ops, SequentialModel& model,
                                   std::chrono::steady_clock::time_point deadline,
                                   size_t max_cache_bytes);

// ---------------------------------------------------------------------------
// Parsers for reference histories (formats in shared/data/linearizability/README.md).
// Times are line numbers. A `:fail`ed operation did not happen and is dropped,
// and so is a read without an answer (it constrains nothing). The exception is a
// definite `:fail :cas`: it is kept as a CAS that reported failure, because
// jepsen's etcd client says :fail only when the compare did not hold, a fact
// the history must explain. (Dropping it instead gives the same verdicts on all
// 102 reference logs, but could only hide bugs.) `:info` operations, and those
// still open at the end, are pending.

// Jepsen etcd register logs: `INFO  jepsen.util - P  :TYPE  :F  VALUE`; every
// operation is on key "".
Result<std::vector<Operation>> ParseJepsenEtcdLog(std::istream& in);
// One EDN map a line: {:process P, :type :invoke|:ok, :f :get|:put|:append,
// :key "K", :value "V"}. Gets are OpKind::kGet (keys start as "").
Result<std::vector<Operation>> ParseKvEdnHistory(std::istream& in);
// The chaos harness's histories (tests/chaos/, docs/chaos.md): one JSON object a
// line, {"process": P, "type": "invoke"|"ok"|"fail"|"info", "f": "read"|"write"|
// "cas" (or "op": ...), "key": "K", "value": V, "time": T}. V is a string or
// null (absent) for reads and writes, [expected or null, new] for a cas;
// T is a non-negative integer (nanoseconds of a monotonic clock), and times
// are the checker's times instead of line numbers. Other fields are ignored;
// blank lines and lines starting with '#' are skipped. `fail` follows the
// rules above: a failed cas means the compare did not hold. One more type,
// `refused`, says the server definitely did not apply the operation (it
// answered "no leader" before proposing it): dropped, a cas included.
Result<std::vector<Operation>> ParseJsonLinesHistory(std::istream& in);

// ---------------------------------------------------------------------------
// Records a history as the simulator runs. Not thread-safe.
class HistoryRecorder {
 public:
  using Handle = uint64_t;

  // Starts an operation; the returned handle names it in later calls.
  Handle Invoke(uint64_t client_id, std::string key, OpInput input, int64_t now);
  // The operation returned `output` at `now`.
  // REQUIRES: `handle` is open (neither completed nor discarded).
  void Complete(Handle handle, OpOutput output, int64_t now);
  // The outcome is unknown (e.g. the client timed out): the operation stays
  // pending, as if Complete were never called, unless a late answer arrives;
  // Complete and Discard remain allowed.
  // REQUIRES: `handle` is open.
  void Indeterminate(Handle handle);
  // The operation definitely did not take effect (e.g. refused before being
  // proposed), or it is a read that got no answer: it is removed from the history.
  // REQUIRES: `handle` is open.
  void Discard(Handle handle);

  // Every operation not discarded; open ones are pending. Order is unspecified.
  const std::vector<Operation>& ops() const { return ops_; }

 private:
  static constexpr size_t kGone = std::numeric_limits<size_t>::max();
  size_t SlotOf(Handle handle) const;

  std::vector<Operation> ops_;
  std::vector<size_t> slot_of_handle_;  // kGone once discarded
  std::vector<Handle> handle_of_slot_;
};

}  // namespace warden::sim

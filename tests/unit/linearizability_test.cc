// Tests for the linearizability checker: small histories written by hand, then
// every reference history in shared/data/linearizability with its known verdict.
#include "sim/linearizability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace warden::sim {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr milliseconds kGenerous{10'000};

// Builds operations tersely: Op(client, invoke, complete, input, output).
Operation Op(uint64_t client, int64_t invoke, int64_t complete, OpInput input,
             OpOutput output = OpOutput::Ok(), std::string key = "k") {
  Operation op;
  op.client_id = client;
  op.invoke_time = invoke;
  op.complete_time = complete;
  op.key = std::move(key);
  op.input = std::move(input);
  op.output = std::move(output);
  return op;
}

OpOutput Saw(const char* v) { return OpOutput::Value(std::string(v)); }

CheckOutcome Check(const std::vector<Operation>& h, bool partition = true) {
  CheckResult r = CheckHistory(h, kGenerous, partition);
  if (r.outcome == CheckOutcome::kIllegal) std::printf("  illegal: %s\n", r.detail.c_str());
  return r.outcome;
}

// --- Hand-written histories --------------------------------------------------

TEST(LinearizabilityTest, EmptyHistoryIsOk) { EXPECT_EQ(Check({}), CheckOutcome::kOk); }

TEST(LinearizabilityTest, StaleReadAfterCompletedWriteIsIllegal) {
  std::vector<Operation> h = {
      Op(1, 0, 10, OpInput::Write("1")), Op(1, 11, 20, OpInput::Write("2")),
      Op(2, 21, 30, OpInput::Read(), Saw("1")),  // "2" was already acknowledged
  };
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
  CheckResult r = CheckHistory(h, kGenerous);
  EXPECT_NE(r.detail.find("key \"k\""), std::string::npos) << r.detail;
  EXPECT_NE(r.detail.find("read"), std::string::npos) << r.detail;
}

TEST(LinearizabilityTest, ReadBeforeAnyWriteSeesAbsent) {
  EXPECT_EQ(Check({Op(1, 0, 1, OpInput::Read(), OpOutput::Absent())}), CheckOutcome::kOk);
  EXPECT_EQ(Check({Op(1, 0, 1, OpInput::Read(), Saw(""))}), CheckOutcome::kIllegal);
  // A get cannot tell a missing key from an empty one.
  EXPECT_EQ(Check({Op(1, 0, 1, OpInput::Get(), Saw(""))}), CheckOutcome::kOk);
}

TEST(LinearizabilityTest, ConcurrentOpsThatCanBeOrderedAreOk) {
  // The read overlaps both writes and sees the first; the second read, after
  // everything, sees the second. Order: w1, r=1, w2, r=2.
  std::vector<Operation> h = {
      Op(1, 0, 10, OpInput::Write("1")),
      Op(2, 1, 12, OpInput::Write("2")),
      Op(3, 2, 11, OpInput::Read(), Saw("1")),
      Op(3, 13, 14, OpInput::Read(), Saw("2")),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
  // Seeing "2" and then "1" after both writes completed is not.
  h[2] = Op(3, 13, 14, OpInput::Read(), Saw("2"));
  h[3] = Op(3, 15, 16, OpInput::Read(), Saw("1"));
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
}

TEST(LinearizabilityTest, IndeterminateWriteLaterObservedIsOk) {
  std::vector<Operation> h = {
      Op(1, 0, 5, OpInput::Write("1")),
      Op(2, 6, kPending, OpInput::Write("2")),  // the client timed out
      Op(3, 100, 101, OpInput::Read(), Saw("2")),
      Op(3, 102, 103, OpInput::Read(), Saw("2")),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
}

TEST(LinearizabilityTest, IndeterminateWriteNeverObservedIsOk) {
  std::vector<Operation> h = {
      Op(1, 0, 5, OpInput::Write("1")),
      Op(2, 6, kPending, OpInput::Write("2")),
      Op(3, 100, 101, OpInput::Read(), Saw("1")),
      Op(3, 102, 103, OpInput::Read(), Saw("1")),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
}

TEST(LinearizabilityTest, IndeterminateWriteTakesEffectAtMostOnce) {
  // Once "2" has been seen and overwritten by "3", it cannot reappear.
  std::vector<Operation> h = {
      Op(2, 0, kPending, OpInput::Write("2")),
      Op(3, 10, 11, OpInput::Read(), Saw("2")),
      Op(1, 12, 13, OpInput::Write("3")),
      Op(3, 14, 15, OpInput::Read(), Saw("2")),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
}

TEST(LinearizabilityTest, IndeterminateWriteCannotTakeEffectBeforeInvoke) {
  std::vector<Operation> h = {
      Op(3, 0, 1, OpInput::Read(), Saw("2")),
      Op(2, 5, kPending, OpInput::Write("2")),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
}

TEST(LinearizabilityTest, ReadOfValueNeverWrittenIsIllegal) {
  std::vector<Operation> h = {
      Op(1, 0, 10, OpInput::Write("1")),
      Op(2, 0, 10, OpInput::Write("2")),
      Op(3, 0, 10, OpInput::Read(), Saw("7")),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
}

TEST(LinearizabilityTest, CasSuccessThatContradictsIsIllegal) {
  std::vector<Operation> h = {
      Op(1, 0, 1, OpInput::Write("1")),
      Op(2, 2, 3, OpInput::Cas("5", "6"), OpOutput::Ok()),  // the value was "1"
  };
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
  h[1] = Op(2, 2, 3, OpInput::Cas("1", "6"), OpOutput::Ok());
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
}

TEST(LinearizabilityTest, FailedCasMeansTheCompareDidNotHold) {
  std::vector<Operation> h = {
      Op(1, 0, 1, OpInput::Write("1")),
      Op(2, 2, 3, OpInput::Cas("1", "6"), OpOutput::CasFailed()),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
  h[1] = Op(2, 2, 3, OpInput::Cas("5", "6"), OpOutput::CasFailed());
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
  // CAS against a missing key.
  EXPECT_EQ(Check({Op(2, 0, 1, OpInput::Cas(std::nullopt, "1"), OpOutput::Ok()),
                   Op(2, 2, 3, OpInput::Read(), Saw("1"))}),
            CheckOutcome::kOk);
}

TEST(LinearizabilityTest, IndeterminateCasSwapsOnlyIfTheCompareHolds) {
  std::vector<Operation> h = {
      Op(1, 0, 1, OpInput::Write("1")),
      Op(2, 2, kPending, OpInput::Cas("9", "6")),  // can never match
      Op(3, 10, 11, OpInput::Read(), Saw("6")),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
  h[1].input = OpInput::Cas("1", "6");
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
}

TEST(LinearizabilityTest, AppendsComposeInLinearizationOrder) {
  std::vector<Operation> h = {
      Op(1, 0, 10, OpInput::Append("a")),
      Op(2, 0, 10, OpInput::Append("b")),
      Op(3, 11, 12, OpInput::Get(), Saw("ba")),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
  h[2].output = Saw("ab");
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
  h[2].output = Saw("a");
  EXPECT_EQ(Check(h), CheckOutcome::kIllegal);
}

TEST(LinearizabilityTest, EqualTimestampsAreConcurrent) {
  // Write completes at 5, the read is invoked at 5 and sees the old value.
  std::vector<Operation> h = {
      Op(1, 0, 5, OpInput::Write("1")),
      Op(2, 5, 6, OpInput::Read(), OpOutput::Absent()),
  };
  EXPECT_EQ(Check(h), CheckOutcome::kOk);
}

TEST(LinearizabilityTest, KeysArePartitioned) {
  // Each key is fine alone and together; an error on one key names that key.
  std::vector<Operation> h = {
      Op(1, 0, 1, OpInput::Write("1"), OpOutput::Ok(), "a"),
      Op(1, 2, 3, OpInput::Write("1"), OpOutput::Ok(), "b"),
      Op(2, 4, 5, OpInput::Read(), Saw("1"), "a"),
      Op(2, 6, 7, OpInput::Read(), OpOutput::Absent(), "c"),
  };
  EXPECT_EQ(Check(h, true), CheckOutcome::kOk);
  EXPECT_EQ(Check(h, false), CheckOutcome::kOk);
  h.push_back(Op(3, 8, 9, OpInput::Read(), OpOutput::Absent(), "b"));
  EXPECT_EQ(Check(h, false), CheckOutcome::kIllegal);
  CheckResult r = CheckHistory(h, kGenerous, true);
  EXPECT_EQ(r.outcome, CheckOutcome::kIllegal);
  EXPECT_NE(r.detail.find("key \"b\""), std::string::npos) << r.detail;
}

// Many concurrent writes of distinct values and then a read of a value nobody
// wrote: proving it illegal means visiting every subset of the writes, which
// never ends. The checker must give up and say so.
TEST(LinearizabilityTest, TimeoutIsUnknownNeverOk) {
  std::vector<Operation> h;
  for (int i = 0; i < 64; ++i) h.push_back(Op(i, 0, 100, OpInput::Write(std::to_string(i))));
  h.push_back(Op(99, 101, 102, OpInput::Read(), Saw("never")));
  CheckResult r = CheckHistory(h, milliseconds(1));
  EXPECT_EQ(r.outcome, CheckOutcome::kUnknown) << r.detail;
  EXPECT_NE(r.detail.find("timed out"), std::string::npos) << r.detail;
  r = CheckHistory(h, milliseconds(1), /*partition_by_key=*/false);
  EXPECT_EQ(r.outcome, CheckOutcome::kUnknown) << r.detail;

  // A legal history is no different: with pending writes and a final read of
  // "0", the search places writes greedily and would have to exhaust every
  // subset of the writes after "0" before it tries the read right after "0".
  for (int i = 0; i < 64; ++i) h[i].complete_time = kPending;
  h.back() = Op(99, 101, 102, OpInput::Read(), Saw("0"));
  r = CheckHistory(h, milliseconds(1));
  EXPECT_EQ(r.outcome, CheckOutcome::kUnknown) << r.detail;
}

TEST(LinearizabilityTest, CacheBoundIsUnknownNeverOk) {
  std::vector<Operation> h;
  for (int i = 0; i < 40; ++i) h.push_back(Op(i, 0, 100, OpInput::Write(std::to_string(i))));
  h.push_back(Op(99, 101, 102, OpInput::Read(), Saw("never")));
  CheckOptions options;
  options.max_cache_bytes = 1 << 20;
  CheckResult r = CheckHistory(h, options);
  EXPECT_EQ(r.outcome, CheckOutcome::kUnknown) << r.detail;
}

TEST(HistoryRecorderTest, RecordsCompletedPendingAndDiscarded) {
  HistoryRecorder rec;
  auto w = rec.Invoke(1, "k", OpInput::Write("1"), 0);
  auto lost = rec.Invoke(2, "k", OpInput::Write("2"), 1);
  auto refused = rec.Invoke(3, "k", OpInput::Write("3"), 2);
  auto r = rec.Invoke(4, "k", OpInput::Read(), 3);
  rec.Complete(w, OpOutput::Ok(), 4);
  rec.Indeterminate(lost);
  rec.Discard(refused);
  rec.Complete(r, Saw("1"), 5);
  ASSERT_EQ(rec.ops().size(), 3u);
  int pending = 0;
  for (const Operation& op : rec.ops()) {
    EXPECT_NE(op.client_id, 3u);
    pending += op.pending();
  }
  EXPECT_EQ(pending, 1);
  EXPECT_EQ(Check(rec.ops()), CheckOutcome::kOk);
}

// --- Differential: three searches must agree ----------------------------------

// Registers holding small integers, written against the generic interface: the
// test's own model, so that the searches are also checked against a model
// that is not the checker's.
class RegistersModel final : public SequentialModel {
 public:
  struct Op {
    int key;
    OpKind kind;  // kRead, kWrite or kCas
    int arg;      // write value / CAS new value
    int expected;
    int observed;  // read result
    bool ok;       // CAS result
    bool pending;
  };
  RegistersModel(int keys, const std::vector<Op>& ops) : ops_(ops), state_(keys, -1) {}

  bool TryApply(size_t i) override {
    const Op& op = ops_[i];
    int& value = state_[op.key];
    undo_.push_back({op.key, value});
    switch (op.kind) {
      case OpKind::kRead:
        if (!op.pending && value != op.observed) break;
        return true;
      case OpKind::kCas:
        if (!op.pending && (value == op.expected) != op.ok) break;
        if (value == op.expected) value = op.arg;
        return true;
      default: value = op.arg; return true;
    }
    undo_.pop_back();
    return false;
  }
  void Undo() override {
    state_[undo_.back().first] = undo_.back().second;
    undo_.pop_back();
  }
  void EncodeState(std::vector<uint64_t>* out) const override {
    for (int v : state_) out->push_back(static_cast<uint64_t>(v + 1));
  }
  std::string Describe(size_t i) const override { return "op " + std::to_string(i); }
  uint32_t Component(size_t i) const override { return ops_[i].key; }
  void EncodeComponentState(uint32_t c, std::vector<uint64_t>* out) const override {
    out->push_back(static_cast<uint64_t>(state_[c] + 1));
  }

 private:
  const std::vector<Op>& ops_;
  std::vector<int> state_;
  std::vector<std::pair<int, int>> undo_;
};

// Random histories of a correct register map (each operation takes effect at a
// random point of its interval), some then corrupted.
TEST(LinearizabilityTest, SearchesAgreeOnRandomHistories) {
  std::mt19937_64 rng(20240611);  // fixed seed: the test is deterministic
  auto uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int illegal = 0, pending_total = 0;
  const auto deadline_ms = milliseconds(10'000);
  for (int round = 0; round < 400; ++round) {
    const int keys = uniform(1, 3);
    const int n = uniform(2, 16);
    struct Timed {
      RegistersModel::Op op;
      int64_t invoke, complete, point;
      bool takes_effect;
    };
    std::vector<Timed> t(n);
    for (Timed& x : t) {
      x.invoke = uniform(0, 60);
      x.complete = x.invoke + uniform(0, 25);
      x.point = uniform(static_cast<int>(x.invoke), static_cast<int>(x.complete));
      const int kind = uniform(0, 2);
      x.op = {uniform(0, keys - 1),
              kind == 0   ? OpKind::kRead
              : kind == 1 ? OpKind::kWrite
                          : OpKind::kCas,
              uniform(0, 3),
              uniform(-1, 3),
              0,
              true,
              false};
      x.op.pending = uniform(0, 9) == 0;
      x.takes_effect = !x.op.pending || uniform(0, 1) == 1;
      if (x.op.pending) x.complete = kPending;
    }
    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return std::pair(t[a].point, a) < std::pair(t[b].point, b); });
    std::vector<int> state(keys, -1);
    for (int i : order) {
      RegistersModel::Op& op = t[i].op;
      if (!t[i].takes_effect) continue;
      int& value = state[op.key];
      if (op.kind == OpKind::kRead) op.observed = value;
      if (op.kind == OpKind::kWrite) value = op.arg;
      if (op.kind == OpKind::kCas) {
        op.ok = value == op.expected;
        if (op.ok) value = op.arg;
      }
    }
    const bool corrupt = uniform(0, 1) == 1;
    if (corrupt) {
      RegistersModel::Op& op = t[uniform(0, n - 1)].op;
      op.observed = uniform(-1, 3);
      op.ok = !op.ok;
    }

    std::vector<RegistersModel::Op> ops;
    std::vector<OpInterval> intervals;
    std::vector<Operation> history;
    for (const Timed& x : t) {
      ops.push_back(x.op);
      pending_total += x.op.pending;
      intervals.push_back({x.invoke, x.complete});
      Operation h =
          Op(0, x.invoke, x.complete, OpInput::Read(), OpOutput::Ok(), std::to_string(x.op.key));
      auto value = [](int v) { return v < 0 ? std::nullopt : std::optional(std::to_string(v)); };
      if (x.op.kind == OpKind::kRead) h.output = OpOutput::Value(value(x.op.observed));
      if (x.op.kind == OpKind::kWrite) h.input = OpInput::Write(std::to_string(x.op.arg));
      if (x.op.kind == OpKind::kCas) {
        h.input = OpInput::Cas(value(x.op.expected), std::to_string(x.op.arg));
        h.output = x.op.ok ? OpOutput::Ok() : OpOutput::CasFailed();
      }
      history.push_back(h);
    }
    const auto deadline = std::chrono::steady_clock::now() + deadline_ms;
    RegistersModel model(keys, ops);
    // Brute force: the whole history as one search, no use of independence.
    const CheckOutcome brute = SearchLinearization(intervals, model, deadline, 1 << 28).outcome;
    const CheckOutcome jit = SearchLinearizationJit(intervals, model, deadline, 1 << 28).outcome;
    const CheckOutcome by_key = CheckHistory(history, deadline_ms, true).outcome;
    const CheckOutcome whole = CheckHistory(history, deadline_ms, false).outcome;
    ASSERT_NE(brute, CheckOutcome::kUnknown);
    EXPECT_EQ(jit, brute) << "round " << round;
    EXPECT_EQ(by_key, brute) << "round " << round;
    EXPECT_EQ(whole, brute) << "round " << round;
    if (!corrupt) {
      EXPECT_EQ(brute, CheckOutcome::kOk) << "round " << round;
    }
    illegal += brute == CheckOutcome::kIllegal;
  }
  // The corruption must make a fair share illegal, or the test proves little.
  EXPECT_GT(illegal, 60);
  EXPECT_GT(pending_total, 100);
}

// --- Parsers -----------------------------------------------------------------

TEST(ParserTest, JepsenEtcdLog) {
  std::istringstream in(
      "INFO  jepsen.core - nemesis starting\n"
      "INFO  jepsen.util - 0\t:invoke\t:write\t3\n"
      "INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\n"
      "INFO  jepsen.util - 2  :invoke  :read  nil\n"
      "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n"
      "INFO  jepsen.util - 0\t:ok\t:write\t3\n"
      "INFO  jepsen.util - 2\t:fail\t:read\t:timed-out\n"
      "INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n"
      "INFO  jepsen.util - 5\t:invoke\t:cas\t[1 2]\n"
      "INFO  jepsen.util - 5\t:fail\t:cas\t[1 2]\n"
      "INFO  jepsen.util - 6\t:invoke\t:read\tnil\n"
      "INFO  jepsen.util - 6\t:ok\t:read\tnil\n");
  Result<std::vector<Operation>> ops = ParseJepsenEtcdLog(in);
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  ASSERT_EQ(ops->size(), 4u);  // the failed read is gone
  const Operation& w = (*ops)[0];
  EXPECT_EQ(w.input.kind, OpKind::kWrite);
  EXPECT_EQ(w.input.value, "3");
  EXPECT_EQ(w.invoke_time, 2);
  EXPECT_EQ(w.complete_time, 6);
  const Operation& info = (*ops)[1];
  EXPECT_EQ(info.input.kind, OpKind::kCas);
  EXPECT_EQ(info.input.expected, "3");
  EXPECT_EQ(info.input.value, "4");
  EXPECT_TRUE(info.pending());
  const Operation& failed = (*ops)[2];
  EXPECT_FALSE(failed.output.ok);
  EXPECT_FALSE(failed.pending());
  EXPECT_EQ((*ops)[3].output.value, std::nullopt);
}

TEST(ParserTest, JepsenEtcdLogRejectsCompletionWithoutInvoke) {
  std::istringstream in("INFO  jepsen.util - 0\t:ok\t:write\t3\n");
  Result<std::vector<Operation>> ops = ParseJepsenEtcdLog(in);
  ASSERT_FALSE(ops.ok());
  EXPECT_NE(ops.status().message().find("line 1"), std::string::npos);
}

TEST(ParserTest, KvEdn) {
  std::istringstream in(
      "{:process 0, :type :invoke, :f :put, :key \"a\", :value \"x \\\"q\\\"\"}\n"
      "{:process 1, :type :invoke, :f :get, :key \"a\", :value nil}\n"
      "\n"
      "{:process 0, :type :ok, :f :put, :key \"a\", :value \"x \\\"q\\\"\"}\n"
      "{:process 1, :type :ok, :f :get, :key \"a\", :value \"\"}\n"
      "{:process 2, :type :invoke, :f :append, :key \"b\", :value \"y\"}\n");
  Result<std::vector<Operation>> ops = ParseKvEdnHistory(in);
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  ASSERT_EQ(ops->size(), 3u);
  EXPECT_EQ((*ops)[0].input.value, "x \"q\"");
  EXPECT_EQ((*ops)[1].input.kind, OpKind::kGet);
  EXPECT_EQ((*ops)[1].output.value, "");
  EXPECT_EQ((*ops)[1].complete_time, 5);
  EXPECT_EQ((*ops)[2].key, "b");
  EXPECT_TRUE((*ops)[2].pending());
  EXPECT_EQ(Check(*ops), CheckOutcome::kOk);
}

TEST(ParserTest, KvEdnRejectsGarbage) {
  std::istringstream in("{:process 0, :type :invoke, :f :put, :key \"a\", :value \"x\"\n");
  EXPECT_FALSE(ParseKvEdnHistory(in).ok());
}

// --- Reference histories -------------------------------------------------------

// WARDEN_SHARED_DATA if set, else ../shared/data next to the repository.
fs::path SharedData() {
  if (const char* env = std::getenv("WARDEN_SHARED_DATA"); env && *env) return env;
  return fs::path(__FILE__).parent_path() / "../../../shared/data";
}

fs::path ReferenceDir(const char* sub) { return SharedData() / "linearizability" / sub; }

// File -> linearizable, for every file with a published verdict.
std::map<std::string, bool> ReadVerdicts(const fs::path& dir) {
  std::map<std::string, bool> verdicts;
  std::ifstream in(dir / "VERDICTS.tsv");
  std::string file, verdict;
  while (in >> file >> verdict) {
    if (verdict == "unknown") continue;  // etcd_095: see JepsenEtcd095
    EXPECT_TRUE(verdict == "linearizable" || verdict == "not-linearizable") << verdict;
    verdicts[file] = verdict == "linearizable";
  }
  return verdicts;
}

struct Timed {
  std::string name;
  size_t ops;
  double seconds;
  CheckResult result;
};

Timed CheckFile(const fs::path& path, bool edn, bool partition, milliseconds timeout) {
  std::ifstream in(path);
  Result<std::vector<Operation>> ops = edn ? ParseKvEdnHistory(in) : ParseJepsenEtcdLog(in);
  EXPECT_TRUE(ops.ok()) << path << ": " << ops.status().ToString();
  if (!ops.ok()) return {path.filename(), 0, 0, {}};
  auto start = std::chrono::steady_clock::now();
  CheckResult r = CheckHistory(*ops, timeout, partition);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  return {path.filename().string() + (partition ? "" : " (unpartitioned)"), ops->size(),
          took.count(), r};
}

void PrintSlowest(std::vector<Timed> runs, size_t n) {
  std::sort(runs.begin(), runs.end(),
            [](const Timed& a, const Timed& b) { return a.seconds > b.seconds; });
  double total = 0;
  for (const Timed& t : runs) total += t.seconds;
  std::printf("  %zu histories checked in %.3f s; slowest:\n", runs.size(), total);
  for (size_t i = 0; i < std::min(n, runs.size()); ++i) {
    std::printf("    %-32s %8.3f s  %-8s %llu steps\n", runs[i].name.c_str(), runs[i].seconds,
                CheckOutcomeName(runs[i].result.outcome),
                static_cast<unsigned long long>(runs[i].result.search_steps));
  }
}

void ExpectVerdict(const Timed& t, bool linearizable) {
  const CheckOutcome want = linearizable ? CheckOutcome::kOk : CheckOutcome::kIllegal;
  EXPECT_EQ(t.result.outcome, want)
      << t.name << ": got " << CheckOutcomeName(t.result.outcome) << ", want "
      << CheckOutcomeName(want) << " (" << t.result.detail << ")";
}

TEST(ReferenceHistoriesTest, JepsenEtcd) {
  const fs::path dir = ReferenceDir("jepsen-etcd");
  if (!fs::exists(dir / "VERDICTS.tsv")) GTEST_SKIP() << "no reference data at " << dir;
  const std::map<std::string, bool> verdicts = ReadVerdicts(dir);
  EXPECT_EQ(verdicts.size(), 102u);
  std::vector<Timed> runs;
  for (const auto& [file, linearizable] : verdicts) {
    runs.push_back(CheckFile(dir / file, /*edn=*/false, /*partition=*/true, milliseconds(20'000)));
    ExpectVerdict(runs.back(), linearizable);
    // One key, so this only swaps the algorithm: a cross-check of both.
    runs.push_back(CheckFile(dir / file, /*edn=*/false, /*partition=*/false, milliseconds(20'000)));
    ExpectVerdict(runs.back(), linearizable);
  }
  PrintSlowest(runs, 8);
}

// etcd_095 has no published verdict: report what we find. (As shipped the file
// is empty, so it is trivially linearizable; Porcupine's suite notes that the
// etcd cluster failed to start in that run.)
TEST(ReferenceHistoriesTest, JepsenEtcd095) {
  const fs::path file = ReferenceDir("jepsen-etcd") / "etcd_095.log";
  if (!fs::exists(file)) GTEST_SKIP() << "no reference data at " << file;
  for (bool partition : {true, false}) {
    Timed t = CheckFile(file, /*edn=*/false, partition, milliseconds(20'000));
    std::printf("  %s: %zu operations, %s in %.3f s (%llu steps) %s\n", t.name.c_str(), t.ops,
                CheckOutcomeName(t.result.outcome), t.seconds,
                static_cast<unsigned long long>(t.result.search_steps), t.result.detail.c_str());
    EXPECT_NE(t.result.outcome, CheckOutcome::kUnknown) << t.name;
  }
}

TEST(ReferenceHistoriesTest, KvWithAndWithoutPartitioning) {
  const fs::path dir = ReferenceDir("kv");
  if (!fs::exists(dir / "VERDICTS.tsv")) GTEST_SKIP() << "no reference data at " << dir;
  const std::map<std::string, bool> verdicts = ReadVerdicts(dir);
  EXPECT_EQ(verdicts.size(), 6u);
  std::vector<Timed> runs;
  for (const auto& [file, linearizable] : verdicts) {
    runs.push_back(CheckFile(dir / file, /*edn=*/true, /*partition=*/true, milliseconds(20'000)));
    ExpectVerdict(runs.back(), linearizable);
    // Without the split, the -bad files must still be found illegal (and the
    // -ok ones legal: the whole-history search is a different algorithm).
    runs.push_back(CheckFile(dir / file, /*edn=*/true, /*partition=*/false, milliseconds(20'000)));
    ExpectVerdict(runs.back(), linearizable);
  }
  PrintSlowest(runs, 12);
}

}  // namespace
}  // namespace warden::sim

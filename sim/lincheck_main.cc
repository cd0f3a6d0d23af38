// warden-lincheck: checks one recorded history for linearizability with the
// simulator's checker (linearizability.h) and prints the verdict.
//
//   warden-lincheck [--format jsonl|jepsen|edn] [--timeout-ms N] [--whole-history] FILE|-
//
// Output: one line, `ok: ...`, `violation: key "K": ...` or `unknown: ...`.
// Exit status: 0 ok, 1 violation, 2 unknown (the search timed out), 3 bad
// usage or an unreadable history. The chaos harness (tests/chaos/) records
// JSON lines; docs/chaos.md describes the format.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "sim/linearizability.h"

namespace warden::sim {
namespace {

constexpr int kExitOk = 0, kExitViolation = 1, kExitUnknown = 2, kExitUsage = 3;

int Usage(const char* why) {
  std::fprintf(stderr,
               "warden-lincheck: %s\n"
               "usage: warden-lincheck [--format jsonl|jepsen|edn] [--timeout-ms N] "
               "[--whole-history] FILE|-\n",
               why);
  return kExitUsage;
}

// The operations on `key` that completed before the one that could not be
// placed (its times are the "[invoke, complete]" in `detail`), as context.
void PrintKeyExcerpt(const std::vector<Operation>& history, const std::string& key,
                     const std::string& detail) {
  int64_t until = std::numeric_limits<int64_t>::max();
  const size_t open = detail.find(" [");
  const size_t comma = detail.find(", ", open == std::string::npos ? 0 : open);
  const size_t close = detail.find(']', comma == std::string::npos ? 0 : comma);
  if (open != std::string::npos && comma != std::string::npos && close != std::string::npos) {
    until = std::strtoll(detail.substr(comma + 2, close - comma - 2).c_str(), nullptr, 10);
  }
  std::vector<const Operation*> ops;
  size_t total = 0;
  for (const Operation& op : history) {
    if (op.key != key) continue;
    ++total;
    if (op.invoke_time <= until) ops.push_back(&op);
  }
  std::sort(ops.begin(), ops.end(),
            [](const Operation* a, const Operation* b) { return a->invoke_time < b->invoke_time; });
  const size_t from = ops.size() > 12 ? ops.size() - 12 : 0;
  std::printf("  %zu operations on key \"%s\"; the last %zu invoked up to the one that fails:\n",
              total, key.c_str(), ops.size() - from);
  for (size_t i = from; i < ops.size(); ++i) {
    std::printf("    %s\n", DescribeOperation(*ops[i]).c_str());
  }
}

int Main(int argc, char** argv) {
  std::string format = "jsonl", path;
  long timeout_ms = 60'000;
  bool whole = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--format" && i + 1 < argc) {
      format = argv[++i];
    } else if (a == "--timeout-ms" && i + 1 < argc) {
      char* end = nullptr;
      timeout_ms = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || timeout_ms <= 0) return Usage("bad --timeout-ms");
    } else if (a == "--whole-history") {
      whole = true;
    } else if (a == "-h" || a == "--help") {
      Usage("help");
      return kExitOk;
    } else if (path.empty() && (a == "-" || !a.starts_with("-"))) {
      path = a;
    } else {
      return Usage(("unexpected argument " + a).c_str());
    }
  }
  if (path.empty()) return Usage("no history file");
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) return Usage(("cannot open " + path).c_str());
    in = &file;
  }
  Result<std::vector<Operation>> history = Status::InvalidArgument("unknown --format " + format);
  if (format == "jsonl") {
    history = ParseJsonLinesHistory(*in);
  } else if (format == "jepsen") {
    history = ParseJepsenEtcdLog(*in);
  } else if (format == "edn") {
    history = ParseKvEdnHistory(*in);
  }
  if (!history.ok()) return Usage((path + ": " + history.status().message()).c_str());

  std::set<std::string> keys;
  size_t pending = 0;
  for (const Operation& op : *history) {
    keys.insert(op.key);
    pending += op.pending();
  }
  const auto start = std::chrono::steady_clock::now();
  CheckResult r = CheckHistory(*history, std::chrono::milliseconds(timeout_ms), !whole);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string summary = std::to_string(history->size()) + " operations (" +
                              std::to_string(pending) + " indeterminate) on " +
                              std::to_string(keys.size()) + " keys, " +
                              std::to_string(r.search_steps) + " search steps";
  switch (r.outcome) {
    case CheckOutcome::kOk:
      std::printf("ok: linearizable; %s, %.2fs\n", summary.c_str(), seconds);
      return kExitOk;
    case CheckOutcome::kIllegal: {
      std::printf("violation: %s\n  (%s)\n", r.detail.c_str(), summary.c_str());
      // The detail starts with key "K": when the history was split by key.
      const std::string prefix = "key \"";
      if (r.detail.starts_with(prefix)) {
        const size_t end = r.detail.find("\": ", prefix.size());
        if (end != std::string::npos)
          PrintKeyExcerpt(*history, r.detail.substr(prefix.size(), end - prefix.size()), r.detail);
      }
      return kExitViolation;
    }
    case CheckOutcome::kUnknown:
      std::printf("unknown: %s; %s, %.2fs\n", r.detail.c_str(), summary.c_str(), seconds);
      return kExitUnknown;
  }
  return kExitUnknown;
}

}  // namespace
}  // namespace warden::sim

int main(int argc, char** argv) { return warden::sim::Main(argc, argv); }

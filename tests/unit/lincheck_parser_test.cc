// Tests for ParseJsonLinesHistory, the format the chaos harness records and
// warden-lincheck reads (docs/chaos.md): small histories by hand, their
// parsed operations, their verdicts, and every malformed line named.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "sim/linearizability.h"

namespace warden::sim {
namespace {

Result<std::vector<Operation>> Parse(const std::string& text) {
  std::istringstream in(text);
  return ParseJsonLinesHistory(in);
}

CheckOutcome Verdict(const std::string& text) {
  Result<std::vector<Operation>> h = Parse(text);
  EXPECT_TRUE(h.ok()) << h.status().message();
  if (!h.ok()) return CheckOutcome::kUnknown;
  return CheckHistory(*h, std::chrono::milliseconds(10'000)).outcome;
}

TEST(LincheckParserTest, ParsesEveryOperationKindWithRecordedTimes) {
  Result<std::vector<Operation>> h = Parse(R"(
# a comment, then a blank line

{"process": 1, "type": "invoke", "f": "write", "key": "a", "value": "x", "time": 100}
{"process": 1, "type": "ok", "f": "write", "key": "a", "value": "x", "time": 200}
{"process": 2, "type": "invoke", "op": "read", "key": "a", "value": null, "time": 250}
{"process": 2, "type": "ok", "op": "read", "key": "a", "value": "x", "time": 300, "node": "n1"}
{"process": 3, "type": "invoke", "f": "cas", "key": "a", "value": ["x", "y"], "time": 310}
{"process": 3, "type": "ok", "f": "cas", "key": "a", "value": ["x", "y"], "time": 400}
)");
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_EQ(h->size(), 3u);
  const Operation& w = (*h)[0];
  EXPECT_EQ(w.client_id, 1u);
  EXPECT_EQ(w.key, "a");
  EXPECT_EQ(w.input.kind, OpKind::kWrite);
  EXPECT_EQ(w.input.value, "x");
  EXPECT_EQ(w.invoke_time, 100);
  EXPECT_EQ(w.complete_time, 200);
  const Operation& r = (*h)[1];
  EXPECT_EQ(r.input.kind, OpKind::kRead);
  EXPECT_EQ(r.output.value, std::optional<std::string>("x"));
  const Operation& c = (*h)[2];
  EXPECT_EQ(c.input.kind, OpKind::kCas);
  EXPECT_EQ(c.input.expected, std::optional<std::string>("x"));
  EXPECT_EQ(c.input.value, "y");
  EXPECT_TRUE(c.output.ok);
  EXPECT_EQ(c.complete_time, 400);
}

TEST(LincheckParserTest, NullMeansAbsentForReadsAndCasExpectations) {
  Result<std::vector<Operation>> h = Parse(
      R"({"process": 1, "type": "invoke", "f": "read", "key": "k", "time": 1}
{"process": 1, "type": "ok", "f": "read", "key": "k", "value": null, "time": 2}
{"process": 1, "type": "invoke", "f": "cas", "key": "k", "value": [null, "v"], "time": 3}
{"process": 1, "type": "ok", "f": "cas", "key": "k", "time": 4})");
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].output.value, std::nullopt);
  EXPECT_EQ((*h)[1].input.expected, std::nullopt);
  EXPECT_EQ(Verdict(R"({"process": 1, "type": "invoke", "f": "read", "key": "k", "time": 1}
{"process": 1, "type": "ok", "f": "read", "key": "k", "value": null, "time": 2}
{"process": 1, "type": "invoke", "f": "cas", "key": "k", "value": [null, "v"], "time": 3}
{"process": 1, "type": "ok", "f": "cas", "key": "k", "time": 4}
{"process": 1, "type": "invoke", "f": "read", "key": "k", "time": 5}
{"process": 1, "type": "ok", "f": "read", "key": "k", "value": "v", "time": 6})"),
            CheckOutcome::kOk);
}

TEST(LincheckParserTest, FailAndInfoFollowJepsenRules) {
  // A failed cas stays (its compare did not hold); a failed write, a refused
  // cas and any read without an answer leave; an info write stays pending.
  Result<std::vector<Operation>> h = Parse(
      R"({"process": 1, "type": "invoke", "f": "cas", "key": "k", "value": ["a", "b"], "time": 1}
{"process": 1, "type": "fail", "f": "cas", "key": "k", "time": 2}
{"process": 2, "type": "invoke", "f": "write", "key": "k", "value": "w1", "time": 3}
{"process": 2, "type": "fail", "f": "write", "key": "k", "time": 4}
{"process": 3, "type": "invoke", "f": "read", "key": "k", "time": 5}
{"process": 3, "type": "info", "f": "read", "key": "k", "time": 6}
{"process": 4, "type": "invoke", "f": "write", "key": "k", "value": "w2", "time": 7}
{"process": 4, "type": "info", "f": "write", "key": "k", "time": 8}
{"process": 5, "type": "invoke", "f": "write", "key": "k", "value": "w3", "time": 9}
{"process": 6, "type": "invoke", "f": "cas", "key": "k", "value": ["w3", "w4"], "time": 10}
{"process": 6, "type": "refused", "f": "cas", "key": "k", "time": 11})");
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].input.kind, OpKind::kCas);
  EXPECT_FALSE((*h)[0].output.ok);
  EXPECT_EQ((*h)[0].complete_time, 2);
  EXPECT_EQ((*h)[1].input.value, "w2");
  EXPECT_TRUE((*h)[1].pending());
  EXPECT_EQ((*h)[2].input.value, "w3");
  EXPECT_TRUE((*h)[2].pending());
}

TEST(LincheckParserTest, StaleReadIsAViolationOnItsKey) {
  const std::string h =
      R"({"process": 1, "type": "invoke", "f": "write", "key": "other", "value": "1", "time": 0}
{"process": 1, "type": "ok", "f": "write", "key": "other", "value": "1", "time": 5}
{"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "1", "time": 10}
{"process": 1, "type": "ok", "f": "write", "key": "k", "value": "1", "time": 20}
{"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "2", "time": 30}
{"process": 1, "type": "ok", "f": "write", "key": "k", "value": "2", "time": 40}
{"process": 2, "type": "invoke", "f": "read", "key": "k", "time": 50}
{"process": 2, "type": "ok", "f": "read", "key": "k", "value": "1", "time": 60})";
  Result<std::vector<Operation>> ops = Parse(h);
  ASSERT_TRUE(ops.ok());
  CheckResult r = CheckHistory(*ops, std::chrono::milliseconds(10'000));
  EXPECT_EQ(r.outcome, CheckOutcome::kIllegal);
  EXPECT_EQ(r.detail.rfind("key \"k\"", 0), 0u) << r.detail;
  // The same read, overlapping the second write, is fine.
  std::string overlapping = h;
  overlapping.replace(overlapping.find("\"time\": 40"), 10, "\"time\": 55");
  EXPECT_EQ(Verdict(overlapping), CheckOutcome::kOk);
}

TEST(LincheckParserTest, LostAcknowledgedWriteIsAViolation) {
  // What ack-before-fsync shows after every member is killed: an acked write
  // followed by a read of the value before it.
  EXPECT_EQ(
      Verdict(R"({"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "a", "time": 1}
{"process": 1, "type": "ok", "f": "write", "key": "k", "time": 2}
{"process": 1, "type": "invoke", "f": "cas", "key": "k", "value": ["a", "b"], "time": 3}
{"process": 1, "type": "ok", "f": "cas", "key": "k", "time": 4}
{"process": 2, "type": "invoke", "f": "read", "key": "k", "time": 100}
{"process": 2, "type": "ok", "f": "read", "key": "k", "value": "a", "time": 101})"),
      CheckOutcome::kIllegal);
}

TEST(LincheckParserTest, StringEscapesDecode) {
  Result<std::vector<Operation>> h = Parse(
      R"({"process": 1, "type": "invoke", "f": "write", "key": "k\"\\\u00e9\ud83d\ude00", "value": "a\tb\n", "time": 1})");
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].key, "k\"\\\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ((*h)[0].input.value, "a\tb\n");
}

TEST(LincheckParserTest, MalformedLinesAreNamed) {
  struct Case {
    const char* name;
    std::string text;
    const char* needle;
  };
  const std::string invoke =
      R"({"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "v", "time": 10})";
  const std::vector<Case> cases = {
      {"not an object", "[1, 2]", "line 1: JSON: expected '{'"},
      {"unterminated", R"({"process": 1, "type": "invo)", "unterminated string"},
      {"trailing", invoke + " x", "trailing characters"},
      {"no process", R"({"type": "invoke", "f": "read", "key": "k", "time": 1})", "\"process\""},
      {"negative process",
       R"({"process": -1, "type": "invoke", "f": "read", "key": "k", "time": 1})", "\"process\""},
      {"no key", R"({"process": 1, "type": "invoke", "f": "read", "time": 1})", "\"key\""},
      {"no time", R"({"process": 1, "type": "invoke", "f": "read", "key": "k"})", "\"time\""},
      {"fractional time",
       R"({"process": 1, "type": "invoke", "f": "read", "key": "k", "time": 1.5})", "\"time\""},
      {"cas without pair",
       R"({"process": 1, "type": "invoke", "f": "cas", "key": "k", "value": "x", "time": 1})",
       "[expected, new]"},
      {"cas with null new",
       R"({"process": 1, "type": "invoke", "f": "cas", "key": "k", "value": ["x", null], "time": 1})",
       "[expected or null, new]"},
      {"unknown op",
       R"({"process": 1, "type": "invoke", "f": "frob", "key": "k", "value": "x", "time": 1})",
       "unknown operation"},
      {"completion without invoke",
       R"({"process": 1, "type": "ok", "f": "read", "key": "k", "time": 1})",
       "completion without invoke"},
      {"two open", invoke + "\n" + invoke, "line 2: process invokes with an operation open"},
      {"completion before invoke",
       invoke + "\n" + R"({"process": 1, "type": "ok", "f": "write", "key": "k", "time": 9})",
       "line 2: completion before its invoke"},
      {"unknown type",
       invoke + "\n" + R"({"process": 1, "type": "maybe", "f": "write", "key": "k", "time": 11})",
       "unknown type"},
  };
  for (const Case& c : cases) {
    Result<std::vector<Operation>> h = Parse(c.text);
    ASSERT_FALSE(h.ok()) << c.name;
    EXPECT_NE(h.status().message().find(c.needle), std::string::npos)
        << c.name << ": " << h.status().message();
  }
}

}  // namespace
}  // namespace warden::sim

// Tests of etcd transaction semantics: compares, branches, nesting,
// read-your-writes inside a transaction, and etcd's validation errors.
#include <gtest/gtest.h>

#include "src/state/kv_apply.h"

namespace warden::state {
namespace {

RequestOp PutOp(const std::string& k, const std::string& v, int64_t lease = 0) {
  PutRequest p;
  p.key = k;
  p.value = v;
  p.lease = lease;
  return RequestOp{p};
}
RequestOp GetOp(const std::string& k) {
  RangeOptions o;
  o.range.key = k;
  return RequestOp{o};
}
RequestOp DelOp(const std::string& k, const std::string& end = "") {
  DeleteRangeRequest d;
  d.range = KeyRange{k, end};
  d.prev_kv = true;
  return RequestOp{d};
}
Compare Cmp(Compare::Target t, Compare::Result r, const std::string& key, int64_t n,
            const std::string& v = "") {
  Compare c;
  c.target = t;
  c.result = r;
  c.range.key = key;
  c.number = n;
  c.value = v;
  return c;
}

const LeaseExists kNoLeases = [](int64_t) { return false; };
const LeaseExists kLease7 = [](int64_t id) { return id == 7; };

AppliedTxn MustApply(MvccStore& s, const TxnRequest& t, const LeaseExists& leases = kNoLeases) {
  Result<AppliedTxn> r = ApplyTxn(&s, t, KvLimits{}, leases);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : AppliedTxn{};
}

TEST(KvApplyTest, CompareAndSetOnVersion) {
  MvccStore s;
  TxnRequest create;
  create.compares = {Cmp(Compare::Target::kVersion, Compare::Result::kEqual, "k", 0)};
  create.success = {PutOp("k", "v1")};
  EXPECT_TRUE(MustApply(s, create).result.succeeded);
  EXPECT_FALSE(MustApply(s, create).result.succeeded);  // the key exists now
  EXPECT_EQ(s.Get("k")->value, "v1");
}

TEST(KvApplyTest, ValueCompareOnMissingKeyIsFalse) {
  MvccStore s;
  TxnRequest t;
  t.compares = {Cmp(Compare::Target::kValue, Compare::Result::kNotEqual, "nope", 0, "x")};
  t.failure = {PutOp("ran", "failure")};
  AppliedTxn a = MustApply(s, t);
  EXPECT_FALSE(a.result.succeeded);
  EXPECT_EQ(s.Get("ran")->value, "failure");
}

TEST(KvApplyTest, ModAndCreateRevisionCompares) {
  MvccStore s;
  TxnRequest put;
  put.success = {PutOp("k", "a")};
  const int64_t rev = MustApply(s, put).revision;
  TxnRequest t;
  t.compares = {Cmp(Compare::Target::kMod, Compare::Result::kEqual, "k", rev),
                Cmp(Compare::Target::kCreate, Compare::Result::kLess, "k", rev + 1)};
  t.success = {PutOp("k", "b")};
  EXPECT_TRUE(MustApply(s, t).result.succeeded);
  EXPECT_FALSE(MustApply(s, t).result.succeeded);  // mod revision moved on
}

TEST(KvApplyTest, RangeCompareMustHoldForEveryKey) {
  MvccStore s;
  TxnRequest put;
  put.success = {PutOp("p/1", "x"), PutOp("p/2", "y")};
  MustApply(s, put);
  TxnRequest t;
  Compare c = Cmp(Compare::Target::kValue, Compare::Result::kEqual, "p/", 0, "x");
  c.range.range_end = "p0";
  t.compares = {c};
  EXPECT_FALSE(MustApply(s, t).result.succeeded);
  t.compares[0].result = Compare::Result::kNotEqual;
  t.compares[0].value = "z";
  EXPECT_TRUE(MustApply(s, t).result.succeeded);
}

TEST(KvApplyTest, AllWritesShareOneRevisionAndReadsSeeEarlierWrites) {
  MvccStore s;
  TxnRequest t;
  t.success = {PutOp("a", "1"), GetOp("a"), PutOp("b", "2")};
  AppliedTxn a = MustApply(s, t);
  EXPECT_EQ(a.revision, 2);
  ASSERT_EQ(a.events.size(), 2u);
  EXPECT_EQ(a.events[0].kv.mod_revision, 2);
  EXPECT_EQ(a.events[1].kv.mod_revision, 2);
  const auto& read = std::get<RangeResult>(a.result.responses[1].op);
  ASSERT_EQ(read.kvs.size(), 1u);
  EXPECT_EQ(read.kvs[0].value, "1");
}

TEST(KvApplyTest, ReadOnlyTxnDoesNotAdvanceRevision) {
  MvccStore s;
  TxnRequest t;
  t.success = {GetOp("a")};
  EXPECT_EQ(MustApply(s, t).revision, 1);
}

TEST(KvApplyTest, NestedTxnRunsItsOwnBranch) {
  MvccStore s;
  auto inner = std::make_shared<TxnRequest>();
  inner->compares = {Cmp(Compare::Target::kVersion, Compare::Result::kGreater, "x", 0)};
  inner->success = {PutOp("inner", "success")};
  inner->failure = {PutOp("inner", "failure")};
  TxnRequest outer;
  outer.success = {PutOp("outer", "1"), RequestOp{inner}};
  AppliedTxn a = MustApply(s, outer);
  EXPECT_TRUE(a.result.succeeded);
  EXPECT_EQ(s.Get("inner")->value, "failure");
  const auto& nested = *std::get<std::shared_ptr<TxnResult>>(a.result.responses[1].op);
  EXPECT_FALSE(nested.succeeded);
}

TEST(KvApplyTest, DuplicateKeysInABranchAreRefused) {
  TxnRequest t;
  t.success = {PutOp("k", "1"), PutOp("k", "2")};
  Status s = ValidateTxn(t, KvLimits{});
  EXPECT_EQ(s.message(), "etcdserver: duplicate key given in txn request");
  TxnRequest put_and_delete;
  put_and_delete.success = {PutOp("k/1", "1"), DelOp("k/", "k0")};
  EXPECT_FALSE(ValidateTxn(put_and_delete, KvLimits{}).ok());
  // The same key in different branches is fine: only one runs.
  TxnRequest branches;
  branches.success = {PutOp("k", "1")};
  branches.failure = {PutOp("k", "2")};
  EXPECT_TRUE(ValidateTxn(branches, KvLimits{}).ok());
  // A nested transaction's puts count against the enclosing branch.
  auto inner = std::make_shared<TxnRequest>();
  inner->success = {PutOp("k", "1")};
  TxnRequest nested;
  nested.success = {PutOp("k", "0"), RequestOp{inner}};
  EXPECT_FALSE(ValidateTxn(nested, KvLimits{}).ok());
}

TEST(KvApplyTest, TooManyOperations) {
  TxnRequest t;
  for (int i = 0; i < 129; ++i) t.success.push_back(GetOp("k" + std::to_string(i)));
  EXPECT_EQ(ValidateTxn(t, KvLimits{}).message(), "etcdserver: too many operations in txn request");
}

TEST(KvApplyTest, UnknownLeaseAbortsTheWholeTxn) {
  MvccStore s;
  TxnRequest t;
  t.success = {PutOp("a", "1"), PutOp("b", "2", 99)};
  Result<AppliedTxn> r = ApplyTxn(&s, t, KvLimits{}, kLease7);
  EXPECT_EQ(r.status().message(), "etcdserver: requested lease not found");
  EXPECT_FALSE(s.Get("a").has_value());
  EXPECT_EQ(s.current_revision(), 1);
  t.success[1] = PutOp("b", "2", 7);
  EXPECT_TRUE(ApplyTxn(&s, t, KvLimits{}, kLease7).ok());
  EXPECT_EQ(s.Get("b")->lease, 7);
}

TEST(KvApplyTest, IgnoreValueAndIgnoreLease) {
  MvccStore s;
  TxnRequest t;
  t.success = {PutOp("k", "orig", 7)};
  MustApply(s, t, kLease7);
  PutRequest p;
  p.key = "k";
  p.ignore_value = true;
  TxnRequest keep;
  keep.success = {RequestOp{p}};
  MustApply(s, keep, kLease7);
  EXPECT_EQ(s.Get("k")->value, "orig");
  EXPECT_EQ(s.Get("k")->lease, 0);  // the lease was not kept: ignore_lease unset
  p.key = "missing";
  keep.success = {RequestOp{p}};
  EXPECT_EQ(ApplyTxn(&s, keep, KvLimits{}, kLease7).status().message(),
            "etcdserver: key not found");
  p.value = "x";
  keep.success = {RequestOp{p}};
  EXPECT_FALSE(ValidateTxn(keep, KvLimits{}).ok());
}

TEST(KvApplyTest, DeleteRangeReturnsCountAndPrevious) {
  MvccStore s;
  TxnRequest put;
  put.success = {PutOp("d/1", "a"), PutOp("d/2", "b"), PutOp("e", "c")};
  MustApply(s, put);
  TxnRequest del;
  del.success = {DelOp("d/", "d0")};
  AppliedTxn a = MustApply(s, del);
  const auto& dr = std::get<DeleteRangeResult>(a.result.responses[0].op);
  EXPECT_EQ(dr.deleted, 2);
  ASSERT_EQ(dr.prev_kvs.size(), 2u);
  EXPECT_EQ(dr.prev_kvs[0].value, "a");
  EXPECT_TRUE(s.Get("e").has_value());
}

TEST(KvApplyTest, EmptyKeyIsRefused) {
  TxnRequest t;
  t.success = {PutOp("", "v")};
  EXPECT_EQ(ValidateTxn(t, KvLimits{}).message(), "etcdserver: key is not provided");
}

}  // namespace
}  // namespace warden::state

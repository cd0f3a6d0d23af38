// Tests of the MVCC key space against etcd v3 semantics.
#include "src/state/mvcc.h"

#include <gtest/gtest.h>

namespace warden::state {
namespace {

KeyRange One(const std::string& k) { return KeyRange{k, ""}; }
KeyRange Prefix(const std::string& p) {
  std::string end = p;
  end.back() = static_cast<char>(end.back() + 1);
  return KeyRange{p, end};
}
KeyRange All() { return KeyRange{std::string(1, '\0'), std::string(1, '\0')}; }

int64_t Put(MvccStore& s, const std::string& k, const std::string& v, int64_t lease = 0) {
  s.BeginWrite();
  s.Put(k, v, lease);
  s.EndWrite();
  return s.current_revision();
}

int64_t Delete(MvccStore& s, const KeyRange& r) {
  s.BeginWrite();
  s.DeleteRange(r);
  s.EndWrite();
  return s.current_revision();
}

RangeResult Get(const MvccStore& s, RangeOptions o) {
  Result<RangeResult> r = s.Range(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : RangeResult{};
}

TEST(MvccTest, RevisionsStartAtOneAndAdvanceOncePerWriteTransaction) {
  MvccStore s;
  EXPECT_EQ(s.current_revision(), 1);
  EXPECT_EQ(Put(s, "a", "1"), 2);
  s.BeginWrite();
  s.Put("b", "2", 0);
  s.Put("c", "3", 0);
  s.EndWrite();
  EXPECT_EQ(s.current_revision(), 3);  // one revision for the whole txn
  s.BeginWrite();
  s.EndWrite();
  EXPECT_EQ(s.current_revision(), 3);  // a txn that writes nothing
}

TEST(MvccTest, CreateModRevisionAndVersion) {
  MvccStore s;
  Put(s, "k", "v1");  // rev 2
  Put(s, "k", "v2");  // rev 3
  RangeResult r = Get(s, {One("k")});
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].create_revision, 2);
  EXPECT_EQ(r.kvs[0].mod_revision, 3);
  EXPECT_EQ(r.kvs[0].version, 2);
  EXPECT_EQ(r.kvs[0].value, "v2");
}

TEST(MvccTest, DeleteEndsTheGenerationAndAPutStartsANewOne) {
  MvccStore s;
  Put(s, "k", "v1");    // 2
  Delete(s, One("k"));  // 3
  EXPECT_TRUE(Get(s, {One("k")}).kvs.empty());
  Put(s, "k", "v2");  // 4
  RangeResult r = Get(s, {One("k")});
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].create_revision, 4);
  EXPECT_EQ(r.kvs[0].version, 1);
}

TEST(MvccTest, DeleteOfAbsentKeyWritesNothing) {
  MvccStore s;
  Put(s, "a", "1");
  const int64_t rev = s.current_revision();
  EXPECT_EQ(Delete(s, One("zz")), rev);
}

TEST(MvccTest, ReadAtPastRevisionSeesThePast) {
  MvccStore s;
  const int64_t r1 = Put(s, "k", "old");
  Put(s, "k", "new");
  Delete(s, One("k"));
  RangeOptions o{One("k")};
  o.revision = r1;
  RangeResult r = Get(s, o);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "old");
}

TEST(MvccTest, FutureAndCompactedRevisionsAreErrors) {
  MvccStore s;
  Put(s, "k", "1");
  Put(s, "k", "2");
  RangeOptions o{One("k")};
  o.revision = s.current_revision() + 1;
  EXPECT_EQ(s.Range(o).status().code(), ErrorCode::kFutureRevision);
  ASSERT_TRUE(s.Compact(3).ok());
  o.revision = 2;
  EXPECT_EQ(s.Range(o).status().code(), ErrorCode::kCompacted);
  o.revision = 3;
  EXPECT_TRUE(s.Range(o).ok());
  EXPECT_EQ(s.Compact(3).code(), ErrorCode::kCompacted);
  EXPECT_EQ(s.Compact(99).code(), ErrorCode::kFutureRevision);
}

TEST(MvccTest, CompactionKeepsWhatAReadAtTheCompactionPointSees) {
  MvccStore s;
  Put(s, "a", "a1");    // 2
  Put(s, "b", "b1");    // 3
  Put(s, "a", "a2");    // 4
  Delete(s, One("b"));  // 5
  Put(s, "c", "c1");    // 6
  ASSERT_TRUE(s.Compact(5).ok());
  RangeOptions o{All()};
  o.revision = 5;
  RangeResult r = Get(s, o);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, "a");
  EXPECT_EQ(r.kvs[0].value, "a2");
  // The tombstone at exactly the compaction point is still an event.
  Result<std::vector<Event>> ev = s.EventsSince(5, All(), 100);
  ASSERT_TRUE(ev.ok());
  ASSERT_EQ(ev->size(), 2u);
  EXPECT_EQ((*ev)[0].type, EventType::kDelete);
  EXPECT_EQ((*ev)[0].kv.key, "b");
  EXPECT_EQ((*ev)[1].kv.key, "c");
  EXPECT_EQ(s.EventsSince(4, All(), 100).status().code(), ErrorCode::kCompacted);
  // After a later compaction the deleted key is gone entirely.
  ASSERT_TRUE(s.Compact(6).ok());
  EXPECT_EQ(s.key_count(), 2u);
}

TEST(MvccTest, RangeByPrefixLimitCountAndMore) {
  MvccStore s;
  for (const char* k : {"foo/a", "foo/b", "foo/c", "fop", "bar"}) Put(s, k, "v");
  RangeOptions o{Prefix("foo/")};
  RangeResult r = Get(s, o);
  EXPECT_EQ(r.count, 3);
  ASSERT_EQ(r.kvs.size(), 3u);
  EXPECT_EQ(r.kvs[0].key, "foo/a");
  o.limit = 2;
  r = Get(s, o);
  EXPECT_EQ(r.kvs.size(), 2u);
  EXPECT_EQ(r.count, 3);
  EXPECT_TRUE(r.more);
  o.limit = 0;
  o.count_only = true;
  r = Get(s, o);
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 3);
  RangeOptions all{KeyRange{"a", std::string(1, '\0')}};
  EXPECT_EQ(Get(s, all).count, 5);
}

TEST(MvccTest, KeysOnlyDropsValues) {
  MvccStore s;
  Put(s, "k", "value");
  RangeOptions o{One("k")};
  o.keys_only = true;
  RangeResult r = Get(s, o);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_TRUE(r.kvs[0].value.empty());
  EXPECT_EQ(r.kvs[0].version, 1);
}

TEST(MvccTest, SortByTargetsAndOrders) {
  MvccStore s;
  Put(s, "b", "1");
  Put(s, "a", "3");
  Put(s, "c", "2");
  Put(s, "a", "4");
  RangeOptions o{All()};
  o.sort_target = SortTarget::kMod;
  o.sort_order = SortOrder::kDescend;
  RangeResult r = Get(s, o);
  ASSERT_EQ(r.kvs.size(), 3u);
  EXPECT_EQ(r.kvs[0].key, "a");
  EXPECT_EQ(r.kvs[1].key, "c");
  EXPECT_EQ(r.kvs[2].key, "b");
  o.sort_target = SortTarget::kValue;
  o.sort_order = SortOrder::kAscend;
  o.limit = 2;
  r = Get(s, o);
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_EQ(r.kvs[0].key, "b");
  EXPECT_EQ(r.kvs[1].key, "c");
  EXPECT_TRUE(r.more);
  o.sort_target = SortTarget::kKey;
  o.sort_order = SortOrder::kDescend;
  o.limit = 0;
  r = Get(s, o);
  EXPECT_EQ(r.kvs[0].key, "c");
}

TEST(MvccTest, RevisionFilters) {
  MvccStore s;
  Put(s, "a", "1");  // 2
  Put(s, "b", "1");  // 3
  Put(s, "a", "2");  // 4
  RangeOptions o{All()};
  o.min_mod_revision = 4;
  RangeResult r = Get(s, o);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, "a");
  o = RangeOptions{All()};
  o.max_create_revision = 2;
  r = Get(s, o);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, "a");
}

TEST(MvccTest, PutReturnsPreviousValueAndKeepsLease) {
  MvccStore s;
  s.BeginWrite();
  EXPECT_FALSE(s.Put("k", "v1", 7).has_value());
  s.EndWrite();
  s.BeginWrite();
  std::optional<KeyValue> prev = s.Put("k", "v2", 0);
  s.EndWrite();
  ASSERT_TRUE(prev.has_value());
  EXPECT_EQ(prev->value, "v1");
  EXPECT_EQ(prev->lease, 7);
}

TEST(MvccTest, DeleteRangeReturnsDeletedAndEmitsEvents) {
  MvccStore s;
  Put(s, "p/1", "a");
  Put(s, "p/2", "b");
  Put(s, "q", "c");
  s.BeginWrite();
  std::vector<KeyValue> deleted = s.DeleteRange(Prefix("p/"));
  std::vector<Event> events = s.EndWrite();
  ASSERT_EQ(deleted.size(), 2u);
  EXPECT_EQ(deleted[1].value, "b");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, EventType::kDelete);
  EXPECT_EQ(events[0].kv.mod_revision, s.current_revision());
  ASSERT_TRUE(events[0].prev_kv.has_value());
  EXPECT_EQ(events[0].prev_kv->value, "a");
}

TEST(MvccTest, EventsSinceRespectsRangeAndRevisionBatches) {
  MvccStore s;
  Put(s, "w/a", "1");  // 2
  Put(s, "x", "1");    // 3
  s.BeginWrite();      // 4: two events in one revision
  s.Put("w/b", "1", 0);
  s.Put("w/c", "1", 0);
  s.EndWrite();
  Result<std::vector<Event>> ev = s.EventsSince(3, Prefix("w/"), 1);
  ASSERT_TRUE(ev.ok());
  // The cut never splits a revision.
  ASSERT_EQ(ev->size(), 2u);
  EXPECT_EQ((*ev)[0].kv.key, "w/b");
  EXPECT_EQ((*ev)[1].kv.key, "w/c");
  ev = s.EventsSince(0, Prefix("w/"), 100);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->size(), 3u);
}

TEST(MvccTest, HashAgreesForSameHistoryAndDiffersOtherwise) {
  MvccStore a, b;
  Put(a, "k", "v");
  Put(b, "k", "v");
  EXPECT_EQ(a.HashAt(0), b.HashAt(0));
  Put(b, "k", "w");
  EXPECT_NE(a.HashAt(0), b.HashAt(0));
  EXPECT_EQ(a.HashAt(2), b.HashAt(2));
}

TEST(MvccTest, SerializeRoundTripPreservesHistoryAndEvents) {
  MvccStore s;
  Put(s, "a", "1");
  Put(s, "a", "2");
  Delete(s, One("a"));
  Put(s, "b", "x", 9);
  ASSERT_TRUE(s.Compact(3).ok());
  Result<MvccStore> copy = MvccStore::Deserialize(s.Serialize());
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->current_revision(), s.current_revision());
  EXPECT_EQ(copy->compact_revision(), 3);
  EXPECT_EQ(copy->HashAt(0), s.HashAt(0));
  EXPECT_EQ(copy->HashAt(3), s.HashAt(3));
  EXPECT_EQ(copy->EventsSince(3, All(), 100)->size(), s.EventsSince(3, All(), 100)->size());
}

TEST(MvccTest, RetainedBytesFollowWritesCompactionAndRestore) {
  MvccStore s;
  EXPECT_EQ(s.retained_bytes(), 0u);
  Put(s, "a", "1");
  const uint64_t one = s.retained_bytes();
  EXPECT_GT(one, 0u);
  Put(s, "a", "2");
  EXPECT_EQ(s.retained_bytes(), 2 * one);  // history is retained
  ASSERT_TRUE(s.Compact(s.current_revision()).ok());
  EXPECT_EQ(s.retained_bytes(), one);  // the superseded version is gone
  Result<MvccStore> copy = MvccStore::Deserialize(s.Serialize());
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->retained_bytes(), s.retained_bytes());
}

TEST(MvccTest, DeserializeRejectsDamage) {
  MvccStore s;
  Put(s, "a", "1");
  const std::string image = s.Serialize();
  for (size_t cut = 0; cut < image.size(); ++cut) {
    EXPECT_FALSE(MvccStore::Deserialize(image.substr(0, cut)).ok()) << "cut at " << cut;
  }
  EXPECT_FALSE(MvccStore::Deserialize(image + "x").ok());
}

}  // namespace
}  // namespace warden::state

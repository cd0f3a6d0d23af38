// Tests of the replicated state machine: command encoding, leases and their
// keys, checkpoints, and snapshot/restore equivalence.
#include "src/state/state_machine.h"

#include <gtest/gtest.h>

namespace warden::state {
namespace {

std::string PutCmd(const std::string& k, const std::string& v, int64_t lease = 0) {
  Command c;
  c.type = CommandType::kTxn;
  PutRequest p;
  p.key = k;
  p.value = v;
  p.lease = lease;
  c.txn.success.push_back(RequestOp{p});
  return EncodeCommand(c);
}

std::string LeaseCmd(CommandType type, int64_t id, int64_t ttl = 0) {
  Command c;
  c.type = type;
  c.lease_id = id;
  c.ttl_seconds = ttl;
  return EncodeCommand(c);
}

class StateMachineTest : public ::testing::Test {
 protected:
  ApplyResult Apply(const std::string& data) { return sm_.Apply(next_ = next_ + 1, data); }
  StateMachine sm_;
  Index next_;
};

TEST_F(StateMachineTest, CommandsRoundTrip) {
  Command c;
  c.type = CommandType::kTxn;
  c.proposal_id = 42;
  c.leader_time_ms = 1234;
  Compare cmp;
  cmp.target = Compare::Target::kValue;
  cmp.result = Compare::Result::kNotEqual;
  cmp.range = KeyRange{"a", "b"};
  cmp.value = "v";
  c.txn.compares.push_back(cmp);
  RangeOptions r;
  r.range = KeyRange{"x", std::string(1, '\0')};
  r.limit = 5;
  r.sort_order = SortOrder::kDescend;
  r.keys_only = true;
  c.txn.success.push_back(RequestOp{r});
  auto inner = std::make_shared<TxnRequest>();
  inner->failure.push_back(RequestOp{DeleteRangeRequest{KeyRange{"d", ""}, true}});
  c.txn.failure.push_back(RequestOp{inner});
  const std::string enc = EncodeCommand(c);
  Result<Command> dec = DecodeCommand(enc);
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  EXPECT_EQ(EncodeCommand(*dec), enc);
  EXPECT_EQ(dec->proposal_id, 42u);
  EXPECT_EQ(dec->leader_time_ms, 1234);
  // Every truncation is refused, never misread.
  for (size_t cut = 0; cut < enc.size(); ++cut) {
    EXPECT_FALSE(DecodeCommand(enc.substr(0, cut)).ok()) << "cut at " << cut;
  }
}

TEST_F(StateMachineTest, LeaderRestampsAForwardedCommandWithoutTouchingTheRest) {
  Command c;
  c.type = CommandType::kLeaseGrant;
  c.proposal_id = 0x0102030405060708ULL;
  c.leader_time_ms = 111;
  c.lease_id = 9;
  c.ttl_seconds = 30;
  std::string enc = EncodeCommand(c);
  EXPECT_EQ(PeekProposalId(enc), 0x0102030405060708ULL);
  ASSERT_TRUE(RestampLeaderTime(&enc, 987654321));
  Result<Command> dec = DecodeCommand(enc);
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  EXPECT_EQ(dec->leader_time_ms, 987654321);
  EXPECT_EQ(dec->proposal_id, c.proposal_id);
  EXPECT_EQ(dec->lease_id, 9);
  EXPECT_EQ(dec->ttl_seconds, 30);
  // Not a command: left alone.
  std::string junk = "garbage";
  EXPECT_FALSE(RestampLeaderTime(&junk, 5));
  EXPECT_EQ(junk, "garbage");
  EXPECT_FALSE(PeekProposalId(junk).has_value());
}

TEST_F(StateMachineTest, MalformedCommandIsAnErrorResultOnEveryReplica) {
  ApplyResult r = Apply("garbage");
  EXPECT_EQ(r.status.code(), ErrorCode::kCorruption);
  EXPECT_EQ(sm_.applied_index(), Index(1));
  EXPECT_EQ(sm_.kv().current_revision(), 1);
}

TEST_F(StateMachineTest, PutWithUnknownLeaseFails) {
  ApplyResult r = Apply(PutCmd("k", "v", 5));
  EXPECT_EQ(r.status.message(), "etcdserver: requested lease not found");
  EXPECT_FALSE(sm_.kv().Get("k").has_value());
}

TEST_F(StateMachineTest, RevokeDeletesAttachedKeysInOneRevision) {
  ASSERT_TRUE(Apply(LeaseCmd(CommandType::kLeaseGrant, 5, 10)).status.ok());
  ASSERT_TRUE(Apply(PutCmd("a", "1", 5)).status.ok());
  ASSERT_TRUE(Apply(PutCmd("b", "2", 5)).status.ok());
  ASSERT_TRUE(Apply(PutCmd("c", "3")).status.ok());
  EXPECT_EQ(sm_.leases().Find(5)->keys.size(), 2u);
  const int64_t before = sm_.kv().current_revision();
  ApplyResult r = Apply(LeaseCmd(CommandType::kLeaseRevoke, 5));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, before + 1);
  EXPECT_EQ(r.events.size(), 2u);
  EXPECT_FALSE(sm_.kv().Get("a").has_value());
  EXPECT_TRUE(sm_.kv().Get("c").has_value());
  EXPECT_FALSE(sm_.leases().Exists(5));
  EXPECT_EQ(Apply(LeaseCmd(CommandType::kLeaseRevoke, 5)).status.code(), ErrorCode::kNotFound);
}

TEST_F(StateMachineTest, RewritingAKeyMovesItBetweenLeases) {
  Apply(LeaseCmd(CommandType::kLeaseGrant, 1, 10));
  Apply(LeaseCmd(CommandType::kLeaseGrant, 2, 10));
  Apply(PutCmd("k", "v", 1));
  Apply(PutCmd("k", "v", 2));
  EXPECT_TRUE(sm_.leases().Find(1)->keys.empty());
  EXPECT_EQ(sm_.leases().Find(2)->keys.count("k"), 1u);
  Apply(LeaseCmd(CommandType::kLeaseRevoke, 1));
  EXPECT_TRUE(sm_.kv().Get("k").has_value());  // no longer attached to lease 1
}

TEST_F(StateMachineTest, DuplicateGrantIsRefused) {
  EXPECT_TRUE(Apply(LeaseCmd(CommandType::kLeaseGrant, 9, 10)).status.ok());
  EXPECT_EQ(Apply(LeaseCmd(CommandType::kLeaseGrant, 9, 10)).status.message(),
            "etcdserver: lease already exists");
}

TEST_F(StateMachineTest, CheckpointRecordsRemainingTime) {
  Apply(LeaseCmd(CommandType::kLeaseGrant, 3, 60));
  Command c;
  c.type = CommandType::kLeaseCheckpoint;
  c.checkpoints = {{3, 12000}, {404, 1}};  // an unknown lease is ignored
  ASSERT_TRUE(Apply(EncodeCommand(c)).status.ok());
  EXPECT_EQ(sm_.leases().Find(3)->remaining_ms, 12000);
  c.checkpoints = {{3, 0}};  // a renewal resets to the full TTL
  Apply(EncodeCommand(c));
  EXPECT_EQ(sm_.leases().Find(3)->remaining_ms, 0);
}

TEST_F(StateMachineTest, CompactThroughTheLog) {
  Apply(PutCmd("k", "1"));
  Apply(PutCmd("k", "2"));
  Command c;
  c.type = CommandType::kCompact;
  c.revision = 3;
  EXPECT_TRUE(Apply(EncodeCommand(c)).status.ok());
  EXPECT_EQ(Apply(EncodeCommand(c)).status.code(), ErrorCode::kCompacted);
}

TEST_F(StateMachineTest, SnapshotRestoreGivesTheSameStateAndDigest) {
  Apply(LeaseCmd(CommandType::kLeaseGrant, 5, 10));
  Apply(PutCmd("a", "1", 5));
  Apply(PutCmd("b", "2"));
  StateMachine copy;
  ASSERT_TRUE(copy.Restore(sm_.applied_index(), sm_.Serialize()).ok());
  EXPECT_EQ(copy.Digest(), sm_.Digest());
  EXPECT_EQ(copy.applied_index(), sm_.applied_index());
  // Both continue identically.
  Index next = sm_.applied_index() + 1;
  ApplyResult r1 = sm_.Apply(next, LeaseCmd(CommandType::kLeaseRevoke, 5));
  ApplyResult r2 = copy.Apply(next, LeaseCmd(CommandType::kLeaseRevoke, 5));
  EXPECT_EQ(r1.revision, r2.revision);
  EXPECT_EQ(copy.Digest(), sm_.Digest());
  EXPECT_FALSE(copy.Restore(Index(99), sm_.Serialize()).ok());  // wrong index
  EXPECT_FALSE(copy.Restore(Index(4), "junk").ok());
}

}  // namespace
}  // namespace warden::state

// ---------------------------------------------------------------------------
// The member table

namespace warden::state {
namespace {

TEST(MemberTableTest, ConfChangeContextRoundTripsAndOldEncodingStaysTheSame) {
  raft::ConfChange plain;
  plain.changes.push_back({raft::ConfChangeType::kAddVoter, NodeId(7)});
  const std::string v1 = plain.Encode();
  EXPECT_EQ(v1[0], 1) << "a change without a context keeps the version 1 bytes";
  raft::ConfChange with = plain;
  with.context = EncodeMemberRecord({7, "", {"http://127.0.0.1:9"}});
  raft::ConfChange back;
  ASSERT_TRUE(raft::ConfChange::Decode(with.Encode(), &back));
  EXPECT_EQ(back, with);
  ASSERT_TRUE(raft::ConfChange::Decode(v1, &back));
  EXPECT_EQ(back, plain);
  // Every truncation of the version 2 bytes is refused.
  const std::string v2 = with.Encode();
  for (size_t n = 0; n < v2.size(); ++n) {
    EXPECT_FALSE(raft::ConfChange::Decode(v2.substr(0, n), &back)) << n;
  }
}

TEST(MemberTableTest, AddUpdateRemoveThroughTheStateMachine) {
  StateMachine sm;
  ASSERT_TRUE(
      sm.Restore(Index(1), StateMachine::BootstrapImage(
                               Index(1), {{1, "a", {"http://a:1"}}, {2, "b", {"http://b:1"}}}))
          .ok());
  ASSERT_EQ(sm.members().all().size(), 2u);
  EXPECT_EQ(sm.members().Find(1)->name, "a");

  raft::ConfChange add;
  add.changes.push_back({raft::ConfChangeType::kAddLearner, NodeId(3)});
  add.context = EncodeMemberRecord({3, "", {"http://c:1"}});
  const uint64_t v0 = sm.members().version();
  sm.ApplyConfChange(Index(2), add);
  EXPECT_GT(sm.members().version(), v0);
  ASSERT_NE(sm.members().Find(3), nullptr);
  EXPECT_EQ(sm.members().Find(3)->peer_urls, std::vector<std::string>{"http://c:1"});
  EXPECT_EQ(sm.applied_index(), Index(2));

  Command up;
  up.type = CommandType::kMemberUpdate;
  up.member_id = 3;
  up.peer_urls = {"http://c:2", "http://c:3"};
  ApplyResult r = sm.Apply(Index(3), EncodeCommand(up));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(sm.members().Find(3)->peer_urls, up.peer_urls);
  up.member_id = 99;
  r = sm.Apply(Index(4), EncodeCommand(up));
  EXPECT_EQ(r.status.code(), ErrorCode::kNotFound);

  // The table is in the snapshot image and in the digest.
  StateMachine copy;
  ASSERT_TRUE(copy.Restore(Index(4), sm.Serialize()).ok());
  EXPECT_EQ(copy.members().all(), sm.members().all());
  EXPECT_EQ(copy.Digest(), sm.Digest());

  raft::ConfChange remove;
  remove.changes.push_back({raft::ConfChangeType::kRemoveNode, NodeId(1)});
  sm.ApplyConfChange(Index(5), remove);
  EXPECT_EQ(sm.members().Find(1), nullptr);
  EXPECT_NE(copy.Digest(), sm.Digest());
}

TEST(MemberTableTest, DamagedImagesAreRefused) {
  const std::string image = StateMachine::BootstrapImage(Index(1), {{1, "a", {"http://a:1"}}});
  for (size_t n = 1; n < image.size(); ++n) {
    StateMachine sm;
    EXPECT_FALSE(sm.Restore(Index(1), image.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(DecodeMemberRecord("\x01garbage").ok());
}

}  // namespace
}  // namespace warden::state

// ---------------------------------------------------------------------------
// Lock commands (src/state/lock_apply.cc)

namespace warden::state {
namespace {

class LockCommandTest : public ::testing::Test {
 protected:
  ApplyResult Run(Command c, int64_t now_ms = 1000) {
    c.leader_time_ms = now_ms;
    return sm_.Apply(next_ = next_ + 1, EncodeCommand(c));
  }
  ApplyResult Grant(int64_t lease) {
    Command c;
    c.type = CommandType::kLeaseGrant;
    c.lease_id = lease;
    c.ttl_seconds = 60;
    return Run(c);
  }
  Command Lock(CommandType type, const std::string& path, int64_t session, uint64_t token = 0) {
    Command c;
    c.type = type;
    c.lock.path = path;
    c.lock.session = session;
    c.lock.token = token;
    return c;
  }
  StateMachine sm_;
  Index next_;
};

TEST_F(LockCommandTest, AcquireQueueReleaseGrantsTheNextInTheSameEntry) {
  Grant(1);
  Grant(2);
  ApplyResult a = Run(Lock(CommandType::kLockAcquire, "/l", 1));
  ASSERT_EQ(a.lock.outcome, LockOutcome::kGranted);
  ApplyResult b = Run(Lock(CommandType::kLockAcquire, "/l", 2));
  ASSERT_EQ(b.lock.outcome, LockOutcome::kQueued);
  ApplyResult rel = Run(Lock(CommandType::kLockRelease, "/l", 1, a.lock.token));
  ASSERT_EQ(rel.lock.outcome, LockOutcome::kGranted) << rel.lock.detail;
  ASSERT_EQ(rel.lock_answers.size(), 1u);
  EXPECT_EQ(rel.lock_answers[0].owner.session, 2);
  EXPECT_EQ(rel.lock_answers[0].outcome, LockOutcome::kGranted);
  EXPECT_GT(rel.lock_answers[0].token, a.lock.token);
}

TEST_F(LockCommandTest, GuardedTxnRefusesAStaleToken) {
  Grant(1);
  Grant(2);
  ApplyResult a = Run(Lock(CommandType::kLockAcquire, "/g", 1));
  Command guarded = Lock(CommandType::kGuardedTxn, "/g", 1, a.lock.token);
  PutRequest p;
  p.key = "fenced";
  p.value = "1";
  guarded.txn.success.push_back(RequestOp{p});
  EXPECT_TRUE(Run(guarded).status.ok());
  Run(Lock(CommandType::kLockRelease, "/g", 1, a.lock.token));
  ApplyResult b = Run(Lock(CommandType::kLockAcquire, "/g", 2));
  ASSERT_EQ(b.lock.outcome, LockOutcome::kGranted);
  // The zombie's write with the old token is refused; the new holder's goes.
  ApplyResult stale = Run(guarded);
  EXPECT_EQ(stale.status.code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(sm_.kv().Get("fenced")->version, 1);
  guarded.lock.token = b.lock.token;
  EXPECT_TRUE(Run(guarded).status.ok());
}

TEST_F(LockCommandTest, LeaseRevokeEndsHoldsAndGrantsTheWaiter) {
  Grant(1);
  Grant(2);
  Run(Lock(CommandType::kLockAcquire, "/s", 1));
  Run(Lock(CommandType::kLockAcquire, "/s", 2));
  Command revoke;
  revoke.type = CommandType::kLeaseRevoke;
  revoke.lease_id = 1;
  ApplyResult r = Run(revoke);
  ASSERT_EQ(r.lock_answers.size(), 1u);
  EXPECT_EQ(r.lock_answers[0].owner.session, 2);
  // A request of the ended session is answered SESSION_ENDED.
  EXPECT_EQ(Run(Lock(CommandType::kLockAcquire, "/s", 1)).lock.outcome, LockOutcome::kSessionEnded);
}

TEST_F(LockCommandTest, HoldTtlExpiresAtTheFirstEntryPastItsDeadline) {
  Grant(1);
  Command c = Lock(CommandType::kLockAcquire, "/t", 1);
  c.lock.ttl_ms = 500;
  ApplyResult a = Run(c, 1000);
  ASSERT_EQ(a.lock.outcome, LockOutcome::kGranted);
  ASSERT_EQ(sm_.locks().NextDeadline(), 1500);
  Command tick;
  tick.type = CommandType::kLockTick;
  ApplyResult early = Run(tick, 1400);
  EXPECT_TRUE(sm_.locks().IsHolderToken("/t", a.lock.token));
  ApplyResult late = Run(tick, 1500);
  EXPECT_FALSE(sm_.locks().IsHolderToken("/t", a.lock.token));
  ASSERT_EQ(late.lock_events.size(), 1u);
  EXPECT_EQ(late.lock_events[0].type, LockEvent::Type::kExpired);
}

TEST_F(LockCommandTest, V3LockKeysAppearAndUnlockHandsOverInOneRevision) {
  Grant(0x10);
  Grant(0x20);
  Command l1 = Lock(CommandType::kV3Lock, "mylock", 0x10);
  ApplyResult a = Run(l1);
  ASSERT_EQ(a.lock.outcome, LockOutcome::kGranted);
  EXPECT_EQ(a.lock.detail, "mylock/10");
  ASSERT_TRUE(sm_.kv().Get("mylock/10"));
  ApplyResult b = Run(Lock(CommandType::kV3Lock, "mylock", 0x20));
  ASSERT_EQ(b.lock.outcome, LockOutcome::kQueued);
  EXPECT_GT(sm_.kv().Get("mylock/20")->create_revision, sm_.kv().Get("mylock/10")->create_revision);
  Command unlock = Lock(CommandType::kV3Unlock, "", 0);
  unlock.lock.key = "mylock/10";
  ApplyResult u = Run(unlock);
  ASSERT_TRUE(u.status.ok());
  EXPECT_FALSE(sm_.kv().Get("mylock/10"));
  ASSERT_EQ(u.lock_answers.size(), 1u);
  EXPECT_EQ(u.lock_answers[0].owner.session, 0x20);
  EXPECT_EQ(u.lock_answers[0].outcome, LockOutcome::kGranted);
}

TEST_F(LockCommandTest, V3ProclaimOnlyByTheLeader) {
  Grant(0x10);
  Grant(0x20);
  Command c1 = Lock(CommandType::kV3Campaign, "el", 0x10);
  c1.lock.value = "a";
  ASSERT_EQ(Run(c1).lock.outcome, LockOutcome::kGranted);
  Command c2 = Lock(CommandType::kV3Campaign, "el", 0x20);
  c2.lock.value = "b";
  ASSERT_EQ(Run(c2).lock.outcome, LockOutcome::kQueued);
  Command p = Lock(CommandType::kV3Proclaim, "", 0);
  p.lock.key = "el/20";
  p.lock.value = "b2";
  EXPECT_EQ(Run(p).status.code(), ErrorCode::kFailedPrecondition);
  p.lock.key = "el/10";
  p.lock.value = "a2";
  ASSERT_TRUE(Run(p).status.ok());
  EXPECT_EQ(sm_.kv().Get("el/10")->value, "a2");
}

TEST_F(LockCommandTest, LocksAreInTheSnapshotImage) {
  Grant(1);
  Grant(2);
  ApplyResult a = Run(Lock(CommandType::kLockAcquire, "/snap", 1));
  Run(Lock(CommandType::kLockAcquire, "/snap", 2));
  StateMachine copy;
  ASSERT_TRUE(copy.Restore(sm_.applied_index(), sm_.Serialize()).ok());
  EXPECT_EQ(copy.Digest(), sm_.Digest());
  EXPECT_TRUE(copy.locks().IsHolderToken("/snap", a.lock.token));
  EXPECT_EQ(copy.locks().Inspect("/snap", 1000)->waiters.size(), 1u);
}

}  // namespace
}  // namespace warden::state

namespace warden::state {
namespace {

TEST_F(LockCommandTest, TransferHandsTheLockToTheNamedWaiterAheadOfTheQueue) {
  Grant(1);
  Grant(2);
  Grant(3);
  ApplyResult a = Run(Lock(CommandType::kLockAcquire, "/e", 1));
  ASSERT_EQ(Run(Lock(CommandType::kLockAcquire, "/e", 2)).lock.outcome, LockOutcome::kQueued);
  ASSERT_EQ(Run(Lock(CommandType::kLockAcquire, "/e", 3)).lock.outcome, LockOutcome::kQueued);
  Command t = Lock(CommandType::kLockTransfer, "/e", 1, a.lock.token);
  t.lock.to_session = 3;  // not the head of the queue
  ApplyResult r = Run(t);
  ASSERT_EQ(r.lock.outcome, LockOutcome::kGranted) << r.lock.detail;
  ASSERT_EQ(r.lock_answers.size(), 1u);
  EXPECT_EQ(r.lock_answers[0].owner.session, 3);
  EXPECT_GT(r.lock_answers[0].token, a.lock.token);
  EXPECT_FALSE(sm_.locks().IsHolderToken("/e", a.lock.token));
  // Naming an owner that does not wait is refused and changes nothing.
  Command bad = Lock(CommandType::kLockTransfer, "/e", 3, r.lock_answers[0].token);
  bad.lock.to_session = 1;
  EXPECT_EQ(Run(bad).lock.outcome, LockOutcome::kNotWaiting);
  EXPECT_TRUE(sm_.locks().IsHolderToken("/e", r.lock_answers[0].token));
}

}  // namespace
}  // namespace warden::state

namespace warden::state {
namespace {

TEST_F(LockCommandTest, V3LockRetriedWhileWaitingKeepsWaiting) {
  Grant(0x10);
  Grant(0x20);
  ASSERT_EQ(Run(Lock(CommandType::kV3Lock, "rl", 0x10)).lock.outcome, LockOutcome::kGranted);
  ASSERT_EQ(Run(Lock(CommandType::kV3Lock, "rl", 0x20)).lock.outcome, LockOutcome::kQueued);
  // The retry (etcd clients re-send after a timeout) is not refused.
  ApplyResult again = Run(Lock(CommandType::kV3Lock, "rl", 0x20));
  EXPECT_TRUE(again.status.ok());
  EXPECT_EQ(again.lock.outcome, LockOutcome::kQueued);
  EXPECT_EQ(sm_.locks().Inspect("rl", 1000)->waiters.size(), 1u);
}

}  // namespace
}  // namespace warden::state

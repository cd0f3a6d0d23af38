"""Unit tests of the chaos harness's own checks and plans (no cluster, no root).

    /usr/bin/python3 -m unittest -v tests/chaos/test_checks.py
"""

import os
import shutil
import sys
import tempfile
import types
import unittest

os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "0"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nemesis  # noqa: E402
import workloads  # noqa: E402


def watch_workload():
    ctx = types.SimpleNamespace(seed=1, run_dir=tempfile.mkdtemp(prefix="wchaos-test-"), size=3,
                                max_seconds=1)
    w = workloads.WatchWorkload(ctx)
    w.log_f.close()
    shutil.rmtree(ctx.run_dir)
    w.log_f = open(os.devnull, "w")
    w.final_rev = 4
    w.invoked = {("a", "1"), ("b", "2"), ("x", "f")}
    w.acked = {2: ("a", "1"), 3: ("b", "2"), 4: ("x", "f")}
    return w


GOOD = [(2, "a", "1", 0), (3, "b", "2", 0), (4, "x", "f", 0)]


class WatchCheckTest(unittest.TestCase):
    def test_every_event_once_in_order_is_ok(self):
        w = watch_workload()
        w.events = [list(GOOD), list(GOOD), list(GOOD)]
        self.assertEqual(w.check().outcome, "ok")

    def test_duplicate_missing_phantom_and_disagreement_are_violations(self):
        w = watch_workload()
        w.events = [list(GOOD),
                    [(2, "a", "1", 0), (2, "a", "1", 0), (4, "x", "f", 0)],
                    [(2, "a", "1", 0), (3, "b", "9", 0), (4, "x", "f", 0)]]
        v = w.check()
        self.assertEqual(v.outcome, "violation")
        for needle in ("duplicate or out of order", "never delivered", "was never written",
                       "watcher 2 saw b=9, watcher 0 saw b=2"):
            self.assertIn(needle, v.detail)

    def test_a_watcher_that_never_catches_up_is_a_liveness_failure(self):
        w = watch_workload()
        w.events = [list(GOOD), list(GOOD), GOOD[:2]]
        v = w.check()
        self.assertEqual(v.outcome, "liveness")
        self.assertIn("not the final 4", v.detail)


# -- locks -------------------------------------------------------------------------

S = 1_000_000_000  # ns


def op(invoke, complete, outcome="ok", **kw):
    d = {"invoke": int(invoke * S), "complete": int(complete * S), "outcome": outcome}
    d.update(kw)
    return d


def hold(hid, api, token, acq, writes=(), release=None, lock="chaos/lk/0", acq_outcome="ok"):
    """acq: (invoke, complete); writes: (invoke, complete, outcome, revision)."""
    h = {"id": hid, "api": api, "lock": lock, "acq": op(acq[0], acq[1], acq_outcome), "writes": []}
    if acq_outcome == "ok":
        h["token"] = token
    for j, (i, c, outcome, rev) in enumerate(writes):
        w = op(i, c, outcome, key="%s/w/%s.%d" % (lock, hid, j), value="%s.%d %s %d" % (hid, j, api, token))
        if outcome == "ok":
            w["revision"] = rev
        h["writes"].append(w)
    if release is not None:
        h["release"] = op(release[0], release[1], "ok", released=release[2])
    return h


def final_read(holds, revisions, member=0, lock="chaos/lk/0"):
    """A final read holding the writes at `revisions` ({(hold id, n): revision})."""
    entries = {}
    by_id = {h["id"]: h for h in holds}
    for (hid, n), rev in revisions.items():
        w = by_id[hid]["writes"][n]
        entries[w["key"]] = [w["value"], rev]
    if revisions:
        last = max(revisions.items(), key=lambda kv: kv[1])
        entries[lock + "/reg"] = [by_id[last[0][0]]["writes"][last[0][1]]["value"], last[1]]
    return {"member": member, "entries": entries}


def invoked_of(holds):
    return {w["key"]: w["value"] for h in holds for w in h["writes"]}


def good_lock_history():
    """a (native, token 5), b (v3, create revision 11), c (native, token 8),
    one after the other; an acquire of d that timed out; c's second write
    timed out but took effect, a's third timed out and did not."""
    holds = [
        hold("a", "native", 5, (1.0, 1.1), [(1.2, 1.3, "ok", 10), (1.4, 1.5, "ok", 11), (1.6, 3.1, "info", 0)],
             release=(3.2, 3.3, True)),
        hold("b", "v3", 12, (1.05, 3.5), [(3.6, 3.7, "ok", 13), (3.8, 3.9, "ok", 14)], release=(4.0, 4.1, False)),
        hold("c", "native", 8, (3.55, 4.2), [(4.3, 4.4, "ok", 15), (4.5, 6.0, "info", 0)],
             release=(6.1, 6.2, True)),
        hold("d", "native", 0, (4.0, 7.5), acq_outcome="info"),
    ]
    revisions = {("a", 0): 10, ("a", 1): 11, ("b", 0): 13, ("b", 1): 14, ("c", 0): 15, ("c", 1): 16}
    return holds, revisions


class LockCheckTest(unittest.TestCase):
    def check(self, holds, revisions, reads=None):
        if reads is None:
            reads = [final_read(holds, revisions)]
        return workloads.check_locks(holds, reads, invoked_of(holds))

    def assertFinds(self, problems, needle):
        self.assertTrue(any(needle in p for p in problems), "%r not in %s" % (needle, problems))

    def test_a_good_history_with_unknown_outcomes_passes(self):
        holds, revisions = good_lock_history()
        problems, notes = self.check(holds, revisions)
        self.assertEqual(problems, [])
        self.assertIn("4 acquisitions (3 granted, 1 unknown)", notes)

    def overlapping(self, a_released):
        """a holds from 1.1; its release at 3.2 finds it held (or not); c is
        granted at 2.0 and writes at 2.1."""
        holds = [hold("a", "native", 5, (1.0, 1.1), [(1.2, 1.3, "ok", 10)], release=(3.2, 3.3, a_released)),
                 hold("c", "native", 8, (1.9, 2.0), [(2.1, 2.2, "ok", 11)], release=(2.3, 2.4, True))]
        return self.check(holds, {("a", 0): 10, ("c", 0): 11})[0]

    def test_overlapping_holds_in_real_time(self):
        self.assertFinds(self.overlapping(True), "exclusion: chaos/lk/0: holds a [1.100, 3.200] and c [2.000, 2.300]")

    def test_overlap_needs_proof_of_holding(self):
        # a's release found nothing held (its session lapsed): a is only known
        # to hold until its last acknowledged write, at 1.2.
        self.assertEqual(self.overlapping(False), [])

    def test_interleaved_writes_in_revision_order(self):
        holds, revisions = good_lock_history()
        revisions[("b", 0)], revisions[("a", 1)] = 11, 13  # a, b, a
        for h in holds:
            for j, w in enumerate(h["writes"]):
                if (h["id"], j) in revisions and w["outcome"] == "ok":
                    w["revision"] = revisions[(h["id"], j)]
        problems, _ = self.check(holds, revisions)
        self.assertFinds(problems, "exclusion: chaos/lk/0: hold a wrote at revision 13 after hold b")

    def test_an_unknown_write_that_took_effect_counts_in_the_order(self):
        holds, revisions = good_lock_history()
        revisions[("a", 2)] = 17  # a's timed-out third write, after c's writes: a zombie write
        problems, _ = self.check(holds, revisions)
        self.assertFinds(problems, "exclusion: chaos/lk/0: hold a wrote at revision 17")
        del revisions[("a", 2)]
        revisions[("a", 2)] = 12  # the same write, before b's: fine
        problems, _ = self.check(holds, revisions)
        self.assertEqual(problems, [])

    def test_token_order(self):
        holds, revisions = good_lock_history()
        holds[2]["token"] = 4  # c, acquired after a was answered, got a smaller token
        for w in holds[2]["writes"]:
            w["value"] = w["value"].replace(" 8", " 4")
        problems, _ = self.check(holds, revisions)
        self.assertFinds(problems, "token order: c got native token 4")
        self.assertFinds(problems, "token order: chaos/lk/0: hold c (native token 4)")

    def test_token_order_ignores_acquires_that_overlap_in_time(self):
        holds, revisions = good_lock_history()
        # d's acquire is unknown: it says nothing. And two acquires invoked
        # before either was answered may be granted in any order.
        holds[3]["acq"]["outcome"] = "ok"
        holds[3]["token"] = 7  # invoked at 4.0, before c was answered (4.2)
        problems, _ = self.check(holds, revisions)
        self.assertEqual(problems, [])

    def test_duplicate_token(self):
        holds, revisions = good_lock_history()
        holds.append(hold("e", "native", 8, (7.0, 7.1)))
        problems, _ = self.check(holds, revisions)
        self.assertFinds(problems, "token: c and e were both granted with native token 8")

    def test_lost_and_refused_and_phantom_writes(self):
        holds, revisions = good_lock_history()
        read = final_read(holds, revisions)
        del read["entries"]["chaos/lk/0/w/b.1"]  # acknowledged at 14
        problems, _ = self.check(holds, revisions, [read, final_read(holds, revisions, member=1)])
        self.assertFinds(problems, "lost write: chaos/lk/0/w/b.1='b.1 v3 12' acknowledged at revision 14 "
                         "is missing from member 0's final read")
        self.assertEqual(len([p for p in problems if p.startswith("lost")]), 1)

        holds, revisions = good_lock_history()
        holds[0]["writes"][2]["outcome"] = "fail"  # refused by the guard...
        revisions[("a", 2)] = 12  # ...yet it took effect
        problems, _ = self.check(holds, revisions)
        self.assertFinds(problems, "refused write took effect: chaos/lk/0/w/a.2")

        holds, revisions = good_lock_history()
        read = final_read(holds, revisions)
        read["entries"]["chaos/lk/0/w/z.0"] = ["z.0 native 99", 20]
        problems, _ = self.check(holds, revisions, [read])
        self.assertFinds(problems, "phantom write: chaos/lk/0/w/z.0")

    def test_unknown_writes_may_be_missing(self):
        holds, revisions = good_lock_history()
        del revisions[("c", 1)]  # the timed-out write of c did not happen after all
        problems, _ = self.check(holds, revisions)
        self.assertEqual(problems, [])

    def test_register_must_hold_the_last_write(self):
        holds, revisions = good_lock_history()
        read = final_read(holds, revisions)
        read["entries"]["chaos/lk/0/reg"] = ["b.1 v3 12", 14]
        problems, _ = self.check(holds, revisions, [read])
        self.assertFinds(problems, "register chaos/lk/0/reg")


# -- sessions ----------------------------------------------------------------------


def session(key, ttl, grant, put=None, kas=(), end=None, revoke=None):
    """Times in seconds; kas: (invoke, complete, outcome)."""
    s = {"key": key, "ttl": ttl, "id": 1, "grant": op(grant[0], grant[1]),
         "kas": [op(i, c, o, ttl=ttl if o == "ok" else 0) for i, c, o in kas]}
    if put is not None:
        s["put"] = op(put[0], put[1])
    if end is not None:
        s["end"] = int(end * S)
    if revoke is not None:
        s["revoke"] = op(revoke[0], revoke[1], revoke[2] if len(revoke) > 2 else "ok")
    return s


def reads_of(spec):
    """spec: [(invoke, complete, [keys])]."""
    return [{"invoke": int(i * S), "complete": int(c * S), "keys": list(k), "member": 0} for i, c, k in spec]


K = "chaos/s/k"


class SessionCheckTest(unittest.TestCase):
    def check(self, sessions, reads, starts=(), final=None, **kw):
        return workloads.check_sessions(sessions, reads_of(reads), [int(t * S) for t in starts], final, **kw)

    def kept(self, kas=((1.5, 1.6, "ok"), (2.5, 2.6, "ok"), (3.5, 3.6, "ok")), end=3.7):
        # TTL 2 s, granted at 1.0, kept alive until 3.5 (so alive until >= 5.5).
        return session(K, 2, (1.0, 1.1), put=(1.1, 1.2), kas=kas, end=end)

    def test_a_kept_session_that_lapses_in_time_passes(self):
        reads = [(2.0, 2.1, [K]), (5.0, 5.1, [K]), (5.5, 5.6, []), (9.0, 9.1, [])]
        v, late, notes = self.check([self.kept()], reads, final={"end": int(9 * S), "read": int(9 * S), "keys": []})
        self.assertEqual((v, late), ([], []))
        self.assertIn("1 sessions (0 revoked, 1 lapsed", notes)

    def test_a_key_vanishing_while_kept_alive_is_a_violation(self):
        reads = [(2.0, 2.1, [K]), (5.0, 5.1, [])]  # alive until at least 5.5
        v, _, _ = self.check([self.kept()], reads)
        self.assertEqual(len(v), 1)
        self.assertIn("early: key chaos/s/k gone", v[0])

    def test_an_unknown_keepalive_does_not_extend_the_lease(self):
        # The last keep-alive timed out: the lease is only known to live until 2.5 + 2.
        s = self.kept(kas=((1.5, 1.6, "ok"), (2.5, 2.6, "ok"), (3.5, 4.5, "info")), end=4.6)
        v, late, _ = self.check([s], [(4.6, 4.7, [])])
        self.assertEqual((v, late), ([], []))

    def test_a_read_before_the_put_was_acknowledged_says_nothing(self):
        s = session(K, 2, (1.0, 1.1), put=(1.1, 1.9))
        v, _, _ = self.check([s], [(1.5, 1.6, [])])
        self.assertEqual(v, [])

    def test_keepalive_answering_gone_early_is_a_violation(self):
        s = self.kept(kas=((1.5, 1.6, "ok"), (2.5, 2.6, "gone")), end=2.6)
        v, _, _ = self.check([s], [])
        self.assertEqual(len(v), 1)
        self.assertIn("answered TTL 0", v[0])
        s = self.kept(kas=((1.5, 1.6, "ok"), (3.6, 3.7, "gone")), end=3.7)  # after 1.5 + 2: fine
        v, _, _ = self.check([s], [])
        self.assertEqual(v, [])

    def test_revoked_key_still_present_is_a_violation(self):
        s = session(K, 4, (1.0, 1.1), put=(1.1, 1.2), end=1.3, revoke=(1.3, 1.4))
        v, _, _ = self.check([s], [(1.35, 1.5, []), (1.5, 1.6, [K])])
        self.assertEqual(len(v), 1)
        self.assertIn("revoked: key chaos/s/k still present", v[0])
        # A read that overlaps the revoke may see it either way; an early
        # vanish right after a revoke was sent is no violation.
        v, late, _ = self.check([s], [(1.35, 1.45, [K]), (1.35, 1.5, [])])
        self.assertEqual((v, late), ([], []))

    def test_a_lapsed_key_that_stays_is_late(self):
        s = session(K, 2, (1.0, 1.1), put=(1.1, 1.2), end=1.2)  # due by 3.1, + 4 s slack
        _, late, _ = self.check([s], [(7.0, 7.1, [K])])  # within the slack
        self.assertEqual(late, [])
        _, late, _ = self.check([s], [(8.0, 8.1, [K])])
        self.assertEqual(len(late), 1)
        self.assertIn("late: key chaos/s/k", late[0])
        _, late, _ = self.check([s], [(8.0, 8.1, [K])], starts=[5.0])  # a new leader at 5.0: due by 7 + 4
        self.assertEqual(late, [])
        # The leader died and the next took over at 7.5: it restarts the lease.
        _, late, _ = self.check([s], [(8.0, 8.1, [K])], starts=[7.5])
        self.assertEqual(late, [])
        _, late, _ = self.check([s], [(8.0, 8.1, [K])], starts=[9.7])  # seen after the read: no excuse
        self.assertEqual(len(late), 1)

    def test_a_lapsed_lease_with_an_unknown_keepalive_is_not_timed(self):
        s = self.kept(kas=((1.5, 1.6, "ok"), (2.5, 3.5, "info")), end=3.5)
        _, late, _ = self.check([s], [(20.0, 20.1, [K])])
        self.assertEqual(late, [])

    def test_keys_left_at_the_end(self):
        _, late, _ = self.check([], [], final={"end": 0, "read": int(12 * S), "keys": [K]})
        self.assertEqual(len(late), 1)
        self.assertIn("1 keys still present", late[0])

    def test_clock_faults_make_timing_findings_notes(self):
        v, late, notes = self.check([self.kept()], [(2.0, 2.1, [K]), (5.0, 5.1, [])], clock_faults=True)
        self.assertEqual((v, late), ([], []))
        self.assertIn("not counted: early", notes)


class ScheduleTest(unittest.TestCase):
    def test_a_seed_gives_the_same_plan(self):
        for name in nemesis.NEMESES:
            a = nemesis.make_schedule(name, 7, 60, 3)
            self.assertEqual(a, nemesis.make_schedule(name, 7, 60, 3))
            for step in a:
                self.assertLessEqual(step["at"] + step["hold"], 60)
        self.assertNotEqual(nemesis.make_schedule("mixed", 7, 60, 3),
                            nemesis.make_schedule("mixed", 8, 60, 3))
        self.assertEqual(nemesis.make_schedule("none", 7, 60, 3), [])


if __name__ == "__main__":
    unittest.main()

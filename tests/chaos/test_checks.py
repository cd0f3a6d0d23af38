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

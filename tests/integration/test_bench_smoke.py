"""Smoke test of warden-bench (bench/load/): it must keep working against a
real warden, so that `make bench-compare` cannot rot between measurements.

Starts a 1-member warden on free ports, runs warden-bench for a second or two
per workload and checks the JSON: operations done, no errors, no broken mutual
exclusion (and, for lock-native, increasing fencing tokens); lock-v3 either
runs or reports "unsupported" (exit status 3) cleanly. Under a minute in all.

    WARDEN_BIN=build/warden WARDEN_BENCH_BIN=build/bench/warden-bench \
        /usr/bin/python3 -m unittest -v tests/integration/test_bench_smoke.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import ClusterTestCase, Cluster  # noqa: E402


def bench_binary():
    path = os.environ.get("WARDEN_BENCH_BIN") or os.path.join(cluster.REPO_ROOT, "build", "bench",
                                                              "warden-bench")
    return os.path.abspath(path)


class WardenBenchSmokeTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(bench_binary(), os.X_OK):
            raise RuntimeError("warden-bench not found at %s (set WARDEN_BENCH_BIN)" % bench_binary())
        cls.c = cls.track_class(Cluster(size=1))
        cls.c.start()
        cls.tmp = tempfile.mkdtemp(prefix="warden-bench-smoke-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)
        super().tearDownClass()

    def bench(self, *args, expect_rc=0):
        path = os.path.join(self.tmp, "out.json")
        if os.path.exists(path):
            os.unlink(path)
        cmd = [bench_binary(), "--endpoints", self.c.members[0].endpoint, "--duration", "1.5",
               "--warmup", "0.3", "--json", path] + [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=45, env=cluster._clean_env())
        self.assertEqual(p.returncode, expect_rc, "%s\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(cmd), p.stdout, p.stderr))
        with open(path) as f:
            j = json.load(f)
        return j, p.stdout

    def check_ran(self, j, out):
        self.assertGreater(j["ops"], 0, out)
        self.assertEqual(j["errors_total"], 0, out)
        self.assertFalse(j["unsupported"], out)
        self.assertFalse(j["setup_timed_out"], out)
        self.assertEqual(j["counters"].get("mutual_exclusion_violations", 0), 0, out)
        main = next(iter(j["latency_ms"].values()))
        self.assertGreater(main["count"], 0, out)
        self.assertGreater(main["p50"], 0, out)
        self.assertGreaterEqual(main["max"], main["p99"], out)

    def test_put(self):
        j, out = self.bench("--workload", "put", "--clients", "8", "--conns", "2")
        self.check_ran(j, out)
        self.assertIn("ops/s", out)

    def test_range_both_consistencies(self):
        for w in ("range", "range-serializable"):
            j, out = self.bench("--workload", w, "--keys", "200", "--clients", "4")
            self.check_ran(j, out)
            self.assertEqual(j["prefill_keys"], 200, out)
            self.assertEqual(j["counters"].get("range_missing_key", 0), 0, out)

    def test_txn(self):
        j, out = self.bench("--workload", "txn", "--keys", "50", "--clients", "4")
        self.check_ran(j, out)
        self.assertGreater(j["counters"].get("txn_succeeded", 0), 0, out)

    def test_lease_keepalive_and_watch(self):
        j, out = self.bench("--workload", "lease-keepalive", "--clients", "4")
        self.check_ran(j, out)
        j, out = self.bench("--workload", "watch", "--watchers", "20", "--watch-streams", "4",
                            "--clients", "1", "--rate", "100")
        self.check_ran(j, out)
        self.assertGreater(j["counters"].get("puts", 0), 0, out)

    def test_watch_spread_notifies_one_watcher_per_put(self):
        # 20 watches on 20 keys: each put notifies one watch, where watches
        # of one key would see 20 notifications per put.
        j, out = self.bench("--workload", "watch", "--watchers", "20", "--watch-streams", "4",
                            "--watch-spread", "--keys", "20", "--clients", "1", "--rate", "100")
        self.check_ran(j, out)
        puts = j["counters"].get("puts", 0)
        self.assertGreater(puts, 0, out)
        self.assertLessEqual(j["ops"], puts + 5, out)
        self.assertGreaterEqual(j["counters"].get("watches_notified", 0), 10, out)
        self.assertEqual(j["counters"].get("watch_wrong_key", 0), 0, out)
        p = subprocess.run([bench_binary(), "--workload", "watch", "--watch-spread", "--watch-prefix"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("exclude each other", p.stdout + p.stderr)

    def test_lock_recipe_contended(self):
        j, out = self.bench("--workload", "lock-recipe", "--clients", "6", "--locks", "2")
        self.check_ran(j, out)
        self.assertGreater(j["counters"].get("handovers", 0), 0, out)

    def test_lock_native_contended(self):
        j, out = self.bench("--workload", "lock-native", "--clients", "6", "--locks", "2")
        self.check_ran(j, out)
        self.assertGreater(j["counters"].get("handovers", 0), 0, out)
        self.assertEqual(j["counters"].get("token_order_violations", 0), 0, out)
        self.assertGreater(j["latency_ms"]["release"]["count"], 0, out)

    def test_session_churn(self):
        j, out = self.bench("--workload", "session-churn", "--clients", "4")
        self.check_ran(j, out)
        for step in ("grant", "put", "revoke"):
            self.assertGreater(j["latency_ms"][step]["count"], 0, out)

    def test_lock_v3_runs_or_reports_unsupported(self):
        path = os.path.join(self.tmp, "out.json")
        cmd = [bench_binary(), "--endpoints", self.c.members[0].endpoint, "--duration", "1.5",
               "--warmup", "0.3", "--json", path, "--workload", "lock-v3", "--clients", "4"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=45, env=cluster._clean_env())
        self.assertIn(p.returncode, (0, 3), p.stdout + p.stderr)
        with open(path) as f:
            j = json.load(f)
        if p.returncode == 3:
            self.assertTrue(j["unsupported"], p.stdout)
            self.assertIn("UNIMPLEMENTED", j["unsupported_reason"])
            self.assertIn("UNSUPPORTED", p.stdout)
            self.assertEqual(j["errors_total"], 0, p.stdout)
        else:
            self.check_ran(j, p.stdout)

    def test_bad_flag_exits_2(self):
        p = subprocess.run([bench_binary(), "--workload", "no-such-workload"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("no-such-workload", p.stderr)


if __name__ == "__main__":
    cluster.main()

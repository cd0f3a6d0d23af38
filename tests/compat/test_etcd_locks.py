"""Compatibility: etcdctl 3.4's `lock` and `elect` (the etcd v3lock and
v3election services) against a 3-member warden cluster, where both are served
from the replicated lock queue (docs/locks.md).

    WARDEN_BIN=build/warden /usr/bin/python3 -m unittest -v tests/compat/test_etcd_locks.py
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import cluster  # noqa: E402
from cluster import ClusterTestCase, Cluster, wait_until  # noqa: E402


class Proc:
    """An etcdctl child process whose output lines are collected by threads.
    Only this PID is ever signalled."""

    def __init__(self, c, args, endpoints=None):
        eps = ",".join(m.endpoint for m in (endpoints or c.running_members()))
        self.cmd = [cluster.ETCDCTL, "--endpoints=" + eps, "--dial-timeout=2s"] + list(args)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=c.root,
                                     env=cluster._clean_env({"ETCDCTL_API": "3"}))
        self.out, self.err = [], []
        self.mu = threading.Lock()
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream, sink):
        for line in iter(stream.readline, ""):
            with self.mu:
                sink.append(line.rstrip("\n"))

    def lines(self):
        with self.mu:
            return list(self.out)

    def wait_line(self, text, timeout=10):
        wait_until(lambda: any(text in l for l in self.lines()), timeout,
                   "%r in the output of %s (out=%r err=%r)" % (text, " ".join(self.cmd),
                                                              self.lines(), self.err))

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def close(self):
        self.signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class EtcdLockTest(ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.track_class(Cluster(size=3, name_prefix="lk"))
        cls.c.start()

    def spawn(self, *args, endpoints=None):
        p = Proc(self.c, args, endpoints=endpoints)
        self.addCleanup(p.close)
        return p

    def test_lock_runs_the_command_with_the_lock_key(self):
        out = self.c.etcdctl_ok("lock", "cl-key", "--", "sh", "-c", "echo held $ETCD_LOCK_KEY",
                                timeout=15)
        line = out.strip().splitlines()[-1]
        self.assertTrue(line.startswith("held cl-key/"), out)
        # Unlocked afterwards: the key is gone.
        self.assertEqual(self.c.etcdctl_ok("get", "--prefix", "cl-key/", "--keys-only").strip(), "")

    def test_contending_lock_holders_never_overlap(self):
        log = tempfile.NamedTemporaryFile(prefix="warden-lock-", delete=False)
        log.close()
        self.addCleanup(os.unlink, log.name)
        script = 'echo "start $$" >> %s; sleep 0.2; echo "end $$" >> %s' % (log.name, log.name)
        procs = [self.spawn("lock", "cl-mutex", "--", "sh", "-c", script,
                            endpoints=[self.c.members[i % 3]]) for i in range(5)]
        for p in procs:
            p.proc.wait(timeout=60)
            self.assertEqual(p.proc.returncode, 0, p.err)
        with open(log.name) as f:
            lines = [l.split() for l in f.read().splitlines()]
        self.assertEqual(len(lines), 10, lines)
        for i in range(0, 10, 2):
            self.assertEqual(lines[i][0], "start", lines)
            self.assertEqual(lines[i + 1], ["end", lines[i][1]], "holders overlapped: %r" % lines)

    def test_waiters_keys_are_in_the_key_space_in_queue_order(self):
        # Without a command etcdctl holds the lock until interrupted, then
        # unlocks (with a command, an interrupt kills it without unlocking).
        holder = self.spawn("lock", "cl-queue")
        holder.wait_line("cl-queue/")
        waiter = self.spawn("lock", "cl-queue", "--", "echo", "second")
        wait_until(lambda: len(self.c.etcdctl_json("get", "--prefix", "cl-queue/").get("kvs", []))
                   == 2, 10, "the waiter's key")
        kvs = self.c.etcdctl_json("get", "--prefix", "cl-queue/", "--sort-by=CREATE")["kvs"]
        self.assertLess(kvs[0]["create_revision"], kvs[1]["create_revision"])
        self.assertTrue(all(kv.get("lease") for kv in kvs), kvs)
        # The waiter waits while the holder holds.
        time.sleep(0.5)
        self.assertIsNone(waiter.proc.poll())
        holder.signal(signal.SIGINT)
        waiter.proc.wait(timeout=15)
        self.assertEqual(waiter.proc.returncode, 0, waiter.err)
        self.assertIn("second", waiter.lines())

    def test_lock_passes_on_when_the_holder_dies(self):
        # kill -9 of the holder: its session (lease) expires, and the lease's
        # revoke releases the lock and grants the waiter in one entry.
        holder = self.spawn("lock", "--ttl", "2", "cl-dead", "--", "sleep", "60")
        wait_until(lambda: self.c.etcdctl_ok("get", "--prefix", "cl-dead/", "--keys-only").strip(),
                   10, "the holder's key")
        waiter = self.spawn("lock", "cl-dead", "--", "echo", "got it")
        time.sleep(0.3)
        t0 = time.monotonic()
        holder.signal(signal.SIGKILL)
        waiter.proc.wait(timeout=20)
        elapsed = time.monotonic() - t0
        self.assertEqual(waiter.proc.returncode, 0, waiter.err)
        self.assertIn("got it", waiter.lines())
        # Not before the TTL (2 s, never early), not much after it.
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 6.0)

    def test_elect_observe_and_fail_over(self):
        alice = self.spawn("elect", "cl-elect", "alice")
        alice.wait_line("alice")
        observer = self.spawn("elect", "-l", "cl-elect")
        observer.wait_line("alice")
        bob = self.spawn("elect", "cl-elect", "bob")
        time.sleep(0.5)
        self.assertNotIn("bob", bob.lines(), "bob elected while alice leads")
        alice.signal(signal.SIGINT)  # resigns
        bob.wait_line("bob", timeout=15)
        observer.wait_line("bob", timeout=10)
        # The leader's key holds the value etcd clients read.
        got = self.c.etcdctl_ok("get", "--prefix", "cl-elect/", "--print-value-only").split()
        self.assertEqual(got, ["bob"])


if __name__ == "__main__":
    cluster.main()


class V3ServicesTest(ClusterTestCase):
    """etcd's v3lock and v3election gRPC services themselves (etcdctl's lock
    and elect use client-side recipes on the KV API instead), through a client
    built from our protos, with requests spread over all members."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.track_class(Cluster(size=3, name_prefix="v3"))
        cls.c.start()

    def run_scenario(self, scenario):
        if not shutil.which("protoc"):
            self.skipTest("protoc is not installed")
        here = os.path.dirname(os.path.abspath(__file__))
        p = subprocess.run(
            ["/usr/bin/python3", os.path.join(here, "v3_services_client.py"),
             os.path.join(cluster.REPO_ROOT, "proto"), shutil.which("protoc"),
             ",".join(m.endpoint for m in self.c.members), scenario],
            capture_output=True, text=True, timeout=120, env=cluster._clean_env())
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        return json.loads(p.stdout.strip().splitlines()[-1])

    def test_v3lock_contention_is_mutually_exclusive(self):
        r = self.run_scenario("contend")
        sys.stderr.write("v3lock_contended_10_clients_handovers_per_s=%.0f\n" % r["handovers_per_s"])
        self.assertEqual(r["errors"], [])
        self.assertEqual(r["max_holders"], 1, r)
        self.assertGreater(r["cycles"], 10, r)
        self.assertEqual(r["keys_left"], 0, "Unlock should delete every lock key: %r" % r)

    def test_v3election_campaign_proclaim_resign(self):
        r = self.run_scenario("election")
        self.assertTrue(r["a_key"].startswith("v3-el/"), r)
        self.assertTrue(r["b_waiting"], r)
        self.assertEqual(r["leader1"], "a")
        self.assertIn("FAILED_PRECONDITION", r["proclaim_by_b"])
        self.assertIn("not leader", r["proclaim_by_b"])
        self.assertEqual(r["leader2"], "a2")
        self.assertTrue(r["b_elected"], r)
        self.assertEqual(r["leader3"], "b")

"""Integration: wardenctl and the C++ client library (src/client) against
3-member warden clusters of real processes.

    WARDEN_BIN=build/warden WARDENCTL_BIN=build/wardenctl \\
        /usr/bin/python3 -m unittest -v tests/integration/test_locks.py

Every process is started here and signalled by its PID only. Commands run
under a lock append "start TOKEN PID" / "end TOKEN PID" lines to a log file;
the checks read the log: pairs never interleave (no overlap) and tokens
strictly increase in grant order.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import ClusterTestCase, Cluster, wait_until  # noqa: E402

WARDENCTL = os.path.abspath(os.environ.get("WARDENCTL_BIN") or
                            os.path.join(cluster.REPO_ROOT, "build", "wardenctl"))
API_TEST = os.path.abspath(os.environ.get("WARDEN_CLIENT_API_TEST") or
                           os.path.join(cluster.REPO_ROOT, "build", "tests", "client_api_test"))
V3LOCK_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v3lock_client.py")
BENCH = os.path.abspath(os.environ.get("WARDEN_CLIENT_BENCH") or
                        os.path.join(cluster.REPO_ROOT, "build", "bench", "warden_client_bench"))

# Appends "start"/"end" lines around a short critical section. $1 = log file,
# $2 = seconds to hold. Each echo is one small O_APPEND write.
CRITICAL = ('echo "start $WARDEN_FENCING_TOKEN $$" >> "$1"; sleep "$2"; '
            'echo "end $WARDEN_FENCING_TOKEN $$" >> "$1"')


def check_log(testcase, path, expected_pairs=None):
    """No overlap and strictly increasing tokens; returns the list of tokens."""
    with open(path) as f:
        lines = [l.split() for l in f.read().splitlines() if l.strip()]
    tokens = []
    holder = None
    for i, parts in enumerate(lines):
        kind, token, pid = parts[0], int(parts[1]), parts[2]
        if kind == "start":
            testcase.assertIsNone(holder, "overlap at line %d: %r while %r holds\n%s" % (
                i, parts, holder, "\n".join(" ".join(p) for p in lines)))
            holder = (token, pid)
            if tokens:
                testcase.assertGreater(token, tokens[-1], "tokens not increasing: %r" % lines)
            tokens.append(token)
        else:
            testcase.assertEqual(holder, (token, pid), "end without its start at line %d" % i)
            holder = None
    testcase.assertIsNone(holder, "the last holder never ended")
    if expected_pairs is not None:
        testcase.assertEqual(len(tokens), expected_pairs)
    return tokens


class Lines:
    """Collects a child's stdout and stderr lines from threads."""

    def __init__(self, proc):
        self.proc = proc
        self.out, self.err = [], []
        self.mu = threading.Lock()
        for stream, sink in ((proc.stdout, self.out), (proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream, sink):
        try:
            for line in iter(stream.readline, ""):
                with self.mu:
                    sink.append(line.rstrip("\n"))
        except (ValueError, OSError):  # closed at cleanup
            pass

    def lines(self):
        with self.mu:
            return list(self.out)

    def errors(self):
        with self.mu:
            return list(self.err)

    def wait_out(self, text, timeout=15):
        wait_until(lambda: any(text in l for l in self.lines()), timeout,
                   "%r on stdout (out=%r err=%r)" % (text, self.lines(), self.errors()))

    def wait_err(self, text, timeout=15):
        wait_until(lambda: any(text in l for l in self.errors()), timeout,
                   "%r on stderr (out=%r err=%r)" % (text, self.lines(), self.errors()))


class Procs:
    """Child processes of one test, killed (by PID) at cleanup."""

    def __init__(self):
        self.procs = []

    def add(self, p):
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (p.stdout, p.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass


class WardenctlBase(ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(WARDENCTL, os.X_OK):
            raise RuntimeError("wardenctl not found: %s (set WARDENCTL_BIN)" % WARDENCTL)

    def setUp(self):
        super().setUp()
        self.prepare()

    def prepare(self):
        self.procs = Procs()
        self.addCleanup(self.procs.close)
        self.dir = os.path.join(self.cluster().root, "t-%s" % self._testMethodName)
        os.makedirs(self.dir, exist_ok=True)

    def cluster(self):
        return self.c

    def eps(self, members=None):
        return ",".join(m.endpoint for m in (members or self.cluster().members))

    def argv(self, *args, endpoints=None):
        return [WARDENCTL, "--endpoints=" + (endpoints or self.eps()), "--dial-timeout=1s",
                "--command-timeout=5s"] + list(args)

    def env(self, extra=None):
        return cluster._clean_env(extra)

    def ctl(self, *args, timeout=60, endpoints=None, env=None):
        t0 = time.monotonic()
        try:
            p = subprocess.run(self.argv(*args, endpoints=endpoints), stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=timeout,
                               env=self.env(env), cwd=self.dir)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("wardenctl %s timed out after %ss: out=%r err=%r" % (
                " ".join(args), timeout, e.stdout, e.stderr))
        return cluster.CmdResult(p.returncode, p.stdout, p.stderr, time.monotonic() - t0,
                                 self.argv(*args))

    def spawn(self, *args, endpoints=None, env=None):
        return self.procs.add(subprocess.Popen(
            self.argv(*args, endpoints=endpoints), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(env),
            cwd=self.dir))

    def path(self, name):
        return os.path.join(self.dir, name)

    def inspect(self, name):
        r = self.ctl("lock", "inspect", name, "-w", "json", timeout=15)
        if r.rc != 0:
            raise AssertionError("inspect failed: %r" % (r,))
        return json.loads(r.out)

    def wait_waiters(self, name, n, timeout=15, procs=()):
        def check():
            for p in procs:
                if p.poll() is not None:
                    out, err = p.communicate()
                    raise AssertionError("%s exited with %s before queueing: out=%r err=%r" % (
                        " ".join(p.args), p.returncode, out, err))
            return len(self.inspect(name).get("waiters", [])) >= n
        wait_until(check, timeout, "%d waiter(s) on %s" % (n, name))

    def wait_file(self, path, timeout=15):
        wait_until(lambda: os.path.exists(path), timeout, "file %s" % path, interval=0.02,
                   max_interval=0.05)

    def run_loop(self, args, iterations, results, key):
        """Runs wardenctl `iterations` times in a row (in a thread)."""
        rcs = []
        for _ in range(iterations):
            r = self.ctl(*args, timeout=120)
            rcs.append((r.rc, r.err.strip()))
        results[key] = rcs


class WardenctlTest(WardenctlBase):
    """One shared 3-member cluster; each test uses lock names of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.track_class(Cluster(size=3, name_prefix="wl"))
        cls.c.start()

    def test_command_gets_env_and_its_exit_status(self):
        script = ('echo "$WARDEN_FENCING_TOKEN|$WARDEN_SESSION|$WARDEN_OWNER|'
                  '$WARDEN_ENDPOINTS|$WARDEN_LOCK|$INHERITED"; exit 7')
        r = self.ctl("lock", "it-env", "--", "sh", "-c", script, env={"INHERITED": "yes"})
        self.assertEqual(r.rc, 7, r)
        token, session, owner, endpoints, lock, inherited = r.out.strip().split("|")
        self.assertGreater(int(token), 0)
        self.assertGreater(int(session), 0)
        self.assertTrue(owner.startswith("wardenctl:"), owner)
        self.assertEqual(endpoints, self.eps())
        self.assertEqual(lock, "it-env")
        self.assertEqual(inherited, "yes")
        # Released and the session revoked afterwards.
        self.assertEqual(self.inspect("it-env").get("holders", []), [])
        self.assertNotEqual(self.ctl("session", "ttl", session).rc, 0)
        # Killed by a signal: 128 + signal.
        r = self.ctl("lock", "it-env", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(r.rc, 128 + signal.SIGTERM, r)
        # A command that does not exist: 127, and the lock is released.
        r = self.ctl("lock", "it-env", "--", "/nonexistent/cmd")
        self.assertEqual(r.rc, 127, r)
        self.assertEqual(self.inspect("it-env").get("holders", []), [])

    def test_try_lock_on_held_lock_fails_at_once(self):
        held = self.path("held")
        holder = self.spawn("lock", "it-try", "--", "sh", "-c", "touch %s; exec sleep 60" % held)
        self.wait_file(held)
        r = self.ctl("lock", "it-try", "--wait", "0", "--", "true")
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.err, "wardenctl: lock it-try is held (WOULD_BLOCK)\n")
        self.assertLess(r.elapsed, 3.0, r)  # process start, session, one try, revoke
        # A bounded wait that runs out: TIMEOUT, after the wait and not long after.
        r = self.ctl("lock", "it-try", "--wait", "700ms", "--", "true")
        self.assertEqual(r.rc, 4, r)
        self.assertIn("(TIMEOUT)", r.err)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r)
        self.assertGreaterEqual(r.elapsed, 0.6, r)
        self.assertLess(r.elapsed, 4.0, r)
        # The timed-out waiter left no trace.
        self.assertEqual(self.inspect("it-try").get("waiters", []), [])
        holder.send_signal(signal.SIGTERM)  # forwarded to the command; then released
        self.assertEqual(holder.wait(timeout=15), 128 + signal.SIGTERM)
        r = self.ctl("lock", "it-try", "--wait", "0", "--", "true")
        self.assertEqual(r.rc, 0, r)

    def test_contending_processes_never_overlap(self):
        log = self.path("log")
        results = {}
        threads = [threading.Thread(target=self.run_loop, args=(
            ["lock", "it-cont", "--", "sh", "-c", CRITICAL, "sh", log, "0.05"], 4, results, i))
            for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        for i in range(5):
            self.assertEqual([rc for rc, _ in results[i]], [0] * 4, results[i])
        check_log(self, log, expected_pairs=20)

    def test_nested_wardenctl_is_reentrant(self):
        inner = "%s lock it-nest --wait 0 -- sh -c 'echo inner $WARDEN_FENCING_TOKEN'" % WARDENCTL
        r = self.ctl("lock", "it-nest", "--", "sh", "-c",
                     "echo outer $WARDEN_FENCING_TOKEN; " + inner)
        self.assertEqual(r.rc, 0, r)
        outer_token = r.out.split("outer ")[1].split()[0]
        inner_token = r.out.split("inner ")[1].split()[0]
        self.assertEqual(outer_token, inner_token, r)
        self.assertEqual(self.inspect("it-nest").get("holders", []), [])

    def test_nested_cycle_is_a_deadlock(self):
        # A holds X and, nested, asks for Y; B holds Y and, nested, waits for X.
        a_holds, go = self.path("a_holds"), self.path("go")
        a_inner = ("touch %s; while [ ! -e %s ]; do sleep 0.02; done; "
                   "%s lock it-dl-y -- true; echo \"inner=$?\"" % (a_holds, go, WARDENCTL))
        a = self.spawn("lock", "it-dl-x", "--", "sh", "-c", a_inner)
        self.wait_file(a_holds)
        b_inner = "%s lock it-dl-x -- true; echo \"inner=$?\"" % WARDENCTL
        b = self.spawn("lock", "it-dl-y", "--", "sh", "-c", b_inner)
        self.wait_waiters("it-dl-x", 1)  # B's nested request waits for A's X
        with open(go, "w"):
            pass
        out, err = a.communicate(timeout=30)
        self.assertEqual(a.returncode, 0, (out, err))
        self.assertIn("inner=5", out)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, err)
        self.assertIn("DEADLOCK", lines[0])
        self.assertIn("it-dl-x", lines[0])
        self.assertIn("it-dl-y", lines[0])
        # A released X on exit, so B's nested request got it.
        out, err = b.communicate(timeout=30)
        self.assertEqual(b.returncode, 0, (out, err))
        self.assertIn("inner=0", out)

    def test_kill9_of_the_holder_hands_over_after_the_session_ttl(self):
        ttl = 3.0
        held, granted = self.path("held"), self.path("granted")
        holder = self.spawn("lock", "it-k9", "--session-ttl", "3s", "--", "sh", "-c",
                            "touch %s; exec sleep 60" % held)
        self.wait_file(held)
        waiter = self.spawn("lock", "it-k9", "--", "touch", granted)
        self.wait_waiters("it-k9", 1, procs=[waiter, holder])
        holder.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        holder.wait(timeout=10)
        self.wait_file(granted, timeout=ttl + 10)
        elapsed = time.monotonic() - t0
        # The lease was last renewed at most one heartbeat (1 s) before the
        # kill; it cannot expire before then + TTL.
        self.assertGreaterEqual(elapsed, ttl - 1.2, "granted %.2fs after kill -9" % elapsed)
        self.assertLess(elapsed, ttl + 4.0, "granted %.2fs after kill -9" % elapsed)
        self.assertEqual(waiter.wait(timeout=15), 0)

    def test_session_loss_stops_the_command(self):
        held = self.path("held")
        p = self.spawn("lock", "it-loss", "--", "sh", "-c", "touch %s; exec sleep 60" % held)
        self.wait_file(held)
        holders = self.inspect("it-loss")["holders"]
        session = holders[0]["owner"]["session"]
        # Someone revokes the session: the keep-alive learns it, the command
        # gets SIGTERM, wardenctl warns and exits with the command's status.
        self.assertEqual(self.ctl("session", "revoke", str(session)).rc, 0)
        out, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, (out, err))
        self.assertIn("session %s lost" % session, err)
        self.assertIn("SIGTERM", err)

    def test_hold_ttl_stops_the_command(self):
        # --ttl bounds the hold; wardenctl trusts it until the TTL runs out
        # on its own clock, then stops the command.
        r = self.ctl("lock", "it-ttl", "--ttl", "1s", "--", "sleep", "30")
        self.assertEqual(r.rc, 128 + signal.SIGTERM, r)
        self.assertLess(r.elapsed, 10, r)
        self.assertIn("--ttl ran out", r.err)
        r = self.ctl("lock", "it-ttl", "--wait", "0", "--", "true")
        self.assertEqual(r.rc, 0, r)

    def test_lock_without_command_holds_until_a_signal(self):
        p = Lines(self.spawn("lock", "it-hold"))
        p.wait_out("it-hold ")
        token = int(p.lines()[0].split()[1])
        self.assertEqual(self.inspect("it-hold")["holders"][0]["token"], str(token))
        p.proc.send_signal(signal.SIGINT)
        self.assertEqual(p.proc.wait(timeout=15), 0)
        self.assertEqual(self.inspect("it-hold").get("holders", []), [])

    def test_low_priority_waiter_is_granted_within_its_aging_bound(self):
        log = self.path("log")
        stop = threading.Event()
        counts = {}

        def loader(i):
            n = 0
            while not stop.is_set() and n < 200:
                self.ctl("lock", "it-age", "--priority", "5", "--", "sh", "-c", CRITICAL, "sh",
                         log, "0.3", timeout=60)
                n += 1
            counts[i] = n

        loaders = [threading.Thread(target=loader, args=(i,)) for i in range(3)]
        for t in loaders:
            t.start()
        try:
            self.wait_waiters("it-age", 1)
            t0 = time.monotonic()
            r = self.ctl("lock", "it-age", "--priority", "0", "--", "sh", "-c",
                         'echo "low $WARDEN_FENCING_TOKEN $$" >> "$1"', "sh", log, timeout=60)
            elapsed = time.monotonic() - t0
        finally:
            stop.set()
            for t in loaders:
                t.join(timeout=120)
        self.assertEqual(r.rc, 0, r)
        with open(log) as f:
            lines = f.read().splitlines()
        low = [i for i, l in enumerate(lines) if l.startswith("low ")]
        passed = sum(1 for l in lines[:low[0]] if l.startswith("start "))
        print("\n  priority-0 waiter granted after %.2fs; %d priority-5 grants overall, "
              "%d before it" % (elapsed, sum(1 for l in lines if l.startswith("start")), passed),
              file=sys.stderr)
        # Five levels of aging (5 x 1000 ms), plus the holds already queued
        # ahead of it when it caught up (3 loaders x 0.3 s) and process start-up.
        self.assertLess(elapsed, 5.0 + 3 * 0.3 + 2.5, "low waited %.2fs" % elapsed)
        # It was overtaken by the higher priority while it aged.
        self.assertGreater(passed, 1)

    def test_wardenctl_and_etcd_v3lock_exclude_each_other(self):
        # The same lock path from two APIs with different owners: etcd's
        # v3lock service (owner (lease, "etcd-v3"), the etcd key NAME/<lease>)
        # and wardenctl (its own owner). One queue, one holder at a time.
        log = self.path("log")
        results = {}
        threads = []
        for i in range(3):
            threads.append(threading.Thread(target=self.run_loop, args=(
                ["lock", "it-mixed", "--", "sh", "-c", CRITICAL, "sh", log, "0.1"], 3, results,
                "w%d" % i)))
        v3 = [self.procs.add(subprocess.Popen(
            [sys.executable, V3LOCK_CLIENT, self.eps(), "it-mixed", log, "0.1", "3"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env())) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        for p in v3:
            out, err = p.communicate(timeout=240)
            self.assertEqual(p.returncode, 0, err)
        for k, rcs in sorted(results.items()):
            self.assertEqual([rc for rc, _ in rcs], [0, 0, 0], (k, rcs))
        # v3lock lines carry token 0: check exclusion over all, and that
        # wardenctl's tokens increase among themselves.
        with open(log) as f:
            lines = [l.split() for l in f.read().splitlines() if l.strip()]
        self.assertEqual(len(lines), 36)
        holder = None
        wtokens = []
        for parts in lines:
            if parts[0] == "start":
                self.assertIsNone(holder, "overlap: %r" % lines)
                holder = parts[2]
                if parts[1] != "0":
                    wtokens.append(int(parts[1]))
            else:
                self.assertEqual(holder, parts[2])
                holder = None
        self.assertEqual(wtokens, sorted(wtokens))
        self.assertEqual(len(set(wtokens)), 9)

    def test_v3lock_and_campaign_through_a_follower(self):
        # Regression: a v3 Lock/Campaign forwarded by a follower hung when
        # granted at once and failed ("etcdserver: lock QUEUED") when queued.
        follower = self.c.followers()[0]
        log = self.path("log")
        p = subprocess.run([sys.executable, V3LOCK_CLIENT, follower.endpoint, "it-fw", log, "0",
                            "1"], capture_output=True, text=True, timeout=60, env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        held = self.path("held")
        holder = self.spawn("lock", "it-fw", "--", "sh", "-c", "touch %s; exec sleep 60" % held)
        self.wait_file(held)
        v3 = self.procs.add(subprocess.Popen(
            [sys.executable, V3LOCK_CLIENT, follower.endpoint, "it-fw", log, "0", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env()))
        self.wait_waiters("it-fw", 1, procs=[v3])
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=15)
        out, err = v3.communicate(timeout=30)
        self.assertEqual(v3.returncode, 0, err)
        e = Lines(self.spawn("elect", "it-fw-elect", "via-follower",
                             endpoints=follower.endpoint))
        e.wait_out("via-follower")
        e.proc.send_signal(signal.SIGTERM)
        self.assertEqual(e.proc.wait(timeout=15), 0)

    @unittest.skip("server gap: Debian's etcdctl 3.4 `lock` is clientv3's KV recipe (keys "
                   "NAME/<lease>, wait for lower create revisions), not the v3lock service; "
                   "the lock table does not see those keys, so it and wardenctl do not "
                   "exclude each other (docs/client.md)")
    def test_etcdctl_lock_and_wardenctl_exclude_each_other(self):
        held = self.path("held")
        self.spawn("lock", "it-etcdctl", "--", "sh", "-c", "touch %s; exec sleep 60" % held)
        self.wait_file(held)
        res = self.c.etcdctl("lock", "it-etcdctl", "--", "true", hard_timeout=3)
        self.assertEqual(res.rc, -9, "etcdctl lock got a lock wardenctl holds: %r" % (res,))

    def test_inspect_list_and_watch(self):
        watch = Lines(self.spawn("lock", "watch", "it-w/", "--count", "3"))
        watch.wait_err("watching")
        held = self.path("held")
        holder = self.spawn("lock", "it-w/a", "--shared", "--", "sh", "-c",
                            "touch %s; exec sleep 60" % held)
        self.wait_file(held)
        waiter = self.spawn("lock", "it-w/a", "--priority", "3", "--", "true")
        self.wait_waiters("it-w/a", 1)
        info = self.inspect("it-w/a")
        self.assertEqual(len(info["holders"]), 1)
        self.assertEqual(info["holders"][0]["mode"], "SHARED")
        self.assertEqual(info["waiters"][0]["position"], 1)
        self.assertEqual(info["waiters"][0]["priority"], 3)
        table = self.ctl("lock", "inspect", "it-w/a")
        self.assertEqual(table.rc, 0, table)
        self.assertIn("1 holder(s), 1 waiter(s)", table.out)
        listing = self.ctl("lock", "list", "it-w/")
        self.assertEqual(listing.out.split(), ["it-w/a"])
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=15)
        self.assertEqual(waiter.wait(timeout=15), 0)
        self.assertEqual(watch.proc.wait(timeout=15), 0)
        kinds = [l.split()[0] for l in watch.lines()]
        self.assertEqual(kinds, ["ACQUIRED", "QUEUED", "RELEASED"], watch.lines())

    def test_sessions(self):
        r = self.ctl("session", "grant", "5s")
        self.assertEqual(r.rc, 0, r)
        sid = r.out.split()[1]
        r = self.ctl("session", "ttl", sid, "-w", "json")
        self.assertEqual(r.rc, 0, r)
        info = json.loads(r.out)
        self.assertEqual(info["granted_ttl"], 5)
        self.assertGreater(info["ttl"], 0)
        # A nested wardenctl uses the session given in the environment.
        r = self.ctl("lock", "it-sess", "--", "sh", "-c", "echo $WARDEN_SESSION",
                     env={"WARDEN_SESSION": sid, "WARDEN_OWNER": "me"})
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.strip(), sid)
        self.assertEqual(self.ctl("session", "ttl", sid).rc, 0, "a nested run must not revoke")
        self.assertEqual(self.ctl("session", "revoke", sid).rc, 0)
        r = self.ctl("session", "ttl", sid)
        self.assertNotEqual(r.rc, 0)
        # A lock request of an ended session.
        r = self.ctl("lock", "it-sess", "--", "true",
                     env={"WARDEN_SESSION": sid, "WARDEN_OWNER": "me"})
        self.assertEqual(r.rc, 8, r)
        self.assertIn("SESSION_ENDED", r.err)

    def test_election(self):
        first = Lines(self.spawn("elect", "it-elect", "one"))
        first.wait_out("one")
        observer = Lines(self.spawn("elect", "-l", "it-elect"))
        observer.wait_out("one")
        second = Lines(self.spawn("elect", "it-elect", "two"))
        wait_until(lambda: len(self.inspect("it-elect").get("waiters", [])) == 1, 15,
                   "the second candidate to queue")
        self.assertEqual(second.lines(), [])
        first.proc.send_signal(signal.SIGTERM)  # resigns
        self.assertEqual(first.proc.wait(timeout=15), 0)
        second.wait_out("two")
        observer.wait_out("two")
        second.proc.send_signal(signal.SIGINT)
        self.assertEqual(second.proc.wait(timeout=15), 0)
        observer.proc.send_signal(signal.SIGTERM)
        self.assertEqual(observer.proc.wait(timeout=15), 0)

    def test_dead_first_endpoint_fails_over(self):
        dead = "127.0.0.1:%d" % cluster.free_port()
        r = self.ctl("lock", "it-dead", "--", "true", endpoints=dead + "," + self.eps())
        self.assertEqual(r.rc, 0, r)
        self.assertLess(r.elapsed, 10, r)

    def test_no_cluster_reachable(self):
        port = cluster.free_port()
        r = self.ctl("lock", "it-none", "--", "true", endpoints="127.0.0.1:%d" % port, timeout=30)
        self.assertEqual(r.rc, 7, r)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r)
        self.assertIn("UNAVAILABLE", r.err)
        r = self.ctl("lock", "it-none", "--wait", "bogus", "--", "true")
        self.assertEqual(r.rc, 2, r)

    def test_cpp_client_api(self):
        if not os.access(API_TEST, os.X_OK):
            raise AssertionError("client_api_test not found: %s" % API_TEST)
        p = subprocess.run([API_TEST], capture_output=True, text=True, timeout=300,
                           env=self.env({"WARDEN_ENDPOINTS": self.eps()}))
        self.assertEqual(p.returncode, 0, p.stdout[-6000:] + p.stderr[-2000:])
        self.assertIn("PASSED", p.stdout)

    def test_uncontended_latency_of_the_cpp_client(self):
        if not os.access(BENCH, os.X_OK):
            raise AssertionError("bench binary not found: %s" % BENCH)
        cycles = os.environ.get("WARDEN_BENCH_CYCLES", "2000")
        p = subprocess.run([BENCH, "--endpoints", self.eps(), "--cycles", cycles],
                           capture_output=True, text=True, timeout=300, env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        print("\n  " + p.stdout.strip(), file=sys.stderr)
        fields = dict(kv.split("=") for kv in p.stdout.split()[2:])
        self.assertLess(float(fields["p99"].rstrip("us")), 500000)


class LeaderKillTest(WardenctlBase):
    """kill -9 of the leader while wardenctl processes contend."""

    def setUp(self):
        ClusterTestCase.setUp(self)
        self.c = self.new_cluster(size=3, name_prefix="wk")
        self.c.start()
        self.prepare()

    def test_contention_survives_kill9_of_the_leader(self):
        log = self.path("log")
        results = {}
        threads = [threading.Thread(target=self.run_loop, args=(
            ["lock", "it-lk", "--", "sh", "-c", CRITICAL, "sh", log, "0.1"], 5, results, i))
            for i in range(4)]
        for t in threads:
            t.start()

        def started():
            try:
                with open(log) as f:
                    return f.read().count("start") >= 4
            except OSError:
                return False
        wait_until(started, 30, "a few grants")
        leader = self.c.leader()
        self.c.kill_member(leader)
        for t in threads:
            t.join(timeout=240)
        for i in range(4):
            self.assertEqual([rc for rc, _ in results[i]], [0] * 5, results[i])
        tokens = check_log(self, log, expected_pairs=20)
        print("\n  20 grants across a leader kill; tokens %d..%d" % (tokens[0], tokens[-1]),
              file=sys.stderr)


if __name__ == "__main__":
    cluster.main()

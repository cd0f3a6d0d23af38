"""A small harness that runs real warden processes for integration tests.

Standard library only; run with Debian's /usr/bin/python3.

The server binary comes from, in order: a `--warden PATH` argument (when a
test file is run as a script, see main()), the WARDEN_BIN environment
variable, or <repo>/build/warden.

What it does:

* picks free ports below the ephemeral range (checked by binding; never the ports
  `make run` uses) for the client and peer URL of each member;
* starts N members with data directories under one tempfile.mkdtemp() root,
  keeps their Popen objects (PIDs) and signals only those PIDs -- never
  pkill/killall; stop (SIGTERM, then SIGKILL after a deadline), kill -9, and
  restart with the same data directory and ports;
* runs etcdctl (ETCDCTL_API=3, --endpoints, --command-timeout) and returns
  (rc, stdout, stderr) with the elapsed time attached;
* waits for a leader by polling `etcdctl endpoint status -w json` with a
  deadline, finds the leader, waits for a member to reach a revision;
* describe(): the tail of every member's log and the last etcdctl commands,
  for failure messages (ClusterTestCase adds it to every failing test).

Every wait polls an observable condition with a deadline and a bounded number
of iterations. Processes and temporary directories are cleaned up in
close()/tearDown, and again at interpreter exit (atexit); each server also
gets PR_SET_PDEATHSIG=SIGKILL so that it dies if the test runner is killed
(e.g. by a ctest timeout). Set WARDEN_ITEST_KEEP=1 to keep the data
directories and logs of failed runs for inspection.
"""

import atexit
import base64
import collections
import ctypes
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"

# Ports `make run` (scripts/run-cluster) and a default etcd use: never handed out.
RESERVED_PORTS = frozenset({2379, 2380, 22379, 22380, 32379, 32380, 4001, 7001})

# Server environment: no WARDEN_* (they would override nothing we pass, but
# could add settings), no proxies (gRPC would route 127.0.0.1 through them).
_SCRUB_PREFIXES = ("WARDEN_", "ETCDCTL_", "ETCD_")
_SCRUB_NAMES = {"http_proxy", "https_proxy", "grpc_proxy", "all_proxy", "no_proxy",
                "no_grpc_proxy"}


def _clean_env(extra=None):
    env = {}
    for k, v in os.environ.items():
        if k.startswith(_SCRUB_PREFIXES) or k.lower() in _SCRUB_NAMES:
            continue
        env[k] = v
    if extra:
        env.update(extra)
    return env


# ---------------------------------------------------------------------------
# The binary under test.


def warden_binary():
    """The warden binary: WARDEN_BIN (set by --warden in script mode), else build/warden."""
    path = os.environ.get("WARDEN_BIN") or os.path.join(REPO_ROOT, "build", "warden")
    return os.path.abspath(path)


def require_binaries():
    """Checks warden and etcdctl exist. A missing binary is an error, never a skip."""
    path = warden_binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            "warden binary not found or not executable: %s (set WARDEN_BIN or pass --warden)" % path)
    if not (os.path.isfile(ETCDCTL) and os.access(ETCDCTL, os.X_OK)):
        raise RuntimeError("etcdctl not found (Debian package etcd-client)")
    return path


def main():
    """Entry point for `python3 test_x.py [--warden PATH] [unittest args]`."""
    argv = [sys.argv[0]]
    args = sys.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--warden" and i + 1 < len(args):
            os.environ["WARDEN_BIN"] = args[i + 1]
            i += 2
            continue
        if a.startswith("--warden="):
            os.environ["WARDEN_BIN"] = a.split("=", 1)[1]
            i += 1
            continue
        argv.append(a)
        i += 1
    unittest.main(module="__main__", argv=argv)


# ---------------------------------------------------------------------------
# Small utilities.


class WaitTimeout(AssertionError):
    """A polled condition did not become true before its deadline."""


def wait_until(condition, timeout, what, interval=0.05, max_interval=0.5):
    """Polls condition() until it returns a truthy value, which is returned.

    Bounded in time (timeout seconds) and in count (the interval grows
    geometrically up to max_interval, and the loop stops after a number of
    iterations derived from the timeout). Raises WaitTimeout naming `what` and
    the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    max_iterations = int(timeout / interval) + 10
    last = None
    for _ in range(max_iterations):
        try:
            value = condition()
            if value:
                return value
            last = value
        except WaitTimeout:
            raise
        except Exception as e:  # noqa: BLE001 - reported in the timeout message
            last = "%s: %s" % (type(e).__name__, e)
        if time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, max_interval)
    raise WaitTimeout("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


_port_lock = threading.Lock()
_handed_out_ports = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port that was free a moment ago, outside the kernel's ephemeral range.

    Ports from bind(0) come from the ephemeral range, where outgoing client
    connections also take their source ports: a member restarted on such a
    port can find it held by a connection in TIME-WAIT and fail to listen.
    So pick below the range (and never a port `make run` uses), checking that
    it binds now.
    """
    lo, hi = _ephemeral_range()
    top = min(lo, 32768) - 1
    rng = random.Random(os.getpid() ^ int(time.monotonic() * 1e6))
    with _port_lock:
        for _ in range(200):
            port = rng.randint(20000, top)
            if port in RESERVED_PORTS or port in _handed_out_ports or lo <= port <= hi:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                s.close()
            _handed_out_ports.add(port)
            return port
    raise RuntimeError("could not find a free port in 200 tries")


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s).decode()


class CmdResult(tuple):
    """(rc, stdout, stderr), with .rc .out .err .elapsed .cmd attributes."""

    def __new__(cls, rc, out, err, elapsed, cmd):
        self = super().__new__(cls, (rc, out, err))
        self.rc, self.out, self.err, self.elapsed, self.cmd = rc, out, err, elapsed, cmd
        return self

    def __repr__(self):
        return "CmdResult(rc=%r, elapsed=%.2fs, cmd=%r, out=%r, err=%r)" % (
            self.rc, self.elapsed, " ".join(self.cmd), _clip(self.out), _clip(self.err))


def _clip(s, n=800):
    return s if len(s) <= n else s[:n] + "...[%d more chars]" % (len(s) - n)


# ---------------------------------------------------------------------------
# Process bookkeeping shared by every cluster, for atexit cleanup.

_live_lock = threading.Lock()
_live_procs = {}  # pid -> Popen of every server we started and have not reaped
_temp_roots = set()

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: only an already-resolved libc call.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _atexit_cleanup():
    with _live_lock:
        procs = list(_live_procs.values())
        _live_procs.clear()
    for p in procs:
        try:
            p.kill()  # by our own Popen, i.e. by PID
        except OSError:
            pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if os.environ.get("WARDEN_ITEST_KEEP") != "1":
        for root in list(_temp_roots):
            shutil.rmtree(root, ignore_errors=True)


atexit.register(_atexit_cleanup)


# ---------------------------------------------------------------------------
# Members and clusters.


class Member:
    def __init__(self, cluster, name, client_port, peer_port, data_dir, log_path):
        self.cluster = cluster
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.starts = 0
        self.id = None  # member id (int), learned from the first status answer
        self.extra_args = []
        self.stop_timed_out = False

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.client_port

    @property
    def client_url(self):
        return "http://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def wal_dir(self):
        return os.path.join(self.data_dir, "wal")

    def wal_segments(self):
        d = self.wal_dir()
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".wal"))

    def log_text(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __repr__(self):
        return "Member(%s, client=%d, peer=%d, pid=%s, id=%s)" % (
            self.name, self.client_port, self.peer_port, self.pid,
            "%x" % self.id if self.id else None)


class Cluster:
    """N warden members on 127.0.0.1. Use as a context manager or call close()."""

    def __init__(self, size=3, binary=None, heartbeat_ms=100, election_ms=1000,
                 extra_args=(), name_prefix="m", token=None):
        self.binary = binary or warden_binary()
        self.size = size
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.extra_args = list(extra_args)
        self.name_prefix = name_prefix
        self.token = token
        self.root = tempfile.mkdtemp(prefix="warden-itest-")
        _temp_roots.add(self.root)
        self.members = []
        self.history = collections.deque(maxlen=40)
        self.last_poll = None
        self._history_lock = threading.Lock()
        self._make_members()

    # -- layout --------------------------------------------------------------

    def _make_members(self):
        self.members = []
        for i in range(self.size):
            name = "%s%d" % (self.name_prefix, i)
            self.members.append(Member(
                self, name, free_port(), free_port(),
                os.path.join(self.root, name + ".data"),
                os.path.join(self.root, name + ".log")))

    def new_member(self, name):
        """A member for this cluster that is not started (for MemberAdd tests):
        it joins initial_cluster() from now on."""
        m = Member(self, name, free_port(), free_port(),
                   os.path.join(self.root, name + ".data"),
                   os.path.join(self.root, name + ".log"))
        self.members.append(m)
        return m

    def initial_cluster(self):
        return ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members)

    def member_args(self, m, initial_state="new"):
        args = [
            "--name", m.name,
            "--data-dir", m.data_dir,
            "--listen-client-urls", m.client_url,
            "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url,
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", self.initial_cluster(),
            "--initial-cluster-state", initial_state,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
        ]
        if self.token:
            args += ["--initial-cluster-token", self.token]
        return args + self.extra_args + m.extra_args

    # -- processes -----------------------------------------------------------

    def start_member(self, m, extra_args=None, initial_state="new"):
        """Starts (or restarts) member m with its data directory and ports."""
        if m.running:
            raise RuntimeError("%s is already running (pid %d)" % (m.name, m.pid))
        if extra_args is not None:
            m.extra_args = list(extra_args)
        cmd = [self.binary] + self.member_args(m, initial_state)
        m.starts += 1
        log = open(m.log_path, "ab")
        try:
            log.write(("\n----- harness: start #%d of %s at %s: %s\n" % (
                m.starts, m.name, time.strftime("%H:%M:%S"), " ".join(cmd))).encode())
            log.flush()
            m.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.root, env=_clean_env(), preexec_fn=_die_with_parent)
        finally:
            log.close()
        with _live_lock:
            _live_procs[m.proc.pid] = m.proc
        return m

    def _reap(self, m, timeout):
        try:
            rc = m.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        with _live_lock:
            _live_procs.pop(m.proc.pid, None)
        return rc

    def _note(self, m, what):
        try:
            with open(m.log_path, "ab") as log:
                log.write(("----- harness: %s %s (pid %s) at %s\n" % (
                    what, m.name, m.pid, time.strftime("%H:%M:%S"))).encode())
        except OSError:
            pass

    def kill_member(self, m):
        """kill -9 (by PID), then reap. Returns the exit status (negative signal)."""
        if not m.running:
            return self._reap(m, 10) if m.proc is not None else None
        self._note(m, "SIGKILL")
        m.proc.send_signal(signal.SIGKILL)
        rc = self._reap(m, 10)
        if rc is None:
            raise RuntimeError("%s (pid %d) survived SIGKILL for 10s" % (m.name, m.pid))
        return rc

    def kill_members(self, members):
        """kill -9 several members at once (by PID), then reap them all."""
        for m in members:
            if m.running:
                self._note(m, "SIGKILL")
                m.proc.send_signal(signal.SIGKILL)
        return [self.kill_member(m) if m.proc is not None and m.proc.returncode is None
                else self._reap(m, 10) for m in members]

    def stop_member(self, m, timeout=10.0):
        """SIGTERM (by PID); SIGKILL if it has not exited after `timeout` s."""
        return self.stop_members([m], timeout)[0]

    def stop_members(self, members, timeout=10.0):
        """Stops several members in parallel. Returns their exit statuses."""
        for m in members:
            if m.running:
                self._note(m, "SIGTERM")
                m.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        rcs = []
        for m in members:
            if m.proc is None:
                rcs.append(None)
                continue
            rc = self._reap(m, max(0.0, deadline - time.monotonic()))
            if rc is None:
                self._note(m, "did not stop after SIGTERM within %.0fs; SIGKILL" % timeout)
                m.proc.send_signal(signal.SIGKILL)
                rc = self._reap(m, 10)
                m.stop_timed_out = True
            rcs.append(rc)
        return rcs

    def restart_member(self, m, wait_ready=True, timeout=20):
        if m.running:
            self.stop_member(m)
        self.start_member(m)
        if wait_ready:
            self.wait_member_ready(m, timeout)
        return m

    def start(self, wait_leader=True, timeout=20, attempts=3):
        """Starts every member; retries with fresh ports if one was taken meanwhile."""
        for attempt in range(attempts):
            for m in self.members:
                self.start_member(m)
            if not wait_leader:
                return self
            try:
                self.wait_listening(self.members, timeout=timeout)
                self.wait_leader(timeout=timeout)
                return self
            except WaitTimeout:
                taken = [m for m in self.members if not m.running and
                         "port taken" in m.log_text()]
                if not taken or attempt == attempts - 1:
                    raise WaitTimeout("cluster did not elect a leader:\n" + self.describe())
                # A port was grabbed between free_port() and bind: start over.
                self.stop_members(self.members)
                for m in self.members:
                    shutil.rmtree(m.data_dir, ignore_errors=True)
                self._make_members()
        return self

    def stop(self):
        return self.stop_members([m for m in self.members if m.proc is not None])

    def close(self, keep=False):
        """Stops every member and removes the temporary root (unless keep)."""
        try:
            self.stop()
        finally:
            for m in self.members:  # any survivor, by PID
                if m.running:
                    m.proc.kill()
                    self._reap(m, 5)
            if not keep and os.environ.get("WARDEN_ITEST_KEEP") != "1":
                shutil.rmtree(self.root, ignore_errors=True)
                _temp_roots.discard(self.root)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(keep=exc[0] is not None and os.environ.get("WARDEN_ITEST_KEEP") == "1")

    def running_members(self):
        return [m for m in self.members if m.running]

    # -- etcdctl ---------------------------------------------------------------

    def etcdctl(self, *args, endpoints=None, timeout=5.0, dial_timeout=2.0, input=None,
                hard_timeout=None, record=True):
        """Runs etcdctl; returns CmdResult (rc, stdout, stderr).

        endpoints: Members or "host:port" strings; default every running member.
        timeout: --command-timeout in seconds. The process is killed after
        hard_timeout (default timeout + dial_timeout + 10) and rc is -9.
        """
        if endpoints is None:
            endpoints = self.running_members() or self.members
        if isinstance(endpoints, (Member, str)):
            endpoints = [endpoints]
        eps = ",".join(e.endpoint if isinstance(e, Member) else e for e in endpoints)
        cmd = [ETCDCTL, "--endpoints=" + eps, "--command-timeout=%gs" % timeout,
               "--dial-timeout=%gs" % dial_timeout] + [str(a) for a in args]
        if hard_timeout is None:
            hard_timeout = timeout + dial_timeout + 10
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, input=input, capture_output=True, text=True,
                               timeout=hard_timeout, env=_clean_env({"ETCDCTL_API": "3"}),
                               cwd=self.root)
            res = CmdResult(p.returncode, p.stdout, p.stderr, time.monotonic() - t0, cmd)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            res = CmdResult(-9, out, err + "\n[harness: killed after %.0fs]" % hard_timeout,
                            time.monotonic() - t0, cmd)
        with self._history_lock:
            if record:
                self.history.append(res)
            else:
                self.last_poll = res
        return res

    def etcdctl_ok(self, *args, **kw):
        """etcdctl that must succeed; returns stdout."""
        res = self.etcdctl(*args, **kw)
        if res.rc != 0:
            raise AssertionError("etcdctl failed: %r" % (res,))
        return res.out

    def etcdctl_json(self, *args, **kw):
        """etcdctl -w json that must succeed; returns the parsed output."""
        out = self.etcdctl_ok(*(list(args) + ["-w", "json"]), **kw)
        return json.loads(out)

    # -- status, leader, revisions -------------------------------------------

    def statuses(self, members=None, timeout=1.0):
        """{member: Status dict} for those members that answered."""
        members = members if members is not None else self.running_members()
        if not members:
            return {}
        res = self.etcdctl("endpoint", "status", "-w", "json", endpoints=members,
                           timeout=timeout, dial_timeout=timeout, record=False)
        by_ep = {m.endpoint: m for m in members}
        out = {}
        try:
            items = json.loads(res.out) if res.out.strip() else []
        except ValueError:
            return out
        for item in items:
            m = by_ep.get(item.get("Endpoint"))
            if m is None:
                continue
            st = item["Status"]
            m.id = st["header"]["member_id"]
            out[m] = st
        return out

    def member_by_id(self, member_id):
        for m in self.members:
            if m.id == member_id:
                return m
        return None

    def _agreed_leader(self, members):
        st = self.statuses(members)
        if len(st) != len(members):
            return None
        leaders = {s.get("leader", 0) for s in st.values()}
        if 0 in leaders:
            return None
        if len(leaders) != 1:
            return None
        leader = self.member_by_id(leaders.pop())
        if leader is None or leader not in members or not leader.running:
            return None
        return leader

    def wait_leader(self, timeout=15, members=None):
        """Waits until every given running member reports the same leader, one of them."""
        def check():
            ms = members if members is not None else self.running_members()
            ms = [m for m in ms if m.running]
            if not ms:
                raise WaitTimeout("no member is running:\n" + self.describe())
            return self._agreed_leader(ms)
        return wait_until(check, timeout, "an agreed leader among %s" % (
            [m.name for m in (members or self.running_members())]))

    def leader(self, timeout=10):
        return self.wait_leader(timeout=timeout)

    def followers(self, leader=None):
        leader = leader or self.leader()
        return [m for m in self.running_members() if m is not leader]

    def revision(self, m=None, serializable=False):
        """The header revision that member m (default: any) reports for a read."""
        args = ["get", "warden-itest-no-such-key", "-w", "json"]
        if serializable:
            args.append("--consistency=s")
        res = self.etcdctl(*args, endpoints=m)
        if res.rc != 0:
            raise AssertionError("cannot read the revision: %r" % (res,))
        return json.loads(res.out)["header"]["revision"]

    def wait_revision(self, m, rev, timeout=15):
        """Waits until member m serves revision >= rev on a serializable read."""
        def check():
            r = self.revision(m, serializable=True)
            return r if r >= rev else None
        return wait_until(check, timeout, "%s to reach revision %d" % (m.name, rev))

    def wait_listening(self, members, timeout=10):
        """Waits until each member accepts TCP connections on its client port
        (or has exited, which the caller's next wait reports)."""
        def accepting(m):
            if not m.running:
                return True
            try:
                with socket.create_connection(("127.0.0.1", m.client_port), timeout=0.2):
                    return True
            except OSError:
                return False
        wait_until(lambda: all(accepting(m) for m in members), timeout,
                   "client ports of %s to accept connections" % [m.name for m in members],
                   interval=0.02, max_interval=0.1)

    def wait_member_ready(self, m, timeout=20):
        """Waits until m is running, answers Status and knows a leader."""
        self.wait_listening([m], timeout)

        def check():
            if not m.running:
                raise WaitTimeout("%s exited with status %s" % (m.name, m.returncode))
            st = self.statuses([m]).get(m)
            return st is not None and st.get("leader", 0) != 0
        return wait_until(check, timeout, "%s to answer with a leader" % m.name)

    # -- diagnostics -----------------------------------------------------------

    def describe(self, tail=60):
        parts = ["cluster root: %s, binary: %s" % (self.root, self.binary)]
        for m in self.members:
            lines = m.log_text().splitlines()
            parts.append("=== %r running=%s rc=%s; last %d of %d log lines:" % (
                m, m.running, m.returncode, min(tail, len(lines)), len(lines)))
            parts.extend("    " + line for line in lines[-tail:])
        with self._history_lock:
            hist = list(self.history)[-12:]
        parts.append("=== last %d etcdctl commands:" % len(hist))
        for r in hist:
            parts.append("    " + repr(r))
        if self.last_poll is not None:
            parts.append("=== last status poll:\n    " + repr(self.last_poll))
        return "\n".join(parts)


# ---------------------------------------------------------------------------
# unittest glue.


def _with_diagnostics(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except unittest.SkipTest:
            raise
        except AssertionError as e:
            extra = self._diagnostics()
            if extra:
                e.args = ((str(e.args[0]) if e.args else "") + "\n" + extra,) + e.args[1:]
            raise
        except Exception as e:
            extra = self._diagnostics()
            if not extra:
                raise
            raise AssertionError("%s: %s\n%s" % (type(e).__name__, e, extra)) from e
    return wrapper


class ClusterTestCase(unittest.TestCase):
    """A TestCase whose failures carry member logs and recent etcdctl commands.

    Subclasses register clusters with self.track(cluster) (per test) or
    cls.track_class(cluster) (per class); tracked clusters are closed in
    tearDown / tearDownClass even when the test fails.
    """

    _class_clusters = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for name, value in list(vars(cls).items()):
            if name.startswith("test") and callable(value):
                setattr(cls, name, _with_diagnostics(value))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_binaries()
        cls._class_clusters = []

    @classmethod
    def tearDownClass(cls):
        for c in cls._class_clusters:
            c.close()
        cls._class_clusters = []
        super().tearDownClass()

    @classmethod
    def track_class(cls, cluster):
        cls._class_clusters.append(cluster)
        return cluster

    def setUp(self):
        super().setUp()
        self._clusters = []

    def track(self, cluster):
        self._clusters.append(cluster)
        self.addCleanup(cluster.close)
        return cluster

    def new_cluster(self, **kw):
        return self.track(Cluster(**kw))

    def _diagnostics(self):
        clusters = list(getattr(self, "_clusters", [])) + list(type(self)._class_clusters)
        if not clusters:
            return ""
        return "\n".join("--- diagnostics ---\n" + c.describe() for c in clusters)


def is_unimplemented(res):
    """True if an etcdctl result shows the server answered UNIMPLEMENTED."""
    text = res.out + res.err
    return "code = Unimplemented" in text or "Unimplemented desc" in text

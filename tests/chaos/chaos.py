#!/usr/bin/python3
"""Warden's chaos harness: real warden processes, faults, checked histories.

    chaos.py run --nemesis NAME --workload NAME [--seed S] [--seconds T] [--nodes 3|5]
                 [--inject-bug BUG] [--expect ok|violation] [--net auto|netns|loopback] [--keep]
    chaos.py smoke                 # the ctest `chaos_smoke` (exit 77 = skipped)
    chaos.py diskwatch             # regression: a member whose disk fails ends its watch streams
    chaos.py matrix [--minutes M]  # every nemesis x workload; prints the table

Run with Debian's /usr/bin/python3 as root (for network namespaces). See
docs/chaos.md. Each run writes a directory (default build/chaos/<name>):
history.jsonl, schedule.json, nemesis.jsonl, logs/<member>.log, verdict.txt,
summary.json. A run that does not end as expected is kept, and its seed and
the command that replays it are printed.
"""

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

# gRPC's fork handlers wait for its thread pool to idle before any fork();
# with client threads in calls that can take forever. Every child this
# process forks execs at once and never touches gRPC, so they are not needed.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "0"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import cluster as itest  # noqa: E402  (free ports, PDEATHSIG, clean environment)
import net  # noqa: E402
import nemesis as nem  # noqa: E402
import workloads  # noqa: E402

import grpc  # noqa: E402
from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc  # noqa: E402

SKIP_RC = 77
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
SLOW_FSYNC_LIB = "libwchaos_slow_fsync.so"  # in the build directory (tests/chaos/slow_fsync.cc)
HEARTBEAT_MS = 100
ELECTION_MS = 1000

for _v in ("http_proxy", "https_proxy", "grpc_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
    os.environ.pop(_v, None)


def log(msg):
    print(msg, flush=True)


def build_dir():
    return os.environ.get("WARDEN_BUILD") or os.path.join(REPO, "build")


def binary(name):
    path = os.path.join(build_dir(), name)
    if not os.access(path, os.X_OK):
        raise SystemExit("chaos: %s not found; build it (cmake --build build --target %s)" % (path, name))
    return path


# ---------------------------------------------------------------------------
# Members.


class Member:
    def __init__(self, index, name, data_dir, log_path):
        self.index = index
        self.name = name
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.paused = False
        self.member_id = None
        self.clock_file = None
        self.fsync_delay_file = None
        self.expected_exit = False  # the harness killed it (or is stopping everything)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


class ChaosCluster:
    """N warden members on a network; signals only its own PIDs."""

    def __init__(self, network, run_dir, size, bugs=(), faketime=False, tmpfs=False,
                 snapshot_count=None):
        self.net = network
        self.snapshot_count = snapshot_count
        self.size = size
        self.bugs = list(bugs)
        self.run_dir = run_dir
        self.faketime = faketime and os.path.exists(FAKETIME_LIB)
        self.tmpfs = tmpfs and network.mode == "netns"
        shim = os.path.join(build_dir(), SLOW_FSYNC_LIB)
        self.slow_fsync = shim if tmpfs and os.path.exists(shim) else None
        self.binary = binary("warden")
        os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
        os.makedirs(os.path.join(run_dir, "data"), exist_ok=True)
        self.members = [Member(i, "n%d" % i, os.path.join(run_dir, "data", "n%d" % i),
                               os.path.join(run_dir, "logs", "n%d.log" % i)) for i in range(size)]
        self.lock = threading.RLock()
        self.restarts = 0
        self.crashes = []  # members that exited without the harness killing them
        self.status_stubs = {}
        # Every member is spawned from this one thread, alive for the whole
        # run: the death signal (setpriv --pdeathsig) fires when the spawning
        # *thread* exits, so a member started from the nemesis thread would
        # die with it.
        self.spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")

    def setup_disks(self):
        for m in self.members:
            os.makedirs(m.data_dir, exist_ok=True)
            if self.tmpfs:
                # A small filesystem of its own, so that one member's disk can be filled.
                self.net.add_mount(m.data_dir)
                net._run(["mount", "-t", "tmpfs", "-o", "size=160m", "wchaos-" + m.name, m.data_dir])
                os.makedirs(os.path.join(m.data_dir, "d"), exist_ok=True)
            if self.slow_fsync:
                m.fsync_delay_file = os.path.join(self.run_dir, "fsync-delay-%s" % m.name)
                with open(m.fsync_delay_file, "w") as f:
                    f.write("0\n")
            if self.faketime:
                m.clock_file = os.path.join(self.run_dir, "clock-%s" % m.name)
                with open(m.clock_file, "w") as f:
                    f.write("+0\n")

    def teardown_disks(self):
        if self.tmpfs:
            for m in self.members:
                net._run(["umount", "-l", m.data_dir], check=False)

    def _dir(self, m):
        return os.path.join(m.data_dir, "d") if self.tmpfs else m.data_dir

    def args(self, m):
        cluster = ",".join("%s=%s" % (x.name, self.net.advertise_peer_url(x.index)) for x in self.members)
        a = ["--name", m.name, "--data-dir", self._dir(m),
             "--listen-client-urls", self.net.client_url(m.index),
             "--advertise-client-urls", self.net.client_url(m.index),
             "--listen-peer-urls", self.net.listen_peer_url(m.index),
             "--initial-advertise-peer-urls", self.net.advertise_peer_url(m.index),
             "--initial-cluster", cluster, "--initial-cluster-state", "new",
             "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS)]
        if self.snapshot_count:
            a += ["--snapshot-count", str(self.snapshot_count)]
        elif self.tmpfs:
            a += ["--snapshot-count", "300"]
        for b in self.bugs:
            a += ["--inject-bug", b]
        return a

    def start(self, i):
        self.spawner.submit(self._start, i).result(timeout=30)

    def _start(self, i):
        m = self.members[i]
        if m.running:
            return
        env = itest._clean_env()
        if self.faketime:
            env.update({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": m.clock_file,
                        "FAKETIME_NO_CACHE": "1"})
        if self.slow_fsync:
            env.update({"LD_PRELOAD": self.slow_fsync, "WARDEN_CHAOS_FSYNC_DELAY_FILE": m.fsync_delay_file})
        # setpriv and `ip netns exec` exec in place, so the PID is warden's.
        # No preexec_fn: Popen then uses vfork+exec, and gRPC's fork
        # handlers (which deadlock with client threads in calls) never run.
        cmd = ["setpriv", "--pdeathsig", "KILL", "--"] + self.net.wrap_command(
            i, [self.binary] + self.args(m))
        with open(m.log_path, "ab") as f:
            f.write(("----- chaos: start %s at %.3f: %s\n" % (m.name, time.monotonic(), " ".join(cmd))).encode())
            f.flush()
            m.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                      env=env, start_new_session=True)
        m.paused = False
        m.expected_exit = False
        with itest._live_lock:
            itest._live_procs[m.proc.pid] = m.proc

    def _note(self, m, what):
        with open(m.log_path, "ab") as f:
            f.write(("----- chaos: %s %s (pid %s) at %.3f\n" % (
                what, m.name, m.proc.pid if m.proc else None, time.monotonic())).encode())

    def kill(self, indices):
        with self.lock:
            ms = [self.members[i] for i in indices if self.members[i].running]
            self.check_crashes()
            for m in ms:
                self._note(m, "SIGKILL")
                m.expected_exit = True
                m.proc.send_signal(signal.SIGKILL)  # by PID, through our own Popen
            for m in ms:
                m.proc.wait(timeout=10)
                m.paused = False
                with itest._live_lock:
                    itest._live_procs.pop(m.proc.pid, None)

    def check_crashes(self):
        """Records every member that exited on its own (a crash: a signal,
        an abort, an exit) since the last look. Returns the new records."""
        new = []
        with self.lock:
            for m in self.members:
                if m.proc is None or m.expected_exit or m.proc.poll() is None:
                    continue
                m.expected_exit = True  # recorded once
                rc = m.proc.returncode
                what = "signal %s" % signal.Signals(-rc).name if rc < 0 else "exit status %d" % rc
                rec = {"member": m.name, "pid": m.proc.pid, "returncode": rc, "what": what,
                       "noticed": round(time.monotonic(), 3)}
                self._note(m, "exited by itself (%s), noticed" % what)
                self.crashes.append(rec)
                new.append(rec)
        return new

    def restart(self, indices):
        with self.lock:
            self.check_crashes()
            for i in indices:
                if not self.members[i].running:
                    self.restarts += 1
                    self.start(i)

    def pause(self, indices):
        with self.lock:
            for i in indices:
                m = self.members[i]
                if m.running and not m.paused:
                    self._note(m, "SIGSTOP")
                    m.proc.send_signal(signal.SIGSTOP)
                    m.paused = True

    def resume(self, indices):
        with self.lock:
            for i in indices:
                m = self.members[i]
                if m.running and m.paused:
                    self._note(m, "SIGCONT")
                    m.proc.send_signal(signal.SIGCONT)
                    m.paused = False

    def set_fsync_delay(self, i, ms):
        m = self.members[i]
        self._note(m, "fsync delay %d ms" % ms)
        tmp = m.fsync_delay_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % ms)
        os.replace(tmp, m.fsync_delay_file)

    def set_clock_offset(self, i, seconds):
        m = self.members[i]
        self._note(m, "clock offset %+ds" % seconds)
        tmp = m.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+d\n" % seconds)
        os.replace(tmp, m.clock_file)

    def fill_disk(self, i):
        m = self.members[i]
        self._note(m, "disk full")
        path = os.path.join(m.data_dir, "filler")
        written = 0
        chunk = b"\0" * (1 << 20)
        f = open(path, "wb", buffering=0)
        try:
            for _ in range(400):  # bounded: the tmpfs is 160 MiB
                try:
                    written += f.write(chunk)
                except OSError:  # ENOSPC: full
                    break
        finally:
            try:
                f.close()
            except OSError:
                pass
        return written

    def alarms(self, i):
        """The alarm names member i reports (Maintenance.Alarm GET), or None."""
        try:
            self.status(i)  # makes the stub
            r = self.status_stubs[i].Alarm(rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.GET),
                                           timeout=1.0)
        except grpc.RpcError:
            return None
        return [rpc_pb2.AlarmType.Name(a.alarm) for a in r.alarms]

    def free_disk(self, i):
        """Frees the space; a member that raised NOSPACE (warden keeps refusing
        until restarted, as etcd does until the alarm is disarmed) is
        restarted, as an operator would. Returns what happened."""
        m = self.members[i]
        alarms = self.alarms(i) if m.running else None
        try:
            os.unlink(os.path.join(m.data_dir, "filler"))
        except OSError:
            pass
        self._note(m, "disk freed (alarms %s)" % alarms)
        if alarms:
            self.kill([i])
        died = not m.running
        self.restart([i])
        return "alarms %s%s" % (alarms, "; restarted" if died else "")

    def heal_all(self):
        self.resume(range(self.size))
        if self.faketime:
            for i in range(self.size):
                self.set_clock_offset(i, 0)
        if self.tmpfs:
            for i in range(self.size):
                try:
                    os.unlink(os.path.join(self.members[i].data_dir, "filler"))
                except OSError:
                    pass
        if self.slow_fsync:
            for i in range(self.size):
                self.set_fsync_delay(i, 0)
        if self.tmpfs:
            # A member that raised NOSPACE stays out of Raft until restarted.
            for i in range(self.size):
                if self.members[i].running and self.alarms(i):
                    self._note(self.members[i], "NOSPACE at the end: restart")
                    self.kill([i])
        self.restart(range(self.size))

    def stop_all(self):
        with self.lock:
            self.check_crashes()
            for m in self.members:
                m.expected_exit = True
                if m.running:
                    if m.paused:
                        m.proc.send_signal(signal.SIGCONT)
                    m.proc.send_signal(signal.SIGKILL)
            for m in self.members:
                if m.proc is not None:
                    try:
                        m.proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
                    with itest._live_lock:
                        itest._live_procs.pop(m.proc.pid, None)
        self.spawner.shutdown(wait=True)

    # -- status ---------------------------------------------------------------

    def status(self, i, timeout=0.5):
        if i not in self.status_stubs:
            ch = grpc.insecure_channel(self.net.client_target(i), options=workloads.channel_options())
            self.status_stubs[i] = rpc_pb2_grpc.MaintenanceStub(ch)
        r = self.status_stubs[i].Status(rpc_pb2.StatusRequest(), timeout=timeout)
        self.members[i].member_id = r.header.member_id
        return r

    def leader_index(self, timeout=5):
        """The member that the running members agree leads, or None after timeout."""
        deadline = time.monotonic() + timeout
        for _ in range(200):
            leaders = set()
            for m in self.members:
                if not m.running or m.paused:
                    continue
                try:
                    leaders.add(self.status(m.index).leader)
                except grpc.RpcError:
                    pass
            leaders.discard(0)
            if len(leaders) == 1:
                lid = leaders.pop()
                for m in self.members:
                    if m.member_id == lid and m.running:
                        return m.index
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
        return None

    def wait_leader(self, timeout):
        return self.leader_index(timeout)


# ---------------------------------------------------------------------------
# One run.


class RunContext:
    def __init__(self, network, run_dir, seed, size, max_seconds, nemesis=None):
        self.net = network
        self.nemesis = nemesis  # workloads whose checks rest on time (sessions) relax under `clock`
        self.run_dir = run_dir
        self.seed = seed
        self.size = size
        self.max_seconds = max_seconds

    def client_target(self, i):
        return self.net.client_target(i)


def replay_command(args):
    cmd = ["/usr/bin/python3", "tests/chaos/chaos.py", "run", "--nemesis", args.nemesis,
           "--workload", args.workload, "--seed", str(args.seed), "--seconds", str(args.seconds),
           "--nodes", str(args.nodes)]
    for b in args.inject_bug or []:
        cmd += ["--inject-bug", b]
    if args.net != "auto":
        cmd += ["--net", args.net]
    if args.snapshot_count:
        cmd += ["--snapshot-count", str(args.snapshot_count)]
    return " ".join(cmd)


def choose_network(kind, size, run_id):
    ok, why = net.netns_available() if kind in ("auto", "netns") else (False, "--net loopback")
    if ok:
        return net.NetnsNetwork(size, run_id, log=log), ""
    if kind == "netns":
        return None, why
    log("chaos: network namespaces unavailable (%s): loopback fallback with TCP proxies" % why)
    return net.LoopbackNetwork(size, run_id, itest.free_port, log=log), why


def run_one(args):
    """Runs one (nemesis, workload, seed). Returns the summary dict."""
    t_start = time.monotonic()
    run_id = "%04x" % random.SystemRandom().getrandbits(16)
    name = args.name or "%s-%s-s%d%s-%s" % (args.nemesis, args.workload, args.seed,
                                            "".join("-" + b for b in (args.inject_bug or [])), run_id)
    run_dir = os.path.abspath(os.path.join(args.out, name))
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    net.cleanup_leftovers(log)
    network, why = choose_network(args.net, args.nodes, run_id)
    if network is None:
        return {"skipped": why}
    plan = nem.make_schedule(args.nemesis, args.seed, args.seconds, args.nodes)
    with open(os.path.join(run_dir, "schedule.json"), "w") as f:
        json.dump({"nemesis": args.nemesis, "workload": args.workload, "seed": args.seed,
                   "seconds": args.seconds, "nodes": args.nodes, "inject_bug": args.inject_bug or [],
                   "network": network.mode, "plan": plan}, f, indent=1)
    summary = {"name": name, "run_dir": run_dir, "nemesis": args.nemesis, "workload": args.workload,
               "seed": args.seed, "inject_bug": args.inject_bug or [], "network": network.mode,
               "replay": replay_command(args)}
    cluster = None
    workload = None
    nemesis = None
    try:
        network.setup()
        cluster = ChaosCluster(network, run_dir, args.nodes, bugs=args.inject_bug or [],
                               faketime=args.nemesis == "clock", tmpfs=args.nemesis == "disk",
                               snapshot_count=args.snapshot_count)
        cluster.setup_disks()
        for i in range(args.nodes):
            cluster.start(i)
        if cluster.wait_leader(30) is None:
            raise RuntimeError("no leader 30 s after start; see %s/logs" % run_dir)
        ctx = RunContext(network, run_dir, args.seed, args.nodes, args.seconds + 60, nemesis=args.nemesis)
        workload = workloads.WORKLOADS[args.workload](ctx)
        t0 = time.monotonic()
        nemesis = nem.Nemesis(cluster, network, plan, run_dir, t0, log=log)
        nemesis.acked = getattr(workload, "last_ack_time", None)
        workload.start()
        nemesis.start()
        stop = threading.Event()
        stop.wait(args.seconds)
        nemesis.stop()
        network.heal()
        cluster.heal_all()
        leader = cluster.wait_leader(30)
        summary["healed_leader"] = leader is not None
        if leader is not None:
            stop.wait(1.0)  # the workload sees the healed cluster for a moment
        workload.stop()
        workload.final()
        summary["faults"] = nemesis.injected
        summary["faults_skipped"] = nemesis.skipped
        summary.update(workload.stats())
        verdict = workload.check(binary("warden-lincheck"))
        summary["verdict"] = verdict.outcome
        summary["detail"] = verdict.detail
        cluster.check_crashes()
        if cluster.crashes:
            # A member died on its own: a server bug whatever the history says.
            summary["crashes"] = cluster.crashes
            summary["detail"] = "member crashed: %s (logs/<member>.log, dmesg)\n%s" % (
                "; ".join("%s pid %d by %s, noticed at %.3f" % (c["member"], c["pid"], c["what"], c["noticed"])
                          for c in cluster.crashes), summary["detail"])
            if summary["verdict"] != "violation":
                summary["verdict"] = "crash"
    except KeyboardInterrupt:
        summary["verdict"] = "interrupted"
        summary["detail"] = "interrupted"
        raise
    except Exception as e:  # noqa: BLE001 - reported in the summary
        summary["verdict"] = "error"
        summary["detail"] = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=-3))
    finally:
        if nemesis:
            nemesis.stop()
        if workload and not workload.stopping.is_set():
            workload.stop()
        if workload and hasattr(workload, "close"):
            workload.close()  # background readers (sessions)
        if cluster:
            cluster.stop_all()
            cluster.teardown_disks()
        network.teardown()
        summary["seconds_wall"] = round(time.monotonic() - t_start, 1)
        with open(os.path.join(run_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
        with open(os.path.join(run_dir, "verdict.txt"), "w") as f:
            f.write("%s\n%s\n" % (summary.get("verdict"), summary.get("detail", "")))
    expected = args.expect
    summary["as_expected"] = summary["verdict"] == expected if expected else summary["verdict"] in ("ok",)
    if summary["as_expected"] and not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
        summary["kept"] = False
    else:
        # The data directories are large (preallocated WAL segments): keep logs and history.
        if not args.keep:
            shutil.rmtree(os.path.join(run_dir, "data"), ignore_errors=True)
        summary["kept"] = True
    return summary


def print_summary(s):
    log("chaos: %s %s seed=%d%s: verdict=%s ops=%s (ok %s, fail %s, info %s) faults=%s%s wall=%.0fs" % (
        s["nemesis"], s["workload"], s["seed"],
        "".join(" bug=" + b for b in s["inject_bug"]), s.get("verdict"), s.get("ops"), s.get("ok"),
        s.get("fail"), s.get("info"), s.get("faults"),
        "" if s.get("max_unavailable_s") is None else " longest-gap=%.1fs" % s["max_unavailable_s"],
        s.get("seconds_wall", 0)))
    if s.get("verdict") not in ("ok",) or not s.get("as_expected"):
        for line in (s.get("detail") or "").splitlines()[:16]:
            log("    " + line)
    elif s.get("detail"):
        log("    " + s["detail"].splitlines()[0][:400])
    if s.get("kept"):
        log("chaos: kept %s (seed %d); replay with:\n    %s" % (s["run_dir"], s["seed"], s["replay"]))


# ---------------------------------------------------------------------------
# Commands.


def _install_signal_handlers():
    def handler(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def make_args(**kw):
    d = dict(nemesis="mixed", workload="register", seed=1, seconds=30, nodes=3, inject_bug=None,
             expect=None, net="auto", keep=False, out=os.path.join(build_dir(), "chaos"), name=None,
             snapshot_count=None)
    d.update(kw)
    return argparse.Namespace(**d)


def cmd_run(args):
    s = run_one(args)
    if "skipped" in s:
        log("chaos: SKIPPED: %s" % s["skipped"])
        return SKIP_RC
    print_summary(s)
    return 0 if s["as_expected"] else 1


def run_disk_watch(out, keep=False):
    """Regression test of the disk-full fix (commit 7b0fc78, WatchHub::FailAll):
    a member whose disk fails stops applying, and must end its watch
    streams (UNAVAILABLE "... disk failure") so that clients fail over,
    instead of leaving them open and silent (disk x watch, seed 1003).

    Three members on 160 MiB tmpfs data directories with --snapshot-count
    100; a watch on a follower; that follower's disk is filled and puts go
    through the leader until the follower's next snapshot or segment roll
    meets the full disk. Returns a summary like run_one's."""
    t_start = time.monotonic()
    run_id = "%04x" % random.SystemRandom().getrandbits(16)
    run_dir = os.path.abspath(os.path.join(out, "diskwatch-%s" % run_id))
    os.makedirs(run_dir)
    net.cleanup_leftovers(log)
    network, why = choose_network("netns", 3, run_id)
    if network is None:
        return {"skipped": why}
    summary = {"name": "disk-watch", "run_dir": run_dir, "nemesis": "disk-full", "workload": "watch",
               "seed": 0, "inject_bug": [], "replay": "/usr/bin/python3 tests/chaos/chaos.py diskwatch"}
    cluster = None
    call = None
    stop_requests = threading.Event()
    try:
        network.setup()
        cluster = ChaosCluster(network, run_dir, 3, tmpfs=True, snapshot_count=100)
        cluster.setup_disks()
        for i in range(3):
            cluster.start(i)
        leader = cluster.wait_leader(30)
        if leader is None:
            raise RuntimeError("no leader 30 s after start")
        victim = (leader + 1) % 3
        ch = grpc.insecure_channel(network.client_target(victim), options=workloads.channel_options())

        def requests():
            yield rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"chaos/dw/",
                                                                                 range_end=b"chaos/dw0"))
            stop_requests.wait(120)

        call = rpc_pb2_grpc.WatchStub(ch).Watch(requests())

        ended = {"events": 0}
        created = threading.Event()  # the member answered the create request

        def reader():
            try:
                for resp in call:
                    if resp.created:
                        created.set()
                    ended["events"] += len(resp.events)
                ended["status"] = ("OK", "")
            except grpc.RpcError as e:
                ended["status"] = (e.code().name, e.details() or "")
            ended["at"] = time.monotonic()
            created.set()  # ended before (or without) it: the checks below say so

        t = threading.Thread(target=reader, daemon=True, name="diskwatch-reader")
        t.start()
        created.wait(10)
        filled = cluster.fill_disk(victim)
        kv = rpc_pb2_grpc.KVStub(grpc.insecure_channel(network.client_target(leader),
                                                       options=workloads.channel_options()))
        t_fill = time.monotonic()
        puts = 0
        value = b"v" * 1024
        alarm_at = None  # when the member first reported NOSPACE: then 5 s more at most
        next_alarm_check = t_fill
        for n in range(100_000):
            now = time.monotonic()
            if "status" in ended or now - t_fill > 40 or (alarm_at is not None and now - alarm_at > 5):
                break
            if alarm_at is None and now >= next_alarm_check:
                next_alarm_check = now + 0.5
                if cluster.alarms(victim):
                    alarm_at = now
            try:
                kv.Put(rpc_pb2.PutRequest(key=b"chaos/dw/k%d" % (n % 50), value=value), timeout=1.5)
                puts += 1
            except grpc.RpcError:
                time.sleep(0.1)
        t.join(timeout=10)
        alarms = cluster.alarms(victim)
        status = ended.get("status")
        summary.update(ops=puts, ok=puts, fail=0, info=0, faults=1)
        detail = "member n%d: disk filled (%d MiB), %d puts, alarms %s; its watch stream %s after %s events%s" % (
            victim, filled >> 20, puts, alarms,
            "ended with %s %r" % status if status else "stayed open",
            ended.get("events"), " %.1f s after the fill" % (ended["at"] - t_fill) if status else "")
        if status and status[0] == "UNAVAILABLE" and "disk failure" in status[1]:
            summary["verdict"] = "ok"
        elif not alarms:
            summary["verdict"] = "unknown"  # the disk never failed: nothing shown
        else:
            summary["verdict"] = "violation"
        summary["detail"] = detail
    except Exception as e:  # noqa: BLE001 - reported in the summary
        summary["verdict"] = "error"
        summary["detail"] = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=-3))
    finally:
        stop_requests.set()
        if call is not None:
            call.cancel()
        if cluster:
            cluster.stop_all()
            cluster.teardown_disks()
        network.teardown()
        summary["seconds_wall"] = round(time.monotonic() - t_start, 1)
        with open(os.path.join(run_dir, "verdict.txt"), "w") as f:
            f.write("%s\n%s\n" % (summary.get("verdict"), summary.get("detail", "")))
    summary["as_expected"] = summary["verdict"] == "ok"
    summary["kept"] = not summary["as_expected"] or keep
    if summary["kept"]:
        if not keep:
            shutil.rmtree(os.path.join(run_dir, "data"), ignore_errors=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return summary


# The smoke test: one clean run with mixed faults, each planted bug with
# the nemesis that exposes it, a short run of the locks and sessions
# workloads, and the disk-full watch regression; every result must be as
# expected.
SMOKE = [
    dict(nemesis="mixed", seconds=45, seed=11, expect="ok"),
    dict(nemesis="power", seconds=30, seed=12, inject_bug=["ack-before-fsync"], expect="violation"),
    dict(nemesis="zombie", seconds=30, seed=13, inject_bug=["read-without-quorum"], expect="violation"),
    dict(nemesis="mixed", workload="locks", seconds=25, seed=14, expect="ok"),
    dict(nemesis="mixed", workload="sessions", seconds=25, seed=15, expect="ok"),
    dict(check="disk-watch"),
]


def cmd_smoke(args):
    ok, why = net.netns_available()
    if not ok:
        log("chaos_smoke: SKIPPED: network namespaces are not available (%s); "
            "run `tests/chaos/chaos.py run --net loopback ...` for the loopback fallback" % why)
        return SKIP_RC
    t0 = time.monotonic()
    failures = 0
    for spec in SMOKE:
        if spec.get("check") == "disk-watch":
            s = run_disk_watch(args.out)
            print_summary(s)
            if not s["as_expected"]:
                failures += 1
                log("chaos_smoke: FAILED: disk-watch regression, got %s" % s.get("verdict"))
            continue
        # A planted bug must be caught within two runs (the second with
        # another seed: real processes are not deterministic). A clean run
        # gets one: any violation there is a real bug.
        attempts = 2 if spec["expect"] == "violation" else 1
        for attempt in range(attempts):
            s = run_one(make_args(out=args.out, **dict(spec, seed=spec["seed"] + 100 * attempt)))
            print_summary(s)
            if s["as_expected"]:
                break
        if not s["as_expected"]:
            failures += 1
            log("chaos_smoke: FAILED: %s %s expected %s, got %s" % (
                spec["nemesis"], spec.get("workload", "register"), spec["expect"], s.get("verdict")))
    log("chaos_smoke: %d passed, %d failed in %.0fs" % (len(SMOKE) - failures, failures, time.monotonic() - t0))
    return 1 if failures else 0


def cmd_matrix(args):
    nemeses = args.nemeses.split(",") if args.nemeses else [n for n in nem.NEMESES if n != "none"]
    wl = args.workloads.split(",") if args.workloads else sorted(workloads.WORKLOADS)
    cells = [(n, w) for n in nemeses for w in wl]
    budget = args.minutes * 60.0
    per = max(23.0, budget / len(cells))  # each cell's share, start, heal and check included
    t0 = time.monotonic()
    rows = []
    seed = args.seed
    for (n, w) in cells:
        cell = {"nemesis": n, "workload": w, "runs": 0, "ops": 0, "faults": 0, "violations": 0,
                "unknown": 0, "liveness": 0, "crashes": 0, "errors": 0, "gap": 0.0}
        cell_deadline = time.monotonic() + per
        for _ in range(100):
            left = cell_deadline - time.monotonic()
            # Every cell gets one run; more while its share of the budget lasts.
            if cell["runs"] and (left < 23 or time.monotonic() - t0 > budget):
                break
            secs = int(min(max(15, left - 8), 120))  # about 8 s of start, heal and check
            s = run_one(make_args(nemesis=n, workload=w, seed=seed, seconds=secs, out=args.out,
                                  nodes=args.nodes, net=args.net, snapshot_count=args.snapshot_count))
            seed += 1
            if "skipped" in s:
                log("chaos: SKIPPED: %s" % s["skipped"])
                return SKIP_RC
            print_summary(s)
            cell["runs"] += 1
            cell["ops"] += s.get("ops") or 0
            cell["faults"] += s.get("faults") or 0
            cell["gap"] = max(cell["gap"], s.get("max_unavailable_s") or 0.0)
            v = s.get("verdict")
            cell["violations"] += v == "violation"
            cell["unknown"] += v == "unknown"
            cell["liveness"] += v == "liveness"
            cell["crashes"] += bool(s.get("crashes"))
            cell["errors"] += v not in ("ok", "violation", "unknown", "liveness", "crash")
        rows.append(cell)
    table = format_table(rows, time.monotonic() - t0)
    log(table)
    with open(os.path.join(args.out, "matrix-table.md"), "w") as f:
        f.write(table + "\n")
    return 1 if any(r["violations"] or r["errors"] or r["liveness"] or r["crashes"] for r in rows) else 0


def format_table(rows, seconds):
    lines = ["| nemesis | workload | runs | operations | faults injected | violations | unknown "
             "| liveness | member crashes | harness errors | longest gap (s) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %s |" % (
            r["nemesis"], r["workload"], r["runs"], r["ops"], r["faults"], r["violations"],
            r["unknown"], r["liveness"], r["crashes"], r["errors"], "%.1f" % r["gap"] if r["gap"] else "-"))
    lines.append("")
    lines.append("(%.1f minutes of wall time)" % (seconds / 60))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="one run")
    r.add_argument("--nemesis", default="mixed", choices=nem.NEMESES)
    r.add_argument("--workload", default="register", choices=sorted(workloads.WORKLOADS))
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--seconds", type=int, default=60)
    r.add_argument("--nodes", type=int, default=3, choices=[3, 5])
    r.add_argument("--inject-bug", action="append", choices=["read-without-quorum", "ack-before-fsync"])
    r.add_argument("--expect", choices=["ok", "violation"])
    r.add_argument("--net", default="auto", choices=["auto", "netns", "loopback"])
    r.add_argument("--keep", action="store_true", help="keep the run directory and data")
    r.add_argument("--snapshot-count", type=int, help="members' --snapshot-count (default: warden's)")
    r.add_argument("--name")
    s = sub.add_parser("smoke", help="the ctest smoke run")
    d = sub.add_parser("diskwatch", help="regression: a member whose disk fails ends its watch streams")
    d.add_argument("--keep", action="store_true")
    m = sub.add_parser("matrix", help="every nemesis x workload for a bounded time")
    m.add_argument("--minutes", type=float, default=float(os.environ.get("CHAOS_MINUTES", "20")))
    m.add_argument("--nemeses")
    m.add_argument("--workloads")
    m.add_argument("--seed", type=int, default=1000)
    m.add_argument("--nodes", type=int, default=3, choices=[3, 5])
    m.add_argument("--net", default="auto", choices=["auto", "netns", "loopback"])
    m.add_argument("--snapshot-count", type=int)
    for q in (r, s, m, d):
        q.add_argument("--out", default=os.path.join(build_dir(), "chaos"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    _install_signal_handlers()
    if args.cmd == "run":
        if args.seed is None:
            args.seed = random.SystemRandom().randrange(1, 1 << 30)
        return cmd_run(args)
    if args.cmd == "smoke":
        return cmd_smoke(args)
    if args.cmd == "diskwatch":
        ok, why = net.netns_available()
        if not ok:
            log("chaos: SKIPPED: %s" % why)
            return SKIP_RC
        summary = run_disk_watch(args.out, keep=args.keep)
        if "skipped" in summary:
            log("chaos: SKIPPED: %s" % summary["skipped"])
            return SKIP_RC
        print_summary(summary)
        return 0 if summary["as_expected"] else 1
    return cmd_matrix(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("chaos: interrupted; processes stopped and namespaces removed")
        sys.exit(130)

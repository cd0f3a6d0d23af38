#!/usr/bin/python3
"""make bench-scale: how Warden (and etcd 3.4, beside it) behave at scale.

Each item runs on a fresh 3-member cluster on loopback, is bounded in count
and in time, and reports throughput, latency and the resident memory (VmRSS
from /proc/PID/status) of every member: before, at the peak while the load
runs (sampled every 0.5 s), and after.

  keys      SCALE_KEYS (1,000,000) distinct keys written once (values of
            SCALE_VALUE_SIZE = 100 bytes, sequential keys, 64 clients):
            puts/s, put latency, RSS per key.
  restart   then, in the same cluster: kill -9 a follower and restart it;
            seconds until it serves a serializable read at the cluster's
            revision (it has replayed its snapshot and log), and its RSS.
  watches   SCALE_WATCHES (100,000) watches of one key over 100 Watch
            streams on 4 connections; a writer puts 2 values/s, each
            notifying every watch: setup time, notification latency, RSS
            per watch.
  conns     SCALE_CONNS (10,000) client connections (one gRPC channel each,
            spread over the three members), each with one serializable Range
            loop paced to 1,000 ranges/s in all: latency, RSS per connection.
  locks-held    SCALE_LOCKS_HELD (100,000) distinct locks acquired through
            warden.v1 by SCALE_LOCK_SESSIONS (10,000) sessions (leases kept
            alive every 10 s, TTL 30 s) and held for 5 s after the last
            grant: grants/s, grant latency, RSS per lock held. etcd has no
            warden.v1: "unsupported" (its v3lock holds are keys, see keys).
  lock-waiters  SCALE_WAITERS (10,000) clients, each with its own session,
            queued on one lock; each holder releases at once and queues
            again, for SCALE_WAITERS_SECONDS (60): hand-overs/s, grant
            latency (the wait through the whole queue), RSS per waiter.
            Warden through warden.v1, etcd through its v3lock service
            (lock-v3).
  sessions  SCALE_SESSIONS (100,000) leases (TTL SCALE_SESSION_TTL = 60 s)
            kept alive over 100 streams, one keep-alive per lease every
            TTL/3 (as clientv3 does), for SCALE_SESSIONS_SECONDS (30) after a
            5 s warm-up: grant rate, keep-alives/s, keep-alive latency,
            the leader's CPU, RSS per session.
  expiry-storm  SCALE_STORM_SESSIONS (= SCALE_SESSIONS) leases of TTL
            SCALE_STORM_TTL (20 s) granted and kept alive by one warden-bench,
            which is then killed (SIGKILL): all expire within about a TTL of
            each other. Time from the kill to the first and the last expiry
            (`etcdctl lease list`, every 0.5 s), and the latency and errors of
            200 puts/s running through it.

Each item stops by itself within about three minutes (setup and run are
capped by warden-bench flags, the process by a timeout here).

Environment: SCALE_SYSTEMS (warden,etcd), SCALE_ONLY (items), SCALE_KEYS,
SCALE_VALUE_SIZE, SCALE_WATCHES, SCALE_CONNS, SCALE_LOCKS_HELD,
SCALE_LOCK_SESSIONS, SCALE_WAITERS, SCALE_SESSIONS, SCALE_SESSION_TTL,
SCALE_WAITERS_SECONDS (60), SCALE_SESSIONS_SECONDS (30), SCALE_STORM_SESSIONS,
SCALE_STORM_TTL (20), BENCH_RECORD (1:
insert a section into bench/RESULTS.md), BENCH_DATA_DIR, WARDEN_BIN,
ETCD_BIN, WARDEN_BENCH_BIN. Raw JSON and logs go to build/bench-scale/<time>/.
"""

import json
import os
import resource
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as lib  # noqa: E402

SYSTEMS = [s for s in os.environ.get("SCALE_SYSTEMS", "warden,etcd").split(",") if s]
ONLY = [s for s in os.environ.get("SCALE_ONLY", "").split(",") if s]
KEYS = int(os.environ.get("SCALE_KEYS", "1000000"))
VALUE_SIZE = int(os.environ.get("SCALE_VALUE_SIZE", "100"))
WATCHES = int(os.environ.get("SCALE_WATCHES", "100000"))
CONNS = int(os.environ.get("SCALE_CONNS", "10000"))
LOCKS_HELD = int(os.environ.get("SCALE_LOCKS_HELD", "100000"))
LOCK_SESSIONS = int(os.environ.get("SCALE_LOCK_SESSIONS", "10000"))
WAITERS = int(os.environ.get("SCALE_WAITERS", "10000"))
SESSIONS = int(os.environ.get("SCALE_SESSIONS", "100000"))
SESSION_TTL = int(os.environ.get("SCALE_SESSION_TTL", "60"))
WAITERS_SECONDS = float(os.environ.get("SCALE_WAITERS_SECONDS", "60"))
SESSIONS_SECONDS = float(os.environ.get("SCALE_SESSIONS_SECONDS", "30"))
STORM_SESSIONS = int(os.environ.get("SCALE_STORM_SESSIONS", str(SESSIONS)))
STORM_TTL = int(os.environ.get("SCALE_STORM_TTL", "20"))
RECORD = os.environ.get("BENCH_RECORD", "1") != "0"

# Not measured yet: listed, not faked.
TODO = []


def wanted(item):
    return not ONLY or item in ONLY


def raise_file_limit():
    """10,000 connections need more descriptors than the default soft limit
    in the load generator and in each member (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def run_sampled(c, args, json_path, timeout, log_path, idle=None):
    """Runs warden-bench while sampling every member's RSS (and the load
    generator's) every 0.5 s. Returns (rc, json, peak RSS by member, peak RSS
    of warden-bench), all in KiB. With `idle` (a dict), warden-bench is told to
    wait 3 s after its setup before any load (--idle) and `idle` receives
    every member's RSS 1.5 s into that wait: what was set up, at rest."""
    cmd = [lib.BENCH_BIN] + [str(a) for a in args] + ["--json", json_path]
    ready_file = None
    if idle is not None:
        ready_file = json_path + ".ready"
        if os.path.exists(ready_file):
            os.unlink(ready_file)
        cmd += ["--idle", "3", "--ready-file", ready_file]
    peak = {m.name: 0 for m in c.running_members()}
    peak_client = 0
    with open(log_path, "ab") as out:
        out.write(("\n$ %s\n" % " ".join(cmd)).encode())
        out.flush()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=lib.harness._clean_env())
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.5) + 2):
            for name, kib in lib.cluster_rss(c).items():
                if kib:
                    peak[name] = max(peak.get(name, 0), kib)
            peak_client = max(peak_client, lib.rss_kib(p.pid) or 0)
            if ready_file and not idle and os.path.exists(ready_file):
                time.sleep(1.5)
                idle.update(lib.cluster_rss(c))
            if p.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if p.poll() is None:
            p.kill()  # our own child, by its Popen
        rc = p.wait()
    try:
        with open(json_path) as f:
            return rc, json.load(f), peak, peak_client
    except (OSError, ValueError):
        return rc, None, peak, peak_client


def pids(c):
    return ",".join(str(m.pid) for m in c.running_members())


def mib(kib):
    return kib / 1024.0 if kib is not None else None


def rss_line(before, peak, after):
    names = sorted(before)
    return ", ".join("%s %.0f→%.0f→%.0f MiB" % (n, mib(before[n]) or 0, mib(peak.get(n)) or 0,
                                                  mib(after.get(n)) or 0) for n in names)


def total_delta(before, peak):
    return sum((peak.get(n) or 0) - (before.get(n) or 0) for n in before)


def item_keys(system, out_dir, rows):
    c = lib.new_cluster(system)
    try:
        before = lib.cluster_rss(c)
        path = os.path.join(out_dir, "%s-keys.json" % system)
        args = ["--endpoints", lib.endpoints(c), "--cpu-pids", pids(c), "--workload", "put", "--key-order", "seq",
                "--keys", KEYS, "--total", KEYS, "--clients", "64", "--conns", "8",
                "--value-size", VALUE_SIZE, "--warmup", "0", "--duration", "1200", "--label", system]
        lib.log("  keys: %s puts of %d B values" % (KEYS, VALUE_SIZE))
        rc, j, peak, _ = run_sampled(c, args, path, 1500, os.path.join(out_dir, "bench.log"))
        time.sleep(2)  # let followers apply the tail
        after = lib.cluster_rss(c)
        if j is None:
            rows.append((system, "keys", "FAILED (rc=%s)" % rc))
            return
        lat = j["latency_ms"]["put"]
        per_key = [((after[n] or 0) - (before[n] or 0)) * 1024.0 / max(1, j["ops"]) for n in before]
        rows.append((system, "keys", "%d keys in %.1f s: %.0f puts/s, p50 %.2f ms, p99 %.2f ms, "
                     "errors %d, CPU %.0f µs/put (members + warden-bench); RSS before→peak→after: %s; "
                     "RSS per key: %s bytes" % (
                         j["ops"], j["window_s"], j["ops_per_s"], lat["p50"], lat["p99"],
                         j["errors_total"], j["cpu_s"]["us_per_op"], rss_line(before, peak, after),
                         "/".join("%.0f" % b for b in per_key))))
        lib.log("    " + rows[-1][2])
        if wanted("restart"):
            item_restart(system, c, rows)
    finally:
        c.close()


def item_restart(system, c, rows):
    leader = c.wait_leader(timeout=30)
    follower = next(m for m in c.running_members() if m is not leader)
    rev = c.revision(leader)
    c.kill_member(follower)
    t0 = time.monotonic()
    c.start_member(follower)
    listening = None
    ready = None
    deadline = t0 + 600
    for _ in range(60000):
        now = time.monotonic()
        if now > deadline or not follower.running:
            break
        if listening is None:
            try:
                with socket.create_connection(("127.0.0.1", follower.client_port), timeout=0.2):
                    listening = time.monotonic() - t0
            except OSError:
                time.sleep(0.02)
                continue
        try:
            r = c.revision(follower, serializable=True)
            if r >= rev:
                ready = time.monotonic() - t0
                break
        except AssertionError:
            pass
        time.sleep(0.02)
    rss = lib.rss_kib(follower.pid) if follower.running else None
    rows.append((system, "restart", "follower %s with %d keys, kill -9 then start: listening after %s s, "
                 "serving revision %d after %s s; RSS %.0f MiB" % (
                     follower.name, KEYS, "%.2f" % listening if listening is not None else "—", rev,
                     "%.2f" % ready if ready is not None else "never (600 s)", mib(rss) or 0)))
    lib.log("    " + rows[-1][2])


def item_watches(system, out_dir, rows):
    c = lib.new_cluster(system)
    try:
        before = lib.cluster_rss(c)
        path = os.path.join(out_dir, "%s-watches.json" % system)
        streams = min(100, WATCHES)
        args = ["--endpoints", lib.endpoints(c), "--cpu-pids", pids(c), "--workload", "watch", "--watchers", WATCHES,
                "--watch-streams", streams, "--conns", "4", "--clients", "1", "--rate", "2",
                "--warmup", "2", "--duration", "10", "--setup-timeout", "300", "--label", system]
        lib.log("  watches: %d over %d streams" % (WATCHES, streams))
        idle = {}
        rc, j, peak, peak_client = run_sampled(c, args, path, 400, os.path.join(out_dir, "bench.log"),
                                               idle=idle)
        after = lib.cluster_rss(c)
        if j is None:
            rows.append((system, "watches", "FAILED (rc=%s)" % rc))
            return
        lat = j["latency_ms"]["notify"]
        puts = j["counters"].get("puts", 0)
        rows.append((system, "watches", "%d watches ready in %.1f s%s; %d puts → %d notifications "
                     "(%.0f/s), latency p50 %.1f ms, p99 %.1f ms, max %.1f ms, errors %d; RSS before→peak→"
                     "after: %s; RSS per watch (all members) idle (watches set up, no event yet): %s bytes, "
                     "peak (while notifying): %.0f bytes; warden-bench peak %.0f MiB" % (
                         WATCHES, j["setup_s"],
                         " (SETUP TIMED OUT)" if j["setup_timed_out"] else "", puts, j["ops"],
                         j["ops_per_s"], lat["p50"], lat["p99"], lat["max"], j["errors_total"],
                         rss_line(before, peak, after),
                         ("%.0f" % (total_delta(before, idle) * 1024.0 / WATCHES)) if idle else "not sampled",
                         total_delta(before, peak) * 1024.0 / WATCHES, mib(peak_client))
                     + "; CPU in the 10 s window: members %.1f s, warden-bench %.1f s" % (
                         j["cpu_s"]["pids_total"], j["cpu_s"]["self"])))
        lib.log("    " + rows[-1][2])
    finally:
        c.close()


def item_conns(system, out_dir, rows):
    c = lib.new_cluster(system)
    try:
        before = lib.cluster_rss(c)
        path = os.path.join(out_dir, "%s-conns.json" % system)
        args = ["--endpoints", lib.endpoints(c), "--cpu-pids", pids(c), "--workload", "range-serializable", "--no-prefill",
                "--conns", CONNS, "--clients", CONNS, "--rate", "1000", "--warmup", "5",
                "--duration", "10", "--setup-timeout", "120", "--label", system]
        lib.log("  conns: %d connections" % CONNS)
        rc, j, peak, peak_client = run_sampled(c, args, path, 300, os.path.join(out_dir, "bench.log"))
        after = lib.cluster_rss(c)
        if j is None:
            rows.append((system, "conns", "FAILED (rc=%s)" % rc))
            return
        lat = j["latency_ms"]["range-serializable"]
        rows.append((system, "conns", "%d connections: %.0f ranges/s (paced to 1,000), p50 %.2f ms, "
                     "p99 %.2f ms, max %.1f ms, errors %d%s; RSS before→peak→after: %s; RSS per "
                     "connection (all members): %.0f bytes; warden-bench peak %.0f MiB" % (
                         CONNS, j["ops_per_s"], lat["p50"], lat["p99"], lat["max"], j["errors_total"],
                         (" (%s)" % ", ".join("%s=%d" % kv for kv in j["errors"].items())) if j["errors"] else "",
                         rss_line(before, peak, after), total_delta(before, peak) * 1024.0 / CONNS,
                         mib(peak_client))
                     + "; %d connections opened in %.1f s; CPU in the window: members %.1f s, "
                     "warden-bench %.1f s" % (j.get("conns_ready", 0), j.get("connect_s", 0),
                                              j["cpu_s"]["pids_total"], j["cpu_s"]["self"])))
        lib.log("    " + rows[-1][2])
    finally:
        c.close()


def latency_text(lat):
    return "p50 %.2f ms, p99 %.2f ms, max %.1f ms" % (lat["p50"], lat["p99"], lat["max"])


def errors_text(j):
    return "errors %d%s" % (j["errors_total"], (" (%s)" % ", ".join(
        "%s=%d" % kv for kv in j["errors"].items())) if j["errors"] else "")


def no_result_row(system, item, rc, j):
    """A row for a run the server does not support (rc 3) or that left no
    JSON, or None when there is a result to report."""
    if rc == 3 and j and j.get("unsupported"):
        return (system, item, "unsupported: %s" % j.get("unsupported_reason", ""))
    if j is None:
        return (system, item, "FAILED (rc=%s)" % rc)
    return None


def item_locks_held(system, out_dir, rows):
    c = lib.new_cluster(system)
    try:
        sessions = min(LOCK_SESSIONS, LOCKS_HELD)
        per = max(1, LOCKS_HELD // sessions)
        total = sessions * per
        clients = min(100, sessions)
        before = lib.cluster_rss(c)
        path = os.path.join(out_dir, "%s-locks-held.json" % system)
        args = ["--endpoints", lib.endpoints(c), "--cpu-pids", pids(c), "--workload", "locks-hold",
                "--sessions", sessions, "--locks-per-session", per, "--clients", clients, "--conns", "4",
                "--lease-ttl", "30", "--total", total, "--warmup", "0", "--duration", "100",
                "--linger", "5", "--setup-timeout", "60", "--drain-timeout", "10", "--label", system]
        lib.log("  locks-held: %d locks by %d sessions" % (total, sessions))
        rc, j, peak, peak_client = run_sampled(c, args, path, 240, os.path.join(out_dir, "bench.log"))
        after = lib.cluster_rss(c)
        row = no_result_row(system, "locks-held", rc, j)
        if row:
            rows.append(row)
        else:
            held = j["counters"].get("locks_held", 0)
            ka = j["latency_ms"]["keepalive"]
            rows.append((system, "locks-held", "%d sessions granted in %.1f s%s; %d of %d locks granted "
                         "in %.1f s (%.0f grants/s), grant %s, %s; keep-alives %d, %s; RSS before→peak→after: "
                         "%s; RSS per lock held (all members, sessions included): %.0f bytes; "
                         "warden-bench peak %.0f MiB; CPU in the window: members %.1f s, warden-bench %.1f s" % (
                             j["counters"].get("sessions", 0), j["setup_s"],
                             " (SETUP TIMED OUT)" if j["setup_timed_out"] else "", held, total,
                             j["window_s"], j["ops_per_s"], latency_text(j["latency_ms"]["acquire"]),
                             errors_text(j), ka["count"], latency_text(ka) if ka["count"] else "—",
                             rss_line(before, peak, after), total_delta(before, peak) * 1024.0 / max(1, held),
                             mib(peak_client), j["cpu_s"]["pids_total"], j["cpu_s"]["self"])))
        lib.log("    " + rows[-1][2])
    finally:
        c.close()


def item_lock_waiters(system, out_dir, rows):
    c = lib.new_cluster(system)
    try:
        workload = "lock-native" if system == "warden" else "lock-v3"
        before = lib.cluster_rss(c)
        path = os.path.join(out_dir, "%s-lock-waiters.json" % system)
        # Warm-up 0: the first grants count too (every waiter starts in the
        # window). --rpc-timeout only matters for lock-v3, whose Lock call
        # has the per-request deadline: longer than the window.
        args = ["--endpoints", lib.endpoints(c), "--cpu-pids", pids(c), "--workload", workload,
                "--clients", WAITERS, "--locks", "1", "--conns", "8", "--warmup", "0", "--duration",
                WAITERS_SECONDS, "--rpc-timeout", WAITERS_SECONDS + 30, "--setup-timeout", "60", "--drain-timeout", "15", "--label", system]
        lib.log("  lock-waiters: %d waiters on one lock (%s)" % (WAITERS, workload))
        rc, j, peak, peak_client = run_sampled(c, args, path, 240, os.path.join(out_dir, "bench.log"))
        after = lib.cluster_rss(c)
        row = no_result_row(system, "lock-waiters", rc, j)
        if row:
            rows.append(row)
        else:
            viol = j["counters"].get("mutual_exclusion_violations", 0) + j["counters"].get(
                "token_order_violations", 0)
            rows.append((system, "lock-waiters", "%s, %d waiters on one lock, %d sessions ready in %.1f s%s: "
                         "%d grants in %.0f s, %.1f hand-overs/s, grant latency %s, %s, violations %d; "
                         "RSS before→peak→after: %s; RSS per waiter (all members, sessions included): "
                         "%.0f bytes; CPU in the window: members %.1f s, warden-bench %.1f s" % (
                             workload, WAITERS, j["clients_ready"], j["setup_s"],
                             " (SETUP TIMED OUT)" if j["setup_timed_out"] else "", j["ops"], j["window_s"],
                             j["counters_per_s"].get("handovers", 0), latency_text(j["latency_ms"]["acquire"]),
                             errors_text(j), viol, rss_line(before, peak, after),
                             total_delta(before, peak) * 1024.0 / WAITERS,
                             j["cpu_s"]["pids_total"], j["cpu_s"]["self"])))
        lib.log("    " + rows[-1][2])
    finally:
        c.close()


def item_sessions(system, out_dir, rows):
    c = lib.new_cluster(system)
    try:
        leader = c.wait_leader(timeout=30)
        clients = min(100, SESSIONS)
        before = lib.cluster_rss(c)
        path = os.path.join(out_dir, "%s-sessions.json" % system)
        args = ["--endpoints", lib.endpoints(c), "--cpu-pids", pids(c), "--workload", "sessions",
                "--sessions", SESSIONS, "--clients", clients, "--conns", "4", "--lease-ttl", SESSION_TTL,
                "--warmup", "5", "--duration", SESSIONS_SECONDS, "--setup-timeout", "120", "--drain-timeout", "10",
                "--label", system]
        lib.log("  sessions: %d leases, TTL %d s" % (SESSIONS, SESSION_TTL))
        rc, j, peak, peak_client = run_sampled(c, args, path, 240, os.path.join(out_dir, "bench.log"))
        after = lib.cluster_rss(c)
        if j is None:
            rows.append((system, "sessions", "FAILED (rc=%s)" % rc))
        else:
            granted = j["counters"].get("sessions", 0)
            leader_cpu = dict(j["cpu_s"]["pids"]).get(str(leader.pid))
            rows.append((system, "sessions", "%d of %d leases granted in %.1f s%s (%.0f/s); %.0f keep-alives/s "
                         "(one per lease every %.0f s), %s, %s; leader CPU %s s in the %.0f s window "
                         "(members %.1f s, warden-bench %.1f s); RSS before→peak→after: %s; RSS per session "
                         "(all members): %.0f bytes; warden-bench peak %.0f MiB" % (
                             granted, SESSIONS, j["setup_s"],
                             " (SETUP TIMED OUT)" if j["setup_timed_out"] else "",
                             granted / j["setup_s"] if j["setup_s"] else 0, j["ops_per_s"], SESSION_TTL / 3.0,
                             latency_text(j["latency_ms"]["keepalive"]), errors_text(j),
                             "%.1f" % leader_cpu if leader_cpu is not None else "?", j["window_s"],
                             j["cpu_s"]["pids_total"], j["cpu_s"]["self"], rss_line(before, peak, after),
                             total_delta(before, peak) * 1024.0 / max(1, granted), mib(peak_client))))
        lib.log("    " + rows[-1][2])
    finally:
        c.close()


def lease_count(c):
    """Leases the cluster holds (etcdctl lease list), or None if it did not answer."""
    res = c.etcdctl("lease", "list", timeout=10, hard_timeout=30, record=False)
    if res.rc != 0 or not res.out.startswith("found "):
        return None
    return int(res.out.split()[1])


def item_expiry_storm(system, out_dir, rows):
    """STORM_SESSIONS leases with one TTL, granted by warden-bench, which is
    then killed (SIGKILL, our own child): every lease expires within about
    one TTL of the others. Measures how long the cluster takes to expire them
    all and what a light put load (200/s) sees meanwhile."""
    c = lib.new_cluster(system)
    holder = None
    try:
        leader = c.wait_leader(timeout=30)
        ready = os.path.join(out_dir, "%s-storm.ready" % system)
        if os.path.exists(ready):
            os.unlink(ready)
        # Keep-alives every TTL/3 while granting, so that none expires early.
        args = [lib.BENCH_BIN, "--endpoints", lib.endpoints(c), "--workload", "sessions",
                "--sessions", str(STORM_SESSIONS), "--clients", str(min(100, STORM_SESSIONS)),
                "--conns", "4", "--lease-ttl", str(STORM_TTL), "--warmup", "0", "--duration", "600",
                "--setup-timeout", "300", "--ready-file", ready, "--label", system,
                "--json", os.path.join(out_dir, "%s-storm-holder.json" % system)]
        lib.log("  expiry storm: %d leases, TTL %d s" % (STORM_SESSIONS, STORM_TTL))
        with open(os.path.join(out_dir, "bench.log"), "ab") as log:
            holder = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=lib.harness._clean_env())
            deadline = time.monotonic() + 330
            while not os.path.exists(ready) and holder.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if not os.path.exists(ready):
                rows.append((system, "expiry-storm", "FAILED: the leases were not granted"))
                return
            time.sleep(2)
            before = lease_count(c)
            holder.kill()  # our own child, by its Popen
            holder.wait()
            killed = time.monotonic()
            # A light put load through the storm, measured.
            probe_path = os.path.join(out_dir, "%s-storm-probe.json" % system)
            probe_seconds = STORM_TTL + 40
            probe = subprocess.Popen(
                [lib.BENCH_BIN, "--endpoints", lib.endpoints(c), "--cpu-pids", pids(c), "--workload", "put",
                 "--clients", "4", "--conns", "2", "--rate", "200", "--warmup", "0", "--duration",
                 str(probe_seconds), "--label", system, "--json", probe_path],
                stdout=log, stderr=subprocess.STDOUT, env=lib.harness._clean_env())
            first_gone = all_gone = None
            samples = []
            while time.monotonic() - killed < probe_seconds:
                n = lease_count(c)
                t = time.monotonic() - killed
                samples.append((t, n))
                if n is not None and before and n < before and first_gone is None:
                    first_gone = t
                if n == 0:
                    all_gone = t
                    break
                time.sleep(0.5)
            probe.wait(timeout=probe_seconds + 60)
        try:
            with open(probe_path) as f:
                pj = json.load(f)
        except (OSError, ValueError):
            pj = None
        rate = ""
        if first_gone is not None and all_gone is not None and all_gone > first_gone:
            rate = " (%.0f expiries/s after the first)" % ((before or 0) / (all_gone - first_gone))
        probe_text = "no probe result"
        if pj:
            probe_text = "puts during the storm (200/s): %s, %s; members' CPU %.1f s" % (
                latency_text(pj["latency_ms"]["put"]), errors_text(pj), pj["cpu_s"]["pids_total"])
        first_text = "after %.1f s" % first_gone if first_gone is not None else "never"
        all_text = "after %.1f s" % all_gone if all_gone is not None else "not within %d s (%s left)" % (
            probe_seconds, samples[-1][1] if samples else "?")
        rows.append((system, "expiry-storm", "%s leases (TTL %d s) when their client was killed: first expired "
                     "%s, all %s%s; %s; leader %s" % (
                         before, STORM_TTL, first_text, all_text, rate, probe_text,
                         "unchanged" if c.wait_leader(timeout=10) is leader else "changed")))
        lib.log("    " + rows[-1][2])
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.wait()
        c.close()


def main():
    lib.require(lib.BENCH_BIN, "warden-bench")
    lib.require(lib.WARDEN_BIN, "warden")
    if "etcd" in SYSTEMS:
        lib.require(lib.ETCD_BIN, "etcd (apt-get install etcd-server)")
    limits = raise_file_limit()
    start = lib.now_utc()
    out_dir = os.path.join(lib.BUILD, "bench-scale", start.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)
    before = lib.machine_description(lib.DATA_ROOT)
    lib.log("bench-scale: systems %s; keys %d, watches %d, conns %d, locks held %d by %d sessions, "
            "waiters %d, sessions %d; nofile %s; output in %s" % (
                ",".join(SYSTEMS), KEYS, WATCHES, CONNS, LOCKS_HELD, LOCK_SESSIONS, WAITERS, SESSIONS,
                limits, out_dir))
    rows = []
    for system in SYSTEMS:
        lib.log("system: %s" % system)
        if wanted("keys") or wanted("restart"):
            item_keys(system, out_dir, rows)
        if wanted("watches"):
            item_watches(system, out_dir, rows)
        if wanted("conns"):
            item_conns(system, out_dir, rows)
        if wanted("locks-held"):
            item_locks_held(system, out_dir, rows)
        if wanted("lock-waiters"):
            item_lock_waiters(system, out_dir, rows)
        if wanted("sessions"):
            item_sessions(system, out_dir, rows)
        if wanted("expiry-storm"):
            item_expiry_storm(system, out_dir, rows)
    after = lib.machine_description(lib.DATA_ROOT)
    end = lib.now_utc()

    print("\nbench-scale results:")
    for system, item, text in rows:
        print("  %-7s %-12s %s" % (system, item, text))
    for item, what in TODO:
        print("  %-7s %-12s TODO: %s" % ("warden", item, what))
    print("\nload before: %s\nload after:  %s" % (before["uptime"], after["uptime"]))

    if RECORD:
        md = ["## %s — warden-bench at scale (`make bench-scale`)" % start.strftime("%Y-%m-%d %H:%M UTC"),
              "", lib.machine_markdown(before, after), "",
              "**Run.** %s to %s UTC; 3-member clusters on loopback, a fresh one per item; RSS is "
              "VmRSS of each member before → peak (sampled every 0.5 s while the load ran) → after. "
              "The machine was shared with other engineers' builds and tests." % (
                  start.strftime("%H:%M"), end.strftime("%H:%M")),
              "", "| system | item | result |", "|---|---|---|"]
        md += ["| %s | %s | %s |" % r for r in rows]
        md += ["| warden | %s | **TODO**: %s |" % t for t in TODO]
        md += ["", "**Command.** `SCALE_SYSTEMS=%s SCALE_KEYS=%d SCALE_WATCHES=%d SCALE_CONNS=%d "
               "SCALE_LOCKS_HELD=%d SCALE_LOCK_SESSIONS=%d SCALE_WAITERS=%d SCALE_SESSIONS=%d "
               "SCALE_SESSION_TTL=%d SCALE_STORM_SESSIONS=%d SCALE_STORM_TTL=%d make bench-scale`; the "
               "warden-bench command lines are in `bench/scale.py`." % (
                   ",".join(SYSTEMS), KEYS, WATCHES, CONNS, LOCKS_HELD, LOCK_SESSIONS, WAITERS, SESSIONS,
                   SESSION_TTL, STORM_SESSIONS, STORM_TTL), ""]
        lib.record_section("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

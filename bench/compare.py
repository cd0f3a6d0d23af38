#!/usr/bin/python3
"""make bench-compare: Warden against Debian's etcd 3.4, side by side.

For each round (ROUNDS, default 3) it starts a fresh 3-member etcd cluster,
runs every workload against it with warden-bench, stops it, then does the same
with a fresh 3-member Warden cluster: etcd, Warden, etcd, Warden, ... Only one
cluster runs at a time; all members, the load generator and this script share
the machine. Each workload runs BENCH_SECONDS (default 5) after a warm-up of
BENCH_WARMUP (1) seconds. Leader failover is measured FAILOVER_REPS (2) times
per cluster: the script finds the leader's PID, warden-bench kills it (kill -9)
and times the first acknowledged write, and the script restarts the member.

It prints the medians over the rounds and the ratio Warden/etcd, and inserts
a dated section into bench/RESULTS.md (set BENCH_RECORD=0 not to) with the
machine, its load before and after, a raw fdatasync measurement and the exact
commands. Raw JSON and logs go to build/bench-compare/<time>/.

Environment: ROUNDS, BENCH_SECONDS, BENCH_WARMUP, FAILOVER_REPS, BENCH_ONLY
(comma-separated workload names), BENCH_RECORD, BENCH_DATA_DIR (/var/tmp),
WARDEN_BIN, ETCD_BIN, WARDEN_BENCH_BIN. The default run takes about ten
minutes; each warden-bench run is bounded by its own --duration and by a
subprocess timeout here.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as lib  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
FAILOVER_REPS = int(os.environ.get("FAILOVER_REPS", "2"))
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").split(",") if w]
RECORD = os.environ.get("BENCH_RECORD", "1") != "0"
SYSTEMS = ["etcd", "warden"]

# name, warden-bench arguments (endpoints, duration, warm-up and JSON are added).
WORKLOADS = [
    ("put", ["--workload", "put", "--clients", "100", "--conns", "4", "--keys", "10000"]),
    ("range-linearizable", ["--workload", "range", "--clients", "32", "--conns", "4", "--keys", "1000"]),
    ("range-serializable", ["--workload", "range-serializable", "--clients", "32", "--conns", "4",
                            "--keys", "1000"]),
    ("txn-cas", ["--workload", "txn", "--clients", "32", "--conns", "4", "--keys", "1000"]),
    ("lease-keepalive", ["--workload", "lease-keepalive", "--clients", "32", "--conns", "4"]),
    ("watch-latency", ["--workload", "watch", "--watchers", "100", "--watch-streams", "10",
                       "--clients", "1", "--rate", "200", "--conns", "4"]),
    # 10,000 watchers (the watch goal): all on one key, each put
    # notifying all of them (10,000 messages per event), and one per key,
    # each put notifying one.
    ("watch-10k-one-key", ["--workload", "watch", "--watchers", "10000", "--watch-streams", "100",
                           "--clients", "1", "--rate", "5", "--conns", "4"]),
    ("watch-10k-spread", ["--workload", "watch", "--watchers", "10000", "--watch-streams", "100",
                          "--watch-spread", "--keys", "10000", "--clients", "4", "--rate", "1000",
                          "--conns", "4"]),
    ("lock-v3-uncontended", ["--workload", "lock-v3", "--clients", "100", "--conns", "4", "--locks", "0"]),
    ("lock-v3-contended", ["--workload", "lock-v3", "--clients", "10", "--conns", "4", "--locks", "1"]),
    ("lock-recipe-uncontended", ["--workload", "lock-recipe", "--clients", "100", "--conns", "4",
                                 "--locks", "0"]),
    ("lock-recipe-contended", ["--workload", "lock-recipe", "--clients", "10", "--conns", "4",
                               "--locks", "1"]),
    # Warden's own lock API (warden.v1); etcd answers UNIMPLEMENTED: "unsupported".
    ("lock-native-uncontended", ["--workload", "lock-native", "--clients", "100", "--conns", "4",
                                 "--locks", "0"]),
    ("lock-native-contended", ["--workload", "lock-native", "--clients", "10", "--conns", "4",
                               "--locks", "1"]),
    ("session-churn", ["--workload", "session-churn", "--clients", "32", "--conns", "4"]),
]
FAILOVER = "leader-failover"


def wanted(name):
    return not ONLY or name in ONLY


def summarize(j):
    """The figures compared for one warden-bench JSON result."""
    if j is None:
        return {"failed": True}
    if j.get("unsupported"):
        return {"unsupported": True, "reason": j.get("unsupported_reason", "")}
    main = next(iter(j["latency_ms"].values()), {})
    s = {"ops_per_s": j["ops_per_s"], "p50_ms": main.get("p50"), "p99_ms": main.get("p99"),
         "errors": j["errors_total"], "error_codes": j["errors"]}
    cpu = j.get("cpu_s", {})
    if cpu.get("us_per_op"):
        s["cpu_us_per_op"] = cpu["us_per_op"]
        s["server_cpu_us_per_op"] = cpu["pids_total"] * 1e6 / j["ops"] if j["ops"] else None
    if "handovers" in j.get("counters_per_s", {}):
        s["handovers_per_s"] = j["counters_per_s"]["handovers"]
    if j.get("counters", {}).get("mutual_exclusion_violations"):
        s["violations"] = j["counters"]["mutual_exclusion_violations"]
    if j.get("counters", {}).get("token_order_violations"):
        s["token_order_violations"] = j["counters"]["token_order_violations"]
    return s


def run_workloads(system, c, rnd, out_dir, results, commands):
    eps = lib.endpoints(c)
    for name, args in WORKLOADS:
        if not wanted(name):
            continue
        pids = ",".join(str(m.pid) for m in c.running_members())
        full = ["--endpoints", eps, "--duration", SECONDS, "--warmup", WARMUP, "--label", system,
                "--cpu-pids", pids] + args
        commands[name] = ("warden-bench --endpoints $ENDPOINTS --duration %g --warmup %g "
                          "--label $SYSTEM --cpu-pids $MEMBER_PIDS %s") % (SECONDS, WARMUP, " ".join(args))
        path = os.path.join(out_dir, "%s-r%d-%s.json" % (system, rnd, name))
        load1 = os.getloadavg()[0]
        rc, j = lib.run_bench(full, path, timeout=SECONDS + WARMUP + 180,
                              log_path=os.path.join(out_dir, "bench.log"))
        s = summarize(j)
        s["rc"] = rc
        s["load1"] = load1
        results.setdefault((system, name), []).append(s)
        if s.get("unsupported"):
            lib.log("  %-24s %s: unsupported (%s)" % (name, system, s["reason"][:60]))
        elif s.get("failed"):
            lib.log("  %-24s %s: FAILED (rc=%s, no JSON)" % (name, system, rc))
        else:
            lib.log("  %-24s %s: %9.1f ops/s  p50 %7.2f ms  p99 %7.2f ms  cpu %6.1f us/op  errors %d%s" % (
                name, system, s["ops_per_s"], s["p50_ms"] or 0, s["p99_ms"] or 0,
                s.get("cpu_us_per_op") or 0, s["errors"],
                ("  hand-overs %.1f/s" % s["handovers_per_s"]) if "handovers_per_s" in s else ""))


def run_failover(system, c, rnd, out_dir, results, commands):
    if not wanted(FAILOVER):
        return
    for rep in range(FAILOVER_REPS):
        leader = c.wait_leader(timeout=30)
        others = [m for m in c.running_members() if m is not leader]
        path = os.path.join(out_dir, "%s-r%d-failover-%d.json" % (system, rnd, rep))
        args = ["--workload", "failover", "--kill-pid", leader.pid, "--endpoints", lib.endpoints(c, others),
                "--duration", "20", "--label", system]
        commands[FAILOVER] = ("warden-bench --workload failover --kill-pid $LEADER_PID "
                              "--endpoints $OTHER_TWO --duration 20 --label $SYSTEM")
        rc, j = lib.run_bench(args, path, timeout=60, log_path=os.path.join(out_dir, "bench.log"))
        c.kill_member(leader)  # already dead (warden-bench killed it by PID): reap it
        ms = j.get("failover_ms") if j else None
        results.setdefault((system, FAILOVER), []).append({"failover_ms": ms, "rc": rc})
        lib.log("  %-24s %s: %s" % (FAILOVER, system, ("%.0f ms" % ms) if ms is not None else "FAILED"))
        c.start_member(leader)
        c.wait_member_ready(leader, timeout=60)
        c.wait_leader(timeout=30)


def fmt(v, unit=""):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return "{:,.0f}{}".format(v, unit)
    return "{:.2f}{}".format(v, unit)


def ratio(w, e):
    if w is None or e is None or e == 0:
        return "—"
    return "%.2fx" % (w / e)


def medians(results, system, name, key):
    runs = results.get((system, name), [])
    if runs and all(r.get("unsupported") for r in runs):
        return "unsupported"
    return lib.median([r.get(key) for r in runs if not r.get("unsupported")])


def ratio_table(results):
    rows = ["| workload | metric | etcd 3.4 | Warden | Warden/etcd |", "|---|---|---:|---:|---:|"]
    for name, _ in WORKLOADS + [(FAILOVER, None)]:
        if not wanted(name):
            continue
        if name == FAILOVER:
            metrics = [("failover_ms", "kill -9 leader → first write (ms, lower is better)")]
        else:
            metrics = [("ops_per_s", "ops/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                       ("server_cpu_us_per_op", "server CPU µs/op (3 members)"),
                       ("cpu_us_per_op", "CPU µs/op (members + warden-bench)")]
            if "contended" in name and "uncontended" not in name:
                metrics.append(("handovers_per_s", "hand-overs/s"))
        for key, label in metrics:
            e = medians(results, "etcd", name, key)
            w = medians(results, "warden", name, key)
            if e == "unsupported" or w == "unsupported":
                rows.append("| %s | %s | %s | %s | — |" % (
                    name, label, "unsupported" if e == "unsupported" else fmt(e),
                    "unsupported" if w == "unsupported" else fmt(w)))
            else:
                rows.append("| %s | %s | %s | %s | %s |" % (name, label, fmt(e), fmt(w), ratio(w, e)))
    return "\n".join(rows)


def per_round_table(results):
    rows = ["| workload | system | ops/s (or failover ms) per round | errors | load1 at start |",
            "|---|---|---|---|---|"]
    for name, _ in WORKLOADS + [(FAILOVER, None)]:
        for system in SYSTEMS:
            runs = results.get((system, name), [])
            if not runs:
                continue
            if name == FAILOVER:
                vals = ", ".join(fmt(r.get("failover_ms")) for r in runs)
                errs = ""
                loads = ""
            else:
                vals = ", ".join("unsupported" if r.get("unsupported") else
                                 ("FAILED" if r.get("failed") else fmt(r.get("ops_per_s"))) for r in runs)
                errs = ", ".join(("—" if r.get("unsupported") else str(r.get("errors", ""))) + (
                    " (%s)" % ",".join("%s=%s" % kv for kv in r["error_codes"].items())
                    if r.get("error_codes") else "") for r in runs)
                loads = ", ".join("%.1f" % r["load1"] for r in runs if "load1" in r)
            rows.append("| %s | %s | %s | %s | %s |" % (name, system, vals, errs, loads))
    return "\n".join(rows)


def main():
    lib.require(lib.BENCH_BIN, "warden-bench (cmake --build build --target warden-bench)")
    lib.require(lib.WARDEN_BIN, "warden")
    lib.require(lib.ETCD_BIN, "etcd (apt-get install etcd-server)")
    start = lib.now_utc()
    out_dir = os.path.join(lib.BUILD, "bench-compare", start.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)
    lib.log("bench-compare: ROUNDS=%d BENCH_SECONDS=%g BENCH_WARMUP=%g FAILOVER_REPS=%d; output in %s" % (
        ROUNDS, SECONDS, WARMUP, FAILOVER_REPS, out_dir))
    before = lib.machine_description(lib.DATA_ROOT)
    lib.log("machine: %d cores, %s; fdatasync median %.0f us; %s" % (
        before["cores"], before["cpu"], before["fdatasync_us"]["median"], before["uptime"]))

    results, commands, server_cmds = {}, {}, {}
    for rnd in range(ROUNDS):
        for system in SYSTEMS:
            lib.log("round %d/%d: %s" % (rnd + 1, ROUNDS, system))
            c = lib.new_cluster(system)
            try:
                server_cmds[system] = [lib.server_command(c, m) for m in c.members]
                run_workloads(system, c, rnd, out_dir, results, commands)
                run_failover(system, c, rnd, out_dir, results, commands)
            finally:
                c.close()
    after = lib.machine_description(lib.DATA_ROOT)
    end = lib.now_utc()

    table = ratio_table(results)
    print("\nMedians over %d rounds (Warden/etcd: above 1 is better for ops/s and hand-overs, below 1 for latency, CPU and failover):\n"
          % ROUNDS)
    print(table)
    print("\nload before: %s\nload after:  %s" % (before["uptime"], after["uptime"]))
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(table + "\n\n" + per_round_table(results) + "\n")

    if RECORD:
        md = [
            "## %s — warden-bench: Warden vs etcd 3.4 (`make bench-compare`)" % start.strftime("%Y-%m-%d %H:%M UTC"),
            "",
            lib.machine_markdown(before, after),
            "",
            "**Run.** %s to %s UTC. ROUNDS=%d, BENCH_SECONDS=%g (measured window per run), "
            "BENCH_WARMUP=%g, FAILOVER_REPS=%d. Each round: a fresh 3-member etcd cluster, every "
            "workload, stopped; then a fresh 3-member Warden cluster, the same. Figures are medians "
            "over the rounds. The machine was shared with other engineers' builds and tests during the "
            "run (see the load above and per run below), so single figures are noisy; ratios of "
            "alternating runs are what to read." % (
                start.strftime("%H:%M"), end.strftime("%H:%M"), ROUNDS, SECONDS, WARMUP, FAILOVER_REPS),
            "",
            table,
            "",
            "Per round:",
            "",
            per_round_table(results),
            "",
            "**Commands.** `ROUNDS=%d BENCH_SECONDS=%g make bench-compare`. Servers (ports are free "
            "ports picked per run):" % (ROUNDS, SECONDS),
            "",
            "```",
        ]
        for system in SYSTEMS:
            md += server_cmds.get(system, [])
        md += ["```", "", "Load (`$ENDPOINTS` = the three client URLs):", "", "```"]
        for name, _ in WORKLOADS + [(FAILOVER, None)]:
            if name in commands:
                md.append(commands[name])
        md += ["```", ""]
        lib.record_section("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

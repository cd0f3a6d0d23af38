"""Shared by bench/compare.py and bench/scale.py: clusters of etcd or Warden
on free loopback ports, the machine's description (cores, CPU, load, raw
fdatasync latency), warden-bench runs, resident memory, and RESULTS.md.

Standard library only; run with Debian's /usr/bin/python3. Clusters come from
tests/integration/cluster.py: members get free ports below the ephemeral range
(never 2379/2380/22379/22380/32379/32380), fresh data directories under one
temporary root, and are stopped by the PIDs kept in their Popen objects (and
killed with the harness if it dies, PR_SET_PDEATHSIG). Only one cluster runs at
a time.
"""

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "integration"))
import cluster as harness  # noqa: E402

BUILD = os.environ.get("BUILD", os.path.join(REPO_ROOT, "build"))
BENCH_BIN = os.environ.get("WARDEN_BENCH_BIN", os.path.join(BUILD, "bench", "warden-bench"))
WARDEN_BIN = os.environ.get("WARDEN_BIN", os.path.join(BUILD, "warden"))
ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
RESULTS_MD = os.environ.get("BENCH_RESULTS", os.path.join(BENCH_DIR, "RESULTS.md"))

# Data directories on the real disk (not tmpfs): fsync must cost what it costs.
DATA_ROOT = os.environ.get("BENCH_DATA_DIR", "/var/tmp")

# etcd: fsync on (its default), the same snapshot interval as Warden's
# default (100,000 entries, etcd 3.4's own default too), and a 4 GiB
# backend quota so that long or large runs do not hit NOSPACE (etcd's
# default is 2 GiB; 8 GiB is its documented maximum advice).
ETCD_ARGS = ["--snapshot-count", "100000", "--quota-backend-bytes", str(4 << 30)]
WARDEN_ARGS = []  # defaults: --snapshot-count 100000, fsync per batch


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def require(path, what):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        sys.exit("bench: %s not found at %s" % (what, path))


def new_cluster(system, size=3, extra_args=()):
    """A started cluster of `system` ("etcd" or "warden") with an agreed leader."""
    tempfile.tempdir = DATA_ROOT
    if system == "etcd":
        c = harness.Cluster(size=size, binary=ETCD_BIN, extra_args=ETCD_ARGS + list(extra_args),
                            name_prefix="etcd")
    else:
        c = harness.Cluster(size=size, binary=WARDEN_BIN, extra_args=WARDEN_ARGS + list(extra_args),
                            name_prefix="warden")
    try:
        c.start(timeout=30)
    except Exception:
        c.close()
        raise
    return c


def server_command(c, m):
    """The exact command line member m runs with (for the record)."""
    return " ".join(shlex.quote(a) for a in [c.binary] + c.member_args(m))


def endpoints(c, members=None):
    return ",".join(m.endpoint for m in (members or c.running_members()))


def run_bench(args, json_path, timeout, log_path=None):
    """Runs warden-bench with args (+ --json); returns (rc, parsed json or None)."""
    cmd = [BENCH_BIN] + [str(a) for a in args] + ["--json", json_path]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        out_note = ("\n$ %s\n" % " ".join(shlex.quote(a) for a in cmd)).encode()
        if log_path:
            out.write(out_note)
            out.flush()
        try:
            p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                               env=harness._clean_env())
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = -9
    finally:
        if log_path:
            out.close()
    try:
        with open(json_path) as f:
            return rc, json.load(f)
    except (OSError, ValueError):
        return rc, None


# ---------------------------------------------------------------------------
# The machine.


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_mhz():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1 << 20)
    except (OSError, ValueError):
        pass
    return None


def fs_type(path):
    """The mounted file system type (ext4, tmpfs...) holding path."""
    for cmd in (["findmnt", "-n", "-o", "FSTYPE", "-T", path], ["stat", "-f", "-c", "%T", path]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.TimeoutExpired):
            continue
    return "unknown"


def uptime_line():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "load average: %.2f, %.2f, %.2f" % os.getloadavg()


def busiest_processes(n=5):
    """The n processes using the most CPU now (name and %), to show who shares the box."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    rows = [line.split(None, 1) for line in out.splitlines()[:n] if line.strip()]
    return ", ".join("%s %s%%" % (r[1].strip(), r[0]) for r in rows if len(r) == 2)


def fdatasync_probe(directory, count=200, size=100):
    """Raw fdatasync latency on `directory`'s disk: `count` times pwrite `size`
    bytes into a preallocated file and fdatasync. Returns microseconds
    {median, p90, mean} (bounded: count syncs, each bounded by the disk)."""
    path = os.path.join(directory, "fdatasync-probe.%d" % os.getpid())
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * (count * 4096))
        os.fsync(fd)
        buf = b"x" * size
        samples = []
        for i in range(count):
            t0 = time.perf_counter()
            os.pwrite(fd, buf, i * 4096)
            os.fdatasync(fd)
            samples.append((time.perf_counter() - t0) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    samples.sort()
    return {"median": statistics.median(samples), "p90": samples[int(len(samples) * 0.9)],
            "mean": statistics.fmean(samples)}


def etcd_version():
    try:
        out = subprocess.run([ETCD_BIN, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def git_describe():
    try:
        rev = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        # RESULTS.md itself changes between runs; it does not change what ran.
        dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":!bench/RESULTS.md"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine_description(data_dir):
    sync = fdatasync_probe(data_dir)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "mhz": cpu_mhz(),
        "mem_gib": mem_total_gib(),
        "kernel": platform.release(),
        "fs": fs_type(data_dir),
        "data_dir": data_dir,
        "fdatasync_us": sync,
        "uptime": uptime_line(),
        "busiest": busiest_processes(),
        "etcd": etcd_version(),
        "warden": git_describe(),
    }


def machine_markdown(m, after=None):
    mhz = " at %.0f MHz" % m["mhz"] if m.get("mhz") else ""
    lines = [
        "**Machine.** %d cores (`nproc`), CPU \"%s\"%s, %.1f GiB RAM, Linux %s. Data directories "
        "under `%s` (%s). Raw `fdatasync` of 100 B (200 syncs, measured by the script): median "
        "%.0f µs, p90 %.0f µs%s." % (
            m["cores"], m["cpu"], mhz, m["mem_gib"] or 0, m["kernel"], m["data_dir"], m["fs"],
            m["fdatasync_us"]["median"], m["fdatasync_us"]["p90"],
            ("; after the run: median %.0f µs, p90 %.0f µs" % (
                after["fdatasync_us"]["median"], after["fdatasync_us"]["p90"])) if after else ""),
        "",
        "**Load.** Before: `%s`; busiest: %s." % (m["uptime"], m["busiest"] or "?"),
    ]
    if after:
        lines.append("After: `%s`; busiest: %s." % (after["uptime"], after["busiest"] or "?"))
    lines += ["",
              "**Versions.** %s; Warden at `%s`, `RelWithDebInfo` (-O2 -g, assertions on)." % (
                  m["etcd"], m["warden"])]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Memory.


def rss_kib(pid):
    """VmRSS of pid in KiB (None if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def cluster_rss(c):
    """{member name: VmRSS KiB} of the running members."""
    return {m.name: rss_kib(m.pid) for m in c.running_members()}


# ---------------------------------------------------------------------------
# RESULTS.md: newest section first, below the file's introduction.


def record_section(markdown):
    try:
        with open(RESULTS_MD) as f:
            text = f.read()
    except OSError:
        text = "# Benchmark results\n"
    at = text.find("\n## ")
    if at < 0:
        text = text.rstrip("\n") + "\n\n" + markdown.rstrip("\n") + "\n"
    else:
        text = text[:at + 1] + markdown.rstrip("\n") + "\n\n" + text[at + 1:]
    with open(RESULTS_MD, "w") as f:
        f.write(text)
    log("recorded a section in %s" % RESULTS_MD)


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

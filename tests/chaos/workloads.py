"""Workloads for the chaos harness: clients that record a checkable history.

A workload is a class with this interface (WORKLOADS maps names to them):

    w = Workload(ctx)      # ctx: RunContext (targets, seed, run dir, stop event)
    w.start()              # starts its client threads
    w.stop()               # stops them (bounded join)
    w.final()              # after every fault healed: final operations
    w.check(lincheck) -> Verdict   # the verdict on what it recorded
    w.stats() -> dict      # operations: total, ok, fail, info

The register workload writes one JSON line per event to history.jsonl in the
run directory, in the format warden-lincheck reads (docs/chaos.md): process,
type invoke/ok/fail/info, f read/write/cas, key, value, time (ns of
time.monotonic_ns() in this process, one clock for every client).

The watch, locks and sessions workloads keep their own records (watch.jsonl,
locks.jsonl, sessions.jsonl) and check them in Python; their checks are
plain functions of what was recorded (check_locks, check_sessions), unit
tested on hand-made histories in test_checks.py.
"""

import collections
import json
import os
import random
import subprocess
import sys
import threading
import time

import grpc
from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc

# python3-etcd3 has no warden.v1 or v3lock stubs, and generated ones would
# clash with its etcdserverpb messages in one interpreter: those few
# messages are encoded by hand (tests/integration/v3lock_client.py); the
# etcd messages inside them (TxnRequest, TxnResponse) are python3-etcd3's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
import v3lock_client as wire  # noqa: E402

OP_TIMEOUT_S = 1.5
KEY_OPS_PER_GENERATION = 80  # invocations on one key before its slot moves on


def channel_options():
    return [("grpc.enable_retries", 0), ("grpc.enable_http_proxy", 0),
            ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000)]


# outcome: ok | violation (safety) | liveness (no progress after healing) | unknown | error
Verdict = collections.namedtuple("Verdict", "outcome detail")


def start_clients(workload, prefix):
    """Starts workload._client(i, seed) for each of workload.clients in a
    daemon thread named prefix-i, kept in workload.threads."""
    for i in range(workload.clients):
        t = threading.Thread(target=workload._client, args=(i, workload.rng.getrandbits(32)),
                             name="%s-%d" % (prefix, i), daemon=True)
        workload.threads.append(t)
        t.start()


class HistoryWriter:
    """Appends JSON lines; thread-safe; flushed per line so a crash keeps them."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.f = open(path, "w")
        self.counts = collections.Counter()
        self.last_ok_ns = 0
        self.max_gap_ns = 0  # the longest time without any acknowledged operation

    def write(self, process, type_, f, key, value, error=None):
        rec = {"process": process, "type": type_, "f": f, "key": key, "value": value,
               "time": time.monotonic_ns()}
        if error is not None:
            rec["error"] = error
        with self.lock:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()
            if type_ != "invoke":
                self.counts[type_] += 1
            if type_ == "ok":
                if self.last_ok_ns:
                    self.max_gap_ns = max(self.max_gap_ns, rec["time"] - self.last_ok_ns)
                self.last_ok_ns = rec["time"]

    def close(self):
        with self.lock:
            self.f.close()


def _refused(err):
    """True when the server says it did not propose the request: warden maps
    "not leader" and "proposal dropped" to this (src/server/etcd_convert.cc)."""
    return (err.code() == grpc.StatusCode.UNAVAILABLE
            and (err.details() or "") == "etcdserver: no leader")


def _not_sent(err):
    """True when gRPC says it could not connect: the request never left."""
    return (err.code() == grpc.StatusCode.UNAVAILABLE
            and "failed to connect" in (err.details() or "").lower())


class RegisterWorkload:
    """Linearizable registers: Range (read), Put (write) and a Txn that puts if
    the value equals an expected one, or if the key is absent (cas)."""

    name = "register"

    def __init__(self, ctx, clients=5, slots=3):
        self.ctx = ctx
        self.rng = random.Random(ctx.seed * 7919 + 1)
        self.clients = clients
        self.slots = slots
        self.history = HistoryWriter(os.path.join(ctx.run_dir, "history.jsonl"))
        self.threads = []
        self.slot_gen = [0] * slots
        self.slot_ops = [0] * slots
        self.last_value = {}  # key -> last value seen or written (a cas expectation)
        self.lock = threading.Lock()
        self.stubs = {}
        self.next_process = clients
        self.stopping = threading.Event()
        self.last_ack = 0.0

    # -- clients ----------------------------------------------------------------

    def _stub(self, member):
        if member not in self.stubs:
            ch = grpc.insecure_channel(self.ctx.client_target(member), options=channel_options())
            self.stubs[member] = rpc_pb2_grpc.KVStub(ch)
        return self.stubs[member]

    def _pick_key(self, rng):
        """A key and its slot. A slot moves to a new key after
        KEY_OPS_PER_GENERATION answered or indeterminate operations (failed
        ones do not count, so that a key written just before an outage is
        still the one read after it)."""
        with self.lock:
            slot = rng.randrange(self.slots)
            if self.slot_ops[slot] >= KEY_OPS_PER_GENERATION:
                self.slot_ops[slot] = 0
                self.slot_gen[slot] += 1
            return slot, "chaos/r%d.%d" % (slot, self.slot_gen[slot])

    def last_ack_time(self):
        """time.monotonic() of the latest acknowledged write or cas."""
        return self.last_ack

    def do_op(self, process, member, f, key, value, rng=None):
        """One operation, recorded. Returns the outcome type."""
        stub = self._stub(member)
        h = self.history
        h.write(process, "invoke", f, key, value)
        try:
            if f == "read":
                resp = stub.Range(rpc_pb2.RangeRequest(key=key.encode()), timeout=OP_TIMEOUT_S)
                v = resp.kvs[0].value.decode() if resp.kvs else None
                h.write(process, "ok", f, key, v)
                if v is not None:
                    with self.lock:
                        self.last_value[key] = v
                return "ok"
            if f == "write":
                stub.Put(rpc_pb2.PutRequest(key=key.encode(), value=value.encode()),
                         timeout=OP_TIMEOUT_S)
                h.write(process, "ok", f, key, value)
                with self.lock:
                    self.last_value[key] = value
                return "ok"
            expected, new = value
            if expected is None:
                cmp = rpc_pb2.Compare(result=rpc_pb2.Compare.EQUAL, target=rpc_pb2.Compare.VERSION,
                                      key=key.encode(), version=0)
            else:
                cmp = rpc_pb2.Compare(result=rpc_pb2.Compare.EQUAL, target=rpc_pb2.Compare.VALUE,
                                      key=key.encode(), value=expected.encode())
            put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key.encode(), value=new.encode()))
            resp = stub.Txn(rpc_pb2.TxnRequest(compare=[cmp], success=[put]), timeout=OP_TIMEOUT_S)
            if resp.succeeded:
                h.write(process, "ok", f, key, value)
                with self.lock:
                    self.last_value[key] = new
                return "ok"
            h.write(process, "fail", f, key, value)  # the compare did not hold
            return "fail"
        except grpc.RpcError as e:
            err = "%s: %s" % (e.code().name, (e.details() or "")[:120])
            # A read that failed changed nothing; a write that may have been
            # sent may still take effect: indeterminate (info), unless gRPC
            # never connected. A cas must not be `fail` here: for the
            # checker a failed cas means "the compare did not hold".
            if f == "read":
                h.write(process, "fail", f, key, None, err)
                return "fail"
            if _not_sent(e) or _refused(e):
                h.write(process, "refused", f, key, value, err)
                return "fail"
            h.write(process, "info", f, key, value, err)
            return "info"

    def _client(self, index, seed):
        rng = random.Random(seed)
        process = index
        member = index % self.ctx.size
        counter = 0
        deadline = time.monotonic() + self.ctx.max_seconds
        for _ in range(1_000_000):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            slot, key = self._pick_key(rng)
            counter += 1
            r = rng.random()
            if r < 0.45:
                f, value = "read", None
            elif r < 0.75:
                f, value = "write", "p%d-%d" % (index, counter)
            else:
                with self.lock:
                    exp = self.last_value.get(key)
                f, value = "cas", [exp, "p%d-%d" % (index, counter)]
            outcome = self.do_op(process, member, f, key, value)
            if outcome != "fail":
                with self.lock:
                    self.slot_ops[slot] += 1
            if outcome == "ok" and f != "read":
                self.last_ack = time.monotonic()
            if outcome == "info":
                # Its operation may still happen: later ones get a new process.
                with self.lock:
                    process = self.next_process
                    self.next_process += 1
            if outcome != "ok":
                self.stopping.wait(0.05 + rng.random() * 0.1)
            else:
                self.stopping.wait(rng.random() * 0.01)

    def start(self):
        start_clients(self, "client")

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=OP_TIMEOUT_S * 3 + 5)

    def final(self):
        """Reads the last two generations of every slot through every member."""
        with self.lock:
            keys = ["chaos/r%d.%d" % (s, g) for s in range(self.slots)
                    for g in range(max(0, self.slot_gen[s] - 1), self.slot_gen[s] + 1)]
            base = self.next_process
            self.next_process += self.ctx.size
        for m in range(self.ctx.size):
            for key in keys:
                self.do_op(base + m, m, "read", key, None)

    def stats(self):
        c = self.history.counts
        return {"ops": c["ok"] + c["fail"] + c["info"] + c["refused"], "ok": c["ok"],
                "fail": c["fail"] + c["refused"], "info": c["info"],
                "max_unavailable_s": round(self.history.max_gap_ns / 1e9, 2)}

    def check(self, lincheck, timeout_s=120):
        self.history.close()
        cmd = [lincheck, "--timeout-ms", str(timeout_s * 1000), self.history.path]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 30)
        except subprocess.TimeoutExpired:
            return Verdict("unknown", "warden-lincheck did not finish")
        out = (p.stdout + p.stderr).strip()
        return Verdict({0: "ok", 1: "violation", 2: "unknown"}.get(p.returncode, "error"), out)


WORKLOADS = {"register": RegisterWorkload}


class WatchWorkload:
    """Watch: every committed event of a prefix arrives exactly once, in
    revision order, across reconnects.

    Two writer clients Put unique values under chaos/w/ (the Put's header
    revision is the event's revision). Three watchers, each starting on its
    own member, watch the prefix from revision 1; when a stream breaks (the
    member was killed, a fault, a cancel) the watcher reconnects to the next
    member and resumes from the last revision it saw + 1. At the end a last
    Put gives revision R, and each watcher must reach R (bounded wait).

    Checked, per watcher: revisions strictly increase (no duplicate, nothing
    out of order); every acknowledged Put at a revision the watcher reached
    was delivered, with its key and value; every event is a Put some writer
    invoked (no phantom values); and all watchers agree on the event at each
    revision. A compacted resume is reported as unknown (nothing can be said).
    """

    name = "watch"
    PREFIX = "chaos/w/"

    def __init__(self, ctx, writers=2, watchers=3):
        self.ctx = ctx
        self.rng = random.Random(ctx.seed * 104729 + 3)
        self.writers = writers
        self.watchers = watchers
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}  # revision -> (key, value)
        self.invoked = set()  # (key, value) of every Put sent
        self.counts = collections.Counter()
        self.events = [[] for _ in range(watchers)]  # (revision, key, value, type)
        self.reconnects = [0] * watchers
        self.compacted = []
        self.calls = [None] * watchers
        self.threads = []
        self.last_ack = 0.0
        self.log_path = os.path.join(ctx.run_dir, "watch.jsonl")
        self.log_f = open(self.log_path, "w")

    def _log(self, rec):
        rec["time"] = time.monotonic_ns()
        with self.lock:
            self.log_f.write(json.dumps(rec) + "\n")

    def _kv(self, member):
        ch = grpc.insecure_channel(self.ctx.client_target(member), options=channel_options())
        return rpc_pb2_grpc.KVStub(ch)

    def _put(self, stub, key, value):
        with self.lock:
            self.invoked.add((key, value))
        try:
            r = stub.Put(rpc_pb2.PutRequest(key=key.encode(), value=value.encode()), timeout=OP_TIMEOUT_S)
        except grpc.RpcError as e:
            self.counts["info" if not (_refused(e) or _not_sent(e)) else "fail"] += 1
            return None
        with self.lock:
            self.acked[r.header.revision] = (key, value)
            self.counts["ok"] += 1
        self.last_ack = time.monotonic()
        self._log({"writer": key, "value": value, "revision": r.header.revision})
        return r.header.revision

    def _writer(self, index, seed):
        rng = random.Random(seed)
        stubs = [self._kv(m) for m in range(self.ctx.size)]
        member = index % self.ctx.size
        deadline = time.monotonic() + self.ctx.max_seconds
        for n in range(1_000_000):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            key = "%sk%d" % (self.PREFIX, rng.randrange(8))
            if self._put(stubs[member], key, "w%d-%d" % (index, n)) is None:
                member = (member + 1) % self.ctx.size
                self.stopping.wait(0.1)
            else:
                self.stopping.wait(rng.random() * 0.02)

    def _watcher(self, index, next_rev=1):
        member = index % self.ctx.size
        prefix = self.PREFIX.encode()
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        deadline = time.monotonic() + self.ctx.max_seconds + 60
        for _ in range(100_000):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            ch = grpc.insecure_channel(self.ctx.client_target(member), options=channel_options())
            stub = rpc_pb2_grpc.WatchStub(ch)
            req = rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
                key=prefix, range_end=end, start_revision=next_rev))
            stop_requests = threading.Event()

            def requests():
                yield req
                stop_requests.wait(self.ctx.max_seconds + 120)

            call = stub.Watch(requests())
            with self.lock:
                self.calls[index] = call
            try:
                for resp in call:
                    if resp.compact_revision:
                        with self.lock:
                            self.compacted.append((index, next_rev, resp.compact_revision))
                        self._log({"watcher": index, "compacted": resp.compact_revision, "from": next_rev})
                        next_rev = resp.compact_revision
                        break
                    if resp.canceled:
                        break
                    for ev in resp.events:
                        rev = ev.kv.mod_revision
                        rec = (rev, ev.kv.key.decode(), ev.kv.value.decode(), int(ev.type))
                        with self.lock:
                            self.events[index].append(rec)
                            self.counts["events"] += 1
                        next_rev = max(next_rev, rev + 1)
                    if self.stopping.is_set():
                        break
            except grpc.RpcError:
                pass
            finally:
                stop_requests.set()
                call.cancel()
                ch.close()
            if self.stopping.is_set():
                return
            self.reconnects[index] += 1
            self._log({"watcher": index, "reconnect_to": (member + 1) % self.ctx.size, "from": next_rev})
            member = (member + 1) % self.ctx.size
            self.stopping.wait(0.2)

    def start(self):
        for i in range(self.watchers):
            t = threading.Thread(target=self._watcher, args=(i,), daemon=True, name="watcher-%d" % i)
            self.threads.append(t)
            t.start()
        for i in range(self.writers):
            t = threading.Thread(target=self._writer, args=(i, self.rng.getrandbits(32)), daemon=True,
                                 name="writer-%d" % i)
            self.threads.append(t)
            t.start()

    def last_ack_time(self):
        return self.last_ack

    def stop(self):
        self.stopping.set()
        with self.lock:
            calls = list(self.calls)
        for c in calls:
            if c is not None:
                c.cancel()
        for t in self.threads:
            t.join(timeout=OP_TIMEOUT_S * 3 + 5)

    def final(self):
        """A last acknowledged Put; each watcher must reach its revision."""
        self.final_rev = None
        for attempt in range(40):
            rev = self._put(self._kv(attempt % self.ctx.size), self.PREFIX + "final", "final-%d" % attempt)
            if rev is not None:
                self.final_rev = rev
                break
            time.sleep(0.25)
        # stop() ended the watchers: resume each from where it left off (the
        # same path as a reconnect) until it reaches the final revision.
        self.stopping = threading.Event()
        self.threads = []
        for i in range(self.watchers):
            with self.lock:
                reached = max((e[0] for e in self.events[i]), default=0)
            t = threading.Thread(target=self._watcher, args=(i, reached + 1), daemon=True)
            self.threads.append(t)
            t.start()
        deadline = time.monotonic() + 25
        for _ in range(300):
            with self.lock:
                tops = [max((e[0] for e in evs), default=0) for evs in self.events]
            if self.final_rev is None or min(tops) >= self.final_rev or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.stopping.set()
        with self.lock:
            calls = list(self.calls)
        for c in calls:
            if c is not None:
                c.cancel()
        for t in self.threads:
            t.join(timeout=10)

    def stats(self):
        c = self.counts
        return {"ops": c["ok"] + c["fail"] + c["info"] + c["events"], "ok": c["ok"], "fail": c["fail"],
                "info": c["info"], "events": c["events"]}

    def check(self, lincheck=None):
        with self.lock:
            self.log_f.close()
        problems = []  # safety: what was delivered is wrong
        stuck = []  # liveness: a watcher did not catch up after every fault healed
        by_rev = {}
        for w, evs in enumerate(self.events):
            last = 0
            for rev, key, value, typ in evs:
                if rev <= last:
                    problems.append("watcher %d: revision %d after %d (duplicate or out of order)" % (w, rev, last))
                last = rev
                if (key, value) not in self.invoked and typ == 0:
                    problems.append("watcher %d: event at %d %s=%s was never written" % (w, rev, key, value))
                seen = by_rev.setdefault(rev, (key, value, typ, w))
                if seen[:3] != (key, value, typ):
                    problems.append("revision %d: watcher %d saw %s=%s, watcher %d saw %s=%s" % (
                        rev, w, key, value, seen[3], seen[0], seen[1]))
            reached = max([e[0] for e in evs] + [0])
            got = {e[0]: e for e in evs}
            for rev, (key, value) in sorted(self.acked.items()):
                if rev > reached:
                    continue
                if rev not in got:
                    problems.append("watcher %d: acknowledged put %s=%s at revision %d never delivered "
                                    "(watcher reached %d)" % (w, key, value, rev, reached))
                elif got[rev][1:3] != (key, value):
                    problems.append("watcher %d: revision %d delivered as %s=%s, acknowledged as %s=%s" % (
                        w, rev, got[rev][1], got[rev][2], key, value))
            if self.final_rev is not None and reached < self.final_rev:
                stuck.append("watcher %d reached revision %d, not the final %d within 25 s" % (
                    w, reached, self.final_rev))
        summary = "%d acknowledged puts, %d events, reconnects %s, final revision %s" % (
            len(self.acked), self.counts["events"], self.reconnects, self.final_rev)
        if problems:
            return Verdict("violation", "%d problems; %s\n" % (len(problems), summary) + "\n".join(problems[:20]))
        if stuck:
            return Verdict("liveness", "%s\n" % summary + "\n".join(stuck))
        if self.compacted:
            return Verdict("unknown", "compacted resumes %s; %s" % (self.compacted, summary))
        return Verdict("ok", "every acknowledged put delivered once, in order, to every watcher; " + summary)


WORKLOADS["watch"] = WatchWorkload


# ---------------------------------------------------------------------------
# Locks: fencing tokens and guarded writes through both lock APIs.

LOCK_SESSION_TTL_S = 5  # each acquisition gets a fresh lease (its session)
LOCK_WAIT_MS = 2000  # how long a native Acquire waits in the queue
LOCK_CALL_S = 3.5  # the RPC timeout of Acquire and of the v3 Lock (they wait in the queue)
LOCK_OUTCOMES = ["GRANTED", "QUEUED", "WOULD_BLOCK", "DEADLOCK", "CONDITION_FAILED", "TIMEOUT",
                 "CANCELLED", "SESSION_ENDED", "NOT_HELD", "BAD_TOKEN", "NOT_WAITING", "INVALID"]


def _prefix_end(prefix):
    b = prefix.encode()
    return b[:-1] + bytes([b[-1] + 1])


def _owner_bytes(session, owner_id):
    return wire.field_varint(1, session) + wire.field_bytes(2, owner_id)


def encode_acquire(path, session, owner_id, wait_ms, ttl_ms, request_id):
    """warden.v1.AcquireRequest (exclusive, priority 0)."""
    return (wire.field_bytes(1, path) + wire.field_bytes(2, _owner_bytes(session, owner_id))
            + wire.field_varint(5, wait_ms) + wire.field_varint(6, ttl_ms)
            + wire.field_varint(9, request_id))


def encode_release(path, session, owner_id, token, request_id):
    return (wire.field_bytes(1, path) + wire.field_bytes(2, _owner_bytes(session, owner_id))
            + wire.field_varint(3, token) + wire.field_varint(4, request_id))


def encode_guarded_txn(path, token, txn):
    """warden.v1.GuardedTxnRequest; txn is python3-etcd3's TxnRequest."""
    return wire.field_bytes(1, path) + wire.field_varint(2, token) + wire.field_bytes(3, txn.SerializeToString())


def decode_lock_response(buf):
    """warden.v1.LockResponse -> (outcome name, token, hold_count, detail)."""
    f = wire.parse(buf)
    o = f.get(2, 0)
    return (LOCK_OUTCOMES[o] if o < len(LOCK_OUTCOMES) else str(o), f.get(3, 0), f.get(4, 0),
            bytes(f.get(5, b"")).decode(errors="replace"))


def _err(e):
    return "%s: %s" % (e.code().name, (e.details() or "")[:120])


def _guard_refused(e):
    """A guarded write the server refused because the token holds nothing."""
    return e.code() == grpc.StatusCode.FAILED_PRECONDITION and "lock guard" in (e.details() or "")


class _JsonlGrpcClients:
    """What the locks and sessions workloads share: a JSON-lines log of their
    own records (self.log_f, under self.lock) and one gRPC channel per
    member (self.channels)."""

    def _log(self, rec):
        with self.lock:
            self.log_f.write(json.dumps(rec) + "\n")
            self.log_f.flush()

    def _channel(self, member):
        with self.lock:
            if member not in self.channels:
                self.channels[member] = grpc.insecure_channel(self.ctx.client_target(member),
                                                              options=channel_options())
            return self.channels[member]


class LocksWorkload(_JsonlGrpcClients):
    """Mutual exclusion and fencing through both lock APIs.

    `clients` threads contend on `locks` lock paths (chaos/lk/<i>); on each
    path half the clients use the native warden.v1 Locks API and half the
    etcd v3lock service, which share the lock table. One cycle: a fresh
    lease (the session, LOCK_SESSION_TTL_S), an acquire, 2-3 guarded writes,
    a release, a revoke.

    - native: Acquire (wait LOCK_WAIT_MS, a hold TTL of 2 s in 30 % of the
      cycles, a request id; a call that fails without an answer is asked
      once more with the same id on the next member), then GuardedTxn with
      the token, then Release with the token.
    - v3: Lock(name, lease) (a failed call is asked once more on the next
      member, which keeps the same request waiting), a linearizable Range of
      the returned key for its create revision R (the fencing token of
      etcd's recipe), then Txn(create_revision(key) == R), then Unlock.

    Each guarded write puts the lock's register chaos/lk/<i>/reg and a key
    of its own, chaos/lk/<i>/w/<hold>.<n>, to the same value in one
    transaction: the final read of the prefix shows every write that took
    effect (answered or not) with the revision it took effect at.
    check_locks() has the properties; everything is in locks.jsonl.
    """

    name = "locks"
    PREFIX = "chaos/lk/"

    def __init__(self, ctx, clients=8, locks=2):
        self.ctx = ctx
        self.rng = random.Random(ctx.seed * 15485863 + 5)
        self.clients = clients
        self.nlocks = locks
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.holds = []
        self.invoked = {}  # log key -> value of every guarded write sent
        self.counts = collections.Counter()
        self.final_reads = []
        self.threads = []
        self.channels = {}
        self.last_ack = 0.0
        self.log_path = os.path.join(ctx.run_dir, "locks.jsonl")
        self.log_f = open(self.log_path, "w")

    def _count(self, outcome):
        with self.lock:
            self.counts[outcome] += 1

    def _call(self, member, method, req, timeout):
        f = self._channel(member).unary_unary(method, request_serializer=lambda b: b,
                                              response_deserializer=lambda b: b)
        return f(req, timeout=timeout)

    @staticmethod
    def _finish(op, outcome, **kw):
        op["complete"] = time.monotonic_ns()
        op["outcome"] = outcome
        op.update(kw)
        return outcome

    # -- one cycle ------------------------------------------------------------------

    def _cycle(self, hold, rng):
        """Returns False when the cluster did not answer (the client moves on)."""
        member = hold["member"]
        lease_stub = rpc_pb2_grpc.LeaseStub(self._channel(member))
        try:
            session = lease_stub.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=LOCK_SESSION_TTL_S),
                                            timeout=OP_TIMEOUT_S).ID
            self._count("ok")
        except grpc.RpcError as e:
            self._count("fail")
            hold["error"] = "grant: " + _err(e)
            return False
        hold["session"] = session
        try:
            if hold["api"] == "native":
                answered = self._native(hold, rng, session)
            else:
                answered = self._v3(hold, rng, session)
        finally:
            try:  # ends whatever is left: a queued or unknown request, a hold
                lease_stub.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=session), timeout=1.0)
            except grpc.RpcError:
                pass
        return answered

    def _acquire_twice(self, hold, member, method, req, decode):
        """Calls `method`; a call that fails without an answer is asked once
        more on the next member with the same request. Records hold["acq"]."""
        acq = hold["acq"] = {"invoke": time.monotonic_ns()}
        unknown = []
        for attempt in range(2):
            m = (member + attempt) % self.ctx.size
            try:
                resp = self._call(m, method, req, LOCK_CALL_S)
            except grpc.RpcError as e:
                if not (_not_sent(e) or _refused(e) or e.code() == grpc.StatusCode.NOT_FOUND):
                    unknown.append(_err(e))
                acq.setdefault("errors", []).append(_err(e))
                if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
                                grpc.StatusCode.INVALID_ARGUMENT):
                    break  # an answer: lease gone, refused
                continue
            ok, fields = decode(resp)
            self._count("ok" if ok else "fail")
            return self._finish(acq, "ok" if ok else "fail", **fields)
        outcome = "info" if unknown else "fail"
        self._count(outcome)
        return self._finish(acq, outcome)

    def _native(self, hold, rng, session):
        lock, owner, member = hold["lock"], hold["id"], hold["member"]
        ttl_ms = 2000 if rng.random() < 0.3 else 0
        hold["ttl_ms"] = ttl_ms
        req = encode_acquire(lock, session, owner, LOCK_WAIT_MS, ttl_ms, rng.getrandbits(62) + 1)

        def decode(resp):
            outcome, token, count, detail = decode_lock_response(resp)
            if outcome == "GRANTED":
                return True, {"token": token, "hold_count": count}
            return False, {"answer": outcome, "detail": detail}

        if self._acquire_twice(hold, member, "/warden.v1.Locks/Acquire", req, decode) != "ok":
            return hold["acq"]["outcome"] == "fail" and "errors" not in hold["acq"]
        token = hold["acq"]["token"]
        hold["token"] = token

        def write(txn):
            req = encode_guarded_txn(lock, token, txn)
            f = self._channel(member).unary_unary("/warden.v1.Locks/GuardedTxn",
                                                  request_serializer=lambda b: b,
                                                  response_deserializer=rpc_pb2.TxnResponse.FromString)
            return f(req, timeout=OP_TIMEOUT_S)

        self._writes(hold, rng, token, write)
        rel = hold["release"] = {"invoke": time.monotonic_ns()}
        try:
            resp = self._call(member, "/warden.v1.Locks/Release",
                              encode_release(lock, session, owner, token, rng.getrandbits(62) + 1),
                              OP_TIMEOUT_S)
            outcome, _, count, detail = decode_lock_response(resp)
            # GRANTED with nothing left: the hold lasted until this release.
            released = outcome == "GRANTED" and count == 0
            self._count("ok" if released else "fail")
            self._finish(rel, "ok" if released else "fail", released=released, answer=outcome)
        except grpc.RpcError as e:
            self._count("info")
            self._finish(rel, "info", error=_err(e))
        return True

    def _v3(self, hold, rng, session):
        lock, member = hold["lock"], hold["member"]
        req = wire.field_bytes(1, lock) + wire.field_varint(2, session)

        def decode(resp):
            key = bytes(wire.parse(resp).get(2, b"")).decode()
            return (True, {"key": key}) if key else (False, {"answer": "no key"})

        if self._acquire_twice(hold, member, "/v3lockpb.Lock/Lock", req, decode) != "ok":
            return hold["acq"]["outcome"] == "fail" and "errors" not in hold["acq"]
        key = hold["acq"]["key"]
        kv = rpc_pb2_grpc.KVStub(self._channel(member))
        rng_op = hold["range"] = {"invoke": time.monotonic_ns()}
        try:
            r = kv.Range(rpc_pb2.RangeRequest(key=key.encode()), timeout=OP_TIMEOUT_S)
            self._count("ok")
            self._finish(rng_op, "ok", found=bool(r.kvs))
            token = r.kvs[0].create_revision if r.kvs else None
        except grpc.RpcError as e:
            self._count("fail")
            self._finish(rng_op, "fail", error=_err(e))
            token = None
        if token is not None:
            hold["token"] = token
            cmp = rpc_pb2.Compare(result=rpc_pb2.Compare.EQUAL, target=rpc_pb2.Compare.CREATE,
                                  key=key.encode(), create_revision=token)

            def write(txn):
                txn.compare.extend([cmp])
                return kv.Txn(txn, timeout=OP_TIMEOUT_S)

            self._writes(hold, rng, token, write)
        rel = hold["release"] = {"invoke": time.monotonic_ns()}
        try:
            self._call(member, "/v3lockpb.Lock/Unlock", wire.field_bytes(1, key), OP_TIMEOUT_S)
            self._count("ok")
            self._finish(rel, "ok", released=False)  # Unlock does not say whether it held
        except grpc.RpcError as e:
            self._count("info")
            self._finish(rel, "info", error=_err(e))
        return True

    def _writes(self, hold, rng, token, write):
        hold["writes"] = []
        lock = hold["lock"]
        for j in range(rng.choice([2, 2, 3])):
            key = "%s/w/%s.%d" % (lock, hold["id"], j)
            value = "%s.%d %s %d" % (hold["id"], j, hold["api"], token)
            with self.lock:
                self.invoked[key] = value
            puts = [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=k.encode(), value=value.encode()))
                    for k in (lock + "/reg", key)]
            w = {"key": key, "value": value, "invoke": time.monotonic_ns()}
            hold["writes"].append(w)
            try:
                resp = write(rpc_pb2.TxnRequest(success=puts))
                if resp.succeeded:
                    self._finish(w, "ok", revision=resp.header.revision)
                    self.last_ack = time.monotonic()
                else:
                    self._finish(w, "fail", answer="compare failed")
            except grpc.RpcError as e:
                # Refused by the guard, or never proposed: it did not happen.
                definite = _guard_refused(e) or _not_sent(e) or _refused(e)
                self._finish(w, "fail" if definite else "info", error=_err(e))
            self._count(w["outcome"])
            if w["outcome"] == "fail":
                return  # the lock is lost (or the cluster refused): stop writing
            self.stopping.wait(rng.random() * 0.02)

    def _client(self, index, seed):
        rng = random.Random(seed)
        api = "native" if (index // self.nlocks) % 2 == 0 else "v3"
        lock = "%s%d" % (self.PREFIX, index % self.nlocks)
        member = index % self.ctx.size
        deadline = time.monotonic() + self.ctx.max_seconds
        for n in range(1_000_000):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            hold = {"id": "c%d.%d" % (index, n), "client": index, "api": api, "lock": lock,
                    "member": member}
            answered = self._cycle(hold, rng)
            with self.lock:
                self.holds.append(hold)
            self._log({"hold": hold})
            if not answered:
                member = (member + 1) % self.ctx.size
                self.stopping.wait(0.1 + rng.random() * 0.1)
            else:
                self.stopping.wait(rng.random() * 0.02)

    def start(self):
        start_clients(self, "locker")

    def last_ack_time(self):
        return self.last_ack

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=LOCK_CALL_S * 2 + OP_TIMEOUT_S * 5 + 5)

    def final(self):
        """A linearizable read of the whole prefix through every member."""
        deadline = time.monotonic() + 30
        for m in range(self.ctx.size):
            kv = rpc_pb2_grpc.KVStub(self._channel(m))
            for _ in range(40):
                try:
                    r = kv.Range(rpc_pb2.RangeRequest(key=self.PREFIX.encode(),
                                                      range_end=_prefix_end(self.PREFIX)), timeout=3.0)
                except grpc.RpcError as e:
                    self._log({"final_read": m, "error": _err(e)})
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.3)
                    continue
                entries = {x.key.decode(): [x.value.decode(), x.mod_revision] for x in r.kvs}
                read = {"member": m, "revision": r.header.revision, "entries": entries}
                self.final_reads.append(read)
                self._log({"final_read": m, "revision": r.header.revision, "keys": len(entries)})
                break

    def stats(self):
        c = self.counts
        return {"ops": c["ok"] + c["fail"] + c["info"], "ok": c["ok"], "fail": c["fail"], "info": c["info"]}

    def check(self, lincheck=None):
        with self.lock:
            self.log_f.close()
            holds = list(self.holds)
        problems, notes = check_locks(holds, self.final_reads, dict(self.invoked))
        if problems:
            kinds = collections.Counter(p.split(":")[0] for p in problems)
            return Verdict("violation", "%d problems (%s); %s\n" % (
                len(problems), ", ".join("%s %d" % kv for kv in sorted(kinds.items())), notes)
                + "\n".join(problems[:20]))
        if not self.final_reads:
            return Verdict("unknown", "no final read succeeded; " + notes)
        return Verdict("ok", "mutual exclusion, token order and every acknowledged guarded write hold; "
                       + notes)


def check_locks(holds, final_reads, invoked):
    """The lock properties, from what the clients saw and a final read.

    holds: one dict per acquisition: id, api (native|v3), lock, acq
    {invoke, complete, outcome ok|fail|info, token (native)}, token (native:
    the fencing token; v3: the lock key's create revision), writes [{key,
    value, invoke, complete, outcome, revision (ok)}], release {invoke,
    complete, outcome, released (native: the hold lasted until it)}. Times
    are ns of one monotonic clock. final_reads: [{member, entries: {key:
    [value, mod_revision]}}], linearizable reads of the whole prefix after
    the run. invoked: {log key: value} of every guarded write sent.

    Returns (problems, notes). Sound with unknown outcomes: an `info`
    acquire or write is never assumed to have happened or not; the final
    read says which writes took effect, and only answered operations bound
    times.
      1. exclusion in real time: a hold is known to be held from its
         acquire's answer to the invoke of its last acknowledged write (or
         of a native release that found it still held); two such intervals
         of one lock never overlap;
      2. tokens: no two holds of one API share a token, and an acquire
         answered before another was invoked has the smaller token
         (native tokens come from one counter for every lock; v3 create
         revisions are revisions);
      3. no acknowledged guarded write is lost (in every final read, with
         the value and the revision it was acknowledged at), no write the
         guard refused took effect, and every entry is a write that was sent;
      4. exclusion in write order: in revision order the writes of one hold
         are contiguous (no other holder wrote between them), and tokens
         strictly increase from one hold to the next (per API);
      5. the register's last write is the last entry of its lock.
    """
    problems = []
    ms = lambda ns: "%.3f" % (ns / 1e9)  # noqa: E731
    by_id = {h["id"]: h for h in holds}
    acquired = [h for h in holds if h.get("acq", {}).get("outcome") == "ok" and h.get("token") is not None]

    # 1. Real-time exclusion.
    intervals = {}
    for h in acquired:
        start = h["acq"]["complete"]
        proofs = [w["invoke"] for w in h.get("writes", []) if w.get("outcome") == "ok"]
        rel = h.get("release") or {}
        if rel.get("outcome") == "ok" and rel.get("released"):
            proofs.append(rel["invoke"])
        if proofs and max(proofs) > start:
            intervals.setdefault(h["lock"], []).append((start, max(proofs), h["id"]))
    for lock, ivs in intervals.items():
        ivs.sort()
        latest = None  # the interval reaching furthest so far
        for iv in ivs:
            if latest is not None and iv[0] < latest[1]:
                problems.append("exclusion: %s: holds %s [%s, %s] and %s [%s, %s] were both held at once "
                                "(acquire answered, then a guarded write or release proved the hold)" % (
                                    lock, latest[2], ms(latest[0]), ms(latest[1]), iv[2], ms(iv[0]), ms(iv[1])))
            if latest is None or iv[1] > latest[1]:
                latest = iv

    # 2. Tokens: unique, and in real-time order.
    for api in ("native", "v3"):
        hs = sorted((h for h in acquired if h["api"] == api), key=lambda h: h["acq"]["invoke"])
        seen = {}
        for h in hs:
            if h["token"] in seen:
                problems.append("token: %s and %s were both granted with %s token %d" % (
                    seen[h["token"]], h["id"], api, h["token"]))
            seen[h["token"]] = h["id"]
        by_complete = sorted(hs, key=lambda h: h["acq"]["complete"])
        # For each acquire, the largest token among acquires answered before it was invoked.
        best = None
        i = 0
        for h in hs:
            while i < len(by_complete) and by_complete[i]["acq"]["complete"] < h["acq"]["invoke"]:
                if best is None or by_complete[i]["token"] > best["token"]:
                    best = by_complete[i]
                i += 1
            if best is not None and h["token"] <= best["token"]:
                problems.append("token order: %s got %s token %d at [%s, %s] after %s got %d (answered at %s)" % (
                    h["id"], api, h["token"], ms(h["acq"]["invoke"]), ms(h["acq"]["complete"]), best["id"],
                    best["token"], ms(best["acq"]["complete"])))

    # 3. Writes against every final read.
    for read in final_reads:
        entries = read["entries"]
        for h in holds:
            for w in h.get("writes", []):
                got = entries.get(w["key"])
                if w.get("outcome") == "ok":
                    if got is None:
                        problems.append("lost write: %s=%r acknowledged at revision %s is missing from member "
                                        "%s's final read" % (w["key"], w["value"], w.get("revision"), read["member"]))
                    elif got[0] != w["value"] or got[1] != w.get("revision"):
                        problems.append("lost write: %s acknowledged as %r at revision %s, read as %r at %s" % (
                            w["key"], w["value"], w.get("revision"), got[0], got[1]))
                elif w.get("outcome") == "fail" and got is not None:
                    problems.append("refused write took effect: %s (%s) is in the final read at revision %s" % (
                        w["key"], w.get("error") or w.get("answer"), got[1]))
        for key, (value, _) in entries.items():
            if "/w/" in key and invoked.get(key) != value:
                problems.append("phantom write: %s=%r was never sent" % (key, value))

    # 4 and 5. Write order, from the read that saw the most.
    notes_read = "no final read"
    if final_reads:
        read = max(final_reads, key=lambda r: len(r["entries"]))
        notes_read = "final read of member %s: %d keys" % (read["member"], len(read["entries"]))
        per_lock = {}
        for key, (value, rev) in read["entries"].items():
            if "/w/" not in key:
                continue
            lock = key.split("/w/")[0]
            parts = value.split(" ")
            hold_id = parts[0].rsplit(".", 1)[0]
            per_lock.setdefault(lock, []).append((rev, hold_id, parts[1] if len(parts) > 1 else "?",
                                                  int(parts[2]) if len(parts) > 2 else -1, key))
        for lock, seq in per_lock.items():
            seq.sort()
            segments = []  # runs of one hold's writes: [hold, api, token, first revision]
            done = set()
            for rev, hold_id, api, token, key in seq:
                h = by_id.get(hold_id)
                if h is not None and h.get("token") is not None and token != h["token"]:
                    problems.append("write %s at revision %d carries token %d, its hold had %s" % (
                        key, rev, token, h["token"]))
                if segments and segments[-1][0] == hold_id:
                    continue
                if hold_id in done:
                    problems.append("exclusion: %s: hold %s wrote at revision %d after hold %s had written "
                                    "at %d, between writes of %s" % (lock, hold_id, rev, segments[-1][0],
                                                                     segments[-1][3], hold_id))
                done.add(hold_id)
                segments.append((hold_id, api, token, rev))
            last = {}  # api -> (hold, token) of the previous hold of that API
            for hold_id, api, token, rev in segments:
                if api in last and token <= last[api][1]:
                    problems.append("token order: %s: hold %s (%s token %d) wrote at revision %d after hold "
                                    "%s (token %d) had written" % (lock, hold_id, api, token, rev,
                                                                   last[api][0], last[api][1]))
                last[api] = (hold_id, token)
            reg = read["entries"].get(lock + "/reg")
            if seq and (reg is None or reg[1] != seq[-1][0]):
                problems.append("register %s/reg is %s, but the last guarded write is %s at revision %d" % (
                    lock, reg, seq[-1][4], seq[-1][0]))
    n_ok = sum(1 for h in holds for w in h.get("writes", []) if w.get("outcome") == "ok")
    n_info = sum(1 for h in holds for w in h.get("writes", []) if w.get("outcome") == "info")
    notes = "%d acquisitions (%d granted, %d unknown), %d guarded writes acknowledged, %d unknown; %s" % (
        len(holds), len(acquired), sum(1 for h in holds if h.get("acq", {}).get("outcome") == "info"),
        n_ok, n_info, notes_read)
    return problems, notes


WORKLOADS["locks"] = LocksWorkload


# ---------------------------------------------------------------------------
# Sessions: leases with short TTLs, their keys, keep-alives and expiry.

SESSION_TTLS_S = (2, 3, 4)
SESSION_SLACK_S = 4.0  # a lapsed lease's key goes within TTL + this (2 elections + a commit)
SESSION_EPS_S = 0.1  # clock resolution between this process and the leader (one machine)
POLL_MARGIN_NS = 1_500_000_000  # a poll round of every member's Status (0.2 s + 3 x 0.3 s timeouts), rounded up


class SessionsWorkload(_JsonlGrpcClients):
    """Sessions (leases) and their ephemeral keys under faults.

    `clients` threads each loop: LeaseGrant with a TTL of 2-4 s, Put a key
    chaos/s/c<i>.<n> attached to the lease, then either let it lapse at once
    (40 %) or keep it alive with LeaseKeepAlive every TTL/3 for 2-5 TTLs and
    then revoke it (LeaseRevoke) or let it lapse. A monitor reads the prefix
    (linearizable, keys only) every 150 ms through each member in turn, and
    a poller records when a member first reports a leader of a new term.
    After the run every keep-alive stops and final() waits for every key to
    go. check_sessions() has the properties; everything is in
    sessions.jsonl. Lease timing assumes the leader's clock runs at the
    rate of this process's: under the `clock` nemesis the timing findings
    are reported as notes, not as failures.
    """

    name = "sessions"
    PREFIX = "chaos/s/"

    def __init__(self, ctx, clients=6):
        self.ctx = ctx
        self.rng = random.Random(ctx.seed * 32452843 + 7)
        self.clients = clients
        self.clock_faults = getattr(ctx, "nemesis", None) == "clock"
        self.stopping = threading.Event()
        self.monitors_stop = threading.Event()
        self.lock = threading.Lock()
        self.sessions = []
        self.reads = []
        self.leader_starts = []  # ns when a member first reported a leader of a higher term
        self.final_state = None
        self.counts = collections.Counter()
        self.threads = []
        self.monitors = []
        self.channels = {}
        self.last_ack = 0.0
        self.log_path = os.path.join(ctx.run_dir, "sessions.jsonl")
        self.log_f = open(self.log_path, "w")

    def _finish(self, op, outcome, **kw):
        op["complete"] = time.monotonic_ns()
        op["outcome"] = outcome
        op.update(kw)
        with self.lock:
            self.counts["ok" if outcome == "gone" else outcome] += 1
        return outcome

    def _keepalive(self, member, lease_id):
        ka = {"invoke": time.monotonic_ns(), "member": member}
        stub = rpc_pb2_grpc.LeaseStub(self._channel(member))
        call = None
        try:
            call = stub.LeaseKeepAlive(iter([rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)]), timeout=1.0)
            resp = next(call)
            # TTL 0: the leader says the lease is gone.
            self._finish(ka, "ok" if resp.TTL > 0 else "gone", ttl=resp.TTL)
        except StopIteration:  # ended without an answer: no leader, or the relay failed
            self._finish(ka, "info", error="no answer")
        except grpc.RpcError as e:
            self._finish(ka, "fail" if _not_sent(e) else "info", error=_err(e))
        finally:
            if call is not None:
                call.cancel()
        return ka

    def _client(self, index, seed):
        rng = random.Random(seed)
        member = index % self.ctx.size
        deadline = time.monotonic() + self.ctx.max_seconds
        for n in range(1_000_000):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            ttl = rng.choice(SESSION_TTLS_S)
            s = {"key": "%sc%d.%d" % (self.PREFIX, index, n), "ttl": ttl, "client": index,
                 "mode": "keep" if rng.random() < 0.6 else "lapse", "kas": []}
            lease = rpc_pb2_grpc.LeaseStub(self._channel(member))
            s["grant"] = {"invoke": time.monotonic_ns()}
            try:
                r = lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=ttl), timeout=OP_TIMEOUT_S)
                self._finish(s["grant"], "ok", id=r.ID)
                s["id"], s["ttl"] = r.ID, r.TTL
            except grpc.RpcError as e:
                self._finish(s["grant"], "fail" if _not_sent(e) else "info", error=_err(e))
                self._done(s)
                member = (member + 1) % self.ctx.size
                self.stopping.wait(0.1)
                continue
            s["put"] = {"invoke": time.monotonic_ns()}
            try:
                rpc_pb2_grpc.KVStub(self._channel(member)).Put(
                    rpc_pb2.PutRequest(key=s["key"].encode(), value=b"x", lease=s["id"]), timeout=OP_TIMEOUT_S)
                self._finish(s["put"], "ok")
                self.last_ack = time.monotonic()
            except grpc.RpcError as e:
                self._finish(s["put"], "fail" if _not_sent(e) or _refused(e) else "info", error=_err(e))
            if s["mode"] == "keep":
                until = time.monotonic() + rng.uniform(2, 5) * ttl
                for _ in range(10_000):
                    if time.monotonic() > until or self.stopping.is_set():
                        break
                    ka = self._keepalive(member, s["id"])
                    s["kas"].append(ka)
                    if ka["outcome"] == "gone":
                        break
                    if ka["outcome"] != "ok":
                        member = (member + 1) % self.ctx.size
                        self.stopping.wait(0.1)
                    else:
                        self.stopping.wait(ttl / 3.0)
            s["end"] = time.monotonic_ns()  # no keep-alive is sent after this
            if s["mode"] == "keep" and not self.stopping.is_set() and rng.random() < 0.5:
                s["revoke"] = {"invoke": time.monotonic_ns()}
                try:
                    lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=s["id"]), timeout=OP_TIMEOUT_S)
                    self._finish(s["revoke"], "ok")
                except grpc.RpcError as e:
                    # NOT_FOUND: it had expired already; either way it ends no later.
                    self._finish(s["revoke"], "fail" if e.code() == grpc.StatusCode.NOT_FOUND else "info",
                                 error=_err(e))
            self._done(s)
            self.stopping.wait(rng.random() * 0.2)

    def _done(self, s):
        with self.lock:
            self.sessions.append(s)
        self._log({"session": s})

    def _monitor(self):
        kv = {}
        member = 0
        deadline = time.monotonic() + self.ctx.max_seconds + 120
        for _ in range(1_000_000):
            if self.monitors_stop.is_set() or time.monotonic() > deadline:
                return
            if member not in kv:
                kv[member] = rpc_pb2_grpc.KVStub(self._channel(member))
            rd = {"invoke": time.monotonic_ns(), "member": member}
            try:
                r = kv[member].Range(rpc_pb2.RangeRequest(key=self.PREFIX.encode(), range_end=_prefix_end(self.PREFIX),
                                                          keys_only=True), timeout=1.0)
                rd["complete"] = time.monotonic_ns()
                rd["keys"] = sorted(x.key.decode() for x in r.kvs)
                with self.lock:
                    self.reads.append(rd)
                    self.counts["reads"] += 1
                self._log({"read": rd})
            except grpc.RpcError:
                pass
            member = (member + 1) % self.ctx.size
            self.monitors_stop.wait(0.15)

    def _poll_leaders(self):
        stubs = [rpc_pb2_grpc.MaintenanceStub(self._channel(m)) for m in range(self.ctx.size)]
        top = 0
        deadline = time.monotonic() + self.ctx.max_seconds + 120
        for _ in range(1_000_000):
            if self.monitors_stop.is_set() or time.monotonic() > deadline:
                return
            for stub in stubs:
                try:
                    r = stub.Status(rpc_pb2.StatusRequest(), timeout=0.3)
                except grpc.RpcError:
                    continue
                if r.leader and r.raftTerm > top:
                    top = r.raftTerm
                    t = time.monotonic_ns()
                    with self.lock:
                        self.leader_starts.append(t)
                    self._log({"leader": r.leader, "term": r.raftTerm, "seen": t})
            self.monitors_stop.wait(0.2)

    def start(self):
        for target, name in ((self._monitor, "sessions-monitor"), (self._poll_leaders, "sessions-leaders")):
            t = threading.Thread(target=target, name=name, daemon=True)
            self.monitors.append(t)
            t.start()
        start_clients(self, "session")

    def last_ack_time(self):
        return self.last_ack

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=OP_TIMEOUT_S * 3 + 5)

    def close(self):
        self.monitors_stop.set()

    def final(self):
        """Every keep-alive has stopped: every key must go within the longest
        TTL + slack, counted again from any leader seen meanwhile."""
        t_end = time.monotonic_ns()
        ttl = max([s.get("ttl", 0) for s in self.sessions] + [max(SESSION_TTLS_S)])
        bound = ttl + SESSION_SLACK_S + (25 if self.clock_faults else 0)
        last = None
        for _ in range(1000):
            with self.lock:
                starts = [t for t in self.leader_starts if t > t_end]
                last = self.reads[-1] if self.reads else None
            limit = max([t_end] + starts) + int(bound * 1e9)
            if last is not None and last["invoke"] > t_end and not last["keys"]:
                break
            if time.monotonic_ns() > min(limit, t_end + int(40e9)):
                break
            time.sleep(0.2)
        self.monitors_stop.set()
        for t in self.monitors:
            t.join(timeout=5)
        if last is not None and last["invoke"] > t_end:
            self.final_state = {"end": t_end, "read": last["invoke"], "keys": last["keys"]}
        self._log({"final": self.final_state})

    def stats(self):
        c = self.counts
        return {"ops": c["ok"] + c["fail"] + c["info"] + c["reads"], "ok": c["ok"], "fail": c["fail"],
                "info": c["info"], "reads": c["reads"]}

    def check(self, lincheck=None):
        with self.lock:
            self.log_f.close()
        violations, late, notes = check_sessions(self.sessions, self.reads, self.leader_starts, self.final_state,
                                                 clock_faults=self.clock_faults)
        if violations:
            return Verdict("violation", "%d problems; %s\n" % (len(violations), notes) + "\n".join(violations[:20]))
        if late:
            return Verdict("liveness", "%s\n" % notes + "\n".join(late[:20]))
        if self.final_state is None:
            return Verdict("unknown", "no final read after the keep-alives stopped; " + notes)
        return Verdict("ok", "no key vanished early or outlived its lease; " + notes)


def check_sessions(sessions, reads, leader_starts, final, slack_s=SESSION_SLACK_S, eps_s=SESSION_EPS_S,
                   clock_faults=False):
    """The session properties, from the clients' operations and the monitor's
    linearizable reads (ns of one monotonic clock; TTLs in seconds).

    sessions: [{key, ttl, grant {invoke, complete, outcome}, put {...}, kas:
    [{invoke, complete, outcome ok|gone|fail|info, ttl}], end (no keep-alive
    sent after it), revoke {...} (optional)}]; reads: [{invoke, complete,
    keys}]; leader_starts: times a member first reported a leader of a
    higher term; final: {end, read, keys} or None.

    A lease acknowledged (granted, or renewed with TTL > 0) by a call invoked
    at t lives until at least t + TTL: the leader restarts the TTL when it
    handles the call, after t. A new leader restarts each lease at most a
    full TTL from when it took over. Returns (violations, late, notes):
      violations (safety):
        - early: a read invoked after the Put was acknowledged, completed
          before t + TTL of the latest acknowledged renewal (and before any
          revoke was sent), does not show the key;
        - a keep-alive answered "gone" (TTL 0) before that time;
        - a read invoked after an acknowledged LeaseRevoke shows the key.
      late (liveness), for a lease no longer kept alive whose every
      keep-alive was answered: D = the last answer (grant or renewal) + TTL,
      or the latest leader seen before the read + TTL if later (a new
      leader restarts the lease with at most its TTL); a read invoked after
      D + slack still shows the key. And the final read,
      after every keep-alive stopped, shows no key.
    Under clock faults the timing findings (early, gone, late, final) are
    notes only: leases rely on the leader's clock running at real rate.
    """
    violations, late, timing = [], [], []
    eps = int(eps_s * 1e9)
    slack = int(slack_s * 1e9)
    starts = sorted(leader_starts)
    reads = sorted((r for r in reads if "complete" in r), key=lambda r: r["invoke"])
    ms = lambda ns: "%.3f" % (ns / 1e9)  # noqa: E731
    counts = collections.Counter()
    for s in sessions:
        grant = s.get("grant") or {}
        if grant.get("outcome") != "ok":
            continue
        counts["sessions"] += 1
        key, ttl = s["key"], int(s["ttl"] * 1e9)
        put = s.get("put") or {}
        kas = s.get("kas", [])
        renewals = [grant["invoke"]] + [k["invoke"] for k in kas if k.get("outcome") == "ok"]
        alive_until = max(renewals) + ttl  # at least
        revoke = s.get("revoke")
        revoke_sent = revoke["invoke"] if revoke else float("inf")
        if put.get("outcome") == "ok":
            for r in reads:
                if (r["invoke"] > put["complete"] and key not in r["keys"]
                        and r["complete"] < alive_until - eps and r["complete"] < revoke_sent):
                    timing.append("early: key %s gone in a read [%s, %s] of member %s; an acknowledged renewal "
                                  "keeps its lease (TTL %ds) until at least %s" % (
                                      key, ms(r["invoke"]), ms(r["complete"]), r.get("member"), s["ttl"],
                                      ms(alive_until)))
                    break
        for k in kas:
            if k.get("outcome") == "gone" and k["complete"] < alive_until - eps and k["complete"] < revoke_sent:
                timing.append("early: keep-alive of %s (lease %s) answered TTL 0 at %s through member %s; an "
                              "acknowledged renewal keeps it until at least %s" % (
                                  key, s.get("id"), ms(k["complete"]), k.get("member"), ms(alive_until)))
        if revoke and revoke.get("outcome") == "ok":
            counts["revoked"] += 1
            for r in reads:
                if r["invoke"] > revoke["complete"] and key in r["keys"]:
                    violations.append("revoked: key %s still present in a read invoked at %s, after LeaseRevoke "
                                      "was acknowledged at %s" % (key, ms(r["invoke"]), ms(revoke["complete"])))
                    break
            continue
        if s.get("end") is None or any(k.get("outcome") == "info" for k in kas):
            continue  # an unanswered keep-alive may be handled any time later
        counts["lapsed"] += 1
        due = max([grant["complete"]] + [k["complete"] for k in kas if k.get("outcome") == "ok"]) + ttl
        for r in reads:
            if r["invoke"] <= due + slack or key not in r["keys"]:
                continue
            # Until the revoke commits, each new leader restarts the lease
            # with at most its TTL. The poller sees a leader up to a poll
            # round after it took over.
            seen = [t for t in starts if t < r["complete"] + POLL_MARGIN_NS]
            bound = max([due] + [t + ttl for t in seen])
            if r["invoke"] > bound + slack:
                timing.append("late: key %s of a lapsed lease (TTL %ds) still present in a read invoked at %s; "
                              "due by %s (+%.1fs slack)" % (key, s["ttl"], ms(r["invoke"]), ms(bound), slack_s))
                break
    if final is not None and final["keys"]:
        timing.append("late: %d keys still present at %s, after every keep-alive stopped at %s: %s" % (
            len(final["keys"]), ms(final["read"]), ms(final["end"]), ", ".join(final["keys"][:5])))
    for t in timing:
        if clock_faults:
            continue
        (late if t.startswith("late") else violations).append(t)
    notes = "%d sessions (%d revoked, %d lapsed and checked for expiry), %d reads, %d leaders seen" % (
        counts["sessions"], counts["revoked"], counts["lapsed"], len(reads), len(starts))
    if clock_faults and timing:
        notes += "; under clock faults, not counted: " + "; ".join(timing[:5])
    return violations, late, notes


WORKLOADS["sessions"] = SessionsWorkload

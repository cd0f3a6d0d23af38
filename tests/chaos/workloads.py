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

Lock, session and watch workloads plug in the same way when the lock API
lands: a class with these five methods and an entry in WORKLOADS.
"""

import collections
import json
import os
import random
import subprocess
import threading
import time

import grpc
from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc

OP_TIMEOUT_S = 1.5
KEY_OPS_PER_GENERATION = 80  # invocations on one key before its slot moves on


def channel_options():
    return [("grpc.enable_retries", 0), ("grpc.enable_http_proxy", 0),
            ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000)]


# outcome: ok | violation (safety) | liveness (no progress after healing) | unknown | error
Verdict = collections.namedtuple("Verdict", "outcome detail")


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
        for i in range(self.clients):
            t = threading.Thread(target=self._client, args=(i, self.rng.getrandbits(32)),
                                 name="client-%d" % i, daemon=True)
            self.threads.append(t)
            t.start()

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

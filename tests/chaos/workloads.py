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


Verdict = collections.namedtuple("Verdict", "outcome detail")  # ok | violation | unknown | error


class HistoryWriter:
    """Appends JSON lines; thread-safe; flushed per line so a crash keeps them."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.f = open(path, "w")
        self.counts = collections.Counter()

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
        return {"ops": c["ok"] + c["fail"] + c["info"], "ok": c["ok"], "fail": c["fail"],
                "info": c["info"]}

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

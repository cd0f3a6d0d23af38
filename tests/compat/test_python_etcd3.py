"""Compatibility: python3-etcd3 0.12 (Debian's) against a 3-member warden cluster.

Run from the repository root with Debian's interpreter (python3-etcd3 and
python3-grpcio are installed only there):

    WARDEN_BIN=build/warden /usr/bin/python3 -m unittest -v tests/compat/test_python_etcd3.py
    /usr/bin/python3 tests/compat/test_python_etcd3.py --warden build/warden -v

Lease and watch tests are skipped with a reason when the server answers
UNIMPLEMENTED. Watch support is probed with the raw gRPC stub first: the
library's watcher thread would otherwise retry an UNIMPLEMENTED stream in a
tight loop. Events are read through callbacks into queues with timeouts
(the library's iterators block without one). Debian's grpc may print
warnings; they are harmless.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import cluster  # noqa: E402
from cluster import ClusterTestCase, Cluster, wait_until  # noqa: E402

try:
    import etcd3
    import etcd3.etcdrpc as etcdrpc
    import etcd3.events
    import etcd3.exceptions
    import grpc
except ImportError as e:  # pragma: no cover - setup problem, reported loudly
    raise ImportError("python3-etcd3 and python3-grpcio are required; run with "
                      "Debian's /usr/bin/python3 (%s)" % e)

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"
GRPC_OPTIONS = [("grpc.enable_http_proxy", 0)]
RPC_TIMEOUT = 5


def unimplemented(err):
    return isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNIMPLEMENTED


class PythonEtcd3Test(ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.track_class(Cluster(size=3, name_prefix="py"))
        cls.c.start()
        cls.clients = {}
        cls.watch_probe = cls._probe_watch()

    @classmethod
    def tearDownClass(cls):
        # Close the channels first: a closed channel also ends the library's
        # watcher thread instead of letting it reconnect to stopped servers.
        previous_hook = threading.excepthook

        def quiet_closed_channel(args):
            # The library's watcher thread ends with "Channel closed": expected here.
            if args.thread is not None and args.thread.name.startswith("etcd3_watch_") and \
                    isinstance(args.exc_value, ValueError):
                return
            previous_hook(args)
        threading.excepthook = quiet_closed_channel
        for cl in cls.clients.values():
            cl.close()
        cls.clients = {}
        super().tearDownClass()

    @classmethod
    def client_for(cls, m):
        if m.name not in cls.clients:
            cls.clients[m.name] = etcd3.client(host="127.0.0.1", port=m.client_port,
                                               timeout=RPC_TIMEOUT, grpc_options=GRPC_OPTIONS)
        return cls.clients[m.name]

    @classmethod
    def fresh_client_for(cls, m):
        """A new channel to m (e.g. after a restart: the old one may still be
        broken and fail its next call with UNAVAILABLE)."""
        old = cls.clients.pop(m.name, None)
        if old is not None:
            old.close()
        return cls.client_for(m)

    @classmethod
    def _probe_watch(cls):
        """None if Watch is served, else the reason to skip watch tests."""
        m = cls.c.members[0]
        channel = grpc.insecure_channel(m.endpoint, options=GRPC_OPTIONS)
        done = threading.Event()

        def requests():
            yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                key=b"warden-watch-probe"))
            done.wait(10)  # keep the stream open until the answer is read

        try:
            stream = etcdrpc.WatchStub(channel).Watch(requests(), timeout=RPC_TIMEOUT)
            first = next(stream)
            if not first.created:
                return "Watch probe: first response is not 'created': %r" % first
            return None
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                return "Watch: the server answers UNIMPLEMENTED (not served by %s)" % cls.c.binary
            raise
        finally:
            done.set()
            channel.close()

    def setUp(self):
        super().setUp()
        self.p = "py-%s/" % self.id().rsplit(".", 1)[-1]
        self.cl = self.client_for(self.c.members[0])

    # -- helpers ---------------------------------------------------------------

    def assertRpcError(self, code, details, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn(*args, **kwargs)
        self.assertEqual(ctx.exception.code(), code, ctx.exception)
        self.assertEqual(ctx.exception.details(), details)

    def range_raw(self, key, **fields):
        req = etcdrpc.RangeRequest(key=key.encode(), **fields)
        return self.cl.kvstub.Range(req, RPC_TIMEOUT)

    def need_watch(self):
        if self.watch_probe:
            self.skipTest(self.watch_probe)

    def grant(self, ttl):
        try:
            return self.cl.lease(ttl)
        except grpc.RpcError as e:
            if unimplemented(e):
                self.skipTest("Lease.LeaseGrant: the server answers UNIMPLEMENTED (not served "
                              "by %s)" % self.c.binary)
            raise

    # -- KV --------------------------------------------------------------------

    def test_put_get(self):
        k = self.p + "k"
        resp = self.cl.put(k, "v1")
        rev = resp.header.revision
        self.assertGreater(rev, 1)
        value, meta = self.cl.get(k)
        self.assertEqual(value, b"v1")
        self.assertEqual((meta.key, meta.create_revision, meta.mod_revision, meta.version,
                          meta.lease_id), (k.encode(), rev, rev, 1, 0))
        self.assertEqual(meta.response_header.revision, rev)
        rev2 = self.cl.put(k, b"v2\x00bin").header.revision
        self.assertEqual(rev2, rev + 1)
        value, meta = self.cl.get(k)
        self.assertEqual((value, meta.version, meta.mod_revision), (b"v2\x00bin", 2, rev2))
        self.assertEqual(self.cl.get(self.p + "missing"), (None, None))

    def test_put_prev_kv(self):
        k = self.p + "k"
        self.assertFalse(self.cl.put(k, "a", prev_kv=True).HasField("prev_kv"))
        resp = self.cl.put(k, "b", prev_kv=True)
        self.assertEqual((resp.prev_kv.key, resp.prev_kv.value, resp.prev_kv.version),
                         (k.encode(), b"a", 1))

    def test_get_prefix(self):
        p = self.p
        for k, v in [("c", "3"), ("a", "1"), ("b", "2")]:
            self.cl.put(p + k, v)
        self.cl.put(p[:-1] + "-other", "x")
        got = [(m.key, v) for v, m in self.cl.get_prefix(p)]
        self.assertEqual(got, [((p + k).encode(), v.encode()) for k, v in
                               [("a", "1"), ("b", "2"), ("c", "3")]])
        got = [m.key for v, m in self.cl.get_prefix(p, sort_order="descend", sort_target="mod")]
        self.assertEqual(got, [(p + k).encode() for k in "bac"])
        got = [v for v, m in self.cl.get_prefix(p, sort_order="ascend", sort_target="value")]
        self.assertEqual(got, [b"1", b"2", b"3"])
        got = list(self.cl.get_prefix(p, keys_only=True))
        self.assertEqual([v for v, m in got], [b""] * 3)
        got = [m.key for v, m in self.cl.get_range(p + "a", p + "c")]
        self.assertEqual(got, [(p + "a").encode(), (p + "b").encode()])
        all_keys = {m.key for v, m in self.cl.get_all()}
        self.assertTrue({(p + k).encode() for k in "abc"} <= all_keys)

    def test_range_count_only_and_limit(self):
        p = self.p
        for k in "abcd":
            self.cl.put(p + k, k)
        end = (p[:-1] + chr(ord(p[-1]) + 1)).encode()
        resp = self.range_raw(p, range_end=end, count_only=True)
        self.assertEqual((resp.count, len(resp.kvs), resp.more), (4, 0, False))
        resp = self.range_raw(p, range_end=end, limit=3)
        self.assertEqual((resp.count, len(resp.kvs), resp.more), (4, 3, True))
        resp = self.range_raw(p, range_end=end, limit=3, count_only=True)
        self.assertEqual((resp.count, len(resp.kvs)), (4, 0))
        resp = self.range_raw(p, range_end=end, keys_only=True)
        self.assertEqual([kv.value for kv in resp.kvs], [b""] * 4)

    def test_serializable_get_on_each_member(self):
        k = self.p + "k"
        rev = self.cl.put(k, "s").header.revision
        for m in self.c.members:
            cl = self.client_for(m)
            self.c.wait_revision(m, rev)
            value, meta = cl.get(k, serializable=True)
            self.assertEqual((value, meta.mod_revision), (b"s", rev))
            value, meta = cl.get(k)
            self.assertEqual(value, b"s")

    def test_delete(self):
        k = self.p + "k"
        self.cl.put(k, "v")
        self.assertIs(self.cl.delete(k), True)
        self.assertIs(self.cl.delete(k), False)
        self.cl.put(k, "w")
        resp = self.cl.delete(k, prev_kv=True, return_response=True)
        self.assertEqual(resp.deleted, 1)
        self.assertEqual([(kv.key, kv.value) for kv in resp.prev_kvs], [(k.encode(), b"w")])
        self.assertEqual(self.cl.get(k), (None, None))

    def test_delete_prefix(self):
        p = self.p
        for k in "abc":
            self.cl.put(p + k, k)
        keep = p[:-1] + "-keep"
        self.cl.put(keep, "k")
        resp = self.cl.delete_prefix(p)
        self.assertEqual(resp.deleted, 3)
        self.assertEqual(list(self.cl.get_prefix(p)), [])
        self.assertEqual(self.cl.get(keep)[0], b"k")
        self.assertEqual(self.cl.delete_prefix(p).deleted, 0)

    def test_errors(self):
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided",
                            self.cl.put, "", "v")
        rev = self.cl.put(self.p + "k", "v").header.revision
        self.assertRpcError(grpc.StatusCode.OUT_OF_RANGE, FUTURE,
                            self.range_raw, self.p + "k", revision=rev + 1000)

    # -- transactions ------------------------------------------------------------

    def test_transaction_value_and_version(self):
        p, t = self.p, self.cl.transactions
        rev_a = self.cl.put(p + "a", "1").header.revision
        self.cl.put(p + "b", "2")
        ok, responses = self.cl.transaction(
            compare=[t.value(p + "a") == "1", t.version(p + "b") > 0, t.version(p + "b") < 2],
            success=[t.put(p + "a", "10"), t.get(p + "b"), t.delete(p + "b")],
            failure=[t.put(p + "f", "failed")])
        self.assertIs(ok, True)
        self.assertEqual(len(responses), 3)
        put_resp, range_kvs, del_resp = responses
        self.assertEqual(put_resp.WhichOneof("response"), "response_put")
        self.assertEqual([(v, m.key) for v, m in range_kvs], [(b"2", (p + "b").encode())])
        self.assertEqual(del_resp.response_delete_range.deleted, 1)
        self.assertEqual(self.cl.get(p + "a")[0], b"10")
        self.assertEqual(self.cl.get(p + "b"), (None, None))
        self.assertEqual(self.cl.get(p + "f"), (None, None))

        ok, responses = self.cl.transaction(
            compare=[t.value(p + "a") == "1"],
            success=[t.put(p + "a", "11")],
            failure=[t.put(p + "f", "failed"), t.get(p + "a")])
        self.assertIs(ok, False)
        self.assertEqual(responses[1][0][0], b"10")
        self.assertEqual(self.cl.get(p + "f")[0], b"failed")
        # create/mod compares.
        value, meta = self.cl.get(p + "a")
        ok, _ = self.cl.transaction(
            compare=[t.create(p + "a") == rev_a, t.mod(p + "a") == meta.mod_revision,
                     t.mod(p + "a") > rev_a, t.version(p + "missing") == 0],
            success=[], failure=[])
        self.assertIs(ok, True)
        ok, _ = self.cl.transaction(compare=[t.create(p + "a") > rev_a], success=[], failure=[])
        self.assertIs(ok, False)

    def test_transaction_sub_response_revision(self):
        # etcd puts the txn's revision in every put/delete response inside it.
        p = self.p
        resp = self.cl.kvstub.Txn(etcdrpc.TxnRequest(success=[
            etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=(p + "a").encode(), value=b"1"))]),
            RPC_TIMEOUT)
        self.assertTrue(resp.succeeded)
        self.assertEqual(resp.responses[0].response_put.header.revision, resp.header.revision)

    def test_nested_transaction(self):
        p, t = self.p, self.cl.transactions
        self.cl.put(p + "a", "1")
        ok, responses = self.cl.transaction(
            compare=[t.value(p + "a") == "1"],
            success=[t.txn(compare=[t.value(p + "a") == "nope"],
                           success=[t.put(p + "inner", "yes")],
                           failure=[t.put(p + "inner", "no")])],
            failure=[])
        self.assertIs(ok, True)
        self.assertEqual(responses[0].WhichOneof("response"), "response_txn")
        self.assertFalse(responses[0].response_txn.succeeded)
        self.assertEqual(self.cl.get(p + "inner")[0], b"no")

    def test_put_if_not_exists_and_replace(self):
        k = self.p + "k"
        self.assertIs(self.cl.put_if_not_exists(k, "first"), True)
        self.assertIs(self.cl.put_if_not_exists(k, "second"), False)
        self.assertEqual(self.cl.get(k)[0], b"first")
        self.assertIs(self.cl.replace(k, "first", "third"), True)
        self.assertIs(self.cl.replace(k, "first", "fourth"), False)
        self.assertEqual(self.cl.get(k)[0], b"third")

    def test_transaction_errors(self):
        p, t = self.p, self.cl.transactions
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                            "etcdserver: duplicate key given in txn request",
                            self.cl.transaction, compare=[],
                            success=[t.put(p + "a", "1"), t.put(p + "a", "2")], failure=[])
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                            "etcdserver: too many operations in txn request",
                            self.cl.transaction, compare=[],
                            success=[t.put(p + "k%d" % i, "v") for i in range(129)], failure=[])
        self.assertEqual(list(self.cl.get_prefix(p)), [])

    def test_compact(self):
        k = self.p + "k"
        r1 = self.cl.put(k, "1").header.revision
        r2 = self.cl.put(k, "2").header.revision
        self.cl.compact(r2)
        self.assertRpcError(grpc.StatusCode.OUT_OF_RANGE, COMPACTED, self.range_raw, k, revision=r1)
        self.assertEqual(self.range_raw(k, revision=r2).kvs[0].value, b"2")
        self.assertRpcError(grpc.StatusCode.OUT_OF_RANGE, COMPACTED, self.cl.compact, r1)

    # -- cluster and maintenance -------------------------------------------------

    def test_status(self):
        leader = self.c.leader()
        for m in self.c.members:
            st = self.client_for(m).status()
            self.assertRegex(st.version, r"^3\.\d+\.\d+")
            self.assertGreater(st.db_size, 0)
            self.assertIsNotNone(st.leader, "status() from %s found no leader among members" % m.name)
            self.assertEqual(st.leader.id, leader.id)
            self.assertEqual(st.leader.name, leader.name)
            self.assertGreater(st.raft_index, 0)
            self.assertGreaterEqual(st.raft_term, 1)

    def test_members(self):
        for asked in self.c.members:
            members = sorted(self.client_for(asked).members, key=lambda x: x.name)
            self.assertEqual([x.name for x in members], [m.name for m in self.c.members])
            for x, m in zip(members, self.c.members):
                self.assertEqual(x.id, m.id)
                self.assertEqual(list(x.peer_urls), [m.peer_url])

    def test_members_client_urls_from_a_restarted_follower(self):
        # Every member knows every member's client URLs in etcd. A follower
        # restarted under a stable leader hears only from the leader, which
        # makes this deterministic.
        leader = self.c.leader()
        follower = self.c.followers(leader)[0]
        self.c.stop_member(follower)
        self.c.start_member(follower)
        self.c.wait_member_ready(follower)
        self.c.wait_revision(follower, self.c.revision())
        got = {self.c.member_by_id(x.id).name: list(x.client_urls)
               for x in self.fresh_client_for(follower).members}
        self.assertEqual(got, {m.name: [m.client_url] for m in self.c.members},
                         "members asked of the restarted follower %s" % follower.name)

    def test_alarms_and_defragment(self):
        try:
            self.assertEqual(list(self.cl.list_alarms()), [])
        except grpc.RpcError as e:
            if unimplemented(e):
                self.skipTest("Maintenance.Alarm: UNIMPLEMENTED")
            raise
        self.cl.defragment()

    def test_hash(self):
        try:
            h = self.cl.maintenancestub.Hash(etcdrpc.HashRequest(), RPC_TIMEOUT).hash
        except grpc.RpcError as e:
            if unimplemented(e):
                self.skipTest("Maintenance.Hash (etcd3 client.hash()): the server answers "
                              "UNIMPLEMENTED (not served by %s)" % self.c.binary)
            raise
        self.assertIsInstance(h, int)

    # -- leases --------------------------------------------------------------

    def test_lease_lifecycle(self):
        lease = self.grant(60)
        self.assertNotEqual(lease.id, 0)
        self.assertEqual(lease.ttl, 60)
        k = self.p + "k"
        self.cl.put(k, "v", lease=lease)
        self.assertEqual(self.cl.get(k)[1].lease_id, lease.id)
        self.assertTrue(50 <= lease.remaining_ttl <= 60, lease.remaining_ttl)
        self.assertEqual(lease.granted_ttl, 60)
        self.assertEqual(list(lease.keys), [k.encode()])
        refreshed = lease.refresh()
        self.assertEqual([(r.ID, r.TTL) for r in refreshed], [(lease.id, 60)])
        lease.revoke()
        self.assertEqual(self.cl.get(k), (None, None))
        self.assertEqual(self.cl.get_lease_info(lease.id).TTL, -1)
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found",
                            self.cl.revoke_lease, lease.id)
        # A keep-alive of an unknown lease answers TTL 0 on the stream.
        self.assertEqual([r.TTL for r in self.cl.refresh_lease(lease.id)], [0])

    def test_lease_with_chosen_id(self):
        self.grant(1)  # skips when leases are not served
        lid = 0x7ead0000 + (int(time.time()) & 0xFFFF)
        lease = self.cl.lease(30, lease_id=lid)
        self.assertEqual(lease.id, lid)
        self.assertRpcError(grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: lease already exists",
                            self.cl.leasestub.LeaseGrant,
                            etcdrpc.LeaseGrantRequest(TTL=30, ID=lid), RPC_TIMEOUT)
        lease.revoke()

    def test_lease_expiry(self):
        lease = self.grant(2)
        k = self.p + "k"
        self.cl.put(k, "v", lease=lease)
        wait_until(lambda: self.cl.get(k) == (None, None), 15, "the key of a 2 s lease to go")
        self.assertEqual(self.cl.get_lease_info(lease.id).TTL, -1)

    def test_lock(self):
        self.grant(1)  # skips when leases are not served
        name = "py-lock-%d" % os.getpid()
        lock = self.cl.lock(name, ttl=10)
        self.assertTrue(lock.acquire(timeout=5))
        self.assertTrue(lock.is_acquired())
        value, meta = self.cl.get("/locks/" + name)
        self.assertEqual(value, lock.uuid)
        self.assertEqual(meta.lease_id, lock.lease.id)
        # Contention: python3-etcd3 0.12's Lock.acquire() cannot wait for a held
        # lock with Debian's tenacity (TypeError in its wait() callback, a
        # client-library defect), so check it with the lock's own transaction.
        t = self.cl.transactions
        ok, _ = self.cl.transaction(compare=[t.create(lock.key) == 0],
                                    success=[t.put(lock.key, b"other")], failure=[])
        self.assertIs(ok, False)
        self.assertEqual(self.cl.get(lock.key)[0], lock.uuid)
        self.assertTrue(lock.release())
        self.assertEqual(self.cl.get("/locks/" + name), (None, None))

    # -- watches -------------------------------------------------------------

    def watch_queue(self, key, prefix=False, **kwargs):
        q = queue.Queue()
        add = self.cl.add_watch_prefix_callback if prefix else self.cl.add_watch_callback
        watch_id = add(key, q.put, **kwargs)
        self.addCleanup(self.cl.cancel_watch, watch_id)
        return q

    def next_events(self, q, n, timeout=10):
        """n events from a callback queue (responses may carry several)."""
        events = []
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            if len(events) >= n:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = q.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(item, Exception):
                raise item
            events.extend(item.events)
        self.assertEqual(len(events), n, "got %d of %d events: %r" % (len(events), n, events))
        return events

    def test_watch_key(self):
        self.need_watch()
        k = self.p + "k"
        q = self.watch_queue(k)
        r1 = self.cl.put(k, "1").header.revision
        self.cl.put(self.p + "other", "x")
        self.cl.delete(k)
        e1, e2 = self.next_events(q, 2)
        self.assertIsInstance(e1, etcd3.events.PutEvent)
        self.assertEqual((e1.key, e1.value, e1.mod_revision, e1.version), (k.encode(), b"1", r1, 1))
        self.assertIsInstance(e2, etcd3.events.DeleteEvent)
        self.assertEqual((e2.key, e2.mod_revision), (k.encode(), r1 + 2))

    def test_watch_prefix_from_revision_with_prev_kv(self):
        self.need_watch()
        p = self.p
        first = self.cl.put(p + "a", "1").header.revision
        self.cl.put(p + "b", "2")
        self.cl.put(p + "a", "3")
        q = self.watch_queue(p, prefix=True, start_revision=first, prev_kv=True)
        events = self.next_events(q, 3)
        self.assertEqual([(type(e).__name__, e.key, e.value) for e in events],
                         [("PutEvent", (p + "a").encode(), b"1"),
                          ("PutEvent", (p + "b").encode(), b"2"),
                          ("PutEvent", (p + "a").encode(), b"3")])
        self.assertFalse(events[0]._event.HasField("prev_kv"))
        self.assertEqual(events[2]._event.prev_kv.value, b"1")

    def test_watch_once(self):
        self.need_watch()
        k = self.p + "k"
        rev = self.cl.put(k, "1").header.revision
        event = self.cl.watch_once(k, timeout=5, start_revision=rev)
        self.assertEqual((event.key, event.value), (k.encode(), b"1"))
        with self.assertRaises(etcd3.exceptions.WatchTimedOut):
            self.cl.watch_once(self.p + "never", timeout=0.3)

    def test_watch_compacted_revision(self):
        # etcd 3.4 answers a watch from a compacted revision with a "created"
        # response, then a separate "canceled" one carrying compact_revision.
        # python3-etcd3 turns the latter into RevisionCompactedError at once.
        # (If both come in one response the library records the error but
        # does not wake add_watch_callback, which then waits for its client
        # timeout -- forever with the default timeout=None.)
        self.need_watch()
        k = self.p + "k"
        r1 = self.cl.put(k, "1").header.revision
        r2 = self.cl.put(k, "2").header.revision
        self.cl.compact(r2)
        # The client's member may not have applied the compaction yet (etcd
        # has the same race); a linearizable read there waits until it has.
        self.cl.get(k)
        q = queue.Queue()
        t0 = time.monotonic()
        try:
            watch_id = self.cl.add_watch_callback(k, q.put, start_revision=r1)
        except etcd3.exceptions.RevisionCompactedError as e:
            item = e
        else:
            self.addCleanup(self.cl.cancel_watch, watch_id)
            try:
                item = q.get(timeout=10)
            except queue.Empty:
                self.fail("no answer to a watch on a compacted revision")
        elapsed = time.monotonic() - t0
        self.assertIsInstance(item, etcd3.exceptions.RevisionCompactedError,
                              "a watch from a compacted revision should report the compaction "
                              "(WatchResponse.compact_revision), got %r" % (item,))
        self.assertEqual(item.compacted_revision, r2)
        self.assertLess(elapsed, 2.0, "the compaction was reported after %.1fs (the client's "
                        "timeout is %ds): it came in the 'created' response" % (elapsed, RPC_TIMEOUT))

    def fragment_watch(self, prefix, count, fragment):
        """Starts tests/compat/watch_fragment_client.py (a Watch client with
        the fragment field) and returns a function collecting its responses."""
        here = os.path.dirname(os.path.abspath(__file__))
        proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(here, "watch_fragment_client.py"),
             os.path.join(cluster.REPO_ROOT, "proto"), shutil.which("protoc") or "protoc",
             self.c.members[0].endpoint, prefix, str(count), "1" if fragment else "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=cluster._clean_env())
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        line = proc.stdout.readline()
        self.assertEqual(line.strip(), "ready", proc.stderr.read() if not line else line)

        def collect():
            out, err = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, 0, err)
            return [json.loads(x) for x in out.splitlines() if x.strip()]
        return collect

    def test_watch_fragment_splits_a_large_revision(self):
        # A revision whose watch response exceeds --max-request-bytes (1.5 MiB)
        # comes in several responses, all but the last marked fragment, when
        # the watcher asked for fragment; otherwise in one response.
        if not shutil.which("protoc"):
            self.skipTest("protoc is not installed")
        self.need_watch()
        p = self.p
        big = "x" * (250 * 1024)
        for i in range(5):
            self.cl.put(p + "k%d" % i, big)
        fragmented = self.fragment_watch(p, 5, True)
        whole = self.fragment_watch(p, 5, False)
        self.cl.transaction(compare=[], success=[
            self.cl.transactions.put(p + "k%d" % i, big.replace("x", "y")) for i in range(5)],
            failure=[])
        parts = fragmented()
        self.assertGreater(len(parts), 1, "a 2.5 MB revision should come in fragments")
        self.assertTrue(all(r["fragment"] for r in parts[:-1]), parts)
        self.assertFalse(parts[-1]["fragment"])
        events = [e for r in parts for e in r["events"]]
        self.assertEqual([e[0] for e in events], [p + "k%d" % i for i in range(5)])
        self.assertEqual(len({e[1] for e in events}), 1, "one revision")
        self.assertTrue(all(e[2] == len(big) and e[3] == len(big) for e in events), events)
        for r in parts:
            self.assertLessEqual(r["bytes"], 1536 * 1024, "a fragment over the limit")
        one = whole()
        self.assertEqual(len(one), 1)
        self.assertFalse(one[0]["fragment"])
        self.assertEqual(len(one[0]["events"]), 5)


class ProgressNotifyTest(ClusterTestCase):
    """Watch progress notifications (--experimental-watch-progress-notify-interval)
    through the raw etcdrpc stubs of python3-etcd3."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.track_class(Cluster(size=1, name_prefix="pn", extra_args=[
            "--experimental-watch-progress-notify-interval", "1s"]))
        cls.c.start()

    def test_a_quiet_key_hears_the_current_revision(self):
        # Two watches with progress_notify on one stream: a key nobody writes
        # and a busy prefix. Events reach only the prefix's watch, yet both
        # must hear progress at the current revision (the watch hub visits only
        # the watchers an event concerns; the quiet one must count as caught up).
        channel = grpc.insecure_channel(self.c.members[0].endpoint, options=GRPC_OPTIONS)
        self.addCleanup(channel.close)
        done = threading.Event()
        self.addCleanup(done.set)

        def requests():
            yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                key=b"pn-quiet", progress_notify=True))
            yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                key=b"pn-busy/", range_end=b"pn-busy0", progress_notify=True))
            done.wait(30)

        stream = etcdrpc.WatchStub(channel).Watch(requests(), timeout=30)
        created = [next(stream), next(stream)]
        self.assertTrue(all(r.created and not r.canceled for r in created), created)
        quiet_id, busy_id = created[0].watch_id, created[1].watch_id
        cl = etcd3.client(host="127.0.0.1", port=self.c.members[0].client_port,
                          timeout=RPC_TIMEOUT, grpc_options=GRPC_OPTIONS)
        self.addCleanup(cl.close)
        last = 0
        for i in range(5):
            last = cl.put("pn-busy/k%d" % i, "v").header.revision
        busy_events, progress = [], {}
        deadline = time.time() + 10
        while time.time() < deadline and not (len(busy_events) == 5 and
                                              min(progress.get(quiet_id, 0),
                                                  progress.get(busy_id, 0)) >= last):
            r = next(stream)
            if r.events:
                self.assertEqual(r.watch_id, busy_id, r)
                busy_events.extend(e.kv.key for e in r.events)
            else:
                progress[r.watch_id] = max(progress.get(r.watch_id, 0), r.header.revision)
        self.assertEqual(busy_events, [b"pn-busy/k%d" % i for i in range(5)])
        self.assertGreaterEqual(progress.get(quiet_id, 0), last, progress)
        self.assertGreaterEqual(progress.get(busy_id, 0), last, progress)


if __name__ == "__main__":
    cluster.main()

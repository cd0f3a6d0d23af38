"""Compatibility: the real etcdctl 3.4 (Debian's) against a 3-member warden cluster.

Run from the repository root with Debian's interpreter:

    WARDEN_BIN=build/warden /usr/bin/python3 -m unittest -v tests/compat/test_etcdctl.py
    /usr/bin/python3 tests/compat/test_etcdctl.py --warden build/warden -v

Expected outputs are etcd 3.4.23's, byte for byte where etcdctl prints text
(they were recorded against Debian's etcd 3.4.23 server), and parsed from
`-w json` otherwise. Lease, watch, move-leader and alarm tests are skipped
with a reason when the server answers UNIMPLEMENTED.

All tests share one cluster; each test works under its own key prefix and
only reads revisions it wrote itself, so the order of tests does not matter
(compaction included).
"""

import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import cluster  # noqa: E402
from cluster import ClusterTestCase, Cluster, b64, is_unimplemented, unb64, wait_until  # noqa: E402

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"


def kvs_of(get_json):
    out = []
    for kv in get_json.get("kvs", []):
        kv = dict(kv)
        kv["key"] = unb64(kv["key"])
        if "value" in kv:
            kv["value"] = unb64(kv["value"])
        out.append(kv)
    return out


def error_line(res):
    """The last 'Error: ...' line etcdctl printed (stderr), without the prefix."""
    for line in reversed(res.err.splitlines()):
        if line.startswith("Error: "):
            return line[len("Error: "):]
    return None


class Watcher:
    """`etcdctl watch ...` as a child process; its stdout is collected by a thread."""

    def __init__(self, c, args, endpoints=None):
        eps = ",".join(m.endpoint for m in (endpoints or c.running_members()))
        self.cmd = [cluster.ETCDCTL, "--endpoints=" + eps, "--dial-timeout=2s", "watch"] + list(args)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=c.root,
                                     env=cluster._clean_env({"ETCDCTL_API": "3"}))
        self.out = []
        self.err = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    def _pump(self, stream, sink):
        for line in iter(stream.readline, ""):
            with self.lock:
                sink.append(line)

    def text(self):
        with self.lock:
            return "".join(self.out)

    def errtext(self):
        with self.lock:
            return "".join(self.err)

    def unimplemented(self):
        return "Unimplemented" in self.errtext() or "Unimplemented" in self.text()

    def wait_text(self, expected, timeout=10):
        """Waits until stdout holds at least len(expected) characters (or the
        process exits); returns the output."""
        def check():
            if self.proc.poll() is not None:
                for t in self.threads:
                    t.join(timeout=2)
                return True
            return len(self.text()) >= len(expected)
        try:
            wait_until(check, timeout, "etcdctl watch output %r" % expected, interval=0.02,
                       max_interval=0.1)
        except cluster.WaitTimeout:
            pass  # the caller compares and reports what arrived
        return self.text()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # by PID: our own child
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for t in self.threads:
            t.join(timeout=2)

    def describe(self):
        return "watch %r rc=%s\nstdout=%r\nstderr=%r" % (
            " ".join(self.cmd), self.proc.poll(), self.text(), self.errtext()[-1500:])


class EtcdctlTest(ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.track_class(Cluster(size=3, name_prefix="ctl"))
        cls.c.start()

    def setUp(self):
        super().setUp()
        # A key prefix of this test's own.
        self.p = "%s/" % self.id().rsplit(".", 1)[-1]

    # -- helpers ---------------------------------------------------------------

    def ctl(self, *args, **kw):
        return self.c.etcdctl(*args, **kw)

    def ok(self, *args, **kw):
        return self.c.etcdctl_ok(*args, **kw)

    def js(self, *args, **kw):
        return self.c.etcdctl_json(*args, **kw)

    def fails_with(self, message, *args, **kw):
        res = self.ctl(*args, **kw)
        self.assertNotEqual(res.rc, 0, "etcdctl %s should fail: %r" % (" ".join(args), res))
        self.assertEqual(error_line(res), message, res)
        return res

    def put(self, key, value, *extra):
        """put; returns the new revision."""
        return self.js("put", key, value, *extra)["header"]["revision"]

    def skip_if_unimplemented(self, res, what):
        if is_unimplemented(res):
            self.skipTest("%s: the server answers UNIMPLEMENTED (not served by %s)" % (
                what, self.c.binary))

    # -- put -----------------------------------------------------------------

    def test_put_and_get(self):
        k = self.p + "k"
        before = self.c.revision()
        self.assertEqual(self.ok("put", k, "v1"), "OK\n")
        self.assertEqual(self.ok("get", k), "%s\nv1\n" % k)
        got = self.js("get", k)
        rev = got["header"]["revision"]
        self.assertEqual(rev, before + 1)
        self.assertEqual(kvs_of(got), [{"key": k, "value": "v1", "create_revision": rev,
                                        "mod_revision": rev, "version": 1}])
        self.assertEqual(got["count"], 1)
        rev2 = self.put(k, "v2")
        self.assertEqual(rev2, rev + 1)
        self.assertEqual(kvs_of(self.js("get", k)), [{
            "key": k, "value": "v2", "create_revision": rev, "mod_revision": rev2, "version": 2}])

    def test_put_prev_kv(self):
        k = self.p + "k"
        rev = self.put(k, "old")
        self.assertEqual(self.ok("put", k, "new", "--prev-kv"), "OK\n%s\nold\n" % k)
        out = self.js("put", k, "newer", "--prev-kv")
        prev = out["prev_kv"]
        self.assertEqual((unb64(prev["key"]), unb64(prev["value"]), prev["version"],
                          prev["create_revision"], prev["mod_revision"]),
                         (k, "new", 2, rev, rev + 1))
        # No previous value: plain OK.
        self.assertEqual(self.ok("put", self.p + "fresh", "x", "--prev-kv"), "OK\n")

    def test_put_ignore_value(self):
        k = self.p + "k"
        rev = self.put(k, "keep")
        self.assertEqual(self.ok("put", k, "--ignore-value"), "OK\n")
        kv = kvs_of(self.js("get", k))[0]
        self.assertEqual((kv["value"], kv["version"], kv["mod_revision"]), ("keep", 2, rev + 1))
        self.fails_with("etcdserver: key not found", "put", self.p + "missing", "--ignore-value")

    def test_put_with_unknown_lease(self):
        self.fails_with("etcdserver: requested lease not found",
                        "put", self.p + "k", "v", "--lease=1234abcd")
        self.assertEqual(self.ok("get", self.p + "k"), "")

    def test_empty_key(self):
        self.fails_with("etcdserver: key is not provided", "put", "", "v")
        self.fails_with("etcdserver: key is not provided", "get", "")

    # -- get -----------------------------------------------------------------

    def fill(self, pairs):
        """Puts (key, value) pairs under the prefix in order; returns {key: revision}."""
        revs = {}
        for k, v in pairs:
            revs[self.p + k] = self.put(self.p + k, v)
        return revs

    def test_get_prefix(self):
        self.fill([("b", "2"), ("a", "1"), ("c", "3")])
        self.put(self.p[:-1] + "X/other", "no")  # shares the name, not the prefix
        self.assertEqual(self.ok("get", self.p, "--prefix"),
                         "{0}a\n1\n{0}b\n2\n{0}c\n3\n".format(self.p))
        got = self.js("get", self.p, "--prefix")
        self.assertEqual([kv["key"] for kv in kvs_of(got)], [self.p + x for x in "abc"])
        self.assertEqual(got["count"], 3)
        self.assertNotIn("more", got)

    def test_get_range_and_from_key(self):
        self.fill([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")])
        self.assertEqual(self.ok("get", self.p + "b", self.p + "d", "--keys-only"),
                         "{0}b\n\n{0}c\n\n".format(self.p))
        out = self.ok("get", self.p + "c", "--from-key", "--keys-only").split("\n\n")
        self.assertEqual(out[:2], [self.p + "c", self.p + "d"])

    def test_get_rev(self):
        k = self.p + "k"
        r1 = self.put(k, "one")
        r2 = self.put(k, "two")
        self.ok("del", k)
        r3 = self.put(k, "three")
        self.assertEqual(self.ok("get", k, "--rev=%d" % r1), "%s\none\n" % k)
        self.assertEqual(self.ok("get", k, "--rev=%d" % r2), "%s\ntwo\n" % k)
        self.assertEqual(self.ok("get", k, "--rev=%d" % (r2 + 1)), "")  # deleted
        self.assertEqual(self.ok("get", k, "--rev=%d" % (r1 - 1)), "")  # not yet written
        kv = kvs_of(self.js("get", k, "--rev=%d" % r3))[0]
        self.assertEqual((kv["create_revision"], kv["mod_revision"], kv["version"]), (r3, r3, 1))
        kv = kvs_of(self.js("get", k, "--rev=%d" % r2))[0]
        self.assertEqual((kv["create_revision"], kv["mod_revision"], kv["version"]), (r1, r2, 2))

    def test_get_future_revision(self):
        rev = self.c.revision()
        self.fails_with(FUTURE, "get", self.p + "k", "--rev=%d" % (rev + 1000))

    def test_get_limit(self):
        self.fill([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")])
        self.assertEqual(self.ok("get", self.p, "--prefix", "--limit=2"),
                         "{0}a\n1\n{0}b\n2\n".format(self.p))
        got = self.js("get", self.p, "--prefix", "--limit=2")
        self.assertEqual([kv["key"] for kv in kvs_of(got)], [self.p + "a", self.p + "b"])
        self.assertIs(got.get("more"), True)
        self.assertEqual(got["count"], 4)
        got = self.js("get", self.p, "--prefix", "--limit=4")
        self.assertNotIn("more", got)

    def test_get_sort(self):
        # Written in the order c, a, b, then a again: mod revisions a > b > c.
        self.fill([("c", "z"), ("a", "y"), ("b", "x"), ("a", "w")])
        keys = lambda out: [k for k in out.split("\n") if k]  # noqa: E731
        p = self.p
        self.assertEqual(keys(self.ok("get", p, "--prefix", "--sort-by=MODIFY", "--order=DESCEND",
                                      "--keys-only")), [p + "a", p + "b", p + "c"])
        self.assertEqual(keys(self.ok("get", p, "--prefix", "--sort-by=MODIFY", "--order=ASCEND",
                                      "--keys-only")), [p + "c", p + "b", p + "a"])
        self.assertEqual(keys(self.ok("get", p, "--prefix", "--sort-by=CREATE", "--order=DESCEND",
                                      "--keys-only")), [p + "b", p + "a", p + "c"])
        self.assertEqual(self.ok("get", p, "--prefix", "--sort-by=VALUE", "--order=ASCEND",
                                 "--print-value-only"), "w\nx\nz\n")
        self.assertEqual(keys(self.ok("get", p, "--prefix", "--sort-by=VERSION", "--order=DESCEND",
                                      "--keys-only"))[0], p + "a")
        self.assertEqual(keys(self.ok("get", p, "--prefix", "--order=DESCEND", "--keys-only")),
                         [p + "c", p + "b", p + "a"])
        got = self.js("get", p, "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--limit=1")
        self.assertEqual([kv["key"] for kv in kvs_of(got)], [p + "a"])
        self.assertEqual((got["count"], got.get("more")), (3, True))

    def test_get_count(self):
        # etcdctl 3.4 has no --count-only; the count comes with every answer.
        self.fill([("a", "1"), ("b", "2"), ("c", "3")])
        got = self.js("get", self.p, "--prefix", "--limit=1", "--keys-only")
        self.assertEqual(got["count"], 3)
        got = self.js("get", self.p + "nothing")
        self.assertNotIn("count", got)  # zero: omitted, as etcd does
        self.assertNotIn("kvs", got)

    def test_get_count_only_flag(self):
        helptext = self.ctl("get", "--help").out
        if "--count-only" not in helptext:
            self.skipTest("etcdctl %s has no --count-only (added in etcd 3.5); count_only is "
                          "covered by test_python_etcd3" % "3.4")
        self.fill([("a", "1"), ("b", "2")])
        got = self.js("get", self.p, "--prefix", "--count-only")
        self.assertEqual(got["count"], 2)
        self.assertNotIn("kvs", got)

    def test_get_keys_only(self):
        self.fill([("a", "1"), ("b", "2")])
        self.assertEqual(self.ok("get", self.p, "--prefix", "--keys-only"),
                         "{0}a\n\n{0}b\n\n".format(self.p))
        got = self.js("get", self.p, "--prefix", "--keys-only")
        for kv in got["kvs"]:
            self.assertNotIn("value", kv)
            self.assertEqual(kv["version"], 1)

    def test_get_print_value_only(self):
        self.fill([("a", "first"), ("b", "second")])
        self.assertEqual(self.ok("get", self.p, "--prefix", "--print-value-only"), "first\nsecond\n")
        self.assertEqual(self.ok("get", self.p + "a", "--print-value-only"), "first\n")

    def test_get_missing(self):
        self.assertEqual(self.ok("get", self.p + "nope"), "")
        got = self.js("get", self.p + "nope")
        self.assertEqual(set(got), {"header"})

    def test_get_serializable_on_each_member(self):
        rev = self.put(self.p + "k", "s")
        for m in self.c.members:
            self.c.wait_revision(m, rev)
            self.assertEqual(self.ok("get", self.p + "k", "--consistency=s", endpoints=m),
                             "%sk\ns\n" % self.p)
            self.assertEqual(self.ok("get", self.p + "k", "--consistency=l", endpoints=m),
                             "%sk\ns\n" % self.p)

    # -- del -----------------------------------------------------------------

    def test_del(self):
        self.fill([("a", "1")])
        self.assertEqual(self.ok("del", self.p + "a"), "1\n")
        self.assertEqual(self.ok("del", self.p + "a"), "0\n")
        self.assertEqual(self.ok("get", self.p + "a"), "")

    def test_del_prev_kv(self):
        revs = self.fill([("a", "va"), ("b", "vb")])
        self.assertEqual(self.ok("del", self.p + "a", "--prev-kv"), "1\n%sa\nva\n" % self.p)
        out = self.js("del", self.p + "b", "--prev-kv")
        self.assertEqual(out["deleted"], 1)
        self.assertEqual(kvs_of({"kvs": out["prev_kvs"]}), [{
            "key": self.p + "b", "value": "vb", "create_revision": revs[self.p + "b"],
            "mod_revision": revs[self.p + "b"], "version": 1}])
        self.assertEqual(out["header"]["revision"], revs[self.p + "b"] + 2)
        # Nothing deleted: no revision used, no prev_kvs.
        out = self.js("del", self.p + "b", "--prev-kv")
        self.assertEqual(set(out), {"header"})
        self.assertEqual(out["header"]["revision"], revs[self.p + "b"] + 2)

    def test_del_prefix(self):
        self.fill([("a", "1"), ("b", "2"), ("c", "3")])
        keep = self.p[:-1] + "-keep"
        self.put(keep, "k")
        out = self.js("del", self.p, "--prefix", "--prev-kv")
        self.assertEqual(out["deleted"], 3)
        self.assertEqual([(kv["key"], kv["value"]) for kv in kvs_of({"kvs": out["prev_kvs"]})],
                         [(self.p + "a", "1"), (self.p + "b", "2"), (self.p + "c", "3")])
        self.assertEqual(self.ok("get", self.p, "--prefix"), "")
        self.assertEqual(self.ok("get", keep), "%s\nk\n" % keep)
        self.fill([("x", "1"), ("y", "2")])
        self.assertEqual(self.ok("del", self.p, "--prefix"), "2\n")

    def test_del_range(self):
        self.fill([("a", "1"), ("b", "2"), ("c", "3")])
        self.assertEqual(self.ok("del", self.p + "a", self.p + "c"), "2\n")
        self.assertEqual(self.ok("get", self.p, "--prefix", "--keys-only"), "%sc\n\n" % self.p)

    # -- txn -----------------------------------------------------------------

    def txn(self, compares, success, failure, *flags):
        """etcdctl txn reading its three sections from stdin, each ended by an empty line."""
        text = "".join("".join(line + "\n" for line in section) + "\n"
                       for section in (compares, success, failure))
        return self.ctl("txn", *flags, input=text)

    def test_txn_success_branch(self):
        p = self.p
        self.fill([("a", "1"), ("b", "2")])
        before = self.c.revision()
        res = self.txn(['value("%sa") = "1"' % p, 'version("%sb") = "1"' % p,
                        'create("%sa") > "0"' % p, 'mod("%sb") < "1000000"' % p],
                       ["put %sa 10" % p, "get %sb" % p, "del %sb" % p],
                       ["put %sf failed" % p])
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.out, "SUCCESS\n\nOK\n\n{0}b\n2\n\n1\n".format(p))
        self.assertEqual(self.ok("get", p, "--prefix"), "%sa\n10\n" % p)
        # One revision for the whole transaction.
        self.assertEqual(self.c.revision(), before + 1)

    def test_txn_failure_branch(self):
        p = self.p
        self.fill([("a", "1")])
        res = self.txn(['value("%sa") = "nope"' % p], ["put %sa 11" % p],
                       ["put %sf failed" % p, "get %sa" % p])
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.out, "FAILURE\n\nOK\n\n{0}a\n1\n".format(p))
        self.assertEqual(self.ok("get", p, "--prefix"), "{0}a\n1\n{0}f\nfailed\n".format(p))

    def test_txn_interactive(self):
        p = self.p
        self.fill([("a", "1")])
        prompts = ("compares:\nsuccess requests (get, put, del):\n"
                   "failure requests (get, put, del):\n")
        res = self.txn(['value("%sa") = "1"' % p], ["put %sa 2" % p], ["put %sf x" % p], "-i")
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.out, prompts + "SUCCESS\n\nOK\n")
        res = self.txn(['value("%sa") = "1"' % p], ["put %sa 3" % p], ["put %sf x" % p],
                       "--interactive")
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.out, prompts + "FAILURE\n\nOK\n")
        self.assertEqual(self.ok("get", p, "--prefix"), "{0}a\n2\n{0}f\nx\n".format(p))

    def test_txn_compare_targets(self):
        p = self.p
        k = p + "k"
        create = self.put(k, "m")
        mod = self.put(k, "n")  # version 2, value "n"
        cases = [
            ('value("%s") = "n"', True), ('value("%s") != "n"', False),
            ('value("%s") > "m"', True), ('value("%s") < "m"', False),
            ('version("%s") = "2"', True), ('version("%s") > "2"', False),
            ('version("%s") < "3"', True), ('version("%s") != "2"', False),
            ('create("%s") = "{c}"', True), ('create("%s") > "{c}"', False),
            ('create("%s") < "{m}"', True),
            ('mod("%s") = "{m}"', True), ('mod("%s") < "{m}"', False), ('mod("%s") > "{c}"', True),
            # A missing key: version, create and mod are 0; a value compare is false.
            ('version("%s-missing") = "0"', True), ('create("%s-missing") = "0"', True),
            ('mod("%s-missing") > "0"', False), ('value("%s-missing") = ""', False),
            ('value("%s-missing") != "x"', False),
        ]
        rev = self.c.revision()
        for cmp_fmt, want in cases:
            cmp = (cmp_fmt % k).replace("{c}", str(create)).replace("{m}", str(mod))
            res = self.txn([cmp], ["get %s" % k], [])
            self.assertEqual(res.rc, 0, res)
            first = res.out.split("\n", 1)[0]
            self.assertEqual(first, "SUCCESS" if want else "FAILURE", "compare %s: %r" % (cmp, res))
        # Several compares: all must hold.
        res = self.txn(['value("%s") = "n"' % k, 'version("%s") = "1"' % k], [], [])
        self.assertEqual(res.out.split("\n", 1)[0], "FAILURE")
        # Read-only transactions do not advance the revision.
        self.assertEqual(self.c.revision(), rev)

    def test_txn_json(self):
        p = self.p
        revs = self.fill([("a", "1"), ("b", "2")])
        res = self.txn(['mod("%sa") = "%d"' % (p, revs[p + "a"])],
                       ["put %sa 10" % p, "get %sb" % p, "del %sb" % p], [], "-w", "json")
        self.assertEqual(res.rc, 0, res)
        out = json.loads(res.out)
        rev = revs[p + "b"] + 1
        self.assertIs(out.get("succeeded"), True)
        self.assertEqual(out["header"]["revision"], rev)
        r = [x["Response"] for x in out["responses"]]
        self.assertEqual([list(x) for x in r], [["ResponsePut"], ["ResponseRange"],
                                                 ["ResponseDeleteRange"]])
        self.assertEqual(kvs_of(r[1]["ResponseRange"]), [{
            "key": p + "b", "value": "2", "create_revision": revs[p + "b"],
            "mod_revision": revs[p + "b"], "version": 1}])
        self.assertEqual(r[1]["ResponseRange"]["count"], 1)
        self.assertEqual(r[2]["ResponseDeleteRange"]["deleted"], 1)
        res = self.txn(['value("%sa") = "1"' % p], ["put %sa 11" % p], ["get %sa" % p], "-w", "json")
        out = json.loads(res.out)
        self.assertNotIn("succeeded", out)  # false: omitted
        self.assertEqual(out["header"]["revision"], rev)
        self.assertEqual(kvs_of(out["responses"][0]["Response"]["ResponseRange"])[0]["value"], "10")

    def test_txn_sub_response_headers(self):
        # etcd fills a header with the revision in every response inside a
        # txn ({"ResponsePut":{"header":{"revision":N}}}); clientv3 users read
        # it from TxnResponse.Responses[i].GetResponsePut().Header.Revision.
        p = self.p
        self.fill([("b", "2")])
        res = self.txn([], ["put %sa 1" % p, "get %sb" % p, "del %sb" % p], [], "-w", "json")
        out = json.loads(res.out)
        rev = out["header"]["revision"]
        for resp in out["responses"]:
            (kind, body), = resp["Response"].items()
            self.assertEqual(body.get("header"), {"revision": rev},
                             "%s inside a txn has header %r, etcd sends {'revision': %d}" % (
                                 kind, body.get("header"), rev))

    def test_txn_rejected(self):
        p = self.p
        self.fails_with("etcdserver: duplicate key given in txn request",
                        "txn", input="\nput %sa 1\nput %sa 2\n\n\n" % (p, p))
        self.assertEqual(self.ok("get", p + "a"), "")

    # -- endpoint ------------------------------------------------------------

    def test_endpoint_status_json(self):
        st = self.js("endpoint", "status")
        self.assertEqual(sorted(x["Endpoint"] for x in st), sorted(m.endpoint for m in self.c.members))
        ids = {x["Status"]["header"]["member_id"] for x in st}
        self.assertEqual(len(ids), 3)
        self.assertEqual(len({x["Status"]["header"]["cluster_id"] for x in st}), 1)
        leaders = {x["Status"]["leader"] for x in st}
        self.assertEqual(len(leaders), 1)
        self.assertIn(leaders.pop(), ids)
        for x in st:
            s = x["Status"]
            self.assertRegex(s["version"], r"^3\.\d+\.\d+")
            self.assertGreater(s["dbSize"], 0)
            self.assertGreaterEqual(s["raftTerm"], 1)
            self.assertGreaterEqual(s["raftIndex"], s["raftAppliedIndex"])
            self.assertEqual(s["raftTerm"], s["header"]["raft_term"])
            self.assertNotIn("errors", s)
            self.assertNotIn("isLearner", s)

    def test_endpoint_status_table(self):
        out = self.ok("endpoint", "status", "-w", "table")
        rows = [[c.strip() for c in line.strip("|").split("|")]
                for line in out.splitlines() if line.startswith("|")]
        self.assertEqual(rows[0], ["ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER",
                                   "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS"])
        body = rows[1:]
        self.assertEqual(sorted(r[0] for r in body), sorted(m.endpoint for m in self.c.members))
        self.assertEqual([r[4] for r in body].count("true"), 1)
        self.assertEqual([r[5] for r in body], ["false"] * 3)
        by_ep = {m.endpoint: m for m in self.c.members}
        for r in body:
            self.assertEqual(r[1], "%x" % by_ep[r[0]].id)
            self.assertEqual(r[9], "")
        leader_row = [r for r in body if r[4] == "true"][0]
        self.assertEqual(leader_row[0], self.c.leader().endpoint)

    def test_endpoint_health(self):
        out = self.js("endpoint", "health")
        self.assertEqual(sorted(x["endpoint"] for x in out), sorted(m.endpoint for m in self.c.members))
        self.assertTrue(all(x["health"] is True for x in out), out)
        res = self.ctl("endpoint", "health")
        self.assertEqual(res.rc, 0, res)
        # etcdctl 3.4 prints the simple health lines on stderr.
        text = res.err
        lines = sorted(line for line in text.splitlines() if " is healthy" in line)
        self.assertEqual(len(lines), 3, text)
        for line, m in zip(lines, sorted(self.c.members, key=lambda m: m.endpoint)):
            self.assertRegex(line, r"^%s is healthy: successfully committed proposal: took = "
                             % re.escape(m.endpoint))

    def test_endpoint_hashkv_agrees(self):
        self.fill([("a", "1"), ("b", "2")])
        rev = self.c.revision()
        for m in self.c.members:
            self.c.wait_revision(m, rev)
        out = self.js("endpoint", "hashkv", "--rev=%d" % rev)
        self.assertEqual(len(out), 3)
        hashes = {x["Endpoint"]: x["HashKV"]["hash"] for x in out}
        self.assertEqual(len(set(hashes.values())), 1, hashes)
        h = next(iter(hashes.values()))
        table = self.ok("endpoint", "hashkv", "--rev=%d" % rev, "-w", "table")
        rows = [[c.strip() for c in line.strip("|").split("|")]
                for line in table.splitlines() if line.startswith("|")]
        self.assertEqual(rows[0], ["ENDPOINT", "HASH"])
        self.assertEqual(sorted(rows[1:]), sorted([m.endpoint, str(h)] for m in self.c.members))
        simple = self.ok("endpoint", "hashkv", "--rev=%d" % rev)
        self.assertEqual(sorted(simple.splitlines()),
                         sorted("%s, %d" % (m.endpoint, h) for m in self.c.members))
        # A new revision changes the hash; the old revision's hash does not change.
        rev2 = self.put(self.p + "c", "3")
        for m in self.c.members:
            self.c.wait_revision(m, rev2)
        h2 = {x["HashKV"]["hash"] for x in self.js("endpoint", "hashkv", "--rev=%d" % rev2)}
        self.assertEqual(len(h2), 1)
        self.assertNotEqual(h2.pop(), h)
        again = {x["HashKV"]["hash"] for x in self.js("endpoint", "hashkv", "--rev=%d" % rev)}
        self.assertEqual(again, {h})

    # -- member ----------------------------------------------------------------

    def test_member_list(self):
        by_id = {}
        st = self.c.statuses()
        for m in self.c.members:
            by_id[st[m]["header"]["member_id"]] = m
        for asked in self.c.members:
            out = self.js("member", "list", endpoints=asked)
            self.assertEqual(out["header"]["member_id"], asked.id)
            members = out["members"]
            self.assertEqual(sorted(x["ID"] for x in members), sorted(by_id))
            for x in members:
                m = by_id[x["ID"]]
                self.assertEqual(x["name"], m.name)
                self.assertEqual(x["peerURLs"], [m.peer_url])
                self.assertNotIn("isLearner", x)

    def test_member_list_client_urls_from_a_restarted_follower(self):
        # etcd replicates each member's client URLs through the log, so any
        # member lists every member's clientURLs (clients discover endpoints
        # from them). A follower restarted under a stable leader hears only
        # from the leader, which makes this deterministic.
        leader = self.c.leader()
        follower, other = self.c.followers(leader)
        self.c.stop_member(follower)
        self.c.start_member(follower)
        self.c.wait_member_ready(follower)
        self.c.wait_revision(follower, self.c.revision())
        out = self.js("member", "list", endpoints=follower)
        got = {self.c.member_by_id(x["ID"]).name: x.get("clientURLs") for x in out["members"]}
        self.assertEqual(got, {m.name: [m.client_url] for m in self.c.members},
                         "member list asked of the restarted follower %s" % follower.name)

    def test_member_list_simple(self):
        # (Asked of the leader, which knows every client URL today.)
        out = self.ok("member", "list", endpoints=self.c.leader())
        want = sorted("%x, started, %s, %s, %s, false" % (m.id, m.name, m.peer_url, m.client_url)
                      for m in self.c.members)
        self.assertEqual(sorted(out.splitlines()), want)

    # -- compaction ------------------------------------------------------------

    def test_compaction(self):
        k = self.p + "k"
        r1 = self.put(k, "one")
        r2 = self.put(k, "two")
        r3 = self.put(k, "three")
        self.assertEqual(self.ok("compaction", str(r2)), "compacted revision %d\n" % r2)
        self.fails_with(COMPACTED, "get", k, "--rev=%d" % r1)
        self.fails_with(COMPACTED, "get", k, "--rev=%d" % (r2 - 1))
        # The compaction revision itself stays readable.
        self.assertEqual(self.ok("get", k, "--rev=%d" % r2), "%s\ntwo\n" % k)
        self.assertEqual(self.ok("get", k, "--rev=%d" % r3), "%s\nthree\n" % k)
        # On every member.
        for m in self.c.members:
            self.c.wait_revision(m, r3)
            self.fails_with(COMPACTED, "get", k, "--rev=%d" % r1, "--consistency=s", endpoints=m)
        # Compacting again at or below it, or in the future, fails.
        self.fails_with(COMPACTED, "compaction", str(r2))
        self.fails_with(COMPACTED, "compaction", str(r1))
        self.fails_with(FUTURE, "compaction", str(self.c.revision() + 100))
        self.assertEqual(self.ok("compaction", str(r3), "--physical"), "compacted revision %d\n" % r3)
        self.fails_with(COMPACTED, "get", k, "--rev=%d" % r2)
        # hashkv below the compaction fails too.
        res = self.ctl("endpoint", "hashkv", "--rev=%d" % r1)
        self.assertNotEqual(res.rc, 0)
        self.assertIn(COMPACTED, res.err)

    def test_hashkv_at_compaction_revision(self):
        # etcd's HashKV refuses rev <= the compaction revision (mvcc
        # HashByRev: `rev > 0 && rev <= compactRev` -> ErrCompacted), while
        # Range at the compaction revision is allowed.
        k = self.p + "k"
        self.put(k, "one")
        r2 = self.put(k, "two")
        self.ok("compaction", str(r2))
        res = self.ctl("endpoint", "hashkv", "--rev=%d" % r2, endpoints=self.c.leader())
        self.assertNotEqual(res.rc, 0, "hashkv at the compaction revision should fail: %r" % (res,))
        self.assertIn(COMPACTED, res.err)

    # -- maintenance -----------------------------------------------------------

    def test_alarm_list(self):
        res = self.ctl("alarm", "list")
        self.skip_if_unimplemented(res, "Maintenance.Alarm")
        self.assertEqual((res.rc, res.out), (0, ""), res)
        res = self.ctl("alarm", "disarm")
        self.assertEqual((res.rc, res.out), (0, ""), res)

    def test_defrag(self):
        out = self.ok("defrag")
        self.assertEqual(sorted(out.splitlines()),
                         sorted("Finished defragmenting etcd member[%s]" % m.endpoint
                                for m in self.c.members))

    def test_move_leader(self):
        leader = self.c.leader()
        target = self.c.followers(leader)[0]
        res = self.ctl("move-leader", "%x" % target.id)
        self.skip_if_unimplemented(res, "Maintenance.MoveLeader")
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.out, "Leadership transferred from %s to %s\n" % (
            "%x" % leader.id, "%x" % target.id))
        wait_until(lambda: self.c.wait_leader() is target, 10, "%s to lead" % target.name)
        self.assertGreater(self.put(self.p + "after", "x"), 0)
        self.fails_with("etcdserver: bad leader transferee", "move-leader", "1234abcd")

    # -- lease ---------------------------------------------------------------

    def grant(self, ttl):
        res = self.ctl("lease", "grant", str(ttl))
        self.skip_if_unimplemented(res, "Lease.LeaseGrant")
        self.assertEqual(res.rc, 0, res)
        m = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n", res.out)
        self.assertIsNotNone(m, res.out)
        self.assertEqual(int(m.group(2)), ttl)
        return m.group(1)

    def test_lease_lifecycle(self):
        lid = self.grant(100)
        k = self.p + "k"
        self.assertEqual(self.ok("put", k, "v", "--lease=" + lid), "OK\n")
        self.assertEqual(kvs_of(self.js("get", k))[0]["lease"], int(lid, 16))
        out = self.ok("lease", "timetolive", lid, "--keys")
        m = re.fullmatch(r"lease %s granted with TTL\(100s\), remaining\((\d+)s\), "
                         r"attached keys\(\[%s\]\)\n" % (lid, re.escape(k)), out)
        self.assertIsNotNone(m, out)
        self.assertTrue(90 <= int(m.group(1)) <= 100, out)
        ttl = self.js("lease", "timetolive", lid, "--keys")
        self.assertEqual((ttl["id"], ttl["granted-ttl"], ttl["keys"]), (int(lid, 16), 100, [b64(k)]))
        self.assertTrue(90 <= ttl["ttl"] <= 100, ttl)
        res = self.ctl("lease", "keep-alive", "--once", lid)
        self.skip_if_unimplemented(res, "Lease.LeaseKeepAlive")
        self.assertEqual((res.rc, res.out), (0, "lease %s keepalived with TTL(100)\n" % lid), res)
        ka = self.js("lease", "keep-alive", "--once", lid)
        self.assertEqual((ka["ID"], ka["TTL"]), (int(lid, 16), 100))
        self.assertEqual(self.ok("lease", "revoke", lid), "lease %s revoked\n" % lid)
        self.assertEqual(self.ok("get", k), "")
        self.assertEqual(self.ok("lease", "timetolive", lid), "lease %s already expired\n" % lid)
        ttl = self.js("lease", "timetolive", lid)
        self.assertEqual(ttl["ttl"], -1)
        self.fails_with("failed to revoke lease (etcdserver: requested lease not found)",
                        "lease", "revoke", lid)
        self.fails_with("etcdserver: requested lease not found", "lease", "keep-alive", "--once", lid)

    def test_lease_list(self):
        a = self.grant(60)
        b = self.grant(60)
        res = self.ctl("lease", "list")
        self.skip_if_unimplemented(res, "Lease.LeaseLeases")
        lines = res.out.splitlines()
        self.assertRegex(lines[0], r"^found \d+ leases$")
        self.assertEqual(int(lines[0].split()[1]), len(lines) - 1)
        self.assertTrue({a, b} <= set(lines[1:]), res.out)
        ids = {x["id"] for x in self.js("lease", "list").get("leases", [])}
        self.assertTrue({int(a, 16), int(b, 16)} <= ids)
        self.ok("lease", "revoke", a)
        self.ok("lease", "revoke", b)
        ids = {x["id"] for x in self.js("lease", "list").get("leases", [])}
        self.assertFalse({int(a, 16), int(b, 16)} & ids)

    def test_lease_expiry_deletes_keys(self):
        lid = self.grant(2)
        k = self.p + "k"
        self.ok("put", k, "v", "--lease=" + lid)
        self.ok("put", self.p + "other", "v")
        t0 = time.monotonic()
        wait_until(lambda: self.ok("get", k) == "", 15, "the key of an expired 2 s lease to go")
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 1.0, "a 2 s lease expired after %.2fs" % elapsed)
        self.assertEqual(self.ok("lease", "timetolive", lid), "lease %s already expired\n" % lid)
        self.assertEqual(self.ok("get", self.p + "other"), "%sother\nv\n" % self.p)
        for m in self.c.members:
            self.c.wait_revision(m, self.c.revision())
            self.assertEqual(self.ok("get", k, "--consistency=s", endpoints=m), "")

    def test_lease_timetolive_unknown(self):
        res = self.ctl("lease", "timetolive", "1234abcd")
        self.skip_if_unimplemented(res, "Lease.LeaseTimeToLive")
        self.assertEqual((res.rc, res.out), (0, "lease 000000001234abcd already expired\n"), res)

    # -- watch ---------------------------------------------------------------

    def watch(self, *args):
        w = Watcher(self.c, args)
        self.addCleanup(w.close)
        return w

    def expect_watch(self, w, expected, sentinel_key):
        """Writes a sentinel and checks that stdout is exactly the expected
        events followed by the sentinel's (no missing, extra or reordered event)."""
        self.put(sentinel_key, "end")
        full = expected + "PUT\n%s\nend\n" % sentinel_key
        out = w.wait_text(full)
        if w.unimplemented():
            self.skipTest("Watch: the server answers UNIMPLEMENTED (not served by %s)" % self.c.binary)
        self.assertEqual(out, full, w.describe())

    def test_watch_prefix(self):
        p = self.p
        rev = self.c.revision()
        w = self.watch(p, "--prefix", "--rev=%d" % (rev + 1))
        self.put(p + "a", "1")
        self.put(p[:-1] + "-outside", "x")
        self.put(p + "b", "2")
        self.ok("del", p + "a")
        self.expect_watch(w, "PUT\n{0}a\n1\nPUT\n{0}b\n2\nDELETE\n{0}a\n\n".format(p), p + "zz")

    def test_watch_single_key_live(self):
        p = self.p
        rev = self.c.revision()
        w = self.watch(p + "k", "--rev=%d" % (rev + 1))
        self.put(p + "k", "1")
        self.put(p + "k2", "no")  # not the watched key
        self.put(p + "k", "2")
        self.put(p + "k", "end")
        out = w.wait_text("PUT\n{0}k\n1\nPUT\n{0}k\n2\nPUT\n{0}k\nend\n".format(p))
        if w.unimplemented():
            self.skipTest("Watch: the server answers UNIMPLEMENTED (not served by %s)" % self.c.binary)
        self.assertEqual(out, "PUT\n{0}k\n1\nPUT\n{0}k\n2\nPUT\n{0}k\nend\n".format(p), w.describe())

    def test_watch_rev_history(self):
        p = self.p
        first = self.put(p + "a", "1")
        self.put(p + "b", "2")
        self.put(p + "a", "3")
        self.ok("del", p + "b")
        w = self.watch(p, "--prefix", "--rev=%d" % first)
        self.expect_watch(
            w, "PUT\n{0}a\n1\nPUT\n{0}b\n2\nPUT\n{0}a\n3\nDELETE\n{0}b\n\n".format(p), p + "zz")

    def test_watch_prev_kv(self):
        p = self.p
        first = self.put(p + "a", "1")
        self.put(p + "a", "2")
        self.ok("del", p + "a")
        w = self.watch(p, "--prefix", "--prev-kv", "--rev=%d" % first)
        # etcdctl prints the previous key-value before the event's own.
        self.expect_watch(
            w, "PUT\n{0}a\n1\nPUT\n{0}a\n1\n{0}a\n2\nDELETE\n{0}a\n2\n{0}a\n\n".format(p), p + "zz")

    def test_watch_json(self):
        p = self.p
        first = self.put(p + "a", "1")
        last = self.put(p + "a", "2")
        w = self.watch(p + "a", "--rev=%d" % first, "-w", "json")
        out = ""

        def two_events():
            nonlocal out
            if w.proc.poll() is not None:
                return "exited"
            out = w.text()
            events = []
            for line in out.splitlines():
                if line.startswith("{"):
                    events += json.loads(line).get("Events") or []
            return events if len(events) >= 2 else None
        try:
            events = wait_until(two_events, 10, "two watch events")
        except cluster.WaitTimeout:
            events = None
        if events is None or events == "exited":
            w.close()
            if w.unimplemented():
                self.skipTest("Watch: the server answers UNIMPLEMENTED (not served by %s)" %
                              self.c.binary)
            raise AssertionError("no two watch events: " + w.describe())
        self.assertEqual([(e.get("type", 0), unb64(e["kv"]["key"]), unb64(e["kv"]["value"]),
                           e["kv"]["mod_revision"], e["kv"]["version"]) for e in events],
                         [(0, p + "a", "1", first, 1), (0, p + "a", "2", last, 2)])

    def test_watch_compacted_revision(self):
        p = self.p
        first = self.put(p + "a", "1")
        r2 = self.put(p + "a", "2")
        self.ok("compaction", str(r2))
        w = self.watch(p + "a", "--rev=%d" % first)
        wait_until(lambda: w.proc.poll() is not None, 10, "etcdctl watch on a compacted revision to end")
        w.close()
        if w.unimplemented():
            self.skipTest("Watch: the server answers UNIMPLEMENTED (not served by %s)" % self.c.binary)
        self.assertIn("watch was canceled (%s)" % COMPACTED, w.text() + w.errtext(), w.describe())


if __name__ == "__main__":
    cluster.main()

"""A client of etcd's v3lock and v3election services built from Warden's own
.proto files (python3-etcd3 ships neither). Run as a separate process (its
protos would clash with python3-etcd3's in one interpreter).

    v3_services_client.py PROTO_DIR PROTOC ENDPOINTS SCENARIO

ENDPOINTS is a comma-separated list; requests go round-robin over them (so
followers forward to the leader). Prints one JSON object with what happened.

Scenarios:
  contend   10 threads, each with its own lease, Lock/Unlock one name for 3 s;
            reports cycles, the maximum number of simultaneous holders seen
            (must be 1) and whether the lock keys were gone at the end.
  election  Campaign a (granted), Campaign b (blocks), Leader = a, Proclaim
            by b refused, Resign a -> b elected, Leader = b.
"""
import json
import subprocess
import sys
import tempfile
import threading
import time

import grpc


def load(proto_dir, protoc):
    out = tempfile.mkdtemp(prefix="warden-v3-proto-")
    files = ["etcd/etcdserverpb/rpc.proto", "etcd/mvccpb/kv.proto", "etcd/authpb/auth.proto",
             "etcd/v3lockpb/v3lock.proto", "etcd/v3electionpb/v3election.proto"]
    subprocess.run([protoc, "-I", proto_dir, "--python_out=" + out] + files, check=True)
    sys.path.insert(0, out)
    from etcd.etcdserverpb import rpc_pb2
    from etcd.v3lockpb import v3lock_pb2
    from etcd.v3electionpb import v3election_pb2
    return rpc_pb2, v3lock_pb2, v3election_pb2


class Conn:
    def __init__(self, endpoint):
        self.ch = grpc.insecure_channel(endpoint, options=[("grpc.enable_http_proxy", 0)])

    def unary(self, method, req, resp_type, timeout=10):
        f = self.ch.unary_unary(method, request_serializer=type(req).SerializeToString,
                                response_deserializer=resp_type.FromString)
        return f(req, timeout=timeout)


def main():
    proto_dir, protoc, endpoints, scenario = sys.argv[1:5]
    rpc, lk, el = load(proto_dir, protoc)
    conns = [Conn(e) for e in endpoints.split(",")]

    def grant(conn, ttl=10):
        return conn.unary("/etcdserverpb.Lease/LeaseGrant", rpc.LeaseGrantRequest(TTL=ttl),
                          rpc.LeaseGrantResponse).ID

    if scenario == "contend":
        holders = [0]
        max_holders = [0]
        cycles = [0]
        errors = []
        mu = threading.Lock()
        deadline = time.monotonic() + 3.0

        def worker(i):
            conn = conns[i % len(conns)]
            lease = grant(conn)
            while time.monotonic() < deadline:
                try:
                    key = conn.unary("/v3lockpb.Lock/Lock", lk.LockRequest(name=b"v3-contend",
                                                                          lease=lease),
                                     lk.LockResponse, timeout=20).key
                    with mu:
                        holders[0] += 1
                        max_holders[0] = max(max_holders[0], holders[0])
                    time.sleep(0.001)
                    with mu:
                        holders[0] -= 1
                        cycles[0] += 1
                    conn.unary("/v3lockpb.Lock/Unlock", lk.UnlockRequest(key=key),
                               lk.UnlockResponse)
                except grpc.RpcError as e:
                    errors.append("%s %s" % (e.code(), e.details()))
                    return

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        elapsed = time.monotonic() - t0
        left = conns[0].unary("/etcdserverpb.KV/Range", rpc.RangeRequest(
            key=b"v3-contend/", range_end=b"v3-contend0", count_only=True), rpc.RangeResponse)
        print(json.dumps({"cycles": cycles[0], "seconds": elapsed,
                          "handovers_per_s": cycles[0] / elapsed, "max_holders": max_holders[0],
                          "errors": errors, "keys_left": left.count}))
    elif scenario == "election":
        out = {}
        la, lb = grant(conns[0]), grant(conns[-1])
        a = conns[0].unary("/v3electionpb.Election/Campaign", el.CampaignRequest(
            name=b"v3-el", lease=la, value=b"a"), el.CampaignResponse)
        out["a_key"] = a.leader.key.decode()
        got_b = {}

        def campaign_b():
            got_b["resp"] = conns[-1].unary("/v3electionpb.Election/Campaign", el.CampaignRequest(
                name=b"v3-el", lease=lb, value=b"b"), el.CampaignResponse, timeout=20)
            got_b["at"] = time.monotonic()

        t = threading.Thread(target=campaign_b)
        t.start()
        time.sleep(0.5)
        out["b_waiting"] = "resp" not in got_b
        out["leader1"] = conns[-1].unary("/v3electionpb.Election/Leader", el.LeaderRequest(
            name=b"v3-el"), el.LeaderResponse).kv.value.decode()
        try:
            bkey = b"v3-el/" + ("%x" % lb).encode()
            conns[0].unary("/v3electionpb.Election/Proclaim", el.ProclaimRequest(
                leader=el.LeaderKey(name=b"v3-el", key=bkey, lease=lb), value=b"b!"),
                el.ProclaimResponse)
            out["proclaim_by_b"] = "ok"
        except grpc.RpcError as e:
            out["proclaim_by_b"] = "%s: %s" % (e.code().name, e.details())
        conns[0].unary("/v3electionpb.Election/Proclaim", el.ProclaimRequest(
            leader=a.leader, value=b"a2"), el.ProclaimResponse)
        out["leader2"] = conns[0].unary("/v3electionpb.Election/Leader", el.LeaderRequest(
            name=b"v3-el"), el.LeaderResponse).kv.value.decode()
        resigned = time.monotonic()
        conns[0].unary("/v3electionpb.Election/Resign", el.ResignRequest(leader=a.leader),
                       el.ResignResponse)
        t.join(20)
        out["b_elected"] = "resp" in got_b
        out["handover_ms"] = (got_b.get("at", resigned) - resigned) * 1000
        out["leader3"] = conns[0].unary("/v3electionpb.Election/Leader", el.LeaderRequest(
            name=b"v3-el"), el.LeaderResponse).kv.value.decode()
        print(json.dumps(out))


if __name__ == "__main__":
    main()

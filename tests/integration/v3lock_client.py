"""A minimal etcd v3lock client (the v3lockpb.Lock gRPC service, which Warden
serves from its lock table), for tests that mix it with wardenctl.

    /usr/bin/python3 v3lock_client.py ENDPOINTS NAME LOG HOLD_SECONDS ITERATIONS

Each iteration grants a lease (TTL 60 s: there is no keep-alive, so it must
outlast any wait in the queue), calls Lock(NAME, lease), appends "start 0 PID"
and "end 0 PID" lines to LOG around a sleep, then Unlock and LeaseRevoke. Debian's etcdctl 3.4 and python3-etcd3 have no v3lock client
(etcdctl lock is clientv3's KV recipe), so the few messages are encoded by
hand; only python3-grpcio is needed. Exits non-zero on any error.
"""

import os
import sys
import time

import grpc


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((num << 3) | 2) + varint(len(data)) + data


def parse(buf):
    """Top-level fields: {number: value} (varints as int, the rest as bytes)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out[num] = v
    return out


def _read_varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


class Client:
    def __init__(self, endpoints):
        self.endpoints = endpoints
        self.i = 0
        self._connect()

    def _connect(self):
        self.channel = grpc.insecure_channel(self.endpoints[self.i % len(self.endpoints)],
                                             options=[("grpc.enable_http_proxy", 0)])

    def call(self, method, payload, timeout=60, attempts=30):
        last = None
        for _ in range(attempts):
            fn = self.channel.unary_unary(method, request_serializer=None,
                                          response_deserializer=None)
            try:
                return parse(fn(payload, timeout=timeout))
            except grpc.RpcError as e:
                last = e
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                self.i += 1
                self._connect()
                time.sleep(0.1)
        raise last


def main():
    endpoints = sys.argv[1].split(",")
    name, log, hold, iterations = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
    c = Client(endpoints)
    pid = os.getpid()
    for _ in range(iterations):
        lease = c.call("/etcdserverpb.Lease/LeaseGrant", field_varint(1, 60)).get(2)
        resp = c.call("/v3lockpb.Lock/Lock", field_bytes(1, name) + field_varint(2, lease),
                      timeout=120)
        key = resp.get(2, b"")
        if not key:
            print("v3lock_client: Lock answered without a key", file=sys.stderr)
            return 1
        with open(log, "a") as f:
            f.write("start 0 %d\n" % pid)
        time.sleep(hold)
        with open(log, "a") as f:
            f.write("end 0 %d\n" % pid)
        c.call("/v3lockpb.Lock/Unlock", field_bytes(1, key))
        c.call("/etcdserverpb.Lease/LeaseRevoke", field_varint(1, lease))
    return 0


if __name__ == "__main__":
    sys.exit(main())

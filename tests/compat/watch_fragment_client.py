"""A Watch client built from Warden's own etcd .proto files, for the one
field python3-etcd3's bundled protos lack (WatchCreateRequest.fragment).

Run as a separate process (its protos would clash with python3-etcd3's in one
interpreter): compiles the protos with protoc into a temporary directory,
opens a watch on PREFIX with prev_kv and fragment=FRAGMENT, prints "ready",
then prints one JSON line per response until COUNT events arrived:
{"fragment": bool, "bytes": n, "events": [[key, mod_revision, len(value), len(prev)]...]}.

    watch_fragment_client.py PROTO_DIR PROTOC ENDPOINT PREFIX COUNT FRAGMENT(0|1)
"""
import json
import subprocess
import sys
import tempfile
import threading

import grpc


def main():
    proto_dir, protoc, endpoint, prefix, count, fragment = sys.argv[1:7]
    out = tempfile.mkdtemp(prefix="warden-watch-proto-")
    subprocess.run([protoc, "-I", proto_dir, "--python_out=" + out, "etcd/etcdserverpb/rpc.proto",
                    "etcd/mvccpb/kv.proto", "etcd/authpb/auth.proto"], check=True)
    sys.path.insert(0, out)
    from etcd.etcdserverpb import rpc_pb2  # noqa: E402

    key = prefix.encode()
    end = key[:-1] + bytes([key[-1] + 1])
    channel = grpc.insecure_channel(endpoint, options=[
        ("grpc.enable_http_proxy", 0), ("grpc.max_receive_message_length", 64 << 20)])
    watch = channel.stream_stream("/etcdserverpb.Watch/Watch",
                                  request_serializer=rpc_pb2.WatchRequest.SerializeToString,
                                  response_deserializer=rpc_pb2.WatchResponse.FromString)
    done = threading.Event()

    def requests():
        yield rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
            key=key, range_end=end, prev_kv=True, fragment=fragment == "1"))
        done.wait(60)

    stream = watch(requests(), timeout=60)
    first = next(stream)
    assert first.created, first
    print("ready", flush=True)
    n = 0
    while n < int(count):
        r = next(stream)
        n += len(r.events)
        print(json.dumps({"fragment": r.fragment, "bytes": r.ByteSize(), "events": [
            [e.kv.key.decode(), e.kv.mod_revision, len(e.kv.value), len(e.prev_kv.value)]
            for e in r.events]}), flush=True)
    done.set()


if __name__ == "__main__":
    main()

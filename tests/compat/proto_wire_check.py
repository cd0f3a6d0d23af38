#!/usr/bin/python3
"""Mechanical wire-compatibility check of Warden's etcd .proto files.

Compiles the .proto files under PROTO_DIR with protoc into a descriptor set and
compares them against reference schemas that real etcd clients were built from:

  * python3-etcd3's generated modules (etcd3.etcdrpc.*_pb2), always;
  * optionally, the schemas embedded in Go etcd binaries (--go-binary
    /usr/bin/etcd, /usr/bin/etcdctl). Go protobuf code registers each .proto
    file as a gzip-compressed FileDescriptorProto, so the exact schema an
    etcd 3.4 binary speaks can be recovered from the executable.

For every message present in both (matched by full name, e.g.
etcdserverpb.RangeRequest) every reference field must exist in ours with the
same number, name, type, label, message/enum type name, oneof membership and
packed encoding. Enum values must agree, and every method of every reference
service must exist in ours with the same input/output types and streaming
flags. Things that exist only in our files (newer fields, messages, methods)
are allowed and only listed with --verbose.

Run with Debian's interpreter, from the repository root:
    /usr/bin/python3 tests/compat/proto_wire_check.py proto
Exit status: 0 if no mismatches, 1 on mismatches, 2 on setup errors.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib

from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto

# The client API files. Other files in the same packages (e.g. etcd's internal
# raft_internal.proto / etcdserver.proto in package etcdserverpb) are not part
# of the client contract and are ignored when read from Go binaries.
API_FILES = {
    "kv.proto": "mvccpb",
    "auth.proto": "authpb",
    "rpc.proto": "etcdserverpb",
    "v3lock.proto": "v3lockpb",
    "v3election.proto": "v3electionpb",
}

# Reference fields that ours may lack on purpose, as "full.Message.field": reason.
# Empty: every reference field is present.
ALLOWED_MISSING_FIELDS = {}

# Documented type differences: "full.Message.field" -> (our type, reference
# type, reason). Only string<->bytes is ever acceptable: both use the same
# length-delimited wire encoding, so only UTF-8 validation differs.
_REVOKE_REASON = ("python3-etcd3 bundles an etcd 3.3-era rpc.proto where this was "
                  "string; etcd 3.4 (and the etcd 3.4.23 binaries) use bytes. Same "
                  "wire encoding; python only sends this message, and Warden "
                  "parsing it as bytes accepts anything python sends.")
ALLOWED_TYPE_DIFFS = {
    "etcdserverpb.AuthRoleRevokePermissionRequest.key":
        (FDP.TYPE_BYTES, FDP.TYPE_STRING, _REVOKE_REASON),
    "etcdserverpb.AuthRoleRevokePermissionRequest.range_end":
        (FDP.TYPE_BYTES, FDP.TYPE_STRING, _REVOKE_REASON),
}

TYPE_NAMES = {v: k[len("TYPE_"):].lower() for k, v in FDP.Type.items()}
LABEL_NAMES = {v: k[len("LABEL_"):].lower() for k, v in FDP.Label.items()}
PACKABLE = {
    FDP.TYPE_DOUBLE, FDP.TYPE_FLOAT, FDP.TYPE_INT64, FDP.TYPE_UINT64,
    FDP.TYPE_INT32, FDP.TYPE_FIXED64, FDP.TYPE_FIXED32, FDP.TYPE_BOOL,
    FDP.TYPE_UINT32, FDP.TYPE_ENUM, FDP.TYPE_SFIXED32, FDP.TYPE_SFIXED64,
    FDP.TYPE_SINT32, FDP.TYPE_SINT64,
}


def fail(msg):
    """Setup problem (not a mismatch): report and exit with status 2."""
    sys.stderr.write("error: %s\n" % msg)
    sys.exit(2)


class Schema:
    """Messages, enums and services of a set of files, keyed by full name."""

    def __init__(self, label):
        self.label = label
        self.messages = {}  # full name -> (DescriptorProto, syntax)
        self.enums = {}     # full name -> EnumDescriptorProto
        self.services = {}  # full name -> ServiceDescriptorProto
        self.files = []

    def add_file(self, fd):
        self.files.append(fd.name)
        syntax = fd.syntax or "proto2"
        prefix = fd.package + "." if fd.package else ""
        for e in fd.enum_type:
            self.enums[prefix + e.name] = e
        for m in fd.message_type:
            self._add_message(prefix + m.name, m, syntax)
        for s in fd.service:
            self.services[prefix + s.name] = s

    def _add_message(self, full, m, syntax):
        self.messages[full] = (m, syntax)
        for e in m.enum_type:
            self.enums[full + "." + e.name] = e
        for n in m.nested_type:
            self._add_message(full + "." + n.name, n, syntax)


def is_packed(field, syntax):
    if field.label != FDP.LABEL_REPEATED or field.type not in PACKABLE:
        return False
    if field.options.HasField("packed"):
        return field.options.packed
    return syntax == "proto3"


def oneof_name(msg, field):
    if field.HasField("oneof_index") and not field.proto3_optional:
        return msg.oneof_decl[field.oneof_index].name
    return None


def describe(field):
    s = "%d %s %s %s" % (field.number, field.name, LABEL_NAMES[field.label],
                         TYPE_NAMES[field.type])
    if field.type_name:
        s += " " + field.type_name
    return s


# --------------------------------------------------------------------------
# Loading schemas
# --------------------------------------------------------------------------

def load_ours(proto_dir, protoc):
    files = []
    for root, _, names in os.walk(proto_dir):
        for n in names:
            if n.endswith(".proto"):
                files.append(os.path.relpath(os.path.join(root, n), proto_dir))
    if not files:
        fail("no .proto files under %s" % proto_dir)
    files.sort()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "warden.desc")
        cmd = [protoc, "-I", proto_dir, "--include_imports",
               "--descriptor_set_out=" + out] + files
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.stderr.write(res.stderr)
            fail("protoc failed: %s" % " ".join(cmd))
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    schema = Schema("warden (%s)" % proto_dir)
    for fd in fds.file:
        schema.add_file(fd)
    return schema


def load_python_etcd3():
    try:
        from etcd3.etcdrpc import kv_pb2, auth_pb2, rpc_pb2
    except ImportError as e:
        fail("cannot import python3-etcd3's generated modules "
                         "(run with /usr/bin/python3): %s" % e)
    schema = Schema("python3-etcd3")
    for mod in (kv_pb2, auth_pb2, rpc_pb2):
        fd = descriptor_pb2.FileDescriptorProto()
        raw = getattr(mod.DESCRIPTOR, "serialized_pb", None)
        if raw:
            fd.ParseFromString(raw)
        else:
            mod.DESCRIPTOR.CopyToProto(fd)
        schema.add_file(fd)
    return schema


def load_go_binary(path):
    """Recover the API .proto descriptors a Go etcd binary registered."""
    with open(path, "rb") as f:
        data = f.read()
    seen = set()
    schema = Schema("go:" + path)
    for m in re.finditer(b"\x1f\x8b\x08", data):
        start = m.start()
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                data[start:start + (4 << 20)])
        except zlib.error:
            continue
        if not raw or raw in seen:
            continue
        fd = descriptor_pb2.FileDescriptorProto()
        try:
            fd.ParseFromString(raw)
        except Exception:  # not a descriptor
            continue
        base = os.path.basename(fd.name)
        if API_FILES.get(base) != fd.package or not fd.package:
            continue
        seen.add(raw)
        schema.add_file(fd)
    if not schema.files:
        fail("no etcd API descriptors found in %s" % path)
    return schema


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

class Checker:
    def __init__(self, ours, verbose):
        self.ours = ours
        self.verbose = verbose
        self.mismatches = 0
        self.allowed = 0
        self.messages = 0
        self.fields = 0
        self.enums = 0
        self.enum_values = 0
        self.methods = 0

    def bad(self, ref, what, detail):
        self.mismatches += 1
        print("MISMATCH [%s] %s: %s" % (ref.label, what, detail))

    def note(self, ref, what, detail):
        if self.verbose:
            print("note     [%s] %s: %s" % (ref.label, what, detail))

    def check(self, ref):
        for full in sorted(ref.messages):
            self.check_message(ref, full)
        for full in sorted(ref.enums):
            self.check_enum(ref, full)
        for full in sorted(ref.services):
            self.check_service(ref, full)
        for full in sorted(set(self.ours.messages) - set(ref.messages)):
            if full.split(".")[0] in {k.split(".")[0] for k in ref.messages}:
                self.note(ref, full, "message only in ours")

    def check_message(self, ref, full):
        rmsg, rsyntax = ref.messages[full]
        if full not in self.ours.messages:
            self.bad(ref, full, "message missing from ours")
            return
        omsg, osyntax = self.ours.messages[full]
        self.messages += 1
        ofields = {f.number: f for f in omsg.field}
        onames = {f.name: f for f in omsg.field}
        for rf in rmsg.field:
            self.fields += 1
            where = "%s.%s" % (full, rf.name)
            of = ofields.get(rf.number)
            if of is None:
                if where in ALLOWED_MISSING_FIELDS:
                    self.note(ref, where, "missing, allowed: " + ALLOWED_MISSING_FIELDS[where])
                    continue
                other = onames.get(rf.name)
                extra = (" (ours has that name as %s)" % describe(other)) if other else ""
                self.bad(ref, where, "field %d missing from ours%s" % (rf.number, extra))
                continue
            diffs = []
            if of.name != rf.name:
                diffs.append("name %r != %r" % (of.name, rf.name))
            allowed = ALLOWED_TYPE_DIFFS.get(where)
            if of.type != rf.type and allowed and allowed[:2] == (of.type, rf.type):
                self.allowed += 1
                print("allowed  [%s] %s: type %s vs %s: %s" % (
                    ref.label, where, TYPE_NAMES[of.type], TYPE_NAMES[rf.type], allowed[2]))
            elif of.type != rf.type:
                diffs.append("type %s != %s" % (TYPE_NAMES[of.type], TYPE_NAMES[rf.type]))
            if of.label != rf.label:
                diffs.append("label %s != %s" % (LABEL_NAMES[of.label], LABEL_NAMES[rf.label]))
            if rf.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM, FDP.TYPE_GROUP) \
                    and of.type_name != rf.type_name:
                diffs.append("type_name %s != %s" % (of.type_name, rf.type_name))
            if oneof_name(omsg, of) != oneof_name(rmsg, rf):
                diffs.append("oneof %s != %s" % (oneof_name(omsg, of), oneof_name(rmsg, rf)))
            if is_packed(of, osyntax) != is_packed(rf, rsyntax):
                diffs.append("packed %s != %s" % (is_packed(of, osyntax), is_packed(rf, rsyntax)))
            if diffs:
                self.bad(ref, where, "ours[%s] ref[%s]: %s"
                         % (describe(of), describe(rf), "; ".join(diffs)))
        rnums = {f.number for f in rmsg.field}
        for of in omsg.field:
            if of.number not in rnums:
                self.note(ref, "%s.%s" % (full, of.name), "field %d only in ours" % of.number)

    def check_enum(self, ref, full):
        renum = ref.enums[full]
        if full not in self.ours.enums:
            self.bad(ref, full, "enum missing from ours")
            return
        oenum = self.ours.enums[full]
        self.enums += 1
        oby_name = {v.name: v.number for v in oenum.value}
        oby_num = {}
        for v in oenum.value:
            oby_num.setdefault(v.number, v.name)
        for rv in renum.value:
            self.enum_values += 1
            where = "%s.%s" % (full, rv.name)
            if rv.name not in oby_name:
                self.bad(ref, where, "enum value %d missing from ours (ours has %r at %d)"
                         % (rv.number, oby_num.get(rv.number), rv.number))
            elif oby_name[rv.name] != rv.number:
                self.bad(ref, where, "enum number %d != %d" % (oby_name[rv.name], rv.number))

    def check_service(self, ref, full):
        rsvc = ref.services[full]
        if full not in self.ours.services:
            self.bad(ref, full, "service missing from ours")
            return
        osvc = self.ours.services[full]
        omethods = {m.name: m for m in osvc.method}
        for rm in rsvc.method:
            self.methods += 1
            where = "%s/%s" % (full, rm.name)
            om = omethods.get(rm.name)
            if om is None:
                self.bad(ref, where, "method missing from ours")
                continue
            diffs = []
            if om.input_type != rm.input_type:
                diffs.append("input %s != %s" % (om.input_type, rm.input_type))
            if om.output_type != rm.output_type:
                diffs.append("output %s != %s" % (om.output_type, rm.output_type))
            if om.client_streaming != rm.client_streaming:
                diffs.append("client_streaming %s != %s" % (om.client_streaming, rm.client_streaming))
            if om.server_streaming != rm.server_streaming:
                diffs.append("server_streaming %s != %s" % (om.server_streaming, rm.server_streaming))
            if diffs:
                self.bad(ref, where, "; ".join(diffs))
        rnames = {m.name for m in rsvc.method}
        for om in osvc.method:
            if om.name not in rnames:
                self.note(ref, "%s/%s" % (full, om.name), "method only in ours")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("proto_dir", help="root of Warden's .proto tree (the protoc -I dir)")
    ap.add_argument("--protoc", default=shutil.which("protoc") or "protoc",
                    help="protoc executable (default: protoc on PATH)")
    ap.add_argument("--go-binary", action="append", default=[], metavar="PATH",
                    help="also compare against the schemas embedded in this Go "
                         "etcd binary (repeatable), e.g. /usr/bin/etcd")
    ap.add_argument("--skip-python", action="store_true",
                    help="do not use python3-etcd3's modules as a reference")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also list what exists only in ours")
    args = ap.parse_args()

    if not os.path.isdir(args.proto_dir):
        print("error: %s is not a directory" % args.proto_dir, file=sys.stderr)
        return 2

    ours = load_ours(args.proto_dir, args.protoc)
    refs = []
    if not args.skip_python:
        refs.append(load_python_etcd3())
    for path in args.go_binary:
        refs.append(load_go_binary(path))
    if not refs:
        print("error: no reference schema selected", file=sys.stderr)
        return 2

    checker = Checker(ours, args.verbose)
    for ref in refs:
        before = (checker.messages, checker.fields, checker.methods, checker.mismatches)
        checker.check(ref)
        print("reference %s (%s): %d messages, %d fields, %d methods, %d mismatches"
              % (ref.label, ", ".join(sorted(ref.files)),
                 checker.messages - before[0], checker.fields - before[1],
                 checker.methods - before[2], checker.mismatches - before[3]))
    print("enums: %d enums, %d values compared; documented allowed differences: %d"
          % (checker.enums, checker.enum_values, checker.allowed))
    print("checked %d messages, %d fields, %d methods: %d mismatches"
          % (checker.messages, checker.fields, checker.methods, checker.mismatches))
    return 1 if checker.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

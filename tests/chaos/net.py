"""Networks for the chaos harness: members in network namespaces, or on loopback.

NetnsNetwork (needs root, `ip netns`, nftables): one namespace per member,
named wchaos-<run id>-n<i>, each with a veth pair whose host end hangs on a
bridge wch<run id>b in the root namespace. Addresses come from one private
/24 (10.199.X.0/24, X picked so that no route of the machine overlaps it);
the bridge holds .1 and is where the harness's clients talk from, member i
is .(10+i). Faults live inside the namespaces only:

* partitions: nftables table `inet wchaos` in each member's namespace, rules
  `ip saddr PEER drop` (input) and `ip daddr PEER drop` (output); a one-way
  cut drops one direction only. Traffic with the bridge address (the
  clients) is never cut.
* loss: `numgen random mod 100 < P drop` rules on peer traffic.
* slow links: a tbf qdisc (rate limit) on the member's interface. This
  kernel has no sch_netem, so fixed delay and reordering are not available;
  queueing behind a low rate is the latency we can make.

A safety route `unreachable <subnet>` (metric 4000) is installed first and
removed last, so that traffic to the test subnet can never leave through the
default route while the bridge is being built or torn down.

Everything created is listed in a state file /run/warden-chaos/<run id>.json
with the harness's PID. cleanup_leftovers() removes what a crashed earlier
run left: only resources listed in a state file whose PID is dead, and
namespaces carrying our prefix that no live run owns.

LoopbackNetwork (the fallback without root or namespaces): members on
127.0.0.1; each member's advertised peer URL is a TCP proxy in this process
that forwards to its real peer port. A proxy can drop everything sent to its
member (a one-way cut: the member hears no peer), lose connections at random,
or delay each chunk. Symmetric and per-pair partitions cannot be expressed
(the proxy cannot tell which member connects), so only `isolate-inbound`
style partitions exist there.
"""

import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time

STATE_DIR = "/run/warden-chaos"
NETNS_PREFIX = "wchaos-"
LINK_PREFIX = "wch"
CLIENT_PORT = 24790
PEER_PORT = 24791


def _run(cmd, check=True, timeout=20):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def netns_available():
    """(True, "") if this process can create namespaces and nftables rules, else (False, why)."""
    if os.geteuid() != 0:
        return False, "not root"
    for tool in ("/usr/sbin/ip", "/usr/sbin/nft"):
        if not os.access(tool, os.X_OK):
            return False, "%s is missing (apt-get install iproute2 nftables)" % tool
    name = "%sprobe-%d" % (NETNS_PREFIX, os.getpid())
    p = _run(["ip", "netns", "add", name], check=False)
    if p.returncode != 0:
        return False, "ip netns add failed: " + p.stderr.strip()
    try:
        q = _run(["ip", "netns", "exec", name, "nft", "add", "table", "inet", "probe"], check=False)
        if q.returncode != 0:
            return False, "nft inside a namespace failed: " + q.stderr.strip()
    finally:
        _run(["ip", "netns", "del", name], check=False)
    return True, ""


def _state_files():
    try:
        return [os.path.join(STATE_DIR, f) for f in os.listdir(STATE_DIR) if f.endswith(".json")]
    except OSError:
        return []


def _remove_resources(state):
    for ns in state.get("netns", []):
        if ns.startswith(NETNS_PREFIX):
            _run(["ip", "netns", "del", ns], check=False)
    for link in state.get("links", []):
        if link.startswith(LINK_PREFIX):
            _run(["ip", "link", "del", link], check=False)
    for mnt in state.get("mounts", []):
        _run(["umount", "-l", mnt], check=False)
    for route in state.get("routes", []):
        _run(["ip", "route", "del"] + route.split(), check=False)


def cleanup_leftovers(log=print):
    """Removes what crashed earlier runs left behind (only our own prefixes)."""
    if os.geteuid() != 0:
        return
    owned = set()
    for path in _state_files():
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        if _pid_alive(int(state.get("pid", 0))):
            owned.update(state.get("netns", []))
            continue
        log("chaos: removing leftovers of run %s (pid %s is gone)" % (state.get("run_id"), state.get("pid")))
        _remove_resources(state)
        try:
            os.unlink(path)
        except OSError:
            pass
    p = _run(["ip", "netns", "list"], check=False)
    for line in p.stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        if ns.startswith(NETNS_PREFIX) and ns not in owned and "probe-" not in ns:
            log("chaos: removing orphan namespace %s" % ns)
            _run(["ip", "netns", "del", ns], check=False)


def _pick_subnet(rng):
    routes = _run(["ip", "-j", "-4", "route", "show", "table", "all"], check=False).stdout
    addrs = _run(["ip", "-j", "-4", "addr", "show"], check=False).stdout
    taken = []
    try:
        for r in json.loads(routes or "[]"):
            dst = r.get("dst", "")
            if dst and dst != "default":
                try:
                    taken.append(ipaddress.ip_network(dst, strict=False))
                except ValueError:
                    pass
        for link in json.loads(addrs or "[]"):
            for a in link.get("addr_info", []):
                taken.append(ipaddress.ip_network("%s/%s" % (a["local"], a["prefixlen"]), strict=False))
    except ValueError:
        pass
    for _ in range(200):
        net = ipaddress.ip_network("10.199.%d.0/24" % rng.randint(1, 254))
        if not any(net.overlaps(t) for t in taken):
            return net
    raise RuntimeError("no free 10.199.X.0/24 subnet")


class NetnsNetwork:
    mode = "netns"

    def __init__(self, size, run_id, log=print):
        self.size = size
        self.run_id = run_id
        self.log = log
        self.subnet = _pick_subnet(random.Random(os.getpid() ^ int(run_id, 16)))
        hosts = list(self.subnet.hosts())
        self.bridge_ip = str(hosts[0])
        self.member_ips = [str(hosts[9 + i]) for i in range(size)]
        self.netns = ["%s%s-n%d" % (NETNS_PREFIX, run_id, i) for i in range(size)]
        self.bridge = "%s%sb" % (LINK_PREFIX, run_id)
        self.veths = ["%s%sv%d" % (LINK_PREFIX, run_id, i) for i in range(size)]
        self.state = {"run_id": run_id, "pid": os.getpid(), "netns": [], "links": [],
                      "mounts": [], "routes": []}
        self.state_path = os.path.join(STATE_DIR, run_id + ".json")
        self.cuts = set()  # (a, b): a does not hear b
        self.loss = {}  # member -> percent
        self.slow = set()

    def _save(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, self.state_path)

    def _ns(self, i, *cmd, check=True):
        return _run(["ip", "netns", "exec", self.netns[i]] + list(cmd), check=check)

    def setup(self):
        route = "unreachable %s metric 4000" % self.subnet
        self.state["routes"].append(route)
        self._save()
        _run(["ip", "route", "add"] + route.split())
        self.state["links"].append(self.bridge)
        self._save()
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        _run(["ip", "addr", "add", "%s/%d" % (self.bridge_ip, self.subnet.prefixlen), "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for i in range(self.size):
            ns, veth, peer = self.netns[i], self.veths[i], "%s%sp%d" % (LINK_PREFIX, self.run_id, i)
            self.state["netns"].append(ns)
            self.state["links"].append(veth)
            self._save()
            _run(["ip", "netns", "add", ns])
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer])
            _run(["ip", "link", "set", peer, "netns", ns])
            _run(["ip", "link", "set", veth, "master", self.bridge])
            _run(["ip", "link", "set", veth, "up"])
            self._ns(i, "ip", "link", "set", "lo", "up")
            self._ns(i, "ip", "link", "set", peer, "name", "eth0")
            self._ns(i, "ip", "addr", "add", "%s/%d" % (self.member_ips[i], self.subnet.prefixlen),
                     "dev", "eth0")
            self._ns(i, "ip", "link", "set", "eth0", "up")
            self._apply_rules(i)
        self.log("chaos: network namespaces %s on %s (bridge %s at %s)" % (
            ", ".join(self.netns), self.subnet, self.bridge, self.bridge_ip))

    def teardown(self):
        _remove_resources(self.state)
        # Namespace deletion is asynchronous: wait (bounded) until our links are gone.
        deadline = time.monotonic() + 10
        for _ in range(100):
            out = _run(["ip", "-br", "link"], check=False).stdout
            if not any(l.split()[0].split("@")[0] in self.state["links"] for l in out.splitlines() if l.split()):
                break
            if time.monotonic() > deadline:
                self.log("chaos: links still present after teardown: %s" % out)
                break
            time.sleep(0.1)
        try:
            os.unlink(self.state_path)
        except OSError:
            pass

    def add_mount(self, path):
        self.state["mounts"].append(path)
        self._save()

    # -- addresses ----------------------------------------------------------

    def client_url(self, i):
        return "http://%s:%d" % (self.member_ips[i], CLIENT_PORT)

    def listen_peer_url(self, i):
        return "http://%s:%d" % (self.member_ips[i], PEER_PORT)

    def advertise_peer_url(self, i):
        return self.listen_peer_url(i)

    def client_target(self, i):
        return "%s:%d" % (self.member_ips[i], CLIENT_PORT)

    def wrap_command(self, i, cmd):
        return ["ip", "netns", "exec", self.netns[i]] + cmd

    # -- faults ---------------------------------------------------------------

    def _apply_rules(self, i):
        rules = ["table inet wchaos {",
                 " chain input { type filter hook input priority 0; policy accept;"]
        for (a, b) in sorted(self.cuts):
            if a == i:
                rules.append("  ip saddr %s drop" % self.member_ips[b])
        if self.loss.get(i):
            for j in range(self.size):
                if j != i:
                    rules.append("  ip saddr %s numgen random mod 100 < %d drop" % (
                        self.member_ips[j], self.loss[i]))
        rules.append(" }")
        rules.append(" chain output { type filter hook output priority 0; policy accept;")
        for (a, b) in sorted(self.cuts):
            if b == i:
                rules.append("  ip daddr %s drop" % self.member_ips[a])
        rules.append(" }")
        rules.append("}")
        script = "\n".join(rules) + "\n"
        # Replace the whole table atomically: delete (if any) and add in one transaction.
        p = subprocess.run(["ip", "netns", "exec", self.netns[i], "nft", "-f", "-"],
                           input="table inet wchaos\ndelete table inet wchaos\n" + script,
                           capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            raise RuntimeError("nft in %s: %s" % (self.netns[i], p.stderr.strip()))

    def set_cuts(self, cuts):
        """cuts: set of (a, b) pairs meaning member a does not hear member b."""
        old = self.cuts
        self.cuts = set(cuts)
        for i in range(self.size):
            if any(i in c for c in old | self.cuts):
                self._apply_rules(i)

    def set_loss(self, members, percent):
        for i in members:
            self.loss[i] = percent
            self._apply_rules(i)

    def set_slow(self, members, rate_kbit):
        for i in members:
            self._ns(i, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate",
                     "%dkbit" % rate_kbit, "burst", "16kbit", "latency", "800ms")
            self.slow.add(i)

    def heal(self):
        self.cuts = set()
        self.loss = {}
        for i in range(self.size):
            self._apply_rules(i)
        for i in sorted(self.slow):
            self._ns(i, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
        self.slow = set()

    supports = frozenset({"partition", "oneway", "loss", "slow"})


# ---------------------------------------------------------------------------
# The loopback fallback.


class _Proxy:
    """Forwards a listening port to a target port; can drop, lose or delay."""

    def __init__(self, listen_port, target_port):
        self.listen_port = listen_port
        self.target_port = target_port
        self.drop = False
        self.loss_percent = 0
        self.delay_s = 0.0
        self.rng = random.Random(listen_port)
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", listen_port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.drop:
                c.close()
                continue
            try:
                t = socket.create_connection(("127.0.0.1", self.target_port), timeout=1)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, t]
            threading.Thread(target=self._pump, args=(c, t), daemon=True).start()
            threading.Thread(target=self._pump, args=(t, c), daemon=True).start()

    def _pump(self, a, b):
        try:
            a.settimeout(0.5)
        except OSError:  # cut() closed it already
            return
        while not self.stopped:
            try:
                data = a.recv(65536)
            except socket.timeout:
                if self.drop:
                    break
                continue
            except OSError:
                break
            if not data or self.drop:
                break
            if self.loss_percent and self.rng.randrange(100) < self.loss_percent:
                break  # TCP cannot lose bytes and go on: lose the connection
            if self.delay_s:
                time.sleep(self.delay_s)
            try:
                b.sendall(data)
            except OSError:
                break
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass

    def cut(self):
        self.drop = True
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self):
        self.stopped = True
        self.cut()
        self.sock.close()


class LoopbackNetwork:
    mode = "loopback"

    def __init__(self, size, run_id, free_port, log=print):
        self.size = size
        self.run_id = run_id
        self.log = log
        self.client_ports = [free_port() for _ in range(size)]
        self.peer_ports = [free_port() for _ in range(size)]
        self.proxy_ports = [free_port() for _ in range(size)]
        self.proxies = []
        self.isolated = set()

    def setup(self):
        self.proxies = [_Proxy(self.proxy_ports[i], self.peer_ports[i]) for i in range(self.size)]
        self.log("chaos: loopback network with peer proxies on ports %s" % self.proxy_ports)

    def teardown(self):
        for p in self.proxies:
            p.close()

    def add_mount(self, path):
        pass

    def client_url(self, i):
        return "http://127.0.0.1:%d" % self.client_ports[i]

    def listen_peer_url(self, i):
        return "http://127.0.0.1:%d" % self.peer_ports[i]

    def advertise_peer_url(self, i):
        return "http://127.0.0.1:%d" % self.proxy_ports[i]

    def client_target(self, i):
        return "127.0.0.1:%d" % self.client_ports[i]

    def wrap_command(self, i, cmd):
        return cmd

    def set_cuts(self, cuts):
        """Only whole-member inbound cuts: member a hears nobody if (a, *) is cut."""
        deaf = {a for (a, _) in cuts}
        for i, p in enumerate(self.proxies):
            if i in deaf:
                p.cut()
            else:
                p.drop = False

    def set_loss(self, members, percent):
        for i in members:
            self.proxies[i].loss_percent = percent

    def set_slow(self, members, rate_kbit):
        for i in members:
            self.proxies[i].delay_s = 0.05

    def heal(self):
        for p in self.proxies:
            p.drop = False
            p.loss_percent = 0
            p.delay_s = 0.0

    supports = frozenset({"partition", "loss", "slow"})

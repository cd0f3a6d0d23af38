"""Nemeses: faults on a seeded schedule, each with its heal.

make_schedule(name, seed, seconds, size) returns the plan: a list of
{"at": s, "fault": kind, "variant": v, "hold": s, "pick": int} drawn from
the seed alone. Who is hit (the leader, a follower...) is decided when the
step runs, from the cluster as it is then; `pick` makes that choice
repeatable. Nemesis.run() executes the plan and appends every action to
nemesis.jsonl with its time since the start of the run.

Names (NEMESES): kill, pause, partition, net, clock, disk, power, zombie,
mixed (kill, pause, partition and net interleaved), none.
"""

import json
import os
import random
import threading
import time

FAULT_VARIANTS = {
    "kill": ["leader", "follower", "random", "majority"],
    "pause": ["leader", "follower", "random"],
    "partition": ["leader-isolated", "majority-minority", "oneway", "bridge", "ring"],
    "net": ["loss", "slow"],
    "clock": ["jump-forward", "jump-back"],
    "disk": ["full", "slow"],
    "power": ["all"],
    "zombie": ["leader"],
}
NEMESES = sorted(FAULT_VARIANTS) + ["mixed", "none"]
MIXED = ["kill", "pause", "partition", "net"]


def make_schedule(name, seed, seconds, size, warmup=2.0):
    rng = random.Random("%s/%d" % (name, seed))
    plan = []
    t = warmup
    for _ in range(10_000):
        if name == "none":
            break
        kind = rng.choice(MIXED) if name == "mixed" else name
        hold = {"power": rng.uniform(0.5, 1.5), "zombie": rng.uniform(3.5, 5.0),
                "clock": rng.uniform(3, 6), "disk": rng.uniform(4, 8)}.get(kind, rng.uniform(2, 6))
        if t + hold + 1 > seconds:
            break
        plan.append({"at": round(t, 3), "fault": kind, "variant": rng.choice(FAULT_VARIANTS[kind]),
                     "hold": round(hold, 3), "pick": rng.getrandbits(31),
                     "amount": rng.randint(1, 1000)})
        # Power loss right after acknowledged writes: a short quiet time.
        gap = rng.uniform(1.5, 3.0) if kind == "power" else rng.uniform(1.0, 3.0)
        t += hold + gap
    return plan


class Nemesis:
    def __init__(self, cluster, network, plan, run_dir, t0, log=print):
        self.c = cluster
        self.net = network
        self.plan = plan
        self.t0 = t0
        self.log = log
        self.path = os.path.join(run_dir, "nemesis.jsonl")
        self.stop_event = threading.Event()
        self.injected = 0
        self.skipped = 0
        self.thread = None
        self.lock = threading.Lock()
        self.acked = None  # workload's last_ack_time, when it has one
        self.last_heal = time.monotonic()

    def record(self, action, step, **kw):
        rec = {"t": round(time.monotonic() - self.t0, 3), "action": action,
               "fault": step["fault"], "variant": step["variant"]}
        rec.update(kw)
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    # -- choosing members -------------------------------------------------------

    def _choose(self, variant, rng):
        n = self.c.size
        leader = self.c.leader_index(timeout=3)
        everyone = list(range(n))
        if variant == "leader":
            return [leader] if leader is not None else None
        if variant == "follower":
            others = [i for i in everyone if i != leader]
            return [rng.choice(others)]
        if variant == "majority":
            first = [leader] if leader is not None else []
            rest = [i for i in everyone if i not in first]
            rng.shuffle(rest)
            return (first + rest)[: n // 2 + 1]
        return [rng.randrange(n)]

    def _cuts(self, variant, rng):
        """(a, b) pairs, a does not hear b, and a description."""
        n = self.c.size
        leader = self.c.leader_index(timeout=3)
        if leader is None:
            leader = rng.randrange(n)
        others = [i for i in range(n) if i != leader]
        both = lambda g1, g2: {(a, b) for a in g1 for b in g2} | {(b, a) for a in g1 for b in g2}
        if variant == "leader-isolated":
            return both([leader], others), "isolate %d" % leader
        if variant == "majority-minority":
            order = list(range(n))
            rng.shuffle(order)
            minority, majority = order[: n // 2], order[n // 2:]
            return both(minority, majority), "minority %s | majority %s" % (minority, majority)
        if variant == "oneway":
            if rng.random() < 0.5:
                # The followers stop hearing the leader; it still hears them.
                return {(f, leader) for f in others}, "followers deaf to leader %d" % leader
            a, b = rng.sample(range(n), 2)
            return {(a, b)}, "%d deaf to %d" % (a, b)
        if variant == "bridge":
            order = list(range(n))
            rng.shuffle(order)
            bridge, rest = order[0], order[1:]
            half = len(rest) // 2
            return both(rest[:half], rest[half:]), "bridge %d between %s and %s" % (
                bridge, rest[:half], rest[half:])
        if variant == "ring":
            order = list(range(n))
            rng.shuffle(order)
            pos = {m: k for k, m in enumerate(order)}
            if n <= 3:  # one-way ring: each hears only its predecessor
                cuts = {(a, b) for a in range(n) for b in range(n)
                        if a != b and pos[b] != (pos[a] - 1) % n}
                return cuts, "one-way ring %s" % order
            cuts = {(a, b) for a in range(n) for b in range(n)
                    if a != b and (pos[a] - pos[b]) % n not in (1, n - 1)}
            return cuts, "ring %s" % order
        raise ValueError(variant)

    # -- one step -----------------------------------------------------------------

    def _start(self, step, rng):
        """Injects the fault; returns a heal function, or None if skipped."""
        c, kind, variant = self.c, step["fault"], step["variant"]
        if kind == "kill":
            targets = self._choose(variant, rng)
            if not targets:
                return None
            c.kill(targets)
            self.record("start", step, targets=targets)
            return lambda: c.restart(targets)
        if kind == "power":
            # Power fails right after acknowledged writes: wait (bounded) for
            # a write acknowledged since the last heal, so that the cluster
            # has recovered and has something unsynced to lose.
            for _ in range(200):
                ack = self.acked() if self.acked else 0.0
                if ack > self.last_heal + 0.2 or self.stop_event.wait(0.05):
                    break
            targets = list(range(c.size))
            c.kill(targets)
            self.record("start", step, targets=targets)
            return lambda: c.restart(targets)
        if kind == "pause":
            targets = self._choose(variant, rng)
            if not targets:
                return None
            c.pause(targets)
            self.record("start", step, targets=targets)
            return lambda: c.resume(targets)
        if kind == "partition":
            if variant not in self.net.supports and "partition" not in self.net.supports:
                return None
            cuts, what = self._cuts(variant, rng)
            self.net.set_cuts(cuts)
            self.record("start", step, detail=what, cuts=sorted(cuts))
            return lambda: self.net.set_cuts(set())
        if kind == "net":
            targets = list(range(c.size)) if rng.random() < 0.5 else [rng.randrange(c.size)]
            if variant == "loss":
                pct = 10 + step["amount"] % 31
                self.net.set_loss(targets, pct)
                self.record("start", step, targets=targets, detail="loss %d%%" % pct)
            else:
                rate = 64 + step["amount"] % 193
                self.net.set_slow(targets, rate)
                self.record("start", step, targets=targets, detail="rate %dkbit" % rate)
            return self.net.heal
        if kind == "clock":
            if not c.faketime:
                return None
            target = rng.randrange(c.size)
            secs = 2 + step["amount"] % 19
            offset = secs if variant == "jump-forward" else -secs
            c.set_clock_offset(target, offset)
            self.record("start", step, targets=[target], detail="clock %+ds" % offset)
            return lambda: c.set_clock_offset(target, 0)
        if kind == "disk" and variant == "slow":
            if not c.slow_fsync:
                return None
            leader = c.leader_index(timeout=3)
            target = leader if leader is not None and rng.random() < 0.5 else rng.randrange(c.size)
            ms = 100 + step["amount"] % 700
            c.set_fsync_delay(target, ms)
            self.record("start", step, targets=[target], detail="fsync +%d ms" % ms)
            return lambda: c.set_fsync_delay(target, 0)
        if kind == "disk":
            if not c.tmpfs:
                return None
            target = rng.randrange(c.size)
            filled = c.fill_disk(target)
            self.record("start", step, targets=[target], detail="filled %d bytes" % filled)
            return lambda: {"detail": c.free_disk(target)}
        if kind == "zombie":
            leader = c.leader_index(timeout=3)
            if leader is None:
                return None
            others = [i for i in range(c.size) if i != leader]
            c.pause([leader])
            cuts = {(leader, o) for o in others} | {(o, leader) for o in others}
            self.net.set_cuts(cuts)
            self.record("start", step, targets=[leader], detail="paused and isolated")
            # Most of the hold: the others elect and write. Then the old leader
            # runs again, still isolated, for a while: a zombie.
            self.stop_event.wait(step["hold"] * 0.7)
            c.resume([leader])
            self.record("resume-isolated", step, targets=[leader])

            def heal():
                self.net.set_cuts(set())
            return heal
        raise ValueError(kind)

    def _run(self):
        for step in self.plan:
            delay = self.t0 + step["at"] - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                return
            if self.stop_event.is_set():
                return
            rng = random.Random(step["pick"])
            try:
                heal = self._start(step, rng)
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                self.record("error", step, detail="%s: %s" % (type(e).__name__, e))
                heal = None
            if heal is None:
                self.skipped += 1
                self.record("skipped", step)
                continue
            self.injected += 1
            hold = step["hold"] * (0.3 if step["fault"] == "zombie" else 1.0)
            self.stop_event.wait(hold)
            try:
                extra = heal()
                self.last_heal = time.monotonic()
                self.record("heal", step, **(extra if isinstance(extra, dict) else {}))
            except Exception as e:  # noqa: BLE001
                self.record("error", step, detail="heal: %s: %s" % (type(e).__name__, e))

    def start(self):
        self.thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout=60)

"""Presence at scale: what the node holding ``{presence}`` carries at N online.

``python -m benchmarks.presence_scale {cost,heartbeats,fanout,online,model,all}``
(docs/ARCHITECTURE.md, "Presence at scale", has the numbers and what they mean).

Every measurement starts a valkey-server of its own (the bundled binary, on a
free loopback port, with chatbus's persistence settings; with ``--cluster``
a local 3-master, 3-replica cluster and the master of ``{presence}``), fills
it with N online names through ``presence.lua`` itself, and stops it by PID.

* ``cost``: server CPU per ``presence.lua`` call at N online: a heartbeat (a
  ``join`` that renews a lease of a name already online), a ``join`` that
  brings a name online and a ``leave`` that takes it offline (each with an
  event), a call that reaps 100 expired leases, and a ``snapshot``.
  ``INFO commandstats`` gives the time inside the script; the ``used_cpu``
  delta over the pipelined calls, the whole process's cost.
* ``heartbeats``: N online clients heartbeating every TTL/3 as real clients
  do, one call per write, on a few thousand connections from a few
  processes; the rate achieved, the node's CPU, the round trip, and whether
  a lease lapsed (a ``leave`` event nobody asked for).
* ``fanout``: S connections SSUBSCRIBEd to the users channel (raw sockets,
  a few processes), and events at paced rates from ``join``/``leave`` calls
  sent open loop, as independent clients send them; deliveries per second,
  the node's CPU per delivery, the calls' round trip, bytes per event.
* ``online``: all of it at once: N online, each heartbeating and subscribed,
  and 1% of them (``--churn``) coming or going each minute.
* ``model``: from a saved ``all``, the node's load at N online: heartbeats
  (N / (TTL/3) calls/s), fan-out (churn x N deliveries/s: O(N²)), snapshots
  (one per arriving client, O(N) each), and the N at which each fills a core,
  for one slot, K buckets, batched events and contacts-only presence.
* ``all``: cost, heartbeats, fanout and online, then the model; ``--json``.

Load generators share the machine with the server: check ``uptime`` first,
and read the node's own CPU (reported), not the wall clock.
"""

import argparse
import json
import multiprocessing
import os
import random
import resource
import select
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from types import FrameType
from typing import Any

import redis

from chatbus import lua
from chatbus.keys import Keys
from chatbus.local_cluster import LocalCluster, free_base_port
from chatbus.presence import presence_call
from chatbus.server import HubProcess, find_server

from .core import free_port, summarize

NAMESPACE = "scale"
DEFAULT_TTL_MS = 10_000  # chatbus's default lease
FILL_BATCH = 1000
# One core's worth of server CPU, in µs per second.
CORE_US = 1_000_000
# Churn: the share of online users who come or go per minute (each is one
# join and, later, one leave: two events).
DEFAULT_CHURN_PER_MINUTE = 0.01

_PRESENCE = lua.load("presence.lua")
_KEYS = Keys(NAMESPACE)


def user_name(index: int) -> str:
    return f"user{index:06d}"


def lease_id(index: int) -> str:
    return f"{index:016x}"


def presence_args(operation: str, *args: str | int) -> list[str | int]:
    """The EVALSHA arguments of one presence.lua call, as chatbus sends it."""
    command = presence_call(_KEYS, operation, *args).command()
    return [a if isinstance(a, (str, int)) else str(a) for a in command]


def command(target: "redis.Redis | redis.client.Pipeline", args: Sequence[str | int]) -> Any:
    """``execute_command`` (untyped in redis-py) of one call's arguments."""
    return target.execute_command(*args)  # type: ignore[no-untyped-call]


def resp(args: Sequence[str | int]) -> bytes:
    """One command in RESP, the bytes a client writes."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


# -- a hub of our own -----------------------------------------------------------


@dataclass
class OwnHub:
    """The node that holds ``{presence}``: a hub of our own, or that slot's master."""

    port: int
    client: redis.Redis
    description: str

    def cpu_split(self) -> tuple[float, float]:
        """The server process's CPU seconds so far: (user, system)."""
        cpu: dict[str, Any] = self.client.info("cpu")
        return float(cpu["used_cpu_user"]), float(cpu["used_cpu_sys"])

    def cpu_seconds(self) -> float:
        return sum(self.cpu_split())

    def evalsha_stats(self) -> tuple[int, float]:
        """(calls, µs inside them) of EVALSHA since the last CONFIG RESETSTAT."""
        stats: dict[str, Any] = self.client.info("commandstats")
        entry = stats.get("cmdstat_evalsha", {"calls": 0, "usec": 0})
        return int(entry["calls"]), float(entry["usec"])


@contextmanager
def own_hub(maxclients: int = 1000, *, cluster: bool = False) -> Iterator[OwnHub]:
    """A valkey-server for this measurement only, stopped (by its PID) on the way out.

    With ``cluster``: a local cluster of 3 masters with a replica each, and the
    master of ``{presence}``'s slot (which also feeds its replica).
    """
    binary = find_server("valkey")
    with tempfile.TemporaryDirectory(prefix="chatbus-presence-scale-") as work:
        stop: Callable[[], object]
        if cluster:
            nodes = LocalCluster(binary, free_base_port(6), Path(work), masters=3, replicas=1)
            stop = nodes.stop
            try:
                nodes.start(timeout=90)
            except BaseException:
                nodes.stop()
                raise
            port = nodes.master_for(_KEYS.online).port
            description = f"the {{presence}} master of a 3+3 cluster (port {port})"
        else:
            port = free_port()
            process = HubProcess(binary, port, Path(work) / "hub")
            stop = process.stop
            process.start()
            description = f"a single hub (port {port})"
        client = redis.Redis(port=port, socket_timeout=120)
        try:
            client.config_set("maxclients", maxclients)
            client.script_load(_PRESENCE.source)
            yield OwnHub(port, client, description)
        finally:
            client.close()
            stop()


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else wanted
    if soft < min(wanted, target):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, target), hard))


def machine_load() -> dict[str, Any]:
    """The machine's load average and CPU count, noted with every measurement."""
    one, five, fifteen = os.getloadavg()
    return {"loadavg": [one, five, fifteen], "cpus": os.cpu_count()}


def machine_cpu() -> tuple[float, float]:
    """The whole machine's CPU seconds so far: (busy, of which softirq), from /proc/stat.

    On loopback, part of the kernel's work for the hub's writes may run in
    ksoftirqd, which the hub's own ``used_cpu`` does not count.
    """
    fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]
    ticks = [int(f) for f in fields]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle, iowait
    busy = sum(ticks[:8]) - idle  # up to steal; guest time is already in user
    return busy / hz, ticks[6] / hz


def fill(hub: OwnHub, count: int, ttl_ms: int, start: int = 0) -> None:
    """Bring names ``start`` .. ``start+count-1`` online, one lease each."""
    for first in range(start, start + count, FILL_BATCH):
        pipe = hub.client.pipeline(transaction=False)
        for i in range(first, min(first + FILL_BATCH, start + count)):
            command(pipe, presence_args("join", user_name(i), lease_id(i), ttl_ms))
        pipe.execute()


def online_count(hub: OwnHub) -> int:
    return int(hub.client.zcard(_KEYS.online))


def presence_seq(hub: OwnHub) -> int:
    return int(hub.client.get(_KEYS.presence_seq) or 0)


# -- cost: server CPU per call at N online ---------------------------------------------


@dataclass
class CallCost:
    """One kind of call: µs inside the script (commandstats) and whole-process CPU."""

    calls: int
    script_us: float
    process_us: float


@dataclass
class CostResult:
    online: int
    heartbeat: CallCost
    join: CallCost
    leave: CallCost
    reap100: CallCost
    snapshot: CallCost
    snapshot_reply_bytes: int
    memory_bytes_per_name: float
    load: dict[str, Any] = field(default_factory=dict)


def _measured(hub: OwnHub, batches: Sequence[Sequence[list[str | int]]]) -> CallCost:
    """Run each batch as one pipeline; the EVALSHA time and the process's CPU per call."""
    calls, script_us, process_s = 0, 0.0, 0.0
    for batch in batches:
        hub.client.config_resetstat()
        pipe = hub.client.pipeline(transaction=False)
        for args in batch:
            command(pipe, args)
        before = hub.cpu_seconds()
        pipe.execute()
        process_s += hub.cpu_seconds() - before
        done, usec = hub.evalsha_stats()
        calls += done
        script_us += usec
    return CallCost(calls, script_us / calls, process_s * 1e6 / calls)


def _chunks(items: list[list[str | int]], size: int) -> list[list[list[str | int]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def measure_cost(online: int, calls: int, batch: int = 1000) -> CostResult:
    """Each kind of presence call at ``online`` names online (leases that do not expire)."""
    long_ttl = 3_600_000
    with own_hub() as hub:
        base_memory = int(hub.client.info("memory")["used_memory"])
        fill(hub, online, long_ttl)
        memory = (int(hub.client.info("memory")["used_memory"]) - base_memory) / online
        load = machine_load()
        rng = random.Random(1)
        beats = [rng.randrange(online) for _ in range(calls)]
        heartbeat = _measured(
            hub,
            _chunks(
                [presence_args("join", user_name(i), lease_id(i), long_ttl) for i in beats],
                batch,
            ),
        )
        # Names that change membership: `batch` join, then the same leave, in rounds.
        joined, left = CallCost(0, 0, 0), CallCost(0, 0, 0)
        for first in range(online, online + min(calls, 10 * batch), batch):
            ids = range(first, first + batch)
            joins = [presence_args("join", user_name(i), lease_id(i), long_ttl) for i in ids]
            leaves = [presence_args("leave", user_name(i), lease_id(i), long_ttl) for i in ids]
            joined = _add(joined, _measured(hub, [joins]))
            left = _add(left, _measured(hub, [leaves]))
        reaped = _measure_reap(hub, online, long_ttl)
        snapshots = _measured(hub, [[presence_args("snapshot")] for _ in range(5)])
        reply = command(hub.client, presence_args("snapshot"))
        reply_bytes = len(resp([str(reply[0]), *[n.decode() for n in reply[1]]]))
        assert online_count(hub) == online, "the measurement changed who is online"
    return CostResult(online, heartbeat, joined, left, reaped, snapshots, reply_bytes, memory, load)


def _add(total: CallCost, part: CallCost) -> CallCost:
    calls = total.calls + part.calls
    return CallCost(
        calls,
        (total.script_us * total.calls + part.script_us * part.calls) / calls,
        (total.process_us * total.calls + part.process_us * part.calls) / calls,
    )


def _measure_reap(hub: OwnHub, online: int, long_ttl: int) -> CallCost:
    """Calls that each reap 100 expired leases (crashed clients: 100 leave events each)."""
    crashed = 10 * 100
    first = online + 100_000
    fill(hub, crashed, 500, start=first)  # leases of 0.5 s, then no heartbeat
    time.sleep(0.6)
    beats = [presence_args("join", user_name(i), lease_id(i), long_ttl) for i in range(10)]
    cost = _measured(hub, [beats])
    assert online_count(hub) == online, "not every expired lease was reaped"
    return cost


# -- heartbeats: N clients renewing their leases, as they do ----------------------------


@dataclass
class HeartbeatResult:
    node: str
    online: int
    lease_ttl_ms: int
    target_rate: float
    achieved_rate: float
    server_cores: float
    server_us_per_call: float
    script_us_per_call: float
    generator_cores: float
    machine_cores: float
    softirq_cores: float
    round_trip_us: dict[str, float]
    leave_events: int
    errors: int
    connections: int
    load_before: dict[str, Any]
    load_during: dict[str, Any]


@dataclass(frozen=True)
class HeartbeatJob:
    """One generator process's share: its names, connections and time window."""

    port: int
    names: list[int]
    connections: int
    ttl_ms: int
    start_at: float  # time.time() of the first heartbeat
    stop_at: float


class _Connections:
    """Raw connections to the hub that write pre-encoded calls and count the replies.

    No client library: the generator's CPU goes to the syscalls, so a few
    processes can keep tens of thousands of calls per second going. Each reply
    to a presence call is one line (``:0``/``:1``, or an error).
    """

    def __init__(self, port: int, count: int, sample_every: int = 1) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        self.poller = select.epoll()
        for sock in self.socks:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.poller.register(sock.fileno(), select.EPOLLIN)
        self.by_fd = {sock.fileno(): n for n, sock in enumerate(self.socks)}
        self.pending = [bytearray() for _ in self.socks]
        self.sent_at: list[deque[int]] = [deque() for _ in self.socks]
        self.dirty: set[int] = set()  # connections with something left to write
        self.carry = [b"" for _ in self.socks]  # a reply's "\r" whose "\n" is still to come
        self.sample_every = sample_every
        self.sent = self.replies = self.errors = 0
        self.samples: list[float] = []  # round trips, µs

    def queue(self, conn: int, call: bytes, stamp: int) -> None:
        self.pending[conn] += call
        self.sent_at[conn].append(stamp)
        self.dirty.add(conn)
        self.sent += 1

    def write(self) -> None:
        for conn in self.dirty:
            try:
                written = self.socks[conn].send(self.pending[conn])
            except BlockingIOError:
                written = 0
            del self.pending[conn][:written]
        self.dirty = {conn for conn in self.dirty if self.pending[conn]}

    def read(self, timeout: float) -> None:
        for fd, _ in self.poller.poll(timeout):
            conn = self.by_fd[fd]
            try:
                data = self.socks[conn].recv(1 << 16)
            except BlockingIOError:
                continue
            if not data:  # the hub closed it: count it as an error, read it no more
                self.poller.unregister(fd)
                self.errors += 1
                continue
            self.errors += data.count(b"-")
            arrived = time.perf_counter_ns()
            data = self.carry[conn] + data
            self.carry[conn] = b"\r" if data.endswith(b"\r") else b""
            for _ in range(data.count(b"\r\n")):
                began = self.sent_at[conn].popleft()
                self.replies += 1
                if self.replies % self.sample_every == 0:
                    self.samples.append((arrived - began) / 1000)

    def close(self) -> None:
        self.poller.close()
        for sock in self.socks:
            sock.close()


class _Beater:
    """Heartbeats of ``job.names`` every TTL/3 in order, each call one write on its connection."""

    def __init__(self, job: HeartbeatJob) -> None:
        self.job = job
        self.commands = [
            resp(presence_args("join", user_name(i), lease_id(i), job.ttl_ms)) for i in job.names
        ]
        self.conns = _Connections(job.port, job.connections, sample_every=16)

    def run(self) -> dict[str, Any]:
        period = self.job.ttl_ms / 3000
        names = len(self.commands)
        conns = self.conns
        count = len(conns.socks)
        cpu_before = _cpu_seconds()
        time.sleep(max(0.0, self.job.start_at - time.time()))
        began = time.monotonic()
        stop = began + (self.job.stop_at - self.job.start_at)
        while (now := time.monotonic()) < stop:
            due = int((now - began) / period * names)
            stamp = time.perf_counter_ns()
            while conns.sent < due:
                n = conns.sent % names
                conns.queue(n % count, self.commands[n], stamp)
            conns.write()
            conns.read(0.002)
        elapsed = time.monotonic() - began
        conns.close()
        return {
            "sent": conns.sent,
            "replies": conns.replies,
            "errors": conns.errors,
            "seconds": elapsed,
            "cpu_s": _cpu_seconds() - cpu_before,
            "round_trip_us": conns.samples,
        }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def heartbeat_worker(job: HeartbeatJob, out: "multiprocessing.Queue[dict[str, Any]]") -> None:
    """A generator process: run ``job`` and put its report on ``out``."""
    raise_fd_limit(job.connections + 100)
    out.put(_Beater(job).run())


def _stop_processes(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """Join our worker processes; terminate (by their own handle) any that hang."""
    for process in processes:
        process.join(30)
        if process.is_alive():
            process.terminate()
            process.join(5)


@dataclass
class Heartbeaters:
    """Generator processes started by :func:`heartbeating`; ``reports()`` once they are done."""

    workers: Sequence[multiprocessing.process.BaseProcess]
    out: "multiprocessing.Queue[dict[str, Any]]"
    measure_from: float  # time.time() after one round of heartbeats
    stop_at: float
    connections: int

    def reports(self) -> list[dict[str, Any]]:
        return [self.out.get(timeout=120) for _ in self.workers]


@contextmanager
def heartbeating(
    hub: OwnHub, online: int, *, ttl_ms: int, seconds: float, processes: int, connections: int
) -> Iterator[Heartbeaters]:
    """Names 0..online-1 heartbeating every TTL/3 for one round, then ``seconds`` more.

    Their leases were filled long enough to last until the first round is
    done; from then on each lives ``ttl_ms`` and must be renewed in time.
    """
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    start_at = time.time() + 2.0
    measure_from = start_at + ttl_ms / 3000
    stop_at = measure_from + seconds
    per = max(1, connections // processes)
    workers = [
        context.Process(
            target=heartbeat_worker,
            args=(
                HeartbeatJob(
                    hub.port, list(range(p, online, processes)), per, ttl_ms, start_at, stop_at
                ),
                out,
            ),
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        yield Heartbeaters(workers, out, measure_from, stop_at, per * processes)
    finally:
        _stop_processes(workers)


def lapsed_leases(hub: OwnHub, seq_before: int, other_events: int = 0) -> int:
    """Leave events since ``seq_before`` that were not ours: leases that lapsed and were reaped."""
    time.sleep(0.1)
    command(hub.client, presence_args("snapshot"))  # reaps what has expired
    return presence_seq(hub) - seq_before - other_events


def simulate_heartbeats(
    online: int,
    *,
    ttl_ms: int = DEFAULT_TTL_MS,
    duration: float = 30.0,
    processes: int = 2,
    connections: int = 2000,
    cluster: bool = False,
) -> HeartbeatResult:
    """N names online, heartbeating every TTL/3 from ``processes`` generators."""
    load_before = machine_load()
    with own_hub(maxclients=connections + 1000, cluster=cluster) as hub:
        node = hub.description
        fill(hub, online, 2 * ttl_ms + 10_000)
        seq_before = presence_seq(hub)
        with heartbeating(
            hub,
            online,
            ttl_ms=ttl_ms,
            seconds=duration,
            processes=processes,
            connections=connections,
        ) as beats:
            time.sleep(max(0.0, beats.measure_from - time.time()))
            hub.client.config_resetstat()
            cpu_before, wall_before = hub.cpu_seconds(), time.monotonic()
            busy_before, softirq_before = machine_cpu()
            time.sleep(max(0.0, beats.stop_at - 0.2 - time.time()))
            cpu = hub.cpu_seconds() - cpu_before
            busy_after, softirq_after = machine_cpu()
            wall = time.monotonic() - wall_before
            calls, script_us = hub.evalsha_stats()
            load_during = machine_load()
            reports = beats.reports()
        leave_events = lapsed_leases(hub, seq_before)
    samples = [us for report in reports for us in report["round_trip_us"]]
    return HeartbeatResult(
        node=node,
        online=online,
        lease_ttl_ms=ttl_ms,
        target_rate=online / (ttl_ms / 3000),
        achieved_rate=calls / wall,
        server_cores=cpu / wall,
        server_us_per_call=cpu * 1e6 / calls,
        script_us_per_call=script_us / calls,
        generator_cores=sum(r["cpu_s"] / r["seconds"] for r in reports),
        machine_cores=(busy_after - busy_before) / wall,
        softirq_cores=(softirq_after - softirq_before) / wall,
        round_trip_us=summarize(samples),
        leave_events=leave_events,
        errors=sum(r["errors"] for r in reports),
        connections=beats.connections,
        load_before=load_before,
        load_during=load_during,
    )


# -- fan-out: every event to every subscriber ------------------------------------------


@dataclass
class FanoutStep:
    events_per_s: float
    deliveries_per_s: float
    expected_per_s: float
    server_cores: float
    server_us_per_delivery: float
    server_us_per_event: float
    server_system_share: float  # of the node's CPU: the kernel, writing to sockets
    machine_cores: float  # every process on the machine, busy
    softirq_cores: float  # the kernel's network work, wherever it ran
    subscriber_cores: float
    publish_round_trip_us: dict[str, float]
    bytes_per_delivery: float
    network_out_mb_s: float
    load_during: dict[str, Any]


@dataclass
class FanoutResult:
    node: str
    subscribers: int
    online: int
    steps: list[FanoutStep]
    load_before: dict[str, Any]


_MARK = b"smessage"
# Connections the events come from (each name's join and leave on one of them).
PUBLISHER_CONNECTIONS = 64


@dataclass(frozen=True)
class SubscriberJob:
    port: int
    channel: str
    connections: int
    sweep: float  # seconds between two reads of every socket


@dataclass(frozen=True)
class SubscriberCounters:
    """What a subscriber process has received so far, shared with the parent."""

    delivered: "Synchronized[int]"
    received_bytes: "Synchronized[int]"
    cpu_ms: "Synchronized[int]"


def _subscribe_all(job: SubscriberJob) -> list[socket.socket]:
    subscribe = resp(["SSUBSCRIBE", job.channel])
    socks = []
    for _ in range(job.connections):
        sock = socket.create_connection(("127.0.0.1", job.port))
        sock.sendall(subscribe)
        socks.append(sock)
    for sock in socks:
        confirmation = b""
        while confirmation.count(b"\r\n") < 6:  # *3, $10, ssubscribe, $N, channel, :1
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the hub closed a subscriber's connection")
            confirmation += chunk
        sock.setblocking(False)
    return socks


def subscriber_worker(
    job: SubscriberJob,
    counters: SubscriberCounters,
    ready: "Synchronized[int]",
    stop: "Synchronized[int]",
) -> None:
    """``job.connections`` raw sockets SSUBSCRIBEd to the channel, drained every sweep.

    Reading in sweeps keeps the generator's CPU small (one recv per socket per
    sweep, whatever the event rate); what the node does per delivery is the same.
    """
    raise_fd_limit(job.connections + 100)
    socks = _subscribe_all(job)
    by_fd = {sock.fileno(): sock for sock in socks}
    tails = dict.fromkeys(by_fd, b"")
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    with ready.get_lock():
        ready.value += 1
    count = total = 0
    cpu_before = _cpu_seconds()
    while not stop.value:
        time.sleep(job.sweep)
        for fd, _ in poller.poll(0):
            sock = by_fd[fd]
            while True:
                try:
                    data = sock.recv(1 << 18)
                except BlockingIOError:
                    break
                if not data:
                    break
                total += len(data)
                # A mark split over two reads is counted once: keep a short tail.
                joined = tails[fd] + data
                count += joined.count(_MARK)
                tails[fd] = joined[-(len(_MARK) - 1) :]
        counters.delivered.value = count
        counters.received_bytes.value = total
        counters.cpu_ms.value = int(1000 * (_cpu_seconds() - cpu_before))
    for sock in socks:
        sock.close()


def _publish_paced(hub: OwnHub, rate: float, seconds: float, first_name: int) -> list[float]:
    """join/leave calls, one event each, paced at ``rate``/s, without waiting for replies.

    Open loop, as independent clients come and go: a call is sent when it is
    due whether or not the ones before it have been answered. A name's join
    and leave go on the same connection, so they reach the hub in order.
    """
    churn_names = 1000
    ids = range(first_name, first_name + churn_names)
    joins = [resp(presence_args("join", user_name(i), lease_id(i), 3_600_000)) for i in ids]
    leaves = [resp(presence_args("leave", user_name(i), lease_id(i), 3_600_000)) for i in ids]
    conns = _Connections(hub.port, PUBLISHER_CONNECTIONS)
    total = int(rate * seconds)
    began = time.monotonic()
    deadline = began + seconds + 60
    while conns.replies < total and time.monotonic() < deadline:
        now = time.monotonic()
        stamp = time.perf_counter_ns()
        while conns.sent < total and began + conns.sent / rate <= now:
            pair, phase = divmod(conns.sent, 2)
            name = pair % churn_names
            call = joins[name] if phase == 0 else leaves[name]
            conns.queue(name % PUBLISHER_CONNECTIONS, call, stamp)
        conns.write()
        conns.read(0.001)
    conns.close()
    if conns.errors or conns.replies < total:
        raise RuntimeError(f"{conns.errors} errors, {total - conns.replies} calls unanswered")
    return conns.samples


@contextmanager
def subscribed(
    hub: OwnHub, subscribers: int, *, processes: int, sweep: float
) -> Iterator[list[SubscriberCounters]]:
    """``subscribers`` connections SSUBSCRIBEd to the users channel, from ``processes``."""
    context = multiprocessing.get_context("spawn")
    ready = context.Value("q", 0)
    stop = context.Value("q", 0)
    job = SubscriberJob(hub.port, _KEYS.users_channel, subscribers // processes, sweep)
    counters = [
        SubscriberCounters(context.Value("q", 0), context.Value("q", 0), context.Value("q", 0))
        for _ in range(processes)
    ]
    workers = [
        context.Process(target=subscriber_worker, args=(job, c, ready, stop)) for c in counters
    ]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 120
        while ready.value < processes:
            if time.monotonic() > deadline or not all(w.is_alive() for w in workers):
                raise RuntimeError("the subscriber processes did not all subscribe")
            time.sleep(0.1)
        yield counters
    finally:
        stop.value = 1
        _stop_processes(workers)


def measure_fanout(
    subscribers: int,
    rates: Sequence[float],
    *,
    online: int = 10_000,
    seconds: float = 10.0,
    processes: int = 2,
    sweep: float = 0.1,
    cluster: bool = False,
) -> FanoutResult:
    """S subscribers of the users channel; events at each rate; the node's CPU per delivery."""
    load_before = machine_load()
    subscribers -= subscribers % processes
    with own_hub(maxclients=subscribers + 1000, cluster=cluster) as hub:
        node = hub.description
        fill(hub, online, 3_600_000)  # so the events carry realistic seq and counts
        steps = []
        with subscribed(hub, subscribers, processes=processes, sweep=sweep) as counters:
            for rate in rates:
                print(f"  {rate:g} events/s ...", file=sys.stderr)
                steps.append(
                    _fanout_step(
                        hub,
                        rate,
                        seconds,
                        subscribers=subscribers,
                        online=online,
                        counters=counters,
                        sweep=sweep,
                    )
                )
    return FanoutResult(node, subscribers, online, steps, load_before)


def _fanout_step(
    hub: OwnHub,
    rate: float,
    seconds: float,
    *,
    subscribers: int,
    online: int,
    counters: Sequence[SubscriberCounters],
    sweep: float,
) -> FanoutStep:
    def totals() -> tuple[int, int, int]:
        return (
            sum(int(c.delivered.value) for c in counters),
            sum(int(c.received_bytes.value) for c in counters),
            sum(int(c.cpu_ms.value) for c in counters),
        )

    time.sleep(3 * sweep)
    delivered_before, bytes_before, cpu_ms_before = totals()
    seq_before = presence_seq(hub)
    (user_before, system_before), wall_before = hub.cpu_split(), time.monotonic()
    busy_before, softirq_before = machine_cpu()
    round_trips = _publish_paced(hub, rate, seconds, online + 200_000)
    user_after, system_after = hub.cpu_split()
    busy_after, softirq_after = machine_cpu()
    cpu = user_after + system_after - user_before - system_before
    wall = time.monotonic() - wall_before
    load_during = machine_load()
    events = presence_seq(hub) - seq_before
    expected = events * subscribers
    # What the node has written arrives within a few sweeps; then it is counted.
    deadline = time.monotonic() + 10
    while totals()[0] - delivered_before < expected and time.monotonic() < deadline:
        time.sleep(sweep)
    delivered_after, bytes_after, cpu_ms_after = totals()
    delivered = delivered_after - delivered_before
    received = bytes_after - bytes_before
    return FanoutStep(
        events_per_s=events / wall,
        deliveries_per_s=delivered / wall,
        expected_per_s=expected / wall,
        server_cores=cpu / wall,
        server_us_per_delivery=cpu * 1e6 / max(1, delivered),
        server_us_per_event=cpu * 1e6 / max(1, events),
        server_system_share=(system_after - system_before) / cpu if cpu else 0.0,
        machine_cores=(busy_after - busy_before) / wall,
        softirq_cores=(softirq_after - softirq_before) / wall,
        subscriber_cores=(cpu_ms_after - cpu_ms_before) / 1000 / wall,
        publish_round_trip_us=summarize(round_trips),
        bytes_per_delivery=received / max(1, delivered),
        network_out_mb_s=received / wall / 1e6,
        load_during=load_during,
    )


# -- everything at once: N online, heartbeating, subscribed, coming and going -----------


@dataclass
class OnlineResult:
    node: str
    online: int
    subscribers: int
    churn_per_minute: float
    heartbeats_per_s: float
    heartbeat_round_trip_us: dict[str, float]
    lapsed_leases: int
    events: FanoutStep  # the node's CPU in it is for all of the work
    load_before: dict[str, Any]


def simulate_online(
    online: int,
    *,
    subscribers: int | None = None,
    churn_per_minute: float = DEFAULT_CHURN_PER_MINUTE,
    ttl_ms: int = DEFAULT_TTL_MS,
    seconds: float = 20.0,
    processes: int = 2,
    connections: int = 1000,
    sweep: float = 0.1,
    cluster: bool = False,
) -> OnlineResult:
    """N online clients as chatbus runs them: each heartbeats every TTL/3 and follows
    the users channel, and ``churn_per_minute`` of them come or go each minute."""
    load_before = machine_load()
    subscribers = online if subscribers is None else subscribers
    subscribers -= subscribers % processes
    rate = online * churn_per_minute / 60 * 2
    maxclients = subscribers + connections + PUBLISHER_CONNECTIONS + 500
    with own_hub(maxclients=maxclients, cluster=cluster) as hub:
        node = hub.description
        # Long enough to outlast the subscribing; then each lease lives ttl_ms.
        fill(hub, online, 120_000)
        seq_before = presence_seq(hub)
        with (
            subscribed(hub, subscribers, processes=processes, sweep=sweep) as counters,
            heartbeating(
                hub,
                online,
                ttl_ms=ttl_ms,
                seconds=seconds,
                processes=processes,
                connections=connections,
            ) as beats,
        ):
            time.sleep(max(0.0, beats.measure_from - time.time()))
            step = _fanout_step(
                hub,
                rate,
                seconds - 1,
                subscribers=subscribers,
                online=online,
                counters=counters,
                sweep=sweep,
            )
            reports = beats.reports()
        lapsed = lapsed_leases(hub, seq_before, int(rate * (seconds - 1)))
    return OnlineResult(
        node=node,
        online=online,
        subscribers=subscribers,
        churn_per_minute=churn_per_minute,
        heartbeats_per_s=sum(r["replies"] / r["seconds"] for r in reports),
        heartbeat_round_trip_us=summarize(
            us for report in reports for us in report["round_trip_us"]
        ),
        lapsed_leases=lapsed,
        events=step,
        load_before=load_before,
    )


# -- the model --------------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """Server µs per unit of work on the {presence} node, from the measurements."""

    heartbeat_us: float  # one heartbeat call, its read and its reply included
    event_call_us: float  # a join or leave call itself, without its deliveries
    delivery_us: float  # one event written to one subscriber (its own write)
    snapshot_us_per_name: float
    bytes_per_event: float
    ttl_ms: int = DEFAULT_TTL_MS
    churn_per_minute: float = DEFAULT_CHURN_PER_MINUTE


# How events reach the clients, in the model:
# "every-event": today, each join/leave is SPUBLISHed to every online client;
# "batched": one message per BATCH_SECONDS to every client, carrying the events since;
# "contacts": each client follows only its FOLLOWERS contacts' own channels.
DESIGNS = ("every-event", "batched", "contacts")
BATCH_SECONDS = 1.0
FOLLOWERS = 100


@dataclass(frozen=True)
class Load:
    online: int
    heartbeats_per_s: float
    heartbeat_cores: float
    events_per_s: float
    deliveries_per_s: float
    fanout_cores: float
    snapshot_cores: float
    total_cores: float
    sweep_ms: float  # one write to every subscriber of the node: the wait once fan-out is full
    network_out_mb_s: float
    storm_cpu_s: float  # every client takes a snapshot again (after a failover): CPU seconds


def load_at(online: int, costs: Costs, buckets: int = 1, design: str = "every-event") -> Load:
    """The busiest presence node's load at ``online`` names, with K buckets on K masters.

    Every online client heartbeats every TTL/3 and follows the users channel(s);
    ``churn_per_minute`` of them come or go each minute (a visit is a join and a
    leave: two events), and each one that comes takes a snapshot of everyone.
    """
    heartbeats = online / (costs.ttl_ms / 3000) / buckets
    events = online * costs.churn_per_minute / 60 * 2 / buckets
    if design == "every-event":
        # Every client subscribes to every bucket: each node writes to all of them.
        deliveries, subscribers, event_bytes = events * online, online, costs.bytes_per_event
    elif design == "batched":
        per_batch = max(1.0, events * BATCH_SECONDS)
        deliveries, subscribers = online / BATCH_SECONDS, online
        event_bytes = costs.bytes_per_event * per_batch
    else:  # contacts: each event goes to the user's followers, on the user's own node
        deliveries, subscribers, event_bytes = events * FOLLOWERS, 0, costs.bytes_per_event
    heartbeat_cores = heartbeats * costs.heartbeat_us / CORE_US
    fanout_cores = (events * costs.event_call_us + deliveries * costs.delivery_us) / CORE_US
    snapshot_names = online / buckets if design != "contacts" else FOLLOWERS / buckets
    snapshot_cores = (
        online * costs.churn_per_minute / 60 * snapshot_names * costs.snapshot_us_per_name
    ) / CORE_US
    return Load(
        online=online,
        heartbeats_per_s=heartbeats,
        heartbeat_cores=heartbeat_cores,
        events_per_s=events,
        deliveries_per_s=deliveries,
        fanout_cores=fanout_cores,
        snapshot_cores=snapshot_cores,
        total_cores=heartbeat_cores + fanout_cores + snapshot_cores,
        sweep_ms=subscribers * costs.delivery_us / 1000,
        network_out_mb_s=deliveries * event_bytes / 1e6,
        storm_cpu_s=online * snapshot_names * costs.snapshot_us_per_name / CORE_US,
    )


def online_limit(
    costs: Costs, *, cores: float = 1.0, buckets: int = 1, design: str = "every-event"
) -> dict[str, int]:
    """The N at which each kind of work alone (and all of it together) fills ``cores``."""

    def solve(part: Callable[[Load], float]) -> int:
        low, high = 1, 100_000_000
        while high - low > 1:
            middle = (low + high) // 2
            if part(load_at(middle, costs, buckets, design)) > cores:
                high = middle
            else:
                low = middle
        return low

    return {
        "heartbeats": solve(lambda x: x.heartbeat_cores),
        "fan-out": solve(lambda x: x.fanout_cores),
        "snapshots": solve(lambda x: x.snapshot_cores),
        "all": solve(lambda x: x.total_cores),
    }


def costs_from(results: dict[str, Any], churn_per_minute: float) -> Costs:
    """The model's costs from the measurements.

    Heartbeat: the simulation's node CPU per call (its reads and replies
    included). Delivery: the fan-out step with the fewest events per second,
    where each event is its own write to each subscriber; with more events the
    node writes several at once (cheaper per event, but only because every
    command then waits a whole sweep). Snapshot: at the largest N.
    """
    cost = max(results["cost"], key=lambda c: c["online"])
    beats = results.get("heartbeats")
    heartbeat_us = beats["server_us_per_call"] if beats else cost["heartbeat"]["process_us"]
    event_us = (cost["join"]["process_us"] + cost["leave"]["process_us"]) / 2
    steps = results["fanout"]["steps"]
    sparse = min(steps, key=lambda s: s["events_per_s"])
    delivery_us = (sparse["server_cores"] * CORE_US - sparse["events_per_s"] * event_us) / sparse[
        "deliveries_per_s"
    ]
    return Costs(
        heartbeat_us=heartbeat_us,
        event_call_us=event_us,
        delivery_us=delivery_us,
        snapshot_us_per_name=cost["snapshot"]["process_us"] / cost["online"],
        bytes_per_event=sum(s["bytes_per_delivery"] for s in steps) / len(steps),
        churn_per_minute=churn_per_minute,
    )


# -- printing ---------------------------------------------------------------------------


def print_cost(results: Sequence[CostResult]) -> None:
    print("\nserver µs per presence.lua call (script = commandstats; process = used_cpu)")
    header = f"{'online':>8} " + " ".join(
        f"{kind:>16}" for kind in ("heartbeat", "join (new)", "leave", "reap 100", "snapshot")
    )
    print(header + f" {'B/name':>7}")
    for r in results:
        cells = [r.heartbeat, r.join, r.leave, r.reap100, r.snapshot]
        print(
            f"{r.online:>8,} "
            + " ".join(f"{c.script_us:>7.1f} / {c.process_us:>6.1f}" for c in cells)
            + f" {r.memory_bytes_per_name:>7.0f}"
        )
    for r in results:
        print(
            f"  snapshot at {r.online:,}: {r.snapshot_reply_bytes:,} B reply, "
            f"{r.snapshot.process_us / r.online * 1000:.0f} ns per name; load {r.load['loadavg']}"
        )


def print_heartbeats(result: HeartbeatResult) -> None:
    r = result
    print(
        f"\nheartbeats: {r.online:,} online, lease {r.lease_ttl_ms} ms, {r.connections} conns"
        f" on {r.node}\n"
        f"  rate {r.achieved_rate:,.0f}/s (target {r.target_rate:,.0f}/s); node CPU "
        f"{100 * r.server_cores:.1f}% of a core = {r.server_us_per_call:.1f} µs per call "
        f"(script {r.script_us_per_call:.1f} µs)\n"
        f"  round trip p50 {r.round_trip_us['p50']:.0f} µs, p99 {r.round_trip_us['p99']:.0f} µs;"
        f" generators {100 * r.generator_cores:.0f}% CPU; machine {100 * r.machine_cores:.0f}%"
        f" (softirq {100 * r.softirq_cores:.0f}%)\n  leases lapsed (leave events) "
        f"{r.leave_events}; errors {r.errors}\n"
        f"  load before {r.load_before['loadavg']}, during {r.load_during['loadavg']}"
    )


def print_fanout(result: FanoutResult) -> None:
    print(
        f"\nfan-out: {result.subscribers:,} subscribers, events by join/leave calls "
        f"at {result.online:,} online, on {result.node}"
    )
    print(
        f"{'events/s':>9} {'deliveries/s':>13} {'expected/s':>11} {'node CPU':>9} "
        f"{'µs/delivery':>12} {'kernel':>7} {'µs/event':>9} {'B/delivery':>11} {'MB/s out':>9} "
        f"{'call p50/p99 ms':>16} {'subs CPU':>9} {'softirq':>8} {'machine':>8}"
    )
    for s in result.steps:
        print(
            f"{s.events_per_s:>9,.0f} {s.deliveries_per_s:>13,.0f} {s.expected_per_s:>11,.0f} "
            f"{100 * s.server_cores:>8.1f}% {s.server_us_per_delivery:>12.3f} "
            f"{100 * s.server_system_share:>6.0f}% "
            f"{s.server_us_per_event:>9,.0f} {s.bytes_per_delivery:>11.1f} "
            f"{s.network_out_mb_s:>9.1f} {s.publish_round_trip_us['p50'] / 1000:>7,.1f} / "
            f"{s.publish_round_trip_us['p99'] / 1000:>6,.1f} {100 * s.subscriber_cores:>8.0f}% "
            f"{100 * s.softirq_cores:>7.0f}% {100 * s.machine_cores:>7.0f}%"
        )
    print(f"  load before {result.load_before['loadavg']}")


def print_online(result: OnlineResult) -> None:
    r, s = result, result.events
    beats = r.heartbeat_round_trip_us
    print(
        f"\nonline: {r.online:,} online ({r.subscribers:,} subscribed), churn "
        f"{100 * r.churn_per_minute:g}%/min, on {r.node}\n"
        f"  heartbeats {r.heartbeats_per_s:,.0f}/s, events {s.events_per_s:,.1f}/s, deliveries "
        f"{s.deliveries_per_s:,.0f}/s of {s.expected_per_s:,.0f}/s\n"
        f"  node CPU {100 * s.server_cores:.1f}% of a core "
        f"(kernel {100 * s.server_system_share:.0f}%); "
        f"machine {100 * s.machine_cores:.0f}%, softirq {100 * s.softirq_cores:.0f}%\n"
        f"  heartbeat round trip p50 {beats['p50'] / 1000:.1f} ms, p99 {beats['p99'] / 1000:.1f}"
        f" ms; event call p50 {s.publish_round_trip_us['p50'] / 1000:.1f} ms, p99 "
        f"{s.publish_round_trip_us['p99'] / 1000:.1f} ms; leases lapsed {r.lapsed_leases}\n"
        f"  load before {r.load_before['loadavg']}, during {s.load_during['loadavg']}"
    )


def _limit(online: int) -> str:
    return f"{online:,}" if online < 10_000_000 else "-"


def print_model(costs: Costs, sizes: Sequence[int]) -> None:
    print(
        f"\nmodel: heartbeat {costs.heartbeat_us:.1f} µs, join/leave call "
        f"{costs.event_call_us:.1f} µs, delivery {costs.delivery_us:.2f} µs, snapshot "
        f"{1000 * costs.snapshot_us_per_name:.0f} ns/name, {costs.bytes_per_event:.0f} B/event; "
        f"lease {costs.ttl_ms} ms, churn {100 * costs.churn_per_minute:g}%/min"
    )
    print(
        f"{'online':>8} {'beats/s':>9} {'beat CPU':>9} {'events/s':>9} {'deliveries/s':>13} "
        f"{'fan-out CPU':>12} {'snap CPU':>9} {'total':>8} {'sweep ms':>9} {'MB/s out':>9} "
        f"{'storm s':>8}"
    )
    for n in sizes:
        x = load_at(n, costs)
        print(
            f"{n:>8,} {x.heartbeats_per_s:>9,.0f} {100 * x.heartbeat_cores:>8.1f}% "
            f"{x.events_per_s:>9,.1f} {x.deliveries_per_s:>13,.0f} "
            f"{100 * x.fanout_cores:>11.1f}% {100 * x.snapshot_cores:>8.1f}% "
            f"{100 * x.total_cores:>7.1f}% {x.sweep_ms:>9.0f} {x.network_out_mb_s:>9.1f} "
            f"{x.storm_cpu_s:>8,.0f}"
        )
    print("\nN at which one core is full (per node; K buckets on K masters):")
    print(f"{'design':>12} {'K':>3} {'heartbeats':>11} {'fan-out':>9} {'snapshots':>10} {'all':>9}")
    for design in DESIGNS:
        for k in MODEL_BUCKETS:
            limits = online_limit(costs, buckets=k, design=design)
            print(
                f"{design:>12} {k:>3} "
                + " ".join(
                    f"{_limit(limits[kind]):>{width}}"
                    for kind, width in (("heartbeats", 11), ("fan-out", 9), ("snapshots", 10))
                )
                + f" {_limit(limits['all']):>9}"
            )
    print("\nchurn sensitivity (one slot, every event to everyone): N where the core is full")
    for churn in (0.001, 0.005, 0.01, 0.02, 0.05):
        limit = online_limit(replace(costs, churn_per_minute=churn))
        print(f"  {100 * churn:>4g}%/min: fan-out {limit['fan-out']:>7,}, all {limit['all']:>7,}")


# -- the command line -------------------------------------------------------------------


MODEL_SIZES = (1000, 10_000, 20_000, 50_000, 100_000, 200_000)
MODEL_BUCKETS = (1, 4, 16)


def _sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part]


def _rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.presence_scale",
        description="What the node holding {presence} carries at N online: presence.lua "
        "CPU per call, heartbeats of N clients, event fan-out, all of it at once, and a model. "
        "Each measurement starts a valkey-server of its own on a free port.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    cost = sub.add_parser("cost", help="server CPU per presence.lua call at N online")
    cost.add_argument("--online", type=_sizes, default=[1000, 10_000, 100_000],
                      help="comma-separated N (default 1000,10000,100000)")  # fmt: skip
    cost.add_argument("--calls", type=int, default=50_000, help="heartbeats per N")

    beats = sub.add_parser("heartbeats", help="N online clients heartbeating every TTL/3")
    beats.add_argument("--online", type=int, default=100_000)
    beats.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    beats.add_argument("--connections", type=int, default=2000, help="in all")

    fan = sub.add_parser("fanout", help="presence events delivered to S subscribers")
    fan.add_argument("--subscribers", type=int, default=10_000)
    fan.add_argument("--rates", type=_rates, default=[5, 10, 20, 40, 80],
                     help="events/s, comma-separated (default 5,10,20,40,80)")  # fmt: skip
    fan.add_argument("--seconds", type=float, default=10.0, help="per rate")

    online = sub.add_parser("online", help="N online: heartbeats, subscribers and churn at once")
    online.add_argument("--online", type=int, default=16_000)
    online.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    online.add_argument("--connections", type=int, default=1000, help="for heartbeats")

    model = sub.add_parser("model", help="the node's load at N online, from saved results")
    model.add_argument("results", type=Path, help="a --json file written by 'all'")

    every = sub.add_parser("all", help="cost, heartbeats, fanout, online, then the model")
    every.add_argument("--online", type=_sizes, default=[1000, 10_000, 100_000],
                       help="N for cost (default 1000,10000,100000)")  # fmt: skip
    every.add_argument("--heartbeat-online", type=int, default=100_000)
    every.add_argument("--subscribers", type=int, default=10_000)
    every.add_argument("--rates", type=_rates, default=[5, 10, 20, 40, 80])
    every.add_argument("--all-online", type=int, default=16_000, help="N for 'online'")

    for p in (beats, fan, online, every):
        p.add_argument("--processes", type=int, default=2, help="load generator processes")
        p.add_argument("--cluster", action="store_true",
                       help="on the {presence} master of a local 3+3 cluster")  # fmt: skip
    for p in (online, model, every):
        p.add_argument("--churn", type=float, default=DEFAULT_CHURN_PER_MINUTE,
                       help="share of users who come or go per minute (default 0.01)")  # fmt: skip
    for p in (cost, beats, fan, online, every):
        p.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)  # so every hub is stopped


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_load()}
    command = args.command
    if command in ("cost", "all"):
        costs = []
        for n in args.online:
            print(f"cost: {n:,} online ...", file=sys.stderr)
            costs.append(measure_cost(n, getattr(args, "calls", 50_000)))
        print_cost(costs)
        results["cost"] = [asdict(c) for c in costs]
    if command in ("heartbeats", "all"):
        n = args.online if command == "heartbeats" else args.heartbeat_online
        print(f"heartbeats: {n:,} online ...", file=sys.stderr)
        beat = simulate_heartbeats(
            n,
            duration=getattr(args, "duration", 20.0),
            processes=args.processes,
            connections=getattr(args, "connections", 2000),
            cluster=args.cluster,
        )
        print_heartbeats(beat)
        results["heartbeats"] = asdict(beat)
    if command in ("fanout", "all"):
        print(f"fan-out: {args.subscribers:,} subscribers ...", file=sys.stderr)
        fan = measure_fanout(
            args.subscribers,
            args.rates,
            seconds=getattr(args, "seconds", 10.0),
            processes=args.processes,
            cluster=args.cluster,
        )
        print_fanout(fan)
        results["fanout"] = asdict(fan)
    if command in ("online", "all"):
        n = args.online if command == "online" else args.all_online
        print(f"online: {n:,} online ...", file=sys.stderr)
        everything = simulate_online(
            n,
            churn_per_minute=args.churn,
            seconds=getattr(args, "duration", 20.0),
            processes=args.processes,
            connections=getattr(args, "connections", 1000),
            cluster=args.cluster,
        )
        print_online(everything)
        results["online"] = asdict(everything)
    if command == "all":
        costs_model = costs_from(results, args.churn)
        print_model(costs_model, MODEL_SIZES)
        predicted = load_at(everything.online, costs_model).total_cores
        print(
            f"\n  at {everything.online:,} online the model says {100 * predicted:.0f}% of a "
            f"core; the simulation measured {100 * everything.events.server_cores:.0f}%"
        )
        results["model"] = asdict(costs_model)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "model":
        saved = json.loads(args.results.read_text(encoding="utf-8"))
        print_model(costs_from(saved, args.churn), MODEL_SIZES)
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    results = run(args)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Scenario 8, rooms: one room of N members against the same traffic sent as DMs.

One poster sends messages at a steady rate, twice, each time to N members
(simulated clients) on a fresh namespace:

* ``room``: the poster and the N members have joined ``#bench``
  (:meth:`Rooms.join`); each message is one :meth:`Mailbox.send` to the room:
  ``room_post.lua`` appends it to the room's log once and SPUBLISHes it once on
  the room's channel, to which every member is SSUBSCRIBEd (fan-out on read:
  a member catching up reads the one log).
* ``dms``: each message goes to every member as a direct message: for each
  member the calls :meth:`Mailbox.send` makes (:func:`delivery_calls`:
  ``deliver.lua`` into the member's mailbox, which SPUBLISHes it on their inbox
  channel, and into the poster's own mailbox), with an envelope of its own.
  The DMs are pipelined ``SEND_BATCH`` (100) recipients per round trip, the
  batch :meth:`Mailbox.send_many` sends per round trip: the cheapest way
  chatbus's DMs can carry it (fan-out on write). Each member is SSUBSCRIBEd to
  its own inbox channel.

Members are raw sockets, a share of them in each of a few worker processes,
read with epoll and parsed with hiredis: a client's own work is not measured
here, the hub's is, and a thousand Receiver threads would measure the GIL.
Each message's body carries its index and send time (:func:`make_body`), so
a member's latency is its arrival time minus the send time, and a message a
member never got is lost. Before each side the poster sends a few warm-up
messages elsewhere (a room of its own, an account nobody follows), so the
connection, scripts and code paths are warm when the measured messages start.

Hub figures are taken around the measured messages: CPU from ``INFO cpu``
(the server process's own CPU time) from the first message until every member
has every message, script calls from ``INFO commandstats``, and memory from
``INFO memory`` ``used_memory`` before the members connect and after they are
gone (less the buffers of the connections left, which come and go), beside
``MEMORY USAGE`` of the keys the messages are stored in. "Per message" is per
message posted, whatever it took to get it to the N members.
"""

import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import hiredis

from chatbus import lua
from chatbus.envelope import new_envelope
from chatbus.hub import Hub
from chatbus.messages import SEND_BATCH, Mailbox, delivery_calls
from chatbus.rooms import Rooms

from .core import (
    QUICK,
    Context,
    Row,
    ScenarioResult,
    Sizes,
    Target,
    make_body,
    new_namespace,
    rss_kib,
    summarize,
)
from .presence_scale import raise_fd_limit, resp
from .worker import Control

NAME = "rooms"
TITLE = "Rooms: fan-out on read"
# The DMs first: a hub keeps what its first thousand connections made it grow
# (its client tables, some 74 kB), which would land in the room's memory
# figure and is lost in the DMs'.
KINDS = ("dms", "room")
ROOM = "#bench"
POSTER = "poster"
WARMUP_ROOM = "#warmup"
WARMUP_ACCOUNT = "warmup"

_ROOM_POST = lua.load("room_post.lua")
_DELIVER = lua.load("deliver.lua")
# The index and send time that make_body puts first in a body, as they appear
# in an envelope's JSON (digits and a space need no escaping).
_BODY = re.compile(rb'"body":"(\d+) (\d+) ')


@dataclass(frozen=True)
class RoomSizes:
    """How big the room scenario is: :data:`FULL_ROOM` is what the issue asks for."""

    members: int = 1_000
    messages: int = 100  # per side
    rate: float = 8.0  # messages posted per second, both sides
    warmup: int = 5  # sends elsewhere before each side
    member_workers: int = 2  # processes the members are spread over


FULL_ROOM = RoomSizes()
QUICK_ROOM = RoomSizes(members=20, messages=5, rate=20.0, warmup=2)


def room_sizes(sizes: Sizes) -> RoomSizes:
    """The room sizes for a run: :class:`Sizes` is shared by every scenario, so
    the room's own sizes live here, quick for ``--quick``."""
    return QUICK_ROOM if sizes == QUICK else FULL_ROOM


def member_name(index: int) -> str:
    return f"m{index:04d}"


# -- the members (worker role ``rooms:members``) --------------------------------


class _Arrivals:
    """What one worker's members got: first copies, duplicates, latencies."""

    def __init__(self, members: int, messages: int) -> None:
        self.seen = [bytearray(messages) for _ in range(members)]
        self.subscribed = 0
        self.all_subscribed = threading.Event()
        self.delivered = 0
        self.duplicates = 0
        self.unexpected = 0
        self.latencies_ns: list[int] = []
        self.last_ns = 0
        self.target: int | None = None
        self.complete = threading.Event()

    def take(self, member: int, reply: list[bytes], now_ns: int) -> None:
        """One push on ``member``'s connection: a subscription's confirmation or a message."""
        kind = reply[0]
        if kind == b"ssubscribe":
            self.subscribed += 1
            if self.subscribed == len(self.seen):
                self.all_subscribed.set()
            return
        if kind != b"smessage":
            self.unexpected += 1
            return
        seen = self.seen[member]
        self.last_ns = now_ns
        for match in _BODY.finditer(reply[2]):
            index = int(match[1])
            if index >= len(seen):
                self.unexpected += 1
            elif seen[index]:
                self.duplicates += 1
            else:
                seen[index] = 1
                self.delivered += 1
                self.latencies_ns.append(now_ns - int(match[2]))
        if self.target is not None and self.delivered >= self.target:
            self.complete.set()

    def expect(self, target: int, idle: float) -> None:
        """Until ``target`` first copies came, or none for ``idle`` seconds."""
        self.target = target
        if self.delivered >= target:
            return
        quiet_since = time.time_ns()
        while not self.complete.wait(0.05):
            if time.time_ns() - max(self.last_ns, quiet_since) > idle * 1e9:
                return


def _read_loop(socks: list[socket.socket], arrivals: _Arrivals, stop: threading.Event) -> None:
    """Read every member's socket as soon as the hub writes to it."""
    poller = select.epoll()
    readers = {}
    for member, sock in enumerate(socks):
        sock.setblocking(False)
        poller.register(sock.fileno(), select.EPOLLIN)
        readers[sock.fileno()] = (member, sock, hiredis.Reader())
    try:
        while not stop.is_set():
            for fd, _ in poller.poll(0.1):
                member, sock, reader = readers[fd]
                try:
                    data = sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError(f"the hub closed member {member}'s connection")
                now = time.time_ns()
                reader.feed(data)
                while (reply := reader.gets()) is not False:
                    arrivals.take(member, reply, now)
    finally:
        poller.close()


def members(config: dict[str, Any], control: Control) -> None:
    """Worker role: one connection per channel in ``config["channels"]``, each
    SSUBSCRIBEd to it, counting what arrives until the harness says how many
    messages were sent ("expect N"); connected until it says "close"."""
    channels: list[str] = config["channels"]
    raise_fd_limit(len(channels) + 100)
    socks = [socket.create_connection((config["host"], config["port"])) for _ in channels]
    for sock, channel in zip(socks, channels, strict=True):
        sock.sendall(resp(["SSUBSCRIBE", channel]))
    arrivals = _Arrivals(len(socks), config["messages"])
    stop = threading.Event()
    thread = threading.Thread(
        target=_read_loop, args=(socks, arrivals, stop), name="members", daemon=True
    )
    thread.start()
    if not arrivals.all_subscribed.wait(60):
        raise RuntimeError(f"{arrivals.subscribed} of {len(socks)} members subscribed in 60 s")
    cpu_before = time.process_time()
    control.ready()
    command, _, sent = control.command().partition(" ")
    assert command == "expect", command
    arrivals.expect(int(sent) * len(socks), config["drain_idle"])
    cpu_s = time.process_time() - cpu_before
    stop.set()
    thread.join()
    control.result(
        {
            "members": len(socks),
            "delivered": arrivals.delivered,
            "duplicates": arrivals.duplicates,
            "unexpected": arrivals.unexpected,
            "latencies_us": [round(ns / 1000) for ns in arrivals.latencies_ns],
            "cpu_s": cpu_s,
            **rss_kib(),
        }
    )
    # Connected until the harness has read the hub's CPU: closing a thousand
    # connections is no message's cost.
    assert control.command() == "close"
    for sock in socks:
        sock.close()


# -- the poster -----------------------------------------------------------------

Send = Callable[[str], None]


def room_sender(hub: Hub, room: str) -> Send:
    """A message to ``room``: one ``room_post.lua`` call, as the CLI sends it."""
    mailbox = Mailbox(hub, POSTER)

    def send(body: str) -> None:
        mailbox.send(room, body)

    return send


def direct_sender(hub: Hub, recipients: list[str]) -> Send:
    """A message to each of ``recipients`` as a DM of its own, ``SEND_BATCH`` per round trip.

    Each DM is the calls :meth:`Mailbox.send` makes for it (the recipient's
    mailbox, then the poster's own copy) with an envelope of its own; the
    batch is what :meth:`Mailbox.send_many` sends per round trip.
    """
    settings = hub.settings
    keys, maxlen, max_body = settings.keys, settings.mailbox_maxlen, settings.max_body

    def send(body: str) -> None:
        for first in range(0, len(recipients), SEND_BATCH):
            calls: list[lua.Call] = []
            for recipient in recipients[first : first + SEND_BATCH]:
                payload = new_envelope(POSTER, recipient, body, max_body).encode()
                calls += delivery_calls(keys, maxlen, POSTER, recipient, [payload])
            replies = lua.run_calls(hub.topology, calls)
            if None in replies:
                raise RuntimeError("a DM found no account")

    return send


def _paced(send: Send, count: int, rate: float, body_size: int) -> tuple[float, list[float]]:
    """Send ``count`` bodies on a fixed schedule of ``rate`` per second (a send
    that falls behind is followed at once by the next); the seconds the
    schedule took (``count / rate`` if every send kept up) and each send
    call's duration in ms."""
    interval = 1 / rate
    calls_ms = []
    began = due = time.perf_counter()
    for index in range(count):
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)  # pacing, not synchronisation
        start = time.perf_counter()
        send(make_body(index, body_size))
        calls_ms.append(1000 * (time.perf_counter() - start))
        due += interval
    return max(due, time.perf_counter()) - began, calls_ms


# -- the harness side -------------------------------------------------------------


def _held_memory(ctx: Context) -> int:
    """``used_memory`` less the AOF's buffer and what the connections hold
    (``CLIENT LIST`` ``tot-mem``: the harness's big pipelines leave a query
    buffer), read in one transaction so that both are of one instant."""
    pipe = ctx.hub.redis.pipeline(transaction=True)
    pipe.info("memory")
    pipe.client_list()
    memory, clients = pipe.execute()
    connections = sum(int(client["tot-mem"]) for client in clients)
    return int(memory["used_memory"]) - int(memory["mem_aof_buffer"]) - connections


def _connections(ctx: Context) -> int:
    return int(ctx.hub.info("clients")["connected_clients"])


def _wait_for_connections(ctx: Context, count: int, timeout: float = 30.0) -> None:
    """Until the hub has no more than ``count`` connections (it frees a closed
    one on its next loop)."""
    deadline = time.monotonic() + timeout
    while (now := _connections(ctx)) > count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the hub still has {now} connections, not {count}")
        time.sleep(0.05)


def _script_calls(ctx: Context) -> int:
    stats = ctx.hub.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


def _stored_bytes(ctx: Context, keys: list[str]) -> int:
    """``MEMORY USAGE`` (every element counted) of ``keys``, summed."""
    pipe = ctx.hub.redis.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    return sum(int(size or 0) for size in pipe.execute())


@dataclass
class _Setup:
    """One side, ready to go: each member's channel, the sends, what they store in."""

    channels: list[str]
    send: Send
    warm: Send
    stored_keys: list[str]


def _setup(ctx: Context, hub: Hub, kind: str, names: list[str]) -> _Setup:
    """Accounts, and for the room its members (joined before anyone
    subscribes, so no member gets the others' join events)."""
    keys = hub.keys
    ctx.hub.add_accounts(keys.namespace, [POSTER, WARMUP_ACCOUNT, *names])
    ctx.hub.redis.script_load(_ROOM_POST.source if kind == "room" else _DELIVER.source)
    if kind == "dms":
        return _Setup(
            [keys.inbox_channel(name) for name in names],
            direct_sender(hub, names),
            direct_sender(hub, [WARMUP_ACCOUNT] * SEND_BATCH),
            [keys.mailbox(POSTER)] + [k for n in names for k in (keys.mailbox(n), keys.unread(n))],
        )
    for name in [POSTER, *names]:
        Rooms(hub, name).join(ROOM)
    Rooms(hub, POSTER).join(WARMUP_ROOM)
    return _Setup(
        [keys.room_channel(ROOM)] * len(names),
        room_sender(hub, ROOM),
        room_sender(hub, WARMUP_ROOM),
        [keys.room_log(ROOM)],
    )


def _side(ctx: Context, sizes: RoomSizes, kind: str) -> dict[str, Any]:
    """One side on a namespace of its own: the members, the paced messages, the figures."""
    hub = ctx.hub.connect(new_namespace(NAME))
    names = [member_name(i) for i in range(sizes.members)]
    side = _setup(ctx, hub, kind, names)
    shares = [side.channels[i :: sizes.member_workers] for i in range(sizes.member_workers)]
    common = ctx.worker_config(
        host=ctx.hub.process.bind,
        port=ctx.hub.process.port,
        messages=sizes.messages,
        drain_idle=ctx.sizes.drain_idle,
        deadline=sizes.messages / sizes.rate + 300,
    )
    body_size = ctx.sizes.body_size
    for index in range(sizes.warmup):
        side.warm(make_body(index, body_size))
    # Memory is read with no member connected, before they connect and once
    # they are gone: what is left is what the messages left.
    connected = _connections(ctx)
    stored_before = _stored_bytes(ctx, side.stored_keys)
    memory_before = _held_memory(ctx)
    with ctx.workers.group() as start:
        workers = [start("rooms:members", {**common, "channels": share}) for share in shares]
        for worker in workers:
            worker.ready(timeout=120)
        calls_before = _script_calls(ctx)
        cpu_before, wall_before = ctx.hub.cpu_seconds(), time.monotonic()
        sender_cpu_before = time.process_time()
        seconds, calls_ms = _paced(side.send, sizes.messages, sizes.rate, body_size)
        sender_cpu_s = time.process_time() - sender_cpu_before
        for worker in workers:
            worker.tell(f"expect {sizes.messages}")
        reports = [worker.result(timeout=120) for worker in workers]
        hub_cpu_s = ctx.hub.cpu_seconds() - cpu_before
        wall = time.monotonic() - wall_before
        calls_after = _script_calls(ctx)
        for worker in workers:
            worker.tell("close")
    _wait_for_connections(ctx, connected)
    memory_after = _held_memory(ctx)
    stored = _stored_bytes(ctx, side.stored_keys) - stored_before
    hub.close()
    messages = sizes.messages
    expected = messages * sizes.members
    delivered = sum(report["delivered"] for report in reports)
    latencies_ms = [us / 1000 for report in reports for us in report["latencies_us"]]
    return {
        "members": sizes.members,
        "sent": messages,
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "duplicates": sum(report["duplicates"] for report in reports),
        "unexpected": sum(report["unexpected"] for report in reports),
        "rate": sizes.rate,
        "achieved_rate": messages / seconds,
        "send_call_ms": summarize(calls_ms),
        "latency_ms": summarize(latencies_ms),
        "hub_cpu_ms_per_message": 1000 * hub_cpu_s / messages,
        "hub_cpu_us_per_delivery": 1e6 * hub_cpu_s / expected,
        "hub_cpu_percent": 100 * hub_cpu_s / wall,
        "used_memory_per_message": (memory_after - memory_before) / messages,
        "stored_bytes_per_message": stored / messages,
        "script_calls_per_message": (calls_after - calls_before) / messages,
        "sender_cpu_ms_per_message": 1000 * sender_cpu_s / messages,
        "member_cpu_s": [report["cpu_s"] for report in reports],
        "member_rss_kib": [report["rss_kib"] for report in reports],
    }


def run(ctx: Context) -> ScenarioResult:
    sizes = room_sizes(ctx.sizes)
    runs: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        what = f"one room of {sizes.members:,}" if kind == "room" else f"{sizes.members:,} DMs each"
        ctx.say(f"rooms: {kind}, {sizes.messages} messages at {sizes.rate:g}/s to {what}")
        runs[kind] = _side(ctx, sizes, kind)
    room, dms = runs["room"], runs["dms"]

    def both(key: str, field: str | None = None) -> tuple[float, float]:
        if field is None:
            return room[key], dms[key]
        return room[key][field], dms[key][field]

    rows = [
        Row("messages posted", "", *both("sent")),
        Row("achieved rate", "msg/s", *both("achieved_rate")),
        Row(f"delivered (of {room['expected']:,})", "", *both("delivered")),
        Row("lost", "", *both("lost"), Target("value", "==", 0)),
        Row("latency at the members p50", "ms", *both("latency_ms", "p50")),
        Row("latency at the members p99", "ms", *both("latency_ms", "p99")),
        Row("hub CPU per message", "ms", *both("hub_cpu_ms_per_message")),
        Row("hub CPU", "%", *both("hub_cpu_percent")),
        Row("hub memory per message", "B", *both("used_memory_per_message")),
        Row("  stored (MEMORY USAGE)", "B", *both("stored_bytes_per_message")),
        Row("script calls per message", "", *both("script_calls_per_message")),
        Row("poster's CPU per message", "ms", *both("sender_cpu_ms_per_message")),
    ]
    details = {"sizes": asdict(sizes), "runs": runs}
    return ScenarioResult(NAME, TITLE, rows, room["lost"] + dms["lost"], details)

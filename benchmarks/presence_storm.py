"""Scenario 3, presence storm: N users join one by one, then leave one by one.

Three processes: a driver that joins and then releases N leases, one call per
event; a listener subscribed to the presence channel that applies every event
to an :class:`~chatbus.presence.OnlineList` as a client does, stamping its
arrival and size; and, while all N are online, a newcomer that times getting
the full list: a snapshot on a new connection, and a whole
:class:`~chatbus.receiver.Receiver` start until its first list.

The raw baseline is what a minimal hand-made presence would do in one round
trip: ZADD (or ZREM) on a sorted set and PUBLISH of ``{"type", "name"}``, and
ZRANGE for the list.
"""

import json
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import redis

from chatbus.errors import SessionEnded
from chatbus.hub import Hub
from chatbus.keys import Keys
from chatbus.presence import Lease, OnlineList, PresenceEvent, parse_event, snapshot
from chatbus.receiver import Receiver

from .clients import settings_for
from .core import Context, Row, ScenarioResult, Target, new_namespace, summarize
from .worker import Control

NAME = "presence"
TITLE = "Presence storm: join, then leave"
KINDS = ("raw", "chatbus")
NEWCOMER = "newcomer"


def user_name(index: int) -> str:
    return f"user{index:05d}"


def user_index(name: str) -> int | None:
    return int(name[4:]) if name.startswith("user") else None


def raw_keys(namespace: str) -> tuple[str, str]:
    """The baseline's sorted set and channel."""
    return f"{namespace}:raw-online", f"{namespace}:raw-users"


def push_frame_bytes(kind: bytes, channel: str, payload: int) -> int:
    """Bytes of a RESP2 pub/sub push: ``*3``, then kind, channel, payload as bulk strings."""

    def bulk(length: int) -> int:
        return len(f"${length}\r\n") + length + 2

    return len("*3\r\n") + bulk(len(kind)) + bulk(len(channel.encode())) + bulk(payload)


# -- the listener -------------------------------------------------------------


class _Events:
    """Arrival times and sizes of the events, by user index and kind."""

    def __init__(self, users: int, channel: str) -> None:
        self.channel = channel
        self.arrived: dict[str, list[int]] = {"join": [0] * users, "leave": [0] * users}
        self.payload: dict[str, list[int]] = {"join": [0] * users, "leave": [0] * users}
        self.online_at: list[int] = [0] * users
        self.received = 0
        self.names: set[str] = set()
        self.outcomes: dict[str, int] = {"applied": 0, "stale": 0, "gap": 0}
        self.last_ns = 0
        self.online = OnlineList(0, [])
        self.done = threading.Event()
        self.target: int | None = None

    def record(self, kind: str, name: str, payload: int, now_ns: int) -> None:
        self.received += 1
        self.last_ns = now_ns
        if kind == "join":
            self.names.add(name)
        else:
            self.names.discard(name)
        index = user_index(name)
        if index is not None and index < len(self.online_at):
            self.arrived[kind][index] = now_ns
            self.payload[kind][index] = payload
            if kind == "join":
                self.online_at[index] = len(self.names)
        if self.target is not None and self.received >= self.target:
            self.done.set()

    def apply(self, event: PresenceEvent) -> None:
        self.outcomes[self.online.apply(event)] += 1


def _listen_loop(pubsub: Any, events: _Events, chatbus: bool, stop: threading.Event) -> None:
    while not stop.is_set():
        reply = pubsub.get_message(timeout=0.1)
        if reply is None or reply["type"] not in ("message", "smessage"):
            continue
        now = time.time_ns()
        data: bytes = reply["data"]
        if chatbus:
            event = parse_event(data)
            events.apply(event)
            events.record(event.kind, event.name, len(data), now)
        else:
            fields = json.loads(data)
            events.record(fields["type"], fields["name"], len(data), now)


def listen(config: dict[str, Any], control: Control) -> None:
    """Follow the presence channel until the expected number of events came."""
    chatbus = config["kind"] == "chatbus"
    client = redis.Redis.from_url(config["url"])
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    if chatbus:
        channel = Keys(config["namespace"]).users_channel
        pubsub.ssubscribe(channel)
    else:
        channel = raw_keys(config["namespace"])[1]
        pubsub.subscribe(channel)
    while pubsub.get_message(timeout=5) is None:
        pass  # the subscription's confirmation
    events = _Events(config["users"], channel)
    stop = threading.Event()
    thread = threading.Thread(target=_listen_loop, args=(pubsub, events, chatbus, stop))
    thread.start()
    control.ready()
    command, _, count = control.command().partition(" ")
    assert command == "expect", command
    events.target = int(count)
    quiet_since = time.time_ns()
    while events.received < events.target and not events.done.wait(0.05):
        if time.time_ns() - max(events.last_ns, quiet_since) > config["drain_idle"] * 1e9:
            break
    stop.set()
    thread.join()
    pubsub.close()
    client.close()
    kind_bytes = b"smessage" if chatbus else b"message"
    control.result(
        {
            "received": events.received,
            "outcomes": events.outcomes,
            "arrived": events.arrived,
            "payload": events.payload,
            "online_at": events.online_at,
            "frame_overhead": push_frame_bytes(kind_bytes, channel, 0),
        }
    )


# -- the driver ---------------------------------------------------------------


class _RawPresence:
    """The baseline: one pipelined ZADD/ZREM + PUBLISH per event."""

    def __init__(self, url: str, namespace: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.online, self.channel = raw_keys(namespace)

    def join(self, name: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.online, {name: time.time_ns() // 1_000_000})
        pipe.publish(self.channel, json.dumps({"type": "join", "name": name}))
        pipe.execute()

    def leave(self, name: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self.online, name)
        pipe.publish(self.channel, json.dumps({"type": "leave", "name": name}))
        pipe.execute()


def drive(config: dict[str, Any], control: Control) -> None:
    """Join every user, say ``joined``, wait for ``leave``, release them all."""
    users = config["users"]
    names = [user_name(i) for i in range(users)]
    starts: dict[str, list[int]] = {"join": [], "leave": []}
    calls_ns: dict[str, list[int]] = {"join": [], "leave": []}
    actions: dict[str, list[Callable[[], object]]]
    if config["kind"] == "chatbus":
        hub = Hub(settings_for(config))
        leases = [Lease(hub, name) for name in names]
        actions = {
            "join": [lease.renew for lease in leases],
            "leave": [lease.release for lease in leases],
        }
    else:
        raw = _RawPresence(config["url"], config["namespace"])
        actions = {
            "join": [partial(raw.join, name) for name in names],
            "leave": [partial(raw.leave, name) for name in names],
        }
    control.ready()
    for phase in ("join", "leave"):
        if phase == "leave":
            control.note("joined")
            assert control.command() == "leave"
        for action in actions[phase]:
            began_ns = time.time_ns()
            began = time.perf_counter_ns()
            action()
            calls_ns[phase].append(time.perf_counter_ns() - began)
            starts[phase].append(began_ns)
    control.result(
        {
            "starts": starts,
            "call_us": {
                phase: summarize(ns / 1000 for ns in samples) for phase, samples in calls_ns.items()
            },
        }
    )


# -- the newcomer -------------------------------------------------------------


class _FirstList:
    """A Receiver listener that notes when the first full list arrived."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.size = 0

    def on_message(self, message: object) -> None:
        pass

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        if event is None and not self.arrived.is_set():
            self.size = len(online)
            self.arrived.set()

    def on_connection(self, connected: bool, detail: str) -> None:
        pass

    def on_session_ended(self, ended: SessionEnded) -> None:
        pass


def _list_once(config: dict[str, Any]) -> tuple[int, int, int]:
    """(ns for a new connection's first list, ns for a second one, names)."""
    began = time.perf_counter_ns()
    if config["kind"] == "chatbus":
        hub = Hub(settings_for(config))
        names = snapshot(hub)[1]
        cold = time.perf_counter_ns() - began
        began = time.perf_counter_ns()
        snapshot(hub)
        warm = time.perf_counter_ns() - began
        hub.close()
    else:
        client = redis.Redis.from_url(config["url"])
        online_key = raw_keys(config["namespace"])[0]
        names = cast(list[str], client.zrange(online_key, 0, -1))
        cold = time.perf_counter_ns() - began
        began = time.perf_counter_ns()
        client.zrange(online_key, 0, -1)
        warm = time.perf_counter_ns() - began
        client.close()
    return cold, warm, len(names)


def _receiver_start_ms(config: dict[str, Any]) -> tuple[float, int]:
    """A whole client start: subscribe, take a lease, snapshot, build the list."""
    hub = Hub(settings_for(config))
    first = _FirstList()
    receiver = Receiver(hub, NEWCOMER, first, after_id="0-0")
    began = time.perf_counter_ns()
    receiver.start()
    first.arrived.wait(30)
    elapsed = (time.perf_counter_ns() - began) / 1e6
    receiver.stop()
    hub.close()
    return elapsed, first.size


def newcomer(config: dict[str, Any], control: Control) -> None:
    """Time getting the whole online list, cold (new connection) and warm."""
    timings = [_list_once(config) for _ in range(config["repeats"])]
    report: dict[str, Any] = {
        "sizes": sorted({size for _, _, size in timings}),
        "cold_ms": summarize(cold / 1e6 for cold, _, _ in timings),
        "warm_ms": summarize(warm / 1e6 for _, warm, _ in timings),
    }
    if config["kind"] == "chatbus":
        report["receiver_ms"], report["receiver_list_size"] = _receiver_start_ms(config)
    control.result(report)


# -- the harness side ---------------------------------------------------------


def _delays_us(arrived: list[int], starts: list[int]) -> list[float]:
    return [(a - s) / 1000 for a, s in zip(arrived, starts, strict=True) if a]


def _storm(ctx: Context, kind: str) -> dict[str, Any]:
    users = ctx.sizes.presence_users
    namespace = new_namespace(NAME)
    common = ctx.worker_config(namespace=namespace, kind=kind, users=users)
    # Joining and leaving take a round trip or so each; allow a slow machine 5 ms.
    timeout = 60 + users * 0.005
    with ctx.workers.group() as start:
        listener = start("presence_storm:listen", {**common, "drain_idle": ctx.sizes.drain_idle})
        listener.ready()
        driver = start("presence_storm:drive", common)
        driver.ready()
        driver.wait_for("note", timeout)
        newcomer_worker = start(
            "presence_storm:newcomer", {**common, "repeats": ctx.sizes.snapshot_repeats}
        )
        arrival = newcomer_worker.result(timeout)
        driver.tell("leave")
        driven = driver.result(timeout)
        # The newcomer's Receiver joined and left too: two more events.
        expected = 2 * users + (2 if kind == "chatbus" else 0)
        listener.tell(f"expect {expected}")
        heard = listener.result(timeout)
    payload = heard["payload"]["join"]
    overhead = heard["frame_overhead"]
    return {
        "users": users,
        "expected_events": expected,
        "received_events": heard["received"],
        "outcomes": heard.get("outcomes"),
        "call_us": driven["call_us"],
        "delivery_us": {
            phase: summarize(_delays_us(heard["arrived"][phase], driven["starts"][phase]))
            for phase in ("join", "leave")
        },
        "event_bytes_first": payload[0] + overhead,
        "event_bytes_last": payload[-1] + overhead,
        "event_bytes_max": max(payload + heard["payload"]["leave"]) + overhead,
        # Event size by number online, every 1/20th of the way, for the chart.
        "event_bytes_by_online": [
            [heard["online_at"][i], payload[i] + overhead]
            for i in range(0, users, max(1, users // 20))
        ],
        "newcomer": arrival,
    }


def run(ctx: Context) -> ScenarioResult:
    users = ctx.sizes.presence_users
    runs: dict[str, dict[str, Any]] = {}
    lost = 0
    for kind in KINDS:
        ctx.say(f"presence: {kind}, {users} users join, then leave")
        runs[kind] = _storm(ctx, kind)
        lost += runs[kind]["expected_events"] - runs[kind]["received_events"]
    bus, raw = runs["chatbus"], runs["raw"]
    gaps = bus["outcomes"]["gap"]
    # What an event carrying the whole list would weigh with everyone online.
    full_list = len(json.dumps([user_name(i) for i in range(users)]))

    def pair(group: str, phase: str, key: str) -> tuple[float, float]:
        return bus[group][phase][key], raw[group][phase][key]

    rows = [
        Row("join call p50", "us", *pair("call_us", "join", "p50")),
        Row("join call p99", "us", *pair("call_us", "join", "p99")),
        Row("leave call p50", "us", *pair("call_us", "leave", "p50")),
        Row("join event delivered p50", "us", *pair("delivery_us", "join", "p50")),
        Row("join event delivered p99", "us", *pair("delivery_us", "join", "p99")),
        Row("leave event delivered p50", "us", *pair("delivery_us", "leave", "p50")),
        Row("leave event delivered p99", "us", *pair("delivery_us", "leave", "p99")),
        Row("bytes per event, 1 online", "B", bus["event_bytes_first"], raw["event_bytes_first"]),
        Row(
            f"bytes per event, {users:,} online",
            "B",
            bus["event_bytes_last"],
            raw["event_bytes_last"],
        ),
        Row(
            f"event growth, 1 -> {users:,} online",
            "x",
            bus["event_bytes_last"] / bus["event_bytes_first"],
            target=Target("value", "<=", 1.1),
        ),
        Row(f"full-list event at {users:,} (not sent)", "B", full_list),
        Row(
            f"new client: list of {users:,}, p99",
            "ms",
            bus["newcomer"]["cold_ms"]["p99"],
            raw["newcomer"]["cold_ms"]["p99"],
            Target("value", "<", 50),
        ),
        Row(
            f"new client: list of {users:,}, p50",
            "ms",
            bus["newcomer"]["cold_ms"]["p50"],
            raw["newcomer"]["cold_ms"]["p50"],
        ),
        Row("Receiver start to first list", "ms", bus["newcomer"]["receiver_ms"]),
        Row("sequence gaps (re-snapshots)", "", gaps, target=Target("value", "==", 0)),
    ]
    return ScenarioResult(NAME, TITLE, rows, lost, {"runs": runs, "full_list_bytes": full_list})

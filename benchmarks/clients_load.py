"""Scenario 4, many clients: N connected users, each sending R msg/s to random peers.

A few load-generator processes each run their share of the users on asyncio
(one OS thread per user would measure the GIL, not the hub). Each simulated
chatbus user does on the wire what a ``chatbus chat`` client does, with
redis.asyncio and chatbus's own scripts, keys and envelope code:

* a pub/sub connection SSUBSCRIBEd to its inbox and to the presence channel,
  a presence lease taken with ``presence.lua`` and renewed every TTL/3, a
  snapshot, and every presence event applied to an OnlineList;
* a command connection that sends like :meth:`Mailbox.deliver`: one pipeline
  running ``deliver.lua`` for the recipient and for the sender's own copy;
* every delivery validated with :func:`decode_envelope`, duplicates dropped.

A raw user SUBSCRIBEs to its channel and PUBLISHes the bare body. A message
is lost when its sender sent it and its recipient never got it live.
"""

import asyncio
import gc
import random
import resource
import secrets
import time
from typing import Any

import redis.asyncio as aioredis

from chatbus import lua
from chatbus.config import DEFAULT_LEASE_TTL, DEFAULT_MAILBOX_MAXLEN, DEFAULT_MAX_BODY
from chatbus.envelope import BadEnvelope, decode_envelope, new_envelope, split_delivery
from chatbus.keys import Keys
from chatbus.messages import delivery_calls
from chatbus.presence import OnlineList, parse_event, presence_call

from .core import (
    Context,
    Row,
    ScenarioResult,
    Target,
    make_body,
    new_namespace,
    parse_body,
    rss_kib,
    summarize,
)
from .worker import Control

NAME = "clients"
TITLE = "Many clients sending to random peers"
KINDS = ("raw", "chatbus")

_DELIVER = lua.load("deliver.lua")
_PRESENCE = lua.load("presence.lua")
# How many users connect at once while a worker sets up.
_CONNECT_WAVE = 25


class _Totals:
    """One worker's counts, shared by all of its users."""

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.duplicates = 0
        self.own_copies = 0
        self.bad = 0
        self.errors = 0
        self.presence_events = 0
        self.presence_gaps = 0
        self.latencies_us: list[float] = []
        self.last_ns = 0


class _User:
    """One simulated user: a command connection and a pub/sub connection."""

    def __init__(self, name: str, config: dict[str, Any], totals: _Totals) -> None:
        self.name = name
        self.chatbus = config["kind"] == "chatbus"
        self.keys = Keys(config["namespace"])
        self.totals = totals
        self.body_size: int = config["body_size"]
        self.lease_id = secrets.token_hex(8)
        self.lease_ms = int(DEFAULT_LEASE_TTL * 1000)
        self.client = aioredis.Redis.from_url(config["url"])
        self.pubsub = self.client.pubsub()
        self.seen: set[str] = set()
        self.online = OnlineList(0, [])
        self.sequence = 0

    def channel(self, name: str) -> str:
        return self.keys.inbox_channel(name)

    async def connect(self) -> None:
        if not self.chatbus:
            await self.pubsub.subscribe(self.channel(self.name))
            await self.client.ping()  # opens the command connection before the run
            return
        await self.pubsub.ssubscribe(self.channel(self.name), self.keys.users_channel)
        await self._presence("join", self.name, self.lease_id, self.lease_ms)
        seq, names = await self._presence("snapshot")
        self.online = OnlineList(int(seq), [n.decode() for n in names])

    async def _presence(self, operation: str, *args: str | int) -> Any:
        command = presence_call(self.keys, operation, *args).command()
        return await self.client.execute_command(*command)  # type: ignore[no-untyped-call]

    async def heartbeat(self, stop: asyncio.Event) -> None:
        period = DEFAULT_LEASE_TTL / 3
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), period * random.uniform(0.9, 1.1))
            except TimeoutError:
                await self._presence("join", self.name, self.lease_id, self.lease_ms)

    async def receive(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            reply = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if reply is None:
                continue
            now = time.time_ns()
            self.totals.last_ns = now
            data: bytes = reply["data"]
            if not self.chatbus:
                self._count(parse_body(data), now)
            elif reply["channel"] == self.keys.users_channel.encode():
                self._presence_event(data)
            else:
                self._delivery(data, now)

    def _presence_event(self, data: bytes) -> None:
        self.totals.presence_events += 1
        if self.online.apply(parse_event(data)) == "gap":
            self.totals.presence_gaps += 1

    def _delivery(self, data: bytes, now: int) -> None:
        try:
            _, encoded = split_delivery(data)
            envelope = decode_envelope(encoded, DEFAULT_MAX_BODY)
        except BadEnvelope:
            self.totals.bad += 1
            return
        if envelope.sender == self.name:
            self.totals.own_copies += 1
            return
        self._count(parse_body(envelope.body), now)

    def _count(self, parsed: tuple[str, int], now: int) -> None:
        key, stamp = parsed
        if key in self.seen:
            self.totals.duplicates += 1
            return
        self.seen.add(key)
        self.totals.received += 1
        self.totals.latencies_us.append((now - stamp) / 1000)

    async def send_to(self, peer: str) -> None:
        self.sequence += 1
        body = make_body(self.sequence, self.body_size, tag=f"{self.name}:")
        if not self.chatbus:
            await self.client.publish(self.channel(peer), body)
            return
        encoded = new_envelope(self.name, peer, body, DEFAULT_MAX_BODY).encode()
        pipe = self.client.pipeline(transaction=False)
        for call in delivery_calls(self.keys, DEFAULT_MAILBOX_MAXLEN, self.name, peer, [encoded]):
            pipe.execute_command(*call.command())
        stream_ids = await pipe.execute()
        if None in stream_ids:
            raise RuntimeError(f"no account for {peer}")

    async def send_loop(self, everyone: list[str], rate: float, start: float, end: float) -> None:
        loop = asyncio.get_running_loop()
        period = 1 / rate
        due = start + random.uniform(0, period)
        while due < end:
            await asyncio.sleep(max(0.0, due - loop.time()))
            peer = random.choice(everyone)
            while peer == self.name:
                peer = random.choice(everyone)
            try:
                await self.send_to(peer)
                self.totals.sent += 1
            except Exception:  # counted: a failed send is a finding, not a crash
                self.totals.errors += 1
            due += period

    async def close(self) -> None:
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.client.aclose()


async def _loop_lag(stop: asyncio.Event, lag_us: list[float]) -> None:
    """How late the event loop wakes a 10 ms sleep: the generator's own delay."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.01
        await asyncio.sleep(0.01)
        lag_us.append((loop.time() - due) * 1e6)


async def _run_users(config: dict[str, Any], control: Control) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    totals = _Totals()
    users = [_User(name, config, totals) for name in config["names"]]
    stop = asyncio.Event()
    tasks = []
    for wave in range(0, len(users), _CONNECT_WAVE):
        joining = users[wave : wave + _CONNECT_WAVE]
        await asyncio.gather(*(user.connect() for user in joining))
        # Each user reads and heartbeats from the moment it is connected, as a
        # client does: a lease must not lapse while the others connect.
        tasks += [loop.create_task(user.receive(stop)) for user in joining]
        if config["kind"] == "chatbus":
            tasks += [loop.create_task(user.heartbeat(stop)) for user in joining]
    lag_us: list[float] = []
    tasks.append(loop.create_task(_loop_lag(stop, lag_us)))
    # What was built while connecting lives to the end; the collector need not
    # walk it again and again during the run (a full pass takes tens of ms).
    gc.collect()
    gc.freeze()
    control.ready()
    command, _, start_ns = (await loop.run_in_executor(None, control.command)).partition(" ")
    assert command == "go", command
    start = loop.time() + (int(start_ns) - time.time_ns()) / 1e9
    end = start + config["duration"]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(
        *(user.send_loop(config["everyone"], config["rate"], start, end) for user in users)
    )
    # Everyone stopped sending at `end`; what is still on its way arrives soon.
    drain_until = time.time_ns() + 30 * 10**9
    while time.time_ns() < drain_until:
        await asyncio.sleep(0.1)
        if time.time_ns() - totals.last_ns > config["drain_idle"] * 1e9:
            break
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    report = {
        "users": len(users),
        "sent": totals.sent,
        "received": totals.received,
        "duplicates": totals.duplicates,
        "own_copies": totals.own_copies,
        "bad": totals.bad,
        "errors": totals.errors,
        "presence_events": totals.presence_events,
        "presence_gaps": totals.presence_gaps,
        "latencies_us": [round(us, 1) for us in totals.latencies_us],
        "loop_lag_us": summarize(lag_us),
        "cpu_s": (cpu_after.ru_utime + cpu_after.ru_stime)
        - (cpu_before.ru_utime + cpu_before.ru_stime),
        **rss_kib(),
    }
    await asyncio.gather(*(user.close() for user in users), return_exceptions=True)
    return report


def users(config: dict[str, Any], control: Control) -> None:
    """Worker role: run ``config["names"]`` until the load is over, then report."""
    report = asyncio.run(_run_users(config, control))
    control.result(report)


# -- the harness side ---------------------------------------------------------


def _load(ctx: Context, kind: str) -> dict[str, Any]:
    sizes = ctx.sizes
    namespace = new_namespace(NAME)
    everyone = [f"u{i:04d}" for i in range(sizes.clients_users)]
    ctx.hub.add_accounts(namespace, everyone)
    for script in (_DELIVER, _PRESENCE):
        ctx.hub.redis.script_load(script.source)
    shares = [everyone[i :: sizes.clients_workers] for i in range(sizes.clients_workers)]
    common = ctx.worker_config(
        namespace=namespace,
        kind=kind,
        everyone=everyone,
        rate=sizes.clients_rate,
        duration=sizes.clients_duration,
        body_size=sizes.body_size,
        drain_idle=sizes.drain_idle,
        deadline=sizes.clients_duration + 300,
    )
    with ctx.workers.group() as start:
        workers = [start("clients_load:users", {**common, "names": share}) for share in shares]
        for worker in workers:
            worker.ready(timeout=180)
        cpu_before, wall_before = ctx.hub.cpu_seconds(), time.monotonic()
        start_ns = time.time_ns() + 300_000_000  # every worker hears "go" in time
        for worker in workers:
            worker.tell(f"go {start_ns}")
        reports = [worker.result(timeout=sizes.clients_duration + 120) for worker in workers]
        hub_cpu = (ctx.hub.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
    latencies = [us for report in reports for us in report.pop("latencies_us")]
    totals = {
        key: sum(report[key] for report in reports)
        for key in (
            "sent",
            "received",
            "duplicates",
            "own_copies",
            "bad",
            "errors",
            "presence_events",
            "presence_gaps",
        )
    }
    return {
        **totals,
        "users": sizes.clients_users,
        "workers": sizes.clients_workers,
        "lost": totals["sent"] - totals["received"],
        "latency_us": summarize(latencies),
        "hub_cpu_percent": 100 * hub_cpu,
        "worker_cpu_percent": [
            100 * report["cpu_s"] / sizes.clients_duration for report in reports
        ],
        "worker_rss_kib": [report["rss_kib"] for report in reports],
        "worker_loop_lag_us": [report["loop_lag_us"] for report in reports],
    }


def run(ctx: Context) -> ScenarioResult:
    sizes = ctx.sizes
    runs: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        ctx.say(
            f"clients: {kind}, {sizes.clients_users} users x {sizes.clients_rate:g} msg/s"
            f" for {sizes.clients_duration:g} s"
        )
        runs[kind] = _load(ctx, kind)
    bus, raw = runs["chatbus"], runs["raw"]
    lost = bus["lost"] + raw["lost"]
    rows = [
        Row("messages delivered", "", bus["received"], raw["received"]),
        Row("lost", "", bus["lost"], raw["lost"], Target("value", "==", 0)),
        Row("sender's own copies missing", "", bus["sent"] - bus["own_copies"]),
        Row("latency p50", "us", bus["latency_us"]["p50"], raw["latency_us"]["p50"]),
        Row("latency p99", "us", bus["latency_us"]["p99"], raw["latency_us"]["p99"]),
        Row("latency p99.9", "us", bus["latency_us"]["p99.9"], raw["latency_us"]["p99.9"]),
        Row(
            "generator's event loop lag p99",
            "us",
            max(lag["p99"] for lag in bus["worker_loop_lag_us"]),
            max(lag["p99"] for lag in raw["worker_loop_lag_us"]),
        ),
        Row("hub CPU", "%", bus["hub_cpu_percent"], raw["hub_cpu_percent"]),
        Row(
            "load generators' CPU",
            "%",
            sum(bus["worker_cpu_percent"]),
            sum(raw["worker_cpu_percent"]),
        ),
    ]
    return ScenarioResult(NAME, TITLE, rows, lost, {"runs": runs})

"""One sender and one receiver, for chatbus and for raw redis-py pub/sub.

Worker roles ``clients:receive`` and ``clients:send``, shared by the latency,
throughput and memory scenarios. ``kind`` picks the implementation:

* ``publish`` / ``spublish``: redis-py PUBLISH (or SPUBLISH) of the bare body to a
  subscriber reading with ``get_message(timeout=...)``, the usual redis-py idiom;
* ``chatbus``: :meth:`Mailbox.send` / :meth:`Mailbox.send_many` to a
  :class:`chatbus.receiver.Receiver` thread, the library as the CLI uses it.
  On a secured hub (:mod:`benchmarks.secured`) each worker's :class:`Hub`
  logs in as its user, with the secret the harness left in a file (0600) that
  ``credentials_file`` names, and the library takes the secured send path.

Bodies carry their index and send time (:func:`benchmarks.core.make_body`), so
the receiver measures latency and counts losses and duplicates the same way
for every kind.
"""

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis
from redis.connection import AbstractConnection

from chatbus.config import Settings
from chatbus.errors import SessionEnded
from chatbus.hub import Credentials, Hub
from chatbus.keys import Keys
from chatbus.messages import SEND_BATCH, Mailbox, Message
from chatbus.presence import OnlineList, PresenceEvent
from chatbus.receiver import Receiver
from chatbus.tls import write_private

from .core import Context, curve, make_body, new_namespace, parse_body, rss_kib, summarize
from .worker import Control

# Sends to another recipient before the measured ones: connects, loads the
# scripts and warms the code paths without touching the receiver's figures.
WARMUP_ELSEWHERE = 20


def settings_for(config: dict[str, Any]) -> Settings:
    return Settings(
        url=config["url"],
        namespace=config["namespace"],
        home=Settings().home,
        lease_ttl=config["lease_ttl"],
    )


def hub_for(config: dict[str, Any], name: str) -> Hub:
    """A chatbus Hub acting as ``name``: with that user's own key on a secured hub."""
    settings = settings_for(config)
    secrets_file = config.get("credentials_file")
    if not secrets_file:
        return Hub(settings)
    secrets: dict[str, str] = json.loads(Path(secrets_file).read_text())
    return Hub(settings, Credentials(name.lower(), secrets[name]))


def channel_for(config: dict[str, Any], name: str) -> str:
    """Raw kinds use the same channel name chatbus would, on the same hub."""
    return Keys(config["namespace"]).inbox_channel(name)


class Tally:
    """What a receiver got: first copies, duplicates, latencies, times."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.latencies_ns: list[int] = []
        self.seen: set[str] = set()
        self.duplicates = 0
        self.first_ns = 0
        self.last_ns = 0
        self._target: int | None = None
        self._done = threading.Event()

    def record(self, body: bytes | str, now_ns: int) -> None:
        index, stamp = parse_body(body)
        if index in self.seen:
            self.duplicates += 1
            return
        self.seen.add(index)
        if int(index) >= self.skip:
            self.latencies_ns.append(now_ns - stamp)
        if not self.first_ns:
            self.first_ns = now_ns
        self.last_ns = now_ns
        if self._target is not None and len(self.seen) >= self._target:
            self._done.set()

    def wait(self, target: int, idle: float) -> None:
        """Until ``target`` distinct messages came, or none for ``idle`` seconds."""
        self._target = target
        quiet_since = time.time_ns()
        while len(self.seen) < target and not self._done.wait(0.05):
            last = max(self.last_ns, quiet_since)
            if time.time_ns() - last > idle * 1e9:
                return

    def report(self) -> dict[str, Any]:
        latencies_us = [ns / 1000 for ns in self.latencies_ns]
        return {
            "received": len(self.seen),
            "duplicates": self.duplicates,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "latency_us": summarize(latencies_us),
            "latency_curve_us": curve(latencies_us),
        }


class _TallyListener:
    """A chatbus Receiver listener that stamps and counts each message."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def on_message(self, message: Message) -> None:
        self.tally.record(message.envelope.body, time.time_ns())

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        pass

    def on_connection(self, connected: bool, detail: str) -> None:
        pass

    def on_session_ended(self, ended: SessionEnded) -> None:
        pass


def _raw_loop(pubsub: Any, tally: Tally, stop: threading.Event) -> None:
    while not stop.is_set():
        reply = pubsub.get_message(timeout=0.1)
        if reply is not None and reply["type"] in ("message", "smessage"):
            tally.record(reply["data"], time.time_ns())


def receive(config: dict[str, Any], control: Control) -> None:
    """Receive as ``config["name"]`` until the harness says how many to expect."""
    kind, name = config["kind"], config["name"]
    tally = Tally(config.get("skip", 0))
    stop_receiving: Callable[[], None]
    if kind == "chatbus":
        hub = hub_for(config, name)
        receiver = Receiver(hub, name, _TallyListener(tally), after_id="0-0")
        receiver.start()
        if not receiver.wait_connected(30):
            raise RuntimeError("the chatbus receiver did not connect")

        def stop_receiving() -> None:
            receiver.stop()
            hub.close()

    else:
        client = redis.Redis.from_url(config["url"])
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        channel = channel_for(config, name)
        if kind == "spublish":
            pubsub.ssubscribe(channel)
        else:
            pubsub.subscribe(channel)
        while pubsub.get_message(timeout=5) is None:
            pass  # the subscription's confirmation
        stop = threading.Event()
        thread = threading.Thread(target=_raw_loop, args=(pubsub, tally, stop), daemon=True)
        thread.start()

        def stop_receiving() -> None:
            stop.set()
            thread.join()
            pubsub.close()
            client.close()

    control.ready()
    # The receiver's own requests (on a secured hub: the collect on each bell).
    round_trips = count_round_trips()
    cpu_before = time.process_time()
    command, _, count = control.command().partition(" ")
    assert command == "expect", command
    tally.wait(int(count), config["drain_idle"])
    report = tally.report()
    report["cpu_s"] = time.process_time() - cpu_before
    report["round_trips"] = round_trips()
    if config.get("keep_samples"):
        report["samples_us"] = [round(ns / 1000, 1) for ns in tally.latencies_ns]
    report.update(rss_kib())
    stop_receiving()
    control.result(report)


# -- sending ------------------------------------------------------------------


def count_round_trips() -> Callable[[], int]:
    """Count the requests this process writes to any Redis connection.

    A pipeline is written with one ``send_packed_command``, and every reply is
    read before the next write, so writes are round trips.
    """
    original = AbstractConnection.send_packed_command
    writes = 0

    def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        nonlocal writes
        writes += 1
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    setattr(AbstractConnection, "send_packed_command", counting)  # noqa: B010
    return lambda: writes


class _Sender:
    """Sends bodies one at a time or in batches, for one kind."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.kind = config["kind"]
        self.recipient = config["recipient"]
        self.channel = channel_for(config, self.recipient)
        self.warm_to = config["warmup_to"]
        self.warm_channel = channel_for(config, self.warm_to)
        if self.kind == "chatbus":
            self.hub = hub_for(config, config["sender"])
            self.mailbox = Mailbox(self.hub, config["sender"])
            self.client = self.hub.redis
        else:
            self.client = redis.Redis.from_url(config["url"])

    def one(self, body: str, warm: bool = False) -> None:
        """Send ``body`` to the receiver, or to the warm-up recipient."""
        recipient, channel = (
            (self.warm_to, self.warm_channel) if warm else (self.recipient, self.channel)
        )
        if self.kind == "chatbus":
            self.mailbox.send(recipient, body)
        elif self.kind == "spublish":
            self.client.spublish(channel, body)
        else:
            self.client.publish(channel, body)

    def many(self, bodies: Iterator[str], batch: int) -> None:
        if self.kind == "chatbus":
            # The CLI's batched path: send_many pipelines SEND_BATCH per round trip.
            self.mailbox.send_many(self.recipient, bodies)
            return
        while True:
            pipe = self.client.pipeline(transaction=False)
            queued = 0
            for body in bodies:
                if self.kind == "spublish":
                    pipe.spublish(self.channel, body)
                else:
                    pipe.publish(self.channel, body)
                queued += 1
                if queued == batch:
                    break
            if not queued:
                return
            pipe.execute()

    def close(self) -> None:
        self.client.close()


def send(config: dict[str, Any], control: Control) -> None:
    """Warm up on another recipient, then on ``go`` send ``count`` bodies to the receiver.

    ``rate`` (messages per second, 0 for as fast as possible) paces single
    sends on a fixed schedule; ``batch`` > 1 pipelines that many per round trip.
    """
    sender = _Sender(config)
    size, count, rate, batch = config["body_size"], config["count"], config["rate"], config["batch"]
    for i in range(config["warmup"]):
        sender.one(make_body(i, size), warm=True)
    round_trips = count_round_trips()
    calls_ns: list[int] = []
    control.ready()
    assert control.command() == "go"
    cpu_before = time.process_time()
    start_ns = time.time_ns()
    if batch > 1:
        sender.many((make_body(i, size) for i in range(count)), batch)
    else:
        interval = 1 / rate if rate else 0.0
        due = time.perf_counter()
        for i in range(count):
            if interval:
                due += interval
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            began = time.perf_counter_ns()
            sender.one(make_body(i, size))
            calls_ns.append(time.perf_counter_ns() - began)
    end_ns = time.time_ns()
    cpu_s = time.process_time() - cpu_before
    sender.close()
    calls_us = [round(ns / 1000, 1) for ns in calls_ns[config.get("skip", 0) :]]
    report: dict[str, Any] = {
        "sent": count,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "round_trips": round_trips(),
        "cpu_s": cpu_s,
        "call_us": summarize(calls_us),
    }
    if config.get("keep_samples"):
        report["call_samples_us"] = calls_us
    report.update(rss_kib())
    control.result(report)


# -- the harness side ---------------------------------------------------------


class PairServer(Protocol):
    """Where a pair sends: the harness's hub, or a cluster (:mod:`benchmarks.cluster`)."""

    @property
    def url(self) -> str: ...

    def add_accounts(self, namespace: str, names: Iterable[str]) -> Mapping[str, str] | None: ...

    def cpu_seconds(self) -> float: ...


def write_secrets(ctx: Context, namespace: str, secrets: Mapping[str, str]) -> str:
    """A file (0600) of the users' hub secrets, for workers' ``credentials_file``."""
    path = ctx.hub.work_dir / f"{namespace}.secrets.json"
    write_private(path, json.dumps(dict(secrets)))
    return str(path)


def run_pair(
    ctx: Context,
    scenario: str,
    kind: str,
    *,
    count: int,
    skip: int,
    rate: float,
    batch: int,
    keep_samples: bool = False,
    server: PairServer | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One receiver and one sender, each in a process of its own, on a fresh namespace.

    Returns what the sender and the receiver reported (the receiver's report
    gains ``hub_cpu_s``, the hub's CPU time meanwhile); with ``keep_samples``
    they include every latency and call time, for pooling several runs.
    ``server``: where the pair sends (default: the harness's hub). A server
    whose ``add_accounts`` returns the users' secrets is a secured hub: the
    workers log in as their users, with the secrets in a file only this
    user can read (never on a command line).
    """
    target: PairServer = server or ctx.hub
    namespace = new_namespace(scenario)
    secrets = target.add_accounts(namespace, ["alice", "bob", "carol"])
    common = ctx.worker_config(
        namespace=namespace, kind=kind, body_size=ctx.sizes.body_size, keep_samples=keep_samples
    )
    common["url"] = target.url
    if secrets:
        common["credentials_file"] = write_secrets(ctx, namespace, secrets)
    expected_seconds = count / rate if rate else count / 1_000
    timeout = 60 + 2 * expected_seconds
    with ctx.workers.group() as start:
        receiver = start(
            "clients:receive",
            {**common, "name": "bob", "skip": skip, "drain_idle": ctx.sizes.drain_idle},
        )
        sender = start(
            "clients:send",
            {
                **common,
                "sender": "alice",
                "recipient": "bob",
                "warmup_to": "carol",
                "warmup": WARMUP_ELSEWHERE,
                "count": count,
                "skip": skip,
                "rate": rate,
                "batch": batch,
            },
        )
        # Both start up at once; the sender waits for "go" once it has warmed up.
        receiver.ready()
        sender.ready()
        hub_cpu_before = target.cpu_seconds()
        sender.tell("go")
        sent = sender.result(timeout)
        receiver.tell(f"expect {sent['sent']}")
        received = receiver.result(timeout)
        received["hub_cpu_s"] = target.cpu_seconds() - hub_cpu_before
    return sent, received


@dataclass(frozen=True)
class PairSizes:
    """How many messages one pair measurement sends, per mode."""

    latency_samples: int  # over all rounds
    latency_warmup: int
    rounds: int
    single: int
    batched: int


def measure_pair(
    ctx: Context, scenario: str, server: PairServer, sizes: PairSizes, mode: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One chatbus pair on ``server`` in ``mode`` (latency, single, batched):
    the sender's and the receiver's reports, and the figures every scenario
    keeps of them."""
    warmup, rate, batch = 0, 0.0, 1
    if mode == "latency":
        warmup, rate = sizes.latency_warmup, ctx.sizes.latency_rate
        count = warmup + math.ceil(sizes.latency_samples / sizes.rounds)
    elif mode == "single":
        count = sizes.single
    else:
        count, batch = sizes.batched, SEND_BATCH
    sent, received = run_pair(
        ctx,
        scenario,
        "chatbus",
        count=count,
        skip=warmup,
        rate=rate,
        batch=batch,
        keep_samples=mode == "latency",
        server=server,
    )
    messages = sent["sent"]
    elapsed = (received["last_ns"] - sent["start_ns"]) / 1e9
    figures = {
        "sent": messages,
        "received": received["received"],
        "duplicates": received["duplicates"],
        "end_to_end_per_s": received["received"] / elapsed,
        "sender_cpu_us_per_message": 1e6 * sent["cpu_s"] / messages,
        "receiver_cpu_us_per_message": 1e6 * received["cpu_s"] / messages,
        "latency_samples_us": received.get("samples_us", []),
        "call_samples_us": sent.get("call_samples_us", []),
    }
    return sent, received, figures

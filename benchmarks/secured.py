"""Scenario 7, a secured hub: what the secured send path costs a DM.

Four layouts, each started by this scenario with the harness's server binary
and the persistence of every chatbus hub (AOF, fsync every second), all
running for the whole scenario and measured in rounds that alternate them:

* ``open``: one server, open (fresh, like the harness's own hub);
* ``secured``: one server started as ``chatbus server --secure`` starts it
  (:func:`chatbus.server.prepare_security`, ``HubProcess(security=...)``):
  the ``default`` user off, an ``admin``, and an ACL user per chat user;
* ``open-3m`` / ``secured-3m``: a :class:`~chatbus.local_cluster.LocalCluster`
  of 3 masters, no replica, open / with the same security.

On a secured layout each measurement's users (alice, bob, carol) are added
by the admin with :meth:`chatbus.admin.Admin.add_user` (directory entry,
account, an ACL user on every node), and the workers' :class:`Hub` log in
with ``Credentials(name, hub_secret(namespace, name, password))``: the
library then takes the secured path. A send is still one round trip, now
``SADD NS:{bob}:senders alice``, ``deliver.lua`` into alice's own stream
``NS:{bob}:from:alice`` (ringing ``NS:{bob}:bell`` with her name) and
``deliver.lua`` into her own mailbox. Bob's receiver, rung by the bell, runs
``ingest.lua`` (one more round trip, on the receiving side), which moves the
entries into his mailbox and announces them on his inbox channel, where the
listener gets them as on an open hub.

For each layout, with chatbus's own library in worker processes, as in
scenarios 1 and 2 (:func:`benchmarks.clients.run_pair`): DM latency at
``latency_rate`` from ``Mailbox.send`` to the ``Receiver``'s listener, the
sender's send call, throughput one message per round trip (``send``) and
batched (``send_many``, ``SEND_BATCH`` per round trip), CPU per message of
the sender, the receiver and the hub (``INFO cpu`` of every node), the
round trips each side makes (socket writes: on 3 masters a send writes to
alice's and bob's masters at once), and the commands the hub ran per
message (``INFO commandstats`` of every node, commands inside scripts
included).

Then, on the two single servers, each side apart (:func:`parts`, one
process): the sender alone with nobody receiving, and then a send followed
by bob's collect, one after the other: what the sending side costs without
a receiver competing for the cores, and what the collect adds.
"""

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.cluster import RedisCluster

from chatbus.acl import hub_secret
from chatbus.admin import Admin
from chatbus.config import Settings
from chatbus.errors import UnknownUser
from chatbus.local_cluster import LocalCluster, free_base_port
from chatbus.messages import SEND_BATCH, Mailbox
from chatbus.server import HubProcess, ServerBinary, ServerError, prepare_security

from .clients import PairSizes, hub_for, measure_pair, write_secrets
from .cluster import Layout as NodesLayout
from .cluster import NodeInfo, Reading, Servers, _delta, _node_figures
from .core import (
    BENCH_LEASE_TTL,
    Context,
    Row,
    ScenarioResult,
    curve,
    free_port,
    make_body,
    new_namespace,
    summarize,
)
from .worker import Control

NAME = "secured"
TITLE = "Secured hub: secured (chatbus column) against open (raw column)"
MODES = ("latency", "single", "batched")
BIND = "127.0.0.1"


@dataclass(frozen=True)
class Layout:
    key: str
    label: str
    secure: bool
    masters: int  # 0: one server


LAYOUTS = (
    Layout("open", "one server, open", False, 0),
    Layout("secured", "one server, secured", True, 0),
    Layout("open-3m", "3 masters, open", False, 3),
    Layout("secured-3m", "3 masters, secured", True, 3),
)
# (what the rows call it, the open layout, the secured one)
PAIRS = (("one server", "open", "secured"), ("3 masters", "open-3m", "secured-3m"))


# -- the servers of a layout ----------------------------------------------


class Target:
    """One layout's servers, as :func:`run_pair` sends to them.

    Open: minimal accounts, as :meth:`BenchHub.add_accounts` makes them.
    Secured: users added by the admin; :meth:`add_accounts` returns their
    hub secrets, which makes :func:`run_pair` log its workers in as them.
    Every node is read through ``servers`` (the admin's clients on a
    secured hub: its users may not run ``INFO``).
    """

    def __init__(
        self,
        layout: Layout,
        servers: Servers,
        admin_url: str | None,
        home: Path,
        stop: Callable[[], None],
    ) -> None:
        self.layout = layout
        self.servers = servers
        self.admin_url = admin_url
        self.home = home
        self._stop = stop
        self._added: list[str] = []  # the namespace whose users exist now

    @property
    def url(self) -> str:
        return self.servers.url

    def add_accounts(self, namespace: str, names: Iterable[str]) -> Mapping[str, str] | None:
        if self.admin_url is None:
            self.servers.add_accounts(namespace, names)
            return None
        names = list(names)
        # A secured hub's user names are the hub's: the previous round's go first.
        for earlier in self._added:
            with self._admin(earlier) as admin:
                for name in names:
                    with suppress(UnknownUser):
                        admin.remove_user(name)
        self._added = [namespace]
        with self._admin(namespace) as admin:
            return {name: hub_secret(namespace, name, admin.add_user(name)) for name in names}

    @contextmanager
    def _admin(self, namespace: str) -> Iterator[Admin]:
        assert self.admin_url is not None
        settings = Settings(
            url=self.admin_url, namespace=namespace, home=self.home, lease_ttl=BENCH_LEASE_TTL
        )
        admin = Admin(settings)
        try:
            yield admin
        finally:
            admin.close()

    def cpu_seconds(self) -> float:
        return self.servers.cpu_seconds()

    def stop(self) -> None:
        self._stop()


def _attempts(start: Callable[[int], Target]) -> Target:
    """``start(attempt)``, again on other ports if one got taken meanwhile."""
    for attempt in range(3):
        try:
            return start(attempt)
        except ServerError as error:
            if "in use" not in str(error) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _single(binary: ServerBinary, layout: Layout, work_dir: Path, attempt: int) -> Target:
    port = free_port()
    data_dir = work_dir / f"attempt-{attempt}"
    security = prepare_security(data_dir, secure=layout.secure, tls=False, bind=BIND, port=port)
    process = HubProcess(binary, port, data_dir, bind=BIND, security=security)
    process.start()
    try:
        client = process.client(socket_timeout=10)
    except BaseException:
        process.stop()
        raise
    nodes = [NodeInfo("hub", port, True, client)]
    servers = Servers(NodesLayout(layout.key, layout.label, 0), process.url, client, nodes)
    admin_url = process.admin_url if layout.secure else None

    def stop() -> None:
        client.close()
        process.stop()

    return Target(layout, servers, admin_url, work_dir / "home", stop)


def _cluster(binary: ServerBinary, layout: Layout, work_dir: Path, attempt: int) -> Target:
    base = free_base_port(layout.masters)
    data_dir = work_dir / f"attempt-{attempt}"
    security = prepare_security(data_dir, secure=layout.secure, tls=False, bind=BIND, port=base)
    cluster = LocalCluster(binary, base, data_dir, masters=layout.masters, security=security)
    cluster.start(timeout=60)
    try:
        masters = sorted(
            (role for role in cluster.topology() if role.is_master), key=lambda r: r.slots[0][0]
        )
        nodes = [
            NodeInfo(f"m{index + 1}", role.port, True, cluster.client(role.port, socket_timeout=10))
            for index, role in enumerate(masters)
        ]
        options = security.client_options()
        commands = RedisCluster(host=BIND, port=base, **options)
    except BaseException:
        cluster.stop()
        raise
    nodes_layout = NodesLayout(layout.key, layout.label, layout.masters)
    servers = Servers(nodes_layout, cluster.url, commands, nodes, cluster)
    admin_url = cluster.admin_url if layout.secure else None
    return Target(layout, servers, admin_url, work_dir / "home", servers.stop)


def _start(ctx: Context, layout: Layout) -> Target:
    work_dir = ctx.hub.work_dir / f"{NAME}-{layout.key}"
    binary = ctx.hub.binary
    if layout.masters:
        return _attempts(lambda attempt: _cluster(binary, layout, work_dir, attempt))
    return _attempts(lambda attempt: _single(binary, layout, work_dir, attempt))


# -- one measurement --------------------------------------------------------


def _pair(ctx: Context, target: Target, mode: str) -> dict[str, Any]:
    sizes = ctx.sizes
    pair_sizes = PairSizes(
        sizes.secured_latency_samples,
        sizes.secured_latency_warmup,
        sizes.secured_rounds,
        sizes.secured_single,
        sizes.secured_batched,
    )
    sent, received, figures = measure_pair(ctx, NAME, target, pair_sizes, mode)
    per_node = target.servers.last_window()
    messages = sent["sent"]
    commands: Counter[str] = Counter()
    for change in per_node.values():
        commands.update(change["calls"])
    return {
        **figures,
        "sender_round_trips_per_message": sent["round_trips"] / messages,
        "receiver_round_trips_per_message": received["round_trips"] / messages,
        "commands_by_name_per_message": {
            name: count / messages for name, count in sorted(commands.items())
        },
        "per_node": per_node,
        **_node_figures(target.servers, per_node, messages),
    }


# -- the two sides apart ------------------------------------------------------

_PARTS_WARMUP = 50


def parts(config: dict[str, Any], control: Control) -> None:
    """Worker role: the sending side alone, then each side in turn, in one process.

    First ``count`` sends from alice to bob with nobody receiving (on a
    secured hub nobody collects). Then, once the harness has read the hub,
    bob's client collects what waits (not measured). Then ``count`` times: a
    send, then bob's collect of alice's stream, as a receiver rung by the
    bell does it (on an open hub there is nothing to collect: no request).
    Each step is timed; the harness reads the hub between the phases.
    """
    alice_hub, bob_hub = hub_for(config, "alice"), hub_for(config, "bob")
    alice, bob = Mailbox(alice_hub, "alice"), Mailbox(bob_hub, "bob")
    size, count = config["body_size"], config["count"]
    for i in range(_PARTS_WARMUP):
        alice.send("bob", make_body(i, size, "w"))
        bob.collect(["alice"])
    control.ready()
    assert control.command() == "go"
    sends_ns: list[int] = []
    cpu_before = time.process_time()
    for i in range(count):
        began = time.perf_counter_ns()
        alice.send("bob", make_body(i, size))
        sends_ns.append(time.perf_counter_ns() - began)
    alone_cpu_s = time.process_time() - cpu_before
    control.note("sent")
    assert control.command() == "collect"
    bob.collect()
    control.note("collected")
    assert control.command() == "go"
    paired_ns: list[int] = []
    collects_ns: list[int] = []
    cpu_before = time.process_time()
    for i in range(count):
        began = time.perf_counter_ns()
        alice.send("bob", make_body(i, size, "p"))
        sent = time.perf_counter_ns()
        bob.collect(["alice"])
        collects_ns.append(time.perf_counter_ns() - sent)
        paired_ns.append(sent - began)
    paired_cpu_s = time.process_time() - cpu_before
    alice_hub.close()
    bob_hub.close()
    control.result(
        {
            "count": count,
            "alone_send_us": summarize(ns / 1000 for ns in sends_ns),
            "alone_cpu_us_per_message": 1e6 * alone_cpu_s / count,
            "paired_send_us": summarize(ns / 1000 for ns in paired_ns),
            "collect_us": summarize(ns / 1000 for ns in collects_ns),
            "paired_cpu_us_per_message": 1e6 * paired_cpu_s / count,
        }
    )


def _hub_figures(
    before: dict[str, Reading], after: dict[str, Reading], count: int
) -> dict[str, Any]:
    per_node = _delta(before, after)
    commands: Counter[str] = Counter()
    for change in per_node.values():
        commands.update(change["calls"])
    return {
        "hub_cpu_us_per_message": 1e6 * sum(c["cpu_s"] for c in per_node.values()) / count,
        "commands_per_message": sum(commands.values()) / count,
        "commands_by_name_per_message": {name: n / count for name, n in sorted(commands.items())},
    }


def _parts(ctx: Context, target: Target) -> dict[str, Any]:
    namespace = new_namespace(f"{NAME}-parts")
    secrets = target.add_accounts(namespace, ["alice", "bob"])
    config = ctx.worker_config(
        url=target.url,
        namespace=namespace,
        count=ctx.sizes.secured_parts,
        body_size=ctx.sizes.body_size,
    )
    if secrets:
        config["credentials_file"] = write_secrets(ctx, namespace, secrets)
    servers = target.servers
    timeout = 60 + ctx.sizes.secured_parts / 100
    with ctx.workers.group() as start:
        worker = start(f"{NAME}:parts", config)
        worker.ready()
        readings = [servers.read()]
        worker.tell("go")
        worker.wait_for("note", timeout)
        readings.append(servers.read())
        worker.tell("collect")
        worker.wait_for("note", timeout)
        readings.append(servers.read())
        worker.tell("go")
        result = worker.result(timeout)
        readings.append(servers.read())
    count = result["count"]
    return {
        **result,
        "alone_hub": _hub_figures(readings[0], readings[1], count),
        "paired_hub": _hub_figures(readings[2], readings[3], count),
    }


def _summarize_parts(ones: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds of :func:`_parts`."""

    def median(*path: str) -> float:
        return statistics.median(_figure(one, path) for one in ones)

    phases = ("alone_hub", "paired_hub")
    return {
        "count": sum(one["count"] for one in ones),
        "alone_send_p50_us": median("alone_send_us", "p50"),
        "alone_sender_cpu_us_per_message": median("alone_cpu_us_per_message"),
        "paired_send_p50_us": median("paired_send_us", "p50"),
        "collect_p50_us": median("collect_us", "p50"),
        "paired_client_cpu_us_per_message": median("paired_cpu_us_per_message"),
        **{
            phase: {
                "hub_cpu_us_per_message": median(phase, "hub_cpu_us_per_message"),
                "commands_per_message": median(phase, "commands_per_message"),
                "commands_by_name_per_message": {
                    name: statistics.median(
                        one[phase]["commands_by_name_per_message"].get(name, 0.0) for one in ones
                    )
                    for name in sorted(
                        {n for one in ones for n in one[phase]["commands_by_name_per_message"]}
                    )
                },
            }
            for phase in phases
        },
        "rounds": ones,
    }


def _median(ones: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(one[key]) for one in ones)


def _summarize(measured: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    latency = [us for one in measured["latency"] for us in one["latency_samples_us"]]
    calls = [us for one in measured["latency"] for us in one["call_samples_us"]]
    summary: dict[str, Any] = {
        "latency_us": summarize(latency),
        "latency_curve_us": curve(latency),
        "send_call_us": summarize(calls),
    }
    for mode in MODES:
        ones = measured[mode]
        names = sorted({name for one in ones for name in one["commands_by_name_per_message"]})
        summary[mode] = {
            "end_to_end_per_s": _median(ones, "end_to_end_per_s"),
            "rounds_per_s": [one["end_to_end_per_s"] for one in ones],
            "sender_cpu_us_per_message": _median(ones, "sender_cpu_us_per_message"),
            "receiver_cpu_us_per_message": _median(ones, "receiver_cpu_us_per_message"),
            "hub_cpu_us_per_message": _median(ones, "hub_cpu_us_per_message"),
            "cpu_us_per_message": {
                label: statistics.median(one["cpu_us_per_message"][label] for one in ones)
                for label in ones[0]["cpu_us_per_message"]
            },
            "commands_per_message": statistics.median(
                sum(one["commands_by_name_per_message"].values()) for one in ones
            ),
            "commands_by_name_per_message": {
                name: statistics.median(
                    one["commands_by_name_per_message"].get(name, 0.0) for one in ones
                )
                for name in names
            },
            "sender_round_trips_per_message": _median(ones, "sender_round_trips_per_message"),
            "receiver_round_trips_per_message": _median(ones, "receiver_round_trips_per_message"),
        }
    everything = [one for ones in measured.values() for one in ones]
    summary["sent"] = sum(one["sent"] for one in everything)
    summary["received"] = sum(one["received"] for one in everything)
    summary["duplicates"] = sum(one["duplicates"] for one in everything)
    return summary


def run(ctx: Context) -> ScenarioResult:
    sizes = ctx.sizes
    targets: dict[str, Target] = {}
    try:
        for layout in LAYOUTS:
            ctx.say(f"secured: starting {layout.label}")
            targets[layout.key] = _start(ctx, layout)
        measured: dict[str, dict[str, list[dict[str, Any]]]] = {
            layout.key: {mode: [] for mode in MODES} for layout in LAYOUTS
        }
        apart: dict[str, list[dict[str, Any]]] = {
            layout.key: [] for layout in LAYOUTS if not layout.masters
        }
        for round_number in range(1, sizes.secured_rounds + 1):
            for mode in MODES:
                for layout in LAYOUTS:
                    ctx.say(
                        f"secured: round {round_number}/{sizes.secured_rounds}, {layout.label},"
                        f" {mode}"
                    )
                    measured[layout.key][mode].append(_pair(ctx, targets[layout.key], mode))
            for layout in LAYOUTS:
                if not layout.masters:
                    ctx.say(
                        f"secured: round {round_number}/{sizes.secured_rounds}, {layout.label},"
                        " each side apart"
                    )
                    apart[layout.key].append(_parts(ctx, targets[layout.key]))
        nodes = {key: target.servers.describe() for key, target in targets.items()}
    finally:
        for target in targets.values():
            target.stop()
    runs = {layout.key: _summarize(measured[layout.key]) for layout in LAYOUTS}
    for layout in LAYOUTS:
        runs[layout.key]["label"] = layout.label
        runs[layout.key]["nodes"] = nodes[layout.key]
    for key, ones in apart.items():
        runs[key]["apart"] = _summarize_parts(ones)
    lost = sum(r["sent"] - r["received"] for r in runs.values())
    return ScenarioResult(NAME, TITLE, _rows(runs), lost, {"runs": runs})


def _figure(run: dict[str, Any], path: tuple[str, ...]) -> float:
    found: Any = run
    for step in path:
        found = found[step]
    return float(found)


# (row, unit, where in a layout's summary)
_FIGURES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("latency p50", "us", ("latency_us", "p50")),
    ("latency p99", "us", ("latency_us", "p99")),
    ("send call p50", "us", ("send_call_us", "p50")),
    ("unpipelined msg/s", "msg/s", ("single", "end_to_end_per_s")),
    (f"batched ({SEND_BATCH}/trip) msg/s", "msg/s", ("batched", "end_to_end_per_s")),
    ("hub CPU per message, unpipelined", "us", ("single", "hub_cpu_us_per_message")),
    ("hub CPU per message, batched", "us", ("batched", "hub_cpu_us_per_message")),
    ("hub commands per message, unpipelined", "", ("single", "commands_per_message")),
    ("hub commands per message, batched", "", ("batched", "commands_per_message")),
    ("sender CPU per message, unpipelined", "us", ("single", "sender_cpu_us_per_message")),
    ("receiver CPU per message, unpipelined", "us", ("single", "receiver_cpu_us_per_message")),
    ("sender round trips per send", "", ("latency", "sender_round_trips_per_message")),
    (
        "receiver round trips per message, 1,000 msg/s",
        "",
        ("latency", "receiver_round_trips_per_message"),
    ),
)


# Each side apart (one server, one process): the sender alone, then send + collect.
_APART: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("sender alone: send call p50", "us", ("alone_send_p50_us",)),
    ("sender alone: its CPU per message", "us", ("alone_sender_cpu_us_per_message",)),
    ("sender alone: hub CPU per message", "us", ("alone_hub", "hub_cpu_us_per_message")),
    ("sender alone: hub commands per message", "", ("alone_hub", "commands_per_message")),
    ("send then collect: collect call p50", "us", ("collect_p50_us",)),
    ("send then collect: hub CPU per message", "us", ("paired_hub", "hub_cpu_us_per_message")),
    ("send then collect: hub commands per message", "", ("paired_hub", "commands_per_message")),
)


def _rows(runs: dict[str, dict[str, Any]]) -> list[Row]:
    """Secured in the chatbus column, open in the raw one: the ratio is secured / open."""
    rows: list[Row] = []
    for where, open_key, secured_key in PAIRS:
        opened, secured = runs[open_key], runs[secured_key]
        for metric, unit, path in _FIGURES:
            rows.append(
                Row(f"{where}: {metric}", unit, _figure(secured, path), _figure(opened, path))
            )
        rows.append(
            Row(
                f"{where}: security's cost per message, unpipelined",
                "us",
                1e6 / secured["single"]["end_to_end_per_s"]
                - 1e6 / opened["single"]["end_to_end_per_s"],
            )
        )
    opened, secured = runs["open"]["apart"], runs["secured"]["apart"]
    for metric, unit, path in _APART:
        rows.append(
            Row(f"one server, {metric}", unit, _figure(secured, path), _figure(opened, path))
        )
    return rows

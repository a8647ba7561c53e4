"""Scenario 6, Redis Cluster: DMs on 1 and 3 masters, WAIT's cost, how the load spreads.

Four layouts, all running for the whole scenario, measured in rounds that
alternate them (as the other scenarios alternate chatbus and the baselines):

* ``single``: the harness's own hub, one plain server (the reference);
* ``1m``: a cluster of 1 master, no replica;
* ``3m``: 3 masters, no replica;
* ``3m+r``: 3 masters with a replica each, so every send also waits for a
  replica (``WAIT 1 1000`` after the script calls, see chatbus/lua.py).

For each layout, with chatbus's own library in worker processes, as in
scenarios 1 and 2 (:func:`benchmarks.clients.run_pair`): DM latency at
``latency_rate`` (``Mailbox.send`` to a ``Receiver``), and throughput one
message per round trip (``send``) and batched (``send_many``). The pair is
alice -> bob, whose mailboxes are on two different masters of a 3-master
cluster, as two of three random pairs are. Then a spread run: ``cluster_users``
users, ``cluster_messages`` sends between random pairs (the same pairs on every
layout), one ``Mailbox.send`` each, from one process.

Every node (replicas too) is read before and after each measurement: ``INFO
cpu`` (user + sys) gives each node's CPU per message, ``INFO commandstats``
the commands each master ran (including those its scripts ran), SPUBLISH among
them: the pub/sub traffic, since a sharded channel lives on its slot's master.
``DBSIZE`` before and after the spread run gives the keys each master holds.

All nodes and all clients share the machine's cores, so a cluster here is
not expected to be faster than one server: what it shows is the cost per
message of cluster mode, of two masters per send, and of WAIT, and whether
keys, commands and pub/sub spread evenly over the masters.
"""

import math
import random
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from chatbus.hub import Hub
from chatbus.keys import Keys
from chatbus.local_cluster import LocalCluster, free_base_port
from chatbus.messages import Mailbox
from chatbus.server import ServerBinary, ServerError

from .clients import PairSizes, measure_pair, settings_for
from .core import Context, Row, ScenarioResult, curve, make_body, new_namespace, summarize
from .worker import Control

NAME = "cluster"
TITLE = "Redis Cluster: DMs on 1 and 3 masters, WAIT, spread over masters"

# Commands that are the harness's own readings, not the clients' traffic.
_PROBES = frozenset({"info", "dbsize"})
_SPREAD_SEED = 9
_SPREAD_WARMUP = 30


@dataclass(frozen=True)
class Layout:
    key: str
    label: str
    masters: int  # 0: the harness's single server
    replicas: int = 0


LAYOUTS = (
    Layout("single", "single server", 0),
    Layout("1m", "1 master", 1),
    Layout("3m", "3 masters", 3),
    Layout("3m+r", "3 masters + 1 replica each", 3, 1),
)


# -- the servers of a layout -----------------------------------------------


@dataclass
class NodeInfo:
    label: str  # m1, m2, m3 by slot range; r1 is m1's replica; "hub" for the single server
    port: int
    master: bool
    client: redis.Redis


@dataclass
class Reading:
    """One node's counters at one moment."""

    cpu_s: float
    calls: dict[str, int]
    net_in: int
    net_out: int


def _read_node(client: redis.Redis) -> Reading:
    info: dict[str, Any] = client.info("cpu", "commandstats", "stats")
    calls = {
        key.removeprefix("cmdstat_"): int(value["calls"])
        for key, value in info.items()
        if key.startswith("cmdstat_")
    }
    return Reading(
        cpu_s=float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        calls=calls,
        net_in=int(info.get("total_net_input_bytes", 0)),
        net_out=int(info.get("total_net_output_bytes", 0)),
    )


def _delta(before: dict[str, Reading], after: dict[str, Reading]) -> dict[str, dict[str, Any]]:
    """Per node: CPU seconds, commands by name (probes left out), bytes in and out."""
    changes: dict[str, dict[str, Any]] = {}
    for label, end in after.items():
        start = before[label]
        calls = {
            name: count - start.calls.get(name, 0)
            for name, count in end.calls.items()
            if name not in _PROBES and count != start.calls.get(name, 0)
        }
        changes[label] = {
            "cpu_s": end.cpu_s - start.cpu_s,
            "calls": calls,
            "net_in": end.net_in - start.net_in,
            "net_out": end.net_out - start.net_out,
        }
    return changes


class Servers:
    """The nodes of one layout, read before and after each measurement.

    :meth:`cpu_seconds` (which :func:`run_pair` calls just before "go" and
    after the receiver's result) keeps each node's reading in ``readings``,
    so the per-node figures cover exactly the pair's measured window.
    """

    def __init__(
        self,
        layout: Layout,
        url: str,
        commands: redis.Redis | RedisCluster,
        nodes: list[NodeInfo],
        cluster: LocalCluster | None = None,
    ) -> None:
        self.layout = layout
        self.url = url
        self.commands = commands
        self.nodes = nodes
        self.cluster = cluster
        self.readings: list[dict[str, Reading]] = []

    @property
    def masters(self) -> list[NodeInfo]:
        return [node for node in self.nodes if node.master]

    def add_accounts(self, namespace: str, names: Iterable[str]) -> None:
        """Minimal accounts, as :meth:`BenchHub.add_accounts` makes them."""
        keys = Keys(namespace)
        pipe = self.commands.pipeline(transaction=False)
        for name in names:
            pipe.hset(keys.account(name), "name", name)
        pipe.execute()

    def read(self) -> dict[str, Reading]:
        return {node.label: _read_node(node.client) for node in self.nodes}

    def cpu_seconds(self) -> float:
        reading = self.read()
        self.readings.append(reading)
        return sum(one.cpu_s for one in reading.values())

    def last_window(self) -> dict[str, dict[str, Any]]:
        """Per-node changes between the last two :meth:`cpu_seconds` calls."""
        return _delta(self.readings[-2], self.readings[-1])

    def keys_per_master(self) -> dict[str, int]:
        return {node.label: int(node.client.dbsize()) for node in self.masters}

    def mailbox_entries(self, namespace: str, names: list[str]) -> int:
        keys = Keys(namespace)
        pipe = self.commands.pipeline(transaction=False)
        for name in names:
            pipe.xlen(keys.mailbox(name))
        return sum(int(n) for n in pipe.execute())

    def describe(self) -> list[dict[str, Any]]:
        return [{"label": n.label, "port": n.port, "master": n.master} for n in self.nodes]

    def stop(self) -> None:
        if self.cluster is None:
            return  # the harness's own hub: the harness stops it
        self.commands.close()
        for node in self.nodes:
            node.client.close()
        self.cluster.stop()


def _start_cluster(binary: ServerBinary, layout: Layout, data_dir: Path) -> LocalCluster:
    """A healthy local cluster on free ports; another try if a port got taken meanwhile."""
    count = layout.masters * (1 + layout.replicas)
    for attempt in range(3):
        cluster = LocalCluster(
            binary,
            free_base_port(count),
            data_dir / f"attempt-{attempt}",
            masters=layout.masters,
            replicas=layout.replicas,
        )
        try:
            cluster.start(timeout=60)
        except ServerError as error:
            if "in use" not in str(error) or attempt == 2:
                raise
        else:
            return cluster
    raise AssertionError("unreachable")


def _node_client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


def _cluster_servers(ctx: Context, layout: Layout, work_dir: Path) -> Servers:
    cluster = _start_cluster(ctx.hub.binary, layout, work_dir / f"cluster-{layout.key}")
    try:
        roles = cluster.topology()
        masters = sorted((r for r in roles if r.is_master), key=lambda r: r.slots[0][0])
        number = {master.port: index + 1 for index, master in enumerate(masters)}
        nodes = [
            NodeInfo(f"m{number[r.port]}", r.port, True, _node_client(r.port)) for r in masters
        ]
        replicas = sorted((r for r in roles if not r.is_master), key=lambda r: r.port)
        for role in replicas:
            assert role.master_port is not None
            label = f"r{number[role.master_port]}"
            nodes.append(NodeInfo(label, role.port, False, _node_client(role.port)))
        commands = RedisCluster.from_url(cluster.url)
    except BaseException:
        cluster.stop()
        raise
    return Servers(layout, cluster.url, commands, nodes, cluster)


def _single_servers(ctx: Context, layout: Layout) -> Servers:
    hub = ctx.hub
    port = int(hub.url.rsplit(":", 1)[1].split("/")[0])
    return Servers(layout, hub.url, hub.redis, [NodeInfo("hub", port, True, hub.redis)])


# -- the spread run's worker ------------------------------------------------


def spread(config: dict[str, Any], control: Control) -> None:
    """Worker role: ``count`` sends between random pairs of ``names``, one
    ``Mailbox.send`` each, after a warm-up that connects to every master."""
    hub = Hub(settings_for(config))
    names: list[str] = config["names"]
    mailboxes = {name: Mailbox(hub, name) for name in names}
    chooser = random.Random(config["seed"])

    def pair() -> tuple[str, str]:
        sender, recipient = chooser.sample(names, 2)
        return sender, recipient

    for i in range(config["warmup"]):
        sender, recipient = pair()
        mailboxes[sender].send(recipient, make_body(i, config["body_size"], "w"))
    pairs = [pair() for _ in range(config["count"])]
    calls_ns: list[int] = []
    control.ready()
    assert control.command() == "go"
    cpu_before = time.process_time()
    start = time.perf_counter_ns()
    for i, (sender, recipient) in enumerate(pairs):
        began = time.perf_counter_ns()
        mailboxes[sender].send(recipient, make_body(i, config["body_size"]))
        calls_ns.append(time.perf_counter_ns() - began)
    elapsed = (time.perf_counter_ns() - start) / 1e9
    cpu_s = time.process_time() - cpu_before
    hub.close()
    control.result(
        {
            "sent": len(pairs),
            "warmup": config["warmup"],
            "per_s": len(pairs) / elapsed,
            "cpu_s": cpu_s,
            "call_us": summarize(ns / 1000 for ns in calls_ns),
        }
    )


def _spread_run(ctx: Context, servers: Servers) -> dict[str, Any]:
    sizes = ctx.sizes
    namespace = new_namespace(f"{NAME}-spread")
    names = [f"u{i:03d}" for i in range(sizes.cluster_users)]
    keys_before = servers.keys_per_master()
    servers.add_accounts(namespace, names)
    config = ctx.worker_config(
        url=servers.url,
        namespace=namespace,
        names=names,
        count=sizes.cluster_messages,
        warmup=_SPREAD_WARMUP,
        seed=_SPREAD_SEED,
        body_size=sizes.body_size,
    )
    with ctx.workers.group() as start:
        worker = start("cluster:spread", config)
        worker.ready()
        before = servers.read()
        worker.tell("go")
        sent = worker.result(timeout=60 + sizes.cluster_messages / 200)
        after = servers.read()
    keys_after = servers.keys_per_master()
    stored = servers.mailbox_entries(namespace, names)
    messages = sent["sent"] + sent["warmup"]
    per_node = _delta(before, after)
    return {
        "users": len(names),
        "sent": sent["sent"],
        "per_s": sent["per_s"],
        "sender_cpu_us_per_message": 1e6 * sent["cpu_s"] / sent["sent"],
        "call_us": sent["call_us"],
        # Each message is stored twice: the recipient's mailbox and the sender's.
        "lost": 2 * messages - stored,
        "keys": {label: keys_after[label] - keys_before[label] for label in keys_after},
        "per_node": per_node,
        **_node_figures(servers, per_node, sent["sent"]),
    }


# -- figures ------------------------------------------------------------------


def _share(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {label: 100 * n / total if total else math.nan for label, n in counts.items()}


def _node_figures(
    servers: Servers, per_node: dict[str, dict[str, Any]], messages: int
) -> dict[str, Any]:
    masters = [node.label for node in servers.masters]
    commands = {label: sum(per_node[label]["calls"].values()) for label in masters}
    spublish = {label: per_node[label]["calls"].get("spublish", 0) for label in masters}
    return {
        "cpu_us_per_message": {
            label: 1e6 * change["cpu_s"] / messages for label, change in per_node.items()
        },
        "hub_cpu_us_per_message": 1e6 * sum(c["cpu_s"] for c in per_node.values()) / messages,
        "commands_per_message": {label: n / messages for label, n in commands.items()},
        "commands_share": _share(commands),
        "spublish": spublish,
        "spublish_share": _share(spublish),
        "net_out_share": _share({label: per_node[label]["net_out"] for label in masters}),
        "wait_calls": sum(change["calls"].get("wait", 0) for change in per_node.values()),
    }


def _pair(ctx: Context, servers: Servers, mode: str) -> dict[str, Any]:
    sizes = ctx.sizes
    pair_sizes = PairSizes(
        sizes.cluster_latency_samples,
        sizes.cluster_latency_warmup,
        sizes.cluster_rounds,
        sizes.cluster_single,
        sizes.cluster_batched,
    )
    sent, _, figures = measure_pair(ctx, NAME, servers, pair_sizes, mode)
    per_node = servers.last_window()
    return {**figures, "per_node": per_node, **_node_figures(servers, per_node, sent["sent"])}


def _median_by_node(ones: list[dict[str, Any]], key: str) -> dict[str, float]:
    return {label: statistics.median(one[key][label] for one in ones) for label in ones[0][key]}


def _summarize_layout(measured: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    latency = [us for one in measured["latency"] for us in one["latency_samples_us"]]
    calls = [us for one in measured["latency"] for us in one["call_samples_us"]]
    summary: dict[str, Any] = {
        "latency_us": summarize(latency),
        "latency_curve_us": curve(latency),
        "send_call_us": summarize(calls),
    }
    for mode in ("single", "batched"):
        ones = measured[mode]
        summary[mode] = {
            "end_to_end_per_s": statistics.median(one["end_to_end_per_s"] for one in ones),
            "rounds_per_s": [one["end_to_end_per_s"] for one in ones],
            "sender_cpu_us_per_message": statistics.median(
                one["sender_cpu_us_per_message"] for one in ones
            ),
            "receiver_cpu_us_per_message": statistics.median(
                one["receiver_cpu_us_per_message"] for one in ones
            ),
            "hub_cpu_us_per_message": statistics.median(
                one["hub_cpu_us_per_message"] for one in ones
            ),
            "cpu_us_per_message": _median_by_node(ones, "cpu_us_per_message"),
            "commands_per_message": _median_by_node(ones, "commands_per_message"),
            "wait_calls_per_message": statistics.median(
                one["wait_calls"] / one["sent"] for one in ones
            ),
        }
    everything = [one for ones in measured.values() for one in ones]
    summary["sent"] = sum(one["sent"] for one in everything)
    summary["received"] = sum(one["received"] for one in everything)
    summary["duplicates"] = sum(one["duplicates"] for one in everything)
    return summary


@dataclass
class _Layouts:
    servers: dict[str, Servers] = field(default_factory=dict)

    def stop(self) -> None:
        for servers in self.servers.values():
            servers.stop()


def run(ctx: Context) -> ScenarioResult:
    sizes = ctx.sizes
    work_dir = ctx.hub.work_dir
    started = _Layouts()
    try:
        for layout in LAYOUTS:
            if layout.masters:
                ctx.say(f"cluster: starting {layout.label}")
                started.servers[layout.key] = _cluster_servers(ctx, layout, work_dir)
            else:
                started.servers[layout.key] = _single_servers(ctx, layout)
        measured: dict[str, dict[str, list[dict[str, Any]]]] = {
            layout.key: {"latency": [], "single": [], "batched": []} for layout in LAYOUTS
        }
        for round_number in range(1, sizes.cluster_rounds + 1):
            for mode in ("latency", "single", "batched"):
                for layout in LAYOUTS:
                    ctx.say(
                        f"cluster: round {round_number}/{sizes.cluster_rounds}, {layout.label},"
                        f" {mode}"
                    )
                    one = _pair(ctx, started.servers[layout.key], mode)
                    measured[layout.key][mode].append(one)
        spreads = {}
        for layout in LAYOUTS:
            ctx.say(
                f"cluster: spread, {layout.label}, {sizes.cluster_users} users,"
                f" {sizes.cluster_messages} sends"
            )
            spreads[layout.key] = _spread_run(ctx, started.servers[layout.key])
        nodes = {key: servers.describe() for key, servers in started.servers.items()}
    finally:
        started.stop()
    runs = {layout.key: _summarize_layout(measured[layout.key]) for layout in LAYOUTS}
    for key, run_ in runs.items():
        run_["spread"] = spreads[key]
        run_["nodes"] = nodes[key]
        run_["label"] = next(layout.label for layout in LAYOUTS if layout.key == key)
    lost = sum(r["sent"] - r["received"] for r in runs.values())
    lost += sum(r["spread"]["lost"] for r in runs.values())
    return ScenarioResult(NAME, TITLE, _rows(runs), lost, {"runs": runs})


def _rows(runs: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    for layout in LAYOUTS:
        r = runs[layout.key]
        name = layout.label
        rows += [
            Row(f"{name}: latency p50", "us", r["latency_us"]["p50"]),
            Row(f"{name}: latency p99", "us", r["latency_us"]["p99"]),
            Row(f"{name}: send call p50", "us", r["send_call_us"]["p50"]),
            Row(f"{name}: unpipelined msg/s", "msg/s", r["single"]["end_to_end_per_s"]),
            Row(f"{name}: batched msg/s", "msg/s", r["batched"]["end_to_end_per_s"]),
            Row(
                f"{name}: nodes' CPU per message, unpipelined",
                "us",
                r["single"]["hub_cpu_us_per_message"],
            ),
            Row(
                f"{name}: nodes' CPU per message, batched",
                "us",
                r["batched"]["hub_cpu_us_per_message"],
            ),
            Row(
                f"{name}: nodes' CPU per message, {r['spread']['users']} users",
                "us",
                r["spread"]["hub_cpu_us_per_message"],
            ),
        ]
    bare, waiting = runs["3m"], runs["3m+r"]
    rows += [
        Row(
            "WAIT's cost per send: call p50, 3 masters + replicas - 3 masters",
            "us",
            waiting["send_call_us"]["p50"] - bare["send_call_us"]["p50"],
        ),
        Row(
            "WAIT's cost per send: unpipelined time per message, the same",
            "us",
            1e6 / waiting["single"]["end_to_end_per_s"] - 1e6 / bare["single"]["end_to_end_per_s"],
        ),
    ]
    for key in ("3m", "3m+r"):
        spread_ = runs[key]["spread"]
        label = runs[key]["label"]
        masters = [node["label"] for node in runs[key]["nodes"] if node["master"]]
        cpu = spread_["cpu_us_per_message"]
        rows += [
            Row(f"{label}: keys on the fullest master", "%", max(_share(spread_["keys"]).values())),
            Row(
                f"{label}: commands on the busiest master",
                "%",
                max(spread_["commands_share"].values()),
            ),
            Row(
                f"{label}: SPUBLISH on the busiest master",
                "%",
                max(spread_["spublish_share"].values()),
            ),
            Row(
                f"{label}: busiest master's CPU per message",
                "us",
                max(cpu[master] for master in masters),
            ),
        ]
    return rows

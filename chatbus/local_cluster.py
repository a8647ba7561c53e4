"""A local Redis Cluster: masters and replicas run from the hub's server binary.

``chatbus server --cluster N`` and the test fixtures use :class:`LocalCluster`.
Layout, for a base port BASE, M masters and R replicas per master:

- masters listen on BASE .. BASE+M-1, replicas on the ports after them; each
  node's cluster bus listens on its port + 10000;
- each node has a folder ``node-PORT`` in the data dir holding its
  ``nodes.conf`` (the cluster's shape as that node knows it), its append-only
  file and its ``server.log``.

The first start forms the cluster: the 16384 slots split evenly over the
masters, every node introduced to the first, replicas attached to masters in
turn. A later start with the same data dir only starts the nodes: they find
each other again from their ``nodes.conf``, keeping their ids, roles and data.

Replicas are refused with fewer than 3 masters: a failover needs the votes of
a majority of masters, so with 1 or 2 a replica would never take over and
only look like a safety net.

Secured (a :class:`HubSecurity` with an admin), every node has its own
``users.acl`` and ``server.conf`` in its folder: ACL users are per node and
never travel over the cluster bus (Redis #7988, Valkey #699), so the first
start gives every node, replicas included, the same users, and each later
start (or restart of a node) first copies the newest ``users.acl`` over any
node whose file differs. Replicas log in to their master as ``replicator``.
With TLS, the nodes speak TLS to clients, to each other (``tls-cluster``)
and for replication (``tls-replication``). Forming and health checks log in
as the admin, over TLS when on.
"""

import contextlib
import ipaddress
import random
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import redis
from redis.crc import key_slot

from .server import (
    OPEN_HUB,
    HubProcess,
    HubSecurity,
    ServerBinary,
    ServerError,
    client_host,
    default_data_dir,
    no_retry,
    port_in_use,
)
from .tls import write_private

SLOTS = 16384
BUS_PORT_OFFSET = 10000
MIN_MASTERS_FOR_REPLICAS = 3
# How long a node may be unreachable before the others call it failed and its
# replica takes over. Long enough for a busy laptop, short enough to watch.
DEFAULT_NODE_TIMEOUT_MS = 5000
_POLL_INTERVAL = 0.05
_TERM_AGAIN_AFTER = 0.5
# Flags in CLUSTER NODES that say a node is not (yet) a working member.
_UNWELL_FLAGS = frozenset({"fail", "fail?", "handshake", "noaddr"})


def default_cluster_data_dir(base_port: int) -> Path:
    """``cluster-BASE`` beside the single hubs' ``hub-PORT`` folders."""
    return default_data_dir(base_port).with_name(f"cluster-{base_port}")


def cluster_node_args(node_timeout_ms: int = DEFAULT_NODE_TIMEOUT_MS) -> tuple[str, ...]:
    """Server arguments that make a node of a chatbus cluster (persistence apart).

    ``repl-diskless-sync-delay 0`` sends a new replica its first copy at once:
    until that first sync a replica can never take over from its master.
    """
    return (
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", str(node_timeout_ms),
        "--repl-diskless-sync-delay", "0",
    )  # fmt: skip


@dataclass(frozen=True)
class NodeRole:
    """One running node as the cluster sees it."""

    port: int
    node_id: str
    pid: int
    master_port: int | None  # None for a master
    slots: tuple[tuple[int, int], ...]  # inclusive ranges, masters only

    @property
    def is_master(self) -> bool:
        return self.master_port is None

    def serves(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.slots)

    def describe(self) -> str:
        if self.master_port is not None:
            return f"replica of {self.master_port}"
        ranges = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in self.slots)
        return f"master, slots {ranges or 'none'}"


@dataclass(frozen=True)
class _Peer:
    """One line of CLUSTER NODES."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]


def _parse_slot(field: str) -> tuple[int, int]:
    first, _, last = field.partition("-")
    return int(first), int(last or first)


def _parse_cluster_nodes(text: str) -> list[_Peer]:
    peers = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        node_id, address, flags, master = fields[:4]
        # "127.0.0.1:7000@17000[,hostname]"; a node with no address yet is ":0@0".
        port = int(address.split("@")[0].rpartition(":")[2] or 0)
        slots = tuple(_parse_slot(f) for f in fields[8:] if not f.startswith("["))
        master_id = None if master == "-" else master
        peers.append(_Peer(node_id, port, frozenset(flags.split(",")), master_id, slots))
    return peers


def _client(host: str, port: int, security: HubSecurity = OPEN_HUB) -> redis.Redis:
    return redis.Redis(
        host=client_host(host),
        port=port,
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
        retry=no_retry(),  # every caller polls: a node that is not ready is said at once
        **security.client_options(),
    )


def _info_fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@dataclass(frozen=True)
class _NodeView:
    """What one node says about itself and the cluster."""

    port: int
    cluster: dict[str, str]
    replication: dict[str, str]
    peers: list[_Peer]
    acl: tuple[str, ...] = ()  # ACL LIST, on a secured cluster (see _acl_signature)

    @classmethod
    def read(cls, host: str, port: int, security: HubSecurity = OPEN_HUB) -> "_NodeView":
        with _client(host, port, security) as client:
            cluster = _info_fields(client.execute_command("CLUSTER", "INFO"))
            replication = {k: str(v) for k, v in client.info("replication").items()}
            peers = _parse_cluster_nodes(client.execute_command("CLUSTER", "NODES"))
            acl = _acl_signature(client.acl_list()) if security.acl else ()
        return cls(port, cluster, replication, peers, acl)

    @property
    def is_replica(self) -> bool:
        return self.replication.get("role") == "slave"

    @property
    def is_fresh(self) -> bool:
        """True for a node that was never part of a cluster."""
        info = self.cluster
        return info.get("cluster_known_nodes") == "1" and info.get("cluster_slots_assigned") == "0"

    def problem(self, ports: set[int]) -> str | None:
        """What this node sees wrong among the nodes at ``ports``, or None."""
        state = self.cluster.get("cluster_state")
        if state != "ok":
            return f"node {self.port} says cluster_state:{state}"
        served = int(self.cluster.get("cluster_slots_ok", 0))
        if served != SLOTS:
            return f"node {self.port} sees {served} of {SLOTS} slots served"
        link = self.replication.get("master_link_status")
        if self.is_replica and link != "up":
            return f"node {self.port} is a replica whose link to its master is {link}"
        known = {peer.port: peer for peer in self.peers}
        for port in sorted(ports):
            if port not in known:
                return f"node {self.port} does not know node {port} yet"
            unwell = known[port].flags & _UNWELL_FLAGS
            if unwell:
                return f"node {self.port} sees node {port} as {','.join(sorted(unwell))}"
        return None


def _acl_signature(users: Iterable[str]) -> tuple[str, ...]:
    """ACL LIST in a form two nodes with the same users agree on.

    Redis 7.0 lists a user's single-command rules (``+psync +replconf
    +ping``) in its hash table's order, which differs from process to
    process: each user's rules are compared as a set.
    """
    return tuple(sorted(" ".join(sorted(user.split())) for user in users))


def cluster_problem(
    host: str, ports: Iterable[int], masters: int, security: HubSecurity = OPEN_HUB
) -> str | None:
    """Why the nodes at ``host:ports`` are not a healthy cluster yet, or None.

    Healthy: each node says ``cluster_state:ok`` with all 16384 slots served
    and sees every other one as a working member, ``masters`` of them are
    masters, and each replica's link to its master is up (it has its copy).
    On a secured cluster (read as ``security``'s admin), every node also has
    the same ACL users.
    """
    wanted = set(ports)
    views = []
    for port in sorted(wanted):
        try:
            views.append(_NodeView.read(host, port, security))
        except redis.RedisError as error:
            return f"node {port} does not answer: {error}"
    for view in views:
        problem = view.problem(wanted)
        if problem:
            return problem
    found = sum(not view.is_replica for view in views)
    if found != masters:
        return f"{found} nodes are masters, not {masters}"
    for view in views[1:]:
        if view.acl != views[0].acl:
            return f"node {view.port}'s ACL users differ from node {views[0].port}'s"
    return None


class LocalCluster:
    """Masters and replicas in the foreground, each in a session of its own.

    ``start`` forms the cluster (or lets it re-form from the nodes' configs)
    and returns once it is healthy; ``stop`` stops every node, also after a
    start that failed halfway. The ``kill_node``, ``restart_node`` and
    ``wait_healthy`` helpers are for tests of failures.
    """

    def __init__(
        self,
        binary: ServerBinary,
        base_port: int,
        data_dir: Path,
        *,
        masters: int = 3,
        replicas: int = 0,
        bind: str = "127.0.0.1",
        node_timeout_ms: int = DEFAULT_NODE_TIMEOUT_MS,
        security: HubSecurity = OPEN_HUB,
    ) -> None:
        _check_shape(masters, replicas)
        _check_bind(bind)
        self.masters = masters
        self.replicas = replicas
        self.bind = bind
        self.data_dir = data_dir
        self.node_timeout_ms = node_timeout_ms
        count = masters * (1 + replicas)
        last_bus_port = base_port + count - 1 + BUS_PORT_OFFSET
        if base_port < 1 or last_bus_port > 65535:
            raise ServerError(
                f"{count} nodes from port {base_port} need ports up to {last_bus_port} for "
                f"their cluster bus (port + {BUS_PORT_OFFSET}): choose a port from 1 to "
                f"{65535 - BUS_PORT_OFFSET - count + 1}"
            )
        self.nodes = tuple(
            HubProcess(
                binary,
                port,
                data_dir / f"node-{port}",
                bind=bind,
                extra_args=cluster_node_args(node_timeout_ms),
                security=security,
            )
            for port in range(base_port, base_port + count)
        )
        # True once start() has formed a new cluster, False if it re-formed one.
        self.formed = False
        # {port: port}: nodes whose users.acl the last start replaced, and whose it copied.
        self.acl_copied: dict[int, int] = {}

    @property
    def security(self) -> HubSecurity:
        return self.nodes[0].security

    @security.setter
    def security(self, security: HubSecurity) -> None:
        """How every node is secured (ACLs, TLS); set it before :meth:`start`."""
        for node in self.nodes:
            node.security = security

    @property
    def url(self) -> str:
        """The seed URL clients are given: the first master's."""
        return self.nodes[0].url

    @property
    def admin_url(self) -> str:
        """The admin's URL (a secret) at the first master; ServerError on an open cluster."""
        return self.nodes[0].admin_url

    def client(self, port: int, **options: object) -> redis.Redis:
        """A client of the node at ``port``, as the admin and over TLS when on."""
        return self.node(port).client(**options)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(node.port for node in self.nodes)

    @property
    def inherited_fds(self) -> tuple[int, ...]:
        return self.nodes[0].inherited_fds

    @inherited_fds.setter
    def inherited_fds(self, fds: tuple[int, ...]) -> None:
        """Open files every node keeps (the data dir's lock)."""
        for node in self.nodes:
            node.inherited_fds = fds

    def node(self, port: int) -> HubProcess:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def running(self) -> list[HubProcess]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def check_ports(self) -> None:
        """ServerError naming the first busy port, node or bus, before anything starts."""
        for node in self.nodes:
            self._check_node_ports(node)

    def _check_node_ports(self, node: HubProcess) -> None:
        first, last = self.ports[0], self.ports[-1]
        need = (
            f"this cluster needs ports {first}-{last} and their cluster bus ports "
            f"{first + BUS_PORT_OFFSET}-{last + BUS_PORT_OFFSET}: choose another --port"
        )
        if port_in_use(self.bind, node.port):
            raise ServerError(f"port {node.port} on {self.bind} is already in use; {need}")
        bus = node.port + BUS_PORT_OFFSET
        if port_in_use(self.bind, bus):
            raise ServerError(
                f"port {bus} on {self.bind}, the cluster bus of node {node.port}, "
                f"is already in use; {need}"
            )

    def start(self, timeout: float = 60.0) -> None:
        """Start every node, form the cluster if it is new, wait until it is healthy."""
        deadline = time.monotonic() + timeout
        self.formed = False
        self.check_ports()
        self._check_layout()
        self.acl_copied = self._sync_acl_files(self.nodes)
        try:
            for node in self.nodes:
                self._start_node(node, deadline)
            views = [_NodeView.read(self.bind, port, self.security) for port in self.ports]
            fresh = [view.port for view in views if view.is_fresh]
            if len(fresh) == len(views):
                self._form(deadline)
                self.formed = True
            elif fresh:
                raise ServerError(
                    f"nodes {_listed(fresh)} in {self.data_dir} are new but the others were "
                    "in a cluster: restore their folders, or start afresh in another --data-dir"
                )
            self._wait(self._problem, deadline, "the cluster did not become healthy")
        except BaseException:
            self.stop()
            raise

    def _check_layout(self) -> None:
        """Refuse a data dir that holds a cluster of another shape."""
        existing = {
            int(folder.name.removeprefix("node-"))
            for folder in self.data_dir.glob("node-*")
            if (folder / "nodes.conf").is_file() and folder.name[5:].isdigit()
        }
        if existing and existing != set(self.ports):
            raise ServerError(
                f"{self.data_dir} holds a cluster of nodes {_listed(existing)}, not "
                f"{_listed(self.ports)}: start it with the same --port, --cluster and "
                "--replicas, or use another --data-dir"
            )

    def _start_node(self, node: HubProcess, deadline: float) -> None:
        try:
            node.start(ready_timeout=max(1.0, deadline - time.monotonic()))
        except ServerError as error:
            raise ServerError(f"node {node.port}: {error} (log: {node.log_file})") from None

    def _form(self, deadline: float) -> None:
        """Slots to the masters, every node introduced, replicas attached in turn."""
        masters = self.nodes[: self.masters]
        for index, node in enumerate(masters):
            with _client(self.bind, node.port, self.security) as client:
                first = index * SLOTS // self.masters
                last = (index + 1) * SLOTS // self.masters - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
                # Distinct epochs up front spare the nodes resolving a collision.
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        with _client(self.bind, self.nodes[0].port, self.security) as seed:
            for node in self.nodes[1:]:
                seed.execute_command("CLUSTER", "MEET", self.bind, node.port)
        self._wait(self._unmet, deadline, "the nodes did not all meet")
        master_ids = [self._node_id(node.port) for node in masters]
        for index, node in enumerate(self.nodes[self.masters :]):
            with _client(self.bind, node.port, self.security) as client:
                client.execute_command("CLUSTER", "REPLICATE", master_ids[index % self.masters])

    def _node_id(self, port: int) -> str:
        with _client(self.bind, port, self.security) as client:
            node_id: str = client.execute_command("CLUSTER", "MYID")
            return node_id

    def _unmet(self) -> str | None:
        """Which node does not know which yet (REPLICATE needs its master known)."""
        for port in self.ports:
            known = {
                peer.port
                for peer in _NodeView.read(self.bind, port, self.security).peers
                if not peer.flags & _UNWELL_FLAGS
            }
            missing = set(self.ports) - known
            if missing:
                return f"node {port} does not know {_listed(missing)} yet"
        return None

    def _problem(self) -> str | None:
        ports = [node.port for node in self.running()]
        return cluster_problem(self.bind, ports, self.masters, self.security)

    def _wait(self, problem: Callable[[], str | None], deadline: float, what: str) -> None:
        """Poll ``problem`` until it is None; ServerError at the deadline or if a node exits."""
        while True:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise ServerError(
                        f"{what}: node {node.port} exited (status {node.process.returncode}); "
                        f"see {node.log_file}"
                    )
            found = problem()
            if found is None:
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{what} in time: {found}")
            time.sleep(_POLL_INTERVAL)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until the running nodes are a healthy cluster (see :func:`cluster_problem`).

        Nodes killed with :meth:`kill_node` are left out, so after killing a
        master this returns once one of its replicas has taken over.
        """
        deadline = time.monotonic() + timeout
        while (found := self._problem()) is not None:
            if time.monotonic() > deadline:
                raise ServerError(f"the cluster was not healthy within {timeout:.0f} s: {found}")
            time.sleep(_POLL_INTERVAL)

    def topology(self) -> list[NodeRole]:
        """The role, id, pid and slots of each running node, by port."""
        roles = []
        for node in self.running():
            with _client(self.bind, node.port, self.security) as client:
                pid = int(client.info("server")["process_id"])
                peers = _parse_cluster_nodes(client.execute_command("CLUSTER", "NODES"))
            ports = {peer.node_id: peer.port for peer in peers}
            me = next(peer for peer in peers if "myself" in peer.flags)
            master_port = ports.get(me.master_id) if me.master_id else None
            roles.append(NodeRole(node.port, me.node_id, pid, master_port, me.slots))
        return roles

    def master_for(self, key: str) -> NodeRole:
        """The running master that serves ``key``'s slot."""
        slot = key_slot(key.encode())
        return next(role for role in self.topology() if role.is_master and role.serves(slot))

    def kill_node(self, port: int) -> None:
        """SIGKILL one node: a crash, for tests of failover."""
        self.node(port).kill()

    def restart_node(self, port: int, ready_timeout: float = 20.0) -> None:
        """Start a stopped or killed node again on its data; it rejoins by itself.

        A master whose replica took over comes back as a replica of it.
        """
        node = self.node(port)
        self._check_node_ports(node)
        self._sync_acl_files([node])
        self._start_node(node, time.monotonic() + ready_timeout)

    def _sync_acl_files(self, targets: Sequence[HubProcess]) -> dict[int, int]:
        """Give each of ``targets`` the newest users.acl of all nodes, if its differs.

        ACL users never travel between nodes, so a node that was down while
        the admin changed them has an older file. The newest (the last
        ``ACL SAVE``) is the truth. Returns ``{port: port it was copied from}``.
        Nothing happens on an open cluster, or before the first start (each
        node then writes the initial users itself).
        """
        if not self.security.acl:
            return {}
        found = {node.port: node.acl_file for node in self.nodes if node.acl_file.is_file()}
        if not found:
            return {}
        newest = max(found, key=lambda port: found[port].stat().st_mtime_ns)
        text = found[newest].read_text()
        copied = {}
        for node in targets:
            if node.port in found and found[node.port].read_text() == text:
                continue
            node.data_dir.mkdir(parents=True, exist_ok=True)
            write_private(node.acl_file, text)
            copied[node.port] = newest
        return copied

    def exits(self, poll_interval: float = 0.2) -> Iterator[HubProcess]:
        """Yield each node as it exits; return once none is running."""
        running = self.running()
        while running:
            exited = [n for n in running if n.process is not None and n.process.poll() is not None]
            for node in exited:
                running.remove(node)
                yield node
            if running:
                time.sleep(poll_interval)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every node at once (see :func:`stop_servers`)."""
        stop_servers([node.process for node in self.nodes if node.process is not None], timeout)

    def __enter__(self) -> "LocalCluster":
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_servers(processes: Sequence["subprocess.Popen[bytes]"], timeout: float = 15.0) -> None:
    """SIGTERM every server at once, again each half second; SIGKILL after ``timeout``.

    Once: a replica writing its first append-only file after a sync turns
    SIGTERM down ("Writing initial AOF, can't exit") and forgets it; asked
    again a moment later, it saves and exits.
    """
    deadline = time.monotonic() + timeout
    running = [process for process in processes if process.poll() is None]
    while running and time.monotonic() < deadline:
        for process in running:
            process.terminate()
        round_end = min(deadline, time.monotonic() + _TERM_AGAIN_AFTER)
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, round_end - time.monotonic()))
        running = [process for process in running if process.poll() is None]
    for process in running:
        process.kill()
        process.wait()


def _check_shape(masters: int, replicas: int) -> None:
    if masters < 1 or replicas < 0:
        raise ServerError("a cluster needs at least 1 master and 0 or more replicas per master")
    if replicas and masters < MIN_MASTERS_FOR_REPLICAS:
        raise ServerError(
            f"replicas need at least {MIN_MASTERS_FOR_REPLICAS} masters: a replica takes over "
            f"only when a majority of masters agree, which {masters} cannot give"
        )


def _check_bind(bind: str) -> None:
    """Nodes meet, and send clients to each other, by the one address they listen on."""
    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        raise ServerError(
            f"a cluster listens on an IP address, not {bind!r}: its nodes give clients "
            "each other's address (e.g. --bind 127.0.0.1)"
        ) from None
    if address.is_unspecified:
        raise ServerError(
            f"a cluster cannot listen on {bind}: its nodes give clients each other's "
            "address, so choose one address of this machine (e.g. --bind 127.0.0.1)"
        )


def _listed(ports: Iterable[int]) -> str:
    return ", ".join(str(port) for port in sorted(ports))


# Ports for nodes and their buses stay below the kernel's ephemeral range
# (32768-60999), where other sockets take theirs by chance.
_LOWEST_PORT = 10000
_EPHEMERAL_START = 32768


def free_base_port(count: int, bind: str = "127.0.0.1") -> int:
    """A base port with ``count`` free ports from it, and their bus ports free too.

    Random, so that runs on the same machine at the same time seldom pick
    the same ports; one taken meanwhile shows when a node starts.
    """
    highest = _EPHEMERAL_START - BUS_PORT_OFFSET - count
    for _ in range(100):
        base = random.randrange(_LOWEST_PORT, highest)
        ports = range(base, base + count)
        if not any(port_in_use(bind, p) or port_in_use(bind, p + BUS_PORT_OFFSET) for p in ports):
            return base
    raise ServerError(f"no {count} free ports with free bus ports in {_LOWEST_PORT}-{highest}")

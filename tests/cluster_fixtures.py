"""Cluster fixtures: a Redis Cluster from the bundled valkey-server on free ports.

Registered from conftest.py. ``cluster`` is one cluster for the whole session,
kept undamaged; ``own_cluster`` is a test's own, whose nodes it may kill.
Both have 3 masters and 3 replicas, a 2 s node timeout (a killed master's
replica takes over in about 4 s) and are healthy when a test gets them: every
replica has had its first copy, so it can take over.

``start_cluster(..., secure=True, tls=True)`` starts a secured or TLS one
(``tls_server_binary`` is a server built with TLS); its ``admin_url`` logs
in as the admin, and ``client(port)`` gives an admin client of one node.
"""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbus.local_cluster import BUS_PORT_OFFSET, LocalCluster, NodeRole
from chatbus.server import ServerBinary, ServerError, find_server, port_in_use, prepare_security

MASTERS = 3
REPLICAS = 1
NODE_TIMEOUT_MS = 2000
# Ports for nodes and their buses stay below the kernel's ephemeral range
# (32768-60999), where free_port() and outgoing connections take theirs.
_LOWEST_PORT = 10000
_EPHEMERAL_START = 32768


def free_base_port(count: int, bind: str = "127.0.0.1") -> int:
    """A base port with ``count`` free ports from it, and their bus ports free too.

    Random, so that test runs on the same machine at the same time seldom
    pick the same ports; a clash left is caught by :func:`start_cluster`.
    """
    highest = _EPHEMERAL_START - BUS_PORT_OFFSET - count
    for _ in range(100):
        base = random.randrange(_LOWEST_PORT, highest)
        ports = range(base, base + count)
        if not any(port_in_use(bind, p) or port_in_use(bind, p + BUS_PORT_OFFSET) for p in ports):
            return base
    raise RuntimeError(f"no {count} free ports with free bus ports in {_LOWEST_PORT}-{highest}")


def start_cluster(
    binary: ServerBinary,
    data_dir: Path,
    masters: int = MASTERS,
    replicas: int = REPLICAS,
    *,
    secure: bool = False,
    tls: bool = False,
    node_args: tuple[str, ...] = (),
) -> LocalCluster:
    """A started, healthy cluster on free ports; the caller stops it.

    ``secure``: ACLs on, as `chatbus server --secure` makes them (the admin
    URL in ``data_dir/attempt-N/admin.url``); ``tls``: TLS only, with a CA
    in ``tls/`` there (``binary`` must be built with TLS). ``node_args`` go
    on every node's command line. Ports found free can be taken by another
    test run before the nodes bind them: then it tries other ports, a few times.
    """
    count = masters * (1 + replicas)
    for attempt in range(3):
        base = free_base_port(count)
        directory = data_dir / f"attempt-{attempt}"
        security = prepare_security(
            directory, secure=secure, tls=tls, bind="127.0.0.1", port=base, replication=replicas > 0
        )
        cluster = LocalCluster(
            binary,
            base,
            directory,
            masters=masters,
            replicas=replicas,
            node_timeout_ms=NODE_TIMEOUT_MS,
            security=security,
        )
        for node in cluster.nodes:
            node.extra_args += node_args
        try:
            cluster.start(timeout=60)
        except ServerError as error:
            if "in use" not in str(error) or attempt == 2:
                raise
        else:
            return cluster
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def tls_server_binary() -> ServerBinary:
    """A server built with TLS: the bundled valkey-server is not, Debian's
    redis-server is (``make test`` installs it when it is missing)."""
    try:
        return find_server("auto", tls=True)
    except ServerError as error:
        pytest.fail(f"the TLS tests need a server built with TLS: {error}")


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, server_binary: ServerBinary
) -> Iterator[LocalCluster]:
    """One cluster shared by the whole session, healthy when handed out.

    It is kept undamaged: tests must not kill, stop or fail over its nodes
    (``own_cluster`` is for that), so its layout is the formed one: masters
    on its first 3 ports, replica ``i`` of master ``i`` on the next 3. Like
    ``shared_hub``, tests keep apart by namespace.
    """
    shared = start_cluster(server_binary, tmp_path_factory.mktemp("cluster"))
    try:
        yield shared
    finally:
        shared.stop()


@pytest.fixture
def own_cluster(tmp_path: Path, server_binary: ServerBinary) -> Iterator[LocalCluster]:
    """A cluster for this test alone: it may kill, fail over and restart its nodes."""
    own = start_cluster(server_binary, tmp_path / "cluster")
    try:
        yield own
    finally:
        own.stop()


def fail_over(cluster: LocalCluster, master_port: int, timeout: float = 30) -> NodeRole:
    """SIGKILL the master at ``master_port``; the replica that took over its slots.

    Returns once the running nodes are a healthy cluster again.
    """
    replicas = {role.port for role in cluster.topology() if role.master_port == master_port}
    assert replicas, f"node {master_port} is not a master with a replica"
    cluster.kill_node(master_port)
    cluster.wait_healthy(timeout)
    return next(r for r in cluster.topology() if r.port in replicas and r.is_master)


def restore(cluster: LocalCluster, timeout: float = 30) -> None:
    """Restart every node that is down and wait until all are a healthy cluster.

    A master whose replica took over comes back as that replica's replica.
    """
    running = set(cluster.running())
    for node in cluster.nodes:
        if node not in running:
            cluster.restart_node(node.port)
    cluster.wait_healthy(timeout)

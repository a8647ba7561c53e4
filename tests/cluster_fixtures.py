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

import re
import selectors
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import CHATBUS

from chatbus.local_cluster import LocalCluster, NodeRole, cluster_problem, free_base_port
from chatbus.server import (
    ServerBinary,
    ServerError,
    find_server,
    prepare_security,
    read_security,
)

MASTERS = 3
REPLICAS = 1
NODE_TIMEOUT_MS = 2000


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


# --- chatbus server --cluster, run as a command -------------------------------------


class ClusterCommand:
    """`chatbus server --cluster 3 --replicas 1 [ARGS]` run as a user would run it."""

    def __init__(
        self, base: int, data_dir: Path, started: "StartedCommands", args: tuple[str, ...] = ()
    ) -> None:
        argv = [CHATBUS, "server", "--cluster", "3", "--replicas", "1", *args]
        argv += ["--port", str(base), "--data-dir", str(data_dir)]
        self.data_dir = data_dir
        self.ports = range(base, base + 6)
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.commands.append(self.process)
        self.lines = self._read_announcement()
        self.pids = {
            int(port): int(pid) for port, pid in re.findall(r"node (\d+): .*, pid (\d+)", self.text)
        }
        started.servers.extend((pid, port) for port, pid in self.pids.items())

    def _read_announcement(self) -> list[str]:
        assert self.process.stdout is not None
        lines: list[str] = []
        while not lines or "Press Ctrl-C" not in lines[-1]:
            line = self.process.stdout.readline()
            assert line, f"chatbus server exited: {lines} {self.process.stderr.read()}"  # type: ignore[union-attr]
            if line.startswith("Clients connect with"):
                # The URL is printed only once the cluster is healthy.
                assert self.problem() is None
            lines.append(line)
        return lines

    def problem(self) -> str | None:
        """What keeps its nodes from being a healthy cluster (read as its admin), or None."""
        return cluster_problem("127.0.0.1", self.ports, 3, read_security(self.data_dir))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def stderr_line(self, timeout: float) -> str:
        assert self.process.stderr is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stderr, selectors.EVENT_READ)
            assert selector.select(timeout), f"no line on stderr within {timeout} s"
        return self.process.stderr.readline()

    def interrupt(self) -> tuple[str, str]:
        """Ctrl-C; its remaining output once it has exited."""
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err
        return out, err


def running_node(pid: int, port: int) -> bool:
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return f":{port}" in cmdline.read_text()
    except FileNotFoundError:
        return False


@dataclass
class StartedCommands:
    """What a test started, stopped at its end if the test failed first."""

    commands: list[subprocess.Popen[str]]
    servers: list[tuple[int, int]]  # (pid, port) of each node


@pytest.fixture
def started(started_servers: list[tuple[int, int]]) -> Iterator[StartedCommands]:
    """Each ``chatbus server`` still running is stopped (it stops its nodes);
    ``started_servers`` then SIGKILLs any node left."""
    commands: list[subprocess.Popen[str]] = []
    yield StartedCommands(commands, started_servers)
    for command in commands:
        if command.poll() is None:
            command.terminate()
            command.communicate(timeout=30)

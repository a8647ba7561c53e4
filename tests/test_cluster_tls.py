"""A Redis Cluster that speaks only TLS: chatbus reaches it with a rediss:// URL.

The bundled valkey-server has no TLS, so this runs the redis-server on PATH
(Debian's is built with TLS; the test command makes sure one is there).
"""

import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from cluster_fixtures import free_base_port
from helpers import Recorder, wait_until
from tls_material import TlsFiles, make_tls_files

from chatbus import accounts
from chatbus.config import Settings
from chatbus.errors import HubUnavailable
from chatbus.hub import Hub
from chatbus.messages import Mailbox
from chatbus.receiver import Receiver

MASTERS = 3
SLOTS = 16384


@dataclass
class TlsCluster:
    ports: list[int]
    tls: TlsFiles

    def url(self, port: int | None = None) -> str:
        return f"rediss://127.0.0.1:{port or self.ports[0]}/0?ssl_ca_certs={self.tls.ca}"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(self.tls.ca), socket_timeout=5
        )


def _node_command(server: str, port: int, directory: Path, tls: TlsFiles) -> list[str]:
    return [
        server,
        "--port", "0",
        "--tls-port", str(port),
        "--tls-cert-file", str(tls.cert),
        "--tls-key-file", str(tls.key),
        "--tls-ca-cert-file", str(tls.ca),
        "--tls-auth-clients", "no",
        "--tls-cluster", "yes",
        "--tls-replication", "yes",
        "--bind", "127.0.0.1",
        "--dir", str(directory),
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", "2000",
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(directory / "server.log"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    server = shutil.which("redis-server")
    assert server, "the TLS tests need redis-server on PATH (make test installs it)"
    root = tmp_path_factory.mktemp("tls-cluster")
    tls = make_tls_files(root / "tls")
    base = free_base_port(MASTERS)
    cluster = TlsCluster(list(range(base, base + MASTERS)), tls)
    processes = []
    try:
        for port in cluster.ports:
            directory = root / f"node-{port}"
            directory.mkdir()
            processes.append(
                subprocess.Popen(
                    _node_command(server, port, directory, tls),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        _form(cluster)
        yield cluster
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(cluster: TlsCluster, port: int) -> bool:
    try:
        with cluster.client(port) as client:
            return bool(client.ping())
    except redis.ConnectionError:
        return False


def _form(cluster: TlsCluster) -> None:
    for port in cluster.ports:
        wait_until(lambda port=port: _answers(cluster, port), 20, f"node {port}")  # type: ignore[misc]
    share = SLOTS // MASTERS
    for index, port in enumerate(cluster.ports):
        last = SLOTS - 1 if index == MASTERS - 1 else (index + 1) * share - 1
        with cluster.client(port) as client:
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
    with cluster.client(cluster.ports[0]) as first:
        for port in cluster.ports[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", port)

    def healthy() -> bool:
        for port in cluster.ports:
            with cluster.client(port) as client:
                info = client.execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info or f"cluster_known_nodes:{MASTERS}" not in info:
                    return False
        return True

    wait_until(healthy, 30, "the TLS cluster to form")


def test_a_rediss_url_of_any_node_reaches_a_tls_only_cluster(
    tls_cluster: TlsCluster, tmp_path: Path
) -> None:
    settings = Settings(
        url=tls_cluster.url(tls_cluster.ports[1]),
        namespace="t" + uuid.uuid4().hex[:12],
        home=tmp_path / "home",
        lease_ttl=2.0,
    )
    hub = Hub(settings)
    try:
        assert hub.cluster
        for name in ("alice", "bob"):
            accounts.register(hub, name, "password1")
        recorder = Recorder()
        receiver = Receiver(hub, "bob", recorder, after_id="0-0")
        receiver.start()
        try:
            assert receiver.wait_connected(10)
            started = time.monotonic()
            Mailbox(hub, "alice").send_many("bob", [f"over tls {i}" for i in range(50)])
            assert recorder.wait_for_bodies(50) == [f"over tls {i}" for i in range(50)]
            assert time.monotonic() - started < 10
            wait_until(lambda: recorder.online == ["bob"], 10, "bob online")
        finally:
            receiver.stop()
    finally:
        hub.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://127.0.0.1:{port}/0", "if the hub takes only TLS, use a rediss:// URL"),
        ("rediss://127.0.0.1:{port}/0", "its TLS certificate is not signed by a CA this client"),
    ],
    ids=["plain", "unknown-ca"],
)
def test_a_plain_url_or_an_unknown_ca_is_one_clear_error(
    tls_cluster: TlsCluster, tmp_path: Path, url: str, says: str
) -> None:
    settings = Settings(url=url.format(port=tls_cluster.ports[0]), namespace="t", home=tmp_path)
    hub = Hub(settings)
    try:
        with pytest.raises(HubUnavailable) as refused:
            accounts.registered_name(hub, "alice")
        assert says in str(refused.value)
        assert "\n" not in str(refused.value)
    finally:
        hub.close()

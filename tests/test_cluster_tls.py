"""A Redis Cluster that speaks only TLS: chatbus reaches it with a rediss:// URL.

The bundled valkey-server has no TLS, so this runs a server built with it
(Debian's redis-server; the test command makes sure one is there), as
`chatbus server --cluster 3 --tls` does: LocalCluster with its own CA.
"""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_fixtures import start_cluster
from helpers import Recorder, wait_until

from chatbus import accounts
from chatbus.config import Settings
from chatbus.errors import HubUnavailable
from chatbus.hub import Hub
from chatbus.local_cluster import LocalCluster
from chatbus.messages import Mailbox
from chatbus.receiver import Receiver
from chatbus.server import ServerBinary


@pytest.fixture(scope="module")
def tls_cluster(
    tmp_path_factory: pytest.TempPathFactory, tls_server_binary: ServerBinary
) -> Iterator[LocalCluster]:
    """3 masters speaking TLS only, to clients and to each other."""
    cluster = start_cluster(
        tls_server_binary, tmp_path_factory.mktemp("tls-cluster"), masters=3, replicas=0, tls=True
    )
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_rediss_url_of_any_node_reaches_a_tls_only_cluster(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    url = tls_cluster.node(tls_cluster.ports[1]).url
    assert url.startswith("rediss://127.0.0.1:") and "?ssl_ca_certs=" in url
    settings = Settings(
        url=url,
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
        ("redis://127.0.0.1:{port}/0", "If the hub takes only TLS, use a rediss:// URL"),
        ("rediss://127.0.0.1:{port}/0", "not signed by a CA this client trusts). Give the"),
    ],
    ids=["plain", "unknown-ca"],
)
def test_a_plain_url_or_an_unknown_ca_is_one_clear_error(
    tls_cluster: LocalCluster, tmp_path: Path, url: str, says: str
) -> None:
    settings = Settings(url=url.format(port=tls_cluster.ports[0]), namespace="t", home=tmp_path)
    hub = Hub(settings)
    try:
        with pytest.raises(HubUnavailable) as refused:
            accounts.registered_name(hub, "alice")
        assert says in str(refused.value)
        assert "\n" not in str(refused.value)
        assert "chatbus server" not in str(refused.value)  # the hub is up: no use starting one
    finally:
        hub.close()

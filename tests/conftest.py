"""Fixtures: real hubs started from the bundled valkey-server on free ports.

Tests never touch a Redis they did not start. Each test gets a namespace of
its own on the shared hub, so tests cannot see each other's keys and nothing
needs flushing; tests that kill or pause a hub get one of their own.
"""

import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import settings as hypothesis_settings

from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.server import HubProcess, ServerBinary, find_server

# The Redis Cluster fixtures (`cluster`, `own_cluster`) live in their own module.
pytest_plugins = ["cluster_fixtures", "terminals", "secured_fixtures"]

# Short leases keep the crash tests quick; the default is 10 s.
TEST_LEASE_TTL = 2.0

# Hypothesis's per-example deadline (200 ms) is a timing assertion: a busy
# machine fails it. Speed belongs to the benchmarks.
hypothesis_settings.register_profile("chatbus", deadline=None)
hypothesis_settings.load_profile("chatbus")


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_the_commands_under_test() -> None:
    """Started in the background (``make test &``, nohup), pytest inherits an
    ignored SIGINT and so would every chatbus it starts: the Ctrl-C tests
    would hang. Taking a handler here gives the children the default back."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server_binary() -> ServerBinary:
    return find_server("valkey")


@pytest.fixture(scope="session")
def shared_hub(
    tmp_path_factory: pytest.TempPathFactory, server_binary: ServerBinary
) -> Iterator[HubProcess]:
    hub = HubProcess(server_binary, free_port(), tmp_path_factory.mktemp("shared-hub"))
    with hub:
        yield hub


@pytest.fixture
def own_hub(tmp_path: Path, server_binary: ServerBinary) -> Iterator[HubProcess]:
    """A hub for this test alone, which it may kill, pause and restart."""
    hub = HubProcess(server_binary, free_port(), tmp_path / "hub")
    with hub:
        yield hub


@pytest.fixture
def started_servers() -> Iterator[list[tuple[int, int]]]:
    """(pid, port) of every server a test's ``chatbus server`` started.

    The server runs in a session of its own: if a test fails before chatbus
    stopped it, it is stopped here rather than left running.
    """
    started: list[tuple[int, int]] = []
    yield started
    for pid, port in started:
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and f":{port}" in cmdline.read_text():
            os.kill(pid, signal.SIGKILL)


class HasUrl(Protocol):
    """A hub the tests started: a HubProcess, or a LocalCluster."""

    @property
    def url(self) -> str: ...


def make_settings(hub: HasUrl, home: Path, **overrides: object) -> Settings:
    options: dict[str, object] = {
        "url": hub.url,
        "namespace": "t" + uuid.uuid4().hex[:12],
        "home": home,
        "lease_ttl": TEST_LEASE_TTL,
    }
    options.update(overrides)
    return Settings(**options)  # type: ignore[arg-type]


@pytest.fixture
def settings(shared_hub: HubProcess, tmp_path: Path) -> Settings:
    return make_settings(shared_hub, tmp_path / "home")


@pytest.fixture
def hub(settings: Settings) -> Iterator[Hub]:
    connection = Hub(settings)
    yield connection
    connection.close()

"""Secured hubs: one server and one cluster, started as ``chatbus server --secure`` starts them.

Registered from conftest.py. Both live for the whole session and are built
with the server code's own API (``prepare_security`` and ``HubProcess`` or
``LocalCluster`` with the :class:`~chatbus.server.HubSecurity` it returns):
the ``default`` user off, an ``admin`` user, and on the cluster a
``replicator`` for the replicas.

A test gets a :class:`SecuredChat`: a namespace of its own on one of them,
the admin's :class:`~chatbus.admin.Admin` for it, and helpers that add users
(``chatbus admin add-user``) and act as them: a chatbus :class:`Hub` with
their :class:`Credentials`, a raw redis-py client on the URL ``chatbus
whoami --redis-url`` prints, a client of any one node, and a running
:class:`Receiver`. ``secured`` runs a test on both hubs; ``secured_once``
on the single server only, for what cannot differ between them.

ACL users are per hub, not per namespace, so the users a test adds are
removed again when it ends.
"""

import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pytest
import redis
from helpers import Recorder, wait_until
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from chatbus import secured_login
from chatbus.accounts import Session
from chatbus.admin import Admin
from chatbus.config import Settings
from chatbus.errors import ChatbusError
from chatbus.hub import Credentials, Hub
from chatbus.keys import Keys
from chatbus.local_cluster import LocalCluster
from chatbus.receiver import Receiver, Timing
from chatbus.server import HubProcess, ServerBinary, prepare_security

# As conftest.TEST_LEASE_TTL: short leases keep the presence tests quick.
LEASE_TTL = 2.0
# Receivers that notice a lost connection and the hub's changes quickly.
FAST = Timing(heartbeat=0.5, ping_after_idle=0.5, pong_deadline=3.0, backoff_max=0.5)

HubKind = Literal["single", "cluster"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class SecuredHub:
    """A running secured hub: where clients and the admin connect, and its nodes."""

    kind: HubKind
    url: str  # what clients are given: no credentials in it
    admin_url: str  # the admin's (a secret), as DATA_DIR/admin.url holds it
    ports: tuple[int, ...]  # every node, masters and replicas
    master_port: Callable[[str], int]  # the node that serves a key (or channel)

    @property
    def cluster(self) -> bool:
        return self.kind == "cluster"


@pytest.fixture(scope="session")
def secured_single(
    tmp_path_factory: pytest.TempPathFactory, server_binary: ServerBinary
) -> Iterator[SecuredHub]:
    """One secured server, as ``chatbus server --secure`` starts it."""
    data_dir = tmp_path_factory.mktemp("secured-hub")
    port = _free_port()
    security = prepare_security(data_dir, secure=True, tls=False, bind="127.0.0.1", port=port)
    with HubProcess(server_binary, port, data_dir, security=security) as process:
        yield SecuredHub("single", process.url, process.admin_url, (port,), lambda key: port)


@pytest.fixture(scope="session")
def secured_cluster(
    tmp_path_factory: pytest.TempPathFactory, server_binary: ServerBinary
) -> Iterator[SecuredHub]:
    """A secured cluster of 3 masters and 3 replicas, as ``chatbus server
    --secure --cluster 3 --replicas 1`` starts it; kept undamaged."""
    from cluster_fixtures import start_cluster  # noqa: PLC0415 (its module is a plugin too)

    cluster: LocalCluster = start_cluster(
        server_binary, tmp_path_factory.mktemp("secured-cluster"), secure=True
    )
    try:
        replicas_in_slot_map(cluster)
        yield SecuredHub(
            "cluster", cluster.url, cluster.admin_url, cluster.ports, master_port_of(cluster)
        )
    finally:
        cluster.stop()


def master_port_of(cluster: LocalCluster) -> Callable[[str], int]:
    """The port of the master serving a key or shard channel, by the layout
    the cluster has now (the shared cluster's never changes)."""
    masters = [role for role in cluster.topology() if role.is_master]

    def port(key: str) -> int:
        slot = key_slot(key.encode())
        return next(master.port for master in masters if master.serves(slot))

    return port


def replicas_in_slot_map(cluster: LocalCluster, timeout: float = 10.0) -> None:
    """Write a key on every master, and wait until CLUSTER SLOTS names every replica.

    Valkey leaves out of CLUSTER SLOTS a replica that has no replication
    offset yet (its master has had no write since it attached), and the
    admin commands reach the nodes the slot map names (see test_secured_chat's
    test of a new cluster). Whatever the tests before did, the shared
    cluster's users are then on every node.
    """
    masters = [role for role in cluster.topology() if role.is_master]
    for master in masters:
        key = next(
            f"warm-up-{i}"
            for i in range(100_000)
            if master.serves(key_slot(f"warm-up-{i}".encode()))
        )
        with cluster.client(master.port) as admin:
            admin.set(key, 1)

    def listed() -> bool:
        with cluster.client(masters[0].port) as admin:
            shards = admin.execute_command("CLUSTER", "SLOTS")
        return {int(node[1]) for shard in shards for node in shard[2:]} == set(cluster.ports)

    wait_until(listed, timeout, "every replica in CLUSTER SLOTS")


@dataclass
class User:
    """A chat user the admin added, logged in: their password and session."""

    name: str
    password: str
    session: Session

    @property
    def credentials(self) -> Credentials:
        credentials = self.session.credentials
        assert credentials is not None
        return credentials


@dataclass
class Running:
    """A receiver of a user, and what its listener was told."""

    receiver: Receiver
    recorder: Recorder

    @property
    def online(self) -> list[str]:
        return self.recorder.online


@dataclass
class SecuredChat:
    """A test's namespace on a secured hub, its admin, and its users."""

    hub: SecuredHub
    home: Path
    settings: Settings = field(init=False)
    admin: Admin = field(init=False)
    users: dict[str, User] = field(default_factory=dict, init=False)
    # Every name added on the hub by this test (here or with the CLI): removed at the end.
    added: set[str] = field(default_factory=set, init=False)
    _closing: list[Callable[[], object]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(
            url=self.hub.url,
            namespace="t" + uuid.uuid4().hex[:12],
            home=self.home,
            lease_ttl=LEASE_TTL,
        )
        self.admin = Admin(self.admin_settings)

    @property
    def keys(self) -> Keys:
        return self.settings.keys

    @property
    def admin_settings(self) -> Settings:
        return replace(self.settings, url=self.hub.admin_url)

    # -- users --------------------------------------------------------------

    def add_user(self, name: str, password: str | None = None) -> User:
        """``chatbus admin add-user NAME``, then the user's own login."""
        self.added.add(name.lower())
        given = self.admin.add_user(name, password)
        return self.login(name, given)

    def login(self, name: str, password: str) -> User:
        """``name``'s own login (``chatbus login``), as a library call."""
        session = secured_login.login(self.settings, name, password, saved=None)
        user = User(session.name, password, session)
        self.users[name.lower()] = user
        return user

    def redis_url(self, user: User) -> str:
        """What ``chatbus whoami --redis-url`` prints for ``user``."""
        return secured_login.redis_url(self.settings, user.session)

    def hub_as(self, user: User) -> Hub:
        """chatbus's own connection, as ``user``."""
        hub = Hub(self.settings, user.credentials)
        self._closing.append(hub.close)
        return hub

    def raw(self, user: User) -> "redis.Redis | redis.RedisCluster":
        """redis-py on the user's own URL: a cluster client on the cluster."""
        url = self.redis_url(user)
        client: redis.Redis | redis.RedisCluster
        if self.hub.cluster:
            client = redis.RedisCluster.from_url(url, socket_timeout=5)
        else:
            client = redis.Redis.from_url(url, socket_timeout=5)
        self._closing.append(client.close)
        return client

    def node(self, port: int, user: User | None = None, **options: Any) -> redis.Redis:
        """A plain client of the node at ``port``: as ``user``, or with no credentials."""
        login: dict[str, Any] = {}
        if user is not None:
            login = {"username": user.name.lower(), "password": user.credentials.secret}
        # No retries: a refused or cut-off connection is to be seen at once.
        no_retry = Retry(NoBackoff(), 0)
        client = redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=5, retry=no_retry, **login, **options
        )
        self._closing.append(client.close)
        return client

    def nodes(self, user: User | None = None) -> list[redis.Redis]:
        """A client of every node (masters and replicas) as ``user``."""
        return [self.node(port, user) for port in self.hub.ports]

    def node_for(self, key: str, user: User | None = None) -> redis.Redis:
        """A client of the master serving ``key`` (or a shard channel), as ``user``."""
        return self.node(self.hub.master_port(key), user)

    def admin_node(self, port: int) -> redis.Redis:
        """The admin's client of the node at ``port``."""
        client = redis.Redis.from_url(self.hub.admin_url, socket_timeout=5)
        kwargs = client.connection_pool.connection_kwargs
        client.close()
        return self.node(port, None, username=kwargs["username"], password=kwargs["password"])

    def admin_nodes(self) -> list[redis.Redis]:
        return [self.admin_node(port) for port in self.hub.ports]

    def admin_for(self, key: str) -> redis.Redis:
        """The admin's client of the master serving ``key``."""
        return self.admin_node(self.hub.master_port(key))

    # -- running clients ----------------------------------------------------

    def receiver(self, user: User, timing: Timing = FAST, after_id: str = "0-0") -> Running:
        """A started receiver of ``user`` (with their session, checked at every
        heartbeat), connected: online, subscribed, caught up."""
        recorder = Recorder()
        receiver = Receiver(
            self.hub_as(user), user.name, recorder, after_id, timing=timing, session=user.session
        )
        receiver.start()
        self._closing.append(receiver.stop)
        assert receiver.wait_connected(15), f"{user.name}'s receiver did not connect"
        return Running(receiver, recorder)

    def close(self) -> None:
        for close in reversed(self._closing):
            with suppress(Exception):
                close()
        for name in sorted(self.added):
            with suppress(ChatbusError, redis.RedisError):
                self.admin.remove_user(name)
        self.admin.close()


@pytest.fixture(params=["single", "cluster"])
def secured_hub(request: pytest.FixtureRequest) -> SecuredHub:
    """Each of the two secured hubs in turn."""
    hub: SecuredHub = request.getfixturevalue(f"secured_{request.param}")
    return hub


@pytest.fixture
def secured(secured_hub: SecuredHub, tmp_path: Path) -> Iterator[SecuredChat]:
    """A namespace of this test's own on each secured hub in turn."""
    chat = SecuredChat(secured_hub, tmp_path / "home")
    try:
        yield chat
    finally:
        chat.close()


@pytest.fixture
def secured_once(secured_single: SecuredHub, tmp_path: Path) -> Iterator[SecuredChat]:
    """A namespace of this test's own on the secured single server."""
    chat = SecuredChat(secured_single, tmp_path / "home")
    try:
        yield chat
    finally:
        chat.close()

"""Where a command goes: the one server, or the master that owns its slot in a Redis Cluster.

chatbus finds out which by itself: the first command asks the server at the
URL (``CLUSTER INFO``: an error means one server), so the same ``--url`` works
for a single server and for any node of a cluster. Everything else asks a :class:`Topology`:

* ``commands``: the client for plain commands (redis-py routes them by key);
* ``client_for(key)``: the owning master's own client, whose connection pool
  carries pipelined script calls (redis-py's ClusterPipeline refuses EVALSHA);
* ``wait_for_replica(key)``: whether writes there should wait for a replica
  (WAIT), and ``replicas_given_up(key)``: whether, a WAIT having timed out,
  the cluster has failed every replica of that master (so none is coming);
* ``subscriber_for(channel)``: a client on the channel's owner for sharded
  pub/sub, with retries off (the receiver reconnects and catches up itself);
* ``refresh()``: read the slot map again (after a failover or a slot move).
"""

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.connection import ConnectionPool, parse_url
from redis.exceptions import MovedError
from redis.retry import Retry

Client = redis.Redis | RedisCluster


def as_str(reply: bytes | str) -> str:
    return reply.decode() if isinstance(reply, bytes) else reply


@dataclass(frozen=True)
class Node:
    """A server that commands or subscriptions go to, by ``host:port`` name."""

    name: str
    client: redis.Redis


class Topology(Protocol):
    @property
    def cluster(self) -> bool: ...
    @property
    def commands(self) -> Client: ...

    def client_for(self, key: str) -> Node: ...
    def node_at(self, host: str, port: int) -> Node: ...
    def wait_for_replica(self, key: str) -> bool: ...
    def replicas_given_up(self, key: str) -> bool: ...
    def subscriber_for(self, channel: str) -> Node: ...
    def slot(self, key: str) -> int: ...
    def follow(self, moved: MovedError) -> None: ...
    def addresses(self) -> list[str]: ...
    def refresh(self) -> None: ...
    def close(self) -> None: ...


class SingleServer:
    """Everything on one server."""

    cluster = False

    def __init__(self, commands: redis.Redis, subscriber: redis.Redis) -> None:
        self.commands: Client = commands
        kwargs = commands.connection_pool.connection_kwargs
        name = str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")
        self._node = Node(name, commands)
        self._subscriber = Node(name, subscriber)

    def client_for(self, key: str) -> Node:
        return self._node

    def node_at(self, host: str, port: int) -> Node:
        return self._node

    def wait_for_replica(self, key: str) -> bool:
        """A lone server is not asked to wait for replicas (it usually has none)."""
        return False

    def replicas_given_up(self, key: str) -> bool:
        return True

    def subscriber_for(self, channel: str) -> Node:
        return self._subscriber

    def slot(self, key: str) -> int:
        return 0  # one server holds every slot: one SSUBSCRIBE covers all channels

    def follow(self, moved: MovedError) -> None:
        """A single server redirects nothing."""

    def addresses(self) -> list[str]:
        return [self._node.name]

    def refresh(self) -> None:
        """Nothing moves on a single server."""

    def close(self) -> None:
        self.commands.close()
        self._subscriber.client.close()


class ClusterNodes:
    """The masters of a Redis Cluster, as its slot map says."""

    cluster = True

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        # One retry (a pooled socket a node closed), not redis-py's ten: a
        # node that stopped answering is said after two timeouts, not eleven,
        # and the callers (a send, the receiver) try again their own way.
        self.commands: RedisCluster = RedisCluster.from_url(
            url, retry=Retry(NoBackoff(), 1), **options
        )
        # What a node's own pub/sub client needs: the URL's credentials and
        # TLS settings, the caller's timeouts, never redis-py's retries.
        self._node_options = {**parse_url(url), **options}  # type: ignore[no-untyped-call]
        self._node_options.pop("db", None)
        self._subscribers: dict[str, redis.Redis] = {}
        self._lock = threading.Lock()
        # Per master: whether writes wait for a replica (see
        # _replicas_not_failed), forgotten at every refresh.
        self._waits: dict[str, bool] = {}

    def addresses(self) -> list[str]:
        """``host:port`` of every node in the slot map, masters and replicas."""
        return list(self.commands.nodes_manager.nodes_cache)

    def _owner(self, key: str) -> Any:
        return self.commands.get_node_from_key(key)  # type: ignore[no-untyped-call]

    def client_for(self, key: str) -> Node:
        owner = self._owner(key)
        return Node(owner.name, self.commands.get_redis_connection(owner))

    def node_at(self, host: str, port: int) -> Node:
        """The node at ``host:port`` (an ASK redirection's target)."""
        node = self.commands.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
        if node is None:
            self.refresh()
            node = self.commands.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
        if node is None:
            raise redis.ConnectionError(f"no node {host}:{port} in the cluster")
        return Node(node.name, self.commands.get_redis_connection(node))

    def wait_for_replica(self, key: str) -> bool:
        owner = self._owner(key)
        waits = self._waits.get(owner.name)
        if waits is None:
            waits = self._waits[owner.name] = self._replicas_not_failed(owner) > 0
        return waits

    def replicas_given_up(self, key: str) -> bool:
        """True when the cluster has marked every replica of ``key``'s master
        failed: then writes there stop waiting until the next refresh."""
        owner = self._owner(key)
        if self._replicas_not_failed(owner):
            return False
        self._waits[owner.name] = False
        return True

    def _replicas_not_failed(self, owner: Any) -> int:
        """How many replicas ``owner`` has that the cluster has not marked
        failed, as the master itself sees it (CLUSTER NODES: its users may
        run it, unlike INFO, and it lists a replica the moment it attaches,
        unlike the slot map, which waits for its offset to be gossiped)."""
        client = self.commands.get_redis_connection(owner)
        nodes = client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
        rows = [line.split() for line in as_str(nodes).splitlines()]
        me = next((f[0] for f in rows if len(f) > 3 and "myself" in f[2].split(",")), None)
        return sum(1 for f in rows if len(f) > 3 and f[3] == me and "fail" not in f[2].split(","))

    def slot(self, key: str) -> int:
        slot: int = self.commands.keyslot(key)  # type: ignore[no-untyped-call]
        return slot

    def subscriber_for(self, channel: str) -> Node:
        owner = self._owner(channel)
        with self._lock:
            client = self._subscribers.get(owner.name)
            if client is None:
                # No retries: see Hub._connect.
                retry = Retry(NoBackoff(), 0, (redis.ConnectionError,))
                pool = ConnectionPool(host=owner.host, port=owner.port, retry=retry, **self._pool())
                client = redis.Redis(connection_pool=pool)
                self._subscribers[owner.name] = client
        return Node(owner.name, client)

    def _pool(self) -> dict[str, Any]:
        return {k: v for k, v in self._node_options.items() if k not in ("host", "port")}

    def follow(self, moved: MovedError) -> None:
        """Send the moved slot's commands to its new owner from now on.

        The node that says MOVED knows the owner; a slot map read from
        another node at that moment may not know it yet (a failover spreads
        in a moment, not at once).
        """
        self.commands.nodes_manager.move_slot(moved)

    def refresh(self) -> None:
        """Read the slot map again (from any node that answers)."""
        self._waits.clear()
        self.commands.nodes_manager.initialize(disconnect_startup_nodes_pools=False)

    def close(self) -> None:
        self.commands.close()
        with self._lock:
            for client in self._subscribers.values():
                client.close()
            self._subscribers.clear()

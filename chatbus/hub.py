"""The connection to the Redis hub: one server, or a Redis Cluster found at its URL.

One pool for commands (per node on a cluster), pub/sub connections on demand.
Whether the hub is a cluster is asked at the first command (``CLUSTER INFO``),
so no setting says it: see :mod:`chatbus.topology`.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.exceptions
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from . import known_nodes
from .config import Settings, display_url
from .errors import AccessRefused, HubRefused, HubUnavailable
from .keys import Keys
from .lua import NotConfirmed
from .topology import Client, ClusterNodes, SingleServer, Topology

# A command that gets no answer in this time means the hub is gone or stopped;
# it bounds how long any call can hang on a silently dead connection.
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 3.0


def as_text(value: bytes | str) -> str:
    """A reply as text (replies are bytes: the clients do not decode). Bytes that
    are not UTF-8 become U+FFFD, which every validator then refuses."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def describe_failure(error: BaseException) -> str:
    """A short reason for a connection failure, without a traceback."""
    text = str(error).strip().rstrip(".") or type(error).__name__
    # redis-py prefixes socket errors with the address; the URL is named already.
    if "Error " in text and "connecting to" in text:
        text = text.split(". ", 1)[-1] if ". " in text else text
    return text.splitlines()[0]


# Replies that mean "not now" (a node loading, a failover under way, a slot
# moving): the command did not run, and may run once the hub has settled.
_NOT_NOW = (
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.AskError,  # and MovedError: redirected more times than followed
)


@dataclass(frozen=True)
class Credentials:
    """A chat user's own key to a secured hub: their ACL user and its secret."""

    name: str
    secret: str


class Hub:
    """A namespace on one Redis hub (a server or a cluster), as seen by one chatbus process.

    With ``credentials`` every connection authenticates as that chat user, on
    a secured hub (docs/SECURITY.md), where the secured send path is used.
    """

    def __init__(self, settings: Settings, credentials: Credentials | None = None) -> None:
        self.settings = settings
        self.keys: Keys = settings.keys
        self.credentials = credentials
        self._topology: Topology | None = None
        self._lock = threading.Lock()

    @property
    def secured(self) -> bool:
        return self.credentials is not None

    @property
    def topology(self) -> Topology:
        """The server or the cluster at the URL, found out at the first use."""
        topology = self._topology  # on every command: no lock once it is known
        if topology is not None:
            return topology
        with self._lock:
            if self._topology is None:
                self._topology = self._connect()
            return self._topology

    def _connect(self) -> Topology:
        url = self.settings.url
        try:
            return self._connect_to(url)
        except (redis.ConnectionError, redis.TimeoutError):
            # The URL's node is down; if it was a cluster's, another node may answer.
            for other in known_nodes.remembered(self.settings.home, url):
                with suppress(redis.ConnectionError, redis.TimeoutError):
                    topology = self._connect_to(other)
                    if topology.cluster:
                        return topology
                    topology.close()  # someone else's server on that port now
            raise

    def _connect_to(self, url: str) -> Topology:
        # Commands retry once on a broken connection (a pooled socket the hub
        # closed while it restarted) but never on a timeout: a hub that stopped
        # answering should be reported after one SOCKET_TIMEOUT, not four.
        commands = self._client(
            url,
            Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 1, (redis.ConnectionError,)),
        )
        try:
            cluster = not url.startswith("unix://") and _is_cluster(commands)
        except BaseException:
            commands.close()
            raise
        if not cluster:
            # Pub/sub never reconnects on its own: redis-py would resubscribe
            # silently, and the messages published meanwhile would be missed.
            # The receiver reconnects itself and reads the gap from the mailbox.
            # A timeout is not a reason to reconnect either: it can mean half a
            # message has arrived, which a reconnect would throw away.
            subscriber = self._client(url, Retry(NoBackoff(), 0, (redis.ConnectionError,)))
            return SingleServer(commands, subscriber)
        commands.close()
        nodes = ClusterNodes(url, self._options())
        known_nodes.remember(self.settings.home, self.settings.url, nodes.addresses())
        return nodes

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "decode_responses": False,
        }
        if self.credentials is not None:
            options["username"] = self.credentials.name.lower()
            options["password"] = self.credentials.secret
        if self.settings.tls_ca is not None and self.settings.url.startswith("rediss://"):
            options["ssl_ca_certs"] = str(self.settings.tls_ca)
        return options

    def _client(self, url: str, retry: Retry) -> redis.Redis:
        return redis.Redis.from_url(url, retry=retry, **self._options())

    @property
    def redis(self) -> Client:
        """The client for plain commands (routed by key on a cluster)."""
        return self.topology.commands

    @property
    def cluster(self) -> bool:
        return self.topology.cluster

    @property
    def url(self) -> str:
        return display_url(self.settings.url)

    def refresh(self) -> None:
        """Read a cluster's slot map again (nothing on a single server)."""
        with self.errors():
            self.topology.refresh()

    def time_ms(self) -> int:
        """The hub's clock, in ms since the epoch."""
        with self.errors():
            seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn redis-py's connection errors into one-line HubUnavailable."""
        try:
            yield
        except redis.exceptions.AuthenticationError as error:
            raise self.access_refused() from error
        except redis.exceptions.NoPermissionError as error:
            raise HubRefused(
                f"the hub at {self.url} does not allow that to {self._who()}: "
                f"{describe_failure(error)}"
            ) from error
        except NotConfirmed as error:
            raise HubUnavailable(self.url, str(error), stalled=True) from error
        except _NOT_NOW as error:
            raise HubUnavailable(self.url, describe_failure(error)) from error
        except RedisClusterException as error:
            # Not a RedisError: no node of the cluster answered, or a slot has no owner.
            cause = error.__cause__ or error
            raise self._unreachable(cause) from error
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise self._unreachable(error) from error
        except redis.exceptions.InvalidResponse as error:
            raise HubUnavailable(
                self.url, "what answers there is not a Redis server; is it the right port?"
            ) from error
        except redis.exceptions.ResponseError as error:
            text = describe_failure(error)
            if text.startswith("BUSY"):  # a script runs long: not a refusal, try again
                raise HubUnavailable(self.url, text) from error
            if "unknown command" in text.lower():
                raise HubUnavailable(
                    self.url, f"the server is too old ({text}); chatbus needs Redis 7+ or Valkey"
                ) from error
            raise HubRefused(f"the hub at {self.url} refused the request: {text}") from error

    def _who(self) -> str:
        return self.credentials.name if self.credentials else "a client without a login"

    def access_refused(self) -> AccessRefused:
        """Why a secured hub turned the connection down, and what to do."""
        if self.credentials is None and urlsplit(self.settings.url).password:
            return AccessRefused(
                f"the hub at {self.url} refused the credentials in the URL "
                "(for chatbus admin: the admin URL in the data dir's admin.url)"
            )
        if self.credentials is None:
            return AccessRefused(
                f"the hub at {self.url} is secured: log in with the name and password "
                "its admin gave you ('chatbus login NAME')"
            )
        name = self.credentials.name
        return AccessRefused(
            f"the hub at {self.url} no longer accepts the key of {name!r} (removed, or the "
            f"password was reset): log in again with 'chatbus login {name}', or ask the admin"
        )

    def _unreachable(self, error: BaseException) -> HubUnavailable:
        """A connection failure in one line, with what to do (about TLS when
        that is the trouble: the hub is up then, no use starting one)."""
        text = describe_failure(error)
        stalled = isinstance(error, redis.exceptions.TimeoutError)
        tls = self.settings.url.startswith("rediss://")
        if "CERTIFICATE_VERIFY_FAILED" in text:
            why = "its TLS certificate is not signed by a CA this client trusts"
            advice = "Give the hub's CA file with --tls-ca FILE (CHATBUS_TLS_CA)"
            return HubUnavailable(self.url, why, advice=advice)
        if not tls and ("reset by peer" in text or "closed by server" in text.lower()):
            advice = "If the hub takes only TLS, use a rediss:// URL (and --tls-ca FILE)"
            return HubUnavailable(self.url, text, stalled=stalled, advice=advice)
        if tls and stalled:
            advice = "If the hub does not speak TLS, use a redis:// URL"
            return HubUnavailable(self.url, text, stalled=stalled, advice=advice)
        return HubUnavailable(self.url, text, stalled=stalled)

    def close(self) -> None:
        with self._lock:
            if self._topology is not None:
                self._topology.close()
                self._topology = None


def _is_cluster(client: redis.Redis) -> bool:
    """True when the server at the URL is a node of a Redis Cluster.

    CLUSTER INFO rather than INFO, which a secured hub's users may not run.
    """
    try:
        client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
    except redis.exceptions.ResponseError:
        return False  # "This instance has cluster support disabled"
    return True

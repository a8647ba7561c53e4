"""Settings shared by every part of chatbus, with their defaults."""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import platformdirs

from .errors import InvalidSetting
from .keys import DEFAULT_NAMESPACE, Keys

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_LEASE_TTL = 10.0
DEFAULT_MAX_BODY = 4096
DEFAULT_MAILBOX_MAXLEN = 10_000

# Not starting with a dot: the namespace is also a directory name under CHATBUS_HOME.
_NAMESPACE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_URL_SCHEMES = ("redis://", "rediss://", "unix://")


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    where = parts.netloc.rpartition("@")[2]  # host and port as written
    return urlunsplit(parts._replace(netloc=f"{user}:***@{where}"))


def default_home() -> Path:
    """Where local identities live when CHATBUS_HOME is not set."""
    return Path(platformdirs.user_config_dir("chatbus"))


@dataclass(frozen=True)
class Settings:
    """How to reach the hub and the limits every client agrees on.

    ``lease_ttl`` is how long (seconds) a presence lease lives without a
    heartbeat: a crashed client leaves the online list within about that time.
    ``max_body`` caps a message body in UTF-8 bytes, on sending and receiving.
    ``mailbox_maxlen`` is the approximate number of messages a mailbox keeps.
    ``tls_ca`` is the CA file a ``rediss://`` hub's certificate must chain to
    (None: the system's trust store, or ``?ssl_ca_certs=`` in the URL).
    """

    url: str = DEFAULT_URL
    namespace: str = DEFAULT_NAMESPACE
    home: Path = field(default_factory=default_home)
    lease_ttl: float = DEFAULT_LEASE_TTL
    max_body: int = DEFAULT_MAX_BODY
    mailbox_maxlen: int = DEFAULT_MAILBOX_MAXLEN
    tls_ca: Path | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(_URL_SCHEMES):
            raise InvalidSetting(
                f"invalid hub URL {display_url(self.url)!r}: "
                "it must start with redis://, rediss:// or unix://"
            )
        try:
            urlsplit(self.url).port  # noqa: B018 (parsing it is the check)
        except ValueError:
            raise InvalidSetting(
                f"invalid hub URL {display_url(self.url)!r}: the port must be 1-65535"
            ) from None
        if not _NAMESPACE.fullmatch(self.namespace):
            raise InvalidSetting(
                f"invalid namespace {self.namespace!r}: use 1-64 of A-Z a-z 0-9 _ . - "
                "(not starting with a dot)"
            )
        if not 1.0 <= self.lease_ttl <= 3600.0:
            raise InvalidSetting("the lease TTL must be between 1 and 3600 seconds")
        if not 1 <= self.max_body <= 1_048_576:
            raise InvalidSetting("the message size limit must be between 1 byte and 1 MiB")
        if self.mailbox_maxlen < 1:
            raise InvalidSetting("the mailbox length must be at least 1")

    @property
    def keys(self) -> Keys:
        return Keys(self.namespace)


def hub_folder(url: str) -> str:
    """A directory name for the hub at ``url``: where it is, not how to log in to it.

    Readable (``localhost-6379-0-…``), plus a short hash of the exact place so
    that two hubs never share a folder however their names read once made
    safe for a file system (``[::1]`` and a host named ``1``, say).
    """
    parts = urlsplit(url)
    asked_db = parse_qs(parts.query).get("db")  # redis-py: ?db= wins over the path
    if parts.scheme == "unix":
        kind, place, db = "unix", parts.path, (asked_db or ["0"])[0]
    else:
        kind, place = "tcp", f"{parts.hostname or 'localhost'}-{parts.port or 6379}"
        db = (asked_db or [parts.path.strip("/") or "0"])[0]
    if db.isdecimal():
        db = str(int(db))  # "/00" is database 0
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{place}-{db}").strip("_.")
    exact = hashlib.sha256(f"{kind}\n{place}\n{db}".encode()).hexdigest()[:8]
    return f"{readable}-{exact}"

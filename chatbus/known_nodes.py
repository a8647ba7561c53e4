"""The nodes of a cluster this machine has seen, so a dead seed node is not the end.

``--url`` names one node of a cluster. When that node is down, a client that
has reached the cluster before still knows the others: after each connect
their addresses are kept under CHATBUS_HOME (beside the saved logins of that
URL, ``<hub>/cluster-nodes``, one ``host:port`` a line), and tried in turn
when the URL's node does not answer.
"""

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .config import hub_folder


def _file(home: Path, url: str) -> Path:
    return home / hub_folder(url) / "cluster-nodes"


def remembered(home: Path, url: str) -> list[str]:
    """The other nodes' URLs, as last seen from ``url`` (none if never)."""
    try:
        lines = _file(home, url).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return []
    return [at(url, address) for address in lines if _is_address(address)]


def remember(home: Path, url: str, addresses: Iterable[str]) -> None:
    """Keep ``addresses`` (``host:port``) as the nodes of the cluster at ``url``."""
    path = _file(home, url)
    text = "".join(f"{address}\n" for address in sorted(set(addresses)))
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".cluster-nodes.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(name).replace(path)
    except OSError:
        return  # a read-only home: the URL alone must do, as before


def at(url: str, address: str) -> str:
    """``url`` with its host and port replaced by ``address``: same credentials, TLS, db."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    netloc = f"{credentials}@{address}" if credentials else address
    return urlunsplit(parts._replace(netloc=netloc))


def _is_address(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536

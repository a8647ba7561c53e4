"""The local identity: saved sessions, so commands run without a password.

Layout under the home directory (CHATBUS_HOME or the platform config dir)::

    <hub>/<namespace>/<name in lower case>.json   {"name": ..., "token": ...}   mode 0600
                                                  (+ "hub_secret" on a secured hub)
    <hub>/<namespace>/current                     the name the last login saved

``<hub>`` names the hub by host, port and database (``localhost-6379-0-<hash>``),
or socket path, never by credentials: a login to one hub does not replace the
saved session of another. Several users may be logged in from one home
(``--as NAME`` picks one); a command without ``--as`` acts as the last one who
logged in on that hub.
"""

import json
import os
import tempfile
from pathlib import Path

from .accounts import Session
from .config import hub_folder
from .errors import NotLoggedIn
from .names import is_valid_name, validate_name


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only.

    mkstemp creates a new file (never an existing one or a link's target) with
    mode 0600, so two logins at once, or a stale temporary file, cannot leave
    the token readable by others.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class IdentityStore:
    """Saved sessions of one namespace of one hub under one home directory."""

    def __init__(self, home: Path, url: str, namespace: str) -> None:
        self.directory = home / hub_folder(url) / namespace

    def _file(self, name: str) -> Path:
        return self.directory / f"{name.lower()}.json"

    @property
    def _current(self) -> Path:
        return self.directory / "current"

    def save(self, session: Session) -> Path:
        """Keep ``session`` and make it the one commands use by default."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory.chmod(0o700)
        self.directory.parent.chmod(0o700)
        path = self._file(session.name)
        saved = {"name": session.name, "token": session.token}
        if session.hub_secret is not None:
            saved["hub_secret"] = session.hub_secret
        _write_private(path, json.dumps(saved))
        _write_private(self._current, session.name)
        return path

    def current_name(self) -> str | None:
        """The name commands act as without ``--as``, if anyone logged in."""
        try:
            name = self._current.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return name if is_valid_name(name) else None

    def load(self, name: str | None = None) -> Session:
        """The saved session of ``name`` (default: the last login)."""
        if name is None:
            name = self.current_name()
            if name is None:
                raise NotLoggedIn("nobody is logged in here; run 'chatbus login NAME' first")
        validate_name(name)
        try:
            data = json.loads(self._file(name).read_text(encoding="utf-8"))
            secret = data.get("hub_secret")
            session = Session(
                str(data["name"]), str(data["token"]), None if secret is None else str(secret)
            )
        except FileNotFoundError:
            raise NotLoggedIn(
                f"{name!r} is not logged in here; run 'chatbus login {name}'"
            ) from None
        except OSError as error:
            raise NotLoggedIn(
                f"cannot read the saved session of {name!r} ({error.strerror}); "
                f"run 'chatbus login {name}'"
            ) from None
        except (ValueError, KeyError, TypeError):
            raise NotLoggedIn(
                f"the saved session of {name!r} is damaged; run 'chatbus login {name}'"
            ) from None
        validate_name(session.name)
        return session

    def remove(self, session: Session) -> None:
        """Forget ``session``; if it was the default, no one is the default."""
        self._file(session.name).unlink(missing_ok=True)
        if (self.current_name() or "").lower() == session.name.lower():
            self._current.unlink(missing_ok=True)

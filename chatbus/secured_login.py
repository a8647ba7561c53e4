"""Logging in to a secured hub: as one's own Redis ACL user.

The person's password never goes to the hub: the client derives the user's
hub secret from it (:func:`chatbus.acl.hub_secret`) and authenticates with
that; a wrong password is a refused connection. The session saved locally
keeps the secret (it is the user's key to the hub: the file is 0600) and, as
on an open hub, a session token whose digest is in the user's ``sessions``
hash, which the admin deletes to end every running client of the user.
"""

import secrets
import time
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from . import accounts
from .accounts import Session
from .acl import hub_secret
from .config import Settings
from .errors import AccessRefused, WrongPassword
from .hub import Credentials, Hub, as_text
from .names import validate_name


def login(settings: Settings, name: str, password: str, *, saved: Session | None) -> Session:
    """Log in as ``name``; WrongPassword if the hub refuses the derived secret.

    ``saved`` is a session of ``name`` kept here: while the hub accepts it,
    it is kept (no token left behind, other windows go on).
    """
    validate_name(name)
    credentials = Credentials(name.lower(), hub_secret(settings.namespace, name, password))
    hub = Hub(settings, credentials)
    try:
        try:
            with hub.errors():
                stored = hub.redis.hget(hub.keys.account(name), "name")
        except AccessRefused:
            raise WrongPassword(
                f"wrong password for {name!r}, or no user {name!r} on this secured hub "
                "(its admin adds users: 'chatbus admin add-user NAME')"
            ) from None
        display = as_text(stored) if stored is not None else name
        same_key = saved is not None and saved.hub_secret == credentials.secret
        if saved is not None and same_key and accounts.accepted(hub, saved):
            return saved
        token = secrets.token_urlsafe(32)
        with hub.errors():
            hub.redis.hset(
                hub.keys.sessions(name), accounts.token_digest(token), time.time_ns() // 1_000_000
            )
        return Session(display, token, credentials.secret)
    finally:
        hub.close()


def redis_url(settings: Settings, session: Session) -> str:
    """A URL holding ``session``'s own key to the hub, for redis-cli and scripts.

    A secret: whoever has it can act as the user until the admin resets the
    password. On an open hub there is no key of one's own: the hub's URL.
    """
    parts = urlsplit(settings.url)
    if session.hub_secret is None:
        return settings.url
    where = parts.netloc.rpartition("@")[2]
    user = quote(session.name.lower(), safe="")
    netloc = f"{user}:{quote(session.hub_secret, safe='')}@{where}"
    query = parse_qsl(parts.query)
    if settings.tls_ca is not None and parts.scheme == "rediss":
        query = [(k, v) for k, v in query if k != "ssl_ca_certs"]
        query.append(("ssl_ca_certs", str(settings.tls_ca)))
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))

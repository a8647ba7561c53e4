"""Accounts and sessions: a name is registered once and kept by a password.

Passwords are hashed with scrypt (memory-hard, in the standard library) on the
client, because there is no chatbus server: the hub stores the salt, the hash
and the cost parameters, so the parameters can be raised later without
breaking old accounts. A login hands out a random token; the hub keeps only
its SHA-256, so a copy of the hub's data cannot be replayed as a session.

Wrong passwords are slowed down per name, on the hub (login_failures.lua, in
the user's own hash slot, timed by the hub's clock): see :class:`Throttle`.
Like every check of an open hub, chatbus clients enforce it; a raw Redis
client can get round it.
"""

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass

from . import lua
from .errors import (
    ChatbusError,
    DamagedRecord,
    NameTaken,
    SessionEnded,
    TooManyWrongPasswords,
    UnknownUser,
    WeakPassword,
    WrongPassword,
)
from .hub import Credentials, Hub, as_text
from .names import is_valid_name, same_name, validate_name

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1

_REGISTER = lua.load("register.lua")
_CHANGE_PASSWORD = lua.load("change_password.lua")
_LOGIN_FAILURES = lua.load("login_failures.lua")


@dataclass(frozen=True)
class Throttle:
    """How wrong passwords for one name are slowed down.

    The first ``free`` wrong passwords in a row cost nothing; after that,
    each try must wait ``base_ms * 2 ** (failures - free)`` after the last
    failure (1 s, 2 s, 4 s, ...), at most ``longest_ms``. A try made sooner is
    refused without checking the password, so it cannot guess. A right
    password clears the record; so does ``keep_ms`` without a failure.
    """

    free: int = 3
    base_ms: int = 1_000
    longest_ms: int = 60_000
    keep_ms: int = 15 * 60_000


THROTTLE = Throttle()


@dataclass(frozen=True)
class Session:
    """A logged-in user: the registered display name and the secret token, and
    on a secured hub the user's own key to it (docs/SECURITY.md)."""

    name: str
    token: str
    hub_secret: str | None = None

    @property
    def credentials(self) -> Credentials | None:
        return None if self.hub_secret is None else Credentials(self.name, self.hub_secret)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32
    )


def token_digest(token: str) -> str:
    """What the hub stores for a session token (tokens are random, so no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_password_rules(password: str) -> None:
    """Raise WeakPassword unless ``password`` may be registered."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"the password must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"the password must be at most {MAX_PASSWORD} characters long")


def registered_name(hub: Hub, name: str) -> str | None:
    """The display name ``name`` was registered as, or None if it is free.

    On a secured hub, where nobody reads another's account, the directory
    the admin keeps says it.
    """
    validate_name(name)
    with hub.errors():
        if hub.secured:
            stored = hub.redis.hget(hub.keys.directory, name.lower())
        else:
            stored = hub.redis.hget(hub.keys.account(name), "name")
    if stored is None:
        return None
    return _checked_name(as_text(stored), name)


def _checked_name(stored: str, name: str) -> str:
    """The stored display name of ``name``'s account, if it is one chatbus wrote."""
    if not (is_valid_name(stored) and same_name(stored, name)):
        raise DamagedRecord(f"the account record of {name!r} on the hub is damaged")
    return stored


@dataclass(frozen=True)
class _Account:
    name: str
    salt: bytes
    digest: bytes
    n: int
    r: int
    p: int

    @classmethod
    def parse(cls, fields: dict[str, str], name: str) -> "_Account":
        """The account as stored, refusing what chatbus would never write
        (a huge scrypt cost would also make logging in hang)."""
        try:
            account = cls(
                _checked_name(fields["name"], name),
                bytes.fromhex(fields["salt"]),
                bytes.fromhex(fields["hash"]),
                int(fields["n"]),
                int(fields["r"]),
                int(fields["p"]),
            )
        except (KeyError, ValueError):
            raise DamagedRecord(f"the account record of {name!r} on the hub is damaged") from None
        power_of_two = account.n > 1 and account.n & (account.n - 1) == 0
        if not (
            power_of_two and account.n <= 2**20 and 1 <= account.r <= 32 and 1 <= account.p <= 16
        ):
            raise DamagedRecord(f"the account record of {name!r} on the hub is damaged")
        return account


def register(hub: Hub, name: str, password: str) -> Session:
    """Register ``name``, which must be free, and log in as it.

    Raises NameTaken when another client registered the name first.
    """
    validate_name(name)
    check_password_rules(password)
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    token = secrets.token_urlsafe(32)
    with hub.errors():
        created = _REGISTER(
            hub.topology,
            [hub.keys.account(name), hub.keys.sessions(name)],
            [name, salt.hex(), digest.hex(), SCRYPT_N, SCRYPT_R, SCRYPT_P, token_digest(token)],
        )
    if not created:
        raise NameTaken(f"the name {name!r} was registered a moment ago; log in with its password")
    return Session(name, token)


def _stored_account(hub: Hub, name: str) -> _Account:
    """The registered account ``name``; UnknownUser if there is none."""
    validate_name(name)
    with hub.errors():
        account = hub.redis.hgetall(hub.keys.account(name))
    if not account:
        raise UnknownUser(f"no account named {name!r}")
    return _Account.parse({as_text(k): as_text(v) for k, v in account.items()}, name)


def _check_password(account: _Account, password: str) -> None:
    given = _scrypt(password, account.salt, account.n, account.r, account.p)
    if not hmac.compare_digest(account.digest, given):
        raise WrongPassword(f"wrong password for {account.name!r}")


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


def _throttled_check(
    hub: Hub, account: _Account, password: str, throttle: Throttle, advice: str = ""
) -> None:
    """:func:`_check_password`, unless the name's wrong passwords in a row make
    this try wait: then TooManyWrongPasswords, without checking it."""
    record = [hub.keys.login_failures(account.name)]
    limits = [throttle.free, throttle.base_ms, throttle.longest_ms, throttle.keep_ms]
    with hub.errors():
        allowed, wait_ms = (
            int(x) for x in _LOGIN_FAILURES(hub.topology, record, ["attempt", *limits])
        )
    if not allowed:
        raise TooManyWrongPasswords(
            f"too many wrong passwords for {account.name!r}: try again in {_seconds(wait_ms)} s"
        )
    try:
        _check_password(account, password)
    except WrongPassword as wrong:
        # The try was counted as a failure before the check (login_failures.lua).
        wait = f"; wait {_seconds(wait_ms)} s before the next try" if wait_ms else ""
        raise WrongPassword(f"{wrong}{advice}{wait}") from None
    with hub.errors():
        _LOGIN_FAILURES(hub.topology, record, ["clear"])


def login(
    hub: Hub,
    name: str,
    password: str,
    *,
    saved: Session | None = None,
    throttle: Throttle = THROTTLE,
) -> Session:
    """Log in to the registered account ``name`` with its password.

    ``saved`` is a session of ``name`` kept on this machine: while the hub
    still accepts it, it is the one returned, so logging in again neither
    leaves another live token behind nor ends the windows that use it.
    Wrong passwords are slowed down by ``throttle``.
    """
    stored = _stored_account(hub, name)
    _throttled_check(
        hub, stored, password, throttle, " (if that name is not yours, choose another)"
    )
    if saved is not None and same_name(saved.name, name) and accepted(hub, saved):
        return Session(stored.name, saved.token)
    token = secrets.token_urlsafe(32)
    with hub.errors():
        hub.redis.hset(hub.keys.sessions(name), token_digest(token), time.time_ns() // 1_000_000)
    return Session(stored.name, token)


def require_own_passwords(hub: Hub, session: Session) -> None:
    """A secured hub's passwords are its ACL users' (admin-only): say whom to ask.

    A user cannot be allowed ACL SETUSER on themselves alone (docs/SECURITY.md).
    """
    if hub.secured:
        raise ChatbusError(
            "on a secured hub only its admin changes passwords: "
            f"ask them to run 'chatbus admin reset-password {session.name}'"
        )


def confirm_password(
    hub: Hub, session: Session, password: str, *, throttle: Throttle = THROTTLE
) -> None:
    """WrongPassword unless ``password`` is that of ``session``'s account.

    For asking again before anything changes; :func:`change_password` checks
    by itself. Wrong passwords are slowed down by ``throttle``.
    """
    require_own_passwords(hub, session)
    _throttled_check(hub, _stored_account(hub, session.name), password, throttle)


def change_password(
    hub: Hub, session: Session, current: str, new: str, *, throttle: Throttle = THROTTLE
) -> int:
    """Give ``session``'s account the password ``new`` and end its other sessions.

    ``current`` must be the account's password: a session token alone (a
    copied identity file) cannot take the account over. Ending the other
    sessions is what makes a change useful after a leak. Returns how many
    other sessions were ended. Wrong current passwords are slowed down by
    ``throttle``.
    """
    require_own_passwords(hub, session)
    check_password_rules(new)
    verify(hub, session)
    stored = _stored_account(hub, session.name)
    _throttled_check(hub, stored, current, throttle)
    salt = secrets.token_bytes(16)
    digest = _scrypt(new, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    with hub.errors():
        ended = int(
            _CHANGE_PASSWORD(
                hub.topology,
                [hub.keys.account(session.name), hub.keys.sessions(session.name)],
                [
                    stored.digest.hex(),
                    salt.hex(),
                    digest.hex(),
                    SCRYPT_N,
                    SCRYPT_R,
                    SCRYPT_P,
                    token_digest(session.token),
                ],
            )
        )
    if ended == -1:
        raise WrongPassword(
            f"the password of {stored.name!r} was changed elsewhere a moment ago; "
            "nothing was changed here"
        )
    if ended == -2:
        raise _session_ended(session)
    return ended


def verify(hub: Hub, session: Session) -> None:
    """Raise SessionEnded unless the hub still accepts ``session``."""
    if not accepted(hub, session):
        raise _session_ended(session)


def accepted(hub: Hub, session: Session) -> bool:
    """True while the hub accepts ``session`` (not logged out, password not changed)."""
    with hub.errors():
        return bool(hub.redis.hexists(hub.keys.sessions(session.name), token_digest(session.token)))


def _session_ended(session: Session) -> SessionEnded:
    return SessionEnded(
        f"the hub no longer accepts the session of {session.name!r}; "
        f"log in again with 'chatbus login {session.name}'"
    )


def logout(hub: Hub, session: Session) -> None:
    """Revoke ``session`` on the hub; other sessions of the user stay valid."""
    with hub.errors():
        hub.redis.hdel(hub.keys.sessions(session.name), token_digest(session.token))

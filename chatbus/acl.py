"""A secured hub's access rules: one Redis ACL user per chat user.

The broker keeps users apart (docs/SECURITY.md): a user's credentials open
their own keys and channels, and in others' space only what delivery needs:

* their own outgoing stream to each recipient, ``NS:{bob}:from:alice`` (read
  and write: a retry looks for what an earlier try stored), which bob's
  client moves into his mailbox, trusting the stream's name, never the
  envelope, for who sent it;
* ``SADD`` on a recipient's ``senders`` set, and ``SPUBLISH`` on their bell
  channel (selectors: nothing else on those);
* reading the user directory and everyone's presence, and writing their own
  presence lease;
* the whole of each room they are a member of (``NS:{#ops}:*``, keys and
  channel), and reading the list of public rooms. Rooms change these rules:
  only the admin may run ``ACL SETUSER``, so the admin adds people to rooms
  and removes them (``chatbus admin room-add`` / ``room-remove``), and
  :func:`access_rules` is what a user's key and channel rules are then;
* only the commands chatbus sends.

The ACL password is not the person's password but a secret derived from it
with scrypt (:func:`hub_secret`): Redis keeps SHA-256 of its passwords, a
fast hash, so what it keeps must not be guessable.
"""

import hashlib
from collections.abc import Iterable

from .keys import Keys

# What a chat user may run, and nothing more (no KEYS, SCAN, FLUSH*, CONFIG,
# ACL, FUNCTION, DEBUG, MONITOR, CLIENT KILL, SCRIPT FLUSH/KILL, EVAL...).
USER_COMMANDS = (
    # connecting: RESP3 handshake, credentials, liveness, redis-py's library info
    "hello", "auth", "ping", "client|setinfo", "client|setname",
    # finding out the hub: a cluster's slot map and node roles, command table
    "cluster|info", "cluster|slots", "cluster|shards", "cluster|nodes", "command",
    "asking", "wait", "time",
    # scripts, run by SHA
    "evalsha", "script|load", "script|exists",
    # the data types chatbus uses, on the keys the patterns allow
    "exists", "del", "pexpireat",
    "hget", "hmget", "hgetall", "hset", "hdel", "hexists", "hincrby", "hkeys",
    "get", "mget", "set",
    "xadd", "xrange", "xrevrange", "xdel", "xlen",
    "smembers", "srem",
    "zscore", "zadd", "zremrangebyrank",
    # live delivery
    "ssubscribe", "sunsubscribe",
)  # fmt: skip

# Rules a server may not know (CLIENT SETINFO came with Redis 7.2; Debian's
# Redis 7.0 refuses the rule): left out on such a server, which never gets
# the command either (redis-py ignores its refusal).
OPTIONAL_RULES = frozenset({"+client|setinfo"})

# scrypt cost of the hub secret: as for account passwords (accounts.py).
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


def hub_secret(namespace: str, name: str, password: str) -> str:
    """The ACL password of ``name``: scrypt of the person's password, salted
    with the namespace and the name (the client needs the salt before it can
    read anything, so it is derived, not stored)."""
    salt = hashlib.sha256(f"chatbus hub secret\n{namespace}\n{name.lower()}".encode()).digest()
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT).hex()


def user_rules(keys: Keys, name: str, secret: str, rooms: Iterable[str] = ()) -> list[str]:
    """``ACL SETUSER <name>`` arguments that make ``name`` a chat user with
    ``secret``, a member of ``rooms``."""
    return [
        "reset",
        "on",
        f">{secret}",
        *(f"+{command}" for command in USER_COMMANDS),
        "+spublish",  # on their own channels, their rooms' and the presence channel only
        *access_rules(keys, name, rooms),
    ]


def access_rules(keys: Keys, name: str, rooms: Iterable[str]) -> list[str]:
    """The key, channel and selector rules of ``name``, a member of ``rooms``;
    after ``resetkeys resetchannels clearselectors`` they replace what the user
    had, leaving the password and the commands as they were."""
    me = name.lower()
    return [
        # their own keys and channels, whole
        f"~{keys.pattern(me, '*')}",
        f"&{keys.pattern(me, '*')}",
        # their streams to others: written by them alone
        f"%RW~{keys.pattern('*', f'from:{me}')}",
        # the directory of names, everyone's presence (read), their own lease
        f"%R~{keys.pattern('directory', '*')}",
        f"%R~{keys.pattern('presence', '*')}",
        f"~{keys.lease_of(me)}",
        f"~{keys.online_until(me)}",
        f"&{keys.users_channel}",
        f"%R~{keys.public_rooms}",
        # the rooms they are in: read, post, subscribe
        *(f"~{keys.pattern(room.lower(), '*')}" for room in rooms),
        *(f"&{keys.pattern(room.lower(), '*')}" for room in rooms),
        # in others' space, one command each: tell them a stream waits, ring them
        f"(+sadd %W~{keys.pattern('*', 'senders')})",
        f"(+spublish &{keys.pattern('*', 'bell')})",
    ]

"""Presence: leases that keep a name online, and the list built from events.

Each running client holds its own lease and renews it by heartbeat; a name is
online while any of its leases lives. All changes go through ``presence.lua``
in one slot, which publishes ``join``/``leave`` events with a sequence number
on the users channel. A client builds its list from a snapshot (names + seq)
and applies events in order; a gap in seq means it missed one and must take a
new snapshot. No event ever carries the whole list.
"""

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

from . import lua
from .hub import Hub
from .keys import Keys
from .names import is_valid_name, valid_names

_PRESENCE = lua.load("presence.lua")
_OWN_LEASE = lua.load("own_lease.lua")


@dataclass(frozen=True)
class PresenceEvent:
    """Someone came online or went offline; ``online`` is the count after it."""

    kind: Literal["join", "leave"]
    name: str
    seq: int
    online: int


def parse_event(raw: bytes) -> PresenceEvent:
    """Decode an event from the users channel; ValueError if it is not one."""
    data: Any = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    kind, name, seq, online = (
        data.get("type"),
        data.get("name"),
        data.get("seq"),
        data.get("online"),
    )
    if kind not in ("join", "leave") or not is_valid_name(name):
        raise ValueError("bad type or name")
    if not isinstance(seq, int) or not isinstance(online, int) or seq < 1 or online < 0:
        raise ValueError("bad seq or count")
    return PresenceEvent(kind, name, seq, online)


def presence_call(keys: Keys, operation: str, *args: str | int) -> lua.ScriptCall:
    """A ``presence.lua`` call: "join"/"leave" with name, lease id, TTL (ms), or "snapshot"."""
    return lua.ScriptCall(
        _PRESENCE,
        [keys.online, keys.leases, keys.lease_index, keys.presence_seq],
        [operation, keys.users_channel, *args],
    )


def _call(hub: Hub, operation: str, *args: str | int) -> Any:
    with hub.errors():
        return lua.run_calls(hub.topology, [presence_call(hub.keys, operation, *args)])[0]


def snapshot(hub: Hub) -> tuple[int, list[str]]:
    """The online names, sorted case-insensitively, and the seq of the last event they include.

    The hub replies in lease-expiry order, which changes with every heartbeat;
    sorting here gives every caller the stable order a user expects to read.
    A secured hub has no seq (0): its list is everyone in the directory whose
    own lease is live.
    """
    if hub.secured:
        return 0, _owned_snapshot(hub)
    seq, stored = _call(hub, "snapshot")
    # Only names a chatbus client could have put there; anything else is junk.
    return int(seq), sorted(valid_names(stored), key=str.lower)


def _owned_snapshot(hub: Hub) -> list[str]:
    """Who is online on a secured hub: the directory, then each one's lease."""
    keys = hub.keys
    with hub.errors():
        directory = cast(dict[bytes, bytes], hub.redis.hgetall(keys.directory))
        names = valid_names(sorted(directory.values()))
        if not names:
            return []
        until = hub.redis.mget([keys.online_until(name) for name in names])
    now = hub.time_ms()
    live = [name for name, ms in zip(names, until, strict=True) if _after(ms, now)]
    return sorted(live, key=str.lower)


def _after(stored: bytes | str | None, now_ms: int) -> bool:
    """True when a stored expiry (ms) is later than ``now_ms``."""
    return stored is not None and stored.isdigit() and int(stored) > now_ms


def online_now(hub: Hub, name: str) -> bool:
    """On a secured hub: whether ``name``'s own lease is live (a claim on the
    users channel, which anyone may publish, is checked against this)."""
    with hub.errors():
        until = hub.redis.get(hub.keys.online_until(name))
    return _after(until, hub.time_ms())


def parse_claim(raw: bytes) -> tuple[Literal["join", "leave"], str]:
    """A secured hub's presence event, ``{"type": ..., "name": ...}``; ValueError if not one."""
    data: Any = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    kind, name = data.get("type"), data.get("name")
    if kind not in ("join", "leave") or not is_valid_name(name):
        raise ValueError("bad type or name")
    return kind, name


class Lease:
    """One process's claim that ``name`` is online."""

    def __init__(self, hub: Hub, name: str) -> None:
        self.hub = hub
        self.name = name
        self.lease_id = secrets.token_hex(8)
        self.ttl_ms = int(hub.settings.lease_ttl * 1000)

    def renew(self) -> bool:
        """Take or renew the lease; True if this made the name come online."""
        return self._call("join")

    def release(self) -> bool:
        """Give the lease up; True if the name went offline with it."""
        return self._call("leave")

    def _call(self, operation: str) -> bool:
        if not self.hub.secured:
            return bool(_call(self.hub, operation, self.name, self.lease_id, self.ttl_ms))
        keys = self.hub.keys
        with self.hub.errors():
            return bool(
                _OWN_LEASE(
                    self.hub.topology,
                    [keys.lease_of(self.name), keys.online_until(self.name)],
                    [operation, keys.users_channel, self.name, self.lease_id, self.ttl_ms],
                )
            )


class OnlineList:
    """The online names, kept current from a snapshot and the events after it."""

    def __init__(self, seq: int, names: Iterable[str]) -> None:
        self.seq = seq
        self._names = {name.lower(): name for name in names}

    @property
    def names(self) -> list[str]:
        """Online names, sorted case-insensitively."""
        return sorted(self._names.values(), key=str.lower)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

    def __len__(self) -> int:
        return len(self._names)

    def set(self, name: str, online: bool) -> bool:
        """Put ``name`` on the list or take it off, whatever the seq (a
        secured hub's checked claim); True if that changed the list."""
        if online == (name in self):
            return False
        if online:
            self._names[name.lower()] = name
        else:
            self._names.pop(name.lower(), None)
        return True

    def apply(self, event: PresenceEvent) -> Literal["applied", "stale", "gap"]:
        """Apply ``event`` if it is the next one.

        "stale": the list already includes it (seq not newer), nothing changed;
        "gap": events were missed, the list needs a new snapshot.
        """
        if event.seq <= self.seq:
            return "stale"
        if event.seq != self.seq + 1:
            return "gap"
        self.seq = event.seq
        if event.kind == "join":
            self._names[event.name.lower()] = event.name
        else:
            self._names.pop(event.name.lower(), None)
        return "applied"

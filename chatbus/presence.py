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
from typing import Any, Literal

from . import lua
from .hub import Hub
from .keys import Keys
from .names import is_valid_name, valid_names

_PRESENCE = lua.load("presence.lua")


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
    """
    seq, stored = _call(hub, "snapshot")
    # Only names a chatbus client could have put there; anything else is junk.
    return int(seq), sorted(valid_names(stored), key=str.lower)


class Lease:
    """One process's claim that ``name`` is online."""

    def __init__(self, hub: Hub, name: str) -> None:
        self.hub = hub
        self.name = name
        self.lease_id = secrets.token_hex(8)
        self.ttl_ms = int(hub.settings.lease_ttl * 1000)

    def renew(self) -> bool:
        """Take or renew the lease; True if this made the name come online."""
        return bool(_call(self.hub, "join", self.name, self.lease_id, self.ttl_ms))

    def release(self) -> bool:
        """Give the lease up; True if the name went offline with it."""
        return bool(_call(self.hub, "leave", self.name, self.lease_id, self.ttl_ms))


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

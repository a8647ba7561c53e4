"""The online list one receiver keeps: a snapshot, then the events that follow it.

On an open hub events come from ``presence.lua`` with a sequence number: one
applies when it is the next, a gap means taking a new snapshot. On a secured
hub anyone may publish on the users channel, so an event is only a claim: it
is checked against the named user's own lease (which only they can write)
before it changes the list; and since nobody else can reap a crashed
client's lease, the list is taken again every lease period.
"""

import time
from collections import Counter
from collections.abc import Callable

from .hub import Hub
from .presence import (
    OnlineList,
    PresenceEvent,
    online_now,
    parse_claim,
    parse_event,
    snapshot,
)

Notify = Callable[[OnlineList, PresenceEvent | None], None]


class PresenceFollower:
    """Keeps ``online`` current and reports each change to ``notify``."""

    def __init__(self, hub: Hub, notify: Notify, dropped: Counter[str]) -> None:
        self.hub = hub
        self.notify = notify
        self.dropped = dropped  # payloads refused, by reason (the receiver's stats)
        self.online = OnlineList(0, [])
        self._next_snapshot = 0.0

    def resync(self, *, only_changes: bool = False) -> None:
        """Take the list again from the hub, and report it (``only_changes``:
        only if it differs from the list kept)."""
        seq, names = snapshot(self.hub)
        before = self.online.names
        self.online = OnlineList(seq, names)
        self._next_snapshot = time.monotonic() + self.hub.settings.lease_ttl
        if not only_changes or self.online.names != before:
            self.notify(self.online, None)

    def resync_if_due(self) -> None:
        """On a secured hub, a crashed client's lease just runs out: look again
        (and say so only when someone came or went)."""
        if self.hub.secured and time.monotonic() >= self._next_snapshot:
            self.resync(only_changes=True)

    def handle(self, raw: bytes) -> None:
        """An event from the users channel."""
        if self.hub.secured:
            self._handle_claim(raw)
            return
        try:
            event = parse_event(raw)
        except ValueError:
            self.dropped["presence-event"] += 1
            return
        outcome = self.online.apply(event)
        if outcome == "applied":
            self.notify(self.online, event)
        elif outcome == "gap":
            self.resync()

    def _handle_claim(self, raw: bytes) -> None:
        try:
            kind, name = parse_claim(raw)
        except ValueError:
            self.dropped["presence-event"] += 1
            return
        if online_now(self.hub, name) != (kind == "join"):
            self.dropped["presence-claim"] += 1  # not what the user's own lease says
            return
        if self.online.set(name, kind == "join"):
            self.notify(self.online, PresenceEvent(kind, name, 0, len(self.online)))

"""Reading one room: from the first unread message, then live, each once.

A member's read position (``NS:{#room}:read``) is a point in the room's log:
everything up to it is read. A room opens at that point, with a few read
entries above it for context, and what is shown is marked read by moving the
point to the newest entry shown. With more than :data:`UNREAD_SHOWN_MAX`
unread messages, the newest ones are shown and the point stays where it is
(the older unread ones are neither seen nor marked) until the reader pages
back to it (:meth:`RoomReader.older`); then everything shown is read.

Same interface as :class:`chatbus.reading.ConversationReader`, so a view shows
a room and a conversation alike.
"""

import threading

from .messages import Message, stream_id_key
from .names import same_name
from .reading import UNREAD_CONTEXT, UNREAD_SHOWN_MAX, OlderPage, Opening
from .rooms import ReadPosition, Rooms


class RoomReader:
    """One room, as one view of ``rooms.me`` reads it."""

    def __init__(self, rooms: Rooms, room: str) -> None:
        self.rooms = rooms
        self.room = room
        self.unread_left = 0
        self._older: str | None = ""  # as in ConversationReader
        self._newest = (0, 0)
        self._ids: set[str] = set()
        # The read position, while older unread messages are not on screen yet.
        self._gap: ReadPosition | None = None
        self._to_mark: Message | None = None  # newest shown live, not yet marked
        self._lock = threading.Lock()

    def includes(self, message: Message) -> bool:
        return message.room is not None and same_name(message.room, self.room)

    def open(self, history: int) -> Opening:
        """From the first unread entry (with context), or the newest ``history``."""
        position, last = self.rooms.position(self.room)
        unread = max(0, last - position.seq)
        if 0 < unread <= UNREAD_SHOWN_MAX:
            after = self._after(position.stream_id)
            context = max(history - len(after), UNREAD_CONTEXT)
            above = self.rooms.page(self.room, context, after[0].stream_id if after else None)
            messages = [*self._keep_new(above.messages), *self._keep_new(after)]
            self._older = above.older
            # The line goes above the first unread message (not above an event).
            first = next((i for i, m in enumerate(after) if not m.envelope.event), None)
            start = len(messages) - len(after)
            opening = Opening(messages, first_unread=None if first is None else start + first)
        else:
            page = self.rooms.page(self.room, max(history, UNREAD_SHOWN_MAX if unread else 1))
            messages = self._keep_new(page.messages)
            if not unread:
                messages = messages[-history:] if history else []
            self._older = page.older if messages else None
            opening = Opening(messages)
            if unread:
                shown = sum(1 for m in messages if not m.envelope.event)
                opening.first_unread = 0 if messages else None  # all shown are unread
                self.unread_left = opening.unread_not_shown = max(0, unread - shown)
                self._gap = position if self.unread_left else None
        if messages:
            self._newest = stream_id_key(messages[-1].stream_id)
            self._mark(messages[-1])
        return opening

    def _after(self, stream_id: str) -> list[Message]:
        """Every entry after ``stream_id`` (at most a screenful more than are unread)."""
        found: list[Message] = []
        while True:
            page = self.rooms.read_after(self.room, stream_id, 500)
            found += page.messages
            if page.last_scanned is None or len(found) > 2 * UNREAD_SHOWN_MAX:
                return found
            stream_id = page.last_scanned

    def older(self, limit: int) -> OlderPage:
        """Up to ``limit`` entries before the oldest shown."""
        if self._older is None:
            return OlderPage([], more=False)
        page = self.rooms.page(self.room, limit, self._older or None)
        self._older = page.older
        messages = self._keep_new(page.messages)
        gap = self._gap
        if gap is not None and messages:
            reached = stream_id_key(messages[0].stream_id) <= stream_id_key(gap.stream_id)
            self.unread_left = 0 if reached else max(0, self.unread_left - len(messages))
            if reached or page.older is None:
                self._gap = None
                self._mark_newest()
        return OlderPage(messages, more=page.older is not None)

    def latest(self, limit: int) -> list[Message]:
        """The newest ``limit`` entries, for showing again."""
        return self.rooms.page(self.room, limit).messages

    def take_live(self, message: Message) -> bool:
        """True when a live entry of this room is not on screen yet."""
        if not self.includes(message) or message.envelope.copy_key in self._ids:
            return False
        key = stream_id_key(message.stream_id)
        if key <= self._newest:
            return False
        self._newest = key
        self._ids.add(message.envelope.copy_key)
        with self._lock:
            self._to_mark = message
        return True

    def flush_read(self) -> None:
        """Mark the room read up to the newest entry shown live (unless older
        unread ones are still off screen)."""
        with self._lock:
            message, self._to_mark = self._to_mark, None
        if message is not None and self._gap is None:
            self._mark(message)

    def _mark_newest(self) -> None:
        newest = self.rooms.page(self.room, 1).messages
        if newest and stream_id_key(newest[0].stream_id) <= self._newest:
            self._mark(newest[0])

    def _mark(self, message: Message) -> None:
        if self._gap is None:
            self.rooms.mark_read(self.room, message)

    def _keep_new(self, messages: list[Message]) -> list[Message]:
        fresh = [m for m in messages if m.envelope.copy_key not in self._ids]
        self._ids.update(m.envelope.copy_key for m in fresh)
        return fresh

"""One conversation or room on screen: from the first unread message, then live, each once."""

from contextlib import suppress

from chatbus.errors import ChatbusError
from chatbus.messages import Message
from chatbus.names import is_room
from chatbus.reading import ConversationReader
from chatbus.room_reading import RoomReader
from chatbus.rooms import Rooms

from .coalesce import Coalesced
from .live import LiveClient
from .render import message_line

# Messages from the peer shown within this time clear their unread count in one go.
MARK_READ_DELAY = 0.3
# Messages per /older page.
OLDER_PAGE = 20


class ConversationScreen:
    """Prints the messages between the user and ``peer`` (a name, or a room:
    its messages and events), never one twice.

    A live message can also be in the history just printed (it was stored
    before it was announced); the reader tells which are new.
    """

    def __init__(self, client: LiveClient, peer: str) -> None:
        self.client = client
        self.peer = peer
        self.reader: ConversationReader | RoomReader = (
            RoomReader(Rooms(client.app.hub, client.me), peer)
            if is_room(peer)
            else ConversationReader(client.mailbox, peer)
        )
        self._read_later = Coalesced(MARK_READ_DELAY, self._mark_read_quietly)

    def includes(self, message: Message) -> bool:
        return self.reader.includes(message)

    def show(self, message: Message) -> bool:
        """Print a live ``message`` unless it is already on screen; True if printed.

        A message from the peer printed here counts as read soon after.
        """
        if not self.reader.take_live(message):
            return False
        self._print(message)
        self._read_later.trigger()
        return True

    def open(self, history: int, *, notices: bool = True) -> int:
        """Print the newest ``history`` messages, or from the first unread one
        if that is further back; how many were printed.

        Unread messages beyond what one screen shows stay unread, and (with
        ``notices``) a line says how to reach them; another marks where the
        unread ones start.
        """
        opening = self.reader.open(history)
        for index, message in enumerate(opening.messages):
            if notices and index == opening.first_unread:
                new = sum(1 for m in opening.messages[index:] if not m.envelope.event)
                self.client.notice(f"{new} new message{'s' if new != 1 else ''}:")
            self._print(message)
        if notices and opening.unread_not_shown:
            # Below the messages, where the eye is: above them it scrolls away.
            self.client.notice(
                f"{opening.unread_not_shown} more unread messages {self._unread_from} are older "
                f"than these: /older pages back (or: chatbus history {self._typed})"
            )
        return len(opening.messages)

    def show_older(self, limit: int = OLDER_PAGE) -> None:
        """Print the ``limit`` messages before the oldest shown, framed."""
        page = self.reader.older(limit)
        if not page.messages:
            self.client.notice(f"that was the first message {self.where}")
            return
        self.client.notice(f"older messages {self.where}:")
        for message in page.messages:
            self._print(message)
        more = "/older for more" if page.more else "that was the first message"
        self.client.notice(f"end of older messages ({more}); live again")

    @property
    def _unread_from(self) -> str:
        return f"in {self.peer}" if is_room(self.peer) else f"from {self.peer}"

    @property
    def where(self) -> str:
        """ "in #ops", or "with bob"."""
        return f"in {self.peer}" if is_room(self.peer) else f"with {self.peer}"

    @property
    def _typed(self) -> str:
        """The peer as typed after ``chatbus`` in a shell."""
        return "+" + self.peer[1:] if is_room(self.peer) else self.peer

    def show_latest(self, limit: int) -> int:
        """Print the newest ``limit`` messages again, on request; how many."""
        messages = self.reader.latest(limit)
        for message in messages:
            self._print(message)
        return len(messages)

    def _print(self, message: Message) -> None:
        self.client.print(message_line(message, self.client.me, self.client.style))

    def flush_reads(self) -> None:
        """Mark what is on screen read now rather than after the delay."""
        self._read_later.flush()

    def close(self) -> None:
        """The conversation leaves the screen: what was shown is read."""
        self.flush_reads()

    def _mark_read_quietly(self) -> None:
        # Best effort: with the hub gone, the count stays until the next open.
        with suppress(ChatbusError):
            self.reader.flush_read()

"""One conversation on screen: its history first, then live lines, each once."""

from contextlib import suppress

from chatbus.errors import ChatbusError
from chatbus.messages import Message, in_conversation, stream_id_key

from .coalesce import Coalesced
from .live import LiveClient
from .render import message_line

# Messages from the peer shown within this time clear their unread count in one go.
MARK_READ_DELAY = 0.3


class ConversationScreen:
    """Prints the messages between the user and ``peer``, never one twice.

    A live message can also be in the history just printed (it was stored
    before it was announced), so lines are printed only with a stream id newer
    than the last one shown.
    """

    def __init__(self, client: LiveClient, peer: str) -> None:
        self.client = client
        self.peer = peer
        self._shown_upto = "0-0"
        self._read_later = Coalesced(MARK_READ_DELAY, self._mark_read_quietly)

    def includes(self, message: Message) -> bool:
        return in_conversation(self.client.me, self.peer, message.envelope)

    def show(self, message: Message) -> bool:
        """Print a live ``message`` unless it is already on screen; True if printed."""
        if stream_id_key(message.stream_id) <= stream_id_key(self._shown_upto):
            return False
        self._print(message)
        return True

    def show_history(self, limit: int) -> int:
        """Print the newest ``limit`` messages (again, if asked again) and mark
        them read; how many there were."""
        messages = self.client.mailbox.conversation(self.peer, limit).messages
        for message in messages:
            self._print(message)
        self.mark_read()
        return len(messages)

    def _print(self, message: Message) -> None:
        if stream_id_key(message.stream_id) > stream_id_key(self._shown_upto):
            self._shown_upto = message.stream_id
        self.client.print(message_line(message, self.client.me, self.client.style))

    def mark_read(self) -> None:
        self.client.mailbox.mark_read(self.peer)

    def read_live(self) -> None:
        """A live message from the peer is on screen: its unread count goes soon."""
        self._read_later.trigger()

    def flush_reads(self) -> None:
        """Mark what is on screen read now rather than after the delay."""
        self._read_later.flush()

    def close(self) -> None:
        """The conversation leaves the screen: what was shown is read."""
        self.flush_reads()

    def _mark_read_quietly(self) -> None:
        # Best effort: with the hub gone, the count stays until the next open.
        with suppress(ChatbusError):
            self.mark_read()

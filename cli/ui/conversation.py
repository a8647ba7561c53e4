"""One conversation on screen: its history first, then live lines, each once."""

from chatbus.messages import Message, in_conversation, stream_id_key

from .live import LiveClient
from .render import message_line


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

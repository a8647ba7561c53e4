"""``chatbus chat`` without a terminal: stdin lines out, one line per message in.

For scripts and pipes: each line read is sent, each message from the peer is
printed as ``HH:MM name: text`` (no colour, network text sanitized), and the
end of stdin ends the chat.
"""

from chatbus.messages import Message
from chatbus.names import same_name
from chatbus.presence import OnlineList, PresenceEvent

from .live import LiveClient
from .render import message_line
from .terminal import read_line_batches


class PlainChat:
    def __init__(self, client: LiveClient, peer: str) -> None:
        self.client = client
        self.peer = peer

    def on_message(self, message: Message) -> None:
        envelope = message.envelope
        if same_name(envelope.sender, self.peer) and same_name(envelope.recipient, self.client.me):
            self.client.print(message_line(message, self.client.me, self.client.style))
            self.client.mailbox.mark_read(self.peer)

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        """Presence is not part of the line format."""

    def on_connection(self, connected: bool, detail: str) -> None:
        """Outages are invisible here: the receiver catches up by itself."""

    def _show_history(self, limit: int) -> None:
        for message in self.client.mailbox.conversation(self.peer, limit).messages:
            self.client.print(message_line(message, self.client.me, self.client.style))
        self.client.mailbox.mark_read(self.peer)

    def run(self, history: int) -> None:
        self.client.show(self, lambda: self._show_history(history) if history else None)
        for batch in read_line_batches():
            self.client.mailbox.send_many(self.peer, batch)

"""``chatbus chat`` without a terminal: stdin lines out, one line per message in.

For scripts and pipes: each line read is sent, each message from the peer is
printed as ``HH:MM name: text`` (no colour, network text sanitized), and the
end of stdin ends the chat. A line that cannot be sent (too long, say) is
reported on stderr and skipped; the chat goes on, and exits with status 1.
Lines read while the hub is away wait in the outbox; at the end of stdin the
chat waits up to :data:`FLUSH_AT_END` seconds for them to go.
"""

import click

from chatbus.messages import Message
from chatbus.names import same_name
from chatbus.outbox import OutboxFull
from chatbus.presence import OnlineList, PresenceEvent

from .conversation import ConversationScreen
from .live import LiveClient
from .terminal import read_line_batches, split_at_invalid

# How long the end of stdin waits for lines still waiting for the hub.
FLUSH_AT_END = 15.0


class PlainChat:
    def __init__(self, client: LiveClient, peer: str) -> None:
        self.client = client
        self.conversation = ConversationScreen(client, peer)

    def on_message(self, message: Message) -> None:
        # What others say: one's own lines are not echoed back.
        if self.conversation.includes(message) and not same_name(
            message.envelope.sender, self.client.me
        ):
            self.conversation.show(message)

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        """Presence is not part of the line format."""

    def on_connection(self, connected: bool, detail: str) -> None:
        """Outages are invisible here: the receiver catches up by itself."""

    def run(self, history: int) -> None:
        """Chat until stdin ends; then exit status 1 if any line was not sent."""
        self.client.show(self, lambda: self.conversation.open(history, notices=False))
        number = 0
        refused = 0
        for batch in read_line_batches():
            pending = batch
            while pending:
                sendable, error = split_at_invalid(pending, self.client.app.settings.max_body)
                self._send(sendable)
                number += len(sendable)
                if error is None:
                    break
                number += 1
                refused += 1
                click.echo(f"Error: message {number} not sent: {error}", err=True)
                pending = pending[len(sendable) + 1 :]
        self.client.outbox.drain(FLUSH_AT_END)
        self.conversation.close()
        if refused:
            raise click.exceptions.Exit(1)

    def _send(self, lines: list[str]) -> None:
        """Each line one message; with the outbox full, wait for it to empty first."""
        if not lines:
            return
        try:
            self.client.outbox.submit(self.conversation.peer, lines)
        except OutboxFull:
            self.client.outbox.drain(FLUSH_AT_END)
            self.client.outbox.submit(self.conversation.peer, lines)

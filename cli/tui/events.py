"""What the receiver and outbox threads tell the app, as Textual messages.

The receiver thread and the outbox's flusher never touch a widget: the
:class:`Bridge` posts one of these messages to the app (``post_message`` is
thread-safe and never blocks, so a thread is not held up by a busy screen,
nor left waiting on an app that has quit), and the app handles them on its
own thread, in the order they were posted.
"""

from typing import Protocol

from textual.message import Message as TextualMessage

from chatbus.errors import ChatbusError, SessionEnded
from chatbus.messages import Message
from chatbus.outbox import Outgoing
from chatbus.presence import OnlineList, PresenceEvent


class Received(TextualMessage):
    """A message, or a room's entry, from the receiver."""

    def __init__(self, message: Message) -> None:
        super().__init__()
        self.message = message


class PresenceChanged(TextualMessage):
    def __init__(self, online: list[str]) -> None:
        super().__init__()
        self.online = online


class ConnectionChanged(TextualMessage):
    def __init__(self, connected: bool, detail: str) -> None:
        super().__init__()
        self.connected = connected
        self.detail = detail


class SessionOver(TextualMessage):
    def __init__(self, ended: SessionEnded) -> None:
        super().__init__()
        self.ended = ended


class OutboxChanged(TextualMessage):
    """``item`` waits for the hub (``pending``), went (``sent``), or was refused."""

    def __init__(self, item: Outgoing, state: str, detail: str = "") -> None:
        super().__init__()
        self.item = item
        self.state = state
        self.detail = detail


class Poster(Protocol):
    """Anything messages can be posted to (the app)."""

    def post_message(self, message: TextualMessage) -> bool: ...


class Bridge:
    """The receiver's Listener and the outbox's listener, posting to the app."""

    def __init__(self, app: Poster) -> None:
        self.app = app

    def on_message(self, message: Message) -> None:
        self.app.post_message(Received(message))

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        self.app.post_message(PresenceChanged(online.names))

    def on_connection(self, connected: bool, detail: str) -> None:
        self.app.post_message(ConnectionChanged(connected, detail))

    def on_session_ended(self, ended: SessionEnded) -> None:
        self.app.post_message(SessionOver(ended))

    def on_pending(self, item: Outgoing, reason: str) -> None:
        self.app.post_message(OutboxChanged(item, "pending", reason))

    def on_sent(self, item: Outgoing) -> None:
        self.app.post_message(OutboxChanged(item, "sent"))

    def on_failed(self, item: Outgoing, error: ChatbusError) -> None:
        self.app.post_message(OutboxChanged(item, "failed", str(error)))

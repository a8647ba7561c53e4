"""A logged-in client while a view is on screen: receiver, mailbox, output.

The receiver thread calls the active view through this object, so the lobby
and the chat view can hand over to each other without a second connection,
a second lease, or a gap in what is received.
"""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import Protocol

import click
from prompt_toolkit.patch_stdout import patch_stdout

from chatbus.accounts import Session
from chatbus.errors import ChatbusError, SessionEnded
from chatbus.messages import Mailbox, Message
from chatbus.outbox import Outbox, Outgoing
from chatbus.presence import OnlineList, PresenceEvent
from chatbus.receiver import Receiver
from chatbus.sanitize import sanitize, sanitize_lines

from ..context import App
from .render import Style, message_line

# How long a view waits for the first connection before it shows anyway (the
# receiver keeps trying, and the view says when the hub is reached).
CONNECT_WAIT = 5.0
# How long leaving waits for a message still on its way to a reachable hub.
LEAVE_WAIT = 2.0


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) end the chat like Ctrl-C does,
    so the presence lease is released at once instead of expiring."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        # Once: a second signal (a closing terminal sends more than one) must
        # not cut short the clean exit the first one started.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class View(Protocol):
    def on_message(self, message: Message) -> None: ...
    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None: ...
    def on_connection(self, connected: bool, detail: str) -> None: ...


class LiveClient:
    """Receives for ``session`` and passes everything to the view on screen."""

    def __init__(self, app: App, session: Session, style: Style) -> None:
        self.app = app
        self.session = session
        self.style = style
        self.mailbox = Mailbox(app.hub, session.name)
        self.outbox = Outbox(self.mailbox, self)
        self.receiver = Receiver(
            app.hub, session.name, self, after_id=self.mailbox.latest_id(), session=session
        )
        self.session_ended: SessionEnded | None = None
        # Guards _in_main: a session end interrupts the main thread only inside main().
        self._interruptible = threading.Lock()
        self._in_main = False
        # Held while the receiver reports to a view and while a view prints
        # more than one line of its own (history), so lines never interleave
        # and no message slips between a view's history and its live part.
        self.screen = threading.Lock()
        self._view: View | None = None
        # Messages that arrive before the first view is up wait for it.
        self._early: list[Message] = []
        # Output is the line format for pipes: nothing but messages on stdout.
        self._plain = False

    @property
    def me(self) -> str:
        return self.session.name

    @property
    def online(self) -> OnlineList:
        return self.receiver.online

    def show(self, view: View, prepare: Callable[[], object] = lambda: None) -> None:
        """Run ``prepare`` (print history, say) and make ``view`` receive, atomically."""
        with self.screen:
            prepare()
            self._view = view
            for message in self._early:
                view.on_message(message)
            self._early.clear()

    def hide(self, view: View) -> None:
        """``view`` leaves the screen; messages wait for the next view."""
        with self.screen:
            if self._view is view:
                self._view = None

    def showing(self, view: View) -> bool:
        return self._view is view

    def print(self, line: str) -> None:
        """Print above the input line (the prompt is redrawn below it)."""
        print(line, flush=True)

    def notice(self, text: str) -> None:
        self.print(self.style.notice(text))

    def report_connection(self, connected: bool, detail: str) -> None:
        """Say that the hub was lost or is back (the receiver reconnects by itself)."""
        if connected:
            self.notice("connected to the hub")
        else:
            self.print(self.style.error(f"lost the hub ({sanitize(detail)}); reconnecting"))

    def on_message(self, message: Message) -> None:
        with self.screen:
            if self._view is None:
                self._early.append(message)
            else:
                self._view.on_message(message)

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        with self.screen:
            if self._view is not None:
                self._view.on_presence(online, event)

    def on_connection(self, connected: bool, detail: str) -> None:
        self.outbox.hub_reachable(connected)
        with self.screen:
            if self._view is not None:
                self._view.on_connection(connected, detail)

    # -- the outbox's reports (input or outbox thread) ---------------------

    def on_pending(self, item: Outgoing, reason: str) -> None:
        if self._plain:
            return  # said at the end, if it is still pending then
        with self.screen:
            for envelope in item.envelopes[item.confirmed :]:
                unsent = Message(f"{envelope.ts}-0", envelope)
                note = f"(pending: {sanitize(reason)}; sent when the hub is back)"
                self.print(message_line(unsent, self.me, self.style, note=note))

    def on_sent(self, item: Outgoing) -> None:
        if self._plain:
            return
        count = len(item.envelopes)
        what = "message that was" if count == 1 else f"{count} messages that were"
        with self.screen:
            self.notice(f"sent the {what} pending to {item.recipient}")

    def on_failed(self, item: Outgoing, error: ChatbusError) -> None:
        with self.screen:
            for envelope in item.envelopes[item.confirmed :]:
                text = sanitize(envelope.body)
                shown = text if len(text) <= 60 else text[:57] + "..."
                line = f"not sent to {item.recipient} ({error}): {shown}"
                if self._plain:
                    click.echo(f"Error: {line}", err=True)
                else:
                    self.print(self.style.error(line))

    def on_session_ended(self, ended: SessionEnded) -> None:
        """Logged out elsewhere, or the password changed: end the chat now.

        The main thread may be blocked reading input; a SIGTERM aimed at it
        ends that read the way a closed terminal would (see _stop_on_signals).
        Only while ``main`` runs: once the user is leaving anyway, the signal
        would land in the clean-up, or after our handler is gone.
        """
        with self._interruptible:
            self.session_ended = ended
            if self._in_main:
                main_thread = threading.main_thread().ident
                assert main_thread is not None  # it is running: it started this client
                signal.pthread_kill(main_thread, signal.SIGTERM)

    def run(self, main: Callable[[], object], *, above_prompt: bool = True) -> None:
        """Run ``main`` while receiving; Ctrl-C ends it, and presence is released.

        With ``above_prompt``, output goes above prompt_toolkit's input line.
        Raises SessionEnded when the hub stops accepting the session meanwhile.
        """
        self._plain = not above_prompt
        with patch_stdout(raw=True) if above_prompt else nullcontext(), _stop_on_signals():
            self.receiver.start()
            try:
                with self._interruptible:
                    self._in_main = True
                self.receiver.wait_connected(CONNECT_WAIT)
                main()
            except KeyboardInterrupt:
                pass
            finally:
                with self._interruptible:
                    self._in_main = False
                unsent = self.outbox.close(LEAVE_WAIT if self.receiver.connected else 0.0)
                self._stop_receiving()
        report_unsent(unsent)
        if self.session_ended is not None:
            raise self.session_ended

    def _stop_receiving(self) -> None:
        try:
            self.receiver.stop()
        except KeyboardInterrupt:  # a signal sent just before main ended
            self.receiver.stop()


def report_unsent(unsent: list[Outgoing]) -> None:
    """Say on stderr what is left in the outbox at exit, each text in full,
    so that nothing typed vanishes without a word; then fail (exit 1)."""
    count = 0
    for item in unsent:
        for envelope in item.envelopes[item.confirmed :]:
            count += 1
            body = "\n    ".join(sanitize_lines(envelope.body))
            click.echo(f"Not sent to {item.recipient}: {body}", err=True)
    if count:
        plural = "message was" if count == 1 else "messages were"
        raise click.ClickException(f"{count} {plural} not sent: the hub was unreachable")

"""The full-screen app: people and rooms in a sidebar, one conversation, an input.

Two threads, as in line mode: the receiver thread (and the outbox's flusher)
only post messages to the app (:mod:`chatbus_cli.tui.events`); everything on
screen happens on the app's thread. A conversation opens on a worker thread
(its history is read from the hub); messages for it that arrive meanwhile
wait, and are then given to its reader, which drops those the history showed,
so nothing falls between the history and the live part.
"""

import asyncio
import os
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.worker import get_current_worker

from chatbus.accounts import Session
from chatbus.errors import ChatbusError, HubUnavailable, SessionEnded
from chatbus.messages import Mailbox, Message
from chatbus.names import is_room, same_name
from chatbus.outbox import Outbox
from chatbus.reading import ConversationReader, Opening
from chatbus.receiver import Receiver
from chatbus.room_reading import RoomReader
from chatbus.rooms import Rooms
from chatbus.sanitize import sanitize
from chatbus.text import mentions

from ..context import App as Context
from ..ui.live import report_unsent
from .commands import Commands
from .events import (
    Bridge,
    ConnectionChanged,
    OutboxChanged,
    PresenceChanged,
    Received,
    SessionOver,
)
from .keys import read_alt_keys
from .roster import Roster
from .widgets import Composer, Conversation, Heading, Sidebar, StatusBar

# Earlier messages shown when a conversation opens (unread ones show in any case).
HISTORY = 50
# Messages shown within this time are marked read in one go.
MARK_READ_DELAY = 0.3
# How often the sidebar's counts are read from the hub again (s).
COUNTS_EVERY = 10.0
# Older messages PageUp loads at the top of the conversation.
OLDER_PAGE = 50
# Messages elsewhere within this time ring the bell once.
BELL_BURST = 5.0


@dataclass
class Loaded:
    """A conversation's opening, read on a worker thread."""

    target: str
    reader: ConversationReader | RoomReader
    opening: Opening
    members: int  # of a room
    topic: str


def bell_wanted() -> bool:
    """The bell rings unless CHATBUS_BELL is off (0, off, no or false)."""
    return os.environ.get("CHATBUS_BELL", "on").strip().lower() not in ("0", "off", "no", "false")


class ChatApp(App[None]):
    """chatbus, full screen, for the logged-in ``session``."""

    TITLE = "chatbus"
    CSS = """
    #main { height: 1fr; }
    #right { width: 1fr; }
    #heading { height: 1; padding: 0 1; background: $boost; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit", "quit", priority=True, show=False),
        Binding("ctrl+q", "quit", "quit", priority=True, show=False),
        Binding("ctrl+n", "step(1)", "next", priority=True, show=False),
        Binding("ctrl+p", "step(-1)", "previous", priority=True, show=False),
        Binding("pageup", "scroll_page(-1)", "older", priority=True, show=False),
        Binding("pagedown", "scroll_page(1)", "newer", priority=True, show=False),
        *(
            Binding(f"alt+{n}", f"pick({n})", f"conversation {n}", priority=True, show=False)
            for n in range(1, 10)
        ),
    ]

    def __init__(
        self, context: Context, session: Session, start: str | None, history: int = HISTORY
    ) -> None:
        super().__init__()
        self.history = history
        read_alt_keys()
        self.context = context
        self.session = session
        self.me = session.name
        hub = context.hub
        self.mailbox = Mailbox(hub, self.me)
        self.rooms = Rooms(hub, self.me)
        self.bridge = Bridge(self)
        self.outbox = Outbox(self.mailbox, self.bridge)
        self.receiver = Receiver(
            hub, self.me, self.bridge, after_id=self.mailbox.latest_id(), session=session
        )
        self.roster = Roster(self.me)
        self.hub_label = hub.url  # the status bar's (a test may fix it)
        self.commands = Commands(self)
        self.current: str | None = None
        self.reader: ConversationReader | RoomReader | None = None
        self.waiting: list[Message] | None = None  # live messages while a conversation opens
        self.connected: bool | None = None
        self.detail = ""
        self.session_ended: SessionEnded | None = None
        self.bell_on = bell_wanted()
        self._last_bell = 0.0
        self._start = start
        self._mark_timer: Timer | None = None
        self.warned_pending = False
        self.members, self.topic = 0, ""  # of the room on screen, for the heading

    # -- layout -----------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield Sidebar()
            with Vertical(id="right"):
                yield Heading(id="heading")
                yield Conversation(self.me)
                yield Composer()
        yield StatusBar()

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.exit)
        self.receiver.start()
        self.query_one(Composer).focus()
        self.refresh_status()
        self.run_worker(self._count_from_hub, thread=True, group="counts")
        # The hub's counts again now and then: rooms joined or invitations
        # made elsewhere show, and the sidebar agrees with other clients.
        self.set_interval(COUNTS_EVERY, self._recount)
        if self._start is not None:
            self.open(self._start)
        else:
            self.heading("pick one: Ctrl-N/P, Alt-1..9, a click; /switch NAME; /join #ROOM; /help")

    # -- conversations ----------------------------------------------------

    def open(self, target: str) -> None:
        """Show ``target`` (a name as registered, or a room the user is in or
        is invited to: then it is joined)."""
        if target.lower() in self.roster.invited:
            self.roster.invited.pop(target.lower())
            self.commands.run(f"/join {target}")
            return
        if is_room(target):
            self.roster.joined(target)
        self._flush_reads()
        self.current = target
        self.roster.current = target
        self.roster.read(target)
        self.reader = None
        self.waiting = []
        self.conversation.reset()
        self.heading(f"{target}: loading…")
        self.refresh_roster()
        self.run_worker(lambda: self._load(target), thread=True, group="open", exclusive=True)

    def _load(self, target: str) -> None:
        """Worker thread: read the conversation's opening from the hub."""
        worker = get_current_worker()
        try:
            reader: ConversationReader | RoomReader
            members, topic = 0, ""
            if is_room(target):
                reader = RoomReader(self.rooms, target)
                members = len(self.rooms.members(target))
                topic = self.rooms.topic(target)
            else:
                reader = ConversationReader(self.mailbox, target)
            opening = reader.open(self.history)
        except HubUnavailable as error:
            if not worker.is_cancelled:
                why = f"the hub is unreachable ({error.reason}); it opens when the hub is back"
                self.call_from_thread(self._load_failed, target, why)
            return
        except ChatbusError as error:
            if not worker.is_cancelled:
                self.call_from_thread(self._load_failed, target, str(error))
            return
        if not worker.is_cancelled:
            loaded = Loaded(target, reader, opening, members, topic)
            self.call_from_thread(self._loaded, loaded)

    def _loaded(self, loaded: Loaded) -> None:
        if loaded.target != self.current:
            return
        self.reader = loaded.reader
        opening = loaded.opening
        pane = self.conversation
        pane.append(opening.messages, first_unread=opening.first_unread)
        if opening.unread_not_shown:
            pane.note(
                f"{opening.unread_not_shown} more unread messages are older than these: "
                "/older (or PageUp at the top) pages back"
            )
        if not opening.messages:
            pane.empty(
                f"no messages {'in' if is_room(loaded.target) else 'with'} {loaded.target} yet"
            )
        for message in self.waiting or []:
            self._show_live(message)
        self.waiting = None
        self.members, self.topic = loaded.members, loaded.topic
        self.heading(self._heading_text())
        unread = opening.first_unread
        pane.show_start(0 if unread is None else len(opening.messages) - unread)

    def _load_failed(self, target: str, error: str) -> None:
        if target == self.current:
            self.waiting = None
            self.conversation.note(f"could not open {target}: {error}", "error")

    def _heading_text(self) -> str:
        target = self.current or ""
        if is_room(target):
            members = f"{self.members} member{'' if self.members == 1 else 's'}"
            return f"{target} | {members}" + (f" | {self.topic}" if self.topic else "")
        if same_name(target, self.me):
            return f"{target} (notes to yourself)"
        state = "online" if target in self.receiver.online else "offline"
        if self.connected is False:
            state = "presence unknown"
        return f"{target} ({state})"

    def heading(self, text: str) -> None:
        """The heading: plain text (a topic is network text: sanitized, never markup)."""
        self.query_one(Heading).update(Text(sanitize(text)))

    # -- receiver events (posted by its thread, handled here) -------------

    def on_received(self, event: Received) -> None:
        message = event.message
        target = self._conversation_of(message)
        if target is not None and self.current is not None and same_name(target, self.current):
            if self.waiting is not None:
                self.waiting.append(message)
            else:
                self._show_live(message)
            return
        envelope = message.envelope
        if target is None or same_name(envelope.sender, self.me) or envelope.event:
            return
        self.roster.arrived(target, bool(message.room) and mentions(envelope.body, self.me))
        self.refresh_roster()
        self._ring()

    def _conversation_of(self, message: Message) -> str | None:
        if message.room is not None:
            return message.room
        envelope = message.envelope
        if same_name(envelope.sender, self.me):
            return envelope.recipient
        if same_name(envelope.recipient, self.me):
            return envelope.sender
        return None

    def _show_live(self, message: Message) -> None:
        if self.reader is None or not self.reader.take_live(message):
            return
        self.conversation.append([message])
        if not self.conversation.follow:
            self.heading(self._heading_text() + " | more below: End")
        envelope = message.envelope
        if envelope.event and is_room(self.current or ""):
            if envelope.kind == "topic":
                self.topic = envelope.body
            elif envelope.kind in ("join", "leave"):
                self.members += 1 if envelope.kind == "join" else -1
            self.heading(self._heading_text())
        self._read_soon()

    def _read_soon(self) -> None:
        if self._mark_timer is None:
            self._mark_timer = self.set_timer(MARK_READ_DELAY, self._flush_reads)

    def _flush_reads(self) -> None:
        self._mark_timer = None
        reader = self.reader
        if reader is not None:
            self.run_worker(lambda: _quietly(reader.flush_read), thread=True, group="reads")

    def _ring(self) -> None:
        """A message elsewhere: the bell, once per burst (unless turned off)."""
        now = time.monotonic()
        if self.bell_on and now - self._last_bell > BELL_BURST:
            self.bell()
        self._last_bell = now

    def on_presence_changed(self, event: PresenceChanged) -> None:
        self.roster.online = event.online
        self.refresh_roster()
        if self.current is not None and self.reader is not None:
            self.heading(self._heading_text())

    def on_connection_changed(self, event: ConnectionChanged) -> None:
        self.outbox.hub_reachable(event.connected)
        was = self.connected
        self.connected, self.detail = event.connected, event.detail
        self.refresh_status()
        if self.current is not None and self.reader is not None:
            self.heading(self._heading_text())
        if event.connected and was is False:
            self.run_worker(self._count_from_hub, thread=True, group="counts")
            if self.current is not None and self.reader is None and self.waiting is None:
                self.open(self.current)  # it could not open while the hub was away

    def on_session_over(self, event: SessionOver) -> None:
        self.session_ended = event.ended
        self.exit()

    def on_outbox_changed(self, event: OutboxChanged) -> None:
        item = event.item
        pane = self.conversation
        shown_here = self.current is not None and same_name(item.recipient, self.current)
        if event.state == "pending" and shown_here:
            unsent = [Message(f"{e.ts}-0", e) for e in item.envelopes[item.confirmed :]]
            pane.show_pending(id(item), unsent, event.detail)
        elif event.state == "sent":
            pane.drop_pending(id(item))
            if shown_here:
                count = len(item.envelopes)
                pane.note(
                    f"sent the {'message' if count == 1 else f'{count} messages'} that waited"
                )
        elif event.state == "failed":
            pane.drop_pending(id(item))
            pane.note(f"not sent to {item.recipient}: {event.detail}", "error")
        self.refresh_status()

    # -- counts, sidebar, status, title -----------------------------------

    def _recount(self) -> None:
        if self.connected:
            self.run_worker(self._count_from_hub, thread=True, group="counts", exclusive=True)

    def _count_from_hub(self) -> None:
        """Worker thread: the hub's unread counts, people's and rooms'."""
        try:
            people = self.mailbox.unread_counts()
            rooms = self.rooms.unread_counts()
            invited = self.rooms.invitations()
        except ChatbusError:
            return  # the hub is away: counted again when it is back
        self.call_from_thread(self._counted, people, rooms, invited)

    def _counted(
        self, people: dict[str, int], rooms: dict[str, tuple[int, int]], invited: dict[str, str]
    ) -> None:
        self.roster.set_counts(people, rooms, self.current)
        self.roster.invited = invited
        self.refresh_roster()

    def refresh_roster(self) -> None:
        self.query_one(Sidebar).show(self.roster.entries(), self.current)
        self._set_title()

    def on_unmount(self) -> None:
        self._write_title("")  # no unread count left behind in the terminal's title

    def _write_title(self, title: str) -> None:
        driver = self._driver
        if driver is not None and not self.is_headless:
            driver.write(f"\x1b]2;{title}\x07")

    def _set_title(self) -> None:
        """The unread total in the terminal's title (OSC 2), and in the app's."""
        total = self.roster.total_unread
        title = f"({total}) chatbus: {self.me}" if total else f"chatbus: {self.me}"
        if title == self.title:
            return
        self.title = title
        self._write_title(title)

    def refresh_status(self) -> None:
        self.query_one(StatusBar).say(
            self.me, self.hub_label, self.connected, self.detail, self.outbox.waiting()
        )

    # -- input ------------------------------------------------------------

    def on_composer_submitted(self, event: Composer.Submitted) -> None:
        # What one types, and what it answers, is seen: back to the newest.
        self.conversation.to_newest()
        text = event.text
        if text.startswith("/") and not text.startswith("//"):
            self.commands.run(text)
        else:
            self.commands.say(text[1:] if text.startswith("//") else text)
        self.refresh_status()

    def on_composer_scroll_request(self, event: Composer.ScrollRequest) -> None:
        pane = self.conversation
        if event.where == "home":
            pane.follow = False
            pane.scroll_home(animate=False)
            self.commands.older(str(OLDER_PAGE), quiet=True)
        else:
            pane.to_newest()
            if self.reader is not None:
                self.heading(self._heading_text())

    def on_list_view_selected(self, event: Sidebar.Selected) -> None:
        name = event.item.name
        if name is not None and name != self.current:
            self.open(name)
        self.query_one(Composer).focus()

    def action_step(self, step: int) -> None:
        entries = self.roster.entries()
        if not entries:
            return
        names = [entry.name.lower() for entry in entries]
        here = (
            names.index(self.current.lower())
            if self.current and self.current.lower() in names
            else -1
        )
        self.open(entries[(here + step) % len(entries)].name)

    def action_pick(self, number: int) -> None:
        entries = self.roster.entries()
        if number <= len(entries):
            self.open(entries[number - 1].name)

    def action_scroll_page(self, direction: int) -> None:
        pane = self.conversation
        if direction < 0:
            pane.follow = False
            if pane.scroll_y == 0:
                self.commands.older(str(OLDER_PAGE), quiet=True)
            pane.scroll_page_up(animate=False)
        else:
            pane.scroll_page_down(animate=False)
            pane.follow = pane.scroll_y >= pane.max_scroll_y
            if pane.follow and self.reader is not None:
                self.heading(self._heading_text())

    async def action_quit(self) -> None:
        """Leave; with messages still pending, say so once first."""
        pending = self.outbox.waiting()
        if pending and not self.warned_pending:
            self.warned_pending = True
            what = "1 message is" if pending == 1 else f"{pending} messages are"
            self.conversation.note(
                f"{what} still waiting for the hub; Ctrl-C or /quit again to leave without them"
            )
            return
        self.exit()


def _quietly(action: Callable[[], None]) -> None:
    """Best effort (marking read): with the hub away, the count stays until later."""
    with suppress(ChatbusError):
        action()


def run_app(
    context: Context, session: Session, start: str | None = None, history: int = HISTORY
) -> None:
    """Run the full-screen app until the user quits; then say what was not sent.

    ``history``: earlier messages a conversation opens with (unread ones in any case)."""
    app = ChatApp(context, session, start, history)
    try:
        app.run()
    finally:
        unsent = app.outbox.close(2.0 if app.receiver.connected else 0.0)
        app.receiver.stop()
    report_unsent(unsent)
    if app.session_ended is not None:
        raise app.session_ended

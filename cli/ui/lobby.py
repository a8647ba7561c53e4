"""The lobby: who is online and your rooms (numbered, with unread counts), and whom to talk to.

The list is printed again whenever someone comes or goes or a message arrives;
a number always refers to the list printed last.
"""

from contextlib import suppress

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import HTML

from chatbus.accounts import Session
from chatbus.errors import ChatbusError, InvalidName, UnknownUser
from chatbus.messages import Message
from chatbus.names import is_room, room_name, same_name
from chatbus.presence import OnlineList, PresenceEvent
from chatbus.rooms import Rooms
from chatbus.sanitize import sanitize

from ..context import App, said
from .chat_view import open_chat
from .coalesce import Coalesced
from .live import LiveClient
from .render import Style, colour_enabled

MAX_LISTED = 30
LOBBY_HELP = (
    "type a number from the list or any name to chat (they need not be online), "
    "or a room: #ops (/join #ops makes a new one); /users shows the list again; /quit leaves"
)
# Joins, leaves and messages within this time make one new list, not one each.
REDRAW_DELAY = 0.3


class Lobby:
    def __init__(self, client: LiveClient) -> None:
        self.client = client
        self.rooms = Rooms(client.app.hub, client.me)
        self.unread = client.mailbox.unread_counts()
        self.room_counts = self.rooms.unread_counts()
        self.invited = self.rooms.invitations()  # room (key form) -> who invited
        self.shown: list[str] = []
        self._prompt: PromptSession[str] = PromptSession()
        self._redraw = Coalesced(REDRAW_DELAY, self._redraw_now)

    def _entries(self) -> list[str]:
        me, online = self.client.me, self.client.online
        others = [name for name in online.names if not same_name(name, me)]
        waiting = sorted((n for n in self.unread if n not in online), key=str.lower)
        # Rooms after people, busiest first.
        rooms = sorted(self.room_counts, key=lambda r: (-self.room_counts[r][0], r.lower()))
        return others + waiting + rooms + sorted(self.invited)

    def render(self) -> None:
        """Print the numbered list (caller holds the screen lock or owns the screen)."""
        style, online = self.client.style, self.client.online
        entries = self._entries()
        self.shown = entries[:MAX_LISTED]
        if not entries:
            self.client.notice(
                f"nobody else is online, {self.client.me}: type a name to leave a message, "
                "/join #ROOM to open a room, or wait"
            )
            return
        rooms = self.room_counts or self.invited
        listed = "people online and your rooms" if rooms else "online now"
        self.client.notice(
            f"{listed}, {self.client.me}: pick a number or type a name (/quit to leave)"
        )
        for number, name in enumerate(self.shown, 1):
            notes = []
            unread, mentioned = self.room_counts.get(name, (self.unread.get(name, 0), 0))
            if unread:
                notes.append(f"{unread} unread")
            if mentioned:
                notes.append(f"{mentioned} mentioning you")
            if name in self.invited:
                notes.append(f"invited by {self.invited[name]}: pick it to join")
            if name not in online and not is_room(name):
                notes.append("offline")
            extra = style.dim("  " + ", ".join(notes)) if notes else ""
            self.client.print(f"  {number:>2}) {style.nick(sanitize(name))}{extra}")
        if len(entries) > MAX_LISTED:
            self.client.print(
                style.dim(f"      ... and {len(entries) - MAX_LISTED} more: type a name")
            )

    # -- receiver events --------------------------------------------------

    def on_message(self, message: Message) -> None:
        if not same_name(message.envelope.sender, self.client.me):
            self._redraw.trigger()

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        if event is None or not same_name(event.name, self.client.me):
            self._redraw.trigger()

    def _redraw_now(self) -> None:
        with self.client.screen:
            if not self.client.showing(self):
                return
            with suppress(ChatbusError):  # the counts the hub has, when it answers
                self._count()
            self.render()

    def on_connection(self, connected: bool, detail: str) -> None:
        self.client.report_connection(connected, detail)
        if connected:
            self.render()

    # -- input ------------------------------------------------------------

    def _choose(self, line: str) -> str:
        """A number from the list printed last, or a name (digits-only ones too)."""
        is_number = line.isascii() and line.isdigit()
        if is_number and 1 <= int(line) <= len(self.shown):
            chosen = self.shown[int(line) - 1]
            if chosen in self.invited:  # an invitation taken
                joined = self.rooms.join(chosen).room
                self.client.receiver.rooms_changed()
                return joined
            return chosen
        try:
            return self.client.app.target(line, self.client.me)
        except (UnknownUser, InvalidName):
            if is_number:
                raise UnknownUser(f"no number {line} in the list") from None
            raise

    def run(self) -> None:
        try:
            self._run()
        finally:
            # A redraw due after the lobby is gone (Ctrl-C just after a join)
            # must not print, or touch a hub connection that is closing.
            self._redraw.cancel()
            self.client.hide(self)

    def _run(self) -> None:
        self.client.show(self, self.render)
        while True:
            try:
                line = self._prompt.prompt(HTML("<b>chat with&gt;</b> ")).strip()
            except EOFError:  # Ctrl-D
                return
            if line in ("/quit", "/exit"):
                return
            if not line or line in ("/list", "/users", "/back"):
                with self.client.screen:
                    self.render()
                continue
            if line.startswith("/join "):
                peer = self._join(line.removeprefix("/join ").strip())
                if peer is None:
                    continue
                if not open_chat(self.client, peer, from_lobby=True).back:
                    return
                self.client.show(self, self._refresh)
                continue
            if line.startswith("/"):
                unknown = "" if line == "/help" else f"unknown command {sanitize(line)}; "
                self.client.notice(unknown + LOBBY_HELP)
                continue
            try:
                peer = self._choose(line)
            except ChatbusError as error:
                self.client.print(self.client.style.error(said(error, in_chat=True)))
                continue
            if not open_chat(self.client, peer, from_lobby=True).back:
                return
            self.client.show(self, self._refresh)

    def _join(self, typed: str) -> str | None:
        """Join (or make) the room ``typed``; its name, or None after saying why not."""
        room = room_name(typed) or room_name("#" + typed)
        try:
            if room is None:
                raise InvalidName("usage: /join #ROOM (a room: '#' and 1-32 of A-Z a-z 0-9 _ -)")
            outcome = self.rooms.join(room)
        except ChatbusError as error:
            self.client.print(self.client.style.error(said(error, in_chat=True)))
            return None
        self.client.receiver.rooms_changed()
        return outcome.room

    def _count(self) -> None:
        self.unread = self.client.mailbox.unread_counts()
        self.room_counts = self.rooms.unread_counts()
        self.invited = self.rooms.invitations()

    def _refresh(self) -> None:
        self._count()
        self.render()


def run_lobby(app: App, session: Session) -> None:
    """The interactive part of ``chatbus login``: lobby, then chats."""
    client = LiveClient(app, session, Style(colour_enabled()))
    client.run(Lobby(client).run)

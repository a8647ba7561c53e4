"""The chat view: a conversation on screen, the input line always intact.

Messages from the hub are printed above the prompt by prompt_toolkit's
``patch_stdout``, so arriving text never breaks what the user is typing. What
the user sends shows up once the hub has accepted it (the sender's own copy
comes back on the inbox channel), so the screen shows what the hub has; what
waits for an unreachable hub is shown as pending (the client's outbox).
"""

from collections.abc import Callable
from dataclasses import dataclass

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from chatbus.envelope import ME
from chatbus.errors import ChatbusError, InvalidName, NotAMember
from chatbus.messages import Message
from chatbus.names import is_room, room_name, same_name
from chatbus.presence import OnlineList, PresenceEvent
from chatbus.rooms import Rooms
from chatbus.sanitize import sanitize
from chatbus.text import mentions, split_body

from ..context import said
from .conversation import OLDER_PAGE, ConversationScreen
from .live import LiveClient
from .render import plural

# Earlier messages shown when a conversation opens, and by /history alone.
DEFAULT_HISTORY = 20

# The room commands, the same in the line chat and the full-screen app.
ROOM_HELP = """\
/join ROOM       join a room (made if new) and talk there
/leave [ROOM]    leave this room (or ROOM)
/me TEXT         say what you do: "* alice waves"
/topic [TEXT]    show this room's topic, or set it
/invite NAME     let NAME join this room (the way into a private one)
/members         who is in this room
"""

HELP = f"""\
/help            this list
/users           who is online, and your unread messages (people and rooms)
/switch NAME     talk to NAME, or to a room (/switch #ops), instead
{ROOM_HELP}/older [N]       show the N messages before the oldest on screen (default {OLDER_PAGE})
/history [N]     show the last N messages again (default {DEFAULT_HISTORY})
/back            back to the lobby (when you came from there)
/quit            leave (Ctrl-D and Ctrl-C too)
//text           send a message that starts with a slash
Alt-Enter (or Esc, Enter) starts a new line in a message; a paste keeps its lines.
A message longer than the size limit goes as several, split between words."""


@dataclass
class Outcome:
    """How the view ended: back to the lobby, or out of chatbus."""

    back: bool


class ChatView:
    """One conversation between the logged-in user and ``peer``."""

    def __init__(self, client: LiveClient, peer: str, *, from_lobby: bool, history: int) -> None:
        self.client = client
        self.conversation = ConversationScreen(client, peer)
        self.from_lobby = from_lobby
        self.history = history
        self.unread: dict[str, int] = {}
        self.rooms = Rooms(client.app.hub, client.me)
        self._members = 0  # of the room on screen
        self._room_topic = ""
        # Whether the peer was online at the last notice: notices say changes.
        self._peer_online = False
        # A /quit with messages still pending warns once; the next one leaves.
        self._warned_pending = False
        self._prompt: PromptSession[str] = PromptSession(
            history=InMemoryHistory(),
            erase_when_done=True,
            bottom_toolbar=self._toolbar,
            key_bindings=_line_break_keys(),
            # Further lines of a message start under the first one's text.
            prompt_continuation=lambda width, line, wrap: " " * width,
        )

    @property
    def peer(self) -> str:
        return self.conversation.peer

    # -- screen -----------------------------------------------------------

    def _toolbar(self) -> HTML:
        if self.client.receiver.connected and is_room(self.peer):
            state = plural(self._members, "member")
            if self._room_topic:
                state += f"; {sanitize(self._room_topic)[:60]}"
        elif self.client.receiver.connected:
            state = "online" if self.peer in self.client.online else "offline"
        else:
            state = "presence unknown: the hub is unreachable, reconnecting"
        pending = self.client.outbox.waiting()
        if pending:
            state += f" | {pending} pending"
        others = ", ".join(
            f"{sanitize(n)} {c}"
            for n, c in sorted(self.unread.items())
            if c and not same_name(n, self.peer)  # on screen: being read
        )
        unread = f" | unread: {others}" if others else ""
        return HTML(" {} -> <b>{}</b> ({}){} | /help").format(
            self.client.me, self.peer, state, unread
        )

    def _redraw(self) -> None:
        app = self._prompt.app
        if app.is_running:
            app.invalidate()

    def _open(self, peer: str) -> None:
        """Make ``peer`` the conversation: history, read marks, then live."""

        def prepare() -> None:
            self.conversation.close()
            self.conversation = ConversationScreen(self.client, peer)
            if is_room(peer):
                self._open_room(peer)
            else:
                self.client.notice(f"chat with {peer}; /help for commands")
            if not self.conversation.open(self.history) and self.history:
                self.client.notice(f"no messages {self.conversation.where} yet")
            self._count_unread()
            self._peer_online = peer in self.client.online
            if is_room(peer):
                return
            if not self._peer_online and not same_name(peer, self.client.me):
                self.client.notice(f"{peer} is offline; your messages will wait for them")

        self.client.show(self, prepare)

    def _open_room(self, room: str) -> None:
        """The notice a room opens with: who is in it, and its topic."""
        names = self.rooms.members(room)
        self._members = len(names)
        online = sum(1 for name in names if name in self.client.online)
        self._room_topic = topic = self.rooms.topic(room)
        about = f"; topic: {sanitize(topic)}" if topic else ""
        self.client.notice(
            f"room {room}: {plural(len(names), 'member')}, {online} online{about}; "
            "/help for commands"
        )

    def _count_unread(self) -> None:
        """Unread counts, people's and rooms' (as "#room"), for the status line."""
        counts = self.client.mailbox.unread_counts()
        for room, (unread, _) in self.rooms.unread_counts().items():
            if unread:
                counts[room] = unread
        self.unread = counts

    # -- receiver events (receiver thread) --------------------------------

    def on_message(self, message: Message) -> None:
        envelope = message.envelope
        sender, room = envelope.sender, message.room
        if self.conversation.includes(message):
            self.conversation.show(message)
            if room and envelope.kind in ("join", "leave"):
                self._members += 1 if envelope.kind == "join" else -1
            elif room and envelope.kind == "topic":
                self._room_topic = envelope.body
        elif same_name(sender, self.client.me) or envelope.event:
            pass  # one's own words elsewhere, and room events, are no news
        elif room is not None:
            # A busy room elsewhere says so once, when it starts to be
            # unread, and again for each mention of the user: not per message.
            quiet = self.unread.get(room, 0) > 0
            mentioned = mentions(envelope.body, self.client.me)
            if quiet and not mentioned:  # counted here: no round trip per message
                self.unread[room] += 1
                self._redraw()
                return
            self._count_unread()
            if mentioned or not quiet:
                said = "mentioned you" if mentioned else "wrote"
                self.client.notice(
                    f"{sender} {said} in {room} ({self.unread.get(room, 1)} unread): /switch {room}"
                )
        else:
            self._count_unread()
            self.client.notice(
                f"new message from {sender} ({self.unread.get(sender, 1)} unread): /switch {sender}"
            )
        self._redraw()

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        # From an event or from a new snapshot (after a reconnect, say): only a
        # change is news, so a join after an unseen leave is not "back online".
        if is_room(self.peer):
            self._redraw()
            return
        peer_online = self.peer in online
        if peer_online != self._peer_online:
            self._peer_online = peer_online
            self.client.notice(f"{self.peer} {'is online' if peer_online else 'went offline'}")
        self._redraw()

    def on_connection(self, connected: bool, detail: str) -> None:
        self.client.report_connection(connected, detail)
        self._redraw()

    # -- input (main thread) ----------------------------------------------

    def run(self) -> Outcome:
        self._open(self.peer)
        try:
            while True:
                try:
                    line = self._prompt.prompt(HTML("<b>[{}]</b> ").format(self.peer))
                except EOFError:
                    return Outcome(back=False)
                outcome = self._handle(line)
                if outcome is not None:
                    return outcome
        finally:
            # Until another view takes over, arriving messages wait for it.
            self.client.hide(self)
            self.conversation.close()

    def _handle(self, line: str) -> Outcome | None:
        if line.startswith("/") and not line.startswith("//"):
            return self._command(line)
        text = line[1:] if line.startswith("//") else line
        self._say(text)
        return None

    def _say(self, text: str, kind: str = "text") -> None:
        """Send ``text`` to the conversation on screen (``kind`` me: an action)."""
        if not text.strip():
            return
        try:
            bodies = split_body(text, self.client.mailbox.max_body)
            if len(bodies) > 1:  # said first: the messages may show before submit returns
                limit = self.client.mailbox.max_body
                self.client.notice(f"longer than {limit} bytes: sending as {len(bodies)} messages")
            # Shown once the hub has it; pending meanwhile (the LiveClient says).
            self.client.outbox.submit(self.peer, bodies, kind)
        except ChatbusError as error:
            self.client.print(self.client.style.error(f"not sent: {said(error, in_chat=True)}"))

    def _command(self, line: str) -> Outcome | None:
        name, _, argument = line[1:].partition(" ")
        argument = argument.strip()
        actions: dict[str, Callable[[str], Outcome | None]] = {
            "help": lambda _: self.client.print(HELP),
            "users": lambda _: self._list_users(),
            "switch": self._switch,
            "join": self._join,
            "leave": self._leave_room,
            "me": self._action,
            "topic": self._topic,
            "invite": self._invite,
            "members": lambda _: self._list_members(),
            "history": self._history,
            "older": self._older,
            "quit": lambda _: self._leave(Outcome(back=False)),
            "back": lambda _: (
                self._leave(Outcome(back=True)) if self.from_lobby else self._not_from_lobby()
            ),
        }
        action = actions.get(name)
        if action is None:
            self.client.print(
                self.client.style.error(f"unknown command /{sanitize(name)}: /help lists them")
            )
            return None
        try:
            return action(argument)
        except ChatbusError as error:
            self.client.print(self.client.style.error(said(error, in_chat=True)))
            return None

    def _leave(self, outcome: Outcome) -> Outcome | None:
        """``outcome``, unless messages are pending and the user has not been
        told yet: then say so, and the same command again leaves."""
        pending = self.client.outbox.waiting()
        if pending and not outcome.back and not self._warned_pending:
            self._warned_pending = True
            what = "1 message is" if pending == 1 else f"{pending} messages are"
            self.client.notice(
                f"{what} still waiting for the hub, to go when it is back; "
                "/quit again to leave without sending"
            )
            return None
        return outcome

    def _not_from_lobby(self) -> None:
        self.client.print(self.client.style.error("no lobby to go back to: /switch NAME or /quit"))

    def _list_users(self) -> None:
        names = self.client.online.names
        self.client.notice(f"online ({len(names)}): {', '.join(names)}")
        self.conversation.flush_reads()  # what is on screen is not unread
        self._count_unread()
        counts = self.unread
        if counts:
            self.client.notice(
                "unread: " + ", ".join(f"{sanitize(n)} {c}" for n, c in sorted(counts.items()))
            )

    def _switch(self, argument: str) -> None:
        if not argument:
            raise InvalidName("usage: /switch NAME or /switch #ROOM")
        self._open(self.client.app.target(argument, self.client.me))
        self._redraw()

    def _join(self, argument: str) -> None:
        room = room_name(argument) or room_name("#" + argument)
        if room is None:
            raise InvalidName("usage: /join #ROOM (a room: '#' and 1-32 of A-Z a-z 0-9 _ -)")
        outcome = self.rooms.join(room)
        self.client.receiver.rooms_changed()
        if outcome.created:
            self.client.notice(f"created {outcome.room}; you own it")
        self._open(outcome.room)
        self._redraw()

    def _current_room(self, command: str) -> str:
        if not is_room(self.peer):
            raise NotAMember(f"{command} works in a room: /switch #ROOM first")
        return self.peer

    def _leave_room(self, argument: str) -> None:
        room = room_name(argument) if argument else self._current_room("/leave")
        if room is None:
            raise InvalidName("usage: /leave [#ROOM]")
        left = self.rooms.leave(room)
        self.client.receiver.rooms_changed(left=left)
        self.client.notice(f"you left {left}")
        if same_name(left, self.peer):
            self.client.notice("/switch NAME or #ROOM to talk on, /back or /quit to go")

    def _action(self, argument: str) -> None:
        if not argument:
            raise InvalidName("usage: /me TEXT, as in /me waves")
        self._say(argument, ME)

    def _topic(self, argument: str) -> None:
        room = self._current_room("/topic")
        if argument:
            self.rooms.set_topic(room, argument)
            return
        topic = self.rooms.topic(room)
        self.client.notice(
            f"topic of {room}: {sanitize(topic)}" if topic else f"{room} has no topic"
        )

    def _invite(self, argument: str) -> None:
        room = self._current_room("/invite")
        if not argument:
            raise InvalidName("usage: /invite NAME")
        person = self.client.app.peer(argument)
        if not self.rooms.invite(room, person)[1]:
            self.client.notice(f"{person} is invited to {room} already")

    def _list_members(self) -> None:
        room = self._current_room("/members")
        names = self.rooms.members(room)
        self._members = len(names)
        online = [n for n in names if n in self.client.online]
        offline = [n for n in names if n not in self.client.online]
        self.client.notice(
            f"{room}: {plural(len(names), 'member')}; online: {', '.join(online) or 'nobody'}"
            + (f"; offline: {', '.join(offline)}" if offline else "")
        )

    def _history(self, argument: str) -> None:
        limit = self._count(argument, DEFAULT_HISTORY, "/history")
        if limit is None:
            return
        with self.client.screen:
            self.client.notice(f"history {self.conversation.where}, the last {limit} at most:")
            if not self.conversation.show_latest(limit):
                self.client.notice(f"no messages {self.conversation.where} yet")
            self.client.notice("end of history; live again (/older pages back)")

    def _older(self, argument: str) -> None:
        limit = self._count(argument, OLDER_PAGE, "/older")
        if limit is not None:
            with self.client.screen:
                self.conversation.show_older(limit)

    def _count(self, argument: str, default: int, command: str) -> int | None:
        """The N of ``/command [N]``, 1 to 1000; None (after saying so) if it is not one."""
        try:
            limit = int(argument) if argument else default
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            self.client.print(self.client.style.error(f"usage: {command} [N], N from 1 to 1000"))
            return None
        return limit


def _line_break_keys() -> KeyBindings:
    """Alt-Enter (Esc, Enter) puts a line break in the message being typed."""
    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _line_break(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return keys


def open_chat(
    client: LiveClient, peer: str, *, from_lobby: bool, history: int = DEFAULT_HISTORY
) -> Outcome:
    """Show the chat with ``peer`` until the user leaves it."""
    return ChatView(client, peer, from_lobby=from_lobby, history=history).run()

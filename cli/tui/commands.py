"""The full-screen app's slash commands: those of the line chat view, the same names.

Each command does its work through the library and says what happened as a
line in the conversation; a refusal (ChatbusError) is one error line.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from chatbus.envelope import ME, TEXT
from chatbus.errors import ChatbusError, InvalidName, NotAMember
from chatbus.names import is_room, room_name
from chatbus.sanitize import sanitize
from chatbus.text import split_body

from ..context import said
from ..ui.chat_view import DEFAULT_HISTORY, ROOM_HELP

if TYPE_CHECKING:
    from .app import ChatApp

HELP = f"""\
/help            this list
/users           who is online, and your unread messages (people and rooms)
/switch NAME     talk to NAME, or in a room (/switch #ops)
{ROOM_HELP}/older [N]       show the N messages before the oldest on screen (or PageUp at the top)
/history [N]     show the last N messages again
/back            how to pick another conversation (Ctrl-N/Ctrl-P, Alt-1..9, a click)
/quit            leave (Ctrl-C and Ctrl-Q too)
//text           send a message that starts with a slash
Enter sends; Alt-Enter (or Ctrl-J) starts a new line; a paste keeps its lines.
PageUp/PageDown, the mouse wheel, Home and End (in an empty input) scroll."""


class Commands:
    """What the app does with a line the user typed."""

    def __init__(self, app: "ChatApp") -> None:
        self.app = app

    def note(self, text: str) -> None:
        self.app.conversation.note(text)

    def run(self, line: str) -> None:
        name, _, argument = line[1:].partition(" ")
        actions: dict[str, Callable[[str], None]] = {
            "help": self.help,
            "users": self.users,
            "switch": self.switch,
            "join": self.join,
            "leave": self.leave,
            "me": lambda text: self.say(text, ME),
            "topic": self.topic,
            "invite": self.invite,
            "members": self.members,
            "older": self.older,
            "history": self.history,
            "back": self.back,
            "quit": self.quit,
        }
        action = actions.get(name)
        if action is None:
            self.app.conversation.note(
                f"unknown command /{sanitize(name)}: /help lists them", "error"
            )
            return
        try:
            action(argument.strip())
        except ChatbusError as error:
            self.app.conversation.note(said(error, in_chat=True), "error")

    def help(self, _: str) -> None:
        for row in HELP.splitlines():
            self.note(row)

    def back(self, _: str) -> None:
        self.note("the sidebar is your lobby: Ctrl-N/Ctrl-P, Alt-1..9 or a click pick from it")

    def quit(self, _: str) -> None:
        self.app.run_worker(self.app.action_quit())

    def say(self, text: str, kind: str = TEXT) -> None:
        """Send ``text`` to the conversation on screen."""
        app = self.app
        if app.current is None:
            app.conversation.note(
                "pick a conversation first (the sidebar, or /switch NAME)", "error"
            )
            return
        if not text.strip():
            if kind == ME:
                raise InvalidName("usage: /me TEXT, as in /me waves")
            return
        try:
            bodies = split_body(text, app.mailbox.max_body)
            if len(bodies) > 1:
                self.note(
                    f"longer than {app.mailbox.max_body} bytes: sending as {len(bodies)} messages"
                )
            app.outbox.submit(app.current, bodies, kind)
        except ChatbusError as error:
            app.conversation.note(f"not sent: {said(error, in_chat=True)}", "error")

    def users(self, _: str) -> None:
        names = self.app.receiver.online.names
        self.note(f"online ({len(names)}): {', '.join(names)}")
        unread = self.app.mailbox.unread_counts()
        rooms = {r: c for r, (c, _) in self.app.rooms.unread_counts().items() if c}
        listed = [f"{sanitize(n)} {c}" for n, c in sorted({**unread, **rooms}.items())]
        if listed:
            self.note("unread: " + ", ".join(listed))

    def switch(self, argument: str) -> None:
        if not argument:
            raise InvalidName("usage: /switch NAME or /switch #ROOM")
        self.app.open(self.app.context.target(argument, self.app.me))

    def join(self, argument: str) -> None:
        room = room_name(argument) or room_name("#" + argument)
        if room is None:
            raise InvalidName("usage: /join #ROOM (a room: '#' and 1-32 of A-Z a-z 0-9 _ -)")
        outcome = self.app.rooms.join(room)
        self.app.receiver.rooms_changed()
        self.app.roster.joined(outcome.room)
        self.app.open(outcome.room)
        if outcome.created:
            self.note(f"created {outcome.room}; you own it")

    def _current_room(self, command: str) -> str:
        current = self.app.current
        if current is None or not is_room(current):
            raise NotAMember(f"{command} works in a room: /switch #ROOM first")
        return current

    def leave(self, argument: str) -> None:
        room = room_name(argument) if argument else self._current_room("/leave")
        if room is None:
            raise InvalidName("usage: /leave [#ROOM]")
        left = self.app.rooms.leave(room)
        self.app.receiver.rooms_changed(left=left)
        self.app.roster.left(left)
        self.app.refresh_roster()
        self.note(f"you left {left}")

    def topic(self, argument: str) -> None:
        room = self._current_room("/topic")
        if argument:
            self.app.rooms.set_topic(room, argument)
            return
        topic = self.app.rooms.topic(room)
        self.note(f"topic of {room}: {sanitize(topic)}" if topic else f"{room} has no topic")

    def invite(self, argument: str) -> None:
        room = self._current_room("/invite")
        if not argument:
            raise InvalidName("usage: /invite NAME")
        person = self.app.context.peer(argument)
        if not self.app.rooms.invite(room, person)[1]:
            self.note(f"{person} is invited to {room} already")

    def members(self, _: str) -> None:
        room = self._current_room("/members")
        names = self.app.rooms.members(room)
        online = [n for n in names if n in self.app.receiver.online]
        offline = [n for n in names if n not in self.app.receiver.online]
        rest = f"; offline: {', '.join(offline)}" if offline else ""
        count = f"{len(names)} member{'' if len(names) == 1 else 's'}"
        self.note(f"{room}: {count}; online: {', '.join(online) or 'nobody'}{rest}")

    def _count(self, argument: str, default: int, command: str) -> int:
        try:
            limit = int(argument) if argument else default
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise InvalidName(f"usage: {command} [N], N from 1 to 1000")
        return limit

    def older(self, argument: str, *, quiet: bool = False) -> None:
        """Older messages above; ``quiet`` (paging): nothing said at the first."""
        limit = self._count(argument, 20, "/older")
        reader = self.app.reader
        if reader is None:
            return
        page = reader.older(limit)
        if page.messages:
            self.app.conversation.prepend(page.messages)
        elif not quiet:
            self.note("nothing older: the conversation starts at the top")

    def history(self, argument: str) -> None:
        limit = self._count(argument, DEFAULT_HISTORY, "/history")
        reader = self.app.reader
        if reader is None:
            return
        self.note(f"the last {limit} messages, again:")
        self.app.conversation.append(reader.latest(limit))
        self.note("end of history")

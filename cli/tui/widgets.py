"""The app's widgets: the sidebar, the conversation, the input, the status bar.

Text from the network reaches the screen only through
:func:`chatbus_cli.ui.render.message_line` (sanitized there, styled with
ANSI colours that :meth:`rich.text.Text.from_ansi` turns into Rich styles)
or :func:`chatbus.sanitize.sanitize`; nothing is parsed as Textual markup.
"""

from collections.abc import Iterable
from datetime import date

from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.message import Message as TextualMessage
from textual.widgets import ListItem, ListView, Static, TextArea

from chatbus.messages import Message
from chatbus.sanitize import sanitize

from ..ui.render import Style, message_line
from .roster import Entry

# Colour always: Textual turns it off itself under NO_COLOR.
_STYLE = Style(colour=True)


# How long a conversation's wrapped rows take to get their heights (s).
LAYOUT_SETTLES = 0.1
# The most of a name the sidebar shows (its width is 26 columns).
NAME_SHOWN = 14


def day_label(day: date) -> str:
    """The separator above a day's first message."""
    return f"── {day.strftime('%A %d %B %Y')} ──"


def entry_label(entry: Entry, number: int) -> Text:
    """A sidebar line: ``1 ● alice  3`` (a dot when online, the unread badge,
    ``@2`` for mentions)."""
    label = Text(f"{number} " if number <= 9 else "  ", style="dim")
    if entry.room:
        label.append("  ")
    else:
        label.append("● " if entry.online else "○ ", style="green" if entry.online else "dim")
    name = entry.name if len(entry.name) <= NAME_SHOWN else entry.name[: NAME_SHOWN - 1] + "…"
    label.append(name, style="bold" if entry.unread else "")
    if entry.invited_by is not None:
        label.append(" invited", style="italic")
    if entry.mentions:
        label.append(f" @{entry.mentions}", style="bold reverse yellow")
    if entry.unread:
        label.append(f" {entry.unread}", style="bold reverse")
    return label


class Sidebar(ListView):
    """People, then rooms; selecting one opens it."""

    DEFAULT_CSS = """
    Sidebar { width: 26; border-right: solid $panel-lighten-2; }
    Sidebar > ListItem { padding: 0 1; }
    """

    # Typing always goes to the input: the sidebar is picked from by keys
    # bound in the app (Ctrl-N/Ctrl-P, Alt-1..9) and by the mouse.
    can_focus = False

    def __init__(self) -> None:
        super().__init__(id="sidebar")
        self.entries: list[Entry] = []

    def show(self, entries: list[Entry], current: str | None) -> None:
        """List ``entries``, highlighting ``current``; unchanged lines stay."""
        if entries != self.entries:
            self.entries = entries
            self.clear()
            self.extend(
                ListItem(Static(entry_label(entry, n)), name=entry.name)
                for n, entry in enumerate(entries, 1)
            )
        names = [entry.name.lower() for entry in entries]
        if current is not None and current.lower() in names:
            self.index = names.index(current.lower())


class Conversation(VerticalScroll):
    """One conversation's messages: day separators, a new-messages line,
    pending messages at the bottom; scrolled with PageUp/PageDown, the
    mouse wheel, Home and End."""

    DEFAULT_CSS = """
    Conversation { height: 1fr; padding: 0 1; }
    Conversation > Static { width: 1fr; }
    Conversation > .notice { color: $warning; }
    Conversation > .error { color: $error; text-style: bold; }
    Conversation > .day { color: $text-muted; text-align: center; }
    Conversation > .unread { color: $accent; text-style: bold; }
    Conversation > .pending { color: $text-muted; }
    """

    def __init__(self, me: str) -> None:
        super().__init__(id="conversation")
        self.me = me
        self._first_day: date | None = None
        self._last_day: date | None = None
        self._pending: dict[int, list[Static]] = {}
        self.unread_marker: Static | None = None
        # Keep the newest in view (as messages come, and on a resize) until
        # the user scrolls up; End, or PageDown to the bottom, resumes it.
        self.follow = True
        self._empty: Static | None = None  # "no messages yet", until there are

    def reset(self) -> None:
        self.remove_children()
        self.unread_marker = None
        self.follow = True
        self._empty = None

    def on_resize(self) -> None:
        if self.follow:
            self.call_after_refresh(lambda: self.scroll_end(animate=False))

    def empty(self, text: str) -> None:
        """Say that there are no messages yet (removed when one comes)."""
        self._empty = Static(Text(f"-- {text}"), classes="notice")
        self._mount_bottom([self._empty])
        self._first_day = self._last_day = None
        self._pending.clear()

    def _row(self, message: Message) -> Static:
        line = message_line(message, self.me, _STYLE)
        return Static(Text.from_ansi(line), classes="message")

    @staticmethod
    def _day(message: Message) -> date:
        return date.fromtimestamp(message.accepted_ms / 1000)

    def _day_row(self, day: date) -> Static:
        return Static(day_label(day), classes="day")

    def append(self, messages: Iterable[Message], *, first_unread: int | None = None) -> None:
        """Add ``messages`` at the bottom (above pending ones), with separators."""
        rows: list[Static] = []
        for index, message in enumerate(messages):
            day = self._day(message)
            if day != self._last_day:
                rows.append(self._day_row(day))
                self._first_day = self._first_day or day
                self._last_day = day
            if index == first_unread:
                self.unread_marker = Static("── new messages ──", classes="unread")
                rows.append(self.unread_marker)
            rows.append(self._row(message))
        self._mount_bottom(rows)

    def prepend(self, messages: list[Message]) -> None:
        """Add older ``messages`` at the top, keeping what is on screen in place."""
        if not messages:
            return
        rows: list[Static] = []
        day: date | None = None
        for message in messages:
            if self._day(message) != day:
                day = self._day(message)
                rows.append(self._day_row(day))
            rows.append(self._row(message))
        if self._first_day == day and self.children:
            self.children[0].remove()  # its day's separator now comes first
        self._first_day = self._day(messages[0])
        self._last_day = self._last_day or day
        before = self.virtual_size.height
        self.mount_all(rows, before=0)
        self.call_after_refresh(lambda: self.scroll_to(y=self.virtual_size.height - before))

    def note(self, text: str, kind: str = "notice") -> None:
        """A line of the app's own (``kind``: notice or error), not a message."""
        self._mount_bottom(
            [Static(Text(f"-- {text}" if kind == "notice" else f"!! {text}"), classes=kind)]
        )

    def show_pending(self, key: int, messages: list[Message], reason: str) -> None:
        rows = [
            Static(
                Text.from_ansi(
                    message_line(m, self.me, _STYLE, note=f"(pending: {sanitize(reason)})")
                ),
                classes="pending",
            )
            for m in messages
        ]
        self._pending[key] = rows
        self.mount_all(rows)
        self.scroll_end(animate=False)

    def drop_pending(self, key: int) -> None:
        for row in self._pending.pop(key, []):
            row.remove()

    def show_start(self, unread_rows: int) -> None:
        """Scroll to where reading starts: the new-messages line, else the end.

        Reading from the line, the view follows the newest only when the
        ``unread_rows`` after it fit on the screen; else it stays, and End
        (or one's own next words) goes to the newest."""
        marker = self.unread_marker
        if marker is not None:
            self.follow = unread_rows + 2 < self.size.height

            def to_marker() -> None:
                self.scroll_to_widget(marker, top=True, animate=False)

            # Once the rows are laid out, and again once long (wrapped) ones
            # have their heights: only then is the marker where it stays.
            self.call_after_refresh(to_marker)
            self.set_timer(LAYOUT_SETTLES, to_marker)
        else:
            self.call_after_refresh(lambda: self.scroll_end(animate=False))

    def to_newest(self) -> None:
        """Follow the newest again and show it (after one's own words)."""
        self.follow = True
        self.call_after_refresh(lambda: self.scroll_end(animate=False))

    def _mount_bottom(self, rows: list[Static]) -> None:
        if self._empty is not None and any("message" in row.classes for row in rows):
            self._empty.remove()
            self._empty = None
        pending = next((r for rs in self._pending.values() for r in rs if r.parent is self), None)
        if pending is not None:
            self.mount_all(rows, before=pending)
        else:
            self.mount_all(rows)
        if self.follow:
            self.call_after_refresh(lambda: self.scroll_end(animate=False))


class Composer(TextArea):
    """The input: Enter sends, Alt-Enter (or Ctrl-J) starts a new line, a
    paste keeps its lines, Up and Down recall earlier inputs."""

    DEFAULT_CSS = """
    Composer { height: auto; max-height: 8; min-height: 3; border: tall $accent; }
    """

    class Submitted(TextualMessage):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ScrollRequest(TextualMessage):
        """Home or End in an empty input: scroll the conversation."""

        def __init__(self, where: str) -> None:
            super().__init__()
            self.where = where

    def __init__(self) -> None:
        super().__init__(
            id="composer", soft_wrap=True, show_line_numbers=False, tab_behavior="focus"
        )
        self._history: list[str] = []
        self._recalled = 0  # how far back Up has gone (0: not recalling)

    async def _on_key(self, event: events.Key) -> None:
        # Here, not as bindings: a binding runs after the keys typed behind it.
        if event.key in ("alt+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self._submit()
            return
        if event.key in ("home", "end") and not self.text:
            event.stop()
            event.prevent_default()
            self.post_message(self.ScrollRequest(event.key))
            return
        if event.key == "up" and self.cursor_location[0] == 0 and self._recall(1):
            event.stop()
            event.prevent_default()
            return
        if (
            event.key == "down"
            and self.cursor_location[0] == self.document.line_count - 1
            and self._recall(-1)
        ):
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    def _submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        self._history.append(text)
        self._recalled = 0
        self.clear()
        self.post_message(self.Submitted(text))

    def _recall(self, step: int) -> bool:
        """Show an earlier (``step`` 1) or later (-1) input; False if there is none."""
        wanted = self._recalled + step
        if not 0 <= wanted <= len(self._history) or (wanted == 0 and self._recalled == 0):
            return False
        self._recalled = wanted
        self.load_text(self._history[-wanted] if wanted else "")
        self.move_cursor(self.document.end)
        return True


class StatusBar(Static):
    """Who you are, on which hub, whether it is reachable, what is pending."""

    DEFAULT_CSS = """
    StatusBar { dock: bottom; height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__(id="status")

    def say(self, me: str, hub: str, connected: bool | None, detail: str, pending: int) -> None:
        if connected is None:
            state = "connecting"
        elif connected:
            state = "connected"
        else:
            state = f"hub unreachable ({sanitize(detail)}); reconnecting"
        text = Text(f" {me}", style="bold")
        text.append(f" @ {hub} | ")
        text.append(state, style="" if connected else "bold red")
        if pending:
            text.append(f" | {pending} pending", style="bold yellow")
        text.append(" | ^N/^P switch  PgUp/PgDn scroll  /help", style="dim")
        self.update(text)


class Heading(Static):
    """The line above the conversation: whom or which room, and its state."""

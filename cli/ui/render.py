"""How things look on the terminal: timestamps, nick colours, one line a message.

Every piece of text that came from the network goes through
``chatbus.sanitize.sanitize`` here, and nowhere is network text printed
without passing through this module.
"""

import json
import os
import re
import sys
import time
import zlib
from typing import TextIO

import click

from chatbus.messages import Message
from chatbus.names import same_name
from chatbus.sanitize import sanitize, sanitize_lines
from chatbus.text import mention_spans

# 256-colour indices that read well on dark and light backgrounds.
_NICK_COLOURS = (33, 37, 40, 70, 75, 108, 130, 135, 166, 169, 172, 178)


def colour_enabled(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org:
    to a non-empty value)."""
    stream = stream or sys.stdout
    return not os.environ.get("NO_COLOR") and stream.isatty()


class Style:
    """Builds styled strings, or plain ones when colour is off."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def _style(self, text: str, **options: object) -> str:
        return click.style(text, **options) if self.colour else text  # type: ignore[arg-type]

    def nick(self, name: str, *, own: bool = False) -> str:
        if own:
            return self._style(name, bold=True)
        return self._style(name, fg=_NICK_COLOURS[zlib.crc32(name.lower().encode()) % 12])

    def dim(self, text: str) -> str:
        return self._style(text, dim=True)

    def notice(self, text: str) -> str:
        return self._style(f"-- {text}", fg="yellow")

    def error(self, text: str) -> str:
        return self._style(f"!! {text}", fg="red", bold=True)

    def mention(self, text: str) -> str:
        return self._style(text, fg="yellow", bold=True, reverse=True)


def plural(count: int, noun: str) -> str:
    """ "1 member", "2 members"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def clock(ms: int, now: float | None = None) -> str:
    """``HH:MM`` for today, ``YYYY-MM-DD HH:MM`` for earlier days (local time)."""
    moment = time.localtime(ms / 1000)
    today = time.localtime(now if now is not None else time.time())
    if moment[:3] == today[:3]:
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


# What a room's event says, after who did it.
_EVENTS = {
    "join": "joined {room}",
    "leave": "left {room}",
    "invite": "invited {body} to {room}",
    "topic": "set the topic of {room}: {body}",
}


def highlight_mentions(text: str, me: str, style: Style) -> str:
    """``text`` (sanitized) with each "@me" in it highlighted."""
    spans = mention_spans(text, me)
    if not spans or not style.colour:
        return text
    parts, at = [], 0
    for start, end in spans:
        parts += [text[at:start], style.mention(text[start:end])]
        at = end
    return "".join([*parts, text[at:]])


def message_line(message: Message, me: str, style: Style, *, note: str = "") -> str:
    """A message as ``HH:MM name: text``; each further line of a multi-line
    body goes on a line of its own, indented under the text, so that no line
    of a body can pass for a message of its own. ``note`` is added dimmed.

    In a room: an action (/me) as ``HH:MM * name text``, an event as ``HH:MM
    -- name joined #room``, and mentions of ``me`` highlighted."""
    envelope = message.envelope
    sender = sanitize(envelope.sender)
    stamp = clock(message.accepted_ms)
    nick = style.nick(sender, own=same_name(sender, me))
    if envelope.event:
        room, body = sanitize(envelope.recipient), " ".join(sanitize_lines(envelope.body))
        said = _EVENTS[envelope.kind].format(room=room, body=body)
        return f"{style.dim(stamp)} {style.dim('--')} {nick} {style.dim(said)}"
    first, *more = (highlight_mentions(line, me, style) for line in sanitize_lines(envelope.body))
    head = f"{stamp} * {sender} " if envelope.kind == "me" else f"{stamp} {sender}: "
    indent = " " * len(head)  # names and clocks are ASCII
    lead = f"* {nick} " if envelope.kind == "me" else f"{nick}: "
    lines = [f"{style.dim(stamp)} {lead}{first}", *(indent + line for line in more)]
    if note:
        lines[-1] += style.dim(f"  {note}")
    return "\n".join(lines)


# What JSON leaves as is but a terminal would act on: DEL, the C1 controls
# (0x9B is an 8-bit CSI), bidirectional overrides, and the Unicode line breaks.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe_json(value: object) -> str:
    """JSON for stdout: readable Unicode, but nothing a terminal interprets.

    ``json.dumps`` escapes C0 controls; these are escaped too (``\\u009b``), so
    the text stays exact for a program reading it and harmless on a screen.
    """
    text = json.dumps(value, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)

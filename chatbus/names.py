"""User names: what is allowed, and the one canonical form keys are built from."""

import re
from collections.abc import Sequence
from typing import TypeGuard

from .errors import InvalidName

_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Valid names joined by line breaks: a whole list checked in one match.
_NAME_LINES = re.compile(rb"[A-Za-z0-9_-]{1,32}(?:\n[A-Za-z0-9_-]{1,32})*")
NAME_RULE = "1-32 characters: letters A-Z a-z, digits 0-9, '_' and '-'"
# The hash tags of shared keys (``NS:{presence}:...``, ``NS:{directory}:...``,
# ``NS:{rooms}:...``): a user of that name would own them on a secured hub,
# whose rules give each user ``NS:{name}:*``. No user may be called so, in any case.
RESERVED = frozenset({"presence", "directory", "rooms"})
_RESERVED_IN = re.compile(rb"(?:^|\n)(?:presence|directory|rooms)(?:\n|$)", re.IGNORECASE)
# A room: '#' and a name. '+' may stand for '#' where a shell would read '#'
# as the start of a comment (``chatbus chat +ops`` is ``chatbus chat '#ops'``):
# '+' is an IRC channel prefix too, and no user name starts with it.
_ROOM = re.compile(r"[#+]([A-Za-z0-9_-]{1,32})")
ROOM_RULE = "'#' and 1-32 characters: letters A-Z a-z, digits 0-9, '_' and '-'"


def is_valid_name(name: object) -> TypeGuard[str]:
    """True when ``name`` is a string a user could register."""
    return (
        isinstance(name, str) and _NAME.fullmatch(name) is not None and name.lower() not in RESERVED
    )


def valid_names(stored: Sequence[bytes]) -> list[str]:
    """The valid names among ``stored`` (as the hub replies), as text, in order.

    When every entry is valid, as it is unless someone wrote junk to the hub,
    the list is checked by one match over the joined bytes: for 10,000 names
    that is about 20 times faster than checking each name.
    """
    joined = b"\n".join(stored)
    if _NAME_LINES.fullmatch(joined) and not _RESERVED_IN.search(joined):
        names = joined.decode("ascii").split("\n")
        # An entry holding a line break splits in two: then check one by one.
        if len(names) == len(stored):
            return names
    decoded = (entry.decode(errors="replace") for entry in stored)
    return [name for name in decoded if is_valid_name(name)]


def validate_name(name: str) -> str:
    """Return ``name`` unchanged, or raise InvalidName saying what is allowed."""
    if name.lower() in RESERVED:
        raise InvalidName(f"the name {name!r} is reserved (for chatbus's own keys): choose another")
    if not is_valid_name(name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise InvalidName(f"invalid name {shown!r}: use {NAME_RULE}")
    return name


def same_name(a: str, b: str) -> bool:
    """Names are one account regardless of case: "Alice" is "alice"."""
    return a.lower() == b.lower()


def is_room(target: object) -> TypeGuard[str]:
    """True when ``target`` is a room name as stored and sent: ``#`` and a name."""
    return isinstance(target, str) and target[:1] == "#" and _ROOM.fullmatch(target) is not None


def room_name(typed: str) -> str | None:
    """``typed`` as a room name (``+ops`` becomes ``#ops``), or None if it names no room."""
    match = _ROOM.fullmatch(typed)
    return f"#{match.group(1)}" if match else None


def validate_room(typed: str) -> str:
    """``typed`` as a room name (``#ops``), or raise InvalidName saying what is allowed."""
    room = room_name(typed)
    if room is None:
        shown = typed if len(typed) <= 40 else typed[:40] + "..."
        raise InvalidName(f"invalid room name {shown!r}: use {ROOM_RULE} (or '+' for '#')")
    return room

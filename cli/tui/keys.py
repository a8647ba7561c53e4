"""Alt-Enter and Alt-1..9, as Linux terminals send them, read as those keys.

Textual's terminal parser drops the Alt of ESC followed by CR or LF and
reports a plain Enter (so a line break could not be told from a send), and
reads ESC followed by a digit as the character a Mac's Option key makes with
it ("¡" for Alt-1). This wraps the parser's key mapping so that ESC CR (and
ESC LF) become ``alt+enter`` and ESC 0-9 become ``alt+0`` to ``alt+9``;
every other sequence is left to Textual.
"""

from collections.abc import Iterable
from typing import Any

from textual import events
from textual._xterm_parser import XTermParser

_ORIGINAL = XTermParser._sequence_to_key_events
_ESC = "\x1b"


def _alt_key(sequence: str, alt: bool) -> str | None:
    """The Alt key a sequence stands for: whole (ESC and a character, as it
    arrives), or its second half once the parser has read the ESC."""
    if sequence[:1] == _ESC and len(sequence) == 2:
        alt, sequence = True, sequence[1:]
    if not alt or len(sequence) != 1:
        return None
    if sequence in ("\r", "\n"):
        return "alt+enter"
    return f"alt+{sequence}" if sequence.isdigit() else None


def _with_alt_keys(self: XTermParser, sequence: str, alt: bool = False) -> Iterable[events.Key]:
    key = _alt_key(sequence, alt)
    if key is not None:
        yield events.Key(key, None)
        return
    yield from _ORIGINAL(self, sequence, alt)


def read_alt_keys() -> None:
    """Make the parser report ESC CR and ESC 0-9 as Alt keys (once per process)."""
    parser: Any = XTermParser
    parser._sequence_to_key_events = _with_alt_keys

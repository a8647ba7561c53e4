"""Make text from the network safe to print on a terminal.

Anything a peer sends is hostile until this has run: an escape sequence can
move the cursor, rewrite earlier lines, change the window title or, on some
terminals, make them answer with typed input (CVE-2024-28085, "WallEscape",
is exactly this bug in ``wall``). The rules:

* escape sequences are removed whole: CSI (``ESC [`` or U+009B), OSC, DCS, SOS,
  PM and APC strings (up to their terminator), and two-character ``ESC x``;
* every other C0 control, DEL and every C1 control is removed, except that a
  tab, a line break or a carriage return becomes one space, so words stay apart
  and nobody can fake a second line that looks like another message;
* bidirectional overrides and isolates are removed, so a message cannot render
  its text in a different order from the bytes sent ("Trojan Source");
* everything else is kept as it is: Cyrillic, CJK, emoji and their joiners.

:func:`sanitize_lines` is the same, line by line, for showing a multi-line
message: its line breaks (LF, or CR LF) are kept as separate lines, which the
caller indents under the sender's name so none can pass for a message line.
"""

import re

# ESC or the 8-bit C1 form, then what each introducer swallows.
_STRING_BODY = r"[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"  # CSI ... final byte
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])" + _STRING_BODY + r"|\x1b[\x20-\x7e]?"
)
_SPACE_LIKE = re.compile(r"[\t\n\r\v\f\u2028\u2029\x85]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def sanitize(text: str) -> str:
    """Return ``text`` with nothing a terminal would interpret."""
    text = _ESCAPE.sub("", text)
    text = _SPACE_LIKE.sub(" ", text)
    return _CONTROL.sub("", text)


_LINE_BREAK = re.compile(r"\r?\n")


def sanitize_lines(text: str) -> list[str]:
    """The lines of ``text`` (split at LF or CR LF), each made safe to print."""
    return [sanitize(line) for line in _LINE_BREAK.split(text)]

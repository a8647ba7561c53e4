"""What a person types, made into message bodies that fit.

A body is capped at ``max_body`` UTF-8 bytes (PROTOCOL.md). Text longer than
that is not refused but split into several bodies, sent in order: at the last
line break that fits, else at the last white space, else (one huge word) at
the last whole character. The break itself is dropped; line breaks inside a
body are kept.
"""

import re

from .errors import InvalidMessage

_LINE_BREAK = re.compile(r"\r\n?")


def normalize_line_breaks(text: str) -> str:
    """CR LF and lone CR (a paste from another system) become LF."""
    return _LINE_BREAK.sub("\n", text)


def split_body(text: str, max_body: int) -> list[str]:
    """``text`` as bodies of at most ``max_body`` bytes, in order; blank parts
    dropped. InvalidMessage when nothing but white space is left."""
    text = normalize_line_breaks(text)
    bodies: list[str] = []
    while text:
        encoded = text.encode("utf-8")
        if len(encoded) <= max_body:
            head, text = text, ""
        else:
            # The longest prefix that fits, cut at a character boundary.
            fits = encoded[:max_body].decode("utf-8", errors="ignore")
            if not fits:
                raise InvalidMessage(f"a character does not fit in {max_body} bytes")
            head, text = _cut(fits, text)
        if head.strip():
            bodies.append(head)
    if not bodies:
        raise InvalidMessage("empty message: type some text to send")
    return bodies


def _cut(fits: str, text: str) -> tuple[str, str]:
    """Split ``text`` at the best break inside its prefix ``fits`` (or right
    after it); the break itself is dropped, so the head still fits."""
    window = text[: len(fits) + 1]
    for breaks in ("\n", " \t"):
        at = max(window.rfind(char) for char in breaks)
        if at > 0:
            return fits[:at].rstrip(" \t"), text[at + 1 :]
    return fits, text[len(fits) :]


# "@name" as a whole word, any case: the rule room_post.lua counts mentions by.
_MENTION = re.compile(r"(?<![A-Za-z0-9_-])@([A-Za-z0-9_-]{1,32})(?![A-Za-z0-9_-])")


def mentions(body: str, name: str) -> bool:
    """True when ``body`` mentions ``name`` ("@name", any case, as a whole word)."""
    return any(m.group(1).lower() == name.lower() for m in _MENTION.finditer(body))


def mention_spans(body: str, name: str) -> list[tuple[int, int]]:
    """Where ``body`` mentions ``name``: (start, end) of each "@name"."""
    return [m.span() for m in _MENTION.finditer(body) if m.group(1).lower() == name.lower()]

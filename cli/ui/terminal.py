"""Terminal facts and standard input, shared by the commands and views."""

import codecs
import os
import sys
from collections.abc import Iterator
from typing import Protocol, cast

from chatbus.envelope import check_body
from chatbus.errors import InvalidMessage
from chatbus.messages import SEND_BATCH


def interactive() -> bool:
    """True when a person is at a terminal on both ends (stdin and stdout)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def full_screen(plain: bool) -> bool:
    """True when the full-screen app can run: a terminal, not a dumb one, and
    no ``--plain`` (CHATBUS_PLAIN) asking for line mode."""
    return interactive() and not plain and os.environ.get("TERM", "") not in ("dumb", "")


class ChunkReader(Protocol):
    """A binary stream that can return what it has without waiting for more."""

    def read1(self, size: int = ..., /) -> bytes: ...


def read_line_batches(
    stream: ChunkReader | None = None, max_batch: int = SEND_BATCH
) -> Iterator[list[str]]:
    """Lines of ``stream`` (default: stdin) in batches, without waiting for more than is there.

    Each read takes what the pipe holds now (``read1``), so a slow producer
    such as ``tail -f`` gets its lines sent at once, while a fast one is sent
    ``max_batch`` lines per round trip. Blank lines are skipped.
    """
    if stream is None:
        stream = cast(ChunkReader, sys.stdin.buffer)
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    while True:
        chunk = stream.read1(65536)
        try:
            pending += decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise InvalidMessage("standard input is not UTF-8 text") from None
        *lines, pending = pending.split("\n")
        if not chunk and pending:
            lines.append(pending)
        texts = [line.rstrip("\r") for line in lines]
        texts = [text for text in texts if text.strip()]
        for start in range(0, len(texts), max_batch):
            yield texts[start : start + max_batch]
        if not chunk:
            return


def split_at_invalid(lines: list[str], max_body: int) -> tuple[list[str], InvalidMessage | None]:
    """The lines before the first one that cannot be sent, and that one's error."""
    for index, line in enumerate(lines):
        try:
            check_body(line, max_body)
        except InvalidMessage as error:
            return lines[:index], error
    return lines, None

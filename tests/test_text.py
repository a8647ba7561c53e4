"""Long and multi-line messages: split to fit, shown with their line breaks, safely."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbus.envelope import Envelope
from chatbus.errors import InvalidMessage
from chatbus.messages import Message
from chatbus.sanitize import sanitize_lines
from chatbus.text import split_body
from chatbus_cli.ui.render import Style, message_line


def test_a_short_message_is_one_body_with_its_line_breaks() -> None:
    assert split_body("one\r\ntwo\rthree", 100) == ["one\ntwo\nthree"]


def test_a_long_message_splits_at_line_breaks_first_then_between_words() -> None:
    assert split_body("first line\nsecond line here", 20) == ["first line", "second line here"]
    assert split_body("hello world foo bar", 11) == ["hello world", "foo bar"]
    assert split_body("a" * 10, 4) == ["aaaa", "aaaa", "aa"]  # one long word: cut
    assert split_body("жжжжж", 5) == ["жж", "жж", "ж"]  # never inside a character


def test_a_character_that_cannot_fit_at_all_or_no_text_is_refused() -> None:
    with pytest.raises(InvalidMessage):
        split_body("😀", 2)
    with pytest.raises(InvalidMessage, match="empty message"):
        split_body(" \n\t ", 10)


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=400), st.integers(4, 64))
def test_every_body_fits_and_no_word_is_lost(text: str, max_body: int) -> None:
    if not text.strip():
        return  # refused, above
    bodies = split_body(text, max_body)
    assert all(len(body.encode()) <= max_body and body.strip() for body in bodies)
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    # Only the breaks between bodies are dropped: the words come in order.
    assert "".join("".join(bodies).split()) == "".join(normalized.split())


def test_each_line_of_a_message_is_sanitized_on_its_own() -> None:
    assert sanitize_lines("one\n\x1b[2Jtwo\r\nthree\rfour") == ["one", "two", "three four"]


def message(body: str) -> Message:
    return Message("1764061200000-0", Envelope("0" * 32, "bob", "alice", 0, body))


def test_continuation_lines_are_indented_under_the_text() -> None:
    shown = message_line(message("first\nsecond\n12:00 carol: fake"), "alice", Style(False))
    first, second, third = shown.split("\n")
    assert first.endswith(" bob: first")
    indent = " " * len(first.partition("first")[0])
    assert second == indent + "second"
    # A line of a body can never pass for a message of its own.
    assert third == indent + "12:00 carol: fake"

"""The sanitizer: what reaches the terminal from the network."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbus.sanitize import sanitize

ESCAPE_ATTACKS = [
    ("\x1b[2J\x1b[Hgotcha", "gotcha"),  # clear screen, cursor home
    ("\x1b]0;pwned\x07title", "title"),  # OSC window title, BEL terminated
    ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ST terminated
    ("a\x1bPq#0;2;0;0;0\x1b\\b", "ab"),  # DCS (sixel)
    ("\x9b31mred", "red"),  # 8-bit CSI
    ("\x1b[31;1mred\x1b[0m", "red"),
    ("x\x1b7y\x1b8z", "xyz"),  # save/restore cursor
    ("\x1b[6n", ""),  # cursor position request: the terminal would answer as if typed
    ("bell\x07\x08\x7f", "bell"),
    ("one\ntwo\r\nthree\tfour", "one two  three four"),
    ("\u202eevil\u202c", "evil"),  # right-to-left override
]


@pytest.mark.parametrize(("hostile", "shown"), ESCAPE_ATTACKS)
def test_escape_sequences_and_controls_are_removed(hostile: str, shown: str) -> None:
    assert sanitize(hostile) == shown


@pytest.mark.parametrize(
    "text",
    [
        "Привет, мир",
        "你好，世界",  # noqa: RUF001 (the CJK comma is the point)
        "👩‍💻 🎉 👍🏽",
        "mañana ça",
        "العربية",
        "a b  c",
    ],
)
def test_ordinary_text_in_any_script_is_kept(text: str) -> None:
    assert sanitize(text) == text


def _printable(char: str) -> bool:
    category = unicodedata.category(char)
    return category != "Cc" and char not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@given(st.text())
def test_output_never_holds_a_control_character(text: str) -> None:
    assert all(_printable(c) for c in sanitize(text))


@given(st.text())
def test_sanitizing_twice_changes_nothing(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once) == once


@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "S", "Zs"])))
def test_text_without_controls_passes_unchanged(text: str) -> None:
    assert sanitize(text) == text

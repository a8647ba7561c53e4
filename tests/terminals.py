"""People at real terminals: chatbus processes in pseudo-terminals, and the hub they share.

NO_COLOR keeps the expected text free of colour codes; prompt_toolkit still
draws its input line with escape sequences, so assertions look for the lines
chatbus prints.
"""

import io
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pexpect
import pyte
import pytest
from cli_helpers import process_env
from helpers import CHATBUS

from chatbus import accounts
from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.identity import IdentityStore

PASSWORD = "password1"
TIMEOUT = 15


def user_env(settings: Settings, home: Path, *, full_screen: bool = False) -> dict[str, str]:
    """A person's environment; line mode (CHATBUS_PLAIN) unless ``full_screen``."""
    env = process_env(
        settings,
        home,
        CHATBUS_LEASE_TTL=str(settings.lease_ttl),
        TERM="xterm-256color",
        NO_COLOR="1",
    )
    if not full_screen:
        env["CHATBUS_PLAIN"] = "1"
    return env


class _Display(pyte.Screen):
    """A terminal emulator's screen that answers the program's questions
    (its cursor position, which prompt_toolkit asks before drawing a status
    bar), as a real terminal does."""

    def __init__(self, columns: int, rows: int, answer: Callable[[str], object]) -> None:
        super().__init__(columns, rows)
        self._answer = answer

    def write_process_input(self, data: str) -> None:
        self._answer(data)


class _Spawn(pexpect.spawn):  # type: ignore[misc]
    """A pexpect child whose every byte of output also reaches a live screen."""

    display: _Display
    stream: pyte.Stream

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> str:
        data: str = super().read_nonblocking(size, timeout)
        self.stream.feed(data)
        return data


class Terminal:
    """One person at one terminal running chatbus."""

    def __init__(
        self,
        settings: Settings,
        home: Path,
        *args: str,
        full_screen: bool = False,
        size: tuple[int, int] = (120, 30),
    ) -> None:
        columns, rows = size
        self.child = _Spawn(
            CHATBUS,
            list(args),
            env=user_env(settings, home, full_screen=full_screen),
            dimensions=(rows, columns),
            encoding="utf-8",
            timeout=TIMEOUT,
        )
        self.child.display = _Display(columns, rows, self.child.send)
        self.child.stream = pyte.Stream(self.child.display)
        self.child.logfile_read = self.transcript = io.StringIO()

    def expect(self, pattern: str) -> None:
        self.child.expect(pattern)

    def type(self, text: str) -> None:
        self.child.send(text)

    def enter(self, text: str = "") -> None:
        self.child.send(text + "\r")

    def screen_so_far(self) -> str:
        """Everything the terminal received up to the last match."""
        return self.transcript.getvalue()

    def screen(self) -> list[str]:
        """The rows the terminal shows now, as a terminal emulator draws them."""
        return [row.rstrip() for row in self.child.display.display]

    def expect_on_screen(self, text: str, timeout: float = TIMEOUT) -> None:
        """Wait until ``text`` shows somewhere on the screen (a status bar, say,
        which is drawn in pieces). It reads all output meanwhile: expect()
        afterwards sees only what comes later."""
        self.expect_row(f".*{re.escape(text)}.*", timeout)

    def expect_row(self, pattern: str, timeout: float = TIMEOUT) -> None:
        """Wait until a whole row of the screen matches ``pattern`` (read as
        in :meth:`expect_on_screen`)."""
        deadline = time.monotonic() + timeout
        while not any(re.fullmatch(pattern, row) for row in self.screen()):
            if time.monotonic() > deadline:
                shown = "\n".join(self.screen())
                raise AssertionError(f"{pattern!r} not on screen within {timeout} s:\n{shown}")
            self.child.expect([r"(?s).+", pexpect.TIMEOUT], timeout=0.1)

    def close(self) -> None:
        self.child.close(force=True)  # SIGHUP first: chatbus leaves cleanly


class World:
    """The test's view of the hub and its users."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.hub = Hub(settings)
        self.opened: list[Terminal] = []

    def register(self, *names: str) -> None:
        for name in names:
            accounts.register(self.hub, name, PASSWORD)

    def home(self, name: str) -> Path:
        return self.tmp_path / f"home-{name}"

    def logged_in(self, name: str) -> None:
        """Save a session for ``name``, as ``chatbus login`` would."""
        session = accounts.login(self.hub, name, PASSWORD)
        IdentityStore(self.home(name), self.settings.url, self.settings.namespace).save(session)

    def terminal(self, name: str, *args: str, **options: Any) -> Terminal:
        terminal = Terminal(self.settings, self.home(name), *args, **options)
        self.opened.append(terminal)
        return terminal

    def login(self, name: str) -> Terminal:
        terminal = self.terminal(name, "login", name)
        terminal.expect("Password: ")
        terminal.enter(PASSWORD)
        return terminal


@contextmanager
def world_of(settings: Settings, tmp_path: Path) -> Iterator[World]:
    """A world on the hub of ``settings``; every terminal is closed at the end."""
    state = World(settings, tmp_path)
    try:
        yield state
    finally:
        for terminal in state.opened:
            terminal.close()
        state.hub.close()


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    with world_of(settings, tmp_path) as state:
        yield state

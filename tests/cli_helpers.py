"""Helpers for the CLI tests: invoking ``chatbus`` in-process and as a process."""

import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from click.testing import CliRunner, Result
from helpers import CHATBUS

from chatbus.config import Settings
from chatbus_cli.main import cli

PASSWORD = "correct horse"

# A clock at the start of a message line: "HH:MM", or "YYYY-MM-DD HH:MM" for a
# message from an earlier day (only if a test runs across midnight).
CLOCK = r"(?:\d{4}-\d\d-\d\d )?\d\d:\d\d"

# Settings the tests never inherit from the environment they run in.
_CLEARED = (
    "CHATBUS_URL",
    "CHATBUS_NAMESPACE",
    "CHATBUS_HOME",
    "CHATBUS_PASSWORD",
    "CHATBUS_USER",
    "CHATBUS_LEASE_TTL",
    "CHATBUS_MAX_BODY",
    "NO_COLOR",
)


def settings_env(settings: Settings) -> dict[str, str | None]:
    """CliRunner env: the test hub and namespace, nothing from the caller's shell."""
    env: dict[str, str | None] = dict.fromkeys(_CLEARED)
    env.update(
        CHATBUS_URL=settings.url,
        CHATBUS_NAMESPACE=settings.namespace,
        CHATBUS_HOME=str(settings.home),
        XDG_STATE_HOME=str(settings.home / "state"),  # error logs stay in the test's files
    )
    return env


def process_env(settings: Settings, home: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a ``chatbus`` subprocess run against the test hub."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(
        CHATBUS_URL=settings.url,
        CHATBUS_NAMESPACE=settings.namespace,
        CHATBUS_HOME=str(home or settings.home),
        XDG_STATE_HOME=str((home or settings.home) / "state"),
    )
    env.update(extra)
    return env


@dataclass
class Chatbus:
    """Runs ``chatbus ARGS`` in-process against the test hub.

    Exceptions are not caught: a traceback the user would see fails the test
    with that traceback, instead of hiding in ``result.exception``.
    """

    settings: Settings
    env: dict[str, str | None] = field(init=False)
    runner: CliRunner = field(default_factory=lambda: CliRunner(catch_exceptions=False))

    def __post_init__(self) -> None:
        self.env = settings_env(self.settings)

    def __call__(
        self, *args: str, stdin: str | bytes | None = None, color: bool = False, **env: str | None
    ) -> Result:
        # color=True keeps whatever escape codes the command writes, so a test
        # can see them; CliRunner would strip them otherwise.
        return self.runner.invoke(
            cli, list(args), input=stdin, env={**self.env, **env}, color=color, prog_name="chatbus"
        )

    def ok(self, *args: str, stdin: str | bytes | None = None, **env: str | None) -> Result:
        result = self(*args, stdin=stdin, **env)
        assert result.exit_code == 0, result.output
        return result

    def login(self, name: str, password: str = PASSWORD) -> Result:
        return self.ok("login", name, CHATBUS_PASSWORD=password)


def one_line_error(result: Result, code: int = 1) -> str:
    """Assert ``result`` is a one-line ``Error: ...`` with ``code``; return the line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    return lines[0]


class Lines:
    """Reads a process's output on a thread, so a test can wait for a line."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in iter(stream.readline, ""):
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The first line from now on matching ``pattern``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {pattern!r} within {timeout} s; got {self.seen}"
                ) from None
            if line is None:
                raise AssertionError(f"output ended before {pattern!r}; got {self.seen}")
            self.seen.append(line)
            match = re.fullmatch(pattern, line)
            if match:
                return match

    def rest(self, timeout: float = 10.0) -> list[str]:
        """Every line until the stream ends (the process exited)."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError(f"output did not end within {timeout} s") from None
            if line is None:
                return lines
            self.seen.append(line)
            lines.append(line)


@contextmanager
def chatbus_process(
    args: list[str], env: dict[str, str], stdin: int | None = subprocess.PIPE
) -> Iterator[subprocess.Popen[str]]:
    """``chatbus ARGS`` as a process with pipes; killed at the end if still running."""
    process = subprocess.Popen(
        [CHATBUS, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def pty_env(settings: Settings, home: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of ``chatbus`` in a pseudo-terminal against the test hub:
    no colour codes in what a test reads, no cursor-position queries, the
    line views (CHATBUS_PLAIN) these tests read."""
    return process_env(
        settings,
        home,
        TERM="xterm-256color",
        NO_COLOR="1",
        PROMPT_TOOLKIT_NO_CPR="1",
        CHATBUS_PLAIN="1",
        **extra,
    )

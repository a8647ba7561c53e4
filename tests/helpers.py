"""Shared test helpers: a listener that records, and waiting with a deadline."""

import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from chatbus.errors import SessionEnded
from chatbus.hub import Hub
from chatbus.messages import Message
from chatbus.presence import OnlineList, PresenceEvent
from chatbus.receiver import Receiver, Timing

T = TypeVar("T")

# The console script installed beside the interpreter running the tests.
CHATBUS = shutil.which("chatbus", path=str(Path(sys.executable).parent)) or "chatbus"


def wait_until(condition: Callable[[], T], timeout: float, what: str = "condition") -> T:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class Recorder:
    """A receiver Listener that keeps everything it is told, thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[Message] = []
        self.events: list[PresenceEvent] = []
        self.snapshots = 0
        self.online: list[str] = []
        self.connections: list[tuple[bool, str]] = []
        self.session_ended: SessionEnded | None = None

    def on_message(self, message: Message) -> None:
        with self._lock:
            self.messages.append(message)

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        with self._lock:
            self.online = online.names
            if event is None:
                self.snapshots += 1
            else:
                self.events.append(event)

    def on_connection(self, connected: bool, detail: str) -> None:
        with self._lock:
            self.connections.append((connected, detail))

    def on_session_ended(self, ended: SessionEnded) -> None:
        with self._lock:
            self.session_ended = ended

    def bodies(self) -> list[str]:
        with self._lock:
            return [m.envelope.body for m in self.messages]

    def wait_for_bodies(self, count: int, timeout: float = 10.0) -> list[str]:
        wait_until(lambda: len(self.bodies()) >= count, timeout, f"{count} messages")
        return self.bodies()


def receive(hub: Hub, name: str, timing: Timing) -> tuple[Recorder, Receiver]:
    """A started receiver of ``name`` (from the start of its mailbox), connected."""
    recorder = Recorder()
    receiver = Receiver(hub, name, recorder, after_id="0-0", timing=timing)
    receiver.start()
    assert receiver.wait_connected(10)
    return recorder, receiver

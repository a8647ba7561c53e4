"""Record a real two-person chatbus session in line mode and put it in README.md.

It starts its own hub on a free port, runs ``chatbus login`` for alice and bob
in two tmux terminals, types what a person would, waits for each screen to
show the answer, and writes both final screens between the transcript markers
of README.md. Needs tmux. Run: .venv/bin/python scripts/transcript.py
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chatbus.server import HubProcess, find_server

ROOT = Path(__file__).resolve().parent.parent
CHATBUS = str(Path(sys.executable).parent / "chatbus")
WIDTH, HEIGHT = 78, 18


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Terminal:
    """A tmux session running one person's chatbus."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.session = f"chatbus-transcript-{name}-{os.getpid()}"
        exports = " ".join(f"{key}={value}" for key, value in env.items())
        command = f"env {exports} {CHATBUS} login {name}; sleep 60"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
             command],
            check=True,
        )  # fmt: skip

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.session],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    def wait_for(self, pattern: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.screen()):
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.session}: no {pattern!r} on screen:\n{self.screen()}")
            time.sleep(0.05)

    def type(self, text: str, enter: bool = True) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, "-l", text], check=True)
        if enter:
            subprocess.run(["tmux", "send-keys", "-t", self.session, "Enter"], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], check=False)


def record(url: str, home: Path) -> tuple[str, str]:
    base = {"CHATBUS_URL": url, "NO_COLOR": "1", "TERM": "xterm-256color", "TZ": "UTC"}
    base["CHATBUS_PLAIN"] = "1"  # the line views (the full-screen app: scripts/screenshot.py)
    alice = Terminal(
        "alice", base | {"CHATBUS_HOME": f"{home}/a", "CHATBUS_PASSWORD": "rabbit-hole"}
    )
    bob = Terminal("bob", base | {"CHATBUS_HOME": f"{home}/b", "CHATBUS_PASSWORD": "builder42"})
    try:
        alice.wait_for("chat with>")
        bob.wait_for(r"1\) alice")
        alice.wait_for(r"1\) bob")
        bob.type("1")
        bob.wait_for(r"\[alice\]")
        bob.type("hi alice! got a minute? 👋")
        alice.wait_for("bob  1 unread")
        alice.type("bob")
        alice.wait_for("got a minute")
        alice.type("sure, привет! what's up?")
        bob.wait_for("what's up")
        bob.type("/users")
        bob.wait_for("online")
        bob.type("lunch at 12:30? 🍜")
        alice.wait_for("lunch")
        alice.type("deal, see you there")
        bob.wait_for("deal")
        bob.type("/quit")
        alice.wait_for("bob went offline")
        return alice.screen(), bob.screen()
    finally:
        alice.close()
        bob.close()


def tidy(screen: str) -> str:
    lines = [line.rstrip() for line in screen.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(line for line in lines if not line.startswith("sleep"))


def main() -> None:
    if shutil.which("tmux") is None:
        raise SystemExit("this script needs tmux")
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        with HubProcess(find_server(), free_port(), home / "hub") as hub:
            alice, bob = record(hub.url, home)
    block = (
        "<!-- transcript:start -->\n"
        "alice's terminal (`chatbus login alice`):\n\n"
        f"```\n{tidy(alice)}\n```\n\n"
        "bob's terminal (`chatbus login bob`, then `1`):\n\n"
        f"```\n{tidy(bob)}\n```\n"
        "<!-- transcript:end -->"
    )
    readme = ROOT / "README.md"
    text = readme.read_text()
    updated = re.sub(
        r"<!-- transcript:start -->.*<!-- transcript:end -->", lambda _: block, text, flags=re.S
    )
    readme.write_text(updated)
    print(block)


if __name__ == "__main__":
    main()

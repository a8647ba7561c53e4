"""A receiving client in a process of its own, for crash tests.

Usage: receiver_agent.py URL NAMESPACE NAME LEASE_TTL
Prints "connected" once online, then "message <stream id> <body>" per message,
flushed, until killed or its stdin closes (then it exits cleanly).
"""

import sys
import tempfile
from pathlib import Path

from chatbus.config import Settings
from chatbus.errors import SessionEnded
from chatbus.hub import Hub
from chatbus.messages import Message
from chatbus.presence import OnlineList, PresenceEvent
from chatbus.receiver import Receiver


class Printer:
    def on_message(self, message: Message) -> None:
        print("message", message.stream_id, message.envelope.body, flush=True)

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        pass

    def on_connection(self, connected: bool, detail: str) -> None:
        print("connected" if connected else f"disconnected {detail}", flush=True)

    def on_session_ended(self, ended: SessionEnded) -> None:
        print("session ended", flush=True)


def main() -> None:
    url, namespace, name, ttl = sys.argv[1:5]
    settings = Settings(
        url=url, namespace=namespace, home=Path(tempfile.mkdtemp()), lease_ttl=float(ttl)
    )
    receiver = Receiver(Hub(settings), name, Printer(), after_id="0-0")
    receiver.start()
    sys.stdin.read()
    receiver.stop()


if __name__ == "__main__":
    main()

"""The full-screen app's picture of itself, for README.md: docs/screenshot.svg.

It starts its own hub on a free port, makes a small team (alice, bob, carol,
dave; a room #ops), runs alice's app headless at 100x28 on #ops and saves
what Textual draws. Run: .venv/bin/python scripts/screenshot.py
"""

import asyncio
import tempfile
from pathlib import Path

from chatbus import accounts
from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.local_cluster import free_base_port
from chatbus.messages import Mailbox
from chatbus.presence import Lease
from chatbus.rooms import Rooms
from chatbus.server import HubProcess, find_server
from chatbus_cli.context import App as Context
from chatbus_cli.tui.app import ChatApp

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshot.svg"


def fill(hub: Hub) -> None:
    """A morning in a small team."""
    for name in ("alice", "bob", "carol", "dave"):
        accounts.register(hub, name, "password1")
    for name in ("bob", "carol"):
        Lease(hub, name).renew()
    for name in ("alice", "bob", "carol"):
        Rooms(hub, name).join("#ops")
    Rooms(hub, "alice").set_topic("#ops", "release 2.4 on friday")
    Rooms(hub, "dave").join("#random")
    Rooms(hub, "alice").join("#random")
    say = {name: Mailbox(hub, name) for name in ("alice", "bob", "carol", "dave")}
    say["bob"].send("#ops", "deploy of 2.4-rc1 is done, dashboards look green")
    say["carol"].send("#ops", "nice. error rate went from 0.4% to 0.1% 👍")
    say["alice"].send("#ops", "great work both. I'll write the release notes")
    say["bob"].send_many(
        "#ops", ["@alice can you check the migration log?", "line 212 of\n  migrate.log"]
    )
    say["carol"].send("alice", "lunch at 12:30? 🍜")
    say["dave"].send_many("#random", ["anyone for coffee?", "☕ in 5"])


async def shoot(context: Context, hub: Hub) -> None:
    session = accounts.login(hub, "alice", "password1")
    app = ChatApp(context, session, "#ops")
    try:
        async with app.run_test(size=(100, 28)) as pilot:
            while not (app.connected and app.reader is not None):
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            app.save_screenshot(OUT.name, str(OUT.parent))
    finally:
        app.receiver.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        server = HubProcess(find_server("valkey"), free_base_port(1), Path(work) / "hub")
        with server:
            settings = Settings(url=server.url, home=Path(work) / "home")
            hub = Hub(settings)
            fill(hub)
            asyncio.run(shoot(Context(settings), hub))
            hub.close()
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

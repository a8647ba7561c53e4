"""The full-screen app, driven through Textual's pilot against a real hub.

Each test logs a user in on the test's hub, runs :class:`ChatApp` headless,
presses keys and clicks as a person would, and asserts what is on screen:
the conversation's rows, the sidebar's entries and badges, the status bar.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from textual import events
from textual.pilot import Pilot
from textual.widgets import Static

from chatbus import accounts
from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.messages import Mailbox
from chatbus.presence import Lease
from chatbus.rooms import Rooms
from chatbus.server import HubProcess
from chatbus_cli.context import App as Context
from chatbus_cli.tui import widgets
from chatbus_cli.tui.app import ChatApp
from chatbus_cli.tui.widgets import Composer, Sidebar, StatusBar
from chatbus_cli.ui import render

PASSWORD = "password1"
DEADLINE = 10.0


def register(hub: Hub, *names: str) -> None:
    for name in names:
        accounts.register(hub, name, PASSWORD)


def rows(app: ChatApp) -> list[str]:
    """The conversation's lines as shown (plain text)."""
    return [str(child.render()) for child in app.conversation.children if isinstance(child, Static)]


def sidebar(app: ChatApp) -> list[str]:
    """The sidebar's lines (an item not yet mounted reads as "")."""
    items = app.query_one(Sidebar).children
    return ["".join(str(label.render()) for label in item.query(Static)) for item in items]


def status(app: ChatApp) -> str:
    return str(app.query_one(StatusBar).render())


async def until(pilot: Pilot[None], condition: Callable[[], object], what: str) -> None:
    """Let the app run until ``condition`` holds; fail after DEADLINE seconds."""
    waited = 0.0
    while not condition():
        if waited > DEADLINE:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
        waited += 0.05


@asynccontextmanager
async def running(
    settings: Settings, name: str, start: str | None, size: tuple[int, int] = (100, 30)
) -> AsyncIterator[tuple[ChatApp, Pilot[None]]]:
    """``name``'s app, open on ``start``, connected; stopped at the end."""
    hub = Hub(settings)
    session = accounts.login(hub, name, PASSWORD)
    hub.close()
    app = ChatApp(Context(settings), session, start)
    try:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.connected, "the hub")
            if start is not None:
                await until(pilot, lambda: app.reader is not None, f"{start} to open")
            yield app, pilot
    finally:
        app.receiver.stop()


async def type_line(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


async def test_a_conversation_opens_at_the_first_unread_then_goes_on_live(
    hub: Hub, settings: Settings
) -> None:
    register(hub, "alice", "bob")
    Mailbox(hub, "alice").send("bob", "an old one")
    Mailbox(hub, "bob").send("alice", "seen")
    Mailbox(hub, "alice").mark_read("bob")
    Mailbox(hub, "bob").send_many("alice", ["new one", "new two"])
    async with running(settings, "alice", "bob") as (app, pilot):
        shown = rows(app)
        seen = next(i for i, row in enumerate(shown) if row.endswith("bob: seen"))
        assert shown[seen + 1] == "── new messages ──"
        assert [row[6:] for row in shown[seen + 2 :]] == ["bob: new one", "bob: new two"]
        assert Mailbox(hub, "alice").unread_counts() == {}
        Mailbox(hub, "bob").send("alice", "live now")
        await until(pilot, lambda: any(r.endswith("bob: live now") for r in rows(app)), "live")
        await type_line(pilot, "hello bob")
        await until(pilot, lambda: any(r.endswith("alice: hello bob") for r in rows(app)), "sent")
        page = Mailbox(hub, "bob").conversation("alice", 1).messages
        assert page[0].envelope.body == "hello bob"


async def test_alt_enter_starts_a_new_line_and_enter_sends_the_whole(
    hub: Hub, settings: Settings
) -> None:
    register(hub, "alice", "bob")
    async with running(settings, "alice", "bob") as (app, pilot):
        await pilot.press(*"first line")
        await pilot.press("alt+enter")
        await pilot.press(*"second")
        assert app.query_one(Composer).text == "first line\nsecond"
        await pilot.press("enter")
        await until(pilot, lambda: Mailbox(hub, "bob").unread_counts(), "the message")
        (message,) = Mailbox(hub, "bob").conversation("alice", 5).messages
        assert message.envelope.body == "first line\nsecond"
        assert app.query_one(Composer).text == ""
        await pilot.press("up")  # the input's history
        assert app.query_one(Composer).text == "first line\nsecond"
        composer = app.query_one(Composer)
        composer.clear()
        app.post_message(events.Paste("pasted one\npasted two"))  # as a terminal sends it
        await until(pilot, lambda: composer.text == "pasted one\npasted two", "the paste")


async def test_the_sidebar_lists_people_online_first_then_unread_then_rooms_busiest_first(
    hub: Hub, settings: Settings
) -> None:
    register(hub, "alice", "bob", "carol", "dave")
    Lease(hub, "dave").renew()  # dave is online
    Mailbox(hub, "carol").send_many("alice", ["one", "two"])
    Mailbox(hub, "bob").send("alice", "hi")
    for room in ("#dev", "#ops"):
        Rooms(hub, "alice").join(room)
        Rooms(hub, "bob").join(room)
    Mailbox(hub, "bob").send_many("#ops", ["a", "b", "c @alice"])
    async with running(settings, "alice", None) as (app, pilot):
        await until(pilot, lambda: len(sidebar(app)) == 5, "five entries")
        assert sidebar(app) == [
            "1 ● dave",
            "2 ○ carol 2",
            "3 ○ bob 1",
            "4   #ops @1 3",
            "5   #dev",
        ]
        assert app.title == "(6) chatbus: alice"


async def test_switching_by_keys_and_mouse_and_a_message_elsewhere_rings_once(
    hub: Hub, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(hub, "alice", "bob", "carol")
    Rooms(hub, "alice").join("#ops")
    Mailbox(hub, "bob").send("alice", "from bob")
    async with running(settings, "alice", "bob") as (app, pilot):
        rings: list[None] = []
        monkeypatch.setattr(app, "bell", lambda: rings.append(None))
        for text in ("one", "two", "three"):
            Mailbox(hub, "carol").send("alice", text)
        await until(pilot, lambda: "carol 3" in " ".join(sidebar(app)), "carol's badge")
        assert len(rings) == 1  # once for the burst
        assert app.title == "(3) chatbus: alice"
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.current == "#ops" and app.reader, "ctrl+n")
        await pilot.press("alt+1")
        await until(pilot, lambda: app.current == sidebar_name(app, 0) and app.reader, "alt+1")
        carol = next(i for i, e in enumerate(app.roster.entries()) if e.name == "carol")
        await pilot.click(Sidebar, offset=(4, carol))
        await until(pilot, lambda: app.current == "carol" and app.reader, "a click")
        assert [r for r in rows(app) if "carol:" in r][-1].endswith("carol: three")
        await until(pilot, lambda: app.title == "chatbus: alice", "the title to clear")


def read_earlier(hub: Hub, bodies: list[str]) -> None:
    """alice and bob; bob wrote ``bodies`` to alice, who has read them."""
    register(hub, "alice", "bob")
    Mailbox(hub, "bob").send_many("alice", bodies)
    Mailbox(hub, "alice").mark_read("bob")


def sidebar_name(app: ChatApp, index: int) -> str:
    return app.roster.entries()[index].name


async def test_scrollback_through_500_messages_pages_to_the_first(
    hub: Hub, settings: Settings
) -> None:
    read_earlier(hub, [f"message {i:03d}" for i in range(500)])
    async with running(settings, "alice", "bob", size=(80, 24)) as (app, pilot):
        assert rows(app)[-1].endswith("message 499")
        await until(pilot, lambda: app.conversation.is_vertical_scroll_end, "the newest")
        for _ in range(200):
            if any(r.endswith("message 000") for r in rows(app)):
                break
            await pilot.press("pageup")
            await pilot.pause(0.01)
        assert any(r.endswith("message 000") for r in rows(app))
        texts = [r for r in rows(app) if "bob: message" in r]
        assert len(texts) == len(set(texts)) == 500
        await pilot.press("end")  # in the empty input: back to the newest
        await until(pilot, lambda: app.conversation.is_vertical_scroll_end, "the end")


async def test_rooms_and_the_slash_commands_of_the_line_chat(hub: Hub, settings: Settings) -> None:
    register(hub, "alice", "bob")
    Rooms(hub, "bob").join("#ops")
    async with running(settings, "alice", "bob") as (app, pilot):
        await type_line(pilot, "/join #ops")
        await until(pilot, lambda: app.current == "#ops" and app.reader, "#ops")
        await until(pilot, lambda: "#ops" in " ".join(sidebar(app)), "#ops listed")
        await type_line(pilot, "/me waves")
        await until(pilot, lambda: any(r.endswith("* alice waves") for r in rows(app)), "/me")
        await type_line(pilot, "/topic ship it")
        await until(
            pilot, lambda: any("set the topic of #ops: ship it" in r for r in rows(app)), "/topic"
        )
        await type_line(pilot, "/members")
        await until(
            pilot, lambda: any(r.startswith("-- #ops: 2 members") for r in rows(app)), "/members"
        )
        await type_line(pilot, "/nonsense")
        assert rows(app)[-1] == "!! unknown command /nonsense: /help lists them"
        await type_line(pilot, "/leave")
        await until(pilot, lambda: "-- you left #ops" in rows(app), "/leave")
        assert Rooms(hub, "alice").mine() == []
        await type_line(pilot, "/switch bob")
        await until(pilot, lambda: app.current == "bob" and app.reader, "/switch")
        await type_line(pilot, "/users")
        await until(
            pilot, lambda: any(r.startswith("-- online (1): alice") for r in rows(app)), "/users"
        )
        await type_line(pilot, "/help")
        await until(pilot, lambda: any(r.startswith("-- /older [N]") for r in rows(app)), "/help")
        await type_line(pilot, "/history 1000000")
        assert rows(app)[-1] == "!! usage: /history [N], N from 1 to 1000"


async def test_history_and_older_and_text_from_the_network_made_safe(
    hub: Hub, settings: Settings
) -> None:
    read_earlier(hub, [f"old {i}" for i in range(80)])
    Mailbox(hub, "bob").send("alice", "red \x1b[31malert\x1b[0m [bold]not markup[/bold] \x07")
    async with running(settings, "alice", "bob") as (app, pilot):
        assert rows(app)[-1].rstrip().endswith("bob: red alert [bold]not markup[/bold]")
        assert not any(r[-5:] == "old 0" for r in rows(app))
        await type_line(pilot, "/older 50")
        await until(pilot, lambda: any(r.endswith("bob: old 0") for r in rows(app)), "/older")
        await type_line(pilot, "/history 2")
        await until(pilot, lambda: rows(app)[-1] == "-- end of history", "/history")
        assert rows(app)[-3].endswith("bob: old 79")


async def test_an_outage_shows_in_the_status_bar_and_what_is_typed_waits_then_goes(
    own_hub: HubProcess, tmp_path: Path
) -> None:
    settings = make_settings(own_hub, tmp_path / "home")
    hub = Hub(settings)
    register(hub, "alice", "bob")
    async with running(settings, "alice", "bob") as (app, pilot):
        own_hub.stop()
        await until(pilot, lambda: "hub unreachable" in status(app), "the outage")
        await type_line(pilot, "typed while down")
        await until(pilot, lambda: any("(pending" in r for r in rows(app)), "pending")
        assert "1 pending" in status(app)
        own_hub.start()
        await until(pilot, lambda: status(app).split(" | ")[1] == "connected", "reconnected")
        await until(
            pilot, lambda: any(r.endswith("alice: typed while down") for r in rows(app)), "sent"
        )
        assert not any("(pending" in r for r in rows(app))
    hub.close()


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_it_fits_80x24_and_200x60_and_survives_a_resize(
    hub: Hub, settings: Settings, size: tuple[int, int]
) -> None:
    register(hub, "alice", "bob")
    Mailbox(hub, "bob").send("alice", "宽字符 and 👋 emoji line")
    async with running(settings, "alice", "bob", size=size) as (app, pilot):
        assert app.query_one(Composer).region.bottom <= size[1] - 1  # above the status bar
        assert app.query_one(StatusBar).region.y == size[1] - 1
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        assert app.query_one(StatusBar).region.y == 39
        assert any("宽字符 and 👋 emoji line" in r for r in rows(app))


def test_no_color_turns_the_app_monochrome(
    hub: Hub, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(hub, "alice")
    session = accounts.login(hub, "alice", PASSWORD)
    monkeypatch.setenv("NO_COLOR", "1")
    app = ChatApp(Context(settings), session, None)
    assert app.no_color


def test_the_main_screen_looks_as_it_did(
    hub: Hub, settings: Settings, monkeypatch: pytest.MonkeyPatch, snap_compare: Any
) -> None:
    """The main screen at 100x30: the sidebar (people, rooms, badges), a
    conversation from its first unread message, the input, the status bar.
    Clock times and the day are fixed, so only a change of the app shows."""
    register(hub, "alice", "bob", "carol")
    Mailbox(hub, "alice").send("bob", "lunch at 12:30?")
    Mailbox(hub, "bob").send("alice", "deal 🍜")
    Mailbox(hub, "alice").mark_read("bob")
    Mailbox(hub, "bob").send_many("alice", ["see you there", "line one\nline two"])
    Mailbox(hub, "carol").send("alice", "are you in?")
    Rooms(hub, "alice").join("#ops")
    Rooms(hub, "bob").join("#ops")
    Mailbox(hub, "bob").send("#ops", "@alice deploy is done")
    monkeypatch.setattr(render, "clock", lambda ms, now=None: "12:10")
    monkeypatch.setattr(widgets, "day_label", lambda day: "── Sunday 29 November 2026 ──")
    session = accounts.login(hub, "alice", PASSWORD)
    app = ChatApp(Context(settings), session, "bob")
    app.hub_label = "redis://hub.example:6379/0"

    async def settled(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.connected and app.reader is not None, "the app")
        await until(pilot, lambda: len(sidebar(app)) == 3 and all(sidebar(app)), "the sidebar")
        app.query_one(Composer).cursor_blink = False
        await pilot.pause(0.2)

    try:
        assert snap_compare(app, terminal_size=(100, 30), run_before=settled)
    finally:
        app.receiver.stop()


async def test_what_a_new_user_hit_typing_paging_resizing_and_rooms_elsewhere(
    hub: Hub, settings: Settings
) -> None:
    read_earlier(hub, [f"message {i:03d}" for i in range(100)])
    register(hub, "carol")
    Rooms(hub, "carol").join("#secret", private=True)
    async with running(settings, "alice", "bob", size=(100, 30)) as (app, pilot):
        # A line break typed in a burst lands where it was typed.
        await pilot.press(*"ab", "alt+enter", *"cd", "ctrl+j", *"ef", "enter")
        await until(pilot, lambda: any("alice: ab\n" in r for r in rows(app)), "sent")
        assert Mailbox(hub, "bob").conversation("alice", 1).messages[0].envelope.body == (
            "ab\ncd\nef"
        )
        # /back leaves typing where it was.
        await type_line(pilot, "/back")
        await type_line(pilot, "/users")
        await until(pilot, lambda: any(r.startswith("-- online (") for r in rows(app)), "/users")
        # Paging past the first message adds nothing at the bottom.
        for _ in range(30):
            await pilot.press("pageup")
        assert not any("nothing older" in r or "first message" in r for r in rows(app))
        # A smaller window keeps the newest in view once back at the end.
        await pilot.press("end")
        await pilot.resize_terminal(70, 16)
        await until(pilot, lambda: app.conversation.is_vertical_scroll_end, "the newest kept")
        # An invitation made elsewhere shows in the sidebar; picking it joins.
        Rooms(hub, "carol").invite("#secret", "alice")
        app._recount()
        await until(pilot, lambda: "#secret invited" in " ".join(sidebar(app)), "the invitation")
        await pilot.press("alt+" + str(len(app.roster.entries())))
        await until(pilot, lambda: app.current == "#secret" and app.reader, "joined")
        assert Rooms(hub, "alice").mine() == ["#secret"]
        await until(
            pilot,
            lambda: "#secret | 2 members" in str(app.query_one("#heading").render()),
            "heading",
        )
        Rooms(hub, "bob").join("#open")
        Rooms(hub, "carol").invite("#secret", "bob")
        Rooms(hub, "bob").join("#secret")
        await until(
            pilot, lambda: "#secret | 3 members" in str(app.query_one("#heading").render()), "3"
        )


async def test_a_long_unread_stretch_opens_at_its_start_and_ones_own_reply_shows(
    hub: Hub, settings: Settings
) -> None:
    register(hub, "alice", "bob")
    Mailbox(hub, "bob").send_many("alice", [f"unread {i:02d} " + "word " * 30 for i in range(40)])
    async with running(settings, "alice", "bob", size=(100, 30)) as (app, pilot):
        pane = app.conversation
        marker = pane.unread_marker
        assert marker is not None
        assert not pane.follow  # 40 unread rows do not fit: reading from the marker
        await until(pilot, lambda: marker.region.y <= pane.region.y + 1, "the marker at the top")
        Mailbox(hub, "bob").send("alice", "one more")
        heading = app.query_one("#heading")
        await until(pilot, lambda: "more below: End" in str(heading.render()), "the hint")
        await type_line(pilot, "my reply")
        await until(pilot, lambda: any(r.endswith("alice: my reply") for r in rows(app)), "sent")
        await until(pilot, lambda: pane.is_vertical_scroll_end, "the newest in view")

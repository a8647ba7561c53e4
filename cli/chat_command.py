"""``chatbus chat NAME``."""

import click

from .context import App, as_option, friendly_errors, hub_options, plain_option, target_argument
from .tui.app import run_app
from .ui.chat_view import DEFAULT_HISTORY, open_chat
from .ui.live import LiveClient
from .ui.plain import PlainChat
from .ui.render import Style, colour_enabled
from .ui.terminal import full_screen, interactive


@click.command()
@target_argument
@click.option(
    "--history",
    "history",
    type=click.IntRange(0, 1000),
    default=DEFAULT_HISTORY,
    show_default=True,
    help="How many earlier messages to show first (unread ones show in any case).",
)
@plain_option
@friendly_errors
@hub_options
@as_option
def chat(app: App, name: str, history: int, plain: bool) -> None:
    """Chat with NAME, or in a ROOM: earlier messages first (from the first unread one), then live.

    A room is '#ops', or +ops without quotes (a shell takes # for a comment);
    'chatbus join +ops' joins or makes one.

    On a terminal, the full-screen app opens on NAME: your people and rooms
    on the left (Ctrl-N/Ctrl-P, Alt-1..9 or the mouse switch), the
    conversation (PageUp/PageDown scroll back), the input. With --plain (or
    TERM=dumb), the line view instead. In both: Enter sends (Alt-Enter
    starts a new line; a message over the size limit goes as several); /help lists the
    commands (/users, /switch NAME, /join ROOM, /leave, /me, /topic, /invite
    NAME, /members, /older [N], /history [N], /back, /quit).
    What is typed while the hub is unreachable waits, shown as pending, and
    goes when it is back. Without a terminal: every line of stdin is sent
    as one message, and each message from NAME is printed as "HH:MM name:
    text" (further lines of a message indented) until stdin ends.

    NAME may be offline: the messages wait in their mailbox.
    """
    session = app.session()
    peer = app.target(name, session.name)
    if full_screen(plain):
        run_app(app, session, peer, history)
        return
    client = LiveClient(app, session, Style(colour_enabled()))
    if interactive():
        client.run(lambda: open_chat(client, peer, from_lobby=False, history=history))
    else:
        client.run(lambda: PlainChat(client, peer).run(history), above_prompt=False)

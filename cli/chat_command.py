"""``chatbus chat NAME``."""

import click

from .context import App, as_option, friendly_errors, hub_options, target_argument
from .ui.chat_view import DEFAULT_HISTORY, open_chat
from .ui.live import LiveClient
from .ui.plain import PlainChat
from .ui.render import Style, colour_enabled
from .ui.terminal import interactive


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
@friendly_errors
@hub_options
@as_option
def chat(app: App, name: str, history: int) -> None:
    """Chat with NAME, or in a ROOM: earlier messages first (from the first unread one), then live.

    A room is '#ops', or +ops without quotes (a shell takes # for a comment);
    'chatbus join +ops' joins or makes one.

    On a terminal: type and press Enter to send (Alt-Enter starts a new
    line; a message over the size limit goes as several); /help lists the
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
    style = Style(colour_enabled())
    client = LiveClient(app, session, style)
    if interactive():
        client.run(lambda: open_chat(client, peer, from_lobby=False, history=history))
    else:
        client.run(lambda: PlainChat(client, peer).run(history), above_prompt=False)

"""``chatbus chat NAME``."""

import click

from .context import App, as_option, friendly_errors, hub_options, peer_argument
from .ui.chat_view import DEFAULT_HISTORY, open_chat
from .ui.live import LiveClient
from .ui.plain import PlainChat
from .ui.render import Style, colour_enabled
from .ui.terminal import interactive


@click.command()
@peer_argument
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
    """Chat with NAME: earlier messages first (from the first unread one), then live.

    On a terminal: type and press Enter to send (Alt-Enter starts a new
    line; a message over the size limit goes as several); /help lists the
    commands (/users, /switch NAME, /older [N], /history [N], /back, /quit).
    What is typed while the hub is unreachable waits, shown as pending, and
    goes when it is back. Without a terminal: every line of stdin is sent
    as one message, and each message from NAME is printed as "HH:MM name:
    text" (further lines of a message indented) until stdin ends.

    NAME may be offline: the messages wait in their mailbox.
    """
    session = app.session()
    peer = app.peer(name)
    style = Style(colour_enabled())
    client = LiveClient(app, session, style)
    if interactive():
        client.run(lambda: open_chat(client, peer, from_lobby=False, history=history))
    else:
        client.run(lambda: PlainChat(client, peer).run(history), above_prompt=False)

"""``chatbus users``, ``send`` and ``history``: one request, then exit."""

import sys
import time

import click

from chatbus.envelope import is_stream_id
from chatbus.errors import InvalidMessage, NotLoggedIn, SessionEnded
from chatbus.messages import Mailbox, Message
from chatbus.names import is_room
from chatbus.presence import snapshot
from chatbus.rooms import Rooms
from chatbus.text import split_body

from .context import App, as_option, friendly_errors, hub_options, target_argument, typed_options
from .ui.chat_view import DEFAULT_HISTORY
from .ui.render import Style, colour_enabled, message_line, safe_json
from .ui.terminal import read_line_batches, split_at_invalid


@click.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print JSON: {"online": [...], "you": NAME, "unread": {NAME: N}, "rooms": {ROOM: '
    '{"unread": N, "mentions": M}}}; you, unread and rooms are null without a login.',
)
@friendly_errors
@hub_options
@as_option
def users(app: App, as_json: bool) -> None:
    """Who is online, and your unread messages per sender and per room.

    Unread counts need a login; without one, only the online list is shown.
    """
    _, online = snapshot(app.hub)
    try:
        session = app.session()
    except NotLoggedIn as why:
        if isinstance(why, SessionEnded):
            # Say why the unread counts are missing, without failing the listing.
            click.echo(f"Note: {why}", err=True)
        unread = None
        me = None
        rooms = None
    else:
        unread = Mailbox(app.hub, session.name).unread_counts()
        me = session.name
        rooms = {
            room: {"unread": count, "mentions": mentions}
            for room, (count, mentions) in Rooms(app.hub, me).unread_counts().items()
            if count or mentions
        }
    if as_json:
        click.echo(safe_json({"online": online, "you": me, "unread": unread, "rooms": rooms}))
        return
    style = Style(colour_enabled())
    click.echo(f"Online ({len(online)}):" if online else "Nobody is online.")
    for name in online:
        you = style.dim(" (you)") if name == me else ""
        click.echo(f"  {style.nick(name, own=name == me)}{you}")
    if unread:
        listed = ", ".join(f"{style.nick(name)} {count}" for name, count in sorted(unread.items()))
        who = next(iter(unread)) if len(unread) == 1 else "NAME"
        click.echo(f"Unread: {listed}  (read them with: chatbus chat {who})")
    elif unread is not None:
        click.echo("No unread messages.")
    if rooms:
        listed = ", ".join(
            f"{room} {counts['unread']}"
            + (f" ({counts['mentions']} mentioning you)" if counts["mentions"] else "")
            for room, counts in sorted(rooms.items())
        )
        click.echo(f"Unread in rooms: {listed}  (chatbus chat +ROOM)")


@click.command()
@target_argument
@click.argument("text", nargs=-1)
@friendly_errors
@hub_options
@as_option
def send(app: App, name: str, text: tuple[str, ...]) -> None:
    """Send TEXT to NAME, or to a ROOM you are in; without TEXT, send each line of stdin.

    A room is '#ops', or +ops without quotes (a shell takes # for a comment).

    TEXT longer than the size limit (4 KiB) goes as several messages, split
    between words. Lines from stdin are sent in order, each one message, many
    per round trip; blank lines are skipped. A line that cannot be sent (too
    long, say) stops the sending with an error naming it; the lines before
    it have been sent.
    """
    session = app.session()
    peer = app.target(name, session.name)
    mailbox = Mailbox(app.hub, session.name)
    if text:
        sent = len(mailbox.send_many(peer, split_body(" ".join(text), app.settings.max_body)))
    else:
        if sys.stdin.isatty():  # else it would wait in silence for a person who does not know
            click.echo("type messages, one per line; Ctrl-D to finish", err=True)
        sent = 0
        for batch in read_line_batches():
            sendable, error = split_at_invalid(batch, app.settings.max_body)
            mailbox.send_many(peer, sendable)
            sent += len(sendable)
            if error is not None:
                raise InvalidMessage(f"message {sent + 1}: {error} ({sent} sent before it)")
    if sys.stdout.isatty():
        click.echo(f"Sent {sent} message{'s' if sent != 1 else ''} to {peer}.")


@click.command()
@target_argument
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=DEFAULT_HISTORY,
    show_default=True,
    help="How many messages to show: the newest, or the newest before --before.",
)
@click.option("--before", metavar="ID", help="Page back: only messages older than this id.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print JSON: {"messages": [...], "older": ID or null}, oldest message first.',
)
@friendly_errors
@hub_options
@as_option
def history(app: App, name: str, limit: int, before: str | None, as_json: bool) -> None:
    """Your conversation with NAME, or a ROOM you are in: the newest messages, oldest first.

    When there are older messages, the command for the next page is printed
    on stderr (with the --as, --url and --namespace typed here). Reading the
    history does not clear the unread count; opening the chat does.
    """
    session = app.session()
    peer = app.target(name, session.name)
    if before is not None and not is_stream_id(before):
        raise click.BadParameter("use an id printed by an earlier page", param_hint="--before")
    if is_room(peer):
        page = Rooms(app.hub, session.name).page(peer, limit, before)
    else:
        page = Mailbox(app.hub, session.name).conversation(peer, limit, before)
    if as_json:
        click.echo(
            safe_json({"messages": [_as_dict(m) for m in page.messages], "older": page.older})
        )
        return
    style = Style(colour_enabled())
    for message in page.messages:
        click.echo(message_line(message, session.name, style))
    if not page.messages:
        nothing = f"No older messages with {peer}." if before else f"No messages with {peer} yet."
        click.echo(nothing, err=True)
    elif page.older:
        same_size = "" if limit == DEFAULT_HISTORY else f" --limit {limit}"
        same_place = typed_options(click.get_current_context())
        same_place = f" {same_place}" if same_place else ""
        shell_safe = "+" + peer[1:] if is_room(peer) else peer
        next_page = f"chatbus history {shell_safe}{same_size}{same_place} --before {page.older}"
        click.echo(style.dim(f"(older: {next_page})"), err=True)


def _as_dict(message: Message) -> dict[str, object]:
    envelope = message.envelope
    room = {"kind": envelope.kind, "n": message.seq} if message.room else {}
    return {
        "id": envelope.id,
        "stream_id": message.stream_id,
        "from": envelope.sender,
        "to": envelope.recipient,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(message.accepted_ms / 1000)),
        "sent_ms": envelope.ts,
        "accepted_ms": message.accepted_ms,
        "body": envelope.body,
        **room,
    }

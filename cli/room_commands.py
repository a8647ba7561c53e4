"""``chatbus rooms``, ``join``, ``leave``, ``members`` and ``invite``."""

import click

from chatbus.presence import snapshot
from chatbus.rooms import Rooms, RoomSummary
from chatbus.sanitize import sanitize

from .context import NAME, App, as_option, friendly_errors, hub_options, room_argument
from .ui.render import Style, colour_enabled, safe_json

_JSON_FLAG = {"is_flag": True, "help": "Print JSON instead (see docs/PROTOCOL.md)."}


def _shell_safe(room: str) -> str:
    """``#ops`` as ``+ops``: what can be typed after ``chatbus`` without quotes."""
    return "+" + room[1:]


def _summary_json(summary: RoomSummary) -> dict[str, object]:
    return {
        "room": summary.name,
        "private": summary.private,
        "topic": summary.topic,
        "member": summary.member,
        "members": len(summary.members),
        "online": summary.online,
        "unread": summary.unread,
        "mentions": summary.mentions,
        "invited_by": summary.invited_by,
    }


@click.command()
@click.option("--json", "as_json", **_JSON_FLAG)  # type: ignore[arg-type]
@friendly_errors
@hub_options
@as_option
def rooms(app: App, as_json: bool) -> None:
    """The rooms you are in, those you are invited to, and the public ones:
    members online, your unread messages and mentions, the topic."""
    session = app.session()
    _, online = snapshot(app.hub)
    summaries = Rooms(app.hub, session.name).summaries(online)
    if as_json:
        click.echo(safe_json({"rooms": [_summary_json(s) for s in summaries]}))
        return
    if not summaries:
        click.echo("No rooms yet. Make one with: chatbus join +NAME (or '#NAME')")
        return
    style = Style(colour_enabled())
    for summary in summaries:
        notes = [f"{summary.online}/{len(summary.members)} online"]
        if summary.unread:
            notes.append(f"{summary.unread} unread")
        if summary.mentions:
            notes.append(f"{summary.mentions} mentioning you")
        if summary.private:
            notes.append("private")
        if summary.invited_by:
            notes.append(
                f"invited by {summary.invited_by}: chatbus join {_shell_safe(summary.name)}"
            )
        elif not summary.member:
            notes.append("not joined")
        topic = f"  {sanitize(summary.topic)}" if summary.topic else ""
        click.echo(f"  {style.nick(summary.name)}  {style.dim(', '.join(notes))}{topic}")


@click.command()
@room_argument
@click.option("--private", is_flag=True, help="Make a new room private: joined by invitation only.")
@friendly_errors
@hub_options
@as_option
def join(app: App, room: str, private: bool) -> None:
    """Join ROOM ('#ops', or +ops without quotes), creating it if it is new.

    Who creates a room owns it. A public room is listed to everyone; a
    private one only to its members and to those a member invited (/invite
    in the chat). Then: chatbus chat +ops
    """
    session = app.session()
    outcome = Rooms(app.hub, session.name).join(room, private=private)
    name = outcome.room
    if outcome.already_member:
        click.echo(f"You are in {name} already.")
    elif outcome.created:
        kind = "private room" if outcome.private else "room"
        click.echo(f"Created the {kind} {name}; you own it.")
    else:
        click.echo(f"Joined {name}.")
    if private and not outcome.created and not outcome.private:
        click.echo(f"Note: {name} existed already, and is public.", err=True)
    click.echo(f"Talk there: chatbus chat {_shell_safe(name)}")


@click.command()
@room_argument
@friendly_errors
@hub_options
@as_option
def leave(app: App, room: str) -> None:
    """Leave ROOM: its messages stop coming; the room says you left."""
    session = app.session()
    name = Rooms(app.hub, session.name).leave(room)
    click.echo(f"Left {name}.")


@click.command()
@room_argument
@click.option("--json", "as_json", **_JSON_FLAG)  # type: ignore[arg-type]
@friendly_errors
@hub_options
@as_option
def members(app: App, room: str, as_json: bool) -> None:
    """Who is in ROOM, online first (a private room's, to its members only)."""
    session = app.session()
    rooms_view = Rooms(app.hub, session.name)
    name = rooms_view.room(room)
    names = rooms_view.members(name)
    _, online = snapshot(app.hub)
    online_now = {n.lower() for n in online}
    if as_json:
        listed = [{"name": n, "online": n.lower() in online_now} for n in names]
        click.echo(safe_json({"room": name, "members": listed}))
        return
    style = Style(colour_enabled())
    ordered = sorted(names, key=lambda n: (n.lower() not in online_now, n.lower()))
    click.echo(
        f"{name}: {len(names)} members, {sum(n.lower() in online_now for n in names)} online"
    )
    for member in ordered:
        state = "" if member.lower() in online_now else style.dim("  offline")
        click.echo(f"  {style.nick(member, own=member.lower() == session.name.lower())}{state}")


@click.command()
@room_argument
@click.argument("name", type=NAME)
@friendly_errors
@hub_options
@as_option
def invite(app: App, room: str, name: str) -> None:
    """Invite NAME to ROOM (one you are in): the way into a private room."""
    session = app.session()
    person = app.peer(name)
    shown, fresh = Rooms(app.hub, session.name).invite(room, person)
    done = "Invited" if fresh else "Already invited:"
    click.echo(f"{done} {person} to {shown}; they join with: chatbus join {_shell_safe(shown)}")

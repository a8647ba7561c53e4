"""``chatbus admin``: the users and rooms of a secured hub, with the admin's URL."""

import sys
from pathlib import Path

import click

from chatbus import accounts
from chatbus.admin import Admin
from chatbus.config import Settings
from chatbus.errors import InvalidSetting
from chatbus.keys import DEFAULT_NAMESPACE

from .context import NAME, friendly_errors, room_argument


@click.group()
@click.option(
    "--admin-url",
    envvar="CHATBUS_ADMIN_URL",
    required=True,
    metavar="URL",
    help="The admin's URL, credentials included: the admin.url file that 'chatbus server "
    "--secure' writes in its data dir. A secret [env: CHATBUS_ADMIN_URL].",
)
@click.option(
    "--namespace",
    envvar="CHATBUS_NAMESPACE",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="The chat's namespace on the hub [env: CHATBUS_NAMESPACE].",
)
@click.option(
    "--tls-ca",
    envvar="CHATBUS_TLS_CA",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="For a rediss:// hub: the CA file its certificate must chain to [env: CHATBUS_TLS_CA].",
)
@click.pass_context
def admin(ctx: click.Context, admin_url: str, namespace: str, tls_ca: Path | None) -> None:
    """Manage the users and rooms of a secured hub ('chatbus server --secure').

    \b
    Each chat user is a Redis ACL user of their own, on every node of the
    hub: their credentials open their own messages only (docs/SECURITY.md).
      chatbus admin add-user alice        prints her password, to give her
      chatbus admin reset-password alice  a new one; her clients stop
      chatbus admin remove-user alice     her account, her data, her access
      chatbus admin list                  who there is, and nodes out of step
      chatbus admin room-add +ops alice bob   a room only its members can open
      chatbus admin room-remove +ops bob      and bob is out of it
    """
    try:
        ctx.obj = Settings(url=admin_url, namespace=namespace, tls_ca=tls_ca)
    except InvalidSetting as error:
        raise click.BadParameter(str(error), ctx, ctx.command.params[0]) from None


def _admin(ctx: click.Context) -> Admin:
    settings: Settings = ctx.find_object(Settings)  # type: ignore[assignment]
    admin = Admin(settings)
    ctx.call_on_close(admin.close)
    admin.check_secured()
    return admin


def _given_password(password_stdin: bool) -> str | None:
    """The password on stdin's first line (checked like any), or None: generate one."""
    if not password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("--password-stdin was given but standard input had none")
    accounts.check_password_rules(password)
    return password


_password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Take the password from stdin's first line instead of generating one.",
)


def _say_password(name: str, password: str) -> None:
    click.echo(f"Password for {name}: {password}")
    click.echo("(shown once and kept nowhere: give it to them; they log in with 'chatbus login')")


@admin.command("add-user")
@click.argument("name", type=NAME)
@_password_stdin
@click.pass_context
@friendly_errors
def add_user(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Create NAME's account and Redis user; print a generated password."""
    given = _given_password(password_stdin)
    password = _admin(ctx).add_user(name, given)
    click.echo(f"Added {name}.")
    if given is None:
        _say_password(name, password)


@admin.command("remove-user")
@click.argument("name", type=NAME)
@click.pass_context
@friendly_errors
def remove_user(ctx: click.Context, name: str) -> None:
    """Remove NAME's Redis user, account and messages; their running clients stop."""
    _admin(ctx).remove_user(name)
    click.echo(f"Removed {name}.")


@admin.command("reset-password")
@click.argument("name", type=NAME)
@_password_stdin
@click.pass_context
@friendly_errors
def reset_password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Give NAME a new password; every session of theirs ends."""
    given = _given_password(password_stdin)
    password = _admin(ctx).reset_password(name, given)
    click.echo(f"Reset the password of {name}; their sessions have ended.")
    if given is None:
        _say_password(name, password)


@admin.command("list")
@click.pass_context
@friendly_errors
def list_users(ctx: click.Context) -> None:
    """The users, and any node that lacks one's Redis user (nodes out of step)."""
    rows = _admin(ctx).list_users()
    if not rows:
        click.echo("No users yet: 'chatbus admin add-user NAME' adds one.")
    for row in rows:
        missing = f"  (missing on {', '.join(row.missing_on)})" if row.missing_on else ""
        click.echo(f"{row.name}{missing}")


@admin.command("room-add")
@room_argument
@click.argument("names", metavar="NAME...", nargs=-1, required=True, type=NAME)
@click.option("--private", is_flag=True, help="Make a new room private (unlisted to others).")
@click.pass_context
@friendly_errors
def room_add(ctx: click.Context, room: str, names: tuple[str, ...], private: bool) -> None:
    """Put NAMEs in ROOM ('#ops' or +ops), making it if it is new (the first NAME owns it).

    On a secured hub the hub itself keeps rooms apart: only members may read
    a room, subscribe to it or post, and only the admin changes who they are
    (a change of their Redis rules on every node).
    """
    shown = _admin(ctx).add_to_room(room, list(names), private=private)
    click.echo(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} in {shown}.")


@admin.command("room-remove")
@room_argument
@click.argument("names", metavar="NAME...", nargs=-1, required=True, type=NAME)
@click.pass_context
@friendly_errors
def room_remove(ctx: click.Context, room: str, names: tuple[str, ...]) -> None:
    """Take NAMEs out of ROOM: they can no longer read it, subscribe to it or post."""
    shown = _admin(ctx).remove_from_room(room, list(names))
    click.echo(f"{', '.join(names)} left {shown}.")

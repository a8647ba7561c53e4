"""``chatbus login``, ``logout`` and ``whoami``."""

import os
import sys

import click

from chatbus import accounts
from chatbus.names import validate_name
from chatbus.presence import snapshot

from .context import App, as_option, friendly_errors, hub_options
from .ui.lobby import run_lobby
from .ui.render import Style, colour_enabled
from .ui.terminal import interactive


def _read_password(name: str, registering: bool, password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException(
                "--password-stdin was given but standard input had no password"
            )
        return password
    from_env = os.environ.get("CHATBUS_PASSWORD")
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise click.ClickException(
            "no password: type it on a terminal, or pass CHATBUS_PASSWORD or --password-stdin"
        )
    if registering:
        click.echo(
            f"{name} is a new name: choose a password ({accounts.MIN_PASSWORD}+ characters)."
        )
    typed: str = click.prompt(
        "Password",
        hide_input=True,
        confirmation_prompt="Repeat the password" if registering else False,
    )
    return typed


@click.command()
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@friendly_errors
@hub_options
def login(app: App, name: str, password_stdin: bool) -> None:
    """Log in as NAME; the first login of a name registers it.

    NAME is 1-32 letters, digits, '_' or '-'; "Alice" and "alice" are the same
    account. The session is saved under CHATBUS_HOME, so the other commands need
    no password. On a terminal, the lobby follows: who is online, and whom to
    chat with. Otherwise the online list is printed.
    """
    validate_name(name)
    registered = accounts.registered_name(app.hub, name)
    password = _read_password(name, registered is None, password_stdin)
    if registered is None:
        session = accounts.register(app.hub, name, password)
        click.echo(f"Registered {session.name} and logged in.")
    else:
        session = accounts.login(app.hub, registered, password)
        click.echo(f"Logged in as {session.name}.")
    app.identities.save(session)
    if interactive():
        run_lobby(app, session)
        return
    _, names = snapshot(app.hub)
    style = Style(colour_enabled())
    listed = ", ".join(style.nick(n) for n in names) if names else "nobody"
    click.echo(f"Online now: {listed}")


@click.command()
@friendly_errors
@hub_options
@as_option
def logout(app: App) -> None:
    """End the session on the hub and forget it here."""
    session = app.identities.load(app.as_name)
    accounts.logout(app.hub, session)
    app.identities.remove(session)
    click.echo(f"Logged out {session.name}.")


@click.command()
@friendly_errors
@hub_options
@as_option
def whoami(app: App) -> None:
    """Show who the commands act as, and on which hub."""
    session = app.session()
    click.echo(f"{session.name} on {app.hub.url} (namespace {app.settings.namespace})")

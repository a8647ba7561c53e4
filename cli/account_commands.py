"""``chatbus login``, ``passwd``, ``logout`` and ``whoami``."""

import os
import sys
from collections.abc import Callable

import click

from chatbus import accounts, secured_login
from chatbus.accounts import Session
from chatbus.errors import AccessRefused, ChatbusError, NotLoggedIn
from chatbus.presence import snapshot

from .context import NAME, App, as_option, friendly_errors, hub_options, plain_option
from .tui.app import run_app
from .ui.lobby import run_lobby
from .ui.render import Style, colour_enabled
from .ui.terminal import full_screen, interactive


def _read_secret(
    prompt: str,
    *,
    env: str,
    from_stdin: bool,
    repeat: str | None = None,
    hint: str = "",
    rules: Callable[[str], None] | None = None,
) -> str:
    """A password: the next line of stdin, else ``env``, else a hidden prompt
    on a terminal (after ``hint``, and typed twice when ``repeat`` is given).

    On a terminal a password that breaks ``rules`` is asked for again at once,
    before the repeat, and a repeat that differs starts both again; from stdin
    or the environment it is the caller's error.
    """
    what = prompt.lower()
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.ClickException(
                f"--password-stdin was given but standard input had no {what}"
            )
        return line
    from_env = os.environ.get(env)
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise click.ClickException(
            f"no {what}: type it on a terminal, or pass {env} or --password-stdin"
        )
    if hint:
        click.echo(hint)

    def follows_rules(typed: str) -> str:
        if rules is not None:
            try:
                rules(typed)
            except ChatbusError as broken:
                raise click.UsageError(str(broken)) from None  # click asks again
        return typed

    while True:
        typed: str = click.prompt(prompt, hide_input=True, value_proc=follows_rules)
        if repeat is None or click.prompt(repeat, hide_input=True) == typed:
            return typed
        # click's own message ("The two entered values do not match.") is the
        # only capitalised error chatbus would print.
        click.echo("Error: the two passwords do not match; type them again")


def _saved_session(app: App, name: str) -> Session | None:
    """The session of ``name`` saved here for this hub, if any."""
    try:
        return app.identities.load(name)
    except NotLoggedIn:
        return None


def _live_saved_session(app: App, name: str) -> Session | None:
    """The session of ``name`` saved here, if the hub still accepts it (on a
    secured hub: reached with that session's own key)."""
    saved = _saved_session(app, name)
    if saved is None:
        return None
    app.adopt(saved)
    try:
        return saved if accounts.accepted(app.hub, saved) else None
    except AccessRefused:
        return None  # its key was removed or reset


def _secured_login(app: App, name: str, password_stdin: bool) -> Session:
    """Log in to a secured hub as ``name``'s own Redis user (docs/SECURITY.md)."""
    given = password_stdin or "CHATBUS_PASSWORD" in os.environ
    resumed = None if given else _live_saved_session(app, name)
    if resumed is not None:
        click.echo(f"Logged in as {resumed.name} (saved session).")
        return resumed
    password = _read_secret("Password", env="CHATBUS_PASSWORD", from_stdin=password_stdin)
    session = secured_login.login(app.settings, name, password, saved=_saved_session(app, name))
    click.echo(f"Logged in as {session.name} (secured hub).")
    return session


@click.command()
@click.argument("name", type=NAME)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@plain_option
@friendly_errors
@hub_options
def login(app: App, name: str, password_stdin: bool, plain: bool) -> None:
    """Log in as NAME; the first login of a name registers it.

    NAME is 1-32 letters, digits, '_' or '-'; "Alice" and "alice" are the same
    account. On a terminal, the full-screen app follows: people (online
    first) and rooms on the left, the conversation you pick, the input; with
    --plain (or TERM=dumb) the line-by-line lobby instead. Otherwise the
    online list is printed.

    The session is saved under CHATBUS_HOME, so the other commands need no
    password. While the hub accepts the session saved here, logging in again
    asks for no password; a password given with --password-stdin or
    CHATBUS_PASSWORD is checked all the same (and the saved session kept).
    After 3 wrong passwords in a row, each further try must wait (1 s,
    doubling up to 60 s).

    On a secured hub (chatbus server --secure), names are added by its admin:
    log in with the password they gave you; chatbus then reaches the hub as
    your own Redis user.
    """
    try:
        registered = accounts.registered_name(app.hub, name)
        secured = app.hub.secured
    except AccessRefused:  # a secured hub, and no key to it saved here that works
        registered, secured = None, True
    given = password_stdin or "CHATBUS_PASSWORD" in os.environ
    resumed = (
        None if secured or registered is None or given else _live_saved_session(app, registered)
    )
    if secured:
        session = _secured_login(app, registered or name, password_stdin)
    elif resumed is not None:
        session = resumed
        click.echo(f"Logged in as {session.name} (saved session).")
    elif registered is None:
        password = _read_secret(
            "Password",
            env="CHATBUS_PASSWORD",
            from_stdin=password_stdin,
            repeat="Repeat the password",
            rules=accounts.check_password_rules,
            hint=f"{name} is a new name: choose a password ({accounts.MIN_PASSWORD}+ characters).",
        )
        session = accounts.register(app.hub, name, password)
        click.echo(f"Registered {session.name} and logged in.")
    else:
        password = _read_secret("Password", env="CHATBUS_PASSWORD", from_stdin=password_stdin)
        saved = _saved_session(app, registered)
        session = accounts.login(app.hub, registered, password, saved=saved)
        click.echo(f"Logged in as {session.name}.")
    app.identities.save(session)
    app.adopt(session)
    if full_screen(plain):
        run_app(app, session)
        return
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
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the current password, then the new one, from the first two lines of stdin.",
)
@friendly_errors
@hub_options
@as_option
def passwd(app: App, password_stdin: bool) -> None:
    """Change your password, and log out your other sessions.

    Asks for the current password, then the new one twice (or takes them from
    CHATBUS_PASSWORD and CHATBUS_NEW_PASSWORD, or --password-stdin). The
    session here stays logged in; every other one, on this machine or
    another, must log in again with the new password. Wrong current
    passwords are slowed down as for login.
    """
    session = app.session()
    accounts.require_own_passwords(app.hub, session)  # before a password is typed
    current = _read_secret("Current password", env="CHATBUS_PASSWORD", from_stdin=password_stdin)
    accounts.confirm_password(app.hub, session, current)  # before the new one is typed
    new = _read_secret(
        "New password",
        env="CHATBUS_NEW_PASSWORD",
        from_stdin=password_stdin,
        repeat="Repeat the new password",
        hint=f"The new password: {accounts.MIN_PASSWORD}+ characters.",
        rules=accounts.check_password_rules,
    )
    ended = accounts.change_password(app.hub, session, current, new)
    if ended == 0:
        others = "no other sessions were logged in"
    else:
        others = f"logged out {ended} other session{'' if ended == 1 else 's'}"
    click.echo(f"Changed the password of {session.name}; {others}.")


@click.command()
@click.option(
    "--redis-url",
    is_flag=True,
    help="Print a redis:// URL with your own key to a secured hub, for redis-cli and scripts. "
    "It is a secret: whoever has it can act as you until the admin resets your password.",
)
@friendly_errors
@hub_options
@as_option
def whoami(app: App, redis_url: bool) -> None:
    """Show who the commands act as, and on which hub."""
    session = app.session()
    if not redis_url:
        secured = " (secured hub)" if app.hub.secured else ""
        click.echo(f"{session.name} on {app.hub.url}{secured} (namespace {app.settings.namespace})")
        return
    if not app.hub.secured:
        click.echo(
            "Note: this hub is open: its URL needs no key of yours (anyone who reaches it "
            "can do anything).",
            err=True,
        )
    click.echo(secured_login.redis_url(app.settings, session))

"""What every command shares: settings from options and environment, the hub,
the saved session, and turning library errors into one-line ``Error:`` exits.
"""

import functools
import shlex
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import redis.exceptions
from click.core import ParameterSource

from chatbus import accounts
from chatbus.accounts import Session
from chatbus.config import (
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_BODY,
    DEFAULT_URL,
    Settings,
    default_home,
    display_url,
)
from chatbus.errors import (
    ChatbusError,
    InvalidName,
    InvalidSetting,
    NotAMember,
    NotLoggedIn,
    UnknownUser,
)
from chatbus.hub import Credentials, Hub
from chatbus.identity import IdentityStore
from chatbus.keys import DEFAULT_NAMESPACE
from chatbus.messages import Mailbox
from chatbus.names import is_room, validate_name, validate_room
from chatbus.presence import snapshot
from chatbus.rooms import Rooms

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class App:
    """One command's view of chatbus: settings, and the hub once it is needed."""

    settings: Settings
    as_name: str | None = None
    _hub: Hub | None = field(default=None, init=False)

    @property
    def hub(self) -> Hub:
        """The hub; on a secured hub, reached with the saved login's own key."""
        if self._hub is None:
            self._hub = Hub(self.settings, self._saved_credentials())
        return self._hub

    def _saved_credentials(self) -> Credentials | None:
        try:
            return self.identities.load(self.as_name).credentials
        except NotLoggedIn:
            return None

    def adopt(self, session: Session) -> None:
        """From now on reach the hub as ``session`` (just logged in)."""
        if session.credentials != (self._hub.credentials if self._hub else None):
            self.close()
            self._hub = Hub(self.settings, session.credentials)

    @property
    def identities(self) -> IdentityStore:
        return IdentityStore(self.settings.home, self.settings.url, self.settings.namespace)

    def session(self) -> Session:
        """The saved session (``--as`` or the last login), checked with the hub."""
        session = self.identities.load(self.as_name)
        accounts.verify(self.hub, session)
        return session

    def close(self) -> None:
        if self._hub is not None:
            self._hub.close()
            self._hub = None

    def peer(self, name: str) -> str:
        """``name`` as registered; UnknownUser if nobody has that name."""
        registered = accounts.registered_name(self.hub, name)
        if registered is None and self.hub.secured:
            raise UnknownUser(f"no user named {name!r} on this hub (its admin adds users)")
        if registered is None:
            raise UnknownUser(
                f"no account named {name!r}; names are registered by 'chatbus login'"
                + self._room_named(name)
            )
        return registered

    def _room_named(self, name: str) -> str:
        """ ", or the room #name?" when there is a room of that name (a '#' typed
        unquoted in a shell is a comment, so 'chat #ops' arrives as 'chat')."""
        try:
            room = Rooms(self.hub, name).room(f"#{name}")
        except ChatbusError:
            return ""
        return f"; or the room {room}? (type +{room[1:]})"

    def target(self, typed: str, me: str) -> str:
        """A name as registered, or a room ``me`` is in, as its creator spelled it."""
        if not is_room(typed):
            return self.peer(typed)
        rooms = Rooms(self.hub, me)
        room = rooms.room(typed)
        rooms.check_member(room)
        return room


# The settings a command checks before it starts, each on its own, so that a
# usage error can name the option or variable it came from.
_CHECKED_SETTINGS = ("url", "namespace", "lease_ttl", "max_body", "tls_ca")


def _app(ctx: click.Context, params: dict[str, Any]) -> App:
    """The App for a command from its parsed options (see :func:`hub_options`).

    A setting that cannot be used is a usage error (exit 2) naming where it
    came from: the option typed, or the environment variable.
    """
    chosen: dict[str, Any] = {
        "url": _from_group_if_given(ctx, "url", params["url"]),
        "namespace": _from_group_if_given(ctx, "namespace", params["namespace"]),
        "lease_ttl": params["lease_ttl"],
        "max_body": params["max_body"],
        "tls_ca": params.get("tls_ca"),
    }
    for name in _CHECKED_SETTINGS:
        try:
            Settings(**{name: chosen[name]})
        except InvalidSetting as error:
            where = ctx.find_root() if _typed_before(ctx, name) else ctx
            param = next(p for p in where.command.params if p.name == name)
            raise click.BadParameter(str(error), where, param) from None
    return App(Settings(home=params["home"] or default_home(), **chosen), params.get("as_name"))


def _typed_before(ctx: click.Context, name: str) -> bool:
    """True when option ``name`` was typed before the command and not after it."""
    typed_here = ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    root = ctx.find_root()
    return (
        root is not ctx
        and root.get_parameter_source(name) == ParameterSource.COMMANDLINE
        and (not typed_here)
    )


def _from_group_if_given(ctx: click.Context, name: str, value: str) -> str:
    """``chatbus --url X users`` works like ``chatbus users --url X``.

    An option typed after the command wins; one typed before it wins over the
    environment and the default.
    """
    if _typed_before(ctx, name):
        given: str = ctx.find_root().params[name]
        return given
    return value


def typed_options(ctx: click.Context) -> str:
    """``--url``, ``--namespace`` and ``--as`` as typed on the command line
    (before or after the command), for a command the user is told to run
    next; what came from the environment is still there for it. A password
    in the URL is shown as ``***``.
    """
    words: list[str] = []
    for name, option in (("url", "--url"), ("namespace", "--namespace"), ("as_name", "--as")):
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            value = ctx.params[name]
        elif _typed_before(ctx, name):
            value = ctx.find_root().params[name]
        else:
            continue
        words += [option, display_url(value) if name == "url" else value]
    return " ".join(shlex.quote(word) for word in words)


class SettingOption(click.Option):
    """An option that can also come from an environment variable: an error
    about a value from the environment names the variable, not the option
    (which the user never typed, and may be hidden)."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        from_env = (
            ctx is not None
            and self.name is not None
            and ctx.get_parameter_source(self.name) == ParameterSource.ENVIRONMENT
        )
        if from_env and isinstance(self.envvar, str):
            return f"'{self.envvar}'"
        return super().get_error_hint(ctx)


# click 8.5 made ParamType generic; click.ParamType[str] would fail on older clicks.
class NameType(click.ParamType):  # type: ignore[type-arg]
    """A user name as typed: one that breaks the name rule is a usage error."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return validate_name(str(value))
        except InvalidName as error:
            self.fail(str(error), param, ctx)


NAME = NameType()


class RoomType(click.ParamType):  # type: ignore[type-arg]
    """A room as typed: ``#ops``, or ``+ops`` where a shell reads ``#`` as a comment."""

    name = "room"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return validate_room(str(value))
        except InvalidName as error:
            self.fail(str(error), param, ctx)


ROOM = RoomType()


class TargetType(click.ParamType):  # type: ignore[type-arg]
    """Whom a message goes to: a user's name, or a room (``#ops`` or ``+ops``)."""

    name = "target"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text[:1] in "#+":
            return ROOM.convert(text, param, ctx)
        return NAME.convert(text, param, ctx)


TARGET = TargetType()


group_url_option = click.option("--url", help="The hub URL, for any command (see its --help).")
group_namespace_option = click.option("--namespace", help="The namespace, for any command.")


# See NameType on the type-arg allowance.
class Number(click.ParamType):  # type: ignore[type-arg]
    """A number setting whose error says what it measures, not its Python type."""

    name = "number"

    def __init__(self, kind: type[int] | type[float], what: str) -> None:
        self.kind = kind
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not {self.what}", param, ctx)


# The parameters hub_options and as_option add; a command gets an App instead.
_SETTINGS_PARAMS = ("url", "namespace", "home", "lease_ttl", "max_body", "tls_ca", "as_name")


def hub_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --url and --namespace (and the environment-only settings) to a command."""
    options = [
        click.option(
            "--url",
            cls=SettingOption,
            envvar="CHATBUS_URL",
            default=DEFAULT_URL,
            show_default=True,
            help="The hub: redis://, rediss:// or unix:// URL [env: CHATBUS_URL].",
        ),
        click.option(
            "--namespace",
            cls=SettingOption,
            envvar="CHATBUS_NAMESPACE",
            default=DEFAULT_NAMESPACE,
            show_default=True,
            help="Key prefix, so several chats can share one Redis [env: CHATBUS_NAMESPACE].",
        ),
        click.option("--home", envvar="CHATBUS_HOME", type=click.Path(path_type=Path), hidden=True),
        click.option(
            "--lease-ttl",
            cls=SettingOption,
            envvar="CHATBUS_LEASE_TTL",
            type=Number(float, "a number of seconds (1 to 3600)"),
            default=DEFAULT_LEASE_TTL,
            hidden=True,
        ),
        click.option(
            "--max-body",
            cls=SettingOption,
            envvar="CHATBUS_MAX_BODY",
            type=Number(int, "a whole number of bytes (1 to 1048576)"),
            default=DEFAULT_MAX_BODY,
            hidden=True,
        ),
        click.option(
            "--tls-ca",
            cls=SettingOption,
            envvar="CHATBUS_TLS_CA",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="For a rediss:// hub: the CA file its certificate must be signed by "
            "[env: CHATBUS_TLS_CA; default: the system's trust store].",
        ),
    ]

    @functools.wraps(command)
    def with_app(*args: Any, **kwargs: Any) -> Any:
        settings_params = {name: kwargs.pop(name) for name in _SETTINGS_PARAMS if name in kwargs}
        app = _app(click.get_current_context(), settings_params)
        try:
            return command(app, *args, **kwargs)
        finally:
            app.close()

    for option in reversed(options):
        with_app = option(with_app)
    return with_app


as_option = click.option(
    "--as",
    "as_name",
    cls=SettingOption,
    type=NAME,
    envvar="CHATBUS_USER",
    metavar="NAME",
    help="Act as this logged-in user (default: the last login) [env: CHATBUS_USER].",
)


def said(error: ChatbusError, *, in_chat: bool) -> str:
    """``error`` as one line, with the way on where there is one (a room to
    join), in the words of where it is said: the chat's or the shell's."""
    if isinstance(error, NotAMember) and error.join is not None:
        room = error.join
        how = f"/join {room}" if in_chat else f"chatbus join +{room[1:]}"
        return f"{error} ({how})"
    return str(error)


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report what went wrong while doing the request (hub unreachable, wrong
    password, unknown user, session ended) as one ``Error:`` line, exit 1.

    A mistake in what was typed (a name, a setting, an option's value) is
    caught before, by click: a usage error, exit 2.
    """

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ChatbusError as error:
            raise click.ClickException(said(error, in_chat=False)) from None
        except redis.exceptions.RedisError as error:
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise click.ClickException(f"the hub refused the request: {first_line}") from None

    return guarded


def complete_peer(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion for NAME: who is online, and who left you messages."""
    try:
        with closing(_app(ctx, ctx.params)) as app:
            names = set(snapshot(app.hub)[1])
            names.update(Mailbox(app.hub, app.session().name).unread_counts())
    except (ChatbusError, redis.exceptions.RedisError, click.UsageError, KeyError):
        return []
    return sorted(n for n in names if n.lower().startswith(incomplete.lower()))


def complete_target(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion for a name or a room: people as for NAME, and your rooms as +room."""
    people = complete_peer(ctx, param, incomplete)
    try:
        with closing(_app(ctx, ctx.params)) as app:
            rooms = ["+" + room[1:] for room in Rooms(app.hub, app.session().name).mine()]
    except (ChatbusError, redis.exceptions.RedisError, click.UsageError, KeyError):
        rooms = []
    typed = incomplete.lower().replace("#", "+", 1)
    return people + [room for room in rooms if room.lower().startswith(typed)]


peer_argument = click.argument("name", type=NAME, shell_complete=complete_peer)
# NAME, or a room: for chat, send and history.
target_argument = click.argument(
    "name", metavar="NAME|ROOM", type=TARGET, shell_complete=complete_target
)
room_argument = click.argument("room", type=ROOM)
# Line mode on a terminal, instead of the full-screen app.
plain_option = click.option(
    "--plain",
    is_flag=True,
    envvar="CHATBUS_PLAIN",
    help="On a terminal, the line-by-line views instead of the full-screen app "
    "[env: CHATBUS_PLAIN]; they are used anyway with TERM=dumb.",
)

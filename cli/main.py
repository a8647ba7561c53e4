"""The ``chatbus`` command: a thin layer of click over the chatbus library."""

import click

from chatbus import __version__

from .account_commands import login, logout, passwd, whoami
from .admin_commands import admin
from .chat_command import chat
from .context import group_namespace_option, group_url_option
from .query_commands import history, send, users
from .room_commands import invite, join, leave, members, rooms
from .server_command import server
from .thread_errors import report_thread_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="chatbus")
@group_url_option
@group_namespace_option
def cli(url: str | None, namespace: str | None) -> None:
    """Chat in the terminal, with a Redis server as the hub.

    \b
    Start a hub:      chatbus server        (or: docker compose up -d)
    Log in:           chatbus login alice   (the first login registers the name)
    Talk:             chatbus chat bob
    Who is online:    chatbus users
    Rooms:            chatbus join +ops     (+ops is '#ops' without quotes)
                      chatbus chat +ops, chatbus rooms

    Settings: --url/CHATBUS_URL (default redis://localhost:6379/0),
    --namespace/CHATBUS_NAMESPACE, and CHATBUS_HOME for saved logins; --as NAME
    (CHATBUS_USER) picks among the users logged in from one CHATBUS_HOME.
    """
    report_thread_errors()


_COMMANDS = (server, login, chat, users, send, history, rooms, join, leave, members, invite)
for command in (*_COMMANDS, passwd, logout, whoami, admin):
    cli.add_command(command)

"""`chatbus chat --help` names every command the chat view takes."""

import re

from click.testing import CliRunner

from chatbus_cli.main import cli
from chatbus_cli.ui.chat_view import HELP


def test_chat_help_names_every_slash_command_of_the_chat_view() -> None:
    commands = re.findall(r"^(/[a-z]+)", HELP, flags=re.MULTILINE)
    assert "/back" in commands and "/older" in commands
    shown = " ".join(CliRunner().invoke(cli, ["chat", "--help"]).output.split())
    missing = [c for c in commands if c not in shown and c != "/help"]
    assert missing == []

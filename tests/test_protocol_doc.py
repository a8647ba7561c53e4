"""docs/PROTOCOL.md and README.md say exactly what the code does.

Where a page states a rule a client in another language would implement (the
identity folder's name, the JSON fields), the rule is implemented here again
from the page's words and compared with chatbus.
"""

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cli_helpers import Chatbus

from chatbus.config import Settings
from chatbus.envelope import new_envelope
from chatbus.hub import Hub
from chatbus.identity import hub_folder
from chatbus.messages import Mailbox

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def folder_as_protocol_md_says(url: str) -> str:
    """``HUB`` built from the words of PROTOCOL.md, "Local identity"."""
    parts = urlsplit(url)
    kind = "unix" if parts.scheme == "unix" else "tcp"
    asked = parse_qs(parts.query).get("db")
    if kind == "tcp":
        place = f"{(parts.hostname or 'localhost').lower()}-{parts.port or 6379}"
        db = asked[0] if asked else (parts.path.strip("/") or "0")
    else:
        place = parts.path
        db = asked[0] if asked else "0"
    if db.isdigit():
        db = str(int(db))
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{place}-{db}").strip("_.")
    digest = hashlib.sha256(f"{kind}\n{place}\n{db}".encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "redis://localhost",
        "rediss://:secret@Hub.Example.org:6380/00",
        "redis://[::1]:6380/2",
        "redis://1:6380/2",
        "redis://localhost:6379/3?db=5",
        "unix:///run/valkey/valkey.sock",
        "unix:///tmp/a b.sock?db=02",
    ],
)
def test_the_identity_folder_is_named_as_protocol_md_says(url: str) -> None:
    assert hub_folder(url) == folder_as_protocol_md_says(url)


def test_the_identity_folder_examples_in_protocol_md_are_right() -> None:
    examples = re.findall(r"`(redis://[^`]+)` is\s+`([^`]+)`", PROTOCOL)
    assert len(examples) == 2, examples
    for url, folder in examples:
        assert hub_folder(url) == folder


def test_message_ids_are_16_random_bytes_in_hex_as_protocol_md_says() -> None:
    assert "16 random bytes per message (Python's `secrets.token_hex(16)`" in PROTOCOL
    ids = {new_envelope("alice", "bob", "hi", 4096).id for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    # Not UUID4s: the version nibble is as random as the rest.
    assert {i[12] for i in ids} != {"4"}


def test_paging_back_can_show_a_retried_message_again_as_protocol_md_warns(
    settings: Settings, hub: Hub
) -> None:
    chatbus = Chatbus(settings)
    chatbus.login("bob")
    chatbus.login("alice")
    alice = Mailbox(hub, "alice")
    first = new_envelope("alice", "bob", "first", 4096)
    alice.deliver("bob", [first])
    second = alice.send("bob", "second").envelope
    alice.deliver("bob", [first])  # a retry after a lost reply: a second copy, later
    # One page shows each id once; the copies on either side of a page boundary
    # both come back.
    newest = json.loads(chatbus.ok("history", "bob", "--limit", "1", "--json").stdout)
    assert [m["id"] for m in newest["messages"]] == [first.id]
    older = json.loads(chatbus.ok("history", "bob", "--json", "--before", newest["older"]).stdout)
    assert [m["id"] for m in older["messages"]] == [first.id, second.id]  # the reader drops it
    assert "A client that pages should drop\nan `id` it already showed" in PROTOCOL


def _documented_fields(table_intro: str) -> set[str]:
    """The field names in the first column of the README table after ``table_intro``."""
    after = README[README.index(table_intro) :]
    table = after[after.index("| field |") :].split("\n\n")[0]
    fields: set[str] = set()
    for row in table.splitlines()[2:]:
        fields.update(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return fields


def test_every_field_of_the_json_output_is_documented_in_the_readme(
    settings: Settings, hub: Hub
) -> None:
    chatbus = Chatbus(settings)
    chatbus.login("bob")
    chatbus.login("alice")
    chatbus.ok("send", "bob", "hi")
    chatbus.ok("send", "alice", "hello", "--as", "bob")
    users = json.loads(chatbus.ok("users", "--json").stdout)
    assert set(users) == _documented_fields("`chatbus users --json` prints one object")
    history = json.loads(chatbus.ok("history", "bob", "--json").stdout)
    assert set(history) == {"messages", "older"}
    fields = _documented_fields("`chatbus history NAME --json` prints")
    for message in history["messages"]:
        assert set(message) == fields

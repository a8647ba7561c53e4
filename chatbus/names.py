"""User names: what is allowed, and the one canonical form keys are built from."""

import re
from typing import TypeGuard

from .errors import InvalidName

_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
NAME_RULE = "1-32 characters: letters A-Z a-z, digits 0-9, '_' and '-'"


def is_valid_name(name: object) -> TypeGuard[str]:
    """True when ``name`` is a string a user could register."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def validate_name(name: str) -> str:
    """Return ``name`` unchanged, or raise InvalidName saying what is allowed."""
    if not is_valid_name(name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise InvalidName(f"invalid name {shown!r}: use {NAME_RULE}")
    return name


def same_name(a: str, b: str) -> bool:
    """Names are one account regardless of case: "Alice" is "alice"."""
    return a.lower() == b.lower()

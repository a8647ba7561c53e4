"""The ``chatbus`` command."""

import click


@click.group()
def cli() -> None:
    """chatbus: chat in the terminal through a Redis hub."""

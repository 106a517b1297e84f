"""What every `hub` command shares: exit codes and turning errors into one line on stderr."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from hub.errors import HubError

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def fail(message: str, code: int = EXIT_UNREADABLE) -> NoReturn:
    click.echo(f"hub: {message}", err=True)
    sys.exit(code)


@contextmanager
def handled() -> Iterator[None]:
    """Turn the hub's errors into one line on stderr and exit status 2."""
    try:
        yield
    except HubError as exc:
        fail(str(exc).replace("\n", " "))
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".strip(": "))


def cli_actor(given: str | None) -> str:
    """Who a command acts as, for the audit trail: `--actor`, else `cli:<login name>`."""
    if given:
        return given
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"

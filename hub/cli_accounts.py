"""`hub` commands for who may call the API: users, clients (OAuth2 systems) and signing keys.

```
hub users add budi.s --role operator --wilayah 32.73.01.1001     # password prompted twice
hub users list | disable NAME
hub clients add --name "SIAK Kota" --scope records:read --wilayah 32.73   # secret shown once
hub clients list | revoke CLIENT_ID
hub keys rotate
```
Bad input (role and region that do not fit, short password, unknown name) is one line on
stderr and exit status 2; every change is audited with the actor (`--actor`, default
`cli:<login name>`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import click
import orjson

from hub.cli_support import cli_actor, handled

if TYPE_CHECKING:
    from hub.context import Hub

T = TypeVar("T")

_actor_option = click.option("--actor", help="who makes the change (default: cli:<user>)")
_format_option = click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)


@contextmanager
def _opened() -> Iterator[Hub]:
    from hub.context import Hub

    hub = Hub.open()
    try:
        yield hub
    finally:
        hub.close()


def _in_transaction(work: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run `work(conn, *args, **kwargs)` in one transaction of a freshly opened hub."""
    with handled(), _opened() as hub, hub.engine.begin() as conn:
        return work(conn, *args, **kwargs)


# ------------------------------------------------------------------ users


@click.group()
def users() -> None:
    """People who log in: operators, verifikators, admins, auditors."""


@users.command("add")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["operator", "verifikator", "admin", "auditor"]),
    help="operator: a kelurahan; verifikator: a kecamatan; admin: a kota or wider",
)
@click.option(
    "--wilayah",
    required=True,
    help="region code, e.g. 32.73.01.1001; '' (empty) is nasional (admin, auditor)",
)
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (scripts)")
@_actor_option
def users_add(
    username: str, role: str, wilayah: str, password_stdin: bool, actor: str | None
) -> None:
    """Create a user; the password is asked twice (or read from stdin)."""
    from hub.api.accounts import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            "Password (12 characters or more)", hide_input=True, confirmation_prompt=True
        )
    user = _in_transaction(add_user, username, password, role, wilayah, actor=cli_actor(actor))
    click.echo(f"user {user.username} added: {user.role} of {user.wilayah or 'nasional'}")


@users.command("list")
@_format_option
def users_list(output: str) -> None:
    """Every user, with role, region and state."""
    from hub.api.accounts import list_users

    found = _in_transaction(list_users)
    if output == "json":
        click.echo(orjson.dumps([u.as_dict() for u in found]).decode())
        return
    if not found:
        click.echo("no users")
    for u in found:
        state = "disabled" if u.disabled else "active"
        if u.locked_until:
            state += f", locked until {u.locked_until}"
        click.echo(f"{u.username}\t{u.role}\t{u.wilayah or 'nasional'}\t{state}")


@users.command("disable")
@click.argument("username")
@_actor_option
def users_disable(username: str, actor: str | None) -> None:
    """Stop a user from logging in (tokens already issued expire within 15 minutes)."""
    from hub.api.accounts import disable_user

    changed = _in_transaction(disable_user, username, actor=cli_actor(actor))
    click.echo(f"user {username} {'disabled' if changed else 'was already disabled'}")


# ------------------------------------------------------------------ clients


@click.group()
def clients() -> None:
    """Systems that get tokens with OAuth2 client credentials."""


@clients.command("add")
@click.option("--name", required=True, help="what the system is, e.g. 'SIAK Kota Bandung'")
@click.option("--scope", "scopes", multiple=True, required=True, help="a scope it may use (repeat)")
@click.option("--wilayah", required=True, help="its region, e.g. 32.73; '' is nasional")
@_actor_option
def clients_add(name: str, scopes: Sequence[str], wilayah: str, actor: str | None) -> None:
    """Register a system; prints its client_id and secret (the secret only this once)."""
    from hub.api.accounts import add_client

    client_id, secret = _in_transaction(add_client, name, scopes, wilayah, actor=cli_actor(actor))
    click.echo(f"client_id:     {client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo(
        "hub: store the secret now: it is NOT shown again (revoke and add a new client if lost)",
        err=True,
    )


@clients.command("list")
@_format_option
def clients_list(output: str) -> None:
    """Every registered client (never a secret)."""
    from hub.api.accounts import list_clients

    found = _in_transaction(list_clients)
    if output == "json":
        click.echo(orjson.dumps([c.as_dict() for c in found]).decode())
        return
    if not found:
        click.echo("no clients")
    for c in found:
        state = f"revoked {c.revoked_at}" if c.revoked_at else "active"
        click.echo(
            f"{c.client_id}\t{c.name}\t{' '.join(c.scopes)}\t{c.wilayah or 'nasional'}\t{state}"
        )


@clients.command("revoke")
@click.argument("client_id")
@_actor_option
def clients_revoke(client_id: str, actor: str | None) -> None:
    """Refuse a client from now on (tokens already issued expire within 15 minutes)."""
    from hub.api.accounts import revoke_client

    changed = _in_transaction(revoke_client, client_id, actor=cli_actor(actor))
    click.echo(f"client {client_id} {'revoked' if changed else 'was already revoked'}")


# ------------------------------------------------------------------ keys


@click.group()
def keys() -> None:
    """The keys that sign the hub's tokens."""


@keys.command("rotate")
@_actor_option
@click.option(
    "--pii",
    is_flag=True,
    help="rotate the key that seals PII instead: re-encrypts every sealed value in batches "
    "while the hub runs (run again to resume)",
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True)
def keys_rotate(actor: str | None, pii: bool, batch_size: int) -> None:
    """Sign with a new key from now on; old keys keep verifying until their tokens expire."""
    from hub.api.tokens import REFRESH, TokenService

    if pii:
        from hub.cli_custody import rotate_pii

        rotate_pii(cli_actor(actor), batch_size, 0.0)
        return

    with handled(), _opened() as hub:
        kid = TokenService(hub.engine, hub.protector).rotate(actor=cli_actor(actor))
    click.echo(f"signing key rotated: new kid {kid}")
    click.echo(f"running API processes sign with it within {REFRESH} seconds")


COMMANDS: Sequence[click.Command] = (users, clients, keys)

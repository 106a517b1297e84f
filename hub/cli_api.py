"""`hub serve`: the REST API (and the dispatcher) under granian."""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from hub.cli_support import handled


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--no-dispatcher", is_flag=True, help="serve only; run `hub worker` elsewhere")
@click.option("--access-log", is_flag=True, help="log every request (costs throughput)")
def serve(host: str, port: int, workers: int, no_dispatcher: bool, access_log: bool) -> None:
    """Serve the API on /api/v1 (and send queued messages unless --no-dispatcher)."""
    from granian import Granian
    from granian.constants import Interfaces

    from hub.context import Hub

    with handled():
        Hub.open().close()  # migrate and check the settings once, before any worker starts
    os.environ["HUB_SERVE_DISPATCHER"] = "0" if no_dispatcher else "1"
    click.echo(f"LAMPID Hub API on http://{host}:{port}/api/v1 (docs: /docs)")
    Granian(
        "hub.api.serve:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_access=access_log,
    ).serve()


COMMANDS: Sequence[click.Command] = (serve,)

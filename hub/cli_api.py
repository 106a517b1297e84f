"""`hub serve`: the REST API (and the dispatcher) under granian."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from hub.cli_support import handled
from hub.errors import ConfigError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--no-dispatcher", is_flag=True, help="serve only; run `hub worker` elsewhere")
@click.option("--access-log", is_flag=True, help="log every request (costs throughput)")
def serve(host: str, port: int, workers: int, no_dispatcher: bool, access_log: bool) -> None:
    """Serve the API on /api/v1 (and send queued messages unless --no-dispatcher)."""
    with handled():
        _share_metrics(workers)  # before anything imports prometheus_client
        from hub.observe.logs import configure_logging  # structlog: not for every command

        configure_logging("INFO")

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


def _share_metrics(workers: int) -> None:
    """Several workers add up their metrics through files in one directory
    (prometheus-client's multiprocess mode): `PROMETHEUS_MULTIPROC_DIR`, or a new one.
    Files a previous run left there are removed, as the mode requires."""
    if workers < 2 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    if "prometheus_client" in sys.modules:
        raise ConfigError("metrics were set up before the workers could share them")
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        if not path.is_dir():
            raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR {directory!r} is not a directory")
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hub-metrics-")


COMMANDS: Sequence[click.Command] = (serve,)

"""The hub served for a real browser: uvicorn on a free port in a thread, on SQLite, with the
dispatcher running beside it on the in-process Dukcapil and SIAK sandboxes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Secret

from hub.api.app import create_app
from hub.context import Hub
from hub.dispatcher import Dispatcher
from hub.settings import Settings
from tests.conftest import TEST_KEY
from tests.portal.conftest import add_people
from tests.routing import write_routes
from tests.sandbox import FATHER, Sandbox, mother


@dataclass
class Served:
    url: str
    hub: Hub
    sandbox: Sandbox


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _kecamatan_approves(document: dict[str, Any]) -> None:
    """Births wait for the verifikator (the shipped route approves them automatically)."""
    for route in document["routes"]:
        if route["name"] == "kelahiran":
            route["steps"] = [
                {"approve": {"by": "kecamatan"}} if "approve" in step else step
                for step in route["steps"]
            ]


def _with_dispatcher(app: Starlette, hub: Hub, sandbox: Sandbox) -> None:
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Starlette) -> AsyncIterator[None]:
        assert hub.routes is not None
        stop = asyncio.Event()
        dispatcher = Dispatcher(
            hub, hub.routes, connectors=sandbox.connectors(), poll_interval=0.05
        )
        task = asyncio.create_task(dispatcher.run(stop=stop))
        try:
            async with inner(started):
                yield
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)

    app.router.lifespan_context = lifespan


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[Served]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        routes = write_routes(directory / "routes.yaml", monkeypatch, _kecamatan_approves)
        settings = Settings(
            f"sqlite+pysqlite:///{directory / 'hub.db'}",
            directory,
            Secret(TEST_KEY),
            directory / "hub.key",
            routes_path=routes,
        )
        hub = Hub.open(settings)
        assert hub.routes is not None
        add_people(hub)
        sandbox = Sandbox(hub.routes, people=[*(mother(i) for i in range(1, 8)), FATHER])
        app = create_app(hub, limits=None)
        app.state.portal_stream_interval = 0.2
        _with_dispatcher(app, hub, sandbox)
        port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=2,
        )  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the portal's server did not start")
            time.sleep(0.02)
        try:
            yield Served(f"http://127.0.0.1:{port}", hub, sandbox)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            hub.close()

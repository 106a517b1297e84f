"""`hub serve`: the API under granian, with the dispatcher running beside it.

Granian was chosen by measurement (the issue's figures on this machine: uvicorn 12,000 req/s
at 50 connections but p99 about 3 s and timeouts at 500; granian 20,000 req/s and p99 46 ms at
500; see the README's API benchmark). Each granian worker process builds its app with
`app_from_env()`: it opens the hub from the environment and, unless `HUB_SERVE_DISPATCHER=0`,
runs a dispatcher in the same event loop for as long as the app lives. Several workers (and
`hub worker` processes elsewhere) share the outbox safely: claims are leased and, on
PostgreSQL, taken with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette

from hub.api.app import create_app
from hub.context import Hub
from hub.dispatcher import Dispatcher

log = logging.getLogger("hub.serve")


def app_from_env() -> Starlette:
    """The app of one server process (granian's factory target)."""
    hub = Hub.open()
    app = create_app(hub)
    dispatch = os.environ.get("HUB_SERVE_DISPATCHER", "1") != "0" and hub.routes is not None
    app.router.lifespan_context = _lifespan(hub, dispatch)
    return app


def _lifespan(
    hub: Hub, dispatch: bool
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        if dispatch and hub.routes is not None:
            task = asyncio.create_task(Dispatcher(hub, hub.routes).run(stop=stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                try:
                    await asyncio.wait_for(task, timeout=30)
                except Exception:
                    log.exception("dispatcher did not stop cleanly")
            hub.close()

    return lifespan

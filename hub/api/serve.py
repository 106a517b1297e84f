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
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.applications import Starlette

from hub.api.app import create_app
from hub.api.limits import LimitPolicy
from hub.api.resume import RESUME_EVERY, resume_uploads
from hub.context import Hub
from hub.dispatcher import Dispatcher
from hub.errors import ConfigError
from hub.observe.logs import configure_logging
from hub.observe.tracing import setup_tracing

log = logging.getLogger("hub.serve")


Lifespan = Callable[[Starlette], contextlib.AbstractAsyncContextManager[Any]]


def limit_policy(environ: Mapping[str, str] | None = None) -> LimitPolicy:
    """Per-caller limits from `HUB_API_RATE` (requests/s), `HUB_API_BURST` and
    `HUB_API_DAILY_QUOTA` (requests per day), each defaulting to `LimitPolicy`'s."""
    env = os.environ if environ is None else environ
    default = LimitPolicy()
    try:
        rate = float(env.get("HUB_API_RATE") or default.rate)
        burst = int(env.get("HUB_API_BURST") or max(default.burst, int(rate * 2)))
        daily = int(env.get("HUB_API_DAILY_QUOTA") or default.daily)
    except ValueError as exc:
        raise ConfigError(f"HUB_API_RATE, HUB_API_BURST, HUB_API_DAILY_QUOTA: {exc}") from None
    return LimitPolicy(rate=rate, burst=burst, daily=daily)


def app_from_env() -> Starlette:
    """The app of one server process (granian's factory target)."""
    configure_logging("INFO")
    setup_tracing()
    hub = Hub.open()
    origins = tuple(
        o.strip() for o in os.environ.get("HUB_API_CORS_ORIGINS", "").split(",") if o.strip()
    )
    app = create_app(hub, limits=limit_policy(), cors_origins=origins)
    dispatch = os.environ.get("HUB_SERVE_DISPATCHER", "1") != "0" and hub.routes is not None
    app.router.lifespan_context = _lifespan(hub, dispatch, app.router.lifespan_context)
    return app


def _lifespan(hub: Hub, dispatch: bool, inner: Lifespan) -> Lifespan:
    """The app's own lifespan, with a dispatcher running inside it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = {"upload resumer": asyncio.create_task(_resume_uploads(hub, stop))}
        if dispatch and hub.routes is not None:
            tasks["dispatcher"] = asyncio.create_task(Dispatcher(hub, hub.routes).run(stop=stop))
        try:
            async with inner(app):
                yield
        finally:
            stop.set()
            for name, task in tasks.items():
                try:
                    await asyncio.wait_for(task, timeout=30)
                except Exception:
                    log.exception("%s did not stop cleanly", name)
            hub.close()

    return lifespan


async def _resume_uploads(hub: Hub, stop: asyncio.Event) -> None:
    """Pick up accepted uploads left unfinished by a stopped process: at start-up, then
    every `RESUME_EVERY` seconds until `stop` (see `hub.api.resume`)."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(resume_uploads, hub)
        except Exception:
            log.exception("resuming unfinished uploads failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=RESUME_EVERY)

"""`hub` commands for the way out: check, worker, approve, outbox, dlq, simulate."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import orjson

from hub.cli_support import EXIT_INVALID, cli_actor, fail, handled
from hub.errors import ConfigValidationError


def _open_with_routes() -> Any:
    from hub.context import Hub

    hub = Hub.open()
    if hub.routes is None:
        hub.close()
        fail("no routes.yaml: set HUB_ROUTES or run from the folder that holds routes.yaml")
    return hub


# ------------------------------------------------------------------ check


@click.command()
@click.option(
    "--routes",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="file to check (default: HUB_ROUTES or ./routes.yaml)",
)
def check(path: Path | None) -> None:
    """Validate routes.yaml (and the settings) without starting anything."""
    from hub.routes import load_routes
    from hub.schemas import SchemaRegistry
    from hub.settings import Settings

    with handled():
        settings = Settings.from_env()
        target = path or settings.routes_path
        if target is None:
            fail("no routes.yaml: set HUB_ROUTES or pass --routes FILE")
        try:
            routes = load_routes(target, schemas=SchemaRegistry.load())
        except ConfigValidationError as exc:
            click.echo(f"{target}: {len(exc.errors)} problem(s)", err=True)
            for error in exc.errors:
                click.echo(f"  - {error}", err=True)
            raise SystemExit(2) from None
    click.echo(
        f"{target}: OK, {len(routes.connectors)} connectors "
        f"({', '.join(routes.connectors)}), {len(routes.routes)} routes "
        f"({', '.join(r.name for r in routes.routes)})"
    )


# ------------------------------------------------------------------ worker


@click.command()
@click.option("--until-idle", is_flag=True, help="stop once nothing is due (scripts, demo)")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="serve this worker's metrics for Prometheus on this port (/metrics)",
)
def worker(until_idle: bool, metrics_port: int | None) -> None:
    """Send queued verifications and deliveries until stopped (SIGINT/SIGTERM)."""
    from hub.dispatcher import Dispatcher
    from hub.observe.logs import configure_logging
    from hub.observe.metrics import serve_metrics

    with handled():
        configure_logging("INFO")
        if metrics_port is not None:
            serve_metrics(metrics_port)
        hub = _open_with_routes()
        try:
            dispatcher = Dispatcher(hub, hub.routes)
            asyncio.run(_run_worker(dispatcher, until_idle))
            counts = dispatcher.stats.as_dict()
        finally:
            hub.close()
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing to send")


async def _run_worker(dispatcher: Any, until_idle: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await dispatcher.run(stop=stop, until_idle=until_idle)


# ------------------------------------------------------------------ approve


@click.command()
@click.argument("record_ids", nargs=-1, type=int)
@click.option("--batch", "batch_id", type=int, help="every record of this batch that waits")
@click.option("--reject", is_flag=True, help="reject instead of approve")
@click.option("--reason", help="why (required with --reject); the operator reads it")
@click.option("--actor", help="who decides (default: cli:<user>)")
def approve(
    record_ids: Sequence[int],
    batch_id: int | None,
    reject: bool,
    reason: str | None,
    actor: str | None,
) -> None:
    """Approve (or --reject) records waiting for the kecamatan."""
    import sqlalchemy as sa

    from hub.flow import Flow
    from hub.store.tables import records

    if not record_ids and batch_id is None:
        fail("name record ids or --batch ID")
    if reject and not (reason and reason.strip()):
        fail("--reject needs --reason TEXT")
    with handled():
        hub = _open_with_routes()
        try:
            flow = Flow(hub.routes, hub.schemas, hub.protector, hub.messages)
            with hub.engine.begin() as conn:
                ids = list(record_ids)
                if batch_id is not None:
                    ids += conn.execute(
                        sa.select(records.c.id).where(
                            records.c.batch_id == batch_id,
                            records.c.status == "pending_approval",
                        )
                    ).scalars()
                who = cli_actor(actor)
                if reject:
                    decision = flow.reject(conn, ids, actor=who, reason=reason or "")
                else:
                    decision = flow.approve(conn, ids, actor=who, note=reason)
        finally:
            hub.close()
    verb = "rejected" if reject else "approved"
    click.echo(f"{verb}: {len(decision.done)}")
    for record_id, why in sorted(decision.skipped.items()):
        click.echo(f"  record {record_id} skipped: {why}", err=True)
    if decision.skipped:
        raise SystemExit(EXIT_INVALID)


# ------------------------------------------------------------------ outbox


@click.group()
def outbox() -> None:
    """What is waiting to leave, per connector."""


@outbox.command("status")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
def outbox_status(output: str) -> None:
    """Queued / in flight / delivered / dead, oldest age, breaker and quota per connector."""
    from hub import outbox as ops

    with handled():
        hub = _open_with_routes()
        try:
            with hub.engine.connect() as conn:
                rows = ops.status(conn, list(hub.routes.connectors))
        finally:
            hub.close()
    if output == "json":
        click.echo(orjson.dumps([r.as_dict() for r in rows]).decode())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "connector",
        "queued",
        "in flight",
        "delivered",
        "dead",
        "oldest",
        "state",
        "breaker",
        "quota left",
    )
    for r in rows:
        state = r.state + (f" until {r.paused_until}" if r.paused_until else "")
        state += f" ({r.reason})" if r.reason else ""
        table.add_row(
            r.connector,
            str(r.queued),
            str(r.in_flight),
            str(r.delivered),
            str(r.dead),
            _age(r.oldest_queued_s),
            state,
            r.breaker or "-",
            "-" if r.quota_left is None else str(r.quota_left),
        )
    Console(width=max(120, Console().width)).print(table)


@outbox.command("resume")
@click.argument("connector")
@click.option("--actor", help="who resumes it (default: cli:<user>)")
def outbox_resume(connector: str, actor: str | None) -> None:
    """Let a connector stopped by a fatal answer send again."""
    from hub import outbox as ops

    with handled():
        hub = _open_with_routes()
        try:
            with hub.engine.begin() as conn:
                resumed = ops.resume(conn, connector, actor=cli_actor(actor))
        finally:
            hub.close()
    if not resumed:
        fail(f"connector {connector!r} is not stopped", EXIT_INVALID)
    click.echo(f"{connector}: resumed")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(dt.timedelta(seconds=int(seconds)))


# ------------------------------------------------------------------ dead letters


@click.group()
def dlq() -> None:
    """Dead letters: messages that failed every retry or were refused."""


@dlq.command("list")
@click.option("--connector", help="only this connector")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
def dlq_list(connector: str | None, limit: int, output: str) -> None:
    """List dead letters, oldest first."""
    from hub import outbox as ops

    with handled():
        hub = _open_with_routes()
        try:
            with hub.engine.connect() as conn:
                letters = ops.dead_letters(conn, connector=connector, limit=limit)
        finally:
            hub.close()
    if output == "json":
        click.echo(orjson.dumps([d.as_dict() for d in letters]).decode())
        return
    if not letters:
        click.echo("no dead letters")
    for d in letters:
        click.echo(
            f"{d.id}\t{d.connector}\t{d.kind}\t{d.record_type} #{d.record_id} "
            f"v{d.record_version}\t{d.attempts} attempts\t{d.code or '-'}\t{d.error or ''}"
        )


@dlq.command("show")
@click.argument("message_id", type=int)
def dlq_show(message_id: int) -> None:
    """One dead letter, with its attempts from the audit trail."""
    import sqlalchemy as sa

    from hub import outbox as ops
    from hub.store.tables import audit_events

    with handled():
        hub = _open_with_routes()
        try:
            with hub.engine.connect() as conn:
                letter = ops.dead_letter(conn, message_id)
                attempts = conn.execute(
                    sa.select(
                        audit_events.c.occurred_at, audit_events.c.action, audit_events.c.details
                    )
                    .where(
                        audit_events.c.entity_type == "outbox",
                        audit_events.c.entity_id == str(message_id),
                    )
                    .order_by(audit_events.c.id)
                ).all()
        finally:
            hub.close()
    if letter is None:
        fail(f"no dead letter {message_id}", EXIT_INVALID)
    click.echo(orjson.dumps(letter.as_dict(), option=orjson.OPT_INDENT_2).decode())
    for at, action, details in attempts:
        click.echo(f"{at}  {action}  {details}")


@dlq.command("replay")
@click.argument("message_ids", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="every dead letter")
@click.option("--connector", help="with --all: only this connector")
@click.option("--actor", help="who replays (default: cli:<user>)")
def dlq_replay(
    message_ids: Sequence[int], replay_all: bool, connector: str | None, actor: str | None
) -> None:
    """Queue dead letters again (IDs, or --all)."""
    from hub import outbox as ops
    from hub.flow import Flow

    if bool(message_ids) == replay_all:
        fail("name message ids, or --all")
    with handled():
        hub = _open_with_routes()
        try:
            flow = Flow(hub.routes, hub.schemas, hub.protector, hub.messages)
            with hub.engine.begin() as conn:
                result = ops.replay(
                    conn,
                    flow,
                    None if replay_all else list(message_ids),
                    actor=cli_actor(actor),
                    connector=connector,
                )
        finally:
            hub.close()
    click.echo(f"replayed: {len(result.replayed)}")
    for message_id, why in sorted(result.skipped.items()):
        click.echo(f"  {message_id} skipped: {why}", err=True)
    if result.skipped:
        raise SystemExit(EXIT_INVALID)


# ------------------------------------------------------------------ simulators


def _span(text: str, parse: Any, what: str) -> tuple[Any, Any]:
    first, sep, second = text.partition("-")
    try:
        if not sep:
            raise ValueError(text)
        return parse(first.strip()), parse(second.strip())
    except ValueError:
        raise click.BadParameter(
            f"expected {what}, e.g. {'06:00-22:00' if parse is _clock else '0.05-0.2'}"
        ) from None


def _clock(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


@click.command()
@click.argument("system", type=click.Choice(["dukcapil", "siak"]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), help="default 8701 dukcapil, 8702 siak")
@click.option("--seed", type=int, default=1, show_default=True, help="population and failures")
@click.option("--latency", default=None, help="answer time range in seconds, e.g. 0.05-0.2")
@click.option("--fail-5xx", type=click.FloatRange(0, 1), default=0.0, help="share answered 503")
@click.option("--fail-timeout", type=click.FloatRange(0, 1), default=0.0, help="share that stall")
@click.option("--fail-reset", type=click.FloatRange(0, 1), default=0.0, help="share cut mid-answer")
@click.option("--timeout-delay", type=click.FloatRange(0), default=15.0, show_default=True)
@click.option("--rate-limit", type=click.FloatRange(0), default=0.0, help="requests/s; above: 429")
@click.option("--quota", type=click.IntRange(0), default=None, help="calls per day")
@click.option("--hours", default=None, help="allowed hours in WIB, e.g. 06:00-22:00")
@click.option("--population", type=click.IntRange(1), default=2000, show_default=True,
              help="dukcapil: people in the register")  # fmt: skip
def simulate(
    system: str,
    host: str,
    port: int | None,
    seed: int,
    latency: str | None,
    fail_5xx: float,
    fail_timeout: float,
    fail_reset: float,
    timeout_delay: float,
    rate_limit: float,
    quota: int | None,
    hours: str | None,
    population: int,
) -> None:
    """Run a SANDBOX of Dukcapil or SIAK for demos and tests (never the real service)."""
    options: dict[str, Any] = {
        "seed": seed,
        "fail_5xx": fail_5xx,
        "fail_timeout": fail_timeout,
        "fail_reset": fail_reset,
        "timeout_delay": timeout_delay,
        "rate_limit": rate_limit,
        "daily_quota": quota,
        "allowed_hours": _span(hours, _clock, "HH:MM-HH:MM") if hours else None,
    }
    if latency:
        options["latency"] = _span(latency, float, "MIN-MAX seconds")
    if system == "dukcapil":
        from adapters.dukcapil import simulator as dukcapil

        click.echo(f"Dukcapil SANDBOX on http://{host}:{port or 8701}")
        dukcapil.serve(
            dukcapil.SimulatorOptions(population_size=population, **options), host, port or 8701
        )
    else:
        from adapters.siak import simulator as siak

        click.echo(f"SIAK SANDBOX on http://{host}:{port or 8702}")
        siak.serve(siak.SimulatorOptions(**options), host, port or 8702)


COMMANDS: Sequence[click.Command] = (check, worker, approve, outbox, dlq, simulate)

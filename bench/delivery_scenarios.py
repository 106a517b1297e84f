"""Delivery scenarios shared by the proofs (`tests/test_delivery_proof.py`, CI-sized) and the
benchmark (`bench/delivery.py`, full-sized).

Every scenario runs the sandbox simulators under real uvicorn in this process
(`adapters.*.simulator.running`) and the hub against them, and returns an `Outcome`: the
simulators' counters, the store's view (record statuses, dead letters, audit actions, the
audit chain) and the latencies.

- `fault_injection`: kelahiran records through verify (Dukcapil) and deliver (SIAK) by a
  dispatcher in this process, with both simulators failing about 30 % of requests (503,
  stalls beyond the connector timeout, connections cut mid-answer, 429 with Retry-After).
- `crash`: `hub worker` as a subprocess, killed with SIGKILL once SIAK holds about a third,
  then `hub worker --until-idle` finishes after the dead worker's leases run out.
- `rate`: several `hub worker` processes on one PostgreSQL schema sharing one Redis, with a
  SIAK rate limit of 50/s; the simulator measures what arrives.

The rows are `tests.builders.kelahiran_row(i)` (a unique mother per i, up to 9999) and the
people `tests.sandbox.mother(i)` and `FATHER`; routes are the shipped `routes.yaml` written
by `tests.routing.write_routes` with the changes each scenario needs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
import sqlalchemy as sa

from adapters.dukcapil import simulator as dukcapil_sim
from adapters.siak import simulator as siak_sim
from hub import outbox as ops
from hub.audit import verify_chain
from hub.context import Hub
from hub.dispatcher import Dispatcher
from hub.pipeline import run_batch, source_for
from hub.settings import Settings
from hub.store.tables import audit_events, outbox, records
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_csv
from tests.routing import SANDBOX_ENV, write_routes
from tests.sandbox import FATHER, mother

#: The tests' fixed data key (`tests.conftest.TEST_KEY`): base64 of bytes 0..31.
DATA_KEY = base64.b64encode(bytes(range(32))).decode()
#: The most distinct mothers `kelahiran_row` / `mother` can name.
MAX_RECORDS = 9999
SIAK_RATE = 50


# ------------------------------------------------------------------------------ outcome


@dataclass
class Outcome:
    """What one scenario run did, as the simulators and the store saw it."""

    scenario: str
    records: int
    seconds: float
    statuses: dict[str, int]
    siak: dict[str, Any]
    dukcapil: dict[str, Any] | None
    dead_letters: int
    audit: dict[str, int]  # audit action -> events
    chain_ok: bool
    delivery_ms: list[float]  # per delivered message: outbox created_at -> done_at
    request_ms: list[float]  # per delivery: latency_ms of its `outbox.deliver.ok` event
    # delivery attempts SIAK may not have counted: a connection failure or timeout on the
    # hub's side (the request may have died before SIAK read it on a busy host), or a failed
    # token request (no events request was sent at all)
    unsure_deliveries: int = 0
    dispatch: dict[str, int] = field(default_factory=dict)  # in-process dispatcher counts
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def delivered(self) -> int:
        return self.statuses.get("delivered", 0)

    def audited(self, prefix: str) -> int:
        """Audit events whose action starts with `prefix` (e.g. `outbox.deliver.`)."""
        return sum(n for action, n in self.audit.items() if action.startswith(prefix))

    @property
    def retries(self) -> int:
        """Attempts that failed and were queued again, over every connector."""
        return sum(n for action, n in self.audit.items() if action.endswith(".retry"))

    @property
    def utilisation(self) -> float | None:
        """Accepted events per second between the first and the last arrival at SIAK."""
        first, last = self.siak.get("first_arrival"), self.siak.get("last_arrival")
        accepted = int(self.siak.get("accepted", 0))
        if first is None or last is None or last <= first or accepted < 2:
            return None
        return float((accepted - 1) / (last - first))

    def injected(self) -> dict[str, int]:
        """Failures the simulators produced, by system and kind (429 included)."""
        out: dict[str, int] = {}
        for system, stats, too_many in (
            ("siak", self.siak, self.siak.get("by_status", {}).get("429", 0)),
            (
                "dukcapil",
                self.dukcapil or {},
                (self.dukcapil or {}).get("http_status", {}).get("429", 0),
            ),
        ):
            for kind, n in sorted(stats.get("injected", {}).items()):
                out[f"{system} {kind}"] = int(n)
            if too_many:
                out[f"{system} 429"] = int(too_many)
        return out

    def failure_share(self, system: str) -> float:
        """Share of `system`'s requests answered with an injected failure or a 429."""
        stats = self.siak if system == "siak" else (self.dukcapil or {})
        requests = int(stats.get("requests", 0))
        failed = sum(n for k, n in self.injected().items() if k.startswith(system + " "))
        return failed / requests if requests else 0.0


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> list[float]:
    """The given percentiles (inclusive method); NaN when there are fewer than 2 values."""
    if len(values) < 2:
        return [float("nan")] * len(points)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [cuts[p - 1] for p in points]


# ------------------------------------------------------------------------------ setup


def births_csv(path: Path, n: int) -> Path:
    """A kelahiran CSV of `n` valid rows with distinct mothers 1..n."""
    if not 1 <= n <= MAX_RECORDS:
        raise ValueError(f"1 to {MAX_RECORDS} records, not {n}")
    return write_csv(path, KELAHIRAN_HEADER, [kelahiran_row(i) for i in range(1, n + 1)])


def people(n: int) -> tuple[Any, ...]:
    """Everybody rows 1..n name, as the Dukcapil sandbox must know them."""
    return (*(mother(i) for i in range(1, n + 1)), FATHER)


def hub_env(
    root: Path, database_url: str, routes: Path, redis_url: str | None = None
) -> dict[str, str]:
    """The environment a `hub` process of this scenario reads."""
    env = {
        **SANDBOX_ENV,
        "HUB_DATABASE_URL": database_url,
        "HUB_DATA_KEY": DATA_KEY,
        "HUB_DATA_DIR": str(root / "var"),
        "HUB_ROUTES": str(routes),
    }
    if redis_url:
        env["HUB_REDIS_URL"] = redis_url
    return env


def routes_change(
    *,
    siak: Mapping[str, Any],
    dukcapil: Mapping[str, Any] | None = None,
    verify: bool = True,
) -> Callable[[dict[str, Any]], None]:
    """A `write_routes` change: connector settings over the shipped ones, and (verify=False)
    the kelahiran route without its verify step (approve auto -> deliver)."""

    def change(document: dict[str, Any]) -> None:
        document["connectors"]["siak"].update(siak)
        if dukcapil:
            document["connectors"]["dukcapil"].update(dukcapil)
        if not verify:
            for route in document["routes"]:
                if route["name"] == "kelahiran":
                    route["steps"] = [s for s in route["steps"] if "verify" not in s]

    return change


def open_hub(env: Mapping[str, str]) -> Hub:
    """The hub a `hub` process with `env` would open (migrated store, demo regions)."""
    return Hub.open(Settings.from_env(env))


def ingest(hub: Hub, path: Path, n: int) -> None:
    report = run_batch(hub, source_for(path), "kelahiran", actor="operator:bench")
    if report.counts.valid != n:
        raise RuntimeError(f"expected {n} valid records, the batch has {report.counts.valid}")


def sim_stats(base_url: str) -> dict[str, Any]:
    """`GET /_sim/stats` of a running simulator."""
    with urllib.request.urlopen(base_url + "/_sim/stats", timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def redis_database(url: str, number: int) -> str:
    """`url` with its logical database replaced by `number`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.flushdb()
    finally:
        client.close()


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the server of `url`, dropped afterwards; yields a URL selecting it
    with `search_path` (as `tests.conftest.database_url` does)."""
    import psycopg

    admin = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        selected = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield selected.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class _DropInjectedFailures(logging.Filter):
    """uvicorn logs a traceback for each reset the Dukcapil sandbox injects and for each
    request whose client went away before its body was read (it gave up on a stall, or was
    killed); SIAK's sandbox filters its own resets."""

    def filter(self, record: logging.LogRecord) -> bool:
        from starlette.requests import ClientDisconnect

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, dukcapil_sim.SimulatedReset | ClientDisconnect)


@contextlib.contextmanager
def quiet_injected_failures() -> Iterator[None]:
    log = logging.getLogger("uvicorn.error")
    dropper = _DropInjectedFailures()
    log.addFilter(dropper)
    try:
        yield
    finally:
        log.removeFilter(dropper)


# ------------------------------------------------------------------------------ the store


def _seconds_between(start: str, end: str) -> float:
    a = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
    return (b - a).total_seconds()


def read_store(hub: Hub) -> dict[str, Any]:
    """Statuses, dead letters, audit action counts, the chain, and the latencies."""
    with hub.engine.connect() as conn:
        statuses: dict[str, int] = dict(
            conn.execute(
                sa.select(records.c.status, sa.func.count()).group_by(records.c.status)
            ).all()
        )
        dead = len(ops.dead_letters(conn, limit=1_000_000))
        audit: dict[str, int] = dict(
            conn.execute(
                sa.select(audit_events.c.action, sa.func.count()).group_by(audit_events.c.action)
            ).all()
        )
        chain_ok = bool(verify_chain(conn).ok)
        done = conn.execute(
            sa.select(outbox.c.created_at, outbox.c.done_at).where(
                outbox.c.kind == "deliver", outbox.c.status == "done"
            )
        ).all()
        details = conn.execute(
            sa.select(audit_events.c.details).where(audit_events.c.action == "outbox.deliver.ok")
        ).scalars()
        request_ms = [float(orjson.loads(d)["latency_ms"]) for d in details]
        failed = conn.execute(
            sa.select(audit_events.c.details).where(audit_events.c.action == "outbox.deliver.retry")
        ).scalars()
        summaries = [str(orjson.loads(d).get("summary", "")) for d in failed]
        unsure = sum(1 for s in summaries if "connection failed" in s or "token endpoint" in s)
    return {
        "unsure_deliveries": unsure,
        "statuses": {str(k): int(v) for k, v in statuses.items()},
        "dead_letters": dead,
        "audit": {str(k): int(v) for k, v in audit.items()},
        "chain_ok": chain_ok,
        "delivery_ms": [_seconds_between(c, d) * 1000 for c, d in done],
        "request_ms": request_ms,
    }


def _next_due(hub: Hub) -> float | None:
    """Seconds until the earliest queued message is due (0 when overdue); None when none."""
    with hub.engine.connect() as conn:
        due = conn.execute(
            sa.select(sa.func.min(outbox.c.next_attempt_at)).where(outbox.c.status == "queued")
        ).scalar_one()
    if due is None:
        return None
    return max(0.0, _seconds_between(dt.datetime.now(dt.UTC).isoformat(), due))


# ------------------------------------------------------------------------------ processes


def hub_command() -> list[str]:
    """`hub` from this interpreter's environment."""
    beside = Path(sys.executable).parent / "hub"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "hub.cli"]


@dataclass
class Worker:
    """A `hub worker` subprocess with its output in files."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, env: Mapping[str, str], log: Path, *, until_idle: bool) -> Worker:
        # the hub's own variables come from `env` only, not from whoever runs this
        clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        argv = [*hub_command(), "worker", *(["--until-idle"] if until_idle else [])]
        with log.open("wb") as handle:
            process = subprocess.Popen(
                argv, env={**clean, **env}, stdout=handle, stderr=subprocess.STDOUT
            )
        return cls(process, log)

    def output(self, limit: int = 3000) -> str:
        text = self.log.read_text("utf-8", errors="replace")
        return text[-limit:]

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(
                f"hub worker still running after {timeout:g} s:\n{self.output()}"
            ) from None

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def counts(self) -> dict[str, int]:
        """The counts `hub worker` prints when it ends (`done=598 retry=2`)."""
        lines = self.output().strip().splitlines()
        pairs = [p.split("=", 1) for p in (lines[-1].split() if lines else []) if "=" in p]
        return {k: int(v) for k, v in pairs if v.isdigit()}


def _wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(poll)


# ------------------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class FaultMix:
    """Failure injection per simulator request, the same on both simulators: 503, stalls
    beyond the connector timeout and connections cut mid-answer on 26 % of requests, and 429
    with Retry-After on top whenever arrivals pass the simulators' own limits (SIAK: at most
    70 in any second; Dukcapil: a bucket of 60/s). About 30 % of all requests fail."""

    fail_5xx: float = 0.12
    fail_timeout: float = 0.04
    fail_reset: float = 0.10
    timeout_delay: float = 1.0  # above the connector timeout
    connector_timeout: float = 0.5
    siak_rate_limit: float = 70  # 0: none
    dukcapil_rate_limit: float = 60
    concurrency: int = 16
    max_attempts: int = 25
    latency: tuple[float, float] = (0.0, 0.005)


async def drain(hub: Hub, *, poll_interval: float = 0.05, within: float = 600.0) -> Counter[str]:
    """Run dispatchers until nothing is left to send, including retries due later.

    `Dispatcher.run(until_idle=True)` returns once nothing is in flight and nothing is due
    within a poll; a message waiting out a backoff or a `Retry-After` is not due yet, so
    after each run this waits for the next queued message and runs again.
    """
    assert hub.routes is not None
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + within
    rounds = 0
    while True:
        rounds += 1
        dispatcher = Dispatcher(hub, hub.routes, poll_interval=poll_interval)
        left = deadline - time.monotonic()
        await asyncio.wait_for(dispatcher.run(until_idle=True), timeout=max(left, 1.0))
        counts += dispatcher.stats.counts
        wait = await asyncio.to_thread(_next_due, hub)
        if wait is None:
            break
        if time.monotonic() + wait > deadline:
            raise RuntimeError(f"messages still queued after {within:g} s")
        await asyncio.sleep(wait)
    counts["rounds"] = rounds
    return counts


def fault_injection(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    n: int = 5000,
    *,
    mix: FaultMix | None = None,
    seed: int = 7,
) -> Outcome:
    """`n` births ingested as one CSV, verified and delivered by a dispatcher in this process
    against both simulators failing per `mix`; SQLite store."""
    mix = mix or FaultMix()
    dukcapil_options = dukcapil_sim.SimulatorOptions(
        population_size=50,
        extra_people=people(n),
        rate_limit=mix.dukcapil_rate_limit,
        fail_5xx=mix.fail_5xx,
        fail_timeout=mix.fail_timeout,
        fail_reset=mix.fail_reset,
        timeout_delay=mix.timeout_delay,
        latency=mix.latency,
        seed=seed,
    )
    siak_options = siak_sim.SimulatorOptions(
        rate_limit=mix.siak_rate_limit,
        fail_5xx=mix.fail_5xx,
        fail_timeout=mix.fail_timeout,
        fail_reset=mix.fail_reset,
        timeout_delay=mix.timeout_delay,
        latency=mix.latency,
        seed=seed,
    )
    retry = {"max_attempts": mix.max_attempts, "initial": 0.05, "maximum": 0.5, "jitter": 0.05}
    common = {"timeout": mix.connector_timeout, "concurrency": mix.concurrency, "retry": retry}
    root.mkdir(parents=True, exist_ok=True)
    with (
        quiet_injected_failures(),
        dukcapil_sim.running(dukcapil_options) as dukcapil_url,
        siak_sim.running(siak_options) as siak_url,
    ):
        change = routes_change(
            siak={"base_url": siak_url, **common},
            dukcapil={"base_url": dukcapil_url, **common},
        )
        routes = write_routes(root / "routes.yaml", monkeypatch, change)
        env = hub_env(root, f"sqlite:///{root / 'hub.db'}", routes)
        hub = open_hub(env)
        try:
            ingest(hub, births_csv(root / "births.csv", n), n)
            started = time.perf_counter()
            counts = asyncio.run(drain(hub))
            seconds = time.perf_counter() - started
            siak, dukcapil = sim_stats(siak_url), sim_stats(dukcapil_url)
            store = read_store(hub)
        finally:
            hub.close()
    return Outcome(
        "fault injection", n, seconds, siak=siak, dukcapil=dukcapil, dispatch=dict(counts), **store
    )


def crash(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    n: int = 800,
    *,
    kill_at: float = 1 / 3,
    latency: tuple[float, float] = (0.02, 0.05),
    database_url: str | None = None,
) -> Outcome:
    """`n` births (no verify step) delivered by `hub worker`, which is killed with SIGKILL
    once SIAK accepted `kill_at` of them; `hub worker --until-idle` then finishes. The SIAK
    connector timeout is 1 s, so a dead worker's leases run out after 3 x 1 + 10 = 13 s."""
    root.mkdir(parents=True, exist_ok=True)
    database_url = database_url or f"sqlite:///{root / 'hub.db'}"
    options = siak_sim.SimulatorOptions(latency=latency, seed=3)
    with quiet_injected_failures(), siak_sim.running(options) as siak_url:
        change = routes_change(siak={"base_url": siak_url, "timeout": 1}, verify=False)
        routes = write_routes(root / "routes.yaml", monkeypatch, change)
        env = hub_env(root, database_url, routes)
        hub = open_hub(env)
        try:
            ingest(hub, births_csv(root / "births.csv", n), n)
            started = time.perf_counter()
            first = Worker.start(env, root / "worker-1.log", until_idle=False)
            target = max(1, int(n * kill_at))

            def in_flight() -> int:
                with hub.engine.connect() as conn:
                    return int(
                        conn.execute(
                            sa.select(sa.func.count())
                            .select_from(outbox)
                            .where(outbox.c.status == "in_flight")
                        ).scalar_one()
                    )

            def enough() -> bool:
                if first.process.poll() is not None:
                    raise RuntimeError(f"hub worker exited early:\n{first.output()}")
                # kill while the worker holds claimed messages: their leases must run out
                return int(sim_stats(siak_url)["accepted"]) >= target and in_flight() > 0

            try:
                _wait_until(enough, 120, f"SIAK accepted {target}", poll=0.02)
            finally:
                first.kill()
            killed_at = time.perf_counter() - started
            accepted_at_kill = int(sim_stats(siak_url)["accepted"])
            orphaned = in_flight()
            second = Worker.start(env, root / "worker-2.log", until_idle=True)
            code = second.wait(timeout=180)
            if code != 0:
                raise RuntimeError(f"hub worker --until-idle exited {code}:\n{second.output()}")
            seconds = time.perf_counter() - started
            time.sleep(0.1)  # the last answers leave the simulator's counters settled
            siak = sim_stats(siak_url)
            store = read_store(hub)
        finally:
            hub.close()
    notes = {
        "killed after s": round(killed_at, 2),
        "accepted at kill": accepted_at_kill,
        "in flight at kill": int(orphaned),
        "restart": second.counts(),
    }
    return Outcome("crash", n, seconds, siak=siak, dukcapil=None, notes=notes, **store)


def rate(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    n: int = 600,
    *,
    workers: int = 3,
    per_second: int = SIAK_RATE,
    latency: tuple[float, float] = (0.005, 0.015),
) -> Outcome:
    """`n` births (no verify step) delivered by `workers` `hub worker --until-idle` processes
    sharing `database_url` (PostgreSQL) and `redis_url` (flushed first: the workers use the
    prefix `hub:`), under a SIAK rate limit of `per_second` with burst 1. The simulator has
    no limit of its own and measures arrivals."""
    root.mkdir(parents=True, exist_ok=True)
    flush_redis(redis_url)
    options = siak_sim.SimulatorOptions(latency=latency, seed=5)
    with siak_sim.running(options) as siak_url:
        change = routes_change(
            siak={"base_url": siak_url, "rate_limit": {"per_second": per_second, "burst": 1}},
            verify=False,
        )
        routes = write_routes(root / "routes.yaml", monkeypatch, change)
        env = hub_env(root, database_url, routes, redis_url)
        hub = open_hub(env)
        try:
            ingest(hub, births_csv(root / "births.csv", n), n)
            started = time.perf_counter()
            running = [
                Worker.start(env, root / f"worker-{i}.log", until_idle=True)
                for i in range(1, workers + 1)
            ]
            try:
                for worker in running:
                    code = worker.wait(timeout=max(60.0, 4 * n / per_second))
                    if code != 0:
                        raise RuntimeError(f"hub worker exited {code}:\n{worker.output()}")
            finally:
                for worker in running:
                    worker.kill()
            seconds = time.perf_counter() - started
            siak = sim_stats(siak_url)
            store = read_store(hub)
        finally:
            hub.close()
    notes = {"done per worker": [w.counts().get("done", 0) for w in running]}
    return Outcome("rate", n, seconds, siak=siak, dukcapil=None, notes=notes, **store)

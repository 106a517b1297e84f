"""Month-end peak benchmark: many uploads in minutes while hundreds of users read status.

```sh
.venv/bin/python -m bench.peak                                   # 100,000 records, 500 readers
.venv/bin/python -m bench.peak --records 5000 --files 10 --upload-seconds 60 --read-seconds 60
```

The field figures are 10,000+ transactions an hour at month end with 500 concurrent users;
this replays ten times that: `--records` (100,000) births in `--files` CSV files uploaded at
even intervals over `--upload-seconds` (an hour's worth compressed into minutes), through two
`hub serve --no-dispatcher` processes, while `--workers` `hub worker` processes deliver to the
SIAK simulator (hub limit `--rate`/s, shared in Redis) and `--readers` keep-alive connections
(`bench/loadgen.py`, closed loop: each sends its next request when the last is answered)
read `GET /api/v1/batches/{id}` and `GET /api/v1/stats`, half on each API, for
`--read-seconds` from the first upload. PostgreSQL (a fresh schema) and Redis (a flushed
database) are the machine's.

Reports the reads (requests, req/s, p50, p99, errors) per endpoint, the uploads (each answered
202 and ended `done`), and the seconds from the first upload until the last record was
delivered (the latest outbox `done_at`); checks every record delivered once at SIAK.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.siak import simulator as siak_sim
from bench.delivery_scenarios import (
    Worker,
    flush_redis,
    hub_env,
    open_hub,
    postgres_schema,
    quiet_injected_failures,
    routes_change,
    sim_stats,
)
from bench.loadgen import LoadResult, load
from bench.scale_scenarios import (
    epoch_seconds,
    record_statuses,
    start_apis,
    start_process,
    stop,
    upload_and_wait,
    wait_until,
    write_files,
)
from hub.api.principal import Principal
from hub.api.tokens import TokenService
from hub.store.tables import outbox
from tests.routing import write_routes

DEFAULT_PG = os.environ.get(
    "HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"


@dataclass
class PeakOutcome:
    records: int
    readers: int
    reads: dict[str, LoadResult]
    uploads: list[dict[str, Any]]
    upload_seconds: float  # first upload sent -> last batch done
    last_delivery_seconds: float  # first upload sent -> the latest outbox done_at
    statuses: dict[str, int]
    siak: dict[str, Any]
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    notes: dict[str, Any] = field(default_factory=dict)


def _reads(
    targets: list[tuple[int, str]], readers: int, seconds: float, token: str
) -> dict[str, LoadResult]:
    """`readers` connections spread over `targets` (port, path), all in one event loop."""
    share = max(1, readers // len(targets))
    auth = {"Authorization": f"Bearer {token}"}

    async def run() -> list[LoadResult]:
        return list(
            await asyncio.gather(
                *(
                    load("127.0.0.1", port, path, connections=share, seconds=seconds, headers=auth)
                    for port, path in targets
                )
            )
        )

    results = asyncio.run(run())
    merged: dict[str, LoadResult] = {}
    for (_, path), result in zip(targets, results, strict=True):
        name = "GET /api/v1/batches/{id}" if "/batches/" in path else "GET " + path
        into = merged.setdefault(name, LoadResult(seconds=result.seconds))
        into.requests += result.requests
        into.errors += result.errors
        into.latencies += result.latencies
        for status, n in result.statuses.items():
            into.statuses[status] = into.statuses.get(status, 0) + n
    return merged


def peak(root: Path, monkeypatch: pytest.MonkeyPatch, args: argparse.Namespace) -> PeakOutcome:
    n = args.records
    flush_redis(args.redis_url)
    paths = write_files(root / "files", n, args.files)
    options = siak_sim.SimulatorOptions(latency=(0.005, 0.015), seed=13)
    processes: list[Worker] = []
    with (
        postgres_schema(args.pg_url) as database_url,
        quiet_injected_failures(),
        siak_sim.running(options) as siak_url,
    ):
        change = routes_change(
            siak={
                "base_url": siak_url,
                "timeout": 2,
                "rate_limit": {"per_second": args.rate, "burst": 1},
            },
            verify=False,
        )
        routes = write_routes(root / "routes.yaml", monkeypatch, change)
        env = {
            **hub_env(root, database_url, routes, args.redis_url),
            "HUB_API_RATE": "100000",
            "HUB_API_BURST": "100000",
            "HUB_API_DAILY_QUOTA": "1000000000",
        }
        hub = open_hub(env)
        try:
            token = TokenService(hub.engine, hub.protector).issue(
                Principal.for_role("user:bench-peak", "admin", ""), ttl=7200
            )
            apis, bases = start_apis(2, env, root, token)
            processes += apis
            processes += [
                start_process(["worker"], env, root / f"worker-{i}.log")
                for i in range(1, args.workers + 1)
            ]

            started_wall = time.time()
            started = time.perf_counter()
            first = upload_and_wait(bases[0], token, paths[0], args.timeout)
            batch_path = f"/api/v1/batches/{first['batch_id']}"
            ports = [int(base.rsplit(":", 1)[1]) for base in bases]
            targets = [(p, path) for p in ports for path in (batch_path, "/api/v1/stats")]
            reads: dict[str, LoadResult] = {}
            reader = threading.Thread(
                target=lambda: reads.update(
                    _reads(targets, args.readers, args.read_seconds, token)
                ),
                name="readers",
            )
            reader.start()
            interval = args.upload_seconds / max(1, len(paths) - 1)

            def timed(k: int, path: Path) -> dict[str, Any]:
                time.sleep(max(0.0, started + k * interval - time.perf_counter()))
                return upload_and_wait(bases[k % 2], token, path, args.timeout)

            with ThreadPoolExecutor(max_workers=len(paths)) as pool:
                futures = [pool.submit(timed, k, p) for k, p in enumerate(paths) if k]
                uploads = [first, *(f.result() for f in futures)]
            upload_seconds = time.perf_counter() - started
            # a batch that failed stored nothing: wait for the records that were accepted
            expected = sum(int(u["valid"]) for u in uploads if u["status"] == "done")

            def delivered() -> bool:
                with hub.engine.connect() as conn:
                    return record_statuses(conn).get("delivered", 0) >= expected

            wait_until(delivered, args.timeout, f"{expected} records are delivered", poll=0.5)
            reader.join()
            stop(processes)
            deadlocks = {
                role: sum(
                    log.read_text("utf-8", errors="replace").count("DeadlockDetected")
                    for log in root.glob(f"{role}-*.log")
                )
                for role in ("api", "worker")
            }
            siak = sim_stats(siak_url)
            with hub.engine.connect() as conn:
                statuses = record_statuses(conn)
                last_done = conn.execute(
                    sa.select(sa.func.max(outbox.c.done_at)).where(outbox.c.kind == "deliver")
                ).scalar_one()
        finally:
            # SIGTERM first: `hub serve` is granian, whose worker outlives a SIGKILLed master
            stop(processes, timeout=15)
            hub.close()
    return PeakOutcome(
        records=n,
        readers=args.readers,
        reads=reads,
        uploads=uploads,
        upload_seconds=upload_seconds,
        last_delivery_seconds=epoch_seconds(str(last_done)) - started_wall,
        statuses=statuses,
        siak=siak,
        load=os.getloadavg(),
        notes={"deadlocks": deadlocks},
    )


def accepted(outcome: PeakOutcome) -> int:
    """Records in batches that ended `done` (a failed batch stores nothing)."""
    return sum(int(u["valid"]) for u in outcome.uploads if u["status"] == "done")


def delivered_once(outcome: PeakOutcome) -> bool:
    """Every accepted record delivered, and applied once by SIAK."""
    n = accepted(outcome)
    return (
        outcome.statuses == {"delivered": n}
        and outcome.siak.get("effects") == n
        and outcome.siak.get("identities_applied_more_than_once") == 0
    )


def report(outcome: PeakOutcome, args: argparse.Namespace) -> str:
    ok_uploads = sum(1 for u in outcome.uploads if u["status"] == "done")
    once = delivered_once(outcome)
    reasons = Counter(u["error"] for u in outcome.uploads if u["status"] != "done")
    failed = "; ".join(f"{n} x {reason[:100]!r}" for reason, n in reasons.items())
    lines = [
        f"{outcome.records:,} births in {len(outcome.uploads)} files uploaded over "
        f"{args.upload_seconds:g} s through 2 API processes, {args.workers} workers, SIAK limit "
        f"{args.rate}/s; {outcome.readers} closed-loop readers for {args.read_seconds:g} s; "
        f"{os.cpu_count()} cores shared with the load generator and the simulator",
        "",
        "| reads | requests | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, result in outcome.reads.items():
        lines.append(
            f"| {name} | {result.requests:,} | {result.rps:,.0f} | {result.p50:.1f} | "
            f"{result.p99:.1f} | {result.errors} |"
        )
    lines += [
        "",
        f"- uploads: {ok_uploads}/{len(outcome.uploads)} done (all answered 202), the last "
        f"finished after {outcome.upload_seconds:.1f} s; failed: {failed or 'none'}",
        f"- deadlocks PostgreSQL reported (`DeadlockDetected` in the logs): "
        f"{outcome.notes.get('deadlocks', {})}",
        f"- the last record delivered {outcome.last_delivery_seconds:.1f} s after the first "
        f"upload ({accepted(outcome) / outcome.last_delivery_seconds:.0f} records/s end to end)",
        f"- every accepted record ({accepted(outcome):,} of {outcome.records:,}) delivered "
        f"once at SIAK: {'yes' if once else 'NO'} "
        f"(statuses {outcome.statuses}, effects {outcome.siak.get('effects')}, most arrivals in "
        f"1 s {outcome.siak.get('max_in_any_1s_window')})",
        f"- load average at the end {outcome.load[0]:.1f}",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.peak", description=__doc__.split("\n")[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--upload-seconds", type=float, default=360.0)
    p.add_argument("--readers", type=int, default=500)
    p.add_argument("--read-seconds", type=float, default=360.0)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--rate", type=int, default=1000, help="the hub's SIAK limit per second")
    p.add_argument("--timeout", type=float, default=7200.0)
    p.add_argument("--pg-url", default=DEFAULT_PG)
    p.add_argument("--redis-url", default=DEFAULT_REDIS, help="a database of its own: flushed")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = p.parse_args(argv)
    if args.files < 2 or args.records < args.files or args.readers < 4 or args.workers < 1:
        p.error("at least 2 files, a record per file, 4 readers and 1 worker")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="peak-", dir=args.out) as tmp,
        pytest.MonkeyPatch.context() as monkeypatch,
    ):
        outcome = peak(Path(tmp), monkeypatch, args)
    text = report(outcome, args)
    print(text)
    (args.out / "peak.md").write_text(text + "\n", "utf-8")
    every_upload = all(u["status"] == "done" for u in outcome.uploads)
    return 0 if every_upload and delivered_once(outcome) else 1


if __name__ == "__main__":
    raise SystemExit(main())

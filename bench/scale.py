"""Scale-out benchmark: the hub as two API processes and 1, 2 or 3 workers over PostgreSQL
and Redis, with records uploaded through both APIs at once.

```sh
make bench-scale                  # = .venv/bin/python -m bench.scale (20,000 records)
.venv/bin/python -m bench.scale --records 5000 --workers 1,3 --rate 1000
```

Each run is `bench.scale_scenarios.scale_out` on a fresh PostgreSQL schema and a flushed
Redis database: the SIAK simulator (no limit of its own, it measures arrivals), two
`hub serve --no-dispatcher`, two `hub jobs scheduler` (aggregates every 10 s), the records as
`--files` CSV files uploaded through both APIs at once, then `--workers` `hub worker`
processes; with 3 workers one is killed with SIGKILL once SIAK holds a third (`--no-kill`
turns that off). The hub's shared SIAK rate limit is `--rate` per second (burst 1).

Prints a Markdown table (and writes it with every run's figures as JSON to `--out`):
seconds from the first upload to the last delivery, records/s end to end and for delivery
alone (workers started -> last delivery), the most SIAK requests in any second against the
limit, duplicates at SIAK, ticks run twice, `hub audit verify`; then where the limit is: the
load average and the CPU the hub's processes used against what the machine's cores offered.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.delivery_scenarios import postgres_schema
from bench.scale_scenarios import ScaleOutcome, scale_out

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
DEFAULT_PG = os.environ.get(
    "HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"


def run_one(args: argparse.Namespace, workers: int) -> ScaleOutcome | str:
    """One run in a fresh directory and schema; its outcome, or the error as text."""
    kill = workers >= 3 and not args.no_kill
    root = Path(tempfile.mkdtemp(prefix=f"scale-{workers}-", dir=args.out))
    print(f"  {workers} worker(s){', one killed' if kill else ''}: {root.name} ...", flush=True)
    try:
        with pytest.MonkeyPatch.context() as monkeypatch, postgres_schema(args.pg_url) as url:
            outcome = scale_out(
                root,
                monkeypatch,
                url,
                args.redis_url,
                args.records,
                workers=workers,
                kill=kill,
                files=args.files,
                per_second=args.rate,
                timeout=args.timeout,
            )
    except Exception as exc:  # report it in the table, run the others
        traceback.print_exc()
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    finally:
        if not args.keep_runs:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"    {outcome.total_seconds:.1f} s, delivered {outcome.delivered:,}/{outcome.records:,}",
        flush=True,
    )
    return outcome


def verdict(outcome: ScaleOutcome) -> str:
    """The proof's checks on one run: what failed, or `ok`."""
    failed = []
    if outcome.statuses != {"delivered": outcome.records} or outcome.dead_letters:
        failed.append(f"statuses {outcome.statuses}, dead {outcome.dead_letters}")
    if outcome.siak.get("effects") != outcome.records or outcome.duplicates:
        failed.append(f"SIAK effects {outcome.siak.get('effects')}, twice {outcome.duplicates}")
    if outcome.siak.get("max_in_any_1s_window", 0) > outcome.rate_bound:
        failed.append("rate limit exceeded")
    if outcome.duplicate_ticks or not outcome.job_ticks:
        failed.append(f"ticks {len(outcome.job_ticks)}, twice {outcome.duplicate_ticks}")
    if outcome.audit_verify_code != 0:
        failed.append("hub audit verify failed")
    return "; ".join(failed) or "ok"


def table(results: dict[int, ScaleOutcome | str], args: argparse.Namespace) -> str:
    cores = os.cpu_count() or 1
    lines = [
        f"{args.records:,} births as {args.files} CSV files through 2 API processes at once, "
        f"SIAK limit {args.rate}/s shared in Redis, PostgreSQL, {cores} cores, on loopback",
        "",
        "| workers | records | seconds | records/s end-to-end | delivery records/s | "
        "max SIAK requests in 1 s / limit | duplicates | ticks (twice) | audit verify | checks |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for workers, outcome in results.items():
        if isinstance(outcome, str):
            lines.append(f"| {workers} | | | | | | | | | **failed**: {outcome} |")
            continue
        label = f"{workers} (1 killed)" if outcome.killed else str(workers)
        lines.append(
            f"| {label} | {outcome.records:,} | {outcome.total_seconds:.1f} | "
            f"{outcome.end_to_end_rate:.0f} | {outcome.delivery_rate:.0f} | "
            f"{outcome.siak.get('max_in_any_1s_window', 0)} / {outcome.rate_bound} | "
            f"{outcome.duplicates} | {len(outcome.job_ticks)} ({outcome.duplicate_ticks}) | "
            f"{'ok' if outcome.audit_verify_code == 0 else 'FAILED'} | {verdict(outcome)} |"
        )
    lines += ["", "Where the limit is:", ""]
    for workers, outcome in results.items():
        if isinstance(outcome, str):
            continue
        cpu = outcome.cpu
        share = outcome.delivery_rate / outcome.per_second if outcome.per_second else 0.0
        lines.append(
            f"- {workers} worker(s): delivery at {share:.0%} of the SIAK limit; the workers "
            f"used {cpu.get('workers', 0.0):.0f} CPU s in {outcome.delivery_seconds:.0f} s "
            f"({cpu.get('workers', 0.0) / max(outcome.delivery_seconds, 0.001):.2f} cores, "
            f"{1000 * cpu.get('workers', 0.0) / outcome.records:.1f} ms per record), "
            f"the machine was {cpu.get('machine busy share', 0.0):.0%} busy meanwhile "
            f"({cores} cores, other tenants included); the APIs used "
            f"{cpu.get('apis', 0.0):.0f} CPU s, this process (simulator, uploads) "
            f"{cpu.get('this process', 0.0):.0f}; load average at the end {outcome.load[0]:.1f}; "
            f"upload and ingest {outcome.upload_seconds:.1f} s"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--workers", default="1,2,3", help="comma-separated worker counts")
    p.add_argument("--files", type=int, default=8, help="CSV files, split over the 2 APIs")
    p.add_argument("--rate", type=int, default=1000, help="the hub's SIAK limit per second")
    p.add_argument("--no-kill", action="store_true", help="kill no worker, even with 3")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per phase")
    p.add_argument("--pg-url", default=DEFAULT_PG)
    p.add_argument("--redis-url", default=DEFAULT_REDIS, help="a database of its own: flushed")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--keep-runs", action="store_true", help="keep each run's directory")
    args = p.parse_args(argv)
    try:
        args.worker_counts = [int(w) for w in str(args.workers).split(",") if w.strip()]
    except ValueError:
        p.error(f"--workers: comma-separated numbers, not {args.workers!r}")
    if not args.worker_counts or min(args.worker_counts) < 1:
        p.error("--workers: at least one worker per run")
    if args.records < args.files or args.rate < 1:
        p.error("--records must be at least --files, --rate at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {workers: run_one(args, workers) for workers in args.worker_counts}
    text = table(results, args)
    print(text)
    (args.out / "scale.md").write_text(text + "\n", "utf-8")
    figures = {
        str(w): (o if isinstance(o, str) else {**vars(o), "verdict": verdict(o)})
        for w, o in results.items()
    }
    (args.out / "scale.json").write_text(json.dumps(figures, indent=2, default=str), "utf-8")
    failed = [o for o in results.values() if isinstance(o, str) or verdict(o) != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

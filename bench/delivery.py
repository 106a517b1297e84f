"""Delivery benchmark: the delivery proofs at full size, with their figures.

    python -m bench.delivery [--fault-records 5000] [--crash-records 3000]
                             [--rate-records 3000] [--rate-workers 3] [--rate-repeat 3]
                             [--only fault,crash,rate] [--out bench/out]

Runs the scenarios of `bench/delivery_scenarios.py` against the sandbox simulators (uvicorn
in this process):

1. fault injection: kelahiran records verified (Dukcapil) and delivered (SIAK) by a dispatcher
   in this process, both simulators failing about 30 % of requests (503, stalls beyond the
   connector timeout, connections cut mid-answer, 429); SQLite. One run.
2. crash: `hub worker` killed with SIGKILL once SIAK accepted a third, then
   `hub worker --until-idle` (the dead worker's leases run out after 13 s); SQLite. One run.
3. rate: three `hub worker` processes on one PostgreSQL schema sharing Redis, SIAK limited to
   50/s with burst 1. Median of `--rate-repeat` runs (utilisation: median, worst window: max).

Prints a Markdown table and writes it to `OUT/delivery.md`, every run's figures to
`OUT/delivery.json`. PostgreSQL comes from `--pg-url` (default `$HUB_TEST_DATABASE_URL` or the
local server), Redis from `--redis-url` (default database 14 of the local server, flushed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from bench import delivery_scenarios as scenarios
from bench.delivery_scenarios import FaultMix, Outcome, percentiles

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
DEFAULT_PG = os.environ.get(
    "HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
#: The fault mix of the proof (tests/test_delivery_proof.py).
FAULTS = FaultMix()


# --------------------------------------------------------------------------- running


Scenario = Callable[[Path, pytest.MonkeyPatch], Outcome]


def _run(name: str, work: Path, keep: bool, scenario: Scenario) -> Outcome | str:
    """One scenario run in a fresh directory, its environment changes undone afterwards;
    its Outcome, or the error as text."""
    root = Path(tempfile.mkdtemp(prefix=f"delivery-{name}-", dir=work))
    print(f"  {name}: {root.name} ...", flush=True)
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            outcome = scenario(root, monkeypatch)
    except Exception as exc:  # report it in the table, run the other scenarios
        traceback.print_exc()
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"    {outcome.seconds:.1f} s, delivered {outcome.delivered:,}/{outcome.records:,}, "
        f"SIAK requests {outcome.siak.get('requests', 0):,}, dead {outcome.dead_letters}",
        flush=True,
    )
    return outcome


def run_all(args: argparse.Namespace) -> dict[str, list[Outcome | str]]:
    work = args.out / "delivery-runs"
    work.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    results: dict[str, list[Outcome | str]] = {}
    if "fault" in only:
        print(f"fault injection: {args.fault_records:,} records", flush=True)
        results["fault"] = [
            _run(
                "fault",
                work,
                args.keep_runs,
                lambda root, mp: scenarios.fault_injection(
                    root, mp, args.fault_records, mix=FAULTS
                ),
            )
        ]
    if "crash" in only:
        print(f"crash: {args.crash_records:,} records", flush=True)
        results["crash"] = [
            _run(
                "crash",
                work,
                args.keep_runs,
                lambda root, mp: scenarios.crash(root, mp, args.crash_records),
            )
        ]
    if "rate" in only:
        print(
            f"rate: {args.rate_records:,} records, {args.rate_workers} workers, "
            f"{args.rate_repeat} run(s)",
            flush=True,
        )

        def rate(root: Path, monkeypatch: pytest.MonkeyPatch) -> Outcome:
            with scenarios.postgres_schema(args.pg_url) as url:
                return scenarios.rate(
                    root,
                    monkeypatch,
                    url,
                    args.redis_url,
                    args.rate_records,
                    workers=args.rate_workers,
                )

        results["rate"] = [
            _run("rate", work, args.keep_runs, rate) for _ in range(args.rate_repeat)
        ]
    return results


# --------------------------------------------------------------------------- report


def _ms(values: Sequence[float]) -> str:
    cuts = percentiles(values)
    if any(math.isnan(c) for c in cuts):
        return "—"
    return " / ".join(f"{c:,.0f}" for c in cuts)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _injected(o: Outcome) -> str:
    by: dict[str, list[str]] = {}
    for key, n in o.injected().items():
        system, kind = key.split(" ", 1)
        by.setdefault(system, []).append(f"{kind} {n:,}")
    if not by:
        return "none"
    requests = int(o.siak.get("requests", 0)) + int((o.dukcapil or {}).get("requests", 0))
    failed = sum(o.injected().values())
    parts = [f"{'SIAK' if s == 'siak' else 'Dukcapil'}: {', '.join(k)}" for s, k in by.items()]
    return "; ".join(parts) + f" ({failed / requests:.1%} of {requests:,} requests)"


def column(runs: list[Outcome | str]) -> dict[str, str]:
    """One scenario's cells, by measure; medians over runs where there are several."""
    done = [r for r in runs if isinstance(r, Outcome)]
    failed = [r for r in runs if isinstance(r, str)]
    if not done:
        return {"records": f"FAILED: {failed[0] if failed else 'not run'}"}
    o = done[0]
    many = len(done) > 1

    def med(get: Callable[[Outcome], float]) -> float:
        return float(statistics.median(get(r) for r in done))

    util = _median([r.utilisation for r in done])
    utils = [r.utilisation for r in done if r.utilisation is not None]
    util_cell = "—"
    if util is not None:
        util_cell = f"{util:.1f}/s = {util / scenarios.SIAK_RATE:.1%}"
        if many:
            util_cell += f" (runs {', '.join(f'{u:.1f}' for u in utils)})"
    retries = f"{med(lambda r: r.retries):,.0f}"
    if o.audit.get("outbox.verify.retry"):
        retries += (
            f" (verify {o.audit.get('outbox.verify.retry', 0):,}, "
            f"deliver {o.audit.get('outbox.deliver.retry', 0):,})"
        )
    cells = {
        "runs": f"{len(done)}" + (f" (+{len(failed)} failed)" if failed else ""),
        "records": f"{o.records:,}",
        "delivered": f"{min(r.delivered for r in done):,}",
        "total time, s": f"{med(lambda r: r.seconds):.1f}",
        "SIAK requests": f"{med(lambda r: r.siak.get('requests', 0)):,.0f}",
        "Dukcapil requests": (
            f"{int(o.dukcapil.get('requests', 0)):,}" if o.dukcapil is not None else "—"
        ),
        "failures injected": _injected(o),
        "retries": retries,
        "SIAK 409 (already had it)": f"{med(lambda r: r.siak.get('duplicates', 0)):,.0f}",
        "dead letters": f"{max(r.dead_letters for r in done):,}",
        "effects": f"{med(lambda r: r.siak.get('effects', 0)):,.0f}",
        "duplicates applied (must be 0)": (
            f"{max(int(r.siak.get('identities_applied_more_than_once', 0)) for r in done)}"
        ),
        "audit chain": "ok" if all(r.chain_ok for r in done) else "BROKEN",
        "utilisation of 50/s": util_cell if o.scenario == "rate" else "—",
        "worst 1 s window (SIAK arrivals)": (
            f"{max(int(r.siak.get('max_in_any_1s_window', 0)) for r in done)}"
        ),
        "delivery latency p50/p95/p99, ms": _ms([x for r in done for x in r.delivery_ms]),
        "request latency p50/p95/p99, ms": _ms([x for r in done for x in r.request_ms]),
    }
    if o.scenario == "crash":
        notes = o.notes
        cells["notes"] = (
            f"killed after {notes['killed after s']} s with {notes['accepted at kill']:,} "
            f"accepted and {notes['in flight at kill']} in flight"
        )
    if o.scenario == "rate":
        shares = [r.notes.get("done per worker") for r in done]
        cells["notes"] = "done per worker: " + "; ".join(str(s) for s in shares)
    return cells


TITLES = {
    "fault": "fault injection",
    "crash": "crash (kill -9)",
    "rate": "rate, 3 workers",
}


def render_markdown(results: dict[str, list[Outcome | str]], info: dict[str, Any]) -> str:
    names = list(results)
    columns = {name: column(results[name]) for name in names}
    measures: list[str] = []
    for cells in columns.values():
        measures += [m for m in cells if m not in measures]
    lines = [
        "# Delivery benchmark",
        "",
        f"{info['started']} · {info['cpu']} ({info['cpus']} CPUs) · Python {info['python']} · "
        f"load average at start {info['loadavg_start']}, at end {info['loadavg_end']}",
        "",
        "| measure | " + " | ".join(TITLES.get(n, n) for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for measure in measures:
        row = [columns[n].get(measure, "") for n in names]
        lines.append(f"| {measure} | " + " | ".join(c.replace("|", "/") for c in row) + " |")
    lines += [
        "",
        "Delivery latency: outbox row created -> done, from the store (for the fault run the "
        "row is created when verification passed; for crash and rate every row is queued at "
        "once, so it includes the wait behind the backlog). Request latency: `latency_ms` of "
        "each `outbox.deliver.ok` audit event (the successful request only). Utilisation: "
        "(accepted - 1) / (last arrival - first arrival) at the SIAK simulator. Rate: median "
        "of the runs, worst window and dead letters the maximum.",
    ]
    return "\n".join(lines) + "\n"


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _as_json(results: dict[str, list[Outcome | str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, runs in results.items():
        out[name] = [
            run
            if isinstance(run, str)
            else {
                "records": run.records,
                "seconds": run.seconds,
                "statuses": run.statuses,
                "siak": run.siak,
                "dukcapil": run.dukcapil,
                "dead_letters": run.dead_letters,
                "audit": run.audit,
                "chain_ok": run.chain_ok,
                "utilisation": run.utilisation,
                "delivery_ms_p50_p95_p99": percentiles(run.delivery_ms),
                "request_ms_p50_p95_p99": percentiles(run.request_ms),
                "dispatch": run.dispatch,
                "notes": run.notes,
            }
            for run in runs
        ]
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__.split("\n")[0])
    p.add_argument("--fault-records", type=int, default=5000)
    p.add_argument("--crash-records", type=int, default=3000)
    p.add_argument("--rate-records", type=int, default=3000)
    p.add_argument("--rate-workers", type=int, default=3)
    p.add_argument("--rate-repeat", type=int, default=3)
    p.add_argument("--only", default="fault,crash,rate", help="comma-separated scenarios")
    p.add_argument("--pg-url", default=DEFAULT_PG)
    p.add_argument("--redis-url", default=DEFAULT_REDIS, help="a database of its own: flushed")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--keep-runs", action="store_true", help="keep each run's directory")
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(TITLES)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    for name in ("fault_records", "crash_records", "rate_records"):
        if not 1 <= getattr(args, name) <= scenarios.MAX_RECORDS:
            p.error(f"--{name.replace('_', '-')}: 1 to {scenarios.MAX_RECORDS}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": _loadavg(),
    }
    started = time.perf_counter()
    results = run_all(args)
    info["loadavg_end"] = _loadavg()
    info["seconds"] = round(time.perf_counter() - started, 1)
    report = render_markdown(results, info)
    print()
    print(report)
    (args.out / "delivery.md").write_text(report, "utf-8")
    (args.out / "delivery.json").write_text(
        json.dumps({"info": info, "runs": _as_json(results)}, indent=2, default=str), "utf-8"
    )
    bad = any(
        isinstance(r, str)
        or r.delivered != r.records
        or r.dead_letters
        or r.siak.get("identities_applied_more_than_once")
        for runs in results.values()
        for r in runs
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

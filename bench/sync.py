"""Benchmark: a 100,000-row pull from a legacy table through the PostgreSQL ODBC driver.

```sh
make bench-sync                  # = .venv/bin/python -m bench.sync
.venv/bin/python -m bench.sync --rows 100000 --page-rows 5000 --out bench/out
```

Creates a SIAK-like birth register (upper-case columns, NUMERIC(16,0) NIKs, numeric region
parts, dates as text, a rising `RV`) in a schema of its own in PostgreSQL database `test`
(`--pg`), then runs three measures, each in a fresh child process whose peak RSS comes from
`os.wait4`:

- hub sync: `hub.sync.run_source`, pages of `--page-rows` through `SQLServerSource` and the
  whole pipeline (map, normalise, validate, deduplicate, seal PII, store in a fresh SQLite hub);
- source only: the same pages from `SQLServerSource.pages`, nothing stored;
- pyodbc fetchmany (peer): one `SELECT ... ORDER BY NO_REG`, a plain `fetchmany(5000)` loop.

The cursor column is indexed together with the key (`RV, NO_REG`), as a cursor column should
be on a real server: each page is one index range scan.

Every measure uses the same connection string (`UseDeclareFetch=1;Fetch=5000`, so the driver
itself holds one block of rows, not the whole result). Times are the pull itself (connect to
last row), not the interpreter start. Output: a Markdown table on stdout and in
`bench/out/sync.md`, the numbers in `bench/out/sync.json`. The schema is dropped afterwards.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.adapters.legacy_db import COLUMNS, MAPPING  # the tests' legacy register

ROOT = Path(__file__).resolve().parent.parent
KEY = base64.b64encode(bytes(range(32))).decode()


def connection_string(pg: str) -> str:
    host, _, rest = pg.partition(":")
    port, _, database = rest.partition("/")
    return (
        f"DRIVER={{PostgreSQL Unicode}};Server={host};Port={port or 5432};"
        f"Database={database or 'test'};UID=postgres;UseDeclareFetch=1;Fetch=5000"
    )


def create_table(conn_str: str, schema: str, rows: int) -> None:
    """The register, filled on the server (generate_series): distinct natural keys, valid rows."""
    import pyodbc

    conn = pyodbc.connect(conn_str, autocommit=True)
    cur = conn.cursor()
    cur.execute(f'CREATE SCHEMA "{schema}"')
    cur.execute(
        f'CREATE TABLE "{schema}"."LAHIR" ("NO_REG" INTEGER PRIMARY KEY, "NAMA_LGKP" VARCHAR(100), '
        '"JENIS_KLMIN" INTEGER, "TMPT_LHR" VARCHAR(60), "TGL_LHR" VARCHAR(20), "ANAK_KE" INTEGER, '
        '"NIK_IBU" NUMERIC(16,0), "NAMA_LGKP_IBU" VARCHAR(100), "NO_KK" NUMERIC(16,0), '
        '"NO_PROP" INTEGER, "NO_KAB" INTEGER, "NO_KEC" INTEGER, "NO_KEL" INTEGER, '
        '"NIK_PELAPOR" NUMERIC(16,0), "NAMA_PELAPOR" VARCHAR(100), "TGL_LAPOR" VARCHAR(20), '
        '"RV" BIGINT)'
    )
    cur.execute(
        f"INSERT INTO \"{schema}\".\"LAHIR\" SELECT i, 'ANAK NOMOR ' || i, 1 + i % 2, 'BANDUNG', "
        "lpad((1 + (i / 9999) % 28)::text, 2, '0') || '/08/2025', 1, "
        "3273014507900000 + 1 + i % 9999, 'SITI AMINAH', 3273011203150004, 32, 73, 1, 1001, "
        "3273010101880002, 'BUDI SANTOSO', '30/08/2025', i "
        f"FROM generate_series(1, {rows}) AS i"
    )
    cur.execute(f'CREATE INDEX ON "{schema}"."LAHIR" ("RV", "NO_REG")')
    cur.execute(f'ANALYZE "{schema}"."LAHIR"')
    conn.close()


def drop_schema(conn_str: str, schema: str) -> None:
    import pyodbc

    conn = pyodbc.connect(conn_str, autocommit=True)
    conn.cursor().execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()


# ------------------------------------------------------------------ children


def child_hub(conn_str: str, table: str, page_rows: int, work: Path) -> dict[str, Any]:
    from starlette.datastructures import Secret

    from hub.context import Hub
    from hub.routes import SourceConfig
    from hub.settings import Settings
    from hub.sync import run_source

    work.mkdir(parents=True, exist_ok=True)
    settings = Settings(f"sqlite:///{work / 'hub.db'}", work, Secret(KEY), work / "hub.key")
    hub = Hub.open(settings)
    config = SourceConfig(
        name="bench", adapter="sqlserver", record_type="kelahiran", key="NO_REG",
        strategy="cursor", cursor_column="RV", connection=conn_str, table=table,
        columns=MAPPING, page_rows=page_rows,
    )  # fmt: skip
    start = time.perf_counter()
    report = run_source(hub, config)
    seconds = time.perf_counter() - start
    hub.close()
    return {"rows": report.counts.rows, "valid": report.counts.valid, "pages": report.pages,
            "invalid": report.counts.invalid, "seconds": seconds}  # fmt: skip


def child_source(conn_str: str, table: str, page_rows: int) -> dict[str, Any]:
    from adapters.sqlserver.source import SQLServerSource

    config = {"name": "bench", "connection": conn_str, "table": table, "key": "NO_REG",
              "strategy": "cursor", "cursor_column": "RV", "columns": MAPPING,
              "page_rows": page_rows}  # fmt: skip
    start = time.perf_counter()
    rows = 0
    with SQLServerSource(config) as source:
        for page in source.pages(None):
            rows += len(page.rows)
    return {"rows": rows, "seconds": time.perf_counter() - start}


def child_peer(conn_str: str, table: str) -> dict[str, Any]:
    import pyodbc

    start = time.perf_counter()
    conn = pyodbc.connect(conn_str, autocommit=True)
    cursor = conn.cursor()
    schema, _, name = table.partition(".")
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    cursor.execute(f'SELECT {columns} FROM "{schema}"."{name}" ORDER BY "NO_REG"')
    rows = 0
    while chunk := cursor.fetchmany(5000):
        rows += len(chunk)
    conn.close()
    return {"rows": rows, "seconds": time.perf_counter() - start}


def run_child(args: list[str]) -> dict[str, Any]:
    """Run one measure in a fresh process; its JSON result plus its own peak RSS."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.sync", "--child", *args],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    output = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"measure {args[0]} failed")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sync", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--page-rows", type=int, default=5000)
    parser.add_argument("--pg", default="127.0.0.1:5432/test", help="host:port/database")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    conn_str = connection_string(args.pg)
    if args.child:
        kind, table = args.child[0], args.child[1]
        if kind == "hub":
            result = child_hub(conn_str, table, args.page_rows, Path(args.child[2]))
        elif kind == "source":
            result = child_source(conn_str, table, args.page_rows)
        else:
            result = child_peer(conn_str, table)
        print(json.dumps(result))
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    schema = f"bench_sync_{uuid.uuid4().hex[:10]}"
    table = f"{schema}.LAHIR"
    create_table(conn_str, schema, args.rows)
    work = args.out / f"sync-{schema}"
    try:
        measures = {
            "hub sync (page 5,000, SQLite hub store)": run_child(["hub", table, str(work)]),
            "source only (SQLServerSource pages)": run_child(["source", table]),
            "pyodbc fetchmany 5,000 (peer)": run_child(["peer", table]),
        }
    finally:
        drop_schema(conn_str, schema)
        for path in sorted(work.glob("**/*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        if work.exists():
            work.rmdir()
    peer = measures["pyodbc fetchmany 5,000 (peer)"]
    peer_rate = peer["rows"] / peer["seconds"]
    lines = [
        f"Pull of {args.rows:,} legacy rows through PostgreSQL ODBC (psqlodbcw, UseDeclareFetch), "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}",
        "",
        "| measure | rows | seconds | rows/s | peak RSS MB | vs peer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in measures.items():
        rate = m["rows"] / m["seconds"]
        lines.append(
            f"| {name} | {m['rows']:,} | {m['seconds']:.2f} | {rate:,.0f} | "
            f"{m['peak_rss_mb']:.0f} | {rate / peer_rate:.2f}x |"
        )
    table_md = "\n".join(lines)
    print(table_md)
    (args.out / "sync.md").write_text(table_md + "\n", "utf-8")
    (args.out / "sync.json").write_text(
        json.dumps({"rows": args.rows, "measures": measures}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

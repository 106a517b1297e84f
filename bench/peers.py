"""Peer measurements on the benchmark files, each in a fresh subprocess pinned to one core.

* ``frictionless validate`` of the CSV through its documented Python API
  (``frictionless.validate(path, dialect=..., encoding=...)``), told about the ``;`` delimiter and
  the header on row 3 so that it reads the data rows; the number of rows it saw is checked against
  the file. Optionally with a Table Schema that states the kelahiran rules it can express
  (required cells, 16-digit NIKs, ranges, the natural key as primary key).
* ``pandas.read_excel(path, engine="openpyxl", dtype=str)`` merely reading the XLSX.
* Python's ``csv`` module merely reading the CSV (every row split into cells, nothing else):
  the floor under reading the file in Python.
* ``python-calamine`` merely reading the XLSX's sheet (the reader the hub uses): the floor under
  the hub's workbook ingest.
* The store alone: what one ``hub ingest`` run stored (its records and row issues, read from
  that run's database) written again into a fresh SQLite file through the ``sqlite3`` driver,
  with the hub's connection settings and in one transaction, with no Python work per row but
  the driver's. This is the floor under the hub's own writing: the hub cannot store its rows
  faster than this. With ``--bare`` the records lose their payload (no values, PII or source
  cells: ``data`` is ``{}``, the sealed columns are empty): the least any stored form of the
  same records and issues could write.

The parent times each child from spawn to exit (interpreter start and imports included, like the
hub's end-to-end run) and takes its peak RSS from ``os.wait4`` (the child's own ``ru_maxrss``).
Each child also prints what it measured inside (rows, errors, seconds) as one JSON line.

Child entry point: ``python -m bench.peers {frictionless,read_excel,csv_read,calamine,sqlite_store}
PATH
[--header-row 3]``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.generate import HEADER_ROW

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- running children


@dataclass
class Run:
    """One pinned child process."""

    cmd: list[str]
    returncode: int
    seconds: float  # wall time, spawn to exit
    peak_rss_mb: float  # ru_maxrss of the child, MiB
    stdout: str
    stderr: str
    pinning: str


def pinning(core: int = 0) -> tuple[list[str], Callable[[], None] | None, str]:
    """Command prefix / preexec hook that pins a child to ``core``, and a description."""
    taskset = shutil.which("taskset")
    if taskset:
        return [taskset, "-c", str(core)], None, f"taskset -c {core}"
    if hasattr(os, "sched_setaffinity"):

        def pin() -> None:
            os.sched_setaffinity(0, {core})

        return [], pin, f"sched_setaffinity({{{core}}})"
    return [], None, "none (no taskset, no sched_setaffinity)"


# Runs in a fresh, small interpreter between this process and the measured command: forks,
# execs the command, reaps it with wait4 and writes its wall time and ru_maxrss to argv[1].
# Why not wait4 on a child of this process directly: Linux folds the RSS of the address space a
# child had before exec (a copy of its parent's, or the parent's own with vfork) into the child's
# ru_maxrss, so every child of a big parent (this one holds the generated rows) would report at
# least the parent's size. The launcher is ~8 MB, below any measured Python process.
_LAUNCHER = """\
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write(f"{seconds!r} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_pinned(
    cmd: Sequence[str],
    *,
    core: int = 0,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> Run:
    """Run ``cmd`` pinned to one core; its wall time and its own peak RSS.

    ``cmd`` is started by a small launcher interpreter (see ``_LAUNCHER``) that times it from fork
    to exit and reports its ``ru_maxrss``. Output goes to temporary files (no pipe can fill up).
    On ``timeout`` the whole process group is killed.
    """
    prefix, preexec, how = pinning(core)
    full = [*prefix, *cmd]
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        usage_file = Path(tmp) / "usage"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(usage_file), *full],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            preexec_fn=preexec,  # only sets the CPU affinity, inherited by the command
            start_new_session=True,
        )
        killer = (
            threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
            if timeout
            else None
        )
        if killer:
            killer.start()
        try:
            returncode = proc.wait()
        finally:
            if killer:
                killer.cancel()
        outside = time.perf_counter() - t0
        try:
            secs_text, rss_text = usage_file.read_text().split()
            seconds, rss_mb = float(secs_text), int(rss_text) / 1024
        except (OSError, ValueError):  # killed before it could write
            seconds, rss_mb = outside, float("nan")
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return Run(full, returncode, seconds, rss_mb, stdout, stderr, how)


# --------------------------------------------------------------------------- results


@dataclass
class Measurement:
    """Repeated runs of one command on one file; medians over the repeats."""

    name: str
    path: str
    rows: int = 0  # rows the tool reported (or read)
    seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # last child's own JSON report
    error: str = ""
    pinning: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.seconds)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def rows_per_s(self) -> float:
        s = self.median_seconds
        return self.rows / s if self.seconds and s > 0 else float("nan")

    @property
    def max_rss_mb(self) -> float:
        return max(self.peak_rss_mb) if self.peak_rss_mb else float("nan")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            ok=self.ok,
            median_seconds=self.median_seconds if self.seconds else None,
            rows_per_s=self.rows_per_s if self.ok else None,
            max_peak_rss_mb=self.max_rss_mb if self.peak_rss_mb else None,
        )
        return d


def _child_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.peers", *args]


def _measure_child(
    name: str,
    path: Path,
    args: list[str],
    *,
    expected_rows: int | None,
    repeat: int,
    core: int,
    inside: bool = False,
) -> Measurement:
    """``repeat`` runs of a child; each timed spawn to exit, or by its own ``seconds_inside``
    when ``inside`` (a child whose set-up is not part of the measure)."""
    m = Measurement(name, str(path))
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    for _ in range(repeat):
        run = run_pinned(_child_cmd(*args), core=core, env=env, cwd=PROJECT_ROOT)
        m.pinning = run.pinning
        if run.returncode != 0:
            m.error = f"exit {run.returncode}: {run.stderr.strip()[-2000:]}"
            break
        try:
            m.detail = json.loads(run.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            m.error = f"unreadable child output: {run.stdout[-500:]!r}"
            break
        m.rows = int(m.detail["rows"])
        if expected_rows is not None and m.rows != expected_rows:
            m.error = f"{name} saw {m.rows} rows, the file has {expected_rows}"
            if m.detail.get("first_error"):
                m.error += f" ({m.detail['first_error']})"
            break
        m.seconds.append(float(m.detail["seconds_inside"]) if inside else run.seconds)
        m.peak_rss_mb.append(run.peak_rss_mb)
    return m


def measure_frictionless(
    csv_path: str | Path,
    *,
    expected_rows: int | None = None,
    repeat: int = 3,
    core: int = 0,
    header_row: int = HEADER_ROW,
    schema: str | Path | None = None,
) -> Measurement:
    """``frictionless.validate`` of the ``;`` CSV (inferred schema, or ``schema``)."""
    args = ["frictionless", str(csv_path), "--header-row", str(header_row)]
    name = "frictionless validate CSV"
    if schema is not None:
        args += ["--schema", str(schema)]
        name += " + schema"
    return _measure_child(
        name, Path(csv_path), args, expected_rows=expected_rows, repeat=repeat, core=core
    )


#: The read-only peers and floors: child tool -> the measure's name.
READERS = {
    "read_excel": "pandas.read_excel(openpyxl) XLSX",
    "csv_read": "Python csv module, read only",
    "calamine": "python-calamine XLSX, read only",
}


def measure_reader(
    tool: str,
    path: str | Path,
    *,
    expected_rows: int | None = None,
    repeat: int = 3,
    core: int = 0,
    header_row: int = HEADER_ROW,
) -> Measurement:
    """One of the `READERS` merely reading the file (every row below the header), nothing else:
    ``pandas.read_excel(engine="openpyxl", dtype=str)``, Python's ``csv.reader`` or
    ``python-calamine``."""
    return _measure_child(
        READERS[tool],
        Path(path),
        [tool, str(path), "--header-row", str(header_row)],
        expected_rows=expected_rows,
        repeat=repeat,
        core=core,
    )


def measure_sqlite_store(
    hub_db: str | Path,
    *,
    expected_rows: int | None = None,
    repeat: int = 3,
    core: int = 0,
    bare: bool = False,
) -> Measurement:
    """The rows one ``hub ingest`` stored in ``hub_db``, written again by the driver alone;
    ``bare``: the records without their payload."""
    name = "SQLite alone: the same stored rows" + (", without payload" if bare else "")
    return _measure_child(
        name,
        Path(hub_db),
        ["sqlite_store", str(hub_db), *(["--bare"] if bare else [])],
        expected_rows=expected_rows,
        repeat=repeat,
        core=core,
        inside=True,
    )


def kelahiran_schema() -> dict[str, Any]:
    """A Table Schema with the kelahiran rules frictionless can express on the raw cells.

    Dates (several spellings) and codes given as labels stay strings: frictionless has no
    day-first multi-format date type, so this is less than the hub checks, not more.
    """
    from bench.generate import COLUMNS, REQUIRED

    nik = {"pattern": "[0-9]{16}"}
    fields: list[dict[str, Any]] = []
    for canon, header in COLUMNS:
        f: dict[str, Any] = {"name": header, "type": "string"}
        c: dict[str, Any] = {}
        if canon in REQUIRED:
            c["required"] = True
        if canon in ("nik_ibu", "nik_ayah", "nik_pelapor", "no_kk"):
            c.update(nik)
        elif canon == "jenis_kelamin":
            c["enum"] = ["L", "P", "Lk", "Pr", "Laki-laki", "Perempuan", "1", "2"]
        elif canon == "kelahiran_ke":
            f["type"] = "integer"
            c.update(minimum=1, maximum=20)
        elif canon == "panjang_bayi":
            f["type"] = "integer"
            c.update(minimum=20, maximum=70)
        elif canon == "kode_wilayah":
            c["pattern"] = r"[0-9]{2}\.?[0-9]{2}\.?[0-9]{2}\.?[0-9]{4}"
        elif canon == "no":
            f["type"] = "integer"
        if c:
            f["constraints"] = c
        fields.append(f)
    return {
        "fields": fields,
        "missingValues": ["", "-", "NULL", "n/a"],
        "primaryKey": ["NIK Ibu", "Tgl Lahir", "Anak Ke"],
    }


# --------------------------------------------------------------------------- child side


def _child_frictionless(path: str, header_row: int, schema: str | None) -> dict[str, Any]:
    from collections import Counter

    import frictionless
    from frictionless import Dialect, Schema, formats

    t0 = time.perf_counter()
    dialect = Dialect(header_rows=[header_row], controls=[formats.CsvControl(delimiter=";")])
    options: dict[str, Any] = {"dialect": dialect, "encoding": "utf-8-sig"}
    if schema:
        options["schema"] = Schema.from_descriptor(json.loads(Path(schema).read_text()))
    # limit_errors defaults to 1,000, after which frictionless stops reading: lift it so that
    # every row is read and checked. trusted: frictionless refuses absolute paths otherwise
    # ("path ... is not safe"); the CLI equivalent is `frictionless validate --trusted`.
    with frictionless.system.use_context(trusted=True):
        report = frictionless.validate(path, limit_errors=sys.maxsize, **options)
    seconds = time.perf_counter() - t0
    task = report.tasks[0]
    return {
        "first_error": task.errors[0].message if task.errors else None,
        "tool": f"frictionless {importlib.metadata.version('frictionless')}",
        "rows": task.stats.get("rows", 0),
        "fields": task.stats.get("fields"),
        "valid": report.valid,
        "errors": task.stats.get("errors"),
        "error_types": dict(Counter(e.type for e in task.errors)),
        "rows_with_errors": len({getattr(e, "row_number", None) for e in task.errors} - {None}),
        "seconds_inside": seconds,
    }


def _child_read_excel(path: str, header_row: int) -> dict[str, Any]:
    import openpyxl
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_excel(path, engine="openpyxl", dtype=str, header=header_row - 1)
    seconds = time.perf_counter() - t0
    return {
        "tool": f"pandas {pd.__version__} + openpyxl {openpyxl.__version__}",
        "rows": len(df),
        "columns": len(df.columns),
        "seconds_inside": seconds,
    }


def _child_csv_read(path: str, header_row: int) -> dict[str, Any]:
    import csv

    t0 = time.perf_counter()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = sum(1 for _ in csv.reader(handle, delimiter=";"))
    return {
        "tool": f"Python {sys.version.split()[0]} csv",
        "rows": rows - header_row,  # rows below the header (the file has no blank rows)
        "seconds_inside": time.perf_counter() - t0,
    }


def _child_calamine(path: str, header_row: int) -> dict[str, Any]:
    import python_calamine

    t0 = time.perf_counter()
    workbook = python_calamine.CalamineWorkbook.from_path(path)
    sheet = workbook.get_sheet_by_name(workbook.sheet_names[0])
    rows = sum(1 for _ in sheet.iter_rows())
    seconds = time.perf_counter() - t0
    return {
        "tool": f"python-calamine {importlib.metadata.version('python-calamine')}",
        "rows": rows - header_row,  # rows below the header (the file has no blank rows)
        "seconds_inside": seconds,
    }


#: The tables ``hub ingest`` writes a batch's rows to (the batch row itself is one row).
STORED_TABLES = ("records", "row_issues")


#: `--bare`: what replaces a record's payload columns (the values, PII and source cells).
BARE_RECORD = {"data": "{}", "pii": b"", "source_cells": None}


def _child_sqlite_store(hub_db: str, bare: bool = False) -> dict[str, Any]:
    import sqlite3

    from hub.pipeline import CHUNK_ROWS
    from hub.store.engine import configure_sqlite

    # Untimed: read what the hub stored for its (last) batch, and create the same tables.
    source = sqlite3.connect(f"file:{hub_db}?mode=ro", uri=True)
    batch = source.execute("SELECT * FROM batches ORDER BY id DESC LIMIT 1").fetchone()
    if batch is None:
        raise SystemExit(f"{hub_db}: no batch")
    batch_id = batch[0]
    rows_read = source.execute("SELECT rows FROM batches WHERE id = ?", (batch_id,)).fetchone()[0]
    ddl = [
        sql
        for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN ('batches', 'records', 'row_issues')"
            " AND sql IS NOT NULL ORDER BY type = 'index', rowid"
        )
    ]
    stored: dict[str, tuple[str, list[tuple[Any, ...]]]] = {}
    for table in STORED_TABLES:
        columns = [c[1] for c in source.execute(f"PRAGMA table_info({table})") if c[1] != "id"]
        insert = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        )
        select = f"SELECT {', '.join(columns)} FROM {table} WHERE batch_id = ? ORDER BY id"
        rows = source.execute(select, (batch_id,)).fetchall()
        if bare and table == "records":
            blank = [(columns.index(name), value) for name, value in BARE_RECORD.items()]
            rows = [_replaced(row, blank) for row in rows]
        stored[table] = (insert, rows)
    source.close()
    target = Path(hub_db).with_name(Path(hub_db).stem + "-store-floor.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(target, isolation_level=None)
    configure_sqlite(conn)
    for sql in ddl:
        conn.execute(sql)
    conn.execute(f"INSERT INTO batches VALUES ({', '.join('?' * len(batch))})", batch)
    # Timed: one transaction, chunks as the hub writes them, commit and close (checkpoint).
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    for insert, rows in stored.values():
        for start in range(0, len(rows), CHUNK_ROWS):
            conn.executemany(insert, rows[start : start + CHUNK_ROWS])
    conn.execute("COMMIT")
    conn.close()
    seconds = time.perf_counter() - t0
    size = target.stat().st_size
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    return {
        "tool": f"sqlite3 {sqlite3.sqlite_version} (Python driver)",
        "rows": rows_read,
        **{table: len(rows) for table, (_, rows) in stored.items()},
        "file_bytes": size,
        "seconds_inside": seconds,
    }


def _replaced(row: tuple[Any, ...], values: Sequence[tuple[int, Any]]) -> tuple[Any, ...]:
    changed = list(row)
    for index, value in values:
        changed[index] = value
    return tuple(changed)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peers")
    tools = ["frictionless", "read_excel", "csv_read", "calamine", "sqlite_store"]
    p.add_argument("tool", choices=tools)
    p.add_argument("path")
    p.add_argument("--header-row", type=int, default=HEADER_ROW, help="1-based")
    p.add_argument("--schema", default=None, help="Table Schema JSON (frictionless only)")
    p.add_argument("--bare", action="store_true", help="records without payload (sqlite_store)")
    a = p.parse_args(argv)
    if a.tool == "frictionless":
        result = _child_frictionless(a.path, a.header_row, a.schema)
    elif a.tool == "sqlite_store":
        result = _child_sqlite_store(a.path, a.bare)
    elif a.tool == "csv_read":
        result = _child_csv_read(a.path, a.header_row)
    elif a.tool == "calamine":
        result = _child_calamine(a.path, a.header_row)
    else:
        result = _child_read_excel(a.path, a.header_row)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

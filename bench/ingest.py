"""Ingest benchmark: ``hub ingest`` end to end against peers, on one core.

    python -m bench.ingest [--rows 200000] [--repeat 3] [--memory-rows 1000000] [--out bench/out]

1. Generates (or reuses, see ``--regenerate``) the benchmark files into ``--out``: a kelahiran CSV
   and XLSX of ``--rows`` rows and a CSV of ``--memory-rows`` rows (``bench/generate.py``).
2. Runs ``hub ingest FILE --type kelahiran --format json`` on the CSV and on the XLSX, ``--repeat``
   times each, as a subprocess pinned to one core, each time with a fresh SQLite database and data
   directory (``HUB_DATABASE_URL``, ``HUB_DATA_DIR``) and a fixed test ``HUB_DATA_KEY``.
3. Runs the peers (``bench/peers.py``) the same way: ``frictionless validate`` on the CSV (inferred
   schema, and with a kelahiran Table Schema), ``pandas.read_excel`` (openpyxl) on the XLSX.
4. Runs ``hub ingest`` once on the big CSV for its peak RSS.

Prints a Markdown table with the targets and writes it to ``OUT/ingest.md`` and ``OUT/ingest.json``.
A failing hub command is reported (its stderr is printed) and the peers still run.
"""

from __future__ import annotations

import argparse
import base64
import compileall
import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import generate
from bench.peers import (
    PROJECT_ROOT,
    Measurement,
    kelahiran_schema,
    measure_frictionless,
    measure_reader,
    measure_sqlite_store,
    run_pinned,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
# 32 bytes, base64 (identical in the standard and URL-safe alphabets). A test key, not a secret.
TEST_DATA_KEY = base64.b64encode(b"lampid-hub-bench-test-key-000032").decode()

CSV_ROWS_PER_S = 50_000
CSV_VS_FRICTIONLESS = 5.0
XLSX_ROWS_PER_S = 20_000
MEMORY_MB = 500


# --------------------------------------------------------------------------- files


def _generator_version() -> str:
    return hashlib.sha256(Path(generate.__file__).read_bytes()).hexdigest()[:16]


def ensure_file(
    kind: str,
    out: Path,
    n: int,
    *,
    seed: int,
    defect_rate: float,
    regenerate: bool,
    wilayah_csv: Path | None = None,
) -> dict[str, Any]:
    """The benchmark file ``kind`` ("csv"/"xlsx") of ``n`` rows, generated unless already there.

    A sidecar JSON records the generation (parameters, defect counts, seconds, generator hash);
    the file is reused only when the sidecar matches, so editing the generator regenerates it.
    """
    stem = f"kelahiran-{n}-s{seed}-d{defect_rate:g}"
    path = out / f"{stem}.{kind}"
    meta_path = out / f"{stem}.{kind}.json"
    version = _generator_version()
    if not regenerate and path.exists() and meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        same = (meta.get("generator"), meta.get("wilayah"), meta.get("bytes")) == (
            version,
            str(wilayah_csv),
            path.stat().st_size,
        )
        if same:
            meta["cached"] = True
            return meta
    writer = generate.write_xlsx if kind == "xlsx" else generate.write_csv
    print(f"generating {path.name} ({n:,} rows) ...", flush=True)
    g = writer(path, n, seed=seed, defect_rate=defect_rate, wilayah_csv=wilayah_csv)
    meta = {**g.as_dict(), "generator": version, "wilayah": str(wilayah_csv)}
    meta_path.write_text(json.dumps(meta, indent=2))
    print(f"  {g.seconds:.2f} s, {g.bytes / 1e6:.1f} MB", flush=True)
    return {**meta, "cached": False}


# --------------------------------------------------------------------------- hub


def hub_command(override: str | None) -> list[str]:
    if override:
        return shlex.split(override)
    beside = Path(sys.executable).parent / "hub"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("hub")
    if found:
        return [found]
    return [sys.executable, "-c", "from hub.cli import main; raise SystemExit(main())"]


def _db_files(db: Path) -> list[Path]:
    """A SQLite database file and its companions."""
    return [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]


def _remove(db: Path, data_dir: Path | None = None) -> None:
    for p in _db_files(db):
        p.unlink(missing_ok=True)
    if data_dir is not None:
        shutil.rmtree(data_dir, ignore_errors=True)


def _parse_json_output(stdout: str) -> dict[str, Any]:
    text = stdout.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
        for line in reversed(text.splitlines()):
            if line.lstrip().startswith("{"):
                try:
                    obj = json.loads(line)
                    break
                except ValueError:
                    continue
    if not isinstance(obj, dict) or "rows" not in obj:
        raise ValueError(f"no JSON object with 'rows' in the output: {text[-500:]!r}")
    return obj


def measure_hub(
    name: str,
    path: Path,
    *,
    tag: str,
    repeat: int,
    core: int,
    out: Path,
    cmd: list[str],
    keep: bool,
    timeout: float | None,
    wilayah_csv: Path | None,
    routes: Path | None = None,
    keep_last_db: Path | None = None,
) -> Measurement:
    """``repeat`` pinned runs of ``hub ingest``, each on a fresh database and data directory.

    When ``wilayah_csv`` is given, each fresh database first gets the full region master list
    with ``hub wilayah import`` (not timed): a deployed hub has it, a fresh database only the
    demo subset, and the generator uses codes of the full list.

    The hub runs in ``out`` (no ``routes.yaml`` there): it ingests, and routes nothing, unless
    ``routes`` names a routes file (``HUB_ROUTES``); then each valid record is also put on its
    route (the outbox), as ``hub ingest`` does in a hub with delivery configured.
    """
    m = Measurement(name, str(path))
    argv = [*cmd, "ingest", str(path), "--type", "kelahiran", "--format", "json"]
    for i in range(1, repeat + 1):
        db = out / f"run-{tag}-{i}.db"
        data_dir = out / f"data-{tag}-{i}"
        _remove(db, data_dir)
        data_dir.mkdir(parents=True)
        env = {
            **os.environ,
            "HUB_DATABASE_URL": f"sqlite:///{db}",
            "HUB_DATA_DIR": str(data_dir),
            "HUB_DATA_KEY": TEST_DATA_KEY,
            "PYTHONHASHSEED": "0",
        }
        if routes is None:
            env.pop("HUB_ROUTES", None)
        else:
            env["HUB_ROUTES"] = str(routes)
        print(f"  {name}: run {i}/{repeat} ...", flush=True)
        if wilayah_csv is not None:
            setup_error = _setup_wilayah(cmd, wilayah_csv, env)
            if setup_error:
                m.detail["setup_error"] = setup_error
        try:
            run = run_pinned(argv, core=core, env=env, cwd=out, timeout=timeout)
        except OSError as e:
            m.error = f"cannot start {shlex.join(argv)}: {e}"
            print(f"  FAILED: {m.error}", file=sys.stderr, flush=True)
            break
        m.pinning = run.pinning
        if keep_last_db is not None and i == repeat:
            _remove(keep_last_db)
            for present, kept in zip(_db_files(db), _db_files(keep_last_db), strict=True):
                if present.exists():
                    present.rename(kept)
        if not keep:
            _remove(db, data_dir)
        if run.returncode not in (0, 1):
            m.error = f"exit {run.returncode}"
            print(f"  FAILED ({m.error}): {shlex.join(run.cmd)}", file=sys.stderr)
            print(_tail(run.stderr) or "(no stderr)", file=sys.stderr, flush=True)
            m.detail = {"stderr": _tail(run.stderr), "stdout": _tail(run.stdout)}
            break
        try:
            result = _parse_json_output(run.stdout)
        except ValueError as e:
            m.error = str(e)
            print(f"  FAILED: {e}\n{_tail(run.stderr)}", file=sys.stderr, flush=True)
            break
        m.rows = int(result["rows"])
        m.seconds.append(run.seconds)
        m.peak_rss_mb.append(run.peak_rss_mb)
        issues = result.get("issues")
        setup_problem = m.detail.get("setup_error")
        m.detail = {
            **({"setup_error": setup_problem} if setup_problem else {}),
            "exit": run.returncode,
            **{k: result.get(k) for k in ("rows", "valid", "invalid", "duplicates", "warnings")},
            "issues": len(issues) if isinstance(issues, list) else issues,
        }
        print(
            f"    {run.seconds:.2f} s, {m.rows / run.seconds:,.0f} rows/s, "
            f"{run.peak_rss_mb:.0f} MB, exit {run.returncode}",
            flush=True,
        )
    return m


def _setup_wilayah(cmd: list[str], wilayah_csv: Path, env: dict[str, str]) -> str:
    """``hub wilayah import`` into the fresh database; an error text, or "" when it worked."""
    setup = [*cmd, "wilayah", "import", str(wilayah_csv)]
    try:
        done = subprocess.run(
            setup, env=env, cwd=env["HUB_DATA_DIR"], capture_output=True, text=True, check=False
        )
    except OSError as e:
        problem = str(e)
    else:
        if done.returncode == 0:
            return ""
        problem = f"exit {done.returncode}: {_tail(done.stderr, 1000)}"
    print(f"  warning: {shlex.join(setup)} failed ({problem})", file=sys.stderr, flush=True)
    return problem


def _tail(text: str, n: int = 4000) -> str:
    text = text.strip()
    return text if len(text) <= n else "...\n" + text[-n:]


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    m: Measurement
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def _num(x: float, fmt: str = ",.0f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _ratio(a: Measurement, b: Measurement | None) -> float:
    if b is None or not (a.ok and b.ok):
        return float("nan")
    return a.rows_per_s / b.rows_per_s


def _verdict(checks: list[bool | None]) -> str:
    if any(c is None for c in checks) or not checks:
        return "n/a"
    return "PASS" if all(checks) else "FAIL"


def build_rows(res: dict[str, Measurement | None]) -> list[Row]:
    hub_csv, hub_xlsx = res.get("hub_csv"), res.get("hub_xlsx")
    fl, fl_schema = res.get("frictionless"), res.get("frictionless_schema")
    pdx, mem = res.get("read_excel"), res.get("hub_memory")
    rows: list[Row] = []
    if hub_csv is not None:
        r = _ratio(hub_csv, fl)
        rows.append(
            Row(
                hub_csv,
                f"{_num(r, '.1f')}× frictionless",
                f"≥ {CSV_ROWS_PER_S:,} rows/s and ≥ {CSV_VS_FRICTIONLESS:g}× frictionless",
                _verdict(
                    [
                        hub_csv.rows_per_s >= CSV_ROWS_PER_S if hub_csv.ok else None,
                        None if math.isnan(r) else r >= CSV_VS_FRICTIONLESS,
                    ]
                ),
            )
        )
    if hub_xlsx is not None:
        r = _ratio(hub_xlsx, pdx)
        rows.append(
            Row(
                hub_xlsx,
                f"{_num(r, '.1f')}× pandas.read_excel",
                f"≥ {XLSX_ROWS_PER_S:,} rows/s",
                _verdict([hub_xlsx.rows_per_s >= XLSX_ROWS_PER_S if hub_xlsx.ok else None]),
            )
        )
    routed = res.get("hub_csv_routed")
    if routed is not None:
        rows.append(Row(routed, "the same ingest, each record stored on its route", "", ""))
    if mem is not None:
        rows.append(
            Row(
                mem,
                "",
                f"peak RSS < {MEMORY_MB} MB",
                _verdict([mem.max_rss_mb < MEMORY_MB if mem.ok else None]),
            )
        )
    calamine = res.get("calamine")
    floors = [res.get(k) for k in ("sqlite_store", "sqlite_store_bare", "csv_read", "calamine")]
    for peer in (*floors, fl, fl_schema, pdx):
        if peer is not None:
            hub = hub_xlsx if peer in (calamine, pdx) else hub_csv
            r = _ratio(hub, peer) if hub is not None else float("nan")
            kind = "floor" if peer in floors else "peer"
            rows.append(Row(peer, f"{kind} (hub {_num(r, '.1f')}×)", "", ""))
    return rows


def render_markdown(rows: list[Row], files: dict[str, Any], info: dict[str, Any]) -> str:
    lines = [
        "# Ingest benchmark",
        "",
        f"{info['started']} · {info['cpu']} · pinned with `{info['pinning']}` · "
        f"median of {info['repeat']} run(s) (peers: {info['peer_repeat']}, memory run: 1) · "
        "peak RSS = max over runs (MiB)",
        "",
        f"Load average (1/5/15 min) at start {info.get('loadavg_start')}, "
        f"at end {info.get('loadavg_end')}: other processes on the pinned core inflate times.",
        "",
        "| measure | rows | median s | rows/s | peak RSS MB | ratio vs peer | target | result |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        m = r.m
        if m.ok:
            cells = [
                m.name,
                f"{m.rows:,}",
                _num(m.median_seconds, ".2f"),
                _num(m.rows_per_s),
                _num(m.max_rss_mb),
                r.ratio,
            ]
        else:
            first = (m.error or "not run").splitlines()[0][:80].replace("|", "/")
            cells = [m.name, "—", "—", "—", "—", f"FAILED: {first}"]
        lines.append("| " + " | ".join([*cells, r.target, r.verdict]) + " |")
    lines += ["", "Files:", ""]
    for name, f in files.items():
        d = f.get("defects", {})
        how = "reused" if f.get("cached") else "generated"
        lines.append(
            f"- {name}: `{Path(f['path']).name}`, {f['rows']:,} rows, {f['bytes'] / 1e6:.1f} MB, "
            f"{how} (generation {f['seconds']:.1f} s), {sum(d.values()):,} defect rows "
            f"({d.get('duplicate_key', 0):,} duplicate keys)"
        )
    hub_rows = [r.m for r in rows if r.m.ok and r.m.name.startswith("hub")]
    if hub_rows:
        lines += ["", "Hub counts, last run (expected from the generator's defect log):", ""]
        by_path = {f["path"]: f for f in files.values()}
        for m in hub_rows:
            d, exp = m.detail, expected_counts(by_path.get(m.path))
            counts = ", ".join(
                f"{k} {d.get(k)}" + (f" ({exp[k]})" if k in exp else "")
                for k in ("valid", "invalid", "duplicates", "warnings")
            )
            lines.append(f"- {m.name}: {counts}")
    return "\n".join(lines) + "\n"


def expected_counts(f: dict[str, Any] | None) -> dict[str, int]:
    """valid / invalid / duplicates that the generator's defect log implies for a file."""
    if not f:
        return {}
    d: dict[str, int] = f.get("defects", {})
    dup = d.get("duplicate_key", 0)
    total = sum(d.values())
    return {"valid": f["rows"] - total, "invalid": total - dup, "duplicates": dup}


def _environment(core: int) -> dict[str, Any]:
    from bench.peers import pinning

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("lampid-hub", "frictionless", "pandas", "openpyxl", "python-calamine"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} ({os.cpu_count()} CPUs)",
        "pinning": pinning(core)[2],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "git_commit": commit,
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --------------------------------------------------------------------------- main


def compile_project() -> None:
    """Write the hub's bytecode, as a deployed hub has it (the Dockerfile compiles it): with
    PYTHONDONTWRITEBYTECODE set, every run would otherwise compile the hub from source."""
    for package in ("hub", "adapters"):
        compileall.compile_dir(PROJECT_ROOT / package, quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=200_000, help="rows of the CSV and XLSX")
    p.add_argument("--repeat", type=int, default=3, help="runs per measure (median)")
    p.add_argument("--peer-repeat", type=int, default=None, help="runs per peer (def. --repeat)")
    p.add_argument("--memory-rows", type=int, default=1_000_000, help="0 skips the memory run")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--defect-rate", type=float, default=0.10)
    p.add_argument("--core", type=int, default=0, help="CPU every child is pinned to")
    p.add_argument("--hub-cmd", default=None, help="hub executable (default: the venv's `hub`)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per hub run")
    p.add_argument("--no-hub", action="store_true", help="peers only")
    p.add_argument("--no-peers", action="store_true", help="hub only")
    p.add_argument("--no-xlsx", action="store_true", help="skip the XLSX measures")
    p.add_argument(
        "--routed", action="store_true", help="also time the CSV ingest with routes.yaml, once"
    )
    p.add_argument("--no-schema-peer", action="store_true", help="skip frictionless + schema")
    p.add_argument("--regenerate", action="store_true", help="rewrite the benchmark files")
    p.add_argument(
        "--wilayah-csv",
        type=Path,
        default=None,
        help="region master list for the generator and `hub wilayah import` "
        "(default: $LAMPID_WILAYAH_CSV or ../shared/data/wilayah/wilayah.csv)",
    )
    p.add_argument(
        "--no-wilayah-import",
        action="store_true",
        help="do not import the region list into each fresh database (untimed setup step)",
    )
    p.add_argument("--keep-runs", action="store_true", help="keep run-*.db and data-* dirs")
    p.add_argument("--check", action="store_true", help="exit 1 unless every target passes")
    a = p.parse_args(argv)
    out: Path = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    peer_repeat = a.peer_repeat or a.repeat
    info = {**_environment(a.core), "repeat": a.repeat, "peer_repeat": peer_repeat}
    wilayah_csv = (a.wilayah_csv or generate.default_wilayah_path()).resolve()
    gen = {
        "seed": a.seed,
        "defect_rate": a.defect_rate,
        "regenerate": a.regenerate,
        "wilayah_csv": wilayah_csv,
    }

    files: dict[str, Any] = {"CSV": ensure_file("csv", out, a.rows, **gen)}
    if not a.no_xlsx:
        files["XLSX"] = ensure_file("xlsx", out, a.rows, **gen)
    if a.memory_rows and not a.no_hub:
        files["memory CSV"] = ensure_file("csv", out, a.memory_rows, **gen)
    csv_path = Path(files["CSV"]["path"])
    stored_db = out / "stored-csv.db"  # the last hub CSV run's database, for the store peer
    res: dict[str, Measurement | None] = {}

    cmd = hub_command(a.hub_cmd)
    hub_opts: dict[str, Any] = {
        "core": a.core,
        "out": out,
        "cmd": cmd,
        "keep": a.keep_runs,
        "timeout": a.timeout,
        "wilayah_csv": None if a.no_wilayah_import else wilayah_csv,
    }
    if not a.no_hub:
        print(f"hub command: {shlex.join(cmd)}", flush=True)
        compile_project()
        res["hub_csv"] = measure_hub(
            "hub ingest CSV",
            csv_path,
            tag="csv",
            repeat=a.repeat,
            keep_last_db=None if a.no_peers else stored_db,
            **hub_opts,
        )
        if "XLSX" in files:
            res["hub_xlsx"] = measure_hub(
                "hub ingest XLSX",
                Path(files["XLSX"]["path"]),
                tag="xlsx",
                repeat=a.repeat,
                **hub_opts,
            )
        if a.routed:
            res["hub_csv_routed"] = measure_hub(
                "hub ingest CSV, routed to the outbox (routes.yaml)",
                csv_path,
                tag="routed",
                repeat=1,
                routes=PROJECT_ROOT / "routes.yaml",
                **hub_opts,
            )
    if not a.no_peers and stored_db.exists():
        print("SQLite alone: the rows of the last hub CSV run written again ...", flush=True)
        res["sqlite_store"] = measure_sqlite_store(
            stored_db, expected_rows=a.rows, repeat=peer_repeat, core=a.core
        )
        res["sqlite_store_bare"] = measure_sqlite_store(
            stored_db, expected_rows=a.rows, repeat=peer_repeat, core=a.core, bare=True
        )
        _remove(stored_db)
    if not a.no_peers:
        print("Python csv module (CSV) ...", flush=True)
        res["csv_read"] = measure_reader(
            "csv_read", csv_path, expected_rows=a.rows, repeat=peer_repeat, core=a.core
        )
        print("frictionless validate (CSV) ...", flush=True)
        res["frictionless"] = measure_frictionless(
            csv_path, expected_rows=a.rows, repeat=peer_repeat, core=a.core
        )
        if not a.no_schema_peer:
            schema = out / "kelahiran.schema.json"
            schema.write_text(json.dumps(kelahiran_schema(), indent=2))
            print("frictionless validate + schema (CSV) ...", flush=True)
            m = measure_frictionless(
                csv_path, expected_rows=a.rows, repeat=peer_repeat, core=a.core, schema=schema
            )
            res["frictionless_schema"] = m
        if "XLSX" in files:
            xlsx = Path(files["XLSX"]["path"])
            read_opts = {"expected_rows": a.rows, "repeat": peer_repeat, "core": a.core}
            print("python-calamine (XLSX) ...", flush=True)
            res["calamine"] = measure_reader("calamine", xlsx, **read_opts)
            print("pandas.read_excel (XLSX) ...", flush=True)
            res["read_excel"] = measure_reader("read_excel", xlsx, **read_opts)
        peers = [
            *("sqlite_store", "sqlite_store_bare", "csv_read", "frictionless"),
            *("frictionless_schema", "calamine", "read_excel"),
        ]
        for key in peers:
            peer = res.get(key)
            if peer is not None:
                status = peer.error or f"{peer.median_seconds:.2f} s, {peer.rows_per_s:,.0f} rows/s"
                print(f"  {peer.name}: {status}", flush=True)
    if "memory CSV" in files:
        hub_csv = res.get("hub_csv")
        big = Path(files["memory CSV"]["path"])
        name = f"hub ingest CSV {a.memory_rows:,} rows (memory)"
        if hub_csv is not None and not hub_csv.ok:
            res["hub_memory"] = Measurement(name, str(big), error="skipped: hub ingest CSV failed")
        else:
            res["hub_memory"] = measure_hub(name, big, tag="mem", repeat=1, **hub_opts)

    info["loadavg_end"] = _loadavg()
    table_rows = build_rows(res)
    md = render_markdown(table_rows, files, info)
    (out / "ingest.md").write_text(md, encoding="utf-8")
    report = {
        "environment": info,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "hub_command": cmd,
        "files": files,
        "targets": {
            "csv_rows_per_s": CSV_ROWS_PER_S,
            "csv_vs_frictionless": CSV_VS_FRICTIONLESS,
            "xlsx_rows_per_s": XLSX_ROWS_PER_S,
            "memory_peak_rss_mb": MEMORY_MB,
        },
        "results": {k: v.as_dict() for k, v in res.items() if v is not None},
        "verdicts": {r.m.name: r.verdict for r in table_rows if r.verdict},
    }
    (out / "ingest.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print()
    print(md)
    print(f"written: {out / 'ingest.md'}, {out / 'ingest.json'}")
    verdicts = [r.verdict for r in table_rows if r.verdict]
    return 1 if a.check and any(v != "PASS" for v in verdicts) else 0


if __name__ == "__main__":
    raise SystemExit(main())

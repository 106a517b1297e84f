"""API benchmark: many concurrent clients against `hub serve`, beside a bare Starlette app.

```sh
.venv/bin/python -m bench.api                      # 500 connections, 30 s per endpoint
.venv/bin/python -m bench.api --connections 50 --seconds 10
```

Setup (a fresh data directory, SQLite, 2,000 birth rows ingested), then for each target a
3-second warm-up and a timed run of `--seconds`: a bare Starlette endpoint served by granian
with the same settings (the framework's ceiling), `GET /api/v1/batches/{id}` and
`GET /api/v1/stats` of `hub serve` (one granian worker, dispatcher off, access log off) with an
admin token. The load generator (bench/loadgen.py) runs in this process on the other core.
Prints a Markdown table: requests/s, p50, p99, errors, and the ratio to the bare endpoint.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.loadgen import LoadResult, run_load

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / ".venv" / "bin" / "hub"
KEY = base64.b64encode(bytes(range(32))).decode()
TARGET_P99_MS = 250.0
TARGET_RATIO = 0.5


def bare_app() -> Any:
    """The ceiling: one Starlette route answering a small JSON document."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Any) -> JSONResponse:
        return JSONResponse({"id": 1, "status": "done", "rows": 2000})

    return Starlette(routes=[Route("/", hello)])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


def _prepare(data_dir: Path, rows: int) -> tuple[dict[str, str], int, str]:
    """Ingest sample births; return the environment, the batch id and an admin token."""
    from bench.generate import write_csv
    from hub.api.principal import Principal
    from hub.api.tokens import TokenService
    from hub.context import Hub
    from hub.pipeline import run_batch, source_for
    from hub.settings import Settings

    env = {
        "HUB_DATA_DIR": str(data_dir),
        "HUB_DATABASE_URL": f"sqlite:///{data_dir / 'hub.db'}",
        "HUB_DATA_KEY": KEY,
        "HUB_ROUTES": "",
        "HUB_API_RATE": "1000000",
        "HUB_API_DAILY_QUOTA": "1000000000",
    }
    csv_path = data_dir / "lahir.csv"
    write_csv(csv_path, rows, kelurahan=["32.73.01.1001", "32.73.01.1002"])
    settings = Settings.from_env(env)
    hub = Hub.open(settings)
    try:
        report = run_batch(hub, source_for(csv_path), "kelahiran", actor="bench")
        token = TokenService(hub.engine, hub.protector).issue(
            Principal.for_role("user:bench", "admin", ""), ttl=3600
        )
    finally:
        hub.close()
    assert report.batch_id is not None
    return env, report.batch_id, token


def _serve(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=handle, stderr=handle)


def _measure(port: int, path: str, headers: dict[str, str], args: argparse.Namespace) -> LoadResult:
    run_load("127.0.0.1", port, path, connections=args.connections, seconds=3, headers=headers)
    return run_load(
        "127.0.0.1", port, path, connections=args.connections, seconds=args.seconds,
        headers=headers,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="hub-bench-api-") as tmp:
        data_dir = Path(tmp)
        env, batch_id, token = _prepare(data_dir, args.rows)
        bare_port, hub_port = _free_port(), _free_port()
        granian = [
            sys.executable, "-c",
            "from granian import Granian; from granian.constants import Interfaces; "
            f"Granian('bench.api:bare_app', address='127.0.0.1', port={bare_port}, "
            "interface=Interfaces.ASGI, workers=1, factory=True, log_access=False).serve()",
        ]  # fmt: skip
        servers = [
            _serve(granian, {"PYTHONPATH": str(ROOT)}, data_dir / "bare.log"),
            _serve(
                [str(HUB), "serve", "--port", str(hub_port), "--no-dispatcher"],
                env,
                data_dir / "hub.log",
            ),
        ]
        try:
            auth = {"Authorization": f"Bearer {token}"}
            _wait(f"http://127.0.0.1:{bare_port}/")
            _wait(f"http://127.0.0.1:{hub_port}/api/v1/batches/{batch_id}", auth)
            results = {
                "bare Starlette endpoint (granian)": _measure(bare_port, "/", {}, args),
                f"GET /api/v1/batches/{batch_id}": _measure(
                    hub_port, f"/api/v1/batches/{batch_id}", auth, args
                ),
                "GET /api/v1/stats": _measure(hub_port, "/api/v1/stats", auth, args),
            }
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                server.wait(timeout=30)
    print(_table(results, args))
    return 0


def _table(results: dict[str, LoadResult], args: argparse.Namespace) -> str:
    bare = next(iter(results.values()))
    lines = [
        f"{args.connections} connections, {args.seconds:g} s per target, one granian worker, "
        "load generator in one process on the same machine",
        "",
        "| target | requests | req/s | p50 ms | p99 ms | errors | vs bare | p99 < 250 ms, "
        "0 errors, >= 50 % of bare |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, result in results.items():
        ratio = result.rps / bare.rps if bare.rps else 0.0
        met = (
            result.p99 < TARGET_P99_MS and result.errors == 0 and ratio >= TARGET_RATIO
            if result is not bare
            else None
        )
        verdict = "" if met is None else ("met" if met else "**not met**")
        lines.append(
            f"| {name} | {result.requests:,} | {result.rps:,.0f} | {result.p50:.1f} | "
            f"{result.p99:.1f} | {result.errors} | {ratio:.0%} | {verdict} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""The scale-out scenario shared by the proof (`tests/test_scale_out.py`, CI-sized) and the
benchmark (`bench/scale.py`, full-sized): the hub as several processes over one PostgreSQL
schema and one Redis database, as it is deployed when a city outgrows one process.

`scale_out` runs, on loopback:

1. the SIAK simulator in this process (no limit of its own: it measures what arrives), and a
   SIAK route without the verify step, so only the hub's shared SIAK rate limit (in Redis)
   paces delivery;
2. optionally two `hub jobs scheduler` processes with the `aggregates` job every 10 s (the
   shortest interval `routes.yaml` accepts; each tick must run once, whichever process fires
   it);
3. two `hub serve --no-dispatcher` processes on free ports; the records, as several CSV
   files, are uploaded through both APIs at once (one thread per file) and each batch is
   polled until `done`;
4. `workers` `hub worker` processes; with `kill=True` one is killed with SIGKILL once SIAK
   holds about a third of the records (its claimed messages come back when their leases run
   out); the store is polled until every record is `delivered`, then the rest get SIGTERM;
5. the checks' inputs: the simulator's ledger (effects, identities applied more than once,
   the most arrivals in any one second), the store (statuses, dead letters, the time of the
   last delivery), `hub audit verify`'s exit status, the scheduler's `job_runs`, the load
   average and the CPU time of this process and of its children.

The rows are `tests.builders.kelahiran_row` with one more unique mother per record: the
kelahiran natural key is (nik_ibu, tanggal_lahir, kelahiran_ke), and `kelahiran_row(serial)`
names 9,999 mothers, so record i > 9,999 is mother `(i - 1) % 9999 + 1`'s next child
(`Anak Ke` 2, 3, ...).
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from adapters.siak import simulator as siak_sim
from bench.delivery_scenarios import (
    MAX_RECORDS,
    Worker,
    flush_redis,
    hub_command,
    hub_env,
    open_hub,
    quiet_injected_failures,
    routes_change,
    sim_stats,
)
from hub.api.principal import Principal
from hub.api.tokens import TokenService
from hub.store.tables import job_runs, outbox, records
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_csv
from tests.routing import write_routes

KELURAHAN = "32.73.01.1001"
API_PROCESSES = 2
#: The job both schedulers run, and its interval in seconds.
PROBE_JOB = "aggregates"


# ------------------------------------------------------------------------------ outcome


@dataclass
class ScaleOutcome:
    """What one scale-out run did, as the simulator, the store and the processes saw it."""

    records: int
    workers: int
    killed: bool
    per_second: int  # the hub's SIAK rate limit
    burst: int
    upload_seconds: float  # first upload sent -> every batch done
    delivery_seconds: float  # workers started -> last delivery (outbox done_at)
    total_seconds: float  # first upload sent -> last delivery
    statuses: dict[str, int]
    dead_letters: int
    siak: dict[str, Any]
    audit_verify_code: int
    audit_verify_output: str
    batches: list[dict[str, Any]]  # per uploaded file: api, batch id, status, valid
    job_ticks: list[str | None] = field(default_factory=list)  # probe job runs' ticks
    job_outcomes: dict[str, int] = field(default_factory=dict)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # os.getloadavg() at the end
    #: CPU seconds: the workers (until the last delivery), the APIs, this process (simulator,
    #: uploads, polling), every hub process; and the machine's busy share while delivering
    cpu: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def delivered(self) -> int:
        return self.statuses.get("delivered", 0)

    @property
    def end_to_end_rate(self) -> float:
        return self.records / self.total_seconds if self.total_seconds > 0 else 0.0

    @property
    def delivery_rate(self) -> float:
        return self.records / self.delivery_seconds if self.delivery_seconds > 0 else 0.0

    @property
    def rate_bound(self) -> int:
        """The most arrivals the limiter may let into any one second: the rate plus what
        the burst adds beyond one."""
        return self.per_second + self.burst - 1

    @property
    def duplicates(self) -> int:
        """Record versions SIAK applied more than once (must be 0)."""
        return int(self.siak.get("identities_applied_more_than_once", 0))

    @property
    def duplicate_ticks(self) -> int:
        """Scheduled ticks of the probe job that ran more than once (must be 0)."""
        ticks = [t for t in self.job_ticks if t is not None]
        return len(ticks) - len(set(ticks))


# ------------------------------------------------------------------------------ rows


def birth_row(i: int) -> list[Any]:
    """Record `i` (1-based) with a natural key of its own, beyond 9,999 too."""
    if i < 1:
        raise ValueError(f"records are numbered from 1, not {i}")
    serial = (i - 1) % MAX_RECORDS + 1
    child = (i - 1) // MAX_RECORDS + 1
    return kelahiran_row(serial, **{"No": i, "Anak Ke": str(child)})


def write_files(directory: Path, n: int, files: int) -> list[Path]:
    """`n` birth rows split over `files` CSV files (as even as can be)."""
    if n < files or files < 1:
        raise ValueError(f"{n} records cannot fill {files} files")
    directory.mkdir(parents=True, exist_ok=True)
    bounds = [round(k * n / files) for k in range(files + 1)]
    return [
        write_csv(
            directory / f"lahir-{k + 1:02d}.csv",
            KELAHIRAN_HEADER,
            [birth_row(i) for i in range(bounds[k] + 1, bounds[k + 1] + 1)],
        )
        for k in range(files)
    ]


# ------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_apis(
    count: int, env: Mapping[str, str], root: Path, token: str
) -> tuple[list[Worker], list[str]]:
    """`count` `hub serve --no-dispatcher` processes on free ports, each answering with
    `token`; the processes and their base URLs."""
    ports = [free_port() for _ in range(count)]
    apis = [
        start_process(["serve", "--port", str(port), "--no-dispatcher"], env, root / f"api-{i}.log")
        for i, port in enumerate(ports, 1)
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    for base, api in zip(bases, apis, strict=True):
        wait_for_api(base, token, api)
    return apis, bases


def start_process(argv: Sequence[str], env: Mapping[str, str], log: Path) -> Worker:
    """A `hub` subprocess (`Worker` keeps its output in `log`): the hub's variables come
    from `env` only, not from whoever runs this."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [*hub_command(), *argv], env={**clean, **env}, stdout=handle, stderr=subprocess.STDOUT
        )
    return Worker(process, log)


def stop(processes: Sequence[Worker], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL whatever is still running after `timeout`."""
    for proc in processes:
        if proc.process.poll() is None:
            proc.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in processes:
        try:
            proc.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(poll)


def process_cpu(worker: Worker) -> float:
    """CPU seconds (user + system) a running process used so far; 0.0 where /proc is not."""
    try:
        fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_times() -> tuple[float, float]:
    """(busy, total) jiffies of every core since boot, from /proc/stat; (0, 0) elsewhere."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0, 0.0
    values = [float(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values) - idle, sum(values)


# ------------------------------------------------------------------------------ the API


def _multipart(path: Path, fields: Mapping[str, str]) -> tuple[bytes, str]:
    boundary = f"----hub-bench-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        + path.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _call(
    method: str, url: str, token: str, body: bytes | None = None, media: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    if media:
        headers["Content-Type"] = media
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), {"error": error.read().decode("utf-8", "replace")[:500]}


def upload_and_wait(base: str, token: str, path: Path, timeout: float) -> dict[str, Any]:
    """`POST /api/v1/batches` with `path`, then poll its status URL until it is finished."""
    body, media = _multipart(path, {"type": "kelahiran", "kelurahan": KELURAHAN})
    status, answer = _call("POST", base + "/api/v1/batches", token, body, media)
    if status != 202:
        raise RuntimeError(f"upload of {path.name} to {base} answered {status}: {answer}")
    url = base + str(answer["status_url"])
    deadline = time.monotonic() + timeout
    while True:
        status, batch = _call("GET", url, token)
        if status != 200:
            raise RuntimeError(f"{url} answered {status}: {batch}")
        if batch["status"] in ("done", "failed"):
            return {
                "api": base,
                "file": path.name,
                "batch_id": batch["batch_id"],
                "status": batch["status"],
                "rows": batch["rows"],
                "valid": batch["valid"],
                "error": batch["error"],
            }
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch['batch_id']} still {batch['status']} at {url}")
        time.sleep(0.2)


def wait_for_api(base: str, token: str, server: Worker, timeout: float = 60) -> None:
    def answers() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"hub serve exited early:\n{server.output()}")
        try:
            return _call("GET", base + "/api/v1/stats", token)[0] == 200
        except OSError:
            return False

    wait_until(answers, timeout, f"{base} answers", poll=0.2)


# ------------------------------------------------------------------------------ the store


def epoch_seconds(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _count(conn: sa.Connection, query: Any) -> int:
    return int(conn.execute(query).scalar_one())


def record_statuses(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(records.c.status, sa.func.count()).group_by(records.c.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


# ------------------------------------------------------------------------------ scenario


def scale_out(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    n: int = 20_000,
    *,
    workers: int = 3,
    kill: bool = True,
    files: int = 8,
    per_second: int = 200,
    burst: int = 1,
    latency: tuple[float, float] = (0.005, 0.015),
    scheduler: bool = True,
    job_interval: float = 10.0,
    timeout: float = 600.0,
) -> ScaleOutcome:
    """`n` births uploaded as `files` CSV files through two API processes at once and
    delivered to SIAK by `workers` worker processes (one killed mid-run when `kill`),
    sharing `database_url` (PostgreSQL, a schema of its own) and `redis_url` (flushed
    first) under a SIAK rate limit of `per_second` with `burst`."""
    if kill and workers < 2:
        raise ValueError("killing a worker needs another one to finish")
    root.mkdir(parents=True, exist_ok=True)
    flush_redis(redis_url)
    paths = write_files(root / "files", n, files)
    options = siak_sim.SimulatorOptions(latency=latency, seed=11)
    cpu_before = os.times()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    processes: list[Worker] = []
    with quiet_injected_failures(), siak_sim.running(options) as siak_url:

        def change(document: dict[str, Any]) -> None:
            routes_change(
                siak={
                    "base_url": siak_url,
                    "timeout": 1,
                    "rate_limit": {"per_second": per_second, "burst": burst},
                },
                verify=False,
            )(document)
            document["jobs"] = {
                PROBE_JOB: {"interval": job_interval},
                "reconcile": {"enabled": False},
                "deliveries": {"enabled": False},
            }

        routes = write_routes(root / "routes.yaml", monkeypatch, change)
        env = {
            **hub_env(root, database_url, routes, redis_url),
            "HUB_API_RATE": "100000",
            "HUB_API_BURST": "100000",
            "HUB_API_DAILY_QUOTA": "1000000000",
        }
        hub = open_hub(env)  # migrates the schema once, before any process starts
        try:
            token = TokenService(hub.engine, hub.protector).issue(
                Principal.for_role("user:bench-scale", "admin", ""), ttl=3600
            )
            notes: dict[str, Any] = {}
            if scheduler:
                processes += [
                    start_process(["jobs", "scheduler"], env, root / f"scheduler-{i}.log")
                    for i in (1, 2)
                ]
            apis, bases = start_apis(API_PROCESSES, env, root, token)
            processes += apis

            # 3. upload through both APIs at once
            started_wall = time.time()
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=len(paths)) as pool:
                futures = [
                    pool.submit(upload_and_wait, bases[k % len(bases)], token, path, timeout)
                    for k, path in enumerate(paths)
                ]
                batches = [future.result() for future in futures]
            upload_seconds = time.perf_counter() - started
            bad = [b for b in batches if b["status"] != "done"]
            if bad or sum(int(b["valid"]) for b in batches) != n:
                raise RuntimeError(f"the uploads did not all end done and valid: {batches}")

            # 4. deliver
            delivery_wall = time.time()
            machine_before = machine_times()
            worker_cpu = 0.0
            running = [
                start_process(["worker"], env, root / f"worker-{i}.log")
                for i in range(1, workers + 1)
            ]
            processes += running

            def all_delivered() -> bool:
                for worker in running[1:] if notes.get("killed pid") else running:
                    if worker.process.poll() is not None:
                        raise RuntimeError(f"hub worker exited early:\n{worker.output()}")
                with hub.engine.connect() as conn:
                    return record_statuses(conn).get("delivered", 0) >= n

            if kill:
                target = max(1, n // 3)
                wait_until(
                    lambda: int(sim_stats(siak_url)["accepted"]) >= target,
                    timeout,
                    f"SIAK accepted {target}",
                    poll=0.02,
                )
                victim = running[0]
                with hub.engine.connect() as conn:
                    in_flight = _count(
                        conn,
                        sa.select(sa.func.count())
                        .select_from(outbox)
                        .where(outbox.c.status == "in_flight"),
                    )
                worker_cpu += process_cpu(victim)
                victim.kill()
                notes.update(
                    {
                        "killed pid": victim.process.pid,
                        "killed after s": round(time.time() - delivery_wall, 2),
                        "accepted at kill": int(sim_stats(siak_url)["accepted"]),
                        "in flight at kill": in_flight,
                    }
                )
            wait_until(all_delivered, timeout, f"all {n} records are delivered", poll=0.25)
            notes["seen all delivered after s"] = round(time.time() - delivery_wall, 2)
            machine_after = machine_times()
            worker_cpu += sum(process_cpu(w) for w in running if w.process.poll() is None)
            api_cpu = sum(process_cpu(api) for api in apis)
            stop([w for w in running if w.process.poll() is None])
            notes["worker exit codes"] = [w.process.returncode for w in running]
            time.sleep(0.1)  # the last answers leave the simulator's counters settled
            siak = sim_stats(siak_url)

            # 5. the store, the audit chain, the schedulers
            with hub.engine.connect() as conn:
                statuses = record_statuses(conn)
                dead = _count(
                    conn,
                    sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == "dead"),
                )
                last_done = conn.execute(
                    sa.select(sa.func.max(outbox.c.done_at)).where(outbox.c.kind == "deliver")
                ).scalar_one()
            last = epoch_seconds(str(last_done)) if last_done else time.time()
            verify = subprocess.run(
                [*hub_command(), "audit", "verify"],
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
                    **env,
                },
                capture_output=True,
                text=True,
                timeout=600,
            )
            stop(processes)
            with hub.engine.connect() as conn:
                runs = conn.execute(
                    sa.select(job_runs.c.tick, job_runs.c.outcome).where(
                        job_runs.c.job == PROBE_JOB
                    )
                ).all()
        finally:
            # SIGTERM first: `hub serve` is granian, whose worker outlives a SIGKILLed master
            stop(processes, timeout=15)
            hub.close()
    cpu_after = os.times()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    outcomes: dict[str, int] = {}
    for run in runs:
        outcomes[str(run.outcome)] = outcomes.get(str(run.outcome), 0) + 1
    return ScaleOutcome(
        records=n,
        workers=workers,
        killed=kill,
        per_second=per_second,
        burst=burst,
        upload_seconds=upload_seconds,
        delivery_seconds=last - delivery_wall,
        total_seconds=last - started_wall,
        statuses=statuses,
        dead_letters=dead,
        siak=siak,
        audit_verify_code=verify.returncode,
        audit_verify_output=(verify.stdout + verify.stderr)[-2000:],
        batches=batches,
        job_ticks=[None if run.tick is None else str(run.tick) for run in runs],
        job_outcomes=outcomes,
        load=os.getloadavg(),
        cpu={
            "this process": round(
                (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system), 1
            ),
            "workers": round(worker_cpu, 1),
            "apis": round(api_cpu, 1),
            "machine busy share": round(
                (machine_after[0] - machine_before[0])
                / max(1.0, machine_after[1] - machine_before[1]),
                2,
            ),
            "hub processes": round(
                (children_after.ru_utime - children_before.ru_utime)
                + (children_after.ru_stime - children_before.ru_stime),
                1,
            ),
        },
        notes=notes,
    )


__all__ = ["ScaleOutcome", "birth_row", "scale_out", "write_files"]

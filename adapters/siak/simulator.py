"""A SANDBOX of SIAK: the hub's events contract served by Starlette, for tests, demos and
load runs. It is not SIAK and holds nothing but counters; every answer carries the header
`X-Sandbox: siak-simulator`.

```python
with running(SimulatorOptions(rate_limit=5, fail_5xx=0.1)) as base_url:
    ...  # point a SiakDeliverer at base_url, then GET {base_url}/_sim/stats
```

Endpoints:

- `POST /oauth/token`: client-credentials grant; the client authenticates with HTTP Basic
  (authlib's default, `client_secret_basic`) or with `client_id`/`client_secret` in the form.
  Unknown client -> 401 `{"error": "invalid_client"}`.
- `POST /siak/v1/events`: checked in this order: Bearer token (401), rate limit (429 with
  `Retry-After`, `{"error": "rate_limited"}`), allowed hours in Asia/Jakarta (503 with
  `Retry-After` until the window opens, `{"error": "outside_hours"}`), daily quota (429 until
  midnight WIB, `{"error": "quota_exhausted"}`), `Idempotency-Key` (400), body against
  `mapping.REQUIRED` (422 `{"errors": [...]}` in Indonesian), then failure injection, then
  the ledger: a key seen before -> 409 with the original id (422 if the body differs), else
  the effect is recorded -> 201 `{"id": "SIAK-00000001"}`.
- `GET /siak/v1/counts` (Bearer token): what SIAK confirms, for reconciliation:
  `{"counts": [{"event", "kode_wilayah", "count"}]}`, one person-effect per `wire_identity`
  (a correction is not counted again), by event and the region the hub counts it under
  (`NO_*` for births and deaths, `NO_*_ASAL` for PINDAH, `NO_*_TUJUAN` for DATANG).
- `GET /_sim/stats`, `POST /_sim/reset` (ledger and counters; issued tokens stay valid).

Failure injection (one deterministic draw per events request from `random.Random(seed)`)
happens before the ledger, so a 503 is never applied. Two cases model what really hurts a
client: *timeout* sleeps `timeout_delay` and THEN applies and answers (the client has given
up, but the effect exists: only the idempotency key prevents a second one); *reset* applies
first, then starts the answer with its full `Content-Length`, sends half the body and raises
`SimulatedReset`, which makes uvicorn close the connection, so the client sees the
connection drop mid-response. Both need a real server (`running`, `serve`): under
`httpx2.ASGITransport` nothing times out and `SimulatedReset` surfaces in the client.

`GET /_sim/stats`: `requests` (events requests, any status), `token_requests`, `by_status`,
`accepted` (201s, equal to `effects`), `duplicates` (409s), `rejected` (400s and 422s),
`injected` (failures by kind), `effects` (idempotency keys applied), `effects_by_event`,
`identities` (distinct person-effects: `wire_identity` plus VERSION, so a correction counts
as a new one), `identities_applied_more_than_once` (0 unless one record version came under
two keys), `max_in_any_1s_window` (arrivals in any sliding second, 401s and 429s included),
`max_applied_in_any_1s_window` (measured when applied), `first_arrival`/`last_arrival`
(epoch seconds) and `per_second` (arrivals per epoch second).

The rate limit is a sliding window: at most `int(rate_limit)` admitted requests in any one
second (below 1 req/s: one per `1 / rate_limit` seconds). Options are read on every request,
so a test may change them on a running simulator. Time comes from `options.now`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import math
import random
import secrets
import socket
import threading
import time as _time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.siak.mapping import FAMILY_EVENTS, REQUIRED, wire_identity

WIB: Final = dt.timezone(dt.timedelta(hours=7), "WIB")  # Asia/Jakarta, no daylight saving
SANDBOX_HEADER: Final = (b"x-sandbox", b"siak-simulator")
EVENTS_PATH: Final = "/siak/v1/events"
COUNTS_PATH: Final = "/siak/v1/counts"
#: The region a confirmed event counts under, per event: the wire columns' suffix.
COUNT_REGION: Final = {"CAPIL_LAHIR": "", "CAPIL_MATI": "", "PINDAH": "_ASAL", "DATANG": "_TUJUAN"}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SimulatorOptions:
    """How the sandbox behaves. Probabilities are per events request, 0.0 to 1.0."""

    latency: tuple[float, float] = (0.02, 0.08)  # seconds, uniform
    fail_5xx: float = 0.0
    fail_timeout: float = 0.0
    fail_reset: float = 0.0
    timeout_delay: float = 15.0
    rate_limit: float = 0.0  # admitted requests per second; 0 = no limit
    daily_quota: int | None = None  # events requests per day (WIB)
    allowed_hours: tuple[dt.time, dt.time] | None = None  # [start, end) in WIB
    clients: Mapping[str, str] = field(default_factory=lambda: {"hub-sandbox": "sandbox-secret"})
    token_ttl: int = 3600
    seed: int = 1
    now: Callable[[], dt.datetime] = _utc_now


class SimulatedReset(Exception):
    """Raised on purpose after half a response was sent, so the server drops the connection."""


# ------------------------------------------------------------------------- body validation


def validate_body(body: Any) -> list[str]:
    """What is wrong with an events body, in Indonesian, naming fields and never values."""
    if not isinstance(body, dict):
        return ["Isi permintaan harus objek JSON"]
    event = body.get("EVENT")
    if not isinstance(event, str) or event not in REQUIRED:
        return [f"EVENT tidak dikenal; gunakan salah satu dari: {', '.join(REQUIRED)}"]
    errors: list[str] = []
    if body.get("KIND") not in ("create", "correction"):
        errors.append("KIND harus create atau correction")
    version = body.get("VERSION")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        errors.append("VERSION harus bilangan bulat positif")
    header = body.get("HEADER")
    if not isinstance(header, dict):
        errors.append("HEADER harus objek")
        header = {}
    detail = body.get("DETAIL", [])
    if not isinstance(detail, list):
        errors.append("DETAIL harus daftar")
        detail = []
    required = REQUIRED[event]
    errors += [f"HEADER.{name} wajib diisi" for name in required.header if _blank(header, name)]
    errors += _check_values(header, "HEADER")
    if event not in FAMILY_EVENTS:
        if detail:
            errors.append(f"DETAIL harus kosong untuk {event}")
        return errors
    if not detail:
        errors.append("DETAIL harus berisi minimal satu orang")
    seen: set[Any] = set()
    for number, row in enumerate(detail, start=1):
        where = f"DETAIL[{number}]"
        if not isinstance(row, dict):
            errors.append(f"{where} harus objek")
            continue
        errors += [f"{where}.{name} wajib diisi" for name in required.detail if _blank(row, name)]
        errors += _check_values(row, where)
        if row.get("NIK") in seen:
            errors.append(f"{where}.NIK ganda dalam satu peristiwa")
        seen.add(row.get("NIK"))
    return errors


def _blank(row: Mapping[str, Any], name: str) -> bool:
    return row.get(name) in (None, "")


def _check_values(row: Mapping[str, Any], where: str) -> list[str]:
    errors = []
    for name, value in row.items():
        if value is None:
            continue
        if name.startswith("NIK") or name == "NO_KK":
            if not _is_int(value) or not 10**15 <= value < 10**16:
                errors.append(f"{where}.{name} harus angka 16 digit")
        elif name.startswith("TGL_"):
            if not _is_wire_date(value):
                errors.append(f"{where}.{name} harus tanggal DD-MM-YYYY")
        elif name.startswith(("NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL", "NO_RT", "NO_RW")):
            if not _is_int(value) or value < 0:
                errors.append(f"{where}.{name} harus angka")
    return errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_wire_date(value: Any) -> bool:
    try:
        dt.datetime.strptime(value, "%d-%m-%Y")  # noqa: DTZ007 - a calendar date, no time
    except (TypeError, ValueError):
        return False
    return len(value) == 10


def _rows(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The person rows of an event: the HEADER, or each DETAIL row merged over it."""
    header = body["HEADER"]
    if body["EVENT"] in FAMILY_EVENTS:
        return [{**header, **row} for row in body["DETAIL"]]
    return [dict(header)]


# ------------------------------------------------------------------------------ the ledger


class _WindowMax:
    """The largest number of timestamps seen in any sliding one-second window."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()
        self.max = 0

    def add(self, t: float) -> None:
        while self._times and self._times[0] <= t - 1.0:
            self._times.popleft()
        self._times.append(t)
        self.max = max(self.max, len(self._times))


class Simulator:
    """The sandbox's state and handlers; `create_app` wires them into Starlette."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self._tokens: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the ledger and every counter; reseed the failure draws."""
        self._rng = random.Random(self.options.seed)
        self._ledger: dict[str, tuple[str, str]] = {}  # key -> (remote id, body digest)
        self._identities: Counter[str] = Counter()
        self._confirmed: dict[str, tuple[str, str]] = {}  # identity -> (event, kode_wilayah)
        self._effects_by_event: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()
        self._injected: Counter[str] = Counter()
        self._per_second: Counter[int] = Counter()
        self._arrivals = _WindowMax()
        self._applied = _WindowMax()
        self._admitted: deque[float] = deque()
        self._quota_day: dt.date | None = None
        self._quota_used = 0
        self._requests = 0
        self._token_requests = 0
        self._first: float | None = None
        self._last: float | None = None

    # ------------------------------------------------------------------------ token

    async def token(self, request: Request) -> Response:
        self._token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        client_id, secret = _basic_credentials(request.headers.get("Authorization"))
        if client_id is None:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        known = self.options.clients.get(client_id or "")
        if known is None or secret is None or not secrets.compare_digest(known, secret):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Klien tidak dikenal"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="siak-sandbox"'},
            )
        grant = form.get("grant_type")
        if grant != "client_credentials":
            error = "invalid_request" if grant is None else "unsupported_grant_type"
            return JSONResponse({"error": error}, status_code=400)
        now = self.options.now().timestamp()
        self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
        access_token = secrets.token_urlsafe(24)
        self._tokens[access_token] = now + self.options.token_ttl
        answer: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.options.token_ttl,
        }
        if form.get("scope"):
            answer["scope"] = form["scope"]
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # ------------------------------------------------------------------------ events

    async def events(self, request: Request) -> Response:
        options = self.options
        now = options.now()
        arrival = now.timestamp()
        self._arrive(arrival)
        latency = self._rng.uniform(*options.latency)
        draw = self._rng.random()

        refused = self._gate(request, now)
        key = request.headers.get("Idempotency-Key", "").strip()
        if refused is None and not key:
            refused = _errors(400, ["Header Idempotency-Key wajib diisi"])
        body: Any = None
        if refused is None:
            try:
                body = json.loads(await request.body())
            except ValueError:
                refused = _errors(400, ["Isi permintaan bukan JSON yang sah"])
        if refused is None:
            problems = validate_body(body)
            if problems:
                refused = _errors(422, problems)
        if refused is not None:
            await _sleep(latency)
            return self._answer(refused)

        if draw < options.fail_5xx:
            self._injected["5xx"] += 1
            await _sleep(latency)
            return self._answer(_errors(503, ["Layanan sedang gangguan (simulasi)"], "unavailable"))
        draw -= options.fail_5xx
        if draw < options.fail_timeout:
            self._injected["timeout"] += 1
            await asyncio.sleep(options.timeout_delay)
            return self._answer(self._apply(key, body))
        draw -= options.fail_timeout
        if draw < options.fail_reset:
            self._injected["reset"] += 1
            return _CutResponse(self._answer(self._apply(key, body)))
        answer = self._apply(key, body)
        await _sleep(latency)
        return self._answer(answer)

    def _arrive(self, t: float) -> None:
        self._requests += 1
        self._arrivals.add(t)
        self._per_second[int(t)] += 1
        self._first = t if self._first is None else self._first
        self._last = t

    def _gate(self, request: Request, now: dt.datetime) -> JSONResponse | None:
        """Token, rate limit, hours and quota: the answers that come before the body."""
        options = self.options
        t = now.timestamp()
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self._tokens.get(token.strip(), 0.0) <= t:
            return JSONResponse(
                {"error": "invalid_token", "errors": ["Token akses tidak sah atau kedaluwarsa"]},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        wait = self._rate_wait(t)
        if wait is not None:
            return _errors(429, ["Terlalu banyak permintaan"], "rate_limited", retry_after=wait)
        local = now.astimezone(WIB)
        if options.allowed_hours is not None:
            wait = _until_open(local, *options.allowed_hours)
            if wait > 0:
                return _errors(503, ["Di luar jam layanan"], "outside_hours", retry_after=wait)
        if options.daily_quota is not None:
            if self._quota_day != local.date():
                self._quota_day, self._quota_used = local.date(), 0
            if self._quota_used >= options.daily_quota:
                midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), WIB)
                wait = (midnight - local).total_seconds()
                return _errors(429, ["Kuota harian habis"], "quota_exhausted", retry_after=wait)
            self._quota_used += 1
        return None

    def _rate_wait(self, t: float) -> float | None:
        """None when admitted, else the seconds until a slot frees up."""
        rate = self.options.rate_limit
        if rate <= 0:
            return None
        window, limit = (1.0, int(rate)) if rate >= 1 else (1.0 / rate, 1)
        while self._admitted and self._admitted[0] <= t - window:
            self._admitted.popleft()
        if len(self._admitted) < limit:
            self._admitted.append(t)
            return None
        return self._admitted[0] + window - t

    def _apply(self, key: str, body: Mapping[str, Any]) -> JSONResponse:
        """The ledger: one effect per idempotency key. No await in here: it is atomic."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if key in self._ledger:
            remote_id, seen = self._ledger[key]
            if seen != digest:
                return _errors(422, ["Idempotency-Key sudah dipakai untuk isi yang berbeda"])
            return JSONResponse({"id": remote_id, "duplicate": True}, status_code=409)
        remote_id = f"SIAK-{len(self._ledger) + 1:08d}"
        self._ledger[key] = (remote_id, digest)
        event = body["EVENT"]
        self._effects_by_event[event] += 1
        for row in _rows(body):
            identity = wire_identity(event, row)
            self._identities[f"{identity}|v{body['VERSION']}"] += 1
            self._confirmed[identity] = (event, _region_code(row, COUNT_REGION[event]))
        self._applied.add(self.options.now().timestamp())
        return JSONResponse({"id": remote_id}, status_code=201)

    def _answer(self, response: Response) -> Response:
        self._by_status[response.status_code] += 1
        return response

    # ------------------------------------------------------------------------ stats

    def stats(self) -> dict[str, Any]:
        """Counters for tests and load runs (described in the module docstring)."""
        by_status = self._by_status
        return {
            "requests": self._requests,
            "token_requests": self._token_requests,
            "by_status": {str(status): n for status, n in sorted(by_status.items())},
            "accepted": by_status[201],
            "duplicates": by_status[409],
            "rejected": by_status[400] + by_status[422],
            "injected": dict(self._injected),
            "effects": len(self._ledger),
            "effects_by_event": dict(self._effects_by_event),
            "identities": len(self._identities),
            "identities_applied_more_than_once": sum(n > 1 for n in self._identities.values()),
            "max_in_any_1s_window": self._arrivals.max,
            "max_applied_in_any_1s_window": self._applied.max,
            "first_arrival": self._first,
            "last_arrival": self._last,
            "per_second": {str(s): n for s, n in sorted(self._per_second.items())},
        }

    async def counts(self, request: Request) -> Response:
        """What SIAK holds per event and region (reconciliation); needs a token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self._tokens.get(token.strip(), 0.0) <= (
            self.options.now().timestamp()
        ):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        cells = Counter(self._confirmed.values())
        rows = [
            {"event": event, "kode_wilayah": kode, "count": n}
            for (event, kode), n in sorted(cells.items())
        ]
        return JSONResponse({"counts": rows})

    async def stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def reset_endpoint(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})


# --------------------------------------------------------------------------------- helpers


def _errors(
    status: int, errors: list[str], error: str | None = None, *, retry_after: float | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"errors": errors}
    if error is not None:
        body["error"] = error
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse(body, status_code=status, headers=headers)


def _region_code(row: Mapping[str, Any], suffix: str) -> str:
    """`NO_PROP`... numbers of a wire row as a dotted region code (`32.73.01.1001`)."""
    parts = [row.get(f"{name}{suffix}") for name in ("NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL")]
    if not all(isinstance(p, int) for p in parts):
        return ""
    prop, kab, kec, kel = (int(p) for p in parts if isinstance(p, int))
    return f"{prop:02d}.{kab:02d}.{kec:02d}.{kel:04d}"


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    """`(client_id, secret)` from HTTP Basic; RFC 6749 form-encodes both, authlib does not,
    so both spellings are accepted."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


def _until_open(local: dt.datetime, start: dt.time, end: dt.time) -> float:
    """Seconds until the [start, end) window opens; 0 while it is open. May span midnight."""
    now = local.time()
    is_open = start <= now < end if start <= end else (now >= start or now < end)
    if is_open:
        return 0.0
    opening = dt.datetime.combine(local.date(), start, local.tzinfo)
    if opening <= local:
        opening += dt.timedelta(days=1)
    return (opening - local).total_seconds()


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


class _CutResponse(Response):
    """Sends the head of `inner` (with its full Content-Length) and half its body, then
    raises `SimulatedReset`: uvicorn closes the connection, the client sees it drop."""

    def __init__(self, inner: Response) -> None:
        super().__init__(inner.body, status_code=inner.status_code)
        self.raw_headers = inner.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytes(self.body)
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        raise SimulatedReset("connection cut on purpose (fail_reset)")


class _SandboxHeader:
    """Pure ASGI middleware (it must not buffer: the reset case relies on streaming)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), SANDBOX_HEADER]
            await send(message)

        await self.app(scope, receive, send_marked)


def create_app(options: SimulatorOptions | None = None) -> Starlette:
    """The sandbox as a Starlette app; its `Simulator` is `app.state.simulator`."""
    simulator = Simulator(options or SimulatorOptions())
    app = Starlette(
        routes=[
            Route("/oauth/token", simulator.token, methods=["POST"]),
            Route(EVENTS_PATH, simulator.events, methods=["POST"]),
            Route(COUNTS_PATH, simulator.counts, methods=["GET"]),
            Route("/_sim/stats", simulator.stats_endpoint, methods=["GET"]),
            Route("/_sim/reset", simulator.reset_endpoint, methods=["POST"]),
        ]
    )
    app.add_middleware(_SandboxHeader)
    app.state.simulator = simulator
    return app


# ---------------------------------------------------------------------------------- serving


class _DropInjectedResets(logging.Filter):
    """Keeps uvicorn from logging a traceback for every reset injected on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedReset))


_RESET_FILTER: Final = _DropInjectedResets()


def _config(app: Starlette, **kwargs: Any) -> uvicorn.Config:
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, ws="none", http="h11", **kwargs
    )
    error_log = logging.getLogger("uvicorn.error")
    if _RESET_FILTER not in error_log.filters:
        error_log.addFilter(_RESET_FILTER)
    return config


def serve(
    options: SimulatorOptions | None = None, host: str = "127.0.0.1", port: int = 8702
) -> None:
    """Run the sandbox in the foreground (Ctrl+C stops it)."""
    uvicorn.Server(_config(create_app(options), host=host, port=port)).run()


@contextmanager
def running(options: SimulatorOptions | None = None, port: int = 0) -> Iterator[str]:
    """Serve the sandbox from a background thread; yields its base URL.

    `port=0` picks a free port. The socket is bound before the thread starts and the URL is
    yielded once uvicorn accepts connections; leaving the block stops the server, cancelling
    requests still sleeping after one second.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = _config(
        create_app(options), log_config=None, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="siak-simulator", daemon=True
    )
    thread.start()
    try:
        deadline = _time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or _time.monotonic() > deadline:
                raise RuntimeError("the SIAK simulator did not start")
            _time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

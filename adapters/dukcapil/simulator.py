"""A SANDBOX of the Dukcapil verify-by-element service, for tests, demos and load trials.

It is not Dukcapil and knows no real person: it answers from `population.generate_population`
(invented, seeded) plus `SimulatorOptions.extra_people`, and marks every response with the
header `X-Sandbox: dukcapil-simulator`.

```python
from adapters.dukcapil.simulator import SimulatorOptions, create_app, running

app = create_app(SimulatorOptions(seed=7, daily_quota=100))       # in process (ASGITransport)
with running(SimulatorOptions(fail_5xx=0.1)) as base_url:         # real uvicorn, free port
    ...
```

`POST /dukcapil/get_json/{id_lembaga}/CALL_VERIFY_BY_ELEMEN` checks, in this order: empty
user/password/IP (09), unknown institution (16), login (03), client IP (04), allowed hours in
Asia/Jakarta time (06), today's quota (05), then the record: no NIK or a bad TRESHOLD (07),
malformed NIK (15), unknown NIK (13), the NIK held by two people (12, e.g. via
`extra_people`), deceased (11), inactive (14); otherwise a verdict per submitted element.
Names, birthplaces and addresses get a fuzzy score (difflib ratio of the normalised
upper-case text) judged against TRESHOLD: `"Sesuai (93)"`; dates, codes, RT/RW and the rest
are compared exactly: `"Sesuai"` / `"Tidak Sesuai"`. The NIK is echoed as it is.

Quota: each call that gets past login, hours and quota checks uses one unit; 429s, injected
failures, login and hours refusals do not. Every answer carries `quotaLimiter` (calls left
today, null without a quota). The quota day follows the Asia/Jakarta date of `now()`.

Operations, before any of the above: latency (uniform in `latency`), the rate limit
(token bucket of `rate_limit` calls/s, HTTP 429 with `Retry-After`), then one draw of the
injected failures: HTTP 503 (`fail_5xx`), a stall of `timeout_delay` s before a normal
answer (`fail_timeout`), or a connection reset (`fail_reset`). A reset starts a 200
response with a `Content-Length`, sends part of the body and raises `SimulatedReset`, so
under uvicorn the client sees the connection drop mid-body (`httpx2.ReadError` or
`RemoteProtocolError`, both `TransportError`); uvicorn logs the exception. In process,
`httpx2.ASGITransport` re-raises `SimulatedReset` instead: test resets through `running()`.

`GET /_sim/stats` counts requests, answers by code and HTTP status, injected failures, quota,
how many distinct NIKs were asked and how many were asked more than once (never the NIKs);
`POST /_sim/reset-quota` starts a new quota day; `POST /_sim/reset` clears the counters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.dukcapil import wire
from adapters.dukcapil.population import Person, generate_population, index_by_nik, is_valid_nik

JAKARTA: Final = ZoneInfo("Asia/Jakarta")
SANDBOX_HEADER: Final = ("X-Sandbox", "dukcapil-simulator")
_FUZZY: Final = frozenset({"NAMA_LGKP", "TMPT_LHR", "ALAMAT"})
_NUMERIC: Final = frozenset({"NO_RT", "NO_RW", "NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL"})
#: JENIS_KLMIN as written (after `_normalise`: "Laki-Laki" -> "LAKI LAKI") -> L/P.
_GENDER: Final = dict.fromkeys(["L", "LAKI LAKI", "LAKI", "PRIA", "1"], "L") | dict.fromkeys(
    ["P", "PEREMPUAN", "WANITA", "2"], "P"
)
_PUNCTUATION = re.compile(r"[^\w ]+")
_SPACES = re.compile(r"\s+")


def _jakarta_now() -> dt.datetime:
    return dt.datetime.now(JAKARTA)


@dataclass
class SimulatorOptions:
    """How the sandbox behaves. Defaults: 2,000 people in the demo regions, 50-200 ms latency,
    no failures, no rate limit, no quota, open all day."""

    seed: int = 1
    population_size: int = 2000
    wilayah: Sequence[str] | None = None  # dotted desa codes; None: the hub's demo subset
    latency: tuple[float, float] = (0.05, 0.2)  # seconds, uniform
    fail_5xx: float = 0.0  # probabilities, drawn once per call
    fail_timeout: float = 0.0
    fail_reset: float = 0.0
    timeout_delay: float = 15.0  # seconds an injected timeout stalls
    rate_limit: float = 0.0  # calls per second; 0: unlimited
    daily_quota: int | None = None
    allowed_hours: tuple[dt.time, dt.time] | None = None  # Asia/Jakarta; start > end wraps
    id_lembaga: str = "SANDBOX-LAMPID"
    user_id: str = "sandbox"
    password: str = "sandbox-secret"
    ip_user: str = "127.0.0.1"
    extra_people: Sequence[Person] = ()
    deceased_share: float = 0.03
    inactive_share: float = 0.01
    now: Callable[[], dt.datetime] = _jakarta_now  # naive results count as Jakarta time
    rng: random.Random | None = None  # latency and failure draws; None: Random(seed)
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    monotonic: Callable[[], float] = time.monotonic  # for the rate limit

    def credentials(self) -> dict[str, str]:
        """The `credentials` block a `DukcapilVerifier` needs to pass the login checks."""
        return {
            "id_lembaga": self.id_lembaga,
            "user_id": self.user_id,
            "password": self.password,
            "ip_user": self.ip_user,
        }


class SimulatedReset(Exception):
    """Raised mid-response to make uvicorn drop the connection."""


@dataclass
class _Stats:
    requests: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    http_status: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    asked: Counter[str] = field(default_factory=Counter)  # NIK -> times; never exposed


class _Simulator:
    """The state behind one app: population, counters, quota day, token bucket."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        people = generate_population(
            options.seed,
            options.population_size,
            options.wilayah,
            deceased_share=options.deceased_share,
            inactive_share=options.inactive_share,
        )
        self.people = index_by_nik([*people, *options.extra_people])
        self.rng = options.rng if options.rng is not None else random.Random(options.seed)
        self.stats = _Stats()
        self.quota_day = self.today()
        self.quota_used = 0
        self.tokens = max(1.0, options.rate_limit)
        self.refilled = options.monotonic()

    def local_now(self) -> dt.datetime:
        now = self.options.now()
        return now.replace(tzinfo=JAKARTA) if now.tzinfo is None else now.astimezone(JAKARTA)

    def today(self) -> dt.date:
        return self.local_now().date()

    def quota_left(self) -> int | None:
        if self.options.daily_quota is None:
            return None
        if self.today() != self.quota_day:
            self.quota_day, self.quota_used = self.today(), 0
        return max(0, self.options.daily_quota - self.quota_used)

    def take_token(self) -> float | None:
        """None when the call may go on, else seconds until a token is free."""
        rate = self.options.rate_limit
        if rate <= 0:
            return None
        now = self.options.monotonic()
        self.tokens = min(max(1.0, rate), self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / rate

    def within_hours(self) -> bool:
        hours = self.options.allowed_hours
        if hours is None:
            return True
        start, end = hours
        now = self.local_now().time()
        return start <= now < end if start <= end else (now >= start or now < end)

    def snapshot(self) -> dict[str, Any]:
        stats = self.stats
        left = self.quota_left()
        return {
            "requests": stats.requests,
            "by_code": dict(stats.by_code),
            "http_status": dict(stats.http_status),
            "injected": dict(stats.injected),
            "quota_used": self.quota_used,
            "quota_left": left,
            "niks_asked": len(stats.asked),
            "asked_more_than_once": sum(1 for n in stats.asked.values() if n > 1),
        }


# ------------------------------------------------------------------------------- answers


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.upper())).strip()


def _score(asked: str, known: str) -> int:
    return round(difflib.SequenceMatcher(None, _normalise(asked), _normalise(known)).ratio() * 100)


def _same_date(asked: str, known: dt.date) -> bool:
    parts = re.split(r"[-/.]", asked.strip())
    try:
        day, month, year = (int(p) for p in parts)
        return dt.date(year, month, day) == known
    except ValueError:
        return False


def _same_code(asked: str, known: str) -> bool:
    asked, known = asked.strip(), known.strip()
    if asked.isdigit() and known.isdigit():
        return int(asked) == int(known)
    return asked.upper() == known.upper()


def _verdicts(person: Person, body: Mapping[str, str], threshold: int) -> dict[str, str]:
    known = person.elements()
    item: dict[str, str] = {"NIK": person.nik}
    for key, asked in body.items():
        if key == "NIK" or key in wire.RESERVED_KEYS or key not in known:
            continue
        if key in _FUZZY:
            score = _score(asked, known[key])
            item[key] = wire.format_verdict(score >= threshold, score)
        elif key == "TGL_LHR":
            item[key] = wire.format_verdict(_same_date(asked, person.tanggal_lahir))
        elif key == "JENIS_KLMIN":
            gender = _GENDER.get(_normalise(asked))
            item[key] = wire.format_verdict(gender == person.jenis_kelamin)
        elif key in _NUMERIC:
            item[key] = wire.format_verdict(_same_code(asked, known[key]))
        else:
            item[key] = wire.format_verdict(asked.strip() == known[key])
    return item


def _threshold(value: object) -> int | None:
    if value is None:
        return 80
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= 100:
        return value
    return None


def _coded(code: str) -> dict[str, str]:
    return {"RESPON": wire.RESPONSE_TEXT[code], "RESPONSE_CODE": code}


def _answer(sim: _Simulator, id_lembaga: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The `content[0]` item for one call; counts quota and NIKs."""
    options = sim.options
    if not all(isinstance(body.get(k), str) and body[k].strip() for k in wire.CREDENTIAL_KEYS):
        return _coded("09")
    if id_lembaga != options.id_lembaga:
        return _coded("16")
    if body["USER_ID"] != options.user_id or body["PASSWORD"] != options.password:
        return _coded("03")
    if body["IP_USER"] != options.ip_user:
        return _coded("04")
    if not sim.within_hours():
        return _coded("06")
    if sim.quota_left() == 0:
        return _coded("05")
    sim.quota_used += 1
    elements = {k: str(v) for k, v in body.items() if isinstance(v, str | int) and k != "TRESHOLD"}
    threshold = _threshold(body.get(wire.THRESHOLD_KEY))
    nik = elements.get("NIK", "").strip()
    if not nik or threshold is None:
        return _coded("07")
    sim.stats.asked[nik] += 1
    if not is_valid_nik(nik):
        return _coded("15")
    people = sim.people.get(nik, [])
    if not people:
        return _coded("13")
    if len(people) > 1:
        return _coded("12")
    person = people[0]
    if person.status == "meninggal":
        return _coded("11")
    if person.status == "nonaktif":
        return _coded("14")
    return _verdicts(person, elements, threshold)


# ---------------------------------------------------------------------------------- routes


class _ResetResponse(Response):
    """Promises a body, sends part of it, then breaks (see the module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"content": [', "more_body": True})
        raise SimulatedReset("simulated connection reset")


def _json(
    sim: _Simulator, status: int, data: Any, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    sim.stats.http_status[str(status)] += 1
    return JSONResponse(data, status_code=status, headers=headers)


async def _verify(request: Request) -> Response:
    sim: _Simulator = request.app.state.simulator
    options = sim.options
    sim.stats.requests += 1
    low, high = options.latency
    if high > 0:
        await options.sleep(sim.rng.uniform(low, high))
    wait = sim.take_token()
    if wait is not None:
        return _json(
            sim, 429, {"error": "Too Many Requests"}, {"Retry-After": str(math.ceil(wait))}
        )
    draw = sim.rng.random()
    if draw < options.fail_5xx:
        sim.stats.injected["5xx"] += 1
        return _json(sim, 503, {"error": "Service Unavailable"}, {"Retry-After": "1"})
    draw -= options.fail_5xx
    if draw < options.fail_timeout:
        sim.stats.injected["timeout"] += 1
        await options.sleep(options.timeout_delay)
    elif draw - options.fail_timeout < options.fail_reset:
        sim.stats.injected["reset"] += 1
        return _ResetResponse()
    try:
        body = await request.json()
    except ValueError:
        return _json(sim, 400, {"error": "Bad Request: body is not JSON"})
    if not isinstance(body, dict):
        return _json(sim, 400, {"error": "Bad Request: body is not a JSON object"})
    item = _answer(sim, request.path_params["id_lembaga"], body)
    sim.stats.by_code[item.get("RESPONSE_CODE", "00")] += 1
    return _json(sim, 200, wire.make_page(item, sim.quota_left()))


async def _stats(request: Request) -> Response:
    return JSONResponse(request.app.state.simulator.snapshot())


async def _reset_quota(request: Request) -> Response:
    sim: _Simulator = request.app.state.simulator
    sim.quota_day, sim.quota_used = sim.today(), 0
    return JSONResponse(sim.snapshot())


async def _reset(request: Request) -> Response:
    sim: _Simulator = request.app.state.simulator
    sim.stats = _Stats()
    return JSONResponse(sim.snapshot())


class _SandboxHeader:
    """Adds `X-Sandbox: dukcapil-simulator` to every response, 404s included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(*SANDBOX_HEADER)
            await send(message)

        await self.app(scope, receive, send_marked if scope["type"] == "http" else send)


def create_app(options: SimulatorOptions | None = None) -> Starlette:
    """The sandbox as an ASGI app; its state lives in `app.state.simulator`."""
    app = Starlette(
        routes=[
            Route(wire.VERIFY_PATH, _verify, methods=["POST"]),
            Route("/_sim/stats", _stats, methods=["GET"]),
            Route("/_sim/reset-quota", _reset_quota, methods=["POST"]),
            Route("/_sim/reset", _reset, methods=["POST"]),
        ],
        middleware=[Middleware(_SandboxHeader)],
    )
    app.state.simulator = _Simulator(options or SimulatorOptions())
    return app


# --------------------------------------------------------------------------------- serving


def serve(
    options: SimulatorOptions | None = None, host: str = "127.0.0.1", port: int = 8701
) -> None:
    """Run the sandbox under uvicorn until interrupted."""
    uvicorn.run(create_app(options), host=host, port=port, log_level="warning")


class RunningSimulator:
    """The sandbox under uvicorn in a background thread; `url` once `start()` returned.

    ```python
    with RunningSimulator(SimulatorOptions(fail_reset=1.0)) as sim:
        verifier = DukcapilVerifier({"base_url": sim.url, ...})
    ```
    """

    def __init__(
        self, options: SimulatorOptions | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = create_app(options)
        self.host, self.port = host, port
        self.url = ""
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the process's logging alone
            log_level="warning",
            ws="none",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self, wait: float = 10.0) -> str:
        """Bind, serve in a thread, return the base URL once connections are accepted."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="dukcapil-simulator",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Dukcapil simulator did not start")
            time.sleep(0.01)
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    def stop(self) -> None:
        """Ask uvicorn to finish and wait for the thread."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> RunningSimulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(options: SimulatorOptions | None = None, port: int = 0) -> Iterator[str]:
    """Serve the sandbox on `port` (0: a free one) for the block; yields the base URL."""
    with RunningSimulator(options, port=port) as simulator:
        yield simulator.url

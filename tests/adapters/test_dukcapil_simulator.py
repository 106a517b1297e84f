"""The Dukcapil sandbox: answers, codes, quota, hours, rate limit and injected failures, through
DukcapilVerifier in process (ASGITransport) and, for connection resets, under real uvicorn."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import httpx2
import pytest

from adapters.dukcapil.client import DukcapilVerifier
from adapters.dukcapil.population import Person, generate_population
from adapters.dukcapil.simulator import (
    JAKARTA,
    SimulatedReset,
    SimulatorOptions,
    create_app,
    running,
)
from hub.errors import (
    FatalDeliveryError,
    OutsideHoursError,
    QuotaExhaustedError,
    RejectedRecordError,
    RetriableDeliveryError,
)

pytestmark = pytest.mark.anyio

SIZE = 200
PEOPLE = generate_population(1, SIZE)
ALIVE = next(p for p in PEOPLE if p.status == "hidup")
DEAD = dataclasses.replace(ALIVE, nik="3273012512500001", status="meninggal")
GONE = dataclasses.replace(ALIVE, nik="3273012512500002", status="nonaktif")
TWIN = dataclasses.replace(ALIVE, nik="3273012512500003")
UNKNOWN_NIK = ALIVE.nik[:12] + "9999"


class Clock:
    def __init__(self, when: dt.datetime) -> None:
        self.when = when

    def __call__(self) -> dt.datetime:
        return self.when


def sim_options(**changes: Any) -> SimulatorOptions:
    base: dict[str, Any] = {
        "population_size": SIZE,
        "latency": (0.0, 0.0),
        "now": Clock(dt.datetime(2025, 8, 18, 10, 0, tzinfo=JAKARTA)),
        "extra_people": (DEAD, GONE, TWIN, TWIN),
    }
    return SimulatorOptions(**{**base, **changes})


def verifier_for(app: Any, options: SimulatorOptions, **credentials: str) -> DukcapilVerifier:
    config = {
        "base_url": "http://sandbox",
        "credentials": {**options.credentials(), **credentials},
        "options": {"threshold": 80},
    }
    return DukcapilVerifier(config, transport=httpx2.ASGITransport(app=app))


async def ask(options: SimulatorOptions, elements: dict[str, str], **credentials: str):
    async with verifier_for(create_app(options), options, **credentials) as v:
        return await v.verify(elements)


def raw_client(app: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://sandbox")


# ------------------------------------------------------------------------------ verdicts


async def test_found_person_matches_on_every_element():
    answer = await ask(sim_options(), ALIVE.elements())
    assert answer.code == "00"
    assert set(answer.verdicts) == set(ALIVE.elements()) - {"NIK"}  # the NIK echo is ignored
    assert all(v.match for v in answer.verdicts.values())
    assert answer.verdicts["NAMA_LGKP"].score == 100
    assert answer.verdicts["TGL_LHR"].score is None
    assert answer.quota_left is None


async def test_mismatches_and_fuzzy_scores():
    elements = {
        "NIK": ALIVE.nik,
        "NAMA_LGKP": ALIVE.nama.lower()[:-1],  # one letter short, lower case
        "ALAMAT": "JL. ENTAH BERANTAH NO. 999",
        "TGL_LHR": (ALIVE.tanggal_lahir + dt.timedelta(days=1)).strftime("%d-%m-%Y"),
        "JENIS_KLMIN": "Perempuan" if ALIVE.jenis_kelamin == "L" else "Laki-Laki",
        "NO_RT": str(int(ALIVE.rt)),  # "3" is RT 003
        "NO_KK": "3273010101010001",
    }
    verdicts = (await ask(sim_options(), elements)).verdicts
    name = verdicts["NAMA_LGKP"]
    assert name.match
    assert name.score is not None
    assert 80 <= name.score < 100
    assert not verdicts["ALAMAT"].match
    assert verdicts["ALAMAT"].score is not None
    assert verdicts["ALAMAT"].score < 80
    assert not verdicts["TGL_LHR"].match
    assert not verdicts["JENIS_KLMIN"].match
    assert verdicts["NO_RT"].match
    assert not verdicts["NO_KK"].match


async def test_threshold_decides_fuzzy_match():
    elements = {"NIK": ALIVE.nik, "NAMA_LGKP": ALIVE.nama[:-1]}
    options = sim_options()
    app = create_app(options)
    config = {"base_url": "http://sandbox", "credentials": options.credentials()}
    for threshold, match in ((80, True), (100, False)):
        async with DukcapilVerifier(
            {**config, "options": {"threshold": threshold}},
            transport=httpx2.ASGITransport(app=app),
        ) as v:
            assert (await v.verify(elements)).verdicts["NAMA_LGKP"].match is match


# --------------------------------------------------------------------- record-level codes


@pytest.mark.parametrize(
    ("nik", "code"),
    [
        (DEAD.nik, "11"),
        (TWIN.nik, "12"),
        (UNKNOWN_NIK, "13"),
        (GONE.nik, "14"),
        ("3273013213900001", "15"),  # day 32
        ("32730112", "15"),
    ],
)
async def test_record_level_codes(nik, code):
    answer = await ask(sim_options(), {"NIK": nik, "NAMA_LGKP": "SIAPA SAJA"})
    assert answer.code == code
    assert answer.verdicts == {}
    assert answer.message


async def test_generated_population_has_deceased_people():
    dead = next(p for p in PEOPLE if p.status == "meninggal")
    assert (await ask(sim_options(extra_people=()), {"NIK": dead.nik})).code == "11"


async def test_no_nik_is_incomplete():
    with pytest.raises(RejectedRecordError) as info:
        await ask(sim_options(), {"NAMA_LGKP": ALIVE.nama})
    assert info.value.code == "07"


# ------------------------------------------------------------------- connector-level codes


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ({"password": "wrong"}, "03"),
        ({"user_id": "someone"}, "03"),
        ({"ip_user": "10.9.9.9"}, "04"),
        ({"id_lembaga": "LEMBAGA-LAIN"}, "16"),
    ],
)
async def test_credential_codes_are_fatal(credentials, code):
    with pytest.raises(FatalDeliveryError) as info:
        await ask(sim_options(), ALIVE.elements(), **credentials)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"USER_ID": "", "PASSWORD": "sandbox-secret", "IP_USER": "127.0.0.1"}, "09"),
        ({"USER_ID": "sandbox", "IP_USER": "127.0.0.1"}, "09"),
        ({"USER_ID": "sandbox", "PASSWORD": "sandbox-secret", "IP_USER": None}, "09"),
        (
            {"USER_ID": "sandbox", "PASSWORD": "sandbox-secret", "IP_USER": "127.0.0.1"}
            | {"TRESHOLD": 150},
            "07",
        ),
    ],
)
async def test_raw_codes(body, code):
    options = sim_options()
    async with raw_client(create_app(options)) as client:
        response = await client.post(
            f"/dukcapil/get_json/{options.id_lembaga}/CALL_VERIFY_BY_ELEMEN",
            json={**body, "NIK": ALIVE.nik},
        )
    assert response.status_code == 200
    assert response.json()["content"][0]["RESPONSE_CODE"] == code


async def test_body_that_is_not_json_is_400_and_marked_sandbox():
    async with raw_client(create_app(sim_options())) as client:
        response = await client.post(
            "/dukcapil/get_json/SANDBOX-LAMPID/CALL_VERIFY_BY_ELEMEN", content=b"NIK=1"
        )
        missing = await client.get("/nowhere")
    assert response.status_code == 400
    assert response.headers["X-Sandbox"] == "dukcapil-simulator"
    assert missing.headers["X-Sandbox"] == "dukcapil-simulator"


# ------------------------------------------------------------------------- quota and hours


async def test_daily_quota_runs_out_and_resets():
    clock = Clock(dt.datetime(2025, 8, 18, 23, 0, tzinfo=JAKARTA))
    options = sim_options(daily_quota=2, now=clock)
    app = create_app(options)
    async with verifier_for(app, options) as v, raw_client(app) as client:
        assert (await v.verify(ALIVE.elements())).quota_left == 1
        assert (await v.verify({"NIK": UNKNOWN_NIK})).quota_left == 0
        with pytest.raises(QuotaExhaustedError) as info:
            await v.verify(ALIVE.elements())
        assert info.value.code == "05"
        with pytest.raises(FatalDeliveryError):
            async with verifier_for(app, options, password="wrong") as bad:
                await bad.verify(ALIVE.elements())  # refused logins use no quota

        stats = (await client.get("/_sim/stats")).json()
        assert stats["quota_used"] == 2
        assert stats["quota_left"] == 0
        assert stats["by_code"] == {"00": 1, "13": 1, "05": 1, "03": 1}

        await client.post("/_sim/reset-quota")
        assert (await v.verify(ALIVE.elements())).quota_left == 1

        clock.when += dt.timedelta(hours=2)  # a new day in Jakarta
        assert (await v.verify(ALIVE.elements())).quota_left == 1


@pytest.mark.parametrize(
    ("hours", "when", "allowed"),
    [
        ((dt.time(8), dt.time(16)), dt.datetime(2025, 8, 18, 7, 59, tzinfo=JAKARTA), False),
        ((dt.time(8), dt.time(16)), dt.datetime(2025, 8, 18, 8, 0, tzinfo=JAKARTA), True),
        ((dt.time(8), dt.time(16)), dt.datetime(2025, 8, 18, 16, 0, tzinfo=JAKARTA), False),
        ((dt.time(8), dt.time(16)), dt.datetime(2025, 8, 18, 1, 30, tzinfo=dt.UTC), True),
        ((dt.time(22), dt.time(6)), dt.datetime(2025, 8, 18, 23, 0, tzinfo=JAKARTA), True),
        ((dt.time(22), dt.time(6)), dt.datetime(2025, 8, 18, 12, 0, tzinfo=JAKARTA), False),
        ((dt.time(22), dt.time(6)), dt.datetime(2025, 8, 18, 5, 0), True),  # noqa: DTZ001 naive = Jakarta
    ],
)
async def test_allowed_hours_in_jakarta_time(hours, when, allowed):
    options = sim_options(allowed_hours=hours, now=Clock(when))
    if allowed:
        assert (await ask(options, ALIVE.elements())).code == "00"
    else:
        with pytest.raises(OutsideHoursError) as info:
            await ask(options, ALIVE.elements())
        assert info.value.code == "06"


# -------------------------------------------------------------------------- operations


async def test_rate_limit_answers_429_with_retry_after():
    ticks = [100.0]
    options = sim_options(rate_limit=1.0, monotonic=lambda: ticks[0], daily_quota=10)
    app = create_app(options)
    async with verifier_for(app, options) as v, raw_client(app) as client:
        await v.verify(ALIVE.elements())
        with pytest.raises(RetriableDeliveryError) as info:
            await v.verify(ALIVE.elements())
        assert info.value.code == "429"
        assert info.value.retry_after == 1.0
        ticks[0] += 1.0
        await v.verify(ALIVE.elements())
        stats = (await client.get("/_sim/stats")).json()
    assert stats["http_status"] == {"200": 2, "429": 1}
    assert stats["quota_used"] == 2  # the 429 used none


async def test_injected_5xx():
    with pytest.raises(RetriableDeliveryError) as info:
        await ask(sim_options(fail_5xx=1.0), ALIVE.elements())
    assert info.value.code == "503"
    assert info.value.retry_after == 1.0


async def test_injected_timeout_stalls_then_answers():
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    options = sim_options(fail_timeout=1.0, timeout_delay=15.0, sleep=sleep, latency=(0.1, 0.2))
    assert (await ask(options, ALIVE.elements())).code == "00"
    assert len(delays) == 2
    assert 0.1 <= delays[0] <= 0.2
    assert delays[1] == 15.0


async def test_failures_are_deterministic_per_seed():
    async def outcomes(seed: int) -> list[str]:
        options = sim_options(seed=seed, fail_5xx=0.5)
        found = []
        async with verifier_for(create_app(options), options) as v:
            for _ in range(12):
                try:
                    found.append((await v.verify({"NIK": UNKNOWN_NIK})).code)
                except RetriableDeliveryError as exc:
                    found.append(exc.code or "")
        return found

    first = await outcomes(3)
    assert first == await outcomes(3)
    assert set(first) == {"13", "503"}


async def test_reset_in_process_surfaces_as_the_app_exception():
    with pytest.raises(SimulatedReset):
        await ask(sim_options(fail_reset=1.0), ALIVE.elements())


def test_reset_under_uvicorn_is_retriable():
    import anyio

    options = sim_options(fail_reset=1.0)

    async def call(base_url: str) -> None:
        config = {"base_url": base_url, "timeout": 5, "credentials": options.credentials()}
        async with DukcapilVerifier(config) as v:
            await v.verify(ALIVE.elements())

    with running(options) as base_url:
        with pytest.raises(RetriableDeliveryError) as info:
            anyio.run(call, base_url)
        stats = httpx2.get(f"{base_url}/_sim/stats").json()
    assert isinstance(info.value.__cause__, httpx2.TransportError)
    assert stats["injected"] == {"reset": 1}


# ---------------------------------------------------------------------------------- stats


async def test_stats_count_niks_without_showing_them():
    options = sim_options()
    app = create_app(options)
    async with verifier_for(app, options) as v, raw_client(app) as client:
        for nik in (ALIVE.nik, ALIVE.nik, UNKNOWN_NIK, DEAD.nik, DEAD.nik, DEAD.nik):
            await v.verify({"NIK": nik})
        response = await client.get("/_sim/stats")
        stats = response.json()
        assert stats["requests"] == 6
        assert stats["niks_asked"] == 3
        assert stats["asked_more_than_once"] == 2
        assert stats["by_code"] == {"00": 2, "13": 1, "11": 3}
        for nik in (ALIVE.nik, UNKNOWN_NIK, DEAD.nik):
            assert nik not in response.text
        cleared = (await client.post("/_sim/reset")).json()
    assert cleared["requests"] == 0
    assert cleared["niks_asked"] == 0


def test_people_are_frozen_records():
    assert isinstance(ALIVE, Person)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ALIVE.nama = "X"  # type: ignore[misc]

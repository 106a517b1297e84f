"""The SIAK sandbox: in process through ASGITransport, and once through real uvicorn."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx2
import pytest

from adapters.base import OutboundEvent
from adapters.siak.client import SiakDeliverer
from adapters.siak.mapping import to_wire
from adapters.siak.simulator import SimulatorOptions, create_app, running, validate_body
from hub.errors import (
    FatalDeliveryError,
    OutsideHoursError,
    QuotaExhaustedError,
    RejectedRecordError,
    RetriableDeliveryError,
)

pytestmark = pytest.mark.anyio

CREDENTIALS = {"client_id": "hub-sandbox", "client_secret": "sandbox-secret"}
DEATH = {
    "nik": "3273011708400001",
    "nama_lengkap": "Ahmad Sulaiman",
    "no_kk": "3273010101200001",
    "tanggal_kematian": "2025-07-01",
    "kode_wilayah": "32.73.01.1001",
    "nik_pelapor": "3273011708880003",
    "nama_pelapor": "Budi Santoso",
    "tanggal_lapor": "2025-07-02",
}
MOVE = {
    "no_kk": "3273010101200001",
    "kode_wilayah_asal": "32.73.01.1001",
    "kode_wilayah_tujuan": "32.73.02.1001",
    "alasan_pindah": 6,
    "tanggal_pindah": "2025-09-01",
    "nik_pelapor": "3273011708880003",
    "nama_pelapor": "Budi Santoso",
    "tanggal_lapor": "2025-08-25",
}
FAMILY = [
    {**MOVE, "nik": "3273011708880003", "nama_lengkap": "Budi Santoso", "shdk": 1},
    {**MOVE, "nik": "3273015708900002", "nama_lengkap": "Siti Aminah", "shdk": 3},
    {**MOVE, "nik": "3273015708150004", "nama_lengkap": "Ayu Lestari", "shdk": 4},
]


def death(key: str = "k-1", **change: Any) -> OutboundEvent:
    return OutboundEvent("kematian", key, "create", 1, [{**DEATH, **change}])


class Clock:
    """A settable `now` for the simulator."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class Sandbox:
    def __init__(self, **options: Any) -> None:
        self.options = SimulatorOptions(latency=(0.0, 0.0), **options)
        self.app = create_app(self.options)
        self.transport = httpx2.ASGITransport(app=self.app)

    def deliverer(self, **credentials: str) -> SiakDeliverer:
        config = {"base_url": "http://siak.test", "credentials": {**CREDENTIALS, **credentials}}
        return SiakDeliverer(config, transport=self.transport)

    def http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=self.transport, base_url="http://siak.test")

    async def stats(self) -> dict[str, Any]:
        async with self.http() as client:
            response = await client.get("/_sim/stats")
        assert response.headers["X-Sandbox"] == "siak-simulator"
        stats: dict[str, Any] = response.json()
        return stats


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


async def test_token_flow_created_then_duplicate(sandbox: Sandbox) -> None:
    siak = sandbox.deliverer()
    first = await siak.deliver(death())
    again = await siak.deliver(death())
    await siak.aclose()
    assert (first.status, first.remote_id) == (201, "SIAK-00000001")
    assert (again.status, again.duplicate, again.remote_id) == (409, True, "SIAK-00000001")
    stats = await sandbox.stats()
    assert stats["token_requests"] == 1
    assert stats["by_status"] == {"201": 1, "409": 1}
    assert (stats["requests"], stats["accepted"], stats["duplicates"]) == (2, 1, 1)
    assert (stats["effects"], stats["effects_by_event"]) == (1, {"CAPIL_MATI": 1})
    assert (stats["identities"], stats["identities_applied_more_than_once"]) == (1, 0)
    assert stats["max_in_any_1s_window"] == 2
    assert stats["max_applied_in_any_1s_window"] == 1
    assert stats["first_arrival"] <= stats["last_arrival"]
    assert sum(stats["per_second"].values()) == 2


async def test_one_record_under_two_keys_is_counted(sandbox: Sandbox) -> None:
    siak = sandbox.deliverer()
    await siak.deliver(death("k-1"))
    await siak.deliver(death("k-2"))
    await siak.deliver(OutboundEvent("kematian", "k-3", "correction", 2, [DEATH]))
    await siak.aclose()
    stats = await sandbox.stats()
    assert (stats["effects"], stats["identities"]) == (3, 2)
    assert stats["identities_applied_more_than_once"] == 1


async def test_family_move_is_one_effect_of_three_people(sandbox: Sandbox) -> None:
    siak = sandbox.deliverer()
    ack = await siak.deliver(OutboundEvent("pindah", "f-1", "create", 1, FAMILY))
    await siak.aclose()
    assert ack.status == 201
    stats = await sandbox.stats()
    assert (stats["effects"], stats["effects_by_event"], stats["identities"]) == (
        1,
        {"PINDAH": 1},
        3,
    )


async def test_missing_required_field_is_422_in_indonesian(sandbox: Sandbox) -> None:
    siak = sandbox.deliverer()
    record = {k: v for k, v in DEATH.items() if k != "nama_lengkap"}
    with pytest.raises(RejectedRecordError) as info:
        await siak.deliver(OutboundEvent("kematian", "k-9", "create", 1, [record]))
    await siak.aclose()
    assert info.value.code == "422"
    assert info.value.response == "HEADER.NAMA_LGKP wajib diisi"
    stats = await sandbox.stats()
    assert (stats["rejected"], stats["effects"]) == (1, 0)


async def test_wrong_secret_is_fatal_invalid_client(sandbox: Sandbox) -> None:
    siak = sandbox.deliverer(client_secret="wrong")
    with pytest.raises(FatalDeliveryError) as info:
        await siak.deliver(death())
    await siak.aclose()
    assert info.value.code == "invalid_client"
    assert "wrong" not in str(info.value)


async def test_expired_token_is_refused_and_renewed() -> None:
    clock = Clock(dt.datetime(2025, 8, 17, 3, 0, tzinfo=dt.UTC))
    sandbox = Sandbox(now=clock, token_ttl=3600)
    siak = sandbox.deliverer()
    await siak.deliver(death("k-1"))
    clock.advance(3601)  # the sandbox's clock says expired; the client's does not
    assert (await siak.deliver(death("k-2"))).status == 201
    await siak.aclose()
    stats = await sandbox.stats()
    assert stats["by_status"] == {"201": 2, "401": 1}
    assert stats["token_requests"] == 2


async def test_raw_protocol_errors(sandbox: Sandbox) -> None:
    async with sandbox.http() as client:
        denied = await client.post("/siak/v1/events", json={})
        assert denied.status_code == 401
        answer = await client.post(
            "/oauth/token", data={"grant_type": "client_credentials", **CREDENTIALS}
        )
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "no-store"
        auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        no_key = await client.post("/siak/v1/events", json=to_wire(death()), headers=auth)
        assert no_key.status_code == 400
        assert no_key.json() == {"errors": ["Header Idempotency-Key wajib diisi"]}
        headers = {**auth, "Idempotency-Key": "k-1"}
        not_json = await client.post("/siak/v1/events", content=b"{", headers=headers)
        assert not_json.status_code == 400
        created = await client.post("/siak/v1/events", json=to_wire(death()), headers=headers)
        assert created.status_code == 201
        other = to_wire(death(nama_lengkap="Lain"))
        reused = await client.post("/siak/v1/events", json=other, headers=headers)
        assert reused.status_code == 422
        bad_grant = await client.post(
            "/oauth/token", data={"grant_type": "password", **CREDENTIALS}
        )
        assert bad_grant.json() == {"error": "unsupported_grant_type"}
    stats = await sandbox.stats()
    assert stats["effects"] == 1


async def test_rate_limit_is_a_sliding_window() -> None:
    clock = Clock(dt.datetime(2025, 8, 17, 3, 0, tzinfo=dt.UTC))
    sandbox = Sandbox(now=clock, rate_limit=2)
    siak = sandbox.deliverer()
    await siak.deliver(death("k-1"))
    clock.advance(0.5)
    await siak.deliver(death("k-2"))
    with pytest.raises(RetriableDeliveryError) as info:
        await siak.deliver(death("k-3"))
    assert (info.value.code, info.value.retry_after) == ("429", 1.0)
    clock.advance(0.6)  # k-1 left the window
    assert (await siak.deliver(death("k-3"))).status == 201
    await siak.aclose()
    stats = await sandbox.stats()
    assert stats["max_in_any_1s_window"] == 3  # arrivals, the 429 included
    assert stats["max_applied_in_any_1s_window"] == 2
    assert stats["effects"] == 3


async def test_allowed_hours_in_jakarta_time() -> None:
    # 15:00 UTC is 22:00 WIB; the window opens at 07:00 WIB, nine hours later.
    clock = Clock(dt.datetime(2025, 8, 17, 15, 0, tzinfo=dt.UTC))
    sandbox = Sandbox(now=clock, allowed_hours=(dt.time(7), dt.time(16)))
    siak = sandbox.deliverer()
    with pytest.raises(OutsideHoursError) as info:
        await siak.deliver(death())
    assert info.value.retry_after == 9 * 3600
    clock.advance(9 * 3600)
    assert (await siak.deliver(death())).status == 201
    await siak.aclose()


async def test_daily_quota_resets_at_midnight_wib() -> None:
    clock = Clock(dt.datetime(2025, 8, 17, 16, 0, tzinfo=dt.UTC))  # 23:00 WIB
    sandbox = Sandbox(now=clock, daily_quota=1)
    siak = sandbox.deliverer()
    await siak.deliver(death("k-1"))
    with pytest.raises(QuotaExhaustedError) as info:
        await siak.deliver(death("k-2"))
    assert info.value.retry_after == 3600
    clock.advance(3600)
    assert (await siak.deliver(death("k-2"))).status == 201
    await siak.aclose()


async def test_injected_5xx_is_never_applied_and_draws_are_seeded() -> None:
    async def statuses(seed: int) -> list[int]:
        sandbox = Sandbox(fail_5xx=0.5, seed=seed)
        siak = sandbox.deliverer()
        seen = []
        for n in range(12):
            try:
                seen.append((await siak.deliver(death(f"k-{n}"))).status)
            except RetriableDeliveryError as exc:
                seen.append(int(exc.code or 0))
        await siak.aclose()
        stats = await sandbox.stats()
        assert stats["effects"] == seen.count(201)
        assert stats["injected"] == {"5xx": seen.count(503)}
        return seen

    first = await statuses(7)
    assert first == await statuses(7)
    assert {201, 503} <= set(first)


async def test_reset_endpoint_clears_the_ledger(sandbox: Sandbox) -> None:
    siak = sandbox.deliverer()
    await siak.deliver(death())
    async with sandbox.http() as client:
        assert (await client.post("/_sim/reset")).json() == {"reset": True}
    assert (await sandbox.stats())["effects"] == 0
    assert (await siak.deliver(death())).status == 201  # the token survived the reset
    await siak.aclose()


def test_validate_body() -> None:
    assert validate_body([]) == ["Isi permintaan harus objek JSON"]
    assert validate_body({"EVENT": "KAWIN"})[0].startswith("EVENT tidak dikenal")
    wire = to_wire(OutboundEvent("pindah", "k", "create", 1, FAMILY[:2]))
    assert validate_body(wire) == []
    broken = {**wire, "KIND": "delete", "VERSION": 0, "DETAIL": [wire["DETAIL"][0]] * 2}
    assert validate_body(broken) == [
        "KIND harus create atau correction",
        "VERSION harus bilangan bulat positif",
        "DETAIL[2].NIK ganda dalam satu peristiwa",
    ]
    assert "DETAIL harus berisi minimal satu orang" in validate_body({**wire, "DETAIL": []})
    header = {**wire["HEADER"], "NO_KK": "3273010101200001", "TGL_PINDAH": "2025-09-01"}
    assert validate_body({**wire, "HEADER": header}) == [
        "HEADER.NO_KK harus angka 16 digit",
        "HEADER.TGL_PINDAH harus tanggal DD-MM-YYYY",
    ]
    birth_with_detail = {**to_wire(death()), "DETAIL": [{}]}
    assert validate_body(birth_with_detail) == ["DETAIL harus kosong untuk CAPIL_MATI"]


# ------------------------------------------------------------------ through real uvicorn


async def test_reset_mid_response_then_retry_gets_409() -> None:
    options = SimulatorOptions(latency=(0.0, 0.0), fail_reset=1.0)
    with running(options) as base_url:
        siak = SiakDeliverer({"base_url": base_url, "credentials": CREDENTIALS})
        with pytest.raises(RetriableDeliveryError) as info:
            await siak.deliver(death())
        assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
        options.fail_reset = 0.0
        ack = await siak.deliver(death())
        await siak.aclose()
        async with httpx2.AsyncClient(base_url=base_url) as client:
            stats = (await client.get("/_sim/stats")).json()
    assert (ack.status, ack.duplicate) == (409, True)
    assert stats["injected"] == {"reset": 1}
    assert (stats["effects"], stats["identities_applied_more_than_once"]) == (1, 0)


async def test_timeout_after_apply_then_retry_gets_409() -> None:
    options = SimulatorOptions(latency=(0.0, 0.0), fail_timeout=1.0, timeout_delay=0.3)
    with running(options) as base_url:
        config = {"base_url": base_url, "timeout": 0.1, "credentials": CREDENTIALS}
        siak = SiakDeliverer(config)
        with pytest.raises(RetriableDeliveryError) as info:
            await siak.deliver(death())
        assert isinstance(info.value.__cause__, httpx2.TimeoutException)
        await asyncio.sleep(0.4)  # the server finishes applying after the client gave up
        options.fail_timeout = 0.0
        ack = await siak.deliver(death())
        await siak.aclose()
        async with httpx2.AsyncClient(base_url=base_url) as client:
            stats = (await client.get("/_sim/stats")).json()
    assert (ack.status, ack.duplicate) == (409, True)
    assert (stats["effects"], stats["identities_applied_more_than_once"]) == (1, 0)

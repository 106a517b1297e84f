"""SiakDeliverer against httpx2.MockTransport: OAuth2 flow, every status, config, no PII."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest

from adapters.base import Ack, OutboundEvent
from adapters.siak.client import SiakDeliverer, parse_retry_after, summarise_reasons
from adapters.siak.mapping import to_wire
from hub.errors import (
    ConfigError,
    DeliveryError,
    FatalDeliveryError,
    OutsideHoursError,
    QuotaExhaustedError,
    RejectedRecordError,
    RetriableDeliveryError,
)

pytestmark = pytest.mark.anyio

NIK = "3273011708400001"
SECRET = "s3cr3t-Do-Not-Leak"
NAME = "Ahmad Sulaiman"
RECORD = {
    "nik": NIK,
    "nama_lengkap": NAME,
    "no_kk": "3273010101200001",
    "tanggal_kematian": "2025-07-01",
    "kode_wilayah": "32.73.01.1001",
    "nik_pelapor": "3273011708880003",
    "nama_pelapor": "Budi Santoso",
    "tanggal_lapor": "2025-07-02",
}
EVENT = OutboundEvent("kematian", "key-123", "create", 1, [RECORD])
CONFIG: dict[str, Any] = {
    "base_url": "https://siak.test/gw/",
    "timeout": 5,
    "credentials": {"client_id": "hub", "client_secret": SECRET},
}

Item = httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]


def token(access_token: str = "tok", expires_in: int = 3600) -> httpx2.Response:
    return httpx2.Response(
        200, json={"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}
    )


class FakeSiak:
    """Answers token requests from `tokens` (default: tok-1, tok-2, ...) and event requests
    from `events`, in order; records every request."""

    def __init__(self, *events: Item, tokens: list[Item] | None = None) -> None:
        self.events = list(events)
        self.tokens = list(tokens or [])
        self.requests: list[httpx2.Request] = []

    @property
    def token_requests(self) -> list[httpx2.Request]:
        return [r for r in self.requests if r.url.path.endswith("token")]

    @property
    def event_requests(self) -> list[httpx2.Request]:
        return [r for r in self.requests if r.url.path.endswith("/siak/v1/events")]

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.path.endswith("token"):
            n = len(self.token_requests)
            item = self.tokens.pop(0) if self.tokens else token(f"tok-{n}")
        else:
            item = self.events.pop(0)
        if isinstance(item, Exception):
            raise item
        if callable(item) and not isinstance(item, httpx2.Response):
            return item(request)
        return item


def deliverer(fake: FakeSiak, **config: Any) -> SiakDeliverer:
    return SiakDeliverer({**CONFIG, **config}, transport=httpx2.MockTransport(fake))


async def deliver(fake: FakeSiak, event: OutboundEvent = EVENT, **config: Any) -> Ack:
    siak = deliverer(fake, **config)
    try:
        return await siak.deliver(event)
    finally:
        await siak.aclose()


def assert_clean(*texts: object) -> None:
    for text in texts:
        for secret in (NIK, SECRET, NAME, "3273010101200001"):
            assert secret not in str(text)


async def test_created_with_token_key_and_wire_body() -> None:
    fake = FakeSiak(httpx2.Response(201, json={"id": "SIAK-1"}))
    ack = await deliver(fake, options={"scope": "lampid.write"})
    assert ack == Ack(201, remote_id="SIAK-1", summary=ack.summary)
    assert ack.summary == "SIAK 201: CAPIL_MATI create v1, 1 record(s), id SIAK-1"
    assert_clean(ack.summary)

    (token_request,) = fake.token_requests
    assert str(token_request.url) == "https://siak.test/gw/oauth/token"
    basic = base64.b64encode(f"hub:{SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == f"Basic {basic}"
    form = parse_qs(token_request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "scope": ["lampid.write"]}

    (request,) = fake.event_requests
    assert str(request.url) == "https://siak.test/gw/siak/v1/events"
    assert request.headers["Idempotency-Key"] == "key-123"
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert json.loads(request.content) == to_wire(EVENT)


async def test_token_is_reused_until_it_expires() -> None:
    fake = FakeSiak(*(httpx2.Response(201, json={"id": str(i)}) for i in range(3)))
    siak = deliverer(fake)
    for _ in range(3):
        await siak.deliver(EVENT)
    await siak.aclose()
    assert len(fake.token_requests) == 1

    # A short-lived token is renewed at half its lifetime, not on every use.
    fake = FakeSiak(*(httpx2.Response(201) for _ in range(2)), tokens=[token("a", expires_in=30)])
    siak = deliverer(fake)
    for _ in range(2):
        await siak.deliver(EVENT)
    await siak.aclose()
    assert [r.headers["Authorization"] for r in fake.event_requests] == ["Bearer a"] * 2


async def test_an_expiring_token_is_renewed_before_use() -> None:
    expiring = httpx2.Response(200, json={"access_token": "a", "expires_at": int(time.time()) + 10})
    fake = FakeSiak(*(httpx2.Response(201) for _ in range(2)), tokens=[expiring, token("b")])
    siak = deliverer(fake)
    for _ in range(2):
        await siak.deliver(EVENT)
    await siak.aclose()
    assert [r.headers["Authorization"] for r in fake.event_requests] == ["Bearer a", "Bearer b"]
    assert len(fake.token_requests) == 2


async def test_concurrent_first_deliveries_fetch_one_token() -> None:
    fake = FakeSiak(*(httpx2.Response(201) for _ in range(5)))
    siak = deliverer(fake)
    events = [OutboundEvent("kematian", f"k-{n}", "create", 1, [RECORD]) for n in range(5)]
    acks = await asyncio.gather(*(siak.deliver(e) for e in events))
    await siak.aclose()
    assert [ack.status for ack in acks] == [201] * 5
    assert len(fake.token_requests) == 1


async def test_absolute_token_url() -> None:
    fake = FakeSiak(httpx2.Response(201, json={"id": "x"}))
    credentials = {**CONFIG["credentials"], "token_url": "https://sso.test/token"}
    await deliver(fake, credentials=credentials)
    assert str(fake.token_requests[0].url) == "https://sso.test/token"


async def test_conflict_is_a_duplicate_ack() -> None:
    ack = await deliver(FakeSiak(httpx2.Response(409, json={"id": "SIAK-1"})))
    assert (ack.status, ack.duplicate, ack.remote_id) == (409, True, "SIAK-1")


@pytest.mark.parametrize("status", [400, 422])
async def test_rejection_carries_short_reasons_without_digits(status: int) -> None:
    errors = [f"NIK {NIK} tidak ditemukan", "HEADER.TGL_MATI wajib diisi", *["x"] * 6]
    fake = FakeSiak(httpx2.Response(status, json={"errors": errors}))
    with pytest.raises(RejectedRecordError) as info:
        await deliver(fake)
    exc = info.value
    assert (exc.code, exc.idempotency_key) == (str(status), "key-123")
    assert exc.response.startswith("NIK … tidak ditemukan; HEADER.TGL_MATI wajib diisi")
    assert exc.response.endswith("(+3 more)")
    assert_clean(exc, exc.response)


async def test_401_fetches_a_new_token_once_and_retries() -> None:
    fake = FakeSiak(httpx2.Response(401), httpx2.Response(201, json={"id": "ok"}))
    ack = await deliver(fake)
    assert ack.status == 201
    assert len(fake.token_requests) == 2
    auth = [r.headers["Authorization"] for r in fake.event_requests]
    assert auth == ["Bearer tok-1", "Bearer tok-2"]
    assert [r.headers["Idempotency-Key"] for r in fake.event_requests] == ["key-123"] * 2


async def test_401_twice_is_fatal() -> None:
    fake = FakeSiak(httpx2.Response(401), httpx2.Response(401))
    with pytest.raises(FatalDeliveryError) as info:
        await deliver(fake)
    assert info.value.code == "401"
    assert (len(fake.token_requests), len(fake.event_requests)) == (2, 2)


@pytest.mark.parametrize("status", [403, 404, 302])
async def test_forbidden_and_contract_failures_are_fatal(status: int) -> None:
    with pytest.raises(FatalDeliveryError) as info:
        await deliver(FakeSiak(httpx2.Response(status)))
    assert info.value.code == str(status)


async def test_429_retry_after_seconds() -> None:
    fake = FakeSiak(httpx2.Response(429, headers={"Retry-After": "7"}))
    with pytest.raises(RetriableDeliveryError) as info:
        await deliver(fake)
    assert type(info.value) is RetriableDeliveryError
    assert (info.value.retry_after, info.value.code) == (7.0, "429")


async def test_429_retry_after_http_date() -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    fake = FakeSiak(httpx2.Response(429, headers={"Retry-After": when}))
    with pytest.raises(RetriableDeliveryError) as info:
        await deliver(fake)
    assert info.value.retry_after is not None
    assert 110 < info.value.retry_after <= 120


async def test_quota_and_hours_have_their_own_classes() -> None:
    quota = httpx2.Response(429, json={"error": "quota_exhausted"}, headers={"Retry-After": "60"})
    with pytest.raises(QuotaExhaustedError) as info:
        await deliver(FakeSiak(quota))
    assert info.value.retry_after == 60.0
    hours = httpx2.Response(503, json={"error": "outside_hours"}, headers={"Retry-After": "30"})
    with pytest.raises(OutsideHoursError) as hours_info:
        await deliver(FakeSiak(hours))
    assert hours_info.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_errors_are_retriable(status: int) -> None:
    with pytest.raises(RetriableDeliveryError) as info:
        await deliver(FakeSiak(httpx2.Response(status, text="<html>busy</html>")))
    assert (info.value.code, info.value.retry_after) == (str(status), None)


@pytest.mark.parametrize(
    "error",
    [
        httpx2.ReadTimeout("timed out"),
        httpx2.ConnectTimeout("timed out"),
        httpx2.ConnectError("[Errno 111] Connection refused"),
        httpx2.RemoteProtocolError("peer closed connection"),
        httpx2.ReadError("connection reset by peer"),
    ],
)
async def test_transport_failures_are_retriable(error: Exception) -> None:
    with pytest.raises(RetriableDeliveryError) as info:
        await deliver(FakeSiak(error))
    assert info.value.idempotency_key == "key-123"
    assert isinstance(info.value.__cause__, httpx2.TransportError)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx2.Response(401, json={"error": "invalid_client"}), FatalDeliveryError),
        (httpx2.Response(400, json={"error": "invalid_client"}), FatalDeliveryError),
        (httpx2.Response(400, json={"error": "unauthorized_client"}), FatalDeliveryError),
        (httpx2.Response(401, text="Unauthorized"), FatalDeliveryError),
        (httpx2.Response(200, text="<html>login</html>"), FatalDeliveryError),
        (httpx2.Response(200, json={"token_type": "Bearer"}), FatalDeliveryError),
        (httpx2.Response(503, json={"error": "temporarily_unavailable"}), RetriableDeliveryError),
        (httpx2.Response(500, text="down"), RetriableDeliveryError),
        (httpx2.Response(429, json={"error": "slow_down"}), RetriableDeliveryError),
        (httpx2.ConnectError("refused"), RetriableDeliveryError),
        (httpx2.ReadTimeout("timed out"), RetriableDeliveryError),
    ],
)
async def test_token_endpoint_failures(answer: Item, expected: type[DeliveryError]) -> None:
    fake = FakeSiak(tokens=[answer])
    with pytest.raises(expected) as info:
        await deliver(fake)
    assert type(info.value) is expected
    assert fake.event_requests == []
    assert_clean(info.value, repr(info.value))


async def test_token_retry_after_is_kept() -> None:
    fake = FakeSiak(tokens=[httpx2.Response(429, headers={"Retry-After": "9"})])
    with pytest.raises(RetriableDeliveryError) as info:
        await deliver(fake)
    assert info.value.retry_after == 9.0


async def test_a_failed_token_fetch_is_tried_again_next_time() -> None:
    fake = FakeSiak(httpx2.Response(201), tokens=[httpx2.Response(503), token("fresh")])
    siak = deliverer(fake)
    with pytest.raises(RetriableDeliveryError):
        await siak.deliver(EVENT)
    assert (await siak.deliver(EVENT)).status == 201
    await siak.aclose()
    assert fake.event_requests[0].headers["Authorization"] == "Bearer fresh"


async def test_mapping_errors() -> None:
    bad = OutboundEvent("kematian", "k", "create", 1, [{**RECORD, "tanggal_kematian": "1/7/25"}])
    with pytest.raises(RejectedRecordError) as info:
        await deliver(FakeSiak(), bad)
    assert info.value.code == "mapping"
    assert "tanggal_kematian" in str(info.value)
    assert "1/7/25" not in str(info.value)
    unknown = OutboundEvent("kematian", "k", "create", 1, [{**RECORD, "agama": 1}])
    with pytest.raises(FatalDeliveryError, match="agama"):
        await deliver(FakeSiak(), unknown)


async def test_no_message_carries_a_nik_a_name_or_the_secret() -> None:
    answers: list[Item] = [
        httpx2.Response(201, json={"id": "1"}),
        httpx2.Response(409, json={"id": "1"}),
        httpx2.Response(422, json={"errors": [f"NIK {NIK} / {NIK[:8]} {NIK[8:]} ganda"]}),
        httpx2.Response(403, json={"errors": [SECRET]}),
        httpx2.Response(503),
        httpx2.ReadTimeout("timed out"),
    ]
    texts: list[object] = []
    for answer in answers:
        siak = deliverer(FakeSiak(answer))
        texts.append(repr(siak))
        try:
            texts.append((await siak.deliver(EVENT)).summary)
        except DeliveryError as exc:
            texts += [exc, repr(exc), exc.response, exc.code]
        finally:
            await siak.aclose()
    assert_clean(*texts)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"credentials": CONFIG["credentials"]}, "base_url"),
        ({**CONFIG, "base_url": "ftp://siak.test"}, "base_url"),
        ({**CONFIG, "timeout": 0}, "timeout"),
        ({**CONFIG, "timeout": "10"}, "timeout"),
        ({**CONFIG, "credentials": None}, "credentials"),
        ({**CONFIG, "credentials": {"client_secret": SECRET}}, "credentials.client_id"),
        ({**CONFIG, "credentials": {"client_id": "hub", "client_secret": ""}}, "client_secret"),
        ({**CONFIG, "credentials": {"client_id": "hub", "client_secret": 123456}}, "client_secret"),
        (
            {**CONFIG, "credentials": {**CONFIG["credentials"], "token_url": "ftp://x/t"}},
            "token_url",
        ),
        ({**CONFIG, "options": {"scope": ["a", "b"]}}, "options.scope"),
        ({**CONFIG, "options": "scope"}, "options"),
    ],
)
async def test_bad_config_names_the_key_and_hides_the_secret(
    config: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        SiakDeliverer(config)
    assert key in str(info.value)
    assert SECRET not in str(info.value)
    assert "123456" not in str(info.value)


def test_parse_retry_after() -> None:
    now = datetime(2025, 8, 17, 10, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Sun, 17 Aug 2025 10:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 17 Aug 2025 09:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


def test_summarise_reasons() -> None:
    assert summarise_reasons(None) == "no details"
    assert summarise_reasons([]) == "no details"
    assert summarise_reasons([{"field": "NIK", "message": "harus angka"}]) == "NIK harus angka"
    assert summarise_reasons(["x" * 500]) == "x" * 120

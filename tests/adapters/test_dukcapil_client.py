"""DukcapilVerifier against MockTransport: every response code, verdicts, HTTP failures,
malformed answers, configuration, and no PII in any error."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from adapters.base import FieldVerdict, VerifyAnswer
from adapters.dukcapil import wire
from adapters.dukcapil.client import DukcapilVerifier
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

NIK = "3273015708900001"
NAME = "SITI AMINAH"
PASSWORD = "s3cret-Pa55word"
CONFIG: dict[str, Any] = {
    "base_url": "https://dukcapil.test/",
    "timeout": 3,
    "credentials": {
        "id_lembaga": "LEMBAGA-01",
        "user_id": "hub",
        "password": PASSWORD,
        "ip_user": "10.1.2.3",
    },
    "options": {"threshold": 75},
}
ELEMENTS = {"NIK": NIK, "NAMA_LGKP": NAME, "TGL_LHR": "17-08-1990", "JENIS_KLMIN": "Perempuan"}
SECRETS = (NIK, NAME, PASSWORD, "17-08-1990")

Handler = Callable[[httpx2.Request], httpx2.Response]


def page(item: dict[str, Any], quota: Any = 99, **extra: Any) -> dict[str, Any]:
    return {**wire.make_page(item, quota), **extra}


def coded(code: Any, respon: str = f"NIK {NIK} diproses") -> Handler:
    """An answer with RESPONSE_CODE; RESPON echoes the NIK to prove it is never reused."""
    return lambda request: httpx2.Response(
        200, json=page({"RESPON": respon, "RESPONSE_CODE": code}, quota=41)
    )


def verifier(handler: Handler, config: dict[str, Any] | None = None) -> DukcapilVerifier:
    return DukcapilVerifier(config or CONFIG, transport=httpx2.MockTransport(handler))


async def ask(handler: Handler, elements: dict[str, str] | None = None) -> VerifyAnswer:
    async with verifier(handler) as v:
        return await v.verify(elements or ELEMENTS)


async def fails(handler: Handler) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        await ask(handler)
    error = info.value
    text = f"{error} {error.response!r}"
    for secret in SECRETS:
        assert secret not in text
    return error


# ---------------------------------------------------------------------------- requests


async def test_request_carries_credentials_threshold_and_elements():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=page({"NIK": NIK, "NAMA_LGKP": "Sesuai (100)"}))

    await ask(handler)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == (
        "https://dukcapil.test/dukcapil/get_json/LEMBAGA-01/CALL_VERIFY_BY_ELEMEN"
    )
    assert json.loads(request.content) == {
        "USER_ID": "hub",
        "PASSWORD": PASSWORD,
        "IP_USER": "10.1.2.3",
        "TRESHOLD": 75,
        **ELEMENTS,
    }


async def test_one_client_is_reused_and_closed():
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(200, json=page({"NIK": "Sesuai"}))

    v = verifier(handler)
    client = v._client
    await v.verify(ELEMENTS)
    await v.verify(ELEMENTS)
    assert v._client is client
    assert calls == 2
    await v.aclose()
    assert client.is_closed


async def test_elements_may_not_override_credentials():
    async with verifier(coded("13")) as v:
        with pytest.raises(ValueError, match="PASSWORD"):
            await v.verify({**ELEMENTS, "PASSWORD": "x"})


# ---------------------------------------------------------------------------- verdicts


async def test_verdicts_with_scores_case_and_spacing():
    item = {
        "NIK": NIK,  # an echo, not a verdict
        "NAMA_LGKP": "Sesuai (100)",
        "TMPT_LHR": "Tidak Sesuai (59)",
        "ALAMAT": "  tidak  sesuai(12) ",
        "TGL_LHR": "SESUAI",
        "JENIS_KLMIN": "Tidak Sesuai",
        "NO_RT": "sesuai ( 87 )",
        "EXTRA": 5,
    }
    answer = await ask(lambda r: httpx2.Response(200, json=page(item, quota=1234)))
    assert answer == VerifyAnswer(
        code="00",
        verdicts={
            "NAMA_LGKP": FieldVerdict(True, 100),
            "TMPT_LHR": FieldVerdict(False, 59),
            "ALAMAT": FieldVerdict(False, 12),
            "TGL_LHR": FieldVerdict(True),
            "JENIS_KLMIN": FieldVerdict(False),
            "NO_RT": FieldVerdict(True, 87),
        },
        quota_left=1234,
    )


@pytest.mark.parametrize(
    ("quota", "expected"), [(7, 7), ("7", 7), (None, None), ("banyak", None), (True, None)]
)
async def test_quota_limiter(quota, expected):
    answer = await ask(lambda r: httpx2.Response(200, json=page({"NIK": "Sesuai"}, quota=quota)))
    assert answer.quota_left == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sesuai", FieldVerdict(True)),
        ("sesuai(0)", FieldVerdict(True, 0)),
        ("TIDAK SESUAI (59)", FieldVerdict(False, 59)),
        ("TidakSesuai", FieldVerdict(False)),
        ("Sesuai (101)", None),
        ("Sesuai sekali", None),
        ("", None),
        (100, None),
    ],
)
def test_parse_verdict(text, expected):
    assert wire.parse_verdict(text) == expected


# ------------------------------------------------------------------------ response codes


@pytest.mark.parametrize("code", ["08", "11", "12", "13", "14", "15", 13, 8, " 11 "])
async def test_record_level_codes_are_answers(code):
    answer = await ask(coded(code, respon="Data Tidak Ditemukan"))
    assert answer == VerifyAnswer(
        code=wire.normalise_code(code) or "", quota_left=41, message="Data Tidak Ditemukan"
    )
    assert answer.code in {"08", "11", "12", "13", "14", "15"}


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("05", QuotaExhaustedError),
        (5, QuotaExhaustedError),
        ("06", OutsideHoursError),
        ("07", RejectedRecordError),
        ("03", FatalDeliveryError),
        ("04", FatalDeliveryError),
        ("09", FatalDeliveryError),
        ("10", FatalDeliveryError),
        ("16", FatalDeliveryError),
        ("17", FatalDeliveryError),
        (17, FatalDeliveryError),
        ("99", FatalDeliveryError),
        ("00", FatalDeliveryError),
    ],
)
async def test_connector_level_codes_raise(code, error):
    raised = await fails(coded(code))
    assert type(raised) is error
    assert raised.code == wire.normalise_code(code)
    assert raised.response["quota_left"] == 41
    assert raised.response["elements"] == sorted(ELEMENTS)


async def test_quota_and_hours_are_retriable_and_incomplete_is_rejected():
    assert isinstance(await fails(coded("05")), RetriableDeliveryError)
    assert isinstance(await fails(coded("06")), RetriableDeliveryError)
    assert not isinstance(await fails(coded("07")), RetriableDeliveryError)


@pytest.mark.parametrize("code", [None, True, "abc", "123", 1.5, [13]])
async def test_unreadable_response_code_is_fatal(code):
    raised = await fails(coded(code))
    assert type(raised) is FatalDeliveryError
    assert raised.code is None


# ------------------------------------------------------------------------ malformed answers


def raw(status: int, content: bytes, content_type: str = "application/json") -> Handler:
    return lambda r: httpx2.Response(
        status, content=content, headers={"content-type": content_type}
    )


@pytest.mark.parametrize(
    "handler",
    [
        raw(200, b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        raw(200, b""),
        raw(200, b"\xff\xfe\x00garbage"),
        raw(200, b'{"content": '),
        raw(200, b"[]"),
        raw(200, b'"Sesuai"'),
        raw(200, b"{}"),
        raw(200, b'{"content": null}'),
        raw(200, b'{"content": []}'),
        raw(200, b'{"content": {"NIK": "Sesuai"}}'),
        raw(200, b'{"content": ["Sesuai"]}'),
        raw(200, b'{"content": [{}]}'),
        raw(200, json.dumps({"content": [{"NIK": NIK, "NAMA_LGKP": 1}]}).encode()),
        raw(204, b""),
    ],
    ids=[
        "html",
        "empty",
        "binary",
        "truncated",
        "list",
        "string",
        "no-content",
        "content-null",
        "content-empty",
        "content-object",
        "content-strings",
        "item-empty",
        "verdict-not-text",
        "204-no-body",
    ],
)
async def test_malformed_answers_are_fatal(handler):
    raised = await fails(handler)
    assert type(raised) is FatalDeliveryError
    assert raised.response["http_status"] in {200, 204}


# ------------------------------------------------------------------------------ HTTP level


async def test_429_with_delay_seconds():
    raised = await fails(lambda r: httpx2.Response(429, headers={"Retry-After": "7"}))
    assert type(raised) is RetriableDeliveryError
    assert raised.retry_after == 7.0
    assert raised.code == "429"


async def test_429_with_http_date():
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    header = email.utils.format_datetime(when, usegmt=True)
    raised = await fails(lambda r: httpx2.Response(429, headers={"Retry-After": header}))
    assert isinstance(raised, RetriableDeliveryError)
    assert raised.retry_after is not None
    assert 110 <= raised.retry_after <= 121


async def test_429_without_or_with_garbage_retry_after():
    for headers in ({}, {"Retry-After": "soon"}):
        raised = await fails(lambda r, h=headers: httpx2.Response(429, headers=h))
        assert isinstance(raised, RetriableDeliveryError)
        assert raised.retry_after is None


def test_parse_retry_after():
    now = dt.datetime(2025, 8, 17, 3, 0, tzinfo=dt.UTC)
    assert wire.parse_retry_after("120", now) == 120.0
    assert wire.parse_retry_after("Sun, 17 Aug 2025 03:01:30 GMT", now) == 90.0
    assert wire.parse_retry_after("Sun, 17 Aug 2025 02:00:00 GMT", now) == 0.0
    assert wire.parse_retry_after("-5", now) is None
    assert wire.parse_retry_after(None, now) is None


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (502, None), (503, 30.0)])
async def test_5xx_is_retriable(status, retry_after):
    headers = {"Retry-After": "30"} if retry_after else {}
    raised = await fails(lambda r: httpx2.Response(status, text="down", headers=headers))
    assert type(raised) is RetriableDeliveryError
    assert raised.code == str(status)
    assert raised.retry_after == retry_after
    assert raised.response["http_status"] == status


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 405, 413, 422])
async def test_other_statuses_are_fatal(status):
    raised = await fails(lambda r: httpx2.Response(status, json={"NIK": NIK}))
    assert type(raised) is FatalDeliveryError
    assert raised.code == str(status)


@pytest.mark.parametrize(
    "exc",
    [
        httpx2.ConnectTimeout,
        httpx2.ReadTimeout,
        httpx2.ConnectError,
        httpx2.ReadError,
        httpx2.RemoteProtocolError,
    ],
)
async def test_transport_failures_are_retriable(exc):
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc(f"boom for {NIK}", request=request)

    raised = await fails(handler)
    assert type(raised) is RetriableDeliveryError
    assert isinstance(raised.__cause__, exc)


# ---------------------------------------------------------------------------------- config


def with_config(**changes: Any) -> dict[str, Any]:
    config = json.loads(json.dumps(CONFIG))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        target = config
        for parent in parents:
            target = target[parent]
        if value is ...:
            del target[key]
        else:
            target[key] = value
    return config


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"base_url": ...}, "base_url"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": 5}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "10"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"credentials": ...}, "credentials"),
        ({"credentials": "hub:pw"}, "credentials"),
        ({"credentials__password": ...}, "credentials.password"),
        ({"credentials__password": ""}, "credentials.password"),
        ({"credentials__id_lembaga": 7}, "credentials.id_lembaga"),
        ({"credentials__ip_user": " "}, "credentials.ip_user"),
        ({"options": ["threshold"]}, "options"),
        ({"options__threshold": 101}, "options.threshold"),
        ({"options__threshold": "80"}, "options.threshold"),
        ({"options__threshold": True}, "options.threshold"),
        ({"options__treshold": 80}, "options.treshold"),
    ],
)
def test_bad_config(changes, named):
    with pytest.raises(ConfigError) as info:
        DukcapilVerifier(with_config(**changes))
    assert f"{named}:" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_every_config_problem_at_once():
    config = with_config(base_url=..., credentials__user_id=..., options__threshold=-1)
    with pytest.raises(ConfigError) as info:
        DukcapilVerifier(config)
    assert len(info.value.errors) == 3  # type: ignore[attr-defined]


async def test_defaults_for_timeout_and_threshold():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=page({"NIK": "Sesuai"}))

    async with verifier(handler, with_config(timeout=..., options=...)) as v:
        assert v._client.timeout.read == 10.0
        await v.verify(ELEMENTS)
    assert json.loads(seen[0].content)["TRESHOLD"] == 80


async def test_found_with_only_the_nik_asked_has_no_verdicts():
    answer = await ask(
        lambda r: httpx2.Response(200, json=page({"NIK": NIK}, quota=3)), {"NIK": NIK}
    )
    assert answer == VerifyAnswer(code="00", verdicts={}, quota_left=3)

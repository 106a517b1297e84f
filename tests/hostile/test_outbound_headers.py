"""Header injection on the way out: nothing from a record or a caller reaches the headers
of a request to Dukcapil or SIAK with a line break in it."""

from __future__ import annotations

import httpx2
import pytest

from adapters.base import OutboundEvent
from adapters.dukcapil.client import DukcapilVerifier
from adapters.siak.client import SiakDeliverer
from hub.errors import HubError, RejectedRecordError

pytestmark = pytest.mark.anyio

RECORD = {"nik": "3273011708400001", "nama_lengkap": "Ahmad\r\nX-Injected: 1"}


@pytest.mark.parametrize(
    "key",
    ["key\r\nX-Injected: 1", "key\nX-Injected: 1", "key\x00", "kéy", "", "k" * 201, "a b"],
)
async def test_a_key_unfit_for_a_header_is_refused_before_sending(key: str) -> None:
    sent: list[httpx2.Request] = []
    siak = SiakDeliverer(
        {"base_url": "https://siak.test", "credentials": {"client_id": "h", "client_secret": "s"}},
        transport=httpx2.MockTransport(lambda r: sent.append(r) or httpx2.Response(500)),
    )
    try:
        with pytest.raises(RejectedRecordError, match="header"):
            await siak.deliver(OutboundEvent("kematian", key, "create", 1, [RECORD]))
    finally:
        await siak.aclose()
    assert sent == []


async def test_record_values_with_line_breaks_travel_in_the_body_only() -> None:
    sent: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(200, json={"content": [{"RESPONSE_CODE": "00"}]})

    verifier = DukcapilVerifier(
        {
            "base_url": "https://dukcapil.test",
            "credentials": {
                "id_lembaga": "L1",
                "user_id": "u\r\nX-Injected: 1",
                "password": "p\r\nX-Injected: 2",
                "ip_user": "127.0.0.1",
            },
        },
        transport=httpx2.MockTransport(answer),
    )
    try:
        await verifier.verify({"NIK": "3273011708400001", "NAMA_LGKP": "Ahmad\r\nX-Injected: 3"})
    except HubError:  # the answer's shape does not matter here, only what went out
        pass
    finally:
        await verifier.aclose()
    assert sent
    for request in sent:
        for name, value in request.headers.items():
            assert "\r" not in value
            assert "\n" not in value
            assert name.lower() != "x-injected"

"""DukcapilVerifier: asks the Dukcapil verify-by-element service about one NIK.

Every answer ends in one of three ways, decided here and nowhere else:

- a `VerifyAnswer`: code `"00"` with a verdict per element, or a record-level code
  (08 cannot process, 11 deceased, 12 duplicate, 13 not found, 14 inactive, 15 bad format);
- a `hub.errors.DeliveryError` subclass that tells the dispatcher what to do: retry
  (timeouts, broken connections, 429, 5xx), pause (05 quota, 06 hours), reject the record
  (07 incomplete parameters) or stop the connector (login, IP, institution, user, any other
  4xx, and any answer whose shape or code the contract does not know);
- nothing else: foreign exceptions never escape.

Messages and `response` summaries go to the audit trail, so they hold codes, HTTP statuses
and element *names* only, never a NIK, a name, the password or any other value.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import quote

import httpx2

from adapters.base import FieldVerdict, Verifier, VerifyAnswer
from adapters.dukcapil import wire
from hub.errors import (
    ConfigValidationError,
    DeliveryError,
    FatalDeliveryError,
    OutsideHoursError,
    QuotaExhaustedError,
    RejectedRecordError,
    RetriableDeliveryError,
)
from hub.observe.tracing import inject_into_request

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_THRESHOLD: Final = 80
_CREDENTIALS: Final = ("id_lembaga", "user_id", "password", "ip_user")
_OPTIONS: Final = frozenset({"threshold"})


@dataclass(frozen=True, slots=True)
class _Settings:
    base_url: str
    timeout: float
    id_lembaga: str
    user_id: str
    password: str
    ip_user: str
    threshold: int


def _check_config(config: Mapping[str, Any]) -> _Settings:
    """Validate the connector block; every problem is reported at once, no value echoed."""
    errors: list[str] = []
    base_url = config.get("base_url")
    if not isinstance(base_url, str) or not base_url.strip():
        errors.append("base_url: required, a non-empty string")
    elif not base_url.startswith(("http://", "https://")):
        errors.append("base_url: must start with http:// or https://")
    timeout = config.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        errors.append("timeout: must be a number of seconds above 0")
    credentials = config.get("credentials")
    found: dict[str, str] = {}
    if not isinstance(credentials, Mapping):
        errors.append("credentials: required, a mapping of " + ", ".join(_CREDENTIALS))
    else:
        for key in _CREDENTIALS:
            value = credentials.get(key)
            if not isinstance(value, str) or not value.strip():
                errors.append(f"credentials.{key}: required, a non-empty string")
            else:
                found[key] = value
    options = config.get("options") or {}
    threshold: Any = DEFAULT_THRESHOLD
    if not isinstance(options, Mapping):
        errors.append("options: must be a mapping")
    else:
        errors.extend(f"options.{key}: unknown option" for key in sorted(set(options) - _OPTIONS))
        threshold = options.get("threshold", DEFAULT_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            errors.append("options.threshold: must be a whole number from 0 to 100")
        elif not 0 <= threshold <= 100:
            errors.append("options.threshold: must be from 0 to 100")
    if errors:
        raise ConfigValidationError("dukcapil: invalid connector configuration", errors)
    return _Settings(
        base_url=str(base_url).rstrip("/"),
        timeout=float(timeout),
        threshold=int(threshold),
        **found,
    )


class DukcapilVerifier(Verifier):
    """Verifies NIKs and their elements against Dukcapil, one call per NIK.

    ```python
    verifier = DukcapilVerifier({
        "base_url": "https://dukcapil.example.go.id",
        "credentials": {"id_lembaga": "...", "user_id": "...", "password": "...",
                        "ip_user": "10.1.2.3"},
        "options": {"threshold": 80},
    })
    answer = await verifier.verify({"NIK": nik, "NAMA_LGKP": "SITI AMINAH",
                                    "TGL_LHR": "17-08-1990"})
    answer.code, answer.verdicts["NAMA_LGKP"]  # "00", FieldVerdict(match=True, score=100)
    await verifier.aclose()
    ```

    One pooled `httpx2.AsyncClient` per verifier; `transport` replaces the network (tests,
    the simulator in process). Config keys: `base_url`, `timeout` (seconds, default 10),
    `credentials` (`id_lembaga`, `user_id`, `password`, `ip_user`), `options.threshold`
    (name-match threshold 0-100, default 80).
    """

    name: ClassVar[str] = "dukcapil"
    config_schema: ClassVar[dict[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "base_url": {"type": "string", "pattern": "^https?://"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": DEFAULT_TIMEOUT},
            "credentials": {
                "type": "object",
                "properties": {
                    "id_lembaga": {"type": "string", "minLength": 1},
                    "user_id": {"type": "string", "minLength": 1},
                    "password": {"type": "string", "minLength": 1, "writeOnly": True},
                    "ip_user": {"type": "string", "minLength": 1},
                },
                "required": list(_CREDENTIALS),
            },
            "options": {
                "type": "object",
                "properties": {
                    "threshold": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 100,
                        "default": DEFAULT_THRESHOLD,
                    }
                },
                "additionalProperties": False,
            },
        },
        "required": ["base_url", "credentials"],
    }

    def __init__(
        self, config: Mapping[str, Any], *, transport: httpx2.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._settings = _check_config(config)
        path = wire.VERIFY_PATH.format(id_lembaga=quote(self._settings.id_lembaga, safe=""))
        self._url = self._settings.base_url + path
        self._client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(self._settings.timeout),
            transport=transport,
            event_hooks={"request": [inject_into_request]},  # W3C traceparent, when tracing
        )

    async def __aenter__(self) -> DukcapilVerifier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def verify(self, elements: Mapping[str, str]) -> VerifyAnswer:
        clash = sorted(wire.RESERVED_KEYS.intersection(elements))
        if clash:
            raise ValueError(f"elements must not contain {', '.join(clash)}")
        names = sorted(elements)
        settings = self._settings
        body = {
            "USER_ID": settings.user_id,
            "PASSWORD": settings.password,
            "IP_USER": settings.ip_user,
            wire.THRESHOLD_KEY: settings.threshold,
            **elements,
        }
        try:
            response = await self._client.post(self._url, json=body)
        except httpx2.TimeoutException as exc:
            raise RetriableDeliveryError(
                f"Dukcapil: no answer within {settings.timeout:g} s ({type(exc).__name__})",
                response=_summary(None, None, names),
            ) from exc
        except (httpx2.TransportError, httpx2.DecodingError) as exc:
            raise RetriableDeliveryError(
                f"Dukcapil: connection failed ({type(exc).__name__})",
                response=_summary(None, None, names),
            ) from exc
        except httpx2.RequestError as exc:
            raise FatalDeliveryError(
                f"Dukcapil: request failed ({type(exc).__name__})",
                response=_summary(None, None, names),
            ) from exc
        _check_status(response, names)
        return _read_answer(response, names)


def _summary(status: int | None, code: str | None, names: list[str]) -> dict[str, Any]:
    """What the audit trail keeps of an answer: no values, ever."""
    return {"http_status": status, "code": code, "elements": names}


def _check_status(response: httpx2.Response, names: list[str]) -> None:
    """Map every non-2xx status to its error class."""
    status = response.status_code
    if 200 <= status < 300:
        return
    summary = _summary(status, str(status), names)
    now = dt.datetime.now(dt.UTC)
    retry_after = wire.parse_retry_after(response.headers.get("Retry-After"), now)
    if status == 429:
        raise RetriableDeliveryError(
            "Dukcapil: HTTP 429, too many requests",
            retry_after=retry_after,
            code=str(status),
            response=summary,
        )
    if status >= 500:
        raise RetriableDeliveryError(
            f"Dukcapil: HTTP {status}, server error",
            retry_after=retry_after,
            code=str(status),
            response=summary,
        )
    if status in (401, 403):
        raise FatalDeliveryError(
            f"Dukcapil: HTTP {status}, access refused", code=str(status), response=summary
        )
    raise FatalDeliveryError(
        f"Dukcapil: HTTP {status} not in the contract", code=str(status), response=summary
    )


def _read_answer(response: httpx2.Response, names: list[str]) -> VerifyAnswer:
    status = response.status_code
    try:
        page = wire.parse_page(json.loads(response.content))
    except (ValueError, UnicodeDecodeError) as exc:
        why = "not JSON" if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) else exc
        raise FatalDeliveryError(
            f"Dukcapil: unexpected answer ({why})", response=_summary(status, None, names)
        ) from None
    item = page.content[0]
    if "RESPONSE_CODE" in item:
        return _coded_answer(item, page.quota_left, status, names)
    verdicts: dict[str, FieldVerdict] = {}
    for key, value in item.items():
        verdict = wire.parse_verdict(value)
        if verdict is not None:
            verdicts[str(key)] = verdict
    if not item or (not verdicts and any(name != "NIK" for name in names)):
        raise FatalDeliveryError(
            "Dukcapil: unexpected answer (neither verdicts nor RESPONSE_CODE)",
            response=_summary(status, None, names),
        )
    return VerifyAnswer(code="00", verdicts=verdicts, quota_left=page.quota_left)


def _coded_answer(
    item: Mapping[str, Any], quota_left: int | None, status: int, names: list[str]
) -> VerifyAnswer:
    """`{"RESPON": ..., "RESPONSE_CODE": ...}`: an answer or an error, by code only."""
    code = wire.normalise_code(item["RESPONSE_CODE"])
    summary = {**_summary(status, code, names), "quota_left": quota_left}
    if code is None:
        raise FatalDeliveryError(
            "Dukcapil: RESPONSE_CODE is not a code", response=_summary(status, None, names)
        )
    if code in wire.RECORD_CODES:
        respon = item.get("RESPON")
        message = respon if isinstance(respon, str) else None
        return VerifyAnswer(code=code, quota_left=quota_left, message=message)
    meaning = wire.RESPONSE_TEXT.get(code, "unknown code: the contract may have changed")
    text = f"Dukcapil {code}: {meaning}"
    error: type[DeliveryError]
    if code == wire.QUOTA_CODE:
        error = QuotaExhaustedError
    elif code == wire.HOURS_CODE:
        error = OutsideHoursError
    elif code == wire.INCOMPLETE_CODE:
        error = RejectedRecordError
    else:
        error = FatalDeliveryError  # FATAL_CODES and every code the contract does not know
    raise error(text, code=code, response=summary)

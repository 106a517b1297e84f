"""`SiakDeliverer`: sends one event per request to SIAK, authenticated with OAuth2.

```yaml
connectors:
  siak:
    base_url: https://siak.example.go.id
    timeout: 10
    credentials:
      client_id: ${SIAK_CLIENT_ID}
      client_secret: ${SIAK_CLIENT_SECRET}
      token_url: /oauth/token        # absolute, or relative to base_url (the default)
    options:
      scope: lampid.write            # optional
```

The access token comes from the client-credentials grant through authlib's
`AsyncOAuth2Client` (client authentication `client_secret_basic`). It is fetched on the first
`deliver`, reused until it is 60 s (at most half its lifetime) from expiry and then fetched
again; a 401 from the events endpoint fetches a new token once and retries once. Renewal is
done here, under one lock, not inside authlib's `request()`, so concurrent deliveries fetch
one token and a failed fetch maps to a hub error before any event is sent.

How answers become outcomes:

| answer | outcome |
|---|---|
| 2xx | `Ack(status, remote_id=body["id"])` |
| 409 | `Ack(409, duplicate=True)`: SIAK already has this idempotency key |
| 400, 413, 422 | `RejectedRecordError`, `response` = SIAK's reasons, digit runs masked |
| 401 twice, 403, other 4xx, 3xx | `FatalDeliveryError` |
| 408, 429, 5xx, timeouts, connection errors | `RetriableDeliveryError` with `Retry-After` |
| 429 `{"error": "quota_exhausted"}` | `QuotaExhaustedError` |
| 503 `{"error": "outside_hours"}` | `OutsideHoursError` |
| token endpoint: invalid_client and other 4xx | `FatalDeliveryError` |
| token endpoint: 408, 429, 5xx, transport errors | `RetriableDeliveryError` |

Messages and summaries carry statuses, event names and counts only: never a NIK, a name or
the client secret.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, NoReturn
from urllib.parse import urlsplit

import anyio
import httpx2
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]

from adapters.base import Ack, Deliverer, OutboundEvent
from adapters.siak.mapping import EVENTS, UnmappedFieldError, WireFormatError, to_wire
from hub.errors import (
    ConfigValidationError,
    FatalDeliveryError,
    OutsideHoursError,
    QuotaExhaustedError,
    RejectedRecordError,
    RetriableDeliveryError,
)
from hub.observe.tracing import inject_into_request

EVENTS_PATH: Final = "/siak/v1/events"
#: What an Idempotency-Key may hold (the hub's are 64 hex digits).
_HEADER_SAFE_KEY: Final = re.compile(r"[A-Za-z0-9._:-]{1,200}")
COUNTS_PATH: Final = "/siak/v1/counts"
DEFAULT_TOKEN_PATH: Final = "/oauth/token"
DEFAULT_TIMEOUT: Final = 10.0
TOKEN_LEEWAY: Final = 60.0  # seconds before expiry that a token is renewed

_RETRIABLE_STATUS: Final = frozenset({408, 429})
_REJECTED_STATUS: Final = frozenset({400, 413, 422})
_RETRIABLE_OAUTH: Final = frozenset({"server_error", "temporarily_unavailable", "slow_down"})
_MAX_REASONS: Final = 5
_MAX_REASON_CHARS: Final = 120
_LONG_DIGITS: Final = re.compile(r"[0-9][0-9 .]{4,}[0-9]")  # NIK, No. KK, phone numbers


@dataclass(frozen=True, slots=True)
class _Settings:
    base_url: str
    timeout: float
    client_id: str
    client_secret: str
    token_url: str
    scope: str | None


class SiakDeliverer(Deliverer):
    """Delivers `OutboundEvent`s to SIAK's events endpoint.

    ```python
    siak = SiakDeliverer({"base_url": "https://siak.example.go.id",
                          "credentials": {"client_id": "hub", "client_secret": secret}})
    ack = await siak.deliver(event)     # Ack(201, remote_id="...") or Ack(409, duplicate=True)
    await siak.aclose()
    ```

    `transport` replaces the network (tests: `httpx2.MockTransport`, the simulator in
    process: `httpx2.ASGITransport`); it carries token requests too.
    """

    name: ClassVar[str] = "siak"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["base_url", "credentials"],
        "properties": {
            "base_url": {"type": "string", "format": "uri"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": DEFAULT_TIMEOUT},
            "credentials": {
                "type": "object",
                "required": ["client_id", "client_secret"],
                "properties": {
                    "client_id": {"type": "string", "minLength": 1},
                    "client_secret": {"type": "string", "minLength": 1, "writeOnly": True},
                    "token_url": {"type": "string", "default": DEFAULT_TOKEN_PATH},
                },
            },
            "options": {"type": "object", "properties": {"scope": {"type": "string"}}},
        },
    }

    def __init__(
        self, config: Mapping[str, Any], *, transport: httpx2.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._settings = _parse_config(config)
        self._events_url = self._settings.base_url + EVENTS_PATH
        self._token_lock = anyio.Lock()
        self._client: Any = AsyncOAuth2Client(
            client_id=self._settings.client_id,
            client_secret=self._settings.client_secret,
            token_endpoint_auth_method="client_secret_basic",
            scope=self._settings.scope,
            token_endpoint=self._settings.token_url,
            grant_type="client_credentials",
            timeout=self._settings.timeout,
            transport=transport,
            event_hooks={"request": [inject_into_request]},  # W3C traceparent, when tracing
        )
        # authlib parses a 429 with a JSON body as an OAuth error; make it an HTTP error first.
        self._client.register_compliance_hook("access_token_response", _raise_for_retriable)

    def __repr__(self) -> str:
        return f"SiakDeliverer(base_url={self._settings.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(self, event: OutboundEvent) -> Ack:
        """POST one event with its idempotency key; see the module docstring for outcomes."""
        key = event.idempotency_key
        if not _HEADER_SAFE_KEY.fullmatch(key):  # never CR/LF or other bytes into a header
            raise RejectedRecordError(
                "idempotency key is not fit for an HTTP header", idempotency_key=None, code="key"
            )
        try:
            body = to_wire(event)
        except UnmappedFieldError as exc:
            raise FatalDeliveryError(f"SIAK mapping: {exc}", idempotency_key=key) from None
        except WireFormatError as exc:
            raise RejectedRecordError(
                f"SIAK mapping: {exc}", idempotency_key=key, code="mapping"
            ) from None
        token = await self._ensure_token(key)
        response = await self._post(body, key)
        if response.status_code == 401:
            await self._renew_token(key, stale=token)
            response = await self._post(body, key)
            if response.status_code == 401:
                raise FatalDeliveryError(
                    "SIAK refused a freshly issued access token (401)",
                    idempotency_key=key,
                    code="401",
                )
        return _outcome(response, event)

    async def confirmed_counts(self) -> dict[tuple[str, str], int]:
        """What SIAK confirms it holds: (record type, kode_wilayah) -> records, from
        `GET /siak/v1/counts` (reconciliation). Errors as for `deliver`, without a key."""
        key = "counts"
        token = await self._ensure_token(key)
        response = await self._get_counts(key)
        if response.status_code == 401:
            await self._renew_token(key, stale=token)
            response = await self._get_counts(key)
        status = response.status_code
        if status in _RETRIABLE_STATUS or status >= 500:
            raise RetriableDeliveryError(f"SIAK counts answered {status}", code=str(status))
        body = _json_object(response)
        rows = body.get("counts") if body is not None and status == 200 else None
        if not isinstance(rows, list):
            raise FatalDeliveryError(
                f"SIAK counts answered {status} without counts", code=str(status)
            )
        types = {event: record_type for record_type, event in EVENTS.items()}
        counts: dict[tuple[str, str], int] = {}
        for row in rows:
            if not isinstance(row, Mapping) or row.get("event") not in types:
                raise FatalDeliveryError("SIAK counts: a row without a known event")
            count = row.get("count")
            kode = row.get("kode_wilayah")
            if not isinstance(count, int) or isinstance(count, bool) or not isinstance(kode, str):
                raise FatalDeliveryError("SIAK counts: a row without kode_wilayah and count")
            cell = (types[row["event"]], kode)
            counts[cell] = counts.get(cell, 0) + count
        return counts

    async def _get_counts(self, key: str) -> httpx2.Response:
        try:
            response: httpx2.Response = await self._client.get(
                self._settings.base_url + COUNTS_PATH, auth=self._client.token_auth
            )
        except httpx2.TransportError as exc:
            raise RetriableDeliveryError(
                f"SIAK connection failed: {type(exc).__name__}", idempotency_key=key
            ) from exc
        return response

    # ---------------------------------------------------------------------------- token

    def _token_usable(self) -> bool:
        """A token is renewed `TOKEN_LEEWAY` s before it expires, or at half its lifetime
        when that is shorter (authlib's own check would renew a 30 s token on every use)."""
        token = self._client.token
        if not token or not token.get("access_token"):
            return False
        expires_at = token.get("expires_at")
        if not isinstance(expires_at, int | float):
            return True  # no expiry given: used until SIAK answers 401
        expires_in = token.get("expires_in")
        margin = TOKEN_LEEWAY
        if isinstance(expires_in, int | float) and expires_in > 0:
            margin = min(margin, expires_in / 2)
        return bool(expires_at - margin > time.time())

    async def _ensure_token(self, key: str) -> str:
        """The current access token, fetched first when there is none or it is expiring."""
        async with self._token_lock:
            if not self._token_usable():
                await self._fetch_token(key)
            access_token: str = self._client.token["access_token"]
            return access_token

    async def _renew_token(self, key: str, *, stale: str) -> None:
        """Replace a token SIAK refused, unless a concurrent delivery already did."""
        async with self._token_lock:
            if self._token_usable() and self._client.token["access_token"] != stale:
                return
            await self._fetch_token(key)

    async def _fetch_token(self, key: str) -> None:
        try:
            token = await self._client.fetch_token(grant_type="client_credentials")
        except Exception as exc:
            self._client.token = None
            _raise_token_error(exc, key)
        if not isinstance(token, Mapping) or not token.get("access_token"):
            self._client.token = None
            raise FatalDeliveryError(
                "SIAK token endpoint answered without an access_token", idempotency_key=key
            )

    # ---------------------------------------------------------------------------- events

    async def _post(self, body: dict[str, Any], key: str) -> httpx2.Response:
        try:
            # An explicit `auth` keeps authlib from renewing the token inside post():
            # renewal is ours alone, under one lock.
            response: httpx2.Response = await self._client.post(
                self._events_url,
                json=body,
                headers={"Idempotency-Key": key},
                auth=self._client.token_auth,
            )
        except httpx2.TransportError as exc:
            raise RetriableDeliveryError(
                f"SIAK connection failed: {type(exc).__name__}", idempotency_key=key
            ) from exc
        except OAuthError as exc:  # e.g. a token_type other than Bearer
            _raise_token_error(exc, key)
        return response


# -------------------------------------------------------------------------------- outcomes


def _outcome(response: httpx2.Response, event: OutboundEvent) -> Ack:
    status = response.status_code
    key = event.idempotency_key
    body = _json_object(response)
    label = f"{EVENTS.get(event.record_type, event.record_type)} {event.kind} v{event.version}"
    remote_id = _remote_id(body)
    if 200 <= status < 300:
        people = len(event.records)
        summary = f"SIAK {status}: {label}, {people} record(s)" + (
            f", id {remote_id}" if remote_id else ""
        )
        return Ack(status, remote_id=remote_id, summary=summary)
    if status == 409:
        summary = f"SIAK 409: {label} already received" + (f", id {remote_id}" if remote_id else "")
        return Ack(409, duplicate=True, remote_id=remote_id, summary=summary)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    error = body.get("error") if body else None
    if status == 429 and error == "quota_exhausted":
        raise QuotaExhaustedError(
            "SIAK daily quota used up (429)",
            retry_after=retry_after,
            idempotency_key=key,
            code="429",
        )
    if status == 503 and error == "outside_hours":
        raise OutsideHoursError(
            "SIAK outside its service hours (503)",
            retry_after=retry_after,
            idempotency_key=key,
            code="503",
        )
    if status in _RETRIABLE_STATUS or status >= 500:
        raise RetriableDeliveryError(
            f"SIAK answered {status}",
            retry_after=retry_after,
            idempotency_key=key,
            code=str(status),
        )
    if status in _REJECTED_STATUS:
        reasons = summarise_reasons(body.get("errors") if body else None)
        raise RejectedRecordError(
            f"SIAK rejected {label} ({status}): {reasons}",
            idempotency_key=key,
            response=reasons,
            code=str(status),
        )
    raise FatalDeliveryError(
        f"SIAK answered {status} to {label}", idempotency_key=key, code=str(status)
    )


def _json_object(response: httpx2.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _remote_id(body: Mapping[str, Any] | None) -> str | None:
    value = body.get("id") if body else None
    return None if value is None else str(value)[:64]


def summarise_reasons(errors: Any) -> str:
    """SIAK's rejection reasons, short and with digit runs (NIK, No. KK) masked."""
    if not isinstance(errors, list) or not errors:
        return "no details"
    reasons = []
    for item in errors[:_MAX_REASONS]:
        if isinstance(item, Mapping):
            item = " ".join(str(item[k]) for k in ("field", "message") if k in item)
        reason = _LONG_DIGITS.sub("…", str(item))
        reasons.append(reason[:_MAX_REASON_CHARS])
    if len(errors) > _MAX_REASONS:
        reasons.append(f"(+{len(errors) - _MAX_REASONS} more)")
    return "; ".join(reasons)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# -------------------------------------------------------------------------------- tokens


def _raise_for_retriable(response: httpx2.Response) -> httpx2.Response:
    if response.status_code in _RETRIABLE_STATUS:
        response.raise_for_status()
    return response


def _raise_token_error(exc: Exception, key: str) -> NoReturn:
    """Map a failure of the token endpoint to retry (busy, down) or stop (credentials)."""
    if isinstance(exc, httpx2.TransportError):
        raise RetriableDeliveryError(
            f"SIAK token endpoint unreachable: {type(exc).__name__}", idempotency_key=key
        ) from exc
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
        if status in _RETRIABLE_STATUS or status >= 500:
            raise RetriableDeliveryError(
                f"SIAK token endpoint answered {status}",
                retry_after=retry_after,
                idempotency_key=key,
                code=str(status),
            ) from None
        raise FatalDeliveryError(
            f"SIAK token endpoint answered {status}", idempotency_key=key, code=str(status)
        ) from None
    if isinstance(exc, OAuthError):
        error = re.sub(r"[^a-z_]", "", str(exc.error or "").lower())[:40] or "oauth_error"
        cls = RetriableDeliveryError if error in _RETRIABLE_OAUTH else FatalDeliveryError
        raise cls(
            f"SIAK token endpoint refused the client ({error})", idempotency_key=key, code=error
        ) from None
    if isinstance(exc, ValueError):
        raise FatalDeliveryError(
            "SIAK token endpoint answered something other than a token", idempotency_key=key
        ) from None
    raise exc


# -------------------------------------------------------------------------------- config


def _parse_config(config: Mapping[str, Any]) -> _Settings:
    """Check the connector block; every problem is reported, no value is echoed."""
    errors: list[str] = []
    base_url = config.get("base_url")
    if not _is_http_url(base_url):
        errors.append("base_url: an http(s) URL is required")
        base_url = "http://invalid"
    base = str(base_url).rstrip("/")

    timeout = config.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        errors.append("timeout: a positive number of seconds is required")
        timeout = DEFAULT_TIMEOUT

    credentials = config.get("credentials")
    if not isinstance(credentials, Mapping):
        errors.append("credentials: a mapping with client_id and client_secret is required")
        credentials = {}
    client_id = credentials.get("client_id")
    if not isinstance(client_id, str) or not client_id.strip():
        errors.append("credentials.client_id: a non-empty string is required")
    client_secret = credentials.get("client_secret")
    if not isinstance(client_secret, str) or not client_secret:
        errors.append("credentials.client_secret: a non-empty string is required")
    token_url = credentials.get("token_url", DEFAULT_TOKEN_PATH)
    if not isinstance(token_url, str) or not token_url.strip():
        errors.append("credentials.token_url: a URL or a path is required")
        token_url = DEFAULT_TOKEN_PATH
    elif urlsplit(token_url).scheme and not _is_http_url(token_url):
        errors.append("credentials.token_url: an http(s) URL or a path is required")
    elif not urlsplit(token_url).scheme:
        token_url = f"{base}/{token_url.strip().lstrip('/')}"

    options = config.get("options") or {}
    if not isinstance(options, Mapping):
        errors.append("options: a mapping is required")
        options = {}
    scope = options.get("scope")
    if scope is not None and not isinstance(scope, str):
        errors.append("options.scope: a string is required")

    if errors:
        raise ConfigValidationError("siak: invalid connector configuration", errors)
    return _Settings(
        base_url=base,
        timeout=float(timeout),
        client_id=str(client_id),
        client_secret=str(client_secret),
        token_url=token_url,
        scope=scope,
    )


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value.strip())
    return parts.scheme in {"http", "https"} and bool(parts.netloc)

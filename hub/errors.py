"""The hub's exception tree. The class of an error decides what happens next.

```
HubError
├── ConfigError ── ConfigValidationError      .errors: list[str]
├── AdapterNotFoundError (also LookupError)
├── SchemaNotFoundError (also LookupError)
├── RoutingError
├── SourceError                               the input cannot be read at all: stop this input
│   ├── UnreadableFileError                   not a spreadsheet, corrupt, empty, too large
│   ├── EncryptedFileError                    password-protected workbook
│   └── HeaderNotFoundError                   no recognisable header row
├── RecordError                               .provenance
│   └── InvalidRecordError                    quarantine + audit, continue
├── StoreError                                the database refused or is unreachable
└── DeliveryError                             .idempotency_key, .response, .code
    ├── RetriableDeliveryError                timeout, 429, 5xx: retry   .retry_after
    │   ├── QuotaExhaustedError               daily quota used up: pause until it resets
    │   └── OutsideHoursError                 outside the allowed hours: wait for the window
    ├── RejectedRecordError                   remote refused this record: audit, continue
    └── FatalDeliveryError                    auth or contract failure: stop the connector
```

Messages of `SourceError` are shown to operators as they are, so they are in Indonesian
and say what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.records import Provenance


class HubError(Exception):
    """Base class of every error the hub raises on purpose."""


class ConfigError(HubError):
    """Settings, routes or adapter configuration are wrong."""


class ConfigValidationError(ConfigError):
    """Configuration failed validation; `errors` lists every problem, not just the first."""

    def __init__(self, message: str, errors: Sequence[str]) -> None:
        super().__init__(message)
        self.errors = list(errors)

    def __str__(self) -> str:
        lines = [self.args[0], *(f"  - {e}" for e in self.errors)]
        return "\n".join(lines)


class AdapterNotFoundError(HubError, LookupError):
    """No adapter is registered under the requested name."""


class SchemaNotFoundError(HubError, LookupError):
    """No schema is registered for the requested record type or version."""


class RoutingError(HubError):
    """A record matched no route, or a route names something that does not exist."""


class SourceError(HubError):
    """An input as a whole cannot be read; nothing from it is stored."""


class UnreadableFileError(SourceError):
    """The file is not a spreadsheet the hub can read (wrong format, corrupt, empty, bomb)."""


class EncryptedFileError(SourceError):
    """The workbook is protected with a password."""


class HeaderNotFoundError(SourceError):
    """No row of the file looks like the header of the requested record type."""


class NoDataRowsError(SourceError):
    """The file has a header but not one data row below it (an empty template)."""


class RecordError(HubError):
    """Something is wrong with one record; other records go on."""

    def __init__(self, message: str, provenance: Provenance | None = None) -> None:
        super().__init__(message)
        self.provenance = provenance


class InvalidRecordError(RecordError):
    """The record breaks its schema; every violation is attached as a note."""


class StoreError(HubError):
    """The store refused an operation or cannot be reached."""


class DeliveryError(HubError):
    """Sending a record to a national system failed.

    `code` is the remote system's own code when it gave one (Dukcapil `RESPONSE_CODE`, an
    HTTP status), `response` a short summary of the answer without PII.
    """

    def __init__(
        self,
        message: str,
        *,
        idempotency_key: str | None = None,
        response: Any = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key
        self.response = response
        self.code = code


class RetriableDeliveryError(DeliveryError):
    """Timeout, 429 or 5xx: the same request may succeed later.

    `retry_after` (seconds) is the remote system's own hint (HTTP `Retry-After`), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class QuotaExhaustedError(RetriableDeliveryError):
    """The daily quota is used up (Dukcapil code 05): nothing is lost, the connector pauses
    until the quota resets."""


class OutsideHoursError(RetriableDeliveryError):
    """The remote system refuses calls at this hour (Dukcapil code 06): wait for the window."""


class RejectedRecordError(DeliveryError):
    """The remote system refused this record; retrying it cannot help."""


class FatalDeliveryError(DeliveryError):
    """Authentication or contract failure: the connector stops and alerts an admin."""

"""Base classes every adapter implements: a `Source` reads rows, a `Connector` sends records.

Adapters import only `hub.records`, `hub.errors` and this module.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from hub.records import MergedRange, RawRow


class Source(abc.ABC):
    """Reads rows from one input, synchronously (pandas, calamine and pyodbc block).

    Subclasses declare `name` (their folder name, also their key in `routes.yaml`) and a
    JSON Schema of their configuration, and implement `read`.

    ```python
    source = CSVSource({"path": "lahir.csv"})
    for row in source.read():
        print(row.provenance.position, row.cells)
    ```
    """

    name: ClassVar[str]
    config_schema: ClassVar[dict[str, Any]]
    #: An operator's report file: a header without one data row under it is refused as empty
    #: (a page of a database pull may be empty).
    is_report: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    @abc.abstractmethod
    def read(self, bookmark: str | None = None) -> Iterator[RawRow]:
        """Yield every non-blank row, title and header rows included, in source order.

        Raises a `hub.errors.SourceError` subclass, with a message for the operator, when the
        input cannot be read at all.
        """

    def merged_ranges(self) -> Mapping[str, Sequence[MergedRange]]:
        """The merged cells of each part (sheet) read so far, filled in as `read` reaches the
        part; the rows themselves carry a merged value in every cell it covers. None here."""
        return {}


# ---------------------------------------------------------------- connectors


@dataclass(frozen=True, slots=True)
class FieldVerdict:
    """Dukcapil's judgement of one submitted element: `"Sesuai (100)"` -> match, score 100."""

    match: bool
    score: int | None = None


@dataclass(frozen=True, slots=True)
class VerifyAnswer:
    """What a verifier said about one NIK.

    `code` is `"00"` when the NIK was found and each element judged (`verdicts`, keyed by
    the wire element name: `NAMA_LGKP`, `TGL_LHR`, ...); otherwise the record-level
    `RESPONSE_CODE` (`"11"` deceased, `"13"` not found, ...). Connector-level codes (login,
    quota, hours) are raised as `hub.errors.DeliveryError` subclasses, never returned.
    """

    code: str
    verdicts: Mapping[str, FieldVerdict] = field(default_factory=dict)
    quota_left: int | None = None
    message: str | None = None  # the remote RESPON text: for logs, never matched on


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One event for a receiving system: a record, or the records of one family move.

    `records` hold canonical field names and values, already cut down to the fields the
    route allows; `idempotency_key` is stable across retries and processes.
    """

    record_type: str
    idempotency_key: str
    kind: Literal["create", "correction"]
    version: int
    records: Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Ack:
    """A receiving system took the event. `duplicate` when it already had it (HTTP 409)."""

    status: int
    duplicate: bool = False
    remote_id: str | None = None
    summary: str = ""  # short, without PII: goes into the audit trail


class Connector(abc.ABC):
    """The hub's side of one national system. Async: the dispatcher runs many at once.

    Built from the connector's block of `routes.yaml` (`base_url`, `timeout`, `credentials`,
    `options`) and an optional httpx2 transport (tests, simulators in process). Failures are
    raised as `hub.errors.DeliveryError` subclasses: the class decides retry, reject or stop.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the HTTP client."""


class Verifier(Connector):
    """Checks a NIK and its elements against the national register (Dukcapil)."""

    @abc.abstractmethod
    async def verify(self, elements: Mapping[str, str]) -> VerifyAnswer:
        """Ask about one NIK. `elements` use wire names: `NIK`, `NAMA_LGKP`, `TGL_LHR`, ..."""


class Deliverer(Connector):
    """Delivers events to a receiving system (SIAK)."""

    @abc.abstractmethod
    async def deliver(self, event: OutboundEvent) -> Ack:
        """Send one event; a repeat of an idempotency key must not apply twice."""

"""Answers of a verifier, remembered per NIK so that national quota is spent once.

An entry is keyed by a blind index of the NIK (never the NIK itself) and holds what Dukcapil
said: a record-level code (`13` not found, `11` deceased, ...), which is a fact about the
NIK whatever else was asked, or, for a found NIK, one verdict per element together with a
keyed digest of the value that was judged. A later question is answered from the entry when
every element it asks about was already judged with the same value; otherwise the NIK is
asked again and the new verdicts are merged in. Entries expire after the connector's
`cache_ttl`. No value is stored in clear, so the table holds no PII.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from adapters.base import FieldVerdict, VerifyAnswer
from hub.audit import utc_timestamp
from hub.crypto import DataProtector
from hub.store.tables import verify_cache

FOUND = "00"


class AnswerCache:
    """The store of one connector's answers (shared by every process through the store)."""

    def __init__(self, engine: sa.Engine, protector: DataProtector, connector: str) -> None:
        self.engine = engine
        self.protector = protector
        self.connector = connector

    def key(self, nik: str) -> bytes:
        return self.protector.blind_index(nik, f"verify:{self.connector}")

    def _digest(self, element: str, value: str) -> str:
        return self.protector.blind_index(
            f"{element}\x1f{value}", f"verify-element:{self.connector}"
        ).hex()[:32]

    def lookup(self, elements: Mapping[str, str], now: dt.datetime) -> VerifyAnswer | None:
        """The answer to `elements` (wire names, `NIK` among them) if it is known."""
        entry = self._entry(self.key(elements["NIK"]), now)
        if entry is None:
            return None
        if entry["code"] != FOUND:
            return VerifyAnswer(code=entry["code"])
        known: dict[str, list[Any]] = entry["verdicts"]
        verdicts = {}
        for element, value in elements.items():
            if element == "NIK":
                continue
            seen = known.get(element)
            if seen is None or seen[2] != self._digest(element, value):
                return None
            verdicts[element] = FieldVerdict(bool(seen[0]), seen[1])
        return VerifyAnswer(code=FOUND, verdicts=verdicts)

    def remember(
        self, elements: Mapping[str, str], answer: VerifyAnswer, now: dt.datetime, ttl: float
    ) -> None:
        key = self.key(elements["NIK"])
        verdicts: dict[str, list[Any]] = {}
        with self.engine.begin() as conn:
            old = self._entry(key, now, conn)
            if old is not None and old["code"] == FOUND and answer.code == FOUND:
                verdicts.update(old["verdicts"])
            for element, verdict in answer.verdicts.items():
                value = elements.get(element)
                if value is not None:
                    verdicts[element] = [verdict.match, verdict.score, self._digest(element, value)]
            text = orjson.dumps({"code": answer.code, "verdicts": verdicts}).decode()
            conn.execute(
                verify_cache.delete().where(
                    verify_cache.c.connector == self.connector, verify_cache.c.request_bi == key
                )
            )
            conn.execute(
                verify_cache.insert().values(
                    connector=self.connector,
                    request_bi=key,
                    answer=text,
                    expires_at=utc_timestamp(now + dt.timedelta(seconds=ttl)),
                )
            )

    def _entry(
        self, key: bytes, now: dt.datetime, conn: sa.Connection | None = None
    ) -> dict[str, Any] | None:
        query = sa.select(verify_cache.c.answer).where(
            verify_cache.c.connector == self.connector,
            verify_cache.c.request_bi == key,
            verify_cache.c.expires_at > utc_timestamp(now),
        )
        if conn is None:
            with self.engine.connect() as own:
                text = own.execute(query).scalar_one_or_none()
        else:
            text = conn.execute(query).scalar_one_or_none()
        if text is None:
            return None
        entry: dict[str, Any] = orjson.loads(text)
        return entry

"""The statistics read model: records per type, status, desa/kelurahan and event month.

Every change of a record's status calls `count_moves` in the same transaction, so
`record_counts` always equals `SELECT ... COUNT(*) FROM records GROUP BY ...` without
anybody scanning the records to answer a statistics request. Region levels above the desa
are prefix sums over `kode_wilayah`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.store.tables import record_counts


class Move(NamedTuple):
    """One record leaving `old` (None: a new record) for `new` (None: it is gone)."""

    record_type: str
    kode_wilayah: str
    event_date: str | None
    old: str | None
    new: str | None


def month_of(event_date: str | None) -> str:
    return event_date[:7] if event_date else ""


def count_moves(conn: sa.Connection, moves: Iterable[Move]) -> None:
    """Apply the moves to `record_counts` (one upsert per touched cell)."""
    deltas: Counter[tuple[str, str, str, str]] = Counter()
    for move in moves:
        if move.old == move.new:
            continue
        cell = (move.record_type, move.kode_wilayah, month_of(move.event_date))
        if move.old is not None:
            deltas[(cell[0], move.old, cell[1], cell[2])] -= 1
        if move.new is not None:
            deltas[(cell[0], move.new, cell[1], cell[2])] += 1
    rows = [
        {"record_type": t, "status": s, "kode_wilayah": k, "month": m, "count": n}
        for (t, s, k, m), n in sorted(deltas.items())
        if n
    ]
    if not rows:
        return
    insert: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
        record_counts
    )
    statement = insert.on_conflict_do_update(
        index_elements=["record_type", "status", "kode_wilayah", "month"],
        set_={"count": record_counts.c.count + insert.excluded.count},
    )
    conn.execute(statement, rows)

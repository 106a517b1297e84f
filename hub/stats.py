"""The statistics read model: records per type, status, desa/kelurahan and event month.

Every change of a record's status calls `count_moves` in the same transaction (a batch
tallies its moves and applies them once, after its audit event), so `record_counts` always
equals `SELECT ... COUNT(*) FROM records GROUP BY ...` without
anybody scanning the records to answer a statistics request. Region levels above the desa
are prefix sums over `kode_wilayah`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.audit import lock_chain_head
from hub.store.tables import record_counts

#: A counter's cell: record type, status, kode_wilayah, event month.
Cell = tuple[str, str, str, str]


class Move(NamedTuple):
    """One record leaving `old` (None: a new record) for `new` (None: it is gone)."""

    record_type: str
    kode_wilayah: str
    event_date: str | None
    old: str | None
    new: str | None


def month_of(event_date: str | None) -> str:
    return event_date[:7] if event_date else ""


def tally(moves: Iterable[Move], deltas: Counter[Cell] | None = None) -> Counter[Cell]:
    """Add the moves to `deltas` (a new counter by default): +1 / -1 per touched cell."""
    deltas = Counter() if deltas is None else deltas
    for move in moves:
        if move.old == move.new:
            continue
        cell = (move.record_type, move.kode_wilayah, month_of(move.event_date))
        if move.old is not None:
            deltas[(cell[0], move.old, cell[1], cell[2])] -= 1
        if move.new is not None:
            deltas[(cell[0], move.new, cell[1], cell[2])] += 1
    return deltas


def tally_new(records: Iterable[tuple[str, str, str, str | None]], deltas: Counter[Cell]) -> None:
    """Add new records, given as (record type, status, kode_wilayah, event date), to
    `deltas`: +1 per record (the moves from nothing of `tally`, counted in C)."""
    deltas.update((t, s, k, d[:7] if d else "") for t, s, k, d in records)


def apply_counts(conn: sa.Connection, deltas: Counter[Cell]) -> None:
    """Apply tallied moves to `record_counts` (one upsert per touched cell).

    The audit chain's head is locked first. Every transaction that changes a status also
    appends to the audit chain; taking the head before the counters' rows gives every such
    transaction the same lock order (head, then counters), so two of them can never wait on
    each other in a cycle (a batch being stored while a worker records a delivery)."""
    rows = [
        {"record_type": t, "status": s, "kode_wilayah": k, "month": m, "count": n}
        for (t, s, k, m), n in sorted(deltas.items())
        if n
    ]
    if not rows:
        return
    lock_chain_head(conn)
    insert: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
        record_counts
    )
    statement = insert.on_conflict_do_update(
        index_elements=["record_type", "status", "kode_wilayah", "month"],
        set_={"count": record_counts.c.count + insert.excluded.count},
    )
    conn.execute(statement, rows)


def count_moves(conn: sa.Connection, moves: Iterable[Move]) -> None:
    """Apply the moves to `record_counts` (see `apply_counts`)."""
    apply_counts(conn, tally(moves))

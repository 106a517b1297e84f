"""Retention: records past the hot period go to an encrypted cold archive; archives past the
cold period are deleted; a legal request brings archived records back.

| variable                   | default | meaning                                          |
|----------------------------|---------|--------------------------------------------------|
| `HUB_RETENTION_HOT_YEARS`  | 5       | a record untouched this long leaves the hot store |
| `HUB_RETENTION_COLD_YEARS` | 20      | an archive is deleted this long after it was made |

A record is archived when its last change (`updated_at`) is older than the hot period and no
message of it is still queued or in flight. Its row, its history and its outbox messages are
written as JSON Lines (sealed columns stay sealed, base64), gzip-compressed and encrypted with
the PII key (`<data dir>/archive/<name>.jsonl.gz.enc`), next to a manifest
(`<name>.manifest.json`: count, ids, sha256 of the encrypted file and of the JSON Lines). The
archive is read back and checked against the store (ids, versions, content hashes) *before*
the records are purged, in one transaction with the `retention.archived` audit event. Audit
events themselves are never archived or purged: they hold no PII and carry the chain.

```python
report = run_retention(hub, dry_run=True)   # what would move
report = run_retention(hub)                 # the lead's job scheduler calls this daily
restore_archive(hub, report.archive, reason="surat PN 12/2031")
```
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
import sqlalchemy as sa

from hub.audit import AuditLog, utc_timestamp
from hub.errors import ConfigError, HubError
from hub.stats import Move, count_moves
from hub.store.tables import outbox, record_history, records, retention_archives

if TYPE_CHECKING:
    from hub.context import Hub

FORMAT: Final = "lampid-hub-retention-archive/1"
#: Records per archive file (each file is built in memory, then encrypted).
ARCHIVE_SIZE: Final = 20_000
_ACTIVE_MESSAGES: Final = ("queued", "in_flight")


class RetentionError(HubError):
    """An archive cannot be written, verified or restored (the hot store is left unchanged)."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    hot_years: int = 5
    cold_years: int = 20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetentionPolicy:
        env = os.environ if environ is None else environ
        return cls(
            _years(env, "HUB_RETENTION_HOT_YEARS", 5), _years(env, "HUB_RETENTION_COLD_YEARS", 20)
        )


def _years(env: Mapping[str, str], name: str, default: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 200:
        raise ConfigError(f"{name} must be a whole number of years from 1 to 200")
    return int(text)


def _years_before(moment: dt.datetime, years: int) -> dt.datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


@dataclass(slots=True)
class RetentionReport:
    """What one run did (or, dry, would do)."""

    dry_run: bool
    hot_cutoff: str
    cold_cutoff: str
    archived: int = 0
    archive: str | None = None
    archives: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "hot_cutoff": self.hot_cutoff,
            "cold_cutoff": self.cold_cutoff,
            "archived": self.archived,
            "archives": list(self.archives),
            "expired": list(self.expired),
        }


def archive_dir(hub: Hub) -> Path:
    return hub.settings.data_dir / "archive"


def run_retention(
    hub: Hub,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    policy: RetentionPolicy | None = None,
    actor: str = "system:retention",
) -> RetentionReport:
    """Archive records past the hot period, then delete archives past the cold period."""
    policy = policy or RetentionPolicy.from_env()
    moment = now or dt.datetime.now(dt.UTC)
    hot_cutoff = utc_timestamp(_years_before(moment, policy.hot_years))
    report = RetentionReport(dry_run, hot_cutoff, utc_timestamp(moment))
    while True:
        ids = _eligible(hub, hot_cutoff, ARCHIVE_SIZE)
        if dry_run:
            report.archived = _count_eligible(hub, hot_cutoff)
            break
        if not ids:
            break
        name = _write_and_purge(hub, ids, hot_cutoff, moment, policy, actor)
        report.archived += len(ids)
        report.archives.append(name)
        report.archive = name
        if len(ids) < ARCHIVE_SIZE:
            break
    report.expired = _expire(hub, utc_timestamp(moment), dry_run=dry_run, actor=actor)
    return report


def _eligible_where(cutoff: str) -> sa.ColumnElement[bool]:
    busy = sa.select(outbox.c.id).where(
        outbox.c.record_id == records.c.id, outbox.c.status.in_(_ACTIVE_MESSAGES)
    )
    return sa.and_(records.c.updated_at < cutoff, ~sa.exists(busy))


def _eligible(hub: Hub, cutoff: str, limit: int) -> list[int]:
    with hub.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(records.c.id)
                .where(_eligible_where(cutoff))
                .order_by(records.c.id)
                .limit(limit)
            ).scalars()
        )


def _count_eligible(hub: Hub, cutoff: str) -> int:
    with hub.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(records).where(_eligible_where(cutoff))
            ).scalar_one()
        )


# ------------------------------------------------------------------ rows <-> JSON


def _plain(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row._mapping.items():
        if isinstance(value, bytes | memoryview):
            out[str(key)] = {"b64": base64.b64encode(bytes(value)).decode("ascii")}
        else:
            out[str(key)] = value
    return out


def _unplain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: base64.b64decode(value["b64"]) if isinstance(value, dict) else value
        for key, value in item.items()
    }


def _collect(conn: sa.Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(records).where(records.c.id.in_(ids)).order_by(records.c.id))
    history: dict[int, list[Any]] = {}
    for old in conn.execute(
        sa.select(record_history)
        .where(record_history.c.record_id.in_(ids))
        .order_by(record_history.c.id)
    ):
        history.setdefault(old.record_id, []).append(_plain(old))
    messages: dict[int, list[Any]] = {}
    for message in conn.execute(
        sa.select(outbox).where(outbox.c.record_id.in_(ids)).order_by(outbox.c.id)
    ):
        messages.setdefault(message.record_id, []).append(_plain(message))
    return [
        {
            "record": _plain(row),
            "history": history.get(row.id, []),
            "outbox": messages.get(row.id, []),
        }
        for row in rows
    ]


def _aad(name: str) -> bytes:
    return f"retention_archive:{name}".encode()


# ------------------------------------------------------------------ archive, verify, purge


def _write_and_purge(
    hub: Hub,
    ids: Sequence[int],
    cutoff: str,
    moment: dt.datetime,
    policy: RetentionPolicy,
    actor: str,
) -> str:
    directory = archive_dir(hub)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"records-{moment.strftime('%Y%m%dT%H%M%S')}-{ids[0]}-{ids[-1]}"
    with hub.engine.connect() as conn:
        items = _collect(conn, ids)
    lines = b"".join(orjson.dumps(item) + b"\n" for item in items)
    sealed = hub.protector.encrypt(gzip.compress(lines, mtime=0), _aad(name))
    delete_after = utc_timestamp(_years_before(moment, -policy.cold_years))
    manifest = {
        "format": FORMAT,
        "name": name,
        "created_at": utc_timestamp(moment),
        "cutoff": cutoff,
        "delete_after": delete_after,
        "records": len(items),
        "record_ids": [item["record"]["id"] for item in items],
        "sha256": hashlib.sha256(sealed).hexdigest(),
        "jsonl_sha256": hashlib.sha256(lines).hexdigest(),
        "key_version": sealed[1],
    }
    path = directory / f"{name}.jsonl.gz.enc"
    _write_atomic(path, sealed)
    _write_atomic(
        directory / f"{name}.manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
    )
    read_back = read_archive(hub, name)  # verifies checksum, decrypts, parses
    with hub.engine.begin() as conn:
        _check_against_store(conn, read_back)
        _purge(conn, read_back)
        conn.execute(
            retention_archives.insert().values(
                name=name,
                cutoff=cutoff,
                records=len(items),
                sha256=manifest["sha256"],
                created_at=manifest["created_at"],
                delete_after=delete_after,
            )
        )
        AuditLog.record(
            conn,
            actor=actor,
            action="retention.archived",
            entity_type="archive",
            entity_id=name[:64],
            details={
                "records": len(items),
                "sha256": manifest["sha256"],
                "cutoff": cutoff,
                "first_id": ids[0],
                "last_id": ids[-1],
            },
        )
    return name


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def read_manifest(hub: Hub, name: str) -> dict[str, Any]:
    if "/" in name or "\\" in name or name.startswith("."):
        raise RetentionError(f"arsip {name!r} tidak sah (bukan nama arsip)")
    path = archive_dir(hub) / f"{name}.manifest.json"
    try:
        manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise RetentionError(f"arsip {name} tidak ditemukan") from None
    except orjson.JSONDecodeError:
        raise RetentionError(f"manifest arsip {name} rusak") from None
    if manifest.get("format") != FORMAT:
        raise RetentionError(f"manifest arsip {name} bukan format {FORMAT}")
    return manifest


def read_archive(hub: Hub, name: str) -> list[dict[str, Any]]:
    """The items of an archive, after checking its checksum and count against the manifest."""
    manifest = read_manifest(hub, name)
    try:
        sealed = (archive_dir(hub) / f"{name}.jsonl.gz.enc").read_bytes()
    except FileNotFoundError:
        raise RetentionError(f"berkas arsip {name} tidak ditemukan") from None
    if hashlib.sha256(sealed).hexdigest() != manifest["sha256"]:
        raise RetentionError(f"checksum arsip {name} tidak cocok dengan manifest (rusak?)")
    lines = gzip.decompress(hub.protector.decrypt(sealed, _aad(name)))
    if hashlib.sha256(lines).hexdigest() != manifest["jsonl_sha256"]:
        raise RetentionError(f"isi arsip {name} tidak cocok dengan manifest")
    items = [orjson.loads(line) for line in lines.splitlines() if line]
    if [item["record"]["id"] for item in items] != manifest["record_ids"]:
        raise RetentionError(f"daftar rekaman arsip {name} tidak cocok dengan manifest")
    return items


def _check_against_store(conn: sa.Connection, items: Sequence[Mapping[str, Any]]) -> None:
    ids = [item["record"]["id"] for item in items]
    held = {
        row.id: (row.version, bytes(row.content_hash), row.updated_at)
        for row in conn.execute(
            sa.select(
                records.c.id, records.c.version, records.c.content_hash, records.c.updated_at
            ).where(records.c.id.in_(ids))
        )
    }
    for item in items:
        record = _unplain(item["record"])
        expected = (record["version"], record["content_hash"], record["updated_at"])
        if held.get(record["id"]) != expected:
            raise RetentionError(
                f"rekaman {record['id']} berubah saat diarsipkan; arsip tidak dipakai"
            )


def _purge(conn: sa.Connection, items: Sequence[Mapping[str, Any]]) -> None:
    ids = [item["record"]["id"] for item in items]
    for chunk in _chunks(ids, 500):
        conn.execute(outbox.delete().where(outbox.c.record_id.in_(chunk)))
        conn.execute(record_history.delete().where(record_history.c.record_id.in_(chunk)))
        conn.execute(records.delete().where(records.c.id.in_(chunk)))
    count_moves(conn, (_move(item["record"], leaving=True) for item in items))


def _move(record: Mapping[str, Any], *, leaving: bool) -> Move:
    status = record["status"]
    return Move(
        record["record_type"],
        record["kode_wilayah"],
        record["event_date"],
        status if leaving else None,
        None if leaving else status,
    )


def _chunks(values: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _expire(hub: Hub, now: str, *, dry_run: bool, actor: str) -> list[str]:
    with hub.engine.connect() as conn:
        expired = list(
            conn.execute(
                sa.select(retention_archives.c.name).where(
                    retention_archives.c.delete_after < now,
                    retention_archives.c.deleted_at.is_(None),
                )
            ).scalars()
        )
    if dry_run:
        return expired
    for name in expired:
        for suffix in (".jsonl.gz.enc", ".manifest.json"):
            (archive_dir(hub) / f"{name}{suffix}").unlink(missing_ok=True)
        with hub.engine.begin() as conn:
            conn.execute(
                retention_archives.update()
                .where(retention_archives.c.name == name)
                .values(deleted_at=now)
            )
            AuditLog.record(
                conn,
                actor=actor,
                action="retention.deleted",
                entity_type="archive",
                entity_id=name[:64],
                details={"deleted_at": now},
            )
    return expired


def list_archives(hub: Hub) -> list[dict[str, Any]]:
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(retention_archives).order_by(retention_archives.c.id))
        return [
            {
                "name": r.name,
                "records": r.records,
                "cutoff": r.cutoff,
                "created_at": r.created_at,
                "delete_after": r.delete_after,
                "deleted_at": r.deleted_at,
                "sha256": r.sha256,
            }
            for r in rows
        ]


# ------------------------------------------------------------------ restore


def restore_archive(
    hub: Hub,
    name: str,
    *,
    record_ids: Sequence[int] | None = None,
    reason: str,
    actor: str = "system",
) -> list[int]:
    """Put archived records (all, or `record_ids`) back in the hot store with their history and
    messages; audited (`retention.restored`) with the reason. A record already back (same id
    or natural key) is an error and nothing is restored."""
    if not reason.strip():
        raise RetentionError("alasan pemulihan (permintaan hukum) wajib diisi")
    items = read_archive(hub, name)
    if record_ids is not None:
        wanted = set(record_ids)
        items = [item for item in items if item["record"]["id"] in wanted]
        missing = wanted - {item["record"]["id"] for item in items}
        if missing:
            raise RetentionError(f"rekaman {sorted(missing)} tidak ada di arsip {name}")
    restored = [int(item["record"]["id"]) for item in items]
    with hub.engine.begin() as conn:
        for item in items:
            record = _unplain(item["record"])
            clash = conn.execute(
                sa.select(records.c.id).where(
                    sa.or_(
                        records.c.id == record["id"],
                        records.c.natural_key == record["natural_key"],
                    )
                )
            ).first()
            if clash is not None:
                raise RetentionError(
                    f"rekaman {record['id']} sudah ada di penyimpanan (rekaman {clash.id})"
                )
            conn.execute(records.insert().values(**_known(records, record)))
            for old in item["history"]:
                conn.execute(
                    record_history.insert().values(**_known(record_history, _unplain(old)))
                )
            for message in item["outbox"]:
                conn.execute(outbox.insert().values(**_known(outbox, _unplain(message))))
        count_moves(conn, (_move(item["record"], leaving=False) for item in items))
        AuditLog.record(
            conn,
            actor=actor,
            action="retention.restored",
            entity_type="archive",
            entity_id=name[:64],
            details={"records": restored[:1000], "count": len(restored), "reason": reason[:500]},
        )
    return restored


def _known(table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the columns the table has now (an archive may predate a new column)."""
    return {key: value for key, value in values.items() if key in table.c}

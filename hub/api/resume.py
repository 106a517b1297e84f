"""Uploads that were accepted but never finished are picked up again.

`POST /batches` answers 202 once the file is sealed in `batch_files` beside a `queued`
batch, and processes it after the answer. If the process stops before that ends (a
restart, a crash, kill -9), the batch stays `queued` or `processing` with nothing of it
stored: the pipeline's transaction rolled back. `resume_uploads` finds such batches and
runs them from the sealed file, so an accepted upload is never lost.

Only one process runs a batch at a time: `claimed` holds a process-wide claim and, on
PostgreSQL, a session advisory lock on the batch, which the database drops by itself when
the holder's connection dies. Whoever holds the claim re-reads the batch's status first, so
a batch that finished meanwhile is left alone. `hub serve` resumes at start-up and then
every `RESUME_EVERY` seconds, for batches older than `RESUME_AFTER` seconds (a fresh one
is still being run by the process that took it).

On SQLite (one serving process, the embedded default) the process-wide claim is enough.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from hub.context import Hub
from hub.crypto import DecryptionError
from hub.store.tables import batch_files, batches

log = logging.getLogger("hub.api.resume")

#: Seconds between two looks for unfinished uploads, and the age a batch must have.
RESUME_EVERY: Final = 60.0
RESUME_AFTER: Final = 30.0
#: Batch states of an upload that has not ended.
OPEN: Final = ("queued", "processing")
#: The batch's reason when its sealed copy cannot be opened (a lost key, a damaged row).
UNREADABLE: Final = "Berkas yang tersimpan tidak dapat dibuka; unggah ulang berkas ini."
_claims_lock = threading.Lock()
_claims: set[tuple[str, int]] = set()


@contextmanager
def claimed(hub: Hub, batch_id: int) -> Iterator[bool]:
    """True inside when this process may run `batch_id`: nobody else (here or, on
    PostgreSQL, in another process) is running it."""
    claim = (hub.engine.url.render_as_string(hide_password=True), batch_id)
    with _claims_lock:
        taken = claim in _claims
        _claims.add(claim)
    if taken:
        yield False
        return
    try:
        if hub.engine.dialect.name != "postgresql":
            yield True
            return
        # Advisory locks are per database: the key names the schema too, so hubs sharing a
        # database in separate schemas never block each other's batches.
        lock = sa.func.hashtextextended(
            sa.func.current_schema() + sa.literal(f":upload-batch:{batch_id}"), 0
        )
        with hub.engine.connect() as conn:
            locked = conn.execute(sa.select(sa.func.pg_try_advisory_lock(lock))).scalar_one()
            conn.commit()  # a session lock: it outlives the transaction
            try:
                yield bool(locked)
            finally:
                if locked:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(lock)))
                    conn.commit()
    finally:
        with _claims_lock:
            _claims.discard(claim)


def still_open(hub: Hub, batch_id: int) -> bool:
    """True while the batch has not ended (checked by whoever holds its claim)."""
    with hub.engine.connect() as conn:
        status = conn.execute(
            sa.select(batches.c.status).where(batches.c.id == batch_id)
        ).scalar_one_or_none()
    return status in OPEN


def unfinished(hub: Hub, *, older_than: float = RESUME_AFTER) -> list[int]:
    """Ids of accepted uploads that have not ended and were created `older_than` s ago."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than)
    stamp = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # as utc_now
    with hub.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(batches.c.id)
                .join(batch_files, batch_files.c.batch_id == batches.c.id)
                .where(batches.c.status.in_(OPEN), batches.c.created_at <= stamp)
                .order_by(batches.c.id)
            ).scalars()
        )


def resume_uploads(hub: Hub, *, older_than: float = RESUME_AFTER) -> list[int]:
    """Run every unfinished upload this process can claim; the ids it ran."""
    from hub.api.batches import fail_if_open, run_upload, unseal_upload

    resumed: list[int] = []
    for batch_id in unfinished(hub, older_than=older_than):
        with claimed(hub, batch_id) as mine:
            if not mine or not still_open(hub, batch_id):
                continue
            directory = Path(tempfile.mkdtemp(prefix="hub-resume-"))
            try:
                try:
                    job = unseal_upload(hub, batch_id, directory)
                except DecryptionError:
                    log.error("the sealed file of upload batch %s cannot be opened", batch_id)
                    fail_if_open(hub, batch_id, UNREADABLE, "sealed_file_unreadable")
                    continue
                if job is None:
                    continue
                log.info("resuming upload batch %s", batch_id)
                run_upload(hub, job)
                resumed.append(batch_id)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
    return resumed

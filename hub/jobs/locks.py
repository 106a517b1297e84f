"""One process at a time per job.

- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a connection held for the
  run, keyed by the schema and the job name. The server drops it when the process dies, so a
  crashed run never blocks the next one.
- SQLite (the embedded default, one machine): an exclusive `flock` on a file next to the
  database, `<db>.job-<name>.lock`; the kernel drops it when the process dies.
- An in-memory SQLite database: a lock of this process.

Redis is not needed: every hub process already shares the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

_LOCAL: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


@contextlib.contextmanager
def job_lock(engine: sa.Engine, name: str) -> Iterator[bool]:
    """Try to take the job's lock without waiting; yields whether this process holds it."""
    backend = engine.dialect.name
    if backend == "postgresql":
        with _advisory(engine, name) as held:
            yield held
    elif engine.url.database and engine.url.database != ":memory:":
        with _file_lock(Path(engine.url.database), name) as held:
            yield held
    else:
        with _local_lock(name) as held:
            yield held


@contextlib.contextmanager
def _advisory(engine: sa.Engine, name: str) -> Iterator[bool]:
    with engine.connect() as conn:
        key = sa.func.hashtextextended(sa.func.current_schema() + sa.literal(":job:" + name), 0)
        held = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one())
        conn.commit()  # the lock is the session's, not the transaction's
        try:
            yield held
        finally:
            if held:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()


@contextlib.contextmanager
def _file_lock(database: Path, name: str) -> Iterator[bool]:
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    path = database.with_name(f"{database.name}.job-{digest}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _local_lock(name: str) -> Iterator[bool]:
    with _LOCAL_GUARD:
        lock = _LOCAL.setdefault(name, threading.Lock())
    held = lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()

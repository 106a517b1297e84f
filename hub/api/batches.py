"""Uploaded reports: `POST /batches` and what became of them.

```
POST /batches                      multipart: file, type, kelurahan? -> 202 {batch_id, status_url}
GET  /batches/{id}                 status and the counts of the CLI's JSON report
GET  /batches/{id}/issues          the row issues, a page at a time (?limit=&cursor=)
GET  /batches/{id}/report.xlsx     the operator's file annotated with every issue
```

An upload is streamed to a private temporary directory (starlette spools the multipart part,
and it is copied from there in 1 MB blocks), recognised by its first bytes (never its name:
CSV text, .xlsx/.xlsb, .xls or .ods; anything else is 415), sealed into `batch_files` with a
`queued` batch in one transaction, and answered at once with 202. The pipeline then runs in
a worker thread after the response (`run_batch(..., batch_id=...)`): exactly what `hub ingest`
does, so the batch ends `done` with the CLI's counts, or `failed` with the reason in
Indonesian. A batch belongs to its `kelurahan` (the scope it was validated against; an
operator's own kelurahan by default): only callers whose region covers it see it.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import re
import shutil
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, cast

import orjson
import sqlalchemy as sa
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.excel.source import (
    DEFAULT_MAX_COMPRESSION_RATIO,
    DEFAULT_MAX_UNCOMPRESSED_BYTES,
    ENCRYPTED_MESSAGE,
    cfb_stream_names,
    sniff_format,
)
from hub.api.access import hub_of
from hub.api.errors import ApiError
from hub.api.principal import Principal
from hub.api.resume import claimed, still_open
from hub.api.support import (
    authorize,
    encode_cursor,
    guard_region,
    guard_scope,
    page_after,
    page_limit,
    path_id,
    shown_issue_value,
)
from hub.audit import AuditLog
from hub.batch import utc_now
from hub.context import Hub
from hub.errors import EncryptedFileError, HubError, SchemaNotFoundError
from hub.normalise import normalise_wilayah_text
from hub.pipeline import run_batch, source_for
from hub.records import Issue
from hub.report import write_report
from hub.store.tables import audit_events, batch_files, batches, row_issues

log = logging.getLogger("hub.api.batches")

XLSX_MEDIA: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ISSUES_PAGE: Final = 100
ISSUES_PAGE_MAX: Final = 1000
_BLOCK: Final = 1 << 20
_HEAD: Final = 8 * 1024
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
_CFB_MAGIC: Final = bytes.fromhex("d0cf11e0a1b11ae1")
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")
#: C0 control bytes that never occur in a CSV file (tab, line breaks, form feed and the old
#: DOS end-of-file mark 0x1A do).
_CONTROL: Final = frozenset(range(0x20)) - {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1A}
_KNOWN_BINARY: Final = (
    (b"MZ", "program Windows (.exe/.dll)"),
    (b"\x7fELF", "program Linux"),
    (b"%PDF", "PDF"),
    (b"\x89PNG\r\n\x1a\n", "gambar PNG"),
    (b"\xff\xd8\xff", "gambar JPEG"),
    (b"GIF8", "gambar GIF"),
    (b"Rar!\x1a\x07", "arsip RAR"),
    (b"7z\xbc\xaf\x27\x1c", "arsip 7-Zip"),
    (b"\x1f\x8b", "arsip GZIP"),
)
_ACCEPTED: Final = "Unggah laporan sebagai CSV, Excel (.xlsx, .xls) atau OpenDocument (.ods)."
_UNSAFE_NAME: Final = re.compile(r"[^\w .()\[\]-]+")


# ------------------------------------------------------------------ the uploaded file


@dataclass(frozen=True, slots=True)
class Staged:
    """An upload copied to a private temporary directory, under the operator's file name."""

    directory: Path
    path: Path
    name: str
    size: int
    sha256: str

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def safe_name(filename: str | None) -> str:
    """The uploaded file's base name, fit for a path and for messages to the operator.

    At most 120 bytes of UTF-8 (file systems allow 255 bytes, not characters, and the
    report adds `.hasil.xlsx` and a temporary suffix), cut between characters."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = _UNSAFE_NAME.sub("_", base).strip(" ._")
    base = base.encode()[:120].decode(errors="ignore").rstrip(" ._")
    return base or "laporan"


def stage(upload: IO[bytes], filename: str | None) -> Staged:
    """Copy an upload to a new private directory in 1 MB blocks, hashing it on the way."""
    directory = Path(tempfile.mkdtemp(prefix="hub-upload-"))
    name = safe_name(filename)
    path = directory / name
    digest = hashlib.sha256()
    size = 0
    try:
        upload.seek(0)
        with path.open("wb") as out:
            while block := upload.read(_BLOCK):
                digest.update(block)
                out.write(block)
                size += len(block)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Staged(directory, path, name, size, digest.hexdigest())


def _not_accepted(kind: str) -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        f"Berkas ini bukan laporan yang dapat dibaca (terdeteksi {kind}). {_ACCEPTED}",
        {"detected": kind},
    )


def sniff(path: Path) -> str:
    """What the file is, by its content: `csv`, `xlsx`, `xlsb`, `xls` or `ods`.

    415 for anything else (a program, an image, a PDF, a Word file, an archive, HTML); 422
    (`unreadable_file`, `SourceError`) for a spreadsheet that cannot be read safely: empty,
    password-protected, a zip bomb.
    """
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    if not head:
        raise ApiError(
            422, "unreadable_file", "Berkas kosong (0 byte). Periksa isinya lalu unggah ulang."
        )
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, EOFError, ValueError):
            raise _not_accepted("arsip ZIP yang rusak") from None
        if "xl/workbook.xml" in names:
            kind = "xlsx"
        elif "xl/workbook.bin" in names:
            kind = "xlsb"
        elif "mimetype" in names and "content.xml" in names:
            kind = "ods"
        else:
            raise _not_accepted("dokumen Word" if "word/document.xml" in names else "arsip ZIP")
        sniff_format(path, DEFAULT_MAX_UNCOMPRESSED_BYTES, DEFAULT_MAX_COMPRESSION_RATIO)
        return kind
    if head.startswith(_CFB_MAGIC):
        streams = cfb_stream_names(path)
        if streams is not None and "EncryptedPackage" in streams:
            raise EncryptedFileError(ENCRYPTED_MESSAGE)
        if streams is None or "Workbook" in streams or "Book" in streams:
            return "xls"  # an unreadable directory is calamine's to judge
        raise _not_accepted(
            "dokumen Word lama (.doc)" if "WordDocument" in streams else "dokumen Office lain"
        )
    for magic, kind in _KNOWN_BINARY:
        if head.startswith(magic):
            raise _not_accepted(kind)
    if head.startswith(_UTF16_BOMS):
        return "csv"
    if b"\x00" in head or any(byte in _CONTROL for byte in head):
        raise _not_accepted("data biner")
    text = head.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(("<!doctype", "<html", "<?xml", "<table")):
        raise _not_accepted("halaman HTML/XML")
    return "csv"


def _file_aad(batch_id: int) -> bytes:
    return f"batch_files:{batch_id}".encode()


def _seal(hub: Hub, staged: Staged, batch_id: int) -> bytes:
    """The upload sealed with the data key. The file is mapped, not read: the bytes are
    in memory once, as ciphertext (AES-GCM takes any buffer)."""
    with (
        staged.path.open("rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view,
    ):
        return hub.protector.encrypt(cast(bytes, view), _file_aad(batch_id))


# ------------------------------------------------------------------ storing and processing


@dataclass(frozen=True, slots=True)
class Upload:
    """A checked upload request: who, what and for which region."""

    caller: Principal
    record_type: str
    schema_version: int
    scope: str | None
    staged: Staged
    kind: str


def accept(hub: Hub, upload: Upload) -> int:
    """Create the `queued` batch with its sealed file and audit event; its id."""
    staged = upload.staged
    source = source_for(staged.path)
    now = utc_now()
    with hub.engine.begin() as conn:
        batch_id: int = conn.execute(
            batches.insert()
            .values(
                record_type=upload.record_type,
                schema_version=upload.schema_version,
                source=source.name,
                file_name=staged.name[:255],
                file_sha256=staged.sha256,
                kelurahan=upload.scope,
                status="queued",
                actor=upload.caller.subject[:100],
                created_at=now,
            )
            .returning(batches.c.id)
        ).scalar_one()
        conn.execute(
            batch_files.insert().values(
                batch_id=batch_id,
                file_name=staged.name[:255],
                content=_seal(hub, staged, batch_id),
                created_at=now,
            )
        )
        AuditLog.record(
            conn,
            actor=upload.caller.subject,
            action="batch.uploaded",
            entity_type="batch",
            entity_id=str(batch_id),
            details={
                "record_type": upload.record_type,
                "format": upload.kind,
                "bytes": staged.size,
                "file_sha256": staged.sha256,
                "kelurahan": upload.scope,
            },
        )
    return batch_id


@dataclass(frozen=True, slots=True)
class UploadJob:
    """What running an accepted upload needs: the batch, its file and who sent it."""

    batch_id: int
    record_type: str
    scope: str | None
    actor: str
    path: Path
    name: str
    sha256: str | None


def process(hub: Hub, batch_id: int, upload: Upload) -> None:
    """Run the pipeline on an accepted upload (a worker thread, after the 202 went out),
    unless another process has taken it up meanwhile (`hub.api.resume`)."""
    staged = upload.staged
    job = UploadJob(
        batch_id,
        upload.record_type,
        upload.scope,
        upload.caller.subject[:100],
        staged.path,
        staged.name,
        staged.sha256,
    )
    try:
        with claimed(hub, batch_id) as mine:
            if mine and still_open(hub, batch_id):
                run_upload(hub, job)
    finally:
        staged.discard()


#: Times an upload is run again when the database gave up on its transaction for a reason
#: of its own (a deadlock, a serialization failure, SQLite busy): nothing of it was stored.
TRANSIENT_RETRIES: Final = 2
_TRANSIENT_SQLSTATES: Final = frozenset({"40P01", "40001"})


def transient(exc: sa.exc.DBAPIError) -> bool:
    """True when the database refused the transaction for reasons of its own."""
    if getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)


def run_upload(hub: Hub, job: UploadJob) -> None:
    """Run the pipeline on an accepted upload; the batch ends `done` or `failed`."""
    try:
        for attempt in range(TRANSIENT_RETRIES + 1):
            try:
                run_batch(
                    hub,
                    source_for(job.path),
                    job.record_type,
                    scope=job.scope,
                    actor=job.actor,
                    file_name=job.name,
                    sha256=job.sha256,
                    batch_id=job.batch_id,
                )
                return
            except sa.exc.DBAPIError as exc:
                if attempt == TRANSIENT_RETRIES or not transient(exc):
                    raise
                log.warning("batch %s: %s, running it again", job.batch_id, type(exc.orig).__name__)
                time.sleep(0.2 * (attempt + 1))
    except HubError as exc:  # recorded on the batch by run_batch, unless it failed earlier
        log.info("batch %s failed: %s", job.batch_id, type(exc).__name__)
        fail_if_open(hub, job.batch_id, str(exc), type(exc).__name__)
    except Exception:
        log.exception("batch %s failed unexpectedly", job.batch_id)
        fail_if_open(
            hub, job.batch_id, "Terjadi kesalahan internal; unggah ulang berkas ini.", "internal"
        )


def unseal_upload(hub: Hub, batch_id: int, directory: Path) -> UploadJob | None:
    """The accepted upload of `batch_id` written back to `directory` from its sealed copy;
    None when the batch or its file is gone."""
    with hub.engine.connect() as conn:
        found = conn.execute(
            sa.select(
                batches.c.record_type,
                batches.c.kelurahan,
                batches.c.actor,
                batches.c.file_sha256,
                batch_files.c.file_name,
                batch_files.c.content,
            )
            .join(batch_files, batch_files.c.batch_id == batches.c.id)
            .where(batches.c.id == batch_id)
        ).one_or_none()
    if found is None:
        return None
    name = safe_name(found.file_name)
    path = directory / name
    path.write_bytes(hub.protector.decrypt(found.content, _file_aad(batch_id)))
    return UploadJob(
        batch_id, found.record_type, found.kelurahan, found.actor, path, name, found.file_sha256
    )


def fail_if_open(hub: Hub, batch_id: int, reason: str, error: str) -> None:
    """Mark a batch failed when it never got to a final state."""
    try:
        with hub.engine.begin() as conn:
            moved = conn.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.status.in_(["queued", "processing"]))
                .values(status="failed", error=reason[:2000], finished_at=utc_now())
            ).rowcount
            if moved:
                AuditLog.record(
                    conn,
                    actor="api",
                    action="batch.failed",
                    entity_type="batch",
                    entity_id=str(batch_id),
                    details={"error": error},
                )
    except Exception:
        log.exception("could not mark batch %s failed", batch_id)


# ------------------------------------------------------------------ handlers


def _form_text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(422, "invalid", f"{name} must be a text field", {"field": name})
    return value.strip() or None


def _scope(hub: Hub, caller: Principal, kelurahan: str | None) -> str | None:
    """The region the file is checked against: the `kelurahan` field, or the caller's own
    region (None for a nasional caller)."""
    if kelurahan is None:
        return caller.wilayah or None
    code, _ = normalise_wilayah_text(kelurahan)
    if code is None or hub.regions.level_of(code) is None:
        raise ApiError(
            422,
            "invalid",
            f"kelurahan {kelurahan!r} is not in the region list",
            {"field": "kelurahan"},
        )
    return str(code)


async def upload_batch(request: Request) -> Response:
    caller = await authorize(request, "batches:write")
    hub = hub_of(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "Kirim laporan sebagai multipart/form-data dengan kolom file dan type.",
        )
    async with request.form(max_files=1, max_fields=10, max_part_size=64 * 1024) as form:
        file = form.get("file")
        record_type = _form_text(form, "type")
        if not isinstance(file, UploadFile):
            raise ApiError(
                422, "invalid", "Berkas laporan (kolom file) wajib dikirim.", {"field": "file"}
            )
        if record_type is None:
            raise ApiError(422, "invalid", "type is required", {"field": "type"})
        try:
            schema = hub.schemas.get(record_type)
        except SchemaNotFoundError as exc:
            raise ApiError(422, "invalid", str(exc), {"field": "type"}) from None
        scope = _scope(hub, caller, _form_text(form, "kelurahan"))
        await guard_region(request, caller, scope)
        staged = await run_in_threadpool(stage, file.file, file.filename)
    try:
        kind = await run_in_threadpool(sniff, staged.path)
        upload = Upload(caller, schema.record_type, schema.version, scope, staged, kind)
        batch_id = await run_in_threadpool(accept, hub, upload)
    except BaseException:
        staged.discard()
        raise
    status_url = request.url_for("batches:status", batch_id=batch_id).path
    return JSONResponse(
        {"batch_id": batch_id, "status": "queued", "status_url": status_url},
        status_code=202,
        headers={"Location": status_url},
        background=BackgroundTask(process, hub, batch_id, upload),
    )


def _batch(hub: Hub, batch_id: int) -> Any:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(batches).where(batches.c.id == batch_id)).one_or_none()


#: Batch states that never change again, and how many such batches a process remembers.
FINISHED: Final = frozenset({"done", "failed"})
FINISHED_CACHE: Final = 10_000


def _batch_view(hub: Hub, batch_id: int) -> tuple[Any, dict[str, Any]] | None:
    """The batch row and what its audit events add: corrected rows, routed records."""
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).one_or_none()
        if row is None:
            return None
        events = conn.execute(
            sa.select(audit_events.c.action, audit_events.c.details).where(
                audit_events.c.entity_type == "batch",
                audit_events.c.entity_id == str(batch_id),
                audit_events.c.action.in_(["batch.ingested", "batch.routed"]),
            )
        ).all()
    extra: dict[str, Any] = {"corrected": 0, "routed": {}}
    for action, details in events:
        found = orjson.loads(details)
        if action == "batch.ingested":
            extra["corrected"] = found.get("corrected", 0)
        else:
            extra["routed"] = {k: v for k, v in found.items() if k != "records"}
    return row, extra


async def _visible_batch(request: Request, caller: Principal, batch_id: int) -> Any:
    row = await run_in_threadpool(_batch, hub_of(request), batch_id)
    if row is None:
        raise ApiError(404, "not_found", f"batch {batch_id} does not exist")
    await guard_region(request, caller, row.kelurahan)
    return row


async def get_batch(request: Request) -> Response:
    caller = await authorize(request, "batches:read")
    batch_id = path_id(request, "batch_id", "batch")
    finished: dict[int, tuple[str | None, bytes]] = request.app.state.__dict__.setdefault(
        "finished_batches", {}
    )
    known = finished.get(batch_id)
    if known is None:
        found = await run_in_threadpool(_batch_view, hub_of(request), batch_id)
        if found is None:
            raise ApiError(404, "not_found", f"batch {batch_id} does not exist")
        row, extra = found
        known = (row.kelurahan, orjson.dumps(_batch_document(row, extra)))
        if row.status in FINISHED:  # never changes again: read and written once
            if len(finished) >= FINISHED_CACHE:
                finished.clear()
            finished[batch_id] = known
    kelurahan, body = known
    await guard_region(request, caller, kelurahan)
    return Response(body, media_type="application/json")


def _batch_document(row: Any, extra: dict[str, Any]) -> dict[str, Any]:
    base = f"/api/v1/batches/{row.id}"
    return {
        "batch_id": row.id,
        "status": row.status,
        "type": row.record_type,
        "schema_version": row.schema_version,
        "file": row.file_name,
        "source": row.source,
        "kelurahan": row.kelurahan,
        "actor": row.actor,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "error": row.error,
        "rows": row.rows,
        "valid": row.valid,
        "invalid": row.invalid,
        "duplicates": row.duplicates,
        "warnings": row.warnings,
        **extra,
        "issues_url": f"{base}/issues",
        "report_url": f"{base}/report.xlsx",
    }


def _issue_page(hub: Hub, batch_id: int, after: int, limit: int) -> list[Any]:
    with hub.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(row_issues)
                .where(row_issues.c.batch_id == batch_id, row_issues.c.id > after)
                .order_by(row_issues.c.id)
                .limit(limit + 1)
            )
        )


def _issue_value(hub: Hub, value_enc: bytes | None) -> str | None:
    if value_enc is None:
        return None
    return hub.protector.decrypt(value_enc, b"issue").decode()


async def list_issues(request: Request) -> Response:
    caller = await authorize(request, "batches:read")
    hub = hub_of(request)
    batch_id = path_id(request, "batch_id", "batch")
    limit = page_limit(request, ISSUES_PAGE, ISSUES_PAGE_MAX)
    after = page_after(request)
    batch = await _visible_batch(request, caller, batch_id)
    rows = await run_in_threadpool(_issue_page, hub, batch_id, after, limit)
    schema = hub.schemas.get(batch.record_type, batch.schema_version)
    reveal = caller.may("pii:read")

    def shown(row: Any) -> dict[str, Any]:
        value = _issue_value(hub, row.value_enc)
        return {
            "id": row.id,
            "row": row.row,
            "sheet": row.sheet,
            "column": row.column_label,
            "field": row.field,
            "code": row.code,
            "severity": row.severity,
            "message": row.message,
            "value": shown_issue_value(schema, row.field, value, reveal),
        }

    page = rows[:limit]
    items = await run_in_threadpool(lambda: [shown(row) for row in page])
    more = len(rows) > limit
    return JSONResponse(
        {"items": items, "next_cursor": encode_cursor(page[-1].id) if more else None}
    )


def build_report(hub: Hub, batch: Any, actor: str) -> tuple[Path, Path]:
    """Write the annotated workbook of a finished batch: (its path, the directory to remove
    once it is sent). Raises 404 when the batch has no uploaded file (records sent as JSON)."""
    directory = Path(tempfile.mkdtemp(prefix="hub-report-"))
    try:
        upload = unseal_upload(hub, batch.id, directory)
        if upload is None:
            raise ApiError(404, "not_found", f"batch {batch.id} has no uploaded file")
        source_path = upload.path
        with hub.engine.connect() as conn:
            stored = list(
                conn.execute(
                    sa.select(row_issues)
                    .where(row_issues.c.batch_id == batch.id)
                    .order_by(row_issues.c.id)
                )
            )
        issues = [
            Issue(
                row=row.row,
                column=row.column_label,
                field=row.field,
                code=row.code,
                severity=row.severity,
                message=row.message,
                value=_issue_value(hub, row.value_enc),
                sheet=row.sheet,
                col=row.col,
            )
            for row in stored
        ]
        out = directory / f"{Path(source_path.name).stem}.hasil.xlsx"
        summary = {
            "file": batch.file_name,
            "type": batch.record_type,
            "batch_id": batch.id,
            "rows": batch.rows,
            "valid": batch.valid,
            "invalid": batch.invalid,
            "duplicates": batch.duplicates,
            "warnings": batch.warnings,
        }
        source = source_for(source_path)
        write_report(
            out, issues, source_rows=source.read(), summary=summary, merged=source.merged_ranges()
        )
        source_path.unlink()
        with hub.engine.begin() as conn:
            AuditLog.record(
                conn,
                actor=actor,
                action="batch.report",
                entity_type="batch",
                entity_id=str(batch.id),
                details={"issues": len(issues)},
            )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return out, directory


async def batch_report(request: Request) -> Response:
    caller = await authorize(request, "batches:read")
    hub = hub_of(request)
    batch = await _visible_batch(request, caller, path_id(request, "batch_id", "batch"))
    await guard_scope(request, caller, "pii:read")  # the report is the file itself
    if batch.status != "done":
        raise ApiError(
            409,
            "conflict",
            f"batch {batch.id} is {batch.status}: the report exists once it is done",
            {"status": batch.status},
        )
    out, directory = await run_in_threadpool(build_report, hub, batch, caller.subject[:100])
    return FileResponse(
        out,
        media_type=XLSX_MEDIA,
        filename=out.name,
        background=BackgroundTask(shutil.rmtree, directory, ignore_errors=True),
    )


routes: list[BaseRoute] = [
    Route("/batches", upload_batch, methods=["POST"], name="batches:upload"),
    Route("/batches/{batch_id:int}", get_batch, methods=["GET"], name="batches:status"),
    Route("/batches/{batch_id:int}/issues", list_issues, methods=["GET"], name="batches:issues"),
    Route(
        "/batches/{batch_id:int}/report.xlsx",
        batch_report,
        methods=["GET"],
        name="batches:report",
    ),
]


# ------------------------------------------------------------------ OpenAPI

_ERROR: Final = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_AUTH_ERRORS: Final = {
    "401": _error("No valid bearer token"),
    "403": _error("Scope missing, or the batch lies outside the caller's region (audited)"),
}
_BATCH_ID: Final = {
    "name": "batch_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_COUNT: Final = {"type": "integer", "minimum": 0}

openapi_paths: dict[str, Any] = {
    "/api/v1/batches": {
        "post": {
            "operationId": "uploadBatch",
            "summary": "Upload a report (CSV, XLSX, XLS, ODS); processed in the background",
            "tags": ["batches"],
            "security": [{"bearer": ["batches:write"]}],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file", "type"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "type": {
                                    "type": "string",
                                    "enum": ["kelahiran", "kematian", "pindah", "datang"],
                                },
                                "kelurahan": {
                                    "type": "string",
                                    "description": "region code the file reports for; "
                                    "default: the caller's own region",
                                    "examples": ["32.73.01.1001"],
                                },
                            },
                        },
                        "encoding": {"file": {"contentType": "application/octet-stream"}},
                    }
                },
            },
            "responses": {
                "202": {
                    "description": "Accepted; poll status_url until done or failed",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["batch_id", "status", "status_url"],
                                "properties": {
                                    "batch_id": {"type": "integer"},
                                    "status": {"const": "queued"},
                                    "status_url": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "400": _error("Malformed multipart body"),
                **_AUTH_ERRORS,
                "413": _error("The upload is larger than the limit"),
                "415": _error("Not multipart, or the file is not CSV/XLSX/XLS/ODS by content"),
                "422": _error(
                    "Missing file or type, unknown type or kelurahan, unreadable spreadsheet "
                    "(empty, password-protected, zip bomb)"
                ),
            },
        }
    },
    "/api/v1/batches/{batch_id}": {
        "get": {
            "operationId": "getBatch",
            "summary": "Status of a batch and the counts of the CLI's JSON report",
            "tags": ["batches"],
            "security": [{"bearer": ["batches:read"]}],
            "parameters": [_BATCH_ID],
            "responses": {
                "200": {
                    "description": "The batch",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["batch_id", "status", "type", "rows"],
                                "properties": {
                                    "batch_id": {"type": "integer"},
                                    "status": {"enum": ["queued", "processing", "done", "failed"]},
                                    "type": {"type": "string"},
                                    "schema_version": {"type": "integer"},
                                    "file": {"type": "string"},
                                    "source": {"type": "string"},
                                    "kelurahan": {"type": ["string", "null"]},
                                    "actor": {"type": "string"},
                                    "created_at": {"type": "string"},
                                    "finished_at": {"type": ["string", "null"]},
                                    "error": {"type": ["string", "null"]},
                                    "rows": _COUNT,
                                    "valid": _COUNT,
                                    "invalid": _COUNT,
                                    "duplicates": _COUNT,
                                    "warnings": _COUNT,
                                    "corrected": _COUNT,
                                    "routed": {
                                        "type": "object",
                                        "additionalProperties": _COUNT,
                                        "description": "new record status -> records",
                                    },
                                    "issues_url": {"type": "string"},
                                    "report_url": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                **_AUTH_ERRORS,
                "404": _error("No such batch"),
            },
        }
    },
    "/api/v1/batches/{batch_id}/issues": {
        "get": {
            "operationId": "listBatchIssues",
            "summary": "The issues of a batch, a page at a time; values masked without pii:read",
            "tags": ["batches"],
            "security": [{"bearer": ["batches:read"]}],
            "parameters": [
                _BATCH_ID,
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": ISSUES_PAGE_MAX,
                        "default": ISSUES_PAGE,
                    },
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "One page of issues",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["items", "next_cursor"],
                                "properties": {
                                    "items": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "id": {"type": "integer"},
                                                "row": {"type": "integer"},
                                                "sheet": {"type": "string"},
                                                "column": {"type": ["string", "null"]},
                                                "field": {"type": ["string", "null"]},
                                                "code": {"type": "string"},
                                                "severity": {"enum": ["error", "warning"]},
                                                "message": {"type": "string"},
                                                "value": {"type": ["string", "null"]},
                                            },
                                        },
                                    },
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            }
                        }
                    },
                },
                "400": _error("Bad limit or cursor"),
                **_AUTH_ERRORS,
                "404": _error("No such batch"),
            },
        }
    },
    "/api/v1/batches/{batch_id}/report.xlsx": {
        "get": {
            "operationId": "getBatchReport",
            "summary": "The uploaded file annotated with every issue (needs pii:read)",
            "tags": ["batches"],
            "security": [{"bearer": ["batches:read", "pii:read"]}],
            "parameters": [_BATCH_ID],
            "responses": {
                "200": {
                    "description": "The annotated workbook",
                    "content": {XLSX_MEDIA: {"schema": {"type": "string", "format": "binary"}}},
                },
                **_AUTH_ERRORS,
                "404": _error("No such batch, or it has no uploaded file"),
                "409": _error("The batch is not done yet (or failed)"),
            },
        }
    },
}

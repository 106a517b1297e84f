"""`hub` commands for custody: the audit chain, a record's trace, PII keys, retention.

```
hub audit verify [--checkpoint FILE] [--format json]   # exit 0 intact, 1 broken
hub audit checkpoint                                   # sign the chain head now
hub audit export-checkpoint FILE                       # a signed head to keep elsewhere
hub trace RECORD_ID [--reveal] [--format json]
hub keys status                                        # versions and what each seals
hub retention run [--dry-run]
hub retention list
hub retention restore ARCHIVE [--record ID ...]
```
PII in a trace is masked unless `--reveal` (audited). Bad input is one line on stderr and exit
status 2.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from hub.cli_support import EXIT_INVALID, cli_actor, fail, handled

if TYPE_CHECKING:
    from hub.context import Hub

_format_option = click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
_actor_option = click.option("--actor", help="who does it (default: cli:<user>)")


@contextmanager
def _opened() -> Iterator[Hub]:
    from hub.context import Hub

    with handled():
        hub = Hub.open()
        try:
            yield hub
        finally:
            hub.close()


def _json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


# ------------------------------------------------------------------ audit


@click.group()
def audit() -> None:
    """The hash-chained audit trail: verify it, sign and export its head."""


@audit.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="an exported checkpoint to check the chain against",
)
@_format_option
def audit_verify(checkpoint_file: Path | None, output: str) -> None:
    """Walk the chain; name the first broken link (edited, deleted, inserted, reordered)."""
    from hub.audit import Checkpoint, stored_checkpoints, verify_chain

    external: list[Checkpoint] = []
    if checkpoint_file is not None:
        try:
            external.append(Checkpoint.from_dict(orjson.loads(checkpoint_file.read_bytes())))
        except FileNotFoundError:
            fail(f"checkpoint file {checkpoint_file} not found")
        except orjson.JSONDecodeError:
            fail(f"{checkpoint_file}: not a JSON checkpoint file")
        except ValueError as exc:
            fail(f"{checkpoint_file}: {exc}")
    with _opened() as hub:
        public = hub.protector.audit_signing_key().public_key()
        with hub.engine.connect() as conn:
            stored = stored_checkpoints(conn, public)
            result = verify_chain(conn, checkpoints=[*stored, *external], public_key=public)
    body = {
        "ok": result.ok,
        "checked": result.checked,
        "checkpoints": result.checkpoints,
        "first_bad_id": result.first_bad_id,
        "position": result.position,
        "kind": result.kind,
        "reason": result.reason,
    }
    if output == "json":
        _json(body)
    elif result.ok:
        click.echo(
            f"audit chain intact: {result.checked} events, "
            f"{result.checkpoints} signed checkpoint(s) match"
        )
    else:
        where = f" at position {result.position}" if result.position else ""
        click.echo(f"audit chain BROKEN ({result.kind}){where}: {result.reason}")
    if not result.ok:
        raise SystemExit(EXIT_INVALID)


@audit.command("checkpoint")
@_actor_option
@_format_option
def audit_checkpoint(actor: str | None, output: str) -> None:
    """Sign the current chain head with the hub's audit key and store the checkpoint."""
    from hub.audit import create_checkpoint

    with _opened() as hub, hub.engine.begin() as conn:
        checkpoint = create_checkpoint(
            conn, hub.protector.audit_signing_key(), actor=cli_actor(actor)
        )
    if output == "json":
        _json(checkpoint.as_dict())
        return
    click.echo(
        f"checkpoint signed: event {checkpoint.last_id}, {checkpoint.events} events, "
        f"key {checkpoint.key_id}"
    )


@audit.command("export-checkpoint")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@_actor_option
def audit_export_checkpoint(path: Path, actor: str | None) -> None:
    """Sign the head now and write the checkpoint to PATH (keep it away from the database)."""
    from hub.audit import create_checkpoint

    with _opened() as hub, hub.engine.begin() as conn:
        checkpoint = create_checkpoint(
            conn, hub.protector.audit_signing_key(), actor=cli_actor(actor)
        )
    with handled():
        path.write_bytes(orjson.dumps(checkpoint.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    click.echo(f"checkpoint of event {checkpoint.last_id} written to {path}")


# ------------------------------------------------------------------ trace


@click.command()
@click.argument("record_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--reveal", is_flag=True, help="show PII in clear (audited)")
@_actor_option
@_format_option
def trace(record_id: int, reveal: bool, actor: str | None, output: str) -> None:
    """The chain of custody of one record: source cells to the national system's receipt."""
    from hub.audit import AuditLog
    from hub.custody import trace_record

    with _opened() as hub:
        found = trace_record(hub, record_id, reveal=reveal)
        if found is None:
            fail(f"record {record_id} does not exist")
        if reveal:
            with hub.engine.begin() as conn:
                AuditLog.record(
                    conn,
                    actor=cli_actor(actor),
                    action="record.revealed",
                    entity_type="record",
                    entity_id=str(record_id),
                    details={"via": "hub trace"},
                )
    if output == "json":
        _json(found)
    else:
        _print_trace(found)
    if not found["chain"]["ok"]:
        raise SystemExit(EXIT_INVALID)


def _print_trace(found: dict[str, Any]) -> None:
    record = found["record"]
    click.echo(
        f"record {record['id']} {record['record_type']} v{record['version']} "
        f"{record['status']} {record['kode_wilayah']}"
    )
    for version in found["versions"]:
        source = version["source"]
        click.echo(f"\nversion {version['version']} ({version['status']})")
        click.echo(
            f"  source: {source['file']} {source['row_ref']} batch {source['batch_id']} "
            f"at {source['at']} by {source['actor']}"
        )
        for cell in source["cells"] or []:
            click.echo(f"    {cell['column']}: {cell['value']}")
        if not source["cells_kept"]:
            click.echo("    (original cells not kept: stored before custody tracking)")
        click.echo("  normalised:")
        for name, value in version["normalised"].items():
            click.echo(f"    {name}: {value}")
        for issue in version["issues"]:
            click.echo(f"  issue: {issue['severity']} {issue['code']} {issue['field'] or ''}")
    click.echo("\nsteps:")
    for step in found["steps"]:
        click.echo(
            f"  {step['at']}  {step['step']:<17} {step['action']:<24} {step['actor']:<28} "
            f"#{step['audit_id']} {step['hash'][:16]}"
        )
    for receipt in found["receipts"]:
        click.echo(
            f"receipt: {receipt['connector']} {receipt['code']} at {receipt['at']} "
            f"(version {receipt['record_version']}, {receipt['attempts']} attempt(s))"
        )
    chain = found["chain"]
    if chain["ok"]:
        click.echo(f"\naudit chain intact ({chain['checked']} events)")
    else:
        click.echo(f"\naudit chain BROKEN ({chain['kind']}): {chain['reason']}")


# ------------------------------------------------------------------ PII keys


@click.command("status")
@_format_option
def keys_status(output: str) -> None:
    """PII key versions, how many sealed values each holds, and a running rotation."""
    from hub.keys import key_status

    with _opened() as hub:
        versions, running = key_status(hub)
    if output == "json":
        _json(
            {
                "versions": [
                    {
                        "version": v.version,
                        "state": v.state,
                        "created_at": v.created_at,
                        "retired_at": v.retired_at,
                        "values": v.values,
                    }
                    for v in versions
                ],
                "rotation": None if running is None else running.as_dict(),
            }
        )
        return
    for v in versions:
        click.echo(f"version {v.version}\t{v.state}\t{v.values} values\t{v.created_at}")
    if running is not None:
        click.echo(f"rotation to version {running.to_version} running: {running.resealed} resealed")


def rotate_pii(actor: str, batch_size: int, pause: float) -> None:
    """`hub keys rotate --pii`: start (or resume) a rotation and re-encrypt to the end."""
    from hub.keys import run_rotation, start_rotation

    with _opened() as hub:
        started = start_rotation(hub, actor=actor)
        click.echo(
            f"sealing with PII key version {started.to_version}; re-encrypting in batches of "
            f"{batch_size} (stop any time, run again to resume)"
        )
        report = run_rotation(hub, batch_size=batch_size, pause=pause, actor=actor)
    click.echo(
        f"PII key rotation to version {report.to_version} {report.state}: "
        f"{report.resealed} values resealed"
    )


# ------------------------------------------------------------------ retention


@click.group()
def retention() -> None:
    """Hot store to cold archive after the hot period; archives deleted after the cold one."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="count what would move, change nothing")
@_format_option
def retention_run(dry_run: bool, output: str) -> None:
    """Archive records older than HUB_RETENTION_HOT_YEARS, delete expired archives."""
    from hub.retention import run_retention

    with _opened() as hub:
        report = run_retention(hub, dry_run=dry_run)
    if output == "json":
        _json(report.as_dict())
        return
    verb = "would archive" if dry_run else "archived"
    click.echo(
        f"{verb} {report.archived} record(s) held since before {report.hot_cutoff[:10]}"
        + (f" into {report.archive}" if report.archive else "")
    )
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(report.expired)} archive(s) older than {report.cold_cutoff[:10]}")


@retention.command("list")
@_format_option
def retention_list(output: str) -> None:
    """Cold archives: name, records, until when they are kept."""
    from hub.retention import list_archives

    with _opened() as hub:
        found = list_archives(hub)
    if output == "json":
        _json(found)
        return
    if not found:
        click.echo("no archives")
    for item in found:
        state = f"deleted {item['deleted_at']}" if item["deleted_at"] else "kept"
        click.echo(
            f"{item['name']}\t{item['records']} records\tuntil {item['delete_after'][:10]}\t{state}"
        )


@retention.command("restore")
@click.argument("archive")
@click.option("--record", "record_ids", type=int, multiple=True, help="only this record (repeat)")
@click.option("--reason", required=True, help="the legal request, e.g. a letter number")
@_actor_option
def retention_restore(
    archive: str, record_ids: Sequence[int], reason: str, actor: str | None
) -> None:
    """Bring archived records back into the hot store (for a legal request)."""
    from hub.retention import restore_archive

    with _opened() as hub:
        restored = restore_archive(
            hub, archive, record_ids=record_ids or None, reason=reason, actor=cli_actor(actor)
        )
    click.echo(f"restored {len(restored)} record(s) from {archive}: {restored[:20]}")


COMMANDS: Sequence[click.Command] = (audit, trace, retention)
#: Added to the `hub keys` group of hub/cli_accounts.py.
KEY_COMMANDS: Sequence[click.Command] = (keys_status,)


def _register_key_commands() -> None:
    from hub.cli_accounts import keys

    for command in KEY_COMMANDS:
        keys.add_command(command)


_register_key_commands()

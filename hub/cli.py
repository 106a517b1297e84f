"""The `hub` command line: validate and ingest files, manage schemas and regions, run the demo.

Exit status: 0 when no row has an error, 1 when some rows are invalid, 2 when the input cannot
be read at all or the command is wrong; the reason goes to stderr as one line, never a
traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from hub.cli_support import EXIT_INVALID, EXIT_OK, fail, handled

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """LAMPID Hub: births, deaths and moves from regional files to the national systems."""
    from hub.observe.logs import configure_logging
    from hub.observe.tracing import setup_tracing

    with handled():
        configure_logging()
        setup_tracing()


# ------------------------------------------------------------------ validate / ingest


def _file_options(func: F) -> F:
    options = [
        click.argument("path", type=click.Path(path_type=Path)),  # a folder: said in Indonesian
        click.option(
            "--type", "record_type", required=True, help="kelahiran, kematian, pindah or datang"
        ),
        click.option(
            "--kelurahan",
            "scope",
            metavar="KODE",
            help="reporting kelurahan (fills a missing code, flags other regions)",
        ),
        click.option("--sheet", help="read only this sheet of a workbook"),
        click.option(
            "--format",
            "output",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(
    path: Path,
    record_type: str,
    scope: str | None,
    sheet: str | None,
    output: str,
    *,
    dry_run: bool,
    report: Path | None = None,
) -> None:
    from hub.context import Hub
    from hub.pipeline import file_sha256, run_batch, source_for
    from hub.progress import row_progress

    with handled():
        if report is not None:
            _check_report(report)
        hub = Hub.open()
        try:
            schema = hub.schemas.get(record_type)
            if scope is not None:
                scope = _check_scope(hub, scope)
            if path.is_dir():
                fail(f"{path} adalah folder, bukan berkas laporan (.xlsx, .xls, .ods atau .csv).")
            if not path.is_file():
                fail(f"Berkas {path} tidak ditemukan.")
            source = source_for(path, sheet=sheet)
            with row_progress() as progress:
                result = run_batch(
                    hub,
                    source,
                    schema.record_type,
                    scope=scope,
                    dry_run=dry_run,
                    file_name=path.name,
                    sha256=None if dry_run else file_sha256(path),
                    progress=progress,
                )
            if report is not None:
                from hub.report import write_report

                source = source_for(path, sheet=sheet)
                write_report(
                    report,
                    result.issues,
                    source_rows=source.read(),
                    summary=_summary(result.as_dict()),
                    merged=source.merged_ranges(),
                )
        finally:
            hub.close()
    if output == "json":
        click.echo(orjson.dumps(result.as_dict()).decode())
    else:
        _print_text(result.as_dict(), dry_run=dry_run)
    sys.exit(EXIT_INVALID if result.has_errors else EXIT_OK)


_REPORT_SUFFIXES = ".xlsx, .csv, atau .json"


def _check_report(report: Path) -> None:
    """Refuse, in Indonesian and before any work, a report the hub could not write."""
    if report.is_dir():
        fail(f"--report {str(report)!r} adalah folder; tulis nama berkas, misalnya laporan.xlsx.")
    if report.suffix.lower() not in {".xlsx", ".csv", ".json"}:
        fail(f"--report {report.name!r}: nama berkas laporan harus berakhiran {_REPORT_SUFFIXES}.")
    if not report.parent.is_dir():
        fail(f"--report {str(report)!r}: folder {str(report.parent)!r} tidak ditemukan.")


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "issues"}


def _check_scope(hub: Any, scope: str) -> str:
    from hub.normalise import normalise_wilayah_text

    code, _ = normalise_wilayah_text(scope)
    if code is None or hub.regions.level_of(code) is None:
        fail(f"--kelurahan {scope!r} tidak ada di daftar wilayah")
    return str(code)


def _print_text(report: dict[str, Any], *, dry_run: bool) -> None:
    title = "Pemeriksaan (tidak disimpan)" if dry_run else f"Batch #{report['batch_id']}"
    click.echo(f"{title}: {report['file']} ({report['type']})")
    click.echo(
        f"  {report['rows']} baris: {report['valid']} diterima, {report['invalid']} ditolak, "
        f"{report['duplicates']} duplikat, {report['warnings']} dengan peringatan"
    )
    for sheet in report["skipped_sheets"]:
        click.echo(f"  sheet {sheet!r} dilewati: tidak ada baris judul kolom")
    for issue in report["issues"]:
        where = f"{issue['sheet']}!" if issue["sheet"] else ""
        column = f" kolom {issue['column']!r}" if issue["column"] else ""
        mark = "KESALAHAN" if issue["severity"] == "error" else "peringatan"
        click.echo(
            f"  {where}baris {issue['row']}{column}: {mark} [{issue['code']}] {issue['message']}"
        )


@main.command()
@_file_options
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    help="write OUT.xlsx (annotated copy), OUT.csv or OUT.json",
)
def validate(
    path: Path,
    record_type: str,
    scope: str | None,
    sheet: str | None,
    output: str,
    report: Path | None,
) -> None:
    """Check a file without storing anything."""
    _run(path, record_type, scope, sheet, output, dry_run=True, report=report)


@main.command()
@_file_options
def ingest(path: Path, record_type: str, scope: str | None, sheet: str | None, output: str) -> None:
    """Store a file: valid rows become records, invalid rows keep their issues."""
    _run(path, record_type, scope, sheet, output, dry_run=False)


# ------------------------------------------------------------------ schemas


@main.group()
def schemas() -> None:
    """The JSON Schema registry."""


@schemas.command("list")
def schemas_list() -> None:
    """Record types and their versions."""
    from hub.schemas import SchemaRegistry

    with handled():
        registry = SchemaRegistry.load()
        for schema in registry:
            key = "+".join(schema.natural_key)
            click.echo(
                f"{schema.record_type:<10} v{schema.version}  {len(schema.fields):>2} fields, "
                f"key {key}  {schema.title}"
            )


@schemas.command("show")
@click.argument("record_type")
@click.option("--version", type=int)
@click.option("--json", "as_json", is_flag=True, help="print the JSON Schema itself")
def schemas_show(record_type: str, version: int | None, as_json: bool) -> None:
    """Fields of a record type: kind, required, PII, header aliases."""
    from hub.schemas import SchemaRegistry

    with handled():
        schema = SchemaRegistry.load().get(record_type, version)
    if as_json:
        click.echo(orjson.dumps(schema.raw, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{schema.schema_id}: {schema.title}. Natural key: {', '.join(schema.natural_key)}")
    for name, spec in schema.fields.items():
        flags = ("wajib" if spec.required else "opsional") + (", PII" if spec.pii else "")
        extra = f" {list(spec.enum)}" if spec.enum else ""
        click.echo(f"  {name:<22} {spec.kind:<8} {flags:<15} {', '.join(spec.aliases[:4])}{extra}")


@schemas.command("check")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="schema directory (default: the registry)",
)
def schemas_check(directory: Path | None) -> None:
    """Meta-validate every schema and check each version is backward compatible."""
    from hub.schemas import DEFAULT_SCHEMA_DIR, SchemaRegistry

    with handled():
        registry = SchemaRegistry.load(directory or DEFAULT_SCHEMA_DIR)
        problems = registry.check_compatibility()
    for problem in problems:
        click.echo(problem)
    if problems:
        sys.exit(EXIT_INVALID)
    click.echo(f"{sum(1 for _ in registry)} schemas valid and backward compatible")


# ------------------------------------------------------------------ wilayah


@main.group()
def wilayah() -> None:
    """The Kemendagri region master."""


@wilayah.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def wilayah_import(path: Path) -> None:
    """Load a region list (CSV: kode,nama,level,induk); running it again changes nothing."""
    from hub.context import Hub
    from hub.wilayah import import_csv

    with handled():
        hub = Hub.open()
        with hub.engine.begin() as conn:
            counts = import_csv(conn, path)
        hub.close()
    for level, count in counts.items():
        click.echo(f"{level:<10} {count:>7}")


@wilayah.command("find")
@click.argument("text")
@click.option("--induk", help="search only under this code, e.g. 32.73")
@click.option("--limit", default=20, show_default=True)
def wilayah_find(text: str, induk: str | None, limit: int) -> None:
    """Search regions by name."""
    from hub.context import Hub
    from hub.wilayah import find

    with handled():
        hub = Hub.open()
        with hub.engine.connect() as conn:
            rows = find(conn, text, induk=induk, limit=limit)
        hub.close()
    for row in rows:
        click.echo(f"{row.kode:<14} {row.nama}  (level {row.level}, induk {row.induk or '-'})")
    if not rows:
        click.echo("tidak ditemukan")


# ------------------------------------------------------------------ db, demo


@main.group()
def db() -> None:
    """The store."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Run the database migrations up to the current version."""
    from hub.context import Hub

    with handled():
        Hub.open().close()
    click.echo("database is up to date")


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/demo"),
    show_default=True,
)
def demo(directory: Path) -> None:
    """Write messy sample reports, validate and ingest them, write an annotated report."""
    from hub.demo import run_demo

    with handled():
        run_demo(directory)


from hub import cli_accounts, cli_api, cli_custody, cli_delivery, cli_sync  # noqa: E402 - registered once `main` exists

for _command in (
    *cli_delivery.COMMANDS,
    *cli_api.COMMANDS,
    *cli_accounts.COMMANDS,
    *cli_sync.COMMANDS,
    *cli_custody.COMMANDS,
):
    main.add_command(_command)


if __name__ == "__main__":
    main()

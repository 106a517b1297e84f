"""`hub demo`: messy sample reports of a kelurahan in Kota Bandung, validated and ingested.

The sample files look like what offices really send: title rows, a two-row header under a
merged cell, a row of column numbers, NIKs typed as numbers or in scientific notation,
Indonesian month names, labels instead of codes, `3,2 kg`, a signature block. Some rows are
wrong on purpose, so the demo shows every kind of answer an operator gets.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hub.context import Hub
from hub.settings import Settings

KELURAHAN = "32.73.01.1001"  # Sukarasa, Kecamatan Sukasari, Kota Bandung

# fmt: off
KELAHIRAN_ROWS: list[list[object]] = [
    # nama, jk, tempat, tgl lahir, jam, anak ke, penolong, bb, pb, nik ibu, nama ibu, nik ayah, nama ayah, no kk, rt/rw, nik pelapor, nama pelapor, tgl lapor
    ["Aisyah Putri", "Pr", "Bandung", dt.date(2025, 7, 2), "08.30", 1, "Bidan", "3,2 kg", 49, "3273014507900001", "Siti Aminah", "3273010101880002", "Budi Santoso", "3273011203150004", "003/005", "3273010101880002", "Budi Santoso", "05/07/2025"],
    ["Muhammad Rizki", "Lk", "Bandung", "9 Juli 2025", "14:05", 2, "Dokter", 3400, 51, "3273015208920003", "Dewi Lestari", "3273011505900005", "Agus Salim", "3273012006180006", "4", "3273011505900005", "Agus Salim", "12-07-2025"],
    ["Nur Aini", "P", "Bandung", "17-Agt-2025", "", 1, "2", "2.900", 48, "3273016011950007", "Rina Marlina", "", "", "3273010907200008", "001/002", "3273016011950007", "Rina Marlina", "20 Agustus 2025"],
    ["Bayu Pratama", "L", "Bandung", dt.date(2025, 7, 21), "07.15", 1, "Bidan/Perawat", 3100, 50, "3.27302E+15", "Yuli Handayani", "", "", "3273011104190009", "002/003", "3273014101850010", "Heru", "23/07/2025"],
    ["Citra Ayu", "P", "Bandung", "31/06/2025", "09:00", 1, "Bidan", 3000, 49, "3273014812930011", "Lina Marlina", "", "", "3273010303210012", "003/003", "3273014812930011", "Lina Marlina", "02/07/2025"],
    ["Dimas Saputra", "X", "Bandung", dt.date(2025, 7, 28), "10.10", 25, "Mantri", "80 kg", 50, "3273015506940013", "Sri Wahyuni", "3273011506940014", "Dedi", "3273011212220015", "005/001", "3273011506940014", "Dedi", "30/07/2025"],
    ["Eka Wulandari", "P", "Bandung", "03 Mei2099", "11:00", 1, "Bidan", 3300, 50, "3273014403960016", "Tuti Alawiyah", "", "", "3273010404230017", "001/001", "3273014403960016", "Tuti Alawiyah", "05/07/2025"],
    ["Fajar Nugraha", "L", "Bandung", dt.date(2025, 7, 30), "", 1, "Bidan", 3200, 50, 3273014507900020.0, "Siti Aminah", "", "", "3273011203150004", "003/005", "3273011505900005", "Agus Salim", "01/08/2025"],
    ["Gita Permata", "P", "Jakarta", dt.date(2025, 7, 5), "", 1, "RS", 3000, 49, "3273014507900001", "Siti Aminah", "", "", "3273011203150004", "003/005", "3273011505900005", "Agus Salim", "06/07/2025"],
    ["Aisyah Putri", "Pr", "Bandung", dt.date(2025, 7, 2), "08.30", 1, "Bidan", "3,2 kg", 49, "3273014507900001", "Siti Aminah", "3273010101880002", "Budi Santoso", "3273011203150004", "003/005", "3273010101880002", "Budi Santoso", "05/07/2025"],
]
# fmt: on


def _at(cells: dict[int, object]) -> list[object]:
    """A sheet row with values in the given 1-based columns and blanks elsewhere."""
    return [cells.get(column) for column in range(1, max(cells) + 1)]


def write_kelahiran_xlsx(path: Path) -> Path:
    """A birth report as a kelurahan office makes it in Excel."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Juli 2025"
    ws.append(["LAPORAN KELAHIRAN BULAN JULI 2025"])
    ws.append(["KELURAHAN : SUKARASA", None, None, "KECAMATAN : SUKASARI"])
    ws.append([])
    # fmt: off
    top = ["No", "Data Bayi", None, None, None, None, None, None, None, None, "Data Ibu", None,
           "Data Ayah", None, "No. KK", "RT/RW", "Pelapor", None, "Tgl Lapor"]
    sub = [None, "Nama Anak", "JK", "Tempat Lahir", "Tgl Lahir", "Jam Lahir", "Anak Ke", "Penolong",
           "BB", "PB", "NIK", "Nama", "NIK", "Nama", None, None, "NIK", "Nama", None]
    # fmt: on
    ws.append(top)
    ws.append(sub)
    for first, last in (("B4", "J4"), ("K4", "L4"), ("M4", "N4"), ("Q4", "R4"),
                        ("A4", "A5"), ("O4", "O5"), ("P4", "P5"), ("S4", "S5")):  # fmt: skip
        ws.merge_cells(f"{first}:{last}")
    for cell in (*ws[4], *ws[5]):
        cell.font = Font(bold=True)
    ws.append([f"({i})" for i in range(1, 20)])
    for number, row in enumerate(KELAHIRAN_ROWS, start=1):
        ws.append([number, *row])
        ws.cell(ws.max_row, 5).number_format = "DD/MM/YYYY"
    ws.append([])
    ws.append(_at({1: "JUMLAH", 19: len(KELAHIRAN_ROWS)}))
    for line in ("Bandung, 2 Agustus 2025", "Lurah Sukarasa", "NIP. 197001011990031001"):
        ws.append(_at({15: line}))  # the signature block under the table
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# fmt: off
KEMATIAN_ROWS = [
    ["1", "3273010101500021", "H. Ahmad Sobari", "3273010505100022", "L", "01/01/1950", "Senin, 14 Juli 2025", "Sakit biasa/tua", "Rumah", "Dokter", "Jl. Sukarasa No. 5", "2", "5", "3273010101800023", "Ujang", "15/07/2025"],
    ["2", "3273014202550024", "Hj. Imas", "3273010606120025", "P", "02/02/1955", "20 Juli 2025", "2", "RS Hasan Sadikin", "1", "Jl. Gegerkalong 10", "1", "3", "3273010101800023", "Ujang", "19/07/2025"],
    ["3", "3273011010600026", "Karta", "3273010707130027", "P", "10/10/1960", "25 Juli 2025", "Kecelakaan", "Jalan", "Kepolisian", "Jl. Isola 1", "4", "2", "3273011010850028", "Asep", "26/07/2025"],
]
# fmt: on


def write_kematian_csv(path: Path) -> Path:
    """A death report exported from Indonesian-locale Excel: `;`, BOM, a title row."""
    header = [
        "No",
        "NIK Almarhum",
        "Nama",
        "No KK",
        "L/P",
        "Tgl Lahir",
        "Tgl Meninggal",
        "Sebab Kematian",
        "Tempat Meninggal",
        "Yang Menerangkan",
        "Alamat",
        "RT",
        "RW",
        "NIK Pelapor",
        "Nama Pelapor",
        "Tanggal Lapor",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        handle.write("LAPORAN KEMATIAN KELURAHAN SUKARASA BULAN JULI 2025\n\n")
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(header)
        writer.writerows(KEMATIAN_ROWS)
    return path


# fmt: off
PINDAH_ROWS = [
    ["3273011505900005", "Agus Salim", "3273012006180006", "Kepala keluarga", "32.73.01.1001", "3273021001", "Pekerjaan", "01/08/2025", "003/005", "3273011505900005", "Agus Salim", "28/07/2025"],
    ["3273015208920003", "Dewi Lestari", "3273012006180006", "Istri", "32.73.01.1001", "3273021001", "Pekerjaan", "01/08/2025", "003/005", "3273011505900005", "Agus Salim", "28/07/2025"],
    ["3273011010600026", "Karta", "3273010707130027", "Kepala keluarga", "32.73.01.1001", "32.73.01.1002", "Keluarga", "01/08/2025", "4/2", "3273011010850028", "Asep", "28/07/2025"],
]
# fmt: on


def write_pindah_csv(path: Path) -> Path:
    header = [
        "NIK",
        "Nama Lengkap",
        "No. KK",
        "SHDK",
        "Kode Desa Asal",
        "Kode Desa Tujuan",
        "Alasan Pindah",
        "Tgl Pindah",
        "RT/RW Asal",
        "NIK Pelapor",
        "Nama Pelapor",
        "Tgl Lapor",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="cp1252", newline="") as handle:
        writer = csv.writer(handle, delimiter=",")
        writer.writerow(header)
        writer.writerows(PINDAH_ROWS)
    return path


def run_demo(directory: Path) -> None:
    """Write the sample files, validate one with a report, ingest all twice, then verify,
    approve and deliver them through both sandboxes; print what happened."""
    from hub.demo_delivery import ROUTES, deliver, sandboxes

    with sandboxes() as (dukcapil_url, siak_url):
        settings = dataclasses.replace(Settings.from_env(), routes_path=ROUTES)
        hub = Hub.open(settings)
        try:
            console = _ingest(hub, directory)
            deliver(hub, console, dukcapil_url, siak_url)
        finally:
            hub.close()


def _ingest(hub: Hub, directory: Path) -> Console:
    """Parts 1 and 2: a dry-run validation with the operator's report, and two ingests."""
    from hub.pipeline import file_sha256, run_batch, source_for
    from hub.report import write_report

    console = Console(width=max(110, Console().width))
    files = {
        "kelahiran": write_kelahiran_xlsx(directory / "kelahiran_juli_2025.xlsx"),
        "kematian": write_kematian_csv(directory / "kematian_juli_2025.csv"),
        "pindah": write_pindah_csv(directory / "pindah_agustus_2025.csv"),
    }
    console.print(
        f"[bold]LAMPID Hub demo[/] - store {hub.settings.database_url}, kelurahan {KELURAHAN}"
    )
    if hub.key_generated:
        console.print(f"  new data key written to {hub.settings.data_key_file}")
    report_path = directory / "kelahiran_juli_2025.laporan.xlsx"
    checked = run_batch(
        hub, source_for(files["kelahiran"]), "kelahiran", scope=KELURAHAN, dry_run=True
    )
    source = source_for(files["kelahiran"])
    write_report(
        report_path,
        checked.issues,
        source_rows=source.read(),
        summary={k: v for k, v in checked.as_dict().items() if k != "issues"},
        merged=source.merged_ranges(),
    )
    counts = checked.counts
    console.print(
        f"\n[bold]1. hub validate[/] {files['kelahiran'].name}: "
        f"{counts.invalid} of {counts.rows} rows need fixing"
    )
    for issue in checked.issues[:12]:
        colour = "red" if issue.severity == "error" else "yellow"
        where = escape(f"baris {issue.row} {issue.column or ''}")
        console.print(
            f"   [{colour}]{where}[/] {escape(f'[{issue.code}]')} {escape(issue.message)}"
        )
    console.print(f"   annotated workbook for the operator: {report_path}")

    table = Table(title="\n2. hub ingest (twice: the second run changes nothing)")
    for column in ("run", "file", "type", "rows", "valid", "invalid", "duplicates", "warnings"):
        table.add_column(column)
    for run in (1, 2):
        for record_type, path in files.items():
            result = run_batch(
                hub,
                source_for(path),
                record_type,
                scope=KELURAHAN,
                file_name=path.name,
                sha256=file_sha256(path),
                actor="demo",
            )
            c = result.counts
            table.add_row(
                str(run),
                path.name,
                record_type,
                *(str(n) for n in (c.rows, c.valid, c.invalid, c.duplicates, c.warnings)),
            )
    console.print(table)
    return console

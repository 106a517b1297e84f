"""Build messy input files inside tests (no binary fixtures are committed)."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msoffcrypto.format.ooxml import OOXMLFile
from openpyxl import Workbook

TITLE = ["LAPORAN KELAHIRAN BULAN JULI 2025"]


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    delimiter: str = ";",
    encoding: str = "utf-8-sig",
    title: Sequence[Sequence[str]] = (TITLE, ["KELURAHAN : SUKARASA"]),
) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        for line in title:
            writer.writerow(line)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


def write_xlsx(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: Sequence[Sequence[str]] = (TITLE,),
    sheet: str = "Juli",
) -> Path:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    for line in title:
        ws.append(list(line))
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


def write_table(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], **kwargs: Any
) -> Path:
    if path.suffix == ".xlsx":
        return write_xlsx(path, header, rows, **kwargs)
    return write_csv(path, header, rows, **kwargs)


KELAHIRAN_HEADER = [
    "No",
    "Nama Anak",
    "JK",
    "Tempat Lahir",
    "Tgl Lahir",
    "Jam Lahir",
    "Anak Ke",
    "Penolong",
    "BB",
    "PB",
    "NIK Ibu",
    "Nama Ibu",
    "NIK Ayah",
    "Nama Ayah",
    "No. KK",
    "Kode Desa",
    "RT/RW",
    "NIK Pelapor",
    "Nama Pelapor",
    "Tgl Lapor",
]


def kelahiran_row(serial: int, **changes: Any) -> list[Any]:
    """A valid birth row; `serial` makes the mother's NIK (and so the natural key) unique."""
    values: dict[str, Any] = {
        "No": serial,
        "Nama Anak": "Aisyah Putri",
        "JK": "P",
        "Tempat Lahir": "Bandung",
        "Tgl Lahir": "02/07/2025",
        "Jam Lahir": "08:30",
        "Anak Ke": "1",
        "Penolong": "Bidan",
        "BB": "3,2 kg",
        "PB": "49",
        "NIK Ibu": "",
        "Nama Ibu": "Siti Aminah",
        "NIK Ayah": "3273010101880002",
        "Nama Ayah": "Budi Santoso",
        "No. KK": "3273011203150004",
        "Kode Desa": "32.73.01.1001",
        "RT/RW": "003/005",
        "NIK Pelapor": "3273010101880002",
        "Nama Pelapor": "Budi Santoso",
        "Tgl Lapor": "05/07/2025",
    }
    values["NIK Ibu"] = f"327301450790{serial:04d}"
    values.update(changes)
    return [values[h] for h in KELAHIRAN_HEADER]


KEMATIAN_HEADER = [
    "NIK Almarhum",
    "Nama",
    "No KK",
    "L/P",
    "Tgl Lahir",
    "Tgl Meninggal",
    "Sebab Kematian",
    "Kode Desa",
    "NIK Pelapor",
    "Nama Pelapor",
    "Tanggal Lapor",
]


def kematian_row(nik: str, **changes: Any) -> list[Any]:
    values: dict[str, Any] = {
        "NIK Almarhum": nik,
        "Nama": "H. Ahmad Sobari",
        "No KK": "3273010505100022",
        "L/P": "L",
        "Tgl Lahir": f"{nik[6:8]}/{nik[8:10]}/19{nik[10:12]}",
        "Tgl Meninggal": "14 Juli 2025",
        "Sebab Kematian": "Sakit biasa/tua",
        "Kode Desa": "32.73.01.1001",
        "NIK Pelapor": "3273010101800023",
        "Nama Pelapor": "Ujang",
        "Tanggal Lapor": "15/07/2025",
    }
    values.update(changes)
    return [values[h] for h in KEMATIAN_HEADER]


PINDAH_HEADER = [
    "NIK",
    "Nama Lengkap",
    "No. KK",
    "SHDK",
    "Kode Desa Asal",
    "Kode Desa Tujuan",
    "Alasan Pindah",
    "Klasifikasi Pindah",
    "Tgl Pindah",
    "NIK Pelapor",
    "Nama Pelapor",
    "Tgl Lapor",
]


def pindah_row(nik: str, **changes: Any) -> list[Any]:
    values: dict[str, Any] = {
        "NIK": nik,
        "Nama Lengkap": "Agus Salim",
        "No. KK": "3273012006180006",
        "SHDK": "Kepala keluarga",
        "Kode Desa Asal": "32.73.01.1001",
        "Kode Desa Tujuan": "32.73.02.1001",
        "Alasan Pindah": "Pekerjaan",
        "Klasifikasi Pindah": "",
        "Tgl Pindah": "01/08/2025",
        "NIK Pelapor": nik,
        "Nama Pelapor": "Agus Salim",
        "Tgl Lapor": "28/07/2025",
    }
    values.update(changes)
    return [values[h] for h in PINDAH_HEADER]


def zip_bomb(path: Path) -> Path:
    """An `.xlsx`-looking archive whose one sheet inflates to 300 MB of zeros."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(block)
    return path


def encrypted_workbook(directory: Path) -> Path:
    """A real password-protected workbook (msoffcrypto), as Excel writes one."""
    plain = write_xlsx(directory / "plain.xlsx", KELAHIRAN_HEADER, [kelahiran_row(1)])
    locked = directory / "locked.xlsx"
    with plain.open("rb") as source, locked.open("wb") as target:
        OOXMLFile(source).encrypt("rahasia", target)
    return locked

"""The benchmark file generator: deterministic, the stated defect rate, valid rows really valid."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from bench import generate
from bench.generate import FIELDS, HEADER, generate_kelahiran, write_csv, write_xlsx

COL = {f: i for i, f in enumerate(FIELDS)}  # column index by canonical name
BULAN = {m.lower(): i + 1 for i, m in enumerate(generate.BULAN)}
BULAN.update({m.lower(): i + 1 for i, m in enumerate(generate.BULAN_PENDEK)})
PROVINSI = {11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53}
PROVINSI |= {61, 62, 63, 64, 65, 71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96}
TODAY = dt.date(2026, 1, 1)  # every valid generated date is in 2025
JK = {"l", "p", "lk", "pr", "laki-laki", "perempuan", "1", "2"}


@pytest.fixture(scope="module")
def gen_kwargs() -> dict[str, Any]:
    """Codes from the master list when it is there, else the documented fallback argument."""
    if generate.default_wilayah_path().is_file():
        return {}
    return {"kelurahan": ["32.73.01.1001", "32.73.02.1004", "32.73.05.1003"]}


def known_kelurahan(kwargs: dict[str, Any]) -> set[str]:
    w = generate.resolve_wilayah(kwargs.get("kelurahan"))
    return {k for k, _ in w.kelurahan}


def parse_date(s: str) -> dt.date | None:
    m = re.fullmatch(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4})", s) or re.fullmatch(
        r"(\d{1,2}) ([A-Za-z]+) (\d{4})", s
    )
    if not m:
        return None
    month = int(m[2]) if m[2].isdigit() else BULAN.get(m[2].lower(), 0)
    try:
        return dt.date(int(m[3]), month, int(m[1]))
    except ValueError:
        return None


def nik_ok(s: str) -> bool:
    """Structure per DOMAIN.md: 16 digits, known province, calendar DDMM (women +40), SSSS>0."""
    if not re.fullmatch(r"\d{16}", s) or int(s[:2]) not in PROVINSI or s[12:] == "0000":
        return False
    day, month, yy = int(s[6:8]), int(s[8:10]), int(s[10:12])
    day = day - 40 if day > 40 else day
    try:
        dt.date(2000 if yy % 4 == 0 else 2001, month, day)  # 29/02 only in leap years
    except ValueError:
        return False
    return True


def row_errors(row: list[str], kelurahan: set[str], seen: set[tuple[str, ...]]) -> list[str]:
    """A small independent checker of the kelahiran rules the defects are meant to break."""
    errs = [f for f in generate.REQUIRED if row[COL[f]] in ("", "-")]
    for f in ("nik_ibu", "nik_pelapor", "nik_ayah", "no_kk"):
        if row[COL[f]] not in ("", "-") and not nik_ok(row[COL[f]]):
            errs.append(f)
    lahir, lapor = parse_date(row[COL["tanggal_lahir"]]), parse_date(row[COL["tanggal_lapor"]])
    if row[COL["tanggal_lahir"]] not in ("", "-") and (lahir is None or lahir > TODAY):
        errs.append("tanggal_lahir")
    if row[COL["tanggal_lapor"]] not in ("", "-") and (lapor is None or lapor > TODAY):
        errs.append("tanggal_lapor")
    if lahir and lapor and lapor < lahir:
        errs.append("date_order")
    if row[COL["jenis_kelamin"]] and row[COL["jenis_kelamin"]].lower() not in JK | {"-"}:
        errs.append("jenis_kelamin")
    ke = row[COL["kelahiran_ke"]]
    if ke not in ("", "-") and not 1 <= int(ke) <= 20:
        errs.append("kelahiran_ke")
    bb = row[COL["berat_bayi"]]
    grams = float(bb[:-3].replace(",", ".")) * 1000 if bb.endswith(" kg") else float(bb)
    if not 300 <= grams <= 7000:
        errs.append("berat_bayi")
    kode = row[COL["kode_wilayah"]]
    if kode not in ("", "-"):
        dotted = kode if "." in kode else f"{kode[:2]}.{kode[2:4]}.{kode[4:6]}.{kode[6:]}"
        if dotted not in kelurahan:
            errs.append("kode_wilayah")
    key = (row[COL["nik_ibu"]], str(lahir), ke)
    if not errs:
        if key in seen:
            errs.append("duplicate_key")
        seen.add(key)
    return errs


def test_deterministic_for_a_seed(gen_kwargs: dict[str, Any]) -> None:
    a = list(generate_kelahiran(300, seed=7, **gen_kwargs))
    b = list(generate_kelahiran(300, seed=7, **gen_kwargs))
    c = list(generate_kelahiran(300, seed=8, **gen_kwargs))
    assert a == b
    assert a != c
    assert all(len(r) == len(HEADER) for r in a)
    assert [r[0] for r in a] == [str(i) for i in range(1, 301)]


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25])
def test_defect_rate_and_every_defect_is_detectable(
    gen_kwargs: dict[str, Any], rate: float
) -> None:
    n = 2000
    log: dict[int, str] = {}
    rows = list(generate_kelahiran(n, defect_rate=rate, seed=3, defects=log, **gen_kwargs))
    assert len(rows) == n
    assert len(log) == round(rate * n)  # exactly, not just on average
    if rate:
        assert set(log.values()) == set(generate.DEFECT_KINDS)  # every kind drawn
    kel, seen = known_kelurahan(gen_kwargs), set[tuple[str, ...]]()
    flagged = {int(r[0]) for r in rows if row_errors(r, kel, seen)}
    # the independent checker finds exactly the injected defects, no more, no fewer
    assert flagged == set(log)


def test_valid_rows_are_realistic(gen_kwargs: dict[str, Any]) -> None:
    log: dict[int, str] = {}
    rows = list(generate_kelahiran(1500, seed=11, defects=log, **gen_kwargs))
    valid = [r for r in rows if int(r[0]) not in log]
    kel = known_kelurahan(gen_kwargs)
    for r in valid:
        nik = r[COL["nik_ibu"]]
        assert re.fullmatch(r"\d{16}", nik)
        assert nik[:4] == "3273"
        assert 41 <= int(nik[6:8]) <= 71  # a woman's NIK
        assert 1 <= int(nik[8:10]) <= 12
        assert nik[12:] != "0000"
        lahir = parse_date(r[COL["tanggal_lahir"]])
        assert lahir is not None
        assert lahir.year == 2025
        mother_born = 1900 + int(nik[10:12]) if int(nik[10:12]) > 30 else 2000 + int(nik[10:12])
        assert 17 <= lahir.year - mother_born <= 43
        ayah = r[COL["nik_ayah"]]
        assert ayah == "" or 1 <= int(ayah[6:8]) <= 31  # a man's NIK
        assert re.fullmatch(r"\d{16}", r[COL["no_kk"]])
        assert 1 <= int(r[COL["kelahiran_ke"]]) <= 5
        assert re.fullmatch(r"\d{1,3}/\d{1,3}", r[COL["rt_rw"]])
        kode = r[COL["kode_wilayah"]]
        assert kode in kel or f"{kode[:2]}.{kode[2:4]}.{kode[4:6]}.{kode[6:]}" in kel
    assert any(r[COL["berat_bayi"]].endswith(" kg") for r in valid)
    assert any(r[COL["berat_bayi"]].isdigit() for r in valid)
    keys = [(r[COL["nik_ibu"]], r[COL["tanggal_lahir"]], r[COL["kelahiran_ke"]]) for r in valid]
    assert len(set(keys)) == len(keys)


def test_codes_come_from_the_master_list(wilayah_csv: Path) -> None:
    w = generate.load_wilayah(str(wilayah_csv))
    assert w.kelurahan
    assert all(k[:8] in generate.DEFAULT_KECAMATAN for k, _ in w.kelurahan)
    assert "32.73.01.1001" in dict(w.kelurahan)


def test_csv_file(tmp_path: Path, gen_kwargs: dict[str, Any]) -> None:
    path = tmp_path / "lahir.csv"
    g = write_csv(path, 200, seed=1, **gen_kwargs)
    assert g.rows == 200
    assert sum(g.defects.values()) == 20
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    with path.open(encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f, delimiter=";"))
    assert lines[0][0] == generate.TITLE
    assert lines[1][0].startswith("KELURAHAN : ")
    assert lines[2] == list(HEADER)
    data = lines[3:]
    assert len(data) == 200
    assert all(len(r) == len(HEADER) for r in data)
    assert data == list(generate_kelahiran(200, seed=1, **gen_kwargs))


def test_xlsx_file(tmp_path: Path, gen_kwargs: dict[str, Any]) -> None:
    from openpyxl import load_workbook

    path = tmp_path / "lahir.xlsx"
    g = write_xlsx(path, 200, seed=1, **gen_kwargs)
    assert g.rows == 200
    wb = load_workbook(path, read_only=True)
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    assert rows[0][0] == generate.TITLE
    assert str(rows[1][0]).startswith("KELURAHAN : ")
    assert list(rows[2]) == list(HEADER)
    data = rows[3:]
    assert len(data) == 200
    lahir = [r[COL["tanggal_lahir"]] for r in data]
    real_dates = sum(isinstance(v, dt.datetime | dt.date) for v in lahir)
    assert real_dates > 150  # most are Excel dates ...
    assert any(isinstance(v, str) and re.search(r"[A-Za-z]", v) for v in lahir)  # ... some text
    assert all(isinstance(r[COL["nik_ibu"]], str) for r in data)  # NIK as text cells
    assert isinstance(data[0][COL["no"]], int)

"""Synthetic kelahiran (birth) report files, shaped like the ones kelurahan offices upload.

``generate_kelahiran`` yields data rows as lists of strings (CSV cell texts, in the column order of
``HEADER``); ``write_csv`` and ``write_xlsx`` wrap them in a realistic report file: a title row
("LAPORAN KELAHIRAN BULAN JULI 2025"), a "KELURAHAN : ..." line, then a header of alias texts
("Nama Anak", "JK", "Tgl Lahir", ...), then the rows.

Values follow ``docs/DOMAIN.md`` (shared copy ``/work/shared/docs/DOMAIN.md``) and are valid except
for exactly ``round(defect_rate * n)`` rows, each of which carries ONE injected defect (see
``DEFECT_KINDS``). Region codes are read at generation time from the Kemendagri master list
(``wilayah.csv``; path from the ``wilayah_csv`` argument, else ``$LAMPID_WILAYAH_CSV``, else
``../shared/data/wilayah/wilayah.csv`` next to the project), or given directly with ``kelurahan``.
Everything is deterministic for a given seed.

Command line: ``python -m bench.generate OUT.csv|OUT.xlsx --rows N [--seed S] [--defect-rate R]``.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import datetime as dt
import functools
import os
import random
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TITLE = "LAPORAN KELAHIRAN BULAN JULI 2025"
# Kecamatan Sukasari, Coblong, Babakan Ciparay, Bojongloa Kaler, Andir (Kota Bandung).
DEFAULT_KECAMATAN: tuple[str, ...] = ("32.73.01", "32.73.02", "32.73.03", "32.73.04", "32.73.05")

# (canonical field, header text as seen in real files; the hub maps the aliases).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("no", "No"),
    ("nama_bayi", "Nama Anak"),
    ("jenis_kelamin", "JK"),
    ("tempat_kelahiran", "Tempat Lahir"),
    ("tempat_dilahirkan", "Tempat Dilahirkan"),
    ("tanggal_lahir", "Tgl Lahir"),
    ("jam_lahir", "Jam Lahir"),
    ("kelahiran_ke", "Anak Ke"),
    ("jenis_kelahiran", "Jenis Kelahiran"),
    ("penolong_kelahiran", "Penolong"),
    ("berat_bayi", "BB"),
    ("panjang_bayi", "PB"),
    ("nik_ibu", "NIK Ibu"),
    ("nama_ibu", "Nama Ibu"),
    ("nik_ayah", "NIK Ayah"),
    ("nama_ayah", "Nama Ayah"),
    ("no_kk", "No. KK"),
    ("kode_wilayah", "Kode Desa"),
    ("alamat", "Alamat"),
    ("rt_rw", "RT/RW"),
    ("nik_pelapor", "NIK Pelapor"),
    ("nama_pelapor", "Nama Pelapor"),
    ("tanggal_lapor", "Tgl Lapor"),
)
FIELDS: tuple[str, ...] = tuple(f for f, _ in COLUMNS)
HEADER: tuple[str, ...] = tuple(h for _, h in COLUMNS)
IDX: dict[str, int] = {f: i for i, f in enumerate(FIELDS)}
#: 1-based row numbers in the written files: title, kelurahan line, header, first data row.
HEADER_ROW = 3
FIRST_DATA_ROW = 4

REQUIRED: tuple[str, ...] = (
    "nama_bayi",
    "jenis_kelamin",
    "tempat_kelahiran",
    "tanggal_lahir",
    "kelahiran_ke",
    "nik_ibu",
    "nama_ibu",
    "no_kk",
    "kode_wilayah",
    "nik_pelapor",
    "nama_pelapor",
    "tanggal_lapor",
)

DEFECT_KINDS: tuple[str, ...] = (
    "missing_required",  # a required cell is empty or "-"
    "nik_15_digits",  # nik_ibu or nik_pelapor lost its last digit
    "nik_scientific",  # nik_ibu or nik_pelapor as Excel showed it: "3.27302E+15"
    "invalid_date",  # tanggal_lahir "31/02/2025" and friends
    "future_date",  # tanggal_lahir typed with year 2031 (also makes tanggal_lapor < tanggal_lahir)
    "lapor_before_lahir",  # tanggal_lapor 1-20 days before tanggal_lahir
    "unknown_jenis_kelamin",  # "X"
    "kelahiran_ke_out_of_range",  # "25"
    "berat_out_of_range",  # "80 kg"
    "unknown_kode_wilayah",  # "32.73.99.9999"
    "duplicate_key",  # nik_ibu + tanggal_lahir + kelahiran_ke of an earlier valid row
)

BULAN = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)
BULAN_PENDEK = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")

NAMA_LAKI = (
    "Muhammad", "Ahmad", "Rizky", "Dimas", "Fajar", "Aditya", "Raka", "Bayu", "Galih", "Asep",
    "Dadan", "Ujang", "Cecep", "Yusuf", "Ilham", "Farhan", "Arya", "Daffa", "Rafi", "Naufal",
    "Hafiz", "Alif", "Rendi", "Agus", "Budi", "Dedi", "Eko", "Hendra", "Iwan", "Rudi", "Teguh",
    "Wahyu", "Yudi", "Andri", "Deden", "Ridwan", "Ikhsan", "Gilang", "Reza", "Zidan",
)  # fmt: skip
NAMA_PEREMPUAN = (
    "Siti", "Nur", "Aisyah", "Putri", "Dewi", "Rina", "Sri", "Ayu", "Intan", "Nabila", "Zahra",
    "Salsabila", "Alya", "Keisha", "Aulia", "Fitri", "Neng", "Euis", "Rika", "Lina", "Yanti",
    "Wulan", "Rini", "Tuti", "Ratna", "Desi", "Nining", "Imas", "Cucu", "Dian", "Mega", "Anisa",
    "Syifa", "Kirana", "Naura", "Azzahra", "Nur'aini", "Khairunnisa",
)  # fmt: skip
BELAKANG_LAKI = (
    "Pratama", "Saputra", "Hidayat", "Ramadhan", "Nugraha", "Permana", "Kurniawan", "Setiawan",
    "Firmansyah", "Maulana", "Gunawan", "Wijaya", "Hakim", "Akbar", "Fauzi", "Sudrajat",
    "Suherman", "Hermawan", "Supriatna", "Rahmat", "Al Fatih", "Abdillah",
)  # fmt: skip
BELAKANG_PEREMPUAN = (
    "Sari", "Lestari", "Rahayu", "Handayani", "Wulandari", "Anggraini", "Puspita", "Fauziah",
    "Nurhasanah", "Rohmah", "Suryani", "Sopiah", "Kartika", "Amelia", "Permata", "Maharani",
    "Oktaviani", "Safitri", "Marlina", "Komalasari", "Az-Zahra",
)  # fmt: skip
JALAN = (
    "Jl. Setiabudi", "Jl. Gegerkalong Hilir", "Jl. Sarijadi", "Jl. Ir. H. Juanda", "Jl. Cipaganti",
    "Jl. Sekeloa", "Jl. Kopo", "Jl. Jamika", "Jl. Ciroyom", "Jl. Garuda", "Jl. Babakan Ciparay",
    "Jl. Sukahaji", "Jl. Margahayu Raya", "Jl. Tamansari", "Jl. Dipatiukur", "Jl. Cihampelas",
    "Jl. Pasirkaliki", "Jl. Holis", "Jl. Sudirman", "Jl. Terusan Pasirkoja", "Jl. Sadang Serang",
    "Jl. Isola", "Jl. Lebak Gede", "Jl. Cirangrang", "Jl. Maleber Utara", "Jl. Dungus Cariang",
)  # fmt: skip
GANG = ("Gg. Mawar", "Gg. Melati", "Gg. Sukamaju", "Gg. H. Umar", "Gg. Babakan", "Gg. Masjid")
TEMPAT_LAHIR = ("Bandung",) * 14 + ("Kota Bandung", "BANDUNG", "Cimahi", "Kab. Bandung", "Garut")
TEMPAT_DILAHIRKAN = ("RS/RB", "Puskesmas", "Rumah", "1", "2", "RS/RB", "Puskesmas", "Polindes")
PENOLONG = ("Bidan", "Bidan", "Bidan", "Dokter", "Dokter", "2", "1", "Bidan", "Dokter", "Dukun")
JK_FORMS = (("L", "P"),) * 7 + (("Lk", "Pr"), ("Laki-laki", "Perempuan"), ("1", "2"))
KELAHIRAN_KE = (1,) * 35 + (2,) * 30 + (3,) * 20 + (4,) * 10 + (5,) * 5
TANGGAL_INVALID = (
    "31/02/2025",
    "30/02/2025",
    "29/02/2025",
    "31/04/2025",
    "31/06/2025",
    "31/11/2025",
)

_D = dt.date
LAHIR_FROM = _D(2025, 1, 1).toordinal()
LAHIR_TO = _D(2025, 7, 31).toordinal()
KK_FROM = _D(2008, 1, 1).toordinal()
_YEAR = 365


@dataclass(frozen=True)
class Wilayah:
    """Region codes used by the generator (dotted Kemendagri codes)."""

    kelurahan: tuple[tuple[str, str], ...]  # (kode desa/kelurahan, nama)
    kecamatan: tuple[str, ...]  # all kecamatan codes of the city: NIK/KK prefixes
    label: str  # the "KELURAHAN : ..." line


def default_wilayah_path() -> Path:
    env = os.environ.get("LAMPID_WILAYAH_CSV")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "wilayah" / "wilayah.csv"


@functools.lru_cache(maxsize=8)
def load_wilayah(
    path: str | None = None, kecamatan: tuple[str, ...] = DEFAULT_KECAMATAN
) -> Wilayah:
    """Kelurahan/desa of the given kecamatan and all kecamatan of their city, from wilayah.csv."""
    src = Path(path) if path else default_wilayah_path()
    wanted = set(kecamatan)
    cities = {k.rsplit(".", 1)[0] for k in kecamatan}
    kel: list[tuple[str, str]] = []
    kec_all: list[str] = []
    names: dict[str, str] = {}
    with src.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader([f.readline()]))
        # Only lines of the wanted cities are parsed: the list has 90,000 lines.
        lines = [line for line in f if line.startswith(tuple(cities))]
        for row in csv.DictReader(lines, fieldnames=header):
            kode, level, induk = row["kode"], row["level"], row["induk"]
            if level == "desa" and induk in wanted:
                kel.append((kode, row["nama"]))
            elif level == "kecamatan" and induk in cities:
                kec_all.append(kode)
                names[kode] = row["nama"]
            elif level == "kabkota" and kode in cities:
                names[kode] = row["nama"]
    if not kel:
        raise ValueError(f"no desa/kelurahan under {sorted(wanted)} in {src}")
    kec_names = ", ".join(names.get(k, k).upper() for k in kecamatan)
    city_names = ", ".join(names.get(c, c).upper() for c in sorted(cities))
    label = f"KELURAHAN : {len(kel)} KELURAHAN DI KEC. {kec_names} - {city_names}"
    return Wilayah(tuple(sorted(kel)), tuple(sorted(kec_all)), label)


def resolve_wilayah(
    kelurahan: Sequence[str] | None = None, wilayah_csv: str | Path | None = None
) -> Wilayah:
    """Codes from ``kelurahan`` if given (the fallback), else read from the master list."""
    if kelurahan:
        codes = tuple(sorted(kelurahan))
        kec = tuple(sorted({k.rsplit(".", 1)[0] for k in codes}))
        label = "KELURAHAN : " + (codes[0] if len(codes) == 1 else f"{len(codes)} KELURAHAN")
        return Wilayah(tuple((k, k) for k in codes), kec, label)
    return load_wilayah(str(Path(wilayah_csv or default_wilayah_path()).resolve()))


@dataclass(frozen=True)
class _Dates:
    """Per-ordinal precomputed strings (index = ordinal - base)."""

    base: int
    ddmmyy: list[str]  # NIK/KK date part, men and registrations
    ddmmyy_p: list[str]  # NIK date part, women (day + 40)
    slash: list[str]  # 17/08/2025
    dash: list[str]  # 17-08-2025
    long: list[str]  # 17 Agustus 2025
    short: list[str]  # 17 Agu 2025


@functools.lru_cache(maxsize=1)
def _dates() -> _Dates:
    first, last = 1950, 2031
    out = _Dates(_D(first, 1, 1).toordinal(), [], [], [], [], [], [])
    two = [f"{i:02d}" for i in range(100)]
    for y in range(first, last + 1):
        yy, ys = two[y % 100], str(y)
        for m in range(1, 13):
            mm, bulan, pendek = two[m], BULAN[m - 1], BULAN_PENDEK[m - 1]
            for d in range(1, calendar.monthrange(y, m)[1] + 1):
                dd = two[d]
                out.ddmmyy.append(dd + mm + yy)
                out.ddmmyy_p.append(two[d + 40] + mm + yy)
                out.slash.append(f"{dd}/{mm}/{ys}")
                out.dash.append(f"{dd}-{mm}-{ys}")
                out.long.append(f"{d} {bulan} {ys}")
                out.short.append(f"{dd} {pendek} {ys}")
    assert len(out.slash) == _D(last, 12, 31).toordinal() - out.base + 1
    return out


def generate_kelahiran(
    n: int,
    *,
    defect_rate: float = 0.10,
    seed: int = 0,
    kelurahan: Sequence[str] | None = None,
    wilayah_csv: str | Path | None = None,
    defects: dict[int, str] | None = None,
) -> Iterator[list[str]]:
    """Yield ``n`` kelahiran data rows (cell texts in ``HEADER`` order).

    Exactly ``round(defect_rate * n)`` rows carry one defect each; when ``defects`` is given it is
    filled with ``{row number ("No" column, 1-based): defect kind}``.
    """
    if n < 0 or not 0.0 <= defect_rate <= 1.0:
        raise ValueError("n must be >= 0 and defect_rate in [0, 1]")
    w = resolve_wilayah(kelurahan, wilayah_csv)
    return _rows(n, defect_rate, seed, w, defects)


def _rows(
    n: int, defect_rate: float, seed: int, w: Wilayah, defects: dict[int, str] | None
) -> Iterator[list[str]]:
    rng = random.Random(seed)
    rnd = rng.random

    def choice(seq: Sequence[Any]) -> Any:  # rng.choice, three times faster
        return seq[int(rnd() * len(seq))]

    D = _dates()
    base = D.base
    ddmmyy, ddmmyy_p = D.ddmmyy, D.ddmmyy_p
    slash, dash, long_, short = D.slash, D.dash, D.long, D.short

    kel_codes = [k for k, _ in w.kelurahan]
    kel_kec6 = [k[:8].replace(".", "") for k in kel_codes]
    kel_plain = [k.replace(".", "") for k in kel_codes]
    city_kec6 = [k.replace(".", "") for k in w.kecamatan] or kel_kec6
    n_kel = len(kel_codes)

    n_defects = round(defect_rate * n)
    defect_at = set(rng.sample(range(n), n_defects))
    seen_mothers: set[str] = set()
    recent: deque[list[str]] = deque(maxlen=256)
    twin: list[str] | None = None
    twin_lahir = 0

    i_lahir, i_lapor = IDX["tanggal_lahir"], IDX["tanggal_lapor"]
    i_nik_ibu, i_nik_pel = IDX["nik_ibu"], IDX["nik_pelapor"]
    req_idx = [IDX[f] for f in REQUIRED]

    def date_text(o: int) -> str:
        r = rnd()
        if r < 0.85:
            return slash[o - base]
        if r < 0.90:
            return dash[o - base]
        if r < 0.97:
            return long_[o - base]
        return short[o - base]

    def serial() -> str:
        return f"{int(rnd() * 9999) + 1:04d}"

    def name(first: Sequence[str], last: Sequence[str], upper: bool) -> str:
        r = rnd()
        a, b = choice(first), choice(last)
        if r < 0.25:
            s = f"{a} {b}"
        elif r < 0.85:
            a2 = choice(first)
            s = f"{a} {b}" if a2 == a else f"{a} {a2} {b}"
        else:
            b2 = choice(last)
            s = f"{a} {b}" if b2 == b else f"{a} {b} {b2}"
        return s.upper() if upper else s

    for i in range(n):
        no = str(i + 1)
        is_defect = i in defect_at
        kind = choice(DEFECT_KINDS) if is_defect else ""
        if kind == "duplicate_key":
            if recent:
                row = list(choice(recent))
                row[0] = no
                if defects is not None:
                    defects[i + 1] = kind
                yield row
                continue
            kind = "missing_required"  # nothing to duplicate yet
        upper = rnd() < 0.3
        male = rnd() < 0.51
        jk = choice(JK_FORMS)[0 if male else 1]
        baby = (
            name(NAMA_LAKI, BELAKANG_LAKI, upper)
            if male
            else name(NAMA_PEREMPUAN, BELAKANG_PEREMPUAN, upper)
        )
        jam = "" if rnd() < 0.05 else f"{int(rnd() * 24):02d}:{int(rnd() * 60):02d}"
        bb_g = int(rng.triangular(2300, 4300, 3200))
        bb = f"{bb_g / 1000:.1f}".replace(".", ",") + " kg" if rnd() < 0.2 else str(bb_g)
        pb = "" if rnd() < 0.05 else str(int(rng.triangular(44, 54, 49)))

        if twin is not None:  # second baby of twins: same mother, date and report
            row = list(twin)
            row[0] = no
            row[1], row[2], row[6], row[10], row[11] = baby, jk, jam, bb, pb
            row[7] = str(int(twin[7]) + 1)
            lahir = twin_lahir
            twin = None
        else:
            k = int(rnd() * n_kel)
            kec6 = kel_kec6[k]
            kode = kel_codes[k] if rnd() < 0.95 else kel_plain[k]
            lahir = LAHIR_FROM + int(rnd() * (LAHIR_TO - LAHIR_FROM + 1))
            lapor = lahir + int(rnd() * 46)
            ke = choice(KELAHIRAN_KE)
            make_twin = not is_defect and i + 1 < n and ke <= 4 and rnd() < 0.01
            # mother: 18-42 years old, NIK first issued in this or another kecamatan of the city
            m_ord = lahir - 18 * _YEAR - int(rnd() * 24 * _YEAR)
            m_kec = kec6 if rnd() < 0.6 else choice(city_kec6)
            nik_ibu = m_kec + ddmmyy_p[m_ord - base] + serial()
            while nik_ibu in seen_mothers:
                nik_ibu = m_kec + ddmmyy_p[m_ord - base] + serial()
            seen_mothers.add(nik_ibu)
            nama_ibu = name(NAMA_PEREMPUAN, BELAKANG_PEREMPUAN, upper)
            if rnd() < 0.92:
                f_ord = lahir - 20 * _YEAR - int(rnd() * 30 * _YEAR)
                f_kec = kec6 if rnd() < 0.6 else choice(city_kec6)
                nik_ayah = f_kec + ddmmyy[f_ord - base] + serial()
                nama_ayah = name(NAMA_LAKI, BELAKANG_LAKI, upper)
            else:
                nik_ayah = nama_ayah = ""
            kk_ord = KK_FROM + int(rnd() * (lahir - 30 - KK_FROM))
            no_kk = kec6 + ddmmyy[kk_ord - base] + serial()
            r = rnd()
            if r < 0.75 and nik_ayah:
                nik_pel, nama_pel = nik_ayah, nama_ayah
            elif r < 0.9:
                nik_pel, nama_pel = nik_ibu, nama_ibu
            else:  # a relative or neighbour, 20-70 years old
                p_ord = lahir - 20 * _YEAR - int(rnd() * 50 * _YEAR)
                p_male = rnd() < 0.5
                dd = ddmmyy[p_ord - base] if p_male else ddmmyy_p[p_ord - base]
                nik_pel = choice(city_kec6) + dd + serial()
                nama_pel = (
                    name(NAMA_LAKI, BELAKANG_LAKI, upper)
                    if p_male
                    else name(NAMA_PEREMPUAN, BELAKANG_PEREMPUAN, upper)
                )
            jalan = choice(JALAN)
            r = rnd()
            if r < 0.6:
                alamat = f"{jalan} No. {int(rnd() * 250) + 1}"
            elif r < 0.9:
                alamat = f"{jalan} {choice(GANG)} No. {int(rnd() * 60) + 1}"
            else:
                alamat = f"{jalan} No. {int(rnd() * 250) + 1}, Blok {choice('ABCDE')}"
            rt, rw = int(rnd() * 15) + 1, int(rnd() * 20) + 1
            rt_rw = f"{rt:03d}/{rw:03d}" if rnd() < 0.9 else f"{rt}/{rw}"
            if make_twin:
                jenis = "Kembar 2" if rnd() < 0.7 else "2"
            else:
                jenis = "Tunggal" if rnd() < 0.7 else "1"
            row = [
                no,
                baby,
                jk,
                choice(TEMPAT_LAHIR),
                choice(TEMPAT_DILAHIRKAN),
                date_text(lahir),
                jam,
                str(ke),
                jenis,
                choice(PENOLONG),
                bb,
                pb,
                nik_ibu,
                nama_ibu,
                nik_ayah,
                nama_ayah,
                no_kk,
                kode,
                alamat,
                rt_rw,
                nik_pel,
                nama_pel,
                date_text(lapor),
            ]
            if make_twin:  # twins start on a valid row, so this copy is clean
                twin, twin_lahir = row.copy(), lahir

        if kind:
            _inject(row, kind, rng, lahir, req_idx, i_nik_ibu, i_nik_pel, i_lahir, i_lapor)
            if defects is not None:
                defects[i + 1] = kind
        else:
            recent.append(row.copy())
        yield row


def _inject(
    row: list[str],
    kind: str,
    rng: random.Random,
    lahir: int,
    req_idx: list[int],
    i_nik_ibu: int,
    i_nik_pel: int,
    i_lahir: int,
    i_lapor: int,
) -> None:
    D = _dates()
    if kind == "missing_required":
        row[rng.choice(req_idx)] = "" if rng.random() < 0.8 else "-"
    elif kind == "nik_15_digits":
        j = i_nik_ibu if rng.random() < 0.7 else i_nik_pel
        row[j] = row[j][:15]
    elif kind == "nik_scientific":
        j = i_nik_ibu if rng.random() < 0.7 else i_nik_pel
        row[j] = f"{int(row[j]):.5E}"
    elif kind == "invalid_date":
        row[i_lahir] = rng.choice(TANGGAL_INVALID)
    elif kind == "future_date":
        d = _D.fromordinal(lahir)
        row[i_lahir] = D.slash[_D(2031, d.month, d.day).toordinal() - D.base]
    elif kind == "lapor_before_lahir":
        row[i_lapor] = D.slash[lahir - 1 - int(rng.random() * 20) - D.base]
    elif kind == "unknown_jenis_kelamin":
        row[IDX["jenis_kelamin"]] = "X"
    elif kind == "kelahiran_ke_out_of_range":
        row[IDX["kelahiran_ke"]] = "25"
    elif kind == "berat_out_of_range":
        row[IDX["berat_bayi"]] = "80 kg"
    elif kind == "unknown_kode_wilayah":
        row[IDX["kode_wilayah"]] = "32.73.99.9999"
    else:  # pragma: no cover - DEFECT_KINDS and this chain are kept in step
        raise ValueError(kind)


@dataclass
class GeneratedFile:
    path: Path
    rows: int
    seed: int
    defect_rate: float
    seconds: float
    bytes: int
    defects: dict[str, int] = field(default_factory=dict)  # kind -> count

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "rows": self.rows,
            "seed": self.seed,
            "defect_rate": self.defect_rate,
            "seconds": round(self.seconds, 3),
            "bytes": self.bytes,
            "defects": dict(sorted(self.defects.items())),
        }


def _preamble(w: Wilayah, title: str) -> list[list[str]]:
    pad = [""] * (len(HEADER) - 1)
    return [[title, *pad], [w.label, *pad], list(HEADER)]


def write_csv(
    path: str | Path,
    n: int,
    *,
    defect_rate: float = 0.10,
    seed: int = 0,
    kelurahan: Sequence[str] | None = None,
    wilayah_csv: str | Path | None = None,
    title: str = TITLE,
) -> GeneratedFile:
    """Write an Indonesian-locale Excel-style CSV: ``;``, UTF-8 with BOM, CRLF, title rows."""
    t0 = time.perf_counter()
    path = Path(path)
    w = resolve_wilayah(kelurahan, wilayah_csv)
    log: dict[int, str] = {}
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f, delimiter=";", lineterminator="\r\n")
        # Excel pads every exported line to the width of the used range.
        out.writerows(_preamble(w, title))
        out.writerows(_rows(n, defect_rate, seed, w, log))
    secs = time.perf_counter() - t0
    return GeneratedFile(
        path, n, seed, defect_rate, secs, path.stat().st_size, Counter(log.values())
    )


# Columns written as numbers in XLSX when the text is a plain integer.
_INT_COLS = frozenset(
    IDX[f]
    for f in (
        "no",
        "kelahiran_ke",
        "berat_bayi",
        "panjang_bayi",
        "tempat_dilahirkan",
        "jenis_kelahiran",
        "penolong_kelahiran",
    )
)
_DATE_COLS = (IDX["tanggal_lahir"], IDX["tanggal_lapor"])
_TIME_COL = IDX["jam_lahir"]


def write_xlsx(
    path: str | Path,
    n: int,
    *,
    defect_rate: float = 0.10,
    seed: int = 0,
    kelurahan: Sequence[str] | None = None,
    wilayah_csv: str | Path | None = None,
    title: str = TITLE,
) -> GeneratedFile:
    """Same content as ``write_csv`` as an .xlsx (openpyxl write-only mode).

    Cells typed as an operator's Excel would hold them: "dd/mm/yyyy" dates become real dates
    (shown dd/mm/yyyy), other date spellings ("17 Agustus 2025", "17-08-2025") and impossible
    dates stay text; "HH:MM" become times; small integer columns become numbers; NIK, No. KK,
    codes and RT/RW stay text cells (a NIK defect such as "3.27302E+15" is a text cell too).
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    t0 = time.perf_counter()
    path = Path(path)
    w = resolve_wilayah(kelurahan, wilayah_csv)
    log: dict[int, str] = {}
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Kelahiran")
    ws.append([title])
    ws.append([w.label])
    ws.append(list(HEADER))

    date_cache: dict[str, dt.date | None] = {}
    time_cache: dict[str, Any] = {}  # "HH:MM" -> dt.time

    def as_date(s: str) -> dt.date | None:
        try:
            return date_cache[s]
        except KeyError:
            pass
        d: dt.date | None = None
        parts = s.split("/")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            try:
                d = _D(int(parts[2]), int(parts[1]), int(parts[0]))
            except ValueError:
                d = None
        date_cache[s] = d
        return d

    for row in _rows(n, defect_rate, seed, w, log):
        cells: list[Any] = [v or None for v in row]  # empty cells are absent, not ""
        for j in _INT_COLS:
            v = row[j]
            if v.isdigit():
                cells[j] = int(v)
        for j in _DATE_COLS:
            d: Any = as_date(row[j])  # openpyxl's stubs omit date, which it writes fine
            if d is not None:
                c = WriteOnlyCell(ws, value=d)
                c.number_format = "dd/mm/yyyy"
                cells[j] = c
        jam = row[_TIME_COL]
        if jam:
            t: Any = time_cache.get(jam)
            if t is None:
                t = time_cache[jam] = dt.time(int(jam[:2]), int(jam[3:]))
            c = WriteOnlyCell(ws, value=t)
            c.number_format = "hh:mm"
            cells[_TIME_COL] = c
        ws.append(cells)
    wb.save(path)
    secs = time.perf_counter() - t0
    return GeneratedFile(
        path, n, seed, defect_rate, secs, path.stat().st_size, Counter(log.values())
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="output file, .csv or .xlsx")
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--defect-rate", type=float, default=0.10)
    p.add_argument("--wilayah-csv", type=Path, default=None)
    args = p.parse_args(argv)
    writer = write_xlsx if args.out.suffix.lower() == ".xlsx" else write_csv
    g = writer(
        args.out,
        args.rows,
        defect_rate=args.defect_rate,
        seed=args.seed,
        wilayah_csv=args.wilayah_csv,
    )
    mb = g.bytes / 1e6
    print(f"{g.path}: {g.rows} rows in {g.seconds:.2f} s, {mb:.1f} MB, defects {g.defects}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

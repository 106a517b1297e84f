"""The region master: CSV import and its checks, search, the in-memory index, the demo subset."""

from __future__ import annotations

import csv
import io
import time

import pytest
import sqlalchemy as sa

from hub.errors import ConfigValidationError
from hub.store.tables import wilayah
from hub.wilayah import (
    Wilayah,
    WilayahIndex,
    demo_csv_text,
    ensure_demo_loaded,
    find,
    import_csv,
    read_csv,
)

HEADER = "kode,nama,level,induk\n"
GOOD = (
    HEADER
    + "32,Jawa Barat,provinsi,\n"
    + "32.73,Kota Bandung,kabkota,32\n"
    + "32.73.01,Sukasari,kecamatan,32.73\n"
    + "32.73.01.1001,Sukarasa,desa,32.73.01\n"
    + "32.73.01.1002,Gegerkalong,desa,32.73.01\n"
)


def write(tmp_path, text, name="wilayah.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def stored(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(wilayah).order_by(wilayah.c.kode)).all()


# ------------------------------------------------------------------ import


def test_import_counts_levels_and_is_idempotent(engine, tmp_path):
    path = write(tmp_path, GOOD)
    with engine.begin() as conn:
        counts = import_csv(conn, path)
    assert counts == {
        "provinsi": 1, "kabkota": 1, "kecamatan": 1, "desa": 2,
        "inserted": 5, "updated": 0, "unchanged": 0,
    }  # fmt: skip
    before = stored(engine)
    assert before[-1] == ("32.73.01.1002", "Gegerkalong", 4, "32.73.01", "gegerkalong")
    with engine.begin() as conn:
        again = import_csv(conn, path)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 5)
    assert stored(engine) == before


def test_reimport_updates_renamed_regions_and_keeps_retired_codes(engine, tmp_path):
    with engine.begin() as conn:
        import_csv(conn, write(tmp_path, GOOD))
    renamed = (
        GOOD.replace("Gegerkalong", "Geger  Kalong")  # spaces are collapsed
        .replace("32.73.01.1001,Sukarasa,desa,32.73.01\n", "")
        .replace(HEADER, "\ufeffKODE,Nama,LEVEL,induk\r\n")  # BOM, case, CRLF
    )
    with engine.begin() as conn:
        counts = import_csv(conn, write(tmp_path, renamed, "v2.csv"))
    assert (counts["inserted"], counts["updated"], counts["unchanged"]) == (0, 1, 3)
    rows = {row.kode: row for row in stored(engine)}
    assert rows["32.73.01.1002"].nama == "Geger Kalong"
    assert rows["32.73.01.1002"].nama_cari == "geger kalong"
    assert "32.73.01.1001" in rows  # absent from the new list, still known for old records


def test_children_may_refer_to_parents_already_in_the_store(engine, tmp_path):
    with engine.begin() as conn:
        import_csv(conn, write(tmp_path, GOOD))
        counts = import_csv(conn, write(tmp_path, HEADER + "32.73.02,Coblong,kecamatan,32.73\n"))
    assert counts["inserted"] == 1


def test_quoted_names_with_commas(engine, tmp_path):
    text = GOOD + '32.73.01.1003,"Lubuk Pakam I,II",desa,32.73.01\n'
    with engine.begin() as conn:
        import_csv(conn, write(tmp_path, text))
        assert find(conn, "pakam i,ii")[0].nama == "Lubuk Pakam I,II"


BAD_ROWS = [
    ("32.7,Salah,kabkota,32", "line 3: kode '32.7' is not a region code"),
    ("3273,Salah,kabkota,32", "line 3: kode '3273' is not a region code"),
    ("32.73.01.10011,Salah,desa,32.73.01", "is not a region code"),
    ("32.73.01.1003,Salah,kelurahan,32.73.01", "line 3: level 'kelurahan' is not one of"),
    ("32.73.01.1003,Salah,kecamatan,32.73.01", "has the shape of a desa, not a kecamatan"),
    ("32.73.01.1003,,desa,32.73.01", "line 3: nama is empty"),
    ("32.73.01.1003," + "x" * 201 + ",desa,32.73.01", "nama is longer than 200"),
    ("32.73.01.1003,Salah,desa,", "line 3: induk is missing (expected 32.73.01)"),
    ("32.73.01.1003,Salah,desa,32.73.02", "induk '32.73.02' does not match the code prefix"),
    ("33,Jawa Tengah,provinsi,32", "line 3: a provinsi has no induk, found '32'"),
    ("32.74.01,Salah,kecamatan,32.74", "line 3: induk 32.74 of 32.74.01 is neither in the file"),
    ("32.73.01.1001,Sukarasa,desa,32.73.01", "line 6: kode 32.73.01.1001 repeats line 3"),
    ("32.73.01.1003,Salah,desa", "line 3: expected 4 columns, found 3"),
    ("32.73.01.1003,Salah,desa,32.73.01,extra", "line 3: expected 4 columns, found 5"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
def test_each_bad_row_is_reported_with_its_line_and_nothing_is_written(
    engine, tmp_path, row, message
):
    lines = GOOD.splitlines()
    text = "\n".join([lines[0], lines[1], row, *lines[2:]]) + "\n"
    with pytest.raises(ConfigValidationError) as info, engine.begin() as conn:
        import_csv(conn, write(tmp_path, text))
    assert any(message in error for error in info.value.errors), info.value.errors
    assert "nothing imported" in str(info.value)
    assert stored(engine) == []


def test_every_error_of_a_file_is_listed_in_line_order(engine, tmp_path):
    text = HEADER + "".join(row + "\n" for row, _ in BAD_ROWS[:6])
    with pytest.raises(ConfigValidationError) as info, engine.begin() as conn:
        import_csv(conn, write(tmp_path, text))
    lines = [int(error.split(":")[0].removeprefix("line ")) for error in info.value.errors]
    assert lines == sorted(lines)
    assert set(lines) == {2, 3, 4, 5, 6, 7}
    rendered = str(info.value)
    assert rendered.count("\n  - ") == len(info.value.errors)


def test_a_flood_of_errors_is_capped(tmp_path):
    text = HEADER + "x,y,desa,z\n" * 500
    with pytest.raises(ConfigValidationError) as info:
        read_csv(io.StringIO(text))
    assert len(info.value.errors) == 201
    assert info.value.errors[-1].startswith("... and ")


@pytest.mark.parametrize(
    "header", ["", "kode;nama;level;induk\n", "kode,nama,level\n", "a,b,c,d\n"]
)
def test_a_file_without_the_header_is_refused(engine, tmp_path, header):
    with pytest.raises(ConfigValidationError, match="is not a region list") as info:
        with engine.begin() as conn:
            import_csv(conn, write(tmp_path, header + GOOD.removeprefix(HEADER)))
    assert info.value.errors[0].startswith("line 1: header must be kode,nama,level,induk")


def test_blank_lines_are_skipped_but_counted():
    text = HEADER + "\n32,Jawa Barat,provinsi,\n\n32.73,Kota Bandung,kabkota,\n"
    with pytest.raises(ConfigValidationError) as info:
        read_csv(io.StringIO(text))
    assert info.value.errors == ["line 5: induk is missing (expected 32)"]


# ------------------------------------------------------------------ search


@pytest.fixture
def demo(engine):
    with engine.begin() as conn:
        assert ensure_demo_loaded(conn) is True
    return engine


def test_find_is_case_insensitive_and_ordered_by_code(demo):
    with demo.connect() as conn:
        found = find(conn, "  SUKA ")
        assert [w.kode for w in found] == ["32.73.01", "32.73.01.1001"]
        assert found[0] == Wilayah("32.73.01", "Sukasari", 3, "32.73")
        assert [w.nama for w in find(conn, "lebak")] == ["Lebak Gede", "Lebak Siliwangi"]


def test_find_within_a_parent(demo):
    with demo.connect() as conn:
        assert [w.nama for w in find(conn, "E", induk="32.73.08")] == [
            "Hegarmanah",
            "Ciumbuleuit",
            "Ledeng",
        ]
        assert [w.kode for w in find(conn, "", induk="327309")] == [
            "32.73.09.1001",
            "32.73.09.1002",
            "32.73.09.1003",
        ]
        assert find(conn, "sukarasa", induk="32.73.02") == []
        assert find(conn, "sukarasa", induk="not a code") == []


def test_find_limits_and_escapes_wildcards(demo):
    with demo.connect() as conn:
        assert len(find(conn, "", limit=5)) == 5
        assert find(conn, "%") == []
        assert find(conn, "_") == []


# ------------------------------------------------------------------ demo subset


def test_demo_subset_loads_once(demo):
    with demo.begin() as conn:
        assert ensure_demo_loaded(conn) is False
        index = WilayahIndex.load(conn)
    assert len(index) == 29
    assert index.name_of("32.73.01.1001") == "Sukarasa"


def test_demo_subset_is_a_valid_region_list():
    regions = read_csv(io.StringIO(demo_csv_text()))
    levels = [r.level for r in regions]
    assert (levels.count(1), levels.count(2), levels.count(3), levels.count(4)) == (1, 1, 5, 22)


def test_demo_subset_agrees_with_the_master_list(wilayah_csv):
    with wilayah_csv.open(encoding="utf-8", newline="") as f:
        master = {row["kode"]: row for row in csv.DictReader(f)}
    for row in csv.DictReader(io.StringIO(demo_csv_text())):
        assert master[row["kode"]] == row


# ------------------------------------------------------------------ index


@pytest.fixture
def index():
    return WilayahIndex(
        [
            ("32", "Jawa Barat"),
            ("32.73", "Kota Bandung"),
            ("32.73.01", "Sukasari"),
            ("32.73.01.1001", "Sukarasa"),
            ("91.03.01.3001", "Desa Adat ’Contoh"),
            ("not a code", "skipped"),
        ]
    )


def test_index_levels_names_and_membership(index):
    assert [index.level_of(k) for k in ("32", "32.73", "32.73.01", "32.73.01.1001")] == [1, 2, 3, 4]
    assert index.level_of("32.73.01.1002") is None
    assert index.level_of("3273011001") is None  # only the dotted form is looked up
    assert index.level_of("") is None
    assert index.name_of("32.73") == "Kota Bandung"
    assert index.name_of("91.03.01.3001") == "Desa Adat ’Contoh"
    assert index.name_of("33") is None
    assert "32.73.01" in index
    assert "32.73.02" not in index
    assert 32 not in index
    assert len(index) == 5
    assert list(index) == ["32", "32.73", "32.73.01", "32.73.01.1001", "91.03.01.3001"]


def test_loaded_index_equals_one_built_in_python(engine):
    """The database checks, keys and sorts the codes; the index is the constructor's."""
    rows = [
        ("32", "Jawa Barat"),
        ("00.32", "alpha"),  # the same key as 32: names break the tie, by code point
        ("00.00.00.0032", "Beta"),
        ("32.73", "Kota Bandung"),
        ("32.73.01", "Sukasari"),
        ("00.00.01", "Nol"),
        ("32.73.01.1001", "Sukarasa"),
        ("91.03.01.3001", "Desa Adat ’Contoh"),
        ("99.99.99.9999", "Ujung"),
        *(
            (bad, "skipped")
            for bad in (
                "not a code", "3", "327", "32.7", "3a", "32.73.1", "32.73.01.100x", " 32",
                "32 ", "32\n", "32-73", "32..73", "３２", "32.73.01.10.1", "",
            )
        ),
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            wilayah.insert(),
            [{"kode": k, "nama": n, "level": 0, "induk": None, "nama_cari": n} for k, n in rows],
        )
        loaded = WilayahIndex.load(conn)
    built = WilayahIndex(rows)
    assert len(loaded) == len(built) == 9
    assert list(loaded) == list(built)
    for kode, _ in rows:
        assert loaded.level_of(kode) == built.level_of(kode)
        assert loaded.name_of(kode) == built.name_of(kode)
    assert loaded.name_of("32") == "Beta"
    assert loaded.has_kecamatan("327301")
    assert not loaded.has_kecamatan("000001")
    assert loaded.nbytes() == built.nbytes()


def test_index_kecamatan_prefixes_for_nik_checks(index):
    assert index.has_kecamatan("327301")
    assert not index.has_kecamatan("327302")
    assert not index.has_kecamatan("3273")
    assert not index.has_kecamatan("32.73.01")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("32.73.01.1001", "32.73.01.1001"),
        ("3273011001", "32.73.01.1001"),
        (" 32 73 01 1001 ", "32.73.01.1001"),
        ("32-73-01-1001", "32.73.01.1001"),
        ("32.73.1.1001", "32.73.01.1001"),
        ("'3273011001", "32.73.01.1001"),
        ("\u200b3273011001\u00a0", "32.73.01.1001"),
        (3273011001, "32.73.01.1001"),
        (3273011001.0, "32.73.01.1001"),
        ((32, 73, 1, 1001), "32.73.01.1001"),
        (["32", "73", "01"], "32.73.01"),
        ("327301", "32.73.01"),
        ("3273", "32.73"),
        ("32", "32"),
        (32, "32"),
        ("32.73", "32.73"),
        ("32 . 73", "32.73"),
        ("", None),
        ("   ", None),
        ("abc", None),
        ("32.73.01.1001.5", None),
        ("32730110011", None),
        ("32730", None),
        ("3.73.01.1001", None),
        ("32.730.01.1001", None),
        ("32..73", None),  # a missing part is not silently dropped
        ("32.-73", None),
        ("32. 73", "32.73"),
        ("32.73.01.10011", None),
        ("３２.73", None),  # full-width digits
        (3273011001.5, None),
        (-3273011001, None),
        (True, None),
        ((), None),
        ((32, 73, 1, 1001, 1), None),
    ],
)
def test_normalise(value, expected):
    assert WilayahIndex.normalise(value) == expected


# ------------------------------------------------------------------ the full master list


def test_full_master_list(engine, wilayah_csv):
    started = time.perf_counter()
    with engine.begin() as conn:
        counts = import_csv(conn, wilayah_csv)
    elapsed = time.perf_counter() - started
    assert counts == {
        "provinsi": 38, "kabkota": 514, "kecamatan": 7285, "desa": 83762,
        "inserted": 91599, "updated": 0, "unchanged": 0,
    }  # fmt: skip
    assert elapsed < 30, f"import took {elapsed:.1f} s"
    with engine.begin() as conn:
        again = import_csv(conn, wilayah_csv)
        assert again["unchanged"] == 91599
        assert ensure_demo_loaded(conn) is False
        index = WilayahIndex.load(conn)
        sidomulyo = find(conn, "sidomulyo", limit=500)
        in_jember = find(conn, "sidomulyo", induk="35.09")
    assert len(index) == 91599
    assert index.nbytes() < 8_000_000
    assert index.has_kecamatan("327301")
    assert not index.has_kecamatan("910101")  # retired in the 2022 Papua split
    assert index.level_of("93.01") == 2
    assert index.level_of("91.01.01") is None
    assert index.name_of("12.07.28.1007") == "Lubuk Pakam I,II"
    assert len([w for w in sidomulyo if w.nama == "Sidomulyo" and w.level == 4]) == 98
    assert in_jember
    assert all(w.kode.startswith("35.09.") for w in in_jember)

from __future__ import annotations

import pytest

from hub.errors import HeaderNotFoundError
from hub.layout import find_header, iter_data_chunks
from hub.records import Provenance, RawRow
from hub.schemas import SchemaRegistry

REGISTRY = SchemaRegistry.load()
KELAHIRAN = REGISTRY.get("kelahiran")


def iter_data_rows(table, schema, *, skipped_parts=None):
    """The data rows one at a time, each with its layout: chunks of two, so that the tests
    also cross chunk boundaries."""
    for layout, chunk in iter_data_chunks(table, schema, 2, skipped_parts=skipped_parts):
        assert 0 < len(chunk) <= 2
        for row in chunk:
            yield layout, row


def rows(*lines, part="Sheet1", start=1):
    return [
        RawRow(tuple(cells), Provenance("excel", "f.xlsx", start + i, part))
        for i, cells in enumerate(lines)
        if cells is not None
    ]


HEADER = [
    "No",
    "Nama Anak",
    "JK",
    "Tgl Lahir",
    "NIK Ibu",
    "Nama Ibu",
    "No. KK",
    "RT/RW",
    "Keterangan Lain",
]
DATA = [
    1,
    "Aisyah",
    "P",
    "02/07/2025",
    "3273014507900001",
    "Siti",
    "3273011203150004",
    "003/005",
    "",
]


def test_header_below_title_rows():
    table = rows(["LAPORAN KELAHIRAN BULAN JULI 2025"], ["KELURAHAN : SUKARASA"], HEADER, DATA)
    pairs = list(iter_data_rows(iter(table), KELAHIRAN))
    assert [row.provenance.row for _, row in pairs] == [4]
    layout = pairs[0][0]
    assert layout.header_rows == (3,)
    assert layout.fields["nik_ibu"].label == "NIK Ibu"
    assert layout.label_of("rt") == "RT/RW"
    assert layout.index_of("rw") == 7
    assert [c.label for c in layout.unknown] == ["Keterangan Lain"]  # "No" is not worth a warning


def test_two_row_header_under_merged_labels():
    top = ["No", "Data Bayi", None, "Data Ibu", None, "No. KK", "Tgl Lapor"]
    sub = [None, "Nama Anak", "Tgl Lahir", "NIK", "Nama", None, None]
    data = [1, "Aisyah", "02/07/2025", "3273014507900001", "Siti", "3273011203150004", "05/07/2025"]
    table = rows(["LAPORAN"], top, sub, ["(1)", "(2)", "(3)", "(4)", "(5)", "(6)", "(7)"], data)
    pairs = list(iter_data_rows(iter(table), KELAHIRAN))
    assert len(pairs) == 1
    assert pairs[0][1].provenance.row == 5
    layout = pairs[0][0]
    assert layout.header_rows == (2, 3)
    assert layout.fields["nik_ibu"].index == 3
    assert layout.fields["nik_ibu"].label == "Data Ibu / NIK"
    assert layout.fields["nama_ibu"].index == 4
    assert layout.fields["no_kk"].index == 5
    assert layout.fields["tanggal_lapor"].index == 6


def test_trailing_total_and_signature_block_are_not_data():
    table = rows(
        HEADER,
        DATA,
        DATA,
        ["JUMLAH", None, None, None, None, None, None, None, 2],
        [None, None, None, None, "Bandung, 2 Agustus 2025"],
        [None, None, None, None, "Lurah Sukarasa"],
        [None, None, None, None, "(ASEP)"],
        [None, None, None, None, "NIP. 197001011990031001"],
    )
    assert [row.provenance.row for _, row in iter_data_rows(iter(table), KELAHIRAN)] == [2, 3]


def test_sparse_row_outside_a_trailer_is_still_data():
    sparse = [None, "Budi", None, None, None, None, None, None, None]
    table = rows(HEADER, DATA, sparse, DATA)
    assert [row.provenance.row for _, row in iter_data_rows(iter(table), KELAHIRAN)] == [2, 3, 4]


def test_header_repeated_on_each_printed_page():
    table = rows(HEADER, DATA, HEADER, ["1", "2", "3", "4", "5", "6", "7", "8", "9"], DATA)
    assert [row.provenance.row for _, row in iter_data_rows(iter(table), KELAHIRAN)] == [2, 5]


def test_each_sheet_has_its_own_header_and_sheets_without_one_are_skipped():
    first = rows(HEADER, DATA, part="Juli")
    notes = rows(["Petunjuk pengisian"], ["Isi satu baris per bayi"], part="Petunjuk")
    second = rows(
        ["judul"],
        ["Nama Bayi", "Tanggal Lahir", "NIK_IBU", "NO_KK"],
        ["Budi", "01/08/2025", "3273014507900001", "3273011203150004"],
        part="Agustus",
    )
    skipped: list[str] = []
    pairs = list(iter_data_rows(iter(first + notes + second), KELAHIRAN, skipped_parts=skipped))
    assert [(layout.part, row.provenance.row) for layout, row in pairs] == [
        ("Juli", 2),
        ("Agustus", 3),
    ]
    assert skipped == ["Petunjuk"]


def test_no_header_anywhere_is_a_clear_error():
    table = rows(["foo", "bar"], ["1", "2"], ["3", "4"])
    with pytest.raises(HeaderNotFoundError, match="Baris judul kolom"):
        list(iter_data_rows(iter(table), KELAHIRAN))
    with pytest.raises(HeaderNotFoundError):
        list(iter_data_rows(iter([]), KELAHIRAN))


def test_header_found_only_in_the_first_rows():
    table = rows(*[[f"catatan {i}"] for i in range(40)], HEADER, DATA)
    with pytest.raises(HeaderNotFoundError):
        list(iter_data_rows(iter(table), KELAHIRAN))


def test_header_of_another_type_scores_low():
    kematian = REGISTRY.get("kematian")
    layout = find_header(kematian, "", rows(HEADER))
    kelahiran_layout = find_header(KELAHIRAN, "", rows(HEADER))
    assert kelahiran_layout is not None
    assert layout is None or len(layout.fields) < len(kelahiran_layout.fields)

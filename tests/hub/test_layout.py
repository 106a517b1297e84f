from __future__ import annotations

import pytest

from hub.errors import HeaderNotFoundError, NoDataRowsError
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


DATANG = REGISTRY.get("datang")
KEMATIAN = REGISTRY.get("kematian")
DATANG_TOP = ["NIK", "Nama", "No KK", "DAERAH ASAL", "DAERAH ASAL", "DAERAH TUJUAN"]
DATANG_TOP += ["DAERAH TUJUAN", "Tgl Datang", "NIK Pelapor", "Nama Pelapor", "Tgl Lapor"]


def _datang_layout(lower):
    """The header of a datang report with origin and destination grouped under merged labels
    (merged cells arrive filled, as the Excel source reads them)."""
    bottom = ["NIK", "Nama", "No KK", *lower, "Tgl Datang", "NIK Pelapor", "Nama Pelapor"]
    bottom.append("Tgl Lapor")
    table = rows(["LAPORAN KEDATANGAN"], DATANG_TOP, bottom)
    layout = find_header(DATANG, "Sheet1", table)
    assert layout is not None
    assert layout.header_rows == (2, 3)
    return layout


def test_the_same_lower_label_under_two_groups_is_told_apart_by_its_group():
    layout = _datang_layout(["Kode Desa", "Alamat", "Kode Desa", "Alamat"])
    assert layout.fields["kode_wilayah_asal"].index == 3
    assert layout.fields["kode_wilayah_tujuan"].index == 5
    assert layout.fields["alamat_tujuan"].index == 6
    # the origin address is no field of a datang record: reported, never taken as another
    assert [(c.index, c.label) for c in layout.unknown] == [(4, "DAERAH ASAL / Alamat")]
    assert layout.duplicated == ()


def test_a_lower_label_that_names_a_field_alone_is_not_taken_under_the_opposite_group():
    layout = _datang_layout(["Kode Asal", "Alamat", "Kode Tujuan", "Alamat"])
    assert layout.fields["alamat_tujuan"].index == 6
    assert [c.index for c in layout.unknown] == [4]


def test_the_opposite_role_also_counts_when_the_label_is_not_repeated():
    bottom = ["NIK", "Nama", "No KK", "Kode Asal", "Alamat", "Kode Tujuan", "Tgl Datang"]
    bottom += ["NIK Pelapor", "Nama Pelapor", "Tgl Lapor"]
    top = ["", "", "", "DAERAH ASAL", "DAERAH ASAL", "", "", "", "", ""]
    layout = find_header(DATANG, "Sheet1", rows(top, bottom))
    assert layout is not None
    assert "alamat_tujuan" not in layout.fields  # "Alamat" of the origin is not the destination


def test_a_group_label_without_a_role_still_lets_the_lower_label_stand_alone():
    top = ["KETERANGAN KELAHIRAN"] * 4 + ["IBU", "IBU", "", "", ""]
    layout = find_header(KELAHIRAN, "Sheet1", rows(top, HEADER[:4] + ["NIK", "Nama"] + HEADER[6:]))
    assert layout is not None
    assert {"nama_bayi", "tanggal_lahir", "nik_ibu", "nama_ibu"} <= set(layout.fields)


@pytest.mark.parametrize("mark", ["Halaman 1 dari 2", "Hal. 2", "hal 3/4", "Page 2 of 5", "- 2 -"])
def test_page_markers_of_printed_reports_are_not_data(mark):
    table = rows(HEADER, DATA, [None, mark], HEADER, ["(1)", "(2)", "(3)", "(4)"], DATA)
    assert [row.provenance.row for _, row in iter_data_rows(iter(table), KELAHIRAN)] == [2, 6]


def test_a_page_marker_among_data_cells_is_data():
    data = [2, "Halaman 2", "P", "02/07/2025", "3273014507900002", "Siti", "3273011203150004"]
    table = rows(HEADER, DATA, data)
    assert [row.provenance.row for _, row in iter_data_rows(iter(table), KELAHIRAN)] == [2, 3]


KEMATIAN_HEADER = ["NIK", "Nama", "No KK", "Tgl Meninggal", "Sebab", "Kode Desa", "NIK Pelapor"]
KEMATIAN_HEADER += ["Nama Pelapor", "Tgl Lapor"]


def test_a_header_of_another_record_type_is_refused_with_the_type_it_is():
    table = rows(["LAPORAN KEMATIAN"], KEMATIAN_HEADER, ["3273010101400001", "Asep"])
    others = [KEMATIAN, DATANG, REGISTRY.get("pindah")]
    with pytest.raises(HeaderNotFoundError, match="tampaknya laporan kematian, bukan kelahiran"):
        list(iter_data_chunks(iter(table), KELAHIRAN, 10, alternatives=others))


def test_a_sheet_of_another_record_type_is_skipped_when_another_sheet_is_this_type():
    table = rows(KEMATIAN_HEADER, ["3273010101400001", "Asep"], part="Mati")
    table += rows(HEADER, DATA, part="Lahir")
    skipped: list[str] = []
    chunks = list(
        iter_data_chunks(iter(table), KELAHIRAN, 10, skipped_parts=skipped, alternatives=[KEMATIAN])
    )
    assert [(layout.part, len(chunk)) for layout, chunk in chunks] == [("Lahir", 1)]
    assert skipped == ["Mati"]


def test_a_missing_required_column_alone_does_not_make_another_type():
    header = [h for h in HEADER if h != "Tgl Lahir"]
    table = rows(header, [c for h, c in zip(HEADER, DATA, strict=True) if h != "Tgl Lahir"])
    chunks = list(iter_data_chunks(iter(table), KELAHIRAN, 10, alternatives=[KEMATIAN, DATANG]))
    assert len(chunks) == 1  # read as kelahiran; each row gets `required` for the date


def test_a_header_without_any_data_row_is_an_empty_file():
    table = rows(["LAPORAN KELAHIRAN"], HEADER, [None, "Jumlah", 0], ["Mengetahui,"])
    with pytest.raises(NoDataRowsError, match="hanya berisi judul kolom"):
        list(iter_data_chunks(iter(table), KELAHIRAN, 10, require_rows=True))
    assert list(iter_data_chunks(iter(table), KELAHIRAN, 10)) == []  # a database page may be empty

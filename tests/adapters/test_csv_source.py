"""CSVSource: encodings, delimiters, line numbers and every way a file can be unreadable."""

from __future__ import annotations

import codecs
import random
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from adapters.csv.source import MIXED_ENCODING, CSVSource, detect_delimiter, detect_encoding
from hub.errors import UnreadableFileError
from hub.pipeline import source_for
from hub.records import RawRow
from tests.builders import KEMATIAN_HEADER, kematian_row

HEADER = "NIK;NAMA;TEMPAT LAHIR;TANGGAL LAHIR"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def read(path: Path, **config: object) -> list[RawRow]:
    return list(CSVSource({"path": str(path), **config}).read())


def lines(rows: list[RawRow]) -> list[int]:
    return [row.provenance.row for row in rows]


def test_utf8_bom_semicolon_with_title_rows(tmp_path: Path) -> None:
    text = (
        "LAPORAN KELAHIRAN BULAN JULI 2025\r\n"
        "KELURAHAN : SUKARASA\r\n"
        "\r\n"
        f"{HEADER}\r\n"
        "3273010101900001;Budi Santoso;Bandung;17/08/2025\r\n"
        "3273010101900002;Siti Aminah;Cimahi;03 Mei1990\r\n"
    )
    path = write(tmp_path / "lahir.csv", codecs.BOM_UTF8 + text.encode())
    rows = read(path)
    assert rows[0].cells == ("LAPORAN KELAHIRAN BULAN JULI 2025",)  # no BOM left
    assert rows[2].cells == ("NIK", "NAMA", "TEMPAT LAHIR", "TANGGAL LAHIR")
    assert rows[3].cells == ("3273010101900001", "Budi Santoso", "Bandung", "17/08/2025")
    assert lines(rows) == [1, 2, 4, 5, 6]
    provenance = rows[3].provenance
    assert (provenance.source, provenance.locator, provenance.part) == ("csv", "lahir.csv", "")
    assert provenance.position == "line 5"
    assert detect_encoding(path) == "utf-8-sig"


def test_plain_utf8_comma_with_quoted_commas_in_names(tmp_path: Path) -> None:
    text = (
        "LAPORAN KELAHIRAN, BULAN JULI 2025\n"
        "NIK,NAMA,ALAMAT\n"
        '3273010101900001,"Santoso, Budi","Jl. Merdeka 1, RT 008"\n'
        '3273010101900002,"Aminah, Siti S.Pd.","Gg. Kenanga, No. 2"\n'
        "3273010101900003,Ñoñó Réné,Désa\n"
    )
    path = write(tmp_path / "lahir.csv", text.encode("utf-8"))
    assert detect_encoding(path) == "utf-8"
    assert detect_delimiter(path, "utf-8") == ","
    rows = read(path)
    assert rows[2].cells == ("3273010101900001", "Santoso, Budi", "Jl. Merdeka 1, RT 008")
    assert rows[4].cells == ("3273010101900003", "Ñoñó Réné", "Désa")
    assert lines(rows) == [1, 2, 3, 4, 5]


def test_cp1252_is_detected_past_the_first_megabyte(tmp_path: Path) -> None:
    filler = b"3273010101900001;Budi;Bandung;17/08/2025\r\n" * 30_000  # about 1.2 MB of ASCII
    tail = "3273010101900002;Désa;Cimahi;17 Nopember 2025\r\n".encode("cp1252")
    assert b"\xe9" in tail
    path = write(tmp_path / "lama.csv", f"{HEADER}\r\n".encode() + filler + tail)
    assert detect_encoding(path) == "cp1252"
    rows = read(path)
    assert rows[-1].cells == ("3273010101900002", "Désa", "Cimahi", "17 Nopember 2025")
    assert rows[-1].provenance.row == 30_002


def test_cp1252_undefined_byte_is_replaced(tmp_path: Path) -> None:
    path = write(tmp_path / "lama.csv", b"NIK;NAMA\r\n1;D\xe9sa\x81\r\n")
    assert read(path)[1].cells == ("1", "Désa\ufffd")


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "u16.csv", f"{HEADER}\r\n1;Désa;Bandung;x\r\n".encode("utf-16"))
    assert detect_encoding(path) == "utf-16"
    rows = read(path)
    assert rows[1].cells == ("1", "Désa", "Bandung", "x")


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_each_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    body = [
        "LAPORAN KELAHIRAN BULAN JULI 2025",
        "",
        delimiter.join(["NIK", "NAMA", "JK", "TGL"]),
        delimiter.join(["3273010101900001", "Budi", "Lk", "17/08/2025"]),
        delimiter.join(["3273010101900002", "Siti", "Pr", "17-08-2025"]),
    ]
    path = write(tmp_path / "x.csv", "\n".join(body).encode())
    assert detect_delimiter(path, "utf-8") == delimiter
    rows = read(path)
    assert rows[2].cells == ("3273010101900001", "Budi", "Lk", "17/08/2025")
    assert lines(rows) == [1, 3, 4, 5]


def test_semicolon_wins_over_unquoted_commas_in_names(tmp_path: Path) -> None:
    text = (
        "LAPORAN KELAHIRAN, KELURAHAN SUKARASA\n"
        "NIK;NAMA;GELAR\n"
        "1;Budi, S.Pd;x\n"
        "2;Siti, A.Md, S.Kom;y\n"
        "3;Agus;z\n"
    )
    path = write(tmp_path / "x.csv", text.encode())
    assert detect_delimiter(path, "utf-8") == ";"
    assert read(path)[2].cells == ("1", "Budi, S.Pd", "x")


def test_configured_delimiter_and_encoding_are_used(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "a,b;c\n1,2;3\n".encode("cp1252"))
    rows = read(path, delimiter=";", encoding="cp1252")
    assert rows[1].cells == ("1,2", "3")


def test_quoted_multiline_field_keeps_line_numbers(tmp_path: Path) -> None:
    text = (
        "NIK;NAMA;ALAMAT\r\n"
        '1;Budi;"Jl. Merdeka 1\r\nRT 008 RW 002\r\nSukarasa"\r\n'
        "2;Siti;Cimahi\r\n"
        '3;"Agus\nSalim";Bandung\r\n'
        "4;Dewi;Garut\r\n"
    )
    rows = read(write(tmp_path / "x.csv", text.encode()))
    assert rows[1].cells == ("1", "Budi", "Jl. Merdeka 1\r\nRT 008 RW 002\r\nSukarasa")
    assert lines(rows) == [1, 2, 5, 6, 8]


def test_blank_rows_are_skipped(tmp_path: Path) -> None:
    text = "NIK;NAMA\n\n1;Budi\n;\n  ;\t\n   \n2;Siti\n;;;\n"
    rows = read(write(tmp_path / "x.csv", text.encode()))
    assert [row.cells for row in rows] == [("NIK", "NAMA"), ("1", "Budi"), ("2", "Siti")]
    assert lines(rows) == [1, 3, 7]


def test_ragged_rows_are_yielded_as_they_are(tmp_path: Path) -> None:
    text = "NIK;NAMA;JK\n1;Budi\n2;Siti;Pr;extra;\n3;Agus;Lk\n"
    rows = read(write(tmp_path / "x.csv", text.encode()))
    assert [row.cells for row in rows[1:]] == [
        ("1", "Budi"),
        ("2", "Siti", "Pr", "extra", ""),
        ("3", "Agus", "Lk"),
    ]


def test_cells_stay_text(tmp_path: Path) -> None:
    text = "NIK;RT;TGL\n3.27302E+15;8.0;00045123\n'3273010101900001; 008 ;NULL\n"
    rows = read(write(tmp_path / "x.csv", text.encode()))
    assert rows[1].cells == ("3.27302E+15", "8.0", "00045123")
    assert rows[2].cells == ("'3273010101900001", " 008 ", "NULL")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"^Berkas tidak_ada\.csv tidak ditemukan\."):
        CSVSource({"path": str(tmp_path / "tidak_ada.csv")}).read()


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n  \n", b";;;\n;\n", codecs.BOM_UTF8 + b"\n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path / "kosong.csv", data)
    with pytest.raises(UnreadableFileError, match=r"^Berkas kosong\.csv kosong"):
        read(path)


def test_renamed_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lahir.csv"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(UnreadableFileError) as info:
        read(path)
    assert str(info.value) == (
        "Berkas ini bukan CSV (terdeteksi format ZIP/Excel). Unggah berkas .xlsx sebagai "
        "Excel atau simpan ulang sebagai CSV."
    )


def test_renamed_legacy_workbook_is_refused(tmp_path: Path) -> None:
    data = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)
    with pytest.raises(UnreadableFileError) as info:
        read(write(tmp_path / "lahir.csv", data))
    assert str(info.value) == (
        "Berkas ini bukan CSV (terdeteksi format Excel lama/Office). Unggah berkas .xls "
        "sebagai Excel atau simpan ulang sebagai CSV."
    )


ACCEPTED = "Unggah laporan dalam format .xlsx, .xls, .ods atau .csv."


@pytest.mark.parametrize("name", ["laporan.xlsx", "laporan.csv"])
def test_pdf_is_named_without_assuming_csv(tmp_path: Path, name: str) -> None:
    # The hub gives every file that is not a workbook to CSVSource, whatever its name.
    path = write(tmp_path / name, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    source = source_for(path)
    assert isinstance(source, CSVSource)
    with pytest.raises(UnreadableFileError) as info:
        list(source.read())
    assert str(info.value) == (
        "Berkas ini PDF, bukan lembar kerja Excel atau CSV. Unggah laporan dalam format "
        ".xlsx, .xls, .ods atau .csv."
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "gambar PNG"),
        (b"\xff\xd8\xff\xe0" + bytes(64), "gambar JPEG"),
        (b"GIF89a" + bytes(64), "gambar GIF"),
        (b"Rar!\x1a\x07\x01\x00" + bytes(64), "arsip RAR"),
        (b"7z\xbc\xaf\x27\x1c" + bytes(64), "arsip 7-Zip"),
        (b"\x1f\x8b\x08" + bytes(64), "arsip GZIP"),
        (b"PK\x05\x06" + bytes(18), "arsip ZIP kosong"),
    ],
    ids=["png", "jpeg", "gif", "rar", "7z", "gzip", "empty-zip"],
)
def test_renamed_binary_is_refused(tmp_path: Path, data: bytes, kind: str) -> None:
    with pytest.raises(UnreadableFileError) as info:
        read(write(tmp_path / "laporan.xlsx", data))
    assert str(info.value) == f"Berkas ini {kind}, bukan lembar kerja Excel atau CSV. {ACCEPTED}"


def test_nul_bytes_mean_binary(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError) as info:
        read(write(tmp_path / "x.csv", b"NIK;NAMA\n1;\x00\x01\x02\n"))
    assert str(info.value) == (
        f"Berkas ini berisi data biner, bukan lembar kerja Excel atau CSV. {ACCEPTED}"
    )


def test_huge_unquoted_cell_fails_fast_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "besar.csv"
    with path.open("wb") as file:
        file.write(b"NIK;NAMA\n1;")
        for _ in range(50):
            file.write(b"x" * 1_000_000)
        file.write(b"\n2;Budi\n")
    started = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableFileError, match=r"^Baris 2 terlalu panjang") as info:
            read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(info.value.__cause__, Exception)
    assert peak < 50_000_000
    assert time.perf_counter() - started < 2


def test_huge_quoted_cell_names_its_start_line(tmp_path: Path) -> None:
    path = tmp_path / "besar.csv"
    with path.open("wb") as file:
        file.write(b'NIK;NAMA\n1;Budi\n2;"')
        for _ in range(50):
            file.write(b"y" * 999_999 + b"\n")  # 50 MB across 50 physical lines
        file.write(b'"\n3;Siti\n')
    started = time.perf_counter()
    with pytest.raises(UnreadableFileError) as info:
        read(path)
    assert str(info.value).startswith("Baris 3 berisi sel yang terlalu besar (lebih dari 1 MB).")
    assert "\n" not in str(info.value)
    assert time.perf_counter() - started < 2


def test_max_cell_bytes_is_configurable(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", b"NIK;NAMA\n1;" + b"z" * 2_000 + b"\n")
    with pytest.raises(UnreadableFileError, match=r"^Baris 2 berisi sel .* 1 KB"):
        read(path, max_cell_bytes=1_000)
    assert read(path, max_cell_bytes=10_000)[1].cells == ("1", "z" * 2_000)


def test_wrong_configured_encoding_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "NIK;NAMA\n1;Désa\n".encode("cp1252"))
    with pytest.raises(
        UnreadableFileError, match=r"^Berkas tidak dapat dibaca dengan encoding utf-8\. "
    ):
        read(path, encoding="utf-8", delimiter=";")


# ---------------------------------------------------------------- UTF-8 with Windows-1252 lines


def test_utf8_with_a_pasted_cp1252_line_is_decoded_line_by_line(tmp_path: Path) -> None:
    data = (
        b"Nama Bayi;JK;Nama Ibu\r\n"
        + "Zoë;P;Chloé\r\n".encode()
        + "Renée;P;Inès\r\n".encode("cp1252")  # pasted from an old report
        + "Ñoño;L;Dewi Ayu\r\n".encode()
    )
    path = write(tmp_path / "campur.csv", data)
    assert detect_encoding(path) == MIXED_ENCODING
    rows = read(path)
    assert [row.cells for row in rows[1:]] == [
        ("Zoë", "P", "Chloé"),
        ("Renée", "P", "Inès"),
        ("Ñoño", "L", "Dewi Ayu"),
    ]
    assert lines(rows) == [1, 2, 3, 4]


def test_utf8_with_bom_and_a_pasted_cp1252_line_is_decoded_line_by_line(tmp_path: Path) -> None:
    data = (
        codecs.BOM_UTF8
        + "Nama Bayi;JK;Nama Ibu\r\nZoë;P;Chloé\r\n".encode()
        + "Renée;P;Inès\r\n".encode("cp1252")
    )
    path = write(tmp_path / "campur.csv", data)
    assert detect_encoding(path) == MIXED_ENCODING
    assert [row.cells for row in read(path)] == [
        ("Nama Bayi", "JK", "Nama Ibu"),
        ("Zoë", "P", "Chloé"),
        ("Renée", "P", "Inès"),
    ]


def test_mixed_encoding_is_found_when_the_cp1252_line_comes_first(tmp_path: Path) -> None:
    data = "NIK;NAMA\n1;Désa\n".encode("cp1252") + "2;Zoë\n".encode()
    path = write(tmp_path / "campur.csv", data)
    assert detect_encoding(path) == MIXED_ENCODING
    assert [row.cells for row in read(path)[1:]] == [("1", "Désa"), ("2", "Zoë")]


def test_mixed_encoding_streams_across_blocks_with_right_line_numbers(tmp_path: Path) -> None:
    rng = random.Random(20250901)
    names = ["Zoë", "Chloé", "Désa Rénata", "Ñoño", "Inès", "Budi", "Siti Aminah"]
    physical: list[tuple[str, str]] = [("NIK;NAMA;ALAMAT\r\n", "utf-8")]
    expected: list[tuple[int, tuple[str, str, str]]] = []
    for i in range(1, 50_001):
        newline = rng.choice(["\r\n", "\n", "\r"])
        name = rng.choice(names)
        start = len(physical) + 1
        if i % 7 == 0:  # a quoted address on two lines, each line in its own encoding
            street = f"Jl. {rng.choice(names)} {i}"
            physical.append((f'{i};{name};"{street}{newline}', rng.choice(["utf-8", "cp1252"])))
            physical.append((f'RT 008"{newline}', "utf-8"))
            expected.append((start, (str(i), name, f"{street}{newline}RT 008")))
        else:
            encoding = "cp1252" if rng.random() < 0.1 else "utf-8"
            physical.append((f"{i};{name};Bandung{newline}", encoding))
            expected.append((start, (str(i), name, "Bandung")))
    path = write(tmp_path / "campur.csv", b"".join(t.encode(e) for t, e in physical))
    assert path.stat().st_size > 1 << 20  # more than one detection block
    assert detect_encoding(path) == MIXED_ENCODING
    rows = read(path)
    assert [(row.provenance.row, row.cells) for row in rows[1:]] == expected


def test_pure_cp1252_stays_cp1252(tmp_path: Path) -> None:
    text = "NIK;NAMA;ALAMAT\r\n1;Désa Rénata;Jl. «Kenanga» No. 2 – RT 008\r\n2;Ñoño;Garut\r\n"
    path = write(tmp_path / "lama.csv", text.encode("cp1252"))
    assert detect_encoding(path) == "cp1252"
    assert read(path)[1].cells == ("1", "Désa Rénata", "Jl. «Kenanga» No. 2 – RT 008")


def test_mixed_encoding_can_be_configured_and_drops_a_bom(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + "NIK;NAMA\n1;Zoë\n".encode() + "2;Désa\x81\n".encode("latin-1")
    path = write(tmp_path / "campur.csv", data)
    rows = read(path, encoding=MIXED_ENCODING)
    assert [row.cells for row in rows] == [("NIK", "NAMA"), ("1", "Zoë"), ("2", "Désa\ufffd")]


def test_mixed_codec_decodes_the_same_whatever_the_pieces() -> None:
    parts = [
        ("NIK;NAMA\r\n", "utf-8"),
        ("1;Zoë\n", "utf-8"),
        ("2;Désa\r", "cp1252"),
        ("3;" + "ë" * 5_000 + "\n", "utf-8"),  # longer than what the decoder holds back
        ("4;Inès\r\n", "cp1252"),
        ("5;Ñoño", "utf-8"),
    ]
    data = b"".join(text.encode(encoding) for text, encoding in parts)
    expected = "".join(text for text, _ in parts)
    assert data.decode(MIXED_ENCODING) == expected
    rng = random.Random(7)
    for _ in range(20):
        decoder = codecs.getincrementaldecoder(MIXED_ENCODING)()
        pieces, at = [], 0
        while at < len(data):
            size = rng.randint(1, 9_000)
            pieces.append(decoder.decode(data[at : at + size]))
            at += size
        pieces.append(decoder.decode(b"", final=True))
        assert "".join(pieces) == expected


def test_mixed_encoding_keeps_memory_bounded_on_a_huge_line(tmp_path: Path) -> None:
    path = tmp_path / "besar.csv"
    with path.open("wb") as file:
        file.write("NIK;NAMA\n1;Zoë\n2;".encode() + "Désa".encode("cp1252"))
        for _ in range(50):
            file.write(b"x" * 1_000_000)
        file.write(b"\n3;Budi\n")
    assert detect_encoding(path) == MIXED_ENCODING
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableFileError, match=r"^Baris 3 terlalu panjang"):
            read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000


# ---------------------------------------------------------------- quotes that are not closed


def kematian_text(names: list[str]) -> str:
    """A death report: two title rows, a blank row, the header on line 4, rows from line 5."""
    rows = [
        ";".join(kematian_row(f"327301{i:02d}03411{700 + i}", Nama=name))
        for i, name in enumerate(names, 1)
    ]
    head = [
        "LAPORAN KEMATIAN BULAN OKTOBER 2025",
        "KELURAHAN : SUKARASA",
        "",
        *[";".join(KEMATIAN_HEADER)],
    ]
    return "".join(f"{line}\r\n" for line in head + rows)


def read_until_error(path: Path) -> tuple[list[RawRow], str]:
    """The rows yielded before the read stopped, and why it stopped."""
    rows: list[RawRow] = []
    iterator = CSVSource({"path": str(path)}).read()
    with pytest.raises(UnreadableFileError) as info:
        rows.extend(iterator)
    return rows, str(info.value)


def test_quote_open_until_end_of_file_is_refused(tmp_path: Path) -> None:
    text = kematian_text(["Odang", "Odah", "Oji", '"Ojak', "Omat", "Onah"])
    rows, message = read_until_error(write(tmp_path / "mati.csv", text.encode()))
    assert message == (
        'Baris 8: tanda kutip (") dibuka tetapi tidak ditutup, sehingga baris 8 sampai 10 '
        "terbaca sebagai satu sel. Perbaiki tanda kutipnya lalu unggah ulang."
    )
    assert lines(rows) == [1, 2, 4, 5, 6, 7]  # the swallowing record never comes out


@pytest.mark.parametrize("end", ["\r\n", ""])
def test_quote_open_on_the_last_line_is_refused(tmp_path: Path, end: str) -> None:
    text = f'NIK;NAMA;TEMPAT\n1;Budi;Bandung\n2;"Siti;Cimahi{end}'
    _, message = read_until_error(write(tmp_path / "x.csv", text.encode()))
    assert message == (
        'Baris 3: tanda kutip (") dibuka tetapi tidak ditutup sampai akhir berkas. Perbaiki '
        "tanda kutipnya lalu unggah ulang."
    )


def test_unclosed_quote_is_placed_after_a_multiline_cell(tmp_path: Path) -> None:
    text = 'NIK;ALAMAT;NAMA\n1;"Jl. Merdeka 1\nRT 008";"Budi\n2;Cimahi;Siti\n3;Garut;Agus\n'
    _, message = read_until_error(write(tmp_path / "x.csv", text.encode()))
    assert message.startswith(
        'Baris 3: tanda kutip (") dibuka tetapi tidak ditutup, sehingga baris 3 sampai 5 '
    )


def test_a_lone_quote_that_swallows_nothing_is_read_as_before(tmp_path: Path) -> None:
    rows = read(write(tmp_path / "x.csv", b'NIK;NAMA;KET\n1;Budi;"\n'))
    assert [row.cells for row in rows] == [("NIK", "NAMA", "KET"), ("1", "Budi", "\n")]


def test_stray_quote_closed_many_lines_later_is_refused(tmp_path: Path) -> None:
    names = ["Odang", '"Ojak', "Omat", "Onah", "Otong", "Oman", "Odih", "Oneng", '"Oyo"']
    text = kematian_text(names)  # the stray quote opens on line 6, the next quote is on 13
    rows, message = read_until_error(write(tmp_path / "mati.csv", text.encode()))
    assert message == (
        'Baris 6: tanda kutip (") dibuka tetapi baru ditutup di baris 13, sehingga baris 6 '
        "sampai 13 terbaca sebagai satu sel. Perbaiki tanda kutipnya lalu unggah ulang."
    )
    assert lines(rows) == [1, 2, 4, 5]


@pytest.mark.parametrize(
    "cell",
    [
        # a long address, commas on every line but never a whole row's worth
        "Perum Griya Asri, Blok C\nNo. 12, RT 003\nRW 005, Kel. Sukarasa\nKec. Sukasari\n"
        "Kota Bandung, Jawa Barat\n40152",
        # three full lines of commas, but over three lines only
        "Perum Griya Asri, Blok C, No. 12, RT 003\nKel. Sukarasa, Kec. Sukasari, Kota "
        "Bandung, Jawa Barat\nIndonesia, 40152, telp. 022, 0812",
        # six lines, two of them comma-heavy
        "Perum Griya Asri, Blok C, No. 12, RT 003\nRW 005\nKel. Sukarasa\nKec. Sukasari, "
        "Kota Bandung, Jawa Barat, 40152\nIndonesia\n(rumah pojok)",
    ],
)
def test_long_quoted_addresses_are_not_mistaken_for_a_stray_quote(
    tmp_path: Path, cell: str
) -> None:
    text = f'NIK,NAMA,ALAMAT\n1,Budi,"{cell}"\n2,Siti,Cimahi\n'
    rows = read(write(tmp_path / "x.csv", text.encode()))
    assert rows[1].cells == ("1", "Budi", cell)
    assert rows[2].cells == ("2", "Siti", "Cimahi")
    assert rows[2].provenance.row == 3 + cell.count("\n")

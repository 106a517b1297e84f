"""CSVSource: encodings, delimiters, line numbers and every way a file can be unreadable."""

from __future__ import annotations

import codecs
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from adapters.csv.source import CSVSource, detect_delimiter, detect_encoding
from hub.errors import UnreadableFileError
from hub.records import RawRow

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


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "gambar PNG"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504), "Excel lama/Office"),
    ],
)
def test_renamed_binary_is_refused(tmp_path: Path, data: bytes, kind: str) -> None:
    with pytest.raises(
        UnreadableFileError, match=rf"^Berkas ini bukan CSV \(terdeteksi format {kind}\)"
    ):
        read(write(tmp_path / "x.csv", data))


def test_nul_bytes_mean_binary(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"^Berkas ini bukan CSV \(berisi data biner\)"):
        read(write(tmp_path / "x.csv", b"NIK;NAMA\n1;\x00\x01\x02\n"))


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

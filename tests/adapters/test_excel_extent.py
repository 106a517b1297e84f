"""The extent check of .xlsx worksheets: every way calamine reads a far position is caught,
and an ordinary sheet is bounded in one quick scan, never counted cell by cell."""

from __future__ import annotations

import itertools
import re
import zipfile
from pathlib import Path

import pytest

from adapters.excel import extent
from adapters.excel.extent import check_extent, column_letters
from hub.errors import UnreadableFileError
from tests.hostile.files import handmade_xlsx, sheet_xml

V = "<v>1</v>"
PREFIXED_NS = 'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '


def check(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        check_extent(archive)


# Each of these put a cell at XFD1048576 for calamine (tried with python-calamine 0.9.1: it
# reads single quotes, spaces around `=`, an `r` after other attributes, the last of two
# `r`, and tags with a namespace prefix), while the check once saw a tiny grid.
FAR = {
    "petik tunggal": f"<row r='1'><c r='A1'>{V}</c><c r='XFD1048576'>{V}</c></row>",
    "spasi di sekitar =": f'<row r="1"><c r="A1">{V}</c><c r = "XFD1048576">{V}</c></row>',
    "r kedua": f'<row r="1"><c r="A1">{V}</c><c r="B1" r="XFD1048576">{V}</c></row>',
    "r kedua menempel": f'<row r="1"><c r="A1">{V}</c><c r="B1"r="XFD1048576">{V}</c></row>',
    "r kedua petik tunggal": (
        f'<row r="1"><c r="A1">{V}</c><c r="B1" s="0" r=\'XFD1048576\'>{V}</c></row>'
    ),
    "> dalam nilai": f'<row r="1"><c r="A1">{V}</c><c r="B1" t="a>b" r="XFD1048576">{V}</c></row>',
    "sel berprefiks": f'<x:row r="1"><x:c r="A1">{V}</x:c><x:c r="XFD1048576">{V}</x:c></x:row>',
    "sel berprefiks tanpa r": (
        '<x:row r="1">'
        + "<x:c><x:v>1</x:v></x:c>" * 16_384
        + '</x:row><x:row r="1048576"><x:c><x:v>1</x:v></x:c></x:row>'
    ),
}


@pytest.mark.parametrize("name", list(FAR))
def test_every_form_of_a_far_cell_is_refused(tmp_path: Path, name: str) -> None:
    sheet = sheet_xml(FAR[name]).replace("<worksheet ", f"<worksheet {PREFIXED_NS}")
    with pytest.raises(UnreadableFileError, match="selnya tersebar sangat jauh"):
        check(handmade_xlsx(tmp_path / "jauh.xlsx", sheet=sheet))


def test_a_tag_longer_than_a_block_is_refused(tmp_path: Path) -> None:
    """Its reference comes after the first block ends: no position of it is certain."""
    filler = " ".join(f'a{i}="{"x" * 20}"' for i in range(60_000))  # about 1.6 MB
    rows = f'<row r="1"><c r="A1">{V}</c><c {filler} r="XFD1048576">{V}</c></row>'
    with pytest.raises(UnreadableFileError, match="selnya tersebar sangat jauh"):
        check(handmade_xlsx(tmp_path / "panjang.xlsx", sheet=sheet_xml(rows)))


def test_r_and_prefixes_in_text_are_harmless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`r=` and `x:c ` typed in cells, and other tags with an `r`, are not cells."""
    monkeypatch.setattr(extent, "_exact_grid", _never)
    text = "<is><t>nomor r=5, kode x:c lalu x:row </t></is>"
    rows = "".join(
        f'<row r="{r}" spans="1:3"><c r="A{r}" t="inlineStr">{text}</c>'
        f'<c r="B{r}" s="1" t="n"><v>{r}</v></c><c r="C{r}" t="inlineStr">{text}</c></row>'
        for r in range(1, 1001)
    )
    check(handmade_xlsx(tmp_path / "teks.xlsx", sheet=sheet_xml(rows)))


def test_an_ordinary_sheet_is_bounded_without_counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About 9 MB of worksheet XML, cut into many blocks: bounded by the quick scan."""
    monkeypatch.setattr(extent, "_exact_grid", _never)
    row = "".join(
        f'<c r="{column_letters(c)}{{r}}" t="inlineStr"><is><t>nilai {c}</t></is></c>'
        for c in range(1, 24)
    )
    rows = "".join(f'<row r="{r}">{row.format(r=r)}</row>' for r in range(1, 10_001))
    check(handmade_xlsx(tmp_path / "biasa.xlsx", sheet=sheet_xml(rows)))


def test_the_quick_bound_covers_every_cell(tmp_path: Path) -> None:
    rows = (
        f'<row r="1"><c r="A1">{V}</c></row><row r="150"><c r="AB150">{V}</c>'
        f'<c r="C150">{V}</c></row>'
    )
    path = handmade_xlsx(tmp_path / "batas.xlsx", sheet=sheet_xml(rows))
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("xl/worksheets/sheet1.xml")
        assert extent._quick_bound(extent._blocks(archive, member)) == 28 * 199


@pytest.mark.parametrize(
    ("alphabet", "lowest", "longest"), [(extent._LETTERS[:4], "A", 3), ("0123", "1", 4)]
)
def test_at_most_matches_exactly_the_strings_not_above(
    alphabet: str, lowest: str, longest: int
) -> None:
    every = [
        "".join(chars)
        for length in range(1, longest + 1)
        for chars in itertools.product(alphabet, repeat=length)
        if chars[0] >= lowest
    ]
    for bound in every:
        pattern = re.compile(f"(?:{extent._at_most(bound, alphabet, lowest)})")
        below = [s for s in every if (len(s), s) <= (len(bound), bound)]
        assert [s for s in every if pattern.fullmatch(s)] == below, bound


def _never(*_args: object) -> tuple[int, int]:
    raise AssertionError("the exact count ran")

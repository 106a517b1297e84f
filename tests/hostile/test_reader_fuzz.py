"""Fuzz (hypothesis, bounded): mutated real CSV, XLSX and XLS files give rows or the hub's
clean `SourceError`, nothing else. `make fuzz` runs many more examples."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import xlwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.errors import SourceError
from hub.pipeline import source_for
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_csv, write_xlsx

EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "30"))


def _xls(path: Path) -> Path:
    book = xlwt.Workbook()
    sheet = book.add_sheet("Juli")
    for r, row in enumerate([KELAHIRAN_HEADER, kelahiran_row(1), kelahiran_row(2)]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(path))
    return path


def _seeds() -> dict[str, bytes]:
    folder = Path(tempfile.mkdtemp(prefix="hub-fuzz-"))
    rows = [kelahiran_row(1), kelahiran_row(2)]
    return {
        "csv": write_csv(folder / "a.csv", KELAHIRAN_HEADER, rows).read_bytes(),
        "xlsx": write_xlsx(folder / "a.xlsx", KELAHIRAN_HEADER, rows).read_bytes(),
        "xls": _xls(folder / "a.xls").read_bytes(),
    }


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif data:
            data[at:at] = data[at : at + 16] * draw(st.integers(1, 50))
    return bytes(data)


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_mutated_files_read_or_fail_cleanly(kind: str, tmp_path: Path) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=mutated(SEEDS[kind]))
    def read(data: bytes) -> None:
        path = tmp_path / f"fuzz.{kind}"
        path.write_bytes(data)
        try:
            for row in source_for(path).read():
                assert isinstance(row.cells, tuple)
        except SourceError as exc:
            message = str(exc)
        else:
            return
        assert message
        assert "\n" not in message.strip()

    read()

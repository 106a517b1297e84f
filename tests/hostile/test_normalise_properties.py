"""Property-based: on any cell value every normaliser returns a value or clean issues, never
raises; normalising a normalised value gives it back where that must hold."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.normalise import make_normaliser, needs_normalising
from hub.schemas import FieldSpec, SchemaRegistry

SPECS: list[FieldSpec] = [
    spec
    for record_type in ("kelahiran", "kematian", "pindah", "datang")
    for spec in SchemaRegistry.load().get(record_type).fields.values()
]
#: Kinds whose clean output is itself a valid input that normalises to the same value.
IDEMPOTENT = {"nik", "kk", "date", "time", "code", "integer", "rt", "wilayah", "name", "text"}

digits = st.text("0123456789 .-'\u00a0\u200b", max_size=24)
cells = st.one_of(
    st.none(),
    st.text(max_size=60),
    digits,
    st.from_regex(r"\A[0-9]{1,2}[/ -][A-Za-z0-9]{1,9}[/ -][0-9]{2,4}\Z"),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.timedeltas(),
)


def _check(result: Any) -> None:
    value, problems = result
    assert isinstance(problems, tuple)
    for code, severity, params in problems:
        assert isinstance(code, str)
        assert code
        assert severity in ("error", "warning")
        assert hasattr(params, "items")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.kind}:{s.name}")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=cells)
def test_normalisers_never_raise_and_settle(spec: FieldSpec, cell: Any) -> None:
    normalise, _ = make_normaliser(spec)
    result = normalise(cell)
    _check(result)
    value, problems = result
    errors = [p for p in problems if p[1] == "error"]
    if value is None or errors or spec.kind not in IDEMPOTENT:
        return
    again = normalise(value)
    _check(again)
    assert again[0] == value, (cell, value, again)
    assert not [p for p in again[1] if p[1] == "error"]
    assert isinstance(value, str | int | float | dt.date | dt.time)


FILTERED = [spec for spec in SPECS if needs_normalising(spec) is not None]
texts = st.one_of(
    st.text(max_size=120),
    st.from_regex(r"\A[0-9]{16}\Z"),
    st.from_regex(r"\A3[1-6][0-9]{4}[0-7][0-9][01][0-9]{3}[0-9]{4}\Z"),
    st.from_regex(r"\A[A-Za-z][A-Za-z .'-]{0,60}[a-z]\Z"),
)


@pytest.mark.parametrize("spec", FILTERED, ids=lambda s: f"{s.kind}:{s.name}")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column=st.lists(st.one_of(texts, cells), max_size=8))
def test_cells_the_column_filter_passes_are_canonical(spec: FieldSpec, column: list[Any]) -> None:
    """What `needs_normalising` leaves out, the normaliser would have returned unchanged
    and without a problem: skipping it loses nothing."""
    normalise, _ = make_normaliser(spec)
    to_normalise = needs_normalising(spec)
    assert to_normalise is not None
    positions = to_normalise(column)
    assert positions == sorted(set(positions))
    for i, cell in enumerate(column):
        if i not in positions:
            assert normalise(cell) == (cell, ()), cell

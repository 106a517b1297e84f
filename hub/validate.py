"""Validate a chunk of data rows column by column, then apply the cross-field rules row by row.

The common checks run one column at a time: each field's normaliser sees the column's
values, and a cacheable normaliser computes each distinct value once (dates, codes and
regions repeat a lot). Only the rules that relate fields of one row run per row. Every
problem of a row is reported at once; nothing is repaired by guessing.

Checks that need the store (already held, deceased) are the pipeline's, not this module's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from hub.layout import Column, TableLayout, cell_text
from hub.messages import Messages
from hub.normalise import (
    Normaliser,
    Problem,
    Result,
    make_normaliser,
    needs_normalising,
    nik_birth_date,
    split_rt_rw,
)
from hub.records import CellValue, Issue, Provenance, Severity
from hub.schemas import FieldSpec, RecordSchema, SplitSpec

#: Positions of a column's cells that need their normaliser (`hub.normalise.needs_normalising`).
ColumnFilter: TypeAlias = Callable[[Sequence[CellValue]], list[int]]
#: The day in Indonesia's easternmost zone (WIT): a date is "in the future" only after it.
WIT = dt.timezone(dt.timedelta(hours=9))
LEVEL_NAMES = {1: "provinsi", 2: "kabupaten/kota", 3: "kecamatan", 4: "desa/kelurahan"}
KLASIFIKASI_LABELS = {
    1: "dalam satu desa/kelurahan",
    2: "antar desa/kelurahan",
    3: "antar kecamatan",
    4: "antar kabupaten/kota",
    5: "antar provinsi",
}


class RegionLookup(Protocol):
    """What validation needs of the region master (`hub.wilayah.WilayahIndex`)."""

    def level_of(self, kode: str) -> int | None: ...

    def has_kecamatan(self, prefix: str) -> bool: ...


@dataclass(slots=True)
class RowResult:
    """One data row after validation: canonical values of the readable fields, and issues."""

    provenance: Provenance
    values: dict[str, Any]
    issues: list[Issue] = field(default_factory=list)
    error: bool = False

    @property
    def warning(self) -> bool:
        return any(issue.severity == "warning" for issue in self.issues)


def klasifikasi(asal: str, tujuan: str) -> int:
    """Klasifikasi pindah that two desa codes imply: 1 same desa ... 5 other provinsi."""
    if asal == tujuan:
        return 1
    for level, length in ((2, 8), (3, 5), (4, 2)):
        if asal[:length] == tujuan[:length]:
            return level
    return 5


class RecordValidator:
    """Validates rows of one schema.

    ```python
    validator = RecordValidator(schema, regions=index, messages=Messages.load())
    results = validator.validate(layout, rows)
    ```
    `scope` (a desa code, or a kecamatan/kota prefix) fills the reporting region where the
    file has none and marks rows of another region with `wilayah_scope`.
    """

    def __init__(
        self,
        schema: RecordSchema,
        *,
        regions: RegionLookup,
        messages: Messages,
        scope: str | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.schema = schema
        self.regions = regions
        self.messages = messages
        self.scope = scope
        self.today = (today or dt.datetime.now(WIT).date()).isoformat()
        self._normalisers: dict[str, tuple[Normaliser, bool, ColumnFilter | None]] = {}
        for name, spec in schema.fields.items():
            normalise, cacheable = make_normaliser(spec, known_kecamatan=regions.has_kecamatan)
            if spec.kind == "wilayah":
                normalise = self._with_region_check(normalise)
            self._normalisers[name] = (normalise, cacheable, needs_normalising(spec))
        self._nik_regions = frozenset(n for n, spec in schema.fields.items() if spec.kind == "nik")
        rules = schema.rules
        self._not_future = [f for r in rules if r["rule"] == "not_future" for f in r["fields"]]
        self._order = [(r["earlier"], r["later"]) for r in rules if r["rule"] == "order"]
        self._klasifikasi = [r for r in rules if r["rule"] == "klasifikasi"]
        self._nik_checks = [spec for spec in schema.fields.values() if spec.nik]

    # ------------------------------------------------------------------ column checks

    def _with_region_check(
        self, normalise: Callable[[CellValue], Result]
    ) -> Callable[[CellValue], Result]:
        regions = self.regions

        def check(value: CellValue) -> Result:
            code, problems = normalise(value)
            if code is None:
                return code, problems
            level = regions.level_of(code)
            if level is None:
                return None, (("wilayah_unknown", "error", {"value": code}),)
            if level != 4:
                return None, (
                    ("wilayah_level", "error", {"value": code, "level_name": LEVEL_NAMES[level]}),
                )
            return code, problems

        return check

    def _column(
        self, name: str, raw: Sequence[CellValue]
    ) -> tuple[list[Any], dict[int, tuple[Problem, ...]]]:
        """Normalise one column: its values (None where unreadable) and the problems by row.

        Cells a column filter finds already canonical are kept as they are; a cacheable
        normaliser runs once per distinct value; anything else once per cell."""
        normalise, cacheable, to_normalise = self._normalisers[name]
        problems: dict[int, tuple[Problem, ...]] = {}
        if to_normalise is not None:
            values = list(raw)
            positions = to_normalise(raw)
            if name in self._nik_regions:
                positions = self._with_unknown_regions(raw, positions)
            for i in positions:
                value, found = normalise(raw[i])
                values[i] = value
                if found:
                    problems[i] = found
            return values, problems
        if not cacheable:
            results = list(map(normalise, raw))
        elif set(map(type, raw)) <= _TEXT_TYPES:
            # CSV cells (and text-only sheet columns): the values themselves are the keys.
            known = {value: normalise(value) for value in set(raw)}
            values_of = {value: result[0] for value, result in known.items()}
            values = list(map(values_of.__getitem__, raw))
            troubled = {value for value, result in known.items() if result[1]}
            if troubled:
                problems = {i: known[v][1] for i, v in enumerate(raw) if v in troubled}
            return values, problems
        else:
            # Spreadsheet cells of mixed types: 1, 1.0 and True are equal keys, so add the type.
            cache: dict[Any, Result] = {}
            results = []
            for value in raw:
                key = (type(value), value)
                result = cache.get(key)
                if result is None:
                    result = cache[key] = normalise(value)
                results.append(result)
        problems = {i: result[1] for i, result in enumerate(results) if result[1]}
        return [result[0] for result in results], problems

    def _with_unknown_regions(self, raw: Sequence[CellValue], positions: list[int]) -> list[int]:
        """`positions` plus the canonical NIK cells whose first six digits name no known
        kecamatan (the normaliser adds their `nik_region_unknown` warning)."""
        prefixes = {v[:6] for v in raw if type(v) is str}
        unknown = {p for p in prefixes if not self.regions.has_kecamatan(p)}
        if not unknown:
            return positions
        taken = set(positions)
        extra = [
            i for i, v in enumerate(raw) if type(v) is str and v[:6] in unknown and i not in taken
        ]
        return sorted(taken.union(extra))

    def _raw_columns(
        self, layout: TableLayout, rows: Sequence[Any]
    ) -> tuple[dict[str, Sequence[CellValue]], list[tuple[str, Column, Sequence[CellValue]]]]:
        """Each mapped field's raw cells (split columns such as `RT/RW` feed fields without
        their own), and the cells of each second column of a field (`layout.duplicated`):
        where the field's own cell is blank, the second column's cell stands in for it."""
        width = layout.width
        padded = [
            cells if len(cells) >= width else cells + (None,) * (width - len(cells))
            for cells in (row.cells for row in rows)
        ]
        transposed = list(zip(*padded, strict=False)) if padded else []
        columns: dict[str, Sequence[CellValue]] = {
            name: transposed[column.index] for name, column in layout.fields.items()
        }
        for column in layout.splits:
            assert isinstance(column.target, SplitSpec)
            cache: dict[Any, tuple[CellValue, CellValue]] = {}
            parts = []
            for value in transposed[column.index]:
                key = value if type(value) is str else (type(value), value)
                part = cache.get(key)
                if part is None:
                    part = cache[key] = split_rt_rw(value)
                parts.append(part)
            for position, name in enumerate(column.target.fields):
                if name not in columns:
                    columns[name] = [p[position] for p in parts]
        seconds: list[tuple[str, Column, Sequence[CellValue]]] = []
        for column in layout.duplicated:
            if not isinstance(column.target, FieldSpec) or not transposed:
                continue
            name = column.target.name
            if name not in columns:
                continue
            cells = transposed[column.index]
            seconds.append((name, column, cells))
            own = columns[name]
            if any(_blank(a) and not _blank(b) for a, b in zip(own, cells, strict=True)):
                columns[name] = [b if _blank(a) else a for a, b in zip(own, cells, strict=True)]
        return columns, seconds

    def _unlabelled_cell(
        self, result: RowResult, layout: TableLayout, index: int, value: CellValue
    ) -> None:
        """A filled cell in a column without a header (inside the table): not read, and said."""
        label = f"kolom ke-{index + 1} (tanpa judul)"
        params = {"column": label, "record_type": self.schema.record_type}
        column = Column(index, label, None)
        self.issue(result, layout, None, "unknown_column", "warning", params, value, column=column)

    def _conflicts(
        self,
        results: list[RowResult],
        layout: TableLayout,
        seconds: list[tuple[str, Column, Sequence[CellValue]]],
        values: Mapping[str, Sequence[Any]],
    ) -> None:
        """`duplicate_column` on the rows where a field's two columns say different things
        (compared as normalised: "01/05/1943" and "1 Mei 1943" agree)."""
        for name, column, cells in seconds:
            own = values[name]
            theirs, _ = self._column(name, cells)
            for i, (a, b) in enumerate(zip(own, theirs, strict=True)):
                if a is not None and b is not None and a != b:
                    params = {
                        "column": column.label,
                        "other": layout.label_of(name),
                        "detail": DUPLICATE_COLUMN_ROW,
                    }
                    self.issue(
                        results[i], layout, name, "duplicate_column", "error", params,
                        cells[i], column=column,
                    )  # fmt: skip

    # ------------------------------------------------------------------ issues

    def issue(
        self,
        result: RowResult,
        layout: TableLayout | None,
        name: str | None,
        code: str,
        severity: Severity,
        params: Mapping[str, Any],
        raw: CellValue = None,
        column: Column | None = None,
    ) -> None:
        """Add an issue to a row; `column` names another column of the field than its own."""
        spec = self.schema.fields.get(name) if name else None
        label = spec.title if spec else ""
        shown = params.get("value")
        if shown is None and raw is not None:
            shown = cell_text(raw)
        message = self.messages.format(code, label=label, **params)
        prov = result.provenance
        label_shown: str | None
        index: int | None
        if column is not None:
            label_shown, index = column.label, column.index
        elif layout and name:
            label_shown, index = layout.label_of(name), layout.index_of(name)
        else:
            label_shown, index = None, None
        result.issues.append(
            Issue(
                row=prov.row,
                column=label_shown,
                field=name,
                code=code,
                severity=severity,
                message=message,
                value=None if shown is None else str(shown),
                sheet=prov.part,
                col=index,
            )
        )
        if severity == "error":
            result.error = True

    def layout_issues(self, layout: TableLayout) -> list[Issue]:
        """Warnings about the header itself: columns the schema does not know."""
        issues = []
        row = layout.header_rows[-1]
        for column in (*layout.unknown, *layout.duplicated):
            target = column.target
            if isinstance(target, FieldSpec) and target.name in layout.fields:
                code, field_name = "duplicate_column", target.name
                message = self.messages.format(
                    "duplicate_column",
                    column=column.label,
                    label=target.title,
                    other=layout.fields[target.name].label,
                    detail=DUPLICATE_COLUMN_HEADER,
                )
            else:  # unknown, or a second column of a split field (RT/RW): not read
                code, field_name = "unknown_column", None
                message = self.messages.format(
                    "unknown_column", column=column.label, record_type=self.schema.record_type
                )
            issues.append(
                Issue(
                    row,
                    column.label,
                    field_name,
                    code,
                    "warning",
                    message,
                    None,
                    layout.part,
                    column.index,
                )
            )
        return issues

    # ------------------------------------------------------------------ rows

    def validate(self, layout: TableLayout, rows: Sequence[Any]) -> list[RowResult]:
        """Validate data rows (`RawRow`s) of one table."""
        raw_columns, seconds = self._raw_columns(layout, rows)
        read = list(raw_columns)
        normalised = [self._column(name, raw_columns[name]) for name in read]
        # Every field of the schema, None where the file has no column for it or the cell
        # could not be read; one dict per row, built in C.
        by_name = {name: values for name, (values, _) in zip(read, normalised, strict=True)}
        names = list(self.schema.fields)
        value_columns = [by_name.get(name) or [None] * len(rows) for name in names]
        results = [
            RowResult(row.provenance, dict(zip(names, values, strict=True)), [], False)
            for row, values in zip(rows, zip(*value_columns, strict=True), strict=True)
        ]
        errored: list[set[str] | None] = [None] * len(rows)
        for name, (_, problems), raw in zip(read, normalised, raw_columns.values(), strict=True):
            for i in sorted(problems):
                for code, severity, params in problems[i]:
                    self.issue(results[i], layout, name, code, severity, params, raw[i])
                    if severity == "error":
                        errored[i] = (errored[i] or set()) | {name}
        width = layout.width
        unlabelled = _unlabelled(layout)
        for i, row in enumerate(rows):
            for index in unlabelled:
                if index < len(row.cells) and not _blank(row.cells[index]):
                    self._unlabelled_cell(results[i], layout, index, row.cells[index])
            if len(row.cells) > width:
                extra = [c for c in row.cells[width:] if cell_text(c)]
                if extra:
                    self.issue(
                        results[i], layout, None, "extra_cells", "error", {"count": len(extra)}
                    )
        if seconds:
            self._conflicts(results, layout, seconds, by_name)
        self._rules(results, layout, dict(zip(names, value_columns, strict=True)), errored)
        return results

    def _rules(
        self,
        results: list[RowResult],
        layout: TableLayout,
        columns: dict[str, list[Any]],
        errored: list[set[str] | None],
    ) -> None:
        """Cross-field rules, a column at a time: find the few rows that break each rule."""
        schema, today = self.schema, self.today
        missing: list[Any] = [None] * len(results)

        def column(name: str) -> list[Any]:
            return columns.get(name, missing)

        def failed(i: int, name: str) -> bool:
            return name in (errored[i] or NO_ERRORS)

        scope, wilayah_field = self.scope, schema.wilayah_field
        if scope:
            codes = columns.setdefault(wilayah_field, list(missing))
            for i in [i for i, code in enumerate(codes) if code != scope]:
                code = codes[i]
                if code is None:
                    if len(scope) == 13 and not failed(i, wilayah_field):
                        results[i].values[wilayah_field] = codes[i] = scope
                elif not code.startswith(scope + "."):
                    params = {"value": code, "scope": scope}
                    self.issue(results[i], layout, wilayah_field, "wilayah_scope", "error", params)
        for name in schema.required:
            for i in [i for i, value in enumerate(column(name)) if value is None]:
                if not failed(i, name):
                    self.issue(results[i], layout, name, "required", "error", OK_PARAMS)
        for name in self._not_future:
            values = column(name)
            for i in [i for i, v in enumerate(values) if v is not None and v > today]:
                self.issue(results[i], layout, name, "date_future", "error", {"value": values[i]})
        for earlier_name, later_name in self._order:
            pairs = zip(column(earlier_name), column(later_name), strict=True)
            for i in [
                i for i, (a, b) in enumerate(pairs) if a is not None and b is not None and b < a
            ]:
                params = {
                    "value": columns[later_name][i],
                    "other": columns[earlier_name][i],
                    "other_label": schema.fields[earlier_name].title,
                }
                self.issue(results[i], layout, later_name, "date_order", "error", params)
        for rule in self._klasifikasi:
            for result in results:
                self._klasifikasi_rule(result, layout, rule)
        for spec in self._nik_checks:
            niks = column(spec.name)
            gender_field = spec.nik.get("gender_field")
            fixed = spec.nik.get("gender")
            if fixed or gender_field:
                expected = [fixed] * len(niks) if fixed else column(gender_field or "")
                for i in [
                    i
                    for i, (nik, want) in enumerate(zip(niks, expected, strict=True))
                    if nik is not None
                    and want in GENDER_NAMES
                    and (nik[6] in "4567") != (want == "P")
                ]:
                    self._gender_mismatch(results[i], layout, spec, niks[i], expected[i])
            birth_field = spec.nik.get("birthdate_field")
            if birth_field:
                births = column(birth_field)
                for i in [
                    i
                    for i, (nik, born) in enumerate(zip(niks, births, strict=True))
                    if nik is not None and born is not None and _nik_date(nik) != _iso_ddmmyy(born)
                ]:
                    self._birthdate_mismatch(results[i], layout, spec, niks[i], births[i])

    def _klasifikasi_rule(
        self, result: RowResult, layout: TableLayout | None, rule: Mapping[str, str]
    ) -> None:
        values = result.values
        asal, tujuan = values.get(rule["asal"]), values.get(rule["tujuan"])
        if asal is None or tujuan is None:
            return
        expected = klasifikasi(asal, tujuan)
        stated = values.get(rule["field"])
        if stated is None:
            values[rule["field"]] = expected
        elif stated != expected:
            self.issue(
                result,
                layout,
                rule["field"],
                "klasifikasi_mismatch",
                "error",
                {
                    "value": stated,
                    "expected": expected,
                    "expected_label": KLASIFIKASI_LABELS[expected],
                },
            )

    def _gender_mismatch(
        self, result: RowResult, layout: TableLayout, spec: FieldSpec, nik: str, expected: str
    ) -> None:
        params = {
            "value": nik,
            "nik_gender": GENDER_NAMES["P" if nik[6] in "4567" else "L"],
            "expected_gender": GENDER_NAMES[expected],
        }
        self.issue(result, layout, spec.name, "nik_gender_mismatch", "warning", params)

    def _birthdate_mismatch(
        self, result: RowResult, layout: TableLayout, spec: FieldSpec, nik: str, stated: str
    ) -> None:
        birth, _ = nik_birth_date(nik, dt.date.fromisoformat(self.today))
        birth_field = spec.nik["birthdate_field"]
        params = {
            "value": nik,
            "nik_date": birth.strftime("%d-%m-%Y") if birth else nik[6:12],
            "other": f"{stated[8:10]}-{stated[5:7]}-{stated[:4]}",
            "other_label": self.schema.fields[birth_field].title,
        }
        self.issue(result, layout, spec.name, "nik_birthdate_mismatch", "warning", params)


def _nik_date(nik: str) -> str:
    """DDMMYY of the holder's birth in a NIK (women's day minus 40)."""
    day = int(nik[6:8])
    return f"{day - 40 if day > 40 else day:02d}{nik[8:12]}"


def _iso_ddmmyy(date: str) -> str:
    return date[8:10] + date[5:7] + date[2:4]


def _unlabelled(layout: TableLayout) -> list[int]:
    """Columns inside the table that have no header (their cells map to nothing)."""
    labelled = {column.index for column in layout.columns}
    return [i for i in range(layout.width) if i not in labelled]


def _blank(value: CellValue) -> bool:
    return value is None or (type(value) is str and not value.strip())


_TEXT_TYPES = frozenset({str, type(None)})
#: The `detail` of `duplicate_column` on the header row, and on a row where the columns differ.
DUPLICATE_COLUMN_HEADER = "; isi kedua kolom dibandingkan di setiap baris"
DUPLICATE_COLUMN_ROW = (
    ", tetapi isinya berbeda di baris ini. Hapus salah satu kolom atau samakan isinya, "
    "lalu unggah ulang"
)
GENDER_NAMES: Mapping[str, str] = {"L": "laki-laki", "P": "perempuan"}
NO_ERRORS: frozenset[str] = frozenset()
OK_PARAMS: Mapping[str, Any] = {}

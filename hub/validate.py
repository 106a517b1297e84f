"""Validate a chunk of data rows column by column, then apply the cross-field rules row by row.

The common checks run one column at a time: each field's normaliser sees the column's
values, and a cacheable normaliser computes each distinct value once (dates, codes and
regions repeat a lot). Only the rules that relate fields of one row run per row. Every
problem of a row is reported at once; nothing is repaired by guessing.

Checks that need the store (already held, deceased) are the pipeline's, not this module's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.layout import TableLayout, cell_text
from hub.messages import Messages
from hub.normalise import Result, make_normaliser, nik_birth_date, split_rt_rw
from hub.records import CellValue, Issue, Provenance, Severity
from hub.schemas import FieldSpec, RecordSchema, SplitSpec

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
        self._normalisers: dict[str, tuple[Callable[[CellValue], Result], bool]] = {}
        for name, spec in schema.fields.items():
            normalise, cacheable = make_normaliser(spec, known_kecamatan=regions.has_kecamatan)
            if spec.kind == "wilayah":
                normalise = self._with_region_check(normalise)
            self._normalisers[name] = (normalise, cacheable)
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

    def _column(self, name: str, raw: Sequence[CellValue]) -> list[Result]:
        normalise, cacheable = self._normalisers[name]
        if not cacheable:
            return [normalise(v) for v in raw]
        cache: dict[Any, Result] = {}
        out: list[Result] = []
        append = out.append
        for value in raw:
            key = value if type(value) is str else (type(value), value)
            result = cache.get(key)
            if result is None:
                result = cache[key] = normalise(value)
            append(result)
        return out

    def _raw_columns(
        self, layout: TableLayout, rows: Sequence[Any]
    ) -> dict[str, Sequence[CellValue]]:
        """Each mapped field's raw cells; split columns (`RT/RW`) feed fields without their own."""
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
        return columns

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
    ) -> None:
        spec = self.schema.fields.get(name) if name else None
        label = spec.title if spec else ""
        shown = params.get("value")
        if shown is None and raw is not None:
            shown = cell_text(raw)
        message = self.messages.format(code, label=label, **params)
        prov = result.provenance
        result.issues.append(
            Issue(
                row=prov.row,
                column=layout.label_of(name) if (layout and name) else None,
                field=name,
                code=code,
                severity=severity,
                message=message,
                value=None if shown is None else str(shown),
                sheet=prov.part,
                col=layout.index_of(name) if (layout and name) else None,
            )
        )
        if severity == "error":
            result.error = True

    def layout_issues(self, layout: TableLayout) -> list[Issue]:
        """Warnings about the header itself: columns the schema does not know."""
        issues = []
        row = layout.header_rows[-1]
        for column in (*layout.unknown, *layout.duplicated):
            message = self.messages.format(
                "unknown_column", column=column.label, record_type=self.schema.record_type
            )
            issues.append(
                Issue(
                    row,
                    column.label,
                    None,
                    "unknown_column",
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
        results = [RowResult(row.provenance, {}, [], False) for row in rows]
        raw_columns = self._raw_columns(layout, rows)
        errored: list[set[str] | None] = [None] * len(rows)
        for name, raw in raw_columns.items():
            for i, (value, problems) in enumerate(self._column(name, raw)):
                if value is not None:
                    results[i].values[name] = value
                if not problems:
                    continue
                for code, severity, params in problems:
                    self.issue(results[i], layout, name, code, severity, params, raw[i])
                    if severity == "error":
                        errored[i] = (errored[i] or set()) | {name}
        width = layout.width
        for i, row in enumerate(rows):
            if len(row.cells) > width:
                extra = [c for c in row.cells[width:] if cell_text(c)]
                if extra:
                    self.issue(
                        results[i], layout, None, "extra_cells", "error", {"count": len(extra)}
                    )
        for result, failed in zip(results, errored, strict=True):
            self._row_rules(result, layout, failed or NO_ERRORS)
        return results

    def validate_values(self, data: Mapping[str, CellValue], provenance: Provenance) -> RowResult:
        """Validate one record given as field -> value (an API request, a database row)."""
        result = RowResult(provenance, {})
        errored: set[str] = set()
        for name, raw in data.items():
            if name not in self.schema.fields:
                continue
            value, problems = self._normalisers[name][0](raw)
            if value is not None:
                result.values[name] = value
            for code, severity, params in problems:
                self.issue(result, None, name, code, severity, params, raw)
                if severity == "error":
                    errored.add(name)
        self._row_rules(result, None, errored)
        return result

    def _row_rules(self, result: RowResult, layout: TableLayout | None, errored: Set[str]) -> None:
        schema, values = self.schema, result.values
        wilayah_field = schema.wilayah_field
        if self.scope:
            current = values.get(wilayah_field)
            if current is None and wilayah_field not in errored and len(self.scope) == 13:
                values[wilayah_field] = current = self.scope
            if current is not None and not (
                current == self.scope or current.startswith(self.scope + ".")
            ):
                self.issue(
                    result,
                    layout,
                    wilayah_field,
                    "wilayah_scope",
                    "error",
                    {"value": current, "scope": self.scope},
                )
        for name in schema.required:
            if name not in values and name not in errored:
                self.issue(result, layout, name, "required", "error", OK_PARAMS)
        today = self.today
        for name in self._not_future:
            value = values.get(name)
            if value is not None and value > today:
                self.issue(result, layout, name, "date_future", "error", {"value": value})
        for earlier_name, later_name in self._order:
            earlier, later = values.get(earlier_name), values.get(later_name)
            if earlier is not None and later is not None and later < earlier:
                params = {
                    "value": later,
                    "other": earlier,
                    "other_label": schema.fields[earlier_name].title,
                }
                self.issue(result, layout, later_name, "date_order", "error", params)
        for rule in self._klasifikasi:
            self._klasifikasi_rule(result, layout, rule)
        for spec in self._nik_checks:
            nik = values.get(spec.name)
            if nik is not None:
                self._nik_rules(result, layout, spec, nik)

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

    def _nik_rules(
        self, result: RowResult, layout: TableLayout | None, spec: FieldSpec, nik: str
    ) -> None:
        """What a valid NIK says about its holder, checked against the rest of the row."""
        values = result.values
        gender = "P" if nik[6] in "4567" else "L"
        expected = spec.nik.get("gender") or values.get(spec.nik.get("gender_field", ""))
        if isinstance(expected, str) and expected in GENDER_NAMES and expected != gender:
            params = {
                "value": nik,
                "nik_gender": GENDER_NAMES[gender],
                "expected_gender": GENDER_NAMES[expected],
            }
            self.issue(result, layout, spec.name, "nik_gender_mismatch", "warning", params)
        birth_field = spec.nik.get("birthdate_field")
        stated = values.get(birth_field) if birth_field else None
        if stated is None or birth_field is None:
            return
        day = int(nik[6:8])
        nik_ddmmyy = f"{day - 40 if day > 40 else day:02d}{nik[8:12]}"
        if nik_ddmmyy != stated[8:10] + stated[5:7] + stated[2:4]:
            birth, _ = nik_birth_date(nik, dt.date.fromisoformat(self.today))
            params = {
                "value": nik,
                "nik_date": birth.strftime("%d-%m-%Y") if birth else nik[6:12],
                "other": f"{stated[8:10]}-{stated[5:7]}-{stated[:4]}",
                "other_label": self.schema.fields[birth_field].title,
            }
            self.issue(result, layout, spec.name, "nik_birthdate_mismatch", "warning", params)


GENDER_NAMES: Mapping[str, str] = {"L": "laki-laki", "P": "perempuan"}
NO_ERRORS: frozenset[str] = frozenset()
OK_PARAMS: Mapping[str, Any] = {}

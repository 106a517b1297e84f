"""Normalisers: one raw cell in, one canonical value (or problems) out.

Each normaliser is built once per field from its `FieldSpec` and called for every cell of
that field. It never guesses: a value that cannot be read exactly comes back as `None` with
an error problem whose message tells the operator what to do. Results of cacheable
normalisers depend only on the raw value, so the validator computes them once per distinct
value (dates, codes and regions repeat a lot within a file).

A problem is `(code, severity, params)`; `params` fill the message template of `code`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final, TypeAlias

from hub.records import CellValue, Severity
from hub.schemas import FieldSpec, squeeze
from hub.wilayah import WilayahIndex

Problem: TypeAlias = tuple[str, Severity, Mapping[str, Any]]
Result: TypeAlias = tuple[Any, tuple[Problem, ...]]
Normaliser: TypeAlias = Callable[[CellValue], Result]

BLANKS: Final = frozenset({"", "-", "--", "null", "none", "n/a", "na", "#n/a", "nil", "."})
_LONGEST_BLANK: Final = max(map(len, BLANKS))
_INVISIBLE = re.compile("[\u00a0\u2007\u202f\u200b\u200c\u200d\u2060\ufeff]")
_SPACES = re.compile(r"\s+")
OK: Final[tuple[Problem, ...]] = ()


def _problem(code: str, severity: Severity = "error", **params: Any) -> tuple[Problem, ...]:
    return ((code, severity, params),)


def clean_text(value: CellValue) -> str | None:
    """Text as a person reads it: invisible spaces removed, runs of spaces collapsed.

    Blank markers (`-`, `NULL`, `n/a`, ...) become None. Numbers from spreadsheet cells are
    written without a spurious `.0`.
    """
    if type(value) is str:
        text = value
    elif value is None:
        return None
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value)
    if not text.isascii() or "  " in text or "\t" in text or "\n" in text or "\r" in text:
        text = _SPACES.sub(" ", _INVISIBLE.sub(" ", text))
    text = text.strip()
    if len(text) <= _LONGEST_BLANK and text.casefold() in BLANKS:
        return None
    return text


# ---------------------------------------------------------------------------------- NIK, KK

PROVINCES: Final = frozenset(
    [*range(11, 20), 21, *range(31, 37), *range(51, 54), *range(61, 66), *range(71, 77), 81, 82]
    + list(range(91, 97))
)
_NIK_STRIP = re.compile(r"[\s.\-'\u00a0\u200b\u200c\u200d\u2060\ufeff`]")
_SCIENTIFIC = re.compile(r"^[0-9](?:[.,][0-9]+)?[eE][+]?[0-9]+$")
_NUMERIC_TEXT = re.compile("([0-9]{15,16})[.]0+").fullmatch
_DAYS_IN_MONTH: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _digits_from_cell(value: CellValue) -> tuple[str | None, bool, str, tuple[Problem, ...]]:
    """A 16-digit identifier's text, whether it came from a numeric cell, and the cell as
    the operator typed it (what a message shows).

    The text of a numeric cell, 15 or 16 digits and a zero fraction (`3273010306440003.0`,
    as exports of numeric cells write it), counts as that numeric cell; any other dot is a
    separator and dropped with the spaces.
    """
    if isinstance(value, bool):
        return (
            None,
            False,
            str(value),
            _problem("type", expected="angka 16 digit", value=str(value)),
        )
    if isinstance(value, int):
        return str(value), True, str(value), OK
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return (
                None,
                True,
                repr(value),
                _problem("nik_format", value=repr(value), detail="bukan bilangan bulat"),
            )
        return str(int(value)), True, str(int(value)), OK
    text = clean_text(value)
    if text is None:
        return None, False, "", OK
    if _SCIENTIFIC.match(text):
        return None, False, text, _problem("nik_scientific", value=text)
    numeric = _NUMERIC_TEXT(text)
    if numeric is not None:
        return numeric[1], True, text, OK
    return _NIK_STRIP.sub("", text), False, text, OK


def _check_nik_digits(digits: str, *, kk: bool) -> str | None:
    """Why a cleaned cell is not a NIK (or KK number); None when it is.

    Anything but ASCII digits is named as such whatever the length: `Halaman1dari2` is not
    "13 digit".
    """
    if not digits:
        return "tidak berisi angka"
    if not (digits.isascii() and digits.isdigit()):
        return "mengandung karakter selain angka"
    if len(digits) != 16:
        return f"{len(digits)} digit, seharusnya 16"
    if int(digits[:2]) not in PROVINCES:
        return f"kode provinsi {digits[:2]} tidak ada"
    day, month, year = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    if not kk and day > 40:
        day -= 40
    if not 1 <= month <= 12:
        return f"bulan {digits[8:10]} tidak ada"
    limit = _DAYS_IN_MONTH[month] if month != 2 or year % 4 == 0 else 28
    if not 1 <= day <= limit:
        return f"tanggal {digits[6:8]} tidak ada pada bulan {month}"
    if digits[12:] == "0000":
        return "nomor urut 0000"
    return None


def nik_birth_date(nik: str, reference: dt.date) -> tuple[dt.date | None, str]:
    """Birth date and gender (`L`/`P`) encoded in a valid NIK; century from `reference`."""
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    gender = "P" if day > 40 else "L"
    day = day - 40 if day > 40 else day
    year = 2000 + yy if 2000 + yy <= reference.year else 1900 + yy
    try:
        return dt.date(year, month, day), gender
    except ValueError:
        return None, gender


def _valid_day_months(*, women: bool) -> frozenset[str]:
    """Every `DDMM` a NIK (women: day + 40) or a KK registration date may carry."""
    found = set()
    for month in range(1, 13):
        for day in range(1, _DAYS_IN_MONTH[month] + 1):
            found.add(f"{day:02d}{month:02d}")
            if women:
                found.add(f"{day + 40:02d}{month:02d}")
    return frozenset(found)


_PROVINCE_TEXT: Final = frozenset(f"{p:02d}" for p in PROVINCES)
_NIK_DAY_MONTHS: Final = _valid_day_months(women=True)
_KK_DAY_MONTHS: Final = _valid_day_months(women=False)
_LEAP_DAYS: Final = frozenset({"2902", "6902"})


def _is_valid_identifier(digits: str, day_months: frozenset[str]) -> bool:
    """The common case in one expression; `_check_nik_digits` explains a failure."""
    return (
        len(digits) == 16
        and digits.isascii()
        and digits.isdigit()
        and digits[:2] in _PROVINCE_TEXT
        and digits[6:10] in day_months
        and digits[12:] != "0000"
        and (digits[6:10] not in _LEAP_DAYS or int(digits[10:12]) % 4 == 0)
    )


def make_nik(
    spec: FieldSpec, *, kk: bool = False, known_kecamatan: Callable[[str], bool] | None = None
) -> Normaliser:
    """NIK (or No. KK with `kk=True`): cleaned, checked, never repaired.

    With `known_kecamatan`, a valid NIK whose first six digits name no current kecamatan
    gets the warning `nik_region_unknown` (old codes stay valid).
    """
    code = "kk_format" if kk else "nik_format"
    day_months = _KK_DAY_MONTHS if kk else _NIK_DAY_MONTHS

    def region_warning(nik: str) -> tuple[Problem, ...]:
        if known_kecamatan is None or known_kecamatan(nik[:6]):
            return OK
        return _problem("nik_region_unknown", "warning", prefix=f"{nik[:2]}.{nik[2:4]}.{nik[4:6]}")

    def normalise(value: CellValue) -> Result:
        if type(value) is str and _is_valid_identifier(value, day_months):
            return value, region_warning(value)  # the common case: already clean
        digits, numeric, shown, problems = _digits_from_cell(value)
        if digits is None:
            if problems and problems[0][0] == "nik_scientific" and kk:
                return None, _problem(
                    "kk_format",
                    value=str(value),
                    detail="tertulis dalam notasi ilmiah; format kolom sebagai Teks, ketik ulang",
                )
            if problems and problems[0][0] == "nik_format":
                return None, _problem(code, **problems[0][2])
            return None, problems
        warning = _problem("nik_numeric_cell", "warning", value=shown) if numeric else OK
        if not _is_valid_identifier(digits, day_months):
            why = _check_nik_digits(digits, kk=kk) or "tidak sesuai format"
            return None, _problem(code, value=shown, detail=why) + warning
        return digits, warning + region_warning(digits)

    return normalise


# ---------------------------------------------------------------------------------- dates

MONTHS: Final[Mapping[str, int]] = {
    **dict.fromkeys(["januari", "jan", "january"], 1),
    **dict.fromkeys(["februari", "pebruari", "feb", "peb", "february"], 2),
    **dict.fromkeys(["maret", "mar", "march"], 3),
    **dict.fromkeys(["april", "apr"], 4),
    **dict.fromkeys(["mei", "may"], 5),
    **dict.fromkeys(["juni", "jun", "june"], 6),
    **dict.fromkeys(["juli", "jul", "july"], 7),
    **dict.fromkeys(["agustus", "agu", "agt", "ags", "agst", "aug", "august"], 8),
    **dict.fromkeys(["september", "sep", "sept"], 9),
    **dict.fromkeys(["oktober", "okt", "oct", "october"], 10),
    **dict.fromkeys(["november", "nopember", "nov", "nop"], 11),
    **dict.fromkeys(["desember", "des", "dec", "december"], 12),
}
_CLOCK = r"(?:[ T]\d{1,2}[:.]\d{2}(?:[:.]\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_NUMERIC_DATE = re.compile(
    r"^(\d{1,2})\s*[/\-.]\s*(\d{1,2})\s*[/\-.]\s*(\d{2}|\d{4})" + _CLOCK + "$"
)
_ISO_DATE = re.compile(r"^(\d{4})[/\-.](\d{1,2})[/\-.](\d{1,2})" + _CLOCK + "$")
_NAMED_DATE = re.compile(r"^(\d{1,2})[\s\-/.,]*([a-z]+)\.?[\s\-/.,]*(\d{2}|\d{4})$")
_WEEKDAY = re.compile(r"^(senin|selasa|rabu|kamis|jumat|jum'at|sabtu|minggu|ahad)\s*,?\s*")
_SERIAL = re.compile(r"^\d{4,5}(?:\.0+)?$")
EXCEL_EPOCH: Final = dt.date(1899, 12, 30)
MIN_YEAR, MAX_YEAR = 1900, 2100


def _from_serial(serial: float) -> Result:
    # A huge number, infinity or NaN is no day either (timedelta would overflow).
    date = None
    if math.isfinite(serial) and 0 <= serial < _MAX_SERIAL:
        date = EXCEL_EPOCH + dt.timedelta(days=int(serial))  # the whole part is the day
    if date is None or not MIN_YEAR <= date.year <= MAX_YEAR:
        return None, _problem(
            "date_invalid",
            value=f"{serial:g}",
            detail="Angka ini bukan tanggal Excel yang masuk akal.",
        )
    return date.isoformat(), OK


_MAX_SERIAL: Final = 2_958_466  # 9999-12-31 in Excel's calendar


def _build_date(year: int, month: int, day: int, shown: str) -> Result:
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None, _problem(
            "date_invalid",
            value=shown,
            detail=f"Tahun {year} di luar rentang {MIN_YEAR}-{MAX_YEAR}.",
        )
    try:
        return dt.date(year, month, day).isoformat(), OK
    except ValueError:
        return None, _problem(
            "date_invalid", value=shown, detail="Tanggal atau bulan tidak ada di kalender."
        )


def normalise_date(value: CellValue) -> Result:
    """Any date form of DOMAIN.md to ISO `YYYY-MM-DD`; day first, never month first."""
    if isinstance(value, dt.date):  # a date or date-time cell: the same years as text
        held = value.date() if isinstance(value, dt.datetime) else value
        return _build_date(held.year, held.month, held.day, held.strftime("%d/%m/%Y"))
    if isinstance(value, bool) or isinstance(value, dt.time | dt.timedelta):
        return None, _problem("date_invalid", value=str(value), detail="Isi sel bukan tanggal.")
    if isinstance(value, int | float):
        return _from_serial(float(value))
    text = clean_text(value)
    if text is None:
        return None, OK
    lowered = _WEEKDAY.sub("", text.casefold())
    if match := _NUMERIC_DATE.match(lowered):
        day, month, year = match.groups()
        if len(year) == 2:
            return None, _problem(
                "date_invalid",
                value=text,
                detail="Tulis tahun dengan 4 angka, misalnya 17/08/2025.",
            )
        return _build_date(int(year), int(month), int(day), text)
    if match := _ISO_DATE.match(lowered):
        year, month, day = match.groups()
        return _build_date(int(year), int(month), int(day), text)
    if match := _NAMED_DATE.match(lowered):
        day, name, year = match.groups()
        month_number = MONTHS.get(name)
        if month_number is None:
            return None, _problem(
                "date_invalid", value=text, detail=f'Nama bulan "{name}" tidak dikenal.'
            )
        if len(year) == 2:
            return None, _problem(
                "date_invalid",
                value=text,
                detail="Tulis tahun dengan 4 angka, misalnya 17 Agustus 2025.",
            )
        return _build_date(int(year), month_number, int(day), text)
    if _SERIAL.match(lowered):
        return _from_serial(float(lowered))
    return None, _problem(
        "date_invalid",
        value=text,
        detail="Gunakan format hari/bulan/tahun, misalnya 17/08/2025 atau 17 Agustus 2025.",
    )


_TIME = re.compile(r"^(\d{1,2})\s*[:.]\s*(\d{2})(?:\s*[:.]\s*(\d{2}))?$")
_TIME_COMPACT = re.compile(r"^(\d{2})(\d{2})$")
_TIME_ZONE = re.compile(r"\s*(wib|wita|wit)$")


def normalise_time(value: CellValue) -> Result:
    """Times as `HH:MM`: `08.30`, `8:30`, `08:30:00`, `0830 WIB`, Excel time cells."""
    if isinstance(value, dt.datetime):
        return value.strftime("%H:%M"), OK
    if isinstance(value, dt.time):
        return value.strftime("%H:%M"), OK
    if isinstance(value, dt.timedelta):
        minutes = round(value.total_seconds() / 60)
        if 0 <= minutes < 24 * 60:
            return f"{minutes // 60:02d}:{minutes % 60:02d}", OK
        return None, _problem("time_invalid", value=str(value))
    if isinstance(value, float) and 0 <= value < 1:
        minutes = round(value * 24 * 60)
        if minutes < 24 * 60:
            return f"{minutes // 60:02d}:{minutes % 60:02d}", OK
    text = clean_text(value)
    if text is None:
        return None, OK
    stripped = _TIME_ZONE.sub("", text.casefold())
    match = _TIME.match(stripped) or _TIME_COMPACT.match(stripped)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour < 24 and minute < 60:
            return f"{hour:02d}:{minute:02d}", OK
    return None, _problem("time_invalid", value=text)


# ---------------------------------------------------------------------------------- numbers

_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:\.\d{3})+$")


def _parse_number(text: str) -> float | None:
    """`3,2` and `3.2` are 3.2; `3.200` (dot before exactly three digits) is 3200."""
    compact = text.replace(" ", "")
    if _THOUSANDS.match(compact):
        return float(compact.replace(".", ""))
    if _NUMBER.match(compact):
        return float(compact.replace(",", "."))
    return None


def _in_range(spec: FieldSpec, number: float, shown: str) -> tuple[Problem, ...]:
    low, high = spec.minimum, spec.maximum
    if (low is not None and number < low) or (high is not None and number > high):
        return _problem("range", value=shown, min=_fmt(low), max=_fmt(high))
    return OK


def _fmt(number: float | None) -> str:
    if number is None:
        return "-"
    return str(int(number)) if float(number).is_integer() else str(number)


def make_integer(spec: FieldSpec) -> Normaliser:
    def normalise(value: CellValue) -> Result:
        if isinstance(value, bool):
            return None, _problem("type", expected="bilangan bulat", value=str(value))
        if isinstance(value, int | float):
            number: float | None = float(value)
        else:
            text = clean_text(value)
            if text is None:
                return None, OK
            number = _parse_number(text)
        if number is None or not number.is_integer():
            return None, _problem("type", expected="bilangan bulat", value=str(value).strip())
        return int(number), _in_range(spec, number, _fmt(number))

    return normalise


_WEIGHT = re.compile(r"^(?P<number>[0-9][0-9.,\s]*?)\s*(?P<unit>kg|kilo|kilogram|g|gr|gram)?\.?$")
_LENGTH = re.compile(r"^(?P<number>[0-9][0-9.,]*?)\s*(?P<unit>cm|centimeter|sentimeter)?\.?$")
_KILOGRAMS = frozenset({"kg", "kilo", "kilogram"})


def _read_measure(
    value: CellValue, pattern: re.Pattern[str], expected: str
) -> tuple[float, str | None, str] | Result:
    """(number, unit, text shown) of a measurement cell, or the Result to return as is."""
    if isinstance(value, bool):
        return None, _problem("type", expected=expected, value=str(value))
    if isinstance(value, int | float):
        if not math.isfinite(value):  # infinity or NaN: no measurement (round() would raise)
            return None, _problem("type", expected=expected, value=str(value))
        return float(value), None, _fmt(float(value))
    text = clean_text(value)
    if text is None:
        return None, OK
    match = pattern.match(text.casefold())
    number = _parse_number(match["number"].strip()) if match else None
    if match is None or number is None or not math.isfinite(number):
        return None, _problem("type", expected=expected, value=text)
    return number, match["unit"], text


def make_grams(spec: FieldSpec) -> Normaliser:
    """Birth weight in grams: `3200`, `3.200`, `3,2 kg`, `3.2` (a number under 10 is kg)."""

    def normalise(value: CellValue) -> Result:
        read = _read_measure(value, _WEIGHT, "berat dalam gram (contoh 3200 atau 3,2 kg)")
        if len(read) == 2:
            return read
        number, unit, shown = read
        if unit in _KILOGRAMS or (unit is None and number < 10):
            number *= 1000
        if not math.isfinite(number):  # kilograms beyond a float: out of any range
            low, high = _fmt(spec.minimum), _fmt(spec.maximum)
            return None, _problem("range", value=shown, min=low, max=high)
        grams = round(number)
        return grams, _in_range(spec, grams, shown)

    return normalise


def make_cm(spec: FieldSpec) -> Normaliser:
    """Length in centimetres: `50`, `49,5`, `50 cm`."""

    def normalise(value: CellValue) -> Result:
        read = _read_measure(value, _LENGTH, "panjang dalam cm (contoh 50 atau 49,5)")
        if len(read) == 2:
            return read
        number, _, shown = read
        canonical: float | int = int(number) if number.is_integer() else round(number, 1)
        return canonical, _in_range(spec, number, shown)

    return normalise


_RT = re.compile(r"^(?:rt|rw)?\.?\s*0*(\d{1,3})(?:\.0+)?$")


def normalise_rt(value: CellValue) -> Result:
    """RT/RW as three digits: `3` -> `003`, `8.0` -> `008`, `RT 05` -> `005`."""
    if isinstance(value, bool):
        return None, _problem("type", expected="nomor RT/RW (1-3 angka)", value=str(value))
    text = clean_text(value)
    if text is None:
        return None, OK
    match = _RT.match(text.casefold())
    if match is None:
        return None, _problem("type", expected="nomor RT/RW (1-3 angka)", value=text)
    number = int(match.group(1))
    if number == 0:
        return None, _problem("range", value=text, min="1", max="999")
    return f"{number:03d}", OK


def split_rt_rw(value: CellValue) -> tuple[CellValue, CellValue]:
    """One `RT/RW` cell (`003/001`, `3 / 1`, `RT 3 RW 1`) into its two parts."""
    text = clean_text(value)
    if text is None:
        return None, None
    parts = [p for p in re.split(r"[/\\\-|,;]|\s+rw\s*", text.casefold()) if p.strip()]
    if len(parts) == 2:
        return parts[0].strip(), parts[1].strip()
    return text, None


# ---------------------------------------------------------------------------------- codes, text


def make_code(spec: FieldSpec) -> Normaliser:
    allowed = ", ".join(_describe_code(spec, code) for code in spec.enum)

    def normalise(value: CellValue) -> Result:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = clean_text(value)
        if text is None:
            return None, OK
        code = spec.labels.get(squeeze(text))
        if code is None:
            return None, _problem("enum", value=text, allowed=allowed)
        return code, OK

    return normalise


def _describe_code(spec: FieldSpec, code: Any) -> str:
    """`2 (Bidan/Perawat)`: the code with its first label that is not a number."""
    labels = spec.schema.get("x-labels", {}).get(str(code), ())
    words = [label for label in labels if not label.isdigit()]
    return f"{code} ({words[0]})" if words and words[0] != str(code) else str(code)


def make_text(spec: FieldSpec) -> Normaliser:
    limit = spec.max_length

    def normalise(value: CellValue) -> Result:
        if type(value) is not str and isinstance(value, dt.datetime | dt.date | dt.time):
            return None, _problem("type", expected="teks", value=str(value))
        text = clean_text(value)
        if text is None:
            return None, OK
        if limit is not None and len(text) > limit:
            return None, _problem("too_long", length=len(text), max=limit, value=text[:40] + "…")
        return text, OK

    return normalise


def make_normaliser(
    spec: FieldSpec, *, known_kecamatan: Callable[[str], bool] | None = None
) -> tuple[Normaliser, bool]:
    """The normaliser for a field and whether its results may be cached by raw value."""
    kind = spec.kind
    if kind == "nik":
        return make_nik(spec, known_kecamatan=known_kecamatan), False
    if kind == "kk":
        return make_nik(spec, kk=True), False
    if kind == "date":
        return normalise_date, True
    if kind == "time":
        return normalise_time, True
    if kind == "code":
        return make_code(spec), True
    if kind == "integer":
        return make_integer(spec), True
    if kind == "grams":
        return make_grams(spec), True
    if kind == "cm":
        return make_cm(spec), True
    if kind == "rt":
        return normalise_rt, True
    if kind == "wilayah":
        return normalise_wilayah_text, True
    if kind == "name":
        return make_text(spec), False
    return make_text(spec), True


def needs_normalising(spec: FieldSpec) -> Callable[[Sequence[CellValue]], list[int]] | None:
    """For a column of `spec`, the positions of the cells that are not already canonical.

    A cell it leaves out normalises to itself with no problem (a NIK may still earn
    `nik_region_unknown`, which the validator checks apart). The validator sends only the
    positions it returns through the field's normaliser: the common, clean case of the
    columns that hardly repeat (NIK, KK, names, addresses) costs no Python call per cell.
    None for kinds that repeat enough to be cached by value instead.
    """
    if spec.kind in {"nik", "kk"}:
        day_months = (_KK_DAY_MONTHS if spec.kind == "kk" else _NIK_DAY_MONTHS) - _LEAP_DAYS
        return partial(_identifiers_to_normalise, day_months)
    if spec.kind in {"name", "text"}:
        limit = spec.max_length if spec.max_length is not None else _TEXT_LIMIT
        return partial(_texts_to_normalise, limit)
    return None


def _identifiers_to_normalise(day_months: frozenset[str], column: Sequence[CellValue]) -> list[int]:
    """Cells that are not 16 ASCII digits with a province, a valid DDMM (leap days go to the
    normaliser) and a serial other than 0000: what `_is_valid_identifier` accepts."""
    digits16, provinces = _DIGITS16, _PROVINCE_TEXT
    return [
        i
        for i, v in enumerate(column)
        if type(v) is not str
        or digits16(v) is None
        or v[:2] not in provinces
        or v[6:10] not in day_months
        or v[12:] == "0000"
    ]


def _texts_to_normalise(limit: int, column: Sequence[CellValue]) -> list[int]:
    """Cells that are not printable ASCII without doubled, leading or trailing spaces, longer
    than any blank marker ("-", "null", "n/a") and within `limit`: what `clean_text` keeps."""
    shortest = _LONGEST_BLANK
    return [
        i
        for i, v in enumerate(column)
        if type(v) is not str
        or not shortest < len(v) <= limit
        or not v.isascii()
        or not v.isprintable()
        or "  " in v
        or v[0] == " "
        or v[-1] == " "
    ]


_DIGITS16: Final = re.compile("[0-9]{16}").fullmatch
_TEXT_LIMIT: Final = 1 << 30


def normalise_wilayah_text(value: CellValue) -> Result:
    """A region code to dotted form (`3273011001`, `32 73 01 1001`, `32-73-1-1001`, ...);
    existence and level are checked against the master by the validator."""
    text = clean_text(value)
    if text is None:
        return None, OK
    code = WilayahIndex.normalise(text)
    if code is None:
        return None, _problem("wilayah_unknown", value=text)
    return code, OK

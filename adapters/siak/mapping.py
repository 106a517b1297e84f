"""The SIAK wire format: the one place that knows how an event looks on the wire.

SIAK has no public write API, so the hub speaks a documented contract of its own: one event
per `POST /siak/v1/events`, JSON with SIAK's upper-case column names, NIK and NO_KK as
numbers, region codes split into numbers, dates as `DD-MM-YYYY`:

```json
{"EVENT": "PINDAH", "KIND": "create", "VERSION": 1,
 "HEADER": {"NO_KK": 3273010101900001, "NO_PROP_ASAL": 32, "NO_KAB_ASAL": 73,
            "NO_KEC_ASAL": 1, "NO_KEL_ASAL": 1001, "TGL_PINDAH": "17-08-2025", ...},
 "DETAIL": [{"NIK": 3273015708900002, "NAMA_LGKP": "...", "STAT_HBKEL": 1}, ...]}
```

`EVENT` is `CAPIL_LAHIR` (kelahiran), `CAPIL_MATI` (kematian), `PINDAH` or `DATANG`. A
birth or death is one record: it is the `HEADER`, `DETAIL` is empty. A pindah/datang event is
one family move (records sharing no_kk, destination and date): the family's shared fields
make the `HEADER`, each person a `DETAIL` row. A shared field that differs between members
of one event is refused (`WireFormatError`) rather than silently taking one value.

Only fields present (and not None) in the records are sent. Value forms: *nik* a number
from 16 digits; *int* a number; *code* the numeric code as a number; *sex* 1 = L, 2 = P;
*date* `DD-MM-YYYY`; *time* `HH:MM`; *text* as is; *region* `32.73.01.1001` becomes
`NO_PROP` 32, `NO_KAB` 73, `NO_KEC` 1, `NO_KEL` 1001 (with the suffix shown); *rt* `"003"`
becomes 3.

| canonical field | wire column | form | used in |
|---|---|---|---|
| nama_bayi | NAMA_LGKP | text | lahir |
| nama_lengkap | NAMA_LGKP | text | mati; pindah, datang (DETAIL) |
| nik | NIK | nik | mati; pindah, datang (DETAIL) |
| shdk | STAT_HBKEL | code | pindah, datang (DETAIL) |
| jenis_kelamin | JENIS_KLMIN | sex | lahir, mati |
| tempat_kelahiran | TMPT_LHR | text | lahir |
| tanggal_lahir | TGL_LHR | date | lahir, mati |
| jam_lahir | JAM_LHR | time | lahir |
| tempat_dilahirkan | TMPT_DILAHIRKAN | code | lahir |
| jenis_kelahiran | JNS_KELAHIRAN | code | lahir |
| kelahiran_ke | KELAHIRAN_KE | int | lahir |
| penolong_kelahiran | PNLG_KLHRN | code | lahir |
| berat_bayi | BRT_BYI | int (g) | lahir |
| panjang_bayi | PJG_BYI | number (cm) | lahir |
| nik_ibu, nama_ibu | NIK_IBU, NAMA_LGKP_IBU | nik, text | lahir |
| nik_ayah, nama_ayah | NIK_AYAH, NAMA_LGKP_AYAH | nik, text | lahir |
| no_kk | NO_KK | nik | all (HEADER) |
| kode_wilayah | NO_PROP, NO_KAB, NO_KEC, NO_KEL | region | lahir, mati |
| alamat, rt, rw | ALAMAT, NO_RT, NO_RW | text, rt, rt | lahir, mati |
| tanggal_kematian, jam_kematian | TGL_MATI, JAM_MATI | date, time | mati |
| sebab_kematian | SEBAB_MATI | code | mati |
| tempat_kematian | TMPT_MATI | text | mati |
| yang_menerangkan | YANG_MENERANGKAN | code | mati |
| kode_wilayah_asal | NO_PROP_ASAL ... NO_KEL_ASAL | region | pindah, datang |
| kode_wilayah_tujuan | NO_PROP_TUJUAN ... NO_KEL_TUJUAN | region | pindah, datang |
| alamat_asal, rt_asal, rw_asal | ALAMAT_ASAL, NO_RT_ASAL, NO_RW_ASAL | text, rt, rt | pindah |
| alamat_tujuan | ALAMAT_TUJUAN | text | pindah, datang |
| rt_tujuan, rw_tujuan | NO_RT_TUJUAN, NO_RW_TUJUAN | rt | pindah |
| rt, rw (datang: the destination) | NO_RT_TUJUAN, NO_RW_TUJUAN | rt | datang |
| alasan_pindah | ALASAN_PINDAH | code | pindah |
| klasifikasi_pindah | KLASIFIKASI_PINDAH | code | pindah, datang |
| jenis_kepindahan | JENIS_KEPINDAHAN | code | pindah |
| no_skpwni | NO_SKPWNI | text | datang |
| tanggal_pindah | TGL_PINDAH | date | pindah |
| tanggal_datang | TGL_DATANG | date | datang |
| nik_pelapor, nama_pelapor | NIK_PELAPOR, NAMA_PELAPOR | nik, text | all (HEADER; moves: DETAIL) |
| tanggal_lapor | TGL_LAPOR | date | all (HEADER; moves: DETAIL) |

`REQUIRED` lists what the receiving side insists on per event (the simulator answers 422
without it) and `wire_identity` names one person-effect (a birth by mother, date and birth
order; a death by NIK; a move by NIK and date), so a receiver can tell one record sent under
two idempotency keys.

Errors raised here never quote a value, only field names: values are personal data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from adapters.base import OutboundEvent

__all__ = [
    "EVENTS",
    "FAMILY_EVENTS",
    "IDENTITY_FIELDS",
    "REQUIRED",
    "Column",
    "Required",
    "UnmappedFieldError",
    "WireFormatError",
    "columns",
    "to_wire",
    "wire_identity",
]


class WireFormatError(ValueError):
    """A record cannot be put on the wire (bad value, inconsistent family). Names the field,
    never its value."""


class UnmappedFieldError(WireFormatError):
    """The event has a record type or field this mapping does not know: a contract mismatch
    between the hub's schemas and this module, not a problem of one record."""


# ------------------------------------------------------------------------------ value forms

Convert = Callable[[str, str, Any], dict[str, Any]]
"""(canonical field, wire column or region suffix, value) -> wire items."""

_DIGITS = re.compile(r"[0-9]+")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_REGION = re.compile(r"([0-9]{2})\.?([0-9]{2})\.?([0-9]{2})\.?([0-9]{4})")


def _int(field: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise WireFormatError(f"{field}: expected a whole number")


def _nik(field: str, column: str, value: Any) -> dict[str, Any]:
    text = value if isinstance(value, str) else str(value)
    if not re.fullmatch(r"[1-9][0-9]{15}", text.strip()):
        raise WireFormatError(f"{field}: expected 16 digits")
    return {column: int(text)}


def _integer(field: str, column: str, value: Any) -> dict[str, Any]:
    return {column: _int(field, value)}


def _number(field: str, column: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WireFormatError(f"{field}: expected a number")
    try:
        parsed = float(value)
    except ValueError:
        raise WireFormatError(f"{field}: expected a number") from None
    return {column: int(parsed) if parsed.is_integer() else parsed}


def _sex(field: str, column: str, value: Any) -> dict[str, Any]:
    code = {"L": 1, "P": 2, "1": 1, "2": 2}.get(str(value).strip().upper())
    if code is None:
        raise WireFormatError(f"{field}: expected L or P")
    return {column: code}


def _date(field: str, column: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dt.datetime):
        raise WireFormatError(f"{field}: expected a date, not a date-time")
    if not isinstance(value, dt.date):
        try:
            value = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise WireFormatError(f"{field}: expected an ISO date") from None
    return {column: value.strftime("%d-%m-%Y")}


def _time(field: str, column: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or not _TIME.fullmatch(value.strip()):
        raise WireFormatError(f"{field}: expected HH:MM")
    return {column: value.strip()}


def _text(field: str, column: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or not value.strip():
        raise WireFormatError(f"{field}: expected text")
    return {column: value.strip()}


def _region(field: str, suffix: str, value: Any) -> dict[str, Any]:
    match = _REGION.fullmatch(str(value).strip())
    if match is None:
        raise WireFormatError(f"{field}: expected a region code PP.KK.CC.DDDD")
    parts = (int(part) for part in match.groups())
    names = ("NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL")
    return {f"{name}{suffix}": part for name, part in zip(names, parts, strict=True)}


# ------------------------------------------------------------------------------ the tables


@dataclass(frozen=True, slots=True)
class Column:
    """One canonical field on the wire: `column` is the wire name, or for a region the
    suffix (`""`, `"_ASAL"`, `"_TUJUAN"`) of its four `NO_*` columns."""

    field: str
    column: str
    convert: Convert


def _table(*rows: tuple[str, str, Convert]) -> tuple[Column, ...]:
    return tuple(Column(field, column, convert) for field, column, convert in rows)


_REPORTER: Final = (
    ("nik_pelapor", "NIK_PELAPOR", _nik),
    ("nama_pelapor", "NAMA_PELAPOR", _text),
    ("tanggal_lapor", "TGL_LAPOR", _date),
)
# One person of a family move. The reporter is per person: members of one move may be
# reported by different people, and nothing reported may be dropped.
_PERSON: Final = _table(
    ("nik", "NIK", _nik),
    ("nama_lengkap", "NAMA_LGKP", _text),
    ("shdk", "STAT_HBKEL", _integer),
    *_REPORTER,
)

#: record type -> wire EVENT name.
EVENTS: Final[Mapping[str, str]] = {
    "kelahiran": "CAPIL_LAHIR",
    "kematian": "CAPIL_MATI",
    "pindah": "PINDAH",
    "datang": "DATANG",
}
#: Events that carry one family in HEADER and one person per DETAIL row.
FAMILY_EVENTS: Final = frozenset({"PINDAH", "DATANG"})

_HEADER: Final[Mapping[str, tuple[Column, ...]]] = {
    "kelahiran": _table(
        ("nama_bayi", "NAMA_LGKP", _text),
        ("jenis_kelamin", "JENIS_KLMIN", _sex),
        ("tempat_kelahiran", "TMPT_LHR", _text),
        ("tanggal_lahir", "TGL_LHR", _date),
        ("jam_lahir", "JAM_LHR", _time),
        ("tempat_dilahirkan", "TMPT_DILAHIRKAN", _integer),
        ("jenis_kelahiran", "JNS_KELAHIRAN", _integer),
        ("kelahiran_ke", "KELAHIRAN_KE", _integer),
        ("penolong_kelahiran", "PNLG_KLHRN", _integer),
        ("berat_bayi", "BRT_BYI", _integer),
        ("panjang_bayi", "PJG_BYI", _number),
        ("nik_ibu", "NIK_IBU", _nik),
        ("nama_ibu", "NAMA_LGKP_IBU", _text),
        ("nik_ayah", "NIK_AYAH", _nik),
        ("nama_ayah", "NAMA_LGKP_AYAH", _text),
        ("no_kk", "NO_KK", _nik),
        ("kode_wilayah", "", _region),
        ("alamat", "ALAMAT", _text),
        ("rt", "NO_RT", _integer),
        ("rw", "NO_RW", _integer),
        *_REPORTER,
    ),
    "kematian": _table(
        ("nik", "NIK", _nik),
        ("nama_lengkap", "NAMA_LGKP", _text),
        ("no_kk", "NO_KK", _nik),
        ("jenis_kelamin", "JENIS_KLMIN", _sex),
        ("tanggal_lahir", "TGL_LHR", _date),
        ("tanggal_kematian", "TGL_MATI", _date),
        ("jam_kematian", "JAM_MATI", _time),
        ("sebab_kematian", "SEBAB_MATI", _integer),
        ("tempat_kematian", "TMPT_MATI", _text),
        ("yang_menerangkan", "YANG_MENERANGKAN", _integer),
        ("kode_wilayah", "", _region),
        ("alamat", "ALAMAT", _text),
        ("rt", "NO_RT", _integer),
        ("rw", "NO_RW", _integer),
        *_REPORTER,
    ),
    "pindah": _table(
        ("no_kk", "NO_KK", _nik),
        ("kode_wilayah_asal", "_ASAL", _region),
        ("alamat_asal", "ALAMAT_ASAL", _text),
        ("rt_asal", "NO_RT_ASAL", _integer),
        ("rw_asal", "NO_RW_ASAL", _integer),
        ("kode_wilayah_tujuan", "_TUJUAN", _region),
        ("alamat_tujuan", "ALAMAT_TUJUAN", _text),
        ("rt_tujuan", "NO_RT_TUJUAN", _integer),
        ("rw_tujuan", "NO_RW_TUJUAN", _integer),
        ("alasan_pindah", "ALASAN_PINDAH", _integer),
        ("klasifikasi_pindah", "KLASIFIKASI_PINDAH", _integer),
        ("jenis_kepindahan", "JENIS_KEPINDAHAN", _integer),
        ("tanggal_pindah", "TGL_PINDAH", _date),
    ),
    "datang": _table(
        ("no_kk", "NO_KK", _nik),
        ("kode_wilayah_asal", "_ASAL", _region),
        ("kode_wilayah_tujuan", "_TUJUAN", _region),
        ("no_skpwni", "NO_SKPWNI", _text),
        ("alamat_tujuan", "ALAMAT_TUJUAN", _text),
        ("rt", "NO_RT_TUJUAN", _integer),
        ("rw", "NO_RW_TUJUAN", _integer),
        ("klasifikasi_pindah", "KLASIFIKASI_PINDAH", _integer),
        ("tanggal_datang", "TGL_DATANG", _date),
    ),
}
_DETAIL: Final[Mapping[str, tuple[Column, ...]]] = {"pindah": _PERSON, "datang": _PERSON}


def columns(record_type: str) -> tuple[tuple[Column, ...], tuple[Column, ...]]:
    """The HEADER and DETAIL columns of a record type (DETAIL empty for lahir and mati)."""
    if record_type not in _HEADER:
        raise UnmappedFieldError(f"record type {record_type!r} has no SIAK event")
    return _HEADER[record_type], _DETAIL.get(record_type, ())


# ------------------------------------------------------------------------- what SIAK insists on


@dataclass(frozen=True, slots=True)
class Required:
    """Wire columns an event must carry: in HEADER, and in every DETAIL row (family events)."""

    header: tuple[str, ...]
    detail: tuple[str, ...] = ()


def _regions(suffix: str = "") -> tuple[str, ...]:
    return tuple(f"{name}{suffix}" for name in ("NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL"))


REQUIRED: Final[Mapping[str, Required]] = {
    "CAPIL_LAHIR": Required(
        ("NAMA_LGKP", "JENIS_KLMIN", "TGL_LHR", "KELAHIRAN_KE", "NIK_IBU", "NO_KK", *_regions())
    ),
    "CAPIL_MATI": Required(("NIK", "NAMA_LGKP", "NO_KK", "TGL_MATI", *_regions())),
    "PINDAH": Required(
        ("NO_KK", *_regions("_ASAL"), *_regions("_TUJUAN"), "ALASAN_PINDAH", "TGL_PINDAH"),
        ("NIK", "NAMA_LGKP"),
    ),
    "DATANG": Required(
        ("NO_KK", *_regions("_ASAL"), *_regions("_TUJUAN"), "TGL_DATANG"),
        ("NIK", "NAMA_LGKP"),
    ),
}

#: Wire columns that name one person-effect; for family events read from a DETAIL row
#: merged over its HEADER.
IDENTITY_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "CAPIL_LAHIR": ("NIK_IBU", "TGL_LHR", "KELAHIRAN_KE"),
    "CAPIL_MATI": ("NIK",),
    "PINDAH": ("NIK", "TGL_PINDAH"),
    "DATANG": ("NIK", "TGL_DATANG"),
}


def wire_identity(event_type: str, row: Mapping[str, Any]) -> str:
    """The person-effect a wire row stands for, e.g. `"CAPIL_MATI|3273015708900002"`.

    `row` is the HEADER of a birth or death, or for PINDAH/DATANG one DETAIL row merged over
    the HEADER (`{**header, **detail}`), since the date lives in the HEADER.
    """
    try:
        names = IDENTITY_FIELDS[event_type]
    except KeyError:
        raise UnmappedFieldError(f"unknown SIAK event {event_type!r}") from None
    missing = [name for name in names if row.get(name) is None]
    if missing:
        raise WireFormatError(f"{event_type}: identity needs {', '.join(missing)}")
    return "|".join([event_type, *(str(row[name]) for name in names)])


# ------------------------------------------------------------------------------ to_wire


def _convert(record: Mapping[str, Any], table: Sequence[Column]) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    for column in table:
        value = record.get(column.field)
        if value is not None:
            wire.update(column.convert(column.field, column.column, value))
    return wire


def _check_fields(record: Mapping[str, Any], record_type: str) -> None:
    header, detail = columns(record_type)
    known = {column.field for column in (*header, *detail)}
    unknown = sorted(set(record) - known)
    if unknown:
        raise UnmappedFieldError(f"{record_type}: no SIAK column for {', '.join(unknown)}")


def _family_header(records: Sequence[Mapping[str, Any]], table: Sequence[Column]) -> dict[str, Any]:
    """The shared fields of a family move: members must agree wherever they have a value."""
    header: dict[str, Any] = {}
    for column in table:
        seen = [
            column.convert(column.field, column.column, record[column.field])
            for record in records
            if record.get(column.field) is not None
        ]
        if any(items != seen[0] for items in seen[1:]):
            raise WireFormatError(f"{column.field}: differs between members of one family move")
        if seen:
            header.update(seen[0])
    return header


def to_wire(event: OutboundEvent) -> dict[str, Any]:
    """The JSON body of one event for `POST /siak/v1/events`.

    Raises `UnmappedFieldError` for a record type or field without a SIAK column and
    `WireFormatError` for a value that does not fit its column or a family whose members
    disagree on a shared field.
    """
    record_type = event.record_type
    header_table, detail_table = columns(record_type)
    records = list(event.records)
    for record in records:
        _check_fields(record, record_type)
    if not records:
        raise WireFormatError(f"{record_type}: the event has no records")
    if detail_table:
        header = _family_header(records, header_table)
        detail = [_convert(record, detail_table) for record in records]
    else:
        if len(records) != 1:
            raise WireFormatError(f"{record_type}: one record per event, got {len(records)}")
        header = _convert(records[0], header_table)
        detail = []
    return {
        "EVENT": EVENTS[record_type],
        "KIND": event.kind,
        "VERSION": event.version,
        "HEADER": header,
        "DETAIL": detail,
    }

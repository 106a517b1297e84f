"""SIAK wire mapping: every record type, family moves, value forms and the identity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.base import OutboundEvent
from adapters.siak.mapping import (
    EVENTS,
    REQUIRED,
    UnmappedFieldError,
    WireFormatError,
    columns,
    to_wire,
    wire_identity,
)
from adapters.siak.simulator import validate_body

SCHEMAS = Path(__file__).resolve().parents[2] / "registry" / "schemas"

IBU = "3273015708900002"
AYAH = "3273011708880003"
KK = "3273010101200001"
PELAPOR = "3273011708880003"

KELAHIRAN: dict[str, Any] = {
    "nama_bayi": "Ayu Lestari",
    "jenis_kelamin": "P",
    "tempat_kelahiran": "Bandung",
    "tanggal_lahir": "2025-08-17",
    "jam_lahir": "07:45",
    "tempat_dilahirkan": 1,
    "jenis_kelahiran": 1,
    "kelahiran_ke": 2,
    "penolong_kelahiran": 2,
    "berat_bayi": 3200,
    "panjang_bayi": 49.5,
    "nik_ibu": IBU,
    "nama_ibu": "Siti Aminah",
    "nik_ayah": AYAH,
    "nama_ayah": "Budi Santoso",
    "no_kk": KK,
    "kode_wilayah": "32.73.01.1001",
    "alamat": "Jl. Merdeka 1",
    "rt": "003",
    "rw": "011",
    "nik_pelapor": PELAPOR,
    "nama_pelapor": "Budi Santoso",
    "tanggal_lapor": "2025-08-20",
}

KEMATIAN: dict[str, Any] = {
    "nik": "3273011708400001",
    "nama_lengkap": "Ahmad Sulaiman",
    "no_kk": KK,
    "jenis_kelamin": "L",
    "tanggal_lahir": "1940-08-17",
    "tanggal_kematian": "2025-07-01",
    "jam_kematian": "23:10",
    "sebab_kematian": 1,
    "tempat_kematian": "Rumah",
    "yang_menerangkan": 2,
    "kode_wilayah": "32.73.01.1001",
    "alamat": "Jl. Merdeka 1",
    "rt": "003",
    "rw": "011",
    "nik_pelapor": PELAPOR,
    "nama_pelapor": "Budi Santoso",
    "tanggal_lapor": "2025-07-02",
}

PINDAH_FAMILY: dict[str, Any] = {
    "no_kk": KK,
    "kode_wilayah_asal": "32.73.01.1001",
    "alamat_asal": "Jl. Merdeka 1",
    "rt_asal": "003",
    "rw_asal": "011",
    "kode_wilayah_tujuan": "33.74.02.2005",
    "alamat_tujuan": "Jl. Pemuda 9",
    "rt_tujuan": "001",
    "rw_tujuan": "002",
    "alasan_pindah": 1,
    "klasifikasi_pindah": 5,
    "jenis_kepindahan": 2,
    "tanggal_pindah": "2025-09-01",
    "nik_pelapor": PELAPOR,
    "nama_pelapor": "Budi Santoso",
    "tanggal_lapor": "2025-08-25",
}
PEOPLE = [
    {"nik": "3273011708880003", "nama_lengkap": "Budi Santoso", "shdk": 1},
    {"nik": IBU, "nama_lengkap": "Siti Aminah", "shdk": 3},
    {"nik": "3273015708150004", "nama_lengkap": "Ayu Lestari", "shdk": 4},
]


def event(record_type: str, *records: dict[str, Any], **kw: Any) -> OutboundEvent:
    return OutboundEvent(
        record_type=record_type,
        idempotency_key=kw.get("key", "k-1"),
        kind=kw.get("kind", "create"),
        version=kw.get("version", 1),
        records=list(records),
    )


def schema_fields(record_type: str) -> tuple[set[str], list[str]]:
    document = json.loads((SCHEMAS / f"{record_type}.v1.json").read_text())
    return set(document["properties"]), list(document["required"])


def test_kelahiran_is_one_header_with_siak_columns() -> None:
    wire = to_wire(event("kelahiran", KELAHIRAN, kind="correction", version=3))
    assert wire == {
        "EVENT": "CAPIL_LAHIR",
        "KIND": "correction",
        "VERSION": 3,
        "HEADER": {
            "NAMA_LGKP": "Ayu Lestari",
            "JENIS_KLMIN": 2,
            "TMPT_LHR": "Bandung",
            "TGL_LHR": "17-08-2025",
            "JAM_LHR": "07:45",
            "TMPT_DILAHIRKAN": 1,
            "JNS_KELAHIRAN": 1,
            "KELAHIRAN_KE": 2,
            "PNLG_KLHRN": 2,
            "BRT_BYI": 3200,
            "PJG_BYI": 49.5,
            "NIK_IBU": 3273015708900002,
            "NAMA_LGKP_IBU": "Siti Aminah",
            "NIK_AYAH": 3273011708880003,
            "NAMA_LGKP_AYAH": "Budi Santoso",
            "NO_KK": 3273010101200001,
            "NO_PROP": 32,
            "NO_KAB": 73,
            "NO_KEC": 1,
            "NO_KEL": 1001,
            "ALAMAT": "Jl. Merdeka 1",
            "NO_RT": 3,
            "NO_RW": 11,
            "NIK_PELAPOR": 3273011708880003,
            "NAMA_PELAPOR": "Budi Santoso",
            "TGL_LAPOR": "20-08-2025",
        },
        "DETAIL": [],
    }
    assert validate_body(wire) == []


def test_kematian_header() -> None:
    wire = to_wire(event("kematian", KEMATIAN))
    header = wire["HEADER"]
    assert (wire["EVENT"], wire["DETAIL"]) == ("CAPIL_MATI", [])
    assert header["NIK"] == 3273011708400001
    assert header["JENIS_KLMIN"] == 1
    assert (header["TGL_LHR"], header["TGL_MATI"], header["JAM_MATI"]) == (
        "17-08-1940",
        "01-07-2025",
        "23:10",
    )
    assert (header["SEBAB_MATI"], header["TMPT_MATI"], header["YANG_MENERANGKAN"]) == (
        1,
        "Rumah",
        2,
    )
    assert validate_body(wire) == []


def test_pindah_family_of_three_is_one_header_and_three_details() -> None:
    records = [{**PINDAH_FAMILY, **person} for person in PEOPLE]
    wire = to_wire(event("pindah", *records))
    assert wire["EVENT"] == "PINDAH"
    assert wire["HEADER"] == {
        "NO_KK": 3273010101200001,
        "NO_PROP_ASAL": 32,
        "NO_KAB_ASAL": 73,
        "NO_KEC_ASAL": 1,
        "NO_KEL_ASAL": 1001,
        "ALAMAT_ASAL": "Jl. Merdeka 1",
        "NO_RT_ASAL": 3,
        "NO_RW_ASAL": 11,
        "NO_PROP_TUJUAN": 33,
        "NO_KAB_TUJUAN": 74,
        "NO_KEC_TUJUAN": 2,
        "NO_KEL_TUJUAN": 2005,
        "ALAMAT_TUJUAN": "Jl. Pemuda 9",
        "NO_RT_TUJUAN": 1,
        "NO_RW_TUJUAN": 2,
        "ALASAN_PINDAH": 1,
        "KLASIFIKASI_PINDAH": 5,
        "JENIS_KEPINDAHAN": 2,
        "TGL_PINDAH": "01-09-2025",
    }
    reporter = {
        "NIK_PELAPOR": 3273011708880003,
        "NAMA_PELAPOR": "Budi Santoso",
        "TGL_LAPOR": "25-08-2025",
    }
    assert wire["DETAIL"] == [
        {"NIK": 3273011708880003, "NAMA_LGKP": "Budi Santoso", "STAT_HBKEL": 1, **reporter},
        {"NIK": 3273015708900002, "NAMA_LGKP": "Siti Aminah", "STAT_HBKEL": 3, **reporter},
        {"NIK": 3273015708150004, "NAMA_LGKP": "Ayu Lestari", "STAT_HBKEL": 4, **reporter},
    ]
    assert validate_body(wire) == []
    identities = {wire_identity("PINDAH", {**wire["HEADER"], **row}) for row in wire["DETAIL"]}
    assert len(identities) == 3


def test_datang_rt_rw_are_the_destination() -> None:
    shared = {
        "no_kk": KK,
        "kode_wilayah_asal": "33.74.02.2005",
        "kode_wilayah_tujuan": "32.73.01.1001",
        "no_skpwni": "SKPWNI/3374/2025/0001",
        "alamat_tujuan": "Jl. Merdeka 1",
        "rt": "003",
        "rw": "011",
        "klasifikasi_pindah": 5,
        "tanggal_datang": "2025-09-03",
        "nik_pelapor": PELAPOR,
        "nama_pelapor": "Budi Santoso",
        "tanggal_lapor": "2025-09-04",
    }
    wire = to_wire(event("datang", *({**shared, **p} for p in PEOPLE[:2])))
    header = wire["HEADER"]
    assert wire["EVENT"] == "DATANG"
    assert (header["NO_RT_TUJUAN"], header["NO_RW_TUJUAN"]) == (3, 11)
    assert (header["NO_KEL_ASAL"], header["NO_KEL_TUJUAN"]) == (2005, 1001)
    assert (header["NO_SKPWNI"], header["TGL_DATANG"]) == ("SKPWNI/3374/2025/0001", "03-09-2025")
    assert [row["NIK"] for row in wire["DETAIL"]] == [3273011708880003, 3273015708900002]
    assert validate_body(wire) == []


@pytest.mark.parametrize("record_type", sorted(EVENTS))
def test_every_schema_field_has_a_column(record_type: str) -> None:
    properties, _ = schema_fields(record_type)
    header, detail = columns(record_type)
    mapped = [column.field for column in (*header, *detail)]
    assert sorted(mapped) == sorted(properties)  # each field exactly once


@pytest.mark.parametrize("record_type", sorted(EVENTS))
def test_schema_required_fields_satisfy_what_siak_requires(record_type: str) -> None:
    full = {
        "kelahiran": KELAHIRAN,
        "kematian": KEMATIAN,
        "pindah": {**PINDAH_FAMILY, **PEOPLE[0]},
        "datang": {
            **{k: v for k, v in PINDAH_FAMILY.items() if k in schema_fields("datang")[0]},
            **PEOPLE[0],
            "tanggal_datang": "2025-09-03",
        },
    }[record_type]
    _, required = schema_fields(record_type)
    minimal = {name: full[name] for name in required}
    wire = to_wire(event(record_type, minimal))
    assert validate_body(wire) == []
    assert set(REQUIRED[wire["EVENT"]].header) <= set(wire["HEADER"])


def test_only_present_fields_are_sent_and_codes_may_be_strings() -> None:
    record = {**KEMATIAN, "sebab_kematian": "3", "tempat_kematian": None, "jenis_kelamin": "P"}
    del record["alamat"], record["rt"]
    header = to_wire(event("kematian", record))["HEADER"]
    assert not {"TMPT_MATI", "ALAMAT", "NO_RT"} & set(header)
    assert header["NO_RW"] == 11
    assert (header["SEBAB_MATI"], header["JENIS_KLMIN"]) == (3, 2)


def test_family_members_disagreeing_on_a_shared_field_are_refused() -> None:
    first = {**PINDAH_FAMILY, **PEOPLE[0]}
    second = {**PINDAH_FAMILY, **PEOPLE[1], "alasan_pindah": 2}
    with pytest.raises(WireFormatError, match="alasan_pindah") as info:
        to_wire(event("pindah", first, second))
    assert IBU not in str(info.value)


def test_family_members_may_leave_a_shared_field_out() -> None:
    first = {**PINDAH_FAMILY, **PEOPLE[0]}
    second = {k: v for k, v in {**PINDAH_FAMILY, **PEOPLE[1]}.items() if k != "alamat_tujuan"}
    header = to_wire(event("pindah", second, first))["HEADER"]
    assert header["ALAMAT_TUJUAN"] == "Jl. Pemuda 9"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nik_ibu": "3273015708900"}, "nik_ibu"),
        ({"tanggal_lahir": "17/08/2025"}, "tanggal_lahir"),
        ({"kode_wilayah": "32.73"}, "kode_wilayah"),
        ({"jenis_kelamin": "X"}, "jenis_kelamin"),
        ({"jam_lahir": "7.45"}, "jam_lahir"),
        ({"kelahiran_ke": "dua"}, "kelahiran_ke"),
    ],
)
def test_bad_values_name_the_field_never_the_value(change: dict[str, Any], field: str) -> None:
    with pytest.raises(WireFormatError) as info:
        to_wire(event("kelahiran", {**KELAHIRAN, **change}))
    assert str(info.value).startswith(field)
    assert str(next(iter(change.values()))) not in str(info.value)


def test_unknown_fields_and_types_are_contract_errors() -> None:
    with pytest.raises(UnmappedFieldError, match="golongan_darah"):
        to_wire(event("kematian", {**KEMATIAN, "golongan_darah": "O"}))
    with pytest.raises(UnmappedFieldError, match="perkawinan"):
        to_wire(event("perkawinan", {"nik": IBU}))


def test_a_birth_event_holds_exactly_one_record() -> None:
    with pytest.raises(WireFormatError, match="one record"):
        to_wire(event("kelahiran", KELAHIRAN, KELAHIRAN))
    with pytest.raises(WireFormatError, match="no records"):
        to_wire(event("kematian"))


def test_wire_identity() -> None:
    birth = to_wire(event("kelahiran", KELAHIRAN))["HEADER"]
    assert wire_identity("CAPIL_LAHIR", birth) == f"CAPIL_LAHIR|{IBU}|17-08-2025|2"
    death = to_wire(event("kematian", KEMATIAN))["HEADER"]
    assert wire_identity("CAPIL_MATI", death) == "CAPIL_MATI|3273011708400001"
    move = {"NIK": 3273011708880003, "TGL_DATANG": "03-09-2025"}
    assert wire_identity("DATANG", move) == "DATANG|3273011708880003|03-09-2025"
    with pytest.raises(WireFormatError, match="TGL_PINDAH"):
        wire_identity("PINDAH", {"NIK": 3273011708880003})
    with pytest.raises(UnmappedFieldError):
        wire_identity("CAPIL_KAWIN", {})

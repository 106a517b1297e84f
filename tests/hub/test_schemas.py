from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.errors import ConfigError, SchemaNotFoundError
from hub.messages import Messages
from hub.schemas import DEFAULT_SCHEMA_DIR, SchemaRegistry, compatibility_problems, squeeze

REGISTRY = SchemaRegistry.load()
ISSUE_CODES = {
    "required",
    "type",
    "enum",
    "range",
    "nik_format",
    "nik_scientific",
    "nik_numeric_cell",
    "nik_region_unknown",
    "nik_birthdate_mismatch",
    "nik_gender_mismatch",
    "kk_format",
    "date_invalid",
    "date_future",
    "date_order",
    "time_invalid",
    "wilayah_unknown",
    "wilayah_level",
    "wilayah_scope",
    "klasifikasi_mismatch",
    "duplicate_in_file",
    "duplicate",
    "deceased",
    "unknown_column",
}


def test_four_lampid_types():
    assert REGISTRY.types() == ["datang", "kelahiran", "kematian", "pindah"]
    with pytest.raises(SchemaNotFoundError):
        REGISTRY.get("perkawinan")


@pytest.mark.parametrize(
    ("record_type", "header", "field"),
    [
        ("kelahiran", "JK", "jenis_kelamin"),
        ("kelahiran", "L/P", "jenis_kelamin"),
        ("kelahiran", "Kelamin", "jenis_kelamin"),
        ("kelahiran", "Tgl Lahir", "tanggal_lahir"),
        ("kelahiran", "TGL_LHR", "tanggal_lahir"),
        ("kelahiran", "No. KK", "no_kk"),
        ("kelahiran", "Nomor Kartu Keluarga", "no_kk"),
        ("kelahiran", "Nama Anak", "nama_bayi"),
        ("kelahiran", "Anak Ke", "kelahiran_ke"),
        ("kelahiran", "Tempat Lahir", "tempat_kelahiran"),
        ("kelahiran", "BB", "berat_bayi"),
        ("kelahiran", "Berat (gram)", "berat_bayi"),
        ("kelahiran", "PB", "panjang_bayi"),
        ("kelahiran", "NIK_IBU", "nik_ibu"),
        ("kelahiran", "Kode Desa", "kode_wilayah"),
        ("kematian", "NIK Jenazah", "nik"),
        ("kematian", "NIK Almarhum", "nik"),
        ("kematian", "Tgl Meninggal", "tanggal_kematian"),
        ("kematian", "NAMA_LGKP", "nama_lengkap"),
        ("pindah", "Kode Desa Tujuan", "kode_wilayah_tujuan"),
        ("datang", "No. SKPWNI", "no_skpwni"),
    ],
)
def test_domain_header_aliases(record_type, header, field):
    target = REGISTRY.get(record_type).header_lookup[squeeze(header)]
    assert target.name == field


def test_rt_rw_column_splits():
    target = REGISTRY.get("kelahiran").header_lookup[squeeze("RT/RW")]
    assert target.fields == ("rt", "rw")


def test_pii_and_keys_declared():
    kelahiran = REGISTRY.get("kelahiran")
    assert kelahiran.natural_key == ("nik_ibu", "tanggal_lahir", "kelahiran_ke")
    assert {"nik_ibu", "nama_ibu", "no_kk", "nama_bayi", "alamat", "nik_pelapor"} <= set(
        kelahiran.pii_fields
    )
    assert "tanggal_lahir" not in kelahiran.pii_fields
    for schema in REGISTRY:
        assert set(schema.natural_key) <= set(schema.required)
        assert schema.wilayah_field in schema.required


def test_every_issue_code_has_an_indonesian_message():
    messages = Messages.load()
    assert ISSUE_CODES <= messages.codes()
    assert messages.format("required", label="NIK ibu") == "NIK ibu wajib diisi."
    assert "?" in messages.format("range", label="x")  # a missing parameter never raises


def test_reference_validator_accepts_a_canonical_record():
    record = {
        "nama_bayi": "Aisyah",
        "jenis_kelamin": "P",
        "tempat_kelahiran": "Bandung",
        "tanggal_lahir": "2025-07-02",
        "kelahiran_ke": 1,
        "nik_ibu": "3273014507900001",
        "nama_ibu": "Siti",
        "no_kk": "3273011203150004",
        "kode_wilayah": "32.73.01.1001",
        "nik_pelapor": "3273010101880002",
        "nama_pelapor": "Budi",
        "tanggal_lapor": "2025-07-05",
        "berat_bayi": 3200,
        "rt": "003",
        "penolong_kelahiran": 2,
    }
    validator = REGISTRY.get("kelahiran").validator
    assert list(validator.iter_errors(record)) == []
    bad = {**record, "jenis_kelamin": "X", "nik_ibu": "123", "berat_bayi": 80000}
    assert {e.path[0] for e in validator.iter_errors(bad)} == {
        "jenis_kelamin",
        "nik_ibu",
        "berat_bayi",
    }


def _copy_registry(tmp_path):
    target = tmp_path / "schemas"
    shutil.copytree(DEFAULT_SCHEMA_DIR, target)
    return target


def _new_version(directory, change):
    document = json.loads((directory / "kelahiran.v1.json").read_text())
    document["x-version"] = 2
    document["$id"] = document["$id"].replace("v1", "v2")
    change(document)
    (directory / "kelahiran.v2.json").write_text(json.dumps(document))


def test_compatible_new_version(tmp_path):
    directory = _copy_registry(tmp_path)

    def add_optional(document):
        document["properties"]["golongan_darah"] = {
            "type": "string",
            "enum": ["A", "B", "AB", "O"],
            "x-kind": "code",
        }
        document["properties"]["kelahiran_ke"]["maximum"] = 30

    _new_version(directory, add_optional)
    registry = SchemaRegistry.load(directory)
    assert registry.versions("kelahiran") == [1, 2]
    assert registry.get("kelahiran").version == 2
    assert registry.check_compatibility() == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["required"].append("jam_lahir"), "new required field 'jam_lahir'"),
        (lambda d: d["properties"].pop("alamat"), "field 'alamat' removed"),
        (lambda d: d["properties"]["kelahiran_ke"].update(maximum=10), "maximum lowered"),
        (lambda d: d["properties"]["berat_bayi"].update(minimum=500), "minimum raised"),
        (
            lambda d: d.update({"x-natural-key": ["nik_ibu", "tanggal_lahir"]}),
            "x-natural-key changed",
        ),
        (lambda d: d["properties"]["kelahiran_ke"].update(type="string"), "type integer -> string"),
    ],
)
def test_incompatible_new_version(tmp_path, change, expected):
    directory = _copy_registry(tmp_path)
    _new_version(directory, change)
    problems = SchemaRegistry.load(directory).check_compatibility()
    assert any(expected in p for p in problems), problems
    result = CliRunner().invoke(main, ["schemas", "check", "--dir", str(directory)])
    assert result.exit_code == 1
    assert expected in result.output


def test_enum_narrowing_is_incompatible(tmp_path):
    directory = _copy_registry(tmp_path)
    _new_version(directory, lambda d: d["properties"]["penolong_kelahiran"].update(enum=[1, 2, 3]))
    registry = SchemaRegistry.load(directory)
    old, new = registry.get("kelahiran", 1), registry.get("kelahiran", 2)
    assert compatibility_problems(old, new) == [
        "kelahiran.v2 vs kelahiran.v1: penolong_kelahiran enum lost [4]"
    ]


def test_broken_schema_files_are_config_errors(tmp_path):
    directory = _copy_registry(tmp_path)
    (directory / "kelahiran.v1.json").write_text("{not json")
    with pytest.raises(ConfigError):
        SchemaRegistry.load(directory)
    directory = _copy_registry(tmp_path / "b")
    document = json.loads((directory / "kematian.v1.json").read_text())
    document["properties"]["nik"]["x-aliases"].append("Nama")  # also nama_lengkap's alias
    (directory / "kematian.v1.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="alias"):
        SchemaRegistry.load(directory)
    directory = _copy_registry(tmp_path / "c")
    document = json.loads((directory / "pindah.v1.json").read_text())
    document["properties"]["nik"]["type"] = "strin"
    (directory / "pindah.v1.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="not valid JSON Schema"):
        SchemaRegistry.load(directory)


def test_cli_list_and_show():
    runner = CliRunner()
    result = runner.invoke(main, ["schemas", "list"])
    assert result.exit_code == 0
    assert "kelahiran" in result.output
    assert "pindah" in result.output
    result = runner.invoke(main, ["schemas", "show", "kematian"])
    assert result.exit_code == 0
    assert "nik" in result.output
    assert "PII" in result.output
    result = runner.invoke(main, ["schemas", "show", "kematian", "--json"])
    assert json.loads(result.output)["x-record-type"] == "kematian"
    result = runner.invoke(main, ["schemas", "show", "nikah"])
    assert result.exit_code == 2
    assert "tidak dikenal" in result.output
    assert runner.invoke(main, ["schemas", "check"]).exit_code == 0

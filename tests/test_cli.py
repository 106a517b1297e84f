"""`hub` as an operator or a script runs it: exit codes, stdout, stderr, files written."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook

from hub.cli import main
from tests.builders import (
    KELAHIRAN_HEADER,
    encrypted_workbook,
    kelahiran_row,
    write_table,
    zip_bomb,
)

KEY = base64.b64encode(bytes(range(32))).decode()


def cli_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, routes: Path | None = None
) -> dict[str, str]:
    """A hub on an SQLite file under `tmp_path` with the test key (and `routes`), set in the
    environment; the variables, for subprocesses."""
    values = {
        "HUB_DATA_DIR": str(tmp_path / "var"),
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'hub.db'}",
        "HUB_DATA_KEY": KEY,
        **({"HUB_ROUTES": str(routes)} if routes is not None else {}),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def env(tmp_path, monkeypatch):
    return cli_env(tmp_path, monkeypatch)


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def good_and_bad(tmp_path, suffix=".csv"):
    rows = [kelahiran_row(1), kelahiran_row(2, **{"Tgl Lahir": "31/02/2025"}), kelahiran_row(3)]
    return write_table(tmp_path / f"lahir{suffix}", KELAHIRAN_HEADER, rows)


def test_validate_json_report_shape_and_exit_1(env, tmp_path):
    result = invoke("validate", good_and_bad(tmp_path), "--type", "kelahiran", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert {
        k: report[k] for k in ("file", "type", "rows", "valid", "invalid", "duplicates", "warnings")
    } == {
        "file": "lahir.csv",
        "type": "kelahiran",
        "rows": 3,
        "valid": 2,
        "invalid": 1,
        "duplicates": 0,
        "warnings": 0,
    }
    (issue,) = report["issues"]
    assert {k: issue[k] for k in ("row", "column", "field", "code", "severity", "value")} == {
        "row": 5,
        "column": "Tgl Lahir",
        "field": "tanggal_lahir",
        "code": "date_invalid",
        "severity": "error",
        "value": "31/02/2025",
    }
    assert "kalender" in issue["message"]


def test_validate_stores_nothing_and_ingest_stores_once(env, tmp_path):
    path = good_and_bad(tmp_path, ".xlsx")
    assert invoke("validate", path, "--type", "kelahiran").exit_code == 1
    first = json.loads(invoke("ingest", path, "--type", "kelahiran", "--format", "json").stdout)
    assert (first["valid"], first["invalid"], first["batch_id"]) == (2, 1, 1)
    second = json.loads(invoke("ingest", path, "--type", "kelahiran", "--format", "json").stdout)
    assert (second["valid"], second["duplicates"], second["invalid"]) == (0, 2, 1)


def test_text_output_in_indonesian_and_exit_0_when_clean(env, tmp_path):
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, [kelahiran_row(1)])
    result = invoke("ingest", path, "--type", "kelahiran", "--kelurahan", "3273011001")
    assert result.exit_code == 0
    assert "1 diterima, 0 ditolak" in result.stdout


def test_kelurahan_scope_flags_other_regions(env, tmp_path):
    rows = [kelahiran_row(1), kelahiran_row(2, **{"Kode Desa": "32.73.01.1002"})]
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    report = json.loads(
        invoke(
            "validate",
            path,
            "--type",
            "kelahiran",
            "--kelurahan",
            "32.73.01.1001",
            "--format",
            "json",
        ).stdout
    )
    assert [i["code"] for i in report["issues"]] == ["wilayah_scope"]


@pytest.mark.parametrize("suffix", [".xlsx", ".csv", ".json"])
def test_report_files(env, tmp_path, suffix):
    out = tmp_path / f"laporan{suffix}"
    result = invoke(
        "validate", good_and_bad(tmp_path, ".xlsx"), "--type", "kelahiran", "--report", out
    )
    assert result.exit_code == 1
    assert out.exists()
    if suffix == ".xlsx":
        wb = load_workbook(out)
        assert {"Juli", "Kesalahan", "Ringkasan"} <= set(wb.sheetnames)
        cell = wb["Juli"].cell(row=4, column=KELAHIRAN_HEADER.index("Tgl Lahir") + 1)
        assert cell.comment is not None
        assert "kalender" in cell.comment.text
    elif suffix == ".json":
        assert json.loads(out.read_text(encoding="utf-8"))["issues"][0]["code"] == "date_invalid"
    else:
        assert "date_invalid" in out.read_text(encoding="utf-8-sig")


def bad_input(case: str, directory: Path) -> Path:
    """One of the inputs an operator should never be able to break the hub with."""
    if case == "zip bomb":
        return zip_bomb(directory / "bom.xlsx")
    if case == "encrypted":
        return encrypted_workbook(directory)
    if case == "a folder":
        (directory / "laporan").mkdir()
        return directory / "laporan"
    files = {
        "renamed binary": ("foto.xlsx", b"\x89PNG\r\n\x1a\n" + os.urandom(2000)),
        "renamed binary as csv": ("foto.csv", b"%PDF-1.7\n" + os.urandom(2000)),
        "empty file": ("kosong.csv", b""),
        "empty workbook": ("kosong.xlsx", b""),
        "no header": ("catatan.csv", b"catatan rapat\nhadir 5 orang\n"),
        "missing file": ("tidak-ada.csv", None),
    }
    name, content = files[case]
    if content is not None:
        (directory / name).write_bytes(content)
    return directory / name


BAD_INPUTS = [
    "renamed binary",
    "renamed binary as csv",
    "empty file",
    "empty workbook",
    "no header",
    "zip bomb",
    "encrypted",
    "missing file",
    "a folder",
]


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_unreadable_inputs_exit_2_with_one_line(env, tmp_path, case):
    path = bad_input(case, tmp_path)
    result = CliRunner().invoke(main, ["ingest", str(path), "--type", "kelahiran"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("hub: ")
    assert "Traceback" not in result.stderr
    assert not {"Error", "Invalid", "directory", "No such"} & set(re.findall(r"\w+", lines[0]))


def test_unknown_type_and_bad_options(env, tmp_path):
    path = good_and_bad(tmp_path)
    for args in (
        ["validate", path, "--type", "perkawinan"],
        ["validate", path, "--type", "kelahiran", "--kelurahan", "99.99.99.9999"],
        ["validate", path, "--type", "kelahiran", "--report", tmp_path / "out.pdf"],
    ):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("hub: ")


@pytest.mark.parametrize(
    ("report", "says"),
    [
        (
            "r.txt",
            "--report 'r.txt': nama berkas laporan harus berakhiran .xlsx, .csv, atau .json.",
        ),
        ("laporan", "harus berakhiran .xlsx, .csv, atau .json"),
        ("tidak-ada/r.xlsx", "tidak ditemukan"),
        (".", "adalah folder"),
    ],
)
def test_bad_report_option_is_refused_in_indonesian_before_any_work(env, tmp_path, report, says):
    path = good_and_bad(tmp_path)
    out = tmp_path / report
    result = CliRunner().invoke(
        main, ["validate", str(path), "--type", "kelahiran", "--report", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("hub: --report ")
    assert says in lines[0]
    for english in ("must", "end in", "not ", "No such", "directory", "Error"):
        assert english not in lines[0]
    assert not (tmp_path / "var").exists()  # refused before the hub opened its database


def test_ragged_csv_rows(env, tmp_path):
    path = tmp_path / "lahir.csv"
    header = ";".join(KELAHIRAN_HEADER)
    good = ";".join(str(v) for v in kelahiran_row(1))
    short = ";".join(str(v) for v in kelahiran_row(2)[:8])
    long = ";".join(str(v) for v in kelahiran_row(3)) + ";ekstra;lagi"
    path.write_text("\n".join([header, good, short, long]) + "\n", encoding="utf-8")
    report = json.loads(invoke("validate", path, "--type", "kelahiran", "--format", "json").stdout)
    by_row = {}
    for issue in report["issues"]:
        by_row.setdefault(issue["row"], set()).add(issue["code"])
    assert 2 not in by_row
    assert "required" in by_row[3]
    assert by_row[4] == {"extra_cells"}
    assert report["rows"] == 3
    assert report["invalid"] == 2


# A small launcher measures its child: a child forked straight from the pytest worker would
# start out with the worker's resident pages and report the worker's size, not its own.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], capture_output=True).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def test_huge_cell_and_zip_bomb_keep_memory_bounded(env, tmp_path):
    huge = tmp_path / "besar.csv"
    with huge.open("w", encoding="utf-8") as handle:
        handle.write(";".join(KELAHIRAN_HEADER) + "\n")
        handle.write('1;"' + "A" * (50 << 20) + '"\n')
    bomb = zip_bomb(tmp_path / "bom.xlsx")
    for path in (huge, bomb):
        command = [sys.executable, "-m", "hub.cli", "ingest", str(path), "--type", "kelahiran"]
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, *command],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=120,
            check=True,
        )
        code, peak_kib = (int(part) for part in done.stdout.split())
        assert code == 2
        assert peak_kib < 200 * 1024  # the 50 MB cell and the 300 MB of zeros never load


def test_wilayah_import_and_find(env, wilayah_csv):
    first = invoke("wilayah", "import", wilayah_csv)
    assert first.exit_code == 0
    assert "desa" in first.stdout
    assert "83762" in first.stdout.replace(",", "")
    again = invoke("wilayah", "import", wilayah_csv).stdout
    assert again.splitlines()[:4] == first.stdout.splitlines()[:4]
    assert "inserted         0" in again
    assert "updated          0" in again
    found = invoke("wilayah", "find", "sidomulyo")
    assert found.exit_code == 0
    assert found.stdout.count("\n") == 20
    within = invoke("wilayah", "find", "sukarasa", "--induk", "32.73")
    assert "32.73.01.1001" in within.stdout
    assert (
        invoke("wilayah", "find", "tidak ada nama seperti ini").stdout.strip() == "tidak ditemukan"
    )


def test_bad_wilayah_file(env, tmp_path):
    bad = tmp_path / "wilayah.csv"
    bad.write_text("kode,nama,level,induk\n32,Jawa Barat,provinsi,\n32.7X,Kota Salah,kabkota,32\n")
    result = CliRunner().invoke(main, ["wilayah", "import", str(bad)])
    assert result.exit_code == 2
    assert "32.7X" in result.stderr


def test_module_entry_point(env):
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "ingest" in done.stdout

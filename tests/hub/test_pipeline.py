"""The whole ingest path on real files and a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from starlette.datastructures import Secret

from hub.audit import verify_chain
from hub.context import Hub
from hub.errors import EncryptedFileError, HeaderNotFoundError, UnreadableFileError
from hub.pipeline import run_batch, source_for
from hub.settings import Settings
from hub.store.tables import audit_events, batches, record_history, records, row_issues
from hub.wilayah import WilayahIndex, read_csv
from tests.builders import (
    KELAHIRAN_HEADER,
    KEMATIAN_HEADER,
    PINDAH_HEADER,
    encrypted_workbook,
    kelahiran_row,
    kematian_row,
    pindah_row,
    write_table,
    write_xlsx,
)
from tests.conftest import TEST_KEY

KELURAHAN = "32.73.01.1001"
NIK_MATI = "3273010101400034"


@pytest.fixture(scope="session")
def full_regions(wilayah_csv):
    """The full Kemendagri list as the validator's index, built once per session."""
    with wilayah_csv.open(encoding="utf-8") as handle:
        return WilayahIndex((region.kode, region.nama) for region in read_csv(handle))


@pytest.fixture
def hub(hub, full_regions):
    hub.__dict__["regions"] = full_regions
    return hub


@pytest.fixture
def sqlite_hub(tmp_path, full_regions):
    settings = Settings(
        f"sqlite:///{tmp_path / 'pii' / 'hub.db'}",
        tmp_path / "pii",
        Secret(TEST_KEY),
        tmp_path / "pii" / "k",
    )
    opened = Hub.open(settings)
    opened.__dict__["regions"] = full_regions
    yield opened
    opened.close()


# Each row carries one defect; the codes its row must report (errors and warnings).
KELAHIRAN_CASES: list[tuple[dict[str, object], set[str]]] = [
    ({}, set()),
    ({"Nama Anak": ""}, {"required"}),
    ({"Anak Ke": "dua"}, {"type"}),
    ({"JK": "X"}, {"enum"}),
    ({"BB": "80 kg"}, {"range"}),
    ({"NIK Ibu": "327301450790123"}, {"nik_format"}),
    ({"NIK Ibu": "3.27301E+15"}, {"nik_scientific"}),
    ({"NIK Ibu": "9101014507900001"}, {"nik_region_unknown"}),  # 91.01 became 93.01 in 2022
    ({"NIK Ibu": "3273010507900077"}, {"nik_gender_mismatch"}),  # a man's day for the mother
    ({"No. KK": "3273011299150004"}, {"kk_format"}),
    ({"Tgl Lahir": "31/02/2025"}, {"date_invalid"}),
    ({"Tgl Lahir": "01/01/2099", "Tgl Lapor": "02/01/2099"}, {"date_future"}),
    ({"Tgl Lapor": "01/07/2025"}, {"date_order"}),
    ({"Jam Lahir": "25:00"}, {"time_invalid"}),
    ({"Kode Desa": "32.73.99.9999"}, {"wilayah_unknown"}),
    ({"Kode Desa": "32.73.01"}, {"wilayah_level"}),
    ({"Kode Desa": "32.73.01.1002"}, {"wilayah_scope"}),
    (
        {
            "Tgl Lahir": "17 Agustus 2025",
            "Tgl Lapor": "2025-08-20",
            "Penolong": "1",
            "BB": "3.200",
            "RT/RW": "3/5",
        },
        set(),
    ),
]


def kelahiran_rows():
    return [
        kelahiran_row(serial, **changes)
        for serial, (changes, _) in enumerate(KELAHIRAN_CASES, start=1)
    ]


def codes_by_row(issues):
    found = defaultdict(set)
    for issue in issues:
        found[issue.row].add(issue.code)
    return found


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_every_row_level_code_on_csv_and_xlsx(hub, tmp_path, suffix):
    path = write_table(tmp_path / f"lahir{suffix}", KELAHIRAN_HEADER, kelahiran_rows())
    report = run_batch(hub, source_for(path), "kelahiran", scope=KELURAHAN, dry_run=True)
    first_data_row = 4 if suffix == ".csv" else 3  # CSV has two title lines, the workbook one
    found = codes_by_row(report.issues)
    for offset, (_, expected) in enumerate(KELAHIRAN_CASES):
        assert found.get(first_data_row + offset, set()) == expected, (
            offset,
            found.get(first_data_row + offset),
        )
    expected_invalid = sum(
        1 for _, codes in KELAHIRAN_CASES if codes - {"nik_region_unknown", "nik_gender_mismatch"}
    )
    assert report.counts.rows == len(KELAHIRAN_CASES)
    assert report.counts.invalid == expected_invalid
    assert report.counts.valid == len(KELAHIRAN_CASES) - expected_invalid
    assert report.counts.warnings == 2


def test_issue_fields_name_the_operators_column_and_speak_indonesian(hub, tmp_path):
    path = write_table(
        tmp_path / "lahir.csv", KELAHIRAN_HEADER, [kelahiran_row(1, **{"NIK Ibu": "3.27301E+15"})]
    )
    issue = run_batch(hub, source_for(path), "kelahiran", dry_run=True).issues[0]
    assert issue.as_dict() == {
        "row": 4,
        "sheet": "",
        "column": "NIK Ibu",
        "field": "nik_ibu",
        "code": "nik_scientific",
        "severity": "error",
        "value": "3.27301E+15",
        "message": issue.message,
    }
    assert "notasi ilmiah" in issue.message
    assert "Teks" in issue.message


def test_numeric_nik_cell_is_flagged_in_xlsx(hub, tmp_path):
    rows = [
        kelahiran_row(1, **{"NIK Ibu": 3273014507900001}),
        kelahiran_row(2, **{"NIK Ibu": 3273014507900000.0}),
    ]
    path = write_xlsx(tmp_path / "lahir.xlsx", KELAHIRAN_HEADER, rows)
    found = codes_by_row(run_batch(hub, source_for(path), "kelahiran", dry_run=True).issues)
    assert found[3] == {"nik_numeric_cell"}
    assert found[4] == {"nik_numeric_cell", "nik_format"}  # serial 0000: the 16th digit was lost


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_unknown_column_is_a_warning_on_the_header_row(hub, tmp_path, suffix):
    header = [*KELAHIRAN_HEADER, "Golongan Darah"]
    path = write_table(tmp_path / f"lahir{suffix}", header, [[*kelahiran_row(1), "O"]])
    report = run_batch(hub, source_for(path), "kelahiran", dry_run=True)
    (issue,) = report.issues
    header_row = 3 if suffix == ".csv" else 2
    assert (issue.code, issue.severity, issue.row, issue.column) == (
        "unknown_column",
        "warning",
        header_row,
        "Golongan Darah",
    )
    assert report.counts.valid == 1


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_death_reported_by_another_region_is_refused_on_every_copy(hub, tmp_path, suffix):
    nik = "3273010304500701"
    first = write_table(tmp_path / f"mati1{suffix}", KEMATIAN_HEADER, [kematian_row(nik)])
    assert run_batch(hub, source_for(first), "kematian").counts.valid == 1
    other = kematian_row(nik, **{"Kode Desa": "32.73.01.1002", "Tgl Meninggal": "15 Juli 2025"})
    again = write_table(tmp_path / f"mati2{suffix}", KEMATIAN_HEADER, [other, other])

    report = run_batch(hub, source_for(again), "kematian")

    assert (report.counts.invalid, report.counts.duplicates, report.counts.valid) == (2, 0, 0)
    assert [i.code for i in report.issues] == ["deceased", "deceased"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_second_column_of_a_field_is_compared_row_by_row(hub, tmp_path, suffix):
    header = [*KEMATIAN_HEADER, "Nama Lengkap"]
    nik = "3273010101400031"
    rows = [
        [*kematian_row(nik), "H. Ahmad Sobari"],  # the same name in both columns
        [*kematian_row("3273010101400032"), "Ahmad bin Suherman"],  # another name
        [*kematian_row("3273010101400033", Nama=""), "H. Ahmad Sobari"],  # only the second
    ]
    path = write_table(tmp_path / f"mati{suffix}", header, rows)

    report = run_batch(hub, source_for(path), "kematian", dry_run=True)

    first = 4 if suffix == ".csv" else 3
    found = codes_by_row(report.issues)
    assert found[first - 1] == {"duplicate_column"}  # on the header row, as a warning
    assert found.get(first, set()) == set()
    assert found[first + 1] == {"duplicate_column"}
    assert found.get(first + 2, set()) == set()  # the second column fills the blank one
    (conflict,) = [i for i in report.issues if i.row == first + 1]
    assert (conflict.severity, conflict.column, conflict.value) == (
        "error",
        "Nama Lengkap",
        "Ahmad bin Suherman",
    )
    assert "Nama" in conflict.message
    assert "Ahmad" not in conflict.message  # the values (PII) stay out of the message
    (header_issue,) = [i for i in report.issues if i.row == first - 1]
    assert header_issue.severity == "warning"
    assert (report.counts.valid, report.counts.invalid) == (2, 1)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_filled_cell_under_a_blank_header_is_reported_not_silently_dropped(hub, tmp_path, suffix):
    header = [*KEMATIAN_HEADER[:5], "", *KEMATIAN_HEADER[5:]]
    filled = kematian_row("3273010101400035")
    rows = [[*filled[:5], "", *filled[5:]], [*filled[:5], "isi nyasar", *filled[5:]]]
    rows[1][0] = "3273010101400036"
    path = write_table(tmp_path / f"mati{suffix}", header, rows)

    report = run_batch(hub, source_for(path), "kematian", dry_run=True)

    (issue,) = report.issues
    first = 4 if suffix == ".csv" else 3
    assert (issue.row, issue.code, issue.severity, issue.col, issue.value) == (
        first + 1,
        "unknown_column",
        "warning",
        5,
        "isi nyasar",
    )
    assert issue.column == "kolom ke-6 (tanpa judul)"
    assert report.counts.valid == 2


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_file_of_another_record_type_is_refused_naming_its_type(hub, tmp_path, suffix):
    path = write_table(tmp_path / f"mati{suffix}", KEMATIAN_HEADER, [kematian_row(NIK_MATI)])
    with pytest.raises(HeaderNotFoundError, match="tampaknya laporan kematian"):
        run_batch(hub, source_for(path), "kelahiran")
    with hub.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(records)) == 0


def test_kematian_birthdate_and_gender_cross_checks(hub, tmp_path):
    rows = [
        kematian_row("3273010101500021"),
        kematian_row("3273010101500022", **{"Tgl Lahir": "02/01/1950"}),
        kematian_row("3273014101500023", **{"L/P": "L", "Tgl Lahir": "01/01/1950"}),
        kematian_row("3273010101500024", **{"Tgl Meninggal": "01/01/1949"}),
    ]
    for suffix in (".csv", ".xlsx"):
        path = write_table(tmp_path / f"mati{suffix}", KEMATIAN_HEADER, rows)
        found = codes_by_row(run_batch(hub, source_for(path), "kematian", dry_run=True).issues)
        first = 4 if suffix == ".csv" else 3
        assert [found.get(first + i, set()) for i in range(4)] == [
            set(),
            {"nik_birthdate_mismatch"},
            {"nik_gender_mismatch"},
            {"date_order"},
        ]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_pindah_klasifikasi_and_deceased(hub, tmp_path, suffix):
    dead = "3273011010600026"
    mati = write_table(
        tmp_path / f"mati{suffix}",
        KEMATIAN_HEADER,
        [
            kematian_row(
                dead,
                **{
                    "Tgl Lahir": "10/10/1960",
                    "Tgl Meninggal": "25/07/2025",
                    "Tanggal Lapor": "26/07/2025",
                },
            )
        ],
    )
    assert run_batch(hub, source_for(mati), "kematian").counts.valid == 1
    rows = [
        pindah_row("3273011505900005"),  # klasifikasi filled in: 3 (antar kecamatan)
        pindah_row("3273015208920003", **{"Klasifikasi Pindah": "Antar provinsi"}),
        pindah_row(dead),
        pindah_row(
            "3273011505900006", **{"Kode Desa Tujuan": "3273011002", "Klasifikasi Pindah": "2"}
        ),
    ]
    path = write_table(tmp_path / f"pindah{suffix}", PINDAH_HEADER, rows)
    report = run_batch(hub, source_for(path), "pindah", scope=KELURAHAN)
    found = codes_by_row(report.issues)
    first = 4 if suffix == ".csv" else 3
    assert [found.get(first + i, set()) for i in range(4)] == [
        set(),
        {"klasifikasi_mismatch"},
        {"deceased"},
        set(),
    ]
    deceased = next(i for i in report.issues if i.code == "deceased")
    assert dead not in deceased.message
    assert "3273********0026" in deceased.message
    with hub.engine.connect() as conn:
        stored = [sa.select(records.c.data).where(records.c.record_type == "pindah")]
        data = [row.data for row in conn.execute(stored[0])]
    assert any('"klasifikasi_pindah":3' in d for d in data)


@pytest.mark.parametrize(("suffix", "chunk_rows"), [(".csv", 5000), (".xlsx", 5000), (".csv", 2)])
def test_duplicates_in_file_and_in_store(hub, tmp_path, monkeypatch, suffix, chunk_rows):
    monkeypatch.setattr("hub.pipeline.CHUNK_ROWS", chunk_rows)  # 2: duplicates across chunks
    rows = [
        kelahiran_row(1),
        kelahiran_row(2),
        kelahiran_row(1),
        kelahiran_row(2, **{"Nama Anak": "Lain"}),
    ]
    path = write_table(tmp_path / f"lahir{suffix}", KELAHIRAN_HEADER, rows)
    first_row = 4 if suffix == ".csv" else 3  # the CSV has two title lines, the workbook one
    first = run_batch(hub, source_for(path), "kelahiran")
    assert (first.counts.valid, first.counts.duplicates, first.counts.invalid) == (2, 1, 1)
    found = codes_by_row(first.issues)
    assert found[first_row + 2] == {"duplicate_in_file"}
    assert found[first_row + 3] == {"duplicate_in_file"}
    same = [i for i in first.issues if i.row == first_row + 2]
    assert [i.severity for i in same] == ["warning"]
    assert f"baris {first_row}" in same[0].message
    assert [i.severity for i in first.issues if i.row == first_row + 3] == ["error"]

    def snapshot():
        with hub.engine.connect() as conn:
            return conn.execute(sa.select(records).order_by(records.c.id)).all()

    before = snapshot()
    again = run_batch(hub, source_for(path), "kelahiran")
    counts = again.counts
    assert (counts.rows, counts.valid, counts.duplicates, counts.invalid) == (4, 0, 3, 1)
    assert codes_by_row(again.issues)[first_row] == {"duplicate"}
    assert snapshot() == before  # re-ingesting the same file changes nothing


def test_corrected_row_becomes_a_new_version(hub, tmp_path):
    path = write_table(
        tmp_path / "lahir.csv", KELAHIRAN_HEADER, [kelahiran_row(1), kelahiran_row(2)]
    )
    run_batch(hub, source_for(path), "kelahiran")
    fixed = write_table(
        tmp_path / "lahir2.csv",
        KELAHIRAN_HEADER,
        [kelahiran_row(1, **{"Nama Anak": "Aisyah Putri Ramadhani"}), kelahiran_row(2)],
    )
    report = run_batch(hub, source_for(fixed), "kelahiran")
    assert (report.counts.valid, report.counts.duplicates, report.corrected) == (1, 1, 1)
    with hub.engine.connect() as conn:
        versions = conn.execute(sa.select(records.c.version).order_by(records.c.id)).scalars().all()
        history = conn.execute(sa.select(record_history.c.version)).scalars().all()
    assert versions == [2, 1]
    assert history == [1]


def test_counts_add_up_and_everything_is_audited(hub, tmp_path):
    path = write_table(tmp_path / "lahir.xlsx", KELAHIRAN_HEADER, kelahiran_rows())
    report = run_batch(hub, source_for(path), "kelahiran", scope=KELURAHAN, sha256="ab" * 32)
    c = report.counts
    assert c.rows == c.valid + c.invalid + c.duplicates
    with hub.engine.connect() as conn:
        batch = conn.execute(sa.select(batches)).one()
        assert (batch.status, batch.rows, batch.valid, batch.invalid) == (
            "done",
            c.rows,
            c.valid,
            c.invalid,
        )
        stored = conn.execute(sa.select(sa.func.count()).select_from(records)).scalar_one()
        issues = conn.execute(sa.select(sa.func.count()).select_from(row_issues)).scalar_one()
        (event,) = conn.execute(sa.select(audit_events)).all()
        assert verify_chain(conn).ok
    assert stored == c.valid
    assert issues == len(report.issues)
    assert event.action == "batch.ingested"
    assert event.entity_id == str(batch.id)


def test_dry_run_stores_nothing(hub, tmp_path):
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, kelahiran_rows())
    run_batch(hub, source_for(path), "kelahiran", dry_run=True)
    with hub.engine.connect() as conn:
        for table in (batches, records, row_issues, audit_events):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


def test_no_pii_in_clear_in_the_database_file(sqlite_hub, tmp_path):
    hub = sqlite_hub
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, kelahiran_rows())
    run_batch(hub, source_for(path), "kelahiran", scope=KELURAHAN)
    hub.engine.dispose()
    database = Path(hub.settings.database_url.removeprefix("sqlite:///"))
    files = sorted(database.parent.glob(database.name + "*"))  # the database, its WAL and SHM
    assert database in files
    blob = b"".join(path.read_bytes() for path in files)
    assert b"32.73.01.1001" in blob  # the region code is not PII and is stored in clear
    for secret in (
        b"3273014507900001",
        b"3273011203150004",
        b"3273010101880002",
        b"Siti Aminah",
        b"Budi Santoso",
        b"327301450790123",
    ):
        assert secret not in blob
        assert secret.decode().encode("utf-16-le") not in blob


def test_unreadable_file_is_recorded_as_failed_and_stores_nothing(hub, tmp_path):
    good = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, [kelahiran_row(1)])
    run_batch(hub, source_for(good), "kelahiran")
    bad = tmp_path / "foto.xlsx"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(UnreadableFileError):
        run_batch(hub, source_for(bad), "kelahiran")
    notes = tmp_path / "catatan.csv"
    notes.write_text("hanya catatan\ntanpa tabel\n")
    with pytest.raises(HeaderNotFoundError):
        run_batch(hub, source_for(notes), "kelahiran")
    with hub.engine.connect() as conn:
        statuses = conn.execute(sa.select(batches.c.status).order_by(batches.c.id)).scalars().all()
        assert conn.execute(sa.select(sa.func.count()).select_from(records)).scalar_one() == 1
        assert verify_chain(conn).ok
    assert statuses == ["done", "failed", "failed"]


def test_half_read_file_rolls_back(hub, tmp_path):
    rows = [kelahiran_row(i) for i in range(1, 7001)]
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('x;"' + "y" * 2_000_000 + '"\n')  # a cell over the limit after the first chunk
    with pytest.raises(UnreadableFileError):
        run_batch(hub, source_for(path), "kelahiran")
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(records)).scalar_one() == 0


def test_encrypted_workbook(hub, tmp_path):
    locked = encrypted_workbook(tmp_path)
    with pytest.raises(EncryptedFileError, match="kata sandi"):
        run_batch(hub, source_for(locked), "kelahiran", dry_run=True)


def test_annotated_report_round_trip(hub, tmp_path):
    from hub.report import write_report

    path = write_xlsx(tmp_path / "lahir.xlsx", KELAHIRAN_HEADER, kelahiran_rows())
    report = run_batch(hub, source_for(path), "kelahiran", scope=KELURAHAN, dry_run=True)
    out = tmp_path / "laporan.xlsx"
    write_report(
        out,
        report.issues,
        source_rows=source_for(path).read(),
        summary={"rows": report.counts.rows},
    )
    wb = load_workbook(out)
    sheet = wb["Juli"]
    nik_column = KELAHIRAN_HEADER.index("NIK Ibu") + 1
    bad = sheet.cell(row=3 + 5, column=nik_column)  # the 15-digit NIK row
    assert bad.value == "327301450790123"
    assert bad.comment is not None
    assert "16" in bad.comment.text


def test_kecamatan_scope_accepts_its_kelurahan_and_never_guesses_one(hub, tmp_path):
    rows = [
        kelahiran_row(1),
        kelahiran_row(2, **{"Kode Desa": "32.73.02.1001"}),
        kelahiran_row(3, **{"Kode Desa": ""}),
    ]
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    found = codes_by_row(
        run_batch(hub, source_for(path), "kelahiran", scope="32.73.01", dry_run=True).issues
    )
    assert [found.get(row, set()) for row in (4, 5, 6)] == [set(), {"wilayah_scope"}, {"required"}]


DATANG_HEADER = [
    "NIK",
    "Nama Lengkap",
    "No. KK",
    "SHDK",
    "Kode Desa Asal",
    "Kode Desa Tujuan",
    "No. SKPWNI",
    "Tgl Datang",
    "RT/RW",
    "NIK Pelapor",
    "Nama Pelapor",
    "Tgl Lapor",
]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_datang_scope_is_the_destination(hub, tmp_path, suffix):
    def row(nik, **changes):
        values = {
            "NIK": nik,
            "Nama Lengkap": "Rina",
            "No. KK": "3204051203150004",
            "SHDK": "Anak",
            "Kode Desa Asal": "32.04.05.2001",
            "Kode Desa Tujuan": KELURAHAN,
            "No. SKPWNI": "SKPWNI/3204/2025/0012",
            "Tgl Datang": "05/08/2025",
            "RT/RW": "2/3",
            "NIK Pelapor": nik,
            "Nama Pelapor": "Rina",
            "Tgl Lapor": "07/08/2025",
        }
        values.update(changes)
        return [values[h] for h in DATANG_HEADER]

    rows = [
        row("3204054507000001"),
        row("3204054507000002", **{"Kode Desa Tujuan": "32.73.01.1002"}),
        row("3204054507000003", **{"Tgl Lapor": "01/08/2025"}),
        row("3204054507000004", **{"Kode Desa Asal": KELURAHAN, "Tgl Lapor": "07/08/2025"}),
    ]
    path = write_table(tmp_path / f"datang{suffix}", DATANG_HEADER, rows)
    report = run_batch(hub, source_for(path), "datang", scope=KELURAHAN)
    first = 4 if suffix == ".csv" else 3
    found = codes_by_row(report.issues)
    assert [found.get(first + i, set()) for i in range(4)] == [
        set(),
        {"wilayah_scope"},
        {"date_order"},
        set(),
    ]
    with hub.engine.connect() as conn:
        data = sorted(conn.execute(sa.select(records.c.data)).scalars())
    assert all('"rt"' not in d and "Rina" not in d for d in data)  # RT/RW and names are PII: sealed
    assert sorted('"klasifikasi_pindah":4' in d for d in data) == [
        False,
        True,
    ]  # 32.04 -> 32.73; same desa -> 1

"""The chain of custody of a record: from the cells of the operator's file to SIAK's receipt."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from hub.api.app import create_app
from hub.api.principal import Principal
from hub.context import Hub
from hub.crypto import DataProtector
from hub.custody import SourceSealer, _parse_row_ref, open_source_cells, source_aad, trace_record
from hub.dispatcher import Dispatcher
from hub.layout import Column, TableLayout
from hub.pipeline import run_batch, source_for
from hub.records import Provenance, RawRow
from hub.store.tables import audit_events, batches, records
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_table
from tests.sandbox import FATHER, Sandbox, mother

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def ingest(hub: Hub, tmp_path: Path, rows, name: str = "lahir_juli.csv"):
    path = write_table(tmp_path / name, KELAHIRAN_HEADER, rows)
    return run_batch(hub, source_for(path), "kelahiran", actor="operator:test")


def deliver(hub: Hub, sandbox: Sandbox) -> None:
    async def main() -> None:
        connectors = sandbox.connectors()
        dispatcher = Dispatcher(hub, hub.routes, connectors=connectors, poll_interval=0.05)
        try:
            await asyncio.wait_for(dispatcher.run(until_idle=True), timeout=60)
        finally:
            for connector in connectors.values():
                await connector.aclose()

    asyncio.run(main())


def record_ids(hub: Hub) -> list[int]:
    with hub.engine.connect() as conn:
        return list(conn.execute(sa.select(records.c.id).order_by(records.c.id)).scalars())


@pytest.fixture
def delivered(routed_hub: Hub, tmp_path: Path) -> tuple[Hub, int]:
    ingest(routed_hub, tmp_path, [kelahiran_row(1), kelahiran_row(2)])
    deliver(routed_hub, Sandbox(routed_hub.routes, people=[mother(1), mother(2), FATHER]))
    return routed_hub, record_ids(routed_hub)[0]


def test_the_source_row_is_kept_sealed_with_the_record(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, [kelahiran_row(1)])
    with routed_hub.engine.connect() as conn:
        row = conn.execute(sa.select(records)).one()
        columns = orjson.loads(conn.execute(sa.select(batches.c.source_columns)).scalar_one())
    assert b"Siti" not in bytes(row.source_cells)
    cells = dict(
        open_source_cells(
            routed_hub.protector,
            row.record_type,
            bytes(row.natural_key),
            row.source_cells,
            columns,
        )
        or []
    )
    assert cells["NIK Ibu"] == "3273014507900001"
    assert cells["BB"] == "3,2 kg"  # as written, before normalising
    assert cells["RT/RW"] == "003/005"
    with pytest.raises(Exception, match="authentication"):  # bound to its record
        routed_hub.protector.decrypt(bytes(row.source_cells), b"kelahiran" + bytes(16))


def test_the_labels_are_kept_once_per_batch(routed_hub, tmp_path):
    written = [kelahiran_row(1), kelahiran_row(2, **{"Jam Lahir": ""})]
    ingest(routed_hub, tmp_path, written)
    with routed_hub.engine.connect() as conn:
        [columns] = conn.execute(sa.select(batches.c.source_columns)).scalars()
        rows = conn.execute(sa.select(records).order_by(records.c.id)).all()
    assert orjson.loads(columns) == [KELAHIRAN_HEADER]
    for row, cells in zip(rows, written, strict=True):
        plain = orjson.loads(
            routed_hub.protector.decrypt(
                bytes(row.source_cells), source_aad(row.record_type, bytes(row.natural_key))
            )
        )
        # the table's ordinal, then every cell as read (an empty one in its place), no label
        assert plain == [0, *(str(cell) for cell in cells)]


def test_a_cell_without_a_label_is_named_by_its_position(routed_hub, tmp_path):
    path = write_table(tmp_path / "a.csv", [*KELAHIRAN_HEADER, ""], [[*kelahiran_row(1), "x"]])
    run_batch(routed_hub, source_for(path), "kelahiran", actor="operator:test")
    [record_id] = record_ids(routed_hub)
    trace = trace_record(routed_hub, record_id, reveal=True)
    assert trace is not None
    cells = trace["versions"][0]["source"]["cells"]
    assert cells[0] == {"column": "No", "value": "1"}
    assert {"column": "Nama Ibu", "value": "Siti Aminah"} in cells
    assert cells[-1] == {"column": f"#{len(KELAHIRAN_HEADER) + 1}", "value": "x"}


def test_two_sheets_show_their_own_labels(routed_hub, tmp_path):
    from openpyxl import Workbook

    august_header = [
        "Nama Bayi",
        *KELAHIRAN_HEADER[2:11],
        "Nama Ibu Kandung",
        *KELAHIRAN_HEADER[12:],
    ]
    workbook = Workbook()
    july = workbook.active
    assert july is not None
    july.title = "Juli"
    july.append(KELAHIRAN_HEADER)
    july.append(kelahiran_row(1))
    august = workbook.create_sheet("Agustus")
    august.append(august_header)
    august.append(kelahiran_row(2, **{"Nama Ibu": "Dewi Lestari"})[1:])
    path = tmp_path / "lahir.xlsx"
    workbook.save(path)
    run_batch(routed_hub, source_for(path), "kelahiran", actor="operator:test")
    with routed_hub.engine.connect() as conn:
        [columns] = conn.execute(sa.select(batches.c.source_columns)).scalars()
    assert orjson.loads(columns) == [KELAHIRAN_HEADER, august_header]
    traces = [trace_record(routed_hub, i, reveal=True) for i in record_ids(routed_hub)]
    by_sheet = {}
    for trace in traces:
        assert trace is not None
        source = trace["versions"][0]["source"]
        by_sheet[source["sheet"]] = {c["column"]: c["value"] for c in source["cells"]}
    assert by_sheet["Juli"]["Nama Anak"] == "Aisyah Putri"
    assert by_sheet["Juli"]["Nama Ibu"] == "Siti Aminah"
    assert "Nama Bayi" not in by_sheet["Juli"]
    assert by_sheet["Agustus"]["Nama Bayi"] == "Aisyah Putri"
    assert by_sheet["Agustus"]["Nama Ibu Kandung"] == "Dewi Lestari"
    assert "Nama Anak" not in by_sheet["Agustus"]
    assert by_sheet["Agustus"]["NIK Ibu"] == "3273014507900002"


def test_a_source_row_sealed_as_label_pairs_still_opens(routed_hub, tmp_path):
    """Records sealed before 0006 hold `[[label, cell], ...]`; their batch holds no labels."""
    ingest(routed_hub, tmp_path, [kelahiran_row(1)])
    with routed_hub.engine.begin() as conn:
        row = conn.execute(sa.select(records)).one()
        pairs = [["No", "1"], ["Nama Ibu", "Siti Aminah"], ["#21", "catatan"]]
        sealed = routed_hub.protector.encrypt(
            orjson.dumps(pairs), source_aad(row.record_type, bytes(row.natural_key))
        )
        conn.execute(records.update().values(source_cells=sealed))
        conn.execute(batches.update().values(source_columns=None))
    trace = trace_record(routed_hub, row.id, reveal=True)
    assert trace is not None
    assert trace["versions"][0]["source"]["cells"] == [
        {"column": label, "value": value} for label, value in pairs
    ]
    opened = open_source_cells(
        routed_hub.protector, row.record_type, bytes(row.natural_key), sealed, [["x"]]
    )
    assert opened == [tuple(pair) for pair in pairs]  # labels of the batch do not apply


def _sealed(protector: DataProtector, plain: list[Any]) -> bytes:
    return protector.encrypt(orjson.dumps(plain), source_aad("kelahiran", b"k"))


@pytest.mark.parametrize(
    ("columns", "labels"),
    [
        (None, ["#1", "#2", "#4"]),
        ([], ["#1", "#2", "#4"]),
        ([["No", "Nama"]], ["#1", "#2", "#4"]),  # the row's table is number 1
        ([["x"], ["No"]], ["No", "#2", "#4"]),  # shorter than the row
        ([["x"], ["No", "", "C", None]], ["No", "#2", "#4"]),  # "" and a non-text label
        ([["x"], None], ["#1", "#2", "#4"]),
        ([["x"], "No"], ["#1", "#2", "#4"]),
        ("garbage", ["#1", "#2", "#4"]),
        ({"1": ["No"]}, ["#1", "#2", "#4"]),
    ],
)
def test_missing_or_bad_labels_name_cells_by_position(columns, labels):
    protector = DataProtector(bytes(32))
    sealed = _sealed(protector, [1, "7", 3.5, None, "x", ""])
    cells = open_source_cells(protector, "kelahiran", b"k", sealed, columns)
    assert cells == list(zip(labels, ["7", 3.5, "x"], strict=True))


@pytest.mark.parametrize("number", [-1, 5])
def test_a_table_number_out_of_range_names_cells_by_position(number):
    protector = DataProtector(bytes(32))
    sealed = _sealed(protector, [number, "7"])
    assert open_source_cells(protector, "kelahiran", b"k", sealed, [["No"]]) == [("#1", "7")]


def test_the_sealer_numbers_tables_and_keeps_every_cell():
    protector = DataProtector(bytes(32))
    sealer = SourceSealer(protector, "kelahiran")
    first = TableLayout("Juli", (1,), (Column(0, "No", None), Column(2, "Nama", None)), width=2)
    second = TableLayout("Agustus", (1,), (Column(1, "Nama Bayi", None),), width=4)
    where = Provenance("excel", "lahir.xlsx", 2)
    raw = [
        RawRow(("1", None, "Siti", dt.date(2025, 7, 2), 3.5), where),
        RawRow((), where),
    ]

    def plain(layout: TableLayout, index: int) -> Any:
        sealed = sealer.seal(layout, raw, index, b"k")
        assert sealed is not None
        return orjson.loads(protector.decrypt(sealed, source_aad("kelahiran", b"k")))

    assert plain(first, 0) == [0, "1", None, "Siti", "2025-07-02", 3.5]
    assert plain(second, 1) == [1]  # an empty row
    assert plain(first, 1) == [0]  # a table seen before keeps its number
    assert plain(second, 0)[0] == 1
    assert sealer.seal(first, raw, 2, b"k") is None  # the rows as read were not given
    assert sealer.seal(None, raw, 0, b"k") is None
    assert sealer.columns() == [["No", "", "Nama"], ["", "Nama Bayi", "", ""]]
    sealed = sealer.seal(first, raw, 0, b"k")
    assert open_source_cells(protector, "kelahiran", b"k", sealed, sealer.columns()) == [
        ("No", "1"),
        ("Nama", "Siti"),
        ("#4", "2025-07-02"),
        ("#5", 3.5),
    ]


def test_trace_from_the_cells_to_the_receipt(delivered):
    hub, record_id = delivered
    trace = trace_record(hub, record_id, reveal=True)
    assert trace is not None
    assert trace["record"]["status"] == "delivered"
    [version] = trace["versions"]
    source = version["source"]
    assert Path(source["file"]).name == "lahir_juli.csv"
    assert source["row_ref"] == f"line {source['row']}"
    assert source["row"] >= 2
    assert source["actor"] == "operator:test"
    assert {"column": "Nama Ibu", "value": "Siti Aminah"} in source["cells"]
    assert version["normalised"]["berat_bayi"] == 3200
    assert version["normalised"]["nama_ibu"] == "Siti Aminah"
    steps = [step["step"] for step in trace["steps"]]
    assert steps[:2] == ["ingested", "routed"]
    assert "verify_attempt" in steps
    assert "verified" in steps
    assert steps[-1] == "delivery_attempt"
    for step in trace["steps"]:
        assert len(step["hash"]) == 64
        assert step["at"]
        assert step["actor"]
    delivery = trace["steps"][-1]
    assert delivery["action"] == "outbox.deliver.ok"
    assert record_id in delivery["details"]["records"]
    # minimisation, audited: field names sent, never values
    assert "nik_ibu" in delivery["details"]["fields"]
    assert "3273014507900001" not in orjson.dumps(delivery).decode()
    [receipt] = trace["receipts"]
    assert (receipt["connector"], receipt["status"]) == ("siak", "done")
    assert trace["chain"] == {
        "ok": True,
        "checked": trace["chain"]["checked"],
        "first_bad_id": None,
        "position": None,
        "kind": None,
        "reason": None,
    }
    # each step's hash is the stored event's hash
    with hub.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(audit_events.c.id, audit_events.c.hash)).all())
    assert all(stored[step["audit_id"]] == step["hash"] for step in trace["steps"])


def test_trace_masks_pii_without_reveal(delivered):
    hub, record_id = delivered
    trace = trace_record(hub, record_id, reveal=False)
    assert trace is not None
    assert trace["masked"] is True
    text = orjson.dumps(trace).decode()
    for clear in ("3273014507900001", "Siti Aminah", "3273011203150004", "Budi Santoso"):
        assert clear not in text
    cells = {c["column"]: c["value"] for c in trace["versions"][0]["source"]["cells"]}
    assert cells["NIK Ibu"] == "3273********0001"
    assert cells["Nama Ibu"] == "S. A."
    assert cells["Tgl Lahir"] == "02/07/2025"  # not personal data


def test_trace_of_a_correction_shows_both_sources(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, [kelahiran_row(1)], name="a.csv")
    renamed = ["Nama Bayi" if label == "Nama Anak" else label for label in KELAHIRAN_HEADER]
    path = write_table(
        tmp_path / "b.csv", renamed, [kelahiran_row(1, **{"Nama Anak": "Aisyah Rahma"})]
    )
    run_batch(routed_hub, source_for(path), "kelahiran", actor="operator:test")
    trace = trace_record(routed_hub, record_ids(routed_hub)[0], reveal=True)
    assert trace is not None
    assert [Path(v["source"]["file"]).name for v in trace["versions"]] == ["a.csv", "b.csv"]
    assert [v["version"] for v in trace["versions"]] == [1, 2]
    # each version is labelled by the header of its own file
    old, new = ({c["column"]: c["value"] for c in v["source"]["cells"]} for v in trace["versions"])
    assert (old["Nama Anak"], "Nama Bayi" in old) == ("Aisyah Putri", False)
    assert (new["Nama Bayi"], "Nama Anak" in new) == ("Aisyah Rahma", False)


def test_trace_names_a_broken_chain(delivered):
    hub, record_id = delivered
    with hub.engine.begin() as conn:
        conn.execute(audit_events.update().where(audit_events.c.id == 1).values(actor="x"))
    trace = trace_record(hub, record_id, reveal=False)
    assert trace is not None
    assert (trace["chain"]["ok"], trace["chain"]["kind"]) == (False, "edited")


def test_trace_of_a_missing_record(hub):
    assert trace_record(hub, 999, reveal=False) is None


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("Juli!R12", ("Juli", 12)),
        ("R7", ("", 7)),
        ("line 42", ("", 42)),
        ("#9", (None, 9)),
        ("src#x", (None, None)),
    ],
)
def test_row_refs(ref, expected):
    assert _parse_row_ref(ref) == expected


# ------------------------------------------------------------------ API and CLI


def _headers(app: Any, role: Any, wilayah: str, scopes: Any = ()) -> dict[str, str]:
    principal = Principal.for_role(f"user:test-{role}", role, wilayah, frozenset(scopes))
    return {"Authorization": f"Bearer {app.state.tokens.issue(principal)}"}


def test_trace_endpoint_checks_access_and_masks(delivered):
    hub, record_id = delivered
    app = create_app(hub)
    with TestClient(app, raise_server_exceptions=False) as client:
        url = f"/api/v1/records/{record_id}/trace"
        operator = client.get(url, headers=_headers(app, "operator", "32.73.01.1001"))
        assert operator.status_code == 200, operator.text
        auditor = client.get(url, headers=_headers(app, "auditor", "32.73"))
        assert auditor.status_code == 200
        assert auditor.json()["masked"] is True
        assert "3273014507900001" not in auditor.text
        assert operator.json()["masked"] is False  # an operator holds pii:read
        assert "3273014507900001" in operator.text
        other = client.get(url, headers=_headers(app, "operator", "32.73.01.1002"))
        assert other.status_code == 403
        missing = client.get("/api/v1/records/99999/trace", headers=_headers(app, "admin", ""))
        assert missing.status_code == 404
        bad = client.get("/api/v1/records/abc/trace", headers=_headers(app, "admin", ""))
        assert bad.status_code in {400, 404}
        assert client.get(url).status_code == 401
        spec = client.get("/openapi.json").json()
        assert "get" in spec["paths"]["/api/v1/records/{record_id}/trace"]


def test_hub_trace_command(delivered, monkeypatch):
    from click.testing import CliRunner

    from hub.cli import main as cli

    hub, record_id = delivered
    monkeypatch.setenv("HUB_DATABASE_URL", hub.settings.database_url)
    monkeypatch.setenv("HUB_DATA_DIR", str(hub.settings.data_dir))
    monkeypatch.setenv("HUB_DATA_KEY", str(hub.settings.data_key))
    monkeypatch.setenv("HUB_ROUTES", str(hub.settings.routes_path))
    runner = CliRunner()
    masked = runner.invoke(cli, ["trace", str(record_id)], catch_exceptions=False)
    assert masked.exit_code == 0, masked.output
    assert "lahir_juli.csv line " in masked.output
    assert "3273********0001" in masked.output
    assert "3273014507900001" not in masked.output
    assert "audit chain intact" in masked.output
    revealed = runner.invoke(cli, ["trace", str(record_id), "--reveal", "--format", "json"])
    assert revealed.exit_code == 0
    assert "3273014507900001" in revealed.output
    with hub.engine.connect() as conn:
        actions = list(conn.execute(sa.select(audit_events.c.action)).scalars())
    assert actions[-1] == "record.revealed"
    missing = runner.invoke(cli, ["trace", "999"])
    assert (missing.exit_code, "does not exist" in missing.output) == (2, True)
    bad = runner.invoke(cli, ["trace", "abc"])
    assert bad.exit_code == 2

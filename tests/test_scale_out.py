"""The scale-out proof, CI-sized: two API processes and three workers over one PostgreSQL
schema and one Redis; records uploaded through both APIs at once; one worker killed with
SIGKILL mid-run; every record reaches SIAK once, the shared SIAK rate limit holds, each
scheduled tick ran once (two schedulers), and `hub audit verify` passes.

The scenario lives in `bench.scale_scenarios` (shared with `python -m bench.scale`, which runs
it with 20,000 records for 1, 2 and 3 workers and prints the throughput).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import delivery_scenarios
from bench.scale_scenarios import birth_row, scale_out, write_files
from tests.builders import KELAHIRAN_HEADER
from tests.conftest import ARRIVAL_SLACK, MANY_PROCESSES

pytestmark = MANY_PROCESSES

RECORDS = 2000
FILES = 6
WORKERS = 3
PER_SECOND = 200
#: A Redis logical database of its own: the hub's processes key their limiter `hub:rate:siak`
#: (the delivery proof uses 14).
SCALE_REDIS_DB = 13


@pytest.mark.service
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_apis_and_three_workers_one_killed_deliver_every_record_once_within_the_limit(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    record_property: pytest.RecordProperty,
) -> None:
    redis_db = delivery_scenarios.redis_database(redis_url, SCALE_REDIS_DB)
    outcome = scale_out(
        tmp_path,
        monkeypatch,
        database_url,
        redis_db,
        RECORDS,
        workers=WORKERS,
        kill=True,
        files=FILES,
        per_second=PER_SECOND,
        job_interval=10.0,
        timeout=90,
    )
    record_property("records/s end-to-end", round(outcome.end_to_end_rate, 1))
    record_property("records/s delivery", round(outcome.delivery_rate, 1))

    # every upload went through one of the two APIs and ended done, every row valid
    assert len(outcome.batches) == FILES
    assert len({b["api"] for b in outcome.batches}) == 2
    assert all(b["status"] == "done" for b in outcome.batches), outcome.batches
    assert sum(b["valid"] for b in outcome.batches) == RECORDS

    # every record delivered, exactly once as SIAK's ledger sees it
    assert outcome.statuses == {"delivered": RECORDS}
    assert outcome.dead_letters == 0
    assert outcome.siak["effects"] == RECORDS
    assert outcome.siak["identities"] == RECORDS
    assert outcome.duplicates == 0
    assert outcome.siak["accepted"] == RECORDS
    # the kill happened mid-run, with work left for the survivors
    assert RECORDS // 3 <= outcome.notes["accepted at kill"] < RECORDS
    # the shared limit held across the three workers, the killed one included
    # (arrival stamps carry the simulator thread's stalls: see test_delivery_proof's rate test)
    assert outcome.siak["max_in_any_1s_window"] <= outcome.rate_bound + ARRIVAL_SLACK
    # two schedulers fired the same ticks: each ran once, and all of them ended ok
    ticks = [t for t in outcome.job_ticks if t is not None]
    assert ticks, "the schedulers ran no tick"
    assert outcome.duplicate_ticks == 0, outcome.job_ticks
    assert outcome.job_outcomes == {"ok": len(outcome.job_ticks)}, outcome.job_outcomes
    # the audit chain is intact after all of it
    assert outcome.audit_verify_code == 0, outcome.audit_verify_output


def test_record_numbers_beyond_9999_get_natural_keys_of_their_own(tmp_path: Path) -> None:
    """The kelahiran natural key is (nik_ibu, tanggal_lahir, kelahiran_ke): record 10,000
    names mother 1 again, as her second child."""
    schema = Path(__file__).resolve().parent.parent / "registry/schemas/kelahiran.v1.json"
    natural_key = json.loads(schema.read_text("utf-8"))["x-natural-key"]
    assert natural_key == ["nik_ibu", "tanggal_lahir", "kelahiran_ke"]
    header = KELAHIRAN_HEADER
    nik, child = header.index("NIK Ibu"), header.index("Anak Ke")
    keys = {(row[nik], row[child]) for row in map(birth_row, range(1, 20_001))}
    assert len(keys) == 20_000
    assert birth_row(10_000)[nik] == birth_row(1)[nik]
    assert birth_row(10_000)[child] == "2"
    with pytest.raises(ValueError, match="numbered from 1"):
        birth_row(0)
    paths = write_files(tmp_path, 10, 3)
    lines = [p.read_text("utf-8-sig").splitlines() for p in paths]
    assert [len(x) - 3 for x in lines] == [3, 4, 3]  # title, kelurahan and header lines
    with pytest.raises(ValueError, match="cannot fill"):
        write_files(tmp_path, 2, 3)

"""Verifier answers remembered per NIK: reused only for what was already judged."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from adapters.base import FieldVerdict, VerifyAnswer
from hub.answers import AnswerCache
from hub.store.tables import verify_cache

NIK = "3273014507900001"
NOW = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
ASKED = {"NIK": NIK, "NAMA_LGKP": "Siti Aminah"}


def cache_of(hub) -> AnswerCache:
    return AnswerCache(hub.engine, hub.protector, "dukcapil")


def test_the_same_question_is_answered_from_the_cache(hub):
    cache = cache_of(hub)
    assert cache.lookup(ASKED, NOW) is None
    cache.remember(ASKED, VerifyAnswer("00", {"NAMA_LGKP": FieldVerdict(True, 100)}), NOW, 60)
    assert cache.lookup(ASKED, NOW) == VerifyAnswer("00", {"NAMA_LGKP": FieldVerdict(True, 100)})
    assert cache.lookup({"NIK": NIK}, NOW) == VerifyAnswer("00", {})


def test_a_new_element_or_value_is_asked_and_then_merged(hub):
    cache = cache_of(hub)
    cache.remember(ASKED, VerifyAnswer("00", {"NAMA_LGKP": FieldVerdict(True, 100)}), NOW, 60)
    wider = {**ASKED, "NO_KK": "3273011203150004"}
    assert cache.lookup(wider, NOW) is None
    assert cache.lookup({**ASKED, "NAMA_LGKP": "Siti Aminah Putri"}, NOW) is None
    cache.remember(wider, VerifyAnswer("00", {"NO_KK": FieldVerdict(False)}), NOW, 60)
    assert cache.lookup(wider, NOW) == VerifyAnswer(
        "00", {"NAMA_LGKP": FieldVerdict(True, 100), "NO_KK": FieldVerdict(False)}
    )


def test_a_record_level_code_holds_whatever_is_asked(hub):
    cache = cache_of(hub)
    cache.remember(ASKED, VerifyAnswer("13"), NOW, 60)
    assert cache.lookup({"NIK": NIK, "NO_KK": "3273011203150004"}, NOW) == VerifyAnswer("13")


def test_answers_expire_and_connectors_do_not_share(hub):
    cache = cache_of(hub)
    cache.remember(ASKED, VerifyAnswer("11"), NOW, 60)
    assert cache.lookup(ASKED, NOW + dt.timedelta(seconds=61)) is None
    assert AnswerCache(hub.engine, hub.protector, "other").lookup(ASKED, NOW) is None


def test_no_nik_or_value_is_stored_in_clear(hub):
    cache = cache_of(hub)
    cache.remember(ASKED, VerifyAnswer("00", {"NAMA_LGKP": FieldVerdict(True, 100)}), NOW, 60)
    with hub.engine.connect() as conn:
        (row,) = conn.execute(sa.select(verify_cache)).all()
    stored = row.answer + row.request_bi.hex()
    assert NIK not in stored
    assert "Siti" not in stored

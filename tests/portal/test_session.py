"""Masuk, Keluar, sessions, CSRF and language."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from hub.api.accounts import MAX_FAILURES
from tests.portal.conftest import PASSWORD, csrf_of, log_in


def test_pages_need_a_login_and_come_back_after_it(browser: TestClient) -> None:
    start = browser.get("/unggah")
    assert start.status_code == 303
    assert start.headers["location"] == "/masuk?lanjut=/unggah"
    page = browser.get(start.headers["location"])
    assert 'name="lanjut" value="/unggah"' in page.text
    answer = browser.post(
        "/masuk",
        data={
            "username": "siti.op",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "lanjut": "/statistik",
        },  # fmt: skip
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/statistik"


def test_the_session_cookie_is_httponly_and_samesite_strict(browser: TestClient) -> None:
    answer = log_in(browser, "siti.op")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/unggah"  # the operator's first page
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("hub_sesi="))
    assert "HttpOnly" in session
    assert "SameSite=Strict" in session
    assert "Path=/" in session
    assert "Max-Age=3600" in session
    assert any(c.startswith("hub_csrf=") for c in cookies)  # renewed at login
    assert browser.get("/unggah").status_code == 200


def test_the_session_cookie_does_not_open_the_api(browser: TestClient) -> None:
    log_in(browser, "siti.op")
    assert browser.get("/unggah").status_code == 200
    answer = browser.get("/api/v1/me")
    assert answer.status_code == 401


def test_a_wrong_password_says_so_in_indonesian(browser: TestClient) -> None:
    answer = log_in(browser, "siti.op", "bukan-kata-sandinya")
    assert answer.status_code == 401
    assert "Nama pengguna atau kata sandi salah" in answer.text
    assert "hub_sesi=" not in answer.headers.get("set-cookie", "")
    unknown = log_in(browser, "tidak.ada", "bukan-kata-sandinya")
    assert unknown.status_code == 401
    assert "Nama pengguna atau kata sandi salah" in unknown.text
    empty = log_in(browser, "siti.op", "")
    assert empty.status_code == 422
    assert "Isi nama pengguna dan kata sandi" in empty.text
    huge = log_in(browser, "x" * 500, "y")
    assert huge.status_code == 401


def test_a_locked_account_says_when_to_try_again(browser: TestClient) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert log_in(browser, "andi.op", "salah-salah-salah").status_code == 401
    locking = log_in(browser, "andi.op", "salah-salah-salah")
    assert locking.status_code == 429
    assert "Akun terkunci" in locking.text
    assert "15 menit" in locking.text
    assert locking.headers["retry-after"].isdigit()
    # the right password does not help while locked
    still = log_in(browser, "andi.op")
    assert still.status_code == 429
    assert "Akun terkunci" in still.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_the_site(browser: TestClient, target: str) -> None:
    page = browser.get("/masuk")
    answer = browser.post(
        "/masuk",
        data={
            "username": "siti.op",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "lanjut": target,
        },  # fmt: skip
    )
    assert answer.headers["location"] == "/unggah"


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(browser: TestClient) -> None:
    browser.get("/masuk")
    missing = browser.post("/masuk", data={"username": "siti.op", "password": PASSWORD})
    assert missing.status_code == 403
    assert "Formulir sudah kedaluwarsa" in missing.text
    wrong = browser.post(
        "/masuk", data={"username": "siti.op", "password": PASSWORD, "csrf_token": "00" * 16}
    )
    assert wrong.status_code == 403
    assert "hub_sesi=" not in wrong.headers.get("set-cookie", "")
    # a token from another browser (another CSRF cookie) does not fit this one
    other = TestClient(browser.app, raise_server_exceptions=False, follow_redirects=False)
    foreign = csrf_of(other.get("/masuk").text)
    assert (
        browser.post(
            "/masuk", data={"username": "siti.op", "password": PASSWORD, "csrf_token": foreign}
        ).status_code
        == 403
    )
    # logged in: uploads (XHR header), decisions, replays and logout are guarded too
    assert log_in(browser, "siti.op").status_code == 303
    upload = browser.post("/unggah", files={"file": ("a.csv", b"x")}, data={"type": "kelahiran"})
    assert upload.status_code == 403
    assert upload.json()["error"]["code"] == "csrf"
    bad_header = browser.post(
        "/unggah", files={"file": ("a.csv", b"x")}, data={"type": "kelahiran"},
        headers={"X-CSRF-Token": "f" * 64},
    )  # fmt: skip
    assert bad_header.status_code == 403
    assert browser.post("/keluar", data={}).status_code == 403
    assert browser.get("/unggah").status_code == 200  # still logged in
    log_in(browser, "dewi.ver")
    decision = browser.post("/persetujuan", data={"aksi": "setujui", "ids": "1"})
    assert decision.status_code == 403
    log_in(browser, "admin.kota")
    assert browser.post("/pengiriman/1/ulang", data={"csrf_token": "x"}).status_code == 403


def test_logout_ends_the_session(browser: TestClient) -> None:
    log_in(browser, "siti.op")
    page = browser.get("/unggah")
    answer = browser.post("/keluar", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/masuk?keluar=1"
    assert re.search(r"hub_sesi=\"?\"?;", answer.headers["set-cookie"])
    assert browser.get("/unggah").status_code == 303
    assert "Anda telah keluar" in browser.get("/masuk?keluar=1").text


def test_an_invalid_session_cookie_sends_back_to_the_login(browser: TestClient) -> None:
    browser.cookies.set("hub_sesi", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.abc")
    answer = browser.get("/statistik")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/masuk?lanjut=/statistik&habis=1"
    assert "Sesi Anda berakhir" in browser.get("/masuk?habis=1").text


def test_english_by_switch_cookie_or_browser(browser: TestClient) -> None:
    page = browser.get("/masuk?bahasa=en")
    assert '<html lang="en">' in page.text
    assert "Log in" in page.text
    assert any(c.startswith("hub_bahasa=en") for c in page.headers.get_list("set-cookie"))
    assert '<html lang="en">' in browser.get("/masuk").text  # remembered
    assert "Masuk" in browser.get("/masuk?bahasa=id").text
    fresh = TestClient(browser.app, raise_server_exceptions=False, follow_redirects=False)
    english = fresh.get("/masuk", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in english.text
    assert '<html lang="id">' in fresh.get("/masuk", headers={"Accept-Language": "fr"}).text
    wrong = fresh.get("/masuk?bahasa=xx")
    assert '<html lang="id">' in wrong.text


def test_assets_are_served_by_the_hub_and_pages_carry_no_inline_script(
    browser: TestClient,
) -> None:
    for asset in ("portal.css", "unggah.js", "hasil.js", "persetujuan.js", "ikon.svg"):
        answer = browser.get(f"/aset/{asset}")
        assert answer.status_code == 200, asset
    assert browser.get("/aset/../session.py").status_code == 404
    log_in(browser, "siti.op")
    page = browser.get("/unggah")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert " style=" not in page.text
    assert "http://" not in page.text
    assert "https://" not in page.text
    unknown = browser.get("/tidak-ada")
    assert unknown.status_code == 404
    assert "Tidak ditemukan" in unknown.text

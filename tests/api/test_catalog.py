"""`/schemas` and `/wilayah`: reference data for any valid token, malformed input refused."""

from __future__ import annotations

import orjson

from tests.api.test_operations import SUKARASA


def test_schemas_need_a_token(client):
    for url in ("/api/v1/schemas", "/api/v1/schemas/kelahiran", "/api/v1/wilayah",
                "/api/v1/wilayah/32.73"):  # fmt: skip
        answer = client.get(url)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"


def test_every_record_type_with_its_versions(client, auth):
    answer = client.get("/api/v1/schemas", headers=auth("operator", SUKARASA))
    assert answer.status_code == 200
    items = {item["type"]: item for item in answer.json()["items"]}
    assert set(items) == {"datang", "kelahiran", "kematian", "pindah"}
    assert items["kelahiran"] == {"type": "kelahiran", "title": "Kelahiran", "latest": 1,
                                  "versions": [1]}  # fmt: skip


def test_one_schema_stands_on_its_own(client, auth, routed_hub):
    caller = auth("system", "32.74", ())  # any valid token, any region, no scope needed
    answer = client.get("/api/v1/schemas/kelahiran", headers=caller)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["type"], body["version"], body["versions"]) == ("kelahiran", 1, [1])
    assert b"$ref" not in orjson.dumps(body["schema"]["properties"])
    fields = {f["name"]: f for f in body["fields"]}
    assert fields["nik_ibu"]["pii"] is True
    assert fields["nik_ibu"]["type"] == "string"
    assert body["schema"]["properties"]["nik_ibu"]["pattern"] == "^[0-9]{16}$"
    assert body["wilayah_field"] in fields
    expected = routed_hub.schemas.get("kelahiran")
    assert body["natural_key"] == list(expected.natural_key)
    same = client.get("/api/v1/schemas/kelahiran", params={"version": 1}, headers=caller)
    assert same.json() == body


def test_unknown_or_malformed_schemas(client, auth):
    caller = auth("operator", SUKARASA)
    cases = [
        ("/api/v1/schemas/lahir", {}, 404, "not_found"),
        ("/api/v1/schemas/kelahiran", {"version": "7"}, 404, "not_found"),
        ("/api/v1/schemas/kelahiran", {"version": "0"}, 400, "bad_request"),
        ("/api/v1/schemas/kelahiran", {"version": "v1"}, 400, "bad_request"),
        ("/api/v1/schemas/Kelahiran", {}, 400, "bad_request"),
        ("/api/v1/schemas/" + "a" * 21, {}, 400, "bad_request"),
    ]
    for url, params, status, code in cases:
        answer = client.get(url, params=params, headers=caller)
        assert answer.status_code == status, (url, params)
        assert answer.json()["error"]["code"] == code


def test_one_region(client, auth):
    caller = auth("operator", SUKARASA)
    desa = client.get(f"/api/v1/wilayah/{SUKARASA}", headers=caller)
    assert desa.status_code == 200
    assert desa.json() == {
        "kode": SUKARASA,
        "nama": "Sukarasa",
        "level": 4,
        "level_name": "desa",
        "induk": "32.73.01",
        "induk_nama": "Sukasari",
        "children": 0,
    }
    kota = client.get("/api/v1/wilayah/32.73", headers=caller).json()
    assert (kota["nama"], kota["level_name"], kota["children"]) == ("Kota Bandung", "kabkota", 5)
    provinsi = client.get("/api/v1/wilayah/32", headers=caller).json()
    assert (provinsi["induk"], provinsi["induk_nama"], provinsi["children"]) == (None, None, 1)


def test_unknown_or_malformed_regions(client, auth):
    caller = auth("operator", SUKARASA)
    for kode, status in [("32.74", 404), ("32.73.01.9999", 404), ("32.7", 400), ("3273", 400),
                         ("32.73.01.1001.1", 400), ("abc", 400)]:  # fmt: skip
        answer = client.get(f"/api/v1/wilayah/{kode}", headers=caller)
        assert answer.status_code == status, kode
        assert answer.json()["error"]["code"] == ("not_found" if status == 404 else "bad_request")


def test_find_regions(client, auth):
    caller = auth("verifikator", "32.73.01")

    def codes(**params: str) -> list[str]:
        answer = client.get("/api/v1/wilayah", params=params, headers=caller)
        assert answer.status_code == 200, answer.text
        return [region["kode"] for region in answer.json()["items"]]

    assert codes(q="suka") == ["32.73.01", SUKARASA]
    assert codes(q="  SUKA  ") == ["32.73.01", SUKARASA]
    assert codes(induk="32.73.08") == ["32.73.08.1001", "32.73.08.1002", "32.73.08.1003"]
    assert codes(q="lebak", induk="32.73.02") == ["32.73.02.1002", "32.73.02.1006"]
    assert codes(q="lebak", induk="32.73.01") == []
    assert codes(q="%") == []
    assert len(codes()) == 20
    assert codes(limit="2") == ["32", "32.73"]
    region = client.get("/api/v1/wilayah", params={"q": "cihapit"}, headers=caller).json()
    assert region["items"] == [{"kode": "32.73.09.1001", "nama": "Cihapit", "level": 4,
                                "level_name": "desa", "induk": "32.73.09"}]  # fmt: skip


def test_bad_region_searches(client, auth):
    caller = auth("operator", SUKARASA)
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"induk": "32.7"},
                   {"q": "a" * 101}, {"q": "suka\x00"}):  # fmt: skip
        answer = client.get("/api/v1/wilayah", params=params, headers=caller)
        assert answer.status_code == 400, params
        assert answer.json()["error"]["details"] == {"parameter": next(iter(params))}

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from jsonschema import Draft202012Validator

from hub.errors import ConfigValidationError, RoutingError
from hub.routes import (
    ROUTES_SCHEMA,
    AllowedHours,
    ApproveStep,
    ConnectorConfig,
    DeliverStep,
    Match,
    Route,
    RoutesConfig,
    VerifyStep,
    VerifySubject,
    load_routes,
    parse_routes,
)
from hub.schemas import SchemaRegistry

REPO = Path(__file__).resolve().parents[2]
REGISTRY = SchemaRegistry.load()
WIB = ZoneInfo("Asia/Jakarta")
WIT = ZoneInfo("Asia/Jayapura")
UTC = ZoneInfo("UTC")
SECRET = "Rah4sia-Sekali!"
ENV = {
    "HUB_DUKCAPIL_ID_LEMBAGA": "lembaga-01",
    "HUB_DUKCAPIL_USER": "hub-user",
    "HUB_DUKCAPIL_PASSWORD": SECRET,
    "HUB_DUKCAPIL_IP": "10.0.0.7",
    "HUB_SIAK_CLIENT_ID": "hub-client",
    "HUB_SIAK_CLIENT_SECRET": "siak-" + SECRET,
}
KELAHIRAN = {"nik_ibu": "3273014506900001", "nama_ibu": "SITI", "jenis_kelahiran": 1}


def base() -> dict[str, Any]:
    """A small valid document; each bad-input case breaks one thing in it."""
    return copy.deepcopy(
        {
            "version": 1,
            "connectors": {
                "dukcapil": {
                    "adapter": "dukcapil",
                    "base_url": "http://dukcapil.test",
                    "credentials": {
                        "user_id": "${HUB_DUKCAPIL_USER}",
                        "password": "${HUB_DUKCAPIL_PASSWORD}",
                    },
                    "rate_limit": {"per_second": 5},
                    "daily_quota": {"limit": 100, "resets_at": "00:00"},
                    "allowed_hours": {"from": "06:00", "to": "22:00"},
                    "fields": {"kelahiran": ["nik_ibu", "nama_ibu", "nik_ayah", "nama_ayah"]},
                },
                "siak": {
                    "adapter": "siak",
                    "base_url": "https://siak.test/api",
                    "credentials": {
                        "client_id": "${HUB_SIAK_CLIENT_ID}",
                        "client_secret": "${HUB_SIAK_CLIENT_SECRET}",
                    },
                    "fields": {"kelahiran": ["nama_bayi", "nik_ibu", "nama_ibu", "tanggal_lahir"]},
                },
            },
            "routes": [
                {
                    "name": "kelahiran",
                    "match": {"record_type": "kelahiran"},
                    "steps": [
                        {
                            "verify": {
                                "connector": "dukcapil",
                                "subjects": [
                                    {
                                        "nik": "nik_ibu",
                                        "role": "parent",
                                        "elements": {"NAMA_LGKP": "nama_ibu"},
                                    },
                                    {
                                        "nik": "nik_ayah",
                                        "optional": True,
                                        "elements": {"NAMA_LGKP": "nama_ayah"},
                                    },
                                ],
                            }
                        },
                        {"approve": {"by": "auto"}},
                        {"deliver": {"connector": "siak", "fields": ["nama_bayi", "nik_ibu"]}},
                    ],
                }
            ],
        }
    )


def parse(document: Any, environ: dict[str, str] | None = None) -> RoutesConfig:
    return parse_routes(document, ENV if environ is None else environ, schemas=REGISTRY)


def errors_of(document: Any, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        parse(document, environ)
    assert str(caught.value).startswith("routes.yaml is not valid")
    return caught.value.errors


def verify(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["routes"][0]["steps"][0]["verify"]


def subject(doc: dict[str, Any], k: int = 0) -> dict[str, Any]:
    return verify(doc)["subjects"][k]


def deliver(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["routes"][0]["steps"][2]["deliver"]


def dukcapil(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["connectors"]["dukcapil"]


# ---------------------------------------------------------------- the shipped file


def shipped(environ: dict[str, str] | None = None) -> RoutesConfig:
    return load_routes(REPO / "routes.yaml", ENV if environ is None else environ, schemas=REGISTRY)


def test_shipped_file_routes_every_type():
    config = shipped()
    assert config.path == REPO / "routes.yaml"
    expected = {
        "kelahiran": "auto",
        "kematian": "auto",
        "pindah": "kecamatan",
        "datang": "kecamatan",
    }
    for record_type, approval in expected.items():
        for region in ("32.73.01.1001", "91.01.01.2001", "11.01.01.2001"):
            route = config.route_for(record_type, region, {})
            assert route is not None
            assert route.name == record_type
        verify_step, approve, deliver_step = route.steps
        assert isinstance(verify_step, VerifyStep)
        assert verify_step.connector == "dukcapil"
        assert approve == ApproveStep(approval)
        assert deliver_step == DeliverStep("siak")
    assert config.route_for("perkawinan", "32.73.01.1001", {}) is None


def test_shipped_verify_steps():
    config = shipped()

    def subjects(name: str) -> tuple[VerifySubject, ...]:
        step = config.route(name).steps[0]
        assert isinstance(step, VerifyStep)
        return step.subjects

    assert subjects("kelahiran") == (
        VerifySubject("nik_ibu", {"NAMA_LGKP": "nama_ibu"}, "parent"),
        VerifySubject("nik_ayah", {"NAMA_LGKP": "nama_ayah"}, "parent", optional=True),
    )
    assert subjects("kematian") == (VerifySubject("nik", {"NAMA_LGKP": "nama_lengkap"}),)
    mover = VerifySubject("nik", {"NAMA_LGKP": "nama_lengkap", "NO_KK": "no_kk"}, "mover")
    assert subjects("pindah") == subjects("datang") == (mover,)
    kematian = config.route("kematian").steps[0]
    kelahiran = config.route("kelahiran").steps[0]
    assert isinstance(kematian, VerifyStep)
    assert isinstance(kelahiran, VerifyStep)
    assert kematian.on["11"] == "pass"
    assert dict(kelahiran.on) == {
        "08": "verify_failed",
        "11": "flag",
        "12": "flag",
        "13": "verify_failed",
        "14": "flag",
        "15": "verify_failed",
    }


def test_shipped_connectors():
    config = shipped()
    duk, siak = config.connectors["dukcapil"], config.connectors["siak"]
    assert duk.as_adapter_config() == {
        "base_url": "http://127.0.0.1:8701",
        "timeout": 10.0,
        "credentials": {
            "id_lembaga": "lembaga-01",
            "user_id": "hub-user",
            "password": SECRET,
            "ip_user": "10.0.0.7",
        },
        "options": {"threshold": 80},
    }
    assert siak.base_url == "http://127.0.0.1:8702"
    assert dict(siak.credentials) == {"client_id": "hub-client", "client_secret": "siak-" + SECRET}
    assert duk.rate_limit is not None
    assert duk.rate_limit.per_second == 5
    assert duk.daily_quota is not None
    assert (duk.daily_quota.limit, duk.daily_quota.resets_at) == (10000, time(0, 0))
    assert duk.allowed_hours == AllowedHours(time(6), time(22), "Asia/Jakarta")
    assert SECRET not in repr(duk)
    assert SECRET not in repr(config)
    # SIAK gets every field of every type; Dukcapil only what the verify steps send.
    for schema in REGISTRY:
        assert set(siak.fields[schema.record_type]) == set(schema.fields)
        route = config.route(schema.record_type)
        step = route.steps[0]
        assert isinstance(step, VerifyStep)
        needed = {f for s in step.subjects for f in (s.nik, *s.elements.values())}
        assert set(duk.fields[schema.record_type]) == needed
        assert config.deliver_fields(DeliverStep("siak"), schema.record_type) == tuple(
            siak.fields[schema.record_type]
        )


def test_shipped_urls_come_from_the_environment():
    environ = {**ENV, "HUB_DUKCAPIL_URL": "https://dukcapil.go.id", "HUB_SIAK_URL": ""}
    config = shipped(environ)
    assert config.connectors["dukcapil"].base_url == "https://dukcapil.go.id"
    assert config.connectors["siak"].base_url == "http://127.0.0.1:8702"  # empty: the default


def test_shipped_file_without_credentials_names_every_variable():
    with pytest.raises(ConfigValidationError) as caught:
        shipped({})
    assert sorted(caught.value.errors) == sorted(
        [
            "connectors.dukcapil.credentials.id_lembaga: environment variable HUB_DUKCAPIL_ID_LEMBAGA is not set",
            "connectors.dukcapil.credentials.user_id: environment variable HUB_DUKCAPIL_USER is not set",
            "connectors.dukcapil.credentials.password: environment variable HUB_DUKCAPIL_PASSWORD is not set",
            "connectors.dukcapil.credentials.ip_user: environment variable HUB_DUKCAPIL_IP is not set",
            "connectors.siak.credentials.client_id: environment variable HUB_SIAK_CLIENT_ID is not set",
            "connectors.siak.credentials.client_secret: environment variable HUB_SIAK_CLIENT_SECRET is not set",
        ]
    )


def test_routes_schema_is_described_and_closed():
    schema = orjson.loads(ROUTES_SCHEMA.read_bytes())
    Draft202012Validator.check_schema(schema)
    defs = schema["$defs"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        return {**defs[ref.rsplit("/", 1)[-1]], **node} if ref else node

    def walk(node: dict[str, Any], where: str) -> None:
        node = resolve(node)
        if "properties" in node:
            assert node.get("additionalProperties") is False, where
        for name, prop in node.get("properties", {}).items():
            assert resolve(prop).get("description"), f"{where}.{name}"
            walk(prop, f"{where}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{where}.{key}")

    walk(schema, "")
    assert schema["$defs"]["connector"]["properties"]["options"] == {
        "description": schema["$defs"]["connector"]["properties"]["options"]["description"],
        "type": "object",  # the adapter validates its own options
    }


# ---------------------------------------------------------------- every rule


Mutation = Callable[[dict[str, Any]], object]

# fmt: off
CASES: list[tuple[str, Mutation, str]] = [
    ("schema-path", lambda d: subject(d, 1).update(nikk="x"), "routes[0].steps[0].verify.subjects[1]: Additional properties are not allowed ('nikk' was unexpected)"),
    ("version", lambda d: d.update(version=2), "version: 1 was expected"),
    ("top-level-key", lambda d: d.update(pipelines={}), "(top level): Additional properties are not allowed ('pipelines'"),
    ("adapter", lambda d: d["connectors"]["siak"].update(adapter="sap"), "connectors.siak.adapter: 'sap' is not one of ['dukcapil', 'siak']"),
    ("connector-name", lambda d: d["connectors"].update(Siak2=d["connectors"]["siak"]), "connectors: 'Siak2' must be lower-case letters"),
    ("unknown-connector", lambda d: deliver(d).update(connector="siakk"), "routes[0].steps[2].deliver.connector: unknown connector 'siakk' (defined: dukcapil, siak)"),
    ("verify-on-siak", lambda d: verify(d).update(connector="siak"), "routes[0].steps[0].verify.connector: 'siak' is a siak connector; a verify step needs dukcapil"),
    ("deliver-on-dukcapil", lambda d: deliver(d).update(connector="dukcapil"), "routes[0].steps[2].deliver.connector: 'dukcapil' is a dukcapil connector; a deliver step needs siak"),
    ("record-type", lambda d: d["routes"][0]["match"].update(record_type="lahir"), "routes[0].match.record_type: 'lahir' is not a record type (known: datang, kelahiran, kematian, pindah)"),
    ("connector-record-type", lambda d: d["connectors"]["siak"]["fields"].update(perkawinan=["nik"]), "connectors.siak.fields.perkawinan: 'perkawinan' is not a record type"),
    ("subject-nik", lambda d: subject(d, 1).update(nik="nik_ibuu"), "routes[0].steps[0].verify.subjects[1].nik: 'nik_ibuu' is not a field of kelahiran"),
    ("element-target", lambda d: subject(d)["elements"].update(NAMA_LGKP="nama_ibuu"), "routes[0].steps[0].verify.subjects[0].elements.NAMA_LGKP: 'nama_ibuu' is not a field of kelahiran"),
    ("element-name", lambda d: subject(d)["elements"].update(NAMA="nama_ibu"), "routes[0].steps[0].verify.subjects[0].elements: 'NAMA' is not one of"),
    ("where-key", lambda d: d["routes"][0]["match"].update(where={"jenis_kelamn": ["L"]}), "routes[0].match.where.jenis_kelamn: 'jenis_kelamn' is not a field of kelahiran"),
    ("where-values", lambda d: d["routes"][0]["match"].update(where={"jenis_kelamin": []}), "routes[0].match.where.jenis_kelamin: [] should be non-empty"),
    ("connector-field", lambda d: d["connectors"]["siak"]["fields"]["kelahiran"].append("nama_bayy"), "connectors.siak.fields.kelahiran[4]: 'nama_bayy' is not a field of kelahiran"),
    ("deliver-field", lambda d: deliver(d)["fields"].append("nama_bayy"), "routes[0].steps[2].deliver.fields[2]: 'nama_bayy' is not a field of kelahiran"),
    ("deliver-not-allowed", lambda d: deliver(d)["fields"].append("berat_bayi"), "routes[0].steps[2].deliver.fields[2]: 'berat_bayi' is not in connectors.siak.fields.kelahiran"),
    ("verify-not-allowed", lambda d: subject(d)["elements"].update(TGL_LHR="tanggal_lahir"), "routes[0].steps[0].verify.subjects[0].elements.TGL_LHR: 'tanggal_lahir' is not in connectors.dukcapil.fields.kelahiran"),
    ("verify-nik-not-allowed", lambda d: subject(d, 1).update(nik="nik_pelapor", elements={}), "routes[0].steps[0].verify.subjects[1].nik: 'nik_pelapor' is not in connectors.dukcapil.fields.kelahiran"),
    ("no-fields-for-type", lambda d: d["connectors"]["siak"].pop("fields"), "routes[0].steps[2].deliver.connector: connectors.siak.fields has no entry for kelahiran"),
    ("subject-twice", lambda d: subject(d, 1).update(nik="nik_ibu"), "routes[0].steps[0].verify.subjects[1].nik: 'nik_ibu' is already verified by subjects[0]"),
    ("on-code", lambda d: verify(d).update(on={"05": "pass"}), "routes[0].steps[0].verify.on: '05' is not one of ['08', '11', '12', '13', '14', '15']"),
    ("on-action", lambda d: verify(d).update(on={"11": "ignore"}), "routes[0].steps[0].verify.on.11: 'ignore' is not one of ['pass', 'flag', 'verify_failed']"),
    ("mismatch", lambda d: verify(d).update(mismatch="reject"), "routes[0].steps[0].verify.mismatch: 'reject' is not one of"),
    ("role", lambda d: subject(d).update(role="ibu"), "routes[0].steps[0].verify.subjects[0].role: 'ibu' is not one of"),
    ("approve-by", lambda d: d["routes"][0]["steps"][1]["approve"].update(by="kelurahan"), "routes[0].steps[1].approve.by: 'kelurahan' is not one of ['kecamatan', 'auto']"),
    ("step-kind", lambda d: d["routes"][0]["steps"][1].update(deliver={"connector": "siak"}), "routes[0].steps[1]: a step is exactly one of verify, approve or deliver"),
    ("order", lambda d: d["routes"][0]["steps"].reverse(), "routes[0].steps[1]: approve cannot come after deliver"),
    ("two-approvals", lambda d: d["routes"][0]["steps"].insert(1, {"approve": {"by": "kecamatan"}}), "routes[0].steps[2]: a route has at most one approve step"),
    ("no-deliver", lambda d: d["routes"][0]["steps"].pop(), "routes[0].steps: a route needs at least one deliver step"),
    ("deliver-twice", lambda d: d["routes"][0]["steps"].append({"deliver": {"connector": "siak"}}), "routes[0].steps[3].deliver.connector: 'siak' already receives this route's records"),
    ("time", lambda d: dukcapil(d)["allowed_hours"].update({"from": "25:00"}), "connectors.dukcapil.allowed_hours.from: '25:00' must be a time of day \"HH:MM\""),
    ("time-short", lambda d: dukcapil(d)["daily_quota"].update(resets_at="6:00"), "connectors.dukcapil.daily_quota.resets_at: '6:00' must be a time of day"),
    ("time-number", lambda d: dukcapil(d)["allowed_hours"].update(to=1320), "connectors.dukcapil.allowed_hours.to: 1320 must be a time of day"),
    ("timezone", lambda d: dukcapil(d)["daily_quota"].update(timezone="Asia/Bandung"), "connectors.dukcapil.daily_quota.timezone: unknown time zone 'Asia/Bandung'"),
    ("timezone-hours", lambda d: dukcapil(d)["allowed_hours"].update(timezone="WIB"), "connectors.dukcapil.allowed_hours.timezone: unknown time zone 'WIB'"),
    ("wilayah-partial", lambda d: d["routes"][0]["match"].update(wilayah=["32.7"]), "routes[0].match.wilayah[0]: '32.7' must be a region code prefix PP, PP.KK, PP.KK.CC or PP.KK.CC.DDDD"),
    ("wilayah-undotted", lambda d: d["routes"][0]["match"].update(wilayah=["32", "3273"]), "routes[0].match.wilayah[1]: '3273' must be a region code prefix"),
    ("wilayah-desa", lambda d: d["routes"][0]["match"].update(wilayah=["32.73.01.100"]), "routes[0].match.wilayah[0]: '32.73.01.100' must be a region code prefix"),
    ("base-url", lambda d: dukcapil(d).update(base_url="ftp://dukcapil.test"), "connectors.dukcapil.base_url: 'ftp://dukcapil.test' must be an http:// or https:// URL"),
    ("duplicate-route", lambda d: d["routes"].append(copy.deepcopy(d["routes"][0])), "routes[1].name: duplicate route name 'kelahiran' (see routes[0])"),
    ("route-name", lambda d: d["routes"][0].update(name="Kelahiran Kota"), "routes[0].name: 'Kelahiran Kota' must be lower-case letters"),
    ("rate", lambda d: dukcapil(d)["rate_limit"].update(per_second=0), "connectors.dukcapil.rate_limit.per_second: 0 is less than or equal to the minimum of 0"),
    ("burst", lambda d: dukcapil(d)["rate_limit"].update(burst=0), "connectors.dukcapil.rate_limit.burst: 0 is less than the minimum of 1"),
    ("quota", lambda d: dukcapil(d)["daily_quota"].update(limit=0), "connectors.dukcapil.daily_quota.limit: 0 is less than the minimum of 1"),
    ("timeout", lambda d: dukcapil(d).update(timeout=-1), "connectors.dukcapil.timeout: -1 is less than or equal to the minimum of 0"),
    ("concurrency", lambda d: dukcapil(d).update(concurrency=0), "connectors.dukcapil.concurrency: 0 is less than the minimum of 1"),
    ("retry", lambda d: dukcapil(d).update(retry={"initial": 10, "maximum": 5}), "connectors.dukcapil.retry.maximum: must be at least initial (10.0)"),
    ("breaker", lambda d: dukcapil(d).update(circuit_breaker={"reset_after": 0}), "connectors.dukcapil.circuit_breaker.reset_after: 0 is less than or equal to the minimum of 0"),
    ("credential-literal", lambda d: dukcapil(d)["credentials"].update(password="hunter22"), "connectors.dukcapil.credentials.password: credentials come from the environment only"),
    ("credential-default", lambda d: dukcapil(d)["credentials"].update(password="${HUB_PW:-hunter22}"), "connectors.dukcapil.credentials.password: credentials come from the environment only"),
    ("credential-two-vars", lambda d: dukcapil(d)["credentials"].update(password="${HUB_A}${HUB_B}"), "connectors.dukcapil.credentials.password: credentials come from the environment only"),
    ("credential-number", lambda d: dukcapil(d)["credentials"].update(password=123456), "connectors.dukcapil.credentials.password: credentials come from the environment only"),
    ("credentials-not-mapping", lambda d: dukcapil(d).update(credentials="hunter22"), "connectors.dukcapil.credentials: must map credential names to ${VAR}"),
    ("credential-missing", lambda d: dukcapil(d)["credentials"].update(ip_user="${HUB_DUKCAPIL_IP}"), "connectors.dukcapil.credentials.ip_user: environment variable HUB_DUKCAPIL_IP is not set"),
    ("variable-missing", lambda d: dukcapil(d).update(base_url="${HUB_NOWHERE}/x"), "connectors.dukcapil.base_url: environment variable HUB_NOWHERE is not set"),
    ("variable-malformed", lambda d: dukcapil(d).update(base_url="http://${1HOST}"), "connectors.dukcapil.base_url: malformed ${...}"),
]
# The rules of these cases hide none of the others.
TOGETHER = [
    "version", "top-level-key", "connector-record-type", "subject-nik", "element-target",
    "where-key", "connector-field", "deliver-not-allowed", "on-action", "mismatch", "role",
    "approve-by", "time", "timezone", "wilayah-undotted", "base-url", "rate", "quota", "timeout",
    "concurrency", "retry", "breaker", "credential-literal", "duplicate-route",
]
# fmt: on


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_names_its_path(mutate: Mutation, expected: str):
    doc = base()
    parse(doc)  # the base document is valid
    mutate(doc)
    errors = errors_of(doc, {k: v for k, v in ENV.items() if k != "HUB_DUKCAPIL_IP"})
    assert any(expected in e for e in errors), errors
    assert not any("hunter22" in e or "123456" in e for e in errors), errors


def test_every_problem_is_reported_at_once():
    doc = base()
    cases = {name: (mutate, expected) for name, mutate, expected in CASES}
    for name in TOGETHER:
        cases[name][0](doc)
    errors = errors_of(doc)
    assert len(errors) >= len(TOGETHER)
    missing = [cases[n][1] for n in TOGETHER if not any(cases[n][1] in e for e in errors)]
    assert not missing, errors


def test_route_problems_reported_together():
    doc = base()
    subject(doc, 1)["nik"] = "nik_ibuu"
    deliver(doc)["fields"].append("berat_bayi")
    doc["routes"][0]["steps"].insert(0, {"approve": {"by": "auto"}})
    doc["routes"].append({"name": "kelahiran", "match": {"record_type": "kelahiran"}, "steps": []})
    dukcapil(doc)["allowed_hours"]["timezone"] = "Mars/Olympus"
    errors = errors_of(doc)
    assert errors == [
        "connectors.dukcapil.allowed_hours.timezone: unknown time zone 'Mars/Olympus' (use an IANA name: Asia/Jakarta, Asia/Makassar, Asia/Jayapura)",
        "routes[0].steps[1]: verify cannot come after approve: steps are verify..., then at most one approve, then deliver...",
        "routes[0].steps[1].verify.subjects[1].nik: 'nik_ibuu' is not a field of kelahiran",
        "routes[0].steps[2]: a route has at most one approve step",
        "routes[0].steps[3].deliver.fields[2]: 'berat_bayi' is not in connectors.siak.fields.kelahiran, so siak may not receive it",
        "routes[1].name: duplicate route name 'kelahiran' (see routes[0])",
        "routes[1].steps: a route needs at least one deliver step, after any verify/approve",
    ]


# ---------------------------------------------------------------- files and YAML


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_errors(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        load_routes(path, ENV if environ is None else environ, schemas=REGISTRY)
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, OSError)
    return caught.value.errors


MINIMAL = """\
version: 1
connectors:
  siak:
    adapter: siak
    base_url: ${HUB_SIAK_URL:-http://127.0.0.1:8702}
    credentials: {client_id: "${HUB_SIAK_CLIENT_ID}"}
    fields: {kematian: [nik, nama_lengkap]}
  dukcapil:
    adapter: dukcapil
    base_url: http://127.0.0.1:8701
    credentials:
      password: ${HUB_DUKCAPIL_PASSWORD}
    fields: {kematian: [nik]}
routes:
  - name: kematian
    match: {record_type: kematian}
    steps:
      - verify:
          connector: dukcapil
          subjects: [{nik: nik}]
          on: {11: pass, 08: flag, 12: verify_failed}
      - deliver: {connector: siak}
"""


def test_yaml_scalars_are_read_the_yaml_1_2_way(tmp_path):
    config = load_routes(write(tmp_path, MINIMAL), ENV, schemas=REGISTRY)
    step = config.route("kematian").steps[0]
    assert isinstance(step, VerifyStep)  # `on` is a key, not the boolean true
    assert step.on == {
        "08": "flag",
        "11": "pass",
        "12": "verify_failed",
        "13": "verify_failed",
        "14": "flag",
        "15": "verify_failed",
    }


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    text = MINIMAL.replace("password: ${HUB_DUKCAPIL_PASSWORD}", f"password: {SECRET}: x")
    (error,) = load_errors(write(tmp_path, text))
    assert error.startswith(f"{tmp_path / 'routes.yaml'}: YAML syntax error at line 12, column ")
    assert SECRET not in error


def test_yaml_duplicate_key_is_an_error(tmp_path):
    text = MINIMAL.replace("    adapter: siak\n", "    adapter: siak\n    adapter: dukcapil\n")
    (error,) = load_errors(write(tmp_path, text))
    assert "line 5, column 5: duplicate key 'adapter'" in error


def test_unreadable_and_empty_files(tmp_path):
    (error,) = load_errors(tmp_path / "missing.yaml")
    assert error == f"{tmp_path / 'missing.yaml'}: cannot be read: No such file or directory"
    (error,) = load_errors(tmp_path)
    assert error.startswith(f"{tmp_path}: cannot be read")
    assert load_errors(write(tmp_path, "# nothing\n")) == ["(top level): the file is empty"]
    assert load_errors(write(tmp_path, "- 1\n")) == ["(top level): [1] is not of type 'object'"]
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: \xff\xfe\x00")
    (error,) = load_errors(bad)
    assert "not readable as YAML text" in error


def test_yaml_anchors_share_blocks(tmp_path):
    text = MINIMAL.replace(
        "routes:\n",
        "x-retry: &retry {max_attempts: 3, maximum: 60}\nroutes:\n",
    )
    errors = load_errors(write(tmp_path, text))
    assert errors == [
        "(top level): Additional properties are not allowed ('x-retry' was unexpected)"
    ]
    text = MINIMAL.replace(
        "    fields: {kematian: [nik]}\n",
        "    fields: {kematian: [nik]}\n    retry: &retry {max_attempts: 3, maximum: 60}\n",
    )
    text = text.replace("  dukcapil:\n", "  dukcapil:\n").replace(
        "    fields: {kematian: [nik, nama_lengkap]}\n",
        "    fields: {kematian: [nik, nama_lengkap]}\n    retry: {<<: *retry, maximum: 120}\n",
    )
    siak, dukcapil_and_routes = text.split("  dukcapil:\n")
    head, siak_block = siak.split("connectors:\n")
    dukcapil_block, routes = dukcapil_and_routes.split("routes:\n")
    text = f"{head}connectors:\n  dukcapil:\n{dukcapil_block}{siak_block}routes:\n{routes}"
    config = load_routes(write(tmp_path, text), ENV, schemas=REGISTRY)
    assert config.connectors["dukcapil"].retry.maximum == 60
    assert config.connectors["siak"].retry.max_attempts == 3
    assert config.connectors["siak"].retry.maximum == 120


# ---------------------------------------------------------------- environment


def test_interpolation_defaults_and_overrides():
    doc = base()
    dukcapil(doc)["base_url"] = "${HUB_HOST:-http://127.0.0.1:8701}/v1"
    dukcapil(doc)["options"] = {
        "label": "$${literal} ${HUB_LABEL:-x}",
        "nested": [{"a": "${HUB_LABEL}"}],
    }
    dukcapil(doc)["allowed_hours"]["from"] = "${HUB_FROM:-07:30}"
    config = parse(doc, {**ENV, "HUB_LABEL": "kota"})
    duk = config.connectors["dukcapil"]
    assert duk.base_url == "http://127.0.0.1:8701/v1"
    assert duk.as_adapter_config()["options"] == {
        "label": "${literal} kota",
        "nested": [{"a": "kota"}],
    }
    assert duk.allowed_hours is not None
    assert duk.allowed_hours.start == time(7, 30)
    config = parse(
        doc, {**ENV, "HUB_HOST": "https://dukcapil.go.id", "HUB_LABEL": "", "HUB_FROM": "08:00"}
    )
    duk = config.connectors["dukcapil"]
    assert duk.base_url == "https://dukcapil.go.id/v1"
    assert duk.options["label"] == "${literal} x"  # empty counts as unset for a default
    assert duk.options["nested"][0]["a"] == ""
    assert duk.allowed_hours is not None
    assert duk.allowed_hours.start == time(8)


def test_missing_variable_names_path_and_variable_once():
    doc = base()
    dukcapil(doc)["base_url"] = "${HUB_DUKCAPIL_URL}"
    doc["routes"][0]["match"]["where"] = {"jenis_kelamin": ["${HUB_SEX}"]}
    errors = errors_of(doc)
    assert errors == [
        "connectors.dukcapil.base_url: environment variable HUB_DUKCAPIL_URL is not set",
        "routes[0].match.where.jenis_kelamin[0]: environment variable HUB_SEX is not set",
    ]


def test_empty_credential_is_an_error():
    errors = errors_of(base(), {**ENV, "HUB_DUKCAPIL_PASSWORD": ""})
    assert errors == [
        "connectors.dukcapil.credentials.password: environment variable HUB_DUKCAPIL_PASSWORD is empty"
    ]


def test_secret_values_never_appear_in_errors(tmp_path):
    doc = base()
    dukcapil(doc)["base_url"] = "${HUB_DUKCAPIL_PASSWORD}"  # misused: echoing it would leak
    dukcapil(doc)["options"] = {"timezone": "${HUB_SIAK_CLIENT_SECRET}"}
    dukcapil(doc)["timeout"] = "${HUB_DUKCAPIL_PASSWORD}"
    doc["routes"][0]["match"]["wilayah"] = ["${HUB_SIAK_CLIENT_SECRET}"]
    doc["connectors"]["siak"]["credentials"]["client_id"] = "literal-" + SECRET
    doc["connectors"]["siak"]["credentials"]["token"] = "${HUB_T:-default-" + SECRET + "}"
    errors = errors_of(doc)
    text = "\n".join(errors)
    assert len(errors) >= 5
    assert SECRET not in text
    assert "***" in text
    with pytest.raises(ConfigValidationError) as caught:
        parse(doc)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.errors)


# ---------------------------------------------------------------- matching


def test_wilayah_prefixes_match_whole_parts():
    match = Match("kelahiran", ("32.73", "91.01.01"))
    assert match.matches("kelahiran", "32.73.01.1001", {})
    assert match.matches("kelahiran", "32.73", {})
    assert match.matches("kelahiran", "91.01.01.2003", {})
    assert not match.matches("kelahiran", "32.74.01.1001", {})
    assert not match.matches("kelahiran", "91.01.011.2003", {})
    assert not match.matches("kematian", "32.73.01.1001", {})
    assert not Match("kelahiran", ("32.7",)).matches("kelahiran", "32.73.01.1001", {})
    assert Match("kelahiran").matches("kelahiran", "11.01.01.2001", {})


def test_where_compares_values_as_text():
    match = Match("pindah", where={"klasifikasi_pindah": ("4", "5"), "alasan_pindah": ("1",)})
    assert match.matches("pindah", "32.73.01.1001", {"klasifikasi_pindah": 5, "alasan_pindah": "1"})
    assert not match.matches(
        "pindah", "32.73.01.1001", {"klasifikasi_pindah": 3, "alasan_pindah": 1}
    )
    assert not match.matches("pindah", "32.73.01.1001", {"alasan_pindah": 1})


def test_first_matching_route_wins():
    doc = base()
    special = copy.deepcopy(doc["routes"][0])
    special["name"] = "kelahiran-kembar-bandung"
    special["match"] = {
        "record_type": "kelahiran",
        "wilayah": ["32.73"],
        "where": {"jenis_kelahiran": [2, 3, "4"]},
    }
    doc["routes"].insert(0, special)
    config = parse(doc)
    assert config.routes[0].match.where == {"jenis_kelahiran": ("2", "3", "4")}

    def name(region: str, values: dict[str, Any]) -> str | None:
        route = config.route_for("kelahiran", region, values)
        return route.name if route else None

    assert name("32.73.01.1001", {"jenis_kelahiran": 2}) == "kelahiran-kembar-bandung"
    assert name("32.73.01.1001", KELAHIRAN) == "kelahiran"
    assert name("32.74.01.1001", {"jenis_kelahiran": 2}) == "kelahiran"
    assert config.route("kelahiran") is config.routes[1]
    with pytest.raises(RoutingError, match="no route named 'lahir'"):
        config.route("lahir")


# ---------------------------------------------------------------- allowed hours


def at(hour: int, minute: int = 0, tz: ZoneInfo = WIB, day: int = 1) -> datetime:
    return datetime(2025, 8, day, hour, minute, tzinfo=tz)


def test_day_window():
    hours = AllowedHours(time(6), time(22))
    assert not hours.contains(at(5, 59))
    assert hours.contains(at(6))
    assert hours.contains(at(21, 59))
    assert not hours.contains(at(22))
    assert hours.next_open(at(12)) == at(12)
    assert hours.next_open(at(3)) == at(6)
    assert hours.next_open(at(22, 30)) == at(6, day=2)


def test_overnight_window():
    hours = AllowedHours(time(22), time(6))
    assert hours.contains(at(23))
    assert hours.contains(at(0))
    assert hours.contains(at(5, 59))
    assert not hours.contains(at(6))
    assert not hours.contains(at(12))
    assert hours.next_open(at(1)) == at(1)
    assert hours.next_open(at(6)) == at(22)
    assert hours.next_open(at(21, 59)) == at(22)


def test_window_time_zones():
    hours = AllowedHours(time(6), time(22), "Asia/Jakarta")  # UTC+7
    assert not hours.contains(datetime(2025, 8, 1, 22, 59, tzinfo=UTC))  # 05:59 WIB
    assert hours.contains(datetime(2025, 8, 1, 23, 0, tzinfo=UTC))  # 06:00 WIB
    assert not hours.contains(datetime(2025, 8, 1, 15, 0, tzinfo=UTC))  # 22:00 WIB
    opening = hours.next_open(datetime(2025, 8, 1, 16, 0, tzinfo=UTC))  # 23:00 WIB
    assert opening == datetime(2025, 8, 1, 23, 0, tzinfo=UTC)
    assert opening.tzinfo is UTC  # in the caller's zone
    papua = AllowedHours(time(8), time(16), "Asia/Jayapura")  # UTC+9
    assert papua.next_open(at(6)) == datetime(2025, 8, 1, 8, 0, tzinfo=WIT)
    assert papua.next_open(at(6)) == at(6)  # 06:00 WIB is 08:00 WIT
    assert papua.next_open(at(14)) == at(6, day=2)  # 16:00 WIT: closed until tomorrow
    assert papua.next_open(at(14)) - at(14) == timedelta(hours=16)


def test_window_all_day_and_naive_moments():
    assert AllowedHours(time(0), time(0)).contains(at(3))
    with pytest.raises(ValueError, match="timezone-aware"):
        AllowedHours(time(6), time(22)).contains(datetime(2025, 8, 1, 12))  # noqa: DTZ001


# ---------------------------------------------------------------- steps and fields


def test_deliver_fields_narrow_the_connector():
    config = parse(base())
    step = config.route("kelahiran").steps[2]
    assert step == DeliverStep("siak", ("nama_bayi", "nik_ibu"))
    assert config.deliver_fields(step, "kelahiran") == ("nama_bayi", "nik_ibu")
    assert config.deliver_fields(DeliverStep("siak"), "kelahiran") == (
        "nama_bayi",
        "nik_ibu",
        "nama_ibu",
        "tanggal_lahir",
    )
    # built by hand: still never wider than the connector allows
    assert config.deliver_fields(DeliverStep("siak", ("nik_ibu", "berat_bayi")), "kelahiran") == (
        "nik_ibu",
    )
    assert config.deliver_fields(DeliverStep("siak"), "kematian") == ()
    with pytest.raises(RoutingError, match="no connector named 'sap'"):
        config.deliver_fields(DeliverStep("sap"), "kelahiran")


def test_dataclass_defaults():
    step = VerifyStep("dukcapil", (VerifySubject("nik", {}),), {"11": "pass"})
    assert step.on["11"] == "pass"
    assert step.on["13"] == "verify_failed"
    assert VerifyStep("dukcapil", ()).on["12"] == "flag"
    connector = ConnectorConfig("siak", "siak", "http://x", {"client_secret": SECRET})
    assert connector.fields == {}
    assert connector.retry.max_attempts == 8
    assert connector.circuit_breaker.failure_threshold == 5
    assert connector.as_adapter_config() == {
        "base_url": "http://x",
        "timeout": 10.0,
        "credentials": {"client_secret": SECRET},
        "options": {},
    }
    assert SECRET not in repr(connector)
    route = Route("r", Match("kematian"), (DeliverStep("siak"),))
    assert (
        RoutesConfig({"siak": connector}, (route,)).route_for("kematian", "32.73.01.1001", {})
        is route
    )

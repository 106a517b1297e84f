"""`routes.yaml`: the connectors to the national systems and the route every record takes.

```yaml
version: 1
connectors:                        # name -> one national system
  dukcapil:
    adapter: dukcapil              # dukcapil (verifies NIKs) | siak (receives events)
    base_url: ${HUB_DUKCAPIL_URL:-http://127.0.0.1:8701}
    credentials:                   # each exactly one ${VAR}: from the environment only
      id_lembaga: ${HUB_DUKCAPIL_ID_LEMBAGA}
      user_id: ${HUB_DUKCAPIL_USER}
      password: ${HUB_DUKCAPIL_PASSWORD}
      ip_user: ${HUB_DUKCAPIL_IP}
    timeout: 10                    # seconds per call
    concurrency: 4                 # calls in flight per process
    rate_limit: {per_second: 5, burst: 1}
    daily_quota: {limit: 10000, resets_at: "00:00", timezone: Asia/Jakarta}
    allowed_hours: {from: "06:00", to: "22:00", timezone: Asia/Jakarta}
    retry: {max_attempts: 8, initial: 1, maximum: 300, jitter: 1}
    circuit_breaker: {failure_threshold: 5, reset_after: 30}
    cache_ttl: 86400               # seconds an answer about a NIK is reused
    options: {threshold: 80}       # adapter-specific, checked by the adapter
    fields:                        # record type -> fields it may ever receive
      kelahiran: [nik_ibu, nama_ibu, nik_ayah, nama_ayah]
routes:                            # first match wins
  - name: kelahiran
    match: {record_type: kelahiran, wilayah: ["32.73"], where: {jenis_kelahiran: [1]}}
    steps:                         # verify*, then at most one approve, then deliver+
      - verify:
          connector: dukcapil
          subjects:
            - {nik: nik_ibu, role: parent, elements: {NAMA_LGKP: nama_ibu}}
            - {nik: nik_ayah, role: parent, optional: true, elements: {NAMA_LGKP: nama_ayah}}
          on: {"11": pass}         # record-level code -> pass | flag | verify_failed
          mismatch: flag           # an element "Tidak Sesuai"
      - approve: {by: auto}        # auto | kecamatan
      - deliver: {connector: siak, fields: [...]}   # fields narrow the connector's
```

- `${VAR}` and `${VAR:-default}` work in every string value (the default applies when the
  variable is unset or empty; `$$` is a literal `$`). Numbers and booleans are written as such.
  A credential is exactly one `${VAR}`, without a default; its value never appears in an error.
- YAML is read the YAML 1.2 way: `on`, `yes`, `no` are text, only `true`/`false` are booleans,
  `08` stays text; duplicate keys are errors.
- The whole file is checked at once and every problem is reported with its path
  (`routes[2].steps[0].verify.subjects[1].nik: ...`) in one `ConfigValidationError`: the JSON
  Schema `registry/routes.schema.json`, then what a schema cannot know (record types and fields
  from the schema registry, connector references and kinds, field minimisation, step order,
  time zones, duplicate names).

```python
routes = load_routes("routes.yaml")
route = routes.route_for("kelahiran", "32.73.01.1001", values)
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from hub.errors import ConfigError, ConfigValidationError, RoutingError
from hub.schemas import RecordSchema, SchemaRegistry

ROUTES_SCHEMA: Final = Path(__file__).resolve().parent.parent / "registry" / "routes.schema.json"
DEFAULT_TIMEZONE: Final = "Asia/Jakarta"
VERIFIERS: Final = frozenset({"dukcapil"})
DELIVERERS: Final = frozenset({"siak"})
#: Dukcapil record-level codes and what they do unless a route says otherwise.
DEFAULT_ON: Final[Mapping[str, str]] = MappingProxyType(
    {
        "08": "verify_failed",  # NIK cannot be processed
        "11": "flag",  # found, deceased
        "12": "flag",  # duplicate record
        "13": "verify_failed",  # NIK not found
        "14": "flag",  # NIK inactive
        "15": "verify_failed",  # not in Dukcapil format
    }
)
_INVALID: Final = "routes.yaml is not valid"
_ENV_ONLY: Final = "credentials come from the environment only: write exactly one ${VAR}"
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_CREDENTIAL = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}$")
_REFERENCE = re.compile(
    r"\$\$|\$\{(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})?"
)
_DEFAULTS = re.compile(r":-([^}]*)\}")
_RANK: Final[Mapping[str, int]] = {"verify": 0, "approve": 1, "deliver": 2}

_Loc = tuple[str | int, ...]


# ---------------------------------------------------------------- connector settings


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `per_second` sustained, `burst` back to back."""

    per_second: float
    burst: int = 1


@dataclass(frozen=True, slots=True)
class DailyQuota:
    """Calls allowed per day, counted from `resets_at` local time in `timezone`."""

    limit: int
    resets_at: time = time(0, 0)
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True, slots=True)
class AllowedHours:
    """The window in which a remote system takes calls: `start` inclusive, `end` exclusive.

    `end` before `start` is an overnight window (22:00-06:00); equal times mean all day.

    ```python
    hours = AllowedHours(time(6), time(22))
    hours.contains(moment)    # moment must be timezone-aware
    hours.next_open(moment)   # moment itself when open, else the next opening
    ```
    """

    start: time
    end: time
    timezone: str = DEFAULT_TIMEZONE

    def contains(self, moment: datetime) -> bool:
        now = _local(moment, self.timezone).time()
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def next_open(self, moment: datetime) -> datetime:
        """`moment` when the window is open, else the next opening, in `moment`'s time zone."""
        if self.contains(moment):
            return moment
        local = _local(moment, self.timezone)
        opening = datetime.combine(local.date(), self.start, tzinfo=local.tzinfo)
        if opening <= local:
            opening = datetime.combine(
                local.date() + timedelta(days=1), self.start, tzinfo=local.tzinfo
            )
        return opening.astimezone(moment.tzinfo)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff from `initial` to `maximum` seconds, plus up to `jitter` seconds."""

    max_attempts: int = 8
    initial: float = 1.0
    maximum: float = 300.0
    jitter: float = 1.0


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Open after `failure_threshold` consecutive failures; try again after `reset_after` s."""

    failure_threshold: int = 5
    reset_after: float = 30.0


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """One connector block of `routes.yaml`, credentials resolved from the environment.

    `credentials` are left out of `repr`; `fields` maps a record type to the canonical fields
    this connector may ever receive.
    """

    name: str
    adapter: str
    base_url: str
    credentials: Mapping[str, str] = field(repr=False)
    timeout: float = 10.0
    concurrency: int = 4
    rate_limit: RateLimit | None = None
    daily_quota: DailyQuota | None = None
    allowed_hours: AllowedHours | None = None
    retry: RetryPolicy = RetryPolicy()
    circuit_breaker: BreakerPolicy = BreakerPolicy()
    cache_ttl: float = 86400.0
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Variables of credentials that were unset or empty when loaded without
    # `require_credentials` (ingest routes records without talking to anybody).
    missing_credentials: tuple[str, ...] = ()

    def as_adapter_config(self) -> dict[str, Any]:
        """The configuration the adapter classes take, as plain (mutable) containers.
        `ConfigError` when a credential's environment variable was missing."""
        if self.missing_credentials:
            names = ", ".join(self.missing_credentials)
            raise ConfigError(f"connector {self.name}: environment variable(s) {names} not set")
        return {
            "base_url": self.base_url,
            "timeout": self.timeout,
            "credentials": dict(self.credentials),
            "options": _thaw(self.options),
        }


# ---------------------------------------------------------------- routes


@dataclass(frozen=True, slots=True)
class VerifySubject:
    """One NIK of a record (`nik` names its field) and the elements checked with it."""

    nik: str
    elements: Mapping[str, str]
    role: str = "subject"
    optional: bool = False


@dataclass(frozen=True, slots=True)
class VerifyStep:
    """Check the subjects' NIKs with a Dukcapil connector.

    `on` maps each record-level code to `pass`, `flag` or `verify_failed`; codes it leaves
    out take `DEFAULT_ON`, so `on` always holds all six.
    """

    connector: str
    subjects: tuple[VerifySubject, ...]
    on: Mapping[str, str] = field(default_factory=dict)
    mismatch: str = "flag"

    def __post_init__(self) -> None:
        object.__setattr__(self, "on", MappingProxyType({**DEFAULT_ON, **self.on}))


@dataclass(frozen=True, slots=True)
class ApproveStep:
    """`kecamatan`: a verifikator decides; `auto`: approved when every check passed."""

    by: str


@dataclass(frozen=True, slots=True)
class DeliverStep:
    """Send to a receiving connector; `fields` narrows the connector's allowed fields."""

    connector: str
    fields: tuple[str, ...] | None = None


Step: TypeAlias = VerifyStep | ApproveStep | DeliverStep


@dataclass(frozen=True, slots=True)
class Match:
    """Which records a route takes.

    `wilayah` holds dotted code prefixes matched on whole parts ("32.73" matches
    "32.73.01.1001", never "32.7" it); empty means any region. `where` maps a field to the
    values (compared as text) it must hold.
    """

    record_type: str
    wilayah: tuple[str, ...] = ()
    where: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def matches(self, record_type: str, kode_wilayah: str, values: Mapping[str, Any]) -> bool:
        if record_type != self.record_type:
            return False
        if self.wilayah and not any(_within(kode_wilayah, p) for p in self.wilayah):
            return False
        for name, accepted in self.where.items():
            value = values.get(name)
            if value is None or _text(value) not in accepted:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Route:
    """A named route: the records `match` takes go through `steps` in order."""

    name: str
    match: Match
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a job runs: a crontab line or an interval in seconds, in `timezone`."""

    cron: str | None = None
    interval: float | None = None
    timezone: str = DEFAULT_TIMEZONE

    def describe(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {self.interval:g} s"


@dataclass(frozen=True, slots=True)
class JobSettings:
    """A built-in job's block of `jobs:`: its schedule (None: the default) or off."""

    schedule: Schedule | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One legacy database of `sources:` (see `adapters/sqlserver`). The connection string
    is resolved from the environment and left out of `repr`."""

    name: str
    adapter: str
    record_type: str
    key: str
    strategy: str
    connection: str = field(repr=False, default="")
    table: str | None = None
    query: str | None = None
    columns: Mapping[str, str | tuple[str, ...]] | None = None
    cursor_column: str | None = None
    kelurahan: str | None = None
    page_rows: int = 5000
    dialect: str = "auto"
    delete_scan: bool = True
    schedule: Schedule | None = None
    missing_credentials: tuple[str, ...] = ()

    @property
    def locator(self) -> str:
        return self.table or "query"

    def as_adapter_config(self) -> dict[str, Any]:
        """The configuration the source adapter takes; `ConfigError` when the connection
        string's environment variable was missing."""
        if self.missing_credentials:
            names = ", ".join(self.missing_credentials)
            raise ConfigError(f"source {self.name}: environment variable(s) {names} not set")
        config: dict[str, Any] = {
            "name": self.name,
            "connection": self.connection,
            "key": self.key,
            "strategy": self.strategy,
            "page_rows": self.page_rows,
            "dialect": self.dialect,
        }
        for name in ("table", "query", "cursor_column"):
            if getattr(self, name) is not None:
                config[name] = getattr(self, name)
        if self.columns is not None:
            config["columns"] = {
                k: v if isinstance(v, str) else list(v) for k, v in self.columns.items()
            }
        return config


@dataclass(frozen=True, slots=True)
class RoutesConfig:
    """Every connector and route of `routes.yaml`, validated.

    ```python
    routes = load_routes("routes.yaml")
    route = routes.route_for("kematian", "32.73.01.1001", values)   # None: no route
    allowed = routes.deliver_fields(step, "kematian")
    ```
    """

    connectors: Mapping[str, ConnectorConfig]
    routes: tuple[Route, ...]
    path: Path | None = None
    sources: Mapping[str, SourceConfig] = field(default_factory=lambda: MappingProxyType({}))
    jobs: Mapping[str, JobSettings] = field(default_factory=lambda: MappingProxyType({}))

    def route_for(
        self, record_type: str, kode_wilayah: str, values: Mapping[str, Any]
    ) -> Route | None:
        """The first route that matches, or None."""
        for route in self.routes:
            if route.match.matches(record_type, kode_wilayah, values):
                return route
        return None

    def route(self, name: str) -> Route:
        """The route called `name`; `RoutingError` when there is none."""
        for route in self.routes:
            if route.name == name:
                return route
        known = ", ".join(r.name for r in self.routes) or "none"
        raise RoutingError(f"no route named {name!r} (known: {known})")

    def deliver_fields(self, step: DeliverStep, record_type: str) -> tuple[str, ...]:
        """The fields of `record_type` that may leave the hub through `step`."""
        connector = self.connectors.get(step.connector)
        if connector is None:
            raise RoutingError(f"no connector named {step.connector!r}")
        allowed = connector.fields.get(record_type, ())
        if step.fields is None:
            return tuple(allowed)
        return tuple(name for name in step.fields if name in allowed)


# ---------------------------------------------------------------- loading


def load_routes(
    path: Path | str,
    environ: Mapping[str, str] | None = None,
    *,
    schemas: SchemaRegistry | None = None,
    require_credentials: bool = True,
) -> RoutesConfig:
    """Read, interpolate and validate a `routes.yaml`; `ConfigValidationError` lists every
    problem. `environ` defaults to `os.environ`, `schemas` to the shipped registry.

    With `require_credentials=False` an unset credential variable is not an error but noted
    in `ConnectorConfig.missing_credentials`: routing records needs no secrets, only talking
    to the connector does."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigValidationError(
            _INVALID, [f"{path}: cannot be read: {exc.strerror or type(exc).__name__}"]
        ) from exc
    try:
        document = read_yaml(text)
    except yaml.YAMLError as exc:
        # Not chained: the original's text quotes the offending line, credentials included.
        raise ConfigValidationError(_INVALID, [f"{path}: {_yaml_problem(exc)}"]) from None
    return parse_routes(
        document,
        os.environ if environ is None else environ,
        schemas=SchemaRegistry.load() if schemas is None else schemas,
        path=path,
        require_credentials=require_credentials,
    )


def read_yaml(text: str | bytes) -> Any:
    """Parse YAML the way `routes.yaml` is read: safe, YAML 1.2 scalars, no duplicate keys."""
    return yaml.load(text, Loader=_Loader)


def parse_routes(
    document: Any,
    environ: Mapping[str, str],
    *,
    schemas: SchemaRegistry,
    path: Path | None = None,
    require_credentials: bool = True,
) -> RoutesConfig:
    """Validate an already parsed `routes.yaml` document (see the module docstring)."""
    return _Parser(environ, schemas, require_credentials).parse(document, path)


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 scalars (`on`/`yes`/`no` are text, `08` stays text, no dates)
    and duplicate keys refused."""

    yaml_implicit_resolvers = {
        first: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag.rsplit(":", 1)[-1] not in {"bool", "int", "timestamp"}
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error with its line and column, without the quoted source line."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        context = f" ({exc.context})" if exc.context else ""
        return f"YAML syntax error at {where}: {exc.problem}{context}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"not readable as YAML text: {exc.reason} at byte {exc.position}"
    return "YAML syntax error"


@cache
def _validator() -> Draft202012Validator:
    schema = orjson.loads(ROUTES_SCHEMA.read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


class _Parser:
    """One validation run: collects every problem, then builds the config or raises."""

    def __init__(
        self, environ: Mapping[str, str], schemas: SchemaRegistry, require_credentials: bool = True
    ) -> None:
        self.environ = environ
        self.require_credentials = require_credentials
        self.missing: dict[str, list[str]] = {}
        self.schemas = schemas
        self.types = schemas.types()
        self.errors: list[str] = []
        self.secrets: set[str] = set()
        self.credentials: dict[str, dict[str, str]] = {}
        self.unresolved: set[str] = set()  # paths whose ${VAR} failed: no schema noise there
        self.connector_names: set[str] = set()
        self.connections: dict[str, str] = {}  # source name -> connection string

    def error(self, path: _Loc, message: str) -> None:
        self.errors.append(f"{_render(path)}: {message}")

    def parse(self, document: Any, path: Path | None) -> RoutesConfig:
        if document is None:
            raise ConfigValidationError(_INVALID, ["(top level): the file is empty"])
        document = self.interpolate(document, ())
        for problem in _validator().iter_errors(document):
            where = _render(tuple(problem.absolute_path))
            if where not in self.unresolved:
                self.errors.append(f"{where}: {_schema_message(problem)}")
        body = document if isinstance(document, dict) else {}
        raw_connectors = body.get("connectors")
        connectors: dict[str, ConnectorConfig] = {}
        if isinstance(raw_connectors, dict):
            self.connector_names = set(raw_connectors)
            for name, node in raw_connectors.items():
                if isinstance(node, dict):
                    connectors[name] = self.connector(name, node, ("connectors", name))
        routes = self.routes(body.get("routes"), connectors)
        sources = {
            name: self.source(name, node, ("sources", name))
            for name, node in _mapping(body.get("sources")).items()
            if isinstance(node, dict)
        }
        jobs = {
            name: self.job(name, node, ("jobs", name))
            for name, node in _mapping(body.get("jobs")).items()
            if isinstance(node, dict)
        }
        if self.errors:
            raise ConfigValidationError(_INVALID, [self.scrub(e) for e in _unique(self.errors)])
        return RoutesConfig(
            MappingProxyType(connectors),
            tuple(routes),
            path,
            sources=MappingProxyType(sources),
            jobs=MappingProxyType(jobs),
        )

    def scrub(self, message: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        return message

    # ------------------------------------------------------------ interpolation

    def interpolate(self, node: Any, path: _Loc) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                here = (*path, str(key))
                if len(here) == 3 and here[0] == "connectors" and here[2] == "credentials":
                    out[str(key)] = self.credentials_block(value, here)
                elif len(here) == 3 and here[0] == "sources" and here[2] == "connection":
                    out[str(key)] = self.connection_string(value, here)
                else:
                    out[str(key)] = self.interpolate(value, here)
            return out
        if isinstance(node, list):
            return [self.interpolate(item, (*path, i)) for i, item in enumerate(node)]
        if isinstance(node, str):
            return self.substitute(node, path)
        return node

    def substitute(self, text: str, path: _Loc) -> str:
        problems: list[str] = []

        def replace(found: re.Match[str]) -> str:
            if found.group(0) == "$$":
                return "$"
            name, default = found["name"], found["default"]
            if name is None:
                problems.append("malformed ${...}: write ${NAME} or ${NAME:-default}")
                return found.group(0)
            value = self.environ.get(name)
            if default is not None and not value:
                return default
            if value is None:
                problems.append(f"environment variable {name} is not set")
                return ""
            return value

        result = _REFERENCE.sub(replace, text)
        for problem in problems:
            self.error(path, problem)
        if problems:
            self.unresolved.add(_render(path))
        return result

    def credentials_block(self, node: Any, path: _Loc) -> dict[str, str]:
        """Resolve `${VAR}` credentials; the document keeps the references, not the values."""
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.remember_literal(node)
            self.error(path, f"must map credential names to ${{VAR}}: {_ENV_ONLY}")
            return {}
        connector = str(path[1])
        out: dict[str, str] = {}
        for key, value in node.items():
            here = (*path, str(key))
            found = _CREDENTIAL.match(value) if isinstance(value, str) else None
            if found is None:
                self.remember_literal(value)
                self.error(here, f"{_ENV_ONLY}, without a default")
                out[str(key)] = "${_}"
                continue
            name = found["name"]
            secret = self.environ.get(name)
            if not secret and not self.require_credentials:
                self.missing.setdefault(connector, []).append(name)
            elif secret is None:
                self.error(here, f"environment variable {name} is not set")
            elif not secret:
                self.error(here, f"environment variable {name} is empty")
            else:
                self.secrets.add(secret)
                self.credentials.setdefault(connector, {})[str(key)] = secret
            out[str(key)] = value
        return out

    def connection_string(self, value: Any, path: _Loc) -> Any:
        """A source's connection string: exactly one `${VAR}`, resolved like a credential;
        the document keeps the reference, never the value."""
        found = _CREDENTIAL.match(value) if isinstance(value, str) else None
        if found is None:
            self.remember_literal(value)
            self.error(
                path,
                "connection strings come from the environment only: write exactly "
                "one ${VAR}, without a default",
            )
            return "${_}"
        name, source = found["name"], str(path[1])
        secret = self.environ.get(name)
        if not secret and not self.require_credentials:
            self.missing.setdefault(f"source:{source}", []).append(name)
        elif secret is None:
            self.error(path, f"environment variable {name} is not set")
        elif not secret:
            self.error(path, f"environment variable {name} is empty")
        else:
            self.secrets.add(secret)
            self.secrets.update(
                part.split("=", 1)[1]
                for part in secret.split(";")
                if "=" in part and len(part.split("=", 1)[1]) >= 4
            )
            self.connections[source] = secret
        return value

    def remember_literal(self, value: Any) -> None:
        """A credential written into the file: never echoed either."""
        if isinstance(value, dict):
            for item in value.values():
                self.remember_literal(item)
        elif isinstance(value, list):
            for item in value:
                self.remember_literal(item)
        elif value is not None and str(value):
            self.secrets.add(str(value))
            if isinstance(value, str):
                self.secrets.update(d for d in _DEFAULTS.findall(value) if d)

    # ------------------------------------------------------------ connectors

    def connector(self, name: str, node: dict[str, Any], path: _Loc) -> ConnectorConfig:
        retry = _mapping(node.get("retry"))
        policy = RetryPolicy(
            max_attempts=_int(retry.get("max_attempts"), 8),
            initial=_float(retry.get("initial"), 1.0),
            maximum=_float(retry.get("maximum"), 300.0),
            jitter=_float(retry.get("jitter"), 1.0),
        )
        if "maximum" in retry and policy.maximum < policy.initial:
            self.error((*path, "retry", "maximum"), f"must be at least initial ({policy.initial})")
        breaker = _mapping(node.get("circuit_breaker"))
        return ConnectorConfig(
            name=name,
            adapter=_str(node.get("adapter")),
            base_url=_str(node.get("base_url")),
            credentials=MappingProxyType(self.credentials.get(name, {})),
            missing_credentials=tuple(self.missing.get(name, ())),
            timeout=_float(node.get("timeout"), 10.0),
            concurrency=_int(node.get("concurrency"), 4),
            rate_limit=self.rate_limit(node.get("rate_limit")),
            daily_quota=self.daily_quota(node.get("daily_quota"), (*path, "daily_quota")),
            allowed_hours=self.allowed_hours(node.get("allowed_hours"), (*path, "allowed_hours")),
            retry=policy,
            circuit_breaker=BreakerPolicy(
                failure_threshold=_int(breaker.get("failure_threshold"), 5),
                reset_after=_float(breaker.get("reset_after"), 30.0),
            ),
            cache_ttl=_float(node.get("cache_ttl"), 86400.0),
            fields=self.connector_fields(node.get("fields"), (*path, "fields")),
            options=_freeze(_mapping(node.get("options"))),
        )

    @staticmethod
    def rate_limit(node: Any) -> RateLimit | None:
        if not isinstance(node, dict):
            return None
        return RateLimit(_float(node.get("per_second"), 1.0), _int(node.get("burst"), 1))

    def daily_quota(self, node: Any, path: _Loc) -> DailyQuota | None:
        if not isinstance(node, dict):
            return None
        return DailyQuota(
            limit=_int(node.get("limit"), 1),
            resets_at=_time(node.get("resets_at")) or time(0, 0),
            timezone=self.timezone(node, path),
        )

    def allowed_hours(self, node: Any, path: _Loc) -> AllowedHours | None:
        if not isinstance(node, dict):
            return None
        return AllowedHours(
            start=_time(node.get("from")) or time(0, 0),
            end=_time(node.get("to")) or time(0, 0),
            timezone=self.timezone(node, path),
        )

    def timezone(self, node: dict[str, Any], path: _Loc) -> str:
        name = node.get("timezone", DEFAULT_TIMEZONE)
        if not isinstance(name, str) or not name:
            return DEFAULT_TIMEZONE
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.error(
                (*path, "timezone"),
                f"unknown time zone {name!r} (use an IANA name: Asia/Jakarta, Asia/Makassar, "
                "Asia/Jayapura)",
            )
            return DEFAULT_TIMEZONE
        return name

    def connector_fields(self, node: Any, path: _Loc) -> Mapping[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for record_type, names in _mapping(node).items():
            schema = self.record_schema(record_type, (*path, record_type))
            if not isinstance(names, list):
                continue
            for i, name in enumerate(names):
                if isinstance(name, str):
                    self.check_field(schema, name, (*path, record_type, i))
            out[record_type] = tuple(n for n in names if isinstance(n, str))
        return MappingProxyType(out)

    # ------------------------------------------------------------ routes

    def record_schema(self, record_type: str, path: _Loc) -> RecordSchema | None:
        if record_type in self.types:
            return self.schemas.get(record_type)
        known = ", ".join(self.types)
        self.error(path, f"{record_type!r} is not a record type (known: {known})")
        return None

    def check_field(
        self,
        schema: RecordSchema | None,
        name: str,
        path: _Loc,
        connector: ConnectorConfig | None = None,
    ) -> None:
        """`name` is a field of the record type and, given a connector, one it may receive."""
        if schema is None:
            return
        if name not in schema.fields:
            self.error(path, f"{name!r} is not a field of {schema.record_type}")
            return
        if connector is None:
            return
        allowed = connector.fields.get(schema.record_type)
        if allowed is not None and name not in allowed:
            where = f"connectors.{connector.name}.fields.{schema.record_type}"
            self.error(path, f"{name!r} is not in {where}, so {connector.name} may not receive it")

    def routes(self, node: Any, connectors: Mapping[str, ConnectorConfig]) -> list[Route]:
        routes: list[Route] = []
        if not isinstance(node, list):
            return routes
        first: dict[str, int] = {}
        for i, item in enumerate(node):
            if not isinstance(item, dict):
                continue
            path: _Loc = ("routes", i)
            name = item.get("name")
            if isinstance(name, str):
                if name in first:
                    self.error(
                        (*path, "name"),
                        f"duplicate route name {name!r} (see routes[{first[name]}])",
                    )
                first.setdefault(name, i)
            match, schema = self.match(item.get("match"), (*path, "match"))
            steps = self.steps(item.get("steps"), (*path, "steps"), schema, connectors)
            routes.append(Route(_str(name), match, steps))
        return routes

    def match(self, node: Any, path: _Loc) -> tuple[Match, RecordSchema | None]:
        if not isinstance(node, dict):
            return Match(""), None
        record_type = node.get("record_type")
        schema = None
        if isinstance(record_type, str):
            schema = self.record_schema(record_type, (*path, "record_type"))
        wilayah = node.get("wilayah")
        prefixes = (
            tuple(w for w in wilayah if isinstance(w, str)) if isinstance(wilayah, list) else ()
        )
        where: dict[str, tuple[str, ...]] = {}
        for name, accepted in _mapping(node.get("where")).items():
            self.check_field(schema, name, (*path, "where", name))
            if isinstance(accepted, list):
                where[name] = tuple(_text(v) for v in accepted if isinstance(v, str | int))
        return Match(_str(record_type), prefixes, MappingProxyType(where)), schema

    def steps(
        self,
        node: Any,
        path: _Loc,
        schema: RecordSchema | None,
        connectors: Mapping[str, ConnectorConfig],
    ) -> tuple[Step, ...]:
        if not isinstance(node, list):
            return ()
        steps: list[Step] = []
        highest = ""
        approvals = 0
        delivered: set[str] = set()
        for j, item in enumerate(node):
            kinds = [k for k in _RANK if k in item] if isinstance(item, dict) else []
            if len(kinds) != 1:
                continue  # reported by the schema
            kind = kinds[0]
            here: _Loc = (*path, j)
            if highest and _RANK[kind] < _RANK[highest]:
                self.error(
                    here,
                    f"{kind} cannot come after {highest}: steps are verify..., then at most "
                    "one approve, then deliver...",
                )
            highest = max(highest or kind, kind, key=_RANK.__getitem__)
            if kind == "approve":
                approvals += 1
                if approvals > 1:
                    self.error(here, "a route has at most one approve step")
            body = item[kind]
            if not isinstance(body, dict):
                continue
            step_path: _Loc = (*here, kind)
            if kind == "verify":
                steps.append(self.verify(body, step_path, schema, connectors))
            elif kind == "approve":
                steps.append(ApproveStep(_str(body.get("by"))))
            else:
                deliver = self.deliver(body, step_path, schema, connectors)
                if deliver.connector in delivered:
                    self.error(
                        (*step_path, "connector"),
                        f"{deliver.connector!r} already receives this route's records",
                    )
                delivered.add(deliver.connector)
                steps.append(deliver)
        if highest != "deliver":
            self.error(path, "a route needs at least one deliver step, after any verify/approve")
        return tuple(steps)

    def connector_ref(
        self,
        body: dict[str, Any],
        path: _Loc,
        kind: str,
        schema: RecordSchema | None,
        connectors: Mapping[str, ConnectorConfig],
    ) -> ConnectorConfig | None:
        """The connector a step names, when it exists, suits the step and knows the type."""
        name = body.get("connector")
        if not isinstance(name, str):
            return None
        here = (*path, "connector")
        connector = connectors.get(name)
        if connector is None:
            if name not in self.connector_names:
                known = ", ".join(sorted(self.connector_names)) or "none"
                self.error(here, f"unknown connector {name!r} (defined: {known})")
            return None
        suitable = VERIFIERS if kind == "verify" else DELIVERERS
        if connector.adapter not in suitable:
            if connector.adapter in VERIFIERS | DELIVERERS:
                need = " or ".join(sorted(suitable))
                self.error(
                    here,
                    f"{name!r} is a {connector.adapter} connector; a {kind} step needs {need}",
                )
            return None
        if schema is not None and schema.record_type not in connector.fields:
            self.error(
                here,
                f"connectors.{name}.fields has no entry for {schema.record_type}: "
                f"list the fields {name} may receive",
            )
        return connector

    def verify(
        self,
        body: dict[str, Any],
        path: _Loc,
        schema: RecordSchema | None,
        connectors: Mapping[str, ConnectorConfig],
    ) -> VerifyStep:
        connector = self.connector_ref(body, path, "verify", schema, connectors)
        subjects: list[VerifySubject] = []
        niks: dict[str, int] = {}
        raw_subjects = body.get("subjects")
        for k, item in enumerate(raw_subjects if isinstance(raw_subjects, list) else []):
            if not isinstance(item, dict):
                continue
            here: _Loc = (*path, "subjects", k)
            nik = item.get("nik")
            if isinstance(nik, str):
                self.check_field(schema, nik, (*here, "nik"), connector)
                if nik in niks:
                    self.error(
                        (*here, "nik"), f"{nik!r} is already verified by subjects[{niks[nik]}]"
                    )
                niks.setdefault(nik, k)
            elements: dict[str, str] = {}
            for element, target in _mapping(item.get("elements")).items():
                if isinstance(target, str):
                    self.check_field(schema, target, (*here, "elements", element), connector)
                    elements[element] = target
            subjects.append(
                VerifySubject(
                    nik=_str(nik),
                    elements=MappingProxyType(elements),
                    role=_str(item.get("role"), "subject"),
                    optional=item.get("optional") is True,
                )
            )
        on = {
            code: action
            for code, action in _mapping(body.get("on")).items()
            if isinstance(action, str)
        }
        return VerifyStep(
            connector=_str(body.get("connector")),
            subjects=tuple(subjects),
            on=on,
            mismatch=_str(body.get("mismatch"), "flag"),
        )

    def deliver(
        self,
        body: dict[str, Any],
        path: _Loc,
        schema: RecordSchema | None,
        connectors: Mapping[str, ConnectorConfig],
    ) -> DeliverStep:
        connector = self.connector_ref(body, path, "deliver", schema, connectors)
        names = body.get("fields")
        if not isinstance(names, list):
            return DeliverStep(_str(body.get("connector")))
        for i, name in enumerate(names):
            if isinstance(name, str):
                self.check_field(schema, name, (*path, "fields", i), connector)
        return DeliverStep(
            _str(body.get("connector")), tuple(n for n in names if isinstance(n, str))
        )

    # ------------------------------------------------------------ sources and jobs

    def schedule(self, node: Any, path: _Loc) -> Schedule | None:
        if not isinstance(node, dict):
            return None
        cron, interval = node.get("cron"), node.get("interval")
        if (cron is None) == (interval is None):
            if "enabled" in node and len(node) == 1:
                return None
            self.error(path, "give exactly one of cron or interval")
            return None
        timezone = self.timezone(node, path)
        if isinstance(cron, str):
            from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

            try:
                CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
            except ValueError as exc:
                self.error((*path, "cron"), f'not a crontab line ({exc}); e.g. "*/15 * * * *"')
                return None
            return Schedule(cron=cron, timezone=timezone)
        return Schedule(interval=_float(interval, 60.0), timezone=timezone)

    def source(self, name: str, node: dict[str, Any], path: _Loc) -> SourceConfig:
        record_type = node.get("record_type")
        schema = None
        if isinstance(record_type, str):
            schema = self.record_schema(record_type, (*path, "record_type"))
        if ("table" in node) == ("query" in node):
            self.error(path, "give exactly one of table or query")
        incremental = _mapping(node.get("incremental"))
        strategy = _str(incremental.get("strategy"))
        column = incremental.get("column")
        if strategy == "cursor" and not isinstance(column, str):
            self.error((*path, "incremental"), "strategy cursor needs column (the cursor column)")
        if strategy != "cursor" and column is not None:
            self.error((*path, "incremental", "column"), "only strategy cursor takes a column")
        if strategy == "change_tracking" and "query" in node:
            self.error(
                (*path, "incremental", "strategy"), "change_tracking reads a table, not a query"
            )
        if strategy == "change_tracking" and node.get("dialect") == "generic":
            self.error(
                (*path, "dialect"), "change_tracking needs SQL Server (dialect tsql or auto)"
            )
        columns: dict[str, str | tuple[str, ...]] = {}
        for field_name, target in _mapping(node.get("columns")).items():
            self.check_field(schema, field_name, (*path, "columns", field_name))
            if isinstance(target, str):
                columns[field_name] = target
            elif isinstance(target, list):
                columns[field_name] = tuple(t for t in target if isinstance(t, str))
        if columns and schema is not None:
            missing = [f for f in schema.required if f not in columns]
            if missing and not (missing == [schema.wilayah_field] and node.get("kelurahan")):
                self.error(
                    (*path, "columns"),
                    f"required field(s) of {schema.record_type} not mapped: {', '.join(missing)}",
                )
        return SourceConfig(
            name=name,
            adapter=_str(node.get("adapter")),
            record_type=_str(record_type),
            key=_str(node.get("key")),
            strategy=strategy,
            connection=self.connections.get(name, ""),
            table=node.get("table") if isinstance(node.get("table"), str) else None,
            query=node.get("query") if isinstance(node.get("query"), str) else None,
            columns=MappingProxyType(columns) if columns else None,
            cursor_column=column if isinstance(column, str) else None,
            kelurahan=node.get("kelurahan") if isinstance(node.get("kelurahan"), str) else None,
            page_rows=_int(node.get("page_rows"), 5000),
            dialect=_str(node.get("dialect"), "auto"),
            delete_scan=node.get("delete_scan") is not False,
            schedule=self.schedule(node.get("schedule"), (*path, "schedule")),
            missing_credentials=tuple(self.missing.get(f"source:{name}", ())),
        )

    def job(self, name: str, node: dict[str, Any], path: _Loc) -> JobSettings:
        from hub.jobs.registry import BUILTIN_JOBS

        if name not in BUILTIN_JOBS:
            known = ", ".join(sorted(BUILTIN_JOBS))
            self.error(
                path,
                f"no built-in job named {name!r} (known: {known}); sources are "
                "scheduled under sources.NAME.schedule",
            )
        return JobSettings(self.schedule(node, path), node.get("enabled") is not False)


# ---------------------------------------------------------------- helpers


def _local(moment: datetime, timezone: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(ZoneInfo(timezone))


def _within(kode_wilayah: str, prefix: str) -> bool:
    """Prefix match on whole dotted parts: "32.73" covers "32.73.01.1001", "32.7" does not."""
    return kode_wilayah == prefix or kode_wilayah.startswith(prefix + ".")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _render(path: _Loc) -> str:
    """`("routes", 2, "steps", 0)` -> `routes[2].steps[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def _schema_message(problem: ValidationError) -> str:
    hint = problem.schema.get("x-message") if isinstance(problem.schema, dict) else None
    if isinstance(hint, str) and problem.validator in {
        "type",
        "pattern",
        "maxLength",
        "minProperties",
        "maxProperties",
    }:
        value = problem.instance
        scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
        return f"{value!r} {hint}" if scalar else hint
    return problem.message


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _int(value: Any, default: int) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return default


def _float(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def _time(value: Any) -> time | None:
    found = _TIME.match(value) if isinstance(value, str) else None
    return time(int(found.group(1)), int(found.group(2))) if found else None


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value

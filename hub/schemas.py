"""The JSON Schema registry: `registry/schemas/<type>.v<N>.json`, draft 2020-12.

Each record schema is plain JSON Schema plus `x-` keywords that the hub reads:

| keyword | where | meaning |
|---|---|---|
| `x-record-type`, `x-version` | schema | name and version, also in the file name |
| `x-natural-key` | schema | fields that identify one real-world event (deduplication) |
| `x-subject` | schema | the NIK the record is about (blind-indexed for lookups) |
| `x-family` | schema | fields whose shared values make rows one family move (sent as one event) |
| `x-wilayah-field` | schema | the reporting kelurahan's code field (scope checks) |
| `x-event-date` | schema | the date statistics and retention use |
| `x-split-columns` | schema | one file column holding two fields, e.g. `RT/RW` -> rt, rw |
| `x-rules` | schema | cross-field rules (`not_future`, `order`, `klasifikasi`, ...) |
| `x-kind` | field | which normaliser reads the raw cell (`nik`, `date`, `code`, ...) |
| `x-aliases` | field | header texts seen in real files (compared squeezed, see `squeeze`) |
| `x-labels` | field | labels accepted for a code, case-insensitively |
| `x-pii` | field | personal data: encrypted at rest, masked in output |
| `x-nik` | field | NIK cross-checks: `gender`, `gender_field`, `birthdate_field` |

`$ref`s to `common.v1.json` are resolved with `referencing`; keywords beside a `$ref` win.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource

from hub.errors import ConfigError, SchemaNotFoundError

DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "registry" / "schemas"
_FILE_NAME = re.compile(r"^(?P<type>[a-z_]+)\.v(?P<version>[0-9]+)\.json$")
_SQUEEZE = re.compile(r"[^0-9a-z]+")


def squeeze(text: str) -> str:
    """Header text compared the way operators write it: case, spaces and punctuation ignored.

    >>> squeeze("No. KK")
    'nokk'
    """
    return _SQUEEZE.sub("", text.casefold())


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One property of a record schema, with its `$ref` resolved."""

    name: str
    title: str
    kind: str
    json_type: str
    pii: bool
    required: bool
    aliases: tuple[str, ...]
    enum: tuple[Any, ...] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)  # squeezed label -> code
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    nik: Mapping[str, str] = field(default_factory=dict)
    schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SplitSpec:
    """A file column holding several fields, such as `RT/RW` -> (`rt`, `rw`)."""

    aliases: tuple[str, ...]
    fields: tuple[str, ...]


@dataclass(frozen=True)
class RecordSchema:
    """A compiled record schema: what the pipeline needs, derived once from the JSON."""

    record_type: str
    version: int
    title: str
    fields: Mapping[str, FieldSpec]
    required: tuple[str, ...]
    natural_key: tuple[str, ...]
    subject: str | None
    wilayah_field: str
    event_date: str | None
    splits: tuple[SplitSpec, ...]
    rules: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any]
    registry: Registry[Any] = field(repr=False, compare=False)
    # Fields whose shared values make rows one family move (`x-family`): sent as one event.
    family: tuple[str, ...] = ()

    @property
    def schema_id(self) -> str:
        return f"{self.record_type}.v{self.version}"

    @cached_property
    def header_lookup(self) -> Mapping[str, FieldSpec | SplitSpec]:
        """Squeezed header text -> the field (or split column) it names."""
        lookup: dict[str, FieldSpec | SplitSpec] = {}
        for spec in self.fields.values():
            for alias in (spec.name, spec.title, *spec.aliases):
                lookup.setdefault(squeeze(alias), spec)
        for split in self.splits:
            for alias in split.aliases:
                lookup.setdefault(squeeze(alias), split)
        return lookup

    @cached_property
    def validator(self) -> Draft202012Validator:
        """The reference validator (pure Python): for single records and conformance tests."""
        return Draft202012Validator(
            dict(self.raw),
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    @property
    def pii_fields(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.fields.items() if spec.pii)


class SchemaRegistry:
    """Every schema of a directory, by record type and version.

    ```python
    registry = SchemaRegistry.load()
    schema = registry.get("kelahiran")          # latest version
    schema.fields["nik_ibu"].kind               # 'nik'
    ```
    """

    def __init__(self, schemas: Mapping[tuple[str, int], RecordSchema]) -> None:
        self._schemas = dict(schemas)

    @classmethod
    def load(cls, directory: Path = DEFAULT_SCHEMA_DIR) -> SchemaRegistry:
        documents: dict[str, dict[str, Any]] = {}
        for path in sorted(directory.glob("*.json")):
            try:
                document = orjson.loads(path.read_bytes())
                Draft202012Validator.check_schema(document)
            except (orjson.JSONDecodeError, SchemaError) as exc:
                raise ConfigError(f"schema {path.name} is not valid JSON Schema: {exc}") from exc
            if "$id" not in document:
                raise ConfigError(f"schema {path.name} has no $id")
            documents[path.name] = document
        registry: Registry[Any] = Registry().with_resources(
            (doc["$id"], Resource.from_contents(doc)) for doc in documents.values()
        )
        schemas: dict[tuple[str, int], RecordSchema] = {}
        for name, document in documents.items():
            match = _FILE_NAME.match(name)
            if match is None or "x-record-type" not in document:
                continue  # shared definitions such as common.v1.json
            schema = _compile(document, registry)
            if (schema.record_type, schema.version) != (match["type"], int(match["version"])):
                raise ConfigError(f"schema {name} declares {schema.schema_id}")
            schemas[(schema.record_type, schema.version)] = schema
        if not schemas:
            raise ConfigError(f"no record schema found in {directory}")
        return cls(schemas)

    def types(self) -> list[str]:
        return sorted({record_type for record_type, _ in self._schemas})

    def versions(self, record_type: str) -> list[int]:
        return sorted(v for t, v in self._schemas if t == record_type)

    def get(self, record_type: str, version: int | None = None) -> RecordSchema:
        versions = self.versions(record_type)
        if not versions:
            known = ", ".join(self.types())
            raise SchemaNotFoundError(f"jenis laporan tidak dikenal: {record_type!r} ({known})")
        chosen = versions[-1] if version is None else version
        try:
            return self._schemas[(record_type, chosen)]
        except KeyError:
            raise SchemaNotFoundError(f"{record_type} has no version {version}") from None

    def __iter__(self) -> Iterator[RecordSchema]:
        return iter(self._schemas[key] for key in sorted(self._schemas))

    def check_compatibility(self) -> list[str]:
        """Problems that make a version incompatible with the version before it."""
        problems: list[str] = []
        for record_type in self.types():
            versions = self.versions(record_type)
            for old, new in zip(versions, versions[1:], strict=False):
                problems.extend(
                    compatibility_problems(self.get(record_type, old), self.get(record_type, new))
                )
        return problems


def compatibility_problems(old: RecordSchema, new: RecordSchema) -> list[str]:
    """Why `new` cannot accept everything `old` accepted (empty when it can).

    A backward-compatible version keeps every field with the same type and pattern, keeps
    the natural key, adds no required field, and never narrows an enum, a range or a length.
    """
    where = f"{new.schema_id} vs {old.schema_id}"
    problems: list[str] = []
    if new.natural_key != old.natural_key:
        problems.append(f"{where}: x-natural-key changed {old.natural_key} -> {new.natural_key}")
    for name in sorted(set(new.required) - set(old.required)):
        problems.append(f"{where}: new required field {name!r}")
    for name, before in old.fields.items():
        after = new.fields.get(name)
        if after is None:
            problems.append(f"{where}: field {name!r} removed")
            continue
        if after.json_type != before.json_type:
            problems.append(f"{where}: {name} type {before.json_type} -> {after.json_type}")
        if before.schema.get("pattern") != after.schema.get("pattern"):
            problems.append(f"{where}: {name} pattern changed")
        if before.enum and not set(before.enum) <= set(after.enum or before.enum):
            lost = sorted(set(before.enum) - set(after.enum), key=str)
            problems.append(f"{where}: {name} enum lost {lost}")
        if after.minimum is not None and (before.minimum is None or after.minimum > before.minimum):
            problems.append(f"{where}: {name} minimum raised to {after.minimum}")
        if after.maximum is not None and (before.maximum is None or after.maximum < before.maximum):
            problems.append(f"{where}: {name} maximum lowered to {after.maximum}")
        if after.max_length is not None and (
            before.max_length is None or after.max_length < before.max_length
        ):
            problems.append(f"{where}: {name} maxLength lowered to {after.max_length}")
    return problems


def _resolve(node: Mapping[str, Any], base: str, registry: Registry[Any]) -> dict[str, Any]:
    """A property with its `$ref` target merged underneath its own keywords."""
    merged = dict(node)
    ref = merged.pop("$ref", None)
    if ref is not None:
        resolved = registry.resolver(base_uri=base).lookup(ref)
        target = _resolve(resolved.contents, base, registry)
        merged = {**target, **merged}
    return merged


def _compile(document: Mapping[str, Any], registry: Registry[Any]) -> RecordSchema:
    base = document["$id"]
    required = tuple(document.get("required", ()))
    fields: dict[str, FieldSpec] = {}
    for name, node in document["properties"].items():
        prop = _resolve(node, base, registry)
        labels: dict[str, Any] = {}
        for code in prop.get("enum", ()):
            labels[squeeze(str(code))] = code
        for code_text, names in prop.get("x-labels", {}).items():
            code = int(code_text) if prop.get("type") == "integer" else code_text
            for label in names:
                labels.setdefault(squeeze(label), code)
        fields[name] = FieldSpec(
            name=name,
            title=prop.get("title", name),
            kind=prop.get("x-kind", "text"),
            json_type=prop.get("type", "string"),
            pii=bool(prop.get("x-pii", False)),
            required=name in required,
            aliases=tuple(prop.get("x-aliases", ())),
            enum=tuple(prop.get("enum", ())),
            labels=labels,
            minimum=prop.get("minimum"),
            maximum=prop.get("maximum"),
            max_length=prop.get("maxLength"),
            nik=prop.get("x-nik", {}),
            schema=prop,
        )
    splits = tuple(
        SplitSpec(tuple(item["aliases"]), tuple(item["fields"]))
        for item in document.get("x-split-columns", ())
    )
    schema = RecordSchema(
        record_type=document["x-record-type"],
        version=int(document["x-version"]),
        title=document.get("title", document["x-record-type"]),
        fields=fields,
        required=required,
        natural_key=tuple(document["x-natural-key"]),
        subject=document.get("x-subject"),
        wilayah_field=document["x-wilayah-field"],
        event_date=document.get("x-event-date"),
        splits=splits,
        rules=tuple(document.get("x-rules", ())),
        raw=document,
        family=tuple(document.get("x-family", ())),
        registry=registry,
    )
    _check_declarations(schema)
    return schema


def _check_declarations(schema: RecordSchema) -> None:
    """Every field an `x-` keyword names exists, and no header alias names two things."""
    errors: list[str] = []
    named = [*schema.natural_key, schema.wilayah_field, *schema.required]
    named += [f for split in schema.splits for f in split.fields]
    named += [schema.subject] if schema.subject else []
    named += list(schema.family)
    named += [schema.event_date] if schema.event_date else []
    for rule in schema.rules:
        named += [v for k, v in rule.items() if k != "rule" and isinstance(v, str)]
        named += [f for f in rule.get("fields", ())]
    for spec in schema.fields.values():
        named += [v for k, v in spec.nik.items() if k.endswith("_field")]
    errors += [f"unknown field {name!r}" for name in named if name not in schema.fields]
    owners: dict[str, str] = {}
    targets: list[tuple[str, str]] = [
        (spec.name, a)
        for spec in schema.fields.values()
        for a in (spec.name, spec.title, *spec.aliases)
    ]
    targets += [("+".join(split.fields), a) for split in schema.splits for a in split.aliases]
    for owner, alias in targets:
        key = squeeze(alias)
        if owners.setdefault(key, owner) != owner:
            errors.append(f"alias {alias!r} names both {owners[key]} and {owner}")
    if errors:
        raise ConfigError(f"schema {schema.schema_id}: " + "; ".join(sorted(set(errors))))

"""Operator-facing messages, one template per issue code, from `registry/messages/<lang>.json`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from hub.errors import ConfigError

DEFAULT_MESSAGE_DIR = Path(__file__).resolve().parent.parent / "registry" / "messages"


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


class Messages:
    """Message templates of one language; a missing parameter shows as `?`, never raises.

    >>> Messages.load().format("required", label="NIK ibu")
    'NIK ibu wajib diisi.'
    """

    def __init__(self, templates: Mapping[str, str]) -> None:
        self._templates = dict(templates)

    @classmethod
    def load(cls, language: str = "id", directory: Path = DEFAULT_MESSAGE_DIR) -> Messages:
        path = directory / f"{language}.json"
        try:
            templates = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read messages {path}: {exc}") from exc
        return cls(templates)

    def codes(self) -> set[str]:
        return set(self._templates)

    def format(self, code: str, **params: Any) -> str:
        template = self._templates.get(code)
        if template is None:
            return f"{code}: {params.get('value', '')}".strip()
        return template.format_map(_Lenient(params))

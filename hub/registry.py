"""Adapter name -> "module:Class", loaded on first use with a type check.

Strings keep heavy drivers (pyodbc) unloaded until a route needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Final

from adapters.base import Source
from hub.errors import AdapterNotFoundError

ADAPTERS: Final[Mapping[str, str]] = {
    "excel": "adapters.excel.source:ExcelSource",
    "csv": "adapters.csv.source:CSVSource",
}


def load_adapter(name: str) -> type[Source]:
    """The adapter class registered under `name`."""
    try:
        target = ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise AdapterNotFoundError(f"no adapter named {name!r} (known: {known})") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise AdapterNotFoundError(f"{target} is not a Source")
    return cls

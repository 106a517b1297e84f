"""Adapter name -> "module:Class", loaded on first use with a type check.

Strings keep heavy drivers (pyodbc) unloaded until a route needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Final

from adapters.base import Source
from hub.errors import AdapterNotFoundError

ADAPTERS: Final[Mapping[str, str]] = {
    "excel": "adapters.excel.source:ExcelSource",
    "csv": "adapters.csv.source:CSVSource",
}


def load_adapter(name: str) -> type[Source]:
    """The adapter class registered under `name`."""
    cls: type[Source] = load_class(ADAPTERS, name, Source, "adapter")
    return cls


def load_class(registry: Mapping[str, str], name: str, base: type, kind: str) -> Any:
    """The class registered as `name` ("module:Class") in `registry`, a subclass of `base`."""
    try:
        target = registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise AdapterNotFoundError(f"no {kind} named {name!r} (known: {known})") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise AdapterNotFoundError(f"{target} is not a {base.__name__}")
    return cls

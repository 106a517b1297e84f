"""Connectors named in `routes.yaml`, built from their config; and the one translation the
hub makes for verifiers: canonical values into Dukcapil element values.

Strings keep each adapter module unloaded until a route needs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

import httpx2

from adapters.base import Connector
from hub.registry import load_class
from hub.routes import ConnectorConfig

CONNECTORS: Final[Mapping[str, str]] = {
    "dukcapil": "adapters.dukcapil.client:DukcapilVerifier",
    "siak": "adapters.siak.client:SiakDeliverer",
}

_GENDER: Final = {"L": "Laki-Laki", "P": "Perempuan"}


def connector_class(adapter: str) -> type[Connector]:
    """The connector class registered under `adapter`."""
    cls: type[Connector] = load_class(CONNECTORS, adapter, Connector, "connector")
    return cls


def build_connector(
    config: ConnectorConfig, *, transport: httpx2.AsyncBaseTransport | None = None
) -> Connector:
    """A client for one connector block of `routes.yaml`."""
    cls: Any = connector_class(config.adapter)
    connector: Connector = cls(config.as_adapter_config(), transport=transport)
    return connector


def wire_elements(
    nik: str, elements: Mapping[str, str], values: Mapping[str, Any]
) -> dict[str, str]:
    """The elements of one verification: `NIK` plus each named element that has a value,
    in Dukcapil's forms (dates `dd-mm-yyyy`, `Laki-Laki`/`Perempuan`)."""
    out = {"NIK": nik}
    for element, field_name in elements.items():
        value = values.get(field_name)
        if value is None or value == "":
            continue
        out[element] = wire_value(element, value)
    return out


def wire_value(element: str, value: Any) -> str:
    if element == "JENIS_KLMIN":
        return _GENDER.get(str(value), str(value))
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return dt.date.fromisoformat(value).strftime("%d-%m-%Y")
        except ValueError:
            return value
    return str(value)

"""The far side for dispatcher tests: both sandbox simulators in process (httpx2 ASGI
transport), and the people the test rows name, known to the Dukcapil sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import orjson

from adapters.dukcapil import simulator as dukcapil_sim
from adapters.dukcapil.client import DukcapilVerifier
from adapters.dukcapil.population import Person
from adapters.siak import simulator as siak_sim
from adapters.siak.client import SiakDeliverer
from hub.routes import RoutesConfig


def mother(serial: int, **changes: Any) -> Person:
    """The mother of `tests.builders.kelahiran_row(serial)` as Dukcapil knows her."""
    values: dict[str, Any] = {
        "nik": f"327301450790{serial:04d}",
        "no_kk": "3273011203150004",
        "nama": "SITI AMINAH",
        "tempat_lahir": "BANDUNG",
        "tanggal_lahir": dt.date(1990, 7, 5),
        "jenis_kelamin": "P",
        "alamat": "JL. SUKARASA NO. 5",
        "rt": "003",
        "rw": "005",
        "kode_wilayah": "32.73.01.1001",
    }
    values.update(changes)
    return Person(**values)


FATHER = Person(
    "3273010101880002",
    "3273011203150004",
    "BUDI SANTOSO",
    "BANDUNG",
    dt.date(1988, 1, 1),
    "L",
    "JL. SUKARASA NO. 5",
    "003",
    "005",
    "32.73.01.1001",
)


def mover(nik: str, name: str, kk: str = "3273012006180006") -> Person:
    day = int(nik[6:8])
    gender = "P" if day > 40 else "L"
    birth = dt.date(1900 + int(nik[10:12]), int(nik[8:10]), day - 40 if day > 40 else day)
    return Person(nik, kk, name.upper(), "BANDUNG", birth, gender, "JL. X", "003", "005",
                  "32.73.01.1001")  # fmt: skip


class Recorder(httpx2.AsyncBaseTransport):
    """Passes requests to an inner transport and keeps their JSON bodies."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.bodies: list[Any] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        content = await request.aread()
        if content and request.url.path.endswith(("/events", "CALL_VERIFY_BY_ELEMEN")):
            self.bodies.append(orjson.loads(content))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Sandbox:
    """Both simulators in process and connectors bound to them."""

    routes: RoutesConfig
    people: Iterable[Person] = ()
    dukcapil_options: dict[str, Any] = field(default_factory=dict)
    siak_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fast = {"latency": (0.0, 0.0)}
        self.dukcapil_app = dukcapil_sim.create_app(
            dukcapil_sim.SimulatorOptions(
                **{
                    "population_size": 50,
                    "extra_people": tuple(self.people),
                    **fast,
                    **self.dukcapil_options,
                }  # fmt: skip
            )
        )
        self.siak_app = siak_sim.create_app(
            siak_sim.SimulatorOptions(**{**fast, **self.siak_options})
        )
        self.dukcapil_wire = Recorder(httpx2.ASGITransport(app=self.dukcapil_app))
        self.siak_wire = Recorder(httpx2.ASGITransport(app=self.siak_app))

    def connectors(self) -> dict[str, Any]:
        config = self.routes.connectors
        return {
            "dukcapil": DukcapilVerifier(
                config["dukcapil"].as_adapter_config(), transport=self.dukcapil_wire
            ),
            "siak": SiakDeliverer(config["siak"].as_adapter_config(), transport=self.siak_wire),
        }

    def siak_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.siak_app.state.simulator.stats()
        return stats

    def dukcapil_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.dukcapil_app.state.simulator.snapshot()
        return stats

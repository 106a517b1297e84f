"""The second half of `hub demo`: the sample records on their way to the national systems.

Both national systems are SANDBOX simulators started in this process on free ports; the
Dukcapil sandbox knows the people the sample files name, except one mother (her NIK comes
back "not found", so the demo shows a record going back to the operator). The routes are
the shipped `routes.yaml`: births and deaths are approved automatically when every check
passed, moves wait for the kecamatan, which the demo then approves as a verifikator.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Final

import httpx2
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from adapters.dukcapil import simulator as dukcapil_sandbox
from adapters.dukcapil.population import Person, person_from_nik
from adapters.siak import simulator as siak_sandbox
from hub import outbox as outbox_ops
from hub.context import Hub
from hub.dispatcher import Dispatcher
from hub.flow import Flow
from hub.store.tables import records

ROUTES: Final = Path(__file__).resolve().parent.parent / "routes.yaml"
VERIFIKATOR: Final = "verifikator:32.73.01 (demo)"

#: The sandbox accounts of both simulators (never real credentials).
SANDBOX_ENV: Final[Mapping[str, str]] = {
    "HUB_DUKCAPIL_ID_LEMBAGA": dukcapil_sandbox.SimulatorOptions.id_lembaga,
    "HUB_DUKCAPIL_USER": dukcapil_sandbox.SimulatorOptions.user_id,
    "HUB_DUKCAPIL_PASSWORD": dukcapil_sandbox.SimulatorOptions.password,
    "HUB_DUKCAPIL_IP": dukcapil_sandbox.SimulatorOptions.ip_user,
    "HUB_SIAK_CLIENT_ID": "hub-sandbox",
    "HUB_SIAK_CLIENT_SECRET": "sandbox-secret",
    "HUB_DUKCAPIL_OPEN": "00:00",  # the sandbox is open all day
    "HUB_DUKCAPIL_CLOSE": "00:00",
}

#: The people of the sample files as the Dukcapil sandbox knows them. Rina Marlina
#: (3273016011950007) is missing on purpose: her NIK is "not found" (code 13).
PEOPLE: Final[tuple[Person, ...]] = tuple(
    person_from_nik(nik, name, kk)
    for nik, name, kk in (
        ("3273014507900001", "Siti Aminah", "3273011203150004"),
        ("3273010101880002", "Budi Santoso", "3273011203150004"),
        ("3273015208920003", "Dewi Lestari", "3273012006180006"),
        ("3273011505900005", "Agus Salim", "3273012006180006"),
        ("3273014507900020", "Siti Aminah", "3273011203150004"),
        ("3273010101500021", "H. Ahmad Sobari", "3273010505100022"),
        ("3273014202550024", "Hj. Imas", "3273010606120025"),
        ("3273011010600026", "Karta", "3273010707130027"),
    )
)


@contextmanager
def sandboxes() -> Iterator[tuple[str, str]]:
    """Both simulators on free ports, and the environment pointing the routes at them."""
    saved = {name: os.environ.get(name) for name in (*SANDBOX_ENV, "HUB_DUKCAPIL_URL",
                                                      "HUB_SIAK_URL")}  # fmt: skip
    with ExitStack() as stack:
        dukcapil = stack.enter_context(
            dukcapil_sandbox.running(
                dukcapil_sandbox.SimulatorOptions(extra_people=PEOPLE, latency=(0.05, 0.2))
            )
        )
        siak = stack.enter_context(siak_sandbox.running(siak_sandbox.SimulatorOptions()))
        os.environ.update(SANDBOX_ENV)
        os.environ["HUB_DUKCAPIL_URL"] = dukcapil
        os.environ["HUB_SIAK_URL"] = siak
        try:
            yield dukcapil, siak
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def deliver(hub: Hub, console: Console, dukcapil_url: str, siak_url: str) -> None:
    """Verify, approve and deliver what the demo ingested; print what happened."""
    routes = hub.routes
    assert routes is not None
    console.print(
        f"\n[bold]3. hub worker[/] - Dukcapil SANDBOX {dukcapil_url}, SIAK SANDBOX {siak_url}"
    )
    asyncio.run(Dispatcher(hub, routes).run(until_idle=True))
    flow = Flow(routes, hub.schemas, hub.protector, hub.messages)
    with hub.engine.begin() as conn:
        waiting = list(
            conn.execute(
                sa.select(records.c.id).where(records.c.status == "pending_approval")
            ).scalars()
        )
        decision = flow.approve(conn, waiting, actor=VERIFIKATOR)
    console.print(f"   [bold]hub approve[/] {len(decision.done)} pindah record(s) as {VERIFIKATOR}")
    asyncio.run(Dispatcher(hub, routes).run(until_idle=True))
    _summary(hub, console, dukcapil_url, siak_url)


def _summary(hub: Hub, console: Console, dukcapil_url: str, siak_url: str) -> None:
    with hub.engine.connect() as conn:
        by_type: dict[str, Counter[str]] = {}
        for record_type, status in conn.execute(sa.select(records.c.record_type, records.c.status)):
            by_type.setdefault(record_type, Counter())[status] += 1
        failed = conn.execute(
            sa.select(records.c.record_type, records.c.row_ref, records.c.reason).where(
                records.c.status == "verify_failed"
            )
        ).all()
        status_rows = outbox_ops.status(conn, list(hub.routes.connectors if hub.routes else ()))
    table = Table(title="Records after verification and delivery")
    statuses = sorted({s for counts in by_type.values() for s in counts})
    for column in ("type", *statuses):
        table.add_column(column)
    for record_type, counts in sorted(by_type.items()):
        table.add_row(record_type, *(str(counts.get(s, 0)) for s in statuses))
    console.print(table)
    for record_type, row_ref, reason in failed:
        console.print(f"   [red]{record_type} {row_ref}[/]: {reason}")
    outbox = Table(title="hub outbox status")
    for column in ("connector", "queued", "delivered", "dead", "state", "quota left"):
        outbox.add_column(column)
    for s in status_rows:
        left = "-" if s.quota_left is None else str(s.quota_left)
        outbox.add_row(s.connector, str(s.queued), str(s.delivered), str(s.dead), s.state, left)
    console.print(outbox)
    siak = _stats(siak_url)
    dukcapil = _stats(dukcapil_url)
    console.print(
        f"   SIAK sandbox: {siak.get('effects')} events applied "
        f"({siak.get('identities')} people), "
        f"{siak.get('identities_applied_more_than_once')} applied twice; "
        f"Dukcapil sandbox: {dukcapil.get('requests')} questions, "
        f"{dukcapil.get('asked_more_than_once')} NIKs asked twice"
    )


def _stats(base_url: str) -> dict[str, Any]:
    try:
        response = httpx2.get(f"{base_url}/_sim/stats", timeout=5)
        data: dict[str, Any] = response.json()
    except (httpx2.HTTPError, ValueError):
        return {}
    return data

"""The built-in jobs, by name: "module:function" and a default schedule.

A job function takes the open `Hub` and returns a `JobResult`. Another module adds a job with
one line here (loaded by dotted path, so nothing is imported until the job runs):

```python
BUILTIN_JOBS["archive"] = BuiltinJob("my.module:archive", Schedule(cron="0 3 * * *"))
```
`routes.yaml` may give a job another schedule or turn it off (`jobs: {reconcile: {cron: ...}}`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from hub.routes import Schedule

if TYPE_CHECKING:
    from hub.context import Hub


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a run did: rows handled and a summary without PII (stored as JSON)."""

    rows: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict)
    failed: bool = False  # the job ran but found something wrong (reconcile differences)


JobFunction = Callable[["Hub"], JobResult]


@dataclass(frozen=True, slots=True)
class BuiltinJob:
    target: str  # "module:function"
    schedule: Schedule
    enabled: bool = True  # scheduled unless routes.yaml turns it off
    description: str = ""


BUILTIN_JOBS: Final[dict[str, BuiltinJob]] = {
    "deliveries": BuiltinJob(
        "hub.jobs.builtin:deliveries",
        Schedule(interval=60),
        enabled=False,
        description="send due verifications and deliveries until none is due (for hubs "
        "without a permanent `hub worker`)",
    ),
    "aggregates": BuiltinJob(
        "hub.jobs.builtin:aggregates",
        Schedule(cron="17 * * * *"),
        description="check the statistics read model against the records and repair it",
    ),
    "reconcile": BuiltinJob(
        "hub.reconcile:run_job",
        Schedule(cron="0 2 * * *"),
        description="compare what the hub delivered with what SIAK confirms",
    ),
    "retention": BuiltinJob(
        "hub.jobs.builtin:retention",
        Schedule(cron="30 3 * * *"),
        description="move records past the hot period to the encrypted cold archive, delete "
        "archives past the cold period",
    ),
}

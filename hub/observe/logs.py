"""Logs: one event per line, as JSON for Loki and the like, or readable on a terminal.

Every `logging` call of the hub (and of its libraries) goes through structlog's
formatter, which adds the time (UTC), level, logger, the trace and span ids of the current
span (when tracing is on) and whatever is bound for the moment with `bound(...)`: the batch
or outbox message being worked on. Ids only: log messages never carry personal data.

```python
configure_logging()                    # HUB_LOG_FORMAT, HUB_LOG_LEVEL from the environment
with bound(batch_id=42):
    log.info("batch stored")           # {"event": "batch stored", "batch_id": 42, ...}
```

`HUB_LOG_FORMAT`: `json`, `console`, or unset for console on a terminal and JSON otherwise.
`HUB_LOG_LEVEL`: `DEBUG` .. `ERROR`; unset, long-running commands (`hub serve`, `hub
worker`) log from INFO and one-shot commands from WARNING.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final, TextIO

from hub.errors import ConfigError
from hub.observe.tracing import current_ids

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Libraries that log every request at INFO, with its URL (a path may carry a NIK).
QUIET_LIBRARIES: Final = ("httpx", "httpx2", "httpcore", "httpcore2", "authlib")
_MARK: Final = "_hub_handler"


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _trace_ids(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    ids = current_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


def log_format(environ: MutableMapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    chosen = (env.get("HUB_LOG_FORMAT") or "").strip().lower()
    if chosen in {"json", "console"}:
        return chosen
    if chosen:
        raise ConfigError(f"HUB_LOG_FORMAT must be json or console, not {chosen!r}")
    return "console" if sys.stderr.isatty() else "json"


def log_level(default: str, environ: MutableMapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    chosen = (env.get("HUB_LOG_LEVEL") or default).strip().upper()
    if chosen not in LEVELS:
        raise ConfigError(f"HUB_LOG_LEVEL must be one of {', '.join(LEVELS)}, not {chosen!r}")
    return int(logging.getLevelName(chosen))


def configure_logging(default_level: str = "WARNING", *, fmt: str | None = None) -> None:
    """Route all logging through structlog's formatter on stderr (again: replaces the
    handler a previous call installed, nothing else).

    The settings are checked now; structlog itself is set up at the first record written (or
    now, when something imported it already), so that a one-shot command that logs nothing
    does not load it."""
    chosen = fmt or log_format()
    handler = _CurrentStderr()
    handler.setFormatter(_FirstUseFormatter(chosen, colors=sys.stderr.isatty()))
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(log_level(default_level))
    for chatty in QUIET_LIBRARIES:  # a line per HTTP request, URL included: WARNING and up
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    if "structlog" in sys.modules:
        _configure_structlog()


class _FirstUseFormatter(logging.Formatter):
    """structlog's formatter, built when the first record is formatted."""

    def __init__(self, chosen: str, *, colors: bool) -> None:
        super().__init__()
        self._chosen = chosen
        self._colors = colors
        self._formatter: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._formatter is None:
            self._formatter = _structlog_formatter(self._chosen, colors=self._colors)
        return self._formatter.format(record)


def _shared_processors() -> list[Any]:
    import structlog

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _trace_ids,
    ]


def _structlog_formatter(chosen: str, *, colors: bool) -> logging.Formatter:
    import structlog

    _configure_structlog()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if chosen == "json"
        else structlog.dev.ConsoleRenderer(colors=colors)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if chosen == "json" else _keep,
            renderer,
        ],
    )


def _configure_structlog() -> None:
    """structlog's own loggers (`structlog.get_logger()`) go through the same formatter."""
    import structlog

    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _keep(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event


@contextmanager
def bound(**ids: str | int) -> Iterator[None]:
    """Ids added to every log line written inside the block (this task or thread only)."""
    import structlog

    with structlog.contextvars.bound_contextvars(**ids):
        yield

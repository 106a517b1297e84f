"""A row counter on a terminal, silent when output is piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def row_progress() -> Iterator[Callable[[int], None] | None]:
    """Yield a callback taking the number of rows done, or None when stderr is no terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # only on a terminal: piped runs do not load rich
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,} baris diperiksa"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("rows", total=None)
        yield lambda done: progress.update(task, completed=done)

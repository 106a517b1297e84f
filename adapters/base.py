"""Base classes every adapter implements: a `Source` reads rows, a `Connector` sends records.

Adapters import only `hub.records`, `hub.errors` and this module.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from hub.records import RawRow


class Source(abc.ABC):
    """Reads rows from one input, synchronously (pandas, calamine and pyodbc block).

    Subclasses declare `name` (their folder name, also their key in `routes.yaml`) and a
    JSON Schema of their configuration, and implement `read`.

    ```python
    source = CSVSource({"path": "lahir.csv"})
    for row in source.read():
        print(row.provenance.position, row.cells)
    ```
    """

    name: ClassVar[str]
    config_schema: ClassVar[dict[str, Any]]

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    @abc.abstractmethod
    def read(self, bookmark: str | None = None) -> Iterator[RawRow]:
        """Yield every non-blank row, title and header rows included, in source order.

        Raises a `hub.errors.SourceError` subclass, with a message for the operator, when the
        input cannot be read at all.
        """

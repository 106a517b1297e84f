"""A small HTTP/1.1 load generator: N keep-alive connections hammering one GET for a while.

Written on raw asyncio streams (uvloop when installed) because a general-purpose client
costs more CPU per request than the server under test; no load tool (wrk, oha) is on the
machine. It measures what a client sees: requests completed, errors (non-2xx, resets,
timeouts), and the latency of each request from write to last body byte.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

_TIMEOUT = 10.0


@dataclass
class LoadResult:
    """What one run measured."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds (q in 0..100)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")


def _request(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _connection(
    host: str, port: int, request: bytes, deadline: float, result: LoadResult
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), _TIMEOUT
                )
            assert reader is not None
            started = time.perf_counter()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _TIMEOUT)
            status = int(head[9:12])
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value.strip())
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await asyncio.wait_for(reader.readexactly(length), _TIMEOUT)
            elapsed = time.perf_counter() - started
            if time.perf_counter() <= deadline:
                result.requests += 1
                result.latencies.append(elapsed)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status >= 300:
                    result.errors += 1
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            result.errors += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def load(
    host: str,
    port: int,
    path: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Keep `connections` connections busy with GET `path` for `seconds`."""
    result = LoadResult()
    request = _request(host, port, path, headers or {})
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_connection(host, port, request, deadline, result) for _ in range(connections))
    )
    result.seconds = min(time.perf_counter(), deadline) - started
    return result


def run_load(
    host: str,
    port: int,
    path: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """`load` in a fresh event loop (uvloop when it is installed)."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(load(host, port, path, connections=connections, seconds=seconds, headers=headers))

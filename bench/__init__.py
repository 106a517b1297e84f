"""Benchmark harness for LAMPID Hub: test-file generator, peer measurements, ingest benchmark.

Run ``python -m bench.ingest`` (see ``bench/README.md``). Nothing here is imported by the hub.
"""

from __future__ import annotations

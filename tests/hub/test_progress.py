"""The row counter: shown on a terminal, silent (and rich not even loaded) when piped."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from hub.progress import row_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_the_rows_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with row_progress() as update:
        assert update is not None
        update(5000)
        update(12345)
    assert "12,345 baris diperiksa" in screen.getvalue()


def test_piped_output_gets_no_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with row_progress() as update:
        assert update is None


def test_piped_runs_do_not_load_rich() -> None:
    code = (
        "import sys\n"
        "from hub.progress import row_progress\n"
        "with row_progress() as update:\n"
        "    assert update is None\n"
        "print('rich' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, stdin=None
    )
    assert done.stdout.strip() == "False"

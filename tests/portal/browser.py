"""Headless Chromium from Debian's packages, driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from tests.conftest import IN_CI, REPO

CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the tests write their screenshots (git-ignored); `make screenshots` copies some.
SCREENSHOTS: Final = REPO / "var" / "screenshots"
DESKTOP: Final = {"width": 1280, "height": 800}
PHONE: Final = {"width": 360, "height": 740}


def chromium_path() -> str:
    """The system Chromium; skipped without one, except under CI=true (a failure there)."""
    found = os.environ.get("HUB_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        message = f"Chromium not found ({found}): run tools/debian-packages"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: the browser is required)")
        pytest.skip(message)
    return found


@contextlib.contextmanager
def launched() -> Iterator[Any]:
    """Headless Chromium (the system's), closed afterwards."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shoot(page: Any, name: str) -> None:
    """`var/screenshots/portal-<name>-desktop.png` and `-phone.png` of the page as it is."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"portal-{name}-{label}.png"), full_page=True)
        if label == "phone":  # nothing may overflow a 360 px screen sideways
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name}: {width} px wide at 360 px"
    page.set_viewport_size(DESKTOP)

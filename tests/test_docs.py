"""The README and docs say what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from hub.cli import main
from hub.messages import Messages
from hub.registry import ADAPTERS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_issue_code():
    documented = set(re.findall(r"^\| `([a-z_]+)` \| (?:error|warning)", README, re.MULTILINE))
    issue_codes = {c for c in Messages.load().codes() if not c.startswith("verify_")}
    assert documented == issue_codes


def test_delivery_page_names_every_verification_reason():
    page = (ROOT / "docs" / "delivery.md").read_text(encoding="utf-8")
    for code in Messages.load().codes():
        if code.startswith("verify_"):
            assert f"`{code}`" in page


def test_readme_names_every_adapter():
    for name in ADAPTERS:
        assert f"adapters/{name}" in README


def test_readme_lists_every_cli_command():
    for command in main.commands:
        assert f"hub {command}" in README


def test_two_commands_and_ci_agree():
    assert "make demo" in README
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_docs_exist_and_are_linked():
    assert "docs/architecture.md" in README
    assert "docs/delivery.md" in README
    for page in ("architecture.md", "delivery.md", "writing-an-adapter.md"):
        assert (ROOT / "docs" / page).is_file()

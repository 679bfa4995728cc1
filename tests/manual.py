"""The user's manual as the tests read it: the README, then every page of docs/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {path.name: path.read_text(encoding="utf-8") for path in sorted(ROOT.glob("docs/*.md"))}
MANUAL = "\n".join([README, *PAGES.values()])
"""Every page, one after the other: what the tests replay and check."""

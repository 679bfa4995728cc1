"""The README is the user's manual: it must list what the code has."""

from __future__ import annotations

import re
from pathlib import Path

from structocr_cli.errors import ExitCode
from structocr_cli.fields import FIELDS
from structocr_cli.gates import GATES

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_lists_every_field() -> None:
    for field in FIELDS:
        assert f"| `{field.path}` | {field.help}" in README, field.path


def test_readme_lists_every_exit_code() -> None:
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \| \S", README, re.MULTILINE), code


def test_readme_lists_every_gate() -> None:
    for gate in GATES:
        assert f"`{gate.option} " in README, gate.option


def test_readme_shows_the_two_commands() -> None:
    assert "make demo" in README
    assert "make test" in README

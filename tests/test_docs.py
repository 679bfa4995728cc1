"""The README and docs/ are the user's manual: they must list what the code has."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from structocr_cli.api.errors import ExitCode
from structocr_cli.gates import GATES
from structocr_cli.report.fields import FIELDS
from tests.conftest import promtool
from tests.manual import MANUAL, PAGES
from tests.manual import README as FRONT_PAGE

README = MANUAL


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
    assert "make demo" in FRONT_PAGE
    assert "make test" in FRONT_PAGE


YAML_BLOCKS = re.findall(r"^```yaml\n(.*?)^```", README, re.MULTILINE | re.DOTALL)


def kind(document: Any) -> str:
    if isinstance(document, dict) and "jobs" in document:
        return "github"
    if isinstance(document, dict) and "groups" in document:
        return "rules"
    if isinstance(document, dict) and "scrape_configs" in document:
        return "prometheus"
    return "gitlab"


@pytest.mark.parametrize("text", YAML_BLOCKS, ids=lambda text: text.split("\n")[0])
def test_every_yaml_example_is_complete(text: str, tmp_path: Path) -> None:
    document = yaml.safe_load(text)
    if kind(document) == "github":
        assert document.get("on") or document.get(True), (
            "a workflow needs on:"
        )  # YAML 1.1 reads on as true
        for job in document["jobs"].values():
            assert job["runs-on"]
            assert job["steps"]
        if shutil.which("actionlint"):
            workflow = tmp_path / "workflow.yml"
            workflow.write_text(text)
            lint = subprocess.run(["actionlint", str(workflow)], capture_output=True, text=True,
                                  timeout=60, check=False)  # fmt: skip
            assert lint.returncode == 0, lint.stdout
    elif kind(document) == "rules":
        assert all(rule["expr"] for group in document["groups"] for rule in group["rules"])
        if shutil.which("promtool"):
            rules = tmp_path / "rules.yml"
            rules.write_text(text)
            promtool("check", "rules", str(rules))
    elif kind(document) == "prometheus":
        assert document["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9811"]
        if shutil.which("promtool"):
            from structocr_cli.exporter.rules import Thresholds, rules

            (tmp_path / "structocr.rules.yml").write_text(rules(Thresholds()))
            config = tmp_path / "prometheus.yml"
            config.write_text(text)
            promtool("check", "config", str(config))
    else:
        (job,) = document.values()
        assert job["script"]
    assert "pip install structocr-cli" not in text  # not published: install from the repository


def test_every_kind_of_yaml_example_is_there() -> None:
    assert sorted(kind(yaml.safe_load(text)) for text in YAML_BLOCKS) == [
        "github",
        "github",
        "gitlab",
        "prometheus",
        "rules",
    ]


def test_the_module_map_lists_every_module() -> None:
    import structocr_cli

    package = Path(structocr_cli.__file__).parent  # the installed copy under make dist-check
    modules = {path.relative_to(package).as_posix() for path in package.rglob("*.py")}
    modules = {name for name in modules if not name.endswith("/__init__.py")} - {"__main__.py"}
    packages = {path.parent.relative_to(package).as_posix() + "/"
                for path in package.glob("*/__init__.py")}  # fmt: skip
    development = PAGES["development.md"]
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", development, re.MULTILINE))
    listed_packages = set(re.findall(r"^\| \*\*`(\w+/)`\*\* \|", development, re.MULTILINE))
    assert listed == modules
    assert listed_packages == packages

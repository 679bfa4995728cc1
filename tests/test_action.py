"""The GitHub Action (action.yml) run as the runner runs it: each step's ``run`` in
``bash --noprofile --norc -eo pipefail``, with ``inputs.*``, ``github.action_path``,
``runner.temp`` and ``steps.*.outputs`` substituted into ``env:`` and the outputs, and
GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_ENV as files. The install step runs for real,
once for the whole test run (the workers share it), against the mock on loopback.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY, _recorded

ROOT = Path(__file__).parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
INSTALLABLE = (ROOT / "structocr_cli" / "__init__.py").exists()
"""False in make dist-check, whose unpacked sdist has no source to install from."""


@dataclass
class Run:
    status: int
    outputs: dict[str, str]
    commands: list[str]
    """Workflow commands the steps printed on stdout (``::error title=...::...``)."""
    log: str
    """Everything the steps printed, as the job's log would show it before masking."""
    summary: str


def read_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: ``name=value`` or ``name<<DELIMITER`` lines."""
    found: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            for part in lines:
                if part == delimiter:
                    break
                value.append(part)
            else:
                raise AssertionError(f"output {name} never ends")
            found[name] = "\n".join(value)
        elif line:
            name, _, value_text = line.partition("=")
            found[name] = value_text
    return found


@pytest.fixture(scope="session")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUNNER_TEMP, shared by every worker, with the action's venv installed once."""
    if not INSTALLABLE:
        pytest.skip("the action installs from a checkout; an unpacked sdist has no source")
    shared = tmp_path_factory.getbasetemp().parent / "runner-temp"
    shared.mkdir(exist_ok=True)
    with (shared / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker installs; the others wait, then reuse
        install = next(step for step in ACTION["runs"]["steps"] if "Install" in step["name"])
        run_step(install, {}, shared, {}, shared / "install-out", shared / "summary", None)
    assert (shared / "structocr-action" / "bin" / "python").exists()
    return shared


def substitute(text: str, inputs: dict[str, str], temp: Path, steps: dict[str, dict[str, str]]
               ) -> str:  # fmt: skip
    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("inputs."):
            name = expression.removeprefix("inputs.")
            return inputs.get(name, str(ACTION["inputs"][name].get("default", "")))
        if expression == "github.action_path":
            return str(ROOT)
        if expression == "runner.temp":
            return str(temp)
        if expression.startswith("steps."):
            _, step, _, name = expression.split(".")
            return steps.get(step, {}).get(name, "")
        raise AssertionError(f"an expression the test runner does not know: {expression}")

    return EXPRESSION.sub(value, text)


def run_step(step: dict[str, object], inputs: dict[str, str], temp: Path,
             steps: dict[str, dict[str, str]], output: Path, summary: Path, cwd: Path | None
             ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    script = str(step["run"])
    assert "${{" not in script  # inputs reach a script through env: only, never spliced in
    env_spec = step.get("env", {})
    assert isinstance(env_spec, dict)
    output.write_text("")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STRUCTOCR_")},
        **{name: substitute(str(value), inputs, temp, steps) for name, value in env_spec.items()},
        "GITHUB_ACTIONS": "true", "GITHUB_ACTION_PATH": str(ROOT), "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_ENV": str(output.with_suffix(".env")),
    }  # fmt: skip
    file = output.with_suffix(".sh")
    file.write_text(script)
    # Streams to files, not through communicate(): the key-leak scan records what a child
    # prints, and the runner never shows the ::add-mask:: line; run_action records the rest.
    streams = [output.with_suffix(".stdout"), output.with_suffix(".stderr")]
    with streams[0].open("w") as out, streams[1].open("w") as err:
        command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(file)]
        status = subprocess.call(command, env=env, stdout=out, stderr=err, timeout=300, cwd=cwd)
    return subprocess.CompletedProcess(file, status, streams[0].read_text(),
                                       streams[1].read_text())  # fmt: skip


def run_action(inputs: dict[str, str], temp: Path, work: Path) -> Run:
    steps: dict[str, dict[str, str]] = {}
    summary = work / "summary.md"
    summary.write_text("")
    log, status = "", 0
    for n, step in enumerate(ACTION["runs"]["steps"]):
        done = run_step(step, inputs, temp, steps, work / f"out-{n}", summary, work)
        log += done.stdout + done.stderr
        steps[str(step.get("id", n))] = read_outputs((work / f"out-{n}").read_text())
        if done.returncode != 0:
            status = done.returncode
            break
    outputs = {name: substitute(str(spec["value"]), inputs, temp, steps)
               for name, spec in ACTION["outputs"].items()}  # fmt: skip
    # The runner shows no ::add-mask:: line (it takes it as the command); scanned without it.
    _recorded("\n".join(line for line in log.splitlines() if not line.startswith("::add-mask")))
    commands = [line for line in log.splitlines() if line.startswith("::")]
    return Run(status, outputs, commands, log, summary.read_text())


Action = Callable[..., Run]
"""``action(key, min_remaining="1000", ...)``: the action run with these inputs."""


@pytest.fixture
def action(server: MockServer, runner_temp: Path, tmp_path: Path) -> Action:
    def run(key: str, **inputs: str) -> Run:
        named = {name.replace("_", "-"): value for name, value in inputs.items()}
        return run_action({"api-key": key, "base-url": server.url, **named}, runner_temp,
                          tmp_path)  # fmt: skip

    return run


def kinds(run: Run) -> list[str]:
    return [line[2:].split(" ", 1)[0] for line in run.commands if not line.startswith("::add-")]


def test_a_healthy_key_passes_with_its_figures_as_outputs(action: Action) -> None:
    run = action("demo", min_remaining="1000")
    assert run.status == 0, run.log
    assert run.outputs["ok"] == "true"
    assert run.outputs["breached"] == ""
    assert run.outputs["exit-code"] == "0"
    assert run.outputs["credits-remaining"] == "48849"
    assert run.outputs["credits-used"] == "1720"
    assert run.outputs["credits-this-period"] == "337"
    assert float(run.outputs["runway-days"]) > 0
    assert json.loads(run.outputs["json"])["account"]["credits_total"] == 50569
    assert kinds(run) == []
    assert run.summary.count("### StructOCR balance") == 1
    assert "✅ passed" in run.summary


@pytest.mark.parametrize(
    ("mode", "status", "kind"),
    [("fail", 1, "error"), ("warn", 0, "warning"), ("skip", 0, "notice")],
)
def test_a_breach_fails_warns_or_skips(action: Action, mode: str, status: int, kind: str) -> None:
    run = action("demo-low", min_remaining="1000", max_key_credits="5000", on_breach=mode)
    assert run.status == status, run.log
    assert run.outputs["ok"] == "false"
    assert run.outputs["breached"] == "min-remaining"
    assert run.outputs["exit-code"] == "1"
    assert run.outputs["credits-remaining"] == "12"
    assert kinds(run) == [kind]
    assert "account.credits_remaining 12 < 1000 (--min-remaining)" in run.commands[-1]
    assert "❌ breached" in run.summary


@pytest.mark.parametrize(("key", "code"), [("wrong-key-12345", 41), ("demo-404", 44)])
@pytest.mark.parametrize("mode", ["fail", "warn", "skip"])
def test_an_unknown_balance_fails_in_every_mode(
    action: Action, key: str, code: int, mode: str
) -> None:
    run = action(key, min_remaining="1000", on_breach=mode)
    assert run.status == code, run.log
    assert run.outputs["ok"] == "false"
    assert run.outputs["exit-code"] == str(code)
    assert kinds(run) == ["error"]


def test_on_error_continue_says_why_and_goes_on(action: Action) -> None:
    run = action("demo-500", on_error="continue", timeout="5")
    assert run.status == 0, run.log
    assert run.outputs["ok"] == "false"
    assert run.outputs["exit-code"] == "50"
    assert run.outputs["credits-remaining"] == ""
    assert kinds(run) == ["warning"]
    assert "HTTP 500" in run.commands[-1]


@pytest.mark.parametrize(("inputs", "says"), [
    ({"on_breach": "maybe"}, "on-breach is 'maybe'; it takes fail, warn, skip"),
    ({"min_remaining": "lots"}, "--min-remaining needs a number"),
    ({"timeout": "-1"}, "timeout is '-1'"),
])  # fmt: skip
def test_a_bad_input_fails_the_step_saying_which(
    action: Action, inputs: dict[str, str], says: str
) -> None:
    run = action("demo", **inputs)
    assert run.status == 2
    assert kinds(run) == ["error"]
    assert says in run.commands[-1]


HOSTILE = ["$(touch PWNED)", "`touch PWNED`", "'; touch PWNED; '", '"; touch PWNED; "',
           "a\nb=c\n::error::forged", "%0A::error::forged"]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", ["api-key", "base-url", "min-remaining", "on-breach", "timeout"])
def test_hostile_inputs_run_nothing_and_break_no_output(
    server: MockServer, runner_temp: Path, tmp_path: Path, name: str, value: str
) -> None:
    inputs = {"api-key": "demo", "base-url": server.url, name: value}
    run = run_action(inputs, runner_temp, tmp_path)
    assert not list(tmp_path.rglob("PWNED")), name
    assert not (ROOT / "PWNED").exists()
    assert set(run.outputs) == set(ACTION["outputs"])
    assert run.outputs["ok"] == "false"  # refused, or a key the API does not know
    assert run.status != 0
    assert not [line for line in run.log.splitlines() if line.startswith("::error::forged")]


def test_the_key_is_masked_first_and_appears_nowhere_else(action: Action) -> None:
    run = action(LONG_KEY, min_remaining="1000")
    assert run.commands[0] == f"::add-mask::{LONG_KEY}"  # before anything else runs
    rest = run.log.replace(f"::add-mask::{LONG_KEY}", "")
    for text in (rest, run.summary, *run.outputs.values()):
        assert LONG_KEY not in text
        assert LONG_KEY[:8] not in text
        assert LONG_KEY[-8:] not in text


def check_jsonschema(schema: str, *files: Path) -> None:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).with_name(
        "check-jsonschema"))  # fmt: skip
    result = subprocess.run([tool, "--builtin-schema", schema, *map(str, files)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def workflows_in_the_manual(tmp_path: Path) -> list[Path]:
    from tests.manual import MANUAL

    blocks = re.findall(r"^```yaml\n(.*?)^```", MANUAL, re.M | re.S)
    found = []
    for n, text in enumerate(blocks):
        if "jobs" in (yaml.safe_load(text) or {}) and "runs-on" in text:
            path = tmp_path / f"workflow-{n}.yml"
            path.write_text(text)
            found.append(path)
    return found


def test_the_action_and_every_workflow_match_githubs_schemas(tmp_path: Path) -> None:
    check_jsonschema("vendor.github-actions", ROOT / "action.yml")
    workflows = [*ROOT.glob(".github/workflows/*.yml"), *workflows_in_the_manual(tmp_path)]
    assert len(workflows) >= 3  # the project's CI, the gate job and the preflight job
    check_jsonschema("vendor.github-workflows", *workflows)
    if shutil.which("actionlint"):
        result = subprocess.run(["actionlint", *map(str, workflows)], capture_output=True,
                                text=True, check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout


def test_every_gate_of_the_cli_is_an_input() -> None:
    from structocr_cli.gates import GATES
    from structocr_cli.runs.action import gate_variable

    check = next(step for step in ACTION["runs"]["steps"] if step.get("id") == "check")
    for gate in GATES:
        name = gate.option.lstrip("-")
        assert ACTION["inputs"][name]["default"] == ""
        assert check["env"][gate_variable(gate.option)] == f"${{{{ inputs.{name} }}}}"

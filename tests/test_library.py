"""The Python API scripts use (``structocr_cli.get_balance``, ``check_gates`` and the
errors): the key found as the CLI finds it, the CLI's exit codes on the errors, and no
typer or rich imported. Against the real mock on loopback."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import structocr_cli
from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY


@pytest.fixture
def env(server: MockServer, monkeypatch: pytest.MonkeyPatch) -> MockServer:
    monkeypatch.setenv("STRUCTOCR_BASE_URL", server.url)
    return server


def test_the_balance_with_its_figures_and_sources(
    env: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRUCTOCR_API_KEY", LONG_KEY)
    result = structocr_cli.get_balance()
    assert result.account.credits_remaining == 48849
    assert result.this_key.error_rate == Decimal("2.22")
    assert result.period.start.year == 2026
    assert result.derived.runway_days is not None
    assert result.sources.api_key.value == "sk_l…2b1c"
    assert result.sources.api_key.source == "env STRUCTOCR_API_KEY"
    assert result.sources.base_url.source == "env STRUCTOCR_BASE_URL"
    assert result.document["account"]["credits_total"] == 50569  # type: ignore[index]
    assert LONG_KEY not in repr(result)


def test_an_argument_and_a_profile_as_the_cli_takes_them(
    env: MockServer, config_file: Path
) -> None:
    config_file.write_text('[profiles.low]\napi_key = "demo-low"\n')
    assert structocr_cli.get_balance(profile="low").account.credits_remaining == 12
    assert structocr_cli.get_balance("demo").account.credits_remaining == 48849
    explicit = structocr_cli.get_balance("demo", base_url=env.url, timeout=5)
    assert explicit.sources.base_url.source == "--base-url"


@pytest.mark.parametrize(
    ("key", "kind", "code"),
    [("wrong-key-12345", structocr_cli.HTTPStatusError, 41),
     ("demo-404", structocr_cli.HTTPStatusError, 44),
     ("demo-500", structocr_cli.HTTPStatusError, 50),
     ("fault-html-200", structocr_cli.BadAnswerError, 61)],
)  # fmt: skip
def test_failures_raise_the_clis_errors_with_its_exit_codes(
    env: MockServer, key: str, kind: type[Exception], code: int
) -> None:
    with pytest.raises(kind) as caught:
        structocr_cli.get_balance(key)
    error = caught.value
    assert isinstance(error, structocr_cli.StructocrError)
    assert error.exit_code == code
    assert error.hint


def test_no_key_anywhere_is_exit_41_as_in_the_cli(env: MockServer) -> None:
    with pytest.raises(structocr_cli.NoApiKeyError) as caught:
        structocr_cli.get_balance()
    assert caught.value.exit_code == structocr_cli.ExitCode.UNAUTHORIZED


def test_gates_as_the_cli_evaluates_them(env: MockServer) -> None:
    low = structocr_cli.get_balance("demo-low")
    checks = structocr_cli.check_gates(low, min_remaining=1000, max_key_credits="100")
    assert [(check.gate.option, check.breached) for check in checks] == [
        ("--min-remaining", True), ("--max-key-credits", False)]  # fmt: skip
    assert checks[0].line() == (
        "gate failed: account.credits_remaining 12 < 1000 (--min-remaining)")  # fmt: skip
    gated = structocr_cli.get_balance("demo-low", gates={"min_remaining": 1000})
    assert [check.line() for check in gated.breached] == [checks[0].line()]


@pytest.mark.parametrize(
    ("gates", "says"),
    [({"min_credits": 5}, "unknown gate 'min_credits'"),
     ({"min_remaining": "lots"}, "--min-remaining needs a number"),
     ({"min_remaining": float("nan")}, "--min-remaining needs a number")],
)  # fmt: skip
def test_a_bad_gate_is_a_usage_error(env: MockServer, gates: dict[str, object], says: str) -> None:
    result = structocr_cli.get_balance("demo")
    with pytest.raises(structocr_cli.UsageError, match=says) as caught:
        structocr_cli.check_gates(result, **gates)  # type: ignore[arg-type]
    assert caught.value.exit_code == 2


def test_the_api_is_what_the_package_lists() -> None:
    assert "get_balance" in dir(structocr_cli)
    assert set(structocr_cli.__all__) <= set(dir(structocr_cli))
    with pytest.raises(AttributeError):
        structocr_cli.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    assert (Path(structocr_cli.__file__).parent / "py.typed").exists()


def test_the_api_imports_neither_typer_nor_rich(env: MockServer) -> None:
    code = (
        "import sys, structocr_cli\n"
        "light = sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'rich', 'requests'})\n"
        f"structocr_cli.get_balance('demo', base_url={env.url!r})\n"
        "used = sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'rich', 'click'})\n"
        "print(light, used)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.strip() == "[] []"


def _readme_example() -> str:
    import re

    from tests.manual import MANUAL

    (block,) = re.findall(r"^```python\n(.*?)^```", MANUAL, re.M | re.S)
    return block


@pytest.mark.parametrize(
    ("key", "code", "says"),
    [("demo", 0, "enough credits"),
     ("demo-low", 0, "gate failed: account.credits_remaining 12 < 1000 (--min-remaining)"),
     ("demo-404", 1, "balance unknown (exit 44): HTTP 404")],
)  # fmt: skip
def test_the_readme_example_runs_as_printed(
    server: MockServer, tmp_path: Path, key: str, code: int, says: str
) -> None:
    import os

    script = tmp_path / "example.py"
    script.write_text(_readme_example())
    env = {**os.environ, "STRUCTOCR_API_KEY": key, "STRUCTOCR_BASE_URL": server.url}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env=env, check=False)  # fmt: skip
    assert result.returncode == code, result.stderr
    assert says in result.stdout + result.stderr
    if code == 0:
        assert result.stdout.startswith("48849 credits" if key == "demo" else "12 credits")

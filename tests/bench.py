"""make bench: start-up and request timings of whole processes, next to their baselines.

Standard library only. Each command runs WARMUP times unmeasured, then RUNS times; the table
shows medians, the spread (10th to 90th percentile) and the ratio to the baseline, which is
what the targets are about (absolute times depend on the machine). Not part of make test.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from structocr_cli.mock import MockServer

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
WARMUP = 3
PYTHON = sys.executable
STRUCTOCR = str(Path(PYTHON).with_name("structocr"))

REQUESTS_SCRIPT = """\
import json, sys
import requests
r = requests.get(sys.argv[1] + "/account/balance", headers={"x-api-key": "demo"}, timeout=30)
print(json.dumps(r.json(), indent=2))
"""
RICH_SCRIPT = """\
import json, sys
import requests
from rich.console import Console
from rich.table import Table
r = requests.get(sys.argv[1] + "/account/balance", headers={"x-api-key": "demo"}, timeout=30)
table = Table()
for name, value in r.json()["account"].items():
    table.add_row(name, str(value))
Console().print(table)
"""


def measure(command: list[str], env: dict[str, str], base: list[str], base_env: dict[str, str]):
    """Times of ``command`` and of its baseline, run in turns so machine drift hits both."""
    times: list[float] = []
    base_times: list[float] = []
    for n in range(WARMUP + RUNS):
        for cmd, cmd_env, into in ((command, env, times), (base, base_env, base_times)):
            started = time.perf_counter()
            result = subprocess.run(cmd, env=cmd_env, capture_output=True, check=False)
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(f"bench: {cmd} failed: {result.stderr.decode()[-500:]}")
            if n >= WARMUP:
                into.append(elapsed * 1000)
    return times, base_times


def spread(times: list[float]) -> str:
    deciles = statistics.quantiles(times, n=10)
    return f"{deciles[0]:.0f}-{deciles[-1]:.0f}"


def main() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRUCTOCR_")}
    env["STRUCTOCR_CONFIG"] = os.devnull + ".absent.toml"
    complete = {
        **env,
        "_STRUCTOCR_COMPLETE": "complete_bash",
        "COMP_WORDS": "structocr bal",
        "COMP_CWORD": "1",
    }
    with tempfile.TemporaryDirectory() as tmp, MockServer(log=open(os.devnull, "w")) as mock:
        plain = Path(tmp) / "requests_json.py"
        plain.write_text(REQUESTS_SCRIPT)
        rich = Path(tmp) / "requests_rich.py"
        rich.write_text(RICH_SCRIPT)
        balance = [STRUCTOCR, "balance", "--base-url", mock.url, "--api-key", "demo"]
        typer_floor = ("python -c 'import typer'", [PYTHON, "-c", "import typer"], env)
        rows = [
            ("structocr --version", [STRUCTOCR, "--version"], env, typer_floor, None),
            ("structocr --help", [STRUCTOCR, "--help"], env, typer_floor, None),
            ("TAB: structocr bal<TAB>", [STRUCTOCR], complete, typer_floor, 1.2),
            ("structocr balance --json", [*balance, "--json"], env,
             ("requests + json.dumps script", [PYTHON, str(plain), mock.url], env), 1.3),
            ("structocr balance (table)", balance, env,
             ("requests + rich table script", [PYTHON, str(rich), mock.url], env), 1.3),
            # The floor for any typer CLI: the --json baseline plus typer's own import.
            ("structocr balance --json", [*balance, "--json"], env,
             ("the same script + import typer", [PYTHON, "-c", "import typer\n"
              f"import sys; sys.argv = ['x', {mock.url!r}]\n" + REQUESTS_SCRIPT], env), None),
        ]  # fmt: skip
        print(f"{RUNS} runs each after {WARMUP} warm-up runs, each command in turn with its")
        print("baseline; times in ms (median, p10-p90)\n")
        print("| command | median | spread | baseline | baseline median | ratio | target |")
        print("|---|---|---|---|---|---|---|")
        for label, command, run_env, (base_label, base_cmd, base_env), target in rows:
            times, base_times = measure(command, run_env, base_cmd, base_env)
            ratio = statistics.median(times) / statistics.median(base_times)
            verdict = (
                "" if target is None else f"<= {target}x {'met' if ratio <= target else 'missed'}"
            )
            print(
                f"| `{label}` | {statistics.median(times):.0f} | {spread(times)} | {base_label} "
                f"| {statistics.median(base_times):.0f} | {ratio:.2f}x | {verdict} |"
            )


if __name__ == "__main__":
    main()

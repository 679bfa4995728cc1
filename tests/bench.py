"""make bench: timings of whole processes, next to their baselines.

Standard library only. Start-up: each command runs WARMUP times unmeasured, then RUNS
times, in pairs with its baseline; the table shows medians, the spread (10th to 90th
percentile) and the median of the pairs' ratios to the baseline, which is what the targets
are about (absolute times depend on the machine).
Many keys: 200 keys against the mock (in a process of its own) with 100 ms of latency per
request, wall time against the ideal and peak memory against a single-key run. Not part of
make test. The exporter: the same 200 keys behind ``structocr exporter``, its first and
cached scrapes, upstream requests per key and memory growth over 1,000 scrapes.
Hostile loads: 2,000 failing keys, 2,000 slow clients at 1,024 descriptors, 400 SIGHUPs.
History: recording's cost, a year of per-minute history for 10 keys read back, a million
watch lines imported, bytes per observation.
``python tests/bench.py exporter`` runs one part only (``startup``, ``many``, ``exporter``,
``hostile``, ``history``).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from structocr_cli.mock.server import MockServer

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
WARMUP = 3
PYTHON = sys.executable
STRUCTOCR = str(Path(PYTHON).with_name("structocr"))
SCRATCH = Path(tempfile.mkdtemp(prefix="structocr-bench-"))
atexit.register(shutil.rmtree, SCRATCH, True)


def clean_env() -> dict[str, str]:
    """A run's environment: none of the user's STRUCTOCR_ settings, no config file, and the
    history in this bench's scratch directory, never the user's own file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRUCTOCR_")}
    env["STRUCTOCR_CONFIG"] = os.devnull + ".absent.toml"
    env["STRUCTOCR_HISTORY"] = str(SCRATCH / "history.sqlite3")
    return env


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
    """Times of ``command`` and of its baseline, run in pairs so machine drift hits both (which
    of the two goes first alternates, so that neither always finds the caches warm)."""
    times: list[float] = []
    base_times: list[float] = []
    for n in range(WARMUP + RUNS):
        pair = [(command, env, times), (base, base_env, base_times)]
        for cmd, cmd_env, into in pair if n % 2 else pair[::-1]:
            started = time.perf_counter()
            result = subprocess.run(cmd, env=cmd_env, capture_output=True, check=False)
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(f"bench: {cmd} failed: {result.stderr.decode()[-500:]}")
            if n >= WARMUP:
                into.append(elapsed * 1000)
    return times, base_times


def paired_ratio(times: list[float], base_times: list[float]) -> float:
    """The median of each pair's ratio: a slow spell of the machine slows both runs of a pair,
    and cancels out, where the ratio of two medians would keep it."""
    return statistics.median(t / b for t, b in zip(times, base_times, strict=True))


def spread(times: list[float]) -> str:
    deciles = statistics.quantiles(times, n=10)
    return f"{deciles[0]:.0f}-{deciles[-1]:.0f}"


def compiled_env() -> dict[str, str]:
    """The environment of the start-up runs, with the package byte-compiled first.

    pip byte-compiles what it installs, so an installed structocr (like its dependencies here)
    never compiles its own source at start-up; the editable install this runs from has no
    ``__pycache__`` until something writes one, and PYTHONDONTWRITEBYTECODE stops that.
    Without this the first row would time Python's compiler, not structocr.
    """
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "structocr_cli"), quiet=1)
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def startup() -> None:
    env = compiled_env()
    off = {**env, "STRUCTOCR_HISTORY": "off"}
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
        with_typer = Path(tmp) / "requests_typer.py"
        with_typer.write_text("import typer  # noqa: F401\n" + REQUESTS_SCRIPT)
        balance = [STRUCTOCR, "balance", "--base-url", mock.url, "--api-key", "demo"]
        typer_floor = ("python -c 'import typer'", [PYTHON, "-c", "import typer"], env)
        rows = [
            ("structocr --version", [STRUCTOCR, "--version"], env, typer_floor, None),
            ("structocr --help", [STRUCTOCR, "--help"], env, typer_floor, None),
            ("TAB: structocr bal<TAB>", [STRUCTOCR], complete, typer_floor, 1.2),
            # The floor for any typer CLI: the requests script plus typer's own import. The
            # target is 1.1x; recording in the history may add 5% to it (1.155x).
            ("structocr balance --json, history off", [*balance, "--json"], off,
             ("requests script + import typer", [PYTHON, str(with_typer), mock.url], env), 1.1),
            ("structocr balance --json, recording", [*balance, "--json"], env,
             ("requests script + import typer", [PYTHON, str(with_typer), mock.url], env), 1.155),
            ("structocr balance --json", [*balance, "--json"], env,
             ("requests + json.dumps script", [PYTHON, str(plain), mock.url], env), None),
            ("structocr balance (table)", balance, env,
             ("requests + rich table script", [PYTHON, str(rich), mock.url], env), None),
        ]  # fmt: skip
        print(f"{RUNS} runs each after {WARMUP} warm-up runs, each command in turn with its")
        print("baseline; times in ms (median, p10-p90)\n")
        print("| command | median | spread | baseline | baseline median | ratio | target |")
        print("|---|---|---|---|---|---|---|")
        for label, command, run_env, (base_label, base_cmd, base_env), target in rows:
            times, base_times = measure(command, run_env, base_cmd, base_env)
            ratio = paired_ratio(times, base_times)
            print(f"| `{label}` | {statistics.median(times):.0f} | {spread(times)} | {base_label} "
                  f"| {statistics.median(base_times):.0f} | {ratio:.2f}x "
                  f"| {verdict(ratio, target)} |")  # fmt: skip
        # Memory has the time's floor: `import typer` alone takes the plain script up 9%.
        peak_memory(
            [*balance, "--json"],
            {"history off": off, "recording": env},
            [("requests script + import typer", [PYTHON, str(with_typer), mock.url],
              {"history off": 1.1, "recording": 1.155}),
             ("plain requests script", [PYTHON, str(plain), mock.url], {})],
        )  # fmt: skip


def verdict(ratio: float, target: float | None) -> str:
    return "" if target is None else f"<= {target}x {'met' if ratio <= target else 'missed'}"


def peak_memory(command: list[str], envs: dict[str, dict[str, str]], baselines: list) -> None:
    """Peak resident memory of ``command`` in each of ``envs`` against scripts doing the same
    request (medians)."""
    runs = max(5, RUNS // 2)
    print(f"\nPeak resident memory of `structocr balance --json`, median of {runs} runs\n")
    print("| structocr | baseline | baseline peak | structocr peak | ratio | target |")
    print("|---|---|---|---|---|---|")
    theirs = {label: statistics.median(timed(base, clean_env())[1] for _ in range(runs))
              for label, base, _ in baselines}  # fmt: skip
    for name, env in envs.items():
        ours = statistics.median(timed(command, env)[1] for _ in range(runs))
        for label, _, targets in baselines:
            ratio = ours / theirs[label]
            print(f"| {name} | {label} | {theirs[label] / 1024:.1f} MiB | {ours / 1024:.1f} MiB "
                  f"| {ratio:.2f}x | {verdict(ratio, targets.get(name))} |")  # fmt: skip


KEYS = 200
LATENCY_MS = 100
MANY_RUNS = int(os.environ.get("BENCH_MANY_RUNS", "5"))


_SPAWN = """\
import os, sys, time
started = time.perf_counter()
to_null = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ, file_actions=to_null)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time (s) and peak resident memory (KiB) of one run of ``command``.

    A small Python starts it and reads its peak: Linux counts a process's peak across the
    exec that started it, from the process that spawned it, so one spawned from this bench
    (which holds the mock and every timing) would never show less than the bench's own size.
    """
    helper = subprocess.run([PYTHON, "-S", "-c", _SPAWN, *command], env=env,
                            capture_output=True, check=False)  # fmt: skip
    elapsed, peak, code = helper.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"bench: {command[:3]} exited {int(code)}: {helper.stderr[-300:]!r}")
    return float(elapsed), int(peak)


def many() -> None:
    env = clean_env()
    with tempfile.TemporaryDirectory() as tmp:
        keys = [f"bench-key-{n:03d}-0123456789" for n in range(KEYS)]
        fixtures = Path(tmp) / "fixtures.json"
        fixtures.write_text(json.dumps({key: {"this_key": {"credits_used": n}}
                                        for n, key in enumerate(keys)}))  # fmt: skip
        keys_file = Path(tmp) / "keys.txt"
        keys_file.write_text("".join(f"k{n:03d} = {key}\n" for n, key in enumerate(keys)))
        mock = subprocess.Popen(
            [STRUCTOCR, "mock", "--port", "0", "--latency-ms", str(LATENCY_MS),
             "--fixtures", str(fixtures)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            url = (mock.stdout.readline() if mock.stdout else "").strip()
            one = [STRUCTOCR, "balance", "--base-url", url, "--json", "--api-key", keys[0]]
            several = [STRUCTOCR, "balance", "--base-url", url, "--json", "--keys-file",
                       str(keys_file)]  # fmt: skip
            print(f"\n{KEYS} keys, {LATENCY_MS} ms of latency per request, {MANY_RUNS} runs each "
                  "(median; memory: peak resident set)\n")  # fmt: skip
            print(
                "| run | wall time | ideal | ratio | target | peak memory | vs one key | target |"
            )
            print("|---|---|---|---|---|---|---|---|")
            single = [timed(one, env) for _ in range(MANY_RUNS)]
            base_rss = statistics.median(rss for _, rss in single)
            print(f"| one key | {statistics.median(t for t, _ in single):.2f} s | 0.10 s | | "
                  f"| {base_rss / 1024:.1f} MiB | | |")  # fmt: skip
            for concurrency, target in ((8, 1.5), (32, None)):
                runs = [timed([*several, "--concurrency", str(concurrency)], env)
                        for _ in range(MANY_RUNS)]  # fmt: skip
                wall = statistics.median(t for t, _ in runs)
                rss = statistics.median(r for _, r in runs)
                ideal = math.ceil(KEYS / concurrency) * LATENCY_MS / 1000
                verdict = (
                    ""
                    if target is None
                    else (f"<= {target}x {'met' if wall / ideal <= target else 'missed'}")
                )
                memory = rss / base_rss
                print(f"| {KEYS} keys, --concurrency {concurrency} | {wall:.2f} s | {ideal:.2f} s "
                      f"| {wall / ideal:.2f}x | {verdict} | {rss / 1024:.1f} MiB "
                      f"| +{(memory - 1) * 100:.0f}% "
                      f"| <= +20% {'met' if memory <= 1.2 else 'missed'} |")  # fmt: skip
        finally:
            mock.terminate()
            mock.wait()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("bench: no VmRSS (the exporter part needs Linux's /proc)")


def _get(url: str) -> float:
    import urllib.request

    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def exporter() -> None:
    """200 keys behind the exporter: the first scrape (every key fetched), cached scrapes,
    upstream requests per key, and resident memory after 10 and after 1,000 scrapes."""
    env = clean_env()
    from structocr_cli.mock.replies import Reply, balance_document

    keys = [f"bench-key-{n:03d}-0123456789" for n in range(KEYS)]
    behaviours = {key: (lambda _: Reply.json(200, balance_document())) for key in keys}
    with (
        tempfile.TemporaryDirectory() as tmp,
        MockServer(
            behaviours=behaviours, log=open(os.devnull, "w"), latency_ms=LATENCY_MS
        ) as mock,
    ):
        keys_file = Path(tmp) / "keys.txt"
        keys_file.write_text("".join(f"k{n:03d} = {key}\n" for n, key in enumerate(keys)))
        served = subprocess.Popen(
            [STRUCTOCR, "exporter", "--listen", "127.0.0.1:0", "--keys-file", str(keys_file),
             "--base-url", mock.url, "--min-interval", "3600", "--scrape-timeout", "120"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            url = (served.stdout.readline() if served.stdout else "").strip()
            first = _get(url)
            cached = [_get(url) for _ in range(9)]
            per_key = max(mock.requests(key) for key in keys)
            after_10 = _rss_kib(served.pid)
            cached += [_get(url) for _ in range(990)]
            after_1000 = _rss_kib(served.pid)
        finally:
            served.terminate()
            served.wait()
    ideal = math.ceil(KEYS / 8) * LATENCY_MS / 1000
    typical = statistics.median(cached) * 1000
    growth = after_1000 / after_10 - 1
    print(f"\nstructocr exporter, {KEYS} keys, {LATENCY_MS} ms of latency per request, "
          "--concurrency 8\n")  # fmt: skip
    print("| measure | value | target |")
    print("|---|---|---|")
    print(
        f"| first scrape (every key fetched) | {first:.2f} s, {first / ideal:.2f}x the ideal "
        f"{ideal:.2f} s | <= 1.5x {'met' if first / ideal <= 1.5 else 'missed'} |"
    )
    print(f"| cached scrape (median of 999) | {typical:.1f} ms | < 20 ms "
          f"{'met' if typical < 20 else 'missed'} |")  # fmt: skip
    print(f"| upstream requests per key, 10 scrapes within --min-interval | {per_key} | 1 "
          f"{'met' if per_key == 1 else 'missed'} |")  # fmt: skip
    print(f"| resident memory after 10 / 1,000 scrapes | {after_10 / 1024:.1f} / "
          f"{after_1000 / 1024:.1f} MiB ({growth * 100:+.1f}%) | <= +10% "
          f"{'met' if growth <= 0.10 else 'missed'} |")  # fmt: skip


def _exporter_process(
    args: list[str], env: dict[str, str], nofile: int | None = None
) -> tuple[subprocess.Popen[str], str]:
    """An exporter with these arguments (and this descriptor limit), and its URL."""
    import resource
    import signal

    def limits() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    served = subprocess.Popen(
        [STRUCTOCR, "exporter", "--listen", "127.0.0.1:0", *args], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=limits,  # noqa: PLW1509 - the bench starts no thread before this
    )  # fmt: skip
    return served, (served.stdout.readline() if served.stdout else "").strip()


def _failing_keys(mock: MockServer, env: dict[str, str], failing: Path) -> None:
    command = [STRUCTOCR, "balance", "--base-url", mock.url, "--keys-file", str(failing),
               "-o", "tsv", "--timeout", "30"]  # fmt: skip
    started = time.perf_counter()
    code = subprocess.run(command, env=env, capture_output=True, check=False).returncode
    wall = time.perf_counter() - started
    print(f"| `balance --keys-file` with 2,000 failing keys, `-o tsv` (exit {code}) "
          f"| {wall:.2f} s | within --timeout 30 s {'met' if wall <= 30 else 'missed'} "
          "|")  # fmt: skip
    args = ["--keys-file", str(failing), "--base-url", mock.url, "--min-interval", "1",
            "--scrape-timeout", "60"]  # fmt: skip
    served, url = _exporter_process(args, env)
    try:
        scrapes = []
        for _ in range(3):
            scrapes.append(_get(url))
            time.sleep(1.1)
    finally:
        served.terminate()
        served.wait()
    print(f"| exporter, 2,000 failing keys: a scrape that fetches them all (median of 3) "
          f"| {statistics.median(scrapes):.2f} s | |")  # fmt: skip


def _slow_clients(mock: MockServer, env: dict[str, str], keys: Path) -> None:
    import contextlib
    import socket

    served, url = _exporter_process(["--keys-file", str(keys), "--base-url", mock.url], env,
                                    nofile=1024)  # fmt: skip
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    slow: list[socket.socket] = []
    try:
        for _ in range(2000):
            conn = socket.socket()
            conn.setblocking(False)
            conn.connect_ex((host, int(port)))
            slow.append(conn)
        times = []
        give_up = time.monotonic() + 20
        while time.monotonic() < give_up:  # the slow clients drip a byte at a time
            for conn in slow:
                with contextlib.suppress(OSError):
                    conn.send(b"G")
            times.append(_get(url))
            time.sleep(0.5)
    finally:
        for conn in slow:
            conn.close()
        served.terminate()
        served.wait()
    worst = max(times)
    print(f"| exporter at 1,024 descriptors, 2,000 slow clients: slowest of {len(times)} "
          f"scrapes | {worst * 1000:.0f} ms | < 1 s {'met' if worst < 1 else 'missed'} "
          "|")  # fmt: skip


def _queued_reloads(mock: MockServer, env: dict[str, str], keys: Path) -> None:
    import signal

    served, _ = _exporter_process(["--keys-file", str(keys), "--base-url", mock.url], env)
    for _ in range(400):
        served.send_signal(signal.SIGHUP)
        time.sleep(0.001)
    started = time.perf_counter()
    served.send_signal(signal.SIGTERM)
    served.wait()
    took = time.perf_counter() - started
    print(f"| exporter with 10,000 keys: 400 SIGHUPs, then SIGTERM: time to stop "
          f"| {took:.2f} s | < 2 s {'met' if took < 2 else 'missed'} |")  # fmt: skip


def hostile() -> None:
    """What an attacker or a large, broken setup throws at it: 2,000 failing keys in one
    balance run and behind the exporter, 2,000 slow clients against an exporter limited to
    1,024 descriptors, and 400 SIGHUPs before a SIGTERM with 10,000 keys."""
    env = clean_env()
    print("\nHostile loads\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, MockServer(log=open(os.devnull, "w")) as mock:
        failing = Path(tmp) / "failing.txt"
        failing.write_text("".join(f"k{n} = failing-key-{n:05d}-abcdefghij\n"
                                   for n in range(2000)))  # fmt: skip
        _failing_keys(mock, env, failing)
        fine = Path(tmp) / "fine.txt"
        fine.write_text("ok = demo\n")
        _slow_clients(mock, env, fine)
        many_keys = Path(tmp) / "many.txt"
        many_keys.write_text("".join(f"k{n} = key-{n:06d}-abcdefgh\n" for n in range(10000)))
        _queued_reloads(mock, env, many_keys)


HISTORY_KEYS = int(os.environ.get("BENCH_HISTORY_KEYS", "10"))
HISTORY_DAYS = int(os.environ.get("BENCH_HISTORY_DAYS", "365"))


def _fill(path: Path) -> int:
    """A year of per-minute observations for 10 keys, written straight into the database."""
    from structocr_cli.history.store import History, Observation

    history = History(path)
    end = int(time.time()) // 60 * 60
    minutes = HISTORY_DAYS * 1440

    def rows(key: int):  # type: ignore[no-untyped-def]
        fingerprint = history.fingerprint(f"bench-key-{key:02d}-0123456789")
        for n in range(minutes):
            at = end - (minutes - n) * 60
            used = 1000 + n // 7
            yield (f"k{key:02d}", "structocr.com", fingerprint,
                   Observation(at, at - at % 2592000, at - at % 2592000 + 2591999, 10**7, used,
                               10**7 - used, used % 50000, n % 90000, "4.37", 2720,
                               used % 900, n % 400, "2.22", 2424))  # fmt: skip

    for key in range(HISTORY_KEYS):
        history.add_all(rows(key))
    count = history.count()
    history.close()
    return count


def _watch_log(path: Path, lines: int) -> None:
    """``lines`` refreshes of one key, as balance --watch writes them into a pipe."""
    from structocr_cli.mock.replies import balance_document

    data = balance_document()
    start = int(time.time()) - lines * 60
    with path.open("w") as out:
        for n in range(lines):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + n * 60))
            item = {"profile": "ci", "key": "sk_l…2b1c", "ok": True, "exit_code": 0,
                    "data": data}  # fmt: skip
            out.write(json.dumps({"time": stamp, "refresh": n + 1, "exit_code": 0,
                                  "keys": [item], "breached": []}) + "\n")  # fmt: skip


def history() -> None:
    """Recording's cost, reading a year of history, importing a watch log, bytes per row."""
    env = compiled_env()
    print("\nHistory\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, MockServer(log=open(os.devnull, "w")) as mock:
        command = [STRUCTOCR, "balance", "--json", "--base-url", mock.url, "--api-key", "demo"]
        on = {**env, "STRUCTOCR_HISTORY": str(Path(tmp) / "rec.sqlite3")}
        off = {**env, "STRUCTOCR_HISTORY": "off"}
        times, base = measure(command, on, command, off)
        ratio = paired_ratio(times, base)
        print(
            f"| `balance --json` with history / without (median of {RUNS}, paired) "
            f"| {statistics.median(times):.0f} / {statistics.median(base):.0f} ms, "
            f"{(ratio - 1) * 100:+.1f}% | <= +5% {'met' if ratio <= 1.05 else 'missed'} |"
        )
        path = Path(tmp) / "year.sqlite3"
        started = time.perf_counter()
        rows = _fill(path)
        filled = time.perf_counter() - started
        size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob("year*-wal"))
        per_row = size / rows
        print(
            f"| database of {rows:,} observations ({HISTORY_KEYS} keys x {HISTORY_DAYS} days "
            f"x 1,440; written in {filled:.0f} s) | {size / 2**20:.0f} MiB, {per_row:.0f} "
            f"bytes per observation | <= 120 {'met' if per_row <= 120 else 'missed'} |"
        )
        year = {**env, "STRUCTOCR_HISTORY": str(path)}
        for since, target in ((f"{HISTORY_DAYS}d", 300), ("30d", 50)):
            args = [STRUCTOCR, "history", "--since", since, "--every", "1d", "--json"]
            # Paired with --version, as start-up's share: each pair's difference is the read.
            runs, floor = measure(args, year, [STRUCTOCR, "--version"], env)
            whole, start_up = statistics.median(runs), statistics.median(floor)
            own = statistics.median(r - f for r, f in zip(runs, floor, strict=True))
            print(
                f"| `history --since {since} --every 1d --json` over all of it | {own:.0f} ms "
                f"beyond start-up ({whole:.0f} ms in all, `--version` {start_up:.0f} ms) "
                f"| <= {target} ms {'met' if own <= target else 'missed'} |"
            )
        log = Path(tmp) / "watch.jsonl"
        lines = int(os.environ.get("BENCH_IMPORT_LINES", "1000000"))
        _watch_log(log, lines)
        into = {**env, "STRUCTOCR_HISTORY": str(Path(tmp) / "imported.sqlite3")}
        took = timed([STRUCTOCR, "history", "import", str(log)], into)[0]
        print(
            f"| `history import` of {lines:,} watch lines | {took:.1f} s "
            f"| < 60 s {'met' if took < 60 else 'missed'} |"
        )


PARTS = {"startup": startup, "many": many, "exporter": exporter, "hostile": hostile,
         "history": history}  # fmt: skip


def main() -> None:
    for name in sys.argv[1:] or list(PARTS):
        PARTS[name]()


if __name__ == "__main__":
    main()

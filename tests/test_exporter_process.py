"""structocr exporter as a real process: the URL on its first line, SIGHUP reloads, a clean
stop on SIGINT and SIGTERM with fetches in flight, the warning for a non-loopback address,
and its options' errors (those in process)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY, STRUCTOCR, _recorded, run


class Running:
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process, self.url, self.log_path = process, url, log

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            text: str = response.read().decode()
        _recorded(text)
        return text

    def wait_for(self, condition: str, in_what: str = "metrics", seconds: float = 10) -> str:
        give_up = time.monotonic() + seconds
        while time.monotonic() < give_up:
            text = self.metrics() if in_what == "metrics" else self.log
            if condition in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{condition!r} never appeared in the {in_what}")

    def stop(self, signum: int) -> tuple[int, float]:
        """The exit code, and how long the process took to end after the signal."""
        started = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(10)
        return code, time.monotonic() - started


@contextmanager
def exporter(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Running]:
    log = tmp_path / "exporter.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [str(STRUCTOCR), "exporter", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, **(env or {})},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
        )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = select.select([process.stdout], [], [], 20)[0]
        url = process.stdout.readline().strip() if ready else ""
        assert url.startswith("http://127.0.0.1:"), log.read_text()
        assert url.endswith("/metrics")
        yield Running(process, url, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _recorded(log.read_text())


def test_first_line_is_the_url_then_sighup_reloads_the_keys(
    server: MockServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"ok = {LONG_KEY}\n")
    with exporter(tmp_path, "--base-url", server.url, "--keys-file", str(keys)) as running:
        assert 'structocr_up{profile="ok"} 1' in running.metrics()
        keys.write_text(f"ok = {LONG_KEY}\nsecond = demo\n")
        running.process.send_signal(signal.SIGHUP)
        running.wait_for('structocr_up{profile="second"} 1')
        assert "serving 1 key at http" in running.log
        assert "reloaded: serving 2 keys" in running.log
        keys.write_text("ok = demo\nthis line is sk_live_not_a_name_value_pair\n")  # bad
        running.process.send_signal(signal.SIGHUP)
        log = running.wait_for("reload failed", in_what="log")
        assert "still serving the 2 keys in use" in log
        assert "keys.txt, line 2: not a name=key line" in log
        assert "sk_live_not" not in log
        assert 'structocr_up{profile="second"} 1' in running.metrics()  # the old set
        keys.write_text("# every key removed\n")  # no alert could fire on no key
        running.process.send_signal(signal.SIGHUP)
        log = running.wait_for("reload refused", in_what="log")
        assert "warning: reload refused, still serving the 2 keys in use: no keys selected" in log
        assert 'structocr_up{profile="second"} 1' in running.metrics()  # the old set
        code, _ = running.stop(signal.SIGINT)
    assert code == 0
    assert LONG_KEY not in running.log


@pytest.mark.timing
def test_sigterm_stops_within_2_s_with_fetches_in_flight(
    server: MockServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("".join(f"h{n} = t-hang\n" for n in range(4)) + f"ok = {LONG_KEY}\n")
    args = ("--base-url", server.url, "--keys-file", str(keys), "--scrape-timeout", "0.2")
    with exporter(tmp_path, *args) as running:
        text = running.metrics()  # the hanging keys are still being fetched
        deadline = time.monotonic() + 10  # on a busy machine ok may take more than 0.2 s
        while 'structocr_up{profile="ok"} 1' not in text and time.monotonic() < deadline:
            time.sleep(0.05)
            text = running.metrics()
        assert 'structocr_up{profile="ok"} 1' in text
        assert 'structocr_up{profile="h0"} 0' in text
        scraping = threading.Event()

        def scrape_on() -> None:  # scrapes keep coming, up to the stop and after it
            while True:
                try:
                    running.metrics()
                except Exception:  # refused, reset or cut short: it has stopped
                    return
                scraping.set()

        for _ in range(4):
            threading.Thread(target=scrape_on, daemon=True).start()
        assert scraping.wait(10)
        code, took = running.stop(signal.SIGTERM)
    assert code == 0
    assert took < 2  # the requirement, with fetches hanging for 30 s
    assert running.log.rstrip().endswith("info: stopped")


def test_listening_beyond_loopback_warns(server: MockServer, tmp_path: Path) -> None:
    log = tmp_path / "exporter.log"
    keys = tmp_path / "keys.txt"
    keys.write_text("ok = demo\n")
    with log.open("w") as err:
        process = subprocess.Popen(
            [str(STRUCTOCR), "exporter", "--listen", "0.0.0.0:0", "--keys-file", str(keys),
             "--base-url", server.url],
            stdout=subprocess.PIPE, stderr=err, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
        )  # fmt: skip
    assert process.stdout is not None
    assert select.select([process.stdout], [], [], 20)[0]
    assert process.stdout.readline().startswith("http://0.0.0.0:")
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    assert "listening on 0.0.0.0, not loopback" in log.read_text()


# Option errors, in process.


@pytest.mark.parametrize(
    ("args", "says"),
    [(("--listen", "9811"), "--listen '9811' is not HOST:PORT"),
     (("--log-format", "xml"), "'xml' is not one of 'text', 'json'"),
     (("--print-rules", "--alert-error-ratio", "2"), "--alert-error-ratio is a share"),
     (("--print-rules", "--job", 'a"b'), "is not a job name"),
     (("--min-interval", "0"), "--min-interval"),
     (("--keys-file", "/nonexistent/keys"), "cannot read --keys-file"),
     (("--keys-file", "/dev/null"), "no keys selected: /dev/null has no name=key line"),
     (("--print-rules", "--print-dashboard"), "--print-rules and --print-dashboard each print"),
     (("--alert-credits", "5000"), "--alert-credits only shapes --print-rules"),
     (("--job", "x"), "--job only shapes --print-rules"),
     (("--print-dashboard", "--listen", "127.0.0.1:0"), "--listen has no effect with --print-d"),
     (("--print-rules", "--keys-file", "k"), "--keys-file has no effect with --print-rules")],
)  # fmt: skip
def test_exporter_option_errors(args: tuple[str, ...], says: str) -> None:
    result = run("exporter", *args)
    assert result.returncode == 2
    assert says in result.stderr


def test_an_address_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("exporter", "--listen", f"127.0.0.1:{port}", env={"STRUCTOCR_API_KEY": "x"})
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_default_keys_every_profile_else_the_one_key(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structocr_cli.runs.exporter import exporter_keys

    monkeypatch.setenv("STRUCTOCR_API_KEY", "env-key-123456789")
    one = exporter_keys([], False, None, None, 5)
    assert [(spec.name, spec.flags.api_key) for spec in one] == [("default", "env-key-123456789")]
    config_file.write_text('[profiles.b]\napi_key = "kb"\n[profiles.a]\napi_key = "ka"\n')
    assert [spec.name for spec in exporter_keys([], False, None, None, 5)] == ["a", "b"]


def test_no_key_at_all_is_exit_41() -> None:
    result = run("exporter")
    assert result.returncode == 41
    assert "no api key" in result.stderr.lower()


def test_json_log_lines_and_the_config_files_warnings(
    server: MockServer, config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text(f'[profiles.ok]\napi_key = "{LONG_KEY}"\n[oops]\nx = 1\n')
    config_file.chmod(0o644)
    args = ("--base-url", server.url, "--log-format", "json")
    with exporter(tmp_path, *args, env={"STRUCTOCR_CONFIG": str(config_file)}) as running:
        assert 'structocr_up{profile="ok"} 1' in running.metrics()  # every profile, by default
        code, _ = running.stop(signal.SIGTERM)
    assert code == 0
    entries = [json.loads(line) for line in running.log.splitlines()]
    warnings = [entry["message"] for entry in entries if entry["level"] == "warning"]
    assert any("oops" in message for message in warnings), warnings
    assert any("chmod 600" in message for message in warnings), warnings
    assert entries[-1]["message"] == "stopped"
    assert all(entry["time"].endswith("Z") for entry in entries)


@pytest.mark.timing
def test_reloads_queued_together_are_one_and_a_stop_goes_first(
    server: MockServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("".join(f"k{n} = key-{n:06d}-abcdefgh\n" for n in range(5000)))
    with exporter(tmp_path, "--base-url", server.url, "--keys-file", str(keys)) as running:
        for _ in range(300):  # apart, so that each one is a signal of its own
            running.process.send_signal(signal.SIGHUP)
            time.sleep(0.002)
        code, took = running.stop(signal.SIGTERM)
    reloads = running.log.count("reloaded: serving 5000 keys")
    assert code == 0
    assert reloads < 150, reloads  # 300 signals, each reload over 5,000 keys
    assert took < 10  # a hang guard; make bench measures the stop

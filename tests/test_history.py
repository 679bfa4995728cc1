"""The local history: recording from every command, the database file, `structocr history`,
the trend forecast, import, export and prune; real SQLite files throughout."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from structocr_cli.history import schema
from structocr_cli.history.query import buckets, series_trend
from structocr_cli.history.recorder import Recorder, host_of
from structocr_cli.history.store import History, HistoryError, Observation, secret_path
from structocr_cli.history.trend import slopes, trend
from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY, NOW, Result, StoppedClock, run

DAY = 86400


def seen(at: float, remaining: float, used: float = 0, total: float = 100000) -> Observation:
    return Observation(int(at), 1764547200, 1767225599, total, used, remaining, used, used,
                       "1.5", 100, used, used, "0.5", 90)  # fmt: skip


@pytest.fixture
def db_path(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = isolated / "data" / "history.sqlite3"
    monkeypatch.setenv("STRUCTOCR_HISTORY", str(path))
    return path


def observations(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM observations ORDER BY series, minute").fetchall()


def balance(
    server: MockServer, *args: str, key: str = LONG_KEY, env: dict[str, str] | None = None
) -> Result:
    return run("balance", "--base-url", server.url, "--api-key", key, *args, env=env)


# Recording


def test_a_balance_run_records_one_observation_in_a_private_file(
    server: MockServer, db_path: Path
) -> None:
    result = balance(server, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = observations(db_path)
    assert len(rows) == 1
    assert rows[0][1] * 60 + rows[0][2] == int(NOW.timestamp())
    assert rows[0][5:10] == (50569, 1720, 48849, 337, 206)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_path(db_path).stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


def test_the_file_holds_no_key_nor_any_8_character_run_of_it(
    server: MockServer, db_path: Path
) -> None:
    assert balance(server, "--json").returncode == 0
    data = b"".join(p.read_bytes() for p in db_path.parent.iterdir())
    runs = {LONG_KEY[i : i + 8].encode() for i in range(len(LONG_KEY) - 7)}
    assert not [run for run in runs if run in data]
    with sqlite3.connect(db_path) as db:
        (fingerprint,) = db.execute("SELECT fingerprint FROM series").fetchone()
    import hashlib

    assert fingerprint != hashlib.sha256(LONG_KEY.encode()).hexdigest()[:32]  # keyed, not plain


def test_one_observation_per_key_per_minute_the_newest_kept(
    server: MockServer, db_path: Path, clock: StoppedClock
) -> None:
    clock.advance(60 - NOW.second)  # the start of a minute
    for _ in range(3):
        assert balance(server, "--json").returncode == 0
        clock.advance(10)
    assert len(observations(db_path)) == 1
    assert observations(db_path)[0][2] == 20
    clock.advance(60)
    assert balance(server, "--json").returncode == 0
    assert len(observations(db_path)) == 2


def test_an_older_observation_does_not_replace_a_newer_one(db_path: Path) -> None:
    history = History(db_path)
    minute = NOW.timestamp() - NOW.second
    history.record("ci", "h", "k" * 20, seen(minute + 30, 5))
    history.record("ci", "h", "k" * 20, seen(minute + 10, 9))
    assert [o.credits_remaining for s, o in history.each()] == [5]


def test_no_history_and_off_record_nothing(server: MockServer, db_path: Path) -> None:
    assert balance(server, "--json", "--no-history").returncode == 0
    assert run("balance", "--base-url", server.url, "--api-key", LONG_KEY, "--json",
               env={"STRUCTOCR_HISTORY": "off"}).returncode == 0  # fmt: skip
    assert not db_path.exists()


def test_several_keys_and_watch_refreshes_are_recorded_by_name(
    server: MockServer, db_path: Path, isolated: Path, clock: StoppedClock
) -> None:
    keys = isolated / "keys.txt"
    keys.write_text(f"ci = {LONG_KEY}\nbatch = demo-low\n")
    assert (
        run("balance", "--base-url", server.url, "--keys-file", str(keys), "--json").returncode
        == 0
    )
    result = run("balance", "--base-url", server.url, "--keys-file", str(keys), "--watch", "5",
                 "--count", "1", "--json")  # fmt: skip
    assert result.returncode == 0
    names = sorted(s.name for s in History(db_path).all_series())
    assert names == ["batch", "ci"]


def test_a_new_key_under_the_same_name_starts_a_new_series(
    server: MockServer, db_path: Path
) -> None:
    assert balance(server, "--json").returncode == 0
    assert balance(server, "--json", key="demo").returncode == 0
    series = History(db_path).all_series()
    assert [s.name for s in series] == ["default", "default"]
    assert series[0].fingerprint != series[1].fingerprint


@pytest.mark.parametrize("damage", ["garbage", "read_only", "newer"])
def test_an_unusable_database_is_one_warning_and_changes_nothing_else(
    server: MockServer, db_path: Path, damage: str
) -> None:
    clean = run("balance", "--base-url", server.url, "--api-key", LONG_KEY, "--json",
                env={"STRUCTOCR_HISTORY": "off"})  # fmt: skip
    if damage == "read_only" and os.geteuid() == 0:
        pytest.skip("root writes to read-only files")
    db_path.parent.mkdir(mode=0o700)
    if damage == "garbage":
        db_path.write_bytes(b"this is not a database" * 200)
    elif damage == "read_only":
        History(db_path).record("x", "h", "k" * 20, seen(0, 1))
        db_path.chmod(0o400)
        db_path.parent.chmod(0o500)
    else:
        with sqlite3.connect(db_path) as db:
            db.execute("PRAGMA user_version = 99")
    try:
        result = balance(server, "--json")
    finally:
        db_path.parent.chmod(0o700)
    assert (result.returncode, result.stdout) == (clean.returncode, clean.stdout)
    warnings = [line for line in result.stderr.splitlines() if line]
    assert len(warnings) == 1, result.stderr
    assert '"warning"' in warnings[0]
    assert "history" in warnings[0]
    if damage == "garbage":
        assert "moved it to" in warnings[0]
        assert [o[5:10] for o in observations(db_path)] == [(50569, 1720, 48849, 337, 206)]
        assert list(db_path.parent.glob("history.sqlite3.corrupt-20261130T073342Z"))


def test_a_locked_database_is_a_warning_after_a_short_wait(
    server: MockServer, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structocr_cli.history import store

    monkeypatch.setattr(store, "BUSY_TIMEOUT", 0.1)
    History(db_path).record("x", "h", "k" * 20, seen(0, 1))
    holder = sqlite3.connect(db_path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = balance(server)
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 0
    assert "Credits remaining" in result.stdout
    assert result.stderr.startswith("structocr: warning: history not recorded:")
    assert "locked" in result.stderr


def test_a_file_another_process_is_creating_is_waited_for(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The creator holds the new file's write lock while this process switches it to WAL.
    # SQLite answers "locked" there at once, without its busy wait; the switch must wait.
    import threading

    from structocr_cli.history import store

    monkeypatch.setattr(store, "BUSY_TIMEOUT", 60.0)  # the wait ends when the lock does
    db_path.parent.mkdir(mode=0o700)
    creator = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.2, creator.execute, ("COMMIT",))
    release.start()
    try:
        history = History(db_path)
        history.record("x", "h", "k" * 20, seen(0, 1))
    finally:
        release.join()
        creator.close()
    assert history.count() == 1
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_creator_that_never_lets_go_is_given_up_on_after_the_busy_timeout(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structocr_cli.history import store

    monkeypatch.setattr(store, "BUSY_TIMEOUT", 0.1)
    db_path.parent.mkdir(mode=0o700)
    creator = sqlite3.connect(db_path, isolation_level=None)
    creator.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(HistoryError) as failure:
            History(db_path).record("x", "h", "k" * 20, seen(0, 1))
    finally:
        creator.execute("ROLLBACK")
        creator.close()
    assert failure.value.kind == "locked"


def test_a_database_of_the_first_schema_opens_and_records(db_path: Path) -> None:
    db_path.parent.mkdir(mode=0o700)
    with sqlite3.connect(db_path) as db:  # version 1, as the first release wrote it
        db.executescript(schema.STEPS[0])
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO series VALUES (1, 'ci', 'h', 'f')")
        db.execute("INSERT INTO observations VALUES "
                   "(1, 29000000, 5, 0, 1, 10, 2, 8, 2, 2, '1', 3, 2, 2, '0', 3)")  # fmt: skip
    history = History(db_path)
    assert [o.at for _, o in history.each()] == [29000000 * 60 + 5]
    history.record("ci", "h", "k" * 20, seen(NOW.timestamp(), 1))
    assert history.count() == 2
    assert schema.version(sqlite3.connect(db_path)) == schema.SCHEMA_VERSION


def test_a_symlink_or_a_directory_is_refused_as_the_file(isolated: Path) -> None:
    target = isolated / "elsewhere.db"
    link = isolated / "link.db"
    link.symlink_to(target)
    with pytest.raises(HistoryError):
        History(link).record("x", "h", "k" * 20, seen(0, 1))
    assert not target.exists()


# Buckets and the trend


def test_buckets_sum_use_and_keep_the_last_remaining_of_each(db_path: Path) -> None:
    history = History(db_path)
    start = 1764547200  # a UTC midnight
    for hour in range(48):
        history.record("ci", "h", "k" * 20, seen(start + hour * 3600, 1000 - hour, used=hour))
    sid = history.all_series()[0].id
    rows = buckets(history, sid, start, start + 2 * DAY - 1, DAY)
    assert [(b.start, b.remaining, b.used) for b in rows] == [
        (start, 977, 23), (start + DAY, 953, 24),
    ]  # fmt: skip


def test_a_clock_that_went_back_breaks_neither_buckets_nor_the_fit(db_path: Path) -> None:
    history = History(db_path)
    base = NOW.timestamp() - 3 * DAY
    times = [base + n * 3600 for n in range(72)]
    times[40], times[41] = times[41] - 7200, times[40] + 5400  # an NTP step back and forth
    for n, at in enumerate(times):
        history.record("ci", "h", "k" * 20, seen(at, 10000 - 100 * n, used=100 * n))
    sid = history.all_series()[0].id
    rows = buckets(history, sid, base, NOW.timestamp(), 3600)
    assert all(b.used >= 0 for b in rows)
    found = series_trend(history, sid, NOW, 7 * DAY)
    assert found is not None
    assert found.daily_burn == pytest.approx(2400, rel=0.05)


def test_theil_sen_ignores_a_burst_that_moves_an_average() -> None:
    points = [(float(day), 10000.0 - 100 * day) for day in range(10)]
    points[5] = (5.0, 2000.0)  # one burst
    median, low, high = slopes(points) or (0, 0, 0)
    assert median == pytest.approx(-100)
    assert low <= median <= high


def test_trend_needs_a_day_and_dates_the_runout(clock: StoppedClock) -> None:
    now = NOW.timestamp()
    short = [(now - 3600 * h, 1000.0 + 10 * h) for h in range(23)]
    assert trend(short, 1000, now, NOW) is None
    daily = [(now - DAY * d, 1000.0 + 100 * d) for d in range(5)]
    found = trend(daily, 1000, now, NOW)
    assert found is not None
    assert found.daily_burn == pytest.approx(100)
    assert found.runway_days == pytest.approx(10)
    assert found.runout == NOW + timedelta(days=10)
    growing = [(now - DAY * d, 1000.0 - 100 * d) for d in range(5)]
    assert trend(growing, 1000, now, NOW).runout is None  # type: ignore[union-attr]
    late = NOW.replace(year=9999, month=12, day=25)  # 10 days later is past the calendar
    far = trend([(late.timestamp() - DAY * d, 1000.0 + 100 * d) for d in range(5)], 1000,
                late.timestamp(), late)  # fmt: skip
    assert far is not None
    assert far.daily_burn == pytest.approx(100)
    assert far.runout is None


def _seed(path: Path, server: MockServer, days: int = 3, burn: float = 4000) -> None:
    """History for LONG_KEY as `balance` records it: one observation an hour for ``days``."""
    history = History(path)
    host = host_of(server.url)
    for hour in range(days * 24, 0, -1):
        at = NOW.timestamp() - hour * 3600
        remaining = 48849 + burn * hour / 24
        history.record("default", host, LONG_KEY, seen(at, remaining, total=50569))
    history.close()


def test_the_report_gains_the_trend_line_after_a_day(server: MockServer, db_path: Path) -> None:
    before = balance(server)
    assert "days' rate" not in before.stdout
    _seed(db_path, server)
    result = balance(server, "--no-ci")
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if "days' rate" in line)
    assert "4,000 a day" in line
    assert "runs out around 2026-12-12" in line


def test_trend_fields_metric_and_gate(server: MockServer, db_path: Path) -> None:
    _seed(db_path, server)
    field = balance(server, "--field", "trend.runway_days", "--field", "trend.runout_date")
    assert field.stdout.splitlines()[1] == "2026-12-12"
    assert float(field.stdout.splitlines()[0]) == pytest.approx(12.2, abs=0.1)
    metrics = balance(server, "-o", "openmetrics")
    assert "\nstructocr_forecast_runway_trend_seconds 1055" in metrics.stdout
    failed = balance(server, "--min-runway-days", "30", "--runway-basis", "trend", "-q")
    assert failed.returncode == 1
    assert "trend.runway_days" in failed.stderr
    passed = balance(server, "--min-runway-days", "30", "-q")  # this period's pace: years
    assert passed.returncode == 0


def test_a_trend_gate_without_a_day_of_history_fails_closed_with_3(
    server: MockServer, db_path: Path
) -> None:
    result = balance(server, "--min-runway-days", "7", "--runway-basis", "trend")
    assert result.returncode == 3
    assert "less than 24 hours" in result.stderr
    off = balance(server, "--min-runway-days", "7", "--runway-basis", "trend", "--no-history")
    assert off.returncode == 3
    assert "history is off" in off.stderr
    bad = balance(server, "--runway-basis", "guess")
    assert bad.returncode == 2


# structocr history


def test_history_with_nothing_recorded_says_how_and_exits_0(db_path: Path) -> None:
    result = run("history")
    assert result.returncode == 0
    assert result.stdout == ""
    assert str(db_path) in result.stderr
    assert "--no-history" in result.stderr
    assert json.loads(run("history", "--json").stdout)["series"] == []
    assert run("history", "-o", "csv").stdout.startswith("name,host,key_id,time,")


def test_history_table_json_csv_and_tsv(server: MockServer, db_path: Path) -> None:
    _seed(db_path, server)
    table = run("history", "--since", "2d", "--every", "1d", env={"COLUMNS": "120"})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("default at 127.0.0.1:")
    assert lines[1].split() == ["time", "remaining", "used", "requests"]
    assert "credits run out around 2026-12-12" in table.stdout
    document = json.loads(run("history", "--since", "2d", "--every", "1d", "--json").stdout)
    (series,) = document["series"]
    assert [row["time"][:10] for row in series["rows"]] == ["2026-11-28", "2026-11-29",
                                                           "2026-11-30"]  # fmt: skip
    assert [row["used"] for row in series["rows"]] == [0, 0, 0]  # seeded: remaining only
    assert series["trend"]["runout_date"] == "2026-12-12"
    rows = list(csv.DictReader(io.StringIO(run("history", "-o", "csv").stdout)))
    assert [row["name"] for row in rows] == ["default"] * 4  # 11-27 to 11-30
    tsv = run("history", "-o", "tsv").stdout.splitlines()
    assert tsv[0].split("\t")[:4] == ["name", "host", "key_id", "time"]
    assert run("history", "-p", "nobody").stderr.startswith("structocr: no history for nobody")


def _names(result: Result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [f"{s['name']} {s['host']}" for s in json.loads(result.stdout)["series"]]


def test_history_chooses_keys_as_balance_does(
    server: MockServer, db_path: Path, isolated: Path, config_file: Path
) -> None:
    other = "sk_live_0000111122223333aaaa"
    history = History(db_path)
    at = NOW.timestamp() - 3600
    for name, key in (("ci", LONG_KEY), ("ci", other), ("web", other), ("old", LONG_KEY)):
        history.record(name, "h", key, seen(at, 5))
    history.close()
    assert History(db_path).count() == 4
    imported = run("history", "import", "-", stdin=_watch_log(server, isolated))  # ci, LONG_KEY
    assert imported.returncode == 0, imported.stderr
    assert _names(run("history", "--json")) == ["ci h", "ci h", "ci imported", "old h", "web h"]
    assert _names(run("history", "--json", "-p", "web", "-p", "old")) == ["old h", "web h"]
    partly = run("history", "--json", "-p", "web", "-p", "wbe")
    assert _names(partly) == ["web h"]
    assert partly.stderr.startswith("structocr: no history for wbe yet in ")
    config_file.write_text(
        f'[profiles.web]\napi_key = "{other}"\n[profiles.none]\napi_key = "x"\n'
    )
    assert _names(run("history", "--json", "--all-profiles")) == ["web h"]
    keys = isolated / "keys.txt"
    keys.write_text(f"ci = {LONG_KEY}\n")  # that name's series of that very key, imported too
    chosen = run("history", "--json", "--keys-file", str(keys))
    assert _names(chosen) == ["ci h", "ci imported"]
    fingerprint = History(db_path).fingerprint(LONG_KEY)[:8]
    assert json.loads(chosen.stdout)["series"][0]["key_id"] == fingerprint
    assert _names(run("history", "--json", "--keys-file", "-", stdin=f"web={other}\n")) == [
        "web h"
    ]
    none = run("history", "--keys-file", "-", stdin=f"nobody={other}\n")
    assert none.returncode == 0
    assert none.stderr.startswith("structocr: no history for nobody yet")
    assert run("history", "--keys-file", "-", stdin="\n").returncode == 2
    bad = run("history", "--keys-file", "-", stdin=f"{LONG_KEY}\n")
    assert bad.returncode == 2
    assert "line 1: not a name=key line" in bad.stderr
    assert LONG_KEY[:8] not in bad.stderr + bad.stdout
    config_file.write_text("")
    assert run("history", "--all-profiles").returncode == 2


def test_more_rows_a_key_than_anyone_reads_are_refused_before_reading(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A year of minutes for ten keys would take gigabytes; 20,000 rows stand for that here.
    from structocr_cli.history import query

    monkeypatch.setattr(query, "MOST_BUCKETS", 50)
    history = History(db_path)
    now = NOW.timestamp() // 60 * 60
    history.add_all(("ci", "h", "f" * 32, seen(now - 60 * n, 1000 - n)) for n in range(120))
    history.close()
    refused = run("history", "--since", "1d", "--every", "1m", "--json")
    assert (refused.returncode, refused.stdout) == (2, "")
    error = json.loads(refused.stderr)["error"]
    assert error["message"].startswith(
        "--every 1m makes 120 rows for a key in this range; the most is 50. Choose"
    )
    assert error["message"].endswith("structocr history export writes every observation")
    plain = run("history", "--since", "1d", "--every", "1m")
    assert plain.stderr.startswith("structocr: error: --every 1m makes 120 rows")
    assert "Choose a longer --every (such as 1h or 1d)" in plain.stderr
    hourly = run("history", "--since", "1d", "--every", "1h", "--json")
    assert hourly.returncode == 0, hourly.stderr
    assert len(json.loads(hourly.stdout)["series"][0]["rows"]) == 3


def test_a_long_json_read_is_one_document_in_the_usual_layout(db_path: Path) -> None:
    # Written in pieces (4,096 at a time): 600 rows are about 10,000 of them.
    history = History(db_path)
    now = NOW.timestamp() // 60 * 60
    history.add_all(("ci", "h", "f" * 32, seen(now - 60 * n, 1000 - n)) for n in range(600))
    history.close()
    result = run("history", "--since", "1d", "--every", "1m", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["series"][0]["rows"]) == 600
    assert result.stdout == json.dumps(document, indent=2) + "\n"


def test_a_few_observations_years_apart_are_read_in_a_few_seeks(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 27 years of hours are 236,000 buckets: only the two that hold an observation are read
    # (an empty stretch is one seek), and the limit counts those two, not the years between.
    history = History(db_path)
    then = 1577836800  # 2020-01-01
    history.record("ci", "h", "k" * 20, seen(then, 2000))
    history.record("ci", "h", "k" * 20, seen(NOW.timestamp(), 1500, used=500))
    history.close()
    seeks: list[float] = []
    one = History._one

    def counted(self: History, query: str, series: int, at: float) -> Observation | None:
        seeks.append(at)
        return one(self, query, series, at)

    monkeypatch.setattr(History, "_one", counted)
    result = run("history", "--since", "2000-01-01", "--every", "1h", "-o", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["time"], row["remaining"], row["used"]) for row in rows] == [
        ("2020-01-01T00:00:00Z", "2000", "0"), ("2026-11-30T07:00:00Z", "1500", "500"),
    ]  # fmt: skip
    assert len(seeks) < 250  # buckets (2 + 2 a row) and the trend's 100; not 236,000


def test_stdin_on_a_terminal_is_refused_not_waited_on(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tests.conftest._Stdin.isatty", lambda self: True)
    for args in (("--keys-file", "-"), ("import", "-")):
        result = run("history", *args)
        assert result.returncode == 2
        assert "from a pipe, not a terminal" in result.stderr


def test_history_window_chooses_what_the_trend_is_fitted_to(
    server: MockServer, db_path: Path
) -> None:
    _seed(db_path, server, days=10)
    history = History(db_path)
    history.record(
        "default", host_of(server.url), LONG_KEY, seen(NOW.timestamp() - 9 * DAY, 1e6, total=50569)
    )
    history.close()

    def fitted(*args: str) -> dict[str, float]:
        result = run("history", "--json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["series"][0]["trend"]

    assert round(fitted()["window_days"]) == 7
    assert 90 <= fitted()["points"] <= 100  # hourly observations, at most 100 in a fit
    assert round(fitted("--window", "2d")["window_days"]) == 2
    assert fitted("--window", "2d")["daily_burn"] == pytest.approx(4000)
    assert round(fitted("--window", "30d")["window_days"]) == 10
    table = run("history", "--window", "3d", "--since", "1d", env={"COLUMNS": "100"})
    assert "At the last 3 days' rate" in table.stdout
    assert run("history", "--window", "12h").returncode == 2
    empty = History(db_path)
    empty.prune(NOW.timestamp() - 3600)
    empty.close()
    assert (
        "needs 24 hours of history in the last 14 days"
        in run("history", "--window", "2w", env={"COLUMNS": "100"}).stdout
    )


def test_history_keep_sets_what_recording_and_prune_keep(
    server: MockServer, db_path: Path
) -> None:
    history = History(db_path)
    host = host_of(server.url)
    for days in (100, 20, 5):
        history.record("default", host, LONG_KEY, seen(NOW.timestamp() - days * DAY, days))
    history.close()

    def kept() -> list[float]:
        return sorted(o.credits_remaining for _, o in History(db_path).each())

    typo = balance(server, "--json", env={"STRUCTOCR_HISTORY_KEEP": "forever"})
    assert typo.returncode == 0  # recording's settings never fail a check
    assert "STRUCTOCR_HISTORY_KEEP='forever' is not a length" in typo.stderr
    assert "keeping 400 days" in typo.stderr
    assert kept() == [5, 20, 100, 48849]
    assert run("history", "prune", env={"STRUCTOCR_HISTORY_KEEP": "forever"}).returncode == 2
    pruned = run("history", "prune", env={"STRUCTOCR_HISTORY_KEEP": "50d"})
    assert "removed 1 observations older than 50 days" in pruned.stderr
    assert balance(server, "--json", env={"STRUCTOCR_HISTORY_KEEP": "2w"}).returncode == 0
    assert kept() == [5, 48849]


def test_history_chart_on_a_terminal(server: MockServer, db_path: Path) -> None:
    _seed(db_path, server)
    from structocr_cli.history.store import History as Store
    from structocr_cli.report.chart import chart

    history = Store(db_path)
    sid = history.all_series()[0].id
    drawn = chart(buckets(history, sid, NOW.timestamp() - 3 * DAY, NOW.timestamp(), 3600),
                  3600, 80)  # fmt: skip
    assert "credits remaining" in drawn
    assert "credits used per bucket" in drawn
    assert "0.00┤" in drawn  # nothing used: an axis from 0, not from -1
    assert "-1.00" not in drawn
    assert "\x1b[" not in drawn
    assert max(len(line) for line in drawn.splitlines()) <= 80


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_history_table_and_chart_fit_40_to_200_columns(
    server: MockServer, db_path: Path, columns: int
) -> None:
    _seed(db_path, server, days=3, burn=1234567)  # wide figures
    shown = run("history", "--since", "3d", "--every", "1h", env={"COLUMNS": str(columns)})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    header = next(line.split() for line in lines if line.startswith("time"))
    assert header[:2] == ["time", "remaining"]  # the columns that matter stay
    assert (header == ["time", "remaining", "used", "requests"]) == (columns >= 80)
    assert sum(bool(re.match(r"2026-..-.. ..:.. ", line)) for line in lines) == 72  # rows
    from structocr_cli.report.chart import chart

    history = History(db_path)
    sid = history.all_series()[0].id
    hours = buckets(history, sid, NOW.timestamp() - 3 * DAY, NOW.timestamp(), 3600)
    other = 240 - columns  # a chart of another width first: none of its size may stay
    chart(hours, 3600, other)
    drawn = chart(hours, 3600, columns).splitlines()
    assert max(len(line) for line in drawn) <= columns
    assert len(drawn) <= 24


def test_history_bad_options_are_usage_errors(db_path: Path) -> None:
    assert run("history", "--since", "soon").returncode == 2
    assert run("history", "--every", "0d").returncode == 2
    assert run("history", "prune", "--keep", "forever").returncode == 2
    assert run("history", env={"STRUCTOCR_HISTORY": "off"}).returncode == 2


def _watch_log(server: MockServer, isolated: Path) -> str:
    keys = isolated / "keys.txt"
    keys.write_text(f"ci = {LONG_KEY}\n")
    result = run("balance", "--base-url", server.url, "--keys-file", str(keys), "--watch", "5",
                 "--count", "1", "--json", "--no-history")  # fmt: skip
    assert result.returncode == 0
    return result.stdout


def test_import_a_watch_log_once_and_export_it(
    server: MockServer, db_path: Path, isolated: Path
) -> None:
    log = _watch_log(server, isolated)
    first = run("history", "import", "-", stdin=log)
    assert first.returncode == 0, first.stderr
    assert "imported 1 new observations" in first.stderr
    again = run("history", "import", "-", stdin=log)
    assert "imported 0 new observations" in again.stderr
    exported = list(csv.DictReader(io.StringIO(run("history", "export").stdout)))
    assert [(row["name"], row["host"], row["credits_remaining"]) for row in exported] == [
        ("ci", "imported", "48849")
    ]
    assert exported[0]["time"] == json.loads(log)["time"]
    assert LONG_KEY[:8] not in "".join(str(row) for row in exported)


def test_a_malformed_line_imports_nothing_and_names_the_line(
    server: MockServer, db_path: Path, isolated: Path
) -> None:
    log = _watch_log(server, isolated)
    broken = log + '{"time": "2026-11-30T07:34:00Z", "keys": [{"profile": "ci"}]}\n'
    result = run("history", "import", "-", stdin=broken)
    assert result.returncode == 2
    assert "stdin line 2:" in result.stderr
    assert "Nothing was imported" in result.stderr
    assert not db_path.exists() or History(db_path).count() == 0
    assert run("history", "import", "-", stdin="not json\n").returncode == 2
    first = json.loads(log.splitlines()[0])
    for when in ("2026-02-30T07:34:00Z", "2026-11-30 07:34:00Z", "2026-11-30T07:34:00+01:00",
                 "2026-11-30T07:34:0\u0661Z"):  # fmt: skip
        line = json.dumps({**first, "time": when})
        refused = run("history", "import", "-", stdin=log + line + "\n")
        assert refused.returncode == 2, when
        assert 'stdin line 2: "time"' in refused.stderr
        assert "is not YYYY-MM-DDTHH:MM:SSZ" in refused.stderr


def test_prune_removes_what_is_older_than_keep(db_path: Path) -> None:
    history = History(db_path)
    for days in (500, 100, 1):
        history.record("ci", "h", "k" * 20, seen(NOW.timestamp() - days * DAY, days))
    result = run("history", "prune", "--keep", "90d")
    assert result.returncode == 0
    assert "removed 2 observations" in result.stderr
    assert [o.credits_remaining for _, o in History(db_path).each()] == [1]


def test_recording_prunes_past_400_days(db_path: Path, clock: StoppedClock) -> None:
    recorder = Recorder(db_path, warn=pytest.fail)
    history = recorder.history
    history.record("ci", "h", "k" * 20, seen(NOW.timestamp() - 401 * DAY, 5))
    from structocr_cli.api.model import parse_balance
    from structocr_cli.mock.replies import balance_document

    answer = parse_balance(json.dumps(balance_document()).encode())
    recorder.record("ci", "https://h", "k" * 20, answer)
    assert [o.at for _, o in history.each()] == [int(NOW.timestamp())]
    # a long-running command (the exporter) prunes again each day, not only at its start
    history.record("ci", "h", "k" * 20, seen(NOW.timestamp() - 402 * DAY, 5))
    clock.advance(DAY - 60)
    recorder.record("ci", "https://h", "k" * 20, answer)
    assert len(list(history.each())) == 3  # less than a day since the last prune
    clock.advance(60)
    recorder.record("ci", "https://h", "k" * 20, answer)
    assert len(list(history.each())) == 3  # the old one gone, the new one in
    assert min(o.at for _, o in history.each()) == int(NOW.timestamp())


def test_config_show_names_the_history_file(db_path: Path) -> None:
    result = run("config", "show")
    assert str(db_path) in result.stdout


def test_the_exporter_records_each_fetch(server: MockServer, db_path: Path) -> None:
    from structocr_cli.core import BalanceRequest
    from structocr_cli.exporter.cache import Exporter
    from structocr_cli.settings.resolve import Flags
    from structocr_cli.settings.selection import KeySpec

    recorder = Recorder(db_path, warn=pytest.fail)
    spec = KeySpec("ci", Flags(api_key=LONG_KEY, base_url=server.url))
    exporter = Exporter([spec], BalanceRequest(history=recorder), dict(os.environ),
                        log=lambda *a, **k: None)  # fmt: skip
    exporter.scrape(timeout=10)
    assert [s.name for s in History(db_path).all_series()] == ["ci"]


def test_history_reads_the_file_without_the_network_or_the_chart_library(
    server: MockServer, db_path: Path
) -> None:
    from tests.conftest import imported

    _seed(db_path, server)
    loaded = imported("history", "--json")
    assert "sqlite3" in loaded  # the measurement works
    assert not loaded & {"requests", "urllib3", "rich", "plotext"}
    # nor the strict model, the key resolution and the key hashing, which a read of rows
    # does not need
    assert not loaded & {"decimal", "_strptime", "platformdirs", "hashlib"}
    assert not imported("history", "--json", whole=True) & {
        "structocr_cli.api.model",
        "structocr_cli.settings.resolve",
    }
    assert "plotext" not in imported("balance", "--help")


def test_recording_loads_no_chart_or_table_library(server: MockServer, db_path: Path) -> None:
    from tests.conftest import imported

    loaded = imported("balance", "--json", "--base-url", server.url, "--api-key", LONG_KEY)
    assert "sqlite3" in loaded
    assert not loaded & {"rich", "plotext"}
    assert History(db_path).count() == 1


_WRITER = """
import sys
from structocr_cli.history.store import History, Observation
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
history = History(__import__("pathlib").Path(path))
for n in range(count):
    history.record(name, "h", "key-" + name * 4, Observation(
        1764547200 + 60 * n, 0, 1, 10, n, 10 - n, n, n, "0", 1, n, n, "0", 1))
    print(n, flush=True)
"""


def test_twenty_processes_recording_at_once_lose_nothing(db_path: Path) -> None:
    import subprocess
    import sys

    db_path.parent.mkdir(mode=0o700)
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(db_path), f"w{n}", "25"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for n in range(20)
    ]  # fmt: skip
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 20, errors
    history = History(db_path)
    assert history.count() == 20 * 25
    assert len(history.all_series()) == 20


def test_a_writer_killed_mid_recording_leaves_every_commit_readable(db_path: Path) -> None:
    import signal
    import subprocess
    import sys

    db_path.parent.mkdir(mode=0o700)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(db_path), "k", "100000"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert writer.stdout is not None
    committed = [writer.stdout.readline() for _ in range(50)]
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()
    history = History(db_path)
    assert history.count() >= len(committed)
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    history.record("k", "h", "key-kkkk", seen(NOW.timestamp(), 1))  # and it goes on

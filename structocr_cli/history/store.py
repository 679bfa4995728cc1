"""The local history: one SQLite file of observations, at most one per key per minute.

Standard library only (``sqlite3``). The file is 0600 in a 0700 directory; it holds no key,
only a keyed hash of it (``fingerprint``) whose secret lives in a file of its own beside the
database, so a copy of the database alone cannot be used to test a guessed key. WAL mode and
a busy timeout let many processes record at once; a commit is atomic, so a process killed
while recording leaves every earlier observation readable.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from structocr_cli.history.files import (
    HistoryError,
    failure,
    prepare,
    secret,
    secret_path,
    translated,
)
from structocr_cli.history.schema import SCHEMA_VERSION, migrate

if TYPE_CHECKING:
    from structocr_cli.api.model import Balance

BUSY_TIMEOUT = 2.0
"""Seconds to wait for another process's write before giving up (with a warning)."""


class Observation(NamedTuple):
    """One balance at one time, every figure of ``account`` and ``this_key``."""

    at: int
    """Unix time, whole seconds."""
    period_start: int
    period_end: int
    credits_total: float
    credits_used: float
    credits_remaining: float
    credits_this_period: float
    requests_this_period: float
    error_rate: str
    """Percent, exact as the server sent it ("4.37")."""
    avg_latency_ms: float
    key_credits_used: float
    key_requests: float
    key_error_rate: str
    key_avg_latency_ms: float


class Series(NamedTuple):
    """The observations of one key under one name at one host."""

    id: int
    name: str
    host: str
    fingerprint: str

    @property
    def key_id(self) -> str:
        """A short, stable label for the key (8 hex digits of its keyed hash)."""
        return self.fingerprint[:8]


def observation(balance: Balance, at: float) -> Observation:
    account, key = balance.account, balance.this_key
    return Observation(
        int(at),
        int(balance.period.start.timestamp()),
        int(balance.period.end.timestamp()),
        account.credits_total,
        account.credits_used,
        account.credits_remaining,
        account.credits_this_period,
        account.requests_this_period,
        str(account.error_rate),
        account.avg_latency_ms,
        key.credits_used,
        key.requests,
        str(key.error_rate),
        key.avg_latency_ms,
    )


_COLUMNS = (
    "period_start, period_end, credits_total, credits_used, credits_remaining, "
    "credits_this_period, requests_this_period, error_rate, avg_latency_ms, "
    "key_credits_used, key_requests, key_error_rate, key_avg_latency_ms"
)
_NAMES = [name.strip() for name in _COLUMNS.split(",")]
# A newer observation in the same minute replaces the older one; an older one (a log
# imported late) does not replace a newer one.
# Built from the constant column list above, never from input (values are parameters).
_INSERT = (
    f"INSERT INTO observations (series, minute, second, {_COLUMNS}) "  # noqa: S608
    f"VALUES ({', '.join(['?'] * (len(_NAMES) + 3))}) "
    "ON CONFLICT (series, minute) DO UPDATE SET second = excluded.second, "
    + ", ".join(f"{name} = excluded.{name}" for name in _NAMES)
    + " WHERE excluded.second >= observations.second"
)
_SELECT = f"SELECT minute * 60 + second, {_COLUMNS} FROM observations"  # noqa: S608


def _row(series: int, seen: Observation) -> tuple[object, ...]:
    minute, second = divmod(seen.at, 60)
    return (series, minute, second, *seen[1:])


class History:
    """The database at ``path``, opened on first use. Not shared between threads: give each
    thread its own (``Recorder`` does the locking for a shared one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._secret: bytes | None = None
        self._fingerprints: dict[str, str] = {}
        """Each key's hash, made once: a watch log or an exporter gives the same keys again."""

    # Opening

    def _connect(self, create: bool) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        if not create and not self.path.exists():
            raise FileNotFoundError(self.path)
        try:
            if create:
                prepare(self.path)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise failure(exc, self.path) from None
        try:
            _use_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            newer = migrate(db)
            if newer is not None:
                raise HistoryError(
                    f"{self.path} was written by a newer structocr (schema {newer}; this one "
                    f"knows up to {SCHEMA_VERSION})",
                    "newer",
                )
        except HistoryError:
            db.close()
            raise
        except sqlite3.Error as exc:
            db.close()
            raise failure(exc, self.path) from None
        self._db = db
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def exists(self) -> bool:
        return self.path.exists()

    def fingerprint(self, api_key: str) -> str:
        """The key's keyed hash (HMAC-SHA256 under this database's secret), 32 hex digits."""
        if api_key not in self._fingerprints:
            import hashlib  # here: a read of the history hashes nothing, and these take 4 ms
            import hmac

            if self._secret is None:
                self._secret = secret(secret_path(self.path))
            digest = hmac.new(self._secret, api_key.encode(), hashlib.sha256)
            self._fingerprints[api_key] = digest.hexdigest()[:32]
        return self._fingerprints[api_key]

    # Writing

    def _series_id(self, db: sqlite3.Connection, name: str, host: str, fingerprint: str) -> int:
        db.execute(
            "INSERT OR IGNORE INTO series (name, host, fingerprint) VALUES (?, ?, ?)",
            (name, host, fingerprint),
        )
        row = db.execute(
            "SELECT id FROM series WHERE name = ? AND host = ? AND fingerprint = ?",
            (name, host, fingerprint),
        ).fetchone()
        return int(row[0])

    def series_id_of(self, name: str, host: str, fingerprint: str) -> int | None:
        """The id of an existing series, None if there is none (or no database yet)."""
        try:
            db = self._connect(create=False)
        except FileNotFoundError:
            return None
        with translated(self.path):
            row = db.execute(
                "SELECT id FROM series WHERE name = ? AND host = ? AND fingerprint = ?",
                (name, host, fingerprint),
            ).fetchone()
        return None if row is None else int(row[0])

    def record(self, name: str, host: str, api_key: str, seen: Observation) -> int:
        """Add ``seen``; a newer observation replaces an older one in the same minute. The
        id of its series."""
        fingerprint = self.fingerprint(api_key)
        self.add_all([(name, host, fingerprint, seen)])
        return self.series_id_of(name, host, fingerprint) or 0

    def add_all(self, rows: Iterable[tuple[str, str, str, Observation]]) -> None:
        """Add ``(name, host, fingerprint, observation)`` rows in one transaction: all of them
        or, if iterating ``rows`` raises, none."""
        db = self._connect(create=True)
        ids: dict[tuple[str, str, str], int] = {}
        with translated(self.path), db:
            for name, host, fingerprint, seen in rows:
                found = ids.get((name, host, fingerprint))
                if found is None:
                    found = self._series_id(db, name, host, fingerprint)
                    ids[(name, host, fingerprint)] = found
                db.execute(_INSERT, _row(found, seen))

    def prune(self, before: float, series: int | None = None) -> int:
        """Delete the observations older than ``before`` (Unix time), of one series or of
        all; how many. Series by series, so that each delete is a range of the key."""
        db = self._connect(create=True)
        ids = [series] if series is not None else [s.id for s in self.all_series()]
        gone = 0
        with translated(self.path), db:
            for one in ids:
                cursor = db.execute(
                    "DELETE FROM observations WHERE series = ? AND minute < ?",
                    (one, int(before) // 60),
                )
                gone += cursor.rowcount
            if series is None:
                db.execute("DELETE FROM series WHERE id NOT IN (SELECT series FROM observations)")
        return gone

    # Reading

    def all_series(self) -> list[Series]:
        try:
            db = self._connect(create=False)
        except FileNotFoundError:
            return []
        with translated(self.path):
            rows = db.execute("SELECT id, name, host, fingerprint FROM series ORDER BY name, id")
            return [Series(*row) for row in rows]

    def observations(
        self, series: int, since: float | None = None, until: float | None = None
    ) -> list[Observation]:
        """The series' observations from ``since`` to ``until`` (Unix time), oldest first."""
        db = self._connect(create=False)
        low = -(2**62) if since is None else int(since) // 60
        high = 2**62 if until is None else int(until) // 60
        with translated(self.path):
            rows = db.execute(
                f"{_SELECT} WHERE series = ? AND minute BETWEEN ? AND ? ORDER BY minute",
                (series, low, high),
            )
            return [Observation(*row) for row in rows]

    def last_before(self, series: int, at: float) -> Observation | None:
        """The series' last observation before ``at`` (an index seek, whatever the size)."""
        query = f"{_SELECT} WHERE series = ? AND minute < ? ORDER BY minute DESC"
        return self._one(query, series, at)

    def first_from(self, series: int, at: float) -> Observation | None:
        """The series' first observation at or after ``at``."""
        return self._one(f"{_SELECT} WHERE series = ? AND minute >= ? ORDER BY minute", series, at)

    def _one(self, query: str, series: int, at: float) -> Observation | None:
        db = self._connect(create=False)
        minute = -(-int(at) // 60)  # the minute ``at`` falls in, or the next one if inside it
        with translated(self.path):
            row = db.execute(f"{query} LIMIT 1", (series, minute)).fetchone()
        return None if row is None else Observation(*row)

    def buckets_holding(self, series: int, since: float, until: float, every: int) -> int:
        """How many buckets of ``every`` seconds (whole minutes, aligned to the epoch) from
        ``since`` to ``until`` hold an observation of the series."""
        db = self._connect(create=False)
        with translated(self.path):
            row = db.execute(
                "SELECT count(DISTINCT minute / ?) FROM observations "
                "WHERE series = ? AND minute BETWEEN ? AND ?",
                (every // 60, series, int(since) // 60, int(until) // 60),
            ).fetchone()
        return int(row[0])

    def each(self) -> Iterator[tuple[Series, Observation]]:
        """Every observation with its series, series by series, oldest first."""
        for series in self.all_series():
            for seen in self.observations(series.id):
                yield series, seen

    def count(self) -> int:
        db = self._connect(create=False)
        with translated(self.path):
            return int(db.execute("SELECT count(*) FROM observations").fetchone()[0])


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL (kept in the file: once made, a no-op). Switching needs the
    file's exclusive lock while holding its shared one, so two processes creating the file
    at once can each wait for the other; SQLite then answers "locked" at once without
    waiting out the busy timeout. So retry here, for as long as that timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


__all__ = [
    "SCHEMA_VERSION",
    "History",
    "HistoryError",
    "Observation",
    "Series",
    "observation",
    "secret_path",
]

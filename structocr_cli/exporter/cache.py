"""``structocr exporter``'s core: each selected key's balance, fetched at most once per
``min_interval`` and served from a cache to any number of scrapes. Standard library only;
``serve`` puts it behind HTTP.

- A scrape starts a fetch for each key that is due (never fetched, or last tried
  ``min_interval`` ago) and waits for the fetches in flight, at most ``scrape_timeout``;
  a key whose fetch is still running is served from its cache.
- Scrapes that come together share one fetch per key; fetches for different keys run at
  most ``concurrency`` at once, in daemon threads (a stop never waits for them).
- A key counts as up while its last success is at most ``stale_after`` old; after that its
  figures are left out, as unknown.
- A failing key is one log line when it starts failing or its error changes, then at most
  one every ``LOG_EVERY`` seconds while it goes on; it never affects another key.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from structocr_cli.api import clock
from structocr_cli.api.errors import ExitCode
from structocr_cli.api.keys import mask, redact
from structocr_cli.core import BalanceRequest, Outcome, check_balance

if TYPE_CHECKING:
    from structocr_cli.api.client import BalanceClient
    from structocr_cli.settings.selection import KeySpec

LOG_EVERY = 600.0
"""Seconds between two log lines about a key that keeps failing the same way."""

Log = Callable[..., None]
"""``log(level, message, **fields)``: where the exporter reports; ``serve`` formats it."""


@dataclass
class _Key:
    spec: KeySpec
    good: Outcome | None = None
    """The last balance fetched."""
    good_at: float | None = None
    """When it was fetched (Unix time)."""
    tried: float | None = None
    """When the last fetch started (monotonic)."""
    duration: float | None = None
    """How long the last finished fetch took, in seconds."""
    in_flight: threading.Event | None = None
    errors: Counter[str] = field(default_factory=Counter)
    """Failed fetches by exit-code name (``unauthorized``, ``server_error``...)."""
    failing: str | None = None
    """The last fetch's error, as logged; None while the key is fine."""
    logged_at: float = 0.0
    quiet_repeats: int = 0


@dataclass(frozen=True)
class View:
    """One key as a scrape shows it."""

    name: str
    up: bool
    outcome: Outcome | None
    """The cached balance, while it is fresh enough to serve."""
    fetched_at: float | None
    duration: float | None
    errors: dict[str, int]


class Exporter:
    def __init__(
        self,
        specs: Sequence[KeySpec],
        request: BalanceRequest,
        env: Mapping[str, str],
        *,
        min_interval: float = 60.0,
        stale_after: float | None = None,
        scrape_timeout: float = 8.0,
        concurrency: int = 8,
        client: BalanceClient | None = None,
        log: Log | None = None,
    ) -> None:
        if client is None:
            from structocr_cli.api.client import BalanceClient

            client = BalanceClient(ca_bundle=request.ca_bundle)
        self.request, self.env, self.client = request, env, client
        self.min_interval = min_interval
        self.stale_after = 3 * min_interval if stale_after is None else stale_after
        self.scrape_timeout = scrape_timeout
        self.log: Log = log if log is not None else (lambda level, message, **fields: None)
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._jobs: queue.SimpleQueue[_Key] = queue.SimpleQueue()
        self.worker_restarts = 0
        """Fetch workers that died and were replaced (a bug, or the machine's limits)."""
        self.use(specs)
        for n in range(max(concurrency, 1)):
            self._start_worker(n)

    def _start_worker(self, n: int) -> None:
        name = f"structocr-fetch-{n}"
        threading.Thread(target=self._work, args=(n,), name=name, daemon=True).start()

    @property
    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._keys)

    def use(self, specs: Sequence[KeySpec]) -> None:
        """Serve these keys from now on; a key whose name and source are unchanged keeps its
        cache and counters."""
        with self._lock:
            old = self._keys
            self._keys = {}
            for spec in specs:
                kept = old.get(spec.name)
                self._keys[spec.name] = kept if kept and kept.spec == spec else _Key(spec)

    def scrape(self, timeout: float | None = None) -> list[View]:
        """Every key, after fetching those that are due, waiting for them at most
        ``timeout`` seconds (default: scrape_timeout)."""
        deadline = time.monotonic() + (self.scrape_timeout if timeout is None else timeout)
        for event in self._start_due():
            event.wait(max(deadline - time.monotonic(), 0.0))
        now = clock.timestamp()
        with self._lock:
            return [self._view(key, now) for _, key in sorted(self._keys.items())]

    def _view(self, key: _Key, now: float) -> View:
        fresh = key.good_at is not None and now - key.good_at <= self.stale_after
        return View(key.spec.name, fresh, key.good if fresh else None, key.good_at,
                    key.duration, dict(key.errors))  # fmt: skip

    def _start_due(self) -> list[threading.Event]:
        now = time.monotonic()
        waits = []
        with self._lock:
            for key in self._keys.values():
                if key.in_flight is None and (
                    key.tried is None or now - key.tried >= self.min_interval
                ):
                    key.in_flight, key.tried = threading.Event(), now
                    self._jobs.put(key)
                if key.in_flight is not None:
                    waits.append(key.in_flight)
        return waits

    def _work(self, n: int) -> None:
        try:
            self._serve_jobs()
        except BaseException as exc:  # escaped even the loop's own handling: replace it
            with self._lock:
                self.worker_restarts += 1
            self._say("error", f"a fetch worker failed ({type(exc).__name__}); replaced")
            self._start_worker(n)

    def _serve_jobs(self) -> None:
        while True:
            key = self._jobs.get()
            try:
                self._fetch(key)
            except BaseException as exc:  # a bug: logged, and the worker goes on
                self._release(key)
                self._say("error", f"internal error while fetching: {type(exc).__name__}",
                          profile=key.spec.name)  # fmt: skip

    def _release(self, key: _Key) -> None:
        with self._lock:
            event, key.in_flight = key.in_flight, None
        if event is not None:
            event.set()

    def _say(self, level: str, message: str, **fields: str) -> None:
        """Log, and never let the log (a closed stderr) stop a worker."""
        with contextlib.suppress(Exception):  # nowhere left to say it
            self.log(level, message, **fields)

    def _fetch(self, key: _Key) -> None:
        started = time.monotonic()
        request = self.request._replace(flags=key.spec.flags, started=started,
                          series_name=key.spec.name)  # fmt: skip
        outcome = check_balance(request, self.env, self.client)
        # Redacting reads every key's runs: done before taking the lock every scrape needs.
        error = None if outcome.error is None else redact(outcome.error.one_line())
        with self._lock:
            key.duration = time.monotonic() - started
            if outcome.balance is not None:
                key.good, key.good_at = outcome, clock.timestamp()
            else:
                key.errors[_code_name(outcome)] += 1
            event, key.in_flight = key.in_flight, None
            line = self._log_line(key, error, started)
        if line is not None:
            level, message = line
            masked = mask(outcome.settings.api_key.value) if outcome.settings else "-"
            self._say(level, message, profile=key.spec.name, key=masked)
        if event is not None:
            event.set()

    @staticmethod
    def _log_line(key: _Key, error: str | None, now: float) -> tuple[str, str] | None:
        """What to log about a fetch that ended in ``error`` (None: it succeeded), if
        anything; called with the lock held, so it only compares and counts."""
        if error is None:
            if key.failing is None:
                return None
            key.failing, key.quiet_repeats = None, 0
            return "info", "the balance is fetched again"
        if error == key.failing and now - key.logged_at < LOG_EVERY:
            key.quiet_repeats += 1
            return None
        repeats = key.quiet_repeats
        key.failing, key.logged_at, key.quiet_repeats = error, now, 0
        more = f" ({repeats} more failures like it not logged)" if repeats else ""
        return "error", error + more


def _code_name(outcome: Outcome) -> str:
    code = outcome.error.exit_code if outcome.error else ExitCode.INTERNAL
    return ExitCode(code).name.lower()


# The exposition: the same families as ``balance -o openmetrics``, plus the exporter's own.

_OWN_HELP = {
    "up": "1 if the key's balance was fetched and understood recently enough to serve.",
    "scrape_duration_seconds": "How long the last fetch of the key's balance took.",
    "last_success_timestamp_seconds": "When the key's balance was last fetched, Unix time.",
    "fetch_errors": "Fetches of the key's balance that failed, by exit-code name.",
    "exporter_worker_restarts": "Fetch workers that died and were replaced.",
}


def exposition(views: Sequence[View], openmetrics: bool, restarts: int = 0) -> str:
    """The metrics text for a scrape: OpenMetrics (ending in ``# EOF``) or the classic
    Prometheus text format. Cached figures carry the time they were fetched."""
    from structocr_cli.report.machine import EOF, balance_families, family

    def label(view: View, **more: str) -> tuple[tuple[str, str], ...]:
        return (("profile", view.name), *more.items())

    parts = [family("up", _OWN_HELP["up"], [(label(v), int(v.up), None) for v in views],
                    openmetrics=openmetrics)]  # fmt: skip
    stamped = [
        (v.name, v.outcome.balance, v.outcome.derived, v.fetched_at)
        if v.outcome is not None else (v.name, None, None, None)
        for v in views
    ]  # fmt: skip
    parts += balance_families(stamped, openmetrics)
    durations = [(label(v), round(v.duration, 6), None) for v in views if v.duration is not None]
    successes = [(label(v), round(v.fetched_at, 3), None) for v in views
                 if v.fetched_at is not None]  # fmt: skip
    errors = [(label(v, code=code), count, None) for v in views
              for code, count in sorted(v.errors.items())]  # fmt: skip
    for name, samples, kind in (("scrape_duration_seconds", durations, "gauge"),
                                ("last_success_timestamp_seconds", successes, "gauge"),
                                ("fetch_errors", errors, "counter")):  # fmt: skip
        if samples:
            parts.append(family(name, _OWN_HELP[name], samples, kind, openmetrics))
    name = "exporter_worker_restarts"
    parts.append(family(name, _OWN_HELP[name], [((), restarts, None)], "counter", openmetrics))
    return "".join(parts) + (EOF if openmetrics else "")

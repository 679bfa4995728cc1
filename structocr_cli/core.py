"""The balance use cases as functions of plain inputs that return data.

Nothing here prints or exits: ``check_balance`` returns an ``Outcome`` (the settings used,
the balance or the typed error, derived figures, gate checks) that a caller renders, once
per key and per refresh if it likes. A ``BalanceClient`` may be shared between threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from structocr_cli.api import clock
from structocr_cli.api.deadline import run_within
from structocr_cli.api.errors import (
    HINT_RETRY_LATER,
    DeadlineError,
    ExitCode,
    HTTPStatusError,
    NoApiKeyError,
    StructocrError,
)
from structocr_cli.settings.resolve import Flags, Settings, resolve

if TYPE_CHECKING:
    from decimal import Decimal

    from structocr_cli.api.client import BalanceClient
    from structocr_cli.api.model import Balance
    from structocr_cli.derive import Derived
    from structocr_cli.gates import Check
    from structocr_cli.history.recorder import Recorder
    from structocr_cli.settings.selection import KeySpec


class BalanceRequest(NamedTuple):
    """What to check: where the key comes from, how long to wait, which gates apply."""

    flags: Flags = Flags()
    timeout: float = 30.0
    thresholds: Mapping[str, Decimal] = MappingProxyType({})
    """Gate thresholds by option name (see ``gates.GATES``)."""
    derive: bool = True
    """Whether derived figures are wanted (gates get them whatever this says)."""
    ca_bundle: str | None = None
    """CA certificates (PEM) to verify the API's TLS certificate with (--ca-bundle)."""
    started: float | None = None
    """When the command started (``time.monotonic()``): the deadline is ``timeout`` after
    it, reading a key from stdin included. None: now."""
    missing_hint: str | None = None
    refused_hint: str | None = None
    """What to do when no key is found, or the API refuses it, in a command whose options
    differ from balance's (the exporter takes no --api-key-file): None, balance's advice."""
    history: Recorder | None = None
    """Where each fetched balance is recorded, and its trend read from; None: nowhere."""
    series_name: str | None = None
    """The name the key's balances are recorded under (a keys file's or profile's); None:
    the profile in use, or "default"."""
    runway_basis: str = "period"
    """What --min-runway-days compares: the period's average ("period") or the trend of
    the recorded history ("trend", which fails closed with too little history)."""


class Outcome(NamedTuple):
    """What checking one key's balance came to."""

    settings: Settings | None = None
    """None when the settings themselves could not be resolved."""
    balance: Balance | None = None
    derived: Derived | None = None
    checks: tuple[Check, ...] = ()
    error: StructocrError | None = None

    @property
    def breached(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.breached)

    @property
    def exit_code(self) -> ExitCode:
        """The error's code; else 1 if a gate is breached; else 0."""
        if self.error is not None:
            return self.error.exit_code
        return ExitCode.GATE_BREACHED if self.breached else ExitCode.OK

    @property
    def notes(self) -> tuple[str, ...]:
        """What the user should know about how the balance was had."""
        moved = None if self.balance is None else self.balance.moved_to
        if moved is None:
            return ()
        return (
            f"the API answered from {moved} after a redirect; set --base-url {moved} "
            "(or STRUCTOCR_BASE_URL) to go there directly",
        )

    @property
    def profile_label(self) -> str | None:
        return None if self.settings is None else self.settings.profile_label

    # For writers, which are called only with a fetched balance: a missing part is a bug.
    def resolved(self) -> Settings:
        if self.settings is None:
            raise ValueError("this outcome has no settings")
        return self.settings

    def fetched(self) -> Balance:
        if self.balance is None:
            raise ValueError("this outcome has no balance")
        return self.balance

    def figures(self) -> tuple[Balance, Derived]:
        if self.derived is None:
            raise ValueError("this outcome has no derived figures")
        return self.fetched(), self.derived


def check_balance(
    request: BalanceRequest,
    env: Mapping[str, str],
    client: BalanceClient | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Resolve the settings, fetch the balance, derive figures and check the gates.

    Errors the user can act on come back in ``Outcome.error``; anything else is a bug and
    is raised.
    """
    deadline = (request.started or time.monotonic()) + request.timeout
    if client is None and request.ca_bundle is not None:
        from structocr_cli.api.client import BalanceClient

        client = BalanceClient(ca_bundle=request.ca_bundle)
    try:
        settings = resolve(request.flags, env, deadline)
    except StructocrError as exc:
        return Outcome(error=_advised(exc, request))
    try:
        balance = fetch_balance(settings, request.timeout, client, deadline)
    except StructocrError as exc:
        return Outcome(settings=settings, error=_advised(exc, request))
    name = request.series_name or settings.profile_label or "default"
    key, url = settings.api_key.value, settings.base_url.value
    if request.history is not None:
        request.history.record(name, url, key, balance)
    if not (request.derive or request.thresholds):
        return Outcome(settings=settings, balance=balance)
    from structocr_cli.derive import derive

    when = now or clock.now()
    trend = None if request.history is None else request.history.trend(name, url, key, when)
    derived = derive(balance, when, trend)
    checks: tuple[Check, ...] = ()
    if request.thresholds:
        from structocr_cli.gates import TREND_BASIS, evaluate

        trend_gate = "--min-runway-days" in request.thresholds
        if request.runway_basis == TREND_BASIS and trend_gate and trend is None:
            return Outcome(settings, balance, derived, error=_no_trend(request))
        checks = evaluate(request.thresholds, balance, derived, request.runway_basis)
    return Outcome(settings, balance, derived, checks)


def _no_trend(request: BalanceRequest) -> StructocrError:
    from structocr_cli.api.errors import NoTrendError

    why = (
        "history is off (--no-history or STRUCTOCR_HISTORY=off)"
        if request.history is None
        else "the history of this key spans less than 24 hours"
    )
    return NoTrendError(
        f"--runway-basis trend: no trend to check --min-runway-days against: {why}",
        "Let structocr record for a day (each balance run adds to the history), or use "
        "--runway-basis period",
    )


def _advised(error: StructocrError, request: BalanceRequest) -> StructocrError:
    """The error with the advice that fits where the key came from and this command."""
    if isinstance(error, NoApiKeyError) and request.missing_hint:
        return NoApiKeyError(error.message, request.missing_hint)
    refused = request.flags.refused_hint or request.refused_hint
    if isinstance(error, HTTPStatusError) and error.status == 401 and refused:
        return error.with_hint(refused)
    return error


def check_many(
    specs: Sequence[KeySpec],
    request: BalanceRequest,
    env: Mapping[str, str],
    concurrency: int = 8,
    client: BalanceClient | None = None,
) -> list[tuple[KeySpec, Outcome]]:
    """``check_balance`` for each key, at most ``concurrency`` at once, sharing one client
    (its connections) and one deadline; the outcomes in the order of ``specs``.

    The workers are daemon threads, so Ctrl-C or a stopping server is never held up by a
    fetch still in flight (each one ends by the deadline anyway).
    """
    import queue
    import threading

    if client is None:
        from structocr_cli.api.client import BalanceClient

        client = BalanceClient(ca_bundle=request.ca_bundle)
    shared = request._replace(started=request.started or time.monotonic())
    jobs: queue.SimpleQueue[tuple[int, KeySpec]] = queue.SimpleQueue()
    for job in enumerate(specs):
        jobs.put(job)
    outcomes: list[Outcome | None] = [None] * len(specs)
    failures: list[BaseException] = []

    def work() -> None:
        while not failures:
            try:
                index, spec = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                each = shared._replace(flags=spec.flags, series_name=spec.name)
                outcomes[index] = check_balance(each, env, client)
            except BaseException as exc:  # a bug: re-raised in the caller's thread
                failures.append(exc)

    workers = [
        threading.Thread(target=work, name=f"structocr-key-{n}", daemon=True)
        for n in range(min(max(concurrency, 1), len(specs)))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    pairs = zip(specs, outcomes, strict=True)
    return [(spec, outcome) for spec, outcome in pairs if outcome is not None]


def combined_exit_code(outcomes: Iterable[Outcome]) -> ExitCode:
    """A run over several keys: the largest error code if any key could not be checked; else
    1 if any gate is breached; else 0. A gate cannot pass while a balance is unknown."""
    codes = [outcome.exit_code for outcome in outcomes]
    errors = [code for code in codes if code not in (ExitCode.OK, ExitCode.GATE_BREACHED)]
    if errors:
        return max(errors)
    return ExitCode.GATE_BREACHED if ExitCode.GATE_BREACHED in codes else ExitCode.OK


def fetch_balance(
    settings: Settings,
    timeout: float,
    client: BalanceClient | None = None,
    deadline: float | None = None,
) -> Balance:
    """The balance for the resolved key; errors about the key name it (masked)."""
    key, url = settings.api_key.value, settings.base_url.value
    try:
        return verify_key(key, url, timeout, client, deadline)
    except HTTPStatusError as exc:
        if exc.status in (401, 403, 404):
            raise exc.about_key(settings.key_description) from None
        raise


# The client checks its deadline between reads; this outer bound also covers what it cannot
# interrupt (a DNS lookup, headers dripped a byte at a time) by leaving the work behind. Small
# enough that a whole command ends within --timeout + 0.5 s of its start.
_GRACE = 0.2


def verify_key(
    api_key: str,
    base_url: str,
    timeout: float,
    client: BalanceClient | None = None,
    deadline: float | None = None,
) -> Balance:
    """The balance ``api_key`` reads at ``base_url``, or the typed error, by ``deadline``
    (``time.monotonic()``; default: ``timeout`` from now)."""
    if deadline is None:
        deadline = time.monotonic() + timeout
    if client is None:
        from structocr_cli.api.client import BalanceClient

        client = BalanceClient()
    fetch = client.fetch
    last = deadline

    def expired() -> DeadlineError:
        return DeadlineError(
            f"no complete answer within the {timeout:g} s deadline", HINT_RETRY_LATER
        )

    def work() -> Balance:
        return fetch(base_url, api_key, timeout, deadline=last)

    bound = max(deadline - time.monotonic(), 0.0) + _GRACE
    return run_within(bound, work, expired, "structocr-fetch")

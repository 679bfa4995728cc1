"""Run a call with a bound on how long the caller waits for it. Standard library only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_within(
    seconds: float, call: Callable[[], T], expired: Callable[[], Exception], name: str
) -> T:
    """``call()``'s result, or its exception re-raised here; ``expired()`` raised if it has
    not finished after ``seconds``.

    The call runs in a daemon thread, so the caller is freed even from what no timeout can
    interrupt (a DNS lookup, a keyring waiting for a password prompt); a call still running
    then is left behind and ends with the process.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if failure:
        raise failure[0]
    if not outcome:
        raise expired()
    return outcome[0]

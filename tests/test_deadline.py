"""The one helper that bounds how long a caller waits: fetches and keyring calls use it."""

from __future__ import annotations

import threading
import time

import pytest

from structocr_cli.api.deadline import run_within


class Expired(Exception):
    pass


def test_returns_the_calls_result() -> None:
    assert run_within(5, lambda: 42, Expired, "t") == 42


def test_reraises_the_calls_exception_in_the_caller() -> None:
    def fail() -> int:
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        run_within(5, fail, Expired, "t")


@pytest.mark.timing
def test_gives_up_after_the_bound_and_leaves_the_call_behind() -> None:
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(Expired):
        run_within(0.2, release.wait, Expired, "t")
    assert time.monotonic() - started < 5  # a hang guard: the wait itself never returns
    release.set()

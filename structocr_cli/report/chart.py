"""The history chart: credits remaining over time, and the credits used in each bucket,
drawn by plotext. The only module that imports it, and only when a terminal shows history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from structocr_cli.history.query import Bucket

HEIGHT = 24
"""Rows for both plots together."""


def _label(start: int, every: int) -> str:
    moment = datetime.fromtimestamp(start, timezone.utc)
    return f"{moment:%m-%d}" if every >= 86400 else f"{moment:%m-%d %H:%M}"


def chart(buckets: Sequence[Bucket], every: int, width: int) -> str:
    """Two plots, one above the other, ``width`` columns wide, without colour."""
    import plotext as plt  # type: ignore[import-untyped]

    xs = list(range(len(buckets)))
    step = max(len(buckets) // max(width // 14, 1), 1)
    ticks = xs[::step]
    labels = [_label(buckets[x].start, every) for x in ticks]
    _reset(plt)
    plt.subplots(2, 1)
    plt.plotsize(max(width, 30), HEIGHT)
    plt.theme("clear")
    plt.subplot(1, 1)
    plt.plot(xs, [b.remaining for b in buckets], marker="braille")
    plt.title("credits remaining")
    plt.xticks(ticks, labels)
    plt.subplot(2, 1)
    used = [b.used for b in buckets]
    plt.bar(xs, used, marker="sd", width=0.6)
    plt.ylim(0, max([*used, 1]))  # from 0 up, even when nothing was used (not -1 to 1)
    plt.title("credits used per bucket")
    plt.xticks(ticks, labels)
    text: str = plt.uncolorize(plt.build())
    _reset(plt)
    return text.rstrip()


def _reset(plt: Any) -> None:
    """A blank figure: plotext keeps one in the module, and clearing the active subplot
    alone would keep the last chart's size for the next."""
    plt.main()
    plt.clear_figure()

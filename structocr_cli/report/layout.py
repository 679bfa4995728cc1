"""Plain-text tables that fit the terminal: which columns fit, rows aligned, long text
wrapped under its column, many names counted rather than listed, and numbers for people.
Standard library only; used by the reports, the many-key table, the ``--watch`` screen and
``history``."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

GAP = 2


def number(value: int | float) -> str:
    """For people: thousands separators, decimals only when the value has them."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def width() -> int:
    """The terminal's width (COLUMNS first), 80 when there is none (a pipe)."""
    import shutil

    return max(shutil.get_terminal_size((80, 24)).columns, 20)


def columns(
    headings: Sequence[str], rows: Sequence[Sequence[str]], room: int, drop: Sequence[int]
) -> tuple[list[int], list[int]]:
    """The columns to show, and the width of each, so that a full row fits ``room``: the
    columns of ``drop`` are left out first, in that order, as long as the row is too wide.
    Rows shorter than the headings (a key that failed) do not count."""
    full = [row for row in rows if len(row) == len(headings)]

    def widths(shown: Sequence[int]) -> list[int]:
        return [max(len(headings[c]), *(len(row[c]) for row in full)) for c in shown]

    shown = list(range(len(headings)))
    for column in drop:
        if sum(widths(shown)) + GAP * (len(shown) - 1) <= room:
            break
        shown.remove(column)
    return shown, widths(shown)


def aligned(cells: Sequence[str], widths: Sequence[int], left: int = 2) -> str:
    """A row: the first ``left`` cells to the left of their column, the others right."""
    padded = [cell.ljust(w) if column < left else cell.rjust(w)
              for column, (cell, w) in enumerate(zip(cells, widths, strict=False))]  # fmt: skip
    return (" " * GAP).join(padded)


def wrapped(text: str, room: int, first: str = "", indent: int | None = None) -> list[str]:
    """``first`` then ``text``, wrapped to ``room`` columns, later lines indented under the
    start of ``text`` (or by 4 when that leaves too little room); a word longer than a
    line is cut, since no line may be wider than the terminal."""
    hang = len(first) if indent is None else indent
    if room - hang < 24:
        hang = 4
    wrapper = textwrap.TextWrapper(
        width=max(room, hang + 10), initial_indent=first, subsequent_indent=" " * hang,
        break_on_hyphens=False,
    )  # fmt: skip
    return wrapper.wrap(text) or [first.rstrip()]


def named(names: Sequence[str], most: int = 3) -> str:
    """``a, b and c``; more than ``most`` names are counted: ``a, b and 18 more keys``."""
    if len(names) <= most:
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    shown = names[: most - 1]
    return f"{', '.join(shown)} and {len(names) - len(shown)} more keys"

"""Machine-readable outputs: tsv, env, openmetrics and single fields, as text. Standard
library only; ``formats`` says which is used when."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Sequence
from decimal import Decimal

from structocr_cli.api.errors import UsageError
from structocr_cli.api.keys import shown
from structocr_cli.api.model import Balance, Number
from structocr_cli.derive import Derived
from structocr_cli.report.fields import BY_PATH, FIELDS, rows, text


def check_fields(paths: Sequence[str]) -> None:
    unknown = [path for path in paths if path not in BY_PATH]
    if not unknown:
        return
    wrong = unknown[0]
    # A field's own name without its section is shown as typed, with the paths it means.
    meant = [f.path for f in FIELDS if f.path.rpartition(".")[2] == wrong]
    if meant:
        raise UsageError(
            f"unknown field {wrong!r}: a path names its section too",
            f"Did you mean {' or '.join(meant)}?",
        )
    raise UsageError(
        f"unknown field {shown(wrong)!r}; valid fields: " + ", ".join(f.path for f in FIELDS),
        "See the README for what each field means",
    )


def field_lines(paths: Sequence[str], balance: Balance, derived: Derived) -> str:
    """Just the values, one per line, in the order asked."""
    out = []
    for path in paths:
        field = BY_PATH[path]
        out.append(text(field.get(balance, derived), field.derived))
    return "".join(f"{value}\n" for value in out)


def tsv(balance: Balance, derived: Derived) -> str:
    return "".join(f"{path}\t{value}\n" for path, value in rows(balance, derived))


def env_name(path: str) -> str:
    return "STRUCTOCR_" + re.sub(r"[^A-Za-z0-9]", "_", path).upper()


def env(balance: Balance, derived: Derived) -> str:
    """``NAME=value`` lines for ``eval`` and ``$GITHUB_OUTPUT``; quoted only where needed."""
    lines = []
    for path, value in rows(balance, derived):
        lines.append(f"{env_name(path)}={shlex.quote(value) if value else ''}\n")
    return "".join(lines)


# Several keys: the same values, each line led by the key's name (tsv, --field) or each
# variable named after it (env). Keys whose balance was not had have no lines here.
Named = tuple[str, Balance, Derived]


def tsv_many(entries: Sequence[Named]) -> str:
    """``NAME<TAB>PATH<TAB>VALUE`` lines."""
    return "".join(
        f"{name}\t{path}\t{value}\n"
        for name, balance, derived in entries
        for path, value in rows(balance, derived)
    )


def field_rows(paths: Sequence[str], entries: Sequence[Named]) -> str:
    """A line per key: its name, then the values asked for, tab-separated."""
    lines = []
    for name, balance, derived in entries:
        values = [text(BY_PATH[p].get(balance, derived), BY_PATH[p].derived) for p in paths]
        lines.append("\t".join([name, *values]) + "\n")
    return "".join(lines)


def env_prefix(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def check_env_names(names: Sequence[str]) -> None:
    """Two names that give the same variables (``a-b`` and ``A_B``) would overwrite each
    other's values: refused before anything is fetched."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(env_prefix(name), name)
        if other != name:
            raise UsageError(
                f"-o env: the keys {other!r} and {name!r} would both be named "
                f"STRUCTOCR_{env_prefix(name)}_*",
                "Rename one of them, or use -o tsv or --json",
            )


def env_many(entries: Sequence[Named]) -> str:
    """``STRUCTOCR_<NAME>_<PATH>=value`` lines (the name upper-cased, other characters _)."""
    lines = []
    for name, balance, derived in entries:
        prefix = f"STRUCTOCR_{env_prefix(name)}_"
        for path, value in rows(balance, derived):
            variable = prefix + env_name(path).removeprefix("STRUCTOCR_")
            lines.append(f"{variable}={shlex.quote(value) if value else ''}\n")
    return "".join(lines)


# Prometheus conventions: base units (seconds, ratios), a unit suffix, one gauge per figure.
Metric = tuple[str, str, Callable[[Balance, Derived], Number | Decimal | None]]
_MS = Decimal(1000)
METRICS: tuple[Metric, ...] = (
    # account.credits_total; a gauge must not end in _total (Prometheus keeps it for counters).
    ("account_credits_granted", "Credits bought and awarded to the account, all-time.",
     lambda b, _: b.account.credits_total),
    ("account_credits_used", "Credits used by all keys of the account, all-time.",
     lambda b, _: b.account.credits_used),
    ("account_credits_remaining", "Credits available to the account.",
     lambda b, _: b.account.credits_remaining),
    ("account_period_credits_used", "Credits used by all keys this billing period.",
     lambda b, _: b.account.credits_this_period),
    ("account_period_requests", "Requests by all keys this billing period.",
     lambda b, _: b.account.requests_this_period),
    ("account_error_ratio", "Share of the account's requests that failed this period (0-1).",
     lambda _, d: d.account_error_rate_pct / 100),
    ("account_avg_latency_seconds", "Average response time of the account this period.",
     lambda b, _: Decimal(repr(b.account.avg_latency_ms)) / _MS),
    ("key_credits_used", "Credits used by this key this billing period.",
     lambda b, _: b.this_key.credits_used),
    ("key_requests", "Requests by this key this billing period.",
     lambda b, _: b.this_key.requests),
    ("key_error_ratio", "Share of this key's requests that failed this period (0-1).",
     lambda _, d: d.key_error_rate_pct / 100),
    ("key_avg_latency_seconds", "Average response time of this key this period.",
     lambda b, _: Decimal(repr(b.this_key.avg_latency_ms)) / _MS),
    ("period_start_timestamp_seconds", "Start of the billing period, Unix time.",
     lambda b, _: b.period.start.timestamp()),
    ("period_end_timestamp_seconds", "End of the billing period, Unix time.",
     lambda b, _: b.period.end.timestamp()),
    ("forecast_period_credits", "Credits this period, projected linearly to its end.",
     lambda _, d: d.period_credits),
    ("forecast_daily_burn_credits", "Credits used per day so far this period.",
     lambda _, d: d.daily_burn),
    ("forecast_runway_seconds", "Time until credits run out at the current burn rate.",
     lambda _, d: None if d.runway_days is None else d.runway_days * 86400),
    ("forecast_runway_trend_seconds",
     "Time until credits run out at the recorded history's trend (last 7 days).",
     lambda _, d: None if d.trend is None or d.trend.runway_days is None
     else d.trend.runway_days * 86400),
)  # fmt: skip
_UP_HELP = "1 if the balance was fetched and understood, 0 if not."

Labels = tuple[tuple[str, str], ...]
Sample = tuple[Labels, "Number | Decimal", "float | None"]
"""A series' labels, its value and when it was had (Unix time; None: now)."""


def label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_text(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{label_value(value)}"' for name, value in labels) + "}"


def _sample(value: Number | Decimal) -> str:
    if isinstance(value, Decimal):
        return str(value.normalize()) if value != value.to_integral_value() else str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def family(
    name: str,
    help_text: str,
    samples: Sequence[Sample],
    kind: str = "gauge",
    openmetrics: bool = True,
) -> str:
    """One metric family: its HELP and TYPE once, then its samples. A counter's samples end
    in ``_total``; OpenMetrics names the family without it, the classic format with it.
    Timestamps are seconds in OpenMetrics, milliseconds in the classic format."""
    full = f"structocr_{name}"
    sample_name = f"{full}_total" if kind == "counter" else full
    meta = full if openmetrics else sample_name
    lines = [f"# HELP {meta} {help_text}", f"# TYPE {meta} {kind}"]
    for labels, value, at in samples:
        stamp = ""
        if at is not None:
            stamp = f" {at:.3f}" if openmetrics else f" {int(at * 1000)}"
        lines.append(f"{sample_name}{_label_text(labels)} {_sample(value)}{stamp}")
    return "\n".join(lines) + "\n"


# OpenMetrics parsers require the final "# EOF"; the classic text parser and node_exporter's
# textfile collector read it as a comment, so one output satisfies all of them.
EOF = "# EOF\n"

Entry = tuple["str | None", "Balance | None", "Derived | None"]
"""A key's label (None: no label), and its balance and figures (None: not had)."""
Stamped = tuple["str | None", "Balance | None", "Derived | None", "float | None"]
"""An entry and when its balance was had (None: now)."""


def _labels(profile: str | None) -> Labels:
    return () if profile is None else (("profile", profile),)


def _first_of_each_account(entries: Sequence[Stamped]) -> set[int]:
    """The entries that stand for their account: the first of those whose account sections
    are the same (keys of one account report the same account figures)."""
    from structocr_cli.api.model import account_groups

    return {group[0] for group in account_groups([balance for _, balance, _, _ in entries])}


def balance_families(entries: Sequence[Stamped], openmetrics: bool = True) -> list[str]:
    """Each figure's family, with a series per key whose balance was had; a figure of the
    account (anything but ``key_*``) once per account, labelled by its first key."""
    firsts = _first_of_each_account(entries)
    parts = []
    for name, help_text, read in METRICS:
        per_key = name.startswith("key_")
        samples: list[Sample] = []
        for index, (label, balance, derived, at) in enumerate(entries):
            if balance is None or derived is None or not (per_key or index in firsts):
                continue
            value = read(balance, derived)
            # An absent series says "unknown" better than a made-up number; a runway of 1e306
            # days is finite, but not once it is converted to seconds.
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                continue
            samples.append((_labels(label), value, at))
        if samples:
            parts.append(family(name, help_text, samples, openmetrics=openmetrics))
    return parts


def openmetrics_many(entries: Sequence[Entry]) -> str:
    """The OpenMetrics text format (which the classic Prometheus parser reads too) for one
    key or several: structocr_up for each, then each figure's family."""
    up: list[Sample] = [(_labels(label), 0 if b is None else 1, None) for label, b, _ in entries]
    stamped = [(label, balance, derived, None) for label, balance, derived in entries]
    return "".join([family("up", _UP_HELP, up), *balance_families(stamped)]) + EOF


def openmetrics(balance: Balance, derived: Derived, profile: str | None) -> str:
    """One key's balance, for node_exporter's textfile collector and scrapes."""
    return openmetrics_many([(profile, balance, derived)])


def openmetrics_down(profile: str | None) -> str:
    """What a scrape shows when the balance could not be had: ``structocr_up 0``."""
    return openmetrics_many([(profile, None, None)])

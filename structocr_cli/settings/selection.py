"""Which keys a run checks when it checks several: profiles named on the command line, every
profile of the config file, and ``name=key`` lines of a keys file. Standard library only.

Each selected key becomes a ``KeySpec``: a name (its label in every output) and the
``Flags`` that ``core.check_balance`` resolves it with, so each key keeps the single-key
rules (precedence, checks, masking).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from structocr_cli.api.errors import UsageError
from structocr_cli.api.keys import sanitize
from structocr_cli.settings.config import PROFILE_NAME_RULE, Config, valid_profile_name
from structocr_cli.settings.resolve import Flags

HINT_KEYS_FILE = "Write one name=key per line; blank lines and lines starting with # are ignored"


@dataclass(frozen=True)
class KeySpec:
    name: str
    """The profile's name, or the name given to the key in the keys file."""
    flags: Flags


class NoKeysError(UsageError):
    """A selection of keys that holds none: a gate over no key would pass, so it is refused."""

    code = "no_keys_selected"


def parse_keys_file(text: str, where: str) -> list[tuple[str, str]]:
    """``name=key`` lines as (name, key) pairs. An error names the line; it never shows the
    key, nor a line that may hold one. A name given twice is an error naming both lines: one
    of the two keys would go unchecked."""
    pairs = []
    lines: dict[str, int] = {}
    text = text.removeprefix("\ufeff")  # a byte-order mark some Windows editors write
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, key = line.partition("=")
        name, key = name.strip(), key.strip()
        if not sep or not name or not key:
            raise UsageError(f"{where}, line {number}: not a name=key line", HINT_KEYS_FILE)
        if not valid_profile_name(name):
            raise UsageError(
                f"{where}, line {number}: the name {sanitize(name, 40)!r} is not valid",
                PROFILE_NAME_RULE,
            )
        if name in lines:
            raise UsageError(
                f"{where}, lines {lines[name]} and {number}: the name {name!r} is given twice",
                "Give each key a name of its own",
            )
        lines[name] = number
        pairs.append((name, key))
    return pairs


def from_keys_file(text: str, where: str, base_url: str | None = None) -> list[KeySpec]:
    return [
        KeySpec(
            name,
            Flags(
                api_key=key,
                base_url=base_url,
                api_key_from=f"{where} ({name})",
                refused_hint=f"Check the key named {name} in {where}",
            ),
        )
        for name, key in parse_keys_file(text, where)
    ]


def from_profiles(names: Iterable[str], base_url: str | None = None) -> list[KeySpec]:
    return [KeySpec(name, Flags(profile=name, base_url=base_url)) for name in names]


def all_profiles(config: Config, base_url: str | None = None) -> list[KeySpec]:
    if not config.profiles:
        raise UsageError(
            f"--all-profiles: there are no profiles in {config.path}",
            "Save keys with: structocr config set-key -p NAME",
        )
    return from_profiles(sorted(config.profiles), base_url)


def combined(*selections: Sequence[KeySpec]) -> list[KeySpec]:
    """The selections in order, each name once (``-p a --all-profiles`` names profile a
    twice); one name for two different keys is an error, since one would go unchecked."""
    seen: dict[str, KeySpec] = {}
    for selection in selections:
        for spec in selection:
            if seen.setdefault(spec.name, spec) != spec:
                raise UsageError(
                    f'the name "{spec.name}" stands for two different keys (a profile and a '
                    "--keys-file line)",
                    "Rename one of them in the keys file",
                )
    return list(seen.values())


def read_keys_path(path: str, deadline: float | None) -> str:
    """A keys file's text (``-``: stdin), read with the same bounds as a key file."""
    from structocr_cli.settings.reads import ReadError, read_path, read_stdin

    cap = 1024 * 1024  # a line per key: room for thousands
    if path == "-":
        return read_stdin(cap, deadline, "the keys file")
    try:
        return read_path(Path(path).expanduser(), cap, deadline, False).decode()
    except (OSError, ReadError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            reason = "it is not UTF-8 text"
        else:
            reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read --keys-file {sanitize(path, 120)}: {reason}") from None

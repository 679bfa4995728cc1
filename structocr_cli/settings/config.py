"""The config file: where it lives, what it holds, and whether it is safe to trust.

Reading only (writes are in ``config_store``). platformdirs and the TOML reader are imported
only when a file must be located or read, so commands that never need it do not pay for them.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from structocr_cli.api.errors import ConfigError, UsageError
from structocr_cli.api.keys import sanitize, shown

ENV_CONFIG = "STRUCTOCR_CONFIG"
ENV_STRICT = "STRUCTOCR_STRICT_PERMISSIONS"
ENV_HISTORY = "STRUCTOCR_HISTORY"
ENV_HISTORY_KEEP = "STRUCTOCR_HISTORY_KEEP"
DEFAULT_KEEP_DAYS = 400
"""Recording deletes a series' observations older than this, unless STRUCTOCR_HISTORY_KEEP
says otherwise."""
KEYRING = "keyring"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Profile(NamedTuple):
    name: str
    api_key: str | None = None
    base_url: str | None = None
    key_store: str | None = None
    """"keyring" when the key lives in the OS keyring instead of this file."""


class Config(NamedTuple):
    path: Path
    exists: bool
    default_profile: str | None = None
    profiles: Mapping[str, Profile] = MappingProxyType({})
    loose_permissions: bool = False
    """Group or others may read the file (it may hold keys)."""
    warnings: tuple[str, ...] = ()
    """What in the file is ignored, said so that a typo does not pass unnoticed."""

    def permission_advice(self) -> str:
        return f"{self.path} is readable by other users; fix it with: chmod 600 {self.path}"


PROFILE_NAME_RULE = "Use 1 to 64 characters of letters, digits, '_', '.' and '-'"


def valid_profile_name(name: str) -> bool:
    return bool(_PROFILE_NAME.fullmatch(name))


def check_profile_name(name: str) -> str:
    if not valid_profile_name(name):
        raise UsageError(f"invalid profile name {shown(name, 70)!r}", PROFILE_NAME_RULE)
    return name


def config_path(env: Mapping[str, str]) -> Path:
    """``STRUCTOCR_CONFIG`` if set, else ``config.toml`` in the platform's config directory."""
    override = env.get(ENV_CONFIG)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("structocr", appauthor=False)) / "config.toml"


def history_path(env: Mapping[str, str]) -> Path | None:
    """Where balances are recorded: ``STRUCTOCR_HISTORY`` if set (``off``: nowhere, None),
    else ``history.sqlite3`` in the platform's data directory."""
    override = env.get(ENV_HISTORY, "").strip()
    if override.lower() == "off":
        return None
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("structocr", appauthor=False)) / "history.sqlite3"


_LENGTH = r"([0-9]{1,6})([mhdw])"  # compiled on first use (re caches it), not at start-up
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
LENGTH_EXAMPLE = "a length such as 30m, 12h, 7d or 2w"


def length_seconds(text: str) -> int | None:
    """``30m``, ``12h``, ``7d``, ``2w`` as seconds; None when ``text`` is no such length."""
    match = re.fullmatch(_LENGTH, text.strip().lower())
    if not match or int(match[1]) == 0:
        return None
    return int(match[1]) * _UNITS[match[2]]


def history_keep_days(env: Mapping[str, str]) -> float:
    """How long the history keeps observations: ``STRUCTOCR_HISTORY_KEEP`` (``90d``), else
    400 days."""
    text = env.get(ENV_HISTORY_KEEP, "").strip()
    if not text:
        return DEFAULT_KEEP_DAYS
    seconds = length_seconds(text)
    if seconds is None:
        raise UsageError(
            f"{ENV_HISTORY_KEEP}={shown(text)!r} is not {LENGTH_EXAMPLE}", "Fix or unset it"
        )
    return seconds / 86400


def quick_config_path(env: Mapping[str, str]) -> Path:
    """``config_path`` without importing platformdirs, for TAB completion, where start-up is
    felt on every key press. A test keeps it equal to ``config_path``."""
    override = env.get(ENV_CONFIG)
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = env.get("XDG_CONFIG_HOME", "").strip()
        base = Path(xdg) if os.path.isabs(xdg) else home / ".config"
    return base / "structocr" / "config.toml"


def profile_names(env: Mapping[str, str]) -> list[str]:
    """Profile names for completion; nothing (never an error) when the file is unusable."""
    try:
        return sorted(load_config(quick_config_path(env)).profiles)
    except UsageError:
        return []


def read_config_bytes(path: Path) -> bytes | None:
    """The file's bytes, None if it does not exist. Only a regular file of at most 1 MiB is
    read (or /dev/null, an empty config): a FIFO or a device could hang the command or fill
    memory, even on a TAB press."""
    from structocr_cli.settings.reads import CONFIG_CAP, ReadError, read_path

    if str(path) == os.devnull:
        return b""
    try:
        return read_path(path, CONFIG_CAP, None, regular_only=True)
    except FileNotFoundError:
        return None
    except ReadError as exc:
        hints = {
            "directory": f"Point {ENV_CONFIG} at a TOML file",
            "not_regular": f"Point {ENV_CONFIG} at a TOML file",
            "too_large": "A config file holds a few profiles; check the path",
            "permission": f"Fix the file's permissions, or point {ENV_CONFIG} at another file",
            "descriptors": "Too many files or connections are open; raise the limit "
            "(ulimit -n; LimitNOFILE= in a systemd unit) or close some",
        }
        hint = hints.get(exc.kind, f"Check the file, or point {ENV_CONFIG} at another file")
        raise ConfigError(f"cannot read config file {path}: {exc}", hint) from None


def load_config(path: Path) -> Config:
    """Read and check the file at ``path``; a missing file is an empty config."""
    raw = read_config_bytes(path)
    if raw is None:
        return Config(path=path, exists=False)
    config = parse_config(path, raw)
    if _is_loose(path):
        config = config._replace(loose_permissions=True)
    return config


def parse_config(path: Path, raw: bytes) -> Config:
    """Parse and check the file's bytes; errors name the file and line."""
    text = raw.decode("utf-8", errors="replace")
    return _check(path, text, parse_toml(path, raw))


def _is_loose(path: Path) -> bool:
    if os.name == "nt":  # POSIX modes say nothing there; ACLs decide
        return False
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def strict_permissions(env: Mapping[str, str]) -> bool:
    return env.get(ENV_STRICT, "") not in ("", "0")


def parse_toml(path: Path, raw: bytes, what: str = "config file") -> dict[str, Any]:
    """Parse TOML; errors name the file and line."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _invalid(path, line, "it is not UTF-8 text", what) from None
    except RecursionError:
        raise _invalid(path, 0, "it is nested too deeply", what) from None
    except tomllib.TOMLDecodeError as exc:
        # The message ends "(at line L, column C)"; keep the wording, lead with the line.
        match = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
        line = int(match.group(1)) if match else 0
        reason = re.sub(r"\s*\(at line \d+, column \d+\)$", "", str(exc)) or "invalid TOML"
        reason = reason[:1].lower() + reason[1:]
        if reason == "invalid value" and line:
            reason = _unquoted_value(raw, line) or reason
        raise _invalid(path, line, reason, what) from None


def _unquoted_value(raw: bytes, line: int) -> str | None:
    """For ``api_key = abc``: which key, and the quoted form TOML wants."""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if line > len(lines):
        return None
    match = re.match(r"""\s*([A-Za-z0-9_.'"-]+)\s*=\s*(.*?)\s*$""", lines[line - 1])
    if not match:
        return None
    key, value = sanitize(match.group(1), 40), shown(match.group(2), 60).replace('"', '\\"')
    return f'the value of {key} is not valid TOML; text must be quoted: {key} = "{value}"'


def _invalid(
    path: Path, line: int, reason: str, what: str = "config file", hint: str = ""
) -> ConfigError:
    where = f"{path}, line {line}" if line else str(path)
    return ConfigError(
        f"invalid {what} {where}: {reason}", hint or "Fix the file (see the README)"
    )


def _line_of(text: str, section: str | None, key: str | None) -> int:
    """Best-effort line number of ``key`` in ``[section]`` (or of the section header)."""
    current: str | None = None
    header_line = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[] \t").replace('"', "").replace("'", "")
            if current == section:
                header_line = number
            continue
        if (
            key
            and current == section
            and re.match(rf"""["']?{re.escape(key)}["']?\s*=""", stripped)
        ):
            return number
    return header_line


def _header_line(text: str, name: str) -> int:
    """Best-effort line of the ``[profiles.NAME]`` header, however NAME was quoted."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if (
            stripped.startswith("[")
            and "profiles" in stripped
            and _unquoted(name) in _unquoted(stripped)
        ):
            return number
    return 0


def _unquoted(text: str) -> str:
    return text.replace('"', "").replace("'", "").replace("\\", "")


def _check(path: Path, text: str, data: dict[str, Any]) -> Config:
    default = data.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise _invalid(
            path, _line_of(text, None, "default_profile"), "default_profile must be a string"
        )
    if default is not None and not valid_profile_name(default):
        line = _line_of(text, None, "default_profile")
        reason = f"default_profile {sanitize(default, 70)!r} is not a valid profile name"
        raise _invalid(path, line, reason, hint=PROFILE_NAME_RULE)
    profiles_raw = data.get("profiles", {})
    if not isinstance(profiles_raw, dict):
        raise _invalid(path, _line_of(text, None, "profiles"), "profiles must be a table")
    profiles: dict[str, Profile] = {}
    for name, table in profiles_raw.items():
        # A name is offered to shell completion and shown in messages: it must be inert.
        if not valid_profile_name(name):
            line = _header_line(text, name) or _line_of(text, None, "profiles")
            reason = f"profile name {sanitize(name, 70)!r} is not valid"
            raise _invalid(path, line, reason, hint=PROFILE_NAME_RULE)
        section = f"profiles.{name}"
        if not isinstance(table, dict):
            raise _invalid(path, _line_of(text, "profiles", name), f"{section} must be a table")
        values: dict[str, str | None] = {}
        for key in ("api_key", "base_url", "key_store"):
            value = table.get(key)
            if value is not None and not isinstance(value, str):
                line = _line_of(text, section, key)
                raise _invalid(path, line, f"{section}.{key} must be a string")
            values[key] = value
        if values["key_store"] not in (None, "file", KEYRING):
            line = _line_of(text, section, "key_store")
            raise _invalid(path, line, f'{section}.key_store must be "file" or "keyring"')
        profiles[name] = Profile(name, values["api_key"], values["base_url"], values["key_store"])
    return Config(path, True, default, profiles, warnings=_ignored_tables(path, data))


def _ignored_tables(path: Path, data: dict[str, Any]) -> tuple[str, ...]:
    warnings = []
    for name, value in data.items():
        if name in ("default_profile", "profiles") or not isinstance(value, dict):
            continue
        shown_name = sanitize(name, 40)
        note = f"{path}: [{shown_name}] is not a table structocr reads; it is ignored"
        if name.lower().rstrip("s") == "profile" and value:
            first = sanitize(next(iter(value)), 40)
            note += f" (did you mean [profiles.{first}]?)"
        warnings.append(note)
    return tuple(warnings)

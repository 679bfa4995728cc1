"""Key and profile management: what ``structocr config`` does, as functions returning data."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from structocr_cli.api import keys
from structocr_cli.api.errors import (
    HINT_COPY_KEY,
    ExitCode,
    NoApiKeyError,
    StructocrError,
    UsageError,
)
from structocr_cli.settings.config import KEYRING, Config, check_profile_name
from structocr_cli.settings.resolve import (
    DEFAULT_PROFILE,
    Flags,
    Sourced,
    choose_api_key,
    choose_base_url,
    choose_profile,
    read_config,
    unknown_profile,
)


@dataclass(frozen=True)
class Row:
    name: str
    key: str
    """Masked key, or "(keyring)" when the key is in the OS keyring."""
    base_url: str | None
    default: bool
    key_store: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "base_url": self.base_url,
                "key_store": self.key_store, "default": self.default}  # fmt: skip


def rows(config: Config) -> list[Row]:
    result = []
    for name, profile in sorted(config.profiles.items()):
        store = KEYRING if profile.key_store == KEYRING else "file"
        if store == KEYRING:
            shown = "(keyring)"
        else:
            shown = keys.mask(profile.api_key) if profile.api_key else "(no key)"
        default = name == config.default_profile
        result.append(Row(name, shown, profile.base_url, default, store))
    return result


def read_new_key(text: str) -> str:
    """The key as typed or piped, checked; errors never quote it."""
    key = text.strip()
    if not key:
        raise UsageError("no key was given", "Type it at the prompt, or pipe it on stdin")
    problem = keys.key_problem(key)
    if problem:
        raise UsageError(f"this key cannot be saved: {problem}", HINT_COPY_KEY)
    keys.remember(key)
    return key


def target_profile(flag: str | None, env: Mapping[str, str], config: Config) -> Sourced:
    """The profile ``set-key`` writes: as ``balance`` chooses one (``-p``, STRUCTOCR_PROFILE,
    default_profile, "default"), except that it may be new."""
    from structocr_cli.settings.resolve import DEFAULT, DEFAULT_PROFILE, ENV_PROFILE, Kind, Source

    candidates = (
        (flag, Source(Kind.FLAG, "--profile")),
        (env.get(ENV_PROFILE), Source(Kind.ENV, ENV_PROFILE)),
        (config.default_profile, Source(Kind.FILE, "default_profile")),
    )
    for value, source in candidates:
        if value:
            return Sourced(check_profile_name(value), source)
    return Sourced(DEFAULT_PROFILE, DEFAULT)


def verify_base_url(config: Config, env: Mapping[str, str], name: str, flag: str | None) -> str:
    """Where ``set-key --verify`` checks the key: as ``balance`` would choose for the profile."""
    return choose_base_url(Flags(base_url=flag), env, config, name).value


@dataclass(frozen=True)
class SetKey:
    name: str
    key: str
    base_url: str | None
    make_default: bool
    store: str

    def apply(self, document: Any, config: Config) -> None:
        from structocr_cli.settings import store as config_store

        table = config_store.profile_table(document, self.name)
        if self.store == KEYRING:
            table.pop("api_key", None)
            table["key_store"] = KEYRING
        else:
            table.pop("key_store", None)
            table["api_key"] = self.key
        if self.base_url is not None:
            table["base_url"] = self.base_url
        if self.make_default or not config.profiles:  # the first profile, or asked for
            document["default_profile"] = self.name


def set_key(path: Path, change: SetKey) -> Config:
    """Save a key (in the file or the OS keyring); return the config as it was before."""
    from structocr_cli.settings import keystore
    from structocr_cli.settings import store as config_store

    check_profile_name(change.name)
    before: list[Config] = []

    def apply(document: Any, config: Config) -> None:
        before.append(config)
        if change.store == KEYRING:  # after the file is known to be writable and parseable
            keystore.put(change.name, change.key)
        change.apply(document, config)

    config_store.update(path, apply)
    previous = before[0].profiles.get(change.name)
    if change.store != KEYRING and previous is not None and previous.key_store == KEYRING:
        with contextlib.suppress(StructocrError):
            keystore.delete(change.name)  # the key now lives in the file
    return before[0]


def use(path: Path, name: str) -> None:
    from structocr_cli.settings import store as config_store

    check_profile_name(name)

    def apply(document: Any, config: Config) -> None:
        if name not in config.profiles:
            raise unknown_profile(config, name)
        document["default_profile"] = name

    config_store.update(path, apply)


def set_base_url(path: Path, name: str, url: str | None) -> None:
    """Change an existing profile's base URL (None: back to the public API), its key kept."""
    from structocr_cli.settings import store as config_store

    check_profile_name(name)

    def apply(document: Any, config: Config) -> None:
        if name not in config.profiles:
            raise unknown_profile(config, name)
        table = config_store.profile_table(document, name)
        if url is None:
            table.pop("base_url", None)
        else:
            table["base_url"] = url

    config_store.update(path, apply)


def remove(path: Path, name: str) -> list[str]:
    """Delete a profile; returns what the user should know next: that no default is left,
    or that its key may remain in the OS keyring."""
    from structocr_cli.settings import keystore
    from structocr_cli.settings import store as config_store

    check_profile_name(name)
    before: list[Config] = []

    def apply(document: Any, config: Config) -> None:
        if name not in config.profiles:
            raise unknown_profile(config, name)
        before.append(config)
        config_store.remove_profile(document, name)

    config_store.update(path, apply)
    config = before[0]
    notes = []
    others = sorted(set(config.profiles) - {name})
    if config.default_profile == name:  # as config show will tell it
        fallback = "" if DEFAULT_PROFILE in others else ", which does not exist"
        notes.append(
            f"it was the default profile: commands without -p now use the profile "
            f'"{DEFAULT_PROFILE}"{fallback}'
            + (
                f"; make another the default with: structocr config use NAME (profiles: "
                f"{', '.join(others)})"
                if others
                else ""
            )
        )
    if config.profiles[name].key_store == KEYRING:
        try:
            keystore.delete(name)
        except StructocrError as exc:
            notes.append(f"warning: the key may remain in the OS keyring: {exc.message}")
    return notes


@dataclass(frozen=True)
class Status:
    profile: Sourced
    key: Sourced | None
    problem_text: str | None
    base_url: Sourced
    config: Config

    @property
    def exit_code(self) -> ExitCode:
        """``config show`` fails like ``balance`` would when there is no usable key."""
        return ExitCode.OK if self.key is not None else ExitCode.UNAUTHORIZED

    @property
    def permissions(self) -> str:
        if not self.config.exists:
            return "no such file"
        mode = self.config.path.stat().st_mode & 0o777
        verdict = "readable by other users" if self.config.loose_permissions else "private"
        return f"mode {mode:04o}, {verdict}"


def status(profile: str | None, env: Mapping[str, str]) -> Status:
    """What ``balance`` would use now, and why, without any network access."""
    config = read_config(env)
    flags = Flags(profile=profile)
    chosen = choose_profile(flags, env, config)
    try:
        key: Sourced | None = choose_api_key(flags, env, config, chosen.value)
        problem = None
    except (NoApiKeyError, UsageError) as exc:
        key, problem = None, exc.one_line()
    base_url = choose_base_url(flags, env, config, chosen.value)
    return Status(chosen, key, problem, base_url, config)

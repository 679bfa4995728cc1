"""Which key, profile and base URL a command uses, and where each one came from.

Precedence (first found wins), documented in the README:
- API key: ``--api-key`` > ``--api-key-file`` > ``STRUCTOCR_API_KEY`` > the profile's ``api_key``
- profile: ``--profile`` > ``STRUCTOCR_PROFILE`` > ``default_profile`` in the file > ``default``
- base URL: ``--base-url`` > ``STRUCTOCR_BASE_URL`` > the profile's ``base_url`` > the public API
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from structocr_cli.api import keys
from structocr_cli.api.errors import (
    HINT_COPY_KEY,
    ConfigError,
    KeyringError,
    NoApiKeyError,
    RefusedURLError,
    UnknownProfileError,
    UsageError,
)
from structocr_cli.settings.config import (
    ENV_STRICT,
    KEYRING,
    Config,
    check_profile_name,
    config_path,
    load_config,
    strict_permissions,
)

DEFAULT_BASE_URL = "https://structocr.com/v1"
DEFAULT_PROFILE = "default"
ENV_KEY = "STRUCTOCR_API_KEY"
ENV_PROFILE = "STRUCTOCR_PROFILE"
ENV_BASE_URL = "STRUCTOCR_BASE_URL"


class Kind(Enum):
    """Where a setting came from."""

    FLAG = "flag"
    FILE = "file"
    """A top-level setting of the config file (default_profile)."""
    ENV = "env"
    PROFILE = "profile"
    KEYRING = "keyring"
    DEFAULT = "default"


class Source(NamedTuple):
    kind: Kind
    name: str = ""
    """The option, environment variable, profile or config key it came from."""

    def __str__(self) -> str:
        if self.kind is Kind.ENV:
            return f"env {self.name}"
        if self.kind is Kind.PROFILE:
            return f'profile "{self.name}"'
        if self.kind is Kind.KEYRING:
            return f'profile "{self.name}" (keyring)'
        if self.kind is Kind.FILE:
            return f"{self.name} in the config file"
        return self.name or self.kind.value


DEFAULT = Source(Kind.DEFAULT)


class Sourced(NamedTuple):
    """A setting's value and where it came from (``str(source)`` says it to people)."""

    value: str
    source: Source


class Settings(NamedTuple):
    api_key: Sourced
    profile: Sourced
    base_url: Sourced
    config: Config

    @property
    def profile_label(self) -> str | None:
        """The profile's name if one is in use (chosen, or the key's source), else None."""
        chosen = self.profile.source.kind is not Kind.DEFAULT
        if chosen or self.api_key.source.kind in (Kind.PROFILE, Kind.KEYRING):
            return self.profile.value
        return None

    @property
    def key_description(self) -> str:
        """The key as it may be shown: masked, with its source."""
        return f"{keys.mask(self.api_key.value)} from {self.api_key.source}"


class Flags(NamedTuple):
    """What the command line said; None means the option was not given."""

    api_key: str | None = None
    api_key_file: str | None = None
    profile: str | None = None
    base_url: str | None = None
    api_key_from: str = "--api-key"
    """Where ``api_key`` was given, as messages name it ("--keys-file line 3")."""
    key_options: tuple[str, ...] = ("--api-key", "--api-key-file")
    """The options this command takes a key from, as "no API key found" lists them."""
    refused_hint: str | None = None
    """What to do when the API refuses this key, where the general advice (choose another
    with --api-key-file...) does not fit: a key from a keys file is fixed in that file."""


def resolve(flags: Flags, env: Mapping[str, str], deadline: float | None = None) -> Settings:
    """Apply the precedence rules above; raise a typed error when nothing usable is found.
    A key read from a pipe or stdin must arrive before ``deadline`` (``time.monotonic()``)."""
    config = read_config(env)
    profile = choose_profile(flags, env, config)
    return Settings(
        api_key=choose_api_key(flags, env, config, profile.value, deadline),
        profile=profile,
        base_url=choose_base_url(flags, env, config, profile.value),
        config=config,
    )


def read_config(env: Mapping[str, str]) -> Config:
    """The config file, refused if others can read it and strict permissions are asked for."""
    config = load_config(config_path(env))
    if config.loose_permissions and strict_permissions(env):
        raise ConfigError(config.permission_advice(), f"({ENV_STRICT} is set)")
    return config


def choose_base_url(flags: Flags, env: Mapping[str, str], config: Config, profile: str) -> Sourced:
    chosen = config.profiles.get(profile)
    base_url = _first(
        (flags.base_url, Source(Kind.FLAG, "--base-url")),
        (env.get(ENV_BASE_URL), Source(Kind.ENV, ENV_BASE_URL)),
        (chosen.base_url if chosen else None, Source(Kind.PROFILE, profile)),
    ) or Sourced(DEFAULT_BASE_URL, DEFAULT)
    return Sourced(check_base_url(base_url), base_url.source)


def _first(*candidates: tuple[str | None, Source]) -> Sourced | None:
    # An empty value counts as unset: CI systems expand a missing secret to "".
    for value, source in candidates:
        if value:
            return Sourced(value, source)
    return None


def choose_profile(flags: Flags, env: Mapping[str, str], config: Config) -> Sourced:
    profile = _first(
        (flags.profile, Source(Kind.FLAG, "--profile")),
        (env.get(ENV_PROFILE), Source(Kind.ENV, ENV_PROFILE)),
        (config.default_profile, Source(Kind.FILE, "default_profile")),
    )
    if profile is None:
        return Sourced(DEFAULT_PROFILE, DEFAULT)
    check_profile_name(profile.value)  # the rule names in the file and set-key obey
    if profile.value not in config.profiles:
        raise unknown_profile(config, profile.value, profile.source)
    return profile


def unknown_profile(
    config: Config, name: str, source: Source | None = None
) -> UnknownProfileError:
    """The one error for a profile name the config file does not have."""
    known = ", ".join(sorted(config.profiles)) or "none"
    where = str(config.path) if config.exists else f"{config.path} (no such file)"
    origin = f" (from {source})" if source else ""
    return UnknownProfileError(
        f'unknown profile "{keys.shown(name, 70)}"{origin}; known profiles: {known}',
        f"Profiles are read from {where}; list them with: structocr config list",
    )


def choose_api_key(
    flags: Flags,
    env: Mapping[str, str],
    config: Config,
    profile: str,
    deadline: float | None = None,
) -> Sourced:
    # Surrounding whitespace (a pasted newline in a CI secret) is dropped from every source
    # alike; whitespace inside a key is still refused by _checked.
    if flags.api_key is not None:
        return _checked(Sourced(flags.api_key.strip(), Source(Kind.FLAG, flags.api_key_from)))
    if flags.api_key_file is not None:
        key = _read_key_file(flags.api_key_file, deadline)
        return _checked(Sourced(key, Source(Kind.FLAG, "--api-key-file")))
    chosen = config.profiles.get(profile)
    found = _first(
        ((env.get(ENV_KEY) or "").strip(), Source(Kind.ENV, ENV_KEY)),
        ((chosen.api_key or "").strip() if chosen else None, Source(Kind.PROFILE, profile)),
    )
    if found is None and chosen is not None and chosen.key_store == KEYRING:
        found = _from_keyring(profile)
    if found is None:
        raise _no_key(env, config, profile, flags.key_options)
    return _checked(found)


def _from_keyring(profile: str) -> Sourced:
    from structocr_cli.settings import keystore

    try:
        key = keystore.get(profile)
    except KeyringError as exc:
        raise NoApiKeyError(
            f'profile "{profile}" keeps its key in the OS keyring, but {exc.message}', exc.hint
        ) from None
    if not key:
        raise NoApiKeyError(
            f'profile "{profile}" keeps its key in the OS keyring, but the keyring has none',
            f"Store it again with: structocr config set-key -p {profile} --store keyring",
        )
    return Sourced(key.strip(), Source(Kind.KEYRING, profile))


def _checked(key: Sourced) -> Sourced:
    problem = keys.key_problem(key.value)
    if problem:
        raise UsageError(f"the API key from {key.source} cannot be used: {problem}", HINT_COPY_KEY)
    keys.remember(key.value)
    return key


def _read_key_file(name: str, deadline: float | None) -> str:
    from structocr_cli.settings.reads import KEY_CAP, ReadError, read_path, read_stdin

    if name == "-":
        return read_stdin(KEY_CAP, deadline, "the API key").strip()
    try:
        return read_path(Path(name).expanduser(), KEY_CAP, deadline, False).decode().strip()
    except (OSError, ReadError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            reason = "it is not UTF-8 text"
        else:
            reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(
            f"cannot read --api-key-file {keys.shown(name)}: {reason}",
            "Pass a readable file holding only the key, or - to read it from stdin",
        ) from None


def _no_key(
    env: Mapping[str, str], config: Config, profile: str, options: tuple[str, ...]
) -> NoApiKeyError:
    env_state = "set but empty" if ENV_KEY in env else "not set"
    file_state = "" if config.exists else ", no such file"
    others = sorted(set(config.profiles) - {profile})
    if others:  # the key may well be there, under another name
        hint = (
            f"Profiles in the file: {', '.join(others)}; use one with -p NAME, or make it the "
            f"default with: structocr config use NAME; or save a key with: "
            f"structocr config set-key -p {profile}"
        )
    else:
        hint = (
            f"Save one with: structocr config set-key -p {profile}; "
            f"or set {ENV_KEY}, or pass --api-key-file FILE"
        )
    return NoApiKeyError(
        f"no API key found: looked at {''.join(option + ', ' for option in options)}"
        f'{ENV_KEY} ({env_state}) and profile "{profile}" in {config.path}{file_state}',
        hint,
    )


def check_base_url(url: Sourced) -> str:
    """The URL without a trailing slash, or an error if sending a key there is unsafe."""
    parts = urlsplit(url.value.strip())
    problem = None
    if not url.value.strip().isprintable() or " " in url.value.strip():
        problem = "it contains spaces or control characters"
    elif parts.scheme not in ("https", "http") or not parts.hostname:
        problem = "it is not an http(s) URL with a host"
    elif parts.username is not None or parts.query or parts.fragment:
        problem = "it must not carry credentials, a query or a fragment"
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        problem = (
            "plain http would send the API key unencrypted; http is allowed only for loopback"
        )
    if problem:
        raise RefusedURLError(
            f"refused base URL {keys.shown(url.value)} (from {url.source}): {problem}",
            f"Use https, e.g. {DEFAULT_BASE_URL}",
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise RefusedURLError(
            f"refused base URL {keys.shown(url.value)} (from {url.source}): bad port",
            f"Use a URL like {DEFAULT_BASE_URL}",
        ) from None
    base = url.value.strip().rstrip("/")
    if parts.path.rstrip("/").endswith("/account/balance"):  # pasted from the API's docs
        shown = keys.shown(base.removesuffix("/account/balance"))
        raise RefusedURLError(
            f"refused base URL {keys.shown(url.value)} (from {url.source}): it is the "
            "balance endpoint's URL; the base URL is the part before /account/balance",
            f"Leave out /account/balance: {shown}",
        )
    return base


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    import ipaddress  # only plain-http URLs get here

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

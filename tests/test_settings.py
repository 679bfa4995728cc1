"""Where the key, profile and base URL come from, and what is refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from structocr_cli.api.errors import (
    ConfigError,
    NoApiKeyError,
    RefusedURLError,
    UnknownProfileError,
    UsageError,
)
from structocr_cli.settings.config import config_path, load_config
from structocr_cli.settings.resolve import (
    DEFAULT_BASE_URL,
    Flags,
    Kind,
    Source,
    Sourced,
    check_base_url,
    resolve,
)

CONFIG = """\
# my keys
default_profile = "prod"

[profiles.prod]
api_key = "prod-key"

[profiles.staging]
api_key = "staging-key"
base_url = "https://staging.example/v1"
"""


@pytest.fixture
def env(config_file: Path) -> dict[str, str]:
    config_file.write_text(CONFIG)
    return {"STRUCTOCR_CONFIG": str(config_file)}


def said(setting: Sourced) -> tuple[str, str]:
    """A setting as ``config show`` tells it: the value and where it came from."""
    return setting.value, str(setting.source)


def test_key_precedence_flag_file_env_profile(env: dict[str, str], tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("  file-key\n")
    env["STRUCTOCR_API_KEY"] = "env-key"
    both = Flags(api_key="flag-key", api_key_file=str(key_file))
    assert said(resolve(both, env).api_key) == ("flag-key", "--api-key")
    from_file = resolve(Flags(api_key_file=str(key_file)), env).api_key
    assert said(from_file) == ("file-key", "--api-key-file")
    assert said(resolve(Flags(), env).api_key) == ("env-key", "env STRUCTOCR_API_KEY")
    del env["STRUCTOCR_API_KEY"]
    assert said(resolve(Flags(), env).api_key) == ("prod-key", 'profile "prod"')


def test_api_key_file_dash_reads_stdin(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("stdin-key\n"))
    assert resolve(Flags(api_key_file="-"), env).api_key.value == "stdin-key"


def test_unreadable_key_file_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read --api-key-file"):
        resolve(Flags(api_key_file=str(tmp_path / "missing")), env)


def test_profile_precedence_flag_env_default_profile(env: dict[str, str]) -> None:
    env["STRUCTOCR_PROFILE"] = "staging"
    assert said(resolve(Flags(profile="prod"), env).profile) == ("prod", "--profile")
    settings = resolve(Flags(), env)
    assert said(settings.profile) == ("staging", "env STRUCTOCR_PROFILE")
    assert settings.api_key.value == "staging-key"
    del env["STRUCTOCR_PROFILE"]
    assert said(resolve(Flags(), env).profile) == ("prod", "default_profile in the config file")


def test_profile_defaults_to_default(config_file: Path) -> None:
    config_file.write_text('[profiles.default]\napi_key = "d"\n')
    settings = resolve(Flags(), {"STRUCTOCR_CONFIG": str(config_file)})
    assert said(settings.profile) == ("default", "default")
    assert settings.api_key.value == "d"


def test_base_url_precedence(env: dict[str, str]) -> None:
    env["STRUCTOCR_BASE_URL"] = "https://env.example/v1/"
    staging = Flags(profile="staging")
    flagged = Flags(profile="staging", base_url="https://flag.example/v1")
    assert said(resolve(flagged, env).base_url) == ("https://flag.example/v1", "--base-url")
    from_env = resolve(staging, env).base_url
    assert said(from_env) == ("https://env.example/v1", "env STRUCTOCR_BASE_URL")
    del env["STRUCTOCR_BASE_URL"]
    assert resolve(staging, env).base_url.value == "https://staging.example/v1"
    assert said(resolve(Flags(), env).base_url) == (DEFAULT_BASE_URL, "default")


def test_empty_env_values_count_as_unset(env: dict[str, str]) -> None:
    env.update(STRUCTOCR_API_KEY="", STRUCTOCR_PROFILE="", STRUCTOCR_BASE_URL="")
    settings = resolve(Flags(), env)
    assert settings.api_key.value == "prod-key"
    assert settings.base_url.value == DEFAULT_BASE_URL


def test_no_key_says_where_it_looked(config_file: Path) -> None:
    env = {"STRUCTOCR_CONFIG": str(config_file), "STRUCTOCR_API_KEY": ""}
    with pytest.raises(NoApiKeyError) as caught:
        resolve(Flags(), env)
    text = caught.value.one_line()
    assert "STRUCTOCR_API_KEY (set but empty)" in text
    assert f"{config_file}, no such file" in text
    assert caught.value.exit_code == 41


def test_unknown_profile_lists_known(env: dict[str, str]) -> None:
    with pytest.raises(UnknownProfileError, match="known profiles: prod, staging"):
        resolve(Flags(profile="nope"), env)


def test_unknown_default_profile_is_an_error(config_file: Path) -> None:
    config_file.write_text('default_profile = "gone"\n[profiles.prod]\napi_key = "k"\n')
    with pytest.raises(UnknownProfileError, match=r'"gone" .*default_profile'):
        resolve(Flags(), {"STRUCTOCR_CONFIG": str(config_file)})


@pytest.mark.parametrize("key", ["has space", "tab\there", "new\nline", "caf\u00e9", "\x1b[31m"])
def test_unsendable_keys_are_refused_without_echo(env: dict[str, str], key: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(Flags(api_key=key + "SECRETPART"), env)
    assert "SECRETPART" not in caught.value.one_line()
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787/v1",
        "http://127.3.4.5/v1",
        "http://localhost:1/v1",
        "http://[::1]:8787/v1",
        "https://structocr.com/v1",
        "https://staging.example/v1/",
    ],
)
def test_allowed_base_urls(url: str) -> None:
    assert check_base_url(Sourced(url, Source(Kind.FLAG, "--base-url"))) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://structocr.com/v1",
        "http://10.0.0.1/v1",
        "http://128.0.0.1/v1",
        "http://localhost.evil.com/v1",
        "ftp://structocr.com/v1",
        "structocr.com/v1",
        "https://user:pw@structocr.com/v1",
        "https://structocr.com/v1?x=1",
        "https://structocr.com:99999/v1",
    ],
)
def test_refused_base_urls(url: str) -> None:
    with pytest.raises(RefusedURLError):
        check_base_url(Sourced(url, Source(Kind.FLAG, "--base-url")))


def test_config_path_env_override_then_platformdirs(tmp_path: Path) -> None:
    assert config_path({"STRUCTOCR_CONFIG": str(tmp_path / "c.toml")}) == tmp_path / "c.toml"
    default = config_path({})
    assert default.name == "config.toml"
    assert default.parent.name == "structocr"


def test_missing_config_is_empty(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.toml")
    assert not config.exists
    assert config.profiles == {}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('default_profile = "a"\n[profiles.a]\napi_key = \n', 3, "the value of api_key is not"),
        ("default_profile = 3\n", 1, "default_profile must be a string"),
        ('[profiles.a]\nbase_url = "x"\napi_key = 42\n', 3, "profiles.a.api_key must be a string"),
        ('profiles = "x"\n', 1, "profiles must be a table"),
        ("[profiles]\na = 1\n", 2, "profiles.a must be a table"),
    ],
)
def test_invalid_config_names_file_and_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = caught.value.one_line()
    assert f"{path}, line {line}" in message
    assert reason in message.lower()


@pytest.mark.parametrize("name", ["x y", "a\x1b[31m", "$(touch x)", "a" * 65])
def test_a_profile_name_from_any_source_obeys_one_rule(env: dict[str, str], name: str) -> None:
    with pytest.raises(UsageError, match="invalid profile name"):
        resolve(Flags(profile=name), env)
    with pytest.raises(UsageError, match="invalid profile name"):
        resolve(Flags(), {**env, "STRUCTOCR_PROFILE": name})


@pytest.mark.parametrize("url", ["https://a.example/v1\x1b[2J", "https://a.example/v 1"])
def test_base_urls_with_control_characters_or_spaces_are_refused(url: str) -> None:
    with pytest.raises(RefusedURLError, match="spaces or control characters"):
        check_base_url(Sourced(url, Source(Kind.FLAG, "--base-url")))

"""structocr config: storing, listing, switching and removing keys, and the file's safety."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from structocr_cli.mock.server import MockServer
from structocr_cli.settings.config import load_config
from tests.conftest import LONG_KEY, STRUCTOCR, Result, run


def set_key(
    key: str, *args: str, umask: int | None = None
) -> Result | subprocess.CompletedProcess[str]:
    """``config set-key`` with the key on stdin; in a process of its own when a umask is set."""
    if umask is None:
        return run("config", "set-key", *args, stdin=key)
    preexec: Callable[[], object] = lambda: os.umask(umask)  # noqa: E731
    return subprocess.run(
        [str(STRUCTOCR), "config", "set-key", *args],
        input=key,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=preexec,
    )


def profiles(path: Path) -> dict[str, object]:
    config = load_config(path)
    return {name: p.api_key for name, p in config.profiles.items()} | {
        "default": config.default_profile
    }


def test_set_key_from_stdin_saves_and_never_echoes(config_file: Path) -> None:
    result = set_key(LONG_KEY, "-p", "ci")
    assert result.returncode == 0, result.stderr
    assert LONG_KEY not in result.stdout + result.stderr
    assert "sk_l…2b1c" in result.stderr
    assert profiles(config_file) == {"ci": LONG_KEY, "default": "ci"}


def test_first_profile_becomes_default_and_default_flag_switches(config_file: Path) -> None:
    set_key("key-one", "-p", "one")
    set_key("key-two", "-p", "two")
    assert profiles(config_file)["default"] == "one"
    set_key("key-three", "-p", "three", "--default")
    assert profiles(config_file)["default"] == "three"


def test_set_key_saves_base_url_after_checking_it(config_file: Path) -> None:
    assert set_key("k", "-p", "a", "--base-url", "https://staging.example/v1/").returncode == 0
    assert load_config(config_file).profiles["a"].base_url == "https://staging.example/v1"
    refused = set_key("k", "-p", "b", "--base-url", "http://staging.example/v1")
    assert refused.returncode == 2
    assert "b" not in load_config(config_file).profiles


@pytest.mark.parametrize("key", ["", "   ", "has space", "tab\there", "caf\u00e9x"])
def test_bad_keys_are_refused_without_echo(config_file: Path, key: str) -> None:
    result = set_key(key + "SECRETPART", "-p", "x") if key.strip() else set_key(key, "-p", "x")
    assert result.returncode == 2
    assert "SECRETPART" not in result.stderr
    assert not config_file.exists()


@pytest.mark.parametrize("name", ["a b", "x" * 65, "a/b", "ü", "a:b"])
def test_bad_profile_names_are_refused(config_file: Path, name: str) -> None:
    assert set_key("k", "-p", name).returncode == 2
    assert not config_file.exists()


def test_an_empty_profile_name_is_refused_not_taken_for_the_default(config_file: Path) -> None:
    # CI systems expand a missing variable to "" (`-p "$PROFILE"`): the default profile's
    # key must not be overwritten by it.
    result = set_key("k-1234567890", "-p", "")
    assert result.returncode == 2
    assert not config_file.exists()


def test_profile_names_may_use_the_allowed_characters(config_file: Path) -> None:
    name = "Prod_eu-1.2" + "x" * 53  # 64 characters
    assert set_key("k", "-p", name).returncode == 0
    assert name in load_config(config_file).profiles


def test_verify_saves_only_a_working_key(server: MockServer, config_file: Path) -> None:
    bad = set_key("demo-404", "-p", "x", "--verify", "--base-url", server.url)
    assert bad.returncode == 44
    assert not config_file.exists()
    good = set_key("demo", "-p", "x", "--verify", "--base-url", server.url)
    assert good.returncode == 0, good.stderr
    assert "48,849 credits remaining" in good.stderr
    assert profiles(config_file)["x"] == "demo"


def test_list_shows_masked_keys_base_urls_and_the_default(config_file: Path) -> None:
    set_key(LONG_KEY, "-p", "prod")
    set_key("short", "-p", "local", "--base-url", "http://127.0.0.1:8787/v1")
    result = run("config", "list")
    assert result.stdout.splitlines() == [
        "  local  *****         http://127.0.0.1:8787/v1",
        "* prod   sk_l…2b1c",
    ]
    as_json = json.loads(run("config", "list", "--json").stdout)
    assert as_json == [
        {"name": "local", "key": "*****", "base_url": "http://127.0.0.1:8787/v1",
         "key_store": "file", "default": False},
        {"name": "prod", "key": "sk_l…2b1c", "base_url": None, "key_store": "file",
         "default": True},
    ]  # fmt: skip
    assert LONG_KEY not in result.stdout


def test_use_and_remove(config_file: Path) -> None:
    set_key("k1", "-p", "a")
    set_key("k2", "-p", "b")
    assert run("config", "use", "b").returncode == 0
    assert profiles(config_file)["default"] == "b"
    assert run("config", "remove", "b").returncode == 0
    assert profiles(config_file) == {"a": "k1", "default": None}


@pytest.mark.parametrize("command", ["use", "remove"])
def test_unknown_profile_lists_known_ones(config_file: Path, command: str) -> None:
    set_key("k1", "-p", "a")
    result = run("config", command, "zzz")
    assert result.returncode == 2
    assert 'unknown profile "zzz"; known profiles: a' in result.stderr


def test_path_respects_the_environment(config_file: Path) -> None:
    assert run("config", "path").stdout == f"{config_file}\n"
    assert run("config", "path", env={"STRUCTOCR_CONFIG": "/x/y.toml"}).stdout == "/x/y.toml\n"


def test_show_explains_every_choice(config_file: Path) -> None:
    set_key(LONG_KEY, "-p", "prod", "--base-url", "https://eu.example/v1")
    result = run("config", "show")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "Profile:     prod (from default_profile in the config file)",
        'API key:     sk_l…2b1c (from profile "prod")',
        'Base URL:    https://eu.example/v1 (from profile "prod")',
        f"Config file: {config_file} (mode 0600, private)",
        f"History:     {Path.home()}/.local/share/structocr/history.sqlite3",
    ]
    off = run("config", "show", env={"STRUCTOCR_HISTORY": "off"})
    assert off.stdout.splitlines()[-1] == "History:     off (STRUCTOCR_HISTORY=off)"
    env = run("config", "show", env={"STRUCTOCR_API_KEY": "envkey-1234567890"})
    assert "API key:     envk…7890 (from env STRUCTOCR_API_KEY)" in env.stdout


def test_show_without_a_key_exits_41(config_file: Path) -> None:
    result = run("config", "show")
    assert result.returncode == 41
    assert "API key:     none: no API key found" in result.stdout
    assert "no such file" in result.stdout


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_file_is_0600_and_directory_0700(isolated: Path, umask: int) -> None:
    path = isolated / "new" / "dir" / "config.toml"
    os.environ["STRUCTOCR_CONFIG"] = str(path)
    assert set_key("k", "-p", "a", umask=umask).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_looser_file_is_tightened_on_write(config_file: Path) -> None:
    config_file.write_text('[profiles.a]\napi_key = "k"\n')
    config_file.chmod(0o644)
    assert set_key("k2", "-p", "b").returncode == 0
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_reading_a_loose_file_warns_with_the_fix(server: MockServer, config_file: Path) -> None:
    config_file.write_text(f'[profiles.a]\napi_key = "demo"\nbase_url = "{server.url}"\n')
    config_file.chmod(0o644)
    result = run("balance", "-p", "a", "--json")
    assert result.returncode == 0
    assert f"chmod 600 {config_file}" in result.stderr
    assert json.loads(result.stdout)
    strict = run("balance", "-p", "a", env={"STRUCTOCR_STRICT_PERMISSIONS": "1"})
    assert strict.returncode == 2
    assert f"chmod 600 {config_file}" in strict.stderr


def test_symlinked_file_is_refused(config_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.toml"
    target.write_text("# precious\n")
    config_file.symlink_to(target)
    result = set_key("k", "-p", "a")
    assert result.returncode == 2
    assert "symbolic link" in result.stderr
    assert target.read_text() == "# precious\n"


def _special(path: Path, kind: str) -> None:
    import socket
    import stat

    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        socket.socket(socket.AF_UNIX).bind(str(path))
    else:  # a node like /dev/null's (1, 3): only root may make one
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")


@pytest.mark.parametrize(
    ("kind", "says"),
    [("device", "refusing to write the config file {}: it is a device, not a regular file"),
     ("fifo", "cannot read config file {}: it is not a regular file"),
     ("directory", "cannot read config file {}: it is a directory"),
     ("socket", "cannot read config file {}: it is not a regular file")],
)  # fmt: skip
def test_a_config_path_that_is_no_regular_file_is_never_replaced(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, kind: str, says: str
) -> None:
    """STRUCTOCR_CONFIG=/dev/null reads as an empty config; writing must not replace the
    device with a file holding the key. A node like /dev/null's stands in for it (testing
    on the real one would destroy it if this ever failed)."""
    _special(config_file, kind)
    if kind == "device":
        monkeypatch.setattr(os, "devnull", str(config_file))
    before = config_file.lstat()
    result = set_key("k-123456789", "-p", "a")
    assert result.returncode == 2, result.stderr
    assert says.format(config_file) in result.stderr
    after = config_file.lstat()
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert not config_file.with_name("config.toml.lock").exists()


def test_symlinked_lock_file_is_refused(config_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "target"
    target.parent.mkdir()
    (config_file.parent / "config.toml.lock").symlink_to(target)
    result = set_key("k-123456789", "-p", "a")
    assert result.returncode == 2
    assert "lock file" in result.stderr
    assert "symbolic link" in result.stderr
    assert not target.exists()
    assert not config_file.exists()


def test_symlinked_directory_is_refused(isolated: Path) -> None:
    real = isolated / "real"
    real.mkdir()
    (isolated / "linked").symlink_to(real)
    os.environ["STRUCTOCR_CONFIG"] = str(isolated / "linked" / "config.toml")
    result = set_key("k", "-p", "a")
    assert result.returncode == 2
    assert "symbolic link" in result.stderr
    assert list(real.iterdir()) == []


HAND_EDITED = """\
# My StructOCR keys -- do not share
default_profile = "prod"   # the one I use most

[profiles.prod]
api_key = "prod-key"  # rotated in June
color = "blue"         # a key structocr does not know

[profiles.old]
api_key = "old-key"
"""


def test_comments_order_and_unknown_keys_survive_writes(config_file: Path) -> None:
    config_file.write_text(HAND_EDITED)
    assert set_key("new-key", "-p", "ci").returncode == 0
    assert run("config", "use", "ci").returncode == 0
    assert run("config", "remove", "old").returncode == 0
    text = config_file.read_text()
    assert text.startswith("# My StructOCR keys -- do not share\n")
    assert 'default_profile = "ci"   # the one I use most' in text
    assert 'api_key = "prod-key"  # rotated in June' in text
    assert 'color = "blue"         # a key structocr does not know' in text
    assert "[profiles.old]" not in text
    assert text.index("[profiles.prod]") < text.index("[profiles.ci]")


@pytest.mark.parametrize(
    "args", [("config", "set-key", "-p", "a"), ("config", "use", "x"), ("config", "remove", "x")]
)
def test_a_broken_file_is_never_rewritten(config_file: Path, args: tuple[str, ...]) -> None:
    broken = b'# mine\n[profiles.x]\napi_key = "k"\napi_key = \n'
    config_file.write_bytes(broken)
    result = run(*args, stdin="k")
    assert result.returncode == 2
    assert f"{config_file}, line 4" in result.stderr
    assert config_file.read_bytes() == broken


def test_twenty_concurrent_writers_lose_nothing(config_file: Path) -> None:
    procs = [
        subprocess.Popen(
            [str(STRUCTOCR), "config", "set-key", "-p", f"p{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(20)
    ]
    for n, proc in enumerate(procs):
        _, err = proc.communicate(f"key-{n}", timeout=120)
        assert proc.returncode == 0, err
    found = profiles(config_file)
    assert {f"p{n}" for n in range(20)} <= set(found)
    assert all(found[f"p{n}"] == f"key-{n}" for n in range(20))


# Writes profile p{n % 20} with a key naming the round and n; prints n once the write has
# returned, so the test knows which writes must have survived the kill.
WRITER = """
import sys
from pathlib import Path
from structocr_cli.settings import profiles
path, round_ = Path(sys.argv[1]), sys.argv[2]
n = 0
while True:
    n += 1
    key = f"key-{round_}-{n}-" + "x" * 40
    profiles.set_key(path, profiles.SetKey(f"p{n % 20}", key, None, False, "file"))
    print(n, flush=True)
"""


def test_writers_killed_mid_write_always_leave_a_parseable_file(config_file: Path) -> None:
    set_key("seed", "-p", "seed")
    python = str(STRUCTOCR.with_name("python"))
    rng = random.Random(7)  # noqa: S311 - timing jitter, not secrets
    completed = 0
    for round_ in range(200 if os.environ.get("STRUCTOCR_TEST_FULL") == "1" else 6):
        proc = subprocess.Popen(
            [python, "-c", WRITER, str(config_file), str(round_)],
            stdout=subprocess.PIPE,
            text=True,
        )
        # The kill comes at a random moment of the writing, not of the interpreter's start
        # (which a busy machine can make longer than any fixed wait).
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        returned = [int(line) for line in (first + proc.communicate()[0]).split()]
        profiles = load_config(config_file).profiles  # parses, whatever the moment of the kill
        assert profiles["seed"].api_key == "seed"
        for n in returned[-20:]:  # the last write of each of the 20 profiles is there
            # ...or the write after it, which may have returned without being reported yet.
            allowed = {n, n + 20} if n + 20 == returned[-1] + 1 else {n}
            written = int(str(profiles[f"p{n % 20}"].api_key).split("-")[2])
            assert str(profiles[f"p{n % 20}"].api_key).startswith(f"key-{round_}-"), n
            assert written in allowed, (n, written)
        completed += len(returned)
    assert completed >= 6, "the writers were killed before writing anything"
    assert set_key("after", "-p", "after").returncode == 0
    leftovers = [p.name for p in config_file.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert load_config(config_file).profiles["after"].api_key == "after"


@pytest.mark.parametrize("failing", ["write", "fsync", "replace", "mkstemp"])
def test_a_write_that_fails_leaves_the_old_file_byte_identical(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    assert set_key("old-key-123456789", "-p", "a").returncode == 0
    before = config_file.read_bytes()

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_full(fd: int, *args: object, **kwargs: object) -> FullDisk:
        os.close(fd)
        return FullDisk()

    if failing == "write":
        monkeypatch.setattr("os.fdopen", open_full)
    else:
        monkeypatch.setattr(f"{'tempfile' if failing == 'mkstemp' else 'os'}.{failing}", full_disk)
    result = set_key("new-key-123456789", "-p", "b")
    monkeypatch.undo()
    assert result.returncode == 2
    assert f"cannot write {config_file}: No space left on device; the file is unchanged" in (
        result.stderr
    )
    assert config_file.read_bytes() == before
    assert [p.name for p in config_file.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_key_never_in_any_config_command_output(config_file: Path) -> None:
    outputs = [set_key(LONG_KEY, "-p", "a")]
    for args in (("list",), ("list", "--json"), ("show",), ("path",), ("use", "a")):
        outputs.append(run("config", *args))
    outputs.append(run("config", "remove", "a"))
    for result in outputs:
        assert LONG_KEY not in result.stdout + result.stderr


def test_removing_the_default_says_what_config_show_then_says(config_file: Path) -> None:
    set_key("k-ci-123456789", "-p", "ci")
    set_key("k-low-123456789", "-p", "low")
    run("config", "use", "low")
    removed = run("config", "remove", "low")
    assert removed.returncode == 0
    assert ('it was the default profile: commands without -p now use the profile "default", '
            "which does not exist; make another the default with: structocr config use NAME "
            "(profiles: ci)") in removed.stderr  # fmt: skip
    shown = run("config", "show")
    assert "Profile:     default (the built-in default)" in shown.stdout
    again = set_key("k-low-123456789", "-p", "low")  # not made the default behind one's back
    assert "default profile" not in again.stderr
    assert load_config(config_file).default_profile is None


def test_the_first_profile_saved_is_the_default(config_file: Path) -> None:
    first = set_key("k-ci-123456789", "-p", "ci")
    assert "; it is the default profile" in first.stderr
    assert load_config(config_file).default_profile == "ci"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "yes", "removed"),
                         [("n\n", False, False), ("\n", False, False), ("y\n", False, True),
                          ("", True, True)])  # fmt: skip
def test_remove_asks_on_a_terminal_unless_yes(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, answer: str, yes: bool, removed: bool
) -> None:
    from structocr_cli.cli.app import main

    set_key("k-ci-123456789", "-p", "ci")
    monkeypatch.setattr("sys.stdin", _Terminal(answer))
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    assert main(["config", "remove", "ci", *(["--yes"] if yes else [])]) == 0
    assert ("ci" not in load_config(config_file).profiles) is removed
    assert ('Remove profile "ci" and its key? [y/N]' in err.getvalue()) is not yes
    assert ("nothing removed" in err.getvalue()) is not removed


def test_remove_in_a_script_asks_nothing(config_file: Path) -> None:
    set_key("k-ci-123456789", "-p", "ci")
    result = run("config", "remove", "ci")  # stdin is no terminal
    assert result.returncode == 0
    assert "[y/N]" not in result.stderr
    assert "ci" not in load_config(config_file).profiles


def test_config_list_as_json_or_tsv(config_file: Path) -> None:
    set_key("k-ci-123456789", "-p", "ci")
    set_key("k-low-123456789", "-p", "low", "--base-url", "https://api.structocr.com/v1")
    tsv = run("config", "list", "-o", "tsv")
    assert tsv.stdout.splitlines() == [
        "ci\t**************\t\tfile\tyes",
        "low\t***************\thttps://api.structocr.com/v1\tfile\tno",
    ]
    as_json = run("config", "list", "-o", "json")
    assert as_json.stdout == run("config", "list", "--json").stdout
    assert [row["name"] for row in json.loads(as_json.stdout)] == ["ci", "low"]
    both = run("config", "list", "--json", "-o", "tsv")
    assert both.returncode == 2


def test_config_show_as_json(config_file: Path) -> None:
    set_key("k-ci-123456789", "-p", "ci")
    shown = run("config", "show", "--json")
    assert shown.returncode == 0
    document = json.loads(shown.stdout)
    assert document["profile"] == {"value": "ci", "source": "default_profile in the config file"}
    assert document["api_key"] == {"value": "**************", "source": 'profile "ci"'}
    assert document["base_url"]["source"] == "default"
    none = run("config", "show", "--json", env={"STRUCTOCR_CONFIG": str(config_file) + ".x"})
    assert none.returncode == 41
    assert json.loads(none.stdout)["api_key"] is None


def test_a_profiles_base_url_changes_without_its_key(config_file: Path) -> None:
    set_key("k-ci-123456789", "-p", "ci")
    moved = run("config", "set-base-url", "https://api.structocr.com/v1", "-p", "ci")
    assert moved.returncode == 0
    assert 'profile "ci" now uses https://api.structocr.com/v1' in moved.stderr
    profile = load_config(config_file).profiles["ci"]
    assert (profile.api_key, profile.base_url) == (
        "k-ci-123456789",
        "https://api.structocr.com/v1",
    )
    back = run("config", "set-base-url", "default", "-p", "ci")
    assert back.returncode == 0
    assert load_config(config_file).profiles["ci"].base_url is None
    assert run("config", "set-base-url", "http://evil.test/v1").returncode == 2
    assert run("config", "set-base-url", "https://x.test/v1", "-p", "nope").returncode == 2

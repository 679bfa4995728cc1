"""TLS is always verified: a server whose certificate comes from a CA the system does not
know fails with exit 60 and a hint; that CA given with --ca-bundle or REQUESTS_CA_BUNDLE
makes it work; nothing (an empty CURL_CA_BUNDLE included) turns verification off."""

from __future__ import annotations

import io
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from structocr_cli.mock.server import MockServer
from tests.conftest import Result, run


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_server(authority: trustme.CA) -> Iterator[MockServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with MockServer(log=io.StringIO(), tls=context) as mock:
        yield mock


@pytest.fixture
def ca_file(authority: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return path


def balance(server: MockServer, *args: str, **env: str) -> Result:
    env = {"STRUCTOCR_API_KEY": "demo", **env}
    return run("balance", "--base-url", server.url, "--json", *args, env=env)


def test_an_unknown_ca_is_exit_60_with_a_hint(https_server: MockServer) -> None:
    assert https_server.url.startswith("https://")
    result = balance(https_server)
    assert result.returncode == 60
    assert "TLS certificate verification failed" in result.stderr
    assert "--ca-bundle" in result.stderr


def test_ca_bundle_option_verifies_the_server(https_server: MockServer, ca_file: Path) -> None:
    result = balance(https_server, "--ca-bundle", str(ca_file))
    assert result.returncode == 0, result.stderr


def test_requests_ca_bundle_verifies_the_server(https_server: MockServer, ca_file: Path) -> None:
    result = balance(https_server, REQUESTS_CA_BUNDLE=str(ca_file))
    assert result.returncode == 0, result.stderr


def test_an_empty_curl_ca_bundle_does_not_turn_verification_off(https_server: MockServer) -> None:
    assert balance(https_server, CURL_CA_BUNDLE="").returncode == 60


def test_a_missing_ca_bundle_is_a_usage_error(tmp_path: Path) -> None:
    result = run("balance", "--api-key", "demo", "--ca-bundle", str(tmp_path / "none.pem"))
    assert result.returncode == 2
    assert "--ca-bundle" in result.stderr

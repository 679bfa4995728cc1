"""A keyring backend for tests: a JSON file named by STRUCTOCR_TEST_KEYRING (shared by the
test and the CLI processes it starts), or memory when unset. Load it with
PYTHON_KEYRING_BACKEND=tests.keyring_backend.TestKeyring."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class TestKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]
    memory: dict[str, str] = {}  # noqa: RUF012 - shared on purpose

    def _load(self) -> dict[str, str]:
        path = os.environ.get("STRUCTOCR_TEST_KEYRING")
        if not path:
            return self.memory
        file = Path(path)
        return json.loads(file.read_text()) if file.exists() else {}

    def _save(self, data: dict[str, str]) -> None:
        path = os.environ.get("STRUCTOCR_TEST_KEYRING")
        if path:
            Path(path).write_text(json.dumps(data))

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError(username)
        self._save(data)

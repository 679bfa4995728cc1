"""Plain-text and JSON output that needs no third-party library (fast paths, errors)."""

from __future__ import annotations

import json
from typing import IO, Any

from structocr_cli.errors import StructocrError
from structocr_cli.keys import redact


def write_json(document: Any, out: IO[str]) -> None:
    # ASCII-only JSON cannot carry a terminal escape sequence, whatever FORCE_COLOR says.
    out.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")


def error_line(error: StructocrError) -> str:
    return redact(f"structocr: error: {error.one_line()}")


def error_document(error: StructocrError) -> str:
    body = {
        "error": {
            "code": error.code,
            "status": error.status,
            "exit_code": int(error.exit_code),
            "message": redact(error.one_line()),
        }
    }
    return json.dumps(body, ensure_ascii=True)

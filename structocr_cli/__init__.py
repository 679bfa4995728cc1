"""structocr: check StructOCR API credits and usage from a terminal, a script or CI.

The Python API, the part of the package that semantic versioning covers (everything else
is internal, and may change in any release)::

    import structocr_cli

    try:
        result = structocr_cli.get_balance(profile="ci")
    except structocr_cli.StructocrError as error:
        raise SystemExit(error.exit_code)  # the CLI's exit code for the same failure
    print(result.account.credits_remaining)

Names are loaded when first used, so ``import structocr_cli`` stays as light as the CLI's
own start: neither typer nor rich is ever imported by the API.
"""

TYPE_CHECKING = False  # typing's flag without importing typing before Ctrl-C is handled
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.2.0"

__all__ = [
    "BadAnswerError",
    "BalanceResult",
    "Check",
    "ConfigError",
    "DeadlineError",
    "ExitCode",
    "HTTPStatusError",
    "NoAnswerError",
    "NoApiKeyError",
    "RedirectError",
    "RefusedURLError",
    "Source",
    "Sources",
    "StructocrError",
    "UnknownProfileError",
    "UsageError",
    "__version__",
    "check_gates",
    "get_balance",
]

_WHERE = {
    "get_balance": "structocr_cli.library",
    "check_gates": "structocr_cli.library",
    "BalanceResult": "structocr_cli.library",
    "Source": "structocr_cli.library",
    "Sources": "structocr_cli.library",
    "Check": "structocr_cli.gates",
}

if TYPE_CHECKING:
    from structocr_cli.api.errors import (
        BadAnswerError,
        ConfigError,
        DeadlineError,
        ExitCode,
        HTTPStatusError,
        NoAnswerError,
        NoApiKeyError,
        RedirectError,
        RefusedURLError,
        StructocrError,
        UnknownProfileError,
        UsageError,
    )
    from structocr_cli.gates import Check
    from structocr_cli.library import BalanceResult, Source, Sources, check_gates, get_balance


def __getattr__(name: str) -> "Any":
    if name not in __all__:
        raise AttributeError(f"module 'structocr_cli' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_WHERE.get(name, "structocr_cli.api.errors"))
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)

"""The help as a terminal shows it: the exit-code list of ``balance --help`` and click's
help wrapped at spaces to the terminal's width. Takes what it needs as arguments; imports
no command module."""

from typing import Any

import typer

_EXIT_CODES = (
    ("0", "success"),
    ("1", "a budget gate was breached"),
    ("2", "usage error: bad option or value, invalid config file, unknown profile, "
          "refused base URL"),
    ("3", "--runway-basis trend with under 24 hours of history (the gate fails closed)"),
    ("40", "HTTP 4xx other than 401/404 (e.g. 403, or 429 once retries are spent)"),
    ("41", "HTTP 401, or no API key found"),
    ("44", "HTTP 404 with the API's own answer: no account for the key"),
    ("50", "HTTP 5xx once retries are spent"),
    ("60", "no HTTP answer: DNS, connection refused or reset, TLS, deadline"),
    ("61", "unusable answer: not JSON, wrong shape, redirect, too large, a 404 that is "
           "not the API's (the URL is not the endpoint)"),
    ("70", "internal error (a bug; rerun with STRUCTOCR_DEBUG=1 and report it)"),
    ("130", "interrupted (Ctrl-C; it ends --watch with 0)"),
)  # fmt: skip


def exit_code_list(width: int) -> str:
    """The exit codes as a list wrapped, at spaces, to ``width`` (click would not rewrap a
    preformatted block, and a terminal breaks its lines anywhere)."""
    import textwrap

    lines = ["\b", "Exit codes:"]
    for code, meaning in _EXIT_CODES:
        lines += textwrap.wrap(
            meaning, width, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7,
            break_long_words=False, break_on_hyphens=False,
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def _wrap_at_spaces() -> None:
    """click's help wrapper breaks at hyphens (--list-\\nfaults) and inside long words (URLs):
    wrap at spaces only. typer's private API (test_typer_private_api fails first on a move)."""
    import textwrap

    from typer._click import _textwrap, formatting

    class AtSpaces(_textwrap.TextWrapper):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(break_on_hyphens=False, break_long_words=False)
            super().__init__(*args, **kwargs)

        # click's own version always cuts a long word; the standard one keeps it whole.
        _handle_long_word = textwrap.TextWrapper._handle_long_word

    if _textwrap.TextWrapper.__name__ == "AtSpaces":  # done already (tests run main often)
        return
    _textwrap.TextWrapper = AtSpaces  # type: ignore[misc]

    # The option column is 30 wide; in a narrow terminal that leaves no room for the help,
    # and a long word (a URL, a field path) would stick out: each description goes under
    # its option instead, indented by 4.
    write_dl = formatting.HelpFormatter.write_dl

    def narrow_aware(self: Any, rows: Any, col_max: int = 30, col_spacing: int = 2) -> None:
        if self.width >= 60:
            write_dl(self, rows, col_max, col_spacing)
            return
        indent = self.current_indent + 4
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}\n")
            for line in textwrap.wrap(second or "", max(self.width - indent, 10),
                                      break_long_words=False, break_on_hyphens=False):  # fmt: skip
                self.write(f"{'':>{indent}}{line}\n")

    formatting.HelpFormatter.write_dl = narrow_aware  # type: ignore[method-assign]


def _plain_required_metavars() -> None:
    """typer shows a required argument as ``{NAME}`` in usage lines, braces that read like
    shell syntax: show ``NAME``, as click and the README do. typer's private API
    (test_typer_private_api fails first on a move)."""
    from typer.core import TyperArgument

    original = TyperArgument.make_metavar
    if getattr(original, "plain", False):  # done already (tests run main often)
        return

    def make_metavar(self: Any, ctx: Any, *, usage: bool = False) -> str:
        text: str = original(self, ctx, usage=usage)
        if self.metavar is not None and text == f"{{{self.metavar}}}":
            return str(self.metavar)
        return text

    make_metavar.plain = True  # type: ignore[attr-defined]
    TyperArgument.make_metavar = make_metavar  # type: ignore[method-assign]


def fit_to_terminal(app: typer.Typer) -> int:
    """Help at this terminal's width: click would not format it narrower than 50 columns (so
    a 40-column terminal broke its lines mid-word). The width, for ``exit_code_list``."""
    import shutil

    _wrap_at_spaces()
    _plain_required_metavars()
    width = max(min(shutil.get_terminal_size().columns, 80) - 2, 30)
    settings = app.info.context_settings
    if isinstance(settings, dict):
        settings["terminal_width"] = width
    return width

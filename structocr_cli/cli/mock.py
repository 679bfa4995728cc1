"""``structocr mock``: a local StructOCR server, from the command line."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from structocr_cli.cli.options import Call, finite


def mock(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            metavar="PORT", min=0, max=65535, help="Port, 0 to 65535; 0 picks a free one."
        ),
    ] = 8787,
    fixtures: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="TOML or JSON file mapping your own test keys to balances.",
            show_default=False,
        ),
    ] = None,
    list_faults: Annotated[
        bool,
        typer.Option(
            "--list-faults",
            help="List the fault keys (each a way the API can fail) and exit.",
            show_default=False,
        ),
    ] = False,
    latency_ms: Annotated[
        float,
        typer.Option(
            "--latency-ms",
            metavar="MS",
            min=0,
            max=60_000,
            callback=finite,
            help="Wait this long before every answer, to rehearse a slow API.",
        ),
    ] = 0,
) -> Call:
    """Run a local StructOCR server for demos and offline tests.

    Prints its base URL first. Demo keys: demo, demo-low, demo-404, demo-500, demo-flaky;
    fault keys (fault-stall, fault-html-404, ...): see --list-faults.
    """

    def run(started: float) -> int:
        from structocr_cli.mock import server as mock

        if list_faults:
            mock.list_faults(sys.stdout)
        else:
            mock.run(host, port, fixtures, sys.stdout, sys.stderr, latency_ms)
        return 0

    return Call(run)


def register(app: typer.Typer) -> None:
    app.command(short_help="Run a local StructOCR server for demos and offline tests.")(mock)

"""The console script's entry point: Ctrl-C is an exit 130 with one line from the first
moment, even while the CLI (and typer) are still being imported."""

import sys
import time


def main() -> int:
    started = time.monotonic()  # the deadline of --timeout counts from here
    try:
        from structocr_cli.cli.app import main as run

        return run(started=started)
    except KeyboardInterrupt:
        print("structocr: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI could not even load: still one line, no traceback
        print(
            f"structocr: error: internal error ({type(exc).__name__} while starting). This is a "
            "bug: "
            "please report it, with the output of the same command run with STRUCTOCR_DEBUG=1",
            file=sys.stderr,
        )
        return 70

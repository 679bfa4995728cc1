"""The console script's entry point: Ctrl-C is an exit 130 with one line from the first
moment, even while the CLI (and typer) are still being imported (see ``cli.interrupts``)."""

import gc
import sys
import time

TYPE_CHECKING = False  # typing's flag, without loading anything before Ctrl-C is handled
if TYPE_CHECKING:
    from collections.abc import Callable


def main() -> int:
    started = time.monotonic()  # the deadline of --timeout counts from here
    stop_watching: Callable[[], None] | None = None
    try:
        from structocr_cli.cli import interrupts

        stop_watching = interrupts.watch()
        # Start-up (typer, requests, the command's modules) creates tens of thousands of
        # objects that live as long as the process, and the cyclic garbage collector would
        # walk them again and again while they are made: about 6% of a balance check.
        # Nothing at start-up needs it. cli.app turns it back on before any run but one key
        # checked once or one read of the history (Call.ends).
        gc.disable()
        from structocr_cli.cli.app import main as run

        return run(started=started)
    except KeyboardInterrupt:
        print("structocr: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI could not even load: still one line, no traceback
        if _interrupted(exc):
            print("structocr: interrupted", file=sys.stderr)
            return 130
        print(
            f"structocr: error: internal error ({type(exc).__name__} while starting). This is a "
            "bug: "
            "please report it, with the output of the same command run with STRUCTOCR_DEBUG=1",
            file=sys.stderr,
        )
        return 70
    finally:
        if stop_watching is not None:
            stop_watching()


def _interrupted(exc: BaseException) -> bool:
    interrupts = sys.modules.get("structocr_cli.cli.interrupts")
    return interrupts is not None and bool(interrupts.interrupted(exc))

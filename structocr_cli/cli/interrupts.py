"""Ctrl-C as one exit 130, even where CPython cannot pass a KeyboardInterrupt on as it is.

A Ctrl-C raises KeyboardInterrupt wherever Python happens to be. Inside a weakref callback
or a ``__del__`` (the import system's module locks run one on every import) it is printed
as "Exception ignored" and dropped, and the command went on; inside parts of the import
system it becomes another error (a RuntimeError from ``__set_name__``, a TypeError from an
ImportError that could not be made). So while a command runs, each Ctrl-C is noted, a
dropped one is delivered again, and an error that follows one is the interrupt
(``interrupted``). Standard library only: it is set up before anything else loads.
"""

import sys
import time

TYPE_CHECKING = False  # typing's flag, without loading anything before Ctrl-C is handled
if TYPE_CHECKING:
    from collections.abc import Callable

_seen = False
"""A Ctrl-C came since ``watch`` started."""


def interrupted(exc: BaseException) -> bool:
    """``exc`` is a Ctrl-C, was raised while handling or because of one, or came after one."""
    pending: list[BaseException | None] = [exc]
    checked: set[int] = set()
    while pending:
        one = pending.pop()
        if one is None or id(one) in checked:
            continue
        if isinstance(one, KeyboardInterrupt):
            return True
        checked.add(id(one))
        pending += [one.__cause__, one.__context__]
    return _seen


def watch() -> "Callable[[], None]":
    """Note each Ctrl-C and deliver a dropped one again, until the returned function is
    called. SIGINT is taken only from Python's own handler: not where it is ignored (as
    under nohup), nor from a thread other than the main one."""
    global _seen  # noqa: PLW0603 - the process's one SIGINT
    _seen = False
    hook, sys.unraisablehook = sys.unraisablehook, _dropped
    import signal  # after the hook: importing it (and enum) is a few ms a Ctrl-C may land in

    previous = signal.getsignal(signal.SIGINT)
    owned = False
    if previous is signal.default_int_handler:
        try:
            signal.signal(signal.SIGINT, _note)
            owned = True
        except ValueError:  # not the main thread
            pass

    def stop() -> None:
        global _seen  # noqa: PLW0603
        _seen = False  # read by the funnels before this; a later run starts afresh
        sys.unraisablehook = hook
        if owned and signal.getsignal(signal.SIGINT) is _note:
            signal.signal(signal.SIGINT, previous)

    return stop


def _note(signum: int, frame: object) -> None:
    global _seen  # noqa: PLW0603
    _seen = True
    raise KeyboardInterrupt


def _dropped(unraisable: "sys.UnraisableHookArgs") -> None:
    """A KeyboardInterrupt Python could not raise: delivered again from another thread once
    this hook has returned (raised in here, it would be dropped again)."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        import _thread

        _thread.start_new_thread(_interrupt_soon, ())
        return
    sys.__unraisablehook__(unraisable)


def _interrupt_soon() -> None:
    import _thread

    time.sleep(0.002)
    _thread.interrupt_main()  # the main thread's SIGINT handler runs at its next step

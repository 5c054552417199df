"""Ctrl-C on the command line: the first one stops the command, any later one is ignored.

Python's own SIGINT handler raises ``KeyboardInterrupt`` every time. A second Ctrl-C pressed
while the first one is being handled (a run folder being cleaned up, the final atomic writes,
``actscope: interrupted`` being printed, the interpreter exiting) then raises inside that
handling and prints a traceback, and could stop the clean-up half-way. So the first SIGINT
raises ``KeyboardInterrupt`` as usual and sets SIGINT to ignored: the clean-up finishes, the
one line is printed, the exit status stays 130. SIGTERM keeps its default (the process ends
without a traceback; ``fit --resume`` continues from the last checkpoint).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["QuietInterrupts"]


class QuietInterrupts:
    """While active: the first SIGINT raises KeyboardInterrupt, later ones are ignored."""

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: Any = None
        self._active = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # before raising: no second traceback
        self.interrupted = True
        raise KeyboardInterrupt

    def start(self) -> QuietInterrupts:
        """Install the handler (only in the main thread: signals go nowhere else)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._active = True
        return self

    def ignore(self) -> None:
        """From now on every SIGINT is ignored (the command is already stopping)."""
        if self._active:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self.interrupted = True

    def stop(self, keep_ignoring: bool) -> None:
        """Put the previous handler back, unless ``keep_ignoring`` after an interrupt (the
        process is about to exit: a Ctrl-C there would print a traceback)."""
        if not self._active or (keep_ignoring and self.interrupted):
            return
        signal.signal(signal.SIGINT, self._previous)
        self._active = False

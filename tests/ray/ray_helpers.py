"""Fault injection for the Ray tests: a worker hook that SIGKILLs its own process once.

The hook is called by zsvl's Ray workers as ``hook(stage, unit)`` (stage "encode", "fill",
"eval" or "eval-done"). The first call that matches ``stage`` and ``unit`` leaves a marker file
(so a retried attempt does not die again), records the pid, and kills the process, either at
once or ``delay`` seconds later from a timer thread while the work goes on.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path


class KillOnce:
    def __init__(
        self,
        marker_dir: str | Path,
        stage: str,
        unit: int,
        delay: float = 0.0,
        snapshot: str | None = None,
    ) -> None:
        self.marker_dir, self.stage, self.unit = str(marker_dir), stage, unit
        self.delay, self.snapshot = delay, snapshot

    def marker(self) -> Path:
        return Path(self.marker_dir) / f"killed-{self.stage}-{self.unit}"

    def __call__(self, stage: str, unit: int) -> None:
        if stage != self.stage or unit != self.unit:
            return
        try:
            fd = os.open(self.marker(), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        if self.snapshot is not None:  # keep the bytes of a file as they were before the kill
            Path(self.marker_dir, "snapshot").write_bytes(Path(self.snapshot).read_bytes())
        if self.delay:
            threading.Timer(self.delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
        else:
            os.kill(os.getpid(), signal.SIGKILL)


class Hooks:
    """Several hooks in one callable."""

    def __init__(self, *hooks: KillOnce) -> None:
        self.hooks = hooks

    def __call__(self, stage: str, unit: int) -> None:
        for hook in self.hooks:
            hook(stage, unit)

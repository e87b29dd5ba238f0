"""Progress on stderr, the one way every long zsvl job reports it.

Bars are tqdm bars on stderr; a finished unit of work (a run, a shard, a dataset) gets one summary
line. Both show only when stderr is a terminal (or ``ZSVL_PROGRESS=1`` forces them, for logs), and
never after :func:`set_quiet` (the CLI's ``--quiet``) or with ``ZSVL_QUIET=1``.

    with progress_bar(total=len(runs), desc="eval", unit="run") as bar:
        for run in runs:
            ...
            bar.update(1)
            progress_line(f"ToyFine gda 16-shot seed 1: 57.2 % in 3.1 s")
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["progress_bar", "progress_line", "progress_enabled", "set_quiet"]

_quiet = False


def set_quiet(quiet: bool = True) -> None:
    """Silence (or restore) every bar and summary line of this process."""
    global _quiet
    _quiet = bool(quiet)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def progress_enabled() -> bool:
    """True when progress should be shown: not quiet, and stderr is a terminal (or forced)."""
    if _quiet or _env_true("ZSVL_QUIET"):
        return False
    if _env_true("ZSVL_PROGRESS"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    leave: bool = False,
    unit_scale: bool = False,
) -> Any:
    """A tqdm bar on stderr (rate and ETA included); a no-op bar when progress is off."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        unit_scale=unit_scale,
        file=sys.stderr,
        disable=not progress_enabled(),
        dynamic_ncols=True,
    )


def progress_line(message: str) -> None:
    """One summary line on stderr for a finished unit of work, written above any open bar."""
    if not progress_enabled():
        return
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)

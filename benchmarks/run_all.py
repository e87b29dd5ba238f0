"""Run every benchmarks/bench_*.py in turn (one process each) and print their summaries.

Each benchmark writes its numbers to benchmarks/results/<name>.json; the README quotes them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    only = set(sys.argv[1:])
    failed = []
    scripts = [
        s
        for s in sorted(here.glob("bench_*.py"))
        if not only or s.stem in only or s.stem.removeprefix("bench_") in only
    ]
    start = time.perf_counter()
    for i, script in enumerate(scripts, 1):
        # progress on stderr: which benchmark, out of how many, time so far
        elapsed = time.perf_counter() - start
        print(f"[{i}/{len(scripts)}] {script.stem} ({elapsed:.0f} s so far)", file=sys.stderr)
        print(f"== {script.stem}", flush=True)
        t = time.perf_counter()
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(script.stem)
        print(
            f"[{i}/{len(scripts)}] {script.stem} done in {time.perf_counter() - t:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

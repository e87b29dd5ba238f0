"""Benchmark: the same toy suite run twice, cold caches then warm (only the scoring runs again).

Both runs write to fresh results folders (so no record is skipped); the second one finds every
split's features, every augmented view and every text embedding in the caches under a private
ZSVL_HOME. Reports cold and warm wall time and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default="zeroshot,cbd,fudd,tip,gda")
    parser.add_argument("--shots", default="0,1,16")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "suite_warm.json"))
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="zsvl-bench-home-")
    os.environ["ZSVL_HOME"] = home
    from zsvl.eval.evaluate import evaluate
    from zsvl.toy.suite import build_suite, default_suite_root

    root = build_suite(default_suite_root())  # data generation is not part of either timing
    kwargs = {
        "methods": args.methods.split(","),
        "shots": [int(k) for k in args.shots.split(",")],
        "seeds": [int(s) for s in args.seeds.split(",")],
    }
    times = []
    for run in ("cold", "warm"):
        out = Path(home) / f"results-{run}"
        start = time.perf_counter()
        outcome = evaluate("toy", model="toy", data_root=root, out=out, **kwargs)
        times.append(time.perf_counter() - start)
        records = outcome.written
        assert outcome.ok, outcome.summary()
    result = {
        "benchmark": "suite_warm",
        "suite": "toy",
        **kwargs,
        "runs": len(records),
        "cold_s": times[0],
        "warm_s": times[1],
        "cold_over_warm": times[0] / times[1],
        "loadavg": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"toy suite ({len(records)} runs): cold {times[0]:.1f}s, warm {times[1]:.1f}s, "
        f"ratio {result['cold_over_warm']:.1f}x"
    )


if __name__ == "__main__":
    main()

"""``zsvl eval --ray``: a suite's (dataset, method, shots, seed) runs spread over a Ray cluster.

Each run is executed by the single-machine runner (:func:`zsvl.eval.runner.run_suite` on a suite
narrowed to that one run) inside an actor that holds the encoder, so records are the same JSON
files at the same paths. Before the runs, one task per dataset encodes its whole splits into
the shared feature cache (``$ZSVL_HOME``, which must be shared storage for the nodes to share
it; otherwise each node encodes its own copy once). Actors are created with
``max_restarts=-1, max_task_retries=-1``: a killed worker's run is re-run by Ray, and because the
runner skips runs whose record exists (records are written atomically), no record is written
twice.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zsvl._progress import progress_bar, progress_line

__all__ = ["evaluate_on_ray", "EvalWorker"]

logger = logging.getLogger(__name__)


def _plan(suite: Any) -> list[tuple[Any, str, int, int | None]]:
    """Every (dataset info, method, shots, seed) of the suite, as the runner enumerates them."""
    from zsvl.eval.runner import plan_runs

    return [(r.dataset, r.method, r.shots, r.seed) for r in plan_runs(suite)]


class EvalWorker:
    """A Ray actor class: holds the encoder, warms split features, executes single runs."""

    def __init__(
        self, model: str, device: str | None, hook: Callable[[str, int], None] | None = None
    ) -> None:
        from zsvl.embed import load_model

        self.encoder = load_model(model, device=device)
        self.model = model
        self.hook = hook
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def warm(self, info: Any, data_root: str) -> str:
        """Encode the dataset's whole splits into the feature cache; returns what happened."""
        from zsvl.data.datasets import load_dataset
        from zsvl.eval.features import split_features

        start = time.perf_counter()
        try:
            splits = load_dataset(info, data_root)
            for split in splits.values():
                split_features(self.encoder, info.name, split)
        except Exception as exc:  # noqa: BLE001 - the runs record the dataset's failure
            return f"{info.name}: not encoded ({exc})"
        return f"{info.name}: split features ready in {time.perf_counter() - start:.1f} s"

    def run(
        self,
        unit: int,
        suite: Any,
        data_root: str,
        out: str,
        workdir: str | None,
        retry_failed: bool = False,
    ) -> dict[str, Any]:
        """Execute the one run of ``suite``; returns its records (none when it was already
        recorded, e.g. by an attempt whose worker died after writing) and the worker name."""
        from zsvl.eval.runner import run_suite

        if self.hook is not None:
            self.hook("eval", unit)
        start = time.perf_counter()
        records = run_suite(
            suite,
            data_root=data_root,
            encoder=self.encoder,
            out=out,
            model_spec=self.model,
            workdir=workdir,
            retry_failed=retry_failed,
        )
        if self.hook is not None:
            self.hook("eval-done", unit)
        return {
            "unit": unit,
            "records": records,
            "worker": self.name,
            "seconds": time.perf_counter() - start,
        }


def evaluate_on_ray(
    suite: Any = "toy",
    *,
    model: str = "toy",
    data_root: str | Path | None = None,
    out: str | Path = "results",
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    num_cpus: int | None = None,
    workdir: str | Path | None = None,
    hook: Callable[[str, int], None] | None = None,
    retry_failed: bool = False,
    **overrides: Any,
) -> Any:
    """Run a suite on a Ray cluster; the same records and the same
    :class:`~zsvl.eval.evaluate.EvalOutcome` as :func:`zsvl.eval.evaluate.evaluate`.

    address, num_cpus : see :func:`zsvl.distributed.cluster.connect`. actors : eval actors
    (default one per GPU, else one per CPU). The outcome's failures are read back from ``out``, so
    runs recorded by an earlier or a retried attempt count once.
    """
    from zsvl.distributed.cluster import RayClusterError, cluster_gpus, connect
    from zsvl.eval.evaluate import EvalOutcome, _check_layout, _resolve
    from zsvl.eval.records import read_record
    from zsvl.eval.runner import pending_runs, plan_runs

    ray = connect(address, num_cpus=num_cpus)  # first: a wrong address fails before any work
    chosen, root = _resolve(suite, data_root, overrides)
    out = Path(out).resolve()
    planned = plan_runs(chosen)
    pending = pending_runs(planned, out, retry_failed=retry_failed)
    if pending:
        _check_layout(pending, root)
    todo = [(r.dataset, r.method, r.shots, r.seed) for r in pending]
    from ray.util import ActorPool

    gpus = gpus_per_actor if gpus_per_actor is not None else (1.0 if cluster_gpus(ray) > 0 else 0.0)
    n = actors or max(
        1,
        int(cluster_gpus(ray) // gpus) if gpus > 0 else int(ray.cluster_resources().get("CPU", 1)),
    )
    cls = ray.remote(EvalWorker).options(
        num_cpus=1, num_gpus=gpus, max_restarts=-1, max_task_retries=-1
    )
    device = "cuda" if gpus > 0 else "cpu"
    workers = [cls.remote(str(model), device, hook) for _ in range(min(n, max(1, len(todo))))]
    pool = ActorPool(workers)
    try:
        datasets = {r[0].name: r[0] for r in todo}
        for line in pool.map_unordered(
            lambda a, info: a.warm.remote(info, str(root)), list(datasets.values())
        ):
            progress_line(line)
        units = [
            dataclasses.replace(
                chosen,
                datasets=(info,),
                methods=(method,),
                shots=(k,),
                seeds=(s,) if s is not None else chosen.seeds[:1],
            )
            for info, method, k, s in todo
        ]
        with progress_bar(total=len(units), desc="eval", unit="run") as bar:
            for r in pool.map_unordered(
                lambda a, v: a.run.remote(
                    v[0], v[1], str(root), str(out), str(workdir) if workdir else None, retry_failed
                ),
                list(enumerate(units)),
            ):
                bar.update(1)
                info, method, k, s = todo[r["unit"]]
                progress_line(
                    f"{info.name} {method} k={k} seed={s}: {len(r['records'])} "
                    f"record(s) on {r['worker']} in {r['seconds']:.1f} s"
                )
    except ray.exceptions.RayError as exc:
        raise RayClusterError(f"Running the suite on the cluster failed: {exc}") from exc
    finally:
        for w in workers:
            ray.kill(w)
    written = [rec for spec in pending if (rec := read_record(spec.path(out))) is not None]
    return EvalOutcome.collect(out, planned, written)

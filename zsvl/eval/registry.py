"""The one place where evaluation methods are registered; the suite runner only reads it.

A method is a function ``run(ctx: MethodContext) -> MethodResult``. Register it with::

    @register("tip", uses_shots=True, description="Tip-Adapter (training-free cache)")
    def _tip(ctx): ...

and it appears in ``zsvl eval --methods tip`` and in reports, without touching the runner.
Look methods up through :mod:`zsvl.eval.catalog`, which loads the built-in ones first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.classes import ClassSet
from zsvl.data.datasets import DatasetInfo
from zsvl.data.splits import Split
from zsvl.models.base import Encoder

__all__ = ["MethodContext", "MethodResult", "MethodEntry", "register", "REGISTERED"]


@dataclass(frozen=True)
class MethodContext:
    """Everything a method may use for one (dataset, shots, seed). Never the test labels."""

    encoder: Encoder
    dataset: DatasetInfo
    classes: ClassSet
    templates: tuple[str, ...]  # the dataset's prompt templates
    X_test: np.ndarray  # (n_test, dim) test image embeddings
    test_sources: list[str]  # the file of each test row (for explanations)
    train: Split  # paths and labels of the train split (few-shot methods sample from it)
    val: Split  # the val split (few-shot validation draws min(K, 4) per class from it)
    features: Callable[[Split], tuple[np.ndarray, np.ndarray]]  # embeddings, labels of a split
    shots: int  # labelled images per class (0: zero-shot)
    seed: int
    params: dict[str, Any] = field(default_factory=dict)  # per-method parameters (suite file)
    workdir: Path | None = None  # scratch space for the run (LLM caches, manifests)
    data_root: Path | None = None  # the suite's data root (toy caption corpus, indexes)


@dataclass
class MethodResult:
    """Scores for the test images and what the method chose on its own."""

    scores: np.ndarray | None  # (n_test, n_classes); None for methods that name, not rank
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # method-specific extras
    protocol: str = "zero-shot"  # "zero-shot", "leakage-free", or a named reproduction mode
    explanations: list[dict[str, Any]] = field(default_factory=list)  # per-example, optional
    # name -> (scores (n_test, C), k): the runner reports top-k accuracy of these as a metric
    # (for example FuDD's stage-1 top-k recall, the ceiling of its re-ranking)
    extra_scores: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)
    # predicted names per test image (vocabulary-free methods): the runner scores them against
    # the true class names with the VIC metrics (cluster accuracy, semantic IoU and similarity)
    predicted_names: list[str] | None = None
    # the metric the report's main table shows for this method; None: "top1" for scores,
    # "cluster_accuracy" for predicted names; metrics-only methods (scores and names both None,
    # e.g. retrieval) must name one of their ``metrics``
    primary_metric: str | None = None
    # name -> class ids: the runner adds "top1_<name>", top-1 over all classes on the test images
    # whose true class is in the subset (for example the new classes of a base-to-new split)
    class_subsets: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodEntry:
    name: str
    run: Callable[[MethodContext], MethodResult]
    uses_shots: bool  # True: runs for shots > 0; False: zero-shot, runs once at shots 0
    seeded: bool  # True: results depend on the seed (random controls, shot sampling)
    description: str


REGISTERED: dict[str, MethodEntry] = {}


def register(
    name: str, *, uses_shots: bool = False, seeded: bool | None = None, description: str = ""
) -> Callable[[Callable[[MethodContext], MethodResult]], Callable[[MethodContext], MethodResult]]:
    """Decorator adding a method to the registry under ``name``."""

    def wrap(
        fn: Callable[[MethodContext], MethodResult],
    ) -> Callable[[MethodContext], MethodResult]:
        REGISTERED[name] = MethodEntry(
            name, fn, uses_shots, uses_shots if seeded is None else seeded, description
        )
        return fn

    return wrap

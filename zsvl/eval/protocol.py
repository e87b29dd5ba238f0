"""Choosing adapter hyperparameters without looking at the test split.

Modes (``mode=``):

- ``"fewshot-val"``: search on the few-shot validation set (CoOp: min(K, 4) images per class
  drawn from the val split), passed as ``val=(X_val, y_val)``;
- ``"cv"``: stratified K-fold cross-validation on the shots themselves (no validation images
  needed): each fold's held-out images are scored by an adapter fitted on the other folds;
- ``"auto"`` (default): ``"fewshot-val"`` when ``val`` is given, else ``"cv"``.

The tuning functions take no test data at all, so the test split cannot be seen. The published
repositories' settings are available only as named reproduction modes that log a warning and
take the search set explicitly as ``search_set=(X, y)``:

- ``"reference-full-val"``: search on the full validation split (Tip-Adapter, GDA);
- ``"reference-test"``: search on the test split (Tip-Adapter's and GDA's ImageNet setting).

Each tuner returns the adapter refitted on all shots with the chosen values and a
:class:`SearchResult`; :func:`fit_and_evaluate` wraps a tuner and scores the test split once.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings, l2_normalize
from zsvl.errors import InvalidParameterError
from zsvl.methods.grid_search import (
    GDA_ALPHAS,
    linear_grid_counts,
    tip_grid_counts,
    tip_reference_grid,
)

__all__ = [
    "MODES",
    "REPRODUCTION_MODES",
    "SearchResult",
    "resolve_mode",
    "fold_ids",
    "tune_tip",
    "tune_gda",
    "tune_gda_em",
    "fit_and_evaluate",
]

logger = logging.getLogger(__name__)

MODES = ("auto", "fewshot-val", "cv")
REPRODUCTION_MODES = {
    "reference-full-val": "searches on the full validation split, not a few-shot one",
    "reference-test": "searches on the TEST split, so the test accuracy is optimistic",
}
TIP_GRID = tip_reference_grid(scale=(7.0, 3.0), steps=(200, 20))  # Tip-Adapter's ImageNet grid


@dataclass(frozen=True)
class SearchResult:
    """The outcome of one hyperparameter search."""

    best: dict[str, float]  # chosen value of each searched parameter
    score: float  # top-1 (%) of the chosen setting on the search set
    scores: np.ndarray  # top-1 (%) over the grid, one axis per key of ``grid`` (in order)
    grid: dict[str, np.ndarray]  # the values tried per parameter
    mode: str  # "fewshot-val", "cv", "reference-full-val", "reference-test" or "fixed"
    n_search: int  # images scored per grid point (summed over folds in "cv")
    notes: list[str] = field(default_factory=list)  # warnings raised during the search


def resolve_mode(mode: str, *, val: Any, search_set: Any) -> str:
    """Check ``mode`` against the sets given; warn for reproduction modes."""
    if mode in REPRODUCTION_MODES:
        if search_set is None:
            raise InvalidParameterError(
                f"mode={mode!r} needs search_set=(X, y): the split that the reference code "
                f"searched on ({REPRODUCTION_MODES[mode]})."
            )
        logger.warning(
            "Reproduction mode %r: %s; do not report it as a few-shot result.",
            mode,
            REPRODUCTION_MODES[mode],
        )
        return mode
    if mode not in MODES:
        raise InvalidParameterError(
            f"mode must be one of {', '.join(MODES + tuple(REPRODUCTION_MODES))}. Got {mode!r}."
        )
    if search_set is not None:
        raise InvalidParameterError(
            "search_set is only for the reproduction modes 'reference-full-val' and "
            "'reference-test'; pass the few-shot validation set as val=(X_val, y_val)."
        )
    if mode == "auto":
        return "fewshot-val" if val is not None else "cv"
    if mode == "fewshot-val" and val is None:
        raise InvalidParameterError("mode='fewshot-val' needs val=(X_val, y_val).")
    return mode


def fold_ids(labels: np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold of each image (n,), from scikit-learn's shuffled, seeded ``StratifiedKFold``: a
    class's images are spread over the folds (distinct folds when it has at most ``n_folds``)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = np.asarray(labels)
    if len(labels) < n_folds:  # too few images to split: one image per fold
        return np.arange(len(labels), dtype=np.int64)
    folds = np.zeros(len(labels), dtype=np.int64)
    stratify = np.bincount(labels).max() >= n_folds  # else: one shot per class, plain folds
    kind = StratifiedKFold if stratify else KFold
    splitter = kind(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # classes with fewer shots than folds are expected here
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, held) in enumerate(splitter.split(np.zeros((len(labels), 1)), labels)):
            folds[held] = fold
    return folds


def _shot_arrays(shots: Any, *, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(views (n, V, D), plain (n, D)) from ShotEmbeddings or an array (n, D) / (n, V, D).

    raw : when the shots carry ``view_norms`` (n, V), return the raw (unnormalised) views, so
    that Tip-Adapter's keys are normalize(mean of raw views) as in its reference code.
    """
    views = getattr(shots, "views", shots)
    if hasattr(views, "detach"):
        views = views.detach().cpu().numpy()
    views = np.asarray(views, dtype=np.float32)
    if views.ndim == 2:
        views = views[:, None, :]
    norms = getattr(shots, "view_norms", None)
    if raw and norms is not None:
        views = views * np.asarray(norms, dtype=np.float32)[:, :, None]
    plain = getattr(shots, "plain", None)
    plain = l2_normalize(views.mean(1)) if plain is None else as_embeddings(plain, name="plain")
    return views, plain


def _search(
    base: Any,
    count: Callable[[Callable[[dict[str, Any]], Any], Any, np.ndarray], np.ndarray],
    shots: Any,
    y: np.ndarray,
    *,
    val: tuple[Any, Any] | None,
    search_set: tuple[Any, Any] | None,
    mode: str,
    n_folds: int,
    seed: int,
    raw_views: bool = False,
) -> tuple[np.ndarray, int, str, list[str]]:
    """Grid counts on the search set chosen by ``mode``.

    ``base`` is the unfitted adapter; ``count(fit, X, y)`` returns the grid counts on (X, y),
    where ``fit(fixed)`` fits a clone of ``base`` with the parameters ``fixed`` set, on the
    shots of the current fold (all shots outside "cv").
    """
    mode = resolve_mode(mode, val=val, search_set=search_set)
    views, plain = _shot_arrays(shots, raw=raw_views)
    y = np.asarray(y)
    notes: list[str] = []
    if mode != "cv":
        labelled = search_set if search_set is not None else val
        assert labelled is not None  # resolve_mode: every mode but "cv" has a labelled set
        X_s, y_s = labelled[0], np.asarray(labelled[1])
        if mode == "fewshot-val" and len(y_s) and np.bincount(y_s).max() > 4:
            notes.append(
                "the validation set has more than 4 images per class; CoOp's few-shot "
                "validation takes min(K, 4)"
            )
            logger.warning("fewshot-val: %s.", notes[-1])

        def fit_all(fixed: dict[str, Any]) -> Any:
            return _with(base, fixed).fit(views, y)

        return count(fit_all, X_s, y_s), len(y_s), mode, notes
    per_class = np.bincount(y).max() if len(y) else 0
    folds_n = int(min(n_folds, max(per_class, 2)))
    if per_class < 2:
        notes.append(
            "one shot per class: every held-out image's class is missing from the "
            "cache it is scored against"
        )
        logger.warning("cv: %s.", notes[-1])
    folds = fold_ids(y, folds_n, seed)
    total, n = None, 0
    for f in range(folds_n):
        held = folds == f
        if held.all() or not held.any():
            continue

        def fit_fold(fixed: dict[str, Any], keep: np.ndarray = ~held) -> Any:
            return _with(base, fixed).fit(views[keep], y[keep])

        counts = count(fit_fold, plain[held], y[held])
        total = counts if total is None else total + counts
        n += int(held.sum())
    if total is None:
        raise InvalidParameterError(
            f"cv: no usable fold among {len(y)} shots; pass val=(X_val, y_val) instead."
        )
    return total, n, mode, notes


def _result(
    counts: np.ndarray, n: int, grid: dict[str, np.ndarray], mode: str, notes: list[str]
) -> SearchResult:
    scores = 100.0 * counts / max(n, 1)
    best_at = np.unravel_index(int(np.argmax(counts)), counts.shape)  # first max, loop order
    best = {name: float(values[i]) for (name, values), i in zip(grid.items(), best_at, strict=True)}
    return SearchResult(best, float(scores[best_at]), scores, grid, mode, n, notes)


def _with(base: Any, fixed: dict[str, Any]) -> Any:
    """An unfitted clone of ``base`` with the parameters ``fixed`` set (collaborators shared)."""
    from sklearn.base import clone

    return clone(base).set_params(**fixed)


def _tune(
    base: Any,
    count: Callable[[Callable[[dict[str, Any]], Any], Any, np.ndarray], np.ndarray],
    grid: dict[str, np.ndarray],
    shots: Any,
    y: Any,
    **search: Any,
) -> tuple[Any, SearchResult]:
    """Search ``grid`` (see :func:`_search`), then fit a clone of ``base`` with the best values
    on all the shots."""
    y = np.asarray(y)
    counts, n, used, notes = _search(base, count, shots, y, **search)
    result = _result(counts, n, grid, used, notes)
    views, _ = _shot_arrays(shots, raw=search.get("raw_views", False))
    return _with(base, result.best).fit(views, y), result


def tune_tip(
    zero_shot: Any,
    shots: Any,
    y: Any,
    *,
    val: tuple[Any, Any] | None = None,
    mode: str = "auto",
    search_set: tuple[Any, Any] | None = None,
    betas: Sequence[float] | None = None,
    alphas: Sequence[float] | None = None,
    gammas: Sequence[float] = (0.0,),
    n_folds: int = 4,
    seed: int = 0,
    **params: Any,
) -> tuple[Any, SearchResult]:
    """Choose Tip-Adapter's beta, alpha (and Tip-X gamma) without the test split.

    shots : ShotEmbeddings (views (n, V, D) and plain (n, D)) or an array (n, [V,] D). When
        the shots carry ``view_norms`` (n, V), the keys average the raw views (the reference).
    y : (n,) labels. val : the few-shot validation set (X_val (m, D), y_val (m,)).
    betas, alphas : default Tip-Adapter's 200 x 20 ImageNet grid. ``params`` go to TipAdapter.
    """
    from zsvl.methods.tip import TipAdapter

    beta_grid = TIP_GRID["beta"] if betas is None else np.asarray(betas, dtype=float)
    alpha_grid = TIP_GRID["alpha"] if alphas is None else np.asarray(alphas, dtype=float)
    gamma_grid = np.asarray(gammas, dtype=float)

    base = TipAdapter(zero_shot, **params)

    def count(fit: Callable[[dict[str, Any]], Any], X: Any, yy: np.ndarray) -> np.ndarray:
        return tip_grid_counts(
            fit({}), X, yy, betas=beta_grid, alphas=alpha_grid, gammas=gamma_grid
        )

    grid = {"beta": beta_grid, "alpha": alpha_grid, "gamma": gamma_grid}
    return _tune(
        base,
        count,
        grid,
        shots,
        y,
        val=val,
        search_set=search_set,
        mode=mode,
        n_folds=n_folds,
        seed=seed,
        raw_views=True,
    )


def tune_gda(
    zero_shot: Any,
    shots: Any,
    y: Any,
    *,
    val: tuple[Any, Any] | None = None,
    mode: str = "auto",
    search_set: tuple[Any, Any] | None = None,
    alphas: Sequence[float] = GDA_ALPHAS,
    ridges: Sequence[float] = (1.0,),
    n_folds: int = 4,
    seed: int = 0,
    **params: Any,
) -> tuple[Any, SearchResult]:
    """Choose GDA's alpha (from GDA's grid) and optionally the ridge multiplier, test unseen.

    shots : ShotEmbeddings or an array (n, [V,] D), every view a sample; y : (n,) labels.
    """
    from zsvl.methods.gda import GDAAdapter

    alpha_grid = np.asarray(alphas, dtype=float)
    ridge_grid = np.asarray(ridges, dtype=float)

    base = GDAAdapter(zero_shot, **params)

    def count(fit: Callable[[dict[str, Any]], Any], X: Any, yy: np.ndarray) -> np.ndarray:
        rows = []
        for ridge in ridge_grid:
            fitted = fit({"ridge": float(ridge)})
            rows.append(
                linear_grid_counts(
                    fitted.zero_shot_logits(X),
                    fitted.gda_logits(X),
                    yy,
                    alpha_grid,
                    device=fitted.device_,
                )
            )
        return np.stack(rows)

    grid = {"ridge": ridge_grid, "alpha": alpha_grid}
    return _tune(
        base,
        count,
        grid,
        shots,
        y,
        val=val,
        search_set=search_set,
        mode=mode,
        n_folds=n_folds,
        seed=seed,
    )


def tune_gda_em(
    zero_shot: Any,
    X_unlabelled: Any,
    *,
    val: tuple[Any, Any] | None = None,
    mode: str = "auto",
    search_set: tuple[Any, Any] | None = None,
    alphas: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0),
    max_iters: Sequence[int] = (0, 1, 2, 5, 10, 20),
    **params: Any,
) -> tuple[Any, SearchResult]:
    """Transductive GDA-EM on unlabelled features; alpha and max_iter from labelled val data.

    Without ``val`` (and no reproduction ``search_set``) nothing labelled exists: the adapter
    is fitted with ``params`` (default alpha=1, max_iter=10) and the result has mode "fixed".
    """
    from sklearn.base import clone

    from zsvl.methods.gda_em import GDAEMAdapter

    base = GDAEMAdapter(zero_shot, **params)
    if val is None and search_set is None:
        adapter = clone(base).fit(X_unlabelled)
        fixed = {"alpha": float(adapter.alpha), "max_iter": float(adapter.max_iter)}
        return adapter, SearchResult(
            fixed,
            float("nan"),
            np.zeros((1, 1)),
            {k: np.array([v]) for k, v in fixed.items()},
            "fixed",
            0,
        )
    used = resolve_mode(
        "fewshot-val" if mode in ("auto", "cv") else mode, val=val, search_set=search_set
    )
    labelled = search_set if search_set is not None else val
    assert labelled is not None  # checked above
    X_s, y_s = labelled
    alpha_grid = np.asarray(alphas, dtype=float)
    iters = np.asarray(max_iters, dtype=int)
    rows = []
    for it in iters:
        adapter = _with(base, {"max_iter": int(it)}).fit(X_unlabelled)
        rows.append(
            linear_grid_counts(
                adapter.zero_shot_logits(X_s),
                adapter.gda_logits(X_s),
                y_s,
                alpha_grid,
                device=adapter.device_,
            )
        )
    result = _result(np.stack(rows), len(y_s), {"max_iter": iters, "alpha": alpha_grid}, used, [])
    best = {"max_iter": int(result.best["max_iter"]), "alpha": result.best["alpha"]}
    return _with(base, best).fit(X_unlabelled), result


def fit_and_evaluate(
    method: str,
    zero_shot: Any,
    shots: Any,
    y: Any,
    *,
    test: tuple[Any, Any],
    val: tuple[Any, Any] | None = None,
    mode: str = "auto",
    search_set: tuple[Any, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Tune ``method`` ("tip", "tip-x", "gda", "gda-em") without the test split, then score
    ``test = (X_test, y_test)`` once. Returns a flat record (primary metric ``top1``).

    The tuner receives the shots, ``val`` and (reproduction modes only) ``search_set``; the
    test split is used after the search, and by "gda-em" only as unlabelled features.
    """
    from zsvl.eval.metrics import topk_accuracy

    start = time.perf_counter()
    X_test, y_test = test
    if method in ("tip", "tip-x"):
        if method == "tip-x":
            kwargs.setdefault("gammas", (0.0, 0.1, 0.3, 1.0, 3.0))
        adapter, result = tune_tip(
            zero_shot, shots, y, val=val, mode=mode, search_set=search_set, **kwargs
        )
    elif method == "gda":
        adapter, result = tune_gda(
            zero_shot, shots, y, val=val, mode=mode, search_set=search_set, **kwargs
        )
    elif method == "gda-em":
        adapter, result = tune_gda_em(
            zero_shot, X_test, val=val, mode=mode, search_set=search_set, **kwargs
        )
    else:
        raise InvalidParameterError(
            f"method must be 'tip', 'tip-x', 'gda' or 'gda-em'. Got {method!r}."
        )
    scores = adapter.decision_function(X_test)
    return {
        "method": method,
        "top1": topk_accuracy(scores, np.asarray(y_test), 1),
        "top5": topk_accuracy(scores, np.asarray(y_test), 5),
        "params": dict(result.best),
        "search_mode": result.mode,
        "search_top1": result.score,
        "n_search": result.n_search,
        "seconds": time.perf_counter() - start,
    }

"""What the few-shot adapters share: the injected zero-shot head, labels, views, validation.

Every adapter (``GDAAdapter``, ``GDAEMAdapter``, ``TipAdapter``) adds a term to CLIP's zero-shot
logits ``logit_scale * x T``. The zero-shot head is injected, never built here: pass a fitted
:class:`~zsvl.methods.zeroshot.ZeroShotClassifier` (its ``weights_``, ``classes_``,
``logit_scale_`` and its encoder's device are used) or the text weights themselves, an array of
shape (n_classes, dim), together with ``logit_scale`` (``encoder.logit_scale``).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError, NotFittedError

__all__ = [
    "ZeroShotHead",
    "resolve_zero_shot",
    "check_number",
    "check_choice",
    "encode_labels",
    "as_views",
    "torch_device",
]


@dataclass(frozen=True)
class ZeroShotHead:
    """The zero-shot part of an adapter's logits: ``logit_scale * X @ weights.T``."""

    weights: np.ndarray  # float32 (n_classes, dim): class text embeddings, one row per class
    classes: ClassSet  # class names in label order
    logit_scale: float  # the model's temperature (100 for OpenAI CLIP)
    device: Any  # torch.device the adapter's matrix products run on


def torch_device(device: Any) -> Any:
    """A ``torch.device`` from None (CPU), a string or a device."""
    import torch

    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(
            f"Unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:1'."
        ) from exc


def resolve_zero_shot(
    zero_shot: Any,
    *,
    classes: ClassSet | Sequence[str] | None,
    logit_scale: float | None,
    device: Any,
    owner: str,
) -> ZeroShotHead:
    """Turn the ``zero_shot`` argument of an adapter into a :class:`ZeroShotHead`.

    zero_shot : a fitted ZeroShotClassifier (anything with ``weights_``, ``classes_`` and
        ``logit_scale_``) or text weights of shape (n_classes, dim) (numpy or torch).
    classes : class names for raw weights (default "class 0", "class 1", ...); with a fitted
        classifier they must equal its ``classes_`` when given.
    logit_scale : required with raw weights; overrides the classifier's when given.
    device : where the math runs; default the classifier encoder's device, else the CPU.
    """
    if zero_shot is None:
        raise InvalidParameterError(
            f"{owner} needs the zero-shot head: pass a fitted ZeroShotClassifier or the class "
            f"text weights of shape (n_classes, dim) as its first argument."
        )
    if hasattr(zero_shot, "classes") and hasattr(zero_shot, "encoder"):
        if not hasattr(zero_shot, "weights_"):
            raise NotFittedError(
                f"The ZeroShotClassifier given to {owner} is not fitted; call .fit() on it first."
            )
    if hasattr(zero_shot, "weights_"):
        weights = as_embeddings(zero_shot.weights_, name="zero_shot.weights_")
        head_classes = getattr(zero_shot, "classset_", None) or as_classset(
            [str(c) for c in zero_shot.classes_]
        )
        if classes is not None and as_classset(classes).names != head_classes.names:
            raise InvalidParameterError(
                f"classes given to {owner} differ from the zero-shot classifier's classes_; "
                f"leave classes=None to use the classifier's."
            )
        scale = zero_shot.logit_scale_ if logit_scale is None else logit_scale
        if device is None:
            device = getattr(getattr(zero_shot, "encoder", None), "device", None)
    else:
        weights = as_embeddings(zero_shot, name="zero_shot")
        if logit_scale is None:
            raise InvalidParameterError(
                f"{owner} was given raw text weights; pass logit_scale= too "
                f"(the model's own temperature: encoder.logit_scale, 100 for OpenAI CLIP)."
            )
        scale = logit_scale
        names = [f"class {i}" for i in range(len(weights))] if classes is None else classes
        head_classes = as_classset(names)
    if len(head_classes) != len(weights):
        raise InvalidParameterError(
            f"{owner}: {len(head_classes)} class names but {len(weights)} rows of text weights."
        )
    scale = check_number(scale, "logit_scale", owner, low=0.0)
    return ZeroShotHead(weights, head_classes, scale, torch_device(device))


def check_number(
    value: Any,
    name: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = True,
    integer: bool = False,
) -> Any:
    """Return ``value`` as float (or int) if it lies in the range, else raise a helpful error.

    >>> check_number(2, "beta", "TipAdapter", low=0.0)
    2.0
    """
    kind = "an int" if integer else "a float"
    ok_type = isinstance(value, numbers.Integral if integer else numbers.Real)
    ok_type = ok_type and not isinstance(value, bool)
    number = (int(value) if integer else float(value)) if ok_type else None
    ok = False
    if number is not None and np.isfinite(number):
        ok = low is None or (number >= low if low_inclusive else number > low)
        ok = ok and (high is None or (number <= high if high_inclusive else number < high))
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>=' if low_inclusive else '>'} {low:g}")
        if high is not None:
            bounds.append(f"{'<=' if high_inclusive else '<'} {high:g}")
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be {kind} {' and '.join(bounds)}. "
            f"Got {value!r}."
        )
    return number


def check_choice(value: Any, name: str, owner: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a helpful error."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be one of "
            f"{', '.join(repr(c) for c in choices)}. Got {value!r}."
        )
    return value


def encode_labels(y: Any, classes: ClassSet, owner: str) -> np.ndarray:
    """Labels as int64 positions in ``classes``; ``y`` holds ints in [0, C) or class names."""
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1:
        raise InvalidParameterError(f"{owner}: y must have shape (n_samples,). Got {y.shape}.")
    if y.dtype.kind in "OUS":
        return np.array([classes.index(str(name)) for name in y], dtype=np.int64)
    if y.dtype.kind not in "iu":
        if y.size and not np.all(np.mod(y, 1) == 0):
            raise InvalidParameterError(
                f"{owner}: y must hold integer labels or class names. Got dtype {y.dtype}."
            )
    labels = y.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise InvalidParameterError(
            f"{owner}: labels must lie in [0, {len(classes)}) (one per class of the zero-shot "
            f"head). Got values in [{labels.min()}, {labels.max()}]."
        )
    return labels


def as_views(X: Any, *, dim: int, name: str = "X", check_finite: bool = True) -> np.ndarray:
    """Shot embeddings as float32 (n_images, n_views, dim); a 2-D (n, dim) input has one view.

    Accepts numpy or torch, (n, dim) or (n, n_views, dim). No copy is made of float32 input;
    finiteness is checked block by block, so validation needs no (n, dim) temporary. A caller
    that sums every row anyway may pass ``check_finite=False`` and check its sums instead.
    """
    if hasattr(X, "detach"):
        X = X.detach().cpu().float().numpy()
    X = np.asarray(X, dtype=np.float32)
    if X.ndim not in (2, 3) or (X.ndim == 3 and X.shape[1] == 0):
        raise InvalidParameterError(
            f"{name} must have shape (n_samples, dim) or (n_images, n_views, dim). "
            f"Got shape {X.shape}."
        )
    views = X[:, None, :] if X.ndim == 2 else X
    if views.shape[2] != dim:
        raise InvalidParameterError(
            f"{name} has dimension {views.shape[2]} but the classifier was built with dimension "
            f"{dim}; encode the images with the same model as the classes."
        )
    if check_finite:
        rows = max(1, (1 << 22) // max(views.shape[1] * dim, 1))
        for start in range(0, len(views), rows):
            if not np.isfinite(views[start : start + rows]).all():
                raise InvalidParameterError(f"{name} holds NaN or infinite values.")
    return views

"""One name per method: build and fit the classifier behind ``classify(method=...)`` / ``zsvl fit``.

Hyperparameters of the few-shot methods are chosen on the support set alone, never on the
images being classified: Tip-Adapter's alpha/beta (Tip-X: and gamma) and GDA's alpha by
stratified cross-validation on the shots (:mod:`zsvl.eval.protocol`, mode ``"cv"``: each fold's
held-out shots are scored by an adapter fitted on the other folds); the caption-support set's
alpha/beta and GDA-EM's alpha and iteration count on the labelled support images (GDA-EM itself
is transductive: it fits on the unlabelled images it classifies). The zero-shot head of every
adapter uses the same templates as ``method="zeroshot"``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError

__all__ = ["METHODS", "FittedMethod", "fit_classifier", "check_method_inputs"]

logger = logging.getLogger(__name__)

METHODS: dict[str, str] = {
    "zeroshot": "CLIP zero-shot: class names in prompt templates",
    "cbd": "classification by description: mean of descriptor similarities (needs descriptors)",
    "cupl": "CuPL: similarity to the mean of LLM-written sentences (needs descriptors)",
    "waffle": "WaffleCLIP: random descriptors (matched to descriptors when given)",
    "fudd": "FuDD: differential descriptions of each image's top k (needs pair descriptors)",
    "gda": "GDA: Gaussian discriminant head on the support shots (needs support)",
    "tip": "Tip-Adapter: a cache of the support shots (needs support)",
    "tip-x": "Tip-X: Tip-Adapter plus the KL-signature term (needs support)",
    "gda-em": "unsupervised GDA: EM on the images being classified (support: optional, for alpha)",
    "caption-support": "a cache of retrieved captions (needs a caption index; support optional)",
}
NEEDS_SUPPORT = ("gda", "tip", "tip-x")
USES_SUPPORT = (*NEEDS_SUPPORT, "gda-em", "caption-support")
NEEDS_DESCRIPTORS = ("cbd", "cupl", "fudd")
USES_DESCRIPTORS = (*NEEDS_DESCRIPTORS, "waffle")
USES_TEMPLATES = ("zeroshot", *NEEDS_SUPPORT, "gda-em", "caption-support")
TIPX_GAMMAS = (0.0, 0.1, 0.3, 1.0, 3.0)  # Tip-X's KL weights searched with Tip's alpha/beta


@dataclass(frozen=True)
class FittedMethod:
    """A fitted classifier and how its hyperparameters were chosen."""

    classifier: Any  # the fitted zsvl classifier
    method: str  # a key of METHODS
    params: dict[str, float] = field(default_factory=dict)  # hyperparameters chosen
    search: str | None = None  # "cv" (on the shots), "support-val", "fixed" or None (nothing)
    search_top1: float | None = None  # top-1 % of the chosen setting on the search set


def check_method_inputs(
    method: str,
    *,
    support: Any = None,
    descriptors: Any = None,
    index: Any = None,
    templates: Any = None,
) -> None:
    """Refuse a method name it does not know, a missing input, or an input it would ignore."""
    if method not in METHODS:
        import difflib

        close = difflib.get_close_matches(str(method), METHODS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InvalidParameterError(
            f"Unknown method {method!r}.{hint} Methods: {', '.join(METHODS)}."
        )
    if method in NEEDS_SUPPORT and support is None:
        raise InvalidParameterError(
            f"method {method!r} needs labelled support images: a folder shots/<class>/*.jpg "
            "(support= in Python, --support DIR on the command line)."
        )
    if support is not None and method not in USES_SUPPORT:
        raise InvalidParameterError(
            f"method {method!r} does not use support images; the methods that do are "
            f"{', '.join(USES_SUPPORT)}."
        )
    if method in NEEDS_DESCRIPTORS and descriptors is None:
        kind = "class-pair descriptions" if method == "fudd" else "descriptors"
        raise InvalidParameterError(
            f"method {method!r} needs {kind}: a zsvl descriptor file or a packaged name "
            f"(zsvl descriptors generate --style {'fudd' if method == 'fudd' else method} ...)."
        )
    if descriptors is not None and method not in USES_DESCRIPTORS:
        raise InvalidParameterError(
            f"method {method!r} does not use descriptors; the methods that do are "
            f"{', '.join(USES_DESCRIPTORS)}."
        )
    if method == "caption-support" and index is None:
        raise InvalidParameterError(
            "method 'caption-support' needs a caption index built with the same model "
            "(index= / --index DIR; make one with zsvl index build)."
        )
    if index is not None and method != "caption-support":
        raise InvalidParameterError(
            f"method {method!r} does not use a caption index; only caption-support does "
            "(and --vocabulary-free)."
        )
    if templates is not None and method not in USES_TEMPLATES:
        raise InvalidParameterError(
            f"method {method!r} does not use prompt templates; its texts come from descriptors."
        )


def _support_arrays(
    encoder: Any, support: Any, classes: ClassSet | None, n_views: int, batch_size: int
) -> tuple[Any, Any, Any]:
    """(SupportSet, ShotEmbeddings, labels) from a folder or a SupportSet."""
    from zsvl.support import SupportSet, encode_support, load_support

    if not isinstance(support, SupportSet):
        support = load_support(support, classes)
    elif classes is not None and support.classes.names != classes.names:
        support = load_support(support.root, classes)
    shots = encode_support(encoder, support, n_views=n_views, batch_size=batch_size)
    return support, shots, support.labels


def fit_classifier(
    method: str,
    encoder: Any,
    classes: ClassSet | Sequence[str] | None = None,
    *,
    support: str | Path | Any = None,
    templates: str | Sequence[str] | None = None,
    descriptors: Any = None,
    index: Any = None,
    llm: Any = None,
    unlabelled: Any = None,
    support_views: int = 10,
    batch_size: int = 64,
) -> FittedMethod:
    """Build and fit ``method`` (a key of :data:`METHODS`) for ``classes``.

    support : an ImageFolder (``shots/<class>/*.jpg``) or a :class:`zsvl.support.SupportSet`;
        classes default to its folder names. descriptors : a descriptor file or packaged name
        (cbd, cupl, fudd; optional for waffle). index : a loaded CaptionIndex or its folder.
    unlabelled : (n, dim) embeddings of the images to classify (gda-em only).
    support_views : augmented views encoded per support image (Tip-Adapter uses 10).
    """
    check_method_inputs(
        method, support=support, descriptors=descriptors, index=index, templates=templates
    )
    classset = as_classset(classes) if classes is not None else None
    if classset is None and support is not None:
        from zsvl.support import SupportSet, load_support

        support = support if isinstance(support, SupportSet) else load_support(support)
        classset = support.classes
    if classset is None and method not in USES_DESCRIPTORS:
        raise InvalidParameterError(
            f"method {method!r} needs the class names (classes=[...], --classes or "
            "--classes-file), or a support folder whose sub-folders name them."
        )
    from zsvl.methods.zeroshot import ZeroShotClassifier

    def zero_shot() -> Any:
        return ZeroShotClassifier(encoder, classset, templates=templates).fit()

    if method == "zeroshot":
        clf = zero_shot()
        return FittedMethod(clf, method, {}, None)
    if method in ("cbd", "cupl"):
        from zsvl.methods.descriptors import DescriptorClassifier

        aggregation = "mean_sims" if method == "cbd" else "mean_emb"
        clf = DescriptorClassifier(encoder, descriptors, classset, aggregation=aggregation).fit()
        return FittedMethod(clf, method)
    if method == "waffle":
        from zsvl.methods.waffle import WaffleCLIPClassifier

        return FittedMethod(
            WaffleCLIPClassifier(encoder, classset, match=descriptors).fit(), method
        )
    if method == "fudd":
        from zsvl.methods.fudd import FuDDClassifier

        clf = FuDDClassifier(encoder, classset, llm=llm, descriptors=descriptors).fit()
        return FittedMethod(clf, method, {"k": float(clf.k)})
    if method == "caption-support":
        assert classset is not None  # checked above: only descriptor methods go without
        return _fit_caption_support(
            encoder, classset, index, templates, support, support_views, batch_size
        )
    if method == "gda-em":
        assert classset is not None  # checked above: only descriptor methods go without
        return _fit_gda_em(zero_shot(), encoder, classset, support, unlabelled, batch_size)
    from zsvl.eval import protocol

    _, shots, y = _support_arrays(encoder, support, classset, support_views, batch_size)
    head = zero_shot()
    if method == "gda":
        clf, result = protocol.tune_gda(head, shots, y, mode="cv")
    else:
        gammas = TIPX_GAMMAS if method == "tip-x" else (0.0,)
        clf, result = protocol.tune_tip(head, shots, y, mode="cv", gammas=gammas)
    logger.info(
        "%s: chose %s by %s on the shots (top-1 %.1f %%)",
        method,
        result.best,
        result.mode,
        result.score,
    )
    return FittedMethod(clf, method, dict(result.best), result.mode, float(result.score))


def _fit_caption_support(
    encoder: Any,
    classes: ClassSet,
    index: Any,
    templates: Any,
    support: Any,
    views: int,
    batch_size: int,
) -> FittedMethod:
    from zsvl.methods.caption_support import CaptionSupportAdapter

    if isinstance(index, str | Path):
        from zsvl.index.search import CaptionIndex

        index = CaptionIndex.load(index, encoder)
    clf = CaptionSupportAdapter(encoder, classes, index=index, templates=templates)
    if support is None:
        clf.fit()
        return FittedMethod(clf, "caption-support", {"alpha": clf.alpha_, "beta": clf.beta_})
    _, shots, y = _support_arrays(encoder, support, classes, 1, batch_size)
    clf.fit(X_val=shots.plain, y_val=y)
    return FittedMethod(
        clf,
        "caption-support",
        {"alpha": clf.alpha_, "beta": clf.beta_},
        "support-val",
        100.0 * float(clf.val_accuracy_),
    )


def _fit_gda_em(
    head: Any, encoder: Any, classes: ClassSet, support: Any, unlabelled: Any, batch_size: int
) -> FittedMethod:
    from zsvl.eval.protocol import tune_gda_em

    if unlabelled is None or len(unlabelled) == 0:
        raise InvalidParameterError(
            "method 'gda-em' fits on the unlabelled images it classifies; it cannot be fitted "
            "ahead of them (use zsvl classify --method gda-em, not zsvl fit)."
        )
    val = None
    if support is not None:
        _, shots, y = _support_arrays(encoder, support, classes, 1, batch_size)
        val = (shots.plain, np.asarray(y))
    clf, result = tune_gda_em(head, unlabelled, val=val)
    mode = "support-val" if val is not None else "fixed"
    score = None if val is None else float(result.score)
    return FittedMethod(clf, "gda-em", dict(result.best), mode, score)

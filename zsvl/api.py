"""The one-call front door: ``classify``, ``explain_images`` (and ``load_model``, from zsvl.embed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zsvl.classes import ClassSet, as_classset
from zsvl.embed.loading import DEFAULT_MODEL, load_model
from zsvl.errors import InvalidParameterError
from zsvl.methods.base import top_k as take_top_k
from zsvl.models.base import Encoder, ImageFailure, OnError

if TYPE_CHECKING:  # pragma: no cover
    from zsvl.models.spec import SpecLike

__all__ = ["classify", "explain_images", "ClassificationResult"]


@dataclass(frozen=True)
class ClassificationResult:
    """Predictions for the images that could be read, in input order.

    Names and positions are both given, with clear names: ``labels`` / ``topk_labels`` are
    class *names*, ``label_indices`` / ``topk_indices`` their *positions* in ``classes``.

    classes : the ClassSet the indices refer to.
    sources : one entry per classified image (file path or in-memory description), shape (n,).
    labels : predicted class name per image, (n,).
    label_indices : int64 (n,), position of the predicted class in ``classes``.
    scores : float (n,), the probability of the predicted class (see ``probs``).
    probs : float (n, n_classes), class probabilities softmax(logit_scale * s), where s is the
        classifier's ``decision_function`` (for zero-shot: the cosine similarity of image and
        class text embeddings) and logit_scale the model's own learned temperature (100 for
        OpenAI CLIP). Rows sum to 1 over the given classes only: "the most likely of these
        classes", not a confidence that the image shows any of them.
    topk_labels, topk_indices, topk_scores : the k most probable classes per image, best first:
        names (n lists of k), int64 positions (n, k) and probabilities (n, k).
    skipped : inputs that could not be read (with ``on_error="skip"``), with the reason.
    method : the method that classified ("zeroshot", "gda", ...; "saved" for a loaded file).
    params : hyperparameters chosen while fitting (on the support set, never on these images).
    """

    classes: ClassSet
    sources: list[str]
    labels: list[str]
    scores: np.ndarray
    probs: np.ndarray
    topk_labels: list[list[str]]
    topk_scores: np.ndarray
    skipped: list[ImageFailure] = field(default_factory=list)
    label_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    topk_indices: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    method: str = "zeroshot"
    params: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per image: source, label, label_index, score, top_k."""
        return [
            {
                "source": src,
                "label": label,
                "label_index": int(idx),
                "score": float(score),
                "top_k": [
                    {"label": lab, "index": int(i), "score": float(s)}
                    for lab, i, s in zip(top, top_i, top_s, strict=True)
                ],
            }
            for src, label, idx, score, top, top_i, top_s in zip(
                self.sources,
                self.labels,
                self.label_indices,
                self.scores,
                self.topk_labels,
                self.topk_indices,
                self.topk_scores,
                strict=True,
            )
        ]


def classify(
    images: Any,
    classes: ClassSet | Sequence[str] | None = None,
    *,
    model: SpecLike | Encoder | None = None,
    method: str = "zeroshot",
    support: str | Path | Any = None,
    templates: str | Sequence[str] | None = None,
    descriptors: Any = None,
    index: Any = None,
    llm: Any = None,
    classifier: Any = None,
    top_k: int = 5,
    batch_size: int = 64,
    on_error: OnError = "raise",
    device: str | None = None,
    support_views: int = 10,
) -> ClassificationResult:
    """Classify ``images`` into ``classes`` with CLIP, zero-shot or from a few labelled shots.

    images : paths, folders (searched recursively), PIL images, arrays or tensors.
    classes : class names in label order (a ClassSet or a list); may be left out with a
        ``support`` folder (its sub-folder names), descriptors (their classes) or a
        ``classifier``.
    model : a spec (loaded with the embedding cache, see :func:`load_model`) or an Encoder;
        default ``"ViT-B-32:laion2b_s34b_b79k"`` (``"toy"`` is the tiny model shipped with zsvl).
    method : "zeroshot" (default), "cbd", "cupl", "waffle", "fudd", "gda", "tip", "tip-x",
        "gda-em" or "caption-support" (``zsvl.fitting.METHODS`` says what each needs).
    support : labelled shots as an ImageFolder, ``shots/<class>/*.jpg`` (gda, tip, tip-x need
        it). Hyperparameters are chosen on the shots alone (cross-validation), never on
        ``images``.
    templates : a template set name (``zsvl.text.templates.list_template_sets()``: "single",
        "imagenet7", "imagenet80", "coop:<dataset>" for the 11 CoOp datasets), a JSON file, or
        a list of strings with ``{}``; None: the model's default set (imagenet80; "single" for
        the toy model).
    descriptors : a descriptor file or packaged name (cbd, cupl, fudd; optional for waffle).
    index : a caption index folder or CaptionIndex (caption-support). llm : an LLM client (fudd).
    classifier : a fitted classifier or a saved ``.zsvl`` file (:func:`zsvl.save_classifier`)
        to use instead of fitting one; ``classes`` and ``method`` must then be left out.
    on_error : "raise" (default) stops at the first unreadable file; "skip" reports it in
        ``result.skipped`` and classifies the rest.

    Returns a :class:`ClassificationResult`: names and indices of the best classes and their
    probabilities, softmax(logit_scale * scores) over the given classes.
    """
    from zsvl.fitting import check_method_inputs, fit_classifier

    if classifier is None:  # refuse a wrong combination before loading anything
        check_method_inputs(
            method, support=support, descriptors=descriptors, index=index, templates=templates
        )
    if classifier is not None:
        fixed = {
            "method": method != "zeroshot",
            "support": support is not None,
            "templates": templates is not None,
            "descriptors": descriptors is not None,
            "index": index is not None,
        }
        if any(fixed.values()):
            given = ", ".join(f"{k}=" for k, v in fixed.items() if v)
            raise InvalidParameterError(
                f"A classifier was given: leave out {given} (they were fixed when it was fitted)."
            )
        clf, encoder = _given_classifier(classifier, classes, model, device)
        used, params = "saved", {}
    else:
        encoder = (
            model
            if isinstance(model, Encoder)
            else load_model(model or DEFAULT_MODEL, device=device)
        )
        if method != "gda-em":
            fitted = fit_classifier(
                method,
                encoder,
                classes,
                support=support,
                templates=templates,
                descriptors=descriptors,
                index=index,
                llm=llm,
                support_views=support_views,
                batch_size=batch_size,
            )
            clf, used, params = fitted.classifier, method, fitted.params
    encoded = encoder.encode_images(images, batch_size=batch_size, on_error=on_error)
    if classifier is None and method == "gda-em":
        if len(encoded) == 0:
            raise InvalidParameterError(
                f"None of the {len(encoded.failures)} images could be read, and gda-em fits on "
                "the images it classifies; see the reasons with on_error='raise'."
            )
        fitted = fit_classifier(
            method,
            encoder,
            classes,
            support=support,
            templates=templates,
            unlabelled=encoded.embeddings,
            batch_size=batch_size,
        )
        clf, used, params = fitted.classifier, method, fitted.params
    return _result(clf, encoded, top_k, used, params)


def _given_classifier(
    classifier: Any, classes: Any, model: Any, device: Any
) -> tuple[Any, Encoder]:
    """A saved or fitted classifier and its encoder; ``classes`` must match its own."""
    from zsvl.persist import classifier_classes, classifier_encoder, load_classifier

    if isinstance(classifier, str | Path):
        encoder = (
            model
            if isinstance(model, Encoder)
            else (load_model(model, device=device) if model is not None else None)
        )
        clf = load_classifier(classifier, encoder, device=device)
    else:
        clf = classifier
        if classifier_classes(clf) is None:
            raise InvalidParameterError(
                f"The {type(clf).__name__} given as classifier= is not fitted; call fit() first."
            )
    own = classifier_classes(clf)
    if classes is not None and as_classset(classes).names != own.names:
        raise InvalidParameterError(
            "classes= differ from the classifier's own classes; leave classes out (the "
            f"classifier has {len(own)}: {', '.join(own.names[:5])}, ...)."
        )
    encoder = classifier_encoder(clf)
    if encoder is None:
        if not isinstance(model, Encoder):
            raise InvalidParameterError(
                "The classifier has no encoder of its own; pass model= (an Encoder) too."
            )
        encoder = model
    return clf, encoder


def _result(clf: Any, encoded: Any, k: int, method: str, params: dict) -> ClassificationResult:
    from zsvl.persist import classifier_classes

    classset = classifier_classes(clf)
    n_classes = len(classset)
    probs = clf.predict_proba(encoded.embeddings) if len(encoded) else np.zeros((0, n_classes))
    names = np.asarray(classset.names, dtype=object)
    best = probs.argmax(axis=1).astype(np.int64)
    if len(probs):
        idx, top_scores = take_top_k(probs, k)
    else:
        take_top_k(np.zeros((1, n_classes)), k)  # validates k
        idx, top_scores = np.zeros((0, min(k, n_classes)), np.int64), np.zeros((0, 0))
    return ClassificationResult(
        classes=classset,
        sources=[encoded.sources[i] for i in encoded.indices],
        labels=[str(n) for n in names[best]],
        scores=probs[np.arange(len(best)), best],
        probs=probs,
        topk_labels=[[str(n) for n in row] for row in names[idx]],
        topk_scores=top_scores,
        skipped=list(encoded.failures),
        label_indices=best,
        topk_indices=idx.astype(np.int64),
        method=method,
        params={k_: float(v) for k_, v in params.items()},
    )


def explain_images(
    images: Any,
    descriptors: Any,
    *,
    model: Any = None,
    aggregation: str = "mean_sims",
    top: int = 5,
    classes: Any = None,
    batch_size: int = 64,
    on_error: OnError = "skip",
    device: str | None = None,
) -> dict[str, Any]:
    """Classify images with descriptors and explain each prediction (``zsvl classify --explain``).

    Returns {"results": [{"source", "label", "probability", "score", "explanation": [...]}, ...],
    "skipped": [{"source", "error"}]}.
    """
    from zsvl.methods.descriptors import DescriptorClassifier

    encoder = (
        model if isinstance(model, Encoder) else load_model(model or DEFAULT_MODEL, device=device)
    )
    clf = DescriptorClassifier(encoder, descriptors, classes, aggregation=aggregation).fit()
    encoded = encoder.encode_images(images, batch_size=batch_size, on_error=on_error)
    explanations = clf.explain(encoded.embeddings, top=top) if len(encoded) else []
    proba = clf.predict_proba(encoded.embeddings) if len(encoded) else np.zeros((0, 1))
    results = [
        {
            "source": encoded.sources[i],
            "label": e.classname,
            "probability": float(proba[k, e.label]),
            "score": e.score,
            "explanation": [asdict(ev) for ev in e.evidence],
        }
        for k, (i, e) in enumerate(zip(encoded.indices, explanations, strict=True))
    ]
    skipped = [{"source": f.source, "error": f.error} for f in encoded.failures]
    return {"results": results, "skipped": skipped}

"""WaffleCLIP controls: random-word and random-character descriptors (Roth et al., ICCV 2023).

Every class gets the *same* random descriptors ("A photo of a {c}, which has {random}."), so any
gain over the class name alone is ensembling, not semantics. The random strings are matched to
the descriptors being controlled for: as many per class as their mean count, as many words per
string as their mean word count, words as long as their mean word length (without descriptors to
match: 30 strings, lengths from the class names). Scores are averaged over several seeds; the
per-seed scores are kept for reporting a mean and spread.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.errors import InvalidParameterError
from zsvl.methods.base import ScoreClassifier
from zsvl.methods.descriptors import aggregate_texts, matmul_scores
from zsvl.models.base import Encoder
from zsvl.text.classes import ClassSet, as_classset
from zsvl.text.descriptors import DescriptorSet, load_descriptors
from zsvl.text.sentences import WAFFLE_TEMPLATE, build_sentences

__all__ = ["WaffleShape", "waffle_shape", "waffle_descriptors", "WaffleCLIPClassifier", "KINDS"]

KINDS = ("words", "chars", "mixed")
_CHARS = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class WaffleShape:
    """How many random descriptors, and how long."""

    count: int  # descriptors per class
    words: int  # words per descriptor
    word_length: int  # characters per random-character word


def waffle_shape(
    classnames: Sequence[str], match: Sequence[Sequence[str]] | None = None,
    count: int | None = None,
) -> WaffleShape:
    """Counts and lengths matched to ``match`` (descriptor lists), else to the class names."""
    items = [d for ds in (match or ()) for d in ds]
    source = items or [n.replace("_", " ") for n in classnames]
    words = [len(s.split()) for s in source]
    lengths = [len(w) for s in source for w in s.split()]
    per_class = [len(ds) for ds in match or () if ds]
    n = count if count is not None else (round(float(np.mean(per_class))) if per_class else 30)
    if n < 1:
        raise InvalidParameterError(f"A WaffleCLIP control needs >= 1 descriptor. Got {n}.")
    return WaffleShape(max(1, n), max(1, round(float(np.mean(words)))),
                       max(1, round(float(np.mean(lengths)))))


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[str, ...]:
    from zsvl.paths import prompts_dir

    text = (prompts_dir() / "words" / "waffle_words.txt").read_text(encoding="utf-8")
    return tuple(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def waffle_descriptors(
    shape: WaffleShape, *, kind: str = "mixed", seed: int = 0,
    exclude: Sequence[str] = (), vocabulary: Sequence[str] | None = None,
) -> list[str]:
    """``shape.count`` random descriptors, shared by all classes.

    kind : "words" (random words), "chars" (random character strings) or "mixed" (half each,
        words first, as in WaffleCLIP's 15 + 15). Words in ``exclude`` (class-name words) are
        never drawn.
    """
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {KINDS}. Got {kind!r}.")
    banned = {w.lower() for text in exclude for w in text.replace("_", " ").split()}
    vocab = [w for w in (vocabulary or _vocabulary()) if w.lower() not in banned]
    if not vocab:
        raise InvalidParameterError("The random-word vocabulary is empty after exclusions.")
    rng = np.random.default_rng(seed)
    n_words = {"words": shape.count, "chars": 0, "mixed": shape.count // 2}[kind]
    out = [" ".join(rng.choice(vocab, size=shape.words)) for _ in range(n_words)]
    for _ in range(shape.count - n_words):
        out.append(" ".join(
            "".join(rng.choice(list(_CHARS), size=shape.word_length)) for _ in range(shape.words)
        ))
    return out


class WaffleCLIPClassifier(ScoreClassifier):
    """Random-descriptor control, averaged over ``seeds`` (mean of similarities per class).

    Parameters
    ----------
    encoder : Encoder.
    classes : ClassSet or names; may be left None when ``match`` is given.
    match : DescriptorSet (or file) whose descriptor counts and lengths the control copies.
    n_descriptors : override the count (WaffleCLIP's default is 30 = 15 words + 15 strings).
    kind : "mixed", "words" or "chars".
    seeds : random draws averaged in ``decision_function``; ``seed_scores`` gives each.
    template : sentence template ("A photo of a {c}, which has {d}.").
    concept : optional concept prefix ("A photo of a bird: ...").

    Attributes after ``fit``: ``classes_``, ``shape_`` (WaffleShape), ``seed_descriptors_``
    (one list per seed), ``seed_weights_`` (S, C, D), ``weights_`` (C, D), ``logit_scale_``.
    """

    def __init__(
        self, encoder: Encoder, classes: ClassSet | Sequence[str] | None = None, *,
        match: DescriptorSet | str | None = None, n_descriptors: int | None = None,
        kind: str = "mixed", seeds: Sequence[int] = (0, 1, 2), template: str = WAFFLE_TEMPLATE,
        concept: str | None = None, batch_size: int = 256,
    ) -> None:
        self.encoder = encoder
        self.classes = classes
        self.match = match
        self.n_descriptors = n_descriptors
        self.kind = kind
        self.seeds = seeds
        self.template = template
        self.concept = concept
        self.batch_size = batch_size

    def fit(self, X: Any = None, y: Any = None) -> WaffleCLIPClassifier:
        """Draw the random descriptors for every seed and encode them. X, y are ignored."""
        matched = load_descriptors(self.match) if self.match is not None else None
        if self.classes is not None:
            classes = as_classset(self.classes)
            matched = matched.align(classes) if matched is not None else None
        elif matched is not None:
            classes = matched.classes
        else:
            raise InvalidParameterError("WaffleCLIPClassifier needs classes=[...] or match=...")
        seeds = tuple(int(s) for s in self.seeds)
        if not seeds:
            raise InvalidParameterError("seeds must hold at least one seed. Got none.")
        shape = waffle_shape(classes.names, matched.descriptors if matched else None,
                             self.n_descriptors)
        per_seed = [waffle_descriptors(shape, kind=self.kind, seed=s, exclude=classes.names)
                    for s in seeds]
        texts: list[str] = []
        owners: list[int] = []
        for s, descs in enumerate(per_seed):
            t, o = build_sentences(classes.names, [descs] * len(classes),
                                   template=self.template, concept=self.concept)
            texts += t
            owners += [s * len(classes) + label for label in o]
        emb = self.encoder.encode_texts(texts, batch_size=self.batch_size)
        W = aggregate_texts(emb, np.asarray(owners), len(seeds) * len(classes), "mean_sims")
        self.seed_weights_ = W.reshape(len(seeds), len(classes), -1)
        self.weights_ = self.seed_weights_.mean(axis=0)
        self.seed_descriptors_ = per_seed
        self.shape_ = shape
        self.classes_ = classes
        self.logit_scale_ = float(self.encoder.logit_scale)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Mean over seeds of the per-seed scores, (n_samples, n_classes)."""
        self._check_fitted()
        X = as_embeddings(X, dim=self.weights_.shape[1])
        return matmul_scores(X, self.weights_, getattr(self.encoder, "device", "cpu"))

    def seed_scores(self, X: Any) -> np.ndarray:
        """Scores of each seed separately, (n_seeds, n_samples, n_classes)."""
        self._check_fitted()
        X = as_embeddings(X, dim=self.weights_.shape[1])
        S, C, D = self.seed_weights_.shape
        flat = matmul_scores(X, self.seed_weights_.reshape(S * C, D),
                             getattr(self.encoder, "device", "cpu"))
        return flat.reshape(len(X), S, C).transpose(1, 0, 2)

"""WaffleCLIP controls: random-word and random-character descriptors (Roth et al., ICCV 2023).

Every class gets the *same* random descriptors, so any gain over the class name alone is
ensembling, not semantics. Two recipes:

- ``"reference"`` (default), WaffleCLIP's ``waffle`` mode: ``n_pairs`` (15) pairs of a random
  word string and a random character string, interleaved (word, chars, word, chars, ...).
  Word strings hold as many words as a class name has on average (rounded, at least 1), each a
  random word of a large word list cut to the mean class-name word length. Character strings are
  ``groups`` groups of random characters joined by ", ": groups = round(mean number of spaces
  in a class name) + 1; the characters per group come from the mean longest class-name word,
  rounded up and then raised to the next multiple of ``groups`` (by a whole ``groups`` when it
  already is one, as the reference does). Characters are drawn from the characters of the
  descriptor file (capitals and punctuation included; spaces, commas and periods excluded).
  Texts are "A photo of a {c}, {which} {random}." with the reference's first-letter clause rule
  (see :mod:`zsvl.text.sentences`); a concept gives "A photo of a {concept}: a {c}, ...".
  Words come from the ``web2`` list of the english-words package (234,450 lower-case words);
  the reference ships its own 4,330-word list, so the strings (not the recipe) differ.
- ``"matched"`` (zsvl's earlier control): as many random descriptors per class as the matched
  descriptor file has on average, as many words per string as its mean, random-letter words as
  long as its mean word length; half whole words, half a-z0-9 strings; "which has" always.

Published numbers are the mean +- std over seeds of the per-seed accuracy (the reference runs 7
seeds): :meth:`WaffleCLIPClassifier.accuracy_over_seeds`. ``decision_function`` averages the
seeds' scores, an ensemble of all seeds' descriptors.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError
from zsvl.methods.base import ScoreClassifier
from zsvl.methods.text_heads import aggregate_texts, matmul_scores
from zsvl.models.base import Encoder
from zsvl.text.descriptors import DescriptorSet, load_descriptors
from zsvl.text.sentences import WAFFLE_TEMPLATE, build_sentences

__all__ = [
    "WaffleShape",
    "waffle_shape",
    "waffle_descriptors",
    "WaffleRecipe",
    "reference_recipe",
    "reference_descriptors",
    "word_list",
    "WaffleCLIPClassifier",
    "KINDS",
    "RECIPES",
]

KINDS = ("words", "chars", "mixed")
RECIPES = ("reference", "matched")
MATCHED_TEMPLATE = "A photo of a {c}, which has {d}."  # zsvl's earlier control
CONCEPT_TEMPLATE = "A photo of a {concept}: a {c}, {which} {d}."  # WaffleCLIP's concept prompt
_CHARS = string.ascii_lowercase + string.digits
# without a descriptor file: printable ASCII without whitespace, commas and periods
_FALLBACK_POOL = tuple(
    sorted(set(string.ascii_letters + string.digits + string.punctuation) - {",", "."})
)


@lru_cache(maxsize=1)
def word_list() -> tuple[str, ...]:
    """The random-word vocabulary: english-words' ``web2`` list, lower-case letters only, sorted."""
    from english_words import get_english_words_set

    return tuple(sorted(get_english_words_set(["web2"], lower=True, alpha=True)))


# -- the reference recipe ---------------------------------------------------------------------
@dataclass(frozen=True)
class WaffleRecipe:
    """WaffleCLIP's random-descriptor shape, computed from the class names and descriptors."""

    n_pairs: int  # pairs of (word string, character string); 15 in WaffleCLIP
    words: int  # words per word string
    word_length: int  # words of the list are cut to this many characters
    groups: int  # character groups per character string, joined by ", "
    group_length: int  # characters per group
    characters: tuple[str, ...]  # the character pool, sorted


def reference_recipe(
    classnames: Sequence[str],
    descriptors: Sequence[Sequence[str]] | None = None,
    *,
    n_pairs: int = 15,
) -> WaffleRecipe:
    """The reference's lengths from the class names; its character pool from ``descriptors``
    (all characters but space, comma and period; printable ASCII when no descriptors are given)."""
    if n_pairs < 1:
        raise InvalidParameterError(f"n_pairs must be >= 1. Got {n_pairs}.")
    if not classnames:
        raise InvalidParameterError("A WaffleCLIP control needs at least one class name.")
    spaced = [n.replace("_", " ") for n in classnames]
    words = max(round(float(np.mean([len(n.split(" ")) for n in spaced]))), 1)
    word_length = round(float(np.mean([np.mean([len(w) for w in n.split(" ")]) for n in spaced])))
    groups = round(float(np.mean([n.count(" ") for n in classnames]))) + 1
    chars = math.ceil(float(np.mean([max(len(w) for w in n.split(" ")) for n in classnames])))
    chars += groups - chars % groups
    pool = set("".join(d for ds in (descriptors or ()) for d in ds)) - {" ", ",", "."}
    return WaffleRecipe(
        n_pairs,
        words,
        max(word_length, 1),
        groups,
        chars // groups,
        tuple(sorted(pool)) or _FALLBACK_POOL,
    )


def reference_descriptors(
    recipe: WaffleRecipe,
    *,
    seed: int = 0,
    kind: str = "mixed",
    vocabulary: Sequence[str] | None = None,
) -> list[str]:
    """The shared random descriptors of one seed: word and character strings interleaved
    ("mixed", 2 * n_pairs), or only one of the two ("words", "chars": n_pairs)."""
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {KINDS}. Got {kind!r}.")
    vocab = vocabulary or word_list()
    if len(vocab) == 0:
        raise InvalidParameterError("The random-word vocabulary is empty.")
    pool = recipe.characters
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for _ in range(recipe.n_pairs):
        picks = rng.integers(len(vocab), size=recipe.words)
        word = " ".join(vocab[i][: recipe.word_length] for i in picks)
        noise = ", ".join(
            "".join(pool[i] for i in rng.integers(len(pool), size=recipe.group_length))
            for _ in range(recipe.groups)
        )
        out += {"mixed": [word, noise], "words": [word], "chars": [noise]}[kind]
    return out


# -- the matched recipe (zsvl's earlier control) -----------------------------------------------
@dataclass(frozen=True)
class WaffleShape:
    """How many random descriptors, and how long (the "matched" recipe)."""

    count: int  # descriptors per class
    words: int  # words per descriptor
    word_length: int  # characters per random-character word


def waffle_shape(
    classnames: Sequence[str],
    match: Sequence[Sequence[str]] | None = None,
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
    return WaffleShape(
        max(1, n), max(1, round(float(np.mean(words)))), max(1, round(float(np.mean(lengths))))
    )


@lru_cache(maxsize=1)
def _whole_words() -> tuple[str, ...]:
    return tuple(w for w in word_list() if 4 <= len(w) <= 8)


def waffle_descriptors(
    shape: WaffleShape,
    *,
    kind: str = "mixed",
    seed: int = 0,
    exclude: Sequence[str] = (),
    vocabulary: Sequence[str] | None = None,
) -> list[str]:
    """``shape.count`` random descriptors, shared by all classes (the "matched" recipe).

    kind : "words" (random whole words of 4-8 letters), "chars" (random a-z0-9 strings) or
        "mixed" (half each, words first). Words in ``exclude`` (class-name words) are never drawn.
    """
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {KINDS}. Got {kind!r}.")
    banned = {w.lower() for text in exclude for w in text.replace("_", " ").split()}
    vocab = [w for w in (vocabulary or _whole_words()) if w.lower() not in banned]
    if not vocab:
        raise InvalidParameterError("The random-word vocabulary is empty after exclusions.")
    rng = np.random.default_rng(seed)
    n_words = {"words": shape.count, "chars": 0, "mixed": shape.count // 2}[kind]
    out = [
        " ".join(vocab[i] for i in rng.integers(len(vocab), size=shape.words))
        for _ in range(n_words)
    ]
    for _ in range(shape.count - n_words):
        out.append(
            " ".join(
                "".join(rng.choice(list(_CHARS), size=shape.word_length))
                for _ in range(shape.words)
            )
        )
    return out


class WaffleCLIPClassifier(ScoreClassifier):
    """Random-descriptor control; scores are the mean of similarities per class.

    Parameters
    ----------
    encoder : Encoder.
    classes : ClassSet or names; may be left None when ``match`` is given.
    match : DescriptorSet (or file) being controlled for: the character pool of the reference
        recipe, the counts and lengths of the matched recipe.
    recipe : "reference" (WaffleCLIP's, default) or "matched".
    n_pairs : word/character pairs of the reference recipe (15).
    n_descriptors : count override of the matched recipe.
    kind : "mixed", "words" or "chars".
    seeds : random draws (the reference reports 7: 0..6); ``seed_scores`` gives each.
    template : sentence template; None: "A photo of a {c}, {which} {d}." (reference) or
        "A photo of a {c}, which has {d}." (matched).
    concept : optional concept ("bird" -> "A photo of a bird: a {c}, ..." in the reference).
    sentence_style : "reference" (the first-letter clause rule, as WaffleCLIP) or "default"
        (zsvl's word rule); None picks "reference" for the reference recipe.

    Attributes after ``fit``: ``classes_``, ``recipe_`` (WaffleRecipe or WaffleShape),
    ``seed_descriptors_`` (one list per seed), ``seed_weights_`` (S, C, D), ``weights_`` (C, D),
    ``logit_scale_``.
    """

    def __init__(
        self,
        encoder: Encoder,
        classes: ClassSet | Sequence[str] | None = None,
        *,
        match: DescriptorSet | str | None = None,
        recipe: str = "reference",
        n_pairs: int = 15,
        n_descriptors: int | None = None,
        kind: str = "mixed",
        seeds: Sequence[int] = (0, 1, 2, 3, 4, 5, 6),
        template: str | None = None,
        concept: str | None = None,
        sentence_style: str | None = None,
        batch_size: int = 256,
    ) -> None:
        self.encoder = encoder
        self.classes = classes
        self.match = match
        self.recipe = recipe
        self.n_pairs = n_pairs
        self.n_descriptors = n_descriptors
        self.kind = kind
        self.seeds = seeds
        self.template = template
        self.concept = concept
        self.sentence_style = sentence_style
        self.batch_size = batch_size

    def _draw(
        self, classes: ClassSet, matched: DescriptorSet | None, seeds: tuple[int, ...]
    ) -> tuple[Any, list[list[str]]]:
        if self.recipe == "reference":
            recipe = reference_recipe(
                classes.names, matched.descriptors if matched else None, n_pairs=self.n_pairs
            )
            return recipe, [reference_descriptors(recipe, seed=s, kind=self.kind) for s in seeds]
        shape = waffle_shape(
            classes.names, matched.descriptors if matched else None, self.n_descriptors
        )
        return shape, [
            waffle_descriptors(shape, kind=self.kind, seed=s, exclude=classes.names) for s in seeds
        ]

    def _sentence_args(self) -> dict[str, Any]:
        reference = self.recipe == "reference"
        style = self.sentence_style or ("reference" if reference else "default")
        template = self.template
        concept = self.concept
        if template is None and reference:
            template = CONCEPT_TEMPLATE if concept else WAFFLE_TEMPLATE
        elif template is None:
            template = MATCHED_TEMPLATE
        return {"template": template, "concept": concept, "style": style}

    def fit(self, X: Any = None, y: Any = None) -> WaffleCLIPClassifier:
        """Draw the random descriptors for every seed and encode them. X, y are ignored."""
        if self.recipe not in RECIPES:
            raise InvalidParameterError(f"recipe must be one of {RECIPES}. Got {self.recipe!r}.")
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
        recipe, per_seed = self._draw(classes, matched, seeds)
        texts: list[str] = []
        owners: list[int] = []
        for s, descs in enumerate(per_seed):
            t, o = build_sentences(classes.names, [descs] * len(classes), **self._sentence_args())
            texts += t
            owners += [s * len(classes) + label for label in o]
        emb = self.encoder.encode_texts(texts, batch_size=self.batch_size)
        W = aggregate_texts(emb, np.asarray(owners), len(seeds) * len(classes), "mean_sims")
        self.seed_weights_ = W.reshape(len(seeds), len(classes), -1)
        self.weights_ = self.seed_weights_.mean(axis=0)
        self.seed_descriptors_ = per_seed
        self.recipe_ = recipe
        self.classes_ = classes
        self.logit_scale_ = float(self.encoder.logit_scale)
        return self

    @property
    def shape_(self) -> Any:
        """The drawn shape (alias of ``recipe_``)."""
        return self.recipe_

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
        flat = matmul_scores(
            X, self.seed_weights_.reshape(S * C, D), getattr(self.encoder, "device", "cpu")
        )
        return flat.reshape(len(X), S, C).transpose(1, 0, 2)

    def accuracy_over_seeds(self, X: Any, y: Any) -> tuple[float, float, list[float]]:
        """WaffleCLIP's reported number: top-1 accuracy (percent) of each seed, and their mean
        and (population) standard deviation. X (n_samples, dim), y (n_samples,) labels."""
        y = np.asarray(y, dtype=np.int64)
        per_seed = [float(100.0 * np.mean(s.argmax(1) == y)) for s in self.seed_scores(X)]
        return float(np.mean(per_seed)), float(np.std(per_seed)), per_seed

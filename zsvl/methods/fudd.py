"""FuDD: follow-up differential descriptions (Esfandiarpoor and Bach, ICLR 2024), vectorised.

Stage 1 scores every image with "A photo of a {c}." and keeps its top k classes. Stage 2
re-scores each image's k candidates: candidate c's texts are the **set union** of its
descriptions over its k-1 pairs with the other candidates (a text is identified by its string,
so a description repeated across pairs counts once), and its weight is the normalised mean of
their embeddings -- exactly the reference's ``list(set(...))`` in ``PromptFactory.get_prompts``
followed by ``FuDD.get_text_embeddings``. As in the reference every text is passed through
``str.capitalize()`` before encoding (``capitalize=False`` turns that off), and a pair missing
from the pair store contributes the class's stage-1 text. See :mod:`zsvl.methods.fudd_stage2`
for the vectorised union (no loop over images).

The LLM is asked in ``fit`` (and ``partial_fit``) only: ``fit(X)`` runs stage 1 on the images X
that will be classified (or a representative sample), collects the class pairs that co-occur in
some image's top k, and asks the LLM only for those the pair store lacks (batched, concurrent,
cached). ``decision_function`` never calls the LLM and never changes the fitted state; a pair
it needs that ``fit`` did not fetch is scored as the reference scores a pair missing from its
file (with the stage-1 text), and a warning says how many.

Classes outside an image's top k keep their stage-1 score minus 2, so they rank below every
candidate (cosines lie in [-1, 1]) and keep their stage-1 order; the true class outside the top k
cannot be recovered (the ceiling is the stage-1 top-k recall). ``adaptive=False`` is the
non-adaptive variant: each class uses the union of all its pairwise descriptions, one C x D
matrix (``fit`` asks for every pair).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from zsvl.arrays import as_embeddings, l2_normalize
from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError
from zsvl.methods.base import ScoreClassifier, top_k
from zsvl.methods.fudd_stage2 import PairTable, cooccurring_pairs, rescore_topk, union_text_ids
from zsvl.methods.text_heads import Evidence, Explanation, matmul_scores
from zsvl.models.base import Encoder
from zsvl.text.descriptors import DescriptorSet, load_descriptors
from zsvl.text.templates import format_prompt

if TYPE_CHECKING:  # pragma: no cover
    from zsvl.text.generate import OnFailure

__all__ = ["FuDDClassifier", "PairTable", "cooccurring_pairs", "rescore_topk"]

logger = logging.getLogger(__name__)

OUTSIDE_OFFSET = 2.0  # subtracted from the stage-1 score of classes outside an image's top k


class FuDDClassifier(ScoreClassifier):
    """Two-stage FuDD classifier (adaptive by default).

    Parameters
    ----------
    encoder : Encoder.
    classes : ClassSet or names; may be None when ``descriptors`` holds the classes.
    llm : LLM client for pairs the store lacks, used by ``fit``/``partial_fit`` only (None:
        pairs missing from the store are scored with the stage-1 text, as in the reference,
        and a warning says how many).
    descriptors : DescriptorSet or file whose ``pairs`` are already known (a cache of pairs).
    k : candidates per image kept from stage 1 (FuDD: 10).
    adaptive : False for the non-adaptive variant (needs every class pair).
    template : stage-1 template ("a photo of a {c}.", capitalised: "A photo of a {c}.").
    capitalize : apply ``str.capitalize()`` to every text before encoding (the reference does).
    concept : concept named in the LLM prompts ("bird").
    on_failure : "raise" or "empty" for unparsable LLM answers (see zsvl.text.generate).

    Attributes after ``fit``: ``classes_``, ``stage1_weights_`` (C, D), ``stage1_texts_``,
    ``pair_store_`` (DescriptorSet holding every pair known), ``texts_`` (distinct description
    strings, the union's identity), ``text_embeddings_`` (T, D), ``table_`` (PairTable),
    ``pairs_needed_`` (pairs the images given to fit needed), ``pairs_requested_`` (pairs asked
    of the LLM), ``all_pairs_`` (C(C-1)/2), ``logit_scale_``.
    """

    def __init__(
        self,
        encoder: Encoder,
        classes: ClassSet | Sequence[str] | None = None,
        *,
        llm: Any = None,
        descriptors: DescriptorSet | str | None = None,
        k: int = 10,
        adaptive: bool = True,
        template: str = "a photo of a {c}.",
        capitalize: bool = True,
        concept: str | None = None,
        on_failure: OnFailure = "raise",
        batch_size: int = 256,
    ) -> None:
        self.encoder = encoder
        self.classes = classes
        self.llm = llm
        self.descriptors = descriptors
        self.k = k
        self.adaptive = adaptive
        self.template = template
        self.capitalize = capitalize
        self.concept = concept
        self.on_failure = on_failure
        self.batch_size = batch_size

    # -- fitting: the only place the LLM is asked ---------------------------------------------
    def fit(self, X: Any = None, y: Any = None) -> FuDDClassifier:
        """Stage-1 weights, the pair store and its text embeddings.

        X : optional image embeddings (n, dim) to be classified; the pairs co-occurring in
            their stage-1 top k are fetched from the LLM when the store lacks them (a warning
            without ``llm``). The non-adaptive variant fetches every pair. ``y`` is ignored.
        """
        if not isinstance(self.k, int) or self.k < 2:
            raise InvalidParameterError(f"k must be an int >= 2. Got {self.k!r}.")
        store = load_descriptors(self.descriptors) if self.descriptors is not None else None
        if self.classes is not None:
            classes = as_classset(self.classes)
            store = store.align(classes) if store is not None else None
        elif store is not None:
            classes = store.classes
        else:
            raise InvalidParameterError("FuDDClassifier needs classes=[...] or descriptors=...")
        if store is None:
            store = DescriptorSet(classes, tuple(() for _ in classes.names))
        self.classes_ = classes
        self.pair_store_ = store
        self.logit_scale_ = float(self.encoder.logit_scale)
        self.all_pairs_ = len(classes) * (len(classes) - 1) // 2
        self.pairs_requested_ = 0
        self.pairs_needed_ = 0
        self.stage1_texts_ = [format_prompt(self.template, c) for c in classes.names]
        self.texts_: list[str] = []
        self.text_embeddings_ = np.zeros((0, self.encoder.embed_dim), np.float32)
        self._text_row: dict[str, int] = {}
        fallback = self._add_texts(self.stage1_texts_)
        self.stage1_weights_ = l2_normalize(self.text_embeddings_[fallback])
        self._fallback = fallback
        if not self.adaptive:
            n = len(classes)
            self._ensure_pairs(
                np.array([(i, j) for i in range(n) for j in range(i + 1, n)], np.int64).reshape(
                    -1, 2
                )
            )
        elif X is not None:
            self._ensure_pairs(self._needed_pairs(X))
        self._rebuild()
        return self

    def partial_fit(self, X: Any, y: Any = None) -> FuDDClassifier:
        """Fetch the pairs that images X (n, dim) need and the store lacks; fits if unfitted."""
        if "classset_" not in self.__dict__:
            return self.fit(X)
        self._ensure_pairs(self._needed_pairs(X))
        self._rebuild()
        return self

    def _needed_pairs(self, X: Any) -> np.ndarray:
        topk, _ = top_k(self.stage1_scores(X), min(self.k, len(self.classset_)))
        return cooccurring_pairs(topk, len(self.classset_))

    def _device(self) -> Any:
        return getattr(self.encoder, "device", "cpu")

    def _add_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text ids (len(texts),) of strings, encoding the new ones (capitalised if asked)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._text_row]
        if new:
            shown = [t.capitalize() if self.capitalize else t for t in new]
            distinct = {s: r for r, s in enumerate(dict.fromkeys(shown))}
            emb = self.encoder.encode_texts(list(distinct), batch_size=self.batch_size)
            emb = np.asarray(emb, np.float32)[[distinct[s] for s in shown]]
            self._text_row.update({t: len(self.texts_) + r for r, t in enumerate(new)})
            self.texts_ = self.texts_ + new
            self.text_embeddings_ = np.concatenate([self.text_embeddings_, emb])
        return np.array([self._text_row[t] for t in texts], np.int64)

    def _ensure_pairs(self, pairs: np.ndarray) -> None:
        """Ask the LLM for the pairs (P, 2) that the store lacks."""
        known = self.pair_store_.pairs
        missing = [(int(i), int(j)) for i, j in pairs if (int(i), int(j)) not in known]
        self.pairs_needed_ = len(pairs)
        if not missing:
            return
        if self.llm is None:
            i, j = missing[0]
            names = self.classset_.names
            logger.warning(
                "FuDD: the descriptor set lacks %d class pairs these images need (e.g. %r vs "
                "%r); they are scored with the stage-1 text, as the reference scores pairs "
                "missing from its file. Pass llm=OpenAIChatClient(...) or descriptors with those "
                "pairs to describe them.",
                len(missing),
                names[i],
                names[j],
            )
            return
        from zsvl.text.generate import generate_pair_descriptions

        logger.info("FuDD: asking the LLM about %d new class pairs.", len(missing))
        new = generate_pair_descriptions(
            self.classset_, missing, self.llm, concept=self.concept, on_failure=self.on_failure
        )
        self.pair_store_ = self.pair_store_.with_pairs(new)
        self.pairs_requested_ += len(missing)

    def _rebuild(self) -> None:
        """Embed every stored pair's texts and build ``table_`` (and the non-adaptive weights)."""
        owner: list[int] = []
        partner: list[int] = []
        texts: list[str] = []
        for i, j in self.pair_store_.pairs:
            for _, a, b in self.pair_store_.pair(i, j):
                owner += [i, j]
                partner += [j, i]
                texts += [a, b]
        ids = self._add_texts(texts)
        self.table_ = PairTable.build(
            len(self.classset_),
            np.asarray(owner, np.int64),
            np.asarray(partner, np.int64),
            ids,
            self.text_embeddings_,
            fallback=self._fallback,
            pairs=np.array(list(self.pair_store_.pairs), np.int64),
        )
        self.full_weights_ = None if self.adaptive else self._nonadaptive_weights(owner, ids)

    def _nonadaptive_weights(self, owner: list[int], ids: np.ndarray) -> np.ndarray:
        """normalize(sum of each class's distinct texts over all its pairs), (C, D)."""
        C = len(self.classset_)
        T = max(len(self.texts_), 1)
        codes = np.unique(np.asarray(owner, np.int64) * T + ids)
        W = np.zeros((C, self.text_embeddings_.shape[1]), np.float32)
        np.add.at(W, codes // T, self.text_embeddings_[codes % T])
        empty = ~np.any(W != 0, axis=1)
        W[empty] = self.stage1_weights_[empty]  # the reference's default text for such a class
        return l2_normalize(W)

    # -- scoring: no LLM, no state change -------------------------------------------------------
    def stage1_scores(self, X: Any) -> np.ndarray:
        """Stage-1 cosines (n_samples, n_classes) with the single template."""
        self._check_fitted()
        X = as_embeddings(X, dim=self.stage1_weights_.shape[1])
        return matmul_scores(X, self.stage1_weights_, self._device())

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores (n_samples, n_classes): stage 2 for each image's top k, stage 1 - 2 elsewhere."""
        self._check_fitted()
        X = as_embeddings(X, dim=self.stage1_weights_.shape[1])
        if not self.adaptive:
            if self.full_weights_ is None:
                raise InvalidParameterError(
                    "This FuDDClassifier was fitted with adaptive=True; call fit() again after "
                    "set_params(adaptive=False)."
                )
            return matmul_scores(X, self.full_weights_, self._device())
        S1 = matmul_scores(X, self.stage1_weights_, self._device())
        topk, _ = top_k(S1, min(self.k, len(self.classset_)))
        missing = self.table_.missing(cooccurring_pairs(topk, len(self.classset_)))
        if len(missing):
            logger.warning(
                "FuDD: %d class pairs these images need were not fetched in fit(); they are "
                "scored with the stage-1 text, as the reference scores pairs missing from its "
                "file. Pass the images to fit() or partial_fit() to fetch them.",
                len(missing),
            )
        s2, found = rescore_topk(X, topk, self.table_, device=self._device())
        s1_top = np.take_along_axis(S1, topk, axis=1)
        out = S1 - OUTSIDE_OFFSET
        np.put_along_axis(out, topk, np.where(found, s2, s1_top), axis=1)
        return out

    def explain(self, X: Any, *, top: int = 5) -> list[Explanation]:
        """For each image, the differential descriptions that carried its predicted class.

        Evidence items are the distinct texts of the predicted class over its pairs with the
        image's other candidates (all classes when non-adaptive), most contributing first; each
        contribution is similarity / ||sum of the texts||, and they add up to the class score.
        """
        self._check_fitted()
        X = as_embeddings(X, dim=self.stage1_weights_.shape[1])
        scores = self.decision_function(X)
        pred = scores.argmax(1)
        C = len(self.classset_)
        topk, _ = top_k(self.stage1_scores(X), min(self.k, C))
        out = []
        for n, c in enumerate(pred):
            partners = topk[n] if self.adaptive else np.arange(C)
            ids = union_text_ids(self.table_, int(c), partners)
            name = self.classset_.names[c]
            if len(ids) == 0:
                out.append(Explanation(n, int(c), name, float(scores[n, c]), ()))
                continue
            E = self.text_embeddings_[ids]
            sims = E @ X[n]
            contrib = sims / max(float(np.linalg.norm(E.sum(0))), 1e-12)
            best = np.argsort(-contrib, kind="stable")[:top]
            evidence = tuple(
                Evidence(
                    self.texts_[ids[j]],
                    self._shown(self.texts_[ids[j]]),
                    float(sims[j]),
                    float(contrib[j]),
                )
                for j in best
            )
            out.append(Explanation(n, int(c), name, float(scores[n, c]), evidence))
        return out

    def _shown(self, text: str) -> str:
        return text.capitalize() if self.capitalize else text

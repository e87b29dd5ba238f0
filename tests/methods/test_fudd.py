"""FuDD: stage 2 is the reference's set union, computed without a loop over images.

The brute-force references below follow BatsResearch/fudd (``PromptFactory.get_prompts`` +
``FuDD.get_text_embeddings``) literally: per image, per pair of its top-k candidates, append
each side's descriptions (the default text "a photo of a {c}." when the pair is missing),
``list(set(...))``, ``str.capitalize()``, embed, mean, normalise, dot.
"""

from __future__ import annotations

import hashlib
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_server import MODEL, ToyLLMServer  # noqa: E402
from text_fakes import BagOfWordsEncoder  # noqa: E402

from zsvl.errors import InvalidParameterError, NotFittedError  # noqa: E402
from zsvl.methods.base import top_k  # noqa: E402
from zsvl.methods.fudd import (  # noqa: E402
    FuDDClassifier,
    PairTable,
    cooccurring_pairs,
    rescore_topk,
)
from zsvl.text.descriptors import DescriptorSet, PairAttribute  # noqa: E402
from zsvl.text.llm import LLMConfig, OpenAIChatClient  # noqa: E402
from zsvl.text.llm_cache import LLMCache  # noqa: E402
from zsvl.toy.world import class_attributes  # noqa: E402

FINE = list(class_attributes("ToyFine"))


@pytest.fixture
def server():
    with ToyLLMServer() as s:
        yield s


def _client(server, tmp_path):
    config = LLMConfig(model=MODEL, base_url=server.base_url, concurrency=8)
    return OpenAIChatClient(config, cache=LLMCache(tmp_path / "llm"))


def _unit(rng, *shape):
    v = rng.normal(size=shape).astype(np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class HashEncoder:
    """Case-sensitive: every exact string gets its own fixed random unit vector."""

    def __init__(self, dim: int = 24) -> None:
        self.dim = dim
        self.encoded: list[str] = []

    embed_dim = property(lambda self: self.dim)
    logit_scale = property(lambda self: 100.0)
    fingerprint = property(lambda self: f"hash|{self.dim}")

    def encode_texts(self, texts, *, batch_size: int = 256) -> np.ndarray:
        self.encoded += list(texts)
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            out[i] = _unit(np.random.default_rng(seed), self.dim)
        return out


def test_cooccurring_pairs():
    topk = np.array([[3, 1, 0], [1, 3, 4]])
    assert cooccurring_pairs(topk, 5).tolist() == [[0, 1], [0, 3], [1, 3], [1, 4], [3, 4]]


@pytest.mark.parametrize("chunk", [7, 1000])
def test_rescore_is_the_set_union_over_pairs(chunk):
    """Texts drawn from a small pool per class, so most candidates repeat texts across pairs
    (and some within a pair); unknown pairs use each class's fallback text."""
    rng = np.random.default_rng(0)
    C, D, k, n, pool = 12, 16, 5, 40, 4
    text_emb = _unit(rng, C * pool + C, D)  # pool texts per class, then one fallback each
    fallback = C * pool + np.arange(C)
    X = _unit(rng, n, D)
    topk = np.stack([rng.permutation(C)[:k] for _ in range(n)])
    descs = {}  # (a, b) -> text ids of a in pair {a, b}
    for a, b in combinations(range(C), 2):
        if rng.random() < 0.85:  # the rest are unknown pairs
            for x, y in ((a, b), (b, a)):
                descs[(x, y)] = list(x * pool + rng.integers(0, pool, size=rng.integers(1, 4)))
    owner = [a for (a, b), ids in descs.items() for _ in ids]
    partner = [b for (a, b), ids in descs.items() for _ in ids]
    ids = [i for v in descs.values() for i in v]
    table = PairTable.build(C, owner, partner, ids, text_emb, fallback=fallback)
    got, found = rescore_topk(X, topk, table, chunk=chunk)
    repeated = 0
    for i in range(n):  # brute force: python sets, one image and one candidate at a time
        for j, c in enumerate(topk[i]):
            occurrences = [t for o in topk[i] if o != c for t in descs.get((c, o), [fallback[c]])]
            union = sorted(set(occurrences))
            repeated += len(union) < len(occurrences)
            w = text_emb[union].mean(0)
            assert found[i, j]
            assert got[i, j] == pytest.approx(X[i] @ (w / np.linalg.norm(w)), abs=2e-6)
    assert repeated > n * k // 2  # the union differs from the per-pair sums for most


def _reference_fudd(encode, names, pairs, X, k):
    """BatsResearch/fudd's two stages for X (n, D); ``pairs`` maps "i_j" to prompt pairs."""
    default = "a photo of a {}."
    S1 = np.stack([encode([default.format(c).capitalize()])[0] for c in names])
    out = []
    for x in X:
        logits = S1 @ x
        cands = [int(c) for c in np.argsort(-logits, kind="stable")[:k]]
        prompts = [[] for _ in cands]
        for a, b in combinations(range(len(cands)), 2):
            ca, cb = cands[a], cands[b]
            key = f"{min(ca, cb)}_{max(ca, cb)}"
            if key not in pairs:
                prompts[a].append(default.format(names[ca]))
                prompts[b].append(default.format(names[cb]))
                continue
            for first, second in pairs[key]:  # first belongs to the lower label
                prompts[a].append(first if ca < cb else second)
                prompts[b].append(second if ca < cb else first)
        texts = [[p.capitalize() for p in set(ps)] for ps in prompts]
        W = np.stack([encode(t).mean(0) for t in texts])
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        out.append((cands, W @ x))
    return out


def test_classifier_matches_the_reference_with_repeated_texts():
    """Descriptions repeat across pairs, within a pair, and one pair is missing from the store."""
    rng = np.random.default_rng(4)
    names = [f"bird {c}" for c in range(7)]
    enc = HashEncoder()
    shared = ["long tail", "red crown", "Short beak", "short beak"]  # case differs: 2 texts
    pairs, store_pairs = {}, {}
    for i, j in combinations(range(7), 2):
        if (i, j) == (1, 4):
            continue  # missing: both sides get "a photo of a {c}."
        n_attr = int(rng.integers(1, 4))
        items = [
            (
                f"{shared[rng.integers(4)]} of {names[i]}"
                if rng.random() < 0.7
                else shared[rng.integers(4)],
                shared[rng.integers(4)] if rng.random() < 0.5 else f"{names[j]} trait {a}",
            )
            for a in range(n_attr)
        ]
        pairs[f"{i}_{j}"] = items
        store_pairs[(i, j)] = tuple(PairAttribute(f"a{a}", f, s) for a, (f, s) in enumerate(items))
    store = DescriptorSet(names, tuple(() for _ in names), store_pairs)
    X = _unit(rng, 30, enc.dim)
    S1 = np.stack([enc.encode_texts([f"A photo of a {c}."])[0] for c in names])
    X = X + 1.5 * S1[rng.integers(0, 7, 30)]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    clf = FuDDClassifier(enc, names, descriptors=store, k=4).fit()
    scores = clf.decision_function(X)
    ref = _reference_fudd(enc.encode_texts, names, pairs, X, 4)
    for i, (cands, s2) in enumerate(ref):
        np.testing.assert_allclose(scores[i, cands], s2, atol=2e-6)
        assert cands[int(np.argmax(s2))] == scores[i].argmax()
    assert "A photo of a bird 0." in enc.encoded and "a photo of a bird 0." not in enc.encoded


def test_fit_asks_the_llm_and_decision_function_never_does(server, tmp_path):
    enc = BagOfWordsEncoder(64)
    names = FINE[:16]
    X = enc.images_of([n for n in names for _ in range(3)], noise=4.0, seed=3)
    clf = FuDDClassifier(enc, names, llm=_client(server, tmp_path), k=5)
    with pytest.raises(NotFittedError, match="call fit"):
        clf.decision_function(X)
    clf.fit(X)
    topk, _ = top_k(clf.stage1_scores(X), 5)
    pairs = cooccurring_pairs(topk, len(names))
    assert server.stats["requests"] == len(pairs) == clf.pairs_requested_ == clf.pairs_needed_
    assert clf.pairs_requested_ < clf.all_pairs_ == len(names) * (len(names) - 1) // 2
    assert set(clf.pair_store_.pairs) == set(map(tuple, pairs.tolist()))
    state = dict(clf.__dict__)
    scores = clf.decision_function(X)
    clf.explain(X[:2])
    assert clf.__dict__.keys() == state.keys()
    assert all(clf.__dict__[key] is value for key, value in state.items())
    assert server.stats["requests"] == len(pairs)
    for i in range(0, len(X), 17):  # stage 2 by hand: the union of the candidate's texts
        for c in topk[i]:
            texts = {d for o in topk[i] if o != c for _, d, _ in clf.pair_store_.pair(c, o)}
            w = enc.encode_texts(sorted(texts)).mean(0)
            assert scores[i, c] == pytest.approx(X[i] @ w / np.linalg.norm(w), abs=1e-5)
    outside = np.ones_like(scores, bool)
    np.put_along_axis(outside, topk, False, axis=1)
    S1 = clf.stage1_scores(X)
    np.testing.assert_allclose(scores[outside], S1[outside] - 2.0, atol=1e-6)
    assert (
        np.take_along_axis(scores, topk, 1).min(1) > scores.max(1, where=outside, initial=-9)
    ).all()


def test_unfetched_pairs_fall_back_with_a_warning_and_partial_fit_fetches(server, tmp_path, caplog):
    enc = BagOfWordsEncoder(64)
    names = FINE[:16]
    X = enc.images_of([n for n in names for _ in range(3)], noise=4.0, seed=3)
    clf = FuDDClassifier(enc, names, llm=_client(server, tmp_path), k=4).fit(X[:6])
    before = server.stats["requests"]
    with caplog.at_level("WARNING"):
        clf.decision_function(X)
    assert "not fetched in fit()" in caplog.text and server.stats["requests"] == before
    clf.partial_fit(X)
    assert server.stats["requests"] > before
    caplog.clear()
    with caplog.at_level("WARNING"):
        clf.decision_function(X)
    assert "not fetched" not in caplog.text


def test_pair_store_replaces_the_llm_and_explanations_show_descriptions(server, tmp_path, caplog):
    enc = BagOfWordsEncoder(64)
    names = FINE[:16]
    X = enc.images_of([n for n in names for _ in range(3)], noise=4.0, seed=3)
    first = FuDDClassifier(enc, names, llm=_client(server, tmp_path), k=4).fit(X)
    expected = first.decision_function(X)
    path = first.pair_store_.save(tmp_path / "pairs.json")
    again = FuDDClassifier(enc, descriptors=path, k=4).fit(X)
    np.testing.assert_allclose(again.decision_function(X), expected, atol=1e-6)
    with caplog.at_level("WARNING"):
        FuDDClassifier(enc, names, k=4).fit(X)
    assert "lacks" in caplog.text and "Pass llm=" in caplog.text
    topk, _ = top_k(first.stage1_scores(X[:3]), 4)
    for n, e in enumerate(first.explain(X[:3], top=50)):
        mine = {
            d for o in topk[n] if o != e.label for _, d, _ in first.pair_store_.pair(e.label, o)
        }
        assert {ev.descriptor for ev in e.evidence} == mine  # the union, each text once
        assert all("(vs " not in ev.descriptor for ev in e.evidence)
        assert sum(ev.contribution for ev in e.evidence) == pytest.approx(e.score, abs=1e-5)
        assert str(e).split(": ", 1)[1].startswith(e.evidence[0].descriptor)


def test_non_adaptive_uses_the_union_of_every_pair_of_a_class(server, tmp_path):
    enc = BagOfWordsEncoder(32)
    names = FINE[:6]
    clf = FuDDClassifier(enc, names, llm=_client(server, tmp_path), adaptive=False).fit()
    assert server.stats["requests"] == 15 == clf.pairs_requested_
    X = enc.images_of(names, noise=1.0)
    scores = clf.decision_function(X)
    for c in range(6):
        texts = {d for o in range(6) if o != c for _, d, _ in clf.pair_store_.pair(c, o)}
        w = enc.encode_texts(sorted(texts)).mean(0)
        np.testing.assert_allclose(scores[:, c], X @ (w / np.linalg.norm(w)), atol=1e-5)


def test_parameters_are_checked():
    enc = BagOfWordsEncoder(8)
    with pytest.raises(InvalidParameterError, match="k must be an int >= 2"):
        FuDDClassifier(enc, FINE, k=1).fit()
    with pytest.raises(InvalidParameterError, match="needs classes"):
        FuDDClassifier(enc).fit()


@pytest.mark.slow  # fast twin on a subset: tests/toy/test_subset_accuracy.py
def test_fudd_beats_the_class_name_alone_on_toy_fine(toy_encoder):
    """Measured on the 1,920 test images (ToyFine's tone curve is off the toy CLIP's training
    distribution), with the union semantics: see the assertion message for the numbers."""
    from zsvl.eval.metrics import topk_accuracy
    from zsvl.methods.zeroshot import ZeroShotClassifier
    from zsvl.toy.suite import get_toy_dataset, render_split

    spec = get_toy_dataset("ToyFine")
    images, y = render_split(spec, "test")  # the suite's PNGs, in memory
    X = toy_encoder.encode_images(list(images)).embeddings
    name_only = ZeroShotClassifier(toy_encoder, spec.classnames, templates=["{}"]).fit()
    fudd = FuDDClassifier(toy_encoder, spec.classnames, descriptors="toy_fine_fudd", k=10).fit(X)
    acc_name = topk_accuracy(name_only.decision_function(X), y, 1)
    acc_fudd = topk_accuracy(fudd.decision_function(X), y, 1)
    ceiling = topk_accuracy(fudd.stage1_scores(X), y, 10)
    assert acc_fudd > acc_name + 1.5, (acc_fudd, acc_name, ceiling)
    assert acc_fudd <= ceiling

"""FuDD: vectorised stage 2 against a per-image loop; only co-occurring pairs go to the LLM."""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_server import MODEL, ToyLLMServer  # noqa: E402
from text_fakes import BagOfWordsEncoder  # noqa: E402

from zsvl.errors import InvalidParameterError  # noqa: E402
from zsvl.methods.base import top_k  # noqa: E402
from zsvl.methods.fudd import (  # noqa: E402
    FuDDClassifier,
    PairTable,
    cooccurring_pairs,
    rescore_topk,
)
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


def test_cooccurring_pairs():
    topk = np.array([[3, 1, 0], [1, 3, 4]])
    assert cooccurring_pairs(topk, 5).tolist() == [[0, 1], [0, 3], [1, 3], [1, 4], [3, 4]]


@pytest.mark.parametrize("chunk", [7, 1000])
def test_rescore_matches_a_per_image_loop(chunk):
    rng = np.random.default_rng(0)
    C, D, k, n = 12, 16, 4, 30
    X = _unit(rng, n, D)
    topk = np.stack([rng.permutation(C)[:k] for _ in range(n)])
    descs = {}  # (a, b) -> list of a's description vectors in pair {a, b}
    for a, b in combinations(range(C), 2):
        if rng.random() < 0.9:  # some pairs unknown
            m = int(rng.integers(1, 4))
            descs[(a, b)], descs[(b, a)] = list(_unit(rng, m, D)), list(_unit(rng, m, D))
    owner = [a for (a, b), vs in descs.items() for _ in vs]
    partner = [b for (a, b), vs in descs.items() for _ in vs]
    emb = np.array([v for vs in descs.values() for v in vs])
    table = PairTable.build(C, np.array(owner), np.array(partner), emb)
    got, found = rescore_topk(X, topk, table, chunk=chunk)
    for i in range(n):  # the reference: loop over images and candidates
        for j, c in enumerate(topk[i]):
            texts = [v for o in topk[i] if o != c for v in descs.get((c, o), [])]
            assert found[i, j] == bool(texts)
            if texts:
                w = np.mean(texts, axis=0)
                assert got[i, j] == pytest.approx(X[i] @ (w / np.linalg.norm(w)), abs=1e-5)


SOME = FINE[:16]


def _data(enc):
    X = enc.images_of([n for n in SOME for _ in range(3)], noise=4.0, seed=3)
    return X, np.repeat(np.arange(len(SOME)), 3)


def test_adaptive_fudd_asks_only_for_cooccurring_pairs(server, tmp_path):
    enc = BagOfWordsEncoder(64)
    X, _ = _data(enc)
    clf = FuDDClassifier(enc, SOME, llm=_client(server, tmp_path), k=5).fit()
    S1 = clf.stage1_scores(X)
    topk, _ = top_k(S1, 5)
    pairs = cooccurring_pairs(topk, len(SOME))
    scores = clf.decision_function(X)
    assert server.stats["requests"] == len(pairs) == clf.pairs_requested_
    assert clf.pairs_requested_ < clf.all_pairs_ == len(SOME) * (len(SOME) - 1) // 2
    assert set(clf.pair_store_.pairs) == set(map(tuple, pairs.tolist()))
    # stage 2 by hand for a few images
    for i in range(0, len(X), 17):
        for c in topk[i]:
            texts = [d for o in topk[i] if o != c for _, d, _ in clf.pair_store_.pair(c, o)]
            w = enc.encode_texts(texts).mean(0)
            assert scores[i, c] == pytest.approx(X[i] @ w / np.linalg.norm(w), abs=1e-5)
    outside = np.ones_like(scores, bool)
    np.put_along_axis(outside, topk, False, axis=1)
    np.testing.assert_allclose(scores[outside], S1[outside] - 2.0, atol=1e-6)
    assert (scores.argmax(1)[:, None] == topk).any(1).all()
    assert (np.take_along_axis(scores, topk, 1).min(1) > scores.max(1, where=outside,
                                                                   initial=-9)).all()
    # a second batch with the same images needs no new request
    clf.decision_function(X[::2])
    assert server.stats["requests"] == len(pairs)


def test_pair_store_replaces_the_llm(server, tmp_path):
    enc = BagOfWordsEncoder(64)
    X, _ = _data(enc)
    first = FuDDClassifier(enc, SOME, llm=_client(server, tmp_path), k=4).fit()
    expected = first.decision_function(X)
    path = first.pair_store_.save(tmp_path / "pairs.json")
    again = FuDDClassifier(enc, descriptors=path, k=4).fit()
    np.testing.assert_allclose(again.decision_function(X), expected, atol=1e-6)
    with pytest.raises(InvalidParameterError, match="lacks .* pass llm="):
        FuDDClassifier(enc, SOME, k=4).fit().decision_function(X)
    explanation = first.explain(X[:3], top=3)
    for e in explanation:
        assert len(e.evidence) == 3 and "(vs " in e.evidence[0].descriptor
        mine = {d for o in range(len(SOME)) if o != e.label
                for _, d, _ in first.pair_store_.pair(e.label, o)}
        assert all(ev.text in mine for ev in e.evidence)


def test_non_adaptive_uses_every_pair_of_a_class(server, tmp_path):
    enc = BagOfWordsEncoder(32)
    names = FINE[:6]
    clf = FuDDClassifier(enc, names, llm=_client(server, tmp_path), adaptive=False).fit()
    assert server.stats["requests"] == 15 == clf.pairs_requested_
    X = enc.images_of(names, noise=1.0)
    scores = clf.decision_function(X)
    for c in range(6):
        texts = [d for o in range(6) if o != c for _, d, _ in clf.pair_store_.pair(c, o)]
        w = enc.encode_texts(texts).mean(0)
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
    distribution): name only 50.1, template 53.0, FuDD 52.7 (top-10 ceiling 99.9)."""
    from zsvl.eval.metrics import topk_accuracy
    from zsvl.methods.zeroshot import ZeroShotClassifier
    from zsvl.toy.suite import get_toy_dataset, render_split

    spec = get_toy_dataset("ToyFine")
    images, y = render_split(spec, "test")  # the suite's PNGs, in memory
    X = toy_encoder.encode_images(list(images)).embeddings
    name_only = ZeroShotClassifier(toy_encoder, spec.classnames, templates=["{}"]).fit()
    fudd = FuDDClassifier(toy_encoder, spec.classnames, descriptors="toy_fine_fudd", k=10).fit()
    acc_name = topk_accuracy(name_only.decision_function(X), y, 1)
    acc_fudd = topk_accuracy(fudd.decision_function(X), y, 1)
    ceiling = topk_accuracy(fudd.stage1_scores(X), y, 10)
    assert acc_fudd > acc_name + 1.5, (acc_fudd, acc_name)
    assert acc_fudd <= ceiling

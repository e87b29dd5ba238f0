"""CaSED: candidates from retrieved captions, fused scores, cached candidate embeddings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caption_fakes import HashEncoder, toy_captions, write_lines  # noqa: E402

from zsvl.errors import IndexMismatchError, InvalidParameterError, NotFittedError  # noqa: E402
from zsvl.index import build_index  # noqa: E402
from zsvl.methods.vocab_free import VocabularyFreeClassifier  # noqa: E402
from zsvl.text.candidates import CandidateExtractor  # noqa: E402

QUERIES = ["red star", "blue circle", "green hexagon", "purple arrow"]
# zsvl's phrase extractor (the default is vic's single-word pipeline): names like "red star"
PHRASES = CandidateExtractor(style="phrases", tagger="heuristic")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    enc = HashEncoder(64)
    root = tmp_path_factory.mktemp("vf")
    corpus = write_lines(root / "c.txt", toy_captions(4000, seed=3))
    index = build_index(corpus, enc, root / "ix", tune_queries=100)
    return enc, index


def _images(enc: HashEncoder, texts=QUERIES, noise: float = 0.02) -> np.ndarray:
    x = enc.encode_texts(list(texts))
    x = x + noise * np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _reference(enc, index, X, alpha, k=10, dedupe=0.94):
    """CaSED the slow way: per image, re-encode its captions and candidates, plain numpy."""
    extract = CandidateExtractor()
    out = []
    for x in X:
        res = index.search(x[None], k, dedupe=dedupe)
        caps = res.captions[0]
        cands = extract(caps)
        c_emb = enc.encode_texts(cands)
        centroid = enc.encode_texts(caps).sum(0)
        centroid /= np.linalg.norm(centroid)

        def softmax(z):
            z = np.exp(z - z.max())
            return z / z.sum()

        p = alpha * softmax(100 * c_emb @ x) + (1 - alpha) * softmax(100 * c_emb @ centroid)
        out.append(dict(zip(cands, p, strict=True)))
    return out


def test_predicts_the_words_of_the_query(setup) -> None:
    enc, index = setup
    clf = VocabularyFreeClassifier(enc, index, extractor=PHRASES).fit()
    res = clf.predict_words(_images(enc))
    assert res.labels == QUERIES
    assert all(0.0 < s <= 1.0 for s in res.scores)
    for cands, caps in zip(res.candidates, res.captions, strict=True):
        assert abs(sum(p for _, p in cands) - 1.0) < 1e-5
        assert len(caps) <= 10
    assert list(clf.fit(_images(enc)).predict(_images(enc))) == QUERIES
    # the default (vic's pipeline) names single words: one word of each query
    words = VocabularyFreeClassifier(enc, index).fit().predict_words(_images(enc)).labels
    assert all(w in q.split() for w, q in zip(words, QUERIES, strict=True))


def test_matches_a_slow_reference_and_never_reencodes_captions(setup) -> None:
    enc, index = setup
    X = _images(enc, ["red star", "yellow square", "orange triangle"])
    for alpha in (0.7, 0.0, 1.0):
        clf = VocabularyFreeClassifier(enc, index, alpha=alpha).fit()
        before = enc.n_encoded
        cands, probs, _ = clf.candidate_probs(X)
        n_candidates = len({c for row in cands for c in row})
        assert enc.n_encoded - before == n_candidates  # candidates only, no caption re-encoding
        ref = _reference(enc, index, X, alpha)
        for i, row in enumerate(cands):
            got = dict(zip(row, probs[i, : len(row)], strict=True))
            assert got.keys() == ref[i].keys()
            for name, p in ref[i].items():
                assert got[name] == pytest.approx(p, abs=2e-3)


def test_candidate_embeddings_are_cached_across_calls(setup) -> None:
    enc, index = setup
    clf = VocabularyFreeClassifier(enc, index).fit()
    X = _images(enc)
    clf.predict_words(X)
    encoded, calls = clf.cache_.encoded, enc.n_encoded
    clf.predict_words(X[::-1])
    clf.predict_words(X)
    assert clf.cache_.encoded == encoded and enc.n_encoded == calls


def test_fit_discovers_a_vocabulary(setup) -> None:
    enc, index = setup
    X = _images(enc, QUERIES * 2)
    clf = VocabularyFreeClassifier(enc, index, extractor=PHRASES).fit(X)
    assert set(QUERIES) <= set(clf.classes_)
    assert set(clf.classes_[:4]) == set(QUERIES)  # most predicted first
    proba = clf.predict_proba(X)
    assert proba.shape == (8, len(clf.classes_))
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    scores = clf.decision_function(X)
    words = clf.predict_words(X)
    for i, cands in enumerate(words.candidates):  # each row: the image's CaSED probabilities
        for name, p in cands:
            assert scores[i, list(clf.classes_).index(name)] == pytest.approx(p, abs=1e-6)
    assert list(clf.predict(X)) == list(clf.classes_[scores.argmax(1)]) == QUERIES * 2
    assert clf.score(X, QUERIES * 2) == 1.0


def test_errors(setup) -> None:
    enc, index = setup
    with pytest.raises(NotFittedError, match="call fit"):
        VocabularyFreeClassifier(enc, index).predict(_images(enc))
    with pytest.raises(NotFittedError, match="call fit"):
        VocabularyFreeClassifier(enc, index).predict_words(_images(enc))
    with pytest.raises(NotFittedError, match="fit\\(X\\) with image embeddings"):
        VocabularyFreeClassifier(enc, index).fit().decision_function(_images(enc))
    with pytest.raises(NotFittedError, match="fit\\(X\\) with image embeddings"):
        VocabularyFreeClassifier(enc, index).fit().predict(_images(enc))
    with pytest.raises(InvalidParameterError, match="'alpha' parameter .* >= 0 and <= 1"):
        VocabularyFreeClassifier(enc, index, alpha=1.5).fit()
    with pytest.raises(IndexMismatchError, match="build the index with this encoder"):
        VocabularyFreeClassifier(HashEncoder(64, name="other"), index).fit()
    with pytest.raises(InvalidParameterError, match="dimension 8"):
        VocabularyFreeClassifier(enc, index).fit().predict_words(np.ones((1, 8), np.float32))


def test_candidate_extraction() -> None:
    from zsvl.text.candidates import HeuristicTagger, singularize

    e = PHRASES
    caps = ["A photo of two red stars!", "red star on www.example.com/x.jpg", "a red star", "dogs"]
    assert e(caps) == ["red star", "red", "star"]  # by count, then longer first
    assert "photo" not in e(caps) and "www" not in " ".join(e(caps))
    assert CandidateExtractor(style="phrases", tagger="heuristic", min_count=1, max_words=1)(
        ["running quickly dogs"]
    ) == ["dog"]
    assert [
        singularize(w)
        for w in ("stars", "boxes", "berries", "glass", "people", "bus", "knives", "cactus")
    ] == ["star", "box", "berry", "glass", "person", "bus", "knife", "cactus"]
    assert HeuristicTagger()(["the", "red", "sitting", "quickly", "dog"]) == [
        "OTHER",
        "ADJ",
        "VERB",
        "ADV",
        "NOUN",
    ]
    only_nouns = CandidateExtractor(
        style="phrases", min_count=1, tagger=lambda toks: ["NOUN"] * len(toks)
    )
    assert "the" not in only_nouns(["the red star"])  # stop words still apply

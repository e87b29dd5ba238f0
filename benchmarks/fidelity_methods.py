"""Fidelity numbers for the README: max abs difference between each zsvl method and the
independent implementation of its published formula written in tests/methods (float64 where
those are), on small synthetic inputs. Run from the repository root:

    python benchmarks/fidelity_methods.py

Prints one line per method
units are the method's own scores (cosines, logits, probabilities).
"""

# ruff: noqa: E402 (the tests' reference helpers are imported after sys.path is set)
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "methods"))
import test_descriptors as td
import test_fudd as tf
import test_gda as tg
import test_teen as tte
import test_tip as tt
from text_fakes import BagOfWordsEncoder

from zsvl.methods.descriptors import DescriptorClassifier
from zsvl.methods.fudd import FuDDClassifier
from zsvl.methods.gda import GDAAdapter
from zsvl.methods.gda_em import GDAEMAdapter
from zsvl.methods.teen import TEENCalibrator
from zsvl.methods.tip import TipAdapter
from zsvl.methods.zeroshot import ZeroShotClassifier

out = {}
enc = BagOfWordsEncoder(32)
# zero-shot: normalised template mean
T = ["a photo of a {}.", "a drawing of a {c}.", "{} on a grey background"]
zs = ZeroShotClassifier(enc, td.CLASSES, templates=T).fit()
X, _ = td._images(enc, 200)
W = np.stack(
    [
        (lambda m: m / np.linalg.norm(m))(
            enc.encode_texts([t.replace("{c}", c).replace("{}", c) for t in T])
            .astype(np.float64)
            .mean(0)
        )
        for c in td.CLASSES
    ]
)
out["zero-shot scores"] = np.abs(zs.decision_function(X) - X.astype(np.float64) @ W.T).max()
ds = td.DescriptorSet.from_lists(td.CLASSES, td.DESCRIPTORS, provenance={"style": "cbd"})
for agg in ("mean_sims", "mean_emb", "max"):
    clf = DescriptorClassifier(enc, ds, aggregation=agg).fit()
    out[f"descriptors {agg}"] = np.abs(
        clf.decision_function(X) - td._reference(enc, X.astype(np.float64), agg)
    ).max()
# FuDD: the reference test's setup
rng = np.random.default_rng(4)
names = [f"bird {c}" for c in range(30)]
henc = tf.HashEncoder(64)
from itertools import combinations

from zsvl.text.descriptors import DescriptorSet, PairAttribute

shared = ["long tail", "red crown", "Short beak", "short beak", "pale legs"]
pairs, store_pairs = {}, {}
for i, j in combinations(range(30), 2):
    if rng.random() < 0.05:
        continue
    items = [
        (
            f"{shared[rng.integers(5)]} of {names[i]}"
            if rng.random() < 0.5
            else shared[rng.integers(5)],
            shared[rng.integers(5)] if rng.random() < 0.5 else f"{names[j]} trait {a}",
        )
        for a in range(int(rng.integers(1, 5)))
    ]
    pairs[f"{i}_{j}"] = items
    store_pairs[(i, j)] = tuple(PairAttribute(f"a{a}", f, s) for a, (f, s) in enumerate(items))
store = DescriptorSet(names, tuple(() for _ in names), store_pairs)
S1 = np.stack([henc.encode_texts([f"A photo of a {c}."])[0] for c in names])
Xf = rng.normal(size=(300, 64)) * 0.1 + S1[rng.integers(0, 30, 300)]
Xf = (Xf / np.linalg.norm(Xf, axis=1, keepdims=True)).astype(np.float32)
fudd = FuDDClassifier(henc, names, descriptors=store, k=10).fit(Xf)
scores = fudd.decision_function(Xf)
ref = tf._reference_fudd(henc.encode_texts, names, pairs, Xf.astype(np.float64), 10)
out["FuDD stage-2 scores (k=10, 30 classes)"] = max(
    np.abs(scores[i, c] - s).max() for i, (c, s) in enumerate(ref)
)
out["FuDD predictions differing"] = sum(
    c[int(np.argmax(s))] != scores[i].argmax() for i, (c, s) in enumerate(ref)
)
# Tip
keys, y, queries, _, centres = tt.clustered(C=10, per_class=16, n_query=500, seed=2)
views = tt.unit(
    keys[:, None, :] + 0.1 * np.random.default_rng(0).normal(size=(len(keys), 10, keys.shape[1]))
)
tip = TipAdapter(centres, logit_scale=100.0, alpha=2.5, beta=5.5).fit(views, y)
K = views.astype(np.float64).mean(1)
K /= np.linalg.norm(K, axis=1, keepdims=True)
exp = tt.direct_logits(
    queries.astype(np.float64), K, y, centres.astype(np.float64), 100.0, 2.5, 5.5
)
out["Tip logits"] = np.abs(tip.decision_function(queries) * 100 - exp).max()
# GDA paper formula
Xg, yg, Xgt, _, _ = tg.gaussian_data(C=10, D=32, n=20, seed=2)
N, D = Xg.shape
X64 = Xg.astype(np.float64)
mu = np.stack([X64[yg == c].mean(0) for c in range(10)])
Z = X64 - mu[yg]
S = Z.T @ Z
P = D * np.linalg.pinv(S + np.trace(S / (N - 1)) * np.eye(D))
Wg = mu @ P
b = np.log(0.1) - 0.5 * np.einsum("cd,de,ce->c", mu, P, mu)
gda = GDAAdapter(np.zeros((10, D), np.float32), logit_scale=100.0).fit(Xg, yg)
out["GDA x W + b (logit units)"] = np.abs(
    gda.gda_logits(Xgt) - (Xgt.astype(np.float64) @ Wg.T + b)
).max()
out["GDA x W + b relative"] = (
    out["GDA x W + b (logit units)"] / np.abs(Xgt.astype(np.float64) @ Wg.T + b).max()
)
# GDA-EM
_, _, Xt, _, mu = tg.gaussian_data(C=6, D=10, n=5, n_test=200, seed=11, spread=1.2)
Te = (mu + np.random.default_rng(3).normal(size=mu.shape)).astype(np.float32)
em = GDAEMAdapter(Te, logit_scale=10.0, max_iter=10, tol=0.0).fit(Xt)
m_, W_, b_, R_ = tg.reference_gda_em(Xt, Te, 10.0, 10)
out["GDA-EM x W + b after 10 rounds (logit units)"] = np.abs(
    em.gda_logits(Xt) - (Xt.astype(np.float64) @ W_.T + b_)
).max()
# TEEN
rng = np.random.default_rng(0)
base, new = rng.normal(size=(200, 64)), rng.normal(size=(50, 64))
out["TEEN prototypes"] = np.abs(
    TEENCalibrator().fit(base).transform(new) - tte.direct_teen(new, base, 0.5, 16.0)
).max()
for k, v in out.items():
    print(f"{k}: {v:.2e}" if isinstance(v, float) else f"{k}: {v}")
# Tip-X
keys, y, queries, _, centres = tt.clustered(C=8, per_class=6, n_query=300, seed=4)
t = 0.5
tip = TipAdapter(centres, logit_scale=100.0, alpha=1.0, beta=2.0, gamma=0.7, kl_temperature=t).fit(
    keys, y
)


def sig(X):
    z = X @ centres.astype(np.float64).T / t
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


p, q = sig(queries.astype(np.float64)), sig(keys.astype(np.float64))
kl = (p * np.log(p)).sum(1)[:, None] - p @ np.log(q).T
kk = (q * np.log(q)).sum(1)[:, None] - q @ np.log(q).T
aff = keys.astype(np.float64) @ keys.astype(np.float64).T
off = ~np.eye(len(keys), dtype=bool)
lo, hi, alo, ahi = kk[off].min(), kk[off].max(), aff[off].min(), aff[off].max()
ekl = -((kl - lo) / (hi - lo) * (ahi - alo) + alo) @ np.eye(8)[y]
base = tt.direct_logits(
    queries.astype(np.float64),
    keys.astype(np.float64),
    y,
    centres.astype(np.float64),
    100.0,
    1.0,
    2.0,
)
print(
    f"Tip-X logits: {np.abs(tip.decision_function(queries) * 100 - (base + 0.7 * ekl)).max():.2e}"
)
# caption support + CaSED on a caption index
import test_vocab_free as tv
from caption_fakes import COLOURS, SHAPES, toy_captions, write_lines
from caption_fakes import HashEncoder as CapEnc

from zsvl.index import build_index
from zsvl.methods.caption_support import CaptionSupportAdapter
from zsvl.methods.vocab_free import VocabularyFreeClassifier

root = Path(tempfile.mkdtemp())
cenc = CapEnc(48)
index = build_index(
    write_lines(root / "c.txt", toy_captions(3000, seed=5)), cenc, root / "ix", tune_queries=50
)
CL = [f"{c} {s}" for c in COLOURS[:3] for s in SHAPES[:3]]
rng = np.random.default_rng(0)
lab = rng.integers(len(CL), size=200)
Xc = (
    cenc.encode_texts([f"a picture of a {CL[v]} on a table" for v in lab])
    + 0.3 * rng.standard_normal((200, 48)).astype(np.float32) / 7
)
Xc = (Xc / np.linalg.norm(Xc, axis=1, keepdims=True)).astype(np.float32)
cs = CaptionSupportAdapter(
    cenc, CL, index=index, templates=["a photo of a {}."], m=8, alpha=2.0, beta=4.0
).fit()
kc = index.embeddings(cs.support_ids_[cs.support_ids_ >= 0]).astype(np.float64)
own = np.repeat(np.arange(len(CL)), (cs.support_ids_ >= 0).sum(1))
refc = np.stack(
    [
        100 * Xc.astype(np.float64) @ cs.weights_[c].astype(np.float64)
        + 2.0 * np.exp(-4.0 * (1 - Xc.astype(np.float64) @ kc[own == c].T)).mean(1)
        for c in range(len(CL))
    ],
    1,
)
print(f"caption support logits: {np.abs(cs.decision_function(Xc) * 100 - refc).max():.2e}")
venc = CapEnc(64)
vindex = build_index(
    write_lines(root / "v.txt", toy_captions(4000, seed=3)), venc, root / "vx", tune_queries=100
)
Xv = tv._images(
    venc, ["red star", "yellow square", "orange triangle", "blue circle", "green hexagon"]
)
vf = VocabularyFreeClassifier(venc, vindex, alpha=0.7).fit()
cands, probs, _ = vf.candidate_probs(Xv)
refv = tv._reference(venc, vindex, Xv.astype(np.float64), 0.7)
print(
    f"CaSED probabilities: {max(abs(probs[i, j] - refv[i][n]) for i, row in enumerate(cands) for j, n in enumerate(row)):.2e}"
)

"""Evaluation methods that used to live only in the toy demo scripts, now runner methods.

``zsvl eval --suite toy --methods templates-7,fudd-full,ncm-new,teen,caption-support-val,retrieval``
reaches each of them; ``zsvl report`` tabulates them with the rest:

- ``templates-7``: zero-shot with CLIP's 7 ImageNet templates (the ensemble baseline);
- ``fudd-full``: FuDD's non-adaptive variant (every class pair's descriptions, one C x D matrix);
- ``ncm-new`` / ``teen``: base-to-new few-shot prototypes. Even class indices are base classes
  (prototype: mean train embedding), odd ones new classes (prototype: mean of the K shots);
  ``teen`` calibrates the new prototypes with TEEN (lam 0.5, tau 16, the paper's values). The
  primary metric is top-1 over all classes on the test images of the new classes ("top1_new");
- ``caption-support-val``: the caption support set with alpha and beta chosen on the labelled
  val split (``caption-support`` uses none);
- ``retrieval``: image-text Recall@1/5/10 on a toy dataset's test scenes with 5 captions each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zsvl.eval.registry import MethodContext, MethodResult, register
from zsvl.methods.zeroshot import ZeroShotClassifier

__all__: list[str] = []

RETRIEVAL_STREAM = 900  # scene_rng stream of the retrieval captions (disjoint from all others)


@register("templates-7", description="zero-shot with CLIP's 7 ImageNet templates")
def _templates7(ctx: MethodContext) -> MethodResult:
    clf = ZeroShotClassifier(ctx.encoder, ctx.classes, templates="imagenet7").fit()
    return MethodResult(clf.decision_function(ctx.X_test), {"templates": "imagenet7"})


@register("fudd-full", description="FuDD non-adaptive: every class pair's descriptions")
def _fudd_full(ctx: MethodContext) -> MethodResult:
    from zsvl.methods.fudd import FuDDClassifier

    pairs = ctx.params.get("descriptors") or f"{ctx.dataset.folder}_fudd"
    clf = FuDDClassifier(ctx.encoder, ctx.classes, descriptors=pairs, adaptive=False).fit()
    hyper = {"adaptive": False, "all_pairs": int(clf.all_pairs_)}
    return MethodResult(clf.decision_function(ctx.X_test), hyper)


def _base_new_prototypes(ctx: MethodContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prototypes (C, D), base class ids, new class ids): base from the whole train split,
    new from the K shots drawn CoOp-style for this seed (plain embeddings, no augmentation)."""
    from zsvl.arrays import l2_normalize
    from zsvl.data.fewshot import sample_few_shot

    C = len(ctx.classes)
    if C < 2:
        raise ValueError("base-to-new prototypes need at least 2 classes.")
    base, new = np.arange(0, C, 2), np.arange(1, C, 2)
    X_train, y_train = ctx.features(ctx.train)
    draw = sample_few_shot(
        {"train": ctx.train, "val": ctx.val}, ctx.shots, ctx.seed, dataset=ctx.dataset.name
    )
    shots = ctx.encoder.encode_images(draw.train_paths, on_error="skip")
    y_shots = np.asarray(draw.train_labels, dtype=np.int64)[shots.indices]
    protos = np.zeros((C, X_train.shape[1]), np.float32)
    counts = np.zeros(C)
    on_base = np.isin(y_train, base)
    np.add.at(protos, y_train[on_base], X_train[on_base])
    np.add.at(counts, y_train[on_base], 1)
    on_new = np.isin(y_shots, new)
    np.add.at(protos, y_shots[on_new], shots.embeddings[on_new])
    np.add.at(counts, y_shots[on_new], 1)
    if (counts == 0).any():
        missing = [ctx.classes.names[i] for i in np.flatnonzero(counts == 0)[:3]]
        raise ValueError(f"no train image or shot for classes {missing}.")
    return l2_normalize(protos / counts[:, None]).astype(np.float32), base, new


def _new_class_result(
    ctx: MethodContext, protos: np.ndarray, new: np.ndarray, **hyper: Any
) -> MethodResult:
    return MethodResult(
        ctx.X_test @ protos.T,
        dict(hyper),
        protocol="base-to-new (no hyperparameters tuned)",
        class_subsets={"new": [int(c) for c in new]},
        primary_metric="top1_new",
    )


@register("ncm-new", uses_shots=True, description="nearest class mean, new classes from K shots")
def _ncm_new(ctx: MethodContext) -> MethodResult:
    protos, _, new = _base_new_prototypes(ctx)
    return _new_class_result(ctx, protos, new)


@register("teen", uses_shots=True, description="TEEN-calibrated new-class prototypes (K shots)")
def _teen(ctx: MethodContext) -> MethodResult:
    from zsvl.arrays import l2_normalize
    from zsvl.methods.teen import TEENCalibrator

    lam = float(ctx.params.get("lam", 0.5))
    tau = float(ctx.params.get("tau", 16.0))
    protos, base, new = _base_new_prototypes(ctx)
    calibrated = protos.copy()
    moved = TEENCalibrator(lam=lam, tau=tau).fit(protos[base]).transform(protos[new])
    calibrated[new] = l2_normalize(moved)
    return _new_class_result(ctx, calibrated, new, lam=lam, tau=tau)


@register(
    "caption-support-val",
    description="caption support set, alpha and beta chosen on the labelled val split",
)
def _caption_support_val(ctx: MethodContext) -> MethodResult:
    from zsvl.eval.methods import caption_support_adapter

    X_val, y_val = ctx.features(ctx.val)
    clf = caption_support_adapter(ctx).fit(X_val=X_val, y_val=y_val)
    return MethodResult(
        clf.decision_function(ctx.X_test),
        {"m": clf.m, "alpha": clf.alpha_, "beta": clf.beta_},
        protocol="alpha, beta on the labelled val split",
    )


def toy_retrieval_set(dataset: str, per_class: int = 10, captions_per_image: int = 5) -> Any:
    """The first ``per_class`` test scenes of each class of a toy dataset, rendered, and
    ``captions_per_image`` attribute captions of each (a RetrievalSet)."""
    from zsvl.eval.retrieval import RetrievalSet
    from zsvl.toy.captions import caption_scene
    from zsvl.toy.render import render_scenes
    from zsvl.toy.suite import get_toy_dataset, split_scenes
    from zsvl.toy.world import scene_rng

    pairs = split_scenes(get_toy_dataset(dataset), "test", per_class=per_class)
    captions, owner = [], []
    for i, (scene, _) in enumerate(pairs):
        rng = scene_rng(0, i, RETRIEVAL_STREAM)
        for _ in range(captions_per_image):
            captions.append(caption_scene(scene, rng))
            owner.append(i)
    images = list(render_scenes([scene for scene, _ in pairs]))
    return RetrievalSet(images=images, captions=captions, text_to_image=np.asarray(owner))


@register("retrieval", description="image-text Recall@1/5/10 on a toy dataset's test scenes")
def _retrieval(ctx: MethodContext) -> MethodResult:
    from zsvl.eval.retrieval import evaluate_retrieval
    from zsvl.toy.suite import TOY_DATASETS

    if ctx.dataset.name not in {s.name for s in TOY_DATASETS}:
        raise ValueError(
            f"retrieval needs captioned images; {ctx.dataset.name} has none. Use "
            "zsvl.eval.retrieval.evaluate_retrieval with read_karpathy_json for COCO/Flickr."
        )
    per_class = int(ctx.params.get("per_class", 10))
    found = evaluate_retrieval(ctx.encoder, toy_retrieval_set(ctx.dataset.name, per_class))
    metrics = {k: float(v) for k, v in found.items() if "R@" in k}
    return MethodResult(
        None,
        {"per_class": per_class, "n_images": found["n_images"], "n_texts": found["n_texts"]},
        metrics=metrics,
        protocol="retrieval (no labels)",
        primary_metric="text_to_image_R@1",
    )

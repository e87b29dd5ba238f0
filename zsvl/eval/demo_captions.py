"""The caption rows of ``zsvl demo``: vocabulary-free naming, caption support sets, retrieval.

On the toy world, offline: build (or reuse) a caption index of the toy corpus with the encoder,
then (1) name every toy test image with CaSED and score it with the VIC metrics, (2) compare
zero-shot with the caption-support adapter on the fine-grained toy set (no labels; and with alpha
and beta chosen on the labelled val split), (3) image-text retrieval R@1/5/10 on freshly rendered
scenes with five captions each.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_caption_demo", "format_caption_table", "toy_retrieval_set"]

logger = logging.getLogger(__name__)

RETRIEVAL_STREAM = 900  # scene_rng stream of the retrieval images (disjoint from all others)


def toy_retrieval_set(n_images: int = 500, captions_per_image: int = 5, seed: int = 0) -> Any:
    """Rendered toy scenes and ``captions_per_image`` attribute captions of each (RetrievalSet)."""
    from zsvl.eval.retrieval import RetrievalSet
    from zsvl.toy.captions import caption_scene
    from zsvl.toy.render import render_scenes
    from zsvl.toy.world import sample_scene, scene_rng

    scenes, captions, owner = [], [], []
    for i in range(n_images):
        rng = scene_rng(seed, i, RETRIEVAL_STREAM)
        scene = sample_scene(rng)
        scenes.append(scene)
        for _ in range(captions_per_image):
            captions.append(caption_scene(scene, rng))
            owner.append(i)
    return RetrievalSet(
        images=list(render_scenes(scenes)), captions=captions, text_to_image=np.asarray(owner)
    )


def _caption_index(root: Path, encoder: Any, index_dir: Path | None) -> Any:
    from zsvl.index.build import build_index

    corpus = root / "captions" / "toy_captions.txt"
    out = index_dir or root / "caption-index"
    return build_index(corpus, encoder, out, max_memory="1G", shard_size=16384, batch_size=512)


def _vocabulary_free_rows(root: Path, encoder: Any, index: Any, k: int) -> list[dict[str, Any]]:
    from zsvl.data.splits import read_split_file
    from zsvl.eval.vic_metrics import vic_metrics
    from zsvl.methods.vocab_free import VocabularyFreeClassifier
    from zsvl.toy.suite import TOY_DATASETS

    clf = VocabularyFreeClassifier(encoder, index, k=k).fit()
    rows = []
    for spec in TOY_DATASETS:
        start = time.perf_counter()
        test = read_split_file(root / spec.folder / spec.split_file)["test"]
        encoded = encoder.encode_images(test.paths, on_error="raise")
        labels = np.asarray(test.labels)[encoded.indices]
        result = clf.predict_words(encoded.embeddings)
        metrics = vic_metrics(result.labels, labels, list(test.classes.names))
        top = max(set(result.labels), key=result.labels.count)
        rows.append(
            {
                "task": "vocabulary-free",
                "dataset": spec.name,
                "images": len(labels),
                **{
                    key: metrics[key]
                    for key in ("cluster_accuracy", "semantic_iou", "semantic_similarity")
                },
                "distinct_predictions": len(set(result.labels)),
                "most_common": top,
                "seconds": time.perf_counter() - start,
            }
        )
    return rows


def _caption_support_row(root: Path, encoder: Any, index: Any, m: int) -> dict[str, Any]:
    from zsvl.data.splits import read_split_file
    from zsvl.eval.metrics import topk_accuracy
    from zsvl.methods.caption_support import CaptionSupportAdapter
    from zsvl.methods.zeroshot import ZeroShotClassifier
    from zsvl.toy.suite import get_toy_dataset

    start = time.perf_counter()
    spec = get_toy_dataset("ToyFine")
    splits = read_split_file(root / spec.folder / spec.split_file)
    test, val = splits["test"], splits["val"]
    X = encoder.encode_images(test.paths, on_error="raise").embeddings
    Xv = encoder.encode_images(val.paths, on_error="raise").embeddings
    y, yv = np.asarray(test.labels), np.asarray(val.labels)
    templates = [spec.template]
    zs = ZeroShotClassifier(encoder, test.classes, templates=templates).fit()
    free = CaptionSupportAdapter(encoder, test.classes, index=index, templates=templates, m=m).fit()
    tuned = CaptionSupportAdapter(encoder, test.classes, index=index, templates=templates, m=m).fit(
        X_val=Xv, y_val=yv
    )
    mention = float(np.mean([n / m for n in (free.support_ids_ >= 0).sum(1)]))
    return {
        "task": "caption-support",
        "dataset": spec.name,
        "images": len(y),
        "m": m,
        "zero_shot_top1": topk_accuracy(zs.decision_function(X), y),
        "caption_support_top1": topk_accuracy(free.decision_function(X), y),
        "caption_support_val_tuned_top1": topk_accuracy(tuned.decision_function(X), y),
        "val_alpha": tuned.alpha_,
        "val_beta": tuned.beta_,
        "support_fill": mention,
        "seconds": time.perf_counter() - start,
    }


def _retrieval_row(encoder: Any, n_images: int) -> dict[str, Any]:
    from zsvl.eval.retrieval import evaluate_retrieval

    start = time.perf_counter()
    out = evaluate_retrieval(encoder, toy_retrieval_set(n_images))
    return {
        "task": "retrieval",
        "dataset": f"toy scenes ({n_images} images x 5 captions)",
        **out,
        "seconds": time.perf_counter() - start,
    }


def run_caption_demo(
    root: str | Path | None,
    encoder: Any,
    *,
    index_dir: str | Path | None = None,
    k: int = 10,
    m: int = 32,
    retrieval_images: int = 500,
) -> list[dict[str, Any]]:
    """Build/reuse the toy suite and its caption index, then the three caption evaluations.

    Returns one flat dict per row (``task`` is "vocabulary-free", "caption-support" or
    "retrieval"); numbers are percentages.
    """
    from zsvl.toy.suite import build_suite, default_suite_root

    root = Path(build_suite(Path(root) if root is not None else default_suite_root()))
    index = _caption_index(root, encoder, Path(index_dir) if index_dir else None)
    rows = _vocabulary_free_rows(root, encoder, index, k)
    rows.append(_caption_support_row(root, encoder, index, m))
    rows.append(_retrieval_row(encoder, retrieval_images))
    return rows


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def format_caption_table(rows: list[dict[str, Any]]) -> str:
    """Markdown tables of the caption demo rows (one table per task)."""
    out = []
    vf = [r for r in rows if r["task"] == "vocabulary-free"]
    if vf:
        out += [
            "Vocabulary-free classification (CaSED over the toy caption index; no class list)",
            "",
            "| dataset | cluster acc | semantic IoU | semantic sim | distinct names |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {r['dataset']} | {_fmt(r['cluster_accuracy'])} | {_fmt(r['semantic_iou'])} | "
            f"{_fmt(r['semantic_similarity'])} | {r['distinct_predictions']} |"
            for r in vf
        ]
        out.append("")
    for r in (r for r in rows if r["task"] == "caption-support"):
        out += [
            f"Caption support set on {r['dataset']} (top-1 %, {r['images']} test images)",
            "",
            "| zero-shot | + captions (no labels) | + captions (alpha, beta on val) |",
            "|---:|---:|---:|",
            f"| {_fmt(r['zero_shot_top1'])} | {_fmt(r['caption_support_top1'])} | "
            f"{_fmt(r['caption_support_val_tuned_top1'])} |",
            "",
        ]
    for r in (r for r in rows if r["task"] == "retrieval"):
        out += [
            f"Image-text retrieval, {r['dataset']}",
            "",
            "| direction | R@1 | R@5 | R@10 |",
            "|---|---:|---:|---:|",
        ]
        for d in ("text_to_image", "image_to_text"):
            out.append(
                f"| {d.replace('_', ' ')} | "
                + " | ".join(_fmt(r[f"{d}_R@{k}"]) for k in (1, 5, 10))
                + " |"
            )
        out.append("")
    return "\n".join(out).rstrip()

"""Image-text retrieval Recall@K (both directions) and Karpathy/COCO readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zsvl.errors import InvalidParameterError
from zsvl.eval.retrieval import read_karpathy_json, retrieval_recall


def _reference(img, txt, t2i, k):
    """Loops: rank of each caption's image; best rank of each image's captions."""
    sims = txt @ img.T
    t2i_hits = [t2i[j] in np.argsort(-sims[j], kind="stable")[:k] for j in range(len(txt))]
    i2t_hits = []
    for i in range(len(img)):
        top = np.argsort(-sims[:, i], kind="stable")[:k]
        i2t_hits.append(any(t2i[j] == i for j in top))
    return 100 * np.mean(t2i_hits), 100 * np.mean(i2t_hits)


def test_recall_matches_a_loop_reference() -> None:
    rng = np.random.default_rng(0)
    img = rng.standard_normal((40, 16)).astype(np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    t2i = np.repeat(np.arange(40), 5)
    txt = img[t2i] + 0.9 * rng.standard_normal((200, 16)).astype(np.float32)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    out = retrieval_recall(img, txt, t2i, chunk=17)
    for k in (1, 5, 10):
        t, i = _reference(img, txt, t2i, k)
        assert out[f"text_to_image_R@{k}"] == pytest.approx(t)
        assert out[f"image_to_text_R@{k}"] == pytest.approx(i)
    assert out["primary"] == "mean_recall" and 0 < out["mean_recall"] < 100
    perfect = retrieval_recall(img, img[t2i], t2i)
    assert perfect["text_to_image_R@1"] == 100.0 and perfect["image_to_text_R@1"] == 100.0


def test_bad_inputs() -> None:
    img = np.eye(3, dtype=np.float32)
    with pytest.raises(InvalidParameterError, match="image index for every caption"):
        retrieval_recall(img, img, [0, 1])
    with pytest.raises(InvalidParameterError, match="dimension"):
        retrieval_recall(img, np.ones((3, 2), np.float32), [0, 1, 2])


def test_karpathy_and_coco_files(tmp_path: Path) -> None:
    karpathy = {
        "images": [
            {
                "filepath": "val2014",
                "filename": "a.jpg",
                "split": "test",
                "sentences": [{"raw": "a dog."}, {"raw": "a brown dog"}],
            },
            {
                "filepath": "val2014",
                "filename": "b.jpg",
                "split": "train",
                "sentences": [{"raw": "x"}],
            },
            {
                "filepath": "val2014",
                "filename": "c.jpg",
                "split": "test",
                "sentences": [{"tokens": ["a", "cat"]}],
            },
        ]
    }
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(karpathy))
    data = read_karpathy_json(path, image_root=tmp_path / "coco")
    assert data.captions == ["a dog.", "a brown dog", "a cat"]
    assert data.text_to_image.tolist() == [0, 0, 1]
    assert data.images == [tmp_path / "coco/val2014/a.jpg", tmp_path / "coco/val2014/c.jpg"]
    coco = {
        "images": [{"id": 7, "file_name": "x.jpg"}, {"id": 9, "file_name": "y.jpg"}],
        "annotations": [
            {"image_id": 9, "caption": "y1"},
            {"image_id": 7, "caption": "x1"},
            {"image_id": 9, "caption": "y2"},
        ],
    }
    cpath = tmp_path / "captions_val.json"
    cpath.write_text(json.dumps(coco))
    c = read_karpathy_json(cpath)
    assert c.captions == ["y1", "x1", "y2"] and c.text_to_image.tolist() == [1, 0, 1]
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InvalidParameterError, match="neither a Karpathy"):
        read_karpathy_json(bad)
    with pytest.raises(InvalidParameterError, match="no captions in split 'val'"):
        read_karpathy_json(path, split="val")

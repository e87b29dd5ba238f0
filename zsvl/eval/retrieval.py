"""Image-text retrieval: Recall@K in both directions, and COCO/Flickr Karpathy-style datasets.

Each image has one or more captions; ``text_to_image[j]`` is the image of caption j. Text-to-image
R@K: percent of captions whose image is among the K images nearest to the caption. Image-to-text
R@K: percent of images with at least one of their own captions among the K nearest captions
(CLIP_benchmark's definition). Similarities are computed in query chunks on the encoder's device.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings
from zsvl.errors import InvalidParameterError

__all__ = ["RetrievalSet", "retrieval_recall", "read_karpathy_json", "evaluate_retrieval"]


@dataclass(frozen=True)
class RetrievalSet:
    """Images and their captions. images : paths or in-memory images (n_images); captions : list
    of str (n_texts); text_to_image : int64 (n_texts,) index of each caption's image."""

    images: Sequence[Any]
    captions: list[str]
    text_to_image: np.ndarray

    def __post_init__(self) -> None:
        t2i = np.asarray(self.text_to_image, dtype=np.int64)
        if len(t2i) != len(self.captions):
            raise InvalidParameterError(
                f"{len(self.captions)} captions but {len(t2i)} text_to_image entries."
            )
        if len(t2i) and (t2i.min() < 0 or t2i.max() >= len(self.images)):
            raise InvalidParameterError("text_to_image points outside the image list.")
        object.__setattr__(self, "text_to_image", t2i)


def _ranks_of_truth(scores: Any, truth_mask: Any) -> Any:
    """Best (0-based) rank of any true column per row: number of columns scoring higher than the
    best-scoring true one. scores, truth_mask : torch (q, n)."""
    import torch

    best_true = scores.masked_fill(~truth_mask, float("-inf")).max(dim=1, keepdim=True).values
    return (scores > best_true).sum(dim=1).to(torch.int64)


def retrieval_recall(
    image_emb: Any,
    text_emb: Any,
    text_to_image: Any,
    *,
    ks: Sequence[int] = (1, 5, 10),
    chunk: int = 1024,
    device: Any = "cpu",
) -> dict[str, float]:
    """R@K both ways from embeddings: images (n_images, dim), texts (n_texts, dim).

    Returns ``{"text_to_image_R@1": ..., "image_to_text_R@1": ..., ..., "mean_recall": ...}`` in
    percent, with "primary" naming mean_recall.
    """
    import torch

    img = as_embeddings(image_emb, name="image_emb")
    txt = as_embeddings(text_emb, dim=img.shape[1], name="text_emb")
    t2i = np.asarray(text_to_image, dtype=np.int64)
    if len(t2i) != len(txt) or (len(t2i) and t2i.max() >= len(img)):
        raise InvalidParameterError("text_to_image must give an image index for every caption.")
    with torch.inference_mode():
        Im = torch.as_tensor(img, device=device)
        T = torch.as_tensor(txt, device=device)
        owner = torch.as_tensor(t2i, device=device)
        t_ranks = []
        for s in range(0, len(T), chunk):
            scores = T[s : s + chunk] @ Im.T
            mask = torch.zeros_like(scores, dtype=torch.bool)
            mask[torch.arange(len(scores), device=device), owner[s : s + chunk]] = True
            t_ranks.append(_ranks_of_truth(scores, mask))
        i_ranks = []
        for s in range(0, len(Im), chunk):
            scores = Im[s : s + chunk] @ T.T
            ids = torch.arange(s, min(s + chunk, len(Im)), device=device)
            mask = owner[None, :] == ids[:, None]
            i_ranks.append(_ranks_of_truth(scores, mask))
        tr = torch.cat(t_ranks).cpu().numpy() if t_ranks else np.zeros(0, np.int64)
        ir = torch.cat(i_ranks).cpu().numpy() if i_ranks else np.zeros(0, np.int64)
    out: dict[str, Any] = {"primary": "mean_recall"}
    for k in ks:
        out[f"text_to_image_R@{k}"] = float(100.0 * np.mean(tr < k))
    for k in ks:
        out[f"image_to_text_R@{k}"] = float(100.0 * np.mean(ir < k))
    out["mean_recall"] = float(np.mean([v for key, v in out.items() if "R@" in key]))
    return out


def read_karpathy_json(
    path: str | Path, *, split: str = "test", image_root: str | Path | None = None
) -> RetrievalSet:
    """A Karpathy split file (``{"images": [{"filepath", "filename", "split", "sentences":
    [{"raw": ...}]}]}``, COCO and Flickr30k) or a COCO captions file (``{"images": [{"id",
    "file_name"}], "annotations": [{"image_id", "caption"}]}``, all images). Image paths are
    relative to ``image_root`` (default: the JSON file's folder)."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(f"Cannot read the retrieval file {path}: {exc}") from exc
    images: list[Path] = []
    captions: list[str] = []
    owner: list[int] = []
    if isinstance(data, dict) and "annotations" in data:
        position = {}
        for img in data["images"]:
            position[img["id"]] = len(images)
            images.append(root / img["file_name"])
        for ann in data["annotations"]:
            if ann["image_id"] in position:
                captions.append(str(ann["caption"]).strip())
                owner.append(position[ann["image_id"]])
    elif isinstance(data, dict) and "images" in data:
        for img in data["images"]:
            if (
                split
                and img.get("split", split) != split
                and not (split == "train" and img.get("split") == "restval")
            ):
                continue
            for sent in img.get("sentences", []):
                captions.append(str(sent.get("raw") or " ".join(sent.get("tokens", []))).strip())
                owner.append(len(images))
            images.append(root / img.get("filepath", "") / img["filename"])
    else:
        raise InvalidParameterError(
            f"{path} is neither a Karpathy split file (images with sentences) nor a COCO captions "
            f"file (images + annotations)."
        )
    if not captions:
        raise InvalidParameterError(f"{path} has no captions in split {split!r}.")
    return RetrievalSet(images=images, captions=captions, text_to_image=np.asarray(owner))


def evaluate_retrieval(
    encoder: Any, data: RetrievalSet, *, batch_size: int = 64, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Any]:
    """Encode the set's images and captions with ``encoder`` and compute :func:`retrieval_recall`.
    Images that cannot be read are an error (recall over a subset would not be comparable)."""
    img = encoder.encode_images(list(data.images), batch_size=batch_size, on_error="raise")
    txt = encoder.encode_texts(data.captions)
    out = retrieval_recall(
        img.embeddings, txt, data.text_to_image, ks=ks, device=getattr(encoder, "device", "cpu")
    )
    out.update(n_images=len(data.images), n_texts=len(data.captions))
    return out

"""``explain_images``: classify image files by their descriptors and explain each prediction.

A thin composition of :func:`zsvl.models.load_model`, :class:`DescriptorClassifier` and its
``explain``; the explanation itself (``Evidence``, ``Explanation``, ``explain_segments``) lives in
:mod:`zsvl.methods.text_heads` and is re-exported here.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from zsvl.methods.descriptors import DescriptorClassifier
from zsvl.methods.text_heads import Evidence, Explanation, explain_segments
from zsvl.embed.loading import DEFAULT_MODEL, load_model
from zsvl.models.base import Encoder, OnError

__all__ = ["Evidence", "Explanation", "explain_segments", "explain_images"]


def explain_images(
    images: Any, descriptors: Any, *, model: Any = None, aggregation: str = "mean_sims",
    top: int = 5, classes: Any = None, batch_size: int = 64, on_error: OnError = "skip",
    device: str | None = None,
) -> dict[str, Any]:
    """Classify images with descriptors and explain each prediction (``zsvl classify --explain``).

    Returns {"results": [{"source", "label", "probability", "score", "explanation": [...]}, ...],
    "skipped": [{"source", "error"}]}.
    """
    encoder = model if isinstance(model, Encoder) else load_model(model or DEFAULT_MODEL,
                                                                  device=device)
    clf = DescriptorClassifier(encoder, descriptors, classes, aggregation=aggregation).fit()
    encoded = encoder.encode_images(images, batch_size=batch_size, on_error=on_error)
    explanations = clf.explain(encoded.embeddings, top=top) if len(encoded) else []
    proba = clf.predict_proba(encoded.embeddings) if len(encoded) else np.zeros((0, 1))
    results = [
        {
            "source": encoded.sources[i],
            "label": e.classname,
            "probability": float(proba[k, e.label]),
            "score": e.score,
            "explanation": [asdict(ev) for ev in e.evidence],
        }
        for k, (i, e) in enumerate(zip(encoded.indices, explanations, strict=True))
    ]
    skipped = [{"source": f.source, "error": f.error} for f in encoded.failures]
    return {"results": results, "skipped": skipped}

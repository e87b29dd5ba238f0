"""zsvl: training-free zero-shot image classification and retrieval with CLIP-style models.

``import zsvl`` is cheap: torch, open_clip, faiss and openai load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsvl._lazy import lazy_exports
from zsvl._version import __version__

__all__ = [
    "__version__",
    "classify",
    "load_model",
    "list_models",
    "save_classifier",
    "load_classifier",
    "ClassSet",
    "ZeroShotClassifier",
    "ClassificationResult",
    "DescriptorClassifier",
    "WaffleCLIPClassifier",
    "FuDDClassifier",
    "GDAAdapter",
    "GDAEMAdapter",
    "TipAdapter",
    "TEENCalibrator",
    "CaptionSupportAdapter",
    "VocabularyFreeClassifier",
    "build_index",
    "CaptionIndex",
]

# name -> module that defines it; loaded on first attribute access (PEP 562)
_LAZY = {
    "classify": "zsvl.api",
    "load_model": "zsvl.api",
    "list_models": "zsvl.models.registry",
    "save_classifier": "zsvl.persist",
    "load_classifier": "zsvl.persist",
    "ClassSet": "zsvl.text.classes",
    "ZeroShotClassifier": "zsvl.methods.zeroshot",
    "ClassificationResult": "zsvl.api",
    "DescriptorClassifier": "zsvl.methods.descriptors",
    "WaffleCLIPClassifier": "zsvl.methods.waffle",
    "FuDDClassifier": "zsvl.methods.fudd",
    "GDAAdapter": "zsvl.methods.gda",
    "GDAEMAdapter": "zsvl.methods.gda_em",
    "TipAdapter": "zsvl.methods.tip",
    "TEENCalibrator": "zsvl.methods.teen",
    "CaptionSupportAdapter": "zsvl.methods.caption_support",
    "VocabularyFreeClassifier": "zsvl.methods.vocab_free",
    "build_index": "zsvl.index.build",
    "CaptionIndex": "zsvl.index.search",
}

if TYPE_CHECKING:  # pragma: no cover
    from zsvl.api import ClassificationResult, classify, load_model
    from zsvl.methods.zeroshot import ZeroShotClassifier
    from zsvl.models.registry import list_models
    from zsvl.persist import load_classifier, save_classifier
    from zsvl.text.classes import ClassSet


__getattr__, __dir__ = lazy_exports("zsvl", globals(), _LAZY, __all__)

"""zsvl: training-free zero-shot image classification and retrieval with CLIP-style models.

The front door::

    result = zsvl.classify("photos/", ["cat", "dog"], model="ViT-B-32:laion2b_s34b_b79k")
    result = zsvl.classify("photos/", method="gda", support="shots/")   # shots/<class>/*.jpg
    zsvl.save_classifier(clf, "clf.zsvl"); clf = zsvl.load_classifier("clf.zsvl")

``result.scores`` / ``result.probs`` are probabilities: softmax(logit_scale * s) over the given
classes, with s the classifier's ``decision_function`` (the cosine of image and class text
embeddings for zero-shot) and logit_scale the model's learned temperature (100 for OpenAI
CLIP). ``result.labels`` holds class names, ``result.label_indices`` their positions. Template
sets (``templates=``): "single", "imagenet7", "imagenet80", "coop:<dataset>" (the CoOp prompt
of each of the 11 datasets); ``zsvl.text.templates.list_template_sets()`` lists them.

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

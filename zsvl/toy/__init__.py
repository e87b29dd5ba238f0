"""The synthetic world where everything runs offline: renderer, captions, toy suite, tiny CLIP.

- :mod:`zsvl.toy.world`: attribute vocabularies, scenes and class tables (data in world.json)
- :mod:`zsvl.toy.render`: numpy renderer, a pure function of ``(seed, index)``
- :mod:`zsvl.toy.captions`: paraphrased captions and the toy caption corpus
- :mod:`zsvl.toy.suite`: the toy datasets written in the CoOp layout (:func:`build_suite`)
- :mod:`zsvl.toy.model`: the shipped tiny CLIP (``open_clip`` config + fp16 checkpoint)
- :mod:`zsvl.toy.train`: ``python -m zsvl.toy.train`` re-trains it
- :mod:`zsvl.toy.evaluate`: zero-shot checks with open_clip directly
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TOY_DATASETS",
    "build_suite",
    "default_suite_root",
    "TOY_MODEL_NAME",
    "register_toy_config",
    "load_toy_clip",
]

_LAZY = {
    "TOY_DATASETS": "zsvl.toy.suite",
    "build_suite": "zsvl.toy.suite",
    "default_suite_root": "zsvl.toy.suite",
    "TOY_MODEL_NAME": "zsvl.toy.model",
    "register_toy_config": "zsvl.toy.model",
    "load_toy_clip": "zsvl.toy.model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zsvl.toy' has no attribute {name!r}")

"""The tiny CLIP of the toy world: its open_clip config, its shipped checkpoint, and a loader.

The model is a standard open_clip ``CLIP`` (a small ModifiedResNet image tower, a causal text
transformer with argmax pooling, the CLIP BPE tokenizer with context length 77). It loads through
the same code path as any open_clip model once the config is registered::

    register_toy_config()
    model = open_clip.create_model(TOY_MODEL_NAME, pretrained=str(toy_checkpoint_path()))
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "TOY_MODEL_NAME",
    "toy_config_path",
    "toy_checkpoint_path",
    "toy_provenance_path",
    "register_toy_config",
    "load_toy_clip",
]

TOY_MODEL_NAME = "zsvl-toy-clip"


def _package_file(relative: str) -> Path:
    return Path(str(resources.files("zsvl.toy").joinpath(relative)))


def toy_config_path() -> Path:
    """The open_clip model config JSON (``zsvl/toy/zsvl-toy-clip.json``)."""
    return _package_file(f"{TOY_MODEL_NAME}.json")


def toy_checkpoint_path() -> Path:
    """The shipped fp16 state_dict (``zsvl/toy/weights/toy-clip.pt``)."""
    return _package_file("weights/toy-clip.pt")


def toy_provenance_path() -> Path:
    """How the shipped checkpoint was trained and what it scores (``weights/toy-clip.json``)."""
    return _package_file("weights/toy-clip.json")


def register_toy_config() -> str:
    """Make ``open_clip.create_model("zsvl-toy-clip")`` work; idempotent. Returns the name."""
    import open_clip

    if TOY_MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(toy_config_path())
    return TOY_MODEL_NAME


def load_toy_clip(device: str = "cpu") -> tuple[Any, Any, Any]:
    """The shipped tiny CLIP in eval mode, its val transform and its tokenizer."""
    import open_clip

    register_toy_config()
    path = toy_checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"The toy CLIP checkpoint {path} is missing; train it with `python -m zsvl.toy.train`."
        )
    model, _, preprocess = open_clip.create_model_and_transforms(
        TOY_MODEL_NAME, pretrained=str(path), device=device
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(TOY_MODEL_NAME)

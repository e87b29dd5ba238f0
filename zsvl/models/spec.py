"""Model specs: every way an open_clip user names a model, parsed into one frozen value.

Accepted forms::

    "ViT-B-32:laion2b_s34b_b79k"          architecture and pretrained tag
    ("ViT-B-32", "openai")                 the same as a tuple
    "ViT-B-32:/path/to/weights.bin"        architecture and a local checkpoint file
    ("ViT-B-32", Path("weights.bin"))
    "local-dir:/path/to/folder"            open_clip_config.json + weights in a folder
    "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    "ViT-B-32:random"                      random weights (speed work only)
    "toy"                                  a name from zsvl's registry (see registry.py)
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from zsvl.errors import InvalidParameterError, ModelNotFoundError

__all__ = ["ModelSpec", "SpecLike", "parse_spec", "RANDOM_WEIGHTS"]

RANDOM_WEIGHTS = "random"
_SCHEMAS = ("hf-hub:", "local-dir:")

SpecLike = Union[str, tuple, "ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model name. Exactly one of the weight sources is set, or none for schemas."""

    arch: str  # open_clip architecture name, or "hf-hub:..." / "local-dir:..."
    tag: str | None = None  # open_clip pretrained tag ("openai", "laion2b_s34b_b79k", "random")
    checkpoint: Path | None = None  # local weights file
    default_templates: str = "imagenet80"  # template set used when the caller names none

    @property
    def schema(self) -> str | None:
        for prefix in _SCHEMAS:
            if self.arch.startswith(prefix):
                return prefix[:-1]
        return None

    @property
    def random(self) -> bool:
        return self.tag == RANDOM_WEIGHTS

    def __str__(self) -> str:
        if self.schema:
            return self.arch
        if self.checkpoint is not None:
            return f"{self.arch}:{self.checkpoint}"
        return f"{self.arch}:{self.tag}"


def parse_spec(spec: SpecLike, *, alias_names: Iterable[str] = ()) -> ModelSpec:
    """Parse any accepted model spec into a :class:`ModelSpec` and validate it against open_clip.

    ``alias_names`` only feeds the "did you mean" hint of an unknown name.
    """
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], str):
            raise InvalidParameterError(
                f"A model spec tuple must be (architecture, pretrained), e.g. ('ViT-B-32', 'openai'). "
                f"Got {spec!r}."
            )
        return _validated(spec[0], spec[1])
    if isinstance(spec, os.PathLike):
        raise InvalidParameterError(
            f"A checkpoint file needs its architecture: use ('ViT-B-32', {str(spec)!r}) or "
            f"'ViT-B-32:{spec}'. Got the path alone."
        )
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidParameterError(
            f"A model spec must be a string like 'ViT-B-32:laion2b_s34b_b79k' or a tuple "
            f"('ViT-B-32', 'openai'). Got {spec!r}."
        )
    spec = spec.strip()
    if spec.startswith(_SCHEMAS):
        if spec.startswith("local-dir:") and not Path(spec[len("local-dir:") :]).is_dir():
            raise InvalidParameterError(
                f"The folder of {spec!r} does not exist. A local-dir: spec needs a folder holding "
                f"open_clip_config.json and the weights file."
            )
        return ModelSpec(arch=spec)
    arch, sep, pretrained = spec.partition(":")
    if not sep:
        return _validated(arch, None, alias_names=alias_names)
    return _validated(arch, pretrained)


def _validated(arch: str, pretrained: object, *, alias_names: Iterable[str] = ()) -> ModelSpec:
    import open_clip

    known = open_clip.list_models()
    if arch not in known:
        names = list(known) + list(alias_names)
        close = difflib.get_close_matches(arch, names, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ModelNotFoundError(
            f"Unknown model architecture {arch!r}.{hint} `zsvl models` lists the known specs."
        )
    if pretrained is None:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        example = f"'{arch}:{tags[0]}'" if tags else f"'{arch}:/path/to/weights.bin'"
        raise InvalidParameterError(
            f"The model spec {arch!r} names no weights. Add a pretrained tag or a checkpoint file, "
            f"e.g. {example}; tags for {arch}: {', '.join(tags) or 'none'}."
        )
    if isinstance(pretrained, os.PathLike):
        pretrained = os.fspath(pretrained)
    if not isinstance(pretrained, str) or not pretrained:
        raise InvalidParameterError(
            f"The pretrained part of a model spec must be a str. Got {pretrained!r}."
        )
    if pretrained == RANDOM_WEIGHTS:
        return ModelSpec(arch=arch, tag=RANDOM_WEIGHTS)
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if pretrained in tags:
        return ModelSpec(arch=arch, tag=pretrained)
    path = Path(pretrained).expanduser()
    if path.is_file():
        return ModelSpec(arch=arch, checkpoint=path.resolve())
    looks_like_path = os.sep in pretrained or path.suffix in {".pt", ".bin", ".pth", ".safetensors"}
    if looks_like_path:
        raise InvalidParameterError(
            f"Checkpoint file {str(path)!r} for {arch} does not exist. Check the path, or use a "
            f"pretrained tag: {', '.join(tags) or 'none known'}."
        )
    close = difflib.get_close_matches(pretrained, tags, n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ModelNotFoundError(
        f"Unknown pretrained tag {pretrained!r} for {arch}.{hint} Tags for {arch}: "
        f"{', '.join(tags) or 'none'}; or give a local checkpoint file path."
    )

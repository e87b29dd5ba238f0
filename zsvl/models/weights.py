"""Where a spec's weights come from: offline checks, helpful errors, and a stable weights id."""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

from zsvl.errors import WeightsNotFoundError
from zsvl.models.spec import ModelSpec

__all__ = ["check_weights_available", "weights_id", "warn_quickgelu", "hf_offline"]

logger = logging.getLogger(__name__)

_HF_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def hf_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set to a true value right now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _hf_location(spec: ModelSpec) -> tuple[str, list[str]] | None:
    """(repo_id, candidate filenames) on the Hugging Face Hub for a tag or hf-hub: spec."""
    if spec.schema == "hf-hub":
        return spec.arch[len("hf-hub:") :], list(_HF_WEIGHT_FILES)
    if spec.tag is None or spec.random:
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag) or {}
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    repo, filename = os.path.split(hub)
    if filename:
        stem = filename.rsplit(".", 1)[0]
        return repo, [stem + ".safetensors", filename]
    return repo, list(_HF_WEIGHT_FILES)


def _missing_error(spec: ModelSpec, looked_for: str) -> WeightsNotFoundError:
    arch = spec.arch if not spec.schema else "ARCH"
    return WeightsNotFoundError(
        f"Weights for {spec} are not available offline: looked for {looked_for}.\n"
        f"Provide them in one of three ways:\n"
        f"  1. a local checkpoint file: load_model('{arch}:/path/to/open_clip_pytorch_model.bin')\n"
        f"     (or --model {arch}:/path/to/file on the command line);\n"
        f"  2. the Hugging Face cache: download the repo on a machine with network "
        f"(`hf download REPO`), copy the cache to this machine, point HF_HOME or cache_dir at "
        f"it and set HF_HUB_OFFLINE=1;\n"
        f"  3. a folder with open_clip_config.json and the weights: load_model('local-dir:/path')."
    )


def check_weights_available(spec: ModelSpec, *, cache_dir: str | None = None) -> None:
    """Raise :class:`WeightsNotFoundError` early when offline and the weights are not cached.

    Online, nothing is checked here: open_clip downloads, and a failed download is turned into
    the same error by the caller.
    """
    if spec.checkpoint is not None:
        if not spec.checkpoint.is_file():
            raise _missing_error(spec, f"the file {spec.checkpoint}")
        return
    if spec.schema == "local-dir" or spec.random or not hf_offline():
        return
    location = _hf_location(spec)
    if location is None:
        return  # URL-only weights: open_clip's own cache decides; failures are translated later
    from huggingface_hub import try_to_load_from_cache

    repo, filenames = location
    for filename in filenames:
        found = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
        if isinstance(found, str):
            return
    from huggingface_hub import constants

    where = cache_dir or constants.HF_HUB_CACHE
    files = " or ".join(filenames)
    raise _missing_error(spec, f"{files} of the Hugging Face repo {repo} in the cache {where}")


def translate_load_error(spec: ModelSpec, error: Exception) -> WeightsNotFoundError:
    """Turn open_clip's download failure into the error that says how to provide the weights."""
    location = _hf_location(spec)
    looked = f"the Hugging Face repo {location[0]}" if location else f"the download of {spec}"
    err = _missing_error(spec, f"{looked} (download failed: {error})")
    return err


def is_download_failure(error: Exception) -> bool:
    text = str(error).lower()
    return any(s in text for s in ("failed to download", "offline", "connection", "resolve", "hub"))


def weights_id(spec: ModelSpec) -> str:
    """A short identity of the weights: the tag, a content hash of a local file, or the schema id."""
    if spec.checkpoint is not None:
        return "sha256-" + file_sha256(spec.checkpoint)[:16]
    if spec.schema:
        return spec.arch
    return spec.tag or "none"


def file_sha256(path: Path, *, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def warn_quickgelu(spec: ModelSpec) -> None:
    """Warn when OpenAI weights (trained with QuickGELU) meet an architecture built with GELU."""
    if spec.tag is None or spec.schema or spec.arch.endswith("-quickgelu"):
        return
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag) or {}
    if cfg.get("quick_gelu") or spec.tag == "openai":
        variant = f"{spec.arch}-quickgelu"
        fix = (
            f"use '{variant}:{spec.tag}'"
            if variant in open_clip.list_models()
            else "use a -quickgelu variant"
        )
        warnings.warn(
            f"{spec} : the {spec.tag!r} weights were trained with QuickGELU but {spec.arch!r} uses "
            f"GELU, which costs accuracy; {fix}.",
            UserWarning,
            stacklevel=3,
        )

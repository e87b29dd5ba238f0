"""The open_clip backend of the Encoder protocol."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zsvl.errors import InvalidParameterError
from zsvl.models.base import EncodedImages, ImageFailure, OnError
from zsvl.models.spec import ModelSpec
from zsvl.models.textenc import encode_texts
from zsvl.models.weights import (
    check_weights_available,
    hub_offline,
    is_download_failure,
    translate_load_error,
    warn_quickgelu,
    weights_id,
)

__all__ = ["OpenClipEncoder", "resolve_device", "PRECISIONS"]

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(
            f"Unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:1'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            f"Device {device!r} was asked for but CUDA is not available here."
        )
    return dev


class OpenClipEncoder:
    """An open_clip model with its tokenizer and preprocessing, behind the Encoder protocol.

    Build one with :func:`zsvl.load_model`; attributes: ``model`` (the torch module), ``preprocess``
    (PIL image -> tensor), ``tokenizer``, ``device``, ``precision``, ``spec``.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        cache_dir: str | None = None,
        num_workers: int | None = None,
    ) -> None:
        import open_clip

        if precision not in PRECISIONS:
            raise InvalidParameterError(
                f"The 'precision' parameter must be one of {', '.join(PRECISIONS)}. Got {precision!r}."
            )
        self.spec = spec
        self.device = resolve_device(device)
        self.precision = precision
        self.num_workers = num_workers
        if precision == "fp16" and self.device.type == "cpu":
            logger.warning(
                "fp16 on the CPU is slow and lossy; bf16 or fp32 are better choices there."
            )
        offline = check_weights_available(spec, cache_dir=cache_dir)
        warn_quickgelu(spec)
        pretrained = str(spec.checkpoint) if spec.checkpoint is not None else spec.tag
        with hub_offline() if offline else contextlib.nullcontext():
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.arch,
                    pretrained=None if spec.random or spec.schema else pretrained,
                    precision=precision,
                    device=self.device,
                    cache_dir=cache_dir,
                )
            except (RuntimeError, OSError, ValueError) as exc:
                if is_download_failure(exc):
                    raise translate_load_error(spec, exc, cache_dir) from None
                raise
            self.tokenizer = open_clip.get_tokenizer(spec.arch, cache_dir=cache_dir)
        model.eval()
        self.model = model
        self.preprocess = preprocess
        self._dtype = _DTYPES[precision]
        if spec.random:
            self._weights = f"random-{uuid.uuid4().hex[:12]}"
        else:
            self._weights = weights_id(spec, cache_dir)
        # a local-dir folder is named by its content (config + weights), not by its path
        self._name = "local-dir" if spec.schema == "local-dir" else spec.arch
        self._embed_dim: int | None = None

    # -- protocol properties -------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        if self._embed_dim is None:
            self._embed_dim = int(self.encode_texts(["a"]).shape[1])
        return self._embed_dim

    @property
    def logit_scale(self) -> float:
        """The model's own learned temperature, exp(logit_scale) (100 for OpenAI CLIP)."""
        scale = getattr(self.model, "logit_scale", None)
        return float(scale.exp().item()) if scale is not None else 100.0

    @property
    def default_templates(self) -> str:
        """The template set used when a classifier names none ("single" for the toy model)."""
        return self.spec.default_templates

    @property
    def fingerprint(self) -> str:
        """Model + weights + preprocessing + precision; changes whenever outputs could change."""
        pp = json.dumps(_preprocess_cfg(self.model, self.preprocess), sort_keys=True, default=str)
        pp_hash = hashlib.sha256(pp.encode()).hexdigest()[:10]
        return f"{self._name}|{self._weights}|pp-{pp_hash}|{self.precision}"

    # -- encoding ------------------------------------------------------------------------
    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """L2-normalised float32 embeddings of shape (len(texts), dim), in input order."""
        if isinstance(texts, str):
            raise InvalidParameterError(
                "encode_texts takes a sequence of strings; wrap one text in a list."
            )
        with _progress(len(texts), batch_size, "texts") as bar:
            return encode_texts(
                self.model,
                self.tokenizer,
                texts,
                device=self.device,
                batch_size=batch_size,
                progress=bar.update,
            )

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 features of preprocessed images (B, 3, H, W), on the device."""
        with torch.inference_mode(), _ieee_convolutions(self.device, self._dtype):
            x = pixels.to(self.device, dtype=self._dtype, non_blocking=True)
            return F.normalize(self.model.encode_image(x).float(), dim=-1)

    def encode_images(
        self, images: Any, *, batch_size: int = 64, on_error: OnError = "raise"
    ) -> EncodedImages:
        """Decode, preprocess and encode images (paths, folders, PIL, arrays, tensors).

        Returns :class:`EncodedImages`; with ``on_error="skip"`` unreadable inputs are listed in
        ``failures`` and the rest are encoded.
        """
        from zsvl.data.images import describe, expand_inputs, iter_batches

        if on_error not in ("raise", "skip"):
            raise InvalidParameterError(f"on_error must be 'raise' or 'skip'. Got {on_error!r}.")
        items = expand_inputs(images)
        sources = [describe(item, i) for i, item in enumerate(items)]
        chunks: list[np.ndarray] = []
        indices: list[int] = []
        failures: list[ImageFailure] = []
        batches = iter_batches(
            items,
            self.preprocess,
            batch_size=batch_size,
            num_workers=self.num_workers,
            on_error=on_error,
        )
        with _progress(len(items), batch_size, "images") as bar:
            for batch in batches:
                failures.extend(batch.failures)
                if len(batch.indices):
                    chunks.append(self.encode_pixels(batch.pixels).cpu().numpy())
                    indices.extend(batch.indices)
                bar.update(len(batch.indices) + len(batch.failures))
        dim = chunks[0].shape[1] if chunks else self.embed_dim
        embeddings = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
        return EncodedImages(
            embeddings=embeddings,
            indices=np.asarray(indices, dtype=np.int64),
            sources=sources,
            failures=sorted(failures, key=lambda f: f.index),
        )

    def __repr__(self) -> str:
        return f"OpenClipEncoder({self.spec}, device={self.device}, precision={self.precision})"


@contextlib.contextmanager
def _ieee_convolutions(device: torch.device, dtype: torch.dtype) -> Any:
    """fp32 means IEEE fp32 on a GPU too: cuDNN's TF32 convolutions (PyTorch's default) off.

    With TF32 a CUDA image embedding differed from the CPU one by up to 4.5e-5 (toy ResNet tower,
    H200) and with the batch size, because cuDNN picks its algorithm per shape; without, 1.3e-7.
    Half precisions are left alone; they are the fast option.
    """
    if device.type != "cuda" or dtype != torch.float32:
        yield
        return
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def _progress(total: int, batch_size: int, unit: str) -> Any:
    """A tqdm bar on stderr for runs of more than a few batches; silent when not a terminal."""
    from tqdm.auto import tqdm

    show = None if total > 4 * batch_size else True  # None: tqdm hides it when not a TTY
    return tqdm(total=total, unit=unit[:-1], desc=f"encoding {unit}", leave=False, disable=show)


def _preprocess_cfg(model: torch.nn.Module, preprocess: Any) -> dict[str, Any]:
    cfg = getattr(getattr(model, "visual", None), "preprocess_cfg", None)
    if cfg:
        return dict(cfg)
    return {"repr": repr(preprocess)}

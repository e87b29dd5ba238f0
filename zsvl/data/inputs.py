"""Turn what a caller passes as "images" into a flat, ordered list of image items.

Accepted inputs (one, or a list/tuple of them):

- a path (``str`` or ``os.PathLike``) to an image file;
- a path to a folder: every file under it with an image extension (see ``IMAGE_EXTENSIONS``,
  case-insensitive), recursively, sorted by path; hidden files and folders (name starting with
  ``"."``, e.g. macOS ``._photo.jpg`` resource forks) are left out;
- a ``PIL.Image.Image``;
- a numpy array of shape (H, W), (H, W, C) or a batch (N, H, W, C), C in {1, 3, 4};
- a torch tensor of shape (H, W), (C, H, W) or a batch (N, C, H, W), C in {1, 3, 4}.

Arrays and tensors hold uint8 values in [0, 255], float values in [0, 1], or booleans.
Files come out as ``pathlib.Path``; a batch array or tensor comes out as one view per image.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from PIL import Image

from zsvl.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["IMAGE_EXTENSIONS", "ImageItem", "expand_inputs", "describe", "is_tensor"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".bmp", ".dib", ".gif", ".webp",
        ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".jp2", ".j2k",
    }
)  # fmt: skip

# One image: a file path, or an in-memory image (PIL, (H, W[, C]) array, ([C, ]H, W) tensor).
ImageItem = Union[Path, Image.Image, np.ndarray, "torch.Tensor"]

_ACCEPTED = (
    "a file or folder path (str or os.PathLike), a PIL.Image.Image, a numpy array "
    "(HxW, HxWxC or NxHxWxC) or a torch tensor (HxW, CxHxW or NxCxHxW), "
    "or a list/tuple of these"
)
_CHANNELS = (1, 3, 4)
_FLOAT_SLACK = 1e-3  # float images may overshoot [0, 1] by rounding noise this large


def is_tensor(obj: Any) -> bool:
    """True when ``obj`` is a torch tensor, without importing torch (no torch, no tensors)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def expand_inputs(images: Any) -> list[ImageItem]:
    """Flatten one input or a list/tuple of inputs into one item per image, in order.

    Parameters
    ----------
    images : a path, folder, PIL image, array or tensor, or a list/tuple of them (see module doc).

    Returns
    -------
    list of items: ``Path`` for files, ``PIL.Image.Image``, numpy array of shape (H, W[, C]) or
    tensor of shape ([C, ]H, W) for in-memory images.

    Raises
    ------
    InvalidParameterError
        A path does not exist, a folder holds no images, or an input has an unsupported type,
        shape, dtype or value range.
    """
    inputs = list(images) if isinstance(images, (list, tuple)) else [images]
    items: list[ImageItem] = []
    for position, obj in enumerate(inputs):
        items.extend(_expand_one(obj, position))
    return items


def describe(item: ImageItem, index: int) -> str:
    """A short label for an item: the path of a file, or e.g. ``"<ndarray #3 (32x32x3)>"``."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    if isinstance(item, Image.Image):
        width, height = item.size
        return f"<PIL.Image #{index} ({width}x{height} {item.mode})>"
    if isinstance(item, np.ndarray) or is_tensor(item):
        shape = "x".join(str(int(n)) for n in item.shape)
        return f"<{type(item).__name__} #{index} ({shape})>"
    return f"<{type(item).__name__} #{index}>"


def _expand_one(obj: Any, position: int) -> list[ImageItem]:
    if isinstance(obj, (str, os.PathLike)):
        return _expand_path(Path(os.fspath(obj)).expanduser(), position)
    if isinstance(obj, Image.Image):
        return [obj]
    if isinstance(obj, np.ndarray):
        check_array(obj, channels_last=True, allow_batch=True, where=f"input #{position}")
        return list(obj) if obj.ndim == 4 else [obj]
    if is_tensor(obj):
        check_array(obj, channels_last=False, allow_batch=True, where=f"input #{position}")
        return list(obj.unbind(0)) if obj.ndim == 4 else [obj]
    raise InvalidParameterError(
        f"Unsupported image input of type {type(obj).__module__}.{type(obj).__qualname__} "
        f"(input #{position}). Expected {_ACCEPTED}."
    )


def _expand_path(path: Path, position: int) -> list[ImageItem]:
    if path.is_dir():
        files = scan_folder(path)
        if not files:
            suffixes = " ".join(sorted(IMAGE_EXTENSIONS))
            raise InvalidParameterError(
                f"Folder '{path}' (input #{position}) contains no image files. Looked recursively "
                f"for these extensions (any case): {suffixes}. Point to the folder that holds "
                "the images, or pass the files themselves."
            )
        return list(files)
    if path.exists() or path.is_symlink():
        # a dangling link or a link loop is kept as an item: decoding reports it as a failure
        # (skipped with on_error="skip") like any other unreadable file, instead of failing a
        # whole folder run when a list of scanned files is expanded a second time.
        return [path]
    raise InvalidParameterError(
        f"Image path '{path}' (input #{position}) does not exist. Check the spelling and the "
        f"working directory ({Path.cwd()}), or pass an existing file or folder."
    )


def scan_folder(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, sorted by path; hidden entries left out."""

    def warn(error: OSError) -> None:
        logger.warning("Skipping unreadable folder while looking for images: %s", error)

    found: list[Path] = []
    for root, dirs, files in os.walk(folder, onerror=warn):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(root, name))
    # sort on path components, so "a/b.jpg" and "a-c.jpg" order the same on every platform
    found.sort(key=lambda p: p.relative_to(folder).parts)
    return found


def check_array(array: Any, *, channels_last: bool, allow_batch: bool, where: str) -> None:
    """Validate the shape, dtype and value range of an image array or tensor.

    array : numpy array of shape (H, W), (H, W, C) [or (N, H, W, C)] when ``channels_last``,
        torch tensor of shape (H, W), (C, H, W) [or (N, C, H, W)] otherwise; C in {1, 3, 4}.
    """
    kind = "numpy array" if channels_last else "torch tensor"
    layouts = "HxW or HxWxC" if channels_last else "HxW or CxHxW"
    if allow_batch:
        layouts += " (or a batch NxHxWxC)" if channels_last else " (or a batch NxCxHxW)"
    shape = tuple(int(n) for n in array.shape)
    ndim_ok = len(shape) in ((2, 3, 4) if allow_batch else (2, 3))
    channel_axis = -1 if channels_last else (0 if len(shape) == 3 else 1)
    if not ndim_ok or (len(shape) >= 3 and shape[channel_axis] not in _CHANNELS):
        hint = ""
        if channels_last and len(shape) in (3, 4) and shape[-3] in _CHANNELS:
            hint = " It looks channels-first: move channels last, e.g. np.moveaxis(a, -3, -1)."
        elif not channels_last and len(shape) in (3, 4) and shape[-1] in _CHANNELS:
            hint = " It looks channels-last: move channels first, e.g. t.permute(2, 0, 1)."
        raise InvalidParameterError(
            f"Image {kind} ({where}) must have shape {layouts} with C in 1, 3 or 4; "
            f"got shape {shape}.{hint}"
        )
    if channels_last:
        spatial = shape[1:3] if len(shape) == 4 else shape[:2]
    else:
        spatial = shape[-2:]
    if min(spatial) == 0 or (len(shape) == 4 and shape[0] == 0):
        raise InvalidParameterError(f"Image {kind} ({where}) is empty: shape {shape}.")
    _check_values(array, kind, where)


def _check_values(array: Any, kind: str, where: str) -> None:
    dtype_name = str(array.dtype).replace("torch.", "")
    if dtype_name in ("uint8", "bool"):
        return
    if not dtype_name.startswith(("float", "bfloat")):
        raise InvalidParameterError(
            f"Image {kind} ({where}) has dtype {dtype_name}; expected uint8 (0-255), "
            "float (0-1) or bool. Convert it first, e.g. a.astype(np.uint8) for 0-255 values "
            "or a / 65535 for 16-bit data."
        )
    if is_tensor(array):
        low, high = (float(v) for v in array.detach().float().aminmax())
    else:
        low, high = float(np.min(array)), float(np.max(array))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise InvalidParameterError(f"Image {kind} ({where}) holds NaN or infinite values.")
    if low < -_FLOAT_SLACK or high > 1 + _FLOAT_SLACK:
        raise InvalidParameterError(
            f"Float image {kind} ({where}) must hold values in [0, 1]; got values in "
            f"[{low:.4g}, {high:.4g}]. Pass 0-255 data as uint8, divide it by 255, or pass the "
            "raw image rather than one already normalised for a model."
        )

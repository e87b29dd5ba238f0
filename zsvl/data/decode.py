"""Decode one image item into an 8-bit RGB ``PIL.Image``, the input of every model transform.

Conversions, in order:

- EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), so a phone photo stored
  sideways comes out the way it is shown.
- Transparency (RGBA, LA, PA, palette or grey images with a transparent colour) is composited
  on **white**. open_clip itself calls ``.convert("RGB")``, which drops alpha and so shows the
  colours stored under fully transparent pixels (often black or leftover junk), not what a viewer
  shows; opaque images come out identical either way.
- 16-bit and 32-bit grey images (modes ``I;16*``, ``I``, ``F``) are scaled to 8 bits
  (0-65535 -> 0-255, float 0-1 -> 0-255; other ranges are stretched min-max) instead of PIL's
  ``convert`` which clips everything above 255 to white.
- CMYK, grey (L, 1), palette and the other PIL modes go through ``.convert("RGB")``.
- Multi-frame files (GIF, TIFF) give their first frame.

Unreadable files raise ``ImageLoadError`` naming the file and the reason; that includes broken
symbolic links, link loops and special files (FIFO, socket, device), which are never opened.
PIL's decompression bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) is left as it is: its warning
stays a warning, and its error becomes an ``ImageLoadError``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from zsvl.data.inputs import ImageItem, check_array, describe, is_tensor
from zsvl.errors import ImageLoadError, InvalidParameterError

__all__ = ["load_image", "to_rgb", "image_load_error", "special_file_kind"]

logger = logging.getLogger(__name__)

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_WHITE = (255, 255, 255)


def image_load_error(source: str, reason: str) -> ImageLoadError:
    """An ``ImageLoadError`` for ``source`` whose ``reason`` is also kept as an attribute."""
    error = ImageLoadError(f"Cannot load image {source}: {reason}")
    error.source = source  # type: ignore[attr-defined]
    error.reason = reason  # type: ignore[attr-defined]
    return error


def load_image(item: ImageItem | str) -> Image.Image:
    """Decode one item (file path, PIL image, array or tensor) into an RGB ``PIL.Image``.

    Arrays are (H, W[, C]), tensors ([C, ]H, W), C in {1, 3, 4}; uint8 0-255 or float 0-1
    (floats are rounded to 8 bits).

    Raises
    ------
    ImageLoadError
        A file is missing, unreadable, empty, truncated, corrupt, not an image or too large.
    InvalidParameterError
        An in-memory input has an unsupported type, shape or dtype.
    """
    if isinstance(item, (str, os.PathLike)):
        return _load_file(Path(os.fspath(item)))
    if isinstance(item, Image.Image):
        return _load_pil(item)
    if isinstance(item, np.ndarray):
        check_array(item, channels_last=True, allow_batch=False, where="load_image")
        return _array_to_rgb(item)
    if is_tensor(item):
        check_array(item, channels_last=False, allow_batch=False, where="load_image")
        tensor = item.detach().cpu()
        if tensor.dtype.is_floating_point:
            tensor = tensor.float()  # numpy has no bfloat16
        array = tensor.numpy()
        return _array_to_rgb(np.moveaxis(array, 0, -1) if array.ndim == 3 else array)
    raise InvalidParameterError(
        f"load_image got an item of type {type(item).__qualname__}; expected a path, a "
        "PIL.Image.Image, a numpy array or a torch tensor. Pass inputs through expand_inputs()."
    )


def _load_file(path: Path) -> Image.Image:
    source = f"'{path}'"
    try:
        st = path.stat()
    except OSError as exc:
        raise image_load_error(source, _os_reason(exc, path)) from exc
    if not stat.S_ISREG(st.st_mode):  # never open a FIFO (blocks), socket or device
        raise image_load_error(
            source, f"it is {special_file_kind(st.st_mode)}, not a regular file."
        )
    if st.st_size == 0:
        raise image_load_error(source, "the file is empty (0 bytes).")
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now, so a truncated file fails here and not in the transform
            image = _exif_transposed(opened, source, in_place=True)
    except Image.DecompressionBombError as exc:
        reason = (
            f"the image is too large to decode safely ({exc}). If you trust the file, raise "
            "PIL.Image.MAX_IMAGE_PIXELS."
        )
        raise image_load_error(source, reason) from exc
    except UnidentifiedImageError as exc:
        reason = "not a recognised image format (the file is corrupt or not an image)."
        raise image_load_error(source, reason) from exc
    except OSError as exc:
        raise image_load_error(source, _os_reason(exc, path)) from exc
    except Exception as exc:  # noqa: BLE001 - PIL plugins raise many types on corrupt data
        reason = f"the file is corrupt ({type(exc).__name__}: {exc})."
        raise image_load_error(source, reason) from exc
    return to_rgb(image)


def _load_pil(image: Image.Image) -> Image.Image:
    """An in-memory PIL image, which may still be lazily tied to its (possibly broken) file."""
    source = getattr(image, "filename", "") or describe(image, 0)
    try:
        image.load()
    except Exception as exc:  # noqa: BLE001 - PIL plugins raise many types on corrupt data
        raise image_load_error(source, f"the image data cannot be decoded ({exc}).") from exc
    return to_rgb(_exif_transposed(image, source))


def special_file_kind(mode: int) -> str:
    """A few words naming a non-regular file type, e.g. ``"a FIFO (named pipe)"``."""
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _os_reason(exc: OSError, path: Path | None = None) -> str:
    if isinstance(exc, FileNotFoundError):
        if path is not None and path.is_symlink():
            return "it is a broken symbolic link (its target does not exist)."
        return "the file does not exist."
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link loop (the link points back to itself)."
    if isinstance(exc, PermissionError):
        return "permission denied; check the file's read permissions."
    if isinstance(exc, IsADirectoryError):
        return "it is a folder, not a file; pass the folder through expand_inputs()."
    message = str(exc)
    if "truncated" in message or "broken data stream" in message:
        return f"the file is truncated or damaged ({message})."
    return f"{type(exc).__name__}: {exc.strerror or message}."


def _exif_transposed(image: Image.Image, source: str, *, in_place: bool = False) -> Image.Image:
    """``image`` turned upright per its EXIF orientation tag (a broken tag is ignored).

    ``in_place`` saves a copy of every upright image; only for images zsvl opened itself.
    """
    try:
        transposed: Image.Image | None
        if in_place:
            transposed = ImageOps.exif_transpose(image, in_place=True)
        else:
            transposed = ImageOps.exif_transpose(image, in_place=False)
    except Exception as exc:  # noqa: BLE001 - malformed EXIF must not lose a decodable image
        logger.warning("Ignoring unreadable EXIF orientation of %s: %s", source, exc)
        return image
    return transposed if transposed is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB: alpha composited on white, high bit depths scaled to 8 bits."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_scale_to_uint8(np.asarray(image), mode)).convert("RGB")
    if mode not in _ALPHA_MODES and image.has_transparency_data:
        image = image.convert("RGBA")  # palette / grey / RGB with a transparent colour
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, _WHITE)
        canvas.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Map (H, W) grey values of a 16/32-bit or float image to uint8 (H, W)."""
    values = values.astype(np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and low >= 0 and high <= 65535):
        scaled = values / 257.0  # 65535 / 255: exact for 8-bit values stored as v * 257
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    else:  # an unknown range: stretch what is there over 0-255
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _array_to_rgb(array: Any) -> Image.Image:
    """An RGB image from a validated (H, W) or (H, W, C) array, C in {1, 3, 4}."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = np.clip(np.rint(array.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return to_rgb(Image.fromarray(np.ascontiguousarray(array)))  # (H, W) L, RGB or RGBA

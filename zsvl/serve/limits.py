"""What one request may ask of the server, and the errors it gets when it asks for too much.

Every bound is a field of :class:`Limits` (a frozen dataclass, one comment per field). The
checks raise :class:`RequestError`, a ``ZsvlError`` with an HTTP status and a short code, which
the app turns into a JSON error body; nothing here imports the web stack.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from zsvl.errors import ZsvlError

__all__ = ["Limits", "RequestError", "decode_upload", "check_k", "check_texts", "check_count"]


@dataclass(frozen=True)
class Limits:
    """Bounds on one request. Defaults suit a CLIP model on one machine."""

    max_upload_bytes: int = 8 * 1024 * 1024  # whole request body (all files and fields)
    max_pixels: int = 16_000_000  # width x height of one image, checked before decoding
    max_images: int = 32  # images per request (the "batch size" a client may send)
    max_queries: int = 32  # text queries per /search request
    max_k: int = 100  # results per query / classes listed per image
    max_query_chars: int = 1000  # characters of one text query or class name
    max_classes: int = 1000  # classes in one /classify request
    max_queue: int = 1024  # requests waiting for the model before new ones get 503


class RequestError(ZsvlError):
    """A request the server refuses: ``status`` (4xx/5xx), ``code`` (short slug), message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def check_k(k: Any, limits: Limits, name: str = "k") -> int:
    """``k`` as an int in [1, limits.max_k]."""
    if isinstance(k, bool) or not isinstance(k, int):
        try:
            k = int(str(k).strip())
        except ValueError:
            raise RequestError(422, "bad_k", f"{name} must be an integer. Got {k!r}.") from None
    if not 1 <= k <= limits.max_k:
        raise RequestError(422, "bad_k", f"{name} must be between 1 and {limits.max_k}. Got {k}.")
    return k


def check_texts(texts: list[Any], limits: Limits, *, what: str, max_count: int) -> list[str]:
    """Non-empty strings of at most ``max_query_chars`` characters, at most ``max_count``."""
    if not texts:
        raise RequestError(422, f"empty_{what}", f"The {what} list is empty; give at least one.")
    check_count(len(texts), max_count, what)
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise RequestError(
                422, f"bad_{what}", f"{what}[{i}] must be a non-empty string. Got {text!r}."
            )
        if len(text) > limits.max_query_chars:
            raise RequestError(
                413,
                f"{what}_too_long",
                f"{what}[{i}] has {len(text)} characters; "
                f"the server accepts at most {limits.max_query_chars}.",
            )
        out.append(text.strip())
    return out


def check_count(n: int, max_count: int, what: str) -> None:
    if n > max_count:
        raise RequestError(
            413,
            f"too_many_{what}",
            f"The request has {n} {what}; the server "
            f"accepts at most {max_count} per request (send several requests).",
        )


def decode_upload(data: bytes, name: str, limits: Limits) -> Any:
    """An uploaded file's bytes -> 8-bit RGB ``PIL.Image`` (via ``zsvl.data.decode.load_image``).

    The pixel count is read from the header and checked before any pixel is decoded, so a
    decompression bomb costs nothing. Raises :class:`RequestError` (400 corrupt, 413 too large).
    """
    from PIL import Image, UnidentifiedImageError

    from zsvl.data.decode import load_image

    if not data:
        raise RequestError(400, "empty_image", f"The uploaded file {name!r} is empty (0 bytes).")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise RequestError(
            400,
            "bad_image",
            f"The uploaded file {name!r} is not a recognised "
            "image (corrupt, or not PNG/JPEG/WebP/GIF/BMP/TIFF).",
        ) from None
    except Exception as exc:  # noqa: BLE001 - PIL plugins raise many types on corrupt headers
        raise RequestError(
            400,
            "bad_image",
            f"The uploaded file {name!r} cannot be read ({type(exc).__name__}: {exc}).",
        ) from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise RequestError(
            413,
            "image_too_large",
            f"The uploaded image {name!r} is {width}x"
            f"{height} = {width * height:,} pixels; the server accepts at most "
            f"{limits.max_pixels:,}.",
        )
    try:
        return load_image(image)
    except ZsvlError as exc:
        raise RequestError(
            400,
            "bad_image",
            f"The uploaded image {name!r} cannot be decoded: {getattr(exc, 'reason', exc)}",
        ) from None

"""Content-addressed cache keys for texts and images.

A key is the hex BLAKE2b digest (32 bytes, 64 hex characters) of every input that changes an
embedding:

- ``KEY_VERSION``: bumped whenever this algorithm (or what an entry means) changes, so old
  entries can never be served for a new meaning;
- the kind of input (``text``, ``file``, ``array``, ``tensor``, ``pil``);
- the encoder fingerprint (model, weights, preprocessing, precision);
- the content: the exact text; for a file its resolved path, size, ``mtime_ns`` and the SHA-256
  hash of its bytes; for an array or tensor its dtype, shape and raw bytes; for a PIL image its
  mode, size, palette and raw pixel bytes.

Every field is length-prefixed before hashing, so no two different field lists hash the same
byte stream ("ab" + "c" never collides with "a" + "bc").
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._hashing import sha256_file
from zsvl.errors import InvalidParameterError

__all__ = ["KEY_VERSION", "text_key", "image_key"]

KEY_VERSION = "zsvl-embed-key/2"  # /2: file content hashed with SHA-256 (zsvl._hashing)


def _digest(*fields: bytes | str) -> str:
    """Hex BLAKE2b-256 of length-prefixed ``fields`` (str fields are UTF-8 encoded)."""
    h = hashlib.blake2b(digest_size=32)
    for field in fields:
        data = field.encode("utf-8") if isinstance(field, str) else field
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def text_key(fingerprint: str, text: str) -> str:
    """The cache key of ``text`` embedded by the encoder with ``fingerprint``.

    >>> len(text_key("fp", "a photo of a cat"))
    64
    """
    if not isinstance(text, str):
        raise InvalidParameterError(
            f"Texts to encode must be str. Got {type(text).__name__}: {text!r:.80}."
        )
    return _digest(KEY_VERSION, "text", fingerprint, text)


def image_key(fingerprint: str, item: Any) -> str:
    """The cache key of one image ``item`` embedded by the encoder with ``fingerprint``.

    ``item`` is one element of ``zsvl.data.images.expand_inputs``: a file path, a PIL image, a
    numpy array or a torch tensor. Raises ``OSError`` when a file cannot be read or is not a
    regular file (the caller treats such an item as uncacheable and lets decoding report it)
    and ``InvalidParameterError`` for an unknown type.
    """
    if isinstance(item, (str, os.PathLike)):
        st = os.stat(item)  # OSError for a missing file, a dangling link or a link loop
        if not stat.S_ISREG(st.st_mode):  # a FIFO named .jpg must never be opened (it blocks)
            raise OSError(f"{os.fspath(item)} is not a regular file")
        path = Path(os.path.realpath(item))
        return _digest(
            KEY_VERSION,
            "file",
            fingerprint,
            str(path),
            str(st.st_size),
            str(st.st_mtime_ns),
            sha256_file(path),
        )
    if isinstance(item, np.ndarray):
        arr = np.ascontiguousarray(item)
        return _digest(
            KEY_VERSION, "array", fingerprint, arr.dtype.str, repr(arr.shape), arr.tobytes()
        )
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is already imported
    if torch is not None and isinstance(item, torch.Tensor):
        t = item.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return _digest(KEY_VERSION, "tensor", fingerprint, str(t.dtype), repr(tuple(t.shape)), raw)
    pil_image = sys.modules.get("PIL.Image")
    if pil_image is not None and isinstance(item, pil_image.Image):
        palette = item.getpalette() if item.mode in ("P", "PA") else None
        return _digest(
            KEY_VERSION,
            "pil",
            fingerprint,
            item.mode,
            repr(item.size),
            bytes(palette or ()),
            item.tobytes(),
        )
    raise InvalidParameterError(
        f"Cannot build a cache key for an image of type {type(item).__name__}; expected a file "
        f"path, a PIL image, a numpy array or a torch tensor (one item of expand_inputs)."
    )

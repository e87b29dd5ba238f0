"""Image input for zsvl: expand what the caller passes, decode it, batch it for a model.

The one place the rest of zsvl imports image handling from::

    items = expand_inputs(["photos/", "cat.jpg", array])  # one item per image, in order
    for batch in iter_batches(items, preprocess, batch_size=64, on_error="skip"):
        features = model.encode_image(batch.pixels)        # (B, 3, H, W) -> (B, D)
        ...                                                 # batch.indices, batch.failures

The pieces live in ``zsvl.data.inputs`` (expansion), ``zsvl.data.decode`` (``load_image``:
EXIF, alpha, 16-bit and colour-mode handling) and ``zsvl.data.loader`` (the parallel pipeline).
"""

from __future__ import annotations

from zsvl.data.decode import load_image
from zsvl.data.inputs import IMAGE_EXTENSIONS, ImageItem, describe, expand_inputs
from zsvl.data.loader import ImageBatch, default_num_workers, iter_batches

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageItem",
    "ImageBatch",
    "expand_inputs",
    "describe",
    "load_image",
    "iter_batches",
    "default_num_workers",
]

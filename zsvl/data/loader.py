"""Decode and preprocess images in parallel, feeding a model batches in input order.

``iter_batches`` runs ``load_image`` and the model's transform away from the caller's thread so
that decoding overlaps the model forward:

- file inputs: a ``torch.utils.data.DataLoader`` with worker processes (default
  ``min(cpu_count, 8)``), each limited to one torch thread so the forward keeps the cores;
- in-memory inputs (arrays, tensors, PIL images): one background thread, since copying large
  arrays to worker processes costs more than decoding them;
- small inputs (fewer than two batches) or ``num_workers=0``: in the caller's thread.

Unreadable images never get lost: with ``on_error="raise"`` the first one raises
``ImageLoadError`` in the caller's process; with ``"skip"`` each batch lists its failures.
A worker process that dies (a decoder crash, the OOM killer) raises ``RuntimeError`` instead of
hanging.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate

from zsvl.data.decode import image_load_error, load_image
from zsvl.data.failures import ImageFailure, OnError
from zsvl.data.inputs import ImageItem, describe
from zsvl.errors import ImageLoadError, InvalidParameterError

__all__ = ["ImageBatch", "iter_batches", "default_num_workers"]

logger = logging.getLogger(__name__)

Transform = Callable[[Image.Image], torch.Tensor]
_T = TypeVar("_T")
_MAX_WORKERS = 8
_THREAD_PREFETCH = 2  # batches the background thread may run ahead of the consumer
# (index, pixels (C, H, W) or None, failure or None): what one worker returns per item
_Sample = tuple[int, "torch.Tensor | None", "ImageFailure | None"]


@dataclass(frozen=True)
class ImageBatch:
    """One batch of preprocessed images and the inputs of that batch that could not be read.

    pixels : tensor of shape (B, C, H, W) as the transform makes it (C = 3 for RGB models),
        B = len(indices). A batch in which every image failed has B = 0 (run no model on it).
    indices : the position in ``items`` of each row of ``pixels``, ascending.
    failures : the items of this batch that failed (only with ``on_error="skip"``).
    """

    pixels: torch.Tensor
    indices: list[int]
    failures: list[ImageFailure]


def default_num_workers() -> int:
    """``min(usable CPU cores, 8)``: the worker processes used for file inputs by default."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS))


def iter_batches(
    items: Sequence[ImageItem],
    transform: Transform,
    *,
    batch_size: int = 64,
    num_workers: int | None = None,
    on_error: OnError = "raise",
    pin_memory: bool | None = None,
) -> Iterator[ImageBatch]:
    """Yield preprocessed batches of ``items`` in input order, decoding ahead of the consumer.

    Parameters
    ----------
    items : the output of ``expand_inputs``: paths, PIL images, arrays or tensors.
    transform : the model's preprocessing, PIL RGB image -> tensor (C, H, W) of a fixed size
        (e.g. open_clip's validation transform). Must be picklable where worker processes are
        started with spawn (macOS, Windows).
    batch_size : images per batch (the last one may be smaller).
    num_workers : worker processes. ``None`` chooses: ``default_num_workers()`` for files, a
        background thread for in-memory inputs, none for fewer than two batches. ``0`` decodes
        in the caller's thread (easiest to debug).
    on_error : ``"raise"``: the first unreadable image raises ``ImageLoadError`` naming it.
        ``"skip"``: it is left out and reported in ``ImageBatch.failures``.
    pin_memory : pin ``pixels`` for fast copies to the GPU; ``None`` pins when CUDA is available.

    Yields
    ------
    ImageBatch with pixels of shape (B, C, H, W), B <= batch_size.
    """
    _check_arguments(items, transform, batch_size, num_workers, on_error)
    if not items:
        return
    workers, threaded = _plan_workers(items, batch_size, num_workers)
    loader = DataLoader(
        _DecodeDataset(items, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        worker_init_fn=_init_worker if workers else None,
    )
    logger.debug(
        "Decoding %d images in batches of %d with %s", len(items), batch_size,
        f"{workers} worker processes" if workers else ("a thread" if threaded else "no workers"),
    )  # fmt: skip
    sample_shape: tuple[int, ...] | None = None
    batches = iter(loader)
    stream = _prefetch_in_thread(batches, _THREAD_PREFETCH) if threaded else batches
    try:
        for pixels, indices, failures in stream:
            if failures and on_error == "raise":
                first = failures[0]
                raise image_load_error(f"{first.source} (input #{first.index})", first.error)
            if indices:
                sample_shape = tuple(pixels.shape[1:])
            else:
                sample_shape = sample_shape or _probe_shape(transform)
                pixels = torch.empty((0, *sample_shape))
            yield ImageBatch(pixels=pixels, indices=indices, failures=failures)
    except RuntimeError as exc:
        if "DataLoader worker (pid" in str(exc) and hasattr(exc, "add_note"):
            exc.add_note(
                "zsvl: a worker process decoding images died (a decoder crash or out of "
                "memory). Run with num_workers=0 to find the input that causes it."
            )
        raise
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:  # stop workers now, not when the traceback is collected
            shutdown()


class _DecodeDataset(Dataset):
    """Item ``i`` -> (i, transform(load_image(items[i])), None) or (i, None, failure)."""

    def __init__(self, items: Sequence[ImageItem], transform: Transform) -> None:
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> _Sample:
        item = self.items[index]
        try:
            image = load_image(item)
        except ImageLoadError as exc:
            reason = getattr(exc, "reason", str(exc))
            return index, None, ImageFailure(index, describe(item, index), reason)
        pixels = self.transform(image)
        if not isinstance(pixels, torch.Tensor) or pixels.ndim != 3:
            got = type(pixels).__name__ + (
                f" of shape {tuple(pixels.shape)}" if isinstance(pixels, torch.Tensor) else ""
            )
            raise InvalidParameterError(
                f"The transform must turn a PIL image into a tensor of shape (C, H, W); got "
                f"{got}. Pass the model's preprocessing (e.g. open_clip's val transform)."
            )
        return index, pixels, None


def _collate(samples: list[_Sample]) -> tuple[torch.Tensor, list[int], list[ImageFailure]]:
    """Stack the decoded samples (into shared memory inside a worker); list the failed ones."""
    decoded = [(index, pixels) for index, pixels, _ in samples if pixels is not None]
    failures = [failure for _, _, failure in samples if failure is not None]
    if not decoded:
        return torch.empty(0), [], failures
    try:
        pixels = default_collate([p for _, p in decoded])
    except RuntimeError as exc:
        shapes = sorted({tuple(p.shape) for _, p in decoded})
        raise InvalidParameterError(
            f"The transform made tensors of different shapes {shapes[:4]}; batching needs one "
            "size. Use a transform that resizes and crops to a fixed size."
        ) from exc
    return pixels, [index for index, _ in decoded], failures


def _init_worker(worker_id: int) -> None:
    """One torch thread per worker: the model forward in the main process keeps the cores."""
    torch.set_num_threads(1)


def _check_arguments(
    items: Any, transform: Any, batch_size: Any, num_workers: Any, on_error: Any
) -> None:
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise InvalidParameterError(
            f"iter_batches needs a list of items; got {type(items).__name__}. "
            "Turn the inputs into one with expand_inputs()."
        )
    if not callable(transform):
        raise InvalidParameterError(
            f"The transform must be callable (PIL image -> tensor); got {type(transform).__name__}."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidParameterError(f"batch_size must be an int >= 1. Got {batch_size!r}.")
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0
    ):
        raise InvalidParameterError(
            f"num_workers must be None or an int >= 0. Got {num_workers!r}."
        )
    if on_error not in ("raise", "skip"):
        raise InvalidParameterError(f"on_error must be 'raise' or 'skip'. Got {on_error!r}.")


def _plan_workers(
    items: Sequence[ImageItem], batch_size: int, num_workers: int | None
) -> tuple[int, bool]:
    """(worker processes, decode in a background thread?) for these items."""
    n_batches = -(-len(items) // batch_size)
    if num_workers is not None:
        return min(num_workers, n_batches), False
    if n_batches < 2:
        return 0, False
    if not all(isinstance(item, Path) for item in items):
        return 0, True
    return min(default_num_workers(), n_batches), False


def _probe_shape(transform: Transform) -> tuple[int, ...]:
    """The (C, H, W) the transform makes, for the empty pixels of an all-failed batch."""
    try:
        return tuple(transform(Image.new("RGB", (256, 256), (128, 128, 128))).shape)
    except Exception:  # noqa: BLE001 - only a shape hint for an empty tensor
        return (3, 0, 0)


def _prefetch_in_thread(source: Iterable[_T], depth: int) -> Iterator[_T]:
    """Iterate ``source`` in a daemon thread, up to ``depth`` items ahead; re-raise its errors."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for value in source:
                if not put(("value", value)):
                    return
            put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            put(("error", exc))

    thread = threading.Thread(target=produce, name="zsvl-image-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)

"""iter_batches: order, failures, worker processes, threads, crashes, clean shutdown."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zsvl.data.images import ImageBatch, expand_inputs, iter_batches
from zsvl.errors import ImageLoadError, InvalidParameterError


def tiny_transform(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor (3, 4, 4) in [0, 1]."""
    array = np.asarray(image.resize((4, 4), Image.Resampling.NEAREST), dtype=np.float32)
    return torch.from_numpy(array / 255.0).permute(2, 0, 1).contiguous()


def _color(i: int) -> tuple[int, int, int]:
    return (i % 256, i // 256, 77)


def _write_numbered(folder: Path, n: int) -> list[Path]:
    """n lossless PNGs whose colour encodes their index; sizes vary."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img_{i:04d}.png"
        Image.new("RGB", (5 + i % 7, 6 + i % 5), _color(i)).save(path)
        paths.append(path)
    return paths


def _decoded_index(pixels: torch.Tensor) -> list[int]:
    values = (pixels[:, :, 0, 0] * 255).round().long()
    return (values[:, 0] + 256 * values[:, 1]).tolist()


def _break(paths: list[Path], jpeg_bytes: bytes) -> dict[int, str]:
    """Corrupt, truncate and empty three files; return index -> expected reason fragment."""
    paths[3].write_bytes(b"\x00garbage" * 50)
    paths[17] = paths[17].with_suffix(".jpg")
    paths[17].write_bytes(jpeg_bytes[: len(jpeg_bytes) // 2])
    paths[40].write_bytes(b"")
    return {3: "not a recognised image format", 17: "truncated", 40: "empty (0 bytes)"}


@pytest.fixture
def jpeg_bytes(tmp_path) -> bytes:
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.jpg"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path, quality=90)
    return path.read_bytes()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_order_preserved(tmp_path, num_workers):
    paths = _write_numbered(tmp_path, 45)
    batches = list(iter_batches(paths, tiny_transform, batch_size=8, num_workers=num_workers))

    assert all(isinstance(b, ImageBatch) for b in batches)
    assert [len(b.indices) for b in batches] == [8, 8, 8, 8, 8, 5]
    assert [i for b in batches for i in b.indices] == list(range(45))
    assert [i for b in batches for i in _decoded_index(b.pixels)] == list(range(45))
    assert batches[0].pixels.shape == (8, 3, 4, 4) and batches[0].pixels.dtype == torch.float32
    assert not any(b.failures for b in batches)


@pytest.mark.parametrize("num_workers", [None, 0, 2])
def test_skip_reports_failures_with_their_index(tmp_path, jpeg_bytes, num_workers):
    paths = _write_numbered(tmp_path, 50)
    broken = _break(paths, jpeg_bytes)

    batches = list(
        iter_batches(paths, tiny_transform, batch_size=8, num_workers=num_workers, on_error="skip")
    )

    ok = [i for b in batches for i in b.indices]
    assert ok == [i for i in range(50) if i not in broken]
    assert [i for b in batches for i in _decoded_index(b.pixels)] == ok
    failures = [f for b in batches for f in b.failures]
    assert [f.index for f in failures] == sorted(broken)
    for failure in failures:
        assert failure.source == str(paths[failure.index])
        assert broken[failure.index] in failure.error
    assert batches[0].failures[0].index == 3  # reported with the batch it belongs to


@pytest.mark.parametrize("num_workers", [0, 2])
def test_raise_names_the_first_bad_file(tmp_path, jpeg_bytes, num_workers):
    paths = _write_numbered(tmp_path, 50)
    _break(paths, jpeg_bytes)
    seen = []
    with pytest.raises(ImageLoadError, match=r"img_0003\.png.*input #3.*not a recognised") as info:
        for batch in iter_batches(paths, tiny_transform, batch_size=2, num_workers=num_workers):
            seen.extend(batch.indices)
    assert seen == [0, 1]
    assert "not a recognised image format" in info.value.reason
    assert not multiprocessing.active_children()  # workers stopped, not left to the GC


def test_batch_where_every_image_failed_still_reports(tmp_path):
    paths = _write_numbered(tmp_path, 12)
    for path in paths[4:8]:
        path.write_bytes(b"")
    batches = list(
        iter_batches(paths, tiny_transform, batch_size=4, num_workers=2, on_error="skip")
    )
    middle = batches[1]
    assert middle.indices == [] and middle.pixels.shape == (0, 3, 4, 4)
    assert [f.index for f in middle.failures] == [4, 5, 6, 7]
    assert [i for b in batches for i in b.indices] == [0, 1, 2, 3, 8, 9, 10, 11]


def test_first_batch_all_failed_gets_the_transform_shape(tmp_path):
    paths = _write_numbered(tmp_path, 3)
    for path in paths:
        path.write_bytes(b"junk")
    (batch,) = iter_batches(paths, tiny_transform, batch_size=4, on_error="skip")
    assert batch.pixels.shape == (0, 3, 4, 4) and len(batch.failures) == 3


def test_in_memory_inputs_in_a_thread(tmp_path, caplog):
    batch = np.zeros((30, 6, 6, 3), dtype=np.uint8)
    batch[:, :, :, 0] = np.arange(30)[:, None, None]
    tensors = torch.zeros(10, 3, 6, 6)
    tensors[:, 0] = torch.arange(30, 40)[:, None, None] / 255.0
    pil = [Image.new("RGB", (3, 3), _color(40 + i)) for i in range(5)]
    items = expand_inputs([batch, tensors, *pil, *_write_numbered(tmp_path, 50)[45:]])

    with caplog.at_level("DEBUG", logger="zsvl.data.loader"):
        batches = list(iter_batches(items, tiny_transform, batch_size=8))
    assert "with a thread" in caplog.text  # in-memory inputs are not pickled to processes

    assert [i for b in batches for i in b.indices] == list(range(50))
    assert [i for b in batches for i in _decoded_index(b.pixels)] == list(range(50))


def test_early_stop_shuts_workers_down(tmp_path):
    paths = _write_numbered(tmp_path, 40)
    stream = iter_batches(paths, tiny_transform, batch_size=4, num_workers=2)
    assert next(stream).indices == [0, 1, 2, 3]
    assert multiprocessing.active_children()
    stream.close()
    assert not multiprocessing.active_children()


def test_worker_crash_raises_instead_of_hanging(tmp_path):
    _write_numbered(tmp_path, 40)
    code = textwrap.dedent(
        f"""
        import os, sys, torch
        from torch.utils.data import get_worker_info
        from zsvl.data.images import expand_inputs, iter_batches

        def transform(image):
            if image.size == (7, 8) and get_worker_info() is not None:
                os._exit(3)  # a decoder segfault or the OOM killer, as the parent sees it
            return torch.zeros(3, 2, 2)

        items = expand_inputs({str(tmp_path)!r})
        try:
            for batch in iter_batches(items, transform, batch_size=4, num_workers=2):
                pass
        except RuntimeError as exc:
            print("RAISED", exc, getattr(exc, "__notes__", ""))
            sys.exit(0)
        print("NO ERROR")
        sys.exit(1)
        """
    )
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RAISED" in result.stdout and "exited unexpectedly" in result.stdout
    assert "num_workers=0" in result.stdout
    assert time.monotonic() - start < 60


def test_open_clip_transform_end_to_end(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    preprocess = open_clip.image_transform(224, is_train=False)
    paths = _write_numbered(tmp_path, 5)
    (batch,) = iter_batches(paths, preprocess, batch_size=8)
    assert batch.pixels.shape == (5, 3, 224, 224) and batch.indices == [0, 1, 2, 3, 4]


def test_bad_transform_output_is_explained(tmp_path):
    paths = _write_numbered(tmp_path, 2)
    with pytest.raises(InvalidParameterError, match=r"tensor of shape \(C, H, W\); got \w*Image"):
        list(iter_batches(paths, lambda image: image, batch_size=2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"num_workers": -1}, "num_workers must be None or an int >= 0"),
        ({"on_error": "ignore"}, "on_error must be 'raise' or 'skip'"),
    ],
)
def test_argument_validation(tmp_path, kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        list(iter_batches([tmp_path / "a.png"], tiny_transform, **kwargs))


def test_items_must_be_a_list():
    with pytest.raises(InvalidParameterError, match="expand_inputs"):
        list(iter_batches("folder/", tiny_transform))
    with pytest.raises(InvalidParameterError, match="callable"):
        list(iter_batches([], "not a transform"))
    assert list(iter_batches([], tiny_transform)) == []

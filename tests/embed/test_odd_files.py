"""Issue 11.2: with the cache on, odd files in a folder are reported and skipped, never fatal.

Each fault is checked through the real decode pipeline (the shipped toy CLIP) with the cache on,
and against the same run with the cache off: same embeddings, same failures.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from zsvl.embed.cached import CachedEncoder
from zsvl.errors import ImageLoadError

from .helpers import write_png

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")


def _folder(tmp_path: Path, odd: str) -> Path:
    root = tmp_path / "imgs"
    write_png(root / "a.png", seed=1, size=(24, 24))
    write_png(root / "b.png", seed=2, size=(24, 24))
    if odd == "dangling":
        (root / "c.jpg").symlink_to(tmp_path / "gone.jpg")
    elif odd == "loop":
        (root / "c.jpg").symlink_to(root / "c.jpg")
    elif odd == "fifo":
        os.mkfifo(root / "c.jpg")
    return root


def _encode_with_deadline(enc, images, seconds: float = 60.0, **kwargs):
    """Run ``enc.encode_images`` in a thread; fail (instead of hanging) if it blocks."""
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = enc.encode_images(images, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        fifo = Path(images) / "c.jpg"
        if fifo.exists() and not fifo.is_symlink():  # unblock the stuck reader
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"encode_images blocked for more than {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


@pytest.mark.parametrize(
    ("odd", "reason"),
    [
        ("dangling", "broken symbolic link"),
        ("loop", "symbolic link loop"),
        pytest.param("fifo", "FIFO", marks=needs_fifo),
    ],
)
def test_cached_folder_run_skips_and_reports_odd_file(tmp_path, toy_encoder, odd, reason):
    folder = _folder(tmp_path, odd)
    cached = CachedEncoder(toy_encoder, enabled=True)
    got = _encode_with_deadline(cached, folder, on_error="skip")
    assert got.indices.tolist() == [0, 1]
    assert [f.source for f in got.failures] == [str(folder / "c.jpg")]
    assert reason in got.failures[0].error
    plain = toy_encoder.encode_images(folder, on_error="skip")  # the uncached reference
    np.testing.assert_allclose(got.embeddings, plain.embeddings, atol=1e-6)
    assert [f.source for f in plain.failures] == [f.source for f in got.failures]
    again = _encode_with_deadline(cached, folder, on_error="skip")  # now served from disk
    np.testing.assert_array_equal(again.embeddings, got.embeddings)
    assert len(again.failures) == 1 and cached.stats.hits == 2


@pytest.mark.parametrize("odd", ["dangling", "loop", pytest.param("fifo", marks=needs_fifo)])
def test_cached_run_with_on_error_raise_names_the_file(tmp_path, toy_encoder, odd):
    folder = _folder(tmp_path, odd)
    cached = CachedEncoder(toy_encoder, enabled=True)
    with pytest.raises(ImageLoadError, match=r"c.jpg \(input #2\)"):
        _encode_with_deadline(cached, folder, on_error="raise")
    cached.encode_images([folder / "a.png", folder / "b.png"])  # now both are cached
    with pytest.raises(ImageLoadError, match=r"c.jpg \(input #2\)"):  # the caller's position
        _encode_with_deadline(cached, folder, on_error="raise")


def test_expanding_scanned_files_again_keeps_broken_links(tmp_path):
    """The cache expands a folder, then hands the scanned list to the inner encoder again."""
    from zsvl.data.images import expand_inputs

    folder = _folder(tmp_path, "dangling")
    items = expand_inputs(folder)
    assert expand_inputs(items) == items == [folder / "a.png", folder / "b.png", folder / "c.jpg"]

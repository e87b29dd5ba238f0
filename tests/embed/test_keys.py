"""Cache keys change exactly when something that changes an embedding changes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zsvl.embed import keys
from zsvl.embed.keys import KEY_VERSION, image_key, text_key
from zsvl.errors import InvalidParameterError

from .helpers import write_png


def test_text_key_is_a_stable_hex_digest() -> None:
    k = text_key("fp", "a photo of a cat")
    assert k == text_key("fp", "a photo of a cat")
    assert len(k) == 64 and int(k, 16) >= 0
    assert KEY_VERSION.startswith("zsvl-embed-key/")


def test_text_key_depends_on_text_fingerprint_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    base = text_key("fp", "a cat")
    assert text_key("fp", "a cat ") != base
    assert text_key("fp2", "a cat") != base
    # length-prefixed fields: moving a character between fingerprint and text changes the key
    assert text_key("fpa", " cat") != text_key("fp", "a cat")
    monkeypatch.setattr(keys, "KEY_VERSION", "zsvl-embed-key/999")
    assert keys.text_key("fp", "a cat") != base


def test_text_key_rejects_non_str() -> None:
    with pytest.raises(InvalidParameterError, match="must be str"):
        text_key("fp", b"bytes")  # type: ignore[arg-type]


def test_file_key_changes_with_content_even_when_size_and_mtime_are_kept(tmp_path: Path) -> None:
    path = write_png(tmp_path / "a.png", seed=0)
    before = image_key("fp", path)
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # restore mtime exactly
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert image_key("fp", path) != before


def test_file_key_changes_with_mtime_and_fingerprint(tmp_path: Path) -> None:
    path = write_png(tmp_path / "a.png", seed=0)
    before = image_key("fp", path)
    assert image_key("fp", path) == before
    assert image_key("fp2", path) != before
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert image_key("fp", path) != before


def test_file_key_uses_the_resolved_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_png(tmp_path / "a.png", seed=0)
    monkeypatch.chdir(tmp_path)
    assert image_key("fp", "a.png") == image_key("fp", path) == image_key("fp", str(path))
    link = tmp_path / "link.png"
    link.symlink_to(path)
    assert image_key("fp", link) == image_key("fp", path)
    # the same bytes at another path are another entry (the path is part of the identity)
    copy = tmp_path / "copy.png"
    copy.write_bytes(path.read_bytes())
    assert image_key("fp", copy) != image_key("fp", path)


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        image_key("fp", tmp_path / "missing.png")


def test_array_key_covers_dtype_shape_and_bytes() -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    k = image_key("fp", a)
    assert image_key("fp", a.copy()) == k
    assert image_key("fp", a.reshape(4, 2, 3)) != k  # same bytes, other shape
    assert image_key("fp", a.view(np.int8)) != k  # same bytes, other dtype
    b = a.copy()
    b[0, 0, 0] = 200
    assert image_key("fp", b) != k
    assert image_key("fp2", a) != k
    # a non-contiguous view keys like its contiguous copy
    big = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert image_key("fp", big[::2]) == image_key("fp", np.ascontiguousarray(big[::2]))


def test_tensor_key_covers_dtype_shape_and_bytes_and_differs_from_array() -> None:
    t = torch.arange(24, dtype=torch.float32).reshape(3, 2, 4)
    k = image_key("fp", t)
    assert image_key("fp", t.clone()) == k
    assert image_key("fp", t.reshape(3, 4, 2)) != k
    assert image_key("fp", t.to(torch.float64)) != k
    assert image_key("fp", t.to(torch.bfloat16)) != image_key("fp", t.to(torch.float16))
    assert image_key("fp", t.numpy()) != k  # a tensor (C,H,W) is not an array (H,W,C)


def test_pil_key_covers_mode_size_palette_and_pixels() -> None:
    rgb = Image.new("RGB", (4, 3), (10, 20, 30))
    k = image_key("fp", rgb)
    assert image_key("fp", rgb.copy()) == k
    assert image_key("fp", Image.new("RGB", (3, 4), (10, 20, 30))) != k
    assert image_key("fp", rgb.convert("RGBA")) != k
    other = rgb.copy()
    other.putpixel((0, 0), (11, 20, 30))
    assert image_key("fp", other) != k
    p1 = Image.new("P", (4, 3), 0)
    p1.putpalette([255, 0, 0] * 256)
    p2 = p1.copy()
    p2.putpalette([0, 255, 0] * 256)  # same indices, other colours
    assert image_key("fp", p1) != image_key("fp", p2)


def test_unknown_item_type_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="Cannot build a cache key.*list"):
        image_key("fp", [1, 2, 3])

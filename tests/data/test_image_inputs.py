"""expand_inputs and describe: what callers may pass as images, in which order it comes out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zsvl.data.images import IMAGE_EXTENSIONS, describe, expand_inputs
from zsvl.errors import InvalidParameterError


def _touch_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (10, 20, 30)).save(path, format="PNG")
    return path


def test_extensions_are_lower_case_suffixes():
    for suffix in (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"):
        assert suffix in IMAGE_EXTENSIONS
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_EXTENSIONS)


def test_folder_is_expanded_recursively_sorted_case_insensitive(tmp_path):
    for name in ["b.png", "a.JPG", "sub/z.Jpeg", "sub/deeper/c.webp", "a-b.png", "sub2/x.tif"]:
        _touch_image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub" / "labels.csv").write_text("x")
    _touch_image(tmp_path / ".hidden.png")
    _touch_image(tmp_path / ".cache" / "d.png")
    _touch_image(tmp_path / "sub" / "._z.jpg")  # macOS resource fork

    items = expand_inputs(tmp_path)
    relative = [p.relative_to(tmp_path).as_posix() for p in items]
    assert relative == [
        "a-b.png",
        "a.JPG",
        "b.png",
        "sub/deeper/c.webp",
        "sub/z.Jpeg",
        "sub2/x.tif",
    ]
    assert all(isinstance(p, Path) for p in items)


def test_mixed_list_keeps_input_order(tmp_path):
    folder = tmp_path / "folder"
    _touch_image(folder / "2.png")
    _touch_image(folder / "1.png")
    single = _touch_image(tmp_path / "single.bmp")
    pil = Image.new("RGB", (5, 6))
    batch = np.zeros((3, 8, 9, 3), dtype=np.uint8)
    batch[:, 0, 0, 0] = [0, 1, 2]
    tensor = torch.rand(2, 3, 7, 7)

    items = expand_inputs([str(single), folder, pil, batch, tensor])

    assert items[0] == single and isinstance(items[0], Path)
    assert items[1:3] == [folder / "1.png", folder / "2.png"]
    assert items[3] is pil
    arrays = items[4:7]
    assert [a.shape for a in arrays] == [(8, 9, 3)] * 3
    assert [int(a[0, 0, 0]) for a in arrays] == [0, 1, 2]
    assert all(np.shares_memory(a, batch) for a in arrays)  # views, no copies
    assert [tuple(t.shape) for t in items[7:]] == [(3, 7, 7), (3, 7, 7)]
    assert torch.equal(items[8], tensor[1])
    assert len(items) == 9


def test_single_inputs_need_no_list(tmp_path):
    path = _touch_image(tmp_path / "one.png")
    assert expand_inputs(str(path)) == [path]
    array = np.zeros((4, 4), dtype=np.uint8)
    assert expand_inputs(array)[0] is array
    assert expand_inputs([]) == []


def test_missing_path_is_a_caller_error(tmp_path):
    missing = tmp_path / "nope" / "cat.jpg"
    with pytest.raises(InvalidParameterError, match=r"nope.cat\.jpg.*does not exist"):
        expand_inputs([missing])


def test_folder_without_images_raises_clearly(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(InvalidParameterError, match="contains no image files"):
        expand_inputs(tmp_path)


@pytest.mark.parametrize("bad", [42, b"bytes", {"a": 1}, [[np.zeros((2, 2))]]])
def test_unsupported_type_says_what_is_accepted(bad):
    with pytest.raises(InvalidParameterError, match="Unsupported image input.*Expected a file"):
        expand_inputs(bad)


def test_array_validation_messages():
    with pytest.raises(InvalidParameterError, match="channels-first.*moveaxis"):
        expand_inputs(np.zeros((3, 32, 32), dtype=np.uint8))
    with pytest.raises(InvalidParameterError, match="channels-last.*permute"):
        expand_inputs(torch.zeros(32, 32, 3))
    with pytest.raises(InvalidParameterError, match=r"in \[0, 1\]; got values in \[0, 255\]"):
        expand_inputs(np.linspace(0, 255, 48).reshape(4, 4, 3))
    with pytest.raises(InvalidParameterError, match="dtype int64"):
        expand_inputs(np.zeros((4, 4, 3), dtype=np.int64))
    with pytest.raises(InvalidParameterError, match="NaN"):
        expand_inputs(torch.full((3, 4, 4), float("nan")))
    with pytest.raises(InvalidParameterError, match="empty"):
        expand_inputs(np.zeros((0, 4, 3), dtype=np.uint8))
    with pytest.raises(InvalidParameterError, match="shape"):
        expand_inputs(np.zeros((1, 2, 4, 4, 3), dtype=np.uint8))


def test_describe_labels(tmp_path):
    path = tmp_path / "x.png"
    assert describe(path, 0) == str(path)
    assert describe(np.zeros((32, 32, 3), np.uint8), 3) == "<ndarray #3 (32x32x3)>"
    assert describe(torch.zeros(3, 8, 9), 1) == "<Tensor #1 (3x8x9)>"
    assert describe(Image.new("L", (5, 6)), 2) == "<PIL.Image #2 (5x6 L)>"

"""load_image: real files written with PIL, every colour mode and failure a user will meet."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from zsvl.data.decode import to_rgb
from zsvl.data.images import load_image
from zsvl.errors import ImageLoadError, InvalidParameterError

RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)


def _close(pixel, expected, tol=12):
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected, strict=True))


def _jpeg_bytes(size=(64, 48)) -> bytes:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (40, 20), RED)  # stored landscape: left red, right blue
    stored.paste(BLUE, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, format="JPEG", quality=95, exif=exif.tobytes())

    image = load_image(path)

    assert image.mode == "RGB" and image.size == (20, 40)  # portrait now
    assert _close(image.getpixel((10, 5)), RED)  # the left side went to the top
    assert _close(image.getpixel((10, 35)), BLUE)


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, format="JPEG", quality=95)
    image = load_image(path)
    assert image.mode == "RGB"
    assert _close(image.getpixel((8, 8)), RED)


@pytest.mark.parametrize("mode, value, expected", [("L", 100, (100,) * 3), ("1", 1, WHITE)])
def test_grayscale(tmp_path, mode, value, expected):
    path = tmp_path / f"grey_{mode}.png"
    Image.new(mode, (8, 8), value).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.getpixel((3, 3)) == expected


def test_rgba_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (3, 1))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black: white, not black
    rgba.putpixel((1, 0), (255, 0, 0, 128))  # half-transparent red: pink
    rgba.putpixel((2, 0), (0, 0, 255, 255))  # opaque blue stays blue
    path = tmp_path / "logo.png"
    rgba.save(path)

    image = load_image(path)

    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == WHITE
    assert _close(image.getpixel((1, 0)), (255, 127, 127), tol=2)
    assert image.getpixel((2, 0)) == BLUE


def test_grey_with_alpha(tmp_path):
    path = tmp_path / "la.png"
    Image.new("LA", (4, 4), (0, 0)).save(path)
    assert load_image(path).getpixel((1, 1)) == WHITE


def test_16bit_png_gradient_is_scaled_not_clipped(tmp_path):
    levels = np.arange(256, dtype=np.uint16)
    gradient = np.tile(levels * 257, (4, 1))  # 8-bit level k stored as k * 257 in 16 bits
    gradient[1, :3] = [1000, 32768, 65535]
    path = tmp_path / "depth16.png"
    Image.fromarray(gradient).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file

    pixels = np.asarray(load_image(path))

    assert pixels.shape == (4, 256, 3)
    np.testing.assert_array_equal(pixels[0, :, 0], levels)
    np.testing.assert_array_equal(pixels[0, :, 1], pixels[0, :, 2])
    assert pixels[1, :3, 0].tolist() == [4, 128, 255]  # round(v / 257)


def test_32bit_and_float_grey_modes():
    wide = Image.fromarray(np.array([[-100, 0, 100, 1000]], dtype=np.int32))  # beyond 16 bits
    assert np.asarray(to_rgb(wide))[0, :, 0].tolist() == [0, 23, 46, 255]  # stretched
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(to_rgb(unit))[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize("suffix", ["png", "gif"])
def test_palette_with_transparency(tmp_path, suffix):
    palette_image = Image.new("P", (4, 2), 0)
    palette_image.putpalette([0, 0, 0, *GREEN] + [0] * (254 * 3))
    palette_image.paste(1, (0, 1, 4, 2))  # bottom row: index 1 (green)
    path = tmp_path / f"sprite.{suffix}"
    palette_image.save(path, transparency=0)  # index 0 (black) is transparent

    image = load_image(path)

    assert image.mode == "RGB"
    assert image.getpixel((1, 0)) == WHITE
    assert image.getpixel((1, 1)) == GREEN


def test_palette_without_transparency(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (4, 4), BLUE).convert("P").save(path)
    assert load_image(path).getpixel((0, 0)) == BLUE


def test_corrupt_file_names_file_and_reason(tmp_path):
    path = tmp_path / "random.jpg"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageLoadError, match=r"random\.jpg.*not a recognised image format"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    data = _jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg.*truncated") as info:
        load_image(path)
    assert "truncated" in info.value.reason and info.value.source == f"'{path}'"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.png.*empty \(0 bytes\)"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match=r"gone\.png.*does not exist"):
        load_image(tmp_path / "gone.png")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads all")
def test_permission_denied(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (2, 2)).save(path)
    path.chmod(0)
    try:
        with pytest.raises(ImageLoadError, match=r"secret\.png.*permission denied"):
            load_image(path)
    finally:
        path.chmod(0o644)


def test_decompression_bomb_becomes_image_load_error(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 px > 2 * limit: PIL's error
    with pytest.raises(ImageLoadError, match=r"bomb\.png.*too large.*MAX_IMAGE_PIXELS"):
        load_image(path)


def test_in_memory_inputs():
    floats = np.zeros((2, 3, 3), dtype=np.float32)
    floats[0, 0] = [1.0, 0.5, 0.0]
    assert load_image(floats).getpixel((0, 0)) == (255, 128, 0)
    grey = np.full((2, 3), 7, dtype=np.uint8)
    assert load_image(grey).getpixel((2, 1)) == (7, 7, 7)
    single_channel = np.full((2, 3, 1), 9, dtype=np.uint8)
    assert load_image(single_channel).getpixel((0, 0)) == (9, 9, 9)
    mask = np.zeros((2, 2), dtype=bool)
    mask[1, 1] = True
    assert load_image(mask).getpixel((1, 1)) == WHITE

    chw = torch.zeros(3, 4, 5, dtype=torch.uint8)
    chw[2, 3, 4] = 200  # blue channel, row 3, column 4
    image = load_image(chw)
    assert image.size == (5, 4) and image.getpixel((4, 3)) == (0, 0, 200)
    assert load_image(torch.ones(4, 2, 2, dtype=torch.bfloat16) * 0.0).getpixel((0, 0)) == WHITE
    pil = Image.new("RGBA", (2, 2), (0, 0, 255, 255))
    assert load_image(pil).getpixel((0, 0)) == BLUE


def test_unsupported_item_type():
    with pytest.raises(InvalidParameterError, match="expand_inputs"):
        load_image(123)


def test_permission_error_reason(tmp_path, monkeypatch):
    """The same as above where tests run as root: the error PIL gets from the OS is reported."""
    path = tmp_path / "locked.png"
    Image.new("RGB", (2, 2)).save(path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(ImageLoadError, match=r"locked\.png.*permission denied"):
        load_image(path)


def test_lazily_opened_pil_image_with_broken_data(tmp_path):
    data = _jpeg_bytes()
    path = tmp_path / "lazy.jpg"
    path.write_bytes(data[: len(data) // 2])
    with Image.open(path) as lazy:  # opening reads the header only; the pixels are missing
        with pytest.raises(ImageLoadError, match=r"lazy\.jpg.*cannot be decoded"):
            load_image(lazy)

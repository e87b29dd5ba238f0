"""CachedEncoder: same results as the inner encoder, which is only asked for what is missing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zsvl.embed.cached import CachedEncoder
from zsvl.embed.store import EmbeddingStore
from zsvl.errors import ImageLoadError, InvalidParameterError
from zsvl.models.base import Encoder

from .helpers import FakeEncoder, write_png

TEXTS = ["a photo of a cat", "a photo of a dog", "a blurry photo of a red car", "a cat"]


def test_wrapper_is_an_encoder_and_passes_attributes_through(fake: FakeEncoder) -> None:
    enc = CachedEncoder(fake)
    assert isinstance(enc, Encoder)
    assert enc.inner is fake
    assert (enc.embed_dim, enc.logit_scale, enc.fingerprint) == (16, 100.0, fake.fingerprint)
    with pytest.raises(InvalidParameterError, match="wraps an Encoder"):
        CachedEncoder(object())  # type: ignore[arg-type]


def test_second_text_call_is_all_hits_and_never_reaches_the_inner_encoder(
    fake: FakeEncoder,
) -> None:
    expected = FakeEncoder().encode_texts(TEXTS)
    enc = CachedEncoder(fake)
    first = enc.encode_texts(TEXTS)
    assert len(fake.text_calls) == 1 and enc.stats.misses == 4 and enc.stats.hits == 0
    second = enc.encode_texts(TEXTS)
    assert len(fake.text_calls) == 1 and enc.stats.hits == 4
    assert first.dtype == np.float32 and first.shape == (4, 16)
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)
    # a new process (new wrapper, same disk) also hits
    other = FakeEncoder()
    np.testing.assert_array_equal(CachedEncoder(other).encode_texts(TEXTS[::-1]), expected[::-1])
    assert other.text_calls == []


def test_only_missing_texts_are_encoded_once_each_in_input_order(fake: FakeEncoder) -> None:
    enc = CachedEncoder(fake)
    enc.encode_texts(TEXTS[:2])
    batch = ["new one", TEXTS[1], "new one", TEXTS[0], "new two", "new one"]
    got = enc.encode_texts(batch)
    assert fake.text_calls[-1] == ["new one", "new two"]
    assert (enc.stats.hits, enc.stats.misses, enc.stats.computed) == (2, 6, 4)
    np.testing.assert_array_equal(got, FakeEncoder().encode_texts(batch))


def test_empty_and_bare_string_text_inputs(fake: FakeEncoder) -> None:
    enc = CachedEncoder(fake)
    out = enc.encode_texts([])
    assert out.shape == (0, 16) and out.dtype == np.float32 and fake.text_calls == []
    with pytest.raises(InvalidParameterError, match=r"Pass \[text\]"):
        enc.encode_texts("a cat")


def test_fingerprints_never_share_entries(fake: FakeEncoder) -> None:
    CachedEncoder(fake).encode_texts(TEXTS)
    other = FakeEncoder(fingerprint="fake|v2|fp32")
    got = CachedEncoder(other).encode_texts(TEXTS)
    assert len(other.text_calls) == 1
    np.testing.assert_array_equal(got, FakeEncoder("fake|v2|fp32").encode_texts(TEXTS))


def test_corrupted_entry_is_recomputed_and_replaced(
    fake: FakeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    enc = CachedEncoder(fake)
    expected = enc.encode_texts(TEXTS)
    enc.store.close()
    path = enc.store.path
    data = bytearray(path.read_bytes())
    at = data.find(expected[2].tobytes())
    data[at + 7] ^= 0x01  # one flipped bit in one stored vector
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING):
        got = enc.encode_texts(TEXTS)
    assert "failed their checksum" in caplog.text
    assert fake.text_calls[-1] == [TEXTS[2]]
    np.testing.assert_array_equal(got, expected)
    calls = len(fake.text_calls)
    np.testing.assert_array_equal(enc.encode_texts(TEXTS), expected)
    assert len(fake.text_calls) == calls  # healed: all hits again


def test_whole_file_garbage_is_survived(
    fake: FakeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    enc = CachedEncoder(fake)
    expected = enc.encode_texts(TEXTS)
    enc.store.close()
    enc.store.path.write_bytes(b"\x00garbage" * 1000)
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(enc.encode_texts(TEXTS), expected)
    assert "is corrupt" in caplog.text and len(fake.text_calls) == 2
    np.testing.assert_array_equal(enc.encode_texts(TEXTS), expected)
    assert len(fake.text_calls) == 2


def test_disabled_cache_goes_straight_through(
    fake: FakeEncoder, monkeypatch: pytest.MonkeyPatch, zsvl_home: Path
) -> None:
    enc = CachedEncoder(fake, enabled=False)
    enc.encode_texts(TEXTS)
    enc.encode_texts(TEXTS)
    assert len(fake.text_calls) == 2
    monkeypatch.setenv("ZSVL_NO_CACHE", "1")
    env_off = CachedEncoder(fake)
    env_off.encode_texts(TEXTS)
    assert not env_off.enabled and len(fake.text_calls) == 3
    assert not (zsvl_home / "embeddings").exists()
    monkeypatch.setenv("ZSVL_NO_CACHE", "0")
    assert CachedEncoder(fake).enabled


def test_store_of_another_encoder_is_refused(fake: FakeEncoder) -> None:
    with pytest.raises(InvalidParameterError, match="store belongs to fingerprint 'other'"):
        CachedEncoder(fake, EmbeddingStore("other", dim=16))
    store = EmbeddingStore(fake.fingerprint, dim=16, root=Path(os.environ["ZSVL_HOME"]) / "x")
    CachedEncoder(fake, store).encode_texts(TEXTS)
    assert len(store) == 4


def test_images_second_call_is_all_hits_with_the_same_result(
    fake: FakeEncoder, png_dir: Path
) -> None:
    arr = np.random.default_rng(7).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    pil = Image.fromarray(arr)
    inputs = [png_dir, pil, arr]
    expected = FakeEncoder().encode_images(inputs)
    enc = CachedEncoder(fake)
    first = enc.encode_images(inputs)
    assert fake.image_calls == [8] and enc.stats.misses == 8
    second = enc.encode_images(inputs)
    assert fake.image_calls == [8] and enc.stats.hits == 8
    for got in (first, second):
        np.testing.assert_array_equal(got.embeddings, expected.embeddings)
        np.testing.assert_array_equal(got.indices, np.arange(8))
        assert got.sources == expected.sources and got.failures == []
        assert got.embeddings.dtype == np.float32 and got.indices.dtype == np.int64
    assert Path(first.sources[0]).name == "img0.png"
    assert Path(first.sources[5]).parent.name == "sub"


def test_repeated_images_are_encoded_once(fake: FakeEncoder, png_dir: Path) -> None:
    a, b = png_dir / "img0.png", png_dir / "img1.png"
    enc = CachedEncoder(fake)
    out = enc.encode_images([a, b, a, a])
    assert fake.image_calls == [2] and enc.stats.computed == 2
    np.testing.assert_array_equal(out.embeddings[0], out.embeddings[2])
    np.testing.assert_array_equal(out.indices, [0, 1, 2, 3])


def test_changed_file_is_a_miss_for_that_file_only(fake: FakeEncoder, png_dir: Path) -> None:
    enc = CachedEncoder(fake)
    before = enc.encode_images(png_dir)
    write_png(png_dir / "img2.png", seed=99)
    after = enc.encode_images(png_dir)
    assert fake.image_calls == [6, 1]
    assert not np.array_equal(after.embeddings[2], before.embeddings[2])
    np.testing.assert_array_equal(
        np.delete(after.embeddings, 2, 0), np.delete(before.embeddings, 2, 0)
    )
    np.testing.assert_array_equal(after.embeddings, FakeEncoder().encode_images(png_dir).embeddings)


def test_touching_a_file_invalidates_its_entry(fake: FakeEncoder, png_dir: Path) -> None:
    enc = CachedEncoder(fake)
    enc.encode_images(png_dir)
    path = png_dir / "img1.png"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    enc.encode_images(png_dir)
    assert fake.image_calls == [6, 1]


def test_failures_are_reported_in_caller_positions_and_never_cached(
    fake: FakeEncoder, png_dir: Path
) -> None:
    broken = png_dir / "broken.png"
    broken.write_bytes(b"this is not a png")
    good = [png_dir / "img0.png", png_dir / "img1.png"]
    inputs = [good[0], broken, good[1], broken]
    enc = CachedEncoder(fake)
    enc.encode_images(good[1])  # warm one of them
    out = enc.encode_images(inputs, on_error="skip")
    assert fake.image_calls == [1, 2]  # img0 and broken (once)
    np.testing.assert_array_equal(out.indices, [0, 2])
    assert [f.index for f in out.failures] == [1, 3]
    assert all(f.source == str(broken) for f in out.failures)
    assert out.sources[1] == str(broken) and "cannot decode" in out.failures[0].error

    out2 = enc.encode_images(inputs, on_error="skip")
    assert fake.image_calls == [1, 2, 1]  # only the broken file is tried again
    np.testing.assert_array_equal(out2.embeddings, out.embeddings)
    assert out2.failures == out.failures
    assert len(enc.store) == 2

    with pytest.raises(ImageLoadError, match="cannot decode"):
        enc.encode_images(inputs)


def test_unreadable_file_is_passed_through_uncached(
    fake: FakeEncoder, png_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that cannot be hashed (here: permission lost) is still given to the inner encoder."""
    import zsvl.embed.cached as cached

    def refuse(fingerprint: str, item: object) -> str:
        raise PermissionError(f"cannot read {item}")

    monkeypatch.setattr(cached, "image_key", refuse)
    enc = CachedEncoder(fake)
    out = enc.encode_images(png_dir)
    out = enc.encode_images(png_dir)
    assert fake.image_calls == [6, 6] and len(out) == 6 and len(enc.store) == 0


def test_batched_arrays_and_tensors_are_keyed_per_image(fake: FakeEncoder) -> None:
    import torch

    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (3, 8, 9, 3), dtype=np.uint8)
    tensors = torch.rand(2, 3, 8, 9, generator=torch.Generator().manual_seed(0))
    enc = CachedEncoder(fake)
    first = enc.encode_images([batch, tensors])
    assert fake.image_calls == [5]
    second = enc.encode_images([batch[1], tensors[0], batch])
    assert fake.image_calls == [5] and enc.stats.hits == 5
    np.testing.assert_array_equal(second.embeddings[0], first.embeddings[1])
    np.testing.assert_array_equal(second.embeddings[1], first.embeddings[3])
    np.testing.assert_array_equal(second.embeddings[2:], first.embeddings[:3])
    assert second.sources[0].startswith("<ndarray #0") and len(second.sources) == 5


def test_on_error_is_validated_even_when_everything_is_cached(fake: FakeEncoder) -> None:
    enc = CachedEncoder(fake)
    with pytest.raises(InvalidParameterError, match="on_error must be 'raise' or 'skip'"):
        enc.encode_images(np.zeros((4, 4, 3), np.uint8), on_error="ignore")  # type: ignore[arg-type]

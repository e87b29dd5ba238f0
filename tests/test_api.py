"""The front door: classify() on real files, a corrupt one among them; load_model with cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import zsvl
from zsvl.errors import ImageLoadError


@pytest.fixture()
def image_folder(toy_suite: Path, tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """Twelve toy test images from the fine-grained set, plus one corrupt file, in a folder."""
    from zsvl.data.splits import read_split_file
    from zsvl.toy.suite import TOY_DATASETS

    spec = TOY_DATASETS[1] if len(TOY_DATASETS) > 1 else TOY_DATASETS[0]
    test = read_split_file(toy_suite / spec.folder / spec.split_file)["test"]
    folder = tmp_path / "imgs"
    folder.mkdir()
    truth = []
    for i in range(0, len(test), max(1, len(test) // 12))[:12]:
        shutil.copy(test.paths[i], folder / f"{len(truth):02d}.png")
        truth.append(test.classes[test.labels[i]])
    (folder / "99_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return folder, truth, list(test.classes.names)


def test_classify_folder_skips_the_corrupt_file(toy_encoder, image_folder):
    folder, truth, classes = image_folder
    result = zsvl.classify(folder, classes, model=toy_encoder, on_error="skip", top_k=3)
    assert len(result) == len(truth)
    assert [Path(s).name for s in result.sources] == [f"{i:02d}.png" for i in range(len(truth))]
    assert len(result.skipped) == 1 and result.skipped[0].source.endswith("99_corrupt.png")
    assert result.probs.shape == (len(truth), len(classes))
    np.testing.assert_allclose(result.probs.sum(1), 1.0, atol=1e-5)
    assert all(top[0] == lab for top, lab in zip(result.topk_labels, result.labels, strict=True))
    assert sum(p == t for p, t in zip(result.labels, truth, strict=True)) >= 4  # well above chance
    record = result.to_records()[0]
    assert set(record) == {"source", "label", "score", "top_k"} and len(record["top_k"]) == 3


def test_classify_raises_naming_the_corrupt_file(toy_encoder, image_folder):
    folder, _, classes = image_folder
    with pytest.raises(ImageLoadError, match="99_corrupt.png"):
        zsvl.classify(folder, classes, model=toy_encoder)


def test_classify_by_spec_uses_the_cache(image_folder):
    folder, truth, classes = image_folder
    first = zsvl.classify(sorted(folder.glob("0*.png")), classes, model="toy")
    encoder = zsvl.load_model("toy")
    again = zsvl.classify(sorted(folder.glob("0*.png")), classes, model=encoder)
    assert first.labels == again.labels
    assert encoder.stats.computed == 0 and encoder.stats.hits >= len(truth)

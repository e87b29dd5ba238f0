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
    assert set(record) == {"source", "label", "label_index", "score", "top_k"}
    assert len(record["top_k"]) == 3 and set(record["top_k"][0]) == {"label", "index", "score"}
    assert [classes[i] for i in result.label_indices] == result.labels
    assert [[classes[i] for i in row] for row in result.topk_indices] == result.topk_labels
    assert result.method == "zeroshot" and result.params == {}


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


@pytest.fixture(scope="module")
def support_folder(toy_suite: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """shots/<class>/*.png: 4 train images of each ToyFine class named below (8 classes)."""
    from zsvl.data.splits import read_split_file
    from zsvl.toy.suite import TOY_DATASETS

    spec = TOY_DATASETS[1]
    train = read_split_file(toy_suite / spec.folder / spec.split_file)["train"]
    root = tmp_path_factory.mktemp("support") / "shots"
    counts: dict[int, int] = {}
    for path, label in zip(train.paths, train.labels, strict=True):
        if label < 8 and counts.get(label, 0) < 4:
            counts[label] = counts.get(label, 0) + 1
            folder = root / train.classes.names[label].replace(" ", "_")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / Path(path).name)
    return root


def _queries(toy_suite: Path, names: list[str], n: int = 16) -> tuple[list[Path], list[str]]:
    from zsvl.data.splits import read_split_file
    from zsvl.toy.suite import TOY_DATASETS

    spec = TOY_DATASETS[1]
    test = read_split_file(toy_suite / spec.folder / spec.split_file)["test"]
    picks = [i for i, y in enumerate(test.labels) if test.classes.names[y] in names][:n]
    return [test.paths[i] for i in picks], [test.classes.names[test.labels[i]] for i in picks]


@pytest.mark.parametrize("method", ["gda", "tip", "tip-x", "gda-em"])
def test_classify_with_support(method, toy_encoder, toy_suite, support_folder):
    from zsvl.support import load_support

    names = list(load_support(support_folder).classes.names)
    paths, _ = _queries(toy_suite, [n.replace("_", " ") for n in names])
    result = zsvl.classify(
        paths, method=method, support=support_folder, model=toy_encoder, support_views=2
    )
    assert result.method == method and list(result.classes.names) == names
    assert result.probs.shape == (len(paths), len(names))
    if method != "gda-em":
        assert "alpha" in result.params
        # hyperparameters come from the shots alone: other query images, same choice
        other = zsvl.classify(
            paths[:3], method=method, support=support_folder, model=toy_encoder, support_views=2
        )
        assert other.params == result.params
        np.testing.assert_allclose(other.probs, result.probs[:3], rtol=1e-5, atol=1e-6)


def test_support_classes_follow_the_class_list(toy_encoder, toy_suite, support_folder):
    from zsvl.support import load_support

    folder_names = list(load_support(support_folder).classes.names)
    names = [n.replace("_", " ") for n in reversed(folder_names)] + ["purple striped blob"]
    support = load_support(support_folder, names)
    assert support.classes.names == tuple(names)
    assert support.counts().tolist() == [4] * len(folder_names) + [0]
    paths, truth = _queries(toy_suite, names)
    result = zsvl.classify(
        paths, names, method="gda", support=support_folder, model=toy_encoder, support_views=2
    )
    assert list(result.classes.names) == names
    assert sum(p == t for p, t in zip(result.labels, truth, strict=True)) >= len(truth) // 3


def test_classify_with_a_saved_classifier(toy_encoder, toy_suite, support_folder, tmp_path):
    from zsvl.fitting import fit_classifier

    fitted = fit_classifier("tip", toy_encoder, support=support_folder, support_views=2)
    path = zsvl.save_classifier(fitted.classifier, tmp_path / "tip.zsvl")
    paths, _ = _queries(toy_suite, [str(c) for c in fitted.classifier.classes_])
    direct = zsvl.classify(paths, classifier=fitted.classifier)
    loaded = zsvl.classify(paths, classifier=path, model=toy_encoder)
    assert loaded.method == "saved" and loaded.labels == direct.labels
    np.testing.assert_allclose(loaded.probs, direct.probs, rtol=1e-5, atol=1e-7)
    with pytest.raises(zsvl.errors.InvalidParameterError, match="differ from the classifier"):
        zsvl.classify(paths, ["a", "b"], classifier=path, model=toy_encoder)
    with pytest.raises(zsvl.errors.InvalidParameterError, match="leave out method"):
        zsvl.classify(paths, classifier=path, method="gda", model=toy_encoder)


def test_support_folder_errors(tmp_path):
    from zsvl.errors import InvalidParameterError
    from zsvl.support import load_support

    with pytest.raises(InvalidParameterError, match="does not exist"):
        load_support(tmp_path / "missing")
    with pytest.raises(InvalidParameterError, match="no class sub-folders"):
        load_support(tmp_path)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("x")
    with pytest.raises(InvalidParameterError, match="hold no images"):
        load_support(tmp_path)
    with pytest.raises(InvalidParameterError, match="name no class"):
        load_support(tmp_path, ["dog"])


def test_method_errors_come_before_loading_a_model():
    from zsvl.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="Did you mean tip"):
        zsvl.classify("x.png", ["a"], method="tpi", model="no-such-model")
    with pytest.raises(InvalidParameterError, match="needs labelled support"):
        zsvl.classify("x.png", ["a"], method="gda", model="no-such-model")

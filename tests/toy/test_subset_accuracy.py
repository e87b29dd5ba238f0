"""Fast twins of the slow accuracy checks: the same measurements on the first images per class.

The full-split versions (marked slow, run by ``make test-slow``) keep their bands; these run in the
default suite on a fixed subset of the same test split, with looser bands, so a change that breaks
a method's accuracy on the toy world fails the fast run too. Each subset is deterministic (the
first n images of every class, exactly the full suite's), so these numbers never vary run to run.
"""

from __future__ import annotations

import pytest

from zsvl.eval.metrics import topk_accuracy
from zsvl.toy.suite import get_toy_dataset, render_split


@pytest.fixture(scope="module")
def toy_fine_subset(toy_encoder):
    """ToyFine's first 16 test images per class (768): embeddings (768, 128) and labels (768,)."""
    images, labels = render_split(get_toy_dataset("ToyFine"), "test", per_class=16)
    return toy_encoder.encode_images(list(images)).embeddings, labels


def test_fudd_beats_the_class_name_alone_on_a_toy_fine_subset(toy_encoder, toy_fine_subset):
    """Twin of tests/methods/test_fudd.py::test_fudd_beats_the_class_name_alone_on_toy_fine
    (all 1,920 images: name 50.1, FuDD 52.7, band +1.5). Measured on this subset: name 50.0,
    FuDD 52.2, top-10 ceiling 99.9; band +1.0."""
    from zsvl.methods.fudd import FuDDClassifier
    from zsvl.methods.zeroshot import ZeroShotClassifier

    X, y = toy_fine_subset
    spec = get_toy_dataset("ToyFine")
    name_only = ZeroShotClassifier(toy_encoder, spec.classnames, templates=["{}"]).fit()
    fudd = FuDDClassifier(toy_encoder, spec.classnames, descriptors="toy_fine_fudd", k=10).fit()
    acc_name = topk_accuracy(name_only.decision_function(X), y, 1)
    acc_fudd = topk_accuracy(fudd.decision_function(X), y, 1)
    ceiling = topk_accuracy(fudd.stage1_scores(X), y, 10)
    assert acc_fudd > acc_name + 1.0, (acc_fudd, acc_name)
    assert acc_fudd <= ceiling

"""Training the tiny CLIP is deterministic and its checkpoint round-trips through open_clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsvl.toy.train import TrainConfig, render_pool, save_checkpoint, train

TINY = TrainConfig(steps=3, batch_size=32, pool_size=96, warmup=1, threads=1)


def test_render_pool_does_not_depend_on_the_number_of_workers():
    a, scenes_a = render_pool(5, 24, workers=1)
    b, scenes_b = render_pool(5, 24, workers=2)
    np.testing.assert_array_equal(a, b)
    assert scenes_a == scenes_b


@pytest.mark.slow
def test_training_is_deterministic_and_saves_a_loadable_checkpoint(tmp_path: Path):
    import open_clip
    import torch

    from zsvl.toy.model import TOY_MODEL_NAME

    first, summary = train(TINY)
    second, _ = train(TINY)
    for (name, p), q in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert np.isfinite(summary["final_loss"])
    info = save_checkpoint(first, tmp_path / "tiny.pt")
    loaded = open_clip.create_model(TOY_MODEL_NAME, pretrained=str(tmp_path / "tiny.pt"))
    assert info["bytes"] == (tmp_path / "tiny.pt").stat().st_size
    torch.testing.assert_close(
        loaded.text_projection, first.text_projection.half().float(), rtol=0, atol=0
    )

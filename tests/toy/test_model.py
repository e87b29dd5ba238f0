"""The shipped tiny CLIP: loads through open_clip, fits the size limit, is good but not perfect."""

from __future__ import annotations

import json

import pytest

from zsvl.toy.model import (
    TOY_MODEL_NAME,
    load_toy_clip,
    register_toy_config,
    toy_checkpoint_path,
    toy_config_path,
    toy_provenance_path,
)

MAX_BYTES = 15 * 1024 * 1024


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSVL_HOME", str(tmp_path))


@pytest.fixture(scope="module")
def toy():
    return load_toy_clip()


def test_config_is_a_standard_clip_config():
    cfg = json.loads(toy_config_path().read_text())
    assert {"embed_dim", "vision_cfg", "text_cfg"} <= set(cfg)
    assert cfg["text_cfg"]["context_length"] == 77 and cfg["text_cfg"]["vocab_size"] == 49408
    assert register_toy_config() == register_toy_config() == TOY_MODEL_NAME


def test_checkpoint_is_small_fp16_and_loads_through_open_clip():
    import open_clip
    import torch

    path = toy_checkpoint_path()
    assert path.is_file() and path.stat().st_size <= MAX_BYTES
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values())
    register_toy_config()
    model = open_clip.create_model(TOY_MODEL_NAME, pretrained=str(path))
    assert type(model).__name__ == "CLIP" and model.text_pool_type == "argmax"
    assert torch.equal(model.token_embedding.weight.half(), state["token_embedding.weight"])
    tokenizer = open_clip.get_tokenizer(TOY_MODEL_NAME)
    assert tokenizer(["a star"]).shape == (1, 77)


def test_truncated_text_encoding_matches_full_length(toy):
    import torch

    from zsvl.models.textenc import text_features

    model, _, tokenizer = toy
    tokens = tokenizer(["a photo of a red striped triangle.", "a star", "a small blue disc."])
    with torch.no_grad():
        full, short = model.encode_text(tokens), text_features(model, tokens)
    torch.testing.assert_close(full, short, atol=1e-5, rtol=1e-5)


def test_provenance_records_training_and_accuracies():
    info = json.loads(toy_provenance_path().read_text())
    assert info["model"] == TOY_MODEL_NAME and info["config"]["seed"] == 0
    assert 0.4 <= info["metrics"]["ToyFine_top1"] <= 0.9
    assert info["checkpoint"]["bytes"] == toy_checkpoint_path().stat().st_size


def test_zero_shot_accuracy_on_a_fine_grained_subset(toy):
    from zsvl.toy.evaluate import evaluate_toy_model

    model, preprocess, tokenizer = toy
    metrics = evaluate_toy_model(model, preprocess, tokenizer, per_class=10)
    assert 0.35 <= metrics["ToyFine_top1"] <= 0.95  # useful, with room left for better methods
    assert metrics["ToyShapes_top1"] > metrics["ToyFine_top1"]
    assert metrics["ToyTextures_top1"] > 0.35
    for attribute in ("shape", "colour", "pattern"):
        top1, chance = metrics[f"attr_{attribute}_top1"], metrics[f"attr_{attribute}_chance"]
        assert top1 > chance + 0.2, (attribute, top1, chance)


def test_class_names_beat_shuffled_names(toy):
    """Zero-shot depends on the words: a permuted class list is near chance."""
    from zsvl.toy.evaluate import class_weights, encode_images, zero_shot_accuracy
    from zsvl.toy.suite import get_toy_dataset, render_split

    model, preprocess, tokenizer = toy
    spec = get_toy_dataset("ToyShapes")
    images, labels = render_split(spec, "test", per_class=10)
    features = encode_images(model, preprocess, images)
    names = list(spec.classnames)
    right = zero_shot_accuracy(
        features, class_weights(model, tokenizer, names, [spec.template]), labels
    )
    shuffled = names[1:] + names[:1]
    wrong = zero_shot_accuracy(
        features, class_weights(model, tokenizer, shuffled, [spec.template]), labels
    )
    assert right > 0.6 and wrong < 0.25, (right, wrong)

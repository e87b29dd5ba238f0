"""Model specs: every open_clip naming form, helpful errors, the offline error, QuickGELU."""

from __future__ import annotations

from pathlib import Path

import pytest

from zsvl.embed import load_model
from zsvl.errors import InvalidParameterError, ModelNotFoundError, WeightsNotFoundError
from zsvl.models import REGISTRY, ModelSpec, parse_spec
from zsvl.models.weights import check_weights_available, warn_quickgelu


def test_arch_and_tag_string_and_tuple_agree():
    a = parse_spec("ViT-B-32:laion2b_s34b_b79k")
    b = parse_spec(("ViT-B-32", "laion2b_s34b_b79k"))
    assert a == b == ModelSpec(arch="ViT-B-32", tag="laion2b_s34b_b79k")
    assert str(a) == "ViT-B-32:laion2b_s34b_b79k"


def test_local_checkpoint_file(tmp_path: Path):
    ckpt = tmp_path / "weights.bin"
    ckpt.write_bytes(b"x")
    spec = parse_spec(f"ViT-B-32:{ckpt}")
    assert spec.checkpoint == ckpt.resolve() and spec.tag is None
    assert parse_spec(("ViT-B-32", ckpt)) == spec


def test_schemas_and_random():
    assert parse_spec("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K").schema == "hf-hub"
    assert parse_spec("ViT-B-32:random").random


def test_local_dir_must_exist(tmp_path: Path):
    assert parse_spec(f"local-dir:{tmp_path}").schema == "local-dir"
    with pytest.raises(InvalidParameterError, match="does not exist"):
        parse_spec(f"local-dir:{tmp_path / 'nope'}")


def test_unknown_arch_suggests_close_matches():
    with pytest.raises(ModelNotFoundError, match="Did you mean: .*ViT-B-32"):
        parse_spec("ViT-B32:openai")


def test_unknown_tag_lists_tags():
    with pytest.raises(ModelNotFoundError, match="laion2b_s34b_b79k"):
        parse_spec("ViT-B-32:laion2b_s34b_b7")


def test_missing_tag_and_missing_file_explain_the_fix(tmp_path: Path):
    with pytest.raises(InvalidParameterError, match="names no weights.*ViT-B-32:"):
        parse_spec("ViT-B-32")
    with pytest.raises(InvalidParameterError, match="does not exist"):
        parse_spec(f"ViT-B-32:{tmp_path / 'missing.pt'}")
    with pytest.raises(InvalidParameterError, match="needs its architecture"):
        parse_spec(tmp_path / "weights.pt")


def test_registry_alias_and_copy():
    registry = REGISTRY.copy()
    registry.register("mine", ModelSpec(arch="ViT-B-32", tag="openai"))
    assert registry.resolve("mine").tag == "openai"
    assert "mine" not in REGISTRY.names()
    with pytest.raises(ModelNotFoundError, match="Did you mean: mine"):
        registry.get("mien")


def _hub_repo(arch: str, tag: str) -> str:
    import open_clip

    return open_clip.get_pretrained_cfg(arch, tag)["hf_hub"].rstrip("/")


def test_offline_error_names_file_and_three_ways(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = _hub_repo("ViT-B-32", "laion2b_s34b_b79k")
    spec = parse_spec("ViT-B-32:laion2b_s34b_b79k")
    with pytest.raises(WeightsNotFoundError) as info:
        check_weights_available(spec, cache_dir=str(tmp_path))
    text = str(info.value)
    assert f"HF_HUB_OFFLINE is set and {repo} is not in the cache {tmp_path}" in text
    assert f"hf download {repo} open_clip_model.safetensors --local-dir weights" in text
    assert "1. a file" in text and "2. the Hugging Face cache" in text and "3. any folder" in text
    with pytest.raises(WeightsNotFoundError):  # the public loader fails the same way, fast
        load_model("ViT-B-32:laion2b_s34b_b79k", cache_dir=str(tmp_path))


def test_offline_finds_weights_in_the_hf_cache(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / ("models--" + _hub_repo("ViT-B-32", "laion2b_s34b_b79k").replace("/", "--"))
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "open_clip_pytorch_model.bin").write_bytes(b"weights")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    check_weights_available(parse_spec("ViT-B-32:laion2b_s34b_b79k"), cache_dir=str(tmp_path))


def test_quickgelu_warning_for_openai_weights():
    with pytest.warns(UserWarning, match="ViT-B-32-quickgelu:openai"):
        warn_quickgelu(parse_spec("ViT-B-32:openai"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_quickgelu(parse_spec("ViT-B-32-quickgelu:openai"))
        warn_quickgelu(parse_spec("ViT-B-32:laion2b_s34b_b79k"))

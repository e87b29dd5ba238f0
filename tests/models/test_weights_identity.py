"""Weights are identified by content: replaced weights never meet old embeddings or indexes.

A local-dir folder holds the shipped toy checkpoint; a second checkpoint is the same state dict
with noise added. Replacing the folder's weights file must change the encoder fingerprint, so
the embedding cache computes afresh and an index built with the old weights is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from zsvl.embed import load_model
from zsvl.errors import IndexMismatchError, WeightsNotFoundError
from zsvl.models import identity, parse_spec, weights
from zsvl.toy.model import toy_checkpoint_path, toy_config_path

WEIGHTS = "open_clip_pytorch_model.bin"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    """(local-dir folder with the toy weights, a perturbed second checkpoint file)."""
    import torch

    root = tmp_path_factory.mktemp("weights")
    folder = root / "toy-dir"
    folder.mkdir()
    config = {"model_cfg": json.loads(toy_config_path().read_text()), "preprocess_cfg": {}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    shutil.copy(toy_checkpoint_path(), folder / WEIGHTS)
    state = torch.load(toy_checkpoint_path(), map_location="cpu")
    gen = torch.Generator().manual_seed(0)
    noisy = {
        k: (v.float() + 0.5 * v.float().std() * torch.randn(v.shape, generator=gen)).to(v.dtype)
        if v.is_floating_point() and v.ndim >= 2
        else v  # matrices and kernels only
        for k, v in state.items()
    }
    torch.save(noisy, root / "perturbed.pt")
    return folder, root / "perturbed.pt"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ZSVL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZSVL_NO_CACHE", raising=False)
    return tmp_path / "home"


def _images(folder: Path, n: int = 12) -> list[Path]:
    from PIL import Image

    from zsvl.toy.render import render_scenes
    from zsvl.toy.world import sample_scene, scene_rng

    pixels = render_scenes([sample_scene(scene_rng(3, i)) for i in range(n)])
    folder.mkdir()
    paths = [folder / f"{i}.png" for i in range(n)]
    for path, image in zip(paths, pixels, strict=True):
        Image.fromarray(image).save(path)
    return paths


def test_replaced_weights_are_not_served_from_the_embedding_cache(checkpoints, home, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(checkpoints[0], folder)
    images = _images(tmp_path / "images")
    spec = f"local-dir:{folder}"
    old = load_model(spec, device="cpu", num_workers=0)
    old_emb = old.encode_images(images).embeddings
    old_text = old.encode_texts(["a red circle"])
    shutil.copyfile(checkpoints[1], folder / WEIGHTS)  # in place: same path, same inode
    new = load_model(spec, device="cpu", num_workers=0)
    assert new.fingerprint != old.fingerprint
    got = new.encode_images(images).embeddings
    fresh = load_model(spec, device="cpu", cache=False, num_workers=0)
    np.testing.assert_allclose(got, fresh.encode_images(images).embeddings, atol=1e-6)
    assert np.abs(got - old_emb).max() > 0.05
    assert np.abs(new.encode_texts(["a red circle"]) - old_text).max() > 0.05


def test_an_index_built_with_old_weights_is_refused(checkpoints, home, tmp_path):
    from zsvl.index import CaptionIndex, build_index

    folder = tmp_path / "model"
    shutil.copytree(checkpoints[0], folder)
    corpus = tmp_path / "captions.txt"
    corpus.write_text(
        "".join(
            f"a {c} {s}\n"
            for c in ("red", "green", "blue", "purple")
            for s in ("circle", "triangle", "square", "star", "hexagon")
        )
    )
    spec = f"local-dir:{folder}"
    old = load_model(spec, device="cpu", cache=False)
    build_index(corpus, old, tmp_path / "index", factory="Flat", max_memory=None)
    CaptionIndex.load(tmp_path / "index", old)  # the same weights: accepted
    shutil.copyfile(checkpoints[1], folder / WEIGHTS)
    new = load_model(spec, device="cpu", cache=False)
    with pytest.raises(IndexMismatchError):
        CaptionIndex.load(tmp_path / "index", new)


def test_identity_is_content_not_path(checkpoints, home, tmp_path):
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(checkpoints[0], moved)
    a = load_model(f"local-dir:{checkpoints[0]}", device="cpu", cache=False)
    b = load_model(f"local-dir:{moved}", device="cpu", cache=False)
    assert a.fingerprint == b.fingerprint and str(moved) not in b.fingerprint
    assert a.fingerprint.startswith("local-dir|sha256-")
    shutil.copyfile(checkpoints[1], moved / WEIGHTS)
    from zsvl.toy.model import register_toy_config

    c = load_model((register_toy_config(), str(checkpoints[1])), device="cpu", cache=False)
    assert c.fingerprint.split("|")[1] == "sha256-" + identity.file_digest(checkpoints[1])[:16]


def test_digest_is_remembered_by_path_size_mtime_inode(home, tmp_path, monkeypatch):
    calls: list[str] = []
    real = identity.sha256_file
    monkeypatch.setattr(identity, "sha256_file", lambda p: calls.append(str(p)) or real(p))
    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 1000)
    first = identity.file_digest(path)
    assert identity.file_digest(path) == first and len(calls) == 1  # from the memo
    memo = json.loads(identity.memo_path().read_text())
    assert memo[str(path.resolve())]["sha256"] == first
    stat = path.stat()
    replacement = tmp_path / "w.new"
    replacement.write_bytes(b"b" * 1000)  # same size
    os.replace(replacement, path)  # a new inode
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime
    second = identity.file_digest(path)
    assert second != first and len(calls) == 2
    time.sleep(0.01)
    path.touch()  # a new mtime: re-hashed, same content, same digest
    assert identity.file_digest(path) == second and len(calls) == 3
    identity.memo_path().write_text("{not json")  # a damaged memo is ignored and rewritten
    assert identity.file_digest(path) == second and len(calls) == 4
    assert json.loads(identity.memo_path().read_text())[str(path.resolve())]["sha256"] == second


def _fake_hub_cache(root: Path, repo: str, files: dict[str, Path]) -> Path:
    """A Hugging Face cache holding ``files`` of ``repo`` at revision main."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = root / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, src in files.items():
        shutil.copyfile(src, snap / name)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)
    return root


@pytest.fixture
def no_hub(monkeypatch):
    """A hub endpoint that refuses connections (port 9 on this machine), probed afresh."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(weights, "_probe_memo", {})


def test_without_network_cached_hub_weights_load_at_once(checkpoints, home, tmp_path, no_hub):
    folder = checkpoints[0]
    cache = _fake_hub_cache(
        tmp_path / "hf",
        "zsvl-test/toy-clip",
        {"open_clip_config.json": folder / "open_clip_config.json", WEIGHTS: folder / WEIGHTS},
    )
    local = load_model(f"local-dir:{folder}", device="cpu", cache=False)  # imports done here
    start = time.perf_counter()
    enc = load_model("hf-hub:zsvl-test/toy-clip", device="cpu", cache=False, cache_dir=str(cache))
    assert time.perf_counter() - start < 10  # no minute of retries
    assert enc.fingerprint.split("|")[1] == local.fingerprint.split("|")[1]  # same files
    np.testing.assert_allclose(
        enc.encode_texts(["a star"]), local.encode_texts(["a star"]), atol=1e-6
    )
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE is False  # the offline switch was only for that load


def test_without_network_missing_weights_fail_fast_with_real_commands(home, tmp_path, no_hub):
    import zsvl.models.openclip  # noqa: F401 (the clock below times the load, not the imports)

    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as info:
        load_model("ViT-B-32:laion2b_s34b_b79k", cache_dir=str(tmp_path / "empty"))
    assert time.perf_counter() - start < 10
    text = str(info.value)
    assert "no network (http://127.0.0.1:9 could not be reached within 2 s" in text
    assert (
        "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K open_clip_model.safetensors "
        "--local-dir weights"
    ) in text
    assert "ViT-B-32:weights/open_clip_model.safetensors" in text
    assert "REPO" not in text and "load_model(" not in text
    with pytest.raises(
        WeightsNotFoundError,
        match="hf download zsvl-test/none "
        "open_clip_model.safetensors "
        "open_clip_config.json --local-dir none",
    ):
        load_model("hf-hub:zsvl-test/none", cache_dir=str(tmp_path / "empty"))


def test_download_failures_are_recognised_by_exception_type():
    from huggingface_hub.errors import LocalEntryNotFoundError

    def wrapped() -> RuntimeError:
        try:
            try:
                raise LocalEntryNotFoundError("not in the cache")
            except LocalEntryNotFoundError:
                raise FileNotFoundError("Failed to download file") from None
        except FileNotFoundError as exc:
            return RuntimeError(f"Failed to download weights: {exc}")

    err = wrapped()
    err.__context__ = LocalEntryNotFoundError("x")
    assert weights.is_download_failure(err)
    assert not weights.is_download_failure(RuntimeError("hub connection offline resolve"))
    assert "the download failed" in str(
        weights.translate_load_error(parse_spec("ViT-B-32:laion2b_s34b_b79k"), err)
    )

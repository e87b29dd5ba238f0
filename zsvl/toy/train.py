"""Train the tiny CLIP of the toy world: ``python -m zsvl.toy.train``.

Images are rendered once into a pool (stream 1 of the seed, never used by the toy suite); every
step pairs a batch of them with freshly drawn captions (:func:`zsvl.toy.captions.training_caption`)
and takes one AdamW step on the symmetric contrastive loss. Text is encoded with per-batch
truncation to the longest caption (:func:`zsvl.models.textenc.text_features`, the forward that
encoding uses too), which a causal tower's end-of-text output cannot notice. The
result is an fp16 state_dict that ``open_clip.create_model("zsvl-toy-clip", pretrained=...)``
loads, plus a JSON of provenance and the zero-shot numbers of :mod:`zsvl.toy.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_path
from zsvl._hashing import sha256_file
from zsvl.toy.captions import training_caption
from zsvl.toy.model import TOY_MODEL_NAME, register_toy_config, toy_checkpoint_path
from zsvl.toy.render import render_scenes
from zsvl.toy.world import Scene, sample_scene, scene_rng

__all__ = ["TrainConfig", "render_pool", "train", "main"]

logger = logging.getLogger(__name__)
TRAIN_STREAM = 1  # scene_rng stream of the training images


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (all of them are recorded in the provenance JSON)."""

    seed: int = 0  # seeds the images, captions, batches and the initialisation
    steps: int = 1500  # optimiser steps
    batch_size: int = 256  # image-caption pairs per step
    lr: float = 1e-3  # peak learning rate (linear warm-up, cosine decay)
    warmup: int = 150  # warm-up steps
    weight_decay: float = 0.1  # AdamW decay of the weight matrices
    pool_size: int = 80_000  # rendered training images, reused with new captions each epoch
    name_p: float = 0.25  # share of class-name style captions
    threads: int = 2  # torch CPU threads and rendering processes


def _render_chunk(seed: int, start: int, stop: int) -> tuple[np.ndarray, list[Scene]]:
    scenes = [sample_scene(scene_rng(seed, i, TRAIN_STREAM)) for i in range(start, stop)]
    return render_scenes(scenes), scenes


def render_pool(seed: int, size: int, workers: int = 2) -> tuple[np.ndarray, list[Scene]]:
    """Training images (size, H, W, 3) uint8 and their scenes; independent of ``workers``."""
    bounds = np.linspace(0, size, num=4 * max(workers, 1) + 1, dtype=int)
    with ProcessPoolExecutor(max(workers, 1), mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_render_chunk, [seed] * (len(bounds) - 1), bounds[:-1], bounds[1:]))
    return np.concatenate([p[0] for p in parts]), [s for p in parts for s in p[1]]


def _optimizer(model: Any, cfg: TrainConfig) -> Any:
    import torch

    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        plain = p.ndim < 2 or "embedding" in name or "logit_scale" in name
        (no_decay if plain else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _batches(rng: np.random.Generator, n: int, cfg: TrainConfig) -> Iterator[np.ndarray]:
    """``cfg.steps`` batches of pool indices: epochs of random permutations, no partial batch."""
    order, cursor = rng.permutation(n), 0
    for _ in range(cfg.steps):
        if cursor + cfg.batch_size > n:
            order, cursor = rng.permutation(n), 0
        yield order[cursor : cursor + cfg.batch_size]
        cursor += cfg.batch_size


def train(cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """Train a fresh tiny CLIP; returns the model and a summary (losses, seconds)."""
    start = time.perf_counter()
    images, scenes = render_pool(cfg.seed, cfg.pool_size, cfg.threads)
    render_seconds = time.perf_counter() - start
    logger.info("Rendered %d training images in %.1f s.", len(images), render_seconds)

    import open_clip
    import torch
    import torch.nn.functional as F

    from zsvl.models.textenc import text_features

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    register_toy_config()
    model = open_clip.create_model(TOY_MODEL_NAME)
    model.train()
    tokenizer = open_clip.get_tokenizer(TOY_MODEL_NAME)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2)
    optimizer, loss_fn = _optimizer(model, cfg), open_clip.ClipLoss()
    rng = np.random.default_rng([cfg.seed, 11])
    losses: list[float] = []
    for step, idx in enumerate(_batches(rng, len(images), cfg)):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        x = (pixels[idx].float() / 255.0 - mean) / std
        tokens = tokenizer([training_caption(scenes[i], rng, cfg.name_p) for i in idx])
        image_features = F.normalize(model.encode_image(x), dim=-1)
        text_feats = F.normalize(text_features(model, tokens), dim=-1)
        loss = loss_fn(image_features, text_feats, model.logit_scale.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        if step % 100 == 0 or step == cfg.steps - 1:
            elapsed = time.perf_counter() - start
            logger.info("step %d/%d loss %.4f (%.0f s)", step + 1, cfg.steps, losses[-1], elapsed)
    model.eval()
    summary = {
        "render_seconds": round(render_seconds, 1),
        "train_seconds": round(time.perf_counter() - start, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4),
        "first_loss": round(losses[0], 4),
        "logit_scale": round(float(model.logit_scale.detach().exp()), 2),
    }
    return model, summary


def save_checkpoint(model: Any, path: Path) -> dict[str, Any]:
    """Write the fp16 state_dict to ``path``; returns its size and sha256."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().half() for k, v in model.state_dict().items()}, tmp)
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def _evaluate_checkpoint(path: Path, seed: int) -> dict[str, float]:
    """Reload ``path`` through open_clip (as users will) and run the toy zero-shot checks."""
    import open_clip

    from zsvl.toy.evaluate import evaluate_toy_model

    model, _, preprocess = open_clip.create_model_and_transforms(
        TOY_MODEL_NAME, pretrained=str(path)
    )
    tokenizer = open_clip.get_tokenizer(TOY_MODEL_NAME)
    return evaluate_toy_model(model, preprocess, tokenizer, seed=seed)


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m zsvl.toy.train", description=__doc__.split("\n")[0]
    )
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument(
        "--out",
        type=Path,
        default=toy_checkpoint_path(),
        help="checkpoint path; provenance goes beside it as .json",
    )
    args = parser.parse_args(argv)
    # idle OpenMP threads sleep instead of spinning: on a shared machine spinning threads of two
    # processes starve each other (a 10x slowdown); torch is not imported yet at this point
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = TrainConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    model, summary = train(cfg)
    checkpoint = save_checkpoint(model, args.out)
    start = time.perf_counter()
    metrics = _evaluate_checkpoint(args.out, cfg.seed)
    provenance = {
        "model": TOY_MODEL_NAME,
        "config": asdict(cfg),
        **summary,
        "checkpoint": checkpoint,
        "eval_seconds": round(time.perf_counter() - start, 1),
        "metrics": {k: round(v, 4) for k, v in metrics.items()},
        "versions": _versions(),
    }
    args.out.with_suffix(".json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps({**summary, **provenance["metrics"], "bytes": checkpoint["bytes"]}, indent=2))
    return 0


def _versions() -> dict[str, str]:
    import open_clip
    import torch

    from zsvl._version import __version__

    return {"zsvl": __version__, "torch": torch.__version__, "open_clip": open_clip.__version__}


if __name__ == "__main__":
    raise SystemExit(main())

"""Text encoding truncated to the longest text in each batch.

CLIP's text tower is causal and pools at the end-of-text token, so the output at that position
depends only on the tokens before it: padding after the longest text of a batch can be cut off
without changing any embedding. Texts are also sorted by length before batching, so most batches
are much shorter than the 77-token context. Towers where that does not hold (bidirectional HF
towers, padding masks, class tokens, "last" pooling) are encoded with the full context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "TextTower",
    "text_tower",
    "text_features",
    "encode_tokens",
    "encode_texts",
    "length_groups",
    "CPU_FORWARD_TOKENS",
]

_POOLS = ("argmax", "eos")

# A CPU text forward's fixed cost in token units: ViT-B-32's text tower took ~35 ms for one
# 12-token query and ~1.1 ms per token in batches on the 2-core development machine
# (benchmarks/bench_serve.py, one thread).
CPU_FORWARD_TOKENS = 32.0


class TextTower:
    """The parts of a causal open_clip text tower that a truncated forward needs."""

    def __init__(self, module: torch.nn.Module, owner: torch.nn.Module) -> None:
        self.module = module  # CLIP (text parts live on the model) or a TextTransformer
        self.owner = owner  # the full model, whose encode_text is the reference

    def pool_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Index of the pooled token of each row, shape (B,)."""
        pool = _pool_type(self.module)
        if pool == "argmax":
            return tokens.argmax(dim=-1)
        eos = _eos_id(self.module)
        if eos is None:  # text_tower() never builds an "eos" tower without an end-of-text id
            raise ValueError("This text tower pools at the end-of-text token but has no eos id.")
        return (tokens == eos).int().argmax(dim=-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unnormalised text features of ``tokens`` (B, L) truncated to their longest text."""
        m: Any = self.module  # open_clip attributes; nn.Module's typing sees only Tensor | Module
        positions = self.pool_positions(tokens)
        length = int(positions.max().item()) + 1
        tokens = tokens[:, :length]
        cast_dtype = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast_dtype)
        x = x + m.positional_embedding[:length].to(cast_dtype)
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        x = m.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), positions]
        proj = m.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


def _pool_type(module: torch.nn.Module) -> str | None:
    return getattr(module, "text_pool_type", None) or getattr(module, "pool_type", None)


def _eos_id(module: torch.nn.Module) -> int | None:
    return getattr(module, "text_eos_id", None) or getattr(module, "eos_id", None)


def text_tower(model: torch.nn.Module) -> TextTower | None:
    """The truncatable causal text tower of an open_clip model, or None when truncation is unsafe."""
    module = model if hasattr(model, "token_embedding") else getattr(model, "text", None)
    if module is None or not hasattr(module, "token_embedding"):
        return None  # HF text towers and other custom encoders
    if getattr(module, "cls_emb", None) is not None or getattr(module, "use_pad_mask", False):
        return None
    if getattr(module, "attn_mask", None) is None or not hasattr(module, "ln_final"):
        return None  # bidirectional: every token sees the padding
    pool = _pool_type(module)
    if pool not in _POOLS or (pool == "eos" and _eos_id(module) is None):
        return None
    return TextTower(module, model)


def text_features(
    model: torch.nn.Module, tokens: torch.Tensor, *, truncate: bool = True
) -> torch.Tensor:
    """Unnormalised text features (B, dim) of a token batch (B, context), differentiable.

    The truncated forward when the tower allows it, else ``model.encode_text``. Training the toy
    CLIP (:mod:`zsvl.toy.train`) uses this too, so encoding and training share one forward.
    """
    tower = text_tower(model) if truncate else None
    return tower.forward(tokens) if tower is not None else _encode_text(model, tokens)


def _encode_text(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(tokens)``: open_clip models define it, ``nn.Module``'s typing cannot."""
    encode = cast("Callable[[torch.Tensor], torch.Tensor]", model.encode_text)
    return encode(tokens)


def encode_tokens(
    model: torch.nn.Module, tokens: torch.Tensor, *, truncate: bool = True
) -> torch.Tensor:
    """L2-normalised float32 features of a token batch (B, context) on the model's device."""
    return F.normalize(text_features(model, tokens, truncate=truncate).float(), dim=-1)


def length_groups(lengths: Sequence[int], fixed_cost: float) -> list[list[int]]:
    """Split a batch into groups of similar length for separate forwards.

    A text forward truncated to its longest text costs about ``fixed_cost + n * max_length``
    (token units): one forward over mixed lengths pads every text to the longest one, many small
    forwards pay the fixed cost many times. Returns the indices of ``lengths`` in groups (each
    group's indices ascending by length) that minimise the summed cost: an exact dynamic program
    over the distinct lengths (a cut between two equal lengths never pays), O(m^2) for m distinct
    lengths, at most the context length. ``fixed_cost=inf`` keeps one group.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if len(order) <= 1 or fixed_cost == float("inf"):
        return [order] if order else []
    ends: list[int] = []  # ends[j]: how many sorted items have length <= the j-th distinct one
    values: list[int] = []
    for pos, i in enumerate(order):
        if values and lengths[i] == values[-1]:
            ends[-1] = pos + 1
        else:
            values.append(lengths[i])
            ends.append(pos + 1)
    m = len(values)
    best = [0.0] + [float("inf")] * m  # best[j]: cost of the items up to the j-th distinct length
    cut = [0] * (m + 1)
    for j in range(1, m + 1):
        for i in range(j):
            start = ends[i - 1] if i else 0
            cost = best[i] + fixed_cost + (ends[j - 1] - start) * values[j - 1]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups = []
    j = m
    while j > 0:
        i = cut[j]
        groups.append(order[(ends[i - 1] if i else 0) : ends[j - 1]])
        j = i
    return groups[::-1]


def _forward_groups(
    chunk: torch.Tensor, lengths: torch.Tensor, device: torch.device, truncate: bool
) -> list[torch.Tensor]:
    """The forwards for one batch of (length-sorted) rows: on CPU, where a forward's cost grows
    with its tokens, rows of similar length go together (:func:`length_groups`); on a GPU,
    where a forward's cost is mostly fixed, one forward."""
    if not truncate or device.type != "cpu" or len(chunk) <= 1:
        return [chunk]
    groups = length_groups(lengths[chunk].tolist(), CPU_FORWARD_TOKENS)
    return [chunk[torch.as_tensor(g, dtype=torch.long)] for g in groups]


def encode_texts(
    model: torch.nn.Module,
    tokenizer: Callable[[Sequence[str]], torch.Tensor],
    texts: Sequence[str],
    *,
    device: torch.device,
    batch_size: int = 256,
    truncate: bool = True,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Encode ``texts`` in length-sorted batches; returns float32 (len(texts), dim), input order.

    Texts longer than the context are truncated by the tokenizer (the end token is kept). On
    CPU a batch of mixed lengths runs as a few forwards of similar lengths (a 32-query batch of
    toy captions padded to 1.7x its real tokens as one forward); embeddings do not depend on it.
    """
    if len(texts) == 0:
        dim = int(getattr(model, "embed_dim", 0) or _probe_dim(model, tokenizer, device))
        return np.zeros((0, dim), dtype=np.float32)
    tokens = tokenizer(list(texts))
    lengths = (tokens != 0).sum(dim=1) if truncate else torch.zeros(len(texts))
    order = torch.argsort(lengths, descending=True, stable=True)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            chunk = order[start : start + batch_size]
            for idx in _forward_groups(chunk, lengths, device, truncate):
                feats = encode_tokens(model, tokens[idx].to(device), truncate=truncate)
                if out is None:
                    out = np.empty((len(texts), feats.shape[1]), dtype=np.float32)
                out[idx.numpy()] = feats.cpu().numpy()
            if progress is not None:
                progress(len(chunk))
    assert out is not None
    return out


def _probe_dim(model: torch.nn.Module, tokenizer: Callable, device: torch.device) -> int:
    with torch.inference_mode():
        return int(_encode_text(model, tokenizer([""]).to(device)).shape[-1])

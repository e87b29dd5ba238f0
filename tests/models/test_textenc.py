"""Per-batch text truncation is exact: equal to open_clip's full-context encode_text."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsvl.models.textenc import encode_texts, text_tower

TEXTS = [
    "a photo of a dog.",
    "x",
    "",
    "a very detailed caption of a small red car parked beside a tall glass building on a sunny "
    "afternoon, with pedestrians, trees, a bus stop and a cyclist waiting at the crossing",
    " ".join(["word"] * 120),  # longer than the 77-token context: truncated by the tokenizer
    "a striped blue circle on a grey background",
] * 2


def _full_context(encoder, texts):
    tokens = encoder.tokenizer(texts)
    with torch.inference_mode():
        return F.normalize(encoder.model.encode_text(tokens).float(), dim=-1).numpy()


def test_truncated_equals_full_context_vitb32(vitb32_random):
    assert text_tower(vitb32_random.model) is not None
    fast = vitb32_random.encode_texts(TEXTS, batch_size=7)  # each text twice, in other batches
    full = np.tile(_full_context(vitb32_random, TEXTS[: len(TEXTS) // 2]), (2, 1))
    assert fast.dtype == np.float32 and fast.shape == (len(TEXTS), 512)
    assert np.abs(fast - full).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_truncated_equals_full_context_toy(toy_encoder):
    fast = toy_encoder.encode_texts(TEXTS, batch_size=4)
    assert np.abs(fast - _full_context(toy_encoder, TEXTS)).max() < 1e-5


def test_input_order_kept_and_empty_input(vitb32_random):
    texts = ["short", "a much longer text than the first one, with many words in it"]
    both = vitb32_random.encode_texts(texts, batch_size=1)
    rev = vitb32_random.encode_texts(texts[::-1], batch_size=1)
    np.testing.assert_allclose(both, rev[::-1], atol=1e-6)
    assert vitb32_random.encode_texts([]).shape == (0, 512)


def test_full_context_fallback_for_untruncatable_towers(vitb32_random):
    model = vitb32_random.model
    saved = model.text_pool_type
    try:
        model.text_pool_type = "last"  # pooling at the last position depends on the padding
        assert text_tower(model) is None
        out = encode_texts(model, vitb32_random.tokenizer, TEXTS[:3], device=torch.device("cpu"))
    finally:
        model.text_pool_type = saved
    assert out.shape == (3, 512)


def test_training_forward_is_bitwise_the_reference_truncation(toy_encoder):
    """The toy CLIP is trained through text_features: its values and gradients must be bitwise
    those of the truncated forward the shipped checkpoint was trained with (written out here),
    so that retraining stays byte-identical."""
    import copy

    from zsvl.models.textenc import text_features

    model = copy.deepcopy(toy_encoder.model).train()
    tokens = toy_encoder.tokenizer(["a red striped triangle.", "a star", "a small blue disc."])

    def reference(m, t):
        length = int(t.argmax(dim=-1).max()) + 1
        t = t[:, :length]
        x = m.token_embedding(t) + m.positional_embedding[:length]
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        x = m.ln_final(x)
        return x[np.arange(x.shape[0]), t.argmax(dim=-1)] @ m.text_projection

    outs, grads = [], []
    for forward in (reference, text_features):
        model.zero_grad(set_to_none=True)
        out = forward(model, tokens)
        (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert torch.equal(outs[0], outs[1])
    assert len(grads[0]) == len(grads[1]) > 0
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


def _brute_force_groups(lengths, fixed):
    """Every split of the length-sorted order into contiguous groups; the cheapest cost."""
    srt = sorted(lengths)
    n = len(srt)
    best = float("inf")
    for mask in range(1 << (n - 1)):  # bit b set: a cut after sorted item b
        cost, start = 0.0, 0
        for b in range(n):
            if b == n - 1 or mask >> b & 1:
                cost += fixed + (b + 1 - start) * srt[b]
                start = b + 1
        best = min(best, cost)
    return best


@pytest.mark.parametrize("fixed", [0.0, 8.0, 32.0, 1e9])
def test_length_groups_minimise_padding_plus_fixed_cost(fixed) -> None:
    import random

    from zsvl.models.textenc import length_groups

    rng = random.Random(int(fixed) % 97)
    for n in (1, 2, 5, 11, 14):
        lengths = [rng.randint(4, 30) for _ in range(n)]
        groups = length_groups(lengths, fixed)
        assert sorted(i for g in groups for i in g) == list(range(n))  # a partition
        cost = sum(fixed + len(g) * max(lengths[i] for i in g) for g in groups)
        assert cost == pytest.approx(_brute_force_groups(lengths, fixed))
    assert length_groups([], 32.0) == [] and length_groups([7, 3], float("inf")) == [[1, 0]]
    assert len(length_groups([5] * 10, 32.0)) == 1  # equal lengths: nothing to gain


def test_cpu_batches_of_mixed_lengths_encode_as_the_one_padded_forward(toy_encoder):
    """Length groups change how many forwards run, not the embeddings."""
    texts = [f"a {c} star" for c in ("red", "blue")] + [
        f"a photo of a large bright {c} star drawn on a plain background next to a small ring"
        for c in ("green", "pink")
    ]
    model, tok = copy.deepcopy(toy_encoder.model).cpu(), toy_encoder.tokenizer  # CPU grouping
    grouped = encode_texts(model, tok, texts, device=torch.device("cpu"))
    one = F.normalize(text_tower(model).forward(tok(texts)).float(), dim=-1).detach().numpy()
    np.testing.assert_allclose(grouped, one, atol=1e-6)

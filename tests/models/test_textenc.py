"""Per-batch text truncation is exact: equal to open_clip's full-context encode_text."""

from __future__ import annotations

import numpy as np
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

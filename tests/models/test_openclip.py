"""The open_clip backend: fingerprint, logit scale, precision, local checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from zsvl.embed import load_model
from zsvl.errors import InvalidParameterError
from zsvl.models import Encoder


def test_encoder_satisfies_protocol(toy_encoder):
    assert isinstance(toy_encoder, Encoder)
    assert toy_encoder.embed_dim == toy_encoder.encode_texts(["a"]).shape[1]


def test_logit_scale_is_the_models_own(toy_encoder):
    expected = float(toy_encoder.model.logit_scale.detach().exp())
    assert toy_encoder.logit_scale == pytest.approx(expected)
    assert toy_encoder.logit_scale != 100.0


def test_fingerprint_names_model_weights_preprocessing_precision(toy_encoder):
    parts = toy_encoder.fingerprint.split("|")
    assert parts[0] == "zsvl-toy-clip" and parts[1].startswith("sha256-")
    assert parts[2].startswith("pp-") and parts[3] == "fp32"
    again = load_model("toy", device="cpu", cache=False)
    assert again.fingerprint == toy_encoder.fingerprint


def test_local_checkpoint_spec_equals_alias(toy_encoder):
    from zsvl.toy.model import TOY_MODEL_NAME, toy_checkpoint_path

    other = load_model((TOY_MODEL_NAME, toy_checkpoint_path()), device="cpu", cache=False)
    texts = ["a photo of a red circle.", "a striped square"]
    np.testing.assert_allclose(
        other.encode_texts(texts), toy_encoder.encode_texts(texts), atol=1e-6
    )
    assert other.fingerprint == toy_encoder.fingerprint


def test_bf16_precision_changes_fingerprint_and_stays_close(toy_encoder):
    low = load_model("toy", device="cpu", precision="bf16", cache=False)
    assert low.fingerprint.endswith("|bf16") and low.fingerprint != toy_encoder.fingerprint
    texts = ["a photo of a red circle.", "a striped square"]
    a, b = low.encode_texts(texts), toy_encoder.encode_texts(texts)
    assert a.dtype == np.float32
    assert (a * b).sum(axis=1).min() > 0.98  # cosine to the fp32 embedding


def test_bad_precision_and_device():
    with pytest.raises(InvalidParameterError, match="precision"):
        load_model("toy", precision="fp8")
    with pytest.raises(InvalidParameterError, match="CUDA is not available|Unknown device"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA, so the CUDA error path cannot be shown")
        load_model("toy", device="cuda")


def test_random_weights_get_a_unique_fingerprint(vitb32_random):
    assert "|random-" in vitb32_random.fingerprint


def test_fp32_on_cuda_turns_off_tf32_convolutions_for_the_forward_only():
    """cuDNN's TF32 convolutions (PyTorch's default) moved CUDA image embeddings 4.5e-5 away from
    the CPU ones and made them depend on the batch size (H200); fp32 means IEEE fp32."""
    import torch

    from zsvl.models.openclip import _ieee_convolutions

    before = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        with _ieee_convolutions(torch.device("cuda"), torch.float32):
            assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is True  # the caller's setting comes back
        for device, dtype in (
            ("cuda", torch.float16),
            ("cuda", torch.bfloat16),
            ("cpu", torch.float32),
        ):
            with _ieee_convolutions(torch.device(device), dtype):
                assert torch.backends.cudnn.allow_tf32 is True  # half precisions: the fast path
    finally:
        torch.backends.cudnn.allow_tf32 = before

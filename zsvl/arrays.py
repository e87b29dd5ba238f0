"""The one array contract: embeddings in are numpy or torch (N, D); results out are numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

from zsvl.errors import InvalidParameterError

__all__ = ["as_embeddings", "to_torch", "l2_normalize"]


def as_embeddings(X: Any, *, dim: int | None = None, name: str = "X") -> np.ndarray:
    """Validate embeddings of shape (n, dim) and return them as a float32 numpy array."""
    if hasattr(X, "detach"):  # torch tensor
        X = X.detach().cpu().float().numpy()
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        raise InvalidParameterError(
            f"{name} must have shape (n_samples, dim); got a 1-D array of length {X.shape[0]}. "
            f"Use X[None, :] for a single embedding."
        )
    if X.ndim != 2:
        raise InvalidParameterError(
            f"{name} must have shape (n_samples, dim). Got shape {X.shape}."
        )
    if dim is not None and X.shape[1] != dim:
        raise InvalidParameterError(
            f"{name} has dimension {X.shape[1]} but the classifier was built with dimension {dim}; "
            f"encode the images with the same model as the classes."
        )
    if not np.isfinite(X).all():
        raise InvalidParameterError(f"{name} holds NaN or infinite values.")
    return X


def to_torch(X: np.ndarray, device: Any = "cpu") -> Any:
    import torch

    return torch.as_tensor(X, device=device)


def l2_normalize(X: np.ndarray, *, axis: int = -1) -> np.ndarray:
    norms = np.linalg.norm(X, axis=axis, keepdims=True)
    return (X / np.maximum(norms, 1e-12)).astype(np.float32)

"""Vectorised grid search of adapter hyperparameters: counts of correct predictions per setting.

Tip-Adapter's logits are z + alpha m_beta (+ gamma k) with z the zero-shot logits, m_beta the
cache logits and k the Tip-X term. For a search set X (n, D):

- A = X K^T is computed once per block of rows (the only product with the keys);
- each beta costs one in-place exp of that block and one per-class sum of its columns;
- all alphas at once: a row is correct for exactly the alphas in an open interval (lo, hi),
  because z_y + alpha m_y > z_c + alpha m_c is linear in alpha for every other class c. The
  interval takes a handful of passes over (n, C), independent of the number of alphas, and
  counts the same predictions as evaluating argmax(z + alpha m) alpha by alpha (exact ties
  aside).

Everything runs in torch on the adapter's device; only the count table comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zsvl.arrays import as_embeddings

__all__ = [
    "GDA_ALPHAS",
    "tip_reference_grid",
    "zero_shot_margins",
    "alpha_hits",
    "alpha_counts",
    "tip_grid_counts",
    "linear_grid_counts",
]

GDA_ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)  # GDA's validation grid
_BLOCK_ELEMENTS = 1 << 25  # elements of one (rows x keys) affinity block (128 MiB in float32)


def tip_reference_grid(
    scale: tuple[float, float] = (7.0, 3.0), steps: tuple[int, int] = (200, 20)
) -> dict[str, np.ndarray]:
    """Tip-Adapter's search grid: ``beta_i = i (scale_b - 0.1) / steps_b + 0.1`` and alike for
    alpha, i = 0..steps-1. Default: ImageNet's scale (7, 3) with 200 x 20 steps."""
    (sb, sa), (nb, na) = scale, steps
    betas = np.array([i * (sb - 0.1) / nb + 0.1 for i in range(nb)])
    alphas = np.array([i * (sa - 0.1) / na + 0.1 for i in range(na)])
    return {"beta": betas, "alpha": alphas}


def zero_shot_margins(z: Any, y: Any) -> Any:
    """z - z_y per row, with -inf at the row's own class (no constraint): (n, C)."""
    own = y[:, None]
    return (z - z.gather(1, own)).scatter_(1, own, float("-inf"))


def alpha_hits(z: Any, m: Any, y: Any, alphas: Any, *, margins: Any = None) -> Any:
    """Whether argmax(z + alpha m) == y, per alpha and row: a bool tensor (n_alpha, n).

    z, m : float tensors (n, C); y : int64 tensor (n,); alphas : float tensor (n_alpha,);
    margins : ``zero_shot_margins(z, y)`` when already computed (z is then not read).
    Row i is correct iff alpha e_c > g_c for every c != y_i, with g = z - z_y and
    e = m_y - m: alpha above the largest r_c = g_c / e_c where e_c > 0 and below the smallest
    where e_c < 0. Where e_c = 0 (+0.0: a difference of equal floats), r_c is -inf when
    g_c < 0 (no constraint), +inf when g_c > 0 and NaN when g_c = 0; both make the lower bound
    unreachable (``amax`` propagates NaN), so such rows are never correct.
    """
    import torch

    g = zero_shot_margins(z, y) if margins is None else margins
    own = y[:, None]
    e = m.gather(1, own) - m
    ratio = torch.div(g, e)
    lo = torch.where(e >= 0, ratio, float("-inf")).amax(1)
    hi = torch.where(e < 0, ratio, float("inf")).amin(1)
    a = alphas[:, None]
    return (a > lo) & (a < hi)


def alpha_counts(z: Any, m: Any, y: Any, alphas: Any) -> Any:
    """How many rows have argmax(z + alpha m) == y, for every alpha at once: (n_alpha,)."""
    return alpha_hits(z, m, y, alphas).sum(1)


def _as_tensor(values: Sequence[float] | np.ndarray, device: Any) -> Any:
    import torch

    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=device)


def tip_grid_counts(
    adapter: Any,
    X: Any,
    y: Any,
    *,
    betas: Sequence[float] | np.ndarray,
    alphas: Sequence[float] | np.ndarray,
    gammas: Sequence[float] | np.ndarray = (0.0,),
    block_rows: int | None = None,
) -> np.ndarray:
    """Correct predictions of a fitted TipAdapter for every (beta, alpha, gamma) on (X, y).

    X : (n, dim) search embeddings (numpy or torch); y : (n,) int labels.
    Returns int64 counts of shape (len(betas), len(alphas), len(gammas)).
    """
    import torch

    adapter._check_fitted()
    dev = adapter.device_
    X = torch.as_tensor(as_embeddings(X, dim=adapter.keys_.shape[1]), device=dev)
    y = torch.as_tensor(np.asarray(y, dtype=np.int64), device=dev)
    keys, text = adapter._tensors()
    alpha_t = _as_tensor(alphas, dev)
    use_kl = any(g != 0 for g in gammas)
    rows = block_rows or max(1, _BLOCK_ELEMENTS // max(len(keys), 1))
    betas_t = _as_tensor(betas, dev)
    counts = torch.zeros(len(betas), len(alphas), len(gammas), dtype=torch.int64, device=dev)
    with torch.inference_mode():
        for start in range(0, len(X), rows):
            x, yb = X[start : start + rows], y[start : start + rows]
            zs = (x @ text.T).mul_(adapter.logit_scale_)
            kl = torch.as_tensor(adapter.kl_logits(x), device=dev) if use_kl else None
            margins = [
                zero_shot_margins(zs if g == 0 or kl is None else zs + float(g) * kl, yb)
                for g in gammas
            ]  # beta-independent: once per block
            shifted = (x @ keys.T).sub_(1.0)  # A - 1, computed once per block
            # small problems: several betas per pass (fewer, larger tensor operations)
            group = min(len(betas), max(1, _BLOCK_ELEMENTS // max(shifted.numel(), 1)))
            buf = torch.empty((group, *shifted.shape), dtype=shifted.dtype, device=dev)
            for b0 in range(0, len(betas), group):
                bg = betas_t[b0 : b0 + group]
                E = buf[: len(bg)]  # (g, rows, keys), reused: no allocation per beta
                torch.mul(shifted.unsqueeze(0), bg[:, None, None], out=E).exp_()
                cache = adapter.layout_.segment_sum(E.view(-1, E.shape[2]))  # (g * rows, C)
                y_rep = yb.repeat(len(bg)) if len(bg) > 1 else yb
                for j in range(len(gammas)):
                    g_rep = margins[j].repeat(len(bg), 1) if len(bg) > 1 else margins[j]
                    hits = alpha_hits(None, cache, y_rep, alpha_t, margins=g_rep)
                    counts[b0 : b0 + len(bg), :, j] += hits.view(len(alphas), len(bg), -1).sum(2).T
    return counts.cpu().numpy()


def linear_grid_counts(
    zero_shot_logits: Any,
    term: Any,
    y: Any,
    alphas: Sequence[float] | np.ndarray,
    device: Any = None,
) -> np.ndarray:
    """Correct predictions of argmax(zero_shot_logits + alpha * term) per alpha; (n_alpha,).

    Both logit arrays have shape (n, C) (numpy or torch); used for GDA and GDA-EM.
    """
    import torch

    z = torch.as_tensor(np.asarray(zero_shot_logits, dtype=np.float32), device=device)
    m = torch.as_tensor(np.asarray(term, dtype=np.float32), device=device)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
    with torch.inference_mode():
        return alpha_counts(z, m, yt, _as_tensor(alphas, device)).cpu().numpy()

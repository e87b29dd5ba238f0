"""FuDD stage 2, vectorised: the set union of each candidate's descriptions over its k-1 pairs.

In the reference (BatsResearch/fudd, ``PromptFactory.get_prompts`` and
``FuDD.get_text_embeddings``) candidate c of an image gets the texts of c in every pair {c, o}
with o another of the image's top k candidates; the texts are pooled with ``list(set(...))``,
so a description repeated across pairs (or within one) counts **once**; the class weight is the
normalised mean of the distinct texts' embeddings. A pair missing from the pair file contributes
the class's default text ("a photo of a {c}.").

zsvl computes the same union without a loop over images. With S[c, o] the sum of c's text
embeddings in pair {c, o} (one row per (class, partner)), the union's sum is

    sum_{o != c} S[c, o]  -  sum over repeated occurrences of their text embeddings

Only texts that occur more than once among a class's rows can repeat in a union; their ids are
kept in a second, narrow table. Sorting a candidate's few such ids (integers only) and comparing
neighbours finds the extra occurrences, and a second ``embedding_bag`` subtracts them.
normalize(mean) = normalize(sum), so the count of distinct texts is never needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PairTable", "cooccurring_pairs", "rescore_topk", "union_text_ids"]

_CHUNK = 256  # images per stage-2 block: its (chunk, k, D) weights stay in the L2 cache
_DENSE_LOOKUP = 4096  # up to this many classes, pair rows are found in a dense (C, C) table


def cooccurring_pairs(topk: np.ndarray, n_classes: int) -> np.ndarray:
    """Distinct pairs (i < j) that share some row of ``topk`` (n, k); int64 array (P, 2)."""
    k = topk.shape[1]
    iu, ju = np.triu_indices(k, 1)
    a, b = topk[:, iu].astype(np.int64), topk[:, ju].astype(np.int64)
    codes = np.unique(np.minimum(a, b) * n_classes + np.maximum(a, b))
    return np.stack([codes // n_classes, codes % n_classes], axis=1)


@dataclass(frozen=True)
class PairTable:
    """The stage-2 lookup: class a's texts in pair {a, b}, as ids and as an embedding sum.

    Rows: r < R are the known (class, partner) rows (``codes[r] = a * n_classes + b``, sorted);
    row R + a is class a's fallback for a pair missing from the store (its default text, or
    nothing); the last row (``pad``) is empty.

    codes : int64 (R,); text_ids : int64 (R + C + 1, m), every text of each row, -1 padded;
    repeat_ids : int32 (R + C + 1, m'), only the texts that can repeat in a union (those that
    occur more than once among their class's rows, and every fallback text), -1 padded;
    sums : float32 (R + C + 1, D), the sum of each row's text embeddings; texts : float32
    (T, D) by text id.
    """

    n_classes: int
    codes: np.ndarray
    text_ids: np.ndarray
    repeat_ids: np.ndarray
    sums: np.ndarray
    texts: np.ndarray
    dense: np.ndarray | None = field(default=None, repr=False)  # (C, C) rows for small C

    @property
    def pad(self) -> int:
        return len(self.sums) - 1

    @property
    def n_known(self) -> int:
        return len(self.codes)

    @classmethod
    def build(
        cls,
        n_classes: int,
        owner: np.ndarray,
        partner: np.ndarray,
        text_id: np.ndarray,
        texts: np.ndarray,
        fallback: np.ndarray | None = None,
        pairs: np.ndarray | None = None,
    ) -> PairTable:
        """From one entry per description occurrence: its class (M,), the pair partner (M,),
        its text id (M,) into ``texts`` (T, D); ``fallback`` (C,) the text id of each class's
        default text, -1 for none (None: no fallback); ``pairs`` (P, 2) pairs known to the store
        even when they hold no description (they get empty rows, not the fallback)."""
        import torch

        C = n_classes
        owner, partner = np.asarray(owner, np.int64), np.asarray(partner, np.int64)
        text_id = np.asarray(text_id, np.int64)
        entry = owner * C + partner
        known = np.zeros(0, np.int64)
        if pairs is not None and len(pairs):
            p = np.asarray(pairs, np.int64).reshape(-1, 2)
            known = np.concatenate([p[:, 0] * C + p[:, 1], p[:, 1] * C + p[:, 0]])
        codes = np.unique(np.concatenate([entry, known]))
        R = len(codes)
        fb = np.full(C, -1, np.int64) if fallback is None else np.asarray(fallback, np.int64)
        has_fb = np.flatnonzero(fb >= 0)
        rows = np.concatenate([np.searchsorted(codes, entry), R + has_fb])
        ids = np.concatenate([text_id, fb[has_fb]])
        owners = np.concatenate([owner, has_fb])
        T = max(len(texts), 1)
        _, inverse, counts = np.unique(owners * T + ids, return_inverse=True, return_counts=True)
        repeatable = counts[inverse.ravel()] > 1
        repeatable[len(entry) :] = True  # a fallback text serves every missing partner
        texts = np.ascontiguousarray(texts, dtype=np.float32)
        sums = torch.zeros(R + C + 1, texts.shape[1])
        if len(ids):
            sums.index_add_(0, torch.as_tensor(rows), torch.as_tensor(texts[ids]))
        dense = None
        if C <= _DENSE_LOOKUP:
            dense = np.broadcast_to(R + np.arange(C)[:, None], (C, C)).astype(np.int32)
            dense[codes // C, codes % C] = np.arange(R, dtype=np.int32)
            np.fill_diagonal(dense, R + C)
        return cls(
            C,
            codes,
            _padded(rows, ids, R + C + 1),
            _padded(rows[repeatable], ids[repeatable], R + C + 1).astype(np.int32),
            sums.numpy(),
            texts,
            dense,
        )

    def lookup(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row of (a, b) for arrays of labels (any shape): known row, else a's fallback row;
        ``pad`` where a == b."""
        a, b = np.asarray(a), np.asarray(b)
        if self.dense is not None:
            return self.dense[a, b]
        code = a.astype(np.int64) * self.n_classes + b
        pos = np.searchsorted(self.codes, code)
        pos_c = np.minimum(pos, max(self.n_known - 1, 0))
        hit = (pos < self.n_known) & (self.codes[pos_c] == code if self.n_known else False)
        rows = np.where(hit, pos_c, self.n_known + a)
        return np.where(a != b, rows, self.pad)

    def missing(self, pairs: np.ndarray) -> np.ndarray:
        """The pairs (P, 2) (i < j) with no row in this table (neither direction); (M, 2)."""
        code = pairs[:, 0].astype(np.int64) * self.n_classes + pairs[:, 1]
        return pairs[~np.isin(code, self.codes)]


def _padded(rows: np.ndarray, ids: np.ndarray, n_rows: int) -> np.ndarray:
    """(n_rows, width) int64: the ids of each row (in entry order), -1 padded; width >= 1."""
    counts = np.bincount(rows, minlength=n_rows)
    order = np.argsort(rows, kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full((n_rows, max(int(counts.max()) if len(counts) else 0, 1)), -1, np.int64)
    out[rows[order], np.arange(len(order)) - start[rows[order]]] = ids[order]
    return out


def union_text_ids(table: PairTable, c: int, partners: Any) -> np.ndarray:
    """Distinct text ids of class ``c`` over its pairs with ``partners`` (the union), sorted."""
    partners = np.asarray([o for o in partners if o != c], np.int64)
    if len(partners) == 0:
        return np.zeros(0, np.int64)
    ids = table.text_ids[table.lookup(np.full(len(partners), c), partners)]
    return np.unique(ids[ids >= 0])


def rescore_topk(
    X: np.ndarray,
    topk: np.ndarray,
    table: PairTable,
    *,
    device: Any = "cpu",
    chunk: int = _CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Stage-2 scores (n, k) of each image's candidates, and a mask (n, k) of candidates that
    had at least one text (elsewhere the score is 0 and the caller falls back).

    Candidate c_i of image x scores x . normalize(sum of the distinct texts of c_i over its
    pairs with the other candidates). Per chunk of images (grouped by top-1 class, so that
    shared rows stay in cache): one (b * k, k - 1) ``embedding_bag`` of pair sums; one sort of
    the candidates' repeatable text ids (few) to find the extra occurrences, and one
    ``embedding_bag`` (the other ids set to its ``padding_idx``) that subtracts them; one batched
    dot product. No loop runs over images.
    """
    import torch
    import torch.nn.functional as F

    n, k = topk.shape
    if k < 2 or n == 0:
        return np.zeros((n, k), dtype=np.float32), np.zeros((n, k), dtype=bool)
    others = np.array([[j for j in range(k) if j != i] for i in range(k)])  # (k, k - 1)
    order = np.argsort(topk[:, 0], kind="stable")
    out = torch.empty(n, k, device=device)
    with torch.inference_mode():
        sums = torch.as_tensor(table.sums, device=device)
        texts = torch.as_tensor(table.texts, device=device)
        pad = len(texts)  # an extra zero row: ids equal to it are skipped by embedding_bag
        texts = torch.cat([texts, texts.new_zeros(1, texts.shape[1])])
        repeat_table = torch.as_tensor(table.repeat_ids, device=device)
        repeat_table = torch.where(repeat_table >= 0, repeat_table, pad)  # pads sort last
        dense = None if table.dense is None else torch.as_tensor(table.dense, device=device)
        top_t = torch.as_tensor(topk[order], device=device).long()
        others_t = torch.as_tensor(others, device=device)
        Xt = torch.as_tensor(X, device=device)
        order_t = torch.as_tensor(order, device=device)
        for start in range(0, n, chunk):
            t = top_t[start : start + chunk]
            if dense is not None:
                rows = dense[t[:, :, None], t[:, others_t]]
            else:
                tn = t.cpu().numpy()
                rows = torch.as_tensor(table.lookup(tn[:, :, None], tn[:, others]), device=device)
            bags = rows.reshape(-1, k - 1).long()
            W = F.embedding_bag(bags, sums, mode="sum")  # (b * k, D): sum of the pair sums
            ids = repeat_table[bags].reshape(len(bags), -1).sort(dim=1).values
            # each extra occurrence of a text is subtracted once; padding_idx skips the rest
            # (30% faster than selecting the repeats and passing offsets, same sums)
            extra = torch.where(ids[:, 1:] == ids[:, :-1], ids[:, 1:], pad)
            W -= F.embedding_bag(extra, texts, mode="sum", padding_idx=pad)
            W = W.view(len(t), k, -1)
            x = Xt[order_t[start : start + chunk]]
            dot = (W * x[:, None, :]).sum(-1)  # 5x faster than bmm for (b, k, D) x (b, D)
            out[start : start + len(t)] = dot / torch.linalg.vector_norm(W, dim=-1)
        unsorted = torch.empty_like(out)
        unsorted[order_t] = out
        result = unsorted.cpu().numpy()
    found = np.isfinite(result)  # 0 / 0: a candidate without any text
    return np.where(found, result, 0.0).astype(np.float32), found

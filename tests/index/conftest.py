"""Fixtures for the caption-index tests: known vectors behind a text corpus, built indexes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caption_fakes import TableEncoder, clustered_vectors, table_corpus  # noqa: E402

N, DIM = 3000, 32


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered_vectors(N, DIM, seed=0)


@pytest.fixture(scope="module")
def table_encoder(vectors: np.ndarray) -> TableEncoder:
    return TableEncoder(vectors)


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return table_corpus(tmp_path_factory.mktemp("corpus") / "v.txt", N)


@pytest.fixture(scope="module")
def flat_index(
    tmp_path_factory: pytest.TempPathFactory, corpus_path: Path, table_encoder: TableEncoder
):
    from zsvl.index import build_index

    out = tmp_path_factory.mktemp("idx") / "flat"
    return build_index(corpus_path, table_encoder, out, shard_size=1000, tune_queries=200)


@pytest.fixture
def queries() -> np.ndarray:
    return clustered_vectors(64, DIM, seed=1, centres_seed=0)

"""Automatic index choice from count, dimension and memory budget."""

from __future__ import annotations

import pytest

from zsvl.errors import InvalidParameterError
from zsvl.index.choose import choose_factory, estimate_index_bytes, nlist_for, parse_memory


def test_parse_memory() -> None:
    assert parse_memory("4G") == 4 * 2**30
    assert parse_memory("512M") == 512 * 2**20
    assert parse_memory("1.5GB") == int(1.5 * 2**30)
    assert parse_memory("2GiB") == 2 * 2**30
    assert parse_memory(1000) == 1000
    assert parse_memory(None) is None
    with pytest.raises(InvalidParameterError, match="write it like 512M"):
        parse_memory("lots")
    with pytest.raises(InvalidParameterError, match="> 0"):
        parse_memory(0)


def test_nlist_is_a_power_of_two_near_4_sqrt_n_and_trainable() -> None:
    assert nlist_for(1_000_000) == 4096
    assert nlist_for(16_000_000) == 16384
    assert nlist_for(10**9) == 65536
    assert nlist_for(5000) == 128  # 4 sqrt(5000) = 283 -> 256, but 5000 / 39 only trains 128
    assert nlist_for(10) == 1


def test_rules_by_size_and_budget() -> None:
    small = choose_factory(50_000, 512, "1G")
    assert small.factory == "Flat" and "exact" in small.reason
    assert choose_factory(1_000_000, 512, "4G").factory == "IVF4096,Flat"
    one_gig = choose_factory(1_000_000, 512, "1G")
    assert one_gig.factory == "IVF4096,SQ8"
    assert one_gig.estimated_bytes <= 2**30
    tight = choose_factory(1_000_000, 512, "100M")
    assert tight.factory == "OPQ64,IVF4096_HNSW32,PQ64"
    assert tight.estimated_bytes <= 100 * 2**20
    assert choose_factory(200_000_000, 768, "8G").factory.startswith("OPQ")
    # no budget: IVF-Flat from 1M on
    assert choose_factory(4_000_000, 512, None).factory == "IVF8192,Flat"
    # exact below 1M only while it fits
    assert choose_factory(900_000, 512, "1G").factory.startswith("IVF")


def test_nothing_fits_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameterError, match="raise --max-memory"):
        choose_factory(10_000_000, 512, "10M")


def test_estimates_grow_with_code_size() -> None:
    n, d = 100_000, 256
    sizes = [
        estimate_index_bytes(f, n, d)
        for f in ("IVF256,Flat", "IVF256,SQ8", "OPQ32,IVF256_HNSW32,PQ32", "OPQ8,IVF256_HNSW32,PQ8")
    ]
    assert sizes == sorted(sizes, reverse=True)
    assert estimate_index_bytes("Flat", n, d) == n * d * 4


def test_lists_are_sized_for_the_vectors_left_to_train_on() -> None:
    """20,000 vectors allow 512 lists (39 x 512 = 19,968); with 1,000 held out for tuning only
    19,000 remain, so the auto choice drops to 256 lists."""
    assert nlist_for(20_000) == 512
    choice = choose_factory(20_000, 32, "1M", exact_below=1000, trainable=19_000)
    assert "IVF256," in choice.factory

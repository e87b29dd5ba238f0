"""Index builds on a real two-node Ray cluster equal the single-machine build, even when workers
are SIGKILLed in the middle of encoding and of filling."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ray_helpers import Hooks, KillOnce  # noqa: E402

pytestmark = pytest.mark.slow

N = 50_000
OPTIONS = dict(factory="IVF64,Flat", shard_size=4096, tune_queries=500, k=10, seed=0)


def _exact_recall(root: Path, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """recall@k of the index at ``root`` (its tuned nprobe) against brute force in numpy."""
    import faiss

    from zsvl.index import storage
    from zsvl.index.tune import set_search_params

    manifest = storage.read_manifest(root)
    index = faiss.read_index(str(root / storage.INDEX_FILE))
    set_search_params(index, manifest["search_params"])
    _, got = index.search(queries, k)
    truth = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(g) & set(t)) / k for g, t in zip(got, truth, strict=True)]))


def _shard_vectors(root: Path) -> tuple[np.ndarray, np.ndarray]:
    from zsvl.index import storage

    shards = storage.open_shards(storage.read_manifest(root), root)
    ids = np.concatenate([shards.ids(p) for p in range(len(shards.shards))])
    emb = np.concatenate([np.asarray(shards.embeddings(p)) for p in range(len(shards.shards))])
    return ids, emb


def _list_ids(root: Path) -> np.ndarray:
    """Every id stored in the inverted lists of the index at ``root``."""
    import faiss

    from zsvl.index import storage

    index = faiss.read_index(str(root / storage.INDEX_FILE))  # kept alive while lists are read
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    ids = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(ivf.nlist)
        if lists.list_size(i)
    ]
    del index
    return np.concatenate(ids)


def test_ray_build_equals_local_build_with_killed_workers(
    tmp_path: Path, toy_encoder, ray_cluster, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import re

    import pyarrow.parquet as pq

    from zsvl.distributed import RayEngine
    from zsvl.index import CaptionIndex, build_index
    from zsvl.toy.captions import write_caption_corpus

    corpus = write_caption_corpus(tmp_path / "captions.txt", N, seed=3)
    local = build_index(corpus, toy_encoder, tmp_path / "local", **OPTIONS)
    markers = tmp_path / "markers"
    markers.mkdir()
    kill_encode = KillOnce(markers, "encode", 2, delay=0.5)  # half a second into shard 2
    kill_fill = KillOnce(markers, "fill", 1)  # as part 1 starts
    engine = RayEngine(
        address=ray_cluster.address,
        fill_parts=3,
        hook=Hooks(kill_encode, kill_fill),
        range_bytes=1 << 18,  # the corpus is read by several Ray tasks, cut inside lines
    )
    caplog.set_level(logging.INFO, logger="zsvl.distributed.encode")
    remote = build_index(corpus, toy_encoder, tmp_path / "ray", engine=engine, **OPTIONS)
    tasks = re.search(r"in (\d+) parallel range tasks", caplog.text)
    size = Path(corpus).stat().st_size
    assert tasks and int(tasks.group(1)) == -(-size // (1 << 18)) > 1, (caplog.text[-500:], size)
    assert remote.manifest["corpus_stats"] == local.manifest["corpus_stats"]
    assert kill_encode.marker().is_file() and kill_fill.marker().is_file()

    # same ids and captions, every caption exactly once
    meta_local = pq.read_table(tmp_path / "local" / "metadata.parquet")
    meta_ray = pq.read_table(tmp_path / "ray" / "metadata.parquet")
    assert meta_ray.equals(meta_local)
    assert np.array_equal(meta_ray.column("id").to_numpy(), np.arange(N))
    listed = np.sort(_list_ids(tmp_path / "ray"))
    assert np.array_equal(listed, np.arange(N))

    # identical vectors
    ids_l, emb_l = _shard_vectors(tmp_path / "local")
    ids_r, emb_r = _shard_vectors(tmp_path / "ray")
    assert np.array_equal(ids_l, ids_r) and np.array_equal(emb_l, emb_r)

    # the same search quality against exact search
    vectors = emb_r.astype(np.float32)
    queries = vectors[np.random.default_rng(0).choice(N, 300, replace=False)]
    r_local = _exact_recall(tmp_path / "local", vectors, queries)
    r_ray = _exact_recall(tmp_path / "ray", vectors, queries)
    assert abs(r_local - r_ray) <= 0.005, (r_local, r_ray)
    assert r_ray > 0.8
    assert remote.manifest["search_params"] == local.manifest["search_params"]
    loaded = CaptionIndex.load(tmp_path / "ray", toy_encoder)
    assert len(loaded) == N
    assert not (tmp_path / "ray" / "parts").exists()


def test_cli_index_build_on_the_cluster(
    tmp_path: Path, toy_encoder, ray_cluster, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from zsvl.cli import main
    from zsvl.index import CaptionIndex

    monkeypatch.setenv("ZSVL_PROGRESS", "1")  # progress lines although stderr is captured
    out = tmp_path / "idx"
    rc = main(
        [
            "index",
            "build",
            "toy:3000",
            "--model",
            "toy",
            "--out",
            str(out),
            "--ray",
            ray_cluster.address,
            "--factory",
            "IVF8,Flat",
            "--shard-size",
            "1000",
            "--ray-actors",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"built {out}: 3000 captions" in captured.out
    shards = re.findall(r"shard (\d): 1000 captions on \S+ \((\d+) captions/s\)", captured.err)
    assert sorted(i for i, _ in shards) == ["0", "1", "2"] and all(int(r) > 0 for _, r in shards)
    workers = re.findall(r"worker \S+: (\d+) captions, \d+ captions/s", captured.err)
    assert sum(int(n) for n in workers) == 3000
    assert re.search(r"part \d: \d+ vectors on \S+ in [\d.]+ s", captured.err)
    index = CaptionIndex.load(out, toy_encoder)
    assert len(index) == 3000
    res = index.search_texts(["a photo of a red triangle."], k=3)
    assert len(res.ids[0]) == 3 and index.manifest["encoder"]["spec"] == "toy"


def test_ray_parallel_read_of_a_csv_with_duplicates_and_multiline_fields(
    tmp_path: Path, toy_encoder, ray_cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """CSV ranges read by Ray tasks (cut inside quoted multi-line fields, deduplicated by the
    driver) give the single-machine build's ids, captions, records and stats."""
    import logging
    import re

    import pyarrow.parquet as pq

    from zsvl.data.captions import CaptionCorpus
    from zsvl.distributed import RayEngine
    from zsvl.index import build_index
    from zsvl.toy.captions import caption_corpus

    rows = ["id,caption"]
    for i, caption in enumerate(caption_corpus(3000, seed=5)):
        if i % 97 == 1:
            rows.append(f'{i},"{caption}\nsecond line, with a comma"')  # spans two lines
        elif i % 11 == 2:
            rows.append(f"{i},{caption.upper()}")  # another caption: dedupe is exact
        else:
            rows.append(f"{i},{caption}")
    rows += [f"{3000 + i},{c}" for i, c in enumerate(caption_corpus(500, seed=5))]  # duplicates
    path = tmp_path / "captions.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    options = dict(factory="IVF8,Flat", shard_size=500, tune_queries=100, k=10, seed=0)

    def corpus() -> CaptionCorpus:
        return CaptionCorpus(path, id_column="id", dedupe=True, normalize=True)

    local = build_index(corpus(), toy_encoder, tmp_path / "local", **options)
    engine = RayEngine(address=ray_cluster.address, actors=1, fill_parts=1, range_bytes=2048)
    caplog.set_level(logging.INFO, logger="zsvl.distributed")
    remote = build_index(corpus(), toy_encoder, tmp_path / "ray", engine=engine, **options)
    tasks = re.search(r"in (\d+) parallel range tasks", caplog.text)
    assert tasks and int(tasks.group(1)) > 1, caplog.text[-500:]
    meta_local = pq.read_table(tmp_path / "local" / "metadata.parquet")
    assert pq.read_table(tmp_path / "ray" / "metadata.parquet").equals(meta_local)
    stats = local.manifest["corpus_stats"]
    assert remote.manifest["corpus_stats"] == stats and stats["duplicates"] >= 500

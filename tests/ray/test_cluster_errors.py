"""Without a cluster: clear errors for a wrong address or a missing Ray, Ray kept out of core
imports, engine options checked, and the part-index fill + merges checked against one fill."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from caption_fakes import TableEncoder, clustered_vectors, table_corpus  # noqa: E402

from zsvl.errors import InvalidParameterError  # noqa: E402


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def not_connected(monkeypatch: pytest.MonkeyPatch):
    """connect() must not reuse a session another test opened in this process."""
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    return ray


def test_wrong_address_fails_fast_with_the_fix(not_connected) -> None:
    from zsvl.distributed.cluster import RayClusterError, connect

    port = _closed_port()
    start = time.perf_counter()
    with pytest.raises(
        RayClusterError,
        match=rf"No Ray cluster answers at 127.0.0.1:{port} .*"
        rf"ray start --head --port={port}",
    ):
        connect(f"127.0.0.1:{port}")
    assert time.perf_counter() - start < 10
    with pytest.raises(RayClusterError, match="is not HOST:PORT"):
        connect("my-cluster")


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from zsvl.distributed.cluster import RayClusterError, import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(RayClusterError, match=r"pip install 'zsvl\[ray\]'"):
        import_ray()


def test_cli_reports_one_line(tmp_path: Path, not_connected, monkeypatch, capsys) -> None:
    from zsvl.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("a red triangle\na blue circle\n")
    base = ["index", "build", str(corpus), "--model", "toy", "--out", str(tmp_path / "i")]
    assert main([*base, "--ray", f"127.0.0.1:{_closed_port()}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zsvl index: error: No Ray cluster answers at") and "\n" not in err
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main([*base, "--ray"]) == 2
    assert "pip install 'zsvl[ray]'" in capsys.readouterr().err
    assert main(["eval", "--ray", "--methods", "zeroshot", "--out", str(tmp_path / "r")]) == 2
    assert "pip install 'zsvl[ray]'" in capsys.readouterr().err


def test_core_never_imports_ray() -> None:
    code = (
        "import sys, zsvl, zsvl.distributed, zsvl.index.build, zsvl.cli, zsvl.cli_index, "
        "zsvl.eval.evaluate; import json; print(json.dumps('ray' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False


def test_engine_options_are_checked() -> None:
    from zsvl.distributed.engine import RayEngine, resolve_engine

    with pytest.raises(InvalidParameterError, match="merge must be"):
        RayEngine(merge="fast")
    with pytest.raises(InvalidParameterError, match="actors must be an int >= 1"):
        RayEngine(actors=0)
    with pytest.raises(InvalidParameterError, match="engine must be 'local', 'ray'"):
        resolve_engine("spark")
    assert resolve_engine("local") is None and resolve_engine("ray") == RayEngine()


def test_parts_filled_apart_and_merged_search_like_one_fill(tmp_path: Path) -> None:
    """fill_part (the Ray task body, called here in-process) over 3 groups of shards, merged in
    memory and on disk: the same lists, so the same results as the single-machine fill."""
    import faiss

    from zsvl.distributed.fill import _groups, fill_part, merge_parts
    from zsvl.index import build_index, storage

    vectors = clustered_vectors(3000, 32, seed=0)
    built = build_index(
        table_corpus(tmp_path / "v.txt", 3000),
        TableEncoder(vectors),
        tmp_path / "one",
        factory="IVF16,Flat",
        shard_size=400,
        tune_queries=100,
    )
    shards = storage.open_shards(built.manifest, built.root)
    one = faiss.read_index(str(built.root / storage.INDEX_FILE))
    trained = faiss.clone_index(one)
    trained.reset()  # trained, empty
    faiss.write_index(trained, str(tmp_path / "trained.faiss"))
    groups = _groups(shards, 3)
    assert [len(g) for g in groups] == [3, 2, 3]  # 8 shards of 400, 400, ..., 200 rows
    paths = [
        fill_part(
            str(tmp_path / "trained.faiss"),
            str(shards.folder),
            g,
            32,
            500,
            str(tmp_path / f"part-{p}.faiss"),
            p,
        )["path"]
        for p, g in enumerate(groups)
    ]
    queries = clustered_vectors(50, 32, seed=1)
    one.nprobe = 4
    want = one.search(queries, 10)
    for how in ("memory", "ondisk"):
        merged = merge_parts(
            faiss.read_index(str(tmp_path / "trained.faiss")),
            paths,
            how,
            tmp_path / f"{how}.ivfdata",
        )
        merged.nprobe = 4
        assert merged.ntotal == 3000
        got = merged.search(queries, 10)
        assert np.array_equal(got[1], want[1]) and np.allclose(got[0], want[0])
    assert (tmp_path / "ondisk.ivfdata").stat().st_size > 3000 * 32 * 4

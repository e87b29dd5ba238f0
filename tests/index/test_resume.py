"""Resumable builds: a build killed mid-way (SIGKILL) continues and yields the same index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from caption_fakes import TableEncoder  # noqa: E402

from zsvl.errors import IndexFormatError, IndexMismatchError  # noqa: E402
from zsvl.index import CaptionIndex, build_index  # noqa: E402
from zsvl.index.storage import read_state  # noqa: E402

FACTORY = "IVF16,Flat"

_KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from caption_fakes import TableEncoder, clustered_vectors
    from zsvl.index import build_index

    def on_shard(info):
        if info.index == {kill_after}:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no atexit: a real crash

    enc = TableEncoder(clustered_vectors(3000, 32, seed=0))
    build_index({corpus!r}, enc, {out!r}, factory={factory!r}, shard_size=500,
                tune_queries=100, on_shard=on_shard)
""")


def _build_killed(corpus: Path, out: Path, kill_after: int) -> None:
    code = _KILLER.format(
        tests=str(TESTS), corpus=str(corpus), out=str(out), factory=FACTORY, kill_after=kill_after
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("manifest.json", "build_state.json")
    }


@pytest.mark.parametrize("kill_after", [0, 3])
def test_killed_build_resumes_to_the_same_index(
    tmp_path: Path,
    corpus_path: Path,
    vectors: np.ndarray,
    kill_after: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "killed"
    _build_killed(corpus_path, out, kill_after)
    assert not (out / "manifest.json").exists()
    state = read_state(out)
    assert len(state["shards"]) == kill_after + 1 and not state["encoded"]
    with pytest.raises(IndexFormatError, match="did not finish; run `zsvl index build` again"):
        CaptionIndex.load(out)
    # debris of a crash during the next shard: a half-written shard file and a temporary file
    (out / "embeddings" / f"emb-{kill_after + 1:05d}.npy").write_bytes(b"\x93NUMPY garbage")
    (out / "embeddings" / ".emb-00009.npy.abc.tmp").write_bytes(b"partial")

    enc = TableEncoder(vectors)
    resumed = build_index(corpus_path, enc, out, factory=FACTORY, shard_size=500, tune_queries=100)
    assert enc.n_encoded == 3000 - 500 * (kill_after + 1)  # only the missing shards

    clean = build_index(
        corpus_path,
        TableEncoder(vectors),
        tmp_path / "clean",
        factory=FACTORY,
        shard_size=500,
        tune_queries=100,
    )
    a, b = _files(out), _files(tmp_path / "clean")
    a.pop("embeddings/.emb-00009.npy.abc.tmp")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], f"{name} differs after resuming"
    ma, mb = resumed.manifest, clean.manifest
    assert ma["files"] == mb["files"] and ma["shards"] == mb["shards"]
    q = vectors[:20]
    np.testing.assert_array_equal(resumed.search(q, 5).ids, clean.search(q, 5).ids)


def test_resume_refuses_other_settings(tmp_path: Path, corpus_path: Path, vectors) -> None:
    out = tmp_path / "ix"
    _build_killed(corpus_path, out, 1)
    with pytest.raises(IndexMismatchError, match="shard_size differ.*overwrite=True"):
        build_index(corpus_path, TableEncoder(vectors), out, factory=FACTORY, shard_size=400)
    other = TableEncoder(vectors[:, :16] / np.linalg.norm(vectors[:, :16], axis=1, keepdims=True))
    with pytest.raises(IndexMismatchError, match="encoder differ"):
        build_index(corpus_path, other, out, factory=FACTORY, shard_size=500)
    fresh = build_index(
        corpus_path, other, out, factory=FACTORY, shard_size=500, tune_queries=50, overwrite=True
    )
    assert fresh.dim == 16
    assert json.loads((out / "build_state.json").read_text())["encoded"]

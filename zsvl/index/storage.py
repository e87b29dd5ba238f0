"""The on-disk format of a caption index: writing it, and the checks that guard loading it.

A built index is a directory::

    manifest.json        written last: format, encoder fingerprint, dim, metric, factory, search
                         parameters, count, file sizes and sha256 checksums (whole file, and of
                         the index file's header and list sizes), build settings, tuning results
                         (measured recall, latency), corpus statistics, timings
    index.faiss          the FAISS index (memory-mapped on load where the type allows)
    metadata.parquet     one row per caption: id (int64, explicit), caption, record, [source_id]
    embeddings/          float16 shards emb-*.npy + ids-*.npy (exact vectors, memory-mapped)
    build_state.json     resume bookkeeping of the build (not needed to search)

A directory without ``manifest.json`` is an unfinished build. This module is the only one that
knows these names; stage 1 (``encode``) and stage 2 (``build``) write through it and ``search``
reads through it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from zsvl._atomic import atomic_path, atomic_write_json
from zsvl._hashing import sha256_file
from zsvl.errors import IndexFormatError, IndexMismatchError, InvalidParameterError
from zsvl.index.backend import import_faiss, ivf_of
from zsvl.index.shards import ShardInfo, ShardSet

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "INDEX_FILE",
    "METADATA_FILE",
    "EMBEDDINGS_DIR",
    "STATE_FILE",
    "VERIFY_MODES",
    "AUTO_CHECKSUM_BYTES",
    "read_manifest",
    "check_encoder",
    "check_files",
    "read_faiss_index",
    "read_metadata",
    "open_shards",
    "file_entry",
    "read_state",
    "write_state",
    "write_index_files",
]

logger = logging.getLogger(__name__)

FORMAT = "zsvl-caption-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
METADATA_FILE = "metadata.parquet"
EMBEDDINGS_DIR = "embeddings"
STATE_FILE = "build_state.json"
VERIFY_MODES = ("auto", "checksum", "size", "none")
# verify="auto" hashes whole files up to this many bytes in all: sha256 ran at 130 MB/s on the
# shared, loaded 2-core machine (256 MiB in 1.9-2.1 s), so this adds at most ~0.5 s to a load.
AUTO_CHECKSUM_BYTES = 64 * 2**20
_MIN_HEAD = 2**20  # the head checksum covers at least the first MiB of the index file


# -- writing -----------------------------------------------------------------------------------


def file_entry(path: Path, *, head_bytes: int | None = None) -> dict[str, Any]:
    """``{"bytes", "sha256"}`` of a file for the manifest, plus ``{"head_bytes", "head_sha256"}``
    (the checksum of its first ``head_bytes`` bytes) when ``head_bytes`` is given."""
    entry: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    if head_bytes is not None:
        head = int(min(entry["bytes"], head_bytes))
        entry.update(head_bytes=head, head_sha256=sha256_file(path, limit=head))
    return entry


def index_head_bytes(index: Any, file_bytes: int) -> int:
    """Bytes at the start of a written FAISS index file before its bulk codes: the header, the
    coarse quantiser and, for IVF indexes, every list's size (FAISS writes the sizes before the
    codes and ids). Checksumming them is cheap and catches a damaged structure in a large file."""
    faiss = import_faiss()
    ivf = ivf_of(index)
    if ivf is not None:
        payload = int(ivf.ntotal) * (int(ivf.code_size) + 8)  # codes + int64 ids per vector
    else:
        inner = faiss.downcast_index(index)
        payload = int(index.ntotal) * int(getattr(inner, "code_size", 0) or 0)
    return int(min(file_bytes, max(_MIN_HEAD, file_bytes - payload)))


def write_index_files(
    out: Path, index: Any, shards: ShardSet, fields: dict[str, Any]
) -> dict[str, Any]:
    """Write ``index.faiss``, ``metadata.parquet`` and, last, ``manifest.json`` (all atomic).

    ``fields`` are the build's own manifest entries (factory, tuning, build, timings, ...); this
    function adds the format, the file entries and the shard list. Returns the manifest.
    """
    faiss = import_faiss()
    index_path = out / INDEX_FILE
    with atomic_path(index_path) as tmp:
        faiss.write_index(index, str(tmp))
    _merge_metadata(out, shards)
    size = index_path.stat().st_size
    files = {
        INDEX_FILE: file_entry(index_path, head_bytes=index_head_bytes(index, size)),
        METADATA_FILE: file_entry(out / METADATA_FILE),
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **fields,
        "dim": shards.dim,
        "metric": "inner_product",
        "count": shards.count,
        "index_bytes": size,
        "files": files,
        "shards": {
            "folder": EMBEDDINGS_DIR,
            "dtype": "float16",
            "items": [s.as_dict() for s in shards.shards],
        },
    }
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _merge_metadata(out: Path, shards: ShardSet) -> None:
    """Concatenate the per-shard metadata files into one Parquet file (streamed, atomic)."""
    import pyarrow.parquet as pq

    writer = None
    with atomic_path(out / METADATA_FILE) as tmp:
        try:
            for info in shards.shards:
                meta = shards.folder / f"meta-{info.index:05d}.parquet"
                if not meta.is_file():
                    raise IndexFormatError(f"{meta} is missing; the shard is incomplete. Rebuild.")
                table = pq.read_table(meta)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table, row_group_size=65536)
        finally:
            if writer is not None:
                writer.close()


def read_state(out: Path) -> dict[str, Any] | None:
    """The build state of an unfinished (or finished) build in ``out``; None when unreadable."""
    try:
        return json.loads((Path(out) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_state(out: Path, state: dict[str, Any]) -> None:
    atomic_write_json(Path(out) / STATE_FILE, state)


# -- reading and checking ----------------------------------------------------------------------


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The parsed manifest of the index at ``root``; clear errors for unfinished or foreign dirs."""
    root = Path(root)
    if not root.is_dir():
        raise IndexFormatError(f"No caption index at {str(root)!r}: the directory does not exist.")
    path = root / MANIFEST
    if not path.is_file():
        hint = ""
        if (root / STATE_FILE).exists():
            hint = (
                " A build was started there but did not finish; run `zsvl index build` again "
                "with the same arguments to resume it."
            )
        raise IndexFormatError(
            f"{root} is not a finished zsvl caption index (no {MANIFEST}).{hint}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise IndexFormatError(f"{path} is not valid JSON ({exc}); rebuild the index.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise IndexFormatError(f"{path} is not a {FORMAT} manifest (format={found!r}).")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"{root} uses index format version {manifest.get('format_version')}; this zsvl reads "
            f"version {FORMAT_VERSION}. Rebuild the index with this zsvl."
        )
    return manifest


def check_encoder(manifest: dict[str, Any], encoder: Any, root: Path) -> None:
    """Refuse an encoder whose fingerprint or dimension differs from the index's."""
    built = manifest["encoder"]
    dim = int(encoder.embed_dim)
    if dim != manifest["dim"] or encoder.fingerprint != built["fingerprint"]:
        raise IndexMismatchError(
            f"The index at {root} was built with {built.get('spec') or built['fingerprint']} "
            f"(dim {manifest['dim']}) but the query encoder is {encoder.fingerprint} (dim {dim}); "
            f"rebuild the index with this encoder or load the model it was built with."
        )


def check_files(manifest: dict[str, Any], root: Path, *, verify: str = "auto") -> str:
    """Check the files the manifest lists; returns what was checked, e.g. ``"checksum"``.

    verify :
        ``"auto"`` (default): every size, plus the sha256 of whole files while their total stays
        under ``AUTO_CHECKSUM_BYTES`` (64 MiB; index file first, then metadata, then shards); a
        larger index file gets the checksum of its header and list sizes instead.
        ``"checksum"``: every size and every whole-file sha256. ``"size"``: sizes only.
        ``"none"``: nothing.
    """
    if verify not in VERIFY_MODES:
        raise InvalidParameterError(
            f"verify must be one of {', '.join(map(repr, VERIFY_MODES))}. Got {verify!r}."
        )
    if verify == "none":
        return "none"
    entries = dict(manifest["files"])
    folder = manifest.get("shards", {}).get("folder", EMBEDDINGS_DIR)
    for info in manifest.get("shards", {}).get("items", []):
        entries[f"{folder}/emb-{info['index']:05d}.npy"] = {"sha256": info["sha256"]}
    budget = AUTO_CHECKSUM_BYTES
    partial = False
    for name, entry in entries.items():
        path = root / name
        if not path.is_file():
            raise IndexFormatError(
                f"{root}: {name} is missing; the index is incomplete. Rebuild it."
            )
        size = path.stat().st_size
        if entry.get("bytes") is not None and size != entry["bytes"]:
            raise IndexFormatError(
                f"{root}: {name} has {size} bytes but the manifest records {entry['bytes']}; "
                f"the file is truncated or was replaced. Rebuild the index."
            )
        whole = verify == "checksum" or (verify == "auto" and size <= budget)
        if whole:
            budget -= size
            if sha256_file(path) != entry["sha256"]:
                raise IndexFormatError(
                    f"{root}: {name} does not match its checksum (same size, altered bytes); the "
                    f"file is damaged. Rebuild the index."
                )
        elif verify == "auto" and entry.get("head_sha256"):
            partial = True
            if sha256_file(path, limit=entry["head_bytes"]) != entry["head_sha256"]:
                raise IndexFormatError(
                    f"{root}: the header or list sizes of {name} do not match their checksum; "
                    f"the file is damaged. Rebuild the index."
                )
        else:
            partial = True
    if verify == "auto":
        return "auto (sizes, partial checksums)" if partial else "auto (all checksums)"
    return verify


def read_faiss_index(path: Path, *, mmap: bool = True) -> Any:
    """Read a FAISS index, memory-mapping its codes (IVF lists, flat codes) when ``mmap``."""
    faiss = import_faiss()
    mmap_flat = getattr(faiss, "IO_FLAG_MMAP_IFC", 0)  # flat codes in place (faiss >= 1.10)
    flags = (faiss.IO_FLAG_MMAP | mmap_flat | faiss.IO_FLAG_READ_ONLY) if mmap else 0
    try:
        return faiss.read_index(str(path), flags)
    except RuntimeError as exc:
        if mmap:
            try:
                return faiss.read_index(str(path))
            except RuntimeError:
                pass
        raise IndexFormatError(
            f"{path} could not be read by FAISS ({str(exc).splitlines()[0][:200]}); the file is "
            f"damaged. Rebuild the index."
        ) from exc


def read_metadata(root: Path, count: int) -> Any:
    """The metadata table (memory-mapped Parquet read); refuses a row count other than ``count``."""
    import pyarrow.parquet as pq

    path = root / METADATA_FILE
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
        if rows != count:
            raise IndexMismatchError(
                f"{path} has {rows} rows but the index holds {count} vectors; the metadata belongs "
                f"to another build. Rebuild the index."
            )
        return pq.read_table(path, columns=["id", "caption"], memory_map=True)
    except (OSError, ValueError) as exc:
        if isinstance(exc, IndexMismatchError):
            raise
        raise IndexFormatError(f"{path} could not be read ({exc}); rebuild the index.") from exc


def open_shards(manifest: dict[str, Any], root: Path) -> ShardSet:
    info = manifest["shards"]
    items = [ShardInfo(**item) for item in info["items"]]
    return ShardSet(root / info.get("folder", EMBEDDINGS_DIR), items, manifest["dim"])

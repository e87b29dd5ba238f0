"""The on-disk format of a caption index, and the checks that guard loading it.

A built index is a directory::

    manifest.json        written last: format, encoder fingerprint, dim, metric, factory, search
                         parameters, count, file sizes and sha256 checksums, build settings,
                         tuning results (recall, latency), corpus statistics, timings
    index.faiss          the FAISS index (memory-mapped on load where the type allows)
    metadata.parquet     one row per caption: id (int64, explicit), caption, record, [source_id]
    embeddings/          float16 shards emb-*.npy + ids-*.npy (exact vectors, memory-mapped)
    build_state.json     resume bookkeeping of the build (not needed to search)

A directory without ``manifest.json`` is an unfinished build.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from zsvl._hashing import sha256_file
from zsvl.errors import IndexFormatError, IndexMismatchError
from zsvl.index.shards import ShardInfo, ShardSet

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "INDEX_FILE", "METADATA_FILE", "EMBEDDINGS_DIR",
           "read_manifest", "check_encoder", "check_files", "read_faiss_index", "read_metadata",
           "open_shards", "file_entry"]

logger = logging.getLogger(__name__)

FORMAT = "zsvl-caption-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
METADATA_FILE = "metadata.parquet"
EMBEDDINGS_DIR = "embeddings"


def file_entry(path: Path) -> dict[str, Any]:
    """``{"bytes": size, "sha256": hex}`` of a file, for the manifest."""
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The parsed manifest of the index at ``root``; clear errors for unfinished or foreign dirs."""
    root = Path(root)
    if not root.is_dir():
        raise IndexFormatError(f"No caption index at {str(root)!r}: the directory does not exist.")
    path = root / MANIFEST
    if not path.is_file():
        hint = (" A build was started there but did not finish; run `zsvl index build` again with "
                "the same arguments to resume it.") if (root / "build_state.json").exists() else ""
        raise IndexFormatError(f"{root} is not a finished zsvl caption index (no {MANIFEST}).{hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise IndexFormatError(f"{path} is not valid JSON ({exc}); rebuild the index.") from exc
    if manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{path} is not a {FORMAT} manifest (format={manifest.get('format')!r}).")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"{root} uses index format version {manifest.get('format_version')}; this zsvl reads "
            f"version {FORMAT_VERSION}. Rebuild the index with this zsvl."
        )
    return manifest


def check_encoder(manifest: dict[str, Any], encoder: Any, root: Path) -> None:
    """Refuse an encoder whose fingerprint or dimension differs from the one the index was built with."""
    built = manifest["encoder"]
    dim = int(encoder.embed_dim)
    if dim != manifest["dim"] or encoder.fingerprint != built["fingerprint"]:
        raise IndexMismatchError(
            f"The index at {root} was built with {built.get('spec') or built['fingerprint']} "
            f"(dim {manifest['dim']}) but the query encoder is {encoder.fingerprint} (dim {dim}); "
            f"rebuild the index with this encoder or load the model it was built with."
        )


def check_files(manifest: dict[str, Any], root: Path, *, verify: str = "size") -> None:
    """Every file in the manifest must exist with its recorded size (``verify="size"``), and also
    its sha256 (``verify="checksum"``). ``verify="none"`` skips the check."""
    if verify not in ("none", "size", "checksum"):
        raise ValueError(f"verify must be 'none', 'size' or 'checksum'. Got {verify!r}.")
    if verify == "none":
        return
    entries = dict(manifest["files"])
    folder = manifest.get("shards", {}).get("folder", EMBEDDINGS_DIR)
    for info in manifest.get("shards", {}).get("items", []):
        entries[f"{folder}/emb-{info['index']:05d}.npy"] = {"sha256": info["sha256"]}
    for name, entry in entries.items():
        path = root / name
        if not path.is_file():
            raise IndexFormatError(f"{root}: {name} is missing; the index is incomplete. Rebuild it.")
        size = entry.get("bytes")
        if size is not None and path.stat().st_size != size:
            raise IndexFormatError(
                f"{root}: {name} has {path.stat().st_size} bytes but the manifest records {size}; "
                f"the file is truncated or was replaced. Rebuild the index."
            )
        if verify == "checksum" and sha256_file(path) != entry["sha256"]:
            raise IndexFormatError(f"{root}: {name} does not match its checksum; rebuild the index.")


def read_faiss_index(path: Path, *, mmap: bool = True) -> Any:
    """Read a FAISS index, memory-mapping its codes (IVF lists, flat codes) when ``mmap``."""
    import faiss

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

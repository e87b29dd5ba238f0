"""Index recipes (``indexes/*.toml``), corpus shorthands and the ``zsvl index`` front doors.

A recipe names a model, a corpus and build options; the built index goes to ``<recipe folder>/
<name>`` unless told otherwise (``indexes/`` is git-ignored below the recipes). The corpus path
``toy:N`` (or ``toy:N:SEED``) is the synthetic toy caption corpus, written on demand under
``$ZSVL_HOME/corpora``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsvl.data.captions import CaptionCorpus
from zsvl.errors import InvalidParameterError

__all__ = [
    "Recipe",
    "read_recipe",
    "resolve_corpus_path",
    "build_from_recipe",
    "load_index",
    "index_info",
]

logger = logging.getLogger(__name__)

_BUILD_KEYS = (
    "factory",
    "max_memory",
    "target_recall",
    "k",
    "shard_size",
    "batch_size",
    "seed",
    "tune_queries",
)
_CORPUS_KEYS = ("format", "column", "id_column", "normalize", "dedupe", "max_chars")


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe file."""

    name: str  # index name; default output folder <recipe dir>/<name>
    model: str  # model spec the captions are encoded with
    corpus: str  # corpus path (relative to the recipe) or "toy:N[:SEED]"
    corpus_options: dict[str, Any] = field(default_factory=dict)  # CaptionCorpus options
    build_options: dict[str, Any] = field(default_factory=dict)  # build_index options
    folder: Path = Path(".")  # where the recipe file is

    @property
    def out(self) -> Path:
        return self.folder / self.name


def _toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as exc:
            raise InvalidParameterError(
                "Reading a TOML recipe on Python 3.10 needs the 'tomli' package (pip install tomli)."
            ) from exc
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(f"Cannot read the recipe {path}: {exc}") from exc


def read_recipe(path: str | Path) -> Recipe:
    """Parse a recipe; unknown keys are errors (a typo must not silently change a build)."""
    path = Path(path)
    data = _toml(path)
    corpus = data.get("corpus", {})
    build = data.get("index", {})
    missing = [k for k in ("name", "model") if k not in data] + (
        [] if "path" in corpus else ["corpus.path"]
    )
    if missing:
        raise InvalidParameterError(f"The recipe {path} lacks {', '.join(missing)}.")
    unknown = (
        [f"corpus.{k}" for k in corpus if k not in (*_CORPUS_KEYS, "path")]
        + [f"index.{k}" for k in build if k not in _BUILD_KEYS]
        + [k for k in data if k not in ("name", "model", "corpus", "index")]
    )
    if unknown:
        raise InvalidParameterError(f"The recipe {path} has unknown keys: {', '.join(unknown)}.")
    return Recipe(
        name=str(data["name"]),
        model=str(data["model"]),
        corpus=str(corpus["path"]),
        corpus_options={k: v for k, v in corpus.items() if k != "path"},
        build_options=dict(build),
        folder=path.parent,
    )


def resolve_corpus_path(corpus: str, base: Path | None = None) -> Path:
    """A corpus file path; ``toy:N[:SEED]`` writes (once) and returns the toy caption corpus."""
    if corpus.startswith("toy:"):
        parts = corpus.split(":")[1:]
        try:
            n, seed = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
        except (ValueError, IndexError) as exc:
            raise InvalidParameterError(
                f"Write the toy corpus as toy:N or toy:N:SEED. Got {corpus!r}."
            ) from exc
        from zsvl.paths import zsvl_home
        from zsvl.toy.captions import write_caption_corpus

        path = zsvl_home() / "corpora" / f"toy_captions_{n}_{seed}.txt"
        if not path.is_file():
            write_caption_corpus(path, n, seed)
        return path
    path = Path(corpus)
    return path if path.is_absolute() or base is None else base / path


def build_from_recipe(
    recipe: str | Path | Recipe,
    *,
    encoder: Any = None,
    out: str | Path | None = None,
    **overrides: Any,
) -> Any:
    """Build (or resume, or reuse) the index a recipe describes; returns the CaptionIndex."""
    from zsvl.index.build import build_index

    recipe = recipe if isinstance(recipe, Recipe) else read_recipe(recipe)
    if encoder is None:
        from zsvl.embed import load_model

        encoder = load_model(recipe.model, cache=False)
    corpus = CaptionCorpus(
        resolve_corpus_path(recipe.corpus, recipe.folder), **recipe.corpus_options
    )
    options = {**recipe.build_options, **{k: v for k, v in overrides.items() if v is not None}}
    options.setdefault("model", recipe.model)
    return build_index(corpus, encoder, Path(out) if out is not None else recipe.out, **options)


def load_index(path: str | Path, encoder: Any = None, **kwargs: Any) -> Any:
    """Open a built index directory (see :meth:`CaptionIndex.load`)."""
    from zsvl.index.search import CaptionIndex

    return CaptionIndex.load(path, encoder, **kwargs)


def index_info(path: str | Path, *, verify: str = "auto") -> dict[str, Any]:
    """A summary of an index directory from its manifest, after checking its files.

    ``recall@k`` is the recall measured while tuning, on ``tuning_queries`` queries of the kind
    named by ``tuning_query_source`` (held-out corpus vectors unless query embeddings were given).
    """
    from zsvl.index import storage

    root = Path(path)
    manifest = storage.read_manifest(root)
    verified = storage.check_files(manifest, root, verify=verify)
    tuning = manifest.get("tuning", {})
    folder = root / manifest["shards"]["folder"]
    shard_bytes = sum(
        (folder / f"emb-{s['index']:05d}.npy").stat().st_size for s in manifest["shards"]["items"]
    )
    return {
        "path": str(root),
        "count": manifest["count"],
        "dim": manifest["dim"],
        "factory": manifest["factory"],
        "search_params": manifest["search_params"],
        "encoder": manifest["encoder"]["spec"] or manifest["encoder"]["fingerprint"],
        "fingerprint": manifest["encoder"]["fingerprint"],
        f"recall@{tuning.get('k', 10)}": tuning.get("recall"),
        "recall_stderr": tuning.get("recall_stderr"),
        "target_recall": tuning.get("target_recall"),
        "tuning_queries": tuning.get("queries"),
        "tuning_query_source": tuning.get("query_source"),
        "train_points": manifest["build"].get("train", {}).get("points"),
        "ms_per_query_batched": tuning.get("ms_per_query_batched"),
        "ms_per_query_single": tuning.get("ms_per_query_single"),
        "index_bytes": manifest["index_bytes"],
        "embedding_bytes": shard_bytes,
        "corpus": manifest["build"]["corpus"]["path"],
        "corpus_stats": manifest["corpus_stats"],
        "timings": manifest["timings"],
        "verified": verified,
        "created": manifest["created"],
    }

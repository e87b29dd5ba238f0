"""``zsvl index build|info|search`` and ``zsvl classify --vocabulary-free --index DIR``.

Kept beside ``zsvl.cli`` (which registers them): argument parsing and one library call each.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from zsvl.errors import ZsvlError

__all__ = ["add_index_parsers", "classify_vocabulary_free"]


def add_index_parsers(sub: Any) -> None:
    """Register ``index build``, ``index info`` and ``index search`` on a subparsers object."""
    p = sub.add_parser("index", help="build, inspect and search FAISS caption indexes")
    isub = p.add_subparsers(dest="index_command", required=True)

    b = isub.add_parser("build", help="encode a caption corpus and build a tuned index (resumable)")
    b.add_argument(
        "corpus",
        nargs="?",
        default=None,
        help="txt/jsonl/csv/tsv/parquet file (.gz too), or toy:N for the toy corpus",
    )
    b.add_argument("--recipe", default=None, help="a recipe TOML (indexes/*.toml) instead")
    b.add_argument("--model", default=None, help="model spec (required without --recipe)")
    b.add_argument("--out", default=None, help="index directory (default indexes/<name>)")
    b.add_argument("--factory", default=None, help="auto (default), Flat, IVF4096,SQ8, 'OPQ...'")
    b.add_argument("--max-memory", default=None, help="index memory budget, e.g. 4G (default)")
    b.add_argument(
        "--train-memory",
        default=None,
        help="training-sample budget, e.g. 2G (default auto: 2G, raised to FAISS's minimum)",
    )
    b.add_argument("--target-recall", type=float, default=None, help="recall@k target (0.95)")
    b.add_argument("--k", type=int, default=None, help="k of the recall target (10)")
    b.add_argument("--format", default=None, help="corpus format when the name does not tell")
    b.add_argument("--column", default=None, help="caption field of JSONL/CSV/TSV/Parquet")
    b.add_argument("--id-column", default=None, help="field kept as each caption's source id")
    b.add_argument("--normalize", action="store_true", help="NFKC + collapse whitespace")
    b.add_argument("--dedupe", action="store_true", help="drop exact duplicate captions")
    b.add_argument("--shard-size", type=int, default=None, help="captions per shard (65536)")
    b.add_argument("--batch-size", type=int, default=None, help="text encoding batch (256)")
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--device", default=None, help="cpu, cuda (default: CUDA if present)")
    b.add_argument("--overwrite", action="store_true", help="discard what --out holds")
    b.add_argument("--no-resume", action="store_true", help="start the encoding from scratch")
    b.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="encode and fill on a Ray cluster (HOST:PORT, auto; none: Ray's default)",
    )
    b.add_argument("--ray-actors", type=int, default=None, help="encoder actors (one per GPU/CPU)")
    b.add_argument("--ray-gpus", type=float, default=None, help="GPUs per encoder actor")
    b.set_defaults(func=_cmd_build)

    i = isub.add_parser("info", help="summary of a built index")
    i.add_argument("path")
    i.add_argument(
        "--verify",
        choices=("auto", "checksum", "size", "none"),
        default="auto",
        help="auto: sizes + checksums where cheap (default); checksum: every file's sha256",
    )
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_info)

    s = isub.add_parser("search", help="nearest captions to texts or images")
    s.add_argument("path")
    s.add_argument("--text", nargs="+", default=None, help="query texts")
    s.add_argument("--image", nargs="+", default=None, help="query image files or folders")
    s.add_argument("--model", default=None, help="default: the model the index was built with")
    s.add_argument("--k", type=int, default=5)
    s.add_argument("--dedupe", type=float, default=None, help="drop near-duplicates (e.g. 0.94)")
    s.add_argument("--device", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_search)


def _load_encoder(spec: str | None, index_path: str | None, device: str | None) -> Any:
    from zsvl.embed import load_model

    if spec is None and index_path is not None:
        from zsvl.index.storage import read_manifest

        spec = read_manifest(index_path)["encoder"].get("spec")
    if spec is None:
        raise ZsvlError("Give the model with --model SPEC (the index does not record one).")
    return load_model(spec, device=device, cache=False), spec


def _cmd_build(args: argparse.Namespace) -> int:
    from zsvl.index.backend import import_faiss
    from zsvl.index.recipe import Recipe, build_from_recipe, read_recipe, resolve_corpus_path

    import_faiss()  # a missing FAISS is reported before a model is loaded or a caption encoded

    overrides = {
        "factory": args.factory,
        "max_memory": args.max_memory,
        "train_memory": args.train_memory,
        "k": args.k,
        "target_recall": args.target_recall,
        "shard_size": args.shard_size,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    corpus_opts = {
        key: value
        for key, value in {
            "format": args.format,
            "column": args.column,
            "id_column": args.id_column,
            "normalize": args.normalize or None,
            "dedupe": args.dedupe or None,
        }.items()
        if value is not None
    }
    if args.recipe:
        recipe = read_recipe(args.recipe)
        corpus = str(resolve_corpus_path(args.corpus).resolve()) if args.corpus else recipe.corpus
        recipe = Recipe(
            recipe.name,
            args.model or recipe.model,
            corpus,
            {**recipe.corpus_options, **corpus_opts},
            recipe.build_options,
            recipe.folder,
        )
    else:
        if not args.corpus or not args.model or not args.out:
            raise ZsvlError("Give CORPUS, --model and --out (or --recipe FILE).")
        from pathlib import Path

        path = resolve_corpus_path(args.corpus).resolve()
        recipe = Recipe(
            Path(args.out).name, args.model, str(path), corpus_opts, {}, Path(args.out).parent
        )
    engine = _ray_engine(args)  # connects first: a wrong address fails before the model loads
    encoder, spec = _load_encoder(recipe.model, None, args.device)
    index = build_from_recipe(
        recipe,
        encoder=encoder,
        out=args.out,
        model=spec,
        overwrite=args.overwrite or None,
        resume=False if args.no_resume else None,
        engine=engine,
        **overrides,
    )
    tuning = index.manifest["tuning"]
    print(
        f"built {index.root}: {index.count} captions, {index.manifest['factory']} "
        f"{index.search_params or '(exact)'}, recall@{tuning['k']} {tuning['recall']:.3f} "
        f"measured on {tuning['queries']} {tuning.get('query_source', 'queries')}"
    )
    return 0


def _ray_engine(args: argparse.Namespace) -> Any:
    if args.ray is None:
        return None
    from zsvl.distributed.engine import RayEngine

    engine = RayEngine(
        address=args.ray or None, actors=args.ray_actors, gpus_per_actor=args.ray_gpus
    )
    engine.connect()
    return engine


def _cmd_info(args: argparse.Namespace) -> int:
    from zsvl.index.recipe import index_info

    info = index_info(args.path, verify=args.verify)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from zsvl.index.search import CaptionIndex

    if bool(args.text) == bool(args.image):
        raise ZsvlError("Give the queries with exactly one of --text T ... or --image FILE ...")
    encoder, _ = _load_encoder(args.model, args.path, args.device)
    index = CaptionIndex.load(args.path, encoder)
    if args.text:
        queries, res = args.text, index.search_texts(args.text, args.k, dedupe=args.dedupe)
    else:
        encoded = encoder.encode_images(args.image, on_error="skip")
        queries = [encoded.sources[i] for i in encoded.indices]
        res = index.search(encoded.embeddings, args.k, dedupe=args.dedupe)
    records = [
        {
            "query": q,
            "results": [
                {"id": int(i), "score": float(s), "caption": c}
                for i, s, c in zip(ids, scores, caps, strict=False)
            ],
        }
        for q, ids, scores, caps in zip(queries, res.ids, res.scores, res.captions, strict=True)
    ]
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for rec in records:
            print(rec["query"])
            for r in rec["results"]:
                print(f"  {r['score']:.3f}  [{r['id']}] {r['caption']}")
    return 0


def classify_vocabulary_free(args: argparse.Namespace) -> int:
    """``zsvl classify PATHS --vocabulary-free --index DIR``: CaSED names for every image."""
    from zsvl.index.search import CaptionIndex
    from zsvl.methods.vocab_free import VocabularyFreeClassifier

    if not args.index:
        raise ZsvlError(
            "--vocabulary-free needs --index DIR (a caption index built with the model)."
        )
    encoder, _ = _load_encoder(args.model, args.index, args.device)
    index = CaptionIndex.load(args.index, encoder)
    encoded = encoder.encode_images(args.paths, batch_size=args.batch_size, on_error=args.on_error)
    clf = VocabularyFreeClassifier(encoder, index).fit()
    result = clf.predict_words(encoded.embeddings)
    sources = [encoded.sources[i] for i in encoded.indices]
    top = args.top_k
    records = [
        {
            "source": src,
            "label": label,
            "score": float(score),
            "candidates": [{"label": n, "score": p} for n, p in cands[:top]],
        }
        for src, label, score, cands in zip(
            sources, result.labels, result.scores, result.candidates, strict=True
        )
    ]
    if args.json:
        skipped = [{"source": f.source, "error": f.error} for f in encoded.failures]
        print(json.dumps({"results": records, "skipped": skipped}, indent=2))
    else:
        width = max([len("image")] + [len(s) for s in sources])
        print(f"{'image':<{width}}  {'prediction':<24} score  other candidates")
        for r in records:
            others = ", ".join(f"{c['label']} {c['score']:.2f}" for c in r["candidates"][1:])
            print(f"{r['source']:<{width}}  {r['label']:<24} {r['score']:.3f}  {others}")
    return 0 if records or not encoded.failures else 1

"""``zsvl serve``: load the model, indexes and saved classifiers, then run uvicorn.

``build_service(...)`` does the loading (library calls only); ``run(...)`` adds the web stack.
The server binds to 127.0.0.1 unless told otherwise; ``--token`` or ``$ZSVL_SERVE_TOKEN`` turns
on bearer-token auth for the API routes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsvl.errors import InvalidParameterError, ZsvlError
from zsvl.serve.limits import Limits
from zsvl.serve.service import BatchConfig, Service
from zsvl.serve.threads import default_threads, usable_cores

__all__ = [
    "build_service",
    "run",
    "require_extra",
    "resolve_token",
    "freeze_loaded_heap",
    "TOKEN_ENV",
]

logger = logging.getLogger(__name__)
TOKEN_ENV = "ZSVL_SERVE_TOKEN"


def require_extra() -> None:
    """Fail with the install command when the ``serve`` extra is missing."""
    import importlib.util

    missing = [
        m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise ZsvlError(
            f"zsvl serve needs {', '.join(missing)}; install the extra with "
            "pip install 'zsvl[serve]'."
        )


def resolve_token(token: str | None) -> str | None:
    """The bearer token: ``--token``, else ``$ZSVL_SERVE_TOKEN``, else None (no auth)."""
    return token or os.environ.get(TOKEN_ENV) or None


def _named_paths(values: Sequence[str], what: str) -> dict[str, Path]:
    """``DIR`` or ``NAME=DIR`` -> {name: path}; the name defaults to the folder/file stem."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).stem, value
        if name in out:
            raise InvalidParameterError(
                f"Two {what}s are named {name!r}; name them with --{what} NAME={path}."
            )
        out[name] = Path(path)
    return out


def build_service(
    *,
    indexes: Sequence[str] = (),
    classifiers: Sequence[str] = (),
    model: str | None = None,
    device: str | None = None,
    limits: Limits | None = None,
    batching: BatchConfig | None = None,
    encoder: Any = None,
    threads: int | None = None,
    long_call_threads: int | None = None,
) -> Service:
    """Load the encoder (``model``, else the spec recorded by the first index or saved
    classifier), the indexes and saved classifiers (both checked against the encoder's
    fingerprint) into a :class:`Service` (``threads``: see :class:`Service`)."""
    from zsvl.index.search import CaptionIndex
    from zsvl.index.storage import read_manifest

    index_paths = _named_paths(indexes, "index")
    clf_paths = _named_paths(classifiers, "classifier")
    if encoder is None:
        if model is None and index_paths:
            model = read_manifest(next(iter(index_paths.values())))["encoder"].get("spec")
        if model is None and clf_paths:
            from zsvl.persist import read_manifest as read_classifier_manifest

            saved = read_classifier_manifest(next(iter(clf_paths.values())))
            model = (saved.get("encoder") or {}).get("model")
        if model is None:
            from zsvl.models import DEFAULT_MODEL

            model = DEFAULT_MODEL
        from zsvl.embed import load_model

        # No on-disk embedding cache: it would store every query users type under $ZSVL_HOME,
        # grow without bound, and put a SQLite lookup and write on the model thread.
        encoder = load_model(model, device=device, num_workers=0, cache=False)
    loaded = {name: CaptionIndex.load(path, encoder) for name, path in index_paths.items()}
    saved = {name: _load_classifier(path, encoder) for name, path in clf_paths.items()}
    return Service(
        encoder,
        loaded,
        classifiers=saved,
        limits=limits,
        batching=batching,
        model=model,
        threads=threads,
        long_call_threads=long_call_threads,
    )


def _load_classifier(path: Path, encoder: Any) -> Any:
    from zsvl.persist import load_classifier

    return load_classifier(path, encoder=encoder)


def freeze_loaded_heap() -> None:
    """Take every object alive now (model, indexes, caption metadata) out of the cyclic GC's walk.

    A server allocates per request, so Python's full collections keep coming, and each one walks
    every object loaded at start. On the development machine those pauses stalled every client
    of ``benchmarks/bench_serve.py`` for about 250 ms (toy model, 32 clients: p99 280 ms, 44 ms
    with the heap frozen). Frozen objects are still freed by reference counting; only cycles
    among them stay. Call once, after loading and before serving (process-wide).
    """
    import gc

    gc.collect()
    gc.freeze()


def run(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``service`` with uvicorn until interrupted."""
    import uvicorn

    from zsvl.serve.app import create_app

    token = resolve_token(token)
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        logger.warning(
            "Serving on %s without a token: anyone who can reach it can query it "
            "(set --token or $%s).",
            host,
            TOKEN_ENV,
        )
    app = create_app(service, token=token)
    freeze_loaded_heap()
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        service.close()


def main(args: Any) -> int:
    """``zsvl serve`` with parsed arguments (see ``add_serve_parser``)."""
    require_extra()
    if args.threads is not None and args.threads < 1:
        raise InvalidParameterError(f"--threads must be at least 1. Got {args.threads}.")
    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=int(args.max_pixels),
        max_images=args.max_batch_images,
        max_k=args.max_k,
    )
    batching = BatchConfig(
        enabled=not args.no_batching, max_batch=args.batch_size, max_wait_ms=args.batch_wait_ms
    )
    service = build_service(
        indexes=args.index or (),
        classifiers=args.classifier or (),
        model=args.model,
        device=args.device,
        limits=limits,
        batching=batching,
        threads=args.threads or default_threads(),
        long_call_threads=args.threads or usable_cores(),
    )
    print(
        f"zsvl serve: http://{args.host}:{args.port}/  (API docs at /docs; "
        f"{len(service.indexes)} index(es), model {service.model})",
        flush=True,
    )
    run(service, host=args.host, port=args.port, token=args.token)
    return 0


def add_serve_parser(sub: Any) -> None:
    """Register ``zsvl serve`` on a subparsers object."""
    p = sub.add_parser(
        "serve", help="HTTP API + web page for search and classification (needs zsvl[serve])"
    )
    p.add_argument("--index", action="append", help="caption index DIR or NAME=DIR (repeatable)")
    p.add_argument(
        "--classifier", action="append", help="saved classifier FILE or NAME=FILE (repeatable)"
    )
    p.add_argument("--model", default=None, help="model spec (default: the first index's)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: CUDA if present)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", default=None, help=f"bearer token the API requires (or ${TOKEN_ENV})")
    p.add_argument("--no-batching", action="store_true", help="one model call per request")
    p.add_argument("--batch-size", type=int, default=64, help="most queries per model call")
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=2.0,
        help="how long a request waits for others to batch with (default 2)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads of the model for every call (default: the cores less one, "
        "at least 1, as the event loop needs a core; every core for batches that took "
        ">= 50 ms on those)",
    )
    p.add_argument("--max-upload-mb", type=float, default=8.0, help="request body limit")
    p.add_argument("--max-pixels", type=float, default=16e6, help="pixels per image limit")
    p.add_argument("--max-batch-images", type=int, default=32, help="images per request")
    p.add_argument("--max-k", type=int, default=100, help="largest k a request may ask")
    p.set_defaults(func=main)

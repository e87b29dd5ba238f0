"""``zsvl serve``: an HTTP API and web page over caption indexes and classifiers.

Needs the ``serve`` extra (``pip install 'zsvl[serve]'``: FastAPI, uvicorn, python-multipart).
Nothing outside this package imports it, so ``import zsvl`` stays light.

    from zsvl.serve import build_service, create_app
    app = create_app(build_service(indexes=["indexes/toy"]), token=None)
"""

from __future__ import annotations

from zsvl._lazy import lazy_exports

__all__ = ["build_service", "create_app", "run", "Service", "BatchConfig", "Limits", "MicroBatcher"]

_LAZY = {
    "build_service": "zsvl.serve.server",
    "run": "zsvl.serve.server",
    "create_app": "zsvl.serve.app",
    "Service": "zsvl.serve.service",
    "BatchConfig": "zsvl.serve.service",
    "Limits": "zsvl.serve.limits",
    "MicroBatcher": "zsvl.serve.batching",
}

__getattr__, __dir__ = lazy_exports("zsvl.serve", globals(), _LAZY, __all__)

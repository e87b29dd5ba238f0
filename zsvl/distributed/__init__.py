"""Running zsvl on a Ray cluster (``pip install 'zsvl[ray]'``): index builds and eval suites.

``build_index(..., engine="ray")`` / ``zsvl index build ... --ray [ADDRESS]`` encode and fill on
the cluster; ``evaluate_on_ray(...)`` / ``zsvl eval --ray [ADDRESS]`` spreads a suite's runs.
Nothing here imports Ray until a cluster is used; the rest of zsvl never imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsvl._lazy import lazy_exports

__all__ = ["RayEngine", "RayClusterError", "connect", "evaluate_on_ray"]

_LAZY = {
    "RayEngine": "zsvl.distributed.engine",
    "RayClusterError": "zsvl.distributed.cluster",
    "connect": "zsvl.distributed.cluster",
    "evaluate_on_ray": "zsvl.distributed.eval",
}

if TYPE_CHECKING:  # pragma: no cover
    from zsvl.distributed.cluster import RayClusterError, connect
    from zsvl.distributed.engine import RayEngine
    from zsvl.distributed.eval import evaluate_on_ray


__getattr__, __dir__ = lazy_exports("zsvl.distributed", globals(), _LAZY, __all__)

"""Connecting to a Ray cluster, with one-line errors for the usual mistakes.

``connect(address)`` returns the ``ray`` module, initialised: ``None`` starts a private local
cluster on this machine, ``"auto"`` joins the cluster ``ray start`` runs here, ``"HOST:PORT"``
joins that cluster's head (a ``ray://HOST:10001`` client address works too). An address nobody
answers at fails in seconds with what to run, instead of Ray's minute-long retry loop; a missing
Ray install names the extra to install. A session this process already opened is reused.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from zsvl.errors import ZsvlError

__all__ = ["RayClusterError", "import_ray", "connect", "cluster_gpus"]

logger = logging.getLogger(__name__)

_INSTALL = "pip install 'zsvl[ray]'"


class RayClusterError(ZsvlError):
    """Ray is missing, the cluster cannot be reached, or a cluster job failed for good."""


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`RayClusterError` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayClusterError(
            f"--ray needs Ray, which is not installed ({exc}); install it with {_INSTALL}."
        ) from exc
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``HOST:PORT`` or ``ray://HOST:PORT`` address, None for other forms."""
    bare = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = bare.rpartition(":")
    if not sep or not host:
        return None
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at ``address`` (Ray itself retries for about a minute)."""
    hp = _host_port(address)
    if hp is None:
        raise RayClusterError(
            f"The Ray address {address!r} is not HOST:PORT, ray://HOST:PORT or 'auto'; use the "
            f"address `ray start --head` printed (e.g. 10.0.0.5:6379)."
        )
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as exc:
        raise RayClusterError(
            f"No Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            f"`ray start --head --port={hp[1]}` on that machine, or pass the address it printed."
        ) from exc


def connect(address: str | None = None, *, num_cpus: int | None = None) -> Any:
    """Initialise Ray for this process and return the ``ray`` module.

    address : None (Ray's default: ``RAY_ADDRESS``, else the cluster last started on this
        machine, else a new local one), "local" (always a new local cluster), "auto" (the running
        one, or an error), "HOST:PORT" or "ray://HOST:PORT". Ignored when already connected.
    num_cpus : CPUs of a new local cluster; giving it implies ``address="local"`` when None.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": True,
        "include_dashboard": False,
    }
    if address is None and num_cpus is not None:
        address = "local"
    if address == "local":
        kwargs["num_cpus"] = num_cpus
    else:
        kwargs.pop("include_dashboard")
        if address not in (None, "auto"):
            _check_reachable(address)
    env = {name: os.environ[name] for name in ("ZSVL_HOME",) if name in os.environ}
    if env:  # the workers use the driver's cache root (shared storage on a real cluster)
        kwargs["runtime_env"] = {"env_vars": env}
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address if address not in (None, "auto") else "a running cluster on this machine"
        raise RayClusterError(
            f"Could not connect to Ray at {where}: {str(exc).splitlines()[0][:200]}. Start one "
            f"with `ray start --head`, or pass its address (HOST:PORT) to --ray."
        ) from exc
    return ray


def cluster_gpus(ray: Any) -> float:
    """GPUs the connected cluster has in total (0.0 without any)."""
    return float(ray.cluster_resources().get("GPU", 0.0))

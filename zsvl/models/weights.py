"""Where a spec's weights come from: availability checks, a fast "no network" answer, helpful
errors with real commands, and the weights identity that enters the encoder fingerprint.

Without ``HF_HUB_OFFLINE=1`` and with no network, the Hugging Face client retries every request
for about a minute before failing. zsvl first asks the hub's host once (:func:`probe_hub`, 2 s):
when it cannot be reached, weights already in the cache are loaded with the hub switched to
offline mode for that load, and missing weights fail at once with the error that says how to
get them.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from zsvl.errors import WeightsNotFoundError
from zsvl.models.identity import file_digest, files_digest, local_dir_files
from zsvl.models.spec import ModelSpec

__all__ = [
    "check_weights_available",
    "weights_id",
    "warn_quickgelu",
    "hf_offline",
    "hub_offline",
    "probe_hub",
    "is_download_failure",
    "translate_load_error",
]

logger = logging.getLogger(__name__)

_HF_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_HF_CONFIG = "open_clip_config.json"
PROBE_TIMEOUT = 2.0  # seconds to wait for the hub's host before calling the network absent
_PROBE_TTL = 60.0  # seconds a probe's answer is reused within one process
_probe_memo: dict[str, tuple[float, str | None]] = {}


def hf_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set to a true value right now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _hf_location(spec: ModelSpec) -> tuple[str, list[str]] | None:
    """(repo_id, candidate weights filenames, preferred first) on the Hub, or None."""
    if spec.schema == "hf-hub":
        return spec.arch[len("hf-hub:") :], list(_HF_WEIGHT_FILES)
    if spec.tag is None or spec.random:
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag) or {}
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    repo, filename = os.path.split(hub)
    if filename:
        stem = filename.rsplit(".", 1)[0]
        return repo, [stem + ".safetensors", filename]
    return repo, list(_HF_WEIGHT_FILES)


def _cached(repo: str, filename: str, cache_dir: str | None) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
    return found if isinstance(found, str) else None


def cached_hub_files(spec: ModelSpec, cache_dir: str | None = None) -> list[tuple[str, str]]:
    """(name, path) of the spec's files in the Hugging Face cache: the weights file open_clip
    would pick and, for ``hf-hub:`` specs, its config. [] when the weights are not cached."""
    location = _hf_location(spec)
    if location is None:
        return []
    repo, filenames = location
    weights = next(((f, p) for f in filenames if (p := _cached(repo, f, cache_dir))), None)
    if weights is None:
        return []
    files = [weights]
    if spec.schema == "hf-hub" and (config := _cached(repo, _HF_CONFIG, cache_dir)):
        files.append((_HF_CONFIG, config))
    return files


def probe_hub(timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when the Hugging Face endpoint answers within ``timeout`` s, else why not (one line).

    One HEAD request through the hub's own HTTP session (so proxies and ``HF_ENDPOINT`` apply);
    any HTTP status counts as reachable. The answer is reused for a minute.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    endpoint = constants.ENDPOINT
    now = time.monotonic()
    memo = _probe_memo.get(endpoint)
    if memo is not None and now - memo[0] < _PROBE_TTL:
        return memo[1]
    try:
        get_session().head(endpoint, timeout=timeout)
        reason = None
    except Exception as exc:  # noqa: BLE001 (a probe: any failure means "not reachable")
        reason = f"{endpoint} could not be reached within {timeout:g} s ({type(exc).__name__})"
    _probe_memo[endpoint] = (now, reason)
    return reason


@contextmanager
def hub_offline() -> Iterator[None]:
    """Run a block with the Hugging Face client in its offline mode (cache only, no retries).

    The switch is process-wide while the block runs (the hub reads one module constant).
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _where_hub_cache(cache_dir: str | None) -> str:
    from huggingface_hub import constants

    return str(cache_dir or constants.HF_HUB_CACHE)


def _missing_error(spec: ModelSpec, reason: str, cache_dir: str | None) -> WeightsNotFoundError:
    """The error that says, with commands that run as written, how to provide the weights."""
    location = _hf_location(spec)
    lines = [
        f"Weights for {spec} are not available: {reason}.",
        "On a machine with network, get them and bring them here in one of these ways:",
    ]
    if location is not None:
        repo, filenames = location
        files = filenames[0] + (f" {_HF_CONFIG}" if spec.schema == "hf-hub" else "")
        if spec.schema == "hf-hub":
            lines += [
                f"  1. a folder:  hf download {repo} {files} --local-dir {repo.split('/')[-1]}",
                f"     then use the model spec local-dir:{repo.split('/')[-1]}",
            ]
        else:
            lines += [
                f"  1. a file:  hf download {repo} {files} --local-dir weights",
                f"     then use the model spec {spec.arch}:weights/{filenames[0]}",
            ]
        lines += [
            f"  2. the Hugging Face cache:  hf download {repo} {files}",
            "     then copy that machine's hub cache folder (~/.cache/huggingface/hub) to "
            f"{_where_hub_cache(cache_dir)} on this one and run with HF_HUB_OFFLINE=1",
        ]
    else:
        url = _weights_url(spec)
        name = Path(urlsplit(url).path).name if url else "weights.pt"
        if url:
            lines += [
                f"  1. a file:  curl -L -o {name} {url}",
                f"     then use the model spec {spec.arch}:{name}",
            ]
        else:
            lines += [f"  1. a file:  the model spec {spec.arch}:/path/to/{name}"]
    lines.append(
        "  3. any folder with open_clip_config.json and the weights: the model spec "
        "local-dir:/path/to/folder"
    )
    lines.append("Model specs go to --model on the command line and to zsvl.load_model in Python.")
    return WeightsNotFoundError("\n".join(lines))


def _weights_url(spec: ModelSpec) -> str | None:
    if spec.tag is None or spec.schema:
        return None
    import open_clip

    return (open_clip.get_pretrained_cfg(spec.arch, spec.tag) or {}).get("url") or None


def check_weights_available(spec: ModelSpec, *, cache_dir: str | None = None) -> bool:
    """Fail early, with the helpful error, when the weights cannot be had; True when the load
    must run with the hub offline (weights cached, hub unreachable)."""
    if spec.checkpoint is not None:
        if not spec.checkpoint.is_file():
            raise WeightsNotFoundError(
                f"The weights file {spec.checkpoint} of {spec.arch} does not exist (or is not a "
                "file). Check the path in the model spec."
            )
        return False
    location = _hf_location(spec)
    if spec.schema == "local-dir" or spec.random or location is None:
        return False  # URL-only weights: open_clip's own cache decides; failures translated later
    cached = bool(cached_hub_files(spec, cache_dir))
    if hf_offline():
        if not cached:
            raise _missing_error(
                spec,
                f"HF_HUB_OFFLINE is set and {location[0]} is not in the "
                f"cache {_where_hub_cache(cache_dir)}",
                cache_dir,
            )
        return False
    unreachable = probe_hub()
    if unreachable is None:
        return False
    if not cached:
        raise _missing_error(
            spec,
            f"no network ({unreachable}) and {location[0]} is not in the "
            f"cache {_where_hub_cache(cache_dir)}",
            cache_dir,
        )
    logger.info("%s; loading %s from the Hugging Face cache.", unreachable, spec)
    return True


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_download_failure(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) is a Hugging Face or network failure."""
    from huggingface_hub import errors as hf_errors

    kinds: tuple[type[BaseException], ...] = (
        hf_errors.OfflineModeIsEnabled,
        hf_errors.LocalEntryNotFoundError,
        hf_errors.HfHubHTTPError,
        hf_errors.EntryNotFoundError,
        ConnectionError,
        TimeoutError,
    )
    for module in ("httpx2", "httpx"):  # the HTTP stack of the installed hub
        try:
            kinds += (__import__(module).TransportError,)
        except (ImportError, AttributeError):
            pass
    return any(isinstance(e, kinds) for e in _chain(error))


def translate_load_error(
    spec: ModelSpec, error: BaseException, cache_dir: str | None = None
) -> WeightsNotFoundError:
    """Turn open_clip's download failure into the error that says how to provide the weights."""
    root = next((e for e in _chain(error) if e.__cause__ is None and e.__context__ is None), error)
    reason = f"the download failed ({type(root).__name__}: {' '.join(str(root).split())[:200]})"
    return _missing_error(spec, reason, cache_dir)


def weights_id(spec: ModelSpec, cache_dir: str | None = None) -> str:
    """The identity of the weights a spec loads: a content hash of its files when it has files.

    ``sha256-<16 hex>`` for a checkpoint file, a ``local-dir:`` folder (config + weights) or an
    ``hf-hub:`` repo's cached files; ``TAG@sha256-<16 hex>`` for a tag whose weights are in the
    Hugging Face cache; the bare tag otherwise (weights open_clip fetched by URL).
    """
    if spec.checkpoint is not None:
        return "sha256-" + file_digest(spec.checkpoint)[:16]
    if spec.schema == "local-dir":
        return "sha256-" + files_digest(local_dir_files(spec.arch[len("local-dir:") :]))[:16]
    files = cached_hub_files(spec, cache_dir)
    digest = "sha256-" + files_digest(files)[:16] if files else None
    if spec.schema:
        return digest or spec.arch
    tag = spec.tag or "none"
    return f"{tag}@{digest}" if digest else tag


def warn_quickgelu(spec: ModelSpec) -> None:
    """Warn when OpenAI weights (trained with QuickGELU) meet an architecture built with GELU."""
    if spec.tag is None or spec.schema or spec.arch.endswith("-quickgelu"):
        return
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.tag) or {}
    if cfg.get("quick_gelu") or spec.tag == "openai":
        variant = f"{spec.arch}-quickgelu"
        fix = (
            f"use '{variant}:{spec.tag}'"
            if variant in open_clip.list_models()
            else "use a -quickgelu variant"
        )
        warnings.warn(
            f"{spec} : the {spec.tag!r} weights were trained with QuickGELU but {spec.arch!r} uses "
            f"GELU, which costs accuracy; {fix}.",
            UserWarning,
            stacklevel=3,
        )

"""Shared fixtures: an isolated ZSVL_HOME, the shipped toy model and toy suite, loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests run tiny models on small batches. On a machine busier than its cores (2 cores shared by
# many jobs here), two OpenMP threads per process spin while waiting for each other: encoding 192
# toy images took 4.7-6.6 s with 2 threads and 0.45 s with 1 (load average 15). So every test
# process and its subprocesses use one BLAS/OpenMP thread unless the caller set the variable.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session writes its caches to a fresh folder, never to ~/.cache."""
    home = tmp_path_factory.mktemp("zsvl_home")
    old = os.environ.get("ZSVL_HOME")
    os.environ["ZSVL_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("ZSVL_HOME", None)
    else:
        os.environ["ZSVL_HOME"] = old


@pytest.fixture(scope="session")
def toy_encoder():
    """The shipped tiny CLIP, uncached (tests that need the cache wrap it themselves).

    On the CPU unless ``ZSVL_TEST_DEVICE`` names another torch device (``cuda``: the tests that
    use this fixture then check the GPU paths against the library on the same device)."""
    from zsvl.embed import load_model

    device = os.environ.get("ZSVL_TEST_DEVICE", "cpu")
    return load_model("toy", device=device, cache=False, num_workers=0)


# The fast run's toy suite: the first images of every class and the first caption lines of the
# full suite, byte for byte (about a quarter of its images; the full one takes a minute to write).
SMALL_TOY_SUITE = {"per_class": {"train": 8, "val": 4, "test": 8}, "caption_lines": 4000}
_FULL_TOY_SUITE = pytest.StashKey[bool]()


@pytest.hookimpl(trylast=True)  # after -m/-k deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The session needs the full toy suite when a selected slow test uses ``toy_suite``."""
    config.stash[_FULL_TOY_SUITE] = any(
        item.get_closest_marker("slow") is not None
        and "toy_suite" in getattr(item, "fixturenames", ())
        for item in items
    )


@pytest.fixture(scope="session")
def small_toy_suite_args() -> dict:
    """The build_suite arguments of the fast run's toy suite."""
    return SMALL_TOY_SUITE


@pytest.fixture(scope="session")
def toy_suite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy suite written once per session in the CoOp layout.

    The full suite when the run selects a slow test that uses it (``make test-slow``), else the
    small one of :data:`SMALL_TOY_SUITE` (the default fast run), whose files are the full suite's
    first images per class: a fast test that uses this fixture must pass on both.
    """
    from zsvl.toy.suite import build_suite

    if request.config.stash.get(_FULL_TOY_SUITE, True):
        return Path(build_suite(tmp_path_factory.mktemp("toy_suite")))
    return Path(build_suite(tmp_path_factory.mktemp("toy_suite_small"), **SMALL_TOY_SUITE))


@pytest.fixture(scope="session")
def vitb32_random():
    """ViT-B-32 with random weights: a real architecture for exactness checks (no download)."""
    from zsvl.embed import load_model

    return load_model("ViT-B-32:random", device="cpu", cache=False, num_workers=0)

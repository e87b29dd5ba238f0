"""Suites: which datasets, methods, shots, seeds and per-method parameters make one table.

Built in: ``coop11`` (the CoOp 11-dataset suite) and ``toy`` (the synthetic suite). A TOML file
names the rest, for example::

    name = "fewshot-pets-dtd"
    datasets = ["OxfordPets", "DTD"]          # names from coop11 or toy
    methods = ["zeroshot", "tip", "gda"]
    shots = [0, 1, 2, 4, 8, 16]
    seeds = [1, 2, 3]

    [params.tip]                              # passed to the method as ctx.params
    beta_range = [1.0, 7.0]

    [[dataset]]                               # a dataset in no built-in table
    name = "MyBirds"
    folder = "my_birds"
    kind = "imagefolder"
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zsvl.data.datasets import DatasetInfo, coop11_datasets, toy_datasets
from zsvl.errors import InvalidParameterError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Suite", "load_suite", "DEFAULT_SHOTS", "DEFAULT_SEEDS"]

DEFAULT_SHOTS = (0, 1, 2, 4, 8, 16)
DEFAULT_SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[DatasetInfo, ...]
    methods: tuple[str, ...] = ("zeroshot",)
    shots: tuple[int, ...] = DEFAULT_SHOTS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def with_overrides(
        self,
        *,
        methods: list[str] | None = None,
        shots: list[int] | None = None,
        seeds: list[int] | None = None,
        datasets: list[str] | None = None,
    ) -> Suite:
        """The same suite with command-line choices in place of the file's."""
        chosen = self.datasets
        if datasets is not None:
            if not datasets:
                raise InvalidParameterError("--datasets is empty; name at least one dataset.")
            chosen = tuple(_pick(self.datasets, name) for name in datasets)
        if methods is not None and not methods:
            raise InvalidParameterError("--methods is empty; name at least one method.")
        return replace(
            self,
            datasets=chosen,
            methods=tuple(methods or self.methods),
            shots=_check_counts("shots", shots if shots is not None else self.shots),
            seeds=_check_counts("seeds", seeds if seeds is not None else self.seeds),
        )


def _check_counts(what: str, values: Any) -> tuple[int, ...]:
    """Shots or seeds: a non-empty list of distinct integers >= 0."""
    values = list(values)
    if not values:
        raise InvalidParameterError(f"{what} is empty; give at least one value, e.g. 0,1,2.")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 0]
    if bad:
        example = "0,1,2,4,8,16" if what == "shots" else "1,2,3"
        raise InvalidParameterError(
            f"{what} must be integers >= 0 (e.g. {example}). Got {bad[0]!r} in {values}."
        )
    if len(set(values)) != len(values):
        raise InvalidParameterError(f"{what} lists a value twice: {values}.")
    return tuple(values)


def _pick(table: tuple[DatasetInfo, ...], name: str) -> DatasetInfo:
    for info in table:
        if name in (info.name, info.folder):
            return info
    names = ", ".join(i.name for i in table)
    raise InvalidParameterError(f"No dataset {name!r} in this suite. Known: {names}.")


def load_suite(name: str | Path) -> Suite:
    """``"coop11"``, ``"toy"`` or a TOML suite file."""
    if str(name) == "coop11":
        return Suite("coop11", coop11_datasets())
    if str(name) == "toy":
        return Suite("toy", toy_datasets(), shots=(0, 1, 2, 4, 8, 16), seeds=DEFAULT_SEEDS)
    path = Path(name)
    if not path.is_file():
        raise InvalidParameterError(
            f"Suite {str(name)!r} is neither 'coop11', 'toy' nor an existing TOML file."
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{path} is not valid TOML: {exc}") from exc
    return _from_dict(data, default_name=path.stem)


def _from_dict(data: dict[str, Any], *, default_name: str) -> Suite:
    known = {i.name: i for i in coop11_datasets() + toy_datasets()}
    custom = {}
    for entry in data.get("dataset", []):
        try:
            custom[entry["name"]] = DatasetInfo(**entry)
        except TypeError as exc:
            raise InvalidParameterError(f"[[dataset]] entry {entry!r}: {exc}") from exc
    names = data.get("datasets") or list(custom)
    missing = [n for n in names if n not in custom and n not in known]
    if missing:
        raise InvalidParameterError(
            f"Unknown datasets {missing}; add a [[dataset]] table for each or use one of "
            f"{', '.join(known)}."
        )
    shots = _check_counts("shots", data.get("shots", DEFAULT_SHOTS))
    return Suite(
        name=str(data.get("name", default_name)),
        datasets=tuple(custom.get(n) or known[n] for n in names),
        methods=tuple(data.get("methods", ("zeroshot",))),
        shots=shots,
        seeds=_check_counts("seeds", data.get("seeds", DEFAULT_SEEDS)),
        params={k: dict(v) for k, v in data.get("params", {}).items()},
    )

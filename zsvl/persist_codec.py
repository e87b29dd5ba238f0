"""The value codec of saved classifiers: estimator trees as JSON with tagged values + arrays.

:class:`Writer` turns a fitted classifier into ``{"class", "params", "fitted"}`` with every
array set aside (numbered ``a0``, ``a1``, ...); :class:`Reader` rebuilds it. The tags are listed
in :mod:`zsvl.persist`. Only classes from ``zsvl.*`` modules are ever instantiated, and plain
value classes are restored field by field (``object.__setattr__``), so no code from the file
runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._version import __version__
from zsvl.errors import ClassifierFileError

__all__ = ["Writer", "Reader", "COLLABORATORS", "UNSAVEABLE", "is_encoder", "classset_json"]

COLLABORATORS = ("encoder", "llm", "index", "extractor")  # handed in at load, never stored
UNSAVEABLE = {
    "VocabularyFreeClassifier": (
        "it names images from a caption index at prediction time; keep the index folder "
        "(zsvl index build) and rebuild the classifier with VocabularyFreeClassifier(encoder, "
        "CaptionIndex.load(DIR, encoder))"
    ),
}


class Writer:
    """Encodes values to JSON; arrays are collected in ``arrays``."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, value: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(value)
        return name

    def encode(self, value: Any, where: str) -> Any:  # noqa: PLR0911, C901 - one branch per type
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biuf":
                raise _unsupported(value, where)
            return {"$npscalar": [value.dtype.str, self.encode(value.item(), where)]}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biufc":
                return {"$array": self.array(value)}
            if value.dtype.kind in "OU" and all(isinstance(v, str) for v in value.flat):
                return {
                    "$strarray": value.tolist(),
                    "dtype": "U" if value.dtype.kind == "U" else "O",
                }
            raise _unsupported(value, where)
        if isinstance(value, Path):
            return {"$path": str(value)}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {"$tuple": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"$dict": {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
            return {
                "$items": [
                    [self.encode(k, where), self.encode(v, f"{where}[{k!r}]")]
                    for k, v in value.items()
                ]
            }
        return self._encode_object(value, where)

    def _encode_object(self, value: Any, where: str) -> Any:
        from zsvl.classes import ClassSet
        from zsvl.text.descriptors import DescriptorSet

        module = type(value).__module__
        if module == "torch" or module.startswith("torch."):
            return self._encode_torch(value, where)
        if isinstance(value, ClassSet):
            return {"$classset": classset_json(value)}
        if isinstance(value, DescriptorSet):
            return {"$descriptors": value.to_dict()}
        if is_encoder(value):
            return {"$collaborator": "encoder"}
        if hasattr(value, "get_params") or hasattr(value, "decision_function"):
            return {"$estimator": self.estimator(value, where)}
        if module.startswith("zsvl.") and hasattr(value, "__dict__"):
            state = {
                k: self.encode(v, f"{where}.{k}")
                for k, v in vars(value).items()
                if "cache" not in k
            }
            return {"$object": _qualname(value), "state": state}
        raise _unsupported(value, where)

    def _encode_torch(self, value: Any, where: str) -> Any:
        import torch

        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, torch.Tensor):
            return {"$tensor": self.array(value.detach().cpu().numpy())}
        raise _unsupported(value, where)

    def estimator(self, clf: Any, where: str) -> dict[str, Any]:
        name = type(clf).__name__
        if name in UNSAVEABLE:
            raise ClassifierFileError(
                f"A {name} cannot be saved to a classifier file: {UNSAVEABLE[name]}."
            )
        params = _params(clf)
        fitted = {k: v for k, v in vars(clf).items() if k not in params and "cache" not in k}
        enc_params = {}
        for key, val in params.items():
            if key in COLLABORATORS and val is not None and not isinstance(val, str):
                enc_params[key] = {"$collaborator": key}
            else:
                enc_params[key] = self.encode(val, f"{where}.{key}")
        return {
            "class": _qualname(clf),
            "params": enc_params,
            "fitted": {k: self.encode(v, f"{where}.{k}") for k, v in fitted.items()},
        }


def _unsupported(value: Any, where: str) -> ClassifierFileError:
    return ClassifierFileError(
        f"Cannot save {where}: values of type {type(value).__module__}.{type(value).__name__} "
        "have no safe file form (zsvl saves arrays and JSON only, never pickle)."
    )


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


def is_encoder(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("encode_images", "encode_texts", "fingerprint"))


def classset_json(classes: Any) -> dict[str, Any]:
    return {"names": list(classes.names), "aliases": [list(a) for a in classes.aliases]}


def _params(clf: Any) -> dict[str, Any]:
    """Constructor parameters: ``get_params(deep=False)``, else the ``__init__`` signature."""
    if hasattr(clf, "get_params"):
        return dict(clf.get_params(deep=False))
    names = [
        p.name
        for p in inspect.signature(type(clf).__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return {name: getattr(clf, name) for name in names if name in vars(clf)}


class Reader:
    """Decodes what :class:`Writer` wrote, with the collaborators handed in at load."""

    def __init__(
        self, arrays: dict[str, np.ndarray], collaborators: dict[str, Any], device: Any, path: Any
    ) -> None:
        self.arrays = arrays
        self.collaborators = collaborators
        self.device = device
        self.path = path

    def bad(self, what: str) -> ClassifierFileError:
        return ClassifierFileError(f"{self.path} is damaged or was altered: {what}.")

    def decode(self, value: Any) -> Any:  # noqa: PLR0911, C901 - one branch per tag
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 0:
            raise self.bad("an untagged object")
        tag = next(iter(value))
        body = value[tag]
        if tag == "$array":
            return self._array(body)
        if tag == "$tensor":
            import torch

            return torch.as_tensor(self._array(body), device=self.device)
        if tag == "$float":
            return float(body)
        if tag == "$npscalar":
            return np.dtype(body[0]).type(self.decode(body[1]))
        if tag == "$strarray":
            return np.array(body, dtype=object if value.get("dtype") == "O" else str)
        if tag == "$path":
            return Path(body)
        if tag == "$tuple":
            return tuple(self.decode(v) for v in body)
        if tag == "$dict":
            return {k: self.decode(v) for k, v in body.items()}
        if tag == "$items":
            return {_hashable(self.decode(k)): self.decode(v) for k, v in body}
        if tag == "$classset":
            from zsvl.classes import ClassSet

            return ClassSet(tuple(body["names"]), tuple(tuple(a) for a in body["aliases"]))
        if tag == "$descriptors":
            from zsvl.text.descriptors import DescriptorSet

            return DescriptorSet.from_dict(body, where=str(self.path))
        if tag == "$device":
            return self._device(body)
        if tag == "$collaborator":
            return self.collaborators.get(body)
        if tag == "$estimator":
            return self.estimator(body)
        if tag == "$object":
            return self._object(body, value.get("state", {}))
        raise self.bad(f"unknown value tag {tag!r}")

    def _array(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise self.bad(f"array {name!r} is missing")
        return self.arrays[name]

    def _device(self, saved: str) -> Any:
        import torch

        if self.device is not None:
            return torch.device(self.device)
        return torch.device(saved if saved == "cpu" or torch.cuda.is_available() else "cpu")

    def _object(self, qualname: str, state: dict[str, Any]) -> Any:
        cls: Any = _import_class(qualname, self.path)  # Any: mypy reads type.__new__ otherwise
        obj = cls.__new__(cls)
        for key, val in state.items():
            object.__setattr__(obj, key, self.decode(val))
        if dataclasses.is_dataclass(cls):
            missing = [f.name for f in dataclasses.fields(cls) if f.name not in state]
            if missing:
                raise self.bad(f"{qualname} lacks fields {missing}")
        return obj

    def estimator(self, tree: dict[str, Any]) -> Any:
        try:
            qualname, params, fitted = tree["class"], tree["params"], tree["fitted"]
        except (KeyError, TypeError) as exc:
            raise self.bad(f"an estimator entry lacks {exc}") from exc
        cls = _import_class(qualname, self.path)
        kwargs = {k: self.decode(v) for k, v in params.items()}
        try:
            clf = cls(**kwargs)
        except TypeError as exc:
            raise ClassifierFileError(
                f"{self.path} was saved by zsvl with {qualname} parameters {sorted(kwargs)} that "
                f"this zsvl's {cls.__name__} does not take ({exc}); refit and save it again."
            ) from exc
        for key, val in fitted.items():
            object.__setattr__(clf, key, self.decode(val))
        return clf


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list | tuple) else value


def _import_class(qualname: str, path: Any) -> type:
    module_name, _, name = str(qualname).partition(":")
    if not (module_name == "zsvl" or module_name.startswith("zsvl.")) or not name:
        raise ClassifierFileError(
            f"{path} names the class {qualname!r}; only zsvl classes are loaded from a file."
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ClassifierFileError(
            f"{path} needs {qualname}, which this zsvl ({__version__}) does not have; use the "
            "zsvl version that saved it, or refit and save again."
        ) from exc
    if not isinstance(obj, type):
        raise ClassifierFileError(f"{path} names {qualname!r}, which is not a class.")
    return obj

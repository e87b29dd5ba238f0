"""Saved classifiers: a fitted zsvl classifier in one file, arrays + JSON, never pickle.

A ``.zsvl`` file is a zip archive (readable as an ``.npz`` with ``numpy.load(...,
allow_pickle=False)``) holding:

- ``manifest.json``: ``format`` ("zsvl-classifier"), ``format_version`` (1), ``zsvl_version``,
  ``encoder`` (``fingerprint``, ``model`` spec to reload it, ``embed_dim``, ``logit_scale``),
  ``classes`` (ordered names and aliases: the ClassSet), ``estimator`` (the tree below) and
  ``arrays`` (name -> shape and dtype of every array member);
- ``arrays/<n>.npy``: every numeric array, written with ``numpy.lib.format`` and read back with
  ``allow_pickle=False``.

The estimator tree is ``{"class": "zsvl.methods.tip:TipAdapter", "params": {...},
"fitted": {...}}``: ``params`` are the constructor parameters (``get_params(deep=False)``, or
the ``__init__`` signature read the scikit-learn way), ``fitted`` every instance attribute set
by ``fit`` (trailing-underscore attributes and private state; attributes whose name contains
"cache" are rebuilt on demand and skipped). Values are JSON, with tagged objects for what JSON
lacks: ``{"$array": name}``, ``{"$tuple": [...]}``, ``{"$dict": {...}}`` / ``{"$items": [[k,
v], ...]}`` (non-string keys), ``{"$classset": ...}``, ``{"$descriptors": ...}`` (the descriptor
file schema), ``{"$estimator": tree}`` (a nested classifier such as an adapter's zero-shot head),
``{"$object": "module:Class", "state": {...}}`` (a plain zsvl value class, restored field by
field without running code), ``{"$device": ...}``, ``{"$collaborator": name}`` (the encoder, an
LLM client, a caption index: never stored, handed in at load).

Loading checks the format and version, the zip's CRC of every member, each array's shape and
dtype, and that the encoder's fingerprint equals the saved one; any failure is a
:class:`~zsvl.errors.ClassifierFileError` (or :class:`~zsvl.errors.EncoderMismatchError`) that
says what to do. Classes are only ever imported from ``zsvl.*`` modules.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_path
from zsvl._version import __version__
from zsvl.errors import ClassifierFileError, EncoderMismatchError

__all__ = [
    "save_classifier",
    "load_classifier",
    "read_manifest",
    "classifier_encoder",
    "FORMAT",
    "FORMAT_VERSION",
]

FORMAT = "zsvl-classifier"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
COLLABORATORS = ("encoder", "llm", "index", "extractor")  # handed in at load, never stored
UNSAVEABLE = {
    "VocabularyFreeClassifier": (
        "it names images from a caption index at prediction time; keep the index folder "
        "(zsvl index build) and rebuild the classifier with VocabularyFreeClassifier(encoder, "
        "CaptionIndex.load(DIR, encoder))"
    ),
}


# -- writing ---------------------------------------------------------------------------------
class _Writer:
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
                return {"$strarray": value.tolist(), "dtype": "U" if value.dtype.kind == "U"
                        else "O"}
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
            return {"$items": [[self.encode(k, where), self.encode(v, f"{where}[{k!r}]")]
                               for k, v in value.items()]}
        return self._encode_object(value, where)

    def _encode_object(self, value: Any, where: str) -> Any:
        from zsvl.text.classes import ClassSet
        from zsvl.text.descriptors import DescriptorSet

        module = type(value).__module__
        if module == "torch" or module.startswith("torch."):
            return self._encode_torch(value, where)
        if isinstance(value, ClassSet):
            return {"$classset": _classset_json(value)}
        if isinstance(value, DescriptorSet):
            return {"$descriptors": value.to_dict()}
        if _is_encoder(value):
            return {"$collaborator": "encoder"}
        if hasattr(value, "get_params") or hasattr(value, "decision_function"):
            return {"$estimator": self.estimator(value, where)}
        if module.startswith("zsvl.") and hasattr(value, "__dict__"):
            state = {k: self.encode(v, f"{where}.{k}") for k, v in vars(value).items()
                     if "cache" not in k}
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
            raise ClassifierFileError(f"A {name} cannot be saved to a classifier file: "
                                      f"{UNSAVEABLE[name]}.")
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


def _is_encoder(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("encode_images", "encode_texts", "fingerprint"))


def _classset_json(classes: Any) -> dict[str, Any]:
    return {"names": list(classes.names), "aliases": [list(a) for a in classes.aliases]}


def _params(clf: Any) -> dict[str, Any]:
    """Constructor parameters: ``get_params(deep=False)``, else the ``__init__`` signature."""
    if hasattr(clf, "get_params"):
        return dict(clf.get_params(deep=False))
    names = [p.name for p in inspect.signature(type(clf).__init__).parameters.values()
             if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return {name: getattr(clf, name) for name in names if name in vars(clf)}


def _is_fitted(clf: Any) -> bool:
    return any(k.endswith("_") and not k.startswith("__") for k in vars(clf))


def save_classifier(clf: Any, path: str | Path, *, model: str | None = None) -> Path:
    """Write a fitted classifier to ``path`` (a ``.zsvl`` file; see the module doc), atomically.

    clf : any fitted zsvl classifier (zero-shot, descriptors, WaffleCLIP, FuDD, GDA, GDA-EM,
        Tip, Tip-X, caption support); its encoder is recorded by fingerprint, not stored.
    model : the model spec to reload the encoder with (default: the encoder's own spec).
    Returns the path written.
    """
    if not _is_fitted(clf) or not hasattr(clf, "classes_"):
        raise ClassifierFileError(
            f"This {type(clf).__name__} is not fitted; call fit() before save_classifier()."
        )
    encoder = classifier_encoder(clf)
    writer = _Writer()
    tree = writer.estimator(clf, type(clf).__name__)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "zsvl_version": __version__,
        "encoder": _encoder_json(encoder, model),
        "classes": _classset_json(clf.classes_),
        "estimator": tree,
        "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.str}
                   for k, a in writer.arrays.items()},
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False, allow_nan=False)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, text)
        for name, arr in writer.arrays.items():
            with zf.open(f"arrays/{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    return Path(path)


def classifier_encoder(clf: Any) -> Any:
    """The encoder of ``clf`` or of a nested zero-shot head; None when it has none."""
    seen = 0
    while clf is not None and seen < 8:
        encoder = getattr(clf, "encoder", None)
        if encoder is not None and _is_encoder(encoder):
            return encoder
        clf = getattr(clf, "zero_shot", None)
        seen += 1
    return None


def _encoder_json(encoder: Any, model: str | None) -> dict[str, Any]:
    if encoder is None:
        return {"fingerprint": None, "model": model, "embed_dim": None, "logit_scale": None}
    if model is None:
        spec = getattr(encoder, "spec", None)
        model = _spec_name(spec) if spec is not None else None
    return {
        "fingerprint": str(encoder.fingerprint),
        "model": model,
        "embed_dim": int(encoder.embed_dim),
        "logit_scale": float(encoder.logit_scale),
    }


def _spec_name(spec: Any) -> str:
    """A spec string that reloads the model on another machine ("toy" for the shipped model)."""
    try:
        from zsvl.toy.model import TOY_MODEL_NAME

        if getattr(spec, "arch", None) == TOY_MODEL_NAME:
            return "toy"
    except ImportError:  # pragma: no cover - the toy package ships with zsvl
        pass
    return str(spec)


# -- reading ---------------------------------------------------------------------------------
def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a classifier file (format checked), without loading any array."""
    with _open_zip(path) as zf:
        return _manifest(zf, path)


def _open_zip(path: str | Path) -> zipfile.ZipFile:
    path = Path(path)
    if not path.is_file():
        raise ClassifierFileError(
            f"Classifier file {str(path)!r} does not exist. Make one with `zsvl fit ... --out "
            f"{path.name or 'clf.zsvl'}` or zsvl.save_classifier(clf, path)."
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ClassifierFileError(
            f"{path} is not a zsvl classifier file or is damaged ({exc}); save it again."
        ) from exc


def _manifest(zf: zipfile.ZipFile, path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(zf.read(MANIFEST).decode("utf-8"))
    except KeyError as exc:
        raise ClassifierFileError(f"{path} has no {MANIFEST}: not a zsvl classifier file.") from exc
    except (zipfile.BadZipFile, zlib.error, UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        raise ClassifierFileError(f"{path} is damaged ({exc}); save the classifier again.") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ClassifierFileError(f"{path} is not a zsvl classifier file (format {FORMAT!r}).")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ClassifierFileError(
            f"{path} has classifier format version {version!r}; this zsvl ({__version__}) reads "
            f"version {FORMAT_VERSION}. Save it again with this zsvl, or use zsvl "
            f"{data.get('zsvl_version', '?')} to read it."
        )
    return data


def _read_arrays(zf: zipfile.ZipFile, manifest: dict[str, Any], path: Any) -> dict[str, Any]:
    arrays = {}
    for name, meta in dict(manifest.get("arrays", {})).items():
        try:
            raw = zf.read(f"arrays/{name}.npy")  # checks the member's CRC-32
            arr = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        except (KeyError, zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
            raise ClassifierFileError(
                f"{path} is damaged: array {name!r} cannot be read ({exc}). Save it again."
            ) from exc
        if list(arr.shape) != list(meta.get("shape", [])) or arr.dtype.str != meta.get("dtype"):
            raise ClassifierFileError(
                f"{path} is damaged: array {name!r} has shape {arr.shape} {arr.dtype.str}, the "
                f"manifest says {meta.get('shape')} {meta.get('dtype')}. Save it again."
            )
        arrays[name] = arr
    return arrays


class _Reader:
    def __init__(self, arrays: dict[str, np.ndarray], collaborators: dict[str, Any],
                 device: Any, path: Any) -> None:
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
            from zsvl.text.classes import ClassSet

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
        cls = _import_class(qualname, self.path)
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


def load_classifier(
    path: str | Path,
    encoder: Any = None,
    *,
    device: Any = None,
    llm: Any = None,
    index: Any = None,
) -> Any:
    """Load a classifier saved by :func:`save_classifier`, ready to ``predict``.

    encoder : the Encoder to use; its fingerprint must equal the saved one. None: load the saved
        model spec with :func:`zsvl.load_model` (the embedding cache in front).
    device : where the classifier's matrix products run (default: as saved when available,
        else the CPU).
    llm, index : collaborators that a classifier may need again (FuDD asks an LLM about class
        pairs its file lacks); never stored in the file.
    """
    with _open_zip(path) as zf:
        manifest = _manifest(zf, path)
        arrays = _read_arrays(zf, manifest, path)
    saved = manifest.get("encoder") or {}
    if encoder is None and saved.get("fingerprint") is not None:
        model = saved.get("model")
        if not model:
            raise ClassifierFileError(
                f"{path} does not record a model spec; pass the encoder: "
                f"load_classifier(path, zsvl.load_model(SPEC))."
            )
        from zsvl.api import load_model

        encoder = load_model(model, device=device)
    if encoder is not None and saved.get("fingerprint") not in (None, encoder.fingerprint):
        raise EncoderMismatchError(
            f"{path} was fitted with the encoder {saved.get('fingerprint')} (model "
            f"{saved.get('model')!r}) but the encoder given is {encoder.fingerprint}; load the "
            f"model it was fitted with, or fit and save the classifier again with this one."
        )
    if device is None and encoder is not None:
        device = getattr(encoder, "device", None)
    reader = _Reader(arrays, {"encoder": encoder, "llm": llm, "index": index}, device, path)
    try:
        clf = reader.estimator(manifest["estimator"])
    except ClassifierFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ClassifierFileError(f"{path} is damaged or was altered ({exc!r}).") from exc
    names = tuple(getattr(clf, "classes_", None) or ())
    if list(names) != list((manifest.get("classes") or {}).get("names", [])):
        raise reader.bad("the class order of the classifier and of the manifest differ")
    return clf

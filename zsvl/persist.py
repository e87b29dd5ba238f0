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

import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from zsvl._atomic import atomic_path
from zsvl._version import __version__
from zsvl.errors import ClassifierFileError, EncoderMismatchError
from zsvl.persist_codec import Reader, Writer, classset_json, is_encoder

__all__ = [
    "save_classifier",
    "load_classifier",
    "read_manifest",
    "classifier_encoder",
    "classifier_classes",
    "FORMAT",
    "FORMAT_VERSION",
]

FORMAT = "zsvl-classifier"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def classifier_classes(clf: Any) -> Any:
    """The ClassSet of a fitted classifier (``classset_`` when it keeps one, else built from
    ``classes_``, a ClassSet or an array of names); None when it is not fitted."""
    from zsvl.classes import ClassSet

    classset = vars(clf).get("classset_")
    if isinstance(classset, ClassSet):
        return classset
    try:
        classes = clf.classes_
    except AttributeError:  # NotFittedError is one
        return None
    if classes is None or isinstance(classes, ClassSet):
        return classes
    return ClassSet(tuple(str(c) for c in classes))


def _is_fitted(clf: Any) -> bool:
    return any(k.endswith("_") and not k.startswith("__") for k in vars(clf))


def save_classifier(clf: Any, path: str | Path, *, model: str | None = None) -> Path:
    """Write a fitted classifier to ``path`` (a ``.zsvl`` file; see the module doc), atomically.

    clf : any fitted zsvl classifier (zero-shot, descriptors, WaffleCLIP, FuDD, GDA, GDA-EM,
        Tip, Tip-X, caption support); its encoder is recorded by fingerprint, not stored.
    model : the model spec to reload the encoder with (default: the encoder's own spec).
    Returns the path written.
    """
    classes = classifier_classes(clf)
    if not _is_fitted(clf) or classes is None:
        raise ClassifierFileError(
            f"This {type(clf).__name__} is not fitted; call fit() before save_classifier()."
        )
    encoder = classifier_encoder(clf)
    writer = Writer()
    tree = writer.estimator(clf, type(clf).__name__)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "zsvl_version": __version__,
        "encoder": _encoder_json(encoder, model),
        "classes": classset_json(classes),
        "estimator": tree,
        "arrays": {
            k: {"shape": list(a.shape), "dtype": a.dtype.str} for k, a in writer.arrays.items()
        },
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
        if encoder is not None and is_encoder(encoder):
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
            f"Classifier file {str(path)!r} "
            f"{'is a folder, not a file' if path.is_dir() else 'does not exist'}. Make one with "
            f"`zsvl fit ... --out "
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
    except (
        zipfile.BadZipFile,
        zlib.error,
        UnicodeDecodeError,
        ValueError,
        OSError,
        EOFError,
    ) as exc:
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
        from zsvl.embed import load_model

        encoder = load_model(model, device=device)
    if encoder is not None and saved.get("fingerprint") not in (None, encoder.fingerprint):
        raise EncoderMismatchError(
            f"{path} was fitted with the encoder {saved.get('fingerprint')} (model "
            f"{saved.get('model')!r}) but the encoder given is {encoder.fingerprint}; load the "
            f"model it was fitted with, or fit and save the classifier again with this one."
        )
    if device is None and encoder is not None:
        device = getattr(encoder, "device", None)
    reader = Reader(arrays, {"encoder": encoder, "llm": llm, "index": index}, device, path)
    try:
        clf = reader.estimator(manifest["estimator"])
    except ClassifierFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ClassifierFileError(f"{path} is damaged or was altered ({exc!r}).") from exc
    classes = classifier_classes(clf)
    names = list(classes.names) if classes is not None else []
    if names != list((manifest.get("classes") or {}).get("names", [])):
        raise reader.bad("the class order of the classifier and of the manifest differ")
    return clf

"""Exceptions raised by zsvl. Messages say what was got, what was expected, and how to fix it."""

from __future__ import annotations

__all__ = [
    "ZsvlError",
    "InvalidParameterError",
    "ModelNotFoundError",
    "WeightsNotFoundError",
    "ImageLoadError",
    "NotFittedError",
    "CacheError",
    "LLMError",
    "LLMOfflineError",
    "LLMOutputError",
    "IndexMismatchError",
    "IndexFormatError",
    "ClassifierFileError",
    "EncoderMismatchError",
]


class ZsvlError(Exception):
    """Base class of every error zsvl raises on purpose."""


class InvalidParameterError(ZsvlError, ValueError):
    """A parameter or an input has the wrong type, shape or value."""


class ModelNotFoundError(ZsvlError, KeyError):
    """A model spec names no architecture or pretrained tag that zsvl or open_clip knows."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(ZsvlError, FileNotFoundError):
    """Model weights are not available locally and cannot be downloaded."""


class ImageLoadError(ZsvlError, OSError):
    """An image file could not be opened or decoded."""


class NotFittedError(ZsvlError, AttributeError):
    """An estimator was used before ``fit``."""


class CacheError(ZsvlError):
    """The on-disk cache could not be read or written."""


class LLMError(ZsvlError):
    """An LLM endpoint could not be reached or kept failing after the retries."""


class LLMOfflineError(LLMError):
    """Offline mode was asked for, but some requests have no cached answer.

    ``missing`` lists one short description per missing request (cache key and what it asks).
    """

    def __init__(self, message: str, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = list(missing or [])


class LLMOutputError(LLMError):
    """An LLM answer could not be parsed, even after asking again."""


class IndexMismatchError(ZsvlError, ValueError):
    """A caption index does not match the encoder (or a build to resume) it is used with."""


class IndexFormatError(ZsvlError):
    """A caption index directory is incomplete or damaged (missing, truncated or altered files)."""


class ClassifierFileError(ZsvlError, ValueError):
    """A saved classifier file is missing, damaged, of an unknown version, or cannot be written."""


class EncoderMismatchError(ZsvlError, ValueError):
    """A saved classifier was fitted with another encoder than the one it is loaded with."""

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

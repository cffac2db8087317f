"""Exceptions with messages meant for the user: each names the file or setting at fault."""

from __future__ import annotations


class TlguiError(Exception):
    """Base class of every error tlgui shows to a user as a plain message."""


class Cancelled(TlguiError):
    """The user cancelled the work; nothing is wrong."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)


class DatasetError(TlguiError):
    """The data folder cannot be used as a dataset."""


class WeightsNotFound(TlguiError):
    """A backbone's ImageNet weights file is not on this machine and cannot be fetched."""


class RecompileRequired(TlguiError):
    """Trainable flags changed since the model was compiled; training would ignore them."""


class ModelFileError(TlguiError):
    """A model file cannot be loaded safely or is not a tlgui/Keras classifier."""


class ExportError(TlguiError):
    """An export could not be written."""


class ConfigError(TlguiError):
    """A setting has a value that cannot work."""


class TlguiWarning(UserWarning):
    """A warning tlgui itself raises; tests turn it into an error."""

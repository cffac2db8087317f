"""Exceptions with messages meant for the user: each names the file or setting at fault."""

from __future__ import annotations

import errno
from pathlib import Path

from tlgui.core.entries import printable


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


class DestinationExists(TlguiError):
    """A write would replace an existing file the user did not ask to overwrite.

    The window asks for a confirmation and writes again with ``overwrite=True``; the
    command line asks for ``--overwrite``.

    Attributes:
        path: the file (or folder) that would be replaced.
    """

    def __init__(self, path: Path, message: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(message or (
            f"{self.path} already exists; it was not replaced. Choose another name, or "
            "ask to overwrite it (--overwrite on the command line)."))


class UnsafeDestination(ConfigError):
    """A destination that is never written, even when asked to overwrite.

    It is an input being read, lies inside a dataset or input folder being read, is the
    model in use, or is not a regular file (a folder, a pipe, a device). It is a
    ``ConfigError`` too: callers that caught the earlier overlap errors still do.

    Attributes:
        path: the refused destination.
        conflict: the input, input folder or model it collides with, if any.
    """

    def __init__(self, path: Path, message: str, conflict: Path | None = None) -> None:
        self.path = Path(path)
        self.conflict = conflict
        super().__init__(message)


class WriteError(TlguiError, OSError):
    """A file could not be written; the message names the user's file and the reason.

    It is also an ``OSError`` with the original ``errno`` (``strerror`` holds the reason
    in words), so code that tolerates failed writes (the pixel cache) still catches it.

    Attributes:
        path: the user's file or folder (never a temporary name).
        what: words before the path in the message ("the onnx export", "in the folder").
    """

    def __init__(self, path: Path, exc: OSError, what: str = "") -> None:
        reason = os_reason(exc)
        system = exc.strerror
        if system and system.lower() != reason:
            reason = f"{reason} ({system})"
        self._set(Path(path), exc.errno or 0, reason, what)

    def _set(self, path: Path, code: int, reason: str, what: str) -> None:
        OSError.__init__(self, code, reason)
        self.path = path
        self.what = what
        self.message = f"Cannot write {what}{' ' if what else ''}{printable(path)}: {reason}."

    def __str__(self) -> str:
        # Rebuilt from data on the other side of the engine pipe, it has its text only.
        return getattr(self, "message", None) or super().__str__()

    def for_path(self, path: Path, what: str | None = None) -> WriteError:
        """The same failure told about another path (the final file, not its temp file)."""
        other = WriteError.__new__(WriteError)
        other._set(Path(path), self.errno or 0, str(self.strerror),
                   self.what if what is None else what)
        return other


# Reasons a biologist understands, by errno; anything else keeps the system's words.
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "the name or path is too long for the system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENOENT: "the folder does not exist",
    errno.EEXIST: "something with that name is already there",
    errno.ELOOP: "a symbolic link loops back on itself",
    errno.EIO: "the disk reported an input/output error",
    errno.EXDEV: "it is on another disk",
}


def os_reason(exc: OSError) -> str:
    """The reason of an ``OSError`` in plain words (``[Errno 28]`` -> "the disk is full")."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return str(exc.strerror or exc).rstrip(".").lower() or type(exc).__name__


class TlguiWarning(UserWarning):
    """A warning tlgui itself raises; tests turn it into an error."""

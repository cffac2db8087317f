"""Importing Keras without TensorFlow's start-up chatter (the CLI and the engine use it)."""

from __future__ import annotations

import os

# TensorFlow's C++ log threshold: 3 keeps its INFO, WARNING and ERROR lines off stderr.
# "E0000 ... cuda_platform.cc:52] failed call to cuInit" is an ERROR line on every machine
# without a GPU driver, so 2 is not enough.
NATIVE_LOG_LEVEL = "3"


def quiet_native_logs() -> None:
    """Keeps TensorFlow's C++ log lines off the terminal for the rest of the process.

    They are logged after the import too (the cuInit line comes when the first model is
    built), so hiding the import's stderr is not enough. A ``TF_CPP_MIN_LOG_LEVEL`` the
    user set is kept (``0`` shows everything). tlgui's own messages are Python and are
    not affected; subprocesses (the export helper) inherit the setting.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", NATIVE_LOG_LEVEL)


def import_keras_quietly() -> None:
    """Imports Keras (and its TensorFlow backend) with the C++ start-up chatter hidden.

    TensorFlow 2.21 writes absl lines ("oneDNN custom operations are on", "Could not find
    cuda drivers") to file descriptor 2 before ``TF_CPP_MIN_LOG_LEVEL`` applies. They mean
    nothing to a user of the command line, so stderr is pointed at the null device for the
    import only; Python errors still propagate as exceptions.
    """
    import sys

    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                import keras  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)

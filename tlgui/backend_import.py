"""Importing Keras without TensorFlow's start-up chatter (the CLI and the engine use it)."""

from __future__ import annotations

import os


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

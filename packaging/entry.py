"""Entry point of the bundled app: the window without arguments, the command line with them."""

import json
import multiprocessing
import os
import sys


def bundled_backend() -> str:
    """The Keras backend of this edition (``edition.json`` beside the bundled weights).

    ``TLGUI_BACKEND`` overrides it: tlgui itself sets it for the TensorFlow process that
    converts exports of a model trained under another backend.
    """
    override = os.environ.get("TLGUI_BACKEND")
    if override:
        return override
    base = getattr(sys, "_MEIPASS", os.path.dirname(os.path.abspath(__file__)))
    try:
        with open(os.path.join(base, "edition.json"), encoding="utf-8") as f:
            return str(json.load(f).get("backend") or "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


if __name__ == "__main__":
    # The backend is the edition's; a user's ~/.keras/keras.json naming another backend
    # must not break the app.
    os.environ["KERAS_BACKEND"] = bundled_backend()
    multiprocessing.freeze_support()
    from tlgui.__main__ import main

    sys.exit(main())

"""Names of the classifier's fixed layers, shared by the engine side and the window side.

Kept apart from ``model.py`` so that code which only reads a model's description (the
window, the run folders) never imports anything that loads Keras.
"""

from __future__ import annotations

INPUT_NAME = "image"
BACKBONE_NAME = "backbone"
HEAD_NAME = "classifier"

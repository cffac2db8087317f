"""tlgui: train an image classifier from folders of labelled photos, offline."""

__version__ = "0.1.0"

"""tlgui: train an image classifier from folders of labelled photos, offline."""

from tlgui.core.memory import limit_malloc_arenas

__version__ = "0.1.0"

# Here, because every way into tlgui (window, command line, tests, benchmarks) passes
# through this line before TensorFlow is imported and starts its threads.
limit_malloc_arenas()

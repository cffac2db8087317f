"""The sample data sets tlgui offers to fetch (names and what the user gets)."""

from __future__ import annotations

SAMPLE_DATASETS = {
    "tf_flowers": "5 kinds of flowers, 3,670 photos (218 MB download)",
    "cats_vs_dogs": "cats and dogs, 23,262 photos (786 MB download)",
    "beans": "healthy and diseased bean leaves, 1,295 photos (171 MB download)",
}

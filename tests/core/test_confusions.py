"""Reading a large confusion matrix: mistakes per class, top confusions, name filter."""

from __future__ import annotations

import numpy as np

from tlgui.core.confusions import matching_classes, mistakes_per_class, top_confusions


def test_top_confusions_most_images_first_with_the_share_of_the_true_class() -> None:
    confusion = np.array([[8, 2, 0, 0],
                          [3, 5, 0, 2],
                          [0, 0, 9, 1],
                          [0, 4, 0, 0]])
    assert mistakes_per_class(confusion).tolist() == [2, 5, 1, 4]
    top = top_confusions(confusion)
    assert [(c.true_label, c.predicted_label, c.count) for c in top] == [
        (3, 1, 4), (1, 0, 3), (0, 1, 2), (1, 3, 2), (2, 3, 1)]
    assert top[0].share == 1.0 and top[1].share == 0.3
    # Equal counts: the larger share of its class first (2 of 10 vs 2 of 10: label order).
    assert [c.true_label for c in top_confusions(confusion, limit=4)[2:]] == [0, 1]
    assert len(top_confusions(confusion, limit=2)) == 2
    # Only cells that touch the chosen classes: class 2 as true or predicted.
    assert [(c.true_label, c.predicted_label) for c in top_confusions(confusion,
                                                                      classes=[2])] == [(2, 3)]
    assert top_confusions(np.diag([3, 4])) == []


def test_matching_classes_needs_every_word_in_any_case() -> None:
    names = ["Golden Warbler", "golden finch", "olive warbler", "Warbler"]
    assert matching_classes(names, "warbler") == [0, 2, 3]
    assert matching_classes(names, "  GOLD  warb ") == [0]
    assert matching_classes(names, "") == [0, 1, 2, 3]
    assert matching_classes(names, "heron") == []

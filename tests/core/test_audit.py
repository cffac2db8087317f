"""The label audit: its parts on made-up numbers, then end to end on generated photos."""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.reliability.helpers import tree_digest
from tlgui.cli import main
from tlgui.core.audit import AuditResult, audit_dataset, nearest_images
from tlgui.core.audit_features import audit_image_size, thumbnails
from tlgui.core.audit_report import CSV_COLUMNS, audit_csv_text, summary_lines
from tlgui.core.confident_learning import find_label_issues, per_class_thresholds
from tlgui.core.config import TrainConfig
from tlgui.core.dataset import scan
from tlgui.core.errors import Cancelled
from tlgui.core.events import Event, StageProgress
from tlgui.core.linear_head import HeadSettings, out_of_fold_probabilities, stratified_folds
from tlgui.core.similarity import _thumbnail_similarity, neighbour_votes, outlier_scores

TINY = TrainConfig(weights="none")
COLOURS = {"red": (210, 40, 40), "green": (40, 190, 60), "blue": (40, 70, 210)}


def photo(colour: tuple[int, int, int], seed: int, size: int = 96) -> Image.Image:
    """A picture of its own: a few shapes mostly of the class colour on a random ground."""
    rng = np.random.default_rng(seed)
    ground = tuple(int(v) for v in rng.integers(90, 170, 3))
    img = Image.new("RGB", (size, size), ground)
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = (int(v) for v in rng.integers(0, size - 20, 2))
        w, h = (int(v) for v in rng.integers(16, 48, 2))
        shade = tuple(int(np.clip(c + rng.integers(-25, 25), 0, 255)) for c in colour)
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(
            (x0, y0, x0 + w, y0 + h), fill=shade)
    noise = rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8))


# -- confident learning and the head, on numbers ---------------------------------------

def _noisy_probs(n: int = 300, k: int = 3, flips: int = 12, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = np.arange(n) % k
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), true] += 4
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = true.copy()
    flipped = rng.choice(n, flips, replace=False)
    given[flipped] = (true[flipped] + 1) % k
    return probs, given, flipped


def test_confident_learning_flags_the_flipped_labels_with_their_true_class() -> None:
    probs, given, flipped = _noisy_probs()
    issues = find_label_issues(probs, given)
    true = (given[flipped] - 1) % 3
    assert set(flipped.tolist()) <= set(issues.flagged.tolist())
    assert len(issues.flagged) <= len(flipped) + 5
    assert (issues.suggested[flipped] == true).all()
    # Ranked by how little the given label is believed; never the model's own choice.
    scores = issues.score[issues.flagged]
    assert (np.diff(scores) <= 0).all()
    assert (probs[issues.flagged].argmax(axis=1) != given[issues.flagged]).all()
    assert issues.joint.sum() == pytest.approx(len(given))
    np.testing.assert_allclose(issues.thresholds, per_class_thresholds(probs, given))


def test_a_systematic_mix_up_decides_between_two_other_classes() -> None:
    # 20 images of class 0 filed as 1; one more image filed as 1 that the model finds
    # equally like 0 and 2: the estimated mix-up makes 0 the suggestion.
    probs, given, _ = _noisy_probs(flips=0)
    zeros = np.flatnonzero(given == 0)[:20]
    given[zeros] = 1
    row = np.flatnonzero(given == 1)[-1]
    probs[row] = [0.45, 0.1, 0.45]
    issues = find_label_issues(probs, given)
    assert issues.suggested[row] == 0


def test_the_head_learns_and_folds_keep_copies_together() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (3, 16)) * 3
    labels = np.repeat(np.arange(3), 40)
    x = (centres[labels] + rng.normal(0, 1, (120, 16))).astype(np.float32)
    probs = out_of_fold_probabilities([x], labels, 3, folds=5, settings=HeadSettings())
    assert (probs.argmax(axis=1) == labels).mean() > 0.95
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    groups = np.arange(120)
    groups[1::2] = groups[0::2]  # pairs of copies
    folds = stratified_folds(labels, 5, 0, groups)
    assert (folds[1::2] == folds[0::2]).all()
    per_class = [np.bincount(folds[labels == c], minlength=5) for c in range(3)]
    assert all(c.max() - c.min() <= 2 for c in per_class)


def test_thumbnails_find_reencoded_resized_and_cropped_copies() -> None:
    original = photo((200, 60, 60), seed=3, size=240)
    smaller = original.resize((216, 216))
    w = original.width
    cropped = original.crop((w // 20, w // 20, w - w // 20, w - w // 20))
    other = photo((200, 60, 60), seed=4, size=240)
    from io import BytesIO

    def jpeg(im: Image.Image, quality: int) -> np.ndarray:
        buf = BytesIO()
        im.save(buf, "JPEG", quality=quality)
        return np.asarray(Image.open(buf).convert("RGB").resize((112, 112)))

    px = np.stack([jpeg(original, 95), jpeg(smaller, 70), jpeg(cropped, 70), jpeg(other, 95)])
    sim = _thumbnail_similarity(thumbnails(px), slice(0, 1))[0]
    assert sim[1] > 0.97 and sim[2] > 0.97  # re-encoded at 90% size; 5% cropped off
    assert sim[3] < 0.9  # another picture of the same kind


def test_neighbour_votes_leave_out_the_image_s_own_copies() -> None:
    labels = np.array([0, 0, 1, 1, 1])
    neighbours = np.array([[1, 2, 3, 4], [0, 2, 3, 4], [3, 4, 0, 1], [2, 4, 0, 1],
                           [2, 3, 0, 1]])
    groups = np.array([0, 0, 2, 3, 4])  # rows 0 and 1 are copies of each other
    votes = neighbour_votes(neighbours, labels, groups, 2, voters=2, prior=0.0)
    assert votes[0].tolist() == [0.0, 1.0]  # its copy (class 0) does not vote
    assert votes[2].tolist() == [0.0, 1.0]


def test_outlier_scores_are_robust_z_scores() -> None:
    typical = np.array([0.8, 0.82, 0.79, 0.81, 0.8, 0.3])
    z = outlier_scores(typical)
    assert z[-1] > 10 and abs(z[:-1]).max() < 2


def test_the_audit_looks_at_the_backbone_s_imagenet_size() -> None:
    assert audit_image_size(TrainConfig()) == 224
    assert audit_image_size(TrainConfig(image_size=160)) == 224
    assert audit_image_size(TrainConfig(), 96) == 96
    assert audit_image_size(TrainConfig(backbone="EfficientNetV2B0")) == 224


# -- end to end on generated photos -----------------------------------------------------

class Audited(NamedTuple):
    root: Path
    result: AuditResult
    events: list[Event]
    names: dict[str, str]


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    root = tmp_path_factory.mktemp("audit") / "photos"
    for ci, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir(parents=True)
        for i in range(16):
            photo(colour, seed=ci * 100 + i).save(root / name / f"{name}_{i:02d}.jpg",
                                                  quality=92)
    # A red photo filed under green, an exact copy in another class, a re-encoded copy
    # beside its original, and a blank frame.
    (root / "red" / "red_00.jpg").rename(root / "green" / "red_00.jpg")
    (root / "blue" / "copy_of_green_03.jpg").write_bytes(
        (root / "green" / "green_03.jpg").read_bytes())
    with Image.open(root / "blue" / "blue_05.jpg") as im:
        im.resize((86, 86)).save(root / "blue" / "blue_05_copy.jpg", quality=70)
    Image.new("RGB", (96, 96), (128, 128, 128)).save(root / "red" / "blank.jpg")
    before = tree_digest(root)
    events: list[Event] = []
    result = audit_dataset(scan(root), TINY, events.append, image_size=64)
    assert tree_digest(root) == before  # nothing written inside the dataset
    names = {"moved": "green/red_00.jpg", "exact": "blue/copy_of_green_03.jpg",
             "exact_of": "green/green_03.jpg", "copy": "blue/blue_05_copy.jpg",
             "copy_of": "blue/blue_05.jpg", "blank": "red/blank.jpg"}
    return Audited(root, result, events, names)


def test_the_audit_finds_copies_conflicts_and_blank_frames(audited: Audited) -> None:
    root, result, names = audited.root, audited.result, audited.names
    dups = {(f.path, f.related_path): f for f in result.of("near_duplicate")}
    exact = dups.get((root / names["exact"], root / names["exact_of"])) or \
        dups[(root / names["exact_of"], root / names["exact"])]
    assert exact.kind == "label_conflict" and exact.score == 1.0
    assert {exact.given_class, exact.suggested_class} == {"green", "blue"}
    pair = {root / names["copy"], root / names["copy_of"]}
    assert any({f.path, f.related_path} == pair for f in dups.values())
    blank = [f for f in result.of("outlier") if f.kind == "blank"]
    assert [f.path for f in blank] == [root / names["blank"]]
    assert blank[0].score == 1.0


def test_the_audit_names_the_moved_photo_and_its_class(audited: Audited) -> None:
    root, result, names = audited.root, audited.result, audited.names
    rows = result.of("likely_mislabeled")
    moved = [f for f in rows if f.path == root / names["moved"]]
    assert moved and moved[0].given_class == "green" and moved[0].suggested_class == "red"
    assert rows.index(moved[0]) < 3


def test_the_result_holds_what_the_window_needs(audited: Audited) -> None:
    root, result, names = audited.root, audited.result, audited.names
    n = len(result.paths)
    assert n == 3 * 16 + 3 and result.probabilities.shape == (n, 3)
    assert result.features.shape[0] == n and result.labels.shape == (n,)
    np.testing.assert_allclose(np.linalg.norm(result.features, axis=1), 1.0, rtol=1e-4)
    assert result.features.dtype == np.float32 and result.probabilities.dtype == np.float32
    assert set(result.splits) == {"train", "validation"}
    scores = [f.score for f in result.findings]
    assert scores == sorted(scores, reverse=True)
    for f in result.findings:
        assert result.paths[f.row] == f.path and 0.0 <= f.score <= 1.0
    near = nearest_images(result, root / names["moved"], "red", k=4)
    assert len(near) == 4 and all(p.parent.name == "red" for p, _ in near)
    assert root / names["moved"] not in [p for p, _ in near]
    assert [s for _, s in near] == sorted((s for _, s in near), reverse=True)
    stages = {e.stage for e in audited.events if isinstance(e, StageProgress)}
    assert {"decode", "features", "audit"} <= stages
    assert set(result.seconds) >= {"decode", "features", "compare", "folds"}
    lines = summary_lines(result)
    assert any(line.startswith("Likely mislabeled:") for line in lines)


def test_the_csv_has_the_columns_and_order_of_the_issue(audited: Audited) -> None:
    result = audited.result
    rows = list(csv.reader(audit_csv_text(result).splitlines()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(result.findings) + 1
    assert {r[1] for r in rows[1:]} <= {"likely_mislabeled", "near_duplicate", "outlier"}
    scores = [float(r[4]) for r in rows[1:]]
    assert scores == sorted(scores, reverse=True)
    dup_rows = [r for r in rows[1:] if r[1] == "near_duplicate"]
    assert all(r[5] for r in dup_rows) and all(not r[5] for r in rows[1:]
                                               if r[1] != "near_duplicate")


def test_cancel_stops_the_audit(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for ci, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir(parents=True)
        for i in range(6):
            photo(colour, seed=ci * 10 + i).save(root / name / f"{i}.jpg")
    ds = scan(root)
    cancel = threading.Event()

    def report(event: Event) -> None:
        if isinstance(event, StageProgress) and event.stage == "features":
            cancel.set()

    with pytest.raises(Cancelled):
        audit_dataset(ds, TINY, report, cancel, image_size=32)


def test_audit_command_writes_the_csv_and_guards_its_destination(
        audited: Audited, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = audited.root
    before = tree_digest(root)
    out = tmp_path / "audit.csv"
    args = ["audit", str(root), "--weights", "none", "--image-size", "64"]
    assert main([*args, "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Likely mislabeled" in text and "Near-duplicates" in text and str(out) in text
    with out.open() as fh:
        assert tuple(next(csv.reader(fh))) == CSV_COLUMNS
    assert main([*args, "--csv", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--csv", str(root / "red" / "a.csv")]) == 1
    assert "tlgui never writes there" in capsys.readouterr().err
    assert main([*args, "--csv", str(out), "--overwrite", "--folds", "3"]) == 0
    assert tree_digest(root) == before

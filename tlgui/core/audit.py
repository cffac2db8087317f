"""Label audit: images that look mislabeled, near-duplicates and outliers, ranked.

One pass of the frozen backbone over every image (through the pixel cache) gives
features; a softmax head trained k times on them gives each image's out-of-fold
probabilities, which confident learning turns into likely label errors; comparing
features and thumbnails finds copies and images unlike every class. Nothing is written
inside the dataset: the only files written are pixel cache entries in the user cache
folder. ADR 005 records the choices and the evidence behind each threshold.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlgui.core.audit_features import FeaturePass, audit_image_size, compute_features
from tlgui.core.audit_findings import (
    PROBLEMS,
    AuditSummary,
    Finding,
    Nearest,
    ProblemKind,
    other_class,
)
from tlgui.core.confident_learning import LabelIssues, find_label_issues
from tlgui.core.config import TrainConfig
from tlgui.core.dataset import Dataset, Problem
from tlgui.core.errors import Cancelled, ConfigError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.linear_head import HeadSettings, out_of_fold_probabilities
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.similarity import (
    OUTLIER_Z,
    DuplicatePair,
    PairScan,
    duplicate_groups,
    find_duplicates,
    nearest_of_class,
    neighbour_votes,
    outlier_scores,
    scan_pairs,
)

__all__ = ["PROBLEMS", "AuditResult", "AuditSettings", "Finding", "ProblemKind",
           "audit_dataset", "nearest_images", "summarize"]
# Unit-norm features are scaled up for the head: Adam at tlgui's phase-1 rate then fits
# in ten epochs (measured in ADR 005).
HEAD_INPUT_SCALE = 10.0


@dataclass(frozen=True)
class AuditSettings:
    """Thresholds of the audit; the defaults are the measured ones of ADR 005.

    Attributes:
        folds: the head is trained this many times, each without one fold.
        duplicate_thumbnail: least thumbnail correlation of two copies of a photo.
        duplicate_feature: least feature similarity of two copies (a floor that keeps
            different photos with the same layout apart).
        outlier_z: least modified z-score of an outlier's untypicality.
        blank_spread: a frame whose colour channels vary less than this (0..255) is blank.
        head: the training recipe of the out-of-fold head.
    """

    folds: int = 5
    duplicate_thumbnail: float = 0.97
    duplicate_feature: float = 0.6
    outlier_z: float = OUTLIER_Z
    blank_spread: float = 3.0
    head: HeadSettings = field(default_factory=HeadSettings)


@dataclass(frozen=True)
class AuditResult:
    """Everything the audit found, and what the window needs to show it.

    Attributes:
        root: the dataset folder.
        class_names: the classes, in label order.
        paths: every audited image (those that could be read), one row each.
        labels: given class per row.
        splits: ``train``, ``validation`` or ``test`` per row.
        probabilities: out-of-fold class probabilities ``[n, classes]``.
        features: L2-normalised backbone features ``[n, dims]`` (float32).
        findings: the rows of the report, highest score first.
        problems: files that could not be read, and why.
        accuracy: share of images whose out-of-fold prediction is their given class.
        backbone: the backbone the features come from.
        image_size: the side images were resized to.
        folds: how many folds the head was trained on.
        seconds: wall time per stage (model, decode, features, compare, folds).
    """

    root: Path
    class_names: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: np.ndarray
    splits: tuple[str, ...]
    probabilities: np.ndarray
    features: np.ndarray
    findings: tuple[Finding, ...]
    problems: tuple[Problem, ...]
    accuracy: float
    backbone: str
    image_size: int
    folds: int
    seconds: dict[str, float]

    def of(self, problem: ProblemKind) -> list[Finding]:
        """The findings of one problem, highest score first."""
        return [f for f in self.findings if f.problem == problem]

    def row_of(self, path: str | Path) -> int:
        """The row of an audited image.

        Raises:
            KeyError: the image was not audited.
        """
        return self.paths.index(Path(path))


def nearest_images(result: AuditResult, image: int | str | Path, class_name: str,
                   k: int = 6) -> list[tuple[Path, float]]:
    """The ``k`` images of a class that look most like ``image`` (by backbone features).

    For a finding the window shows these for its given and its suggested class, so
    the user can compare. The image itself is left out.

    Args:
        result: an audit result.
        image: a row of the result, or an audited path.
        class_name: one of ``result.class_names``.
        k: how many.

    Returns:
        (path, cosine similarity) pairs, most similar first.

    Raises:
        KeyError: the image was not audited or the class is unknown.
    """
    row = image if isinstance(image, int) else result.row_of(image)
    if class_name not in result.class_names:
        raise KeyError(class_name)
    label = result.class_names.index(class_name)
    return [(result.paths[i], s) for i, s in
            nearest_of_class(result.features, result.labels, row, label, k)]


def summarize(result: AuditResult, k: int = 6) -> AuditSummary:
    """The audit as the window holds it: the findings, the out-of-fold probabilities and,
    per finding, the ``k`` nearest images of its given and of its other class (a
    duplicate's twin among them; the features stay behind)."""
    nearest = []
    for f in result.findings:
        label = int(result.labels[f.row])
        suggested = (result.class_names.index(f.suggested_class)
                     if f.suggested_class in result.class_names else None)
        other = other_class(result.probabilities[f.row], label, suggested)
        shown = []
        for c in dict.fromkeys((label, other)):
            rows = nearest_of_class(result.features, result.labels, f.row, c, k)
            shown.append(Nearest(result.class_names[c],
                                 tuple(result.paths[i] for i, _ in rows),
                                 tuple(round(s, 4) for _, s in rows)))
        nearest.append(tuple(shown))
    return AuditSummary(
        root=result.root, class_names=result.class_names, paths=result.paths,
        labels=tuple(int(v) for v in result.labels), probabilities=result.probabilities,
        findings=result.findings, nearest=tuple(nearest), problems=result.problems,
        accuracy=result.accuracy, backbone=result.backbone, image_size=result.image_size,
        seconds=dict(result.seconds))


def _split_names(dataset: Dataset) -> dict[Path, str]:
    out = {s.path: "train" for s in dataset.train}
    out.update({s.path: "validation" for s in dataset.validation})
    out.update({s.path: "test" for s in dataset.test})
    return out


def _mislabeled(fp: FeaturePass, issues: LabelIssues, probs: np.ndarray,
                labels: np.ndarray, names: tuple[str, ...]) -> list[Finding]:
    """Every image the out-of-fold head puts in another class; confident ones first."""
    out = []
    confident = set(issues.flagged.tolist())
    for i in np.flatnonzero(probs.argmax(axis=1) != labels):
        sure = int(i) in confident
        sug = int(issues.suggested[i])
        p_given, p_sug = float(probs[i, labels[i]]), float(probs[i, sug])
        out.append(Finding(
            fp.samples[i].path, "likely_mislabeled", names[labels[i]], names[sug],
            round(0.5 * (1.0 - p_given) + (0.5 if sure else 0.0), 6), None,
            "confident" if sure else "possible",
            f"{'confident' if sure else 'possible'}: out-of-fold p({names[sug]}) = "
            f"{p_sug:.2f}, p({names[labels[i]]}) = {p_given:.2f}", int(i)))
    return out


def _duplicates(fp: FeaturePass, pairs: list[DuplicatePair], labels: np.ndarray,
                splits: list[str], names: tuple[str, ...]) -> list[Finding]:
    out = []
    for p in pairs:
        a, b = p.first, p.second
        # The later name first (usually the copy), or the held-out file of a leak: the
        # one that makes the reported accuracy too good.
        if fp.samples[a].path.as_posix() < fp.samples[b].path.as_posix():
            a, b = b, a
        if labels[a] != labels[b]:
            kind = "label_conflict"
        elif splits[a] != splits[b]:
            kind = "split_leak"
            if splits[a] == "train":
                a, b = b, a
        else:
            kind = "same_class"
        what = "identical file" if p.exact else "same photo re-encoded, resized or cropped"
        where = {"split_leak": f"{splits[a]} image also in {splits[b]}",
                 "label_conflict": "in two classes", "same_class": "in one class"}[kind]
        out.append(Finding(
            fp.samples[a].path, "near_duplicate", names[labels[a]],
            names[labels[b]] if labels[a] != labels[b] else "", round(p.similarity, 6),
            fp.samples[b].path, kind,
            f"{what}, {where} (thumbnails {p.similarity:.3f}, features "
            f"{p.feature_similarity:.2f})", a, b))
    return out


def _outliers(fp: FeaturePass, scan: PairScan, labels: np.ndarray,
              names: tuple[str, ...], settings: AuditSettings) -> list[Finding]:
    out = []
    z = outlier_scores(scan.typicality)
    usual = float(np.median(scan.typicality))
    for i in range(len(labels)):
        path, given = fp.samples[i].path, names[labels[i]]
        if fp.pixel_spread[i] < settings.blank_spread:
            out.append(Finding(path, "outlier", given, "", 1.0, None, "blank",
                               f"blank frame (pixels vary by {fp.pixel_spread[i]:.1f})", i))
        elif z[i] >= settings.outlier_z:
            out.append(Finding(
                path, "outlier", given, "", round(float(z[i] / (z[i] + settings.outlier_z)), 6),
                None, "unlike_every_class",
                f"unlike every class (typicality {scan.typicality[i]:.2f}, usual "
                f"{usual:.2f})", i))
    return out


def audit_dataset(
    dataset: Dataset,
    config: TrainConfig,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    *,
    cache: PixelCache | None = None,
    folds: int | None = None,
    image_size: int | None = None,
    settings: AuditSettings | None = None,
) -> AuditResult:
    """Audits the labels of a dataset; reads it, never writes inside it.

    Args:
        dataset: a scanned dataset; train, validation and test images are all audited.
        config: the backbone, its weights and the weights folder to use.
        report: receives ``StageProgress`` (``decode``, ``features``, ``audit``).
        cancel: set it to stop; ``Cancelled`` is raised within one batch.
        cache: the pixel cache (default: the user cache folder).
        folds: overrides ``settings.folds``.
        image_size: the side images are looked at; default ``audit_image_size(config)``.
        settings: thresholds (default ``AuditSettings()``).

    Returns:
        The findings with the out-of-fold probabilities and features behind them.

    Raises:
        Cancelled: ``cancel`` was set.
        ConfigError: fewer than two classes with two readable images each.
        WeightsNotFound: the backbone's ImageNet weights are missing.
    """
    cancel = cancel or threading.Event()
    settings = settings or AuditSettings()
    if folds is not None:
        settings = AuditSettings(folds, settings.duplicate_thumbnail, settings.duplicate_feature,
                                 settings.outlier_z, settings.blank_spread, settings.head)
    if settings.folds < 2:
        raise ConfigError(f"The audit needs at least 2 folds (got {settings.folds}).")
    names = dataset.class_names
    samples = [*dataset.train, *dataset.validation, *dataset.test]
    size = audit_image_size(config, image_size)
    fp = compute_features(samples, names, config, size, cache or PixelCache(), report, cancel)
    labels = np.array([s.label for s in fp.samples], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(names))
    if (counts >= 2).sum() < 2:
        raise ConfigError("The audit needs at least two classes with two readable images "
                          "each.")
    split_of = _split_names(dataset)
    splits = [split_of[s.path] for s in fp.samples]
    t0 = time.monotonic()
    report(StageProgress("audit", 0, settings.folds + 1, "Comparing images"))
    scan = scan_pairs(fp.features, fp.thumbnails, labels, len(names),
                      settings.duplicate_thumbnail, settings.duplicate_feature, cancel)
    pairs = find_duplicates(scan, fp.features, [s.path for s in fp.samples],
                            [s.size for s in fp.samples])
    t1 = time.monotonic()

    def progress(done: int, total: int) -> None:
        report(StageProgress("audit", done + 1, total + 1, "Cross-validating the labels"))

    # Copies share a fold: a copy in the training folds would vouch for its twin.
    groups = duplicate_groups(len(labels), pairs)
    head = out_of_fold_probabilities(
        [fp.features * HEAD_INPUT_SCALE], labels, len(names), settings.folds, settings.head,
        groups, cancel, progress)
    # Half the head, half the votes of the nearest images: the two err on different
    # images (ADR 005: 17.9 against 17.0 of 20 moved photos found, on 24 draws).
    probs = (0.5 * head + 0.5 * neighbour_votes(scan.neighbours, labels, groups,
                                                len(names))).astype(np.float32)
    if cancel.is_set():
        raise Cancelled("Audit cancelled.")
    issues = find_label_issues(probs, labels)
    findings = [*_mislabeled(fp, issues, probs, labels, names),
                *_duplicates(fp, pairs, labels, splits, names),
                *_outliers(fp, scan, labels, names, settings)]
    findings.sort(key=lambda f: (-f.score, PROBLEMS.index(f.problem), f.path.as_posix()))
    seconds = {**fp.seconds, "compare": t1 - t0, "folds": time.monotonic() - t1}
    return AuditResult(
        root=dataset.root, class_names=names, paths=tuple(s.path for s in fp.samples),
        labels=labels, splits=tuple(splits), probabilities=probs, features=fp.features,
        findings=tuple(findings), problems=tuple(fp.problems),
        accuracy=float((probs.argmax(axis=1) == labels).mean()) if len(labels) else 0.0,
        backbone=config.backbone, image_size=size, folds=settings.folds, seconds=seconds)

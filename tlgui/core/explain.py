"""Heat maps of what a classifier looked at: Grad-CAM on the backbone's last block.

A tlgui classifier ends in global average pooling, dropout and one Dense layer over the
backbone's last feature map ``A`` (``h x w x k``). Grad-CAM (Selvaraju et al., 2017) weighs
each channel by the mean gradient of the class score over the map; through an average
pool and a Dense layer that gradient is the Dense weight ``W[k, c] / (h w)`` at every
position, so the Grad-CAM map is ``ReLU(sum_k W[k, c] A[:, :, k])`` up to a constant (the
CAM of Zhou et al., 2016, which Grad-CAM generalises). It is computed in closed form from
one forward pass, with no gradient tape: it works on every Keras backend, and a test
checks it against the gradient definition. The map is as coarse as the backbone's last
block (7 x 7 cells for MobileNetV2 at 224 px).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tlgui.core.atomic import atomic_path
from tlgui.core.destinations import check_folder_outside, input_folders, name_max
from tlgui.core.entries import printable
from tlgui.core.errors import Cancelled, ModelFileError, os_reason
from tlgui.core.events import Notice, Report, StageProgress, ignore
from tlgui.core.heatmap import OVERLAY_ALPHA, Grid, colourise, overlay_opacity, upsample
from tlgui.core.imageio import ImageProblem, decode_rgb
from tlgui.core.resize import resize_to_square

log = logging.getLogger(__name__)

# Longest side of a written overlay; larger photos are shown smaller.
OVERLAY_MAX_SIDE = 1024


@dataclass(frozen=True)
class Explanation:
    """Where the model looked for one image.

    Attributes:
        heatmap: ``[h, w]`` float32 in 0..1 over the backbone's last feature grid; row 0
            is the top of the image (as resized to a square for the model).
        class_index: the class explained.
        class_name: its name.
        probability: the model's probability of that class for the image.
        grid: where the map's cells sit on the model's input.
    """

    heatmap: np.ndarray
    class_index: int
    class_name: str
    probability: float
    grid: Grid

    def upsampled(self, width: int, height: int) -> np.ndarray:
        """The map over a ``width x height`` image (as ``overlay`` draws it)."""
        return upsample(self.heatmap, self.grid, width, height)

    def peak(self, width: int, height: int) -> tuple[int, int]:
        """(x, y) of the hottest pixel of the map over a ``width x height`` image."""
        up = self.upsampled(width, height)
        y, x = np.unravel_index(int(up.argmax()), up.shape)
        return int(x), int(y)


class Explainer:
    """Grad-CAM for a tlgui classifier (built by ``model.py`` or loaded from ``.keras``).

    Raises:
        ModelFileError: the model does not end in pool -> dropout -> Dense ``classifier``
            over a layer named ``backbone``, so the map cannot be computed.
    """

    def __init__(self, model: Any, class_names: Sequence[str], image_size: int) -> None:
        import keras

        self.class_names = tuple(class_names)
        self.image_size = int(image_size)
        names = [layer.name for layer in model.layers]
        if "mirror_average" in names:
            raise ModelFileError(
                "This model averages each image with its mirror (it was exported with "
                "test-time augmentation); heat maps need the model without it, such as "
                "the run's model.keras.")
        try:
            pool, dense = model.get_layer("pool"), model.get_layer("classifier")
            model.get_layer("backbone")
        except ValueError as exc:
            raise ModelFileError(
                "This model has no 'backbone', 'pool' and 'classifier' layers; heat maps "
                "need a classifier made by tlgui.") from exc
        between = names[names.index("pool") + 1:names.index("classifier")]
        if type(pool).__name__ != "GlobalAveragePooling2D" or \
                any(not n.startswith("dropout") for n in between) or \
                names.index("classifier") != len(names) - 1:
            raise ModelFileError("The model's head is not average pool -> dropout -> Dense; "
                                 "its heat map cannot be computed.")
        self._kernel = np.asarray(keras.ops.convert_to_numpy(dense.kernel), np.float32)
        shape = pool.input.shape
        self.grid = Grid.even(self.image_size, int(shape[1]), int(shape[2]))
        # The backbone's output as the outer graph sees it, and the probabilities.
        self._net = keras.Model(model.inputs, [pool.input, model.outputs[0]],
                                name="explain")

    @classmethod
    def of(cls, classifier: Any) -> Explainer:
        """For a ``ClassifierModel`` or a ``predict.LoadedClassifier``."""
        return cls(classifier.model, classifier.class_names, classifier.image_size)

    def explain(self, pixels: np.ndarray, classes: Sequence[int] | None = None
                ) -> list[Explanation]:
        """Heat maps for a batch of ``uint8 [n, S, S, 3]`` images at the model's size.

        Args:
            pixels: the images, as ``predict.load_image`` gives them.
            classes: the class to explain per image; default each image's top class.
        """
        import keras

        fmap, probs = self._net.predict_on_batch([np.asarray(pixels, dtype=np.uint8)])
        fmap = np.asarray(keras.ops.convert_to_numpy(fmap), np.float32)
        probs = np.asarray(keras.ops.convert_to_numpy(probs), np.float32)
        out = []
        for i in range(len(fmap)):
            c = int(probs[i].argmax()) if classes is None else int(classes[i])
            cam = np.maximum(fmap[i] @ self._kernel[:, c], 0.0)
            top = float(cam.max())
            heat = (cam / top if top > 0 else cam).astype(np.float32)
            out.append(Explanation(heat, c, self.class_names[c], float(probs[i, c]),
                                   self.grid))
        return out


def overlay(image: np.ndarray, explanation: Explanation,
            alpha: float = OVERLAY_ALPHA) -> Image.Image:
    """The image with its heat map laid over it, hotter parts more opaque.

    Args:
        image: ``uint8 [H, W, 3]``, any size and aspect (the model squashed it to a
            square, so the map stretches back over it exactly).
        explanation: from ``Explainer.explain`` for this image.
        alpha: opacity of the hottest parts.
    """
    h, w = image.shape[:2]
    up = explanation.upsampled(w, h)
    weight = overlay_opacity(up, alpha)[..., None]
    mixed = image.astype(np.float32) * (1 - weight) + colourise(up) * weight
    return Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8), "RGB")


# Room kept in a name for a `` (n)`` suffix when the name is taken.
_SUFFIX_ROOM = len(" (99999).png")


def _fit(text: str, limit: int) -> str:
    """``text`` cut (at a character) to at most ``limit`` bytes as a file name."""
    while text and len(os.fsencode(text)) > limit:
        text = text[:-1]
    return text


def png_stem(image_name: str, class_folder: str, limit: int) -> str:
    """``<image name>.<class>``, the image name shortened so that the file name with a
    `` (n).png`` suffix fits ``limit`` bytes (an image named near the limit would
    otherwise get no heat map)."""
    tail = _fit(f".{class_folder}", limit // 2)
    return _fit(image_name, limit - _SUFFIX_ROOM - len(os.fsencode(tail))) + tail


def _free_png(folder: Path, stem: str, taken: set[Path]) -> Path:
    target = folder / f"{stem}.png"
    n = 2
    while target in taken or target.exists() or target.is_symlink():
        target = folder / f"{stem} ({n}).png"
        n += 1
    taken.add(target)
    return target


def check_explain_destination(dest: str | Path, inputs: Iterable[str | Path]) -> Path:
    """Checks a heat-map folder before any work, as every destination is.

    It may not be, hold or lie inside an input folder (the folder of an input file
    counts as one); it must be a folder, or be creatable, and writable; its name must
    fit the file system.

    Raises:
        UnsafeDestination: writing there would change a folder being classified, or
            ``dest`` is a file (it is a ``ConfigError`` too).
        WriteError: it cannot be written (read-only, a file in its path...).
    """
    return check_folder_outside(dest, input_folders(inputs), "heat-map folder")


def write_explanations(explainer: Explainer, paths: Sequence[Path], dest: str | Path,
                       report: Report = ignore, cancel: threading.Event | None = None,
                       batch_size: int = 16) -> list[Path]:
    """Writes one overlay PNG per image into ``dest``, never replacing a file.

    Each is named ``<image name>.<class>.png`` (a free name when taken, the image name
    shortened when too long) and shows the top class's heat map over the image (at most
    ``OVERLAY_MAX_SIDE`` px). A file that cannot be read, or whose heat map cannot be
    written, is skipped with a ``Notice`` and the others go on.

    Returns:
        The files written, in the order of ``paths``.

    Raises:
        Cancelled: ``cancel`` was set (the files written so far are complete).
    """
    from tlgui.core.sorting import safe_folder_name

    cancel = cancel or threading.Event()
    folder = Path(dest).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    taken: set[Path] = set()
    size = explainer.image_size
    limit = name_max(folder)
    for start in range(0, len(paths), batch_size):
        if cancel.is_set():
            raise Cancelled("Heat maps cancelled; the files written so far are complete.")
        chunk, shown = [], []
        for p in paths[start:start + batch_size]:
            try:
                full = decode_rgb(p, draft_size=OVERLAY_MAX_SIDE)
            except ImageProblem as exc:
                report(Notice("warning", f"No heat map for {printable(p)}: {exc.reason}"))
                continue
            chunk.append(p)
            shown.append(full)
        if not chunk:
            continue
        maps = explainer.explain(np.stack([resize_to_square(x, size) for x in shown]))
        for p, full, e in zip(chunk, shown, maps, strict=True):
            img = overlay(full, e)
            img.thumbnail((OVERLAY_MAX_SIDE, OVERLAY_MAX_SIDE))
            stem = png_stem(p.name, safe_folder_name(e.class_name), limit)
            target = _free_png(folder, stem, taken)
            try:
                with atomic_path(target) as tmp:
                    img.save(tmp, "PNG")
            except OSError as exc:  # one file must not cost the others their heat maps
                log.warning("cannot write %s: %s", target, exc)
                report(Notice("warning", f"No heat map for {printable(p)}: cannot write "
                                         f"{printable(target)}: {os_reason(exc)}"))
                continue
            written.append(target)
        report(StageProgress("explain", min(start + batch_size, len(paths)), len(paths),
                             "Drawing heat maps"))
    return written

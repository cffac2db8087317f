"""The engine's operations for reviewing labels: the audit, nearest images, heat maps.

``audit`` runs ``core.audit`` on the window's dataset (its corrections applied) and sends
back an ``AuditSummary``: the findings with the nearest images per finding, computed
here, so the feature matrix never crosses the pipe. ``neighbours`` finds the nearest
images of given classes for any images (the Evaluate tab's mistakes, new images being
labelled) from the same frozen features, kept for the last dataset. ``explain`` computes
Grad-CAM grids (``core.explain``) with the session's model or a loaded predictor; the
window upsamples and blends them.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tlgui.core.audit_findings import Nearest
from tlgui.core.config import TrainConfig
from tlgui.core.dataset import Dataset, Sample
from tlgui.core.errors import Cancelled
from tlgui.core.events import Report, StageProgress
from tlgui.core.heatmap import HeatMap
from tlgui.engine import codec

if TYPE_CHECKING:
    from tlgui.engine.handlers import Handler, Handlers

NEAREST_K = 6
EXPLAIN_BATCH = 16


def _pixel_cache(params: dict[str, Any]) -> Any:
    from tlgui.core.pixel_cache import PixelCache

    limit = params.get("cache_limit")
    limit = limit if isinstance(limit, int) and limit >= 0 else None
    return PixelCache(Path(params["cache_dir"]) / "pixels", limit=limit) \
        if params.get("cache_dir") else PixelCache(limit=limit)


def _samples_key(samples: list[Sample], config: TrainConfig, size: int) -> str:
    h = hashlib.sha1(f"{config.backbone}|{config.weights}|{config.weights_dir}|{size}".encode())
    for s in samples:
        h.update(f"{s.path}|{s.size}|{s.mtime_ns}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class ReviewHandlers:
    """The review operations; they share the engine's datasets and models."""

    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers
        # The features of the last images looked at (one set: a dataset's worth).
        self._features: tuple[str, tuple[Path, ...], np.ndarray] | None = None
        self._explainer: tuple[object, Any] | None = None
        self.methods: dict[str, Handler] = {"audit": self.audit, "neighbours": self.neighbours,
                                            "explain": self.explain}

    # -- the audit ------------------------------------------------------------------------
    def audit(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        """Audits the dataset the call names; returns ``audit_summary_to_data``."""
        from tlgui.core.audit import audit_dataset, summarize
        from tlgui.core.audit_features import audit_image_size

        ds = self.handlers.dataset(params["dataset"], report, cancel)
        config = TrainConfig.from_dict(params["config"])
        size = audit_image_size(config, params.get("image_size"))
        result = audit_dataset(ds, config, report, cancel, cache=_pixel_cache(params),
                               image_size=size)
        samples = [*ds.train, *ds.validation, *ds.test]
        self._features = (_samples_key(samples, config, size), result.paths, result.features)
        report(StageProgress("audit", 1, 1, "Finding the nearest images"))
        return codec.audit_summary_to_data(summarize(result, int(params.get("k", NEAREST_K))))

    # -- nearest images -------------------------------------------------------------------
    def _features_for(self, samples: list[Sample], ds: Dataset, config: TrainConfig,
                      size: int, params: dict[str, Any], report: Report,
                      cancel: threading.Event) -> tuple[tuple[Path, ...], np.ndarray]:
        from tlgui.core.audit_features import compute_features

        key = _samples_key(samples, config, size)
        if self._features is not None and self._features[0] == key:
            return self._features[1], self._features[2]
        fp = compute_features(samples, ds.class_names, config, size, _pixel_cache(params),
                              report, cancel)
        paths = tuple(s.path for s in fp.samples)
        self._features = (key, paths, fp.features)
        return paths, fp.features

    def neighbours(self, params: dict[str, Any], report: Report,
                   cancel: threading.Event) -> Any:
        """The nearest images of some classes, for each query image.

        Params: ``dataset`` (a ref), ``config``, ``queries`` (``[path, [class, ...]]``,
        a path inside the dataset or not), ``k``, ``cache_dir``. Returns
        ``nearest_to_data``: per query, per class, paths and similarities (empty for an
        image that could not be read).
        """
        from tlgui.core.audit_features import audit_image_size
        from tlgui.core.similarity import nearest_of_class

        ds = self.handlers.dataset(params["dataset"], report, cancel)
        config = TrainConfig.from_dict(params["config"])
        size = audit_image_size(config, params.get("image_size"))
        samples = [*ds.train, *ds.validation, *ds.test]
        known = {s.path for s in samples}
        queries = [(Path(str(p)), [str(c) for c in classes]) for p, classes in params["queries"]]
        for path, _ in queries:
            if path not in known:
                try:
                    st = path.stat()
                except OSError:
                    continue
                samples.append(Sample(path, 0, st.st_size, st.st_mtime_ns))
                known.add(path)
        paths, feats = self._features_for(samples, ds, config, size, params, report, cancel)
        if cancel.is_set():
            raise Cancelled("Finding the nearest images was cancelled.")
        label_of = {s.path: s.label for s in (*ds.train, *ds.validation, *ds.test)}
        labels = np.array([label_of.get(p, -1) for p in paths], dtype=np.int64)
        row_of = {p: i for i, p in enumerate(paths)}
        k = int(params.get("k", NEAREST_K))
        out: list[tuple[Nearest, ...]] = []
        for path, classes in queries:
            row = row_of.get(path)
            per = []
            for name in classes:
                if row is None or name not in ds.class_names:
                    per.append(Nearest(name, (), ()))
                    continue
                hits = nearest_of_class(feats, labels, row, ds.class_names.index(name), k)
                per.append(Nearest(name, tuple(paths[i] for i, _ in hits),
                                   tuple(round(s, 4) for _, s in hits)))
            out.append(tuple(per))
        return codec.nearest_to_data(out)

    # -- heat maps --------------------------------------------------------------------------
    def _explainer_for(self, params: dict[str, Any], report: Report) -> tuple[Any, Any]:
        """(the explainer, the lock to hold while it runs) of the model a call names: the
        run's (the engine's model, shared with training), or a loaded predictor's. The
        last explainer is kept, rebuilt when the model changed."""
        from tlgui.core.explain import Explainer
        from tlgui.core.predict import Predictor

        source = params["model"]
        if source.get("predictor"):
            h = self.handlers
            predictor = h.predictors.get(str(source["predictor"]))
            if predictor is None:  # a new engine: load the same file again
                predictor = Predictor.load(Path(source["path"]),
                                           mirror=source.get("mirror") == "yes")
                h.predictors = {str(source["predictor"]): predictor}
            owner: object = predictor.loaded
            if self._explainer is None or self._explainer[0] is not owner:
                self._explainer = (owner, Explainer.of(predictor.loaded))
            return self._explainer[1], contextlib.nullcontext()
        with self.handlers.model_lock:
            cm = self.handlers._model_for({"run": source.get("run")}, report)
            if self._explainer is None or self._explainer[0] is not cm:
                self._explainer = (cm, Explainer.of(cm))
            return self._explainer[1], self.handlers.model_lock

    def explain(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        """Heat maps of what a model looked at, one per image (``heatmap_to_data``).

        Params: ``model`` (``{"run": path}`` for the session's model, or
        ``{"predictor": id, "path": file}``) and ``paths``. A file that cannot be read
        gets a map with its error; ``cancel`` is checked between batches.
        """
        from tlgui.core.imageio import ImageProblem
        from tlgui.core.predict import load_image

        explainer, lock = self._explainer_for(params, report)
        paths = [Path(str(p)) for p in params["paths"]]
        out: list[dict[str, Any]] = []
        for start in range(0, len(paths), EXPLAIN_BATCH):
            if cancel.is_set():
                raise Cancelled("Heat maps cancelled.")
            ok, pixels = [], []
            for p in paths[start:start + EXPLAIN_BATCH]:
                try:
                    pixels.append(load_image(p, explainer.image_size))
                    ok.append(p)
                except ImageProblem as exc:
                    out.append(codec.heatmap_to_data(HeatMap(p, np.zeros((0, 0)),
                                                             error=exc.reason)))
            if ok:
                with lock:
                    maps = explainer.explain(np.stack(pixels))
                out += [codec.heatmap_to_data(HeatMap(p, e.heatmap, e.class_name,
                                                      round(e.probability, 4)))
                        for p, e in zip(ok, maps, strict=True)]
            report(StageProgress("explain", min(start + EXPLAIN_BATCH, len(paths)), len(paths),
                                 "Drawing heat maps"))
        return out

"""The engine's operations: what the window can ask for, and the state they share.

Each operation takes JSON-ready ``params``, a ``report`` callback and a ``cancel`` event,
and returns JSON-ready data (``codec``). The engine keeps the datasets it scanned (by a
token), the model the window is working on, and loaded predictors.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlgui.core.atomic import atomic_write_json
from tlgui.core.config import PhaseConfig, SplitConfig, TrainConfig
from tlgui.core.dataset import Dataset, scan
from tlgui.core.errors import Cancelled, ModelFileError, RecompileRequired, TlguiError
from tlgui.core.events import Report, StageProgress
from tlgui.core.outcomes import ModelInfo, TrainSummary
from tlgui.core.runs import EVALUATION_FILE, TEST_EVALUATION_FILE
from tlgui.engine import codec

if TYPE_CHECKING:
    from tlgui.core.model import ClassifierModel
    from tlgui.engine.server import Server

KEPT_DATASETS = 4


def _limit(params: dict[str, Any]) -> int | None:
    """The cache limit the window sent (None: the engine's own setting or the default)."""
    value = params.get("cache_limit")
    return value if isinstance(value, int) and value >= 0 else None
Handler = Callable[[dict[str, Any], Report, threading.Event], Any]


class Handlers:
    """The operations and the engine's state."""

    def __init__(self, server: Server | None = None) -> None:
        self.server = server
        self.datasets: OrderedDict[str, Dataset] = OrderedDict()
        self.model: ClassifierModel | None = None
        self.info: ModelInfo | None = None
        self.model_lock = threading.Lock()
        self.predictors: dict[str, Any] = {}
        self.methods: dict[str, Handler] = {
            "ping": self.ping, "scan": self.scan, "fetch_sample": self.fetch_sample,
            "build": self.build, "recompile": self.recompile, "train": self.train,
            "evaluate": self.evaluate, "export": self.export, "open_run": self.open_run,
            "load_predictor": self.load_predictor, "predict": self.predict,
        }
        from tlgui.engine.review_handlers import ReviewHandlers

        self.review = ReviewHandlers(self)
        self.methods.update(self.review.methods)
        self.keras_methods = set(self.methods) - {"ping", "scan"}

    def run(self, method: str, params: dict[str, Any], report: Report,
            cancel: threading.Event) -> Any:
        """Runs one operation by name."""
        handler = self.methods.get(method)
        if handler is None:
            raise TlguiError(f"The engine has no operation '{method}'.")
        if method in self.keras_methods and self.server is not None:
            self.server.need_keras()
        return handler(params, report, cancel)

    # -- datasets ---------------------------------------------------------------------
    def ping(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        import os

        return {"pid": os.getpid()}

    def scan(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        split = SplitConfig(**params.get("split", {}))
        ds = scan(Path(params["root"]), split, report, cancel)
        token = uuid.uuid4().hex
        self._keep(token, ds)
        return codec.dataset_to_data(ds, token)

    def _keep(self, token: str, ds: Dataset) -> None:
        self.datasets[token] = ds
        while len(self.datasets) > KEPT_DATASETS:
            self.datasets.popitem(last=False)

    def dataset(self, ref: dict[str, Any], report: Report, cancel: threading.Event) -> Dataset:
        """The dataset a call names: kept from a scan, or scanned again (a new engine),
        with the user's corrections applied when the call carries them."""
        from tlgui.core.corrections import Corrections, apply_corrections

        ds = self.datasets.get(str(ref.get("token")))
        if ds is None:
            split = SplitConfig(**ref.get("split", {}))
            ds = scan(Path(ref["root"]), split, report, cancel)
            self._keep(str(ref.get("token")), ds)
        if ref.get("corrections"):
            # The window owns the list (it is saved in the window's data folder): it
            # comes with every call, so the engine never reads a stale copy.
            corrections = Corrections.from_dict(ds.root.absolute(), ref["corrections"],
                                                Path(ref["root"]))
            ds = apply_corrections(ds, corrections)
        return ds

    def fetch_sample(self, params: dict[str, Any], report: Report,
                     cancel: threading.Event) -> Any:
        from tlgui.core.tfds_fetch import fetch_dataset

        return str(fetch_dataset(params["name"], Path(params["dest"]), report=report,
                                 cancel=cancel))

    # -- the model --------------------------------------------------------------------
    def _describe(self, cm: ClassifierModel, config: TrainConfig, trained: bool,
                  run: Path | None) -> dict[str, Any]:
        from tlgui.core.layer_tree_keras import build_layer_tree, read_flags

        self.info = ModelInfo(cm.class_names, cm.image_size, cm.backbone_name, config,
                              build_layer_tree(cm.model), read_flags(cm.model), trained, run)
        return codec.model_info_to_data(self.info)

    def _build(self, config: TrainConfig, class_names: tuple[str, ...],
               flags: Any, report: Report) -> ClassifierModel:
        from tlgui.core.layer_tree_keras import apply_flags
        from tlgui.core.model import ClassifierModel

        report(StageProgress("build", 0, 0, f"Building {config.backbone}…"))
        cm = ClassifierModel.build(config, class_names)
        cm.set_fine_tune_at(config.fine_tune_at)
        if flags:
            try:
                apply_flags(cm.model, codec.flags_from_data(flags))
            except KeyError:  # ticks of another backbone: keep the default start
                cm.set_fine_tune_at(config.fine_tune_at)
        cm.compile(config.phase2, config.label_smoothing)
        return cm

    def build(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        config = TrainConfig.from_dict(params["config"])
        names = tuple(str(n) for n in params["class_names"])
        with self.model_lock:
            cm = self._build(config, names, params.get("flags"), report)
            if cancel.is_set():
                raise Cancelled("Building the model was cancelled.")
            self.model = cm
            return self._describe(cm, config, False, None)

    def recompile(self, params: dict[str, Any], report: Report,
                  cancel: threading.Event) -> Any:
        from tlgui.core.layer_tree_keras import apply_flags, read_flags

        with self.model_lock:
            cm = self._current()
            apply_flags(cm.model, codec.flags_from_data(params["flags"]))
            cm.compile(PhaseConfig(**params["phase"]), float(params.get("label_smoothing", 0)))
            return codec.flags_to_data(read_flags(cm.model))

    def _current(self) -> ClassifierModel:
        if self.model is None:
            raise ModelFileError("The engine holds no model: build or open one first.")
        return self.model

    # -- training and evaluation ---------------------------------------------------------
    def train(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        from tlgui.core.layer_tree_keras import apply_flags
        from tlgui.core.pixel_cache import PixelCache
        from tlgui.core.training import run_training

        flags = codec.flags_from_data(params["flags"])
        if flags != codec.flags_from_data(params.get("compiled_flags", params["flags"])):
            raise RecompileRequired("Trainable layers changed since the model was compiled; "
                                    "recompile the model before training.")
        # The device count belongs to this machine, not to the run the settings were
        # loaded from (a server's --devices 4 would be refused here): the window's own.
        config = TrainConfig.from_dict(params["config"]).replace(
            devices=str(params.get("devices", "1")))
        ds = self.dataset(params["dataset"], report, cancel)
        cache = PixelCache(Path(params["cache_dir"]) / "pixels",
                           limit=_limit(params)) if params.get("cache_dir") else None
        run_root = Path(params["data_dir"]) / "runs" if params.get("data_dir") else None
        with self.model_lock:
            # Every run starts from the pre-trained backbone and a new head: runs stay
            # comparable, and training twice never silently continues the last run.
            cm = self._build(config, ds.class_names, params["flags"], report)
            self.model = cm
            result = run_training(ds, config, report, cancel, model=cm, use_model_trainable=True,
                                  cache=cache, run_root=run_root)
            apply_flags(cm.model, flags)  # phase 1 froze the backbone; show the user's ticks
            cm.compile(config.phase2, config.label_smoothing)
            summary = TrainSummary(
                history=result.history, run=result.run.path if result.run else None,
                phase_seconds=result.phase_seconds, phase_accuracy=result.phase_accuracy,
                decode_seconds=result.decode_seconds, cancelled=result.cancelled,
                problems=result.dataset.problems[len(ds.problems):],
                model_saved=bool(result.run and result.run.model_path.is_file()))
            data = codec.summary_to_data(summary)
            data["model"] = self._describe(cm, config, summary.trained, summary.run)
        if result.cancelled:
            exc = Cancelled("Training cancelled.")
            exc.partial = data  # type: ignore[attr-defined]
            raise exc
        return data

    def evaluate(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        from tlgui.core.evaluate import evaluate_model
        from tlgui.core.metrics import evaluation_to_data
        from tlgui.core.pixel_cache import PixelCache

        ds = self.dataset(params["dataset"], report, cancel)
        split = params.get("split") or ("validation" if ds.validation else "test")
        cache = PixelCache(Path(params["cache_dir"]) / "pixels",
                           limit=_limit(params)) if params.get("cache_dir") else None
        with self.model_lock:
            cm = self._model_for(params, report)
            ev = evaluate_model(cm.model, cm.image_size, ds, split, cache=cache, report=report,
                                cancel=cancel, mirror=params.get("mirror") is True)
        data = evaluation_to_data(ev)
        run = params.get("run")
        if run:
            try:
                # Only test/ measured beside validation images has a file of its own.
                name = TEST_EVALUATION_FILE if params.get("split") == "test" and ds.validation \
                    else EVALUATION_FILE
                atomic_write_json(Path(run) / name, data)
            except OSError as exc:
                report_notice(report, f"Cannot save the evaluation in {run}: {exc}")
        return data

    def export(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        from tlgui.core.export import export_model
        from tlgui.core.export_files import check_export_target

        out, overwrite = Path(params["out"]), bool(params.get("overwrite"))
        # Checked again here: the window asked, but files may have come since.
        check_export_target(params["format"], out, overwrite=overwrite,
                            inputs=[Path(p) for p in params.get("protected") or ()])
        with self.model_lock:
            cm = self._model_for(params, report)
            written = export_model(cm.model, cm.class_names, cm.image_size, params["format"],
                                   out, report, cancel, extra={"backbone": cm.backbone_name},
                                   overwrite=overwrite, mirror=params.get("mirror") is True)
        return [str(p) for p in written]

    def open_run(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        with self.model_lock:
            self._open(Path(params["run"]), report)
            assert self.info is not None
            return codec.model_info_to_data(self.info)

    def _open(self, run: Path, report: Report) -> ClassifierModel:
        """Loads a run's model with its ticks as the current model (lock held)."""
        from tlgui.core.layer_tree_keras import apply_flags
        from tlgui.core.model import ClassifierModel
        from tlgui.core.predict import load_classifier
        from tlgui.core.runs import load_config, load_layers

        report(StageProgress("load", 0, 0, f"Opening the run {run.name}…"))
        try:
            config = load_config(run)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelFileError(f"The run {run} has no readable settings (config.json): "
                                 f"{exc}") from exc
        loaded = load_classifier(run)
        cm = ClassifierModel.from_model(loaded.model, loaded.class_names,
                                        str(loaded.meta.get("backbone", config.backbone)),
                                        loaded.image_size)
        flags = load_layers(run)
        if flags:
            try:
                apply_flags(cm.model, flags)
            except KeyError:
                flags = ()
        if not flags:
            cm.set_fine_tune_at(config.fine_tune_at)
        cm.compile(config.phase2, config.label_smoothing)
        self.model = cm
        self._describe(cm, config, True, run)
        return cm

    def _model_for(self, params: dict[str, Any], report: Report) -> ClassifierModel:
        """The model a call means: the run it names (opened again if needed), else the
        current one (lock held)."""
        run = params.get("run")
        if run and (self.model is None or self.info is None or self.info.run != Path(run)):
            return self._open(Path(run), report)
        return self._current()

    # -- prediction -----------------------------------------------------------------------
    def load_predictor(self, params: dict[str, Any], report: Report,
                       cancel: threading.Event) -> Any:
        from tlgui.core.predict import Predictor

        path = Path(params["path"])
        report(StageProgress("load", 0, 0, f"Loading {path.name}…"))
        predictor = Predictor.load(path, mirror=params.get("mirror") is True)
        key = uuid.uuid4().hex
        self.predictors = {key: predictor}  # one at a time: the window shows one model
        return {"id": key, "class_names": list(predictor.class_names),
                "image_size": predictor.image_size, "path": str(predictor.path),
                "mirror": predictor.mirror}

    def predict(self, params: dict[str, Any], report: Report, cancel: threading.Event) -> Any:
        from tlgui.core.predict import Predictor

        predictor = self.predictors.get(str(params.get("id")))
        if predictor is None:  # a new engine: load the same file again, as it was loaded
            predictor = Predictor.load(Path(params["path"]), mirror=params.get("mirror") is True)
            self.predictors = {str(params.get("id")): predictor}
        paths = [Path(p) for p in params["paths"]]
        rows = predictor.predict_paths(paths, int(params.get("top_k", 3)), report, cancel,
                                       batch_size=int(params.get("batch_size", 32)))
        return [codec.prediction_to_data(r) for r in rows]


def report_notice(report: Report, message: str) -> None:
    """Tells the window about something it should show, without failing the call."""
    from tlgui.core.events import Notice

    report(Notice("warning", message))

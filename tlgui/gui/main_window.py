"""The main window: composes the panels and wires their signals; it holds no logic."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QTabWidget, QToolBar

from tlgui.core.events import StageProgress
from tlgui.gui import dialogs, jobs
from tlgui.gui.audit_panel import AuditPanel
from tlgui.gui.clipboard import clipboard_paths
from tlgui.gui.dataset_panel import DatasetPanel
from tlgui.gui.engine_host import EngineHost
from tlgui.gui.engine_settings import (
    BACKEND_KEY,
    DEVICE_KEY,
    DEVICES_KEY,
    EngineSettingsDialog,
    saved_backend,
    saved_device,
    saved_devices,
)
from tlgui.gui.evaluate_panel import EvaluatePanel
from tlgui.gui.icons import icon
from tlgui.gui.model_panel import ModelPanel
from tlgui.gui.predict_panel import PredictPanel, local_paths
from tlgui.gui.review_controller import ReviewController
from tlgui.gui.runs_panel import RunsPanel
from tlgui.gui.session import Session
from tlgui.gui.settings import (
    app_settings,
    last_dataset,
    last_run_of,
    load_config,
    recent_datasets,
    save_config,
)
from tlgui.gui.thumbnails import ThumbnailCache
from tlgui.gui.training_panel import TrainingPanel
from tlgui.gui.workers import stop_all

log = logging.getLogger(__name__)
DATA, MODEL, TRAIN, EVALUATE, AUDIT, PREDICT, RUNS = range(7)


class MainWindow(QMainWindow):
    """Data, Model, Train, Evaluate, Audit, Predict and Runs tabs over one ``Session``."""

    def __init__(self, settings: QSettings | None = None, restore_last: bool = False,
                 engine: EngineHost | None = None) -> None:
        super().__init__()
        self.setWindowTitle("tlgui: train an image classifier")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.settings = settings or app_settings()
        self.restore_last = restore_last
        # A window given an engine (tests share one) leaves it running when it closes.
        self.owns_engine = engine is None
        self.engine = engine or EngineHost(saved_backend(self.settings), parent=self,
                                           device=saved_device(self.settings))
        self.thumbnails = ThumbnailCache(parent=self)
        self._sync_queued = False
        self.session = Session(self.settings, self.engine, self)
        self.dataset_panel = DatasetPanel(self.thumbnails)
        self.model_panel = ModelPanel(load_config(self.settings), self.settings)
        self.training_panel = TrainingPanel()
        self.evaluate_panel = EvaluatePanel(self.thumbnails)
        self.predict_panel = PredictPanel(self.thumbnails, self.engine, self.settings)
        self.runs_panel = RunsPanel()
        self.session.config_source = self.model_panel.config
        self.review = ReviewController(self.session, self.engine, self.thumbnails, self)
        self.audit_panel = AuditPanel(self.review)
        self.dataset_panel.add_banner(self.review.corrections_bar())

        self.tabs = QTabWidget()
        for panel, name, ic in ((self.dataset_panel, "Data", "dataset"),
                                (self.model_panel, "Model", "model"),
                                (self.training_panel, "Train", "train"),
                                (self.evaluate_panel, "Evaluate", "evaluate"),
                                (self.audit_panel, "Audit", "audit"),
                                (self.predict_panel, "Predict", "predict"),
                                (self.runs_panel, "Runs", "runs")):
            self.tabs.addTab(panel, icon(ic), name)
        self.setCentralWidget(self.tabs)
        self._make_actions()
        self.compute_label = QLabel(self.engine.status)
        self.compute_label.setToolTip("The engine is the separate process that trains, "
                                      "evaluates, exports and predicts, so that the window "
                                      "never waits for it. It says what training runs on.")
        self.statusBar().addPermanentWidget(self.compute_label)
        self.engine.state_changed.connect(self._on_engine_state)
        self._wire()
        self.dataset_panel.set_recent(recent_datasets(self.settings))
        self._restore_layout()
        self.update_actions()

    # -- composition --------------------------------------------------------------
    def _make_actions(self) -> None:
        bar = QToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(bar)

        def action(name: str, text: str, slot: Any, shortcut: str | None = None) -> QAction:
            act = QAction(icon(name), text, self)
            act.triggered.connect(slot)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            bar.addAction(act)
            return act

        self.open_action = action("open", "Open dataset…", self.dataset_panel.choose_folder,
                                  "Ctrl+O")
        self.sample_action = action("sample", "Sample data…", self.open_sample_dialog)
        bar.addSeparator()
        self.train_action = action("train", "Train", self.session.start_training, "Ctrl+T")
        self.cancel_action = action("cancel", "Cancel", self.session.cancel_training)
        bar.addSeparator()
        self.export_action = action("export", "Export…", self.open_export_dialog, "Ctrl+E")
        bar.addSeparator()
        self.engine_action = action("engine", "Engine…", self.open_engine_settings)
        self.engine_action.setToolTip("Choose the backend the engine process trains with; "
                                      "see and clear the decoded-image cache")
        paste = QAction("Paste images to classify", self)  # Ctrl+V anywhere; not on the bar
        paste.setShortcut(QKeySequence(QKeySequence.StandardKey.Paste))
        paste.triggered.connect(self.paste)
        self.addAction(paste)

    def _wire(self) -> None:
        s, dp, mp, tp = self.session, self.dataset_panel, self.model_panel, self.training_panel
        dp.open_requested.connect(s.open_dataset)
        dp.sample_requested.connect(self.open_sample_dialog)
        s.dataset_changed.connect(dp.show_dataset)
        s.dataset_changed.connect(lambda _ds: dp.set_recent(recent_datasets(self.settings)))
        s.dataset_changed.connect(lambda _ds: self.evaluate_panel.clear())
        s.dataset_changed.connect(lambda ds: self.predict_panel.set_dataset_root(ds.root))
        s.dataset_corrected.connect(dp.show_corrected)
        self.predict_panel.dataset_offered.connect(self.open_dataset)
        self._wire_review()
        s.model_changed.connect(mp.layers.set_built)
        s.model_error.connect(mp.show_model_error)
        # Seen from every tab: Train stays disabled until this is dealt with.
        s.model_error.connect(lambda text: self.statusBar().showMessage(
            f"Training is not possible yet: {text.split('. ')[0].rstrip('.')}. Details and "
            "choices on the Model tab."))
        s.model_state_changed.connect(self._sync_layers)
        s.busy_changed.connect(lambda _b: self._sync_layers())
        mp.layers.toggled.connect(s.set_trainable)
        mp.layers.block_toggled.connect(s.set_block_trainable)
        mp.layers.fine_tune_chosen.connect(s.set_fine_tune_at)
        mp.layers.recompile_requested.connect(s.recompile)
        mp.layers.rebuild_requested.connect(s.request_build)
        mp.model_settings_changed.connect(s.request_build)
        mp.settings_changed.connect(self._settings_changed)
        tp.start_requested.connect(s.start_training)
        tp.cancel_requested.connect(s.cancel_training)
        s.training_started.connect(tp.training_started)
        s.training_started.connect(lambda _c: self.tabs.setCurrentIndex(TRAIN))
        s.training_event.connect(tp.handle_event)
        s.training_finished.connect(tp.training_finished)
        s.training_finished.connect(self._on_training_finished)
        s.evaluation_ready.connect(self.evaluate_panel.show_evaluation)
        s.evaluation_ready.connect(self._show_mirror_state)
        s.test_ready.connect(self.evaluate_panel.show_test)
        for gone in (s.training_started, s.run_opened):  # the test figure was another model's
            gone.connect(lambda *_a: self.evaluate_panel.test_line.hide())
        s.config_loaded.connect(mp.set_config)
        s.run_opened.connect(self._on_run_opened)
        self.evaluate_panel.evaluate_requested.connect(s.start_evaluation)
        self.evaluate_panel.history_source = s.validation_history
        self.evaluate_panel.cross_validation_source = s.cross_validation
        self.evaluate_panel.mirror_box.toggled.connect(self._mirror_evaluation)
        for source in (s, self.predict_panel, self.review):
            source.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
            source.error.connect(lambda title, exc: dialogs.show_error(self, title, exc))
        s.progress.connect(self._show_progress)
        self._wire_runs()
        for sig in (s.busy_changed, s.model_state_changed, s.dataset_changed, s.model_changed):
            sig.connect(lambda *_: self.update_actions())

    def _wire_runs(self) -> None:
        s, rp = self.session, self.runs_panel
        rp.open_requested.connect(self.open_run)
        rp.train_again_requested.connect(self.train_again)
        rp.error.connect(lambda title, exc: dialogs.show_error(self, title, exc))
        s.config_loaded.connect(lambda _c: self._settings_changed())
        s.dataset_changed.connect(lambda ds: rp.set_dataset(ds.root))
        s.training_finished.connect(lambda *_: rp.refresh())
        for sig in (s.model_changed, s.model_state_changed):
            sig.connect(lambda *_: rp.set_current_run(s.model.run if s.model else None))

    def open_run(self, run: Path) -> None:
        """Opens a run from the Runs tab: its curves show on the Train tab."""
        self.session.open_run(run)
        self.tabs.setCurrentIndex(TRAIN)

    def train_again(self, run: Path) -> None:
        """Loads a run's settings and ticks: the Model tab shows them, ready to train."""
        self.session.train_again(run)
        self.tabs.setCurrentIndex(MODEL)
    def _wire_review(self) -> None:
        """The review of the Evaluate tab's mistakes and of new images on the Predict tab."""
        r, ev, pp = self.review, self.evaluate_panel, self.predict_panel
        ev.decision_text = r.store.decision_text
        r.store.changed.connect(ev.refresh_decisions)
        ev.review_requested.connect(
            lambda i: r.review_misses(self.session.evaluation, i, self))
        pp.label_requested.connect(lambda rows, p: r.label_new(rows, p, self))
        pp.grid.cards.heat = r.heat
        r.heat.ready.connect(lambda _path: pp.grid.viewport().update())

    # -- start-up -----------------------------------------------------------------
    def start_background_setup(self) -> None:
        """Starts the engine process; the status bar then says what training runs on."""
        if not self.engine.client.alive:
            self.engine.start()
        else:
            self._on_engine_state(self.engine.state, {})
        self.compute_label.setText(self.engine.status)
        _ = self.training_panel.plot  # pyqtgraph loads now, while the user reads
        if self.restore_last and self.session.dataset is None:
            self.restore_last_work()

    def restore_last_work(self) -> None:
        """Reopens the last run of the last dataset (or just the dataset) after a restart."""
        last = last_dataset(self.settings)
        run = last_run_of(self.settings, last)
        if run is not None:
            self.session.open_run(run)
        elif last and Path(last).is_dir():
            self.session.open_dataset(Path(last))

    @property
    def compute_info(self) -> dict[str, object] | None:
        """What training runs on, once the engine has loaded Keras."""
        return self.engine.compute or None

    def _on_engine_state(self, state: str, details: object) -> None:
        self.compute_label.setText(self.engine.status)
        info = details if isinstance(details, dict) else {}
        if state == "dead" and not info.get("expected") and not self.session.closing:
            self.statusBar().showMessage(
                f"The engine stopped ({info.get('description')}). The window is still "
                "usable; the next job starts a new engine.", 15000)

    # -- reactions ----------------------------------------------------------------
    def update_actions(self) -> None:
        s = self.session
        running = s.busy == "training"
        reason = s.train_block_reason()
        self.training_panel.set_state(running, reason)
        self.train_action.setEnabled(not running and not reason)
        self.train_action.setToolTip(reason or "Train phase 1, then phase 2")
        self.cancel_action.setEnabled(running)
        self.export_action.setEnabled(s.model is not None and s.model.trained and not s.busy)
        self.model_panel.set_training(running)

    def _sync_layers(self) -> None:
        # Several signals ask for this at once (a job ends: busy and state change): one
        # repaint of the layer views, on the next turn of the event loop, is enough.
        if not self._sync_queued:
            self._sync_queued = True
            QTimer.singleShot(0, self._do_sync_layers)

    def _do_sync_layers(self) -> None:
        self._sync_queued = False
        self.model_panel.layers.sync(editable=not self.session.busy)

    def _settings_changed(self) -> None:
        save_config(self.settings, self.model_panel.config())
        self.update_actions()

    def _show_progress(self, event: object) -> None:
        if isinstance(event, StageProgress):
            # A step that does not know its total (a scan) still shows that it moves on.
            count = (f" ({event.done:,}/{event.total:,})" if event.total
                     else f" ({event.done:,} so far)" if event.done else "")
            finished = bool(event.total) and event.done >= event.total
            # A finished step's line goes soon: it must not read as work still running.
            self.statusBar().showMessage(f"{event.message}{count}", 1500 if finished else 4000)

    def _mirror_evaluation(self, on: bool) -> None:
        s = self.session
        s.mirror_evaluation = on
        if s.busy:
            s.evaluate_when_idle = s.evaluation is not None  # once the work at hand ends
        elif self.evaluate_panel.again_button.isEnabled():
            s.start_evaluation()  # the figure shown follows the box

    def _show_mirror_state(self, ev: object) -> None:
        # The box says how the figure shown was measured (an opened run's, too), unless
        # the user changed it meanwhile: then the figure that follows the box is coming.
        if self.session.evaluate_when_idle:
            return
        mirror = bool(getattr(ev, "mirror", False))
        box = self.evaluate_panel.mirror_box
        self.session.mirror_evaluation = mirror
        if box.isChecked() != mirror:
            box.blockSignals(True)
            box.setChecked(mirror)
            box.blockSignals(False)

    def _on_run_opened(self, result: Any, config: object) -> None:
        self.training_panel.show_run(result, config)  # type: ignore[arg-type]
        run = getattr(result, "run", None)
        if run is not None and (run / "model.keras").is_file():
            self.predict_panel.set_trained_model(run / "model.keras")

    def _on_training_finished(self, result: Any, outcome: str) -> None:
        run = getattr(result, "run", None)
        if run is not None and (run / "model.keras").is_file():
            self.predict_panel.set_trained_model(run / "model.keras")
        self.statusBar().showMessage(f"Training {outcome}.", 8000)

    def open_sample_dialog(self) -> None:
        from tlgui.gui.sample_dialog import SampleDialog

        dialog = SampleDialog(self.engine, self)
        dialog.fetched.connect(self.session.open_dataset)
        dialog.open()
        self.sample_dialog = dialog

    def open_engine_settings(self) -> None:
        compute = self.engine.compute
        running = (f"{compute.get('backend')} on {compute.get('device_label')}"
                   if compute else "")
        devices = compute.get("devices") if compute else None
        dialog = EngineSettingsDialog(self.engine.backend, running, self,
                                      self.engine.device,
                                      devices if isinstance(devices, list) else None,
                                      saved_devices(self.settings))
        # Read by the next training (session.py); the engine needs no restart for it.
        dialog.accepted.connect(lambda: self.settings.setValue(DEVICES_KEY, dialog.shared()))
        dialog.accepted.connect(lambda: self.set_backend(dialog.backend(), dialog.device()))
        dialog.open()
        self.engine_dialog = dialog

    def set_backend(self, backend: str | None, device: str | None = None) -> None:
        """Uses this backend and device from the next job on, and remembers them."""
        self.settings.setValue(BACKEND_KEY, backend or "")
        self.settings.setValue(DEVICE_KEY, device or "")
        if not self.engine.configure(backend, device):
            return
        self.compute_label.setText(self.engine.status)
        # The model lives in the engine: the next one is built with the new backend.
        if self.session.dataset is not None and not self.session.busy:
            self.session.request_build()

    def open_export_dialog(self) -> None:
        from tlgui.gui.export_dialog import ExportDialog

        model = self.session.model
        if model is None or not model.trained or self.session.busy:
            return
        from tlgui.core.runs import run_dataset
        from tlgui.gui.export_dialog import default_folder

        # Never into the data the model was trained on, nor the dataset that is open.
        protected = [p for p in (self.session.dataset.root if self.session.dataset else None,
                                 run_dataset(model.run) if model.run else None) if p]
        name = f"{protected[0].name}_classifier" if protected else "classifier"
        dialog = ExportDialog(self.engine, model, default_folder(protected), self,
                              protected=protected, name=name)
        dialog.open()
        self.export_dialog = dialog

    # -- drag and drop ------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event)
        if paths:
            event.acceptProposedAction()
            self.route_paths(paths)

    def route_paths(self, paths: list[Path]) -> None:
        """A folder opens as the dataset; models and images go to the Predict tab."""
        to_predict = (self.tabs.currentIndex() == PREDICT
                      or any(jobs.is_model_path(p) for p in paths)
                      or all(p.is_file() for p in paths))
        if to_predict:
            self.tabs.setCurrentIndex(PREDICT)
            self.predict_panel.handle_paths(paths)
        elif paths[0].is_dir():
            self.open_dataset(paths[0])

    def open_dataset(self, folder: Path) -> None:
        """Shows the Data tab and opens ``folder`` as the dataset."""
        self.tabs.setCurrentIndex(DATA)
        self.session.open_dataset(folder)

    def paste(self) -> None:
        """Ctrl+V: copied files go where a drop would; a copied picture is classified."""
        paths = clipboard_paths(QApplication.clipboard().mimeData())
        if paths:
            self.route_paths(paths)
        else:
            self.statusBar().showMessage("Nothing to classify on the clipboard: copy a "
                                         "picture or image files first.", 8000)

    # -- closing ------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session.busy == "training":
            if not dialogs.ask(self, "Training is running",
                               "Stop training and close? The best finished epoch stays in "
                               "the run folder."):
                event.ignore()
                return
            self.session.cancel_training()
        self.statusBar().showMessage("Stopping background work…")
        self.setEnabled(False)
        self.session.close()
        self.predict_panel.closing = True
        self.review.stop()
        if self.owns_engine:
            self.engine.shutdown()
        self.thumbnails.stop()
        stop_all()
        save_config(self.settings, self.model_panel.config())
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        super().closeEvent(event)

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)


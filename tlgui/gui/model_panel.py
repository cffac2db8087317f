"""The Model tab: backbone, training settings of both phases, weights, and the layer tree."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QObject, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.backbones import REGISTRY, size_note
from tlgui.core.config import AugmentConfig, PhaseConfig, TrainConfig
from tlgui.gui.layer_tree_panel import LayerTreePanel
from tlgui.gui.model_texts import AUGMENT_MODES, OPTIMIZERS, SCHEDULES, TIPS


class RateBox(QDoubleSpinBox):
    """A learning-rate box showing 0.001 or 1e-05; arrows halve or double the value."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(10)
        self.setRange(1e-8, 1.0)

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> Any:
        try:
            ok = 0 < float(text) <= 1
            state = QValidator.State.Acceptable if ok else QValidator.State.Intermediate
        except ValueError:
            state = QValidator.State.Intermediate
        return state, text, pos

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * (2.0 ** steps))

    def sizeHint(self) -> QSize:
        # Ten decimals would make Qt size the box for "0.0000000100".
        hint = super().sizeHint()
        return QSize(min(hint.width(), 110), hint.height())

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), 80), hint.height())


class PhaseBox(QObject):
    """Epochs, learning rate, optimizer and early stopping of one phase.

    It holds the widgets; the panel lays both phases out side by side in one grid, the
    row labels shared, so the settings fit a 1024 px window.
    """

    changed = Signal()

    def __init__(self, title: str, phase: int) -> None:
        super().__init__()
        self.title = title
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 1000)
        self.epochs.setToolTip(TIPS[f"epochs{phase}"])
        self.rate = RateBox()
        self.rate.setToolTip(TIPS[f"lr{phase}"])
        self.schedule = QComboBox()
        for schedule, text in SCHEDULES:
            self.schedule.addItem(text, schedule)
        self.schedule.setToolTip(TIPS["schedule"])
        self.rate_row = QHBoxLayout()
        self.rate_row.addWidget(self.rate, 1)
        self.rate_row.addWidget(self.schedule)
        self.optimizer = QComboBox()
        self.optimizer.addItems(OPTIMIZERS)
        self.optimizer.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.optimizer.setMinimumContentsLength(6)
        self.optimizer.setToolTip(TIPS["optimizer"])
        self.stop_early = QCheckBox("")
        self.stop_early.setToolTip(TIPS["patience"])
        self.patience = QSpinBox()
        self.patience.setRange(1, 100)
        self.patience.setSuffix(" epochs")
        self.patience.setToolTip(TIPS["patience"])
        self.stop_early.toggled.connect(self.patience.setEnabled)
        self.stop_row = QHBoxLayout()
        self.stop_row.addWidget(self.stop_early)
        self.stop_row.addWidget(self.patience, 1)
        for w in (self.epochs, self.rate, self.patience):
            w.valueChanged.connect(self._emit)
        self.optimizer.currentIndexChanged.connect(self._emit)
        self.schedule.currentIndexChanged.connect(self._emit)
        self.stop_early.toggled.connect(self._emit)

    def _emit(self, *_: object) -> None:
        self.changed.emit()

    def set_phase(self, pc: PhaseConfig) -> None:
        self.epochs.setValue(pc.epochs)
        self.rate.setValue(pc.learning_rate)
        self.optimizer.setCurrentText(pc.optimizer)
        self.schedule.setCurrentIndex(max(0, self.schedule.findData(pc.schedule)))
        self.stop_early.setChecked(pc.early_stopping_patience is not None)
        self.patience.setValue(pc.early_stopping_patience or 5)
        self.patience.setEnabled(pc.early_stopping_patience is not None)

    def phase(self) -> PhaseConfig:
        return PhaseConfig(
            epochs=self.epochs.value(), learning_rate=self.rate.value(),
            optimizer=self.optimizer.currentText(),  # type: ignore[arg-type]
            schedule=self.schedule.currentData(),
            early_stopping_patience=self.patience.value() if self.stop_early.isChecked()
            else None)


class ModelPanel(QWidget):
    """Settings on the left, the layer tree on the right."""

    settings_changed = Signal()
    model_settings_changed = Signal()

    def __init__(self, config: TrainConfig, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base = config
        self._loading = False
        self._debounce = QTimer(self, singleShot=True, interval=400)
        self._debounce.timeout.connect(self.model_settings_changed.emit)

        self.backbones = QComboBox()
        for spec in REGISTRY.values():
            self.backbones.addItem(
                f"{spec.name}  ·  {spec.default_size} px  ·  {spec.size_mb:g} MB  ·  "
                f"{spec.top1:.1f} % on ImageNet", spec.name)
            self.backbones.setItemData(self.backbones.count() - 1,
                                       f"{spec.name}: {spec.summary} {spec.params_m:g} M "
                                       "parameters.", Qt.ItemDataRole.ToolTipRole)
        self.backbones.setToolTip(TIPS["backbone"])
        self.backbones.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.backbones.setMinimumContentsLength(20)
        self.backbone_summary = QLabel()
        self.backbone_summary.setWordWrap(True)

        self.image_size = QSpinBox()
        self.image_size.setRange(0, 1024)
        self.image_size.setSingleStep(32)
        self.image_size.setToolTip(TIPS["image_size"])
        self.weights_mode = QComboBox()
        self.weights_mode.addItem("ImageNet (stored on this computer)", "imagenet")
        self.weights_mode.addItem("A weights file…", "file")
        self.weights_mode.addItem("None: random start (for testing only)", "none")
        self.weights_mode.setToolTip(TIPS["weights"])
        self.weights_mode.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.weights_mode.setMinimumContentsLength(16)
        self.weights_file = QLineEdit()
        self.weights_file.setPlaceholderText("an .h5 or .weights.h5 file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_weights)
        wrow = QHBoxLayout()
        wrow.addWidget(self.weights_file, 1)
        wrow.addWidget(browse)
        self.model_error = QLabel()
        self.model_error.setWordWrap(True)
        self.model_error.setObjectName("modelError")
        self.model_error.setStyleSheet("QLabel#modelError { color: #a00000; background: #fde8e8;"
                                       " border: 1px solid #d08080; padding: 6px; }")
        self.model_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_error.setVisible(False)
        self.weights_row = QWidget()
        self.weights_row.setLayout(wrow)
        wrow.setContentsMargins(0, 0, 0, 0)
        net = QGroupBox("Network")
        nf = QFormLayout(net)
        nf.addRow("Backbone", self.backbones)
        nf.addRow(self.backbone_summary)
        nf.addRow("Image size", self.image_size)
        self.size_note = QLabel()  # why this size: ADR 013's finding, in one line
        self.size_note.setWordWrap(True)
        self.size_note.setEnabled(False)  # drawn as a hint, not as a setting
        nf.addRow(self.size_note)
        nf.addRow("Weights", self.weights_mode)
        nf.addRow("", self.weights_row)
        nf.addRow(self.model_error)

        self.phase1 = PhaseBox("Phase 1: new classifier", 1)
        self.phase2 = PhaseBox("Phase 2: fine-tuning", 2)
        phases = QGroupBox("Training")
        grid = QGridLayout(phases)
        for col, box in ((1, self.phase1), (2, self.phase2)):
            title = QLabel(f"<b>{box.title}</b>")
            grid.addWidget(title, 0, col)
            grid.addWidget(box.epochs, 1, col)
            grid.addLayout(box.rate_row, 2, col)
            grid.addWidget(box.optimizer, 3, col)
            grid.addLayout(box.stop_row, 4, col)
            grid.setColumnStretch(col, 1)
        for row, text in enumerate(("Epochs", "Learning rate", "Optimizer",
                                    "Stop early after no progress for"), start=1):
            label = QLabel(text)
            label.setWordWrap(True)
            grid.addWidget(label, row, 0)
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setToolTip(TIPS["batch"])
        self.aug_mode = QComboBox()
        for mode, text in AUGMENT_MODES:
            self.aug_mode.addItem(text, mode)
        self.aug_mode.setToolTip(TIPS["augment"])
        self.aug_mode.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.aug_mode.setMinimumContentsLength(12)
        self.flip = QCheckBox("Mirror")
        self.flip.setToolTip(TIPS["flip"])
        self.rotation = QSpinBox()
        self.rotation.setRange(0, 180)
        self.rotation.setSuffix("°")
        self.rotation.setToolTip(TIPS["rotation"])
        self.zoom = QSpinBox()
        self.zoom.setRange(0, 90)
        self.zoom.setSuffix(" %")
        self.zoom.setToolTip(TIPS["zoom"])
        self.contrast = QSpinBox()
        self.contrast.setRange(0, 90)
        self.contrast.setSuffix(" %")
        self.contrast.setToolTip(TIPS["contrast"])
        both = QGroupBox("Both phases")
        bf = QFormLayout(both)
        top_row = QHBoxLayout()
        top_row.addWidget(self.batch)
        top_row.addWidget(QLabel("Augmentation"))
        top_row.addWidget(self.aug_mode, 1)
        bf.addRow("Batch size", top_row)
        aug_row = QHBoxLayout()
        aug_row.addWidget(self.flip)
        for label, spin in (("Tilt", self.rotation), ("Zoom", self.zoom),
                            ("Contrast", self.contrast)):
            aug_row.addWidget(QLabel(label))
            aug_row.addWidget(spin)
        aug_row.addStretch()
        bf.addRow("Alter", aug_row)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(net)
        lv.addWidget(phases)
        lv.addWidget(both)
        lv.addStretch()
        # Fits a 1024 x 700 window without scrolling; the scroll area only helps on
        # smaller screens or with large fonts.
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(440)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.layers = LayerTreePanel(settings)
        split = QSplitter()
        split.addWidget(scroll)
        split.addWidget(self.layers)
        split.setStretchFactor(1, 1)
        QVBoxLayout(self).addWidget(split)

        self.set_config(config)
        self.backbones.currentIndexChanged.connect(self._on_backbone)
        for w in (self.phase1, self.phase2):
            w.changed.connect(self._changed)
        self.batch.valueChanged.connect(self._changed)
        for spin in (self.image_size, self.rotation, self.zoom, self.contrast):
            spin.valueChanged.connect(self._model_changed)
        self.image_size.valueChanged.connect(self._show_backbone)
        self.weights_mode.currentIndexChanged.connect(self._model_changed)
        self.weights_mode.currentIndexChanged.connect(self._show_weights_row)
        self.weights_file.editingFinished.connect(self._model_changed)
        self.aug_mode.currentIndexChanged.connect(self._model_changed)
        self.flip.toggled.connect(self._model_changed)

    # -- config <-> widgets -------------------------------------------------------
    def set_config(self, config: TrainConfig) -> None:
        self._loading = True
        self._base = config
        self.backbones.setCurrentIndex(max(0, self.backbones.findData(config.backbone)))
        self._show_backbone()
        self.image_size.setValue(config.image_size or 0)
        if config.weights in ("imagenet", "none"):
            self.weights_mode.setCurrentIndex(self.weights_mode.findData(config.weights))
        else:
            self.weights_mode.setCurrentIndex(self.weights_mode.findData("file"))
            self.weights_file.setText(config.weights)
        self._show_weights_row()
        self.phase1.set_phase(config.phase1)
        self.phase2.set_phase(config.phase2)
        self.batch.setValue(config.batch_size)
        aug = config.augment
        self.aug_mode.setCurrentIndex(max(0, self.aug_mode.findData(aug.mode)))
        self.flip.setChecked(aug.flip)
        self.rotation.setValue(round(aug.rotation * 360))
        self.zoom.setValue(round(aug.zoom * 100))
        self.contrast.setValue(round(aug.contrast * 100))
        self._loading = False

    def config(self) -> TrainConfig:
        """The settings as shown; fields without a widget keep their loaded values."""
        mode = self.weights_mode.currentData()
        weights = self.weights_file.text().strip() if mode == "file" else str(mode)
        aug = dataclasses.replace(
            self._base.augment, mode=self.aug_mode.currentData(), flip=self.flip.isChecked(),
            rotation=self.rotation.value() / 360, zoom=self.zoom.value() / 100,
            contrast=self.contrast.value() / 100)
        return self._base.replace(
            backbone=self._selected_backbone(), image_size=self.image_size.value() or None,
            weights=weights or "imagenet", phase1=self.phase1.phase(),
            phase2=self.phase2.phase(), batch_size=self.batch.value(),
            augment=AugmentConfig(**dataclasses.asdict(aug)))

    def _selected_backbone(self) -> str:
        return str(self.backbones.currentData() or next(iter(REGISTRY)))

    def _show_backbone(self) -> None:
        spec = REGISTRY[self._selected_backbone()]
        self.backbone_summary.setText(f"<b>{spec.name}</b>: {spec.summary}")
        self.image_size.setSpecialValueText(f"backbone default ({spec.default_size} px)")
        self.size_note.setText(size_note(spec, self.image_size.value() or None))

    # -- changes ------------------------------------------------------------------
    def _on_backbone(self) -> None:
        self._show_backbone()
        self._model_changed()

    def _changed(self) -> None:
        if not self._loading:
            self.settings_changed.emit()

    def _model_changed(self) -> None:
        if not self._loading:
            self.settings_changed.emit()
            self._debounce.start()

    def _show_weights_row(self) -> None:
        self.weights_row.setVisible(self.weights_mode.currentData() == "file")

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a weights file", "",
                                              "Keras weights (*.h5 *.weights.h5);;All files (*)")
        if path:
            self.weights_file.setText(path)
            self.weights_mode.setCurrentIndex(self.weights_mode.findData("file"))
            self._model_changed()

    def show_model_error(self, text: str) -> None:
        """Shows why the model cannot be built (e.g. weights not found), or hides it."""
        self.model_error.setText(text)
        self.model_error.setVisible(bool(text))
        if text:
            self.layers.set_built(None, "The model could not be built: see the message on "
                                  "the left.")

    def set_training(self, running: bool) -> None:
        """Locks the settings that the running training depends on."""
        for w in (self.backbones, self.image_size, self.weights_mode, self.weights_file,
                  self.aug_mode, self.flip, self.rotation, self.zoom, self.contrast):
            w.setEnabled(not running)

"""Training dialog: pick a config and data, set backbone / epochs / batch size / device, train in a worker
thread with live loss and R@1 curves, cancel at any time, resume from the last checkpoint, and make the
finished model the active one."""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.plot_ranges import held_range, steps_range
from app.workers import TrainingJob
from engine.train import LAST_MODEL, ConfigError, SyntheticDataSpec, TrainConfig, detect_kind, load_train_config

CONFIGS_FOLDER = Path(__file__).resolve().parents[1] / "configs"
PRETRAINED = "efficientnet_lite0"
BACKBONES = (
    ("EfficientNet-Lite0 (ImageNet weights, offline)", PRETRAINED, "imagenet"),
    ("EfficientNet-Lite0 (random init)", PRETRAINED, None),
    ("MobileNetV3-Large (random init)", "mobilenetv3_large_100", None),
    ("ResNet-18 (random init)", "resnet18", None),
    ("ResNet-50 (random init)", "resnet50", None),
    ("ConvNeXt-Tiny (random init)", "convnext_tiny", None),
)
CURVE_REFRESH_MS = 250
DEVICES = (("Automatic (CUDA when present)", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda"))
LOSS_PEN = pg.mkPen(QColor(31, 119, 180), width=1.2)
SMOOTH_PEN = pg.mkPen(QColor(214, 39, 40), width=2.2)
RECALL_PEN = pg.mkPen(QColor(44, 160, 44), width=2.2)


def default_run_folder(config_path: str) -> Path:
    """Runs go to the user's data folder (never the install folder): .../Viewfinder/runs/<config name>."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation) or str(
        Path.home() / ".local" / "share" / "Viewfinder")
    return Path(base) / "runs" / (Path(config_path).stem or "run")


def bundled_configs() -> list[Path]:
    return sorted(CONFIGS_FOLDER.glob("*.toml")) if CONFIGS_FOLDER.is_dir() else []


def smoothed(values: list[float], weight: float = 0.8) -> list[float]:
    """Exponential moving average with bias correction (as TensorBoard draws it)."""
    out, average = [], 0.0
    for index, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight ** index))
    return out


def styled_plot(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setTitle(title, color="#202124", size="10pt")
    plot.showGrid(x=True, y=True, alpha=0.25)
    for axis, label in (("bottom", x_label), ("left", y_label)):
        item = plot.getAxis(axis)
        item.setPen(pg.mkPen("#5f6368"))
        item.setTextPen(pg.mkPen("#3c4043"))
        plot.setLabel(axis, label, color="#3c4043")
    plot.setMenuEnabled(False)
    plot.setMinimumHeight(170)
    return plot


class TrainingDialog(QDialog):
    model_activated = Signal(str)      # checkpoint the user made the active model
    run_finished = Signal(object)      # TrainSummary (tests and the status line wait on it)
    run_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train model")
        self.resize(1040, 680)
        self.job: TrainingJob | None = None
        self.running = False            # from start until the run reports its outcome
        self.summary = None
        self.cancel_requested_at: float | None = None
        self.losses: list[float] = []
        self.recall_epochs: list[int] = []
        self.recalls: list[float] = []
        self.steps_per_epoch = 1
        # curves redraw at most every CURVE_REFRESH_MS: a plot repaint costs the GUI thread ~20 ms
        self._curve_timer = QTimer(self)
        self._curve_timer.setSingleShot(True)
        self._curve_timer.setInterval(CURVE_REFRESH_MS)
        self._curve_timer.timeout.connect(self._redraw_curves)

        form = self._build_form()
        plots = self._build_plots()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(form)
        splitter.addWidget(plots)
        splitter.setSizes([400, 640])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addLayout(self._build_buttons())
        self._on_config_changed()
        self._on_data_mode_changed()
        self._set_running(False)

    # ------------------------------------------------------------ construction
    def _build_form(self) -> QWidget:
        self.config_combo = QComboBox()
        for path in bundled_configs():
            self.config_combo.addItem(path.stem, str(path))
        tiny = self.config_combo.findText("tiny-cpu")
        if tiny >= 0:
            self.config_combo.setCurrentIndex(tiny)
        browse_config = QPushButton("…")
        browse_config.setFixedWidth(32)
        browse_config.setToolTip("Another training config (.toml)")
        browse_config.clicked.connect(self._browse_config)
        config_row = QHBoxLayout()
        config_row.addWidget(self.config_combo, 1)
        config_row.addWidget(browse_config)

        self.data_from_config = QRadioButton("As the config says")
        self.data_from_folder = QRadioButton("Dataset folder (CVNAF, VIGOR, CV-Cities, CVUSA, CVACT)")
        self.data_synthetic = QRadioButton("Generate a synthetic dataset")
        self.data_group = QButtonGroup(self)
        for button in (self.data_from_config, self.data_from_folder, self.data_synthetic):
            self.data_group.addButton(button)
        self.data_from_config.setChecked(True)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("dataset folder")
        browse_folder = QPushButton("…")
        browse_folder.setFixedWidth(32)
        browse_folder.clicked.connect(self._browse_dataset)
        self.kind_label = QLabel("")
        self.kind_label.setStyleSheet("color: #5f6368;")
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse_folder)
        self.worlds_spin = QSpinBox(minimum=1, maximum=50, value=1)
        self.photos_spin = QSpinBox(minimum=8, maximum=5000, value=40, singleStep=10)
        self.size_spin = QDoubleSpinBox(minimum=150.0, maximum=5000.0, value=400.0, singleStep=50.0, suffix=" m")
        synthetic_form = QFormLayout()
        synthetic_form.addRow("Worlds per biome", self.worlds_spin)
        synthetic_form.addRow("Photos per world", self.photos_spin)
        synthetic_form.addRow("World size", self.size_spin)
        self.synthetic_box = QWidget()
        self.synthetic_box.setLayout(synthetic_form)
        data_box = QGroupBox("Training data")
        data_layout = QVBoxLayout(data_box)
        data_layout.addWidget(self.data_from_config)
        data_layout.addWidget(self.data_from_folder)
        data_layout.addLayout(folder_row)
        data_layout.addWidget(self.kind_label)
        data_layout.addWidget(self.data_synthetic)
        data_layout.addWidget(self.synthetic_box)

        self.backbone_combo = QComboBox()
        for text, name, weights in BACKBONES:
            self.backbone_combo.addItem(text, (name, weights))
        self.epochs_spin = QSpinBox(minimum=1, maximum=1000)
        self.batch_spin = QSpinBox(minimum=2, maximum=1024)
        self.device_combo = QComboBox()
        for text, value in DEVICES:
            self.device_combo.addItem(text, value)
        self.out_edit = QLineEdit()
        browse_out = QPushButton("…")
        browse_out.setFixedWidth(32)
        browse_out.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse_out)
        self.resume_check = QCheckBox("Resume from the folder's last checkpoint")
        self.overwrite_check = QCheckBox("Overwrite a finished run in the folder")
        run_box = QGroupBox("Run")
        run_form = QFormLayout(run_box)
        run_form.addRow("Backbone", self.backbone_combo)
        run_form.addRow("Epochs", self.epochs_spin)
        run_form.addRow("Batch size", self.batch_spin)
        run_form.addRow("Device", self.device_combo)
        run_form.addRow("Output folder", out_row)
        run_form.addRow(self.resume_check)
        run_form.addRow(self.overwrite_check)

        config_box = QGroupBox("Configuration")
        config_form = QFormLayout(config_box)
        config_form.addRow("Config", config_row)

        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(config_box)
        layout.addWidget(data_box)
        layout.addWidget(run_box)
        layout.addStretch(1)

        self.config_combo.currentIndexChanged.connect(self._on_config_changed)
        self.data_group.buttonToggled.connect(lambda *_: self._on_data_mode_changed())
        self.folder_edit.editingFinished.connect(self._detect_kind)
        return panel

    def _build_plots(self) -> QWidget:
        self.loss_plot = styled_plot("Training loss", "step", "loss")
        self.loss_plot.addLegend(offset=(-10, 10), labelTextColor="#3c4043")
        self.loss_plot.disableAutoRange()         # app.plot_ranges holds the axes while a run trains
        self._loss_x_range = self._loss_y_range = None
        self.loss_curve = self.loss_plot.plot([], [], pen=LOSS_PEN, name="batch")
        self.loss_smooth_curve = self.loss_plot.plot([], [], pen=SMOOTH_PEN, name="smoothed")
        self.recall_plot = styled_plot("Validation R@1", "epoch", "R@1 (%)")
        self.recall_curve = self.recall_plot.plot([], [], pen=RECALL_PEN, symbol="o", symbolSize=7,
                                                  symbolBrush=QColor(44, 160, 44), symbolPen="w")
        self.recall_plot.setYRange(0, 100, padding=0.02)
        self.recall_plot.getAxis("bottom").setTickSpacing(1, 1)     # whole epochs
        self.progress = QProgressBar()
        self.progress.setFormat("%p %")
        self.status_label = QLabel("Ready")
        status_font = QFont(self.status_label.font())
        status_font.setBold(True)
        self.status_label.setFont(status_font)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setMinimumHeight(90)
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot, 3)
        layout.addWidget(self.recall_plot, 2)
        layout.addWidget(self.status_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.log_view, 1)
        return panel

    def _build_buttons(self) -> QHBoxLayout:
        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel run")
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Make the trained model the active one (the map is indexed again)")
        self.close_button = QPushButton("Close")
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(self._use_model)
        self.close_button.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        row.addWidget(self.use_button)
        row.addWidget(self.close_button)
        return row

    # ------------------------------------------------------------ form logic
    def config_path(self) -> str:
        return self.config_combo.currentData() or ""

    def set_config_path(self, path: str) -> None:
        index = self.config_combo.findData(str(path))
        if index < 0:
            self.config_combo.addItem(Path(path).stem, str(path))
            index = self.config_combo.count() - 1
        self.config_combo.setCurrentIndex(index)

    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", str(CONFIGS_FOLDER), "TOML (*.toml)")
        if path:
            self.set_config_path(path)

    def _browse_dataset(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)
            self._detect_kind()

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def _on_config_changed(self) -> None:
        """Show the chosen config's own settings in the form."""
        try:
            config = load_train_config(self.config_path())
        except (ConfigError, OSError) as exc:
            self.status_label.setText(f"Config not usable: {exc}")
            return
        backbone = (config.model.backbone, config.model.backbone_weights)
        index = next((i for i, (_, name, weights) in enumerate(BACKBONES) if (name, weights) == backbone), -1)
        if index < 0:
            self.backbone_combo.addItem(f"{backbone[0]} (from the config)", backbone)
            index = self.backbone_combo.count() - 1
        self.backbone_combo.setCurrentIndex(index)
        self.epochs_spin.setValue(config.train.epochs)
        self.batch_spin.setValue(config.train.batch_size)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(config.train.device)))
        self.out_edit.setText(str(default_run_folder(self.config_path())))
        if config.data.generate is not None:
            self.photos_spin.setValue(config.data.generate.photos_per_world)
            self.worlds_spin.setValue(config.data.generate.worlds_per_biome)
            self.size_spin.setValue(config.data.generate.size_m)
        self.data_from_config.setText(f"As the config says ({config.data.kind}"
                                      + (", generated" if config.data.generate is not None else "") + ")")
        self.status_label.setText("Ready")

    def _on_data_mode_changed(self) -> None:
        self.folder_edit.setEnabled(self.data_from_folder.isChecked())
        self.synthetic_box.setEnabled(self.data_synthetic.isChecked())

    def _detect_kind(self) -> str | None:
        folder = self.folder_edit.text().strip()
        if not folder:
            self.kind_label.setText("")
            return None
        try:
            kind = detect_kind(folder)
        except (OSError, ValueError) as exc:
            self.kind_label.setText(str(exc))
            return None
        self.kind_label.setText(f"Detected layout: {kind}")
        return kind

    def build_config(self) -> TrainConfig:
        """The chosen config with the form's choices applied (ConfigError names what is wrong)."""
        config = load_train_config(self.config_path())
        name, weights = self.backbone_combo.currentData()
        try:
            config.model = dataclasses.replace(config.model, backbone=name, backbone_weights=weights)
        except ValueError as exc:
            raise ConfigError(f"backbone {name}: {exc}") from None
        out = Path(self.out_edit.text().strip() or default_run_folder(self.config_path())).expanduser()
        config.train = dataclasses.replace(config.train, epochs=self.epochs_spin.value(),
                                           batch_size=self.batch_spin.value(),
                                           device=self.device_combo.currentData(), out=out)
        if self.data_from_folder.isChecked():
            kind = self._detect_kind()
            if kind is None:
                raise ConfigError(f"dataset folder: {self.kind_label.text() or 'choose a folder'}")
            config.data = dataclasses.replace(config.data, kind=kind, root=Path(self.folder_edit.text().strip()),
                                              split=None, val_root=None, val_kind=None, val_split=None,
                                              generate=None, val_generate=None)
        elif config.data.generate is not None or config.data.val_generate is not None:
            # the config's own generated data goes under the chosen folder too, never beside the config
            config.data = dataclasses.replace(
                config.data, root=out / "data" / "train" if config.data.generate is not None else config.data.root,
                val_root=out / "data" / "eval" if config.data.val_generate is not None else config.data.val_root)
        if self.data_synthetic.isChecked():
            config.data = dataclasses.replace(config.data, kind="synthetic-cvnaf", root=out / "data" / "train",
                                              val_root=out / "data" / "eval", split=None, val_kind=None,
                                              val_split=None, **self._synthetic_specs(config))
        config.validate()
        return config

    def _synthetic_specs(self, config: TrainConfig) -> dict:
        base = config.data.generate or SyntheticDataSpec(
            chip_px=2 * config.model.satellite_hw[0], chip_metres_per_px=config.model.metres_per_pixel)
        train = dataclasses.replace(base, worlds_per_biome=self.worlds_spin.value(),
                                    photos_per_world=self.photos_spin.value(), size_m=self.size_spin.value(),
                                    eval_fraction=0.0)
        evaluation = dataclasses.replace(train, first_seed=train.first_seed + 800, worlds_per_biome=1,
                                         photos_per_world=max(8, self.photos_spin.value() // 2), eval_fraction=1.0)
        return {"generate": train, "val_generate": evaluation}

    # ------------------------------------------------------------ running
    def start(self) -> bool:
        if self.running:
            return False
        if self.job is not None:     # the last run reported; its process may still be exiting
            self.job.wait()
            self._on_thread_finished(self.job)
        try:
            config = self.build_config()
        except (ConfigError, OSError, ValueError) as exc:
            self.status_label.setText(f"Cannot start: {exc}")
            self.run_failed.emit(str(exc))
            return False
        resume = self.resume_check.isChecked()
        if resume and not (config.train.out / LAST_MODEL).is_file():
            self.status_label.setText(f"Cannot resume: no checkpoint in {config.train.out}")
            self.run_failed.emit(self.status_label.text())
            return False
        if not resume:
            self.losses.clear()
            self.recall_epochs.clear()
            self.recalls.clear()
            self._redraw_curves()
            self.recall_curve.setData(self.recall_epochs, self.recalls)
        self.summary = None
        self.cancel_requested_at = None
        self.job = TrainingJob(config, resume=resume, overwrite=self.overwrite_check.isChecked(), parent=self)
        self.job.step.connect(self._on_step)
        self.job.epoch_end.connect(self._on_epoch_end)
        self.job.log.connect(self._log)
        self.job.progress.connect(self._on_progress)
        self.job.checkpoint.connect(lambda path: self._log(f"checkpoint {path}"))
        self.job.succeeded.connect(self._on_succeeded)
        self.job.failed.connect(self._on_failed)
        job = self.job
        job.finished.connect(lambda: self._on_thread_finished(job))
        self.running = True
        self._set_running(True)
        self.status_label.setText(f"Training on {config.data.kind} data ({config.train.device})…")
        self._log(f"start: {self.config_path()} -> {config.train.out}" + (" (resumed)" if resume else ""))
        self.job.start()
        return True

    def cancel(self) -> None:
        if self.running and self.job is not None:
            self.cancel_requested_at = time.perf_counter()
            self.job.cancel()
            self.status_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def stop(self) -> None:
        """Cancel a run and wait for its thread (the window is closing)."""
        job = self.job
        if job is not None:
            job.cancel()
            job.wait()
            QApplication.sendPostedEvents(job)            # deliver its last reports before it goes
            self._on_thread_finished(job)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)
        self.use_button.setEnabled(not running and self._trained_model() is not None)
        for widget in (self.config_combo, self.backbone_combo, self.epochs_spin, self.batch_spin,
                       self.device_combo, self.out_edit, self.resume_check, self.overwrite_check,
                       self.data_from_config, self.data_from_folder, self.data_synthetic):
            widget.setEnabled(not running)
        if not running:
            self._on_data_mode_changed()
        else:
            self.folder_edit.setEnabled(False)
            self.synthetic_box.setEnabled(False)

    def _on_step(self, epoch: int, step: int, steps: int, losses: dict, lr: float) -> None:
        self.steps_per_epoch = max(1, steps)
        total = float(losses.get("total", math.nan))
        if math.isfinite(total):
            self.losses.append(total)
        self.progress.setRange(0, steps)
        self.progress.setValue(step + 1)
        self.progress.setFormat(f"epoch {epoch + 1}: step {step + 1}/{steps}")
        self.status_label.setText(f"Epoch {epoch + 1}, step {step + 1}/{steps}: loss {total:.4f}, lr {lr:.2e}")
        if not self._curve_timer.isActive():
            self._curve_timer.start()

    def _on_epoch_end(self, epoch: int, metrics: dict) -> None:
        recall = metrics.get("R@1")
        if recall is not None and math.isfinite(recall):
            self.recall_epochs.append(epoch + 1)
            self.recalls.append(100.0 * recall)
            self.recall_curve.setData(self.recall_epochs, self.recalls)

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
        self.progress.setFormat(f"{stage}: {done}/{total}")

    def _redraw_curves(self) -> None:
        """The loss curves (the recall curve changes once an epoch, in _on_epoch_end)."""
        steps = list(range(1, len(self.losses) + 1))
        self.loss_curve.setData(steps, self.losses)
        self.loss_smooth_curve.setData(steps, smoothed(self.losses))
        planned = self.steps_per_epoch * self.epochs_spin.value() if self.running else len(steps)
        x_range = steps_range(len(steps), planned)
        y_range = held_range(self._loss_y_range if self.running else None,
                             min(self.losses, default=math.nan), max(self.losses, default=math.nan))
        if x_range != self._loss_x_range:
            self.loss_plot.setXRange(*x_range, padding=0.0)
        if y_range != self._loss_y_range:
            self.loss_plot.setYRange(*y_range, padding=0.0)
        self._loss_x_range, self._loss_y_range = x_range, y_range

    def _log(self, message: str) -> None:
        self.log_view.appendPlainText(message)

    def _on_succeeded(self, summary) -> None:
        self.summary = summary
        best = summary.best or {}
        value = best.get("value")
        extra = ""
        if isinstance(value, (int, float)) and math.isfinite(value):
            shown = f"{100 * value:.1f} %" if best.get("metric") == "R@1" else f"{value:.4g}"
            extra = f", best {best.get('metric')} {shown} (epoch {best.get('epoch')})"
        self.status_label.setText(f"Run {summary.stopped}: {summary.epochs_completed} epochs, "
                                  f"{summary.global_step} steps in {summary.seconds:.0f} s{extra}")
        self._log(self.status_label.text())
        if summary.stopped == "completed":
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat("completed")
        else:       # cancelled / time budget: the bar stays where the run stopped and says so
            self.progress.setFormat(f"{summary.stopped} at step {self.progress.value()}/{self.progress.maximum()}"
                                    f" (epoch {summary.epochs_completed + 1})")
        self._end_run()

    def _on_failed(self, reason: str) -> None:
        self.status_label.setText(f"Training stopped: {reason}")
        self._log(self.status_label.text())
        self._end_run()

    def _end_run(self) -> None:
        """The run reported its outcome (its process may still be exiting)."""
        if not self.running:
            return
        self.running = False
        self._curve_timer.stop()
        self._redraw_curves()
        self._set_running(False)
        if self.summary is not None:
            self.run_finished.emit(self.summary)
        else:
            self.run_failed.emit(self.status_label.text())

    def _on_thread_finished(self, job: TrainingJob) -> None:
        if job is None or job is not self.job:
            return               # already cleaned up
        self.job = None
        job.deleteLater()
        self._end_run()          # in case no outcome arrived (the thread reports one whenever it can)

    def _trained_model(self) -> Path | None:
        if self.summary is None:
            return None
        return self.summary.best_checkpoint or self.summary.last_checkpoint

    def _use_model(self) -> None:
        path = self._trained_model()
        if path is not None:
            self.model_activated.emit(str(path))
            self.status_label.setText(f"Active model: {path}")

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.stop()           # closing the window cancels a run; its last checkpoint can be resumed
        super().closeEvent(event)

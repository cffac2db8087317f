"""The published Keras transfer-learning recipe, as the baseline tlgui is measured against.

This follows the TensorFlow tutorial "Transfer learning and fine-tuning" (MobileNetV2 on
cats vs dogs) with no tuning; only the data set differs (a folder of class folders split
80/20 by ``image_dataset_from_directory``) and therefore the head (one logit per class
with a sparse categorical loss instead of one logit with a binary loss):

* ``keras.utils.image_dataset_from_directory`` at 160x160, batch 32, 80/20 split
  (``validation_split=0.2``, ``subset``, ``seed``), ``prefetch(AUTOTUNE)``;
* RandomFlip("horizontal") + RandomRotation(0.2) -> ``mobilenet_v2.preprocess_input`` ->
  MobileNetV2 (ImageNet, no top) called with ``training=False`` -> GlobalAveragePooling2D
  -> Dropout(0.2) -> Dense;
* phase 1: backbone frozen, Adam 1e-4, 10 epochs, validation after every epoch;
* phase 2: backbone layers from index 100 (of 154) unfrozen, recompiled with RMSprop 1e-5,
  10 more epochs.

The ImageNet weights are read from a local file (no download). ``preprocess_input`` is
called directly on the KerasTensor, as in the tutorial; Keras 3.15 accepts that (it is the
elementwise ``x / 127.5 - 1``), so the ``Rescaling(1/127.5, offset=-1)`` substitute is only
used if that call raises, and the JSON result says which one ran.

Benchmark options, none of which changes the recipe's model or schedule: ``--validation-data``
(validate on a separate folder, training on DATA whole), ``--test-data`` (measure the last
epoch once on a held-out folder), ``--seed`` (of the split and shuffle; default 123 as
before) and ``--weights none`` (random initial weights, for smoke runs only).

It prints one line per epoch with a wall-clock timestamp and, last, one JSON line with the
phase times, accuracies, the per-epoch history and the files on each side of its split
(the benchmark gives tlgui the same split). Run it from the repository root::

    python bench/reference_recipe.py ../shared/data/flower_photos
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

T_PROCESS = time.monotonic()

IMG_SIZE = (160, 160)
BATCH_SIZE = 32
SEED = 123
BASE_LEARNING_RATE = 1e-4
FINE_TUNE_AT = 100
WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5"


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _parse() -> argparse.Namespace:
    repo = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", nargs="?", default=str(repo.parent / "shared/data/flower_photos"),
                   help="a folder of class folders (default ../shared/data/flower_photos)")
    p.add_argument("--weights-dir", default=str(repo.parent / "shared/weights"),
                   help="folder holding models/" + WEIGHTS_FILE)
    p.add_argument("--initial-epochs", type=int, default=10)
    p.add_argument("--fine-tune-epochs", type=int, default=10)
    # Options of the benchmarks, not of the tutorial; their defaults keep it as published.
    p.add_argument("--validation-data", default=None,
                   help="a folder of class folders to validate on; DATA is then used whole "
                        "for training (default: the tutorial's 80/20 split of DATA)")
    p.add_argument("--test-data", default=None,
                   help="a folder of class folders measured once after training")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the split and shuffle")
    p.add_argument("--weights", choices=("imagenet", "none"), default="imagenet",
                   help="'none': random initial weights (smoke runs only)")
    return p.parse_args()


def _weights_path(weights_dir: str) -> str:
    for candidate in (Path(weights_dir) / "models" / WEIGHTS_FILE,
                      Path(weights_dir) / WEIGHTS_FILE):
        if candidate.is_file():
            return str(candidate)
    raise SystemExit(f"{WEIGHTS_FILE} not found in {weights_dir} or {weights_dir}/models")


def main() -> None:
    args = _parse()
    import keras
    import tensorflow as tf

    t_imports = time.monotonic()

    if args.validation_data:
        train_dataset = keras.utils.image_dataset_from_directory(
            args.data, seed=args.seed, shuffle=True, batch_size=BATCH_SIZE,
            image_size=IMG_SIZE)
        validation_dataset = keras.utils.image_dataset_from_directory(
            args.validation_data, class_names=train_dataset.class_names, shuffle=False,
            batch_size=BATCH_SIZE, image_size=IMG_SIZE)
    else:
        train_dataset = keras.utils.image_dataset_from_directory(
            args.data, validation_split=0.2, subset="training", seed=args.seed,
            shuffle=True, batch_size=BATCH_SIZE, image_size=IMG_SIZE)
        validation_dataset = keras.utils.image_dataset_from_directory(
            args.data, validation_split=0.2, subset="validation", seed=args.seed,
            shuffle=True, batch_size=BATCH_SIZE, image_size=IMG_SIZE)
    class_names = train_dataset.class_names
    test_dataset = keras.utils.image_dataset_from_directory(
        args.test_data, class_names=class_names, shuffle=False, batch_size=BATCH_SIZE,
        image_size=IMG_SIZE) if args.test_data else None
    # Which files Keras put on each side: the benchmark gives tlgui this same split.
    split = {"train_files": list(train_dataset.file_paths),
             "validation_files": list(validation_dataset.file_paths)}
    autotune = tf.data.AUTOTUNE
    train_dataset = train_dataset.prefetch(buffer_size=autotune)
    validation_dataset = validation_dataset.prefetch(buffer_size=autotune)

    data_augmentation = keras.Sequential([
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomRotation(0.2),
    ])
    preprocess_input = keras.applications.mobilenet_v2.preprocess_input
    base_model = keras.applications.MobileNetV2(
        input_shape=(*IMG_SIZE, 3), include_top=False,
        weights=None if args.weights == "none" else _weights_path(args.weights_dir))
    base_model.trainable = False

    inputs = keras.Input(shape=(*IMG_SIZE, 3))
    x = data_augmentation(inputs)
    try:
        x = preprocess_input(x)
        preprocessing = "mobilenet_v2.preprocess_input on the KerasTensor"
    except Exception:  # the tutorial call failed: use the equivalent layer
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1)(x)
        preprocessing = "Rescaling(1/127.5, offset=-1) (preprocess_input failed)"
    x = base_model(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(len(class_names))(x)
    model = keras.Model(inputs, outputs)

    history: list[dict[str, Any]] = []
    t_start = time.monotonic()

    class EpochLog(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self, phase: int) -> None:
            super().__init__()
            self.phase = phase
            self.t_epoch = time.monotonic()

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.t_epoch = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            now = time.monotonic()
            row = {"epoch": epoch + 1, "phase": self.phase,
                   "loss": float(logs.get("loss", "nan")),
                   "accuracy": float(logs.get("accuracy", "nan")),
                   "val_loss": float(logs.get("val_loss", "nan")),
                   "val_accuracy": float(logs.get("val_accuracy", "nan")),
                   "seconds": now - self.t_epoch, "elapsed": now - t_imports}
            history.append(row)
            print(f"[{_stamp()}] phase {self.phase} epoch {row['epoch']:2d}"
                  f"  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}"
                  f"  val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}"
                  f"  ({row['seconds']:.1f} s, {row['elapsed']:.1f} s since data setup)",
                  flush=True)

    print(f"[{_stamp()}] phase 1: {len(class_names)} classes, backbone frozen, "
          f"Adam {BASE_LEARNING_RATE}, {args.initial_epochs} epochs", flush=True)
    t1 = time.monotonic()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=BASE_LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train_dataset, epochs=args.initial_epochs,
              validation_data=validation_dataset, verbose=0, callbacks=[EpochLog(1)])
    phase1_s = time.monotonic() - t1

    base_model.trainable = True
    for layer in base_model.layers[:FINE_TUNE_AT]:
        layer.trainable = False
    print(f"[{_stamp()}] phase 2: layers {FINE_TUNE_AT}..{len(base_model.layers) - 1} "
          f"unfrozen, RMSprop {BASE_LEARNING_RATE / 10}, {args.fine_tune_epochs} epochs",
          flush=True)
    t2 = time.monotonic()
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=BASE_LEARNING_RATE / 10),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    initial = len([h for h in history if h["phase"] == 1])
    model.fit(train_dataset, epochs=initial + args.fine_tune_epochs, initial_epoch=initial,
              validation_data=validation_dataset, verbose=0, callbacks=[EpochLog(2)])
    phase2_s = time.monotonic() - t2
    t_end = time.monotonic()
    test: dict[str, Any] = {}
    if test_dataset is not None:
        # Measured once, on the model as the recipe leaves it (its last epoch).
        _, test_accuracy = model.evaluate(test_dataset, verbose=0)
        test = {"test_accuracy": float(test_accuracy),
                "test_images": len(test_dataset.file_paths)}

    def last_acc(phase: int) -> float:
        rows = [h["val_accuracy"] for h in history if h["phase"] == phase]
        return rows[-1] if rows else float("nan")

    result = {
        "recipe": "reference", "data": str(Path(args.data).resolve()),
        "classes": class_names, "image_size": IMG_SIZE[0], "batch_size": BATCH_SIZE,
        "preprocessing": preprocessing, "backbone_layers": len(base_model.layers),
        "phase_seconds": {"1": phase1_s, "2": phase2_s},
        "setup_seconds": t_start - t_imports,
        "total_seconds": t_end - t_imports,
        "process_seconds": t_end - T_PROCESS,
        "phase_accuracy": {"1": last_acc(1), "2": last_acc(2)},
        "final_val_accuracy": last_acc(2) if args.fine_tune_epochs else last_acc(1),
        "history": history,
        **test,
        **split,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""Exports a run in every format and counts top-1 agreement with the in-memory model.

Usage:
    python bench/export_agreement.py RUN_FOLDER DATA_FOLDER

The validation split is re-derived from the run's config (same seed, same fraction). The
``.keras`` file is checked in a fresh ``python -I`` process that imports plain Keras only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PLAIN_KERAS = """
import sys, json, zipfile
import numpy as np, keras
assert "tlgui" not in sys.modules
model = keras.models.load_model(sys.argv[1])
names = json.loads(zipfile.ZipFile(sys.argv[1]).read("tlgui.json"))["class_names"]
x = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(x, batch_size=64, verbose=0))
print(json.dumps({"class_names": names}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    args = parser.parse_args()

    from tlgui.core.dataset import scan
    from tlgui.core.export import export_run
    from tlgui.core.predict import Predictor, load_image
    from tlgui.core.runs import load_config

    config = load_config(args.run)
    ds = scan(args.data, config.split)
    predictor = Predictor.load(args.run / "model.keras")
    size = predictor.image_size
    paths = [s.path for s in ds.validation]
    x = np.stack([load_image(p, size) for p in paths])
    t0 = time.perf_counter()
    ref = predictor.predict_pixels(x)
    print(f"in-memory model: {len(x)} validation images in {time.perf_counter() - t0:.1f}s")
    y = np.array([s.label for s in ds.validation])
    print(f"validation accuracy of the saved model: {(ref.argmax(1) == y).mean():.4f}")
    top = ref.argmax(1)
    results: dict[str, tuple[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        np.save(tmp / "x.npy", x)

        def record(name: str, probs: np.ndarray) -> None:
            same = int((probs.argmax(1) == top).sum())
            results[name] = (same, float(np.abs(probs - ref).max()))

        keras_file = export_run(args.run, "keras", tmp / "model.keras")[0]
        proc = subprocess.run([sys.executable, "-I", "-c", PLAIN_KERAS, str(keras_file),
                               str(tmp / "x.npy"), str(tmp / "k.npy")],
                              capture_output=True, text=True, cwd=tmp, check=True)
        record(".keras, fresh plain-Keras process", np.load(tmp / "k.npy"))
        print(proc.stdout.strip().splitlines()[-1])

        import tensorflow as tf

        export_run(args.run, "savedmodel", tmp / "saved")
        loaded = tf.saved_model.load(str(tmp / "saved"))
        pix = loaded.signatures["serve_pixels"]
        probs = np.concatenate([pix(image=tf.constant(x[i:i + 64]))["probabilities"].numpy()
                                for i in range(0, len(x), 64)])
        record("SavedModel serve_pixels", probs)
        by_bytes = loaded.signatures["serving_default"]
        probs = np.concatenate([
            by_bytes(image_bytes=tf.constant([p.read_bytes() for p in paths[i:i + 32]]))[
                "probabilities"].numpy() for i in range(0, len(paths), 32)])
        record("SavedModel serving_default (JPEG bytes, full-size decode)", probs)

        export_run(args.run, "tflite", tmp / "tfl")
        for fname in ("model.tflite", "model_quant.tflite"):
            interp = tf.lite.Interpreter(model_path=str(tmp / "tfl" / fname))
            interp.allocate_tensors()
            inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
            rows = []
            for i in range(len(x)):
                interp.set_tensor(inp["index"], x[i:i + 1].astype(inp["dtype"]))
                interp.invoke()
                rows.append(interp.get_tensor(out["index"])[0])
            record(f"TFLite {fname}", np.stack(rows))

        import onnxruntime as ort

        export_run(args.run, "onnx", tmp / "onnx")
        sess = ort.InferenceSession(str(tmp / "onnx" / "model.onnx"))
        name = sess.get_inputs()[0].name
        probs = np.concatenate([sess.run(None, {name: x[i:i + 64]})[0]
                                for i in range(0, len(x), 64)])
        record("ONNX (onnxruntime)", probs)

    print(f"\n| format | same top-1 as the in-memory model (of {len(x)}) | max prob. diff |")
    print("|---|---|---|")
    for name, (same, diff) in results.items():
        print(f"| {name} | {same} | {diff:.2e} |")
    print(json.dumps({k: v[0] for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

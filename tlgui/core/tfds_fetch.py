"""Writing a tensorflow-datasets image data set to disk as class folders (sample data).

A local, already prepared TFDS copy is used first; a download is tried only when the
download host answers within seconds, so an offline machine gets a clear error at once.
The destination is written in a temp folder beside it and renamed when complete.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tlgui.core.errors import Cancelled, DatasetError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.sample_sets import SAMPLE_DATASETS  # noqa: F401 - the names callers import
from tlgui.core.weights import _can_reach

log = logging.getLogger(__name__)

DOWNLOAD_HOSTS = ("storage.googleapis.com",)


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^\w\- ]+", "_", name, flags=re.UNICODE).strip(" .")
    return cleaned or "class"


def _load(name: str, data_dir: str | None) -> tuple[Any, Any]:
    import tensorflow_datasets as tfds

    kwargs: dict[str, Any] = {"split": "all", "with_info": True,
                              "data_dir": data_dir, "shuffle_files": False}
    try:
        return tfds.load(name, download=False, **kwargs)  # type: ignore[no-any-return]
    except Exception as local_exc:
        log.info("no prepared local copy of %s: %s", name, local_exc)
        if not any(_can_reach(h) for h in DOWNLOAD_HOSTS):
            raise DatasetError(
                f"The data set '{name}' is not on this computer and cannot be downloaded "
                "(no internet connection). Use a computer with internet, or give the "
                "folder of a prepared TensorFlow Datasets copy with --data-dir."
            ) from local_exc
        try:
            return tfds.load(name, download=True, **kwargs)  # type: ignore[no-any-return]
        except Exception as exc:
            raise DatasetError(f"Downloading the data set '{name}' failed: {exc}") from exc


def fetch_dataset(
    name: str,
    dest: Path,
    data_dir: str | None = None,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    limit: int | None = None,
) -> Path:
    """Writes the images of a TFDS image-classification set as ``dest/<class>/*.jpg``.

    Args:
        name: a TFDS name such as ``tf_flowers`` or ``cats_vs_dogs``.
        dest: a folder that does not exist yet, or an empty one.
        data_dir: a local TFDS data folder to read from.
        report: receives ``StageProgress("fetch", ...)``.
        cancel: set it to stop; nothing is left at ``dest``.
        limit: write at most this many images.

    Returns:
        ``dest``.

    Raises:
        DatasetError: offline without a local copy, unknown name, or ``dest`` not empty.
        Cancelled: ``cancel`` was set.
    """
    import numpy as np
    from PIL import Image

    cancel = cancel or threading.Event()
    dest = Path(dest).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DatasetError(f"{dest} already exists and is not empty; choose a new folder.")
    report(StageProgress("fetch", 0, 0, f"Opening {name}"))
    ds, info = _load(name, data_dir)
    features = info.features
    label_key = "label" if "label" in features else next(
        k for k in features if hasattr(features[k], "names"))
    names = [_safe_name(n) for n in features[label_key].names]
    total = int(info.splits["all"].num_examples) if "all" in info.splits else 0
    total = min(total, limit) if limit and total else (limit or total)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tlgui-fetch-", dir=dest.parent))
    try:
        for n in names:
            (tmp / n).mkdir(exist_ok=True)
        last = 0.0
        count = 0
        for i, example in enumerate(ds.as_numpy_iterator() if hasattr(ds, "as_numpy_iterator")
                                    else ds):
            if cancel.is_set():
                raise Cancelled("Fetching the data set cancelled.")
            if limit and i >= limit:
                break
            image = np.asarray(example["image"])
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            label = int(example[label_key])
            Image.fromarray(image.astype(np.uint8)).convert("RGB").save(
                tmp / names[label] / f"{name}_{i:06d}.jpg", "JPEG", quality=92)
            count += 1
            now = time.monotonic()
            if now - last > 0.1:
                last = now
                report(StageProgress("fetch", count, total, f"Writing {name} images"))
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report(StageProgress("fetch", count, count, f"Wrote {count} images"))
    return dest

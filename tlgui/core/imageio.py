"""Reading image files with Pillow: header probes for scanning, full decodes to RGB.

Only regular files are opened (``entries.open_regular``): a named pipe or a device named
``x.jpg`` is refused with a reason instead of hanging the reader. Every decode checks the
pixel count from the header before any pixel is decoded, and the pixels being decoded at
once by all threads are bounded (``DECODE_BUDGET_PIXELS``), so memory per image and in all
is bounded whatever the files hold.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from tlgui.core.entries import EntryProblem, open_regular, regular_file

if TYPE_CHECKING:
    import numpy as np

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP", "TIFF"})
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
MIN_SIDE = 32
# Pillow's own bomb threshold (about 89 million pixels): larger images are refused.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

# Pixels all decoding threads may hold at once: one image at the limit, or many small
# ones. A decode waits for room; an image alone always gets it.
DECODE_BUDGET_PIXELS = MAX_PIXELS

# Never let Pillow silently pad a truncated file with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageProblem(EntryProblem):
    """A file that cannot be used as a training image; ``reason`` is shown to the user."""


class _PixelBudget:
    """Bounds the pixels decoded at once across threads (a counting semaphore by pixels)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._used = 0

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        with self._cond:
            # An image alone may always decode; otherwise wait until the others fit.
            self._cond.wait_for(lambda: self._used == 0
                                or self._used + pixels <= DECODE_BUDGET_PIXELS)
            self._used += pixels
        try:
            yield
        finally:
            with self._cond:
                self._used -= pixels
                self._cond.notify_all()

    @property
    def used(self) -> int:
        """Pixels being decoded now."""
        return self._used


BUDGET = _PixelBudget()


@dataclass(frozen=True)
class ImageHeader:
    """What the header of an image file says, without decoding pixels."""

    format: str
    width: int
    height: int


@contextlib.contextmanager
def _as_image_problem(os_error: str, other_error: str) -> Iterator[None]:
    """Turns what Pillow raises on unusable files into ``ImageProblem`` with a reason.

    Args:
        os_error: the reason given for an ``OSError`` (its text is appended).
        other_error: the reason for any other exception a Pillow plugin raises.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageProblem:
        raise
    except EntryProblem as exc:
        raise ImageProblem(exc.reason) from exc
    except FileNotFoundError as exc:
        raise ImageProblem("file no longer exists") from exc
    except PermissionError as exc:
        raise ImageProblem("permission denied") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageProblem("decompression bomb: too many pixels to decode safely") from exc
    except UnidentifiedImageError as exc:
        raise ImageProblem("not an image (Pillow cannot identify the file)") from exc
    except OSError as exc:
        raise ImageProblem(f"{os_error} ({exc})") from exc
    except Exception as exc:  # Pillow plugins raise assorted errors on junk input.
        raise ImageProblem(f"{other_error} ({type(exc).__name__}: {exc})") from exc


def probe(path: Path, min_side: int = MIN_SIDE) -> ImageHeader:
    """Reads an image header and checks it is usable.

    Args:
        path: the file.
        min_side: smallest accepted width and height in pixels.

    Returns:
        The format and size.

    Raises:
        ImageProblem: with a reason a user understands.
    """
    try:
        size = regular_file(path).st_size
    except EntryProblem as exc:
        raise ImageProblem(exc.reason) from exc
    return probe_sized(path, size, min_side)[0]


def probe_sized(path: Path, file_size: int, min_side: int = MIN_SIDE,
                whole_up_to: int = 0) -> tuple[ImageHeader, bytes | None]:
    """``probe`` for a file whose size a ``regular_file`` look just gave.

    A file of at most ``whole_up_to`` bytes is read whole, in one read, and its header
    parsed from those bytes: Pillow sees the same bytes as from the file, and the
    caller gets them too (the scan hashes them for its duplicate check without opening
    the file a second time). Larger files are parsed from the file, header only.

    Args:
        path: the file (a regular file, or a link to one: looked at by the caller).
        file_size: its size in bytes, from that look.
        min_side: smallest accepted width and height in pixels.
        whole_up_to: read files up to this many bytes whole; 0 reads headers only.

    Returns:
        (the format and size, the file's bytes when it was read whole, else None).

    Raises:
        ImageProblem: with a reason a user understands.
    """
    if file_size == 0:
        raise ImageProblem("empty file (0 bytes)")
    content = None
    with _as_image_problem("cannot read image header", "broken image header"), \
            open_regular(path) as fh:
        if file_size <= whole_up_to:
            # One more byte than allowed tells a file that grew since it was looked at.
            content = fh.read(whole_up_to + 1)
            if len(content) > whole_up_to:
                content = None
                fh.seek(0)
        with Image.open(fh if content is None else io.BytesIO(content)) as img:
            fmt = img.format or "?"
            width, height = img.size
    if fmt not in SUPPORTED_FORMATS:
        raise ImageProblem(f"unsupported format {fmt}")
    _check_pixels(width, height)
    if min(width, height) < min_side:
        raise ImageProblem(f"too small ({width}x{height} px, the minimum is {min_side} px)")
    return ImageHeader(fmt, width, height), content


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Image.Image]:
    """Pillow's image on a regular file opened by tlgui (never a pipe or device)."""
    with open_regular(path) as fh, Image.open(fh) as img:
        yield img


def _check_pixels(width: int, height: int) -> None:
    # Pillow only warns below twice its limit, and a warning filter set in one thread
    # is not reliably in force in another: check the header's numbers ourselves.
    if width * height > MAX_PIXELS:
        raise ImageProblem("decompression bomb: too many pixels to decode safely")


def _to_rgb(img: Image.Image) -> Image.Image:
    import numpy as np  # here, not at the top: the window imports this module at start

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit and 32-bit integer greyscale: scale the full range down to 8 bits, in
        # float32 (4 bytes a pixel, half of float64's peak). v / 257 + 0.5 never lies
        # within 0.0019 of an integer, far above float32's error: the same bytes result.
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr *= 255.0 / top
        arr += 0.5
        arr8 = np.clip(arr, 0, 255, out=arr).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo or 1.0) * 255.0
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def decode_rgb(path: Path, draft_size: int | None = None) -> np.ndarray:
    """Decodes a whole image to an RGB uint8 array, upright as EXIF says.

    GIFs and multi-page TIFFs give their first frame; greyscale, palette, RGBA, CMYK
    and 16-bit images become 8-bit RGB (alpha is dropped, as TensorFlow's decoders do).

    Args:
        path: the file.
        draft_size: for JPEGs, let the decoder scale down by a power of two while
            keeping both sides at least this large (much faster on big photos).

    Returns:
        An array of shape (height, width, 3), dtype uint8.

    Raises:
        ImageProblem: the file is unreadable, truncated or not an image.
    """
    import numpy as np

    with _as_image_problem("corrupt or truncated image", "cannot decode image"), \
            _open(path) as img:
        if img.format not in SUPPORTED_FORMATS:
            raise ImageProblem(f"unsupported format {img.format}")
        _check_pixels(*img.size)
        if draft_size and img.format == "JPEG":
            img.draft("RGB", (draft_size, draft_size))
        with BUDGET.hold(img.size[0] * img.size[1]):
            img.seek(0)
            img.load()
            arr = np.asarray(_to_rgb(ImageOps.exif_transpose(img)), dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise ImageProblem(f"unexpected decoded shape {arr.shape}")
    return arr

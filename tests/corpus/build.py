"""Builds the bad-input corpus: a dataset folder full of awkward files, and what should happen.

Every file is made by code here, at test time. ``build_corpus`` returns the folder and,
for each file, the expected outcome: ``used`` as is, ``converted`` to 8-bit RGB,
``skipped`` by the scan with a named reason, or ``dropped`` later (at decode, when
training loads pixels) with a named reason. Two files are changed after the scan
(``Corpus.after_scan``): one deleted, one replaced by garbage.
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from tests.imagegen import make_image

Outcome = Literal["used", "converted", "skipped", "dropped"]
GOOD_SIZE = (48, 40)
# 8 nested folders of 120 characters: about 1,000 characters of path, past Windows'
# old 260 limit and most tools' comfort, still under Linux's 4,096.
LONG_PATH_PARTS = tuple(f"{i}_" + "long" * 29 + "xx" for i in range(8))


@dataclass(frozen=True)
class Expect:
    """What must happen to one file.

    Attributes:
        outcome: ``used``, ``converted``, ``skipped`` (at scan) or ``dropped`` (at decode).
        reason: for skipped/dropped files, the start of the reason shown to the user.
        case: the case in words (the table in ``docs/reliability.md``).
    """

    outcome: Outcome
    reason: str = ""
    case: str = ""


@dataclass
class Corpus:
    """The generated dataset and its expectations.

    Attributes:
        root: the dataset folder (class folders ``alpha``, ``beta``, ``solo``, ``empty``).
        expected: relative POSIX path -> expectation, for every file and symlink.
        unreadable: a valid image the test must make unreadable (monkeypatch).
        exif_rotated: a JPEG stored landscape, shown portrait: blue on top when upright.
        deleted: deleted by ``after_scan``.
        garbled: replaced by garbage of another size by ``after_scan``.
        garbled_same_stat: replaced by garbage of the same size and modification time.
        conflict: the same bytes in two classes.
        folder_named_jpg: a folder called ``x.jpg`` holding one good image.
        outside: a folder beside ``root`` holding a symlink's target.
    """

    root: Path
    expected: dict[str, Expect] = field(default_factory=dict)
    unreadable: Path = Path()
    exif_rotated: Path = Path()
    deleted: Path = Path()
    garbled: Path = Path()
    garbled_same_stat: Path = Path()
    conflict: tuple[Path, Path] = (Path(), Path())
    folder_named_jpg: Path = Path()
    outside: Path = Path()

    def rel(self, path: Path) -> str:
        """The key of ``path`` in ``expected``."""
        return path.relative_to(self.root).as_posix()

    def add(self, path: Path, outcome: Outcome, reason: str = "", case: str = "") -> Path:
        """Records the expectation of a file written at ``path``."""
        self.expected[self.rel(path)] = Expect(outcome, reason, case or path.name)
        return path

    def after_scan(self) -> None:
        """Changes files under the scanned dataset, as a user might while training starts."""
        self.deleted.unlink()
        self.garbled.write_bytes(b"\x00garbage, not the photo any more\n" * 50)
        st = self.garbled_same_stat.stat()
        size = st.st_size
        self.garbled_same_stat.write_bytes((b"junk" * (size // 4 + 1))[:size])
        os.utime(self.garbled_same_stat, ns=(st.st_atime_ns, st.st_mtime_ns))

    def by_outcome(self, *outcomes: Outcome) -> dict[str, Expect]:
        """The expectations with one of these outcomes."""
        return {k: v for k, v in self.expected.items() if v.outcome in outcomes}


def _bomb_png() -> bytes:
    """A valid 1x1 PNG whose header claims 30000 x 30000 pixels (CRC fixed up)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = (30000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def _exif_rotated(path: Path) -> None:
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 40))  # left half blue: the top once rotated
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    img.save(path, exif=exif.tobytes(), quality=95)


def _good(seed: int, color: tuple[int, int, int] = (200, 40, 40)) -> Image.Image:
    return make_image(color, GOOD_SIZE, seed, "hstripes")


def _formats(c: Corpus, d: Path) -> None:
    """Odd but valid encodings: each is used, most after a conversion to RGB."""
    base = _good(900)
    base.convert("L").save(c.add(d / "gray.png", "converted", case="greyscale PNG"))
    base.convert("CMYK").save(c.add(d / "cmyk.jpg", "converted", case="CMYK JPEG"))
    base.convert("P").save(c.add(d / "palette_alpha.png", "converted",
                                 case="palette PNG with transparency"), transparency=0)
    base.convert("RGBA").save(c.add(d / "rgba.png", "converted", case="RGBA PNG"))
    sixteen = (np.linspace(0, 65535, 48 * 40).reshape(40, 48)).astype(np.uint16)
    Image.fromarray(sixteen).save(c.add(d / "sixteen_bit.png", "converted",
                                        case="16-bit PNG"))
    frames = [base, _good(901, (40, 200, 40))]
    frames[0].save(c.add(d / "animated.gif", "converted", case="animated GIF (first frame)"),
                   save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(c.add(d / "pages.tif", "used", case="multi-page TIFF (first page)"),
                   save_all=True, append_images=frames[1:])
    base.save(c.add(d / "photo.webp", "used", case="WebP"))
    c.exif_rotated = c.add(d / "rotated.jpg", "used", case="EXIF-rotated JPEG")
    _exif_rotated(c.exif_rotated)


def _broken(c: Corpus, d: Path) -> None:
    """Files that are not usable images: each skipped at scan or dropped at decode."""
    c.add(d / "zero.jpg", "skipped", "empty file", "zero-byte file").write_bytes(b"")
    c.add(d / "text.jpg", "skipped", "not an image", "text saved as .jpg").write_text(
        "hello, I am a text file\n")
    c.add(d / "page.png", "skipped", "not an image", "HTML saved as .png").write_text(
        "<!doctype html><html><body>404 Not Found</body></html>\n")
    c.add(d / "bomb.png", "skipped", "decompression bomb",
          "decompression-bomb header (30000x30000)").write_bytes(_bomb_png())
    Image.new("RGB", (1, 1), (9, 9, 9)).save(
        c.add(d / "one_pixel.png", "skipped", "too small (1x1 px", "1x1 image"))
    buf = io.BytesIO()
    _good(902).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    c.add(d / "truncated.jpg", "dropped", "corrupt or truncated image",
          "truncated JPEG (header fine, pixels cut)").write_bytes(data[: len(data) // 2])


def _names_and_links(c: Corpus, d: Path) -> None:
    """Awkward names, a very long path and symbolic links of every kind."""
    for i, name in enumerate(("with space.jpg", "café crème.jpg", "向日葵.png",
                              "🌻 sunflower.png")):
        _good(910 + i).save(c.add(d / name, "used", case=f"name '{name}'"))
    long_dir = d.joinpath(*LONG_PATH_PARTS)
    long_dir.mkdir(parents=True)
    long_file = long_dir / ("very_long_name_" + "x" * 180 + ".png")
    _good(920).save(c.add(long_file, "used", case=f"path of {len(str(long_file))} chars"))
    target = c.outside / "linked target.png"
    _good(921).save(target)
    link = d / "link_to_image.png"
    link.symlink_to(target)
    c.add(link, "used", case="symlink to an image (outside the dataset)")
    broken = d / "broken_link.jpg"
    broken.symlink_to(d / "does-not-exist.jpg")
    c.add(broken, "skipped", "broken symbolic link", "broken symlink")
    loop = d / "loop.jpg"
    loop.symlink_to(loop)
    c.add(loop, "skipped", "broken symbolic link", "symlink loop (a link to itself)")
    up = d / "loop_dir"
    up.symlink_to(d, target_is_directory=True)
    c.add(up, "skipped", "link to a folder, not followed",
          "symlink loop (a folder link to its own folder)")
    c.folder_named_jpg = d / "x.jpg"
    c.folder_named_jpg.mkdir()
    _good(922).save(c.add(c.folder_named_jpg / "inside.png", "used",
                          case="image inside a folder named x.jpg"))


def build_corpus(base: Path) -> Corpus:
    """Writes the corpus under ``base`` and returns it.

    ``base/data`` is the dataset, ``base/outside`` holds the target of a symlink.
    """
    c = Corpus(root=base / "data", outside=base / "outside")
    c.outside.mkdir(parents=True)
    alpha, beta, solo = c.root / "alpha", c.root / "beta", c.root / "solo"
    for folder in (alpha, beta, solo, c.root / "empty"):
        folder.mkdir(parents=True)
    for i in range(8):
        _good(i).save(c.add(alpha / f"good_{i}.jpg", "used", case="ordinary JPEG"))
        _good(100 + i, (40, 60, 200)).save(c.add(beta / f"good_{i}.jpg", "used",
                                                 case="ordinary JPEG"))
    _good(200, (220, 210, 40)).save(c.add(solo / "only.jpg", "used",
                                          case="class with one image"))
    _formats(c, alpha)
    _broken(c, alpha)
    _names_and_links(c, alpha)
    c.unreadable = c.add(alpha / "locked.jpg", "skipped", "permission denied",
                         "unreadable file (PermissionError)")
    _good(300).save(c.unreadable)
    dup = io.BytesIO()
    _good(301).save(dup, "JPEG")
    c.conflict = (c.add(alpha / "same.jpg", "used", case="same image in two classes"),
                  c.add(beta / "same.jpg", "used", case="same image in two classes"))
    for p in c.conflict:
        p.write_bytes(dup.getvalue())
    c.deleted = c.add(beta / "deleted_later.jpg", "dropped", "file was deleted after the scan",
                      "file deleted between scan and training")
    _good(302, (40, 60, 200)).save(c.deleted)
    c.garbled = c.add(beta / "garbled_later.jpg", "dropped", "file changed after the scan",
                      "file replaced by garbage between scan and training")
    _good(303, (40, 60, 200)).save(c.garbled)
    c.garbled_same_stat = c.add(
        beta / "garbled_same_stat.jpg", "dropped", "not an image",
        "file replaced by garbage of the same size and time (caught at decode)")
    _good(304, (40, 60, 200)).save(c.garbled_same_stat)
    return c


def corpus_entries(root: Path) -> set[str]:
    """Every file and symlink under ``root`` (symlinks not followed), as relative paths."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in (*filenames, *dirnames):
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_dir():
                out.add(p.relative_to(root).as_posix())
    return out

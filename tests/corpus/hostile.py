"""Builds the hostile corpus: entries a careless or hostile user could put in a dataset.

The first corpus (``build.py``) holds awkward *images*; this one holds awkward *entries*:
pipes, sockets and devices named like images, names that are not valid UTF-8, paths
longer than the system allows, links to ``/``, to the dataset itself and outside it,
folders and link targets that cannot be read, file names that are spreadsheet formulas,
and a file swapped for a pipe between the scan and the training. Every entry is made by
code at test time and carries its expected outcome, as in ``build.py``.

Two entries need a test's help to be unreadable (tests run as root, where permissions
do not stop reading): ``Hostile.locked`` lists the folders to pass to
``tests.reliability.helpers.deny_entering`` while scanning or predicting.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from tests.corpus.build import Expect, Outcome, _good

# Linux's PATH_MAX is 4,096 bytes; a folder path just under it and a name of 250 bytes
# give a file whose path cannot be used by name at all.
_FOLDER_TARGET = 3900
FORMULA_NAMES = ("=HYPERLINK(1).jpg", "+cmd.jpg", "-2+3.jpg", "@SUM(A1).jpg")
UNDECODABLE = os.fsdecode(b"caf\xe9")  # Latin-1 "café": not valid UTF-8


@dataclass
class Hostile:
    """The generated dataset and its expectations.

    Attributes:
        root: the dataset folder (class folders ``alpha`` and ``beta``).
        outside: a folder beside ``root`` holding link targets.
        expected: relative path -> expectation, for every entry the scan must use or
            list (keys hold undecodable names as Python keeps them).
        locked: folders to make unreadable with ``deny_entering``.
        swapped: replaced by a named pipe by ``after_scan``.
        formula_files: the images whose names are spreadsheet formulas.
        undecodable_file: an image whose name is not valid UTF-8.
    """

    root: Path
    outside: Path
    expected: dict[str, Expect] = field(default_factory=dict)
    locked: list[Path] = field(default_factory=list)
    swapped: Path = Path()
    formula_files: list[Path] = field(default_factory=list)
    undecodable_file: Path = Path()

    def rel(self, path: Path) -> str:
        """The key of ``path`` in ``expected``."""
        return Path(os.path.relpath(path, self.root)).as_posix()

    def add(self, path: Path, outcome: Outcome, reason: str = "", case: str = "") -> Path:
        """Records the expectation of an entry at ``path``."""
        self.expected[self.rel(path)] = Expect(outcome, reason, case or path.name)
        return path

    def by_outcome(self, *outcomes: Outcome) -> dict[str, Expect]:
        """The expectations with one of these outcomes."""
        return {k: v for k, v in self.expected.items() if v.outcome in outcomes}

    def after_scan(self) -> None:
        """Swaps an image for a named pipe, as a user's other program might mid-run."""
        self.swapped.unlink()
        os.mkfifo(self.swapped)


def _image_bytes(seed: int) -> bytes:
    import io

    buf = io.BytesIO()
    _good(seed).save(buf, "PNG")
    return buf.getvalue()


def _overlong(h: Hostile, folder: Path) -> None:
    """A folder path near the limit holding a file and a folder that go past it.

    Made through directory descriptors: the paths cannot be used by name.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    path = folder
    try:
        i = 0
        while len(os.fsencode(str(path))) < _FOLDER_TARGET:
            name = f"{i:02d}" + "d" * min(200, _FOLDER_TARGET - len(str(path)) + 2)
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, path, i = nfd, path / name, i + 1
        data = _image_bytes(700)
        file_name = "f" * 246 + ".png"
        wfd = os.open(file_name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(wfd, data)
        os.close(wfd)
        h.add(path / file_name, "skipped", "path too long for the system",
              f"file path of {len(os.fsencode(str(path / file_name))):,} bytes")
        sub = "g" * 250
        os.mkdir(sub, dir_fd=fd)
        sfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        wfd = os.open("inside.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=sfd)
        os.write(wfd, data)
        os.close(wfd)
        os.close(sfd)
        h.add(path / sub, "skipped", "folder path too long for the system",
              "folder path over 4,096 bytes (its files cannot be read)")
    finally:
        os.close(fd)


def _special_files(h: Hostile, d: Path) -> None:
    """Entries named like images that are not regular files: opening one could hang."""
    os.mkfifo(h.add(d / "pipe.jpg", "skipped", "not a regular file (a named pipe)",
                    "named pipe called pipe.jpg"))
    os.mknod(h.add(d / "socket.png", "skipped", "not a regular file (a socket)",
                   "socket called socket.png"), stat.S_IFSOCK | 0o600)
    (d / "zero.jpg").symlink_to("/dev/zero")
    h.add(d / "zero.jpg", "skipped", "not a regular file (a character device)",
          "link to /dev/zero (endless) called zero.jpg")


def _names(h: Hostile, d: Path) -> None:
    """Names that are valid on disk but not as UTF-8 text, or are spreadsheet formulas."""
    h.undecodable_file = d / (UNDECODABLE + ".png")
    _good(710).save(h.add(h.undecodable_file, "used", case="file name not valid UTF-8"),
                    "PNG")
    for i, name in enumerate(FORMULA_NAMES):
        p = h.add(d / name, "used", case=f"file name {name!r} (a spreadsheet formula)")
        _good(720 + i).save(p, "JPEG")
        h.formula_files.append(p)


def _unreadable(h: Hostile, d: Path) -> None:
    """A subfolder and a link target that cannot be read (with ``deny_entering``)."""
    locked_sub = d / "locked_sub"
    locked_sub.mkdir()
    _good(730).save(locked_sub / "hidden_from_us.jpg")
    h.add(locked_sub, "skipped", "folder cannot be opened (permission denied)",
          "sub-folder that cannot be opened")
    h.locked.append(locked_sub)
    target_dir = h.outside / "locked"
    target_dir.mkdir()
    _good(731).save(target_dir / "pic.jpg")
    (d / "into_locked.jpg").symlink_to(target_dir / "pic.jpg")
    h.add(d / "into_locked.jpg", "skipped", "symbolic link into a place that cannot be "
          "read (permission denied)", "link into a folder that cannot be read")
    h.locked.append(target_dir)


def _top_level(h: Hostile) -> None:
    """Class-folder candidates that must not be used: links leading anywhere, odd names."""
    (h.root / "root_link").symlink_to("/", target_is_directory=True)
    h.add(h.root / "root_link", "skipped", "link to a folder, not followed",
          "class folder that is a link to /")
    (h.root / "self_link").symlink_to(h.root, target_is_directory=True)
    h.add(h.root / "self_link", "skipped", "link to a folder, not followed",
          "class folder that is a link to the dataset itself")
    elsewhere = h.outside / "elsewhere"
    elsewhere.mkdir()
    for i in range(3):
        _good(740 + i).save(elsewhere / f"e{i}.jpg")
    (h.root / "outside_link").symlink_to(elsewhere, target_is_directory=True)
    h.add(h.root / "outside_link", "skipped", "link to a folder, not followed",
          "class folder that is a link outside the dataset")
    bad_class = h.root / (UNDECODABLE + "_class")
    bad_class.mkdir()
    for i in range(3):
        _good(750 + i).save(bad_class / f"c{i}.jpg")
    h.add(bad_class, "skipped", "folder name is not valid UTF-8",
          "class folder whose name is not valid UTF-8")
    two_lines = h.root / "cat\ndog"
    two_lines.mkdir()
    _good(755).save(two_lines / "c.jpg")
    h.add(two_lines, "skipped", "folder name holds a line break",
          "class folder whose name holds a line break")
    os.mkfifo(h.add(h.root / "loose_pipe.jpg", "skipped",
                    "not a regular file (a named pipe)",
                    "named pipe beside the class folders"))


def build_hostile(base: Path) -> Hostile:
    """Writes the hostile corpus under ``base`` (``base/data``, ``base/outside``)."""
    h = Hostile(root=base / "data", outside=base / "outside")
    h.outside.mkdir(parents=True)
    alpha, beta = h.root / "alpha", h.root / "beta"
    for folder in (alpha, beta):
        folder.mkdir(parents=True)
    for i in range(8):
        _good(i).save(h.add(alpha / f"good_{i}.jpg", "used", case="ordinary JPEG"))
        _good(100 + i, (40, 60, 200)).save(h.add(beta / f"good_{i}.jpg", "used",
                                                 case="ordinary JPEG"))
    h.swapped = h.add(beta / "swapped.jpg", "dropped", "file changed after the scan",
                      "file replaced by a named pipe between scan and training")
    _good(760, (40, 60, 200)).save(h.swapped)
    _special_files(h, alpha)
    _names(h, alpha)
    _unreadable(h, alpha)
    _overlong(h, alpha)
    _top_level(h)
    return h

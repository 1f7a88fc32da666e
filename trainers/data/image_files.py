"""Finding the image files of a folder and checking each one cheaply before training.

A long run must not die on image 900,000 because that file is empty or was cut short by a failed
copy. Decoding every file up front would cost a whole epoch, so each file is checked by what its
bytes must hold: the signature of its format at the start and the format's end marker at the end
(JPEG's EOI, PNG's IEND chunk, GIF's trailer, BMP's declared size). That finds empty, truncated,
unreadable and mislabelled files in two small reads per file; TensorFlow's decoders accept the
rest, whatever their colour mode (grayscale, RGBA, palette, CMYK, 16-bit).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_SIGNATURES = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"GIF87a": "gif", b"GIF89a": "gif",
               b"BM": "bmp"}
_TAIL = 1024  # bytes read from the end; JPEG writers may pad a little after the end marker


@dataclass
class FileCheck:
    """The files of a folder that can be read, and those that cannot, with the reason."""

    good: list = field(default_factory=list)
    bad: list = field(default_factory=list)  # (path, reason)

    def report(self, strict: bool, where: str) -> list:
        """The good files. Under `strict` a bad file is an error naming it; otherwise each is
        one warning line on stderr."""
        if self.bad and strict:
            path, reason = self.bad[0]
            more = f" (and {len(self.bad) - 1} more)" if len(self.bad) > 1 else ""
            raise DataError(f"{path}: {reason}{more}; remove it, or set `data: {{strict: false}}` to skip "
                            "bad images with a warning")
        for path, reason in self.bad:
            print(f"warning: skipping {path}: {reason}", file=sys.stderr)
        if not self.good:
            raise DataError(f"{where} has no readable images ({len(self.bad)} could not be read)")
        return self.good


def problem(path) -> str | None:
    """Why `path` cannot be an image we can decode, or None when it looks whole."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "an empty file (0 bytes)"
        with open(path, "rb") as handle:
            head = handle.read(16)
            handle.seek(max(0, size - _TAIL))
            tail = handle.read(_TAIL)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    kind = next((name for signature, name in _SIGNATURES.items() if head.startswith(signature)), None)
    if kind is None:
        return f"not a PNG, JPEG, GIF or BMP image (it starts with {head[:8]!r})"
    if kind == "jpeg" and b"\xff\xd9" not in tail:
        return "a truncated JPEG (no end-of-image marker)"
    if kind == "png" and b"IEND" not in tail:
        return "a truncated PNG (no IEND chunk)"
    if kind == "gif" and b";" not in tail[-16:]:
        return "a truncated GIF (no trailer)"
    if kind == "bmp" and len(head) >= 6 and int.from_bytes(head[2:6], "little") > size:
        return f"a truncated BMP ({size} of {int.from_bytes(head[2:6], 'little')} bytes)"
    return None


def check_files(paths: list) -> FileCheck:
    """`problem` for every path (threads: the checks wait on the disk, not the CPU)."""
    result = FileCheck()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for path, reason in zip(paths, pool.map(problem, paths, chunksize=256)):
            if reason is None:
                result.good.append(str(path))
            else:
                result.bad.append((str(path), reason))
    return result


def image_files(folder: Path, recursive: bool = False) -> tuple[list, list]:
    """(images, other files) directly in `folder` (or below it), sorted, hidden files left out."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    images, others = [], []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file():
            continue
        (images if entry.suffix.lower() in IMAGE_SUFFIXES else others).append(entry)
    return sorted(images), sorted(others)


def note_other_files(others: list, folder: Path) -> None:
    """One line for files that are not images, so a wrong folder is noticed."""
    if others:
        example = others[0].name
        print(f"note: {folder}: {len(others)} file(s) that are not images are ignored (e.g. {example}; "
              f"images end in {', '.join(IMAGE_SUFFIXES)})", file=sys.stderr)

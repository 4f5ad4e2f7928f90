"""Finding and opening the input: paths, folders and globs to files; files to bytes.

Everything that touches the file system before a line exists lives here, so that limits
and refusals (binary files, broken gzip) are decided in one place and reported the same
way: as a problem sentence for the file, never an exception.
"""

from __future__ import annotations

import glob
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

from timeline.errors import NoInputError

PathLike = str | os.PathLike[str]


def expand(paths: PathLike | Iterable[PathLike]) -> list[str]:
    """Every file that ``paths`` names, folders walked and globs expanded, in order."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    found: list[str] = []
    missing: list[str] = []
    for given in map(str, paths):
        if os.path.exists(given):
            matches = [given]
        elif any(ch in given for ch in "*?["):
            matches = sorted(glob.glob(given, recursive=True))
        else:
            matches = []
        if not matches:
            missing.append(given)
        for match in matches:
            if os.path.isdir(match):
                found.extend(
                    str(p)
                    for p in sorted(Path(match).rglob("*"))
                    if p.is_file() and not p.name.startswith(".")
                )
            else:
                found.append(match)
    if missing:
        raise NoInputError(f"no such file or folder: {', '.join(missing)}")
    if not found:
        raise NoInputError("the paths given hold no files")
    return list(dict.fromkeys(found))


def read_bytes(path: str) -> tuple[bytes | None, list[str]]:
    """The file's bytes (gunzipped), or None and why not."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return None, [f"cannot read: {exc.strerror or exc}"]
    problems = []
    if data[:2] == b"\x1f\x8b":
        data, problem = gunzip(data)
        if problem:
            problems.append(problem)
    if b"\x00" in data[:8192]:
        return None, [*problems, "binary file (it holds NUL bytes): skipped"]
    return data, problems


def gunzip(data: bytes) -> tuple[bytes, str | None]:
    """Decompress every gzip member; a truncated or corrupt end keeps what came before it."""
    out = []
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out.append(inflater.decompress(data))
        except zlib.error as exc:
            out.append(inflater.flush())
            done = sum(map(len, out))
            return b"".join(out), f"corrupt gzip ({exc}); kept the {done:,} bytes before it"
        if not inflater.eof:
            out.append(inflater.flush())
            done = sum(map(len, out))
            return b"".join(out), f"truncated gzip: kept the {done:,} bytes it held"
        data = inflater.unused_data
    return b"".join(out), None

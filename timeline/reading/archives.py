"""Archives: what a ``.zip`` or a ``.tar`` (packed with gzip, bzip2, xz or zstd, or not at
all) holds is unpacked to a folder of the read, and each file in it is read as a file of
its own, shown under the archive's name: ``bundle.tar.gz/nodes/n1/var/log/pods/...``. A
support bundle, a must-gather, an sosreport or a CI run's log archive is read as it was
downloaded, and the layouts of the paths inside still name hosts and pods.

Unpacking is the one place where the tool writes what an input holds, so it takes care:

- Only regular files are made. A link, a device or a folder entry is not; a link is said
  as skipped, as a folder walk says one.
- A member's name becomes a path under the folder only: a leading ``/`` and ``..`` parts
  are dropped, so nothing is written outside it.
- What comes out is bounded as a compressed file's reading is
  (:class:`~timeline.reading.sources.Limits`): a member is cut at
  ``max_expanded_bytes``, and an archive that expands more than ``max_ratio`` times its
  size (once ``ratio_floor_bytes`` are out) is a decompression bomb, unpacked to that
  point. Each is said.
- An archive inside an archive is unpacked too, to a depth of :data:`MAX_DEPTH`.
- An encrypted zip member, a corrupt or truncated archive: what could be read is kept and
  the rest is said.

The files are unpacked where the read keeps its event store, so a Dask cluster's workers
read them only where they share that folder; give a cluster the unpacked folder instead.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from timeline.reading.sources import (
    LIMITS,
    Limits,
    Scan,
    archive_stream,
    each_copy_once,
    shown_name,
    size_text,
)

#: Names of the archives that are unpacked.
SUFFIXES = (
    ".zip",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz",
    ".tbz2",
    ".tar.xz",
    ".txz",
    ".tar.zst",
    ".tzst",
)
#: Archives inside archives are unpacked this deep, no deeper.
MAX_DEPTH = 3
#: The most members one archive may give; a larger one is unpacked to that many.
MAX_MEMBERS = 200_000
#: Bytes copied at a time.
_COPY_BYTES = 1 << 20


def is_archive(path: str) -> bool:
    """Whether ``path`` names an archive to unpack.

    >>> is_archive("must-gather.tar.gz"), is_archive("logs_42.ZIP"), is_archive("kubelet.log.gz")
    (True, True, False)
    """
    return path.lower().endswith(SUFFIXES)


def unpacked(found: Scan, into: str, limits: Limits = LIMITS) -> Scan:
    """``found`` with each archive in it replaced by the files it holds, unpacked under
    ``into`` (each archive in a folder of its own), in the place the archive had; what
    was not unpacked is said in ``skipped``, as is a file that copies another (an EKS
    log collector's tarball holds each pod's log twice; a tarball beside its unpacked
    folder), see :func:`~timeline.reading.sources.each_copy_once`."""
    if not any(is_archive(path) for path in found.files):
        return found
    out = Scan(skipped=list(found.skipped), names=dict(found.names))
    for path in found.files:
        if not is_archive(path):
            out.files.append(path)
            continue
        inner = unpack(path, found.names.get(path) or shown_name(path), into, limits)
        out.files += inner.files
        out.names |= inner.names
        out.skipped += inner.skipped
        out.unpacked |= inner.unpacked
    out.files = each_copy_once(out)
    return out


def unpack(path: str, shown: str, into: str, limits: Limits = LIMITS, *, depth: int = 0) -> Scan:
    """Unpack the archive ``path`` (shown as ``shown``) into a new folder under ``into``:
    the files it holds as a :class:`~timeline.reading.sources.Scan` (in the archive's
    order, shown as ``archive/member``, the folders of the archives in ``unpacked``).
    Never raises for what the archive holds: problems are sentences in ``skipped``."""
    found = Scan()
    problems: list[str] = []
    try:
        folder = found.unpacked[shown] = _new_folder(into)
        budget = _Budget(limits, os.path.getsize(path))
        zipped = path.lower().endswith(".zip")
        members = _zip_members(path) if zipped else _tar_members(path, limits, problems)
        for n, (name, kind, opened, mtime) in enumerate(members):
            if n >= MAX_MEMBERS:
                found.skipped.append((shown, f"more than {MAX_MEMBERS:,} members: the rest left"))
                break
            member = _safe_name(name)
            where = f"{shown}/{member}"
            target = os.path.join(folder, member)
            said = _member(kind, member, target, opened, mtime, found, budget)
            if said:
                found.skipped.append((where, said))
            elif kind == "file" and is_archive(member) and depth + 1 < MAX_DEPTH:
                inner = unpack(target, where, into, limits, depth=depth + 1)
                found.files += inner.files
                found.names |= inner.names
                found.skipped += inner.skipped
                found.unpacked |= inner.unpacked
                os.remove(target)
            elif kind == "file" and member:
                found.files.append(target)
                found.names[target] = where
            if budget.spent:
                found.skipped.append((shown, budget.spent))
                break
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        problems.append(str(exc) or type(exc).__name__)
    if problems:
        found.skipped.append((shown, _cut_short(problems, found)))
    return found


def _member(
    kind: str,
    member: str,
    target: str,
    opened: Callable[[], IO[bytes]] | None,
    mtime: float | None,
    found: Scan,
    budget: _Budget,
) -> str | None:
    """Unpack one member to ``target``, or say why it is not: a link, an encrypted zip
    member, a second member of the same name, one that cannot be written or read (a
    member named as another's folder, a zip method Python lacks: Deflate64). A member
    that is no file and no link (a folder, a device) is passed over unsaid."""
    if kind == "link":
        return "link inside an archive: skipped"
    if kind != "file" or not member:
        return None
    if opened is None:
        return "encrypted member of a zip: skipped"
    if target in found.names or os.path.exists(target):
        return "a second member of the same name: the first is read"
    try:
        with opened() as source:
            said = _copy(source, target, budget)
        if mtime is not None:
            os.utime(target, (mtime, mtime))
    except (OSError, NotImplementedError, zlib.error) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if os.path.isfile(target):
            os.remove(target)
        return f"cannot unpack: {why}"
    return said


def _cut_short(problems: list[str], found: Scan) -> str:
    """What to say of an archive that ended before its end (truncated, corrupt): the
    files before are kept, and the last of them may lack its end."""
    if not found.files:
        return f"cannot unpack the archive ({'; '.join(problems)})"
    said = f"cannot unpack the rest of the archive ({'; '.join(problems)})"
    last = found.names[found.files[-1]]
    kept = f"kept the {len(found.files):,} files before it"
    return f"{said}; {kept}, the last ({last}) perhaps cut short"


def _new_folder(into: str) -> str:
    os.makedirs(into, exist_ok=True)
    n = len(os.listdir(into))
    while True:
        folder = os.path.join(into, f"{n:05d}")
        try:
            os.mkdir(folder)
            return folder
        except FileExistsError:
            n += 1


def _safe_name(name: str) -> str:
    """A member's name as a relative path with no way out of its folder.

    >>> _safe_name("/etc/passwd"), _safe_name("../../x/./y.log"), _safe_name("a\\\\b.log")
    ('etc/passwd', 'x/y.log', 'a/b.log')
    """
    parts = name.replace("\\", "/").split("/")
    return "/".join(p for p in parts if p not in ("", ".", ".."))


#: A member: its name, ``file``, ``link`` or ``other``, how to open it (None when it
#: cannot be: encrypted), and its modification time (seconds since 1970).
Member = tuple[str, str, Callable[[], IO[bytes]] | None, float | None]


def _zip_members(path: str) -> Iterator[Member]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            if info.is_dir():
                kind = "other"
            elif mode and (mode & 0o170000) == 0o120000:
                kind = "link"
            else:
                kind = "file"
            encrypted = bool(info.flag_bits & 0x1)
            opened = None if encrypted else (lambda info=info: archive.open(info))
            mtime = datetime(*info.date_time).timestamp() if info.date_time[0] >= 1980 else None
            yield info.filename, kind, opened, mtime


def _tar_members(path: str, limits: Limits, problems: list[str]) -> Iterator[Member]:
    """The members of a tar file, read as a stream (``r|``): a compressed tar is
    decompressed once, front to back, and no member is looked for twice. What went
    wrong decompressing it goes to ``problems``."""
    with (
        archive_stream(path, limits, problems) as stream,
        tarfile.open(fileobj=stream, mode="r|") as archive,
    ):
        for info in archive:
            if info.isreg():
                kind = "file"
            elif info.issym() or info.islnk():
                kind = "link"
            else:
                kind = "other"
            yield info.name, kind, (lambda info=info: archive.extractfile(info)), info.mtime


@dataclass
class _Budget:
    """What one archive may still unpack: ``max_expanded_bytes`` a member, and
    ``max_ratio`` times the archive's size in all once ``ratio_floor_bytes`` are out.
    ``spent`` says why unpacking stopped, once it must."""

    limits: Limits
    packed: int
    out: int = 0
    spent: str | None = None

    def room(self) -> int:
        limits = self.limits
        ratio_room = max(limits.ratio_floor_bytes, int(limits.max_ratio * max(self.packed, 1)))
        return max(ratio_room - self.out, 0)

    def take(self, n: int) -> None:
        self.out += n
        if self.room() == 0 and self.spent is None:
            self.spent = (
                f"expands more than {self.limits.max_ratio:g} times (a decompression bomb?): "
                f"unpacked the first {size_text(self.out)}; the rest is not read"
            )


def _copy(source: IO[bytes], target: str, budget: _Budget) -> str | None:
    """Copy a member to ``target`` within the budget; a sentence when it was cut."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    written = 0
    cap = budget.limits.max_expanded_bytes
    with open(target, "wb") as out:
        while True:
            want = min(_COPY_BYTES, cap - written, budget.room())
            chunk = source.read(want) if want > 0 else b""
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)
            budget.take(len(chunk))
    if written >= cap and source.read(1):
        return f"member larger than {size_text(cap)}: kept the first {size_text(cap)}"
    return None

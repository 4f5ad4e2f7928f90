"""Finding and opening the input: paths, folders and globs to files; files to bytes.

Everything that touches the file system before a line exists lives here, so that limits
and refusals are decided in one place and reported the same way: as a problem sentence
for the file, never an exception, and never a wait without end.

The contract, for a loader in one process or in many:

- :func:`scan` ``(paths, *, follow_symlinks) -> Scan(files, skipped)`` finds the files;
  ``skipped`` holds ``(shown name, reason)`` for what a walk passed over (pipes, sockets
  and devices found in a folder, symlinks leading out of the roots given, unreadable
  folders, second names and copies of a file read under another name). :func:`expand`
  is its list of files alone.
- :func:`each_copy_once` ``(found) -> files``: ``found.files`` with each content read
  once; a copy of another file's bytes is said in ``found.skipped``. :func:`scan` calls
  it, and so does :func:`timeline.reading.archives.unpacked` once archives are unpacked.
- :func:`read_bytes` ``(path, limits) -> Bytes(data, problems, cuts)`` reads one file as
  a stream: decompressed (gzip, bzip2, xz, zstd) within ``limits``, a BOM stripped,
  UTF-16 decoded, CR-only line ends and NUL bytes mended, lines longer than
  ``limits.max_line_bytes`` cut. ``data`` is clean UTF-8-or-nearly bytes, or None when
  the file is refused (binary, unreadable); ``problems`` are sentences about the file;
  ``cuts`` are the lines that were cut.
- :func:`shown_name` is the text to show for a path: names that are not UTF-8 keep their
  bytes (surrogateescape) for opening and are shown with ``\\xff`` escapes.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import glob
import hashlib
import io
import lzma
import os
import select
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from isal import isal_zlib  # zlib's API on ISA-L's inflate, about three times as fast

from parsers.layouts import ARCHIVE_SUFFIX, POD_LAYOUTS, PathHints, hints_from_path
from timeline.errors import NoInputError
from timeline.reading import remote

PathLike = str | os.PathLike[str]

#: A file whose first this many bytes (after decompression) hold a NUL is binary.
BINARY_SNIFF_BYTES = 8192
#: How many bytes of a cut line its note keeps.
CUT_TEXT_BYTES = 200
#: Files of one size are told apart by a hash of this many first bytes before a hash of
#: all of them (:func:`each_copy_once`).
COPY_HEAD_BYTES = 4 << 10
#: Bytes hashed at a time.
_HASH_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    """How much reading one file may take; every limit reached is reported, never silent.

    Attributes
    ----------
    max_expanded_bytes
        Most bytes kept from a compressed file (and from a pipe or device); the rest is
        left.
    max_ratio
        Most bytes out per compressed byte in; a file past it is a decompression bomb
        and is kept only to that point. Checked once ``ratio_floor_bytes`` are out, so
        that small, very repetitive files are read whole.
    max_line_bytes
        A longer line is cut to this many bytes (at a character boundary).
    pipe_wait_s
        How long a named pipe may stay silent before reading it stops.
    chunk_bytes
        Bytes read (and decompressed) at a time; no more than ``max_line_bytes``.
    whole_read_bytes
        A regular file (or chunk of one) up to this size is read in one piece and, when
        it needs nothing mended, handed on as it is; a bigger one is streamed.
    """

    max_expanded_bytes: int = 2 << 30
    max_ratio: float = 250.0
    ratio_floor_bytes: int = 8 << 20
    max_line_bytes: int = 1 << 20
    pipe_wait_s: float = 10.0
    chunk_bytes: int = 1 << 20
    whole_read_bytes: int = 256 << 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunk_bytes", min(self.chunk_bytes, self.max_line_bytes))


LIMITS = Limits()


class Cut(NamedTuple):
    """A line cut to ``Limits.max_line_bytes``: its number, full length and first bytes."""

    line: int
    length: int
    head: bytes


class Bytes(NamedTuple):
    """What :func:`read_bytes` gives: the data (None if refused), problems and cut lines."""

    data: bytes | None
    problems: list[str]
    cuts: list[Cut]


@dataclass
class Scan:
    """What :func:`scan` found: files to read, and what it passed over with why."""

    files: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: The name a file is shown by where it is not its path (a file unpacked from an
    #: archive, :func:`timeline.reading.archives.unpacked`).
    names: dict[str, str] = field(default_factory=dict)
    #: The folder each archive was unpacked to, by the archive's shown name.
    unpacked: dict[str, str] = field(default_factory=dict)


def shown_name(path: str) -> str:
    r"""``path`` as text that can be printed and stored: undecodable bytes as ``\xNN``.

    >>> shown_name(os.fsdecode(b"logs/bad\xff.log"))
    'logs/bad\\xff.log'
    """
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unpacked_size(path: str) -> int:
    """About how many bytes of text ``path`` holds: its size, or for a gzip file the
    size its trailer states (modulo 4 GiB, so never less than the packed size). Nothing
    is read but the first two and the last four bytes.

    >>> import gzip, tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".gz") as f:
    ...     _ = f.write(gzip.compress(b"x" * 100_000)); f.flush()
    ...     unpacked_size(f.name)
    100000
    """
    try:
        found = os.stat(path)
        if not stat.S_ISREG(found.st_mode) or found.st_size < 18:
            return found.st_size if stat.S_ISREG(found.st_mode) else 0  # a pipe is never opened
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                return found.st_size
            handle.seek(-4, os.SEEK_END)
            return max(found.st_size, int.from_bytes(handle.read(4), "little"))
    except OSError:
        return 0


def size_text(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps it at one or more.

    >>> size_text(3 << 30), size_text(1536), size_text(12)
    ('3.0 GiB', '1.5 KiB', '12 bytes')
    """
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} bytes"


# --- paths to files ---------------------------------------------------------------------


def expand(paths: PathLike | Iterable[PathLike], *, follow_symlinks: bool = False) -> list[str]:
    """Every file that ``paths`` names, folders walked and globs expanded, in order."""
    return scan(paths, follow_symlinks=follow_symlinks).files


def scan(paths: PathLike | Iterable[PathLike], *, follow_symlinks: bool = False) -> Scan:
    """The files ``paths`` name and what was passed over; see the module's contract.

    A path named directly is read whatever it is (a named pipe too). What a folder walk or
    a glob finds is read only if it is a regular file, and a symlink only if it leads
    inside the roots given (or ``follow_symlinks``). Raises :class:`NoInputError` when a
    path does not exist or nothing readable is left.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    found = Scan()
    missing: list[str] = []
    for given in map(os.fspath, paths):
        if remote.is_url(given):
            urls = remote.expand(given)
            found.files.extend(urls)
            if not urls:
                missing.append(given)
        elif os.path.lexists(given):
            if os.path.isdir(given):
                _walk(given, [given], follow_symlinks, found)
            else:
                found.files.append(given)
        elif glob.has_magic(given):
            matches = sorted(glob.glob(given, recursive=True))
            roots = [_glob_root(given)]
            for match in matches:
                if os.path.isdir(match):
                    _walk(match, roots, follow_symlinks, found)
                else:
                    _take(match, roots, follow_symlinks, found)
            if not matches:
                missing.append(given)
        else:
            missing.append(given)
    if missing:
        raise NoInputError(f"no such file or folder: {', '.join(map(shown_name, missing))}")
    stats = {path: _stat(path) for path in found.files}
    found.files = _each_file_once(found, stats)
    found.files = each_copy_once(found, stats)
    if not found.files:
        why = "; ".join(f"{name}: {reason}" for name, reason in found.skipped[:3])
        raise NoInputError("the paths given hold no files" + (f" ({why})" if why else ""))
    return found


def _glob_root(pattern: str) -> str:
    parts = []
    for part in pattern.split(os.sep):
        if glob.has_magic(part):
            break
        parts.append(part)
    return os.sep.join(parts) or "."


def _walk(folder: str, roots: list[str], follow_symlinks: bool, found: Scan) -> None:
    """Take the files under ``folder``, in the order ``os.walk`` gives from the top, each
    folder's names sorted. What a folder listing says (a folder, a symlink) is not asked
    of the file system again: a node's ``var/log/pods`` is thousands of small folders.
    A symlink to a folder is walked only with ``follow_symlinks``; one that leads out of
    the roots is said, as a symlink to a file is (one inside them is walked anyway)."""
    seen: set[tuple[int, int]] = set()
    todo = [folder]
    while todo:
        here = todo.pop()
        if follow_symlinks:  # only a followed symlink can lead back up
            try:
                st = os.stat(here)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(here) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            found.skipped.append(
                (shown_name(exc.filename or here), f"cannot read folder: {exc.strerror}")
            )
            continue
        folders = []
        for entry in entries:
            if _is_folder(entry):
                if follow_symlinks or not entry.is_symlink():
                    folders.append(entry.path)
                elif not _inside(entry.path, roots):
                    found.skipped.append(_outside(entry.path))
            elif entry.name.startswith("."):
                found.skipped.append(
                    (shown_name(entry.path), "hidden file: skipped (name it to read it)")
                )
            else:
                _take(entry.path, roots, follow_symlinks, found, entry)
        todo.extend(reversed(folders))


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _stat(path: str) -> os.stat_result | None:
    """What the file system says of ``path``; None for a URL or a file that went away
    (the read will say)."""
    if remote.is_url(path):
        return None
    try:
        return os.stat(path)
    except OSError:
        return None


def _each_file_once(found: Scan, stats: dict[str, os.stat_result | None]) -> list[str]:
    """The files found, each read under one name: a file reached by two names (a node's
    ``/var/log/containers`` symlinks into ``/var/log/pods``, a hard link, a path given
    twice) would count its lines twice. The name that is no symlink is kept; the other is
    said as skipped."""
    kept: dict[object, str] = {}
    for path in found.files:
        st = stats[path]
        identity: object = (st.st_dev, st.st_ino) if st and st.st_ino else path
        other = kept.setdefault(identity, path)
        if other == path:
            continue
        if os.path.islink(other) and not os.path.islink(path):
            kept[identity], path, other = path, other, path
        found.skipped.append((shown_name(path), f"the same file as {shown_name(other)}: read once"))
    return list(kept.values())


def each_copy_once(found: Scan, stats: dict[str, os.stat_result | None] | None = None) -> list[str]:
    """The files found, each content read once: a copy of a file would count its lines
    twice (the EKS log collector copies a pod's log from both ``/var/log/containers``
    and ``/var/log/pods``; a file copied by hand; a tarball unpacked beside its folder).
    The copy kept is the one whose path says most (:func:`says_more`); the others are
    said as skipped. Copies whose paths name two different nodes, pods or containers
    are all read: each is its own owner's record. Empty files are no copies.

    Only files of one size are read, a hash of their first bytes and then of all of
    them, so a read whose files all differ in size costs a ``stat`` per file (none where
    ``stats`` has it)."""
    kept_for: dict[str, str] = {}
    for group in _same_content(found.files, stats or {}):
        kept_for |= _copies_in(group, found.names)
    for path in found.files:
        if path in kept_for:
            other = _shown(kept_for[path], found.names)
            found.skipped.append(
                (_shown(path, found.names), f"the same content as {other}: read once")
            )
    return [path for path in found.files if path not in kept_for]


def _same_content(paths: list[str], stats: dict[str, os.stat_result | None]) -> list[list[str]]:
    """The groups of ``paths`` (two or more) whose files hold the same bytes."""
    groups = _grouped(paths, lambda path: _size(stats[path] if path in stats else _stat(path)))
    for key in (_head_digest, _digest):
        groups = [same for group in groups for same in _grouped(group, key)]
    return groups


def _grouped(paths: list[str], key: Callable[[str], object]) -> list[list[str]]:
    """``paths`` in groups of two or more of one ``key``; a path whose key is None is in
    none."""
    by_key: dict[object, list[str]] = {}
    for path in paths:
        value = key(path)
        if value is not None:
            by_key.setdefault(value, []).append(path)
    return [group for group in by_key.values() if len(group) > 1]


def _size(st: os.stat_result | None) -> int | None:
    """The size of a regular file that holds something; None for anything else (a URL,
    a pipe, which is never opened twice, an empty file)."""
    return st.st_size if st and stat.S_ISREG(st.st_mode) and st.st_size else None


def _head_digest(path: str) -> bytes | None:
    return _digest(path, COPY_HEAD_BYTES)


def _digest(path: str, most: int = sys.maxsize) -> bytes | None:
    """A blake2b hash of the first ``most`` bytes of ``path``, read a block at a time;
    None if it cannot be read (the read will say why)."""
    hasher = hashlib.blake2b()
    try:
        with open(path, "rb") as handle:
            while most > 0 and (block := handle.read(min(_HASH_BLOCK_BYTES, most))):
                hasher.update(block)
                most -= len(block)
    except OSError:
        return None
    return hasher.digest()


def _copies_in(group: list[str], names: dict[str, str]) -> dict[str, str]:
    """The copies among ``group`` (files of the same bytes), each with the file kept in
    its place: the one whose path says most of the first ones whose paths name no other
    owner."""
    hints = {path: hints_from_path(_shown(path, names)) for path in group}
    kept: list[str] = []
    kept_for: dict[str, str] = {}
    for path in sorted(group, key=lambda path: says_more(_shown(path, names), hints[path])):
        # a copy of a copy (a hand copy beside the collector's link) is the kept one's
        seen = [*kept, *kept_for]
        other = next((k for k in seen if _one_files(k, path, hints, names)), None)
        if other is None:
            kept.append(path)
        else:
            kept_for[path] = kept_for.get(other, other)
    return kept_for


def _shown(path: str, names: dict[str, str]) -> str:
    """The name ``path`` is shown by: its archive's and member's, else its own."""
    return names.get(path) or shown_name(path)


def says_more(shown: str, hints: PathHints) -> tuple[int, int, int, str]:
    """A sort key that puts first the name that says most of a file's owner: the most of
    node, namespace, pod and container named; then the most specific layout (a
    ``pods/<ns>_<pod>_<uid>/<container>/0.log`` path before the ``containers/`` link's
    name, as for a symlink); then the shorter name (a copy's name adds to the first's:
    ``-copy``, `` (1)``, ``.bak``); then the name."""
    named = sum(part is not None for part in _owner(hints))
    layouts = [*POD_LAYOUTS]
    layout = (hints.layout or "").rsplit(", ", 1)[-1]
    rank = layouts.index(layout) if layout in layouts else len(layouts)
    return -named, rank, len(shown), shown


def _one_files(one: str, other: str, hints: dict[str, PathHints], names: dict[str, str]) -> bool:
    """Whether two files of the same bytes are copies of one file, not two owners' files
    that happen to match: no part of their owner that both paths name differs, and both
    name the same pod and container (the EKS log collector's two copies), or they sit in
    one folder (a copy by hand, ``kube-proxy-copy.log``), an archive's folder standing for
    the folder it was unpacked to. Files in two folders that name no owner (``node-1/``,
    ``node-2/``) may be two hosts' logs, and are both read."""
    a, b = hints[one], hints[other]
    if not same_owner(a, b):
        return False
    if a.pod and a.container and (a.pod, a.container) == (b.pod, b.container):
        return True
    return folder_of(_shown(one, names)) == folder_of(_shown(other, names))


def folder_of(shown: str) -> str:
    """The folder a shown name is in, an archive's name read as its unpacked folder's.

    >>> folder_of("bundle.tar.gz/./logs/x.log") == folder_of("bundle/logs/x.log")
    True
    """
    parts = os.path.normpath(shown.replace("\\", "/")).split("/")[:-1]
    return "/".join(ARCHIVE_SUFFIX.sub("", part) for part in parts)


def same_owner(one: PathHints, other: PathHints) -> bool:
    """Whether two paths may name one owner: no part of it that both name differs."""
    return all(
        a is None or b is None or a == b for a, b in zip(_owner(one), _owner(other), strict=True)
    )


def _owner(hints: PathHints) -> tuple[str | None, ...]:
    """Whose file a path says it is: node, namespace, pod and container, where it says."""
    return hints.node, hints.namespace, hints.pod, hints.container


def _take(
    path: str,
    roots: list[str],
    follow_symlinks: bool,
    found: Scan,
    entry: os.DirEntry | None = None,
) -> None:
    """Add ``path`` (found by a walk or a glob) if it is a regular file it may read;
    ``entry``: what the walk's folder listing says of it."""
    link = entry.is_symlink() if entry is not None else os.path.islink(path)
    if link and not follow_symlinks and not _inside(path, roots):
        found.skipped.append(_outside(path))
        return
    try:
        mode = (entry.stat() if entry is not None else os.stat(path)).st_mode
    except OSError as exc:
        found.skipped.append((shown_name(path), f"cannot read: {exc.strerror}"))
        return
    if stat.S_ISREG(mode):
        found.files.append(path)
    else:
        kind = _kind(mode)
        found.skipped.append(
            (shown_name(path), f"{kind} found in a folder or glob: skipped (name it to read it)")
        )


def _outside(path: str) -> tuple[str, str]:
    """What to say of a symlink (to a file or a folder) that leads out of the roots."""
    target = shown_name(os.path.realpath(path))
    why = f"symlink to {target}, outside the paths given: skipped (--follow-symlinks reads it)"
    return shown_name(path), why


def _inside(path: str, roots: list[str]) -> bool:
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


# --- a file to bytes --------------------------------------------------------------------


def read_bytes(
    path: str, limits: Limits = LIMITS, *, start: int = 0, end: int | None = None
) -> Bytes:
    """The file's bytes, read as a stream within ``limits``; see the module's contract.

    ``start`` and ``end`` read only that byte range of a plain file (a line-aligned chunk
    of a big one); the lines of the result are numbered from the range's start.

    Examples
    --------
    >>> import gzip, tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".gz", delete=False) as f:
    ...     _ = f.write(gzip.compress(b"\\xef\\xbb\\xbfa\\rb\\r"))
    >>> read_bytes(f.name)
    Bytes(data=b'a\\nb\\n', problems=['line ends are CR only: read as line ends'], cuts=[])
    """
    problems: list[str] = []
    if remote.is_url(path):
        try:
            return _from_chunks(
                remote.chunks(path, limits.chunk_bytes, start=start, end=end), limits, problems
            )
        except (OSError, NoInputError) as exc:
            return Bytes(None, [*problems, f"cannot read: {exc}"], [])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return Bytes(None, [f"cannot read: {exc.strerror or exc}"], [])
    try:
        info = os.fstat(fd)
        regular = stat.S_ISREG(info.st_mode)
        if regular:
            os.set_blocking(fd, True)
            os.lseek(fd, start, os.SEEK_SET)
        size = None if end is None else end - start
        whole = (size if size is not None else info.st_size - start) if regular else None
        if whole is not None and whole <= limits.whole_read_bytes:
            data = _read_whole(fd, whole)
            if _plain(data, limits):
                return Bytes(data, problems, [])
            chunks = _slices(data, limits.chunk_bytes)
        else:
            chunks = _raw_chunks(fd, limits, problems, wait=not regular, size=size)
        return _from_chunks(chunks, limits, problems)
    except OSError as exc:
        return Bytes(None, [*problems, f"cannot read: {exc.strerror or exc}"], [])
    finally:
        os.close(fd)


def _from_chunks(chunks: Iterator[bytes], limits: Limits, problems: list[str]) -> Bytes:
    """A file's raw chunks as :class:`Bytes`: decompressed, mended, refused when binary, its
    long lines cut."""
    chunks = _decompressed(chunks, limits, problems)
    text = _mended(chunks, problems)
    first, text = _head(text, BINARY_SNIFF_BYTES)
    if _is_binary(first[:BINARY_SNIFF_BYTES]):
        text.close()
        return Bytes(None, [*problems, _binary(first)], [])
    marks = _Marks()
    data = b"".join(_cut_lines(_chain(first, text), limits, marks))
    return Bytes(data, problems + marks.problems(data), marks.cuts(data))


#: Share of a file's first bytes, its NUL bytes aside, that may be control characters
#: no text holds (:data:`_NOT_TEXT`) before the file is binary.
BINARY_CONTROL_SHARE = 0.05
#: The C0 controls but tab, line feed, vertical tab, form feed, CR and ESC, and DEL.
_NOT_TEXT = bytes(c for c in range(0x20) if c not in b"\t\n\x0b\x0c\r\x1b") + b"\x7f"


def _is_binary(head: bytes) -> bool:
    r"""Whether a file whose first bytes are ``head`` is binary: it holds a NUL byte and is
    an archive, is NULs alone, or its other bytes hold control characters text does not.
    A log with a hole of NUL bytes (what a crash leaves where the file system had not
    written yet) is text; its NULs are dropped and said (:func:`_cut_lines`).

    >>> _is_binary(b"I0314 ok\n" + bytes(4096) + b"I0314 ok\n"), _is_binary(b"\x7fELF\x02\x01")
    (False, False)
    >>> _is_binary(b"\x7fELF\x02\x01\x01\x00\x00\x00"), _is_binary(bytes(64))
    (True, True)
    """
    if b"\x00" not in head:
        return False
    rest = head.replace(b"\x00", b"")
    if not rest or _archive(head):
        return True
    controls = len(rest) - len(rest.translate(None, _NOT_TEXT))
    return controls > BINARY_CONTROL_SHARE * len(rest)


def _archive(head: bytes) -> tuple[str, str] | None:
    """The kind of archive a file whose first bytes are ``head`` is, and the names that
    unpack it, or None."""
    if head.startswith(b"PK\x03\x04"):
        return "zip", ".zip"
    if head[257:262] == b"ustar":
        return "tar", ".tar, .tar.gz or .tgz"
    return None


def _binary(head: bytes) -> str:
    """Why a file whose first bytes are ``head`` is not read; an archive under a name
    that does not say so (``logs.gz`` holding a tar) is said to be one."""
    archive = _archive(head)
    if archive is None:
        return "binary file (it holds NUL bytes): skipped"
    kind, names = archive
    return f"binary file (a {kind} archive; named {names} it is unpacked and read): skipped"


def _read_whole(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd`` (fewer if the file is shorter), in one piece."""
    with os.fdopen(os.dup(fd), "rb") as handle:
        return handle.read(size)


def _plain(data: bytes, limits: Limits) -> bool:
    """Whether ``data`` needs nothing done: not compressed, no BOM (at its start or a line's), no
    NUL, LF line ends, no line longer than the limit. Looks at each window of
    ``max_line_bytes`` once."""
    if compression_of(data) or data[:2] in _UTF16 or data.startswith(codecs.BOM_UTF8):
        return False
    if b"\n" + codecs.BOM_UTF8 in data:
        return False
    if b"\x00" in data:
        return False
    head = data[:BINARY_SNIFF_BYTES]
    if b"\r" in head and b"\n" not in head:
        return False
    pos, limit = 0, limits.max_line_bytes
    while len(data) - pos > limit:
        last = data.rfind(b"\n", pos, pos + limit + 1)
        if last < 0:
            return False
        pos = last + 1
    return True


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _head(chunks: Iterator[bytes], n: int) -> tuple[bytes, Iterator[bytes]]:
    """At least the first ``n`` bytes (or all there are), and the chunks after them."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= n:
            break
    return head, chunks


def _raw_chunks(
    fd: int, limits: Limits, problems: list[str], *, wait: bool, size: int | None = None
) -> Iterator[bytes]:
    """The file's bytes a chunk at a time (``size`` of them at most); a pipe is waited on
    at most ``pipe_wait_s`` a time, and a pipe or device is read to ``max_expanded_bytes``
    at most."""
    total = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        if wait and not poller.poll(limits.pipe_wait_s * 1000):
            problems.append(
                f"nothing came through the pipe for {limits.pipe_wait_s:g} s: "
                f"stopped reading after {size_text(total)}"
            )
            return
        want = limits.chunk_bytes if size is None else min(limits.chunk_bytes, size - total)
        if want <= 0:
            return
        try:
            chunk = os.read(fd, want)
        except BlockingIOError:
            continue
        if not chunk:
            return
        total += len(chunk)
        yield chunk
        if wait and total >= limits.max_expanded_bytes:
            problems.append(f"read {size_text(total)}, the limit for a pipe or device: stopped")
            return


def _decompressed(chunks: Iterator[bytes], limits: Limits, problems: list[str]) -> Iterator[bytes]:
    """The chunks decompressed when they start as a compressed stream does
    (:func:`compression_of`), else as they are."""
    first, chunks = _head(chunks, MAGIC_BYTES)
    kind = compression_of(first)
    if kind is None or (kind != "gzip" and not _starts_stream(first, kind)):
        yield from _chain(first, chunks)
    else:
        yield from _decompressed_stream(_chain(first, chunks), kind, limits, problems)


#: How a compressed stream starts: gzip, bzip2, xz and zstd (logrotate's
#: ``compresscmd`` choices, and what an archive's ``.tar`` is packed with).
COMPRESSIONS = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
#: Bytes enough to tell them (:func:`compression_of`).
MAGIC_BYTES = 10


def compression_of(head: bytes) -> str | None:
    """The compression a file's first bytes show, or None.

    >>> import bz2, lzma
    >>> compression_of(bz2.compress(b"x")), compression_of(lzma.compress(b"x"))
    ('bzip2', 'xz')
    >>> compression_of(b"BZh? no, a log line") is None
    True
    """
    for magic, kind in COMPRESSIONS.items():
        # bzip2's magic is text: its block size digit and a block's magic must follow
        bzip2 = head[3:4].isdigit() and head[4:10] in _BZIP2_BLOCKS
        if head.startswith(magic) and (kind != "bzip2" or bzip2):
            return kind
    return None


#: What follows bzip2's ``BZh`` and size digit: a block (pi in BCD) or the end (sqrt pi).
_BZIP2_BLOCKS = (b"1AY&SY", b"\x17rE8P\x90")


class _GzipDecompressor:
    """ISA-L's gzip inflater behind the standard library's interface (see
    :class:`_ZstdDecompressor`): what it leaves of the input at ``max_length`` is kept
    and given to it again before new input, and said (``pending``)."""

    def __init__(self) -> None:
        self._inflater = isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)
        self._tail = b""

    @property
    def eof(self) -> bool:
        return self._inflater.eof

    @property
    def unused_data(self) -> bytes:
        return self._inflater.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._tail

    @property
    def pending(self) -> int:
        return len(self._tail)

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        piece = self._inflater.decompress(self._tail + data, max(max_length, 0))
        self._tail = self._inflater.unconsumed_tail
        return piece


class _ZstdDecompressor:
    """zstandard's decompressor behind the standard library's interface (that of bz2's
    and lzma's): ``decompress(data, max_length)``, ``eof``, ``unused_data`` and
    ``needs_input``. zstandard takes no ``max_length``, so it is given a little of the
    input at a time: a small frame may inflate a thousandfold."""

    FEED = 4096

    def __init__(self) -> None:
        import zstandard

        self._inflater = zstandard.ZstdDecompressor().decompressobj()
        self._input, self._at = b"", 0
        self.eof = False
        self.unused_data = b""

    @property
    def needs_input(self) -> bool:
        return self._at >= len(self._input)

    @property
    def pending(self) -> int:
        return len(self._input) - self._at

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if data:
            self._input, self._at = self._input[self._at :] + data, 0
        out: list[bytes] = []
        size = 0
        while not self.needs_input and not self.eof and (max_length < 0 or size < max_length):
            piece = self._input[self._at : self._at + self.FEED]
            self._at += len(piece)
            out.append(self._inflater.decompress(piece))
            size += len(out[-1])
            if self._inflater.eof:
                rest = self._inflater.unused_data + self._input[self._at :]
                self.eof, self.unused_data, self._input, self._at = True, rest, b"", 0
        return b"".join(out)


def _starts_stream(head: bytes, kind: str) -> bool:
    """Whether ``head`` begins a ``kind`` stream: a text that only starts with a magic's
    bytes (``(\\xb5/\\xfd``, ``BZh9...``) is read as text. Packed bytes hold a NUL in
    their first few kilobytes all but surely; bytes without one are packed only if their
    decompressor takes them (a stream corrupt early on is still said to be corrupt)."""
    if b"\x00" in head[:BINARY_SNIFF_BYTES]:
        return True
    try:
        _decompressor(kind).decompress(head[: 64 << 10], 1)
    except Exception:  # each library has errors of its own
        return False
    return True


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return _GzipDecompressor()
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    return _ZstdDecompressor()


def _pending(inflater: Any) -> int:
    """The input given to ``inflater`` that it has not read yet, where it says (the
    standard library's decompressors hold theirs inside): a ratio is of what was read."""
    return getattr(inflater, "pending", 0)


def _decompressed_stream(
    chunks: Iterable[bytes], kind: str, limits: Limits, problems: list[str]
) -> Iterator[bytes]:
    """Decompress every ``kind`` stream of ``chunks`` (one after another, as ``cat`` of
    two files gives) within ``limits``, saying in ``problems`` what is truncated, corrupt
    or past a limit (see :func:`gunzip_stream`)."""
    inflater, fed, out, in_stream = _decompressor(kind), 0, 0, False
    for chunk in chunks:
        fed += len(chunk)
        data = chunk
        while True:
            in_stream = in_stream or bool(data)
            try:
                piece = inflater.decompress(data, limits.chunk_bytes)
            except Exception as exc:  # each library has errors of its own
                problems.append(f"corrupt {kind} ({exc}); kept the {out:,} bytes before it")
                return
            data = b""
            out += len(piece)
            if piece:
                yield piece
            taken = fed - _pending(inflater)
            reason = _past_limit(out, taken, limits)
            if reason:
                problems.append(
                    f"{reason}: kept the first {size_text(out)} "
                    f"(from {size_text(taken)} compressed); the rest is not read"
                )
                return
            if inflater.eof:
                data, inflater, in_stream = inflater.unused_data, _decompressor(kind), False
                if data.strip(b"\x00"):
                    continue  # the next stream
                break
            if inflater.needs_input:
                break
    if in_stream:
        problems.append(f"truncated {kind}: kept the {out:,} bytes it held")


def gunzip_stream(
    chunks: Iterable[bytes], limits: Limits = LIMITS, problems: list[str] | None = None
) -> Iterator[bytes]:
    """Decompress every gzip member of ``chunks`` as a stream, within ``limits``.

    A truncated or corrupt end keeps what came before it; output past
    ``max_expanded_bytes``, or past ``max_ratio`` times the input once
    ``ratio_floor_bytes`` are out, stops the stream. Each is a sentence in ``problems``.

    >>> import gzip
    >>> b"".join(gunzip_stream([gzip.compress(b"one\\n") + gzip.compress(b"two\\n")]))
    b'one\\ntwo\\n'
    """
    problems = [] if problems is None else problems
    return _decompressed_stream(chunks, "gzip", limits, problems)


def archive_stream(path: str, limits: Limits, problems: list[str]) -> IO[bytes]:
    """An archive's bytes as a file to read front to back, decompressed (the tar of a
    ``.tar.gz``, ``.tar.xz``...). Only the ratio of ``limits`` bounds it (an archive
    holds many files' bytes; each is bounded as it is unpacked); what went wrong is put
    in ``problems`` as it happens."""
    handle = open(path, "rb")  # noqa: SIM115 (the stream closes it)
    chunks = iter(lambda: handle.read(limits.chunk_bytes), b"")
    whole = dataclasses.replace(limits, max_expanded_bytes=sys.maxsize)
    return io.BufferedReader(_ChunkFile(_decompressed(chunks, whole, problems), handle))


class _ChunkFile(io.RawIOBase):
    """Chunks as a file that is read front to back (what ``tarfile``'s stream mode reads)."""

    def __init__(self, chunks: Iterator[bytes], handle: IO[bytes]) -> None:
        self._chunks, self._handle = chunks, handle
        self._chunk, self._at = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._at >= len(self._chunk):
            self._chunk, self._at = next(self._chunks, b""), 0
            if not self._chunk:
                return 0
        n = min(len(buffer), len(self._chunk) - self._at)
        buffer[:n] = self._chunk[self._at : self._at + n]
        self._at += n
        return n

    def close(self) -> None:
        self._handle.close()
        super().close()


def _past_limit(out: int, consumed: int, limits: Limits) -> str | None:
    if out > limits.max_expanded_bytes:
        return f"decompressed past the limit of {size_text(limits.max_expanded_bytes)}"
    if out >= limits.ratio_floor_bytes and out > limits.max_ratio * max(consumed, 1):
        return (
            f"expands more than {limits.max_ratio:g} times (a decompression bomb?), "
            "past the ratio limit"
        )
    return None


def gunzip(data: bytes, limits: Limits = LIMITS) -> tuple[bytes, str | None]:
    """Decompress every gzip member of ``data`` at once; see :func:`gunzip_stream`."""
    problems: list[str] = []
    out = b"".join(gunzip_stream([data], limits, problems))
    return out, "; ".join(problems) or None


# --- bytes to clean bytes ---------------------------------------------------------------

_UTF16 = {codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}


def _mended(chunks: Iterator[bytes], problems: list[str]) -> Iterator[bytes]:
    """The text's bytes as UTF-8 with LF line ends: UTF-8 BOMs dropped (the file's and any
    at a line's start), UTF-16 with a BOM decoded (both silently: nothing is lost), UTF-16
    without one decoded where its NUL bytes show it (:func:`_utf16_without_bom`, and
    reported), CR-only line ends read as line ends (decided on the first chunk, and
    reported)."""
    first, chunks = _head(chunks, 4)
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    pieces = _chain(first, chunks)
    encoding = _UTF16.get(first[:2])
    if encoding:
        pieces = _decoded(pieces, encoding)
    else:
        head, pieces = _head(pieces, BINARY_SNIFF_BYTES)
        pieces = _chain(head, pieces)
        encoding = _utf16_without_bom(head)
        if encoding:
            problems.append(f"{_UTF16_NAMES[encoding]} without a byte order mark: decoded")
            pieces = _decoded(pieces, encoding, bom=False)
    head, pieces = _head(pieces, BINARY_SNIFF_BYTES)
    if b"\r" in head and b"\n" not in head and b"\x00" not in head:  # a NUL: binary, refused
        problems.append("line ends are CR only: read as line ends")
        pieces = (chunk.replace(b"\r", b"\n") for chunk in _chain(head, pieces))
    else:
        pieces = _chain(head, pieces)
    yield from _without_line_boms(pieces)


def _without_line_boms(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Chunks with the BOM at the start of a line dropped, as at the start of the file:
    files joined with ``cat`` keep each one's, and a record after one would not start."""
    line_start = False
    for chunk in chunks:
        if line_start and chunk.startswith(codecs.BOM_UTF8):
            chunk = chunk[len(codecs.BOM_UTF8) :]
        if b"\xef" in chunk:  # one byte is found fast; the BOM's first is rare in logs
            chunk = chunk.replace(b"\n" + codecs.BOM_UTF8, b"\n")
        line_start = chunk.endswith(b"\n")
        yield chunk


#: The share of a UTF-16 text's first bytes, taken in pairs, that must be an ASCII
#: character beside a NUL (``a\x00`` in little-endian) for it to be read as UTF-16.
UTF16_ASCII_SHARE = 0.9
_UTF16_NAMES = {"utf-16-le": "UTF-16 (little-endian)", "utf-16-be": "UTF-16 (big-endian)"}
_ASCII_TEXT = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def _utf16_without_bom(head: bytes) -> str | None:
    r"""The UTF-16 that a text's first bytes ``head`` are, when it has no byte order mark
    (a Windows runner's log, ``Out-File -Encoding unicode`` copied without its first two
    bytes): nearly every pair of bytes is an ASCII character beside a NUL, the NUL second
    in little-endian, first in big-endian. Binary data (NULs anywhere) and UTF-8 text
    (no NULs) are never that; None for them.

    >>> _utf16_without_bom("I0314 18:00:01 ok\n".encode("utf-16-le"))
    'utf-16-le'
    >>> _utf16_without_bom("I0314 18:00:01 ok\n".encode("utf-16-be"))
    'utf-16-be'
    >>> _utf16_without_bom(b"I0314 18:00:01 ok\n"), _utf16_without_bom(bytes(range(64)))
    (None, None)
    """
    pairs = len(head) // 2
    if pairs < 2 or b"\x00" not in head:
        return None
    even, odd = head[0 : 2 * pairs : 2], head[1 : 2 * pairs : 2]
    for chars, nuls, encoding in ((even, odd, "utf-16-le"), (odd, even, "utf-16-be")):
        ascii_pairs = sum(1 for c, n in zip(chars, nuls, strict=True) if not n and c in _ASCII_TEXT)
        if ascii_pairs >= UTF16_ASCII_SHARE * pairs:
            return encoding
    return None


def _decoded(chunks: Iterator[bytes], encoding: str, *, bom: bool = True) -> Iterator[bytes]:
    """The chunks of a UTF-16 text as UTF-8; ``bom``: its first two bytes are a BOM."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    first = bom
    for chunk in chunks:
        if first:
            chunk, first = chunk[2:], False
        yield decoder.decode(chunk).encode("utf-8", "surrogatepass")
    yield decoder.decode(b"", final=True).encode("utf-8", "surrogatepass")


@dataclass
class _Marks:
    """What :func:`_cut_lines` noticed, by offset in its output; line numbers are counted
    once the output is whole, and only when there is something to say."""

    cut_at: list[tuple[int, int, bytes]] = field(default_factory=list)
    nul_bytes: int = 0
    nul_at: tuple[int, int] = (0, 0)  # output offset of the chunk, line ends before it

    def cuts(self, data: bytes) -> list[Cut]:
        return [Cut(data.count(b"\n", 0, at) + 1, full, head) for at, full, head in self.cut_at]

    def problems(self, data: bytes) -> list[str]:
        if not self.nul_bytes:
            return []
        at, ends = self.nul_at
        line = data.count(b"\n", 0, at) + ends + 1
        return [f"{self.nul_bytes:,} NUL bytes dropped (the first on line {line:,})"]


def _cut_lines(chunks: Iterable[bytes], limits: Limits, marks: _Marks) -> Iterator[bytes]:
    """``chunks`` with each line cut to ``max_line_bytes`` and NUL bytes dropped, as views
    of the chunks (nothing copied); no line is held whole. The work is per chunk: whole
    lines that fit the limit together pass at once, and only the line that straddles
    chunks is looked at on its own."""
    limit = limits.max_line_bytes
    out = 0  # bytes passed on
    kept = full = 0  # bytes of the current line passed on, and seen
    start, head = 0, b""  # where the current line starts in the output, and its first bytes
    for chunk in chunks:
        if b"\x00" in chunk:
            if not marks.nul_bytes:
                marks.nul_at = (out, chunk.count(b"\n", 0, chunk.index(b"\x00")))
            marks.nul_bytes += chunk.count(b"\x00")
            chunk = chunk.replace(b"\x00", b"")
        view, pos, size = memoryview(chunk), 0, len(chunk)
        while pos < size:
            end = chunk.find(b"\n", pos)
            stop = size if end < 0 else end
            if not full:
                start, head = out, chunk[pos : min(stop, pos + CUT_TEXT_BYTES)]
            taken = _char_boundary(chunk, pos, stop, limit - kept)
            if taken:
                yield view[pos : pos + taken]
            out, kept, full = out + taken, kept + taken, full + stop - pos
            if end < 0:
                break
            if full > kept:
                marks.cut_at.append((start, full, head))
            yield view[end : end + 1]
            out, kept, full, pos = out + 1, 0, 0, end + 1
            last = chunk.rfind(b"\n", pos)
            if 0 <= last < pos + limit:  # whole lines that fit the limit even together
                yield view[pos : last + 1]
                out, pos = out + last + 1 - pos, last + 1
    if full > kept:
        marks.cut_at.append((start, full, head))


def _char_boundary(data: bytes, start: int, stop: int, room: int) -> int:
    """How many bytes of ``data[start:stop]``, at most ``room``, end at a character
    boundary (a UTF-8 character is never split)."""
    if room <= 0:
        return 0
    if stop - start <= room:
        return stop - start
    cut = start + room
    while cut > start and 0x80 <= data[cut] < 0xC0:
        cut -= 1
    return cut - start

"""The event store: the event frame as a folder of Parquet files, and the cache of partial
results that lets an unchanged input be read only once.

A store folder holds ``events/*.parquet`` (the rows, one file per group of inputs and one
for the change rows, LZ4-compressed: about a quarter of the text's size where zstd
makes a sixth, but quicker to write and to read back, which a load does several times),
``summary/*.parquet`` (files, warnings, assumptions) and ``store.json``. Query it with
``timeline.scan(folder)`` (a polars LazyFrame) or
``pl.scan_parquet(folder + "/events/*.parquet")``, or pandas' ``read_parquet``.

The cache keeps each map task's partial result under a key made of the file's path, size,
modification time, byte range, the forced format and the version of the reading code: a
file that changed, or a new version of a parser, is read again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from timeline.errors import TimelineError

STORE_FORMAT = 1
EVENTS = "events"
SUMMARY = "summary"
MANIFEST = "store.json"
SUMMARY_TABLES = ("files", "warnings", "assumptions")


@cache
def code_version() -> str:
    """A hash of the code that turns a file into rows (parsers and reading) and of the
    polars version: partials made by other code are not reused."""
    import parsers
    import timeline.reading

    return _code_digest(parsers, timeline.reading)


@cache
def tool_version() -> str:
    """A hash of all of the tool's code and of the polars version: an analysis made by
    other code is not reused."""
    import parsers
    import timeline

    return _code_digest(parsers, timeline)


def _code_digest(*packages: Any) -> str:
    digest = hashlib.sha256(pl.__version__.encode())
    for package in packages:
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".toml", ".yaml", ".json") and path.is_file():
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def task_key(task: Any) -> str | None:
    """The cache key of a map task, or None when the file cannot be stat'ed (a pipe, say)."""
    try:
        stat = os.stat(task.path)
    except OSError:
        return None
    if not os.path.isfile(task.path):
        return None
    what = [
        os.path.abspath(task.path),
        stat.st_size,
        stat.st_mtime_ns,
        task.start,
        task.end,
        task.format,
        repr(getattr(task, "limits", None)),
        code_version(),
    ]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:32]


def default_cache_dir() -> str:
    """The user's cache folder for partial results (``$XDG_CACHE_HOME`` on Linux)."""
    import platformdirs

    return platformdirs.user_cache_dir("incident-timeline")


class PartialCache:
    """Partial results on disk: ``<key>.pkl`` (the summary) and the rows, in
    ``<key>.parquet`` or, for the small files of a batch, a ``batch-<digest>.parquet``
    they share.

    A partial is used again only while its file is unchanged, so the cache would hold
    every file ever read: what no read has used for :data:`UNUSED_DAYS` is removed
    (:meth:`prune`). Using a partial marks its files as used."""

    #: Days a cached partial stays without being used.
    UNUSED_DAYS = 14
    #: Seconds between two prunings of one cache.
    PRUNE_EVERY = 86400

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root) / "partials"
        self.root.mkdir(parents=True, exist_ok=True)

    def rows_path(self, key: str, written: str | None = None) -> str:
        """Where a task's rows go, or (``written``: where they went, a file they may share
        with other tasks' rows) are found in this cache."""
        return str(self.root / (Path(written).name if written else f"{key}.parquet"))

    def files_of(self, keys: list[str | None], partials: list[Any]) -> list[str]:
        """The names of this cache's files that hold ``partials`` (under their ``keys``):
        their summaries and the rows files they were written to or found in."""
        names = {f"{key}.pkl" for key in keys if key}
        names |= {Path(partial.out).name for partial in partials if partial.out}
        return sorted(names)

    def mark_used(self, names: list[str]) -> None:
        """Mark the files ``names`` of this cache as used, so that :meth:`prune` keeps
        them; those no longer here are passed over."""
        for name in names:
            with contextlib.suppress(OSError):
                os.utime(self.root / Path(name).name)

    def get(self, key: str) -> Any | None:
        partial = _read_pickle(self.root / f"{key}.pkl")
        if partial is None:
            return None
        rows = Path(self.rows_path(key, partial.out))
        if partial.format is not None and partial.rows and not _whole_parquet(rows):
            return None
        for used in (self.root / f"{key}.pkl", rows):
            with contextlib.suppress(OSError):  # no rows file, or a cache we may not write
                os.utime(used)
        return partial

    def put(self, key: str, partial: Any) -> None:
        _write_pickle(self.root / f"{key}.pkl", partial)

    def prune(self) -> None:
        """Remove every file of the cache that no read has written or used for
        :data:`UNUSED_DAYS`: summaries, rows files (a shared one is used when any of its
        partials is) and what a stopped run left half written. Done at most once every
        :data:`PRUNE_EVERY` seconds (a file ``.pruned`` says when), so that a read does
        not look through a big cache each time."""
        now = time.time()
        marker = self.root / ".pruned"
        try:
            if now - marker.stat().st_mtime < self.PRUNE_EVERY:
                return
        except OSError:  # never pruned
            pass
        try:
            marker.touch()
            entries = list(os.scandir(self.root))
        except OSError:
            return
        unused_since = now - self.UNUSED_DAYS * 86400
        for entry in entries:
            with contextlib.suppress(OSError):  # removed meanwhile by another run
                if entry.name != marker.name and entry.stat().st_mtime < unused_since:
                    os.unlink(entry.path)


def _read_pickle(path: Path) -> Any | None:
    """What ``path`` holds, or None when it is missing or cannot be read: a damaged file
    can fail in pickle or in polars, in many ways, and is made anew."""
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    except Exception:
        return None


def _write_pickle(path: Path, value: Any) -> None:
    """``value`` into ``path`` whole or not at all."""

    def dump(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            pickle.dump(value, handle)

    _written_aside(path, dump)


def _written_aside(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a file aside, then rename it to ``path``: whole or not at all, and never
    half written under a name another run may be reading."""
    temporary = path.with_name(f".{path.name}-{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        # only a failed write leaves it behind: a read puts a thousand files aside
        temporary.unlink(missing_ok=True)
        raise


class FinishedStores:
    """Finished event stores on disk, ``stores/<key>``, each keyed by everything it was
    made from (the loader's ``_finished_key``): a second read of unchanged logs with the
    same options takes the store as it is and skips the reduce (settling times and
    zones, templates, inferred changes), not only the map. Only the :data:`KEPT` most
    recently used are kept. The event files are linked where the file system allows
    (they are never written again), the small files copied."""

    #: Finished stores kept: each costs about a quarter of its logs' size on disk.
    KEPT = 3
    #: In a kept store's folder, beside the store: the names of the partial cache's files
    #: it was made from (:meth:`PartialCache.files_of`), which its use marks as used.
    MADE_FROM = "made-from.txt"

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root) / "stores"

    def restore(self, key: str, target: Path) -> bool:
        """Fill the store folder ``target`` (as :func:`prepare` left it) with the store
        ``key``; False when there is none."""
        kept = self.root / key
        if not self.has(key):
            return False
        try:
            _copy_store(kept, target)
            os.utime(kept)  # recently used
        except OSError:  # removed meanwhile by another run's pruning, say: read anew
            prepare(target)
            return False
        return True

    def has(self, key: str) -> bool:
        return _is_complete(self.root / key)

    def made_from(self, key: str) -> list[str]:
        """The partial cache's files the store ``key`` was made from (none if unknown)."""
        try:
            return (self.root / key / self.MADE_FROM).read_text(encoding="utf-8").split()
        except (OSError, ValueError):  # gone, or not text: nothing marked
            return []

    def keep(self, key: str, source: Path, *, made_from: list[str] = ()) -> bool:
        """Keep the finished store ``source`` as ``key`` (in place of one left incomplete),
        and only the most recent few; False when it could not be kept. ``made_from``
        names the partial cache's files it was made from: a partial that no read has
        used for weeks is removed, and a read that takes the kept store uses its
        partials too, which another read needs when one of the files has changed."""
        target = self.root / key
        if not self.has(key):
            _discard(target)
            staging = self.root / f".{key}-{os.getpid()}"
            try:
                _copy_store(source, staging)
                (staging / self.MADE_FROM).write_text("\n".join(made_from), encoding="utf-8")
                os.replace(staging, target)
            except OSError:  # another run kept it first, or the disk is full
                shutil.rmtree(staging, ignore_errors=True)
                return self.has(key)
        _keep_recent(self.root, self.KEPT)
        return True


class OpenedStores:
    """Folders of the cache for the event stores a user wrote (``timeline parse -o``)
    and reads again, one per store, keyed by the store's place, manifest and event
    files: the analysis of a store is kept in its folder (:func:`keep_analysis`), so
    that another report of it analyses nothing again. A store written anew has another
    key. Only the :data:`KEPT` most recently used folders are kept."""

    KEPT = 3

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root) / "opened"

    def folder(self, store: str | os.PathLike[str]) -> Path | None:
        """The folder for ``store``, made if need be; None when the cache cannot take
        it or the store's files cannot be read."""
        try:
            folder = self.root / _opened_key(Path(store))
            folder.mkdir(parents=True, exist_ok=True)
            os.utime(folder)  # recently used
        except OSError:
            return None
        _keep_recent(self.root, self.KEPT)
        return folder


def _opened_key(store: Path) -> str:
    files = sorted((store / EVENTS).glob("*.parquet"))
    what = [
        str(store.resolve()),
        (store / MANIFEST).read_text(encoding="utf-8"),
        [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files],
    ]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:32]


def _keep_recent(root: Path, kept: int) -> None:
    """Only the ``kept`` most recently used folders of ``root`` stay, and what a run
    that was stopped half way left behind (a name starting with a dot) goes after a
    day."""
    try:
        found = [(p.stat().st_mtime, p) for p in root.iterdir()]
    except OSError:  # another run pruned meanwhile
        return
    recent = sorted(((t, p) for t, p in found if p.name[0] != "."), reverse=True)
    for _, old in recent[kept:]:
        _discard(old)
    for written, left in found:
        if left.name[0] == "." and written < time.time() - 86400:
            shutil.rmtree(left, ignore_errors=True)


def kept_analysis(kept: str | os.PathLike[str], **options: Any) -> Any | None:
    """The analysis kept in the cache folder ``kept`` (:class:`FinishedStores`,
    :class:`OpenedStores`) made with ``options`` by this code, or None."""
    return _read_pickle(_analysis_path(kept, options))


def keep_analysis(kept: str | os.PathLike[str], analysis: Any, **options: Any) -> None:
    """Keep ``analysis`` in the cache folder ``kept``, so that it goes with the store it
    belongs to; no harm if the cache cannot take it."""
    with contextlib.suppress(OSError):
        _write_pickle(_analysis_path(kept, options), analysis)


def kept_analysis_rows(kept: str | os.PathLike[str]) -> pl.DataFrame | None:
    """The rows the analysis keeps of a store (``timeline.analysis.analysis_frame``),
    kept in the cache folder ``kept`` by this code, or None."""
    path = _rows_path(kept)
    if not _whole_parquet(path):
        return None
    try:
        return pl.read_parquet(path)
    except Exception:  # damaged inside: worked out anew
        return None


def keep_analysis_rows(kept: str | os.PathLike[str], rows: pl.DataFrame) -> None:
    """Keep the rows the analysis keeps of a store in the cache folder ``kept``, beside
    its analysis: another report of the same logs then reads neither the logs nor the
    store. No harm if the cache cannot take them."""
    with contextlib.suppress(OSError):
        _written_aside(_rows_path(kept), lambda part: rows.write_parquet(part, compression="lz4"))


def _rows_path(kept: str | os.PathLike[str]) -> Path:
    return Path(kept) / f"rows-{tool_version()[:32]}.parquet"


def _analysis_path(kept: str | os.PathLike[str], options: dict[str, Any]) -> Path:
    """Keyed by ``options`` and the code of the whole tool (:func:`tool_version`)."""
    what = json.dumps([{k: str(v) for k, v in sorted(options.items())}, tool_version()])
    return Path(kept) / f"analysis-{hashlib.sha256(what.encode()).hexdigest()[:32]}.pkl"


def _is_complete(root: Path) -> bool:
    """A store whose run finished, its event files whole."""
    try:
        _check_complete(root)
    except TimelineError:
        return False
    return all(_whole_parquet(path) for path in (root / EVENTS).glob("*.parquet"))


def _whole_parquet(path: Path) -> bool:
    """Whether ``path`` begins and ends as a Parquet file does: a file cut short (a disk
    that filled up, a copy stopped half way) is read anew rather than failing the run."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(-4, os.SEEK_END)
            return head == b"PAR1" and handle.read(4) == b"PAR1"
    except OSError:
        return False


def _discard(folder: Path) -> None:
    """Remove a kept folder, renamed first: a run restoring it meanwhile fails whole,
    never half."""
    gone = folder.with_name(f".{folder.name}-gone-{os.getpid()}")
    try:
        os.replace(folder, gone)
    except OSError:  # not there
        return
    shutil.rmtree(gone, ignore_errors=True)


def _copy_store(source: Path, target: Path) -> None:
    """The files of a store folder into another, the manifest last (it marks the store
    complete); event files linked where possible."""
    for folder in (EVENTS, SUMMARY):
        (target / folder).mkdir(parents=True, exist_ok=True)
        for path in sorted((source / folder).iterdir()):
            copy = target / folder / path.name
            copy.unlink(missing_ok=True)
            if folder == EVENTS:
                try:
                    os.link(path, copy)
                    continue
                except OSError:  # another file system
                    pass
            shutil.copyfile(path, copy)
    shutil.copyfile(source / MANIFEST, target / MANIFEST)


def is_store(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an event store folder."""
    return (Path(path) / MANIFEST).is_file()


def prepare(path: str | os.PathLike[str]) -> Path:
    """An empty store folder at ``path`` (an existing store there is replaced; any other
    non-empty folder is refused, so that nobody's files are deleted by mistake)."""
    root = Path(path)
    if root.exists():
        if is_store(root):
            for name in (EVENTS, SUMMARY):
                shutil.rmtree(root / name, ignore_errors=True)
        elif any(root.iterdir()):
            raise TimelineError(f"{root} is a folder that is not an event store and not empty")
    (root / EVENTS).mkdir(parents=True, exist_ok=True)
    (root / SUMMARY).mkdir(parents=True, exist_ok=True)
    _write_manifest(root, complete=False)
    return root


def _write_manifest(root: Path, *, complete: bool) -> None:
    manifest = {"format": STORE_FORMAT, "code": code_version(), "complete": complete}
    (root / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def _check_complete(root: Path) -> None:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TimelineError(f"{root} is not a readable event store: {exc}") from None
    if not manifest.get("complete"):
        raise TimelineError(
            f"the event store {root} is incomplete (the run that wrote it did not finish): "
            "read the logs into it again"
        )


def write_summary(root: Path, tables: dict[str, pl.DataFrame]) -> None:
    """Write the load summary's tables and the manifest, which marks the store complete."""
    for name in SUMMARY_TABLES:
        tables[name].write_parquet(root / SUMMARY / f"{name}.parquet")
    _write_manifest(root, complete=True)


def read_summary(path: str | os.PathLike[str]) -> dict[str, pl.DataFrame]:
    """The load summary's tables of a store."""
    root = Path(path)
    _check_complete(root)
    return {name: pl.read_parquet(root / SUMMARY / f"{name}.parquet") for name in SUMMARY_TABLES}


def scan(path: str | os.PathLike[str]) -> pl.LazyFrame:
    """The event frame of a store as a polars LazyFrame (nothing is read until collected).

    >>> import tempfile, timeline
    >>> folder = tempfile.mkdtemp()
    >>> loaded = timeline.read("sample_logs/circleci-2023-03-14/changelog.csv", store=folder)
    >>> timeline.scan(folder).filter(pl.col("kind") == "change").select(pl.len()).collect().item()
    15
    """
    root = Path(path)
    if not is_store(root):
        raise TimelineError(f"{root} is not an event store (no {MANIFEST})")
    _check_complete(root)
    return scan_files(sorted((root / EVENTS).glob("*.parquet")))


def scan_files(files: list[Path] | list[str]) -> pl.LazyFrame:
    """Event store files as one LazyFrame with the event frame's schema."""
    from timeline.schema import EVENT_SCHEMA

    if not files:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    return pl.scan_parquet([str(f) for f in files]).cast(EVENT_SCHEMA)

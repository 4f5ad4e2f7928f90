"""Loading: files, folders, globs, compressed files and archives in; one event frame on one
UTC clock out.

The work is a map and a reduce, so that memory follows what is kept rather than the size
of the input, and every core (or a Dask cluster) can help:

- **unpack** (:mod:`timeline.reading.archives`): archives found among the files are
  unpacked into the read's own folder, their files read as files of their own and
  removed when the read is done.
- **map** (:mod:`timeline.reading.mapper`, in worker processes): each file, or each
  line-aligned chunk of a big one, is read, stripped of its runtime prefix, sniffed and
  parsed; its rows go to a Parquet partial, and a small summary comes back: line
  accounting, warnings and the evidence for years and zones. Partials are cached, so an
  unchanged input is read once.
- **reduce** (here): the evidence of all files settles each file's year and zone
  (:mod:`timeline.reading.settle`); the distinct masked messages become templates.
- **finish** (in threads of this process: its work is a few big polars queries): each
  group of partials gets its UTC times, line numbers and templates and is written to the
  event store (:mod:`timeline.reading.store`); then the changes the logs tell are inferred
  from the few rows that witness them.

Every line is accounted for: a row, a continuation of one, or an unparsed line in the
warnings with its file and line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

import parsers
from parsers.common import archives_unpacked
from timeline.errors import TimelineWarning, UnknownFormatError, UnknownZoneError
from timeline.reading import archives, bundles, executor, mapper, settle, signatures, sources, times
from timeline.reading import store as event_store
from timeline.reading.copies import COPY_SCHEMA, LOG_RECORD, log_copies
from timeline.reading.duplicates import Deduplicated, deduplicated
from timeline.reading.lines import CUT_PATTERN
from timeline.reading.mapper import WARNING_SCHEMA, Partial, Task
from timeline.reading.sources import (  # noqa: F401 (expand is part of the loader API)
    LIMITS,
    Limits,
    PathLike,
    expand,
    shown_name,
)
from timeline.schema import EVENT_SCHEMA, time_order, validate

#: Inputs smaller than this are read in this process: starting workers would cost more.
MIN_BYTES_FOR_WORKERS = 32 << 20
#: Map tasks are sent to workers in groups of about this many bytes (small files together).
BATCH_BYTES = 16 << 20
#: What reading a file costs besides its bytes (sniffing, a few queries, writing its
#: partial), as bytes of text that take as long: thousands of small files are worth
#: workers too, and travel to them in several batches.
FILE_WORK_BYTES = 64 << 10
#: Files are finished into event store files of about this many input bytes each.
PART_BYTES = 64 << 20
#: Partials up to this size (Parquet bytes) are finished in memory, several together.
FINISH_TOGETHER_BYTES = 4 << 20
#: Small partial files read in one query at most: a scan holds a buffer per file it reads.
FINISH_FILES_AT_ONCE = 256
#: Small partials are written to the store about this many bytes (Parquet) at a time, so
#: that finishing holds this much, not a whole job's.
FINISH_WRITE_BYTES = 16 << 20
#: How the warning of a run of log rows left out as another file's copy begins.
LOG_COPY_REASON = "the same log lines as"
#: An environment variable that moves the partial cache (tests point it at a temp folder).
CACHE_ENV = "INCIDENT_TIMELINE_CACHE"


@dataclass(frozen=True)
class LoadSummary:
    """What was loaded, what could not be, and what was assumed to put it on one clock.

    ``files``: one row per input file (format, prefix, how sure, lines, rows,
    continuation and unparsed lines, first unparsed line numbers, a problem if any).
    Every line is the first line of one or more rows (a one-line JSON page holds many
    jobs), a continuation line, unparsed, a line a wrapper wrote of its own
    (journalctl's ``-- Boot ... --``, grep's ``--``), or a duplicate line: a line of a
    record that another file holds too (a Kubernetes event in ``-o json`` and in a
    pasted table, a CI job from the API and from its log), whose row is that file's
    (:mod:`timeline.reading.duplicates`). ``lines`` is the sum of ``first_lines``,
    ``continuation_lines``, ``unparsed_lines``, ``wrapper_lines`` and
    ``duplicate_lines``; ``rows`` are the rows kept, ``duplicate_rows`` those left out
    for the files ``duplicate_of``.
    ``prefix`` names the wrappers stripped, outermost first (``syslog > cri``); a file of
    several formats has ``format`` of its main one and ``segments`` the lines of each.
    ``warnings``: one row per unparsed line or per file-level problem (``file``, ``line``,
    ``reason``, ``text`` cut short). ``assumptions``: every year or zone the loader chose,
    with its basis and how sure it is (``certain``, ``likely``, ``guess``, ``stated``,
    ``assumed``).
    """

    files: pl.DataFrame
    warnings: pl.DataFrame
    assumptions: pl.DataFrame

    @property
    def unparsed_lines(self) -> int:
        return int(self.files["unparsed_lines"].sum())

    def notes(self) -> list[tuple[str, str]]:
        """What a reader should know, as ``(kind, text)`` pairs: a ``total`` line, then a
        ``problem`` per file that could not be read, an ``unparsed`` per file with unparsed
        lines, a ``cut`` per file with lines too long to read whole (``Limits``), a
        ``duplicate`` per file with records another file holds too, and an
        ``assumed`` per assumption shared by files (paths relative to the folder the files
        share). The CLI, ``str`` and Jupyter all show these."""
        from timeline.paths import common_root, relative_path

        root = common_root(self.files["file"].to_list())
        rows = int(self.files["rows"].sum())
        lines = int(self.files["lines"].sum())
        n = self.files.height
        wrapper = int(self.files["wrapper_lines"].sum())
        duplicate = int(self.files["duplicate_lines"].sum())
        notes = [
            (
                "total",
                f"{n:,} file{'s' if n != 1 else ''}, {lines:,} lines: {rows:,} rows read, "
                f"{int(self.files['continuation_lines'].sum()):,} continuation lines, "
                f"{self.unparsed_lines:,} unparsed"
                + (f", {wrapper:,} wrapper lines" if wrapper else "")
                + (f", {duplicate:,} duplicate lines" if duplicate else ""),
            )
        ]
        for row in self.files.filter(pl.col("problem").is_not_null()).iter_rows(named=True):
            notes.append(("problem", f"{relative_path(row['file'], root)}: {row['problem']}"))
        for row in self.files.filter(pl.col("unparsed_lines") > 0).iter_rows(named=True):
            first = ", ".join(map(str, row["first_unparsed"] or []))
            count = row["unparsed_lines"]
            notes.append(
                (
                    "unparsed",
                    f"{relative_path(row['file'], root)}: {count:,} unparsed "
                    f"line{'s' if count != 1 else ''} (first: {first})",
                )
            )
        for row in _cut_lines(self.warnings).iter_rows(named=True):
            count, first = row["lines"], ", ".join(map(str, row["first"]))
            notes.append(
                (
                    "cut",
                    f"{relative_path(row['file'], root)}: {count:,} line"
                    f"{'s' if count != 1 else ''} too long, read in part (first: {first}; "
                    f"{row['reason']})",
                )
            )
        copied = set(
            self.warnings.filter(pl.col("reason").str.starts_with(LOG_COPY_REASON))["file"]
        )
        for row in self.files.filter(pl.col("duplicate_rows") > 0).iter_rows(named=True):
            notes.append(("duplicate", _duplicate_note(row, root, logs=row["file"] in copied)))
        for row in self.assumption_groups(lambda path: relative_path(path, root)):
            files = row["files"]
            where = row["example"] if files == 1 else f"{files:,} files"
            notes.append(
                (
                    "assumed",
                    f"assumed {row['what']} = {row['value']} for {where} "
                    f"({row['certainty']}: {row['basis']})",
                )
            )
        return notes

    def assumption_groups(self, name: Callable[[str], str] = str) -> list[dict[str, Any]]:
        """The assumptions shared by files, each said once with a basis true of all of
        them (:func:`timeline.reading.settle.assumption_groups`), files shown by ``name``."""
        return settle.assumption_groups(self.assumptions, name)

    def __str__(self) -> str:
        return "\n".join(text for _, text in self.notes())

    def __repr__(self) -> str:
        return f"LoadSummary({self.notes()[0][1]})"

    def _repr_html_(self) -> str:
        from html import escape

        notes = self.notes()
        items = "".join(f"<li class='{kind}'>{escape(text)}</li>" for kind, text in notes[1:])
        return (
            f"<div class='timeline-load-summary'><b>{escape(notes[0][1])}</b>"
            + (f"<ul>{items}</ul>" if items else "")
            + "</div>"
        )


def _cut_lines(warnings: pl.DataFrame) -> pl.DataFrame:
    """Per file, the lines cut short while reading (longer than the limit): how many, the
    first few, and the first one's reason."""
    cut = warnings.filter(pl.col("line").is_not_null() & pl.col("reason").str.contains(CUT_PATTERN))
    return (
        cut.sort("file", "line")
        .group_by("file", maintain_order=True)
        .agg(lines=pl.len(), first=pl.col("line").head(5), reason=pl.col("reason").first())
    )


def _duplicate_note(row: dict[str, Any], root: str, *, logs: bool = False) -> str:
    """What a file's rows left out as copies of another file's records (or, ``logs``,
    of its log) come to."""
    from timeline.paths import relative_path

    count, lines = row["duplicate_rows"], row["duplicate_lines"]
    where = ", ".join(relative_path(path, root) for path in row["duplicate_of"])
    what = "of the log" if logs else "of records"
    return (
        f"{relative_path(row['file'], root)}: {count:,} row{'s' if count != 1 else ''} "
        f"{what} {where} holds too, counted there"
        + (f" ({lines:,} duplicate line{'s' if lines != 1 else ''})" if lines else "")
    )


class Loaded:
    """The event frame and the summary of how it was loaded.

    ``events`` is the whole frame, sorted by time (read from the event store on first
    use); ``scan()`` gives the store as a polars LazyFrame, for work that should not hold
    every row at once. ``store`` is the store's folder (a temporary one, removed with this
    object, unless ``read(..., store=FOLDER)`` named one).
    """

    def __init__(
        self,
        events: pl.DataFrame | None = None,
        summary: LoadSummary | None = None,
        *,
        store: str | None = None,
    ):
        if events is None and store is None:
            raise ValueError("Loaded needs events or a store")
        self._events = events
        self.summary = summary if summary is not None else _empty_summary()
        self.store = store
        #: the folder of the cache where the analysis of this store's data can be kept
        #: (:class:`~timeline.reading.store.FinishedStores` for a store the read made,
        #: :class:`~timeline.reading.store.OpenedStores` for one opened); None for none
        self.kept: str | None = None
        #: the rows the analysis keeps of the store, once worked out
        #: (:func:`timeline.analysis.kept_rows`): a notebook's analysis, figures and report
        #: then read the store once between them
        self.analysis_rows: pl.DataFrame | None = None
        self._keep: object = None  # what must live as long as a temporary store is used

    @property
    def events(self) -> pl.DataFrame:
        if self._events is None:
            self._events = _sorted(self.scan().collect())
        return self._events

    @property
    def in_memory(self) -> bool:
        """Whether ``events`` is held: given, or read from the store once already."""
        return self._events is not None

    def scan(self) -> pl.LazyFrame:
        """The event frame as a LazyFrame over the store (or over ``events`` when there is
        no store). Every row has its whole message here, whatever ``events`` keeps."""
        if self.store is None:
            return self.events.lazy()
        return event_store.scan(self.store)

    def is_empty(self) -> bool:
        """True when nothing was loaded (no rows at all)."""
        if self._events is not None:
            return self._events.height == 0
        return self.scan().select(pl.len()).collect().item() == 0

    def narrowed(self, events: pl.DataFrame) -> Loaded:
        """The same load with ``events`` standing for the frame (a window of it, or the
        columns the analysis reads); ``scan()`` still reads the whole store. What is
        kept of the whole data (``kept``) is not the narrowed frame's."""
        narrowed = Loaded(events=events, summary=self.summary, store=self.store)
        narrowed._keep = self
        return narrowed

    def __repr__(self) -> str:
        files = self.summary.files.height
        return f"Loaded({files} files, store={self.store!r})"


def load(
    paths: PathLike | Iterable[PathLike],
    *,
    format: str | None = None,
    year: int | None = None,
    tz: str | None = None,
    infer: bool = True,
) -> pl.DataFrame:
    """The event frame of ``paths``, sorted by ``ts``; see :func:`read` for the summary."""
    return read(paths, format=format, year=year, tz=tz, infer=infer).events


def scan(path: PathLike) -> pl.LazyFrame:
    """The event frame of an event store folder (``timeline parse ... -o events/``) as a
    polars LazyFrame."""
    return event_store.scan(path)


def read(
    paths: PathLike | Iterable[PathLike],
    *,
    format: str | None = None,
    year: int | None = None,
    tz: str | None = None,
    infer: bool = True,
    on_file: Callable[[str], None] | None = None,
    store: PathLike | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    cache: bool | PathLike = True,
    limits: Limits = LIMITS,
    follow_symlinks: bool = False,
) -> Loaded:
    """Load ``paths`` into one event frame and say how it went.

    Parameters
    ----------
    paths
        Files, folders (read recursively), globs, compressed files and archives (each
        file in an archive read as a file of its own, :mod:`timeline.reading.archives`),
        URLs that fsspec opens (``s3://bucket/prefix/``, :mod:`timeline.reading.remote`),
        or a list of them; or one event store folder, which is opened as it is.
    format
        A parser name to use for every file instead of sniffing.
    year
        The year the data starts in, for records that write none (klog) where no runtime
        prefix says it; lines of January after December, in a file or across the files,
        are in the next year.
    tz
        The zone (``Europe/Berlin``) of records that write a time without one; UTC if not
        given, and the summary says it was assumed.
    infer
        Add the changes the logs themselves tell (restarts, upgrades, rollbacks, reloads,
        reboots; see :mod:`timeline.reading.changes`), none that a record already tells.
    on_file
        Called with each file's path once it is read (for progress bars).
    store
        A folder to write the event store to; a temporary one if not given.
    workers
        Worker processes for reading (default: every core; 1 reads in this process).
    scheduler, client
        A Dask scheduler address or a ``distributed.Client`` to read on a cluster
        instead (``DASK_SCHEDULER_ADDRESS`` is honoured too).
    cache
        Reuse the partial results of unchanged files: True uses the user's cache folder
        (or ``$INCIDENT_TIMELINE_CACHE``), a path another folder, False none. The
        analysis of the data read is kept there too (:func:`timeline.analyze`), also
        for an event store folder.
    limits
        How much reading one file may take (:class:`timeline.reading.sources.Limits`).
    follow_symlinks
        Read what symlinks found in folders and globs lead to outside the paths given.
    """
    given = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if len(given) == 1 and event_store.is_store(given[0]):
        return open_store(given[0], cache=cache)
    try:
        if format:
            parsers.registry.get(format)
    except KeyError as exc:
        raise UnknownFormatError(exc.args[0]) from None
    if tz is not None and not times.known_zone(tz):
        raise UnknownZoneError(times.unknown_zone_text(tz))
    found = sources.scan(given, follow_symlinks=follow_symlinks)
    root = event_store.prepare(store or tempfile.mkdtemp(prefix="timeline-"))
    unpacked = root / ".unpacked"
    found = archives.unpacked(found, str(unpacked), limits)
    files = found.files
    partial_root, temporary_partials = _partial_root(cache, root)
    client = executor.connect(scheduler, client)
    parts = 1 if client is not None else workers or executor.default_workers()
    tasks = [task for path in files for task in mapper.plan(path, format=format, parts=parts)]
    tasks = [
        dataclasses.replace(task, limits=limits, name=found.names.get(task.path)) for task in tasks
    ]
    # a file unpacked from an archive is new each read: nothing to find in the cache
    keys = [
        None if temporary_partials or task.name else event_store.task_key(task) for task in tasks
    ]
    finished_key = _finished_key(tasks, keys, found.skipped, year=year, tz=tz, infer=infer)
    finished = event_store.FinishedStores(partial_root)
    cached = event_store.PartialCache(partial_root)
    kept = False
    try:
        if finished_key and finished.restore(finished_key, root):
            kept = True
            cached.mark_used(finished.made_from(finished_key))
            if on_file:
                for path in files:
                    on_file(path)
            summary = open_store(root).summary
        else:
            with archives_unpacked(found.unpacked):
                partials = _map(
                    tasks,
                    keys,
                    format=format,
                    partial_root=partial_root,
                    workers=workers,
                    client=client,
                    on_file=on_file,
                )
            partials += [Partial(path=name, problems=[why]) for name, why in found.skipped]
            summary = _reduce_and_finish(
                [*(found.names.get(path, path) for path in files), *(n for n, _ in found.skipped)],
                partials,
                root,
                year=year,
                tz=tz,
                infer=infer,
                workers=workers,
                client=client,
            )
            if finished_key:
                made_from = cached.files_of(keys, partials)
                kept = finished.keep(finished_key, root, made_from=made_from)
    finally:
        if temporary_partials:
            shutil.rmtree(partial_root, ignore_errors=True)
        shutil.rmtree(unpacked, ignore_errors=True)
    if not temporary_partials:
        cached.prune()
    loaded = Loaded(summary=summary, store=str(root))
    if kept:
        loaded.kept = str(finished.root / finished_key)
    if not store:
        weakref.finalize(loaded, shutil.rmtree, str(root), True)
    return loaded


def open_store(path: PathLike, *, cache: bool | PathLike = False) -> Loaded:
    """The :class:`Loaded` of an event store folder, as ``read`` wrote it. With
    ``cache`` (as for :func:`read`), ``kept`` is a folder of the cache for this store
    (:class:`~timeline.reading.store.OpenedStores`), where its analysis can be kept."""
    tables = event_store.read_summary(path)
    tables["files"] = _with_file_columns(tables["files"])
    loaded = Loaded(summary=LoadSummary(**tables), store=str(path))
    if cache is not False:
        folder, temporary = _partial_root(cache, Path(path))
        opened = None if temporary else event_store.OpenedStores(folder).folder(path)
        loaded.kept = str(opened) if opened else None
    return loaded


def _with_file_columns(files: pl.DataFrame) -> pl.DataFrame:
    """A store's table of files with the columns a store written before them lacks
    (none of its rows were left out as duplicates)."""
    missing = {
        "duplicate_lines": pl.lit(0, pl.Int64),
        "duplicate_rows": pl.lit(0, pl.Int64),
        "duplicate_of": pl.lit([], pl.List(pl.String)),
    }
    added = {name: value for name, value in missing.items() if name not in files.columns}
    return files.with_columns(**added).select(FILE_COLUMNS) if added else files


def _partial_root(cache: bool | PathLike, root: Path) -> tuple[Path, bool]:
    """Where partial results go, and whether they are temporary. A cache folder that
    cannot be made or written to (a read-only home, a file in its place) is warned about
    and the read goes on without it."""
    if cache is False:
        return root / ".partials", True
    if cache is True:
        folder = Path(os.environ.get(CACHE_ENV) or event_store.default_cache_dir())
    else:
        folder = Path(cache)
    try:
        (folder / "partials").mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder / "partials").close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        warnings.warn(
            f"the cache folder {folder} cannot be used ({why}): reading without it",
            TimelineWarning,
            stacklevel=3,
        )
        return root / ".partials", True
    return folder, False


# --- map ---------------------------------------------------------------------------------


def _finished_key(
    tasks: list[Task], keys: list[str | None], skipped: list[tuple[str, str]], **options
) -> str | None:
    """What a read's finished store depends on, as a cache key: each task's own key (its
    file's path, size and time, and the reading code) with the name its rows carry, the
    files skipped and why, and the options of the reduce. None when a task has no key (a
    pipe, say) or the cache is off."""
    if not keys or any(key is None for key in keys):
        return None
    what = [
        [[key, task.shown, task.part] for key, task in zip(keys, tasks, strict=True)],
        [list(pair) for pair in skipped],
        {name: str(value) for name, value in sorted(options.items())},
        event_store.code_version(),
        event_store.STORE_FORMAT,
    ]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:32]


def _map(
    tasks: list[Task],
    keys: list[str | None],
    *,
    format: str | None,
    partial_root: Path,
    workers: int | None,
    client: Any,
    on_file: Callable[[str], None] | None,
) -> list[Partial]:
    """Every task's partials, from the cache where its file has not changed (``keys``:
    each task's cache key, None for none)."""
    cache = event_store.PartialCache(partial_root)
    partials: list[Partial | None] = [None] * len(tasks)
    todo: list[Task] = []
    for i, (task, key) in enumerate(zip(tasks, keys, strict=True)):
        found = cache.get(key) if key else None
        if found is not None:
            found.out = cache.rows_path(key, found.out)
            found.path = task.shown  # the file may have been named another way
            found.warnings = found.warnings.with_columns(file=pl.lit(found.path, pl.String))
            partials[i] = found
            if on_file and task.part == 0:
                on_file(task.path)
            continue
        name = key or f"{i:06d}"
        todo.append(dataclasses.replace(task, format=format, out=cache.rows_path(name)))
    positions = [i for i, p in enumerate(partials) if p is None]
    work = [_size(t) + (FILE_WORK_BYTES if t.part == 0 else 0) for t in todo]
    batches = _batches(todo, work)
    if sum(work) < MIN_BYTES_FOR_WORKERS and client is None:
        workers = 1
    chunks = all(task.end is not None for batch in batches for task in batch)
    keyed = {key for key in keys if key}
    for b, results in executor.run(
        mapper.map_batch, batches, workers=workers, client=client, threads=chunks
    ):
        for task, partial in zip(batches[b], results, strict=True):
            if Path(task.out).stem in keyed:
                cache.put(Path(task.out).stem, partial)
            if on_file and task.part == 0:
                on_file(task.path)
        for k, partial in zip(_batch_positions(batches, b, positions), results, strict=True):
            partials[k] = partial
    return [p for p in partials if p is not None]


def _batches(tasks: list[Task], work: list[int]) -> list[list[Task]]:
    """Tasks grouped by their ``work`` (bytes of text, and :data:`FILE_WORK_BYTES` a
    file) so that many small files travel to a worker together."""
    batches: list[list[Task]] = []
    size = 0
    for task, task_work in zip(tasks, work, strict=True):
        if not batches or size + task_work > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(task)
        size += task_work
    return batches


def _batch_positions(batches: list[list[Task]], b: int, positions: list[int]) -> list[int]:
    start = sum(len(batch) for batch in batches[:b])
    return positions[start : start + len(batches[b])]


def _size(task: Task) -> int:
    """The bytes of text a task reads (a gzip file's unpacked size)."""
    if task.end is not None:
        return task.end - task.start
    return sources.unpacked_size(task.path)


# --- reduce and finish -------------------------------------------------------------------


@dataclass(frozen=True)
class _FilePlan:
    path: str
    parts: list[Partial] = field(default_factory=list)
    settlement: settle.Settlement = settle.Settlement()


def _reduce_and_finish(
    files: list[str],
    partials: list[Partial],
    root: Path,
    *,
    year: int | None,
    tz: str | None,
    infer: bool,
    workers: int | None,
    client: Any,
) -> LoadSummary:
    by_file: dict[str, list[Partial]] = {shown_name(path): [] for path in files}
    for partial in partials:
        by_file[partial.path].append(partial)
    for parts in by_file.values():
        parts.sort(key=lambda p: p.part)
    known = settle.known_span([p.evidence for p in partials if p.evidence])
    evidences = {path: [p.evidence for p in parts if p.evidence] for path, parts in by_file.items()}
    start = settle.data_start(list(evidences.values()), known)
    nodes, assumptions = bundles.bundle_nodes(evidences)
    plans = []
    for path, parts in by_file.items():
        if not evidences[path]:
            plans.append(_FilePlan(path, parts))
            continue
        settlement, said = settle.plan(
            path,
            evidences[path],
            year=year,
            tz=tz,
            known=known,
            mtime=parts[0].mtime,
            start=start,
        )
        settlement = dataclasses.replace(settlement, host=nodes.get(path))
        plans.append(_FilePlan(path, parts, settlement))
        assumptions.extend(said)
    staging = root / ".staging"
    staging.mkdir(exist_ok=True)
    lookup = _template_lookup(partials, staging)
    sizes = {plan.path: _size(Task(plan.path)) for plan in plans}
    jobs = _finish_jobs(plans, sizes, lookup, root, staging)
    small = sum(sizes.values()) < MIN_BYTES_FOR_WORKERS
    # a finish job is a few big polars queries, however many files it holds: threads run
    # them as well as processes would, and start at once
    finished = executor.run(
        finish_job,
        jobs,
        workers=1 if small and client is None else workers,
        client=client,
        threads=True,
    )
    counts = [noted for _, noted in finished if noted is not None]
    noted = settle.time_problems(pl.concat(counts)) if counts else {}
    for plan in plans:
        if plan.path in noted and plan.parts:
            plan.parts[0].problems.append(noted[plan.path])
    copies = _leave_out_log_copies(plans, root)
    found = _write_records(root, staging, infer=infer)
    shutil.rmtree(staging, ignore_errors=True)
    _note_time_outliers(plans, root)
    warnings = _warnings(plans)
    if copies.height:
        both = pl.concat([found.duplicates, copies.drop("ts")])
        found = dataclasses.replace(found, duplicates=both)
    counted = _duplicate_counts(found, plans, warnings, root)
    warnings = pl.concat([warnings, _duplicate_notes(found.duplicates), _log_copy_notes(copies)])
    summary = LoadSummary(
        files=_file_table(plans, warnings, counted),
        warnings=warnings,
        assumptions=pl.DataFrame(assumptions, schema=settle.ASSUMPTION_SCHEMA),
    )
    event_store.write_summary(
        root,
        {"files": summary.files, "warnings": summary.warnings, "assumptions": summary.assumptions},
    )
    return summary


def _leave_out_log_copies(plans: list[_FilePlan], root: Path) -> pl.DataFrame:
    """Take out of the store's log rows those that repeat another file's copy of the
    same log (:func:`timeline.reading.copies.log_copies`), before the changes the logs
    tell are inferred from them; returns the rows left out. Only the store files that
    hold a file with rows left out are written again."""
    parts = sorted((root / event_store.EVENTS).glob("part-*.parquet"))
    lines = {plan.path: sum(part.lines for part in plan.parts) for plan in plans}
    if sum(1 for plan in plans if any(part.rows for part in plan.parts)) < 2:
        return pl.DataFrame(schema=COPY_SCHEMA)  # one file is no file's copy
    copies = log_copies(event_store.scan_files(parts), lines)
    if copies.height == 0:
        return copies
    files = copies["file"].unique().implode()
    gone = copies.select("file", "line", "ts", "message", _gone=pl.lit(True))
    keys = ["file", "line", "ts", "message"]
    for part in parts:
        held = pl.scan_parquet(part).filter(pl.col("file").is_in(files)).select(pl.len())
        if held.collect().item() == 0:
            continue
        rows = pl.read_parquet(part)
        kept = rows.join(
            gone.cast({"line": rows.schema["line"]}), on=keys, how="left", maintain_order="left"
        ).filter(pl.col("_gone").is_null() | (pl.col("kind") != "log"))
        kept.drop("_gone").write_parquet(part, statistics=True, compression="lz4")
    return copies


def _note_time_outliers(plans: list[_FilePlan], root: Path) -> None:
    """Add to each file's problems the rows it dates implausibly or far from the bulk."""
    stored = event_store.scan_files(sorted((root / event_store.EVENTS).glob("*.parquet")))
    far = times.outlier_problems(stored)
    for plan in plans:
        if plan.path in far and plan.parts:
            plan.parts[0].problems.append(far[plan.path])


def _template_lookup(partials: list[Partial], staging: Path) -> str | None:
    """The template of every distinct masked message, per source, as a Parquet file: only
    the distinct messages go through the grouping (see
    :func:`timeline.reading.signatures.group_masked`)."""
    paths = sorted({p.out for p in partials if p.out and p.rows and os.path.exists(p.out)})
    if not paths:
        return None
    distinct = (
        pl.scan_parquet(paths)
        .filter(pl.col("masked").is_not_null())
        .group_by("source", "masked")
        .agg(pl.len().alias("_rows"))
        .collect(engine="streaming")
        .sort("source", "masked")
    )
    lookups = [
        part.select(
            "source",
            "masked",
            pl.Series(
                "_template",
                signatures.group_masked(part["masked"].to_list(), part["_rows"].to_list()),
                dtype=pl.String,
            ),
        )
        for part in distinct.partition_by("source", maintain_order=True)
        if part.height
    ]
    if not lookups:
        return None
    path = str(staging / "templates.parquet")
    pl.concat(lookups).write_parquet(path)
    return path


@dataclass(frozen=True)
class FinishJob:
    """Partials to turn into one event store file: ``(rows, index, file, part, first
    line - 1, settlement)`` each, the template lookup, and where the rows and the record
    rows (:func:`is_record`) go. ``rows`` is a partial's Parquet file, ``index`` its
    rows' ``_task`` there."""

    parts: list[tuple[str, int, str, int, int, settle.Settlement]]
    templates: str | None
    out: str
    records_out: str


def _finish_jobs(
    plans: list[_FilePlan], sizes: dict[str, int], lookup: str | None, root: Path, staging: Path
):
    jobs: list[FinishJob] = []
    current: list[tuple[str, int, str, int, int, settle.Settlement]] = []
    size = 0

    def flush() -> None:
        n = len(jobs)
        out = str(root / event_store.EVENTS / f"part-{n:05d}.parquet")
        jobs.append(
            FinishJob(list(current), lookup, out, str(staging / f"records-{n:05d}.parquet"))
        )
        current.clear()

    for plan in plans:
        offset = 0
        for part in plan.parts:
            if part.rows and part.out:
                current.append(
                    (part.out, part.index, plan.path, part.part, offset, plan.settlement)
                )
                size += sizes[plan.path] if part.part == 0 else 0
            offset += part.lines
            if len(plan.parts) > 1 and current:  # a big file's chunks finish side by side
                flush()
                size = 0
        if size >= PART_BYTES and current:
            flush()
            size = 0
    if current:
        flush()
    return jobs


def finish_job(job: FinishJob) -> pl.DataFrame | None:
    """Settle times, number lines within the file and add templates for one group of
    partials, and write it: record rows apart (:func:`is_record`), for the reduce of
    all files' records to keep one row of each and the change inference to mark. A big
    partial streams through on its own; the small ones are read whole and written
    together, which costs far less per file. Returns the rows whose times
    :func:`timeline.reading.settle.apply` had to mend, counted per file
    (:func:`~timeline.reading.settle.time_note_counts`): a file's chunks may finish in
    several jobs, and its sentence is said once over them all."""
    lookup = pl.read_parquet(job.templates) if job.templates else None
    shared = Counter(rows for rows, *_ in job.parts)
    small: dict[tuple[settle.Settlement, int, int], dict[str, list[tuple[int, str]]]] = {}
    counts = []
    for n, (rows, index, path, part, offset, settlement) in enumerate(job.parts):
        if shared[rows] > 1 or os.path.getsize(rows) <= FINISH_TOGETHER_BYTES:
            small.setdefault((settlement, part, offset), {}).setdefault(rows, []).append(
                (index, path)
            )
            continue
        settled = _settled(_rows_of({rows: [(index, path)]}), settlement, part, offset)
        counts += _write_events(
            _event_columns(settled, lookup),
            job,
            suffix=f"-{n:05d}",
            notes=settle.time_note_counts(settled),
        )
    for n, pieces in enumerate(_writes(small)):
        together = pl.concat(
            [
                _settled(_rows_of(owners), *key).collect(engine="in-memory")
                for key, owners in pieces
            ],
            how="diagonal_relaxed",
        ).lazy()
        counts += _write_events(
            _event_columns(together, lookup),
            job,
            suffix=f"-s{n:04d}" if n else "",
            notes=settle.time_note_counts(together),
        )
    return pl.concat(counts) if counts else None


def _writes(small: dict[tuple, dict[str, list]]) -> Iterator[list[tuple[tuple, dict]]]:
    """The small partials (``{settlement key: {rows file: owners}}``) in what is written
    to the store at once, about :data:`FINISH_WRITE_BYTES` of rows files each:
    ``[(key, {rows file: owners})]``, a key's files read :data:`FINISH_FILES_AT_ONCE` at
    most a query."""
    written, size = [], 0
    for key, group in small.items():
        files = {}
        for rows, owners in group.items():
            files[rows] = owners
            size += os.path.getsize(rows)
            if len(files) >= FINISH_FILES_AT_ONCE or size >= FINISH_WRITE_BYTES:
                written.append((key, files))
                files = {}
            if size >= FINISH_WRITE_BYTES:
                yield written
                written, size = [], 0
        if files:
            written.append((key, files))
    if written:
        yield written


def _rows_of(owners: dict[str, list[tuple[int, str]]]) -> pl.LazyFrame:
    """The rows of partials, ``{rows file: [(index, shown path)]}``, each with its
    ``file``. A rows file may hold several tasks' rows (``_task``), not all of them
    asked for: a row's owner is its rows file's number and its task's."""
    number = {rows: n for n, rows in enumerate(owners)}
    found = {(number[rows] << 32) + i: path for rows in owners for i, path in owners[rows]}
    file_number = pl.col("_rows").replace_strict(number, return_dtype=pl.UInt64)
    owner = file_number * (1 << 32) + pl.col("_task")
    return (
        pl.scan_parquet(list(owners), include_file_paths="_rows")
        .with_columns(_owner=owner)
        .filter(pl.col("_owner").is_in(list(found)))
        .with_columns(file=pl.col("_owner").replace_strict(found, return_dtype=pl.String))
        .drop("_rows", "_owner", "_task")
    )


def _settled(
    rows: pl.LazyFrame, settlement: settle.Settlement, part: int, offset: int
) -> pl.LazyFrame:
    """Partials' rows (:func:`_rows_of`) that share a settlement, part and line offset,
    settled."""
    return settle.apply(rows, settlement, part).with_columns(
        line=pl.col("line") + offset, end_line=pl.col("end_line") + offset
    )


def _event_columns(events: pl.LazyFrame, lookup: pl.DataFrame | None) -> pl.LazyFrame:
    """The event frame's columns, with each masked message's template, and ``end_line``
    (the last line of a record, which the store does not keep but the reduce of records
    counts)."""
    if lookup is not None:
        events = events.join(
            lookup.lazy(), on=["source", "masked"], how="left", maintain_order="left"
        )
        events = events.with_columns(template=pl.coalesce("template", "_template"))
    return events.select(
        *[
            (pl.col(c).fill_null("{}") if c == "attrs" else pl.col(c)).cast(t)
            for c, t in EVENT_SCHEMA.items()
        ],
        pl.col("end_line").cast(pl.UInt32),
    )


def _write_events(
    events: pl.LazyFrame,
    job: FinishJob,
    *,
    suffix: str = "",
    notes: pl.LazyFrame | None = None,
) -> list[pl.DataFrame]:
    """Write ``events`` to the job's store files (record rows apart, with their
    ``end_line``), and collect ``notes`` in the same pass; returns what ``notes``
    collected, if given."""
    # LZ4: a load reads the store three or four times; zstd's smaller files cost more
    out = job.out.removesuffix(".parquet") + suffix + ".parquet"
    records_out = job.records_out.removesuffix(".parquet") + suffix + ".parquet"
    done = pl.collect_all(
        [
            events.filter(~is_record())
            .select(list(EVENT_SCHEMA))
            .sink_parquet(out, statistics=True, compression="lz4", lazy=True),
            events.filter(is_record()).sink_parquet(records_out, lazy=True),
            *([notes] if notes is not None else []),
        ],
        engine="streaming",
    )
    return [done[2]] if notes is not None else []


def is_record() -> pl.Expr:
    """Rows that are records of an object rather than lines of a log: changes, CI jobs
    and Kubernetes events. They are few, and are reduced together once every file is
    read (:func:`_write_records`)."""
    return pl.col("kind").is_in(["change", "job"]) | (pl.col("source") == "k8s-event")


def _write_records(root: Path, staging: Path, *, infer: bool) -> Deduplicated:
    """The record rows of all files, one row per record
    (:func:`timeline.reading.duplicates.deduplicated`), and the changes the logs tell
    (with ``infer``), none that a record already tells
    (:func:`timeline.reading.changes.reconcile`): change rows to ``changes.parquet``, the
    others to ``records.parquet``. Returns the record rows kept (with ``end_line``,
    before any inferred change is added) and those left out as copies of another file's
    record (:data:`~timeline.reading.duplicates.DUPLICATE_SCHEMA`)."""
    staged = sorted(str(p) for p in staging.glob("records-*.parquet"))
    schema = {**EVENT_SCHEMA, "end_line": pl.UInt32}
    records = pl.read_parquet(staged).cast(schema) if staged else pl.DataFrame(schema=schema)
    found = deduplicated(records)
    rows = found.rows.drop("end_line")
    is_change = pl.col("kind") == "change"
    recorded = rows.filter(is_change)
    if infer:
        from timeline.reading.changes import infer_changes, reconcile

        logs = event_store.scan_files(sorted((root / event_store.EVENTS).glob("part-*.parquet")))
        recorded = reconcile(recorded, infer_changes(logs))
    recorded.write_parquet(root / event_store.EVENTS / "changes.parquet")
    rows.filter(~is_change).write_parquet(
        root / event_store.EVENTS / "records.parquet", statistics=True, compression="lz4"
    )
    return found


def _duplicate_counts(
    found: Deduplicated, plans: list[_FilePlan], warnings: pl.DataFrame, root: Path
) -> pl.DataFrame:
    """For each file that had rows left out as copies of another file's records:
    ``duplicate_rows``, ``duplicate_lines`` (the lines of those rows that no row kept
    starts or, as a record, spans, and that are no unparsed or wrapper's line),
    ``first_lines`` counted again over the rows kept, and ``duplicate_of``, the files
    the records are kept in. Only the records are compared across files, so only their
    files are looked at again."""
    dropped = found.duplicates
    if dropped.height == 0:
        return pl.DataFrame(schema=_DUPLICATE_COUNTS)
    files = dropped["file"].unique().implode()
    kept = found.rows.filter(pl.col("file").is_in(files)).select("file", "line", "end_line")
    logged = (
        event_store.scan_files(sorted((root / event_store.EVENTS).glob("part-*.parquet")))
        .filter(pl.col("file").is_in(files))
        .select("file", "line", end_line="line")
        .unique()
        .collect()
    )
    starts = pl.concat([kept, logged]).select("file", "line").unique()
    paths = set(dropped["file"])
    counted = [
        _lines(kept),
        logged.select("file", pl.col("line").cast(pl.Int64)),
        _lines(warnings.filter(pl.col("unparsed") & pl.col("file").is_in(files))),
        *(_lines(spans) for spans in _wrapper_spans(plans, paths)),
    ]
    repeated = (
        _lines(dropped)
        .unique()
        .join(pl.concat(counted).unique(), on=["file", "line"], how="anti")
        .group_by("file")
        .agg(duplicate_lines=pl.len().cast(pl.Int64))
    )
    return (
        dropped.group_by("file")
        .agg(
            duplicate_rows=pl.len().cast(pl.Int64),
            duplicate_of=pl.col("of_file").unique().sort(),
        )
        .join(repeated, on="file", how="left")
        .join(
            starts.group_by("file").agg(first_lines=pl.len().cast(pl.Int64)), on="file", how="left"
        )
        .with_columns(pl.col("duplicate_lines", "first_lines").fill_null(0))
        .select(list(_DUPLICATE_COUNTS))
        .cast(_DUPLICATE_COUNTS)
    )


_DUPLICATE_COUNTS = {
    "file": pl.String,
    "duplicate_rows": pl.Int64,
    "duplicate_lines": pl.Int64,
    "first_lines": pl.Int64,
    "duplicate_of": pl.List(pl.String),
}


def _lines(spans: pl.DataFrame) -> pl.DataFrame:
    """Every line (``file``, ``line``) of ``spans`` (``file``, ``line``, ``end_line``)."""
    return (
        spans.select(
            "file",
            line=pl.int_ranges(
                pl.col("line").cast(pl.Int64), pl.col("end_line").cast(pl.Int64) + 1
            ),
        )
        .explode("line")
        .drop_nulls("line")
        .cast({"line": pl.Int64})
    )


def _wrapper_spans(plans: list[_FilePlan], paths: set[str]) -> Iterator[pl.DataFrame]:
    """The lines wrappers wrote of their own in the files ``paths``, numbered in the file."""
    for plan in plans:
        if plan.path not in paths:
            continue
        offset = 0
        for part in plan.parts:
            if part.wrapper_spans is not None and part.wrapper_spans.height:
                yield part.wrapper_spans.select(
                    file=pl.lit(plan.path),
                    line=pl.col("line").cast(pl.Int64) + offset,
                    end_line=pl.col("end_line").cast(pl.Int64) + offset,
                )
            offset += part.lines


def _duplicate_notes(dropped: pl.DataFrame) -> pl.DataFrame:
    """A warning for each record left out as a copy (not an unparsed line): where it
    is, and the file and line of the row kept for it."""
    records = dropped.filter(pl.col("record") != LOG_RECORD).unique(
        ["file", "line", "end_line"], keep="first", maintain_order=True
    )
    return records.select(
        "file",
        "line",
        "end_line",
        unparsed=pl.lit(False),
        reason=pl.format("the same {} as {}, counted there", "record", _kept_at("of_line")),
        text=pl.col("message").str.slice(0, mapper.WARNING_TEXT_CHARS),
    ).cast(WARNING_SCHEMA)


def _kept_at(line: str) -> pl.Expr:
    """``name:line`` of the row kept in a left-out copy's place: the kept file's name
    (``of_file`` without its folders) and the line column ``line``."""
    return pl.format("{}:{}", pl.col("of_file").str.extract(r"([^/\\]+)$", 1), line)


def _log_copy_notes(copies: pl.DataFrame) -> pl.DataFrame:
    """A warning for each run of log rows left out as a copy of another file's (not an
    unparsed line): the lines it spans, and the file and first line of the rows kept for
    them. A copy of a whole log is one warning, not one per line."""
    if copies.height == 0:
        return pl.DataFrame(schema=WARNING_SCHEMA)
    ordered = copies.unique(["file", "line"], keep="first").sort("file", "line")
    starts_run = (
        (pl.col("file") != pl.col("file").shift())
        | (pl.col("of_file") != pl.col("of_file").shift())
        | (pl.col("line").cast(pl.Int64) != pl.col("end_line").shift().cast(pl.Int64) + 1)
    ).fill_null(True)
    runs = (
        ordered.with_columns(_run=starts_run.cum_sum())
        .group_by("_run", maintain_order=True)
        .agg(
            pl.col("file", "line", "of_file", "of_line", "message").first(),
            pl.col("end_line").last(),
            _last_of=pl.col("of_line").max(),
        )
    )
    where = _kept_at("of_line")
    return runs.select(
        "file",
        "line",
        "end_line",
        unparsed=pl.lit(False),
        reason=pl.format(
            LOG_COPY_REASON + " {}, counted there",
            pl.when(pl.col("_last_of") > pl.col("of_line"))
            .then(pl.format("{}-{}", where, "_last_of"))
            .otherwise(where),
        ),
        text=pl.col("message").str.slice(0, mapper.WARNING_TEXT_CHARS),
    ).cast(WARNING_SCHEMA)


def _warnings(plans: list[_FilePlan]) -> pl.DataFrame:
    """Every warning with its line numbers in the file (not the chunk), and each file's
    problems as rows without a line."""
    frames = [pl.DataFrame(schema=WARNING_SCHEMA)]
    for plan in plans:
        offset = 0
        for part in plan.parts:
            if part.warnings.height:
                frames.append(
                    part.warnings.with_columns(
                        line=pl.col("line") + offset, end_line=pl.col("end_line") + offset
                    )
                )
            offset += part.lines
        problems = [p for part in plan.parts for p in part.problems]
        if problems:
            frames.append(
                pl.DataFrame(
                    {"file": [plan.path] * len(problems), "reason": problems},
                    schema={"file": pl.String, "reason": pl.String},
                ).with_columns(
                    line=pl.lit(None, pl.UInt32),
                    end_line=pl.lit(None, pl.UInt32),
                    unparsed=pl.lit(False),
                    text=pl.lit(None, pl.String),
                )
            )
    return pl.concat([f.select(list(WARNING_SCHEMA)).cast(WARNING_SCHEMA) for f in frames])


def _file_table(
    plans: list[_FilePlan], warnings: pl.DataFrame, duplicates: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One row per file: what was read of it (see :class:`LoadSummary`). ``duplicates``
    (:func:`_duplicate_counts`) takes out of a file's rows and lines those of the
    records another file holds too."""
    unparsed = (
        warnings.filter(pl.col("unparsed"))
        .group_by("file", maintain_order=True)
        .agg(
            unparsed_lines=(pl.col("end_line") - pl.col("line") + 1).sum().cast(pl.Int64),
            first_unparsed=pl.col("line").head(10),
        )
    )
    rows = []
    for plan in plans:
        parts = plan.parts
        first = parts[0] if parts else Partial(path=plan.path)
        first_lines = sum(p.first_lines for p in parts)
        rows.append(
            {
                "file": plan.path,
                "format": first.format,
                "prefix": first.prefix,
                "score": first.score,
                "lines": sum(p.lines for p in parts),
                "rows": sum(p.rows for p in parts),
                "first_lines": first_lines,
                "covered_lines": sum(p.covered_lines for p in parts),
                "wrapper_lines": sum(p.wrapper_lines for p in parts),
                "segments": _segments(parts),
                "problem": "; ".join(q for p in parts for q in p.problems) or None,
            }
        )
    table = pl.DataFrame(
        rows,
        schema={
            "file": pl.String,
            "format": pl.String,
            "prefix": pl.String,
            "score": pl.Float64,
            "lines": pl.Int64,
            "rows": pl.Int64,
            "first_lines": pl.Int64,
            "covered_lines": pl.Int64,
            "wrapper_lines": pl.Int64,
            "segments": pl.String,
            "problem": pl.String,
        },
    )
    if duplicates is None:
        duplicates = pl.DataFrame(schema=_DUPLICATE_COUNTS)
    recounted = duplicates.rename({"first_lines": "_first"})
    table = (
        table.join(unparsed, on="file", how="left")
        .join(recounted, on="file", how="left")
        .with_columns(
            unparsed_lines=pl.col("unparsed_lines").fill_null(0),
            first_unparsed=pl.col("first_unparsed").fill_null(pl.lit([], pl.List(pl.UInt32))),
            duplicate_rows=pl.col("duplicate_rows").fill_null(0),
            duplicate_lines=pl.col("duplicate_lines").fill_null(0),
            duplicate_of=pl.col("duplicate_of").fill_null(pl.lit([], pl.List(pl.String))),
            first_lines=pl.coalesce("_first", "first_lines"),
        )
        .with_columns(
            rows=pl.col("rows") - pl.col("duplicate_rows"),
            # the lines the rows kept start or continue: those read, less the duplicates'
            continuation_lines=pl.col("covered_lines")
            - pl.col("duplicate_lines")
            - pl.col("first_lines"),
        )
    )
    return table.select(FILE_COLUMNS)


#: The columns of :attr:`LoadSummary.files`, in order.
FILE_COLUMNS = [
    "file",
    "format",
    "prefix",
    "score",
    "lines",
    "rows",
    "first_lines",
    "continuation_lines",
    "unparsed_lines",
    "wrapper_lines",
    "duplicate_lines",
    "duplicate_rows",
    "duplicate_of",
    "segments",
    "first_unparsed",
    "problem",
]


def _segments(parts: list[Partial]) -> str | None:
    """The lines routed to each format, as JSON, for a file of more than one."""
    total: dict[str, int] = {}
    for part in parts:
        for name, n in part.segments.items():
            total[name] = total.get(name, 0) + n
    return json.dumps(total) if len(total) > 1 else None


def _empty_summary() -> LoadSummary:
    return LoadSummary(
        files=_file_table([], pl.DataFrame(schema=WARNING_SCHEMA)),
        warnings=pl.DataFrame(schema=WARNING_SCHEMA),
        assumptions=pl.DataFrame(schema=settle.ASSUMPTION_SCHEMA),
    )


def _sorted(events: pl.DataFrame) -> pl.DataFrame:
    """The event frame in time order (:data:`timeline.schema.TIME_ORDER`)."""
    return validate(events.sort(time_order(), nulls_last=True, maintain_order=True))


def detect(path: str, name: str | None = None) -> dict[str, object]:
    """What the loader would make of ``path`` (shown as ``name``, if given): its prefix
    and the parsers' scores, best first."""
    return mapper.detect(path, name)


def summary_json(summary: LoadSummary) -> str:
    """The summary as JSON text, for tools."""
    return json.dumps(
        {
            "files": summary.files.to_dicts(),
            "assumptions": summary.assumptions.to_dicts(),
            "warnings": summary.warnings.head(1000).to_dicts(),
        },
        default=str,
    )

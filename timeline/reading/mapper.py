"""The map step: one file, or one line-aligned chunk of a big file, to a partial result.

A :class:`Task` names what to read; :func:`map_task` reads it, strips a runtime prefix,
sniffs the format, parses, masks messages for templates and measures what the reduce step
needs from it (:class:`Partial`): line accounting, warnings, and the evidence for years
and zones. The rows themselves go to a Parquet file when the task says where, so that a
worker process hands back only a small summary. Nothing here looks at another file: that
is what makes the step safe to run in worker processes or on a cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

import parsers
from parsers import envelopes, json_text, layouts, routing, runtime, wrappers
from parsers.common import LINE_SCHEMA, RECORD_SCHEMA, file_numbers, numbered, per_file, stacked
from parsers.registry import MIN_SCORE, Parser, Score
from timeline.reading import bundles, settle, signatures
from timeline.reading.lines import SAMPLE_LINES, cut_notes, sample_lines, split_lines, split_many
from timeline.reading.sources import (
    LIMITS,
    MAGIC_BYTES,
    Limits,
    compression_of,
    read_bytes,
    shown_name,
)

#: A plain file larger than this is read as line-aligned chunks of about this size, when
#: its format says where records start.
CHUNK_BYTES = 64 << 20
#: Files of up to this many lines, of a format that allows it, are parsed several at once.
TOGETHER_MAX_LINES = 20_000
#: Whole files up to this size are split into lines together (:func:`_read_all`).
SPLIT_TOGETHER_BYTES = 1 << 20
#: How much of an unparsed line the warnings keep.
WARNING_TEXT_CHARS = 200
#: Files of at most this many rows share one rows file with the others of their batch.
SHARED_MAX_ROWS = 2_000
#: Columns of a partial's rows: the record columns, the masked message, no ``unparsed``.
PARTIAL_COLUMNS = [c for c in RECORD_SCHEMA if c != "unparsed"] + ["masked"]

#: A warning is an unparsed line (``unparsed``, spanning ``line`` to ``end_line``), a note
#: on a line that was read (a cut long line), or a file-level problem (null ``line``).
WARNING_SCHEMA = {
    "file": pl.String,
    "line": pl.UInt32,
    "end_line": pl.UInt32,
    "unparsed": pl.Boolean,
    "reason": pl.String,
    "text": pl.String,
}
#: A file's warnings when it has none: one frame for all of them, since a small file's
#: empty frame costs about as much to make as its lines to read.
NO_WARNINGS = pl.DataFrame(schema=WARNING_SCHEMA)


@dataclass(frozen=True)
class Task:
    """One unit of map work: a whole file (``end`` None), or its bytes ``start:end``.

    ``format`` forces a parser; ``out`` is where the rows go (Parquet), or None to hand
    them back in the result. ``part`` numbers a file's chunks from 0. ``limits`` bound
    the reading (:class:`timeline.reading.sources.Limits`). ``name`` is the name the
    file is shown by when it is not its path (a file unpacked from an archive:
    :mod:`timeline.reading.archives`).
    """

    path: str
    format: str | None = None
    start: int = 0
    end: int | None = None
    part: int = 0
    out: str | None = None
    limits: Limits = LIMITS
    name: str | None = None

    @property
    def shown(self) -> str:
        """The file's name as rows and notes show it."""
        return self.name or shown_name(self.path)


@dataclass
class Partial:
    """What one task found. Line numbers are the chunk's own (from 1); the reduce step
    adds the lines of the chunks before it."""

    path: str
    part: int = 0
    format: str | None = None
    prefix: str | None = None
    score: float = 0.0
    lines: int = 0
    rows: int = 0
    first_lines: int = 0
    covered_lines: int = 0
    wrapper_lines: int = 0
    wrapper_spans: pl.DataFrame | None = None
    #: What a journal header states (:func:`parsers.wrappers.journal_header`).
    journal: dict[str, Any] | None = None
    segments: dict[str, int] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)
    mtime: datetime | None = None
    problems: list[str] = field(default_factory=list)
    warnings: pl.DataFrame = field(default_factory=lambda: NO_WARNINGS)
    evidence: dict[str, Any] = field(default_factory=dict)
    records: pl.DataFrame | None = None
    #: The Parquet file of the rows, and their number (``_task``) there: the small files
    #: of a batch share one file.
    out: str | None = None
    index: int = 0


def plan(
    path: str, *, format: str | None = None, chunk_bytes: int | None = None, parts: int = 1
) -> list[Task]:
    """The tasks that read ``path``: one, or line-aligned chunks of a big plain file whose
    format declares where its records start (so that no record is cut in two). A big
    file is cut in even chunks, as many as a multiple of ``parts`` (the workers that read
    them side by side), none above ``chunk_bytes``."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    try:
        size = os.path.getsize(path)
    except OSError:
        return [Task(path, format)]
    if size <= chunk_bytes or not os.path.isfile(path):
        return [Task(path, format)]
    with open(path, "rb") as handle:
        if compression_of(handle.read(MAGIC_BYTES)):
            return [Task(path, format)]
        handle.seek(0)
        head = handle.read(1 << 20).decode("utf-8", errors="replace")
        sample = sample_lines(head)
        prefix, parser = _sniff(sample, format)
        start_pattern = (parser.own_start or parser.record_start) if parser else None
        unless = after = None
        envelope = None if prefix else envelopes.detect(sample)[0]
        if envelope and not json_text.is_pasted(sample):
            starts, unless, after = _envelope_cuts(envelope, sample, format)
        elif start_pattern:
            starts = _record_start(prefix, start_pattern)
        else:
            return [Task(path, format)]
        pieces = -(-size // chunk_bytes)
        step = -(-size // (-(-pieces // parts) * parts))
        bounds = [0]
        while bounds[-1] + step < size:
            cut = _boundary(handle, bounds[-1] + step, starts, unless, after)
            if cut is None or cut >= size:
                break
            bounds.append(cut)
    bounds.append(size)
    return [
        Task(path, format, start=a, end=b, part=i)
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


def _envelope_cuts(envelope: str, sample: list[str], format: str | None) -> tuple[str, ...]:
    """Where a big file of a collector's records (one a line) may be cut: before a record
    whose line starts a record of the format inside (its line as JSON writes it), never
    after a split line's first piece; without a format that says where its records
    start, before any record whose line is not indented. A file of batches (OTLP) is cut
    between batches, before one that holds no indented line."""
    if envelope in envelopes.BATCHED:
        return envelopes.RECORD_START, envelopes.CONTINUES, None
    inner = wrappers.peel(numbered(sample), sample).lines["text"].to_list()
    _, parser = _sniff(inner, format)
    start = parser and (parser.own_start or parser.record_start)
    if not start:
        return envelopes.RECORD_START, envelopes.CONTINUES, envelopes.SPLIT
    keys = "|".join(sorted(key.strip('"') for key in envelopes.LINE_KEYS))
    # the line's end is its closing quote in the record
    body = start.removeprefix("^").replace("$", '(?:"|$)')
    return rf'"(?:{keys})"\s*:\s*"(?:{body})', None, envelopes.SPLIT


def _record_start(prefix: str | None, pattern: str) -> str:
    """A pattern for a line that starts a record, runtime prefix included (a CRI line must
    also be complete, ``F``, so that no partial run is cut)."""
    body = pattern.removeprefix("^")
    if prefix == "cri":
        return r"^\S+ (?:stdout|stderr) F " + body
    if prefix is not None:
        return r"^\S+ " + body
    return "^" + body


def _boundary(
    handle: Any, offset: int, starts: str, unless: str | None = None, after: str | None = None
) -> int | None:
    """The offset of the first line at or after ``offset`` that starts a record (matches
    ``starts`` and not ``unless``, and follows no line that matches ``after``: the first
    piece of a split line), looked for in the next 64 KiB, then the next 4 MiB.
    The lines are matched by polars' regex engine, whose time grows with the text only:
    a format file's pattern that would backtrack without end in Python's cannot hang it."""
    for size in (64 << 10, 4 << 20):
        handle.seek(offset)
        window = handle.read(size)
        first = window.find(b"\n")
        if first == -1:
            return None
        rest = window[first + 1 :]
        lines = pl.DataFrame(
            {
                "size": pl.Series(rest.split(b"\n"), dtype=pl.Binary).bin.size(),
                # bytes that are not UTF-8 (a Latin-1 log) as U+FFFD: only a record's
                # start is looked for, and a cast of them fails the whole query
                "line": rest.decode("utf-8", errors="replace").split("\n"),
            }
        )
        length = pl.col("size")
        text = pl.col("line")
        found = lines.select(
            at=length.cum_sum() - length + pl.int_range(pl.len()),
            start=(
                text.str.contains(starts)
                & ~text.str.contains(unless or "$^")
                # the line before the first one is not whole here: no cut there
                & ~text.shift(1).str.contains(after or "$^").fill_null(after is not None)
            ).fill_null(False),
        ).filter("start")
        if found.height:
            return offset + first + 1 + int(found["at"][0])
        if len(window) < size:
            return None
    return None


def _sniff(sample: list[str], format: str | None) -> tuple[str | None, Parser | None]:
    prefix, _share = runtime.detect(sample)
    if format:
        return prefix, parsers.registry.get(format)
    ranked = parsers.registry.rank(_stripped_sample(sample, prefix))
    if ranked and ranked[0][1].score >= MIN_SCORE:
        return prefix, ranked[0][0]
    return prefix, None


def map_task(task: Task) -> Partial:
    """Read one task. Never raises for bad input: problems are sentences in the result."""
    return map_batch([task])[0]


def map_batch(tasks: list[Task]) -> list[Partial]:
    """Read a group of tasks (many small files travel to a worker at once).

    Small files of a format that can be read several files at a time
    (:attr:`parsers.registry.Parser.files_together`) are parsed in one query: the fixed
    cost of a query, not the lines, is what a file of a few lines costs. A file that
    does not begin with a record, so that its first lines would join another file's
    last record, is parsed on its own.
    """
    read = _read_all(tasks)
    peeled = _peeled_together(read, tasks)
    guesses: dict[str, list[Guess]] = {}
    prepared = []
    for i, task in enumerate(tasks):
        kin = guesses.setdefault(_kin(task.shown), [])
        prepared.append(_prepare(task, *read[i], kin, peeled.pop(i, None)))
        read[i] = None  # its lines are in the prepared ones now
        result, parser = prepared[-1][0], prepared[-1][2]
        guess = Guess(tuple(result.layers), parser, result.score) if parser else None
        if guess and not task.format and guess not in kin:
            kin.insert(0, guess)
    together: dict[tuple[str, str | None], list[int]] = {}
    for i, (result, stripped, parser, _) in enumerate(prepared):
        if stripped is None:
            continue
        if _may_go_together(parser, stripped, tasks[i]):
            together.setdefault((parser.name, result.prefix), []).append(i)
    parsed: dict[int, tuple[pl.DataFrame, dict]] = {}
    for members in together.values():
        members = _wholly_own(members, prepared) if len(members) > 1 else []
        if len(members) > 1:
            parsed.update(_parse_together([prepared[i] for i in members], members))
    out = []
    for i, (result, stripped, parser, warnings) in enumerate(prepared):
        if stripped is not None:
            records, measured = parsed.get(i, (None, None))
            if records is None:
                records = _parse(parser, stripped, result, forced=bool(tasks[i].format))
            else:  # all its lines are its format's, as :func:`_wholly_own` found
                result.segments = {parser.name: stripped.height}
            _take_records(result, records, stripped, warnings, tasks[i], measured)
        out.append(result)
    _write_rows(out, tasks)
    return out


def _write_rows(results: list[Partial], tasks: list[Task]) -> None:
    """Write the rows of the tasks that say where (``out``), each row numbered with its
    task's ``index`` in the file (``_task``). The small whole files of a batch (at most
    :data:`SHARED_MAX_ROWS` rows) share one file, named after them all: writing a Parquet
    file and reading it back costs more than a small file's rows do."""
    todo = [k for k, task in enumerate(tasks) if task.out and results[k].records is not None]
    small = [k for k in todo if tasks[k].end is None and results[k].rows <= SHARED_MAX_ROWS]
    alone = [[k] for k in sorted(set(todo) - set(small))]
    for group in alone + ([small] if small else []):
        out = tasks[group[0]].out
        if len(group) > 1:
            names = "\n".join(Path(tasks[k].out).stem for k in group)
            digest = hashlib.sha256(names.encode()).hexdigest()[:32]
            out = str(Path(out).with_name(f"batch-{digest}.parquet"))
        frames = [results[k].records for k in group]
        rows = pl.concat(frames, how="diagonal_relaxed").with_columns(
            _task=file_numbers([frame.height for frame in frames])
        )
        for index, k in enumerate(group):
            results[k].out, results[k].index, results[k].records = out, index, None
        rows.write_parquet(out, statistics=True, compression="lz4")  # fast: read once more


def _kin(path: str) -> str:
    """What files likely written by the same program share: the container a layout names
    (every pod's ``kube-proxy`` logs), else the folder."""
    container = layouts.hints_from_path(path).container
    return f"container:{container}" if container else f"folder:{os.path.dirname(path)}"


@dataclass(frozen=True)
class Guess:
    """What another file of the same folder was: its layers, its parser and that parser's
    score. A file of the same container or folder (:func:`_kin`) that carries the same
    layers on every sample line, and for which the parser scores as well, is taken to be
    the same without asking every other wrapper and parser: every pod's ``kube-proxy``
    log, a folder of CI job files."""

    layers: tuple[str, ...]
    parser: Parser
    score: float


def _read_all(tasks: list[Task]) -> list[tuple]:
    """Read and split tasks: ``(result, lines, sample, warnings)`` each, lines None when
    there is nothing to parse (the result says why). Small whole files are split in one
    query (:func:`timeline.reading.lines.split_many`)."""
    read = [_read_bytes(task) for task in tasks]
    small = [
        i
        for i, (_, data, _) in enumerate(read)
        if data is not None and tasks[i].end is None and len(data) <= SPLIT_TOGETHER_BYTES
    ]
    split = {}
    if len(small) > 1:
        pieces = split_many([read[i][1] for i in small], [tasks[i].shown for i in small])
        split = dict(zip(small, pieces, strict=True))
    out = []
    for i, (result, data, warnings) in enumerate(read):
        if data is None:
            out.append((result, None, [], []))
            continue
        raw_sample = sample_lines(data[: 1 << 20].decode("utf-8", errors="replace"))
        lines, problem = split[i] if i in split else split_lines(data, tasks[i].shown)
        read[i] = None  # the bytes are in the lines now
        if problem:
            result.problems.append(problem)
        result.lines = lines.height
        out.append((result, lines, raw_sample, warnings))
    return out


def _read_bytes(task: Task) -> tuple[Partial, bytes | None, list[pl.DataFrame]]:
    """One task's bytes: ``(result, data, warnings)``, data None when there is nothing to
    read (the result says why)."""
    result = Partial(path=task.shown, part=task.part, out=task.out)
    with contextlib.suppress(OSError):
        result.mtime = datetime.fromtimestamp(os.path.getmtime(task.path), tz=UTC)
    warnings: list[pl.DataFrame] = []
    data, problems, cuts = read_bytes(task.path, task.limits, start=task.start, end=task.end)
    result.problems.extend(problems)
    if cuts:
        warnings.append(cut_notes(cuts, task.shown, kept=task.limits.max_line_bytes))
    return result, data, warnings


def _peeled_together(read: list, tasks: list[Task]) -> dict[int, wrappers.Peeled]:
    """The small whole files that carry no layer, or one runtime prefix on every line of
    their first ones, peeled in one query per kind (:func:`parsers.wrappers.peel_together`),
    their layers found in one query for them all (:func:`parsers.wrappers.detect_each`)."""
    small = [
        i
        for i, (_, lines, _, _) in enumerate(read)
        if lines is not None and tasks[i].end is None and lines.height <= TOGETHER_MAX_LINES
    ]
    heads = [read[i][1]["text"].head(SAMPLE_LINES).to_list() for i in small]
    groups: dict[str | None, list[int]] = {}
    for i, (layer, share) in zip(small, wrappers.detect_each(heads), strict=True):
        if layer is None or (layer in runtime.PREFIXES and share == 1.0):
            groups.setdefault(layer, []).append(i)
    out: dict[int, wrappers.Peeled] = {}
    for layer, members in groups.items():
        if len(members) > 1:
            frames = [read[i][1] for i in members]
            samples = [read[i][2] for i in members]
            out.update(zip(members, wrappers.peel_together(frames, samples, layer), strict=True))
    return out


def _prepare(
    task: Task,
    result: Partial,
    lines: pl.DataFrame | None,
    raw_sample: list[str],
    warnings: list[pl.DataFrame],
    guesses: list[Guess] = (),
    peeled: wrappers.Peeled | None = None,
):
    """Strip and sniff one task's lines: ``(result, lines, parser, warnings)``, with lines
    None when there is nothing to parse (the result says why). ``peeled``: its lines as
    :func:`_peeled_together` peeled them with other files', with their path's hints."""
    if lines is None:
        return result, None, None, warnings
    if peeled is None:
        peeled = wrappers.peel(lines, raw_sample, expect=[g.layers for g in guesses])
        stripped = wrappers.with_path_hints(peeled.lines)
    else:
        stripped = peeled.lines
    del lines
    result.prefix = peeled.described
    result.layers = list(peeled.layers)
    result.wrapper_lines = int(stripped["marker"].sum())
    if result.wrapper_lines:
        markers = stripped.filter(pl.col("marker"))
        result.wrapper_spans = markers.select("line", "end_line")
        result.journal = wrappers.journal_header(markers["text"])
        stripped = stripped.filter(~pl.col("marker"))
    stripped = _set_apart_broken(stripped, peeled.layers, result.path, warnings)
    # in one chunk a column: polars 2.1 panics in some string queries over columns
    # chunked unlike each other, as a peeled text column may be
    stripped = stripped.rechunk()
    parser = None
    if task.format:
        parser, result.score = parsers.registry.get(task.format), 1.0
    else:
        sample = stripped["text"].head(SAMPLE_LINES).to_list()
        ranked = _same_as(guesses, peeled.layers, sample) or parsers.registry.rank(sample)
        if ranked and ranked[0][1].score >= MIN_SCORE:
            parser, score = ranked[0]
            result.score = score.score
        elif peeled.layers and routing.claims_any(entries := routing.as_entries(stripped)):
            stripped = entries  # a collector's lines whose program no format knows
        elif not routing.claims_any(stripped):
            best = ranked[0][1].why if ranked else "no parsers registered"
            empty = _nothing_to_read(stripped["text"])
            result.problems.append(
                empty or f"unknown format: no parser recognised it (best: {best})"
            )
            reason = "blank line" if empty else "unknown format"
            warnings.append(_unparsed(stripped, result.path, reason))
            result.warnings = _warnings(warnings)
            return result, None, None, warnings
    result.format = parser.name if parser else None
    return result, stripped, parser, warnings


def _nothing_to_read(text: pl.Series) -> str | None:
    """Why a file whose lines (wrappers stripped) are ``text`` has nothing to read, or
    None: a file with no text is empty, not of a format no parser knows.

    >>> _nothing_to_read(pl.Series(["", "  "])), _nothing_to_read(pl.Series(["x"]))
    ('nothing to read: the file holds only blank lines', None)
    """
    if text.len() == 0:
        return "nothing to read: the file holds no log lines"
    if (text.str.strip_chars() == "").all():
        return "nothing to read: the file holds only blank lines"
    return None


def _set_apart_broken(
    stripped: pl.DataFrame, layers: tuple[str, ...], path: str, warnings: list[pl.DataFrame]
) -> pl.DataFrame:
    """``stripped`` without the runtime's own records that are broken
    (:func:`parsers.runtime.broken_records`) and the records a layer could not read
    (``unreadable``: a CSV export's record of too few fields), which go to ``warnings``
    as unparsed with their reasons: read as text, a cut record would be joined to the
    record above as its continuation."""
    unreadable = pl.col("unreadable").is_not_null()
    if stripped["unreadable"].is_not_null().any():
        warnings.append(_unparsed(stripped.filter(unreadable), path, pl.col("unreadable")))
        stripped = stripped.filter(~unreadable)
    broken = runtime.broken_records(layers)
    if broken is None:
        return stripped
    flagged = stripped.with_columns(_broken=broken)
    if not flagged["_broken"].any():
        return stripped
    warnings.append(_unparsed(flagged.filter("_broken"), path, runtime.BROKEN_DOCKER_JSON))
    return flagged.filter(~pl.col("_broken")).drop("_broken")


def _same_as(
    guesses: list[Guess], layers: tuple[str, ...], sample: list[str]
) -> list[tuple[Parser, Score]]:
    """``[(parser, score)]`` when the file is what one of ``guesses`` says, else empty."""
    for guess in guesses:
        if layers == guess.layers:
            score = parsers.registry.score(guess.parser, sample)
            if score.score >= max(guess.score, MIN_SCORE):
                return [(guess.parser, score)]
    return []


def _may_go_together(parser: Parser | None, stripped: pl.DataFrame, task: Task) -> bool:
    """Whether a file may be parsed with others of its format, as far as its size says
    (:func:`_wholly_own` looks at its lines)."""
    if parser is None or not parser.files_together or task.end is not None:
        return False
    if not (parser.record_start or parser.whole_line):
        return False
    return 0 < stripped.height <= TOGETHER_MAX_LINES


def _wholly_own(members: list[int], prepared: list) -> list[int]:
    """The files of ``members`` (of one format) that begin with a record (or, for a
    format read as documents, are whole records line by line: :attr:`Parser.whole_line`)
    and hold only that format's lines (no other format's record, no wrapper entry),
    looked at in two queries for all of them."""
    parser = prepared[members[0]][2]
    frames = [prepared[i][1] for i in members]
    if parser.record_start:
        first = pl.Series([f["text"][0] for f in frames], dtype=pl.String)
        starts = first.str.contains(parser.record_start).fill_null(False).to_list()
    else:
        starts = _all_whole_lines(frames, parser.whole_line())
    whole = routing.one_segment_each(frames, parser)
    return [i for i, begins, own in zip(members, starts, whole, strict=True) if begins and own]


def _all_whole_lines(frames: list[pl.DataFrame], whole_line: pl.Expr) -> list[bool]:
    """Whether every line of each frame is ``whole_line``, in one query."""
    found = per_file(stacked(frames, "text"), len(frames), whole=whole_line.all())
    return [bool(each and each["whole"]) for each in found]


def _parse_lines(parser: Parser, lines: pl.DataFrame) -> pl.DataFrame | Exception:
    """The records ``parser`` reads from ``lines`` (all its own), with what each record's
    first line's wrapper adds (:func:`parsers.routing.with_wrapper_fields`: the time and
    level a collector gives, the pod's namespace and the pid), as a file read alone has
    them; or the exception it raised."""
    try:
        # the in-memory engine holds less at once than the streaming one on a parser's
        # whole-column string work, and is no slower
        lazy = parser.parse(lines.lazy().select(list(LINE_SCHEMA)))
        records = lazy.collect(engine="in-memory")
        records = records.select([pl.col(c).cast(t) for c, t in RECORD_SCHEMA.items()])
        return routing.with_wrapper_fields(records, lines)
    except Exception as exc:  # a parser bug must not lose the other files
        return exc


def _parse(
    parser: Parser | None, stripped: pl.DataFrame, result: Partial, *, forced: bool
) -> pl.DataFrame | Exception:
    """The records of one file's lines, each line routed to its format's parser
    (:func:`parsers.routing.parse_segments`), or the exception a parser raised."""
    try:
        routed = routing.parse_segments(stripped, parser, streams=not forced)
    except Exception as exc:  # a parser bug must not lose the other files
        return exc
    result.segments = routed.segments
    if parser is None:
        result.format = "+".join(routed.segments)
    return routed.records


def _parse_together(members: list, indexes: list[int]) -> dict[int, tuple[pl.DataFrame, dict]]:
    """Parse several files' lines in one query, their line numbers moved apart so that
    each record can be given back to its file: ``{index: (records, measures)}``, the
    :func:`_measures` of every file taken in one query too."""
    parser = members[0][2]
    frames = [stripped for _result, stripped, _parser, _warnings in members]
    ends = [int(frame["end_line"].max() or 0) for frame in frames]
    starts = pl.Series([0, *itertools.accumulate(ends)][:-1], dtype=pl.UInt32)
    start = starts.gather(file_numbers([frame.height for frame in frames]))
    # in one chunk a column, as in _prepare (``start``'s one chunk beside the frames' many)
    lines = pl.concat(frames, how="vertical_relaxed", rechunk=True).with_columns(
        line=pl.col("line") + start, end_line=pl.col("end_line") + start
    )
    records = _parse_lines(parser, lines)
    if isinstance(records, Exception):
        return {}  # each file is parsed on its own, so the failure is told per file
    owner = starts.search_sorted(records["line"], side="left") - 1
    start = starts.gather(owner)
    records = _masked(records).with_columns(
        _file=owner, line=pl.col("line") - start, end_line=pl.col("end_line") - start
    )
    measured = _measures(records, by="_file")
    if records["unparsed"].null_count() == records.height:
        records = records.drop("unparsed")  # once, not once a file
    by_file = records.partition_by("_file", as_dict=True, include_key=False)
    # a file of no records is taken on its own
    return {i: (by_file[(k,)], measured[k]) for k, i in enumerate(indexes) if (k,) in by_file}


def _take_records(
    result: Partial, records, stripped, warnings, task: Task, measured: dict | None = None
) -> None:
    """Fill ``result`` from a file's parsed records: unparsed lines to the warnings,
    masked messages for templates, line accounting and the evidence for years and zones;
    the rows go to ``result.records`` (:func:`_write_rows` writes them). ``measured`` is
    the records' :func:`_measures` when they were taken with other files'."""
    if isinstance(records, Exception):
        name = result.format or "routing"
        result.problems.append(f"the {name} parser failed: {type(records).__name__}: {records}")
        warnings.append(_unparsed(stripped, result.path, f"{name} parser failed"))
        result.warnings = _warnings(warnings)
        return
    all_good = "unparsed" not in records or records["unparsed"].null_count() == records.height
    bad = None if all_good else _without_overlaps(records.filter(pl.col("unparsed").is_not_null()))
    if bad is not None and bad.height:
        # a line that also starts a good record (a one-line JSON page cut short) is
        # accounted for by that record: its reason is a note, not an unparsed line
        started = records.filter(pl.col("unparsed").is_null())["line"].implode()
        warnings.append(
            bad.select(
                pl.lit(result.path).alias("file"),
                "line",
                "end_line",
                (~pl.col("line").is_in(started)).alias("unparsed"),
                pl.col("unparsed").alias("reason"),
                pl.col("message").str.slice(0, WARNING_TEXT_CHARS).alias("text"),
            )
        )
        records = records.filter(pl.col("unparsed").is_null())
    if not all_good or measured is None:
        measured = _measures(records)[None]
    if "unparsed" in records:
        records = records.drop("unparsed")
    if "masked" not in records.columns:  # files parsed together are masked together
        records = _masked(records)
    result.warnings = _warnings(warnings)
    if measured["jobs"]:
        result.problems.extend(_job_time_problems(records))
    result.rows = measured["rows"]
    result.first_lines = measured["first_lines"]
    unparsed = result.warnings.filter(pl.col("unparsed")) if result.warnings.height else None
    result.covered_lines = measured["covered_lines"] - _lines_inside(
        records, [result.wrapper_spans, unparsed]
    )
    missing = _unaccounted(
        records, result.warnings, result.lines, result.wrapper_spans, result.covered_lines
    )
    if missing is not None:
        reason = f"the {result.format} parser gave this line no row and no reason"
        result.warnings = _warnings(
            [
                result.warnings,
                _unparsed(missing.with_columns(text=pl.lit(None, pl.String)), result.path, reason),
            ]
        )
    result.evidence = (
        {k: measured[k] for k in _EVIDENCE_KEYS}
        | {"journal": result.journal}
        | bundles.node_evidence(records, task.shown)
    )
    result.records = records


def _measures(records: pl.DataFrame, by: str | None = None) -> dict:
    """What a file's records tell its partial, in one query: ``rows``, ``first_lines``
    (distinct first lines), ``covered_lines`` (distinct lines the records span: records
    of one JSON document may share lines, and a record of one format may span another's
    line in a mixed file, so spans are merged rather than added), ``jobs`` (any CI job
    rows) and the evidence for years and zones (:func:`timeline.reading.settle.evidence`),
    as ``{None: measures}``, or per value of the column ``by`` (several files' records)."""
    line, end = pl.col("line").cast(pl.Int64), pl.col("end_line").cast(pl.Int64)
    reach = end.sort_by(line).cum_max().shift(1).fill_null(0)
    log = pl.col("kind") == "log"
    measures = [
        pl.len().alias("rows"),
        pl.col("line").n_unique().alias("first_lines"),
        (end.sort_by(line) - pl.max_horizontal(line.sort() - 1, reach))
        .clip(lower_bound=0)
        .sum()
        .alias("covered_lines"),
        (pl.col("kind") == "job").any().alias("jobs"),
        log.sum().alias("logs"),
        (log & pl.col("host").is_null()).sum().alias("hostless"),
        *settle.EVIDENCE,
    ]
    records = records.with_columns(settle.EVIDENCE_INPUT)
    if by is None:
        return {None: records.select(measures).row(0, named=True)}
    rows = records.group_by(by).agg(measures).iter_rows(named=True)
    return {row.pop(by): row for row in rows}


#: The measures that go into a partial's evidence for years and zones.
_EVIDENCE_KEYS = ("logs", "hostless", *(e.meta.output_name() for e in settle.EVIDENCE))


def _masked(records: pl.DataFrame) -> pl.DataFrame:
    """``records`` with the masked message of each that has no template of its own."""
    message = records.select(pl.when(pl.col("template").is_null()).then("message"))
    return records.with_columns(masked=signatures.mask_series(message.to_series()))


def _without_overlaps(bad: pl.DataFrame) -> pl.DataFrame:
    """Unparsed rows with each line in one of them only: a parser may give several for
    one stretch (each JSON value of a line that is not JSON), and a line is counted once.
    Rows are kept in line order, each from the first line no row before it covers."""
    if bad.height < 2:
        return bad
    reach = pl.col("end_line").cum_max().shift(1).fill_null(0)
    return (
        bad.sort("line", "end_line", maintain_order=True)
        .with_columns(line=pl.max_horizontal("line", reach + 1).cast(pl.UInt32))
        .filter(pl.col("line") <= pl.col("end_line"))
    )


def _unaccounted(
    records: pl.DataFrame,
    warnings: pl.DataFrame,
    lines: int,
    wrapper: pl.DataFrame | None,
    covered: int,
) -> pl.DataFrame | None:
    """The lines (``line``, ``end_line``) that neither a record, an unparsed warning nor a
    wrapper's own line spans, or None when there are none: every line must be accounted
    for, whatever a parser forgets (a table header with no rows under it). Costs a sum in
    the usual case (``covered`` is the lines the records span, :func:`_measures`)."""
    if covered + (wrapper.height if wrapper is not None else 0) >= lines:  # the usual case
        return None
    wrapper = wrapper if wrapper is not None else pl.DataFrame(schema=_SPAN)
    unparsed = warnings.filter(pl.col("unparsed"))
    counted = int((unparsed["end_line"] - unparsed["line"] + 1).sum() or 0) + wrapper.height
    if covered + counted >= lines:
        return None
    spans = pl.concat(
        [s.select("line", "end_line").cast(_SPAN) for s in (records, unparsed, wrapper)]
    )
    seen = spans.select(line=pl.int_ranges("line", pl.col("end_line") + 1)).explode("line")
    every = pl.DataFrame({"line": pl.int_range(1, lines + 1, eager=True)})
    missing = every.join(seen.cast(pl.Int64).unique(), on="line", how="anti")
    if missing.height == 0:
        return None
    return missing.select(pl.col("line").cast(pl.UInt32), end_line=pl.col("line").cast(pl.UInt32))


_SPAN = {"line": pl.UInt32, "end_line": pl.UInt32}


def _lines_inside(records: pl.DataFrame, spans: list[pl.DataFrame | None]) -> int:
    """How many lines of ``spans`` (a wrapper's own lines, unparsed lines) lie inside a
    record's span: they are not the record's continuation lines, and each line is counted
    once. A blank syslog line may come between a record's lines, and where the streams of
    many hosts interleave, a record's span takes in other hosts' lines."""
    frames = [s.select("line", "end_line").cast(_SPAN) for s in spans if s is not None and s.height]
    if records.height == 0 or not frames:
        return 0
    reach = records.select(
        pl.col("line").cast(pl.Int64), reach=pl.col("end_line").cast(pl.Int64)
    ).sort("line")
    reach = reach.with_columns(pl.col("reach").cum_max())
    marks = (
        pl.concat(frames)
        .select(line=pl.int_ranges("line", pl.col("end_line").cast(pl.Int64) + 1))
        .explode("line")
        .unique()
        .sort("line")
    )
    found = marks.join_asof(reach, on="line", strategy="backward")
    return int((found["reach"] >= found["line"]).sum())


def _job_time_problems(records: pl.DataFrame) -> list[str]:
    """A sentence on the CI jobs whose times could not all be used (see
    :func:`parsers.jobs.time_problem`), or none."""
    if not (records["kind"] == "job").any():
        return []
    flagged = records.filter(pl.col("kind") == "job").filter(
        pl.col("attrs").str.contains('"time_problem"', literal=True)
    )
    if flagged.height == 0:
        return []
    return [
        f"{flagged.height:,} CI jobs with an impossible or negative time (first: line "
        f"{flagged['line'].min()}): that time is left out; time_problem in attrs says which"
    ]


def _stripped_sample(raw: list[str], prefix: str | None) -> list[str]:
    return runtime.strip(numbered(raw).lazy(), prefix).collect()["text"].to_list()


def _unparsed(lines: pl.DataFrame, path: str, reason: str | pl.Expr) -> pl.DataFrame:
    return lines.select(
        pl.lit(path).alias("file"),
        "line",
        "end_line",
        pl.lit(True).alias("unparsed"),
        (pl.lit(reason) if isinstance(reason, str) else reason).alias("reason"),
        pl.col("text").str.slice(0, WARNING_TEXT_CHARS),
    )


def _warnings(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    if not frames:
        return NO_WARNINGS
    return pl.concat(
        [pl.DataFrame(schema=WARNING_SCHEMA), *(f.cast(WARNING_SCHEMA) for f in frames)],
        how="vertical",
    )


def detect(path: str, name: str | None = None) -> dict[str, object]:
    """What the loader would make of ``path`` (shown as ``name``, if given: a file
    unpacked from an archive): its layout, the wrappers it strips, the parsers' scores
    (best first), and the format it chooses for each segment of the file's first lines."""
    data, problems, _ = read_bytes(path)
    path = name or shown_name(path)
    if data is None:
        return {"file": path, "format": None, "score": 0.0, "why": problems[0], "prefix": None}
    raw = sample_lines(data[: 1 << 20].decode("utf-8", errors="replace"))
    peeled = wrappers.peel(numbered(raw, path), raw)
    body = wrappers.with_path_hints(peeled.lines).filter(~pl.col("marker"))
    if set(peeled.layers) & set(envelopes.ENVELOPES) and not body["entry"].all():
        body = body.filter(~pl.col("entry"))  # not the lines of a record the sample cuts off
    ranked = parsers.registry.rank(body["text"].to_list())
    best, score = ranked[0] if ranked else (None, Score(0.0, "no parsers registered"))
    sure = best is not None and score.score >= MIN_SCORE
    why = score.why if sure else f"no format scored {MIN_SCORE} or more (best: {score.why})"
    segments = routing.segment_sizes(routing.route(body, best if sure else None))
    if peeled.layers:
        why = f"{peeled.why()}; {why}"
    layout = layouts.hints_from_path(path).layout
    if layout:
        why = f"{layout} layout; {why}"
    if len(segments) > 1 or (segments and not sure):
        why += "; segments: " + ", ".join(f"{n} lines {name}" for name, n in segments.items())
    return {
        "file": path,
        "format": best.name if sure else ("+".join(segments) if segments else None),
        "score": round(score.score, 3),
        "why": why,
        "prefix": peeled.described,
        "wrappers": list(peeled.layers),
        "segments": segments,
        "runner_up": f"{ranked[1][0].name} {ranked[1][1].score:.2f}" if len(ranked) > 1 else None,
    }

"""Loading: files, folders, globs and ``.gz`` in; one event frame on one UTC clock out.

For each file the loader reads the bytes (refusing binary files, keeping what a truncated
gzip held), splits them into numbered lines in one polars column, strips a runtime prefix,
sniffs the program's format and hands the lines to its parser. Then, across files, it
settles what the records leave open: the year of yearless klog times and the zone of
zoneless ones, and writes down every such assumption. Every line is accounted for: a row,
a continuation of one, or an unparsed line in the warnings with its file and line.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

import parsers
from parsers import layouts, routing, wrappers
from parsers.registry import MIN_SCORE, Parser, Score
from timeline.errors import UnknownFormatError
from timeline.reading import signatures
from timeline.reading.lines import SAMPLE_LINES, sample_lines, split_lines
from timeline.reading.settle import known_span, note_unknown_host, settle_year, settle_zone
from timeline.reading.sources import PathLike, expand, read_bytes
from timeline.schema import EVENT_SCHEMA, validate

#: A longer line is cut to this many characters (and the cut is reported).
MAX_LINE_CHARS = 1 << 20
#: How much of an unparsed line the warnings keep.
WARNING_TEXT_CHARS = 200


@dataclass(frozen=True)
class LoadSummary:
    """What was loaded, what could not be, and what was assumed to put it on one clock.

    ``files``: one row per input file (format, prefix, how sure, lines, rows,
    continuation and unparsed lines, first unparsed line numbers, a problem if any).
    Every line is the first line of one or more rows (a one-line JSON page holds many
    jobs), a continuation line, unparsed, or a line a wrapper wrote of its own
    (journalctl's ``-- Boot ... --``, grep's ``--``): ``lines`` is the sum of
    ``first_lines``, ``continuation_lines``, ``unparsed_lines`` and ``wrapper_lines``.
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

    def __str__(self) -> str:
        rows = int(self.files["rows"].sum())
        lines = int(self.files["lines"].sum())
        text = [
            f"{self.files.height} files, {lines:,} lines: {rows:,} rows, "
            f"{int(self.files['continuation_lines'].sum()):,} continuation lines, "
            f"{self.unparsed_lines:,} unparsed lines"
            + (
                f", {wrapper:,} wrapper lines"
                if (wrapper := int(self.files["wrapper_lines"].sum()))
                else ""
            )
        ]
        for a in self.assumptions.iter_rows(named=True):
            text.append(
                f"assumed {a['what']} = {a['value']} for {a['file']} "
                f"({a['certainty']}: {a['basis']})"
            )
        for w in self.warnings.filter(pl.col("line").is_null()).iter_rows(named=True):
            text.append(f"{w['file']}: {w['reason']}")
        return "\n".join(text)

    def _repr_html_(self) -> str:
        from html import escape

        return "<pre>" + escape(str(self)) + "</pre>"


@dataclass(frozen=True)
class Loaded:
    """The event frame and the summary of how it was loaded."""

    events: pl.DataFrame
    summary: LoadSummary


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


def read(
    paths: PathLike | Iterable[PathLike],
    *,
    format: str | None = None,
    year: int | None = None,
    tz: str | None = None,
    infer: bool = True,
    on_file: Callable[[str], None] | None = None,
) -> Loaded:
    """Load ``paths`` into one event frame and say how it went.

    Parameters
    ----------
    paths
        Files, folders (read recursively), globs, ``.gz`` files, or a list of them.
    format
        A parser name to use for every file instead of sniffing.
    year
        The year of records that write none (klog), where no runtime prefix says it.
    tz
        The zone (``Europe/Berlin``) of records that write a time without one; UTC if not
        given, and the summary says it was assumed.
    infer
        Add the changes the logs themselves tell (restarts, upgrades, rollbacks, reloads,
        reboots; see :mod:`timeline.reading.changes`), none that a record already tells.
    on_file
        Called with each file's path before it is read (for progress bars).
    """
    try:
        forced = parsers.registry.get(format) if format else None
    except KeyError as exc:
        raise UnknownFormatError(exc.args[0]) from None
    files = expand(paths)
    parsed = []
    for path in files:
        if on_file:
            on_file(path)
        parsed.append(_read_file(path, forced))
    loaded = _assemble(parsed, year=year, tz=tz, sort=not infer)
    if infer:
        from timeline.reading.changes import with_inferred_changes

        events = with_inferred_changes(loaded.events, sort=False)
        loaded = Loaded(events=_sorted(events), summary=loaded.summary)
    return loaded


def detect(path: str) -> dict[str, object]:
    """What the loader would make of ``path``: the wrappers it strips, the parsers' scores
    (best first), and the format it chooses for each segment of the file's first lines."""
    data, problems = read_bytes(path)
    if data is None:
        return {"file": path, "format": None, "score": 0.0, "why": problems[0], "prefix": None}
    raw = sample_lines(data[: 1 << 20].decode("utf-8", errors="replace"))
    peeled = wrappers.peel(_sample_frame(raw, path), raw)
    body = _with_path_hints(peeled.lines.lazy(), path).collect().filter(~pl.col("marker"))
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


# --- one file ---------------------------------------------------------------------------


@dataclass
class _FileResult:
    path: str
    format: str | None = None
    prefix: str | None = None
    score: float = 0.0
    lines: int = 0
    records: pl.DataFrame | None = None
    rows: int = 0
    first_lines: int = 0
    covered_lines: int = 0
    wrapper_lines: int = 0
    segments: dict[str, int] = field(default_factory=dict)
    mtime: datetime | None = None
    problems: list[str] = field(default_factory=list)
    line_warnings: list[pl.DataFrame] = field(default_factory=list)


def _read_file(path: str, forced: Parser | None) -> _FileResult:
    result = _FileResult(path=path)
    with contextlib.suppress(OSError):
        result.mtime = datetime.fromtimestamp(os.path.getmtime(path), tz=UTC)
    data, problems = read_bytes(path)
    result.problems.extend(problems)
    if data is None:
        return result
    raw_sample = sample_lines(data[: 1 << 20].decode("utf-8", errors="replace"))
    lines, problem = split_lines(data, path)
    del data
    if problem:
        result.problems.append(problem)
    result.lines = lines.height
    # a character takes at least a byte: only lines of more bytes can be too long
    long_lines = lines.filter(pl.col("text").str.len_bytes() > MAX_LINE_CHARS).filter(
        pl.col("text").str.len_chars() > MAX_LINE_CHARS
    )
    if long_lines.height:
        result.line_warnings.append(
            long_lines.select(
                pl.lit(path).alias("file"),
                "line",
                "end_line",
                pl.lit(False).alias("unparsed"),
                pl.format(
                    "line is {} characters long; kept the first {}",
                    pl.col("text").str.len_chars(),
                    pl.lit(MAX_LINE_CHARS),
                ).alias("reason"),
                pl.col("text").str.slice(0, WARNING_TEXT_CHARS),
            )
        )
        lines = lines.with_columns(pl.col("text").str.slice(0, MAX_LINE_CHARS))
    peeled = wrappers.peel(lines, raw_sample)
    del lines
    result.prefix = peeled.described
    stripped = _with_path_hints(peeled.lines.lazy(), path).collect()
    result.wrapper_lines = int(stripped["marker"].sum())
    stripped = stripped.filter(~pl.col("marker"))
    parser = forced
    if parser is None:
        sample = stripped["text"].head(SAMPLE_LINES).to_list()
        ranked = parsers.registry.rank(sample)
        if ranked and ranked[0][1].score >= MIN_SCORE:
            parser, score = ranked[0]
            result.score = score.score
        elif not routing.claims_any(stripped):
            best = ranked[0][1].why if ranked else "no parsers registered"
            result.problems.append(f"unknown format: no parser recognised it (best: {best})")
            result.line_warnings.append(_unparsed(stripped, path, "unknown format"))
            return result
    else:
        result.score = 1.0
    try:
        routed = routing.parse_segments(stripped, parser, streams=forced is None)
        records = routed.records
    except Exception as exc:  # a parser bug must not lose the other files
        name = parser.name if parser else "routing"
        result.problems.append(f"the {name} parser failed: {type(exc).__name__}: {exc}")
        result.line_warnings.append(_unparsed(stripped, path, f"{name} parser failed"))
        return result
    result.format = parser.name if parser else "+".join(sorted(routed.segments))
    result.segments = routed.segments
    del stripped
    bad = records.filter(pl.col("unparsed").is_not_null())
    if bad.height:
        result.line_warnings.append(
            bad.select(
                pl.lit(path).alias("file"),
                "line",
                "end_line",
                pl.lit(True).alias("unparsed"),
                pl.col("unparsed").alias("reason"),
                pl.col("message").str.slice(0, WARNING_TEXT_CHARS).alias("text"),
            )
        )
        records = records.filter(pl.col("unparsed").is_null())
    result.records = records
    result.rows = records.height
    result.first_lines = records["line"].n_unique()
    result.covered_lines = _covered_lines(records)
    return result


def _sample_frame(raw: list[str], path: str) -> pl.DataFrame:
    return pl.DataFrame({"text": raw}).select(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        text=pl.col("text"),
        path=pl.lit(path),
    )


def _with_path_hints(lines: pl.LazyFrame, path: str) -> pl.LazyFrame:
    hints = layouts.hints_from_path(path)
    return lines.with_columns(
        host=pl.coalesce(pl.col("host"), pl.lit(hints.node or hints.pod, pl.String)),
        container=pl.coalesce(pl.col("container"), pl.lit(hints.container, pl.String)),
    )


def _unparsed(lines: pl.DataFrame, path: str, reason: str) -> pl.DataFrame:
    return lines.select(
        pl.lit(path).alias("file"),
        "line",
        "end_line",
        pl.lit(True).alias("unparsed"),
        pl.lit(reason).alias("reason"),
        pl.col("text").str.slice(0, WARNING_TEXT_CHARS),
    )


# --- across files ----------------------------------------------------------------------

#: A warning is an unparsed line (``unparsed``, spanning ``line`` to ``end_line``), a note
#: on a line that was read (a cut long line), or a file-level problem (null ``line``).
_WARNING_SCHEMA = {
    "file": pl.String,
    "line": pl.UInt32,
    "end_line": pl.UInt32,
    "unparsed": pl.Boolean,
    "reason": pl.String,
    "text": pl.String,
}
_ASSUMPTION_SCHEMA = {
    "file": pl.String,
    "what": pl.String,
    "value": pl.String,
    "basis": pl.String,
    "certainty": pl.String,
}


def _assemble(
    results: list[_FileResult], *, year: int | None, tz: str | None, sort: bool = True
) -> Loaded:
    """The event frame and summary of the files read; each file's records are let go of
    once they are in the frame, so that two copies of them are never held."""
    assumptions: list[dict[str, str]] = []
    known = known_span([r.records for r in results if r.records is not None])
    frames = []
    for result in results:
        if result.records is None or result.records.height == 0:
            continue
        records = settle_year(result, year, known, assumptions)
        result.records = None
        records = settle_zone(result.path, records, tz, assumptions)
        note_unknown_host(result.path, records, assumptions)
        frames.append(
            records.select(
                [pl.col(c) for c in EVENT_SCHEMA if c in records.columns],
                file=pl.lit(result.path),
            )
        )
        del records
    events = _to_events(frames, sort=sort)
    del frames
    warnings = pl.concat(
        [pl.DataFrame(schema=_WARNING_SCHEMA)]
        + [w.cast(_WARNING_SCHEMA) for r in results for w in r.line_warnings]
        + [
            pl.DataFrame(
                {"file": [r.path] * len(r.problems), "reason": r.problems},
                schema={"file": pl.String, "reason": pl.String},
            )
            .with_columns(
                line=pl.lit(None, pl.UInt32),
                end_line=pl.lit(None, pl.UInt32),
                unparsed=pl.lit(False),
                text=pl.lit(None, pl.String),
            )
            .select(list(_WARNING_SCHEMA))
            for r in results
            if r.problems
        ],
        how="vertical",
    )
    summary = LoadSummary(
        files=_file_table(results, warnings),
        warnings=warnings,
        assumptions=pl.DataFrame(assumptions, schema=_ASSUMPTION_SCHEMA),
    )
    return Loaded(events=events, summary=summary)


def _to_events(frames: list[pl.DataFrame], *, sort: bool = True) -> pl.DataFrame:
    """One frame of the files' rows, with templates; sorted unless ``sort`` is false (for a
    caller that adds rows and sorts after)."""
    if not frames:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    events = pl.concat(frames, how="vertical")
    events = signatures.assign_templates(events, by="source")
    events = events.select(
        [
            (pl.col(c).fill_null("{}") if c == "attrs" else pl.col(c)).cast(t)
            for c, t in EVENT_SCHEMA.items()
        ]
    )
    return _sorted(events) if sort else validate(events)


def _sorted(events: pl.DataFrame) -> pl.DataFrame:
    """The event frame in time order, files and lines breaking ties."""
    return validate(events.sort("ts", "file", "line", nulls_last=True, maintain_order=True))


def _file_table(results: list[_FileResult], warnings: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for r in results:
        unparsed = warnings.filter((pl.col("file") == r.path) & pl.col("unparsed"))
        unparsed_lines = int((unparsed["end_line"] - unparsed["line"] + 1).sum())
        parsed, covered, starts = r.rows, r.covered_lines, r.first_lines
        rows.append(
            {
                "file": r.path,
                "format": r.format,
                "prefix": r.prefix,
                "score": r.score,
                "lines": r.lines,
                "rows": parsed,
                "first_lines": starts,
                "continuation_lines": covered - starts,
                "unparsed_lines": unparsed_lines,
                "wrapper_lines": r.wrapper_lines,
                "segments": json.dumps(r.segments) if len(r.segments) > 1 else None,
                "first_unparsed": unparsed["line"].head(10).to_list(),
                "problem": "; ".join(r.problems) or None,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "file": pl.String,
            "format": pl.String,
            "prefix": pl.String,
            "score": pl.Float64,
            "lines": pl.Int64,
            "rows": pl.Int64,
            "first_lines": pl.Int64,
            "continuation_lines": pl.Int64,
            "unparsed_lines": pl.Int64,
            "wrapper_lines": pl.Int64,
            "segments": pl.String,
            "first_unparsed": pl.List(pl.UInt32),
            "problem": pl.String,
        },
    )


def _covered_lines(records: pl.DataFrame) -> int:
    """How many distinct lines the records span (records from one JSON document may share
    lines, so spans are merged rather than added)."""
    spans = records.select("line", "end_line").sort("line")
    reach = pl.col("end_line").cum_max().shift(1).fill_null(0)
    return int(
        spans.select(
            (pl.col("end_line") - pl.max_horizontal(pl.col("line") - 1, reach))
            .cast(pl.Int64)
            .clip(lower_bound=0)
            .sum()
        ).item()
    )


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

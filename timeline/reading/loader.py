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
import glob
import json
import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

import parsers
from parsers import runtime
from parsers.common import LINE_SCHEMA, PLACEHOLDER_YEAR, RECORD_SCHEMA
from parsers.registry import MIN_SCORE, Parser, Score
from timeline.errors import NoInputError, UnknownFormatError
from timeline.reading import signatures
from timeline.schema import EVENT_SCHEMA, validate

#: Lines looked at to recognise a runtime prefix and a format.
SAMPLE_LINES = 200
#: A longer line is cut to this many characters (and the cut is reported).
MAX_LINE_CHARS = 1 << 20
#: How much of an unparsed line the warnings keep.
WARNING_TEXT_CHARS = 200

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class LoadSummary:
    """What was loaded, what could not be, and what was assumed to put it on one clock.

    ``files``: one row per input file (format, prefix, how sure, lines, rows,
    continuation and unparsed lines, first unparsed line numbers, a problem if any).
    Every line is the first line of one or more rows (a one-line JSON page holds many
    jobs), a continuation line, or unparsed: ``lines`` is the sum of ``first_lines``,
    ``continuation_lines`` and ``unparsed_lines``.
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


def detect(path: str) -> dict[str, object]:
    """What the loader would make of ``path``: its prefix and the parsers' scores, best first."""
    data, problems = _read_bytes(path)
    if data is None:
        return {"file": path, "format": None, "score": 0.0, "why": problems[0], "prefix": None}
    raw = _sample_lines(data[: 1 << 20].decode("utf-8", errors="replace"))
    prefix, share = runtime.detect(raw)
    sample = _stripped_sample(raw, prefix)
    ranked = parsers.registry.rank(sample)
    best, score = ranked[0] if ranked else (None, Score(0.0, "no parsers registered"))
    sure = best is not None and score.score >= MIN_SCORE
    why = score.why if sure else f"no format scored {MIN_SCORE} or more (best: {score.why})"
    if prefix:
        why = f"{prefix} prefix on {share:.0%} of sample lines; {why}"
    return {
        "file": path,
        "format": best.name if sure else None,
        "score": round(score.score, 3),
        "why": why,
        "prefix": prefix,
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
    mtime: datetime | None = None
    problems: list[str] = field(default_factory=list)
    line_warnings: list[pl.DataFrame] = field(default_factory=list)


def _read_file(path: str, forced: Parser | None) -> _FileResult:
    result = _FileResult(path=path)
    with contextlib.suppress(OSError):
        result.mtime = datetime.fromtimestamp(os.path.getmtime(path), tz=UTC)
    data, problems = _read_bytes(path)
    result.problems.extend(problems)
    if data is None:
        return result
    raw_sample = _sample_lines(data[: 1 << 20].decode("utf-8", errors="replace"))
    lines, problem = _split_lines(data, path)
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
    result.prefix, _share = runtime.detect(raw_sample)
    stripped = _with_path_hints(runtime.strip(lines.lazy(), result.prefix), path).collect()
    del lines
    parser = forced
    if parser is None:
        sample = stripped["text"].head(SAMPLE_LINES).to_list()
        ranked = parsers.registry.rank(sample)
        if ranked and ranked[0][1].score >= MIN_SCORE:
            parser, score = ranked[0]
            result.score = score.score
        else:
            best = ranked[0][1].why if ranked else "no parsers registered"
            result.problems.append(f"unknown format: no parser recognised it (best: {best})")
            result.line_warnings.append(_unparsed(stripped, path, "unknown format"))
            return result
    else:
        result.score = 1.0
    result.format = parser.name
    try:
        # the in-memory engine holds less at once than the streaming one on a parser's
        # whole-column string work, and is no slower
        lazy = parser.parse(stripped.lazy().select(list(LINE_SCHEMA)))
        records = lazy.collect(engine="in-memory")
        records = records.select([pl.col(c).cast(t) for c, t in RECORD_SCHEMA.items()])
    except Exception as exc:  # a parser bug must not lose the other files
        result.problems.append(f"the {parser.name} parser failed: {type(exc).__name__}: {exc}")
        result.line_warnings.append(_unparsed(stripped, path, f"{parser.name} parser failed"))
        return result
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


def _read_bytes(path: str) -> tuple[bytes | None, list[str]]:
    """The file's bytes (gunzipped), or None and why not."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return None, [f"cannot read: {exc.strerror or exc}"]
    problems = []
    if data[:2] == b"\x1f\x8b":
        data, problem = _gunzip(data)
        if problem:
            problems.append(problem)
    if b"\x00" in data[:8192]:
        return None, [*problems, "binary file (it holds NUL bytes): skipped"]
    return data, problems


def _gunzip(data: bytes) -> tuple[bytes, str | None]:
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


def _sample_lines(text: str) -> list[str]:
    return text[: 1 << 20].split("\n", SAMPLE_LINES)[:SAMPLE_LINES]


def _stripped_sample(raw: list[str], prefix: str | None) -> list[str]:
    frame = pl.LazyFrame({"text": raw}).with_columns(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        path=pl.lit(""),
    )
    return runtime.strip(frame, prefix).collect()["text"].to_list()


def _split_lines(data: bytes, path: str) -> tuple[pl.DataFrame, str | None]:
    """Numbered lines of ``data`` in one column, split in Rust (no Python loop over lines),
    and a note when the bytes were not valid UTF-8."""
    problem = None
    try:
        lines = pl.read_lines(data, name="text")
    except pl.exceptions.ComputeError:
        problem = "not valid UTF-8: undecodable bytes shown as \ufffd"
        lines = pl.read_lines(data.decode("utf-8", errors="replace").encode(), name="text")
    lines = lines.select(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        text=pl.col("text"),
        path=pl.lit(path),
    )
    return lines, problem


def _with_path_hints(lines: pl.LazyFrame, path: str) -> pl.LazyFrame:
    hints = runtime.hints_from_path(path)
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
    known = _known_span([r.records for r in results if r.records is not None])
    frames = []
    for result in results:
        if result.records is None or result.records.height == 0:
            continue
        records = _settle_year(result, year, known, assumptions)
        result.records = None
        records = _settle_zone(result.path, records, tz, assumptions)
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


def _known_span(frames: list[pl.DataFrame]) -> tuple[datetime, datetime] | None:
    """The span of times whose year the records themselves state, across all files."""
    spans = [
        f.filter(~pl.col("year_missing") & pl.col("ts").is_not_null()).select(
            lo=pl.col("ts").min(), hi=pl.col("ts").max()
        )
        for f in frames
    ] + [
        f.select(
            lo=pl.col("prefix_ts").min().dt.replace_time_zone(None),
            hi=pl.col("prefix_ts").max().dt.replace_time_zone(None),
        )
        for f in frames
    ]
    if not spans:
        return None
    both = pl.concat(spans).select(pl.col("lo").min(), pl.col("hi").max())
    lo, hi = both.row(0)
    return None if lo is None else (lo, hi)


def _settle_year(
    result: _FileResult,
    year: int | None,
    known: tuple[datetime, datetime] | None,
    assumptions: list[dict[str, str]],
) -> pl.DataFrame:
    """Put the right year into yearless times: from the runtime prefix on the same line,
    else ``year=``, else the span of the other files, else the file's modification time.
    A month that goes backwards (December to January) moves on a year."""
    records = result.records
    yearless = pl.col("year_missing") & pl.col("ts").is_not_null()
    month = pl.col("ts").dt.month()
    rolled = (month < month.shift(1).forward_fill() - 6).fill_null(False) & yearless
    counts = records.select(
        total=yearless.sum(),
        with_prefix=(yearless & pl.col("prefix_ts").is_not_null()).sum(),
        rolls=rolled.sum(),
    )
    total, with_prefix, rolls = counts.row(0)
    if not total:
        return records
    if rolls:
        records = records.with_columns(_roll=rolled.cast(pl.Int32).cum_sum())
    else:
        records = records.with_columns(_roll=pl.lit(0, pl.Int32))
    from_prefix = pl.col("prefix_ts").dt.year() + pl.when(
        (month == 12) & (pl.col("prefix_ts").dt.month() == 1)
    ).then(-1).when((month == 1) & (pl.col("prefix_ts").dt.month() == 12)).then(1).otherwise(0)
    base, basis, certainty = _base_year(
        records.select(pl.col("ts", "_roll").filter(yearless)), year, known, result.mtime
    )
    guessed = (
        pl.lit(base, pl.Int32) + pl.col("_roll") if base is not None else pl.lit(None, pl.Int32)
    )
    new_year = pl.coalesce(from_prefix, guessed)
    if with_prefix:
        assumptions.append(
            _assumption(
                result.path,
                "year",
                "from runtime prefix",
                f"{with_prefix:,} of {total:,} yearless records carry a runtime prefix time",
                "certain",
            )
        )
    if with_prefix < total:
        value = str(base) if base is not None else "unknown"
        assumptions.append(_assumption(result.path, "year", value, basis, certainty))
    if with_prefix == 0 and rolls == 0 and base is not None:
        fixed = pl.col("ts").dt.offset_by(f"{base - PLACEHOLDER_YEAR}y")  # one year for all
    else:
        fixed = pl.col("ts").dt.offset_by(
            pl.format("{}y", (new_year - PLACEHOLDER_YEAR).cast(pl.String))
        )
    return records.with_columns(ts=pl.when(yearless).then(fixed).otherwise(pl.col("ts"))).drop(
        "_roll"
    )


def _base_year(
    yearless: pl.DataFrame,
    year: int | None,
    known: tuple[datetime, datetime] | None,
    mtime: datetime | None,
) -> tuple[int | None, str, str]:
    """The year of a file's first yearless record, and on what it rests."""
    if year is not None:
        return year, "given with year=", "stated"
    first = yearless["ts"].min()
    if known is not None:
        lo, hi = known
        candidates = range(lo.year - 1, hi.year + 2)

        def distance(y: int) -> float:
            t = (
                first.replace(year=y)
                if not (first.month == 2 and first.day == 29)
                else first.replace(year=y, day=28)
            )
            if lo <= t <= hi:
                return 0.0
            return min(abs((t - lo).total_seconds()), abs((t - hi).total_seconds()))

        best = min(candidates, key=distance)
        return best, f"the other files span {lo:%Y-%m-%d} to {hi:%Y-%m-%d}", "likely"
    if mtime is not None:
        last = yearless["ts"].max()
        y = mtime.year - (1 if (last.month, last.day) > (mtime.month, mtime.day) else 0)
        rollovers = int(yearless.select(pl.col("_roll").max()).item() or 0)
        return y - rollovers, f"the file's modification time ({mtime:%Y-%m-%d})", "guess"
    return None, "nothing to infer it from", "guess"


def _settle_zone(
    path: str, records: pl.DataFrame, tz: str | None, assumptions: list[dict[str, str]]
) -> pl.DataFrame:
    """Bring every time to UTC: a stated offset is applied; a missing zone is ``tz`` or UTC."""
    stated = pl.col("ts") - pl.duration(seconds=pl.col("utc_offset_s"))
    zoneless = pl.col("ts").is_not_null() & pl.col("utc_offset_s").is_null()
    n_zoneless = records.filter(zoneless).height
    prefix_offset = _offset_from_prefix(records.filter(zoneless))
    unstated = pl.col("ts")
    if n_zoneless and tz:
        local = pl.col("ts").dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        unstated = local.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        assumptions.append(_assumption(path, "time zone", tz, "given with tz=", "stated"))
    elif n_zoneless and prefix_offset is not None:
        unstated = pl.col("ts") - pl.duration(seconds=prefix_offset)
        assumptions.append(
            _assumption(
                path,
                "time zone",
                _offset_text(prefix_offset),
                f"{n_zoneless:,} records write no zone; their times match the runtime "
                "prefix's UTC times at that offset",
                "certain",
            )
        )
    elif n_zoneless:
        assumptions.append(
            _assumption(
                path,
                "time zone",
                "UTC",
                f"{n_zoneless:,} records write a time without a zone",
                "assumed",
            )
        )
    if records.filter(pl.col("ts").is_null() & pl.col("prefix_ts").is_null()).height:
        assumptions.append(
            _assumption(
                path,
                "time",
                "none",
                "the records write no time and no runtime prefix gives one",
                "unknown",
            )
        )
    utc = pl.when(pl.col("utc_offset_s").is_not_null()).then(stated).otherwise(unstated)
    return records.with_columns(
        ts=pl.coalesce(utc.dt.replace_time_zone("UTC"), pl.col("prefix_ts"))
    )


def _offset_from_prefix(zoneless: pl.DataFrame) -> int | None:
    """The zone offset (seconds, whole quarter hours) that lines up zoneless record times
    with their runtime prefix's UTC times, or None when no line has both."""
    gap = zoneless.select(
        (pl.col("ts") - pl.col("prefix_ts").dt.replace_time_zone(None)).dt.total_seconds().median()
    ).item()
    if gap is None or abs(gap) > 14 * 3600:
        return None
    return int(round(gap / 900) * 900)


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return "UTC" if seconds == 0 else f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _assumption(file: str, what: str, value: str, basis: str, certainty: str) -> dict[str, str]:
    return {"file": file, "what": what, "value": value, "basis": basis, "certainty": certainty}


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

r"""Routing: each line of a file to the format whose record it belongs to.

A file is mostly one format, but not always: klog lines from client-go inside a RabbitMQ
log, several services interleaved by ``docker compose logs``, a journal where kubelet,
containerd and systemd take turns. A line that starts a record of a known format (what
its parser :attr:`~parsers.registry.Parser.claims`) starts a record of that format; it is
never glued to the record above as a continuation. Lines that start no record continue
the record above of the same stream (host and container or unit). Where a wrapper says
each line is an entry of its own (syslog, journald), a line no format claims is a record
of its own, read as ``plain``: the wrapper's time, the unit as source and component, a
level from the syslog severity or a level word in the message.

Each run of lines (one format, one stream) is handed to its parser; rows keep their
file and line numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from parsers import registry
from parsers.common import (
    LEVEL,
    LINE_SCHEMA,
    RECORD_SCHEMA,
    in_year,
    join_continuations,
    level_from,
    per_file,
    records,
    stacked,
)
from parsers.registry import SAMPLE_LINES, Parser

#: The name of rows read without a format.
PLAIN = "plain"

#: Formats tried first when a line could start a record of more than one.
FIRST = ("klog", "klog-json", "rabbitmq", "coredns")

#: Lines that only ever continue a record, whatever the wrapper: indented lines, the end
#: of a klog ``<`` block, Go panics and goroutine dumps.
CONTINUATION = (
    r"^(?:[\t ]|\)|>|panic: |fatal error: |goroutine [0-9]+ \[|created by |\[signal "
    r"|[^\s(]+\(.*\)$)"
)

#: A level a plain message states: ``level=error``, ``[ERROR]``, ``ERROR:``, ``<warn>``.
#: A time (and a date before it) that logging libraries put before the level: Python's
#: ``2025-02-19 09:34:01,123 ERROR``, log4j's, Spring Boot's ``...T09:34:01.123Z ERROR 1
#: ---``, logback's ``09:34:01.123 [main] ERROR``; a ``[thread]`` may stand between.
_STAMP = (
    r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}[T ])?[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})? +(?:\[[^\]]*\] +)?\[?"
)
LEVEL_WORD = (
    r'(?:\blevel="?|^\[|^<|^|^' + _STAMP + r")"
    r"(?i:(debug|info|notice|warn|warning|error|err|fatal|panic|crit|critical))"
    r'(?:"|\]|>|:|\s|$)'
)
#: What makes a line no format claims an error where it writes no level word: the
#: kernel's OOM killer, a segfault or panic, and a systemd unit that failed. Not a bare
#: "failed", which test summaries ("0 failed") and boot-time probes write all day.
FAILURE_WORDS = (
    r"(?i:out of memory|oom-killer|killed process [0-9]|segfault at|kernel panic|^panic: "
    r"|^fatal error: |main process exited, code=[a-z]+, status=[0-9]+/failure"
    r"|failed with result '|failed to start [a-z])"
)
LEVEL_WORDS = {
    "debug": "debug",
    "info": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "err": "error",
    "fatal": "critical",
    "panic": "critical",
    "crit": "critical",
    "critical": "critical",
}


@dataclass(frozen=True)
class Routed:
    """The records of every segment, and how many lines went to each format."""

    records: pl.DataFrame
    segments: dict[str, int]


def candidates(main: Parser | None) -> list[Parser]:
    """The formats a line may be routed to, besides ``main``, most specific first: those
    that say which lines are theirs wherever they appear (:attr:`Parser.claims`: the
    package's modules' ``record_start``, a format file's ``distinct_start``). A format
    file's ``record_start`` only says where a big file may be cut (``Error: ...`` starts
    a ``circleci-local`` record), so such a format is read where a file or a stream is
    its own, and is not picked out of other formats' lines."""
    found = [p for p in registry.all_parsers() if p.claims and p is not main]
    return sorted(
        found,
        key=lambda p: (p.name not in FIRST, FIRST.index(p.name) if p.name in FIRST else 0, p.name),
    )


def route(lines: pl.DataFrame, main: Parser | None, *, streams: bool = True) -> pl.DataFrame:
    """``lines`` with ``_key`` (the stream: host and container or unit, as a wrapper
    says), ``_format`` (the format whose record each line starts or continues; null where
    none) and ``_starts`` (the line starts a record).

    A file of several streams (``docker compose logs``, a journal of many units) has
    each stream's format recognised from its own lines. A stream no format recognises
    is read as the collector wrote it, each line an entry (:func:`as_entries`), as a
    whole file of such lines is: a ``web`` service's lines beside a known one's are
    records, not unparsed lines. With ``streams`` false (a format the user chose),
    ``main`` is every stream's format.
    """
    return _route(lines, main, streams=streams)[0]


def _route(
    lines: pl.DataFrame, main: Parser | None, *, streams: bool = True
) -> tuple[pl.DataFrame, bool]:
    """:func:`route`, and whether the whole file is one segment (one stream, one format).

    The streams of one program (``kubelet`` on each of a thousand hosts of a central
    syslog) are taken to be of one format, recognised once from a sample of them all,
    and the streams of one format are routed in one query."""
    one_stream = lines.select(
        (pl.col("container").n_unique() <= 1) & (pl.col("host").n_unique() <= 1)
    ).item()
    if not streams or one_stream:
        return _route_stream(lines.with_columns(_key=pl.lit("")), main)
    named = pl.col("container").is_not_null()
    keyed = lines.with_row_index("_row").with_columns(
        _key=pl.when(named)
        .then(pl.concat_str(pl.col("host").fill_null(""), pl.col("container"), separator="/"))
        .forward_fill()
        .fill_null(""),
        _program=pl.when(named).then(pl.col("container")).forward_fill().fill_null(""),
    )
    if keyed["_key"].n_unique() <= 1:
        return _route_stream(keyed.drop("_program", "_row"), main)
    formats = {
        program: _stream_format(sample)
        for (program,), sample in keyed.group_by("_program", maintain_order=True)
        .head(SAMPLE_LINES)
        .group_by("_program", maintain_order=True)
    }
    name = pl.col("_program").replace_strict(
        {program: parser.name if parser else "" for program, parser in formats.items()},
        return_dtype=pl.String,
    )
    by_name = {parser.name if parser else "": parser for parser in formats.values()}
    routed = [
        _route_stream(
            group.drop("_program") if by_name[fmt] else as_entries(group.drop("_program")),
            by_name[fmt],
            by_stream=True,
        )[0]
        for (fmt,), group in keyed.with_columns(_fmt=name).group_by("_fmt", maintain_order=True)
    ]
    # back in the order read (oldest first: :func:`parsers.wrappers.peel`)
    together = pl.concat([r.drop("_fmt") for r in routed], how="vertical")
    return together.sort("_row").drop("_row"), False


def _stream_format(stream: pl.DataFrame) -> Parser | None:
    """The format of one stream's lines, from a sample of them, if one is sure enough."""
    ranked = registry.rank(stream["text"].head(SAMPLE_LINES).to_list())
    if ranked and ranked[0][1].score >= registry.MIN_SCORE:
        return ranked[0][0]
    return None


def _route_stream(
    lines: pl.DataFrame, main: Parser | None, *, by_stream: bool = False
) -> tuple[pl.DataFrame, bool]:
    """Route the lines of one stream whose own format is ``main`` (or unknown), and say
    whether they are all ``main``'s; with ``by_stream``, of several streams (``_key``) of
    that format, a record never continuing into another stream.

    One regex (every other format's record start) runs over the lines; a file where it
    flags none, and no wrapper says each line is an entry, is all ``main``'s, for one
    pass.
    """
    text = pl.col("text")
    # a format read as whole documents (JSON, YAML, tables) has no lines to share, unless
    # it says which lines are its records
    line_based = main is None or main.own_start or main.record_start or main.distinct_start
    others = candidates(main) if line_based else []
    foreign = "|".join(f"(?:{p.claims})" for p in others)
    flag = text.str.contains(foreign) if foreign else pl.lit(False)
    main_name = pl.lit(main.name if main else None, pl.String)
    if not lines.select((flag | pl.col("entry")).any()).item():
        return lines.with_columns(_starts=pl.lit(False), _format=main_name), main is not None
    own_start = main and (main.own_start or main.record_start or main.distinct_start)
    own = text.str.contains(own_start) if own_start else pl.lit(False)
    # rows, not line numbers, are the key: an export's records may share one line
    lines = lines.with_row_index("_r")
    # a line of main's own after another format's record takes the stream back
    flagged = lines.filter(flag | pl.col("entry") | own)
    claims = [pl.when(text.str.contains(p.claims)).then(pl.lit(p.name)) for p in others]
    entry = pl.col("entry") & ~text.str.contains(CONTINUATION)
    if own_start:
        entry = entry & ~_rest_of_a_write(lines, own, by_stream=by_stream)
    plain = pl.when(entry).then(pl.lit(PLAIN))
    if main is not None and not (main.own_start or main.record_start):
        # a format that cannot tell its own record starts (logfmt, say) takes the
        # wrapper's entries that no other format claims
        plain = pl.when(pl.col("entry")).then(main_name)
    claimed = flagged.select(
        "_r",
        _claimed=pl.when(own).then(main_name).otherwise(pl.coalesce(*claims, plain)),
    )
    routed = (
        lines.join(claimed, on="_r", how="left")
        .with_columns(
            _starts=pl.col("_claimed").is_not_null(),
            _format=pl.col("_claimed").forward_fill().over("_key")
            if by_stream
            else pl.col("_claimed").forward_fill(),
        )
        .drop("_claimed", "_r")
    )
    if main is not None:
        routed = routed.with_columns(pl.col("_format").fill_null(main_name))
    return routed, False


#: How far apart journald stamps the entries of one write of a program's.
ONE_WRITE = pl.duration(milliseconds=1)


def _rest_of_a_write(lines: pl.DataFrame, own: pl.Expr, *, by_stream: bool) -> pl.Expr:
    """Wrapper entries that are the further lines of one write by the program whose
    record the first line of that write starts.

    journald (and a forwarder's syslog) makes each line a program writes an entry of
    its own, so an unindented line of a multi-line record (kube-proxy's ``Try
    `iptables -h' or 'iptables --help' for more information.`` below its
    ``Failed to execute iptables-restore`` error) looks like a record of its own. The
    same process (``pid``) writing at the same moment as the line above it, after a
    line that starts a record of this stream's format, is that record going on. The
    moment is the wrapper's time, within :data:`ONE_WRITE` where it is written to the
    microsecond (``journalctl -o short-precise``, journald's ``__REALTIME_TIMESTAMP``):
    journald stamps each entry of one write as it takes it."""
    if not {"pid", "wrap_ts", "prefix_ts"} <= set(lines.columns):
        return pl.lit(False)
    over = ["_key"] if by_stream else []

    def above(column: str) -> pl.Expr:
        shifted = pl.col(column).shift(1)
        return shifted.over(over) if over else shifted

    def near(column: str) -> pl.Expr:
        return (pl.col(column) - above(column)).abs() <= ONE_WRITE

    same_write = (
        pl.col("entry")
        & pl.col("pid").is_not_null()
        & (pl.col("pid") == above("pid"))
        & (near("wrap_ts") | near("prefix_ts"))
        & ~own
    ).fill_null(False)
    started_by_own = pl.when(~same_write).then(own)
    started_by_own = (
        started_by_own.forward_fill().over(over) if over else started_by_own.forward_fill()
    )
    return same_write & started_by_own.fill_null(False)


def one_segment(lines: pl.DataFrame, main: Parser) -> bool:
    """Whether every line of ``lines`` is ``main``'s: one stream, no other format's
    record, no wrapper entry."""
    return _route(lines, main)[1]


def one_segment_each(files: list[pl.DataFrame], main: Parser) -> list[bool]:
    """:func:`one_segment` of several small files of ``main``'s, in one query for the
    usual case (one stream, no line another format claims, no wrapper entry); a file of
    several streams is looked at on its own."""
    if not files:
        return []
    line_based = main.own_start or main.record_start or main.distinct_start
    foreign = "|".join(f"(?:{p.claims})" for p in candidates(main)) if line_based else ""
    flag = pl.col("text").str.contains(foreign) if foreign else pl.lit(False)
    found = per_file(
        stacked(files, "text", "entry", "host", "container"),
        len(files),
        one_stream=(pl.col("container").n_unique() <= 1) & (pl.col("host").n_unique() <= 1),
        claimed=(flag | pl.col("entry")).any(),
    )
    return [
        each is None or (not each["claimed"] if each["one_stream"] else one_segment(lines, main))
        for lines, each in zip(files, found, strict=True)
    ]


def claims_any(lines: pl.DataFrame) -> bool:
    """Whether any line of a file no format recognised as a whole starts a record of a
    known format or is a wrapper's entry: then its lines are routed one by one."""
    return bool(route(lines, None)["_format"].is_not_null().any())


def as_entries(lines: pl.DataFrame) -> pl.DataFrame:
    """``lines`` with each non-blank line an entry, as a collector (a runtime prefix,
    ``docker compose logs``, a forwarder) wrote it: where no format knows the program,
    its lines are still records with the collector's time and stream, not unparsed.

    >>> lines = pl.DataFrame({"text": ["tail: no files remaining", ""], "entry": [False] * 2})
    >>> as_entries(lines)["entry"].to_list()
    [True, False]
    """
    return lines.with_columns(entry=pl.col("entry") | (pl.col("text").str.strip_chars() != ""))


def segment_sizes(routed: pl.DataFrame) -> dict[str, int]:
    """Lines routed to each format, most first."""
    counts = routed.group_by("_format").len().drop_nulls("_format").sort("len", descending=True)
    return dict(zip(counts["_format"], counts["len"], strict=True))


def parse_segments(lines: pl.DataFrame, main: Parser | None, *, streams: bool = True) -> Routed:
    """Route ``lines`` (markers already set apart; see :func:`route`) and parse each
    segment with its parser; lines no format claims come back as unparsed records."""
    routed, single = _route(lines, main, streams=streams)
    if single and main is not None:
        parsed = main.parse(lines.lazy().select(list(LINE_SCHEMA))).collect(engine="in-memory")
        found = _typed(parsed)
        return Routed(with_wrapper_fields(found, lines), {main.name: lines.height})
    segments = segment_sizes(routed)
    parts = []
    for (name, _nth), group in _runs(routed).group_by("_format", "_nth", maintain_order=True):
        group = group.sort("_key", maintain_order=True)  # each stream's lines as read
        if name is None:
            parts.append(_unclaimed(group))
        elif name == PLAIN:
            parts.append(_plain(group))
        else:
            parser = registry.get(name)
            parts.extend(
                parser.parse(runs.lazy().select(list(LINE_SCHEMA))).collect(engine="in-memory")
                for runs in _apart(group, parser)
            )
    if not parts:
        return Routed(_empty_records(), segments)
    found = pl.concat([_typed(p) for p in parts], how="vertical").sort("line", maintain_order=True)
    return Routed(with_wrapper_fields(found, lines), segments)


#: More runs than this of one format in one stream, and the stream's runs of a format
#: are read as one (a record may then reach over another format's lines; few files are
#: that mixed).
MAX_RUNS = 200


def _runs(routed: pl.DataFrame) -> pl.DataFrame:
    """Number each stream's runs of one format (``_run``), so that no record of one run
    takes in a line after another format's record began: the other format's line ended
    it. ``_nth`` counts a format's runs within its stream: the n-th runs of every stream
    are read in one call, and no two runs of one stream meet there."""
    fmt = pl.col("_format")
    changed = fmt.ne_missing(fmt.shift(1)).over("_key").cast(pl.UInt32)
    numbered = routed.with_columns(_run=changed.cum_sum().over("_key"))
    numbered = numbered.with_columns(_nth=pl.col("_run").rank("dense").over("_key", "_format"))
    if (numbered["_nth"].max() or 0) > MAX_RUNS:
        return numbered.with_columns(_run=pl.lit(0, pl.UInt32), _nth=pl.lit(1, pl.UInt32))
    return numbered


def _apart(group: pl.DataFrame, parser: Parser) -> list[pl.DataFrame]:
    """The runs of one format, one a stream, sorted by stream and line, in as few frames
    as can each be parsed in one call: the runs that begin with a record (or, for a
    format read as documents, with a line that is one: :attr:`Parser.whole_line`), so
    that none takes in the stream above, together; each run that does not, alone (its
    first lines are the parser's to mark)."""
    begins = pl.col("_starts")
    if parser.record_start:
        begins = begins | pl.col("text").str.contains(parser.record_start)
    elif parser.whole_line:
        begins = begins | parser.whole_line()
    loose = group.filter(pl.col("_key").is_first_distinct() & ~begins).select("_key")
    if loose.height == 0:
        return [group]
    together = group.join(loose, on="_key", how="anti")
    alone = group.join(loose, on="_key", how="semi").partition_by("_key", maintain_order=True)
    return ([together] if together.height else []) + alone


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select([pl.col(c).cast(t) for c, t in RECORD_SCHEMA.items()])


def _empty_records() -> pl.DataFrame:
    return pl.DataFrame(schema=RECORD_SCHEMA)


def _plain(group: pl.DataFrame) -> pl.DataFrame:
    """Records of lines no format claims, each started by a wrapper entry; lines that
    continue one (indented, a Go panic) are joined to it. The level is one the wrapper
    states of the line (``stated_level``: journald's ``PRIORITY`` 0 to 4), else the line's
    level word, else an error where it tells of a crash, an OOM kill or a failed unit
    (:data:`FAILURE_WORDS`)."""
    columns = [*LINE_SCHEMA, "_starts"]
    joined = join_continuations(group.lazy().select(columns), pl.col("_starts")).collect()
    if "stated_level" in group.columns:
        stated = group.select("line", "stated_level").unique("line", keep="first")
        joined = joined.join(stated, on="line", how="left")
    else:
        joined = joined.with_columns(stated_level=pl.lit(None, pl.String))
    text = pl.col("text")
    word = text.str.extract(LEVEL_WORD, 1)
    source = pl.coalesce(pl.col("container"), pl.lit(PLAIN))
    return records(
        joined.lazy(),
        source=source,
        component=source,
        level=pl.coalesce(
            pl.col("stated_level").cast(LEVEL),
            level_from(word, LEVEL_WORDS),
            pl.when(text.str.contains(FAILURE_WORDS)).then(pl.lit("error", LEVEL)),
        ),
        message=text,
    ).collect()


def _unclaimed(group: pl.DataFrame) -> pl.DataFrame:
    """Lines that no format claims, outside any wrapper entry: unparsed."""
    return records(
        group.lazy().select(list(LINE_SCHEMA)),
        message="text",
        unparsed=pl.lit("no format recognised this line"),
    ).collect()


def with_wrapper_fields(found: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """Fill what a record leaves open from its first line's wrapper: the time (a
    yearless one says so), the year of a yearless time where the wrapper's names one,
    the level the wrapper states or gives (a syslog severity), and the pod's namespace and
    the pid in ``attrs`` (:data:`NAMESPACE_KEY` first). ``lines`` may be several small
    files' lines read in one query, their line numbers moved apart: each record takes
    the fields of its own file's line, as when its file is read alone."""
    lines = lines.with_columns(
        pl.lit(None, pl.String).alias(c)
        for c in ("stated_level", "namespace")
        if c not in lines.columns
    )
    fields = list(WRAPPER_FIELDS)
    if not any(lines.select(pl.col(fields).is_not_null().any()).row(0)):
        return found
    return _filled_from_wrapper(_wrapper_fields_of(found, lines, fields))


#: What a record may take from its first line's wrapper.
WRAPPER_FIELDS = ("wrap_ts", "wrap_year_missing", "wrap_level", "stated_level", "pid", "namespace")

#: The ``attrs`` key of the namespace of the pod that wrote a record, as its collector's
#: record states it (:mod:`parsers.envelopes`); always the first key, so that it is read
#: from the start of ``attrs`` with no JSON decoding, and never a program's own
#: ``namespace=`` (a key=value the line is about).
NAMESPACE_KEY = "pod_namespace"


def _wrapper_fields_of(found: pl.DataFrame, lines: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """``found`` with the wrapper ``fields`` of each record's first line. Records that
    share a line (an export's on one line, an OTLP batch's) are told apart by their time:
    each takes the fields of the first entry of its line and time, and where no entry
    has its time, its line's first."""
    by_line = lines.select("line", *fields).unique("line", keep="first", maintain_order=True)
    # the records stay in the order read: a join keeps it only when told to, and records
    # of one line (an OTLP batch's) have no other order
    if lines["line"].n_unique() == lines.height:
        return found.join(by_line, on="line", how="left", maintain_order="left")
    keys = ["line", "prefix_ts"]
    by_time = lines.select(*keys, *fields, _timed=pl.lit(True)).unique(
        keys, keep="first", maintain_order=True
    )
    joined = found.join(by_time, on=keys, how="left", nulls_equal=True, maintain_order="left").join(
        by_line, on="line", how="left", suffix="_of_line", maintain_order="left"
    )
    return joined.with_columns(
        pl.when(pl.col("_timed")).then(pl.col(f)).otherwise(pl.col(f"{f}_of_line")).alias(f)
        for f in fields
    ).drop("_timed", *(f"{f}_of_line" for f in fields))


#: Half a year: a yearless time further than this from a dated one is in the next or
#: the last year.
_HALF_YEAR = timedelta(days=183)


def in_nearest_year(ts: pl.Expr, near: pl.Expr) -> pl.Expr:
    """Yearless times ``ts`` (in the placeholder year) in the year that puts each nearest
    the dated time ``near``: a wall clock in another zone may lie across a New Year.

    >>> from datetime import datetime
    >>> frame = pl.DataFrame({"ts": [datetime(2000, 12, 31, 23), datetime(2000, 3, 14)],
    ...     "near": [datetime(2024, 1, 1, 1), datetime(2023, 3, 14, 1)]})
    >>> frame.select(in_nearest_year(pl.col("ts"), pl.col("near")))["ts"].dt.year().to_list()
    [2023, 2023]
    """
    year = near.dt.year()
    first = in_year(ts, year)
    year = (
        pl.when(first - near > _HALF_YEAR)
        .then(year - 1)
        .when(near - first > _HALF_YEAR)
        .then(year + 1)
        .otherwise(year)
    )
    return in_year(ts, year)


def _filled_from_wrapper(joined: pl.DataFrame) -> pl.DataFrame:
    """Records with their wrapper fields (:func:`_wrapper_fields_of`) filled in."""
    unprefixed = pl.col("prefix_ts").is_null() & pl.col("wrap_ts").is_not_null()
    use_wrap = pl.col("ts").is_null() & unprefixed
    # a wrapper's time that names its year (Grafana's wall clock) dates a yearless line
    use_year = pl.col("year_missing") & unprefixed & ~pl.col("wrap_year_missing").fill_null(True)
    # a namespace's name needs no escaping (the envelopes keep only such names)
    namespace = pl.format(f'"{NAMESPACE_KEY}":"{{}}"', pl.col("namespace"))
    pid = pl.format('"pid":"{}"', pl.col("pid"))
    head = pl.concat_str([namespace, pid], separator=",", ignore_nulls=True)
    return joined.with_columns(
        ts=pl.when(use_wrap)
        .then(pl.col("wrap_ts"))
        .when(use_year)
        .then(in_nearest_year(pl.col("ts"), pl.col("wrap_ts")))
        .otherwise(pl.col("ts")),
        year_missing=pl.when(use_wrap)
        .then(pl.col("wrap_year_missing").fill_null(False))
        .when(use_year)
        .then(pl.lit(False))
        .otherwise(pl.col("year_missing")),
        level=pl.coalesce(
            pl.col("level"), pl.col("stated_level").cast(LEVEL), pl.col("wrap_level").cast(LEVEL)
        ),
        attrs=pl.when((head == "") | pl.col("unparsed").is_not_null())
        .then(pl.col("attrs"))
        .when(pl.col("attrs") == "{}")
        .then(pl.concat_str(pl.lit("{"), head, pl.lit("}")))
        .otherwise(pl.concat_str(pl.lit("{"), head, pl.lit(","), pl.col("attrs").str.slice(1))),
    ).drop(*WRAPPER_FIELDS)

"""What every parser shares: the columns it hands to the loader, and small polars helpers.

A parser receives a frame of *lines* and returns a frame of *records*. The loader turns
records into the event frame (see ``timeline.schema``): it settles years and time zones,
adds ``file`` and ``template`` and splits unparsed lines off into warnings.

Lines handed to ``parse`` (``LINE_SCHEMA``):

``line``        1-based number of the line in its file (the first one, if a runtime joined
                partial lines)
``end_line``    the last line it takes up (more than ``line`` only for joined partial lines)
``text``        the program's own text, with any runtime prefix removed
``prefix_ts``   the time a runtime prefix gave the line (UTC), or null
``stream``      ``stdout``/``stderr`` from a runtime prefix, or null
``host``        node or pod named by the prefix or the path, or null
``container``   container named by the prefix or the path, or null
``path``        the file the line came from

Records returned by ``parse`` (``RECORD_SCHEMA``):

``line``/``end_line``  first and last line of the record (continuations lie between)
``ts``          wall-clock time as written, without zone (naive), or null
``utc_offset_s`` the zone offset the record states, in seconds; null when it states none
``year_missing`` true when the format writes no year (klog): ``ts`` then carries year 2000
                and the loader puts the right one in
``prefix_ts``   the runtime prefix's time, passed through from the lines
``source``, ``host``, ``component``, ``level``, ``kind``, ``message``, ``attrs``
                as in the event frame; ``attrs`` a JSON object text
``template``    the signature when the format gives one (klog's quoted message), or null
``unparsed``    why the line could not be read, or null for a good record
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import polars as pl

LEVELS = ["debug", "info", "warning", "error", "critical"]
KINDS = ["log", "change", "job"]
LEVEL = pl.Enum(LEVELS)
KIND = pl.Enum(KINDS)

#: Year written into ``ts`` when a format has none; a leap year, so 29 February parses.
PLACEHOLDER_YEAR = 2000


def in_year(ts: pl.Expr, year: pl.Expr) -> pl.Expr:
    """Times of the placeholder year moved to ``year`` (a row's own), as ``dt.offset_by``
    moves them (29 February to the 28th in a common year), by arithmetic: the same result
    without writing and reading an offset text for every row.

    >>> from datetime import datetime
    >>> when = pl.lit(datetime(PLACEHOLDER_YEAR, 2, 29, 12))
    >>> pl.select(common=in_year(when, pl.lit(2023)), leap=in_year(when, pl.lit(2024))).row(0)
    (datetime.datetime(2023, 2, 28, 12, 0), datetime.datetime(2024, 2, 29, 12, 0))
    """
    common = (year % 4 != 0) | ((year % 100 == 0) & (year % 400 != 0))
    to_start = pl.date(year, 1, 1).cast(pl.Datetime("us")) - datetime(PLACEHOLDER_YEAR, 1, 1)
    short = pl.when(common & (ts >= datetime(PLACEHOLDER_YEAR, 2, 29)))
    return ts + to_start - short.then(pl.duration(days=1)).otherwise(pl.duration(days=0))


def file_stem(path: pl.Expr) -> pl.Expr:
    """Each row's file name up to its first dot (``kubelet`` for ``/var/log/kubelet.log.1``),
    worked out once for the frame's first file and once a row only for the others.

    >>> paths = pl.Series(["/var/log/kubelet.log.1", "/var/log/kubelet.log.1", "a/b.log"])
    >>> pl.select(file_stem(pl.lit(paths))).to_series().to_list()
    ['kubelet', 'kubelet', 'b']
    """
    first = path.first()
    return pl.coalesce(_stem(pl.when(path != first).then(path)), _stem(first))


def _stem(path: pl.Expr) -> pl.Expr:
    return path.str.extract(r"([^/\\.]+)[^/\\]*$", 1)


#: The words of a name a person or a program gives a log file, each from a letter on:
#: ``payments-api`` of ``payments-api-2023-03-14``, ``orders_worker`` of ``orders_worker``.
_NAME_WORDS = r"^([A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z][A-Za-z0-9]*)*)"

#: Names that any program's log file or container could have, so that they name none.
NAMELESS = frozenset(
    (  # noqa: SIM905
        "log logs out output stdout stderr err error errors current previous messages syslog "
        "console combined all app application server service main debug info trace container "
        "pod raw export download query results result events data tmp lines records"
    ).split()
)


def program_of_file(path: pl.Expr) -> pl.Expr:
    """The program a log file's name names (``payments-api`` for ``payments-api.log`` or
    ``payments-api-2023-03-14.log.gz``), or null for a name any log could have
    (``0.log``, ``current``, ``app.log``) or a container's id (``<64 hex>-json.log``).

    >>> paths = pl.Series(["logs/payments-api-2023-03-14.log.gz", "pods/x/api/0.log",
    ...                    "app.log", "c/4f1d2b9e8a7c6d5e4f3a2b1c-json.log"])
    >>> pl.select(program_of_file(pl.lit(paths))).to_series().to_list()
    ['payments-api', None, None, None]
    """
    name = file_stem(path).str.extract(_NAME_WORDS, 1)
    nameless = name.str.to_lowercase().is_in(NAMELESS) | name.str.contains("[0-9a-f]{12}")
    return pl.when(~nameless).then(name)


LINE_SCHEMA = {
    "line": pl.UInt32,
    "end_line": pl.UInt32,
    "text": pl.String,
    "prefix_ts": pl.Datetime("us", "UTC"),
    "stream": pl.String,
    "host": pl.String,
    "container": pl.String,
    "path": pl.String,
}

RECORD_SCHEMA = {
    "line": pl.UInt32,
    "end_line": pl.UInt32,
    "ts": pl.Datetime("us"),
    "utc_offset_s": pl.Int32,
    "year_missing": pl.Boolean,
    "prefix_ts": pl.Datetime("us", "UTC"),
    "source": pl.String,
    "host": pl.String,
    "component": pl.String,
    "level": LEVEL,
    "kind": KIND,
    "message": pl.String,
    "template": pl.String,
    "attrs": pl.String,
    "unparsed": pl.String,
}


def records(frame: pl.LazyFrame, **columns: pl.Expr | str | None) -> pl.LazyFrame:
    """Select the record columns from ``frame``, in order and with their types.

    Each keyword names a record column and gives its expression (a string is a column
    name). A column not given is taken from ``frame`` when it has one, else null; ``attrs``
    defaults to ``"{}"`` and ``end_line`` to ``line``.
    """
    have = set(frame.collect_schema().names())
    defaults: dict[str, pl.Expr] = {
        "end_line": pl.col("end_line") if "end_line" in have else pl.col("line"),
        "attrs": pl.lit("{}"),
        "kind": pl.lit("log"),
        "year_missing": pl.lit(False),
    }
    exprs = []
    for name, dtype in RECORD_SCHEMA.items():
        given = columns.get(name)
        if isinstance(given, str):
            expr = pl.col(given)
        elif given is not None:
            expr = given
        elif name in have:
            expr = pl.col(name)
        else:
            expr = defaults.get(name, pl.lit(None))
        exprs.append(expr.cast(dtype).alias(name))
    return frame.select(exprs)


def file_numbers(heights: list[int]) -> pl.Series:
    """Which file each row of several files' rows, stacked in order, came from: the
    number of the file, repeated for each of its ``heights`` rows.

    >>> file_numbers([2, 0, 1]).to_list()
    [0, 0, 2]
    """
    numbers = pl.int_range(len(heights), dtype=pl.UInt32).repeat_by(
        pl.Series(heights, dtype=pl.UInt32)
    )
    return pl.select(numbers.explode(empty_as_null=False)).to_series()


def stacked(frames: list[pl.DataFrame], *columns: str) -> pl.DataFrame:
    """The ``columns`` of several files' rows in one frame, in order, each row with its
    file's number (``_file``): many small files are looked at in one query this way
    (:func:`per_file`), the fixed cost of a query, not the rows, being what a small file
    costs. The columns are taken as they are, not through a query of each frame.

    >>> stacked([pl.DataFrame({"a": [1, 2], "b": 0}), pl.DataFrame({"a": [3], "b": 0})], "a")
    shape: (3, 2)
    ┌─────┬───────┐
    │ a   ┆ _file │
    │ --- ┆ ---   │
    │ i64 ┆ u32   │
    ╞═════╪═══════╡
    │ 1   ┆ 0     │
    │ 2   ┆ 0     │
    │ 3   ┆ 1     │
    └─────┴───────┘
    """
    return pl.DataFrame(
        [pl.concat([frame.get_column(name) for frame in frames]) for name in columns]
    ).with_columns(_file=file_numbers([frame.height for frame in frames]))


def stacked_samples(samples: list[list[str]]) -> pl.DataFrame:
    """Several files' sample lines, the non-blank ones, as :func:`stacked` rows of ``line``."""
    rows = [(k, s) for k, sample in enumerate(samples) for s in sample if s.strip()]
    return pl.DataFrame(rows, schema={"_file": pl.UInt32, "line": pl.String}, orient="row")


def per_file(rows: pl.DataFrame, files: int, **aggs: pl.Expr) -> list[dict[str, Any] | None]:
    """``aggs`` of each of the ``files`` files of :func:`stacked` ``rows``, in one query:
    a dict each, None for a file without rows.

    >>> per_file(stacked_samples([["a", "bb"], [], ["c"]]), 3, n=pl.len())
    [{'n': 2}, None, {'n': 1}]
    """
    found = rows.group_by("_file").agg(**aggs)
    by_file = {row.pop("_file"): row for row in found.iter_rows(named=True)}
    return [by_file.get(k) for k in range(files)]


def only(where: pl.Expr, expr: pl.Expr) -> pl.Expr:
    """``expr`` on the rows ``where`` holds, null elsewhere: string functions skip nulls, so
    a regex given this runs only on the rows that can match it.

    >>> import polars as pl
    >>> pl.select(only(pl.lit(False), pl.lit("x"))).item() is None
    True
    """
    return pl.when(where).then(expr)


def level_from(expr: pl.Expr, mapping: dict[str, str]) -> pl.Expr:
    """Map a program's level words (case-insensitive) onto our five levels; others null.

    >>> import polars as pl
    >>> pl.select(level_from(pl.lit("Warning"), {"warning": "warning"})).item()
    'warning'
    """
    return (
        expr.str.to_lowercase()
        .replace_strict({k.lower(): v for k, v in mapping.items()}, default=None)
        .cast(LEVEL)
    )


def join_continuations(
    lines: pl.LazyFrame, is_header: pl.Expr, *, keep: tuple[str, ...] = ()
) -> pl.LazyFrame:
    """Fold each line that is not a header into the record above it.

    Headers are flagged, and the running count of headers is the record id, so no Python
    loop runs; only records of more than one line are grouped. Lines before the first
    header come back as records of their own with ``header`` false, for the parser to mark
    unparsed.

    Returns one row per record with ``line``, ``end_line``, ``header`` and ``text`` (the
    lines joined with ``\\n``); the other line columns, and the parser's own columns named
    in ``keep``, are taken from the first line. The span runs from the least line to the
    greatest: lines a collector listed newest first are read in reverse
    (:func:`parsers.wrappers.peel`).
    """
    flagged = lines.with_columns(header=is_header.fill_null(False))
    flagged = flagged.with_columns(record=pl.col("header").cast(pl.UInt32).cum_sum())
    alone = (pl.col("record") != pl.col("record").shift(-1)).fill_null(True) & (
        pl.col("record") != pl.col("record").shift(1)
    ).fill_null(True)
    flagged = flagged.with_columns(alone=alone | (pl.col("record") == 0))
    others = [c for c in LINE_SCHEMA if c not in ("line", "end_line", "text")] + list(keep)
    single = flagged.filter(pl.col("alone")).select("line", "end_line", "header", "text", *others)
    grouped = (
        flagged.filter(~pl.col("alone"))
        .group_by("record", maintain_order=True)
        .agg(
            pl.col("line").min(),
            pl.col("end_line").max(),
            pl.col("header").first(),
            pl.col("text"),
            *[pl.col(c).first() for c in others],
        )
        # joined as lists after the grouping: str.join inside it costs twice as much
        .with_columns(pl.col("text").list.join("\n"))
        .drop("record")
    )
    # records that share a line (an OTLP batch's) keep one order, run after run
    return pl.concat([single, grouped], how="vertical").sort("line", maintain_order=True)


def json_object(**fields: pl.Expr) -> pl.Expr:
    """A JSON object text from named expressions, leaving out fields that are null.

    >>> import polars as pl
    >>> pl.select(json_object(a=pl.lit("x"), b=pl.lit(None, pl.String))).item()
    '{"a":"x"}'
    """
    parts = [
        pl.when(expr.is_not_null()).then(pl.lit(f'"{name}":') + json_value(expr)).otherwise(None)
        for name, expr in fields.items()
    ]
    return pl.lit("{") + pl.concat_str(parts, separator=",", ignore_nulls=True) + pl.lit("}")


def json_value(expr: pl.Expr) -> pl.Expr:
    """A scalar expression written as JSON: strings quoted and escaped, numbers as they are."""
    return pl.struct(v=expr).struct.json_encode().str.slice(5).str.strip_suffix("}")


#: The time the user says a file's relative ages (``5m``, ``2d``) count back from; null
#: means each file's modification time. Set it with :func:`ages_relative_to`.
REFERENCE_TIME: ContextVar[datetime | None] = ContextVar("reference_time", default=None)
#: The same time (ISO 8601) for the worker processes of a read.
REFERENCE_TIME_ENV = "INCIDENT_TIMELINE_NOW"


@contextmanager
def ages_relative_to(now: datetime | None) -> Iterator[None]:
    """Within the block, relative ages (``kubectl get events``) count back from ``now``
    (a UTC time; naive is read as UTC), here and in the worker processes started in it."""
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    token = REFERENCE_TIME.set(now)
    before = os.environ.pop(REFERENCE_TIME_ENV, None)
    if now is not None:
        os.environ[REFERENCE_TIME_ENV] = now.isoformat()
    try:
        yield
    finally:
        REFERENCE_TIME.reset(token)
        os.environ.pop(REFERENCE_TIME_ENV, None)
        if before is not None:
            os.environ[REFERENCE_TIME_ENV] = before


def reference_time() -> datetime | None:
    """The time relative ages count back from, if the user gave one (see
    :func:`ages_relative_to`)."""
    given = REFERENCE_TIME.get()
    if given is None and os.environ.get(REFERENCE_TIME_ENV):
        given = datetime.fromisoformat(os.environ[REFERENCE_TIME_ENV])
    return given


#: Where the archives of the read under way were unpacked: JSON, each archive's name as
#: its files are shown (``logs/bundle.tar.gz``) to the folder its files lie in, so that a
#: parser that looks beside a file (:func:`local_path`) finds them in worker processes too.
UNPACKED_ENV = "INCIDENT_TIMELINE_UNPACKED"


@contextmanager
def archives_unpacked(folders: dict[str, str]) -> Iterator[None]:
    """Within the block, :func:`local_path` knows where the files of the archives in
    ``folders`` (their shown names to the folders they were unpacked to) lie, here and
    in the worker processes started in it."""
    before = os.environ.pop(UNPACKED_ENV, None)
    if folders:
        os.environ[UNPACKED_ENV] = json.dumps(folders)
    try:
        yield
    finally:
        os.environ.pop(UNPACKED_ENV, None)
        if before is not None:
            os.environ[UNPACKED_ENV] = before


def local_path(path: str) -> str:
    """Where the file a row's ``path`` names lies: a file of an archive
    (``bundle.tar.gz/var/log/x.log``) in the folder it was unpacked to (see
    :func:`archives_unpacked`), any other as it is.

    >>> with archives_unpacked({"b.zip": "/tmp/u/00000", "b.zip/in.tgz": "/tmp/u/00001"}):
    ...     local_path("b.zip/ci/1_build.txt"), local_path("b.zip/in.tgz/x.log")
    ('/tmp/u/00000/ci/1_build.txt', '/tmp/u/00001/x.log')
    """
    folders = os.environ.get(UNPACKED_ENV)
    if not folders:
        return path
    for archive, folder in sorted(json.loads(folders).items(), key=lambda a: -len(a[0])):
        if path == archive or path.startswith(archive + "/"):
            return folder + path[len(archive) :]
    return path


def without_aliases(loader: type) -> type:
    """A PyYAML ``loader`` class that refuses aliases (``*name``) with a YAML error: a few
    of them can stand for billions of values (the "billion laughs"), and no log, event
    list, change log or format file needs them."""
    import yaml

    class NoAliases(loader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not read: write the value out", mark
                )
            return super().compose_node(parent, index)

    return NoAliases


#: A surrogate pair written as JSON escapes, and a lone one.
_PAIR = r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
_LONE = r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}"


def without_lone_surrogates(text: pl.Expr) -> pl.Expr:
    r"""JSON text with each escape of half a surrogate pair (``\udc80``, which Python's
    reader takes and polars' refuses, so that one value would cost the whole line) as
    ``\ufffd``, the replacement character; whole pairs are kept.

    >>> pl.select(without_lone_surrogates(pl.lit(r'{"a":"\udc80 \ud83d\ude00"}'))).item()
    '{"a":"\\ufffd \\ud83d\\ude00"}'
    """
    fixed = (
        text.str.replace_all(_PAIR, "\x02$1$2\x02")
        .str.replace_all(_LONE, r"\ufffd")
        .str.replace_all("\x02([0-9a-fA-F]{4})([0-9a-fA-F]{4})\x02", r"\u$1\u$2")
    )
    return pl.when(text.str.contains(_LONE)).then(fixed).otherwise(text)


def numbered(texts: list[str], path: str = "") -> pl.DataFrame:
    """Lines as the loader numbers them (``line``, ``end_line``, ``text``, ``path``), for
    a sample of a file's first lines.

    >>> numbered(["a", "b"]).row(1)
    (2, 2, 'b', '')
    """
    return pl.DataFrame({"text": texts}, schema={"text": pl.String}).select(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        text=pl.col("text"),
        path=pl.lit(path, pl.String),
    )

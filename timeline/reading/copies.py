"""One program's log read from two places counts once.

A reviewer often has the same log twice in different wrappers: a pod's file from the
node (``/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log``, with the runtime's prefix)
and ``kubectl logs <pod>`` saved beside it (with ``--timestamps`` or without); a log
exported from a log store beside the pod's file; the same file collected twice, the
later copy grown; ``x.log`` beside ``x.log.gz``. Files of the same bytes are read once
already (:func:`timeline.reading.sources.each_copy_once`); these copies differ in their
bytes, and read as they come they double every error count and spike.
:func:`log_copies` finds the rows of such copies so that the loader leaves them out.

**Which files are copies** is decided per pair of *streams*, not per row: a stream is
one file's rows of one program (its source, component and host). Two streams of two
files are copies of one log where:

- they may be one program's: the same source (a klog program a file names no better
  than ``klog`` agrees with any), the same component where both state one, the same
  host where both state one (:func:`~timeline.reading.pods.host_key`); and the paths
  name no two different nodes, namespaces, pods or containers. Two replicas on two
  known hosts (or pods) are never copies, however alike their lines;
- their paths may name one log: they name the same pod and container, or one names
  its pod and the other's path says that pod's name too (``kubectl logs
  kube-proxy-x7k2p > kube-proxy-x7k2p.txt`` beside the pod's file), or the rows of both
  state their host, or they sit in one folder. Two folders that name no owner
  (``node-1/``, ``node-2/``) may be two hosts' logs, as for files of the same bytes,
  and a dump that names no pod may be any replica's;
- their times overlap, and over the time they share their rows agree record for
  record: at least :data:`COPY_SHARE` of the rows of the side with fewer rows in that
  time repeat a row of the other, and at least :data:`COPY_MIN_ROWS` do. Two unrelated
  logs may share a few lines (two replicas logging ``Sync failed`` in one second, their
  hosts not stated); they do not share most of them, while a copy shares all but the
  lines its wrapper lost. A log of fewer lines than that is not taken for a copy.

A row of one stream **repeats** a row of the other when they have the same time and
the same message. Multiplicity counts: a program may write one line twice in one
instant, so of each time and message the copies together keep as many rows as the
stream with most of them has, never their sum; rows of one file are never compared.

Of two copies the one that says most stays whole: the one whose rows state their host,
then one that names its program, then the one with more rows (the later, grown copy),
then the one whose path says most of its owner. The other loses the rows it repeats and
keeps the rest (the lines before or after the time they share).

Rows without a time are left as they are: CoreDNS writes no time of its own, only the
runtime's prefix does, so a ``kubectl logs`` dump of CoreDNS has rows of no time that
nothing can match. Only ``log`` rows are compared; records (events, CI jobs, changes)
have their own reduce (:mod:`timeline.reading.duplicates`).

**Cost**: one pass over the log rows' file, source, component, host and time for the
streams' spans (a group-by of a few columns), candidate pairs from those spans, and the
times and message hashes of the rows of candidate files only. Files of known, different
hosts (most of a big input) never meet.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from parsers.layouts import hints_from_path
from timeline.reading.duplicates import DUPLICATE_SCHEMA
from timeline.reading.pods import host_key
from timeline.reading.sources import folder_of, same_owner, says_more

__all__ = [
    "COPY_MIN_ROWS",
    "COPY_SCHEMA",
    "COPY_SHARE",
    "GENERIC_SOURCES",
    "LOG_RECORD",
    "log_copies",
]

#: The share of the shared time's rows (of the side with fewer) that must repeat the
#: other side's for two streams to be copies: a copy's wrapper may lose a line or two (a
#: cut line, a line the export dropped), two logs that merely look alike share far less.
COPY_SHARE = 0.9
#: The fewest rows two streams must share to be copies: a line or two in common is how
#: two replicas look, not a copy.
COPY_MIN_ROWS = 3
#: Sources that stand for any program of their format: a klog file whose name says no
#: more is read as ``klog``.
GENERIC_SOURCES = frozenset({"klog"})
#: What a left-out log row is called where it is reported.
LOG_RECORD = "log line"

#: The most rows a join of every stream's rows with every other stream's of the same time
#: and message may make at once: where many files hold one log (a folder copied a dozen
#: times), those pairs grow with the square of the copies, so they are made in parts, a
#: share of the times and messages (by hash) at a time.
PAIRED_ROWS_AT_ONCE = 4_000_000

_STREAM = ["file", "source", "component", "host"]
#: The rows left out, as :func:`log_copies` gives them.
COPY_SCHEMA = {**DUPLICATE_SCHEMA, "ts": pl.Datetime("us", "UTC")}


def log_copies(rows: pl.LazyFrame, lines: Mapping[str, int] | None = None) -> pl.DataFrame:
    """The log rows of ``rows`` (event frame columns) that repeat another file's copy of
    the same log (see the module), as :data:`~timeline.reading.duplicates.DUPLICATE_SCHEMA`
    with ``record`` :data:`LOG_RECORD` and the row's ``ts``, which with its file, line
    and message tells it among the rows of a line: each with the file and line of the
    row kept in its place, and ``end_line`` the line before the file's next row
    (``lines``, each file's line count, ends the last one), so that its continuation
    lines go with it.

    >>> from timeline.schema import empty
    >>> log_copies(empty().lazy()).height
    0
    """
    logs = rows.filter((pl.col("kind") == "log") & pl.col("ts").is_not_null())
    streams = (
        logs.group_by(_STREAM)
        .agg(_first=pl.col("ts").min(), _last=pl.col("ts").max(), _rows=pl.len())
        .collect()
    )
    pairs = _candidates(streams)
    if pairs.height == 0:
        return pl.DataFrame(schema=COPY_SCHEMA)
    files = pl.concat([pairs["file"], pairs["file_o"]]).unique().implode()
    # streams told apart by a hash of their names: a join on one number, not four texts
    stream_key = pl.struct(_STREAM).hash()
    keyed = (
        logs.filter(pl.col("file").is_in(files))
        .select("ts", "line", _k=stream_key, _h=pl.col("message").hash())
        .collect()
        .join(streams.select("_s", _k=stream_key), on="_k")
        .select("_s", "ts", "_h", "line")
    )
    pairs = _sharing(pairs, keyed)
    if pairs.height == 0:
        return pl.DataFrame(schema=COPY_SCHEMA)
    met = pl.concat([pairs["_s"], pairs["_s_o"]]).unique().implode()
    counts = keyed.filter(pl.col("_s").is_in(met)).group_by("_s", "ts", "_h").agg(_n=pl.len())
    copies = _copies(pairs, counts)
    if copies.height == 0:
        return pl.DataFrame(schema=COPY_SCHEMA)
    dropped = _dropped(copies, counts, keyed)
    return _reported(dropped, streams, rows, lines or {})


def _candidates(streams: pl.DataFrame) -> pl.DataFrame:
    """Pairs of streams (``_s`` < ``_s_o`` by rank, better first) that may be copies by
    what their summaries say: one program, hosts and paths that may be one owner's, and
    times that overlap. ``_s`` is each stream's rank (the better copy first)."""
    hints = {file: hints_from_path(file) for file in streams["file"].unique().to_list()}
    generic = pl.col("source").is_in(list(GENERIC_SOURCES))
    order = sorted(
        range(streams.height),
        key=lambda i: (
            streams["host"][i] is None,
            streams["source"][i] in GENERIC_SOURCES,
            -streams["_rows"][i],
            says_more(streams["file"][i], hints[streams["file"][i]]),
        ),
    )
    rank = [0] * len(order)
    for place, i in enumerate(order):
        rank[i] = place
    streams.insert_column(0, pl.Series("_s", rank, dtype=pl.UInt32))
    mine = streams.with_columns(_family=pl.when(generic).then(None).otherwise("source"))
    theirs = mine.rename({c: f"{c}_o" for c in mine.columns})
    # a named program meets its own; a stream of a generic source meets every other
    named = mine.join(theirs, left_on="_family", right_on="_family_o")
    loose = pl.concat(
        [
            mine.filter(generic).join(theirs, how="cross"),
            mine.join(theirs.filter(pl.col("_family_o").is_null()), how="cross"),
        ],
        how="diagonal_relaxed",
    )

    def agree(column: str) -> pl.Expr:
        a, b = pl.col(column), pl.col(f"{column}_o")
        return a.is_null() | b.is_null() | (a == b)

    pairs = (
        pl.concat([named.drop("_family_o", strict=False), loose], how="diagonal_relaxed")
        .filter(
            (pl.col("_s") < pl.col("_s_o"))
            & (pl.col("file") != pl.col("file_o"))
            & agree("component")
            & (
                pl.col("host").is_null()
                | pl.col("host_o").is_null()
                | (host_key(pl.col("host")) == host_key(pl.col("host_o")))
            )
            & (pl.col("_first") <= pl.col("_last_o"))
            & (pl.col("_first_o") <= pl.col("_last"))
        )
        .unique(["_s", "_s_o"])
    )
    if pairs.height == 0:
        return pairs
    places = [
        _one_log(a, b, hints, stated)
        for a, b, stated in zip(
            pairs["file"],
            pairs["file_o"],
            (pairs["host"].is_not_null() & pairs["host_o"].is_not_null()),
            strict=True,
        )
    ]
    return pairs.filter(pl.Series(places, dtype=pl.Boolean)).select(
        "_s",
        "_s_o",
        "file",
        "file_o",
        _lo=pl.max_horizontal("_first", "_first_o"),
        _hi=pl.min_horizontal("_last", "_last_o"),
    )


def _one_log(one: str, other: str, hints: dict, stated: bool) -> bool:
    """Whether the paths of two files may hold one log (see the module): no part of
    their owners differs, and they name the same pod and container, or one names its
    pod and the other's path says it too, or their rows state a host, or they sit in
    one folder."""
    a, b = hints[one], hints[other]
    if not same_owner(a, b):
        return False
    if a.pod and a.container and (a.pod, a.container) == (b.pod, b.container):
        return True
    if stated or folder_of(one) == folder_of(other):
        return True
    return bool(
        (a.pod and not b.pod and a.pod.lower() in other.lower())
        or (b.pod and not a.pod and b.pod.lower() in one.lower())
    )


def _sharing(pairs: pl.DataFrame, keyed: pl.DataFrame) -> pl.DataFrame:
    """The candidate pairs that share at least :data:`COPY_MIN_ROWS` rows, with how many
    (``_shared``, multiplicity counted: the fewer of the two streams' rows of each time
    and message). Only the rows whose time and message occur more than once are looked
    at, so that this costs what the rows that agree cost, not the pairs times their rows
    (many files of one program in one folder are each other's candidates)."""
    met = keyed.filter(pl.len().over("ts", "_h") > 1).group_by("_s", "ts", "_h").agg(_n=pl.len())
    wanted = pairs.select("_s", "_s_o")
    shared = pl.concat(
        [
            part.join(part, on=["ts", "_h"], suffix="_o")
            .filter(pl.col("_s") < pl.col("_s_o"))
            .join(wanted, on=["_s", "_s_o"], how="semi")
            .group_by("_s", "_s_o")
            .agg(_shared=pl.min_horizontal("_n", "_n_o").sum())
            for part in _in_parts(
                met, met.group_by("ts", "_h").agg(_n=pl.len().cast(pl.Int64) ** 2)
            )
        ]
    )
    shared = (
        shared.group_by("_s", "_s_o")
        .agg(pl.col("_shared").sum())
        .filter(pl.col("_shared") >= COPY_MIN_ROWS)
    )
    return pairs.join(shared, on=["_s", "_s_o"])


def _in_parts(rows: pl.DataFrame, paired: pl.DataFrame) -> list[pl.DataFrame]:
    """``rows`` cut by the hash of their time and message into as many parts as keep each
    part's pairs (``paired``: how many rows each time and message pairs up to) under
    :data:`PAIRED_ROWS_AT_ONCE`; the rows of one time and message stay in one part."""
    total = paired.get_column("_n").sum() or 0
    parts = max(1, -(-int(total) // PAIRED_ROWS_AT_ONCE))
    if parts == 1:
        return [rows]
    which = pl.struct("ts", "_h").hash() % parts
    return rows.with_columns(_part=which).partition_by("_part", include_key=False)


def _copies(pairs: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    """The pairs of :func:`_sharing` (``_s`` better, ``_s_o`` worse) whose rows agree
    record for record over the time they share (:data:`COPY_SHARE`)."""
    # rows in the shared time from each stream's running count, not row by row: a
    # stream may meet many others
    running = counts.sort("_s", "ts").with_columns(_c=pl.col("_n").cum_sum().over("_s"))

    def upto(side: str, at: pl.Expr) -> pl.DataFrame:
        bounds = pairs.select("_s", "_s_o", _side=side, ts=at).sort("ts")
        found = bounds.join_asof(
            running.select(_side="_s", ts="ts", _c="_c").sort("ts"),
            on="ts",
            by="_side",
            check_sortedness=False,
        )
        return found.select("_s", "_s_o", pl.col("_c").fill_null(0))

    def within(side: str) -> pl.DataFrame:
        before = pl.col("_lo") - pl.duration(microseconds=1)
        return (
            upto(side, pl.col("_hi"))
            .join(upto(side, before), on=["_s", "_s_o"], suffix="_lo")
            .select("_s", "_s_o", _in=pl.col("_c") - pl.col("_c_lo"))
        )

    sides = within("_s").join(within("_s_o"), on=["_s", "_s_o"], suffix="_o")
    return (
        pairs.join(sides, on=["_s", "_s_o"])
        .filter(pl.col("_shared") >= COPY_SHARE * pl.min_horizontal("_in", "_in_o"))
        .select("_s", "_s_o")
    )


def _dropped(copies: pl.DataFrame, counts: pl.DataFrame, keyed: pl.DataFrame) -> pl.DataFrame:
    """The rows left out (``_s``, ``line``, ``ts``, ``_h``, ``_of``: the better stream,
    ``of_line``): of each time and message, a stream leaves out as many of its rows
    (the first ones) as the better copy with most of them has, each with that copy's
    row of the same place among them."""
    better_of = copies.rename({"_s": "_of", "_s_o": "_s"})
    # each of a stream's rows meets each better copy: made in parts, as in :func:`_sharing`
    fan = better_of.group_by("_s").agg(_fan=pl.len())
    paired = counts.join(fan, on="_s").select(_n="_fan")
    better = pl.concat(
        [
            better_of.join(part, on="_s")
            .join(part.rename({"_s": "_of", "_n": "_n_of"}), on=["_of", "ts", "_h"])
            .sort("_n_of", "_of", descending=[True, False])
            .group_by("_s", "ts", "_h", maintain_order=True)
            .agg(pl.col("_of").first(), _most=pl.col("_n_of").first())
            for part in _in_parts(counts, paired)
        ]
    )
    placed = keyed.sort("_s", "ts", "_h", "line").with_columns(
        _k=pl.int_range(pl.len(), dtype=pl.UInt32).over("_s", "ts", "_h")
    )
    left_out = placed.join(better, on=["_s", "ts", "_h"]).filter(pl.col("_k") < pl.col("_most"))
    return left_out.join(
        placed.select(_of="_s", ts="ts", _h="_h", _k="_k", of_line="line"),
        on=["_of", "ts", "_h", "_k"],
    ).select("_s", "line", "ts", "_h", "_of", "of_line")


def _reported(
    dropped: pl.DataFrame, streams: pl.DataFrame, rows: pl.LazyFrame, lines: Mapping[str, int]
) -> pl.DataFrame:
    """The rows left out as :data:`DUPLICATE_SCHEMA` with their ``ts`` and message (read
    again for these rows only), each ending on the line before its file's next row."""
    named = dropped.join(streams.select("_s", "file"), on="_s").join(
        streams.select(_of="_s", of_file="file"), on="_of"
    )
    files = named["file"].unique().implode()
    keys = ["file", "line", "ts", "_h"]
    said = (
        rows.filter((pl.col("kind") == "log") & pl.col("file").is_in(files))
        .select("file", "line", "ts", "message", _h=pl.col("message").hash())
        .unique(keys)
        .collect()
    )
    named = named.join(said.cast({"line": named.schema["line"]}), on=keys, how="left")
    ends = pl.DataFrame(
        {"file": list(lines), "_lines": list(lines.values())},
        schema={"file": pl.String, "_lines": pl.Int64},
    )
    starts = (
        rows.filter(pl.col("file").is_in(files))
        .select("file", "line")
        .unique()
        .collect()
        .sort("file", "line")
        .join(ends, on="file", how="left")
        .with_columns(
            end_line=pl.col("line")
            .shift(-1)
            .over("file")
            .cast(pl.Int64)
            .sub(1)
            .fill_null(pl.col("_lines"))
            .fill_null(pl.col("line").cast(pl.Int64))
        )
        .select("file", "line", "end_line")
    )
    return (
        named.join(starts, on=["file", "line"], how="left")
        .with_columns(
            end_line=pl.max_horizontal(pl.col("line").cast(pl.Int64), "end_line"),
            kind=pl.lit("log"),
            record=pl.lit(LOG_RECORD),
        )
        .sort("file", "line")
        .select(list(COPY_SCHEMA))
        .cast(COPY_SCHEMA)
    )

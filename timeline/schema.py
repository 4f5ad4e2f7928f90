"""The event frame: one row per log record, change or CI job, on one UTC clock.

Its column names, types and meanings are a contract: parsers produce them, everything
after the loader reads them. ``validate`` checks a frame against it.
"""

from __future__ import annotations

import polars as pl

from parsers.common import KIND, KINDS, LEVEL, LEVELS

__all__ = [
    "EVENT_SCHEMA",
    "KIND",
    "KINDS",
    "LEVEL",
    "LEVELS",
    "TIME_ORDER",
    "empty",
    "time_order",
    "validate",
]

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "source": pl.String(),
    "host": pl.String(),
    "component": pl.String(),
    "level": LEVEL,
    "kind": KIND,
    "message": pl.String(),
    "template": pl.String(),
    "attrs": pl.String(),
    "file": pl.String(),
    "line": pl.UInt32(),
}

#: The order of the event frame's rows: time, then file, line and kind breaking ties (a
#: change a log line tells sits beside that line), so that one input always gives one
#: frame.
TIME_ORDER = ["ts", "file", "line", "kind"]


def time_order() -> list[pl.Expr]:
    """:data:`TIME_ORDER` as sort keys that give the same order faster: the file as its
    place among the frame's distinct file names (a binary search in them). To sort,
    polars encodes every key of every row, and a path of a hundred bytes costs more than
    the other keys together; a frame has few distinct files.

    >>> frame = pl.DataFrame({"ts": [2, 1, 1], "file": ["b.log", "b.log", "a.log"],
    ...     "line": [1, 2, 9], "kind": ["log"] * 3})
    >>> frame.sort(time_order())["line"].to_list()
    [9, 2, 1]
    """
    file = pl.col("file")
    names = file.unique().drop_nulls().sort()
    place = pl.when(file.is_not_null()).then(names.search_sorted(file))
    return [pl.col("ts"), place, pl.col("line"), pl.col("kind")]


def empty() -> pl.DataFrame:
    """An event frame with no rows."""
    return pl.DataFrame(schema=EVENT_SCHEMA)


def validate(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` if it has exactly the event columns with their types, else raise.

    >>> validate(empty()).columns[:3]
    ['ts', 'source', 'host']
    """
    got = dict(frame.schema)
    if list(got) != list(EVENT_SCHEMA):
        raise ValueError(f"event frame columns are {list(got)}, expected {list(EVENT_SCHEMA)}")
    wrong = {k: (str(got[k]), str(v)) for k, v in EVENT_SCHEMA.items() if got[k] != v}
    if wrong:
        raise ValueError(f"event frame columns of the wrong type (got, expected): {wrong}")
    return frame

"""The event frame as one file (Parquet, CSV or JSON lines) in time order.

Sorting the whole store at once holds every row in memory (`timeline parse` of the
3.7 million lines of the scale-8 sample to one Parquet file peaked at 2.7 GB). The rows
are written instead a window of time at a time: the count of rows per minute (a small
table) cuts the span into windows of about ``ROWS_PER_WINDOW`` rows, and each window is
read from the store, sorted and appended (0.9 GB at scale 8). Memory follows a window;
the store is scanned once per window, which costs time on very large stores (an event
store folder, ``-o events/``, is written without this pass). Rows without a time come
last, in file and line order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from timeline.outputs.safe import csv_safe
from timeline.schema import time_order

#: Rows sorted and written at a time, about.
ROWS_PER_WINDOW = 250_000

SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")


def windows(events: pl.LazyFrame, rows: int = ROWS_PER_WINDOW) -> list[pl.Expr]:
    """Filters that cut the timed rows into windows of about ``rows`` each, in time
    order, then the rows without a time."""
    ts = pl.col("ts")
    starts = (
        events.filter(ts.is_not_null())
        .group_by(minute=ts.dt.truncate("1m"))
        .agg(n=pl.len())
        .sort("minute")
        .with_columns(window=(pl.col("n").cum_sum() - pl.col("n")) // rows)
        .group_by("window")
        .agg(pl.col("minute").min())
        .sort("window")
        .collect(engine="streaming")["minute"]
        .to_list()
    )
    ends = [*starts[1:], None] if starts else []
    timed = [
        (ts >= lo) & (ts < hi) if hi is not None else ts >= lo
        for lo, hi in zip(starts, ends, strict=True)
    ]
    return [*timed, ts.is_null()]


def in_time_order(events: pl.LazyFrame, rows: int = ROWS_PER_WINDOW) -> Iterator[pl.DataFrame]:
    """The rows of ``events`` in time order (:data:`timeline.schema.TIME_ORDER`), a
    window at a time."""
    for window in windows(events, rows):
        yield events.filter(window).sort(time_order()).collect(engine="in-memory")


def write_events(
    events: pl.LazyFrame, path: Path, *, suffix: str | None = None, rows: int = ROWS_PER_WINDOW
) -> None:
    """Write ``events`` to ``path`` in time order, in the format ``suffix`` names (the
    path's own by default)."""
    suffix = (suffix or path.suffix).lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"cannot write {path.name}: use one of {', '.join(SUFFIXES)}")
    frames = in_time_order(events, rows)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        writer = None
        try:
            for frame in frames:
                table = frame.to_arrow()
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            events.clear().collect().write_parquet(path)
        return
    with open(path, "wb") as handle:
        for n, frame in enumerate(frames):
            if suffix == ".csv":
                csv_safe(frame).write_csv(handle, include_header=n == 0)
            else:
                frame.write_ndjson(handle)

"""Bytes to numbered lines: one polars column, split in Rust, with the sample that format
detection looks at."""

from __future__ import annotations

import polars as pl

#: Lines looked at to recognise a runtime prefix and a format.
SAMPLE_LINES = 200


def sample_lines(text: str) -> list[str]:
    return text[: 1 << 20].split("\n", SAMPLE_LINES)[:SAMPLE_LINES]


def split_lines(data: bytes, path: str) -> tuple[pl.DataFrame, str | None]:
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

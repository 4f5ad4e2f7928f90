"""Bytes to numbered lines: one polars column, split in Rust, with the sample that format
detection looks at."""

from __future__ import annotations

import polars as pl

from parsers.common import file_numbers
from parsers.registry import SAMPLE_LINES
from timeline.reading.sources import Cut, shown_name


def sample_lines(text: str) -> list[str]:
    return text[: 1 << 20].split("\n", SAMPLE_LINES)[:SAMPLE_LINES]


#: First bytes by which polars takes bytes for compressed data and inflates them: gzip,
#: zlib (``x`` and a second byte) and zstd. Text that merely starts so is text.
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
_COMPRESSED_MAGIC += (b"\x28\xb5\x2f\xfd",)


def _read_lines(data: bytes) -> pl.DataFrame:
    r"""``pl.read_lines`` of bytes that are always read as they are: bytes that begin like
    compressed data (a file whose first line starts ``x^``) get a newline before them, and
    the empty first line it makes is dropped.

    >>> _read_lines(b"x\x01\x02\x01\nnext")["text"].to_list()
    ['x\x01\x02\x01', 'next']
    """
    if data.startswith(_COMPRESSED_MAGIC):
        return pl.read_lines(b"\n" + data, name="text").slice(1)
    return pl.read_lines(data, name="text")


def split_lines(data: bytes, path: str) -> tuple[pl.DataFrame, str | None]:
    """Numbered lines of ``data`` in one column, split in Rust (no Python loop over lines),
    and a note when the bytes were not valid UTF-8."""
    problem = None
    try:
        lines = _read_lines(data)
    except pl.exceptions.ComputeError:
        problem = "not valid UTF-8: undecodable bytes shown as \ufffd"
        lines = _read_lines(data.decode("utf-8", errors="replace").encode())
    lines = lines.select(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        text=pl.col("text"),
        path=pl.lit(shown_name(path)),
    )
    return lines, problem


def split_many(datas: list[bytes], paths: list[str]) -> list[tuple[pl.DataFrame, str | None]]:
    """:func:`split_lines` of several files' bytes in one query: for a small file the
    fixed cost of a query, not its lines, is what splitting costs. The bytes are joined
    (a newline added to a file that does not end with one) and the lines handed back by
    each file's count of them; if any file is not valid UTF-8, each is split on its own."""
    counts = [d.count(b"\n") + (1 if d and not d.endswith(b"\n") else 0) for d in datas]
    joined = b"".join(d if not d or d.endswith(b"\n") else d + b"\n" for d in datas)
    try:
        text = _read_lines(joined)
    except pl.exceptions.ComputeError:
        text = None
    if text is None or text.height != sum(counts):
        return [split_lines(d, p) for d, p in zip(datas, paths, strict=True)]
    owner = file_numbers(counts)
    names = pl.Series([shown_name(p) for p in paths], dtype=pl.String)
    lines = text.select(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over(owner),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over(owner),
        text=pl.col("text"),
        path=names.gather(owner),
    )
    out, start = [], 0
    for count in counts:
        out.append((lines.slice(start, count), None))
        start += count
    return out


#: The reason of a line cut while reading, as the warnings give it.
CUT_REASON = "line is {length:,} bytes long; kept the first {kept:,}"
#: What tells a cut line's warning from the others'.
CUT_PATTERN = r"^line is [0-9,]+ bytes long; kept the first "


def cut_notes(cuts: list[Cut], path: str, *, kept: int) -> pl.DataFrame:
    """One warning row per line cut to ``kept`` bytes while reading: its number, how long
    it was, and its first bytes (the loader's warning columns)."""
    return pl.DataFrame(
        {
            "file": [shown_name(path)] * len(cuts),
            "line": [c.line for c in cuts],
            "end_line": [c.line for c in cuts],
            "unparsed": [False] * len(cuts),
            "reason": [CUT_REASON.format(length=c.length, kept=kept) for c in cuts],
            "text": [c.head.decode("utf-8", "replace") for c in cuts],
        },
        schema={
            "file": pl.String,
            "line": pl.UInt32,
            "end_line": pl.UInt32,
            "unparsed": pl.Boolean,
            "reason": pl.String,
            "text": pl.String,
        },
    )

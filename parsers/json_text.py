"""JSON as people paste it, brought to one compact object a line for the JSON parsers.

Programs write JSON lines; people paste them pretty-printed over many lines (a ticket, a
``kubectl ... -o json``, ``journalctl -o json-pretty``), as an array, as a stream of objects
one after another, with any indentation, or as RFC 7464 ``json-seq`` (each record after an
ASCII record separator, ``journalctl -o json-seq``). :func:`compact_lines` turns any of
these into one row per item whose ``text`` is the item as compact JSON (keys in the order
written) and whose ``line``..``end_line`` span covers the lines it was written on, so a
parser that reads JSON lines reads them all the same. Lines that are JSON lines already
pass through untouched, so the usual case costs one check.

This module registers no parser.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Collection

import polars as pl

from parsers.common import LINE_SCHEMA, without_lone_surrogates
from parsers.jobs import walk_json

#: The record separator ``json-seq`` writes before each record.
RECORD_SEPARATOR = "\x1e"
#: Lists whose members are the items: ``{"kind": "EventList", "items": [...]}``.
LIST_KEYS = ("items",)


def is_pasted(sample: list[str]) -> bool:
    """Whether ``sample`` is JSON that is not one whole object a line: pretty-printed,
    an array, or ``json-seq``.

    >>> is_pasted(["{", '  "a": 1', "}"]), is_pasted(['{"a": 1}', '{"a": 2}'])
    (True, False)
    """
    if any(s.startswith(RECORD_SEPARATOR) for s in sample[:5]):
        return True
    lines = [s.strip().lstrip("\ufeff") for s in sample if s.strip()]
    if not lines:
        return False
    first = lines[0]
    if first.startswith("["):
        return True
    if not first.startswith("{") or _whole_object(first):
        return False
    # a broken first line among JSON lines does not make a pasted document
    whole = sum(_whole_object(line) for line in lines[1:50] if line.startswith("{"))
    return whole < len(lines[1:50]) / 2


def _whole_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        return False


def compact_sample(sample: list[str], list_keys: Collection[str] = LIST_KEYS) -> list[str]:
    """The items of pasted JSON in ``sample`` as compact lines (a cut-off last item is
    left out); other samples as they are.

    >>> compact_sample(["[", '  {"ts": 1,', '   "msg": "up"}', "]"])
    ['{"ts":1,"msg":"up"}']
    """
    if not is_pasted(sample):
        return sample
    text = "\n".join(sample).replace(RECORD_SEPARATOR, " ")
    items, _broken = walk_json(text, list_keys)
    return [_compact(text[start:end]) for start, end, _key in items]


def compact_lines(lines: pl.LazyFrame, list_keys: Collection[str] = LIST_KEYS) -> pl.LazyFrame:
    """``lines`` with pasted JSON turned into one compact item a row (see the module
    notes). Each item takes the line columns of its first line; its span runs to the line
    before the next item (the first from line 1, the last to the last line), so brackets
    and blank lines belong to an item. Where the JSON breaks, the lines from the item it
    breaks in on stay as they are, for the parser to call unparsed."""
    frame = lines.with_columns(text=without_lone_surrogates(pl.col("text"))).collect()
    sample = frame["text"].head(50).to_list()
    if frame.height == 0:
        return frame.lazy()
    if not is_pasted(sample):
        return _lists_expanded(frame, list_keys).lazy()
    texts = frame["text"].to_list()
    body = "\n".join(texts).replace(RECORD_SEPARATOR, " ")
    starts = [0]
    for piece in texts[:-1]:
        starts.append(starts[-1] + len(piece) + 1)
    items, broken = walk_json(body, list_keys)
    if not items:
        return frame.lazy()
    index_of = [max(bisect.bisect_right(starts, start) - 1, 0) for start, _end, _key in items]
    stop = len(texts) if broken is None else bisect.bisect_right(starts, broken[0]) - 1
    ends = [*index_of[1:], stop]
    ends = [max(end - 1, first) for first, end in zip(index_of, ends, strict=True)]
    index_of[0] = 0
    numbers = frame["line"]
    end_numbers = frame["end_line"]
    others = [c for c in LINE_SCHEMA if c not in ("line", "end_line", "text")]
    taken = frame[index_of].select(others)
    compacted = taken.with_columns(
        line=numbers.gather(index_of),
        end_line=end_numbers.gather(ends),
        text=pl.Series([_compact(body[s:e]) for s, e, _k in items], dtype=pl.String),
    ).select(list(LINE_SCHEMA))
    rest = frame.slice(stop).select(list(LINE_SCHEMA)) if broken is not None else None
    return (pl.concat([compacted, rest]) if rest is not None else compacted).lazy()


def _lists_expanded(frame: pl.DataFrame, list_keys: Collection[str]) -> pl.DataFrame:
    """JSON lines with each line that is a list object (``{"kind": "EventList", "items":
    [...]}``, as an audit webhook batch is saved) replaced by one row per item, all on
    that line. Only lines that name a list key are looked at."""
    text = pl.col("text")
    named = pl.any_horizontal([text.str.contains(f'"{key}"', literal=True) for key in list_keys])
    listed = frame.with_row_index("_at").filter(named)
    if listed.height == 0:
        return frame
    hint = "|".join(f'"{key}"' for key in list_keys)
    listed = listed.filter(text.str.contains(rf"^\s*\{{.*(?:{hint})\s*:\s*\["))
    if listed.height == 0:
        return frame
    expanded = []
    for row in listed.iter_rows(named=True):
        items, broken = walk_json(row["text"], list_keys)
        if broken is not None or not any(key is not None for _s, _e, key in items):
            continue
        texts = [_compact(row["text"][start:end]) for start, end, _key in items]
        expanded.append({**row, "text": texts})
    if not expanded:
        return frame
    swapped = pl.DataFrame(expanded, schema=listed.schema | {"text": pl.List(pl.String)})
    swapped = swapped.explode("text")
    kept = frame.with_row_index("_at").join(swapped.select("_at"), on="_at", how="anti")
    return pl.concat([kept, swapped.select(kept.columns)]).sort("_at").drop("_at")


def _compact(item: str) -> str:
    """One JSON value written without spaces, keys in their order; half a surrogate pair
    (which Python's reader takes and no UTF-8 text can hold) stays an escape."""
    try:
        value = json.loads(item)
    except ValueError:
        return item
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        compact.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"))
    return compact

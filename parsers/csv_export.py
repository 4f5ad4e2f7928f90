r"""CSV exports of log stores, brought to one JSON record a line for the envelopes.

A reviewer is often handed what a log store's UI saved as CSV: Kibana's Discover "Generate
CSV" report (``"@timestamp",message,"kubernetes.pod.name",...``), CloudWatch Logs
Insights' "Download results" (``@timestamp,@message,@logStream,@log``), Grafana's "Download
CSV" of a Loki logs frame (``"Time","Line",...``), a Splunk or Datadog export (``_time``,
``_raw``, ``host``; ``Date``, ``Host``, ``Service``, ``Message``). Such a file is told by
its header row: one of its names is a column that holds the program's line (the
``csv-export`` envelope's message keys, :mod:`parsers.envelopes`). Each record (RFC 4180:
quoted fields may hold commas, doubled quotes and newlines) becomes one row, its ``text``
the record as a JSON object under ``csv`` (``{"csv":{"@timestamp":...,"message":...}}``),
its ``line``..``end_line`` the lines it was written on, so that the envelope reads it as
it reads any collector's record and the line inside goes to the program's parser.

A record's fields are parted by what parts the header's: a comma, or the semicolon a
browser in a locale whose decimal mark is a comma (de-DE, fr-FR) has Grafana write, or a
tab (a TSV download; Excel's "Unicode Text", UTF-16 with a BOM, which the reading
decodes before any of this). The separator is the one that splits the header into the
most names, one of them a line's column, or the one Excel's ``sep=;`` line above it names;
no record is looked at for it.

The lines above the header that the tool writes of its own (a byte order mark, Excel's
``sep=,``) and blank lines are ``marker`` rows; a record that cannot be one of the export
(another number of fields than the header has, a quote never closed) keeps its text and
says why in ``unreadable``, and is counted as unparsed. Records are told apart by the
parity of the quotes before each line's end, and read by polars' CSV reader: no Python
loop over the lines. A value Kibana escaped as a formula (``'-``, ``'@``: its
``escapeFormulaValues``) is read without the quote.

This module registers no parser.
"""

from __future__ import annotations

import csv
import io
import re

import polars as pl

#: The key a record's columns are kept under, so that no program's own JSON is taken for
#: one (:data:`parsers.envelopes.ENVELOPES`' ``csv-export``).
KEY = "csv"

#: Lines an export may write above its header: Excel's separator hint (Grafana's "Download
#: for Excel" before 10.x) and blank lines.
PREAMBLE = r"^(?:sep=.?|\s*)$"

#: A value Kibana prefixed with a quote lest a spreadsheet run it as a formula.
FORMULA_ESCAPED = r"^'([=+\-@\t\r])"

#: Why a record is no record of the export.
NEVER_CLOSED = "CSV export: a quoted field is never closed"
FIELD_COUNT = "CSV export: a record of {} fields under a header of {}"
UNREADABLE = "CSV export: the record could not be read as CSV"


def header(sample: list[str], line_keys: frozenset[str]) -> list[str] | None:
    """The column names of a CSV export whose header is among the first lines of
    ``sample`` (after a BOM and a preamble), or None: at least two names, one of them in
    ``line_keys``.

    >>> header(['\ufeff"@timestamp",message,"kubernetes.pod.name"'], frozenset({"message"}))
    ['@timestamp', 'message', 'kubernetes.pod.name']
    >>> header(['sep=;', '"Time";"Line";"labels"'], frozenset({"Line"}))
    ['Time', 'Line', 'labels']
    >>> header(["id,name,price"], frozenset({"message"})) is None
    True
    """
    found = layout(sample, line_keys)
    return None if found is None else found[1]


#: The separators a header is split by, as the tools write them: the comma, the
#: semicolon of a locale whose decimal mark is a comma, the tab of a TSV download.
SEPARATORS = (",", ";", "\t")
#: Separators Excel's ``sep=`` line may name (one byte each, as the CSV reader takes).
HINTED = (*SEPARATORS, "|")


def layout(sample: list[str], line_keys: frozenset[str]) -> tuple[int, list[str], str] | None:
    """Where the header of a CSV export in ``sample`` is, its names and the separator
    that splits it into them (see the module notes), or None."""
    at = _header_line(sample)
    if at is None or not _may_be_header(sample[at], line_keys):
        return None
    hint = next((_hint(line) for line in sample[:at] if _hint(line)), None)
    best: tuple[int, list[str], str] | None = None
    for separator in (hint,) if hint else SEPARATORS:
        if separator not in sample[at]:
            continue
        names = _names(sample[at], separator)
        if len(names) < 2 or not all(names) or not line_keys.intersection(names):
            continue
        if best is None or len(names) > len(best[1]):
            best = (at, names, separator)
    return best


def _hint(line: str) -> str | None:
    """The separator Excel's ``sep=`` line names, where it is one the reader takes."""
    text = _clean(line)
    return text[4:] if text.startswith("sep=") and text[4:] in HINTED else None


#: The longest header line looked at: a line longer than that is a record (a JSON document
#: on one line), and reading it as CSV would cost what it is long.
MAX_HEADER_CHARS = 8 << 10


def _may_be_header(line: str, line_keys: frozenset[str]) -> bool:
    """Whether ``line`` could be a header, by what costs nothing to look at: short, with a
    separator and the name of a line's column."""
    if len(line) > MAX_HEADER_CHARS or not any(s in line for s in HINTED):
        return False
    return any(key in line for key in line_keys)


def _header_line(sample: list[str]) -> int | None:
    """The index of the first line of ``sample`` that is not the preamble."""
    for k, line in enumerate(sample[:5]):
        text = _clean(line)
        if not re.match(PREAMBLE, text):
            return k
    return None


def _clean(line: str) -> str:
    return line.lstrip("\ufeff").rstrip("\r")


def _names(line: str, separator: str) -> list[str]:
    """The names of a header line parted by ``separator``, formula escapes undone."""
    try:
        names = next(csv.reader([_clean(line)], delimiter=separator))
    except (csv.Error, StopIteration):
        return []
    return [re.sub(FORMULA_ESCAPED, r"\1", n) for n in names]


def records_sample(sample: list[str], line_keys: frozenset[str]) -> list[str]:
    """The records of a CSV export in ``sample`` as JSON lines (a record the sample cuts
    off is left out); other samples as they are."""
    if header(sample, line_keys) is None:
        return sample
    numbered = pl.DataFrame({"text": sample}).with_columns(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32)
    )
    read = records(numbered.with_columns(end_line="line"), line_keys)
    return read.filter(~pl.col("marker") & pl.col("unreadable").is_null())["text"].to_list()


def records(lines: pl.DataFrame, line_keys: frozenset[str]) -> pl.DataFrame:
    """``lines`` of a CSV export as one row a record (see the module notes): the columns
    ``lines`` has, ``text`` a record as JSON, ``marker`` and ``unreadable``."""
    found = layout(lines["text"].head(5).to_list(), line_keys)
    if found is None:
        return lines.with_columns(marker=pl.lit(False), unreadable=pl.lit(None, pl.String))
    at, names, separator = found
    text = pl.col("text").str.strip_prefix("\ufeff").str.strip_suffix("\r")
    frame = lines.with_columns(text).with_row_index("_k")
    above = frame.filter(pl.col("_k") <= at).with_columns(
        marker=pl.lit(True), unreadable=pl.lit(None, pl.String)
    )
    grouped = _grouped(frame.filter(pl.col("_k") > at))
    blank = pl.col("text").str.strip_chars() == ""
    unquoted = pl.col("text").str.replace_all(r'"(?:[^"]|"")*"', "")
    fields = unquoted.str.count_matches(separator, literal=True) + 1
    checked = grouped.with_columns(
        marker=blank,
        unreadable=pl.when(blank)
        .then(None)
        .when(pl.col("_open"))
        .then(pl.lit(NEVER_CLOSED))
        .when(fields != len(names))
        .then(pl.format(FIELD_COUNT, fields, pl.lit(len(names))))
        .otherwise(None),
    )
    good = checked.filter(~pl.col("marker") & pl.col("unreadable").is_null())
    as_json = _as_json(good["text"], names, separator)
    if as_json is None:
        good = good.with_columns(unreadable=pl.lit(UNREADABLE))
    else:
        good = good.with_columns(text=as_json)
    rest = checked.filter(pl.col("marker") | pl.col("unreadable").is_not_null())
    columns = [*lines.columns, "marker", "unreadable"]
    together = pl.concat([f.select(columns) for f in (above, good, rest)])
    return together.sort("line", maintain_order=True)


def _grouped(body: pl.DataFrame) -> pl.DataFrame:
    """The lines of the records one row a record: a record ends at a line where the
    quotes so far are even; ``_open`` where the last one never ends."""
    quotes = pl.col("text").str.count_matches('"', literal=True).cum_sum()
    ends = quotes % 2 == 0
    record = ends.cast(pl.UInt32).cum_sum().shift(1, fill_value=0)
    others = [c for c in body.columns if c not in ("_k", "line", "end_line", "text")]
    return (
        body.with_columns(_r=record, _end=ends)
        .group_by("_r", maintain_order=True)
        .agg(
            pl.col("line").first(),
            pl.col("end_line").last(),
            pl.col("text").str.join("\n"),
            *[pl.col(c).first() for c in others],
            _open=~pl.col("_end").last(),
        )
    )


def _as_json(records: pl.Series, names: list[str], separator: str) -> pl.Series | None:
    """Each record (of as many fields as ``names``, parted by ``separator``) as a JSON
    object of its columns under :data:`KEY`, read by polars' CSV reader; None where it
    reads them otherwise."""
    if records.len() == 0:
        return records
    body = records.str.join("\n").item().encode()
    try:
        read = pl.read_csv(
            io.BytesIO(body),
            has_header=False,
            new_columns=[f"_{k}" for k in range(len(names))],
            infer_schema=False,
            quote_char='"',
            separator=separator,
        )
    except pl.exceptions.PolarsError:
        return None
    if read.height != records.len() or read.width != len(names):
        return None
    unique = dict(zip(read.columns, _unique(names), strict=True))
    read = read.rename(unique).with_columns(pl.all().str.replace(FORMULA_ESCAPED, "$1"))
    encoded = read.select(pl.struct(pl.all()).struct.json_encode()).to_series()
    wrapped = pl.concat_str(pl.lit(f'{{"{KEY}":'), encoded, pl.lit("}"))
    return pl.select(wrapped).to_series().alias("text")


def _unique(names: list[str]) -> list[str]:
    """``names`` with a name that comes again numbered (``host``, ``host_2``)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out

r"""Formats as data: a format file declares a format, and this module makes it a parser.

A format file (TOML, YAML or JSON; the idea is lnav's) says how to read one program's
lines without any Python. It has:

``name``, ``description``, ``source``
    the ``--format`` name, a line for ``timeline formats list``, and the event frame's
    ``source`` (the name if not given).
``source_is_program``
    true for a logging library's format (Go's loggers, Spring Boot), whose lines could be
    any program's: the source is then the program that wrote them, as the line names it
    (``program``), else as the path or a wrapper names its container or unit, else as
    the file's name does (``payments-api.log``), and ``source`` only where nothing names
    one; two programs that log alike are two sources, each with its own series and lane.
``kind``
    ``regex`` (the default), ``json`` (one object a record, pretty-printed or not) or
    ``logfmt`` (``key=value`` pairs, as logrus and Go's slog write them).
``regex``
    one pattern or a list of them, in Rust regex syntax, with named groups: ``ts``,
    ``level``, ``message``, ``host`` and ``component`` fill those columns, ``program`` names
    the program that wrote the line (the row's ``source``, and its ``component`` where
    none is said), any other group goes to ``attrs``. The first pattern that matches a
    line reads it.
``fields``
    for ``json`` and ``logfmt``: the key, or list of keys tried in turn, for ``ts``,
    ``level``, ``message``, ``host``, ``component`` and ``program``. ``json`` keys are JSON paths
    (``a.b``: the key ``b`` of the object under ``a``, or a key named ``a.b`` itself, as
    the Elastic Common Schema writes ``"log.level"``); every field of the object stays in
    ``attrs``.
``time``
    ``format``: one or a list of chrono formats (``%Y-%m-%d %H:%M:%S%.f``), or ``iso8601``,
    ``epoch`` (seconds), ``epoch_ms``, ``epoch_us``, ``epoch_ns``; a format without a year
    gets it from the loader, like klog. ``zone``: ``UTC`` or an offset (``+02:00``) for
    times that state none; else the loader assumes one and says so.
``levels``
    our level (``debug``, ``info``, ``warning``, ``error``, ``critical``) to the words
    the program writes for it; words not given fall back to the common ones (``ERR``,
    ``WARN``, ``fatal``, ``panic``...). ``default_level`` is for records without one.
    ``message_level``: regexes with a ``level`` group, for a level the message itself
    writes, which beats the field's; ``message_level_over``: the field's words it beats
    (all when not given: journald's ``PRIORITY`` 5 to 7 is what a service's stdout gets,
    while the kernel's ``3`` is its own).
``multiline``
    ``continuation``: a regex for lines that continue the record above; or ``join =
    true``: any line no pattern matches continues the record above. Else such a line is
    unparsed.
``distinct_start``
    a regex (in the syntax both Rust and Python read) that matches the first line of a
    record of this format and could match no other format's line: such a line starts a
    record of this format wherever it is found, in another format's file or inside a
    journal, never continuing the record above. Leave it out when the format's lines
    could be another's (``Error: ...``); the format is then read only where a file or a
    stream is its own.
``sniff``
    ``literals``: texts one of which the sample must hold; ``max_score`` (default 0.9):
    the score when every sample line matches, so that a built-in format that is surer wins.
``sample``
    a list of ``{text = "...", expect = {level = "error", ...}, rows = 1}``: the lines as
    the program writes them, and fields the first record must have (``attrs.KEY`` for an
    attribute). ``ts`` is written as :func:`checked_time` shows it.

Samples are checked when a file is loaded (:func:`load_file`; the reader registers the
formats for one read with :func:`parsers.registry.registered`) and by ``timeline formats
check FILE``; a failing sample is a :class:`FormatFileError` that names the file and the
sample. Declared formats run as polars expressions (``str.extract_groups``,
``str.json_path_match``), like the built-in ones: each pattern runs once per line.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from parsers import json_text, registry
from parsers.common import (
    LEVEL,
    LEVELS,
    LINE_SCHEMA,
    PLACEHOLDER_YEAR,
    join_continuations,
    json_object,
    level_from,
    program_of_file,
    records,
    without_aliases,
)
from parsers.registry import Parser, Sample, Score

#: Where the formats that ship with the tool are kept.
BUILT_IN_DIR = Path(__file__).parent / "formats"
#: Endings of format files, and how each is read.
SUFFIXES = (".toml", ".yaml", ".yml", ".json")
#: Named groups that fill columns; any other group goes to ``attrs``.
COLUMNS = ("ts", "level", "message", "host", "component", "program")
KINDS = ("regex", "json", "logfmt")
#: Level words most programs share, used for any word a format's ``levels`` leaves out.
COMMON_LEVELS = {
    "trace": "debug",
    "debug": "debug",
    "dbug": "debug",
    "d": "debug",
    "info": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "i": "info",
    "warn": "warning",
    "warning": "warning",
    "w": "warning",
    "error": "error",
    "err": "error",
    "eror": "error",
    "e": "error",
    "fatal": "critical",
    "panic": "critical",
    "dpanic": "critical",
    "crit": "critical",
    "critical": "critical",
    "alert": "critical",
    "emerg": "critical",
    "emergency": "critical",
    "f": "critical",
}
_EPOCHS = {"epoch": 1e6, "epoch_s": 1e6, "epoch_ms": 1e3, "epoch_us": 1.0, "epoch_ns": 1e-3}
_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_YEAR = re.compile(r"%[YyGCs+]")
_ZONE = re.compile(r"%[#:]?z")
_OFFSET = re.compile(r"^([+-])([0-9]{2}):?([0-9]{2})$")


#: The declared format files of the read under way (``os.pathsep``-separated), so that
#: the worker processes it starts know them too.
FILES_ENV = "INCIDENT_TIMELINE_FORMAT_FILES"


class FormatFileError(ValueError):
    """A format file that cannot be read, or whose samples do not give what they say."""


@dataclass(frozen=True)
class Declared:
    """A format as its file declares it (see the module notes)."""

    name: str
    description: str
    source: str
    source_is_program: bool
    kind: str
    patterns: tuple[str, ...]
    fields: dict[str, tuple[str, ...]]
    time_formats: tuple[str, ...]
    zone_offset_s: int | None
    levels: dict[str, str]
    default_level: str | None
    message_level: tuple[str, ...]
    message_level_over: tuple[str, ...]
    continuation: str | None
    join: bool
    distinct_start: str | None
    literals: tuple[str, ...]
    max_score: float
    samples: tuple[Sample, ...]
    origin: str


# --- reading a format file ---------------------------------------------------------------


def read_file(path: str | os.PathLike[str]) -> dict[str, object]:
    """The raw content of a format file, by its ending."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            return json.loads(text)
        import yaml

        return yaml.load(text, Loader=without_aliases(yaml.SafeLoader))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FormatFileError(f"{path}: cannot read the format file: {exc}") from None
    except Exception as exc:  # yaml's errors are not ValueErrors
        raise FormatFileError(f"{path}: cannot read the format file: {exc}") from None


def declare(content: dict[str, object], origin: str) -> Declared:
    """A :class:`Declared` from a format file's content; errors name ``origin``."""

    def bad(why: str) -> FormatFileError:
        return FormatFileError(f"{origin}: {why}")

    if not isinstance(content, dict):
        raise bad("a format file holds one table (an object) at its top")
    name = content.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        raise bad("'name' must be lower-case letters, digits, '-', '_' or '.'")
    kind = content.get("kind", "regex")
    if kind not in KINDS:
        raise bad(f"'kind' is {kind!r}; it must be one of {', '.join(KINDS)}")
    patterns = _strings(content.get("regex", ()))
    if kind == "regex" and not patterns:
        raise bad("a regex format needs 'regex': one pattern or a list of them")
    for pattern in patterns:
        try:
            pl.select(pl.lit("").str.contains(pattern))
        except pl.exceptions.PolarsError as exc:
            raise bad(f"regex {pattern!r} is not valid: {exc}") from None
    distinct_start = content.get("distinct_start")
    if distinct_start is not None:
        try:
            pl.select(pl.lit("").str.contains(str(distinct_start)))
            re.compile(str(distinct_start))
        except (pl.exceptions.PolarsError, re.error) as exc:
            raise bad(
                f"'distinct_start' {distinct_start!r} must be a regex both Rust and Python "
                f"read: {exc}"
            ) from None
    raw_fields = content.get("fields", {})
    if not isinstance(raw_fields, dict) or not set(raw_fields) <= set(COLUMNS):
        raise bad(f"'fields' maps columns ({', '.join(COLUMNS)}) to keys")
    fields = {column: _strings(keys) for column, keys in raw_fields.items()}
    if kind != "regex" and not fields.get("message"):
        raise bad(f"a {kind} format needs 'fields.message': the key of the message")
    for table in ("levels", "multiline", "sniff"):
        if not isinstance(content.get(table, {}), dict):
            raise bad(f"'{table}' must be a table (an object)")
    time = content.get("time", {})
    time = {"format": time} if isinstance(time, str | list) else time
    if not isinstance(time, dict):
        raise bad("'time' is a time format, a list of them, or a table with 'format'")
    levels = dict(COMMON_LEVELS)
    for level, words in dict(content.get("levels", {})).items():
        if level not in LEVELS:
            raise bad(f"'levels' has {level!r}; levels are {', '.join(LEVELS)}")
        levels.update({word.lower(): level for word in _strings(words)})
    default_level = content.get("default_level")
    if default_level is not None and default_level not in LEVELS:
        raise bad(f"'default_level' must be one of {', '.join(LEVELS)}")
    multiline = dict(content.get("multiline", {}))
    continuation = multiline.get("continuation")
    if continuation is not None:
        try:
            pl.select(pl.lit("").str.contains(str(continuation)))
        except pl.exceptions.PolarsError as exc:
            raise bad(
                f"'multiline.continuation' {continuation!r} is not a valid regex: {exc}"
            ) from None
    sniff = dict(content.get("sniff", {}))
    try:
        max_score = float(sniff.get("max_score", 0.9))
    except (TypeError, ValueError):
        raise bad("'sniff.max_score' must be a number from 0 to 1") from None
    if not 0 <= max_score <= 1:
        raise bad("'sniff.max_score' must be a number from 0 to 1")
    raw_samples = _list(content.get("sample", content.get("samples", ())))
    if not all(isinstance(s, dict) and str(s.get("text") or "").strip() for s in raw_samples):
        raise bad("each 'sample' is a table whose 'text' holds lines as the program writes them")
    samples = tuple(
        Sample(text=str(s["text"]), expect=dict(s.get("expect", {})), rows=s.get("rows"))
        for s in raw_samples
    )
    if not samples:
        raise bad("a format needs at least one 'sample': lines as the program writes them")
    return Declared(
        name=name,
        description=str(content.get("description", f"{name} (declared format)")),
        source=str(content.get("source", name)),
        source_is_program=bool(content.get("source_is_program", False)),
        kind=kind,
        patterns=patterns,
        fields=fields,
        time_formats=_strings(time.get("format", "iso8601")),
        zone_offset_s=_zone_offset(time.get("zone"), bad),
        levels=levels,
        default_level=default_level,
        message_level=_strings(content.get("message_level", ())),
        message_level_over=_strings(content.get("message_level_over", ())),
        continuation=None if continuation is None else str(continuation),
        join=bool(multiline.get("join", False)),
        distinct_start=None if distinct_start is None else str(distinct_start),
        literals=_strings(sniff.get("literals", ())),
        max_score=max_score,
        samples=samples,
        origin=origin,
    )


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in _list(value))


def _list(value: object) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _zone_offset(zone: object, bad) -> int | None:
    if zone is None:
        return None
    if str(zone).upper() in ("UTC", "Z"):
        return 0
    found = _OFFSET.match(str(zone))
    if not found:
        raise bad(f"'time.zone' is {zone!r}: write UTC or an offset such as +02:00")
    sign = -1 if found[1] == "-" else 1
    return sign * (int(found[2]) * 3600 + int(found[3]) * 60)


# --- sniffing -----------------------------------------------------------------------------


def sniff_with(declared: Declared, sample: list[str]) -> Score:
    """The share of the sample's non-blank lines (continuations aside) that are records
    of ``declared``, scaled to its ``max_score``."""
    if declared.kind == "json":
        sample = json_text.compact_sample(sample)
    lines = pl.Series([s for s in sample if s.strip()], dtype=pl.String)
    if lines.len() == 0:
        return Score(0.0, "no non-blank lines to look at")
    if declared.literals and not any(
        lines.str.contains(literal, literal=True).any() for literal in declared.literals
    ):
        return Score(0.0, f"none of {', '.join(map(repr, declared.literals))} in the sample")
    frame = pl.DataFrame({"text": lines})
    flags = frame.select(
        header=_is_record(declared, pl.col("text")),
        continuation=_is_continuation(declared, pl.col("text")),
    )
    counted = flags.filter(~pl.col("continuation") | pl.col("header"))
    if counted.height == 0:
        return Score(0.0, "every line is a continuation line")
    share = float(counted["header"].mean())
    headers = int(counted["header"].sum())
    score = round(declared.max_score * share, 3) if headers else 0.0
    return Score(score, f"{headers} of {counted.height} lines are {declared.name} records")


def _is_record(declared: Declared, text: pl.Expr) -> pl.Expr:
    """Whether a line starts a record of ``declared``."""
    if declared.kind == "regex":
        return pl.any_horizontal([text.str.contains(p) for p in declared.patterns])
    first = declared.fields["message"]
    if declared.kind == "json":
        has = pl.any_horizontal([text.str.json_path_match(f"$.{k}").is_not_null() for k in first])
        return (text.str.starts_with("{") & has).fill_null(False)
    keys = [*first, *declared.fields.get("ts", ()), *declared.fields.get("level", ())]
    pairs = "|".join(re.escape(k) for k in keys)
    return text.str.contains(rf"(?:^|\s)(?:{pairs})=")


def _is_continuation(declared: Declared, text: pl.Expr) -> pl.Expr:
    if declared.continuation:
        return text.str.contains(declared.continuation)
    return pl.lit(declared.join)


# --- parsing ------------------------------------------------------------------------------


def parse_with(declared: Declared, lines: pl.LazyFrame) -> pl.LazyFrame:
    """Records from ``lines`` as ``declared`` reads them."""
    if declared.kind == "json":
        lines = json_text.compact_lines(lines)
    text = pl.col("text")
    header = _is_record(declared, text)
    if declared.continuation or declared.join:
        if declared.continuation:
            header = header | ~text.str.contains(declared.continuation)
        joined = join_continuations(lines, header)
    else:
        joined = lines.with_columns(header=header)
    several = pl.col("text").str.contains("\n", literal=True)
    first = pl.when(several).then(pl.col("text").str.extract(r"^([^\n]*)", 1))
    below = pl.when(several).then(pl.col("text").str.extract(r"\n((?s:.*))$", 1))
    rows = joined.with_columns(_first=pl.coalesce(first, pl.col("text")), _below=below)
    if declared.kind == "regex":
        rows, values = _with_groups(rows, declared.patterns, pl.col("_first"), "p")
    else:
        values = _values(declared, pl.col("_first"))
    rows = rows.with_columns(**{f"_{c}": values.get(c, pl.lit(None, pl.String)) for c in COLUMNS})
    ts, offset, year_missing = _time(declared, pl.col("_ts"))
    said = pl.col("_message").fill_null("")
    # a header line that says nothing ("Error:") takes its message from the lines below
    message = (
        pl.when(said.str.strip_chars() == "")
        .then(pl.col("_below").str.strip_chars_start("\n"))
        .otherwise(pl.concat_str(said, pl.format("\n{}", pl.col("_below")), ignore_nulls=True))
    )
    level = level_from(_unquoted(pl.col("_level")).str.strip_chars(), declared.levels)
    if declared.message_level:
        rows, inner = _with_groups(rows, declared.message_level, pl.col("_message"), "ml")
        from_message = level_from(inner["level"], declared.levels)
        if declared.message_level_over:
            field = _unquoted(pl.col("_level")).str.strip_chars()
            over = field.is_null() | field.is_in(list(declared.message_level_over))
            from_message = pl.when(over).then(from_message)
        level = pl.coalesce(from_message, level)
    if declared.default_level:
        level = level.fill_null(pl.lit(declared.default_level).cast(LEVEL))
    named = (
        [pl.col("container"), program_of_file(pl.col("path"))] if declared.source_is_program else []
    )
    source = pl.coalesce(pl.col("_program"), *named, pl.lit(declared.source))
    unparsed = pl.when(~pl.col("header")).then(
        pl.lit(f"not a {declared.name} record and no record above it")
    )
    if declared.kind == "regex":
        # a line that is no continuation, but that no pattern reads either
        read = pl.any_horizontal([pl.col(f"_pm{i}") for i in range(len(declared.patterns))])
        unparsed = unparsed.when(~read).then(pl.lit(f"no {declared.name} pattern reads it"))
    return records(
        rows,
        ts=ts,
        utc_offset_s=pl.when(ts.is_not_null()).then(offset),
        year_missing=year_missing & ts.is_not_null(),
        source=source,
        host=pl.coalesce(pl.col("_host"), pl.col("host")),
        component=pl.coalesce(
            pl.col("_component"), pl.col("_program"), pl.col("container"), source
        ),
        level=pl.when(pl.col("header")).then(level),
        message=pl.when(pl.col("header")).then(message).otherwise(pl.col("text")),
        attrs=pl.when(pl.col("header")).then(_attrs(declared, pl.col("_first"), values)),
        unparsed=unparsed,
    )


def _values(declared: Declared, first: pl.Expr) -> dict[str, pl.Expr]:
    """The text of each column's field in the record's first line (JSON and logfmt)."""
    found = {}
    for column, keys in declared.fields.items():
        if declared.kind == "json":
            found[column] = pl.coalesce([_json_text(first, key) for key in keys])
        else:
            found[column] = pl.coalesce([_logfmt_value(first, key) for key in keys])
    return found


def _with_groups(
    rows: pl.LazyFrame, patterns: tuple[str, ...], text: pl.Expr, prefix: str
) -> tuple[pl.LazyFrame, dict[str, pl.Expr]]:
    """``rows`` with each pattern run once over ``text`` (whether it matches, and its
    groups), and for each group name the expression of its text from the first pattern
    that matches."""
    rows = rows.with_columns(
        **{f"_{prefix}m{i}": text.str.contains(p) for i, p in enumerate(patterns)},
        **{f"_{prefix}g{i}": text.str.extract_groups(p) for i, p in enumerate(patterns)},
    )
    found: dict[str, pl.Expr] = {}
    for i, pattern in enumerate(patterns):
        matched = pl.col(f"_{prefix}m{i}")
        for name in group_names(pattern):
            value = pl.col(f"_{prefix}g{i}").struct.field(name)
            known = found.get(name)
            found[name] = (
                pl.when(matched).then(value) if known is None else known.when(matched).then(value)
            )
    return rows, found


def group_names(pattern: str) -> list[str]:
    r"""The named groups of a regex, in order.

    >>> group_names(r"^(?P<ts>\S+) (?<level>\w+) (?P<pid>[0-9]+)")
    ['ts', 'level', 'pid']
    """
    return _GROUP.findall(pattern)


def _extra_groups(patterns: Iterable[str]) -> list[str]:
    names = [n for p in patterns for n in group_names(p) if n not in COLUMNS]
    return list(dict.fromkeys(names))


def _json_text(document: pl.Expr, key: str) -> pl.Expr:
    """A JSON field's text; a list of bytes (journald's binary ``MESSAGE``) as UTF-8 text.
    A dotted key is a key of that name, else the path of nested keys it spells."""
    value = document.str.json_path_match("$" + "".join(f"['{p}']" for p in key.split(".")))
    if "." in key:
        value = pl.coalesce(document.str.json_path_match(f"$['{key}']"), value)
    return pl.when(value.str.starts_with("[")).then(_bytes_text(value)).otherwise(value)


def _bytes_text(value: pl.Expr) -> pl.Expr:
    """``[72,105]`` as ``Hi``: a JSON array of byte values decoded as UTF-8 text."""

    def decode(series: pl.Series) -> pl.Series:
        out = []
        for item in series.to_list():
            if item is None or not item.startswith("["):
                out.append(item)
                continue
            try:
                values = json.loads(item)
                out.append(bytes(values).decode("utf-8", errors="replace"))
            except (TypeError, ValueError):
                out.append(item)
        return pl.Series(series.name, out, dtype=pl.String)

    return value.map_batches(decode, return_dtype=pl.String)


#: A logfmt value: a Go-quoted string or a run of non-blank characters.
_LOGFMT_VALUE = r'("(?:[^"\\]|\\.)*"|[^\s]*)'


def _logfmt_value(line: pl.Expr, key: str) -> pl.Expr:
    return _unquoted(line.str.extract(rf"(?:^|\s){re.escape(key)}={_LOGFMT_VALUE}", 1))


def _unquoted(value: pl.Expr) -> pl.Expr:
    """A Go-quoted ``"..."`` value without its quotes and escapes; others as they are."""
    inner = value.str.slice(1, value.str.len_chars() - 2)
    unescaped = (
        inner.str.replace_all(r"\\n", "\n")
        .str.replace_all(r'\\"', '"')
        .str.replace_all(r"\\t", "\t")
    )
    quoted = value.str.starts_with('"') & value.str.ends_with('"') & (value.str.len_chars() > 1)
    return pl.when(quoted).then(unescaped).otherwise(value)


def _attrs(declared: Declared, first: pl.Expr, values: dict[str, pl.Expr]) -> pl.Expr:
    if declared.kind == "json":
        return first
    if declared.kind == "logfmt":
        return _logfmt_attrs(first, declared)
    extra = _extra_groups(declared.patterns)
    if not extra:
        return pl.lit("{}")
    return json_object(**{name: values[name] for name in extra})


def _logfmt_attrs(line: pl.Expr, declared: Declared) -> pl.Expr:
    """Every ``key=value`` pair that is not a column's, as a JSON object of strings."""
    taken = {k for keys in declared.fields.values() for k in keys}
    pairs = line.str.extract_all(rf"[A-Za-z_][A-Za-z0-9_.\-/]*={_LOGFMT_VALUE}")
    key = pl.element().str.extract(r"^([^=]+)=", 1)
    value = _unquoted(pl.element().str.extract(r"^[^=]+=((?s:.*))$", 1))
    encoded = pl.struct(k=key, v=value).struct.json_encode()
    kept = pairs.list.eval(
        pl.when(~key.is_in(list(taken))).then(
            encoded.str.replace(r'^\{"k":', "").str.replace(r',"v":', ":").str.strip_suffix("}")
        )
    ).list.drop_nulls()
    return pl.lit("{") + kept.list.join(",") + pl.lit("}")


#: Go's ``time.Time.String()`` (logrus's JSON ``time`` before it took RFC 3339):
#: ``2014-03-10 19:57:38.562264131 -0400 EDT``, read as ISO 8601 with its offset.
GO_TIME_STRING = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9:.]+) ([+-][0-9]{4})(?: [A-Z][A-Za-z]*)?$"


#: ISO 8601 with a space for its ``T`` (Python's ``str(datetime)``, RabbitMQ's
#: ``rfc3339_space``: ``2025-06-17 09:29:00.123456+00:00``)...
SPACED_DATE = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}) "
#: ...and with a comma before its fraction (Python logging's ``asctime``, ISO 8601's
#: other decimal sign: ``2025-06-17 09:29:00,123``).
COMMA_FRACTION = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}),"


def _time(declared: Declared, text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """The record's time as written (naive), its zone offset in seconds, and whether the
    format wrote no year; the first of the declared formats that reads it wins."""
    stated = pl.lit(declared.zone_offset_s, pl.Int32)
    times, offsets, yearless = [], [], []
    text = _unquoted(text).str.strip_chars()
    for fmt in declared.time_formats:
        if fmt in _EPOCHS:
            value = _epoch_micros(text, _EPOCHS[fmt]).cast(pl.Datetime("us"))
            times.append(value)
            offsets.append(pl.when(value.is_not_null()).then(pl.lit(0, pl.Int32)))
            yearless.append(pl.lit(False))
        elif fmt == "iso8601":
            iso = (
                text.str.replace(GO_TIME_STRING, "${1}T${2}${3}")
                .str.replace(SPACED_DATE, "${1}T")
                .str.replace(COMMA_FRACTION, "${1}.")
            )
            zoned = iso.str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.f%#z", time_unit="us", time_zone="UTC", strict=False
            )
            naive = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
            times.append(pl.coalesce(zoned.dt.replace_time_zone(None), naive))
            offsets.append(pl.when(zoned.is_not_null()).then(pl.lit(0, pl.Int32)).otherwise(stated))
            yearless.append(pl.lit(False))
        elif _ZONE.search(fmt):
            zoned = text.str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False)
            times.append(zoned.dt.replace_time_zone(None))
            offsets.append(pl.when(zoned.is_not_null()).then(pl.lit(0, pl.Int32)))
            yearless.append(pl.lit(False))
        elif _YEAR.search(fmt):
            times.append(text.str.to_datetime(fmt, time_unit="us", strict=False))
            offsets.append(stated)
            yearless.append(pl.lit(False))
        else:
            with_year = pl.lit(f"{PLACEHOLDER_YEAR} ") + text
            times.append(with_year.str.to_datetime(f"%Y {fmt}", time_unit="us", strict=False))
            offsets.append(stated)
            yearless.append(pl.lit(True))
    ts = pl.coalesce(times)
    offset = _first_of(times, offsets)
    missing = _first_of(times, yearless)
    return ts, offset, missing.fill_null(False)


def _epoch_micros(text: pl.Expr, scale: float) -> pl.Expr:
    """Microseconds since the epoch of a decimal count of seconds (``scale`` 1e6),
    milliseconds (1e3), microseconds (1) or nanoseconds (1e-3), to the microsecond: the
    whole part is read as an integer and only the fraction as a float, as a float64 of
    the whole count (``1712850676.3222606``) is off by a fraction of a microsecond.
    Exponent forms (``1.6788168051234567e+09``) are read as floats.

    >>> pl.select(_epoch_micros(pl.lit("1712850676.3222606"), 1e6)).item()
    1712850676322261
    """
    parts = text.str.extract_groups(r"^(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?$")
    whole = parts.struct.field("whole").cast(pl.Int64, strict=False)
    fraction = ("0." + parts.struct.field("fraction").fill_null("0")).cast(pl.Float64)
    if scale >= 1:
        exact = whole * int(scale) + (fraction * scale).round().cast(pl.Int64)
    else:
        per = round(1 / scale)
        exact = (whole + (fraction + 0.5).floor().cast(pl.Int64) + per // 2) // per
    as_float = (text.cast(pl.Float64, strict=False) * scale).round().cast(pl.Int64, strict=False)
    return pl.coalesce(exact, as_float)


def _first_of(times: list[pl.Expr], values: list[pl.Expr]) -> pl.Expr:
    """``values[i]`` for the first ``times[i]`` that is not null."""
    expr = pl.when(times[0].is_not_null()).then(values[0])
    for time, value in zip(times[1:], values[1:], strict=True):
        expr = expr.when(time.is_not_null()).then(value)
    return expr


# --- parsers, checks and loading ------------------------------------------------------


def to_parser(declared: Declared) -> Parser:
    """The registered shape of a declared format."""
    return Parser(
        name=declared.name,
        description=declared.description,
        sniff=lambda sample: sniff_with(declared, sample),
        parse=lambda lines: parse_with(declared, lines),
        samples=declared.samples,
        # JSON is compacted before its literals are looked for, so only other kinds
        # can have them checked on the raw sample
        literals=declared.literals if declared.kind != "json" else (),
        record_start=_record_start(declared),
        distinct_start=declared.distinct_start,
        whole_line=_whole_line(declared),
        origin=declared.origin,
    )


def _whole_line(declared: Declared) -> Callable[[], pl.Expr] | None:
    """For a JSON or logfmt format whose records never reach over lines: a line that is
    a record on its own. A stream of such lines begins with a record, and is read with
    other streams in one call (:mod:`parsers.routing`)."""
    if declared.kind == "regex" or declared.continuation or declared.join:
        return None
    return lambda: _is_record(declared, pl.col("text"))


def _record_start(declared: Declared) -> str | None:
    """Where a big file of a regex format may be cut: before a line a pattern matches."""
    if declared.kind != "regex":
        return None
    unnamed = [_GROUP.sub("(?:", p) for p in declared.patterns]
    return "|".join(f"(?:{p})" for p in unnamed)


def checked_time(ts: object, offset: object, year_missing: bool) -> str | None:
    """A record's time as a sample's ``expect.ts`` writes it: UTC with ``+00:00`` when
    the record states its zone, as written without a zone when it does not, and from the
    month on (``03-14T18:00:01``) when it writes no year."""
    if ts is None:
        return None
    from datetime import UTC, timedelta

    if offset is not None:
        text = (ts - timedelta(seconds=offset)).replace(tzinfo=UTC).isoformat()
    else:
        text = ts.isoformat()
    return text[5:] if year_missing else text


def check(parser: Parser, origin: str | None = None) -> list[str]:
    """What is wrong with ``parser``'s samples, one sentence each naming the file and the
    sample: a sample it does not recognise, lines it leaves unparsed, a row count or a
    field that differs from what the sample says."""
    where = origin or parser.origin
    problems = []
    for index, sample in enumerate(parser.samples, start=1):
        label = f"{where}: sample {index} ({sample.text.splitlines()[0][:60]!r})"
        lines = sample.text.splitlines()
        score = parser.sniff(lines)
        if score.score < registry.MIN_SCORE:
            problems.append(f"{label}: not recognised ({score.why})")
        try:
            found = parser.parse(sample_lines(lines)).collect()
        except Exception as exc:
            problems.append(f"{label}: reading it failed: {type(exc).__name__}: {exc}")
            continue
        bad = found.filter(pl.col("unparsed").is_not_null())
        if bad.height:
            problems.append(f"{label}: line {bad['line'][0]} unparsed: {bad['unparsed'][0]}")
            continue
        if sample.rows is not None and found.height != sample.rows:
            problems.append(f"{label}: {found.height} rows, the sample says {sample.rows}")
        if found.height == 0:
            problems.append(f"{label}: no rows")
            continue
        first = found.sort("line").row(0, named=True)
        attrs = json.loads(first["attrs"] or "{}")
        for key, expected in sample.expect.items():
            if key.startswith("attrs."):
                got = attrs.get(key.removeprefix("attrs."))
            elif key == "ts":
                got = checked_time(first["ts"], first["utc_offset_s"], first["year_missing"])
            else:
                got = first.get(key)
            if got != expected and str(got) != str(expected):
                problems.append(f"{label}: {key} is {got!r}, the sample says {expected!r}")
    return problems


def sample_lines(lines: list[str]) -> pl.LazyFrame:
    """``lines`` as the loader hands them to a parser (no prefix, no path)."""
    numbers = pl.int_range(1, pl.len() + 1, dtype=pl.UInt32)
    frame = pl.LazyFrame({"text": lines}, schema={"text": pl.String})
    return frame.with_columns(line=numbers, end_line=numbers).select(
        [
            pl.col(c) if c in ("line", "end_line", "text") else pl.lit(None).cast(t).alias(c)
            for c, t in LINE_SCHEMA.items()
        ]
    )


def load_file(path: str | os.PathLike[str]) -> Parser:
    """Read and check the format in ``path`` (register it with
    :func:`parsers.registry.registered`); a :class:`FormatFileError` that names the file
    (and the sample) when it cannot be read, takes a built-in name, or its samples fail."""
    try:
        declared = declare(read_file(path), str(path))
        known = registry._PARSERS.get(declared.name)
        if known is not None and known.built_in:
            raise FormatFileError(f"{path}: a format named {declared.name!r} is built in already")
        parser = to_parser(declared)
        problems = check(parser)
    except FormatFileError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, pl.exceptions.PolarsError) as exc:
        # a value of a shape no check above foresaw: still the file's fault, said as such
        raise FormatFileError(f"{path}: a value does not fit its field: {exc}") from None
    if problems:
        raise FormatFileError("; ".join(problems))
    return parser


def format_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The format files in ``directory``, by name."""
    folder = Path(directory)
    if not folder.is_dir():
        raise FormatFileError(f"{folder}: no such folder of format files")
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def load_dir(directory: str | os.PathLike[str]) -> list[Parser]:
    """Every format file in ``directory``, read and checked (see :func:`load_file`)."""
    return [load_file(path) for path in format_files(directory)]


def user_dir() -> Path:
    """The user's folder of format files: ``formats`` in the tool's config folder
    (``~/.config/incident-timeline/formats`` on Linux)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("incident-timeline")) / "formats"


def load_user_formats() -> list[Parser]:
    """The format files in :func:`user_dir`, if it exists, read and checked."""
    folder = user_dir()
    return load_dir(folder) if folder.is_dir() else []


def load_built_in() -> list[Parser]:
    """Register the formats that ship as data in ``parsers/formats``. They are checked by
    the tests, not at every start."""
    found = []
    for path in format_files(BUILT_IN_DIR):
        declared = declare(read_file(path), f"built-in: parsers/formats/{path.name}")
        found.append(registry.register(to_parser(declared)))
    return found


def load_from_environment() -> list[Parser]:
    """Register the format files that :data:`FILES_ENV` names: a worker process of a read
    that declared them. They were checked when the read began."""
    found = []
    for path in filter(None, os.environ.get(FILES_ENV, "").split(os.pathsep)):
        try:
            parser = to_parser(declare(read_file(path), path))
        except FormatFileError:
            continue
        found.append(registry.register(parser, replace=True))
    return found

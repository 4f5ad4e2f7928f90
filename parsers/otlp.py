r"""OpenTelemetry's OTLP JSON log batches, brought to one record a row.

The OpenTelemetry Collector's ``file`` exporter writes one ``ExportLogsServiceRequest`` a
line (the ``otlpjsonfile`` receiver reads the same): resources, each naming where its
records come from in a list of attributes (``k8s.node.name``, ``k8s.pod.name``,
``k8s.container.name``, ``host.name``), each holding scopes, each holding log records::

    {"resourceLogs":[{"resource":{"attributes":[{"key":"k8s.pod.name",
      "value":{"stringValue":"kube-proxy-hjzlz"}}, ...]},
      "scopeLogs":[{"scope":{},"logRecords":[{"timeUnixNano":"1678815903120571849",
      "observedTimeUnixNano":"...","body":{"stringValue":"I0314 17:45:03.120331 ..."},
      "attributes":[{"key":"log.iostream","value":{"stringValue":"stderr"}}, ...]}]}]}]}

It is protobuf's JSON mapping: camelCase names, 64-bit integers (``timeUnixNano``,
``intValue``) as decimal strings, a value as ``{"stringValue": ...}`` (or ``intValue``,
``boolValue``, ``doubleValue``, ``kvlistValue``, ``arrayValue``), attributes in any order
(the Collector builds them from a Go map), ``<`` ``>`` ``&`` escaped by collectors of 2023
(gogo's jsonpb), a time of ``0`` or none where it is unknown. Collectors before 2022
named the scopes ``instrumentationLibraryLogs``.

:func:`records` gives each log record of a batch line a row of its own, on the batch's
line, whose text is the record flattened::

    {"resource":{"k8s.pod.name":"kube-proxy-hjzlz",...},"logRecord":{"timeUnixNano":"...",
     "observedTimeUnixNano":"...","severity":null,"body":"I0314 ...",
     "attributes":{"log.iostream":"stderr",...}}}

attribute lists as objects of their plain values, the body as text (a structured body,
``kvlistValue``, as the JSON object it stands for), a time of ``0`` as null, and the
severity as a level word: that of ``severityNumber``'s range, else ``severityText``.
The ``otlp`` envelope (:mod:`parsers.envelopes`) then declares paths into it as into any
collector's record.

This module registers no parser.
"""

from __future__ import annotations

import polars as pl

from parsers.common import json_value

#: A value of an attribute, as far as it is read: values that are lists or objects
#: themselves (``arrayValue``, ``kvlistValue``) are left out.
_PLAIN = pl.Struct(
    {
        "stringValue": pl.String,
        "intValue": pl.String,
        "doubleValue": pl.String,
        "boolValue": pl.String,
        "bytesValue": pl.String,
    }
)
_KEY_VALUES = pl.List(pl.Struct({"key": pl.String, "value": _PLAIN}))
_BODY = pl.Struct(
    {
        **dict(_PLAIN),
        "kvlistValue": pl.Struct({"values": _KEY_VALUES}),
        "arrayValue": pl.Struct({"values": pl.List(_PLAIN)}),
    }
)
_LOG_RECORDS = pl.List(
    pl.Struct(
        {
            "timeUnixNano": pl.String,
            "observedTimeUnixNano": pl.String,
            "severityNumber": pl.String,
            "severityText": pl.String,
            "body": _BODY,
            "attributes": _KEY_VALUES,
        }
    )
)
_SCOPES = pl.List(pl.Struct({"logRecords": _LOG_RECORDS}))
#: An ``ExportLogsServiceRequest`` as far as it is read.
BATCH = pl.Struct(
    {
        "resourceLogs": pl.List(
            pl.Struct(
                {
                    "resource": pl.Struct({"attributes": _KEY_VALUES}),
                    "scopeLogs": _SCOPES,
                    "instrumentationLibraryLogs": _SCOPES,
                }
            )
        )
    }
)

#: The key every batch has, quoted as JSON writes it.
BATCH_KEY = '"resourceLogs"'

#: ``severityNumber``'s ranges of four (1-4 ``TRACE`` ... 21-24 ``FATAL``) as level words.
SEVERITY_WORDS = ["trace", "debug", "info", "warn", "error", "fatal"]


def is_batch(text: pl.Expr) -> pl.Expr:
    """Whether each line of ``text`` is a batch: a JSON object (whole: a line cut off
    is none) with a list of ``resourceLogs``."""
    whole = text.str.strip_chars_start().str.starts_with("{") & text.str.contains(
        BATCH_KEY, literal=True
    )
    listed = pl.when(whole).then(text).str.json_path_match("$.resourceLogs")
    return listed.str.starts_with("[").fill_null(False)


def records(lines: pl.DataFrame) -> pl.DataFrame:
    """``lines`` (with the line columns) with each batch line replaced by one row a log
    record, all on that line, in the order written (see the module notes). A batch that
    holds no record, or that is JSON of another shape, stays as written, a line of its
    own; so do all other lines.

    >>> batch = ('{"resourceLogs":[{"resource":{"attributes":[{"key":"k8s.pod.name",'
    ...     '"value":{"stringValue":"web-1"}}]},"scopeLogs":[{"logRecords":['
    ...     '{"timeUnixNano":"0","body":{"stringValue":"up"}},'
    ...     '{"severityNumber":17,"body":{"stringValue":"down"}}]}]}]}')
    >>> from parsers.common import numbered
    >>> for text in records(numbered([batch]))["text"]:
    ...     print(text.replace(',"observedTimeUnixNano":null', ""))
    {"resource":{"k8s.pod.name":"web-1"},"logRecord":{"timeUnixNano":null,"severity":null,"body":"up","attributes":{}}}
    {"resource":{"k8s.pod.name":"web-1"},"logRecord":{"timeUnixNano":null,"severity":"error","body":"down","attributes":{}}}
    """
    if not lines["text"].str.contains(BATCH_KEY, literal=True).any():
        return lines
    numbered = lines.with_row_index("_row")
    batches = numbered.filter(is_batch(pl.col("text")))
    if batches.height == 0:
        return lines
    flat = (
        batches.with_columns(_batch=_decoded(batches["text"]).struct.field("resourceLogs"))
        .explode("_batch", keep_nulls=False)
        .with_columns(
            _resource=_object_text(
                pl.col("_batch").struct.field("resource").struct.field("attributes")
            ),
            _scope=pl.concat_list(
                pl.col("_batch").struct.field(name).fill_null([])
                for name in ("scopeLogs", "instrumentationLibraryLogs")
            ),
        )
        .explode("_scope", keep_nulls=False)
        .with_columns(_record=pl.col("_scope").struct.field("logRecords"))
        .explode("_record", keep_nulls=False)
        .with_columns(text=_flattened(pl.col("_resource"), pl.col("_record")))
    )
    as_written = numbered.join(flat.select("_row"), on="_row", how="anti")
    together = pl.concat([as_written, flat.select(as_written.columns)])
    return together.sort("_row", maintain_order=True).select(lines.columns)


#: A batch of another signal, which a ``file`` exporter shared by a Collector's traces or
#: metrics pipeline writes among the log batches.
OTHER_SIGNAL = r'^\s*\{\s*"resource(?:Spans|Metrics|Profiles)"\s*:'


def records_sample(sample: list[str]) -> list[str]:
    """:func:`records` of a sample's lines, as texts, without the batches that hold no
    log record (an empty one, one of traces or metrics): they are no one's records, and
    a file of log batches among them is still the log batches' (those lines are counted
    unparsed when it is read)."""
    if not any(BATCH_KEY in s for s in sample):
        return sample
    frame = pl.DataFrame({"text": sample}, schema={"text": pl.String})
    text = pl.col("text")
    return (
        records(frame).filter(~is_batch(text) & ~text.str.contains(OTHER_SIGNAL))["text"].to_list()
    )


def _decoded(texts: pl.Series) -> pl.Series:
    """``texts`` (whole JSON objects) decoded as :data:`BATCH`; null where one is JSON
    of another shape (a list where OTLP has an object), found by halving the texts until
    it stands alone, so that it costs only its own line."""
    try:
        return texts.str.json_decode(BATCH)
    except pl.exceptions.PolarsError:
        if texts.len() <= 1:
            return pl.Series(texts.name, [None] * texts.len(), dtype=BATCH)
        half = texts.len() // 2
        return pl.concat([_decoded(texts.head(half)), _decoded(texts.tail(-half))])


def _flattened(resource: pl.Expr, record: pl.Expr) -> pl.Expr:
    """A log ``record`` (a struct) and its ``resource``'s attributes (a JSON object text)
    as one JSON object text."""
    field = record.struct.field
    scalars = pl.struct(
        timeUnixNano=_known_time(field("timeUnixNano")),
        observedTimeUnixNano=_known_time(field("observedTimeUnixNano")),
        severity=pl.coalesce(_severity_word(field("severityNumber")), field("severityText")),
        # a record without a body (an event told by its attributes) is still a record
        body=pl.coalesce(_body_text(field("body")), _object_text(field("attributes"))),
    ).struct.json_encode()
    return pl.concat_str(
        pl.lit('{"resource":'),
        resource,
        pl.lit(',"logRecord":'),
        scalars.str.strip_suffix("}"),
        pl.lit(',"attributes":'),
        _object_text(field("attributes")),
        pl.lit("}}"),
    )


def _known_time(nanos: pl.Expr) -> pl.Expr:
    """A time in nanoseconds since the epoch, null where OTLP says it is unknown (0)."""
    return pl.when(~nanos.str.contains(r"^\s*0*\s*$")).then(nanos)


def _severity_word(number: pl.Expr) -> pl.Expr:
    """``severityNumber`` (1 to 24, or its enum name ``SEVERITY_NUMBER_WARN2``) as the
    word of its range; null where unset (0)."""
    named = number.str.extract(r"^SEVERITY_NUMBER_([A-Z]+)[0-9]?$", 1).str.to_lowercase()
    value = number.cast(pl.Int64, strict=False)
    ranged = pl.when(value.is_between(1, 24)).then((value - 1) // 4)
    word = ranged.replace_strict(dict(enumerate(SEVERITY_WORDS)), default=None)
    return pl.coalesce(word.cast(pl.String), pl.when(named != "unspecified").then(named))


def _body_text(body: pl.Expr) -> pl.Expr:
    """A record's body as text: a string as it is, a structured body (``kvlistValue``)
    as the JSON object of its plain values, a list (``arrayValue``) as the JSON array of
    them, a number or a bool as written; null without a body."""
    kvlist = body.struct.field("kvlistValue")
    structured = pl.when(kvlist.is_not_null()).then(_object_text(kvlist.struct.field("values")))
    array = body.struct.field("arrayValue").struct.field("values")
    listed = pl.when(array.is_not_null()).then(
        "[" + array.list.eval(_plain_json(pl.element())).list.drop_nulls().list.join(",") + "]"
    )
    plain = body.struct.field
    return pl.coalesce(
        plain("stringValue"),
        structured,
        listed,
        plain("intValue"),
        plain("doubleValue"),
        plain("boolValue"),
        plain("bytesValue"),
    )


def _object_text(pairs: pl.Expr) -> pl.Expr:
    """A list of OTLP key/values as a JSON object text of their plain values (``{}`` for
    none): a string quoted, an integer, a double or a bool as JSON writes it, values that
    are lists or objects left out."""
    key = pl.element().struct.field("key")
    value = _plain_json(pl.element().struct.field("value"))
    members = pairs.list.eval(
        pl.when(key.is_not_null() & value.is_not_null()).then(json_value(key) + ":" + value)
    ).list.drop_nulls()
    return pl.lit("{") + members.list.join(",").fill_null("") + pl.lit("}")


def _plain_json(value: pl.Expr) -> pl.Expr:
    """An attribute's value (:data:`_PLAIN`) as JSON text, null where it is none of
    those: numbers that are no JSON numbers (a double's ``NaN``) are quoted."""
    field = value.struct.field
    number = pl.coalesce(field("intValue"), field("doubleValue"))
    text = pl.coalesce(field("stringValue"), field("bytesValue"))
    flag = field("boolValue")
    return (
        pl.when(text.is_not_null())
        .then(json_value(text))
        .when(number.str.contains(r"^-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$"))
        .then(number)
        .when(number.is_not_null())
        .then(json_value(number))
        .when(flag.is_in(["true", "false"]))
        .then(flag)
    )

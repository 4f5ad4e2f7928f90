r"""klog JSON: Kubernetes programs started with ``--logging-format=json``.

One JSON object a line, written by zap through ``k8s.io/component-base/logs/json``::

    {"ts":1678816801123.4568,"caller":"iptables/proxier.go:858","msg":"Sync failed","v":0,
    "retryingTime":"30s"}

(shown here on two lines).

``ts`` is Unix time as a float. The encoder writes milliseconds (``UnixNano() / 1e6``)
while the Kubernetes documentation shows seconds; a value of 10^11 or more is read as
milliseconds, anything smaller as seconds (10^11 seconds is the year 5138, 10^11
milliseconds 1973). It is UTC, so records need no year or zone settled.

Info records carry their verbosity ``v``; error records carry no ``v`` and, from
``ErrorS``, the error as ``err``. So: ``err`` or no ``v`` is an error, any ``v`` is info
(warnings are written as info). ``v`` is verbosity, not severity: klog text writes a
``V(2).InfoS`` record as an ``I`` line, so ``"v":2`` is info too, and ``v`` stays in
``attrs`` for whoever wants to tell the chatty records apart. ``msg`` becomes the template for
structured calls (``InfoS``); printf-style calls (``Infof``) end their message with a line
break, and keep ``template`` null for the loader to mask. Every other key, ``caller``,
``v`` and ``err`` among them, stays in ``attrs`` as written.

Start-up lines come before the logging flags apply and are klog text
(``I0314 17:41:02.510000       1 flags.go:64] FLAG: --v="2"``); they are read as klog
text. Lines that are neither (a Go panic and its goroutine dump) belong to the record
above. A line that starts like JSON but is not valid JSON is unparsed, with its reason.
"""

from __future__ import annotations

import polars as pl

from parsers import json_text, klog, registry
from parsers.common import LEVEL, join_continuations, records
from parsers.registry import Parser, Sample, Score, share_matching

NAME = "klog-json"

#: A klog JSON line as the encoder starts it: the time first.
JSON_LINE = r'^\{\s*"ts"\s*:\s*-?[0-9]'
#: Below this ``ts`` is seconds, at or above it milliseconds.
MILLISECONDS_FROM = 1e11

SAMPLES = (
    Sample(
        '{"ts":1678816801123.4568,"caller":"iptables/proxier.go:1508","msg":"Failed to '
        'execute iptables-restore","err":"exit status 1 (iptables-restore: line 8022 '
        'failed\\n)"}\n'
        '{"ts":1678816801123.6012,"caller":"iptables/proxier.go:858","msg":"Sync failed",'
        '"v":0,"retryingTime":"30s"}\n',
        expect={
            "level": "error",
            "ts": "2023-03-14T18:00:01.123457+00:00",
            "template": "Failed to execute iptables-restore",
            "attrs.err": "exit status 1 (iptables-restore: line 8022 failed\n)",
            "attrs.caller": "iptables/proxier.go:1508",
        },
        rows=2,
    ),
    Sample(
        'I0314 17:41:02.510311       1 flags.go:64] FLAG: --logging-format="json"\n'
        '{"ts":1678815662518.3022,"caller":"app/server_others.go:206","msg":"Using '
        'iptables Proxier","v":0}\n'
        '{"ts":1678815662519.0471,"caller":"app/server.go:661","msg":"Version info",'
        '"v":0,"version":"v1.26.2"}\n'
        '{"ts":1678815662520.1272,"caller":"cache/shared_informer.go:273","msg":"Waiting '
        'for caches to sync for service config\\n","v":0}\n'
        '{"ts":1678815662620.6343,"caller":"cache/shared_informer.go:280","msg":"Caches '
        'are synced for service config\\n","v":0}\n',
        expect={"level": "info", "message": 'FLAG: --logging-format="json"'},
        rows=5,
    ),
)


#: A klog JSON record opens with the time in epoch seconds or milliseconds and a caller.
RECORD_START = rf'{JSON_LINE}.*"msg"\s*:'


def sniff(sample: list[str]) -> Score:
    """Share of the sample's JSON lines that open the way the klog JSON encoder opens
    them, with a ``msg``. klog text lines (start-up) do not count against it; pasted
    JSON (pretty-printed, an array) is looked at as its records."""
    sample = json_text.compact_sample(sample)
    objects = [s for s in sample if s.startswith("{")]
    klog_json = round(share_matching(objects, RECORD_START) * len(objects))
    if not klog_json:
        return Score(0.0, 'no line opens with {"ts":<number> and has a "msg"')
    return Score(
        klog_json / len(objects),
        f"{klog_json} of {len(objects)} JSON sample lines are klog JSON records",
    )


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Records from klog JSON lines (and the klog text lines among them), in file order."""
    lines = json_text.compact_lines(lines)
    text = pl.col("text")
    is_json = text.str.starts_with("{")
    joined = join_continuations(
        klog.with_file_header(lines),
        is_json | klog.starts_record(text),
        keep=klog.FILE_HEADER_STATE,
    ).with_columns(_json=pl.col("header") & is_json)
    json_records = _json_records(joined.filter("_json"))
    text_records = klog.read_records(joined.filter(~pl.col("_json")).drop("_json"))
    return pl.merge_sorted([json_records, text_records], key="line")


def _json_records(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Records from rows whose first line is a JSON object (continuation lines below it)."""
    text = pl.col("text")
    multi_line = text.str.contains("\n", literal=True)
    document = pl.coalesce(pl.when(multi_line).then(text.str.extract(r"^([^\n]*)", 1)), text)
    below = pl.when(multi_line).then(text.str.extract(r"\n((?s:.*))$", 1))
    stamp = pl.col("_doc").str.json_path_match("$.ts").cast(pl.Float64, strict=False)
    msg = pl.col("_doc").str.json_path_match("$.msg")
    verbosity = pl.col("_doc").str.json_path_match("$.v").cast(pl.Int64, strict=False)
    has_err = pl.col("_doc").str.json_path_match("$.err").is_not_null()
    fields = rows.with_columns(_doc=document, _below=below).with_columns(
        _stamp=stamp, _msg=msg, _v=verbosity, _err=has_err
    )
    message = pl.col("_msg").str.strip_suffix("\n")
    level = (
        pl.when(
            pl.col("_below").str.contains(r"^(?:panic: |fatal error: )|\n(?:panic|fatal error): ")
        )
        .then(pl.lit("critical"))
        .when(pl.col("_err") | pl.col("_v").is_null())
        .then(pl.lit("error"))
        .otherwise(pl.lit("info"))
    )
    without_ts = pl.col("_stamp").is_null()
    valid = pl.when(without_ts).then(pl.col("_doc")).str.json_path_match("$").is_not_null()
    reason = (
        pl.when(without_ts & ~valid)
        .then(pl.lit("not valid JSON"))
        .when(without_ts)
        .then(pl.lit('JSON record without a numeric "ts"'))
    )
    source = klog.program(pl.col("container"), pl.col("path"))
    return records(
        fields,
        ts=_utc(pl.col("_stamp")),
        utc_offset_s=pl.lit(0, pl.Int32),
        year_missing=pl.lit(False),
        source=source,
        component=pl.coalesce(pl.col("container"), source),
        level=level.cast(LEVEL),
        message=pl.when(reason.is_null())
        .then(
            pl.concat_str(
                message.fill_null(""), pl.format("\n{}", pl.col("_below")), ignore_nulls=True
            )
        )
        .otherwise(text),
        template=pl.when(~pl.col("_msg").str.ends_with("\n")).then(message),
        attrs=pl.when(reason.is_null()).then(_attrs(pl.col("_doc"))).otherwise(pl.lit("{}")),
        unparsed=reason,
    )


def _utc(stamp: pl.Expr) -> pl.Expr:
    """Unix time in seconds or milliseconds (see the module notes) as a naive UTC time.

    >>> pl.select(_utc(pl.lit(1678816801123.4568))).item()  # milliseconds
    datetime.datetime(2023, 3, 14, 18, 0, 1, 123457)
    >>> pl.select(_utc(pl.lit(1678816801.5))).item()  # seconds
    datetime.datetime(2023, 3, 14, 18, 0, 1, 500000)
    """
    micros = pl.when(stamp >= MILLISECONDS_FROM).then(stamp * 1e3).otherwise(stamp * 1e6)
    return micros.round().cast(pl.Int64, strict=False).cast(pl.Datetime("us"))


def _attrs(document: pl.Expr) -> pl.Expr:
    """The record's JSON object without ``ts`` and ``msg``, which have columns of their own.

    The encoder writes ``ts`` first and ``msg`` before the fields, so cutting the first
    ``"ts":...,`` and the first ``,"msg":"..."`` leaves every other key as written (also
    where a collector wrote the record again with spaces after its commas and colons)."""
    return document.str.replace(r'^\{\s*"ts"\s*:[^,}]*,?\s*', "{").str.replace(
        r',\s*"msg"\s*:\s*"(?:[^"\\]|\\.)*"', ""
    )


registry.register(
    Parser(
        name=NAME,
        description="klog JSON (Kubernetes programs run with --logging-format=json)",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=('"ts"',),
        record_start=RECORD_START,
    )
)

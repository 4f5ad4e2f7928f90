"""RabbitMQ server logs of every generation, in one parser.

=============  ============================================================================
3.9 and later  ``2023-03-15 02:50:01.123456+00:00 [error] <0.1234.0> msg`` (Erlang
               ``logger``). A multi-line message repeats the whole prefix on every line,
               so lines with the same microsecond time, level and pid are one record.
               Levels are full words (``[warning]``), or four letters (``[noti]``,
               ``[erro]``): the default of 3.9 and 3.10 until mid-2022
               (rabbitmq-server#4798); ``level_format`` can also ask for ``[WRN]``...
3.7 and 3.8    ``2023-03-15 02:50:01.123 [error] <0.1234.0> msg`` (lager): local time, no
               zone; a multi-line message writes the prefix once and the other lines bare,
               often indented by one space.
before 3.7     ``=ERROR REPORT==== 15-Mar-2023::02:50:01 ===`` (``error_logger``) then the
               message up to the blank line; local time, no zone.
JSON           ``log.file.formatter = json`` (3.9+): one object a line with ``time``,
               ``level``, ``msg``, ``pid`` and metadata such as ``domain``, ``file``,
               ``line``, ``mfa``.
=============  ============================================================================

The node (``rabbit@rmq-1``) becomes ``component``: from the startup banner
(``node : rabbit@rmq-1``), from ``Application mnesia started on node rabbit@rmq-1``, or
from the file name (``rabbit@rmq-1.log``, ``rabbit@rmq-1.log.1``,
``rabbit@rmq-1_upgrade.log``). ``attrs`` keeps the AMQP peer, user, vhost, queue, Erlang
pid, the version a node starts with and a ``lifecycle`` word (``starting``, ``started``,
``stopping``, ``stopped``, ``halting``) for the step that infers restarts and upgrades.
"""

from __future__ import annotations

import polars as pl

from parsers import registry
from parsers.common import json_object, level_from, records
from parsers.registry import Parser, Sample, Score

NAME = "rabbitmq"

# --- patterns (Rust regex) -------------------------------------------------------------

#: What ``rabbitmq-server`` prints on the console before its first log line, with no
#: newline of its own, so a log line can start with it.
_CONSOLE = r"(?P<console>[ \t]*Starting broker\.\.\.(?: completed with [0-9]+ plugins\.)?)?"
#: A record time: RFC 3339 with a space or ``T`` (3.9+, zone given) or without zone
#: (lager), or epoch seconds / microseconds (``time_format = epoch_secs | epoch_usecs``).
_TIME = (
    r"(?:(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?)"
    r"(?P<offset>Z|[+-][0-9]{2}:?[0-9]{2})?"
    r"|(?P<epoch>[0-9]{10}(?:\.[0-9]+)?|[0-9]{16}))"
)
#: 3.7+ text line: time, ``[level]`` and Erlang pid make the ``head``; the message is the
#: rest of the line (sliced off rather than captured, which is several times faster).
TEXT = (
    rf"^(?P<head>{_CONSOLE}{_TIME} \[(?P<level>[A-Za-z]{{3,9}})\](?: (?P<pid><[^<> ]*>))?)"
    r"(?: |$)"
)
#: Pre-3.7 report header; the message follows on the lines below it.
REPORT = (
    r"^=(?P<report>[A-Z]+) REPORT==== "
    r"(?P<ts>[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}::[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?) ===[ \t]*$"
)
#: A line that sets out to be a JSON object (``Starting broker...`` may stick to it).
JSON_LINE = rf'^{_CONSOLE}(?P<json>\{{"[^"]*":.*)$'
_TIME_ONLY = rf"^{_TIME}$"

#: Level words of every ``level_format`` (lc, uc, lc3, uc3, lc4, uc4), case-insensitive.
LEVELS = {
    "debug": "debug",
    "dbug": "debug",
    "dbg": "debug",
    "info": "info",
    "inf": "info",
    "notice": "info",
    "noti": "info",
    "ntc": "info",
    "warning": "warning",
    "warn": "warning",
    "wrn": "warning",
    "error": "error",
    "erro": "error",
    "err": "error",
    "critical": "critical",
    "crit": "critical",
    "crt": "critical",
    "alert": "critical",
    "alrt": "critical",
    "alt": "critical",
    "emergency": "critical",
    "emgc": "critical",
    "emg": "critical",
}
#: Pre-3.7 report kinds (``=SUPERVISOR REPORT====`` is a child restart: a warning).
REPORT_LEVELS = {
    "info": "info",
    "progress": "info",
    "warning": "warning",
    "supervisor": "warning",
    "error": "error",
    "crash": "error",
}

_ADDR = r"(?:\[[0-9A-Fa-f:.]+\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}):[0-9]{1,5}"
#: ``(10.0.0.5:43210 -> 10.0.1.7:5672 - dispatcher, vhost: '/', user: 'circleci')``
CONNECTION = (
    rf"\((?P<connection>(?P<client>{_ADDR}) -> (?P<server>{_ADDR}))"
    r"(?: - (?P<connection_name>[^,)\n]+))?"
)
CLIENT_PROVIDED_NAME = r"client-provided name: ([^\n]+)"
VHOST = r"vhost:? '([^'\n]*)'"
USER = r"user:? '([^'\n]*)'"
QUEUE = r"queue '([^'\n]*)' in vhost"
_NODE_NAME = r"[A-Za-z0-9_.-]+@[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"
#: The node a record says it runs on: the banner line or an application start
#: (``started on node rabbit@x`` in lager, ``started_at: rabbit@x`` in SASL progress reports).
OWN_NODE = rf"(?:(?m:^)[ \t]*node[ \t]*:[ \t]*|started on (?:node )?'?|started_at: )({_NODE_NAME})"
#: Another node the record is about (``node 'rabbit@rmq-2' rejected``, ``rabbit@rmq-2 down``).
PEER_NODE = rf"[Nn]ode '?({_NODE_NAME})'?(?: is)? (?:down|up|rejected)"
STARTING = (
    r"Starting (?P<product>[A-Za-z][A-Za-z ]*?) (?P<version>[0-9][0-9A-Za-z.+~-]*)"
    r" on Erlang (?P<erlang>[0-9A-Za-z._-]+)"
)
PLUGINS = r"^Server startup complete; ([0-9]+) plugins? started"
#: ``lifecycle`` attribute: (word, pattern on the message), first match wins.
LIFECYCLE = [
    ("starting", r"^Starting [^\n]* on Erlang | is asked to start\.\.\."),
    ("started", r"^Server startup complete"),
    ("stopping", r"^Stopping RabbitMQ| is asked to stop\.\.\."),
    ("stopped", r"^Successfully stopped |^Stopped RabbitMQ application"),
    ("halting", r"^Halting Erlang VM"),
]
#: The node in a log file's name: ``rabbit@rmq-1.log``, ``.log.1``, ``_upgrade.log``, ``-sasl.log``.
FILE_NODE = (
    r"(?:^|[/\\])([A-Za-z0-9_.-]+@[A-Za-z0-9_-]+?(?:\.[A-Za-z0-9_-]+?)*?)\.?"
    r"(?:_upgrade|-sasl)?\.log(?:\.[0-9]+)?(?:\.gz)?$"
)

_JSON_FIELDS = pl.Struct(
    {
        "time": pl.String,
        "timestamp": pl.String,
        "level": pl.String,
        "msg": pl.String,
        "message": pl.String,
        "pid": pl.String,
        "domain": pl.String,
        "file": pl.String,
        "line": pl.String,
        "mfa": pl.List(pl.String),
    }
)

SAMPLES = (
    Sample(
        "2023-03-15 02:50:01.123456+00:00 [warning] <0.8812.0> closing AMQP connection"
        " <0.8812.0> (10.0.0.5:43210 -> 10.0.1.7:5672, vhost: '/', user: 'circleci'):\n"
        "2023-03-15 02:50:01.123456+00:00 [warning] <0.8812.0> client unexpectedly closed"
        " TCP connection\n"
        "2023-03-15 02:50:01.398201+00:00 [info] <0.8830.0> accepting AMQP connection"
        " <0.8830.0> (10.0.0.5:43298 -> 10.0.1.7:5672)\n",
        expect={
            "ts": "2023-03-15T02:50:01.123456+00:00",
            "level": "warning",
            "source": "rabbitmq",
            "message": "closing AMQP connection <0.8812.0> (10.0.0.5:43210 -> 10.0.1.7:5672,"
            " vhost: '/', user: 'circleci'):\nclient unexpectedly closed TCP connection",
            "attrs.client": "10.0.0.5:43210",
            "attrs.server": "10.0.1.7:5672",
            "attrs.user": "circleci",
            "attrs.vhost": "/",
            "attrs.pid": "<0.8812.0>",
        },
        rows=2,
    ),
    Sample(
        "2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** Generic server <0.29174.0>"
        " terminating\n"
        "2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** Last message in was"
        " {'$gen_cast',init}\n"
        "2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** Reason for termination =="
        "\n"
        "2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** {{badmatch,{error,enoent}},"
        "[{rabbit_msg_store,recover_file_summary,3,[]}]}\n"
        "2021-07-29 16:09:34.411208+00:00 [noti] <0.29171.0> Restarting crashed queue"
        " 'jobs.dispatch' in vhost '/'.\n",
        expect={"level": "error", "ts": "2021-07-29T16:09:34.409461+00:00", "line": 1},
        rows=2,
    ),
    Sample(
        "2023-03-15 09:50:12.636 [info] <0.269.0> \n"
        " Starting RabbitMQ 3.8.27 on Erlang 23.3.4.11\n"
        " Copyright (c) 2007-2022 VMware, Inc. or its affiliates.\n"
        " Licensed under the MPL 2.0. Website: https://rabbitmq.com\n"
        "2023-03-15 09:50:12.639 [info] <0.269.0> \n"
        " node           : rabbit@rmq-1\n"
        " home dir       : /var/lib/rabbitmq\n"
        " config file(s) : /etc/rabbitmq/rabbitmq.conf\n"
        " cookie hash    : kCs4Ep0qEDfhBY4m4sGAZw==\n"
        " log(s)         : /var/log/rabbitmq/rabbit@rmq-1.log\n"
        "                : /var/log/rabbitmq/rabbit@rmq-1_upgrade.log\n"
        " database dir   : /var/lib/rabbitmq/mnesia/rabbit@rmq-1\n",
        expect={
            "ts": "2023-03-15T09:50:12.636000+00:00",
            "level": "info",
            "component": "rabbit@rmq-1",
            "host": "rmq-1",
            "attrs.version": "3.8.27",
            "attrs.erlang": "23.3.4.11",
            "attrs.lifecycle": "starting",
        },
        rows=2,
    ),
    Sample(
        "=INFO REPORT==== 15-Mar-2023::02:49:58 ===\n"
        "accepting AMQP connection <0.580.0> (10.0.0.5:54878 -> 10.0.1.7:5672)\n"
        "\n"
        "=WARNING REPORT==== 15-Mar-2023::02:50:01 ===\n"
        "closing AMQP connection <0.580.0> (10.0.0.5:54878 -> 10.0.1.7:5672, vhost: '/',"
        " user: 'circleci'):\n"
        "client unexpectedly closed TCP connection\n"
        "\n"
        "=SUPERVISOR REPORT==== 15-Mar-2023::02:50:01 ===\n"
        "     Supervisor: {<0.612.0>,rabbit_channel_sup_sup}\n"
        "     Context:    shutdown_error\n"
        "     Reason:     shutdown\n",
        expect={
            "ts": "2023-03-15T02:49:58+00:00",
            "level": "info",
            "message": "accepting AMQP connection <0.580.0> (10.0.0.5:54878 -> 10.0.1.7:5672)",
            "attrs.report": "INFO",
        },
        rows=3,
    ),
    Sample(
        '{"time":"2023-03-15 02:50:01.123456+00:00","level":"error","msg":"closing AMQP'
        " connection <0.1234.0> (10.0.0.5:43210 -> 10.0.1.7:5672):\\n{handshake_timeout,"
        'handshake}","line":1364,"pid":"<0.1234.0>","file":"rabbit_reader.erl",'
        '"mfa":["rabbit_reader","log_connection_exception_with_severity",3],'
        '"domain":"rabbitmq.connection"}\n'
        '{"time":"2023-03-15 02:50:02.000871+00:00","level":"info","msg":"Server startup'
        ' complete; 4 plugins started.","pid":"<0.230.0>","domain":"rabbitmq"}\n',
        expect={
            "level": "error",
            "ts": "2023-03-15T02:50:01.123456+00:00",
            "message": "closing AMQP connection <0.1234.0> (10.0.0.5:43210 -> 10.0.1.7:5672):"
            "\n{handshake_timeout,handshake}",
            "attrs.domain": "rabbitmq.connection",
            "attrs.mfa": "rabbit_reader:log_connection_exception_with_severity/3",
            "attrs.src": "rabbit_reader.erl:1364",
            "attrs.client": "10.0.0.5:43210",
        },
        rows=2,
    ),
)


# --- recognising ------------------------------------------------------------------------

#: Share of non-blank sample lines that must be record headers for full confidence: the
#: rest may be continuation lines of long reports and crash dumps.
FULL_SHARE = 0.25


def sniff(sample: list[str]) -> Score:
    """Score ``sample``: a cheap literal first, then the share of lines that are headers.

    >>> sniff(["2023-03-15 02:50:01.123456+00:00 [info] <0.230.0> Server startup complete"]).score
    1.0
    >>> sniff(["I0314 18:00:01.123456       1 proxier.go:812] Sync failed"]).score
    0.0
    """
    lines = pl.Series([s for s in sample if s.strip()], dtype=pl.String)
    if lines.len() == 0:
        return Score(0.0, "no non-blank lines to look at")
    literal = (
        lines.str.contains("] <", literal=True)
        | lines.str.contains(" REPORT==== ", literal=True)
        | lines.str.contains('"msg":', literal=True)
    )
    if not literal.any():
        return Score(0.0, "no '[level] <pid>', '=... REPORT====' or JSON 'msg' field")
    text = lines.str.extract_groups(TEXT)
    zoned = text.struct.field("offset").is_not_null()
    lager = text.struct.field("ts").is_not_null() & ~zoned
    epoch = text.struct.field("epoch").is_not_null()
    report = lines.str.contains(REPORT)
    json = lines.str.contains(JSON_LINE) & lines.str.contains('"(?:msg|message)":')
    kinds = {
        "RabbitMQ 3.9+ headers (time with zone, [level], <pid>)": zoned.sum(),
        "RabbitMQ 3.7/3.8 lager headers (time without zone, [level], <pid>)": lager.sum(),
        "RabbitMQ headers with epoch times": epoch.sum(),
        "pre-3.7 '=LEVEL REPORT====' headers": report.sum(),
        "RabbitMQ JSON records (time, level, msg)": json.sum(),
    }
    found = {what: int(n) for what, n in kinds.items() if n}
    headers = sum(found.values())
    if not headers:
        return Score(0.0, f"none of {lines.len()} non-blank lines is a RabbitMQ record header")
    share = headers / lines.len()
    score = round(0.35 + 0.65 * min(1.0, share / FULL_SHARE), 3)
    what = "; ".join(f"{n} {w}" for w, n in found.items())
    return Score(score, f"{headers} of {lines.len()} non-blank lines are record headers: {what}")


# --- parsing ----------------------------------------------------------------------------


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Records from RabbitMQ log lines of any generation (see the module docstring)."""
    grouped = _group_records(_flag_lines(lines))
    fields = _record_fields(grouped)
    return records(
        fields,
        ts="_ts",
        utc_offset_s="_offset_s",
        source=pl.lit(NAME),
        host=pl.coalesce(pl.col("host"), pl.col("_node").str.extract(r"@(.+)$", 1)),
        component=pl.coalesce(pl.col("_node"), pl.col("container"), pl.lit(NAME)),
        level="_level",
        message="_message",
        attrs=_attrs(),
        unparsed="_unparsed",
    )


def _flag_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Read each line's header, if it has one, and say which lines start a record.

    A 3.9+ line that repeats the line above's microsecond time, level and pid carries the
    next line of the same message. In a JSON file every object is a record, and so is any
    other non-blank line, so that junk is reported line by line.
    """
    text = pl.col("_text")
    is_text = text.struct.field("ts").is_not_null() | text.struct.field("epoch").is_not_null()
    is_report = pl.col("_report").struct.field("ts").is_not_null()
    is_json = pl.col("_json").struct.field("json").is_not_null()
    prefix = pl.concat_str(
        [text.struct.field(f) for f in ("ts", "offset", "epoch", "level", "pid")],
        separator="|",
        ignore_nulls=True,
    )
    fine_time = text.struct.field("ts").str.len_chars() >= 26
    repeats = (
        is_text
        & fine_time
        & is_text.shift(1).fill_null(False)
        & (prefix == prefix.shift(1)).fill_null(False)
    )
    json_mode = (is_json.sum() > (is_text | is_report).sum()).over("path")
    blank = pl.col("text").str.strip_chars().str.len_chars() == 0
    header = (is_text & ~repeats) | is_report | (json_mode & (is_json | (~is_text & ~blank)))
    form = (
        pl.when(json_mode & is_json)
        .then(pl.lit("json"))
        .when(is_text)
        .then(pl.lit("text"))
        .when(is_report)
        .then(pl.lit("report"))
        .when(json_mode & ~blank)
        .then(pl.lit("junk"))
    )
    body = (
        pl.when(is_text)
        .then(
            pl.col("text")
            .str.slice(text.struct.field("head").str.len_chars())
            .str.strip_prefix(" ")
        )
        .when(is_report)
        .then(pl.lit(""))
        .otherwise(pl.col("text"))
    )
    count = header.cast(pl.Int64).cum_sum()
    return lines.with_columns(
        _text=pl.col("text").str.extract_groups(TEXT),
        _report=pl.col("text").str.extract_groups(REPORT),
        _json=pl.col("text").str.extract_groups(JSON_LINE),
    ).with_columns(
        _header=header,
        _form=form,
        _body=body,
        _record=pl.when(count == 0).then(-pl.col("line").cast(pl.Int64)).otherwise(count),
    )


def _group_records(flagged: pl.LazyFrame) -> pl.LazyFrame:
    """One row per record: its first line's fields, its last line and its message parts.

    Only continuation lines are grouped (most records are one line), then joined to the
    line that starts their record.
    """
    starts = flagged.filter(pl.col("_header") | (pl.col("_record") < 0))
    tails = (
        flagged.filter(~pl.col("_header") & (pl.col("_record") > 0))
        .group_by("_record", maintain_order=True)
        .agg(
            _tail_end=pl.col("end_line").last(),
            _tail=pl.col("_body").str.join("\n"),
        )
    )
    joined = starts.join(tails, on="_record", how="left", maintain_order="left")
    return joined.with_columns(
        end_line=pl.coalesce(pl.col("_tail_end"), pl.col("end_line")),
        _joined=pl.when(pl.col("_tail").is_null())
        .then(pl.col("_body"))
        .otherwise(pl.col("_body") + "\n" + pl.col("_tail")),
    ).drop("_tail_end", "_tail")


def _record_fields(grouped: pl.LazyFrame) -> pl.LazyFrame:
    """Time, zone, level, pid and message of each record, whatever its form."""
    form = pl.col("_form")
    text = pl.col("_text")
    raw_json = pl.col("_json").struct.field("json")
    valid_json = (form == "json") & raw_json.str.json_path_match("$").is_not_null()
    decoded = pl.when(valid_json).then(raw_json).str.json_decode(_JSON_FIELDS)
    with_json = grouped.with_columns(_j=decoded)
    j = pl.col("_j")
    json_time = pl.coalesce(j.struct.field("time"), j.struct.field("timestamp"))
    json_msg = pl.coalesce(j.struct.field("msg"), j.struct.field("message"))
    json_parts = json_time.str.strip_chars().str.extract_groups(_TIME_ONLY)
    with_time = with_json.with_columns(
        **{
            f"_time_{part}": pl.when(form == "json")
            .then(json_parts.struct.field(part))
            .otherwise(text.struct.field(part))
            for part in ("ts", "offset", "epoch")
        }
    )
    epoch = pl.col("_time_epoch")
    report_ts = pl.col("_report").struct.field("ts")
    ts = pl.coalesce(
        _iso_time(pl.col("_time_ts")),
        _epoch_time(epoch),
        report_ts.str.to_datetime("%d-%b-%Y::%H:%M:%S%.f", time_unit="us", strict=False),
    )
    offset_s = (
        pl.when(epoch.is_not_null())
        .then(pl.lit(0, pl.Int32))
        .otherwise(_offset_seconds(pl.col("_time_offset")))
    )
    level = (
        pl.when(form == "report")
        .then(level_from(pl.col("_report").struct.field("report"), REPORT_LEVELS))
        .when(form == "json")
        .then(level_from(j.struct.field("level"), LEVELS))
        .otherwise(level_from(text.struct.field("level"), LEVELS))
    )
    message = (
        pl.when(form == "json")
        .then(pl.coalesce(json_msg, pl.col("text")))
        .when(form == "junk")
        .then(pl.col("text"))
        .when(~pl.col("_header"))
        .then(pl.col("text"))
        .otherwise(pl.col("_joined"))
        .str.strip_chars()
    )
    unparsed = (
        pl.when(~pl.col("_header") & (pl.col("text").str.strip_chars() == ""))
        .then(pl.lit("blank line before the first RabbitMQ record"))
        .when(~pl.col("_header"))
        .then(pl.lit("continuation line before the first RabbitMQ record"))
        .when(form == "junk")
        .then(pl.lit("not a JSON record in a JSON-lines RabbitMQ log"))
        .when((form == "json") & ~valid_json)
        .then(pl.lit("broken JSON: not one complete object"))
        .when((form == "json") & json_msg.is_null() & json_time.is_null())
        .then(pl.lit("JSON object without time or msg"))
    )
    console = pl.coalesce(
        text.struct.field("console"), pl.col("_json").struct.field("console")
    ).str.strip_chars()
    fields = with_time.with_columns(
        _ts=ts,
        _offset_s=offset_s,
        _level=level,
        _message=message,
        _unparsed=unparsed,
        _pid=pl.when(form == "json")
        .then(j.struct.field("pid"))
        .otherwise(text.struct.field("pid")),
        _console=console,
    )
    return _with_node(fields)


def _iso_time(expr: pl.Expr) -> pl.Expr:
    """``2023-03-15 02:50:01.123456`` or with ``T``, as a naive datetime."""
    return expr.str.replace("T", " ", literal=True).str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False
    )


def _epoch_time(expr: pl.Expr) -> pl.Expr:
    """Epoch seconds (``1678848601.123456``) or microseconds (16 digits), as UTC wall time.

    >>> pl.select(_epoch_time(pl.lit("1678848601.5"))).item()
    datetime.datetime(2023, 3, 15, 2, 50, 1, 500000)
    """
    whole = expr.str.extract(r"^([0-9]+)", 1)
    fraction = expr.str.extract(r"\.([0-9]+)$", 1).fill_null("").str.pad_end(6, "0").str.slice(0, 6)
    micros = (
        pl.when(whole.str.len_chars() >= 16)
        .then(whole.cast(pl.Int64, strict=False))
        .otherwise(
            whole.cast(pl.Int64, strict=False) * 1_000_000 + fraction.cast(pl.Int64, strict=False)
        )
    )
    return pl.from_epoch(micros, time_unit="us")


def _offset_seconds(expr: pl.Expr) -> pl.Expr:
    """``+01:00``, ``-0800`` or ``Z`` as seconds east of UTC; null when no zone is written.

    >>> pl.select(_offset_seconds(pl.lit("-08:00"))).item()
    -28800
    """
    digits = expr.str.replace(":", "", literal=True).str.slice(1)
    size = digits.str.slice(0, 2).cast(pl.Int32, strict=False) * 3600
    size = size + digits.str.slice(2, 2).cast(pl.Int32, strict=False) * 60
    return (
        pl.when(expr == "Z")
        .then(pl.lit(0, pl.Int32))
        .when(expr.str.starts_with("-"))
        .then(-size)
        .otherwise(size)
        .cast(pl.Int32)
    )


def _with_node(fields: pl.LazyFrame) -> pl.LazyFrame:
    """The node each record belongs to: stated by a record of the same file (carried to the
    records around it), else named by the file."""
    message = pl.col("_message")
    stated = message.str.extract(OWN_NODE, 1).str.strip_suffix(".")
    good = pl.col("_unparsed").is_null()
    carried = pl.when(good).then(pl.col("_stated")).forward_fill().backward_fill().over("path")
    paths = (
        fields.select("path")
        .unique()
        .with_columns(_from_file=pl.col("path").str.extract(FILE_NODE, 1).str.strip_suffix("."))
    )
    return (
        fields.with_columns(_stated=stated)
        .join(paths, on="path", how="left", maintain_order="left")
        .with_columns(_node=pl.coalesce(carried, pl.col("_from_file")))
        .drop("_stated", "_from_file")
    )


def _attrs() -> pl.Expr:
    """The structured fields of a record as one JSON object text."""
    message = pl.col("_message")
    peer = message.str.extract_groups(CONNECTION)
    starting = message.str.extract_groups(STARTING)
    j = pl.col("_j")
    mfa = j.struct.field("mfa")
    lifecycle = pl.lit(None, pl.String)
    for word, pattern in reversed(LIFECYCLE):
        lifecycle = pl.when(message.str.contains(pattern)).then(pl.lit(word)).otherwise(lifecycle)
    return json_object(
        pid=pl.col("_pid"),
        connection=peer.struct.field("connection"),
        client=peer.struct.field("client"),
        server=peer.struct.field("server"),
        connection_name=pl.coalesce(
            peer.struct.field("connection_name"), message.str.extract(CLIENT_PROVIDED_NAME, 1)
        ).str.strip_chars(),
        user=message.str.extract(USER, 1),
        vhost=message.str.extract(VHOST, 1),
        queue=message.str.extract(QUEUE, 1),
        node=pl.col("_node"),
        peer_node=message.str.extract(PEER_NODE, 1),
        lifecycle=lifecycle,
        product=starting.struct.field("product"),
        version=starting.struct.field("version"),
        erlang=starting.struct.field("erlang"),
        plugins=message.str.extract(PLUGINS, 1).cast(pl.Int64, strict=False),
        report=pl.col("_report").struct.field("report"),
        domain=j.struct.field("domain"),
        mfa=pl.when(mfa.list.len() == 3).then(
            pl.format("{}:{}/{}", mfa.list.get(0), mfa.list.get(1), mfa.list.get(2))
        ),
        src=pl.when(j.struct.field("file").is_not_null()).then(
            pl.concat_str(
                [j.struct.field("file"), j.struct.field("line")], separator=":", ignore_nulls=True
            )
        ),
        console=pl.col("_console"),
    )


registry.register(
    Parser(
        name=NAME,
        description="RabbitMQ server logs: 3.9+ logger text and JSON, 3.7/3.8 lager, "
        "pre-3.7 error_logger reports",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
    )
)

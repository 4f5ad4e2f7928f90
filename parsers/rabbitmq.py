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
``rabbit@rmq-1_upgrade.log``); its host (``rmq-1``) is the records' ``host`` where no
wrapper or pod log path names one, and where the path names only the folder above
``var/log``. ``attrs`` keeps the AMQP peer, user, vhost, queue, Erlang
pid, the version a node starts with and a ``lifecycle`` word (``starting``, ``started``,
``stopping``, ``stopped``, ``halting``) for the step that infers restarts and upgrades.
"""

from __future__ import annotations

import polars as pl

from parsers import json_text, layouts, registry
from parsers.common import json_value, level_from, only, records
from parsers.registry import Parser, Sample, Score, unnamed

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
#: The 3.9+ header in its usual shape, of fixed width up to the level: a 32-character
#: time with microseconds and zone, ``[level]``, an ASCII pid. Lines it matches are read by
#: position; the others go through :data:`TEXT`.
FIXED_TEXT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2}"
    r" \[[A-Za-z]{3,9}\] <[!-;=?-~]*>(?: |$)"
)
#: Pre-3.7 report header; the message follows on the lines below it.
REPORT = (
    r"^=(?P<report>[A-Z]+) REPORT==== "
    r"(?P<ts>[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}::[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?) ===[ \t]*$"
)
#: A line that starts a record: a 3.7+ time, a pre-3.7 report header or a JSON object.
RECORD_START = r'^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:|=[A-Z]+ REPORT==== |\{")'
#: A line that sets out to be a JSON object (``Starting broker...`` may stick to it).
JSON_LINE = rf'^{_CONSOLE}(?P<json>\{{"[^"]*":.*)$'
_TIME_ONLY = rf"^{_TIME}$"
#: Keys that tell RabbitMQ's JSON records from other JSON lines with a ``msg`` (klog
#: ``--logging-format=json`` writes ``ts``, ``caller``, ``msg``, ``v``): a ``level``, and
#: a ``time`` string or an Erlang ``pid``.
JSON_LEVEL = r'"level":"[A-Za-z]+"'
#: RabbitMQ's own time forms (``rfc3339_space`` by default, or epoch numbers); Go loggers
#: write ``T`` between date and time, or Go's ``2014-03-10 19:57:38.5 -0400 EDT`` with a
#: space before the offset, and have no Erlang pid.
_JSON_SPACED_TIME = r'"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+(?:Z|[+-][0-9:]+)?"'
JSON_TIME = rf'"(?:time|timestamp)":(?:{_JSON_SPACED_TIME}|[0-9])'
JSON_PID = r'"pid":"<[0-9]+\.[0-9]+\.[0-9]+>"'
#: Where a RabbitMQ record starts: a text header (any generation) or a JSON record,
#: which writes its own time form (a space between date and time, or epoch numbers; Go
#: loggers write ``T``, as RabbitMQ's ``rfc3339_T`` does, with an Erlang ``pid``) and
#: ``level`` first.
RECORD_START = unnamed(
    "|".join(
        [
            TEXT,
            REPORT,
            rf'^{_CONSOLE}\{{"(?:time|timestamp)":(?:{_JSON_SPACED_TIME}'
            r'|[0-9][0-9.]*),"level":"[A-Za-z]+"',
            # ``time_format = rfc3339_T`` writes Go's ``T``: the Erlang pid tells it apart
            rf'^{_CONSOLE}\{{"(?:time|timestamp)":"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[^"]*",'
            rf'"level":"[A-Za-z]+",.*{JSON_PID}',
        ]
    )
)


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


#: Literals of which a RabbitMQ sample holds one: ``[level] <pid>``, a pre-3.7 report
#: header, a JSON record's message key (pasted JSON may be pretty-printed).
LITERALS = ("] <", " REPORT==== ", '"msg"')


def sniff(sample: list[str]) -> Score:
    """Score ``sample``: a cheap literal first, then the share of lines that are headers.

    >>> sniff(["2023-03-15 02:50:01.123456+00:00 [info] <0.230.0> Server startup complete"]).score
    1.0
    >>> sniff(["I0314 18:00:01.123456       1 proxier.go:812] Sync failed"]).score
    0.0
    """
    sample = json_text.compact_sample(sample)
    lines = pl.Series([s for s in sample if s.strip()], dtype=pl.String)
    if lines.len() == 0:
        return Score(0.0, "no non-blank lines to look at")
    lines = lines.str.replace_all(_COLOUR, "")
    if not lines.str.contains_any(list(LITERALS)).any():
        return Score(0.0, "no '[level] <pid>', '=... REPORT====' or JSON 'msg' field")
    text = lines.str.extract_groups(TEXT)
    zoned = text.struct.field("offset").is_not_null()
    lager = text.struct.field("ts").is_not_null() & ~zoned
    epoch = text.struct.field("epoch").is_not_null()
    report = lines.str.contains(REPORT)
    json = (
        lines.str.contains(JSON_LINE)
        & lines.str.contains('"(?:msg|message)":')
        & lines.str.contains(JSON_LEVEL)
        & (lines.str.contains(JSON_TIME) | lines.str.contains(JSON_PID))
    )
    kinds = {
        "RabbitMQ 3.9+ headers (time with zone, [level], <pid>)": zoned.sum(),
        "RabbitMQ 3.7/3.8 lager headers (time without zone, [level], <pid>)": lager.sum(),
        "RabbitMQ headers with epoch times": epoch.sum(),
        "pre-3.7 '=LEVEL REPORT====' headers": report.sum(),
        "RabbitMQ JSON records (level, msg, and a time string or an Erlang pid)": json.sum(),
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
    """Records from RabbitMQ log lines of any generation (see the module docstring).

    The work is collected step by step so that what a file does not need is skipped as a
    whole: joining lines when no record has more than one, decoding JSON when no line is
    JSON, escaping attribute values when none holds a character to escape.
    """
    lines = json_text.compact_lines(lines)
    flagged = _flag_lines(_without_colours(lines)).collect(engine="in-memory")
    has_json = bool((flagged["_form"] == "json").any())
    grouped = _group_records(flagged)
    del flagged
    fields = _record_fields(grouped.lazy(), has_json=has_json).collect(engine="in-memory")
    del grouped
    fields = fields.with_columns(**_message_parts()).with_columns(**_attr_values(has_json))
    return records(
        fields.lazy(),
        ts="_ts",
        utc_offset_s="_offset_s",
        source=pl.lit(NAME),
        host=_host(fields["path"]),
        component=pl.coalesce(pl.col("_node"), pl.col("container"), pl.lit(NAME)),
        level="_level",
        message="_message",
        attrs=_attrs(fields),
        unparsed="_unparsed",
    )


#: An ANSI colour code, as the console (and ``docker logs`` of it) writes around lines.
_COLOUR = r"\x1b\[[0-9;]*m"


def _without_colours(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Lines with ANSI colour codes taken out (only lines holding an escape are touched)."""
    text = pl.col("text")
    coloured = text.str.contains("\x1b", literal=True)
    return lines.with_columns(
        text=pl.when(coloured).then(text.str.replace_all(_COLOUR, "")).otherwise(text)
    )


def _flag_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Read each line's header, if it has one, and say which lines start a record.

    Lines of the usual 3.9+ shape (:data:`FIXED_TEXT`) are read by position; only the
    others are given to the regexes, and each regex only the lines that hold its literal.
    A 3.9+ line that repeats the line above's microsecond time, level and pid carries the
    next line of the same message. In a JSON file every object is a record, and so is any
    other non-blank line, so that junk is reported line by line.
    """
    text = pl.col("text")
    fixed = pl.col("_fixed")
    other = pl.col("_other")
    close = only(fixed, text).str.find("]", literal=True)
    pid_end = only(fixed, text).str.find(">", literal=True)
    read = lines.with_columns(_fixed=text.str.contains(FIXED_TEXT)).with_columns(
        _other=only(~fixed & text.str.contains(" [", literal=True), text).str.extract_groups(TEXT),
        _report=only(text.str.starts_with("="), text).str.extract_groups(REPORT),
        _json=only(text.str.contains('{"', literal=True), text).str.extract_groups(JSON_LINE),
    )
    heads = read.with_columns(
        _ts_text=pl.coalesce(only(fixed, text.str.head(26)), other.struct.field("ts")),
        _offset=pl.coalesce(only(fixed, text.str.slice(26, 6)), other.struct.field("offset")),
        _epoch=other.struct.field("epoch"),
        _level_word=pl.coalesce(
            only(fixed, text.str.slice(34, close - 34)), other.struct.field("level")
        ),
        _pid=pl.coalesce(
            only(fixed, text.str.slice(close + 2, pid_end - close - 1)),
            other.struct.field("pid"),
        ),
        _head_len=pl.coalesce(pid_end + 1, other.struct.field("head").str.len_chars()),
        _console=other.struct.field("console"),
    ).drop("_other")
    ts_text = pl.col("_ts_text")
    is_text = ts_text.is_not_null() | pl.col("_epoch").is_not_null()
    is_report = pl.col("_report").struct.field("ts").is_not_null()
    is_json = pl.col("_json").struct.field("json").is_not_null()
    same_prefix = [pl.col("_level_word") == pl.col("_level_word").shift(1)]
    same_prefix += [
        pl.col(c).eq_missing(pl.col(c).shift(1)) for c in ("_ts_text", "_epoch", "_offset", "_pid")
    ]
    repeats = (
        is_text
        & _repeatable_time(ts_text, pl.col("_epoch"))
        & is_text.shift(1).fill_null(False)
        & pl.all_horizontal(same_prefix).fill_null(False)
    )
    json_mode = (is_json.sum() > (is_text | is_report).sum()).over("path")
    # a RabbitMQ JSON record starts a record among text lines too (a format switched)
    json_record = is_json & only(is_json, text).str.contains(JSON_LEVEL).fill_null(False)
    blank = (only(~is_text, text).str.strip_chars().str.len_chars() == 0).fill_null(False)
    header = (
        (is_text & ~repeats)
        | is_report
        | json_record
        | (json_mode & (is_json | (~is_text & ~blank)))
    )
    form = (
        pl.when((json_mode & is_json) | json_record)
        .then(pl.lit("json"))
        .when(is_text)
        .then(pl.lit("text"))
        .when(is_report)
        .then(pl.lit("report"))
        .when(json_mode & ~blank)
        .then(pl.lit("junk"))
    )
    body = (
        pl.when(fixed)
        .then(text.str.slice(pl.col("_head_len") + 1))
        .when(is_text)
        .then(only(~fixed, text).str.slice(pl.col("_head_len")).str.strip_prefix(" "))
        .when(is_report)
        .then(pl.lit(""))
        .otherwise(text)
    )
    count = header.cast(pl.Int64).cum_sum()
    return heads.with_columns(
        _header=header,
        _form=form,
        _body=body,
        _record=pl.when(count == 0).then(-pl.col("line").cast(pl.Int64)).otherwise(count),
    ).drop("_head_len", "stream")


def _group_records(flagged: pl.DataFrame) -> pl.DataFrame:
    """One row per record: its first line's fields, its last line and its message.

    Only continuation lines are grouped (most records are one line); a record's lines are
    consecutive, so the groups, in order, belong to the starting lines followed by a
    continuation line, in order, and are put in their place. A file without continuation
    lines is not grouped at all.
    """
    tail = ~pl.col("_header") & (pl.col("_record") > 0)
    flagged = flagged.with_columns(_tail=tail, _has_tail=~tail & tail.shift(-1).fill_null(False))
    if not flagged["_tail"].any():
        return flagged.with_columns(_joined=pl.col("_body")).drop("_tail", "_has_tail")
    tails = (
        flagged.lazy()
        .filter("_tail")
        .group_by("_record", maintain_order=True)
        .agg(
            pl.col("line").min().alias("_least"),
            pl.col("end_line").max(),
            pl.col("_body"),
        )
        .with_columns(pl.col("_body").list.join("\n"))
        .collect(engine="in-memory")
    )
    starts = flagged.filter(~pl.col("_tail")).drop("_tail")
    where = starts["_has_tail"].arg_true()
    body = starts["_body"]
    joined = body.gather(where) + "\n" + tails["_body"]
    span = pl.DataFrame(
        {
            "line": starts["line"].gather(where),
            "end_line": starts["end_line"].gather(where),
            "_least": tails["_least"],
            "_most": tails["end_line"],
        }
    ).select(
        line=pl.min_horizontal("line", "_least"), end_line=pl.max_horizontal("end_line", "_most")
    )
    return starts.drop("_has_tail").with_columns(
        starts["line"].scatter(where, span["line"]),
        starts["end_line"].scatter(where, span["end_line"]),
        body.clone().scatter(where, joined).alias("_joined"),
    )


def _record_fields(grouped: pl.LazyFrame, *, has_json: bool) -> pl.LazyFrame:
    """Time, zone, level, pid and message of each record, whatever its form."""
    form = pl.col("_form")
    text = pl.col("text")
    fixed = pl.col("_fixed")
    is_json = form == "json"
    raw_json = pl.col("_json").struct.field("json")
    if has_json:
        valid_json = is_json & raw_json.str.json_path_match("$").is_not_null()
        decoded = only(valid_json, raw_json).str.json_decode(_JSON_FIELDS)
    else:
        valid_json = pl.lit(False)
        decoded = pl.lit(None, _JSON_FIELDS)
    with_json = grouped.with_columns(_j=decoded)
    j = pl.col("_j")
    json_time = pl.coalesce(j.struct.field("time"), j.struct.field("timestamp"))
    json_msg = pl.coalesce(j.struct.field("msg"), j.struct.field("message"))
    json_parts = json_time.str.strip_chars().str.extract_groups(_TIME_ONLY)
    text_parts = {"ts": pl.col("_ts_text"), "offset": pl.col("_offset"), "epoch": pl.col("_epoch")}
    with_time = with_json.with_columns(
        **{
            f"_time_{part}": pl.when(is_json)
            .then(json_parts.struct.field(part))
            .otherwise(text_parts[part])
            for part in ("ts", "offset", "epoch")
        }
    )
    epoch = pl.col("_time_epoch")
    report_ts = pl.col("_report").struct.field("ts")
    ts = pl.coalesce(
        _fixed_time(only(fixed & ~is_json, text)),
        _iso_time(only(~fixed | is_json, pl.col("_time_ts"))),
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
        .when(is_json)
        .then(level_from(j.struct.field("level"), LEVELS))
        .otherwise(level_from(pl.col("_level_word"), LEVELS))
    )
    message = (
        pl.when(is_json)
        .then(pl.coalesce(json_msg, text))
        .when(form == "junk")
        .then(text)
        .when(~pl.col("_header"))
        .then(text)
        .otherwise(pl.col("_joined"))
        .str.strip_chars()
    )
    unparsed = (
        pl.when(~pl.col("_header") & (text.str.strip_chars() == ""))
        .then(pl.lit("blank line before the first RabbitMQ record"))
        .when(~pl.col("_header"))
        .then(pl.lit("continuation line before the first RabbitMQ record"))
        .when(form == "junk")
        .then(pl.lit("not a JSON record in a JSON-lines RabbitMQ log"))
        .when(is_json & ~valid_json)
        .then(pl.lit("broken JSON: not one complete object"))
        .when(is_json & json_msg.is_null() & json_time.is_null())
        .then(pl.lit("JSON object without time or msg"))
    )
    console = pl.coalesce(
        pl.col("_console"), pl.col("_json").struct.field("console")
    ).str.strip_chars()
    fields = with_time.with_columns(
        _ts=ts,
        _offset_s=offset_s,
        _level=level,
        _message=message,
        _unparsed=unparsed,
        _pid=pl.when(is_json).then(j.struct.field("pid")).otherwise(pl.col("_pid")),
        _console=console,
    ).with_columns(_unparsed=pl.coalesce("_unparsed", _impossible_time(report_ts)))
    return _with_node(fields)


def _impossible_time(report_ts: pl.Expr) -> pl.Expr:
    """Why a record's written time cannot be read (``2023-02-30``, ``+25:00``), or null:
    such a record is unparsed with its reason, never given a null or shifted time."""
    written = pl.coalesce(pl.col("_time_ts"), pl.col("_time_epoch"), report_ts)
    return (
        pl.when(pl.col("_header") & written.is_not_null() & pl.col("_ts").is_null())
        .then(pl.format("RabbitMQ record with an impossible date or time: {}", written))
        .when(pl.col("_offset_s").abs() > 14 * 3600)
        .then(pl.format("RabbitMQ record with an impossible UTC offset: {}", "_time_offset"))
    )


def _fixed_time(expr: pl.Expr) -> pl.Expr:
    """``2023-03-15 02:50:01.123456`` at the start of a line, as a naive datetime. The whole
    seconds are parsed with polars' cache of repeated strings (lines of one second share
    them), the microseconds added after.

    >>> pl.select(_fixed_time(pl.lit("2023-03-15 02:50:01.123456+00:00 [info]"))).item()
    datetime.datetime(2023, 3, 15, 2, 50, 1, 123456)
    """
    second = expr.str.head(19).str.to_datetime(
        "%Y-%m-%d %H:%M:%S", time_unit="us", strict=False, cache=True
    )
    return second + pl.duration(microseconds=expr.str.slice(20, 6).cast(pl.Int64, strict=False))


def _iso_time(expr: pl.Expr) -> pl.Expr:
    """``2023-03-15 02:50:01.123456`` or with ``T``, as a naive datetime."""
    return expr.str.replace("T", " ", literal=True).str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False
    )


def _repeatable_time(ts_text: pl.Expr, epoch: pl.Expr) -> pl.Expr:
    """Whether a header's time is one 3.9+ repeats on each line of a message: the default
    microseconds, or ``epoch_usecs`` / ``epoch_secs`` to the millisecond or finer (only
    3.9+ writes epoch times). Lager's milliseconds (3.8 and older) are not: a lager line
    that repeats the time, level and pid above it is another message of that process.

    >>> pl.select(_repeatable_time(pl.lit(None, pl.String), pl.lit("1678817460.5"))).item()
    False
    """
    return pl.coalesce(ts_text.str.len_chars() >= 26, epoch.str.len_chars() >= 14)


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


def _host(paths: pl.Series) -> pl.Expr:
    """The host a wrapper or the path names, else the node's; but where the host is only
    the folder above ``var/log`` (``logs/var/log/rabbitmq/rabbit@mq-b.log``), the node the
    file states is the better word: RabbitMQ names its own node."""
    guesses = {}
    for path in paths.unique().drop_nulls().to_list():
        hints = layouts.hints_from_path(path)
        if hints.node and not hints.pod:
            guesses[path] = hints.node
    node_host = _after_at(pl.col("_node"))
    if not guesses:
        return pl.coalesce(pl.col("host"), node_host)
    guessed = pl.col("path").replace_strict(guesses, default=None, return_dtype=pl.String)
    only_guessed = pl.col("host").eq_missing(guessed) & node_host.is_not_null()
    return pl.when(only_guessed).then(node_host).otherwise(pl.coalesce(pl.col("host"), node_host))


def _after_at(node: pl.Expr) -> pl.Expr:
    """The host of a node name: what follows its ``@``; null without one."""
    return node.str.slice(node.str.find("@", literal=True) + 1)


def _with_node(fields: pl.LazyFrame) -> pl.LazyFrame:
    """The node each record belongs to: stated by a record of the same file (carried to the
    records around it), else named by the file."""
    message = pl.col("_message")
    may_state = message.str.contains("node|started")
    stated = only(may_state, message).str.extract(OWN_NODE, 1).str.strip_suffix(".")
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


#: ``attrs`` keys in the order they are written. Values of the keys in ``_SAFE_ATTRS``
#: are made of characters JSON never escapes (their patterns allow no others).
_ATTRS = (
    "pid",
    "connection",
    "client",
    "server",
    "connection_name",
    "user",
    "vhost",
    "queue",
    "node",
    "peer_node",
    "lifecycle",
    "product",
    "version",
    "erlang",
    "plugins",
    "report",
    "domain",
    "mfa",
    "src",
    "console",
)
_SAFE_ATTRS = {"connection", "client", "server", "node", "peer_node", "lifecycle", "product"}
_SAFE_ATTRS |= {"version", "erlang", "plugins", "report", "console"}
#: What JSON escapes in a string: the quote, the backslash and control characters.
_TO_ESCAPE = r'["\\\x00-\x1f]'


def _message_parts() -> dict[str, pl.Expr]:
    """The parts of a message that several ``attrs`` keys are read from (``_peer``,
    ``_starting``), each pattern run only on the messages holding a literal it needs."""
    message = pl.col("_message")
    return {
        "_peer": only(message.str.contains(" -> ", literal=True), message).str.extract_groups(
            CONNECTION
        ),
        "_starting": only(
            message.str.contains(" on Erlang ", literal=True), message
        ).str.extract_groups(STARTING),
    }


def _attr_values(has_json: bool) -> dict[str, pl.Expr]:
    """The value of every ``attrs`` key (``_a_KEY``), null where a record has none.

    Each pattern runs only on the messages holding a literal it needs."""
    message = pl.col("_message")
    peer = pl.col("_peer")
    starting = pl.col("_starting")
    named = only(message.str.contains("client-provided name: ", literal=True), message)
    about_node = only(message.str.contains("ode ", literal=True), message)
    opening = message.str.starts_with("S") | message.str.starts_with("H")
    maybe_lifecycle = only(opening | message.str.contains(" is asked to ", literal=True), message)
    lifecycle = pl.lit(None, pl.String)
    for word, pattern in reversed(LIFECYCLE):
        lifecycle = (
            pl.when(maybe_lifecycle.str.contains(pattern)).then(pl.lit(word)).otherwise(lifecycle)
        )
    values = {
        "pid": pl.col("_pid"),
        "connection": peer.struct.field("connection"),
        "client": peer.struct.field("client"),
        "server": peer.struct.field("server"),
        "connection_name": pl.coalesce(
            peer.struct.field("connection_name"), named.str.extract(CLIENT_PROVIDED_NAME, 1)
        ).str.strip_chars(),
        "user": only(message.str.contains("user", literal=True), message).str.extract(USER, 1),
        "vhost": only(message.str.contains("vhost", literal=True), message).str.extract(VHOST, 1),
        "queue": only(message.str.contains("queue '", literal=True), message).str.extract(QUEUE, 1),
        "node": pl.col("_node"),
        "peer_node": about_node.str.extract(PEER_NODE, 1),
        "lifecycle": lifecycle,
        "product": starting.struct.field("product"),
        "version": starting.struct.field("version"),
        "erlang": starting.struct.field("erlang"),
        "plugins": only(message.str.starts_with("Server startup complete"), message)
        .str.extract(PLUGINS, 1)
        .cast(pl.Int64, strict=False)
        .cast(pl.String),
        "report": pl.col("_report").struct.field("report"),
        "domain": None,
        "mfa": None,
        "src": None,
        "console": pl.col("_console"),
    }
    if has_json:
        j = pl.col("_j")
        mfa = j.struct.field("mfa")
        values["domain"] = j.struct.field("domain")
        values["mfa"] = pl.when(mfa.list.len() == 3).then(
            pl.format("{}:{}/{}", mfa.list.get(0), mfa.list.get(1), mfa.list.get(2))
        )
        values["src"] = pl.when(j.struct.field("file").is_not_null()).then(
            pl.concat_str(
                [j.struct.field("file"), j.struct.field("line")], separator=":", ignore_nulls=True
            )
        )
    return {
        f"_a_{key}": pl.lit(None, pl.String) if value is None else value
        for key, value in values.items()
    }


def _attrs(fields: pl.DataFrame) -> pl.Expr:
    """The structured fields of a record as one JSON object text, keys without a value left
    out. A value is quoted as it is unless it holds something to escape, which is looked
    for once per key over the whole column; a key no record has is not written at all."""
    parts = []
    for key in _ATTRS:
        column = fields[f"_a_{key}"]
        if column.null_count() == column.len():
            continue
        value = pl.col(f"_a_{key}")
        if key == "plugins":
            parts.append(pl.format(f'"{key}":{{}}', value))
        elif key in _SAFE_ATTRS or not column.str.contains(_TO_ESCAPE).any():
            parts.append(pl.format(f'"{key}":"{{}}"', value))
        else:
            escape = value.str.contains(_TO_ESCAPE)
            written = (
                pl.when(escape)
                .then(json_value(only(escape, value)))
                .otherwise(pl.format('"{}"', value))
            )
            parts.append(pl.lit(f'"{key}":') + written)
    if not parts:
        return pl.lit("{}")
    return pl.lit("{") + pl.concat_str(parts, separator=",", ignore_nulls=True) + pl.lit("}")


registry.register(
    Parser(
        name=NAME,
        description="RabbitMQ server logs: 3.9+ logger text and JSON, 3.7/3.8 lager, "
        "pre-3.7 error_logger reports",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=LITERALS,
        record_start=RECORD_START,
    )
)

r"""klog text: kube-proxy, kubelet and every other Kubernetes program that logs through klog.

Each record starts with a fixed-width header, then the caller and the message::

    Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg
    I0314 18:00:01.123456       1 proxier.go:1520] "Sync failed" retryingTime="30s"

``L`` is the severity (``I`` info, ``W`` warning, ``E`` error, ``F`` fatal), the thread id is
padded with spaces to seven columns, and there is no year and no zone: the loader settles
both (``ts`` carries :data:`~parsers.common.PLACEHOLDER_YEAR`).

Messages come in two shapes. klog v2 *structured* records quote the message and follow it
with ``key=value`` pairs: strings quoted the way Go's ``strconv.Quote`` does, other values
bare (``ipFamily=IPv4``, ``numServices=812``, ``endpoints=[10.0.1.5:8080 10.0.2.7:8080]``),
and since klog 2.60 a value with line breaks as ``key=<`` then tab-indented lines and a
closing `` >`` line. The quoted message becomes ``template`` and the pairs go to ``attrs``.
Older printf-style messages (``Failed to execute iptables-restore: exit status 1 ...``)
keep ``template`` null, for the loader to mask. ``attrs`` always holds the ``caller``
(``file:line``, which tells one build of a binary from another) and the ``thread``.

Lines without a header belong to the record above: multi-line values, Go panics and
goroutine dumps, iptables-restore input and the ``)`` that closes an old-style error.
Lines before the first header are unparsed.

Messages of the shapes nearly every record has (every value quoted, every value a plain
token, or ``ErrorS`` with one ``<`` block) are read with a few literal replacements on
whole columns; the rest take the exact path, which decodes every value. Either way no
Python runs per line.
"""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl

from parsers import registry
from parsers.common import (
    LEVEL,
    PLACEHOLDER_YEAR,
    file_stem,
    in_year,
    join_continuations,
    json_object,
    json_value,
    records,
)
from parsers.registry import Parser, Sample, Score

NAME = "klog"

LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "critical"}

#: Programs that log through klog, named as their containers and log files are.
PROGRAMS = frozenset(
    {
        "kube-proxy",
        "kubelet",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "cloud-controller-manager",
        "cluster-autoscaler",
        "kube-state-metrics",
        "metrics-server",
        "vpa-recommender",
        "vpa-updater",
        "vpa-admission-controller",
        "node-problem-detector",
        "ingress-nginx-controller",
        "csi-provisioner",
        "csi-attacher",
        "csi-resizer",
        "csi-snapshotter",
        "node-driver-registrar",
        "liveness-probe",
        "ebs-plugin",
        "kube-flannel",
        "kube-router",
        "konnectivity-agent",
        "cert-manager-controller",
        "cert-manager-cainjector",
        "cert-manager-webhook",
    }
)

# --- shapes (Rust regex) ----------------------------------------------------------------

#: The header up to and including ``file:line]``; the file name is printable ASCII.
HEADER = (
    r"^[IWEF][0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6} +[0-9]+ "
    r"[!#-\[\^-~]+:[0-9]+\](?: |$)"
)
#: Where the thread id starts: everything before it has a fixed width.
_THREAD_AT = 22
#: The first of the four lines klog writes at the top of each log file it creates
#: (``--log_dir``, ``--log_file``): when, on which machine, by which build, in which
#: format. The time is the one clock reading in a klog file that states its year.
FILE_HEADER = r"^Log file created at: [0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
_CREATED = "Log file created at: "
_MACHINE = "Running on machine: "
#: What the header above a line says, as :func:`with_file_header` gives it to each line.
FILE_HEADER_STATE = ("_created", "_opened", "_machine")
#: ``_opened`` where a file starts before any header: it stops the forward fill.
_NOT_STATED = datetime(1, 1, 1)
#: A record starts at a klog header or at a log file's header.
RECORD_START = f"{HEADER}|{FILE_HEADER}"

_KEY = r"[A-Za-z_][A-Za-z0-9_.\-/]*"
#: Any key klog can write: a key that is not a string is written with ``%s``
#: (``%!s(int=1)``, ``{name}``), so anything but a blank, a quote or a bare ``=``.
_ANY_KEY = r'(?:[^\s="()]|\([^()\s]*\))+'
#: A Go-quoted string (``strconv.Quote``).
_QUOTED = r'"(?:[^"\\]|\\.)*"'
#: A line of a multi-line value: klog indents it with a tab, which a terminal, ``journalctl``
#: or a paste may have turned into spaces (two or more: one space opens the closing `` >``).
_BLOCK_LINE = r"(?:\t| {2,})[^\n]*"
#: A multi-line value: ``<``, indented lines, `` >``; or, cut short where a paste or an
#: excerpt ended, its indented lines to the end of the record.
_BLOCK = rf"<\n(?:{_BLOCK_LINE}\n)*(?: >|{_BLOCK_LINE}$)"


def _bracketed(depth: int) -> str:
    """A ``[...]`` or ``{...}`` with spaces inside, nested up to ``depth`` levels."""
    inner = r"[^\[\]{}\n]"
    if depth > 1:
        inner = rf"(?:{inner}|{_bracketed(depth - 1)})"
    return rf"(?:\[{inner}*\]|\{{{inner}*\}})"


#: A bare value: a token, in which brackets may hold spaces: what Go's ``%+v`` writes
#: (``event=&{ID:96d4 Type:ContainerStarted}``, ``labels=map[app:web tier:db]``,
#: ``ports=[{Name:http Port:80}]``) and a JSON object (``obj={"name":"a b"}``).
_BARE = rf"(?:{_bracketed(3)}|[^ \n])*"
_VALUE = rf"(?:{_QUOTED}|{_BLOCK}|{_BARE})"
#: A structured message, as far as its pairs go; what follows must start a new line.
_STRUCTURED = rf"^(?P<quoted>{_QUOTED})(?P<pairs>(?: {_ANY_KEY}={_VALUE})*)(?:\n|$)"

#: Printable ASCII inside a quoted string: no quote, and only escapes JSON shares.
_PLAIN_CHAR = r"(?:[ !#-\[\]-~]|\\[\\/bfnrt]|\\u[0-9a-fA-F]{4})"
#: The same without ``=``: a quoted string ends with one of these, so that ``="`` only
#: ever opens a value.
_PLAIN_LAST = r"(?:[ !#-<>-\[\]-~]|\\[\\/bfnrt]|\\u[0-9a-fA-F]{4})"
#: A quoted string of those that does not start with a space and does not end with ``=``,
#: so that ``" `` is always a closing quote and a separator, and ``="`` an opening one.
_PLAIN_QUOTED = (
    r'"(?:(?:[!#-<>-\[\]-~]|\\[\\/bfnrt]|\\u[0-9a-fA-F]{4})'
    rf'|(?:[!#-\[\]-~]|\\[\\/bfnrt]|\\u[0-9a-fA-F]{{4}}){_PLAIN_CHAR}*{_PLAIN_LAST})?"'
)
#: Printable ASCII that JSON can hold between quotes as it stands, with no ``=`` in it.
_PLAIN_BARE = r"[!#-;>-Z\]-z|-~][!#-<>-\[\]-~]*"
#: The two shapes nearly every structured message has, both read with literal
#: replacements: every value quoted, or every value a plain bare token. All printable
#: ASCII, so that byte offsets (``str.find``) and character offsets (``str.slice``) agree.
_PLAIN_PAIRS = rf"^{_PLAIN_QUOTED}(?:(?: {_KEY}={_PLAIN_QUOTED})*|(?: {_KEY}={_PLAIN_BARE})+)$"
#: The shape of ``ErrorS`` with an error of several lines: a plain message and one
#: ``<`` block of printable ASCII and tabs.
_PLAIN_BLOCK = rf"^{_PLAIN_QUOTED} {_KEY}=<\n(?:\t[\t -~]*\n)* >$"

# --- samples ----------------------------------------------------------------------------

SAMPLES = (
    Sample(
        'I0314 17:41:02.518302       1 server_others.go:206] "Using iptables Proxier"\n'
        'I0314 17:41:02.518331       1 server_others.go:213] "kube-proxy running in '
        'dual-stack mode" ipFamily=IPv4\n'
        'I0314 17:41:02.519047       1 server.go:661] "Version info" version="v1.24.10"\n'
        'I0314 17:41:02.520110       1 config.go:317] "Starting service config controller"\n'
        "I0314 17:41:02.520127       1 shared_informer.go:255] Waiting for caches to sync "
        "for service config\n"
        "I0314 17:41:02.620634       1 shared_informer.go:262] Caches are synced for "
        "service config\n",
        expect={
            "level": "info",
            "template": "Using iptables Proxier",
            "message": '"Using iptables Proxier"',
            "attrs.caller": "server_others.go:206",
            "attrs.thread": "1",
        },
        rows=6,
    ),
    Sample(
        'E0314 18:00:01.123456       1 proxier.go:1508] "Failed to execute iptables-restore"'
        ' err="exit status 1 (iptables-restore: line 8022 failed\\n)"\n'
        'I0314 18:00:01.123601       1 proxier.go:858] "Sync failed" retryingTime="30s"\n',
        expect={
            "level": "error",
            "template": "Failed to execute iptables-restore",
            "attrs.err": "exit status 1 (iptables-restore: line 8022 failed\n)",
            "attrs.caller": "proxier.go:1508",
        },
        rows=2,
    ),
    Sample(
        'E0314 18:00:31.204771       1 proxier.go:1508] "Failed to execute iptables-restore"'
        " err=<\n"
        "\texit status 1 (iptables-restore: line 8022 failed\n"
        "\t)\n"
        " >\n"
        'I0314 18:00:31.204840       1 proxier.go:858] "Sync failed" retryingTime="30s"\n',
        expect={
            "level": "error",
            "line": 1,
            "template": "Failed to execute iptables-restore",
            "attrs.err": "exit status 1 (iptables-restore: line 8022 failed\n)",
        },
        rows=2,
    ),
    Sample(
        "I0313 14:02:11.907126       1 server.go:643] Version: v1.21.14\n"
        "E0313 14:05:40.013398       1 proxier.go:1600] Failed to execute iptables-restore: "
        "exit status 1 (iptables-restore: line 8022 failed\n"
        ")\n"
        "I0313 14:05:40.013520       1 proxier.go:857] Sync failed; retrying in 30s\n"
        "W0313 14:05:41.000611       1 reflector.go:324] k8s.io/client-go/informers/"
        "factory.go:134: watch of *v1.Service ended with: an error on the server "
        '("unable to decode an event from the watch stream") has prevented the request '
        "from succeeding\n",
        expect={"level": "info", "message": "Version: v1.21.14", "attrs.caller": "server.go:643"},
        rows=4,
    ),
)

# --- detection --------------------------------------------------------------------------

#: Lines that only ever continue a record: indented lines, the ``)`` closing an old-style
#: error, Go panics and goroutine dumps, and iptables-restore input.
_CONTINUATION = re.compile(
    r"^(?:[\t ]|\)|panic: |fatal error: |goroutine [0-9]+ \[|created by |\[signal "
    r"|[^\s(]+\(.*\)$|\*[a-z]+$|:[A-Z][A-Z0-9-]* |-[ADINX] |COMMIT$)"
)
_HEADER_RE = re.compile(HEADER)
#: The lines of a log file's header, which count against klog no more than continuations.
_FILE_HEADER_LINE = re.compile(
    r"^(?:Log file created at: |Running on machine: |Binary: Built with |Log line format: )"
)


def sniff(sample: list[str]) -> Score:
    """Share of the sample's lines that carry a klog header.

    Lines that can only be continuations (tab-indented, goroutine dumps) do not count
    against it, so a file that opens with a panic is still recognised.
    """
    lines = [s for s in sample if s.strip()]
    if not lines or not any(s[:1] in LEVELS and "] " in s for s in lines):
        return Score(0.0, "no line starts like a klog header")
    headers = sum(1 for s in lines if _HEADER_RE.match(s))
    if headers == 0:
        return Score(0.0, "no line has a klog header")
    counted = sum(1 for s in lines if not (_CONTINUATION.match(s) or _FILE_HEADER_LINE.match(s)))
    share = headers / max(counted, headers)
    return Score(share, f"{headers} of {counted} sample lines have a klog header")


# --- parsing ----------------------------------------------------------------------------


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Records from klog lines, in file order."""
    starts = starts_record(pl.col("text"))
    return read_records(join_continuations(with_file_header(lines), starts, keep=FILE_HEADER_STATE))


def starts_record(text: pl.Expr) -> pl.Expr:
    """Whether a line starts a record (:data:`RECORD_START`): tested as two shapes, the
    header's regex alone being faster than one of two branches."""
    return text.str.contains(HEADER) | text.str.starts_with(_CREATED)


def with_file_header(lines: pl.LazyFrame) -> pl.LazyFrame:
    """``lines`` (several files' one after the other) with what the log file header above
    each states: when the file was created (``_opened``) and on which machine
    (``_machine``); null above a file's first header; and whether it is a header's first
    line (``_created``). Worked out on lines, where each
    file's lines are still together, with a forward fill that starts again with each
    file: no Python, no window over the files."""
    text = pl.col("text")
    created = text.str.starts_with(_CREATED)
    stated = (
        pl.when(created)
        .then(text)
        .str.slice(len(_CREATED))
        .str.to_datetime("%Y/%m/%d %H:%M:%S", time_unit="us", strict=False)
    )
    new_file = (pl.col("path") != pl.col("path").shift(1)).fill_null(True)
    machine = pl.when(created.shift(1) & ~new_file).then(text).str.extract(f"^{_MACHINE}(.+)$", 1)
    # a file that starts without a header starts with nothing stated: an empty marker
    # stops the fill, and is null again after it
    return lines.with_columns(
        _created=created,
        _opened=pl.when(created)
        .then(stated)
        .when(new_file)
        .then(pl.lit(_NOT_STATED))
        .forward_fill(),
        _machine=pl.when(machine.is_not_null())
        .then(machine)
        .when(created | new_file)
        .then(pl.lit(""))
        .forward_fill(),
    ).with_columns(
        _opened=pl.when(pl.col("_opened") != _NOT_STATED).then("_opened"),
        _machine=pl.when(pl.col("_machine") != "").then("_machine"),
    )


def read_records(joined: pl.LazyFrame) -> pl.LazyFrame:
    """Records from :func:`~parsers.common.join_continuations`' rows; rows without a
    header (lines before the first one) are unparsed.

    Structured messages of the two plain shapes and of the ``ErrorS`` block shape are read
    with literal replacements, the others decoded exactly. Each way reads a frame of its
    own rows only, and the frames are merged back in file order: an operation costs time
    on every row it is given, null or not.

    A log file's header (:data:`FILE_HEADER`, its three lines below it) is a record of its
    own, at the time it states; the records after it take their year from that time and
    their host from its machine, where nothing else names one."""
    text = pl.col("text")
    header = pl.col("header")
    message = pl.col("message")
    created = pl.col("_created")
    close = text.str.find("]", literal=True)
    structured = header & message.str.starts_with('"')
    block = pl.when(structured & ~pl.col("_plain")).then(message).str.contains(_PLAIN_BLOCK)
    panic = text.str.contains(r"\n(?:panic: |fatal error: )")
    level = text.str.head(1).replace_strict(LEVELS, default=None, return_dtype=LEVEL)
    base = (
        joined.with_columns(_created=header & created)
        .with_columns(
            message=text.str.slice(close + 2),
            ts=_placeholder_ts(text),
            level=pl.when(panic).then(pl.lit("critical", LEVEL)).otherwise(level),
            _where=text.str.slice(_THREAD_AT, close - _THREAD_AT).str.strip_chars_start(" "),
        )
        .with_columns(
            _plain=structured & message.str.contains(_PLAIN_PAIRS),
            # only unparsed rows and file headers need it from here on
            text=pl.when(~header | created).then(text),
        )
        .with_columns(
            _way=pl.when(created)
            .then(pl.lit("created"))
            .when("_plain")
            .then(pl.lit("plain"))
            .when(block)
            .then(pl.lit("block"))
            .when(structured)
            .then(pl.lit("exact"))
            .otherwise(pl.lit("text"))
        )
    )
    ways = [
        base.filter(pl.col("_way") == "text").with_columns(
            template=pl.lit(None, pl.String), _pairs=pl.lit('"')
        ),
        _file_headers(base.filter(pl.col("_way") == "created")),
    ]
    for way, read in (("plain", _plain_fields), ("block", _block_fields), ("exact", _exact_fields)):
        template, pairs = read(message)
        ways.append(
            base.filter(pl.col("_way") == way).with_columns(
                template=template, _pairs=pl.coalesce(pairs, pl.lit('"'))
            )
        )
    fields = pl.concat(ways, how="vertical").sort("line", maintain_order=True)
    where = pl.col("_where").str.replace(" ", '","caller":"', literal=True)
    source = program(pl.col("container"), pl.col("path"))
    reason = (
        pl.when(~header)
        .then(pl.lit("before the first klog header"))
        .when(pl.col("ts").is_null())
        .then(pl.lit("klog header with an impossible date or time"))
    )
    opened = pl.col("_opened")
    return records(
        fields.with_columns(header=header & ~created),
        ts=pl.when(created).then("ts").otherwise(_in_year_after(pl.col("ts"), opened)),
        utc_offset_s=pl.lit(None, pl.Int32),
        year_missing=~created & opened.is_null(),
        source=source,
        host=pl.coalesce(pl.col("host"), pl.col("_machine")),
        component=pl.coalesce(pl.col("container"), source),
        message=pl.when(header | created).then(message).otherwise(text),
        template=pl.when(header | created).then(pl.col("template")),
        attrs=pl.when(created)
        .then(pl.col("_pairs"))
        .when(header)
        .then(pl.concat_str(pl.lit('{"thread":"'), where, pl.col("_pairs"), pl.lit("}")))
        .otherwise(pl.lit("{}")),
        unparsed=pl.when(~created).then(reason),
    )


def _file_headers(rows: pl.LazyFrame) -> pl.LazyFrame:
    """The records of log file headers: ``Log file created at: 2018/08/12 02:38:49`` and
    the lines below it (``Running on machine: k8s-master3``, ``Binary: Built with gc
    go1.9.3 for linux/amd64``, ``Log line format: ...``), at the time the first states;
    ``_opened`` and ``_machine`` carry what they say to the records after them."""
    text = pl.col("text")
    stated = text.str.slice(len(_CREATED), 19).str.to_datetime(
        "%Y/%m/%d %H:%M:%S", time_unit="us", strict=False
    )
    machine = text.str.extract(r"\nRunning on machine: ([^\n]+)", 1)
    binary = text.str.extract(r"\nBinary: ([^\n]+)", 1)
    return rows.with_columns(
        ts=stated,
        _opened=stated,
        _machine=machine,
        level=pl.lit("info", LEVEL),
        message=text,
        template=pl.lit(f"{_CREATED}<TS>"),
        _pairs=json_object(machine=machine, binary=binary),
    )


def _in_year_after(ts: pl.Expr, opened: pl.Expr) -> pl.Expr:
    """A yearless time (placeholder year) in the year of ``opened``, the time its log file
    was created, or the next one when its date comes before that in the calendar; left
    as it is where ``opened`` is null (at little cost: most files have no header).

    >>> from datetime import datetime
    >>> pl.select(_in_year_after(pl.lit(datetime(2000, 1, 2, 3)), pl.lit(datetime(2018, 12, 31)))
    ... ).item()
    datetime.datetime(2019, 1, 2, 3, 0)
    """
    year = opened.dt.year()
    year = year + (in_year(ts, year) < opened).cast(pl.Int32)
    return pl.coalesce(in_year(ts, year), ts)


def _plain_fields(message: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Template, and the end of ``attrs`` from the quote that closes the ``caller``, of
    a message of a plain shape.

    Its quoted parts hold no quote of their own, so ``" `` only ever closes a string and
    ``="`` only ever opens a value. From the quote that closes the message on,
    ``" retryingTime="30s" elapsed="1ms"`` becomes ``","retryingTime":"30s","elapsed":"1ms"``
    and ``" numServices=812 numEndpoints=2301`` becomes
    ``","numServices":"812","numEndpoints":"2301"``.
    """
    close = message.str.find('" ', literal=True)
    template = _plain_template(message, pl.coalesce(close, message.str.len_bytes() - 1))
    tail = message.str.slice(close)
    bare = ~tail.str.contains('="', literal=True)
    quoted_pairs = (
        pl.when(~bare)
        .then(tail)
        .str.replace_all('" ', '","', literal=True)
        .str.replace_all('="', '":"', literal=True)
    )
    bare_pairs = (
        pl.when(bare)
        .then(message)
        .str.slice(close + 1)
        .str.replace_all(" ", '","', literal=True)
        .str.replace_all("=", '":"', literal=True)
    )
    return template, pl.coalesce(quoted_pairs, pl.format('{}"', bare_pairs))


def _block_fields(message: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Template and the end of ``attrs`` of ``"msg" key=<`` (tab-indented lines) `` >``:
    the lines are printable ASCII and tabs, so escaping them for JSON is four literal
    replacements."""
    close = message.str.find('" ', literal=True)
    opening = message.str.find("=<\n", literal=True)
    key = message.str.slice(close + 2, opening - close - 2)
    value = (
        _unblock(message.str.slice(opening + 1))
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
        .str.replace_all("\t", "\\t", literal=True)
    )
    return _plain_template(message, close), pl.format('","{}":"{}"', key, value)


def _plain_template(message: pl.Expr, close: pl.Expr) -> pl.Expr:
    """The text between the first quote and the quote at ``close``, with JSON's escapes
    decoded (only where there is a backslash, which few messages have)."""
    inner = message.str.slice(1, close - 1)
    escaped = pl.when(inner.str.contains("\\", literal=True)).then(pl.format('"{}"', inner))
    return pl.coalesce(escaped.str.json_path_match("$"), inner)


def _exact_fields(message: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Template and the end of ``attrs`` of any structured message, every value decoded
    (Go quoting, ``<`` blocks, bare values) and written as a JSON string."""
    parts = message.str.extract_groups(_STRUCTURED)
    quoted = parts.struct.field("quoted")
    pairs = parts.struct.field("pairs").str.extract_all(rf" {_ANY_KEY}={_VALUE}")
    joined = pairs.list.eval(_pair_json(pl.element())).list.join("")
    return _go_unquote(quoted), pl.format('"{}', joined)


# --- pieces -----------------------------------------------------------------------------


def _placeholder_ts(text: pl.Expr) -> pl.Expr:
    """``mmdd hh:mm:ss.uuuuuu`` at columns 1-20 as a time in the placeholder year; null when
    the date or time cannot exist. The whole seconds are parsed with polars' cache of
    repeated strings (lines of one second share them), the microseconds added after.

    >>> pl.select(_placeholder_ts(pl.lit("I0229 18:00:01.123456       1 x.go:1] m"))).item()
    datetime.datetime(2000, 2, 29, 18, 0, 1, 123456)
    """
    stamp = text.str.slice(1, 13)
    # a leap second (23:59:60.5) stays in its own day: the last microsecond of its minute
    leap = stamp.str.ends_with(":60")
    stamp = pl.when(leap).then(stamp.str.head(11) + "59").otherwise(stamp)
    micros = text.str.slice(15, 6).cast(pl.Int64, strict=False)
    second = pl.format(f"{PLACEHOLDER_YEAR}{{}}", stamp).str.to_datetime(
        "%Y%m%d %H:%M:%S", time_unit="us", strict=False, cache=True
    )
    return second + pl.duration(microseconds=pl.when(leap).then(999_999).otherwise(micros))


def _pair_json(pair: pl.Expr) -> pl.Expr:
    """`` key=value`` as ``,"key":"decoded value"``, for any value klog writes."""
    key = pair.str.extract(rf"^ ({_ANY_KEY})=", 1)
    raw = pair.str.slice(key.str.len_chars() + 2)
    value = (
        pl.when(raw.str.starts_with('"'))
        .then(_go_unquote(raw))
        .when(raw.str.starts_with("<\n"))
        .then(_unindent(_block_body(raw)))
        .otherwise(raw)
    )
    return pl.concat_str(pl.lit(","), json_value(key), pl.lit(":"), json_value(value))


def _go_unquote(quoted: pl.Expr) -> pl.Expr:
    """The text of a Go-quoted string (``strconv.Quote``).

    Go's ``\\a``, ``\\v`` and ``\\x`` escapes below 0x80 are rewritten as JSON's ``\\u``
    escapes first (an escaped backslash is set aside meanwhile, so ``\\\\x41`` stays a
    backslash and ``x41``); what is still not JSON (``\\U`` and bytes that are not UTF-8)
    is kept as written between the quotes."""
    as_json = (
        quoted.str.replace_all("\\\\", "\x00", literal=True)
        .str.replace_all(r"\\x([0-7][0-9a-fA-F])", r"\u00$1")
        .str.replace_all("\\a", "\\u0007", literal=True)
        .str.replace_all("\\v", "\\u000b", literal=True)
        .str.replace_all("\x00", "\\\\", literal=True)
    )
    inner = quoted.str.slice(1, quoted.str.len_chars() - 2)
    return pl.coalesce(as_json.str.json_path_match("$"), inner)


def _unblock(block: pl.Expr) -> pl.Expr:
    r"""The value of a ``<`` ... `` >`` block as klog writes it: its lines without their
    leading tab.

    >>> pl.select(_unblock(pl.lit("<\n\tline one\n\tline two\n >"))).item()
    'line one\nline two'
    """
    body = _block_body(block)
    return body.str.strip_prefix("\t").str.replace_all("\n\t", "\n", literal=True)


def _block_body(block: pl.Expr) -> pl.Expr:
    """A block's lines, without the ``<`` line and the `` >`` line (when it has one)."""
    return block.str.strip_prefix("<\n").str.strip_suffix("\n >")


def _unindent(body: pl.Expr) -> pl.Expr:
    r"""A block's lines without their indentation: klog's tab, or the spaces (up to a tab
    stop's eight) that stand for it where the tab was expanded.

    >>> pl.select(_unindent(pl.lit("        exit status 2\n        \tat line 11"))).item()
    'exit status 2\n\tat line 11'
    """
    return pl.format("\n{}", body).str.replace_all(r"\n(?:\t| {1,8})", "\n").str.slice(1)


def program(container: pl.Expr, path: pl.Expr) -> pl.Expr:
    """The program that wrote the file: its container (or unit) as the path or a wrapper
    names it, else a known klog program the file name's stem names, alone or before a
    pod's or node's name (``kube-proxy.log``, ``kubelet.log.1``, ``kube-proxy-k9d7s.log``
    saved from ``kubectl logs``, a static pod's ``kube-apiserver-master-1.log``), else
    plain ``klog``. The path is looked at once per file, not once per line.

    >>> pl.select(program(pl.lit(None, pl.String), pl.lit("/var/log/kubelet.log.1"))).item()
    'kubelet'
    >>> pl.select(program(pl.lit(None, pl.String), pl.lit("logs/kube-proxy-k9d7s.log"))).item()
    'kube-proxy'
    >>> pl.select(program(pl.lit("csi-sidecar"), pl.lit("0.log"))).item()
    'csi-sidecar'
    """
    return pl.coalesce(container, file_stem(path).str.extract(_NAMED_PROGRAM, 1), pl.lit(NAME))


#: A file name's stem that names a known klog program, alone or before a name of its own;
#: the longest first, so that no program's name stands for a longer one it begins.
_NAMED_PROGRAM = (
    "^("
    + "|".join(re.escape(p) for p in sorted(PROGRAMS, key=lambda p: (-len(p), p)))
    + ")(?:-[a-z0-9][a-z0-9.-]*)?$"
)


registry.register(
    Parser(
        name=NAME,
        description="klog text (kube-proxy, kubelet and other Kubernetes programs)",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=("] ",),
        record_start=RECORD_START,
        files_together=True,
    )
)

"""CoreDNS and node-local-dns (k8s-dns-node-cache, which embeds CoreDNS and logs the same way).

CoreDNS logs through Go's ``log`` package with no flags, so its lines carry no time of
their own: the loader takes the time from the runtime prefix (CRI, Docker, ``kubectl
--timestamps``). Its line kinds, all recognised here:

===================  ===================================================================
query (``log``)      ``[INFO] 10.244.0.1:53523 - 19585 "A IN example.com. udp 29 false 512"
                     NOERROR qr,rd,ra 56 0.000123s``; IPv6 clients as ``[fd00::1]:53523``;
                     older releases add ``[14/Mar/2023:18:00:01 +0000]`` and no ``[INFO]``
``errors`` plugin    ``[ERROR] plugin/errors: 2 example.com. A: read udp ...: i/o timeout``
                     and its ``N errors like '...' occurred in last 30s`` summaries; up to
                     1.0 ``29/Nov/2017:23:16:11 +0000 [ERROR 2 example.com. A] read udp ...``
                     and a recovered ``[PANIC example.com. A] file.go:12 - ...``
plugins              ``[INFO] plugin/reload: Running configuration SHA512 = 1b2...`` (MD5 in
                     older releases), ``[WARNING] plugin/kubernetes: ...``, ``[FATAL] ...``
banner (no level)    ``.:53``, ``cluster.local.:53 on 169.254.20.10``, ``CoreDNS-1.9.3``,
                     ``linux/amd64, go1.18.2, 45b0a11``, ``maxprocs: Leaving GOMAXPROCS=...``
fatal start-up       ``/etc/coredns/Corefile:3 - Error during parsing: ...``,
(no level)           ``plugin/forward: ...``, ``loading Caddyfile via flag: ...``,
                     ``Listen: listen tcp :53: bind: ...`` (written by ``log.Fatal``)
client-go (klog)     ``E0314 18:00:01.123456       1 reflector.go:138] ...`` (yearless)
dated                ``2023/03/14 18:00:01 [INFO] Starting node-cache image: 1.22.13`` (Go
                     ``log`` date, no zone) and ``2021-08-12T05:09:08.093Z [ERROR] ...``
                     (CoreDNS 1.2 to 1.6 stamped its own lines in UTC)
===================  ===================================================================

A Go panic or goroutine dump, a client-go ``Trace[N]:`` line and any indented line belong
to the record above them. A line of none of these shapes is an unparsed record, and so is
each continuation-shaped line after it (it continues nothing we know).

SERVFAIL and REFUSED answers, and queries that got no answer at all (rcode ``-``, since
CoreDNS 1.8.5: an upstream that timed out), are logged at ``[INFO]`` but are failures for
analysis, so their level is ``error``; NXDOMAIN is an ordinary answer and stays ``info``. A
record a Go panic or ``fatal error:`` follows is ``critical``: the server crashed there.
"""

from __future__ import annotations

import functools

import polars as pl

from parsers import registry
from parsers.common import (
    LINE_SCHEMA,
    join_continuations,
    json_object,
    level_from,
    only,
    records,
)
from parsers.registry import Parser, Sample, Score, shares_matching, unnamed

NAME = "coredns"

# --- line shapes (Rust regex; group names become columns) ------------------------------

_GO_DATE = r"[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
_RFC3339_LOCAL = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
_TAG = r"DEBUG|INFO|WARNING|WARN|ERROR|FATAL"

#: What may come before a CoreDNS line's body: a Go ``log`` date, a CoreDNS 1.2-1.6 UTC
#: stamp, a level tag (each optional; blanks before the tag are the lead's too, as in
#: `` [INFO] plugin/reload: ...`` in 1.2.6's start-up). The body is what follows ``lead``.
LEAD = (
    r"^(?P<lead>(?:(?P<go_date>" + _GO_DATE + r") )?"
    r"(?:(?P<rfc_local>" + _RFC3339_LOCAL + r")(?P<rfc_zone>Z|[+-][0-9]{2}:[0-9]{2}) )?"
    r"(?:[ \t]*\[(?P<tag>" + _TAG + r")\] ?)?)"
)
#: client-go and node-cache lines in klog's header (no year, no zone).
KLOG = (
    r"^(?P<klog_level>[IWEF])(?P<klog_date>[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?)"
    r" +(?P<thread>[0-9]+) (?P<caller>[^ \]]+)\] ?(?P<klog_body>.*)$"
)
#: The ``log`` plugin's common and combined formats, with the parts older releases lack
#: (port, query id, ``[{when}]``) optional: before 1.1 an IPv6 client was written bare and
#: without its port (``fd00::1 - [14/Mar/2023:18:00:01 +0000] 29479 "AAAA IN ...``).
QUERY = (
    r"^(?P<client>\[[^\]]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*|[^ \[\]:]+)"
    r"(?::(?P<port>[0-9]+))? - "
    r"(?:\[(?P<when>[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9:]{8}) (?P<when_zone>[+-][0-9]{4})\] )?"
    r"(?:(?P<id>[0-9]+) )?"
    r'"(?P<type>[^ "]+) (?P<class>[^ "]+) (?P<name>(?:[^ "\\]|\\.)+) (?P<proto>[^ "]+) '
    r'(?P<size>[0-9]+|-) (?P<do>true|false|-) (?P<bufsize>[0-9]+|-)" '
    r"(?P<rcode>[^ ]+) (?P<flags>[^ ]+) (?P<rsize>[0-9]+|-) (?P<duration>[^ ]+)"
    r'(?: "(?P<opcode>[^"]*)")?$'
)
_TOKEN = r'[^\x00-\x20"\\]+'
_INT = r"(?:0|[1-9][0-9]*)"
#: Today's default query line, every field a token that is valid JSON as it stands.
FAST_QUERY = (
    rf'^\[INFO\] (?:\[[0-9A-Fa-f:.]+\]|[0-9.]+):{_INT} - {_INT} "'
    rf"{_TOKEN} {_TOKEN} {_TOKEN} {_TOKEN} {_INT} (?:true|false) {_INT}"
    rf'" {_TOKEN} {_TOKEN} {_INT} {_INT}(?:\.[0-9]+)?s$'
)
#: The tokens of a ``FAST_QUERY`` line after its ``[INFO]`` tag, in order.
_QUERY_TOKENS = (
    "endpoint",
    "dash",
    "id",
    "type",
    "class",
    "name",
    "proto",
    "size",
    "do",
    "bufsize",
    "rcode",
    "flags",
    "rsize",
    "duration",
)
PLUGIN = r"^plugin/(?P<plugin>[a-z0-9_]+): "
#: ``errors`` plugin: rcode number, query name, type, error (``plugin/errors:`` since 1.3).
ERRORS = (
    r"^(?:plugin/errors: )?(?P<rcode_num>[0-9]+) (?P<qname>[^ ]+) (?P<qtype>[^ :]+): (?P<error>.*)$"
)
#: The ``errors`` plugin up to 1.0 (middleware before 0.9.10): the query's time, then a
#: bracket with the tag, rcode number (``ERROR`` only), name and type, then the error, or
#: the panic it recovered from with the file and line (``[PANIC name. A] x.go:12 - ...``).
OLD_ERRORS = (
    r"^(?P<old_when>[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9:]{8}) (?P<old_zone>[+-][0-9]{4}) "
    r"\[(?P<old_tag>ERROR|PANIC) (?:(?P<old_rcode>[0-9]+) )?(?P<old_name>[^ \]]*\.) "
    r"(?P<old_type>[A-Z0-9]+)\] (?P<old_error>.*)$"
)
ERRORS_SUMMARY = (
    r"^plugin/errors: (?P<count>[0-9]+) errors like '(?P<pattern>.*)' "
    r"occurred in last (?P<period>[^ ]+)$"
)
CONFIG_HASH = r"^plugin/reload: Running configuration (?P<algo>SHA512|MD5) = (?P<hash>[0-9a-fA-F]+)"
NODE_CACHE_IMAGE = r"^Starting node-cache image: (?P<node_cache_version>[^ ]+)"
ZONE = (
    r"^(?P<zone>(?:[a-z]+://)?[A-Za-z0-9._-]*):(?P<listen_port>[0-9]+)"
    r"(?: on (?P<bind>[^ ].*))?$"
)
VERSION = r"^CoreDNS-(?P<version>[0-9][^ ]*)(?: .*)?$"
RELEASE = r"^(?P<os>[a-z0-9]+)/(?P<arch>[a-z0-9_]+), (?P<go_version>[^ ,]+), ?(?P<commit>[^ ]*) *$"
MAXPROCS = r"^maxprocs: "
#: What ``log.Fatal`` writes, with no level, when CoreDNS cannot start.
STARTUP_FATAL = (
    r"^(?:plugin/[a-z0-9_]+: |loading Caddyfile via |(?:Listen: )?listen (?:tcp|udp)[46]? )"
    r"|Error during parsing: "
)
#: Lines that continue the record above: indented or blank lines, Go panics and goroutine
#: dumps, client-go traces, and the hexdump of a DNS message that the *debug* plugin has
#: plugins write under a ``[DEBUG]`` line (``debug: 000010 6d 70 6c ...``).
CONTINUATION = (
    r"^(?:$|[ \t]|(?:debug: )?[0-9a-f]{6}(?: [0-9a-f]{2}){0,16}$|"
    r"panic: |fatal error: |goroutine [0-9]+ \[|created by |\[signal |"
    r"runtime stack:|exit status [0-9]|\.\.\.additional frames elided|Trace\[[0-9]+\]: |"
    r"[^ \t]+\(.*\)$)"
)


#: Lines that begin a record, whatever else they look like.
HEADER = "|".join(
    unnamed(shape)
    for shape in [
        rf"^(?:{_GO_DATE} |{_RFC3339_LOCAL}(?:Z|[+-][0-9:]{{5}}) )?\[(?:{_TAG})\]",
        # a tagged line indented (1.2's reload line, as pasted): no stack line looks so
        rf"^[ \t]+\[(?:{_TAG})\] ",
        rf"^{_GO_DATE} ",
        KLOG,
        QUERY,
        OLD_ERRORS,
        ZONE,
        VERSION,
        RELEASE,
        MAXPROCS,
        STARTUP_FATAL,
    ]
)

#: Lines that only CoreDNS or node-cache writes (a plain ``[INFO]`` line is not enough:
#: Maven and many others tag lines the same way): among them the server's own, as the
#: panic it recovered from in serving a query (``in server: "dns://:53"``, with the
#: stack below it since 1.9.3).
_MARKERS = "|".join(
    [
        rf"^(?:{_GO_DATE} )?(?:[^ ]+ )?\[(?:{_TAG})\] (?:plugin/|Reloading|SIGTERM: |"
        r'Starting node-cache|Added interface - |CoreDNS-|Recovered from panic in server:? ")',
        rf"^(?:\[INFO\] )?{unnamed(QUERY).removeprefix('^')}",
        # the errors plugin before 1.3: rcode number, a fully qualified name, a type
        rf"^(?:{_GO_DATE} )?\[ERROR\] [0-9]+ [^ ]*\. [A-Z0-9]+: ",
        # the same before 1.1, in a bracket after the query's time
        OLD_ERRORS,
        # the server's answer for a name in no zone it serves
        rf'^(?:{_GO_DATE} )?\[INFO\] "[A-Z0-9]+ [A-Z]+ [^ "]*" - No such zone at ',
        r"^CoreDNS-[0-9]",
        r"^(?:[a-z]+://)?[A-Za-z0-9._-]*\.:[0-9]+(?: on .*)?$",
        r"^linux/[a-z0-9_]+, go[0-9]",
    ]
)

#: Where a CoreDNS record starts in a file of another format: the lines only it writes,
#: and its level-tagged lines after a Go date (client-go klog lines are klog's).
RECORD_START = "|".join(
    [
        _MARKERS,
        rf"^{_GO_DATE} \[(?:{_TAG})\] ",
        rf"^{_RFC3339_LOCAL}(?:Z|[+-][0-9:]{{5}}) \[(?:{_TAG})\] ",
    ]
)

_LINE_OTHERS = [c for c in LINE_SCHEMA if c not in ("line", "end_line", "text")]

LEVELS = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warning",
    "WARN": "warning",
    "ERROR": "error",
    "FATAL": "critical",
    # a panic the errors plugin recovered from (up to 1.0): the query failed, the server
    # went on
    "PANIC": "error",
}
KLOG_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "critical"}
#: Answers that mean the server failed or would not answer, whatever the line's tag says;
#: ``-`` is a query no answer was written for.
FAILED_RCODES = ["SERVFAIL", "REFUSED", "-"]
#: DNS rcode numbers (as the ``errors`` plugin writes them) to names (as ``log`` writes them).
RCODES = {
    "0": "NOERROR",
    "1": "FORMERR",
    "2": "SERVFAIL",
    "3": "NXDOMAIN",
    "4": "NOTIMP",
    "5": "REFUSED",
    "6": "YXDOMAIN",
    "7": "YXRRSET",
    "8": "NXRRSET",
    "9": "NOTAUTH",
    "10": "NOTZONE",
}
_DURATION = (
    r"^(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?"
    r"(?:(?P<v>[0-9]+(?:\.[0-9]+)?)(?P<u>ns|us|µs|μs|ms|s))?$"
)
_SECONDS_PER_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0}
#: Hints (container, pod) that name node-local-dns, and node-cache's own start-up lines.
_NODE_LOCAL_DNS_HINT = r"(?i)node-?local-?dns|node-?cache"
_NODE_CACHE_LITERALS = [
    "Starting node-cache image",
    "Added interface - ",
    "Setting up networking for node cache",
    "Added back nodelocaldns rule",
]
_NODE_CACHE_LINES = rf"^(?:[0-9/: TZ.+-]* ?\[INFO\] )?(?:{'|'.join(_NODE_CACHE_LITERALS)})"

SAMPLES = (
    Sample(
        '[INFO] 10.244.0.1:53523 - 19585 "A IN example.com. udp 29 false 512" '
        "NOERROR qr,rd,ra 56 0.000123s\n",
        {
            "source": "coredns",
            "component": "coredns",
            "level": "info",
            "template": "A IN <NAME> NOERROR",
            "attrs.client": "10.244.0.1",
            "attrs.port": 53523,
            "attrs.name": "example.com.",
            "attrs.do": False,
            "attrs.rcode": "NOERROR",
            "attrs.duration_s": 0.000123,
        },
        rows=1,
    ),
    Sample(
        '[INFO] [fd00::1]:41012 - 7 "AAAA IN api.github.com. udp 43 true 1232" '
        "SERVFAIL qr,rd 43 2.000831915s\n",
        {"level": "error", "attrs.client": "fd00::1", "attrs.rcode": "SERVFAIL"},
    ),
    Sample(
        "[ERROR] plugin/errors: 2 github.com. A: read udp 10.244.0.3:41012->10.96.0.10:53: "
        "i/o timeout\n",
        {
            "level": "error",
            "template": (
                "plugin/errors: SERVFAIL <NAME> A: read udp <IP>:<PORT>-><IP>:<PORT>: i/o timeout"
            ),
            "attrs.plugin": "errors",
            "attrs.name": "github.com.",
            "attrs.type": "A",
            "attrs.rcode": "SERVFAIL",
            "attrs.error": "read udp 10.244.0.3:41012->10.96.0.10:53: i/o timeout",
        },
    ),
    Sample(
        ".:53\n"
        "[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc490481273e738df5"
        "9329c62c0b729d94e8b61db9961c2fa5f046dd37f1cf888b953814040d180f52594972691cd6ff41be96"
        "639138a43908\n"
        "CoreDNS-1.9.3\n"
        "linux/amd64, go1.18.2, 45b0a11\n",
        {"level": "info", "message": ".:53", "attrs.zone": ".", "attrs.listen_port": 53},
        rows=4,
    ),
    Sample(
        "2023/03/14 20:31:05 [INFO] Starting node-cache image: 1.22.13\n"
        "2023/03/14 20:31:05 [INFO] Using Corefile /etc/Corefile\n"
        "I0314 20:31:05.412345       1 main.go:84] Tearing down\n",
        {
            "component": "node-local-dns",
            "ts": "2023-03-14T20:31:05+00:00",
            "attrs.node_cache_version": "1.22.13",
        },
        rows=3,
    ),
    Sample(
        "[INFO] plugin/kubernetes: Watching Endpoints\n"
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x1c6a2b4]\n"
        "\n"
        "goroutine 112 [running]:\n"
        "github.com/coredns/coredns/plugin/kubernetes.(*dnsControl).Run(0xc000418000)\n"
        "\t/go/src/github.com/coredns/coredns/plugin/kubernetes/controller.go:265 +0x34\n"
        "created by github.com/coredns/coredns/plugin/kubernetes.(*Kubernetes).InitKubeCache\n"
        "\t/go/src/github.com/coredns/coredns/plugin/kubernetes/kubernetes.go:268 +0x4f2\n",
        {"level": "critical", "attrs.plugin": "kubernetes"},
        rows=1,
    ),
)


# --- recognising the format -------------------------------------------------------------


#: Literals of which a CoreDNS sample holds one: a level tag, the banner, a query's
#: protocol, a plugin name or the DNS port.
LITERALS = (
    "[INFO] ",
    "[ERROR] ",
    "[WARNING] ",
    "CoreDNS-",
    " udp ",
    " tcp ",
    "plugin/",
    ":53",
    " [ERROR ",
    " [PANIC ",
)


def sniff(sample: list[str]) -> Score:
    """How much of ``sample`` is CoreDNS: literals first, then the share of known shapes.

    A file of only generic ``[INFO]`` or klog lines scores below the threshold: it needs at
    least one line that only CoreDNS writes (a query line, a ``plugin/`` line, the banner).
    """
    text = [line for line in sample if line.strip()]
    if not text:
        return Score(0.0, "no lines to look at")
    if not any(literal in line for line in text for literal in LITERALS):
        return Score(0.0, "no CoreDNS literals ([INFO], plugin/, CoreDNS-, udp/tcp queries)")
    shares = shares_matching(text, {"covered": f"{HEADER}|{CONTINUATION}", "markers": _MARKERS})
    covered, markers = shares["covered"], shares["markers"]
    if markers == 0:
        return Score(
            round(0.4 * covered, 3),
            f"{covered:.0%} of lines have CoreDNS shapes, but none only CoreDNS writes "
            "(query, plugin/ or banner lines)",
        )
    return Score(
        round(covered, 3),
        f"{covered:.0%} of lines have CoreDNS shapes; {markers:.0%} are query, plugin/ or "
        "banner lines only CoreDNS writes",
    )


# --- reading it -------------------------------------------------------------------------


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Records from CoreDNS or node-local-dns lines (``LINE_SCHEMA`` in, records out).

    Today's one-line query records, the bulk of a busy server's log, take a fast path
    (split on spaces, no capturing regex); every other record takes the general one.
    """
    text = pl.col("text")
    known = text.str.contains(HEADER)
    unknown = ~known & ~text.str.contains(CONTINUATION)
    # what follows a line of unknown shape is not its continuation: each is unparsed alone
    after_unknown = pl.when(known | unknown).then(unknown).forward_fill().fill_null(False)
    joined = _join(lines, known | unknown | after_unknown)
    several = text.str.contains("\n", literal=True)
    head = pl.coalesce(pl.when(several).then(text).str.extract(r"^([^\n]*)", 1), text)
    frame = (
        # blanks after a line are a terminal's padding (lines copied from ``kubectl logs``
        # in a wide window), never CoreDNS's: kept, they would split one error's template
        joined.with_columns(
            _head=head.str.strip_chars_end(" \t"),
            _tail=pl.when(several).then(text.str.slice(head.str.len_chars())),
        )
        .with_columns(
            _node_cache=only(
                pl.col("_head").str.contains_any(_NODE_CACHE_LITERALS), pl.col("_head")
            )
            .str.contains(_NODE_CACHE_LINES)
            .any()
            .over("path"),
        )
        .with_columns(_fast=pl.col("_head").str.contains(FAST_QUERY) & ~several)
    )
    return pl.concat(
        [_fast_queries(frame.filter("_fast")), _general(frame.filter(~pl.col("_fast")))]
    ).sort("line", maintain_order=True)  # records of one line (a batch's) in one order


def _fast_queries(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Records from one-line ``FAST_QUERY`` lines: every field is a space-separated token
    that is valid JSON as it stands (quoted or not), so ``attrs`` is put together as text.

    The tokens are the fields of one split; the client and port are cut at the colon
    after the address (``10.0.0.1:53``, ``[fd00::1]:53``), found with a literal search."""
    token = {name: pl.col(f"field_{i}") for i, name in enumerate(_QUERY_TOKENS, 1)}
    endpoint = token["endpoint"]
    bracketed = endpoint.str.starts_with("[").cast(pl.Int64)
    colon = (
        pl.when(bracketed == 1)
        .then(endpoint.str.find("]:", literal=True) + 1)
        .otherwise(endpoint.str.find(":", literal=True))
    )
    fields = {
        "client": endpoint.str.slice(bracketed, colon - 2 * bracketed),
        "port": endpoint.str.slice(colon + 1),
        "id": token["id"],
        "type": token["type"].str.slice(1),
        "class": token["class"],
        "name": token["name"],
        "proto": token["proto"],
        "size": token["size"],
        "do": token["do"],
        "bufsize": token["bufsize"].str.strip_suffix('"'),
        "rcode": token["rcode"],
        "flags": token["flags"],
        "rsize": token["rsize"],
        "duration_s": token["duration"].str.strip_suffix("s"),
    }
    quoted = {"client", "type", "class", "name", "proto", "rcode", "flags"}
    parts: list[pl.Expr] = []
    for i, (key, value) in enumerate(fields.items()):
        opener = ("{" if i == 0 else ",") + f'"{key}":'
        parts += (
            [pl.lit(opener + '"'), value, pl.lit('"')] if key in quoted else [pl.lit(opener), value]
        )
    parts.append(pl.lit("}"))
    rcode = pl.col("rcode")
    return records(
        frame.with_columns(_tokens=pl.col("_head").str.splitn(" ", len(_QUERY_TOKENS) + 1))
        .unnest("_tokens")
        .with_columns(type=fields["type"], rcode=fields["rcode"]),
        source=pl.lit(NAME),
        component=_component(),
        level=pl.when(rcode.is_in(FAILED_RCODES)).then(pl.lit("error")).otherwise(pl.lit("info")),
        message=pl.col("_head").str.slice(len("[INFO] ")),
        template=pl.concat_str(
            [pl.col("type"), pl.lit(" "), fields["class"], pl.lit(" <NAME> "), rcode]
        ),
        attrs=pl.concat_str(parts),
    )


def _general(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Records from every other line shape, each read with its own pattern."""
    body = pl.col("body")
    head = pl.col("_head")
    untagged = only(pl.col("lead") == "", body)
    frame = (
        frame.with_columns(
            _lead=head.str.extract_groups(LEAD),
            _klog=only(head.str.contains("^[IWEF][0-9]"), head).str.extract_groups(KLOG),
        )
        .unnest("_lead", "_klog")
        .with_columns(
            body=pl.coalesce("klog_body", pl.col("_head").str.slice(pl.col("lead").str.len_chars()))
        )
        .with_columns(
            _query=only(body.str.contains(" - ", literal=True), body).str.extract_groups(QUERY),
            _errors=only(body.str.contains(": ", literal=True), body).str.extract_groups(ERRORS),
            _summary=only(
                body.str.contains(" errors like '", literal=True), body
            ).str.extract_groups(ERRORS_SUMMARY),
            _old=only(body.str.contains_any([" [ERROR ", " [PANIC "]), body).str.extract_groups(
                OLD_ERRORS
            ),
            _config=only(body.str.starts_with("plugin/reload: "), body).str.extract_groups(
                CONFIG_HASH
            ),
            _image=only(
                body.str.starts_with("Starting node-cache image: "), body
            ).str.extract_groups(NODE_CACHE_IMAGE),
            _zone=untagged.str.extract_groups(ZONE),
            _version=only(body.str.starts_with("CoreDNS-"), body).str.extract_groups(VERSION),
            _release=only(body.str.contains(", go", literal=True), body).str.extract_groups(
                RELEASE
            ),
            plugin=only(body.str.starts_with("plugin/"), body).str.extract(PLUGIN, 1),
        )
        .unnest(
            "_query",
            "_errors",
            "_summary",
            "_old",
            "_config",
            "_image",
            "_zone",
            "_version",
            "_release",
        )
        .with_columns(**_old_errors_fields())
        .with_columns(**_json_query_fields(body))
        .with_columns(
            _shape=_shape(),
            _errors=pl.col("qtype").is_not_null()
            & pl.col("count").is_null()
            & ((pl.col("plugin") == "errors") | pl.col("tag").is_in(["ERROR", "PANIC"])).fill_null(
                False
            ),
        )
        .with_columns(
            _rcode=pl.coalesce(
                "rcode", pl.when("_errors").then(pl.col("rcode_num").replace(RCODES))
            )
        )
    )
    return records(
        frame,
        ts=_timestamp(),
        utc_offset_s=_utc_offset_s(),
        year_missing=pl.col("klog_level").is_not_null(),
        source=pl.lit(NAME),
        component=_component(),
        level=_level(),
        message=body + pl.col("_tail").fill_null(""),
        template=_template(),
        attrs=_attrs(),
        unparsed=pl.when(~pl.col("header"))
        .then(pl.lit("continuation line with no CoreDNS line before it"))
        .when(pl.col("_shape").is_null())
        .then(pl.lit("not a CoreDNS line"))
        .otherwise(None),
    )


#: The ``log`` plugin's fields a query line written as JSON by a format of one's own
#: (``log . "{\"remote\":\"{remote}\",\"rcode\":\"{rcode}\",...}"``) is read for,
#: by the placeholder names as keys.
JSON_QUERY_KEYS = {
    "client": ("remote", "client"),
    "port": ("port",),
    "id": ("id",),
    "type": ("type",),
    "class": ("class",),
    "name": ("name",),
    "proto": ("proto",),
    "size": ("size",),
    "rcode": ("rcode",),
    "rsize": ("rsize",),
    "duration": ("duration",),
}


#: ``{remote}`` as written: ``[fd00::1]`` or ``10.0.0.1``, with a port after it where a
#: format joined one, or an IPv6 address bare.
_REMOTE = (
    r"^(?:\[(?P<v6>[^\]]+)\](?::(?P<p6>[0-9]+))?|(?P<v4>[^:]+)(?::(?P<p4>[0-9]+))?|(?P<bare>.+))$"
)


def _old_errors_fields() -> dict[str, pl.Expr]:
    """An :data:`OLD_ERRORS` line read as the ``errors`` line 1.1 on writes: its time and
    zone as a query's ``[{when}]``, its tag as the level tag, and its body as
    ``0 name. A: error`` (``name. A: file.go:12 - ...`` for a panic), the message the
    same failure has in later releases."""
    old = pl.col("old_tag").is_not_null()
    said = pl.concat_str(
        [pl.col("old_rcode"), "old_name", "old_type"], separator=" ", ignore_nulls=True
    )
    return {
        "when": pl.coalesce("when", "old_when"),
        "when_zone": pl.coalesce("when_zone", "old_zone"),
        "tag": pl.coalesce("tag", "old_tag"),
        "rcode_num": pl.coalesce("rcode_num", "old_rcode"),
        "qname": pl.coalesce("qname", "old_name"),
        "qtype": pl.coalesce("qtype", "old_type"),
        "error": pl.coalesce("error", "old_error"),
        "body": pl.when(old).then(pl.format("{}: {}", said, "old_error")).otherwise("body"),
    }


def _json_query_fields(body: pl.Expr) -> dict[str, pl.Expr]:
    """The query fields of a line that is a JSON object naming an ``rcode`` and a
    ``type``, beside those the default format gave: a JSON query line is a query, its
    answer read like any other's (a SERVFAIL is an error). A line that is no valid JSON
    (CoreDNS does not escape the names it puts in a format: ``bad\255name.``) is read as
    any other line."""
    query = only(body.str.starts_with("{") & body.str.contains('"rcode"', literal=True), body)
    said = {
        column: pl.coalesce([query.str.json_path_match(f"$.{key}") for key in keys])
        for column, keys in JSON_QUERY_KEYS.items()
    }
    remote = said["client"].str.extract_groups(_REMOTE)
    said["client"] = pl.coalesce(remote.struct.field(f) for f in ("v6", "v4", "bare"))
    said["port"] = pl.coalesce(said["port"], remote.struct.field("p6"), remote.struct.field("p4"))
    said["class"] = pl.when(said["type"].is_not_null()).then(
        pl.coalesce(said["class"], pl.lit("IN"))
    )
    typed = said["type"].is_not_null() & said["rcode"].is_not_null()
    return {c: pl.coalesce(c, pl.when(typed).then(v)) for c, v in said.items()}


def _join(lines: pl.LazyFrame, is_header: pl.Expr) -> pl.LazyFrame:
    """:func:`~parsers.common.join_continuations`, with the one-line records (nearly all
    of a CoreDNS log) passed straight through instead of grouped."""
    flagged = lines.with_columns(_starts=is_header.fill_null(False))
    alone = pl.col("_starts") & pl.col("_starts").shift(-1, fill_value=True)
    single = flagged.filter(alone).select(
        "line", "end_line", pl.col("_starts").alias("header"), "text", *_LINE_OTHERS
    )
    multi = join_continuations(flagged.filter(~alone), pl.col("_starts"))
    return pl.concat([single, multi.select(single.collect_schema().names())])


@functools.cache
def _shape() -> pl.Expr:
    """What kind of line a record starts with; null when it is no CoreDNS shape."""
    body = pl.col("body")
    return (
        pl.when(pl.col("type").is_not_null())
        .then(pl.lit("query"))
        .when(pl.col("klog_level").is_not_null())
        .then(pl.lit("klog"))
        .when(pl.any_horizontal(pl.col("tag", "go_date", "rfc_local").is_not_null()))
        .then(pl.lit("tagged"))
        .when(pl.col("version").is_not_null() | pl.col("os").is_not_null())
        .then(pl.lit("banner"))
        .when(pl.col("listen_port").is_not_null() | body.str.contains(MAXPROCS))
        .then(pl.lit("banner"))
        .when(body.str.contains(STARTUP_FATAL))
        .then(pl.lit("fatal"))
        .otherwise(None)
    )


@functools.cache
def _level() -> pl.Expr:
    """The tag's level; info for the banner, critical for fatal start-up lines and records a
    panic follows; failed answers (:data:`FAILED_RCODES`) raised to error."""
    crashed = pl.col("_tail").str.contains(r"\n(?:panic: |fatal error: )").fill_null(False)
    written = pl.coalesce(
        pl.when(crashed).then(pl.lit("critical")),
        level_from(pl.col("tag"), LEVELS),
        level_from(pl.col("klog_level"), KLOG_LEVELS),
        pl.when(pl.col("_shape") == "fatal")
        .then(pl.lit("critical"))
        .when(pl.col("_shape").is_in(["banner", "query"]))
        .then(pl.lit("info")),
    ).cast(pl.String)
    failed = pl.col("rcode").is_in(FAILED_RCODES) & (written != "critical")
    return pl.when(failed).then(pl.lit("error")).otherwise(written)


@functools.cache
def _timestamp() -> pl.Expr:
    """The time a line writes itself, naive: CoreDNS's own UTC stamp, the query's
    ``[{when}]``, the Go ``log`` date, or klog's yearless time (in year 2000)."""
    return pl.coalesce(
        pl.col("rfc_local").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False),
        pl.col("when").str.to_datetime("%d/%b/%Y:%H:%M:%S", time_unit="us", strict=False),
        pl.col("go_date").str.to_datetime("%Y/%m/%d %H:%M:%S%.f", time_unit="us", strict=False),
        (pl.lit("2000") + pl.col("klog_date")).str.to_datetime(
            "%Y%m%d %H:%M:%S%.f", time_unit="us", strict=False
        ),
    )


@functools.cache
def _utc_offset_s() -> pl.Expr:
    """Seconds east of UTC that the chosen time states; null for Go dates and klog."""
    rfc = pl.col("rfc_zone")
    rfc_offset = pl.when(rfc == "Z").then(0).otherwise(_offset_seconds(rfc.str.replace(":", "")))
    return (
        pl.when(pl.col("rfc_local").is_not_null())
        .then(rfc_offset)
        .when(pl.col("when").is_not_null())
        .then(_offset_seconds(pl.col("when_zone")))
        .otherwise(None)
    )


def _offset_seconds(zone: pl.Expr) -> pl.Expr:
    """``+hhmm`` / ``-hhmm`` as seconds."""
    sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
    hours = zone.str.slice(1, 2).cast(pl.Int32, strict=False)
    minutes = zone.str.slice(3, 2).cast(pl.Int32, strict=False)
    return sign * (hours * 3600 + minutes * 60)


def _duration_seconds(duration: pl.Expr) -> pl.Expr:
    """A Go duration (``0.000123s``, ``1.5ms``, ``123µs``, ``1m2.5s``) in seconds.

    Today's CoreDNS writes plain seconds, read with a cast; only the other forms go
    through the regex (null rows cost it nothing).

    >>> import polars as pl
    >>> pl.select(_duration_seconds(pl.lit("1m2.5s"))).item()
    62.5
    """
    seconds = duration.str.strip_suffix("s").cast(pl.Float64, strict=False)
    parts = pl.when(seconds.is_null()).then(duration).str.extract_groups(_DURATION)
    unit = parts.struct.field("u").replace_strict(_SECONDS_PER_UNIT, default=None)
    value = parts.struct.field("v").cast(pl.Float64, strict=False) * unit
    hours = parts.struct.field("h").cast(pl.Float64, strict=False) * 3600
    minutes = parts.struct.field("m").cast(pl.Float64, strict=False) * 60
    written = pl.any_horizontal(parts.struct.field(part).is_not_null() for part in ("h", "m", "u"))
    other = pl.when(written).then(pl.sum_horizontal(hours, minutes, value))
    return pl.coalesce(seconds, other)


@functools.cache
def _component() -> pl.Expr:
    """node-local-dns when the container or pod says so, or (with no hint either way) when
    the file holds node-cache's own start-up lines; coredns otherwise."""
    hint = pl.concat_str(["container", "host"], separator=" ", ignore_nulls=True)
    return (
        pl.when(_per_distinct(hint, _NODE_LOCAL_DNS_HINT))
        .then(pl.lit("node-local-dns"))
        .when(_per_distinct(hint, "(?i)coredns"))
        .then(pl.lit("coredns"))
        .when(pl.col("_node_cache"))
        .then(pl.lit("node-local-dns"))
        .otherwise(pl.lit("coredns"))
    )


def _per_distinct(hint: pl.Expr, pattern: str) -> pl.Expr:
    """Whether ``hint`` matches ``pattern``, the regex run once for the first row's value
    (a file's container and host are nearly always the same on every line) and on the
    rows whose value differs from it."""
    first = hint.first()
    return pl.coalesce(only(hint != first, hint).str.contains(pattern), first.str.contains(pattern))


@functools.cache
def _template() -> pl.Expr:
    """Signatures for the two lines that vary most: queries group by type, class and
    answer; ``errors`` lines by answer, type and the error with its addresses masked.
    Everything else is left to the loader's masking."""
    query = pl.format("{} {} <NAME> {}", "type", "class", "rcode")
    errors = pl.format(
        "plugin/errors: {} <NAME> {}: {}", "_rcode", "qtype", _mask_addresses(pl.col("error"))
    )
    return (
        pl.when(pl.col("type").is_not_null())
        .then(query)
        .when("_errors")
        .then(errors)
        .otherwise(None)
    )


def _mask_addresses(error: pl.Expr) -> pl.Expr:
    """Endpoints, durations and numbers in an error text masked with the loader's
    placeholders, so ``errors`` lines for different upstreams and ports group together.

    >>> import polars as pl
    >>> error = pl.lit("read udp 10.0.0.3:41012->[fd00::a]:53: i/o timeout")
    >>> pl.select(_mask_addresses(error)).item()
    'read udp <IP>:<PORT>-><IP>:<PORT>: i/o timeout'
    """
    return (
        error.str.replace_all(r"\[[0-9A-Fa-f:.]+\]:[0-9]+\b", "<IP>:<PORT>")
        .str.replace_all(r"\[[0-9A-Fa-f:.]+\]", "<IP>")
        .str.replace_all(r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}:[0-9]{1,5}\b", "<IP>:<PORT>")
        .str.replace_all(r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b", "<IP>")
        .str.replace_all(r"\b(?:[0-9]+(?:\.[0-9]+)?(?:h|m|s|ms|us|µs|ns))+\b", "<DURATION>")
        .str.replace_all(r"\b[0-9]+(?:\.[0-9]+)*\b", "<NUM>")
    )


@functools.cache
def _attrs() -> pl.Expr:
    """The structured fields of every line kind, as one JSON object (nulls left out)."""
    integer = pl.Int64
    is_errors = pl.col("_errors")
    algo = pl.col("algo")
    return json_object(
        plugin=pl.coalesce("plugin", pl.when(is_errors).then(pl.lit("errors"))),
        client=pl.col("client").str.strip_prefix("[").str.strip_suffix("]"),
        port=pl.col("port").cast(integer, strict=False),
        id=pl.col("id").cast(integer, strict=False),
        type=pl.coalesce("type", pl.when(is_errors).then("qtype")),
        **{"class": pl.col("class")},
        name=pl.coalesce("name", pl.when(is_errors).then("qname")),
        proto=pl.col("proto"),
        size=pl.col("size").cast(integer, strict=False),
        do=pl.col("do").replace_strict({"true": True, "false": False}, default=None),
        bufsize=pl.col("bufsize").cast(integer, strict=False),
        rcode=pl.col("_rcode"),
        flags=pl.col("flags"),
        rsize=pl.col("rsize").cast(integer, strict=False),
        duration_s=_duration_seconds(pl.col("duration")),
        opcode=pl.col("opcode"),
        error=pl.when(is_errors).then("error"),
        count=pl.col("count").cast(integer, strict=False),
        pattern=pl.col("pattern"),
        period=pl.col("period"),
        sha512=pl.when(algo == "SHA512").then(pl.col("hash").str.to_lowercase()),
        md5=pl.when(algo == "MD5").then(pl.col("hash").str.to_lowercase()),
        version=pl.col("version"),
        os=pl.col("os"),
        arch=pl.col("arch"),
        go_version=pl.col("go_version"),
        commit=pl.when(pl.col("commit") != "").then("commit"),
        zone=pl.col("zone"),
        listen_port=pl.col("listen_port").cast(integer, strict=False),
        bind=pl.col("bind"),
        node_cache_version=pl.col("node_cache_version"),
        caller=pl.col("caller"),
        thread=pl.col("thread").cast(integer, strict=False),
    )


registry.register(
    Parser(
        name=NAME,
        description="CoreDNS and node-local-dns: query log, errors, reloads, start-up banner",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=LITERALS,
        record_start=RECORD_START,
        own_start=HEADER,
        files_together=True,
    )
)

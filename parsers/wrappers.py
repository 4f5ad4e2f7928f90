r"""Wrappers: what collectors put around a program's own line, peeled off layer by layer.

A line from kube-proxy may reach a reviewer inside a CRI prefix, inside a syslog header
written by a forwarder, inside a ``grep -n`` prefix. Each layer is recognised from a sample
of the file, stripped with whole-column expressions, and what it says is kept as line
columns: its time (``prefix_ts`` when it states a zone, else ``wrap_ts`` with
``wrap_year_missing``), the host, the unit or service (as ``container``), the pid, a
syslog severity. Then the next layer is looked for in what is left, up to
:data:`MAX_LAYERS` deep.

=================  ======================================================================
``syslog``         ``Feb 23 16:31:05 node-1 kubelet[1203]: msg`` (RFC 3164, ``journalctl``
                   short and short-precise, ``/var/log/messages``), an optional ``<PRI>``
``syslog-iso``     ``2023-02-23T16:31:05+0000 node-1 kubelet[1203]: msg`` (``journalctl
                   -o short-iso``, rsyslog's RFC 3339 template)
``syslog-5424``    ``<165>1 2023-02-23T16:31:05.003Z node-1 kubelet 1203 - - msg``
``compose``        ``rabbitmq-1  | msg`` and ``rabbitmq_1  | msg`` (``docker compose logs``,
                   with ``-t`` a time after the bar)
``grep``           ``file.log:123:msg``, ``123:msg``, ``file.log:msg`` (``grep -n``, ``-H``,
                   ``rg``), context lines with ``-``
``talosctl``       ``172.20.1.2: msg`` (``talosctl logs``, ``talosctl dmesg``)
``kmsg``           ``kern:    info: [2021-11-10T10:09:37.662764956Z]: msg`` (Talos dmesg)
``minikube``       ``* msg`` and ``* ==> kubelet <==`` titles (``minikube logs`` before 1.10)
``name-prefix``    ``api-7c9d5f-x2v9q manager 2023-03-14T18:00:01Z ...`` (``stern``: pod and
                   container; or the container alone) before a line that starts a record,
                   or before any line where the pod's name is one Kubernetes generated
``k9s``            ``│ msg │`` (lines copied from ``k9s``'s log view)
``kubetail``       ``[coredns-5d78c9869d-abcde] msg``, ``[pod container] msg`` (``kubetail``)
``aws-logs-tail``  ``2024-05-02T09:14:03.118000+00:00 kube-apiserver-0a1b... msg`` (``aws logs
                   tail``: the stream names the program, or the node and pod)
``cluster-info-    ``==== START logs for container C of pod NS/POD ====`` ... ``END``
dump``             sections (``kubectl cluster-info dump``)
``fluentd``        ``2023-03-14T18:00:01+00:00<TAB>kubernetes.var.log.containers...<TAB>{...}``
``fluentd-         ``2023-03-14 18:00:01.123456789 +0000 kube.var.log.containers...: {...}``
stdout``
``fluent-bit-      ``kube.var.log.containers...: [1678816801.123456789, {...}]``
file``
``logcli``         ``2023-03-14T18:00:01Z {container="kube-proxy", pod="..."} msg``
``grafana``        ``2023-03-14 18:00:01.123<TAB>msg`` under ``Common labels: {...}``
                   (Grafana's "Download logs" as text)
envelopes          JSON records of collectors and log stores (:mod:`parsers.envelopes`)
runtime prefixes   ``cri``, ``docker-json``, ``kubectl-prefix``, ``kubectl-timestamps``
                   (:mod:`parsers.runtime`)
=================  ======================================================================

Lines a wrapper writes of its own (``journalctl``'s ``-- Logs begin at ... --``, ``-- Boot
... --``, ``-- No entries --``; ``systemctl status``'s block above the journal lines;
``grep``'s ``--`` between groups; ``minikube``'s section titles) are flagged ``marker``:
they are counted as the wrapper's lines, not as the program's and not as unparsed; so is
a block a wrapper writes under one of its lines (:data:`BLOCKS`: the configuration Fluentd
logs as it starts). A collector's own log lines among what it prints of what it collects
(Fluentd's ``[warn]:`` lines, its ``fluent.warn`` events) are rows of its own, at the
time and level they state (:func:`own_lines`, :func:`own_events`). ANSI
colour codes (``docker compose``, consoles) are removed before anything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from parsers import envelopes, layouts, runtime
from parsers.common import LINE_SCHEMA, PLACEHOLDER_YEAR, per_file, stacked, stacked_samples
from parsers.registry import SAMPLE_LINES

#: Layers looked for, at most, one inside the other.
MAX_LAYERS = 4

_ISO = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})"
)
#: ``unit[pid]:`` or ``unit:``; a unit or tag has no space, bracket or colon
#: (``kubelet.daemon``, ``containerd``, ``systemd-journald``).
_TAG = r"(?P<unit>[^ \[\]:]+)(?:\[(?P<pid>[0-9]+)\])?: ?"

#: ``<PRI>``; some forwarders put a space after it.
_PRI = r"(?:<(?P<pri>[0-9]{1,3})> ?)?"

SYSLOG = (
    rf"^{_PRI}"
    r"(?P<wrap_ts>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?) "
    rf"(?P<host>[^ ]+) {_TAG}(?P<text>.*)$"
)
SYSLOG_ISO = rf"^{_PRI}(?P<prefix_ts>{_ISO}) (?P<host>[^ ]+) {_TAG}(?P<text>.*)$"
#: RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD...] MSG``, ``-`` for nil.
SYSLOG_5424 = (
    rf"^<(?P<pri>[0-9]{{1,3}})>1 (?P<prefix_ts>{_ISO}|-) (?P<host>[^ ]+) (?P<unit>[^ ]+) "
    r"(?P<pid>[^ ]+) (?P<msgid>[^ ]+) "
    r'(?P<sd>-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+)(?: \x{FEFF}?(?P<text>.*))?$'
)
#: ``docker compose logs``: the container (``service-N`` since Compose v2,
#: ``service_N`` before), padded, a bar, then with ``-t`` the time.
COMPOSE = (
    r"^(?P<host>(?P<unit>[A-Za-z0-9][A-Za-z0-9_.-]*?)(?:[-_][0-9]+)?) *\| ?"
    rf"(?:(?P<prefix_ts>{runtime.RFC3339}) )?(?P<text>.*)$"
)
#: A path as ``grep -H`` and ``rg`` name it (shortest first, so that a line number after
#: it is not taken into the name), and a file name with an extension or a path
#: (``/var/log/syslog``, ``logs/messages-20230314``).
_GREP_PATH = r"[^:\s{\[\"<=]*?[./][^:\s]*?"
_GREP_NAME = r"(?:[^:\s{\[\"<=]*\.[A-Za-z][A-Za-z0-9]*|[^:\s{\[\"<=]*/[^:\s]*)"
#: ``grep -Hn``/``rg`` (``file:123:``), ``grep -n`` (``123:``), ``grep -H`` (``file:``, where
#: the name looks like a path); context lines take ``-`` for ``:``. A line that begins
#: with a date after the path (``app.log:2023-03-15 02:50:01 ...``) has no line number.
#: Context lines of ``grep -H`` without ``-n`` (``file-...``) are told by a name the
#: matching lines use (:func:`grep_pattern`).
GREP = (
    rf"^(?P<grep_file_dated>{_GREP_PATH})[:-](?:[0-9]+[:-])?"
    r"(?P<text_dated>[0-9]{4}-[0-9]{2}-[0-9]{2}[ T].*)$"
    rf"|^(?:(?P<grep_file>{_GREP_PATH})[:-])?(?P<grep_line>[0-9]+)[:-](?P<text>.*)$"
    rf"|^(?P<grep_file_only>{_GREP_NAME}):(?P<text_only>.*)$"
)
#: At most this many file names of matching lines tell context lines apart.
GREP_CONTEXT_NAMES = 64

#: ``talosctl logs`` and ``talosctl dmesg`` put the node's address before each line.
TALOSCTL = r"^(?P<host>[0-9]{1,3}(?:\.[0-9]{1,3}){3}): (?P<text>.*)$"
#: The kernel's ring buffer as Talos prints it: facility, level, time.
KMSG = (
    rf"^(?P<unit>[a-z]+): +(?P<level>[a-z]+): \[(?P<prefix_ts>{runtime.RFC3339})\]: "
    r"(?P<text>.*)$"
)

#: ``minikube logs`` before 1.10: ``* `` before every line, a ``==> unit <==`` title
#: before each section.
MINIKUBE = r"^\* ?(?P<text>.*)$"

#: A container's (or pod's, or namespace's) name, and a pod's or a host's.
_NAME = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?"
#: What starts a record of a format that writes its time first: a klog header, a date and
#: a time, a JSON object.
_DATED = r'(?:[IWEF][0-9]{4} [0-9]{2}:|[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:|\{")'
#: The random suffix Kubernetes gives a pod of a Deployment, DaemonSet or Job
#: (``coredns-5d78c9869d-abcde``: five of the consonants and digits its names draw from),
#: or a StatefulSet's ordinal (``rabbitmq-0``).
POD_SUFFIX = rf"-(?:{layouts.K8S_RANDOM}{{5}}|[0-9]{{1,4}})"


def _name_prefix(branch: str, *, namespace: bool, pod_shaped: bool) -> str:
    """One of :data:`NAME_PREFIX`'s shapes, its groups named for its ``branch``."""
    ns = rf"(?P<namespace{branch}>{_NAME}) " if namespace else ""
    if pod_shaped:
        names = rf"(?P<host{branch}>{_HOST}{POD_SUFFIX}) (?P<unit{branch}>{_NAME})"
        return rf"^{ns}{names}(?: (?P<text{branch}>.*))?$"
    pod = rf"(?P<host{branch}>{_HOST}) " if namespace else rf"(?:(?P<host{branch}>{_HOST}) )?"
    return rf"^{ns}{pod}(?P<unit{branch}>{_NAME}) (?P<text{branch}>{_DATED}.*)$"


#: A pod's and a container's name, or a container's alone, before each line (``stern``,
#: ``k9s``, scripts looping over containers), the pod's namespace first where ``stern``
#: shows several namespaces; told from a line's own words by what follows (a line that
#: starts a dated record), or by a pod's name of the shape Kubernetes gives it, which
#: stern writes before any line: one of a program that writes no time of its own
#: (CoreDNS), a record's second line. A namespace's name of that shape (``team-2``) is
#: taken for one where a pod's name follows it.
NAME_PREFIX = "|".join(
    _name_prefix(branch, namespace=namespace, pod_shaped=pod_shaped)
    for branch, namespace, pod_shaped in (
        ("", False, False),
        ("_ns", True, False),
        ("_nspod", True, True),
        ("_pod", False, True),
    )
)
#: ``aws logs tail`` (its default ``detailed`` format): the event's time in UTC, its log
#: stream, the message, whose further lines follow as they are. The stream names the
#: program: an EKS control plane's ``kube-apiserver-<id>``, Container Insights'
#: ``<node>-application.var.log.containers.<pod>_<ns>_<container>-<id>.log``.
AWS_LOGS_TAIL = (
    r"^(?P<prefix_ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"\+00:00) (?P<origin>[^ ]+) (?P<text>.*)$"
)
#: A line copied from ``k9s``'s log view, inside its frame's bars (the first and last
#: line of a selection may have lost one).
K9S = r"^│ (?P<text>.*?) *│?$"

#: ``kubetail``'s pod (with several containers, pod and container) in brackets before
#: each line, ``--timestamps`` putting kubectl's time after it; a pod's name has a
#: hyphen, which tells it from a level in brackets (``[info]``). Its shell ``read`` drops
#: a line's leading blanks.
KUBETAIL = (
    r"^\[(?P<host>[a-z0-9][a-z0-9.]*-[a-z0-9.-]*[a-z0-9])(?: (?P<unit>[a-z0-9](?:[a-z0-9-]*"
    r"[a-z0-9])?))?\] (?P<text>.*)$"
)

#: Fluentd's ``out_file`` line: the time, the tag (for a container's log
#: the path it was read from, dots for slashes), the record as JSON.
FLUENTD = rf"^(?P<prefix_ts>{_ISO})\t(?P<origin>[^\t]+)\t(?P<text>\{{.*)$"
#: Fluentd's time: in its zone, to the nanosecond in ``out_stdout`` since v1.8 (to the
#: second before, and in its own log lines).
_FLUENTD_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)? [+-][0-9]{4}"
#: Fluentd's ``out_stdout`` line (what ``kubectl logs`` shows of a Fluentd that prints
#: what it collects): the record's time (``%Y-%m-%d %H:%M:%S.%N %z``), the tag, a
#: colon, the record as JSON.
FLUENTD_STDOUT = rf"^(?P<prefix_ts>{_FLUENTD_TIME}) (?P<origin>\S+): (?P<text>\{{.*)$"
#: Fluentd's own log line on the same stdout (``lib/fluent/log.rb``): its time, the level
#: in brackets, a colon, then the worker (``#0 ``, none in the supervisor) and the
#: message. A backtrace's lines are the same, indented by two spaces: they continue the
#: line above.
FLUENTD_LOG = (
    rf"^(?P<indent>  )?(?P<prefix_ts>{_FLUENTD_TIME}) "
    r"\[(?P<level>trace|debug|info|warn|error|fatal)\]: (?P<text>.*)$"
)
#: The tag of an event Fluentd emits of its own log (``<label @FLUENT_LOG>``, ``<match
#: fluent.**>``): ``fluent.`` and the level; the record's ``message`` is the line.
FLUENT_OWN_TAG = r"^fluent\.(trace|debug|info|warn|error|fatal)$"
#: Fluent Bit's ``file`` output in its default format: the tag, then the time (epoch
#: seconds to the nanosecond) and the record.
FLUENT_BIT_FILE = r"^(?P<origin>[^\s:]+): \[(?P<epoch>[0-9]+(?:\.[0-9]+)?), (?P<text>\{.*)\]$"
#: ``logcli query``'s default output: the time (RFC 3339 in seconds, in the zone it
#: was asked for), the stream's labels (padded to the widest), the line.
LOGCLI = (
    rf"^(?P<prefix_ts>{_ISO}) "
    r'(?P<labels>\{(?:[^"{}]|"(?:[^"\\]|\\.)*")*\}) +(?P<text>.*)$'
)
#: Grafana's "Download logs" as text (Explore, a logs panel's inspector): a line per
#: entry, the time and a tab before it (the entry keeps its own newlines), newest first
#: unless the view was oldest first. Older releases wrote the time in the browser's zone
#: without naming it (``2024-12-17 18:01:53.956``), later ones as RFC 3339 with the
#: browser's offset; newer ones write epoch milliseconds, a tab and the time in UTC.
GRAFANA = (
    rf"^(?:[0-9]{{10,16}}\t)?(?:(?P<prefix_ts>{_ISO})|(?P<wrap_ts>[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?))\t(?P<text>.*)$"
)
#: The query's facts Grafana writes above the lines, each ``Label: <JSON value>``, and
#: the blank lines after them; the ``Common labels`` every line's stream shares name the
#: node, pod and container of them all.
_GRAFANA_META = (
    r"^(?:Common labels|Line limit|Limit|Total bytes processed|Total lines processed"
    r'|Summary|Query warnings?): (?:\{.*\}|".*"|\[.*\]|[0-9.]+)$|^\s*$'
)
#: Wrappers that write the labels the lines below share once, above them, as JSON.
SHARED_LABELS = {"grafana": r"^Common labels: (\{.*\})$"}

#: Lines journalctl, grep and minikube write of their own.
_JOURNAL = r"^-- (?:Logs begin at |Journal begins at |Boot [0-9a-f]+ --|Reboot --|No entries --)"
#: ``systemctl status``'s block before the unit's last journal lines: the unit's title,
#: its ``Key: value`` fields, the process tree and the blank line after them.
_STATUS = (
    r"^(?:[●○×↻*] \S+\.[a-z]+ - |\s+(?:Loaded|Active|Docs|Main PID|Process|Tasks|Memory|CPU"
    r"|CGroup|Drop-In|TriggeredBy|Triggers|Status|IP|IO|Mem peak|Invocation): |\s+[│├└]─|\s*$)"
)
MARKERS = {
    "syslog": f"{_JOURNAL}|{_STATUS}",
    "syslog-iso": f"{_JOURNAL}|{_STATUS}",
    "grep": r"^--$",
    "minikube": r"^\* ?(?:==> .+ <==)?\s*$",
    "grafana": _GRAFANA_META,
    "kubetail": r"^Will tail [0-9]+ logs\.\.\.$",
}
#: Blocks a wrapper writes of its own under one of its lines: the line that opens one, the
#: shape of the lines in it and the line that closes it (None: the first line of another
#: shape ends it). Fluentd logs the configuration
#: it starts with as one message, ``using configuration file: <ROOT>``, the sections
#: indented below it, then ``</ROOT>``. Only below its opening line is such a line the
#: wrapper's: an indented line elsewhere is a program's.
BLOCKS: dict[str, tuple[str, str, str | None]] = {
    "fluentd-stdout": (r"\]: using configuration file: <ROOT>$", r"^[\t ]", r"^</ROOT>$"),
    # the pods (and containers) it will tail, a line each, before their lines
    "kubetail": (r"^Will tail [0-9]+ logs\.\.\.$", r"^[a-z0-9][a-z0-9.-]*(?: [a-z0-9-]+)?$", None),
}
_HEADER_TIME = r"[A-Z][a-z]{2} ([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}) ([^ ,]+?)"
#: journalctl's first line gives the journal's span in the zone it writes every line in
#: (``-- Logs begin at ... CET, end at ... CET. --``; ``-- Journal begins at ..., ends
#: at ... --`` since systemd 246).
JOURNAL_SPAN = (
    rf"^-- (?:Logs begin at|Journal begins at) {_HEADER_TIME}"
    rf"(?:, (?:end at|ends at) {_HEADER_TIME})?\.? --$"
)

ANSI = r"\x1b\[[0-9;?]*[A-Za-z]"

#: A Markdown code fence of its own on a line, with a language tag or none (````` ```console
#: `````): what a log pasted into an issue or a chat is framed by.
FENCE = r"^[\t ]*```[A-Za-z0-9_+.-]*[\t ]*$"
#: A fence written against a log line, before or after it (````` ```{"time":...} `````,
#: ````` ...skipping``` `````): the line is the log's, the backticks are not.
FENCE_GLUED = r"^```|```$"

#: ``kubectl cluster-info dump`` puts each container's log between these lines.
SECTION = (
    r"^==== (?P<edge>START|END) logs for container (?P<c>[^ ]+) of pod "
    r"(?P<ns>[^/ ]+)/(?P<pod>[^ ]+) ====$"
)
_SECTION_LITERAL = "==== START logs for container "


@dataclass(frozen=True)
class Wrapper:
    """One kind of layer: its pattern (Rust regex; groups name line columns), how its
    time is written (``wrap_ts`` groups, and ``prefix_ts`` groups that are no RFC 3339),
    and whether each line it wraps is an entry of its own (syslog, journald: a line
    without the header continues the entry above)."""

    name: str
    pattern: str
    time_format: str | None = None
    entries: bool = False
    #: The collector's own log lines, written among what it collects (groups
    #: ``prefix_ts``, ``level``, ``text``; an ``indent`` one continues the line above).
    own: str | None = None
    #: The program those lines (and its events of its own) are from.
    program: str | None = None
    #: How its ``wrap_ts`` is written where that names the year: a time in a zone it
    #: does not name, not syslog's yearless one.
    dated: str | None = None


WRAPPERS = {
    "fluent-bit-file": Wrapper("fluent-bit-file", FLUENT_BIT_FILE),
    "syslog": Wrapper("syslog", SYSLOG, "%Y %b %d %H:%M:%S%.f", entries=True),
    "syslog-iso": Wrapper("syslog-iso", SYSLOG_ISO, entries=True),
    "syslog-5424": Wrapper("syslog-5424", SYSLOG_5424, entries=True),
    "compose": Wrapper("compose", COMPOSE),
    "grep": Wrapper("grep", GREP),
    "talosctl": Wrapper("talosctl", TALOSCTL),
    "kmsg": Wrapper("kmsg", KMSG, entries=True),
    "minikube": Wrapper("minikube", MINIKUBE),
    "name-prefix": Wrapper("name-prefix", NAME_PREFIX),
    "fluentd": Wrapper("fluentd", FLUENTD, program="fluentd"),
    "fluentd-stdout": Wrapper(
        "fluentd-stdout",
        FLUENTD_STDOUT,
        "%Y-%m-%d %H:%M:%S%.f %z",
        own=FLUENTD_LOG,
        program="fluentd",
    ),
    "logcli": Wrapper("logcli", LOGCLI, entries=True),
    "grafana": Wrapper("grafana", GRAFANA, entries=True, dated="%Y-%m-%d %H:%M:%S%.f"),
    "k9s": Wrapper("k9s", K9S),
    "kubetail": Wrapper("kubetail", KUBETAIL),
    "aws-logs-tail": Wrapper("aws-logs-tail", AWS_LOGS_TAIL, entries=True),
}

#: Share of sample lines (markers aside) that must carry a layer for it to be stripped.
MIN_SHARE = runtime.MIN_SHARE

#: syslog severities (the PRI modulo 8) as our levels.
SEVERITY = ["critical", "critical", "critical", "error", "warning", "info", "info", "debug"]
#: The same by name, as kernels and Talos print them.
SEVERITY_NAMES = dict(
    zip(
        ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"],
        SEVERITY,
        strict=True,
    )
) | {"warn": "warning", "error": "error", "trace": "debug", "fatal": "critical"}

#: Line columns a wrapper may add beyond :data:`~parsers.common.LINE_SCHEMA` (``own``: a
#: collector's own line, read whole, no layer looked for inside it; ``wrap_level``: a
#: level a line's own words beat, ``stated_level``: one they do not, as journald's
#: ``PRIORITY`` 0 to 4; a format's reading of the line beats both; ``unreadable``: why a
#: layer's own record could not be read, a CSV export's record of too few fields: an
#: unparsed line, no program's; ``namespace``: the namespace of the pod that wrote the
#: line, as a collector's record or labels state it).
WRAP_SCHEMA = {
    "wrap_ts": pl.Datetime("us"),
    "wrap_year_missing": pl.Boolean,
    "wrap_level": pl.String,
    "stated_level": pl.String,
    "pid": pl.String,
    "namespace": pl.String,
    "entry": pl.Boolean,
    "marker": pl.Boolean,
    "own": pl.Boolean,
    "unreadable": pl.String,
}


@dataclass(frozen=True)
class Peeled:
    """Lines with their layers stripped, and the layers' names, outermost first."""

    lines: pl.DataFrame
    layers: tuple[str, ...]
    shares: tuple[float, ...] = ()

    @property
    def described(self) -> str | None:
        return " > ".join(self.layers) or None

    def why(self) -> str:
        """The layers in words: ``syslog wrapper on 98% of sample lines; cri prefix ...``."""
        return "; ".join(
            f"{name} {_kind(name)} on {share:.0%} of sample lines"
            for name, share in zip(self.layers, self.shares, strict=True)
        )


def _kind(layer: str) -> str:
    if layer in runtime.PREFIXES:
        return "prefix"
    return "envelope" if layer in envelopes.ENVELOPES else "wrapper"


#: Wrappers a container writes on its own output, found inside a runtime's prefix: a
#: collector printing what it collects (``kubectl logs`` of a Fluentd pod, its ``0.log``).
IN_CONTAINER = ("fluentd-stdout",)

#: Layers only ever outermost: grep and rg run over what was collected, never inside it
#: (``/docker-entrypoint.sh: ...`` inside a journal is a program's line, not ``grep -H``).
OUTERMOST = ("grep",)


def detect(sample: list[str], *, inner: bool = False) -> tuple[str | None, float]:
    """The layer most lines of ``sample`` carry (a wrapper or a runtime prefix), and the
    share of lines that do; ``None`` below :data:`MIN_SHARE`. ``inner``: the lines are
    what another layer wrapped, so :data:`OUTERMOST` layers are not looked for.

    >>> detect(["Feb 23 16:31:05 node-1 kubelet[1203]: I0223 16:31:05.1 1 a.go:1] x"])
    ('syslog', 1.0)
    """
    names = [name for name in WRAPPERS if not (inner and name in OUTERMOST)]
    prefix = runtime.detect(sample)
    shares = wrapper_shares_each([sample], names, floors=[prefix[1]])[0]
    return _best_layer(prefix, shares | _envelope_share(envelopes.detect_each([sample])[0]))


def detect_each(samples: list[list[str]]) -> list[tuple[str | None, float]]:
    """:func:`detect` of each of several files' samples (each the outermost layer), in two
    queries for them all: on small files the fixed cost of a query, not the lines, is what
    a sample costs.

    >>> detect_each([["Feb 23 16:31:05 node-1 kubelet[1203]: x"], ["plain text"], []])
    [('syslog', 1.0), (None, 0.0), (None, 0.0)]
    """
    prefixes = runtime.detect_each(samples)
    floors = [share for _, share in prefixes]
    wrapped = wrapper_shares_each(samples, list(WRAPPERS), floors=floors)
    enveloped = envelopes.detect_each(samples)
    return [
        _best_layer(p, w | _envelope_share(e))
        for p, w, e in zip(prefixes, wrapped, enveloped, strict=True)
    ]


def printed_each(samples: list[list[str]]) -> list[tuple[str | None, float]]:
    """The layer inside each of several samples of a runtime's lines (what a container
    wrote), in two queries for them all: only what a collector prints of what it
    collects, its records (:mod:`parsers.envelopes`) or its lines (:data:`IN_CONTAINER`),
    is looked for there.

    >>> printed_each([["2023-03-14 18:59:59 +0000 [info]: #0 fluentd worker is now running"]])
    [('fluentd-stdout', 1.0)]
    """
    enveloped = envelopes.detect_each(samples)
    wrapped = wrapper_shares_each(samples, IN_CONTAINER)
    return [
        _best_layer((None, 0.0), w | _envelope_share(e))
        for e, w in zip(enveloped, wrapped, strict=True)
    ]


def _envelope_share(found: tuple[str | None, float]) -> dict[str, float]:
    name, share = found
    return {name: share} if name else {}


def _best_layer(
    prefix: tuple[str | None, float], shares: dict[str, float]
) -> tuple[str | None, float]:
    """The layer of the highest share, a runtime ``prefix`` (name and share) first among
    equals; None below :data:`MIN_SHARE`."""
    best, best_share = prefix
    for name, share in shares.items():
        if share > best_share:
            best, best_share = name, share
    if best_share < MIN_SHARE:
        return None, best_share
    return best, best_share


def wrapper_share(sample: list[str], name: str) -> float:
    """The share of ``sample``'s lines (its own marker lines aside) that the wrapper
    ``name`` matches; 0 where the matches are not plausibly that wrapper's."""
    return wrapper_shares(sample, [name])[name]


def wrapper_shares(sample: list[str], names: Iterable[str]) -> dict[str, float]:
    """:func:`wrapper_share` of each wrapper of ``names``, in one query for them all."""
    return wrapper_shares_each([sample], names)[0]


def wrapper_shares_each(
    samples: list[list[str]], names: Iterable[str], *, floors: list[float] | None = None
) -> list[dict[str, float]]:
    """:func:`wrapper_shares` of each of several samples, in one query for them all (two
    with grep, whose context lines are told by the file names of each sample's own
    matching lines: :func:`grep_pattern`). With ``floors``, a share no higher than its
    sample's floor (a runtime prefix's share, which wins a tie) cannot make the wrapper
    the layer, and is given as 0 without the plausibility check."""
    names = list(names)
    frame = stacked_samples(samples)
    line = pl.col("line")
    shares: dict[str, pl.Expr] = {}
    for name in names:
        wrapper = WRAPPERS[name]
        matched = line.str.contains(wrapper.pattern)
        if wrapper.own:
            matched = matched | line.str.contains(wrapper.own)
        if name == "grep":
            matched = matched | _grep_context_matches(frame)
        share = matched.mean()
        markers = marker_lines(name, line)
        if markers is not None:
            rest = ~markers
            # a sample of nothing but the wrapper's own lines (``-- No entries --``) is its
            share = pl.when(rest.any()).then(matched.filter(rest).mean()).otherwise(1.0)
        shares[name] = share
    found = per_file(frame, len(samples), **shares)
    floors = floors or [0.0] * len(samples)
    return [
        {
            name: float(each[name])
            if each and (each[name] or 0.0) > floor and _plausible(name, sample)
            else 0.0
            for name in names
        }
        for sample, each, floor in zip(samples, found, floors, strict=True)
    ]


def marker_lines(name: str, text: pl.Expr) -> pl.Expr | None:
    """Whether each line of ``text`` (one file's, in order) is one the wrapper ``name``
    writes of its own (:data:`MARKERS`, the lines of its :data:`BLOCKS`); None for a
    wrapper that writes none.

    >>> dump = ["2023-03-14 18:59:58 +0000 [info]: using configuration file: <ROOT>",
    ...     "  <source>", "  </source>", "</ROOT>", "  indented, a program's"]
    >>> pl.select(marker_lines("fluentd-stdout", pl.Series(dump))).to_series().to_list()
    [False, True, True, True, False]
    """
    found = [text.str.contains(MARKERS[name])] if name in MARKERS else []
    if name in BLOCKS:
        opens, inside, closes = BLOCKS[name]
        closing = pl.lit(False) if closes is None else text.str.contains(closes)
        shaped = text.str.contains(inside) | closing
        # below a line that opens a block, up to its closing line or the first line not
        # shaped as its lines
        opened = pl.when(~shaped | closing).then(text.str.contains(opens)).forward_fill()
        found.append(shaped & opened.shift(1).fill_null(False))
    return pl.any_horizontal(found) if found else None


def _grep_context_matches(frame: pl.DataFrame) -> pl.Expr:
    """Whether each line of ``frame`` (``_file``, ``line``) is a context line of ``grep -H``
    (``file.log-...``) as its own sample's matching lines name files (:func:`grep_pattern`)."""
    named = (
        frame.with_columns(name=_grep_names(pl.col("line")))
        .drop_nulls("name")
        .unique(["_file", "name"], maintain_order=True)
        .group_by("_file", maintain_order=True)
        .agg(pl.col("name").head(GREP_CONTEXT_NAMES))
    )
    by_context: dict[str, list[int]] = {}
    for file, names in named.iter_rows():
        by_context.setdefault(_grep_context(names), []).append(file)
    matched = pl.lit(False)
    for context, files in by_context.items():
        matched = matched | (pl.col("_file").is_in(files) & pl.col("line").str.contains(context))
    return matched


def _expected_layer(
    sample: list[str], expect: Sequence[tuple[str, ...]], outer: tuple[str, ...]
) -> tuple[str | None, float]:
    """The next layer one of ``expect`` names after ``outer``, if every line carries it."""
    depth = len(outer)
    for name in dict.fromkeys(e[depth] for e in expect if len(e) > depth and e[:depth] == outer):
        if name in runtime.PREFIXES:
            share = runtime.prefix_share(sample, name)
        elif name in envelopes.ENVELOPES:
            found, share = envelopes.detect(envelopes.items_sample(sample))
            share = share if found == name else 0.0
        else:
            share = wrapper_share(sample, name)
        if share == 1.0:
            return name, share
    return None, 0.0


_GREP_NUMBERED = re.compile(r"^(?:[^:\s{\[\"<=]*[./][^:\s]*[:-])?[0-9]+(?P<sep>[:-])(?P<rest>.*)$")
_GREP_DATED = re.compile(rf"^{_GREP_PATH}[:-](?:[0-9]+[:-])?[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[ T]")


#: The rest of an IPv6 address after its first group and colon (``db8::53``).
_IPV6_REST = r"(?:[0-9A-Fa-f]{0,4}:)+[0-9A-Fa-f]{0,4}(?:[ \]/%]|$)"


def _plausible(name: str, lines: list[str]) -> bool:
    """Whether the wrapper ``name``, whose pattern most sample ``lines`` match, is what
    wrote them (:data:`_PLAUSIBLE`; a wrapper without a check is)."""
    check = _PLAUSIBLE.get(name)
    return check is None or check(lines)


def _grep_plausible(lines: list[str]) -> bool:
    """Whether numbered lines are grep's: most are matches (``N:``, context lines are
    ``N-``), and what follows is not the rest of a time, a date or an IPv6 address
    (``10:00:01 msg`` is a time, ``2023-03-13 10:05,...`` a date and ``2001:db8::53 - ...``
    an address, not lines 10, 2023 and 2001).

    >>> _grep_plausible(["2023-03-13 10:05,upgrade,daemonset/kube-proxy"])
    False
    >>> _grep_plausible(['2001:db8::53 - [14/Mar/2023:18:00:01 +0000] 1 "A IN x. udp"'])
    False
    """
    found = [m for s in lines if not _GREP_DATED.match(s) and (m := _GREP_NUMBERED.match(s))]
    if not found:
        return True
    matches = sum(1 for m in found if m["sep"] == ":")
    times = sum(1 for m in found if re.match(r"[0-9]{2}[-:./][0-9]{2}|" + _IPV6_REST, m["rest"]))
    return matches >= len(found) / 2 and times < len(found) / 2


_NAME_PREFIX = re.compile(NAME_PREFIX)
_GENERATED_POD = re.compile(rf"-{layouts.K8S_RANDOM}{{5}}$")
_GRAFANA = re.compile(GRAFANA)
#: A level and a tab after a time and a tab: a logger's own line (zap's console encoder,
#: ``2024-02-06T09:14:03.118Z<TAB>ERROR<TAB>...``), not an entry Grafana downloaded.
_TAB_LEVEL = re.compile(r"(?i:debug|info|warn|warning|error|dpanic|panic|fatal)\t")


def _grafana_plausible(lines: list[str]) -> bool:
    """Whether times and tabs before lines are Grafana's: most lines do not go on with a
    level and a tab, as zap's console lines do."""
    texts = [m["text"] for s in lines if (m := _GRAFANA.match(s))]
    return sum(1 for t in texts if _TAB_LEVEL.match(t)) <= len(texts) / 2


def _named_plausible(lines: list[str]) -> bool:
    """Whether the words before lines are containers' names, not the level a format
    writes before its time (RabbitMQ's ``$level $time $msg``: ``info 2024-10-04 ...``).

    >>> _named_plausible(["info 2024-10-04 03:23:52.968389-04:00 connection closed"])
    False
    >>> _named_plausible(["manager 2023-03-14T18:00:01Z reconciled"])
    True
    """
    found = [m for s in lines if (m := _NAME_PREFIX.match(s))]
    units = [m["unit"] or m["unit_ns"] or m["unit_pod"] or m["unit_nspod"] for m in found]
    levels = sum(1 for unit in units if unit in SEVERITY_NAMES)
    dated = any(m["unit"] or m["unit_ns"] for m in found)
    pods = [m["host_pod"] or m["host_nspod"] or "" for m in found]
    return levels <= len(units) / 2 and (dated or any(map(_GENERATED_POD.search, pods)))


_AWS_LOGS_TAIL = re.compile(AWS_LOGS_TAIL)


def _streams_plausible(lines: list[str]) -> bool:
    """Whether the words after the times are log streams' names, not the level a
    program writes after its own UTC time (``2023-03-14T18:00:01.5+00:00 INFO ...``).

    >>> _streams_plausible(["2023-03-14T18:00:01.500000+00:00 ERROR query failed"])
    False
    """
    streams = [m["origin"] for s in lines if (m := _AWS_LOGS_TAIL.match(s))]
    levels = sum(1 for stream in streams if stream.lower().strip("[]:") in envelopes.LEVELS)
    return levels <= len(streams) / 2


#: What tells a wrapper's lines from a format's own that its pattern also matches.
_PLAUSIBLE: dict[str, Callable[[list[str]], bool]] = {
    "grep": _grep_plausible,
    "name-prefix": _named_plausible,
    "grafana": _grafana_plausible,
    "aws-logs-tail": _streams_plausible,
}


def grep_pattern(text: pl.Series) -> str:
    """:data:`GREP`, and for the file names that lines of ``text`` name (``file.log:...``),
    their context lines too (``file.log-...``, as ``grep -H -A`` writes them).

    >>> names = pl.Series(["rmq-01.log:=ERROR REPORT==== 11-Oct-2017::21:42:29 ==="])
    >>> "|^(?P<grep_file_context>rmq" in grep_pattern(names)
    True
    """
    names = (
        text.to_frame("line")
        .select(_grep_names(pl.col("line")))
        .to_series()
        .drop_nulls()
        .unique(maintain_order=True)
        .head(GREP_CONTEXT_NAMES)
        .to_list()
    )
    if not names:
        return GREP
    return f"{GREP}|{_grep_context(names)}"


def _grep_names(text: pl.Expr) -> pl.Expr:
    """The file name a ``grep -H`` line begins with (``file.log:``), else null."""
    return text.str.extract(rf"^({_GREP_NAME}):", 1)


def _grep_context(names: list[str]) -> str:
    """The pattern of the context lines ``grep -H -A`` writes for the files ``names``."""
    known = "|".join(re.sub(r"([\\.^$*+?()\[\]{}|-])", r"\\\1", n) for n in names)
    return rf"^(?P<grep_file_context>{known})-(?P<text_context>.*)$"


def peel(
    lines: pl.DataFrame,
    sample: list[str] | None = None,
    expect: Sequence[tuple[str, ...]] = (),
) -> Peeled:
    """Strip every layer ``lines`` carry, outermost first, keeping what each says. A
    runtime prefix is the innermost layer: what it wraps is the program's own line, whose
    time is its own.

    ``expect`` names the layers other files of the same kind had: such a layer is taken
    without looking for the others when every sample line carries it, so that a folder
    of rotated pod logs is sniffed in full once.

    Takes the loader's lines (``line``, ``end_line``, ``text``, ``path``); returns them
    with :data:`~parsers.common.LINE_SCHEMA` and :data:`WRAP_SCHEMA` columns.
    """
    raw = lines["text"].head(SAMPLE_LINES).to_list() if sample is None else sample
    if any("\x1b[" in s for s in raw):
        lines = lines.with_columns(pl.col("text").str.replace_all(ANSI, ""))
    frame = unpasted(_empty_columns(lines), raw)
    layers: list[str] = []
    shares: list[float] = []
    if frame["text"].str.contains(_SECTION_LITERAL, literal=True).any():
        frame = _sections(frame)
        layers.append("cluster-info-dump")
        shares.append(float(frame["container"].is_not_null().mean()))
    for _ in range(MAX_LAYERS):
        body = frame.filter(~pl.col("marker") & ~pl.col("own"))["text"]
        body = body.head(SAMPLE_LINES).to_list()
        name, share = _expected_layer(body, expect, tuple(layers))
        if name is None and layers and layers[-1] in runtime.PREFIXES:
            # inside a runtime's line, only what a collector prints of what it collects
            # (its own container's output: ``kubectl logs fluent-bit``)
            name, share = printed_each([body])[0]
        elif name is None:
            name, share = detect(body, inner=bool(layers))
        if name is None or name in layers:
            break
        if name in envelopes.ENVELOPES and envelopes.items_sample(body) != body:
            frame = _one_record_a_line(frame, name)  # an export's document
        frame = strip(frame, name, outermost=not layers)
        layers.append(name)
        shares.append(share)
        if name in envelopes.ENVELOPES and layers[:-1] and layers[-2] in runtime.PREFIXES:
            break
    return Peeled(_oldest_first(frame), tuple(layers), tuple(shares))


def _oldest_first(frame: pl.DataFrame) -> pl.DataFrame:
    """Lines a collector listed newest first (``gcloud logging read`` and ``logcli
    query`` by default, a store's search, Grafana's download) in the order they were
    written: the rows reversed where nine in ten of the steps between the layers' times
    (a zone's or, where a layer names none, a dated wall clock's) go back (times that
    jitter, as merged streams' do, are no order to undo), so that a record's lines (a
    klog ``err=<`` block, RabbitMQ's pieces) follow its first line again; among lines of
    one time, which a store lists in any order, those that continue a record (indented)
    come last. Their line numbers stay those of the file."""
    dated = pl.when(~pl.col("wrap_year_missing")).then(pl.col("wrap_ts"))
    at = pl.coalesce("prefix_ts", dated.dt.replace_time_zone("UTC"))
    steps = frame.select(back=(at < at.shift(1)).sum(), forward=(at > at.shift(1)).sum())
    back, forward = steps.row(0)
    if back <= 9 * forward:
        return frame
    # lines of one time may come in either order: a block's own lines after its first
    continues = pl.col("text").str.contains(r"^(?:[\t ]|$)")
    return frame.reverse().sort(at.forward_fill(), continues, maintain_order=True)


def _one_record_a_line(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """An export document's records one a line (:func:`parsers.envelopes.unwrap_documents`),
    the wrapper columns of each record's first line riding along where the unwrapping
    gives none of its own (a CSV export's ``marker`` and ``unreadable``)."""
    unwrapped = envelopes.unwrap_documents(frame.select(list(LINE_SCHEMA)), name)
    wrap = frame.select("line", *(c for c in WRAP_SCHEMA if c not in unwrapped.columns))
    return unwrapped.join(wrap, on="line", how="left").select(frame.columns)


def journal_header(markers: pl.Series) -> dict[str, Any] | None:
    """What journal headers state: the span of the journal, from the first header's
    beginning to the last one's end, in the zone journalctl wrote every line in, the zone
    names they give (two where a summer time began or ended within it) and the zone of
    the end; None without such a header.

    >>> journal_header(pl.Series(["-- Logs begin at Mon 2023-01-02 08:00:00 CET, end at "
    ...     "Mon 2023-04-03 10:00:00 CEST. --"]))
    {'begin': '2023-01-02 08:00:00', 'end': '2023-04-03 10:00:00', 'zones': ['CEST', 'CET'], \
'zone': 'CEST'}
    """
    stated = markers.str.extract_groups(JOURNAL_SPAN).struct.unnest().drop_nulls("1")
    if stated.height == 0:
        return None
    first, last = stated.row(0), stated.row(-1)
    end, zone = (last[2], last[3]) if last[2] is not None else (last[0], last[1])
    zones = sorted({z for z in (*stated["2"], *stated["4"]) if z})
    return {"begin": first[0], "end": end, "zones": zones, "zone": zone}


def peel_together(
    frames: list[pl.DataFrame], samples: list[list[str]], prefix: str | None
) -> list[Peeled]:
    """:func:`peel` of several files' lines whose first lines carry the runtime ``prefix``
    on every line, or (``prefix`` None) no layer at all, with their paths' hosts and
    containers (:func:`with_path_hints`), in one query: on small files the fixed cost of
    a query, not the lines, is what peeling costs. Each frame's ``path`` must be its own.
    A file with colour codes in its ``samples``, with ``cluster-info dump`` sections or
    with what a paste leaves (:func:`pasted`) is peeled on its own."""
    sections = per_file(
        stacked(frames, "text"),
        len(frames),
        any=pl.col("text").str.contains(_SECTION_LITERAL, literal=True).any(),
    )
    plain = [
        not any("\x1b[" in s for s in sample)
        and not (section and section["any"])
        and not any(pasted(sample))
        for sample, section in zip(samples, sections, strict=True)
    ]
    together = [frame for frame, ok in zip(frames, plain, strict=True) if ok and frame.height]
    peeled = {}
    if together:
        lines = _empty_columns(pl.concat(together, how="vertical"))
        if prefix is not None:
            lines = strip(lines, prefix, outermost=True)
        peeled = with_path_hints(lines).partition_by("path", as_dict=True, maintain_order=True)
    if prefix is not None and peeled:
        # a collector's container printing what it collects is peeled further, alone
        heads = [each["text"].head(SAMPLE_LINES).to_list() for each in peeled.values()]
        inside = {p for p, (name, _) in zip(peeled, printed_each(heads), strict=True) if name}
        plain = [
            ok and (frame.height == 0 or (frame["path"][0],) not in inside)
            for frame, ok in zip(frames, plain, strict=True)
        ]
    layers = ((prefix,), (1.0,)) if prefix is not None else ((), ())
    out = []
    for frame, sample, ok in zip(frames, samples, plain, strict=True):
        if ok and frame.height:
            out.append(Peeled(peeled[(frame["path"][0],)], *layers))
        else:
            alone = peel(frame, sample)
            out.append(replace(alone, lines=with_path_hints(alone.lines)))
    return out


def with_path_hints(lines: pl.DataFrame) -> pl.DataFrame:
    """``lines`` with the host and container each line's ``path`` names (a pod's folder
    in ``var/log/pods``, a node's folder: :func:`parsers.layouts.hints_from_path`) where
    no layer named them."""
    if lines.height == 0:
        return lines
    return lines.with_columns(**hints_of_paths(lines["path"], pl.col("path")))


def hints_of_paths(files: pl.Series, path: pl.Expr) -> dict[str, pl.Expr]:
    """Host and container from the paths in ``path`` (``files``: their values), each
    path read once, where the lines do not name them already: ``grep -rn error bundle/``
    over a node's ``var/log/pods`` says whose each line is, and so do the paths of many
    small files read at once."""
    hints = {f: layouts.hints_from_path(f) for f in files.drop_nulls().unique().to_list()}
    host = {f: h.node or h.pod for f, h in hints.items() if h.node or h.pod}
    container = {f: h.container for f, h in hints.items() if h.container}
    return {
        "host": pl.coalesce(
            pl.col("host"), path.replace_strict(host, default=None, return_dtype=pl.String)
        ),
        "container": pl.coalesce(
            pl.col("container"),
            path.replace_strict(container, default=None, return_dtype=pl.String),
        ),
    }


#: The program a systemd unit or snap names (``kubelet`` for ``kubelet.service``).
program_of_unit = envelopes.program_of_unit


def _sections(frame: pl.DataFrame) -> pl.DataFrame:
    """Name each line between ``==== START logs for container C of pod NS/POD ====`` and
    its ``END`` line by its container and pod; the two lines are the wrapper's own."""
    edge = pl.col("_s").struct.field("edge")

    def inside(name: str) -> pl.Expr:
        value = (
            pl.when(edge == "START")
            .then(pl.col("_s").struct.field(name))
            .when(edge == "END")
            .then(pl.lit(""))
            .otherwise(None)
            .forward_fill()
        )
        return pl.when(value != "").then(value)

    return (
        frame.with_columns(_s=pl.col("text").str.extract_groups(SECTION))
        .with_columns(
            marker=pl.col("marker") | edge.is_not_null(),
            container=pl.coalesce(pl.col("container"), inside("c")),
            host=pl.coalesce(pl.col("host"), inside("pod")),
        )
        .drop("_s")
    )


def pasted(sample: list[str]) -> tuple[bool, bool, int]:
    """What a paste left on the lines of ``sample``: a Markdown quote's ``>`` on every
    one; a code fence opening the paste (its fences, there and further on, are the
    paste's); the indent every line shares (a code block's four spaces, a list item's or
    a terminal session's two) once the quote's mark is off. All three nothing for a file
    as a program wrote it: no program's log opens with a fence or quotes every line.

    >>> pasted([">     2026-07-10T14:33:53Z stderr F I0710 ...", ">     2026-..."])
    (True, False, 4)
    >>> pasted(["```console", "  $ kubectl logs x", "  E0914 10:54:57 ...", "```"])
    (False, True, 2)
    >>> pasted(["E0914 10:54:57 ...", "\tcontinued", "```"])
    (False, False, 0)
    """
    first = next((s for s in sample if s.strip()), "")
    if not first or first[0] not in "> `":
        return False, False, 0  # every remnant shows on the first line
    body = [s for s in sample if s.strip()]
    quote = all(s.startswith(">") for s in body)
    if quote:
        body = [s[2:] if s.startswith("> ") else s[1:] for s in body]
    fence = body[0].lstrip(" ").startswith("```")
    lines = [s for s in body if s.strip() and not (fence and _FENCE.match(s))]
    indent = min((len(s) - len(s.lstrip(" ")) for s in lines), default=0)
    return quote, fence, indent


_FENCE = re.compile(FENCE)


def unpasted(frame: pl.DataFrame, sample: list[str]) -> pl.DataFrame:
    """``frame``'s lines as the program wrote them, with what a paste left taken off
    (:func:`pasted` reads it in ``sample``): a quote's ``>``, the indent all lines share;
    a fence line becomes a marker line, a fence written against a log line is cut from
    it. One whole-column pass, and only on a file whose sample shows such remnants."""
    quote, fence, indent = pasted(sample)
    if not (quote or fence or indent):
        return frame
    text = pl.col("text")
    if quote:
        text = text.str.strip_prefix(">").str.strip_prefix(" ")
    if fence:
        is_fence = text.str.contains(FENCE)
        text = pl.when(is_fence).then(text).otherwise(text.str.replace_all(FENCE_GLUED, ""))
    if indent:
        text = text.str.strip_prefix(" " * indent)
    out = frame.with_columns(text.alias("text"))
    if fence:
        out = out.with_columns(marker=pl.col("marker") | pl.col("text").str.contains(FENCE))
    return out


def _empty_columns(lines: pl.DataFrame) -> pl.DataFrame:
    names = lines.columns
    return lines.with_columns(
        *[
            pl.lit(None, dtype).alias(col)
            for col, dtype in {**LINE_SCHEMA, **WRAP_SCHEMA}.items()
            if col not in names
        ]
    ).with_columns(entry=pl.lit(False), marker=pl.lit(False), own=pl.lit(False))


def strip(frame: pl.DataFrame, name: str, *, outermost: bool = False) -> pl.DataFrame:
    """Strip the layer ``name`` from the lines that carry it; an inner layer's time and
    names take precedence over an outer one's, being nearer the program."""
    if name in runtime.PREFIXES and outermost:
        # nothing outside it to keep: the runtime's own strip, the wrapper columns empty
        stripped = runtime.strip(frame.select("line", "end_line", "text", "path").lazy(), name)
        return _empty_columns(stripped.collect(engine="in-memory")).select(frame.columns)
    if name in runtime.PREFIXES:
        return _strip_runtime(frame, name)
    if name in envelopes.ENVELOPES:
        return envelopes.strip(frame, name)
    wrapper = WRAPPERS[name]
    is_marker = marker_lines(name, pl.col("text"))
    pattern = wrapper.pattern
    if name == "grep":
        pattern = grep_pattern(frame.filter(~pl.col("marker"))["text"])
    groups = set(re.findall(r"\?P<(\w+)>", pattern))
    found = frame.with_columns(
        _marker=(pl.lit(False) if is_marker is None else is_marker) & ~pl.col("marker")
    )
    if wrapper.own:
        found = own_lines(found, wrapper)
    found = found.with_columns(
        _g=pl.when(~pl.col("_marker") & ~pl.col("marker") & ~pl.col("own"))
        .then(pl.col("text"))
        .str.extract_groups(pattern)
    )
    field = pl.col("_g").struct.field

    def first_of(prefix: str) -> pl.Expr:
        """A group, or the first of the groups whose names start so (one each branch)."""
        return pl.coalesce(*(field(g) for g in sorted(groups) if g.startswith(prefix)))

    text = first_of("text")
    matched = pl.any_horizontal([field(g).is_not_null() for g in sorted(groups)])
    updates: dict[str, pl.Expr] = {
        "text": pl.when(matched).then(text.fill_null("")).otherwise(pl.col("text")),
        "marker": pl.col("marker") | pl.col("_marker"),
    }
    if "host" in groups:
        updates["host"] = pl.coalesce(pl.col("host"), first_of("host"))
    if name == "grep":
        files = first_of("grep_file")
        updates |= hints_of_paths(found.select(_f=files)["_f"], files)
    if "origin" in groups:
        origin = envelopes.log_path_of_tag(field("origin"))
        updates |= hints_of_paths(found.select(_f=origin)["_f"], origin)
    if "labels" in groups:
        labels = field("labels")
        named = envelopes.label_value
        updates["host"] = pl.coalesce(
            pl.col("host"),
            named(labels, envelopes.NODE_LABELS),
            named(labels, envelopes.POD_LABELS),
        )
        # labels every stream shares are printed apart, once: the file's path may be left
        filename = named(labels, ["filename"])
        from_path = hints_of_paths(found.select(_f=filename)["_f"], filename)
        updates["container"] = pl.coalesce(
            pl.col("container"), named(labels, envelopes.CONTAINER_LABELS), from_path["container"]
        )
        updates["namespace"] = pl.coalesce(
            pl.col("namespace"),
            envelopes.namespace_name(named(labels, envelopes.NAMESPACE_LABELS)),
        )
    if name in SHARED_LABELS:
        updates |= _shared_labels(found, SHARED_LABELS[name])
    if any(g.startswith("namespace") for g in groups):
        updates["namespace"] = pl.coalesce(
            pl.col("namespace"), envelopes.namespace_name(first_of("namespace"))
        )
    if "unit" in groups:
        unit = first_of("unit")
        if name == "syslog-5424":
            unit = pl.when(unit != "-").then(unit)
        updates["container"] = pl.coalesce(pl.col("container"), program_of_unit(unit))
    if "pid" in groups:
        updates["pid"] = pl.coalesce(pl.col("pid"), pl.when(field("pid") != "-").then(field("pid")))
    if "pri" in groups:
        severity = (field("pri").cast(pl.Int32, strict=False) % 8).replace_strict(
            dict(enumerate(SEVERITY)), default=None, return_dtype=pl.String
        )
        updates["wrap_level"] = pl.coalesce(pl.col("wrap_level"), severity)
    if "level" in groups:
        named = field("level").replace_strict(SEVERITY_NAMES, default=None, return_dtype=pl.String)
        updates["wrap_level"] = pl.coalesce(pl.col("wrap_level"), named)
    if "epoch" in groups:
        stated = envelopes.epoch_or_rfc3339(field("epoch"))
        updates["prefix_ts"] = pl.coalesce(pl.col("prefix_ts"), stated)
    if "prefix_ts" in groups:
        stated = _stated_time(field("prefix_ts"), wrapper.time_format)
        updates["prefix_ts"] = pl.coalesce(pl.col("prefix_ts"), stated)
    if "origin" in groups and "prefix_ts" in groups and wrapper.program:
        stated = _stated_time(field("prefix_ts"), wrapper.time_format)
        updates |= own_events(field("origin"), text, stated, updates, wrapper.program)
    if "wrap_ts" in groups:
        written = pl.format(
            f"{PLACEHOLDER_YEAR} {{}}", field("wrap_ts").str.replace("  ", " ", literal=True)
        ).str.to_datetime(wrapper.time_format, time_unit="us", strict=False)
        if wrapper.dated:
            written = field("wrap_ts").str.to_datetime(wrapper.dated, time_unit="us", strict=False)
        updates["wrap_ts"] = pl.coalesce(pl.col("wrap_ts"), written)
        updates["wrap_year_missing"] = pl.coalesce(
            pl.col("wrap_year_missing"),
            pl.when(written.is_not_null()).then(pl.lit(wrapper.dated is None)),
        )
    if wrapper.entries:
        updates["entry"] = pl.col("entry") | matched
    return found.with_columns(**updates).drop("_g", "_marker")


def _shared_labels(frame: pl.DataFrame, pattern: str) -> dict[str, pl.Expr]:
    """Host and container from the labels a wrapper writes once above the lines that
    share them (:data:`SHARED_LABELS`), where the lines do not name their own: a Grafana
    download of one pod's stream names its node, pod and container only there."""
    labels = pl.col("text").str.extract(pattern, 1).forward_fill()

    def named(names: Iterable[str]) -> pl.Expr:
        return pl.coalesce([labels.str.json_path_match(f"$.{name}") for name in names])

    filename = named(["filename"])
    from_path = hints_of_paths(frame.select(_f=filename)["_f"], filename)
    return {
        "host": pl.coalesce(
            pl.col("host"),
            named(envelopes.NODE_LABELS),
            named(envelopes.POD_LABELS),
            from_path["host"],
        ),
        "container": pl.coalesce(
            pl.col("container"), named(envelopes.CONTAINER_LABELS), from_path["container"]
        ),
        "namespace": pl.coalesce(
            pl.col("namespace"), envelopes.namespace_name(named(envelopes.NAMESPACE_LABELS))
        ),
    }


def _stated_time(written: pl.Expr, time_format: str | None) -> pl.Expr:
    """A layer's time as it writes it (RFC 3339 where it names no format), in UTC."""
    return written.str.to_uppercase().str.to_datetime(
        time_format or runtime.CRI_TIME, time_unit="us", time_zone="UTC", strict=False
    )


def own_lines(frame: pl.DataFrame, wrapper: Wrapper) -> pl.DataFrame:
    """``frame`` with the lines a collector logs of its own among what it collects
    (:attr:`Wrapper.own`: Fluentd's ``[warn]:`` lines on the stdout it prints records to)
    read: each an entry of its own, at the time and level it states, from
    :attr:`Wrapper.program`, and ``own``: no layer is looked for inside it. Its indented
    lines (a backtrace) are its own too, and continue the line above as they are."""
    field = pl.col("_own").struct.field
    free = ~pl.col("_marker") & ~pl.col("marker") & ~pl.col("own")
    found = frame.with_columns(
        _own=pl.when(free).then(pl.col("text")).str.extract_groups(wrapper.own)
    )
    matched = field("prefix_ts").is_not_null()
    head = matched & field("indent").is_null()
    level = field("level").replace_strict(SEVERITY_NAMES, default=None, return_dtype=pl.String)
    stated = _stated_time(field("prefix_ts"), wrapper.time_format)
    return found.with_columns(
        text=pl.when(head).then(field("text")).otherwise(pl.col("text")),
        # nearer the program than an outer layer's (a runtime's time of the write)
        prefix_ts=pl.when(head).then(pl.coalesce(stated, "prefix_ts")).otherwise("prefix_ts"),
        wrap_level=pl.when(head).then(pl.coalesce(level, "wrap_level")).otherwise("wrap_level"),
        container=pl.when(head).then(pl.lit(wrapper.program)).otherwise("container"),
        entry=pl.col("entry") | head,
        own=pl.col("own") | matched,
    ).drop("_own")


def own_events(
    origin: pl.Expr, record: pl.Expr, stated: pl.Expr, updates: dict[str, pl.Expr], program: str
) -> dict[str, pl.Expr]:
    """``updates`` for the events a collector emits of its own log among the records it
    prints (Fluentd's, tagged ``fluent.warn``: :data:`FLUENT_OWN_TAG`): the record's
    ``message`` is the line, at the level the tag names, from ``program``, read whole as
    its own log lines are (:func:`own_lines`), at the time the line states (``stated``),
    nearer the event than an outer layer's."""
    level = origin.str.extract(FLUENT_OWN_TAG, 1)
    is_own = level.is_not_null()
    message = pl.when(is_own).then(record).str.json_path_match("$.message")
    return {
        "text": pl.when(is_own)
        .then(pl.coalesce(message, record))
        .otherwise(updates.get("text", pl.col("text"))),
        "wrap_level": pl.when(is_own)
        .then(level.replace_strict(SEVERITY_NAMES, default=None, return_dtype=pl.String))
        .otherwise(updates.get("wrap_level", pl.col("wrap_level"))),
        "container": pl.when(is_own)
        .then(pl.lit(program))
        .otherwise(updates.get("container", pl.col("container"))),
        "prefix_ts": pl.when(is_own)
        .then(pl.coalesce(stated, pl.col("prefix_ts")))
        .otherwise(updates["prefix_ts"]),
        "entry": pl.col("entry") | is_own,
        "own": pl.col("own") | is_own,
    }


def _strip_runtime(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """A runtime prefix, stripped by :func:`parsers.runtime.strip` on the lines that are
    not markers; the wrapper columns ride along (partial lines take their first line's)."""
    inner = frame.drop("text", "prefix_ts", "stream", "host", "container")
    stripped = runtime.strip(frame.select("line", "end_line", "text", "path").lazy(), name).collect(
        engine="in-memory"
    )
    outer = frame.select("line", "prefix_ts", "stream", "host", "container").rename(
        {c: f"_o_{c}" for c in ("prefix_ts", "stream", "host", "container")}
    )
    joined = stripped.join(inner.drop("end_line", "path"), on="line", how="left").join(
        outer, on="line", how="left"
    )
    return joined.with_columns(
        prefix_ts=pl.coalesce("prefix_ts", "_o_prefix_ts"),
        stream=pl.coalesce("stream", "_o_stream"),
        host=pl.coalesce("host", "_o_host"),
        container=pl.coalesce("container", "_o_container"),
    ).select(frame.columns)

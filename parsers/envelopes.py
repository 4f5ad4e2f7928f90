r"""Envelopes: the JSON records log collectors and log stores write around a program's line.

A kube-proxy line that went through Fluent Bit reaches a reviewer as
``{"time":"...","stream":"stderr","log":"E0314 18:00:01.123456 ...","kubernetes":{...}}``;
exported from Cloud Logging it is a ``textPayload`` among a ``LogEntry``'s fields, from
Loki a ``line`` beside its ``labels``. Each collector's record is declared here as data:
the JSON paths (polars' ``json_path_match`` syntax) that hold the program's line, its
time, the node, pod, container and the pod's namespace, the stream and a level, and the
marks that tell the
record from a program's own JSON (go-json's ``msg``/``message`` lines are not wrapped in
anything). The first path that is present wins.

==================  =====================================================================
``fluent``          Fluent Bit and Fluentd: ``log``, ``kubernetes.{host,pod_name,
                    container_name,namespace_name}``, ``stream``,
                    ``time``/``date``/``@timestamp``; a ``_p`` of ``P`` (the CRI
                    parser's partial line) is joined to the next
``fluent-cri``      the same through a CRI parser that names the line ``message``, the
                    flag ``logtag`` (Fluentd's ``cri`` parser, Fluent Bit's classic one)
``vector``          Vector's ``kubernetes_logs`` and ``file`` sources: ``message``,
                    ``kubernetes.{pod_node_name,pod_name,container_name,pod_namespace}``,
                    ``timestamp``
``ecs``             Filebeat, Elastic Agent and Logstash documents: ``message``,
                    ``@timestamp``, ``kubernetes.{node,pod,container}.name``, ``host``,
                    ``log.level``; ``ecs-stored``: as the ``_source`` of a stored document
``loki``            ``logcli query --output=jsonl``: ``line``, ``timestamp``, ``labels``
``stern``           ``stern --output json``: ``message``, ``nodeName``, ``namespace``,
                    ``podName``, ``containerName``
``cloud-logging``   Google Cloud Logging ``LogEntry`` (``gcloud logging read --format=json``):
                    ``textPayload`` or ``jsonPayload``, ``resource.labels``, ``severity``
                    (of a JSON payload only: every stderr text line is ``ERROR``)
``cloudwatch``      ``aws logs filter-log-events`` / ``get-log-events``: ``message``,
                    ``timestamp`` (milliseconds), ``logStreamName``
``cloudwatch-       CloudWatch Logs Insights results as the console downloads them (JSON):
insights``          ``@message``, ``@timestamp`` (UTC without a zone), ``@logStream``
``splunk``          Splunk search results as JSON: ``_raw``, ``_time``, ``host``,
                    ``source``; ``splunk-export``: inside ``result`` (an export's lines)
``azure-monitor``   Container insights' ``ContainerLogV2``/``ContainerLog`` rows:
                    ``LogMessage``/``LogEntry``, ``TimeGenerated``, ``Computer``
``gelf``            GELF (Docker's ``gelf`` driver): ``short_message``, ``host``,
                    ``timestamp`` (seconds), ``_container_name`` (dockershim's
                    ``k8s_<container>_<pod>_...``); its ``level`` is the stream's, not read
``graylog``         a Graylog search response's ``message`` documents
``datadog``         a Datadog Logs API search response: ``attributes.message``, ``host``,
                    pod and container in ``tags`` (``pod_name:...``)
``otlp``            the OpenTelemetry Collector's OTLP JSON (its ``file`` exporter): a
                    batch a line, each log record a row (:mod:`parsers.otlp`): the
                    ``body``, ``timeUnixNano``, the resource's ``k8s.node.name``,
                    ``k8s.pod.name``, ``k8s.container.name``, ``log.iostream``; its
                    severity is a parser's in the collector, so the program's
``csv-export``      a log store's CSV export (:mod:`parsers.csv_export`): Kibana's
                    "Generate CSV", Logs Insights' and Grafana's "Download CSV", Splunk's
                    and Datadog's; ``message``/``@message``/``_raw``/``Line``...,
                    ``@timestamp``/``_time``/``Time``/``Date`` (where no zone is
                    written, a wall clock in the zone of the browser that asked for the
                    export, settled by the loader; Grafana's ``tsNs`` first),
                    ``kubernetes.*.name``, ``host``, ``@logStream``, else Grafana's
                    ``labels`` (:func:`label_value`)
``journald-json``   ``journalctl -o json`` (``json-pretty`` and ``json-seq`` too) and
                    Fluent Bit's ``systemd`` input: ``MESSAGE`` (an array of byte values
                    where it is no UTF-8), ``__REALTIME_TIMESTAMP`` (epoch microseconds;
                    Fluent Bit's ``date``), ``_HOSTNAME``, ``SYSLOG_IDENTIFIER``, else
                    ``_COMM``, else the ``_SYSTEMD_UNIT``'s program, ``_PID``, and
                    ``PRIORITY``: stated at 0 to 4, at 5 to 7 a default (a service's
                    stdout) that a level the line states beats; each record an entry
==================  =====================================================================

Exports that wrap their records in a document (a ``gcloud`` array, ``{"events": [...]}``
from the AWS CLI, ``{"results": [...]}`` from Splunk) are brought to one record a line
first (:mod:`parsers.json_text`), and OTLP batches to one record a row, each on its
batch's line. A time is RFC 3339 with a zone, or epoch seconds, milliseconds,
microseconds or nanoseconds told apart by their size; one without a zone is left out,
and the program's own time is used. A collector's tag or stream name that
holds a container log's path (``kube.var.log.containers.<pod>_<ns>_<container>-<id>.log``,
a Container insights stream ``<node>-application.var.log.containers...``) names the pod,
container and node as the path would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

import polars as pl

from parsers import csv_export, json_text, layouts, otlp, runtime
from parsers.common import (
    LINE_SCHEMA,
    NAMELESS,
    numbered,
    per_file,
    stacked_samples,
    without_lone_surrogates,
)
from parsers.registry import shares_of


@dataclass(frozen=True)
class Envelope:
    """One collector's record: JSON paths for each field, the first present wins.

    ``message`` holds the program's line, a string (``log`` is also the name of an
    object in some records); where none does, ``payload`` is an object that is the line
    (a program's JSON that the store parsed). A record has one of ``marks`` besides it,
    or one of ``weak_marks`` and no level and message of its own at the top.
    ``node``, ``pod`` and ``container`` name where the line was written, ``namespace`` the
    pod's namespace; ``origin`` is a
    path or tag naming the container's log file, ``tags`` a list of ``key:value`` tags,
    both read for those where they are missing. ``level`` is the program's level where
    the record keeps one apart (never the stream's: a line on stderr is no error), and
    with ``level_with`` only where the record also holds that path. ``partial`` holds
    ``P`` on a line the runtime split."""

    name: str
    message: tuple[str, ...]
    marks: tuple[str, ...]
    weak_marks: tuple[str, ...] = ()
    time: tuple[str, ...] = ()
    node: tuple[str, ...] = ()
    pod: tuple[str, ...] = ()
    container: tuple[str, ...] = ()
    namespace: tuple[str, ...] = ()
    stream: tuple[str, ...] = ()
    level: tuple[str, ...] = ()
    level_with: tuple[str, ...] = ()
    origin: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()
    payload: tuple[str, ...] = ()
    #: A label set written as text (a Grafana CSV's ``labels``: a JSON object or Loki's
    #: ``{pod="...", container="..."}``): node, pod, container, stream, level and file
    #: path where the record names them nowhere else (:func:`label_value`).
    labels: tuple[str, ...] = ()
    #: A systemd unit (``kubelet.service``): its program names the container where
    #: nothing else does; ``pid``: the process that wrote the line; ``transport``: how the
    #: line came in (journald's ``kernel``: :data:`TRANSPORT_PROGRAMS`).
    unit: tuple[str, ...] = ()
    pid: tuple[str, ...] = ()
    transport: tuple[str, ...] = ()
    #: Each record is an entry of its own, as each line of a syslog is: a line no format
    #: claims is a record, not the continuation of the one above (journald makes every
    #: line a program writes a record; an indented one still continues).
    entries: bool = False
    #: A ``message`` may be a JSON array of byte values (journald's ``MESSAGE`` that is
    #: not UTF-8): it is read as UTF-8 text, U+FFFD for what is not.
    byte_messages: bool = False
    #: Values of ``level`` that are what the record gives a line by default, no evidence
    #: of a level (journald's ``PRIORITY`` 5 to 7, what a service's stdout gets): where
    #: the record holds one, a level the line states in one of the ``line_levels``
    #: shapes beats it. Any other value of ``level`` is stated, and beats the level
    #: words of a line no format claims (the kernel's ``INFO: task ... blocked`` at 3).
    default_levels: tuple[str, ...] = ()
    line_levels: tuple[str, ...] = ()
    #: What a ``time`` without a zone is, rather than a time to leave out: ``"UTC"``
    #: (Logs Insights' ``2023-03-14 18:00:01.123``), or ``"wall"``, a wall clock in a zone
    #: the record does not say (a UI's CSV export, written in the zone of the browser that
    #: asked for it), which the loader settles as it settles any time without a zone.
    wall_clock: str | None = None

    def within(self, key: str, name: str) -> Envelope:
        """The same record stored under ``key`` of another (``_source``, ``result``)."""
        moved = {
            f.name: tuple(f"$.{key}{path[1:]}" for path in getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("name", *_NOT_PATHS)
        }
        return replace(self, name=name, **moved)


#: Fields of :class:`Envelope` that are no JSON paths.
_NOT_PATHS = ("entries", "byte_messages", "default_levels", "line_levels", "wall_clock")

#: Programs that journald's ``_TRANSPORT`` names where a record names none (the
#: kernel's lines carry no ``SYSLOG_IDENTIFIER`` of their own in every version).
TRANSPORT_PROGRAMS = {"kernel": "kernel"}

#: The shapes in which a service states its own level in a line it writes to stdout:
#: klog's letter, logfmt's and slog's ``level=``, a JSON logger's first ``level`` or
#: ``severity``, or a level word among the first words (Go's log date, then slog's level;
#: pgbouncer's ``... [1234] WARNING ...``; Python's ``ERROR:root:...``).
STDOUT_LEVELS = (
    r"^(?P<level>[IWEF])[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    r"(?:^|\s)level=(?P<level>[A-Za-z]+)\b",
    r'^\{.*?"(?:level|severity)"\s*:\s*"(?P<level>[A-Za-z]+)"',
    r"^(?:\S+\s+){0,5}\[?(?P<level>DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|PANIC)"
    r"\]?(?::|\s|$)",
)

#: Label names Loki and Prometheus scrape configs give the node, the pod, the container
#: and the pod's namespace (the OpenTelemetry Collector's Loki exporter and Loki's OTLP
#: endpoint write ``k8s_namespace_name``).
NODE_LABELS = ("node_name", "nodename", "node", "host", "hostname")
POD_LABELS = ("pod", "pod_name")
CONTAINER_LABELS = ("container", "container_name")
NAMESPACE_LABELS = ("namespace", "namespace_name", "k8s_namespace_name", "kubernetes_namespace")


#: Labels that name a container's program where no container label does: the
#: ``app`` a scrape config copies from the pod's, and the ``job`` Promtail's and the Agent's
#: Kubernetes configs write as ``<namespace>/<app>``.
APP_LABELS = ("app",)
JOB_APP = r"^[a-z0-9][a-z0-9.-]*/([a-z0-9][a-z0-9.-]*)$"


def label_value(labels: pl.Expr, names: Iterable[str]) -> pl.Expr:
    """The value of the first of the label ``names`` in a label set as Loki writes it
    (``{container="kube-proxy", pod="kube-proxy-x7k2p"}``) or as a JSON object of text
    values (Grafana's ``{"container":"kube-proxy","pod":"kube-proxy-x7k2p"}``), its
    escapes kept.

    >>> pl.select(label_value(pl.lit('{node="n-1", pod="p"}'), ["node_name", "node"])).item()
    'n-1'
    >>> pl.select(label_value(pl.lit('{"app":"a", "pod": "p"}'), ["pod"])).item()
    'p'
    """
    return pl.coalesce(
        [labels.str.extract(rf'[{{ ,]"?{name}"?\s*[=:]\s*"((?:[^"\\]|\\.)*)"', 1) for name in names]
    )


def _from_labels(labels: pl.Expr) -> dict[str, pl.Expr]:
    """What a record's label set (:attr:`Envelope.labels`) says, under what the record
    says on its own: the role columns of :func:`_said`."""
    job_app = label_value(labels, ["job"]).str.extract(JOB_APP, 1)
    return {
        "_node": pl.coalesce("_node", label_value(labels, NODE_LABELS)),
        "_pod": pl.coalesce("_pod", label_value(labels, POD_LABELS)),
        "_container": pl.coalesce(
            "_container",
            label_value(labels, CONTAINER_LABELS),
            label_value(labels, APP_LABELS),
            job_app,
        ),
        "_stream": pl.coalesce("_stream", label_value(labels, ["stream"])),
        "_level": pl.coalesce("_level", label_value(labels, ["level", "detected_level"])),
        "_origin": pl.coalesce("_origin", label_value(labels, ["filename"])),
    }


_ECS = Envelope(
    "ecs",
    message=("$.message",),
    marks=(
        "$.agent.type",
        "$.kubernetes.pod.name",
        "$['kubernetes.pod.name']",
        "$.log.file.path",
    ),
    # the ECS logging libraries write it in a program's own lines too
    weak_marks=("$.ecs.version",),
    time=("$['@timestamp']",),
    node=(
        "$.kubernetes.node.name",
        "$['kubernetes.node.name']",
        "$.host.hostname",
        "$.host.name",
        "$.host",
    ),
    pod=("$.kubernetes.pod.name", "$['kubernetes.pod.name']"),
    container=(
        "$.kubernetes.container.name",
        "$['kubernetes.container.name']",
        "$.container.name",
    ),
    namespace=("$.kubernetes.namespace", "$['kubernetes.namespace']"),
    stream=("$.stream",),
    level=("$.log.level", "$['log.level']", "$.level"),
    origin=("$.log.file.path", "$.path"),
)
_SPLUNK = Envelope(
    "splunk",
    message=("$._raw",),
    marks=("$._time",),
    time=("$._time",),
    node=("$.host",),
    origin=("$.source",),
)

_FLUENT = Envelope(
    "fluent",
    message=("$.log",),
    marks=("$.kubernetes", "$._p", "$['k8s.pod.name']", "$.container_id"),
    weak_marks=("$.stream", "$.date"),
    time=("$.time", "$.date", "$['@timestamp']", "$.timestamp"),
    node=("$.kubernetes.host", "$['k8s.node.name']"),
    pod=("$.kubernetes.pod_name", "$['k8s.pod.name']"),
    # Docker's fluentd driver and ECS FireLens: the container's name and its stream
    container=("$.kubernetes.container_name", "$['k8s.container.name']", "$.container_name"),
    namespace=("$.kubernetes.namespace_name", "$['k8s.namespace.name']"),
    stream=("$.stream", "$.source"),
    level=("$.level", "$.severity"),
    partial=("$._p",),
)

#: A record of a CSV export (:mod:`parsers.csv_export`), its columns as the log stores
#: name them: Kibana's ECS fields, Logs Insights', Grafana's Loki frame, Splunk's and
#: Datadog's; a time without a zone is a wall clock: Kibana and Grafana write the zone
#: of the browser that asked for the export (Kibana's ``dateFormat:tz``), not UTC. Grafana's
#: ``tsNs`` beside its ``Time`` is the line's epoch nanoseconds, and comes first.
_CSV_EXPORT = Envelope(
    "csv-export",
    message=(
        "$.message",
        "$['@message']",
        "$._raw",
        "$.Line",
        "$.line",
        "$.log",
        "$.Message",
        "$.Content",
        "$.body",
    ),
    marks=("$",),
    time=(
        "$.tsNs",
        "$['@timestamp']",
        "$._time",
        "$.timestamp",
        "$.Time",
        "$.time",
        "$.Date",
        "$.date",
    ),
    node=(
        "$['kubernetes.node.name']",
        "$['kubernetes.host']",
        "$['host.name']",
        "$['host.hostname']",
        "$.host",
        "$.Host",
        "$.hostname",
        "$.node",
    ),
    pod=("$['kubernetes.pod.name']", "$['kubernetes.pod_name']", "$.pod", "$.pod_name"),
    container=(
        "$['kubernetes.container.name']",
        "$['kubernetes.container_name']",
        "$['container.name']",
        "$.container",
        "$.container_name",
    ),
    namespace=(
        "$['kubernetes.namespace']",
        "$['kubernetes.namespace_name']",
        "$['k8s.namespace.name']",
        "$.namespace",
        "$.namespace_name",
    ),
    stream=("$.stream",),
    level=("$['log.level']", "$.level", "$.severity"),
    origin=("$['@logStream']", "$['log.file.path']", "$.source"),
    labels=("$.labels", "$.Labels"),
    wall_clock="wall",
).within(csv_export.KEY, "csv-export")

ENVELOPES: dict[str, Envelope] = {
    e.name: e
    for e in (
        _FLUENT,
        replace(
            _FLUENT,
            name="fluent-cri",
            message=("$.message",),
            marks=("$.logtag",),
            weak_marks=(),
            level=(),
            partial=("$.logtag",),
        ),
        Envelope(
            "vector",
            message=("$.message",),
            marks=("$.source_type", "$.kubernetes.pod_node_name", "$.kubernetes.pod_namespace"),
            time=("$.timestamp",),
            node=("$.kubernetes.pod_node_name", "$.host"),
            pod=("$.kubernetes.pod_name",),
            container=("$.kubernetes.container_name",),
            namespace=("$.kubernetes.pod_namespace",),
            stream=("$.stream",),
            origin=("$.file",),
        ),
        _ECS,
        _ECS.within("_source", "ecs-stored"),
        Envelope(
            "loki",
            message=("$.line",),
            marks=("$.labels",),
            time=("$.timestamp",),
            node=tuple(f"$.labels.{label}" for label in NODE_LABELS),
            pod=tuple(f"$.labels.{label}" for label in POD_LABELS),
            container=tuple(f"$.labels.{label}" for label in CONTAINER_LABELS),
            namespace=tuple(f"$.labels.{label}" for label in NAMESPACE_LABELS),
            stream=("$.labels.stream",),
            level=("$.labels.level", "$.labels.detected_level"),
            origin=("$.labels.filename",),
        ),
        # stern --output json: the line as the container wrote it (with --timestamps,
        # the runtime's time before it), its pod, container and node
        Envelope(
            "stern",
            message=("$.message",),
            marks=("$.podName", "$.containerName"),
            node=("$.nodeName",),
            pod=("$.podName",),
            container=("$.containerName",),
            namespace=("$.namespace",),
        ),
        Envelope(
            "cloud-logging",
            message=(
                "$.textPayload",
                "$.jsonPayload.message",
                "$.jsonPayload.log",
                "$.jsonPayload.MESSAGE",
            ),
            marks=("$.logName", "$.insertId"),
            time=("$.timestamp", "$.receiveTimestamp"),
            node=(
                "$.labels['compute.googleapis.com/resource_name']",
                "$.resource.labels.node_name",
                "$.jsonPayload._HOSTNAME",
            ),
            pod=("$.resource.labels.pod_name",),
            container=("$.resource.labels.container_name",),
            namespace=("$.resource.labels.namespace_name",),
            # every line a container writes to stderr is ERROR; a JSON line's is its own
            level=("$.severity",),
            level_with=("$.jsonPayload",),
            payload=("$.jsonPayload",),
        ),
        Envelope(
            "cloudwatch",
            message=("$.message",),
            marks=("$.logStreamName", "$.ingestionTime"),
            time=("$.timestamp",),
            origin=("$.logStreamName",),
        ),
        Envelope(
            "cloudwatch-insights",
            message=("$['@message']",),
            marks=("$['@logStream']", "$['@log']", "$['@ptr']"),
            time=("$['@timestamp']",),
            node=("$['kubernetes.host']",),
            pod=("$['kubernetes.pod_name']",),
            container=("$['kubernetes.container_name']",),
            namespace=("$['kubernetes.namespace_name']",),
            origin=("$['@logStream']",),
            wall_clock="UTC",
        ),
        _SPLUNK,
        _SPLUNK.within("result", "splunk-export"),
        Envelope(
            "azure-monitor",
            message=("$.LogMessage", "$.LogEntry"),
            marks=("$.TimeGenerated",),
            time=("$.TimeGenerated",),
            node=("$.Computer",),
            pod=("$.PodName",),
            container=("$.ContainerName",),
            namespace=("$.PodNamespace",),
            stream=("$.LogSource", "$.LogEntrySource"),
        ),
        Envelope(
            "gelf",
            message=("$.full_message", "$.short_message"),
            marks=("$.version",),
            time=("$.timestamp",),
            node=("$.host",),
            container=("$._container_name",),
        ),
        Envelope(
            "graylog",
            message=("$.message.full_message", "$.message.message"),
            marks=("$.message.gl2_message_id", "$.message.streams"),
            time=("$.message.timestamp",),
            node=("$.message.source",),
            container=("$.message.container_name",),
        ),
        Envelope(
            "datadog",
            message=("$.attributes.message",),
            marks=("$.attributes.service", "$.attributes.tags"),
            time=("$.attributes.timestamp",),
            node=("$.attributes.host",),
            tags=("$.attributes.tags",),
        ),
        # a log record as :func:`parsers.otlp.records` flattens it; no level of the
        # stream's: a severity is set by a parser in the collector, from the line
        Envelope(
            "otlp",
            message=("$.logRecord.body",),
            marks=("$.logRecord",),
            time=("$.logRecord.timeUnixNano", "$.logRecord.observedTimeUnixNano"),
            node=("$.resource['k8s.node.name']", "$.resource['host.name']"),
            pod=("$.resource['k8s.pod.name']",),
            container=("$.resource['k8s.container.name']",),
            namespace=("$.resource['k8s.namespace.name']",),
            stream=("$.logRecord.attributes['log.iostream']",),
            level=("$.logRecord.severity",),
            origin=("$.logRecord.attributes['log.file.path']",),
            partial=("$.logRecord.attributes.logtag",),
        ),
        # journalctl -o json (json-pretty, json-seq: one record a line first), and Fluent
        # Bit's systemd input (no __REALTIME_TIMESTAMP; its time a ``date``)
        Envelope(
            "journald-json",
            message=("$.MESSAGE",),
            marks=(
                "$.__REALTIME_TIMESTAMP",
                "$._SYSTEMD_UNIT",
                "$.SYSLOG_IDENTIFIER",
                "$._TRANSPORT",
                "$._BOOT_ID",
            ),
            time=(
                "$.__REALTIME_TIMESTAMP",
                "$._SOURCE_REALTIME_TIMESTAMP",
                "$.date",
                "$['@timestamp']",
                "$.timestamp",
            ),
            node=("$._HOSTNAME",),
            container=("$.SYSLOG_IDENTIFIER", "$._COMM"),
            unit=("$._SYSTEMD_UNIT",),
            pid=("$._PID", "$.SYSLOG_PID"),
            transport=("$._TRANSPORT",),
            level=("$.PRIORITY",),
            entries=True,
            byte_messages=True,
            default_levels=("5", "6", "7"),
            line_levels=STDOUT_LEVELS,
        ),
        _CSV_EXPORT,
    )
}

#: Members of an export document that hold its records (``{"events": [...]}``), or an
#: object that holds them (Elasticsearch's ``{"hits": {"hits": [...]}}``).
LIST_KEYS = ("events", "entries", "results", "items", "logs", "messages", "data", "hits")

#: Level words and syslog severities as our levels (Cloud Logging's ``DEFAULT``: none).
LEVELS = {
    "0": "critical",
    "1": "critical",
    "2": "critical",
    "3": "error",
    "4": "warning",
    "5": "info",
    "6": "info",
    "7": "debug",
    "emergency": "critical",
    "emerg": "critical",
    "alert": "critical",
    "critical": "critical",
    "crit": "critical",
    "fatal": "critical",
    "panic": "critical",
    "error": "error",
    "err": "error",
    "warning": "warning",
    "warn": "warning",
    "notice": "info",
    "info": "info",
    "informational": "info",
    "debug": "debug",
    "trace": "debug",
}


#: A program's own JSON record: a level and a message at the top (zap, slog, logrus,
#: logback's encoder), which a record marked only weakly must not look like.
_OWN_JSON = ("$.level", "$.severity", "$.lvl", "$['log.level']"), ("$.msg", "$.message")


def carries(envelope: Envelope, text: pl.Expr) -> pl.Expr:
    """Whether each line of ``text`` is ``envelope``'s record: a JSON object with a line
    where the envelope keeps it and one of its marks; a record with one of its weak marks
    only (a ``stream``, a ``date``) is no program's own JSON record besides."""
    text = pl.when(text.str.strip_chars_start().str.starts_with("{")).then(text)

    def has(paths) -> pl.Expr:
        return pl.any_horizontal([text.str.json_path_match(p).is_not_null() for p in paths])

    marked = has(envelope.marks)
    if envelope.weak_marks:
        own = has(_OWN_JSON[0]) & has(_OWN_JSON[1])
        marked = marked | (has(envelope.weak_marks) & ~own)
    return (_line(envelope, text).is_not_null() & marked).fill_null(False)


def _line(envelope: Envelope, text: pl.Expr) -> pl.Expr:
    """The program's line in each record, path by path: the first ``message`` path that
    holds a string or a number (an object has members, ``$.path.*``), else the
    ``payload`` object as JSON."""
    values = [
        pl.when(text.str.json_path_match(f"{path}.*").is_null()).then(
            text.str.json_path_match(path)
        )
        for path in envelope.message
    ]
    if envelope.byte_messages:
        values += [
            pl.when(text.str.json_path_match(path).str.contains(BYTE_VALUES)).then(
                text.str.json_path_match(path)
            )
            for path in envelope.message
        ]
    values += [text.str.json_path_match(path) for path in envelope.payload]
    return pl.coalesce(values)


#: A JSON array of byte values, as journald writes a ``MESSAGE`` that is not UTF-8.
BYTE_VALUES = r"^\[\s*[0-9]{1,3}(?:\s*,\s*[0-9]{1,3})*\s*\]$"


def with_text_messages(frame: pl.DataFrame, envelope: Envelope) -> pl.DataFrame:
    """``frame`` with each record whose line is a JSON array of byte values (journald's
    ``MESSAGE`` that is not UTF-8) rewritten with that line as text, U+FFFD for what is no
    UTF-8, so that its fields read as every other record's. Such records are few: only
    they are read in Python."""
    keys = "|".join(re.escape(_keys(path)[-1]) for path in envelope.message)
    as_bytes = frame.select(
        pl.col("text").str.contains(rf'"(?:{keys})"\s*:\s*\[').fill_null(False)
    ).to_series()
    if not as_bytes.any():
        return frame
    rows = as_bytes.arg_true()
    texts = [_bytes_as_text(record, envelope.message) for record in frame["text"].gather(rows)]
    return frame.with_columns(text=frame["text"].scatter(rows, texts))


def _bytes_as_text(record: str, paths: Iterable[str]) -> str:
    """One JSON ``record`` with the byte arrays at ``paths`` as text
    (:func:`with_text_messages`)."""
    try:
        document = json.loads(record)
    except ValueError:
        return record
    for path in paths:
        *inner, last = _keys(path)
        node = document
        for key in inner:
            node = node.get(key) if isinstance(node, dict) else None
        value = node.get(last) if isinstance(node, dict) else None
        if isinstance(value, list) and all(isinstance(v, int) and 0 <= v < 256 for v in value):
            node[last] = bytes(value).decode("utf-8", errors="replace")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _raw(text: pl.Expr, paths: Iterable[str]) -> pl.Expr:
    """The first of ``paths`` present, as JSON text where it is an object or a list."""
    return pl.coalesce(
        [text.str.json_path_match(path) for path in paths] or [pl.lit(None, pl.String)]
    )


def _name(text: pl.Expr, paths: Iterable[str]) -> pl.Expr:
    """The first of ``paths`` that holds a plain value (not an object or a list), path
    by path."""
    values = [text.str.json_path_match(path).str.strip_chars() for path in paths]
    plain = [pl.when(~v.str.contains(r"^[\[{]|^$")).then(v) for v in values]
    return pl.coalesce(plain or [pl.lit(None, pl.String)])


def items_sample(sample: list[str]) -> list[str]:
    """``sample`` as one JSON record a line where it is an export document (an array, a
    pretty-printed object, ``{"events": [...]}``; a record the sample cuts off is left
    out), holds OTLP batches (:func:`parsers.otlp.records`) or is a CSV export
    (:mod:`parsers.csv_export`); other samples as they are."""
    head = next((s.strip() for s in sample if s.strip()), "")
    if not head.startswith(("[", "{")):
        return csv_export.records_sample(sample, CSV_LINE_KEYS)
    if json_text.is_pasted(sample):
        return otlp.records_sample(json_text.compact_sample(sample, LIST_KEYS))
    sample = otlp.records_sample(sample)
    if not any('":[' in s or '": [' in s for s in sample):
        return sample
    frame = numbered(sample).with_columns(
        pl.lit(None, dtype).alias(name)
        for name, dtype in LINE_SCHEMA.items()
        if name not in ("line", "end_line", "text", "path")
    )
    # a line that is some collector's record stays whole, lists of its own and all
    is_record = frame.select(
        pl.any_horizontal([carries(e, pl.col("text")) for e in ENVELOPES.values()])
    ).to_series()
    documents = json_text.compact_lines(frame.filter(~is_record).lazy(), LIST_KEYS).collect()
    together = pl.concat([frame.filter(is_record), documents.select(frame.columns)])
    return together.sort("line", maintain_order=True)["text"].to_list()


def detect(sample: list[str]) -> tuple[str | None, float]:
    """The envelope most lines of ``sample`` (one record a line) are, and the share.

    >>> detect(['{"log":"I0314 18:00:01.1 1 a.go:1] up","kubernetes":{"host":"n1"}}'])
    ('fluent', 1.0)
    """
    records = otlp.records_sample(sample)  # an OTLP batch: each of its records
    shares = shares_of(records, {name: carries(e, pl.col("line")) for name, e in ENVELOPES.items()})
    return _best(shares)


def detect_each(samples: list[list[str]]) -> list[tuple[str | None, float]]:
    """:func:`detect` of each of several files' samples, in one query for them all; only
    samples that begin like JSON are asked."""
    asked = [k for k, s in enumerate(samples) if _json_like(s)]
    found: list[tuple[str | None, float]] = [(None, 0.0)] * len(samples)
    if not asked:
        return found
    items = [items_sample(samples[k]) for k in asked]
    tests = {name: carries(e, pl.col("line")).mean() for name, e in ENVELOPES.items()}
    for k, each in zip(asked, per_file(stacked_samples(items), len(items), **tests), strict=True):
        found[k] = _best(each or {})
    return found


def _json_like(sample: list[str]) -> bool:
    """Whether any of the first lines begins like JSON (a collector may write a banner
    first) and the sample names a key some envelope keeps a line under, or the sample is
    a CSV export: a file of other JSON (a CI job, an event list) is not looked into."""
    if csv_export.header(sample, CSV_LINE_KEYS) is not None:
        return True
    if not any(s.lstrip().startswith(("{", "[")) for s in sample[:20]):
        return False
    text = "\n".join(sample)
    return any(key in text for key in LINE_KEYS)


def _best(shares: dict[str, float]) -> tuple[str | None, float]:
    best, best_share = None, 0.0
    for name, share in shares.items():
        if (share or 0.0) > best_share:
            best, best_share = name, float(share)
    return (best, best_share) if best_share >= runtime.MIN_SHARE else (None, best_share)


def unwrap_documents(lines: pl.DataFrame, name: str) -> pl.DataFrame:
    """``lines`` (with the line columns) as one record a line where they are an export
    document (:func:`items_sample`): pretty-printed, every line is the document's; as JSON
    lines, only a line that is no record of the envelope ``name`` (a record may hold a
    list of its own under such a key). An OTLP batch gives a row a record, all on its
    line; a CSV export a row a record, with ``marker`` and ``unreadable``
    (:func:`parsers.csv_export.records`)."""
    if csv_export.header(lines["text"].head(5).to_list(), CSV_LINE_KEYS) is not None:
        return csv_export.records(lines, CSV_LINE_KEYS)
    if json_text.is_pasted(lines["text"].head(50).to_list()):
        return otlp.records(json_text.compact_lines(lines.lazy(), LIST_KEYS).collect())
    lines = otlp.records(lines)
    is_record = lines.select(carries(ENVELOPES[name], pl.col("text"))).to_series()
    documents = json_text.compact_lines(lines.filter(~is_record).lazy(), LIST_KEYS).collect()
    together = pl.concat([lines.filter(is_record), documents.select(lines.columns)])
    return together.sort("line", maintain_order=True)


#: Where a big file of records one a line may be cut: before a record, unless one of
#: its values begins with a tab or a space, as a klog ``err=<`` block's lines and a Go
#: panic's do (each a record of its own, to be joined to the one above).
RECORD_START = r"^\s*\{"
CONTINUES = r'":\s*"(?:\\t| |goroutine [0-9]|panic: )'
#: A record that holds the first piece of a line the runtime split (``_p`` or
#: ``logtag`` ``P``): no cut falls after it.
SPLIT = r'"(?:_p|logtag)"\s*:\s*"P"'

#: Envelopes whose lines are batches of records (:mod:`parsers.otlp`): a big file is cut
#: between batches, before one that holds no line a record above continues.
BATCHED = ("otlp",)

#: What an envelope's record says, each the first of the envelope's paths present.
ROLES = (
    "time",
    "node",
    "pod",
    "container",
    "namespace",
    "stream",
    "level",
    "level_with",
    "origin",
    "tags",
    "partial",
    "unit",
    "pid",
    "transport",
    "labels",
)
#: Runtimes split a line longer than this (containerd's and dockerd's 16 KiB); a ``P``
#: record longer than that is one a collector joined already (Fluent Bit keeps the
#: first piece's ``_p``).
SPLIT_BYTES = 16 << 10
#: A container's name as dockershim made it: ``k8s_<container>_<pod>_<namespace>_<uid>_<n>``.
DOCKERSHIM_NAME = r"^k8s_(?P<c>[^_]+)_(?P<pod>[^_]+)_(?P<ns>[^_]+)_[^_]+_[0-9]+$"


def strip(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """The program's line out of each of ``frame``'s records of the envelope ``name``,
    with what the record says: ``prefix_ts``, ``host`` (the node, else the pod),
    ``container``, ``namespace`` (the pod's, where it is a namespace's name:
    :data:`NAMESPACE_NAME`), ``stream``, ``wrap_level``, and what its origin and tags name. Where
    an outer layer named them already, its names are kept, but for the node the record
    names (an outer tag or path names the pod at most) and the record's own time (nearer
    the program). Lines that are not such a record stay as they are, each an entry of
    its own; runs of split lines are joined."""
    envelope = ENVELOPES[name]
    frame = frame.with_columns(text=without_lone_surrogates(pl.col("text")))
    if envelope.byte_messages:
        frame = with_text_messages(frame, envelope)
    said = frame.with_columns(_said=_said(frame, envelope)).unnest("_said")
    if envelope.labels:
        said = said.with_columns(**_from_labels(pl.col("_labels")))
    said = said.with_columns(
        *[_known(f"_{role}") for role in ROLES if role not in ("time", "level_with", "origin")],
        _origin=log_path_of_tag(_known("_origin")),
        _shim=pl.col("_container").str.extract_groups(DOCKERSHIM_NAME),
    )
    origin = _origin_hints(said)
    shim = pl.col("_shim").struct.field
    level = pl.col("_level").str.to_lowercase().replace_strict(LEVELS, default=None)
    if envelope.level_with:
        level = pl.when(pl.col("_level_with").is_not_null()).then(level)
    matched = pl.col("_line").is_not_null()
    line = pl.col("_line").str.strip_suffix("\n").str.strip_suffix("\r")
    stream = pl.col("_stream").str.to_lowercase()
    wrap_level, stated_level = _levels(envelope, level, line)
    zoned = epoch_or_rfc3339(pl.col("_time"))
    wall = pl.lit(None, pl.Datetime("us"))
    if envelope.wall_clock:
        written = (pl.col("_time").str.to_datetime(f, time_unit="us", strict=False) for f in WALL)
        wall = pl.when(zoned.is_null()).then(pl.coalesce(written))
    nothing = pl.lit(None, pl.Datetime("us"))
    utc = (wall if envelope.wall_clock == "UTC" else nothing).dt.replace_time_zone("UTC")
    local = wall if envelope.wall_clock == "wall" else nothing
    stripped = said.with_columns(
        text=pl.when(matched).then(line).otherwise("text"),
        prefix_ts=pl.coalesce(zoned, utc, "prefix_ts"),
        wrap_ts=pl.coalesce(local, "wrap_ts"),
        wrap_year_missing=pl.when(local.is_not_null())
        .then(pl.lit(False))
        .otherwise("wrap_year_missing"),
        host=pl.coalesce("_node", "host", "_pod", shim("pod"), _tag("pod_name"), origin["host"]),
        container=pl.coalesce(
            "container",
            shim("c"),
            _program_of_container(said),
            "_container",
            _tag("kube_container_name"),
            origin["container"],
            program_of_unit(pl.col("_unit")),
            pl.col("_transport").replace_strict(TRANSPORT_PROGRAMS, default=None),
        ),
        namespace=pl.coalesce(
            "namespace",
            namespace_name(
                pl.coalesce("_namespace", shim("ns"), _tag("kube_namespace"), origin["namespace"])
            ),
        ),
        stream=pl.coalesce("stream", pl.when(stream.is_in(["stdout", "stderr"])).then(stream)),
        wrap_level=pl.coalesce("wrap_level", wrap_level),
        stated_level=pl.coalesce("stated_level", stated_level),
        pid=pl.coalesce("pid", "_pid"),
        # a line that is no record (broken, cut, another program's) stands alone, and
        # so does each record of an envelope whose records are entries
        entry=pl.col("entry") | ~matched | pl.lit(envelope.entries),
        partial=((pl.col("_partial") == "P") & (line.str.len_bytes() <= SPLIT_BYTES)).fill_null(
            False
        ),
    )
    if bool(stripped["partial"].any()):
        stripped = runtime.join_partials(stripped.lazy()).collect()
    return stripped.select(frame.columns)


#: A namespace's name as Kubernetes allows it (an RFC 1123 label): nothing else a record
#: holds where a namespace is looked for is taken for one.
NAMESPACE_NAME = r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$"


def namespace_name(value: pl.Expr) -> pl.Expr:
    """``value`` where it is a namespace's name (:data:`NAMESPACE_NAME`), else null.

    >>> pl.select(namespace_name(pl.Series(["payments", "<b>x</b>", ""]))).to_series().to_list()
    ['payments', None, None]
    """
    return pl.when(value.str.contains(NAMESPACE_NAME)).then(value)


#: How a store writes a time without naming the zone (:attr:`Envelope.wall_clock`):
#: Logs Insights' and Grafana's, ISO 8601's, and Kibana's default ``dateFormat``
#: (``MMM D, YYYY @ HH:mm:ss.SSS``).
WALL = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%b %d, %Y @ %H:%M:%S%.f")

#: klog's letters, as :data:`STDOUT_LEVELS` read them.
_LETTERS = {"i": "info", "w": "warning", "e": "error", "f": "critical"}


def _levels(envelope: Envelope, level: pl.Expr, line: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The level each record gives its line, as ``(wrap_level, stated_level)``: a
    format's reading of the line beats either, and a stated one beats the level words of
    a line no format claims. Where the record's level is a default
    (:attr:`Envelope.default_levels`), a level the line states in a logger's shape
    (:attr:`Envelope.line_levels`) comes first, and neither is stated."""
    if not envelope.default_levels:
        return level, pl.lit(None, pl.String)
    is_default = pl.col("_level").is_in(list(envelope.default_levels))
    written = pl.coalesce(
        [
            line.str.extract(pattern, _group_index(pattern, "level"))
            .str.to_lowercase()
            .replace_strict(LEVELS | _LETTERS, default=None)
            for pattern in envelope.line_levels
        ]
        or [pl.lit(None, pl.String)]
    )
    wrap_level = pl.when(is_default).then(pl.coalesce(written, level)).otherwise(level)
    stated_level = pl.when(~is_default).then(level)
    return wrap_level, stated_level


def _group_index(pattern: str, name: str) -> int:
    """The number of the named group ``name`` in ``pattern``."""
    return re.compile(pattern).groupindex[name]


def program_of_unit(unit: pl.Expr) -> pl.Expr:
    """The program a systemd unit or snap names: ``kubelet`` for ``kubelet.service``,
    ``snap.kubelet.daemon`` and ``kubelet.daemon``.

    >>> pl.select(program_of_unit(pl.lit("snap.kubelet.daemon"))).item()
    'kubelet'
    """
    return unit.str.strip_prefix("snap.").str.replace(r"\.(?:service|daemon)$", "")


def _known(column: str) -> pl.Expr:
    """A name as given, where it is one: not empty, and not the ``None`` or ``null`` of a
    tool that wrote every value as text (``az``)."""
    value = pl.col(column).str.strip_chars()
    return pl.when(~value.is_in(["", "None", "null"])).then(value).alias(column)


def _tag(key: str) -> pl.Expr:
    """The value of ``key`` in a record's ``key:value`` tags (a JSON list as text)."""
    return pl.col("_tags").str.extract(rf'"{key}:((?:[^"\\]|\\.)*)"', 1)


def _said(frame: pl.DataFrame, envelope: Envelope) -> pl.Series:
    """A struct of what each record says: ``_line`` (null where the line is not the
    envelope's record) and ``_time``, ``_node`` ... (:data:`ROLES`), as text.

    Every field is read in one pass over the JSON (``json_decode`` of the fields the
    envelope names); where that fails (a line that is not JSON, a field of another type
    than usual), each field is looked up on its own, a line's problem costing that line.
    """
    text = pl.when(pl.col("text").str.strip_chars_start().str.starts_with("{")).then("text")
    paths = {"line": envelope.message, **{role: getattr(envelope, role) for role in ROLES}}
    try:
        if envelope.payload or envelope.tags or envelope.level_with:
            raise pl.exceptions.ComputeError("objects and lists are read path by path")
        dtype = _dtype(paths.values())
        values = {
            f"_{role}": pl.coalesce(
                [_field(pl.col("_d"), dtype, p) for p in each] or [pl.lit(None, pl.String)]
            )
            for role, each in paths.items()
        }
        said = frame.select(_d=text.str.json_decode(dtype)).select(**values)
    except pl.exceptions.PolarsError:
        raw = ("tags", "level_with", "labels")  # a list, an object or a label set, as text
        said = frame.select(
            _line=_line(envelope, text),
            **{
                f"_{role}": _raw(text, each) if role in raw else _name(text, each)
                for role, each in paths.items()
                if role != "line"
            },
        )
    return said.to_struct("_said")


_KEY = re.compile(r"\.([^.\[]+)|\['([^']+)'\]")


def _keys(path: str) -> list[str]:
    """The keys of a JSON path: ``$.a['b.c']`` is ``["a", "b.c"]``."""
    return [dotted or quoted for dotted, quoted in _KEY.findall(path)]


#: The column names a CSV export keeps a line under (:mod:`parsers.csv_export`).
CSV_LINE_KEYS = frozenset(_keys(path)[-1] for path in ENVELOPES["csv-export"].message)

#: The keys envelopes keep a line under, quoted as JSON writes them.
LINE_KEYS = {
    f'"{_keys(path)[-1]}"' for e in ENVELOPES.values() for path in (*e.message, *e.payload)
}


def _dtype(paths: Iterable[Iterable[str]]) -> pl.Struct:
    """The struct of text fields that holds every path (where a key is both a value and
    an object, as ECS' ``host``, the object)."""
    tree: dict = {}
    for each in paths:
        for path in each:
            node = tree
            *inner, last = _keys(path)
            for key in inner:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
            node.setdefault(last, None)

    def as_struct(node: dict) -> pl.Struct:
        return pl.Struct({k: pl.String if v is None else as_struct(v) for k, v in node.items()})

    return as_struct(tree)


def _field(decoded: pl.Expr, dtype: pl.Struct, path: str) -> pl.Expr:
    """The text at ``path`` of a ``decoded`` struct of ``dtype``; null where the dtype
    holds an object there (another path goes through it)."""
    expr = decoded
    for key in _keys(path):
        fields = {f.name: f.dtype for f in dtype.fields} if isinstance(dtype, pl.Struct) else {}
        dtype = fields.get(key)
        expr = expr.struct.field(key)
    return expr if dtype == pl.String else pl.lit(None, pl.String)


def _origin_hints(found: pl.DataFrame) -> dict[str, pl.Expr]:
    """Node, container and namespace from each record's ``_origin`` path, each path read
    once."""
    paths = found["_origin"].drop_nulls().unique().to_list()
    hints = {p: layouts.hints_from_path(p) for p in paths}
    node = {p: h.node or h.pod for p, h in hints.items() if h.node or h.pod}
    container = {p: h.container for p, h in hints.items() if h.container}
    namespace = {p: h.namespace for p, h in hints.items() if h.namespace}
    origin = pl.col("_origin")
    return {
        "host": origin.replace_strict(node, default=None, return_dtype=pl.String),
        "container": origin.replace_strict(container, default=None, return_dtype=pl.String),
        "namespace": origin.replace_strict(namespace, default=None, return_dtype=pl.String),
    }


def _program_of_container(found: pl.DataFrame) -> pl.Expr:
    """Where a record's container has a name any program's could have (``app``), its pod's
    workload (:func:`parsers.layouts.program_of_container`), each pair worked out once."""
    pairs = (
        found.filter(pl.col("_container").str.to_lowercase().is_in(NAMELESS))
        .select("_pod", "_container")
        .drop_nulls()
        .unique()
    )
    if pairs.height == 0:
        return pl.lit(None, pl.String)
    programs = {
        f"{pod}/{container}": layouts.program_of_container(container, pod)
        for pod, container in pairs.iter_rows()
    }
    key = pl.concat_str("_pod", "_container", separator="/")
    return key.replace_strict(programs, default=None, return_dtype=pl.String)


def log_path_of_tag(tag: pl.Expr) -> pl.Expr:
    """A collector's tag or stream name as the container log path it stands for:
    ``kube.var.log.containers.F`` is ``/var/log/containers/F``, and Container insights'
    ``<node>-application.var.log.containers.F`` is ``<node>/var/log/containers/F``.

    >>> pl.select(log_path_of_tag(pl.lit("ip-10-0-1-5.ec2.internal-application.var.log."
    ...     "containers.kube-proxy-x7k2p_kube-system_kube-proxy-0a.log"))).item()
    'ip-10-0-1-5.ec2.internal/var/log/containers/kube-proxy-x7k2p_kube-system_kube-proxy-0a.log'
    """
    return tag.str.replace(
        r"^(?:(.+)-(?:application|dataplane|host)\.|[A-Za-z0-9_-]+\.)?var\.log\.containers\.",
        "$1/var/log/containers/",
    )


def epoch_or_rfc3339(value: pl.Expr) -> pl.Expr:
    """A time as collectors write it, as UTC: RFC 3339 with a zone, or a number of
    seconds (below 1e11, the year 5138), milliseconds, microseconds or nanoseconds since
    the epoch, told apart by its size.

    >>> pl.select(epoch_or_rfc3339(pl.lit("1678816801123"))).item().isoformat()
    '2023-03-14T18:00:01.123000+00:00'
    >>> pl.select(epoch_or_rfc3339(pl.lit("1678816801.25"))).item().isoformat()
    '2023-03-14T18:00:01.250000+00:00'
    >>> pl.select(epoch_or_rfc3339(pl.lit("2023-03-14T19:00:01.5+01:00"))).item().isoformat()
    '2023-03-14T18:00:01.500000+00:00'
    """
    number = pl.when(value.str.contains(r"^[0-9]{1,19}(?:\.[0-9]+)?$")).then(value)
    whole = number.str.extract(r"^([0-9]+)").cast(pl.Int64, strict=False)
    fraction = number.str.extract(r"\.([0-9]+)$").fill_null("")
    fraction_us = (fraction + "000000").str.slice(0, 6).cast(pl.Int64)
    micros = (
        pl.when(whole >= 10**17)
        .then(whole // 1000)
        .when(whole >= 10**14)
        .then(whole)
        .when(whole >= 10**11)
        .then(whole * 1000)
        .otherwise(whole * 1_000_000 + fraction_us)
    )
    epoch = pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")
    stated = runtime.rfc3339_time(pl.when(number.is_null()).then(value.str.to_uppercase()))
    return pl.coalesce(epoch, stated)

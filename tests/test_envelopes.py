"""Collector envelopes: container lines as log collectors and log stores hand them over.

Each builder wraps the same container lines the way one collector writes its records: key
order, time form and unit, where the node, pod and container are named, trailing newlines,
the document an export puts around them. The lines come from two clusters of different
shapes (node and pod names, times, the year) so that nothing rests on one example.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

import timeline
from parsers import envelopes, otlp, registry
from tests.lines import every_line_accounted
from timeline.analysis.contributors import program_namespaces, stated_namespace
from timeline.reading import mapper


@dataclass(frozen=True)
class Line:
    """One line a container wrote: when the runtime took it, and where."""

    at: datetime
    node: str
    pod: str
    container: str
    stream: str
    text: str


def klog_head(level: str, at: datetime, where: str) -> str:
    return f"{level}{at:%m%d %H:%M:%S.%f}       1 {where}] "


def cluster(seed: int, start: datetime, nodes: list[str]) -> list[Line]:
    """kube-proxy on each node (a failed sync with its ``err=<`` block, three lines of
    one time), CoreDNS on two, RabbitMQ's multi-line warning on one."""
    rng = random.Random(seed)
    lines: list[Line] = []
    at = start
    for k, node in enumerate(nodes):
        pod = f"kube-proxy-{rng.choice('bcdfghjklmnpqrstvwxz')}{rng.randrange(1000, 9999)}"
        lines.append(
            Line(
                at,
                node,
                pod,
                "kube-proxy",
                "stderr",
                klog_head("I", at, "proxier.go:853") + '"Syncing iptables rules"',
            )
        )
        at += timedelta(seconds=rng.randrange(5, 50), microseconds=rng.randrange(10**6))
        for text in (
            klog_head("E", at, "proxier.go:1520") + '"Failed to execute iptables-restore" err=<',
            "\texit status 1: iptables-restore: line 7 failed",
            " >",
        ):
            lines.append(Line(at, node, pod, "kube-proxy", "stderr", text))
        at += timedelta(seconds=rng.randrange(1, 9))
        if k < 2:
            dns = f"coredns-5d78c9869d-{rng.randrange(10000, 99999)}"
            for text in (
                f"[ERROR] plugin/errors: 2 api.example.com. A: read udp 10.244.{k}.3:41245"
                "->10.96.0.10:53: i/o timeout",
                f'[INFO] 10.244.{k}.5:53876 - 61231 "A IN kubernetes.default.svc.cluster.local.'
                ' udp 54 false 512" NOERROR qr,aa,rd 106 0.000134s',
            ):
                lines.append(Line(at, node, dns, "coredns", "stdout", text))
                at += timedelta(seconds=1)
    mq = f"{at:%Y-%m-%d %H:%M:%S.%f}+00:00 [warning] <0.520.0> "
    for piece in ("memory resource limit alarm set on node 'rabbit@mq-0'.", "Publishers blocked."):
        lines.append(Line(at, nodes[-1], "mq-0", "rabbitmq", "stdout", mq + piece))
    return lines


CLUSTERS = {
    "eks": cluster(
        7,
        datetime(2023, 3, 14, 17, 58, 3, 120331, tzinfo=UTC),
        [
            "ip-10-20-1-183.ec2.internal",
            "ip-10-20-2-62.ec2.internal",
            "ip-10-20-3-141.ec2.internal",
        ],
    ),
    "gke": cluster(
        11,
        datetime(2024, 12, 31, 23, 59, 40, 5, tzinfo=UTC),
        ["gke-prod-pool-3f6a-x7k2", "gke-prod-pool-3f6a-m2d8"],
    ),
}


def cri_time(at: datetime) -> str:
    """RFC 3339 to the nanosecond as runtimes write it (Go trims trailing zeros)."""
    nanos = f"{at.microsecond:06d}{at.microsecond % 7}00".rstrip("0")
    return f"{at:%Y-%m-%dT%H:%M:%S}{'.' + nanos if nanos else ''}Z"


def container_id(line: Line) -> str:
    return (line.pod.encode().hex() * 8)[:64]


def log_path(line: Line) -> str:
    return f"/var/log/containers/{line.pod}_kube-system_{line.container}-{container_id(line)}.log"


def fluent_metadata(line: Line) -> dict:
    return {
        "pod_name": line.pod,
        "namespace_name": "kube-system",
        "pod_id": "dcbf9813-be94-4ffb-a2bb-ae8ff6cb3657",
        "labels": {"k8s-app": line.container},
        "host": line.node,
        "container_name": line.container,
        "docker_id": container_id(line),
        "container_image": f"registry.k8s.io/{line.container}:v1.24.10",
    }


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def fluent_bit_cri(lines: list[Line]) -> str:
    records = [
        {"time": cri_time(x.at), "stream": x.stream, "_p": "F", "log": x.text}
        | {"kubernetes": fluent_metadata(x)}
        for x in lines
    ]
    return "\n".join(map(compact, records)) + "\n"


def fluent_bit_docker(lines: list[Line]) -> str:
    """Through the docker parser: the line keeps its newline; stdout's ``date`` first."""
    records = [
        {"date": x.at.timestamp(), "log": x.text + "\n", "stream": x.stream, "time": cri_time(x.at)}
        | {"kubernetes": fluent_metadata(x)}
        for x in lines
    ]
    return "\n".join(map(compact, records)) + "\n"


def fluent_bit_file(lines: list[Line]) -> str:
    """The file output's default: ``tag: [seconds.nanoseconds, record]``."""
    out = []
    for x in lines:
        tag = "kube" + log_path(x).replace("/", ".")
        record = {"time": cri_time(x.at), "stream": x.stream, "_p": "F", "log": x.text}
        record["kubernetes"] = fluent_metadata(x)
        out.append(f"{tag}: [{x.at.timestamp():.9f}, {compact(record)}]")
    return "\n".join(out) + "\n"


def fluentd_out_file(lines: list[Line]) -> str:
    """Fluentd's out_file: second-precision local time, the tag, the cri parser's record
    with the metadata merged after it."""
    out = []
    for x in lines:
        local = x.at.astimezone(datetime.now().astimezone().tzinfo)
        record = {"stream": x.stream, "logtag": "F", "message": x.text, "time": cri_time(x.at)}
        record |= {"docker": {"container_id": container_id(x)}, "kubernetes": fluent_metadata(x)}
        tag = "kubernetes" + log_path(x).replace("/", ".")
        out.append(f"{local:%Y-%m-%dT%H:%M:%S%z}\t{tag}\t{compact(record)}")
    return "\n".join(out) + "\n"


def vector(lines: list[Line]) -> str:
    """Vector's JSON: every level's keys in order, the pod's log path in ``file``."""
    records = [
        {
            "file": f"/var/log/pods/kube-system_{x.pod}_0a1b/{x.container}/0.log",
            "kubernetes": {
                "container_name": x.container,
                "pod_name": x.pod,
                "pod_namespace": "kube-system",
                "pod_node_name": x.node,
            },
            "message": x.text,
            "source_type": "kubernetes_logs",
            "stream": x.stream,
            "timestamp": cri_time(x.at),
        }
        for x in lines
    ]
    return "\n".join(json.dumps(r, sort_keys=True, separators=(",", ":")) for r in records) + "\n"


def ecs_document(x: Line, k: int) -> dict:
    doc = {
        "@timestamp": x.at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{x.at.microsecond // 1000:03d}Z",
        "message": x.text,
        "stream": x.stream,
        "host": {"name": f"filebeat-{k % 3}x7q"},
        "kubernetes": {
            "node": {"name": x.node},
            "pod": {"name": x.pod},
            "namespace": "kube-system",
            "container": {"name": x.container},
        },
        "log": {"file": {"path": log_path(x)}, "offset": 1000 * k},
        "agent": {"type": "filebeat", "version": "8.6.2"},
        "ecs": {"version": "8.0.0"},
    }
    keys = list(doc)
    random.Random(k).shuffle(keys)  # a Go map: the order differs from event to event
    return {key: doc[key] for key in keys}


def filebeat(lines: list[Line]) -> str:
    return "\n".join(compact(ecs_document(x, k)) for k, x in enumerate(lines)) + "\n"


def elasticsearch_search(lines: list[Line]) -> str:
    hits = [
        {"_index": ".ds-logs-kubernetes.container_logs-default", "_id": f"id{k}", "_score": None}
        | {"_source": ecs_document(x, k), "sort": [int(x.at.timestamp() * 1000)]}
        for k, x in enumerate(lines)
    ]
    body = {"took": 23, "timed_out": False, "hits": {"total": {"value": len(hits)}, "hits": hits}}
    return json.dumps(body, indent=2).replace('": ', '" : ') + "\n"


def loki_labels(x: Line) -> dict:
    return {"container": x.container, "namespace": "kube-system", "node_name": x.node, "pod": x.pod}


def go_json(value) -> str:
    """Go's encoding/json: ``<`` and ``>`` escaped."""
    return compact(value).replace("<", "\\u003c").replace(">", "\\u003e")


def logcli_jsonl(lines: list[Line]) -> str:
    records = [
        {"labels": loki_labels(x), "line": x.text, "timestamp": cri_time(x.at)} for x in lines
    ]
    return "\n".join(go_json(r) for r in reversed(records)) + "\n"  # newest first


def logcli_default(lines: list[Line]) -> str:
    """The time in seconds in the asker's zone, labels padded to the widest, the line
    trimmed, newest first."""
    rendered = [
        "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(loki_labels(x).items())) + "}"
        for x in lines
    ]
    width = max(map(len, rendered))
    out = []
    for x, labels in zip(lines, rendered, strict=True):
        at = x.at.astimezone(timezone(timedelta(hours=1))).isoformat(timespec="seconds")
        out.append(f"{at} {labels.ljust(width)} {x.text.strip()}")
    return "\n".join(reversed(out)) + "\n"


def stern_json(lines: list[Line]) -> str:
    """``stern --output json --timestamps``: each line with the runtime's time before it,
    in Go's encoding of stern's fields, in their order."""
    records = [
        {
            "message": f"{cri_time(x.at)} {x.text}",
            "nodeName": x.node,
            "namespace": "kube-system",
            "podName": x.pod,
            "containerName": x.container,
        }
        for x in lines
    ]
    return "\n".join(go_json(r) for r in records) + "\n"


def gcloud(lines: list[Line]) -> str:
    """``gcloud logging read --format=json``: an array, newest first, keys sorted, indent
    2; every stderr line is ERROR."""
    entries = [
        {
            "insertId": f"lncc91b9ymx{k:05d}",
            "labels": {"compute.googleapis.com/resource_name": x.node},
            "logName": f"projects/ci-prod/logs/{x.stream}",
            "receiveTimestamp": cri_time(x.at + timedelta(seconds=2)),
            "resource": {
                "labels": {
                    "cluster_name": "prod",
                    "container_name": x.container,
                    "namespace_name": "kube-system",
                    "pod_name": x.pod,
                },
                "type": "k8s_container",
            },
            "severity": "ERROR" if x.stream == "stderr" else "INFO",
            "textPayload": x.text,
            "timestamp": cri_time(x.at),
        }
        for k, x in enumerate(lines)
    ]
    return json.dumps(entries[::-1], indent=2, sort_keys=True) + "\n"


def cloudwatch(lines: list[Line]) -> str:
    """``aws logs filter-log-events``: the Fluent Bit record as the message, the node in
    the stream's name, milliseconds."""
    events = []
    for k, x in enumerate(lines):
        record = {"time": cri_time(x.at), "stream": x.stream, "_p": "F", "log": x.text}
        record["kubernetes"] = fluent_metadata(x)
        stream = f"{x.node}-application" + log_path(x).replace("/", ".")
        events.append(
            {
                "logStreamName": stream,
                "timestamp": int(x.at.timestamp() * 1000),
                "message": compact(record),
                "ingestionTime": int(x.at.timestamp() * 1000) + 1200,
                "eventId": f"{37000000000000000000000000 + k:056d}",
            }
        )
    return json.dumps({"events": events, "searchedLogStreams": []}, indent=4) + "\n"


def splunk_export(lines: list[Line]) -> str:
    out = []
    for k, x in enumerate(lines):
        result = {
            "_raw": x.text,
            "_time": x.at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{x.at.microsecond // 1000:03d}+00:00",
            "host": x.node,
            "source": f"/var/log/pods/kube-system_{x.pod}_0a1b/{x.container}/0.log",
            "sourcetype": f"kube:container:{x.container}",
            "_si": ["idx-1", "main"],
        }
        out.append(compact({"preview": False, "offset": k, "result": result}))
    return "\n".join(out) + "\n"


def azure(lines: list[Line]) -> str:
    """``az monitor log-analytics query``: an array of rows, keys sorted, every value text."""
    rows = [
        {
            "Computer": x.node,
            "ContainerName": x.container,
            "LogLevel": "None",
            "LogMessage": x.text,
            "LogSource": x.stream,
            "PodName": x.pod,
            "PodNamespace": "kube-system",
            "TableName": "PrimaryResult",
            "TimeGenerated": x.at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
        }
        for x in lines
    ]
    return json.dumps(rows, indent=2, sort_keys=True) + "\n"


def gelf(lines: list[Line]) -> str:
    """Docker's gelf driver under dockershim: the node in ``host``, the pod only in the
    container's name, the level from the stream."""
    records = [
        {
            "version": "1.1",
            "host": x.node,
            "short_message": x.text,
            "timestamp": round(x.at.timestamp(), 3),
            "level": 3 if x.stream == "stderr" else 6,
            "_container_name": f"k8s_{x.container}_{x.pod}_kube-system_0a1b-2c3d_0",
        }
        for x in lines
    ]
    return "\n".join(go_json(r) for r in records) + "\n"


def fluentd_stdout(lines: list[Line]) -> str:
    """Fluentd's out_stdout (``kubectl logs`` of a Fluentd pod): the record's time in
    Fluentd's zone to the nanosecond, the tag, a colon, the record."""
    zone = timezone(timedelta(hours=9))
    out = []
    for x in lines:
        local = x.at.astimezone(zone)
        record = {"log": x.text, "stream": x.stream, "logtag": "F", "time": cri_time(x.at)}
        record["kubernetes"] = fluent_metadata(x)
        tag = "kube" + log_path(x).replace("/", ".")
        at = f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond:06d}{local.microsecond % 7}00"
        out.append(f"{at} {local:%z} {tag}: {compact(record)}")
    return "\n".join(out) + "\n"


def unix_nanos(at: datetime, extra: int = 0) -> str:
    """A time as OTLP writes it: nanoseconds since the epoch, as a decimal string."""
    micros = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return str(micros * 1000 + extra)


def otlp_attributes(values: dict, rng: random.Random) -> list[dict]:
    """Key/values as OTLP writes them, in a Go map's order (any): ``intValue`` a string."""
    items = [
        {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
        for k, v in values.items()
    ]
    rng.shuffle(items)
    return items


def otlp_resource(x: Line, rng: random.Random) -> dict:
    """What the container parser and k8sattributes say of a pod."""
    names = {
        "k8s.container.restart_count": 0,
        "k8s.pod.uid": "dcbf9813-be94-4ffb-a2bb-ae8ff6cb3657",
        "k8s.container.name": x.container,
        "k8s.namespace.name": "kube-system",
        "k8s.pod.name": x.pod,
        "k8s.pod.start_time": "2023-03-14T17:40:52Z",
        "k8s.node.name": x.node,
    }
    return {"attributes": otlp_attributes(names, rng)}


def otlp_record(x: Line, rng: random.Random) -> dict:
    """A log record as the filelog receiver's container parser makes it."""
    path = f"/var/log/pods/kube-system_{x.pod}_dcbf9813/{x.container}/0.log"
    attributes = {"log.iostream": x.stream, "log.file.path": path, "logtag": "F"}
    return {
        "timeUnixNano": unix_nanos(x.at, 849),
        "observedTimeUnixNano": unix_nanos(x.at + timedelta(milliseconds=rng.randrange(900))),
        "body": {"stringValue": x.text},
        "attributes": otlp_attributes(attributes, rng),
        "traceId": "",
        "spanId": "",
    }


def otlp_batch(lines: list[Line], rng: random.Random) -> dict:
    """An ExportLogsServiceRequest: a resource for each run of one pod's lines."""
    resources = [
        {
            "resource": otlp_resource(group[0], rng),
            "scopeLogs": [{"scope": {}, "logRecords": [otlp_record(x, rng) for x in group]}],
        }
        for group in (list(g) for _, g in itertools.groupby(lines, key=lambda x: x.pod))
    ]
    return {"resourceLogs": resources}


def otlp_batches(lines: list[Line], seed: int = 3) -> list[list[Line]]:
    """The lines cut into batches of 1 to 7 records, as a batch processor sends them."""
    rng = random.Random(seed)
    batches, k = [], 0
    while k < len(lines):
        batches.append(lines[k : k + rng.randint(1, 7)])
        k += len(batches[-1])
    return batches


def insights_time(at: datetime) -> str:
    """Logs Insights' ``@timestamp``: UTC to the millisecond, no zone written."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def cloudwatch_insights(lines: list[Line]) -> str:
    """The Logs Insights console's "Download table (JSON)" of its default query: the
    Fluent Bit record as ``@message``, newest first."""
    rows = []
    for x in lines:
        record = {"log": x.text + "\n", "stream": x.stream, "time": cri_time(x.at)}
        record["kubernetes"] = fluent_metadata(x)
        rows.append(
            {
                "@timestamp": insights_time(x.at),
                "@message": compact(record),
                "@logStream": f"{x.node}-application" + log_path(x).replace("/", "."),
                "@log": "123456789012:/aws/containerinsights/prod/application",
            }
        )
    return json.dumps(rows[::-1], indent=2) + "\n"


def otel_file_exporter(lines: list[Line]) -> str:
    """The Collector's file exporter: a batch a line."""
    rng = random.Random(5)
    return "\n".join(compact(otlp_batch(b, rng)) for b in otlp_batches(lines)) + "\n"


def otel_file_exporter_2023(lines: list[Line]) -> str:
    """The same from a collector of 2023, whose jsonpb escaped ``<``, ``>`` and ``&``."""
    escaped = otel_file_exporter(lines).replace("&", "\\u0026")
    return escaped.replace("<", "\\u003c").replace(">", "\\u003e")


COLLECTORS = {
    "fluent-bit-cri": (fluent_bit_cri, "fluent"),
    "fluent-bit-docker": (fluent_bit_docker, "fluent"),
    "fluent-bit-file": (fluent_bit_file, "fluent-bit-file > fluent"),
    "fluentd": (fluentd_out_file, "fluentd > fluent-cri"),
    "vector": (vector, "vector"),
    "filebeat": (filebeat, "ecs"),
    "elasticsearch": (elasticsearch_search, "ecs-stored"),
    "logcli-jsonl": (logcli_jsonl, "loki"),
    "logcli": (logcli_default, "logcli"),
    "stern-json": (stern_json, "stern > kubectl-timestamps"),
    "gcloud": (gcloud, "cloud-logging"),
    "cloudwatch": (cloudwatch, "cloudwatch > fluent"),
    "cloudwatch-insights": (cloudwatch_insights, "cloudwatch-insights > fluent"),
    "splunk": (splunk_export, "splunk-export"),
    "azure": (azure, "azure-monitor"),
    "gelf": (gelf, "gelf"),
    "fluentd-stdout": (fluentd_stdout, "fluentd-stdout > fluent"),
    "otel-file": (otel_file_exporter, "otlp"),
    "otel-file-2023": (otel_file_exporter_2023, "otlp"),
}


def expected_records(lines: list[Line]) -> pl.DataFrame:
    """A row per record the programs wrote: a klog ``err=<`` block and RabbitMQ's pieces
    are one record each."""
    heads = [
        x
        for x in lines
        if not x.text.startswith(("\t", " >"))
        and not (x.container == "rabbitmq" and "Publishers" in x.text)
    ]
    return pl.DataFrame(
        {
            "host": [x.node for x in heads],
            "component": [x.container for x in heads],
            "level": [
                "error"
                if x.text.startswith(("E", "[ERROR]"))
                else "warning"
                if "[warning]" in x.text
                else "info"
                for x in heads
            ],
            "second": [x.at.replace(microsecond=0, tzinfo=None) for x in heads],
        }
    ).sort(pl.all())


@pytest.mark.parametrize("shape", list(CLUSTERS))
@pytest.mark.parametrize("collector", list(COLLECTORS))
def test_each_collectors_records_give_the_programs_rows_with_node_time_and_level(
    read, collector, shape
):
    build, layers = COLLECTORS[collector]
    lines = CLUSTERS[shape]
    loaded = read(f"{collector}-export.log", build(lines))
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == layers
    assert files["unparsed_lines"] == 0
    assert files["first_lines"] + files["continuation_lines"] == files["lines"]
    got = (
        loaded.events.filter(pl.col("level").is_not_null())
        .select(
            "host",
            "component",
            pl.col("level").cast(pl.String),
            second=pl.col("ts").dt.replace_time_zone(None).dt.truncate("1s"),
        )
        .sort(pl.all())
    )
    want = expected_records(lines)
    if collector == "logcli":
        # logcli trims each line: a block's tab-indented line no longer continues its record
        want = want.filter(pl.col("component") != "kube-proxy")
        got = got.filter(pl.col("component") != "kube-proxy")
    assert got.to_dicts() == want.to_dicts()


#: The namespace each cluster's pods run in, written where its collectors name one.
NAMESPACES = {"eks": "edge-net", "gke": "payments-7"}
#: Collectors whose records name no namespace (the gelf driver's container name and
#: Splunk's ``source`` path do).
NO_NAMESPACE: set[str] = set()


def stated_namespaces(loaded: timeline.Loaded) -> list[str | None]:
    logs = loaded.events.filter(pl.col("kind") == "log")
    return logs.select(stated_namespace(pl.col("attrs")))["attrs"].unique().to_list()


@pytest.mark.parametrize("shape", list(CLUSTERS))
@pytest.mark.parametrize("collector", sorted(set(COLLECTORS) - NO_NAMESPACE))
def test_each_collectors_records_keep_the_pods_namespace(read, collector, shape):
    """The namespace a record states (in its Kubernetes metadata, its labels, its
    resource, its stream's or container's name) is every row's, and it is what ties the
    program to its namespace; a line's own ``namespace=`` key is the line's, not that."""
    build, _layers = COLLECTORS[collector]
    namespace = NAMESPACES[shape]
    text = build(CLUSTERS[shape]).replace("kube-system", namespace)
    loaded = read(f"{collector}-{shape}.log", text)
    assert stated_namespaces(loaded) == [namespace]
    found = program_namespaces(loaded.events)
    assert found["component:kube-proxy"] == {namespace}
    assert found["component:coredns"] == {namespace}


def test_a_stated_namespace_beats_the_paths_and_a_name_no_namespace_could_have_is_none(read):
    """A Fluent Bit export saved under a ``kubectl logs``-like name (``<ns>_<pod>.log``):
    the records' namespace wins over the path's; a record whose namespace is no name
    Kubernetes allows (markup) states none, and its row falls back on the path's."""
    at = datetime(2024, 2, 29, 23, 59, 58, 250000, tzinfo=UTC)

    def record(namespace: str, k: int) -> str:
        line = Line(
            at + timedelta(seconds=k),
            "aks-nodepool1-31415926-vmss000002",
            "ledger-api-6f9d8b7c5-q2w4x",
            "ledger-api",
            "stderr",
            klog_head("E", at + timedelta(seconds=k), "client.go:71")
            + '"Lookup failed" namespace="kube-system" host="ledger-db"',
        )
        meta = fluent_metadata(line) | {"namespace_name": namespace}
        return compact(
            {"time": cri_time(line.at), "stream": "stderr", "log": line.text, "kubernetes": meta}
        )

    text = "\n".join([record("ledger", 0), record("<b>ops</b>", 1)]) + "\n"
    loaded = read("batch_ledger-api-6f9d8b7c5-q2w4x.log", text)
    assert set(stated_namespaces(loaded)) == {"ledger", None}
    found = program_namespaces(loaded.events)
    assert found["component:ledger-api"] == {"ledger", "batch"}
    assert "<b>ops</b>" not in loaded.events["attrs"].str.join("").item()


# --- small files read together ------------------------------------------------------------


def small_pod_logs(seed: int) -> tuple[str, list[list[Line]]]:
    """A namespace and four to six pods' few dozen lines each (kube-proxy's klog with its
    ``err=<`` blocks, or CoreDNS), each pod on a node of its own, from a seeded time."""
    rng = random.Random(seed)
    namespace = rng.choice(["edge-net", "payments-7", "ci-runners", "dns"])
    at = datetime(
        rng.choice([2023, 2024, 2025]),
        rng.randint(1, 12),
        rng.randint(1, 28),
        rng.randint(0, 23),
        rng.randint(0, 59),
        tzinfo=UTC,
    )
    pods = []
    for k in range(rng.randint(4, 6)):
        node = rng.choice(["ip-10-20-{}-{}.ec2.internal", "gke-prod-pool-{}-x{}k2"]).format(
            rng.randint(1, 9), rng.randint(10, 250)
        )
        dns = k % 2 == 1  # two or more of each format, so each goes together
        pod = (
            f"coredns-5d78c9869d-{rng.randrange(10000, 99999)}"
            if dns
            else f"kube-proxy-{rng.choice('bcdfghjklmnpqrstvwxz')}{rng.randrange(1000, 9999)}"
        )
        lines = []
        while len(lines) < rng.randint(20, 40):
            at += timedelta(seconds=rng.randint(1, 30), microseconds=rng.randrange(10**6))
            if dns:
                text = (
                    f"[ERROR] plugin/errors: 2 api-{k}.example.com. A: read udp "
                    f"10.244.{k}.3:{rng.randint(30000, 60000)}->10.96.0.10:53: i/o timeout"
                    if rng.random() < 0.3
                    else f"[INFO] 10.244.{k}.5:{rng.randint(30000, 60000)} - "
                    f'{rng.randint(1, 65000)} "A IN web.default.svc.cluster.local. udp 54 '
                    f'false 512" NOERROR qr,aa,rd 106 0.000{rng.randint(100, 999)}s'
                )
                lines.append(Line(at, node, pod, "coredns", "stdout", text))
            elif rng.random() < 0.3:
                for text in (
                    klog_head("E", at, "proxier.go:1520")
                    + '"Failed to execute iptables-restore" err=<',
                    f"\texit status 1: iptables-restore: line {rng.randint(2, 90)} failed",
                    " >",
                ):
                    lines.append(Line(at, node, pod, "kube-proxy", "stderr", text))
            else:
                text = klog_head("I", at, "proxier.go:853") + '"Syncing iptables rules"'
                lines.append(Line(at, node, pod, "kube-proxy", "stderr", text))
        pods.append(lines)
    return namespace, pods


def journal_of(lines: list[Line], seed: int) -> str:
    """One node's ``journalctl -u kube-proxy -o json``: the pod's lines as a unit's, each an
    entry with its ``_PID`` and ``PRIORITY``, some of them the kernel's at 3 and 4."""
    rng = random.Random(seed)
    pid = rng.randint(900, 30000)
    entries = []
    for x in lines:
        entries.append(kube_proxy(x.at, x.node, pid, x.text))
        if rng.random() < 0.15:
            line = "TCP: request_sock_TCP: Possible SYN flooding on port 10250. Sending cookies."
            entries.append(kernel(x.at + timedelta(microseconds=500), x.node, 4, line))
    return journalctl_json(entries)


def syslog_of(lines: list[Line], _seed: int) -> str:
    """The same as rsyslog's ``/var/log/syslog`` writes it: the program's name and pid."""
    pid = sum(map(ord, lines[0].pod)) % 30000 + 100
    return "".join(
        f"{x.at:%b} {x.at.day:2d} {x.at:%H:%M:%S} {x.node.split('.')[0]} "
        f"{x.container}[{pid}]: {x.text}\n"
        for x in lines
    )


#: The collectors of :data:`COLLECTORS` whose small files of one format are parsed in one
#: query (:func:`timeline.reading.mapper.map_batch`), and two whose lines are each an
#: entry, so that each file is parsed on its own.
TOGETHER = [
    "fluent-bit-cri",
    "fluent-bit-docker",
    "cloudwatch",
    "logcli-jsonl",
    "vector",
    "gcloud",
    "stern-json",
    "otel-file",
]
ENTRIES = {"journald-json": journal_of, "syslog": syslog_of}


@pytest.mark.parametrize(
    ("collector", "seed"), [(c, 3 + 38 * k) for k, c in enumerate(TOGETHER + list(ENTRIES))]
)
def test_small_files_read_together_give_the_rows_each_gives_alone(tmp_path, spy, collector, seed):
    """A folder of small single-pod exports is read a format at a time in one query; each
    file's rows are still the rows it gives read alone, every column: the namespace and
    pid the collector's record states in ``attrs``, the level a journal's PRIORITY states,
    the time, host and component."""
    namespace, pods = small_pod_logs(seed)
    files = []
    for k, lines in enumerate(pods):
        if collector in ENTRIES:
            text = ENTRIES[collector](lines, seed + k)
        else:
            text = COLLECTORS[collector][0](lines).replace("kube-system", namespace)
        path = tmp_path / collector / f"{lines[0].pod}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append(str(path))
    together = spy(mapper, "_parse_together")
    batched = mapper.map_batch([mapper.Task(f) for f in files])
    went = sorted(i for _members, indexes in together for i in indexes)
    if collector in ENTRIES:
        assert went == []
    else:
        assert went == list(range(len(files))), "every file in one query of its format"
    for f, each in zip(files, batched, strict=True):
        alone = mapper.map_task(mapper.Task(f))
        assert each.records.equals(alone.records), f
        assert (each.rows, each.first_lines, each.covered_lines, each.segments) == (
            alone.rows,
            alone.first_lines,
            alone.covered_lines,
            alone.segments,
        )
        assert each.evidence == alone.evidence
        assert each.warnings.equals(alone.warnings)

    read = timeline.read(str(tmp_path / collector), workers=1, cache=False, infer=False)
    rows = read.events.sort("file", "line", "ts", maintain_order=True)
    for f in files:
        alone = timeline.read(f, workers=1, cache=False, infer=False).events
        mine = rows.filter(pl.col("file").str.ends_with(Path(f).name))
        assert mine.drop("file").equals(alone.sort("line", "ts", maintain_order=True).drop("file"))
    logs = rows.filter(pl.col("kind") == "log")
    if collector in ENTRIES:
        programs = logs.filter(pl.col("component") != "kernel")
        assert programs["attrs"].str.contains('^\\{"pid":"[0-9]+"').all()
    else:
        assert logs.select(stated_namespace(pl.col("attrs")))["attrs"].unique().to_list() == [
            namespace
        ]
    assert logs["level"].is_not_null().all()


def test_a_stores_stderr_severity_is_not_taken_for_the_programs_level(read):
    """Cloud Logging marks every stderr text line ERROR: klog's info lines stay info and a
    line no format knows gets no level from it; a JSON payload's severity is the program's."""
    at = datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC)
    lines = [
        Line(
            at,
            "gke-a",
            "kube-proxy-x1",
            "kube-proxy",
            "stderr",
            klog_head("I", at, "a.go:1") + '"up"',
        ),
        Line(at, "gke-a", "web-1", "nginx", "stderr", "10.0.0.1 - - GET /healthz 200"),
    ]
    document = json.loads(gcloud(lines))
    document.append(
        {
            "insertId": "x",
            "jsonPayload": {"message": "payment declined", "order": 7},
            "logName": "projects/p/logs/stdout",
            "resource": {"labels": {"pod_name": "pay-1", "container_name": "pay"}},
            "severity": "WARNING",
            "timestamp": "2023-03-14T18:00:02Z",
        }
    )
    loaded = read("gcloud.json", json.dumps(document, indent=2, sort_keys=True))
    levels = dict(
        zip(loaded.events["component"], loaded.events["level"].cast(pl.String), strict=True)
    )
    assert levels == {"kube-proxy": "info", "nginx": None, "pay": "warning"}


def test_a_split_line_is_joined_and_a_line_the_collector_joined_is_not(read):
    """containerd splits a line at 16 KiB (``P`` then ``F``); Fluent Bit's multiline parser
    joins the pieces but keeps the first one's ``_p``, so a ``P`` record longer than that
    is whole and the next record is a line of its own."""
    meta = {"kubernetes": {"host": "node-1", "pod_name": "mq-0", "container_name": "rabbitmq"}}

    def record(second: int, flag: str, log: str) -> dict:
        at = f"2023-03-15T02:50:{second:02d}.695172Z"
        return {"time": at, "stream": "stdout", "_p": flag, "log": log} | meta

    def head(second: int, level: str) -> str:
        return f"2023-03-15 02:50:{second:02d}.695172+00:00 [{level}] <0.{second}.0> queue: "

    piece = head(1, "error") + "x" * (16384 - len(head(1, "error")))
    records = [
        record(1, "P", piece),
        record(1, "F", "y" * 40),
        record(2, "P", head(2, "error") + "z" * 17000),
        record(3, "F", head(3, "info") + "ok"),
    ]
    loaded = read("mq.json", "\n".join(map(compact, records)) + "\n")
    messages = loaded.events.sort("line")["message"].to_list()
    assert len(messages) == 3
    assert messages[0].endswith("x" + "y" * 40)
    assert loaded.events.sort("line")["line"].to_list() == [1, 3, 4]


def test_a_program_no_format_knows_keeps_the_records_time_and_node(read):
    lines = [
        Line(
            datetime(2023, 3, 14, 18, k, tzinfo=UTC), f"node-{k}", "web-1", "nginx", "stdout", text
        )
        for k, text in enumerate(
            ["10.0.0.1 - - GET /healthz 200", "ERROR:payments:upstream timed out after 30s"]
        )
    ]
    loaded = read("vector.json", vector(lines))
    events = loaded.events.sort("ts")
    assert events["host"].to_list() == ["node-0", "node-1"]
    assert events["ts"].dt.minute().to_list() == [0, 1]
    assert events["level"].cast(pl.String).to_list() == [None, "error"]
    assert loaded.summary.unparsed_lines == 0


def test_a_broken_record_stands_alone_and_costs_no_other(read):
    """A record cut off as a collector died writing it is a row of its own, its text as
    written (it is no record of the collector's to read inside), and glued to none."""
    lines = CLUSTERS["eks"][:6]
    text = fluent_bit_cri(lines).splitlines()
    cut = text[1][: len(text[1]) // 2]
    text.insert(1, cut)
    loaded = read("cut.json", "\n".join(text) + "\n")
    files = loaded.summary.files.row(0, named=True)
    assert files["first_lines"] + files["continuation_lines"] + files["unparsed_lines"] == 7
    events = loaded.events.sort("line")
    assert events["level"].cast(pl.String).to_list() == ["info", None, "error", "error", "info"]
    assert events["message"][1] == cut
    assert cut not in events["message"][0]
    assert set(events["host"].drop_nulls()) == {lines[0].node}


@pytest.mark.parametrize(
    "line",
    [
        # zap and slog write their own JSON with a ``message``: no collector's marks
        '{"level":"error","ts":"2023-03-14T18:00:01.123Z","logger":"api","message":"timeout"}',
        # ecs-logging's libraries write dotted keys, not a Beat's objects
        '{"@timestamp":"2023-03-14T18:00:01.123Z","log.level":"error","message":"timeout",'
        '"ecs.version":"1.6.0","service.name":"api"}',
        # klog's JSON format
        '{"ts":1678816801123.456,"caller":"app/server.go:42","msg":"Sync failed","v":0}',
    ],
)
def test_a_programs_own_json_is_no_envelope(line):
    assert envelopes.detect([line, line]) == (None, 0.0)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("1678816801", "2023-03-14T18:00:01+00:00"),
        ("1678816801.25", "2023-03-14T18:00:01.250000+00:00"),
        ("1678816801250", "2023-03-14T18:00:01.250000+00:00"),
        ("1678816801250123", "2023-03-14T18:00:01.250123+00:00"),
        ("1678816801250123456", "2023-03-14T18:00:01.250123+00:00"),
        ("2023-03-14T19:00:01.250123456+01:00", "2023-03-14T18:00:01.250123+00:00"),
        ("2023-03-14T18:00:01.25z", "2023-03-14T18:00:01.250000+00:00"),
        ("2023-03-14T18:00:01", None),
        ("None", None),
    ],
)
def test_collector_times_in_every_unit(value, iso):
    got = pl.select(envelopes.epoch_or_rfc3339(pl.lit(value, pl.String))).item()
    assert (got.isoformat() if got else None) == iso


def test_a_big_collector_file_is_cut_between_records(tmp_path):
    """Cuts fall before a record whose line starts one: never inside a klog block (a
    RabbitMQ message's pieces, each with its header, may be cut apart as in a file of
    their own)."""
    path = tmp_path / "fluent.json"
    at = datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC)
    dump = [  # klog's old-style error: the restore input it failed on, line by line
        klog_head("E", at, "proxier.go:1508") + "Failed to execute iptables-restore: exit 1",
        "*nat",
        ":KUBE-SERVICES - [0:0]",
        "-A KUBE-SERVICES -m comment --comment kube-system/kube-dns -j KUBE-SVC-TCOU7J",
        "COMMIT",
    ]
    lines = [x for x in CLUSTERS["eks"] if x.container != "rabbitmq"]
    lines += [Line(at, "node-1", "kube-proxy-x1", "kube-proxy", "stderr", t) for t in dump]
    lines = lines * 400
    path.write_text(fluent_bit_cri(lines))
    whole = mapper.map_task(mapper.Task(str(path))).rows
    for pieces in (4, 7, 11, 16):
        tasks = mapper.plan(str(path), chunk_bytes=path.stat().st_size // pieces)
        assert len(tasks) >= pieces - 1
        results = [mapper.map_task(task) for task in tasks]
        assert sum(r.rows for r in results) == whole, pieces
        assert sum(int(r.warnings["unparsed"].sum()) for r in results) == 0, pieces


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("2025-02-19 09:34:01,123 ERROR [orders.worker] heartbeat missed", "error"),
        ("2025-02-19 09:34:01,123 WARNING [orders.worker] reconnecting", "warning"),
        ("2025-02-19T09:34:01.123Z ERROR 1 --- [main] c.e.App : payment failed", "error"),
        ("2025-02-19 09:34:01.123  WARN 1 --- [nio-8080-exec-1] c.e.Api : slow", "warning"),
        ("09:34:01.123 [pool-1-thread-2] ERROR com.example.Client - timed out", "error"),
        ("2025-02-19 09:34:01 request for /errors/recent took 12ms", None),
        ("10.0.0.1 - - GET /error 200", None),
    ],
)
def test_a_level_word_after_a_logging_librarys_time_is_the_lines_level(read, text, level):
    """Python's logging, log4j, Spring Boot and logback write a time before the level:
    in a collector's record of a program no format knows, that word is the level."""
    at = datetime(2025, 2, 19, 9, 34, 1, tzinfo=UTC)
    lines = [Line(at, "gke-a", "orders-worker-7d9f", "worker", "stderr", text)]
    loaded = read("worker.json", vector(lines))
    assert loaded.events["level"].cast(pl.String).to_list() == [level]


def test_logcli_without_the_labels_every_stream_shares_names_the_container_by_its_file(read):
    """logcli prints the labels all streams share once, apart: a stream's ``filename``
    (the kubelet's path) still names its container."""
    at = datetime(2025, 2, 19, 9, 34, 1, tzinfo=UTC)
    out = []
    for k, node in enumerate(["gke-prod-pool-1-3f6a-x7k2", "gke-prod-pool-1-3f6a-m2d8"]):
        path = f"/var/log/pods/kube-system_kube-proxy-{node}_0a1b{k}/kube-proxy/0.log"
        labels = f'{{filename="{path}", node_name="{node}", pod="kube-proxy-{node}"}}'
        line = klog_head("E", at, "proxier.go:1520") + '"Failed to execute iptables-restore"'
        out.append(f"{at.isoformat(timespec='seconds')} {labels} {line}")
    loaded = read("loki-export.txt", "\n".join(out) + "\n")
    assert set(loaded.events["component"]) == {"kube-proxy"}
    assert loaded.events["host"].n_unique() == 2


def test_detect_reads_a_pretty_export_the_sample_cuts_off_as_parse_does(tmp_path):
    """A zap logger's JSON lines, which Cloud Logging keeps as ``jsonPayload``: detect
    looks at the first lines only, and a record they cut off is no line of the format."""
    entries = [
        {
            "insertId": f"x{k:05d}",
            "jsonPayload": {
                "caller": "payments/client.go:88",
                "level": "error" if k % 3 else "info",
                "msg": "payment provider call failed",
                "provider": "acme-pay",
                "ts": 1739957641.5 + k,
                "error": "dial tcp: lookup api.acme-pay.example: i/o timeout",
            },
            "labels": {"compute.googleapis.com/resource_name": "gke-prod-pool-1-3f6a-x7k2"},
            "logName": "projects/shop/logs/stderr",
            "resource": {"labels": {"container_name": "api", "pod_name": "checkout-api-5c9"}},
            "severity": "ERROR",
            "timestamp": f"2025-02-19T09:34:{k % 60:02d}.5Z",
        }
        for k in range(40)
    ]
    path = tmp_path / "gcloud-checkout.json"
    path.write_text(json.dumps(entries, indent=2, sort_keys=True))
    assert len(path.read_text().splitlines()) > 200  # more than the sample holds
    found = mapper.detect(str(path))
    assert (found["format"], found["wrappers"]) == ("go-json", ["cloud-logging"])


# --- exports as APIs return them, and records of other shapes ---------------------------


@pytest.mark.parametrize("hits", [3, 120])
def test_a_one_line_export_gives_one_row_a_record(read, hits):
    """Elasticsearch, Loki and Splunk APIs answer on one line unless asked to pretty-print:
    the records share that line, and each is one row."""
    lines = [x for x in CLUSTERS["eks"] if x.container != "rabbitmq" and x.text[0] not in "\t "]
    picked = [lines[k % len(lines)] for k in range(hits)]
    document = json.loads(elasticsearch_search(picked))
    loaded = read("search.json", json.dumps(document))
    assert loaded.events.height == hits
    assert set(loaded.events["line"]) == {1}
    assert loaded.summary.unparsed_lines == 0


def test_records_with_lists_and_half_surrogates_of_their_own_stay_records(read):
    lines = CLUSTERS["gke"][:5]
    records = [json.loads(r) for r in fluent_bit_cri(lines).splitlines()]
    records[0]["results"] = [{"id": 2}, {"id": 3}]  # Merge_Log puts an app's fields beside
    records[4]["log"] += " \udc80"
    text = "\n".join(json.dumps(r) for r in records) + "\n"
    loaded = read("fluent.json", text.replace("\\udc80", "\\udc80"))
    assert loaded.events.height == 3  # an info line, the error with its block, CoreDNS
    assert loaded.summary.unparsed_lines == 0
    assert set(loaded.events["host"]) == {lines[0].node}


@pytest.mark.parametrize(
    "line",
    [
        '{"level":"error","ts":1678816801.5,"msg":"request failed","log":"access","stream":"x"}',
        '{"time":"2023-03-14T18:00:01Z","level":"ERROR","msg":"request failed","log":"audit",'
        '"date":"2023-03-14"}',
        '{"@timestamp":"2023-03-14T18:00:01.123Z","@version":"1","message":"request failed",'
        '"logger_name":"com.example.Api","thread_name":"main","level":"ERROR"}',
    ],
)
def test_a_programs_json_with_collector_like_keys_stays_the_programs(read, line):
    assert envelopes.detect([line] * 4) == (None, 0.0)
    loaded = read("app.json", (line + "\n") * 4)
    assert loaded.events["level"].cast(pl.String).to_list() == ["error"] * 4
    assert loaded.events["message"].str.contains("request failed").all()


def test_a_collectors_banner_before_its_records_does_not_hide_them(read):
    lines = CLUSTERS["eks"][:8]
    loaded = read("fluent-bit.log", "Fluent Bit v2.1.8\n" + fluent_bit_cri(lines))
    assert loaded.summary.files["prefix"][0] == "fluent"
    assert loaded.events.filter(pl.col("level") == "error").height == 3  # 2 syncs, 1 DNS


UP = klog_head("I", datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC), "proxier.go:853") + '"up"'


def test_split_lines_of_two_pods_are_joined_each_to_its_own(read):
    at = "2023-03-14T18:00:01.123456789Z"
    head = 'E0314 18:00:01.123456       1 handler.go:88] "request failed" body="'
    records = [
        {"time": at, "stream": "stderr", "_p": "P", "log": head + "x" * (16384 - len(head))}
        | {"kubernetes": {"pod_name": "api-1", "host": "node-1", "container_name": "api"}},
        {"time": at, "stream": "stderr", "_p": "F", "log": UP}
        | {"kubernetes": {"pod_name": "kube-proxy-2", "host": "node-2", "container_name": "kp"}},
        {"time": at, "stream": "stderr", "_p": "F", "log": 'y"'}
        | {"kubernetes": {"pod_name": "api-1", "host": "node-1", "container_name": "api"}},
    ]
    loaded = read("fluent.json", "\n".join(map(compact, records)) + "\n")
    by_host = {r["host"]: r for r in loaded.events.iter_rows(named=True)}
    assert by_host["node-2"]["message"] == '"up"'
    assert by_host["node-1"]["level"] == "error" and by_host["node-1"]["message"].endswith('y"')


def test_a_panic_reads_the_same_in_a_collectors_records_as_behind_a_runtime(read):
    at = datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC)
    texts = [
        klog_head("I", at, "server.go:42") + '"Starting"',
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/app/main.go:12 +0x1d",
        "exit status 2",
    ]
    lines = [Line(at, "node-1", "web-1", "web", "stderr", t) for t in texts]
    cri = "".join(f"{cri_time(x.at)} stderr F {x.text}\n" for x in lines)
    as_cri = read("web-cri.log", cri).events
    as_fluent = read("web.json", fluent_bit_cri(lines)).events
    assert as_fluent.height == as_cri.height
    assert as_fluent["level"].to_list() == as_cri["level"].to_list()


@pytest.mark.parametrize(
    ("name", "outer"),
    [
        ("cri.log", lambda x, record: f"{cri_time(x.at)} stdout F {record}"),
        ("kubectl.log", lambda x, record: f"[pod/fluent-bit-7xk2p/fluent-bit] {record}"),
    ],
)
def test_a_collectors_own_output_read_through_its_runtime(read, name, outer):
    """``kubectl logs fluent-bit`` (its stdout output in JSON lines) behind the runtime's
    prefix or kubectl's: the records inside are peeled too."""
    lines = CLUSTERS["eks"][:8]
    records = fluent_bit_cri(lines).splitlines()
    wrapped = [outer(x, r) for x, r in zip(lines, records, strict=True)]
    loaded = read(name, "\n".join(wrapped) + "\n")
    assert loaded.summary.files["prefix"][0].endswith("> fluent")
    assert set(loaded.events["host"]) <= {x.node for x in lines}
    assert loaded.events.filter(pl.col("level") == "error").height == 3  # 2 syncs, 1 DNS


def test_logcli_with_every_label_shared_prints_empty_labels(read):
    at = datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC)
    line = klog_head("E", at, "proxier.go:1520") + '"Failed to execute iptables-restore"'
    loaded = read("loki.txt", f"2023-03-14T18:00:01Z {{}} {line}\n" * 3)
    assert loaded.summary.files["prefix"][0] == "logcli"
    assert loaded.events["level"].cast(pl.String).to_list() == ["error"] * 3


@pytest.mark.parametrize(
    "record",
    [
        # ECS FireLens and Docker's fluentd log driver
        {"container_id": "3f2a", "container_name": "/web", "source": "stderr", "log": "{text}"},
        # OpenTelemetry-style flattened keys
        {"k8s.pod.name": "web-1", "k8s.node.name": "node-9", "log": "{text}", "time": "{at}"},
        # an ECS document with dotted keys
        {
            "@timestamp": "{at}",
            "message": "{text}",
            "kubernetes.pod.name": "web-1",
            "kubernetes.node.name": "node-9",
        },
    ],
)
def test_collector_records_of_other_shapes(read, record):
    text = "ERROR:payments:upstream timed out"
    filled = json.dumps(record).replace("{text}", text).replace("{at}", "2023-03-14T18:00:01Z")
    loaded = read("records.json", (filled + "\n") * 3)
    assert loaded.summary.files["prefix"][0] in envelopes.ENVELOPES
    assert loaded.events["level"].cast(pl.String).to_list() == ["error"] * 3
    if "node" in filled:
        assert set(loaded.events["host"]) == {"node-9"}


@pytest.mark.parametrize("pieces", [5, 9])
def test_big_files_are_cut_neither_inside_a_split_line_nor_a_docker_line(tmp_path, pieces):
    at = "2023-03-14T18:00:01.5Z"
    meta = {"kubernetes": {"pod_name": "api-1", "host": "node-1", "container_name": "api"}}
    head = "2023-03-15 02:50:01.695172+00:00 [error] <0.1.0> queue: "
    fluent, docker = [], []
    for k in range(300):
        piece = head.replace("<0.1.0>", f"<0.{k}.0>") + "x" * (16384 - len(head))
        fluent.append(compact({"time": at, "stream": "stdout", "_p": "P", "log": piece} | meta))
        fluent.append(compact({"time": at, "stream": "stdout", "_p": "F", "log": "y"} | meta))
        docker.append(compact({"log": piece, "stream": "stdout", "time": at}))
        docker.append(compact({"log": "y\n", "stream": "stdout", "time": at}))
    for name, lines in (("fluent.json", fluent), ("docker.log", docker)):
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        tasks = mapper.plan(str(path), chunk_bytes=path.stat().st_size // pieces)
        results = [mapper.map_task(task) for task in tasks]
        assert sum(r.rows for r in results) == 300, name
        assert sum(int(r.warnings["unparsed"].sum()) for r in results) == 0, name


@pytest.mark.parametrize("ties", ["as written", "reversed"])
def test_a_newest_first_export_whatever_its_order_of_equal_times(read, ties):
    """A store sorted newest first lists lines of one time (a klog block's) in either
    order: each record is read whole."""
    lines = CLUSTERS["gke"]
    records = [
        {"labels": loki_labels(x), "line": x.text, "timestamp": cri_time(x.at)} for x in lines
    ]
    if ties == "as written":  # a stable sort on the time alone
        records = sorted(records, key=lambda r: r["timestamp"], reverse=True)
    else:
        records = records[::-1]
    loaded = read("loki.jsonl", "\n".join(map(go_json, records)) + "\n")
    assert loaded.summary.unparsed_lines == 0
    want = expected_records(lines)
    assert (
        loaded.events.filter(pl.col("level") == "error").height
        == want.filter(pl.col("level") == "error").height
    )


@pytest.mark.parametrize(
    "runtime",
    [
        lambda at: {"time": f"{at:%Y-%m-%dT%H:%M:%S.%f}000Z", "stream": "stdout", "_p": "F"},
        lambda at: {"date": at.timestamp(), "stream": "stdout"},
    ],
    ids=["cri-parser", "docker-parser"],
)
def test_a_clusters_export_reads_each_formats_programs_in_one_call(tmp_path, monkeypatch, runtime):
    """A collector's export of a whole cluster holds hundreds of programs, each a stream
    of its own on each node, beside the programs of a known format (kube-proxy's klog,
    the most lines here). The streams of a format whose records are single lines (JSON
    or logfmt loggers) begin with a record, so they are read together, not one call a
    stream, also where the runtime's lines are not records (containerd's, which a
    program's record may take several of); each line still gives its own program's row."""
    calls: dict[str, int] = {}
    for name in ("go-json", "logfmt"):
        parser = registry.get(name)

        def counted(lines, parse=parser.parse, name=name):
            calls[name] = calls.get(name, 0) + 1
            return parse(lines)

        monkeypatch.setitem(registry._PARSERS, name, replace(parser, parse=counted))
    rng = random.Random(5)
    programs = [f"{rng.choice(('orders', 'ledger', 'search'))}-{n:02d}" for n in range(24)]
    start = datetime(2024, 5, 6, 7, 30, tzinfo=UTC)
    records, expected = [], {}
    for k in range(480):
        program = rng.choice(programs) if k % 5 < 2 else "kube-proxy"
        at = start + timedelta(seconds=k * 1.5)
        level = rng.choice(("info", "info", "warn", "error"))
        if program == "kube-proxy":
            level = "info"
            log = f'I{at:%m%d %H:%M:%S.%f}       1 proxier.go:820] "call {k} done"'
        elif programs.index(program) % 2:
            log = json.dumps({"level": level, "ts": at.timestamp(), "msg": f"call {k} done"})
        else:
            log = f'time="{at:%Y-%m-%dT%H:%M:%S.%fZ}" level={level} msg="call {k} done"'
        meta = {"pod_name": f"{program}-6c9d-{rng.choice('abc')}", "container_name": program}
        meta["host"] = f"ip-10-3-{rng.randint(1, 6)}-9.eu-west-1.compute.internal"
        records.append(runtime(at) | {"log": log, "kubernetes": meta})
        expected[k + 1] = (program, "warning" if level == "warn" else level, meta["host"])
    path = tmp_path / "cluster.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    events = timeline.load(str(path), year=2024, cache=False, workers=1)
    assert events.height == len(records)
    got = {
        line: (component, level, host)
        for line, component, level, host in events.select(
            "line", "component", pl.col("level").cast(pl.String), "host"
        ).iter_rows()
    }
    assert got == expected
    assert events["message"].str.contains(r"^\"?call [0-9]+ done\"?$").all()
    assert calls == {"go-json": 1, "logfmt": 1}


# --- OpenTelemetry's OTLP JSON -----------------------------------------------------------


def level_of(line: str) -> str:
    """The level of a klog, CoreDNS or RabbitMQ line of :func:`cluster`."""
    for mark, level in (("[ERROR]", "error"), ("[warning]", "warning"), ("[INFO]", "info")):
        if mark in line:
            return level
    return {"I": "info", "E": "error", "W": "warning"}[line[0]]


def batch_rows(text: str) -> list[tuple[int, str, str]]:
    """``(line, node, body)`` of each record of each batch line, as Python reads them."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        for resource in json.loads(line)["resourceLogs"]:
            names = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
            for scope in resource["scopeLogs"]:
                for record in scope["logRecords"]:
                    node = names["k8s.node.name"]["stringValue"]
                    out.append((number, node, record["body"]["stringValue"]))
    return out


@pytest.mark.parametrize("seed", [1, 2, 8])
def test_each_record_of_an_otlp_batch_is_a_row_on_the_batchs_line(read, seed):
    """Batches of 1 to 7 records of several pods: a row a record (a klog block's lines,
    which may fall into the next batch, joined to their first), on its batch's line,
    named by its own resource's node."""
    lines = CLUSTERS["eks"] + CLUSTERS["gke"]
    rng = random.Random(seed)
    text = "\n".join(compact(otlp_batch(b, rng)) for b in otlp_batches(lines, seed)) + "\n"
    loaded = read("otelcol-export.json", text)
    files = loaded.summary.files.row(0, named=True)
    assert (files["prefix"], files["unparsed_lines"]) == ("otlp", 0)
    assert files["first_lines"] + files["continuation_lines"] == files["lines"]
    heads = [
        (number, node, level_of(body))
        for number, node, body in batch_rows(text)
        if not body.startswith(("\t", " >")) and "Publishers" not in body
    ]
    got = loaded.events.select("line", "host", pl.col("level").cast(pl.String))
    assert sorted(got.rows()) == sorted(heads)
    assert set(loaded.events["component"]) == {"kube-proxy", "coredns", "rabbitmq"}


def otlp_line(records: list[dict], resource: dict[str, str]) -> str:
    attributes = otlp_attributes(resource, random.Random(0))
    scopes = [{"scope": {"name": "filelog"}, "logRecords": records}]
    return compact(
        {"resourceLogs": [{"resource": {"attributes": attributes}, "scopeLogs": scopes}]}
    )


def body(text: str, **fields) -> dict:
    return {"body": {"stringValue": text}} | fields


RABBIT = "2023-03-15 02:50:01.695172+00:00 [error] <0.1.0> queue 'orders' down"


@pytest.mark.parametrize(
    ("resource", "host", "component"),
    [
        ({"host.name": "ip-10-0-1-5", "service.name": "web"}, "ip-10-0-1-5", None),
        ({}, "web-7d9f-x2v9q", "nginx"),  # only the record's path names them
        (
            {"k8s.pod.name": "web-7d9f-x2v9q", "k8s.container.name": "nginx"},
            "web-7d9f-x2v9q",
            "nginx",
        ),
    ],
)
def test_an_otlp_record_is_named_by_what_its_resource_or_path_says(read, resource, host, component):
    path = "/var/log/pods/shop_web-7d9f-x2v9q_0a1b2c/nginx/0.log"
    attributes = otlp_attributes(
        {"log.file.path": path, "log.iostream": "stdout"}, random.Random(1)
    )
    records = [body(RABBIT, timeUnixNano="1678848601695172000", attributes=attributes)]
    loaded = read("otel.jsonl", otlp_line(records, resource) + "\n")
    assert loaded.events.select("host", "level").rows() == [(host, "error")]
    if component:
        assert loaded.events["component"].to_list() == [component]


def test_an_otlp_records_time_is_its_own_else_the_observed_else_the_programs(read):
    """``timeUnixNano`` of 0 is unknown: the time the collector saw the line, and without
    that either, the program's own."""
    at = datetime(2023, 3, 14, 18, 0, 1, 250000, tzinfo=UTC)
    seen = at + timedelta(seconds=3)
    records = [
        body("request served", timeUnixNano=unix_nanos(at), observedTimeUnixNano=unix_nanos(seen)),
        body("request served", timeUnixNano="0", observedTimeUnixNano=unix_nanos(seen)),
        body("request served", observedTimeUnixNano=unix_nanos(seen)),
    ]
    lines = [otlp_line([r], {"k8s.pod.name": f"web-{k}"}) for k, r in enumerate(records)]
    loaded = read("otel.jsonl", "\n".join(lines) + "\n")
    assert loaded.events.sort("line")["ts"].to_list() == [at, seen, seen]
    unknown = body(RABBIT, timeUnixNano="0", observedTimeUnixNano="0")
    loaded = read("otel-mq.jsonl", otlp_line([unknown], {"k8s.pod.name": "mq-0"}) + "\n")
    assert loaded.events["ts"].to_list() == [datetime(2023, 3, 15, 2, 50, 1, 695172, tzinfo=UTC)]


def test_an_otlp_severity_is_the_level_and_the_stream_never_is(read):
    """A severity is set by a parser in the collector, from the line: the program's
    level. A record without one gets none from its stream."""
    stderr = otlp_attributes({"log.iostream": "stderr"}, random.Random(2))
    records = [
        body("payment declined", severityNumber=17, severityText="ERROR"),
        body("retrying payment", severityText="WARN"),
        body("payment provider slow", severityNumber="SEVERITY_NUMBER_WARN2"),
        body("GET /healthz 200", severityNumber=0),
        body("GET /healthz 200"),
    ]
    for k, record in enumerate(records):
        record |= {"timeUnixNano": f"167881680{k}000000000", "attributes": stderr}
    loaded = read("otel.jsonl", otlp_line(records, {"k8s.pod.name": "pay-1"}) + "\n")
    levels = loaded.events.sort("message")["level"].cast(pl.String).to_list()
    assert sorted(zip(loaded.events.sort("message")["message"], levels, strict=True)) == [
        ("GET /healthz 200", None),
        ("GET /healthz 200", None),
        ("payment declined", "error"),
        ("payment provider slow", "warning"),
        ("retrying payment", "warning"),
    ]
    assert set(loaded.events["line"]) == {1}


def test_a_structured_otlp_body_is_read_as_the_programs_json(read):
    """A body the collector parsed into key/values (``kvlistValue``) is the JSON object it
    stands for, read by the program's JSON format."""

    def kv(key: str, value: dict) -> dict:
        return {"key": key, "value": value}

    values = [
        kv("level", {"stringValue": "error"}),
        kv("msg", {"stringValue": "payment declined <card>"}),
        kv("order", {"intValue": "7"}),
        kv("retry", {"boolValue": False}),
        kv("ctx", {"kvlistValue": {"values": [kv("a", {"stringValue": "b"})]}}),
    ]
    record = {"timeUnixNano": "1678816801000000000", "body": {"kvlistValue": {"values": values}}}
    line = otlp_line([record], {"k8s.pod.name": "pay-1"}).replace("<", "\\u003c")
    loaded = read("otel.jsonl", f"{line}\n{line}\n")
    events = loaded.events
    assert events["level"].cast(pl.String).to_list() == ["error", "error"]
    assert events["message"].str.contains("payment declined <card>", literal=True).all()
    assert json.loads(events["attrs"][0])["order"] == 7


def test_otlp_bodies_that_are_lists_or_none_are_their_records_own_text(read):
    """A list body is the JSON array of its values; a record without a body (an event
    told by its attributes) is its attributes: never the flattened record itself."""
    at = {"timeUnixNano": "1678816801000000000", "severityText": "WARN"}
    records = [
        at | {"body": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}}},
        at | {"attributes": [{"key": "event.name", "value": {"stringValue": "pod.evicted"}}]},
        at | {"body": {}},
    ]
    line = otlp_line(records, {"k8s.pod.name": "web-1", "k8s.container.name": "web"})
    loaded = read("otel.jsonl", f"{line}\n")
    events = loaded.events
    assert sorted(events["message"]) == ['["a",2]', '{"event.name":"pod.evicted"}', "{}"]
    assert events["level"].cast(pl.String).to_list() == ["warning"] * 3
    assert loaded.summary.unparsed_lines == 0


def test_log_batches_among_a_shared_exporters_traces_and_metrics_are_read(read):
    """One ``file`` exporter in the traces, metrics and logs pipelines writes all three
    signals' batches to one file, and an idle one writes empty batches: the log records
    are read, and every other line is still a line of the file."""
    logs = [
        otlp_line([body(f"upstream timeout {k}", severityNumber=17)], {"host.name": "vm-3"})
        for k in range(4)
    ]
    spans = compact({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [{}]}]}]})
    metrics = compact({"resourceMetrics": [{"resource": {}, "scopeMetrics": []}]})
    empty = compact({"resourceLogs": []})
    lines = [x for log in logs for x in (spans, log, metrics, empty)]
    loaded = read("otel-all.jsonl", "\n".join(lines) + "\n")
    events = loaded.events
    errors = events.filter(pl.col("level") == "error").sort("line")
    assert errors["message"].to_list() == [f"upstream timeout {k}" for k in range(4)]
    assert errors["line"].to_list() == [2, 6, 10, 14]
    assert events.height + loaded.summary.unparsed_lines == len(lines)


def test_a_pretty_printed_otlp_export_reads_as_its_lines(read):
    lines = CLUSTERS["gke"]
    rng = random.Random(4)
    batches = [otlp_batch(b, rng) for b in otlp_batches(lines)]
    one_a_line = read("otel.jsonl", "\n".join(map(compact, batches)) + "\n").events
    pretty = read("otel.json", "".join(json.dumps(b, indent=2) + "\n" for b in batches))
    assert pretty.summary.unparsed_lines == 0
    assert pretty.events.height == one_a_line.height
    assert (
        pretty.events.select("ts", "host", "level")
        .sort("ts")
        .equals(one_a_line.select("ts", "host", "level").sort("ts"))
    )


@pytest.mark.parametrize(
    "line",
    [
        # a program's own JSON that names a resource or has a body
        '{"level":"error","ts":1678816801.5,"msg":"cannot list","resource":"pods","body":"x"}',
        '{"ts":"2023-03-14T18:00:01Z","level":"error","msg":"request failed",'
        '"resource":{"type":"k8s_container","attributes":{"pod":"web-1"}},"body":{"size":3}}',
        '{"severity":"ERROR","msg":"request failed","logRecord":"audit","resourceLogs":3}',
    ],
)
def test_a_programs_json_with_otlp_like_keys_is_no_otlp(read, line):
    assert otlp.records_sample([line]) == [line]
    assert not pl.select(envelopes.carries(envelopes.ENVELOPES["otlp"], pl.lit(line))).item()
    assert envelopes.detect([line] * 4) == (None, 0.0)
    loaded = read("app.json", (line + "\n") * 4)
    assert loaded.summary.files["prefix"][0] is None
    assert loaded.events["level"].cast(pl.String).to_list() == ["error"] * 4


def test_odd_otlp_batches_cost_only_their_own_lines(read):
    """A batch cut off, batches of no record, JSON of another shape under
    ``resourceLogs``: each an account of its own line, the records around them read."""
    lines = [x for x in CLUSTERS["eks"] if x.container == "coredns"] * 5
    rng = random.Random(6)
    good = [compact(otlp_batch([x], rng)) for x in lines]
    odd = [
        good[0][: len(good[0]) // 2],
        '{"resourceLogs":[]}',
        '{"resourceLogs":[{"resource":{},"scopeLogs":[]}]}',
        '{"resourceLogs":[{"resource":{},"scopeLogs":[{"scope":{},"logRecords":[]}]}]}',
        '{"resourceLogs":[{"resource":{"attributes":{"k8s.pod.name":"x"}},"scopeLogs":3}]}',
        '{"resourceLogs":{"oops":true}}',
    ]
    text = [good[0], *odd, *good[1:]]
    loaded = read("otel.jsonl", "\n".join(text) + "\n")
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "otlp"
    assert files["first_lines"] + files["continuation_lines"] + files["unparsed_lines"] + files[
        "wrapper_lines"
    ] == len(text)
    read_lines = loaded.events.filter(pl.col("source") == "coredns")["line"].to_list()
    assert sorted(read_lines) == [1, *range(len(odd) + 2, len(text) + 1)]
    assert set(loaded.events["host"].drop_nulls()) <= {x.node for x in lines}


def test_a_huge_otlp_batch_gives_all_its_rows_or_says_it_was_cut(read):
    """A batch of 1,500 records is 1,500 rows on its line; one longer than the longest
    line kept is cut, which its line's note says, and costs no other line."""
    at = datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC)
    query = '"A IN a.example. udp 54 false 512" NOERROR qr 1 0.1s'
    many = [
        Line(at + timedelta(milliseconds=k), "node-1", "coredns-1", "coredns", "stdout", text)
        for k in range(3000)
        for text in [f"[INFO] 10.244.0.5:{k} - 1 {query}"]
    ]
    rng = random.Random(7)
    big = compact(otlp_batch(many, rng))
    assert 1 << 20 < len(big) < 2 << 20
    half = compact(otlp_batch(many[:1500], rng))
    tail = compact(otlp_batch(many[:2], rng))
    loaded = read("otel.jsonl", f"{half}\n{big}\n{tail}\n")
    files = loaded.summary.files.row(0, named=True)
    coredns = loaded.events.filter(pl.col("source") == "coredns")
    assert coredns.group_by("line").len().sort("line").rows() == [(1, 1500), (3, 2)]
    assert files["first_lines"] + files["unparsed_lines"] == 3
    notes = loaded.summary.warnings.filter(pl.col("line") == 2)["reason"].to_list()
    assert notes == [f"line is {len(big):,} bytes long; kept the first {1 << 20:,}"]


def test_a_big_otlp_file_is_cut_between_batches(tmp_path):
    path = tmp_path / "otel.jsonl"
    lines = [x for x in CLUSTERS["eks"] if x.container != "rabbitmq"]  # as above
    path.write_text(otel_file_exporter(lines * 300))
    whole = mapper.map_task(mapper.Task(str(path))).rows
    for pieces in (3, 8):
        tasks = mapper.plan(str(path), chunk_bytes=path.stat().st_size // pieces)
        assert len(tasks) >= pieces - 1
        results = [mapper.map_task(task) for task in tasks]
        assert sum(r.rows for r in results) == whole, pieces
        assert sum(int(r.warnings["unparsed"].sum()) for r in results) == 0, pieces


# --- Fluentd's stdout output -------------------------------------------------------------


@pytest.mark.parametrize("fraction", [True, False])
def test_fluentd_stdout_gives_the_time_in_its_zone_and_names_the_pod_by_its_tag(read, fraction):
    """Fluentd's in_tail takes the ``time`` out of the record: the line's time is the
    one out_stdout writes, in Fluentd's zone (nanoseconds since v1.8, seconds before);
    a record without metadata is named by its tag. Fluentd's own log lines stand alone."""
    at = datetime(2024, 12, 31, 23, 59, 58, 120331, tzinfo=UTC)
    zone = timezone(timedelta(hours=9))
    out = ["2025-01-01 08:59:50 +0900 [info]: #0 fluentd worker is now running worker=0"]
    for k, level in enumerate("IEI"):
        x = Line(at + timedelta(seconds=k), "", "kube-proxy-x7k2p", "kube-proxy", "stderr", "")
        text = klog_head(level, x.at, "proxier.go:861") + '"Syncing iptables rules"'
        local = x.at.astimezone(zone)
        written = f"{local:%Y-%m-%d %H:%M:%S}" + (
            f".{local.microsecond:06d}123" if fraction else ""
        )
        tag = "kube" + log_path(x).replace("/", ".")
        out.append(f"{written} {local:%z} {tag}: {compact({'log': text, 'stream': 'stderr'})}")
    loaded = read("fluentd.log", "\n".join(out) + "\n")
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "fluentd-stdout > fluent"
    accounted = files["first_lines"] + files["continuation_lines"] + files["unparsed_lines"]
    assert accounted == len(out)
    klog = loaded.events.filter(pl.col("component") == "kube-proxy").sort("line")
    assert klog["ts"].to_list() == [at + timedelta(seconds=k) for k in range(3)]
    assert set(klog["host"]) == {"kube-proxy-x7k2p"}
    assert klog["level"].cast(pl.String).to_list() == ["info", "error", "info"]


def fluentd_log(at: datetime, zone: timezone, level: str, message: str, worker: str = "") -> str:
    """One of Fluentd's own log lines (``lib/fluent/log.rb``): its time to the second in
    its zone, ``[level]:``, the worker (``#0 ``; none in the supervisor), the message."""
    local = at.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S %z} [{level}]: {worker}{message}"


def fluentd_config_dump(at: datetime, zone: timezone, sections: int) -> list[str]:
    """The configuration Fluentd logs at start-up: one message over many lines."""
    dump = [fluentd_log(at, zone, "info", "using configuration file: <ROOT>")]
    for k in range(sections):
        dump += ["  <source>", "    @type tail", f'    path "/var/log/containers/{k}*.log"']
        dump += ["    <parse>", "      @type cri", "    </parse>", "  </source>"]
    return [*dump, "  <match **>", "    @type stdout", "  </match>", "</ROOT>"]


def fluentd_record(x: Line, zone: timezone, *, fraction: bool) -> str:
    """out_stdout's line of a container's record (in_tail took its ``time`` out)."""
    local = x.at.astimezone(zone)
    written = f"{local:%Y-%m-%d %H:%M:%S}" + (f".{local.microsecond:06d}123" if fraction else "")
    tag = "kubernetes" + log_path(x).replace("/", ".")
    return f"{written} {local:%z} {tag}: {compact({'log': x.text + chr(10), 'stream': x.stream})}"


def in_cri(lines: list[str], at: datetime) -> list[str]:
    """Lines as the node's runtime keeps a container's output (``0.log``), written a
    moment after the times they state."""
    return [
        f"{cri_time(at + timedelta(seconds=1, milliseconds=k))} stdout F {s}"
        for k, s in enumerate(lines)
    ]


@pytest.mark.parametrize("outer", ["kubectl", "cri"])
@pytest.mark.parametrize(
    ("sections", "zone", "fraction"),
    [
        (1, UTC, True),
        (40, timezone(timedelta(hours=-5)), False),
        (3, timezone(timedelta(hours=5, minutes=30)), True),
    ],
)
def test_a_fluentd_pods_output_from_start_up_reads_its_records(
    read, outer, sections, zone, fraction
):
    """``kubectl logs`` of a Fluentd pod from its start (and its ``0.log`` on the node):
    the configuration it logs over many lines, longer than the sample, and its own lines
    before the records do not hide the records. The dump is Fluentd's (counted as its
    lines), every line is accounted for."""
    start = datetime(2023, 3, 14, 18, 59, 58, tzinfo=UTC)
    own = [
        fluentd_log(
            start, zone, "info", 'parsing config file is succeeded path="/fluentd/etc/fluent.conf"'
        ),
        *fluentd_config_dump(start, zone, sections),
        fluentd_log(start, zone, "info", 'starting fluentd-1.16.2 pid=7 ruby="3.1.4"'),
        fluentd_log(start, zone, "info", "starting fluentd worker pid=17 ppid=7 worker=0", "#0 "),
    ]
    lines = []
    for k in range(12):
        x = Line(
            start + timedelta(seconds=2 + k), "", "kube-proxy-x7k2p", "kube-proxy", "stderr", ""
        )
        lines.append(
            replace(x, text=klog_head("EI"[k % 2], x.at, "proxier.go:1520") + f'"Sync {k}"')
        )
    out = own + [fluentd_record(x, zone, fraction=fraction) for x in lines]
    if outer == "cri":
        out = in_cri(out, start)
    loaded = read("fluentd.log", "\n".join(out) + "\n")
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == ("cri > " if outer == "cri" else "") + "fluentd-stdout > fluent"
    dump = len(fluentd_config_dump(start, zone, sections)) - 1
    assert files["wrapper_lines"] == dump
    assert files["unparsed_lines"] == 0
    accounted = sum(
        files[k] for k in ("first_lines", "continuation_lines", "unparsed_lines", "wrapper_lines")
    )
    assert accounted == len(out)
    klog = loaded.events.filter(pl.col("component") == "kube-proxy").sort("line")
    assert klog["ts"].to_list() == [x.at.replace(microsecond=x.at.microsecond) for x in lines]
    assert klog["level"].cast(pl.String).to_list() == ["error", "info"] * 6
    fluentd = loaded.events.filter(pl.col("component") == "fluentd")
    assert fluentd.height == 4
    assert set(fluentd["ts"]) == {start}
    assert "using configuration file: <ROOT>" in fluentd["message"].to_list()


@pytest.mark.parametrize("outer", ["kubectl", "cri"])
@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-3))])
def test_fluentds_own_lines_keep_their_time_and_level(read, outer, zone):
    """Fluentd's own ``[warn]:`` and ``[error]:`` lines among the records it prints, with
    the worker or without, and the events it emits of its own log (``fluent.warn``),
    are Fluentd's rows at the time (in its zone) and level they state; a backtrace's
    indented lines continue the error."""
    at = datetime(2023, 3, 14, 18, 59, 59, tzinfo=UTC)
    x = Line(
        at, "", "kube-proxy-x7k2p", "kube-proxy", "stderr", klog_head("I", at, "a.go:1") + '"up"'
    )
    own_event = {"message": "failed to flush the buffer.", "retry_times": 1, "error": "timeout"}
    local = (at + timedelta(seconds=4)).astimezone(zone)
    out = [
        fluentd_log(at, zone, "info", "starting fluentd worker pid=17 ppid=7 worker=0", "#0 "),
        fluentd_record(x, zone, fraction=True),
        fluentd_log(
            at + timedelta(seconds=1),
            zone,
            "warn",
            "failed to flush the buffer. retry_times=1",
            "#0 ",
        ),
        fluentd_log(
            at + timedelta(seconds=2),
            zone,
            "error",
            "unexpected error error_class=Errno::ECONNREFUSED",
        ),
        "  "
        + fluentd_log(
            at + timedelta(seconds=2),
            zone,
            "error",
            "/usr/lib/ruby/3.1.0/net/http.rb:987:in `connect'",
        ),
        fluentd_log(
            at + timedelta(seconds=3), zone, "fatal", "worker 0 finished unexpectedly with status 1"
        ),
        f"{local:%Y-%m-%d %H:%M:%S}.000000000 {local:%z} fluent.warn: {compact(own_event)}",
    ]
    if outer == "cri":
        out = in_cri(out, at)
    loaded = read("fluentd.log", "\n".join(out) + "\n")
    files = loaded.summary.files.row(0, named=True)
    assert files["unparsed_lines"] == 0
    assert files["continuation_lines"] == 1
    fluentd = loaded.events.filter(pl.col("component") == "fluentd").sort("line")
    assert fluentd["ts"].to_list() == [at + timedelta(seconds=k) for k in range(5)]
    assert fluentd["level"].cast(pl.String).to_list() == [
        "info",
        "warning",
        "error",
        "critical",
        "warning",
    ]
    assert set(fluentd["source"]) == {"fluentd"}
    assert fluentd["message"][2].endswith("in `connect'")
    assert fluentd["message"][4] == "failed to flush the buffer."
    assert loaded.events.filter(pl.col("component") == "kube-proxy")["ts"].to_list() == [at]


def test_a_fluentd_pods_log_on_a_node_among_other_pods_is_peeled_through(tmp_path):
    """A node's pod logs read together: the Fluentd pod's ``0.log`` (what it prints of
    what it collects, behind the runtime's prefix) is peeled further than the prefix."""
    at = datetime(2023, 3, 14, 18, 59, 59, tzinfo=UTC)
    pods = tmp_path / "node-4" / "var" / "log" / "pods"
    x = Line(
        at, "", "kube-proxy-x7k2p", "kube-proxy", "stderr", klog_head("E", at, "a.go:1") + '"down"'
    )
    lines = [
        fluentd_log(at, UTC, "warn", "pattern not matched", "#0 "),
        fluentd_record(x, UTC, fraction=True),
    ]
    fluentd = pods / "logging_fluentd-abcde_uid" / "fluentd" / "0.log"
    other = pods / "kube-system_coredns-x_uid" / "coredns" / "0.log"
    for path in (fluentd, other):
        path.parent.mkdir(parents=True)
    fluentd.write_text("\n".join(in_cri(lines, at)) + "\n")
    other.write_text(
        f"{cri_time(at)} stdout F [INFO] plugin/reload: Running configuration SHA512 = 1\n"
    )
    events = timeline.read(tmp_path, infer=False).events
    assert events.filter(pl.col("component") == "kube-proxy")["level"].cast(
        pl.String
    ).to_list() == ["error"]
    assert events.filter(pl.col("component") == "fluentd")["ts"].to_list() == [at]


# --- journald JSON: each program's line read in its own format -----------------------------


@dataclass(frozen=True)
class Entry:
    """One journal entry as journald writes it: the program's line and who wrote it."""

    at: datetime
    host: str
    unit: str | None
    identifier: str | None
    pid: int | None
    comm: str | None
    priority: int
    transport: str
    message: str


KUBELET_EXE = "/usr/bin/kubelet"
JOURNAL_START = datetime(2023, 3, 14, 17, 59, 58, 412907, tzinfo=UTC)


def kubelet(at: datetime, host: str, pid: int, line: str) -> Entry:
    return Entry(at, host, "kubelet.service", "kubelet", pid, "kubelet", 6, "stdout", line)


def kube_proxy(at: datetime, host: str, pid: int, line: str) -> Entry:
    return Entry(at, host, "kube-proxy.service", "kube-proxy", pid, "kube-proxy", 6, "stdout", line)


def containerd(at: datetime, host: str, line: str) -> Entry:
    return Entry(at, host, "containerd.service", "containerd", 812, "containerd", 6, "stdout", line)


def kernel(at: datetime, host: str, priority: int, line: str) -> Entry:
    return Entry(at, host, None, None, None, None, priority, "kernel", line)


def klog(level: str, at: datetime, pid: int, where: str) -> str:
    return f"{level}{at:%m%d %H:%M:%S.%f}    {pid} {where}] "


def journal_entries() -> list[Entry]:
    """Two nodes' journals, merged as ``journalctl -m`` lists them: kubelet's structured
    and printf-style klog lines, kube-proxy's iptables error as journald split it (one
    entry a line, one process, one moment), containerd's logfmt, the kernel's lines
    (no identifier of their own), systemd on a unit that failed."""
    a, b = "ip-10-0-1-5.ec2.internal", "ip-10-0-2-17.ec2.internal"
    t = JOURNAL_START
    s = timedelta(seconds=1)
    split = t + 7 * s + timedelta(microseconds=118)
    half = timedelta(milliseconds=500)
    return [
        kubelet(
            t, a, 1234, klog("I", t, 1234, "kubelet.go:1777") + "Starting kubelet main sync loop."
        ),
        kubelet(
            t + s,
            a,
            1234,
            klog("E", t + s, 1234, "pod_workers.go:1294")
            + '"Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"kube-proxy\\" '
            'with CrashLoopBackOff: \\"back-off 5m0s restarting failed container\\"" '
            'pod="kube-system/kube-proxy-x7k2p" podUID=4f3a2c1e-8b7d-4e9a-a1b2-c3d4e5f60718',
        ),
        containerd(
            t + 2 * s,
            a,
            'time="2023-03-14T18:00:00.512345678Z" level=error msg="RunPodSandbox for '
            "&PodSandboxMetadata{Name:api-7c9d5f-x2v9q,Uid:9a8b,Namespace:default,Attempt:0,} "
            'failed" error="failed to create containerd task: context deadline exceeded"',
        ),
        kubelet(
            t + 3 * s,
            b,
            2211,
            klog("W", t + 3 * s, 2211, "reflector.go:424")
            + "k8s.io/client-go/informers/factory.go:150: failed to list *v1.Service: "
            'Get "https://10.0.0.1:443/api/v1/services?limit=500": dial tcp 10.0.0.1:443: '
            "connect: connection refused",
        ),
        kernel(
            t + 4 * s, b, 3, "INFO: task jbd2/nvme0n1p1-8:412 blocked for more than 120 seconds."
        ),
        kernel(
            t + 5 * s,
            b,
            4,
            "TCP: request_sock_TCP: Possible SYN flooding on port 10250. Sending cookies.",
        ),
        containerd(
            t + 6 * s,
            b,
            'time="2023-03-14T18:00:04.009871233Z" level=info msg="StopPodSandbox for '
            '\\"5c2f7e\\" returns successfully"',
        ),
        kube_proxy(
            split,
            b,
            9234,
            klog("E", split, 9234, "proxier.go:1432")
            + '"Failed to execute iptables-restore" err=<',
        ),
        kube_proxy(
            split,
            b,
            9234,
            '\texit status 2: ip6tables-restore v1.8.7 (nf_tables): unknown option "--xor-mark"',
        ),
        kube_proxy(split, b, 9234, "\tError occurred at line: 11"),
        kube_proxy(
            split,
            b,
            9234,
            "\tTry `ip6tables-restore -h' or 'ip6tables-restore --help' for more information.",
        ),
        kube_proxy(split, b, 9234, " >"),
        kube_proxy(
            split + half,
            b,
            9234,
            klog("E", split + half, 9234, "proxier.go:193")
            + "Error removing pure-iptables proxy rule: error checking rule: exit status 2: "
            "iptables v1.4.21: Couldn't load target `KUBE-PORTALS-CONTAINER':No such file or "
            "directory",
        ),
        kube_proxy(
            split + half + timedelta(microseconds=37),
            b,
            9234,
            "Try `iptables -h' or 'iptables --help' for more information.",
        ),
        kubelet(
            t + 8 * s,
            a,
            1234,
            klog("I", t + 8 * s, 1234, "kubelet.go:2447")
            + '"SyncLoop (probe)" probe="readiness" status="" pod="kube-system/coredns-5d78c9869d-q8x2z"',
        ),
        Entry(
            t + 9 * s,
            a,
            "init.scope",
            "systemd",
            1,
            "systemd",
            5,
            "journal",
            "kubelet.service: Main process exited, code=exited, status=1/FAILURE",
        ),
    ]


#: Each entry's level: the klog letter and logfmt's level beat PRIORITY 6; the kernel's
#: PRIORITY 3 and 4 beat the words of its lines; the iptables error's lines are one row.
JOURNAL_LEVELS = [
    "info",
    "error",
    "error",
    "warning",
    "error",
    "warning",
    "info",
    "error",
    "error",
    "info",
    "error",
]
JOURNAL_COMPONENTS = [
    "kubelet",
    "kubelet",
    "containerd",
    "kubelet",
    "kernel",
    "kernel",
    "containerd",
    "kube-proxy",
    "kube-proxy",
    "kubelet",
    "systemd",
]


def journal_fields(entry: Entry, k: int) -> dict:
    """The fields journald writes, in its order (``journalctl -o json``)."""
    micros = int(entry.at.timestamp()) * 1_000_000 + entry.at.microsecond
    boot = (
        "4e8f0c5a1b2d4e6f8a9b0c1d2e3f4a5b"
        if entry.host.startswith("ip-10-0-1")
        else ("9a1b2c3d4e5f60718293a4b5c6d7e8f9")
    )
    fields: dict = {
        "__CURSOR": f"s=6f1c7a2b;i={0x1A2B + k:x};b={boot};m={0x2F5E1A + k:x};t={micros:x};x=9a8b{k}",
        "__REALTIME_TIMESTAMP": str(micros),
        "__MONOTONIC_TIMESTAMP": str(3112231 + 1000 * k),
        "_BOOT_ID": boot,
        "PRIORITY": str(entry.priority),
        "SYSLOG_FACILITY": "0" if entry.transport == "kernel" else "3",
        "_TRANSPORT": entry.transport,
        "_HOSTNAME": entry.host,
    }
    if entry.transport != "kernel":
        fields |= {
            "_UID": "0",
            "_GID": "0",
            "_SYSTEMD_UNIT": entry.unit,
            "SYSLOG_IDENTIFIER": entry.identifier,
            "_PID": str(entry.pid),
            "_COMM": entry.comm,
            "_EXE": f"/usr/bin/{entry.comm}"
            if entry.comm != "systemd"
            else "/usr/lib/systemd/systemd",
        }
    else:
        fields["_SOURCE_MONOTONIC_TIMESTAMP"] = str(3000000 + k)
    return fields | {"MESSAGE": entry.message}


def journalctl_json(entries: list[Entry], shape: str = "json") -> str:
    records = [journal_fields(e, k) for k, e in enumerate(entries)]
    if shape == "json":
        return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    if shape == "json-pretty":
        return "".join(json.dumps(r, indent=8) + "\n" for r in records)
    return "".join("\x1e" + json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def journalctl_short(entries: list[Entry]) -> str:
    """The same entries as plain ``journalctl -o short-precise`` prints them."""
    head = "-- Logs begin at Tue 2023-03-14 17:00:00 UTC, end at Tue 2023-03-14 18:10:00 UTC. --\n"
    lines = []
    for e in entries:
        tag = e.identifier or e.transport
        tag += f"[{e.pid}]" if e.pid else ""
        lines.append(f"{e.at:%b %d %H:%M:%S.%f} {e.host} {tag}: {e.message}\n")
    return head + "".join(lines)


def fluent_bit_systemd(entries: list[Entry], time_key: str) -> str:
    """Fluent Bit's ``systemd`` input through its ``file`` or ``stdout`` output as JSON
    lines: the journal's fields without ``__REALTIME_TIMESTAMP`` (no ``__`` fields at all),
    the time under ``date`` (seconds) or ``@timestamp``."""
    out = []
    for k, entry in enumerate(entries):
        fields = {
            key: value
            for key, value in journal_fields(entry, k).items()
            if not key.startswith("__")
        }
        if time_key == "date":
            stamp: object = round(entry.at.timestamp(), 6)
        else:
            stamp = entry.at.isoformat(timespec="microseconds").replace("+00:00", "Z")
        out.append(json.dumps({time_key: stamp} | fields, separators=(",", ":")) + "\n")
    return "".join(out)


def rows(loaded: timeline.Loaded) -> pl.DataFrame:
    return loaded.events.sort("line", maintain_order=True)


@pytest.mark.parametrize("shape", ["json", "json-pretty", "json-seq"])
def test_a_journal_entrys_line_reads_as_it_does_from_plain_journalctl(read, shape):
    """kubelet's error has one signature however its journal was exported: the line in
    ``MESSAGE`` is read by its program's format, as the same line is from ``journalctl``'s
    text, with the entry's host, unit, time and PRIORITY around it."""
    entries = journal_entries()
    loaded = read("journal.json", journalctl_json(entries, shape))
    text = read("kubelet.journal", journalctl_short(entries))
    assert every_line_accounted(loaded) and every_line_accounted(text)
    assert loaded.summary.unparsed_lines == 0
    assert loaded.summary.files["prefix"].to_list() == ["journald-json"]
    events, plain = rows(loaded), rows(text)
    assert events["template"].to_list() == plain["template"].to_list()
    assert events["message"].to_list() == plain["message"].to_list()
    assert events["template"][1] == "Error syncing pod, skipping"
    assert events["level"].to_list() == JOURNAL_LEVELS
    assert events["component"].to_list() == JOURNAL_COMPONENTS
    assert events["component"].to_list() == plain["component"].to_list()
    assert events["host"].to_list() == plain["host"].to_list()
    assert events["host"].n_unique() == 2
    klog_rows = events.filter(pl.col("source").is_in(["kubelet", "kube-proxy"]))
    callers = [json.loads(a).get("caller") for a in klog_rows["attrs"]]
    assert callers == [
        "kubelet.go:1777",
        "pod_workers.go:1294",
        "reflector.go:424",
        "proxier.go:1432",
        "proxier.go:193",
        "kubelet.go:2447",
    ]
    assert json.loads(events["attrs"][1])["pod"] == "kube-system/kube-proxy-x7k2p"
    assert json.loads(events["attrs"][1])["pid"] == "1234"
    # the iptables error's five entries are one row, its lines in the message
    # the iptables errors' entries are one row each: the indented lines of a klog block,
    # and the unindented line the same process wrote in the same write
    errors = events.filter(pl.col("component") == "kube-proxy")["message"].to_list()
    assert errors[0].splitlines()[-2].endswith("for more information.")
    assert errors[1].splitlines()[-1].startswith("Try `iptables -h'")


def test_a_journal_entrys_time_is_its_programs_else_the_journals(read):
    """klog's time is nearer the program (the year from the entry's); containerd's and
    the kernel's lines are at ``__REALTIME_TIMESTAMP``, to the microsecond. logfmt's
    ``time`` is containerd's own."""
    entries = journal_entries()
    events = rows(read("journal.json", journalctl_json(entries)))
    kept = [e for e in entries if not e.message.startswith(("\t", " ", "Try"))]
    expected = [
        e.at.replace(microsecond=int(e.message[15:21]))
        if e.message[:1] in "IWEF" and e.message[1:5].isdigit()
        else e.at
        for e in kept
    ]
    expected[2] = datetime(2023, 3, 14, 18, 0, 0, 512345, tzinfo=UTC)
    expected[6] = datetime(2023, 3, 14, 18, 0, 4, 9871, tzinfo=UTC)
    assert events["ts"].to_list() == expected
    assert events.filter(pl.col("component") == "kernel")["ts"].to_list() == [
        JOURNAL_START + timedelta(seconds=4),
        JOURNAL_START + timedelta(seconds=5),
    ]


@pytest.mark.parametrize("time_key", ["date", "@timestamp"])
def test_fluent_bits_systemd_records_read_as_the_journal_does(read, time_key):
    """Fluent Bit's ``systemd`` input hands on the journal's fields without
    ``__REALTIME_TIMESTAMP``, its time under its own key: the same rows as
    ``journalctl -o json`` gives."""
    entries = journal_entries()
    journal = rows(read("journal.json", journalctl_json(entries)))
    fluent = read("fluent-bit-systemd.log", fluent_bit_systemd(entries, time_key))
    assert every_line_accounted(fluent)
    assert fluent.summary.unparsed_lines == 0
    columns = ["ts", "level", "host", "component", "template", "message"]
    assert rows(fluent).select(columns).equals(journal.select(columns))


def test_a_journal_message_of_bytes_is_read_as_its_programs_line(read):
    """journald writes a ``MESSAGE`` that is not UTF-8 as an array of byte values: it is
    the program's line all the same, U+FFFD for the bytes that are not UTF-8."""
    at = JOURNAL_START
    line = klog("E", at, 1234, "kubelet.go:2448") + '"Error syncing pod, skipping" pod="café\udcff"'
    raw = line.encode("utf-8", "surrogateescape")
    entry = journal_fields(kubelet(at, "ip-10-0-1-5", 1234, line), 0) | {"MESSAGE": list(raw)}
    events = rows(read("journal.json", json.dumps(entry) + "\n"))
    assert events["template"].to_list() == ["Error syncing pod, skipping"]
    assert json.loads(events["attrs"][0])["pod"] == "café\ufffd"
    assert events["level"].to_list() == ["error"]


def test_a_kubelet_upgrade_in_a_journals_json_is_inferred_as_from_its_text(read):
    """Change inference reads kubelet's start-up lines in journald JSON as it reads them in
    ``journalctl``'s text: the same restart and upgrade, at the same times."""
    t = JOURNAL_START

    def started(at: datetime, pid: int, version: str) -> list[Entry]:
        later = at + timedelta(seconds=1)
        return [
            kubelet(
                at,
                "node-1",
                pid,
                klog("I", at, pid, "server.go:415")
                + f'"Kubelet version" kubeletVersion="{version}"',
            ),
            kubelet(
                later,
                "node-1",
                pid,
                klog("I", later, pid, "kubelet.go:1777") + "Starting kubelet main sync loop.",
            ),
        ]

    entries = started(t, 1234, "v1.26.2") + started(t + timedelta(minutes=10), 5678, "v1.27.1")
    columns = ["ts", "component", "message"]
    journal = read("journal.json", journalctl_json(entries), infer=True).events
    text = read("kubelet.journal", journalctl_short(entries), infer=True).events
    changes = journal.filter(pl.col("kind") == "change").select(columns).sort("ts")
    assert changes.equals(text.filter(pl.col("kind") == "change").select(columns).sort("ts"))
    assert (
        changes["message"][-1] == "kubelet on node-1 upgraded v1.26.2 -> v1.27.1 (kubelet started)"
    )


@pytest.mark.parametrize(
    ("row", "source", "at"),
    [
        # a raw CoreDNS line (Fluent Bit's ``log_key log``): Insights' time is the line's
        (
            {
                "@timestamp": "2024-01-01 00:00:03.007",
                "@message": "[ERROR] plugin/errors: 2 example.org. A: "
                "read udp 10.0.1.5:36797->10.0.0.2:53: i/o timeout",
                "@logStream": "coredns-5d78c9869d-abcde",
                "@ptr": "CmAKJwojMTIzNDU2Nzg5MDEyOi9hd3MvZWtzL3Byb2QvY2x1c3RlchAB",
            },
            "coredns",
            datetime(2024, 1, 1, 0, 0, 3, 7000, tzinfo=UTC),
        ),
        # the EKS control plane's log group: klog's own time, in the year of Insights';
        # the stream names the program
        (
            {
                "@log": "123456789012:/aws/eks/prod/cluster",
                "@logStream": "kube-scheduler-5b9e1c2f0a6d4e7f8a9b0c1d2e3f4a5b",
                "@message": 'E1231 23:59:58.250000      10 schedule_one.go:1004] "Error scheduling"',
                "@timestamp": "2023-12-31 23:59:58.251",
            },
            "kube-scheduler",
            datetime(2023, 12, 31, 23, 59, 58, 250000, tzinfo=UTC),
        ),
    ],
)
def test_logs_insights_time_is_utc_where_the_line_has_none(read, row, source, at):
    """Logs Insights writes ``@timestamp`` in UTC without saying so; a row's other fields
    are what the query asked for, in any order."""
    later = row | {"@timestamp": "2024-01-01 00:00:09.500", "@message": row["@message"]}
    loaded = read("logs-insights-results.json", json.dumps([later, row], indent=4))
    files = loaded.summary.files.row(0, named=True)
    assert (files["prefix"], files["unparsed_lines"]) == ("cloudwatch-insights", 0)
    events = loaded.events.sort("ts")
    assert set(events["source"]) == {source}
    assert events["ts"][0] == at
    assert events["level"].cast(pl.String).to_list() == ["error", "error"]


def test_containers_named_as_any_program_could_be_are_their_pods_workloads(read):
    """Two services whose containers are both ``app`` are two sources, named by their
    pods' workloads; a sidecar with a name of its own keeps it."""
    at = "2024-05-01T09:00:01.5Z"
    line = '{"level":"error","ts":1714554001.5,"msg":"upstream call failed"}'
    pods = [
        ("checkout-5d8f7b9c6-x7k2q", "app"),
        ("ledger-0", "main"),
        ("checkout-5d8f7b9c6-x7k2q", "istio-proxy"),
    ]
    records = [
        {"date": at, "stream": "stderr", "log": line}
        | {"kubernetes": {"pod_name": pod, "host": "node-1", "container_name": container}}
        for pod, container in pods
    ]
    loaded = read("fluent-bit.json", "\n".join(map(compact, records)) + "\n")
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("line")
    assert events["component"].to_list() == ["checkout", "ledger", "istio-proxy"]
    assert events["source"].to_list() == ["checkout", "ledger", "istio-proxy"]

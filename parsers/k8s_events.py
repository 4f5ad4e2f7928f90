"""Kubernetes events, as ``kubectl get events -o json`` and ``-w -o json`` write them.

Three shapes are read: a ``List`` (or ``EventList``) document with the events under
``items``; the stream ``kubectl get events -w -o json`` prints, whole pretty-printed
objects one after another (not an array), optionally wrapped as ``{"type": "ADDED",
"object": {...}}`` with ``--output-watch-events``; and one event object a line. Both
event APIs are understood: ``v1`` (``involvedObject``, ``message``, ``source``,
``firstTimestamp``, ``lastTimestamp``, ``count``) and ``events.k8s.io/v1``
(``regarding``, ``note``, ``reportingController``, ``deprecatedFirstTimestamp``,
``series``).

Every event is a row (``Warning`` at level warning, ``Normal`` at info), timed at its
first occurrence: ``eventTime``, else ``firstTimestamp``, else the last time it was seen,
else when the event object was created (``attrs.time_from`` says which). An event with no
time at all stays a row with a null ``ts`` and ``attrs.time_missing``.

Events that report a change (:data:`CHANGE_REASONS`: a replica set scaled, a pod created
or deleted by its controller, a container stopped, a system pod's container started, a
node rebooted or turning Ready / NotReady, an image pulled that the node had not run
before) are also a second row with ``kind = change``; both rows carry ``event_uid`` so
they can be told to be one event. An image's ``from`` is the image the same container
last ran on that node, earlier in the file.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime

import polars as pl

from parsers import registry
from parsers.changes_common import (
    Item,
    change_attrs,
    compare_versions,
    document,
    dumps,
    image_tag,
    item_spans,
    json_items,
    record_frame,
    unparsed_rows,
    utc_naive,
)
from parsers.common import without_aliases
from parsers.registry import Parser, Sample, Score

NAME = "k8s-events"
SOURCE = "k8s-event"
DESCRIPTION = "Kubernetes events (kubectl get events -o json, -w -o json; v1 and events.k8s.io/v1)"

#: Namespaces whose pods' ``Started`` events are changes (a system component restarted).
SYSTEM_NAMESPACES = ("kube-system",)

#: Event reasons that report a change, and the change type they are.
CHANGE_REASONS = {
    "ScalingReplicaSet": "scale",
    "SuccessfulRescale": "scale",
    "SuccessfulCreate": "create",
    "SuccessfulDelete": "delete",
    "Killing": "restart",
    "Started": "restart",
    "Rebooted": "reboot",
    "Starting": "restart",
    "NodeReady": "other",
    "NodeNotReady": "other",
    "NodeSchedulable": "other",
    "NodeNotSchedulable": "other",
    "RegisteredNode": "create",
    "RemovingNode": "delete",
    "Pulled": "deploy",
}

_LEVELS = {"Warning": "warning", "Normal": "info"}
_SCALED = re.compile(
    r"Scaled (?P<way>up|down) replica set (?P<rs>\S+) to (?P<to>[0-9]+)(?: from (?P<from>[0-9]+))?"
)
_RESCALED = re.compile(r"New size: (?P<to>[0-9]+)")
_CREATED = re.compile(r"^(?:Created|Deleted) pod: (?P<pod>\S+)")
_PULLED = re.compile(r'(?:Successfully pulled image|Container image) "(?P<image>[^"]+)"')
_CONTAINER_PATH = re.compile(r"spec\.(?:init|ephemeral)?[cC]ontainers\{(?P<name>[^}]+)\}")

_NODE_EVENT = """{
    "apiVersion": "v1",
    "count": 1,
    "eventTime": null,
    "firstTimestamp": "2023-03-14T21:04:37Z",
    "involvedObject": {
        "kind": "Node",
        "name": "ip-10-0-1-5.ec2.internal",
        "uid": "ip-10-0-1-5.ec2.internal"
    },
    "kind": "Event",
    "lastTimestamp": "2023-03-14T21:04:37Z",
    "message": "Node ip-10-0-1-5.ec2.internal has been rebooted, boot id: 6b0f6f5e-0c1e-4a47-9d3e-7b1c2f9e8a10",
    "metadata": {
        "creationTimestamp": "2023-03-14T21:04:37Z",
        "name": "ip-10-0-1-5.ec2.internal.174c63a1f0e4b2d1",
        "namespace": "default",
        "resourceVersion": "48812375",
        "uid": "d6f2b0a4-5c8e-4f1a-9b7d-2e3c4a5b6c7d"
    },
    "reason": "Rebooted",
    "reportingComponent": "",
    "reportingInstance": "",
    "source": {
        "component": "kubelet",
        "host": "ip-10-0-1-5.ec2.internal"
    },
    "type": "Warning"
}
"""  # noqa: E501

SAMPLES = (
    Sample(
        text="""{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "count": 3,
            "eventTime": null,
            "firstTimestamp": "2023-03-14T18:02:11Z",
            "involvedObject": {
                "apiVersion": "v1",
                "fieldPath": "spec.containers{rabbitmq}",
                "kind": "Pod",
                "name": "rmq-1",
                "namespace": "messaging",
                "resourceVersion": "48710022",
                "uid": "8c1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"
            },
            "kind": "Event",
            "lastTimestamp": "2023-03-14T18:05:41Z",
            "message": "Readiness probe failed: dial tcp 10.0.3.21:5672: connect: connection refused",
            "metadata": {
                "creationTimestamp": "2023-03-14T18:02:11Z",
                "name": "rmq-1.174c5d9e2b7a3c10",
                "namespace": "messaging",
                "resourceVersion": "48711893",
                "uid": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
            },
            "reason": "Unhealthy",
            "reportingComponent": "",
            "reportingInstance": "",
            "source": {
                "component": "kubelet",
                "host": "ip-10-0-3-21.ec2.internal"
            },
            "type": "Warning"
        },
        {
            "apiVersion": "v1",
            "count": 1,
            "eventTime": null,
            "firstTimestamp": "2023-03-14T17:41:02Z",
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "coredns",
                "namespace": "kube-system",
                "resourceVersion": "48690011",
                "uid": "2a3b4c5d-6e7f-4081-9293-a4b5c6d7e8f9"
            },
            "kind": "Event",
            "lastTimestamp": "2023-03-14T17:41:02Z",
            "message": "Scaled up replica set coredns-5d8f7b9c6d to 2",
            "metadata": {
                "creationTimestamp": "2023-03-14T17:41:02Z",
                "name": "coredns.174c5b7e9d2f1a08",
                "namespace": "kube-system",
                "resourceVersion": "48690040",
                "uid": "3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a9b0"
            },
            "reason": "ScalingReplicaSet",
            "reportingComponent": "",
            "reportingInstance": "",
            "source": {
                "component": "deployment-controller"
            },
            "type": "Normal"
        }
    ],
    "kind": "List",
    "metadata": {
        "resourceVersion": ""
    }
}
""",  # noqa: E501
        expect={
            "source": SOURCE,
            "kind": "log",
            "level": "warning",
            "host": "ip-10-0-3-21.ec2.internal",
            "component": "kubelet",
            "ts": "2023-03-14T18:02:11+00:00",
            "attrs.reason": "Unhealthy",
            "attrs.object": "pod/messaging/rmq-1",
            "attrs.count": 3,
            "attrs.last_seen": "2023-03-14T18:05:41Z",
        },
        rows=3,
    ),
    Sample(
        text="""{
    "action": "Scheduling",
    "apiVersion": "events.k8s.io/v1",
    "deprecatedCount": 1,
    "deprecatedFirstTimestamp": "2023-03-14T20:14:03Z",
    "deprecatedLastTimestamp": "2023-03-14T20:14:03Z",
    "deprecatedSource": {
        "component": "default-scheduler"
    },
    "eventTime": "2023-03-14T20:14:03.512084Z",
    "kind": "Event",
    "metadata": {
        "creationTimestamp": "2023-03-14T20:14:03Z",
        "name": "node-local-dns-8xq2w.174c62f0a9b1c2d3",
        "namespace": "kube-system",
        "resourceVersion": "48790112",
        "uid": "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"
    },
    "note": "Successfully assigned kube-system/node-local-dns-8xq2w to ip-10-0-1-5.ec2.internal",
    "reason": "Scheduled",
    "regarding": {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "node-local-dns-8xq2w",
        "namespace": "kube-system",
        "resourceVersion": "48790101",
        "uid": "5d6e7f80-91a2-43b4-c5d6-e7f8091a2b3c"
    },
    "reportingController": "default-scheduler",
    "reportingInstance": "default-scheduler-ip-10-0-0-12",
    "type": "Normal"
}
"""
        + _NODE_EVENT,
        expect={
            "level": "info",
            "ts": "2023-03-14T20:14:03.512084+00:00",
            "component": "default-scheduler",
            "message": (
                "Scheduled: Successfully assigned kube-system/node-local-dns-8xq2w to "
                "ip-10-0-1-5.ec2.internal"
            ),
            "attrs.api_version": "events.k8s.io/v1",
            "attrs.object": "pod/kube-system/node-local-dns-8xq2w",
        },
        rows=3,
    ),
)


#: The key naming the object an Event is about (``core/v1``, ``events.k8s.io/v1``).
OBJECT_KEYS = ('"involvedObject"', '"regarding"')
#: The same in the YAML ``kubectl get events -o yaml`` writes.
#: The key under which a YAML event names its object: ``involvedObject`` (core/v1) or
#: ``regarding`` (events.k8s.io/v1).
YAML_OBJECT_KEYS = ("involvedObject:", "regarding:")


def sniff(sample: list[str]) -> Score:
    """A JSON document or stream of Kubernetes Event objects (not an audit log), or the
    YAML ``kubectl get events -o yaml`` writes."""
    text = "\n".join(sample)
    head = text.lstrip()[:1]
    if (
        head not in ("{", "[")
        and _YAML_EVENT.search(text)
        and any(key in text for key in YAML_OBJECT_KEYS)
    ):
        return Score(
            0.95, "Kubernetes Event objects in YAML (kind: Event, involvedObject or regarding)"
        )
    if head not in ("{", "["):
        return Score(0.0, "does not start with a JSON object or array")
    if '"auditID"' in text:
        return Score(0.0, "an audit log, not events")
    has_object = any(key in text for key in OBJECT_KEYS)
    has_reason = '"reason"' in text
    is_event = re.search(r'"kind":\s*"(?:Event|EventList)"', text) is not None
    if has_object and has_reason and is_event:
        return Score(0.95, "Kubernetes Event objects (involvedObject/regarding, reason)")
    if has_object and has_reason:
        return Score(0.6, "objects with involvedObject/regarding and reason")
    return Score(0.0, "no Kubernetes Event fields in the sample")


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One row per event, and a change row for events that report a change."""
    doc = document(lines)
    items = _yaml_items(doc) if _is_yaml(doc.text) else json_items(doc)
    rows: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    for item, (first, last) in zip(items, item_spans(doc, items), strict=True):
        span = {"line": doc.lines[first], "end_line": doc.end_lines[last]}
        if item.error:
            rows.extend(unparsed_rows(doc, first, last, item.error))
            continue
        event, why = _normalise(item.value)
        if event is None:
            rows.extend(
                unparsed_rows(doc, first, last, f"{why} (line {doc.lines[item.first_row]})")
            )
            continue
        events.append({**event, **span})
    if not items and doc.rows:
        rows.extend(unparsed_rows(doc, 0, doc.rows - 1, _why_no_items(doc.text)))
    rows.extend(event_rows(events))
    return record_frame(rows, source=SOURCE).sort("line")


_YAML_EVENT = re.compile(r"(?m)^[ \t]*(?:- )?kind: Event\s*$")
#: Where a YAML event starts: an item of the ``items`` list, or a new document.
_YAML_ITEM = re.compile(r"^(?P<indent> *)- |^---")


def _is_yaml(text: str) -> bool:
    return text.lstrip()[:1] not in ("{", "[", "") and _YAML_EVENT.search(text) is not None


def _yaml_items(doc) -> list[Item]:
    """The events of ``kubectl get events -o yaml`` (a ``List`` with ``items``, its items
    alone, one event, or several documents), each starting on the row where its YAML item starts."""
    import yaml

    try:
        loaded = yaml.load_all(doc.text, Loader=_text_times_loader())
        documents = [d for d in loaded if d is not None]
    except RecursionError:
        return [Item(0, error="not read: YAML nested deeper than the reader follows")]
    except yaml.YAMLError as exc:
        return [Item(0, error=f"not valid YAML: {str(exc).splitlines()[0]}")]
    values = []
    for value in documents:
        # the items of a list pasted without the ``items:`` above them are a sequence
        listed = value.get("items") if isinstance(value, dict) else value
        values.extend(listed if isinstance(listed, list) else [value])
    marks = [(i, _YAML_ITEM.match(text)) for i, text in enumerate(doc.texts)]
    dashes = [(i, len(m["indent"])) for i, m in marks if m and m["indent"] is not None]
    outer = min((indent for _i, indent in dashes), default=0)
    starts = [i for i, indent in dashes if indent == outer]
    starts = starts or [i for i, m in marks if m]
    if len(starts) != len(values):
        starts = [0] * len(values)
    return [Item(row, v) for row, v in zip(starts, values, strict=True)]


@functools.cache
def _text_times_loader() -> type:
    """PyYAML's safe loader with times left as the text they are, as JSON gives them:
    read as datetimes they lose their fraction and offset, and an impossible one
    (``2023-02-30T18:02:11Z``) fails the whole file."""
    import yaml

    class TextTimes(without_aliases(yaml.SafeLoader)):
        pass

    TextTimes.yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return TextTimes


def _why_no_items(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        return "no JSON object in the document"
    if isinstance(value, dict) and value.get("items") == []:
        return "the document lists no events"
    return "no Kubernetes Event in the document"


# --- one event --------------------------------------------------------------------------


def _get(obj: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _normalise(value: object) -> tuple[dict[str, object] | None, str]:
    """The fields both event APIs share, under one set of names; or None and why not."""
    if not isinstance(value, dict):
        return None, "not a JSON object"
    watch_type = None
    if isinstance(value.get("object"), dict) and value.get("type") in (
        "ADDED",
        "MODIFIED",
        "DELETED",
        "BOOKMARK",
        "ERROR",
    ):
        watch_type, value = value["type"], value["object"]
    obj = value.get("involvedObject") or value.get("regarding")
    if value.get("kind") not in (None, "Event") or not isinstance(obj, dict):
        return None, f"not a Kubernetes Event (kind {value.get('kind')!r})"
    times = [
        ("eventTime", value.get("eventTime")),
        ("firstTimestamp", value.get("firstTimestamp")),
        ("deprecatedFirstTimestamp", value.get("deprecatedFirstTimestamp")),
        ("lastTimestamp", value.get("lastTimestamp")),
        ("deprecatedLastTimestamp", value.get("deprecatedLastTimestamp")),
        ("series.lastObservedTime", _get(value, "series", "lastObservedTime")),
        ("metadata.creationTimestamp", _get(value, "metadata", "creationTimestamp")),
    ]
    ts, time_from = None, None
    for name, text in times:
        ts = utc_naive(text)
        if ts is not None:
            time_from = name
            break
    last_seen = (
        value.get("lastTimestamp")
        or value.get("deprecatedLastTimestamp")
        or _get(value, "series", "lastObservedTime")
    )
    count = _get(value, "series", "count") or value.get("count") or value.get("deprecatedCount")
    component = (
        _get(value, "source", "component")
        or value.get("reportingComponent")
        or value.get("reportingController")
        or _get(value, "deprecatedSource", "component")
        or None
    )
    host = _get(value, "source", "host") or _get(value, "deprecatedSource", "host")
    if not host and obj.get("kind") == "Node":
        host = obj.get("name")
    if not host and component == "kubelet":
        host = value.get("reportingInstance") or None
    return {
        "api_version": value.get("apiVersion"),
        "ts": ts,
        "time_from": time_from,
        "time_missing": None
        if ts
        else "the event has no eventTime, firstTimestamp, "
        "lastTimestamp, series time or creationTimestamp",
        "last_seen": last_seen,
        "count": count,
        "type": value.get("type"),
        "reason": value.get("reason"),
        "note": value.get("message") if "involvedObject" in value else value.get("note"),
        "action": value.get("action"),
        "component": component,
        "host": host or None,
        "reporting_instance": value.get("reportingInstance") or None,
        "obj_kind": obj.get("kind"),
        "obj_namespace": obj.get("namespace"),
        "obj_name": obj.get("name"),
        "field_path": obj.get("fieldPath"),
        "object": object_path(obj.get("kind"), obj.get("namespace"), obj.get("name")),
        "event_uid": _get(value, "metadata", "uid"),
        "event_name": _get(value, "metadata", "name"),
        "watch_type": watch_type,
    }, ""


#: Kinds of objects that belong to no namespace: a table's NAMESPACE column is then the
#: event's own (``default`` for a node's events), not the object's.
CLUSTER_SCOPED = frozenset(
    {
        "node",
        "namespace",
        "persistentvolume",
        "storageclass",
        "clusterrole",
        "clusterrolebinding",
        "customresourcedefinition",
        "priorityclass",
        "runtimeclass",
        "certificatesigningrequest",
        "apiservice",
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
    }
)


def object_path(kind: object, namespace: object, name: object) -> str | None:
    """``pod/kube-system/kube-proxy-x7k2p``; cluster-scoped objects have no namespace.

    >>> object_path("Node", "default", "ip-10-0-1-5.ec2.internal")
    'node/ip-10-0-1-5.ec2.internal'
    """
    if not name:
        return None
    kind = str(kind or "object").lower()
    namespace = None if kind in CLUSTER_SCOPED else namespace
    return "/".join(str(p) for p in (kind, namespace, name) if p)


def event_rows(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """The log row of every event and the change row of those that report one, the
    latter decided in time order so a pulled image can be compared with the last one."""
    rows = []
    last_image: dict[tuple[object, str, str | None], str] = {}
    ordered = sorted(events, key=lambda e: (e["ts"] is None, e["ts"] or datetime.min, e["line"]))
    for event in ordered:
        level = _LEVELS.get(str(event["type"]), "info" if event["type"] is None else "warning")
        rows.append(_log_row(event, level))
        change = _change(event, last_image)
        if change is not None and event["ts"] is not None:
            rows.append(_change_row(event, level, change))
    return rows


def _log_row(event: dict[str, object], level: str) -> dict[str, object]:
    attrs = {
        "reason": event["reason"],
        "type": event["type"],
        "object": event["object"],
        "field_path": event["field_path"],
        "count": event["count"],
        "last_seen": event["last_seen"],
        # a table's FIRST SEEN age, as written (an object's times say it in ``ts``)
        "first_seen": event.get("first_seen"),
        "action": event["action"],
        "event_uid": event["event_uid"],
        "event_name": event["event_name"],
        "api_version": event["api_version"],
        "reporting_instance": event["reporting_instance"],
        "watch_type": event["watch_type"],
        "time_from": event["time_from"] if event["time_from"] not in _FIRST_TIMES else None,
        "time_missing": event["time_missing"],
    }
    return {
        "line": event["line"],
        "end_line": event["end_line"],
        "ts": event["ts"],
        "utc_offset_s": 0 if event["ts"] else None,
        "host": event["host"],
        "component": event["component"],
        "level": level,
        "kind": "log",
        "message": f"{event['reason']}: {event['note']}" if event["reason"] else event["note"],
        "attrs": dumps({k: v for k, v in attrs.items() if v is not None}),
    }


#: Fields that hold an event's first occurrence; a time from any other is noted in attrs.
_FIRST_TIMES = ("eventTime", "firstTimestamp", "deprecatedFirstTimestamp")


def _change(
    event: dict[str, object], last_image: dict[tuple[object, str, str | None], str]
) -> dict[str, object] | None:
    """What change the event reports (type, target, from, to, host), or None."""
    reason, note = str(event["reason"] or ""), str(event["note"] or "")
    change_type = CHANGE_REASONS.get(reason)
    if change_type is None:
        return None
    target, old, new, host = event["object"], None, None, event["host"]
    kind = str(event["obj_kind"] or "")
    if reason == "ScalingReplicaSet":
        found = _SCALED.search(note)
        if found:
            old, new = _int(found.group("from")), int(found.group("to"))
    elif reason == "SuccessfulRescale":
        found = _RESCALED.search(note)
        new = int(found.group("to")) if found else None
    elif reason in ("SuccessfulCreate", "SuccessfulDelete"):
        found = _CREATED.search(note)
        if not found:
            return None
        target = object_path("Pod", event["obj_namespace"], found.group("pod"))
        host = None
    elif reason == "Started":
        if kind != "Pod" or event["obj_namespace"] not in SYSTEM_NAMESPACES:
            return None
    elif reason == "Starting":
        if kind != "Node" or event["component"] != "kubelet":
            return None
    elif reason == "Killing":
        if kind != "Pod":
            return None
    elif reason == "Pulled":
        return _pulled(event, note, last_image)
    elif kind == "Node":
        new = {
            "NodeReady": "Ready",
            "NodeNotReady": "NotReady",
            "NodeSchedulable": "schedulable",
            "NodeNotSchedulable": "unschedulable",
        }.get(reason)
    return {"change_type": change_type, "target": target, "from": old, "to": new, "host": host}


def _pulled(
    event: dict[str, object], note: str, last_image: dict[tuple[object, str, str | None], str]
) -> dict[str, object] | None:
    """A pulled image is a change when the node last ran another image in the same
    container (an upgrade or a rollback by the tags), or when it is a fresh pull."""
    found = _PULLED.search(note)
    path = _CONTAINER_PATH.search(str(event["field_path"] or ""))
    if not found:
        return None
    image = found.group("image")
    container = path.group("name") if path else str(event["obj_name"])
    # without the container's name (a table or describe section shows none), only a
    # pull of the same image at another tag can be the same container's
    key = (event["host"], container, None if path else _repository(image))
    before = last_image.get(key)
    last_image[key] = image
    fresh = note.startswith("Successfully pulled")
    if before == image or (before is None and not fresh):
        return None
    change_type = "deploy"
    if before is not None:
        direction = compare_versions(image_tag(before), image_tag(image))
        change_type = direction if direction in ("upgrade", "rollback") else "deploy"
    return {
        "change_type": change_type,
        "target": event["object"],
        "from": before,
        "to": image,
        "host": event["host"],
        "container": container,
    }


def _repository(image: str) -> str:
    """An image reference without its tag or digest.

    >>> _repository("localhost:5000/kube-proxy:v1.26.2"), _repository("nginx@sha256:0a1b")
    ('localhost:5000/kube-proxy', 'nginx')
    """
    tag = image_tag(image)
    bare = image.split("@", 1)[0]
    return bare[: -len(tag) - 1] if tag else bare


def _int(text: str | None) -> int | None:
    return int(text) if text is not None else None


def _change_row(
    event: dict[str, object], level: str, change: dict[str, object]
) -> dict[str, object]:
    attrs = change_attrs(
        str(change["change_type"]),
        change["target"],
        old=change["from"],
        new=change["to"],
        actor=event["component"],
        container=change.get("container"),
        reason=event["reason"],
        object=event["object"] if event["object"] != change["target"] else None,
        event_uid=event["event_uid"],
        count=event["count"] if (event["count"] or 1) > 1 else None,
    )
    # a pasted describe section without its Name: line does not say whose event it is
    text = " ".join(str(part) for part in (attrs["change_type"], attrs.get("target")) if part)
    if "from" in attrs or "to" in attrs:
        text += f" {attrs.get('from', '?')} -> {attrs.get('to', '?')}"
    text += f" ({event['reason']}: {' '.join(str(event['note']).split())})"
    return {
        "line": event["line"],
        "end_line": event["end_line"],
        "ts": event["ts"],
        "utc_offset_s": 0,
        "host": change["host"],
        "component": event["component"],
        "level": level,
        "kind": "change",
        "message": text,
        "template": f"{attrs['change_type']} {event['reason']}",
        "attrs": dumps(attrs),
    }


registry.register(
    Parser(
        name=NAME,
        description=DESCRIPTION,
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=(*OBJECT_KEYS, *YAML_OBJECT_KEYS),
    )
)

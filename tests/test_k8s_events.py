"""Kubernetes events: every event a row, events that report a change also a change row."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import parsers
from parsers.k8s_events import sniff
from tests.lines import read_real

NODE = "ip-10-0-1-5.ec2.internal"


def v1_event(
    reason: str,
    message: str,
    obj: dict,
    *,
    first: str | None,
    last: str | None = None,
    count: int = 1,
    type_: str = "Normal",
    source: dict | None = None,
    uid: str = "00000000-0000-4000-8000-000000000000",
    created: str | None = None,
) -> dict:
    """A ``v1`` Event as the API server returns it (kubectl prints the keys sorted)."""
    return {
        "apiVersion": "v1",
        "count": count,
        "eventTime": None,
        "firstTimestamp": first,
        "involvedObject": obj,
        "kind": "Event",
        "lastTimestamp": last or first,
        "message": message,
        "metadata": {
            "creationTimestamp": created or first,
            "name": f"{obj['name']}.174c5b7e9d2f1a08",
            "namespace": obj.get("namespace", "default"),
            "resourceVersion": "48690040",
            "uid": uid,
        },
        "reason": reason,
        "reportingComponent": "",
        "reportingInstance": "",
        "source": source or {"component": "kubelet", "host": NODE},
        "type": type_,
    }


def pod(name: str, namespace: str = "kube-system", container: str | None = None) -> dict:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": name,
        "namespace": namespace,
        "resourceVersion": "48690011",
        "uid": "2a3b4c5d-6e7f-4081-9293-a4b5c6d7e8f9",
    }
    if container:
        obj["fieldPath"] = f"spec.containers{{{container}}}"
    return obj


NODE_REF = {"kind": "Node", "name": NODE, "uid": NODE}
IMAGE = "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy"


def incident_events() -> list[dict]:
    return [
        v1_event(
            "Pulled",
            f'Successfully pulled image "{IMAGE}:v1.24.10-minimal-eksbuild.1" in 2.118s',
            pod("kube-proxy-x7k2p", container="kube-proxy"),
            first="2023-03-13T14:06:01Z",
            uid="e1000000-0000-4000-8000-000000000001",
        ),
        v1_event(
            "Killing",
            "Stopping container kube-proxy",
            pod("kube-proxy-x7k2p", container="kube-proxy"),
            first="2023-03-13T16:40:30Z",
            uid="e1000000-0000-4000-8000-000000000002",
        ),
        v1_event(
            "SuccessfulCreate",
            "Created pod: kube-proxy-q9z4m",
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": "kube-proxy",
                "namespace": "kube-system",
                "resourceVersion": "48690111",
                "uid": "3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a9b0",
            },
            first="2023-03-13T16:40:33Z",
            source={"component": "daemonset-controller"},
            uid="e1000000-0000-4000-8000-000000000003",
        ),
        v1_event(
            "Pulled",
            f'Container image "{IMAGE}:v1.23.6-minimal-eksbuild.2" already present on machine',
            pod("kube-proxy-q9z4m", container="kube-proxy"),
            first="2023-03-13T16:40:35Z",
            uid="e1000000-0000-4000-8000-000000000004",
        ),
        v1_event(
            "Started",
            "Started container kube-proxy",
            pod("kube-proxy-q9z4m", container="kube-proxy"),
            first="2023-03-13T16:40:36Z",
            uid="e1000000-0000-4000-8000-000000000005",
        ),
        v1_event(
            "Started",
            "Started container dispatcher",
            pod("dispatcher-7c9d5f8b6-2xkq8", namespace="ci", container="dispatcher"),
            first="2023-03-14T18:10:00Z",
            uid="e1000000-0000-4000-8000-000000000006",
        ),
        v1_event(
            "ScalingReplicaSet",
            "Scaled up replica set coredns-5d8f7b9c6d to 3 from 2",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "coredns",
                "namespace": "kube-system",
                "resourceVersion": "48690011",
                "uid": "2a3b4c5d-6e7f-4081-9293-a4b5c6d7e8f9",
            },
            first="2023-03-14T20:31:00Z",
            source={"component": "deployment-controller"},
            uid="e1000000-0000-4000-8000-000000000007",
        ),
        v1_event(
            "NodeNotReady",
            f"Node {NODE} status is now: NodeNotReady",
            NODE_REF,
            first="2023-03-14T21:02:40Z",
            uid="e1000000-0000-4000-8000-000000000008",
        ),
        v1_event(
            "Rebooted",
            f"Node {NODE} has been rebooted, boot id: 6b0f6f5e-0c1e-4a47-9d3e-7b1c2f9e8a10",
            NODE_REF,
            first="2023-03-14T21:04:37Z",
            type_="Warning",
            uid="e1000000-0000-4000-8000-000000000009",
        ),
        v1_event(
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            pod("coredns-5d8f7b9c6d-7xk2q", container="coredns"),
            first="2023-03-14T20:33:10Z",
            last="2023-03-14T20:41:10Z",
            count=49,
            type_="Warning",
            uid="e1000000-0000-4000-8000-00000000000a",
        ),
    ]


def as_list(items: list[dict]) -> str:
    """``kubectl get events -A -o json``."""
    document = {
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }
    return json.dumps(document, indent=4, sort_keys=True) + "\n"


def as_watch(items: list[dict]) -> str:
    """``kubectl get events -A -w -o json``: whole objects one after another."""
    return "".join(json.dumps(item, indent=4, sort_keys=True) + "\n" for item in items)


def by_uid(loaded, kind: str) -> dict[str, dict]:
    rows = loaded.events.filter(pl.col("kind") == kind)
    out = {}
    for row in rows.iter_rows(named=True):
        attrs = json.loads(row["attrs"])
        out[attrs["event_uid"][-2:]] = {**attrs, "_row": row}
    return out


def test_list_document_gives_log_rows_and_change_rows(read):
    loaded = read("events.json", as_list(incident_events()))
    assert loaded.summary.files["format"].to_list() == ["k8s-events"]
    assert loaded.summary.unparsed_lines == 0
    logs, changes = by_uid(loaded, "log"), by_uid(loaded, "change")
    assert len(logs) == 10
    assert sorted(changes) == ["01", "02", "03", "04", "05", "07", "08", "09"]
    assert changes["01"]["change_type"] == "deploy"
    rollback = changes["04"]
    assert rollback["change_type"] == "rollback"
    assert rollback["from"].endswith(":v1.24.10-minimal-eksbuild.1")
    assert rollback["to"].endswith(":v1.23.6-minimal-eksbuild.2")
    assert rollback["_row"]["host"] == NODE
    assert (changes["02"]["change_type"], changes["02"]["target"]) == (
        "restart",
        "pod/kube-system/kube-proxy-x7k2p",
    )
    created = changes["03"]
    assert (created["change_type"], created["target"]) == (
        "create",
        "pod/kube-system/kube-proxy-q9z4m",
    )
    assert (
        created["actor"] == "daemonset-controller"
        and created["object"] == "daemonset/kube-system/kube-proxy"
    )
    assert (changes["07"]["change_type"], changes["07"]["from"], changes["07"]["to"]) == (
        "scale",
        2,
        3,
    )
    assert (changes["08"]["change_type"], changes["08"]["to"]) == ("other", "NotReady")
    reboot = changes["09"]
    assert (reboot["change_type"], reboot["target"]) == ("reboot", f"node/{NODE}")
    assert reboot["_row"]["level"] == "warning" and reboot["_row"]["host"] == NODE
    assert reboot["_row"]["ts"].isoformat() == "2023-03-14T21:04:37+00:00"
    assert reboot["inferred"] is False


@pytest.mark.parametrize("indent", [None, 2])
def test_the_api_s_own_event_list_with_its_metadata_first_is_read(read, indent):
    """``kubectl get --raw /api/v1/events`` (or curl) writes ``kind``, ``apiVersion`` and a
    ``metadata`` object before ``items``; ``-o json`` sorts ``items`` first."""
    document = {
        "kind": "EventList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "123456", "continue": ""},
        "items": incident_events(),
    }
    loaded = read("events-raw.json", json.dumps(document, indent=indent) + "\n")
    assert loaded.summary.files["format"].to_list() == ["k8s-events"]
    assert loaded.summary.unparsed_lines == 0
    assert len(by_uid(loaded, "log")) == 10
    assert sorted(by_uid(loaded, "change")) == ["01", "02", "03", "04", "05", "07", "08", "09"]


@pytest.mark.parametrize("api", ["v1", "events.k8s.io/v1"])
def test_events_in_yaml_of_either_api_are_recognised(read, api):
    """``kubectl get events -o yaml`` and ``kubectl get events.v1.events.k8s.io -o yaml``."""
    import yaml

    event = {
        "apiVersion": api,
        "kind": "Event",
        "metadata": {
            "name": "coredns-5d78c9869d-abcde.174c4f",
            "namespace": "kube-system",
            "uid": "e2000000-0000-4000-8000-000000000042",
            "creationTimestamp": "2023-03-14T18:00:11Z",
        },
        "reason": "Unhealthy",
        "type": "Warning",
    }
    obj = {"kind": "Pod", "name": "coredns-5d78c9869d-abcde", "namespace": "kube-system"}
    if api == "v1":
        event |= {
            "involvedObject": obj,
            "message": "Readiness probe failed: 503",
            "firstTimestamp": "2023-03-14T18:00:11Z",
            "count": 14,
            "source": {"component": "kubelet", "host": NODE},
        }
    else:
        event |= {
            "regarding": obj,
            "note": "Readiness probe failed: 503",
            "deprecatedFirstTimestamp": "2023-03-14T18:00:11Z",
            "eventTime": None,
            "deprecatedCount": 14,
            "reportingController": "kubelet",
            "reportingInstance": NODE,
        }
    text = yaml.safe_dump(
        {"apiVersion": "v1", "items": [event], "kind": "List", "metadata": {"resourceVersion": ""}}
    )
    loaded = read("events.yaml", text)
    assert loaded.summary.files["format"].to_list() == ["k8s-events"]
    log = by_uid(loaded, "log")["42"]
    assert log["_row"]["level"] == "warning" and log["_row"]["host"] == NODE
    assert log["_row"]["ts"].isoformat() == "2023-03-14T18:00:11+00:00"


def test_log_rows_keep_the_event_fields(read):
    loaded = read("events.json", as_list(incident_events()))
    probe = by_uid(loaded, "log")["0a"]
    assert probe["_row"]["level"] == "warning"
    assert probe["_row"]["message"].startswith("Unhealthy: Readiness probe failed")
    assert probe["_row"]["ts"].isoformat() == "2023-03-14T20:33:10+00:00"
    assert (probe["count"], probe["last_seen"]) == (49, "2023-03-14T20:41:10Z")
    assert probe["object"] == "pod/kube-system/coredns-5d8f7b9c6d-7xk2q"
    assert probe["field_path"] == "spec.containers{coredns}"
    started_app = by_uid(loaded, "log")["06"]
    assert started_app["_row"]["level"] == "info"


def test_every_line_lies_in_a_span_of_a_list_document(read):
    text = as_list(incident_events()[:3])
    loaded = read("events.json", text)
    spans = loaded.events.select("line").unique().sort("line")["line"].to_list()
    lines = text.count("\n")
    files = loaded.summary.files.row(0, named=True)
    assert spans[0] == 1
    assert files["lines"] == lines
    assert files["first_lines"] + files["continuation_lines"] == lines


def test_watch_stream_cut_short_keeps_the_whole_objects(read):
    whole = as_watch(incident_events()[:4])
    cut = json.dumps(incident_events()[4], indent=4, sort_keys=True)[:300]
    loaded = read("events-watch.json", whole + cut + "\n")
    assert len(by_uid(loaded, "log")) == 4
    (warning,) = loaded.summary.warnings.iter_rows(named=True)
    first_cut_line = whole.count("\n") + 1
    assert (warning["line"], warning["end_line"]) == (
        first_cut_line,
        first_cut_line + cut.count("\n"),
    )
    assert "is cut short" in warning["reason"]
    files = loaded.summary.files.row(0, named=True)
    assert files["unparsed_lines"] == cut.count("\n") + 1
    assert (
        files["first_lines"] + files["continuation_lines"] + files["unparsed_lines"]
        == files["lines"]
    )


def test_a_broken_object_in_a_stream_costs_only_its_own_lines(read):
    objects = [json.dumps(e, indent=4, sort_keys=True) for e in incident_events()[:3]]
    broken = objects[1].replace('"count": 1,', '"count": 1,,', 1)
    loaded = read("events-watch.json", "\n".join([objects[0], broken, objects[2]]) + "\n")
    assert sorted(by_uid(loaded, "log")) == ["01", "03"]
    (warning,) = loaded.summary.warnings.iter_rows(named=True)
    assert warning["end_line"] - warning["line"] == broken.count("\n")
    assert "not valid JSON" in warning["reason"]


def test_events_k8s_io_and_watch_event_wrappers(read):
    modern = {
        "apiVersion": "events.k8s.io/v1",
        "deprecatedCount": 0,
        "deprecatedFirstTimestamp": None,
        "deprecatedLastTimestamp": None,
        "deprecatedSource": {},
        "eventTime": "2023-03-14T20:14:05.118204Z",
        "kind": "Event",
        "metadata": {
            "creationTimestamp": "2023-03-14T20:14:05Z",
            "name": "node-local-dns-8xq2w.174c62f0b1c2d3e4",
            "namespace": "kube-system",
            "uid": "e2000000-0000-4000-8000-000000000001",
        },
        "note": "Started container node-cache",
        "reason": "Started",
        "regarding": {
            "apiVersion": "v1",
            "fieldPath": "spec.containers{node-cache}",
            "kind": "Pod",
            "name": "node-local-dns-8xq2w",
            "namespace": "kube-system",
        },
        "reportingController": "kubelet",
        "reportingInstance": NODE,
        "series": {"count": 2, "lastObservedTime": "2023-03-14T20:19:05.000000Z"},
        "type": "Normal",
    }
    wrapped = {"type": "ADDED", "object": modern}
    loaded = read("events-watch.json", as_watch([wrapped]))
    log = by_uid(loaded, "log")["01"]
    change = by_uid(loaded, "change")["01"]
    assert log["_row"]["ts"].isoformat() == "2023-03-14T20:14:05.118204+00:00"
    assert (log["count"], log["watch_type"]) == (2, "ADDED")
    assert log["_row"]["component"] == "kubelet" and log["_row"]["host"] == NODE
    assert (change["change_type"], change["target"]) == (
        "restart",
        "pod/kube-system/node-local-dns-8xq2w",
    )


def test_an_event_with_no_time_stays_a_row_and_says_so(read):
    timeless = v1_event(
        "FailedMount",
        'MountVolume.SetUp failed for volume "config-volume" : configmap "coredns" not found',
        pod("coredns-5d8f7b9c6d-7xk2q"),
        first=None,
        type_="Warning",
        uid="e3000000-0000-4000-8000-000000000001",
    )
    timeless["metadata"]["creationTimestamp"] = None
    created_only = v1_event(
        "Killing",
        "Stopping container coredns",
        pod("coredns-5d8f7b9c6d-7xk2q", container="coredns"),
        first=None,
        created="2023-03-14T20:31:04Z",
        uid="e3000000-0000-4000-8000-000000000002",
    )
    loaded = read("events.json", as_list([timeless, created_only]))
    logs = by_uid(loaded, "log")
    assert logs["01"]["_row"]["ts"] is None
    assert "no eventTime" in logs["01"]["time_missing"]
    assert logs["02"]["time_from"] == "metadata.creationTimestamp"
    assert logs["02"]["_row"]["ts"].isoformat() == "2023-03-14T20:31:04+00:00"
    assert sorted(by_uid(loaded, "change")) == ["02"]
    assert loaded.summary.assumptions.filter(pl.col("what") == "time").height == 1


def test_an_empty_list_is_reported_not_silently_dropped(read):
    empty = as_list([])
    forced = read("events.json", empty, format="k8s-events")
    assert forced.events.height == 0
    assert forced.summary.unparsed_lines == empty.count("\n")
    assert forced.summary.warnings["reason"].to_list() == ["the document lists no events"]
    sniffed = read("events.json", empty)
    assert sniffed.summary.unparsed_lines == empty.count("\n")


def test_sniff_prefers_events_over_neighbours():
    assert sniff(as_list(incident_events()[:2]).splitlines()[:200]).score >= 0.9
    assert sniff(as_watch(incident_events()[:1]).splitlines()).score >= 0.9
    audit = '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x","objectRef":{}}'
    assert sniff([audit]).score == 0
    ranked = parsers.registry.rank(as_watch(incident_events()[:2]).splitlines())
    assert ranked[0][0].name == "k8s-events"


def covered_lines(parse, text: str) -> tuple[set[int], int]:
    """Lines inside a record's span or unparsed, when ``parse`` reads ``text``."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    frame = pl.LazyFrame(
        {
            "line": list(range(1, len(lines) + 1)),
            "end_line": list(range(1, len(lines) + 1)),
            "text": lines,
        },
        schema_overrides={"line": pl.UInt32, "end_line": pl.UInt32},
    ).with_columns(
        prefix_ts=pl.lit(None, pl.Datetime("us", "UTC")),
        stream=pl.lit(None, pl.String),
        host=pl.lit(None, pl.String),
        container=pl.lit(None, pl.String),
        path=pl.lit("events.json"),
    )
    records = parse(frame).collect()
    seen: set[int] = set()
    for first, last in records.select("line", "end_line").iter_rows():
        seen.update(range(first, last + 1))
    return seen, len(lines)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=4000), stream=st.booleans())
def test_any_cut_of_a_document_loses_no_line(cut, stream):
    from parsers.k8s_events import parse

    whole = (as_watch if stream else as_list)(incident_events()[:3])
    seen, total = covered_lines(parse, whole[:cut])
    assert seen == set(range(1, total + 1))


REAL = Path(__file__).parent / "data" / "real" / "k8s-events"


@pytest.mark.parametrize(
    ("name", "ts", "host", "component", "message"),
    [
        (
            "events-kube-proxy-starting.yaml",
            datetime(2015, 12, 3, 6, 39, 3, tzinfo=UTC),
            "ma1demo4.eng.platformlab.ibm.com",
            "kube-proxy",
            "Starting: Starting kube-proxy.",
        ),
        (
            "events-binding-event-time.yaml",
            datetime(2020, 4, 24, 13, 38, 26, 252501, tzinfo=UTC),
            None,
            "default-scheduler",
            "Scheduled: Successfully assigned magellan/alertmanager-monit-alertmanager-0 "
            "to ip-172-31-108-34.eu-west-1.compute.internal",
        ),
    ],
)
def test_real_event_yaml_is_a_row_an_event(name, ts, host, component, message):
    """``kubectl get events -o yaml`` pasted in public issues (``tests/data/real/README.md``):
    a 2015 event without a type and with unquoted times, and an item of the list pasted
    without the ``items:`` above it (``firstTimestamp: null``, timed by ``eventTime``)."""
    loaded = read_real(REAL / name)
    events = loaded.events
    assert events.height == 1
    event = events.row(0, named=True)
    assert (event["kind"], event["level"], event["source"]) == ("log", "info", "k8s-event")
    assert event["ts"] == ts
    assert (event["host"], event["component"], event["message"]) == (host, component, message)
    assert event["line"] == 1

"""JSON as people paste it (pretty-printed with any indentation, arrays, streams, one
object per file, batches) reads as the same records as the JSON lines programs write."""

from __future__ import annotations

import json

import pytest

KLOG_JSON = [
    {
        "ts": 1678816801123.4568,
        "caller": "iptables/proxier.go:1508",
        "msg": "Failed to execute iptables-restore",
        "err": "exit status 1 (iptables-restore: line 8022 failed\n)",
    },
    {"ts": 1678816801200.25, "caller": "iptables/proxier.go:858", "msg": "Sync failed", "v": 0},
    {"ts": 1678816802000.5, "caller": "app/server.go:661", "msg": "Version info", "v": 2},
]
RABBITMQ_JSON = [
    {
        "time": "2023-03-15 02:50:01.123456+00:00",
        "level": "error",
        "msg": "closing AMQP connection <0.1234.0> (10.0.0.5:43210 -> 10.0.1.7:5672)",
        "pid": "<0.1234.0>",
        "domain": "rabbitmq.connection",
    },
    {
        "time": "2023-03-15 02:50:02.000871+00:00",
        "level": "info",
        "msg": "Server startup complete; 4 plugins started.",
        "pid": "<0.230.0>",
    },
]


def _audit_event(n: int, verb: str, code: int, second: int) -> dict:
    stamp = f"2023-03-14T18:00:{second:02d}.123456Z"
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"4f0c{n:04d}-9a1b-4c2d-8e3f-5a6b7c8d9e0f",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/kube-system/pods/coredns-5d78c9869d-4kq2p",
        "verb": verb,
        "user": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "sourceIPs": ["10.0.1.5"],
        "objectRef": {
            "resource": "pods",
            "namespace": "kube-system",
            "name": "coredns-5d78c9869d-4kq2p",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": stamp,
        "stageTimestamp": stamp,
    }


AUDIT = [_audit_event(1, "get", 200, 1), _audit_event(2, "get", 503, 2)]


def shapes(records: list[dict]) -> dict[str, str]:
    """The same records as JSON lines and as people paste them."""
    return {
        "lines": "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records),
        "stream-2": "".join(json.dumps(r, indent=2) + "\n" for r in records),
        "stream-tab": "".join(json.dumps(r, indent="\t") + "\n" for r in records),
        "array-4": json.dumps(records, indent=4) + "\n",
        "array-one-line": json.dumps(records) + "\n",
    }


@pytest.mark.parametrize("shape", list(shapes(KLOG_JSON)))
@pytest.mark.parametrize(
    ("name", "records", "fmt", "levels"),
    [
        ("kube-proxy.log", KLOG_JSON, "klog-json", ["error", "info", "info"]),
        ("rabbit@rmq-0.log", RABBITMQ_JSON, "rabbitmq", ["error", "info"]),
        ("audit.log", AUDIT, "k8s-audit", ["debug", "error"]),
    ],
)
def test_every_shape_reads_as_the_json_lines_do(read, shape, name, records, fmt, levels):
    loaded = read(name, shapes(records)[shape])
    assert loaded.summary.files["format"].to_list() == [fmt]
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("line", "ts")
    assert events["level"].to_list() == levels
    assert events["ts"].is_sorted() and events["ts"].null_count() == 0


def test_one_pretty_object_pasted_from_a_ticket(read):
    loaded = read("ticket.json", json.dumps(KLOG_JSON[0], indent=3) + "\n")
    assert loaded.summary.files["format"].to_list() == ["klog-json"]
    row = loaded.events.row(0, named=True)
    assert (row["line"], row["level"], row["template"]) == (
        1,
        "error",
        "Failed to execute iptables-restore",
    )
    # every line of the pasted object is accounted for by the one record
    files = loaded.summary.files.row(0, named=True)
    assert files["lines"] == files["first_lines"] + files["continuation_lines"]


@pytest.mark.parametrize("pretty", [False, True])
def test_audit_eventlist_batches(read, pretty):
    batches = [
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": AUDIT},
        {
            "kind": "EventList",
            "apiVersion": "audit.k8s.io/v1",
            "metadata": {},
            "items": [_audit_event(3, "delete", 200, 3)],
        },
    ]
    indent = 2 if pretty else None
    text = "".join(json.dumps(b, indent=indent) + "\n" for b in batches)
    loaded = read("audit-webhook.log", text)
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("ts")
    assert events["kind"].to_list() == ["log", "log", "change"]
    assert events["level"].to_list()[:2] == ["debug", "error"]
    if not pretty:  # a one-line batch's events share its line
        assert events["line"].to_list() == [1, 1, 2]


def _listed(name: str, index: int, key: str | None) -> list[dict]:
    """The records of a parser's own sample document (a page with a list under ``key``,
    or, with no key, an array)."""
    import parsers

    document = json.loads(parsers.registry.get(name).samples[index].text)
    return document if key is None else document[key]


@pytest.mark.parametrize("shape", list(shapes(KLOG_JSON)))
@pytest.mark.parametrize(
    ("name", "key", "fmt"),
    [
        ("github-actions", "jobs", "github-actions"),
        ("circleci", "items", "circleci"),
        ("gitlab-ci", None, "gitlab-ci"),
        ("k8s-events", "items", "k8s-events"),
    ],
)
def test_the_api_json_formats_read_every_shape_too(read, shape, name, key, fmt):
    index = 1 if name == "circleci" else 0
    records = _listed(name, index, key)
    loaded = read("pasted.json", shapes(records)[shape])
    assert loaded.summary.files["format"].to_list() == [fmt]
    assert loaded.summary.unparsed_lines == 0
    lines = read("lines.json", shapes(records)["lines"]).events
    events = loaded.events
    assert sorted(events["message"].to_list()) == sorted(lines["message"].to_list())
    assert sorted(events["ts"].drop_nulls().to_list()) == sorted(lines["ts"].drop_nulls().to_list())

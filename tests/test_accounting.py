"""Whatever the input, loading never crashes and every line is accounted for."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import timeline
from tests.lines import every_line_accounted as accounted

REAL_LINES = [
    'E0314 18:00:01.123456       1 proxier.go:1520] "Failed to execute iptables-restore" err=<',
    "\texit status 1 (iptables-restore: line 8022 failed",
    "\t)",
    " >",
    'I0314 18:00:01.123456       1 proxier.go:812] "Sync failed" retryingTime="30s"',
    "goroutine 1 [running]:",
    "2023-03-14T18:00:01.123456789Z stderr F I0314 18:00:01.123456       1 a.go:1] hi",
    "2023-03-14T18:00:01.123456789Z stdout P part",
    '[INFO] 10.244.0.1:53523 - 19585 "A IN example.com. udp 29 false 512" NOERROR qr,rd,ra 56 0.000123s',
    "[ERROR] plugin/errors: 2 example.com. A: read udp 10.244.0.3:41012->10.96.0.10:53: i/o timeout",
    ".:53",
    "CoreDNS-1.9.3",
    "2023-03-15 02:50:01.123456+00:00 [error] <0.1234.0> closing AMQP connection <0.1234.0>",
    "  client unexpectedly closed TCP connection",
    "=ERROR REPORT==== 15-Mar-2023::02:50:01 ===",
    '{"ts":1678816801.123,"caller":"proxier.go:1520","msg":"Sync failed","v":0}',
    '{"ts":1678816801.123,"caller":',
    '{"items": [{"number": 1, "queued_at": "2023-03-14T18:00:00Z"',
    "",
    "-- Logs begin at Tue 2023-03-14 00:00:01 UTC, end at Wed 2023-03-15 03:00:00 UTC. --",
    "Mar 14 18:00:01 node-3 kubelet[926]: E0314 18:00:01.945743     926 kubelet.go:2267] x",
    "Mar 14 18:00:02 node-3 systemd[1]: Started kubelet.",
    "rabbitmq-1  | 2023-03-15 02:50:01.123456+00:00 [error] <0.1234.0> closing",
    "\x1b[36mkube-proxy-1  |\x1b[0m I0314 18:00:01.123456       1 a.go:1] hi",
    "kube-proxy.log:12:I0314 18:00:01.123456       1 a.go:1] hi",
    "--",
    "<165>1 2023-03-14T18:00:01.003Z node-7 app 12 - - [ERROR] failed",
    '{"log":"E0314 18:00:01.1 1 a.go:1] x","stream":"stderr","time":"2023-03-14T18:00:01Z"}',
]

line = st.one_of(
    st.sampled_from(REAL_LINES),
    st.text(
        alphabet=st.characters(blacklist_characters="\n\x00", blacklist_categories=("Cs",)),
        max_size=80,
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(line, max_size=40),
    final_newline=st.booleans(),
    name=st.sampled_from(["a.log", "rabbit@rmq-1.log", "jobs.json", "0.log"]),
)
@example(lines=["\ufeff"], final_newline=False, name="a.log")  # a BOM alone: no line
@example(  # a syslog blank line inside a klog record: the wrapper's line, not the record's
    lines=[
        "Mar 14 18:00:01 node-3 kubelet[926]: E0314 18:00:01.945743     926 kubelet.go:2267] x",
        "",
        "\texit status 1 (iptables-restore: line 8022 failed",
        "Mar 14 18:00:01 node-3 kubelet[926]: E0314 18:00:01.945743     926 kubelet.go:2267] x",
    ],
    final_newline=False,
    name="a.log",
)
def test_any_lines_load_and_every_line_is_accounted_for(lines, final_newline, name):
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        loaded = timeline.read(path)
    if "\r" in text and "\n" not in text:  # CR-only line ends are read as line ends
        text = text.replace("\r", "\n")
    # a byte order mark alone is no line: it is dropped, and the file is empty
    content = text.removeprefix("\ufeff")
    expected_lines = len(text.split("\n")) - (1 if text.endswith("\n") else 0) if content else 0
    assert loaded.summary.files["lines"].to_list() == [expected_lines]
    assert accounted(loaded.summary), loaded.summary.files.to_dicts()
    timeline.validate(loaded.events)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.log"
        path.write_bytes(data)
        loaded = timeline.read(path)
    assert loaded.summary.files.height == 1
    assert accounted(loaded.summary)


#: Events of one namespace as ``kubectl get events -o json`` gives them: object kind and
#: name, reason, type, message, first and last seen (minutes before NOW), count.
EVENTS = [
    ("Deployment", "orders", "ScalingReplicaSet", "Normal",
     "Scaled up replica set orders-6b7f9d8c5 to 3 from 2", 41, 41, 1),
    ("Pod", "orders-6b7f9d8c5-qz8rn", "Pulled", "Normal",
     'Successfully pulled image "registry.example.com/orders:1.42.0" in 2.2s', 40, 40, 1),
    ("Pod", "orders-6b7f9d8c5-qz8rn", "Unhealthy", "Warning",
     'Liveness probe failed: Get "http://10.1.4.9:8080/live": dial tcp 10.1.4.9:8080: '
     "connect: connection refused", 38, 12, 9),
    ("Node", "worker-3", "NodeNotReady", "Normal",
     "Node worker-3 status is now: NodeNotReady", 7, 7, 1),
]  # fmt: skip
NOW = "2024-05-06T11:00:00Z"


def _before_now(minutes: int) -> str:
    return f"2024-05-06T10:{60 - minutes:02d}:00Z"


def _event_json(index: int) -> dict:
    kind, name, reason, type_, message, first, last, count = EVENTS[index]
    at = _before_now
    return {
        "apiVersion": "v1",
        "count": count,
        "firstTimestamp": at(first),
        "involvedObject": {"kind": kind, "name": name, "namespace": "shop"},
        "kind": "Event",
        "lastTimestamp": at(last),
        "message": message,
        "metadata": {"name": f"{name}.17c{index:013x}", "namespace": "shop", "uid": f"uid-{index}"},
        "reason": reason,
        "source": {"component": "kubelet"},
        "type": type_,
    }


def _table(indexes: list[int]) -> str:
    rows = [f"{'LAST SEEN':<12}{'TYPE':<10}{'REASON':<20}{'OBJECT':<32}MESSAGE"]
    for i in indexes:
        kind, name, reason, type_, message, _first, last, _count = EVENTS[i]
        rows.append(
            f"{f'{last}m':<12}{type_:<10}{reason:<20}{f'{kind.lower()}/{name}':<32}{message}"
        )
    return "\n".join(rows) + "\n"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    in_json=st.sets(st.integers(0, len(EVENTS) - 1)),
    in_table=st.lists(st.integers(0, len(EVENTS) - 1), unique=True),
    noise=st.lists(st.sampled_from(REAL_LINES[:5]), max_size=6),
)
def test_records_read_from_two_files_count_their_lines_once_each(in_json, in_table, noise):
    """Events saved both as JSON and as a pasted table are one row each; the table's lines
    of them are duplicate lines, every other line is as it was, and ordinary log lines,
    alike or not, are rows of every file they are in."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        document = {"apiVersion": "v1", "items": [_event_json(i) for i in sorted(in_json)]}
        (folder / "events.json").write_text(json.dumps(document, indent=4))
        (folder / "events.txt").write_text(_table(in_table))
        for name in ("a.log", "b.log"):
            (folder / name).write_text("".join(f"{line}\n" for line in noise))
        loaded = timeline.read(folder, now=NOW, infer=False)
    assert accounted(loaded.summary), loaded.summary.files.to_dicts()
    events = loaded.events.filter((pl.col("source") == "k8s-event") & (pl.col("kind") == "log"))
    assert events.height == len(in_json | set(in_table))
    files = {
        Path(f).name: row
        for f, row in zip(
            loaded.summary.files["file"], loaded.summary.files.iter_rows(named=True), strict=True
        )
    }
    repeated = set(in_table) & in_json
    assert files["events.txt"]["duplicate_lines"] == len(repeated) + (
        1 if in_table and in_table[0] in repeated else 0  # the header goes with the first row
    )
    assert files["events.json"]["duplicate_lines"] == 0
    logs = loaded.events.filter(pl.col("file").str.ends_with(".log"))
    assert files["a.log"]["duplicate_rows"] == files["b.log"]["duplicate_rows"] == 0
    assert logs.height == files["a.log"]["rows"] + files["b.log"]["rows"]

"""klog JSON (``--logging-format=json``), loaded as a user would load it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import timeline
from parsers import klog_json
from parsers.common import LINE_SCHEMA

PROXY = """\
{"ts":1678816801123.4568,"caller":"iptables/proxier.go:1508","msg":"Failed to execute \
iptables-restore","err":"exit status 1 (iptables-restore: line 8022 failed\\n)"}
{"ts":1678816801123.6012,"caller":"iptables/proxier.go:858","msg":"Sync failed","v":0,\
"retryingTime":"30s"}
{"ts":1678816801140.2115,"caller":"iptables/proxier.go:820","msg":"SyncProxyRules complete",\
"v":2,"elapsed":"16.7ms"}
"""

KUBELET = """\
{"ts":1678816802001.0366,"caller":"kubelet/kubelet.go:2161","msg":"SyncLoop (PLEG): event \
for pod","v":2,"pod":{"name":"kube-proxy-x7k2p","namespace":"kube-system"},"event":{"ID":\
"3c9e1f0a-52d4-4b8e-9a61-7f2d8c0b1e44","Type":"ContainerStarted","Data":"0a1b2c3d"}}
{"ts":1678816802250.9133,"caller":"cache/reflector.go:424","msg":"k8s.io/client-go/informers/\
factory.go:150: failed to list *v1.Service: Get \\"https://10.96.0.1:443/api/v1/services?\
limit=500\\": dial tcp 10.96.0.1:443: i/o timeout\\n"}
"""

STARTUP = """\
I0314 17:41:02.510311       1 flags.go:64] FLAG: --logging-format="json"
I0314 17:41:02.510322       1 flags.go:64] FLAG: --v="2"
{"ts":1678815662518.3022,"caller":"app/server_others.go:206","msg":"Using iptables Proxier",\
"v":0}
{"ts":1678815662519.0471,"caller":"app/server.go:661","msg":"Version info","v":0,\
"version":"v1.26.2"}
{"ts":1678815662520.1272,"caller":"cache/shared_informer.go:273","msg":"Waiting for caches \
to sync for service config\\n","v":0}
"""


def logs(loaded) -> pl.DataFrame:
    """The log records of a load, by line (the loader adds the changes it infers)."""
    return loaded.events.filter(pl.col("kind") == "log").sort("line")


def attrs(events: pl.DataFrame) -> list[dict]:
    return [json.loads(a) for a in events.sort("line")["attrs"]]


def test_records_on_the_utc_clock(read):
    loaded = read("kube-proxy.log", PROXY)
    events = logs(loaded)
    assert loaded.summary.files["format"].to_list() == ["klog-json"]
    assert loaded.summary.unparsed_lines == 0
    assert events["ts"].to_list() == [
        datetime.fromisoformat("2023-03-14T18:00:01.123457+00:00"),
        datetime.fromisoformat("2023-03-14T18:00:01.123601+00:00"),
        datetime.fromisoformat("2023-03-14T18:00:01.140212+00:00"),
    ]
    # the records state their zone and year: nothing to assume
    assert loaded.summary.assumptions.filter(pl.col("what") != "host").height == 0
    assert events["source"].unique().to_list() == ["kube-proxy"]


def test_levels_from_err_and_verbosity(read):
    events = logs(read("kube-proxy.log", PROXY + KUBELET))
    # ErrorS has err and no v; InfoS is info at any verbosity (klog text writes V(2) as
    # an I line); klog.Error has neither
    assert events["level"].to_list() == ["error", "info", "info", "info", "error"]
    assert [json.loads(a).get("v") for a in events["attrs"]] == [None, 0, 2, 2, None]


def test_template_is_msg_and_the_other_keys_are_attrs(read):
    events = logs(read("kube-proxy.log", PROXY))
    assert events["template"].to_list() == [
        "Failed to execute iptables-restore",
        "Sync failed",
        "SyncProxyRules complete",
    ]
    assert events["message"][0] == "Failed to execute iptables-restore"
    assert attrs(events) == [
        {
            "caller": "iptables/proxier.go:1508",
            "err": "exit status 1 (iptables-restore: line 8022 failed\n)",
        },
        {"caller": "iptables/proxier.go:858", "v": 0, "retryingTime": "30s"},
        {"caller": "iptables/proxier.go:820", "v": 2, "elapsed": "16.7ms"},
    ]


def test_nested_values_and_escaped_quotes_survive(read):
    events = logs(read("kubelet.log", KUBELET))
    first, second = attrs(events)
    assert first["pod"] == {"name": "kube-proxy-x7k2p", "namespace": "kube-system"}
    assert first["event"]["Type"] == "ContainerStarted"
    assert set(second) == {"caller"}
    # printf-style messages end with a line break: it is dropped, and the loader masks them
    assert events["message"][1].endswith("dial tcp 10.96.0.1:443: i/o timeout")
    assert '"https://10.96.0.1:443/api/v1/services?limit=500"' in events["message"][1]
    assert events["template"][1] != events["message"][1]
    assert events["template"][0] == "SyncLoop (PLEG): event for pod"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("1678816801123.4568", "2023-03-14T18:00:01.123457"),  # what the encoder writes
        ("1678816801.123456", "2023-03-14T18:00:01.123456"),  # what the documentation shows
        ("1580306777.04728", "2020-01-29T14:06:17.047280"),
        ("1.6788168011234568e+12", "2023-03-14T18:00:01.123457"),
    ],
)
def test_seconds_or_milliseconds(read, stamp, expected):
    line = f'{{"ts":{stamp},"caller":"app/server.go:661","msg":"Version info","v":0}}\n'
    events = logs(read("kube-proxy.log", line))
    assert events["ts"].to_list() == [datetime.fromisoformat(expected + "+00:00")]


def test_startup_text_lines_are_klog_text(read):
    loaded = read("kube-proxy.log", STARTUP)
    events = logs(loaded)
    assert loaded.summary.unparsed_lines == 0
    assert events["line"].to_list() == [1, 2, 3, 4, 5]
    assert events["message"][0] == 'FLAG: --logging-format="json"'
    assert attrs(events)[0] == {"thread": "1", "caller": "flags.go:64"}
    # the text lines' year comes from the JSON records beside them
    assert events["ts"][0] == datetime.fromisoformat("2023-03-14T17:41:02.510311+00:00")
    year = loaded.summary.assumptions.filter(pl.col("what") == "year")
    assert year["value"].to_list() == ["2023"]
    assert events["template"][3] == "Version info"
    assert events["message"][4] == "Waiting for caches to sync for service config"


def test_broken_lines_are_unparsed_with_a_reason(read):
    text = (
        PROXY
        + '{"ts":1678816801150.0012,"caller":"iptables/proxier.go:858","msg":"Sync fai\n'
        + '{"ts":"2023-03-14T18:00:01Z","msg":"Sync failed"}\n'
        + '{"ts":1678816801160.5,"caller":"iptables/proxier.go:858","msg":"Sync failed","v":0}\n'
    )
    loaded = read("kube-proxy.log", text, format="klog-json")
    assert logs(loaded)["line"].sort().to_list() == [1, 2, 3, 6]
    warnings = loaded.summary.warnings.sort("line")
    assert warnings["line"].to_list() == [4, 5]
    assert warnings["reason"].to_list() == [
        "not valid JSON",
        'JSON record without a numeric "ts"',
    ]
    assert warnings["text"][0].startswith('{"ts":1678816801150.0012')
    assert loaded.summary.unparsed_lines == 2


def test_panic_after_a_record_belongs_to_it(read):
    text = PROXY + (
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1a3f2b4]\n"
        "\n"
        "goroutine 112 [running]:\n"
        "k8s.io/kubernetes/pkg/proxy/iptables.(*Proxier).syncProxyRules(0xc000412a80)\n"
        "\t/workspace/src/k8s.io/kubernetes/pkg/proxy/iptables/proxier.go:1021 +0x1c54\n"
    )
    loaded = read("kube-proxy.log", text)
    events = logs(loaded)
    assert events["line"].to_list() == [1, 2, 3]
    assert events["level"][2] == "critical"
    assert events["message"][2].startswith("SyncProxyRules complete\npanic: runtime error")
    assert loaded.summary.files["continuation_lines"].to_list() == [6]
    assert json.loads(events["attrs"][2])["elapsed"] == "16.7ms"


def test_lines_before_the_first_record_are_unparsed(read):
    text = "W0314: flag parsing failed\n" + PROXY
    loaded = read("kube-proxy.log", text)
    warnings = loaded.summary.warnings
    assert warnings["line"].to_list() == [1]
    assert logs(loaded)["line"].sort().to_list() == [2, 3, 4]


def test_cri_prefixed_json_lines(read):
    path = "nodes/ip-10-0-1-5/var/log/pods/kube-system_kube-proxy-x7k2p_3c9e1f0a/kube-proxy/0.log"
    text = "".join(
        f"2023-03-14T18:00:01.{i:03d}999999Z stderr F {line}\n"
        for i, line in enumerate(PROXY.splitlines())
    )
    loaded = read(path, text)
    events = logs(loaded)
    assert loaded.summary.files["prefix"].to_list() == ["cri"]
    assert events["ts"][0] == datetime.fromisoformat("2023-03-14T18:00:01.123457+00:00")
    assert events["host"].unique().to_list() == ["ip-10-0-1-5"]
    assert events["component"].unique().to_list() == ["kube-proxy"]


def test_sniff():
    score = klog_json.sniff(PROXY.splitlines() + STARTUP.splitlines())
    assert score.score == 1.0
    assert score.why == "6 of 6 JSON sample lines are klog JSON records"
    zap = ['{"level":"info","ts":1678816801.123,"caller":"main.go:12","msg":"started"}']
    assert klog_json.sniff(zap).score == 0.0
    text = ['I0314 18:00:01.123601       1 proxier.go:858] "Sync failed" retryingTime="30s"']
    assert klog_json.sniff(text).score == 0.0


def test_parser_output_keeps_utc_and_spans():
    lines = pl.LazyFrame({"text": PROXY.removesuffix("\n").split("\n")}).with_columns(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        prefix_ts=pl.lit(None, pl.Datetime("us", "UTC")),
        stream=pl.lit(None, pl.String),
        host=pl.lit(None, pl.String),
        container=pl.lit(None, pl.String),
        path=pl.lit("kube-proxy.log"),
    )
    records = klog_json.parse(lines.select(list(LINE_SCHEMA))).collect()
    assert records["utc_offset_s"].to_list() == [0, 0, 0]
    assert records["year_missing"].to_list() == [False, False, False]
    assert records["end_line"].to_list() == [1, 2, 3]


@pytest.mark.parametrize("separators", [(", ", ": "), (",", ": "), (", ", ":")])
def test_records_written_again_with_spaces_read_as_written(read, separators):
    """A collector that decodes each record and encodes it again (Python's ``json.dumps``,
    a log shipper) puts spaces after the commas or colons; the records are the same."""

    def spaced(text: str) -> str:
        return "".join(
            json.dumps(json.loads(line), separators=separators) + "\n"
            if line.startswith("{")
            else line + "\n"
            for line in text.splitlines()
        )

    text = STARTUP + PROXY + KUBELET
    compact, loose = read("kube-proxy.log", text), read("kube-proxy.log", spaced(text))
    assert loose.summary.files["format"].to_list() == ["klog-json"]
    assert loose.summary.unparsed_lines == 0
    columns = ["ts", "level", "message", "template", "line"]
    assert logs(loose).select(columns).equals(logs(compact).select(columns))
    assert attrs(logs(loose)) == attrs(logs(compact))


REAL = Path(__file__).parent / "data" / "real" / "klog-json"


def test_a_real_kubelet_json_line_is_an_error_at_its_millisecond_time():
    """kubelet with ``--logging-format=json`` (kubernetes-sigs/descheduler#412): ``ts`` in
    milliseconds, an ``err`` and ``"v":0``, the program named by what it says."""
    loaded = timeline.read(REAL / "kubelet-register-node.log", infer=False, cache=False)
    assert loaded.summary.files["unparsed_lines"].sum() == 0
    row = loaded.events.row(0, named=True)
    assert (row["kind"], row["level"], row["source"]) == ("log", "error", "kubelet")
    assert row["ts"] == datetime(2020, 10, 12, 13, 4, 49, 919717, tzinfo=UTC)
    assert row["message"] == "Unable to register node with API server"
    assert json.loads(row["attrs"])["err"].endswith("connect: connection refused")

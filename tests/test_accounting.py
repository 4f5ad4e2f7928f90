"""Whatever the input, loading never crashes and every line is accounted for."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import timeline

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


def accounted(summary) -> bool:
    f = summary.files
    return bool(
        (
            f["first_lines"] + f["continuation_lines"] + f["unparsed_lines"] + f["wrapper_lines"]
            == f["lines"]
        ).all()
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

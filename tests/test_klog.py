"""klog text (kube-proxy and friends), loaded as a user would load it."""

from __future__ import annotations

import json
import os
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import timeline
from parsers import klog
from parsers.common import LINE_SCHEMA
from tests.lines import read_real

REAL = Path(__file__).parent / "data" / "real" / "klog"

POD_LOG = (
    "nodes/ip-10-0-1-5/var/log/pods/kube-system_kube-proxy-x7k2p_3c9e1f0a-52d4-4b8e-9a61-7f2d8c0b1e44/"
    "kube-proxy/0.log"
)

STARTUP = """\
I0314 17:41:02.475311       1 node.go:163] Successfully retrieved node IP: 10.0.1.5
I0314 17:41:02.475401       1 server_others.go:138] "Detected node IP" address="10.0.1.5"
I0314 17:41:02.518302       1 server_others.go:206] "Using iptables Proxier"
I0314 17:41:02.518331       1 server_others.go:213] "kube-proxy running in dual-stack mode" \
ipFamily=IPv4
I0314 17:41:02.519047       1 server.go:661] "Version info" version="v1.24.10"
I0314 17:41:02.519062       1 server.go:663] "Golang settings" GOGC="" GOMAXPROCS="" \
GOTRACEBACK=""
I0314 17:41:02.519822       1 conntrack.go:52] "Setting nf_conntrack_max" \
nf_conntrack_max=131072
I0314 17:41:02.520110       1 config.go:317] "Starting service config controller"
I0314 17:41:02.520127       1 shared_informer.go:255] Waiting for caches to sync for service \
config
I0314 17:41:02.620634       1 shared_informer.go:262] Caches are synced for service config
"""

SYNC_FAILED_QUOTED = """\
E0314 18:00:01.123456       1 proxier.go:1508] "Failed to execute iptables-restore" \
err="exit status 1 (iptables-restore: line 8022 failed\\n)"
I0314 18:00:01.123601       1 proxier.go:858] "Sync failed" retryingTime="30s"
"""

SYNC_FAILED_BLOCK = """\
I0314 18:00:31.190112       1 proxier.go:1464] "Reloading service iptables data" \
numServices=812 numEndpoints=2301 numFilterChains=4 numFilterRules=9 numNATChains=1822 \
numNATRules=6102
E0314 18:00:31.204771       1 proxier.go:1508] "Failed to execute iptables-restore" err=<
\texit status 1 (iptables-restore: line 8022 failed
\t)
 >
I0314 18:00:31.204840       1 proxier.go:858] "Sync failed" retryingTime="30s"
I0314 18:00:31.204903       1 proxier.go:820] "SyncProxyRules complete" elapsed="14.791ms"
"""

OLD_STYLE = """\
I0313 14:02:11.907126       1 server.go:643] Version: v1.21.14
E0313 14:05:40.013398       1 proxier.go:1600] Failed to execute iptables-restore: exit status 1 \
(iptables-restore: line 8022 failed
)
I0313 14:05:40.013520       1 proxier.go:857] Sync failed; retrying in 30s
"""

RESTORE_INPUT = """\
E0313 14:05:40.013398       1 proxier.go:1600] Failed to execute iptables-restore: exit status 1 \
(iptables-restore: line 7 failed
)
*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
-A KUBE-SERVICES -m comment --comment "default/kubernetes:https cluster IP" -m tcp -p tcp \
-d 10.96.0.1/32 --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
COMMIT
I0313 14:05:40.013520       1 proxier.go:857] Sync failed; retrying in 30s
"""

PANIC = """\
I0314 21:03:11.482713       1 proxier.go:820] "SyncProxyRules complete" elapsed="15.231ms"
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1a3f2b4]

goroutine 112 [running]:
k8s.io/kubernetes/pkg/proxy/iptables.(*Proxier).syncProxyRules(0xc000412a80)
\t/workspace/src/k8s.io/kubernetes/pkg/proxy/iptables/proxier.go:1021 +0x1c54
k8s.io/kubernetes/pkg/util/async.(*BoundedFrequencyRunner).tryRun(0xc0003e2b40)
\t/workspace/src/k8s.io/kubernetes/pkg/util/async/bounded_frequency_runner.go:296 +0xc5
created by k8s.io/kubernetes/pkg/util/async.(*BoundedFrequencyRunner).Loop
\t/workspace/src/k8s.io/kubernetes/pkg/util/async/bounded_frequency_runner.go:231 +0x6a
I0314 21:03:12.991204       1 server.go:661] "Version info" version="v1.24.10"
"""


def cri(text: str, start: str = "2023-03-14T18:00:01") -> str:
    """``text`` with a containerd CRI prefix on every line (the klog time is kept apart)."""
    return "".join(
        f"{start}.{i:06d}123Z stderr F {line}\n" for i, line in enumerate(text.splitlines())
    )


def logs(loaded) -> pl.DataFrame:
    """The log records of a load, by line (the loader adds the changes it infers)."""
    return loaded.events.filter(pl.col("kind") == "log").sort("line")


def attrs(events: pl.DataFrame) -> list[dict]:
    return [json.loads(a) for a in events.sort("line")["attrs"]]


def one(events: pl.DataFrame, line: int) -> dict:
    return events.filter(pl.col("line") == line).row(0, named=True)


# --- header, levels, time ---------------------------------------------------------------


def test_startup_lines_are_read_field_by_field(read):
    loaded = read("kube-proxy.log", STARTUP, year=2023)
    events = logs(loaded)
    assert loaded.summary.unparsed_lines == 0
    assert events.height == 10
    assert events["ts"][2] == datetime.fromisoformat("2023-03-14T17:41:02.518302+00:00")
    assert set(events["level"]) == {"info"}
    assert events["template"][2] == "Using iptables Proxier"
    assert events["template"][4] == "Version info"
    assert events["message"][4] == '"Version info" version="v1.24.10"'
    got = attrs(events)
    assert got[4] == {"thread": "1", "caller": "server.go:661", "version": "v1.24.10"}
    assert got[3]["ipFamily"] == "IPv4"
    assert got[5] == {"thread": "1", "caller": "server.go:663", "GOGC": "", "GOMAXPROCS": ""} | {
        "GOTRACEBACK": ""
    }
    assert got[6]["nf_conntrack_max"] == "131072"
    assert got[0] == {"thread": "1", "caller": "node.go:163"}


def test_printf_messages_keep_no_template_of_their_own(read):
    events = logs(read("kube-proxy.log", STARTUP, year=2023))
    # the loader masks them; a quoted message would have become the template as written
    assert events["message"][0] == "Successfully retrieved node IP: 10.0.1.5"
    assert events["template"][0] != events["message"][0]
    assert "10.0.1.5" not in events["template"][0]


@pytest.mark.parametrize(
    ("letter", "level"), [("I", "info"), ("W", "warning"), ("E", "error"), ("F", "critical")]
)
def test_severity_letters(read, letter, level):
    line = (
        f'{letter}0314 18:00:01.000001       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
    )
    events = logs(read("kube-proxy.log", line, year=2023))
    assert events["level"].to_list() == [level]


def test_thread_id_padding_and_wide_ids(read):
    text = (
        'I0314 18:00:01.000001       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
        'I0314 18:00:01.000002    6315 proxier.go:858] "Sync failed" retryingTime="30s"\n'
        'I0314 18:00:01.000003 1234567 proxier.go:858] "Sync failed" retryingTime="30s"\n'
        'I0314 18:00:01.000004 12345678 proxier.go:858] "Sync failed" retryingTime="30s"\n'
    )
    loaded = read("kube-proxy.log", text, year=2023)
    assert loaded.summary.unparsed_lines == 0
    assert [a["thread"] for a in attrs(logs(loaded))] == ["1", "6315", "1234567", "12345678"]
    assert {a["caller"] for a in attrs(logs(loaded))} == {"proxier.go:858"}


def test_directory_in_caller_and_empty_message(read):
    text = (
        "I0314 18:00:01.000001       1 k8s.io/kubernetes/pkg/proxy/iptables/proxier.go:858] "
        '"Sync failed" retryingTime="30s"\n'
        "W0314 18:00:01.000002       1 warnings.go:70]\n"
    )
    loaded = read("kube-proxy.log", text, year=2023)
    assert loaded.summary.unparsed_lines == 0
    got = attrs(logs(loaded))
    assert got[0]["caller"] == "k8s.io/kubernetes/pkg/proxy/iptables/proxier.go:858"
    assert logs(loaded)["message"][1] == ""


def test_leap_day_parses_and_an_impossible_date_is_unparsed(read):
    text = (
        'I0229 10:00:00.000001       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
        'I0230 10:00:00.000002       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
        'I0314 25:00:00.000003       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
    )
    loaded = read("kube-proxy.log", text, year=2024)
    assert logs(loaded)["ts"].to_list() == [
        datetime.fromisoformat("2024-02-29T10:00:00.000001+00:00")
    ]
    warnings = loaded.summary.warnings.filter(pl.col("line").is_not_null())
    assert warnings["line"].to_list() == [2, 3]
    assert set(warnings["reason"]) == {"klog header with an impossible date or time"}


# --- years and zones --------------------------------------------------------------------


def test_cri_prefix_gives_the_year_for_certain(read):
    loaded = read(POD_LOG, cri(SYNC_FAILED_QUOTED))
    events = logs(loaded)
    # the program's own time is kept; the prefix only says which year it is
    assert events["ts"].to_list() == [
        datetime.fromisoformat("2023-03-14T18:00:01.123456+00:00"),
        datetime.fromisoformat("2023-03-14T18:00:01.123601+00:00"),
    ]
    year = loaded.summary.assumptions.filter(pl.col("what") == "year")
    assert year["certainty"].to_list() == ["certain"]
    assert events["host"].unique().to_list() == ["ip-10-0-1-5"]
    assert events["source"].unique().to_list() == ["kube-proxy"]
    assert events["component"].unique().to_list() == ["kube-proxy"]


def test_bare_file_takes_the_year_given(read):
    loaded = read("kube-proxy.log", SYNC_FAILED_QUOTED, year=2023)
    assert logs(loaded)["ts"].min() == datetime.fromisoformat("2023-03-14T18:00:01.123456+00:00")
    year = loaded.summary.assumptions.filter(pl.col("what") == "year")
    assert year.select("value", "certainty").row(0) == ("2023", "stated")
    zone = loaded.summary.assumptions.filter(pl.col("what") == "time zone")
    assert zone["value"].to_list() == ["UTC"]


def test_december_to_january_moves_on_a_year(read):
    text = (
        'I1231 23:59:59.900001       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
        'I0101 00:00:00.100002       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
        'I0101 00:00:30.100003       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
    )
    events = logs(read("kube-proxy.log", text, year=2022))
    assert [t.year for t in events["ts"]] == [2022, 2023, 2023]
    assert events["ts"].is_sorted()


def _new_year_lines(year: int, seed: int, count: int) -> tuple[str, list[datetime]]:
    """A busy klog program's lines around New Year of ``year``, each line's time taken a
    few milliseconds before it is written, so that neighbours are out of order (a 31
    December line after a 1 January one), and the times the lines write."""
    rng = random.Random(seed)
    at = datetime(year, 12, 31, 23, 59, 59, 900_000, tzinfo=UTC)
    written = []
    for _ in range(count):
        at += timedelta(microseconds=rng.randint(1_000, 5_000))
        written.append(at - timedelta(microseconds=rng.randint(0, 30_000)))
    first_january = next(i for i, t in enumerate(written) if t.year > year)
    written.insert(first_january + 1, written[first_january - 1] + timedelta(microseconds=1))
    text = "".join(
        f'I{t:%m%d %H:%M:%S.%f}       1 proxier.go:858] "Syncing iptables rules"\n' for t in written
    )
    return text, written


@pytest.mark.parametrize(("year", "seed"), [(2022, 1), (2023, 2), (2027, 3), (2031, 4)])
def test_lines_written_out_of_order_across_new_year_keep_their_years(read, year, seed):
    text, written = _new_year_lines(year, seed, count=60)
    events = logs(read("kube-proxy.log", text, year=year)).sort("line")
    assert events["ts"].to_list() == written


def test_a_quiet_year_between_january_and_december_lines_is_no_new_year_out_of_order(read):
    text = (
        'I0101 10:00:00.000000       1 proxier.go:858] "Syncing iptables rules"\n'
        'I1231 12:00:00.000000       1 proxier.go:858] "Syncing iptables rules"\n'
    )
    events = logs(read("kube-proxy.log", text, year=2023)).sort("line")
    assert [t.year for t in events["ts"]] == [2023, 2023]


@pytest.mark.parametrize(
    ("year", "late"), [(2022, timedelta(minutes=10)), (2025, timedelta(days=20))]
)
def test_the_modification_time_gives_the_year_of_a_file_that_saw_new_year(write, year, late):
    text, written = _new_year_lines(year, year, count=40)
    path = write("kube-proxy.log", text)
    stamp = (written[-1] + late).timestamp()
    os.utime(path, (stamp, stamp))
    events = logs(timeline.read(path, infer=False, cache=False)).sort("line")
    assert events["ts"].to_list() == written


def test_the_other_files_span_gives_the_year_of_the_first_record_not_of_its_date(write):
    """A bare file from 31 December into 1 January, beside files of the June after: its
    first record is the December nearest that June, and the year turns after it."""
    text, written = _new_year_lines(2023, 5, count=60)
    bare = write("logs/kube-proxy.log", text)
    write(
        "logs/node-1/var/log/pods/kube-system_kube-proxy-q8x2d_9f1c/kube-proxy/0.log",
        "2024-06-11T07:00:00.000000001Z stderr F I0611 07:00:00.000000       1 proxier.go:858] "
        '"Syncing iptables rules"\n',
    )
    events = logs(timeline.read(bare.parent, infer=False, cache=False))
    ours = events.filter(pl.col("file") == str(bare)).sort("line")
    assert ours["ts"].to_list() == written


# --- structured values ------------------------------------------------------------------


def test_quoted_error_with_escaped_line_break(read):
    events = logs(read("kube-proxy.log", SYNC_FAILED_QUOTED, year=2023))
    first, second = attrs(events)
    assert first["err"] == "exit status 1 (iptables-restore: line 8022 failed\n)"
    assert events["level"].to_list() == ["error", "info"]
    assert events["template"].to_list() == ["Failed to execute iptables-restore", "Sync failed"]
    assert second == {"thread": "1", "caller": "proxier.go:858", "retryingTime": "30s"}


def test_multi_line_value_is_one_record(read):
    loaded = read("kube-proxy.log", SYNC_FAILED_BLOCK, year=2023)
    events = logs(loaded)
    assert events["line"].to_list() == [1, 2, 6, 7]
    files = loaded.summary.files.row(0, named=True)
    assert (files["rows"], files["continuation_lines"], files["unparsed_lines"]) == (4, 3, 0)
    error = one(events, 2)
    assert error["level"] == "error"
    assert error["template"] == "Failed to execute iptables-restore"
    assert json.loads(error["attrs"])["err"] == (
        "exit status 1 (iptables-restore: line 8022 failed\n)"
    )
    assert error["message"] == (
        '"Failed to execute iptables-restore" err=<\n'
        "\texit status 1 (iptables-restore: line 8022 failed\n\t)\n >"
    )
    reloading = json.loads(one(events, 1)["attrs"])
    assert reloading["numNATRules"] == "6102" and reloading["numServices"] == "812"
    assert json.loads(one(events, 7)["attrs"])["elapsed"] == "14.791ms"


def test_block_value_among_other_pairs():
    text = (
        'E0314 18:00:31.204771       1 proxier.go:1508] "Failed to execute iptables-restore" '
        'err=<\n\tline one\n\tline two\n > ipFamily=IPv4 node="ip-10-0-1-5"\n'
    )
    record = parse(text).row(0, named=True)
    assert (record["line"], record["end_line"]) == (1, 4)
    assert json.loads(record["attrs"]) == {
        "thread": "1",
        "caller": "proxier.go:1508",
        "err": "line one\nline two",
        "ipFamily": "IPv4",
        "node": "ip-10-0-1-5",
    }
    assert record["host"] is None  # the node named in a value does not move the record


@pytest.mark.parametrize("indent", ["\t", "        ", "    ", "  "])
@pytest.mark.parametrize(
    ("after", "pairs"),
    [
        ("\n >", {}),
        ('\n > node="worker-2"', {"node": "worker-2"}),
        ("", {}),  # cut short before its closing line
    ],
)
def test_a_block_whose_tabs_became_spaces_keeps_its_value(indent, after, pairs):
    """A terminal, ``journalctl`` or a paste turns the tab before each line of a block
    into spaces, and an excerpt may end before the block's `` >``: the value is still
    the block's lines, not the ``<`` that opens it."""
    text = (
        'E1124 23:49:48.350388   48494 portforward.go:413] "Unhandled Error" err=<\n'
        f"{indent}an error occurred forwarding 9928 -> 9090: exit status 1\n"
        f"{indent}\tat line 11{after}\n"
    )
    record = parse(text).row(0, named=True)
    assert record["template"] == "Unhandled Error"
    assert json.loads(record["attrs"]) == {
        "thread": "48494",
        "caller": "portforward.go:413",
        "err": "an error occurred forwarding 9928 -> 9090: exit status 1\n\tat line 11",
        **pairs,
    }


def test_real_block_with_spaces_cut_short_keeps_its_lines():
    events = read_real(REAL / "kube-proxy.journal", year=2025).events
    assert json.loads(events["attrs"][0])["err"] == (
        'exit status 2: ip6tables-restore v1.8.7 (nf_tables): unknown option "--xor-mark"\n'
        "Error occurred at line: 11\n"
        "Try `ip6tables-restore -h' or 'ip6tables-restore --help' for more information."
    )


def test_unusual_values_are_decoded_exactly():
    text = (
        'I0314 18:00:01.000001       1 endpointslicecache.go:366] "Setting endpoints for '
        'service port name" portName="default/web:http" endpoints=[10.244.1.7:8080 '
        "10.244.2.9:8080]\n"
        'I0314 18:00:01.000002       1 config.go:97] "Set sysctl" '
        'entry="net/netfilter/nf_conntrack_max" value=131072\n'
        'I0314 18:00:01.000003       1 event.go:294] "Event occurred" '
        'object="kube-system/kube-proxy-x7k2p" message="Back-off \\"kube-proxy\\" \\\\ retry"\n'
        'I0314 18:00:01.000004       1 node.go:77] "Délai dépassé" pod="kube-system/café"\n'
        'I0314 18:00:01.000005       1 raw.go:12] "bytes \\x01 in \\a, \\xff" rules=[{Line:8022 '
        "Data:-A KUBE-SEP-X -j DNAT} {Line:8023 Data:COMMIT}] empty=\n"
    )
    records = parse(text)
    got = [json.loads(a) for a in records["attrs"]]
    assert got[0]["endpoints"] == "[10.244.1.7:8080 10.244.2.9:8080]"
    assert got[0]["portName"] == "default/web:http"
    assert got[1] == {
        "thread": "1",
        "caller": "config.go:97",
        "entry": "net/netfilter/nf_conntrack_max",
        "value": "131072",
    }
    assert got[2]["message"] == 'Back-off "kube-proxy" \\ retry'
    assert records["template"][3] == "Délai dépassé" and got[3]["pod"] == "kube-system/café"
    # Go's own escapes are decoded; a byte that is not UTF-8 leaves the text as written
    assert records["template"][4] == "bytes \\x01 in \\a, \\xff"
    assert parse(text.replace(", \\xff", ""))["template"][4] == "bytes \x01 in \x07"
    assert got[4]["rules"] == "[{Line:8022 Data:-A KUBE-SEP-X -j DNAT} {Line:8023 Data:COMMIT}]"
    assert got[4]["empty"] == ""


@pytest.mark.parametrize(
    ("value", "after"),
    [
        (
            "&{ID:96d459e4-c1a6-4412-b38d-dbf299dafd19 Type:ContainerStarted "
            "Data:578f72d0d40c1758c61041acae108c22d210cbd1c6ea879be27b101870921454}",
            "",
        ),
        ("map[app:nginx pod-template-hash:7c5ddbdf54 tier:web]", ' reason="Scheduled"'),
        ("[{Name:http Port:80 Protocol:TCP} {Name:https Port:443 Protocol:TCP}]", " count=2"),
        ('{"metadata":{"name":"a b","labels":{"k":"v w"}},"spec":{}}', ' k="v"'),
        ("&{{0 0} {[] map[] {1 2}} [fd00::1]}", " retry=true"),
        ("map[a:[1 2] b:map[c:{d e}]]", ""),
    ],
)
def test_bare_values_with_spaces_inside_brackets_are_one_value(value, after):
    """Go's ``%+v`` of a struct, pointer, map or slice (kubelet's ``SyncLoop (PLEG)``
    events, older klog's non-string values) and JSON objects hold spaces inside brackets."""
    line = (
        "I0814 19:37:07.384915    1734 kubelet.go:2134] "
        f'"SyncLoop (PLEG): event for pod" pod="default/nginx-7c5ddbdf54-x2kqp" event={value}{after}'
    )
    record = parse(line + "\n").row(0, named=True)
    assert record["template"] == "SyncLoop (PLEG): event for pod"
    got = json.loads(record["attrs"])
    assert got["pod"] == "default/nginx-7c5ddbdf54-x2kqp" and got["event"] == value
    assert len(got) == 4 + after.count("=")


def test_quoted_message_followed_by_words_is_not_structured():
    # kube-proxy 1.24 logs this key with a space in it; the line is kept as printf text
    text = (
        'I0314 17:41:02.519858       1 conntrack.go:83] "Setting conntrack hashsize" '
        "conntrack hashsize=32768\n"
    )
    record = parse(text).row(0, named=True)
    assert record["template"] is None
    assert json.loads(record["attrs"]) == {"thread": "1", "caller": "conntrack.go:83"}


def test_plain_and_exact_paths_agree():
    messages = [
        '"Sync failed" retryingTime="30s"',
        '"Using iptables Proxier"',
        '"Reloading service iptables data" numServices=812 numEndpoints=2301',
        '"Failed to execute iptables-restore" err="exit status 1 (line 8022 failed\\n)"',
        '"x" a="b=c d" e="f g" h="\\u00e9 \\\\ \\t"',
        '"" k=""',
        '"Golang settings" GOGC="" GOMAXPROCS="" GOTRACEBACK=""',
    ]
    frame = pl.DataFrame({"m": messages})
    assert frame.select(pl.col("m").str.contains(klog._PLAIN_PAIRS).all()).item()
    plain_template, plain_pairs = klog._plain_fields(pl.col("m"))
    exact_template, exact_pairs = klog._exact_fields(pl.col("m"))
    got = frame.select(pt=plain_template, pp=plain_pairs, et=exact_template, ep=exact_pairs)
    for row in got.iter_rows(named=True):
        assert row["pt"] == row["et"]
        plain = json.loads('{"a":"b' + (row["pp"] or '"') + "}")
        assert plain == json.loads('{"a":"b' + row["ep"] + "}")


def test_values_that_would_break_the_plain_path_take_the_exact_one():
    shapes = [
        '"x" k=" leading space" j="b"',  # '" ' would look like a closing quote
        '"x" a="b" n=1',  # quoted and bare together
        '"x" k="a\\"b"',  # an escaped quote
        '"x" k="b=" j="c"',  # '="' at the end of a value would look like an opening quote
        '"x" sel=app=web',  # '=' inside a bare value
        '"Délai" k="v"',  # not ASCII: byte and character offsets differ
    ]
    frame = pl.DataFrame({"m": shapes})
    assert not frame.select(pl.col("m").str.contains(klog._PLAIN_PAIRS).any()).item()


# Go's strconv.Quote, for the property test below.
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_ESCAPES |= {"\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(value: str) -> str:
    out = []
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def klog_value(value: str) -> str:
    """A string value as klog v2 writes it: quoted, or a ``<`` block when it has a break."""
    if "\n" not in value:
        return go_quote(value)
    lines = value.split("\n")
    body = "".join(f"\t{line}\n" for line in lines[:-1])
    return f"<\n{body}\t{lines[-1]}\n >" if lines[-1] else f"<\n{body} >"


# Characters of the Basic Multilingual Plane: Go writes the rare non-printable ones above it
# as \U escapes, which JSON has no form for and which are kept as written.
_TEXT = st.text(
    st.characters(max_codepoint=0xFFFF, blacklist_categories=("Cs",), blacklist_characters="\r"),
    max_size=30,
)
_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    message=_TEXT.filter(lambda s: "\n" not in s),
    pairs=st.dictionaries(_KEYS, _TEXT, max_size=4),
)
def test_any_string_values_come_back_as_written(message, pairs):
    written = " ".join([go_quote(message), *(f"{k}={klog_value(v)}" for k, v in pairs.items())])
    text = f"I0314 18:00:01.000001       1 proxier.go:858] {written}\n"
    text += 'I0314 18:00:02.000002       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
    records = parse(text)
    assert records["unparsed"].null_count() == 2
    got = json.loads(records["attrs"][0])
    # a block cannot tell a value that ends with a line break from one that does not
    assert got == {"thread": "1", "caller": "proxier.go:858"} | {
        k: (v[:-1] if v.endswith("\n") else v) for k, v in pairs.items()
    }
    assert records["template"][0] == message


# --- continuation lines -----------------------------------------------------------------


def test_old_style_error_and_its_closing_line(read):
    loaded = read("kube-proxy.log", OLD_STYLE, year=2023)
    events = logs(loaded)
    assert events["line"].to_list() == [1, 2, 4]
    assert events["message"][1] == (
        "Failed to execute iptables-restore: exit status 1 (iptables-restore: line 8022 failed\n)"
    )
    assert events["level"].to_list() == ["info", "error", "info"]
    assert json.loads(events["attrs"][1]) == {"thread": "1", "caller": "proxier.go:1600"}


def test_restore_input_after_an_error_belongs_to_it(read):
    loaded = read("kube-proxy.log", RESTORE_INPUT, year=2023)
    events = logs(loaded)
    assert events["line"].to_list() == [1, 8]
    assert events["message"][0].splitlines()[-1] == "COMMIT"
    assert loaded.summary.files["continuation_lines"].to_list() == [6]
    assert loaded.summary.unparsed_lines == 0


def test_panic_and_goroutine_dump_are_one_record(read):
    loaded = read("kube-proxy.log", PANIC, year=2023)
    events = logs(loaded)
    assert events["line"].to_list() == [1, 12]
    assert events["level"].to_list() == ["critical", "info"]
    assert "goroutine 112 [running]:" in events["message"][0]
    assert events["message"][0].count("\n") == 10
    assert loaded.summary.files["continuation_lines"].to_list() == [10]
    record = parse(PANIC).row(0, named=True)
    assert (record["line"], record["end_line"]) == (1, 11)


# --- what is not klog -------------------------------------------------------------------


def test_clean_input_has_no_unparsed_lines(read):
    text = STARTUP + SYNC_FAILED_QUOTED + SYNC_FAILED_BLOCK + OLD_STYLE + PANIC
    loaded = read("kube-proxy.log", text, year=2023)
    assert loaded.summary.unparsed_lines == 0
    assert loaded.summary.warnings.height == 0
    assert loaded.summary.files["format"].to_list() == ["klog"]


def test_garbage_before_the_first_header_is_counted_with_its_line(read):
    text = "Flag --cluster-cidr has been deprecated, use config file\n\n" + SYNC_FAILED_QUOTED
    loaded = read("kube-proxy.log", text, year=2023)
    assert logs(loaded)["line"].sort().to_list() == [3, 4]
    warnings = loaded.summary.warnings
    assert warnings["line"].to_list() == [1, 2]
    assert set(warnings["reason"]) == {"before the first klog header"}
    assert warnings["text"][0] == "Flag --cluster-cidr has been deprecated, use config file"
    assert loaded.summary.unparsed_lines == 2


# --- a log file's header ----------------------------------------------------------------


def file_header(created: str, machine: str, go: str = "go1.20.5") -> str:
    """The four lines klog writes at the top of a log file it creates."""
    return (
        f"Log file created at: {created}\n"
        f"Running on machine: {machine}\n"
        f"Binary: Built with gc {go} for linux/amd64\n"
        "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n"
    )


@pytest.mark.parametrize(
    ("name", "rows", "created", "machine"),
    [
        (
            "kube-controller-manager.k8s-master3.unknownuser.log.WARNING.20180812-023849.5071",
            4,
            datetime(2018, 8, 12, 2, 38, 49, tzinfo=UTC),
            "k8s-master3",
        ),
        (
            "kube-controller-manager.ERROR",
            6,
            datetime(2017, 5, 23, 11, 23, 2, tzinfo=UTC),
            "ip-192-168-4-174",
        ),
    ],
)
def test_real_log_file_header_is_a_record_that_dates_and_places_the_others(
    name, rows, created, machine
):
    """klog's log files (``--log_dir``) open with when and on which machine they were
    created: a row at that time, whose year the records after it take (a year given to
    the read is for files that state none), and whose machine is their host."""
    loaded = read_real(REAL / name, year=2023)
    events = loaded.events.sort("line")
    assert events.height == rows
    opened = events.row(0, named=True)
    assert (opened["line"], opened["ts"], opened["level"]) == (1, created, "info")
    assert opened["template"] == "Log file created at: <TS>"
    assert json.loads(opened["attrs"])["machine"] == machine
    assert opened["message"].splitlines()[1] == f"Running on machine: {machine}"
    assert set(events["ts"].dt.year()) == {created.year}
    assert set(events["host"]) == {machine}
    assert set(events["source"]) == {"kube-controller-manager"}
    assert events["ts"].is_sorted()
    assert "year" not in set(loaded.summary.assumptions["what"])


def test_records_after_new_year_take_the_year_after_the_file_was_created(read):
    text = file_header("2022/12/31 23:59:58", "node-7") + (
        'I1231 23:59:59.500000    4120 server.go:661] "Version info" version="v1.26.4"\n'
        'W0101 00:00:01.250000    4120 proxier.go:858] "Sync failed" retryingTime="30s"\n'
    )
    events = logs(read("kube-proxy.log", text))
    assert events["ts"].to_list() == [
        datetime(2022, 12, 31, 23, 59, 58, tzinfo=UTC),
        datetime(2022, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(2023, 1, 1, 0, 0, 1, 250000, tzinfo=UTC),
    ]


def test_each_header_of_rotated_files_read_as_one_dates_the_records_below_it(read):
    """``cat`` of a log file and the one that followed it: each header's time and machine
    hold for the records below it, up to the next header."""
    text = (
        file_header("2021/03/14 06:00:00", "ip-10-0-3-9", "go1.15.8")
        + "E0314 06:00:01.000001    7 reflector.go:138] Failed to watch *v1.Node\n"
        + file_header("2024/03/14 06:00:00", "ip-10-0-4-2")
        + "E0314 06:00:02.000002    9 reflector.go:138] Failed to watch *v1.Node\n"
    )
    events = logs(read("kubelet.log", text, year=2019))
    assert events["line"].to_list() == [1, 5, 6, 10]
    assert events["ts"].dt.year().to_list() == [2021, 2021, 2024, 2024]
    assert events["host"].to_list() == ["ip-10-0-3-9"] * 2 + ["ip-10-0-4-2"] * 2
    assert json.loads(events["attrs"][2]) == {
        "machine": "ip-10-0-4-2",
        "binary": "Built with gc go1.20.5 for linux/amd64",
    }


def test_a_header_says_nothing_of_another_file_read_with_it(write):
    dated = write(
        "a/kube-scheduler.log",
        file_header("2020/06/01 08:00:00", "master-1")
        + ("I0601 08:00:01.000000       1 scheduler.go:156] Attempting to schedule pod\n"),
    )
    yearless = write("b/kube-scheduler.log", SYNC_FAILED_QUOTED)
    events = timeline.load([dated, yearless], year=2023, infer=False, cache=False, workers=1)
    other = events.filter(pl.col("file") == str(yearless))
    assert other["host"].null_count() == other.height
    assert set(other["ts"].dt.year()) == {2023}


def test_sniff_does_not_count_a_file_header_against_klog():
    sample = (file_header("2018/08/12 02:38:49", "k8s-master3") + STARTUP).splitlines()[:6]
    assert klog.sniff(sample).score == 1.0


# --- source and component ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("kubelet.log.1", "kubelet"),
        ("nodes/ip-10-0-1-5/var/log/kube-proxy.log", "kube-proxy"),
        ("cluster-autoscaler.log.gz", "cluster-autoscaler"),
        ("controller-logs.txt", "klog"),
    ],
)
def test_source_from_the_file_name(read, name, source):
    events = logs(read(name, SYNC_FAILED_QUOTED, year=2023))
    assert events["source"].unique().to_list() == [source]
    assert events["component"].unique().to_list() == [source]


def test_unknown_container_gives_its_name_as_source_and_component(read):
    path = "nodes/ip-10-0-1-5/var/log/pods/kube-system_csi-node-7kq2n_5e0c/csi-sidecar/0.log"
    events = logs(read(path, cri(SYNC_FAILED_QUOTED)))
    assert events["source"].unique().to_list() == ["csi-sidecar"]
    assert events["component"].unique().to_list() == ["csi-sidecar"]


# --- detection --------------------------------------------------------------------------


def test_sniff_says_how_many_lines_have_a_header():
    score = klog.sniff(STARTUP.splitlines())
    assert score.score == 1.0
    assert score.why == "10 of 10 sample lines have a klog header"
    panic = klog.sniff(PANIC.splitlines()[1:])
    assert panic.score == 1.0, panic.why  # a dump's lines do not count against it


def test_sniff_rejects_other_formats():
    coredns = [
        '[INFO] 10.244.0.1:53523 - 19585 "A IN example.com. udp 29 false 512" NOERROR '
        "qr,rd,ra 56 0.000123s",
        "[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc",
    ]
    assert klog.sniff(coredns).score == 0.0
    rabbit = ["2023-03-14 18:00:01.123456+00:00 [info] <0.812.0> Server startup complete"]
    assert klog.sniff(rabbit).score == 0.0
    mixed = SYNC_FAILED_QUOTED.splitlines() + ["Some other program's line"] * 2
    assert klog.sniff(mixed).score == 0.5


def parse(text: str) -> pl.DataFrame:
    """The parser's own records (with ``end_line`` and ``unparsed``) for a bare file."""
    lines = pl.LazyFrame({"text": text.removesuffix("\n").split("\n")}).with_columns(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        prefix_ts=pl.lit(None, pl.Datetime("us", "UTC")),
        stream=pl.lit(None, pl.String),
        host=pl.lit(None, pl.String),
        container=pl.lit(None, pl.String),
        path=pl.lit("kube-proxy.log"),
    )
    return klog.parse(lines.select(list(LINE_SCHEMA))).collect()


def test_pairs_after_a_key_that_is_not_an_identifier_are_kept(read):
    # klog writes a key that is not a string with %s: an int key, a struct key
    text = (
        'I0314 18:00:01.123456       1 main.go:12] "odd keys" %!s(int=1)="value" '
        '{name}="value2" after="kept" n=3\n'
        'E0314 18:00:02.000001       1 main.go:13] "normal" pod="kube-system/coredns-1" '
        'err="timeout"\n'
    )
    events = read("kube-proxy.log", text, year=2023).events.sort("line")
    attrs = json.loads(events["attrs"][0])
    assert attrs["%!s(int=1)"] == "value"
    assert attrs["{name}"] == "value2"
    assert (attrs["after"], attrs["n"]) == ("kept", "3")
    assert events["template"][0] == "odd keys"


@pytest.mark.parametrize(
    ("name", "program"),
    [
        ("kube-proxy.log", "kube-proxy"),
        ("kube-proxy-k9d7s.log", "kube-proxy"),
        ("kube-apiserver-ip-10-20-1-183.ec2.internal.log", "kube-apiserver"),
        ("kube-controller-manager-master-2.log.1", "kube-controller-manager"),
        ("kubelet.log.2.gz", "kubelet"),
        ("cluster-autoscaler-6f7d9c8b5-q2x4z.log", "cluster-autoscaler"),
        ("kube-proxyfix.log", "klog"),
        ("my-kube-proxy.log", "klog"),
    ],
)
def test_a_saved_pods_file_names_its_program(tmp_path, name, program):
    """``kubectl logs POD > POD.log`` names a file after the pod, a static pod after its
    node: the program is the known name the file's name begins with."""
    path = tmp_path / name.removesuffix(".gz")
    path.write_text(
        'I0314 18:00:01.123456       1 proxier.go:858] "Sync failed" retryingTime="30s"\n'
    )
    events = timeline.load(str(path), year=2023, cache=False, workers=1)
    assert events["source"].to_list() == [program]
    assert events["component"].to_list() == [program]


@pytest.mark.parametrize(
    ("name", "rows", "errors", "warnings", "unparsed"),
    [
        ("kube-proxy-iptables-restore.log", 10, 5, 0, 0),
        ("kube-proxy-ipvs.log", 10, 0, 0, 0),
        ("kube-proxy-sync.log", 12, 0, 0, 0),
        ("kube-proxy-endpoints.log", 4, 0, 0, 0),
        ("kube-proxy-rules-dump.log", 1, 1, 0, 0),
        ("kube-proxy-round-trippers.log", 6, 0, 0, 0),
        # pflag's "Flag --resource-container has been deprecated" before the first header
        ("kube-proxy-kops.log", 6, 1, 2, 1),
        ("kube-proxy-flags.log", 16, 0, 0, 0),
        ("kubelet-startup.log", 10, 1, 0, 0),
        ("kube-proxy.journal", 1, 1, 0, 0),
        ("kube-proxy-calico.journal", 8, 0, 2, 0),
        ("kube-proxy-iptables-mode.journal", 4, 3, 0, 0),
        ("kube-proxy-systemctl-status.txt", 2, 1, 0, 0),
        ("kubelet.journal", 2, 1, 0, 0),
    ],
)
def test_real_klog_lines_are_one_row_a_record(name, rows, errors, warnings, unparsed):
    """Lines kube-proxy and kubelet wrote, as pasted in public issues (see
    ``tests/data/real/README.md``): a row per record at the time its header says, the
    lines without a header joined to it."""
    loaded = read_real(REAL / name, unparsed=unparsed, year=2023)
    events = loaded.events
    assert events.height == rows
    assert events["level"].null_count() == 0 and events["ts"].null_count() == 0
    assert (events["level"] == "error").sum() == errors
    assert (events["level"] == "warning").sum() == warnings
    assert set(events["ts"].dt.year()) == {2023}
    written = [
        found.group(1)
        for line in (REAL / name).read_text().splitlines()
        if (found := KLOG_TIME.search(line))
    ]
    assert events.sort("line")["ts"].dt.strftime("%m%d %H:%M:%S.%6f").to_list() == written


#: A klog header's time, at the start of a line or after a journal's ``unit[pid]: ``.
KLOG_TIME = re.compile(r"(?:^|\]: )[IWEF]([0-9]{4} [0-9:]{8}\.[0-9]{6}) ")


def test_a_klog_record_journald_split_into_entries_stays_one_row():
    """journald makes each line kube-proxy writes an entry of its own: the unindented
    ``Try `iptables -h' ...`` under an iptables error, written by the same process at the
    same moment, is that error's, not a record of its own with no level."""
    for name, record in (
        ("kube-proxy-iptables-mode.journal", 2),
        ("kube-proxy-systemctl-status.txt", 11),
    ):
        events = timeline.load(REAL / name, year=2023, infer=False, cache=False, workers=1)
        assert events["level"].null_count() == 0
        error = events.filter(pl.col("line") == record).row(0, named=True)
        assert error["level"] == "error"
        assert "for more information." in error["message"].splitlines()[-1] or (
            error["message"].splitlines()[-1] == ")"
        )
        assert not events["message"].str.starts_with("Try").any()

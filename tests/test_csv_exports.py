"""CSV exports of log stores: each record one line of the program's, read by its parser.

The exports are written as the tools write them: Kibana's "Generate CSV" (names and values
with other than letters and digits quoted, its default time ``Mar 14, 2023 @ ...``, a
formula's quote), CloudWatch Logs Insights' "Download results",
Grafana's "Download CSV" (CRLF, a BOM, Excel's ``sep=,``), Splunk's and Datadog's.
"""

from __future__ import annotations

import codecs
from datetime import UTC, datetime

import polars as pl
import pytest

from parsers import csv_export, envelopes

PROXY_SYNC = 'I0314 18:00:01.123456       1 proxier.go:853] ""Syncing iptables rules""'
PROXY_FAIL = (
    'E0314 18:00:02.500000       1 proxier.go:1520] ""Failed to execute iptables-restore"" err=<\n'
    "\texit status 1: iptables-restore: line 7 failed\n"
    " >"
)

CONTAINER_ID = "0a1b2c3d" * 8

KIBANA = (
    '"@timestamp",message,"kubernetes.pod.name","kubernetes.node.name",'
    '"kubernetes.container.name"\n'
    f'"Mar 14, 2023 @ 18:00:01.123","{PROXY_SYNC}","kube-proxy-x7k2p","ip-10-0-1-5",'
    '"kube-proxy"\n'
    f'"Mar 14, 2023 @ 18:00:02.500","{PROXY_FAIL}","kube-proxy-x7k2p","ip-10-0-1-5",'
    '"kube-proxy"\n'
)


def rows(loaded) -> pl.DataFrame:
    return loaded.events.sort("line").select(
        "ts", "source", "host", "level", "line", "template", "message"
    )


def files(loaded) -> dict:
    return loaded.summary.files.row(0, named=True)


def test_kibana_report_of_kube_proxy_reads_as_its_klog_lines(read):
    loaded = read("discover-report.csv", KIBANA)
    summary = files(loaded)
    assert (summary["prefix"], summary["format"]) == ("csv-export", "klog")
    assert (summary["unparsed_lines"], summary["wrapper_lines"]) == (0, 1)
    assert summary["continuation_lines"] == 2
    got = rows(loaded)
    assert got["source"].to_list() == ["kube-proxy", "kube-proxy"]
    assert got["host"].to_list() == ["ip-10-0-1-5", "ip-10-0-1-5"]
    assert got["level"].cast(pl.String).to_list() == ["info", "error"]
    assert got["line"].to_list() == [2, 3]
    assert got["template"].to_list() == [
        "Syncing iptables rules",
        "Failed to execute iptables-restore",
    ]
    assert got["message"][1].endswith("line 7 failed\n >")
    assert got["ts"].to_list() == [
        datetime(2023, 3, 14, 18, 0, 1, 123456, tzinfo=UTC),
        datetime(2023, 3, 14, 18, 0, 2, 500000, tzinfo=UTC),
    ]
    # Kibana writes the zone of the browser that asked for the report, and names none:
    # with nothing else to go by, UTC is assumed and said
    zones = loaded.summary.assumptions.filter(pl.col("what") == "time zone")
    assert zones.select("value", "certainty").rows() == [("UTC", "assumed")]


def test_the_same_export_reads_alike_with_crlf_a_bom_and_columns_in_another_order(read):
    reordered = (
        "\ufeff"
        + '"kubernetes.container.name","kubernetes.node.name",message,"@timestamp",extra\r\n'
        f'kube-proxy,ip-10-0-1-5,"{PROXY_SYNC}","2023-03-14T18:00:01.123Z",x\r\n'
        f'kube-proxy,ip-10-0-1-5,"{PROXY_FAIL.replace(chr(10), chr(13) + chr(10))}",'
        '"2023-03-14T18:00:02.500Z",y\r\n'
    )
    expected = rows(read("a.csv", KIBANA)).drop("message")
    loaded = read("b.csv", reordered.encode())
    assert (files(loaded)["unparsed_lines"], files(loaded)["wrapper_lines"]) == (0, 1)
    assert rows(loaded).drop("message").equals(expected)


def test_a_broken_record_is_an_unparsed_line_that_says_why(read):
    text = (
        KIBANA
        + '"Mar 14, 2023 @ 18:00:03.000",short,"kube-proxy-x7k2p"\n'
        + f'"Mar 14, 2023 @ 18:00:04.000","{PROXY_SYNC}\n'
        + "and on\n"
    )
    loaded = read("discover-report.csv", text)
    assert files(loaded)["unparsed_lines"] == 3
    warned = loaded.summary.warnings.filter("unparsed").sort("line")
    assert warned.select("line", "end_line", "reason").rows() == [
        (6, 6, "CSV export: a record of 3 fields under a header of 5"),
        (7, 8, csv_export.NEVER_CLOSED),
    ]
    assert rows(loaded)["line"].to_list() == [2, 3]


def test_logs_insights_csv_names_the_stream(read):
    text = (
        "@timestamp,@message,@logStream,@log\n"
        "2023-03-14 18:00:03.007,[ERROR] plugin/errors: 2 example.org. A: read udp "
        "10.0.1.5:36797->10.0.0.2:53: i/o timeout,coredns-5d78c9869d-abcde,"
        "123456789012:/aws/eks/prod/cluster\n"
    )
    loaded = read("logs-insights-results.csv", text)
    got = rows(loaded)
    assert (files(loaded)["format"], files(loaded)["unparsed_lines"]) == ("coredns", 0)
    assert got.select("source", "level", "line").row(0) == ("coredns", "error", 2)
    assert got["ts"][0] == datetime(2023, 3, 14, 18, 0, 3, 7000, tzinfo=UTC)


def test_grafana_csv_for_excel_and_splunk_csv_read_their_time_and_host(read):
    grafana = (
        '\ufeffsep=,\r\n"Time","Line","tsNs","id"\r\n'
        f'2023-03-14 18:00:01.123,"{PROXY_SYNC}",1678816801123456000,1\r\n'
    )
    splunk = (
        '"_time","_raw",host,source\n'
        f'"2023-03-14T18:00:01.123+00:00","{PROXY_SYNC}",ip-10-0-1-5,'
        f'"/var/log/containers/kube-proxy-x7k2p_kube-system_kube-proxy-{CONTAINER_ID}.log"\n'
    )
    loaded = read("grafana.csv", grafana.encode())
    assert (files(loaded)["wrapper_lines"], files(loaded)["unparsed_lines"]) == (2, 0)
    assert rows(loaded).select("level", "line").row(0) == ("info", 3)
    loaded = read("splunk.csv", splunk)
    got = rows(loaded).row(0, named=True)
    assert (got["source"], got["host"], got["line"]) == ("kube-proxy", "ip-10-0-1-5", 2)


def test_an_export_without_a_time_column_takes_the_lines_own_time(read):
    text = f'host,message\nip-10-0-1-5,"{PROXY_SYNC}"\n'
    got = rows(read("export.csv", text, year=2023)).row(0, named=True)
    assert (got["host"], got["line"]) == ("ip-10-0-1-5", 2)
    assert got["ts"] == datetime(2023, 3, 14, 18, 0, 1, 123456, tzinfo=UTC)


def test_a_csv_that_is_no_log_export_is_left_as_it_was(read):
    text = "id,name,price\n1,widget,9.99\n2,gadget,19.50\n"
    assert csv_export.header(text.splitlines(), envelopes.CSV_LINE_KEYS) is None
    loaded = read("prices.csv", text)
    summary = files(loaded)
    assert summary["prefix"] is None
    assert summary["unparsed_lines"] == 3
    assert loaded.events.height == 0


@pytest.mark.parametrize(
    ("value", "read_as"),
    [("'-flag", "-flag"), ("'@home", "@home"), ("it's", "it's")],
)
def test_a_value_kibana_escaped_as_a_formula_is_read_without_its_quote(value, read_as):
    sample = ["'@timestamp,message", f"2023-03-14T18:00:01Z,{value}"]
    record = csv_export.records_sample(sample, envelopes.CSV_LINE_KEYS)
    assert record == [f'{{"csv":{{"@timestamp":"2023-03-14T18:00:01Z","message":"{read_as}"}}}}']


# Grafana's "Download CSV" of a Loki logs frame: names quoted, a value quoted where it holds
# a quote, a newline or the separator, CRLF, a BOM before it all; the separator the one of
# the browser's locale (";" where the decimal mark is a comma), the labels a JSON object.
COREDNS_QUERY = (
    '[INFO] 10.244.1.7:53154 - 31337 "A IN api.shop.svc.cluster.local. udp 52 false 512" '
    "NOERROR qr,aa,rd 106 0.000113s"
)
COREDNS_TIMEOUT = (
    "[ERROR] plugin/errors: 2 api.example.org. A: read udp 10.244.1.7:36797->10.0.0.2:53: "
    "i/o timeout"
)
COREDNS_LABELS = (
    '{"app":"coredns","container":"coredns","job":"kube-system/coredns",'
    '"namespace":"kube-system","node_name":"ip-10-0-2-17.eu-central-1.compute.internal",'
    '"pod":"coredns-5d78c9869d-qw8zt","stream":"stdout"}'
)


def quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def test_grafana_csv_of_a_german_browser_is_parted_by_semicolons(read):
    labels = quoted(COREDNS_LABELS)
    text = (
        '\ufeff"labels";"Time";"Line";"tsNs";"id"\r\n'
        f"{labels};2023-03-14 19:04:11.250;{quoted(COREDNS_QUERY)};"
        "1678820651250118000;1678820651250118000_7f1c\r\n"
        f"{labels};2023-03-14 19:04:13.007;{COREDNS_TIMEOUT};"
        "1678820653007550000;1678820653007550000_0b2e"
    )
    loaded = read("Explore-loki-2023-03-14 20_05_02.csv", text.encode())
    summary = files(loaded)
    assert (summary["prefix"], summary["format"]) == ("csv-export", "coredns")
    assert (summary["unparsed_lines"], summary["wrapper_lines"]) == (0, 1)
    got = rows(loaded)
    assert got["source"].to_list() == ["coredns", "coredns"]
    assert got["host"].to_list() == ["ip-10-0-2-17.eu-central-1.compute.internal"] * 2
    assert got["level"].cast(pl.String).to_list() == ["info", "error"]
    assert got["line"].to_list() == [2, 3]
    assert got["message"][0].endswith("NOERROR qr,aa,rd 106 0.000113s")  # no separators
    # tsNs is the line's own instant: no zone to assume for the wall clock beside it
    assert got["ts"].to_list() == [
        datetime(2023, 3, 14, 19, 4, 11, 250118, tzinfo=UTC),
        datetime(2023, 3, 14, 19, 4, 13, 7550, tzinfo=UTC),
    ]


KLOG_LABELS = (
    '{container="kube-proxy", host="ip-10-0-1-5", namespace="kube-system", '
    'pod="kube-proxy-x7k2p", stream="stderr"}'
)


def test_a_tsv_saved_as_unicode_text_reads_as_the_csv_does(read):
    """Excel's "Unicode Text": UTF-16 (little-endian) with a BOM, tabs, CRLF; the labels
    as Loki writes a label set, the time a wall clock of the browser's zone."""
    text = (
        "Time\tLine\tlabels\r\n"
        f'2023-03-14 18:00:01.123\t"{PROXY_SYNC}"\t{quoted(KLOG_LABELS)}\r\n'
        f'2023-03-14 18:00:02.500\t"{PROXY_FAIL}"\t{quoted(KLOG_LABELS)}\r\n'
    )
    loaded = read("kube-proxy logs.txt", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    summary = files(loaded)
    assert (summary["prefix"], summary["format"]) == ("csv-export", "klog")
    assert (summary["unparsed_lines"], summary["continuation_lines"]) == (0, 2)
    got = rows(loaded)
    assert got["source"].to_list() == ["kube-proxy", "kube-proxy"]
    assert got["host"].to_list() == ["ip-10-0-1-5", "ip-10-0-1-5"]
    assert got["level"].cast(pl.String).to_list() == ["info", "error"]
    assert got["template"][0] == "Syncing iptables rules"
    assert got["template"][1] == "Failed to execute iptables-restore"
    assert got["message"][1].endswith("line 7 failed\n >")
    assert got["ts"][1] == datetime(2023, 3, 14, 18, 0, 2, 500000, tzinfo=UTC)
    assert got["line"].to_list() == [2, 3]


def test_labels_name_the_program_by_app_or_job_where_no_container_is_named(read):
    checkout = '{app="checkout-api", namespace="shop", pod="checkout-api-7c9f6d8b5-x2x9q"}'
    ledger = '{"job":"payments/ledger-writer","level":"error","pod":"ledger-writer-0"}'
    slow = quoted('level=warn msg="slow upstream" ms=950')
    text = (
        '"Time","Line","labels"\r\n'
        f"2023-03-14 18:10:00.000,{slow},"
        f"{quoted(checkout)}\r\n"
        f"2023-03-14 18:10:01.000,upstream connect error or disconnect,{quoted(ledger)}\r\n"
    )
    got = rows(read("grafana_data_export.csv", text.encode()))
    assert got.select("source", "host", "level").rows() == [
        ("checkout-api", "checkout-api-7c9f6d8b5-x2x9q", "warning"),
        ("ledger-writer", "ledger-writer-0", "error"),
    ]


def test_a_column_of_its_own_beats_the_labels(read):
    text = (
        "@timestamp;message;host;labels\n"
        f'2023-03-14T18:00:01.123Z;"{PROXY_SYNC}";node-a;"{{host=""node-b""}}"\n'
    )
    assert rows(read("export.csv", text)).row(0, named=True)["host"] == "node-a"


def test_kibana_with_a_semicolon_and_excels_separator_line(read):
    text = (
        "sep=;\r\n"
        '"@timestamp";message;"kubernetes.pod.name";"kubernetes.node.name";'
        '"kubernetes.container.name"\r\n'
        f'"Mar 14, 2023 @ 18:00:01.123";"{PROXY_SYNC}";kube-proxy-x7k2p;ip-10-0-1-5;'
        "kube-proxy\r\n"
        '"Mar 14, 2023 @ 18:00:03.000";short;kube-proxy-x7k2p\r\n'
    )
    loaded = read("discover-report.csv", text)
    assert (files(loaded)["wrapper_lines"], files(loaded)["unparsed_lines"]) == (2, 1)
    got = rows(loaded).row(0, named=True)
    assert (got["source"], got["host"], got["line"]) == ("kube-proxy", "ip-10-0-1-5", 3)
    assert got["template"] == "Syncing iptables rules"
    warned = loaded.summary.warnings.filter("unparsed")
    assert warned.select("line", "reason").rows() == [
        (4, "CSV export: a record of 3 fields under a header of 5")
    ]


@pytest.mark.parametrize(
    ("sample", "separator", "names"),
    [
        (['"Time";"Line";"a,b"'], ";", ["Time", "Line", "a,b"]),
        (['Time,Line,"a;b"'], ",", ["Time", "Line", "a;b"]),
        (["_time\t_raw\thost"], "\t", ["_time", "_raw", "host"]),
        (["sep=|", "Time|Line"], "|", ["Time", "Line"]),
        # Excel's line names the separator: a header it does not split is no header
        (["sep=;", "Time,Line"], None, None),
    ],
)
def test_the_separator_is_the_one_that_splits_the_header_into_names(sample, separator, names):
    found = csv_export.layout(sample, envelopes.CSV_LINE_KEYS)
    assert (found and found[2], found and found[1]) == (separator, names) or (
        found is None and separator is None
    )


def test_a_semicolon_table_that_is_no_log_export_is_left_as_it_was(read):
    text = "Artikel;Name;Preis\n1;Schraube;0,25\n2;Mutter;0,10\n"
    loaded = read("preise.csv", text)
    assert files(loaded)["prefix"] is None
    assert loaded.events.height == 0

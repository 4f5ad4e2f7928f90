"""Wrappers (journald, syslog, compose, grep, runtime prefixes) and files of several formats.

The lines are shaped as the programs write them and as people paste them in issues:
journalctl's header and boot lines, kubelet's klog inside journald, dockerd's and
containerd's logfmt inside syslog, compose's padded service column, grep's prefixes.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

import timeline
from parsers import routing, runtime, wrappers
from tests.lines import every_line_accounted as accounted
from tests.lines import read_real
from tests.test_k8s_audit import audit
from timeline.analysis.contributors import program_namespaces
from timeline.reading import loader
from timeline.reading.lines import split_lines


def peel(text: str) -> wrappers.Peeled:
    lines, _problem = split_lines(text.encode(), "x.log")
    return wrappers.peel(lines)


# --- journald and syslog ------------------------------------------------------------------

JOURNAL_SHORT = """\
-- Logs begin at Fri 2022-09-30 11:14:56 UTC, end at Wed 2022-10-05 06:43:42 UTC. --
Oct 05 06:27:03 worker140a kubelet[1189617]: I1005 06:27:03.438225 1189617 pod_container_deletor.go:79] "Container not found in pod's containers" containerID="56c0bbc4c34b"
Oct 05 06:27:03 worker140a kubelet[1189617]: E1005 06:27:03.593964 1189617 kuberuntime_manager.go:1080] "CreatePodSandbox for pod failed" err=<
Oct 05 06:27:03 worker140a kubelet[1189617]: \trpc error: code = Unknown desc = failed to setup network
Oct 05 06:27:03 worker140a kubelet[1189617]:  >
Oct 05 06:27:04 worker140a containerd[812]: time="2022-10-05T06:27:04.120335433Z" level=error msg="StopPodSandbox for \\"4ea369\\" failed" error="failed to destroy network"
-- Boot 4c1b3a0e0c8a4f1e9f0e1d2c3b4a5968 --
Oct 05 06:30:01 worker140a systemd[1]: Started kubelet: The Kubernetes Node Agent.
Oct 05 06:30:02 worker140a kubelet[926]: Flag --cgroup-driver has been deprecated, This parameter should be set via the config file specified by the Kubelet's --config flag.
Oct 05 06:30:02 worker140a kubelet[926]: W1005 06:30:02.945743     926 summary_sys_containers.go:47] Failed to get system container stats for "/kubepods"
"""


def test_journal_short_keeps_host_unit_pid_and_routes_each_unit(read):
    loaded = read("journal-kubelet.txt", JOURNAL_SHORT, year=2022)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "syslog"
    assert files["wrapper_lines"] == 2  # the "Logs begin" and "Boot" lines
    assert files["unparsed_lines"] == 0
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    assert set(events["host"]) == {"worker140a"}
    kubelet = events.filter(pl.col("component") == "kubelet")
    # the klog lines are kubelet's, the err=< block joined across its journal entries
    failed = kubelet.filter(pl.col("line") == 3).row(0, named=True)
    assert failed["source"] == "kubelet" and failed["level"] == "error"
    assert (
        json.loads(failed["attrs"])["err"]
        == "rpc error: code = Unknown desc = failed to setup network"
    )
    assert json.loads(failed["attrs"])["pid"] == "1189617"
    assert failed["ts"] == datetime(2022, 10, 5, 6, 27, 3, 593964, tzinfo=UTC)
    # a line of kubelet's that is not klog is a row of its own, at the journal's time
    flag = events.filter(pl.col("line") == 9).row(0, named=True)
    assert flag["message"].startswith("Flag --cgroup-driver")
    assert flag["ts"] == datetime(2022, 10, 5, 6, 30, 2, tzinfo=UTC)
    # containerd's logfmt entries are read as logfmt, the unit naming the program
    containerd = events.filter(pl.col("component") == "containerd").row(0, named=True)
    assert containerd["source"] == "containerd" and containerd["level"] == "error"
    assert "time=" not in containerd["message"] and "level=" not in containerd["message"]
    # other units are rows with their unit as source, their level from the message
    systemd = events.filter(pl.col("source") == "systemd").row(0, named=True)
    assert systemd["message"] == "Started kubelet: The Kubernetes Node Agent."
    assert systemd["ts"] == datetime(2022, 10, 5, 6, 30, 1, tzinfo=UTC)


def test_journal_short_year_is_settled_and_said(read):
    loaded = read("journal.txt", JOURNAL_SHORT.replace("W1005", "W1005"))
    years = loaded.summary.assumptions.filter(pl.col("what") == "year")
    assert years.height >= 1
    assert loaded.events["ts"].null_count() == 0


def test_journal_short_iso_and_precise_give_the_year_and_the_fraction():
    iso = peel(
        "2023-02-23T16:31:05+0000 node-2 kube-proxy[2201]: E0223 16:31:05.120101    2201 "
        'proxier.go:1508] "Failed to execute iptables-restore" err="exit status 1"\n'
        "2023-02-23T17:31:06+0100 node-2 systemd[1]: Stopping kube-proxy...\n"
    )
    assert iso.layers == ("syslog-iso",)
    stamps = iso.lines["prefix_ts"].to_list()
    assert stamps[0] == datetime(2023, 2, 23, 16, 31, 5, tzinfo=UTC)
    assert stamps[1] == datetime(2023, 2, 23, 16, 31, 6, tzinfo=UTC)
    precise = peel(
        "Feb 23 16:31:05.120143 node-2 kubelet[1203]: I0223 16:31:05.120101    1203 "
        'kubelet.go:2157] "SyncLoop ADD" source="api" pods=[kube-system/coredns-787d4945fb-l85r5]\n'
        "Feb  3 09:00:00.5 node-2 kubelet[1203]: I0203 09:00:00.500000    1203 a.go:1] x\n"
    )
    assert precise.layers == ("syslog",)
    assert precise.lines["wrap_ts"].to_list() == [
        datetime(2000, 2, 23, 16, 31, 5, 120143),
        datetime(2000, 2, 3, 9, 0, 0, 500000),
    ]
    assert precise.lines["wrap_year_missing"].all()
    assert precise.lines["container"].to_list() == ["kubelet", "kubelet"]


def test_journal_short_iso_gives_klog_its_year_for_certain(read):
    text = (
        "2023-02-23T16:31:05+0000 node-2 kube-proxy[2201]: E0223 16:31:05.120101    2201 "
        'proxier.go:1508] "Failed to execute iptables-restore" err="exit status 1"\n'
        "2023-02-23T16:31:35+0000 node-2 kube-proxy[2201]: I0223 16:31:35.000412    2201 "
        'proxier.go:858] "Sync failed" retryingTime="30s"\n'
    )
    loaded = read("journal-iso.txt", text)
    events = loaded.events.sort("line")
    assert events["ts"][0] == datetime(2023, 2, 23, 16, 31, 5, 120101, tzinfo=UTC)
    year = loaded.summary.assumptions.filter(pl.col("what") == "year")
    assert year["certainty"].to_list() == ["certain"]


def test_journal_no_entries_is_a_wrapper_line(read):
    loaded = read("empty-journal.txt", "-- No entries --\n")
    files = loaded.summary.files.row(0, named=True)
    assert files["wrapper_lines"] == 1 and files["unparsed_lines"] == 0
    assert accounted(loaded.summary)


def test_snap_and_service_units_name_their_program(read):
    # charmed Kubernetes runs kubelet as a snap, whose journal tag is kubelet.daemon
    text = (
        "May  2 04:48:21 juju-aafd7a-1 kubelet.daemon[3377]: I0502 04:48:21.672124    3377 "
        "kubelet.go:297] Watching apiserver\n"
        "May  2 04:48:21 juju-aafd7a-1 kubelet.daemon[3377]: W0502 04:48:21.674112    3377 "
        'kubelet_network.go:139] Hairpin mode set to "promiscuous-bridge" but kubenet is not '
        'enabled, falling back to "hairpin-veth"\n'
    )
    events = read("syslog", text, year=2019).events
    assert events["source"].to_list() == ["kubelet", "kubelet"]
    assert events["level"].to_list() == ["info", "warning"]


def test_rfc5424_takes_severity_host_app_and_procid(read):
    text = (
        "<187>1 2023-03-14T18:00:01.003Z node-7.example.com coredns 1 - - "
        "[ERROR] plugin/errors: 2 api.internal. A: read udp 10.244.0.3:41012->10.96.0.10:53: "
        "i/o timeout\n"
        '<164>1 2023-03-14T18:00:02.51+00:00 node-7.example.com haproxy 4477 - [meta seq="7"] '
        "Server backend/web2 is DOWN, reason: Layer4 connection problem\n"
    )
    loaded = read("forwarded.log", text)
    assert loaded.summary.files["prefix"].to_list() == ["syslog-5424"]
    events = loaded.events.sort("line")
    assert events["host"].to_list() == ["node-7.example.com"] * 2
    assert events["source"].to_list() == ["coredns", "haproxy"]
    # the CoreDNS line is read by its parser; the other by its severity (164 % 8 = 4)
    assert events["level"].to_list() == ["error", "warning"]
    assert events["ts"][1] == datetime(2023, 3, 14, 18, 0, 2, 510000, tzinfo=UTC)
    assert json.loads(events["attrs"][1])["pid"] == "4477"


def test_forwarder_around_cri_around_klog_keeps_every_layer(read):
    # rsyslog forwarding /var/log/containers files: syslog time in the node's zone (CET,
    # not written), CRI time in UTC, klog time without a year
    text = "".join(
        f"Mar 14 19:{m:02d}:01 node-3 containers.kube-proxy: 2023-03-14T18:{m:02d}:01.123456789Z "
        f"stderr F E0314 18:{m:02d}:01.123456       1 proxier.go:1508] "
        f'"Failed to execute iptables-restore" err="exit status 1"\n'
        f"Mar 14 19:{m:02d}:02 node-3 containers.app: 2023-03-14T18:{m:02d}:02.5Z stdout F "
        f"GET /healthz 500 12ms\n"
        for m in range(5)
    )
    loaded = read("forwarded-containers.log", text)
    assert loaded.summary.files["prefix"].to_list() == ["syslog > cri"]
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    assert set(events["host"]) == {"node-3"}
    klog = events.filter(pl.col("level") == "error")
    assert klog.height == 5
    assert klog["ts"][0] == datetime(2023, 3, 14, 18, 0, 1, 123456, tzinfo=UTC)
    app = events.filter(pl.col("component") == "containers.app")
    assert app["ts"].to_list() == [
        datetime(2023, 3, 14, 18, m, 2, 500000, tzinfo=UTC) for m in range(5)
    ]


def test_syslog_with_zone_dropped_takes_the_zone_given(read):
    text = (
        'Mar  2 13:53:07 ubuntu-xenial dockerd[4072]: time="2017-03-02T13:53:07.478019885Z" '
        'level=error msg="Handler for GET /containers/51c5c4e3/json returned error: No such '
        'container: 51c5c4e3"\n'
        "Mar  2 13:53:08 ubuntu-xenial kubelet[6146]: I0302 13:53:08.278543    6146 "
        'operation_executor.go:917] MountVolume.SetUp succeeded for volume "default-token-lbz3m"\n'
    )
    loaded = read("syslog", text, year=2017, tz="Europe/Berlin")
    events = loaded.events.sort("line")
    assert events["component"].to_list() == ["dockerd", "kubelet"]
    assert events["level"].to_list() == ["error", "info"]
    # dockerd states its own zone (Z), which beats the zone given; kubelet's klog does not
    assert events["ts"][0] == datetime(2017, 3, 2, 13, 53, 7, 478019, tzinfo=UTC)
    assert events["ts"][1] == datetime(2017, 3, 2, 12, 53, 8, 278543, tzinfo=UTC)
    zones = loaded.summary.assumptions.filter(pl.col("what") == "time zone")
    assert zones["value"].to_list() == ["Europe/Berlin"]


@pytest.mark.parametrize(
    ("header", "offset_h"),
    [
        # CET's clock keeps summer time: a July line is written in CEST
        (
            "-- Logs begin at Sun 2016-11-13 23:51:54 CET, end at Mon 2016-11-14 11:06:12 CET. --",
            2,
        ),
        ("-- Logs begin at Thu 2021-07-01 08:14:03 JST, end at Wed 2021-07-07 11:06:12 JST. --", 9),
        (
            "-- Journal begins at Fri 2021-07-02 08:14:03 EDT, ends at Tue 2021-07-06 "
            "11:06:12 EDT. --",
            -4,
        ),
        (
            "-- Logs begin at Wed 2019-03-06 04:00:09 +0530, end at Thu 2019-03-07 11:06:12 "
            "+0530. --",
            5.5,
        ),
        ("-- Logs begin at Thu 2020-01-16 09:31:40 UTC. --", 0),
    ],
)
def test_journal_header_states_the_zone_of_the_lines(read, header, offset_h):
    text = (
        f"{header}\n"
        "Jul 06 11:06:11 node-4 kube-proxy[12085]: E0706 11:06:11.955523   12085 "
        "proxier.go:1282] Failed to execute iptables-restore: exit status 2\n"
        "Jul 06 11:06:11 node-4 kube-proxy[12085]: Error occurred at line: 33\n"
        "-- Boot 1f0e6b2c7f4a4d6b9a3c2e1d0f9e8d7c --\n"
        "Jul 06 11:07:40 node-4 systemd[1]: Started Kubernetes Kube-Proxy Server.\n"
    )
    loaded = read("kube-proxy.journal", text, year=2021, tz="America/Sao_Paulo")
    files = loaded.summary.files.row(0, named=True)
    assert files["wrapper_lines"] == 2 and files["unparsed_lines"] == 0
    shift = timedelta(hours=offset_h)
    events = loaded.events.sort("line")
    # the error's second line, written with it by the same process, is the error's
    assert events["ts"].to_list() == [
        datetime(2021, 7, 6, 11, 6, 11, 955523, tzinfo=UTC) - shift,
        datetime(2021, 7, 6, 11, 7, 40, tzinfo=UTC) - shift,
    ]
    assert events["message"][0].endswith("\nError occurred at line: 33")
    zone = loaded.summary.assumptions.filter(pl.col("what") == "time zone").row(0, named=True)
    assert zone["certainty"] == "stated"
    assert "journal's header" in zone["basis"] and "tz=America/Sao_Paulo" in zone["basis"]


@pytest.mark.parametrize(
    ("zones", "rules", "winter", "summer"),
    [
        (("CET", "CEST"), "Europe/Berlin", 1, 2),
        (("EST", "EDT"), "America/New_York", -5, -4),
        (("GMT", "BST"), "Europe/London", 0, 1),
        (("AEDT", "AEST"), "Australia/Sydney", 10, 11),
    ],
)
def test_a_journal_of_a_zone_with_summer_time_follows_its_clock(read, zones, rules, winter, summer):
    """A journal that spans a change of the clock writes its lines in the zone's time of
    the day (``CET`` in February, ``CEST`` in May); the header names both, or one name
    that is that zone's alone. The header's span also gives the lines' year."""
    first, last = zones
    south = rules.startswith("Australia")
    header = (
        f"-- Logs begin at Mon 2023-01-02 08:00:00 {first}, end at Mon 2023-05-03 10:00:00 "
        f"{last}. --"
    )
    text = (
        f"{header}\n"
        "Feb 14 18:00:01 node-1 kubelet[1234]: I0214 18:00:01.000000    1234 kubelet.go:2134] "
        '"SyncLoop ADD" source="api"\n'
        "May 02 18:00:01 node-1 kubelet[1234]: I0502 18:00:01.000000    1234 kubelet.go:2134] "
        '"SyncLoop ADD" source="api"\n'
    )
    loaded = read("kubelet.journal", text)
    feb, may = (winter, summer) if not south else (summer, winter)
    assert loaded.events.sort("line")["ts"].to_list() == [
        datetime(2023, 2, 14, 18, 0, 1, tzinfo=UTC) - timedelta(hours=feb),
        datetime(2023, 5, 2, 18, 0, 1, tzinfo=UTC) - timedelta(hours=may),
    ]
    said = loaded.summary.assumptions
    zone = said.filter(pl.col("what") == "time zone").row(0, named=True)
    assert (zone["value"], zone["certainty"]) == (rules, "stated")
    year = said.filter(pl.col("what") == "year").row(0, named=True)
    assert (year["value"], year["certainty"]) == ("2023", "stated")


def test_the_night_the_clock_changes_keeps_minutes_apart_and_the_header_gives_the_year(read):
    text = (
        "-- Logs begin at Sat 2022-12-31 20:00:00 CET, end at Sun 2023-03-26 05:00:00 CEST. --\n"
        "Dec 31 23:59:30 node-1 kubelet[7]: I1231 23:59:30.000000       7 kubelet.go:1] a\n"
        "Jan 01 00:00:30 node-1 kubelet[7]: I0101 00:00:30.000000       7 kubelet.go:1] b\n"
        "Mar 26 01:59:00 node-1 kubelet[7]: I0326 01:59:00.000000       7 kubelet.go:1] c\n"
        "Mar 26 03:01:00 node-1 kubelet[7]: I0326 03:01:00.000000       7 kubelet.go:1] d\n"
    )
    events = read("kubelet.journal", text).events.sort("line")
    assert events["ts"].to_list() == [
        datetime(2022, 12, 31, 22, 59, 30, tzinfo=UTC),
        datetime(2022, 12, 31, 23, 0, 30, tzinfo=UTC),
        datetime(2023, 3, 26, 0, 59, tzinfo=UTC),
        datetime(2023, 3, 26, 1, 1, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("kernel: ledger-api invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0", "error"),
        ("kernel: Memory cgroup out of memory: Killed process 70255 (ledger-api)", "error"),
        ("systemd[1]: foo.service: Main process exited, code=exited, status=1/FAILURE", "error"),
        ("systemd[1]: Failed to start Kubernetes Kube-Proxy Server.", "error"),
        ("systemd[1]: kube-proxy.service: Failed with result 'exit-code'.", "error"),
        ("kernel: myapp[22]: segfault at 0 ip 00007f sp 00007ffd error 4 in libc.so.6", "error"),
        ("cargo[3101]: test result: ok. 42 passed; 0 failed; 0 ignored; finished in 0.31s", None),
        ("pytest[3102]: ===== 120 passed, 0 failed, 2 skipped in 3.21s =====", None),
        ("kernel: ACPI: _OSC evaluation for CPUs failed, trying _PDC", None),
        ("sshd[1201]: Failed password for invalid user admin from 203.0.113.5 port 52144", None),
        ("smartd[700]: Device: /dev/sda [SAT], previous self-test completed; 0 failed", None),
        ("nginx[9]: 10.0.0.7 - - GET /failed-login HTTP/1.1 200 512", None),
        ("systemd[1]: Started Session 12 of User core.", None),
        ("myapp[22]: WARNING: disk 91% full", "warning"),
    ],
)
def test_a_journal_line_no_format_claims_is_an_error_where_it_tells_of_a_failure(read, line, level):
    text = f"Jan 01 02:38:25.323523 node-1 {line}\n"
    loaded = read("node-1.journal", text, year=2025)
    assert loaded.events["level"].to_list() == [level]


def test_a_journal_kept_for_years_dates_its_lines_by_its_end_and_aest_alone_is_brisbane(read):
    """``journalctl --since`` on a host that keeps its journal for years prints a header
    from years back; and Brisbane writes ``AEST`` all year, with no summer time."""
    text = (
        "-- Logs begin at Mon 2021-03-01 08:00:00 AEST, end at Tue 2023-01-10 10:00:00 AEST. --\n"
        "Jan 10 09:00:00 web-1 nginx[88]: worker process 91 exited on signal 9\n"
        "Jan 10 09:30:00 web-1 nginx[88]: worker process 95 exited on signal 9\n"
    )
    loaded = read("web-1.journal", text)
    assert loaded.events.sort("line")["ts"].to_list() == [
        datetime(2023, 1, 9, 23, 0, tzinfo=UTC),
        datetime(2023, 1, 9, 23, 30, tzinfo=UTC),
    ]


def test_a_journal_header_in_a_zone_unknown_leaves_the_zone_to_the_user(read):
    text = (
        "-- Logs begin at Sun 2016-11-13 23:51:54 XYZT, end at Mon 2016-11-14 11:06:12 XYZT. --\n"
        "Nov 14 11:06:11 node-4 kubelet[901]: I1114 11:06:11.000100     901 kubelet.go:1] x\n"
        "-- No entries --\n"
    )
    loaded = read("kubelet.journal", text, year=2016, tz="Europe/Berlin")
    assert loaded.events["ts"].to_list() == [datetime(2016, 11, 14, 10, 6, 11, 100, tzinfo=UTC)]
    zones = loaded.summary.assumptions.filter(pl.col("what") == "time zone")
    assert zones["value"].to_list() == ["Europe/Berlin"]
    assert loaded.summary.files["wrapper_lines"].to_list() == [2]


# --- docker compose ------------------------------------------------------------------------

COMPOSE = """\
rabbitmq-1  | 2024-04-17 04:58:19.715379+00:00 [info] <0.248.0>  Licensed under the MPL 2.0. Website: https://rabbitmq.com
kube-proxy-1  | I0417 04:58:19.800112       1 server_others.go:206] "Using iptables Proxier"
rabbitmq-1  | 2024-04-17 04:58:19.717785+00:00 [info] <0.248.0>
rabbitmq-1  | 2024-04-17 04:58:19.717785+00:00 [info] <0.248.0>  node           : rabbit@rabbitmq1
kube-proxy-1  | E0417 04:58:20.001234       1 proxier.go:1508] "Failed to execute iptables-restore" err=<
kube-proxy-1  | \texit status 1 (iptables-restore: line 8022 failed
kube-proxy-1  | \t)
rabbitmq-1  | 2024-04-17 04:58:20.101010+00:00 [error] <0.610.0> closing AMQP connection <0.610.0> (172.18.0.11:53264 -> 172.18.0.7:5672):
kube-proxy-1  |  >
rabbitmq-1  | client unexpectedly closed TCP connection
"""


def test_compose_routes_each_service_to_its_format(read):
    loaded = read("compose.log", COMPOSE, year=2024)
    assert loaded.summary.files["prefix"].to_list() == ["compose"]
    assert loaded.summary.unparsed_lines == 0
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    rabbit = events.filter(pl.col("source") == "rabbitmq")
    proxy = events.filter(pl.col("source") == "kube-proxy")
    # rabbitmq's own repeated header (same time, level, pid) continues its message
    assert rabbit.height == 3 and proxy.height == 2
    assert rabbit["message"][1].endswith("node           : rabbit@rabbitmq1")
    assert set(proxy["host"]) == {"kube-proxy-1"}
    failed = proxy.filter(pl.col("level") == "error").row(0, named=True)
    # the err=< block's lines are kube-proxy's, though rabbitmq's lines come between
    assert (
        json.loads(failed["attrs"])["err"] == "exit status 1 (iptables-restore: line 8022 failed\n)"
    )
    closing = rabbit.filter(pl.col("level") == "error").row(0, named=True)
    assert closing["message"].endswith("client unexpectedly closed TCP connection")


def test_compose_v1_underscore_names_and_colour_codes_are_stripped(read):
    text = "".join(
        f"\x1b[36mrabbit_1         |\x1b[0m {line}\n"
        for line in [
            "=INFO REPORT==== 6-Nov-2017::17:31:17 ===",
            "accepting AMQP connection <0.476.0> (172.18.0.11:53264 -> 172.18.0.7:5672)",
            "",
            "=ERROR REPORT==== 6-Nov-2017::17:31:19 ===",
            "closing AMQP connection <0.476.0> (172.18.0.11:53264 -> 172.18.0.7:5672):",
            "client unexpectedly closed TCP connection",
        ]
    )
    loaded = read("docker-compose-logs.txt", text)
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["info", "error"]
    assert events["message"][1].startswith("closing AMQP connection")
    assert "\x1b" not in "".join(events["message"])
    assert set(events["host"]) == {"rabbit_1"}


# --- what a paste leaves ------------------------------------------------------------------

#: kube-proxy in nftables mode under containerd, as a reviewer quoted it in a reply
#: (kubernetes/kubernetes#140405): the quote's ``>`` and a code block's four spaces on
#: every line, a klog ``err=<`` block inside the CRI lines.
QUOTED_CRI = """\
>     2026-07-10T14:33:53.856651359Z stderr F I0710 14:33:53.856605       1 proxier.go:1097] "Syncing nftables rules" ipFamily="IPv4" fullSync=true
>     2026-07-10T14:33:53.863225971Z stderr F E0710 14:33:53.863126       1 proxier.go:994] "Failed to list nftables elements" err=<
>     2026-07-10T14:33:53.863247473Z stderr F \tfailed to run nft: JSON support not compiled-in
>     2026-07-10T14:33:53.863249156Z stderr F  > ipFamily="IPv4" containerName="cluster-ips" containerType="set"
"""


def test_a_quoted_code_block_of_cri_lines_reads_as_the_cri_file(read):
    loaded = read("kube-proxy.log", QUOTED_CRI)
    assert accounted(loaded)
    assert loaded.summary.files["unparsed_lines"].sum() == 0
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["info", "error"]
    assert [t.isoformat() for t in events["ts"]] == [
        "2026-07-10T14:33:53.856605+00:00",
        "2026-07-10T14:33:53.863126+00:00",
    ]
    assert events["message"][1].startswith('"Failed to list nftables elements" err=<')
    assert "failed to run nft: JSON support not compiled-in" in events["message"][1]
    assert not any(m.startswith(">") for m in events["message"])


#: RabbitMQ's JSON log pasted with the opening fence written against its first line and
#: the closing fence on a line of its own (rabbitmq/rabbitmq-server#10648).
FENCED_JSON = """\
```{"time":"2024-03-01 09:17:24.889639+00:00","level":"info","msg":"Management plugin: using rates mode 'basic'","domain":"rabbitmq","pid":"<0.222.0>"}
{"time":"2024-03-01 09:17:24.889921+00:00","level":"info","msg":"Running boot step rabbit_shovel_parameters defined by app rabbitmq_shovel","domain":"rabbitmq","pid":"<0.222.0>"}
{"time":"2024-03-01 09:17:24.900061+00:00","level":"info","msg":"Starting message stores for vhost 'vhost_expressmode'","domain":"rabbitmq","pid":"<0.456.0>"}
```
"""


def test_a_fence_against_the_first_record_is_cut_and_a_fence_line_is_the_pastes(read):
    loaded = read("rabbitmq.log", FENCED_JSON)
    assert accounted(loaded)
    files = loaded.summary.files
    assert files["unparsed_lines"].sum() == 0
    assert files["wrapper_lines"].sum() == 1
    events = loaded.events.sort("line")
    assert events["message"].to_list() == [
        "Management plugin: using rates mode 'basic'",
        "Running boot step rabbit_shovel_parameters defined by app rabbitmq_shovel",
        "Starting message stores for vhost 'vhost_expressmode'",
    ]
    assert events["ts"][0].isoformat() == "2024-03-01T09:17:24.889639+00:00"


def test_lines_indented_alike_in_a_fenced_block_lose_the_shared_indent_only(read):
    # kubelet --logging-format=json quoted in kubernetes/kubernetes#104997, in a fenced
    # block indented by two; the klog err=< block's own indent stays a continuation
    text = (
        "```\n"
        '  {"ts":1631610094233.7605,"caller":"app/server.go:276","msg":"Failed to construct'
        ' kubelet dependencies","err":"error reading /var/lib/kubelet/pki/kubelet.key,'
        ' certificate and key must be supplied as a pair"}\n'
        '  E0914 10:54:57.540301   69656 server.go:271] "Failed to construct kubelet'
        ' dependencies" err=<\n'
        "  \tcertificate and key must be supplied as a pair\n"
        "   >\n"
        "```\n"
    )
    loaded = read("kubelet.log", text, year=2021)
    assert accounted(loaded)
    assert loaded.summary.files["unparsed_lines"].sum() == 0
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["error", "error"]
    assert events["message"][0] == "Failed to construct kubelet dependencies"
    assert events["ts"][1].isoformat() == "2021-09-14T10:54:57.540301+00:00"
    assert "certificate and key must be supplied" in events["message"][1]


@pytest.mark.parametrize(
    "sample",
    [
        ["E0914 10:54:57.540301   1 server.go:271] x", "\tcontinued", "```"],
        ['{"level":"info","msg":"a ``` b"}', '{"level":"info","msg":"```"}'],
        ["2023-03-14 18:00:01.123 [info] <0.1.0> x", " indented continuation"],
    ],
)
def test_a_file_as_a_program_wrote_it_shows_no_paste(sample):
    assert wrappers.pasted(sample) == (False, False, 0)


# --- search-tool prefixes -------------------------------------------------------------------


def test_grep_prefixes_are_stripped_and_separators_counted(read):
    text = (
        "logs/kube-proxy-x7k2p.log:1520:E0314 18:00:01.123456       1 proxier.go:1508] "
        '"Failed to execute iptables-restore" err="exit status 1"\n'
        "logs/kube-proxy-x7k2p.log-1521-I0314 18:00:01.123601       1 proxier.go:858] "
        '"Sync failed" retryingTime="30s"\n'
        "--\n"
        "logs/kube-proxy-x7k2p.log:2210:E0314 18:00:31.204771       1 proxier.go:1508] "
        '"Failed to execute iptables-restore" err="exit status 1"\n'
    )
    loaded = read("grep-output.txt", text, year=2023)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "grep"
    assert files["wrapper_lines"] == 1
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["error", "info", "error"]
    assert events["line"].to_list() == [1, 2, 4]


def test_grep_over_a_bundle_takes_host_and_container_from_each_file(read):
    pods = "bundle/{node}/var/log/pods/kube-system_kube-proxy-{pod}_0a1b/kube-proxy/0.log"
    text = "".join(
        f"{pods.format(node=node, pod=pod)}:{n}:2023-03-14T18:00:0{i}.5Z stderr F "
        f'E0314 18:00:0{i}.500000       1 proxier.go:1508] "Failed to execute '
        f'iptables-restore" err="exit status 1"\n'
        for i, (node, pod, n) in enumerate(
            [
                ("ip-10-0-1-5", "x7k2p", 1520),
                ("ip-10-0-2-9", "9fq4d", 88),
                ("ip-10-0-1-5", "x7k2p", 1602),
            ]
        )
    )
    loaded = read("grep-rn-iptables.txt", text)
    assert loaded.summary.files["prefix"].to_list() == ["grep > cri"]
    events = loaded.events.sort("line")
    assert events["host"].to_list() == ["ip-10-0-1-5", "ip-10-0-2-9", "ip-10-0-1-5"]
    assert set(events["source"]) == {"kube-proxy"}
    assert events["ts"].dt.second().to_list() == [0, 1, 2]


@pytest.mark.parametrize(
    "prefix",
    ["{n}:", "coredns.log:{n}:", "/var/log/pods/coredns-0.log:{n}:", "coredns-7d8f9.log:"],
)
def test_line_number_prefixes_of_grep_n_and_rg(prefix):
    lines = [
        '[INFO] 10.244.0.1:53523 - 19585 "A IN example.com. udp 29 false 512" NOERROR '
        "qr,rd,ra 56 0.000123s",
        "[ERROR] plugin/errors: 2 example.com. A: read udp 10.244.0.3:41012->10.96.0.10:53: "
        "i/o timeout",
    ]
    peeled = peel("".join(prefix.format(n=40 + i) + line + "\n" for i, line in enumerate(lines)))
    assert peeled.layers == ("grep",)
    assert peeled.lines["text"].to_list() == lines


def test_clock_times_and_dates_are_not_taken_for_grep_line_numbers():
    assert wrappers.detect(["10:00:01 job started", "10:00:02 job done"])[0] is None
    changelog = [
        "2023-03-13 10:05,upgrade,daemonset/kube-proxy,Cluster upgrade step 4,alice",
        "2023-03-13 14:20,rollback,daemonset/kube-proxy,Reverted kube-proxy,alice",
    ]
    assert wrappers.detect(changelog)[0] is None


#: Pre-3.7 RabbitMQ reports as ``grep -A`` finds them: the report line matches, the line
#: after it (the report's text) is context.
OLD_REPORTS = [
    (
        "=ERROR REPORT==== 11-Oct-2017::21:42:29 ===",
        "Ranch listener rabbit_web_dispatch_sup_15672 had connection process started with "
        "cowboy_protocol:start_link/4 at <0.18023.990> exit with reason: [{reason,{timeout",
        datetime(2017, 10, 11, 21, 42, 29, tzinfo=UTC),
        "error",
    ),
    (
        "=WARNING REPORT==== 3-Feb-2018::07:05:11 ===",
        "closing AMQP connection <0.3412.0> (10.20.0.14:50112 -> 10.20.0.3:5672, vhost: "
        "'/', user: 'svc-billing'):",
        datetime(2018, 2, 3, 7, 5, 11, tzinfo=UTC),
        "warning",
    ),
    (
        "=ERROR REPORT==== 29-Dec-2017::23:59:58 ===",
        "Channel error on connection <0.5012.0> (10.20.0.9:41876 -> 10.20.0.3:5672, vhost: "
        "'orders', user: 'orders'), channel 1:",
        datetime(2017, 12, 29, 23, 59, 58, tzinfo=UTC),
        "error",
    ),
]


@pytest.mark.parametrize(
    ("name", "match", "context"),
    [
        ("grep -H -A1", "{f}:", "{f}-"),
        ("grep -Hn -A1", "{f}:{n}:", "{f}-{n}-"),
        ("rg -A1", "{f}:{n}:", "{f}-{n}-"),
        ("grep -n -A1", "{n}:", "{n}-"),
    ],
)
@pytest.mark.parametrize("file", ["sharerabbitmq-01.log", "logs/rabbit@mq-node-2.log"])
def test_grep_context_lines_continue_the_matching_record(read, name, match, context, file):
    groups = []
    for i, (report, text, _ts, _level) in enumerate(OLD_REPORTS):
        n = 118 + 40 * i
        groups.append(
            match.format(f=file, n=n) + report + "\n" + context.format(f=file, n=n + 1) + text
        )
    loaded = read("grep-output.txt", "\n--\n".join(groups) + "\n")
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "grep", name
    assert files["wrapper_lines"] == 2  # the two "--" between groups
    assert files["unparsed_lines"] == 0
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 4, 7]
    assert events["message"].to_list() == [text for _r, text, _t, _l in OLD_REPORTS]
    assert events["ts"].to_list() == [ts for _r, _t, ts, _l in OLD_REPORTS]
    assert events["level"].to_list() == [level for _r, _t, _ts, level in OLD_REPORTS]


@pytest.mark.parametrize("numbered", [False, True])
def test_grep_over_dated_lines_takes_no_date_for_a_line_number(read, numbered):
    """``grep -H -B1`` over RabbitMQ 3.7+ logs: the lines begin with a date
    right after the file name, and without ``-n`` there is no line number to take."""
    lines = [
        (
            "rabbit@rmq-1.log",
            "-",
            "2023-03-15 02:50:01.123456+00:00 [info] <0.1234.0> "
            "accepting AMQP connection <0.1234.0> (10.0.3.7:51234 -> 10.0.1.9:5672)",
        ),
        (
            "rabbit@rmq-1.log",
            ":",
            "2023-03-15 02:50:04.000001+00:00 [error] <0.1234.0> "
            "closing AMQP connection <0.1234.0> (10.0.3.7:51234 -> 10.0.1.9:5672):",
        ),
        (
            "rabbit@rmq-2.log",
            ":",
            "2023-03-15T02:50:09.331000+00:00 [warning] <0.880.0> Mirrored queue 'jobs' "
            "in vhost '/': Stopping all nodes on master shutdown since no synchronised "
            "mirror is available",
        ),
    ]
    text = "".join(
        f"{f}{sep}{f'{40 + i}{sep}' if numbered else ''}{line}\n"
        for i, (f, sep, line) in enumerate(lines)
    )
    loaded = read("grep-dated.txt", text)
    assert loaded.summary.files["prefix"].to_list() == ["grep"]
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["info", "error", "warning"]
    assert events["ts"].to_list() == [
        datetime(2023, 3, 15, 2, 50, 1, 123456, tzinfo=UTC),
        datetime(2023, 3, 15, 2, 50, 4, 1, tzinfo=UTC),
        datetime(2023, 3, 15, 2, 50, 9, 331000, tzinfo=UTC),
    ]
    assert events["message"][2].startswith("Mirrored queue 'jobs'")


@pytest.mark.parametrize(
    "path", ["/var/log/syslog", "/var/log/messages-20230314", "node-3/var/log/syslog"]
)
def test_grep_over_system_logs_named_by_path_strips_the_path_then_the_syslog_header(read, path):
    text = (
        f"{path}:Mar 14 18:00:01 node-3 kubelet[901]: E0314 18:00:01.123456     901 "
        'kubelet.go:2448] "Error getting node" err="node \\"node-3\\" not found"\n'
        f"{path}-Mar 14 18:00:01 node-3 kubelet[901]: I0314 18:00:01.200001     901 "
        'kubelet_node_status.go:70] "Attempting to register node" node="node-3"\n'
        "--\n"
        f"{path}:Mar 14 18:00:02 node-3 containerd[812]: "
        'time="2023-03-14T18:00:02.120335433Z" level=error msg="StopPodSandbox failed" '
        'error="failed to destroy network"\n'
    )
    loaded = read("grep-error-var-log.txt", text, year=2023)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "grep > syslog"
    assert files["unparsed_lines"] == 0 and files["wrapper_lines"] == 1
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 2, 4]
    assert events["level"].to_list() == ["error", "info", "error"]
    assert events["component"].to_list() == ["kubelet", "kubelet", "containerd"]
    assert events["ts"].to_list() == [
        datetime(2023, 3, 14, 18, 0, 1, 123456, tzinfo=UTC),
        datetime(2023, 3, 14, 18, 0, 1, 200001, tzinfo=UTC),
        datetime(2023, 3, 14, 18, 0, 2, 120335, tzinfo=UTC),
    ]


def test_a_name_with_a_dash_is_not_a_grep_context_line_unless_a_match_names_it():
    journal_like = [
        "api-server.log-rotated after 100MB",
        "worker.service-restart requested by operator",
    ]
    assert wrappers.detect(journal_like)[0] is None


# --- runtime prefixes as their makers test them ------------------------------------------------


def lines_frame(texts: list[str]) -> pl.LazyFrame:
    n = len(texts)
    return pl.LazyFrame(
        {
            "line": pl.Series(range(1, n + 1), dtype=pl.UInt32),
            "end_line": pl.Series(range(1, n + 1), dtype=pl.UInt32),
            "text": texts,
            "path": ["x.log"] * n,
        }
    )


def test_cri_tags_after_the_partial_flag_and_untagged_lines():
    raw = [
        "2016-10-06T00:17:09.669794202Z stdout P:TAG1:TAG2 log content 1 ",
        "2016-10-06T00:17:09.669794203Z stdout F:TAG1 log content 2",
        "2016-10-06T00:17:10.113242941Z stderr log content 3",
    ]
    assert runtime.detect(raw)[0] == "cri"
    got = runtime.strip(lines_frame(raw), "cri").collect()
    assert got["text"].to_list() == ["log content 1 log content 2", "log content 3"]
    assert got["stream"].to_list() == ["stdout", "stderr"]


def test_docker_json_written_loosely_is_still_docker_json():
    raw = [
        '{"log": "I0314 18:00:01.1 1 a.go:1] spaced\\n", "stream": "stderr", '
        '"time": "2023-03-14T18:00:01.123456789z"}',
        '{"log":"with attrs\\n","stream":"stdout","attrs":{"tag":"web","env":"prod"},'
        '"time":"2023-03-14T18:00:02.5Z"}',
    ]
    assert runtime.detect(raw)[0] == "docker-json"
    got = runtime.strip(lines_frame(raw), "docker-json").collect()
    assert got["text"].to_list() == ["I0314 18:00:01.1 1 a.go:1] spaced", "with attrs"]
    assert got["prefix_ts"][0] == datetime(2023, 3, 14, 18, 0, 1, 123456, tzinfo=UTC)


def test_docker_partial_line_does_not_swallow_the_other_streams_entry():
    raw = [
        '{"log":"progress 10%","stream":"stdout","time":"2023-03-14T18:00:01Z"}',
        '{"log":"E0314 18:00:01.5 1 a.go:1] boom\\n","stream":"stderr","time":"2023-03-14T18:00:01.5Z"}',
        '{"log":" 20%\\n","stream":"stdout","time":"2023-03-14T18:00:02Z"}',
    ]
    got = runtime.strip(lines_frame(raw), "docker-json").collect()
    assert got["text"].to_list() == ["progress 10%", "E0314 18:00:01.5 1 a.go:1] boom", " 20%"]


# --- files of several formats -----------------------------------------------------------------


def test_klog_lines_inside_a_rabbitmq_log_are_klog_records(read):
    text = (
        "2023-03-15 02:50:01.123456+00:00 [error] <0.1234.0> closing AMQP connection "
        "<0.1234.0> (10.0.3.7:51234 -> 10.0.1.9:5672):\n"
        "client unexpectedly closed TCP connection\n"
        'E0315 02:50:01.500000       1 leaderelection.go:330] "error retrieving resource lock"'
        ' err="context deadline exceeded"\n'
        "2023-03-15 02:50:02.000001+00:00 [info] <0.1240.0> accepting AMQP connection "
        "<0.1240.0> (10.0.3.7:51240 -> 10.0.1.9:5672)\n"
    )
    loaded = read("rabbit@rmq-1.log", text)
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 3, 4]
    assert events["source"].to_list() == ["rabbitmq", "klog", "rabbitmq"]
    assert events["message"][0].endswith("client unexpectedly closed TCP connection")
    assert "leaderelection" not in events["message"][0]


def test_rabbitmq_json_line_after_text_lines_starts_a_record(read):
    text = (
        "2023-03-15 02:50:01.123456+00:00 [info] <0.230.0> Server startup complete; 4 plugins "
        "started.\n"
        '{"time":"2023-03-15 02:50:05.001234+00:00","level":"error","msg":"closing AMQP '
        'connection","pid":"<0.610.0>"}\n'
    )
    loaded = read("rabbit@rmq-2.log", text)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 2]
    assert events["level"].to_list() == ["info", "error"]


def test_detect_names_wrappers_and_segments(write):
    path = write("compose.log", COMPOSE)
    found = loader.detect(str(path))
    assert found["wrappers"] == ["compose"]
    assert set(found["segments"]) == {"rabbitmq", "klog"}
    assert "compose wrapper on 100% of sample lines" in found["why"]
    journal = loader.detect(str(write("journal.txt", JOURNAL_SHORT)))
    assert journal["wrappers"] == ["syslog"]
    # systemd's line and kubelet's non-klog flag line; containerd's entry is logfmt
    assert journal["segments"]["plain"] == 2
    assert journal["segments"]["logfmt"] == 1


def test_one_format_file_is_one_segment():
    lines, _ = split_lines(
        b'I0314 18:00:01.123456       1 a.go:1] "x"\n\tcontinued\n', "kube-proxy.log"
    )
    peeled = wrappers.peel(lines)
    import parsers

    routed = routing.route(peeled.lines, parsers.registry.get("klog"))
    assert routing.segment_sizes(routed) == {"klog": 2}


def test_cli_detect_says_wrappers_and_segments(write):
    from typer.testing import CliRunner

    from timeline.cli import app

    path = write("journal-node-3.txt", JOURNAL_SHORT)
    result = CliRunner().invoke(app, ["detect", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert "syslog wrapper on 100% of sample lines" in result.stdout
    assert "segments:" in result.stdout and "lines plain" in result.stdout


def test_must_gather_pod_log_with_timestamps(read):
    path = (
        "must-gather.local.5528/quay-io-ocp-sha256-7f1a/namespaces/openshift-dns/pods/"
        "dns-default-x2v9q/dns/dns/logs/current.log"
    )
    text = (
        "2023-03-14T18:00:01.123456789Z [INFO] plugin/reload: Running configuration SHA512 = "
        "1f8e2c\n"
        "2023-03-14T18:00:31.204771000Z [ERROR] plugin/errors: 2 api.ci.internal. A: read udp "
        "10.128.0.12:41012->172.30.0.10:53: i/o timeout\n"
    )
    loaded = read(path, text)
    assert loaded.summary.files["prefix"].to_list() == ["kubectl-timestamps"]
    events = loaded.events.sort("line")
    assert events["source"].to_list() == ["coredns", "coredns"]
    assert set(events["host"]) == {"dns-default-x2v9q"}
    assert events["level"].to_list() == ["info", "error"]


@pytest.mark.parametrize(("hosts", "seed"), [(3, 1), (40, 2), (600, 3)])
def test_a_central_syslog_of_many_hosts_keeps_each_hosts_records_apart(read, hosts, seed):
    """rsyslog on a collector: each host's kubelet, containerd and systemd entries
    interleaved with every other host's. A kubelet error's ``err=<`` block goes on over
    entries of its own while other hosts write between them; some hosts' first entry
    is the tail of a block begun before the file."""
    rng = random.Random(seed)
    names = [f"ip-10-{rng.randint(0, 255)}-{rng.randint(0, 255)}-{i}" for i in range(hosts)]
    queues = {}
    for n, host in enumerate(names):
        entries = []
        if n % 7 == 3:  # the file begins inside this host's block
            entries.append(("kubelet[901]", "\tcontext deadline exceeded"))
            entries.append(("kubelet[901]", " >"))
        for k in range(rng.randint(1, 4)):
            clock = f"18:0{k}:1{n % 10}.{n:06d}"
            entries.append(
                (
                    "kubelet[901]",
                    f'E0314 {clock}     901 pod_workers.go:965] "Error syncing pod" '
                    f'pod="ns/web-{n}" err=<',
                )
            )
            entries.append(("kubelet[901]", f'\tfailed to "StartContainer" on {host} try {k}'))
            entries.append(("kubelet[901]", " >"))
            entries.append(
                ("containerd[812]", f'time="2023-03-14T{clock}Z" level=info msg="pull {host}"')
            )
            entries.append(("systemd[1]", f"Started Session {n}-{k} of user core."))
        queues[host] = entries
    lines = []
    while queues:
        host = rng.choice(sorted(queues))
        unit, message = queues[host].pop(0)
        lines.append(f"Mar 14 18:00:{len(lines) % 60:02d} {host} {unit}: {message}")
        if not queues[host]:
            del queues[host]
    loaded = read("syslog", "\n".join(lines) + "\n", year=2023)
    assert accounted(loaded.summary)
    events = loaded.events
    errors = events.filter(pl.col("level") == "error")
    assert errors.height == sum(1 for line in lines if "Error syncing pod" in line)
    for row in errors.iter_rows(named=True):
        err = json.loads(row["attrs"])["err"]
        assert err.startswith('failed to "StartContainer" on ' + row["host"] + " try ")
    pulls = events.filter(pl.col("component") == "containerd")
    assert pulls["source"].unique().to_list() == ["containerd"]
    assert (pulls["message"] == "pull " + pulls["host"]).all()
    sessions = events.filter(pl.col("source") == "systemd")
    assert sessions.height == sum(1 for line in lines if "systemd[1]" in line)


def test_a_line_outside_the_wrapper_before_the_journal_is_its_own_stream(read):
    text = (
        'E0314 18:00:01.123456       1 proxier.go:1520] "Failed to execute iptables-restore"\n'
        "Mar 14 18:00:02 node-3 systemd[1]: Started kubelet.\n"
        "Mar 14 18:00:02 node-3 systemd[1]: Started kube-proxy.\n"
    )
    loaded = read("pasted.txt", text, year=2023)
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    assert events["source"].to_list() == ["klog", "systemd", "systemd"]


def test_another_formats_line_ends_the_record_before_it(read):
    rabbit = (
        "2023-03-15 02:50:01.123456+00:00 [error] <0.1234.0> closing AMQP connection <0.1234.0>"
    )
    klog_line = 'E0315 02:50:01.200000       1 proxier.go:1520] "Sync failed" retryingTime="30s"'
    loaded = read("mixed.log", f"{rabbit}\n{klog_line}\n{rabbit}\n", year=2023)
    files = loaded.summary.files.row(0, named=True)
    # rabbitmq's repeated header would continue its record, but the klog line came between
    assert (files["first_lines"], files["continuation_lines"]) == (3, 0)
    assert loaded.events.sort("line")["source"].to_list() == ["rabbitmq", "klog", "rabbitmq"]
    assert accounted(loaded.summary)


@pytest.mark.parametrize(
    ("name", "text", "program"),
    [
        (
            "compose.log",
            "payments-api-2  | time=2024-09-18T07:12:44.512Z level=WARN "
            'msg="slow upstream" upstream=ledger\n'
            "scheduler-1     | E0918 07:12:46.220114       1 scheduler.go:380] "
            '"Error scheduling pod" pod="default/web-7c9"\n'
            "payments-api-2  | time=2024-09-18T07:12:45.001Z level=ERROR "
            'msg="charge failed" err="context deadline exceeded"\n',
            "payments-api",
        ),
        (
            "node.syslog",
            "Sep 18 07:12:44 worker-b7 ingestd[2211]: ts=2024-09-18T07:12:44.9Z level=warn "
            'msg="queue slow" queue=events\n'
            "Sep 18 07:12:45 worker-b7 kubelet[901]: W0918 07:12:45.100200     901 "
            'eviction_manager.go:337] "Eviction manager: attempting to reclaim"\n'
            "Sep 18 07:12:46 worker-b7 ingestd[2211]: ts=2024-09-18T07:12:46.1Z level=error "
            'msg="queue full" queue=events\n',
            "ingestd",
        ),
    ],
)
def test_logfmt_entries_inside_any_wrapper_are_read_as_logfmt(read, name, text, program):
    events = read(name, text, year=2024).events.sort("line")
    own = events.filter(pl.col("component") == program)
    assert own["level"].to_list() == ["warning", "error"]
    assert not own["message"].str.contains("level=").any()
    assert own["ts"].dt.microsecond().to_list()[0] > 0, "the record's own time, not the wrapper's"
    assert events.filter(pl.col("component") != program)["level"].to_list() in (
        ["error"],
        ["warning"],
    )


# --- collectors around programs no format knows ---------------------------------------------

DOCKER_NGINX = (
    '{"log":"10.1.4.7 - - [14/Mar/2023:18:00:01 +0000] \\"GET /healthz HTTP/1.1\\" 200 2\\r\\n",'
    '"stream":"stdout","time":"2023-03-14T18:00:01.104233871Z"}\n'
    "\n"
    '{"log":"2023/03/14 18:00:02 [error] 29#29: *7 connect() failed (111: Connection refused)'
    ' while connecting to upstream\\n","stream":"stderr","time":"2023-03-14T18:00:02.5Z"}\n'
)

COMPOSE_UNKNOWN = """\
web-1     | Booting worker with pid: 9
web-1     | [2023-03-14 18:00:01 +0000] [9] [ERROR] Exception in worker process
web-1     |   File "/usr/local/lib/python3.11/site-packages/gunicorn/arbiter.py", line 589, in spawn_worker
worker-1  | celery@4f2a ready.
"""


def test_docker_json_lines_of_an_unknown_program_are_records_with_docker_time(read):
    loaded = read("0f5fc6ae789f-json.log", DOCKER_NGINX)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 3]
    assert events["ts"].to_list() == [
        datetime(2023, 3, 14, 18, 0, 1, 104233, tzinfo=UTC),
        datetime(2023, 3, 14, 18, 0, 2, 500000, tzinfo=UTC),
    ]
    assert events["message"][0].startswith("10.1.4.7 - - [14/Mar/2023:18:00:01 +0000]")
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    assert accounted(loaded.summary)


def test_compose_lines_of_unknown_programs_are_records_per_service(read):
    loaded = read("compose.log", COMPOSE_UNKNOWN)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 2, 4]
    assert events["host"].to_list() == ["web-1", "web-1", "worker-1"]
    assert events["level"].to_list() == [None, None, None]
    # the indented traceback line continues the record above it
    assert events["message"][1].split("\n")[1].lstrip().startswith('File "/usr/local')
    assert accounted(loaded.summary)


def test_compose_lines_of_an_unknown_program_beside_a_known_one_are_records(read):
    """The same service's lines as above, now among a service whose format is known:
    they are still records of their own service, not unparsed lines."""
    known = (
        'kube-proxy-1  | E0314 18:00:01.200000       1 proxier.go:1508] "Failed to execute '
        'iptables-restore" err=<\n'
        "kube-proxy-1  | \texit status 1\n"
        "kube-proxy-1  |  >\n"
        'kube-proxy-1  | I0314 18:00:01.300000       1 proxier.go:858] "Sync failed"\n'
    ).splitlines(keepends=True)
    known += [
        f'kube-proxy-1  | I0314 18:00:0{n}.100000       1 proxier.go:823] "Syncing iptables rules"\n'
        for n in range(2, 8)
    ]
    unknown = COMPOSE_UNKNOWN.splitlines(keepends=True)
    # most lines are kube-proxy's, so the file as a whole is klog
    text = "".join(x for pair in itertools.zip_longest(unknown, known, fillvalue="") for x in pair)
    loaded = read("compose.log", text, year=2023)
    assert loaded.summary.unparsed_lines == 0
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    proxy = events.filter(pl.col("source") == "kube-proxy")
    assert loaded.summary.files["format"][0].startswith("klog")
    assert proxy["level"].to_list() == ["error"] + ["info"] * 7
    assert json.loads(proxy["attrs"][0])["err"] == "exit status 1"
    others = events.filter(pl.col("source") != "kube-proxy")
    assert others["host"].to_list() == ["web-1", "web-1", "worker-1"]
    # the indented traceback line continues the gunicorn record, over kube-proxy's line
    assert others["message"][1].split("\n")[1].lstrip().startswith('File "/usr/local')


def test_a_name_with_a_dot_inside_a_journal_entry_is_not_a_grep_prefix():
    peeled = peel(
        "Oct 05 09:07:51 node-3 7f23e91f0901[1772661]: /docker-entrypoint.sh: Configuration complete\n"
        "Oct 05 09:07:52 node-3 7f23e91f0901[1772661]: /docker-entrypoint.sh: Launching 20-envsubst.sh\n"
    )
    assert peeled.layers == ("syslog",)
    assert peeled.lines["text"][0] == "/docker-entrypoint.sh: Configuration complete"


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("<3> 2024-01-25T12:00:00-04:00 edge-7 collector[4410]: upload failed", "error"),
        ("<13> Jan 25 12:00:00 edge-7 collector[4410]: upload resumed", "info"),
    ],
)
def test_a_space_after_the_syslog_priority(read, line, level):
    loaded = read("forwarded.log", line + "\n", year=2024)
    events = loaded.events
    assert events["level"].to_list() == [level]
    assert events["message"][0].startswith("upload ")
    assert events["host"].to_list() == ["edge-7"]


MINIKUBE_LOGS = """\
* ==> Docker <==
* -- Logs begin at Tue 2020-05-12 08:01:11 UTC, end at Tue 2020-05-12 08:20:40 UTC. --
* May 12 08:19:02 minikube dockerd[118]: time="2020-05-12T08:19:02.118830510Z" level=warning msg="failed to retrieve runc version"
*
* ==> kubelet <==
* -- Logs begin at Tue 2020-05-12 08:01:11 UTC, end at Tue 2020-05-12 08:20:40 UTC. --
* May 12 08:20:31 minikube kubelet[2245]: E0512 08:20:31.582129    2245 pod_workers.go:191] Error syncing pod 6d5c2b8e, skipping
"""


def test_minikube_logs_prefix_and_section_titles(read):
    loaded = read("minikube-logs.txt", MINIKUBE_LOGS, year=2020)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "minikube > syslog"
    assert files["wrapper_lines"] == 5  # two titles, two journal headers, one bare "*"
    assert files["unparsed_lines"] == 0
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["warning", "error"]
    assert events["ts"][1] == datetime(2020, 5, 12, 8, 20, 31, 582129, tzinfo=UTC)
    assert events["message"][1] == "Error syncing pod 6d5c2b8e, skipping"


STERN = """\
api-7c9d5f-x2v9q api 2024-02-06T09:14:03.118Z\tERROR\tstore/pg.go:88\tquery failed\t{"err": "context deadline exceeded"}
api-7c9d5f-x2v9q api 2024-02-06T09:14:04.502Z\tINFO\tserver/http.go:51\tretrying
api-7c9d5f-k8m2p api 2024-02-06T09:14:05.009Z\tINFO\tserver/http.go:51\tserving
"""
K9S_COPY = """\
│ E0206 09:14:03.118204       1 reflector.go:138] failed to list *v1.Secret: secrets is forbidden                    │
│ I0206 09:14:04.502113       1 leaderelection.go:258] successfully acquired lease kube-system/cloud-controller-manager │
"""


def test_stern_pod_and_container_before_each_line(read):
    loaded = read("stern.txt", STERN)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "name-prefix"
    events = loaded.events.sort("line")
    assert events["host"].to_list() == ["api-7c9d5f-x2v9q", "api-7c9d5f-x2v9q", "api-7c9d5f-k8m2p"]
    assert events["level"].to_list() == ["error", "info", "info"]
    assert events["message"][0] == "query failed"


def _stern_over_programs(rng: random.Random, namespaces: bool) -> tuple[str, dict[str, str]]:
    """``stern .`` over three programs: kube-proxy's klog lines, CoreDNS's lines that
    carry no time, a RabbitMQ record whose second line stern prefixes as its own; pods
    named the way their controllers name them, interleaved as stern prints them; with
    ``namespaces`` (``stern -A``, several ``-n``), each pod's namespace first."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"

    def suffix(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    proxy = f"kube-proxy-{suffix(5)}"
    dns = f"coredns-{suffix(10)}-{suffix(5)}"
    broker = f"{rng.choice(['rabbitmq', 'rmq', 'broker'])}-{rng.randint(0, 4)}"
    minute = rng.randint(0, 59)
    lines = [
        f'{proxy} kube-proxy E0314 18:{minute:02d}:01.123456       1 proxier.go:1508] "Failed'
        ' to execute iptables-restore" err="exit status 1"',
        f"{dns} coredns [ERROR] plugin/errors: 2 shop.example. A: read udp "
        "10.244.0.5:45678->10.96.0.10:53: i/o timeout",
        f'{dns} coredns [INFO] 10.244.1.7:51234 - 4321 "A IN api.shop.example. udp 35 false'
        ' 512" NOERROR qr,rd,ra 62 0.000123s',
        f'{proxy} kube-proxy I0314 18:{minute:02d}:01.123601       1 proxier.go:858] "Sync'
        ' failed" retryingTime="30s"',
        f"{broker} rabbitmq 2023-03-14 18:{minute:02d}:03.123456+00:00 [error] <0.1234.0> "
        "Channel error on connection <0.1234.0> (10.0.0.1:5672 -> 10.0.0.2:5672, vhost: '/',"
        " user: 'shop'), channel 1:",
        f"{broker} rabbitmq operation basic.publish caused a channel exception not_found: no "
        "exchange 'orders' in vhost '/'",
    ]
    spaces = {proxy: "kube-system", dns: "kube-system", broker: rng.choice(["mq", "team-2"])}
    if namespaces:
        lines = [f"{spaces[line.split(' ', 1)[0]]} {line}" for line in lines]
    names = {"proxy": proxy, "dns": dns, "broker": broker, "broker_ns": spaces[broker]}
    return "\n".join(lines) + "\n", names


@pytest.mark.parametrize(("seed", "namespaces"), [(1, False), (2, True), (3, False), (4, True)])
def test_stern_over_several_programs_keeps_each_pods_lines_its_own(read, seed, namespaces):
    """A program that writes no time (CoreDNS) and a record's second line carry stern's
    names too: they are the named pod's lines, never the record above of another pod;
    the namespace stern writes first is the pod's."""
    text, pods = _stern_over_programs(random.Random(seed), namespaces)
    loaded = read("stern-all.txt", text, year=2023)
    assert loaded.summary.files["prefix"].to_list() == ["name-prefix"]
    events = loaded.events.sort("line")
    by_line = {row["line"]: row for row in events.iter_rows(named=True)}
    assert sorted(by_line) == [1, 2, 3, 4, 5]
    assert [by_line[n]["host"] for n in (1, 2, 3, 4, 5)] == [
        pods["proxy"],
        pods["dns"],
        pods["dns"],
        pods["proxy"],
        pods["broker"],
    ]
    assert [by_line[n]["source"] for n in (1, 2, 4, 5)] == [
        "kube-proxy",
        "coredns",
        "kube-proxy",
        "rabbitmq",
    ]
    assert by_line[1]["message"] == '"Failed to execute iptables-restore" err="exit status 1"'
    assert by_line[2]["level"] == "error"
    assert by_line[2]["message"].startswith("plugin/errors: 2 shop.example. A:")
    assert by_line[5]["message"].endswith(
        "channel 1:\noperation basic.publish caused a channel exception not_found: no "
        "exchange 'orders' in vhost '/'"
    )
    assert accounted(loaded)
    if namespaces:
        found = program_namespaces(loaded.events)
        assert found["component:rabbitmq"] == {pods["broker_ns"]}
        assert found["component:coredns"] == {"kube-system"}


def test_numbered_words_before_lines_are_no_pod_names():
    """A name with a number after it (``worker-3``) is a StatefulSet's pod only in a file
    that shows it is a stream of names: a line of a dated record, or a generated pod's name."""
    peeled = peel(
        "worker-3 started job 8812\n"
        "worker-1 finished job 8809 in 12s\n"
        "worker-3 finished job 8812 in 3s\n"
    )
    assert peeled.layers == ()


def test_words_before_a_time_are_not_a_name_prefix():
    peeled = peel(
        "restarting 2024-02-06T09:14:03Z because the config changed\n"
        "Stopping 2024-02-06T09:14:04Z now\n"
        "done\n"
    )
    assert peeled.layers == ()


@pytest.mark.parametrize(
    "text",
    [
        # RabbitMQ's log.console.formatter.plaintext.format = $level $time $msg
        "info 2024-10-04 03:23:52.968389-04:00 connection 127.0.0.1:57181 -> 127.0.0.1:5672\n"
        "debug 2024-10-04 03:24:03.338466-04:00 Will reconcile virtual host processes\n",
        "warn 2023-11-02T08:00:01Z disk usage above 80%\n"
        "error 2023-11-02T08:00:07Z write failed: no space left on device\n"
        "info 2023-11-02T08:00:09Z retrying\n",
    ],
)
def test_a_level_before_a_time_is_not_a_container_name(text):
    """A level word before each line's time is the format's own field, never a name
    prefix (which would have made ``info`` and ``debug`` the components, the lines timeless)."""
    assert peel(text).layers == ()


def test_lines_copied_from_k9s_lose_its_frame(read):
    loaded = read("k9s.txt", K9S_COPY, year=2024)
    assert loaded.summary.files["prefix"].to_list() == ["k9s"]
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["error", "info"]
    assert events["message"][1] == (
        "successfully acquired lease kube-system/cloud-controller-manager"
    )


SYSTEMCTL_STATUS = """\
× containerd.service - containerd container runtime
     Loaded: loaded (/lib/systemd/system/containerd.service; enabled; preset: enabled)
     Active: failed (Result: exit-code) since Mon 2024-03-11 04:12:09 UTC; 8s ago
       Docs: https://containerd.io
    Process: 2214 ExecStart=/usr/bin/containerd (code=exited, status=1/FAILURE)
   Main PID: 2214 (code=exited, status=1/FAILURE)
        CPU: 61ms

Mar 11 04:12:09 worker-2 containerd[2214]: time="2024-03-11T04:12:09.371144402Z" level=info msg="starting containerd" version=1.7.13
Mar 11 04:12:09 worker-2 containerd[2214]: containerd: failed to load TOML: /etc/containerd/config.toml: (5, 2): unexpected token
Mar 11 04:12:09 worker-2 systemd[1]: containerd.service: Main process exited, code=exited, status=1/FAILURE
"""


def test_systemctl_status_block_above_the_journal_lines(read):
    loaded = read("status.txt", SYSTEMCTL_STATUS, year=2024)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "syslog"
    assert files["wrapper_lines"] == 8  # the status block and the blank line after it
    assert files["unparsed_lines"] == 0
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [9, 10, 11]
    assert events["level"][0] == "info"
    assert events["message"][1].startswith("containerd: failed to load TOML")
    assert events["component"].to_list()[1:] == ["containerd", "systemd"]


def test_blank_lines_alone_are_no_journal():
    assert wrappers.detect(["", "  ", ""]) == (None, 0.0)
    assert wrappers.detect(["-- No entries --", ""])[0] == "syslog"


def test_short_iso_precise_with_a_colon_offset_is_a_journal_not_kubectl_times(read):
    lines = [
        "2024-07-02T09:15:31.402118+02:00 edge-4 kubelet[944]: E0702 07:15:31.401872     944 "
        'kubelet_node_status.go:549] "Error updating node status, will retry" err="timeout"',
        "2024-07-02T09:15:32.000540+02:00 edge-4 systemd[1]: Started Session 12 of User core.",
    ]
    assert wrappers.detect(lines) == ("syslog-iso", 1.0)
    started = read("journal.txt", "\n".join(lines) + "\n").events.sort("line").row(1, named=True)
    assert (started["host"], started["component"]) == ("edge-4", "systemd")
    assert started["ts"] == datetime(2024, 7, 2, 7, 15, 32, 540, tzinfo=UTC)


# --- Go loggers' lines among other formats' lines -------------------------------------------

KLOG_INFO = "I0720 05:19:28.533050       1 feature_gate.go:190] feature gates: map[]"
KLOG_WARN = (
    'W0720 05:19:33.061016       1 server_others.go:289] Flag proxy-mode="" unknown, '
    "assuming iptables proxy"
)
COREDNS_LINE = (
    '[INFO] 10.244.1.7:40163 - 51882 "AAAA IN registry.acme.io. udp 33 false 512" NOERROR '
    "qr,rd,ra 120 0.000851s"
)
RABBIT_LINE = (
    "2024-02-07 11:40:02.118243+00:00 [warning] <0.917.0> closing AMQP connection "
    "<0.917.0> (10.42.0.17:43512 -> 10.42.1.4:5672, vhost: '/', user: 'app'):"
)
#: Lines of Go loggers, each with the time (UTC), level and message it must load with.
GO_LINES = [
    (
        'time="2018-07-20T05:19:33Z" level=error msg="Could not get ipvs family information '
        'from the kernel."',
        datetime(2018, 7, 20, 5, 19, 33, tzinfo=UTC),
        "error",
        "Could not get ipvs family information from the kernel.",
    ),
    (
        'time=2024-02-07T12:40:05.310+01:00 level=WARN msg="lease renewal slow" '
        "lease=kube-system/ingest elapsed=2.4s",
        datetime(2024, 2, 7, 11, 40, 5, 310000, tzinfo=UTC),
        "warning",
        "lease renewal slow",
    ),
    (
        "level=error ts=2021-11-30T09:12:44.871Z caller=notifier.go:527 component=notifier "
        'alertmanager=http://alertmanager:9093/api/v2/alerts msg="Error sending alert"',
        datetime(2021, 11, 30, 9, 12, 44, 871000, tzinfo=UTC),
        "error",
        "Error sending alert",
    ),
    (
        "2023-06-02T08:15:43.902Z\tERROR\tcontroller.ingress\tingress/reconciler.go:71\t"
        'Reconciler error\t{"name": "web", "namespace": "shop", "error": "no endpoints"}',
        datetime(2023, 6, 2, 8, 15, 43, 902000, tzinfo=UTC),
        "error",
        "Reconciler error",
    ),
    (
        "2025-10-08T20:21:54+01:00        INFO        rhp4.siamux        RPC success        "
        '{"peerAddress": "15.204.160.10:33222", "rpc": "Settings"}',
        datetime(2025, 10, 8, 19, 21, 54, tzinfo=UTC),
        "info",
        "RPC success",
    ),
    (
        '{"level":"warn","ts":1686640563.4410355,"caller":"etcdserver/util.go:166",'
        '"msg":"apply request took too long","took":"262.8ms"}',
        datetime(2023, 6, 13, 7, 16, 3, 441036, tzinfo=UTC),
        "warning",
        "apply request took too long",
    ),
    (
        '{"time":"2024-05-21T16:02:11.004512-04:00","level":"ERROR","msg":"upload failed",'
        '"bucket":"backups","err":"EOF"}',
        datetime(2024, 5, 21, 20, 2, 11, 4512, tzinfo=UTC),
        "error",
        "upload failed",
    ),
]


@pytest.mark.parametrize(
    ("name", "before", "after", "year", "program"),
    [
        ("kube-proxy.log", KLOG_INFO, KLOG_WARN, 2018, "kube-proxy"),
        ("coredns.log", COREDNS_LINE, COREDNS_LINE.replace("51882", "51883"), None, "coredns"),
        ("rabbit@rmq-0.log", RABBIT_LINE, RABBIT_LINE.replace("917", "918"), None, "rabbit"),
    ],
)
@pytest.mark.parametrize(("go_line", "ts", "level", "message"), GO_LINES)
def test_a_go_loggers_line_inside_another_formats_file_is_a_record_of_its_own(
    read, name, before, after, year, program, go_line, ts, level, message
):
    first = before.replace("0.", "1.", 1)
    loaded = read(name, f"{first}\n{before}\n{go_line}\n{after}\n", year=year or 2024)
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 2, 3, 4]
    go = events.row(2, named=True)
    assert (go["ts"], go["level"], go["message"].split("\n")[0]) == (ts, level, message)
    # a Go logger's line could be any program's: it is the program the file's name names
    assert go["source"] == program
    # the lines around it are still read by their own format
    assert go_line not in events["message"][1] and go_line not in events["message"][3]
    assert events["source"][1] == events["source"][3]


#: A program's lines around a Go logger's line (``{go}``), as its unit writes them.
WRAPPED_AROUND = {
    "kubelet": [
        'E0207 11:40:01.220114    2211 pod_workers.go:1294] "Error syncing pod, skipping" '
        'pod="shop/web-7c9"',
        '  err="failed to \\"StartContainer\\" for \\"web\\""',
        "{go}",
        'I0207 11:40:07.004221    2211 kubelet.go:2440] "SyncLoop (PLEG)" pod="shop/web-7c9"',
    ],
    "coredns": [
        "[ERROR] plugin/errors: 2 api.shop.svc. A: read udp 10.244.0.3:41012->10.96.0.10:53: "
        "i/o timeout",
        "{go}",
        '[INFO] 10.244.1.7:40163 - 51882 "A IN api.shop.svc. udp 33 false 512" NOERROR '
        "qr,aa,rd 106 0.000211s",
    ],
    "rabbitmq-server": [
        "2024-02-07 11:40:01.220114+00:00 [error] <0.1234.0> closing AMQP connection "
        "<0.1234.0> (10.0.3.7:51234 -> 10.0.1.9:5672, vhost: '/', user: 'app'):",
        "{go}",
        "2024-02-07 11:40:07.004221+00:00 [info] <0.1240.0> accepting AMQP connection "
        "<0.1240.0> (10.0.3.7:51240 -> 10.0.1.9:5672)",
    ],
}


@pytest.mark.parametrize(("go_line", "ts", "level", "message"), GO_LINES)
@pytest.mark.parametrize("program", sorted(WRAPPED_AROUND))
@pytest.mark.parametrize("wrapped", ["cri", "journal"])
def test_a_go_loggers_line_among_a_wrapped_programs_lines_is_read_by_its_format(
    read, wrapped, program, go_line, ts, level, message
):
    lines = [go_line if s == "{go}" else s for s in WRAPPED_AROUND[program]]
    if wrapped == "cri":
        text = "".join(f"2024-02-07T11:40:0{i}.5Z stderr F {s}\n" for i, s in enumerate(lines))
        name = f"node-b7/var/log/pods/shop_{program}-7c9_1a2b/{program}/0.log"
    else:
        text = "".join(
            f"Feb 07 11:40:0{i} worker-b7 {program}[2211]: {s}\n" for i, s in enumerate(lines)
        )
        name = f"{program}.journal"
    loaded = read(name, text, year=2024)
    assert accounted(loaded.summary)
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    events = loaded.events.sort("line")
    go_at = lines.index(go_line) + 1
    # the record before it ends before it; the lines after it are the program's again
    starts = [1, go_at, len(lines)] if program == "kubelet" else list(range(1, len(lines) + 1))
    assert events["line"].to_list() == starts
    assert events["level"][0] == "error" and go_line not in events["message"][0]
    assert events["level"][-1] == "info" and go_line not in events["message"][-1]
    go = events.filter(pl.col("line") == go_at).row(0, named=True)
    assert (go["ts"], go["level"], go["message"].split("\n")[0]) == (ts, level, message)


def test_logrus_terminal_lines_in_a_journal_take_the_journals_time(read):
    """``ERRO[0042]`` counts seconds since the program started: the entry's time is the
    journal's."""
    text = (
        "Mar 14 18:00:01 node-2 traefik[912]: INFO[0000] Configuration loaded from flags.\n"
        "Mar 14 18:00:43 node-2 traefik[912]: ERRO[0042] Error while starting server: "
        "listen tcp :443: bind: address already in use  entryPointName=websecure\n"
        "Mar 14 18:00:43 node-2 systemd[1]: traefik.service: Main process exited, "
        "code=exited, status=1/FAILURE\n"
    )
    events = read("traefik.journal", text, year=2023).events.sort("line")
    traefik = events.filter(pl.col("component") == "traefik")
    assert traefik["level"].to_list() == ["info", "error"]
    assert traefik["message"].to_list() == [
        "Configuration loaded from flags.",
        "Error while starting server: listen tcp :443: bind: address already in use",
    ]
    assert traefik["ts"].dt.second().to_list() == [1, 43]


def test_zap_console_inside_a_journal_keeps_its_own_time_and_fields(read):
    text = (
        "-- Journal begins at Mon 2025-10-06 08:00:01 UTC, ends at Wed 2025-10-08 20:22:10 "
        "UTC. --\n"
        "Oct 08 20:21:54 hostd hostd[3800939]: 2025-10-08T20:21:54+01:00\tINFO\trhp4.siamux\t"
        'RPC success\t{"peerAddress": "15.204.160.10:33222", "rpc": "Settings"}\n'
        "Oct 08 20:21:58 hostd hostd[3800939]: 2025-10-08T20:21:58.250+01:00\tWARN\t"
        'contracts\tfailed to broadcast revision\t{"contract": "fcid:8a0e", "error": "EOF"}\n'
        "Oct 08 20:22:03 hostd systemd[1]: hostd.service: Consumed 2min 3.512s CPU time.\n"
    )
    loaded = read("hostd.journal", text, year=2025)
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    # the unit names the program that wrote the zap lines
    zap = events.filter(pl.col("source") == "hostd")
    assert zap["ts"].to_list() == [
        datetime(2025, 10, 8, 19, 21, 54, tzinfo=UTC),
        datetime(2025, 10, 8, 19, 21, 58, 250000, tzinfo=UTC),
    ]
    assert zap["level"].to_list() == ["info", "warning"]
    assert zap["message"].to_list() == ["RPC success", "failed to broadcast revision"]
    assert zap["component"].to_list() == ["rhp4.siamux", "contracts"]
    assert set(zap["host"]) == {"hostd"}
    assert events.filter(pl.col("source") == "systemd").height == 1


def test_a_zap_time_is_not_taken_for_a_kubectl_timestamps_prefix():
    zap = [
        "2025-10-08T20:21:54+01:00        INFO        rhp4.siamux        RPC success",
        '2024-01-15T09:00:02.118Z  ERROR  sync failed  {"err": "EOF"}',
    ]
    assert runtime.detect(zap)[0] is None
    kubectl = ["2024-01-15T09:00:02.118204512Z [ERROR] plugin/errors: 2 x. A: i/o timeout"]
    assert runtime.detect(kubectl)[0] == "kubectl-timestamps"


def _kube_proxy_sync_failures(start: datetime, offset: timedelta, blocks: int, seed: int) -> str:
    """kube-proxy failing its syncs as ``kubectl logs --timestamps`` shows it: the
    runtime's time (in the zone of ``offset``) and one space before every line, the
    ``err=<`` blocks' tab-indented lines and closing `` >`` included."""
    rng = random.Random(seed)
    zone = (
        "Z"
        if not offset
        else f"{'+' if offset > timedelta(0) else '-'}{abs(offset).seconds // 3600:02d}:{abs(offset).seconds // 60 % 60:02d}"
    )
    out = []
    at = start
    for _ in range(blocks):
        at += timedelta(seconds=rng.randint(20, 90), microseconds=rng.randint(0, 999_999))
        local = (at + offset).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123" + zone
        klog = at.strftime("%m%d %H:%M:%S.%f")
        line = rng.randint(1000, 30000)
        out += [
            f'{local} E{klog}       1 proxier.go:1508] "Failed to execute iptables-restore" err=<',
            f"{local} \texit status 1 (iptables-restore: line {line} failed",
            f"{local} \t)",
            f"{local}  >",
            f'{local} I{klog}       1 proxier.go:858] "Sync failed" retryingTime="30s"',
        ]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(
    ("offset", "blocks", "seed"),
    [
        (timedelta(0), 3, 1),
        (timedelta(hours=1), 7, 2),
        (timedelta(hours=-5), 2, 3),
        (timedelta(hours=5, minutes=30), 12, 4),
    ],
)
def test_kubectl_timestamps_carry_klog_blocks_and_offset_times(read, offset, blocks, seed):
    start = datetime(2023, 12, 31, 22, 58, tzinfo=UTC) if seed % 2 else datetime(2024, 3, 14, 18)
    text = _kube_proxy_sync_failures(start, offset, blocks, seed)
    loaded = read(f"kube-proxy-{seed}.log", text)
    assert loaded.summary.files["prefix"].to_list() == ["kubectl-timestamps"]
    assert accounted(loaded.summary)
    events = loaded.events.sort("line")
    assert events.height == 2 * blocks
    assert events["line"].to_list()[:2] == [1, 5]
    assert events["level"].to_list()[:2] == ["error", "info"]
    assert events["template"].to_list()[:2] == ["Failed to execute iptables-restore", "Sync failed"]
    failed = json.loads(events["attrs"][0])["err"]
    assert failed.startswith("exit status 1 (iptables-restore: line ") and failed.endswith("\n)")
    stamps = [
        datetime.strptime(" ".join(line.split(" ")[1:3])[1:], "%m%d %H:%M:%S.%f")
        for line in text.splitlines()[::5]
    ]
    got = events["ts"].to_list()[::2]
    assert [(t.month, t.day, t.hour, t.minute, t.second, t.microsecond) for t in got] == [
        (s.month, s.day, s.hour, s.minute, s.second, s.microsecond) for s in stamps
    ]
    assert {t.year for t in got} <= {start.year, start.year + 1}


def test_an_offset_time_before_a_klog_header_is_no_journal_line():
    lines = [
        "2023-03-14T19:00:01.123456789+01:00 I0314 18:00:01.123400       1 proxier.go:858] "
        '"Sync failed" retryingTime="30s"',
        "2023-03-14T19:00:31.499912307+01:00 W0314 18:00:31.499871       1 iptables.go:225] "
        "Error checking iptables version, assuming version at least 1.4.11: exit status 2",
    ]
    assert wrappers.detect(lines) == ("kubectl-timestamps", 1.0)
    journal = [line.replace("+01:00 ", "+01:00 node-4 kube-proxy[811]: ") for line in lines]
    assert wrappers.detect(journal) == ("syslog-iso", 1.0)
    coredns = [
        "2023-03-14T13:00:01.500120113-05:00 [INFO] plugin/reload: Running configuration SHA512 = 1f8e",
        '2023-03-14T13:00:02.5000771-05:00 [INFO] 10.244.0.7:53523 - 19585 "A IN example.com. udp 29 '
        'false 512" NOERROR qr,rd,ra 56 0.000123s',
    ]
    assert wrappers.detect(coredns) == ("kubectl-timestamps", 1.0)
    # RabbitMQ's rfc3339_T writes its own time, to the microsecond, with an offset
    rabbit = ["2023-03-14T19:00:01.123456+01:00 [info] <0.230.0> Starting RabbitMQ 3.11.9"]
    assert runtime.detect(rabbit)[0] is None


@pytest.mark.parametrize(
    "go_lines",
    [
        [
            '{"level":"info","ts":1646905685.3055303,"logger":"setup","msg":"Starting lease '
            'controller to report status"}',
            '{"level":"error","ts":1646905685.3117414,"logger":"setup","msg":"Could not load hub '
            'config","error":"secrets \\"hub-kubeconfig\\" not found"}',
        ],
        [
            '{"time":"2022-03-10T09:48:05.305530+00:00","level":"INFO","msg":"Starting lease '
            'controller to report status"}',
            '{"time":"2022-03-10T09:48:05.311741+00:00","level":"ERROR","msg":"Could not load '
            'hub config","err":"not found"}',
        ],
        [
            'time="2022-03-10T09:48:05Z" level=info msg="Starting lease controller to report '
            'status"',
            'time="2022-03-10T09:48:05Z" level=error msg="Could not load hub config" '
            'error="secrets \\"hub-kubeconfig\\" not found"',
        ],
    ],
)
def test_client_go_klog_lines_inside_a_go_loggers_file_are_klog_records(read, go_lines):
    """A controller logs through zap, slog or logrus, client-go through klog."""
    klog_line = (
        "I0310 09:48:05.314491       1 leaderelection.go:243] attempting to acquire leader "
        "lease open-cluster-management/config-policy-controller..."
    )
    text = "\n".join([*go_lines, klog_line, go_lines[0], klog_line.replace("314491", "914491")])
    loaded = read("config-policy-controller.log", text + "\n", year=2022)
    assert accounted(loaded.summary)
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 2, 3, 4, 5]
    assert events["level"].to_list() == ["info", "error", "info", "info", "info"]
    klog = events.filter(pl.col("line").is_in([3, 5]))
    assert klog["message"].str.starts_with("attempting to acquire leader lease").all()
    assert klog["ts"].dt.microsecond().to_list() == [314491, 914491]
    assert events["message"][3] == "Starting lease controller to report status"


def test_a_programs_line_in_a_journal_that_looks_like_grep_is_the_programs():
    text = (
        "-- Logs begin at Sat 2024-09-28 01:46:00 PDT, end at Sat 2024-10-05 09:07:51 PDT. --\n"
        "Oct 05 09:07:51 web-3 7f23e91f0901[1772661]: /docker-entrypoint.sh: Looking for "
        "shell scripts in /docker-entrypoint.d/\n"
        "Oct 05 09:07:52 web-3 7f23e91f0901[1772661]: 10-listen-on-ipv6-by-default.sh: info: "
        "Getting the checksum of /etc/nginx/conf.d/default.conf\n"
    )
    peeled = peel(text)
    assert peeled.layers == ("syslog",)
    assert peeled.lines["text"].to_list()[1:] == [
        "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/",
        "10-listen-on-ipv6-by-default.sh: info: Getting the checksum of "
        "/etc/nginx/conf.d/default.conf",
    ]


def test_small_files_are_one_segment_together_as_each_is_alone():
    """Files of klog lines, one with a logrus line among them, one a journal of two units,
    one with a continuation first: the check for several files at once says of each what
    the check of that file alone says."""
    import parsers

    klog = parsers.registry.get("klog")
    texts = [
        b'I0314 18:00:01.123456       1 a.go:1] "x"\n\tcontinued\n',
        b'I0314 18:00:01.123456       1 a.go:1] "x"\n'
        b'time="2023-03-14T18:00:02Z" level=error msg="dial tcp: i/o timeout"\n',
        b"Mar 14 18:00:01 ip-10-0-1-5 kubelet[812]: I0314 18:00:01.123456     812 k.go:1] a\n"
        b"Mar 14 18:00:02 ip-10-0-1-5 containerd[640]: time=x level=info msg=y\n",
        b"\tcontinued first\nE0314 18:00:03.000001       1 p.go:9] Sync failed\n",
        b'2023-03-14T18:00:01.1Z stderr F I0314 18:00:01.123456       1 a.go:1] "x"\n',
    ]
    files = []
    for n, data in enumerate(texts):
        lines, _ = split_lines(data, f"node-{n}/kube-proxy.log")
        files.append(wrappers.peel(lines, data.decode().split("\n")).lines)
    together = routing.one_segment_each(files, klog)
    alone = [routing.one_segment(f, klog) for f in files]
    assert together == alone
    assert alone[0] and not alone[1] and not alone[2]


def test_prefixes_of_many_files_found_together_as_each_alone():
    """Every registered format's sample, bare and behind each runtime's prefix, alone and
    half-prefixed: one query for them all finds what a query per file finds."""
    import parsers

    stamp = "2024-05-06T07:08:09.123456789Z"
    wraps = {
        "bare": lambda line: line,
        "cri": lambda line: f"{stamp} stderr F {line}",
        "docker": lambda line: json.dumps({"log": line + "\n", "stream": "stdout", "time": stamp}),
        "kubectl-prefix": lambda line: f"[pod/web-7d9f/app] {line}",
        "timestamps": lambda line: f"{stamp} {line}",
    }
    samples = [[], ["", "   "], ["2024-05-06T07:08:09.1+02:00 host app[1]: hello"]]
    for parser in parsers.registry.all_parsers():
        for sample in parser.samples:
            lines = sample.text.splitlines()[:20]
            for wrap in wraps.values():
                samples.append([wrap(line) for line in lines])
                samples.append([wrap(line) if k % 2 else line for k, line in enumerate(lines)])
    assert len(samples) > 100
    found = runtime.detect_each(samples)
    assert found == [runtime.detect(sample) for sample in samples]
    assert {prefix for prefix, _ in found} >= {None, *runtime.PREFIXES}


def test_layers_of_many_files_found_together_as_each_alone():
    """Every registered format's sample bare, inside each wrapper and runtime prefix, and
    half wrapped, with journal and grep files as people save them: one query for them all
    finds the outermost layer a query per file finds."""
    import parsers

    stamp = "2024-05-06T07:08:09.123456789Z"
    wraps = {
        "bare": lambda k, line: line,
        "syslog": lambda k, line: f"May  6 07:08:{k % 60:02d} ip-10-2-3-4 kubelet[812]: {line}",
        "syslog-iso": lambda k, line: f"2024-05-06T07:08:09+0200 node-7 app[1]: {line}",
        "syslog-5424": lambda k, line: f"<165>1 {stamp} node-1 kubelet 1203 - - {line}",
        "compose": lambda k, line: f"rabbitmq-{k % 2 + 1}  | {line}",
        "grep -n": lambda k, line: f"{k * 3 + 1}:{line}",
        "grep -H": lambda k, line: f"logs/rabbit@mq-{k % 2}.log{'-' if k % 3 else ':'}{line}",
        "talosctl": lambda k, line: f"172.20.{k % 3}.2: {line}",
        "kmsg": lambda k, line: f"kern:    info: [{stamp}]: {line}",
        "minikube": lambda k, line: f"* {line}",
        "k9s": lambda k, line: f"│ {line} │",
        "cri": lambda k, line: f"{stamp} stderr F {line}",
        "docker": lambda k, line: json.dumps(
            {"log": line + "\n", "stream": "stdout", "time": stamp}
        ),
        "fluentd": lambda k, line: (
            f"2024-05-06T09:08:09+02:00\tkube.var.log.containers."
            f"web-{k % 3}_shop_nginx-{'ab' * 32}.log\t"
            + json.dumps({"log": line, "stream": "stderr"})
        ),
        "fluentd-stdout": lambda k, line: (
            f"2024-05-06 09:08:{k % 60:02d}.123456789 +0200 kube.var.log.containers."
            f"web-{k % 3}_shop_nginx-{'ab' * 32}.log: "
            + json.dumps({"log": line, "stream": "stderr"})
        ),
        "logcli": lambda k, line: f'2024-05-06T07:08:{k % 60:02d}Z {{pod="web-{k % 2}"}}  {line}',
        "grafana": lambda k, line: f"2024-05-06 09:08:{k % 60:02d}.{k:03d}\t{line}",
        "kubetail": lambda k, line: f"[web-7c9d5f-{'abc'[k % 3]}x2v9 nginx] {line}",
        "fluent-bit-file": lambda k, line: (
            f"kube.var.log.containers.web-{k % 3}_shop_nginx-"
            f"{'cd' * 32}.log: [1714979289.{k:09d}, " + json.dumps({"log": line}) + "]"
        ),
        "loki": lambda k, line: json.dumps(
            {"labels": {"pod": f"web-{k % 2}"}, "line": line, "timestamp": stamp}
        ),
        "aws-logs-tail": lambda k, line: (
            f"2024-05-06T07:08:{k % 60:02d}.{k:06d}+00:00 kube-apiserver-{'0f' * 16} {line}"
        ),
    }
    samples = [
        [],
        ["", "  "],
        ["-- No entries --"],
        ["-- Logs begin at Mon 2024-05-06 07:00:00 UTC, end at Mon 2024-05-06 08:00:00 UTC. --"],
        ["--", "12:a", "--", "14-b"],
        ["2023-03-13 10:05,upgrade,daemonset/kube-proxy", "2023-03-13 10:09,rollback,x"],
        *(text.splitlines() for text in (JOURNAL_SHORT, COMPOSE, MINIKUBE_LOGS, STERN)),
        *(text.splitlines() for text in (SYSTEMCTL_STATUS, COMPOSE_UNKNOWN)),
    ]
    for parser in parsers.registry.all_parsers():
        for sample in parser.samples:
            lines = sample.text.splitlines()[:20]
            for wrap in wraps.values():
                samples.append([wrap(k, line) for k, line in enumerate(lines)])
                samples.append([wrap(k, line) if k % 2 else line for k, line in enumerate(lines)])
    assert len(samples) > 500
    found = wrappers.detect_each(samples)
    assert found == [wrappers.detect(sample) for sample in samples]
    layers = {layer for layer, _ in found}
    assert layers >= {None, *wrappers.WRAPPERS, "cri", "docker-json", "loki"}, layers


REAL = Path(__file__).parent / "data" / "real" / "wrappers"


def test_real_coredns_lines_behind_kubectl_timestamps_are_one_start():
    """``kubectl logs --timestamps`` of CoreDNS 1.6.2 (coredns/coredns#3211): every line a
    row at its time (CoreDNS's own where it writes one, else the prefix's, seven digits
    of fraction cut to six), and the banner CoreDNS writes twice, as a log line and on
    stdout, less than a millisecond apart, one restart, not two."""
    loaded = timeline.read(REAL / "coredns-kubectl-timestamps.log", cache=False, workers=1)
    assert accounted(loaded)
    assert loaded.summary.files["unparsed_lines"].sum() == 0
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["line"].to_list() == [1, 2, 3, 4, 5, 6]
    assert set(logs["level"]) == {"info"} and set(logs["source"]) == {"coredns"}
    assert logs["ts"].dt.strftime("%H:%M:%S%.6f").to_list() == [
        "21:21:43.174053",
        "21:21:43.173000",
        "21:21:43.174000",
        "21:21:43.174000",
        "21:21:43.174406",
        "21:21:43.174425",
    ]
    assert set(logs["ts"].dt.date()) == {datetime(2019, 8, 19).date()}
    assert logs["message"][1].startswith("plugin/reload: Running configuration MD5 = ")
    changes = loaded.events.filter(pl.col("kind") == "change")
    assert changes.height == 1
    change = changes.row(0, named=True)
    assert change["message"] == "coredns restarted (1.6.2)"
    assert len(json.loads(change["attrs"])["witnesses"]) == 2


@pytest.mark.parametrize(
    ("name", "source", "year", "rows"),
    [
        # kubectl logs --timestamps, with eight and nine digits of fraction
        ("kube-scheduler-kubectl-timestamps.log", "kube-scheduler", 2017, 7),
        # containerd's CRI files of a kind cluster, as pasted from CI artefacts
        ("kube-apiserver-cri.log", "kube-apiserver", 2025, 4),
    ],
)
def test_real_klog_lines_behind_a_runtime_prefix_are_a_row_each(name, source, year, rows):
    """klog lines inside a runtime's prefix, as pasted in public issues
    (``tests/data/real/README.md``): a row a line at klog's own time to the microsecond,
    in the year the prefix gives, the program told by what it writes."""
    path = REAL / name
    loaded = read_real(path)
    events = loaded.events.sort("line")
    assert events.height == rows
    assert set(events["source"]) == {source} and set(events["level"]) == {"info"}
    assert set(events["ts"].dt.year()) == {year}
    stamped = [
        found.group(1)
        for line in path.read_text().splitlines()
        if (found := re.search(r" [IWEF][0-9]{4} ([0-9:]{8}\.[0-9]{6}) ", line))
    ]
    assert events["ts"].dt.strftime("%H:%M:%S.%6f").to_list() == stamped


def test_real_grafana_download_is_a_row_an_entry_on_the_node_its_common_labels_name():
    """Grafana's "Download logs" of one pod's Loki stream (pedro-coelho-dr/
    devopswithkubernetes): the query's facts above the lines are Grafana's own, each entry
    is a row at the time Grafana wrote before it (a wall clock without a zone, newest
    first), on the node and container its ``Common labels`` name."""
    path = REAL / "todo-backend-grafana-download.txt"
    loaded = read_real(path)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "grafana"
    assert files["wrapper_lines"] == 5
    events = loaded.events.sort("line")
    assert events["line"].to_list() == list(range(6, 16))
    assert set(events["host"]) == {"k3d-my-cluster-agent-1"}
    assert set(events["component"]) == {"todo-backend"}
    entries = [line.split("\t", 1) for line in path.read_text().splitlines()[5:]]
    assert events["message"].to_list() == [entry for _, entry in entries]
    assert events["ts"].dt.strftime("%Y-%m-%d %H:%M:%S%.3f").to_list() == [
        stamp for stamp, _ in entries
    ]


GRAFANA_ENTRIES = [
    ("2023-03-14 18:00:01.000", 'I0314 18:00:01.000000       1 proxier.go:800] "Syncing rules"'),
    ("2023-03-14 18:00:02.123", 'E0314 18:00:02.123456       1 proxier.go:1557] "Failed" err=<'),
    ("2023-03-14 18:00:02.123", "\texit status 1: iptables-restore: line 7 failed"),
    ("2023-03-14 18:00:02.123", " >"),
    ("2023-03-14 18:00:05.500", 'I0314 18:00:05.500000       1 proxier.go:820] "Synced"'),
]


def grafana_time(wall: str, form: str) -> str:
    """How a Grafana release writes an entry's time (the browser's zone is UTC+1 here)."""
    at = datetime.fromisoformat(wall).replace(tzinfo=UTC)
    if form == "wall":
        return at.astimezone(timezone(timedelta(hours=1))).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if form == "offset":
        return at.astimezone(timezone(timedelta(hours=1))).isoformat(timespec="seconds")
    return f"{int(at.timestamp() * 1000)}\t{at.isoformat(timespec='milliseconds')[:-6]}Z"


@pytest.mark.parametrize("order", ["newest first", "oldest first"])
@pytest.mark.parametrize("form", ["wall", "offset", "epoch"])
def test_grafana_download_of_kube_proxy_keeps_its_records_whole(read, form, order):
    """Each of the three ways Grafana has written a download's times, in either order of
    its view: kube-proxy's ``err=<`` block, three Loki entries of one time, is one record
    again, and each record is at klog's own time on the node ``Common labels`` name."""
    entries = GRAFANA_ENTRIES if order == "oldest first" else GRAFANA_ENTRIES[::-1]
    text = (
        'Common labels: {"container":"kube-proxy","node_name":"gke-a","pod":"kube-proxy-x1"}\n'
        'Line limit: "1000 (5 returned)"\n\n\n'
        + "".join(f"{grafana_time(wall, form)}\t{line}\n" for wall, line in entries)
    )
    loaded = read("Explore-logs-2023-03-14 19_05_00.txt", text)
    assert accounted(loaded)
    files = loaded.summary.files.row(0, named=True)
    assert (files["prefix"], files["unparsed_lines"], files["wrapper_lines"]) == ("grafana", 0, 4)
    events = loaded.events.sort("ts")
    assert events["level"].cast(pl.String).to_list() == ["info", "error", "info"]
    assert set(events["host"]) == {"gke-a"} and set(events["component"]) == {"kube-proxy"}
    assert events["message"][1].splitlines()[1:] == [
        "\texit status 1: iptables-restore: line 7 failed",
        " >",
    ]
    assert events["ts"].dt.strftime("%Y-%m-%d %H:%M:%S%.6f").to_list() == [
        "2023-03-14 18:00:01.000000",
        "2023-03-14 18:00:02.123456",
        "2023-03-14 18:00:05.500000",
    ]


def test_grafana_download_gives_coredns_lines_its_time_and_the_meta_lines_are_its_own(read):
    """CoreDNS writes no time in a container: each line is at the time Grafana wrote before
    it, in UTC where Grafana names the zone; the download's facts are no CoreDNS lines."""
    text = (
        'Common labels: {"container":"coredns","namespace":"kube-system"}\n'
        'Line limit: "1000 (2 returned)"\nTotal bytes processed: "1.2 kB"\n\n\n'
        "2023-03-14T19:00:02+01:00\t[ERROR] plugin/errors: 2 example.org. A: "
        "read udp 10.244.1.6:36797->10.0.0.10:53: i/o timeout\n"
        "2023-03-14T19:00:01+01:00\t[INFO] plugin/reload: Running configuration SHA512 = ab12\n"
    )
    loaded = read("coredns.txt", text)
    files = loaded.summary.files.row(0, named=True)
    assert (files["prefix"], files["format"], files["unparsed_lines"]) == ("grafana", "coredns", 0)
    events = loaded.events.sort("line")
    assert events["ts"].to_list() == [
        datetime(2023, 3, 14, 18, 0, 2, tzinfo=UTC),
        datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC),
    ]
    assert events["level"].cast(pl.String).to_list() == ["error", "info"]
    assert set(events["component"]) == {"coredns"}


def test_grafana_wall_clock_dates_yearless_klog_lines_across_a_new_year(read):
    """A download's zoneless wall clock (the browser's, an hour ahead of the node's UTC
    here) names the year klog leaves out: a line logged just before midnight is in the
    old year though Grafana's time is already in the new one."""
    text = (
        'Common labels: {"container":"kube-proxy","node_name":"gke-a"}\n\n\n'
        "2024-01-01 01:10:00.000\tI0101 00:10:00.000000       1 proxier.go:820] "
        '"SyncProxyRules complete"\n'
        "2024-01-01 00:30:00.000\tW1231 23:30:00.000000       1 proxier.go:1557] "
        '"Slow sync"\n'
    )
    loaded = read("Explore-logs.txt", text)
    events = loaded.events.sort("ts")
    assert events["ts"].to_list() == [
        datetime(2023, 12, 31, 23, 30, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 10, tzinfo=UTC),
    ]
    assert events["level"].cast(pl.String).to_list() == ["warning", "info"]


KUBETAIL = """\
Will tail 2 logs...
\x1b[0;32mcoredns-5d78c9869d-abcde\x1b[0m
\x1b[0;33mcoredns-5d78c9869d-fghij\x1b[0m
\x1b[0;32m[coredns-5d78c9869d-abcde]\x1b[0m [INFO] plugin/reload: Running configuration SHA512 = ab12
\x1b[0;33m[coredns-5d78c9869d-fghij]\x1b[0m [ERROR] plugin/errors: 2 example.org. A: read udp \
10.244.1.6:36797->10.0.0.10:53: i/o timeout
"""


def test_kubetail_names_each_lines_pod_and_its_preamble_is_its_own(read):
    """``kubetail coredns``: the pods it will tail listed first (its own lines), then each
    line behind its pod's name in brackets and colour."""
    loaded = read("kubetail.txt", KUBETAIL)
    assert accounted(loaded)
    files = loaded.summary.files.row(0, named=True)
    assert (files["prefix"], files["format"]) == ("kubetail", "coredns")
    assert (files["wrapper_lines"], files["unparsed_lines"]) == (3, 0)
    events = loaded.events.sort("line")
    assert events["host"].to_list() == ["coredns-5d78c9869d-abcde", "coredns-5d78c9869d-fghij"]
    assert events["level"].cast(pl.String).to_list() == ["info", "error"]
    assert events["message"][1].startswith("plugin/errors: 2 example.org. A: read udp")


def test_kubetail_with_timestamps_and_containers_keeps_klog_blocks_whole(read):
    """``kubetail -c kube-proxy --timestamps`` over pods of two containers: pod and
    container in the brackets, kubectl's time after them; the ``err=<`` block, whose
    indent kubetail's ``read`` dropped, still continues its record."""
    text = (
        "[kube-proxy-x7k2p kube-proxy] 2023-03-14T18:00:02.123456789Z E0314 18:00:02.123456"
        '       1 proxier.go:1557] "Failed to execute iptables-restore" err=<\n'
        "[kube-proxy-x7k2p kube-proxy] 2023-03-14T18:00:02.123456789Z exit status 1\n"
        "[kube-proxy-x7k2p kube-proxy] 2023-03-14T18:00:02.123456789Z >\n"
        "[kube-proxy-b4n8q kube-proxy] 2023-03-14T18:00:03.5Z I0314 18:00:03.500000"
        '       1 proxier.go:820] "SyncProxyRules complete"\n'
    )
    loaded = read("kubetail-ts.txt", text)
    assert accounted(loaded)
    assert loaded.summary.files["prefix"][0] == "kubetail > kubectl-timestamps"
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 4]
    assert set(events["component"]) == {"kube-proxy"}
    assert events["host"].to_list() == ["kube-proxy-x7k2p", "kube-proxy-b4n8q"]
    assert events["message"][0].splitlines()[1:] == ["exit status 1", ">"]
    assert events["ts"].to_list() == [
        datetime(2023, 3, 14, 18, 0, 2, 123456, tzinfo=UTC),
        datetime(2023, 3, 14, 18, 0, 3, 500000, tzinfo=UTC),
    ]


def test_a_level_in_brackets_is_no_kubetail_pod():
    """Lowercase levels in brackets before a line (no hyphen) are a program's own."""
    peeled = peel("[info] starting\n[warn] disk above 80%\n[error] write failed\n")
    assert peeled.layers == ()


def _eks_log_group(rng: random.Random) -> tuple[list[dict], dict[str, str]]:
    """An EKS cluster's control plane log group as CloudWatch holds it, and a pod's log
    from Container Insights: an audit event of a person's DaemonSet patch, then the API
    server's and the controller manager's klog lines and kube-proxy's error, each in its
    own stream (an instance's hex id after the program's name)."""
    instance = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    node = f"ip-10-{rng.randint(0, 255)}-{rng.randint(0, 255)}-{rng.randint(1, 254)}.ec2.internal"
    pod = "kube-proxy-" + "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
    start = datetime(2024, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 22), tzinfo=UTC)
    user = rng.choice(["maria", "kenji", "olu"])
    at = [
        start + timedelta(seconds=s, microseconds=rng.randint(0, 999) * 1000) for s in (1, 2, 3, 4)
    ]

    def klog(t: datetime, letter: str, where: str, text: str) -> str:
        return f"{letter}{t:%m%d %H:%M:%S.%f}      11 {where}] {text}"

    audit_line = audit(
        "patch",
        "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy",
        {
            "resource": "daemonsets",
            "namespace": "kube-system",
            "name": "kube-proxy",
            "apiGroup": "apps",
        },
        when=f"{at[0]:%Y-%m-%dT%H:%M:%S.%f}Z",
        audit_id=f"{rng.getrandbits(128):032x}",
        user=f"arn:aws:sts::123456789012:assumed-role/eks-admin/{user}",
    )
    container_log = (
        f"{node}-application.var.log.containers.{pod}_kube-system_kube-proxy-"
        + "".join(rng.choice("0123456789abcdef") for _ in range(64))
        + ".log"
    )
    events = [
        (at[0], f"kube-apiserver-audit-{instance}", audit_line),
        (
            at[1],
            f"kube-apiserver-{instance}",
            klog(at[1], "E", "status.go:71", "apiserver received an error: context canceled"),
        ),
        (
            at[2],
            f"kube-controller-manager-{instance}",
            klog(
                at[2],
                "I",
                "event.go:307",
                '"Event occurred" kind="DaemonSet" reason="SuccessfulCreate"',
            ),
        ),
        (
            at[3],
            container_log,
            klog(
                at[3],
                "E",
                "proxier.go:1508",
                '"Failed to execute iptables-restore" err="exit status 1"',
            ),
        ),
    ]
    records = [
        {
            "logStreamName": stream,
            "timestamp": int(t.timestamp() * 1000),
            "message": message,
            "ingestionTime": int(t.timestamp() * 1000) + 700,
            "eventId": f"{rng.getrandbits(96)}",
        }
        for t, stream, message in events
    ]
    return records, {"node": node, "pod": pod, "user": user}


def _check_eks_log_group(loaded: timeline.Loaded, names: dict[str, str]) -> None:
    rows = loaded.events.sort("ts")
    assert rows["source"].to_list() == [
        "k8s-audit",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-proxy",
    ]
    assert rows["kind"].to_list() == ["change", "log", "log", "log"]
    assert names["user"] in rows["message"][0]
    assert rows["level"].to_list()[1:] == ["error", "info", "error"]
    assert rows["message"][1] == "apiserver received an error: context canceled"
    assert rows["host"][3] == names["node"]
    assert accounted(loaded)


@pytest.mark.parametrize("seed", [4, 5])
def test_an_eks_log_group_exported_by_filter_log_events_reads_each_stream_in_its_format(read, seed):
    """Streams of several programs in one ``aws logs filter-log-events`` answer: the
    audit stream's events are changes, the control plane's klog lines logs of the program
    its stream names, not lines the audit format cannot read."""
    records, names = _eks_log_group(random.Random(seed))
    document = json.dumps({"events": records, "searchedLogStreams": []}, indent=4)
    _check_eks_log_group(read("eks-control-plane.json", document), names)


@pytest.mark.parametrize("seed", [6, 7])
def test_aws_logs_tail_gives_each_line_its_stream_and_time(read, seed):
    """``aws logs tail``: the event's time in UTC to the microsecond, then its stream,
    which names the program (and, for Container Insights, the node and pod); with
    colours where it wrote to a terminal."""
    rng = random.Random(seed)
    records, names = _eks_log_group(rng)
    colour = rng.random() < 0.5
    lines = []
    for record in records:
        t = datetime.fromtimestamp(record["timestamp"] / 1000, UTC)
        when, stream = t.isoformat(timespec="microseconds"), record["logStreamName"]
        if colour:
            when, stream = f"\x1b[32m{when}\x1b[0m", f"\x1b[36m{stream}\x1b[0m"
        lines.append(f"{when} {stream} {record['message']}")
    loaded = read("tail.txt", "\n".join(lines) + "\n")
    assert loaded.summary.files["prefix"].to_list() == ["aws-logs-tail"]
    _check_eks_log_group(loaded, names)


def test_a_level_after_a_utc_time_is_no_log_stream():
    peeled = peel(
        "2024-05-02T09:14:03.118000+00:00 ERROR payment declined for order 8812\n"
        "2024-05-02T09:14:04.002000+00:00 INFO retrying order 8812\n"
    )
    assert "aws-logs-tail" not in peeled.layers

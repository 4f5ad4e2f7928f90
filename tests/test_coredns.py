"""CoreDNS and node-local-dns logs, loaded as a user would load them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import timeline
from parsers import coredns
from parsers.common import LINE_SCHEMA
from tests.lines import read_real

REAL = Path(__file__).parent / "data" / "real" / "coredns"

POD_DIR = "var/log/pods/kube-system_coredns-5d78c9869d-abcde_6f1c2a4e-9b1d-4c1e-a0f2-3d4e5f6a7b8c"
NODE_CACHE_DIR = (
    "var/log/pods/kube-system_node-local-dns-x7k2p_0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
)

SHA512 = (
    "591cf328cccc12bc490481273e738df59329c62c0b729d94e8b61db9961c2fa5"
    "f046dd37f1cf888b953814040d180f52594972691cd6ff41be96639138a43908"
)
BANNER = f""".:53
[INFO] plugin/reload: Running configuration SHA512 = {SHA512}
CoreDNS-1.9.3
linux/amd64, go1.18.2, 45b0a11
"""

QUERIES = (
    '[INFO] 10.244.0.1:53523 - 19585 "A IN example.com. udp 29 false 512" '
    "NOERROR qr,rd,ra 56 0.000123s\n"
    '[INFO] 10.244.1.7:40211 - 4410 "AAAA IN api.github.com.svc.cluster.local. udp 61 false 512" '
    "NXDOMAIN qr,aa,rd 154 0.000094s\n"
    '[INFO] 10.244.2.9:38200 - 9113 "A IN api.github.com. udp 32 false 512" '
    "SERVFAIL qr,rd 32 2.001371052s\n"
    '[INFO] 10.244.2.9:38201 - 9114 "A IN github.com. udp 28 false 512" '
    "SERVFAIL qr,rd 28 2.000831915s\n"
    '[INFO] 10.244.3.4:51000 - 77 "A IN blocked.example. tcp 40 true 1232" '
    "REFUSED qr,rd 40 0.000051s\n"
    '[INFO] [fd00::1]:53523 - 19586 "AAAA IN example.com. udp 40 true 1232" '
    "NOERROR qr,rd,ra 68 1.5ms\n"
)


def cri(text: str, start: datetime, *, stream: str = "stdout") -> str:
    """``text`` with a containerd CRI prefix on every line, one millisecond apart."""
    out = []
    for i, line in enumerate(text.splitlines()):
        ts = (start + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        out.append(f"{ts} {stream} F {line}")
    return "\n".join(out) + "\n"


def attrs(events: pl.DataFrame) -> list[dict]:
    return [json.loads(a) for a in events.sort("line")["attrs"]]


def by_line(events: pl.DataFrame) -> pl.DataFrame:
    return events.sort("line")


# --- query lines -------------------------------------------------------------------------


def test_query_line_fields_are_typed(read):
    loaded = read("coredns.log", QUERIES)
    first = attrs(loaded.events)[0]
    assert first == {
        "client": "10.244.0.1",
        "port": 53523,
        "id": 19585,
        "type": "A",
        "class": "IN",
        "name": "example.com.",
        "proto": "udp",
        "size": 29,
        "do": False,
        "bufsize": 512,
        "rcode": "NOERROR",
        "flags": "qr,rd,ra",
        "rsize": 56,
        "duration_s": 0.000123,
    }
    assert loaded.summary.unparsed_lines == 0


def test_ipv6_client_loses_its_brackets_and_durations_become_seconds(read):
    last = attrs(read("coredns.log", QUERIES).events)[-1]
    assert last["client"] == "fd00::1"
    assert last["port"] == 53523
    assert last["do"] is True
    assert last["duration_s"] == pytest.approx(0.0015)


def test_servfail_and_refused_answers_are_errors_and_nxdomain_is_not(read):
    events = by_line(read("coredns.log", QUERIES).events)
    rcodes = events["message"].str.extract(r'" ([A-Z]+) ')
    levels = dict(zip(rcodes, events["level"], strict=True))
    assert levels == {
        "NOERROR": "info",
        "NXDOMAIN": "info",
        "SERVFAIL": "error",
        "REFUSED": "error",
    }


def test_query_templates_keep_the_answer_and_mask_the_name(read):
    templates = by_line(read("coredns.log", QUERIES).events)["template"].to_list()
    assert templates[2] == templates[3] == "A IN <NAME> SERVFAIL"
    assert templates[0] == "A IN <NAME> NOERROR"
    assert templates[0] != templates[2]


@pytest.mark.parametrize(
    ("fields", "client", "port"),
    [
        (
            '"remote":"{remote}","port":"{port}","type":"{type}","name":"{name}",'
            '"rcode":"{rcode}","duration":"{duration}"',
            "10.244.3.17",
            41622,
        ),
        (
            '"client":"{remote}","rcode":"{rcode}","type":"{type}","class":"{class}"',
            "fd00::7",
            None,
        ),
        ('"remote":"{remote}:{port}","type":"{type}","rcode":"{rcode}"', "10.244.3.17", 41622),
    ],
)
def test_query_lines_a_custom_format_writes_as_json_are_queries(read, fields, client, port):
    """The ``log`` plugin with a format of one's own (``log . "{\"remote\":\"{remote}\",
    ..."``) writes each query as a JSON object: its answer is read like the default
    format's, a SERVFAIL an error, whatever the keys' order and which of them it has."""
    values = [
        ("10.244.3.17", "[fd00::7]")["client" in fields],
        "41622",
        "A",
        "IN",
        "sqs.eu-west-1.amazonaws.com.",
    ]
    lines = []
    for rcode, duration in (
        ("NOERROR", "0.000416s"),
        ("SERVFAIL", "2.0041s"),
        ("REFUSED", "0.0001s"),
    ):
        line = fields
        for placeholder, value in zip(
            ("{remote}", "{port}", "{type}", "{class}", "{name}"), values, strict=True
        ):
            line = line.replace(placeholder, value)
        line = line.replace("{rcode}", rcode).replace("{duration}", duration)
        lines.append("[INFO] {" + line + "}")
    events = by_line(read("coredns.log", BANNER + "\n".join(lines) + "\n").events).tail(3)
    assert events["level"].to_list() == ["info", "error", "error"]
    assert events["template"].to_list() == [
        "A IN <NAME> NOERROR",
        "A IN <NAME> SERVFAIL",
        "A IN <NAME> REFUSED",
    ]
    found = attrs(events)[1]
    assert (found["rcode"], found["client"], found.get("port")) == ("SERVFAIL", client, port)


@pytest.mark.parametrize(
    "bad",
    [
        '[INFO] {"remote":"10.244.3.17","type":"A","name":"bad\\255name.","rcode":"SERVFAIL"}',
        '[INFO] {"remote":"10.244.3.17","type":"A","name":"sqs.eu-west-1.amazonaws.com.","rco',
        '[INFO] {"remote":"10.244.3.17","type":"A","rcode":"SERVFAIL","name":"x."}}',
    ],
    ids=["unescaped-byte", "cut-off", "extra-brace"],
)
def test_a_json_query_line_that_is_no_json_costs_that_line_alone(read, bad):
    good = '[INFO] {"remote":"10.244.3.17","type":"A","name":"sqs.example.","rcode":"SERVFAIL"}'
    loaded = read("coredns.log", BANNER + f"{good}\n{bad}\n{good}\n")
    events = by_line(loaded.events)
    assert events.height == 7 and loaded.summary.unparsed_lines == 0
    assert events["level"].to_list()[-3::2] == ["error", "error"]
    assert events["template"][-1] == "A IN <NAME> SERVFAIL"
    assert events["message"][-2] == bad.removeprefix("[INFO] ")


def test_message_is_the_line_without_its_level_tag(read):
    first = by_line(read("coredns.log", QUERIES).events).row(0, named=True)
    assert first["message"].startswith('10.244.0.1:53523 - 19585 "A IN example.com.')
    assert first["source"] == "coredns" and first["kind"] == "log"


def test_older_query_lines_with_a_time_and_no_level_tag(read):
    line = (
        '10.0.0.7:4000 - [14/Mar/2023:19:00:01 +0100] 31 "MX IN example.org. udp 40 true 4096" '
        'NOERROR qr,aa,rd 100 1m2.5s "QUERY"\n'
    )
    event = read("old.log", line).events.row(0, named=True)
    assert event["ts"] == datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC)
    assert event["level"] == "info"
    got = json.loads(event["attrs"])
    assert (got["type"], got["duration_s"], got["opcode"]) == ("MX", 62.5, "QUERY")


@pytest.mark.parametrize(
    ("client", "port"),
    [
        ("fd00::1", None),
        ("2001:db8::53", None),
        ("::1", None),
        ("fe80::1ff:fe23:4567:890a", None),
        ("10.0.0.7", 4000),
        ("[fd00::7]", 53),
    ],
)
def test_older_query_lines_keep_a_bare_ipv6_client_whole(read, client, port):
    """Before 1.1 the log plugin wrote an IPv6 client bare and with no port."""
    where = client if port is None else f"{client}:{port}"
    line = (
        f'{where} - [14/Mar/2023:18:00:01 +0000] 29479 "AAAA IN example.org. udp 40 false 512" '
        "NOERROR qr,rd,ra 72 89.891µs\n"
    )
    got = json.loads(read("old.log", line, format="coredns").events["attrs"][0])
    assert got["client"] == client.strip("[]")
    assert got.get("port") == port


# --- errors plugin -----------------------------------------------------------------------


def test_errors_plugin_line(read):
    text = (
        "[ERROR] plugin/errors: 2 github.com. A: read udp 10.244.0.3:41012->10.96.0.10:53: "
        "i/o timeout\n"
        "[ERROR] plugin/errors: 2 718294391480188920.4598724349132187517.cluster.local. HINFO: "
        "dial tcp 100.64.0.3:53: connect: no route to host\n"
    )
    events = by_line(read("coredns.log", text).events)
    assert events["level"].to_list() == ["error", "error"]
    assert attrs(events)[0] == {
        "plugin": "errors",
        "type": "A",
        "name": "github.com.",
        "rcode": "SERVFAIL",
        "error": "read udp 10.244.0.3:41012->10.96.0.10:53: i/o timeout",
    }
    assert events["template"].to_list() == [
        "plugin/errors: SERVFAIL <NAME> A: read udp <IP>:<PORT>-><IP>:<PORT>: i/o timeout",
        "plugin/errors: SERVFAIL <NAME> HINFO: dial tcp <IP>:<PORT>: connect: no route to host",
    ]


@pytest.mark.parametrize(
    ("zone", "utc"),
    [
        ("+0000", datetime(2017, 11, 29, 23, 16, 11, tzinfo=UTC)),
        ("-0500", datetime(2017, 11, 30, 4, 16, 11, tzinfo=UTC)),
    ],
)
def test_errors_plugin_lines_up_to_1_0_bracket_the_query_after_its_time(read, zone, utc):
    """Up to 1.0 the errors plugin wrote ``{time} [ERROR {rcode} {name} {type}] {error}``
    (coredns/coredns#1265) and ``[PANIC {name} {type}] file:line - ...`` for a panic it
    recovered from: each is an error at its own time, read as later releases' line."""
    text = (
        f"29/Nov/2017:23:16:11 {zone} [ERROR 0 kubernetes.monitoring.svc.cluster.local. A] "
        "no items found\n"
        f"29/Nov/2017:23:16:11 {zone} [ERROR 2 github.com. AAAA] unreachable backend: "
        "read udp 10.32.0.4:51842->8.8.8.8:53: i/o timeout\n"
        f"29/Nov/2017:23:16:11 {zone} [PANIC grafana.monitoring.svc.cluster.local. SRV] "
        "plugin/kubernetes/kubernetes.go:312 - runtime error: index out of range\n"
    )
    loaded = read("coredns.log", text)
    assert loaded.summary.files["format"].to_list() == ["coredns"]
    events = by_line(loaded.events)
    assert events["ts"].to_list() == [utc] * 3
    assert events["level"].to_list() == ["error"] * 3
    assert events["message"].to_list() == [
        "0 kubernetes.monitoring.svc.cluster.local. A: no items found",
        "2 github.com. AAAA: unreachable backend: read udp 10.32.0.4:51842->8.8.8.8:53: "
        "i/o timeout",
        "grafana.monitoring.svc.cluster.local. SRV: plugin/kubernetes/kubernetes.go:312 - "
        "runtime error: index out of range",
    ]
    got = attrs(events)
    assert [(a["name"], a["type"], a.get("rcode")) for a in got] == [
        ("kubernetes.monitoring.svc.cluster.local.", "A", "NOERROR"),
        ("github.com.", "AAAA", "SERVFAIL"),
        ("grafana.monitoring.svc.cluster.local.", "SRV", None),
    ]
    assert events["template"][1] == (
        "plugin/errors: SERVFAIL <NAME> AAAA: unreachable backend: "
        "read udp <IP>:<PORT>-><IP>:<PORT>: i/o timeout"
    )


def test_a_bracketed_line_of_another_program_is_not_an_old_errors_line(read):
    """Caddy's errors middleware, whose shape CoreDNS took, writes a path and no type."""
    line = "29/Nov/2017:23:16:11 +0000 [ERROR 502 /api/v1/users] dial tcp: i/o timeout\n"
    assert read("caddy.log", line).summary.files["format"].to_list() != ["coredns"]


def test_errors_plugin_consolidated_summary(read):
    line = (
        "[WARNING] plugin/errors: 12 errors like '^read udp .* i/o timeout$' occurred in last 30s\n"
    )
    event = read("coredns.log", line).events.row(0, named=True)
    assert event["level"] == "warning"
    assert json.loads(event["attrs"]) == {
        "plugin": "errors",
        "count": 12,
        "pattern": "^read udp .* i/o timeout$",
        "period": "30s",
    }


# --- banner, reload, plugins -------------------------------------------------------------


def test_startup_banner_lines_are_info_records_with_the_version(read):
    events = by_line(read("coredns.log", BANNER).events)
    assert events.height == 4
    assert events["level"].to_list() == ["info"] * 4
    got = attrs(events)
    assert got[0] == {"zone": ".", "listen_port": 53}
    assert got[1]["plugin"] == "reload" and got[1]["sha512"].startswith("591cf328")
    assert got[2] == {"version": "1.9.3"}
    assert got[3] == {"os": "linux", "arch": "amd64", "go_version": "go1.18.2", "commit": "45b0a11"}


def test_a_banner_stamped_by_coredns_1_2_to_1_6_has_its_release_too(read):
    text = (
        ".:53\n"
        "2020-03-03T09:35:05.685Z [INFO] CoreDNS-1.3.1\n"
        "2020-03-03T09:35:05.685Z [INFO] linux/amd64, go1.11.4, 6b56a9c\n"
    )
    got = attrs(by_line(read("coredns.log", text, format="coredns").events))
    assert got[1:] == [
        {"version": "1.3.1"},
        {"os": "linux", "arch": "amd64", "go_version": "go1.11.4", "commit": "6b56a9c"},
    ]


def test_node_local_dns_banner_binds_and_empty_commit(read):
    text = "cluster.local.:53 on 169.254.20.10\nCoreDNS-1.7.0\nlinux/amd64, go1.16.8, \n"
    got = attrs(read("nodelocal.log", text).events)
    assert got[0] == {"zone": "cluster.local.", "listen_port": 53, "bind": "169.254.20.10"}
    assert got[2] == {"os": "linux", "arch": "amd64", "go_version": "go1.16.8"}


def test_reload_sequence_and_older_md5(read):
    text = (
        "[INFO] Reloading\n"
        "[INFO] plugin/health: Going into lameduck mode for 5s\n"
        "[INFO] plugin/reload: Running configuration MD5 = 2c2678d613dda4d5669dd465792642bd\n"
        "[INFO] Reloading complete\n"
    )
    events = by_line(read("coredns.log", text).events)
    assert events["message"].to_list() == [
        "Reloading",
        "plugin/health: Going into lameduck mode for 5s",
        "plugin/reload: Running configuration MD5 = 2c2678d613dda4d5669dd465792642bd",
        "Reloading complete",
    ]
    assert attrs(events)[2] == {"plugin": "reload", "md5": "2c2678d613dda4d5669dd465792642bd"}


@pytest.mark.parametrize(
    ("indent", "line", "level"),
    [
        (
            " ",
            "[INFO] plugin/reload: Running configuration MD5 = dcbdb2052e98794e3ce3d2c41f785ef9",
            "info",
        ),
        (
            "  ",
            "[WARNING] No files matching import glob pattern: /etc/coredns/custom/*.server",
            "warning",
        ),
        (
            "\t",
            "[ERROR] plugin/errors: 2 github.com. A: read udp 10.0.0.3:41012->8.8.8.8:53: i/o timeout",
            "error",
        ),
    ],
)
def test_an_indented_tagged_line_is_a_record_of_its_own(read, indent, line, level):
    """1.2.6 started with `` [INFO] plugin/reload: ...`` under its banner (kubernetes/kubernetes#71827):
    a level tag after blanks starts a record, where any other indented line continues one."""
    text = (
        ".:53\n"
        "2018-12-07T04:42:00.816Z [INFO] CoreDNS-1.2.6\n"
        "CoreDNS-1.2.6\n"
        "linux/amd64, go1.11.2, 756749c\n"
        f"{indent}{line}\n"
        "E1207 04:42:25.816364       1 reflector.go:205] github.com/coredns/coredns/plugin/kubernetes/"
        "controller.go:318: Failed to list *v1.Namespace: Get https://10.233.0.1:443/api/v1/"
        "namespaces?limit=500&resourceVersion=0: dial tcp 10.233.0.1:443: i/o timeout\n"
    )
    loaded = read("coredns.log", text, year=2018)
    events = by_line(loaded.events)
    assert events["line"].to_list() == [1, 2, 3, 4, 5, 6]
    assert events["message"][3] == "linux/amd64, go1.11.2, 756749c"
    assert events["message"][4] == line.split("] ", 1)[1]
    assert events["level"][4] == level
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]


@pytest.mark.parametrize(
    ("line", "level", "plugin"),
    [
        (
            "[WARNING] plugin/kubernetes: starting server with unsynced Kubernetes API",
            "warning",
            "kubernetes",
        ),
        ('[INFO] plugin/ready: Still waiting on: "kubernetes"', "info", "ready"),
        ("[INFO] SIGTERM: Shutting down servers then terminating", "info", None),
        (
            '[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone ".", see '
            "https://coredns.io/plugins/loop#troubleshooting. "
            'Query: "HINFO 4547991504243258144.3688648895315093531."',
            "critical",
            "loop",
        ),
        ("[DEBUG] plugin/kubernetes: watching namespaces", "debug", "kubernetes"),
        ("/etc/coredns/Corefile:3 - Error during parsing: Unknown directive '.'", "critical", None),
        (
            "loading Caddyfile via flag: open /etc/Corefile: no such file or directory",
            "critical",
            None,
        ),
        ("maxprocs: Leaving GOMAXPROCS=4: CPU quota undefined", "info", None),
        ("Listen: listen tcp :53: bind: permission denied", "critical", None),
        ("Listen: listen udp 0.0.0.0:1053: bind: address already in use", "critical", None),
    ],
)
def test_plugin_and_startup_line_levels(read, line, level, plugin):
    loaded = read("coredns.log", line + "\n", format="coredns")
    event = loaded.events.row(0, named=True)
    assert (event["level"], json.loads(event["attrs"]).get("plugin")) == (level, plugin)
    assert loaded.summary.unparsed_lines == 0


def test_own_utc_stamp_of_older_releases_gives_the_time(read):
    text = (
        "2021-08-12T05:09:08.093Z [ERROR] plugin/errors: 2 svc.ns. A: read udp "
        "10.51.163.14:38406->10.51.51.51:53: i/o timeout\n"
        "[INFO] Reloading\n"
    )
    events = by_line(read("coredns.log", text).events)
    assert events["ts"][0] == datetime(2021, 8, 12, 5, 9, 8, 93000, tzinfo=UTC)
    assert events["ts"][1] is None


# --- times, hosts, components ------------------------------------------------------------


def test_cri_file_takes_time_host_and_container_from_prefix_and_path(write):
    import timeline

    start = datetime(2023, 3, 14, 20, 31, 0, 123456)
    path = write(f"nodes/ip-10-0-1-7/{POD_DIR}/coredns/0.log", cri(BANNER + QUERIES, start))
    loaded = timeline.read(path, infer=False)
    events = by_line(loaded.events)
    assert loaded.summary.files["format"].to_list() == ["coredns"]
    assert loaded.summary.files["prefix"].to_list() == ["cri"]
    assert loaded.summary.unparsed_lines == 0
    assert events.height == 10
    assert events["ts"][0] == datetime(2023, 3, 14, 20, 31, 0, 123456, tzinfo=UTC)
    assert events["ts"].is_sorted()
    assert set(events["host"]) == {"ip-10-0-1-7"}
    assert set(events["component"]) == {"coredns"}
    assert loaded.summary.assumptions.filter(pl.col("what") == "time").height == 0


NODE_LOCAL_DNS = """\
2023/03/14 20:31:05 [INFO] Starting node-cache image: 1.22.13
2023/03/14 20:31:05 [INFO] Using Corefile /etc/Corefile
2023/03/14 20:31:05 [INFO] Using Pidfile{SPACE}
2023/03/14 20:31:05 [ERROR] Failed to read node-cache coreFile /etc/coredns/Corefile.base - \
open /etc/coredns/Corefile.base: no such file or directory
2023/03/14 20:31:05 [INFO] Skipping kube-dns configmap sync as no directory was specified
2023/03/14 20:31:05 [INFO] Added interface - nodelocaldns
cluster.local.:53 on 169.254.20.10
in-addr.arpa.:53 on 169.254.20.10
ip6.arpa.:53 on 169.254.20.10
.:53 on 169.254.20.10
[INFO] plugin/reload: Running configuration SHA512 = {SHA512}
CoreDNS-1.10.1
linux/amd64, go1.20.10,{SPACE}
[INFO] Added back nodelocaldns rule - {{raw PREROUTING [-p udp -d 169.254.20.10 --dport 53 \
-j NOTRACK]}}
I0314 20:31:15.412345       1 nanny.go:116] Tearing down
W0314 20:31:16.000001       1 dns.go:94] Upstream server 10.96.0.10 did not respond
[ERROR] plugin/errors: 2 github.com. A: read tcp 169.254.20.10:51722->10.96.0.10:53: i/o timeout
[INFO] 10.244.5.12:33810 - 6712 "A IN github.com. udp 28 false 512" SERVFAIL qr,rd 28 5.002154223s
""".format(SPACE=" ", SHA512=SHA512)


def test_node_local_dns_file_has_no_unparsed_line(write):
    import timeline

    start = datetime(2023, 3, 14, 20, 31, 5, 500000)
    path = write(f"nodes/ip-10-0-1-5/{NODE_CACHE_DIR}/node-cache/0.log", cri(NODE_LOCAL_DNS, start))
    loaded = timeline.read(path, infer=False)
    events = by_line(loaded.events)
    assert loaded.summary.unparsed_lines == 0
    assert events.height == len(NODE_LOCAL_DNS.splitlines())
    assert set(events["component"]) == {"node-local-dns"}
    assert set(events["host"]) == {"ip-10-0-1-5"}
    # the Go log date is the line's own time; klog's missing year comes from the prefix
    assert events["ts"][0] == datetime(2023, 3, 14, 20, 31, 5, tzinfo=UTC)
    assert events["ts"][14] == datetime(2023, 3, 14, 20, 31, 15, 412345, tzinfo=UTC)
    assert events["level"][15] == "warning"
    assert events["level"][17] == "error"
    assert attrs(events)[0]["node_cache_version"] == "1.22.13"
    assert attrs(events)[14] == {"caller": "nanny.go:116", "thread": 1}
    assert attrs(events)[11] == {"version": "1.10.1"}


def test_node_local_dns_known_from_its_lines_without_hints(read):
    events = read("dns.log", NODE_LOCAL_DNS).events
    assert set(events["component"]) == {"node-local-dns"}


@pytest.mark.parametrize(
    ("container", "component"),
    [("node-cache", "node-local-dns"), ("nodelocaldns", "node-local-dns"), ("coredns", "coredns")],
)
def test_component_from_container_hint(write, container, component):
    import timeline

    text = "[pod/dns-1/" + container + "] [INFO] Reloading\n"
    path = write("kubectl.log", text * 3)
    assert set(timeline.read(path, infer=False).events["component"]) == {component}


def test_bare_file_has_null_times_and_says_so(read):
    loaded = read("coredns.log", BANNER + QUERIES)
    assert loaded.events["ts"].null_count() == loaded.events.height == 10
    assert loaded.summary.unparsed_lines == 0
    time = loaded.summary.assumptions.filter(pl.col("what") == "time")
    assert time["value"].to_list() == ["none"]
    assert time["basis"][0].startswith("10 of 10 records write no time")
    stamped = "2020-03-03T09:35:05.685Z [INFO] CoreDNS-1.3.1\n"
    some = read("coredns.log", stamped + QUERIES).summary.assumptions
    assert some.filter(pl.col("what") == "time")["basis"][0].startswith("6 of 7 records")


# --- multi-line and bad lines ------------------------------------------------------------

PANIC = """\
[INFO] plugin/kubernetes: Watching Endpoints
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x1c6a2b4]

goroutine 112 [running]:
github.com/coredns/coredns/plugin/kubernetes.(*dnsControl).Run(0xc000418000)
\t/go/src/github.com/coredns/coredns/plugin/kubernetes/controller.go:265 +0x34
created by github.com/coredns/coredns/plugin/kubernetes.(*Kubernetes).InitKubeCache
\t/go/src/github.com/coredns/coredns/plugin/kubernetes/kubernetes.go:268 +0x4f2
.:53
"""


def test_panic_dump_continues_the_line_before_it(read):
    loaded = read("coredns.log", PANIC)
    events = by_line(loaded.events)
    assert events["line"].to_list() == [1, 10]
    assert events["message"][0].splitlines()[4] == "goroutine 112 [running]:"
    assert events["level"].to_list() == ["critical", "info"]
    files = loaded.summary.files.row(0, named=True)
    assert (files["continuation_lines"], files["unparsed_lines"]) == (8, 0)


@pytest.mark.parametrize("tagged", [True, False])
def test_a_fatal_error_after_a_query_makes_the_query_critical(read, tagged):
    query = (
        '[INFO] 10.244.0.1:53523 - 19585 "A IN example.com. udp 29 false 512" '
        "NOERROR qr,rd,ra 56 0.000123s"
    )
    text = (
        f"{query if tagged else query.removeprefix('[INFO] ')}\n"
        "fatal error: concurrent map writes\n\n"
        "goroutine 4417 [running]:\n"
        "runtime.throw({0x1f7c1a1?, 0x0?})\n"
        "\t/usr/local/go/src/runtime/panic.go:1047 +0x5d fp=0xc000a1b9d8 sp=0xc000a1b9a8\n"
        f"{query}\n"
    )
    events = by_line(read("coredns.log", text, format="coredns").events)
    assert events["line"].to_list() == [1, 7]
    assert events["level"].to_list() == ["critical", "info"]


@pytest.mark.parametrize(
    "line",
    [
        '[INFO] 127.0.0.1:63325 - 28625 "A IN 9gag.com. udp 49 false 4096" - - 0 6.010923182s',
        '[INFO] [fd00::7]:41000 - 3 "AAAA IN db.internal. udp 40 true 1232" - - 0 5.000412s',
        '10.0.0.3:5300 - [14/Mar/2023:18:00:01 +0000] 7 "MX IN example.org. tcp 41 false 65535" '
        "- - 0 2.5s",
    ],
)
def test_a_query_that_got_no_answer_is_an_error(read, line):
    event = read("coredns.log", line + "\n", format="coredns").events.row(0, named=True)
    assert event["level"] == "error"
    assert event["template"].endswith(" <NAME> -")
    assert json.loads(event["attrs"])["rcode"] == "-"


def test_client_go_trace_lines_continue_the_klog_line(read):
    text = (
        'I1218 06:28:53.487296       1 trace.go:205] Trace[1925137650]: "Reflector ListAndWatch" '
        "name:pkg/mod/k8s.io/client-go@v0.19.2/tools/cache/reflector.go:156 "
        "(total time: 30000ms):\n"
        "Trace[1925137650]: [30.000673657s] [30.000673657s] END\n"
        '[INFO] plugin/ready: Still waiting on: "kubernetes"\n'
    )
    loaded = read("coredns.log", text)
    assert loaded.events.height == 2
    assert loaded.summary.unparsed_lines == 0


def test_unknown_and_orphan_lines_are_unparsed_not_lost(read):
    text = (
        "\tat the start, indented\n[INFO] Reloading\n"
        "something else entirely\n[INFO] Reloading complete\n"
    )
    loaded = read("coredns.log", text, format="coredns")
    warnings = loaded.summary.warnings.filter(pl.col("line").is_not_null()).sort("line")
    assert warnings["line"].to_list() == [1, 3]
    assert warnings["reason"].to_list() == [
        "continuation line with no CoreDNS line before it",
        "not a CoreDNS line",
    ]
    assert by_line(loaded.events)["line"].to_list() == [2, 4]


# --- recognising the format --------------------------------------------------------------


def test_sniff_recognises_coredns_and_says_why():
    score = coredns.sniff((BANNER + QUERIES).splitlines())
    assert score.score == 1.0
    assert "query, plugin/ or banner" in score.why


@pytest.mark.parametrize(
    "text",
    [
        # kube-proxy's klog lines only
        'E0314 18:00:01.123456       1 proxier.go:1526] "Failed to execute iptables-restore" '
        'err="exit status 1"\nI0314 18:00:01.223456       1 proxier.go:812] "Sync failed" '
        'retryingTime="30s"\n',
        # a Maven build: [INFO] lines, but nothing only CoreDNS writes
        "[INFO] Scanning for projects...\n[INFO] BUILD SUCCESS\n[INFO] Total time:  01:02 min\n",
        # RabbitMQ
        "2023-03-15 02:50:01.123456+00:00 [info] <0.230.0> accepting AMQP connection\n",
    ],
)
def test_sniff_leaves_other_formats_alone(text):
    score = coredns.sniff(text.splitlines())
    assert score.score < 0.5, score.why


def test_sniff_prefers_coredns_for_node_local_dns_with_klog_lines():
    assert coredns.sniff(NODE_LOCAL_DNS.splitlines()).score == 1.0


# --- the fast path for today's query lines agrees with the general one -------------------


def parse_lines(*texts: str) -> pl.DataFrame:
    """``coredns.parse`` on lines given directly, one per argument."""
    lines = pl.LazyFrame(
        {
            "line": list(range(1, len(texts) + 1)),
            "end_line": list(range(1, len(texts) + 1)),
            "text": list(texts),
        }
    ).with_columns(
        prefix_ts=pl.lit(None, pl.Datetime("us", "UTC")),
        stream=pl.lit(None, pl.String),
        host=pl.lit(None, pl.String),
        container=pl.lit(None, pl.String),
        path=pl.lit("coredns.log"),
    )
    return coredns.parse(lines.cast(LINE_SCHEMA).select(list(LINE_SCHEMA))).collect()


def test_todays_query_lines_take_the_fast_path():
    fast = pl.Series(QUERIES.splitlines()).str.contains(coredns.FAST_QUERY).to_list()
    assert fast == [True] * 5 + [False]  # the last writes its duration in ms


@pytest.mark.parametrize("line", QUERIES.splitlines())
def test_fast_and_general_query_paths_agree(line):
    fast = parse_lines(line).row(0, named=True)
    # a CoreDNS 1.6 stamp sends the same query down the general path
    general = parse_lines("2021-08-12T05:09:08.093Z " + line).row(0, named=True)
    assert json.loads(fast["attrs"]) == json.loads(general["attrs"])
    for column in ("level", "template", "message", "component", "unparsed"):
        assert fast[column] == general[column], column


def test_query_line_followed_by_a_panic_keeps_its_fields():
    events = parse_lines(QUERIES.splitlines()[2], "panic: send on closed channel", "")
    assert events.height == 1
    assert events["end_line"].to_list() == [3]
    assert json.loads(events["attrs"][0])["rcode"] == "SERVFAIL"
    assert events["level"].to_list() == ["critical"]
    assert events["message"][0].endswith("\npanic: send on closed channel\n")


def test_query_names_that_need_json_escaping_take_the_general_path():
    line = '[INFO] 10.0.0.1:5353 - 1 "A IN we\\"ird\\\\name. udp 29 false 512" NOERROR qr 56 0.1s'
    assert not pl.select(pl.lit(line).str.contains(coredns.FAST_QUERY)).item()
    assert json.loads(parse_lines(line)["attrs"][0])["name"] == 'we\\"ird\\\\name.'


# CoreDNS escapes '"' and '\\' in names (they take the general path, tested above)
_label = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x24F, exclude_characters='"\\.'),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    client=st.sampled_from(["10.244.0.1", "[fd00::1]", "[2001:db8::53]"]),
    port=st.integers(0, 65535),
    qid=st.integers(0, 65535),
    qtype=st.sampled_from(["A", "AAAA", "SRV", "PTR", "HINFO", "TYPE65"]),
    name=st.lists(_label, min_size=1, max_size=4).map(lambda labels: ".".join(labels) + "."),
    do=st.booleans(),
    rcode=st.sampled_from(["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "-"]),
    seconds=st.floats(0, 30, allow_nan=False).map(lambda f: f"{f:.9f}".rstrip("0").rstrip(".")),
)
def test_any_query_line_gives_valid_json_on_both_paths(
    client, port, qid, qtype, name, do, rcode, seconds
):
    line = (
        f'[INFO] {client}:{port} - {qid} "{qtype} IN {name} udp 29 {str(do).lower()} 512" '
        f"{rcode} qr,rd 56 {seconds}s"
    )
    both = parse_lines(line, "2021-08-12T05:09:08.093Z " + line)
    fast, general = (json.loads(a) for a in both["attrs"])
    assert fast == general
    assert (fast["name"], fast["port"], fast["do"]) == (name, port, do)
    assert fast["duration_s"] == pytest.approx(float(seconds))
    assert both["unparsed"].null_count() == 2


def test_debug_hexdump_lines_continue_their_record_and_do_not_fail_detection(read):
    text = (
        "[INFO] plugin/reload: Running configuration SHA512 = 1a2b3c\n"
        "[DEBUG] plugin/forward: Received response from 10.96.0.2:53 for example.local. A\n"
        "debug: 000000 00 0a 01 00 00 01 00 00 00 00 00 01 07 65 78 61\n"
        "debug: 000010 6d 70 6c 65 05 6c 6f 63 61 6c 00 00 01 00 01 00\n"
        "debug: 000020 00 29 10 00 00 00 80 00 00 00\n"
        "debug: 00002a\n"
        '[INFO] 10.244.0.1:53046 - 42614 "A IN example.local. udp 41 false 512" '
        "NOERROR qr,aa,rd 84 0.000193s\n"
    )
    loaded = read("coredns.log", text)
    assert loaded.summary.files["format"].to_list() == ["coredns"]
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["info", "debug", "info"]
    assert events["message"][1].endswith("debug: 00002a")


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2018/09/07 00:11:28 [ERROR] 0 a1441.g4.akamai.net. A: EOF", "error"),
        (
            '2018/03/01 14:51:31 [INFO] "MX IN example.net." - No such zone at '
            "dns://127.0.0.1:1053 (Remote: 127.0.0.1:34994)",
            "info",
        ),
    ],
)
def test_a_file_of_one_older_coredns_line_is_recognised(read, line, level):
    loaded = read("coredns.log", line + "\n")
    assert loaded.summary.files["format"].to_list() == ["coredns"]
    row = loaded.events.row(0, named=True)
    assert row["level"] == level
    assert row["ts"] is not None


@pytest.mark.parametrize(
    ("name", "rows", "errors", "timed"),
    [
        ("coredns-loop-hinfo.log", 11, 7, 0),
        ("coredns-upstream-timeout.log", 7, 7, 0),
        ("coredns-azure-timeout.log", 5, 5, 0),
        ("coredns-java-pods.log", 6, 6, 0),
        ("coredns-query-log.log", 5, 0, 0),
        ("coredns-openshift.log", 4, 0, 0),
        ("coredns-reload-timestamps.log", 5, 2, 3),
        ("coredns-k8s-crd-reload.log", 5, 0, 0),
        ("coredns-sigusr1.log", 3, 1, 0),
        ("coredns-no-zone.log", 1, 0, 1),
        ("coredns-recovered-panic-1.6.log", 7, 1, 0),
        ("coredns-recovered-panic-stack.log", 1, 1, 0),
    ],
)
def test_real_coredns_lines_are_one_row_each(name, rows, errors, timed):
    """CoreDNS lines as pasted in public issues (``tests/data/real/README.md``): a row
    each, errors where the errors plugin or an ``[ERROR]`` says so, a time only where the
    line writes one."""
    loaded = read_real(REAL / name)
    events = loaded.events
    assert events.height == rows and set(events["source"]) == {"coredns"}
    assert events["level"].null_count() == 0
    assert (events["level"] == "error").sum() == errors
    assert events["ts"].is_not_null().sum() == timed
    assert events["template"].null_count() == 0


@pytest.mark.parametrize(
    "server",
    [
        '"dns://:53" runtime error: invalid memory address or nil pointer dereference',
        '"dns://:1553"',
        '"tls://.:853" index out of range [0] with length 0',
    ],
)
def test_a_file_of_recovered_panics_alone_is_coredns(read, server):
    """What the server writes when a plugin panics while serving a query, and the stack
    below it since 1.9.3, is CoreDNS's alone, like a ``plugin/`` line: ``grep -A`` of it
    is recognised, one row a panic, at error (the server goes on)."""
    line = f"[ERROR] Recovered from panic in server: {server}\n"
    stack = (
        "goroutine 46517191 [running]:\nruntime/debug.Stack()\n"
        "\t/usr/local/go/src/runtime/debug/stack.go:24 +0x5e\n"
    )
    loaded = read("coredns-panics.log", line + stack + line)
    assert loaded.summary.files["format"].to_list() == ["coredns"]
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 5]
    assert events["level"].to_list() == ["error", "error"]
    assert events["message"][0].splitlines()[1:] == stack.splitlines()


def test_blanks_a_terminal_left_after_lines_split_no_template():
    """Lines copied from ``kubectl logs`` in a wide terminal end in blanks (all but the
    last here): the same upstream timeout has one template, with or without them."""
    events = timeline.load(REAL / "coredns-upstream-timeout.log", cache=False, workers=1)
    assert sorted(set(events["template"])) == [
        "plugin/errors: SERVFAIL <NAME> A: read udp <IP>:<PORT>-><IP>:<PORT>: i/o timeout",
        "plugin/errors: SERVFAIL <NAME> AAAA: read udp <IP>:<PORT>-><IP>:<PORT>: i/o timeout",
    ]
    assert events["message"].str.ends_with("i/o timeout").all()
    assert {a["type"] for a in attrs(events)} == {"A", "AAAA"}
    assert all(a["error"].endswith("i/o timeout") for a in attrs(events))

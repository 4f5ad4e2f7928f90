"""Formats as data: a user's format file, its checks, the CLI's formats verb, and the
formats that ship as data (Go loggers, journald JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

import parsers
import timeline
from parsers import declared
from timeline.cli import app

runner = CliRunner()

#: An nginx error log, declared by a user: yearful local times, a pid#tid pair, and a
#: level in brackets.
NGINX = r"""
name = "nginx-error"
source = "nginx"
description = "nginx error_log"
regex = '^(?P<ts>[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}) \[(?P<level>[a-z]+)\] (?P<pid>[0-9]+)#(?P<tid>[0-9]+): (?:\*(?P<connection>[0-9]+) )?(?P<message>.*)$'
time = { format = "%Y/%m/%d %H:%M:%S", zone = "+01:00" }
multiline = { join = true }

[levels]
critical = ["emerg", "alert", "crit"]
info = ["notice"]

[sniff]
literals = ["] "]
max_score = 0.95

[[sample]]
text = '''
2023/03/14 19:00:07 [error] 31#31: *8812 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.3.7, server: api.acme.io
2023/03/14 19:00:09 [notice] 31#31: signal process started
'''
rows = 2
expect = { level = "error", ts = "2023-03-14T18:00:07+00:00", "attrs.pid" = "31", "attrs.connection" = "8812" }
"""

NGINX_LOG = """\
2023/03/14 19:00:01 [notice] 1#1: using the "epoll" event method
2023/03/14 19:00:01 [notice] 1#1: nginx/1.23.3
2023/03/14 19:02:44 [error] 29#29: *1041 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.7.21, server: api.acme.io, request: "GET /v1/jobs HTTP/1.1", upstream: "http://10.0.4.9:8080/v1/jobs"
2023/03/14 19:02:45 [crit] 29#29: *1042 SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share)
2023/03/14 19:02:46 [warn] 30#30: *1043 an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/1/00/0000000001 while reading upstream
    detail line a module wrote under it
"""


@pytest.fixture
def formats_dir(tmp_path):
    folder = tmp_path / "formats"
    folder.mkdir()
    (folder / "nginx.toml").write_text(NGINX)
    return folder


def test_a_declared_format_is_checked_detected_and_read_end_to_end(formats_dir, write):
    import timeline

    path = write("edge/nginx-error.log", NGINX_LOG)
    loaded = timeline.read(path, formats=formats_dir, infer=False)
    files = loaded.summary.files
    assert files["format"].to_list() == ["nginx-error"]
    assert files["unparsed_lines"].to_list() == [0]
    events = loaded.events
    assert events["level"].to_list() == ["info", "info", "error", "critical", "warning"]
    assert events["source"].unique().to_list() == ["nginx"]
    # the zone the file declares is applied: 19:02:44 at +01:00 is 18:02:44 UTC
    assert events["ts"][2] == datetime(2023, 3, 14, 18, 2, 44, tzinfo=UTC)
    assert json.loads(events["attrs"][2]) == {"pid": "29", "tid": "29", "connection": "1041"}
    # the line no pattern matches continues the record above, as the file says
    assert events["message"][4].endswith("\n    detail line a module wrote under it")
    assert files["format"].to_list() == ["nginx-error"]
    # the format was known for that read only
    with pytest.raises(KeyError):
        parsers.registry.get("nginx-error")


def test_a_sample_that_does_not_give_what_it_says_names_the_file_and_the_sample(tmp_path):
    broken = NGINX.replace('level = "error"', 'level = "warning"')
    path = tmp_path / "nginx-broken.toml"
    path.write_text(broken.replace('name = "nginx-error"', 'name = "nginx-broken"'))
    with pytest.raises(declared.FormatFileError) as caught:
        declared.load_file(path)
    message = str(caught.value)
    assert str(path) in message and "sample 1" in message
    assert "level is 'error', the sample says 'warning'" in message
    with pytest.raises(KeyError):
        parsers.registry.get("nginx-broken")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("regex = '^(?P<ts>", "regex = '^(?P<ts"), "is not valid"),
        (('name = "nginx-error"', 'name = "Nginx Error"'), "'name' must be"),
        (("critical = [", "severe = ["), "levels are debug"),
        (("[[sample]]", "[[not_a_sample]]"), "at least one 'sample'"),
        (("[levels]", "distinct_start = '^(?P<x'\n[levels]"), "'distinct_start'"),
        # values of the wrong kind or shape, each said as the file's fault
        (("[levels]\n", 'levels = ["error"]\n[not_levels]\n'), "'levels' must be a table"),
        (("multiline = { join = true }", 'multiline = "join"'), "'multiline' must be a table"),
        (("multiline = { join = true }", "multiline = { continuation = '([' }"), "not a valid"),
        (('time = { format = "%Y/%m/%d %H:%M:%S", zone = "+01:00" }', "time = 5"), "'time' is"),
        (("max_score = 0.95", 'max_score = "high"'), "'sniff.max_score' must be a number"),
        (("max_score = 0.95", "max_score = nan"), "'sniff.max_score' must be a number"),
        (("[[sample]]\ntext =", "[[sample]]\nnot_text ="), "each 'sample' is a table"),
        (("expect = {", 'expect = ["level"]\nnot_expect = {'), "does not fit its field"),
    ],
)
def test_a_malformed_format_file_is_refused_with_its_name(tmp_path, change, why):
    path = tmp_path / "bad.toml"
    path.write_text(NGINX.replace(*change))
    with pytest.raises(declared.FormatFileError, match=why) as caught:
        declared.load_file(path)
    assert str(path) in str(caught.value)


def test_the_same_format_in_yaml_and_json_reads_the_same(tmp_path):
    import tomllib

    import yaml

    content = tomllib.loads(NGINX)
    for suffix, text in ((".yaml", yaml.safe_dump(content)), (".json", json.dumps(content))):
        content["name"] = f"nginx-error-{suffix[1:]}"
        path = tmp_path / f"nginx{suffix}"
        path.write_text(yaml.safe_dump(content) if suffix == ".yaml" else json.dumps(content))
        parser = declared.load_file(path)
        assert declared.check(parser) == []
        del text


def test_a_declared_format_may_not_take_a_built_in_name(tmp_path):
    path = tmp_path / "klog.toml"
    path.write_text(NGINX.replace('name = "nginx-error"', 'name = "klog"'))
    with pytest.raises(declared.FormatFileError, match="built in already"):
        declared.load_file(path)


def test_formats_check_and_list_on_the_command_line(formats_dir, tmp_path):
    checked = runner.invoke(app, ["formats", "check", str(formats_dir / "nginx.toml")])
    assert checked.exit_code == 0, checked.output
    assert "'nginx-error', 1 samples pass" in checked.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(NGINX.replace("[error] 31#31", "[error] 31-31"))
    failed = runner.invoke(app, ["formats", "check", str(bad)])
    assert failed.exit_code == 1
    assert "sample 1" in failed.stderr and "unparsed" in failed.stderr
    listed = runner.invoke(app, ["formats", "list", "--formats", str(formats_dir)])
    assert listed.exit_code == 0
    for name in ("klog", "logfmt", "go-json", "nginx-error"):
        assert name in listed.stdout


def test_detect_and_parse_take_formats_on_the_command_line(formats_dir, write, tmp_path):
    path = write("nginx-error.log", NGINX_LOG)
    detected = runner.invoke(app, ["detect", str(path), "--formats", str(formats_dir)])
    assert "nginx-error" in detected.stdout
    out = tmp_path / "events.csv"
    parsed = runner.invoke(
        app, ["parse", str(path), "--formats", str(formats_dir), "-o", str(out), "-q"]
    )
    assert parsed.exit_code == 0, parsed.output
    assert "wrote 5 rows" in parsed.stdout


def test_user_config_folder_formats_are_read(monkeypatch, tmp_path, write):
    import timeline

    config = tmp_path / "config"
    config.mkdir()
    (config / "nginx.toml").write_text(NGINX.replace("nginx-error", "nginx-user"))
    monkeypatch.setattr(declared, "user_dir", lambda: config)
    loaded = timeline.read(write("n.log", NGINX_LOG), infer=False)
    assert loaded.summary.files["format"].to_list() == ["nginx-user"]


# --- Go loggers, as their libraries write them -------------------------------------------------


GO_CASES = [
    (
        "logfmt",
        'time="2023-03-14T18:00:01Z" level=info msg="Starting controller" version=v1.4.2\n'
        'time="2023-03-14T18:00:05Z" level=error msg="Failed to sync \\"acme/api\\"" '
        'error="etcdserver: request timed out" retry=3\n'
        'time="2023-03-14T18:00:06Z" level=warning msg="slow sync" took=5.2s\n',
        ["info", "error", "warning"],
        'Failed to sync "acme/api"',
    ),
    (
        "logfmt",
        'time=2023-03-14T19:00:05.123+01:00 level=INFO msg="listening" addr=:8080\n'
        'time=2023-03-14T19:00:07.001+01:00 level=ERROR msg="request failed" '
        'method=POST path=/v1/jobs err="context canceled"\n'
        "time=2023-03-14T19:00:07.002+01:00 level=DEBUG msg=retry attempt=1\n",
        ["info", "error", "debug"],
        "request failed",
    ),
    (
        "go-json",
        '{"level":"info","ts":1678816801.5066156,"caller":"app/main.go:61","msg":"starting"}\n'
        '{"level":"error","ts":1678816805.0010002,"logger":"reconciler","caller":'
        '"controller/controller.go:326","msg":"Reconciler error","error":"context deadline '
        'exceeded","stacktrace":"sigs.k8s.io/controller-runtime/pkg/internal/controller.'
        '(*Controller).reconcileHandler\\n\\t/go/pkg/mod/controller.go:326"}\n'
        '{"level":"dpanic","ts":1678816806.25,"caller":"app/main.go:99","msg":"invariant broken"}\n',
        ["info", "error", "critical"],
        "Reconciler error",
    ),
    (
        "go-json",
        '{"time":"2023-03-14T18:00:05.123456789Z","level":"INFO","msg":"job queued","id":71}\n'
        '{"time":"2023-03-14T18:00:05.223456789Z","level":"ERROR","msg":"job failed",'
        '"id":71,"err":"exit status 2"}\n'
        '{"time":"2023-03-14T18:00:05.323456789Z","level":"WARN","msg":"retrying","id":71}\n',
        ["info", "error", "warning"],
        "job failed",
    ),
    (
        "go-json",
        # a Python service's JSON, or any JSON written again with spaces: times as
        # str(datetime) and logging's asctime write them, a space for the T
        '{"time": "2025-06-17 09:29:00.250000+02:00", "level": "info", "msg": "started"}\n'
        '{"time": "2025-06-17 07:29:01.5", "level": "error", "msg": "payment declined"}\n'
        '{"time": "2025-06-17 07:29:02,125", "level": "warning", "msg": "slow"}\n',
        ["info", "error", "warning"],
        "payment declined",
    ),
    (
        "zap-console",
        '2023-03-14T18:00:05.123Z\tINFO\tapp/main.go:61\tstarting\t{"port": 8443}\n'
        "2023-03-14T18:00:06.456Z\tERROR\twebhook\tserver/server.go:140\tTLS handshake "
        'failed\t{"remote": "10.0.3.7:51512", "error": "EOF"}\n'
        "2023-03-14T18:00:07.000Z\tWARN\tapp/main.go:80\tslow shutdown\n",
        ["info", "error", "warning"],
        "TLS handshake failed",
    ),
    (
        "logrus-tty",
        "INFO[0000] Starting registry                          version=2.8.1\n"
        'ERRO[0003] response completed with error              err.code="blob unknown" '
        "http.request.method=GET\n"
        "WARN[0004] No HTTP secret provided - generated random secret\n",
        ["info", "error", "warning"],
        "response completed with error",
    ),
]


@pytest.mark.parametrize(("fmt", "text", "levels", "second"), GO_CASES)
def test_go_logger_lines_are_rows_with_level_and_time(read, fmt, text, levels, second):
    loaded = read("app.log", text)
    assert loaded.summary.files["format"].to_list() == [fmt]
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("line")
    assert events["level"].to_list() == levels
    assert events["message"][1] == second
    if fmt != "logrus-tty":  # the terminal form writes seconds since start, not a time
        assert events["ts"].null_count() == 0
        assert events["ts"].is_sorted()


def _spring_boot_dump(pods: list[str], *, kubectl_times: bool) -> tuple[str, list[tuple]]:
    """``kubectl logs -l app=notification-service --prefix [--timestamps]`` of Spring Boot
    3.2 pods: the default pattern (level padded to five, application name, thread padded
    to fifteen, logger cut to forty), an error with its stack trace, and what each record
    should be (pod, level, UTC time)."""
    start = datetime(2024, 6, 18, 8, 24, 5, 123000, tzinfo=UTC)
    lines, expected = [], []
    records = [
        ("INFO", "c.a.notify.EmailListener", "Sent email notification id=4410937", []),
        (
            "ERROR",
            "o.s.a.r.l.SimpleMessageListenerContainer",
            "Consumer raised exception, processing can restart if the connection factory "
            "supports it",
            [
                "org.springframework.amqp.AmqpIOException: java.io.IOException",
                "\tat org.springframework.amqp.rabbit.support.RabbitExceptionTranslator"
                ".convertRabbitAccessException(RabbitExceptionTranslator.java:70)",
                "Caused by: com.rabbitmq.client.ShutdownSignalException: channel error; "
                "protocol method: #method<channel.close>(reply-code=404, reply-text="
                "NOT_FOUND - home node 'rabbit@mq-prd-02' of durable queue 'notify.email' "
                "in vhost '/' is down or inaccessible, class-id=60, method-id=20)",
                "\t... 12 common frames omitted",
            ],
        ),
        ("WARN", "o.s.a.r.c.CachingConnectionFactory", "Channel shutdown: connection error", []),
        ("DEBUG", "c.a.notify.EmailListener", "Polling queue notify.email", []),
    ]
    for i, (level, logger, message, trace) in enumerate(records * 2):
        pod = pods[i % len(pods)]
        at = start + i * timedelta(seconds=7, microseconds=250_000)
        head = f"[pod/{pod}/app] "
        if kubectl_times:
            head += f"{at + timedelta(microseconds=417):%Y-%m-%dT%H:%M:%S.%f}123Z "
        lines.append(
            f"{head}{at:%Y-%m-%dT%H:%M:%S.%f}"[:-3]
            + f"Z {level:>5} 1 --- [notification-service] [ntContainer#0-1] "
            + f"{logger:<40.40} : {message}"
        )
        lines += [f"[pod/{pod}/app] {frame}" for frame in trace]
        expected.append((pod, level, at))
    return "".join(f"{line}\n" for line in lines), expected


@pytest.mark.parametrize("kubectl_times", [False, True])
def test_spring_boot_lines_from_kubectl_logs_prefix_keep_their_own_times(read, kubectl_times):
    """Spring Boot writes its time and then its level padded to five (``  INFO``): after
    ``[pod/...]`` that time is the program's, not a ``--timestamps`` one, on every line of
    the file, those with an unpadded ``ERROR`` too; with ``--timestamps`` kubectl's time
    comes first and is taken off."""
    pods = ["notification-service-5b7f6d9c48-lclq2", "notification-service-5b7f6d9c48-x8wtd"]
    text, expected = _spring_boot_dump(pods, kubectl_times=kubectl_times)
    loaded = read("notification-service.log", text)
    assert loaded.summary.files["format"].to_list() == ["spring-boot"]
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("line")
    levels = {"INFO": "info", "ERROR": "error", "WARN": "warning", "DEBUG": "debug"}
    assert events.select("host", "level", "ts").rows() == [
        (pod, levels[level], at.replace(microsecond=at.microsecond // 1000 * 1000))
        for pod, level, at in expected
    ]
    error = events.row(1, named=True)
    assert error["component"] == "notification-service"
    assert error["message"].count("\n") == 4
    assert "NOT_FOUND - home node 'rabbit@mq-prd-02'" in error["message"]


def test_zap_console_stack_trace_joins_its_record(read):
    text = (
        "2023-03-14T18:00:06.456Z\tERROR\tserver/server.go:140\thandler panicked\n"
        "goroutine 81 [running]:\n"
        "main.(*Server).handle(0xc000120000)\n"
        "\t/src/server/server.go:140 +0x1d2\n"
        "2023-03-14T18:00:07.000Z\tINFO\tapp/main.go:80\trecovered\n"
    )
    loaded = read("app.log", text)
    assert loaded.events.height == 2
    assert loaded.events["message"][0].count("\n") == 3


def test_zap_console_pasted_from_a_terminal(read):
    """Tabs become spaces (one where a tab stop was near), trailing spaces stay, and a
    long line breaks where the terminal wrapped it, cutting its fields' JSON."""
    text = (
        "2024-05-02T07:41:09Z    INFO    backup-operator  Snapshot taken    "
        '{"volume": "pvc-data-0", "size": "4.1Gi"}                 \n'
        "2024-05-02T07:41:10Z    WARN    backup-operator  Retention not met "
        '{"policy": "daily-7", "kept": 5, "reason": "snapshots older than 7 days were re\n'
        'moved by hand"}\n'
        "2024-05-02T07:41:12Z    ERROR   controller.snapshot      Reconciler error        "
        '{"name": "daily", "error": "context deadline exceeded"}\n'
    )
    events = read("operator.log", text).events.sort("line")
    assert events["message"].to_list()[0] == "Snapshot taken"
    assert events["message"][1].split("\n")[0] == "Retention not met"
    assert events["level"].to_list() == ["info", "warning", "error"]
    assert events["component"].to_list() == [
        "backup-operator",
        "backup-operator",
        "controller.snapshot",
    ]
    assert json.loads(events["attrs"][0])["fields"] == '{"volume": "pvc-data-0", "size": "4.1Gi"}'


# --- journald JSON --------------------------------------------------------------------------

JOURNAL = [
    {
        "__CURSOR": "s=4d6c;i=2f81;b=9a1b;m=1f2e;t=5f6e;x=aa",
        "__REALTIME_TIMESTAMP": "1678816805123456",
        "__MONOTONIC_TIMESTAMP": "2511000111",
        "_BOOT_ID": "9a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "PRIORITY": "6",
        "_HOSTNAME": "ip-10-0-2-17",
        "SYSLOG_IDENTIFIER": "kubelet",
        "_SYSTEMD_UNIT": "kubelet.service",
        "MESSAGE": 'E0314 18:00:05.123000    2211 pod_workers.go:1294] "Error syncing pod, '
        'skipping" err="failed to \\"StartContainer\\""',
    },
    {
        "__REALTIME_TIMESTAMP": "1678816806000001",
        "PRIORITY": "3",
        "_HOSTNAME": "ip-10-0-2-17",
        "SYSLOG_IDENTIFIER": "containerd",
        "MESSAGE": "RunPodSandbox for &PodSandboxMetadata{Name:api-0,} failed",
    },
    {
        "__REALTIME_TIMESTAMP": "1678816807000000",
        "PRIORITY": "4",
        "_HOSTNAME": "ip-10-0-2-17",
        "_COMM": "kernel",
        "MESSAGE": [110, 101, 116, 100, 101, 118, 58, 32, 255, 98, 97, 100],
    },
]


@pytest.mark.parametrize("shape", ["json", "json-pretty", "json-seq"])
def test_journald_json_in_each_output_mode(read, shape):
    if shape == "json":
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in JOURNAL)
    elif shape == "json-pretty":
        text = "".join(json.dumps(e, indent="\t") + "\n" for e in JOURNAL)
    else:
        text = "".join("\x1e" + json.dumps(e) + "\n" for e in JOURNAL)
    loaded = read("journal.json", text)
    # an envelope around each program's line, read in the program's format
    assert loaded.summary.files["prefix"].to_list() == ["journald-json"]
    assert loaded.summary.files["format"].to_list() == ["plain+klog"]
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("line")
    # the klog letter inside kubelet's message wins over journald's PRIORITY 6
    assert events["level"].to_list() == ["error", "error", "warning"]
    assert events["component"].to_list() == ["kubelet", "containerd", "kernel"]
    assert events["host"].unique().to_list() == ["ip-10-0-2-17"]
    # klog's own time, as from any other wrapper (the year from __REALTIME_TIMESTAMP);
    # a line that states none is at __REALTIME_TIMESTAMP
    assert events["ts"][0] == datetime(2023, 3, 14, 18, 0, 5, 123000, tzinfo=UTC)
    assert events["ts"][1] == datetime(2023, 3, 14, 18, 0, 6, 1, tzinfo=UTC)
    assert events["message"][2] == "netdev: \ufffdbad"
    assert events["line"].to_list()[0] == 1


@pytest.mark.parametrize(
    ("message", "level"),
    [
        ('time=2024-10-26T12:10:00.000Z level=ERROR msg="fetch invoice pdf" err="503"', "error"),
        ('time="2024-10-26T12:10:00Z" level=warning msg="slow upstream"', "warning"),
        ('{"level":"error","ts":1729944600.5,"caller":"x.go:1","msg":"store failed"}', "error"),
        ('{"time":"2024-10-26T12:10:00Z","severity":"WARNING","message":"retrying"}', "warning"),
        ('2024/10/26 14:10:00 ERROR snapshot upload failed target=s3://x err="EOF"', "error"),
        (
            "2024-10-28 10:27:20.123 CET [1234] WARNING C-0x1: pooler error: no more connections",
            "warning",
        ),
        ("ERROR:root:payment gateway timed out", "error"),
        ("served 200 GET /healthz in 2ms (no ERROR seen since boot)", "info"),
    ],
)
def test_a_level_a_service_writes_in_its_journal_message_beats_its_priority(read, message, level):
    """Services write to stdout, which journald gives PRIORITY 6: the level their own
    logger writes in the message is the one that counts."""
    entry = {
        "__REALTIME_TIMESTAMP": "1729944600000000",
        "PRIORITY": "6",
        "_HOSTNAME": "app-03",
        "SYSLOG_IDENTIFIER": "invoice-mailer",
        "_TRANSPORT": "stdout",
        "MESSAGE": message,
    }
    loaded = read("journal.json", json.dumps(entry) + "\n")
    assert loaded.events["level"].to_list() == [level]


@pytest.mark.parametrize(
    ("priority", "message", "level"),
    [
        ("3", "INFO: task jbd2/nvme0n1p1-8:412 blocked for more than 120 seconds.", "error"),
        ("4", "INFO: rcu_sched self-detected stall on CPU", "warning"),
        (
            "3",
            '{"level":"error","msg":"notify failed","alert":{"labels":{"severity":"info"}}}',
            "error",
        ),
        ("6", '{"level":"info","msg":"forwarded alert","severity":"critical"}', "info"),
    ],
)
def test_a_journal_priority_of_its_own_beats_the_words_and_a_logger_s_first_level_counts(
    read, priority, message, level
):
    """The kernel writes ``INFO: task ... blocked`` at priority 3: only a priority that
    stdout gets (5 to 7) gives way to the message's words; and a JSON logger's level is its
    first ``level`` key, not an alert's ``severity`` label further on."""
    entry = {
        "__REALTIME_TIMESTAMP": "1678816801000000",
        "PRIORITY": priority,
        "_HOSTNAME": "ip-10-0-1-5",
        "SYSLOG_IDENTIFIER": "kernel" if message.startswith("INFO") else "alertmanager",
        "MESSAGE": message,
    }
    loaded = read("journal.json", json.dumps(entry) + "\n")
    assert loaded.events["level"].to_list() == [level]


def test_the_readme_example_format_file_passes_its_own_check(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    path = tmp_path / "nginx-error.toml"
    path.write_text(example)
    parser = declared.load_file(path)
    assert parser.name == "nginx-error"
    assert declared.check(parser) == []


def test_worker_processes_know_the_declared_formats_and_the_time_given(formats_dir, write):
    """The loader's workers are spawned: the formats and the reference time of a read
    must reach them, not only this process."""
    from parsers.common import ages_relative_to
    from timeline.reading import executor, mapper
    from timeline.reading.formats import using_formats

    nginx = [str(write(f"edge-{i}/error.log", NGINX_LOG)) for i in range(3)]
    table = str(
        write(
            "events.txt",
            "LAST SEEN   TYPE      REASON    OBJECT          MESSAGE\n"
            "10m         Warning   BackOff   pod/api-0       Back-off restarting\n",
        )
    )
    batches = [mapper.plan(path) for path in [*nginx, table]]
    now = datetime(2023, 3, 14, 18, 30, tzinfo=UTC)
    with using_formats(formats_dir), ages_relative_to(now):
        results = dict(executor.run(mapper.map_batch, batches, workers=2))
    partials = [results[i][0] for i in range(len(batches))]
    assert [p.format for p in partials] == ["nginx-error"] * 3 + ["kubectl-events"]
    ts = partials[3].records["ts"][0]
    assert ts == datetime(2023, 3, 14, 18, 20)


def test_a_file_read_before_without_its_format_is_read_again_with_it(formats_dir, write):
    import timeline

    path = write("nginx-error.log", NGINX_LOG)
    before = timeline.read(path, infer=False).summary.files["format"].to_list()
    after = timeline.read(path, formats=formats_dir, infer=False).summary.files
    assert before == [None]
    assert after["format"].to_list() == ["nginx-error"]


def test_ages_are_counted_again_from_another_now(write):
    import timeline

    path = write(
        "events.txt",
        "LAST SEEN   TYPE      REASON    OBJECT          MESSAGE\n"
        "10m         Warning   BackOff   pod/api-0       Back-off restarting\n",
    )
    first = timeline.read(path, now=datetime(2023, 3, 14, 18, 30), infer=False).events
    second = timeline.read(path, now=datetime(2023, 3, 15, 9, 0), infer=False).events
    assert first["ts"][0] == datetime(2023, 3, 14, 18, 20, tzinfo=UTC)
    assert second["ts"][0] == datetime(2023, 3, 15, 8, 50, tzinfo=UTC)


GO_LOG = """\
2024/02/06 09:14:03 INFO server starting addr=:8443 version=1.8.2
2024/02/06 09:14:05 WARN cache miss ratio high ratio=0.41
2024/02/06 09:14:07.310554 http: TLS handshake error from 10.2.0.9:51622: EOF
2024/02/06 09:14:09 ERROR+2 upstream unreachable err="dial tcp 10.2.3.4:5432: i/o timeout"
"""


def test_go_log_and_slog_default_lines(read):
    loaded = read("api.log", GO_LOG)
    assert loaded.summary.files["format"].to_list() == ["go-log"]
    events = loaded.events.sort("line")
    assert events["level"].to_list() == ["info", "warning", None, "error"]
    assert events["ts"][2] == datetime(2024, 2, 6, 9, 14, 7, 310554, tzinfo=UTC)
    assert events["message"][3] == 'upstream unreachable err="dial tcp 10.2.3.4:5432: i/o timeout"'


#: ingress-nginx's controller writes klog lines, and nginx its error_log, to one pod log.
INGRESS_LOG = """\
I0314 19:02:40.118233       7 controller.go:168] "Configuration changes detected, backend reload required"
2023/03/14 19:02:44 [error] 29#29: *1041 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.7.21
I0314 19:02:44.902114       7 controller.go:185] "Backend successfully reloaded"
W0314 19:02:45.003512       7 controller.go:1112] Service "shop/web" does not have any active Endpoint.
2023/03/14 19:02:46 [warn] 30#30: *1043 an upstream response is buffered to a temporary file
I0314 19:02:47.220001       7 event.go:285] Event(v1.ObjectReference{Kind:"Ingress"}): type: 'Normal' reason: 'Sync' Scheduled for sync
"""


@pytest.mark.parametrize("distinct", [True, False])
def test_a_distinct_start_picks_a_formats_lines_out_of_another_formats_file(
    tmp_path, write, distinct
):
    import timeline

    start = r"^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]{8} \[[a-z]+\] [0-9]+#[0-9]+: "
    # without its multi-line rule the format does not take the klog lines as its own
    plain = NGINX.replace("multiline = { join = true }\n", "")
    text = plain.replace("[levels]", f"distinct_start = '{start}'\n\n[levels]", 1)
    folder = tmp_path / "formats"
    folder.mkdir()
    (folder / "nginx.toml").write_text(text if distinct else plain)
    path = write("ingress-nginx-controller-5d8f7.log", INGRESS_LOG)
    loaded = timeline.read(path, formats=folder, year=2023, infer=False)
    events = loaded.events.sort("line")
    nginx = events.filter(events["source"] == "nginx")
    assert loaded.summary.files["format"].to_list()[0].startswith("klog")
    if not distinct:
        # not said to be distinct: nginx lines are left to the klog records above them
        assert nginx.height == 0
        assert "upstream timed out" in events["message"][0]
        return
    assert nginx["line"].to_list() == [2, 5]
    assert nginx["level"].to_list() == ["error", "warning"]
    assert nginx["ts"].to_list() == [
        datetime(2023, 3, 14, 18, 2, 44, tzinfo=UTC),
        datetime(2023, 3, 14, 18, 2, 46, tzinfo=UTC),
    ]
    klog = events.filter(events["source"] != "nginx")
    assert klog["line"].to_list() == [1, 3, 4, 6]
    assert not klog["message"].str.contains("upstream").any()


def test_a_line_that_no_pattern_reads_is_unparsed_not_an_empty_row(read):
    text = (
        "2023-06-02T08:15:43.902Z\tERROR\tcontroller.ingress\tingress/reconciler.go:71\t"
        'Reconciler error\t{"name": "web", "error": "no endpoints"}\n'
        "2023-06-02T08:15:44.100Z\tINFO\tleader election lost\tas far as we know\tsoon\n"
    )
    loaded = read("controller.log", text)
    events = loaded.events
    assert events["message"].null_count() == 0
    assert events["line"].to_list() == [1]
    assert loaded.summary.files["unparsed_lines"].to_list() == [1]


@pytest.mark.parametrize(
    ("ts", "micros"),
    [
        ("1712850676.3222606", 322261),
        ("1712850675.013771", 13771),
        ("1646905685.3117414", 311741),
        ("1.6788168051234567e+09", 123457),
    ],
)
def test_epoch_seconds_are_read_to_the_microsecond(read, ts, micros):
    line = f'{{"level":"info","ts":{ts},"logger":"setup","msg":"starting manager"}}\n'
    events = read("manager.log", line).events
    assert events["ts"].dt.microsecond().to_list() == [micros]


def _ecs_line(at: str, level: str, message: str, **fields: object) -> str:
    """A line as ecs-logging's encoders write it: ``@timestamp``, ``log.level`` and
    ``message`` first, the rest as dotted ECS keys."""
    head = {"@timestamp": at, "log.level": level, "message": message, "ecs.version": "1.2.0"}
    return json.dumps(head | fields, separators=(",", ":"))


@pytest.mark.parametrize(
    ("layout", "name"),
    [
        ("plain", "checkout.json"),
        ("cri", "var/log/pods/shop_checkout-7d9f8-x2k4q_0a1b/checkout/0.log"),
    ],
)
def test_ecs_logging_lines_are_rows_of_their_service(read, layout, name):
    """Java, Go and Python services logging through the Elastic Common Schema's
    libraries: the level, the service as the component, dotted keys and nested ones."""
    lines = [
        _ecs_line(
            "2024-02-01T09:00:00.123Z",
            "INFO",
            "Started Application in 4.2 seconds",
            **{"service.name": "checkout", "log.logger": "com.example.Application"},
        ),
        _ecs_line(
            "2024-02-01T09:00:05.456Z",
            "ERROR",
            "Failed to connect to payments",
            **{
                "service.name": "checkout",
                "error.type": "java.net.ConnectException",
                "error.stack_trace": "java.net.ConnectException: refused\n\tat a.b(C.java:1)",
            },
        ),
        _ecs_line(
            "2024-02-01T09:00:06.5+01:00",
            "warn",
            "Retrying payment call",
            log={"logger": "payments.client"},
        ),
        _ecs_line("2024-02-01T09:00:07Z", "CRITICAL", "Giving up", **{"service.name": "checkout"}),
    ]
    if layout == "cri":
        lines = [f"2024-02-01T09:00:0{k}.9Z stderr F {line}" for k, line in enumerate(lines)]
    loaded = read(name, "\n".join(lines) + "\n")
    assert loaded.summary.files["format"].to_list() == ["ecs-logging"]
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("line")
    assert events["level"].cast(pl.String).to_list() == ["info", "error", "warning", "critical"]
    assert events["component"].to_list() == ["checkout", "checkout", "payments.client", "checkout"]
    assert events["message"][1] == "Failed to connect to payments"
    assert [t.isoformat() for t in events["ts"]] == [
        "2024-02-01T09:00:00.123000+00:00",
        "2024-02-01T09:00:05.456000+00:00",
        "2024-02-01T08:00:06.500000+00:00",
        "2024-02-01T09:00:07+00:00",
    ]
    assert json.loads(events["attrs"][1])["error.type"] == "java.net.ConnectException"


def test_a_go_loggers_json_is_not_taken_for_ecs_logging(read):
    text = '{"level":"error","ts":1706778005.456,"msg":"Failed","log.level":"x"}\n' * 3
    assert read("app.log", text).summary.files["format"].to_list() == ["go-json"]


@pytest.mark.parametrize(
    ("library", "line"),
    [
        (
            "nodejs",
            '{"log.level":"error","@timestamp":"2024-02-01T09:00:02.142Z","process":{"pid":82240},'
            '"host":{"hostname":"pink.local"},"ecs":{"version":"8.10.0"},"service":{"name":"api"},'
            '"message":"boom","error":{"type":"Error","message":"boom"}}',
        ),
        (
            "python",
            '{"@timestamp":"2024-02-01T09:00:02.142Z","log.level":"error","message":"boom",'
            '"ecs":{"version":"1.6.0"},"log":{"logger":"app","origin":{"file":{"line":12,'
            '"name":"app.py"},"function":"main"}},"process":{"pid":7,"name":"MainProcess"},'
            '"service":{"name":"api"}}',
        ),
        (
            "ecszap",
            '{"log.level":"error","@timestamp":"2024-02-01T09:00:02.142Z","log.origin":{'
            '"file.name":"api/main.go","file.line":41},"message":"boom","service.name":"api",'
            '"ecs.version":"1.6.0"}',
        ),
    ],
)
def test_each_ecs_logging_library_s_lines_are_its_own_records(read, library, line):
    """Node.js and Go write ``log.level`` before ``@timestamp``, Python and Node.js the ECS
    fields nested (``"ecs":{"version":...}``, which a Filebeat document holds too): the
    lines are the program's, each a record of its own even among klog's lines of the same
    program (a Go client writes those to stderr, its own to stdout)."""
    klog = "E0201 09:00:01.000000       1 leaderelection.go:330] error retrieving resource lock"
    lines = [
        f"2024-02-01T09:00:01.000000001Z stderr F {klog}",
        f"2024-02-01T09:00:02.142000001Z stdout F {line}",
        f"2024-02-01T09:00:03.000000001Z stderr F {klog}",
        f"2024-02-01T09:00:04.000000001Z stdout F {line.replace('boom', 'boom again')}",
    ]
    loaded = read(f"{library}.log", "\n".join(lines[1::2]) + "\n")
    assert loaded.summary.files["format"].to_list() == ["ecs-logging"]
    assert loaded.events["component"].to_list() == ["api", "api"]
    mixed = read("var/log/pods/shop_api-5d8c7-x2k4q_0a1b/api/0.log", "\n".join(lines) + "\n")
    events = mixed.events.sort("line")
    assert mixed.summary.unparsed_lines == 0 and events.height == 4
    assert events["level"].cast(pl.String).to_list() == ["error"] * 4
    assert events["message"].to_list()[1::2] == ["boom", "boom again"]


def _go_json(at: datetime, level: str, msg: str, **fields: str) -> str:
    return json.dumps(
        {"level": level, "ts": at.timestamp(), "caller": "main.go:41", "msg": msg, **fields}
    )


def test_a_logging_librarys_lines_are_the_source_of_the_program_that_wrote_them(write):
    """Go's loggers, ECS and Spring Boot are what many programs write: each row's source is
    the program as the line, the path or the file's name names it, and the library's
    family only where nothing does."""
    at = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    uid = "8f2b7c1e-3d4a-4b5c-9e6f-0a1b2c3d4e5f"
    cri = f"{at:%Y-%m-%dT%H:%M:%S.%fZ} stderr F "
    write("bundle/payments-api.log", _go_json(at, "error", "charge failed") + "\n")
    write(
        "bundle/orders_worker-2024-05-01.log",
        f'time={at:%Y-%m-%dT%H:%M:%SZ} level=ERROR msg="queue publish failed" err=EOF\n',
    )
    write(
        f"bundle/node-3/var/log/pods/shop_checkout-7d9f8b6c5-x2x9k_{uid}/checkout/0.log",
        cri + _go_json(at, "warn", "slow upstream", logger="http") + "\n",
    )
    folder = write("bundle/app.log", _go_json(at, "info", "started") + "\n").parent
    write(
        "bundle/java.json",
        '{"@timestamp":"2024-05-01T09:00:00.000Z", "log.level":"ERROR", "message":"timeout",'
        ' "ecs.version":"1.2.0","service.name":"ledger","log.logger":"c.e.Ledger"}\n',
    )
    write(
        "bundle/spring.log",
        "2024-05-01T09:00:00.000Z ERROR 1 --- [notifier] [           main] c.e.Mailer"
        "                               : send failed\n"
        "2024-05-01T09:00:01.000Z  INFO 1 --- [notifier] [           main] c.e.Mailer"
        "                               : sent\n",
    )
    events = timeline.read(folder, infer=False).events
    source = dict(zip(events["file"].str.extract(r"([^/]+)$", 1), events["source"], strict=True))
    assert source == {
        "payments-api.log": "payments-api",
        "orders_worker-2024-05-01.log": "orders_worker",
        "0.log": "checkout",
        "app.log": "go-logs",
        "java.json": "ledger",
        "spring.log": "notifier",
    }
    checkout = events.filter(pl.col("source") == "checkout").row(0, named=True)
    assert checkout["component"] == "http" and checkout["host"] == "node-3"


SPRING_ERRORS = [
    "2024-05-01T09:00:00.120Z ERROR 1 --- [notifier] [nio-8080-exec-3] c.e.Mailer"
    "                               : send failed",
    "2024-05-01T09:00:02.480Z DEBUG 1 --- [notifier] [nio-8080-exec-4] c.e.Mailer"
    "                               : retrying send",
    "2024-05-01T09:00:03.007Z ERROR 1 --- [notifier] [nio-8080-exec-4] c.e.Mailer"
    "                               : send failed again",
]


@pytest.mark.parametrize("kubectl_times", [False, True])
def test_spring_boot_lines_grepped_for_errors_keep_their_own_times(read, kubectl_times):
    """``grep ERROR app.log``: a Spring Boot line whose level fills its five places begins
    with a time and one space, as a ``kubectl logs --timestamps`` line does; the format
    claims it whole, so the time is the program's. Behind a real ``--timestamps`` time,
    that time is kubectl's and is taken off."""
    lines = SPRING_ERRORS
    if kubectl_times:
        lines = [f"2024-05-01T09:00:0{k}.999999999Z {line}" for k, line in enumerate(lines)]
    loaded = read("notifier-errors.log", "\n".join(lines) + "\n")
    summary = loaded.summary.files.row(0, named=True)
    assert summary["format"] == "spring-boot"
    assert summary["prefix"] == ("kubectl-timestamps" if kubectl_times else None)
    events = loaded.events.sort("line")
    assert events["level"].cast(pl.String).to_list() == ["error", "debug", "error"]
    assert events["source"].unique().to_list() == ["notifier"]
    assert events["message"].to_list() == ["send failed", "retrying send", "send failed again"]
    if not kubectl_times:
        assert events["ts"][2] == datetime(2024, 5, 1, 9, 0, 3, 7000, tzinfo=UTC)

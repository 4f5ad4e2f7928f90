"""One program's log read from two places counts once: a pod's file from the node and
``kubectl logs`` of the pod, a log collected twice (the later copy grown), ``x.log``
beside ``x.log.gz``. Replicas, a log's own repeated lines and logs that merely share a
few lines stay as they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

import timeline
from tests.lines import every_line_accounted as accounted
from timeline.reading import copies

T0 = datetime(2024, 2, 20, 14, 7, 12, 418203, tzinfo=UTC)
POD = "kube-proxy-7fq2m"
POD_DIR = f"var/log/pods/kube-system_{POD}_3f2a9c1e-5b7d-4e8a-9c0f-2d6b1a4e7c93/kube-proxy"

#: (seconds after T0, klog severity, file:line, message) of a kube-proxy that cannot sync.
PROXY = [
    (0.0, "I", "server_others.go:72", '"Using iptables proxy"'),
    (0.8, "I", "server.go:846", '"Version info" version="v1.26.2"'),
    (2.1, "I", "config.go:317", '"Starting service config controller"'),
    (
        2.1,
        "I",
        "shared_informer.go:270",
        '"Waiting for caches to sync" controller="service config"',
    ),
    (31.4, "E", "proxier.go:1520", '"Failed to execute iptables-restore" err="exit status 2"'),
    (31.4, "I", "proxier.go:1523", '"Closing local ports after iptables-restore failure"'),
    (62.0, "E", "proxier.go:1520", '"Failed to execute iptables-restore" err="exit status 2"'),
    (93.7, "E", "proxier.go:1520", '"Failed to execute iptables-restore" err="exit status 2"'),
    (95.2, "W", "endpoints.go:276", '"Error getting endpoints" service="payments/ledger-api"'),
    (124.9, "E", "proxier.go:1520", '"Failed to execute iptables-restore" err="exit status 2"'),
]


def klog(at: datetime, severity: str, where: str, message: str, pid: int = 1) -> str:
    return f"{severity}{at:%m%d %H:%M:%S.%f} {pid:7d} {where}] {message}"


def proxy_lines(entries=PROXY, start: datetime = T0) -> list[tuple[datetime, str]]:
    return [
        (start + timedelta(seconds=s), klog(start + timedelta(seconds=s), *e)) for s, *e in entries
    ]


def cri(lines: list[tuple[datetime, str]], lag_us: int = 2187) -> str:
    """A pod's file as containerd writes it: the runtime's time (a little after the
    program's own), the stream, ``F`` for a full line."""
    return "".join(
        f"{(t + timedelta(microseconds=lag_us)).strftime('%Y-%m-%dT%H:%M:%S.%f')}431Z stderr F {line}\n"
        for t, line in lines
    )


def plain(lines: list[tuple[datetime, str]]) -> str:
    return "".join(f"{line}\n" for _, line in lines)


def timestamped(lines: list[tuple[datetime, str]], lag_us: int = 2187) -> str:
    """``kubectl logs --timestamps``: the runtime's time in RFC 3339 with nanoseconds."""
    return "".join(
        f"{(t + timedelta(microseconds=lag_us)).strftime('%Y-%m-%dT%H:%M:%S.%f')}431Z {line}\n"
        for t, line in lines
    )


def errors(loaded: timeline.Loaded) -> pl.DataFrame:
    return loaded.events.filter(pl.col("level") == "error")


def file_row(loaded: timeline.Loaded, name: str) -> dict:
    return loaded.summary.files.filter(pl.col("file").str.ends_with(name)).row(0, named=True)


def test_a_pods_file_and_its_kubectl_logs_dumps_give_each_error_once(write, tmp_path):
    lines = proxy_lines()
    write(f"ip-10-20-3-41/{POD_DIR}/0.log", cri(lines))
    write(f"kubectl/{POD}.txt", plain(lines))
    write(f"kubectl/{POD}-timestamps.log", timestamped(lines))
    loaded = timeline.read(tmp_path, year=2024, infer=False, cache=False, workers=1)

    assert errors(loaded).height == 4
    assert loaded.events.height == len(PROXY)
    assert loaded.events["file"].str.ends_with("0.log").all()
    assert accounted(loaded)
    for name in (f"{POD}.txt", f"{POD}-timestamps.log"):
        row = file_row(loaded, name)
        assert (row["rows"], row["duplicate_rows"], row["duplicate_lines"]) == (0, 10, 10)
        assert [p.rsplit("/", 1)[-1] for p in row["duplicate_of"]] == ["0.log"]
    notes = [text for kind, text in loaded.summary.notes() if kind == "duplicate"]
    assert notes == [
        f"kubectl/{POD}-timestamps.log: 10 rows of the log ip-10-20-3-41/{POD_DIR}/0.log "
        "holds too, counted there (10 duplicate lines)",
        f"kubectl/{POD}.txt: 10 rows of the log ip-10-20-3-41/{POD_DIR}/0.log holds too, "
        "counted there (10 duplicate lines)",
    ]
    said = loaded.summary.warnings.filter(pl.col("file").str.ends_with(f"{POD}.txt"))
    assert said.select("line", "end_line", "unparsed", "reason").rows() == [
        (1, 10, False, "the same log lines as 0.log:1-10, counted there")
    ]


def test_a_dump_of_a_longer_time_keeps_the_lines_the_pods_file_lacks(write, tmp_path):
    """The node's file was rotated: it holds the last six lines; ``kubectl logs`` of the
    container gave all ten."""
    lines = proxy_lines()
    write(f"worker-2/{POD_DIR}/0.log", cri(lines[4:]))
    write(f"{POD}.log", plain(lines))
    loaded = timeline.read(tmp_path, year=2024, infer=False, cache=False, workers=1)

    assert loaded.events.height == 10
    assert errors(loaded).height == 4
    # the node's file, which states its host, stays whole; the dump keeps what it lacks
    node = file_row(loaded, "0.log")
    assert (node["rows"], node["duplicate_rows"]) == (6, 0)
    dump = file_row(loaded, f"{POD}.log")
    assert (dump["rows"], dump["duplicate_rows"], dump["duplicate_lines"]) == (4, 6, 6)
    kept = loaded.events.filter(pl.col("file").str.ends_with(f"{POD}.log"))
    assert kept["line"].to_list() == [1, 2, 3, 4]
    assert accounted(loaded)


def rabbit(at: datetime, level: str, pid: str, message: str) -> str:
    return f"{at.strftime('%Y-%m-%d %H:%M:%S.%f')}+00:00 [{level}] <{pid}> {message}\n"


RABBIT_START = datetime(2023, 3, 14, 18, 4, 51, 302117, tzinfo=UTC)
RABBIT = [
    (
        0.0,
        "info",
        "0.7093.0",
        "accepting AMQP connection <0.7093.0> (10.42.3.17:48812 -> 10.42.0.9:5672)",
    ),
    (
        0.4,
        "info",
        "0.7093.0",
        "connection <0.7093.0> (10.42.3.17:48812 -> 10.42.0.9:5672): user 'ci' authenticated",
    ),
    (
        17.9,
        "error",
        "0.6120.0",
        "closing AMQP connection <0.6120.0> (10.42.5.3:40122 -> 10.42.0.9:5672):\nmissed heartbeats from client, timeout: 60s",
    ),
    (44.2, "warning", "0.812.0", "memory resource limit alarm set on node 'rabbit@rabbitmq-0'."),
    (44.9, "error", "0.7311.0", "Publishers will be blocked until this alarm clears"),
    (
        71.0,
        "error",
        "0.6355.0",
        "closing AMQP connection <0.6355.0> (10.42.7.21:51330 -> 10.42.0.9:5672):\nmissed heartbeats from client, timeout: 60s",
    ),
    (92.6, "info", "0.812.0", "memory resource limit alarm cleared on node 'rabbit@rabbitmq-0'"),
]


def rabbit_log(entries=RABBIT) -> str:
    return "".join(rabbit(RABBIT_START + timedelta(seconds=s), *e) for s, *e in entries)


def test_a_log_collected_twice_counts_the_later_grown_copy_once(write, tmp_path):
    write("collected-18h10/rabbitmq-0/rabbit@rabbitmq-0.log", rabbit_log(RABBIT[:5]))
    write("collected-18h30/rabbitmq-0/rabbit@rabbitmq-0.log", rabbit_log())
    loaded = timeline.read(tmp_path, infer=False, cache=False, workers=1)

    assert loaded.events.height == len(RABBIT)
    assert loaded.events["file"].str.contains("18h30").all()
    assert errors(loaded).height == 3
    early = file_row(loaded, "18h10/rabbitmq-0/rabbit@rabbitmq-0.log")
    # five rows on six lines: the heartbeat error's second line goes with it
    assert (early["rows"], early["duplicate_rows"], early["duplicate_lines"]) == (0, 5, 6)
    assert early["continuation_lines"] == 0
    assert accounted(loaded)


def test_a_log_beside_its_gzip_of_the_same_lines_counts_once(write, tmp_path):
    lines = proxy_lines(start=T0 + timedelta(hours=3, seconds=7.5))
    write("node-logs/kube-proxy.log", plain(lines))
    write("node-logs/kube-proxy.log.gz", plain(lines[:8]))
    loaded = timeline.read(tmp_path, year=2024, infer=False, cache=False, workers=1)

    assert loaded.events.height == 10
    assert errors(loaded).height == 4
    assert file_row(loaded, "kube-proxy.log.gz")["duplicate_rows"] == 8
    assert accounted(loaded)


def test_two_replicas_on_two_hosts_keep_their_identical_lines(write, tmp_path):
    lines = proxy_lines()
    uid = "9d1e4b7a-2c3f-4a8e-b6d0-7e5f1c2a3b4d"
    write(f"ip-10-20-3-41/{POD_DIR}/0.log", cri(lines))
    write(
        f"ip-10-20-7-18/var/log/pods/kube-system_kube-proxy-k8s2x_{uid}/kube-proxy/0.log",
        cri(lines),
    )
    loaded = timeline.read(tmp_path, year=2024, infer=False, cache=False, workers=1)

    assert loaded.events.height == 20
    assert errors(loaded).height == 8
    assert loaded.summary.files["duplicate_rows"].sum() == 0


def test_a_log_keeps_its_own_repeated_lines_and_a_copy_adds_none(write, tmp_path):
    """A program that wrote one line three times in one instant: the file keeps all
    three, and its dump beside it adds none (the most of either, not their sum)."""
    burst = [
        (31.4, "E", "proxier.go:1520", '"Failed to execute iptables-restore" err="exit status 2"')
    ] * 3
    entries = [*PROXY[:4], *burst, *PROXY[5:]]
    lines = proxy_lines(entries)
    write(f"worker-2/{POD_DIR}/0.log", cri(lines))
    alone = timeline.read(tmp_path, year=2024, infer=False, cache=False, workers=1)
    assert alone.events.height == len(entries) == 12
    assert errors(alone).height == 6

    write(f"{POD}.txt", plain(lines[:6]))
    loaded = timeline.read(tmp_path, year=2024, infer=False, cache=False, workers=1)
    assert loaded.events.height == 12
    assert errors(loaded).height == 6
    assert file_row(loaded, f"{POD}.txt")["duplicate_rows"] == 6
    assert accounted(loaded)


def test_two_logs_that_share_a_few_lines_are_both_kept(write, tmp_path):
    """Two sync workers in one folder, their hosts not stated: both log ``Sync failed``
    in the same instants while the API server is away, and otherwise their own work."""
    outage = [
        (
            60.0 + 30 * k,
            "E",
            "controller.go:214",
            '"Sync failed" err="the server is currently unable to handle the request"',
        )
        for k in range(3)
    ]
    own_a = [
        (7.0 * k, "I", "worker.go:88", f'"Synced" object="payments/invoice-{k}"') for k in range(20)
    ]
    own_b = [
        (5.0 * k + 1, "I", "worker.go:88", f'"Synced" object="billing/charge-{k}"')
        for k in range(24)
    ]
    write("workers/sync-worker.log", plain(proxy_lines(sorted(own_a + outage))))
    write("workers/sync-worker-2.log", plain(proxy_lines(sorted(own_b + outage))))
    loaded = timeline.read(tmp_path, year=2024, infer=False, cache=False, workers=1)

    assert loaded.events.height == 20 + 24 + 6
    assert errors(loaded).height == 6
    assert loaded.summary.files["duplicate_rows"].sum() == 0


def test_a_log_collected_many_times_keeps_one_copy_whether_its_pairs_are_made_at_once_or_in_parts(
    write, tmp_path, monkeypatch
):
    """Nine collections of one broker's log, each a little longer than the one before: the
    longest stays whole and the others leave out every row, the same whether the rows of
    every pair of copies are matched at once or a few times and messages at a time (where
    a dozen copies of a big log would pair up more rows than memory holds)."""
    # the broker's connections of four minutes, one every 2.5 s, and the alarm between
    opened = [
        (
            2.5 * i,
            "info",
            f"0.{7100 + i}.0",
            f"accepting AMQP connection <0.{7100 + i}.0> "
            f"(10.42.3.{17 + i % 40}:{48000 + i} -> 10.42.0.9:5672)",
        )
        for i in range(96)
    ]
    entries = sorted(opened + RABBIT)
    for n in range(9):
        write(
            f"collected-{n:02d}/rabbitmq-0/rabbit@rabbitmq-0.log",
            rabbit_log(entries[: len(entries) - 8 + n]),
        )
    whole = timeline.read(tmp_path, infer=False, cache=False, workers=1)
    monkeypatch.setattr(copies, "PAIRED_ROWS_AT_ONCE", 1)
    parts = timeline.read(tmp_path, infer=False, cache=False, workers=1)

    for loaded in (whole, parts):
        assert loaded.events.height == len(entries)
        assert loaded.events["file"].str.contains("collected-08").all()
        assert accounted(loaded)
    assert whole.events.equals(parts.events)
    assert whole.summary.files.sort("file").equals(parts.summary.files.sort("file"))

"""Spikes: departures from a series' own baseline, robust to noise and to usually-zero
series, with the rows behind them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

import timeline
from tests.scenarios import EventBuilder
from timeline.analysis import rates, spikes
from timeline.analysis.rates import SERIES_SCHEMA
from timeline.analysis.run import analysis_frame
from timeline.outputs import words

T0 = datetime(2024, 9, 2, 0, 0, tzinfo=UTC)
BUCKET = "5m"
WIDTH = timedelta(minutes=5)


def count_series(values: list[float], name: str = "app errors: boom") -> pl.DataFrame:
    """A count series with one bucket per value (zeros left out, as the rates give them)."""
    return pl.DataFrame(
        [
            {
                "series": name,
                "source": "app",
                "signature": "boom",
                "metric": "errors",
                "level": "error",
                "bucket": T0 + i * WIDTH,
                "value": float(v),
                "rows": int(v),
            }
            for i, v in enumerate(values)
            if v
        ],
        schema=SERIES_SCHEMA,
    )


def delay_series(values: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "series": "circleci queue_delay_p95_s: docker jobs",
                "source": "circleci",
                "signature": "docker jobs",
                "metric": "queue_delay_p95_s",
                "level": None,
                "bucket": T0 + i * WIDTH,
                "value": float(v),
                "rows": 10,
            }
            for i, v in enumerate(values)
            if v is not None
        ],
        schema=SERIES_SCHEMA,
    )


def detect(series: pl.DataFrame, n: int, **options) -> pl.DataFrame:
    flag_options = {k: v for k, v in options.items() if k not in ("gap_buckets",)}
    flagged = spikes.flag_buckets(
        series, bucket=BUCKET, start=T0, end=T0 + (n - 1) * WIDTH, **flag_options
    )
    find_options = {k: v for k, v in options.items() if k in ("gap_buckets", "min_count")}
    return spikes.find_spikes(flagged, bucket=BUCKET, **find_options)


def test_a_burst_in_a_usually_zero_series_is_a_spike_with_start_peak_and_end():
    values = [0] * 300
    values[200:204] = [8, 30, 12, 6]
    found = detect(count_series(values), len(values))
    assert found.height == 1
    spike = found.row(0, named=True)
    assert spike["start"] == T0 + 200 * WIDTH
    assert spike["peak"] == T0 + 201 * WIDTH
    assert spike["end"] == T0 + 204 * WIDTH
    assert spike["peak_value"] == 30
    assert spike["baseline"] == 0
    assert spike["count"] == 56
    assert spike["ratio"] == 30  # against a floor of 1 when the baseline is 0


def test_one_error_or_a_few_scattered_errors_are_not_a_spike():
    values = [0] * 300
    values[100] = 1
    values[150] = 2
    values[200] = 3
    assert detect(count_series(values), len(values)).height == 0


def test_a_small_burst_below_min_count_is_not_a_spike():
    values = [0] * 300
    values[200:202] = [6, 6]
    assert detect(count_series(values), len(values), min_count=13).height == 0
    assert detect(count_series(values), len(values), min_count=12).height == 1


def test_steady_poisson_noise_gives_no_spike():
    rng = np.random.default_rng(3)
    values = rng.poisson(6.0, size=600).tolist()
    assert detect(count_series(values), len(values)).height == 0


def test_the_baseline_is_the_median_before_the_bucket_not_after():
    values = [2] * 300 + [40] * 10 + [2] * 50
    flagged = spikes.flag_buckets(
        count_series(values), bucket=BUCKET, start=T0, end=T0 + 359 * WIDTH
    )
    at = flagged.filter(pl.col("bucket") == T0 + 300 * WIDTH).row(0, named=True)
    assert at["baseline"] == 2
    assert at["hot"]
    # the whole series is zero-filled over the span
    assert flagged.height == 360


def test_a_long_spike_does_not_raise_its_own_baseline_and_stays_one_spike():
    # five hours of errors at 50 per bucket after a day at about 1
    values = [1, 0, 2, 1] * 72 + [50] * 60 + [1] * 20
    found = detect(count_series(values), len(values))
    assert found.height == 1
    assert found["start"][0] == T0 + 288 * WIDTH
    assert found["end"][0] == T0 + 348 * WIDTH
    assert found["hot_buckets"][0] == 60


def test_short_quiet_gaps_inside_a_spike_are_bridged_longer_ones_split_it():
    values = [0] * 100 + [20, 20, 0, 0, 20, 20] + [0] * 10 + [20, 20] + [0] * 20
    found = detect(count_series(values), len(values), gap_buckets=2)
    assert found["start"].to_list() == [T0 + 100 * WIDTH, T0 + 116 * WIDTH]
    assert found["count"].to_list() == [80, 40]


def test_a_queue_delay_spike_needs_min_delay_and_ignores_buckets_without_jobs():
    values: list[float | None] = [10.0, 12.0, 9.0, 11.0] * 30
    values += [400.0, None, None, None, 900.0, 1200.0, None, 800.0]  # sparse jobs, all late
    values += [10.0] * 10
    found = detect(delay_series(values), len(values))
    assert found.height == 1
    spike = found.row(0, named=True)
    assert spike["start"] == T0 + 120 * WIDTH
    assert spike["end"] == T0 + 128 * WIDTH
    assert spike["peak_value"] == 1200
    assert spike["baseline"] == pytest.approx(10.5)
    assert spike["count"] == 40  # jobs behind the hot buckets
    # the same rise to 50 s is under min_delay_s: users do not feel it
    low = [10.0] * 120 + [50.0] * 5 + [10.0] * 5
    assert detect(delay_series(low), len(low)).height == 0


def test_nothing_to_flag_gives_empty_frames_with_the_columns():
    flagged = spikes.flag_buckets(count_series([]), bucket=BUCKET)
    assert flagged.height == 0 and "hot" in flagged.columns
    found = spikes.find_spikes(flagged, bucket=BUCKET)
    assert found.height == 0 and list(found.columns) == list(spikes.SPIKE_SCHEMA)


# --- the rows behind a spike ------------------------------------------------------------


def trickle_frame() -> pl.DataFrame:
    """Two days; a trickle of 'Sync failed' on two hosts from day one noon, a spike on all
    four hosts at day two 18:00; a warning that is always there; a new signature."""
    b = EventBuilder(seed=5)
    hosts = [f"node-{i}" for i in range(4)]
    day = timedelta(days=1)
    kp = {"source": "kube-proxy", "component": "kube-proxy"}
    b.logs(
        **kp, hosts=hosts, template="Syncing", level="info", start=T0, end=T0 + 2 * day, per_min=0.1
    )
    b.logs(
        **kp,
        hosts=hosts,
        template="Slow list",
        level="warning",
        start=T0,
        end=T0 + 2 * day,
        per_min=0.02,
    )
    b.logs(
        **kp,
        hosts=hosts[:2],
        template="Sync failed",
        level="error",
        start=T0 + timedelta(hours=12),
        end=T0 + day + timedelta(hours=18),
        per_min=0.03,
    )
    b.logs(
        **kp,
        hosts=hosts,
        template="Sync failed",
        level="error",
        start=T0 + day + timedelta(hours=18),
        end=T0 + day + timedelta(hours=20),
        per_min=4,
    )
    b.logs(
        source="dns",
        component="coredns",
        hosts=hosts,
        template="SERVFAIL",
        level="error",
        start=T0 + day + timedelta(hours=19),
        end=T0 + day + timedelta(hours=20),
        per_min=3,
    )
    return b.frame()


@pytest.fixture(scope="module")
def described():
    frame = trickle_frame()
    series = rates.log_series(rates.signature_counts(frame, bucket=BUCKET))
    flagged = spikes.flag_buckets(
        series, bucket=BUCKET, start=frame["ts"].min(), end=frame["ts"].max()
    )
    found = spikes.find_spikes(flagged, bucket=BUCKET)
    return frame, spikes.describe_spikes(found, frame)


def by_signature(table: pl.DataFrame, signature: str) -> dict:
    rows = table.filter(pl.col("signature") == signature)
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def test_a_spike_lists_its_hosts_components_and_example_rows(described):
    frame, table = described
    spike = by_signature(table, "Sync failed")
    assert spike["hosts"] == ["node-0", "node-1", "node-2", "node-3"]
    assert spike["n_hosts"] == 4
    assert spike["components"] == ["kube-proxy"]
    assert 1 <= len(spike["examples"]) <= 5
    for example in spike["examples"]:
        file, line = example.rsplit(":", 1)
        row = frame.filter((pl.col("file") == file) & (pl.col("line") == int(line))).row(
            0, named=True
        )
        assert row["template"] == "Sync failed"
        assert spike["start"] <= row["ts"] < spike["end"]
    # one example per host first
    assert len({e.split(":")[0] for e in spike["examples"]}) == len(spike["examples"])


def test_the_trickle_before_a_spike_is_its_precursor(described):
    frame, table = described
    spike = by_signature(table, "Sync failed")
    trickle = frame.filter((pl.col("template") == "Sync failed") & (pl.col("ts") < spike["start"]))
    assert spike["precursor_start"] == trickle["ts"].min()
    assert spike["precursor_rows"] == trickle.height
    assert spike["precursor_hosts"] == ["node-0", "node-1"]
    assert not spike["new_signature"]
    assert spike["first_seen_at"] == trickle["ts"].min()


def test_a_signature_seen_for_the_first_time_is_marked_new(described):
    _, table = described
    spike = by_signature(table, "SERVFAIL")
    assert spike["new_signature"]
    assert spike["precursor_start"] is None
    assert spike["precursor_rows"] == 0


def test_background_warnings_make_no_spike(described):
    _, table = described
    assert "Slow list" not in table["signature"].to_list()


def test_a_trickle_that_runs_from_the_first_row_has_no_known_start():
    frame = trickle_frame()
    early = frame.filter(pl.col("ts") >= T0 + timedelta(hours=12))
    series = rates.log_series(rates.signature_counts(early, bucket=BUCKET))
    flagged = spikes.flag_buckets(series, bucket=BUCKET)
    found = spikes.describe_spikes(spikes.find_spikes(flagged, bucket=BUCKET), early)
    assert by_signature(found, "Sync failed")["precursor_start"] is None


def test_a_job_spike_names_the_slowest_jobs_as_examples():
    b = EventBuilder(seed=9)
    b.jobs(
        source="circleci",
        executor="docker",
        start=T0,
        end=T0 + timedelta(hours=12),
        per_min=1,
        delay_s=(2, 10),
    )
    b.jobs(
        source="circleci",
        executor="docker",
        start=T0 + timedelta(hours=12),
        end=T0 + timedelta(hours=13),
        per_min=1,
        delay_s=(600, 900),
    )
    frame = b.frame()
    table = rates.jobs(frame)
    flagged = spikes.flag_buckets(rates.job_series(table, bucket=BUCKET), bucket=BUCKET)
    found = spikes.find_spikes(flagged, bucket=BUCKET)
    delay = found.filter(pl.col("metric") == "queue_delay_p95_s")
    assert delay.height == 1
    assert abs(delay["start"][0] - (T0 + timedelta(hours=12))) <= WIDTH
    out = spikes.describe_spikes(delay, frame, job_table=table)
    slowest = table.filter(pl.col("queued") >= T0 + timedelta(hours=12)).sort(
        "queue_delay_s", descending=True
    )
    first_example = out["examples"][0][0]
    assert first_example == f"{slowest['file'][0]}:{slowest['line'][0]}"
    assert out["components"].to_list()[0] == ["build"]


def test_spike_examples_are_the_same_whatever_order_tied_rows_come_in():
    """Clusters copied into one review write the same times and line numbers in different
    files: the examples are the earliest rows, ties broken by file, on every run."""
    one = trickle_frame()
    copies = pl.concat(
        [
            one.with_columns(
                file=pl.lit(f"c{k}/") + pl.col("file"), host=pl.lit(f"c{k}-") + pl.col("host")
            )
            for k in (2, 0, 3, 1)
        ]
    )
    series = rates.log_series(rates.signature_counts(copies, bucket=BUCKET))
    flagged = spikes.flag_buckets(
        series, bucket=BUCKET, start=copies["ts"].min(), end=copies["ts"].max()
    )
    found = spikes.find_spikes(flagged, bucket=BUCKET)
    seen = []
    for seed in (1, 2, 3):
        shuffled = copies.sample(fraction=1.0, shuffle=True, seed=seed)
        table = spikes.describe_spikes(found, shuffled).sort("spike_id")
        seen.append(table["examples"].to_list())
    assert seen[0] == seen[1] == seen[2]
    table = spikes.describe_spikes(found, copies)
    for examples in table["examples"].to_list():
        # the four copies tie on time and line: c0's row comes first
        assert examples and examples[0].startswith("c0/")


def fine_series(values: list[float], width: timedelta) -> pl.DataFrame:
    """:func:`count_series` in buckets of ``width``."""
    return count_series(values).with_columns(
        bucket=pl.lit(T0) + (pl.col("bucket") - T0) / (WIDTH / width)
    )


def detect_fine(values: list[float], width: timedelta) -> pl.DataFrame:
    flagged = spikes.flag_buckets(
        fine_series(values, width), bucket=width, start=T0, end=T0 + (len(values) - 1) * width
    )
    return spikes.find_spikes(flagged, bucket=width)


@pytest.mark.parametrize(
    ("seconds", "pattern"),
    [(30, [1]), (60, [1]), (60, [2]), (15, [1, 0]), (20, [0, 1, 0])],
    ids=["2-a-minute-in-30s", "1-a-minute-in-1m", "2-a-minute-in-1m", "15s", "20s"],
)
def test_a_steady_rise_too_thin_for_any_bucket_is_found_from_its_first_row(seconds, pattern):
    """A replica that starts failing one lookup in thirty seconds after a config change
    never puts three rows in one fine bucket; summed over five minutes it is plain, and
    the spike starts at its first row, not where the sum first cleared the bar."""
    width = timedelta(seconds=seconds)
    quiet = int(timedelta(hours=6) / width)
    trickle = (pattern * 400)[: int(timedelta(minutes=35) / width)]
    values = [0] * quiet + trickle + [0] * quiet
    found = detect_fine(values, width)
    assert found.height == 1
    first = quiet + trickle.index(max(pattern))
    assert found["start"][0] == T0 + first * width
    assert found["count"][0] == sum(trickle)


def test_a_trickle_at_its_usual_rate_is_no_spike_at_fine_buckets():
    rng = np.random.default_rng(11)
    values = rng.poisson(0.4, size=2400).tolist()  # ten hours of 30 s buckets
    assert detect_fine(values, timedelta(seconds=30)).height == 0


def test_a_burst_over_a_steady_trickle_starts_with_the_burst_not_the_trickle():
    """The buckets of the usual trickle inside the burst's first five minutes are at
    their baseline: they are not dated into the spike."""
    width = timedelta(minutes=1)
    values = [1] * 600 + [20] * 10 + [1] * 120
    found = detect_fine(values, width)
    assert found.height == 1
    assert found["start"][0] == T0 + 600 * width
    assert found["count"][0] == 200


def _failing_ci(seed: int, burst_fail_p: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Twelve quiet hours of CI jobs a minute, then an hour where jobs fail; the frame
    and its job table."""
    b = EventBuilder(seed=seed)
    quiet = {"source": "circleci", "executor": "machine", "per_min": 1.0, "delay_s": (2, 9)}
    b.jobs(start=T0, end=T0 + timedelta(hours=12), fail_p=0.0, **quiet)
    burst_start, burst_end = T0 + timedelta(hours=12), T0 + timedelta(hours=13)
    b.jobs(start=burst_start, end=burst_end, fail_p=burst_fail_p, **quiet)
    frame = b.frame()
    return frame, rates.jobs(frame)


@pytest.mark.parametrize(("seed", "bucket"), [(4, "1m"), (8, "2m"), (15, "30s"), (16, "5m")])
def test_a_ci_spike_counts_each_failed_job_once(seed, bucket):
    """Each bucket of a CI series holds the jobs of the fifteen minutes it ends: a failed
    job is in many buckets' windows and is still one failed job of the spike, which
    starts with the first of them."""
    frame, table = _failing_ci(seed, burst_fail_p=0.9)
    flagged = spikes.flag_buckets(rates.job_series(table, bucket=bucket), bucket=bucket)
    found = spikes.find_spikes(flagged, bucket=bucket, job_table=table)
    failed = found.filter(pl.col("metric") == "failed_jobs").sort("start")
    jobs_failed = table.filter(pl.col("status") == "failed")
    inside = failed.join_where(
        jobs_failed.select("queued", "file", "line"),
        (pl.col("queued") >= pl.col("start")) & (pl.col("queued") < pl.col("end")),
    )
    per_spike = inside.group_by("spike_id").agg(jobs=pl.len(), file=pl.col("file").first())
    counts = failed.join(per_spike, on="spike_id")
    assert failed.height >= 1 and (counts["count"] == counts["jobs"]).all()
    assert inside["queued"].n_unique() == inside.height <= jobs_failed.height
    first = jobs_failed["queued"].min()
    assert failed["start"][0] <= first < failed["start"][0] + rates.to_timedelta(bucket)
    described = spikes.describe_spikes(found, frame, job_table=table)
    examples = described.filter(pl.col("metric") == "failed_jobs")["examples"][0]
    failed_lines = {f"{f}:{n}" for f, n in inside.select("file", "line").iter_rows()}
    assert examples.len() > 0 and set(examples) <= failed_lines


@pytest.mark.parametrize(("seed", "bucket"), [(21, "30s"), (22, "1m"), (23, "5m")])
def test_a_job_that_failed_before_a_ci_burst_does_not_start_it(seed, bucket):
    """One job that failed ten minutes before a burst of failures is in the window of
    every bucket of the fifteen minutes after it, and is still one job: the burst's spike
    starts with the burst, whatever the bucket, and does not count it."""
    b = EventBuilder(seed=seed)
    steady = {"source": "gitlab-ci", "executor": "k8s,eu-west-1", "delay_s": (1, 6)}
    burst = T0 + timedelta(hours=9, minutes=40)
    b.jobs(start=T0, end=burst, per_min=0.6, fail_p=0.0, **steady)
    table = rates.jobs(b.frame())
    lone = table.filter(pl.col("queued") < burst - timedelta(minutes=10)).tail(1)
    b.jobs(start=burst, end=burst + timedelta(minutes=40), per_min=1.2, fail_p=0.9, **steady)
    frame = b.frame()
    table = rates.jobs(frame).with_columns(
        status=pl.when(pl.col("job_id").is_in(lone["job_id"].implode()))
        .then(pl.lit("failed"))
        .otherwise("status")
    )
    flagged = spikes.flag_buckets(rates.job_series(table, bucket=bucket), bucket=bucket)
    found = spikes.find_spikes(flagged, bucket=bucket, job_table=table)
    failed = found.filter(pl.col("metric") == "failed_jobs")
    assert failed.height >= 1
    assert failed["start"].min() > lone["queued"][0]
    assert failed["start"].min() >= burst - rates.to_timedelta(bucket)


def _broker_log(rng: random.Random, node: str, start: datetime, hours: int, burst: datetime):
    """A RabbitMQ 3.12 log in local time (+02:00): connections accepted and closed, a
    client now and then gone without closing (a steady warning), and channel errors for
    twenty minutes from ``burst``."""
    local = timezone(timedelta(hours=2))
    lines: list[tuple[datetime, str]] = []

    def write(t: datetime, level: str, pid: str, text: str) -> None:
        stamp = t.astimezone(local).isoformat(sep=" ", timespec="microseconds")
        lines.extend((t, f"{stamp} [{level}] {pid} {part}") for part in text.split("\n"))

    t = start
    while t < start + timedelta(hours=hours):
        t += timedelta(seconds=rng.expovariate(1 / 12))
        pid = f"<0.{rng.randint(900, 48000)}.0>"
        peer = f"10.42.{rng.randint(1, 9)}.{rng.randint(2, 250)}:{rng.randint(32768, 60999)}"
        conn = f"{peer} -> 10.20.0.12:5672"
        write(t, "info", pid, f"accepting AMQP connection {pid} ({conn})")
        if rng.random() < 0.2:
            write(
                t + timedelta(seconds=1),
                "warning",
                pid,
                f"closing AMQP connection {pid} ({conn}, vhost: '/', user: 'orders'):\n"
                "client unexpectedly closed TCP connection",
            )
        if burst <= t < burst + timedelta(minutes=20):
            write(
                t + timedelta(milliseconds=5),
                "error",
                pid,
                f"Channel error on connection {pid} ({conn}, vhost: '/', user: 'orders'), "
                f"channel 1:\noperation basic.consume caused a channel exception not_found: "
                f"home node 'rabbit@{node}' of durable queue 'orders.created' in vhost '/' "
                "is down or inaccessible",
            )
    lines.sort(key=lambda pair: pair[0])
    return "".join(f"{text}\n" for _, text in lines)


@pytest.mark.parametrize(
    ("seed", "node", "boot_days_before"), [(31, "mq-prd-02", 2), (32, "rmq-eu-1", 9)]
)
def test_a_log_that_begins_late_is_not_a_spike_at_its_first_line(
    tmp_path, seed, node, boot_days_before
):
    """A journal saved with a broker's log begins with the machine's boot days before
    the log does: the broker's steady warnings were not zero in those days, only not
    written down, so the log's first buckets are no spike and the incident is the burst
    of channel errors."""
    rng = random.Random(seed)
    start = datetime(2024, 6, 18, 6, 0, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 50))
    burst = start + timedelta(hours=2, minutes=rng.randint(0, 40))
    boot = start - timedelta(days=boot_days_before, hours=rng.randint(1, 9))
    journal = [
        f"{(boot + timedelta(seconds=s)):%Y-%m-%dT%H:%M:%S+0000} {node} systemd[1]: {text}"
        for s, text in ((0, "Starting RabbitMQ broker..."), (9, "Started RabbitMQ broker."))
    ]
    (tmp_path / "journalctl_--no-pager_--unit_rabbitmq-server").write_text(
        "\n".join(journal) + "\n"
    )
    (tmp_path / f"rabbit@{node}.log").write_text(_broker_log(rng, node, start, 4, burst))
    loaded = timeline.read(tmp_path, cache=False, workers=1)
    found = timeline.analyze(loaded)
    steady = found.spikes.filter(pl.col("signature").str.contains("unexpectedly closed"))
    assert steady.height == 0
    assert found.incidents.height == 1
    onset = found.incidents["onset"][0]
    assert burst - timedelta(minutes=1) <= onset <= burst + timedelta(minutes=2)


@pytest.mark.parametrize(("seed", "boot_days_before", "hours"), [(41, 12, 4), (42, 25, 6)])
def test_the_bucket_fits_the_hours_of_logs_not_a_boot_weeks_before(
    tmp_path, seed, boot_days_before, hours
):
    """A journal saved whole begins at the machine's boot weeks before the broker's log of
    a few hours: the buckets are as fine as those hours need, the same for every row and
    for the rows the analysis keeps, and the incident ends within minutes of its last
    error rather than at the end of a half-hour bucket."""
    rng = random.Random(seed)
    node = f"rmq-{rng.choice(['eu', 'us', 'ap'])}-{rng.randint(0, 2)}"
    start = datetime(2024, 6, 18, 5, 0, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 50))
    burst = start + timedelta(hours=2, minutes=rng.randint(0, 40))
    boot = start - timedelta(days=boot_days_before, hours=rng.randint(1, 9))
    (tmp_path / "journalctl_--no-pager_--unit_rabbitmq-server").write_text(
        f"{boot:%Y-%m-%dT%H:%M:%S+0000} {node} systemd[1]: Starting RabbitMQ broker...\n"
        f"{boot + timedelta(seconds=9):%Y-%m-%dT%H:%M:%S+0000} {node} systemd[1]: "
        "Started RabbitMQ broker.\n"
    )
    (tmp_path / f"rabbit@{node}.log").write_text(_broker_log(rng, node, start, hours, burst))
    loaded = timeline.read(tmp_path, cache=False, workers=1)
    found = timeline.analyze(loaded)
    assert rates.to_timedelta(found.bucket) <= timedelta(minutes=2)
    assert timeline.analyze(analysis_frame(loaded.events)).bucket == found.bucket
    last_error = loaded.events.filter(pl.col("level") == "error")["ts"].max()
    assert found.incidents["recovery"][0] - last_error <= timedelta(minutes=5)


def _small_team(seed: int, *, per_min: float, fail_p: float, hours: int = 24) -> EventBuilder:
    """A day of one small team's CI jobs, ``per_min`` of them a minute (a few in fifteen
    minutes), failing with ``fail_p``."""
    b = EventBuilder(seed=seed)
    source, executor = random.Random(seed).choice(
        (("github-actions", "ubuntu-latest"), ("gitlab-ci", "docker"), ("circleci", "machine"))
    )
    b.jobs(
        source=source,
        executor=executor,
        start=T0,
        end=T0 + timedelta(hours=hours),
        per_min=per_min,
        delay_s=(2, 20),
        fail_p=fail_p,
    )
    return b


@pytest.mark.parametrize(("seed", "bucket"), [(31, "1m"), (32, "2m"), (33, "5m"), (34, "30s")])
def test_most_of_a_small_teams_jobs_failing_after_a_quiet_day_is_a_spike(seed, bucket):
    """A team running about six jobs in fifteen minutes, none failing all day, then five
    of the next six fail: far below the count a busy series needs, and still a spike,
    whose words say how many of how many failed against the share that usually fails."""
    b = _small_team(seed, per_min=0.4, fail_p=0.0)
    table = rates.jobs(b.frame())
    source, executor = table["source"][0], table["executor"][0]
    b.jobs(
        source=source,
        executor=executor,
        start=T0 + timedelta(hours=24, minutes=1),  # job ids name the minute it starts
        end=T0 + timedelta(hours=25),
        per_min=0.4,
        delay_s=(2, 20),
        fail_p=0.0,
    )
    frame = b.frame()
    after = rates.jobs(frame).filter(pl.col("queued") >= T0 + timedelta(hours=24)).head(6)
    # the six are queued two minutes apart, the last minute of them successes
    spaced = after.select(
        "job_id", _at=T0 + timedelta(hours=24, minutes=1) + pl.int_range(6) * timedelta(minutes=2)
    )
    broken = after.head(5)["job_id"].implode()
    table = (
        rates.jobs(frame)
        .join(spaced, on="job_id", how="left")
        .with_columns(
            queued=pl.coalesce("_at", "queued"),
            status=pl.when(pl.col("job_id").is_in(broken))
            .then(pl.lit("failed"))
            .otherwise("status"),
        )
        .drop("_at")
        .sort("queued")
    )
    # and no other job is queued in the twenty minutes they start
    crowd = pl.col("queued").is_between(
        T0 + timedelta(hours=24), T0 + timedelta(hours=24, minutes=20)
    )
    table = table.filter(~crowd | pl.col("job_id").is_in(spaced["job_id"].implode()))
    after = table.filter(pl.col("job_id").is_in(spaced["job_id"].implode()))
    flagged = spikes.flag_buckets(rates.job_series(table, bucket=bucket), bucket=bucket)
    found = spikes.find_spikes(flagged, bucket=bucket, job_table=table)
    failed = found.filter(pl.col("metric") == "failed_jobs")
    assert failed.height == 1, failed
    spike = failed.row(0, named=True)
    assert spike["count"] == 5
    assert spike["start"] <= after["queued"][0] < spike["start"] + rates.to_timedelta(bucket)
    assert spike["usual_share"] == pytest.approx(spikes.USUAL_FAILED_SHARE_FLOOR)
    said = words.spike_measure(spike, bucket=bucket)
    assert said.startswith("failed jobs up to 5 of ") and "against a usual 5% failing" in said
    described = spikes.describe_spikes(failed, frame, job_table=table)
    failed_lines = {
        f"{f}:{n}"
        for f, n in table.filter(pl.col("status") == "failed").select("file", "line").iter_rows()
    }
    assert set(described["examples"][0]) <= failed_lines and described["examples"][0].len() > 0


def _share_series(before: tuple[int, int], last: tuple[int, int], n: int = 96) -> pl.DataFrame:
    """A failed-jobs series of fifteen-minute buckets: ``n`` buckets where ``before[0]``
    of ``before[1]`` jobs failed, then one where ``last[0]`` of ``last[1]`` did."""
    values = [before] * n + [last]
    return pl.DataFrame(
        [
            {
                "series": "gitlab-ci failed_jobs: docker jobs",
                "source": "gitlab-ci",
                "signature": "docker jobs",
                "metric": "failed_jobs",
                "level": None,
                "bucket": T0 + i * timedelta(minutes=15),
                "value": float(k),
                "rows": m,
            }
            for i, (k, m) in enumerate(values)
        ],
        schema=SERIES_SCHEMA,
    )


@pytest.mark.parametrize(
    ("before", "last", "hot"),
    [
        ((0, 6), (5, 6), True),  # 5 of 6 after a day with none failing
        ((0, 5), (5, 5), True),  # every job of a quiet window fails
        ((0, 5), (3, 3), False),  # three jobs of one run failing together
        ((2, 20), (2, 20), False),  # 2 of 20 is the usual 10%
        ((2, 20), (4, 20), False),  # twice the usual share, within its chance
        ((2, 20), (12, 20), True),  # 12 of 20 against a usual 10%
        ((0, 6), (2, 2), False),  # two failures are never enough
        ((3, 10), (6, 10), False),  # a flaky team's bad quarter hour
    ],
)
def test_a_ci_failure_window_is_judged_by_its_share_of_the_jobs(before, last, hot):
    bucket = "15m"
    flagged = spikes.flag_buckets(_share_series(before, last), bucket=bucket)
    hot_at = flagged.filter(pl.col("hot"))["bucket"].to_list()
    assert hot_at == ([T0 + 96 * timedelta(minutes=15)] if hot else [])
    if flagged.height:  # a series that never holds three failures is left out
        usual = max(before[0] / before[1], spikes.USUAL_FAILED_SHARE_FLOOR)
        assert flagged["usual_share"][-1] == pytest.approx(usual)


@pytest.mark.parametrize(("seed", "fail_p"), [(41, 0.1), (42, 0.2), (43, 0.3), (44, 0.15)])
@pytest.mark.parametrize("per_min", [0.3, 0.6, 1.5])
def test_a_flaky_teams_usual_failures_are_no_spike(seed, fail_p, per_min):
    """A day and a half of jobs failing now and then (flaky tests, a tenth to a third of
    them): the usual share, however high, is no spike at any volume."""
    frame = _small_team(seed, per_min=per_min, fail_p=fail_p, hours=36).frame()
    table = rates.jobs(frame)
    for bucket in ("1m", "5m"):
        flagged = spikes.flag_buckets(rates.job_series(table, bucket=bucket), bucket=bucket)
        found = spikes.find_spikes(flagged, bucket=bucket, job_table=table)
        assert found.filter(pl.col("metric") == "failed_jobs").height == 0


@pytest.mark.parametrize(
    ("seed", "bucket", "per_min", "idle", "pause"),
    [
        (51, "1m", 0.25, 0, 0),
        (52, "30s", 0.2, 0, 0),
        (53, "5m", 0.3, 0, 0),
        (54, "2m", 0.25, 0, 17),
        (55, "1m", 0.25, 70, 0),
    ],
)
def test_every_job_of_a_sparse_team_failing_for_an_hour_is_one_spike_from_its_first(
    seed, bucket, per_min, idle, pause
):
    """Three or four jobs a quarter hour, none failing for a day, then every one failing
    for fifty minutes: too few for any one window, a spike over the hour's windows
    together, starting with the first failed job and counting each of them. A quarter
    hour without any job (``pause`` minutes) in the middle says nothing either way and
    does not split it; ``idle`` minutes without jobs before the first failure are not
    part of it."""
    b = _small_team(seed, per_min=per_min, fail_p=0.0)
    table = rates.jobs(b.frame())
    source, executor = table["source"][0], table["executor"][0]
    # job ids name the minute a batch starts
    broke = T0 + timedelta(hours=24, minutes=7 + idle)
    failing = {"source": source, "executor": executor, "delay_s": (2, 20), "fail_p": 1.0}
    middle = broke + timedelta(minutes=20)
    b.jobs(start=broke, end=middle, per_min=per_min, **failing)
    resumed = middle + timedelta(minutes=pause + 1)
    b.jobs(start=resumed, end=resumed + timedelta(minutes=30), per_min=per_min, **failing)
    table = rates.jobs(b.frame())
    failed_jobs = table.filter(pl.col("status") == "failed")
    flagged = spikes.flag_buckets(rates.job_series(table, bucket=bucket), bucket=bucket)
    found = spikes.find_spikes(flagged, bucket=bucket, job_table=table)
    failed = found.filter(pl.col("metric") == "failed_jobs")
    assert failed.height == 1, failed
    spike = failed.row(0, named=True)
    first = failed_jobs["queued"].min()
    assert first - rates.to_timedelta(bucket) <= spike["start"] <= first + timedelta(minutes=8)
    assert spike["count"] >= failed_jobs.height - 2
    assert spike["end"] >= failed_jobs["queued"].max()
    hot = flagged.filter((pl.col("metric") == "failed_jobs") & pl.col("hot"))
    assert hot["bucket"].min() >= first - rates.to_timedelta(bucket)

"""Rates: warnings and errors per bucket, CI queue delays and failure rates per executor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from timeline.analysis import rates
from timeline.schema import EVENT_SCHEMA

T0 = datetime(2023, 3, 14, 18, 0, tzinfo=UTC)


def rows(*records: dict) -> pl.DataFrame:
    """An event frame from a few records; unspecified columns get plain defaults."""
    base = {
        "source": "kube-proxy",
        "host": "ip-10-20-1-11.ec2.internal",
        "component": "kube-proxy",
        "level": "error",
        "kind": "log",
        "message": "Sync failed",
        "template": "Sync failed",
        "attrs": "{}",
        "file": "kube-proxy.log",
    }
    full = [{**base, "line": i + 1, **r} for i, r in enumerate(records)]
    return pl.DataFrame(full, schema=EVENT_SCHEMA)


def job(minute: float, executor: str, delay: float, status: str = "success") -> dict:
    attrs = {
        "job_id": f"{executor}-{minute}",
        "name": "build",
        "status": status,
        "executor": executor,
        "queue_delay_s": delay,
    }
    return {
        "ts": T0 + timedelta(minutes=minute),
        "source": "circleci",
        "host": None,
        "component": "build",
        "level": "error" if status == "failed" else "info",
        "kind": "job",
        "message": f"job build {status}",
        "template": "job build <STATUS>",
        "attrs": json.dumps(attrs),
        "file": "jobs.json",
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1min", 60), ("5m", 300), ("90s", 90), ("1h30m", 5400), ("2 days", 172800), ("1.5h", 5400)],
)
def test_durations_people_write(text, seconds):
    assert rates.to_timedelta(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 parsecs", "0s", "10"])
def test_bad_durations_are_refused_with_the_text(text):
    with pytest.raises(ValueError, match="duration|unit"):
        rates.to_timedelta(text)


def test_bucket_is_chosen_from_the_span():
    assert rates.choose_bucket(T0, T0 + timedelta(minutes=10)) == "1s"
    assert rates.choose_bucket(T0, T0 + timedelta(hours=12)) == "1m"
    assert rates.choose_bucket(T0, T0 + timedelta(days=2)) == "5m"
    assert rates.choose_bucket(T0, T0 + timedelta(days=400)) == "1d"
    # never more than MAX_BUCKETS buckets
    for days in (1, 3, 9, 30):
        width = rates.to_timedelta(rates.choose_bucket(T0, T0 + timedelta(days=days)))
        assert timedelta(days=days) / width <= rates.MAX_BUCKETS


@pytest.mark.parametrize(
    ("start", "minutes"),
    [("2024-02-20 08:17:41", 166), ("2023-03-14 16:00:00", 1000), ("2025-07-01 23:59:59", 61)],
)
def test_data_in_one_part_gets_the_bucket_its_own_span_gives(start, minutes):
    """Hours that hold rows are whole hours: where the data is one part, the bucket is the
    one its own first and last rows give, not one for the hours around them (2h46m of
    logs fit 10 s buckets; the three hours they touch would not)."""
    first = datetime.fromisoformat(start).replace(tzinfo=UTC)
    times = [first + timedelta(seconds=37 * k) for k in range(minutes * 60 // 37 + 1)]
    frame = pl.DataFrame({"ts": times})
    dense = rates.dense_span(frame)
    assert dense[0] <= first and dense[1] >= times[-1]
    assert rates.choose_bucket(first, times[-1], dense=dense) == rates.choose_bucket(
        first, times[-1]
    )


def test_counts_per_bucket_host_and_signature_leave_out_info_changes_and_jobs():
    frame = rows(
        {"ts": T0 + timedelta(seconds=10)},
        {"ts": T0 + timedelta(seconds=50)},
        {"ts": T0 + timedelta(seconds=70)},
        {"ts": T0 + timedelta(seconds=20), "host": "ip-10-20-1-12.ec2.internal"},
        {"ts": T0 + timedelta(seconds=30), "level": "warning", "template": "Slow sync"},
        {"ts": T0 + timedelta(seconds=30), "level": "info", "template": "Synced"},
        {"ts": T0 + timedelta(seconds=30), "kind": "change", "level": "error"},
        {"ts": None},
        job(0.5, "docker", 3.0, "failed"),
    )
    counts = rates.signature_counts(frame, bucket="1min")
    got = {
        (r["bucket"].minute, r["host"].split(".")[0][-2:], r["template"]): r["count"]
        for r in counts.iter_rows(named=True)
    }
    assert got == {
        (0, "11", "Sync failed"): 2,
        (0, "12", "Sync failed"): 1,
        (0, "11", "Slow sync"): 1,
        (1, "11", "Sync failed"): 1,
    }
    assert counts.filter(pl.col("template") == "Slow sync")["level"].to_list() == ["warning"]


def test_log_series_add_hosts_together_and_name_the_metric():
    frame = rows(
        {"ts": T0},
        {"ts": T0, "host": "other"},
        {"ts": T0, "level": "warning", "template": "Slow sync"},
    )
    series = rates.log_series(rates.signature_counts(frame, bucket="5m"))
    by_name = {r["series"]: (r["metric"], r["value"], r["rows"]) for r in series.to_dicts()}
    assert by_name == {
        "kube-proxy errors: Sync failed": ("errors", 2.0, 2),
        "kube-proxy warnings: Slow sync": ("warnings", 1.0, 1),
    }


def test_job_attrs_are_read_and_an_unknown_executor_is_named():
    frame = rows(job(1, "machine", 42.5, "failed"), job(2, None, 1.0))
    table = rates.jobs(frame)
    assert table["executor"].to_list() == ["machine", "unknown"]
    assert table["queue_delay_s"].to_list() == [42.5, 1.0]
    assert table["status"].to_list() == ["failed", "success"]
    assert table["line"].to_list() == [1, 2]


def test_job_rates_give_median_p95_and_failure_and_cancel_rates_per_executor():
    delays = [10, 20, 30, 40, 1000]
    frame = rows(
        *[job(i, "docker", d) for i, d in enumerate(delays)],
        job(6, "docker", 5, "failed"),
        job(7, "docker", 5, "cancelled"),
        job(8, "machine", 300),
    )
    stats = rates.job_rates(frame, bucket="1h")
    docker = stats.filter(pl.col("executor") == "docker").row(0, named=True)
    assert docker["jobs"] == 7
    assert docker["median_queue_delay_s"] == 20
    assert docker["p95_queue_delay_s"] == pytest.approx(
        pl.Series([*delays, 5, 5], dtype=pl.Float64).quantile(0.95, "linear")
    )
    assert docker["failure_rate"] == pytest.approx(1 / 7)
    assert docker["cancel_rate"] == pytest.approx(1 / 7)
    machine = stats.filter(pl.col("executor") == "machine").row(0, named=True)
    assert (machine["jobs"], machine["failed"], machine["p95_queue_delay_s"]) == (1, 0, 300)


def test_job_series_look_back_over_a_trailing_period():
    # one failed job a minute for 10 minutes: with 1-minute buckets and a 5-minute period,
    # a bucket counts the failures of the five minutes that end with it
    frame = rows(*[job(m, "docker", 1.0, "failed") for m in range(10)])
    series = rates.job_series(rates.jobs(frame), bucket="1m", period="5m")
    failed = series.filter(pl.col("metric") == "failed_jobs").sort("bucket")
    by_minute = {b.minute: v for b, v in zip(failed["bucket"], failed["value"], strict=True)}
    assert by_minute[0] == 1
    assert by_minute[4] == 5
    assert by_minute[9] == 5
    assert set(series["metric"]) == {"queue_delay_p95_s", "failed_jobs", "cancelled_jobs"}
    assert set(series["series"]) >= {"circleci failed_jobs: docker jobs"}


def test_no_jobs_gives_an_empty_series_frame():
    frame = rows({"ts": T0})
    assert rates.job_series(rates.jobs(frame), bucket="1m").height == 0

"""Incidents: spikes merged across sources, phases, the order of sources, detection latency."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import timeline
from tests.scenarios import EventBuilder
from timeline.analysis import incidents, rates, spikes

T0 = datetime(2024, 11, 4, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def spike_rows(*rows: tuple) -> pl.DataFrame:
    """Spikes as (metric, series, start, end[, count, precursor_start])."""
    records = []
    for i, row in enumerate(rows):
        metric, series, start, end, *rest = row
        records.append(
            {
                "spike_id": i,
                "metric": metric,
                "series": series,
                "source": series.split(" ")[0],
                "start": T0 + start,
                "end": T0 + end,
                "count": float(rest[0]) if rest else 100.0,
                "precursor_start": T0 + rest[1] if len(rest) > 1 and rest[1] else None,
            }
        )
    return pl.DataFrame(
        records,
        schema_overrides={
            "spike_id": pl.UInt32,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "precursor_start": pl.Datetime("us", "UTC"),
        },
    )


def ids(table: pl.DataFrame) -> list[int]:
    return table.sort("spike_id")["incident_id"].to_list()


def test_overlapping_or_close_log_spikes_of_any_source_are_one_incident():
    table = spike_rows(
        ("errors", "kube-proxy errors: Sync failed", 10 * H, 12 * H),
        ("errors", "coredns errors: SERVFAIL", 11 * H, 13 * H),
        ("errors", "dispatcher errors: timeout", 13 * H + 20 * M, 14 * H),
        ("errors", "rabbitmq errors: closed", 16 * H, 17 * H),
    )
    assert ids(incidents.group_incidents(table, gap="30m")) == [0, 0, 0, 1]
    assert ids(incidents.group_incidents(table, gap="10m")) == [0, 0, 1, 2]


def test_ci_spikes_join_the_incident_they_start_in_but_never_join_two():
    table = spike_rows(
        ("errors", "kube-proxy errors: Sync failed", 10 * H, 12 * H),
        # a long CI tail from the first incident, running into the second
        ("queue_delay_p95_s", "circleci queue_delay_p95_s: machine jobs", 10 * H + 5 * M, 17 * H),
        ("errors", "rabbitmq errors: closed", 16 * H, 17 * H),
        ("failed_jobs", "circleci failed_jobs: docker jobs", 16 * H + 10 * M, 16 * H + 40 * M),
        # CI trouble with no logs behind it
        ("queue_delay_p95_s", "circleci queue_delay_p95_s: macos jobs", 20 * H, 21 * H),
        ("failed_jobs", "circleci failed_jobs: macos jobs", 21 * H + 10 * M, 22 * H),
    )
    assert ids(incidents.group_incidents(table, gap="30m")) == [0, 0, 1, 1, 2, 2]


def test_a_small_spike_in_the_trickle_before_a_much_bigger_one_joins_its_incident():
    series = "kube-proxy errors: Sync failed"
    table = spike_rows(
        ("errors", series, 4 * H, 4 * H + 10 * M, 15, None),
        ("errors", series, 10 * H, 14 * H, 5000, 1 * H),
        ("errors", "app errors: other", 2 * H, 2 * H + 10 * M, 15, None),
    )
    grouped = incidents.group_incidents(table, gap="30m")
    assert ids(grouped) == [1, 1, 0]
    # without the trickle, or when the later spike is not much bigger, they stay apart
    alone = table.with_columns(precursor_start=pl.lit(None, pl.Datetime("us", "UTC")))
    assert ids(incidents.group_incidents(alone, gap="30m")) == [1, 2, 0]
    close = table.with_columns(count=pl.lit(100.0))
    assert ids(incidents.group_incidents(close, gap="30m")) == [1, 2, 0]


# --- the incident table, from rows ------------------------------------------------------


def story() -> pl.DataFrame:
    """A trickle from hour 8, a spike at hour 18 on kube-proxy, DNS errors from 19:00, CI
    delays from 18:20, everything over by 21:00; a second, separate episode at 23:00."""
    b = EventBuilder(seed=21)
    hosts = [f"node-{i}" for i in range(5)]
    kp = {"source": "kube-proxy", "component": "kube-proxy"}
    end = T0 + 26 * H
    b.logs(**kp, hosts=hosts, template="Syncing", level="info", start=T0, end=end, per_min=0.1)
    b.logs(
        **kp,
        hosts=hosts[:2],
        template="Sync failed",
        level="error",
        start=T0 + 8 * H,
        end=T0 + 17 * H,
        per_min=0.02,
    )
    b.logs(
        **kp,
        hosts=hosts[:2],
        template="Sync failed",
        level="error",
        start=T0 + 17 * H,
        end=T0 + 18 * H,
        per_min=0.3,
    )
    b.logs(
        **kp,
        hosts=hosts,
        template="Sync failed",
        level="error",
        start=T0 + 18 * H,
        end=T0 + 21 * H,
        per_min=5,
    )
    b.logs(
        source="coredns",
        component="coredns",
        hosts=hosts,
        template="SERVFAIL",
        level="error",
        start=T0 + 19 * H,
        end=T0 + 20 * H + 30 * M,
        per_min=4,
    )
    b.logs(
        source="rabbitmq",
        component="rabbit@rmq-0",
        hosts=["rmq-0"],
        template="closed",
        level="error",
        start=T0 + 23 * H,
        end=T0 + 23 * H + 40 * M,
        per_min=5,
    )
    b.jobs(
        source="circleci",
        executor="docker",
        start=T0,
        end=T0 + 18 * H + 20 * M,
        per_min=1,
        delay_s=(2, 10),
    )
    b.jobs(
        source="circleci",
        executor="docker",
        start=T0 + 18 * H + 20 * M,
        end=T0 + 20 * H + 30 * M,
        per_min=1,
        delay_s=(600, 1200),
    )
    b.jobs(
        source="circleci",
        executor="docker",
        start=T0 + 20 * H + 30 * M,
        end=end,
        per_min=1,
        delay_s=(2, 10),
    )
    return b.frame()


@pytest.fixture(scope="module")
def table():
    frame = story()
    bucket = "5m"
    job_table = rates.jobs(frame)
    series = pl.concat(
        [
            rates.log_series(rates.signature_counts(frame, bucket=bucket)),
            rates.job_series(job_table, bucket=bucket),
        ]
    )
    lo, hi = frame["ts"].min(), frame["ts"].max()
    flagged = spikes.flag_buckets(series, bucket=bucket, start=lo, end=hi)
    found = spikes.describe_spikes(
        spikes.find_spikes(flagged, bucket=bucket), frame, job_table=job_table
    )
    grouped = incidents.group_incidents(found, gap="30m")
    return frame, grouped, incidents.incident_table(grouped, flagged, bucket=bucket, frame=frame)


def test_two_episodes_are_two_incidents(table):
    _, _, out = table
    assert out.height == 2
    assert out["sources"].to_list()[1] == ["rabbitmq"]


def test_the_onset_is_the_first_row_of_the_real_rise_not_the_trickle(table):
    frame, _, out = table
    first = out.row(0, named=True)
    assert T0 + 18 * H <= first["onset"] < T0 + 18 * H + 5 * M
    # the onset is a row's own time
    assert frame.filter(pl.col("ts") == first["onset"]).height == 1
    assert first["start"] <= first["onset"]


def test_phases_are_in_order(table):
    _, _, out = table
    for row in out.iter_rows(named=True):
        assert row["start"] <= row["onset"] <= row["escalation"] <= row["peak"]
        assert row["peak"] <= row["mitigation"] <= row["recovery"]
        assert row["duration_s"] == pytest.approx((row["recovery"] - row["onset"]).total_seconds())


def test_the_order_in_which_sources_spiked_with_the_time_between(table):
    _, _, out = table
    first = out.row(0, named=True)
    assert first["sources"] == ["kube-proxy", "circleci", "coredns"]
    steps = first["sequence"]
    assert [s["source"] for s in steps] == first["sources"]
    assert steps[0]["after_previous_s"] == 0
    assert 10 * 60 <= steps[1]["after_previous_s"] <= 35 * 60
    assert steps[1]["after_previous_s"] + steps[2]["after_previous_s"] == pytest.approx(
        (steps[2]["start"] - steps[0]["start"]).total_seconds()
    )
    assert first["order"].startswith("kube-proxy at 11-04 18:00, then circleci ")
    assert "then coredns" in first["order"]


def test_detection_latency_first_sign_onset_and_ci_impact(table):
    frame, _, out = table
    first = out.row(0, named=True)
    trickle_start = frame.filter(pl.col("template") == "Sync failed")["ts"].min()
    assert first["first_anomaly_at"] == trickle_start
    assert "precursor" in first["first_anomaly"] and "Sync failed" in first["first_anomaly"]
    assert first["warning_lead_s"] == pytest.approx(
        (first["onset"] - trickle_start).total_seconds()
    )
    assert T0 + 18 * H + 15 * M <= first["ci_impact_at"] <= T0 + 18 * H + 30 * M
    assert first["ci_lag_s"] == pytest.approx(
        (first["ci_impact_at"] - first["onset"]).total_seconds()
    )
    assert "queue_delay" in first["ci_impact"]
    second = out.row(1, named=True)
    assert second["ci_impact_at"] is None and second["warning_lead_s"] < 300


def test_hosts_and_signatures_of_an_incident(table):
    _, _, out = table
    first = out.row(0, named=True)
    assert first["hosts"] == [f"node-{i}" for i in range(5)]
    assert set(first["signatures"]) == {"Sync failed", "SERVFAIL"}
    assert first["level"] == "error"


def test_an_empty_spike_table_gives_an_empty_incident_table():
    empty = spikes.describe_spikes(
        pl.DataFrame(schema=spikes.SPIKE_SCHEMA), story().head(0)
    ).with_columns(incident_id=pl.lit(None, pl.UInt32))
    out = incidents.incident_table(empty, pl.DataFrame(), bucket="5m")
    assert out.height == 0 and "onset" in out.columns


def _analysed(frame: pl.DataFrame):
    from timeline.analysis import analyze

    return analyze(frame, bucket="5m")


def test_recovery_is_when_the_incidents_own_series_are_back_not_the_next_onset():
    """A CI backlog from the first incident drains past the onset of a second, unrelated
    one: the first recovers when its own delays are back, so the two overlap."""
    day = T0 + timedelta(days=1)
    b = EventBuilder(23)
    hosts = ["node-a", "node-b", "node-c"]
    b.logs(
        source="kube-proxy",
        component="kube-proxy",
        hosts=hosts,
        template="Syncing rules",
        level="info",
        start=T0,
        end=day + 8 * H,
        per_min=0.5,
    )
    b.logs(
        source="kube-proxy",
        component="kube-proxy",
        hosts=hosts,
        template="Sync failed",
        level="error",
        start=day + 2 * H,
        end=day + 3 * H,
        per_min=4,
    )
    b.logs(
        source="rabbitmq",
        component="rabbitmq",
        hosts=["rmq-0", "rmq-1"],
        template="Error on AMQP connection",
        level="error",
        start=day + 4 * H,
        end=day + 4 * H + 40 * M,
        per_min=5,
    )
    b.jobs(
        source="circleci",
        executor="machine",
        start=T0,
        end=day + 2 * H + 10 * M,
        per_min=1,
        delay_s=(10, 40),
    )
    b.jobs(
        source="circleci",
        executor="machine",
        start=day + 2 * H + 10 * M,
        end=day + 5 * H,
        per_min=1,
        delay_s=(900, 1800),
    )
    b.jobs(
        source="circleci",
        executor="machine",
        start=day + 5 * H,
        end=day + 8 * H,
        per_min=1,
        delay_s=(10, 40),
    )
    out = _analysed(b.frame()).incidents.sort("onset")
    first, second = out.row(0, named=True), out.row(1, named=True)
    assert first["onset"] - (day + 2 * H) < 10 * M
    assert second["sources"][0] == "rabbitmq"
    assert first["recovery"] > second["onset"], "the backlog outlasts the next onset"
    assert abs(first["recovery"] - (day + 5 * H)) <= 20 * M


def test_series_recover_after_their_last_high_bucket_not_their_first_dip():
    t = lambda m: T0 + m * M  # noqa: E731
    buckets = pl.DataFrame(
        {
            "incident_id": [0] * 7 + [1] * 3 + [2] * 2,
            "series": ["errors"] * 7 + ["delay"] * 3 + ["flat"] * 2,
            "bucket": [t(m) for m in (0, 5, 10, 15, 20, 25, 30)]
            + [t(m) for m in (0, 5, 100)]
            + [t(m) for m in (40, 45)],
            "share": [0.3, 1.0, 0.02, 0.5, 0.04, 0.01, 0.0, 1.0, 0.2, 0.9, 0.0, 0.0],
        }
    ).with_columns(pl.col("bucket").cast(pl.Datetime("us", "UTC")))
    out = incidents.series_recoveries(buckets, width=5 * M, share=0.05, gap=30 * M)
    # a series never above its baseline is over after its first bucket
    assert out.sort("incident_id")["recovered"].to_list() == [t(20), t(10), t(45)]


def test_sample_incident_recovers_when_ci_delays_are_back(sample_analysis):
    """The bundled incident: onset at 18:00, recovered by 01:45 when the machine and macOS
    delays drained (not at 02:50, when the RabbitMQ episode began)."""
    out = sample_analysis.incidents.sort("onset")
    first = out.row(0, named=True)
    day = datetime(2023, 3, 14, tzinfo=UTC)
    assert abs(first["onset"] - (day + 18 * H)) <= 10 * M
    assert day + 24 * H + 45 * M <= first["recovery"] <= day + 25 * H + 45 * M
    assert first["mitigation"] <= first["recovery"]


def test_sample_rabbitmq_episodes_are_incidents_of_their_own(sample_analysis):
    out = sample_analysis.incidents.sort("onset")
    day = datetime(2023, 3, 15, tzinfo=UTC)
    rabbit = out.filter(pl.col("sources").list.first() == "rabbitmq")
    assert rabbit.height == 2
    for row, hour in zip(rabbit.iter_rows(named=True), (2, 9), strict=True):
        assert abs(row["onset"] - (day + hour * H + 50 * M)) <= 10 * M
        assert "kube-proxy" not in row["sources"]
    assert out.row(0, named=True)["recovery"] < rabbit["onset"][0]


def test_a_sparse_ci_series_that_falls_silent_leaves_the_incident():
    """macOS jobs delayed during an incident, then none for hours, then delayed again by
    something else: the incident is over when its own episode of delays ended."""
    day = T0 + timedelta(days=1)
    b = EventBuilder(31)
    hosts = ["node-a", "node-b", "node-c"]
    b.logs(
        source="kube-proxy",
        component="kube-proxy",
        hosts=hosts,
        template="Syncing rules",
        level="info",
        start=T0,
        end=day + 18 * H,
        per_min=0.5,
    )
    b.logs(
        source="kube-proxy",
        component="kube-proxy",
        hosts=hosts,
        template="Sync failed",
        level="error",
        start=day + 10 * H,
        end=day + 11 * H,
        per_min=4,
    )
    for start, end, delay in (
        (T0, day + 10 * H + 5 * M, (20, 60)),
        (day + 10 * H + 5 * M, day + 11 * H, (900, 1800)),
        (day + 13 * H + 30 * M, day + 14 * H, (3000, 5000)),
        (day + 14 * H, day + 18 * H, (20, 60)),
    ):
        b.jobs(
            source="circleci", executor="macos", start=start, end=end, per_min=0.4, delay_s=delay
        )
    first = _analysed(b.frame()).incidents.sort("onset").row(0, named=True)
    assert first["onset"] - (day + 10 * H) < 10 * M
    assert first["recovery"] <= day + 11 * H + 30 * M
    assert first["peak"] < day + 11 * H


# --- CI runners are where jobs ran, not hosts ---------------------------------------------


def _cri_kube_proxy(start: datetime, errors_from: datetime, errors_to: datetime) -> str:
    """A kube-proxy pod log: syncs every minute for ten hours, iptables-restore failing
    every few seconds between ``errors_from`` and ``errors_to``."""
    lines = []
    t = start
    while t < start + 10 * H:
        z = t.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        k = t.strftime("%m%d %H:%M:%S.%f")
        if errors_from <= t < errors_to:
            lines.append(
                f'{z} stderr F E{k}       1 proxier.go:1537] "Failed to execute iptables-restore" '
                'err="exit status 4 (iptables-restore v1.8.9 (nf_tables): line 5 failed)"'
            )
            t += timedelta(seconds=7)
        else:
            lines.append(f'{z} stderr F I{k}       1 proxier.go:820] "Syncing iptables rules"')
            t += M
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", [1, 2])
def test_ci_runners_are_not_counted_among_an_incident_s_hosts(write, tmp_path, seed):
    """Jobs failing on fourteen self-hosted runners while three nodes err: the incident is
    on the three nodes. A runner is where a job ran; the scheduler's events put two runner
    pods on a node, so their failed jobs count on that node and no other."""
    rng = random.Random(seed)
    start = datetime(2024, 6, 10 + seed, 5, 0, tzinfo=UTC)
    bad_from, bad_to = start + 8 * H, start + 8 * H + 40 * M
    cluster = rng.choice(("ci", "build"))
    nodes = [f"gke-{cluster}-runners-5f1b7c6a-{rng.choice('bcdfg')}{i}x{i}" for i in range(3)]
    for node in nodes:
        pod = f"kube-proxy-{rng.randrange(10**4, 10**5)}"
        folder = (
            f"logs/nodes/{node}/var/log/pods/kube-system_{pod}_5a273e8f-302e-44aa-854e-0bbc490164f1"
        )
        write(f"{folder}/kube-proxy/0.log", _cri_kube_proxy(start, bad_from, bad_to))
    runners = [f"arc-runner-set-7x9kq-runner-{rng.randrange(10**4, 10**5)}" for _ in range(14)]
    jobs, t, job_id = [], start, 9000
    while t < start + 10 * H:
        broken = bad_from <= t < bad_to
        job_id += 1
        done = t + timedelta(seconds=40 if broken else 200)
        jobs.append(
            {
                "id": job_id,
                "run_id": 700 + job_id,
                "workflow_name": "CI",
                "name": "build",
                "status": "completed",
                "conclusion": "failure" if broken else "success",
                "created_at": f"{t:%Y-%m-%dT%H:%M:%SZ}",
                "started_at": f"{t + timedelta(seconds=5):%Y-%m-%dT%H:%M:%SZ}",
                "completed_at": f"{done:%Y-%m-%dT%H:%M:%SZ}",
                "labels": ["arc-runner-set"],
                "runner_id": job_id % 50,
                "runner_name": rng.choice(runners) if broken else "GitHub Actions 3",
                "runner_group_name": "Default",
            }
        )
        t += timedelta(minutes=1 if not broken else 0.5)
    write("logs/github/jobs.json", json.dumps({"total_count": len(jobs), "jobs": jobs}, indent=2))
    tied = {runners[0]: nodes[1], runners[1]: nodes[1]}
    events = [
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod}.17d8a", "namespace": "arc-runners"},
            "involvedObject": {"kind": "Pod", "namespace": "arc-runners", "name": pod},
            "reason": "Scheduled",
            "message": f"Successfully assigned arc-runners/{pod} to {node}",
            "source": {"component": "default-scheduler"},
            "firstTimestamp": f"{bad_from - M:%Y-%m-%dT%H:%M:%SZ}",
            "lastTimestamp": f"{bad_from - M:%Y-%m-%dT%H:%M:%SZ}",
            "count": 1,
            "type": "Normal",
        }
        for pod, node in tied.items()
    ]
    write("logs/k8s/events.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": events}))
    loaded = timeline.read(tmp_path / "logs", cache=False)
    analysis = timeline.analyze(loaded)
    ci = analysis.spikes.filter(pl.col("source") == "github-actions")
    assert ci.height >= 1
    incident = analysis.incidents.filter(pl.col("incident_id") == ci["incident_id"][0]).row(
        0, named=True
    )
    assert set(incident["hosts"]) == set(nodes) and incident["n_hosts"] == 3
    assert set(ci["hosts"].explode().drop_nulls()) <= {nodes[1]}
    jobs = rates.jobs(loaded.events)
    assert jobs.filter(pl.col("runner_name").is_in(runners))["host"].null_count() == (
        jobs.filter(pl.col("runner_name").is_in(runners)).height
    )
    found = timeline.findings(loaded, analysis)["incidents"]
    what = next(i for i in found if i["number"] == incident["incident_id"] + 1)["story"][0]
    assert what["label"] == "what happened" and what["text"].endswith("on 3 hosts.")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_programs_that_log_alike_are_told_apart_in_the_order_they_spiked(tmp_path, seed):
    """Two services written with one Go logger: the incident names each as a source, the
    one that failed first first, not the logger's family for both."""
    rng = random.Random(seed)
    first, second = rng.sample(["payments-api", "ledger", "orders-worker", "search", "cart"], 2)
    start = datetime(2025, rng.randrange(1, 12), rng.randrange(1, 28), 6, tzinfo=UTC)
    onset = start + rng.randrange(100, 140) * M
    uid = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"

    def lines(at: datetime, fails_from: datetime, writes) -> list[str]:
        out = []
        while at < start + 4 * H:
            failing = fails_from <= at < fails_from + 20 * M
            record = {"level": "error" if failing else "info", "ts": at.timestamp()}
            record["msg"] = "upstream call failed" if failing else "request served"
            out.append(writes(at, json.dumps(record)))
            at += timedelta(seconds=rng.uniform(4, 6) if failing else rng.uniform(20, 40))
        return out

    for program, fails_from in ((first, onset), (second, onset + rng.randrange(3, 6) * M)):
        if seed % 2:
            name = f"logs/{program}.log"
            rows = lines(start, fails_from, lambda _, line: line)
        else:
            name = f"logs/node-{seed}/var/log/pods/shop_{program}-5d8f7b9c6-x7k2q_{uid}/app/0.log"
            rows = lines(
                start, fails_from, lambda at, line: f"{at:%Y-%m-%dT%H:%M:%S.%fZ} stderr F {line}"
            )
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(rows) + "\n")
    loaded = timeline.read(tmp_path / "logs", cache=False)
    analysis = timeline.analyze(loaded)
    assert analysis.incidents.height == 1
    incident = analysis.incidents.row(0, named=True)
    assert incident["sources"] == [first, second]
    assert incident["order"].startswith(f"{first} at ")


# --- an incident still going when the logs end -------------------------------------------


def _kube_proxy_log(
    start: datetime, end: datetime, errors_from: datetime, errors_to: datetime, rng
):
    """A kube-proxy pod log from ``start`` to ``end``: a sync a minute, iptables-restore
    failing every few seconds between ``errors_from`` and ``errors_to``."""
    lines, t = [], start
    while t < end:
        z, k = t.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"), t.strftime("%m%d %H:%M:%S.%f")
        if errors_from <= t < errors_to:
            lines.append(
                f'{z} stderr F E{k}       1 proxier.go:1537] "Failed to execute iptables-restore" '
                'err="exit status 4 (iptables-restore v1.8.9 (nf_tables): line 5 failed)"'
            )
            t += timedelta(seconds=rng.uniform(3, 9))
        else:
            lines.append(f'{z} stderr F I{k}       1 proxier.go:820] "Syncing iptables rules"')
            t += timedelta(seconds=rng.uniform(50, 70))
    return "\n".join(lines) + "\n"


def _incident_of(tmp_path, seed: int, *, stops_before_end: timedelta | None):
    rng = random.Random(seed)
    start = datetime(
        2024, rng.randrange(1, 12), rng.randrange(1, 28), rng.randrange(0, 12), tzinfo=UTC
    )
    end = start + rng.randrange(5, 8) * H
    errors_from = end - rng.randrange(50, 100) * M
    errors_to = end if stops_before_end is None else end - stops_before_end
    for node in rng.sample(["ip-10-0-1-17", "ip-10-0-2-33", "ip-10-0-3-9", "worker-7"], 2):
        path = tmp_path / "logs" / node / f"kube-proxy-{node[-2:]}x7k2q.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_kube_proxy_log(start, end, errors_from, errors_to, rng))
    loaded = timeline.read(tmp_path / "logs", cache=False)
    analysis = timeline.analyze(loaded)
    return loaded, analysis, errors_from, end


@pytest.mark.parametrize("seed", [3, 4])
def test_errors_that_last_to_the_end_of_the_logs_are_not_a_recovery(tmp_path, seed):
    """Logs collected while iptables-restore still fails: the incident has no recovery,
    it is ongoing until the end of the logs, and every output says so."""
    from timeline.outputs.findings import findings, schema
    from timeline.outputs.report import render

    loaded, analysis, errors_from, end = _incident_of(tmp_path, seed, stops_before_end=None)
    assert analysis.incidents.height == 1
    inc = analysis.incidents.row(0, named=True)
    assert inc["ongoing"] is True
    assert inc["recovery"] is None
    assert end - 2 * M <= inc["logs_end"] <= end + M
    assert abs(inc["onset"] - errors_from) < 5 * M
    assert inc["duration_s"] == pytest.approx((inc["logs_end"] - inc["onset"]).total_seconds())
    assert inc["mitigation"] is None or inc["mitigation"] < inc["logs_end"]
    found = findings(loaded, analysis, title="Ongoing")
    item = found["incidents"][0]
    assert item["ongoing"] is True
    assert item["times"]["recovery"] is None
    assert item["times"]["logs_end"] is not None
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(render(found, format="json")), schema())
    md = render(found, format="md")
    logs_end = f"{inc['logs_end']:%Y-%m-%d %H:%M}"
    assert f"not recovered by the end of the logs at {logs_end} UTC; at least" in md
    assert "**recovered:**" not in md
    assert f"to the end of the logs at {logs_end} UTC, not recovered" in md
    assert f"| {logs_end} | end of the logs: not recovered by then |" in md
    html = render(found, format="html")
    assert f"not recovered by the end of the logs at {logs_end} UTC; at least" in html
    title = analysis.summary_lines()[1][1]
    assert f"to the end of the logs at {logs_end} UTC, not recovered by then (at least" in title


@pytest.mark.parametrize("seed", [3, 4])
def test_the_same_errors_stopped_well_before_the_end_recover(tmp_path, seed):
    """The same failures ending half an hour before the logs do: recovered, when they ended."""
    from timeline.outputs.findings import findings
    from timeline.outputs.report import render

    loaded, analysis, _, end = _incident_of(tmp_path, seed, stops_before_end=30 * M)
    inc = analysis.incidents.row(0, named=True)
    assert inc["ongoing"] is False
    assert inc["logs_end"] is None
    assert abs(inc["recovery"] - (end - 30 * M)) < 3 * M
    md = render(findings(loaded, analysis, title="Recovered"), format="md")
    assert f"**recovered:** {inc['recovery']:%Y-%m-%d %H:%M} UTC" in md
    assert "not recovered by the end of the logs" not in md
    assert "**ongoing:**" not in md


def test_a_ci_queue_delay_still_high_at_the_end_is_ongoing():
    """Jobs wait half an hour from 10:00 until the last job queued: the delay has not
    recovered; the same delays back to seconds an hour before the end have."""
    day = T0 + timedelta(days=1)
    results = {}
    for back in (False, True):
        b = EventBuilder(47)
        b.logs(
            source="kube-proxy",
            component="kube-proxy",
            hosts=["node-a", "node-b"],
            template="Syncing rules",
            level="info",
            start=T0,
            end=day + 12 * H,
            per_min=0.5,
        )
        late_until = day + 11 * H if back else day + 12 * H
        spans = [(T0, day + 10 * H, (20, 60)), (day + 10 * H, late_until, (1500, 2400))]
        if back:
            spans.append((late_until, day + 12 * H, (20, 60)))
        for s, e, delay in spans:
            b.jobs(
                source="gitlab-ci", executor="docker", start=s, end=e, per_min=0.5, delay_s=delay
            )
        results[back] = _analysed(b.frame()).incidents.sort("onset").row(-1, named=True)
    going, recovered = results[False], results[True]
    assert going["ongoing"] is True and going["recovery"] is None
    assert going["logs_end"] >= day + 11 * H + 50 * M
    assert going["onset"] - (day + 10 * H) < 15 * M
    assert recovered["ongoing"] is False
    assert recovered["recovery"] <= day + 11 * H + 30 * M


@pytest.mark.parametrize(
    ("seed", "per_min", "bucket"), [(1, 6, "30s"), (2, 20, "10s"), (3, 3, "1m")]
)
def test_a_steady_flood_is_mitigated_when_it_ends_not_at_its_first_dip(seed, per_min, bucket):
    """Fine buckets of a steady flood hold a Poisson count each: some dip below half of
    the busiest, which is noise, not the trouble lessening. Mitigation is when the flood
    stays below half, here its end; a flood that halves midway is mitigated there."""
    b = EventBuilder(seed)
    errors = dict(source="coredns", component="coredns", hosts=["node-1", "node-2"])
    b.logs(
        **errors,
        template="read udp: i/o timeout",
        level="error",
        start=T0,
        end=T0 + 6 * H,
        per_min=0.02,
    )
    flood_start, flood_end = T0 + 4 * H, T0 + 4 * H + 50 * M
    b.logs(
        **errors,
        template="SERVFAIL",
        level="error",
        start=flood_start,
        end=flood_end,
        per_min=per_min,
    )
    halved_at = T0 + 5 * H + 20 * M
    b.logs(
        **errors,
        template="NXDOMAIN",
        level="error",
        start=T0 + 5 * H,
        end=halved_at,
        per_min=per_min,
    )
    b.logs(
        **errors,
        template="NXDOMAIN",
        level="error",
        start=halved_at,
        end=T0 + 5 * H + 40 * M,
        per_min=per_min / 10,
    )
    frame = b.frame()
    analysis = timeline.analyze(frame, bucket=bucket, gap="5m")
    first, second = analysis.incidents.sort("onset").iter_rows(named=True)
    assert first["peak"] < flood_end - 5 * M
    assert flood_end - 5 * M <= first["mitigation"] <= flood_end + 2 * M
    assert halved_at - 5 * M <= second["mitigation"] <= halved_at + 2 * M

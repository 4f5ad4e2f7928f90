"""``analyze``: the whole story from an event frame, on two differently shaped synthetic
incidents and on the bundled sample logs, and the result object a notebook shows."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.scenarios import EventBuilder, Scenario, ingress_scenario, reference_scenario
from timeline.analysis import Analysis, analyze
from timeline.schema import EVENT_SCHEMA, empty

MIN = timedelta(minutes=1)
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(os.environ.get("TIMELINE_SAMPLE", ROOT / "sample_logs" / "circleci-2023-03-14"))
EXPECTED = SAMPLE.with_name(SAMPLE.name + ".EXPECTED.json")


def incident_near(result: Analysis, onset: datetime, within: timedelta = 10 * MIN) -> dict:
    near = [r for r in result.incidents.to_dicts() if abs(r["onset"] - onset) <= within]
    assert len(near) == 1, (onset, result.incidents.select("incident_id", "onset"))
    return near[0]


def ranked(result: Analysis, incident: dict) -> list[dict]:
    table = result.contributors.filter(pl.col("incident_id") == incident["incident_id"])
    return table.sort("rank").to_dicts()


def change_near(rows: list[dict], target: str, at: datetime, within: timedelta) -> dict:
    hits = [r for r in rows if target in r["target"] and abs(r["ts"] - at) <= within]
    assert hits, (target, at, [(r["target"], r["ts"]) for r in rows])
    return hits[0]


# --- the reference shape, synthetic -------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> tuple[Scenario, Analysis]:
    scenario = reference_scenario()
    return scenario, analyze(scenario.frame)


def test_reference_onset_and_trigger(reference):
    scenario, result = reference
    expect = scenario.expect
    incident = incident_near(result, expect["onset"])
    rows = ranked(result, incident)
    at, target, change_type = expect["upgrade"]
    assert (rows[0]["target"], rows[0]["change_type"]) == (target, change_type)
    assert abs(rows[0]["ts"] - at) <= 5 * MIN
    assert rows[0]["role"] == "trigger"


def test_reference_precursor_names_the_rollback(reference):
    scenario, result = reference
    incident = incident_near(result, scenario.expect["onset"])
    at, target, change_type = scenario.expect["rollback"]
    rollback = result.changes.filter(pl.col("change_id") == incident["precursor_change_id"])
    assert rollback.row(0, named=True)["change_type"] == change_type
    assert rollback.row(0, named=True)["ts"] == at
    assert incident["precursor_start"] - at < timedelta(hours=1)
    row = change_near(ranked(result, incident), target, at, MIN)
    assert row["role"] == "precursor"
    assert set(row["precursor_hosts"]) <= {h for h in scenario.expect["trickle_hosts"]}
    # the first sign came a day before the onset
    assert incident["first_anomaly_at"] == incident["precursor_start"]
    assert incident["warning_lead_s"] > 20 * 3600


def test_reference_dns_restarts_made_it_worse_and_node_reboots_mitigated(reference):
    scenario, result = reference
    incident = incident_near(result, scenario.expect["onset"])
    rows = ranked(result, incident)
    for target in scenario.expect["worse"]:
        assert [r["role"] for r in rows if r["target"] == target] == ["made worse"]
    for target in scenario.expect["mitigations"]:
        assert [r["role"] for r in rows if r["target"] == target] == ["mitigation"]


def test_reference_decoy_stays_low_and_says_why(reference):
    scenario, result = reference
    incident = incident_near(result, scenario.expect["onset"])
    rows = ranked(result, incident)
    assert scenario.expect["decoy"] not in [r["target"] for r in rows[:3]]
    decoy = next(r for r in rows if r["target"] == scenario.expect["decoy"])
    assert decoy["role"] == "unrelated" and decoy["score"] == 0
    assert any("not a source or component" in s for s in decoy["evidence"])


def test_reference_rabbitmq_episodes_are_separate_and_tied_to_their_restarts(reference):
    scenario, result = reference
    first = incident_near(result, scenario.expect["onset"])
    for onset, restart in zip(
        scenario.expect["rabbit"], scenario.expect["rabbit_changes"], strict=True
    ):
        incident = incident_near(result, onset)
        assert incident["incident_id"] != first["incident_id"]
        assert incident["sources"][0] == "rabbitmq"
        top = ranked(result, incident)[0]
        assert "rabbitmq" in top["target"] and top["change_type"] == "restart"
        assert top["ts"] == restart and top["role"] == "trigger"


def test_reference_order_and_detection_latency(reference):
    scenario, result = reference
    incident = incident_near(result, scenario.expect["onset"])
    assert incident["sources"][0] == "kube-proxy"
    assert incident["sources"].index("coredns") > incident["sources"].index("circleci")
    assert incident["ci_impact_at"] >= incident["onset"] - 5 * MIN
    assert incident["ci_lag_s"] < 30 * 60
    assert incident["onset"] < incident["mitigation"] <= incident["recovery"]


# --- a different shape: 2025, ingress config, some hosts only -----------------------------


@pytest.fixture(scope="module")
def ingress() -> tuple[Scenario, Analysis]:
    scenario = ingress_scenario()
    return scenario, analyze(scenario.frame)


def test_ingress_one_incident_with_its_onset(ingress):
    scenario, result = ingress
    incident = incident_near(result, scenario.expect["onset"])
    assert result.incidents.filter(pl.col("level") == "error").height == 1
    assert sorted(incident["hosts"]) == scenario.expect["pushed"]


def test_ingress_the_push_ranks_first_on_the_cohort_of_touched_hosts(ingress):
    scenario, result = ingress
    incident = incident_near(result, scenario.expect["onset"])
    rows = ranked(result, incident)
    at, target, change_type = scenario.expect["push"]
    top = rows[0]
    assert (top["target"], top["change_type"], top["role"]) == (target, change_type, "trigger")
    assert abs(top["ts"] - at) <= MIN
    assert top["untouched_hosts"] == 3 and top["untouched_after"] == 0
    assert top["cohort_bits"] > 5
    # only the push and its rollback are tied to the 502s; every decoy ranks below them
    for decoy in scenario.expect["decoys"]:
        row = next(r for r in rows if r["target"] == decoy)
        assert row["rank"] > 2 and row["score"] <= 0
        assert row["role"] in ("unrelated", "no clear effect")


def test_ingress_the_rollback_is_the_mitigation(ingress):
    scenario, result = ingress
    incident = incident_near(result, scenario.expect["onset"])
    at, target = scenario.expect["rollback"]
    row = change_near(ranked(result, incident), target, at, MIN)
    assert row["change_type"] == "rollback" and row["role"] == "mitigation"
    assert incident["first_mitigation_change_id"] == row["change_id"]


def test_ingress_the_controller_restart_elsewhere_is_cleared_by_the_cohort(ingress):
    scenario, result = ingress
    incident = incident_near(result, scenario.expect["onset"])
    restart = next(r for r in ranked(result, incident) if r["target"].startswith("pod/"))
    assert restart["name_match"] and restart["shared_hosts"] == []
    assert restart["cohort_bits"] < -3 and restart["score"] < 0
    assert any("touched hosts got better than the others" in s for s in restart["evidence"])


# --- the result object ---------------------------------------------------------------------


def test_tables_convert_to_pandas(ingress):
    _, result = ingress
    for table in (result.spikes, result.incidents, result.contributors):
        frame = table.to_pandas()
        assert len(frame) == table.height and list(frame.columns) == table.columns


def test_the_summary_tells_the_story_in_text(reference):
    scenario, result = reference
    text = str(result)
    assert text.startswith("3 incidents")
    assert "Incident 1: 2023-03-14 18:00" in text and "Incident 0" not in text
    assert "#1 trigger: 2023-03-14 17:40 upgrade daemonset/kube-system/kube-proxy" in text
    assert "precursor: 2023-03-13 14:00 rollback daemonset/kube-system/kube-proxy" in text
    assert "mitigated by " in text and "considered, no evidence: " in text
    assert "1 hosts" not in text and "host(s)" not in text
    assert repr(result).startswith("Analysis(3 incidents")
    lines = text.splitlines()
    assert len(lines) < 30 and max(len(line) for line in lines) < 160


def test_the_html_summary_escapes_log_text():
    b = EventBuilder(seed=1)
    start = datetime(2025, 1, 6, tzinfo=UTC)
    hosts = ["web-1", "web-2"]
    b.logs(
        source="web",
        component="web",
        hosts=hosts,
        template="ok",
        level="info",
        start=start,
        end=start + timedelta(hours=12),
        per_min=0.5,
    )
    b.logs(
        source="web",
        component="web",
        hosts=hosts,
        template="<script>alert(1)</script> & <b>boom</b>",
        level="error",
        start=start + timedelta(hours=10),
        end=start + timedelta(hours=11),
        per_min=5,
    )
    b.change(start + timedelta(hours=9, minutes=58), "deploy", "deployment/prod/web<img>")
    html = analyze(b.frame())._repr_html_()
    assert "<script>" not in html and "<img>" not in html and "<b>boom" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;boom" in html
    assert html.startswith("<div") and html.rstrip().endswith("</div>")


def test_analyze_takes_a_lazy_frame_a_loaded_result_and_a_fixed_bucket(ingress):
    scenario, result = ingress

    @dataclass
    class Loaded:
        events: pl.DataFrame

    from_lazy = analyze(scenario.frame.lazy())
    from_loaded = analyze(Loaded(scenario.frame))
    assert from_lazy.incidents.equals(result.incidents)
    assert from_loaded.contributors.equals(result.contributors)
    minute = analyze(scenario.frame, bucket="1min")
    assert minute.bucket == "1min"
    assert all(t.second == 0 for t in minute.spikes["start"])
    steps = minute.series.select(pl.col("bucket").diff().over("series").drop_nulls())
    assert steps["bucket"].min() == timedelta(minutes=1)
    with pytest.raises(TypeError, match="event frame"):
        analyze({"not": "a frame"})


def test_an_empty_frame_finds_nothing_and_still_shows_itself():
    result = analyze(empty())
    assert result.incidents.height == result.spikes.height == result.contributors.height == 0
    assert str(result).startswith("0 incidents")
    assert "0 incidents" in result._repr_html_()
    assert json.dumps(result.to_dict(), default=str)


# --- the bundled sample ---------------------------------------------------------------------

needs_sample = pytest.mark.skipif(
    not (SAMPLE.is_dir() and EXPECTED.is_file()), reason="sample logs not generated"
)


@pytest.fixture(scope="module")
def sample() -> tuple[dict, Analysis]:
    import timeline

    truth = json.loads(EXPECTED.read_text())
    return truth, analyze(timeline.load(SAMPLE))


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected_changes(truth: dict, role: str, incident: str | None = "kube-proxy-sync"):
    return [c for c in truth["changes"] if c["role"] == role and c["incident"] == incident]


@needs_sample
def test_sample_incident_onset_and_trigger(sample):
    truth, result = sample
    incident = incident_near(result, when(truth["incidents"][0]["onset"]))
    top = ranked(result, incident)[0]
    (trigger,) = expected_changes(truth, "triggered-incident")
    assert top["change_type"] == trigger["type"]
    assert "kube-proxy" in top["target"]
    assert abs(top["ts"] - when(trigger["time"])) <= 5 * MIN


@needs_sample
def test_sample_precursor_starts_at_the_rollback(sample):
    truth, result = sample
    incident = incident_near(result, when(truth["incidents"][0]["onset"]))
    (rollback,) = expected_changes(truth, "precursor-start")
    named = result.changes.filter(pl.col("change_id") == incident["precursor_change_id"])
    assert named["change_type"][0] == "rollback"
    assert abs(named["ts"][0] - when(rollback["time"])) <= 5 * MIN
    trickle = when(truth["incidents"][0]["precursor_start"])
    assert abs(incident["precursor_start"] - trickle) <= 15 * MIN
    assert abs(incident["first_anomaly_at"] - trickle) <= 15 * MIN


@needs_sample
def test_sample_dns_restarts_made_it_worse_and_node_reboots_mitigated(sample):
    truth, result = sample
    incident = incident_near(result, when(truth["incidents"][0]["onset"]))
    rows = ranked(result, incident)
    for change in expected_changes(truth, "made-worse"):
        row = change_near(rows, change["target"], when(change["time"]), 5 * MIN)
        assert row["role"] == "made worse", row["evidence"]
    reboots = [c for c in expected_changes(truth, "mitigation") if c["target"].startswith("node/")]
    assert len(reboots) >= 2
    for change in reboots:
        row = change_near(rows, change["target"], when(change["time"]), 10 * MIN)
        assert row["role"] == "mitigation", row["evidence"]


@needs_sample
def test_sample_change_log_remediations_in_words_are_mitigations(sample):
    """ "Rolling reboot of all remaining nodes" names no node and "Restarted the
    machine/macOS provisioning pool" names a Deployment the logs do not show: their words
    tie them to the nodes and to the CI executors whose errors and delays they ended."""
    truth, result = sample
    incident = incident_near(result, when(truth["incidents"][0]["onset"]))
    rows = ranked(result, incident)
    rolling = [r for r in rows if r["target"] == "nodes/all" and r["change_type"] == "restart"]
    assert [r["role"] for r in rolling] == ["mitigation"], [r["evidence"] for r in rolling]
    assert rolling[0]["touched_hosts"] >= 8 and rolling[0]["stopped_hosts"] >= 8
    pool = change_near(rows, "vm-provisioner", when("2023-03-15T00:50:00Z"), 5 * MIN)
    assert pool["role"] == "mitigation", pool["evidence"]
    assert set(pool["shared_hosts"]) == {"machine", "macos"}


@needs_sample
def test_sample_ranked_changes_quote_the_error_lines_behind_them(sample):
    truth, result = sample
    incident = incident_near(result, when(truth["incidents"][0]["onset"]))
    top = ranked(result, incident)[0]
    assert top["lines_after"] and top["lines_before"]
    for line in top["lines_after"]:
        assert line["ts"] >= top["ts"] and "kube-proxy" in line["file"]
        assert (SAMPLE.parent / line["file"]).exists() or Path(line["file"]).exists()


@needs_sample
def test_sample_decoys_are_not_in_the_top_three(sample):
    truth, result = sample
    incident = incident_near(result, when(truth["incidents"][0]["onset"]))
    top = ranked(result, incident)[:3]
    for decoy in expected_changes(truth, "unrelated", None):
        assert all(decoy["target"] not in r["target"] for r in top)


@needs_sample
def test_sample_rabbitmq_episodes_are_separate_and_tied_to_restarts(sample):
    truth, result = sample
    first = incident_near(result, when(truth["incidents"][0]["onset"]))
    for expected in truth["incidents"][1:]:
        incident = incident_near(result, when(expected["onset"]))
        assert incident["incident_id"] != first["incident_id"]
        assert "rabbitmq" in incident["sources"]
        top = ranked(result, incident)[0]
        assert top["change_type"] == "restart" and "rabbit" in top["target"]
        assert timedelta(0) <= incident["onset"] - top["ts"] <= 15 * MIN


@needs_sample
def test_sample_detection_latency(sample):
    truth, result = sample
    incident = incident_near(result, when(truth["incidents"][0]["onset"]))
    assert incident["first_anomaly_at"] < incident["onset"] - timedelta(hours=12)
    assert incident["ci_impact_at"] is not None
    assert timedelta(0) <= incident["ci_impact_at"] - incident["onset"] <= 30 * MIN


def test_the_analysis_of_the_rows_it_keeps_is_the_analysis_of_every_row(
    sample_loaded, sample_analysis
):
    """The CLI analyses :func:`timeline.analysis.analysis_frame` of the store (problems,
    changes and jobs whole, one row per program, host, signature and hour of the rest,
    file names as categories), not every row: every table of the analysis is the same."""
    from timeline.analysis import analysis_frame

    kept = analysis_frame(sample_loaded.scan())
    assert kept.height < sample_loaded.events.height / 2
    found = analyze(kept)
    tables = ["incidents", "spikes", "contributors", "spike_contributors", "changes", "diffs"]
    for name in [*tables, "series", "job_rates"]:
        assert getattr(found, name).equals(getattr(sample_analysis, name)), name


def test_the_analysis_gives_the_ci_job_rates_of_every_job_per_source_and_executor(
    sample_loaded, sample_analysis
):
    from timeline.analysis import rates

    expected = rates.job_rates(sample_loaded.events, bucket=sample_analysis.bucket)
    assert sample_analysis.job_rates["jobs"].sum() > 0
    assert sample_analysis.job_rates.equals(expected)


def test_a_read_or_a_scan_is_analysed_without_holding_every_row(tmp_path, sample_analysis):
    """``analyze(loaded)`` and ``analyze(timeline.scan(store))`` read only the rows the
    analysis keeps, and find what the analysis of every row finds."""
    import timeline
    from sample_logs import SAMPLE_DIR

    loaded = timeline.read(SAMPLE_DIR, store=tmp_path / "events")
    found = {"read": analyze(loaded), "scan": analyze(timeline.scan(tmp_path / "events"))}
    assert not loaded.in_memory
    for how, analysis in found.items():
        for name in ["incidents", "spikes", "contributors", "spike_contributors", "series"]:
            assert getattr(analysis, name).equals(getattr(sample_analysis, name)), (how, name)


def test_the_kept_rows_keep_the_span_of_the_data(tmp_path):
    """The rows that are not counted are kept one per program, host, signature and hour,
    and the first and last of them too: a log whose last lines are info lines, late in
    their hour, gives the series every row gives, to its last bucket."""
    import timeline
    from timeline.analysis import analysis_frame

    lines = []
    for minute in range(0, 170):
        hour, m = divmod(minute, 60)
        stamp = f"I0314 {18 + hour:02d}:{m:02d}:07.000000       1 proxier.go:823]"
        lines.append(f'{stamp} "Syncing iptables rules" ip={minute % 7}')
        if 20 <= minute < 50:
            for k in range(minute % 5 + (20 if 35 <= minute < 40 else 0)):
                lines.append(
                    f"E0314 {18 + hour:02d}:{m:02d}:{10 + k % 40:02d}.000000       1 "
                    f'proxier.go:1508] "Failed to execute iptables-restore" err="exit {k}"'
                )
    (tmp_path / "kube-proxy.log").write_text("\n".join(lines) + "\n")
    loaded = timeline.read(tmp_path / "kube-proxy.log", year=2023, store=tmp_path / "events")
    kept = analysis_frame(loaded.scan())
    assert kept["ts"].max() == loaded.events["ts"].max()
    found, every = analyze(kept), analyze(loaded.events)
    assert found.series.equals(every.series) and found.spikes.equals(every.spikes)


def test_the_row_kept_for_an_hour_is_one_row_whichever_order_the_rows_come_in():
    """Two logs of one program on one host (a pod's log and its rotated one) share their
    line numbers: the row kept for their hour is the same whichever file is read first,
    and its time, file and line are one row's."""
    from timeline.analysis import analysis_frame

    rng = random.Random(7)
    start = datetime(2024, 9, 3, 6, 0, tzinfo=UTC)
    rows = []
    for name in ("kube-proxy/1.log", "kube-proxy/0.log.20240903-060512"):
        for line in range(1, 40):
            rows.append((start + timedelta(seconds=rng.randint(0, 3500)), name, line))
    frame = pl.DataFrame(rows, schema=["ts", "file", "line"], orient="row").with_columns(
        kind=pl.lit("log"),
        level=pl.lit("info"),
        source=pl.lit("klog"),
        component=pl.lit("kube-proxy"),
        host=pl.lit("ip-10-0-3-17.ec2.internal"),
        template=pl.lit("Syncing iptables rules"),
        message=pl.lit("Syncing iptables rules"),
        attrs=pl.lit("{}"),
    )
    frame = frame.select(list(EVENT_SCHEMA)).cast(EVENT_SCHEMA)
    kept = [analysis_frame(frame), analysis_frame(frame.reverse())]
    assert kept[0].equals(kept[1])
    given = set(frame.select("ts", "file", "line").iter_rows())
    assert set(kept[0].select("ts", pl.col("file").cast(pl.String), "line").iter_rows()) <= given


def test_a_notebook_works_out_the_kept_rows_once_for_analysis_figures_and_report(tmp_path, spy):
    """``analyze(loaded)``, ``timeline_figure(loaded, ...)``, ``host_figure(loaded, ...)``,
    ``findings`` and ``write_report`` of one read work out the rows the analysis keeps
    once between them, never read every row, and draw what every row draws."""
    import timeline
    import timeline.analysis.run as run
    from sample_logs import SAMPLE_DIR

    worked_out = spy(run, "analysis_frame")
    loaded = timeline.read(SAMPLE_DIR, store=tmp_path / "events", cache=False)
    result = timeline.analyze(loaded)
    figure = timeline.timeline_figure(loaded, result)
    incident = int(result.incidents["incident_id"][0])
    hosts = timeline.host_figure(loaded, result, incident)
    timeline.findings(loaded, result)
    timeline.write_report(loaded, result, tmp_path / "report.html")
    assert len(worked_out) == 1
    assert not loaded.in_memory
    assert hosts is not None
    assert figure.to_json() == timeline.timeline_figure(loaded.events, result).to_json()
    assert hosts.to_json() == timeline.host_figure(loaded.events, result, incident).to_json()


def test_the_analysis_of_a_read_is_kept_in_its_cache(tmp_path, spy):
    """``analyze(loaded)`` of a read made with the cache keeps the analysis of all its
    data there: the same logs read again (another session) are not analysed again, in
    any window, and give what an analysis without the cache gives; an event store opened
    with the cache likewise; other options are analysed anew."""
    import timeline
    import timeline.analysis.run as run
    from sample_logs import SAMPLE_DIR

    cache = tmp_path / "cache"
    since = "2023-03-14 17:00"
    analysed = spy(run, "_analyze_all")
    timeline.analyze(timeline.read(SAMPLE_DIR, cache=cache))
    again = timeline.read(SAMPLE_DIR, cache=cache)
    kept, windowed = timeline.analyze(again), timeline.analyze(again, since=since)
    assert len(analysed) == 1
    fresh = timeline.read(SAMPLE_DIR, cache=False)
    assert fresh.kept is None
    for found, made in ((kept, analyze(fresh)), (windowed, analyze(fresh, since=since))):
        for name in ["incidents", "spikes", "contributors", "changes", "series"]:
            assert getattr(found, name).equals(getattr(made, name)), name
        assert found.notes == made.notes
    assert len(analysed) == 3
    timeline.analyze(again, z=3.0)
    assert len(analysed) == 4

    timeline.read(SAMPLE_DIR, store=tmp_path / "events", cache=False)
    for _ in range(2):
        opened = timeline.read(tmp_path / "events", cache=cache)
        assert opened.kept
        assert timeline.analyze(opened).contributors.equals(kept.contributors)
    assert len(analysed) == 5

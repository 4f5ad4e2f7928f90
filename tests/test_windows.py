"""``since``/``until`` narrow what is reported, never the baselines or change histories."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
from typer.testing import CliRunner

from sample_logs import SAMPLE_DIR
from tests.scenarios import EventBuilder
from timeline.analysis import analyze
from timeline.cli import app

SINCE, UNTIL = "2023-03-14 17:00", "2023-03-15 03:00"
DAY = datetime(2023, 3, 14, tzinfo=UTC)
DNS = ("daemonset/kube-system/node-local-dns", "deployment/kube-system/coredns")


def _story(contributors: pl.DataFrame, incident_id: int) -> list[tuple]:
    rows = contributors.filter(pl.col("incident_id") == incident_id).sort("rank")
    return rows.select("rank", "change_id", "role").rows()


def test_a_window_tells_the_sample_story_of_the_whole_data(sample_loaded, sample_analysis):
    windowed = analyze(sample_loaded.events, since=SINCE, until=UNTIL)
    whole = sample_analysis.incidents.sort("incident_id")
    # the incidents that overlap the window, whole: the spike and the first RabbitMQ episode
    assert windowed.incidents["incident_id"].to_list() == [0, 1]
    for column in ("onset", "recovery", "peak", "spike_ids"):
        assert windowed.incidents[column].to_list() == whole[column].head(2).to_list()
    assert _story(windowed.contributors, 0) == _story(sample_analysis.contributors, 0)
    restarts = windowed.contributors.filter(
        (pl.col("incident_id") == 0)
        & pl.col("target").is_in(DNS)
        & pl.col("ts").is_between(DAY + timedelta(hours=20), DAY + timedelta(hours=20, minutes=45))
    )
    assert sorted(restarts["target"]) == sorted(DNS)
    assert set(restarts["role"]) == {"made worse"}
    assert windowed.notes == ()
    # what is reported lies in the window, or is a change ranked for a reported incident
    assert windowed.series["bucket"].min() >= datetime(2023, 3, 14, 17, tzinfo=UTC)
    ranked = set(windowed.contributors["change_id"])
    outside = windowed.changes.filter(pl.col("ts") < datetime(2023, 3, 14, 17, tzinfo=UTC))
    assert set(outside["change_id"]) <= ranked
    assert outside.height and windowed.changes.height < sample_analysis.changes.height


def test_the_cli_window_keeps_incident_0_whole_and_the_dns_restarts_worse():
    result = CliRunner().invoke(
        app, ["analyze", str(SAMPLE_DIR), "--since", SINCE, "--until", UNTIL, "--json", "-q"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    first = found["incidents"][0]
    onset = datetime.fromisoformat(first["times"]["onset"])
    recovery = datetime.fromisoformat(first["times"]["recovery"])
    assert abs(onset - (DAY + timedelta(hours=18))) <= timedelta(minutes=10)
    assert (
        DAY + timedelta(hours=24, minutes=45) <= recovery <= DAY + timedelta(hours=25, minutes=45)
    )
    assert [i["id"] for i in found["incidents"]] == ["incident-1", "incident-2"]
    ranked = first["contributors"]
    dns = [c for c in ranked if c["target"] in DNS and c["time"].startswith("2023-03-14T20:")]
    assert len(dns) == 2 and {c["role"] for c in dns} == {"made worse"}
    top = min((c for c in ranked if c["rank"] is not None), key=lambda c: c["rank"])
    assert top["target"] == "daemonset/kube-system/kube-proxy" and top["role"] == "trigger"


def test_too_little_data_before_the_window_is_said():
    start = datetime(2025, 2, 3, 6, tzinfo=UTC)
    b = EventBuilder(5)
    b.logs(
        source="kube-proxy",
        component="kube-proxy",
        hosts=["n1", "n2"],
        template="Syncing rules",
        level="info",
        start=start,
        end=start + timedelta(hours=12),
        per_min=1,
    )
    frame = b.frame()
    short = analyze(frame, since=start + timedelta(hours=3))
    (note,) = short.notes
    assert note.startswith("only 2h5") and "baselines look back 1d" in note
    assert ("line", f"note: {note}") in short.summary_lines()
    none = analyze(frame, since=start - timedelta(hours=1))
    assert "no data before the window" in none.notes[0]
    assert analyze(frame, until=start + timedelta(hours=3)).notes == ()
    assert analyze(frame).notes == ()

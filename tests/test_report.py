"""Reports: one findings schema, what they say about the sample, Markdown that pastes
anywhere, the same bytes from the same input, and log text that stays text."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from tests.conftest import HOSTILE_TEXT
from timeline import schema as event_schema
from timeline.outputs.findings import findings, schema
from timeline.outputs.report import render, report_format, write_report
from timeline.outputs.words import NO_EVIDENCE_ROLES


@pytest.fixture(scope="module")
def sample_findings(sample_loaded, sample_analysis):
    return findings(sample_loaded, sample_analysis, title="Sample")


def _story(incident):
    return {s["label"]: s["text"] for s in incident["story"]}


def test_story_names_trigger_precursor_worse_mitigation_recovery_and_detection(sample_findings):
    top = next(
        i for i in sample_findings["incidents"] if i["id"] == sample_findings["top_incident"]
    )
    story = _story(top)
    assert top["number"] == 1
    assert story["trigger"].startswith(
        "upgrade of daemonset/kube-system/kube-proxy (v1.23.17 → v1.24.10)"
    )
    assert re.search(r"errors ×\d+(\.\d)? on the 12 hosts it touched", story["trigger"])
    assert story["precursor"].startswith("rollback of daemonset/kube-system/kube-proxy")
    assert "node-local-dns" in story["made it worse"]
    assert "reboot" in story["mitigated by"]
    # back to baseline at about 01:15 to 01:30 (not the next incident's onset at 02:50)
    assert "2023-03-15 00:45 UTC" <= story["recovered"][:20] <= "2023-03-15 01:45 UTC"
    assert (
        "first sign at 2023-03-13" in story["detection"]
        and "CI users felt it" in story["detection"]
    )


def test_evidence_is_in_counts_and_hosts_not_bits(sample_findings):
    ranked = [c for inc in sample_findings["incidents"] for c in inc["contributors"]]
    assert ranked
    for c in ranked:
        assert c["headline"] and c["evidence"], c
        assert not any("bits" in e for e in c["evidence"]), c["evidence"]
        assert not any("host(s)" in e or re.search(r"\b1 hosts", e) for e in c["evidence"]), c[
            "evidence"
        ]
    # each masked signature is said at most once per change
    for c in ranked:
        for sig in re.findall(r"`[^`]+`", " ".join(c["evidence"])):
            assert " ".join(c["evidence"]).count(sig) <= 2, (sig, c["evidence"])


def test_changes_without_evidence_are_marked_so(sample_findings):
    ranked = [c for inc in sample_findings["incidents"] for c in inc["contributors"]]
    unsupported = [c for c in ranked if not c["evidenced"]]
    assert unsupported
    assert all(c["rank"] is None or c["role"] in NO_EVIDENCE_ROLES for c in unsupported)
    assert all(c["headline"].startswith("no evidence") for c in unsupported)


def test_the_first_contributor_quotes_the_error_lines_behind_its_figures(sample_findings):
    first = sample_findings["incidents"][0]["contributors"][0]
    after = [line for line in first["error_lines"] if line["side"] == "after"]
    assert after
    for line in after:
        assert line["file"].endswith(".log.gz") and line["line"] >= 1
        assert not line["file"].startswith("/")
        assert "iptables-restore" in line["message"] and line["time"] >= first["time"]


def test_raw_lines_have_relative_file_and_line(sample_findings):
    samples = [
        s for inc in sample_findings["incidents"] for c in inc["contributors"] for s in c["samples"]
    ]
    assert samples
    for s in samples:
        assert s["line"] >= 1 and s["message"]
        assert not s["file"].startswith("/"), s["file"]


def test_row_counts_agree_with_the_load_summary(sample_findings, sample_loaded):
    loading = sample_findings["loading"]
    assert loading["rows_read"] == int(sample_loaded.summary.files["rows"].sum())
    assert (
        loading["rows"]
        == sample_loaded.events.height
        == loading["rows_read"] + loading["rows_inferred"]
    )
    assert loading["rows_inferred"] > 0
    assert len(loading["files"]) == sample_loaded.summary.files.height
    assert sum(f["lines"] for f in loading["files"]) == loading["lines"]


def test_json_report_follows_the_shipped_schema(sample_loaded, sample_analysis, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    path = write_report(sample_loaded, sample_analysis, tmp_path / "f.json")
    data = json.loads(path.read_text())
    jsonschema.validate(data, schema())
    assert data["schema_version"] == 1
    assert [i["id"] for i in data["incidents"]] == [
        f"incident-{n}" for n in range(1, len(data["incidents"]) + 1)
    ]
    change_ids = {c["id"] for c in data["changes"]}
    assert {c["change"] for i in data["incidents"] for c in i["contributors"]} <= change_ids
    spike_ids = {s["id"] for s in data["spikes"]}
    assert {s for i in data["incidents"] for s in i["spikes"]} == spike_ids - {
        s["id"] for s in data["spikes"] if s["incident"] is None
    }
    assert data["incidents"][0]["times"]["onset"] == "2023-03-14T18:00:00Z"


def test_the_schema_refuses_times_that_are_not_iso(sample_findings):
    jsonschema = pytest.importorskip("jsonschema")
    broken = json.loads(json.dumps(sample_findings))
    broken["incidents"][0]["times"]["onset"] = "2023-03-14 18:00"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema())


def _visible_text(markdown: str) -> str:
    """What a reader sees once the Markdown is rendered: the text of the HTML, entities
    decoded."""
    import html

    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)
    return rendered, html.unescape(re.sub(r"<[^>]+>", "", rendered))


def test_markdown_pastes_anywhere(sample_findings):
    text = render(sample_findings, format="md")
    outside_code = re.sub(r"`[^`]*`", "", text)
    assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", outside_code), "HTML entity outside code"
    _, seen = _visible_text(text)
    assert "upgrade of daemonset/kube-system/kube-proxy (v1.23.17 → v1.24.10)" in seen
    assert "Failed to execute iptables-restore" in seen
    assert "A IN <NAME> SERVFAIL" in seen
    rendered, _ = _visible_text(text)
    prose = re.sub(r"<code>.*?</code>", "", rendered)  # raw log lines are shown as written
    assert "\\" not in prose
    assert "Considered, no evidence" in seen


def test_markdown_shows_hostile_text_as_text(sample_findings):
    found = json.loads(json.dumps(sample_findings))
    found["summary"] = [f"look: {HOSTILE_TEXT} | *bold* [link](http://x) &amp; #1"]
    rendered, seen = _visible_text(render(found, format="md"))
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered
    assert HOSTILE_TEXT in seen
    assert "*bold* [link](http://x) &amp; #1" in seen


def test_html_escapes_untrusted_text(sample_findings):
    found = json.loads(json.dumps(sample_findings))
    found["summary"] = [HOSTILE_TEXT]
    page = render(found, format="html", figure_html="<div id='fig'></div>")
    assert "<script>window.__pwned" not in page
    assert "&lt;script&gt;window.__pwned" in page
    assert "<div id='fig'></div>" in page


def test_hostile_report_file_is_self_contained(hostile_report):
    page = hostile_report.read_text()
    assert "<script>window.__pwned" not in page
    assert "<script src=" not in page and "<link " not in page
    assert page.count("plotly.js v") <= 2  # the library is embedded once
    assert len(page) < 15_000_000


@pytest.fixture(scope="module")
def analysed_again(sample_loaded):
    """The sample analysed a second time, from a fresh load."""
    import timeline
    from sample_logs import SAMPLE_DIR

    loaded = timeline.read(SAMPLE_DIR)
    return loaded, timeline.analyze(loaded.events)


@pytest.mark.parametrize("suffix", [".html", ".md", ".json"])
def test_same_input_gives_the_same_bytes_but_the_generation_time(
    suffix, sample_loaded, sample_analysis, analysed_again, tmp_path
):
    first = write_report(sample_loaded, sample_analysis, tmp_path / f"a{suffix}")
    again = write_report(*analysed_again, tmp_path / f"b{suffix}")
    a, b = first.read_text(), again.read_text()
    marked = re.compile(r"^.*[Gg]enerated.at.*$", re.M)
    assert len(marked.findall(a)) == 1
    assert marked.sub("", a) == marked.sub("", b)


def test_report_format_comes_from_the_suffix_or_the_flag():
    assert report_format("x.html") == "html" and report_format("X.MD") == "md"
    assert report_format("x.json") == "json" and report_format("x.pdf", "md") == "md"
    with pytest.raises(ValueError, match="cannot tell the report format from 'x.pdf'"):
        report_format("x.pdf")
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        report_format("x.html", "pdf")


def test_hover_text_is_bounded_and_uses_relative_paths(sample_loaded, sample_analysis):
    from timeline.outputs.figures import HOVER_WIDTH, host_figure, timeline_figure
    from timeline.paths import common_root

    root = common_root(sample_loaded.summary.files["file"].to_list())
    figures = [
        timeline_figure(sample_loaded.events, sample_analysis, root=root),
        host_figure(sample_loaded.events, sample_analysis, 0, root=root),
    ]
    texts = [t for fig in figures for trace in fig.data for t in (trace.hovertext or [])]
    assert len(texts) > 100
    for text in texts:
        assert root not in text and "sample_logs/" not in text, text
        for line in text.split("<br>"):
            shown = re.sub(r"&[a-z#0-9]+;", "x", re.sub(r"<[^>]+>", "", line))
            assert len(shown) <= HOVER_WIDTH, line
    assert any("changelog.csv:" in t for t in texts)


def test_lanes_count_each_bucket_with_its_commonest_template_and_earliest_line():
    """Per lane, level and bucket: the rows, the hosts, the commonest template (the first
    in order among equals) and the earliest row's ``file:line``, against a count by hand
    over rows that tie on time, template counts and hosts' short names."""
    from collections import Counter
    from datetime import UTC, datetime, timedelta

    from timeline.outputs.figures import _lane_counts

    rng = random.Random(11)
    start = datetime(2024, 3, 1, 12, tzinfo=UTC)
    rows = []
    for n in range(3000):
        rows.append(
            {
                "ts": start + timedelta(seconds=rng.randint(0, 900) // 7 * 7),
                "kind": rng.choice(["log"] * 9 + ["job"]),
                "level": rng.choice(["info", "warning", "error", "error", "critical"]),
                "host": rng.choice(["ip-10-0-1-5.ec2.internal", "ip-10-0-1-5.other", "n2", None]),
                "source": rng.choice(["kube-proxy", "coredns"]),
                "template": rng.choice(["Sync failed", "i/o timeout", "x", None]),
                "message": rng.choice(["dial tcp", "read udp"]),
                "file": rng.choice(["b.log", "a.log"]),
                "line": rng.randint(1, 40) + n,
            }
        )
    frame = pl.DataFrame(rows).with_columns(pl.col("level").cast(event_schema.LEVEL))
    lanes = _lane_counts(frame, bucket="1m", by_host=True)
    expected = {}
    for row in rows:
        if row["kind"] != "log" or row["level"] not in ("warning", "error", "critical"):
            continue
        short = (row["host"] or "?").split(".")[0]
        bucket = row["ts"].replace(second=0)
        expected.setdefault((f"{row['source']} · {short}", row["level"], bucket), []).append(row)
    assert lanes.height == len(expected)
    for lane in lanes.iter_rows(named=True):
        group = expected[(lane["lane"], lane["level"], lane["bucket"])]
        assert lane["count"] == len(group)
        assert lane["hosts"] == len({r["host"] for r in group})
        counts = Counter(r["template"] or r["message"] for r in group)
        top = max(counts.values())
        assert lane["template"] == min(t for t, c in counts.items() if c == top)
        first = min(group, key=lambda r: (r["ts"], r["file"], r["line"]))
        assert lane["example"] == f"{first['file']}:{first['line']}"


def test_host_lanes_stack_top_to_bottom_on_one_time_axis(sample_loaded, sample_analysis):
    """The host figure of the longest incident: one titled lane per host, stacked without
    overlap from the top, every lane on the bottom lane's time axis over the incident's
    window; each lane's bars count its own host's warnings and errors, and a change to
    one host is marked in that host's lane."""
    from datetime import timedelta

    from timeline.outputs.figures import host_figure

    incident = sample_analysis.incidents.sort("duration_s", descending=True).row(0, named=True)
    fig = host_figure(sample_loaded.events, sample_analysis, incident["incident_id"])
    layout = fig.layout
    lanes = [a.text for a in layout.annotations if a.xref == "paper"]
    count = len(lanes)
    assert count >= 10 and lanes == sorted(lanes)
    domains = [layout[f"yaxis{'' if i == 1 else i}"].domain for i in range(1, count + 1)]
    assert domains[0][1] == 1.0 and domains[-1][0] == pytest.approx(0.0, abs=1e-9)
    for upper, lower in zip(domains, domains[1:], strict=False):
        assert lower[1] < upper[0] and upper[0] < upper[1]
    for i in range(1, count + 1):
        axis = layout[f"xaxis{'' if i == 1 else i}"]
        assert axis.matches == (None if i == count else f"x{count}")
        assert axis.showticklabels is (None if i == count else False)
        assert axis.type == "date"
        assert list(axis.range) == [incident["onset"] - timedelta(hours=2), incident["recovery"]]
    window = sample_loaded.events.filter(
        pl.col("ts").is_between(incident["onset"] - timedelta(hours=2), incident["recovery"])
        & (pl.col("kind") == "log")
        & pl.col("level").is_in(["warning", "error", "critical"])
    ).with_columns(short=pl.col("host").str.split(".").list.first())
    for i, lane in enumerate(lanes, start=1):
        bars = [t for t in fig.data if t.yaxis == f"y{'' if i == 1 else i}"]
        assert {t.xaxis for t in bars} == {f"x{'' if i == 1 else i}"}
        assert sum(sum(t.y) for t in bars) == window.filter(pl.col("short") == lane).height
    assert [t.showlegend for t in fig.data].count(True) == len({t.name for t in fig.data})
    marks = [a for a in layout.annotations if a.xref != "paper"]
    assert marks, "the sample reboots single hosts during its longest incident"
    for mark in marks:
        lane = lanes[int(mark.xref[1:] or 1) - 1]
        assert mark.yref == f"y{mark.xref[1:]} domain"
        touched = sample_analysis.changes.filter(pl.col("ts").dt.truncate("1m") == mark.x)
        assert any(
            lane in [h.split(".")[0] for h in hosts] for hosts in touched["hosts"].to_list()
        ), (lane, mark.text)


def test_a_report_of_a_read_is_drawn_from_the_kept_rows_alike(tmp_path, sample_analysis):
    """``write_report(loaded, ...)`` of a read whose rows are not in memory draws from the
    rows the analysis keeps, as the CLI does, and writes the report that every row gives,
    in each format, without reading every row."""
    import timeline
    from sample_logs import SAMPLE_DIR

    def text(path) -> str:  # the same report written at another moment, with other div ids
        found = path.read_text(encoding="utf-8")
        found = re.sub(r'"generated_at": "[^"]*"|Generated [^<\n]*', "", found)
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "", found)

    loaded = timeline.read(SAMPLE_DIR, store=tmp_path / "events")
    for suffix in ("json", "md", "html"):
        write_report(loaded, sample_analysis, tmp_path / f"kept.{suffix}")
    assert not loaded.in_memory
    assert loaded.events.height and loaded.in_memory  # every row, now held
    for suffix in ("json", "md", "html"):
        write_report(loaded, sample_analysis, tmp_path / f"all.{suffix}")
        assert text(tmp_path / f"kept.{suffix}") == text(tmp_path / f"all.{suffix}"), suffix


def test_markdown_traces_spikes_evidence_and_mitigations_to_raw_lines(sample_findings):
    """What the Markdown report counts can be found in the logs: each spike with a raw
    line, the error lines before and after each ranked change, each mitigation's line."""
    text = render(sample_findings, format="md")
    for incident in sample_findings["incidents"]:
        for spike in (s for s in sample_findings["spikes"] if s["incident"] == incident["id"]):
            assert f"`{spike['examples'][0]}`" in text
        for c in incident["contributors"]:
            if not c["evidenced"]:
                continue
            if c["role"] == "mitigation" and c["samples"]:
                assert f"`{c['samples'][0]['file']}:{c['samples'][0]['line']}`" in text
            elif c["role"] != "mitigation":
                for line in c["error_lines"][:4]:
                    assert f"{line['side']} it: `{line['file']}:{line['line']}`" in text
    assert any(c["error_lines"] for i in sample_findings["incidents"] for c in i["contributors"])


def _github_jobs_page(*, seed: int, slow_from: datetime, slow_to: datetime) -> str:
    """A ``GET /repos/{o}/{r}/actions/runs/{id}/jobs`` page, pretty-printed as the API
    answers: a job every few minutes on self-hosted runners labelled ``gpu-pool``, each
    waiting seconds for a runner, and 15 to 28 minutes between ``slow_from`` and
    ``slow_to``."""
    rng = random.Random(seed)
    jobs, job_id = [], 31_000_000_000
    created = slow_from - timedelta(hours=5)

    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    while created < slow_to + timedelta(minutes=40):
        job_id += rng.randint(1, 30)
        slow = slow_from <= created <= slow_to
        started = created + timedelta(
            seconds=rng.uniform(900, 1700) if slow else rng.uniform(10, 45)
        )
        run = f"northwind/billing/actions/runs/{job_id // 4}"
        jobs.append(
            {
                "id": job_id,
                "run_id": job_id // 4,
                "workflow_name": "billing-ci",
                "head_branch": "main",
                "run_url": f"https://api.github.com/repos/{run}",
                "run_attempt": 1,
                "url": f"https://api.github.com/repos/northwind/billing/actions/jobs/{job_id}",
                "html_url": f"https://github.com/{run}/job/{job_id}",
                "status": "completed",
                "conclusion": "success",
                "created_at": stamp(created),
                "started_at": stamp(started),
                "completed_at": stamp(started + timedelta(seconds=rng.uniform(200, 500))),
                "name": "e2e",
                "steps": [],
                "labels": ["self-hosted", "gpu-pool"],
                "runner_id": rng.randint(1, 40),
                "runner_name": f"gpu-pool-runner-{rng.getrandbits(16):04x}",
                "runner_group_id": 1,
                "runner_group_name": "Default",
            }
        )
        created += timedelta(seconds=rng.uniform(150, 250))
    return json.dumps({"total_count": len(jobs), "jobs": jobs}, indent=2) + "\n"


def test_a_ci_spike_says_how_long_jobs_waited_and_which_job_shows_it(write):
    """The Markdown report and the terminal say which CI measure spiked and how far
    (not only the chart), and point to a job row that waited that long."""
    from typer.testing import CliRunner

    import timeline
    from timeline.analysis import analyze
    from timeline.analysis.incidents import duration_text
    from timeline.cli import app

    slow_from = datetime(2024, 9, 12, 9, 10, tzinfo=UTC)
    path = write(
        "ci/billing-jobs.json",
        _github_jobs_page(seed=3, slow_from=slow_from, slow_to=slow_from + timedelta(minutes=40)),
    )
    loaded = timeline.read(path, workers=1)
    found = findings(loaded, analyze(loaded.events))
    (spike,) = [s for s in found["spikes"] if s["metric"] == "queue_delay_p95_s"]
    said = (
        f"p95 queue delay up to {duration_text(spike['peak_value'])} against "
        f"{duration_text(spike['baseline'])} before"
    )
    assert spike["measure"] == said and spike["peak_value"] > 15 * 60 > 60 > spike["baseline"]
    text = render(found, format="md")
    (row,) = [line for line in text.splitlines() if said in line and line.startswith("| ")]
    assert row.startswith("| github-actions | `gpu-pool jobs` | " + said)
    assert f"`{spike['examples'][0]}`" in row
    # its rows are the jobs queued from its start to its end, each once
    queued = [datetime.fromisoformat(j["created_at"]) for j in json.loads(path.read_text())["jobs"]]
    start, end = (datetime.fromisoformat(spike[k].replace("Z", "+00:00")) for k in ("start", "end"))
    jobs_inside = sum(start <= t < end for t in queued)
    assert spike["rows"] == spike["count"] == jobs_inside and f" | {jobs_inside} | " in row
    detection = _story(found["incidents"][0])["detection"]
    assert f"`gpu-pool jobs`: {said} (`{spike['examples'][0]}`)" in detection
    # the job row quoted is one that waited past the baseline, where the file says so
    file, line = spike["examples"][0].rsplit(":", 1)
    lines = path.read_text().splitlines()
    job, _ = json.JSONDecoder().raw_decode("\n".join(lines[int(line) - 1 :]).lstrip())
    waited = datetime.fromisoformat(job["started_at"]) - datetime.fromisoformat(job["created_at"])
    assert file == "billing-jobs.json" and waited > timedelta(minutes=15)
    terminal = CliRunner().invoke(app, ["analyze", str(path)], env={"COLUMNS": "400"})
    assert terminal.exit_code == 0 and said in terminal.stdout


def test_the_changes_table_gives_what_each_record_says_as_written(sample_findings):
    """A change log's description (the versions people wrote, why they acted) is in the
    table of all changes, in the Markdown and in the HTML, not only the type, target and
    actor the analysis read from it; a change on one host is never 'on 1 hosts'."""
    markdown = render(sample_findings, format="md")
    table = markdown.split("## All changes", 1)[1].split("\n## ", 1)[0]
    page = render(sample_findings, format="html")
    written = [
        "Cluster upgrade step 4: kube-proxy v1.23.17 -> v1.24.10",
        "Reverted kube-proxy to v1.23.17: services missing metrics since the upgrade",
        "Enable insights-page-v2 feature flag",
    ]
    for text in written:
        (row,) = [
            line for line in table.splitlines() if text.replace(">", "\\>") in line or text in line
        ]
        assert row.startswith("| 2023-03-1")
        assert text.replace(">", "&gt;") in page
    assert all(c["note"] for c in sample_findings["changes"] if not c["inferred"])
    assert "on 1 hosts" not in markdown and "on 1 hosts" not in page

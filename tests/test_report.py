"""Reports: what they say about the sample, and that log text stays text."""

from __future__ import annotations

import json

import pytest

from tests.conftest import HOSTILE_TEXT
from timeline.outputs.report import findings, render


@pytest.fixture(scope="module")
def sample_findings(sample_loaded, sample_analysis):
    return findings(sample_loaded, sample_analysis, title="Sample")


def test_summary_names_the_upgrade_the_precursor_and_the_mitigations(sample_findings):
    summary = sample_findings["summary"]
    assert "kube-proxy" in summary
    assert "upgrade of daemonset/kube-system/kube-proxy" in summary
    assert "precursor" in summary
    assert "Mitigated by" in summary


def test_every_contributor_has_evidence_and_raw_lines_with_file_and_line(sample_findings):
    ranked = [c for inc in sample_findings["incidents"] for c in inc["contributors"]]
    assert ranked
    for c in ranked:
        assert c["evidence"], c
    with_samples = [c for c in ranked if c["samples"]]
    assert with_samples
    for c in with_samples:
        for s in c["samples"]:
            assert s["file"] and s["line"] >= 1 and s["message"]


def test_the_first_contributor_quotes_the_error_lines_behind_its_figures(sample_findings):
    first = sample_findings["incidents"][0]["contributors"][0]
    after = [line for line in first["error_lines"] if line["side"] == "after"]
    assert after
    for line in after:
        assert line["file"].endswith(".log.gz") and line["line"] >= 1
        assert "iptables-restore" in line["message"] and line["ts"] >= first["time"]


def test_appendix_accounts_for_every_file(sample_findings, sample_loaded):
    files = sample_findings["loading"]["files"]
    assert len(files) == sample_loaded.summary.files.height
    assert sum(f["lines"] for f in files) == sample_findings["loading"]["lines"]


def test_json_report_is_valid_json_with_the_same_findings(sample_findings):
    data = json.loads(render(sample_findings, format="json"))
    assert data["summary"] == sample_findings["summary"]
    assert len(data["incidents"]) == len(sample_findings["incidents"])


def test_markdown_report_has_sections_and_escapes_html(sample_findings):
    found = dict(sample_findings)
    found["summary_paragraphs"] = [HOSTILE_TEXT]
    text = render(found, format="md")
    for heading in ("## Summary", "## Incidents", "## Top error signatures", "## What was loaded"):
        assert heading in text
    assert "<script>" not in text
    assert "&lt;script&gt;" in text


def test_html_escapes_untrusted_text(sample_findings):
    found = dict(sample_findings)
    found["summary_paragraphs"] = [HOSTILE_TEXT]
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


def test_unknown_report_format_is_refused(sample_findings):
    with pytest.raises(ValueError, match="unknown report format"):
        render(sample_findings, format="pdf")

"""The HTML report in a real browser: offline, drawn, complete, and inert to hostile logs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]

SECTIONS = ["summary", "timeline", "incidents", "signatures", "changes", "appendix"]


def _screenshot_folder(tmp_path_factory) -> Path:
    """Where screenshots go: ``$TIMELINE_SCREENSHOTS`` if set (to look at them), else a
    temporary folder."""
    folder = os.environ.get("TIMELINE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser():
    """Headless chromium, one for the module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def opened(browser, hostile_report, tmp_path_factory):
    """The hostile report opened from file:// with every console message and request noted."""
    if True:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        seen = {"console_errors": [], "requests": [], "dialogs": []}
        page.on(
            "console",
            lambda m: seen["console_errors"].append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: seen["console_errors"].append(str(e)))
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
        page.goto(Path(hostile_report).as_uri())
        page.wait_for_selector("#timeline-figure .main-svg", timeout=30_000)
        shots = _screenshot_folder(tmp_path_factory)
        page.screenshot(path=str(shots / "report-top.png"))
        page.screenshot(path=str(shots / "report-full.png"), full_page=True)
        page.locator("#incident-1").screenshot(path=str(shots / "report-incident-1.png"))
        yield page, seen
        page.close()


def test_no_console_errors(opened):
    _, seen = opened
    assert seen["console_errors"] == []


def test_no_network_request_at_all(opened):
    _, seen = opened
    assert [url for url in seen["requests"] if not url.startswith("file://")] == []


def test_the_plot_is_drawn(opened):
    page, _ = opened
    assert page.locator("#timeline-figure svg.main-svg").count() >= 1
    assert page.locator("#timeline-figure g.trace").count() > 3


def test_every_section_is_present(opened):
    page, _ = opened
    for section in SECTIONS:
        assert page.locator(f"section#{section}").count() == 1, section
    assert page.locator("section#incidents .incident").count() >= 2


def test_hostile_log_text_shows_as_text_and_runs_nothing(opened):
    page, seen = opened
    assert page.evaluate("window.__pwned === undefined")
    assert seen["dialogs"] == []
    assert "<script>window.__pwned" in page.inner_text("body")
    assert page.locator("img[src=x]").count() == 0


def test_a_ci_executor_holding_html_is_plain_text_in_the_figure(opened):
    page, _ = opened
    figure = page.locator("#timeline-figure")
    assert figure.locator('a[href*="evil.example"]').count() == 0
    legend = figure.locator(".legend").first.text_content()
    assert '<a href="http://evil.example/x">X</a><b>B</b>' in legend


# --- a review document -------------------------------------------------------------------


def test_the_summary_comes_first_and_says_what_a_reviewer_would(opened):
    page, _ = opened
    first = page.locator("main section").first
    assert first.get_attribute("id") == "summary"
    labels = first.locator("dl.story dt").all_inner_texts()
    for label in ("what happened", "when", "mitigated by", "recovered", "detection"):
        assert label in labels, labels
    assert {"trigger", "precursor", "latent cause", "cause"} & set(labels), labels
    story = first.locator("dl.story").inner_text()
    assert re.search(r"errors (×[\d.]+|÷[\d.]+|began after it|stopped after it) on ", story)
    assert (
        "first spike" in page.locator("#times").inner_text()
        and "onset" in page.locator("#times").inner_text()
    )


def test_wording_numbers_from_1_and_plurals_agree(opened):
    page, _ = opened
    text = page.inner_text("main")
    assert "Incident 1:" in text and "Incident 0" not in text
    assert not re.search(r"\b1 (hosts|lines|jobs|files|changes|spikes|rows)\b", text)
    assert "host(s)" not in text and "(0.0 MB)" not in text and "bits" not in text


def test_changes_without_evidence_are_folded(opened):
    page, _ = opened
    incident = page.locator("#incident-1")
    folded = incident.locator("details", has_text="Considered, no evidence")
    assert folded.count() == 1
    assert folded.get_attribute("open") is None
    ranked = incident.locator("table").nth(1).inner_text()
    assert "unrelated" not in ranked and "no evidence" not in ranked
    # the precursor and the mitigations are in view, not folded away
    assert "precursor" in ranked
    assert incident.locator("h4", has_text="Mitigations").is_visible()


def _layout(page, key):
    return page.evaluate(f"document.getElementById('timeline-figure').layout.{key}")


def test_the_precursor_shows_on_a_log_scale_and_the_first_change_is_marked(opened):
    page, _ = opened
    texts = [a["text"] for a in _layout(page, "annotations")]
    assert any(t.startswith("precursor of incident 1 begins 03-13 15:15") for t in texts), texts
    first = [t for t in texts if t.startswith("#1 change: ")]
    assert len(first) == 1, texts
    at = first[0][-5:]
    lines = [s for s in _layout(page, "shapes") if s["type"] == "line" and s.get("yref") == "paper"]
    assert any(s["line"]["dash"] == "dash" and at in s["x0"] for s in lines), (at, lines)
    page.get_by_text("log scale", exact=True).click()
    page.wait_for_timeout(300)
    layout = page.evaluate("document.getElementById('timeline-figure').layout")
    lanes = [
        k
        for k, v in layout.items()
        if k.startswith("yaxis") and isinstance(v, dict) and v.get("type") == "log"
    ]
    assert len(lanes) >= 5
    page.get_by_text("lanes: linear", exact=True).click()


def _overlap(a, b):
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_the_legend_clears_the_range_slider_and_the_buttons(opened):
    page, _ = opened
    legend = page.locator("#timeline-figure g.legend").bounding_box()
    slider = page.locator("#timeline-figure g.rangeslider-container").bounding_box()
    buttons = page.locator("#timeline-figure g.updatemenu-container").bounding_box()
    assert legend and slider and buttons
    assert not _overlap(legend, slider)
    assert not _overlap(legend, buttons)


def test_the_report_draws_the_longest_incident_host_by_host(opened):
    page, _ = opened
    hosts = page.locator("#hosts-figure")
    assert hosts.count() == 1
    titles = page.evaluate(
        "document.getElementById('hosts-figure').layout.annotations.map(a => a.text)"
    )
    assert sum(t.startswith("ip-10-20-") for t in titles) == 12
    assert "reboot 21:01" in titles


def test_analyze_at_80_columns_as_a_terminal_shows_it(browser, tmp_path_factory):
    """``timeline analyze`` of the sample at 80 columns, drawn as a terminal would and kept
    as a screenshot."""
    from html import escape

    from typer.testing import CliRunner

    from sample_logs import SAMPLE_DIR
    from timeline.cli import app

    result = CliRunner().invoke(
        app, ["analyze", str(SAMPLE_DIR), "-q", "--by-host"], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.stderr
    shots = _screenshot_folder(tmp_path_factory)
    page_file = shots / "analyze-80-columns.html"
    page_file.write_text(
        "<html><body style='margin:0;background:#1e1e1e'><pre id='t' style='display:inline-block;"
        "margin:0;padding:12px;color:#ddd;font:14px/1.3 monospace'>"
        + escape(result.stdout)
        + "</pre></body></html>",
        encoding="utf-8",
    )
    page = browser.new_page(viewport={"width": 800, "height": 600})
    page.goto(page_file.as_uri())
    width = page.evaluate("document.getElementById('t').getBoundingClientRect().width")
    char = page.evaluate(
        "(() => { const s = document.createElement('span'); s.style.font = '14px monospace';"
        " s.textContent = 'x'.repeat(80); document.body.appendChild(s);"
        " return s.getBoundingClientRect().width; })()"
    )
    page.locator("#t").screenshot(path=str(shots / "analyze-80-columns.png"))
    page.close()
    assert width <= char + 24 + 1  # 80 characters and the padding

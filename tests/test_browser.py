"""The HTML report in a real browser: offline, drawn, complete, and inert to hostile logs."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="module")
def opened(hostile_report, tmp_path_factory):
    """The hostile report opened from file:// with every console message and request noted."""
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
        shots = tmp_path_factory.mktemp("screenshots")
        page.screenshot(path=str(shots / "report-top.png"))
        page.screenshot(path=str(shots / "report-full.png"), full_page=True)
        yield page, seen
        browser.close()


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

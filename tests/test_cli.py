"""The command line: results on stdout, problems on stderr, exit codes that scripts can trust."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from timeline.cli import app

runner = CliRunner()


def test_parse_refuses_an_unknown_output_type(tmp_path):
    (tmp_path / "x.log").write_text("x\n")
    result = runner.invoke(app, ["parse", str(tmp_path / "x.log"), "-o", str(tmp_path / "e.xls")])
    assert result.exit_code == 1
    assert "cannot write e.xls" in result.stderr
    assert result.stdout == ""


def test_parse_exits_1_when_nothing_usable_was_loaded(tmp_path):
    (tmp_path / "x.log").write_text("nothing any parser knows\n")
    result = runner.invoke(app, ["parse", str(tmp_path / "x.log"), "-o", str(tmp_path / "e.csv")])
    assert result.exit_code == 1
    assert "nothing usable was loaded" in result.stderr
    assert "unknown format" in result.stderr
    assert not (tmp_path / "e.csv").exists()


def test_missing_input_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["parse", str(tmp_path / "missing.log")])
    assert result.exit_code == 1
    assert "no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_detect_names_the_file_and_says_unknown(tmp_path):
    (tmp_path / "mystery.txt").write_text("what is this\n")
    result = runner.invoke(app, ["detect", str(tmp_path / "mystery.txt")], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert "mystery.txt" in result.stdout
    assert "unknown" in result.stdout


def test_untrusted_text_is_not_taken_as_markup(tmp_path):
    odd = tmp_path / "[bold]odd[red].log"
    odd.write_text("x\n")
    result = runner.invoke(app, ["detect", str(odd)], env={"COLUMNS": "300"})
    assert "[bold]odd[red].log" in result.stdout


def kube_proxy_dir(tmp_path):
    from tests.conftest import hostile_kube_proxy_log

    path = tmp_path / "nodes" / "n1" / "var" / "log" / "pods"
    path = path / "kube-system_kube-proxy-abcde_0000" / "kube-proxy" / "0.log"
    path.parent.mkdir(parents=True)
    path.write_text(hostile_kube_proxy_log())
    return tmp_path / "nodes"


def test_analyze_json_is_machine_readable(tmp_path):
    import json

    result = runner.invoke(app, ["analyze", str(kube_proxy_dir(tmp_path)), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"incidents", "spikes", "contributors", "changes"} <= set(data)


def test_an_unreadable_since_is_a_user_error(tmp_path):
    result = runner.invoke(
        app, ["analyze", str(kube_proxy_dir(tmp_path)), "--since", "when pigs fly"]
    )
    assert result.exit_code == 1
    assert "cannot read the time 'when pigs fly'" in result.stderr


def test_report_writes_markdown_and_says_where(tmp_path):
    out = tmp_path / "review.md"
    result = runner.invoke(app, ["report", str(kube_proxy_dir(tmp_path)), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    assert f"report written to {out}" in result.stdout.replace("\n", "")
    text = out.read_text()
    assert text.startswith("# Incident timeline")
    outside_code = re.sub(r"`[^`]*`", "", text)
    assert "<script" not in outside_code and "<img" not in outside_code


def test_demo_writes_the_report_of_the_bundled_sample(tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["demo", "-o", str(out), "-q"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.stderr
    assert "report written to" in result.stdout
    page = out.read_text()
    assert "Delays starting CI jobs" in page and 'id="timeline-figure"' in page


def test_detect_names_every_format_of_the_sample_and_why():
    from sample_logs import SAMPLE_DIR

    result = runner.invoke(app, ["detect", str(SAMPLE_DIR)], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    for name in ("klog", "coredns", "rabbitmq", "circleci", "k8s-audit", "k8s-events"):
        assert f" {name} " in result.stdout, name
    assert "changelog" in result.stdout
    assert "cri prefix on 100% of sample lines" in result.stdout
    assert "unknown" not in result.stdout

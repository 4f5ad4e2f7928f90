"""The command line: results on stdout, problems on stderr, exit codes that scripts can trust."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

import timeline
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


def test_analyze_json_follows_the_findings_schema(tmp_path):
    import json

    jsonschema = pytest.importorskip("jsonschema")
    from sample_logs import SAMPLE_DIR
    from timeline.outputs.findings import schema

    result = runner.invoke(app, ["analyze", str(SAMPLE_DIR), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema.validate(data, schema())
    assert [i["id"] for i in data["incidents"]] == ["incident-1", "incident-2", "incident-3"]
    from datetime import datetime

    first = data["incidents"][0]
    onset, recovery = (datetime.fromisoformat(first["times"][k]) for k in ("onset", "recovery"))
    assert first["duration_s"] == pytest.approx((recovery - onset).total_seconds(), abs=1)


@pytest.mark.parametrize(
    "since", ["when pigs fly", "0001-01-01 00:00 +05:00", "9999-12-31 23:59 -05:00"]
)
def test_an_unreadable_or_unholdable_since_is_a_user_error(tmp_path, since):
    result = runner.invoke(app, ["analyze", str(kube_proxy_dir(tmp_path)), "--since", since])
    assert result.exit_code == 1
    assert f"cannot read the time '{since}'" in result.stderr
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize(
    "zone", ["localtime", "posixrules", "posix/Europe/Berlin", "Nowhere/Fake", "UTC+5"]
)
def test_a_zone_polars_cannot_convert_with_is_refused_before_any_work(tmp_path, zone):
    """The zone database's aliases pass Python's ZoneInfo but not polars: the CLI and the
    API both say so in a sentence, rather than failing halfway through a read."""
    folder = kube_proxy_dir(tmp_path)
    result = runner.invoke(app, ["parse", str(folder), "--tz", zone, "-o", str(tmp_path / "e.csv")])
    assert result.exit_code == 1
    assert f"--tz: unknown time zone '{zone}'" in result.stderr
    with pytest.raises(timeline.TimelineError, match="unknown time zone"):
        timeline.read(folder, tz=zone, cache=False)


def test_report_writes_markdown_and_says_where(tmp_path):
    out = tmp_path / "review.md"
    result = runner.invoke(app, ["report", str(kube_proxy_dir(tmp_path)), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    assert f"report written to {out} (" in result.stdout
    assert re.search(r"\(\d+ KB\)", result.stdout), result.stdout
    assert re.match(r"\d+ incidents?, \d+ spikes?, \d+ changes?; report written", result.stdout)
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
        assert re.search(rf"^{name} +\d\.\d\d  ", result.stdout, re.M), name
    assert "changelog" in result.stdout
    assert "cri prefix on 100% of sample lines" in result.stdout
    assert "unknown" not in result.stdout


# --- output that fits where it is printed ------------------------------------------------


def sample_dir():
    from sample_logs import SAMPLE_DIR

    return str(SAMPLE_DIR)


def _lines(text):
    return text.rstrip("\n").split("\n")


@pytest.fixture(scope="module")
def sample_analyze():
    """``timeline analyze`` of the sample as printed into a pipe 80 columns wide, plain
    and with -v and --by-host."""
    env = {"COLUMNS": "80"}
    plain = runner.invoke(app, ["analyze", sample_dir(), "-q"], env=env)
    verbose = runner.invoke(app, ["analyze", sample_dir(), "-q", "-v", "--by-host"], env=env)
    return plain, verbose


def test_analyze_fits_80_columns_with_one_line_per_ranked_change(sample_analyze):
    plain, _ = sample_analyze
    assert plain.exit_code == 0, plain.stderr
    lines = _lines(plain.stdout)
    assert max(len(line) for line in lines) <= 80
    assert all(line == line.rstrip() for line in lines)
    assert len(lines) < 60, len(lines)
    ranked = [line for line in lines if re.match(r"  #\d+ ", line)]
    assert ranked[0].startswith(
        "  #1 trigger    03-14 17:40 upgrade kube-proxy v1.23.17 → v1.24.10"
    )
    text = plain.stdout.replace("\n               ", "")
    assert re.search(r"errors ×\d+(\.\d)? on the 12 hosts it touched", " ".join(text.split()))
    # the precursor and the mitigations are named, the unsupported folded into one line
    assert any(re.match(r"  #\d+ precursor ", line) for line in ranked)
    assert re.search(r"mitigated by: \d+ changes 03-14 21:01 to ", plain.stdout)
    assert re.search(r"considered, no evidence: \d+ changes", plain.stdout)
    assert "bits" not in plain.stdout and "host(s)" not in plain.stdout
    assert "Incident 1 " in plain.stdout and "Incident 0" not in plain.stdout


def test_analyze_verbose_gives_the_full_evidence_and_by_host_the_hosts(sample_analyze):
    plain, verbose = sample_analyze
    assert verbose.exit_code == 0, verbose.stderr
    assert len(_lines(verbose.stdout)) > len(_lines(plain.stdout))
    assert max(len(line) for line in _lines(verbose.stdout)) <= 80
    text = " ".join(verbose.stdout.split())
    assert re.search(r"- [\d,]+ rows in the 1h before, [\d,]+ in the 1h after", text)
    assert "seen at changelog.csv:6" in text
    assert re.search(r"#\d+ mitigation", text)
    # host by host: one row per node of the incident, its reboot named
    assert "Incident 1 host by host" in verbose.stdout
    rows = [line for line in _lines(verbose.stdout) if line.startswith("ip-10-20-")]
    assert len(rows) == 12
    assert any(line.startswith("ip-10-20-1-32 ") and "reboot 21:01" in line for line in rows)


def test_an_empty_window_names_the_window_and_the_data_span():
    result = runner.invoke(
        app, ["analyze", sample_dir(), "-q", "--since", "2024-01-01 00:00"], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message == (
        "error: no rows from 2024-01-01 00:00 UTC onwards (--since '2024-01-01 00:00'); "
        "the data spans 2023-03-13 00:00 to 2023-03-15 13:59 UTC"
    )


def test_stderr_notes_do_not_wrap_inside_paths(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "nodes" / "n1" / "kube-proxy"
    deep.mkdir(parents=True)
    (deep / "0.log").write_text('I0314 18:00:01.000000       1 server.go:1] "Starting"\n')
    (deep / "junk.log").write_text("\x00\x01\x02 binary \x00\n" * 10)
    result = runner.invoke(
        app, ["parse", str(tmp_path), "-o", str(tmp_path / "e.csv"), "-q"], env={"COLUMNS": "60"}
    )
    notes = [line for line in result.stderr.splitlines() if line]
    assert notes
    for line in notes:
        # every note is one line naming the file relative to the folder all files share
        assert str(tmp_path) not in line
    assert any(line.startswith("assumed year") and "0.log" in line for line in notes), notes


def test_detect_prints_whole_relative_paths_one_line_per_file():
    result = runner.invoke(app, ["detect", sample_dir()], env={"COLUMNS": "80"})
    lines = _lines(result.stdout)
    assert len(lines) == 144
    pod = next(line for line in lines if "kube-proxy-hjzlz" in line)
    assert pod.startswith("klog ")
    assert (
        " nodes/ip-10-20-1-183.ec2.internal/var/log/pods/kube-system_kube-proxy-hjzlz_"
        "4c238fc6-0e5d-41cb-8832-3d57d274d732/kube-proxy/0.log.gz  (" in pod
    )
    assert "sample_logs/" not in result.stdout


@pytest.mark.parametrize(
    "verb",
    [
        ["detect"],
        ["parse", "-o", "{tmp}/e.parquet"],
        ["analyze"],
        ["report", "-o", "{tmp}/r.md"],
    ],
)
def test_every_verb_speaks_json(verb, tmp_path):
    import json

    args = [a.replace("{tmp}", str(tmp_path)) for a in verb]
    result = runner.invoke(
        app,
        [args[0], str(kube_proxy_dir(tmp_path)), *args[1:], "--json", "-q"]
        if args[0] != "detect"
        else [args[0], str(kube_proxy_dir(tmp_path)), "--json"],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data


def test_demo_speaks_json(tmp_path):
    import json

    result = runner.invoke(app, ["demo", "-o", str(tmp_path / "d.json"), "-q", "--json"])
    assert result.exit_code == 0, result.stderr
    said = json.loads(result.stdout)
    assert said["format"] == "json" and said["incidents"] == 3
    assert json.loads((tmp_path / "d.json").read_text())["schema_version"] == 1


def test_report_refuses_a_suffix_it_cannot_write_in_one_sentence(tmp_path):
    logs = kube_proxy_dir(tmp_path)
    out = tmp_path / "x.pdf"
    result = runner.invoke(app, ["report", str(logs), "-o", str(out), "-q"], env={"COLUMNS": "60"})
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: cannot tell the report format from 'x.pdf': name it .html, .md or .json, "
        "or give --report-format"
    )
    assert not out.exists()
    forced = runner.invoke(
        app,
        ["report", str(logs), "-o", str(out), "-q", "--report-format", "md"],
    )
    assert forced.exit_code == 0, forced.stderr
    assert out.read_text().startswith("# Incident timeline")


def test_formats_list_speaks_json():
    import json

    result = runner.invoke(app, ["formats", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = {f["format"]: f for f in json.loads(result.stdout)}
    assert {"klog", "coredns", "rabbitmq", "circleci"} <= set(listed)
    assert listed["klog"]["origin"] == "built-in"


def test_by_host_into_a_pipe_keeps_whole_host_names_and_counts(tmp_path, monkeypatch):
    """Into a pipe with no ``COLUMNS`` (``| less``, ``> file``), the host table is as wide
    as it needs: node names and counts are not cut to rich's 80 columns."""
    monkeypatch.delenv("COLUMNS", raising=False)
    nodes = [f"gke-prod-euw1-default-pool-3f6a1c2e-{k:04x}" for k in range(4)]
    for k, node in enumerate(nodes):
        folder = tmp_path / node / "var" / "log"
        folder.mkdir(parents=True)
        quiet = "".join(
            f'I0314 {16 + m // 60}:{m % 60:02d}:07.000001       1 proxier.go:812] "Sync" n={m}\n'
            for m in range(0, 110, 3)
        )
        storm = "".join(
            f"E0314 18:{2 + i // 60:02d}:{i % 60:02d}.{i:06d}       1 proxier.go:1520] "
            f'"Sync failed" n={i}\n'
            for i in range(300 + 250 * k)
        )
        (folder / "kube-proxy.log").write_text(quiet + storm)
    result = runner.invoke(app, ["analyze", str(tmp_path), "--year", "2023", "--by-host"])
    assert result.exit_code == 0, result.stderr
    for k, node in enumerate(nodes):
        row = next(line for line in result.stdout.splitlines() if line.startswith(node))
        assert f"{300 + 250 * k:,}" in row

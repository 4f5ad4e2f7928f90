"""The command line: results on stdout, problems on stderr, exit codes that scripts can trust."""

from __future__ import annotations

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

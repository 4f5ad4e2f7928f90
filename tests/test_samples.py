"""Every registered parser's samples parse, are recognised, and give the fields they promise."""

from __future__ import annotations

import json

import pytest

import parsers
from parsers.registry import MIN_SCORE

SAMPLES = [
    pytest.param(parser, i, sample, id=f"{parser.name}-{i}")
    for parser in parsers.registry.all_parsers()
    for i, sample in enumerate(parser.samples)
]


def test_every_parser_has_samples():
    for parser in parsers.registry.all_parsers():
        assert parser.samples, f"{parser.name} declares no samples"


@pytest.mark.parametrize(("parser", "index", "sample"), SAMPLES)
def test_sample_parses_with_expected_fields(parser, index, sample, read):
    loaded = read(f"sample-{index}.log", sample.text)
    files = loaded.summary.files
    assert files["format"].to_list() == [parser.name]
    assert files["unparsed_lines"].to_list() == [0], loaded.summary.warnings
    if sample.rows is not None:
        assert loaded.events.height == sample.rows
    first = loaded.events.sort("line", maintain_order=True).row(0, named=True)
    attrs = json.loads(first["attrs"])
    for key, expected in sample.expect.items():
        got = attrs.get(key.removeprefix("attrs.")) if key.startswith("attrs.") else first[key]
        if hasattr(got, "isoformat"):
            got = got.isoformat()
        assert got == expected, f"{parser.name} sample {index}: {key}"


@pytest.mark.parametrize(("parser", "index", "sample"), SAMPLES)
def test_sample_is_recognised(parser, index, sample):
    ranked = parsers.registry.rank(sample.text.splitlines())
    best, score = ranked[0]
    assert best.name == parser.name and score.score >= MIN_SCORE, score.why

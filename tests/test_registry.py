"""The registry: one name per format, detection by best score, unknown below the threshold."""

from __future__ import annotations

import polars as pl
import pytest

import parsers
from parsers.registry import Parser, Score, register


def test_a_different_parser_under_a_taken_name_is_refused():
    taken = parsers.registry.all_parsers()[0]

    def other_parse(lines: pl.LazyFrame) -> pl.LazyFrame:
        return lines

    with pytest.raises(ValueError, match="registered already"):
        register(
            Parser(
                name=taken.name,
                description="impostor",
                sniff=lambda sample: Score(1.0, "always"),
                parse=other_parse,
            )
        )


def test_rank_puts_the_best_first_and_a_failing_sniffer_scores_zero(monkeypatch):
    def broken(sample):
        raise RuntimeError("boom")

    monkeypatch.setitem(
        parsers.registry._PARSERS,
        "broken",
        Parser(name="broken", description="", sniff=broken, parse=lambda lines: lines),
    )
    ranked = parsers.registry.rank(["=INFO REPORT==== 15-Mar-2023::02:50:01 ===", "x"])
    assert ranked[0][0].name == "rabbitmq"
    broken_score = dict((p.name, s) for p, s in ranked)["broken"]
    assert broken_score.score == 0.0 and "boom" in broken_score.why


def test_unknown_name_lists_the_known_formats():
    with pytest.raises(KeyError, match="klog"):
        parsers.registry.get("nope")


@pytest.mark.parametrize("parser", parsers.registry.all_parsers(), ids=lambda p: p.name)
def test_every_sample_holds_one_of_its_parsers_literals(parser):
    for sample in parser.samples:
        lines = sample.text.splitlines()
        assert parser.sniff(lines).score >= parsers.registry.MIN_SCORE
        if parser.literals:
            assert any(literal in sample.text for literal in parser.literals)
            assert all("\n" not in literal for literal in parser.literals)
        best, _score = parsers.registry.rank(lines)[0]
        assert best.name == parser.name


def test_rank_does_not_ask_a_sniffer_whose_literals_the_sample_lacks(monkeypatch):
    asked = []

    def sniff(sample):
        asked.append(sample)
        return Score(1.0, "asked")

    monkeypatch.setitem(
        parsers.registry._PARSERS,
        "gated",
        Parser(
            name="gated",
            description="",
            sniff=sniff,
            parse=lambda lines: lines,
            literals=("##gated##", "@@gated@@"),
        ),
    )
    klog = ['I0314 18:00:01.123456       1 proxier.go:858] "Sync failed" retryingTime="30s"']
    scores = {p.name: s for p, s in parsers.registry.rank(klog)}
    assert asked == [] and scores["gated"].score == 0.0
    assert "'##gated##'" in scores["gated"].why
    assert scores["klog"].score == 1.0
    scores = {p.name: s for p, s in parsers.registry.rank([*klog, "x @@gated@@ y"])}
    assert len(asked) == 1 and scores["gated"].score == 1.0

"""The registry: one name per format, detection by best score, unknown below the threshold."""

from __future__ import annotations

import json

import polars as pl
import pytest

import parsers
import timeline
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


def _counting_parser(asked: list[tuple[str, ...]]) -> Parser:
    """A parser with no literals (so asked about every sample) that notes each sample."""

    def sniff(sample):
        asked.append(tuple(sample))
        return Score(0.0, "counted")

    return Parser(name="counting", description="", sniff=sniff, parse=lambda lines: lines)


def test_a_sample_ranked_again_is_not_sniffed_again(monkeypatch):
    asked: list[tuple[str, ...]] = []
    monkeypatch.setitem(parsers.registry._PARSERS, "counting", _counting_parser(asked))
    klog = ['I0314 18:00:01.123456       1 proxier.go:858] "Sync failed" retryingTime="30s"']
    first = parsers.registry.rank(klog)
    first.clear()  # a caller's list is its own
    again = parsers.registry.rank(list(klog))
    assert len(asked) == 1 and again[0][0].name == "klog"
    # samples the same when joined, but not line by line, are ranked each
    parsers.registry.rank(["a\nb"])
    parsers.registry.rank(["a", "b"])
    assert asked[1:] == [("a\nb",), ("a", "b")]


def test_a_ranking_follows_the_parsers_registered(monkeypatch):
    line = "2023-03-14T18:00:01Z ACME-SYNC widget=7 failed"
    assert parsers.registry.rank([line])[0][1].score < parsers.registry.MIN_SCORE
    acme = Parser(
        name="acme",
        description="",
        sniff=lambda sample: Score(1.0, "ACME"),
        parse=lambda lines: lines,
        literals=("ACME-",),
    )
    with parsers.registry.registered([acme]):
        assert parsers.registry.rank([line])[0][0].name == "acme"
    assert parsers.registry.rank([line])[0][0].name != "acme"


def test_each_program_of_a_collectors_export_is_sniffed_once(monkeypatch, tmp_path):
    """A file is routed twice when no format reads all of it (once to tell whether any
    line is a known format's, once to parse); each program's sample is sniffed once."""
    asked: list[tuple[str, ...]] = []
    monkeypatch.setitem(parsers.registry._PARSERS, "counting", _counting_parser(asked))
    programs = [f"billing-{n}" for n in range(7)] + ["kube-proxy"]
    records = []
    for k in range(64):
        program = programs[k % len(programs)]
        log = (
            f'I0314 18:{k // 60:02d}:{k % 60:02d}.000000       1 proxier.go:858] "Sync failed"'
            if program == "kube-proxy"
            else f"order {k} settled for {program} in {k % 9}ms"
        )
        kubernetes = {"pod_name": f"{program}-7d9f8-x{k % 3}", "container_name": program}
        kubernetes |= {"namespace_name": "shop", "host": f"node-{k % 4}"}
        records.append(
            {"date": 1678816800 + k, "log": log, "stream": "stdout", "kubernetes": kubernetes}
        )
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    events = timeline.load(str(path), year=2023, cache=False, workers=1)
    assert events.height == 64
    klog = events.filter(pl.col("component") == "kube-proxy")
    assert klog.height == 8 and set(klog["template"]) == {"Sync failed"}
    program_samples = [s for s in asked if len(s) == 8]
    assert len(program_samples) == len(programs) == len(set(program_samples))

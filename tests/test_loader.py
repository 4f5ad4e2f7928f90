"""The loader: paths, compression, bad input, line accounting, runtime prefixes."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime

import polars as pl
import pytest

import timeline
from parsers import layouts, runtime
from tests.lines import every_line_accounted as accounted
from timeline.errors import NoInputError, UnknownFormatError
from timeline.outputs.findings import findings


def lines_frame(texts: list[str]) -> pl.LazyFrame:
    n = len(texts)
    return pl.LazyFrame(
        {
            "line": pl.Series(range(1, n + 1), dtype=pl.UInt32),
            "end_line": pl.Series(range(1, n + 1), dtype=pl.UInt32),
            "text": texts,
            "path": ["x.log"] * n,
        }
    )


def test_cri_prefix_is_stripped_with_time_stream_and_partial_lines_joined():
    raw = [
        "2023-03-14T18:00:01.123456789Z stderr F hello",
        "2023-03-14T18:00:02.5Z stdout P first half, ",
        "2023-03-14T18:00:02.6Z stdout F second half",
        "a line the runtime did not write",
    ]
    assert runtime.detect(raw)[0] == "cri"
    got = runtime.strip(lines_frame(raw), "cri").collect()
    assert got["text"].to_list() == [
        "hello",
        "first half, second half",
        "a line the runtime did not write",
    ]
    assert got["line"].to_list() == [1, 2, 4]
    assert got["end_line"].to_list() == [1, 3, 4]
    assert got["stream"].to_list() == ["stderr", "stdout", None]
    assert str(got["prefix_ts"][0]) == "2023-03-14 18:00:01.123456+00:00"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2023-03-14T18:00:01.123456789Z", "2023-03-14 18:00:01.123456+00:00"),  # containerd
        ("2023-03-14T18:00:01.1234Z", "2023-03-14 18:00:01.123400+00:00"),  # zeros trimmed
        ("2023-03-14T18:00:01Z", "2023-03-14 18:00:01+00:00"),  # a whole second
        ("2023-03-14T19:30:01.25+01:30", "2023-03-14 18:00:01.250000+00:00"),  # an offset
        ("2023-03-14T18:00:01.1234567891Z", "2023-03-14 18:00:01.123456+00:00"),  # ten digits
        ("2023-02-30T18:00:01.5Z", "no day"),  # the prefix's shape, on no day
        ("2023-03-14T18:00:01.12a4Z", None),
        ("2023-03-14T18:00:01.Z", None),
    ],
)
def test_cri_times_of_every_shape_are_read(stamp, expected):
    raw = [f"{stamp} stdout F hello"] * 3
    got = runtime.strip(lines_frame(raw), "cri").collect()
    if expected is None:  # not a CRI prefix: the line is kept whole
        assert got["prefix_ts"].is_null().all() and got["text"][0] == raw[0]
    elif expected == "no day":  # the runtime's prefix still, with no time
        assert got["prefix_ts"].is_null().all() and got["text"].to_list() == ["hello"] * 3
    else:
        assert [str(t) for t in got["prefix_ts"]] == [expected] * 3
        assert got["text"].to_list() == ["hello"] * 3


def test_docker_json_file_lines_are_decoded_and_partials_joined():
    raw = [
        '{"log":"E0314 18:00:01.1 \\"quoted\\" \\u00e9\\n","stream":"stderr",'
        '"time":"2023-03-14T18:00:01.123456789Z"}',
        '{"log":"no newline yet ","stream":"stdout","time":"2023-03-14T18:00:02Z"}',
        '{"log":"done\\n","stream":"stdout","time":"2023-03-14T18:00:02.1Z"}',
    ]
    assert runtime.detect(raw)[0] == "docker-json"
    got = runtime.strip(lines_frame(raw), "docker-json").collect()
    assert got["text"].to_list() == ['E0314 18:00:01.1 "quoted" é', "no newline yet done"]
    assert got["end_line"].to_list() == [1, 3]


def test_kubectl_prefix_gives_pod_and_container_and_optional_timestamp():
    raw = [
        "[pod/kube-proxy-x7k2p/kube-proxy] 2023-03-14T18:00:01.5Z I0314 18:00:01.5 1 a.go:1] x",
        "[pod/kube-proxy-x7k2p/kube-proxy] I0314 18:00:02.5 1 a.go:1] y",
    ]
    assert runtime.detect(raw)[0] == "kubectl-prefix"
    got = runtime.strip(lines_frame(raw), "kubectl-prefix").collect()
    assert got["host"].to_list() == ["kube-proxy-x7k2p"] * 2
    assert got["container"].to_list() == ["kube-proxy"] * 2
    assert got["text"][0].startswith("I0314")
    assert got["prefix_ts"].null_count() == 1


def test_kubectl_timestamps_prefix():
    raw = ["2023-03-14T18:00:01.123456789Z [INFO] plugin/reload: Running configuration"]
    assert runtime.detect(raw)[0] == "kubectl-timestamps"
    got = runtime.strip(lines_frame(raw), "kubectl-timestamps").collect()
    assert got["text"].to_list() == ["[INFO] plugin/reload: Running configuration"]


@pytest.mark.parametrize(
    ("path", "node", "pod", "container"),
    [
        (
            "c/nodes/ip-10-0-1-5/var/log/pods/kube-system_kube-proxy-x7k2p_0a1b2c/kube-proxy/0.log",
            "ip-10-0-1-5",
            "kube-proxy-x7k2p",
            "kube-proxy",
        ),
        (
            "/var/log/containers/coredns-5d78c9869d-abcde_kube-system_coredns-" + "a" * 64 + ".log",
            None,
            "coredns-5d78c9869d-abcde",
            "coredns",
        ),
        ("rabbitmq/rabbit@rmq-1.log", None, None, None),
    ],
)
def test_path_hints(path, node, pod, container):
    hints = layouts.hints_from_path(path)
    assert (hints.node, hints.pod, hints.container) == (node, pod, container)


def test_unknown_format_lines_are_counted_unparsed_with_line_numbers(read):
    loaded = read("mystery.txt", "one\ntwo\n\nfour\n")
    files = loaded.summary.files
    assert files["lines"].to_list() == [4]
    assert files["unparsed_lines"].to_list() == [4]
    assert files["first_unparsed"].to_list() == [[1, 2, 3, 4]]
    assert "unknown format" in files["problem"][0]
    assert accounted(loaded.summary)


def test_binary_file_is_skipped_with_a_clear_message(read):
    loaded = read("core.bin", b"\x7fELF\x00\x00\x01\x02" * 100)
    assert loaded.events.height == 0
    assert "binary file" in loaded.summary.files["problem"][0]


def test_truncated_gzip_keeps_what_it_held(write):
    whole = gzip.compress(("".join(f"line {i}\n" for i in range(5000))).encode())
    path = write("cut.log.gz", b"")
    path.write_bytes(whole[: len(whole) // 2])
    loaded = timeline.read(path)
    problem = loaded.summary.files["problem"][0]
    assert "truncated gzip" in problem
    assert 0 < loaded.summary.files["lines"][0] < 5000


def test_gzip_files_are_read(write):
    path = write("a.log.gz", "hello\nworld\n")
    assert timeline.read(path).summary.files["lines"].to_list() == [2]


def test_absurdly_long_line_is_cut_and_reported(read):
    loaded = read("long.log", "short\n" + "x" * (50 << 20) + "\nafter\n")
    warnings = loaded.summary.warnings
    cut = warnings.filter(pl.col("reason").str.starts_with("line is"))
    assert cut["line"].to_list() == [2]
    assert "52,428,800 bytes long" in cut["reason"][0]
    assert loaded.summary.files["lines"].to_list() == [3]


def test_crlf_and_missing_final_newline(read):
    loaded = read("crlf.txt", "a\r\nb\r\nc")
    assert loaded.summary.files["lines"].to_list() == [3]
    assert loaded.summary.warnings.filter(pl.col("line").is_not_null())["text"].to_list() == [
        "a",
        "b",
        "c",
    ]


def test_empty_file(read):
    loaded = read("empty.log", "")
    assert loaded.summary.files["lines"].to_list() == [0]
    assert loaded.events.height == 0


def test_folders_and_globs_expand(write, tmp_path):
    write("logs/a/one.log", "x\n")
    write("logs/b/two.log.gz", "y\n")
    write("logs/.hidden", "z\n")
    found = timeline.expand(tmp_path / "logs")
    assert [os.path.basename(p) for p in found] == ["one.log", "two.log.gz"]
    assert len(timeline.expand(str(tmp_path / "logs" / "**" / "*.log"))) == 1


def test_a_folder_is_walked_from_the_top_each_folders_names_in_order(write, tmp_path):
    """A folder's own files come before its folders', each level sorted by name, deep
    folders included: the same files in the same order on every machine."""
    for name in ["b.log", "ab.log", "c/x.log", "a/z.log", "a/b/c.log", "a/b/d/e/f.log", "a/y.log"]:
        write(f"logs/{name}", f"{name}\n")  # each its own bytes: a copy is read once
    found = [os.path.relpath(p, tmp_path / "logs") for p in timeline.expand(tmp_path / "logs")]
    assert found == [
        "ab.log",
        "b.log",
        "a/y.log",
        "a/z.log",
        "a/b/c.log",
        "a/b/d/e/f.log",
        "c/x.log",
    ]


def test_missing_path_and_unknown_format_are_user_errors(tmp_path):
    with pytest.raises(NoInputError, match="no such file"):
        timeline.read(tmp_path / "nope.log")
    (tmp_path / "x.log").write_text("x\n")
    with pytest.raises(UnknownFormatError, match="known formats"):
        timeline.read(tmp_path / "x.log", format="no-such-format")


def test_event_frame_has_the_contract_columns(read):
    loaded = read("x.log", "x\n")
    assert timeline.validate(loaded.events) is loaded.events


KLOG_LINE = 'E0314 19:00:01.123456       1 proxier.go:1520] "Sync failed" retryingTime="30s"\n'


def assumption(loaded, what):
    rows = loaded.summary.assumptions.filter(pl.col("what") == what).to_dicts()
    return rows[-1] if rows else None


def test_zone_of_zoneless_records_is_read_from_the_runtime_prefix(read):
    loaded = read("0.log", "2023-03-14T18:00:01.123456789Z stderr F " + KLOG_LINE)
    assert str(loaded.events["ts"][0]) == "2023-03-14 18:00:01.123456+00:00"
    zone = assumption(loaded, "time zone")
    assert zone["value"] == "UTC+01:00" and zone["certainty"] == "certain"
    assert assumption(loaded, "year")["certainty"] == "certain"


def test_year_of_a_bare_klog_file_comes_from_the_other_files(write):
    bare = write("kube-proxy.log", KLOG_LINE)
    dated = write(
        "rabbit@rmq-0.log",
        "2023-03-14 18:00:01.123456+00:00 [info] <0.230.0> Server startup complete\n",
    )
    loaded = timeline.read([bare, dated])
    klog = loaded.events.filter(pl.col("file") == str(bare))
    assert klog["ts"][0].year == 2023
    year = assumption(loaded, "year")
    assert year["value"] == "2023" and year["certainty"] == "likely"


def test_year_of_a_lone_klog_file_is_a_guess_from_its_modification_time(write):
    path = write("kube-proxy.log", KLOG_LINE)
    os.utime(path, (1_700_000_000, 1_700_000_000))  # 2023-11-14
    loaded = timeline.read(path)
    assert loaded.events["ts"][0].year == 2023
    year = assumption(loaded, "year")
    assert year["certainty"] == "guess" and "modification time" in year["basis"]


def test_year_given_by_the_user_wins_and_december_rolls_into_january(write):
    path = write(
        "kube-proxy.log",
        KLOG_LINE.replace("E0314", "E1231").replace("19:00", "23:59")
        + KLOG_LINE.replace("E0314", "E0101").replace("19:00", "00:01"),
    )
    loaded = timeline.read(path, year=2022)
    assert [t.isoformat()[:10] for t in loaded.events["ts"]] == ["2022-12-31", "2023-01-01"]
    assert assumption(loaded, "year")["certainty"] == "stated"


def klog_at(*stamps: str) -> str:
    """kube-proxy klog lines at ``stamps`` (``MMDD HH:MM``), no runtime prefix."""
    return "".join(KLOG_LINE.replace("E0314", f"I{s[:4]}").replace("19:00", s[5:]) for s in stamps)


@pytest.mark.parametrize("year", [2023, 2024])
def test_year_given_is_the_year_the_data_starts_in_and_january_after_december_is_the_next(
    write, tmp_path, year
):
    """``year=`` names the year the data starts in: a file of 1 January lines beside
    files that run from 31 December into January is in the next year, as the lines of a
    file that rolls over are, and the summary says why. Data inside one year, even
    months apart, stays in the year given."""
    rolling = [
        write(f"kube-proxy-{n}.log", klog_at(f"1231 23:4{m}", f"0101 00:2{m}"))  # not copies
        for m, n in enumerate("ab")
    ]
    january = write("kube-proxy-c.log", klog_at("0101 00:05", "0101 00:35"))
    loaded = timeline.read(tmp_path, year=year, infer=False)
    for path in rolling:
        ts = loaded.events.filter(pl.col("file") == str(path)).sort("line")["ts"]
        assert [t.isoformat()[:10] for t in ts] == [f"{year}-12-31", f"{year + 1}-01-01"]
    ts = loaded.events.filter(pl.col("file") == str(january))["ts"]
    assert {t.isoformat()[:10] for t in ts} == {f"{year + 1}-01-01"}
    said = loaded.summary.assumptions.filter(pl.col("file") == str(january)).row(0, named=True)
    assert (said["value"], said["certainty"]) == (str(year + 1), "stated")
    assert f"year={year} for the year the data starts in, on 31 December" in said["basis"]
    assert not loaded.summary.files["problem"].drop_nulls().len()

    for path in [*rolling, january]:
        path.unlink()
    spring = write("kube-proxy-d.log", klog_at("0102 08:00", "0314 19:00"))
    summer = write("kube-proxy-e.log", klog_at("0630 12:00"))
    loaded = timeline.read(tmp_path, year=year, infer=False)
    assert {t.year for t in loaded.events["ts"]} == {year}
    assert set(loaded.events["file"]) == {str(spring), str(summer)}


def test_year_given_follows_the_files_that_state_theirs_across_new_year(write):
    """A klog file of January lines beside RabbitMQ lines that state 31 December: with
    the year the data starts in given, the January lines are in the next year."""
    klog = write("kube-proxy.log", klog_at("0101 00:05", "0101 00:35"))
    rabbit = write(
        "rabbit@rmq-0.log",
        "2023-12-31 23:50:01.123456+00:00 [info] <0.230.0> Server startup complete\n"
        "2024-01-01 00:10:01.123456+00:00 [error] <0.231.0> closing AMQP connection\n",
    )
    loaded = timeline.read([klog, rabbit], year=2023, infer=False)
    ts = loaded.events.filter(pl.col("file") == str(klog))["ts"]
    assert [t.isoformat()[:16] for t in ts] == ["2024-01-01T00:05", "2024-01-01T00:35"]


def test_an_assumption_of_several_files_gives_their_counts_added_up(write, tmp_path):
    """Files assumed alike are one line of the summary and of the reports: its counts are
    the files' added up, and a reason that differs between them (each file's time) is
    given as one file's, named."""
    for n, (name, day) in enumerate([("a", 14), ("b", 15), ("c", 16)]):
        path = write(f"kube-proxy-{name}.log", KLOG_LINE * (2 + n))
        stamp = datetime(2023, 11, day, 12, tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
    loaded = timeline.read(tmp_path, infer=False)
    notes = [text for kind, text in loaded.summary.notes() if kind == "assumed"]
    assert (
        "assumed time zone = UTC for 3 files (assumed: 9 records write a time without a zone)"
        in notes
    )
    assert (
        "assumed year = 2023 for 3 files (guess: e.g. kube-proxy-a.log: the file's "
        "modification time (2023-11-14))" in notes
    )
    groups = findings(loaded, timeline.analyze(loaded))["loading"]["assumption_groups"]
    zone = next(g for g in groups if g["what"] == "time zone")
    assert (zone["files"], zone["basis"]) == (3, "9 records write a time without a zone")
    per_file = loaded.summary.assumptions.filter(pl.col("what") == "time zone")
    assert per_file["records"].to_list() == [2, 3, 4]


def test_zone_given_by_the_user_converts_to_utc(write):
    path = write("rabbit@rmq-0.log", "2023-03-15 03:50:01.123 [error] <0.1.0> boom\n")
    loaded = timeline.read(path, tz="Europe/Berlin")
    assert loaded.events["ts"][0].isoformat() == "2023-03-15T02:50:01.123000+00:00"


def test_rows_of_one_line_keep_the_order_their_parser_gave_them(tmp_path):
    """The lines of one CircleCI output piece are rows of one line at one time: the event
    frame keeps them in the piece's order on every read, where joining each row to its
    template could start a read with any of the piece's lines."""
    # forty lines of forty templates: letters, which no mask takes for a variable part
    written = [f"step {chr(97 + n // 26)}{chr(97 + n % 26)} of the build" for n in range(40)]
    piece = {"message": "\n".join(written) + "\n", "time": "2023-03-14T18:06:38.120Z"}
    path = tmp_path / "step-0.json"
    path.write_text(json.dumps([{**piece, "type": "out", "truncated": False}]) + "\n")
    for _ in range(10):
        events = timeline.read(path, infer=False, cache=False, workers=1).events
        assert events["message"].to_list() == written

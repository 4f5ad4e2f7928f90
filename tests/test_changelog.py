"""A team's change log in CSV, YAML and JSON: times people write, types people use."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.changelog import change_type_from, read_time, sniff

CSV = """\
time,type,target,description,from,to,actor
2023-03-13 14:05,upgrade,daemonset/kube-system/kube-proxy,Stage 1 of the node component upgrade,v1.23.6,v1.24.10,jdoe
2023-03-13 16:40,Rolled back,daemonset/kube-system/kube-proxy,"Revert: some services report missing metrics, see #inc-4411",v1.24.10,v1.23.6,jdoe

# second day
14 Mar 2023 17:40 UTC,upgrade,daemonset/kube-system/kube-proxy,"Resume the upgrade
with a different approach",v1.23.6,v1.24.10,platform-team
2023-03-14T20:15:00-05:00,bounce,deployment/kube-system/coredns,Restart CoreDNS,,,asmith
the 14th around dinner,restart,daemonset/kube-system/node-local-dns,Restart node-local-dns,,,asmith
2023-03-14 21:02,node reboot,node/ip-10-0-1-5.ec2.internal,Restart one node as a test,,,oncall
"""  # noqa: E501


def change_rows(loaded) -> list[dict]:
    rows = loaded.events.sort("line").iter_rows(named=True)
    return [{**json.loads(r["attrs"]), "_row": r} for r in rows]


def test_csv_entries_on_one_utc_clock(read):
    loaded = read("changes.csv", CSV)
    assert loaded.summary.files["format"].to_list() == ["changelog"]
    rows = change_rows(loaded)
    assert [r["_row"]["ts"].isoformat() for r in rows] == [
        "2023-03-13T14:05:00+00:00",
        "2023-03-13T16:40:00+00:00",
        "2023-03-14T17:40:00+00:00",
        "2023-03-15T01:15:00+00:00",
        "2023-03-14T21:02:00+00:00",
    ]
    assert [r["change_type"] for r in rows] == [
        "upgrade",
        "rollback",
        "upgrade",
        "restart",
        "reboot",
    ]
    assert rows[1]["type_as_written"] == "Rolled back"
    assert (
        rows[1]["_row"]["message"] == "Revert: some services report missing metrics, see #inc-4411"
    )
    assert rows[2]["_row"]["message"] == "Resume the upgrade with a different approach"
    assert (rows[2]["_row"]["line"], rows[2]["_row"]["kind"]) == (6, "change")
    assert rows[3]["actor"] == "asmith" and "from" not in rows[3]
    assert rows[4]["_row"]["host"] == "ip-10-0-1-5.ec2.internal"
    assert all(r["inferred"] is False for r in rows)


def test_an_unreadable_time_is_unparsed_with_its_value_and_line(read):
    loaded = read("changes.csv", CSV)
    warnings = loaded.summary.warnings
    assert warnings["line"].to_list() == [9]
    reason = warnings["reason"][0]
    assert "'the 14th around dinner'" in reason and "line 9" in reason
    files = loaded.summary.files.row(0, named=True)
    assert (
        files["first_lines"] + files["continuation_lines"] + files["unparsed_lines"]
        == files["lines"]
    )


def test_zoneless_times_are_left_to_the_loader(read):
    text = (
        "time,type,target,description\n2023-03-14 20:15,restart,deployment/ci/dispatcher,Bounce\n"
    )
    assumed = read("changes.csv", text)
    assert assumed.events["ts"][0].isoformat() == "2023-03-14T20:15:00+00:00"
    assert assumed.summary.assumptions["value"].to_list() == ["UTC"]
    berlin = read("changes.csv", text, tz="Europe/Berlin")
    assert berlin.events["ts"][0].isoformat() == "2023-03-14T19:15:00+00:00"


YAML = """\
# changes made during the 2023-03-14 incident
changes:
  - time: 2023-03-14T17:40:00-05:00
    type: upgrade
    target: daemonset/kube-system/kube-proxy
    description: Resume the node component upgrade
    from: v1.24.10
    to: v1.23.6
  - time: 2023-03-14 20:40
    type: restart
    target: [unclosed
    description: Restart node-local-dns
  - time: 2023-03-14 21:02
    type: reboot
    target: node/ip-10-0-1-5.ec2.internal
    description: |
      Restart one node as a test;
      its traffic recovers
    ticket: INC-4411
"""


def test_yaml_list_with_a_broken_entry(read):
    loaded = read("changes.yaml", YAML)
    rows = change_rows(loaded)
    assert [r["_row"]["line"] for r in rows] == [1, 13]
    first, last = rows
    assert first["_row"]["ts"].isoformat() == "2023-03-14T22:40:00+00:00"
    assert first["versions_say"] == "rollback"
    assert last["_row"]["message"] == "Restart one node as a test; its traffic recovers"
    assert last["ticket"] == "INC-4411"
    (warning,) = loaded.summary.warnings.iter_rows(named=True)
    assert (warning["line"], warning["end_line"]) == (9, 12)
    assert warning["reason"].startswith("YAML entry at line 9")


def test_json_array_cut_short_keeps_the_whole_entries(read):
    entries = [
        {
            "time": "2023-03-15T02:50:00Z",
            "type": "restart",
            "target": "statefulset/messaging/rmq",
            "description": "Roll RabbitMQ to add missing logging",
            "actor": "oncall",
        },
        {
            "time": "2023-03-15T09:50:00Z",
            "type": "restart",
            "target": "statefulset/messaging/rmq",
            "description": "Restart RabbitMQ nodes to fix corrupted queues",
        },
    ]
    text = json.dumps(entries, indent=2)
    cut = text[: text.index('"description": "Restart RabbitMQ nodes')]
    loaded = read("changes.json", cut)
    rows = change_rows(loaded)
    assert len(rows) == 1 and rows[0]["target"] == "statefulset/messaging/rmq"
    (warning,) = loaded.summary.warnings.iter_rows(named=True)
    assert "cut short" in warning["reason"]
    assert (warning["line"], warning["end_line"]) == (9, cut.count("\n") + 1)
    files = loaded.summary.files.row(0, named=True)
    assert (
        files["first_lines"] + files["continuation_lines"] + files["unparsed_lines"]
        == files["lines"]
    )


@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: {"source": {"team": "platform", "tags": ["a", "b"]}, "changes": e},
        lambda e: {"items": e},
        lambda e: {"version": 2, "generated": "2023-03-15T10:00:00Z", "entries": e},
        lambda e: {"changes": e, "next": None},
    ],
)
def test_a_json_change_log_s_entries_under_a_key_after_other_keys(read, wrap):
    entries = [
        {
            "time": "2023-03-14T17:40:00Z",
            "type": "upgrade",
            "target": "daemonset/kube-system/kube-proxy",
            "description": "Upgrade kube-proxy",
        },
        {
            "time": "2023-03-15T02:50:00+01:00",
            "type": "restart",
            "target": "statefulset/messaging/rmq",
            "description": "Roll RabbitMQ",
        },
    ]
    loaded = read("changes.json", json.dumps(wrap(entries), indent=2) + "\n")
    rows = change_rows(loaded)
    assert [r["target"] for r in rows] == [e["target"] for e in entries]
    assert loaded.summary.unparsed_lines == 0


@pytest.mark.parametrize(
    ("name", "text", "first_line"),
    [
        (
            "changes.csv",
            "time,type,target,description\n"
            "2023-03-14 17:40,upgrade,daemonset/kube-system/kube-proxy,Upgrade kube-proxy\n"
            "2023-03-14 18:00,restart,deployment/kube-system/coredns,Restart CoreDNS\n",
            2,
        ),
        (
            "changes.json",
            '[\n  {"time": "2023-03-14T17:40:00Z", "type": "upgrade", "target": "kube-proxy"},\n'
            '  {"time": "2023-03-14T18:00:00Z", "type": "restart", "target": "coredns"}\n]\n',
            2,
        ),
        (
            "changes.yaml",
            "# the incident's changes\nchanges:\n"
            "  - time: 2023-03-14T17:40:00Z\n    type: upgrade\n    target: kube-proxy\n"
            "  - time: 2023-03-14T18:00:00Z\n    type: restart\n    target: coredns\n",
            3,
        ),
    ],
)
def test_the_first_entry_is_cited_at_its_own_line_not_the_header_s(read, name, text, first_line):
    from timeline.analysis import contributors as contrib

    loaded = read(name, text)
    assert loaded.summary.unparsed_lines == 0
    examples = [e[0] for e in contrib.change_events(loaded.events)["examples"]]
    assert examples[0].endswith(f"{name}:{first_line}")
    assert int(examples[1].rsplit(":", 1)[1]) > first_line


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2023-03-14 20:15", (datetime(2023, 3, 14, 20, 15), None)),
        ("14 Mar 2023 20:15 UTC", (datetime(2023, 3, 14, 20, 15), 0)),
        ("2023-03-14T20:15:00-05:00", (datetime(2023, 3, 15, 1, 15), 0)),
        ("March 14, 2023 8:15pm", (datetime(2023, 3, 14, 20, 15), None)),
        ("14/03/2023 20:15", (datetime(2023, 3, 14, 20, 15), None)),
        ("1678825000", (datetime(2023, 3, 14, 20, 16, 40), 0)),
        ("1678825000500", (datetime(2023, 3, 14, 20, 16, 40, 500000), 0)),
    ],
)
def test_times_people_write(written, expected):
    assert read_time(written) == expected


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("03/04/2023 10:00", "either way"),
        ("2023-03-14", "no time of day"),
        ("yesterday 18:00", "without guessing"),
        ("9999-03-14 10:00", "year 9999"),
        ("2023-02-30 10:00", "without guessing"),
    ],
)
def test_times_that_would_be_guesses_are_refused(written, why):
    with pytest.raises(ValueError, match=why):
        read_time(written)


def test_type_words():
    assert change_type_from("Upgraded") == "upgrade"
    assert change_type_from("config change") == "config"
    assert change_type_from("scale_down") == "scale"
    assert change_type_from("rollout restart") == "restart"
    assert change_type_from("dns tweak") == "other"


def test_sniff_needs_change_log_fields():
    assert sniff(CSV.splitlines()).score >= 0.9
    assert sniff(YAML.splitlines()).score >= 0.9
    assert sniff(["[", '  {"time": "x", "type": "restart", "target": "y"}', "]"]).score >= 0.9
    assert sniff(["time,level,message", "2023-03-14 20:15,info,hello"]).score == 0
    assert sniff(['{"items": [{"number": 1, "queued_at": "2023-03-14T18:00:00Z"']).score == 0


@pytest.mark.parametrize(
    "line",
    [
        '{"time":"2023-03-14T18:00:01Z","level":"ERROR","message":"request failed",'
        '"resource":{"type":"k8s_container","labels":{"pod":"web-1"}}}',
        '{"timestamp": "2024-02-01T09:00:00.123Z", "severity": "warning", "type": "audit", '
        '"service": "billing", "msg": "slow query"}',
        '{"timestamp":"2024-02-01T09:00:00Z","lvl":"Info","kind":"access",'
        '"target":"/api","message":"GET /api 200"}',
        '{"level":50,"time":"2024-02-01T09:00:00.000Z","type":"order","service":"checkout",'
        '"msg":"payment failed"}',
        '{"Time":"2024-02-01T09:00:00Z","Level":"Error","Type":"request","Service":"cart",'
        '"Message":"timeout"}',
        '{"@t":"2024-02-01T09:00:00Z","@l":"Error","time":"2024-02-01T09:00:00Z","type":"job",'
        '"target":"billing","message":"job failed"}',
    ],
    ids=["cloud-logging", "severity", "lvl", "pino", "dotnet", "serilog"],
)
def test_a_programs_json_log_with_change_log_like_keys_is_no_change_log(read, line):
    """A program's JSON lines may carry ``time``, ``type``, a ``message`` and a
    ``resource`` or ``service``; their log level says they are a log, and no line of
    them becomes a change."""
    assert sniff([line, line]).score == 0
    loaded = read("app.jsonl", line + "\n" + line + "\n")
    assert loaded.events.height + loaded.summary.unparsed_lines == 2
    assert loaded.events.filter(pl.col("kind") == "change").height == 0


@pytest.mark.parametrize(
    ("lines", "change_log"),
    [
        # a CI step's output: a message, a time and its stream as its type
        (['[{"message":"make test\\n","time":"2023-03-14T18:06:38.120Z","type":"out"}]'], False),
        (['{"time":"2024-02-01T09:00:00Z","type":"stderr","message":"retrying"}'] * 2, False),
        # a change log without targets names kinds of change
        (['{"time":"2024-02-01T09:00:00Z","type":"deploy","description":"api v2.4.1"}'], True),
        (
            ['{"when":"2024-02-01T09:00:00Z","kind":"rollback","summary":"api back to v2.4.0"}'],
            True,
        ),
    ],
)
def test_a_change_log_without_targets_must_name_kinds_of_change(lines, change_log):
    assert (sniff(lines).score >= 0.9) is change_log


def test_a_change_log_may_give_its_changes_a_severity():
    lines = [
        "[",
        '  {"time": "2024-02-01T09:00:00Z", "type": "deploy", "target": "checkout",'
        ' "severity": "critical", "description": "v2.4.1"},',
        '  {"time": "2024-02-01T09:30:00Z", "type": "rollback", "target": "checkout",'
        ' "severity": "info", "description": "back to v2.4.0"}',
        "]",
    ]
    assert sniff(lines).score >= 0.9


def test_rows_follow_the_event_frame_contract(read):
    loaded = read("changes.csv", CSV)
    events = loaded.events
    assert events.filter(pl.col("kind") != "change").height == 0
    assert set(events["source"]) == {"changelog"}
    assert events["component"].to_list()[:2] == ["kube-proxy", "kube-proxy"]


def lines_frame(text: str) -> pl.LazyFrame:
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    numbers = list(range(1, len(lines) + 1))
    return pl.LazyFrame(
        {"line": numbers, "end_line": numbers, "text": lines},
        schema_overrides={"line": pl.UInt32, "end_line": pl.UInt32},
    ).with_columns(
        prefix_ts=pl.lit(None, pl.Datetime("us", "UTC")),
        stream=pl.lit(None, pl.String),
        host=pl.lit(None, pl.String),
        container=pl.lit(None, pl.String),
        path=pl.lit("changes"),
    )


JSON = json.dumps(
    [
        {"time": "2023-03-15T02:50:00Z", "type": "restart", "target": "statefulset/messaging/rmq"},
        {"time": "2023-03-15 09:50", "type": "restart", "target": "statefulset/messaging/rmq"},
    ],
    indent=2,
)


@settings(max_examples=60, deadline=None)
@given(which=st.sampled_from([CSV, YAML, JSON]), cut=st.integers(min_value=0, max_value=1200))
def test_any_cut_of_a_change_log_loses_no_line(which, cut):
    from parsers.changelog import parse

    text = which[:cut]
    records = parse(lines_frame(text)).collect()
    seen: set[int] = set()
    for first, last in records.select("line", "end_line").iter_rows():
        seen.update(range(first, last + 1))
    total = len(text.split("\n")) - (1 if text.endswith("\n") else 0) if text else 0
    assert seen == set(range(1, total + 1))

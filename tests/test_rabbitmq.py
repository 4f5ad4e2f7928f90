"""RabbitMQ logs of every generation, read through the loader as a user would."""

# Fixture lines are real log lines: long, and lager ends an empty message with a space.
# ruff: noqa: E501, W291

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import timeline
from parsers import rabbitmq, registry
from parsers.common import RECORD_SCHEMA
from parsers.registry import MIN_SCORE
from tests.lines import read_real

REAL = Path(__file__).parent / "data" / "real" / "rabbitmq"


def rows(loaded: timeline.Loaded) -> list[dict]:
    """The events in file order, with ``attrs`` decoded."""
    out = loaded.events.sort("file", "line").to_dicts()
    for row in out:
        row["attrs"] = json.loads(row["attrs"])
    return out


def clean(loaded: timeline.Loaded) -> None:
    """Every line is a record or inside one, and none is unparsed."""
    files = loaded.summary.files
    assert files["format"].to_list() == ["rabbitmq"] * files.height
    assert files["unparsed_lines"].sum() == 0, loaded.summary.warnings
    assert (files["rows"] + files["continuation_lines"]).to_list() == files["lines"].to_list()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- 3.9 and later -----------------------------------------------------------------------

MODERN = """\
2023-03-15 03:50:01.123456+01:00 [warning] <0.8812.0> closing AMQP connection <0.8812.0> (10.0.0.5:43210 -> 10.0.1.7:5672 - job-dispatcher, vhost: '/', user: 'circleci'):
2023-03-15 03:50:01.123456+01:00 [warning] <0.8812.0> client unexpectedly closed TCP connection
2023-03-15 03:50:02.000113+01:00 [error] <0.8840.0> closing AMQP connection <0.8840.0> (10.0.0.9:51022 -> 10.0.1.7:5672):
2023-03-15 03:50:02.000113+01:00 [error] <0.8840.0> {handshake_timeout,handshake}
2023-03-15 03:50:02.412907+01:00 [error] <0.8851.0> Error on AMQP connection <0.8851.0> (10.0.0.6:40112 -> 10.0.1.7:5672, vhost: '/', user: 'circleci', state: running), channel 0:
2023-03-15 03:50:02.412907+01:00 [error] <0.8851.0>  operation none caused a connection exception connection_forced: "broker forced connection closure with reason 'shutdown'"
2023-03-15 03:50:02.412907+01:00 [info] <0.8860.0> accepting AMQP connection <0.8860.0> (10.0.0.5:43298 -> 10.0.1.7:5672)
"""


def test_modern_lines_with_one_prefix_are_one_record_on_the_utc_clock(read):
    loaded = read("rabbit.log", MODERN)
    clean(loaded)
    got = rows(loaded)
    assert [(r["line"], r["level"]) for r in got] == [
        (1, "warning"),
        (3, "error"),
        (5, "error"),
        (7, "info"),
    ]
    abrupt, handshake, forced, accepting = got
    assert abrupt["ts"] == utc(2023, 3, 15, 2, 50, 1, 123456)
    assert abrupt["message"].endswith("'circleci'):\nclient unexpectedly closed TCP connection")
    assert abrupt["attrs"] == {
        "pid": "<0.8812.0>",
        "connection": "10.0.0.5:43210 -> 10.0.1.7:5672",
        "client": "10.0.0.5:43210",
        "server": "10.0.1.7:5672",
        "connection_name": "job-dispatcher",
        "user": "circleci",
        "vhost": "/",
    }
    assert handshake["message"].endswith("):\n{handshake_timeout,handshake}")
    assert handshake["attrs"]["client"] == "10.0.0.9:51022"
    assert "user" not in handshake["attrs"]
    assert "\n operation none caused a connection exception" in forced["message"]
    # same time and pid as the record above, another level: a record of its own
    assert accepting["ts"] == utc(2023, 3, 15, 2, 50, 2, 412907)
    assert loaded.summary.assumptions.filter(pl.col("what") != "host").height == 0


def test_continuation_spans_are_the_lines_they_cover(read):
    loaded = read("rabbit.log", MODERN)
    spans = loaded.summary.files.select("rows", "continuation_lines").row(0)
    assert spans == (4, 3)


@pytest.mark.parametrize(
    ("offset", "hour"),
    [("+00:00", 2), ("+01:00", 1), ("-08:00", 10), ("Z", 2), ("+0530", -1)],
)
def test_stated_offsets_are_converted_to_utc(read, offset, hour):
    line = f"2023-03-15 02:50:01.000001{offset} [info] <0.1.0> accepting AMQP connection\n"
    ts = read("rabbit.log", line).events["ts"].item()
    expected = utc(2023, 3, 15, 2, 50, 1, 1)
    if offset == "+0530":
        assert ts == utc(2023, 3, 14, 21, 20, 1, 1)
    else:
        assert ts == expected.replace(hour=hour)


def test_rfc3339_t_and_epoch_time_formats(read):
    text = (
        "2023-03-15T02:50:01.500000+00:00 [info] <0.1.0> accepting AMQP connection\n"
        "1678848602.250000 [info] <0.1.0> accepting AMQP connection\n"
        "1678848603000001 [info] <0.1.0> accepting AMQP connection\n"
    )
    loaded = read("rabbit.log", text)
    clean(loaded)
    assert loaded.events.sort("line")["ts"].to_list() == [
        utc(2023, 3, 15, 2, 50, 1, 500000),
        utc(2023, 3, 15, 2, 50, 2, 250000),
        utc(2023, 3, 15, 2, 50, 3, 1),
    ]


@pytest.mark.parametrize(
    ("word", "level"),
    [
        ("dbug", "debug"),
        ("debug", "debug"),
        ("DBG", "debug"),
        ("info", "info"),
        ("INF", "info"),
        ("noti", "info"),
        ("notice", "info"),
        ("NTC", "info"),
        ("warn", "warning"),
        ("warning", "warning"),
        ("WRN", "warning"),
        ("erro", "error"),
        ("ERROR", "error"),
        ("err", "error"),
        ("crit", "critical"),
        ("critical", "critical"),
        ("alrt", "critical"),
        ("alert", "critical"),
        ("emgc", "critical"),
        ("EMERGENCY", "critical"),
    ],
)
def test_every_level_format_maps_to_our_levels(read, word, level):
    line = f"2021-07-29 16:09:34.409461+00:00 [{word}] <0.29174.0> Restarting crashed queue 'q' in vhost '/'.\n"
    loaded = read("rabbit.log", line)
    clean(loaded)
    assert loaded.events["level"].to_list() == [level]


def test_crash_report_of_a_39_node_with_four_letter_levels_is_one_record(read):
    text = """\
2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** Generic server <0.29174.0> terminating
2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** Last message in was {'$gen_cast',init}
2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** When Server state == {q,{amqqueue,{resource,<<"/">>,queue,<<"jobs.dispatch">>}}}
2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** Reason for termination ==
2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** {{badmatch,{error,enoent}},[{rabbit_msg_store,recover_file_summary,3,[]}]}
2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0>
2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0>   crasher:
2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0>     initial call: rabbit_prequeue:init/1
2021-07-29 16:09:34.411208+00:00 [erro] <0.29171.0> Restarting crashed queue 'jobs.dispatch' in vhost '/'.
"""
    loaded = read("rabbit@rmq-2.log", text)
    clean(loaded)
    crash, restart = rows(loaded)
    assert crash["message"].startswith("** Generic server <0.29174.0> terminating\n** Last")
    assert crash["message"].endswith("\n    initial call: rabbit_prequeue:init/1")
    assert restart["line"] == 9 and restart["level"] == "error"
    assert restart["attrs"]["queue"] == "jobs.dispatch"
    assert restart["attrs"]["vhost"] == "/"


def test_startup_and_shutdown_records_keep_version_and_lifecycle(read):
    text = """\
2023-03-15 09:49:02.118034+00:00 [info] <0.9432.0> RabbitMQ is asked to stop...
2023-03-15 09:49:02.301442+00:00 [info] <0.9432.0> Stopping RabbitMQ applications and their dependencies in the following order:
2023-03-15 09:49:02.301442+00:00 [info] <0.9432.0>     rabbitmq_management
2023-03-15 09:49:02.301442+00:00 [info] <0.9432.0>     rabbit
2023-03-15 09:49:04.950125+00:00 [info] <0.9432.0> Successfully stopped RabbitMQ and its dependencies
2023-03-15 09:49:04.950433+00:00 [info] <0.9432.0> Halting Erlang VM with the following applications:
2023-03-15 09:49:04.950433+00:00 [info] <0.9432.0>     ra
2023-03-15 09:50:10.101010+00:00 [info] <0.222.0> RabbitMQ is asked to start...
2023-03-15 09:50:12.345678+00:00 [info] <0.230.0>
2023-03-15 09:50:12.345678+00:00 [info] <0.230.0>  Starting RabbitMQ 3.11.10 on Erlang 25.3 [jit]
2023-03-15 09:50:12.345678+00:00 [info] <0.230.0>  Copyright (c) 2007-2023 VMware, Inc. or its affiliates.
2023-03-15 09:50:12.345678+00:00 [info] <0.230.0>  Licensed under the MPL 2.0. Website: https://rabbitmq.com
2023-03-15 09:50:20.771204+00:00 [info] <0.230.0> Server startup complete; 4 plugins started.
2023-03-15 09:50:20.771204+00:00 [info] <0.230.0>  * rabbitmq_prometheus
2023-03-15 09:50:20.771204+00:00 [info] <0.230.0>  * rabbitmq_management
2023-03-15 09:50:20.771204+00:00 [info] <0.230.0>  * rabbitmq_management_agent
2023-03-15 09:50:20.771204+00:00 [info] <0.230.0>  * rabbitmq_web_dispatch
"""
    loaded = read("rabbit@rmq-1.log", text)
    clean(loaded)
    got = rows(loaded)
    assert [(r["line"], r["attrs"].get("lifecycle")) for r in got] == [
        (1, "stopping"),
        (2, "stopping"),
        (5, "stopped"),
        (6, "halting"),
        (8, "starting"),
        (9, "starting"),
        (13, "started"),
    ]
    starting = got[5]
    assert starting["message"].startswith("Starting RabbitMQ 3.11.10 on Erlang 25.3 [jit]\n")
    assert starting["attrs"]["version"] == "3.11.10"
    assert starting["attrs"]["erlang"] == "25.3"
    assert starting["attrs"]["product"] == "RabbitMQ"
    started = got[6]
    assert started["attrs"]["plugins"] == 4
    assert started["message"].endswith("* rabbitmq_web_dispatch")


# --- 3.7 and 3.8 (lager) ------------------------------------------------------------------

LAGER = """\
2023-03-15 03:50:01.123 [warning] <0.1234.0> closing AMQP connection <0.1234.0> (10.0.0.5:43210 -> 10.0.1.7:5672, vhost: '/', user: 'circleci'):
client unexpectedly closed TCP connection
2023-03-15 03:50:01.407 [error] <0.1240.0> closing AMQP connection <0.1240.0> (10.0.0.5:43266 -> 10.0.1.7:5672):
missed heartbeats from client, timeout: 60s
2023-03-15 03:50:02.611 [info] <0.1251.0> connection <0.1251.0> (10.0.0.5:43280 -> 10.0.1.7:5672): user 'circleci' authenticated and granted access to vhost '/'
"""


def test_lager_times_have_no_zone_and_take_the_one_given(read):
    loaded = read("rabbit@rmq-1.log", LAGER, tz="Europe/Berlin")
    clean(loaded)
    got = rows(loaded)
    assert [(r["line"], r["ts"]) for r in got] == [
        (1, utc(2023, 3, 15, 2, 50, 1, 123000)),
        (3, utc(2023, 3, 15, 2, 50, 1, 407000)),
        (5, utc(2023, 3, 15, 2, 50, 2, 611000)),
    ]
    assert got[0]["message"].endswith(":\nclient unexpectedly closed TCP connection")
    assert got[1]["message"].endswith(":\nmissed heartbeats from client, timeout: 60s")
    assert got[2]["attrs"]["user"] == "circleci" and got[2]["attrs"]["vhost"] == "/"
    zone = loaded.summary.assumptions.filter(pl.col("what") == "time zone")
    assert zone.select("value", "certainty").row(0) == ("Europe/Berlin", "stated")


def test_lager_times_without_tz_are_assumed_utc_and_said_so(read):
    loaded = read("rabbit@rmq-1.log", LAGER)
    assert loaded.events.sort("line")["ts"][0] == utc(2023, 3, 15, 3, 50, 1, 123000)
    zone = loaded.summary.assumptions.filter(pl.col("what") == "time zone")
    assert zone.select("value", "certainty").row(0) == ("UTC", "assumed")


@pytest.mark.parametrize(
    "stamp",
    ["1678817460000000", "1678817460.000123", "1678817460.250", "2023-03-14 18:11:00.000123+01:00"],
)
def test_a_39_message_of_many_lines_is_one_record_whatever_its_time_format(read, stamp):
    alarm = [
        "memory resource limit alarm set on node 'rabbit@rmq-0'.",
        "",
        "**********************************************************",
        "*** Publishers will be blocked until this alarm clears ***",
        "**********************************************************",
    ]
    heartbeat = [
        "closing AMQP connection <0.8900.0> (10.0.0.6:43300 -> 10.0.1.7:5672, duration: '12s'):",
        "missed heartbeats from client, timeout: 60s",
    ]
    lines = [f"{stamp} [warning] <0.290.0> {line}".rstrip() for line in alarm]
    later = stamp.replace("0000", "0001", 1)
    lines += [f"{later} [error] <0.8900.0> {line}" for line in heartbeat]
    loaded = read("rabbit@rmq-0.log", "\n".join(lines) + "\n")
    clean(loaded)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 6]
    assert events["level"].to_list() == ["warning", "error"]
    assert events["message"][0].splitlines() == alarm
    assert events["message"][1].splitlines() == heartbeat


def test_lager_lines_with_the_same_millisecond_prefix_stay_apart(read):
    text = """\
2021-08-24 09:07:01.688 [info] <0.9.0> Feature flags:   [ ] quorum_queue
2021-08-24 09:07:01.688 [info] <0.9.0> Feature flags:   [ ] virtual_host_metadata
2021-08-24 09:07:01.688 [info] <0.9.0> Feature flags: feature flag states written to disk: yes
"""
    loaded = read("rabbit@rmq-1.log", text)
    clean(loaded)
    assert loaded.events.height == 3


def test_cluster_events_name_the_other_node_and_the_queue(read):
    text = """\
2023-03-15 02:50:05.101 [info] <0.478.0> rabbit on node 'rabbit@rmq-2' down
2023-03-15 02:50:05.102 [info] <0.478.0> Node rabbit@rmq-2 is down, deleting its listeners
2023-03-15 02:50:05.140 [info] <0.1201.0> Mirrored queue 'jobs.dispatch' in vhost '/': Slave <rabbit@rmq-1.1.974.0> saw deaths of mirrors <rabbit@rmq-2.3.663.0>
2023-03-15 02:50:05.201 [error] <0.1411.0> ** Connection attempt from node 'rabbit@rmq-3' rejected. Invalid challenge reply. **
"""
    loaded = read("rabbit@rmq-1.log", text)
    clean(loaded)
    got = rows(loaded)
    assert [r["attrs"].get("peer_node") for r in got] == [
        "rabbit@rmq-2",
        "rabbit@rmq-2",
        None,
        "rabbit@rmq-3",
    ]
    assert (got[2]["attrs"]["queue"], got[2]["attrs"]["vhost"]) == ("jobs.dispatch", "/")
    assert {r["component"] for r in got} == {"rabbit@rmq-1"}


DOCKER_38 = """\
2020-09-03 02:50:32.268 [info] <0.44.0> Application lager started on node rabbit@rmq-1
2020-09-03 02:50:32.636 [info] <0.269.0> 
 Starting RabbitMQ 3.8.7 on Erlang 23.0.3
 Copyright (c) 2007-2020 VMware, Inc. or its affiliates.
 Licensed under the MPL 2.0. Website: https://rabbitmq.com

  ##  ##      RabbitMQ 3.8.7
  ##  ##
  ##########  Copyright (c) 2007-2020 VMware, Inc. or its affiliates.
  ######  ##
  ##########  Licensed under the MPL 2.0. Website: https://rabbitmq.com

  Doc guides: https://rabbitmq.com/documentation.html

  Starting broker...2020-09-03 02:50:32.639 [info] <0.269.0> 
 node           : rabbit@rmq-1
 home dir       : /var/lib/rabbitmq
 config file(s) : /etc/rabbitmq/rabbitmq.conf
 cookie hash    : kCs4Ep0qEDfhBY4m4sGAZw==
 log(s)         : <stdout>
 database dir   : /var/lib/rabbitmq/mnesia/rabbit@rmq-1
2020-09-03 02:50:34.701 [info] <0.269.0> Server startup complete; 3 plugins started.
 * rabbitmq_prometheus
 * rabbitmq_management
 * rabbitmq_management_agent
 completed with 3 plugins.
"""


def test_lager_console_output_joins_records_and_keeps_the_glued_header(read):
    loaded = read("stdout.log", DOCKER_38)
    clean(loaded)
    got = rows(loaded)
    assert [(r["line"], r["attrs"].get("lifecycle")) for r in got] == [
        (1, None),
        (2, "starting"),
        (15, None),
        (22, "started"),
    ]
    assert got[1]["message"].startswith("Starting RabbitMQ 3.8.7 on Erlang 23.0.3\n Copyright")
    assert got[1]["attrs"]["version"] == "3.8.7"
    banner = got[2]
    assert banner["attrs"]["console"] == "Starting broker..."
    assert banner["message"].startswith("node           : rabbit@rmq-1\n home dir")
    assert banner["ts"] == utc(2020, 9, 3, 2, 50, 32, 639000)
    assert got[3]["message"].endswith("\n completed with 3 plugins.")
    assert {r["component"] for r in got} == {"rabbit@rmq-1"}
    assert {r["host"] for r in got} == {"rmq-1"}


def test_continuation_lines_at_the_top_of_a_rotated_file_are_unparsed(read):
    text = (
        " Licensed under the MPL 2.0. Website: https://rabbitmq.com\n"
        "client unexpectedly closed TCP connection\n" + LAGER
    )
    loaded = read("rabbit@rmq-1.log.1", text)
    files = loaded.summary.files
    assert files["unparsed_lines"].item() == 2
    assert files["first_unparsed"].item().to_list() == [1, 2]
    assert loaded.events.height == 3
    reasons = loaded.summary.warnings["reason"].unique().to_list()
    assert reasons == ["continuation line before the first RabbitMQ record"]


# --- before 3.7 (error_logger reports) ---------------------------------------------------

REPORTS = """\
=INFO REPORT==== 5-Mar-2023::09:50:12 ===
Starting RabbitMQ 3.6.16 on Erlang 20.3.8.26
Copyright (C) 2007-2018 Pivotal Software, Inc.
Licensed under the MPL.  See http://www.rabbitmq.com/

=INFO REPORT==== 5-Mar-2023::09:50:12 ===
node           : rabbit@rmq-old
home dir       : /var/lib/rabbitmq
config file(s) : /etc/rabbitmq/rabbitmq.config
cookie hash    : kCs4Ep0qEDfhBY4m4sGAZw==
log            : /var/log/rabbitmq/rabbit@rmq-old.log
sasl log       : /var/log/rabbitmq/rabbit@rmq-old-sasl.log
database dir   : /var/lib/rabbitmq/mnesia/rabbit@rmq-old

=WARNING REPORT==== 15-Mar-2023::02:50:01 ===
closing AMQP connection <0.580.0> (10.0.0.5:54878 -> 10.0.1.7:5672, vhost: '/', user: 'circleci'):
client unexpectedly closed TCP connection

=ERROR REPORT==== 15-Mar-2023::02:50:01 ===
** Generic server <0.612.0> terminating
** Last message in was {'$gen_cast',{method,{'basic.ack',17,false},none,noflow}}
** Reason for termination ==
** {{badmatch,{error,enoent}},[{rabbit_queue_index,load_segment,3,[]}]}

=CRASH REPORT==== 15-Mar-2023::02:50:01 ===
  crasher:
    initial call: gen:init_it/6
    pid: <0.612.0>
    exception exit: {{badmatch,{error,enoent}},[]}

=SUPERVISOR REPORT==== 15-Mar-2023::02:50:01 ===
     Supervisor: {<0.611.0>,rabbit_amqqueue_sup}
     Context:    child_terminated
     Reason:     {{badmatch,{error,enoent}},[]}

=PROGRESS REPORT==== 15-Mar-2023::02:50:02 ===
          supervisor: {local,rabbit_amqqueue_sup_sup}
             started: [{pid,<0.640.0>}]

=INFO REPORT==== 15-Mar-2023::02:50:02 ===
Mirrored queue 'jobs.dispatch' in vhost '/': Slave <rabbit@rmq-old.1.974.0> saw deaths of mirrors <rabbit@rmq-two.3.663.0>

=ERROR REPORT==== 15-Mar-2023::02:50:03 ===
** Connection attempt from node 'rabbit@rmq-three' rejected. Invalid challenge reply. **

=INFO REPORT==== 15-Mar-2023::02:55:00 ===
Stopping RabbitMQ

=INFO REPORT==== 15-Mar-2023::02:55:01 ===
Stopped RabbitMQ application
"""


def test_pre_37_reports_run_to_the_blank_line_and_map_their_kinds(read):
    loaded = read("rabbit.log", REPORTS)
    clean(loaded)
    got = rows(loaded)
    assert [(r["line"], r["level"], r["attrs"]["report"]) for r in got] == [
        (1, "info", "INFO"),
        (6, "info", "INFO"),
        (15, "warning", "WARNING"),
        (19, "error", "ERROR"),
        (25, "error", "CRASH"),
        (31, "warning", "SUPERVISOR"),
        (36, "info", "PROGRESS"),
        (40, "info", "INFO"),
        (43, "error", "ERROR"),
        (46, "info", "INFO"),
        (49, "info", "INFO"),
    ]
    assert got[0]["ts"] == utc(2023, 3, 5, 9, 50, 12)
    assert got[0]["attrs"]["version"] == "3.6.16"
    assert got[0]["attrs"]["erlang"] == "20.3.8.26"
    assert got[2]["message"] == (
        "closing AMQP connection <0.580.0> (10.0.0.5:54878 -> 10.0.1.7:5672, vhost: '/',"
        " user: 'circleci'):\nclient unexpectedly closed TCP connection"
    )
    assert got[4]["message"].startswith("crasher:\n    initial call: gen:init_it/6")
    assert got[7]["attrs"]["queue"] == "jobs.dispatch"
    assert got[8]["attrs"]["peer_node"] == "rabbit@rmq-three"
    assert [r["attrs"].get("lifecycle") for r in got[-2:]] == ["stopping", "stopped"]
    assert {r["component"] for r in got} == {"rabbit@rmq-old"}


def spans(text: str, path: str = "rabbit.log") -> list[tuple[int, int]]:
    """``(line, end_line)`` of each record the parser makes of ``text``."""
    lines = pl.LazyFrame({"text": text.splitlines()}).select(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        text=pl.col("text"),
        prefix_ts=pl.lit(None, pl.Datetime("us", "UTC")),
        stream=pl.lit(None, pl.String),
        host=pl.lit(None, pl.String),
        container=pl.lit(None, pl.String),
        path=pl.lit(path),
    )
    got = rabbitmq.parse(lines).collect()
    assert got.schema == pl.Schema(RECORD_SCHEMA)
    return list(got.select("line", "end_line").iter_rows())


def test_pre_37_blank_lines_belong_to_the_report_above():
    assert spans(REPORTS) == [
        (1, 5),
        (6, 14),
        (15, 18),
        (19, 24),
        (25, 30),
        (31, 35),
        (36, 39),
        (40, 42),
        (43, 45),
        (46, 48),
        (49, 50),
    ]


def test_modern_and_lager_spans():
    assert spans(MODERN) == [(1, 2), (3, 4), (5, 6), (7, 7)]
    assert spans(LAGER) == [(1, 2), (3, 4), (5, 5)]


# --- JSON ---------------------------------------------------------------------------------

JSON_LOG = """\
{"time":"2023-03-14 22:50:01.123456-04:00","level":"warning","msg":"closing AMQP connection <0.1234.0> (10.0.0.5:43210 -> 10.0.1.7:5672, vhost: '/', user: 'circleci'):\\nclient unexpectedly closed TCP connection","line":1364,"pid":"<0.1234.0>","file":"rabbit_reader.erl","mfa":["rabbit_reader","log_connection_exception_with_severity",3],"domain":"rabbitmq.connection"}
{"time":"2023-03-14 22:50:01.200000-04:00","level":"info","msg":"accepting AMQP connection <0.1240.0> (10.0.0.5:43266 -> 10.0.1.7:5672)","pid":"<0.1240.0>","domain":"rabbitmq.connection"}
{"time":"2023-03-14 22:50:01.3","level":"error","msg":"closing AMQP conn
{"time":1678848602000001,"level":"noti","msg":"Time to start RabbitMQ: 2294 ms","line":427,"pid":"<0.9.0>","file":"rabbit.erl","mfa":["rabbit","start_it",1]}

{"time":"2023-03-15 02:50:03.000000+00:00","level":"info","msg":"Server startup complete; 4 plugins started.\\n * rabbitmq_prometheus","pid":"<0.230.0>"}
"""


def test_json_lines_read_their_fields_and_report_the_broken_line(read):
    loaded = read("rabbit@rmq-1.log", JSON_LOG)
    files = loaded.summary.files
    assert files["unparsed_lines"].item() == 1
    assert files["first_unparsed"].item().to_list() == [3]
    warning = loaded.summary.warnings.row(0, named=True)
    assert warning["line"] == 3 and warning["reason"].startswith("broken JSON")
    assert warning["text"].endswith('"msg":"closing AMQP conn')
    got = rows(loaded)
    assert [r["line"] for r in got] == [1, 2, 4, 6]
    first = got[0]
    assert first["ts"] == utc(2023, 3, 15, 2, 50, 1, 123456)
    assert first["level"] == "warning"
    assert first["message"].endswith("'circleci'):\nclient unexpectedly closed TCP connection")
    assert first["component"] == "rabbit@rmq-1" and first["host"] == "rmq-1"
    assert {k: first["attrs"][k] for k in ("pid", "domain", "mfa", "src", "client", "user")} == {
        "pid": "<0.1234.0>",
        "domain": "rabbitmq.connection",
        "mfa": "rabbit_reader:log_connection_exception_with_severity/3",
        "src": "rabbit_reader.erl:1364",
        "client": "10.0.0.5:43210",
        "user": "circleci",
    }
    assert got[2]["ts"] == utc(2023, 3, 15, 2, 50, 2, 1)
    assert got[2]["level"] == "info"
    assert got[3]["attrs"]["lifecycle"] == "started"
    assert got[3]["attrs"]["plugins"] == 4


def test_non_json_lines_in_a_json_log_are_reported_one_by_one(read):
    text = (
        "  ##  ##      RabbitMQ 3.13.7\n"
        'Starting broker...{"time":"2023-03-15 02:50:01.000001+00:00","level":"info",'
        '"msg":"RabbitMQ is asked to start...","pid":"<0.222.0>"}\n'
        '{"time":"2023-03-15 02:50:02.000001+00:00","level":"info","msg":"ok","pid":"<0.1.0>"}\n'
        "  Doc guides:  https://www.rabbitmq.com/docs\n"
    )
    loaded = read("rabbit.log", text)
    assert loaded.summary.files["first_unparsed"].item().to_list() == [1, 4]
    got = rows(loaded)
    assert [r["line"] for r in got] == [2, 3]
    assert got[0]["attrs"]["console"] == "Starting broker..."
    assert got[0]["attrs"]["lifecycle"] == "starting"


# --- which node, which host --------------------------------------------------------------

LINE = "2023-03-15 02:50:01.123456+00:00 [info] <0.1.0> accepting AMQP connection <0.1.0> (10.0.0.5:1 -> 10.0.1.7:5672)\n"


@pytest.mark.parametrize(
    ("name", "node", "host"),
    [
        ("rabbit@rmq-1.log", "rabbit@rmq-1", "rmq-1"),
        ("rabbit@rmq-1.log.1", "rabbit@rmq-1", "rmq-1"),
        ("rabbit@rmq-1.log.2.gz", "rabbit@rmq-1", "rmq-1"),
        ("rabbit@rmq-1_upgrade.log", "rabbit@rmq-1", "rmq-1"),
        ("rabbit@rmq-1-sasl.log", "rabbit@rmq-1", "rmq-1"),
        (
            "logs/rmq-2/rabbit@rmq-2.example.internal.log",
            "rabbit@rmq-2.example.internal",
            "rmq-2.example.internal",
        ),
        ("rabbitmq.log", "rabbitmq", None),
        ("bundle/logs/var/log/rabbitmq/rabbit@mq-b.log", "rabbit@mq-b", "mq-b"),
        ("collected/var/log/rabbitmq/rabbit@rmq-2.prod.log.1", "rabbit@rmq-2.prod", "rmq-2.prod"),
        (
            "ip-10-0-1-5/var/log/rabbitmq/rabbit@ip-10-0-1-5.log",
            "rabbit@ip-10-0-1-5",
            "ip-10-0-1-5",
        ),
        ("mq-host-3/var/log/rabbitmq/rabbitmq.log", "rabbitmq", "mq-host-3"),
        (
            "ip-10-0-1-5/var/log/pods/mq_rabbitmq-server-0_0a1b/rabbitmq/0.log",
            "rabbitmq",
            "ip-10-0-1-5",
        ),
    ],
)
def test_node_and_host_come_from_the_file_name(read, name, node, host):
    loaded = read(name, LINE)
    clean(loaded)
    assert loaded.events.select("component", "host").row(0) == (node, host)


def test_a_node_stated_in_the_file_applies_to_every_record_of_it(read):
    text = (
        "2023-03-15 09:50:11.000001+00:00 [notice] <0.44.0> Logging: configured log handlers are now ACTIVE\n"
        "2023-03-15 09:50:12.346101+00:00 [info] <0.230.0>\n"
        "2023-03-15 09:50:12.346101+00:00 [info] <0.230.0>  node           : rabbit@rmq-3\n"
        "2023-03-15 09:50:12.346101+00:00 [info] <0.230.0>  home dir       : /var/lib/rabbitmq\n"
        "2023-03-15 09:50:13.000001+00:00 [info] <0.230.0> Running boot step pre_boot defined by app rabbit\n"
    )
    loaded = read("rabbit@old-name.log", text)
    clean(loaded)
    assert loaded.events["component"].unique().to_list() == ["rabbit@rmq-3"]
    assert loaded.events["host"].unique().to_list() == ["rmq-3"]


CRI = """\
2023-03-15T09:50:12.346301512Z stdout F 2023-03-15 09:50:12.346101+00:00 [info] <0.230.0>
2023-03-15T09:50:12.346301512Z stdout F 2023-03-15 09:50:12.346101+00:00 [info] <0.230.0>  node           : rabbit@rabbitmq-0.rabbitmq-nodes.default
2023-03-15T09:50:12.346301512Z stdout F 2023-03-15 09:50:12.346101+00:00 [info] <0.230.0>  home dir       : /var/lib/rabbitmq
2023-03-15T10:50:01.123800204Z stdout F 2023-03-15 11:50:01.123456+01:00 [warning] <0.8812.0> closing AMQP connection <0.8812.0> (10.0.0.5:43210 -> 10.0.1.7:5672, vhost: '/', user: 'circleci'):
2023-03-15T10:50:01.123800204Z stdout F 2023-03-15 11:50:01.123456+01:00 [warning] <0.8812.0> client unexpectedly closed TCP connection
"""


def test_a_rabbitmq_file_inside_a_cri_runtime_prefix(read):
    path = "nodes/ip-10-0-1-5/var/log/pods/default_rabbitmq-0_0a1b2c/rabbitmq/0.log"
    loaded = read(path, CRI)
    files = loaded.summary.files
    assert files.select("format", "prefix").row(0) == ("rabbitmq", "cri")
    clean(loaded)
    banner, closing = rows(loaded)
    assert (banner["line"], closing["line"]) == (1, 4)
    assert closing["ts"] == utc(2023, 3, 15, 10, 50, 1, 123456)
    assert closing["message"].endswith("):\nclient unexpectedly closed TCP connection")
    assert closing["host"] == "ip-10-0-1-5"
    assert closing["component"] == "rabbit@rabbitmq-0.rabbitmq-nodes.default"


def test_without_a_node_the_container_names_the_component(read):
    path = "nodes/ip-10-0-1-6/var/log/pods/default_rabbitmq-1_0a1b2c/rabbitmq/0.log"
    loaded = read(path, "\n".join(CRI.splitlines()[3:]) + "\n")
    clean(loaded)
    assert loaded.events.select("component", "host").row(0) == ("rabbitmq", "ip-10-0-1-6")


# --- recognising ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "word"),
    [(MODERN, "3.9+"), (LAGER, "lager"), (REPORTS, "REPORT"), (JSON_LOG, "JSON")],
)
def test_sniff_recognises_every_generation_and_says_which(text, word):
    score = rabbitmq.sniff(text.splitlines())
    assert score.score >= 0.8
    assert word in score.why


@pytest.mark.parametrize(
    "text",
    [
        'I0314 18:00:01.123456       1 proxier.go:812] "Sync failed" retryingTime="30s"\n',
        '[INFO] 10.0.0.5:43210 - 4242 "A IN rabbitmq.default.svc. udp 40 false 512" NOERROR\n',
        "Step 3/7 : RUN make test\n" * 30 + MODERN.splitlines()[0] + "\n",
    ],
)
def test_sniff_turns_down_other_logs(text):
    score = rabbitmq.sniff(text.splitlines())
    assert score.score < MIN_SCORE
    assert score.why


KLOG_JSON_AFTER_A_BROKEN_LINE = """\
{"ts":1678816801.123,"caller":"proxier.go:15
{"ts":1678816801.123,"caller":"proxier.go:1520","msg":"Sync failed","v":0}
{"ts":1678816801.456,"caller":"proxier.go:858","msg":"Sync failed","v":0,"retryingTime":"30s"}
{"ts":1678816802.001,"caller":"proxier.go:1508","msg":"Failed to execute iptables-restore","err":"exit status 1"}
{"ts":1678816802.350,"caller":"proxier.go:820","msg":"SyncProxyRules complete","v":2,"elapsed":"35.1ms"}
"""


def test_klog_json_with_a_broken_first_line_is_not_taken_for_rabbitmq():
    sample = KLOG_JSON_AFTER_A_BROKEN_LINE.splitlines()
    assert rabbitmq.sniff(sample).score == 0.0
    best, score = registry.rank(sample)[0]
    assert best.name != "rabbitmq"
    assert score.score >= MIN_SCORE


@pytest.mark.parametrize(
    "line",
    [
        '{"time":"2023-03-15 02:50:01.123456+00:00","level":"info","msg":"accepting AMQP connection"}',
        '{"time":1678848602000001,"level":"noti","msg":"Time to start RabbitMQ: 2294 ms","pid":"<0.9.0>"}',
    ],
)
def test_rabbitmq_json_is_still_recognised_by_its_own_keys(line):
    sample = ['{"time":"2023-03-15 02:50:01.1', *[line] * 4]
    best, score = registry.rank(sample)[0]
    assert (best.name, score.score) == ("rabbitmq", 1.0)


def test_a_json_record_after_text_lines_and_coloured_console_lines_start_records(read):
    text = (
        "2023-03-15 02:50:01.123456+00:00 [info] <0.230.0> Starting RabbitMQ 3.11.9\n"
        "2023-03-15 02:50:01.200000+00:00 [info] <0.230.0>  node           : rabbit@rmq-0\n"
        '{"time":"2023-03-15 02:50:02.000871+00:00","level":"error","msg":"closing AMQP '
        'connection","pid":"<0.1234.0>","domain":"rabbitmq.connection"}\n'
        "\x1b[38;5;87m2023-03-15 02:50:03.123456+00:00 [info] <0.230.0> Server startup "
        "complete; 4 plugins started.\x1b[0m\n"
        "\x1b[38;5;160m2023-03-15 02:50:04.123456+00:00 [error] <0.880.0> closing AMQP "
        "connection <0.880.0> (10.0.0.5:1 -> 10.0.1.7:5672):\x1b[0m\n"
        "\x1b[38;5;160mmissed heartbeats from client, timeout: 60s\x1b[0m\n"
    )
    loaded = read("rabbit@rmq-0.log", text)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 2, 3, 4, 5]
    assert events["level"].to_list() == ["info", "info", "error", "info", "error"]
    assert events["message"][2] == "closing AMQP connection"
    assert events["message"][3] == "Server startup complete; 4 plugins started."
    assert events["message"][4].endswith("):\nmissed heartbeats from client, timeout: 60s")


LOGRUS_JSON = """\
{"animal":"walrus","level":"info","msg":"A group of walrus emerges from the ocean","size":10,"time":"2014-03-10 19:57:38.562264131 -0400 EDT"}
{"level":"error","msg":"upstream timed out","retries":3,"time":"2014-03-10 19:58:02.00417 +0000 UTC"}
"""
RABBIT_JSON = (
    '{"time":"2024-10-04 03:38:29.709578-04:00","level":"info","msg":"Time to start RabbitMQ:'
    ' 2294 ms","line":427,"pid":"<0.9.0>","file":"rabbit.erl","mfa":["rabbit","start_it",1]}\n'
)


def test_rabbitmq_json_with_rfc3339_t_times_is_rabbitmq(read):
    records = [
        {
            "time": "2023-03-14T18:00:01.123456+00:00",
            "level": "info",
            "msg": "Starting RabbitMQ 3.11.9 on Erlang 25.2.3 [jit]",
            "pid": "<0.230.0>",
            "domain": "rabbitmq.prelaunch",
        },
        {
            "time": "2023-03-14T19:00:03.5+01:00",
            "level": "warning",
            "msg": "closing AMQP connection <0.1234.0> (10.0.0.5:43210 -> 10.0.1.7:5672):\n"
            "client unexpectedly closed TCP connection",
            "line": 1364,
            "pid": "<0.1234.0>",
            "file": "rabbit_reader.erl",
            "domain": "rabbitmq.connection",
        },
    ]
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    for format in (None, "rabbitmq"):
        loaded = read("rabbit@mq-b.log", text, format=format)
        clean(loaded)
        events = loaded.events.sort("line")
        assert set(events["source"]) == {"rabbitmq"}
        assert events["ts"].to_list() == [
            utc(2023, 3, 14, 18, 0, 1, 123456),
            utc(2023, 3, 14, 18, 0, 3, 500000),
        ]
        assert events["level"].to_list() == ["info", "warning"]
        assert set(events["host"]) == {"mq-b"}


def test_go_time_strings_are_not_rabbitmq_json(read):
    loaded = read("walrus.log", LOGRUS_JSON)
    assert loaded.summary.files["format"].to_list() == ["go-json"]
    events = loaded.events.sort("line")
    assert events["ts"].to_list() == [
        datetime(2014, 3, 10, 23, 57, 38, 562264, tzinfo=UTC),
        datetime(2014, 3, 10, 19, 58, 2, 4170, tzinfo=UTC),
    ]
    assert events["level"].to_list() == ["info", "error"]
    rabbit = read("rabbit.json.log", RABBIT_JSON)
    assert rabbit.summary.files["format"].to_list() == ["rabbitmq"]
    assert rabbit.events["ts"][0] == datetime(2024, 10, 4, 7, 38, 29, 709578, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "rows", "levels", "first"),
    [
        ("rabbit-3.6-reports.log", 4, "iwww", "2016-06-16 10:59:56"),
        ("rabbit-3.6-shutdown.log", 5, "iieee", "2017-04-05 18:48:48"),
        ("rabbit-3.6-startup.log", 2, "ii", "2016-09-22 16:15:24"),
        ("rabbit-3.7-applications.log", 12, "i" * 12, "2018-04-30 14:18:07.061"),
        ("rabbit-3.7-badmatch.log", 1, "e", "2018-08-24 12:36:28.840"),
        ("rabbit-3.7-partial-partition.log", 7, "iieiiie", "2018-12-05 06:37:08.599"),
        ("rabbit-3.8-connections.log", 9, "i" * 9, "2019-11-22 16:00:21.054"),
        ("rabbit-3.8-lager-dropped.log", 10, "iiiiiiwwii", "2021-10-11 10:13:02.519"),
        ("rabbit-3.8-unexpectedly-closed.log", 1, "w", "2020-04-19 07:00:03.037"),
        ("rabbit-3.8-crash-report.log", 5, "eeeee", "2019-11-20 01:42:09.375"),
        ("rabbit-3.8-lager-debug.log", 8, "dddiidii", "2021-03-11 08:51:45.325"),
        ("rabbit-3.9-prelaunch.log", 4, "didi", "2021-03-03 09:22:30.377392"),
        ("rabbit-3.9-crasher-lc4.log", 1, "e", "2022-03-29 16:14:46.216854"),
        ("rabbit-3.7-sasl-crash-report.log", 1, "e", "2018-07-03 10:12:24.612692"),
        ("rabbitmq-server.journal", 4, "eeiw", "2023-04-29 10:42:33.240761"),
        ("rabbitmq-json.log", 1, "i", "2024-10-04 07:38:29.709578"),
        ("compose.log", 8, "i" * 8, "2023-06-22 08:12:06.946635"),
        ("taiga-compose.log", 5, "iiiiw", "2021-11-09 06:40:36.827"),
    ],
)
def test_real_rabbitmq_lines_are_one_row_a_record(name, rows, levels, first):
    """RabbitMQ lines from 3.6 to 3.13 as pasted in public issues
    (``tests/data/real/README.md``): a row per record, reports and repeated prefixes of
    one event joined, at the UTC time the record states."""
    loaded = read_real(REAL / name)
    events = loaded.events.sort("line")
    assert events.height == rows and set(events["source"]) == {"rabbitmq"}
    assert "".join(level[0] for level in events["level"]) == levels
    assert str(events["ts"][0]).removesuffix("+00:00").removesuffix("000") == first


@pytest.mark.parametrize(
    ("name", "head", "message_lines", "pid"),
    [
        ("rabbit-3.9-crasher-lc4.log", "initial call: rabbit_prequeue:init/1", 8, "<0.463.0>"),
        # the report's header line is the record's time, not part of its message
        (
            "rabbit-3.7-sasl-crash-report.log",
            "initial call: lager_handler_watcher:init/1",
            18,
            None,
        ),
    ],
)
def test_real_crash_reports_are_one_record_without_their_repeated_headers(
    name, head, message_lines, pid
):
    """A crash report as the new logger writes it (its header on every line, the level
    as ``erro``) and as SASL wrote it before 3.8 (a report header, then the lines): one
    error record whose message is the report's lines, none of them with a header."""
    loaded = read_real(REAL / name)
    assert loaded.events.height == 1
    record = loaded.events.row(0, named=True)
    lines = record["message"].split("\n")
    assert (lines[0], lines[1].strip(), len(lines)) == ("crasher:", head, message_lines)
    assert "[erro]" not in record["message"] and "REPORT====" not in record["message"]
    assert json.loads(record["attrs"]).get("pid") == pid

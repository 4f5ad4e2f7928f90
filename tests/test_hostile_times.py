"""Clocks gone wrong: out-of-range and far-off times, leap seconds, zones stated and given,
daylight-saving changes and impossible dates, in the real formats."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import timeline
from parsers.common import PLACEHOLDER_YEAR
from timeline.reading.settle import in_year


def cri_klog(times: list[datetime], *, levels: str = "IIIIE", seed: int = 0) -> str:
    """kube-proxy klog lines behind a containerd (CRI) prefix at ``times`` (UTC)."""
    rng = random.Random(seed)
    out = []
    for t in times:
        level = rng.choice(levels)
        out.append(
            f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}123Z stderr F "
            f"{level}{t:%m%d %H:%M:%S}.{t.microsecond:06d}       1 proxier.go:812] "
            f'"Syncing iptables rules" ipFamily="IPv4" rules={rng.randrange(900, 1100)}'
        )
    return "\n".join(out) + "\n"


def two_storms(start: datetime, *, seed: int = 1) -> str:
    """Ten hours of a few info lines a minute, with two ten-minute storms of errors four
    hours apart, as kube-proxy writes them behind a CRI prefix."""
    rng = random.Random(seed)
    quiet = [start + timedelta(seconds=s) for s in range(0, 10 * 3600, 40)]
    bursts = [
        start + timedelta(hours=h, seconds=rng.uniform(0, 600)) for h in (3, 7) for _ in range(600)
    ]
    return cri_klog(sorted(quiet), levels="I", seed=seed) + cri_klog(
        sorted(bursts), levels="E", seed=seed
    )


def _beyond_cases(case: str) -> tuple[str, str, list[int], dict]:
    """A file with lines no clock can have written, in one of several real shapes: its
    name, text, the numbers of those lines, and the options to read it with."""
    normal = [datetime(2023, 3, 14, 18, m, 5) for m in range(30)]
    if case == "cri_prefix":
        lines = cri_klog(normal).splitlines()
        lines[3] = lines[3].replace("2023-03-14T", "9999-03-14T", 1)
        lines[7] = lines[7].replace("2023-03-14T", "0001-03-14T", 1)
        # Go's zero time on a start line: change inference looks at it
        lines[11] = (
            "0001-01-01T00:00:00.000000Z stderr F I0101 00:00:00.000000       1 "
            'server.go:661] "Version info" version="v1.24.10"'
        )
        return "node-1/kube-proxy-x2x7k/kube-proxy/0.log", "\n".join(lines), [4, 8, 12], {}
    if case == "stated_offset":
        lines = [
            f"{t:%Y-%m-%d %H:%M:%S}.123456+00:00 [info] <0.{n}.0> accepting AMQP connection"
            for n, t in enumerate(normal)
        ]
        lines[5] = "0001-01-01 00:00:00.000000+05:00 [info] <0.9.0> accepting AMQP connection"
        lines[20] = "9999-12-31 23:59:59.999999-05:00 [error] <0.9.0> closing AMQP connection"
        return "rabbit@mq-1.log", "\n".join(lines), [6, 21], {}
    if case == "given_year":
        text = "".join(
            f'{lvl}{day} 10:00:00.000000       1 proxier.go:812] "Sync" n={n}\n'
            for n, (lvl, day) in enumerate([("I", "0301"), ("I", "0410"), ("E", "1201")])
        )
        return "kube-proxy.log", text, [3], {"year": 2262}
    if case == "epoch_unit":
        lines = [
            json.dumps(
                {
                    "ts": t.replace(tzinfo=UTC).timestamp() * 1000 + 0.25,
                    "caller": "a.go:8",
                    "msg": "Sync",
                    "v": 0,
                },
                separators=(",", ":"),  # as klog writes it
            )
            for t in normal
        ]
        lines[2] = lines[2].replace(lines[2].split(",")[0], '{"ts":9.2e15')
        return "kube-proxy.log", "\n".join(lines), [3], {}
    # every line: nothing has a time
    lines = [
        f"0001-01-01 00:00:0{n}.000000+05:00 [info] <0.{n}.0> accepting AMQP" for n in range(3)
    ]
    return "rabbit@mq-1.log", "\n".join(lines), [1, 2, 3], {}


@pytest.mark.parametrize(
    "case", ["cri_prefix", "stated_offset", "given_year", "epoch_unit", "all_beyond"]
)
def test_times_no_clock_can_read_are_timeless_rows_and_the_run_goes_on(write, tmp_path, case):
    """Year 0, 9999, a year given that puts dates past 2262, an epoch in the wrong unit: such a time is
    kept as a row with no time of its own (its runtime prefix's, if that one can be
    read), said once per file, and the analysis and the report go on."""
    name, text, beyond, options = _beyond_cases(case)
    write(name, text + "\n")
    loaded = timeline.read(tmp_path, cache=False, **options)
    events = loaded.events
    assert events.height == len(text.splitlines())
    timeless = events.filter(pl.col("ts").is_null())["line"].sort().to_list()
    assert timeless == beyond
    problem = loaded.summary.files["problem"][0]
    assert (
        problem.startswith(f"{len(beyond)} records dated before 1677-09-21 or after 2262-04-11")
        and f"(first: line {beyond[0]})" in problem
    )
    years = events.drop_nulls("ts")["ts"].dt.year().unique().to_list()
    assert years in ([2023], [2262], [])
    result = timeline.analyze(loaded)
    report = timeline.write_report(loaded, result, tmp_path / "report.html")
    assert "no time of their own" in report.read_text()


@pytest.mark.parametrize("wrong", [datetime(1970, 1, 1), datetime(2262, 4, 11, 23, 47)])
def test_one_far_off_line_does_not_change_the_bucket_or_merge_incidents(write, tmp_path, wrong):
    logs = two_storms(datetime(2023, 3, 14, 9))
    write("kube-proxy.log", logs)
    expected = timeline.analyze(timeline.read(tmp_path))
    write("kube-proxy.log", logs + cri_klog([wrong], levels="E"))
    loaded = timeline.read(tmp_path)
    assert "dated outside 2023-" in loaded.summary.files["problem"][0]
    result = timeline.analyze(loaded)
    assert result.bucket == expected.bucket
    assert result.incidents.height == expected.incidents.height == 2
    fixed = timeline.analyze(loaded, bucket="5m")
    assert fixed.series["bucket"].min() >= datetime(2023, 3, 14, tzinfo=UTC)
    assert fixed.series["bucket"].max() < datetime(2023, 3, 15, tzinfo=UTC)


def test_a_klog_leap_second_stays_in_its_own_day(write, tmp_path):
    write(
        "kubelet.log",
        'I1231 23:59:59.900000    2218 kubelet.go:2115] "SyncLoop ADD" source="api"\n'
        'I1231 23:59:60.500000    2218 kubelet.go:2115] "SyncLoop UPDATE" source="api"\n'
        'I0101 00:00:00.100000    2218 kubelet.go:2115] "SyncLoop DELETE" source="api"\n',
    )
    loaded = timeline.read(tmp_path, year=2016, infer=False)
    ts = loaded.events.sort("line")["ts"].to_list()
    assert ts[1] == datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert ts[2] == datetime(2017, 1, 1, 0, 0, 0, 100000, tzinfo=UTC)


def test_tz_never_overrides_the_runtime_prefix(write, tmp_path):
    times = [datetime(2023, 3, 14, 18, m, 5, 250000) for m in range(5)]
    write("kube-proxy.log", cri_klog(times))
    loaded = timeline.read(tmp_path, tz="Europe/Berlin", infer=False)
    assert loaded.events.sort("line")["ts"].to_list() == [t.replace(tzinfo=UTC) for t in times]
    zone = loaded.summary.assumptions.filter(pl.col("what") == "time zone").row(0, named=True)
    assert zone["value"] == "UTC" and "tz=Europe/Berlin was not used" in zone["basis"]


def test_tz_never_overrides_a_stated_offset(write, tmp_path):
    write(
        "rabbit@mq-0.log",
        "2023-03-15 02:50:01.123456+01:00 [warning] <0.8812.0> closing AMQP connection\n",
    )
    loaded = timeline.read(tmp_path, tz="America/New_York", infer=False)
    assert loaded.events["ts"][0] == datetime(2023, 3, 15, 1, 50, 1, 123456, tzinfo=UTC)


def test_dst_gap_and_overlap_follow_the_rule_and_are_reported(write, tmp_path):
    write(
        "kube-proxy.log",
        'I0326 01:59:30.000000       1 proxier.go:812] "Sync" n=1\n'
        'I0326 02:30:00.000000       1 proxier.go:812] "Sync" n=2\n'
        'I1029 02:30:00.000000       1 proxier.go:812] "Sync" n=3\n'
        'I1029 03:30:00.000000       1 proxier.go:812] "Sync" n=4\n',
    )
    loaded = timeline.read(tmp_path, year=2023, tz="Europe/Berlin", infer=False)
    ts = loaded.events.sort("line")["ts"].to_list()
    assert ts[1] == datetime(2023, 3, 26, 1, 30, tzinfo=UTC)  # 02:30 read as CET (+01:00)
    assert ts[2] == datetime(2023, 10, 29, 0, 30, tzinfo=UTC)  # first 02:30 (CEST)
    problem = loaded.summary.files["problem"][0]
    assert "1 wall times skipped by a daylight-saving change" in problem
    assert "1 wall times repeated by a daylight-saving change" in problem
    assert "(first: line 2)" in problem and "(first: line 3)" in problem


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        ("America/New_York", datetime(2024, 11, 3, 4, 10, tzinfo=UTC)),
        ("Europe/Berlin", datetime(2024, 10, 26, 23, 10, tzinfo=UTC)),
        ("Australia/Sydney", datetime(2024, 4, 6, 14, 10, tzinfo=UTC)),
    ],
)
def test_a_repeated_hour_logged_twice_is_read_by_the_files_order(write, tmp_path, tz, start):
    """RabbitMQ 3.8 logs local times without an offset through the night the clock goes
    back: its times run up to the end of the repeated hour, go back an hour and run
    through it again. With ``tz``, the lines before the jump are the first pass and the
    lines after it the second, each counted; lines a few minutes out of order before the
    jump go back too little to be taken for it."""
    times = every(start, 3, 60)
    zone = ZoneInfo(tz)
    walls = [t.astimezone(zone).replace(tzinfo=None) for t in times]
    walls[20], walls[21] = walls[21], walls[20]  # lines a little out of order, first pass
    times[20], times[21] = times[21], times[20]
    write(
        "rabbit@mq-0.log",
        "".join(
            f"{w:%Y-%m-%d %H:%M:%S}.123 [error] <0.{n}.0> closing AMQP connection <0.{n}.1> "
            f"(10.42.5.{n}:33715 -> 10.60.2.12:5672): missed heartbeats from client\n"
            for n, w in enumerate(walls)
        ),
    )
    loaded = timeline.read(tmp_path, tz=tz, infer=False, cache=False)
    assert loaded.events.sort("line")["ts"].to_list() == times
    # a second pass is a reading of fold 1; a first, an hour before one
    second = sum(t.astimezone(zone).fold for t in times)
    first = sum((t + timedelta(hours=1)).astimezone(zone).fold for t in times)
    assert first > 3 and second > 3
    problem = loaded.summary.files["problem"][0]
    assert (
        f"{first} wall times repeated by a daylight-saving change, read as their first" in problem
    )
    assert (
        f"{second} wall times repeated by a daylight-saving change, read as their second" in problem
    )


@pytest.mark.parametrize(
    ("tz", "gap", "overlap"),
    [
        ("Europe/Berlin", "2023-03-26 02:30:00", "2023-10-29 02:30:00"),
        ("America/New_York", "2023-03-12 02:30:00", "2023-11-05 01:30:00"),
    ],
)
def test_dst_notes_of_a_file_with_years_stand_beside_its_times_no_clock_reads(
    write, tmp_path, tz, gap, overlap
):
    """RabbitMQ 3.8 writes its year but no zone: with ``tz``, its gap and overlap times
    are counted, and so is a time past what a clock reads, each once."""
    lines = [
        f"{stamp}.123 [info] <0.{n}.0> accepting AMQP connection <0.{n}.0>"
        for n, stamp in enumerate(["2023-03-01 10:00:00", gap, overlap, "9999-12-31 23:59:59"])
    ]
    write("rabbit@rmq-1.log", "\n".join(lines) + "\n")
    loaded = timeline.read(tmp_path, tz=tz, cache=False, infer=False)
    problem = loaded.summary.files["problem"][0]
    assert "1 wall times skipped by a daylight-saving change" in problem
    assert "1 wall times repeated by a daylight-saving change" in problem
    assert "1 records dated before 1677-09-21 or after 2262-04-11" in problem
    assert loaded.events.sort("line")["ts"].null_count() == 1


def test_klog_29_february_of_a_common_year_is_not_moved_to_the_28th(write, tmp_path):
    write(
        "kube-proxy.log",
        'I0228 23:59:00.000000       1 proxier.go:812] "Sync" n=1\n'
        'I0229 10:00:00.000000       1 proxier.go:812] "Sync" n=2\n'
        'I0301 00:01:00.000000       1 proxier.go:812] "Sync" n=3\n',
    )
    loaded = timeline.read(tmp_path, year=2023, infer=False)
    ts = loaded.events.sort("line")["ts"].to_list()
    assert ts[1] is None and ts[0].day == 28 and ts[2].month == 3
    assert "29 February in a year that has none" in loaded.summary.files["problem"][0]
    leap = timeline.read(tmp_path, year=2024, infer=False)
    assert leap.events.sort("line")["ts"][1] == datetime(2024, 2, 29, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("prefix_year", "offset_h"), [(2023, 0), (2023, 1), (2100, -5), (2024, 2), (2000, 0)]
)
def test_klog_29_february_beside_a_runtime_prefix_of_any_year_reads(
    write, tmp_path, prefix_year, offset_h
):
    """A runtime prefix can say any year (a node clock gone wrong, hostile input): a klog
    ``I0229`` beside a prefix of a common year is a warning, never a failure, and the
    other records still tell the klog clock's zone."""
    clock = timedelta(hours=offset_h)
    leap = prefix_year % 4 == 0 and (prefix_year % 100 != 0 or prefix_year % 400 == 0)
    start = datetime(prefix_year, 2, 28, 10, 5, tzinfo=UTC)
    utc = [start + timedelta(hours=h, seconds=n) for n, h in enumerate((0, 16, 24, 48))]
    lines = []
    for n, t in enumerate(utc):
        wall = f"{t + clock:%m%d %H:%M:%S}"
        if n in (1, 2):  # the klog clock says 29 February, whatever the year
            wall = "0229" + wall[4:]
        lines.append(
            f"{t:%Y-%m-%dT%H:%M:%S}.000000123Z stderr F I{wall}.000000       1 "
            f'proxier.go:812] "Syncing iptables rules" n={n}'
        )
    write("kube-proxy-abcde/kube-proxy/0.log", "\n".join(lines) + "\n")
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    # a record whose date cannot be has its runtime prefix's time, like any timeless one
    assert loaded.events.sort("line")["ts"].to_list() == utc
    zone = loaded.summary.assumptions.filter(pl.col("what") == "time zone")["value"].to_list()
    sign = "+" if offset_h >= 0 else "-"
    assert zone == ["UTC" if offset_h == 0 else f"UTC{sign}{abs(offset_h):02d}:00"]
    problems = loaded.summary.files["problem"][0] or ""
    if leap:
        assert "29 February" not in problems
    else:
        assert "2 records dated 29 February in a year that has none" in problems


def cri_rabbitmq(
    times: list[datetime], tz: str, *, late: dict[int, timedelta] | None = None
) -> str:
    """RabbitMQ 3.8 lines (a local wall time in ``tz``, no offset) behind a containerd
    prefix at ``times`` (UTC); the lines numbered in ``late`` (from 0) reach the runtime
    that much after they were written, as a buffered line does."""
    out = []
    for n, t in enumerate(times):
        wall = t.astimezone(ZoneInfo(tz))
        seen = t + (late or {}).get(n, timedelta(0))
        out.append(
            f"{seen:%Y-%m-%dT%H:%M:%S}.{seen.microsecond:06d}408Z stdout F "
            f"{wall:%Y-%m-%d %H:%M:%S}.{wall.microsecond // 1000:03d} [info] <0.{n}.0> "
            f"accepting AMQP connection <0.{n + 900}.0> (10.42.5.{n % 250}:33715 -> "
            "10.60.2.12:5672)"
        )
    return "\n".join(out) + "\n"


def every(start: datetime, minutes: int, n: int) -> list[datetime]:
    return [start + timedelta(minutes=minutes * k, milliseconds=123) for k in range(n)]


#: Nights a zone's clock changes, each as the UTC times of a file's lines around it and
#: the offsets its prefixes show: spring forward, fall back (its repeated hour read from
#: the prefixes), the southern hemisphere's autumn and a half-hour zone's neighbour.
CLOCK_CHANGES = [
    pytest.param(
        "Europe/Berlin",
        every(datetime(2024, 3, 30, 21, tzinfo=UTC), 7, 60),
        "UTC+01:00 and UTC+02:00",
        id="berlin-spring-forward",
    ),
    pytest.param(
        "America/New_York",
        every(datetime(2024, 11, 3, 3, tzinfo=UTC), 5, 72),
        "UTC-05:00 and UTC-04:00",
        id="new-york-fall-back",
    ),
    pytest.param(
        "Australia/Sydney",
        every(datetime(2024, 4, 6, 12, tzinfo=UTC), 6, 80),
        "UTC+10:00 and UTC+11:00",
        id="sydney-autumn",
    ),
]


@pytest.mark.parametrize(("tz", "times", "offsets"), CLOCK_CHANGES)
@pytest.mark.parametrize("given", [None, "same", "Asia/Kolkata"])
def test_a_file_whose_clock_changes_offset_is_read_at_each_records_own_offset(
    write, tmp_path, tz, times, offsets, given
):
    """Local times without an offset, behind a runtime prefix in UTC, across a night the
    zone's clock changes: each record is read at the offset its own prefix shows, never
    one offset for the file. ``tz`` is the zone's name where it keeps just those offsets
    (then said so), and not used where it does not (Kolkata keeps +05:30)."""
    write("node-1/rmq-0/rabbitmq/0.log", cri_rabbitmq(times, tz))
    given = tz if given == "same" else given
    loaded = timeline.read(tmp_path, tz=given, infer=False, cache=False)
    assert loaded.events.sort("line")["ts"].to_list() == times
    zone = loaded.summary.assumptions.filter(pl.col("what") == "time zone").row(0, named=True)
    # the file crosses the change: its prefixes show each offset, counted in the sentence
    kept = Counter(t.astimezone(ZoneInfo(tz)).utcoffset() for t in times)
    assert len(kept) == 2 and min(kept.values()) > 2
    each = ", ".join(
        f"UTC{'-' if o < timedelta(0) else '+'}{abs(o) // timedelta(hours=1):02d}:00 for {n}"
        for o, n in sorted(kept.items())
    )
    assert f"({each}), and each is read at the one its own prefix shows" in zone["basis"]
    assert f"{len(times)} records write no zone" in zone["basis"]
    assert zone["certainty"] == "certain"
    if given == tz:
        assert (
            zone["value"] == tz
            and "the offsets the zone given with tz= keeps then" in zone["basis"]
        )
    else:
        assert zone["value"] == offsets
        assert (f"tz={given} was not used" in zone["basis"]) == (given is not None)
    assert not loaded.summary.files["problem"].drop_nulls().len()


def test_a_line_logged_late_in_a_file_whose_clock_changed_takes_a_neighbours_offset(
    write, tmp_path
):
    """A line that reached the runtime 40 minutes after it was written shows an offset
    no zone's clock kept (-04:40 in New York): it is read at the offset of the record
    before it, or by the zone given; a file of one offset is read as before, its late
    line at the file's offset (Kolkata's +05:30 keeps no summer time)."""
    storm = every(datetime(2024, 11, 3, 5, 2, tzinfo=UTC), 2, 90)
    late = {10: timedelta(minutes=40), 45: timedelta(minutes=40), 75: timedelta(minutes=40)}
    write("node-1/mq-east-0/rabbitmq/0.log", cri_rabbitmq(storm, "America/New_York", late=late))
    steady = every(datetime(2024, 11, 3, 5, 2, tzinfo=UTC), 2, 30)
    write(
        "node-2/mq-south-0/rabbitmq/0.log",
        cri_rabbitmq(steady, "Asia/Kolkata", late={3: timedelta(minutes=40)}),
    )
    for zone_given in (None, "America/New_York"):
        loaded = timeline.read(tmp_path, tz=zone_given, infer=False, cache=False)
        events = loaded.events.sort("file", "line")
        east = events.filter(pl.col("file").str.contains("mq-east"))
        assert east["ts"].to_list() == storm
        south = events.filter(pl.col("file").str.contains("mq-south"))
        assert south["ts"].to_list() == steady
        zones = loaded.summary.assumptions.filter(pl.col("what") == "time zone").sort("file")
        east_zone, south_zone = zones.rows(named=True)
        assert "3 whose prefix shows none of these" in east_zone["basis"]
        assert "90 records write no zone" in east_zone["basis"]
        assert (east_zone["value"], east_zone["certainty"]) == (
            (zone_given, "certain") if zone_given else ("UTC-05:00 and UTC-04:00", "likely")
        )
        # its late line's prefix shows another offset, and the sentence says so
        assert (south_zone["value"], south_zone["certainty"]) == ("UTC+05:30", "likely")
        assert south_zone["basis"].startswith(
            "29 of 30 records' runtime prefixes show that offset, the others' another"
        )


def test_a_clock_change_too_near_a_files_end_to_tell_is_no_certain_offset(write, tmp_path):
    """Three records after a fall-back at the end of a long file are too few to be a
    clock of their own: the file is read at one offset, and the sentence says that not
    every record's prefix shows it; a file whose every prefix shows it stays certain."""
    times = every(datetime(2024, 10, 26, 15, 20, tzinfo=UTC), 5, 120)
    write("node-1/rmq-0/rabbitmq/0.log", cri_rabbitmq(times, "Europe/Paris"))
    write("node-2/rmq-1/rabbitmq/0.log", cri_rabbitmq(times[:100], "Europe/Paris"))
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    zones = loaded.summary.assumptions.filter(pl.col("what") == "time zone").sort("file")
    near_end, before = zones.rows(named=True)
    after = sum(
        t.astimezone(ZoneInfo("Europe/Paris")).utcoffset() == timedelta(hours=1) for t in times
    )
    assert 0 < after < 0.05 * len(times)
    assert (near_end["value"], near_end["certainty"]) == ("UTC+02:00", "likely")
    assert near_end["basis"].startswith(
        f"{len(times) - after} of {len(times)} records' runtime prefixes show that offset"
    )
    assert (before["value"], before["certainty"]) == ("UTC+02:00", "certain")


@settings(max_examples=60, deadline=None)
@given(
    moments=st.lists(
        st.datetimes(datetime(PLACEHOLDER_YEAR, 1, 1), datetime(PLACEHOLDER_YEAR, 12, 31, 23)),
        min_size=1,
        max_size=40,
    ),
    years=st.lists(st.one_of(st.none(), st.integers(-3000, 12000)), min_size=1, max_size=40),
)
@example(moments=[datetime(PLACEHOLDER_YEAR, 2, 29, 12)] * 3, years=[2023, 2024, 1900])
@example(moments=[datetime(PLACEHOLDER_YEAR, 12, 31, 23, 59)], years=[1])
def test_moving_yearless_times_to_a_year_is_the_calendars_move(moments, years):
    """The settlement moves a yearless time to a year by arithmetic; it must land where
    polars' calendar (``dt.offset_by``) puts it for any year, 29 February included."""
    n = min(len(moments), len(years))
    frame = pl.DataFrame(
        {"ts": moments[:n], "year": years[:n]}, schema={"ts": pl.Datetime("us"), "year": pl.Int32}
    )
    calendar = pl.col("ts").dt.offset_by(pl.format("{}y", pl.col("year") - PLACEHOLDER_YEAR))
    moved = frame.select(by_calendar=calendar, by_arithmetic=in_year(pl.col("ts"), pl.col("year")))
    # compared in polars: years outside 1 to 9999 have no Python datetime
    differ = moved.filter(~pl.col("by_arithmetic").eq_missing(pl.col("by_calendar")))
    assert differ.height == 0, differ.cast(pl.String)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("2023-02-30 02:50:02.123456+00:00", "impossible date or time: 2023-02-30"),
        ("2023-03-15 02:50:02.123456+25:00", "impossible UTC offset: +25:00"),
        ("2023-03-15 25:61:02.123456+00:00", "impossible date or time"),
    ],
)
def test_rabbitmq_impossible_dates_and_offsets_are_unparsed_with_their_reason(
    write, tmp_path, line, why
):
    write(
        "rabbit@mq-1.log",
        "2023-03-15 02:50:01.123456+00:00 [info] <0.8830.0> accepting AMQP connection\n"
        f"{line} [warning] <0.8812.0> closing AMQP connection\n",
    )
    loaded = timeline.read(tmp_path, infer=False)
    assert loaded.events.height == 1
    warning = loaded.summary.warnings.filter(pl.col("unparsed")).row(0, named=True)
    assert warning["line"] == 2 and why in warning["reason"]


def circleci_job(number: int, **times: str) -> dict:
    base = {
        "created_at": "2023-03-14T18:02:09.871Z",
        "queued_at": "2023-03-14T18:02:11.412Z",
        "started_at": "2023-03-14T18:02:15.612Z",
        "stopped_at": "2023-03-14T18:03:16.816Z",
    }
    return {
        "number": number,
        "name": "build-and-test",
        "status": "success",
        "executor": {"resource_class": "medium", "type": "docker"},
        "project": {"slug": "gh/acme/api", "name": "api"},
        "duration": None,
        **base,
        **times,
    }


@pytest.mark.parametrize(
    ("times", "why"),
    [
        ({"queued_at": "not-a-date"}, "impossible time 'not-a-date' in queued_at"),
        ({"queued_at": "2023-02-30T18:02:11Z"}, "impossible time '2023-02-30T18:02:11Z'"),
        ({"started_at": "2023-03-14T18:02:15+25:00"}, "in started_at"),
        ({"started_at": "2023-03-14T18:01:00.000Z"}, "started 71.412s before it was queued"),
        ({"stopped_at": "2023-03-14T18:01:00.000Z"}, "stopped 75.612s before it started"),
    ],
)
def test_circleci_impossible_and_negative_times_are_flagged_not_counted(
    write, tmp_path, times, why
):
    jobs = [circleci_job(482113), circleci_job(482114, **times)]
    write("circleci/jobs.json", json.dumps({"items": jobs, "next_page_token": None}, indent=2))
    loaded = timeline.read(tmp_path, infer=False)
    bad = loaded.events.filter(pl.col("message").str.contains("#482114"))
    attrs = json.loads(bad["attrs"][0])
    assert why in attrs["time_problem"]
    for value in (attrs["queue_delay_s"], attrs["duration_s"]):
        assert value is None or value >= 0
    assert "1 CI jobs with an impossible or negative time" in loaded.summary.files["problem"][0]
    assert bad["ts"][0] is not None


def test_a_big_files_chunks_finished_apart_say_its_time_notes_once(
    write, tmp_path, monkeypatch, spy
):
    """Wall times in a daylight-saving gap spread over several chunks of one file: the
    chunks finish in jobs of their own, and the file still gets one sentence, its counts
    added up and its first line the earliest."""
    from timeline.reading import loader, mapper

    start = datetime(2023, 3, 26, 0, 17)
    text = "".join(
        f'I{t:%m%d %H:%M:%S}.{k:06d}       1 proxier.go:812] "Sync" n={k}\n'
        for k, t in enumerate(start + timedelta(minutes=k) for k in range(240))
    )
    write("kube-proxy.log", text)
    whole = timeline.read(tmp_path, year=2023, tz="Europe/Berlin", infer=False)
    monkeypatch.setattr(mapper, "CHUNK_BYTES", 2 << 10)
    finished = spy(loader, "finish_job")
    chunked = timeline.read(tmp_path, year=2023, tz="Europe/Berlin", infer=False, workers=1)
    assert len(finished) == len(mapper.plan(str(tmp_path / "kube-proxy.log"))) > 4
    problem = chunked.summary.files["problem"][0]
    assert problem == whole.summary.files["problem"][0]
    assert "60 wall times skipped by a daylight-saving change" in problem
    assert problem.count("(first: line") == 1 and "(first: line 104)" in problem
    assert chunked.events.sort("line").equals(whole.events.sort("line"))


def _event(first: str, *, name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "firstTimestamp": first,
        "involvedObject": {"kind": "Pod", "name": name, "namespace": "messaging"},
        "message": "Readiness probe failed",
        "metadata": {"name": f"{name}.174c", "namespace": "messaging"},
        "reason": "Unhealthy",
        "type": "Warning",
    }


def _yaml_events(times: list[str]) -> str:
    """``kubectl get events -o yaml`` as people paste it: times unquoted."""
    items = "".join(
        f"- apiVersion: v1\n  kind: Event\n  firstTimestamp: {t}\n"
        f"  involvedObject:\n    kind: Pod\n    name: rmq-{n}\n    namespace: messaging\n"
        f"  message: Readiness probe failed\n  reason: Unhealthy\n  type: Warning\n"
        for n, t in enumerate(times)
    )
    return f"apiVersion: v1\nitems:\n{items}kind: List\n"


def _audit(stamp: str, n: int) -> str:
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"a-{n}",
            "stage": "ResponseComplete",
            "requestURI": "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy",
            "verb": "patch",
            "user": {"username": "admin"},
            "objectRef": {
                "resource": "daemonsets",
                "namespace": "kube-system",
                "name": "kube-proxy",
            }
            | {"apiGroup": "apps"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
        }
    )


GOOD = "2023-03-14T18:00:07+01:00"
AT_GOOD = datetime(2023, 3, 14, 17, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "events.json",
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": [
                        _event(t, name=f"rmq-{n}")
                        for n, t in enumerate(
                            ["0001-01-01T00:00:00+05:00", GOOD, "9999-12-31T23:59:59-05:00"]
                        )
                    ],
                },
                indent=2,
            ),
        ),
        ("events.yaml", _yaml_events(["2023-02-30T18:02:11Z", GOOD, "0000-01-01T00:00:00Z"])),
        (
            "changes.csv",
            "time,type,target,description\n"
            "9999-12-31 23:59 -05:00,restart,deployment/kube-system/coredns,Restart CoreDNS\n"
            f"{GOOD},upgrade,daemonset/kube-system/kube-proxy,Stage 1\n"
            "0001-01-01 00:00 +05:00,restart,deployment/kube-system/coredns,Restart again\n",
        ),
        (
            "audit.log",
            "\n".join(
                _audit(t, n)
                for n, t in enumerate(
                    ["0000-01-01T00:00:00Z", "2023-03-14T17:00:07Z", "-0001-03-01T00:00:00Z"]
                )
            ),
        ),
    ],
)
def test_records_with_times_no_calendar_holds_leave_the_rest_of_the_file_read(
    write, tmp_path, name, text
):
    """Events (JSON, or YAML with its times unquoted), change logs and audit logs: a time
    at year 0, 9999 west of UTC, or 30 February is that record's problem, never the
    file's; the record in between keeps its time, offset included."""
    write(name, text + "\n")
    loaded = timeline.read(tmp_path, cache=False, infer=False)
    problem = loaded.summary.files["problem"][0] or ""
    assert "parser failed" not in problem
    assert loaded.summary.files["format"][0] is not None
    timed = loaded.events.drop_nulls("ts")
    assert timed["ts"].to_list() == [AT_GOOD]
    assert loaded.events.height + loaded.summary.unparsed_lines >= 3


def _prefixed(layout: str, stamp: str, line: str) -> str:
    """A kube-proxy klog line behind a runtime prefix stamped ``stamp``."""
    if layout == "cri":
        return f"{stamp} stderr F {line}"
    if layout == "docker-json":
        return json.dumps(
            {"log": line + "\n", "stream": "stderr", "time": stamp}, separators=(",", ":")
        )
    return f"{stamp} {line}"  # kubectl logs --timestamps


@pytest.mark.parametrize("layout", ["cri", "docker-json", "kubectl-timestamps"])
@pytest.mark.parametrize("bad", ["2023-02-29", "2023-13-14", "2023-03-32", "2023-04-31"])
def test_a_runtime_prefix_dated_on_no_day_still_ends_the_record_above(write, tmp_path, layout, bad):
    """A prefix of the right shape whose date cannot be is still the runtime's prefix: its
    line is a record of its own, timed by the program, never a continuation hiding an
    error inside the record above."""
    wall = [datetime(2023, 3, 14, 18, 0, s) for s in range(1, 7)]
    levels = "IEIEWI"
    lines = [
        _prefixed(
            layout,
            (bad if n in (1, 4) else f"{t:%Y-%m-%d}") + f"T{t:%H:%M:%S}.000000001Z",
            f"{levels[n]}{t:%m%d %H:%M:%S}.000000       1 proxier.go:{800 + n}] "
            f'"Syncing iptables rules" n={n}',
        )
        for n, t in enumerate(wall)
    ]
    write("node-1/kube-proxy-abcde/kube-proxy/0.log", "\n".join(lines) + "\n")
    loaded = timeline.read(tmp_path, cache=False, infer=False)
    events = loaded.events.sort("line")
    assert events["line"].to_list() == [1, 2, 3, 4, 5, 6]
    assert events["level"].to_list() == ["info", "error", "info", "error", "warning", "info"]
    assert events["ts"].to_list() == [t.replace(tzinfo=UTC) for t in wall]
    assert loaded.summary.files["continuation_lines"][0] == 0


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Asia/Tokyo", "Asia/Kolkata"])
def test_local_times_read_as_utc_after_their_file_was_written_are_said_doubtful(
    write, tmp_path, tz
):
    """RabbitMQ 3.8 writes its zone's local time and no offset; with no runtime prefix
    and no ``--tz`` the times are read as UTC. A file last written before its latest
    record, so read, says its zone is likely ahead of UTC; a file saved later (``kubectl
    logs > file``) says nothing of the zone."""
    times = every(datetime(2024, 6, 3, 9, tzinfo=UTC), 3, 40)
    lines = [
        f"{t.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M:%S.%f}"[:-3]
        + f" [info] <0.{n}.0> accepting AMQP connection <0.{n + 900}.0> (10.42.5.{n}:33715 -> "
        "10.60.2.12:5672)"
        for n, t in enumerate(times)
    ]
    written = write("rabbitmq/rmq-0/rabbit@rmq-0.log", "\n".join(lines) + "\n")
    saved = write("saved/rabbit@rmq-1.log", "\n".join(lines) + "\n")
    os.utime(written, (int(times[-1].timestamp()),) * 2)
    os.utime(saved, (times[-1].timestamp() + 15 * 3600,) * 2)
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    zones = loaded.summary.assumptions.filter(pl.col("what") == "time zone").sort("file")
    on_node, later = zones["basis"].to_list()
    ahead = ZoneInfo(tz).utcoffset(times[-1].replace(tzinfo=None)) // timedelta(minutes=1)
    assert f"read as UTC the latest is {ahead:,} minutes after the file was last written" in on_node
    assert "give --tz" in on_node and "after the file was last written" not in later
    assert set(zones["value"]) == {"UTC"}

"""Sanity of times: what range is plausible, and which times stand far from the rest.

A clock gone wrong (a device booted at the epoch, a year typed as 9999, a time in 2262)
must not set the span of a run: one such row would turn five-minute buckets into days and
merge incidents. These functions find such rows; the loader reports them and the analysis
keeps them out of the span, the bucket choice and the rates. The rows themselves are kept.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

#: Years a log record can plausibly be from.
FIRST_YEAR = 1990
LAST_YEAR = 2100
#: The times an event may hold: a nanosecond clock's range (pandas' ``datetime64[ns]``).
#: A time beyond it (year 0, 9999, an epoch in the wrong unit) is no clock's reading, and
#: a window or a bucket around it would pass the years Python's datetime can hold.
HOLDABLE = (datetime(1677, 9, 21, 0, 12, 43, 145225), datetime(2262, 4, 11, 23, 47, 16, 854775))
#: A time further than this many bulk widths (5th to 95th percentile) from the bulk, and
#: more than ``MIN_FAR`` away, is far from the bulk.
FAR_WIDTHS = 10
MIN_FAR = timedelta(days=30)


_NUMERIC_ZONE = re.compile(r"^(?:UTC|GMT)?([+-])([0-9]{2}):?([0-9]{2})?$")


def zone_offset(stamp: str) -> int | None:
    """The UTC offset in seconds of the zone a written time ends with: a numeric offset
    (``+0530``, ``-03``), ``UTC``, or an abbreviation as dateparser knows it (``CET``,
    ``EDT``); None for a zone it does not know.

    >>> zone_offset("2016-11-14 11:06:12 CET"), zone_offset("2021-06-01 08:00:00 -03")
    (3600, -10800)
    """
    zone = stamp.rsplit(" ", 1)[-1]
    if zone.upper() in ("UTC", "GMT", "Z", "UCT"):
        return 0
    numeric = _NUMERIC_ZONE.match(zone)
    if numeric:
        sign = -1 if numeric[1] == "-" else 1
        return sign * (int(numeric[2]) * 3600 + int(numeric[3] or 0) * 60)
    import dateparser

    written = dateparser.parse(stamp, languages=["en"], settings={"RETURN_AS_TIMEZONE_AWARE": True})
    offset = written.utcoffset() if written is not None else None
    return None if offset is None else int(offset.total_seconds())


#: Zones that keep a summer time, by the names journalctl writes for their standard and
#: summer times, as the zone database's zone whose rules they follow.
SUMMER_TIME_ZONES = {
    ("CET", "CEST"): "Europe/Berlin",
    ("EET", "EEST"): "Europe/Helsinki",
    ("WET", "WEST"): "Europe/Lisbon",
    ("GMT", "BST"): "Europe/London",
    ("GMT", "IST"): "Europe/Dublin",
    ("EST", "EDT"): "America/New_York",
    ("CST", "CDT"): "America/Chicago",
    ("MST", "MDT"): "America/Denver",
    ("PST", "PDT"): "America/Los_Angeles",
    ("AKST", "AKDT"): "America/Anchorage",
    ("AST", "ADT"): "America/Halifax",
    ("NST", "NDT"): "America/St_Johns",
    ("AEST", "AEDT"): "Australia/Sydney",
    ("ACST", "ACDT"): "Australia/Adelaide",
    ("NZST", "NZDT"): "Pacific/Auckland",
}
#: Names that stand for other zones too (``CST`` is also China's, ``IST`` India's,
#: ``GMT`` any zone at UTC, ``AEST`` Brisbane's, which keeps no summer time): they name a
#: summer-time zone only beside its other name.
_SHARED_NAMES = frozenset(
    {"GMT", "IST", "BST", "EST", "CST", "MST", "PST", "AST", "NST", "AEST", "ACST"}
)


def summer_time_zone(names: list[str]) -> str | None:
    """The zone database's zone whose clock the zone ``names`` a journal's header gives
    are of, where that zone keeps a summer time: its two names, or one of them that names
    no other zone; None otherwise (a fixed offset serves).

    >>> summer_time_zone(["CET"]), summer_time_zone(["CEST", "CET"]), summer_time_zone(["CST"])
    ('Europe/Berlin', 'Europe/Berlin', None)
    >>> summer_time_zone(["CDT", "CST"]), summer_time_zone(["JST"])
    ('America/Chicago', None)
    """
    given = {n.upper() for n in names}
    for pair, zone in SUMMER_TIME_ZONES.items():
        if set(pair) <= given or any(n in given and n not in _SHARED_NAMES for n in pair):
            return zone
    return None


def zone_offsets(name: str, lo: datetime, hi: datetime) -> set[int]:
    """The UTC offsets in seconds the zone ``name`` keeps between the UTC times ``lo``
    and ``hi`` (naive), read every hour (every day over more than a year: a zone keeps
    an offset for months).

    >>> march = datetime(2024, 3, 30, 21), datetime(2024, 3, 31, 6)
    >>> sorted(zone_offsets("Europe/Berlin", *march)), zone_offsets("Asia/Kolkata", *march)
    ([3600, 7200], {19800})
    """
    step = "1h" if hi - lo <= timedelta(days=366) else "1d"
    hours = pl.datetime_range(lo, hi, step, eager=True, time_zone="UTC").append(
        pl.Series([hi]).dt.replace_time_zone("UTC")
    )
    local = hours.dt.convert_time_zone(name)
    offsets = (local.dt.base_utc_offset() + local.dt.dst_offset()).dt.total_seconds()
    return set(offsets.cast(pl.Int64).to_list())


def known_zone(name: str) -> bool:
    """Whether ``name`` is a zone that both Python and polars can convert times with (the
    zone database's aliases ``localtime`` and ``posixrules`` are not).

    >>> known_zone("Europe/Berlin"), known_zone("localtime"), known_zone("Mars/Olympus")
    (True, False, False)
    """
    try:
        ZoneInfo(name)
        pl.Series([datetime(2000, 1, 1)]).dt.replace_time_zone(name)
    except (ValueError, OSError, KeyError, pl.exceptions.ComputeError):
        return False
    return True


def unknown_zone_text(name: str) -> str:
    """What to tell a user who named a zone that :func:`known_zone` refuses."""
    return f"unknown time zone {name!r}: use a name like Europe/Berlin, America/New_York or UTC"


def plausible(ts: pl.Expr | str = "ts") -> pl.Expr:
    """True where a time lies in the plausible years (null stays null).

    >>> frame = pl.DataFrame({"ts": [datetime(1970, 1, 1), datetime(2023, 3, 14)]})
    >>> frame.select(plausible())["ts"].to_list()
    [False, True]
    """
    ts = pl.col(ts) if isinstance(ts, str) else ts
    return ts.dt.year().is_between(FIRST_YEAR, LAST_YEAR)


def holdable(ts: pl.Expr) -> pl.Expr:
    """True where a time (naive, or aware in any zone) lies in :data:`HOLDABLE`.

    >>> frame = pl.DataFrame({"ts": [datetime(1, 1, 1), datetime(2023, 3, 14)]})
    >>> frame.select(holdable(pl.col("ts")))["ts"].to_list()
    [False, True]
    """
    micros = ts.dt.epoch("us")
    lo, hi = (int((t - datetime(1970, 1, 1)) / timedelta(microseconds=1)) for t in HOLDABLE)
    return micros.is_between(lo, hi)


def bulk_window(
    frame: pl.DataFrame | pl.LazyFrame, ts: str = "ts"
) -> tuple[datetime, datetime] | None:
    """The span that sensible times of ``frame`` lie in: the plausible years, and within
    ``FAR_WIDTHS`` widths of the 5th-95th percentile band (at least ``MIN_FAR``) around it.

    >>> days = [datetime(2023, 3, 14, h) for h in range(20)] + [datetime(1999, 1, 1)]
    >>> lo, hi = bulk_window(pl.DataFrame({"ts": days}))
    >>> lo.year, hi.year
    (2023, 2023)
    """
    times = frame.lazy().select(pl.col(ts)).filter(plausible(ts))
    band = times.select(
        lo=pl.col(ts).quantile(0.05, "lower"), hi=pl.col(ts).quantile(0.95, "higher")
    ).collect()
    lo, hi = band.row(0)
    if lo is None:
        return None
    margin = max((hi - lo) * FAR_WIDTHS, MIN_FAR)
    first = datetime(FIRST_YEAR, 1, 1, tzinfo=lo.tzinfo)
    last = datetime(LAST_YEAR, 12, 31, 23, 59, 59, tzinfo=lo.tzinfo)
    return max(lo - margin, first), min(hi + margin, last)


def in_window(window: tuple[datetime, datetime] | None, ts: str = "ts") -> pl.Expr:
    """True where ``ts`` lies in ``window`` (all true without one; null times stay null)."""
    if window is None:
        return pl.lit(True)
    return pl.col(ts).is_between(*window)


def outlier_problems(events: pl.DataFrame | pl.LazyFrame) -> dict[str, str]:
    """Per file, a sentence on its rows whose times are implausible or far from the bulk.

    >>> days = [datetime(2023, 3, 14, h) for h in range(20)] + [datetime(1970, 1, 1)]
    >>> frame = pl.DataFrame({"ts": days, "file": "a.log", "line": range(1, 22)})
    >>> print(outlier_problems(frame)["a.log"][:60])
    1 row dated outside 2023-02-12 to 2023-04-13, where the bulk
    """
    events = events.lazy().select("ts", "file", "line")
    window = bulk_window(events)
    far = events.filter(~in_window(window)).collect()
    if far.height == 0:
        return {}
    where = f"{window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d}" if window else "no plausible time"
    per_file = far.group_by("file", maintain_order=True).agg(
        n=pl.len(), first=pl.col("line").first(), at=pl.col("ts").first()
    )
    return {
        row["file"]: (
            f"{row['n']:,} row{'s' if row['n'] != 1 else ''} dated outside {where}, "
            "where the bulk of the data lies "
            f"(first: line {row['first']}, {row['at']:%Y-%m-%d %H:%M:%S}): kept, but out of the "
            "span, the bucket choice and the rates"
        )
        for row in per_file.iter_rows(named=True)
    }

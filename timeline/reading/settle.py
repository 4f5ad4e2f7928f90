"""Settling what records leave open: the year of yearless times and the zone of zoneless
ones, across files, with every choice written down as an assumption.

It works in three steps so that files can be read apart, in worker processes or on a
cluster: :func:`evidence` measures one file's (or chunk's) records where they are read;
:func:`plan` weighs the evidence of every file at once and decides each file's year and
zone; :func:`apply` turns one file's records into UTC times by that decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import polars as pl

from parsers.common import PLACEHOLDER_YEAR, in_year
from timeline.reading.times import (
    FIRST_YEAR,
    LAST_YEAR,
    holdable,
    plausible,
    summer_time_zone,
    zone_offset,
    zone_offsets,
)

ASSUMPTION_SCHEMA = {
    "file": pl.String,
    "what": pl.String,
    "value": pl.String,
    "basis": pl.String,
    "certainty": pl.String,
    # the count of the file's records the basis is about, and of how many, where it is
    "records": pl.Int64,
    "of": pl.Int64,
}

_YEARLESS = pl.col("year_missing") & pl.col("ts").is_not_null()
_MONTH = pl.col("ts").dt.month()
#: A yearless record whose month went back by more than half a year: December to January.
_ROLLED = (_MONTH.shift(1).forward_fill() - 6 > _MONTH).fill_null(False) & _YEARLESS
#: A yearless record a year less a day after the one before, after a New Year: a 31
#: December line written just after a 1 January one (a program takes the time before it
#: writes the line), which belongs to the year before it, not to a year later.
_UNROLLED = (
    (
        pl.col("ts") - pl.when(_YEARLESS).then(pl.col("ts")).shift(1).forward_fill()
        > timedelta(days=364)
    ).fill_null(False)
    & _YEARLESS
    # only just after a New Year: a file that begins in January and next logs in December
    # has kept a quiet year
    & (_ROLLED.cast(pl.Int32).cum_sum() > 0)
)
#: How the year moves at each yearless record, as the records run.
_YEAR_STEP = _ROLLED.cast(pl.Int32) - _UNROLLED.cast(pl.Int32)
_ZONELESS = pl.col("ts").is_not_null() & pl.col("utc_offset_s").is_null()
#: The widest offset a zone has: a gap wider than this is no zone's offset.
_WIDEST_OFFSET_S = 14 * 3600
#: The step offsets are rounded to: zones are whole quarter hours from UTC.
_OFFSET_STEP_S = 900
#: The least a zone's clock changes by (Lord Howe Island's summer time: half an hour).
_SMALLEST_CHANGE_S = 1800
#: The share of a file's records (with a runtime prefix) that an offset their prefixes
#: show must hold to be one of the file's offsets: fewer are lines logged late.
_OFFSET_SHARE = 0.05


def _offset_shown(wall: pl.Expr) -> pl.Expr:
    """The UTC offset in seconds that the runtime prefix of each record shows for its
    zoneless ``wall`` time (naive, its year settled), rounded to a quarter hour; null
    without a prefix."""
    return _rounded_offset(_prefix_gap_s(wall))


def _prefix_gap_s(wall: pl.Expr) -> pl.Expr:
    """Seconds from each record's runtime prefix (UTC) to its ``wall`` time; null without
    a prefix."""
    return (wall - pl.col("prefix_ts").dt.replace_time_zone(None)).dt.total_seconds()


def _rounded_offset(gap_s: pl.Expr) -> pl.Expr:
    """A gap between a wall time and UTC, in seconds, rounded to a quarter hour."""
    return ((gap_s / _OFFSET_STEP_S).round() * _OFFSET_STEP_S).cast(pl.Int64)


def _with_prefix_year() -> pl.Expr:
    """``ts`` with a yearless record's year taken from its runtime prefix, to compare the
    two; null for a yearless 29 February whose prefix year is a common year, as
    :func:`apply` leaves it (any runtime prefix can say any year: it must not fail)."""
    ts = pl.col("ts")
    moved = in_year(ts, pl.col("prefix_ts").dt.year())
    feb29 = (ts >= datetime(PLACEHOLDER_YEAR, 2, 29)) & (ts < datetime(PLACEHOLDER_YEAR, 3, 1))
    moved = pl.when(feb29 & (moved.dt.day() != 29)).then(None).otherwise(moved)
    return pl.when(pl.col("year_missing")).then(moved).otherwise(ts)


def evidence(records: pl.DataFrame, **more: pl.Expr) -> dict[str, Any]:
    """What one file's (or chunk's) records say about years and zones, in one query, with
    ``more`` measures of the caller's in the same query.

    >>> from datetime import datetime
    >>> records = pl.DataFrame({
    ...     "ts": [datetime(2000, 12, 31, 23, 59), datetime(2000, 1, 1, 0, 1)],
    ...     "year_missing": [True, True], "utc_offset_s": [None, None],
    ...     "prefix_ts": [None, None],
    ... }, schema_overrides={"utc_offset_s": pl.Int32, "prefix_ts": pl.Datetime("us", "UTC")})
    >>> found = evidence(records)
    >>> found["yearless"], found["rolls"], found["first_month"], found["last_month"]
    (2, 1, 12, 1)
    """
    return records.with_columns(EVIDENCE_INPUT).select(*EVIDENCE, **more).row(0, named=True)


#: The column of each record's gap to its runtime prefix that :data:`EVIDENCE` reads.
_GAP = "_prefix_gap_s"
#: That column, to add to the records before :data:`EVIDENCE` is taken: worked out once
#: a record, not once for each measure that reads it (each of several files' groups
#: would otherwise move every record to its prefix's year four times).
EVIDENCE_INPUT = _prefix_gap_s(_with_prefix_year()).alias(_GAP)


def _evidence_measures() -> list[pl.Expr]:
    """The measures of :func:`evidence`, built once: they do not depend on the records."""
    ts, prefix = pl.col("ts"), pl.col("prefix_ts").dt.replace_time_zone(None)
    # a clock gone wrong (year 1 or 9999) states no span for the other files' years
    stated = ts.filter(~pl.col("year_missing") & ts.is_not_null() & plausible(ts))
    stated_prefix = prefix.filter(plausible(prefix))
    shown = _rounded_offset(pl.col(_GAP))
    return [
        pl.min_horizontal(stated.min(), stated_prefix.min()).alias("stated_lo"),
        pl.max_horizontal(stated.max(), stated_prefix.max()).alias("stated_hi"),
        _YEARLESS.sum().alias("yearless"),
        (_YEARLESS & pl.col("prefix_ts").is_not_null()).sum().alias("with_prefix"),
        _ROLLED.sum().alias("rolls"),
        _UNROLLED.sum().alias("unrolls"),
        _MONTH.filter(_YEARLESS).first().alias("first_month"),
        _MONTH.filter(_YEARLESS).last().alias("last_month"),
        ts.filter(_YEARLESS).first().alias("yearless_first"),
        ts.filter(_YEARLESS).last().alias("yearless_last"),
        _ZONELESS.sum().alias("zoneless"),
        pl.col(_GAP).filter(_ZONELESS).median().alias("prefix_gap_s"),
        (ts.is_null() & pl.col("prefix_ts").is_null()).sum().alias("timeless"),
        # how many zoneless records' prefixes show each offset, and the span of those
        # prefixes: a file whose clock changed (summer time) shows more than one
        shown.filter(_ZONELESS & shown.is_not_null())
        .alias("offset_s")
        .value_counts(name="records")
        .implode()
        .alias("prefix_offsets"),
        prefix.filter(_ZONELESS & shown.is_not_null()).min().alias("offset_prefix_lo"),
        prefix.filter(_ZONELESS & shown.is_not_null()).max().alias("offset_prefix_hi"),
        # the latest zoneless time that states its year, to hold against the file's mtime
        ts.filter(_ZONELESS & ~pl.col("year_missing") & plausible(ts)).max().alias("zoneless_hi"),
    ]


#: The measures of :func:`evidence`, for a caller that takes them with its own (per file
#: of several, in one ``group_by``).
EVIDENCE = _evidence_measures()


@dataclass(frozen=True)
class Settlement:
    """One file's decision: the year of its first yearless record where no runtime
    prefix says it (``base_year``), the rollovers before each of its chunks, and how
    zoneless times become UTC (a zone name, an offset in seconds, or UTC). A file whose
    runtime prefixes show its clock changing offset (summer time) has those offsets in
    ``offsets_s``: each record is read at the one its own prefix shows, and the others by
    ``tz`` where it gives just those offsets, else at a neighbouring record's offset
    (``offset_s``, the most common, where a part of the file has no neighbour). A file
    of a bundle named by a stand-in for its node has ``host``, the stand-in and the
    node's name (:func:`timeline.reading.bundles.bundle_nodes`)."""

    base_year: int | None = None
    roll_offsets: tuple[int, ...] = (0,)
    yearless: bool = False
    one_year: bool = False
    tz: str | None = None
    offset_s: int | None = None
    offsets_s: tuple[int, ...] = ()
    host: tuple[str, str] | None = None


def known_span(evidences: list[dict[str, Any]]) -> tuple[datetime, datetime] | None:
    """The span of times whose year the records themselves state, across all files."""
    lows = [e["stated_lo"] for e in evidences if e.get("stated_lo") is not None]
    highs = [e["stated_hi"] for e in evidences if e.get("stated_hi") is not None]
    return (min(lows), max(highs)) if lows else None


#: A gap between the times of a set of files longer than this, read in calendar order,
#: is a New Year read the other way round (as a month going back by more than half a
#: year in a file is).
_HALF_YEAR = timedelta(days=183)


def data_start(
    files: list[list[dict[str, Any]]], known: tuple[datetime, datetime] | None
) -> datetime | None:
    """Where the data of a set of files starts in the year (a time of the placeholder
    year), so that ``year=`` can name the year the data starts in: each file's first
    yearless time, and the ends of the span the records state (where it is shorter than
    half a year), read in calendar order; after a gap of more than half a year between
    them where there is one (31 December, then 1 January read as 1 January first), else
    the first. ``files`` holds each file's evidences, its chunks in order.

    >>> def at(month, day):
    ...     return [{"yearless_first": datetime(PLACEHOLDER_YEAR, month, day)}]
    >>> f"{data_start([at(12, 31), at(1, 1), at(12, 31)], None):%m-%d}"
    '12-31'
    >>> f"{data_start([at(3, 14), at(1, 2), at(5, 1)], None):%m-%d}"
    '01-02'
    """
    firsts = [
        next((e["yearless_first"] for e in evidences if e.get("yearless_first")), None)
        for evidences in files
    ]
    points = sorted(t for t in firsts if t is not None)
    if known is not None and known[1] - known[0] < _HALF_YEAR:
        points = sorted([*points, *(_in_placeholder_year(t) for t in known)])
    if not points:
        return None
    gap, after = max(((b - a, b) for a, b in pairwise(points)), default=(timedelta(0), None))
    return after if gap > _HALF_YEAR else points[0]


def _in_placeholder_year(t: datetime) -> datetime:
    """``t`` (naive or aware) as a naive time of the placeholder year (a leap year: every
    day has its place)."""
    return t.replace(year=PLACEHOLDER_YEAR, tzinfo=None)


def plan(
    path: str,
    parts: list[dict[str, Any]],
    *,
    year: int | None,
    tz: str | None,
    known: tuple[datetime, datetime] | None,
    mtime: datetime | None,
    start: datetime | None = None,
) -> tuple[Settlement, list[dict[str, Any]]]:
    """Decide the year and zone of one file from the evidence of its chunks (in order),
    ``known`` (the span the other files state), ``year=`` (the year the data starts in,
    which starts at ``start``, see :func:`data_start`), ``tz=`` and its mtime."""
    assumptions: list[dict[str, Any]] = []
    base, offsets = _plan_year(path, parts, year, known, mtime, start, assumptions)
    zone, offset, offsets_s = _plan_zone(path, parts, tz, assumptions, mtime)
    _note_unknown_host(path, parts, assumptions)
    yearless = any(p.get("yearless") for p in parts)
    one_year = (
        base is not None
        and not any(p.get("with_prefix") for p in parts)
        and not any(offsets)
        and not any(p.get("rolls") or p.get("unrolls") for p in parts)
    )
    return Settlement(base, offsets, yearless, one_year, zone, offset, offsets_s), assumptions


def _plan_year(path, parts, year, known, mtime, start, assumptions):
    yearless = [p for p in parts if p.get("yearless")]
    offsets, rolled, last_month = [], 0, None
    for part in parts:
        first = part.get("first_month")
        if last_month is not None and first is not None and first < last_month - 6:
            rolled += 1
        offsets.append(rolled)
        rolled += (part.get("rolls") or 0) - (part.get("unrolls") or 0)
        last_month = part.get("last_month") or last_month
    if not yearless:
        return None, tuple(offsets)
    total = sum(p["yearless"] for p in yearless)
    with_prefix = sum(p["with_prefix"] for p in yearless)
    first, last = yearless[0]["yearless_first"], yearless[-1]["yearless_last"]
    journal = _journal(parts)
    if year is None and journal:
        # the journal's end, in the zone its lines are written in, dates its last line
        # (a journal kept for years begins long before the lines shown)
        begin, end = (datetime.fromisoformat(journal[k]) for k in ("begin", "end"))
        base = end.year - (1 if (last.month, last.day) > (end.month, end.day) else 0) - rolled
        basis = f"the journal's header spans {begin:%Y-%m-%d} to {end:%Y-%m-%d}"
        certainty = "stated"
    else:
        base, basis, certainty = base_year(first, last, rolled, year, known, mtime, start=start)
    if with_prefix:
        assumptions.append(
            assumption(
                path,
                "year",
                "from runtime prefix",
                "yearless records carry a runtime prefix time",
                "certain",
                records=with_prefix,
                of=total,
            )
        )
    if with_prefix < total:
        value = str(base) if base is not None else "unknown"
        assumptions.append(assumption(path, "year", value, basis, certainty))
    return base, tuple(offsets)


def _journal(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the journal headers of a file's chunks state, put together (the first's
    beginning, the last's end, all their zone names); None without one."""
    stated = [p["journal"] for p in parts if p.get("journal")]
    if not stated:
        return None
    zones = sorted({z for j in stated for z in j["zones"]})
    return {**stated[-1], "begin": stated[0]["begin"], "zones": zones}


def base_year(
    first: datetime,
    last: datetime,
    rollovers: int,
    year: int | None,
    known: tuple[datetime, datetime] | None,
    mtime: datetime | None,
    *,
    start: datetime | None = None,
) -> tuple[int | None, str, str]:
    """The year of a file's first yearless record, and on what it rests. ``first`` and
    ``last`` are its first and last yearless times as the records run (placeholder year),
    ``rollovers`` the New Years between them. ``year`` is the year the data starts in, at
    ``start`` (placeholder year): a file that begins before that in the calendar begins
    after the New Year that follows."""
    if year is not None:
        if start is not None and first < start:
            return (
                year + 1,
                f"given with year={year} for the year the data starts in, on "
                f"{start:%d %B}; this file begins after the New Year",
                "stated",
            )
        return year, "given with year=", "stated"
    if known is not None:
        lo, hi = known
        candidates = range(max(lo.year - 1, FIRST_YEAR), min(hi.year + 1, LAST_YEAR) + 1)

        def distance(y: int) -> float:
            t = (
                first.replace(year=y)
                if not (first.month == 2 and first.day == 29)
                else first.replace(year=y, day=28)
            )
            if lo <= t <= hi:
                return 0.0
            return min(abs((t - lo).total_seconds()), abs((t - hi).total_seconds()))

        best = min(candidates, key=distance)
        return best, f"the other files span {lo:%Y-%m-%d} to {hi:%Y-%m-%d}", "likely"
    if mtime is not None:
        y = mtime.year - (1 if (last.month, last.day) > (mtime.month, mtime.day) else 0)
        return y - rollovers, f"the file's modification time ({mtime:%Y-%m-%d})", "guess"
    return None, "nothing to infer it from", "guess"


def _note_unknown_host(path, parts, assumptions) -> None:
    """Say so when no log record of a file names its host: neither the record, a wrapper
    nor the file's path did, so no change on a host can be tied to it."""
    logs = sum(p.get("logs") or 0 for p in parts)
    if logs and sum(p.get("hostless") or 0 for p in parts) == logs:
        assumptions.append(
            assumption(
                path,
                "host",
                "unknown",
                "neither the records, a wrapper nor the file's path names a host",
                "unknown",
            )
        )


def _plan_zone(
    path, parts, tz, assumptions, mtime=None
) -> tuple[str | None, int | None, tuple[int, ...]]:
    zoneless = sum(p.get("zoneless") or 0 for p in parts)
    timeless = sum(p.get("timeless") or 0 for p in parts)
    logs = max(sum(p.get("logs") or 0 for p in parts), timeless)
    if timeless:
        assumptions.append(
            assumption(
                path,
                "time",
                "none",
                "records write no time and no runtime prefix gives one",
                "unknown",
                records=timeless,
                of=logs,
            )
        )
    if not zoneless:
        return None, None, ()
    # what the file states (its runtime prefix's UTC times) beats what the user guesses
    shown = offsets_shown(parts)
    changed = changed_offsets(shown)
    if changed:
        zone = _plan_changing_offsets(path, parts, tz, shown, changed, zoneless, assumptions)
        return zone, max(changed, key=shown.__getitem__), changed
    gaps = [p for p in parts if p.get("prefix_gap_s") is not None]
    gap = max(gaps, key=lambda p: p["zoneless"])["prefix_gap_s"] if gaps else None
    if gap is not None and abs(gap) <= _WIDEST_OFFSET_S:
        offset = int(round(gap / _OFFSET_STEP_S) * _OFFSET_STEP_S)
        unused = f" (so tz={tz} was not used)" if tz else ""
        agree, prefixed = shown.get(offset, 0), sum(shown.values())
        if agree < prefixed:
            # a few records whose prefixes show another offset: lines logged late, or a
            # clock that changed too near the file's end for its prefixes to tell
            basis = (
                "records' runtime prefixes show that offset, the others' another (lines "
                f"logged late, or a clock changed too near the file's end to tell){unused}"
            )
            assumptions.append(
                assumption(
                    path,
                    "time zone",
                    _offset_text(offset),
                    basis,
                    "likely",
                    records=agree,
                    of=prefixed,
                )
            )
            return None, offset, ()
        assumptions.append(
            assumption(
                path,
                "time zone",
                _offset_text(offset),
                f"records write no zone; their times match the runtime prefix's UTC times "
                f"at that offset{unused}",
                "certain",
                records=zoneless,
            )
        )
        return None, offset, ()
    journal = _journal(parts)
    unused = f" (so tz={tz} was not used)" if tz else ""
    rules = summer_time_zone(journal["zones"]) if journal else None
    if rules:
        assumptions.append(
            assumption(
                path,
                "time zone",
                rules,
                f"records write no zone; the journal's header writes its times in "
                f"{' and '.join(journal['zones'])}, whose clock is {rules}'s{unused}",
                "stated",
                records=zoneless,
            )
        )
        return rules, None, ()
    stated = zone_offset(f"{journal['end']} {journal['zone']}") if journal else None
    if stated is not None:
        assumptions.append(
            assumption(
                path,
                "time zone",
                _offset_text(stated),
                f"records write no zone; the journal's header writes its times in "
                f"{journal['zone']}{unused}",
                "stated",
                records=zoneless,
            )
        )
        return None, stated, ()
    if tz:
        assumptions.append(assumption(path, "time zone", tz, "given with tz=", "stated"))
        return tz, None, ()
    assumptions.append(
        assumption(
            path,
            "time zone",
            "UTC",
            "records write a time without a zone" + _after_written(parts, mtime),
            "assumed",
            records=zoneless,
        )
    )
    return None, 0, ()


#: How far a file's latest record may be read after the file was last written (its
#: mtime) before the zone its times were read in is in doubt: a clock a little ahead.
_MTIME_SLACK = timedelta(minutes=10)


def _after_written(parts: list[dict[str, Any]], mtime: datetime | None) -> str:
    """Words for a file whose latest zoneless record, read as UTC, is later than the file
    was last written: no record is written after its file, so the times are local times
    of a zone ahead of UTC (RabbitMQ 3.8's, say), and ``--tz`` should say which. Nothing
    for a file written after its records (a ``kubectl logs`` saved later), which says
    nothing of their zone."""
    latest = max((p["zoneless_hi"] for p in parts if p.get("zoneless_hi")), default=None)
    if latest is None or mtime is None:
        return ""
    ahead = latest - mtime.astimezone(UTC).replace(tzinfo=None)
    if ahead <= _MTIME_SLACK:
        return ""
    minutes = ahead // timedelta(minutes=1)
    return (
        f"; read as UTC the latest is {minutes:,} minutes after the file was last written "
        "(its modification time), so they are likely a zone's ahead of UTC: give --tz"
    )


def offsets_shown(parts: list[dict[str, Any]]) -> dict[int, int]:
    """How many zoneless records of a file's chunks have a runtime prefix that shows each
    UTC offset (rounded to a quarter hour), added up over the chunks."""
    shown: dict[int, int] = {}
    for part in parts:
        for row in part.get("prefix_offsets") or ():
            shown[row["offset_s"]] = shown.get(row["offset_s"], 0) + row["records"]
    return shown


def changed_offsets(shown: dict[int, int]) -> tuple[int, ...]:
    """The offsets of a file's clock, in order, where its runtime prefixes show it
    changing offset (summer time); else none. An offset counts where it is within a
    zone's reach and the prefixes of two records and of :data:`_OFFSET_SHARE` of them
    show it: a line logged late shows its offset less its delay, and a few such lines are
    no clock's offset. Offsets less than half an hour apart (no zone changes by less) are
    one clock near a rounding edge, which did not change.

    >>> changed_offsets({3600: 120, 7200: 279, 5400: 1, 0: 2})
    (3600, 7200)
    >>> changed_offsets({3600: 400, 1800: 3}), changed_offsets({3600: 200, 4500: 200})
    ((), ())
    """
    total = sum(shown.values())
    kept = sorted(
        offset
        for offset, n in shown.items()
        if abs(offset) <= _WIDEST_OFFSET_S and n >= max(2, _OFFSET_SHARE * total)
    )
    if len(kept) < 2 or any(b - a < _SMALLEST_CHANGE_S for a, b in pairwise(kept)):
        return ()
    return tuple(kept)


def _plan_changing_offsets(path, parts, tz, shown, changed, zoneless, assumptions) -> str | None:
    """The zone of a file whose runtime prefixes show its clock at more than one offset:
    ``tz`` where it gives just those offsets over the span of those prefixes, else none
    (each record is read at its own prefix's offset, see :class:`Settlement`)."""
    lo = min(p["offset_prefix_lo"] for p in parts if p.get("offset_prefix_lo") is not None)
    hi = max(p["offset_prefix_hi"] for p in parts if p.get("offset_prefix_hi") is not None)
    explained = tz is not None and zone_offsets(tz, lo, hi) == set(changed)
    each = ", ".join(f"{_offset_text(o)} for {shown[o]:,}" for o in changed)
    which = (
        "the offsets the zone given with tz= keeps then" if explained else "more than one offset"
    )
    said = (
        f"records write no zone; their runtime prefix's UTC times show the clock at {which} "
        f"({each}), and each is read at the one its own prefix shows"
    )
    others = zoneless - sum(shown[o] for o in changed)
    if others:
        how = "in that zone" if explained else "at a neighbouring record's offset"
        said += f"; {others:,} whose prefix shows none of these (or that have none) {how}"
    if tz and not explained:
        said += f" (so tz={tz} was not used: it does not keep these offsets then)"
    value = tz if explained else " and ".join(_offset_text(o) for o in changed)
    certainty = "likely" if others and not explained else "certain"
    assumptions.append(assumption(path, "time zone", value, said, certainty, records=zoneless))
    return tz if explained else None


def apply(records: pl.LazyFrame, settlement: Settlement, part: int = 0) -> pl.LazyFrame:
    """Records with ``ts`` in UTC: the settled year put into yearless times (the runtime
    prefix on the same line first, else the planned year plus rollovers), stated offsets
    applied, zoneless times moved by the planned zone (in a file whose clock changed
    offset, each by the offset its own runtime prefix shows); a record with no time of its
    own takes its runtime prefix's.

    With a zone, a wall time that a daylight-saving change skips (the gap) or repeats
    (the overlap) is read with the offset in force before the change, as Python's
    ``fold=0`` does: 02:30 on a spring-forward night is 03:30 summer time, and 02:30 on
    a fall-back night is its first occurrence, unless the file's times went back into the
    repeated hour before it (:func:`second_pass`): then it is its second. A yearless 29
    February whose year turns out not to be a leap year has no time (its runtime
    prefix's, if it has one), rather than a shifted one. A time beyond what an event may
    hold (:data:`~timeline.reading.times.HOLDABLE`: year 0, 9999) is no time either. Such
    rows are marked in ``_time_note`` (``"gap"``, ``"repeated"``, ``"repeated_second"``,
    ``"feb29"``, ``"beyond"``) so that the loader can report them (:func:`time_problems`).

    A host that stands for the settlement's node (``host``) becomes the node's name."""
    if settlement.host:
        records = records.with_columns(pl.col("host").replace(*settlement.host))
    note = pl.lit(None, pl.String)
    if settlement.yearless:
        feb29 = _YEARLESS & (_MONTH == 2) & (pl.col("ts").dt.day() == 29)
        clamped = pl.col("_feb29") & (pl.col("ts").dt.day() != 29)
        records = (
            records.with_columns(_feb29=feb29)
            .with_columns(ts=_year_settled(settlement, part))
            .with_columns(
                _time_note=pl.when(clamped).then(pl.lit("feb29")),
                ts=pl.when(clamped).then(None).otherwise(pl.col("ts")),
            )
            .drop("_feb29")
        )
        note = pl.col("_time_note")
    stated = pl.col("ts") - pl.duration(seconds=pl.col("utc_offset_s"))
    own = _own_offset(settlement.offsets_s)
    if settlement.tz:
        wall = pl.when(_ZONELESS).then(pl.col("ts"))
        records = records.with_columns(_second=second_pass(wall, settlement.tz))
        marked = pl.when(pl.col("_second")).then(pl.lit("repeated_second"))
        records = records.with_columns(
            _time_note=pl.coalesce(
                note,
                pl.when(own.is_null()).then(
                    marked.otherwise(dst_mark(pl.col("ts"), settlement.tz))
                ),
            )
        )
        note = pl.col("_time_note")
        by_zone = pl.when(pl.col("_second")).then(after_dst_change(pl.col("ts"), settlement.tz))
        by_zone = by_zone.otherwise(before_dst_change(pl.col("ts"), settlement.tz))
        unstated = pl.when(own.is_not_null()).then(_at_offset(own)).otherwise(by_zone)
    elif settlement.offsets_s:
        # a record whose prefix shows no offset of the file's clock takes a neighbour's
        # (the most common, in a part that has none)
        neighbours = own.forward_fill().backward_fill().fill_null(settlement.offset_s)
        unstated = _at_offset(neighbours)
    elif settlement.offset_s:
        unstated = _at_offset(pl.lit(settlement.offset_s))
    else:
        unstated = pl.col("ts")
    utc = pl.when(pl.col("utc_offset_s").is_not_null()).then(stated).otherwise(unstated)
    utc = utc.dt.replace_time_zone("UTC")
    prefix = pl.col("prefix_ts")
    beyond = ~holdable(utc).fill_null(True) | ~holdable(prefix).fill_null(True)
    records = records.with_columns(
        ts=pl.coalesce(pl.when(holdable(utc)).then(utc), pl.when(holdable(prefix)).then(prefix)),
        _time_note=pl.coalesce(note, pl.when(beyond).then(pl.lit("beyond"))),
    )
    return records.drop("_second") if settlement.tz else records


def _own_offset(offsets_s: tuple[int, ...]) -> pl.Expr:
    """The offset each record's runtime prefix shows, where it is one of ``offsets_s``
    (a file's clock's offsets, see :class:`Settlement`); else null, as for every record
    when there are none."""
    if not offsets_s:
        return pl.lit(None, pl.Int64)
    shown = _offset_shown(pl.col("ts"))
    return pl.when(shown.is_in(list(offsets_s))).then(shown)


def _at_offset(offset_s: pl.Expr) -> pl.Expr:
    """Zoneless ``ts`` (naive) as naive UTC, at ``offset_s`` seconds east of UTC."""
    return pl.col("ts") - pl.duration(seconds=offset_s)


def dst_mark(wall: pl.Expr, tz: str) -> pl.Expr:
    """``"gap"`` where ``wall`` does not exist in ``tz``, ``"repeated"`` where it exists
    twice, else null (zoneless wall times; a null ``wall`` is null)."""
    zoned = wall.dt.replace_time_zone(tz, ambiguous="null", non_existent="null")
    skipped = wall.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    return (
        pl.when(wall.is_not_null() & skipped.is_null())
        .then(pl.lit("gap"))
        .when(wall.is_not_null() & zoned.is_null())
        .then(pl.lit("repeated"))
    )


#: How far a file's wall times must go back for it to have logged a repeated hour twice:
#: further than lines a little out of order go.
_WENT_BACK = timedelta(minutes=10)


def second_pass(wall: pl.Expr, tz: str) -> pl.Expr:
    """True where ``wall`` (zoneless wall times in ``tz``, as the file runs) is a time
    repeated by a fall-back change after the file's times went back into the repeated
    hour on that day: its second occurrence. Read alone, a repeated time is its first
    (see :func:`apply`); a file that logged through the change writes the hour twice,
    and its order tells the passes apart.

    >>> from datetime import datetime
    >>> walls = [datetime(2024, 11, 3, 1, m) for m in (30, 59, 0, 30)] + [datetime(2024, 11, 3, 2)]
    >>> second = second_pass(pl.col("wall"), "America/New_York")
    >>> pl.DataFrame({"wall": walls}).select(second).to_series().to_list()
    [False, False, True, True, False]
    """
    repeated = dst_mark(wall, tz) == "repeated"
    went_back = (wall - wall.forward_fill().shift(1)) < -_WENT_BACK
    passes = (went_back & repeated).fill_null(False).cast(pl.Int32).cum_sum()
    return (repeated & (passes.over(wall.dt.date()) > 0)).fill_null(False)


def after_dst_change(wall: pl.Expr, tz: str) -> pl.Expr:
    """Naive wall times in ``tz`` as naive UTC, a repeated time read as its second
    occurrence (with the offset in force after the change; null in a gap)."""
    zoned = wall.dt.replace_time_zone(tz, ambiguous="latest", non_existent="null")
    return zoned.dt.convert_time_zone("UTC").dt.replace_time_zone(None)


def before_dst_change(wall: pl.Expr, tz: str) -> pl.Expr:
    """Naive wall times in ``tz`` as naive UTC, a skipped or repeated time read with the
    offset in force before the change (see :func:`apply`).

    >>> from datetime import datetime
    >>> gap, overlap = datetime(2023, 3, 26, 2, 30), datetime(2023, 10, 29, 2, 30)
    >>> frame = pl.DataFrame({"wall": [gap, overlap]})
    >>> utc = frame.select(before_dst_change(pl.col("wall"), "Europe/Berlin"))["wall"]
    >>> [f"{t:%H:%M}" for t in utc]
    ['01:30', '00:30']
    """
    # three hours before, the clock had not yet changed (no change comes within three hours
    # of another); the same distance back gives the offset of before the change
    earlier = (wall - pl.duration(hours=3)).dt.replace_time_zone(
        tz, ambiguous="earliest", non_existent="null"
    ) + pl.duration(hours=3)
    zoned = wall.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    return pl.coalesce(zoned, earlier).dt.convert_time_zone("UTC").dt.replace_time_zone(None)


_TIME_NOTES = {
    "gap": "wall times skipped by a daylight-saving change, read with the offset in force "
    "before the change",
    "repeated": "wall times repeated by a daylight-saving change, read as their first "
    "occurrence (the offset before the change)",
    "repeated_second": "wall times repeated by a daylight-saving change, read as their second "
    "occurrence (the offset after the change), since the file's times went back into the "
    "repeated hour before them",
    "feb29": "records dated 29 February in a year that has none: their time is unknown",
    "beyond": "records dated before 1677-09-21 or after 2262-04-11, where no clock's "
    "reading lies: taken as having no time of their own",
}


def time_note_counts(events: pl.LazyFrame) -> pl.LazyFrame | None:
    """The rows :func:`apply` marked in ``_time_note`` (wall times in a daylight-saving
    gap or overlap, 29 February in a common year, times beyond what an event may hold),
    counted per file and kind, with the first line; None for rows that have no marks."""
    if "_time_note" not in events.collect_schema().names():
        return None
    return (
        events.filter(pl.col("_time_note").is_not_null())
        .group_by("file", "_time_note")
        .agg(n=pl.len(), first=pl.col("line").min())
        .sort("file", "_time_note")
    )


def time_problems(counts: pl.DataFrame) -> dict[str, str]:
    """Per file, a sentence on its rows counted by :func:`time_note_counts` (the counts
    of several parts of a file are added up)."""
    counts = (
        counts.group_by("file", "_time_note")
        .agg(pl.col("n").sum(), pl.col("first").min())
        .sort("file", "_time_note")
    )
    said: dict[str, list[str]] = {}
    for row in counts.iter_rows(named=True):
        said.setdefault(row["file"], []).append(
            f"{row['n']:,} {_TIME_NOTES[row['_time_note']]} (first: line {row['first']})"
        )
    return {file: "; ".join(parts) for file, parts in said.items()}


def _year_settled(settlement: Settlement, part: int) -> pl.Expr:
    """``ts`` with the right year in yearless times. A December record beside a January
    prefix time belongs to the year before, and the other way round."""
    if settlement.one_year:  # one offset for every row: cheaper than one per row
        fixed = pl.col("ts").dt.offset_by(f"{settlement.base_year - PLACEHOLDER_YEAR}y")
        return pl.when(_YEARLESS).then(fixed).otherwise(pl.col("ts"))
    month = _MONTH
    from_prefix = pl.col("prefix_ts").dt.year() + pl.when(
        (month == 12) & (pl.col("prefix_ts").dt.month() == 1)
    ).then(-1).when((month == 1) & (pl.col("prefix_ts").dt.month() == 12)).then(1).otherwise(0)
    if settlement.base_year is None:
        guessed = pl.lit(None, pl.Int32)
    else:
        rolls = settlement.roll_offsets[part] if part < len(settlement.roll_offsets) else 0
        guessed = pl.lit(settlement.base_year + rolls, pl.Int32) + _YEAR_STEP.cum_sum()
    new_year = pl.coalesce(from_prefix, guessed)
    fixed = in_year(pl.col("ts"), new_year)
    return pl.when(_YEARLESS).then(fixed).otherwise(pl.col("ts"))


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return "UTC" if seconds == 0 else f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def assumption(
    file: str,
    what: str,
    value: str,
    basis: str,
    certainty: str,
    *,
    records: int | None = None,
    of: int | None = None,
) -> dict[str, Any]:
    """One assumption row: what was assumed for ``file``, its value, basis and certainty.
    A basis about ``records`` of the file's records (``of`` so many) is written after
    their count, which the row also keeps, so that the rows of several files can be said
    in one sentence with their counts added up (:func:`assumption_groups`)."""
    if records is not None:
        basis = f"{_counted(records, of)} {basis}"
    return {
        "file": file,
        "what": what,
        "value": value,
        "basis": basis,
        "certainty": certainty,
        "records": records,
        "of": of,
    }


def _counted(records: int, of: int | None) -> str:
    return f"{records:,}" if of is None else f"{records:,} of {of:,}"


def assumption_groups(
    assumptions: pl.DataFrame, name: Callable[[str], str] = str
) -> list[dict[str, Any]]:
    """The assumptions shared by files, one per what, value and certainty, in order, with
    how many ``files``, one of them (``example``, as ``name`` shows it) and a ``basis``
    true of them all: the files' own where they share it, their counts added up where
    their bases differ in the counts alone, else the example's, said to be one.

    >>> zoneless, mtime = "records write no zone", "the file's modification time"
    >>> rows = [
    ...     assumption("a.log", "time zone", "UTC", zoneless, "assumed", records=101),
    ...     assumption("b.log", "time zone", "UTC", zoneless, "assumed", records=117),
    ...     assumption("a.log", "year", "2023", f"{mtime} (2023-12-31)", "guess"),
    ...     assumption("b.log", "year", "2023", f"{mtime} (2024-01-01)", "guess"),
    ... ]
    >>> for group in assumption_groups(pl.DataFrame(rows, schema=ASSUMPTION_SCHEMA)):
    ...     print(group["files"], group["basis"])
    2 218 records write no zone
    2 e.g. a.log: the file's modification time (2023-12-31)
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in assumptions.to_dicts():
        groups.setdefault((row["what"], row["value"], row["certainty"]), []).append(row)
    return [
        {
            "what": what,
            "value": value,
            "certainty": certainty,
            "files": len({row["file"] for row in rows}),
            "example": name(rows[0]["file"]),
            "basis": _shared_basis(rows, name),
        }
        for (what, value, certainty), rows in groups.items()
    ]


def _shared_basis(rows: list[dict[str, Any]], name: Callable[[str], str]) -> str:
    """A basis true of every row of a group (see :func:`assumption_groups`)."""
    bases = {row["basis"] for row in rows}
    if len(bases) == 1:
        return rows[0]["basis"]
    counted = all(row.get("records") is not None for row in rows)
    of = [row.get("of") for row in rows]
    if counted and (all(n is None for n in of) or None not in of):
        rests = {row["basis"].removeprefix(_counted(row["records"], row["of"])) for row in rows}
        if len(rests) == 1:
            total = sum(row["records"] for row in rows)
            return _counted(total, None if of[0] is None else sum(of)) + rests.pop()
    return f"e.g. {name(rows[0]['file'])}: {rows[0]['basis']}"

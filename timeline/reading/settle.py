"""Settling what records leave open: the year of yearless times and the zone of zoneless
ones, across files, with every choice written down as an assumption.

It works in three steps so that files can be read apart, in worker processes or on a
cluster: :func:`evidence` measures one file's (or chunk's) records where they are read;
:func:`plan` weighs the evidence of every file at once and decides each file's year and
zone; :func:`apply` turns one file's records into UTC times by that decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from parsers.common import PLACEHOLDER_YEAR

ASSUMPTION_SCHEMA = {
    "file": pl.String,
    "what": pl.String,
    "value": pl.String,
    "basis": pl.String,
    "certainty": pl.String,
}

_YEARLESS = pl.col("year_missing") & pl.col("ts").is_not_null()
_MONTH = pl.col("ts").dt.month()
#: A yearless record whose month went back by more than half a year: December to January.
_ROLLED = (_MONTH.shift(1).forward_fill() - 6 > _MONTH).fill_null(False) & _YEARLESS
_ZONELESS = pl.col("ts").is_not_null() & pl.col("utc_offset_s").is_null()
#: ``ts`` with a yearless record's year taken from its runtime prefix, to compare the two.
_with_prefix_year = (
    pl.when(pl.col("year_missing"))
    .then(pl.col("ts").dt.replace(year=pl.col("prefix_ts").dt.year()))
    .otherwise(pl.col("ts"))
)


def evidence(records: pl.DataFrame) -> dict[str, Any]:
    """What one file's (or chunk's) records say about years and zones, in one query.

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
    ts, prefix = pl.col("ts"), pl.col("prefix_ts").dt.replace_time_zone(None)
    stated = ts.filter(~pl.col("year_missing") & ts.is_not_null())
    return records.select(
        stated_lo=pl.min_horizontal(stated.min(), prefix.min()),
        stated_hi=pl.max_horizontal(stated.max(), prefix.max()),
        yearless=_YEARLESS.sum(),
        with_prefix=(_YEARLESS & pl.col("prefix_ts").is_not_null()).sum(),
        rolls=_ROLLED.sum(),
        first_month=_MONTH.filter(_YEARLESS).first(),
        last_month=_MONTH.filter(_YEARLESS).last(),
        yearless_first=ts.filter(_YEARLESS).min(),
        yearless_last=ts.filter(_YEARLESS).max(),
        zoneless=_ZONELESS.sum(),
        prefix_gap_s=(_with_prefix_year - prefix).filter(_ZONELESS).dt.total_seconds().median(),
        timeless=(ts.is_null() & pl.col("prefix_ts").is_null()).sum(),
    ).row(0, named=True)


@dataclass(frozen=True)
class Settlement:
    """One file's decision: the year of its first yearless record where no runtime
    prefix says it (``base_year``), the rollovers before each of its chunks, and how
    zoneless times become UTC (a zone name, an offset in seconds, or UTC)."""

    base_year: int | None = None
    roll_offsets: tuple[int, ...] = (0,)
    yearless: bool = False
    one_year: bool = False
    tz: str | None = None
    offset_s: int | None = None


def known_span(evidences: list[dict[str, Any]]) -> tuple[datetime, datetime] | None:
    """The span of times whose year the records themselves state, across all files."""
    lows = [e["stated_lo"] for e in evidences if e.get("stated_lo") is not None]
    highs = [e["stated_hi"] for e in evidences if e.get("stated_hi") is not None]
    return (min(lows), max(highs)) if lows else None


def plan(
    path: str,
    parts: list[dict[str, Any]],
    *,
    year: int | None,
    tz: str | None,
    known: tuple[datetime, datetime] | None,
    mtime: datetime | None,
) -> tuple[Settlement, list[dict[str, str]]]:
    """Decide the year and zone of one file from the evidence of its chunks (in order),
    ``known`` (the span the other files state), ``year=``, ``tz=`` and its mtime."""
    assumptions: list[dict[str, str]] = []
    base, offsets = _plan_year(path, parts, year, known, mtime, assumptions)
    zone, offset = _plan_zone(path, parts, tz, assumptions)
    _note_unknown_host(path, parts, assumptions)
    yearless = any(p.get("yearless") for p in parts)
    one_year = (
        base is not None
        and not any(p.get("with_prefix") for p in parts)
        and not any(offsets)
        and not any(p.get("rolls") for p in parts)
    )
    return Settlement(base, offsets, yearless, one_year, zone, offset), assumptions


def _plan_year(path, parts, year, known, mtime, assumptions):
    yearless = [p for p in parts if p.get("yearless")]
    offsets, rolled, last_month = [], 0, None
    for part in parts:
        first = part.get("first_month")
        if last_month is not None and first is not None and first < last_month - 6:
            rolled += 1
        offsets.append(rolled)
        rolled += part.get("rolls") or 0
        last_month = part.get("last_month") or last_month
    if not yearless:
        return None, tuple(offsets)
    total = sum(p["yearless"] for p in yearless)
    with_prefix = sum(p["with_prefix"] for p in yearless)
    first = min(p["yearless_first"] for p in yearless)
    last = max(p["yearless_last"] for p in yearless)
    base, basis, certainty = base_year(first, last, rolled, year, known, mtime)
    if with_prefix:
        assumptions.append(
            assumption(
                path,
                "year",
                "from runtime prefix",
                f"{with_prefix:,} of {total:,} yearless records carry a runtime prefix time",
                "certain",
            )
        )
    if with_prefix < total:
        value = str(base) if base is not None else "unknown"
        assumptions.append(assumption(path, "year", value, basis, certainty))
    return base, tuple(offsets)


def base_year(
    first: datetime,
    last: datetime,
    rollovers: int,
    year: int | None,
    known: tuple[datetime, datetime] | None,
    mtime: datetime | None,
) -> tuple[int | None, str, str]:
    """The year of a file's first yearless record, and on what it rests. ``first`` and
    ``last`` are its earliest and latest yearless times (placeholder year)."""
    if year is not None:
        return year, "given with year=", "stated"
    if known is not None:
        lo, hi = known
        candidates = range(lo.year - 1, hi.year + 2)

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


def _plan_zone(path, parts, tz, assumptions) -> tuple[str | None, int | None]:
    zoneless = sum(p.get("zoneless") or 0 for p in parts)
    timeless = sum(p.get("timeless") or 0 for p in parts)
    if timeless:
        assumptions.append(
            assumption(
                path,
                "time",
                "none",
                "the records write no time and no runtime prefix gives one",
                "unknown",
            )
        )
    if not zoneless:
        return None, None
    if tz:
        assumptions.append(assumption(path, "time zone", tz, "given with tz=", "stated"))
        return tz, None
    gaps = [p for p in parts if p.get("prefix_gap_s") is not None]
    gap = max(gaps, key=lambda p: p["zoneless"])["prefix_gap_s"] if gaps else None
    if gap is not None and abs(gap) <= 14 * 3600:
        offset = int(round(gap / 900) * 900)
        assumptions.append(
            assumption(
                path,
                "time zone",
                _offset_text(offset),
                f"{zoneless:,} records write no zone; their times match the runtime "
                "prefix's UTC times at that offset",
                "certain",
            )
        )
        return None, offset
    assumptions.append(
        assumption(
            path, "time zone", "UTC", f"{zoneless:,} records write a time without a zone", "assumed"
        )
    )
    return None, 0


def apply(records: pl.LazyFrame, settlement: Settlement, part: int = 0) -> pl.LazyFrame:
    """Records with ``ts`` in UTC: the settled year put into yearless times (the runtime
    prefix on the same line first, else the planned year plus rollovers), stated offsets
    applied, zoneless times moved by the planned zone; a record with no time of its own
    takes its runtime prefix's."""
    if settlement.yearless:
        records = records.with_columns(ts=_year_settled(settlement, part))
    stated = pl.col("ts") - pl.duration(seconds=pl.col("utc_offset_s"))
    if settlement.tz:
        local = pl.col("ts").dt.replace_time_zone(
            settlement.tz, ambiguous="earliest", non_existent="null"
        )
        unstated = local.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    elif settlement.offset_s:
        unstated = pl.col("ts") - pl.duration(seconds=settlement.offset_s)
    else:
        unstated = pl.col("ts")
    utc = pl.when(pl.col("utc_offset_s").is_not_null()).then(stated).otherwise(unstated)
    return records.with_columns(
        ts=pl.coalesce(utc.dt.replace_time_zone("UTC"), pl.col("prefix_ts"))
    )


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
        guessed = pl.lit(settlement.base_year + rolls, pl.Int32) + _ROLLED.cast(pl.Int32).cum_sum()
    new_year = pl.coalesce(from_prefix, guessed)
    fixed = pl.col("ts").dt.offset_by(
        pl.format("{}y", (new_year - PLACEHOLDER_YEAR).cast(pl.String))
    )
    return pl.when(_YEARLESS).then(fixed).otherwise(pl.col("ts"))


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return "UTC" if seconds == 0 else f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def assumption(file: str, what: str, value: str, basis: str, certainty: str) -> dict[str, str]:
    """One assumption row: what was assumed for ``file``, its value, basis and certainty."""
    return {"file": file, "what": what, "value": value, "basis": basis, "certainty": certainty}

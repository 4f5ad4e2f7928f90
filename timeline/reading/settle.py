"""Settling what records leave open: the year of yearless times and the zone of zoneless
ones, across files, with every choice written down as an assumption.

Each rule is a small function over one file's records and what is known from the others,
so that the same rules hold whether files are read in one process or in many.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from parsers.common import PLACEHOLDER_YEAR

if TYPE_CHECKING:
    from timeline.reading.loader import _FileResult


def known_span(frames: list[pl.DataFrame]) -> tuple[datetime, datetime] | None:
    """The span of times whose year the records themselves state, across all files."""
    spans = [
        f.filter(~pl.col("year_missing") & pl.col("ts").is_not_null()).select(
            lo=pl.col("ts").min(), hi=pl.col("ts").max()
        )
        for f in frames
    ] + [
        f.select(
            lo=pl.col("prefix_ts").min().dt.replace_time_zone(None),
            hi=pl.col("prefix_ts").max().dt.replace_time_zone(None),
        )
        for f in frames
    ]
    if not spans:
        return None
    both = pl.concat(spans).select(pl.col("lo").min(), pl.col("hi").max())
    lo, hi = both.row(0)
    return None if lo is None else (lo, hi)


def settle_year(
    result: _FileResult,
    year: int | None,
    known: tuple[datetime, datetime] | None,
    assumptions: list[dict[str, str]],
) -> pl.DataFrame:
    """Put the right year into yearless times: from the runtime prefix on the same line,
    else ``year=``, else the span of the other files, else the file's modification time.
    A month that goes backwards (December to January) moves on a year."""
    records = result.records
    yearless = pl.col("year_missing") & pl.col("ts").is_not_null()
    month = pl.col("ts").dt.month()
    rolled = (month < month.shift(1).forward_fill() - 6).fill_null(False) & yearless
    counts = records.select(
        total=yearless.sum(),
        with_prefix=(yearless & pl.col("prefix_ts").is_not_null()).sum(),
        rolls=rolled.sum(),
    )
    total, with_prefix, rolls = counts.row(0)
    if not total:
        return records
    if rolls:
        records = records.with_columns(_roll=rolled.cast(pl.Int32).cum_sum())
    else:
        records = records.with_columns(_roll=pl.lit(0, pl.Int32))
    from_prefix = pl.col("prefix_ts").dt.year() + pl.when(
        (month == 12) & (pl.col("prefix_ts").dt.month() == 1)
    ).then(-1).when((month == 1) & (pl.col("prefix_ts").dt.month() == 12)).then(1).otherwise(0)
    base, basis, certainty = base_year(
        records.select(pl.col("ts", "_roll").filter(yearless)), year, known, result.mtime
    )
    guessed = (
        pl.lit(base, pl.Int32) + pl.col("_roll") if base is not None else pl.lit(None, pl.Int32)
    )
    new_year = pl.coalesce(from_prefix, guessed)
    if with_prefix:
        assumptions.append(
            assumption(
                result.path,
                "year",
                "from runtime prefix",
                f"{with_prefix:,} of {total:,} yearless records carry a runtime prefix time",
                "certain",
            )
        )
    if with_prefix < total:
        value = str(base) if base is not None else "unknown"
        assumptions.append(assumption(result.path, "year", value, basis, certainty))
    if with_prefix == 0 and rolls == 0 and base is not None:
        fixed = pl.col("ts").dt.offset_by(f"{base - PLACEHOLDER_YEAR}y")  # one year for all
    else:
        fixed = pl.col("ts").dt.offset_by(
            pl.format("{}y", (new_year - PLACEHOLDER_YEAR).cast(pl.String))
        )
    return records.with_columns(ts=pl.when(yearless).then(fixed).otherwise(pl.col("ts"))).drop(
        "_roll"
    )


def base_year(
    yearless: pl.DataFrame,
    year: int | None,
    known: tuple[datetime, datetime] | None,
    mtime: datetime | None,
) -> tuple[int | None, str, str]:
    """The year of a file's first yearless record, and on what it rests."""
    if year is not None:
        return year, "given with year=", "stated"
    first = yearless["ts"].min()
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
        last = yearless["ts"].max()
        y = mtime.year - (1 if (last.month, last.day) > (mtime.month, mtime.day) else 0)
        rollovers = int(yearless.select(pl.col("_roll").max()).item() or 0)
        return y - rollovers, f"the file's modification time ({mtime:%Y-%m-%d})", "guess"
    return None, "nothing to infer it from", "guess"


def settle_zone(
    path: str, records: pl.DataFrame, tz: str | None, assumptions: list[dict[str, str]]
) -> pl.DataFrame:
    """Bring every time to UTC: a stated offset is applied; a missing zone is ``tz`` or UTC."""
    stated = pl.col("ts") - pl.duration(seconds=pl.col("utc_offset_s"))
    zoneless = pl.col("ts").is_not_null() & pl.col("utc_offset_s").is_null()
    n_zoneless = records.filter(zoneless).height
    prefix_offset = offset_from_prefix(records.filter(zoneless))
    unstated = pl.col("ts")
    if n_zoneless and tz:
        local = pl.col("ts").dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        unstated = local.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        assumptions.append(assumption(path, "time zone", tz, "given with tz=", "stated"))
    elif n_zoneless and prefix_offset is not None:
        unstated = pl.col("ts") - pl.duration(seconds=prefix_offset)
        assumptions.append(
            assumption(
                path,
                "time zone",
                offset_text(prefix_offset),
                f"{n_zoneless:,} records write no zone; their times match the runtime "
                "prefix's UTC times at that offset",
                "certain",
            )
        )
    elif n_zoneless:
        assumptions.append(
            assumption(
                path,
                "time zone",
                "UTC",
                f"{n_zoneless:,} records write a time without a zone",
                "assumed",
            )
        )
    if records.filter(pl.col("ts").is_null() & pl.col("prefix_ts").is_null()).height:
        assumptions.append(
            assumption(
                path,
                "time",
                "none",
                "the records write no time and no runtime prefix gives one",
                "unknown",
            )
        )
    utc = pl.when(pl.col("utc_offset_s").is_not_null()).then(stated).otherwise(unstated)
    return records.with_columns(
        ts=pl.coalesce(utc.dt.replace_time_zone("UTC"), pl.col("prefix_ts"))
    )


def note_unknown_host(path: str, records: pl.DataFrame, assumptions: list[dict[str, str]]) -> None:
    """Say so when no log record of a file names its host: neither the record, a wrapper
    nor the file's path did, so no change on a host can be tied to it."""
    logs = records.filter(pl.col("kind") == "log")
    if logs.height and logs["host"].null_count() == logs.height:
        assumptions.append(
            assumption(
                path,
                "host",
                "unknown",
                "neither the records, a wrapper nor the file's path names a host",
                "unknown",
            )
        )


def offset_from_prefix(zoneless: pl.DataFrame) -> int | None:
    """The zone offset (seconds, whole quarter hours) that lines up zoneless record times
    with their runtime prefix's UTC times, or None when no line has both."""
    gap = zoneless.select(
        (pl.col("ts") - pl.col("prefix_ts").dt.replace_time_zone(None)).dt.total_seconds().median()
    ).item()
    if gap is None or abs(gap) > 14 * 3600:
        return None
    return int(round(gap / 900) * 900)


def offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return "UTC" if seconds == 0 else f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def assumption(file: str, what: str, value: str, basis: str, certainty: str) -> dict[str, str]:
    return {"file": file, "what": what, "value": value, "basis": basis, "certainty": certainty}

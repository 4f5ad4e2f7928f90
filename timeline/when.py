"""Times that people type (``--since "yesterday 18:00"``), read with dateparser.

Only for what a person writes on a command line or in a change log: dateparser costs
about a millisecond a call and reads ``0314`` as the year 314, so it never sees log lines.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dateparser
import polars as pl

from timeline.errors import TimeExpressionError

SETTINGS = {
    "TIMEZONE": "UTC",
    "TO_TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True,
    "PREFER_DATES_FROM": "past",
    "DATE_ORDER": "YMD",
}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """The moment ``text`` names, in UTC; a time without a zone is taken as UTC.

    >>> parse_when("2023-03-14 17:00").isoformat()
    '2023-03-14T17:00:00+00:00'
    >>> parse_when("yesterday 18:00 UTC", now=datetime(2023, 3, 15, 9, tzinfo=UTC)).isoformat()
    '2023-03-14T18:00:00+00:00'
    """
    settings = dict(SETTINGS)
    if now is not None:
        settings["RELATIVE_BASE"] = now.astimezone(UTC).replace(tzinfo=None)
    try:
        moment = dateparser.parse(text, settings=settings)
        moment = None if moment is None else moment.astimezone(UTC)
    except OverflowError:  # year 1 with an offset east of UTC, 9999 with one west of it
        moment = None
    if moment is None:
        raise TimeExpressionError(
            f"cannot read the time {text!r}: write it like '2023-03-14 17:00' or "
            "'yesterday 18:00 UTC'"
        )
    return moment


def between(
    frame: pl.DataFrame, *, since: datetime | None = None, until: datetime | None = None
) -> pl.DataFrame:
    """The rows of ``frame`` from ``since`` up to ``until`` (rows without a time are kept)."""
    keep = pl.lit(True)
    if since is not None:
        keep = keep & (pl.col("ts") >= since)
    if until is not None:
        keep = keep & (pl.col("ts") <= until)
    return frame.filter(keep | pl.col("ts").is_null())

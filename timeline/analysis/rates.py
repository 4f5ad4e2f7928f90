"""Rates: how many warnings and errors per time bucket, and how long CI jobs waited.

Everything downstream (spikes, incidents, contributing changes) looks at the event frame
through these counts. A *series* is one thing counted over time: the rows of one signature
(``source`` + ``template``), or one CI metric of one executor type. The series frame is
long: one row per series and bucket, with the bucket's ``value`` and the number of event
rows behind it, so that every number can be traced back to rows.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import polars as pl

from timeline.reading.pods import node_of_pod

__all__ = [
    "BUCKETS",
    "MAX_BUCKETS",
    "SIGNATURE_KEYS",
    "choose_bucket",
    "dense_span",
    "every",
    "job_buckets",
    "job_rates",
    "job_series",
    "job_signature",
    "jobs",
    "log_series",
    "problem_rows",
    "signature_counts",
    "source_starts",
    "to_timedelta",
]

#: Bucket widths ``choose_bucket`` picks from, narrowest first.
BUCKETS = ["1s", "5s", "10s", "30s", "1m", "2m", "5m", "10m", "15m", "30m", "1h", "2h", "6h", "1d"]
#: ``choose_bucket`` keeps the number of buckets over the span at or below this.
MAX_BUCKETS = 1000
#: A stretch this long with no row at all parts the data (:func:`dense_span`): the bucket
#: fits the part with the most hours of data, so that a journal saved with its lines
#: since the machine's boot weeks ago does not make the buckets of a few hours' logs half
#: an hour wide...
DENSE_GAP = timedelta(days=1)
#: ... as long as the whole span stays within this many buckets.
MAX_ALL_BUCKETS = 20 * MAX_BUCKETS
_SECOND = timedelta(seconds=1)
#: The columns a warning or error is counted by.
SIGNATURE_KEYS = ("source", "component", "host", "template")
#: Levels counted as problems.
PROBLEM_LEVELS = ("warning", "error", "critical")

_UNITS = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 604800,
    "week": 604800,
}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)")

#: The parsed fields of a CI job row's ``attrs``.
JOB_FIELDS: dict[str, pl.DataType] = {
    "job_id": pl.String(),
    "name": pl.String(),
    "status": pl.String(),
    "executor": pl.String(),
    "queued_at": pl.String(),
    "started_at": pl.String(),
    "stopped_at": pl.String(),
    "queue_delay_s": pl.Float64(),
    "duration_s": pl.Float64(),
    "runner_name": pl.String(),
}


def to_timedelta(value: str | timedelta) -> timedelta:
    """Read a duration a person writes: ``"1min"``, ``"5m"``, ``"90s"``, ``"1h30m"``, ``"2 days"``.

    ``m`` is minutes (there are no months here).

    >>> to_timedelta("1h30min")
    datetime.timedelta(seconds=5400)
    >>> to_timedelta("5m") == to_timedelta("5 minutes")
    True
    """
    if isinstance(value, timedelta):
        return value
    text = value.strip().lower()
    parts = _PART.findall(text)
    if not parts or _PART.sub("", text).strip(" ,"):
        raise ValueError(f"not a duration: {value!r} (write e.g. '30s', '5min', '1h', '2d')")
    seconds = 0.0
    for number, unit in parts:
        unit = unit.removesuffix("s") if unit not in _UNITS else unit
        if unit not in _UNITS:
            raise ValueError(f"unknown time unit {unit!r} in {value!r}")
        seconds += float(number) * _UNITS[unit]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive: {value!r}")
    return timedelta(seconds=seconds)


def every(value: str | timedelta) -> str:
    """The polars duration string (``"300s"``) for a duration; whole microseconds.

    >>> every("5min")
    '300000000us'
    """
    td = to_timedelta(value)
    return f"{td // timedelta(microseconds=1)}us"


def choose_bucket(
    start: datetime,
    end: datetime,
    *,
    max_buckets: int = MAX_BUCKETS,
    dense: tuple[datetime, datetime] | None = None,
) -> str:
    """The narrowest bucket in ``BUCKETS`` that cuts ``start``..``end`` (or the ``dense``
    part of it, :func:`dense_span`) into at most ``max_buckets`` pieces, and the whole span
    into at most :data:`MAX_ALL_BUCKETS`: fine enough to place an onset, coarse enough to
    count.

    >>> from datetime import datetime
    >>> choose_bucket(datetime(2023, 3, 13), datetime(2023, 3, 15, 14))
    '5m'
    >>> choose_bucket(datetime(2023, 3, 14, 18), datetime(2023, 3, 14, 18, 5))
    '1s'
    >>> hours = datetime(2024, 6, 18, 6), datetime(2024, 6, 18, 10)
    >>> choose_bucket(datetime(2024, 6, 3), hours[1], dense=hours)
    '2m'
    """
    whole = max(end - start, _SECOND)
    # the dense part's hours, within the data's own span: one part alone is the span
    span = whole if dense is None else max(min(dense[1], end) - max(dense[0], start), _SECOND)
    for width in BUCKETS:
        step = to_timedelta(width)
        if span / step <= max_buckets and whole / step <= MAX_ALL_BUCKETS:
            return width
    return BUCKETS[-1]


def dense_span(frame: pl.DataFrame | pl.LazyFrame) -> tuple[datetime, datetime] | None:
    """The hours of ``frame``'s part with the most hours that hold a row, where parts are
    more than :data:`DENSE_GAP` apart: where the data is, for the bucket to fit. Hours
    that hold a row are the same in every row and in those the analysis keeps.

    >>> from datetime import datetime, UTC
    >>> hours = [datetime(2024, 6, 18, 6, m // 60, m % 60, tzinfo=UTC) for m in range(2000)]
    >>> frame = pl.DataFrame({"ts": [datetime(2024, 6, 3, tzinfo=UTC), *hours]})
    >>> [f"{t:%d %H}" for t in dense_span(frame)]
    ['18 06', '18 07']
    """
    hours = (
        frame.lazy()
        .select(hour=pl.col("ts").dt.truncate("1h").unique().drop_nulls().sort())
        .with_columns(part=(pl.col("hour").diff() > DENSE_GAP).fill_null(False).cum_sum())
        .group_by("part")
        .agg(lo=pl.col("hour").min(), hi=pl.col("hour").max(), hours=pl.len())
        .sort("hours", "hi")
        .collect()
    )
    if hours.height == 0:
        return None
    lo, hi = hours.select("lo", "hi").row(-1)
    return lo, hi + timedelta(hours=1)


def problem_rows(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The log rows at warning level or above that have a time: what the rates count.

    Returns the event columns plus ``ts``-sorted order is not promised.
    """
    return (
        frame.lazy()
        .filter(
            (pl.col("kind") == "log")
            & pl.col("level").is_in(PROBLEM_LEVELS)
            & pl.col("ts").is_not_null()
        )
        .with_columns(template=pl.coalesce("template", "message"))
    )


def signature_counts(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    bucket: str | timedelta,
    by: tuple[str, ...] | list[str] = SIGNATURE_KEYS,
) -> pl.DataFrame:
    """Warnings and errors per time bucket, per source, component, host and signature.

    Parameters
    ----------
    frame
        An event frame.
    bucket
        Bucket width (``"1min"``, ``"5m"``, a ``timedelta``).
    by
        The columns to count by; any subset of the event columns.

    Returns
    -------
    pl.DataFrame
        ``bucket`` (Datetime, the bucket's start), the ``by`` columns, ``level`` (the
        highest level in the group) and ``count`` (UInt32), sorted by ``bucket``. Empty
        buckets have no row.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from timeline.schema import EVENT_SCHEMA
    >>> rows = {"ts": [datetime(2023, 3, 14, 18, m, tzinfo=UTC) for m in (0, 1, 7)],
    ...         "source": ["kube-proxy"] * 3, "host": ["n1", "n2", "n1"],
    ...         "component": ["kube-proxy"] * 3, "level": ["error"] * 3, "kind": ["log"] * 3,
    ...         "message": ["Sync failed"] * 3, "template": ["Sync failed"] * 3,
    ...         "attrs": ["{}"] * 3, "file": ["kp.log"] * 3, "line": [1, 2, 3]}
    >>> frame = pl.DataFrame(rows, schema=EVENT_SCHEMA)
    >>> signature_counts(frame, bucket="5m", by=["template"])["count"].to_list()
    [2, 1]
    """
    return (
        problem_rows(frame)
        .group_by(pl.col("ts").dt.truncate(every(bucket)).alias("bucket"), *by)
        .agg(level=pl.col("level").max(), count=pl.len().cast(pl.UInt32))
        .sort("bucket", *by, nulls_last=True)
        .collect()
    )


def source_starts(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """When each source's rows begin: before it, the data says nothing of that source,
    so its series are not known to be zero there (a broker's log that begins hours after
    a journal's boot lines has no quiet stretch before its first line).

    Returns
    -------
    pl.DataFrame
        ``source`` and ``covered_from`` (Datetime UTC, its earliest row of any level).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> frame = pl.DataFrame({"source": ["journal", "rabbitmq", "rabbitmq"],
    ...     "ts": [datetime(2024, 6, 3, tzinfo=UTC), datetime(2024, 6, 18, 6, tzinfo=UTC),
    ...            datetime(2024, 6, 18, 7, tzinfo=UTC)]})
    >>> source_starts(frame).filter(source="rabbitmq")["covered_from"].dt.hour().to_list()
    [6]
    """
    return (
        frame.lazy()
        .filter(pl.col("ts").is_not_null())
        .group_by("source")
        .agg(covered_from=pl.col("ts").min())
        .sort("source")
        .collect()
    )


def jobs(frame: pl.DataFrame | pl.LazyFrame, *, pods: pl.DataFrame | None = None) -> pl.DataFrame:
    """The CI job rows with their ``attrs`` read into columns.

    Parameters
    ----------
    frame
        An event frame.
    pods
        :func:`timeline.reading.pods.pod_nodes` of the frame, when known: a job whose
        runner is a pod it places on a node (a self-hosted runner) ran on that node.

    Returns
    -------
    pl.DataFrame
        ``ts``, ``source``, ``host``, ``file``, ``line`` and the fields of ``JOB_FIELDS``;
        ``queued`` is the time the job was queued (the row's ``ts``, else ``queued_at``):
        the moment a user started to wait. ``executor`` is ``"unknown"`` where the job names none.
        ``host`` is the node the job ran on where the data ties it to one (its row's host,
        else its runner's node), else null: a runner is no host of its own.
    """
    parsed = pl.col("attrs").str.json_decode(pl.Struct(JOB_FIELDS))
    on_node = node_of_pod(pl.col("runner_name"), pods if pods is not None else pl.DataFrame())
    return (
        frame.lazy()
        .filter(pl.col("kind") == "job")
        .select("ts", "source", "host", "file", "line", parsed.alias("_job"))
        .unnest("_job")
        .with_columns(host=pl.coalesce("host", on_node))
        .with_columns(
            queued=pl.coalesce(
                pl.col("ts"),
                pl.col("queued_at").str.to_datetime(time_unit="us", time_zone="UTC", strict=False),
            ),
            executor=pl.col("executor").fill_null("unknown"),
            status=pl.col("status").fill_null("other"),
        )
        .filter(pl.col("queued").is_not_null())
        .sort("queued")
        .collect()
    )


def job_rates(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    bucket: str | timedelta,
    by: tuple[str, ...] | list[str] = ("source", "executor"),
) -> pl.DataFrame:
    """CI jobs per bucket of queue time and executor: how long they waited, how many failed.

    Returns
    -------
    pl.DataFrame
        ``bucket``, the ``by`` columns, ``jobs``, ``median_queue_delay_s``,
        ``p95_queue_delay_s``, ``failed``, ``cancelled``, ``failure_rate`` and
        ``cancel_rate`` (shares of the bucket's jobs).
    """
    table = jobs(frame)
    return job_buckets(table, bucket=bucket, by=by)


def job_buckets(
    table: pl.DataFrame,
    *,
    bucket: str | timedelta,
    by: tuple[str, ...] | list[str],
    period: str | timedelta | None = None,
) -> pl.DataFrame:
    """:func:`job_rates` of a :func:`jobs` table already made. With ``period`` longer
    than the bucket, each bucket holds the jobs queued in the ``period`` that ends with
    it (a trailing window)."""
    delay = pl.col("queue_delay_s")
    width = to_timedelta(bucket)
    span = max(to_timedelta(period), width) if period is not None else width
    if span == width:
        grouped = table.lazy().group_by(
            pl.col("queued").dt.truncate(every(width)).alias("bucket"), *by
        )
    else:
        grouped = (
            table.lazy()
            .sort("queued")
            .group_by_dynamic(
                "queued",
                every=every(width),
                period=every(span),
                offset=f"-{every(span - width)}",
                label="right",
                group_by=list(by),
            )
        )
    return (
        grouped.agg(
            jobs=pl.len().cast(pl.UInt32),
            median_queue_delay_s=delay.median(),
            p95_queue_delay_s=delay.quantile(0.95, interpolation="linear"),
            failed=(pl.col("status") == "failed").sum().cast(pl.UInt32),
            cancelled=(pl.col("status") == "cancelled").sum().cast(pl.UInt32),
        )
        .rename({"queued": "bucket"}, strict=False)
        .with_columns(
            bucket=pl.col("bucket") - (width if span != width else timedelta(0)),
            failure_rate=pl.col("failed") / pl.col("jobs"),
            cancel_rate=pl.col("cancelled") / pl.col("jobs"),
        )
        .sort("bucket", *by)
        .collect()
    )


SERIES_SCHEMA: dict[str, pl.DataType] = {
    "series": pl.String(),
    "source": pl.String(),
    "signature": pl.String(),
    "metric": pl.String(),
    "level": pl.String(),
    "bucket": pl.Datetime("us", "UTC"),
    "value": pl.Float64(),
    "rows": pl.UInt32(),
}


def log_series(counts: pl.DataFrame) -> pl.DataFrame:
    """One count series per signature (``source`` + ``template``), hosts added together.

    Parameters
    ----------
    counts
        The output of :func:`signature_counts` (with at least ``source`` and ``template``).

    Returns
    -------
    pl.DataFrame
        The series frame (``SERIES_SCHEMA``): ``metric`` is ``"errors"`` (error or
        critical) or ``"warnings"``; ``value`` and ``rows`` are the count. Buckets with no
        rows are absent; :func:`timeline.analysis.spikes.flag_buckets` fills them with zeros.
    """
    return (
        counts.lazy()
        .group_by("bucket", "source", pl.col("template").alias("signature"))
        .agg(level=pl.col("level").max(), rows=pl.col("count").sum().cast(pl.UInt32))
        .with_columns(
            level=pl.col("level").cast(pl.String),
            metric=pl.when(pl.col("level").cast(pl.String).is_in(["error", "critical"]))
            .then(pl.lit("errors"))
            .otherwise(pl.lit("warnings")),
            value=pl.col("rows").cast(pl.Float64),
        )
        .with_columns(
            series=pl.format("{} {}: {}", "source", "metric", "signature"),
        )
        .select([pl.col(c).cast(t) for c, t in SERIES_SCHEMA.items()])
        .sort("series", "bucket")
        .collect()
    )


def job_signature(executor: str | pl.Expr = "executor") -> pl.Expr:
    """The signature of a CI series of an executor's jobs (``docker jobs``): what a job
    table's rows are joined to their series and spikes by."""
    return pl.format("{} jobs", executor)


#: How far back each bucket of a CI series looks (:func:`job_series`).
JOB_PERIOD = "15m"


def job_series(
    job_table: pl.DataFrame,
    *,
    bucket: str | timedelta,
    period: str | timedelta = JOB_PERIOD,
) -> pl.DataFrame:
    """CI series per source and executor: the p95 queue delay (seconds), and the number of
    failed and of cancelled jobs, over the trailing ``period`` at each bucket.

    CI jobs are sparse (a few machine jobs per bucket), so each bucket looks back over
    ``period`` (never less than the bucket): enough jobs to tell a delay from chance.

    Parameters
    ----------
    job_table
        The output of :func:`jobs`.
    period
        How far back each bucket looks.

    Returns
    -------
    pl.DataFrame
        The series frame (``SERIES_SCHEMA``); ``signature`` is ``"<executor> jobs"``,
        ``metric`` one of ``queue_delay_p95_s``, ``failed_jobs``, ``cancelled_jobs``;
        ``rows`` the number of jobs in the window.
    """
    stats = job_buckets(job_table, bucket=bucket, by=("source", "executor"), period=period)
    if stats.height == 0:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    long = pl.concat(
        [
            stats.select(
                "bucket",
                "source",
                "executor",
                pl.lit(metric).alias("metric"),
                pl.col(column).cast(pl.Float64).alias("value"),
                pl.col("jobs").alias("rows"),
            )
            for metric, column in (
                ("queue_delay_p95_s", "p95_queue_delay_s"),
                ("failed_jobs", "failed"),
                ("cancelled_jobs", "cancelled"),
            )
        ]
    )
    return (
        long.filter(pl.col("value").is_not_null())
        .with_columns(
            signature=job_signature(),
            level=pl.lit(None, pl.String),
        )
        .with_columns(series=pl.format("{} {}: {}", "source", "metric", "signature"))
        .select([pl.col(c).cast(t) for c, t in SERIES_SCHEMA.items()])
        .sort("series", "bucket")
    )

"""Spikes: windows where a series departs from its own baseline.

The baseline of a bucket is the median of the same series over a trailing window (a day by
default) that ends before the bucket, so a spike never raises its own baseline and a long
incident (less than half the window) stays above it. The noise around the baseline is the
series' own spread (median minus lower quartile, over 0.6745: a robust standard deviation
that upward spikes in the window do not widen). A bucket is *hot* when its value is more
than ``z`` spreads above the baseline and, for counts, also more than ``z`` above it on
the square-root scale (``(sqrt(baseline) + z/2) ** 2``), where Poisson noise is the same
at every rate: a series that is usually zero needs a burst of five, one at ten a bucket
needs 27. A hot bucket also holds at least ``min_bucket``; hot buckets a short gap apart
form one spike, and a spike needs ``min_count`` rows in all. Delay series use a spread of
at least a quarter of the baseline and ``min_delay_s``; failed and cancelled CI jobs come
in bursts and need ``BURST_FACTOR`` times ``z``.

Each spike keeps what a reviewer needs to check it: start, peak and end, peak against
baseline, the rows behind it, the hosts and components, a few ``file:line`` examples,
whether its signature was seen before, and the *precursor*: an unbroken trickle of the
same signature that started well before the spike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from timeline.analysis.rates import (
    JOB_PERIOD,
    SERIES_SCHEMA,
    every,
    job_signature,
    jobs,
    problem_rows,
    to_timedelta,
)

__all__ = [
    "LEVEL_METRICS",
    "describe_spikes",
    "find_spikes",
    "flag_buckets",
    "precursors",
]

#: Only a trickle of these levels is a precursor: warnings are too common to tell.
PRECURSOR_LEVELS = ("error", "critical")
#: Metrics whose value is a level (seconds of delay), not a count of rows.
LEVEL_METRICS = ("queue_delay_p95_s",)
#: The CI series' metrics (:func:`timeline.analysis.rates.job_series`).
JOB_METRICS = ("queue_delay_p95_s", "failed_jobs", "cancelled_jobs")
#: Counts that come in bursts (a workflow's jobs fail or are cancelled together), so they
#: need ``BURST_FACTOR`` times the usual departure.
BURSTY_METRICS = ("failed_jobs", "cancelled_jobs")
BURST_FACTOR = 1.5
#: Failed CI jobs are also judged by their share of the window's finished jobs
#: (:func:`_failing_share`): a window is hot when at least this many jobs failed...
MIN_FAILED_JOBS = 3
#: ... against the share of the trailing day's jobs that failed, never taken as less
#: than this (a team with no failure yesterday still has one now and then).
USUAL_FAILED_SHARE_FLOOR = 0.05
#: ... or where the last this many periods of jobs (an hour of fifteen-minute windows),
#: taken together, failed that far above the usual share: a team running three jobs a
#: quarter hour, each failing, never fails enough of one window's.
FAILING_STRETCH_PERIODS = 4
#: The usual share is the trailing window's where it holds this many jobs, else the
#: whole series': the share of a few jobs is chance.
USUAL_SHARE_JOBS = 20
#: A stretch is hot back to where this share of each window's jobs failed.
MOSTLY_FAILED = 0.5
#: Metrics whose every bucket already holds the jobs of the period it ends
#: (:func:`timeline.analysis.rates.job_series`, ``JOB_PERIOD``, never shorter than
#: :data:`SUSTAIN`): summing their buckets would count one job once for every bucket whose
#: window holds it, so they are never summed over :data:`SUSTAIN`.
WINDOWED_METRICS = JOB_METRICS
#: A robust standard deviation is the distance from the lower quartile to the median over
#: this; the lower half of the window only, so that a long spike inside the window (up to
#: half of it) does not widen the noise and end itself.
HALF_IQR_TO_SD = 0.6745
#: Counts in buckets finer than this are also summed over this long: a rise of two rows
#: a minute is plain over five minutes and lost in the noise of one-minute buckets, so
#: what is found does not hang on the bucket the span chose.
SUSTAIN = timedelta(minutes=5)

SPIKE_SCHEMA: dict[str, pl.DataType] = {
    "spike_id": pl.UInt32(),
    "series": pl.String(),
    "source": pl.String(),
    "signature": pl.String(),
    "metric": pl.String(),
    "level": pl.String(),
    "start": pl.Datetime("us", "UTC"),
    "peak": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "peak_value": pl.Float64(),
    "baseline": pl.Float64(),
    "ratio": pl.Float64(),
    "count": pl.Float64(),
    "hot_buckets": pl.UInt32(),
    "peak_jobs": pl.UInt32(),
    "usual_share": pl.Float64(),
}


def flag_buckets(
    series: pl.DataFrame,
    *,
    bucket: str | timedelta,
    window: str | timedelta = "24h",
    z: float = 4.0,
    min_bucket: float = 3,
    min_count: float = 10,
    min_delay_s: float = 60.0,
    start: datetime | None = None,
    end: datetime | None = None,
    covered_from: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every bucket of every series that could spike, with its baseline and whether it is hot.

    Parameters
    ----------
    series
        A series frame (:func:`timeline.analysis.rates.log_series`,
        :func:`timeline.analysis.rates.job_series`).
    bucket
        The bucket width the series were counted with.
    window
        How far back the baseline looks.
    z
        How far above the baseline a hot bucket is, in robust standard deviations (and
        for counts, on the square-root scale too).
    min_bucket
        The least count a hot bucket of a count series holds.
    min_count
        A count series that never holds ``min_count`` rows in all is left out.
    min_delay_s
        The least value of a hot bucket of a delay series (seconds).
    start, end
        The span to fill with zero buckets; the series' own span if not given.
    covered_from
        ``source`` and ``covered_from`` (:func:`timeline.analysis.rates.source_starts`):
        a source's series are filled with zeros from its first row only, so that the
        first buckets of a log that begins late are compared with its own rates, not
        with a silence nobody recorded.

    Returns
    -------
    pl.DataFrame
        The series columns plus ``baseline``, ``noise`` (the threshold's distance from
        the baseline over ``z``), ``threshold`` (Float64) and ``hot`` (Boolean). Count
        series have a row for every bucket (zeros filled in); delay series only for
        buckets that had jobs.
    """
    width = to_timedelta(bucket)
    if series.height == 0:
        return _flagged_empty()
    is_level = pl.col("metric").is_in(LEVEL_METRICS)
    counts = series.filter(~is_level)
    levels = series.filter(is_level)
    keep = (
        counts.sort("bucket")
        .group_by("series")
        .agg(
            top=_top(pl.col("value"), width),
            total=pl.col("value").sum(),
            metric=pl.col("metric").first(),
        )
        .filter(
            (pl.col("top") >= min_bucket)
            & ((pl.col("total") >= min_count) | (pl.col("metric") == "failed_jobs"))
        )
        .get_column("series")
    )
    counts = counts.filter(pl.col("series").is_in(keep.implode()))
    counts = _zero_filled(counts, width=width, start=start, end=end, covered_from=covered_from)
    frames = [f for f in (counts, levels) if f.height]
    if not frames:
        return _flagged_empty()
    full = pl.concat(frames).sort("series", "bucket")
    window_td = to_timedelta(window)
    min_samples = max(3, min(12, int(window_td / width) // 4))
    trailing = {
        "by": "bucket",
        "window_size": every(window_td),
        "closed": "left",
        "min_samples": min_samples,
    }
    value = pl.col("value")
    level_metric = pl.col("metric").is_in(LEVEL_METRICS)
    flagged = full.with_columns(
        _median=_trailing_quantile(value, 0.5, trailing),
        _q25=_trailing_quantile(value, 0.25, trailing),
        _overall=value.median().over("series"),
        _overall_q25=value.quantile(0.25, "linear").over("series"),
    )
    baseline = pl.col("baseline")
    # counts: z on the square-root scale, where Poisson noise is the same at every rate
    zc = pl.when(pl.col("metric").is_in(BURSTY_METRICS)).then(z * BURST_FACTOR).otherwise(z)
    relative = pl.max_horizontal(baseline * 0.25, pl.lit(min_delay_s / 4))
    threshold = (
        pl.when(level_metric)
        .then(baseline + z * pl.max_horizontal(_spread("_median", "_q25"), relative))
        .otherwise(_count_threshold(baseline, _spread("_median", "_q25"), zc))
    )
    floor = pl.when(level_metric).then(pl.lit(min_delay_s)).otherwise(pl.lit(float(min_bucket)))
    flagged = (
        flagged.with_columns(baseline=pl.coalesce("_median", "_overall"))
        .with_columns(threshold=threshold)
        .with_columns(
            noise=(pl.col("threshold") - baseline) / z,
            hot=(value > pl.col("threshold")) & (value >= floor),
        )
    )
    sustain = round(SUSTAIN / width)
    if sustain > 1:
        flagged = _sustained(flagged, sustain, trailing, zc, float(min_bucket))
    flagged = _failing_share(flagged, trailing, z, width)
    return flagged.select(*full.columns, "baseline", "noise", "threshold", "hot", "usual_share")


def _failing_share(
    flagged: pl.DataFrame, trailing: dict, z: float, width: timedelta
) -> pl.DataFrame:
    """Failed CI jobs are hot also where the share of the window's jobs that failed is
    far above the share that usually fails: a small team running a few jobs a quarter
    hour never fails enough of them for the count alone, though all of them fail.

    ``usual_share`` is the failed jobs over the jobs of the trailing window that ends
    where the stretch below begins (every bucket's window counts a job as often in both,
    so the share is the jobs'; the failures judged are not part of it) where it holds
    :data:`USUAL_SHARE_JOBS`, else the whole series', and at least
    :data:`USUAL_FAILED_SHARE_FLOOR`. A bucket whose window holds ``n`` jobs of which
    ``k`` (at least :data:`MIN_FAILED_JOBS`) failed is hot when the chance of that many
    failing at the usual share is below ``exp(-z**2 * BURST_FACTOR / 2)`` by the Chernoff
    bound, ``n * KL(k/n || usual)`` (failures come in bursts, as their counts do, and a
    window is looked at once a bucket): with a usual 5% and ``z`` 4, 5 of 6, 6 of 9 or
    7 of 12 failing; with a usual 10%, 7 of 8; with a usual 30%, 10 of 10.

    The same test is also made on the jobs of the last :data:`FAILING_STRETCH_PERIODS`
    windows together (windows that do not overlap, an hour's): three jobs a quarter
    hour, every one failing, are too few for one window (3 of 3), not for an hour's (12
    of 12). Such a stretch is hot in the windows in which at least
    :data:`MOSTLY_FAILED` of the jobs failed, from the first of them, up to an hour before
    it was judged (not from a failure that came alone before it), to the last: the usual
    failures after it do not prolong it, and a window with no jobs inside it does not
    split it. Other series get a null ``usual_share`` and are
    left as they are."""
    failed = pl.col("metric") == "failed_jobs"
    value, jobs = pl.col("value"), pl.col("rows").cast(pl.Float64)
    window = {k: v for k, v in trailing.items() if k != "min_samples"}
    # the windows of the stretch do not overlap: a period's buckets apart
    apart = max(1, round(max(to_timedelta(JOB_PERIOD), width) / width))
    stretch = range(FAILING_STRETCH_PERIODS)
    # the usual share is the trailing window's before the stretch: the failures judged
    # must not make up their own baseline
    before = FAILING_STRETCH_PERIODS * apart
    past_failed = value.rolling_sum_by(**window).shift(before).over("series")
    past_jobs = jobs.rolling_sum_by(**window).shift(before).over("series")
    # a bucket's window holds a job in ``apart`` buckets: ``past_jobs / apart`` are jobs
    share = pl.when(past_jobs >= USUAL_SHARE_JOBS * apart).then(past_failed / past_jobs)
    overall = value.sum().over("series") / jobs.sum().over("series")
    usual = pl.max_horizontal(pl.coalesce(share, overall), pl.lit(USUAL_FAILED_SHARE_FLOOR))
    stretch_failed = pl.sum_horizontal(
        value.shift(i * apart).over("series").fill_null(0.0) for i in stretch
    )
    stretch_jobs = pl.sum_horizontal(
        jobs.shift(i * apart).over("series").fill_null(0.0) for i in stretch
    )
    # a stretch is hot over the windows in which most jobs failed, back to where they began
    mostly = (value > 0) & (value >= MOSTLY_FAILED * jobs)
    stretch_hot = (mostly & _far_above(stretch_failed, stretch_jobs, z)).fill_null(False)
    ahead = (
        pl.col("_stretch_hot").reverse().rolling_max(before + 1, min_samples=1).reverse()
    ).over("series", "_run")
    # a window with no jobs at all says nothing either way: it ends no stretch, and is
    # inside one once a window of it has been
    empty = jobs.fill_null(0.0) == 0
    inside = pl.col("_mostly").cum_max().over("series", "_run")
    hot_share = _far_above(value, jobs, z).fill_null(False) | (
        (pl.col("_mostly") | (empty & inside)) & ahead
    )
    return (
        flagged.with_columns(usual_share=pl.when(failed).then(usual))
        .with_columns(
            _stretch_hot=stretch_hot,
            _mostly=mostly.fill_null(False),
            _run=(~mostly & ~empty).cum_sum().over("series"),
        )
        .with_columns(hot=pl.col("hot") | (failed & hot_share))
        .drop("_stretch_hot", "_mostly", "_run")
    )


def _far_above(failed: pl.Expr, jobs: pl.Expr, z: float) -> pl.Expr:
    """Whether ``failed`` of ``jobs`` (at least :data:`MIN_FAILED_JOBS`) is a share far
    above ``usual_share`` by the Chernoff bound (:func:`_failing_share`)."""
    p, q = pl.col("usual_share"), failed / jobs
    # KL(q || p) of the failed share q against the usual p; (1 - q) ln(...) is 0 at q = 1
    rest = pl.when(q < 1).then((1 - q) * ((1 - q) / (1 - p)).log()).otherwise(0.0)
    surprise = jobs * (q * (q / p).log() + rest)
    return (failed >= MIN_FAILED_JOBS) & (q > p) & (surprise > z * z * BURST_FACTOR / 2)


def _top(value: pl.Expr, width: timedelta) -> pl.Expr:
    """The most a bucket of a count series holds, or where buckets are finer than
    :data:`SUSTAIN`, the most any stretch that long holds: a series that never reaches
    ``min_bucket`` there cannot be hot (:func:`_sustained`), and one that does may be.
    A CI series' bucket already spans its period (:data:`WINDOWED_METRICS`)."""
    if width >= SUSTAIN:
        return value.max()
    summed = value.rolling_sum_by("bucket", window_size=every(SUSTAIN)).max()
    windowed = pl.col("metric").first().is_in(WINDOWED_METRICS)
    return pl.when(windowed).then(value.max()).otherwise(summed)


def _trailing_quantile(column: pl.Expr, quantile: float, trailing: dict) -> pl.Expr:
    """A quantile of ``column`` over each series' trailing window (``trailing``: the
    options of ``rolling_quantile_by``)."""
    return column.rolling_quantile_by(**trailing, quantile=quantile, interpolation="linear").over(
        "series"
    )


def _spread(median: str, q25: str) -> pl.Expr:
    """A robust standard deviation from the trailing window's median and lower quartile;
    before the window has enough buckets, the whole series stands in for it."""
    return (
        pl.coalesce(pl.col(median) - pl.col(q25), pl.col("_overall") - pl.col("_overall_q25"))
        / HALF_IQR_TO_SD
    )


def _count_threshold(baseline: pl.Expr, spread: pl.Expr, zc: pl.Expr) -> pl.Expr:
    return pl.max_horizontal(baseline + zc * spread, (baseline.sqrt() + zc / 2) ** 2)


def _sustained(
    flagged: pl.DataFrame, buckets: int, trailing: dict, zc: pl.Expr, floor: float
) -> pl.DataFrame:
    """Count buckets are hot also where the sum of the last ``buckets`` of them
    (:data:`SUSTAIN`) is as far above that sum's own trailing baseline as a hot bucket is
    above its own: a steady rise too thin for any one bucket.

    Such a stretch is hot from its first bucket above its own baseline to its last, quiet
    buckets between them too: a trickle of a few rows a minute leaves most buckets of
    ten seconds empty, and is one spike, not many too small to count. It starts with the
    rise's first rows, not where the sum first cleared the bar, and ends with its last,
    not with the usual trickle that follows it.

    CI series are left as they are (:data:`WINDOWED_METRICS`): one failed job holds up
    every bucket of the fifteen minutes after it, and those summed would make it a burst
    and the start of any spike that follows within them."""
    summed = pl.col("value").rolling_sum(buckets, min_samples=1).over("series")
    counts = ~pl.col("metric").is_in(WINDOWED_METRICS)
    with_sums = flagged.with_columns(_sum=pl.when(counts).then(summed)).with_columns(
        _s_median=_trailing_quantile(pl.col("_sum"), 0.5, trailing),
        _s_q25=_trailing_quantile(pl.col("_sum"), 0.25, trailing),
        _s_overall=pl.col("_sum").median().over("series"),
    )
    base = pl.coalesce("_s_median", "_s_overall")
    spread = pl.coalesce(pl.col("_s_median") - pl.col("_s_q25"), pl.lit(0.0)) / HALF_IQR_TO_SD
    over = (pl.col("_sum") > _count_threshold(base, spread, zc)) & (pl.col("_sum") >= floor)
    # inside a sum that is over: one ending here or up to buckets - 1 buckets later
    inside = over.fill_null(False).reverse().rolling_max(buckets, min_samples=1).reverse()
    began = pl.col("_inside") & ~pl.col("_inside").shift(1, fill_value=False)
    above = (pl.col("_inside") & (pl.col("value") > pl.col("baseline"))).cast(pl.UInt32)
    within = (above.cum_sum() > 0) & (above.cum_sum(reverse=True) > 0)
    return (
        with_sums.with_columns(_inside=(counts & inside.over("series")).fill_null(False))
        .with_columns(_stretch=began.cum_sum().over("series"))
        .with_columns(hot=pl.col("hot") | (pl.col("_inside") & within.over("series", "_stretch")))
    )


def _flagged_empty() -> pl.DataFrame:
    schema = dict(SERIES_SCHEMA)
    schema.update(
        baseline=pl.Float64,
        noise=pl.Float64,
        threshold=pl.Float64,
        hot=pl.Boolean,
        usual_share=pl.Float64,
    )
    return pl.DataFrame(schema=schema)


def _zero_filled(
    counts: pl.DataFrame,
    *,
    width: timedelta,
    start: datetime | None,
    end: datetime | None,
    covered_from: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every bucket from ``start`` to ``end`` for each count series, empty ones as 0; a
    series of a source in ``covered_from`` starts at the bucket of the source's first row."""
    if counts.height == 0:
        return counts
    step = every(width)
    lo = counts["bucket"].min() if start is None else _truncated(start, step)
    hi = counts["bucket"].max() if end is None else _truncated(end, step)
    lo, hi = min(lo, counts["bucket"].min()), max(hi, counts["bucket"].max())
    grid = pl.DataFrame(
        {"bucket": pl.datetime_range(lo, hi, width, eager=True, time_zone="UTC")}
    ).with_columns(pl.col("bucket").cast(SERIES_SCHEMA["bucket"]))
    keys = counts.group_by("series").agg(
        pl.col("source").first(),
        pl.col("signature").first(),
        pl.col("metric").first(),
        pl.col("level").max(),
    )
    if covered_from is None:
        keys = keys.with_columns(_from=pl.lit(None, SERIES_SCHEMA["bucket"]))
    else:
        starts = covered_from.select(
            "source",
            _from=pl.col("covered_from").dt.truncate(step).cast(SERIES_SCHEMA["bucket"]),
        )
        keys = keys.join(starts, on="source", how="left")
    return (
        keys.join(grid, how="cross")
        .filter(pl.col("_from").is_null() | (pl.col("bucket") >= pl.col("_from")))
        .join(
            counts.select("series", "bucket", "value", "rows"), on=["series", "bucket"], how="left"
        )
        .with_columns(
            value=pl.col("value").fill_null(0.0),
            rows=pl.col("rows").fill_null(0),
        )
        .select(list(SERIES_SCHEMA))
    )


def _truncated(moment: datetime, step: str) -> datetime:
    """``moment`` (naive means UTC) cut down to the start of its bucket."""
    when = pl.lit(moment)
    when = (
        when.dt.replace_time_zone("UTC")
        if moment.tzinfo is None
        else when.dt.convert_time_zone("UTC")
    )
    return pl.select(when.dt.truncate(step)).item()


def find_spikes(
    flagged: pl.DataFrame,
    *,
    bucket: str | timedelta,
    gap_buckets: int = 2,
    min_count: float = 10,
    min_jobs: int = 5,
    job_table: pl.DataFrame | None = None,
    job_period: str | timedelta = JOB_PERIOD,
) -> pl.DataFrame:
    """Group hot buckets into spikes: hot buckets with at most ``gap_buckets`` other
    buckets between them (for delay series, other buckets that had jobs).

    Parameters
    ----------
    flagged
        The output of :func:`flag_buckets`.
    gap_buckets
        Quiet buckets allowed inside one spike.
    min_count
        The least rows (for a count series, its value summed) a spike holds.
    min_jobs
        The least jobs behind a delay spike.
    job_table, job_period
        The :func:`timeline.analysis.rates.jobs` the CI series were made from, and how far
        back each of their buckets looks: a CI spike's jobs are then counted once each
        (:func:`_counted_jobs`), not once for every bucket whose window holds them.

    Returns
    -------
    pl.DataFrame
        One row per spike (``SPIKE_SCHEMA``), sorted by ``start``: ``start`` is the first
        hot bucket, ``end`` the end of the last, ``peak`` the bucket with the highest
        value; ``baseline`` is the baseline of the first hot bucket, ``ratio`` the peak
        over the baseline (at least 1), ``count`` the rows (jobs for a delay series) in
        the window, ``hot_buckets`` how many buckets were over the threshold.
    """
    width = to_timedelta(bucket)
    # Steps are counted in rows: count series have a row for every bucket, delay series
    # only for buckets with jobs, where an empty bucket says nothing either way.
    hot = (
        flagged.sort("series", "bucket")
        .with_columns(_row=pl.int_range(pl.len()).over("series"))
        .filter(pl.col("hot"))
    )
    if hot.height == 0:
        return pl.DataFrame(schema=SPIKE_SCHEMA)
    step = pl.col("_row").diff().over("series")
    runs = hot.with_columns(_run=(step.is_null() | (step > gap_buckets + 1)).cum_sum())
    windows = runs.group_by("_run").agg(
        pl.col("series").first(),
        pl.col("source").first(),
        pl.col("signature").first(),
        pl.col("metric").first(),
        pl.col("level").first(),
        start=pl.col("bucket").min(),
        end=pl.col("bucket").max() + width,
        peak=pl.col("bucket").sort_by("value", descending=True).first(),
        peak_value=pl.col("value").max(),
        baseline=pl.col("baseline").sort_by("bucket").first(),
        hot_buckets=pl.len().cast(pl.UInt32),
        peak_jobs=pl.col("rows").sort_by("value", descending=True).first(),
        usual_share=pl.col("usual_share").sort_by("bucket").first(),
    )
    is_level = pl.col("metric").is_in(LEVEL_METRICS)
    totals = (
        windows.select("_run", "series", "start", "end")
        .join(flagged.select("series", "bucket", "value", "rows"), on="series")
        .filter((pl.col("bucket") >= pl.col("start")) & (pl.col("bucket") < pl.col("end")))
        .group_by("_run")
        .agg(_value=pl.col("value").sum(), _rows=pl.col("rows").sum())
    )
    spikes = windows.join(totals, on="_run").with_columns(
        count=pl.when(is_level).then(pl.col("_rows").cast(pl.Float64)).otherwise("_value"),
        ratio=pl.col("peak_value") / pl.max_horizontal(pl.col("baseline"), pl.lit(1.0)),
    )
    if job_table is not None:
        spikes = _counted_jobs(spikes, job_table, width=width, period=to_timedelta(job_period))
    spikes = (
        spikes.filter(
            pl.when(is_level)
            .then(pl.col("count") >= min_jobs)
            .when(pl.col("metric") == "failed_jobs")
            .then(pl.col("count") >= min(min_count, MIN_FAILED_JOBS))
            .otherwise(pl.col("count") >= min_count)
        )
        .sort("start", "series")
        .with_columns(spike_id=pl.int_range(pl.len(), dtype=pl.UInt32))
    )
    return spikes.select([pl.col(c).cast(t) for c, t in SPIKE_SCHEMA.items()])


def telling_job(delayed: pl.Expr | None = None) -> pl.Expr:
    """Whether a job (a row of :func:`timeline.analysis.rates.jobs` beside its spike's
    ``metric``) shows what its spike measures: it failed, it was cancelled, or for a
    delay, ``delayed`` holds (any job, if not given)."""
    return (
        pl.when(pl.col("metric") == "failed_jobs")
        .then(pl.col("status") == "failed")
        .when(pl.col("metric") == "cancelled_jobs")
        .then(pl.col("status") == "cancelled")
        .otherwise(pl.lit(True) if delayed is None else delayed)
    )


def _counted_jobs(
    spikes: pl.DataFrame, job_table: pl.DataFrame, *, width: timedelta, period: timedelta
) -> pl.DataFrame:
    """CI spikes with their jobs counted once each. A bucket of a CI series holds the
    jobs queued over the ``period`` that ends with it, so the buckets of a spike share
    their jobs, and their values summed count one failed job many times.

    A spike of failed or cancelled jobs starts with the first of them its first bucket's
    window holds (queued from ``period`` before that bucket's end), and ``count`` is the
    failed or cancelled jobs from then to its end. A delay spike keeps its start, and
    ``count`` is the jobs queued from its start to its end. Either way they are the jobs
    its examples come from (:func:`describe_spikes`). The look back stops where the
    series' spike before it ended, whose jobs are its own."""
    job = pl.col("metric").is_in(JOB_METRICS)
    if spikes.filter(job).height == 0:
        return spikes
    bursty = pl.col("metric").is_in(BURSTY_METRICS)
    telling = telling_job()
    queued = pl.col("queued")
    previous_end = pl.col("end").shift(1).over("series", order_by="start")
    looked_from = pl.max_horizontal(pl.col("start") - (max(period, width) - width), previous_end)
    inside = (
        spikes.filter(job)
        .with_columns(looked_from=looked_from)
        .select("_run", "source", "signature", "metric", "start", "end", "looked_from")
        .join(
            job_table.with_columns(signature=job_signature()),
            on=["source", "signature"],
        )
        .filter(
            (queued >= pl.when(bursty).then("looked_from").otherwise("start"))
            & (queued < pl.col("end"))
            & telling.fill_null(False)
        )
    )
    counted = inside.group_by("_run").agg(
        _jobs=pl.len(), _first=queued.min().dt.truncate(every(width))
    )
    recounted = (
        spikes.filter(job)
        .join(counted, on="_run", how="left")
        .with_columns(
            start=pl.when(bursty).then(pl.coalesce("_first", "start")).otherwise("start"),
            count=pl.col("_jobs").fill_null(0).cast(pl.Float64),
        )
        .select(spikes.columns)
    )
    return pl.concat([spikes.filter(~job), recounted], how="vertical")


def describe_spikes(
    spikes: pl.DataFrame,
    frame: pl.DataFrame,
    *,
    job_table: pl.DataFrame | None = None,
    examples: int = 5,
    quiet: str | timedelta = "6h",
    min_lead: str | timedelta = "1h",
) -> pl.DataFrame:
    """Add to each spike the rows behind it: hosts, components, examples, novelty, precursor.

    Parameters
    ----------
    spikes
        The output of :func:`find_spikes`.
    frame
        The event frame the series came from.
    job_table
        :func:`timeline.analysis.rates.jobs` of ``frame`` (computed if not given).
    examples
        How many ``file:line`` examples to keep per spike (one host at a time first).
    quiet, min_lead
        See :func:`precursors`.

    Returns
    -------
    pl.DataFrame
        ``spikes`` plus ``hosts`` and ``components`` (sorted lists), ``n_hosts``,
        ``examples`` (``file:line`` strings), ``first_seen_at`` (first warning or error of
        the signature in the whole frame; null for CI series), ``new_signature`` (no row of
        it before the spike), and the :func:`precursors` columns.
    """
    if spikes.height == 0:
        return spikes.with_columns(
            hosts=pl.lit([], pl.List(pl.String)),
            components=pl.lit([], pl.List(pl.String)),
            n_hosts=pl.lit(0, pl.UInt32),
            examples=pl.lit([], pl.List(pl.String)),
            first_seen_at=pl.lit(None, SERIES_SCHEMA["bucket"]),
            new_signature=pl.lit(False),
            precursor_start=pl.lit(None, SERIES_SCHEMA["bucket"]),
            precursor_rows=pl.lit(0, pl.UInt32),
            precursor_hosts=pl.lit([], pl.List(pl.String)),
        )
    is_job = pl.col("metric").is_in(JOB_METRICS)
    log_spikes = spikes.filter(~is_job)
    job_spikes = spikes.filter(is_job)
    described = [
        _describe_log_spikes(log_spikes, frame, examples=examples),
        _describe_job_spikes(
            job_spikes,
            job_table if job_table is not None else jobs(frame),
            examples=examples,
        ),
    ]
    out = pl.concat(described, how="vertical").sort("spike_id")
    data_start = frame.select(pl.col("ts").min()).item()
    out = out.with_columns(
        new_signature=pl.col("first_seen_at").is_not_null()
        & (pl.col("first_seen_at") >= pl.col("start"))
        & (pl.lit(data_start, SERIES_SCHEMA["bucket"]) < pl.col("start"))
    )
    return out.join(
        precursors(out, frame, quiet=quiet, min_lead=min_lead), on="spike_id", how="left"
    ).with_columns(
        precursor_rows=pl.col("precursor_rows").fill_null(0),
        precursor_hosts=pl.col("precursor_hosts").fill_null([]),
    )


def _file_line() -> pl.Expr:
    return pl.format("{}:{}", pl.col("file").fill_null("?"), pl.col("line").fill_null(0))


def _describe_log_spikes(spikes: pl.DataFrame, frame: pl.DataFrame, *, examples: int):
    keys = spikes.select("source", pl.col("signature").alias("template")).unique()
    rows = (
        problem_rows(frame)
        .join(keys.lazy(), on=["source", "template"], how="semi")
        .select("ts", "source", "template", "host", "component", "file", "line")
        .collect()
    )
    first_seen = rows.group_by("source", "template").agg(first_seen_at=pl.col("ts").min())
    # spikes of one series never overlap: each row belongs to the last spike begun before it
    windows = spikes.select(
        "spike_id", "source", pl.col("signature").alias("template"), "start", "end"
    ).sort("start")
    inside = (
        rows.sort("ts")
        .join_asof(
            windows,
            left_on="ts",
            right_on="start",
            by=["source", "template"],
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("spike_id").is_not_null() & (pl.col("ts") < pl.col("end")))
        .sort("spike_id", "ts", "file", "line")  # the same examples on every run
    )
    per_host_first = inside.unique(["spike_id", "host"], keep="first", maintain_order=True)
    sample = per_host_first.group_by("spike_id", maintain_order=True).agg(
        examples=_file_line().head(examples)
    )
    described = inside.group_by("spike_id").agg(
        hosts=pl.col("host").drop_nulls().unique().sort(),
        components=pl.col("component").drop_nulls().unique().sort(),
    )
    return (
        spikes.join(described, on="spike_id", how="left")
        .join(sample, on="spike_id", how="left")
        .join(
            first_seen,
            left_on=["source", "signature"],
            right_on=["source", "template"],
            how="left",
        )
        .with_columns(
            hosts=pl.col("hosts").fill_null([]),
            components=pl.col("components").fill_null([]),
            examples=pl.col("examples").fill_null([]),
            n_hosts=pl.col("hosts").list.len().fill_null(0).cast(pl.UInt32),
        )
        .select(*spikes.columns, "hosts", "components", "n_hosts", "examples", "first_seen_at")
    )


def _describe_job_spikes(spikes: pl.DataFrame, job_table: pl.DataFrame, *, examples: int):
    schema_tail = {
        "hosts": pl.List(pl.String),
        "components": pl.List(pl.String),
        "n_hosts": pl.UInt32,
        "examples": pl.List(pl.String),
        "first_seen_at": SERIES_SCHEMA["bucket"],
    }
    if spikes.height == 0:
        return spikes.with_columns(
            [pl.lit(None, dtype).alias(name) for name, dtype in schema_tail.items()]
        ).with_columns(
            hosts=pl.lit([], pl.List(pl.String)),
            components=pl.lit([], pl.List(pl.String)),
            examples=pl.lit([], pl.List(pl.String)),
            n_hosts=pl.lit(0, pl.UInt32),
        )
    table = job_table.with_columns(signature=job_signature())
    inside = (
        spikes.select("spike_id", "source", "signature", "metric", "start", "end")
        .join(table, on=["source", "signature"])
        .filter((pl.col("queued") >= pl.col("start")) & (pl.col("queued") < pl.col("end")))
    )
    telling = telling_job()
    sample = (
        inside.filter(telling)
        .sort(
            "spike_id",
            pl.col("queue_delay_s").fill_null(0.0),
            "ts",
            "file",
            "line",
            descending=[False, True, False, False, False],
        )
        .group_by("spike_id", maintain_order=True)
        .agg(examples=_file_line().head(examples))
    )
    described = inside.group_by("spike_id").agg(
        hosts=pl.col("host").drop_nulls().unique().sort(),
        components=pl.col("name").drop_nulls().unique().sort().head(10),
    )
    return (
        spikes.join(described, on="spike_id", how="left")
        .join(sample, on="spike_id", how="left")
        .with_columns(
            hosts=pl.col("hosts").fill_null([]),
            components=pl.col("components").fill_null([]),
            examples=pl.col("examples").fill_null([]),
            n_hosts=pl.col("hosts").list.len().fill_null(0).cast(pl.UInt32),
            first_seen_at=pl.lit(None, SERIES_SCHEMA["bucket"]),
        )
        .select(*spikes.columns, *schema_tail)
    )


def precursors(
    spikes: pl.DataFrame,
    frame: pl.DataFrame,
    *,
    quiet: str | timedelta = "6h",
    min_lead: str | timedelta = "1h",
) -> pl.DataFrame:
    """The trickle before each log spike: rows of its signature that lead up to it unbroken.

    The rows of a signature form *runs*: a run ends where the signature falls silent for
    longer than ``quiet``. The run that holds a spike's first row started the trickle;
    when it started more than ``min_lead`` before the spike, it is the spike's precursor.
    A run that starts within ``quiet`` of the first row of the frame has no known start
    (the logs may begin in the middle of it) and is not a precursor. Only error
    signatures (``PRECURSOR_LEVELS``) have precursors.

    Returns
    -------
    pl.DataFrame
        ``spike_id``, ``precursor_start`` (first row of the trickle, or null),
        ``precursor_rows`` (rows of the signature in the trickle before the spike) and
        ``precursor_hosts`` (the hosts they came from).
    """
    quiet_td, lead_td = to_timedelta(quiet), to_timedelta(min_lead)
    schema = {
        "spike_id": pl.UInt32,
        "precursor_start": SERIES_SCHEMA["bucket"],
        "precursor_rows": pl.UInt32,
        "precursor_hosts": pl.List(pl.String),
    }
    logs = spikes.filter(
        pl.col("first_seen_at").is_not_null() & pl.col("level").is_in(PRECURSOR_LEVELS)
    )
    if logs.height == 0:
        return pl.DataFrame(schema=schema)
    data_start = frame.select(pl.col("ts").min()).item()
    # each signature by a number: a fleet's rows are millions, and their names long
    named = ["source", "template"]
    keys = (
        logs.select("source", pl.col("signature").alias("template"))
        .unique()
        .with_row_index("_series")
    )
    series = ["_series"]
    gap = pl.col("ts").diff().over(series)
    rows = (
        problem_rows(frame)
        .join(keys.lazy(), on=named)
        .select("ts", "_series", "host")
        .sort("ts")
        .with_columns(_break=(gap.is_null() | (gap > quiet_td)).cast(pl.UInt32))
        .with_columns(
            _run=pl.col("_break").cum_sum().over(series),
            _idx=pl.int_range(pl.len()).over(series),
        )
        .with_columns(
            run_start=pl.col("ts").min().over(*series, "_run"),
            _run_idx=pl.col("_idx").min().over(*series, "_run"),
        )
        .collect()
    )
    at_start = (
        logs.select("spike_id", "source", pl.col("signature").alias("template"), "start")
        .join(keys, on=named)
        .sort("start")
        .join_asof(
            rows.select("ts", "_series", "_run", "run_start", "_idx", "_run_idx"),
            left_on="start",
            right_on="ts",
            by=series,
            strategy="forward",
            check_sortedness=False,
        )
        .filter(
            pl.col("run_start").is_not_null()
            & (pl.col("run_start") < pl.col("start") - lead_td)
            & (pl.col("run_start") > pl.lit(data_start, SERIES_SCHEMA["bucket"]) + quiet_td)
        )
        # the rows of the run before the spike's first row: an index difference
        .with_columns(precursor_rows=pl.col("_idx") - pl.col("_run_idx"))
    )
    # a host is in the trickle if its first row in the run came before the spike
    first_per_host = rows.group_by(*series, "_run", "host").agg(_first=pl.col("ts").min())
    hosts = (
        at_start.select("spike_id", *series, "_run", "start")
        .join(first_per_host, on=[*series, "_run"])
        .filter(pl.col("_first") < pl.col("start"))
        .group_by("spike_id")
        .agg(precursor_hosts=pl.col("host").drop_nulls().unique().sort())
    )
    trickle = at_start.select(
        "spike_id", precursor_start="run_start", precursor_rows="precursor_rows"
    ).join(hosts, on="spike_id", how="left")
    return trickle.select([pl.col(c).cast(t) for c, t in schema.items()])

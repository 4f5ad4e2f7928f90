"""Incidents: spikes that overlap or follow closely, merged, with their phases and order.

Log spikes (warnings and errors) that overlap or follow each other within ``gap`` form
one incident, whatever their source. CI spikes (queue delays, failed or cancelled jobs)
are what users feel, not causes: each joins the incident it starts in (or just after) and
never joins two incidents into one; CI spikes with no incident around them form their own.

Phases come from the member series' *excess* over their baselines, each as a share of
its own largest excess in the incident. Onset is the first hot bucket at a tenth of it
(a trickle that rises before then is the incident's ``start``, not its onset); the
intensity of a bucket adds up, per source, the largest share; escalation is the first
bucket at half the highest intensity, peak the highest, mitigation the first bucket after
the peak from which it stays below half (a bucket of fewer rows amid a steady flood is a
dip, not a mitigation). Recovery is when every member series is back at its baseline
(:func:`series_recoveries`: its excess under a twentieth of its peak for good), never
merely when the next incident begins; incidents may overlap, and phases use only the
buckets before each series' recovery.

Logs are often collected while an incident is still under way. A series still at or
above a twentieth of its peak when its data ends has not recovered: the logs ended, not
the trouble. An incident with such a series is *ongoing*: it has no recovery, its
``logs_end`` says when the data ends, and its duration (onset to then) is a lower bound.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from timeline.analysis.rates import (
    JOB_PERIOD,
    SERIES_SCHEMA,
    every,
    job_signature,
    problem_rows,
    to_timedelta,
)
from timeline.analysis.spikes import LEVEL_METRICS, SUSTAIN, telling_job

__all__ = [
    "CI_METRICS",
    "group_incidents",
    "incident_table",
    "sequence_text",
    "series_recoveries",
]

#: The series that measure what CI users feel.
CI_METRICS = (*LEVEL_METRICS, "failed_jobs", "cancelled_jobs")

_TS = SERIES_SCHEMA["bucket"]


def group_incidents(
    spikes: pl.DataFrame,
    *,
    gap: str | timedelta = "30m",
    burst_ratio: float = 10.0,
) -> pl.DataFrame:
    """Give every spike the ``incident_id`` of the incident it belongs to.

    Log spikes closer than ``gap`` (end of one to start of the next) form one incident.
    A small log spike inside the trickle that leads up to a spike of the same series
    ``burst_ratio`` times its size is a burst of that precursor and joins the bigger
    spike's incident. Then, in order of start, each CI spike joins the incident that is
    running when it starts (or ended less than ``gap`` before), stretching its end; a CI
    spike with no incident around it starts a CI-only incident. CI spikes thus follow an
    incident's long tail but never join two incidents into one.

    Parameters
    ----------
    spikes
        Spikes (:func:`timeline.analysis.spikes.find_spikes` or :func:`describe_spikes`).
    gap
        How close spikes must be to join one incident.
    burst_ratio
        How much bigger a later spike of the same series must be to take in an earlier
        one from its precursor trickle (needs ``precursor_start``; skipped without it).

    Returns
    -------
    pl.DataFrame
        ``spikes`` with ``incident_id`` (UInt32; incidents numbered by first start).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> t = lambda h, m=0: datetime(2023, 3, 14, h, m, tzinfo=UTC)
    >>> spikes = pl.DataFrame({"spike_id": [0, 1, 2], "metric": ["errors", "errors", "failed_jobs"],
    ...     "start": [t(18), t(20), t(18, 10)], "end": [t(19), t(21), t(23)]})
    >>> group_incidents(spikes, gap="30m")["incident_id"].to_list()
    [0, 1, 0]
    """
    gap_td = to_timedelta(gap)
    is_ci = pl.col("metric").is_in(CI_METRICS)
    logs = spikes.filter(~is_ci).sort("start", "spike_id")
    logs = logs.with_columns(_cluster=_clusters(gap_td))
    logs = _absorb_bursts(logs, burst_ratio)
    clusters = (
        logs.group_by("_cluster")
        .agg(start=pl.col("start").min(), end=pl.col("end").max())
        .sort("start")
        .to_dicts()
    )
    assigned: dict[int, int] = {}
    next_id = max((c["_cluster"] for c in clusters), default=-1) + 1
    ci = spikes.filter(is_ci).sort("start", "spike_id")
    for spike in ci.select("spike_id", "start", "end").iter_rows(named=True):
        home = None
        for cluster in clusters:
            if cluster["start"] - gap_td <= spike["start"] <= cluster["end"] + gap_td:
                home = cluster
        if home is None:
            home = {"_cluster": next_id, "start": spike["start"], "end": spike["end"]}
            clusters.append(home)
            next_id += 1
        home["end"] = max(home["end"], spike["end"])
        assigned[spike["spike_id"]] = home["_cluster"]
    ci = ci.with_columns(
        _cluster=pl.col("spike_id").replace_strict(assigned, return_dtype=pl.Int64)
    )
    merged = pl.concat(
        [logs.with_columns(pl.col("_cluster").cast(pl.Int64)), ci], how="vertical_relaxed"
    )
    order = (
        merged.group_by("_cluster")
        .agg(_first=pl.col("start").min())
        .sort("_first", "_cluster")
        .with_columns(incident_id=pl.int_range(pl.len(), dtype=pl.UInt32))
    )
    return (
        merged.join(order.select("_cluster", "incident_id"), on="_cluster")
        .drop("_cluster")
        .sort("spike_id")
    )


def _absorb_bursts(logs: pl.DataFrame, ratio: float) -> pl.DataFrame:
    """Move each small spike that lies in the precursor trickle of a much bigger later
    spike of the same series into the cluster of the biggest such spike."""
    if "precursor_start" not in logs.columns or logs.height == 0:
        return logs
    big = logs.filter(pl.col("precursor_start").is_not_null()).select(
        "series",
        _big_start=pl.col("start"),
        _big_count=pl.col("count"),
        _big_cluster=pl.col("_cluster"),
        _trickle=pl.col("precursor_start"),
    )
    home = (
        logs.select("spike_id", "series", "start", "count")
        .join(big, on="series")
        .filter(
            (pl.col("_big_start") > pl.col("start"))
            & (pl.col("_trickle") <= pl.col("start"))
            & (pl.col("_big_count") >= ratio * pl.col("count"))
        )
        .sort("_big_count", descending=True)
        .group_by("spike_id")
        .agg(pl.col("_big_cluster").first())
    )
    return (
        logs.join(home, on="spike_id", how="left")
        .with_columns(_cluster=pl.coalesce("_big_cluster", "_cluster"))
        .drop("_big_cluster")
    )


def _seconds(duration: pl.Expr) -> pl.Expr:
    return duration.dt.total_microseconds().cast(pl.Float64) / 1e6


def _clusters(gap: timedelta) -> pl.Expr:
    """Cluster numbers for rows sorted by ``start``: a new cluster where the start is more
    than ``gap`` after every earlier end."""
    reach = pl.col("end").cum_max().shift(1)
    return (reach.is_null() | (pl.col("start") > reach + gap)).cum_sum().cast(pl.Int64) - 1


def incident_table(
    spikes: pl.DataFrame,
    flagged: pl.DataFrame,
    *,
    bucket: str | timedelta,
    onset_share: float = 0.1,
    recovery_share: float = 0.05,
    gap: str | timedelta = "30m",
    frame: pl.DataFrame | None = None,
    job_table: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per incident: phases, the order in which sources spiked, and detection latency.

    Parameters
    ----------
    spikes
        Described spikes with ``incident_id`` (:func:`group_incidents`).
    flagged
        The bucket values and baselines (:func:`timeline.analysis.spikes.flag_buckets`).
    bucket
        The bucket width.
    onset_share
        The share of a series' largest excess in the incident that marks the onset; a
        rising trickle before it is part of the incident (``start``) but not its onset.
    gap
        CI trouble more than ``gap`` before the first log onset is not the incident's
        onset, nor when CI felt it.
    frame, job_table
        The event frame and its :func:`timeline.analysis.rates.jobs`; if given, each onset moves
        from the start of its bucket to the first row in it that shows the rise (for a
        CI series, the first job queued then that waited too long, failed or was
        cancelled).

    Returns
    -------
    pl.DataFrame
        ``incident_id``; ``start`` (first member spike), ``onset``, ``escalation``,
        ``peak``, ``mitigation``, ``recovery`` (Datetime UTC) and ``duration_s`` (onset to
        recovery); ``ongoing`` (Boolean: some member series had not recovered when its
        data ended) with ``logs_end`` (the latest such end; null unless ongoing): then
        ``recovery`` is null, ``duration_s`` runs from the onset to ``logs_end`` (the
        incident lasted at least that long) and ``mitigation`` is null unless the
        intensity fell below half after the peak within the data;
        ``spike_ids``, ``n_spikes``; ``sources`` in the
        order they first spiked, ``sequence`` (list of struct: ``source``, ``series``,
        ``start``, ``after_previous_s``) and ``order`` (the same in words); ``hosts``,
        ``n_hosts``, ``signatures`` (log signatures), ``level`` (highest); and for
        detection latency ``first_anomaly_at`` with ``first_anomaly`` (the first sign: a
        precursor trickle or the first spike), ``ci_impact_at`` with ``ci_impact`` (the
        first CI spike, if any), ``warning_lead_s`` (onset minus first anomaly) and
        ``ci_lag_s`` (CI impact minus onset).
    """
    width, gap_td = to_timedelta(bucket), to_timedelta(gap)
    if spikes.height == 0:
        return _empty_incidents()
    is_ci = pl.col("metric").is_in(CI_METRICS)
    buckets = _member_buckets(spikes, flagged)
    # a series' episode that begins well after the incident's logs went quiet is not its
    logs_end = (
        spikes.filter(~is_ci)
        .group_by("incident_id")
        .agg(latest=pl.col("end").max() + gap_td)
        .cast({"incident_id": pl.UInt32, "latest": _TS})
    )
    recovered = series_recoveries(
        buckets,
        width=width,
        share=recovery_share,
        gap=2 * gap_td,
        latest=logs_end,
        ends=_series_ends(flagged, width),
    )
    buckets = buckets.join(recovered, on=["incident_id", "series"], how="left").filter(
        pl.col("bucket") < pl.coalesce("recovered", "data_end")
    )
    onsets = _refined_onsets(
        _source_onsets(buckets, onset_share, gap_td), spikes, frame, flagged, width, job_table
    )
    phases = _phases(spikes, buckets, onsets, width)
    first_per_source = (
        onsets.rename({"at": "start"})
        .sort("incident_id", "start", "source")
        .with_columns(
            after_previous_s=_seconds(
                pl.col("start") - pl.col("start").shift(1).over("incident_id")
            ).fill_null(0.0)
        )
    )
    sequence = first_per_source.group_by("incident_id", maintain_order=True).agg(
        sources=pl.col("source"),
        sequence=pl.struct("source", "series", "start", "after_previous_s"),
    )
    log_spikes = spikes.filter(~is_ci)
    # the first sign: a precursor trickle, else the first row of the first log spike
    spike_rows = _refined_onsets(
        log_spikes.select("incident_id", "source", "series", source_onset=pl.col("start")),
        spikes,
        frame,
        flagged,
        width,
        job_table,
    ).select("incident_id", _sign_at="at", _sign=pl.format("spike of {}", "series"))
    trickles = log_spikes.filter(pl.col("precursor_start").is_not_null()).select(
        "incident_id",
        _sign_at="precursor_start",
        _sign=pl.format("precursor trickle of {}", "series"),
    )
    first_sign = (
        pl.concat([trickles, spike_rows], how="vertical_relaxed")
        .sort("_sign_at", "_sign")
        .group_by("incident_id", maintain_order=True)
        .agg(first_anomaly_at=pl.col("_sign_at").first(), first_anomaly=pl.col("_sign").first())
    )
    # when CI users first felt it: the first hot bucket of a CI series, to the first job
    ci_spikes = (
        spikes.filter(is_ci)
        .join(phases.select("incident_id", "onset"), on="incident_id", how="left")
        .filter(pl.col("onset").is_null() | (pl.col("end") > pl.col("onset") - gap_td))
        .with_columns(
            start=pl.max_horizontal("start", (pl.col("onset") - gap_td).dt.truncate(every(width)))
        )
    )
    ci_first = (
        _refined_onsets(
            ci_spikes.select("incident_id", "source", "series", source_onset=pl.col("start")),
            spikes,
            frame,
            flagged,
            width,
            job_table,
        )
        .sort("at", "series")
        .group_by("incident_id", maintain_order=True)
        .agg(ci_impact_at=pl.col("at").first(), ci_impact=pl.col("series").first())
    )
    totals = spikes.group_by("incident_id").agg(
        spike_ids=pl.col("spike_id").sort(),
        n_spikes=pl.len().cast(pl.UInt32),
        start=pl.col("start").min(),
        _end=pl.col("end").max(),
        hosts=pl.col("hosts")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .drop_nulls()
        .unique()
        .sort(),
        signatures=pl.col("signature").filter(~is_ci).unique(maintain_order=True),
        level=pl.col("level").drop_nulls().max(),
    )
    recovery = recovered.group_by("incident_id").agg(
        recovery=pl.col("recovered").max(),
        ongoing=pl.col("ongoing").any(),
        logs_end=pl.col("data_end").filter(pl.col("ongoing")).max(),
    )
    table = (
        totals.join(phases, on="incident_id", how="left")
        .join(recovery, on="incident_id", how="left")
        .join(sequence, on="incident_id", how="left")
        .join(first_sign, on="incident_id", how="left")
        .join(ci_first, on="incident_id", how="left")
        .sort("start")
        .with_columns(
            ongoing=pl.col("ongoing").fill_null(False),
            recovery=pl.when(pl.col("ongoing").fill_null(False).not_()).then(
                pl.coalesce("recovery", "_end")
            ),
            onset=pl.coalesce("onset", "start"),
            first_anomaly_at=pl.coalesce("first_anomaly_at", "start"),
            first_anomaly=pl.coalesce("first_anomaly", pl.lit("CI impact only")),
        )
        .with_columns(
            duration_s=_seconds(pl.coalesce("recovery", "logs_end") - pl.col("onset")),
            n_hosts=pl.col("hosts").list.len().cast(pl.UInt32),
            warning_lead_s=_seconds(pl.col("onset") - pl.col("first_anomaly_at")),
            ci_lag_s=_seconds(pl.col("ci_impact_at") - pl.col("onset")),
            # phases are found per bucket, the onset to the row: keep them in order
            escalation=pl.max_horizontal("escalation", "onset"),
            peak=pl.max_horizontal("peak", "onset"),
            # an ongoing incident that never fell below half has not been mitigated yet
            mitigation=pl.when(pl.coalesce("mitigation", "recovery").is_not_null()).then(
                pl.max_horizontal(pl.coalesce("mitigation", "recovery"), "onset")
            ),
        )
        .sort("incident_id")
    )
    table = table.with_columns(
        order=pl.Series([sequence_text(s) for s in table["sequence"].to_list()], dtype=pl.String)
    )
    return table.select(list(_INCIDENT_SCHEMA)).cast(_INCIDENT_SCHEMA)


def _refined_onsets(
    onsets: pl.DataFrame,
    spikes: pl.DataFrame,
    frame: pl.DataFrame | None,
    flagged: pl.DataFrame,
    width: timedelta,
    job_table: pl.DataFrame | None,
) -> pl.DataFrame:
    """Each source's onset, from the start of its bucket to the first row in that bucket
    that shows the rise: the series' first row for a log series; for a CI series the first
    job counted in that bucket that waited longer than the bucket's threshold (or failed,
    or was cancelled). A CI bucket counts the jobs of the period that ends with it
    (:data:`~timeline.analysis.rates.JOB_PERIOD`), so its first telling job may have been
    queued up to that period earlier, though never before the spike began: the third of
    five failing jobs makes the bucket hot, the first of them is the onset. A change made
    in the same bucket before it then counts as before.

    ``onsets`` holds ``incident_id``, ``source``, ``series`` and ``source_onset`` (a bucket)
    for every series of a source that was hot in the source's first bucket; the result
    has one row per incident and source with ``at`` (the refined time) and its ``series``.
    """
    keys = spikes.select("series", "source", "signature", "metric").unique()
    wanted = onsets.with_columns(_k=pl.int_range(pl.len())).join(keys, on=["series", "source"])
    is_ci = pl.col("metric").is_in(CI_METRICS)
    found = [pl.DataFrame(schema={"_k": pl.Int64, "_first_row": _TS})]
    if frame is not None:
        found.append(_first_log_rows(wanted.filter(~is_ci), frame, width))
    if job_table is not None:
        ci = wanted.filter(is_ci).join(
            spikes.select("series", _from="start", _to="end"), on="series", how="left"
        )
        # the spike holding the onset bucket began the rise; none (a bare bucket) starts it
        ci = (
            ci.filter(
                pl.col("_from").is_null()
                | (
                    (pl.col("_from") <= pl.col("source_onset"))
                    & (pl.col("source_onset") < pl.col("_to"))
                )
            )
            .sort("_from", nulls_last=True)
            .unique("_k", keep="first", maintain_order=True)
            .with_columns(_from=pl.coalesce("_from", "source_onset"))
            .drop("_to")
        )
        found.append(_first_late_jobs(ci, flagged, job_table, width))
    firsts = pl.concat(found).group_by("_k").agg(pl.col("_first_row").min())
    return (
        wanted.join(firsts, on="_k", how="left")
        .with_columns(at=pl.coalesce("_first_row", "source_onset"))
        .sort("at", "series")
        .group_by("incident_id", "source", maintain_order=True)
        .agg(pl.col("at").first(), pl.col("series").first())
    )


def _first_log_rows(wanted: pl.DataFrame, frame: pl.DataFrame, width: timedelta):
    schema = {"_k": pl.Int64, "_first_row": _TS}
    if wanted.height == 0:
        return pl.DataFrame(schema=schema)
    wanted = wanted.rename({"signature": "template"})
    rows = (
        problem_rows(frame)
        .join(wanted.select("source", "template").lazy(), on=["source", "template"], how="semi")
        .select("ts", "source", "template")
        .sort("ts")
        .collect()
    )
    return (
        wanted.select("_k", "source_onset", "source", "template")
        .sort("source_onset")
        .join_asof(
            rows,
            left_on="source_onset",
            right_on="ts",
            by=["source", "template"],
            strategy="forward",
            check_sortedness=False,
        )
        .filter(pl.col("ts") < pl.col("source_onset") + width)
        .select("_k", _first_row=pl.col("ts"))
        .cast(schema)
    )


def _first_late_jobs(
    wanted: pl.DataFrame, flagged: pl.DataFrame, job_table: pl.DataFrame, width: timedelta
):
    schema = {"_k": pl.Int64, "_first_row": _TS}
    if wanted.height == 0 or job_table.height == 0:
        return pl.DataFrame(schema=schema)
    # a bucket holds the jobs queued in the period that ends with it
    reach = max(to_timedelta(JOB_PERIOD) - width, timedelta(0))
    thresholds = flagged.select("series", pl.col("bucket").alias("source_onset"), "threshold")
    telling = telling_job(delayed=pl.col("queue_delay_s") > pl.col("threshold"))
    return (
        wanted.join(thresholds, on=["series", "source_onset"], how="left")
        .join(
            job_table.with_columns(signature=job_signature()).select(
                "source", "signature", "queued", "status", "queue_delay_s"
            ),
            on=["source", "signature"],
        )
        .filter(
            (pl.col("queued") >= pl.max_horizontal("_from", pl.col("source_onset") - reach))
            & (pl.col("queued") < pl.col("source_onset") + width)
            & telling.fill_null(False)
        )
        .group_by("_k")
        .agg(_first_row=pl.col("queued").min())
        .cast(schema)
    )


def series_recoveries(
    buckets: pl.DataFrame,
    *,
    width: timedelta,
    share: float,
    gap: timedelta,
    latest: pl.DataFrame | None = None,
    ends: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """When each member series of each incident was back at its baseline, or that it was
    not by the time its data ends.

    A stretch with no values longer than ``gap`` splits a series into episodes; the
    series' part in the incident is the episode of its peak, among the episodes that
    began by the incident's ``latest`` time if given (what begins later is another
    episode, perhaps another incident's, so a CI tail or a trickle that returns later
    never stretches this incident). From that peak the series is back once its excess
    stays under ``share`` of it: the recovery is the end of its last bucket at or above
    it (of the peak bucket itself, for a series never above its baseline).

    A recovery needs data after it that shows the series quiet: a series whose data
    ends (``ends``) less than two buckets, or than
    :data:`~timeline.analysis.spikes.SUSTAIN` (5 minutes, what a spike of fine buckets
    must last), after its last bucket at or above ``share``, or no later than its longest
    quiet stretch between two such buckets after its peak, has not recovered: it is
    *ongoing* (``recovered`` null). One quiet bucket is not enough: the last bucket of
    the data is often only partly written, and sparse errors in fine buckets leave
    stretches of empty ones inside a spike; a quiet end no longer than those is no sign
    that the errors stopped. A count series' data ends with all of the
    input (its zero-filled buckets run to the end of the last row of any source), a delay
    series' at the end of its last bucket that had jobs (a delay is known only for jobs
    that were queued). The end of all the input rather than of the series' own source:
    a source that logs only its errors (a grep, an errors-only extract) ends with its
    last error and would look ongoing however long the rest of the logs go on quietly;
    and the analysis keeps the input's last row exactly, but of each source's quiet rows
    only one an hour. A source whose log stops early while still failing thus counts as
    recovered where the rest of the logs show it quiet.

    Parameters
    ----------
    buckets
        ``incident_id``, ``series``, ``bucket`` and ``share`` (the excess over the
        baseline as a share of the series' largest in the incident), from the member
        spikes' buckets.
    width
        The bucket width.
    share
        The share of the peak excess below which the series is back at its baseline.
    gap
        The longest silence inside one episode.
    latest
        ``incident_id`` and ``latest`` (Datetime UTC): the latest start of an episode
        that still belongs to the incident (incidents without a row: any).
    ends
        ``series`` and ``data_end`` (Datetime UTC): when the data each series comes from
        ends (series without a row, or none given: never ongoing).

    Returns
    -------
    pl.DataFrame
        ``incident_id``, ``series``, ``recovered`` (Datetime UTC; null when ongoing),
        ``ongoing`` (Boolean) and ``data_end`` (Datetime UTC or null).

    Examples
    --------
    >>> from datetime import datetime, timedelta, UTC
    >>> t = lambda h, m=0: datetime(2023, 3, 15, h, m, tzinfo=UTC)
    >>> buckets = pl.DataFrame({"incident_id": [0] * 5, "series": ["delay"] * 5,
    ...     "bucket": [t(0), t(0, 5), t(0, 10), t(0, 15), t(2, 50)],
    ...     "share": [1.0, 0.4, 0.05, 0.02, 0.3]})
    >>> series_recoveries(buckets, width=timedelta(minutes=5), share=0.1,
    ...     gap=timedelta(minutes=30))["recovered"].dt.strftime("%H:%M").to_list()
    ['00:10']

    Had its data ended at 00:12, it would not have recovered by then:

    >>> ends = pl.DataFrame({"series": ["delay"], "data_end": [t(0, 12)]})
    >>> series_recoveries(buckets, width=timedelta(minutes=5), share=0.1,
    ...     gap=timedelta(minutes=30), ends=ends).select("recovered", "ongoing").row(0)
    (None, True)
    """
    keys = ["incident_id", "series"]
    ordered = buckets.select(*keys, "bucket", "share").sort(*keys, "bucket")
    episodes = ordered.with_columns(
        _episode=((pl.col("bucket").diff() > gap).fill_null(False).cast(pl.UInt32).cum_sum()).over(
            keys
        )
    )
    if latest is not None:
        began = pl.col("bucket").min().over(*keys, "_episode")
        episodes = episodes.join(latest, on="incident_id", how="left").filter(
            pl.col("latest").is_null() | (began <= pl.col("latest"))
        )
    episodes = episodes.with_columns(
        _peak_episode=pl.col("_episode")
        .sort_by("share", descending=True, maintain_order=True)
        .first()
        .over(keys),
        _peak=pl.col("bucket")
        .sort_by("share", descending=True, maintain_order=True)
        .first()
        .over(keys),
    )
    recovered = (
        episodes.filter(
            (pl.col("_episode") == pl.col("_peak_episode"))
            & (pl.col("bucket") >= pl.col("_peak"))
            & ((pl.col("share") >= share) | (pl.col("bucket") == pl.col("_peak")))
        )
        .sort(*keys, "bucket")
        .group_by(keys, maintain_order=True)
        .agg(
            recovered=pl.col("bucket").max() + width,
            # the longest quiet between two high buckets after the peak: no recovery
            _quiet=(pl.col("bucket").diff().max() - width).fill_null(timedelta(0)),
        )
        .cast({"recovered": _TS})
        .sort(keys)
    )
    if ends is None:
        ends = pl.DataFrame(schema={"series": pl.String, "data_end": _TS})
    enough = pl.max_horizontal(pl.lit(max(2 * width, SUSTAIN)), pl.col("_quiet") + width)
    ongoing = (pl.col("data_end") - pl.col("recovered") < enough).fill_null(False)
    return (
        recovered.join(ends.select("series", pl.col("data_end").cast(_TS)), on="series", how="left")
        .with_columns(ongoing=ongoing)
        .with_columns(recovered=pl.when(~pl.col("ongoing")).then(pl.col("recovered")))
        .select(*keys, "recovered", "ongoing", "data_end")
    )


def _series_ends(flagged: pl.DataFrame, width: timedelta) -> pl.DataFrame:
    """When the data of each series ends: the end of its last bucket in ``flagged``. A
    count series' buckets are filled to the end of all the input; a delay series has
    buckets only where jobs were queued."""
    return flagged.group_by("series").agg(data_end=(pl.col("bucket").max() + width).cast(_TS))


def _member_buckets(spikes: pl.DataFrame, flagged: pl.DataFrame) -> pl.DataFrame:
    """The buckets of each incident's member spikes with their excess over the baseline,
    and that excess as a share of the series' largest excess in the incident."""
    members = spikes.select("incident_id", "series", "source", "metric", "start", "end")
    return (
        members.join(flagged.select("series", "bucket", "value", "baseline", "hot"), on="series")
        .filter((pl.col("bucket") >= pl.col("start")) & (pl.col("bucket") < pl.col("end")))
        .unique(["incident_id", "series", "bucket"])
        .with_columns(excess=(pl.col("value") - pl.col("baseline")).clip(lower_bound=0.0))
        .with_columns(
            share=pl.col("excess")
            / pl.max_horizontal(pl.col("excess").max().over("incident_id", "series"), pl.lit(1e-9))
        )
    )


def _source_onsets(buckets: pl.DataFrame, onset_share: float, gap: timedelta) -> pl.DataFrame:
    """The bucket in which each source of each incident first reached ``onset_share`` of
    its excess, with every series of the source that did so in that bucket. Where the
    incident has log series, a CI series counts only from ``gap`` before the first log
    onset: CI trouble long before it is not what the incident's logs describe."""
    is_ci = pl.col("metric").is_in(CI_METRICS)
    telling = buckets.filter(pl.col("hot") & (pl.col("share") >= onset_share))
    logs_from = telling.filter(~is_ci).group_by("incident_id").agg(_logs=pl.col("bucket").min())
    telling = telling.join(logs_from, on="incident_id", how="left").filter(
        ~is_ci | pl.col("_logs").is_null() | (pl.col("bucket") >= pl.col("_logs") - gap)
    )
    first = telling.group_by("incident_id", "source").agg(source_onset=pl.col("bucket").min())
    return (
        telling.join(first, on=["incident_id", "source"])
        .filter(pl.col("bucket") == pl.col("source_onset"))
        .select("incident_id", "source", "series", "source_onset")
    )


def _phases(
    spikes: pl.DataFrame, buckets: pl.DataFrame, onsets: pl.DataFrame, width: timedelta
) -> pl.DataFrame:
    """Onset, escalation, peak and mitigation of each incident from its buckets.

    A bucket's *excess* in a series is its value over the baseline, as a share of the
    largest excess of that series in the incident. Onset is the first hot bucket with
    ``onset_share`` of it or more. The intensity of a bucket is, summed over sources, the
    largest share among the source's series; escalation is the first bucket at half the
    highest intensity, mitigation the first bucket after the peak and after the last bucket
    at half of it or more: fine buckets of a steady flood dip below half now and then.
    """
    members = spikes.select("incident_id", "series", "source", "start", "end")
    onset = onsets.group_by("incident_id").agg(onset=pl.col("at").min())
    intensity = (
        buckets.group_by("incident_id", "bucket", "source")
        .agg(pl.col("share").max())
        .group_by("incident_id", "bucket")
        .agg(intensity=pl.col("share").sum())
    )
    spans = members.group_by("incident_id").agg(
        _lo=pl.col("start").min(), _hi=pl.col("end").max() - width
    )
    grid = (
        spans.with_columns(
            bucket=pl.datetime_ranges("_lo", pl.max_horizontal("_lo", "_hi"), interval=width)
        )
        .explode("bucket")
        .select("incident_id", pl.col("bucket").cast(_TS))
        .join(intensity, on=["incident_id", "bucket"], how="left")
        .join(onset, on="incident_id", how="left")
        .with_columns(intensity=pl.col("intensity").fill_null(0.0))
        .filter(pl.col("onset").is_null() | (pl.col("bucket") + width > pl.col("onset")))
        .sort("incident_id", "bucket")
    )
    top = pl.col("intensity").max().over("incident_id")
    peak_at = pl.col("bucket").sort_by("intensity", descending=True).first().over("incident_id")
    high = pl.col("intensity") >= 0.5 * top
    last_high = pl.col("bucket").filter(high).max().over("incident_id")
    marked = grid.with_columns(_top=top, _peak=peak_at, _last_high=last_high)
    return marked.group_by("incident_id").agg(
        onset=pl.col("onset").first(),
        escalation=pl.col("bucket").filter(pl.col("intensity") >= 0.5 * pl.col("_top")).min(),
        peak=pl.col("_peak").first(),
        peak_intensity=pl.col("_top").first(),
        mitigation=pl.col("bucket")
        .filter((pl.col("bucket") > pl.col("_peak")) & (pl.col("bucket") > pl.col("_last_high")))
        .min(),
    )


def sequence_text(sequence: list[dict] | None) -> str:
    """The order in which sources spiked, in words.

    >>> from datetime import datetime
    >>> sequence_text([
    ...     {"source": "kube-proxy", "start": datetime(2023, 3, 14, 18), "after_previous_s": 0},
    ...     {"source": "circleci", "start": datetime(2023, 3, 14, 18, 10), "after_previous_s": 600},
    ... ])
    'kube-proxy at 03-14 18:00, then circleci 10m later'
    """
    if not sequence:
        return ""
    parts = []
    for i, step in enumerate(sequence):
        if i == 0:
            parts.append(f"{step['source']} at {step['start']:%m-%d %H:%M}")
        else:
            parts.append(f"then {step['source']} {duration_text(step['after_previous_s'])} later")
    return ", ".join(parts)


def duration_text(seconds: float | None) -> str:
    """A short human duration: ``45s``, ``10m``, ``2h05m``, ``1d3h``.

    >>> duration_text(7500), duration_text(-600), duration_text(100000)
    ('2h05m', '-10m', '1d3h')
    """
    if seconds is None:
        return "?"
    sign = "-" if seconds < 0 else ""
    s = abs(int(round(seconds)))
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{sign}{h}h{m:02d}m" if m else f"{sign}{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{sign}{d}d{h}h" if h else f"{sign}{d}d"


_INCIDENT_SCHEMA: dict[str, pl.DataType] = {
    "incident_id": pl.UInt32(),
    "start": _TS,
    "onset": _TS,
    "escalation": _TS,
    "peak": _TS,
    "mitigation": _TS,
    "recovery": _TS,
    "duration_s": pl.Float64(),
    "ongoing": pl.Boolean(),
    "logs_end": _TS,
    "level": pl.String(),
    "n_spikes": pl.UInt32(),
    "spike_ids": pl.List(pl.UInt32),
    "sources": pl.List(pl.String),
    "order": pl.String(),
    "sequence": pl.List(
        pl.Struct(
            {
                "source": pl.String(),
                "series": pl.String(),
                "start": _TS,
                "after_previous_s": pl.Float64(),
            }
        )
    ),
    "hosts": pl.List(pl.String),
    "n_hosts": pl.UInt32(),
    "signatures": pl.List(pl.String),
    "first_anomaly_at": _TS,
    "first_anomaly": pl.String(),
    "ci_impact_at": _TS,
    "ci_impact": pl.String(),
    "warning_lead_s": pl.Float64(),
    "ci_lag_s": pl.Float64(),
}


def _empty_incidents() -> pl.DataFrame:
    return pl.DataFrame(schema=_INCIDENT_SCHEMA)

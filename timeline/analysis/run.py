"""The analysis in one call: from an event frame to incidents and their contributing changes.

``analyze(frame)`` runs the small functions of :mod:`timeline.analysis.rates`,
:mod:`timeline.analysis.spikes`, :mod:`timeline.analysis.incidents` and
:mod:`timeline.analysis.contributors` in order and returns an :class:`Analysis`, whose
tables are polars DataFrames (``.to_pandas()`` gives pandas) and which shows itself as a
readable summary in a terminal (``str``) and in Jupyter (``_repr_html_``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import polars as pl

from timeline.analysis import contributors as contrib
from timeline.analysis import incidents as inc
from timeline.analysis import rates, spikes
from timeline.analysis.incidents import duration_text
from timeline.analysis.rates import to_timedelta
from timeline.reading import store as event_store
from timeline.reading import times
from timeline.reading.loader import Loaded
from timeline.reading.pods import pod_nodes, tells_pod_node, with_pod_log_origin
from timeline.schema import time_order

__all__ = [
    "Analysis",
    "analysis_frame",
    "analyze",
    "in_window",
    "kept_rows",
    "narrowed",
    "report_rows",
    "window_notes",
]

#: Levels whose rows the analysis counts one by one (others only make up populations).
PROBLEM_LEVELS = ["warning", "error", "critical"]


def analysis_frame(events: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """The rows and columns the analysis reads, in time order.

    The analysis counts warnings and worse, changes and CI jobs one by one; of the other
    log rows it only needs to know who wrote what, and when (which hosts run a program,
    for comparing touched hosts with untouched ones). So those are kept as one row per
    source, host, component, signature, level, hour and the namespace the row's collector
    stated (the first, with its own time, file and line), without message, and with
    ``attrs`` that hold that namespace only
    (:func:`~timeline.analysis.contributors.targets.namespace_attrs`); the records that tie
    a pod to its node are kept whole. (Pod logs copied out without their node's folder
    already name their pod and container: the reader takes them from the path,
    :mod:`parsers.layouts`.)
    Reading an event store this way holds what the analysis keeps, not the whole input.
    File names are categories: a path of a hundred bytes would be held on every row.

    >>> import timeline
    >>> from datetime import datetime, UTC
    >>> t = datetime(2023, 3, 14, 18, tzinfo=UTC)
    >>> frame = pl.DataFrame({"kind": ["log"] * 3, "level": ["info", "info", "error"],
    ...     "source": "klog", "component": "kube-proxy", "host": "node-1",
    ...     "template": ["ok", "ok", "Sync failed"],
    ...     "message": ["ok", "ok", "Sync failed"], "attrs": '{"a":1}',
    ...     "ts": [t, t, t], "file": "kp.log", "line": [1, 2, 3]},
    ...     schema_overrides=timeline.EVENT_SCHEMA)
    >>> analysis_frame(frame).select("line", "message").rows()
    [(1, None), (3, 'Sync failed')]
    """
    events = events.lazy()
    record = pl.col("kind") != "log"
    pod_node = tells_pod_node()
    counted = record | pl.col("level").is_in(PROBLEM_LEVELS).fill_null(False) | pod_node
    columns = events.collect_schema().names()
    keys = ["source", "host", "component", "template", "level"]
    stated = contrib.stated_namespace(pl.col("attrs"))
    others = events.filter(~counted).select(*keys, "ts", "kind", "file", "line", _ns=stated)
    grouped = (
        others.with_columns(_hour=pl.col("ts").dt.truncate("1h"))
        .group_by(*keys, "_hour", "_ns")
        .agg(
            # the least line, ties (a rotated log shares its line numbers) broken by time
            # and file, so that the pick is one row's whatever order the rows come in; the
            # file by its hash: sorting by its text costs a third of the grouping
            pl.col("ts", "kind", "file", "line")
            .sort_by("line", "ts", pl.col("file").hash())
            .first(),
            _earliest=pl.col("ts").min(),
            _latest=pl.col("ts").max(),
        )
        .collect(engine="streaming")
    )
    presence = (
        pl.concat([grouped, _end_rows(others, grouped)], how="diagonal")
        .unique(["file", "line", "kind", "ts"], maintain_order=True)
        .with_columns(message=pl.lit(None, pl.String), attrs=contrib.namespace_attrs("_ns"))
        .select(columns)
    )
    kept = events.filter(counted).with_columns(
        attrs=pl.when(record | pod_node)
        .then(pl.col("attrs"))
        .otherwise(contrib.namespace_attrs(stated))
    )
    # apart from the presence rows: a plan shared by both would be held whole in memory
    both = [kept.select(columns).collect(engine="streaming"), presence]
    frame = pl.concat(both).sort(time_order(), nulls_last=True, maintain_order=True)
    return frame.with_columns(pl.col("file").cast(pl.Categorical))


def _end_rows(others: pl.LazyFrame, grouped: pl.DataFrame) -> pl.DataFrame:
    """The earliest and the latest of the rows ``grouped`` stands for, so that the
    data's span stays whole: found by their times, the least file and line of a tie."""
    earliest, latest = grouped.select(pl.col("_earliest").min(), pl.col("_latest").max()).row(0)
    if earliest is None:
        return grouped.clear()
    ends = others.filter(pl.col("ts").is_in([earliest, latest])).collect(engine="streaming")
    ends = ends.sort("file", "line")
    return pl.concat(
        [ends.filter(pl.col("ts") == earliest).head(1), ends.filter(pl.col("ts") == latest).head(1)]
    )


def kept_rows(loaded: Loaded) -> Loaded:
    """``loaded`` with the rows a report draws from: its rows when they are in memory,
    else those the analysis keeps (:func:`analysis_frame`), which give the same report
    without holding every row. They are worked out once per ``loaded``
    (``loaded.analysis_rows``): its analysis, figures and report share them; and once
    per store where the read or the opened store has a place in the cache."""
    if loaded.in_memory:
        return loaded
    if loaded.analysis_rows is None:
        loaded.analysis_rows = _analysis_rows(loaded)
    return loaded.narrowed(loaded.analysis_rows)


def _analysis_rows(loaded: Loaded) -> pl.DataFrame:
    """:func:`analysis_frame` of ``loaded``'s store, kept in the cache with its analysis
    when ``loaded`` has a place there (``loaded.kept``)."""
    found = event_store.kept_analysis_rows(loaded.kept) if loaded.kept else None
    if found is None:
        found = analysis_frame(loaded.scan())
        if loaded.kept:
            event_store.keep_analysis_rows(loaded.kept, found)
    return found


def report_rows(events: pl.DataFrame | Loaded) -> pl.DataFrame:
    """The rows to draw or quote from: an event frame as given, of a ``Loaded`` its
    :func:`kept_rows`."""
    return kept_rows(events).events if isinstance(events, Loaded) else events


@dataclass(frozen=True)
class Analysis:
    """What the analysis found, as tables.

    Attributes
    ----------
    incidents
        One row per incident (:func:`timeline.analysis.incidents.incident_table`): phases, order
        of sources, detection latency; plus the best-ranked change (``top_change_id``,
        ``top_change``, ``top_role``), the change the precursor began after
        (``precursor_change_id``, ``precursor_change``, ``precursor_start``) and the first
        mitigation (``first_mitigation_change_id``, ``first_mitigation_change``).
    spikes
        One row per spike, with ``incident_id``.
    contributors
        Changes ranked per incident (``incident_id``, ``rank``), with score parts and
        ``evidence``.
    spike_contributors
        The best changes per log spike (``spike_id``, ``rank``), scored the same way
        against the spike alone; CI spikes have none (they are symptoms).
    changes
        Every change in the frame (rollouts grouped).
    diffs
        Per change, the signatures that appeared, vanished, rose or fell around it.
    series
        Every bucket of every series that could spike, with baseline and threshold.
    job_rates
        CI queue delay (median, p95) and failure and cancel rates per bucket and executor.
    bucket
        The bucket width used.
    options
        The options the analysis ran with.
    notes
        What the reader should know about how far the findings can be trusted (too
        little data before a window for its baselines, for one).
    data_start
        When the bulk of the data begins: how far back a window's baselines can look
        (:func:`in_window`).
    """

    incidents: pl.DataFrame
    spikes: pl.DataFrame
    contributors: pl.DataFrame
    spike_contributors: pl.DataFrame
    changes: pl.DataFrame
    diffs: pl.DataFrame
    series: pl.DataFrame
    job_rates: pl.DataFrame
    bucket: str
    options: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    data_start: datetime | None = None

    def top(self, incident_id: int, n: int = 3) -> pl.DataFrame:
        """The ``n`` best-ranked changes for one incident; when no change explains it
        (none is ranked), the changes ``considered, no evidence``."""
        mine = self.contributors.filter(pl.col("incident_id") == incident_id)
        ranked = mine.filter(pl.col("rank") <= n)
        if ranked.height or mine.filter(pl.col("rank").is_not_null()).height:
            return ranked
        return mine.filter(pl.col("role") == contrib.CONSIDERED).sort("ts").head(n)

    def to_dict(self) -> dict[str, Any]:
        """The tables as plain data: lists of dicts, times as ISO 8601 UTC strings
        (``2023-03-14T18:00:00Z``), durations in seconds (the ``_s`` columns). For the
        versioned findings document see :func:`timeline.outputs.findings.findings`."""
        return {
            "bucket": self.bucket,
            "options": dict(self.options),
            "notes": list(self.notes),
            "incidents": _plain(self.incidents.to_dicts()),
            "spikes": _plain(self.spikes.to_dicts()),
            "contributors": _plain(self.contributors.to_dicts()),
            "changes": _plain(self.changes.to_dicts()),
            "diffs": _plain(self.diffs.to_dicts()),
        }

    def summary_lines(self, *, top: int = 3) -> list[tuple[str, str]]:
        """The summary as ``(kind, text)`` pairs; ``kind`` is ``title``, ``line`` or
        ``item``. ``__str__`` and ``_repr_html_`` both render these: per incident (numbered
        from 1) its span, order and detection, its trigger and precursor and the ``top``
        best changes with evidence, then the mitigations and the changes considered with
        no evidence, each counted on one line."""
        out: list[tuple[str, str]] = [
            (
                "title",
                f"{_plural(self.incidents.height, 'incident')}, "
                f"{_plural(self.spikes.height, 'spike')}, "
                f"{_plural(self.changes.height, 'change')} (buckets of {self.bucket})",
            )
        ]
        out.extend(("line", f"note: {note}") for note in self.notes)
        for incident in self.incidents.iter_rows(named=True):
            out.extend(self._incident_lines(incident, top=top))
        return out

    def _incident_lines(self, incident: dict[str, Any], *, top: int) -> list[tuple[str, str]]:
        iid = incident["incident_id"]
        if incident.get("ongoing"):
            until = (
                f"the end of the logs at {incident['logs_end']:%Y-%m-%d %H:%M} UTC, not "
                f"recovered by then (at least {duration_text(incident['duration_s'])})"
            )
        else:
            until = (
                f"{incident['recovery']:%Y-%m-%d %H:%M} UTC "
                f"({duration_text(incident['duration_s'])})"
            )
        out = [
            (
                "title",
                f"Incident {iid + 1}: {incident['onset']:%Y-%m-%d %H:%M} to {until}, "
                f"{_plural(incident['n_spikes'], 'spike')}"
                + (f" on {_plural(incident['n_hosts'], 'host')}" if incident["n_hosts"] else ""),
            ),
            ("line", f"order: {incident['order']}"),
        ]
        seen = []
        if incident["first_anomaly_at"] is not None:
            seen.append(
                f"first sign {incident['first_anomaly_at']:%m-%d %H:%M} "
                f"({_short(incident['first_anomaly'] or '?')}), "
                f"{_relative(incident['warning_lead_s'], 'before', 'after')} the onset"
            )
        if incident["ci_impact_at"] is not None:
            seen.append(
                f"CI felt it {_relative(incident['ci_lag_s'], 'after', 'before')} the onset"
            )
        if seen:
            out.append(("line", "; ".join(seen)))
        ranked = self.contributors.filter(pl.col("incident_id") == iid).sort(
            "rank", nulls_last=True
        )
        unsupported = (
            pl.col("rank").is_null()
            | pl.col("role").is_in(["unrelated", "no clear effect", "target not found"])
            | (pl.col("role") == contrib.CONSIDERED)
        )
        if ranked.height and ranked["rank"].is_null().all():
            out.append(
                ("line", "no change explains this incident: none has evidence beyond chance")
            )
        causes = ranked.filter(~unsupported & (pl.col("role") != "mitigation"))
        shown = causes.filter(
            (pl.int_range(pl.len()) < top) | pl.col("role").is_in(["trigger", "precursor"])
        )
        for row in shown.iter_rows(named=True):
            out.append(("item", f"#{row['rank']} {row['role']}: {_change_text(row)}"))
        mitigations = ranked.filter(pl.col("role") == "mitigation").sort("ts")
        if mitigations.height:
            out.append(
                (
                    "line",
                    f"mitigated by {_plural(mitigations.height, 'change')} from "
                    f"{mitigations['ts'].min():%m-%d %H:%M} to "
                    f"{mitigations['ts'].max():%m-%d %H:%M}, the first: "
                    f"{_change_text(mitigations.row(0, named=True))}",
                )
            )
        considered = ranked.filter(unsupported).height
        if considered:
            out.append(("line", f"considered, no evidence: {_plural(considered, 'change')}"))
        return out

    def __str__(self) -> str:
        indent = {"title": "", "line": "  ", "item": "  "}
        return "\n".join(indent[kind] + text for kind, text in self.summary_lines())

    def __repr__(self) -> str:
        return (
            f"Analysis({_plural(self.incidents.height, 'incident')}, "
            f"{_plural(self.spikes.height, 'spike')}, "
            f"{_plural(self.changes.height, 'change')}, bucket={self.bucket!r})"
        )

    def _repr_html_(self) -> str:
        html = ["<div class='timeline-analysis'>"]
        in_list = False
        for kind, text in self.summary_lines():
            if kind in ("line", "item"):
                if not in_list:
                    html.append("<ul>")
                    in_list = True
                content = f"<b>{escape(text)}</b>" if kind == "item" else escape(text)
                html.append(f"<li>{content}</li>")
                continue
            if in_list:
                html.append("</ul>")
                in_list = False
            html.append(f"<p><b>{escape(text)}</b></p>")
        if in_list:
            html.append("</ul>")
        html.append("</div>")
        return "\n".join(html)


def analyze(
    frame: pl.DataFrame | pl.LazyFrame | Any,
    *,
    bucket: str | timedelta | None = None,
    window: str | timedelta = "24h",
    z: float = 4.0,
    min_bucket: float = 3,
    min_count: float = 10,
    min_delay_s: float = 60.0,
    gap: str | timedelta = "30m",
    gap_buckets: int = 2,
    quiet: str | timedelta = "6h",
    lookback: str | timedelta = "48h",
    change_window: str | timedelta = "1h",
    change_before: str | timedelta = "15m",
    precursor_window: str | timedelta = "6h",
    tau: str | timedelta = "1h",
    examples: int = 5,
    spike_top: int = 5,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> Analysis:
    """Find spikes, incidents and the changes that contributed, in an event frame.

    Parameters
    ----------
    frame
        An event frame (``timeline.load``), a LazyFrame of one (``timeline.scan``), or a
        ``timeline.Loaded``. Of a LazyFrame, or a ``Loaded`` whose rows are not in memory,
        only the rows the analysis keeps are read (:func:`analysis_frame`). The analysis
        of a ``Loaded`` that ``timeline.read`` made with its cache (or of an event store
        it opened) is kept there: the same analysis of the same logs is then not made
        again, whatever the window.
    bucket
        Bucket width (``"1min"``); chosen from the frame's span if not given.
    window
        How far back a series' baseline looks (:func:`timeline.analysis.spikes.flag_buckets`).
    z, min_bucket, min_count, min_delay_s
        How far above baseline, and how big, a spike must be.
    gap
        Spikes closer than this join one incident.
    gap_buckets
        Quiet buckets allowed inside one spike.
    quiet
        A signature silent this long ends a precursor trickle.
    lookback
        How long before an onset a change is still a candidate.
    change_window, change_before
        The rate in the ``change_window`` after a change is compared with the rate in
        the ``change_before`` before it (short, so that a change made while errors were
        climbing is compared with where they stood).
    precursor_window
        How soon after a change a precursor trickle must begin to be credited to it.
    tau
        Time scale of the closeness to the onset in the score.
    examples
        ``file:line`` examples kept per spike.
    spike_top
        Changes kept per spike in ``spike_contributors``.
    since, until
        The window to report (a datetime, or text such as ``"2023-03-14 17:00"``): the
        incidents that overlap it, whole (from their start to their recovery, even past
        ``until``), with their spikes and ranked changes, the changes made in it, and
        the series' buckets in it. Baselines and change histories still use the data
        before the window, so a window never splits an incident or makes an earlier
        change look new; a note says when too little data lies before it.

    Returns
    -------
    Analysis
    """
    settings = {
        "bucket": bucket,
        "window": window,
        "z": z,
        "min_bucket": min_bucket,
        "min_count": min_count,
        "min_delay_s": min_delay_s,
        "gap": gap,
        "gap_buckets": gap_buckets,
        "quiet": quiet,
        "lookback": lookback,
        "change_window": change_window,
        "change_before": change_before,
        "precursor_window": precursor_window,
        "tau": tau,
        "examples": examples,
        "spike_top": spike_top,
    }
    # a read's or an opened store's analysis of all its data is kept in the cache
    kept = frame.kept if isinstance(frame, Loaded) else None
    found = event_store.kept_analysis(kept, **settings) if kept else None
    if found is None:
        found = _analyze_all(_events(frame), **settings)
        if kept:
            event_store.keep_analysis(kept, found, **settings)
    return in_window(found, since=since, until=until, window=window)


def _analyze_all(
    events: pl.DataFrame,
    *,
    bucket: str | timedelta | None,
    window: str | timedelta,
    z: float,
    min_bucket: float,
    min_count: float,
    min_delay_s: float,
    gap: str | timedelta,
    gap_buckets: int,
    quiet: str | timedelta,
    lookback: str | timedelta,
    change_window: str | timedelta,
    change_before: str | timedelta,
    precursor_window: str | timedelta,
    tau: str | timedelta,
    examples: int,
    spike_top: int,
) -> Analysis:
    """:func:`analyze` of all of ``events``, before any window."""
    options = {
        "window": str(window),
        "z": z,
        "min_bucket": min_bucket,
        "min_count": min_count,
        "min_delay_s": min_delay_s,
        "gap": str(gap),
        "gap_buckets": gap_buckets,
        "quiet": str(quiet),
        "lookback": str(lookback),
        "change_window": str(change_window),
        "change_before": str(change_before),
        "precursor_window": str(precursor_window),
        "tau": str(tau),
    }
    # a clock gone wrong (1970, 2262) must not stretch the span, the buckets and the rates
    bulk = events.filter(times.in_window(times.bulk_window(events)) | pl.col("ts").is_null())
    start, end = _span(bulk)
    if bucket is None:
        dense = rates.dense_span(bulk)
        bucket = rates.choose_bucket(start, end, dense=dense) if start is not None else "1m"
    bucket_name = bucket if isinstance(bucket, str) else duration_text(bucket.total_seconds())
    options["bucket"] = bucket_name
    counts = rates.signature_counts(bulk, bucket=bucket)
    pods = pod_nodes(events)
    job_table = rates.jobs(bulk, pods=pods)
    series = pl.concat(
        [rates.log_series(counts), rates.job_series(job_table, bucket=bucket)],
        how="vertical",
    )
    flagged = spikes.flag_buckets(
        series,
        bucket=bucket,
        window=window,
        z=z,
        min_bucket=min_bucket,
        min_count=min_count,
        min_delay_s=min_delay_s,
        start=start,
        end=end,
        covered_from=rates.source_starts(bulk),
    )
    found = spikes.find_spikes(
        flagged, bucket=bucket, gap_buckets=gap_buckets, min_count=min_count, job_table=job_table
    )
    described = spikes.describe_spikes(
        found, events, job_table=job_table, examples=examples, quiet=quiet
    )
    grouped = inc.group_incidents(described, gap=gap)
    incidents = inc.incident_table(
        grouped,
        flagged,
        bucket=bucket,
        gap=gap,
        frame=events,
        job_table=job_table,
    )
    changes = contrib.change_events(events)
    diffs = contrib.signature_diffs(events, changes, window=change_window)
    incident_targets = contrib.incident_targets(incidents, grouped)
    spike_targets = contrib.spike_targets(grouped)
    signatures = {(s.source, s.template) for t in incident_targets for s in t.signatures}
    shared = {
        "lookback": lookback,
        "window": change_window,
        "before_window": change_before,
        "precursor_window": precursor_window,
        "tau": tau,
        "diffs": diffs,
        "population": contrib.host_population(events, pods=pods),
        "namespaces": contrib.program_namespaces(events),
        "counter": contrib.RowCounter(events, signatures, pods=pods),
        "pods": pods,
    }
    ranked = contrib.rank_changes(incident_targets, changes, events, **shared)
    per_spike = contrib.rank_changes(
        spike_targets, changes, events, keep=spike_top, id_name="spike_id", **shared
    )
    incidents = _with_precursor_and_mitigation(incidents, ranked)
    found = Analysis(
        incidents=incidents,
        spikes=grouped.select("incident_id", *[c for c in grouped.columns if c != "incident_id"])
        if grouped.height
        else grouped.with_columns(incident_id=pl.lit(None, pl.UInt32)),
        contributors=ranked,
        spike_contributors=per_spike,
        changes=changes,
        diffs=diffs,
        series=flagged,
        job_rates=rates.job_buckets(job_table, bucket=bucket, by=("source", "executor")),
        bucket=bucket_name,
        options=options,
        data_start=start,
    )
    return found


def in_window(
    found: Analysis,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    window: str | timedelta | None = None,
) -> Analysis:
    """``found``, the analysis of all the data, reported for the window from ``since`` to
    ``until`` (:func:`narrowed`), with a note when too little data lies before it for
    the baselines, which look back ``window`` (the analysis' own when not given). One
    analysis serves any window: a second report of another window needs no other."""
    since, until = _moment(since), _moment(until)
    if since is None and until is None:
        return found
    window = window if window is not None else found.options["window"]
    notes = window_notes(found.data_start, since, window=window)
    return narrowed(found, since=since, until=until, notes=notes)


def _moment(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        from timeline.when import parse_when

        return parse_when(value)
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def window_notes(
    first: datetime | None,
    since: datetime | None,
    *,
    window: str | timedelta,
) -> tuple[str, ...]:
    """What to say about the data before a window that starts at ``since``, given that
    the data begins at ``first`` and baselines look back ``window``.

    >>> from datetime import datetime, UTC
    >>> window_notes(datetime(2023, 3, 14, 12, tzinfo=UTC), datetime(2023, 3, 14, 17, tzinfo=UTC),
    ...              window="24h")[0][:62]
    'only 5h of data before the window (from 2023-03-14 17:00 UTC):'
    """
    if since is None or first is None:
        return ()
    before = (since - first).total_seconds()
    need = to_timedelta(window).total_seconds()
    if before <= 0:
        return (
            f"no data before the window (from {since:%Y-%m-%d %H:%M} UTC): baselines are "
            "learned inside it, so trouble at its start may be taken as normal",
        )
    if before < need:
        return (
            f"only {duration_text(before)} of data before the window (from "
            f"{since:%Y-%m-%d %H:%M} UTC): baselines look back {duration_text(need)}, so "
            "early spikes are judged against a short history",
        )
    return ()


def narrowed(
    found: Analysis,
    *,
    since: datetime | None,
    until: datetime | None,
    notes: tuple[str, ...] = (),
) -> Analysis:
    """``found`` reported for the window only: the incidents that overlap it (whole, with
    their spikes and ranked changes), the changes made in it or ranked for them, and the
    series' buckets in it."""

    def overlaps(first: str, last: str) -> pl.Expr:
        keep = pl.lit(True)
        if since is not None:
            keep = keep & (pl.col(last) >= since)
        if until is not None:
            keep = keep & (pl.col(first) <= until)
        return keep

    incidents = found.incidents.filter(
        overlaps("onset", "recovery") | (pl.col("ongoing") & overlaps("onset", "logs_end"))
    )
    kept = incidents["incident_id"].implode()
    spikes = found.spikes.filter(pl.col("incident_id").is_in(kept))
    contributors = found.contributors.filter(pl.col("incident_id").is_in(kept))
    changes = found.changes.filter(
        overlaps("ts", "ts") | pl.col("change_id").is_in(contributors["change_id"].implode())
    )
    return replace(
        found,
        incidents=incidents,
        spikes=spikes,
        contributors=contributors,
        spike_contributors=found.spike_contributors.filter(
            pl.col("spike_id").is_in(spikes["spike_id"].implode())
        ),
        changes=changes,
        diffs=found.diffs.filter(pl.col("change_id").is_in(changes["change_id"].implode())),
        series=found.series.filter(overlaps("bucket", "bucket")),
        job_rates=found.job_rates.filter(overlaps("bucket", "bucket")),
        options={
            **found.options,
            "since": None if since is None else str(since),
            "until": None if until is None else str(until),
        },
        notes=(*found.notes, *notes),
    )


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _change_text(row: dict[str, Any]) -> str:
    """``2023-03-14 17:40 upgrade daemonset/kube-system/kube-proxy``."""
    return f"{row['ts']:%Y-%m-%d %H:%M} {row['change_type']} {row['target']}"


def _plural(n: int, word: str) -> str:
    """``1 host``, ``12 hosts``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _plain(value: Any) -> Any:
    """``value`` with every datetime as ISO 8601 UTC text, for JSON."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _relative(seconds: float | None, positive: str, negative: str) -> str:
    """``'10m before'`` for 600 s, ``'5s after'`` for -5 s (with positive='before')."""
    if seconds is None:
        return "?"
    word = positive if seconds >= 0 else negative
    return f"{duration_text(abs(seconds))} {word}"


def _events(frame: Any) -> pl.DataFrame:
    """The rows to analyse: a frame as given; of a LazyFrame (``timeline.scan``) or of a
    ``Loaded`` whose rows are not in memory, only those the analysis keeps
    (:func:`analysis_frame`), which give the same findings without holding every row."""
    if isinstance(frame, Loaded):
        frame = kept_rows(frame).events
    elif isinstance(getattr(frame, "events", None), pl.DataFrame):  # a result of one's own
        frame = frame.events
    if isinstance(frame, pl.LazyFrame):
        frame = analysis_frame(frame)
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"analyze() takes an event frame, not {type(frame).__name__}")
    if frame.select(pl.col("host").is_null().any()).item():
        frame = with_pod_log_origin(frame).collect()
    return frame


def _span(events: pl.DataFrame) -> tuple[datetime | None, datetime | None]:
    span = events.select(lo=pl.col("ts").min(), hi=pl.col("ts").max()).row(0)
    return span[0], span[1]


def _with_precursor_and_mitigation(incidents: pl.DataFrame, ranked: pl.DataFrame) -> pl.DataFrame:
    """Name on each incident the change its precursor began after, and its first
    mitigation, from the ranked changes."""
    precursor = (
        ranked.filter(pl.col("role") == "precursor")
        .sort("incident_id", "rank")
        .group_by("incident_id", maintain_order=True)
        .agg(
            precursor_change_id=pl.col("change_id").first(),
            precursor_change=pl.col("description").first(),
            precursor_start=pl.col("precursor_start").first(),
        )
    )
    trigger = ranked.filter(pl.col("rank") == 1).select(
        "incident_id",
        top_change_id=pl.col("change_id"),
        top_change=pl.col("description"),
        top_role=pl.col("role"),
    )
    mitigation = (
        ranked.filter(pl.col("role") == "mitigation")
        .sort("incident_id", "ts")
        .group_by("incident_id", maintain_order=True)
        .agg(
            first_mitigation_change_id=pl.col("change_id").first(),
            first_mitigation_change=pl.col("description").first(),
        )
    )
    out = incidents
    for table in (trigger, precursor, mitigation):
        out = out.join(table.cast({"incident_id": pl.UInt32}), on="incident_id", how="left")
    return out

"""The analysis in one call: from an event frame to incidents and their contributing changes.

``analyze(frame)`` runs the small functions of :mod:`timeline.analysis.rates`,
:mod:`timeline.analysis.spikes`, :mod:`timeline.analysis.incidents` and
:mod:`timeline.analysis.contributors` in order and returns an :class:`Analysis`, whose
tables are polars DataFrames (``.to_pandas()`` gives pandas) and which shows itself as a
readable summary in a terminal (``str``) and in Jupyter (``_repr_html_``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any

import polars as pl

from timeline.analysis import contributors as contrib
from timeline.analysis import incidents as inc
from timeline.analysis import rates, spikes
from timeline.analysis.incidents import duration_text
from timeline.reading.pods import pod_nodes, tells_pod_node, with_pod_log_origin

__all__ = ["Analysis", "analysis_frame", "analyze"]

#: Levels whose rows the analysis counts one by one (others only make up populations).
PROBLEM_LEVELS = ["warning", "error", "critical"]


def analysis_frame(events: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """The rows and columns the analysis reads, in time order.

    The analysis counts warnings and worse, changes and CI jobs one by one; of the other
    log rows it only needs to know who wrote what, and when (which hosts run a program,
    for comparing touched hosts with untouched ones). So those are kept as one row per
    source, host, component, signature, level and hour (the first, with its own time,
    file and line), without message or ``attrs``; the records that tie a pod to its node
    are kept whole. Rows from pod logs that name no host take the pod as their host and
    the container as their program (:func:`timeline.reading.pods.with_pod_log_origin`).
    Reading an event store this way holds what the analysis keeps, not the whole input.

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
    events = with_pod_log_origin(events)
    record = pl.col("kind") != "log"
    pod_node = tells_pod_node()
    counted = record | pl.col("level").is_in(PROBLEM_LEVELS).fill_null(False) | pod_node
    columns = events.collect_schema().names()
    keys = ["source", "host", "component", "template", "level"]
    presence = (
        events.filter(~counted)
        .select(*keys, "ts", "kind", "file", "line")
        .with_columns(_hour=pl.col("ts").dt.truncate("1h"))
        .group_by(*keys, "_hour")
        .agg(pl.col("ts", "kind", "file", "line").sort_by("line").first())
        .with_columns(message=pl.lit(None, pl.String), attrs=pl.lit("{}"))
        .select(columns)
    )
    kept = events.filter(counted).with_columns(
        attrs=pl.when(record | pod_node).then(pl.col("attrs")).otherwise(pl.lit("{}"))
    )
    # apart, not with collect_all: a plan shared by both would be held whole in memory
    both = [kept.select(columns).collect(engine="streaming"), presence.collect(engine="streaming")]
    return pl.concat(both).sort("ts", "file", "line", "kind", nulls_last=True, maintain_order=True)


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

    def top(self, incident_id: int, n: int = 3) -> pl.DataFrame:
        """The ``n`` best-ranked changes for one incident; when no change explains it
        (none is ranked), the changes ``considered, no evidence``."""
        mine = self.contributors.filter(pl.col("incident_id") == incident_id)
        ranked = mine.filter(pl.col("rank") <= n)
        if ranked.height or mine.filter(pl.col("rank").is_not_null()).height:
            return ranked
        return mine.filter(pl.col("role") == contrib.CONSIDERED).sort("ts").head(n)

    def to_dict(self) -> dict[str, Any]:
        """The findings as plain data (lists of dicts; times as datetimes), for JSON."""
        return {
            "bucket": self.bucket,
            "options": dict(self.options),
            "incidents": self.incidents.to_dicts(),
            "spikes": self.spikes.to_dicts(),
            "contributors": self.contributors.to_dicts(),
            "changes": self.changes.to_dicts(),
            "diffs": self.diffs.to_dicts(),
        }

    def summary_lines(self, *, top: int = 3) -> list[tuple[str, str]]:
        """The summary as ``(kind, text)`` pairs; ``kind`` is ``title``, ``line``,
        ``item`` or ``detail``. ``__str__`` and ``_repr_html_`` both render these."""
        out: list[tuple[str, str]] = []
        n = self.incidents.height
        out.append(
            (
                "title",
                f"{n} incident{'s' if n != 1 else ''}, {self.spikes.height} spikes, "
                f"{self.changes.height} changes (buckets of {self.bucket})",
            )
        )
        for incident in self.incidents.iter_rows(named=True):
            iid = incident["incident_id"]
            out.append(
                (
                    "title",
                    f"Incident {iid}: {incident['onset']:%Y-%m-%d %H:%M} to "
                    f"{incident['recovery']:%Y-%m-%d %H:%M} UTC "
                    f"({duration_text(incident['duration_s'])}), {incident['n_spikes']} spikes "
                    f"on {incident['n_hosts']} hosts",
                )
            )
            out.append(
                (
                    "line",
                    f"phases: onset {incident['onset']:%H:%M}, escalation "
                    f"{incident['escalation']:%H:%M}, peak {incident['peak']:%H:%M}, "
                    f"mitigation {incident['mitigation']:%H:%M}, recovery "
                    f"{incident['recovery']:%H:%M}",
                )
            )
            out.append(("line", f"order: {incident['order']}"))
            latency = (
                f"first sign {incident['first_anomaly_at']:%m-%d %H:%M} "
                f"({_short(incident['first_anomaly'])}), "
                f"{_relative(incident['warning_lead_s'], 'before', 'after')} the onset"
            )
            if incident["ci_impact_at"] is not None:
                latency += (
                    f"; CI felt it at {incident['ci_impact_at']:%m-%d %H:%M} "
                    f"({_relative(incident['ci_lag_s'], 'after', 'before')} the onset: "
                    f"{_short(incident['ci_impact'])})"
                )
            out.append(("line", latency))
            if incident.get("precursor_change"):
                out.append(("line", f"precursor began after: {incident['precursor_change']}"))
            ranked = self.contributors.filter(pl.col("incident_id") == iid)
            if ranked.height and ranked["rank"].is_null().all():
                considered = ranked.filter(pl.col("role") == contrib.CONSIDERED).sort("ts")
                names = "; ".join(considered["description"].head(5).to_list()) or "none"
                out.append(
                    (
                        "line",
                        "no change explains this incident: none has evidence beyond chance; "
                        f"considered, no evidence: {names}",
                    )
                )
            related = ranked.filter(
                pl.col("rank").is_not_null()
                & ~pl.col("role").is_in(["unrelated", "target not found"])
            )
            for row in related.head(top).iter_rows(named=True):
                out.append(
                    (
                        "item",
                        f"#{row['rank']} [{row['role']}] score {row['score']:.2f}: "
                        f"{row['description']}",
                    )
                )
                for sentence in row["evidence"]:
                    out.append(("detail", sentence))
            shown = related.head(top)["rank"]
            others = ranked.filter(
                ~pl.col("rank").is_in(shown.implode())
                & pl.col("role").is_in(["made worse", "mitigation"])
            )
            for role in ("made worse", "mitigation"):
                listed = others.filter(pl.col("role") == role).sort("ts")
                if listed.height:
                    names = "; ".join(
                        f"{r['ts']:%m-%d %H:%M} {r['change_type']} {r['target']}"
                        for r in listed.head(6).iter_rows(named=True)
                    )
                    more = listed.height - 6
                    out.append(
                        ("line", f"{role}: {names}" + (f" and {more} more" if more > 0 else ""))
                    )
            unrelated = ranked.filter(pl.col("role") == "unrelated")
            if unrelated.height:
                out.append(
                    (
                        "line",
                        f"{unrelated.height} other change(s) in the {self.options['lookback']} "
                        "before and during it touch nothing that failed "
                        f"(e.g. {unrelated['target'][0]})",
                    )
                )
        return out

    def __str__(self) -> str:
        indent = {"title": "", "line": "  ", "item": "  ", "detail": "      - "}
        return "\n".join(indent[kind] + text for kind, text in self.summary_lines())

    def __repr__(self) -> str:
        return (
            f"Analysis({self.incidents.height} incidents, {self.spikes.height} spikes, "
            f"{self.contributors.height} ranked changes, bucket={self.bucket!r})"
        )

    def _repr_html_(self) -> str:
        html = ["<div class='timeline-analysis'>"]
        in_list = False
        for kind, text in self.summary_lines():
            if kind == "detail":
                if not in_list:
                    html.append("<ul>")
                    in_list = True
                html.append(f"<li>{escape(text)}</li>")
                continue
            if in_list:
                html.append("</ul>")
                in_list = False
            tag = {"title": "h4", "line": "p", "item": "p"}[kind]
            content = f"<b>{escape(text)}</b>" if kind == "item" else escape(text)
            html.append(f"<{tag}>{content}</{tag}>")
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
) -> Analysis:
    """Find spikes, incidents and the changes that contributed, in an event frame.

    Parameters
    ----------
    frame
        An event frame (``timeline.load``), a LazyFrame of one, or a ``timeline.Loaded``.
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

    Returns
    -------
    Analysis
    """
    events = _events(frame)
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
    start, end = _span(events)
    if bucket is None:
        bucket = rates.choose_bucket(start, end) if start is not None else "1m"
    bucket_name = bucket if isinstance(bucket, str) else duration_text(bucket.total_seconds())
    options["bucket"] = bucket_name
    counts = rates.signature_counts(events, bucket=bucket)
    job_table = rates.jobs(events)
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
    )
    found = spikes.find_spikes(flagged, bucket=bucket, gap_buckets=gap_buckets, min_count=min_count)
    described = spikes.describe_spikes(
        found, events, job_table=job_table, examples=examples, quiet=quiet
    )
    grouped = inc.group_incidents(described, gap=gap)
    incidents = inc.incident_table(
        grouped, flagged, bucket=bucket, gap=gap, frame=events, job_table=job_table
    )
    changes = contrib.change_events(events)
    diffs = contrib.signature_diffs(events, changes, window=change_window)
    incident_targets = contrib.incident_targets(incidents, grouped)
    spike_targets = contrib.spike_targets(grouped)
    signatures = {(s.source, s.template) for t in incident_targets for s in t.signatures}
    pods = pod_nodes(events)
    shared = {
        "lookback": lookback,
        "window": change_window,
        "before_window": change_before,
        "precursor_window": precursor_window,
        "tau": tau,
        "diffs": diffs,
        "population": contrib.host_population(events, pods=pods),
        "counter": contrib.RowCounter(events, signatures, pods=pods),
        "pods": pods,
    }
    ranked = contrib.rank_changes(incident_targets, changes, events, **shared)
    per_spike = contrib.rank_changes(
        spike_targets, changes, events, keep=spike_top, id_name="spike_id", **shared
    )
    incidents = _with_precursor_and_mitigation(incidents, ranked)
    return Analysis(
        incidents=incidents,
        spikes=grouped.select("incident_id", *[c for c in grouped.columns if c != "incident_id"])
        if grouped.height
        else grouped.with_columns(incident_id=pl.lit(None, pl.UInt32)),
        contributors=ranked,
        spike_contributors=per_spike,
        changes=changes,
        diffs=diffs,
        series=flagged,
        job_rates=rates.job_rates(events, bucket=bucket),
        bucket=bucket_name,
        options=options,
    )


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _relative(seconds: float | None, positive: str, negative: str) -> str:
    """``'10m before'`` for 600 s, ``'5s after'`` for -5 s (with positive='before')."""
    if seconds is None:
        return "?"
    word = positive if seconds >= 0 else negative
    return f"{duration_text(abs(seconds))} {word}"


def _events(frame: Any) -> pl.DataFrame:
    if hasattr(frame, "events") and isinstance(frame.events, pl.DataFrame):
        frame = frame.events
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
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

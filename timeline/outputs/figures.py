"""The interactive timeline: one lane per source, CI delays, changes as markers, spikes shaded.

It plots aggregates only (counts per bucket, one marker per change), so a ten-million-line
input still gives a figure of a few thousand points that opens at once in a browser. Hover
text is escaped: log text never becomes markup.
"""

from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from timeline.analysis import Analysis, rates
from timeline.outputs.safe import plotly_text as escape

#: The most points the figure draws; buckets are widened until it fits.
MAX_POINTS = 20_000

#: Marker symbol and colour per change type; inferred changes are drawn hollow.
CHANGE_STYLE: dict[str, tuple[str, str]] = {
    "upgrade": ("triangle-up", "#6a1b9a"),
    "rollback": ("triangle-down", "#ad1457"),
    "restart": ("circle", "#1565c0"),
    "reboot": ("square", "#00838f"),
    "config": ("diamond", "#ef6c00"),
    "deploy": ("star", "#2e7d32"),
    "scale": ("hexagon", "#558b2f"),
    "create": ("cross", "#455a64"),
    "delete": ("x", "#455a64"),
    "other": ("circle-open", "#607d8b"),
}
LEVEL_COLOURS = {"warning": "#f0a030", "error": "#d32f2f", "critical": "#7f0000"}
EXECUTOR_COLOURS = ["#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32", "#5d4037"]


def timeline_figure(
    events: pl.DataFrame,
    analysis: Analysis,
    *,
    by_host: bool = False,
    title: str | None = None,
) -> go.Figure:
    """The timeline of ``events`` with what ``analysis`` found.

    Parameters
    ----------
    events
        The event frame.
    analysis
        What :func:`timeline.analyze` returned for it.
    by_host
        One lane per source and host instead of one per source.
    title
        A title over the figure.
    """
    bucket = _plot_bucket(events, analysis.bucket, by_host=by_host)
    lanes = _lane_counts(events, bucket=bucket, by_host=by_host)
    lane_names = lanes["lane"].unique(maintain_order=True).to_list()
    job_table = rates.job_rates(events, bucket=bucket, by=("executor",))
    rows = ["changes", *lane_names] + (["CI queue delay p95"] if job_table.height else [])
    heights = [1.1] + [1.0] * len(lane_names) + ([1.4] if job_table.height else [])
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.04, 0.3 / max(len(rows), 1)),
        row_heights=heights,
        subplot_titles=[escape(r) for r in rows],
    )
    _add_changes(fig, analysis.changes, row=1)
    for i, lane in enumerate(lane_names, start=2):
        _add_lane(fig, lanes.filter(pl.col("lane") == lane), row=i)
    if job_table.height:
        _add_jobs(fig, job_table, row=len(rows))
    _shade(fig, analysis)
    fig.update_layout(
        title=escape(title) if title else None,
        height=170 * len(rows) + 120,
        barmode="stack",
        hovermode="closest",
        legend={"orientation": "h", "y": -0.08},
        margin={"l": 70, "r": 20, "t": 60 if title else 30, "b": 40},
        template="plotly_white",
    )
    fig.update_xaxes(rangeslider={"visible": True, "thickness": 0.04}, row=len(rows), col=1)
    fig.update_xaxes(type="date")
    return fig


def _plot_bucket(events: pl.DataFrame, bucket: str, *, by_host: bool) -> str:
    """The analysis bucket, widened until every lane fits in ``MAX_POINTS`` points."""
    times = events["ts"].drop_nulls()
    if times.is_empty():
        return bucket
    span = times.max() - times.min()
    keys = ["source", "host"] if by_host else ["source"]
    lanes = max(events.filter(pl.col("kind") == "log").select(keys).n_unique(), 1)
    width = rates.to_timedelta(bucket)
    while span / width * (lanes * 2 + 8) > MAX_POINTS:
        width *= 2
    return rates.every(width)


def _lane_counts(events: pl.DataFrame, *, bucket: str, by_host: bool) -> pl.DataFrame:
    """Warnings and errors per lane, level and bucket, with the commonest signature and
    one example ``file:line`` for the hover text."""
    lane = (
        pl.concat_str(pl.col("source"), pl.lit(" · "), pl.col("host").fill_null("?"))
        if by_host
        else pl.col("source")
    )
    return (
        rates.problem_rows(events)
        .with_columns(lane=lane, bucket=pl.col("ts").dt.truncate(rates.every(bucket)))
        .group_by("lane", "level", "bucket")
        .agg(
            count=pl.len(),
            hosts=pl.col("host").n_unique(),
            template=pl.col("template").mode().first(),
            example=pl.format("{}:{}", pl.col("file").first(), pl.col("line").first()),
        )
        .sort("lane", "level", "bucket")
        .collect()
    )


def _add_lane(fig: go.Figure, lane: pl.DataFrame, *, row: int) -> None:
    for level in ("warning", "error", "critical"):
        part = lane.filter(pl.col("level") == level)
        if part.is_empty():
            continue
        hover = [
            f"{escape(level)}: {c:,} on {h} host{'s' if h != 1 else ''}<br>"
            f"{escape(_short(t))}<br><i>{escape(e)}</i>"
            for c, h, t, e in part.select("count", "hosts", "template", "example").iter_rows()
        ]
        fig.add_trace(
            go.Bar(
                x=part["bucket"].to_list(),
                y=part["count"].to_list(),
                name=level,
                legendgroup=level,
                showlegend=row == 2,
                marker_color=LEVEL_COLOURS[level],
                hovertext=hover,
                hoverinfo="x+text",
            ),
            row=row,
            col=1,
        )
    fig.update_yaxes(title_text="per bucket", row=row, col=1)


def _add_jobs(fig: go.Figure, table: pl.DataFrame, *, row: int) -> None:
    for i, (executor,) in enumerate(table.select("executor").unique().sort("executor").rows()):
        part = table.filter(pl.col("executor") == executor).sort("bucket")
        hover = [
            f"{escape(str(executor))}: {j:,} jobs, p95 wait {p:,.0f}s, median {m:,.0f}s, "
            f"{f:.0%} failed"
            for j, p, m, f in part.select(
                "jobs", "p95_queue_delay_s", "median_queue_delay_s", "failure_rate"
            )
            .fill_null(0)
            .iter_rows()
        ]
        fig.add_trace(
            go.Scatter(
                x=part["bucket"].to_list(),
                y=part["p95_queue_delay_s"].to_list(),
                mode="lines",
                name=escape(f"{executor} p95 wait"),
                line={"color": EXECUTOR_COLOURS[i % len(EXECUTOR_COLOURS)], "width": 1.6},
                hovertext=hover,
                hoverinfo="x+text",
            ),
            row=row,
            col=1,
        )
    fig.update_yaxes(title_text="seconds", type="log", row=row, col=1)


def _add_changes(fig: go.Figure, changes: pl.DataFrame, *, row: int) -> None:
    for change_type, part in changes.group_by("change_type", maintain_order=True):
        symbol, colour = CHANGE_STYLE.get(str(change_type[0]), CHANGE_STYLE["other"])
        for inferred, sub in part.group_by("inferred", maintain_order=True):
            hollow = bool(inferred[0])
            hover = [
                f"<b>{escape(str(ct))}</b> {escape(str(tg))}<br>{escape(_short(d, 120))}<br>"
                f"<i>{'inferred from logs' if hollow else 'recorded'}: "
                f"{escape(', '.join((ex or [])[:2]))}</i>"
                for ct, tg, d, ex in sub.select(
                    "change_type", "target", "description", "examples"
                ).iter_rows()
            ]
            fig.add_trace(
                go.Scatter(
                    x=sub["ts"].to_list(),
                    y=[escape(change_type[0])] * sub.height,
                    mode="markers",
                    name=escape(f"{change_type[0]}{' (inferred)' if hollow else ''}"),
                    marker={
                        "symbol": symbol + ("-open" if hollow and "open" not in symbol else ""),
                        "color": colour,
                        "size": 11,
                        "line": {"width": 1.5, "color": colour},
                    },
                    hovertext=hover,
                    hoverinfo="x+text",
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(type="category", categoryorder="category descending", row=row, col=1)


def _shade(fig: go.Figure, analysis: Analysis) -> None:
    """Each incident shaded across every lane from its onset to its recovery, labelled."""
    for inc in analysis.incidents.iter_rows(named=True):
        start, end = inc["onset"], inc["recovery"]
        if start is None or end is None:
            continue
        fig.add_vrect(
            x0=start,
            x1=max(end, start + timedelta(minutes=1)),
            fillcolor="#d32f2f",
            opacity=0.07,
            line_width=0,
            annotation_text=f"incident {inc['incident_id']}",
            annotation_position="top left",
            annotation_font_size=11,
        )


def _short(text: str | None, limit: int = 90) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"

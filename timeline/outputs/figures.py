"""The interactive timeline: one lane per source, CI delays, changes as markers, spikes shaded.

It plots aggregates only (counts per bucket, one marker per change), so a ten-million-line
input still gives a figure of a few thousand points that opens at once in a browser. Hover
text is escaped: log text never becomes markup.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from timeline.analysis import Analysis, rates, report_rows
from timeline.outputs.safe import plotly_text as escape
from timeline.outputs.words import kinds_text, on_hosts, plural, relative_path
from timeline.reading.loader import Loaded

#: Hover text is wrapped at this many characters, so a box never spans the plot.
HOVER_WIDTH = 60

#: The most points the figure draws; buckets are widened until it fits.
MAX_POINTS = 20_000

#: Marker symbol and colour per change type; inferred changes are drawn hollow.
CHANGE_STYLE: dict[str, tuple[str, str]] = {
    "upgrade": ("triangle-up", "#6a1b9a"),
    "rollback": ("triangle-down", "#ad1457"),
    "restart": ("circle", "#1565c0"),
    "reboot": ("square", "#00838f"),
    "silence": ("line-ew", "#37474f"),
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
    events: pl.DataFrame | Loaded,
    analysis: Analysis,
    *,
    by_host: bool = False,
    title: str | None = None,
    root: str = "",
) -> go.Figure:
    """The timeline of ``events`` with what ``analysis`` found.

    Parameters
    ----------
    events
        The event frame, or a ``timeline.Loaded`` (drawn from the rows the analysis
        keeps, :func:`timeline.analysis.kept_rows`, when its rows are not in memory).
    analysis
        What :func:`timeline.analyze` returned for it.
    by_host
        One lane per source and host instead of one per source.
    title
        A title over the figure.
    root
        Paths in hover text are shown relative to this folder.

    The y axes of the lanes switch between linear and log scale with the buttons above the
    figure (a precursor trickle of a few lines an hour shows on the log scale), the
    best-ranked change of each incident is a dashed line across every lane, and each
    precursor's first line is marked.
    """
    events = report_rows(events)
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
    _add_changes(fig, analysis.changes, row=1, root=root)
    _add_lanes(fig, lanes, lane_names, first_row=2, root=root, title="per bucket")
    if job_table.height:
        _add_jobs(fig, job_table, row=len(rows))
    _shade(fig, analysis)
    _mark_top_changes(fig, analysis)
    _mark_precursors(fig, analysis)
    _layout(fig, rows=len(rows), title=title, log_rows=range(2, len(lane_names) + 2))
    return fig


def _layout(fig: go.Figure, *, rows: int, title: str | None, log_rows) -> None:
    """Legend above the plot (clear of the range slider), a linear/log switch for the
    lanes, bounded hover boxes."""
    axes = [f"yaxis{'' if r == 1 else r}.type" for r in log_rows]
    fig.update_layout(
        title=escape(title) if title else None,
        height=170 * rows + 170,
        barmode="stack",
        hovermode="closest",
        hoverlabel={"align": "left", "font_size": 12},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
        margin={"l": 70, "r": 20, "t": 160 if title else 130, "b": 40},
        template="plotly_white",
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "xanchor": "left",
                "y": 1.0,
                "yanchor": "bottom",
                "pad": {"b": 66},
                "showactive": True,
                "active": 0,
                "buttons": [
                    {
                        "label": "lanes: linear",
                        "method": "relayout",
                        "args": [dict.fromkeys(axes, "linear")],
                    },
                    {
                        "label": "log scale",
                        "method": "relayout",
                        "args": [dict.fromkeys(axes, "log")],
                    },
                ],
            }
        ]
        if axes
        else [],
    )
    fig.update_xaxes(rangeslider={"visible": True, "thickness": 0.04}, row=rows, col=1)
    fig.update_xaxes(type="date")


def _top_incident_id(analysis: Analysis) -> int | None:
    """The incident a review is about: the longest one."""
    if analysis.incidents.is_empty():
        return None
    return analysis.incidents.sort(["duration_s", "incident_id"], descending=[True, False])[
        "incident_id"
    ][0]


def _mark_top_changes(fig: go.Figure, analysis: Analysis) -> None:
    """The best-ranked change of the longest incident as a dashed line across every lane."""
    incident = _top_incident_id(analysis)
    if incident is None:
        return
    top = analysis.contributors.filter(
        (pl.col("incident_id") == incident) & (pl.col("rank") == 1) & (pl.col("score") > 0)
    )
    for row in top.iter_rows(named=True):
        name = row["target"].rsplit("/", 1)[-1]
        _across(
            fig,
            row["ts"],
            label=f"#1 change: {row['change_type']} {name} {row['ts']:%H:%M}",
            colour="#6a1b9a",
            y=0.97,
            line={"color": "#6a1b9a", "width": 1.5, "dash": "dash"},
        )


def _mark_precursors(fig: go.Figure, analysis: Analysis) -> None:
    """Where each incident's precursor trickle began, as a dotted line across every lane
    (switch the lanes to log scale to see the trickle itself)."""
    if "precursor_start" not in analysis.incidents.columns:
        return
    rows = analysis.incidents.filter(pl.col("precursor_start").is_not_null())
    for row in rows.iter_rows(named=True):
        _across(
            fig,
            row["precursor_start"],
            label=f"precursor of incident {row['incident_id'] + 1} begins "
            f"{row['precursor_start']:%m-%d %H:%M} (log scale shows it)",
            colour="#b26a00",
            y=0.94,
            line={"color": "#b26a00", "width": 1.2, "dash": "dot"},
        )


def host_figure(
    events: pl.DataFrame | Loaded, analysis: Analysis, incident_id: int, *, root: str = ""
) -> go.Figure | None:
    """One lane per host of an incident, from two hours before its onset to its recovery,
    with the changes made to each host: where errors stop node by node, and after what.
    ``events`` as for :func:`timeline_figure`.

    Returns ``None`` when the incident has no log hosts.
    """
    events = report_rows(events)
    incident = analysis.incidents.filter(pl.col("incident_id") == incident_id)
    if incident.is_empty():
        return None
    row = incident.row(0, named=True)
    start = row["onset"] - timedelta(hours=2)
    end = row["recovery"] or row.get("logs_end") or row["onset"]
    # lazy, so that only the columns the lanes count are copied out of the window
    window = events.lazy().filter(pl.col("ts").is_between(start, end))
    hosts = (
        rates.problem_rows(window)
        .filter(pl.col("host").is_in(list(row["hosts"] or [])))
        .select("host")
        .unique()
        .sort("host")
        .collect()["host"]
        .to_list()
    )
    if not hosts:
        return None
    bucket = _plot_bucket(
        window.select("ts", "kind", "source", "host").collect(), analysis.bucket, by_host=True
    )
    lanes = _lane_counts(
        window.filter(pl.col("host").is_in(hosts)), bucket=bucket, by_host=True, host_only=True
    )
    names = lanes["lane"].unique(maintain_order=True).to_list()
    shapes, labels = _host_change_marks(analysis.changes, names, start=start, end=end)
    grid = _lane_grid(names, spacing=min(0.02, 0.3 / max(len(names), 1)), x_range=[start, end])
    return go.Figure(
        data=_lane_traces(lanes, names, first_row=1, root=root),
        layout={
            **grid,
            "annotations": [*grid["annotations"], *labels],
            "shapes": shapes,
            "height": 90 * len(names) + 120,
            "barmode": "stack",
            "showlegend": True,
            "hoverlabel": {"align": "left", "font_size": 12},
            "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
            "margin": {"l": 50, "r": 20, "t": 60, "b": 30},
            "template": "plotly_white",
        },
    )


def _lane_grid(names: list[str], *, spacing: float, x_range: list) -> dict:
    """The layout of one titled lane per name, top to bottom, every lane on the time
    axis of the bottom one: what ``make_subplots`` lays out, written as data in one go
    (plotly checks the whole figure again on every change made to it, lane by lane)."""
    count = len(names)
    height = (1 - spacing * (count - 1)) / count
    layout: dict = {"annotations": []}
    for row, name in enumerate(names, start=1):
        top = 1 - (row - 1) * (height + spacing)
        axis = "" if row == 1 else str(row)
        shared = {"matches": f"x{count}", "showticklabels": False} if row < count else {}
        layout[f"xaxis{axis}"] = {
            "anchor": f"y{axis}",
            "domain": [0.0, 1.0],
            "type": "date",
            "range": x_range,
            **shared,
        }
        layout[f"yaxis{axis}"] = {"anchor": f"x{axis}", "domain": [max(top - height, 0.0), top]}
        layout["annotations"].append(
            {
                "text": escape(name),
                "x": 0.5,
                "xanchor": "center",
                "xref": "paper",
                "y": top,
                "yanchor": "bottom",
                "yref": "paper",
                "showarrow": False,
                "font": {"size": 11},
            }
        )
    return layout


def _host_change_marks(
    changes: pl.DataFrame, lanes: list[str], *, start, end
) -> tuple[list[dict], list[dict]]:
    """The shapes and labels of the changes: in each host's lane, a labelled line where a
    change touched that host alone (or with one other); changes to the whole fleet are
    faint dotted lines across every lane."""
    short_hosts = pl.col("hosts").list.eval(pl.element().str.split(".").list.first())
    window = changes.filter(pl.col("ts").is_between(start, end))
    shapes = [
        _vertical_line(c["ts"], "x", "paper", {"color": "#9e9e9e", "width": 1, "dash": "dot"})
        for c in window.filter(pl.col("hosts").list.len() > 2).iter_rows(named=True)
    ]
    labels = []
    own = window.filter(pl.col("hosts").list.len() <= 2).with_columns(short=short_hosts)
    for i, lane in enumerate(lanes, start=1):
        axis = "" if i == 1 else str(i)
        mine = (
            own.filter(pl.col("short").list.contains(lane))
            .group_by(pl.col("ts").dt.truncate("1m").alias("at"), maintain_order=True)
            .agg(pl.col("change_type").unique().sort())
            .sort("at")
        )
        for n, (at, kinds) in enumerate(mine.iter_rows()):
            said = kinds_text(kinds)
            _, colour = CHANGE_STYLE.get(said.split("+")[0], CHANGE_STYLE["other"])
            shapes.append(
                _vertical_line(at, f"x{axis}", f"y{axis} domain", {"color": colour, "width": 2})
            )
            labels.append(
                {
                    "x": at,
                    "y": 1 - 0.3 * (n % 2),
                    "xref": f"x{axis}",
                    "yref": f"y{axis} domain",
                    "text": escape(f"{said} {at:%H:%M}"),
                    "showarrow": False,
                    "xanchor": "left",
                    "yanchor": "top",
                    "font": {"size": 11, "color": colour},
                    "bgcolor": "rgba(255,255,255,0.8)",
                }
            )
    return shapes, labels


def _vertical_line(at, xref: str, yref: str, line: dict) -> dict:
    return {
        "type": "line",
        "x0": at,
        "x1": at,
        "y0": 0,
        "y1": 1,
        "xref": xref,
        "yref": yref,
        "line": line,
    }


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


def _lane_counts(
    events: pl.DataFrame | pl.LazyFrame, *, bucket: str, by_host: bool, host_only: bool = False
) -> pl.DataFrame:
    """Warnings and errors per lane, level and bucket, with the commonest signature and
    one example ``file:line`` for the hover text."""
    host = pl.col("host").fill_null("?").str.split(".").list.first()
    if host_only:
        lane = host
    elif by_host:
        lane = pl.concat_str(pl.col("source"), pl.lit(" · "), host)
    else:
        lane = pl.col("source")
    keys = ["lane", "level", "bucket"]
    earliest = ["ts", "file", "line"]
    rows = rates.problem_rows(events).with_columns(
        lane=lane, bucket=pl.col("ts").dt.truncate(rates.every(bucket))
    )
    counts = rows.group_by(keys).agg(
        count=pl.len(),
        hosts=pl.col("host").n_unique(),
        example=pl.format(
            "{}:{}",
            pl.col("file").sort_by(earliest, nulls_last=True).first(),
            pl.col("line").sort_by(earliest, nulls_last=True).first(),
        ),
    )
    # the commonest template (the first in order among equals), counted rather than
    # gathered per group: a group's list of messages is what costs memory
    commonest = (
        rows.group_by(*keys, "template")
        .len()
        .sort([*keys, "len", "template"], descending=[False, False, False, True, False])
        .group_by(keys, maintain_order=True)
        .agg(pl.col("template").first())
    )
    return (
        counts.join(commonest, on=keys, how="left")
        .select(*keys, "count", "hosts", "template", "example")
        .sort(keys)
        .collect()
    )


def _add_lanes(
    fig: go.Figure,
    lanes: pl.DataFrame,
    names: list[str],
    *,
    first_row: int,
    root: str = "",
    title: str | None = None,
) -> None:
    """The lanes' bars (:func:`_lane_traces`), added at once, as plotly checks the whole
    figure on every call; ``title`` names each lane's y axis."""
    traces = _lane_traces(lanes, names, first_row=first_row, root=root)
    if traces:
        fig.add_traces(traces)
    if title:
        fig.update_layout(
            {
                _y_axis(row): {"title": {"text": title}}
                for row in range(first_row, first_row + len(names))
            }
        )


def _lane_traces(
    lanes: pl.DataFrame, names: list[str], *, first_row: int, root: str = ""
) -> list[dict]:
    """A stacked bar per level for each lane of ``names``, on the axes of one row each
    from ``first_row`` of a one-column figure, the legend with the first."""
    traces = []
    # split once: a filter per lane and level reads all the lanes' rows each time
    parts = lanes.partition_by("lane", "level", as_dict=True)
    for row, name in enumerate(names, start=first_row):
        axis = "" if row == 1 else str(row)
        for level in ("warning", "error", "critical"):
            part = parts.get((name, level))
            if part is None or part.is_empty():
                continue
            hover = [
                f"{escape(level)}: {c:,}{on_hosts(h)}<br>"
                f"{_wrapped(t)}<br><i>{_wrapped(_location(e, root))}</i>"
                for c, h, t, e in part.select("count", "hosts", "template", "example").iter_rows()
            ]
            traces.append(
                {
                    "type": "bar",
                    "x": part["bucket"].to_list(),
                    "y": part["count"].to_list(),
                    "name": level,
                    "legendgroup": level,
                    "showlegend": row == first_row,
                    "marker": {"color": LEVEL_COLOURS[level]},
                    "hovertext": hover,
                    "hoverinfo": "x+text",
                    "xaxis": f"x{axis}",
                    "yaxis": f"y{axis}",
                }
            )
    return traces


def _y_axis(row: int) -> str:
    """The layout key of the y axis of a one-column figure's ``row``."""
    return "yaxis" if row == 1 else f"yaxis{row}"


def _add_jobs(fig: go.Figure, table: pl.DataFrame, *, row: int) -> None:
    for i, (executor,) in enumerate(table.select("executor").unique().sort("executor").rows()):
        part = table.filter(pl.col("executor") == executor).sort("bucket")
        hover = [
            _wrapped(
                f"{executor}: {plural(j, 'job')}, p95 wait {p:,.0f}s, median {m:,.0f}s, "
                f"{f:.0%} failed"
            )
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


def _add_changes(fig: go.Figure, changes: pl.DataFrame, *, row: int, root: str = "") -> None:
    for change_type, part in changes.group_by("change_type", maintain_order=True):
        symbol, colour = CHANGE_STYLE.get(str(change_type[0]), CHANGE_STYLE["other"])
        for inferred, sub in part.group_by("inferred", maintain_order=True):
            hollow = bool(inferred[0])
            hover = [
                f"{_wrapped(f'{ct} {tg}')}<br>{_wrapped(d)}<br><i>"
                + _wrapped(
                    f"{'inferred from logs' if hollow else 'recorded'}: "
                    + ", ".join(_location(e, root) for e in (ex or [])[:2])
                )
                + "</i>"
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


def _across(
    fig: go.Figure, x0, x1=None, *, label: str, colour: str, y: float, **shape: object
) -> None:
    """A band (``x0``..``x1``) or a line (``x0``) across every lane, labelled once."""
    kind = "rect" if x1 is not None else "line"
    fig.add_shape(
        type=kind,
        x0=x0,
        x1=x1 if x1 is not None else x0,
        y0=0,
        y1=1,
        xref="x",
        yref="paper",
        layer="below",
        **shape,
    )
    fig.add_annotation(
        x=x0,
        y=y,
        xref="x",
        yref="paper",
        text=escape(label),
        showarrow=False,
        xanchor="left",
        yanchor="top",
        font={"size": 11, "color": colour},
        bgcolor="rgba(255,255,255,0.85)",
    )


def _shade(fig: go.Figure, analysis: Analysis) -> None:
    """Each incident shaded across every lane from its onset to its recovery, labelled
    (numbered from 1); one still going when the logs end, to their end, labelled so."""
    for inc in analysis.incidents.iter_rows(named=True):
        ongoing = bool(inc.get("ongoing"))
        start, end = inc["onset"], inc.get("logs_end") if ongoing else inc["recovery"]
        if start is None or end is None:
            continue
        _across(
            fig,
            start,
            max(end, start + timedelta(minutes=1)),
            label=f"incident {inc['incident_id'] + 1}" + (", not recovered" if ongoing else ""),
            colour="#c62828",
            y=1.0,
            fillcolor="rgba(211,47,47,0.07)",
            line_width=0,
        )


def _location(loc: str, root: str) -> str:
    file, sep, line = loc.rpartition(":")
    return f"{relative_path(file, root)}:{line}" if sep else loc


@lru_cache(maxsize=65536)
def _wrapped(text: str | None, width: int = HOVER_WIDTH, lines: int = 3) -> str:
    """``text`` escaped and broken into at most ``lines`` lines of ``width`` characters
    for a hover box (cut with an ellipsis beyond that). Worked out once per text: a
    figure repeats a signature on every bar of its lane.

    >>> _wrapped("a" * 70, width=30)
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa<br>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa<br>aaaaaaaaaa'
    """
    import textwrap

    text = (text or "").replace("\n", " ")
    parts = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False)
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][: width - 1] + "…"
    return "<br>".join(escape(p) for p in parts)

"""The findings for a terminal: lines that fit 80 columns and stay readable when piped.

Everything is built as rich ``Text`` (log text is never read as markup) from the same
findings the reports use (:mod:`timeline.outputs.findings`), so the words match.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from timeline.analysis import Analysis, rates
from timeline.outputs import words
from timeline.outputs.safe import terminal_text

#: Characters of a per-host sparkline, from none to the most.
SPARKS = " ▁▂▃▄▅▆▇█"


def plain(text: str) -> str:
    r"""Prose for a terminal: `code spans` become quoted text, and what log text holds
    that a terminal would act on is shown as escapes (:func:`terminal_text`).

    >>> plain("a trickle of `Failed to sync\x1b]0;pwned\x07` began")
    "a trickle of 'Failed to sync\\x1b]0;pwned\\x07' began"
    """
    return terminal_text(text).replace("`", "'")


def when(iso_time: str | None) -> str:
    """``03-14 17:40`` from an ISO time."""
    return "?" if not iso_time else f"{iso_time[5:10]} {iso_time[11:16]}"


def analysis_view(found: dict[str, Any], *, top: int = 3, verbose: bool = False) -> Group:
    """The analysis as printed by ``timeline analyze``: per incident a heading, what
    happened and how it was detected, then one line per ranked change with its strongest
    evidence (every line of evidence with ``verbose``)."""
    parts: list[RenderableType] = [Text(plain(found["summary"][0]), style="bold")]
    for incident in found["incidents"]:
        parts.append(Text(""))
        parts.extend(_incident_view(incident, top=top, verbose=verbose))
    return Group(*parts)


def _incident_view(incident: dict[str, Any], *, top: int, verbose: bool) -> list[RenderableType]:
    story = {s["label"]: s["text"] for s in incident["story"]}
    heading = Text(f"Incident {incident['number']}  ", style="bold")
    heading.append(plain(story["when"].removesuffix(".")))
    out: list[RenderableType] = [heading, _indented([plain(story["what happened"])])]
    if "detection" in story:
        out.append(_indented([plain(story["detection"])], style="dim"))
    evidenced = [c for c in incident["contributors"] if c["evidenced"]]
    causes = [c for c in evidenced if c["role"] != "mitigation"]
    mitigations = [c for c in evidenced if c["role"] == "mitigation"]
    always = {"trigger", "precursor"}
    shown = [c for i, c in enumerate(causes) if verbose or i < top or c["role"] in always] + (
        mitigations if verbose else []
    )
    out.append(_ranked_table(shown, verbose=verbose))
    lines = []
    hidden = len(causes) + (len(mitigations) if verbose else 0) - len(shown)
    if hidden:
        lines.append(f"{words.plural(hidden, 'more change')} with evidence (-v)")
    if mitigations and not verbose:
        lines.append(f"mitigated by: {_brief(mitigations)}")
    considered = [c for c in incident["contributors"] if not c["evidenced"]]
    if considered:
        lines.append(
            f"considered, no evidence: {words.plural(len(considered), 'change')}"
            + (": " + "; ".join(f"{plain(c['name'])} {when(c['time'])}" for c in considered))
            * verbose
        )
    out.append(_indented(lines, style="dim"))
    return out


def _brief(changes: list[dict[str, Any]]) -> str:
    """``18 changes 21:01 to 22:51 (11 reboots, 7 restarts)``."""
    kinds: dict[str, int] = {}
    for c in changes:
        kinds[c["change_type"]] = kinds.get(c["change_type"], 0) + 1
    times = sorted(c["time"] for c in changes)
    span = when(times[0]) if len(times) == 1 else f"{when(times[0])} to {when(times[-1])}"
    said = ", ".join(
        words.plural(n, "other change" if kind == "other" else kind) for kind, n in kinds.items()
    )
    return plain(f"{words.plural(len(changes), 'change')} {span} ({said})")


def _ranked_table(changes: list[dict[str, Any]], *, verbose: bool) -> Table:
    table = Table.grid(padding=(0, 1), pad_edge=False)
    table.add_column(justify="right", no_wrap=True)  # indent and rank
    table.add_column(no_wrap=True)  # role
    table.add_column(ratio=1, overflow="fold")
    for c in changes:
        text = Text(f"{when(c['time'])} ")
        text.append(plain(c["name"]), style="bold")
        if c["versions"]:
            text.append(f" {plain(c['versions'])}")
        text.append(f": {plain(c['headline'])}")
        if verbose:
            for line in c["evidence"][1:]:
                text.append(f"\n- {plain(line)}", style="dim")
            if c["examples"]:
                seen = plain(", ".join(c["examples"][:2]))
                text.append(f"\n- seen at {seen}", style="dim")
        table.add_row(f"  #{c['rank']}" if c["rank"] else "  -", Text(plain(c["role"])), text)
    return table


def _indented(lines: list[str], style: str | None = None) -> Table:
    table = Table.grid(pad_edge=False)
    table.add_column(width=2, no_wrap=True)
    table.add_column(ratio=1)
    for line in lines:
        table.add_row("", Text(line, style=style or ""))
    return table


def host_view(
    events: pl.DataFrame, analysis: Analysis, incident_id: int, *, width: int = 32
) -> Table | None:
    """Errors per host over one incident as sparklines, with each host's last error and
    the changes made to that host alone (not the fleet-wide ones): where errors stop node
    by node, and after what."""
    row = analysis.incidents.filter(pl.col("incident_id") == incident_id)
    if row.is_empty():
        return None
    incident = row.row(0, named=True)
    start = incident["onset"] - timedelta(hours=2)
    # an incident still going when the logs end is shown to the end of its data
    end = incident["recovery"] or incident.get("logs_end") or incident["onset"]
    step = max((end - start) / width, timedelta(seconds=1))
    problems = (
        rates.problem_rows(events.filter(pl.col("ts").is_between(start, end)))
        .filter(pl.col("host").is_in(list(incident["hosts"] or [])))
        .with_columns(slot=((pl.col("ts") - start) / step).cast(pl.Int64).clip(0, width - 1))
        .group_by("host", "slot")
        .agg(n=pl.len(), last=pl.col("ts").max())
        .collect()
    )
    if problems.is_empty():
        return None
    table = Table(
        title=f"Incident {incident_id + 1} host by host, {start:%m-%d %H:%M} to "
        f"{end:%m-%d %H:%M} UTC: errors and warnings, and changes to one host",
        title_justify="left",
        box=None,
        pad_edge=False,
        show_edge=False,
    )
    table.add_column("host", no_wrap=True)
    table.add_column("over time", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("last", no_wrap=True)
    table.add_column("its own changes", overflow="fold")
    peak = problems["n"].max()
    changes = analysis.changes.filter(
        pl.col("ts").is_between(start, end) & (pl.col("hosts").list.len() <= 2)
    )
    for (host,), part in problems.sort("host").group_by("host", maintain_order=True):
        counts = dict(part.select("slot", "n").iter_rows())
        spark = "".join(
            SPARKS[0 if not counts.get(i) else 1 + (len(SPARKS) - 2) * counts[i] // peak]
            for i in range(width)
        )
        touched = (
            changes.filter(pl.col("hosts").list.contains(host))
            .group_by(at=pl.col("ts").dt.truncate("1m"))
            .agg(pl.col("change_type").unique().sort())
            .sort("at")
        )
        said = ", ".join(f"{words.kinds_text(kinds)} {t:%H:%M}" for t, kinds in touched.iter_rows())
        table.add_row(
            Text(plain(words.short_host(host))),
            spark,
            f"{int(part['n'].sum()):,}",
            f"{part['last'].max():%H:%M}",
            Text(plain(said)),
        )
    return table


def window_text(start, end) -> str:
    """``2023-03-14 17:00 to 2023-03-15 03:00 UTC``; an open end said in words.

    >>> from datetime import datetime
    >>> window_text(datetime(2023, 3, 14, 17), None)
    '2023-03-14 17:00 UTC onwards'
    """
    if start and end:
        return f"{words.minute(start)} to {words.minute(end)} UTC"
    if start:
        return f"{words.minute(start)} UTC onwards"
    return f"up to {words.minute(end)} UTC" if end else "all times"
